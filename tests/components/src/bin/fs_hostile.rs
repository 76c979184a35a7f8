//! The `fs_hostile_client` test's two clients of one VFS, by component
//! name (each on its `fs` channel):
//! - `victim`: makes its files in `/victim`, keeps four descriptors open at
//!   known offsets, says so with `/victim/ready`, and once `/hostile/done`
//!   appears checks that its descriptors still work where it left them and
//!   its files hold what it wrote;
//! - `hostile`: sends what a client should not (descriptors it does not
//!   own, bad paths, lent ranges outside its region, bad offsets, flags and
//!   whence values, malformed raw messages, operations that would break the
//!   tree) and checks that each gets its specific error. It changes no path
//!   of the victim's: the clients share one name space, and the point is
//!   descriptors, regions and the VFS's integrity.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Debug;

use kaal_client::file::{flags, kind, whence, FileError, Files};
use kaal_protocols::file::{Attrs, FileStat, FsError, PATH_BYTES};
use kaal_rpc::{app_code, Error, IpcBuffer, Lent, Msg, RpcError, WireError, MSG_MAX, REPLY_OK};
use kaal_rt::{println, Env};
use kaal_sel4::ipc::MessageInfo;
use kaal_test_components::fs::{check_file, fail, list, report, write_file, Check};
use kaal_test_patterns::fs as tree;

/// Bytes moved per read or write call (the lent region is as large).
const CHUNK: usize = 64 * 1024;
/// Descriptor numbers tried that the hostile client does not hold: past
/// the 64 a client may have, and the largest.
const FOREIGN_FDS: core::ops::RangeInclusive<u32> = 0..=70;

/// The victim's files: path, length, pattern seed.
const VICTIM_FILES: [(&str, u64, u64); 3] = [
    ("/victim/a", 10_000, 0xa1),
    ("/victim/b", 100_000, 0xb2),
    ("/victim/log", 100, 0xc3),
];
/// Where the victim leaves descriptors `a` and `b`.
const A_AT: u64 = 1234;
const B_AT: u64 = 70_005;

type Outcome<T> = Result<T, Error<FsError>>;

/// Counts the hostile client's attempts by kind and collects every one
/// that did not get the error it should have.
struct Tally {
    kinds: Vec<(&'static str, u32)>,
    wrong: Vec<String>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            kinds: Vec::new(),
            wrong: Vec::new(),
        }
    }

    /// Counts what follows as attempts of kind `name`.
    fn kind(&mut self, name: &'static str) {
        self.kinds.push((name, 0));
    }

    fn count(&mut self) {
        if let Some((_, n)) = self.kinds.last_mut() {
            *n += 1;
        }
    }

    /// `got` must be exactly the error `want`.
    fn refused<T: Debug>(&mut self, what: &str, got: Outcome<T>, want: Error<FsError>) {
        self.count();
        match got {
            Err(e) if e == want => {}
            other => self
                .wrong
                .push(format!("{what}: {other:?}, expected {want:?}")),
        }
    }

    /// `got` must be `Ok(want)` (an attempt the VFS is to answer harmlessly).
    fn answered<T: Debug + PartialEq>(&mut self, what: &str, got: Outcome<T>, want: T) {
        self.count();
        match got {
            Ok(v) if v == want => {}
            other => self
                .wrong
                .push(format!("{what}: {other:?}, expected Ok({want:?})")),
        }
    }

    fn total(&self) -> u32 {
        self.kinds.iter().map(|(_, n)| n).sum()
    }
}

/// `r` must have succeeded: a step the attempts rely on.
fn must<T>(what: &str, r: Outcome<T>) -> Check<T> {
    r.map_err(|e| format!("{what}: {e:?}"))
}

/// A raw request of `label` and `words` on the VFS's endpoint: the reply's
/// outcome as a stub would see it (no words looked at).
fn raw_call(fs: &Files, label: u64, words: &[u64]) -> Outcome<()> {
    let msg = Msg::new(label, words, &IpcBuffer)?;
    let reply = kaal_rpc::call(fs.raw().0, &msg);
    reply_outcome(reply.label)
}

fn reply_outcome(label: u64) -> Outcome<()> {
    if label == REPLY_OK {
        return Ok(());
    }
    match app_code(label) {
        Some(code) => {
            Err(FsError::from_code(code).map_or(Error::Rpc(RpcError::BadReply), Error::App))
        }
        None => Err(Error::Rpc(RpcError::from_label(label))),
    }
}

/// Polls `stat` until `path` exists (the other client made it).
fn wait_for(fs: &Files, path: &str) -> Check {
    for _ in 0..2_000_000 {
        match fs.stat(path) {
            Ok(_) => return Ok(()),
            Err(FileError::Fs(FsError::NotFound)) => {}
            Err(e) => return Err(fail(path, e)),
        }
    }
    Err(format!("{path} never appeared"))
}

/// Fills `buf` with pattern `seed` from position `at`.
fn pattern(buf: &mut [u8], seed: u64, at: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = tree::content(seed, at + i as u64);
    }
}

/// What must not change of a file while another client attacks.
fn same_file(a: &FileStat, b: &FileStat) -> bool {
    (a.ino, a.kind, a.perm, a.links, a.size, a.mtime, a.ctime)
        == (b.ino, b.kind, b.perm, b.links, b.size, b.mtime, b.ctime)
}

fn victim(fs: &Files, buf: &mut [u8]) -> Check<String> {
    fs.mkdir("/victim", 0o755).map_err(|e| fail("/victim", e))?;
    fs.mkdir("/victim/dir", 0o755)
        .map_err(|e| fail("/victim/dir", e))?;
    for (p, len, seed) in VICTIM_FILES {
        write_file(fs, p, len, seed, 0o644, buf)?;
    }
    for (i, name) in ["one", "two", "three"].iter().enumerate() {
        write_file(fs, &format!("/victim/dir/{name}"), 50, i as u64, 0o644, buf)?;
    }
    let fd = |p: &str, f: u32| fs.open(p, f, 0).map_err(|e| fail(p, e));
    let a = fd("/victim/a", flags::READ_WRITE)?;
    let b = fd("/victim/b", flags::READ_ONLY)?;
    let log = fd("/victim/log", flags::WRITE_ONLY | flags::APPEND)?;
    let dir = fd("/victim/dir", flags::READ_ONLY | flags::DIRECTORY)?;
    fs.seek(a, A_AT as i64, whence::SET)
        .map_err(|e| fail("seek a", e))?;
    fs.seek(b, (B_AT - 5) as i64, whence::SET)
        .map_err(|e| fail("seek b", e))?;
    // Offsets reached by reading and by reading a directory to its end.
    let mut five = [0u8; 5];
    if fs.read(b, &mut five).map_err(|e| fail("read b", e))? != 5 {
        return Err(String::from("b: a short read"));
    }
    let mut scratch = [0u8; 512];
    let mut names = Vec::new();
    fs.read_dir(dir, &mut scratch, |r| {
        names.push(String::from_utf8_lossy(r.name).into_owned())
    })
    .map_err(|e| fail("readdir", e))?;
    let before: Vec<FileStat> = [a, b, log]
        .iter()
        .map(|&f| fs.fstat(f))
        .collect::<Result<_, _>>()
        .map_err(|e| fail("fstat", e))?;
    fs.mkdir("/victim/ready", 0o755)
        .map_err(|e| fail("/victim/ready", e))?;

    wait_for(fs, "/hostile/done")?;

    // Nothing of the victim's changed while the hostile client worked.
    for ((f, st), (p, _, _)) in [a, b, log].iter().zip(&before).zip(VICTIM_FILES) {
        let now = fs.fstat(*f).map_err(|e| fail(p, e))?;
        let by_name = fs.stat(p).map_err(|e| fail(p, e))?;
        if !same_file(st, &now) || !same_file(st, &by_name) {
            return Err(format!("{p}: {st:?} became {now:?} ({by_name:?} by name)"));
        }
    }
    // Each descriptor is where it was left and works from there.
    let at = |f, p: &str| fs.seek(f, 0, whence::CURRENT).map_err(|e| fail(p, e));
    if (at(a, "a")?, at(b, "b")?) != (A_AT, B_AT) {
        return Err(String::from("a descriptor's offset moved"));
    }
    let mut got = [0u8; 100];
    let mut want = [0u8; 100];
    for (f, seed, from) in [(a, 0xa1, A_AT), (b, 0xb2, B_AT)] {
        if fs.read(f, &mut got).map_err(|e| fail("read", e))? != got.len() {
            return Err(format!("a short read at {from}"));
        }
        pattern(&mut want, seed, from);
        if got != want {
            return Err(format!("the bytes at {from} of seed {seed:#x} differ"));
        }
    }
    // Writes land where the descriptors point: the pattern's own bytes,
    // so the whole-file checks below see any misplaced one.
    pattern(&mut want[..16], 0xa1, A_AT + 100);
    fs.write(a, &want[..16]).map_err(|e| fail("write a", e))?;
    pattern(&mut want, 0xc3, 100);
    fs.write(log, &want).map_err(|e| fail("append log", e))?;
    // The directory descriptor is still at its end, and rewinds.
    let mut more = [0u8; 512];
    let mut past_end = 0;
    if fs.read_dir(dir, &mut more, |_| past_end += 1).is_err()
        || past_end != 0
        || fs.seek(dir, 0, whence::SET).is_err()
    {
        return Err(format!(
            "the directory descriptor moved or stopped ({past_end} records past its end)"
        ));
    }
    let mut again = Vec::new();
    fs.read_dir(dir, &mut more, |r| {
        again.push(String::from_utf8_lossy(r.name).into_owned())
    })
    .map_err(|e| fail("readdir again", e))?;
    if names != again || names.len() != 5 {
        return Err(format!("/victim/dir read {names:?}, then {again:?}"));
    }
    for f in [a, b, log, dir] {
        fs.close(f).map_err(|e| fail("close", e))?;
    }
    let mut bytes = 0;
    for (p, len, seed) in VICTIM_FILES {
        let len = if p == "/victim/log" { 2 * len } else { len };
        check_file(fs, p, len, seed, buf)?;
        bytes += len;
    }
    if list(fs, "/victim")? != ["a", "b", "dir", "log", "ready"] {
        return Err(String::from("/victim holds other names"));
    }
    fs.sync().map_err(|e| fail("sync", e))?;
    Ok(format!(
        "4 descriptors worked at the offsets it left them; its 3 files intact ({bytes} bytes)"
    ))
}

fn hostile(fs: &Files, buf: &mut [u8]) -> Check<String> {
    let rpc = fs.raw();
    let size = fs.region().len();
    let mut t = Tally::new();
    let bad_fd = Error::App(FsError::BadDescriptor);
    let invalid = Error::App(FsError::Invalid);
    let bad_msg = Error::Rpc(RpcError::BadMessage);

    // The victim's descriptors are open (in its own table) from here on.
    wait_for(fs, "/victim/ready")?;

    t.kind("descriptors");
    for fd in FOREIGN_FDS.chain([u32::MAX]) {
        t.refused("read", rpc.read(fd, Lent::new(0, 16)), bad_fd);
        t.refused("write", rpc.write(fd, Lent::new(0, 16)), bad_fd);
        t.refused("seek", rpc.seek(fd, 0, whence::SET), bad_fd);
        t.refused("fstat", rpc.fstat(fd), bad_fd);
        t.refused("readdir", rpc.readdir(fd, Lent::new(0, 256)), bad_fd);
        t.refused("truncate", rpc.truncate(fd, 0), bad_fd);
        let attrs = Attrs {
            mode: Some(0o777),
            ..Attrs::default()
        };
        t.refused("fsetattr", rpc.fsetattr(fd, attrs), bad_fd);
        t.refused("close", rpc.close(fd), bad_fd);
    }

    // Its own files, to aim at.
    must("mkdir", rpc.mkdir(b"/hostile", 0o755))?;
    must("mkdir", rpc.mkdir(b"/hostile/d", 0o755))?;
    must("mkdir", rpc.mkdir(b"/hostile/d/sub", 0o755))?;
    write_file(fs, "/hostile/f", 3000, 0x77, 0o644, buf)?;
    let f = must("open", rpc.open(b"/hostile/f", flags::READ_WRITE, 0))?;
    let ro = must("open", rpc.open(b"/hostile/f", flags::READ_ONLY, 0))?;
    let wo = must("open", rpc.open(b"/hostile/f", flags::WRITE_ONLY, 0))?;
    let d = must("open", rpc.open(b"/hostile/d", flags::DIRECTORY, 0))?;
    let f_stat = must("fstat", rpc.fstat(f))?;
    // Its own descriptors, used as they were not opened for.
    t.refused("write read-only", rpc.write(ro, Lent::new(0, 1)), bad_fd);
    t.refused("truncate read-only", rpc.truncate(ro, 0), bad_fd);
    t.refused("read write-only", rpc.read(wo, Lent::new(0, 1)), bad_fd);
    t.refused(
        "read a directory",
        rpc.read(d, Lent::new(0, 1)),
        Error::App(FsError::IsADirectory),
    );
    t.refused(
        "readdir a file",
        rpc.readdir(f, Lent::new(0, 64)),
        Error::App(FsError::NotADirectory),
    );
    must("close", rpc.close(wo))?;
    t.refused("fstat closed", rpc.fstat(wo), bad_fd);
    t.refused("close twice", rpc.close(wo), bad_fd);

    t.kind("paths");
    let not_found = Error::App(FsError::NotFound);
    let too_long = Error::App(FsError::NameTooLong);
    let create = flags::WRITE_ONLY | flags::CREATE;
    let mut long_name = Vec::from(&b"/hostile/"[..]);
    long_name.resize(long_name.len() + 256, b'n');
    // Over PATH_BYTES, yet it fits a message with open's other words.
    let mut long_path = Vec::new();
    while long_path.len() <= PATH_BYTES {
        long_path.extend_from_slice(b"/hostile");
    }
    let huge_path = vec![b'/'; 8 * MSG_MAX];
    let cases: [(&[u8], Error<FsError>); 8] = [
        (b"", not_found),
        (b"/hostile/a\0b", invalid),
        (b"/hostile/\0", invalid),
        (&long_name, too_long),
        (&long_path, too_long),
        (b"/hostile/f/x", Error::App(FsError::NotADirectory)),
        (b"/hostile/d/../f/x/y", Error::App(FsError::NotADirectory)),
        // Larger than a message: the stub refuses to send it.
        (&huge_path, Error::Rpc(RpcError::TooLong)),
    ];
    for (p, want) in cases {
        t.refused("stat", rpc.stat(p), want);
        t.refused("open", rpc.open(p, create, 0o644), want);
        t.refused("mkdir", rpc.mkdir(p, 0o755), want);
        t.refused("unlink", rpc.unlink(p), want);
    }
    // A file named as a directory (mkdir of it is Exists, as on Linux).
    let not_dir = Error::App(FsError::NotADirectory);
    t.refused("stat f/", rpc.stat(b"/hostile/f/"), not_dir);
    t.refused(
        "open f/",
        rpc.open(b"/hostile/f/", flags::READ_ONLY, 0),
        not_dir,
    );
    t.refused("unlink f/", rpc.unlink(b"/hostile/f/"), not_dir);
    // A lookup through one of the victim's files changes nothing.
    t.refused(
        "stat",
        rpc.stat(b"/victim/a/x"),
        Error::App(FsError::NotADirectory),
    );
    t.refused(
        "symlink to nothing",
        rpc.symlink(b"", b"/hostile/l"),
        invalid,
    );
    t.refused(
        "symlink to NUL",
        rpc.symlink(b"a\0", b"/hostile/l"),
        invalid,
    );
    t.refused(
        "symlink too long",
        rpc.symlink(&long_path, b"/hostile/l"),
        too_long,
    );
    t.refused(
        "rename too long",
        rpc.rename(&long_path, b"/hostile/x"),
        too_long,
    );
    // `..` above the root stays there.
    let root = must("stat /", rpc.stat(b"/"))?;
    t.answered(
        "stat /../..",
        rpc.stat(b"/../../..").map(|s| s.ino),
        root.ino,
    );
    t.answered(
        "stat /../f",
        rpc.stat(b"/../../hostile/../../hostile/f").map(|s| s.ino),
        f_stat.ino,
    );
    t.refused(
        "mkdir /..",
        rpc.mkdir(b"/..", 0o755),
        Error::App(FsError::Exists),
    );
    // Symbolic links that never end.
    must("symlink", rpc.symlink(b"/hostile/lb", b"/hostile/la"))?;
    must("symlink", rpc.symlink(b"la", b"/hostile/lb"))?;
    must("symlink", rpc.symlink(b"self", b"/hostile/self"))?;
    let looped = Error::App(FsError::SymlinkLoop);
    for p in [
        &b"/hostile/la"[..],
        b"/hostile/self",
        b"/hostile/lb/x",
        b"/hostile/la/",
    ] {
        t.refused("stat loop", rpc.stat(p), looped);
        t.refused("open loop", rpc.open(p, flags::READ_ONLY, 0), looped);
        t.refused("create through loop", rpc.open(p, create, 0o644), looped);
    }
    t.refused(
        "open a link NO_FOLLOW",
        rpc.open(b"/hostile/la", flags::NO_FOLLOW, 0),
        looped,
    );
    t.answered(
        "lstat loop",
        rpc.lstat(b"/hostile/la").map(|s| s.kind),
        kind::SYMLINK,
    );

    t.kind("ranges");
    // Lent ranges outside the region: dispatch refuses them unseen.
    let ranges = [
        (size, 1),
        (0, size + 1),
        (size.saturating_sub(1), 2),
        (size + 1, 0),
        (u64::MAX, 1),
        (1, u64::MAX),
        (u64::MAX, u64::MAX),
        (1 << 63, 1 << 63),
    ];
    for (at, len) in ranges {
        let l = Lent::new(at, len);
        t.refused("read", rpc.read(f, l), bad_msg);
        t.refused("write", rpc.write(f, l), bad_msg);
        t.refused("readdir", rpc.readdir(d, l), bad_msg);
        t.refused("readlink", rpc.readlink(b"/hostile/la", l), bad_msg);
    }
    // Empty ranges, to the region's very end: nothing moves.
    t.answered("write 0 bytes", rpc.write(f, Lent::new(0, 0)), 0);
    t.answered(
        "write 0 bytes at the end",
        rpc.write(f, Lent::new(size, 0)),
        0,
    );
    t.answered("read 0 bytes", rpc.read(f, Lent::new(size, 0)), 0);
    t.answered("offset unmoved", rpc.seek(f, 0, whence::CURRENT), 0);
    // Offsets: negative, overflowing, past what a file can be.
    let neg = |v: i64| v as u64;
    t.refused("seek -1", rpc.seek(f, neg(-1), whence::SET), invalid);
    t.refused(
        "seek -1 from 0",
        rpc.seek(f, neg(-1), whence::CURRENT),
        invalid,
    );
    t.refused(
        "seek before the start",
        rpc.seek(f, neg(-3001), whence::END),
        invalid,
    );
    t.refused(
        "seek i64::MIN",
        rpc.seek(f, neg(i64::MIN), whence::END),
        invalid,
    );
    t.answered("offset unmoved", rpc.seek(f, 0, whence::CURRENT), 0);
    must("seek 1 TiB", rpc.seek(f, 1 << 40, whence::SET))?;
    t.refused("write at 1 TiB", rpc.write(f, Lent::new(0, 16)), invalid);
    t.answered("read at 1 TiB", rpc.read(f, Lent::new(0, 16)), 0);
    must("seek i64::MAX", rpc.seek(f, i64::MAX as u64, whence::SET))?;
    t.refused("write at i64::MAX", rpc.write(f, Lent::new(0, 1)), invalid);
    t.refused(
        "seek past i64::MAX",
        rpc.seek(f, 1, whence::CURRENT),
        invalid,
    );
    t.refused("truncate to 1 TiB", rpc.truncate(f, 1 << 40), invalid);
    t.refused("truncate to u64::MAX", rpc.truncate(f, u64::MAX), invalid);
    t.answered(
        "size kept",
        rpc.fstat(f).map(|s| (s.size, s.mtime)),
        (f_stat.size, f_stat.mtime),
    );

    t.kind("flags");
    for bad in [
        flags::ACCESS,
        0o4,
        0o10,
        1 << 31,
        u32::MAX,
        flags::READ_ONLY | flags::TRUNCATE,
    ] {
        t.refused("open flags", rpc.open(b"/hostile/f", bad, 0), invalid);
        t.refused(
            "create flags",
            rpc.open(b"/hostile/new", bad | flags::CREATE, 0o644),
            invalid,
        );
    }
    t.refused(
        "open a directory to write",
        rpc.open(b"/hostile/d", flags::WRITE_ONLY, 0),
        Error::App(FsError::IsADirectory),
    );
    t.refused(
        "exclusive over a file",
        rpc.open(b"/hostile/f", create | flags::EXCLUSIVE, 0),
        Error::App(FsError::Exists),
    );
    for bad in [3, 4, 0x100, u32::MAX] {
        t.refused("whence", rpc.seek(f, 0, bad), invalid);
    }
    t.refused("directory seek", rpc.seek(d, 5, whence::SET), invalid);
    t.refused("directory seek", rpc.seek(d, 0, whence::END), invalid);

    t.kind("messages");
    let bad_label = Error::Rpc(RpcError::UnknownMethod);
    let word = u64::from_le_bytes(*b"/hostile");
    let mut full = vec![8u64; MSG_MAX];
    let mut path_fits = vec![u64::from_le_bytes(*b"aaaaaaaa"); MSG_MAX];
    if let Some(first) = path_fits.first_mut() {
        // A 952-byte path: fits the message, not PATH_BYTES.
        *first = (8 * (MSG_MAX - 1)) as u64;
    }
    if let Some(first) = full.first_mut() {
        *first = 8;
    }
    let raw_cases: [(u64, &[u64], Error<FsError>); 29] = [
        (0, &[], bad_label),
        (22, &[], bad_label),
        (0xffff, &[1, 2, 3], bad_label),
        (0x1_0001, &[], bad_label),
        (1, &[], bad_msg),
        (1, &[4, 0], bad_msg),
        (5, &[0, 0], bad_msg),
        (2, &[0, 0], bad_msg),
        (18, &[1], bad_msg),
        (20, &[], bad_msg),
        // Attribute words with bits that mean nothing.
        (20, &[8, 0, 8, 0, 0, word], bad_msg),
        (21, &[0, 1 << 40, 0, 0], bad_msg),
        // Byte lengths the message does not carry.
        (6, &[64], bad_msg),
        (6, &[100, word, word], bad_msg),
        (6, &[u64::MAX, word], bad_msg),
        (10, &[u64::MAX - 7, 0o755], bad_msg),
        (13, &[u64::MAX, 1, word], bad_msg),
        (13, &[1, u64::MAX, word], bad_msg),
        // Values out of their type's range.
        (2, &[1 << 32], bad_msg),
        (5, &[0, 0, 1 << 32], bad_msg),
        (3, &[0, u64::MAX, 1], bad_msg),
        (3, &[0, 0, u64::MAX], bad_msg),
        // Words left over after a short path.
        (6, &full, bad_msg),
        (6, &path_fits, too_long),
        // Well-formed, and refused by the VFS itself.
        (1, &[0, 0, 0], not_found),
        (2, &[70], bad_fd),
        (8, &[u64::from(u32::MAX)], bad_fd),
        (20, &[8, 1, 0, 0, 0, word], invalid),
        (21, &[70, 1, 0, 0], bad_fd),
    ];
    for (label, words, want) in raw_cases {
        t.refused("raw call", raw_call(fs, label, words), want);
    }
    // A length past seL4_MsgMaxLength: the kernel cuts it to 120 words.
    let mut regs = [8, word, word, word];
    let reply = rpc.0.call_regs(MessageInfo::new(6, 127), &mut regs);
    t.refused("127 words", reply_outcome(reply.label()), bad_msg);
    t.answered(
        "served after all that",
        rpc.stat(b"/hostile/f").map(|s| s.ino),
        f_stat.ino,
    );

    t.kind("tree");
    let busy = Error::App(FsError::Busy);
    t.refused("rmdir /", rpc.rmdir(b"/"), busy);
    t.refused("rmdir ///", rpc.rmdir(b"///"), busy);
    t.refused("unlink /", rpc.unlink(b"/"), busy);
    t.refused("rename /", rpc.rename(b"/", b"/hostile/root"), busy);
    t.refused("rename onto /", rpc.rename(b"/hostile/d", b"/"), busy);
    t.refused(
        "mkdir /",
        rpc.mkdir(b"/", 0o755),
        Error::App(FsError::Exists),
    );
    t.refused(
        "rename into its subdirectory",
        rpc.rename(b"/hostile/d", b"/hostile/d/sub/d"),
        invalid,
    );
    t.refused(
        "rename into itself",
        rpc.rename(b"/hostile/d", b"/hostile/d/d"),
        invalid,
    );
    t.refused(
        "rename via ..",
        rpc.rename(b"/hostile/d/sub/..", b"/hostile/e"),
        invalid,
    );
    t.refused(
        "rename onto ..",
        rpc.rename(b"/hostile/f", b"/hostile/d/.."),
        invalid,
    );
    t.refused("rmdir .", rpc.rmdir(b"/hostile/d/."), invalid);
    t.refused("rmdir ..", rpc.rmdir(b"/hostile/d/sub/.."), invalid);
    t.refused(
        "rmdir non-empty",
        rpc.rmdir(b"/hostile/d"),
        Error::App(FsError::NotEmpty),
    );
    t.refused(
        "rmdir a file",
        rpc.rmdir(b"/hostile/f"),
        Error::App(FsError::NotADirectory),
    );
    t.refused(
        "unlink a directory",
        rpc.unlink(b"/hostile/d"),
        Error::App(FsError::IsADirectory),
    );
    t.refused(
        "link a directory",
        rpc.link(b"/hostile/d", b"/hostile/dl"),
        Error::App(FsError::IsADirectory),
    );
    t.refused(
        "rename a file over a directory",
        rpc.rename(b"/hostile/f", b"/hostile/d"),
        Error::App(FsError::IsADirectory),
    );
    t.refused(
        "rename over a non-empty directory",
        rpc.rename(b"/hostile/d/sub", b"/hostile/d"),
        Error::App(FsError::NotEmpty),
    );
    t.answered(
        "the tree stands",
        (|| -> Outcome<(u64, u32, u64)> {
            Ok((
                rpc.stat(b"/hostile/d/sub/..")?.ino,
                rpc.stat(b"/hostile/d")?.links,
                rpc.stat(b"/")?.ino,
            ))
        })(),
        (must("stat", rpc.stat(b"/hostile/d"))?.ino, 3, root.ino),
    );

    t.kind("table");
    // Its own table full: the next open is refused, nothing created.
    must("close", rpc.close(ro))?;
    must("close", rpc.close(d))?;
    let mut held = vec![f];
    while held.len() < 64 {
        held.push(must("open", rpc.open(b"/hostile/f", flags::READ_ONLY, 0))?);
    }
    t.refused(
        "a 65th descriptor",
        rpc.open(b"/hostile/more", create, 0o644),
        Error::App(FsError::TooManyOpen),
    );
    t.refused("made nothing", rpc.stat(b"/hostile/more"), not_found);
    for fd in held {
        must("close", rpc.close(fd))?;
    }

    let counts: Vec<String> = t.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let summary = format!("{} attempts ({})", t.total(), counts.join(", "));
    if !t.wrong.is_empty() {
        for w in &t.wrong {
            println!("hostile: WRONG: {w}");
        }
        return Err(format!(
            "{} of {summary} not refused as they should be",
            t.wrong.len()
        ));
    }
    // Its file is as it wrote it.
    check_file(fs, "/hostile/f", 3000, 0x77, buf)?;
    Ok(format!("{summary} refused with the right errors"))
}

fn main(env: &Env) -> Result<(), String> {
    let fs = Files::new(env, "fs").map_err(|e| fail("fs", e))?;
    let mut buf = vec![0u8; CHUNK];
    let r = match env.name() {
        "victim" => victim(&fs, &mut buf),
        "hostile" => {
            let r = hostile(&fs, &mut buf);
            // Even after a failure: the victim then reports what it sees.
            let _ = fs.mkdir("/hostile", 0o755);
            let _ = fs.mkdir("/hostile/done", 0o755);
            r
        }
        other => Err(format!("no role named {other}")),
    };
    report(env.name(), r)
}

kaal_rt::component!(main);
