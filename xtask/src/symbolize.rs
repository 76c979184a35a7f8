//! Names the function, file and line of a fault the supervisor reports.
//!
//! The root task reports a component's fault as
//! ``KaaL: component `x` faulted: … [program `p`, ip 0x…]``. The programs a
//! system image carries are stripped, but the ones cargo built keep their
//! DWARF at the same addresses: `addr2line` (on gimli) reads it there.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use addr2line::Loader;

/// The program and instruction address of a fault report line.
pub fn fault_site(line: &str) -> Option<(&str, u64)> {
    let rest = line.split("KaaL: component `").nth(1)?;
    let rest = rest.split("faulted: ").nth(1)?;
    let tail = rest.rsplit_once("[program `")?.1;
    let (program, rest) = tail.split_once("`, ip 0x")?;
    let hex = rest.split(']').next()?;
    Some((program, u64::from_str_radix(hex, 16).ok()?))
}

/// Symbolizes fault reports with the DWARF of the programs cargo built:
/// `path(program)` is a program's unstripped ELF.
pub struct Symbolizer<F> {
    path: F,
    loaded: BTreeMap<String, Option<Loader>>,
}

impl<F: Fn(&str) -> PathBuf> Symbolizer<F> {
    pub fn new(path: F) -> Self {
        Symbolizer {
            path,
            loaded: BTreeMap::new(),
        }
    }

    /// The lines to print after `line`: the function, file and line of its
    /// fault, innermost (inlined) frame first; none for other lines, or
    /// when the program has no debug information for the address.
    pub fn annotate(&mut self, line: &str) -> Vec<String> {
        let Some((program, ip)) = fault_site(line) else {
            return Vec::new();
        };
        let path = &self.path;
        let loader = self
            .loaded
            .entry(program.to_owned())
            .or_insert_with(|| Loader::new(path(program)).ok());
        let Some(loader) = loader else {
            return vec![format!(
                "KaaL:   (no debug information for `{program}` at {})",
                path(program).display()
            )];
        };
        frames(loader, ip)
    }
}

/// Copies `from` to `to` as it comes, each fault report followed by the
/// lines that name its site; until `from` ends.
pub fn pass_through<F: Fn(&str) -> PathBuf>(
    mut from: impl Read,
    mut to: impl Write,
    symbolizer: &mut Symbolizer<F>,
) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut line = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut data = buf.get(..n).unwrap_or_default();
        // Up to and with each newline, then that line's fault site.
        while let Some(at) = data.iter().position(|&b| b == b'\n') {
            let (head, rest) = data.split_at(at + 1);
            to.write_all(head)?;
            line.extend(head.iter().take(4096usize.saturating_sub(line.len())));
            for named in symbolizer.annotate(&String::from_utf8_lossy(&line)) {
                to.write_all(named.as_bytes())?;
                to.write_all(b"\r\n")?;
            }
            line.clear();
            data = rest;
        }
        to.write_all(data)?;
        line.extend(data.iter().take(4096usize.saturating_sub(line.len())));
        to.flush()?;
    }
}

/// `in function (file:line)` for each frame at `ip`.
fn frames(loader: &Loader, ip: u64) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(mut it) = loader.find_frames(ip) {
        while let Ok(Some(frame)) = it.next() {
            let function = frame
                .function
                .as_ref()
                .and_then(|f| f.demangle().ok().map(|n| n.into_owned()))
                .unwrap_or_else(|| "?".to_owned());
            let place = match frame.location {
                Some(l) => format!(
                    "{}:{}",
                    l.file.map(trim_path).unwrap_or("?"),
                    l.line.unwrap_or(0)
                ),
                None => "?".to_owned(),
            };
            out.push(format!("KaaL:   in {} ({place})", without_hash(&function)));
        }
    }
    if out.is_empty() {
        if let Some(symbol) = loader.find_symbol(ip) {
            out.push(format!("KaaL:   in {}", without_hash(symbol)));
        }
    }
    out
}

/// A source path relative to the workspace when it is in it.
fn trim_path(file: &str) -> &str {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(|p| p.to_str())
        .unwrap_or("");
    file.strip_prefix(workspace)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(file)
}

/// A demangled name without its hash suffix (`::h0123…`).
fn without_hash(name: &str) -> &str {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lines_give_program_and_address() {
        let line = "KaaL: component `null_deref` faulted: page fault at address 0x0 \
                    (ip 0x401234) [program `misbehave`, ip 0x401234]";
        assert_eq!(fault_site(line), Some(("misbehave", 0x401234)));
        assert_eq!(fault_site("KaaL: component `x` exited (0)"), None);
        // A line without a well-formed marker names nothing.
        assert_eq!(
            fault_site("KaaL: component `x` faulted: [program `p`, ip 0xzz]"),
            None
        );
    }

    #[test]
    fn output_passes_through_with_fault_sites_after_their_lines() {
        let input = b"boot\nKaaL: component `a` faulted: x [program `p`, ip 0x10]\nend";
        let mut out = Vec::new();
        let mut s = Symbolizer::new(|_| PathBuf::from("/nonexistent"));
        pass_through(&input[..], &mut out, &mut s).expect("copied");
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("boot\nKaaL: component `a` faulted"),
            "{text}"
        );
        assert!(
            text.contains("0x10]\nKaaL:   (no debug information for `p`"),
            "{text}"
        );
        assert!(text.ends_with("end"), "{text}");
    }

    #[test]
    fn hashes_are_dropped() {
        assert_eq!(
            without_hash("misbehave::main::h0123456789abcdef"),
            "misbehave::main"
        );
        assert_eq!(without_hash("a::hello"), "a::hello");
    }

    /// The test binary carries DWARF: a fault report at the file address
    /// of one of its functions is named with that function, file and line.
    #[test]
    fn a_real_address_is_named_with_function_file_and_line() {
        use object::{Object, ObjectSymbol};
        let me = std::env::current_exe().expect("the test binary");
        let bytes = std::fs::read(&me).expect("reading the test binary");
        let file = object::File::parse(&*bytes).expect("an ELF");
        let at = file
            .symbols()
            .find(|s| s.name().is_ok_and(|n| n.contains("symbolize10fault_site")))
            .map(|s| s.address())
            .expect("fault_site's symbol");
        let mut s = Symbolizer::new(|_| me.clone());
        let line = format!("KaaL: component `t` faulted: x [program `xtask`, ip {at:#x}]");
        let named = s.annotate(&line);
        assert!(
            named.iter().any(|l| l
                .starts_with("KaaL:   in xtask::symbolize::fault_site (xtask/src/symbolize.rs:")),
            "{named:?}"
        );
        // A program with no debug information is said to have none.
        let mut none = Symbolizer::new(|_| PathBuf::from("/nonexistent"));
        assert!(none.annotate(&line)[0].contains("no debug information"));
    }
}
