//! The file-system system tests' client, by component name (each through
//! the VFS on its `fs` channel):
//! - `reader`: checks every entry of the harness's host tree;
//! - `writer`: builds the written tree with creates, writes, renames (over
//!   a file, across directories), unlinks, truncation, links; syncs;
//! - `reboot`: writes the reboot tree and syncs, or, when it is there (the
//!   second boot), checks it;
//! - `filler`: fills the disk until "no space", then checks the files;
//! - `corrupt`: uses each damaged path of the corrupt image and expects
//!   errors, then reads the intact files and writes a new one;
//! - `left`, `right`: work in their own directories at once, then share one
//!   file;
//! - `holder`: holds every descriptor it may until it is killed (when
//!   `watcher` has seen it ready); restarted, it has them all again;
//! - `slow`: reads /big.bin whole, twice; `quick` meanwhile stats and
//!   reads /docs/a.txt 200 times;
//! - `worker`: syncs files, then works until the VFS is killed under it,
//!   and checks the synced files after its restart; `trigger` exits once
//!   the synced files are there, which makes the test's root task kill the
//!   VFS.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use kaal_client::file::{flags, Attrs, FileError, Files};
use kaal_protocols::file::FsError;
use kaal_rt::Env;
use kaal_test_components::fs::{
    check_file, check_tree, fail, list, refused, report, until_served, write_file, write_tree,
    Check,
};
use kaal_test_patterns::fs::{self as tree, Damage, Entry, Kind};

/// Bytes moved per read or write call (the lent region is as large).
const CHUNK: usize = 64 * 1024;

fn reader(fs: &Files, buf: &mut [u8]) -> Check<String> {
    let bytes = check_tree(fs, tree::HOST_TREE, &[], buf)?;
    Ok(format!(
        "{} entries and {bytes} bytes read as the host wrote them",
        tree::HOST_TREE.len()
    ))
}

fn writer(fs: &Files, buf: &mut [u8]) -> Check<String> {
    let (trunc, long) = tree::WRITTEN_TRUNCATED;
    let (first, last) = tree::WRITTEN_RENAMED;
    let (dir_chmod, file_chmod) = tree::WRITTEN_CHMOD;
    for e in tree::WRITTEN_TREE {
        match (e.path, e.kind) {
            (p, Kind::File { len, seed }) if p == trunc => {
                write_file(fs, p, long, seed, u32::from(e.mode), buf)?;
                let fd = fs.open(p, flags::WRITE_ONLY, 0).map_err(|x| fail(p, x))?;
                fs.truncate(fd, len).map_err(|x| fail(p, x))?;
                fs.close(fd).map_err(|x| fail(p, x))?;
            }
            (p, Kind::File { len, seed }) if p == last => {
                // A file in the way, which the rename replaces; the file
                // travels to another directory and back.
                write_file(fs, last, 10, 1, 0o600, buf)?;
                write_file(fs, first, len, seed, u32::from(e.mode), buf)?;
                fs.rename(first, "/out/sub/moving")
                    .map_err(|x| fail(first, x))?;
                fs.rename("/out/sub/moving", last)
                    .map_err(|x| fail(last, x))?;
            }
            (p, _) if p == dir_chmod || p == file_chmod => {
                let other = if p == dir_chmod { 0o777 } else { 0o666 };
                let first = Entry { mode: other, ..*e };
                write_tree(fs, core::slice::from_ref(&first), buf)?;
                let mode = Attrs {
                    mode: Some(e.mode),
                    ..Attrs::default()
                };
                if p == dir_chmod {
                    fs.setattr(p, true, mode).map_err(|x| fail(p, x))?;
                } else {
                    let fd = fs.open(p, flags::READ_ONLY, 0).map_err(|x| fail(p, x))?;
                    let attrs = Attrs {
                        mtime: Some(tree::WRITTEN_MTIME),
                        ..mode
                    };
                    fs.fsetattr(fd, attrs).map_err(|x| fail(p, x))?;
                    fs.close(fd).map_err(|x| fail(p, x))?;
                }
            }
            _ => write_tree(fs, core::slice::from_ref(e), buf)?,
        }
    }
    let mtime = fs.stat(file_chmod).map_err(|x| fail(file_chmod, x))?.mtime;
    if mtime != tree::WRITTEN_MTIME {
        return Err(format!("{file_chmod}'s mtime is {mtime}"));
    }
    // What is made and taken away again.
    write_file(fs, "/out/gone.txt", 5000, 7, 0o644, buf)?;
    fs.unlink("/out/gone.txt").map_err(|x| fail("unlink", x))?;
    fs.mkdir("/out/gone_dir", 0o755)
        .map_err(|x| fail("mkdir", x))?;
    fs.rmdir("/out/gone_dir").map_err(|x| fail("rmdir", x))?;
    if !refused(fs.stat("/out/gone.txt"), FsError::NotFound) {
        return Err(String::from("an unlinked file is still there"));
    }
    fs.sync().map_err(|x| fail("sync", x))?;
    let bytes = check_tree(fs, tree::WRITTEN_TREE, &[], buf)?;
    Ok(format!(
        "built and synced {} entries ({bytes} bytes)",
        tree::WRITTEN_TREE.len()
    ))
}

fn reboot(fs: &Files, buf: &mut [u8]) -> Check<String> {
    match fs.stat("/persist") {
        Err(FileError::Fs(FsError::NotFound)) => {
            write_tree(fs, tree::REBOOT_TREE, buf)?;
            fs.sync().map_err(|x| fail("sync", x))?;
            Ok(String::from("wrote the tree and synced"))
        }
        Ok(_) => {
            let bytes = check_tree(fs, tree::REBOOT_TREE, &[], buf)?;
            Ok(format!(
                "read the tree back after the reboot ({bytes} bytes)"
            ))
        }
        Err(e) => Err(fail("/persist", e)),
    }
}

fn filler(fs: &Files, buf: &mut [u8]) -> Check<String> {
    let fd = fs
        .open("/fill", flags::WRITE_ONLY | flags::CREATE, 0o644)
        .map_err(|x| fail("/fill", x))?;
    buf.fill(0xa5);
    let mut total = 0u64;
    let full = loop {
        match fs.write(fd, buf) {
            Ok(n) if n == buf.len() => total += n as u64,
            Ok(n) => {
                total += n as u64;
                // A short write: the next one says why.
                match fs.write(fd, buf) {
                    Err(FileError::Fs(FsError::NoSpace)) => break true,
                    other => return Err(format!("after a short write: {other:?}")),
                }
            }
            Err(FileError::Fs(FsError::NoSpace)) => break true,
            Err(e) => return Err(fail("/fill", e)),
        }
        if total > 1 << 32 {
            break false;
        }
    };
    if !full {
        return Err(String::from("the disk never filled"));
    }
    fs.close(fd).map_err(|x| fail("/fill", x))?;
    // Small files and directories until no block or inode is left.
    let mut made = 0;
    loop {
        let p = format!("/f{made}");
        match fs.mkdir(&p, 0o755) {
            Ok(()) => made += 1,
            Err(FileError::Fs(FsError::NoSpace)) => break,
            Err(e) => return Err(fail(&p, e)),
        }
        if made > 100_000 {
            return Err(String::from("directories never ran out"));
        }
    }
    for e in tree::REBOOT_TREE {
        if let Kind::File { len, seed } = e.kind {
            check_file(fs, e.path, len, seed, buf)?;
        }
    }
    fs.unlink("/fill").map_err(|x| fail("/fill", x))?;
    for i in 0..made {
        let p = format!("/f{i}");
        fs.rmdir(&p).map_err(|x| fail(&p, x))?;
    }
    fs.sync().map_err(|x| fail("sync", x))?;
    let bytes = check_tree(fs, tree::REBOOT_TREE, &[], buf)?;
    Ok(format!(
        "no space after {total} bytes and {made} directories; every file intact ({bytes} bytes) and the space given back"
    ))
}

fn corrupt(fs: &Files, buf: &mut [u8]) -> Check<String> {
    let mut seen = Vec::new();
    for d in Damage::ALL {
        let v = d.victim();
        let got = match d {
            Damage::InodeOutOfRange => fs.stat(v).map(|_| ()),
            Damage::BlockPastEnd => fs
                .open(v, flags::READ_ONLY, 0)
                .and_then(|fd| fs.read(fd, buf).map(|_| ())),
            Damage::RecLenOverrun => {
                fs.open(v, flags::READ_ONLY | flags::DIRECTORY, 0)
                    .and_then(|fd| {
                        let mut scratch = [0u8; 512];
                        fs.read_dir(fd, &mut scratch, |_| {})
                    })
            }
            Damage::DirectoryLoop => {
                // The loop resolves step by step without end of its own: a
                // deep path through it must still answer, and moving the
                // loop's top into itself is refused.
                let deep = "/loop/inner/back/inner/back/inner/back/inner/back/inner";
                let _ = fs.stat(deep);
                fs.rename("/loop", "/loop/inner/back/moved")
            }
            Damage::HugeSize => match fs.stat(v) {
                Ok(st) if st.size == tree::HUGE_SIZE => {
                    fs.open(v, flags::READ_WRITE, 0).and_then(|fd| {
                        fs.seek(fd, (tree::HUGE_SIZE - 16) as i64, 0)?;
                        fs.read(fd, buf)?;
                        fs.write(fd, b"past the end").map(|_| ())
                    })
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            },
        };
        match got {
            Err(FileError::Fs(e)) => seen.push(format!("{}: {e:?}", d.name())),
            Err(e) => return Err(format!("{}: {e}", d.name())),
            Ok(()) => return Err(format!("{}: {v} was used without an error", d.name())),
        }
    }
    for p in tree::CORRUPT_INTACT {
        let e = tree::find(tree::CORRUPT_TREE, p).ok_or("intact file not in the tree")?;
        if let Kind::File { len, seed } = e.kind {
            check_file(fs, p, len, seed, buf)?;
        }
    }
    write_file(fs, "/ok/new.bin", 20_000, 9, 0o644, buf)?;
    fs.sync().map_err(|x| fail("sync", x))?;
    check_file(fs, "/ok/new.bin", 20_000, 9, buf)?;
    Ok(format!(
        "refused {}; the intact files read right and a new one was written",
        seen.join(", ")
    ))
}

/// Polls until `path` exists (another client made it).
fn wait_for(fs: &Files, path: &str) -> Check {
    for _ in 0..1_000_000 {
        match fs.stat(path) {
            Ok(_) => return Ok(()),
            Err(FileError::Fs(FsError::NotFound)) => {}
            Err(e) => return Err(fail(path, e)),
        }
    }
    Err(format!("{path} never appeared"))
}

/// `left` and `right`: each builds, renames and removes files in its own
/// directory while the other does the same; each sees exactly its own.
/// Then both append to one shared file and each sees all of both.
fn pair(fs: &Files, me: &str, buf: &mut [u8]) -> Check<String> {
    const FILES: u64 = 40;
    let dir = format!("/{me}");
    let seed = if me == "left" { 0x10 } else { 0x20 };
    fs.mkdir(&dir, 0o755).map_err(|x| fail(&dir, x))?;
    let mut want = Vec::new();
    for i in 0..FILES {
        let p = format!("{dir}/file{i}");
        write_file(fs, &p, 100 + i * 37, seed + i, 0o644, buf)?;
        match i % 4 {
            0 => fs.unlink(&p).map_err(|x| fail(&p, x))?,
            1 => {
                let q = format!("{dir}/renamed{i}");
                fs.rename(&p, &q).map_err(|x| fail(&p, x))?;
                want.push((format!("renamed{i}"), i));
            }
            _ => want.push((format!("file{i}"), i)),
        }
    }
    let got = list(fs, &dir)?;
    let mut names: Vec<String> = want.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    if got != names {
        return Err(format!("{dir} holds {got:?}, expected {names:?}"));
    }
    for (n, i) in &want {
        check_file(fs, &format!("{dir}/{n}"), 100 + i * 37, seed + i, buf)?;
    }
    // The shared file: records of 16 bytes, appended whole.
    const RECORDS: usize = 64;
    let shared = "/shared.log";
    let fd = fs
        .open(
            shared,
            flags::READ_WRITE | flags::CREATE | flags::APPEND,
            0o644,
        )
        .map_err(|x| fail(shared, x))?;
    for i in 0..RECORDS {
        let mut rec = [b' '; 16];
        let text = format!("{me}:{i}");
        rec.get_mut(..text.len())
            .ok_or("record")?
            .copy_from_slice(text.as_bytes());
        rec[15] = b'\n';
        fs.write(fd, &rec).map_err(|x| fail(shared, x))?;
    }
    let mut all = vec![0u8; 2 * RECORDS * 16];
    for _ in 0..1_000_000 {
        let st = fs.fstat(fd).map_err(|x| fail(shared, x))?;
        if st.size == all.len() as u64 {
            break;
        }
    }
    fs.seek(fd, 0, 0).map_err(|x| fail(shared, x))?;
    let n = fs.read(fd, &mut all).map_err(|x| fail(shared, x))?;
    fs.close(fd).map_err(|x| fail(shared, x))?;
    let text = String::from_utf8_lossy(all.get(..n).ok_or("read")?).into_owned();
    for who in ["left", "right"] {
        for i in 0..RECORDS {
            let rec = format!("{who}:{i}");
            if !text.lines().any(|l| l.trim_end() == rec) {
                return Err(format!("{shared} lacks {rec}"));
            }
        }
    }
    Ok(format!(
        "{} files of its own in {dir}; {shared} holds both clients' {} records",
        want.len(),
        2 * RECORDS
    ))
}

/// Files `worker` syncs before the VFS is killed.
const SYNCED: u64 = 8;

fn worker(fs: &Files, buf: &mut [u8]) -> Check<String> {
    fs.mkdir("/synced", 0o755).map_err(|x| fail("/synced", x))?;
    fs.mkdir("/scratch", 0o755)
        .map_err(|x| fail("/scratch", x))?;
    for i in 0..SYNCED {
        write_file(
            fs,
            &format!("/synced/{i}"),
            5000 + i * 999,
            0x50 + i,
            0o644,
            buf,
        )?;
    }
    fs.sync().map_err(|x| fail("sync", x))?;
    // Held open from before the kill: the restarted VFS does not know it.
    let keep = fs
        .open("/synced/0", flags::READ_ONLY, 0)
        .map_err(|x| fail("/synced/0", x))?;
    fs.mkdir("/synced/done", 0o755)
        .map_err(|x| fail("done", x))?;
    // Work until the VFS is gone (the root task kills it when `trigger`
    // has seen `/synced/done`): a call answered `ServerGone`, or a
    // descriptor held open all along is unknown to the restarted VFS.
    let gone_error = |e: &String| e.contains("ServerGone") || e.contains("BadDescriptor");
    let mut round = 0u64;
    let gone = loop {
        let r = fs
            .fstat(keep)
            .map_err(|x| fail("the kept descriptor", x))
            .and_then(|_| {
                write_file(
                    fs,
                    &format!("/scratch/{}", round % 16),
                    3000,
                    round,
                    0o644,
                    buf,
                )
            })
            .and_then(|()| {
                let i = round % SYNCED;
                check_file(fs, &format!("/synced/{i}"), 5000 + i * 999, 0x50 + i, buf)
            });
        match r {
            Ok(()) => {}
            Err(e) if gone_error(&e) => break round,
            Err(e) => return Err(e),
        }
        round += 1;
        if round > 100_000 {
            return Err(String::from("the VFS was never killed"));
        }
    };
    // The VFS is back (or coming back): what was synced is intact.
    until_served(1000, || fs.stat("/synced/0")).map_err(|x| fail("after the restart", x))?;
    for i in 0..SYNCED {
        check_file(fs, &format!("/synced/{i}"), 5000 + i * 999, 0x50 + i, buf)?;
    }
    // And it serves writes again.
    write_file(fs, "/scratch/after", 10_000, 0x99, 0o644, buf)?;
    fs.sync().map_err(|x| fail("sync", x))?;
    check_file(fs, "/scratch/after", 10_000, 0x99, buf)?;
    Ok(format!(
        "the VFS went away after {gone} rounds; {SYNCED} synced files intact after its restart, and it serves again"
    ))
}

/// Descriptors a client may hold (the VFS's `MAX_OPEN`).
const HELD: usize = 64;

/// `holder`: holds every descriptor it may, then waits to be killed (the
/// root task kills it when `watcher` has seen `/held.ready`). Restarted,
/// it opens a file again: the VFS closed its old descriptors when it began.
fn holder(fs: &Files, restarts: u64) -> Check<String> {
    if restarts > 0 {
        let fd = fs
            .open("/held", flags::READ_ONLY, 0)
            .map_err(|x| fail("after the restart", x))?;
        return Ok(format!(
            "restarted; its {} old descriptors were closed, {fd:?} is free again",
            HELD
        ));
    }
    for _ in 0..HELD {
        fs.open("/held", flags::READ_ONLY | flags::CREATE, 0o644)
            .map_err(|x| fail("/held", x))?;
    }
    if !refused(fs.open("/held", flags::READ_ONLY, 0), FsError::TooManyOpen) {
        return Err(String::from("a descriptor past the limit"));
    }
    fs.mkdir("/held.ready", 0o755)
        .map_err(|x| fail("/held.ready", x))?;
    for _ in 0..10_000_000 {
        fs.stat("/held").map_err(|x| fail("/held", x))?;
    }
    Err(String::from("never killed"))
}

fn trigger(fs: &Files) -> Check<String> {
    wait_for(fs, "/synced/done")?;
    Ok(String::from("the worker's files are synced"))
}

/// Reads /big.bin whole, again and again: with the VFS's small cache each
/// read waits for the disk.
fn slow(fs: &Files, buf: &mut [u8]) -> Check<String> {
    const ROUNDS: u32 = 2;
    let (path, len, seed) = ("/big.bin", 3 * 1024 * 1024, 0x1008);
    for _ in 0..ROUNDS {
        check_file(fs, path, len, seed, buf)?;
    }
    // `quick` works until this is there.
    fs.mkdir("/slow.done", 0o755)
        .map_err(|e| fail("/slow.done", e))?;
    Ok(format!(
        "{path} read whole {ROUNDS} times as the host wrote it"
    ))
}

/// Stats and reads a small file that stays cached, for as long as `slow`
/// reads (and at least `ROUNDS` times).
fn quick(fs: &Files, buf: &mut [u8]) -> Check<String> {
    const ROUNDS: u32 = 200;
    const MOST: u32 = 1_000_000;
    let (path, len, seed) = ("/docs/a.txt", 1023, 0x1001);
    for round in 0..MOST {
        let st = fs.stat(path).map_err(|e| fail(path, e))?;
        if st.size != len {
            return Err(format!("{path}: size {} instead of {len}", st.size));
        }
        check_file(fs, path, len, seed, buf)?;
        if round >= ROUNDS && fs.stat("/slow.done").is_ok() {
            return Ok(format!(
                "at least {ROUNDS} stats and reads of {path} answered right while slow read"
            ));
        }
    }
    Err(String::from("slow never finished"))
}

fn main(env: &Env) -> Result<(), String> {
    let fs = Files::new(env, "fs").map_err(|e| fail("fs", e))?;
    let mut buf = vec![0u8; CHUNK];
    let r = match env.name() {
        "reader" => reader(&fs, &mut buf),
        "writer" => writer(&fs, &mut buf),
        "reboot" => reboot(&fs, &mut buf),
        "filler" => filler(&fs, &mut buf),
        "corrupt" => corrupt(&fs, &mut buf),
        "left" | "right" => pair(&fs, env.name(), &mut buf),
        "worker" => worker(&fs, &mut buf),
        "trigger" => trigger(&fs),
        "slow" => slow(&fs, &mut buf),
        "quick" => quick(&fs, &mut buf),
        "holder" => holder(&fs, env.restarts()),
        "watcher" => wait_for(&fs, "/held.ready").map(|()| String::from("the holder is ready")),
        other => Err(format!("no role named {other}")),
    };
    report(env.name(), r)
}

kaal_rt::component!(main);
