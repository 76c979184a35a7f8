//! File trees of the file-system tests: what the harness puts in an ext2
//! image (or expects to find in one after a run), and what the test
//! components expect to read or leave behind. Static, so that both the
//! host harness and `no_std` components without a heap share one truth.

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// A regular file whose byte `i` is `content(seed, i)`.
    File {
        len: u64,
        seed: u64,
    },
    /// A regular file holding `text`: for files that must read as text (a
    /// web page).
    Text {
        text: &'static str,
    },
    /// A symbolic link holding `target` (relative or absolute, as written).
    Symlink {
        target: &'static str,
    },
    /// A second name of the file at `to` (an earlier entry): same inode.
    HardLink {
        to: &'static str,
    },
}

/// One entry of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path inside the file system, e.g. "/docs/a.txt".
    pub path: &'static str,
    pub kind: Kind,
    /// Permission bits (`0o644`); a symlink's are `0o777`, a hard link's
    /// those of the file it names.
    pub mode: u16,
}

const fn dir(path: &'static str, mode: u16) -> Entry {
    Entry {
        path,
        kind: Kind::Dir,
        mode,
    }
}

const fn file(path: &'static str, len: u64, seed: u64, mode: u16) -> Entry {
    Entry {
        path,
        kind: Kind::File { len, seed },
        mode,
    }
}

const fn text(path: &'static str, text: &'static str, mode: u16) -> Entry {
    Entry {
        path,
        kind: Kind::Text { text },
        mode,
    }
}

const fn symlink(path: &'static str, target: &'static str) -> Entry {
    Entry {
        path,
        kind: Kind::Symlink { target },
        mode: 0o777,
    }
}

const fn hard_link(path: &'static str, to: &'static str, mode: u16) -> Entry {
    Entry {
        path,
        kind: Kind::HardLink { to },
        mode,
    }
}

/// Byte `offset` of a file made with `seed` (the disk pattern's mixer: no
/// period, so a block read from the wrong place reads wrong).
pub fn content(seed: u64, offset: u64) -> u8 {
    crate::disk::pattern(seed, offset)
}

/// The entry of `tree` at `path`.
pub fn find<'t>(tree: &'t [Entry], path: &str) -> Option<&'t Entry> {
    tree.iter().find(|e| e.path == path)
}

/// The folder holding `path` ("/" for a top-level entry).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => path.get(..i).unwrap_or("/"),
    }
}

/// The last component of `path`.
pub fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The file an entry's content comes from: itself, or a hard link's target.
pub fn resolve<'t>(tree: &'t [Entry], entry: &'t Entry) -> &'t Entry {
    match entry.kind {
        Kind::HardLink { to } => tree.iter().find(|e| e.path == to).unwrap_or(entry),
        _ => entry,
    }
}

/// A file name of exactly 255 bytes, the most an ext2 directory entry holds.
pub const LONG_NAME_PATH: &str = "/long_name_abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789xxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// The tree the harness builds into an image (`ext2 = "host"`) for the guest
/// to read: nested folders, both kinds of symlink (a slow one too, longer
/// than the inode's 60 bytes), a hard link, sizes around block boundaries
/// (1 KiB blocks: 12 direct blocks end at 12 KiB; 4 KiB blocks: at 48 KiB),
/// a 3 MiB file (double indirect with 1 KiB blocks), an empty file, the
/// longest name and several modes.
pub const HOST_TREE: &[Entry] = &[
    dir("/docs", 0o755),
    file("/docs/a.txt", 1023, 0x1001, 0o644),
    file("/docs/b.txt", 1024, 0x1002, 0o600),
    file("/docs/c.txt", 1025, 0x1003, 0o644),
    file("/docs/page.bin", 4097, 0x1004, 0o640),
    file("/docs/indirect_1k.bin", 12 * 1024 + 1, 0x1005, 0o644),
    file("/docs/indirect_4k.bin", 12 * 4096 + 1, 0x1006, 0o444),
    dir("/a", 0o755),
    dir("/a/b", 0o700),
    dir("/a/b/c", 0o755),
    file("/a/b/c/deep.txt", 100, 0x1007, 0o400),
    file("/big.bin", 3 * 1024 * 1024, 0x1008, 0o644),
    file("/empty", 0, 0x1009, 0o644),
    file("/run.sh", 64, 0x100a, 0o755),
    file(LONG_NAME_PATH, 255, 0x100b, 0o644),
    dir("/links", 0o755),
    symlink("/links/relative", "../docs/a.txt"),
    symlink("/links/absolute", "/a/b/c/deep.txt"),
    symlink(
        "/links/slow",
        "../a/b/c/../../b/c/../c/./././././././././././././././././././deep.txt",
    ),
    hard_link("/links/hard", "/docs/a.txt", 0o644),
];

/// What `fs_write_persist` leaves behind (`fs_check = { tree = "written" }`)
/// on an empty file system.
pub const WRITTEN_TREE: &[Entry] = &[
    dir("/out", 0o755),
    file("/out/small.txt", 100, 0x2001, 0o644),
    file("/out/block.bin", 4096, 0x2002, 0o644),
    file("/out/big.bin", 300 * 1024 + 7, 0x2003, 0o644),
    dir("/out/sub", 0o755),
    dir("/out/sub/deeper", 0o700),
    file("/out/sub/deeper/note.txt", 1500, 0x2004, 0o600),
    symlink("/out/link", "small.txt"),
    hard_link("/out/hard", "/out/small.txt", 0o644),
    // Written WRITTEN_TRUNCATED.1 bytes long, then truncated: the pattern's start.
    file("/out/trunc.bin", 5000, 0x2005, 0o644),
    // Written as WRITTEN_RENAMED.0, then renamed.
    file("/out/renamed.txt", 2048, 0x2006, 0o644),
    dir("/logs", 0o755),
    file("/logs/empty", 0, 0x2007, 0o644),
];

/// The truncated file of [`WRITTEN_TREE`] and the length it was written
/// with before the truncation.
pub const WRITTEN_TRUNCATED: (&str, u64) = ("/out/trunc.bin", 70_000);

/// The renamed file of [`WRITTEN_TREE`]: its first name and its last.
pub const WRITTEN_RENAMED: (&str, &str) = ("/out/tmp.txt", "/out/renamed.txt");

/// The directory and the file of [`WRITTEN_TREE`] made with other
/// permission bits (0o777, 0o666) and then given theirs: the directory by
/// path, the file by a read-only descriptor, which also sets its
/// modification time to [`WRITTEN_MTIME`].
pub const WRITTEN_CHMOD: (&str, &str) = ("/out/sub/deeper", "/out/sub/deeper/note.txt");

/// The modification time `fs_write_persist` gives [`WRITTEN_CHMOD`]'s file.
pub const WRITTEN_MTIME: u64 = 1_577_934_245;

/// A small tree that must survive a reboot.
pub const REBOOT_TREE: &[Entry] = &[
    dir("/persist", 0o755),
    file("/persist/one.txt", 777, 0x3001, 0o644),
    file("/persist/big.bin", 100 * 1024, 0x3002, 0o644),
    file("/persist/last.txt", 1, 0x3003, 0o600),
];

/// Ways the harness damages an image (`damage = [...]`), each on its own
/// victim of [`CORRUPT_TREE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The victim's directory entry names an inode beyond the inode count.
    InodeOutOfRange,
    /// The victim file's first block pointer lies beyond the file system.
    BlockPastEnd,
    /// The last entry of the victim folder's first block has a rec_len
    /// running past the block's end.
    RecLenOverrun,
    /// The victim's directory entry names an ancestor folder's inode.
    DirectoryLoop,
    /// The victim file's size is 2^50 bytes (its blocks unchanged).
    HugeSize,
}

impl Damage {
    pub const ALL: [Damage; 5] = [
        Damage::InodeOutOfRange,
        Damage::BlockPastEnd,
        Damage::RecLenOverrun,
        Damage::DirectoryLoop,
        Damage::HugeSize,
    ];

    /// Its name in tests.toml.
    pub fn name(self) -> &'static str {
        match self {
            Damage::InodeOutOfRange => "inode_out_of_range",
            Damage::BlockPastEnd => "block_past_end",
            Damage::RecLenOverrun => "rec_len_overrun",
            Damage::DirectoryLoop => "directory_loop",
            Damage::HugeSize => "huge_size",
        }
    }

    pub fn from_name(name: &str) -> Option<Damage> {
        Damage::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The path whose use must fail with a corruption error.
    pub fn victim(self) -> &'static str {
        match self {
            Damage::InodeOutOfRange => "/bad_inode/victim",
            Damage::BlockPastEnd => "/bad_block/victim.bin",
            Damage::RecLenOverrun => "/bad_rec_len",
            Damage::DirectoryLoop => "/loop/inner/back",
            Damage::HugeSize => "/huge/victim.bin",
        }
    }
}

/// The size the huge-size damage gives its victim.
pub const HUGE_SIZE: u64 = 1 << 50;

/// Each damage and the path it makes unusable.
pub const CORRUPT_VICTIMS: [(Damage, &str); 5] = [
    (Damage::InodeOutOfRange, "/bad_inode/victim"),
    (Damage::BlockPastEnd, "/bad_block/victim.bin"),
    (Damage::RecLenOverrun, "/bad_rec_len"),
    (Damage::DirectoryLoop, "/loop/inner/back"),
    (Damage::HugeSize, "/huge/victim.bin"),
];

/// Files the damages leave intact: the guest must still read them right.
pub const CORRUPT_INTACT: &[&str] = &["/ok/a.txt", "/ok/big.bin", "/bad_inode/neighbour.txt"];

/// The tree of `fs_corrupt_image` before the harness damages it: one victim
/// per [`Damage`] (each in its own folder) and intact files.
pub const CORRUPT_TREE: &[Entry] = &[
    dir("/ok", 0o755),
    file("/ok/a.txt", 3000, 0x4001, 0o644),
    file("/ok/big.bin", 64 * 1024, 0x4002, 0o644),
    dir("/bad_inode", 0o755),
    file("/bad_inode/neighbour.txt", 500, 0x4003, 0o644),
    file("/bad_inode/victim", 500, 0x4004, 0o644),
    dir("/bad_block", 0o755),
    file("/bad_block/victim.bin", 8192, 0x4005, 0o644),
    dir("/bad_rec_len", 0o755),
    file("/bad_rec_len/victim", 10, 0x4006, 0o644),
    dir("/loop", 0o755),
    dir("/loop/inner", 0o755),
    dir("/loop/inner/back", 0o755),
    dir("/huge", 0o755),
    file("/huge/victim.bin", 4096, 0x4007, 0o644),
];

/// The file the file-system benchmark reads (`fs_bench`): 16 MiB, read in
/// 64 KiB requests once cold and once cached.
pub const BENCH_FILE: (&str, u64) = ("/big.bin", 16 << 20);

/// The tree of the device benchmark's disk (`ext2 = "bench"`): the file
/// [`BENCH_FILE`] alone, at the root so that `fs.stat_ticks` resolves one
/// name.
pub const BENCH_TREE: &[Entry] = &[file(BENCH_FILE.0, BENCH_FILE.1, 0x5001, 0o644)];

/// The home page of [`WEB_TREE`].
pub const WEB_INDEX: &str = "<!DOCTYPE html>
<html>
<head><meta charset=\"utf-8\"><title>KaaL</title></head>
<body>
<h1>KaaL</h1>
<p>This page comes from an ext2 file system, through KaaL's VFS, TCP/IP service and HTTP server, on seL4.</p>
<p><a href=\"sub/page.html\">A page in a folder</a> and <a href=\"big.bin\">1 MiB of data</a>.</p>
</body>
</html>
";

/// The page in a folder of [`WEB_TREE`].
pub const WEB_SUB_PAGE: &str = "<!DOCTYPE html>
<html>
<head><meta charset=\"utf-8\"><title>KaaL: a page in a folder</title></head>
<body><p>A page in /www/sub. <a href=\"../index.html\">Back</a>.</p></body>
</html>
";

/// The tree of the HTTP server's disk (`ext2 = "web"`): what it serves
/// from /www, checked byte for byte by the harness's `http` peer.
pub const WEB_TREE: &[Entry] = &[
    dir("/www", 0o755),
    text("/www/index.html", WEB_INDEX, 0o644),
    file("/www/big.bin", 1 << 20, 0x6001, 0o644),
    dir("/www/sub", 0o755),
    text("/www/sub/page.html", WEB_SUB_PAGE, 0o644),
];

/// The trees by the names tests.toml gives them (`ext2 = "host"`,
/// `fs_check = { tree = "written" }`); "empty" is the empty tree.
pub fn tree(name: &str) -> Option<&'static [Entry]> {
    Some(match name {
        "empty" => &[],
        "host" => HOST_TREE,
        "written" => WRITTEN_TREE,
        "reboot" => REBOOT_TREE,
        "corrupt" => CORRUPT_TREE,
        "bench" => BENCH_TREE,
        "web" => WEB_TREE,
        _ => return None,
    })
}

/// The names [`tree`] knows.
pub const TREE_NAMES: [&str; 7] = [
    "empty", "host", "written", "reboot", "corrupt", "bench", "web",
];

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::collections::HashSet;

    fn trees() -> impl Iterator<Item = (&'static str, &'static [Entry])> {
        TREE_NAMES.into_iter().map(|n| (n, tree(n).unwrap_or(&[])))
    }

    #[test]
    fn paths_are_unique_absolute_and_parents_come_first() {
        for (name, tree) in trees() {
            let mut seen = HashSet::new();
            for e in tree {
                assert!(
                    e.path.starts_with('/') && !e.path.ends_with('/'),
                    "{name}: {}",
                    e.path
                );
                assert!(!e.path.contains("//"), "{name}: {}", e.path);
                assert!(seen.insert(e.path), "{name}: {} twice", e.path);
                let p = parent(e.path);
                if p != "/" {
                    let parent_entry = find(tree, p);
                    assert!(
                        parent_entry.is_some_and(|d| d.kind == Kind::Dir && seen.contains(d.path)),
                        "{name}: {}'s folder {p} is not an earlier directory",
                        e.path
                    );
                }
                assert!(name_ok(e), "{name}: {}", e.path);
            }
        }
    }

    fn name_ok(e: &Entry) -> bool {
        let n = name(e.path);
        !n.is_empty() && n.len() <= 255 && n != "." && n != ".." && n != "lost+found"
    }

    #[test]
    fn hard_links_name_earlier_files_with_their_mode() {
        for (name, tree) in trees() {
            for (i, e) in tree.iter().enumerate() {
                match e.kind {
                    Kind::HardLink { to } => {
                        let target = tree[..i].iter().find(|t| t.path == to);
                        let target = target.unwrap_or_else(|| panic!("{name}: {} -> {to}", e.path));
                        assert!(matches!(target.kind, Kind::File { .. }), "{name}: {to}");
                        assert_eq!(target.mode, e.mode, "{name}: {}", e.path);
                        assert_eq!(resolve(tree, e), target);
                    }
                    Kind::Symlink { target } => {
                        assert_eq!(e.mode, 0o777);
                        assert!(!target.is_empty() && target.len() < 4096);
                    }
                    Kind::Dir | Kind::File { .. } | Kind::Text { .. } => {
                        assert!(e.mode & !0o7777 == 0)
                    }
                }
            }
        }
    }

    #[test]
    fn the_host_tree_has_what_the_tests_need() {
        let long = find(HOST_TREE, LONG_NAME_PATH).map(|e| e.path);
        assert_eq!(long.map(|p| name(p).len()), Some(255));
        assert!(LONG_NAME_PATH
            .bytes()
            .skip(1)
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        let sizes: HashSet<u64> = HOST_TREE
            .iter()
            .filter_map(|e| match e.kind {
                Kind::File { len, .. } => Some(len),
                _ => None,
            })
            .collect();
        for len in [0, 1023, 1024, 1025, 4097, 12 * 1024 + 1, 3 << 20] {
            assert!(sizes.contains(&len), "no file of {len} bytes");
        }
        let depth = HOST_TREE
            .iter()
            .filter(|e| e.kind == Kind::Dir)
            .map(|e| e.path.matches('/').count())
            .max();
        assert!(depth >= Some(3));
        let links: std::vec::Vec<&str> = HOST_TREE
            .iter()
            .filter_map(|e| match e.kind {
                Kind::Symlink { target } => Some(target),
                _ => None,
            })
            .collect();
        assert!(links.iter().any(|t| t.starts_with('/')));
        assert!(links.iter().any(|t| !t.starts_with('/')));
        assert!(links.iter().any(|t| t.len() > 60), "a slow symlink");
        let modes: HashSet<u16> = HOST_TREE.iter().map(|e| e.mode).collect();
        for m in [0o644, 0o600, 0o755, 0o400] {
            assert!(modes.contains(&m));
        }
    }

    #[test]
    fn written_tree_and_its_history_agree() {
        let big = WRITTEN_TREE
            .iter()
            .any(|e| matches!(e.kind, Kind::File { len, .. } if len >= 300 * 1024));
        assert!(big);
        let (path, before) = WRITTEN_TRUNCATED;
        assert!(
            matches!(find(WRITTEN_TREE, path).map(|e| e.kind), Some(Kind::File { len, .. }) if len < before)
        );
        let (from, to) = WRITTEN_RENAMED;
        assert!(find(WRITTEN_TREE, from).is_none() && find(WRITTEN_TREE, to).is_some());
        // The changed modes differ from the ones the entries are made with.
        let (dir, file) = WRITTEN_CHMOD;
        assert!(find(WRITTEN_TREE, dir).is_some_and(|e| e.kind == Kind::Dir && e.mode != 0o777));
        assert!(find(WRITTEN_TREE, file)
            .is_some_and(|e| matches!(e.kind, Kind::File { .. }) && e.mode != 0o666));
        assert_eq!(parent(from), parent(to));
    }

    #[test]
    fn every_damage_has_a_victim_of_its_own() {
        let mut folders = HashSet::new();
        for (damage, victim) in CORRUPT_VICTIMS {
            assert_eq!(damage.victim(), victim);
            assert_eq!(Damage::from_name(damage.name()), Some(damage));
            assert!(find(CORRUPT_TREE, victim).is_some(), "{victim}");
            let top = victim.split('/').nth(1);
            assert!(folders.insert(top), "{victim} shares its folder");
        }
        for path in CORRUPT_INTACT {
            assert!(matches!(
                find(CORRUPT_TREE, path).map(|e| e.kind),
                Some(Kind::File { .. })
            ));
        }
        assert_eq!(Damage::from_name("other"), None);
    }

    #[test]
    fn the_bench_tree_holds_the_bench_file() {
        let (path, len) = BENCH_FILE;
        assert_eq!(tree("bench"), Some(BENCH_TREE));
        assert!(matches!(
            find(BENCH_TREE, path).map(|e| e.kind),
            Some(Kind::File { len: l, .. }) if l == len
        ));
        assert_eq!(parent(path), "/");
        assert_eq!(len, 16 << 20);
    }

    #[test]
    fn the_web_tree_has_its_pages_and_a_mebibyte() {
        assert_eq!(tree("web"), Some(WEB_TREE));
        assert!(matches!(
            find(WEB_TREE, "/www/big.bin").map(|e| e.kind),
            Some(Kind::File { len: 1048576, .. })
        ));
        for (path, page) in [
            ("/www/index.html", WEB_INDEX),
            ("/www/sub/page.html", WEB_SUB_PAGE),
        ] {
            assert_eq!(
                find(WEB_TREE, path).map(|e| e.kind),
                Some(Kind::Text { text: page })
            );
            assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
        }
    }

    #[test]
    fn every_name_has_its_tree() {
        for n in TREE_NAMES {
            assert!(tree(n).is_some(), "{n}");
        }
        assert_eq!(tree("nope"), None);
    }

    #[test]
    fn paths_split_into_parent_and_name() {
        assert_eq!((parent("/a"), name("/a")), ("/", "a"));
        assert_eq!((parent("/a/b/c"), name("/a/b/c")), ("/a/b", "c"));
        assert_eq!(content(1, 0), crate::disk::pattern(1, 0));
    }
}
