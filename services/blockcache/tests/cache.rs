//! The cache against a plain byte model, and its write-back order,
//! eviction, read-ahead and failures, observed through a recording disk.

// Test helpers: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use blockcache::{BlockCache, BlockDevice, DiskOp, IoError, MemDisk, WriteClass, SECTOR};
use proptest::prelude::*;

const LINE: usize = 1024;

/// `len` bytes that differ with `seed` and position.
fn fill(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn new_cache(disk: MemDisk, lines: usize, line: usize) -> BlockCache<MemDisk, Vec<u8>> {
    BlockCache::new(disk, vec![0u8; lines * line], line).unwrap()
}

/// The disk writes of `log`, as (first line, lines).
fn writes(log: &[DiskOp], line: usize) -> Vec<(u64, usize)> {
    log.iter()
        .filter_map(|op| match op {
            DiskOp::Write { sector, data } => Some((
                *sector * SECTOR as u64 / line as u64,
                data.len().div_ceil(line),
            )),
            _ => None,
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Read(u64, usize),
    Write(u64, usize, u8, usize),
    Flush,
}

fn op(size: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..size + 600, 0..3 * LINE + 100).prop_map(|(o, l)| Op::Read(o, l)),
        4 => (0..size + 600, 0..3 * LINE + 100, any::<u8>(), 0..7usize)
            .prop_map(|(o, l, s, c)| Op::Write(o, l, s, c)),
        1 => Just(Op::Flush),
    ]
}

/// 41 sectors: the last line is half a line.
const MODEL_SECTORS: usize = 41;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random reads, writes and flushes of random ranges (across lines,
    /// partial, past the end) read what a plain byte array holds; after a
    /// flush the disk holds it too. Four lines of cache, three per request.
    #[test]
    fn matches_a_byte_model(ops in prop::collection::vec(op((MODEL_SECTORS * SECTOR) as u64), 1..80)) {
        let initial = fill(7, MODEL_SECTORS * SECTOR);
        let disk = MemDisk::from_bytes(initial.clone()).with_max_transfer(3 * LINE);
        let mut cache = new_cache(disk, 4, LINE);
        let mut model = initial;
        let size = model.len() as u64;
        for op in ops {
            match op {
                Op::Read(offset, len) => {
                    let mut buf = vec![0u8; len];
                    let result = cache.read_at(offset, &mut buf);
                    if offset + len as u64 > size {
                        prop_assert_eq!(result, Err(IoError::OutOfBounds));
                    } else {
                        prop_assert_eq!(result, Ok(()));
                        let at = offset as usize;
                        prop_assert_eq!(&buf[..], &model[at..at + len]);
                    }
                }
                Op::Write(offset, len, seed, class) => {
                    let data = fill(seed, len);
                    let result = cache.write_class(offset, &data, WriteClass::ALL[class]);
                    if offset + len as u64 > size {
                        prop_assert_eq!(result, Err(IoError::OutOfBounds));
                    } else {
                        prop_assert_eq!(result, Ok(()));
                        let at = offset as usize;
                        model[at..at + len].copy_from_slice(&data);
                    }
                }
                Op::Flush => {
                    prop_assert_eq!(cache.flush(), Ok(()));
                    prop_assert_eq!(cache.dirty_lines(), 0);
                    prop_assert!(cache.disk().bytes() == &model[..]);
                }
            }
        }
        let mut all = vec![0u8; model.len()];
        cache.read_at(0, &mut all).unwrap();
        prop_assert!(all == model);
        cache.flush().unwrap();
        prop_assert!(cache.disk().bytes() == &model[..]);
    }
}

/// The class a test gave each line: (line, class).
fn write_lines(cache: &mut BlockCache<MemDisk, Vec<u8>>, lines: &[(u64, WriteClass)], line: usize) {
    for &(at, class) in lines {
        cache
            .write_class(at * line as u64, &fill(at as u8, line), class)
            .unwrap();
    }
}

#[test]
fn flush_writes_in_class_order_and_coalesces_adjacent_lines_of_a_class() {
    use WriteClass::*;
    let disk = MemDisk::zeroed(64 * LINE / SECTOR).with_max_transfer(4 * LINE);
    let mut cache = new_cache(disk, 32, LINE);
    // Written in an order unlike the write-back order; line 9 changes class
    // (its latest, Data, counts), lines 20.. run past one request.
    let plan = [
        (30, Superblock),
        (2, Bitmap),
        (3, Bitmap),
        (9, Directory),
        (4, Data),
        (5, Data),
        (6, Data),
        (10, InodeTable),
        (11, InodeTable),
        (12, Indirect),
        (31, GroupDescriptors),
        (9, Data),
        (20, Data),
        (21, Data),
        (22, Data),
        (23, Data),
        (24, Data),
        (25, Data),
        (1, Directory),
    ];
    write_lines(&mut cache, &plan, LINE);
    assert!(
        cache.disk().log().is_empty(),
        "nothing written before the flush"
    );
    cache.flush().unwrap();
    let log = cache.disk_mut().take_log();
    assert_eq!(log.last(), Some(&DiskOp::Flush));
    assert_eq!(
        writes(&log, LINE),
        vec![
            // Data: 4-6, 9 alone (8 is not dirty), 20-23 (four per request), 24-25.
            (4, 3),
            (9, 1),
            (20, 4),
            (24, 2),
            (12, 1), // Indirect
            (10, 2), // InodeTable
            (1, 1),  // Directory
            (2, 2),  // Bitmap
            (31, 1), // GroupDescriptors
            (30, 1), // Superblock
        ]
    );
    let stats = cache.stats();
    assert_eq!(stats.writebacks, 1);
    assert_eq!(stats.lines_written, 18);
    assert_eq!(stats.disk_writes, 10);
    let mut expected = vec![0u8; 64 * LINE];
    for &(at, _) in &plan {
        let at = at as usize;
        expected[at * LINE..(at + 1) * LINE].copy_from_slice(&fill(at as u8, LINE));
    }
    assert!(cache.disk().bytes() == &expected[..]);
    // Clean now: a second flush writes nothing.
    cache.flush().unwrap();
    assert!(writes(cache.disk().log(), LINE).is_empty());
}

#[test]
fn a_miss_with_every_line_dirty_writes_everything_back_in_order_first() {
    use WriteClass::*;
    let classes = [
        Superblock,
        Data,
        Bitmap,
        InodeTable,
        Directory,
        Indirect,
        Data,
        GroupDescriptors,
    ];
    let disk = MemDisk::zeroed(64 * LINE / SECTOR);
    let mut cache = new_cache(disk, 8, LINE);
    let plan: Vec<(u64, WriteClass)> = (0..8).map(|i| (i * 3, classes[i as usize])).collect();
    write_lines(&mut cache, &plan, LINE);
    assert_eq!(cache.dirty_lines(), 8);
    assert!(cache.disk().log().is_empty());
    // A ninth line: the victim is dirty, so all eight go, in class order.
    write_lines(&mut cache, &[(40, Data)], LINE);
    let log = cache.disk_mut().take_log();
    let order: Vec<u64> = writes(&log, LINE).iter().map(|w| w.0).collect();
    // Data 3 and 18, Indirect 15, InodeTable 9, Directory 12, Bitmap 6, GD 21, SB 0.
    assert_eq!(order, vec![3, 18, 15, 9, 12, 6, 21, 0]);
    assert_eq!(cache.stats().writebacks, 1);
    assert_eq!(cache.dirty_lines(), 1);
    // A partial write of another new line must read it: a clean victim
    // now, no second write-back.
    cache
        .write_class(50 * LINE as u64 + 10, b"abc", Data)
        .unwrap();
    assert_eq!(cache.stats().writebacks, 1);
    // Under steady pressure every line still reads back.
    for round in 0..3u8 {
        for i in 0..24u64 {
            let data = fill(round.wrapping_add(i as u8), LINE);
            cache
                .write_class(i * LINE as u64, &data, classes[i as usize % 8])
                .unwrap();
        }
        for i in 0..24u64 {
            let mut buf = vec![0; LINE];
            cache.read_at(i * LINE as u64, &mut buf).unwrap();
            assert_eq!(buf, fill(round.wrapping_add(i as u8), LINE));
        }
    }
    let log = cache.disk_mut().take_log();
    // Each pass wrote all 8 dirty lines in class order: the classes of the
    // writes descend only where a new pass starts.
    // Lines 40 and 50 were written as Data before the loop.
    let class_of = |line: u64| {
        if line < 24 {
            classes[line as usize % 8]
        } else {
            Data
        }
    };
    let ws = writes(&log, LINE);
    let descents = ws
        .windows(2)
        .filter(|w| class_of(w[1].0) < class_of(w[0].0))
        .count();
    assert!(cache.stats().writebacks > 5, "{:?}", cache.stats());
    assert!(descents < cache.stats().writebacks as usize);
    cache.flush().unwrap();
    let mut buf = vec![0; LINE];
    cache.read_at(50 * LINE as u64, &mut buf).unwrap();
    assert_eq!(&buf[10..13], b"abc");
    assert_eq!(
        &cache.disk().bytes()[50 * LINE + 10..50 * LINE + 13],
        b"abc"
    );
}

fn reads(log: &[DiskOp]) -> Vec<(u64, u64)> {
    log.iter()
        .filter_map(|op| match op {
            DiskOp::Read { sector, sectors } => Some((*sector, *sectors)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_sequential_scan_reads_ahead_in_fewer_larger_requests() {
    const BLOCK: usize = 4096;
    const LINES: usize = 512;
    let image = fill(3, LINES * BLOCK);
    let disk = MemDisk::from_bytes(image.clone());
    let mut cache = new_cache(disk, 64, BLOCK);
    let mut buf = vec![0u8; BLOCK];
    for i in 0..LINES {
        cache.read_at((i * BLOCK) as u64, &mut buf).unwrap();
        assert_eq!(buf, image[i * BLOCK..(i + 1) * BLOCK]);
    }
    let stats = cache.stats();
    // Requests of 1, 2, 4, 8 lines, then 16 (64 KiB) each: 4 + ceil(497/16).
    assert_eq!(stats.disk_reads, 4 + 497_u64.div_ceil(16));
    assert_eq!(stats.read_ahead_lines, LINES as u64 - stats.disk_reads);
    assert_eq!(stats.misses, stats.disk_reads);
    assert_eq!(stats.hits, LINES as u64 - stats.misses);
    let rs = reads(cache.disk().log());
    assert!(rs.iter().all(|&(_, n)| n * SECTOR as u64 <= 64 * 1024));
    assert_eq!(
        rs.iter().map(|r| r.1).sum::<u64>(),
        (LINES * BLOCK / SECTOR) as u64
    );

    // The same lines in a scattered order: no read-ahead, one read each.
    let disk = MemDisk::from_bytes(image.clone());
    let mut cache = new_cache(disk, 64, BLOCK);
    for k in 0..LINES {
        let i = (k * 37) % LINES; // 37 is prime to 512: every line once
        cache.read_at((i * BLOCK) as u64, &mut buf).unwrap();
        assert_eq!(buf, image[i * BLOCK..(i + 1) * BLOCK]);
    }
    assert_eq!(cache.stats().disk_reads, LINES as u64);
    assert_eq!(cache.stats().read_ahead_lines, 0);
}

/// ext2 reads a word of an indirect block before each data block past the
/// twelfth: those hits between the data misses must not end the run.
#[test]
fn hits_elsewhere_between_sequential_misses_keep_the_read_ahead() {
    const BLOCK: usize = 4096;
    const LINES: usize = 512;
    let image = fill(4, (LINES + 1) * BLOCK);
    let disk = MemDisk::from_bytes(image.clone());
    let mut cache = new_cache(disk, 64, BLOCK);
    let mut word = [0u8; 4];
    let mut buf = vec![0u8; BLOCK];
    for i in 0..LINES {
        // The "indirect block": the disk's last line, a hit after the first.
        cache.read_at((LINES * BLOCK) as u64, &mut word).unwrap();
        cache.read_at((i * BLOCK) as u64, &mut buf).unwrap();
        assert_eq!(buf, image[i * BLOCK..(i + 1) * BLOCK]);
    }
    // One read of the indirect line, then the scan as without it.
    assert_eq!(cache.stats().disk_reads, 1 + 4 + 497_u64.div_ceil(16));
}

#[test]
fn read_ahead_stops_at_cached_lines_and_keeps_dirty_bytes() {
    let image = fill(1, 32 * LINE);
    let disk = MemDisk::from_bytes(image.clone());
    let mut cache = new_cache(disk, 16, LINE);
    let mine = fill(99, LINE);
    cache.write_at(5 * LINE as u64, &mine).unwrap();
    let mut buf = vec![0u8; LINE];
    for i in 0..12 {
        cache.read_at((i * LINE) as u64, &mut buf).unwrap();
        if i == 5 {
            assert_eq!(buf, mine, "the dirty line is not replaced");
        } else {
            assert_eq!(buf, image[i * LINE..(i + 1) * LINE]);
        }
    }
    // 0; 1-2; 3-4 (stops before 5); 6 after 5 (a hit) doubles to 8: 6-11...
    let rs = reads(cache.disk().log());
    let per = (LINE / SECTOR) as u64;
    assert_eq!(rs[..3], [(0, per), (per, 2 * per), (3 * per, 2 * per)]);
    assert!(!rs.iter().any(|&(s, n)| s <= 5 * per && 5 * per < s + n));
}

#[test]
fn a_failed_write_back_loses_nothing_and_a_later_flush_writes_it() {
    let disk = MemDisk::zeroed(16 * LINE / SECTOR);
    let mut cache = new_cache(disk, 4, LINE);
    let data = fill(42, 3 * LINE - 100);
    cache
        .write_class(50, &data, WriteClass::InodeTable)
        .unwrap();
    cache.disk_mut().set_fail_writes(true);
    assert_eq!(cache.flush(), Err(IoError::Device));
    assert_eq!(cache.dirty_lines(), 3);
    assert!(cache.disk().bytes().iter().all(|&b| b == 0));
    // A miss that must evict a dirty line fails too, and changes nothing.
    let mut one = [0u8; 1];
    cache.write_at(10 * LINE as u64, &[1]).unwrap(); // the fourth line: free
    assert_eq!(
        cache.read_at(12 * LINE as u64, &mut one),
        Err(IoError::Device)
    );
    assert_eq!(cache.dirty_lines(), 4);
    let mut back = vec![0u8; data.len()];
    cache.read_at(50, &mut back).unwrap();
    assert_eq!(back, data);
    cache.disk_mut().set_fail_writes(false);
    cache.flush().unwrap();
    assert_eq!(cache.dirty_lines(), 0);
    assert_eq!(&cache.disk().bytes()[50..50 + data.len()], &data[..]);
    assert_eq!(cache.disk().bytes()[10 * LINE], 1);
}

#[test]
fn a_failed_read_caches_nothing() {
    let image = fill(5, 16 * LINE);
    let disk = MemDisk::from_bytes(image.clone());
    let mut cache = new_cache(disk, 4, LINE);
    cache.disk_mut().set_fail_reads(true);
    let mut buf = vec![0u8; 100];
    assert_eq!(cache.read_at(0, &mut buf), Err(IoError::Device));
    // A partial write must read its line first: refused, nothing dirty.
    assert_eq!(cache.write_at(LINE as u64 + 1, b"x"), Err(IoError::Device));
    assert_eq!(cache.dirty_lines(), 0);
    cache.disk_mut().set_fail_reads(false);
    let before = cache.stats();
    cache.read_at(0, &mut buf).unwrap();
    assert_eq!(buf, image[..100]);
    assert_eq!(
        cache.stats().misses,
        before.misses + 1,
        "not cached by the failed read"
    );
    cache.flush().unwrap();
    assert!(cache.disk().bytes() == &image[..]);
}

#[test]
fn refuses_ranges_past_the_end_and_bad_geometry() {
    let disk = MemDisk::zeroed(5);
    let mut cache = new_cache(disk, 2, LINE);
    assert_eq!(cache.size(), 5 * SECTOR as u64);
    let mut buf = [0u8; 2];
    assert_eq!(
        cache.read_at(5 * 512 - 1, &mut buf),
        Err(IoError::OutOfBounds)
    );
    assert_eq!(cache.write_at(u64::MAX, &buf), Err(IoError::OutOfBounds));
    // The last, half line works.
    cache.write_at(5 * 512 - 2, &[7, 8]).unwrap();
    cache.flush().unwrap();
    assert_eq!(&cache.disk().bytes()[5 * 512 - 2..], &[7, 8]);
    use blockcache::ConfigError;
    let new = |line, storage, transfer| {
        BlockCache::new(
            MemDisk::zeroed(8).with_max_transfer(transfer),
            vec![0u8; storage],
            line,
        )
        .map(|_| ())
    };
    assert_eq!(new(1000, 4096, 4096), Err(ConfigError::LineSize));
    assert_eq!(new(0, 4096, 4096), Err(ConfigError::LineSize));
    assert_eq!(new(4096, 4000, 4096), Err(ConfigError::Storage));
    assert_eq!(new(4096, 4096, 2048), Err(ConfigError::Transfer));
    assert_eq!(new(4096, 4096, 4096), Ok(()));
}

#[test]
fn write_now_writes_whole_lines_at_once_and_leaves_partial_ones_dirty() {
    let mut cache = new_cache(MemDisk::zeroed(64), 4, LINE);
    cache
        .write_class(0, &fill(1, LINE), WriteClass::Indirect)
        .unwrap();
    // Lines 2 and 3 whole, and half of line 4.
    let bytes = fill(2, 2 * LINE + LINE / 2);
    cache
        .write_now(2 * LINE as u64, &bytes, WriteClass::Directory)
        .unwrap();
    // Only the whole lines went, ahead of the dirty line 0 and alone.
    assert_eq!(writes(cache.disk().log(), LINE), [(2, 1), (3, 1)]);
    assert_eq!(
        &cache.disk().bytes()[2 * LINE..4 * LINE],
        &bytes[..2 * LINE]
    );
    assert_eq!(cache.dirty_lines(), 2, "line 0 and the half line 4");
    cache.flush().unwrap();
    assert_eq!(
        &cache.disk().bytes()[2 * LINE..4 * LINE + LINE / 2],
        &bytes[..]
    );
}

/// A disk that does not wait fails a read, and the access is run again once
/// the bytes are there: the retry must ask for the same range (read-ahead
/// included), or each retry would fetch a single line.
#[test]
fn a_failed_read_leaves_the_read_ahead_run_for_the_retry() {
    const BLOCK: usize = 4096;
    let image = fill(9, 32 * BLOCK);
    let mut cache = new_cache(MemDisk::from_bytes(image.clone()), 32, BLOCK);
    let mut buf = vec![0u8; BLOCK];
    // Misses at lines 0, 1 (2 lines) and 3 (4 lines), with the read of the
    // third failing once first.
    cache.read_at(0, &mut buf).unwrap();
    cache.read_at(BLOCK as u64, &mut buf).unwrap();
    cache.read_at(2 * BLOCK as u64, &mut buf).unwrap();
    cache.disk_mut().set_fail_reads(true);
    assert_eq!(
        cache.read_at(3 * BLOCK as u64, &mut buf),
        Err(IoError::Device)
    );
    cache.disk_mut().set_fail_reads(false);
    cache.read_at(3 * BLOCK as u64, &mut buf).unwrap();
    assert_eq!(buf, image[3 * BLOCK..4 * BLOCK]);
    let per_line = (BLOCK / SECTOR) as u64;
    assert_eq!(
        reads(cache.disk().log()),
        [
            (0, per_line),
            (per_line, 2 * per_line),
            (3 * per_line, 4 * per_line)
        ]
    );
}
