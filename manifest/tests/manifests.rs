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

#[test]
fn packed_image_decodes_with_programs_borrowed() {
    use kaal_manifest::image::{SystemImage, MAGIC};
    use std::collections::BTreeMap;
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good.toml"))
            .unwrap();
    let m = Manifest::parse(&text).unwrap();
    let mut programs = BTreeMap::new();
    programs.insert("serial_driver".to_owned(), b"\x7fELF serial".to_vec());
    assert!(m
        .pack(&programs)
        .unwrap_err()
        .contains("no program `echo_app`"));
    programs.insert("echo_app".to_owned(), b"\x7fELF app".to_vec());
    let bytes = m.pack(&programs).unwrap();
    let img = SystemImage::decode(&bytes).unwrap();
    assert_eq!(img.magic, MAGIC);
    assert_eq!(img.components.len(), 2);
    let (i, app) = img.component("app").unwrap();
    assert_eq!((i, app.elf), (1, &b"\x7fELF app"[..]));
    let console = &img.channels[0];
    assert_eq!((console.from.as_slice(), console.to), (&[1u16][..], 0));
    assert_eq!(console.shared_bytes(), 128 + 256 * 64);
    let data = &img.channels[2];
    assert_eq!((data.name, data.shared_bytes()), ("data", 64 * 1024));
    // A truncated or foreign image is refused, not misread.
    assert!(SystemImage::decode(&bytes[..bytes.len() / 2]).is_err());
    assert!(SystemImage::decode(b"\x00\x00\x00\x00").is_err());
}

#[test]
fn endpoint_may_have_several_clients() {
    let text = r#"
        [[component]]
        name = "echo"
        image = "echo"
        priority = 100
        stack = "16K"
        heap = "16K"
        [[component]]
        name = "a"
        image = "client"
        priority = 100
        stack = "16K"
        heap = "16K"
        [[component]]
        name = "b"
        image = "client"
        priority = 100
        stack = "16K"
        heap = "16K"
        [[channel]]
        name = "echo"
        kind = "endpoint"
        from = ["a", "b"]
        to = "echo"
    "#;
    let m = Manifest::parse(text).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(m.channels[0].from_names(), ["a", "b"]);
}

#[test]
fn image_values_are_rechecked_on_decode() {
    use kaal_manifest::image::{ComponentImage, ImageError, SystemImage, MAGIC};
    let mut img = SystemImage {
        magic: MAGIC,
        components: vec![ComponentImage {
            name: "a",
            priority: 10,
            stack: 4096,
            heap: 4096,
            devices: vec![],
            restart: Restart::Stop,
            elf: b"",
        }],
        channels: vec![],
        console: None,
    };
    let ok = postcard::to_allocvec(&img).unwrap();
    assert!(SystemImage::decode(&ok).is_ok());
    img.components[0].stack = u64::MAX - 4095;
    let bad = postcard::to_allocvec(&img).unwrap();
    assert!(matches!(
        SystemImage::decode(&bad),
        Err(ImageError::Invalid { .. })
    ));
}
