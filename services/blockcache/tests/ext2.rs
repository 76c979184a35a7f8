//! ext2 over the cache over a recording disk: what a flush leaves passes
//! `e2fsck -fn` and reads back without the cache; and a crash at any point
//! of a flush's write-back leaves an image `e2fsck -fy` repairs, with every
//! file synced before that flush intact.

// Test helpers: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use blockcache::{BlockCache, DiskOp, MemDisk, SECTOR};
use ext2::{Ext2, MemDevice, ROOT_INODE};

const BLOCK: usize = 4096;

type CachedFs = Ext2<BlockCache<MemDisk, Vec<u8>>>;

/// A program of e2fsprogs, from /usr/sbin or /sbin (often not on PATH).
/// Panics with the install command when it is missing: these tests must not
/// pass by skipping.
fn e2fs_tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found in /usr/sbin or /sbin: install it with `apt-get install e2fsprogs`")
        })
}

/// An 8 MiB ext2 image with 4 KiB blocks of `files` (path, content).
fn image(dir: &Path, files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let src = dir.join("src");
    for (path, content) in files {
        let path = src.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    fs::create_dir_all(&src).unwrap();
    let image = dir.join("image");
    let output = Command::new(e2fs_tool("mkfs.ext2"))
        .args(["-q", "-b", "4096", "-d"])
        .arg(&src)
        .arg(&image)
        .arg("8M")
        .output()
        .unwrap();
    assert!(output.status.success(), "mkfs.ext2: {output:?}");
    fs::read(&image).unwrap()
}

/// `e2fsck` with `flag` (`-fn` or `-fy`) on `bytes`; its exit code and the
/// image after it.
fn fsck(dir: &Path, bytes: &[u8], flag: &str) -> (i32, Vec<u8>, String) {
    let path = dir.join("check");
    fs::write(&path, bytes).unwrap();
    let output = Command::new(e2fs_tool("e2fsck"))
        .arg(flag)
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (
        output.status.code().unwrap_or(-1),
        fs::read(&path).unwrap(),
        text,
    )
}

/// `len` bytes that differ with `seed` and position.
fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len.div_ceil(4) as u32)
        .flat_map(|i| (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)).to_le_bytes())
        .take(len)
        .collect()
}

fn mount_cached(bytes: Vec<u8>, lines: usize) -> CachedFs {
    let cache =
        BlockCache::new(MemDisk::from_bytes(bytes), vec![0u8; lines * BLOCK], BLOCK).unwrap();
    Ext2::mount(cache).unwrap()
}

/// Creates `path` (its folder must exist) holding `content`.
fn put(fs: &mut CachedFs, path: &str, content: &[u8]) {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let dir = if dir.is_empty() {
        ROOT_INODE
    } else {
        fs.resolve(dir.as_bytes()).unwrap()
    };
    let ino = fs.create(dir, name.as_bytes(), 0o644, 0, 0).unwrap();
    // In uneven pieces, as a program writes.
    let mut at = 0;
    for piece in content.chunks(7000) {
        assert_eq!(fs.write(ino, at as u64, piece).unwrap(), piece.len());
        at += piece.len();
    }
}

fn read_all(fs: &mut Ext2<MemDevice>, path: &str) -> Vec<u8> {
    let ino = fs
        .resolve(path.as_bytes())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let size = fs.stat(ino).unwrap().size as usize;
    let mut buf = vec![0u8; size];
    assert_eq!(fs.read(ino, 0, &mut buf).unwrap(), size);
    buf
}

#[test]
fn ext2_through_the_cache_is_clean_and_reads_back_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let start = image(dir.path(), &[("old/kept.txt", b"from mkfs\n".to_vec())]);
    // A roomy cache and one of 16 lines that must evict under ext2.
    for lines in [1024, 16] {
        let mut fs = mount_cached(start.clone(), lines);
        let mut files: Vec<(String, Vec<u8>)> =
            vec![("old/kept.txt".into(), b"from mkfs\n".to_vec())];
        fs.mkdir(ROOT_INODE, b"a", 0o755, 0, 0).unwrap();
        let a = fs.resolve(b"a").unwrap();
        fs.mkdir(a, b"b", 0o755, 0, 0).unwrap();
        for i in 0..40u32 {
            let path = match i % 3 {
                0 => format!("f{i}"),
                1 => format!("a/f{i}"),
                _ => format!("a/b/f{i}"),
            };
            let content = pattern(i, (i as usize * 3001) % 20_000);
            put(&mut fs, &path, &content);
            files.push((path, content));
        }
        // Past the direct blocks and the single indirect one.
        let big = pattern(99, (12 + 1024 + 10) * BLOCK);
        put(&mut fs, "a/big", &big);
        files.push(("a/big".into(), big));
        fs.symlink(a, b"slow", "x/".repeat(40).as_bytes(), 0, 0)
            .unwrap();
        fs.sync().unwrap();
        let cache = fs.into_device();
        let stats = cache.stats();
        assert_eq!(cache.dirty_lines(), 0);
        if lines == 16 {
            assert!(
                stats.writebacks > 1,
                "a small cache writes back under pressure: {stats:?}"
            );
        }
        let (disk, _) = cache.into_parts();
        assert_eq!(disk.log().last(), Some(&DiskOp::Flush));
        let bytes = disk.into_bytes();
        let (code, _, text) = fsck(dir.path(), &bytes, "-fn");
        assert_eq!(code, 0, "{lines} lines: e2fsck -fn:\n{text}");
        let mut plain = Ext2::mount(MemDevice::from_bytes(bytes)).unwrap();
        for (path, content) in &files {
            assert!(read_all(&mut plain, path) == *content, "{path}");
        }
        let slow = plain.resolve_at(ROOT_INODE, b"a/slow", false).unwrap();
        assert_eq!(plain.read_link(slow).unwrap(), "x/".repeat(40).as_bytes());
    }
}

/// Where a crash during the write-back `writes` can stop it: after `n`
/// whole requests and `cut` bytes of the next (a request may be torn;
/// lines are the cache's unit, so it is torn at line boundaries).
fn crash_points(writes: &[(u64, Vec<u8>)]) -> Vec<(usize, usize)> {
    let mut points = vec![(0, 0)];
    for (n, (_, data)) in writes.iter().enumerate() {
        points.extend((BLOCK..data.len()).step_by(BLOCK).map(|cut| (n, cut)));
        points.push((n + 1, 0));
    }
    points
}

/// The disk after a crash at `(n, cut)` of `writes` made on `before`.
fn crash_image(before: &[u8], writes: &[(u64, Vec<u8>)], (n, cut): (usize, usize)) -> Vec<u8> {
    let mut disk = before.to_vec();
    let torn = writes.get(n).map(|(sector, data)| (*sector, &data[..cut]));
    for (sector, data) in writes[..n].iter().map(|(s, d)| (*s, &d[..])).chain(torn) {
        let at = sector as usize * SECTOR;
        disk[at..at + data.len()].copy_from_slice(data);
    }
    disk
}

/// Files of the crash tests: the ones synced before the write-backs under
/// test, and an image holding them and two files the later changes remove
/// and shrink.
fn crash_start(dir: &Path) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let synced: Vec<(String, Vec<u8>)> = vec![
        ("mk/one.txt".into(), b"made by mkfs\n".to_vec()),
        ("mk/two.bin".into(), pattern(1, 30_000)),
    ];
    let start = image(
        dir,
        &[
            ("mk/one.txt", synced[0].1.clone()),
            ("mk/two.bin", synced[1].1.clone()),
            ("mk/victim", pattern(2, 50_000)),
            ("mk/shrink", pattern(3, 60_000)),
        ],
    );
    (start, synced)
}

/// Files synced before the write-backs under test.
fn crash_synced(fs: &mut CachedFs, synced: &mut Vec<(String, Vec<u8>)>) {
    fs.mkdir(ROOT_INODE, b"d", 0o755, 0, 0).unwrap();
    for i in 0..12u32 {
        let path = if i % 2 == 0 {
            format!("d/s{i}")
        } else {
            format!("mk/s{i}")
        };
        let content = pattern(10 + i, (i as usize * 5003) % 40_000 + 1);
        put(fs, &path, &content);
        synced.push((path, content));
    }
    fs.sync().unwrap();
}

/// The changes the write-backs under test write: new files beside the
/// synced ones (their directories change), a file with an indirect block,
/// a directory, a slow symlink, and space freed and taken again. Returns
/// the new files.
fn crash_later(fs: &mut CachedFs) -> Vec<(String, Vec<u8>)> {
    let d = fs.resolve(b"d").unwrap();
    let mk = fs.resolve(b"mk").unwrap();
    let mut later: Vec<(String, Vec<u8>)> = Vec::new();
    fs.unlink(mk, b"victim").unwrap();
    let shrink = fs.resolve(b"mk/shrink").unwrap();
    fs.truncate(shrink, 5000).unwrap();
    for i in 0..20u32 {
        let path = if i % 2 == 0 {
            format!("d/n{i}")
        } else {
            format!("mk/n{i}")
        };
        let content = pattern(100 + i, (i as usize * 7919) % 30_000 + 1);
        put(fs, &path, &content);
        later.push((path, content));
    }
    fs.mkdir(d, b"sub", 0o700, 0, 0).unwrap();
    let big = pattern(500, (12 + 200) * BLOCK);
    put(fs, "d/sub/big", &big);
    later.push(("d/sub/big".into(), big));
    fs.symlink(d, b"slow", "y/".repeat(50).as_bytes(), 0, 0)
        .unwrap();
    later
}

/// Replays a crash at sampled points of `writes` (made on `before`):
/// every point between requests when there are few, torn ones at a
/// stride, at most about `budget` `e2fsck -fy` runs. Each repaired image
/// must hold every `synced` file whole, and each file of `later` that has
/// a name must read as written: whole, or when `prefix` (the crash may
/// fall between a write's pieces) a beginning of it. Returns how many new
/// files were reachable.
fn replay_crashes(
    dir: &Path,
    before: &[u8],
    writes: &[(u64, Vec<u8>)],
    synced: &[(String, Vec<u8>)],
    later: &[(String, Vec<u8>)],
    prefix: bool,
    budget: usize,
) -> usize {
    let points = crash_points(writes);
    let last = points.len() - 1;
    let whole = writes.len() + 1;
    let chosen: Vec<usize> = if whole <= budget / 2 {
        let stride = (points.len() - whole)
            .div_ceil(budget.saturating_sub(whole).max(1))
            .max(1);
        (0..points.len())
            .filter(|&i| points[i].1 == 0 || i % stride == 0)
            .collect()
    } else {
        let stride = points.len().div_ceil(budget).max(1);
        (0..points.len())
            .filter(|&i| i % stride == 0 || i == last)
            .collect()
    };
    let mut repaired_count = 0;
    let mut reachable = 0;
    for &i in &chosen {
        let image = crash_image(before, writes, points[i]);
        let (code, repaired, text) = fsck(dir, &image, "-fy");
        repaired_count += usize::from(code == 1);
        assert!(
            code == 0 || code == 1,
            "crash image {i}/{last}: e2fsck -fy exit {code}:\n{text}"
        );
        let mut plain = Ext2::mount(MemDevice::from_bytes(repaired)).unwrap();
        for (path, content) in synced {
            assert!(
                read_all(&mut plain, path) == *content,
                "crash image {i}/{last}: {path}"
            );
        }
        // Data goes before the inodes and indirect blocks that point at it,
        // and those before the names: a new file that has its name after
        // the repair has all of its content (or what was written of it).
        for (path, content) in later {
            if plain.resolve(path.as_bytes()).is_ok() {
                reachable += 1;
                let got = read_all(&mut plain, path);
                let ok = if prefix {
                    content.starts_with(&got)
                } else {
                    got == *content
                };
                assert!(ok, "crash image {i}/{last}: new {path}");
            }
        }
    }
    eprintln!(
        "{} requests, {} crash points, {} checked, {} repaired, {} new files reachable",
        writes.len(),
        points.len(),
        chosen.len(),
        repaired_count,
        reachable
    );
    reachable
}

/// The image after a complete write-back is clean and holds everything.
fn check_complete(
    dir: &Path,
    after: Vec<u8>,
    synced: &[(String, Vec<u8>)],
    later: &[(String, Vec<u8>)],
) {
    let (code, _, text) = fsck(dir, &after, "-fn");
    assert_eq!(code, 0, "{text}");
    let mut plain = Ext2::mount(MemDevice::from_bytes(after)).unwrap();
    for (path, content) in synced.iter().chain(later) {
        assert!(read_all(&mut plain, path) == *content, "{path}");
    }
    assert_eq!(
        read_all(&mut plain, "mk/shrink"),
        pattern(3, 60_000)[..5000]
    );
    assert!(plain.resolve(b"mk/victim").is_err());
}

#[test]
fn a_crash_at_any_point_of_a_flush_is_repairable_and_keeps_synced_files() {
    let dir = tempfile::tempdir().unwrap();
    let (start, mut synced) = crash_start(dir.path());
    // The whole disk fits: nothing is written between the two flushes.
    let mut fs = mount_cached(start, 2048);
    crash_synced(&mut fs, &mut synced);
    // Ext2 lends no device: unmount to read the counters, and mount again.
    let cache = fs.into_device();
    let synced_writebacks = cache.stats().writebacks;
    let mut fs = Ext2::mount(cache).unwrap();
    let later = crash_later(&mut fs);

    // The disk as the previous flush left it: nothing was written since
    // (the cache holds it all), which the write-back count shows.
    let mut cache = fs.into_device();
    assert_eq!(cache.stats().writebacks, synced_writebacks);
    cache.disk_mut().take_log();
    let disk_before = cache.disk().bytes().to_vec();
    let mut fs = Ext2::mount(cache).unwrap();
    fs.sync().unwrap();
    let mut cache = fs.into_device();
    let stats = cache.stats();
    assert_eq!(
        stats.writebacks,
        synced_writebacks + 1,
        "one write-back, by the flush"
    );
    let writes = writes_of(cache.disk_mut().take_log());
    assert!(
        writes.len() > 10,
        "the flush writes enough to interrupt: {}",
        writes.len()
    );
    let after = cache.disk().bytes().to_vec();
    let points = crash_points(&writes);
    assert!(crash_image(&disk_before, &writes, points[points.len() - 1]) == after);
    let reachable = replay_crashes(
        dir.path(),
        &disk_before,
        &writes,
        &synced,
        &later,
        false,
        120,
    );
    assert!(reachable > 0, "some crash images hold new files");
    check_complete(dir.path(), after, &synced, &later);
}

/// The same changes through a cache of 8 lines: most of the writes go in
/// write-backs that misses force (the LRU line dirty), between ext2's
/// steps, and a crash can fall inside any of them.
#[test]
fn a_crash_inside_a_write_back_forced_by_eviction_is_repairable() {
    let dir = tempfile::tempdir().unwrap();
    let (start, mut synced) = crash_start(dir.path());
    let mut fs = mount_cached(start, 8);
    crash_synced(&mut fs, &mut synced);
    let mut cache = fs.into_device();
    cache.disk_mut().take_log();
    let disk_before = cache.disk().bytes().to_vec();
    let synced_writebacks = cache.stats().writebacks;
    let mut fs = Ext2::mount(cache).unwrap();
    let later = crash_later(&mut fs);
    fs.sync().unwrap();
    let mut cache = fs.into_device();
    let passes = cache.stats().writebacks - synced_writebacks;
    assert!(passes > 50, "evictions force write-backs: {passes}");
    let writes = writes_of(cache.disk_mut().take_log());
    let after = cache.disk().bytes().to_vec();
    let reachable = replay_crashes(
        dir.path(),
        &disk_before,
        &writes,
        &synced,
        &later,
        true,
        150,
    );
    assert!(reachable > 0, "some crash images hold new files");
    check_complete(dir.path(), after, &synced, &later);
}

/// Where the inode records lie: (first block of each group's table, its
/// blocks), inodes per group and the record size, from a mountable image.
struct Geometry {
    tables: Vec<(u64, u64)>,
    inodes_per_group: u64,
    inode_size: usize,
}

impl Geometry {
    fn of(image: &[u8]) -> Self {
        let fs = Ext2::mount(MemDevice::from_bytes(image.to_vec())).unwrap();
        let sb = fs.superblock();
        assert_eq!(sb.block_size as usize, BLOCK);
        Self {
            tables: fs
                .groups()
                .iter()
                .map(|g| (u64::from(g.inode_table), u64::from(sb.inode_table_blocks())))
                .collect(),
            inodes_per_group: u64::from(sb.inodes_per_group),
            inode_size: usize::from(sb.inode_size),
        }
    }

    /// The inode records of `image` in use: (inode number, raw record).
    fn inodes<'a>(&self, image: &'a [u8]) -> Vec<(u64, &'a [u8])> {
        let mut out = Vec::new();
        for (group, &(table, _)) in self.tables.iter().enumerate() {
            for i in 0..self.inodes_per_group {
                let at = table as usize * BLOCK + i as usize * self.inode_size;
                let record = &image[at..at + 128];
                let links = u16::from_le_bytes([record[26], record[27]]);
                if links > 0 {
                    out.push((group as u64 * self.inodes_per_group + i + 1, record));
                }
            }
        }
        out
    }

    fn in_inode_table(&self, block: u64) -> bool {
        self.tables
            .iter()
            .any(|&(start, len)| (start..start + len).contains(&block))
    }
}

fn le32_at(bytes: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()))
}

/// The block pointers of an inode record in use: none for a fast symlink
/// (its text fills the pointer area).
fn record_pointers(record: &[u8]) -> Vec<u64> {
    let mode = u16::from_le_bytes([record[0], record[1]]);
    let sectors = le32_at(record, 28);
    if mode & 0xf000 == 0xa000 && sectors == 0 {
        return Vec::new();
    }
    (0..15)
        .map(|i| le32_at(record, 40 + 4 * i))
        .filter(|&b| b != 0)
        .collect()
}

/// Every block an inode in use reaches in `image` (data and tables), and
/// the tables among them.
fn reachable(geo: &Geometry, image: &[u8]) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let mut blocks = BTreeSet::new();
    let mut tables = BTreeSet::new();
    for (_, record) in geo.inodes(image) {
        let pointers = record_pointers(record);
        blocks.extend(pointers.iter().copied());
        for (level, slot) in [(1u32, 12usize), (2, 13), (3, 14)] {
            let root = le32_at(record, 40 + 4 * slot);
            if pointers.is_empty() || root == 0 {
                continue;
            }
            let mut frontier = vec![root];
            for _ in 0..level {
                let mut next = Vec::new();
                for table in frontier {
                    if (table as usize + 1) * BLOCK > image.len() {
                        continue;
                    }
                    tables.insert(table);
                    let bytes = &image[table as usize * BLOCK..(table as usize + 1) * BLOCK];
                    for at in (0..BLOCK).step_by(4) {
                        let target = le32_at(bytes, at);
                        if target != 0 {
                            blocks.insert(target);
                            next.push(target);
                        }
                    }
                }
                frontier = next;
            }
        }
    }
    (blocks, tables)
}

/// Checks that no write in `writes` (made on `before`, the disk at the last
/// sync) stores a pointer, in an inode record or an indirect block, to a
/// block whose content is not on the disk yet: every target was reachable
/// at the sync or written by an earlier request (or earlier in the same
/// one, which goes to the disk in address order). Returns the violations.
fn pointers_after_targets(before: &[u8], writes: &[(u64, Vec<u8>)]) -> Vec<String> {
    let geo = Geometry::of(before);
    let (on_disk, mut tables) = reachable(&geo, before);
    let mut after = before.to_vec();
    for (sector, data) in writes {
        let at = *sector as usize * SECTOR;
        after[at..at + data.len()].copy_from_slice(data);
    }
    tables.extend(reachable(&geo, &after).1);
    let mut written = BTreeSet::new();
    let mut bad = Vec::new();
    for (n, (sector, data)) in writes.iter().enumerate() {
        let first = *sector as usize * SECTOR / BLOCK;
        for (i, bytes) in data.chunks(BLOCK).enumerate() {
            let block = (first + i) as u64;
            let pointers: Vec<u64> = if tables.contains(&block) {
                (0..bytes.len())
                    .step_by(4)
                    .map(|at| le32_at(bytes, at))
                    .filter(|&b| b != 0)
                    .collect()
            } else if geo.in_inode_table(block) {
                bytes
                    .chunks(geo.inode_size)
                    .filter(|r| u16::from_le_bytes([r[26], r[27]]) > 0)
                    .flat_map(record_pointers)
                    .collect()
            } else {
                Vec::new()
            };
            for target in pointers {
                if !on_disk.contains(&target) && !written.contains(&target) {
                    bad.push(format!(
                        "request {n}: block {block} points at block {target}, not written yet"
                    ));
                }
            }
            written.insert(block);
        }
    }
    bad
}

/// The writes in a disk log.
fn writes_of(log: Vec<DiskOp>) -> Vec<(u64, Vec<u8>)> {
    log.into_iter()
        .filter_map(|op| match op {
            DiskOp::Write { sector, data } => Some((sector, data)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_pointer_never_reaches_the_disk_before_the_block_it_points_at() {
    let dir = tempfile::tempdir().unwrap();
    let start = image(dir.path(), &[("keep.txt", b"kept\n".to_vec())]);
    // Four lines: nearly every miss evicts a dirty line and forces a
    // write-back of everything dirty. And a cache that holds it all: one
    // write-back, in class order (a directory block after its inode).
    for lines in [4, 2048] {
        pointers_after_targets_in(dir.path(), &start, lines);
    }
}

fn pointers_after_targets_in(dir: &Path, start: &[u8], lines: usize) {
    let mut fs = mount_cached(start.to_vec(), lines);
    let file = fs.create(ROOT_INODE, b"f", 0o644, 0, 0).unwrap();
    fs.truncate(file, 64 * BLOCK as u64).unwrap();
    // Block 12: the single indirect table and one data block, synced.
    fs.write(file, 12 * BLOCK as u64, &pattern(12, BLOCK))
        .unwrap();
    fs.sync().unwrap();
    let mut cache = fs.into_device();
    cache.disk_mut().take_log();
    let before = cache.disk().bytes().to_vec();
    let mut fs = Ext2::mount(cache).unwrap();
    // Whole blocks through the table: the pointer of each is stored in it.
    for logical in 13..20u64 {
        let data = pattern(logical as u32, BLOCK);
        fs.write(file, logical * BLOCK as u64, &data).unwrap();
    }
    // Part of a block, a new directory, a directory grown into its
    // indirect range (names of ~250 bytes: 16 a block) and a slow symlink.
    fs.write(file, 30 * BLOCK as u64 + 100, b"partial").unwrap();
    let d = fs.mkdir(ROOT_INODE, b"d", 0o755, 0, 0).unwrap();
    for i in 0..14 * 16 {
        let name = format!("{i:0>240}");
        fs.create(d, name.as_bytes(), 0o644, 0, 0).unwrap();
    }
    fs.symlink(d, b"slow", "z/".repeat(60).as_bytes(), 0, 0)
        .unwrap();
    fs.sync().unwrap();
    let mut cache = fs.into_device();
    if lines == 4 {
        assert!(cache.stats().writebacks > 10, "{:?}", cache.stats());
    }
    let writes = writes_of(cache.disk_mut().take_log());
    let bad = pointers_after_targets(&before, &writes);
    assert!(
        bad.is_empty(),
        "{lines} lines: {} pointers before their blocks:\n{}",
        bad.len(),
        bad.join("\n")
    );
    let after = cache.disk().bytes().to_vec();
    let (code, _, text) = fsck(dir, &after, "-fn");
    assert_eq!(code, 0, "{text}");
}
