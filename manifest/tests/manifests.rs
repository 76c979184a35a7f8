//! `bad_manifest_rejected`: every manifest under `tests/bad/` is rejected
//! with the error its first line names; `tests/good.toml` is accepted.

use kaal_manifest::{Manifest, Restart};
use std::path::Path;

#[test]
fn good_manifest_is_accepted() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good.toml"))
            .unwrap();
    let m = Manifest::parse(&text).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(m.components.len(), 2);
    assert_eq!(
        m.component("serial").map(|c| c.restart),
        Some(Restart::Restart)
    );
    assert_eq!(
        m.component("app").map(|c| (c.stack.0, c.heap.0)),
        Some((16384, 1 << 20))
    );
}

#[test]
fn bad_manifest_rejected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an `# expect:` first line", path.display()));
        let errs = match Manifest::parse(&text) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(errs) => errs,
        };
        let messages: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            messages.iter().any(|m| m.contains(expect)),
            "{}: expected an error containing {expect:?}, got {messages:?}",
            path.display()
        );
        println!(
            "{}: {}",
            path.file_name().unwrap().to_string_lossy(),
            messages.join("; ")
        );
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} bad manifests");
}
