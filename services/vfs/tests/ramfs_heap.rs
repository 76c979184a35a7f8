//! RamFs's limit bounds the heap it holds, not only file bytes: empty
//! files, directories and hard links are charged too. A counting global
//! allocator measures the real heap against `used()`. One test only: the
//! count is process-wide, and tests run on parallel threads.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use kaal_protocols::file::FsError;
use vfs::{FileSystem, Ino, RamFs};

/// Live heap bytes, each allocation rounded up to 16 and with a 16-byte
/// header as a typical allocator's.
static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Counting;

fn cost(layout: Layout) -> usize {
    layout.size().div_ceil(16) * 16 + 16
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// count is all this adds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(cost(layout), Ordering::Relaxed);
        // SAFETY: the caller's layout contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(cost(layout), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const LIMIT: u64 = 1 << 20;
/// Far more than fit: without per-entry charges every one succeeds.
const TRIES: usize = 20_000;

/// A distinct 255-byte name.
fn name(i: usize) -> Vec<u8> {
    let mut n = format!("{i:08}").into_bytes();
    n.resize(255, b'x');
    n
}

/// Runs `step` until it is NoSpace (which must come within `TRIES`), then
/// checks `used()` within the limit and the heap the file system grew by
/// within `used()`; the steps that succeeded.
fn fill(fs: &mut RamFs, mut step: impl FnMut(&mut RamFs, usize) -> Result<(), FsError>) -> usize {
    let base = LIVE.load(Ordering::Relaxed);
    let base_used = fs.used();
    let mut done = 0;
    loop {
        assert!(done < TRIES, "{TRIES} steps fit in {LIMIT} bytes");
        match step(fs, done) {
            Ok(()) => done += 1,
            Err(FsError::NoSpace) => break,
            Err(e) => panic!("step {done}: {e:?}"),
        }
    }
    assert!(fs.used() <= LIMIT, "used {} over the limit", fs.used());
    let heap = LIVE.load(Ordering::Relaxed).saturating_sub(base) as u64;
    assert!(
        heap <= fs.used() - base_used,
        "{done} steps hold {heap} heap bytes, {} charged",
        fs.used() - base_used
    );
    done
}

#[test]
fn the_limit_bounds_the_heap_ramfs_holds() {
    // Files with long names in one directory, then all removed.
    let mut fs = RamFs::new(LIMIT);
    let root = fs.root();
    let n = fill(&mut fs, |fs, i| {
        fs.create(root, &name(i), 0o644, 0, 0).map(drop)
    });
    assert!(n > 100, "only {n} files");
    for i in 0..n {
        fs.unlink(root, &name(i)).unwrap();
    }
    assert_eq!(fs.used(), 0, "removing the files gives every byte back");
    assert_eq!(fs.inodes(), 1);

    // A chain of directories, each with one entry (a B-tree of its own).
    let mut fs = RamFs::new(LIMIT);
    let mut dir = fs.root();
    let mut dirs: Vec<Ino> = vec![dir];
    let n = fill(&mut fs, |fs, _| {
        dir = fs.mkdir(dir, b"d", 0o755, 0, 0)?;
        dirs.push(dir);
        Ok(())
    });
    for pair in dirs[..=n].windows(2).rev() {
        fs.rmdir(pair[0], b"d").unwrap();
    }
    assert_eq!(fs.used(), 0);

    // Hard links to one file, and symbolic links.
    let mut fs = RamFs::new(LIMIT);
    let root = fs.root();
    let file = fs.create(root, b"f", 0o644, 0, 0).unwrap();
    let n = fill(&mut fs, |fs, i| fs.link(root, &name(i), file));
    for i in 0..n {
        fs.unlink(root, &name(i)).unwrap();
    }
    let n = fill(&mut fs, |fs, i| fs.symlink(root, &name(i), b"/t").map(drop));
    for i in 0..n {
        fs.unlink(root, &name(i)).unwrap();
    }
    fs.unlink(root, b"f").unwrap();
    assert_eq!(fs.used(), 0);

    // Renames to longer names are charged; back to short ones refunded.
    let mut fs = RamFs::new(LIMIT);
    let root = fs.root();
    let mut made = 0;
    fill(&mut fs, |fs, i| {
        fs.create(root, format!("{i}").as_bytes(), 0o644, 0, 0)?;
        made += 1;
        Ok(())
    });
    let before = fs.used();
    let renamed = fill(&mut fs, |fs, i| {
        if i == made {
            return Err(FsError::NoSpace);
        }
        fs.rename(root, format!("{i}").as_bytes(), root, &name(i))
    });
    assert!(renamed < made, "no room for every longer name");
    for i in 0..renamed {
        fs.rename(root, &name(i), root, format!("{i}").as_bytes())
            .unwrap();
    }
    assert_eq!(fs.used(), before);

    // File data, written in small pieces: no spare capacity uncharged.
    let mut fs = RamFs::new(LIMIT);
    let root = fs.root();
    let mut at = 0;
    fill(&mut fs, |fs, i| {
        // Created within the count, as the file's allocation is.
        if i == 0 {
            fs.create(root, b"f", 0o644, 0, 0)?;
        }
        let f = fs.lookup(root, b"f")?;
        at += fs.write(f, at, &[7; 1000])? as u64;
        Ok(())
    });
    let f = fs.lookup(root, b"f").unwrap();
    fs.truncate(f, 10).unwrap();
    let n = fill(&mut fs, |fs, i| {
        fs.create(root, &name(i), 0o644, 0, 0).map(drop)
    });
    assert!(n > 100, "truncating gave the bytes back");
}
