//! The VFS served through the file protocol: every request goes through
//! the generated client, `file_dispatch` and the service, as a client's
//! message would arrive. ext2 (an image made by `mkfs.ext2 -d`) at `/`, a
//! RamFs at `/tmp`.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::*;
use kaal_protocols::file::{flags, kind, whence, Attrs, FsError, PATH_BYTES};
use kaal_rpc::{Lent, RpcError};
use vfs::{BOUNCE_BYTES, MAX_OPEN, SYMLINK_LIMIT};

const RW_CREATE: u32 = flags::READ_WRITE | flags::CREATE;

#[test]
fn files_on_ext2_and_ramfs_open_read_write_seek_stat_close() {
    let sys = System::new();
    let c = sys.client(1);
    assert_eq!(c.read_file(b"/a.txt").unwrap(), b"hello from ext2\n");
    assert_eq!(
        c.read_file(b"d/b.txt").unwrap(),
        b"bee\n",
        "relative from /"
    );
    for dir in [&b"/"[..], b"/tmp/"] {
        let path = [dir, b"new.bin"].concat();
        let fd = c.open(&path, RW_CREATE).unwrap();
        assert_eq!(fd, 0, "the lowest free descriptor");
        // Larger than the bounce buffer: several chunks each way.
        let data = pattern(150_000);
        assert_eq!(c.write(fd, &data).unwrap(), data.len() as u64);
        assert_eq!(c.stub.seek(fd, 0, whence::CURRENT).unwrap(), 150_000);
        assert_eq!(c.stub.seek(fd, 10, whence::SET).unwrap(), 10);
        assert_eq!(c.read(fd, 5).unwrap(), &data[10..15]);
        assert_eq!(
            c.stub.seek(fd, (-4i64) as u64, whence::END).unwrap(),
            149_996
        );
        assert_eq!(
            c.read(fd, 100).unwrap(),
            &data[149_996..],
            "short at the end"
        );
        assert_eq!(c.read(fd, 100).unwrap(), b"", "0 at the end");
        // A write past the end leaves zeros between.
        c.stub.seek(fd, 150_010, whence::SET).unwrap();
        c.write(fd, b"z").unwrap();
        let st = c.stub.fstat(fd).unwrap();
        assert_eq!((st.size, st.kind, st.perm), (150_011, kind::REGULAR, 0o644));
        assert_eq!(st.mtime, 1_700_000_000, "the service's time");
        assert_eq!(st.dev, u32::from(dir != b"/"));
        assert_eq!(c.stub.stat(&path).unwrap(), st);
        c.stub.close(fd).unwrap();
        assert_eq!(c.stub.close(fd), Err(app(FsError::BadDescriptor)));
        let back = c.read_file(&path).unwrap();
        assert_eq!(&back[..150_000], &data[..]);
        assert_eq!(&back[150_000..], b"\0\0\0\0\0\0\0\0\0\0z");
        // O_TRUNC empties, APPEND writes at the end whatever the offset.
        let fd = c
            .open(&path, flags::WRITE_ONLY | flags::TRUNCATE | flags::APPEND)
            .unwrap();
        c.write(fd, b"one").unwrap();
        c.stub.seek(fd, 0, whence::SET).unwrap();
        c.write(fd, b"two").unwrap();
        c.stub.truncate(fd, 5).unwrap();
        c.stub.close(fd).unwrap();
        assert_eq!(c.read_file(&path).unwrap(), b"onetw");
    }
}

#[test]
fn access_modes_and_open_flags() {
    let sys = System::new();
    let c = sys.client(1);
    let ro = c.open(b"/a.txt", flags::READ_ONLY).unwrap();
    assert_eq!(c.write(ro, b"x"), Err(app(FsError::BadDescriptor)));
    assert_eq!(c.stub.truncate(ro, 0), Err(app(FsError::BadDescriptor)));
    let wo = c.open(b"/a.txt", flags::WRITE_ONLY).unwrap();
    assert_eq!(wo, 1);
    assert_eq!(c.read(wo, 4), Err(app(FsError::BadDescriptor)));
    assert_eq!(
        c.open(b"/a.txt", RW_CREATE | flags::EXCLUSIVE),
        Err(app(FsError::Exists))
    );
    assert_eq!(
        c.open(b"/nope", flags::READ_ONLY),
        Err(app(FsError::NotFound))
    );
    assert_eq!(
        c.open(b"/a.txt", flags::READ_ONLY | flags::DIRECTORY),
        Err(app(FsError::NotADirectory))
    );
    assert_eq!(
        c.open(b"/d", flags::READ_WRITE),
        Err(app(FsError::IsADirectory))
    );
    assert_eq!(
        c.open(b"/a.txt/", flags::READ_ONLY),
        Err(app(FsError::NotADirectory))
    );
    assert_eq!(
        c.read(c.open(b"/d", flags::READ_ONLY).unwrap(), 4),
        Err(app(FsError::IsADirectory))
    );
    assert_eq!(c.readdir(ro, 100), Err(app(FsError::NotADirectory)));
    assert_eq!(c.read_file(b"/a.txt").unwrap(), b"hello from ext2\n");
}

#[test]
fn namespace_operations_on_both_file_systems() {
    let sys = System::new();
    let c = sys.client(1);
    for base in [&b"/"[..], b"/tmp/"] {
        let p = |s: &str| [base, s.as_bytes()].concat();
        c.stub.mkdir(&p("m"), 0o750).unwrap();
        assert_eq!(c.stub.mkdir(&p("m"), 0o750), Err(app(FsError::Exists)));
        let st = c.stat(&p("m")).unwrap();
        assert_eq!((st.kind, st.perm, st.links), (kind::DIRECTORY, 0o750, 2));
        c.write_file(&p("m/f"), b"data").unwrap();
        assert_eq!(c.stub.rmdir(&p("m")), Err(app(FsError::NotEmpty)));
        assert_eq!(c.stub.unlink(&p("m")), Err(app(FsError::IsADirectory)));
        assert_eq!(c.stub.rmdir(&p("m/f")), Err(app(FsError::NotADirectory)));
        // A hard link, then rename over it: the link count follows.
        c.stub.link(&p("m/f"), &p("m/g")).unwrap();
        assert_eq!(c.stat(&p("m/f")).unwrap().links, 2);
        c.write_file(&p("h"), b"other").unwrap();
        c.stub.rename(&p("h"), &p("m/g")).unwrap();
        assert_eq!(c.stat(&p("m/f")).unwrap().links, 1);
        assert_eq!(c.read_file(&p("m/g")).unwrap(), b"other");
        assert_eq!(c.stat(&p("h")), Err(app(FsError::NotFound)));
        // A directory moved into another: its `..` follows.
        c.stub.mkdir(&p("n"), 0o755).unwrap();
        c.stub.rename(&p("m"), &p("n/m2")).unwrap();
        assert_eq!(c.read_file(&p("n/m2/../m2/f")).unwrap(), b"data");
        assert_eq!(c.stat(&p("n")).unwrap().links, 3);
        assert_eq!(
            c.stub.rename(&p("n"), &p("n/m2/inside")),
            Err(app(FsError::Invalid)),
            "a directory into itself"
        );
        assert_eq!(c.names(&p("n/m2")), ["f", "g"]);
        c.stub.unlink(&p("n/m2/f")).unwrap();
        c.stub.unlink(&p("n/m2/g")).unwrap();
        c.stub.rmdir(&p("n/m2")).unwrap();
        c.stub.rmdir(&p("n")).unwrap();
        assert_eq!(c.stat(&p("n")), Err(app(FsError::NotFound)));
    }
    assert_eq!(c.names(b"/"), ["a.txt", "d", "lost+found", "rel", "tmp"]);
    assert!(c.names(b"/tmp").is_empty());
}

#[test]
fn readdir_pages_resume_where_they_stopped() {
    let sys = System::new();
    let c = sys.client(1);
    for base in ["/d", "/tmp"] {
        for i in 0..60 {
            c.write_file(format!("{base}/file-number-{i:03}").as_bytes(), b"")
                .unwrap();
        }
        let whole = c.list_with(base.as_bytes(), 64 << 10);
        assert_eq!(whole.len(), 62 + usize::from(base == "/d"));
        // Pages of 40 bytes hold one or two records: nothing lost, nothing twice.
        assert_eq!(c.list_with(base.as_bytes(), 40), whole);
        let fd = c.open(base.as_bytes(), flags::READ_ONLY).unwrap();
        assert_eq!(
            c.readdir(fd, 5),
            Err(app(FsError::Invalid)),
            "no record fits"
        );
        let first = c.readdir(fd, 40).unwrap();
        assert_eq!(first[..], whole[..first.len()]);
        // A rewind starts again.
        assert_eq!(c.stub.seek(fd, 0, whence::SET).unwrap(), 0);
        assert_eq!(c.readdir(fd, 40).unwrap(), first);
        assert_eq!(c.stub.seek(fd, 3, whence::SET), Err(app(FsError::Invalid)));
        c.stub.close(fd).unwrap();
    }
    let kinds: Vec<_> = c
        .list(b"/")
        .into_iter()
        .map(|(n, _, k)| (String::from_utf8(n).unwrap(), k))
        .filter(|(n, _)| n == "rel" || n == "d" || n == "a.txt")
        .collect();
    assert_eq!(kinds.len(), 3);
    for (name, k) in kinds {
        let want = match name.as_str() {
            "rel" => kind::SYMLINK,
            "d" => kind::DIRECTORY,
            _ => kind::REGULAR,
        };
        assert_eq!(k, want, "{name}");
    }
}

#[test]
fn mounts_dotdot_crossdevice_and_busy() {
    let sys = System::new();
    let c = sys.client(1);
    let root = c.stat(b"/").unwrap();
    let tmp = c.stat(b"/tmp").unwrap();
    assert_eq!((root.dev, tmp.dev), (0, 1));
    assert_eq!(c.stat(b"/tmp/..").unwrap(), root);
    assert_eq!(c.stat(b"/..").unwrap(), root, "`..` of `/` is `/`");
    assert_eq!(c.stat(b"/../../tmp/./../tmp").unwrap(), tmp);
    assert_eq!(c.read_file(b"/tmp/../a.txt").unwrap(), b"hello from ext2\n");
    let tmp_list = c.list(b"/tmp");
    assert_eq!(tmp_list[1].0, b"..");
    c.write_file(b"/tmp/x", b"in ram").unwrap();
    c.stub.mkdir(b"/tmp/dir", 0o755).unwrap();
    assert_eq!(c.stat(b"/tmp/dir/../..").unwrap(), root);
    let before = sys.snapshot();
    assert_eq!(
        c.stub.rename(b"/tmp/x", b"/x"),
        Err(app(FsError::CrossDevice))
    );
    assert_eq!(
        c.stub.rename(b"/a.txt", b"/tmp/a.txt"),
        Err(app(FsError::CrossDevice))
    );
    assert_eq!(
        c.stub.link(b"/tmp/x", b"/x"),
        Err(app(FsError::CrossDevice))
    );
    assert_eq!(c.stub.rmdir(b"/tmp"), Err(app(FsError::Busy)));
    assert_eq!(c.stub.rename(b"/tmp", b"/tmp2"), Err(app(FsError::Busy)));
    assert_eq!(c.stub.rename(b"/d", b"/tmp"), Err(app(FsError::Busy)));
    assert_eq!(c.stub.unlink(b"/tmp"), Err(app(FsError::Busy)));
    assert_eq!(c.stub.rmdir(b"/"), Err(app(FsError::Busy)));
    assert_eq!(c.stub.mkdir(b"/tmp", 0o755), Err(app(FsError::Exists)));
    assert_eq!(c.stub.mkdir(b"/", 0o755), Err(app(FsError::Exists)));
    assert_eq!(c.stub.rmdir(b"/tmp/.."), Err(app(FsError::Invalid)));
    assert_eq!(sys.snapshot(), before, "refusals change nothing");
    // A second mount on a directory of the RamFs; not on a mount root.
    let mut svc = sys.svc.borrow_mut();
    assert_eq!(
        svc.vfs().mount(b"/tmp", Box::new(vfs::RamFs::new(10))),
        Err(FsError::Busy)
    );
    assert_eq!(
        svc.vfs().mount(b"/a.txt", Box::new(vfs::RamFs::new(10))),
        Err(FsError::NotADirectory)
    );
    // One file of a 5-byte name and 10 bytes of data.
    let small = vfs::NODE_COST + vfs::ENTRY_COST + 5 + 10;
    assert_eq!(
        svc.vfs()
            .mount(b"/tmp/dir", Box::new(vfs::RamFs::new(small))),
        Ok(2)
    );
    drop(svc);
    assert_eq!(c.stat(b"/tmp/dir").unwrap().dev, 2);
    assert_eq!(c.stat(b"/tmp/dir/..").unwrap(), c.stat(b"/tmp").unwrap());
    c.write_file(b"/tmp/dir/small", b"0123456789").unwrap();
    let fd = c.open(b"/tmp/dir/small", flags::WRITE_ONLY).unwrap();
    c.stub.seek(fd, 0, whence::END).unwrap();
    assert_eq!(c.write(fd, b"!"), Err(app(FsError::NoSpace)));
}

#[test]
fn symbolic_links_loops_and_across_mounts() {
    let sys = System::new();
    let c = sys.client(1);
    assert_eq!(c.read_file(b"/rel").unwrap(), b"bee\n", "made by mkfs");
    assert_eq!(c.readlink(b"/rel").unwrap(), b"d/b.txt");
    assert_eq!(c.lstat(b"/rel").unwrap().kind, kind::SYMLINK);
    assert_eq!(c.stat(b"/rel").unwrap().kind, kind::REGULAR);
    // Relative to the link's directory, across the mount both ways.
    c.stub.symlink(b"../a.txt", b"/tmp/up").unwrap();
    assert_eq!(c.read_file(b"/tmp/up").unwrap(), b"hello from ext2\n");
    c.write_file(b"/tmp/r", b"ram file").unwrap();
    c.stub.symlink(b"/tmp/r", b"/d/abs").unwrap();
    c.stub.symlink(b"../tmp", b"/d/tmplink").unwrap();
    assert_eq!(c.read_file(b"/d/abs").unwrap(), b"ram file");
    assert_eq!(c.read_file(b"/d/tmplink/r").unwrap(), b"ram file");
    assert_eq!(c.stat(b"/d/tmplink/").unwrap().dev, 1, "trailing / follows");
    assert_eq!(c.lstat(b"/d/tmplink").unwrap().dev, 0);
    // a -> b -> a, on each file system.
    for base in ["/", "/tmp/"] {
        let a = format!("{base}loop_a");
        let b = format!("{base}loop_b");
        c.stub.symlink(b.as_bytes(), a.as_bytes()).unwrap();
        c.stub.symlink(a.as_bytes(), b.as_bytes()).unwrap();
        assert_eq!(c.stat(a.as_bytes()), Err(app(FsError::SymlinkLoop)));
        assert_eq!(
            c.open(format!("{a}/x").as_bytes(), RW_CREATE),
            Err(app(FsError::SymlinkLoop))
        );
        assert_eq!(c.lstat(a.as_bytes()).unwrap().kind, kind::SYMLINK);
    }
    // A chain of exactly the limit resolves; one more does not.
    c.write_file(b"/tmp/end", b"end").unwrap();
    c.stub.symlink(b"end", b"/tmp/l0").unwrap();
    for i in 1..=SYMLINK_LIMIT {
        let target = format!("l{}", i - 1);
        c.stub
            .symlink(target.as_bytes(), format!("/tmp/l{i}").as_bytes())
            .unwrap();
    }
    let last = format!("/tmp/l{}", SYMLINK_LIMIT - 1);
    assert_eq!(c.read_file(last.as_bytes()).unwrap(), b"end");
    let over = format!("/tmp/l{SYMLINK_LIMIT}");
    assert_eq!(c.stat(over.as_bytes()), Err(app(FsError::SymlinkLoop)));
    // A final link not followed: O_NOFOLLOW, readlink of a non-link.
    assert_eq!(
        c.open(b"/rel", flags::READ_ONLY | flags::NO_FOLLOW),
        Err(app(FsError::SymlinkLoop))
    );
    assert_eq!(c.readlink(b"/a.txt"), Err(app(FsError::NotASymlink)));
    // A dangling link, and one removed by unlink (not its target).
    c.stub.symlink(b"/nowhere", b"/tmp/dangling").unwrap();
    assert_eq!(c.stat(b"/tmp/dangling"), Err(app(FsError::NotFound)));
    c.stub.unlink(b"/d/abs").unwrap();
    assert_eq!(c.read_file(b"/tmp/r").unwrap(), b"ram file");
    // readlink into a short range gives what fits, as readlink(2).
    let n = c.stub.readlink(b"/tmp/up", Lent::new(0, 3)).unwrap();
    assert_eq!(n, 3);
}

#[test]
fn clients_have_their_own_descriptors() {
    let sys = System::new();
    let (one, two) = (sys.client(1), sys.client(2));
    let fd = one.open(b"/a.txt", flags::READ_ONLY).unwrap();
    assert_eq!(two.read(fd, 4), Err(app(FsError::BadDescriptor)));
    assert_eq!(two.stub.close(fd), Err(app(FsError::BadDescriptor)));
    assert_eq!(two.stub.fstat(fd), Err(app(FsError::BadDescriptor)));
    assert_eq!(
        two.stub.seek(fd, 0, whence::SET),
        Err(app(FsError::BadDescriptor))
    );
    assert_eq!(two.open(b"/a.txt", flags::READ_ONLY).unwrap(), 0);
    // Each reads at its own offset.
    assert_eq!(one.read(fd, 5).unwrap(), b"hello");
    assert_eq!(two.read(0, 3).unwrap(), b"hel");
    assert_eq!(one.read(fd, 6).unwrap(), b" from ");
    // The limit is per client, and the lowest number is reused.
    for i in 1..MAX_OPEN {
        assert_eq!(one.open(b"/a.txt", flags::READ_ONLY).unwrap(), i as u32);
    }
    assert_eq!(
        one.open(b"/tmp/new", RW_CREATE),
        Err(app(FsError::TooManyOpen))
    );
    assert_eq!(
        one.stat(b"/tmp/new"),
        Err(app(FsError::NotFound)),
        "not created"
    );
    assert_eq!(two.open(b"/a.txt", flags::READ_ONLY).unwrap(), 1);
    one.stub.close(17).unwrap();
    one.stub.close(3).unwrap();
    assert_eq!(one.open(b"/a.txt", flags::READ_ONLY).unwrap(), 3);
    // A client that starts again says so: its old descriptors close, the
    // other client's stay, and it has all 64 again.
    one.stub.begin().unwrap();
    assert_eq!(one.read(0, 1), Err(app(FsError::BadDescriptor)));
    assert_eq!(two.read(0, 2).unwrap(), b"lo", "the other client's stay");
    assert_eq!(sys.svc.borrow().files().open_count(1), 0);
    assert_eq!(one.open(b"/a.txt", flags::READ_ONLY).unwrap(), 0);
}

#[test]
fn hostile_requests_get_errors_and_change_nothing() {
    let sys = System::new();
    let c = sys.client(1);
    c.write_file(b"/tmp/f", b"0123456789").unwrap();
    let fd = c.open(b"/tmp/f", flags::READ_WRITE).unwrap();
    c.stub.seek(fd, 4, whence::SET).unwrap();
    let before = sys.snapshot();
    let long_name = vec![b'n'; 256];
    let mut path256 = b"/tmp/".to_vec();
    path256.extend(&long_name);
    let too_long = vec![b'/'; PATH_BYTES + 1];
    // Bad flags and modes.
    for fl in [1 << 30, flags::ACCESS, flags::READ_ONLY | flags::TRUNCATE] {
        assert_eq!(
            c.open(b"/tmp/g", fl | flags::CREATE),
            Err(app(FsError::Invalid))
        );
    }
    // Paths: NUL, empty, too long, names of 256 bytes.
    assert_eq!(c.open(b"/tmp/g\0x", RW_CREATE), Err(app(FsError::Invalid)));
    assert_eq!(c.open(b"", RW_CREATE), Err(app(FsError::NotFound)));
    assert_eq!(c.stub.mkdir(b"", 0o755), Err(app(FsError::NotFound)));
    assert_eq!(c.open(&too_long, RW_CREATE), Err(app(FsError::NameTooLong)));
    assert_eq!(c.open(&path256, RW_CREATE), Err(app(FsError::NameTooLong)));
    assert_eq!(
        c.stub.mkdir(&path256, 0o755),
        Err(app(FsError::NameTooLong))
    );
    assert_eq!(
        c.stub.symlink(b"x", &[b"/", &long_name[..]].concat()),
        Err(app(FsError::NameTooLong))
    );
    assert_eq!(c.stub.symlink(b"", b"/tmp/s"), Err(app(FsError::Invalid)));
    assert_eq!(
        c.stub.symlink(b"a\0b", b"/tmp/s"),
        Err(app(FsError::Invalid))
    );
    assert_eq!(
        c.stub.rename(b"/tmp/f", &path256),
        Err(app(FsError::NameTooLong))
    );
    assert_eq!(c.stub.unlink(b"/tmp/f/"), Err(app(FsError::NotADirectory)));
    assert_eq!(c.stub.unlink(b"/tmp/."), Err(app(FsError::Invalid)));
    // Seeks: bad whence, negative results, overflow.
    assert_eq!(c.stub.seek(fd, 0, 7), Err(app(FsError::Invalid)));
    assert_eq!(
        c.stub.seek(fd, (-5i64) as u64, whence::CURRENT),
        Err(app(FsError::Invalid))
    );
    assert_eq!(
        c.stub.seek(fd, (-11i64) as u64, whence::END),
        Err(app(FsError::Invalid))
    );
    assert_eq!(
        c.stub.seek(fd, i64::MAX as u64, whence::CURRENT),
        Err(app(FsError::Invalid))
    );
    assert_eq!(
        c.stub.seek(fd, 0, whence::CURRENT).unwrap(),
        4,
        "offset kept"
    );
    assert_eq!(c.stub.truncate(fd, u64::MAX), Err(app(FsError::Invalid)));
    assert_eq!(c.stub.truncate(fd, 1 << 40), Err(app(FsError::NoSpace)));
    // Lent ranges outside the region: refused by dispatch.
    let region = REGION as u64;
    for lent in [
        Lent::new(region, 1),
        Lent::new(region - 3, 4),
        Lent::new(u64::MAX, 2),
        Lent::new(1, u64::MAX),
    ] {
        assert_eq!(c.stub.read(fd, lent), Err(rpc(RpcError::BadMessage)));
        assert_eq!(c.stub.write(fd, lent), Err(rpc(RpcError::BadMessage)));
        assert_eq!(c.stub.readdir(fd, lent), Err(rpc(RpcError::BadMessage)));
    }
    // A client that lends no region can name only the empty range.
    let stranger = sys.client(5);
    assert_eq!(
        stranger.stub.read(0, Lent::new(0, 1)),
        Err(rpc(RpcError::BadMessage))
    );
    assert_eq!(
        stranger.stub.read(0, Lent::new(0, 0)),
        Err(app(FsError::BadDescriptor))
    );
    // A region that fails: BadRegion, the offset stays.
    sys.svc.borrow().regions().failing.set(Some(1));
    assert_eq!(c.read(fd, 3), Err(app(FsError::BadRegion)));
    assert_eq!(
        c.stub.write(fd, Lent::new(0, 3)),
        Err(app(FsError::BadRegion))
    );
    sys.svc.borrow().regions().failing.set(None);
    assert_eq!(
        c.stub.seek(fd, 0, whence::CURRENT).unwrap(),
        4,
        "offset kept"
    );
    // Huge offsets: reading there gives nothing; writing there is refused.
    c.stub.seek(fd, i64::MAX as u64, whence::SET).unwrap();
    assert_eq!(c.read(fd, 10).unwrap(), b"");
    assert_eq!(c.write(fd, b"x"), Err(app(FsError::Invalid)));
    let root_fd = c.open(b"/a.txt", flags::READ_WRITE).unwrap();
    c.stub.seek(root_fd, 1 << 40, whence::SET).unwrap();
    assert_eq!(
        c.write(root_fd, b"x"),
        Err(app(FsError::Invalid)),
        "past ext2's 1 KiB-block limit"
    );
    // Nor a size there, even of a hole: e2fsck would call it bad.
    assert_eq!(
        c.stub.truncate(root_fd, 1 << 40),
        Err(app(FsError::Invalid))
    );
    c.stub.close(root_fd).unwrap();
    c.stub.seek(fd, 4, whence::SET).unwrap();
    // Raw messages: unknown methods, missing and extra words, lying lengths.
    assert_eq!(
        RpcError::from_label(sys.raw(1, 99, &[]).label),
        RpcError::UnknownMethod
    );
    for (label, words) in [
        (1u64, &[][..]),       // open without arguments
        (1, &[100, 0, 0][..]), // a path length the message does not carry
        (2, &[0, 1][..]),      // close with an extra word
        (2, &[1 << 40][..]),   // an fd that is no u32
        (5, &[0, 0][..]),      // seek without whence
    ] {
        assert_eq!(
            RpcError::from_label(sys.raw(1, label, words).label),
            RpcError::BadMessage,
            "{label} {words:?}"
        );
    }
    assert_eq!(sys.snapshot(), before, "no refusal changed the state");
    assert_eq!(c.read(fd, 100).unwrap(), b"456789");
}

#[test]
fn a_workload_leaves_the_ext2_image_clean_for_e2fsck() {
    let sys = System::new();
    let c = sys.client(1);
    sys.svc.borrow_mut().set_time(1_750_000_000);
    c.stub.mkdir(b"/work", 0o755).unwrap();
    for i in 0..40 {
        let data = pattern(i * 997);
        c.write_file(format!("/work/f{i}").as_bytes(), &data)
            .unwrap();
    }
    c.stub.mkdir(b"/work/sub", 0o700).unwrap();
    c.write_file(b"/work/sub/big", &pattern(300_000)).unwrap();
    for i in (0..40).step_by(3) {
        c.stub.unlink(format!("/work/f{i}").as_bytes()).unwrap();
    }
    c.stub.rename(b"/work/f1", b"/work/sub/moved").unwrap();
    c.stub.rename(b"/work/f2", b"/work/f4").unwrap();
    c.stub.link(b"/work/f5", b"/d/f5-link").unwrap();
    c.stub
        .symlink(
            b"/tmp/and/a/long/target/path/that/does/not/fit/into/the/inode/itself",
            b"/work/slow",
        )
        .unwrap();
    c.stub.symlink(b"sub/big", b"/work/fast").unwrap();
    let fd = c.open(b"/work/sub/big", flags::READ_WRITE).unwrap();
    c.stub.truncate(fd, 70_000).unwrap();
    c.stub.seek(fd, 0, whence::END).unwrap();
    c.write(fd, b"tail").unwrap();
    c.stub.close(fd).unwrap();
    c.stub.mkdir(b"/gone", 0o755).unwrap();
    c.stub.rmdir(b"/gone").unwrap();
    c.stub.sync().unwrap();
    let (ok, out) = fsck(sys.dir.path(), &sys.disk.borrow());
    assert!(ok, "e2fsck -fn:\n{out}");
    // What the service reads back agrees with what was written.
    let mut big = pattern(300_000);
    big.truncate(70_000);
    big.extend(b"tail");
    assert_eq!(c.read_file(b"/work/fast").unwrap(), big);
    assert_eq!(c.read_file(b"/work/sub/moved").unwrap(), pattern(997));
    assert_eq!(c.read_file(b"/work/f4").unwrap(), pattern(2 * 997));
    assert_eq!(c.stat(b"/d/f5-link").unwrap().links, 2);
    assert_eq!(c.stat(b"/work").unwrap().mtime, 1_750_000_000);
    assert_eq!(
        c.readlink(b"/work/slow").unwrap().len(),
        b"/tmp/and/a/long/target/path/that/does/not/fit/into/the/inode/itself".len()
    );
}

#[test]
fn descriptors_of_a_removed_file_go_stale_and_never_reach_a_reused_inode() {
    let sys = System::new();
    let (one, two) = (sys.client(1), sys.client(2));
    for base in ["/", "/tmp/"] {
        let p = |s: &str| format!("{base}{s}").into_bytes();
        one.write_file(&p("old"), b"old data").unwrap();
        one.write_file(&p("kept"), b"kept").unwrap();
        one.stub.link(&p("kept"), &p("kept2")).unwrap();
        let fd = one.open(&p("old"), flags::READ_WRITE).unwrap();
        let other = two.open(&p("old"), flags::READ_ONLY).unwrap();
        let kept = one.open(&p("kept"), flags::READ_ONLY).unwrap();
        let ino = one.stat(&p("old")).unwrap().ino;
        one.stub.unlink(&p("old")).unwrap();
        // Removing one of two names leaves the file, and its descriptors.
        one.stub.unlink(&p("kept2")).unwrap();
        assert_eq!(one.read(kept, 4).unwrap(), b"kept");
        // The freed inode number is given to the next file.
        one.write_file(&p("new"), b"new data").unwrap();
        assert_eq!(one.stat(&p("new")).unwrap().ino, ino, "{base}: reused");
        assert_eq!(one.read(fd, 8), Err(app(FsError::BadDescriptor)));
        assert_eq!(one.write(fd, b"x"), Err(app(FsError::BadDescriptor)));
        assert_eq!(two.read(other, 8), Err(app(FsError::BadDescriptor)));
        assert_eq!(two.stub.fstat(other), Err(app(FsError::BadDescriptor)));
        one.stub.close(fd).unwrap();
        two.stub.close(other).unwrap();
        assert_eq!(one.read_file(&p("new")).unwrap(), b"new data");
        // Renaming over a file and removing a directory do the same.
        one.write_file(&p("victim"), b"v").unwrap();
        let fd = one.open(&p("victim"), flags::READ_ONLY).unwrap();
        one.stub.rename(&p("new"), &p("victim")).unwrap();
        assert_eq!(one.read(fd, 1), Err(app(FsError::BadDescriptor)));
        one.stub.mkdir(&p("dir"), 0o755).unwrap();
        let dfd = one.open(&p("dir"), flags::READ_ONLY).unwrap();
        one.stub.rmdir(&p("dir")).unwrap();
        assert_eq!(one.readdir(dfd, 100), Err(app(FsError::BadDescriptor)));
        sys.svc.borrow_mut().close_all(1);
    }
    one.stub.sync().unwrap();
    let (ok, out) = fsck(sys.dir.path(), &sys.disk.borrow());
    assert!(ok, "e2fsck -fn:\n{out}");
}

#[test]
fn one_request_moves_at_most_one_chunk() {
    let sys = System::new();
    let c = sys.client(1);
    let data = pattern(REGION);
    for path in [&b"/big"[..], b"/tmp/big"] {
        c.write_file(path, &data).unwrap();
        let fd = c.open(path, flags::READ_WRITE).unwrap();
        // The whole 200 KiB region asked for: one bounce buffer comes back
        // (short, not the end), and the offset moves by as much.
        let n = c.stub.read(fd, Lent::new(0, REGION as u64)).unwrap();
        assert_eq!(n, BOUNCE_BYTES as u64);
        assert_eq!(c.stub.seek(fd, 0, whence::CURRENT).unwrap(), n);
        assert_eq!(c.read(fd, 10).unwrap(), &data[n as usize..][..10]);
        // A write likewise.
        c.stub.seek(fd, 0, whence::SET).unwrap();
        let n = c.stub.write(fd, Lent::new(0, REGION as u64)).unwrap();
        assert_eq!(n, BOUNCE_BYTES as u64);
        assert_eq!(c.stub.seek(fd, 0, whence::CURRENT).unwrap(), n);
        c.stub.close(fd).unwrap();
    }
}

#[test]
fn setattr_and_fsetattr_change_mode_and_times_on_both_file_systems() {
    let sys = System::new();
    let (c, other) = (sys.client(1), sys.client(2));
    let mode = |m| Attrs {
        mode: Some(m),
        ..Attrs::default()
    };
    c.write_file(b"/tmp/t.txt", b"tmp\n").unwrap();
    c.stub.symlink(b"t.txt", b"/tmp/rel").unwrap();
    sys.svc.borrow_mut().set_time(1_800_000_000);
    for (file, link) in [
        (&b"/d/b.txt"[..], &b"/rel"[..]),
        (b"/tmp/t.txt", b"/tmp/rel"),
    ] {
        let before = c.stat(file).unwrap();
        c.stub.setattr(file, 0, mode(0o4640)).unwrap();
        let st = c.stat(file).unwrap();
        assert_eq!(
            (st.kind, st.perm, st.ctime),
            (kind::REGULAR, 0o4640, 1_800_000_000)
        );
        assert_eq!(
            (st.mtime, st.atime, st.size),
            (before.mtime, before.atime, before.size)
        );
        // Times only, through the link (followed): the mode stays.
        let times = Attrs {
            mode: None,
            atime: Some(1_000),
            mtime: Some(1_577_934_245),
        };
        c.stub.setattr(link, 0, times).unwrap();
        let st = c.stat(file).unwrap();
        assert_eq!(
            (st.perm, st.atime, st.mtime),
            (0o4640, 1_000, 1_577_934_245)
        );
        // Not followed: the link's own times; its mode is not supported.
        let link_before = c.lstat(link).unwrap();
        let only_mtime = Attrs {
            mtime: Some(42),
            ..Attrs::default()
        };
        c.stub.setattr(link, flags::NO_FOLLOW, only_mtime).unwrap();
        let l = c.lstat(link).unwrap();
        assert_eq!(
            (l.kind, l.perm, l.mtime),
            (kind::SYMLINK, link_before.perm, 42)
        );
        assert_eq!(c.stat(file).unwrap().mtime, 1_577_934_245);
        assert_eq!(
            c.stub.setattr(link, flags::NO_FOLLOW, mode(0o600)),
            Err(app(FsError::NotSupported))
        );
        // By descriptor, whatever the access mode; another client's
        // number names nothing of this one.
        let fd = c.open(file, flags::READ_ONLY).unwrap();
        c.stub.fsetattr(fd, mode(0o600)).unwrap();
        assert_eq!(c.stub.fstat(fd).unwrap().perm, 0o600);
        assert_eq!(
            other.stub.fsetattr(fd, mode(0o777)),
            Err(app(FsError::BadDescriptor))
        );
        c.stub.close(fd).unwrap();
        assert_eq!(
            c.stub.fsetattr(fd, mode(0o777)),
            Err(app(FsError::BadDescriptor))
        );
        // A directory's mode keeps its kind.
        let dir = if file.starts_with(b"/tmp") {
            &b"/tmp"[..]
        } else {
            b"/d"
        };
        c.stub.setattr(dir, 0, mode(0o700)).unwrap();
        let d = c.stat(dir).unwrap();
        assert_eq!((d.kind, d.perm), (kind::DIRECTORY, 0o700));
    }
    // Refusals change nothing.
    let before = sys.snapshot();
    assert_eq!(
        c.stub.setattr(b"/a.txt", 0, mode(0o10000)),
        Err(app(FsError::Invalid))
    );
    assert_eq!(
        c.stub.setattr(b"/a.txt", 1, mode(0o644)),
        Err(app(FsError::Invalid))
    );
    assert_eq!(
        c.stub.setattr(b"/nothing", 0, mode(0o644)),
        Err(app(FsError::NotFound))
    );
    assert_eq!(
        c.stub.setattr(b"/a.txt/x", 0, mode(0o644)),
        Err(app(FsError::NotADirectory))
    );
    assert_eq!(
        c.stub.setattr(b"", 0, mode(0o644)),
        Err(app(FsError::NotFound))
    );
    // An attribute word with bits that mean nothing is a malformed message.
    // The fixed words (the path's length, flags, three attribute words)
    // come before the path's bytes.
    let path = u64::from_le_bytes(*b"/a.txt\0\0");
    for head in [8u64, 1 << 40] {
        assert_eq!(
            RpcError::from_label(sys.raw(1, 20, &[6, 0, head, 0, 0, path]).label),
            RpcError::BadMessage,
            "{head:#x}"
        );
    }
    // Well-formed, the same words reach the service (and its refusal).
    let reply = sys.raw(1, 20, &[6, 1, 1, 0, 0, path]);
    assert_eq!(
        kaal_rpc::app_code(reply.label),
        Some(FsError::Invalid as u16)
    );
    assert_eq!(sys.snapshot(), before);
    // ext2 keeps 32 signed bits of seconds: a later time is the latest.
    let far = Attrs {
        mtime: Some(u64::MAX),
        ..Attrs::default()
    };
    c.stub.setattr(b"/a.txt", 0, far).unwrap();
    assert_eq!(c.stat(b"/a.txt").unwrap().mtime, i32::MAX as u64);
    c.stub.sync().unwrap();
    let (ok, out) = fsck(sys.dir.path(), &sys.disk.borrow());
    assert!(ok, "e2fsck -fn:\n{out}");
}

/// The VFS keeps names it looked up: every change of a name must reach the
/// next lookup, on ext2 and on the RamFs.
#[test]
fn names_looked_up_before_follow_every_change() {
    let sys = System::new();
    let c = sys.client(1);
    for dir in ["/", "/tmp/"] {
        let p = |name: &str| alloc_path(dir, name);
        let create = |path: &[u8], body: &[u8]| {
            let fd = c.open(path, RW_CREATE).unwrap();
            c.write(fd, body).unwrap();
            c.stub.close(fd).unwrap();
            c.stub.stat(path).unwrap().ino
        };
        // unlink, then a new file by the same name.
        let first = create(&p("n1"), b"one");
        assert_eq!(c.stub.stat(&p("n1")).unwrap().ino, first);
        c.stub.unlink(&p("n1")).unwrap();
        assert_eq!(c.stub.stat(&p("n1")), Err(app(FsError::NotFound)));
        create(&p("n1"), b"again");
        assert_eq!(c.read_file(&p("n1")).unwrap(), b"again");
        // rename over a name looked up before, and away from one.
        let moved = create(&p("n2"), b"two");
        assert_eq!(c.read_file(&p("n1")).unwrap(), b"again");
        c.stub.rename(&p("n2"), &p("n1")).unwrap();
        assert_eq!(c.stub.stat(&p("n1")).unwrap().ino, moved);
        assert_eq!(c.read_file(&p("n1")).unwrap(), b"two");
        assert_eq!(c.stub.stat(&p("n2")), Err(app(FsError::NotFound)));
        // rmdir, then a file by the directory's name; a directory moved
        // keeps its names, and its `..` is the new parent.
        c.stub.mkdir(&p("d1"), 0o755).unwrap();
        c.stub.mkdir(&p("d2"), 0o755).unwrap();
        create(&p("d1/inner"), b"in");
        assert_eq!(c.read_file(&p("d1/inner")).unwrap(), b"in");
        assert_eq!(
            c.stub.stat(&p("d1/..")).unwrap().ino,
            c.stub.stat(dir.as_bytes()).unwrap().ino
        );
        c.stub.rename(&p("d1"), &p("d2/d1")).unwrap();
        assert_eq!(c.read_file(&p("d2/d1/inner")).unwrap(), b"in");
        assert_eq!(c.stub.stat(&p("d1/inner")), Err(app(FsError::NotFound)));
        assert_eq!(
            c.stub.stat(&p("d2/d1/..")).unwrap().ino,
            c.stub.stat(&p("d2")).unwrap().ino
        );
        c.stub.unlink(&p("d2/d1/inner")).unwrap();
        c.stub.rmdir(&p("d2/d1")).unwrap();
        assert_eq!(c.stub.stat(&p("d2/d1")), Err(app(FsError::NotFound)));
        create(&p("d2/d1"), b"file now");
        assert_eq!(c.stub.stat(&p("d2/d1")).unwrap().kind, kind::REGULAR);
        // A symbolic link replaced by another.
        c.stub.symlink(b"n1", &p("l")).unwrap();
        assert_eq!(c.read_file(&p("l")).unwrap(), b"two");
        c.stub.unlink(&p("l")).unwrap();
        c.stub.symlink(b"d2/d1", &p("l")).unwrap();
        assert_eq!(c.read_file(&p("l")).unwrap(), b"file now");
    }
}

fn alloc_path(dir: &str, name: &str) -> Vec<u8> {
    [dir.as_bytes(), name.as_bytes()].concat()
}
