//! What the file-system test components share: checking and writing the
//! trees of `kaal_test_patterns::fs` through the VFS.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use kaal_client::file::{flags, kind, Fd, FileError, Files};
use kaal_protocols::file::{FileStat, FsError};
use kaal_test_patterns::fs::{self as tree, Entry, Kind};

/// A failed check, saying what and where.
pub type Check<T = ()> = Result<T, String>;

/// `e` as a check failure about `what`.
pub fn fail(what: &str, e: FileError) -> String {
    format!("{what}: {e}")
}

/// Whether `r` failed with the VFS's `want`.
pub fn refused<T>(r: Result<T, FileError>, want: FsError) -> bool {
    matches!(r, Err(FileError::Fs(e)) if e == want)
}

/// The protocol's kind of a tree entry.
pub fn kind_of(e: &Entry) -> u8 {
    match e.kind {
        Kind::Dir => kind::DIRECTORY,
        Kind::File { .. } | Kind::Text { .. } | Kind::HardLink { .. } => kind::REGULAR,
        Kind::Symlink { .. } => kind::SYMLINK,
    }
}

/// Writes `len` bytes of pattern `seed` to a new file at `path`.
pub fn write_file(fs: &Files, path: &str, len: u64, seed: u64, perm: u32, buf: &mut [u8]) -> Check {
    let f = flags::WRITE_ONLY | flags::CREATE | flags::TRUNCATE;
    let fd = fs.open(path, f, perm).map_err(|e| fail(path, e))?;
    let mut at = 0u64;
    while at < len {
        let n = (buf.len() as u64).min(len - at) as usize;
        let chunk = buf.get_mut(..n).ok_or("buffer")?;
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = tree::content(seed, at + i as u64);
        }
        let wrote = fs.write(fd, chunk).map_err(|e| fail(path, e))?;
        if wrote != n {
            return Err(format!("{path}: wrote {wrote} of {n} bytes at {at}"));
        }
        at += n as u64;
    }
    fs.close(fd).map_err(|e| fail(path, e))
}

/// Reads the file at `path` whole and checks it is `len` bytes of pattern
/// `seed`.
pub fn check_file(fs: &Files, path: &str, len: u64, seed: u64, buf: &mut [u8]) -> Check {
    let fd = fs
        .open(path, flags::READ_ONLY, 0)
        .map_err(|e| fail(path, e))?;
    let r = check_open(fs, fd, path, len, seed, buf);
    fs.close(fd).map_err(|e| fail(path, e))?;
    r
}

/// [`check_file`] on an open descriptor, from its offset 0.
pub fn check_open(fs: &Files, fd: Fd, path: &str, len: u64, seed: u64, buf: &mut [u8]) -> Check {
    let mut at = 0u64;
    loop {
        let n = fs.read(fd, buf).map_err(|e| fail(path, e))?;
        let got = buf.get(..n).ok_or("read past the buffer")?;
        if let Some((i, b)) = got
            .iter()
            .enumerate()
            .find(|(i, b)| **b != tree::content(seed, at + *i as u64))
        {
            return Err(format!("{path}: byte {} is {b:#04x}", at + i as u64));
        }
        at += n as u64;
        if n < buf.len() {
            break;
        }
    }
    if at != len {
        return Err(format!("{path}: {at} bytes, expected {len}"));
    }
    Ok(())
}

/// Reads the file at `path` whole and checks it holds `text`.
pub fn check_text(fs: &Files, path: &str, text: &str, buf: &mut [u8]) -> Check {
    let fd = fs
        .open(path, flags::READ_ONLY, 0)
        .map_err(|e| fail(path, e))?;
    let mut got = Vec::new();
    let r = loop {
        match fs.read(fd, buf) {
            Ok(0) => break Ok(()),
            Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) => break Err(fail(path, e)),
        }
        if got.len() > text.len() {
            break Ok(());
        }
    };
    fs.close(fd).map_err(|e| fail(path, e))?;
    r?;
    if got != text.as_bytes() {
        return Err(format!("{path}: {} bytes, not its text", got.len()));
    }
    Ok(())
}

/// Writes `text` to a new file at `path`.
pub fn write_text(fs: &Files, path: &str, text: &str, perm: u32) -> Check {
    let f = flags::WRITE_ONLY | flags::CREATE | flags::TRUNCATE;
    let fd = fs.open(path, f, perm).map_err(|e| fail(path, e))?;
    let wrote = fs.write(fd, text.as_bytes()).map_err(|e| fail(path, e))?;
    if wrote != text.len() {
        return Err(format!("{path}: wrote {wrote} of {} bytes", text.len()));
    }
    fs.close(fd).map_err(|e| fail(path, e))
}

/// The names in directory `path`, without `.` and `..`.
pub fn list(fs: &Files, path: &str) -> Check<Vec<String>> {
    let fd = fs
        .open(path, flags::READ_ONLY | flags::DIRECTORY, 0)
        .map_err(|e| fail(path, e))?;
    let mut names = Vec::new();
    let mut scratch = [0u8; 2048];
    let r = fs.read_dir(fd, &mut scratch, |rec| {
        if rec.name != b"." && rec.name != b".." {
            names.push(String::from_utf8_lossy(rec.name).into_owned());
        }
    });
    fs.close(fd).map_err(|e| fail(path, e))?;
    r.map_err(|e| fail(path, e))?;
    names.sort();
    Ok(names)
}

/// The path `target` names when read in `dir`, with `.` and `..` folded.
pub fn join(dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = String::new();
    for p in parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn expect_stat(path: &str, st: &FileStat, e: &Entry) -> Check {
    if st.kind != kind_of(e) || st.perm != e.mode {
        return Err(format!(
            "{path}: kind {} mode {:o}, expected kind {} mode {:o}",
            st.kind,
            st.perm,
            kind_of(e),
            e.mode
        ));
    }
    Ok(())
}

/// Checks every entry of `t` through the VFS: kind, permission bits,
/// content, link targets, hard links on one inode, and each directory's
/// names exactly (the root may also hold `lost+found`, `tmp` and `extra`).
/// The bytes of file content checked.
pub fn check_tree(fs: &Files, t: &[Entry], extra: &[&str], buf: &mut [u8]) -> Check<u64> {
    let mut bytes = 0;
    let mut dirs: Vec<&str> = Vec::from(["/"]);
    for e in t {
        let st = fs.lstat(e.path).map_err(|err| fail(e.path, err))?;
        expect_stat(e.path, &st, e)?;
        match e.kind {
            Kind::Dir => dirs.push(e.path),
            Kind::File { len, seed } => {
                check_file(fs, e.path, len, seed, buf)?;
                bytes += len;
            }
            Kind::Text { text } => {
                check_text(fs, e.path, text, buf)?;
                bytes += text.len() as u64;
            }
            Kind::HardLink { to } => {
                let first = fs.stat(to).map_err(|err| fail(to, err))?;
                if first.ino != st.ino || st.links < 2 {
                    return Err(format!("{}: not a second name of {to}", e.path));
                }
            }
            Kind::Symlink { target } => {
                let mut got = [0u8; 512];
                let read = fs
                    .read_link(e.path, &mut got)
                    .map_err(|err| fail(e.path, err))?;
                if read != target.as_bytes() {
                    return Err(format!("{}: link target differs", e.path));
                }
                let dest = join(tree::parent(e.path), target);
                let via = fs.stat(e.path).map_err(|err| fail(e.path, err))?;
                let direct = fs.stat(&dest).map_err(|err| fail(&dest, err))?;
                if via.ino != direct.ino {
                    return Err(format!("{}: does not lead to {dest}", e.path));
                }
            }
        }
    }
    for d in dirs {
        let got = list(fs, d)?;
        let mut want: Vec<String> = t
            .iter()
            .filter(|e| tree::parent(e.path) == d && e.path != d)
            .map(|e| String::from(tree::name(e.path)))
            .collect();
        if d == "/" {
            for x in extra.iter().chain(["lost+found"].iter()) {
                if got.iter().any(|g| g == x) {
                    want.push(String::from(*x));
                }
            }
        }
        want.sort();
        if got != want {
            return Err(format!("{d} holds {got:?}, expected {want:?}"));
        }
    }
    Ok(bytes)
}

/// Writes tree `t` (directories, files, symlinks, hard links, in order).
pub fn write_tree(fs: &Files, t: &[Entry], buf: &mut [u8]) -> Check {
    for e in t {
        match e.kind {
            Kind::Dir => fs
                .mkdir(e.path, u32::from(e.mode))
                .map_err(|err| fail(e.path, err))?,
            Kind::File { len, seed } => write_file(fs, e.path, len, seed, u32::from(e.mode), buf)?,
            Kind::Text { text } => write_text(fs, e.path, text, u32::from(e.mode))?,
            Kind::Symlink { target } => fs
                .symlink(target, e.path)
                .map_err(|err| fail(e.path, err))?,
            Kind::HardLink { to } => fs.link(to, e.path).map_err(|err| fail(e.path, err))?,
        }
    }
    Ok(())
}

/// Calls `f` until the VFS answers something other than `ServerGone`
/// (it restarted), at most `tries` times.
pub fn until_served<T>(
    tries: u32,
    mut f: impl FnMut() -> Result<T, FileError>,
) -> Result<T, FileError> {
    let mut last = Err(FileError::Rpc(kaal_rpc::RpcError::ServerGone));
    for _ in 0..tries {
        last = f();
        if !matches!(last, Err(FileError::Rpc(kaal_rpc::RpcError::ServerGone))) {
            break;
        }
    }
    last
}

/// Prints how role `name` ended (`<name>: <what>`, or `<name>: FAILED:
/// <why>`) and passes the outcome on as the component's result.
pub fn report(name: &str, r: Check<String>) -> Result<(), String> {
    match r {
        Ok(what) => {
            kaal_rt::println!("{name}: {what}");
            Ok(())
        }
        Err(e) => {
            kaal_rt::println!("{name}: FAILED: {e}");
            Err(e)
        }
    }
}
