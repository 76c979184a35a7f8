//! The shared pages of `MAP_SHARED` file mappings: one frame per (file,
//! page), whoever maps it, so every mapping of a file page sees every
//! store at once. A page lives while a process maps it: the cache holds
//! one reference to its frame and each mapping another, so a page only
//! the cache holds is unmapped everywhere (written back, then freed). Each
//! file with pages keeps the open file description the server writes it
//! back through (and reads pages touched later from) while it has pages
//! or a process maps it. At most `limit` pages exist (`ENOMEM` beyond).

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec::Vec;

use crate::errno::Errno;

/// A file's identity: (device, inode).
pub type FileId = (u64, u64);

/// A file's write-back handle and whether it may write.
struct Handle<H> {
    handle: H,
    writable: bool,
}

/// The shared pages of mapped files: frames `F`, handles `H`.
pub struct PageCache<F, H> {
    pages: BTreeMap<(FileId, u64), Rc<F>>,
    handles: BTreeMap<FileId, Handle<H>>,
    limit: usize,
}

impl<F, H> PageCache<F, H> {
    pub fn new(limit: usize) -> Self {
        PageCache {
            pages: BTreeMap::new(),
            handles: BTreeMap::new(),
            limit,
        }
    }

    /// No pages (there may be handles of files mapped without any).
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Neither pages nor handles.
    pub fn is_idle(&self) -> bool {
        self.pages.is_empty() && self.handles.is_empty()
    }

    /// The handle `file`'s pages are read through.
    pub fn reader(&self, file: FileId) -> Option<&H> {
        self.handles.get(&file).map(|h| &h.handle)
    }

    /// The frame of page `index` of `file`.
    pub fn get(&self, file: FileId, index: u64) -> Option<Rc<F>> {
        self.pages.get(&(file, index)).cloned()
    }

    /// True when `more` new pages fit under the limit.
    pub fn room(&self, more: usize) -> bool {
        self.pages.len().saturating_add(more) <= self.limit
    }

    /// Adds page `index` of `file` (the caller read it from the file);
    /// `ENOMEM` at the limit.
    pub fn insert(&mut self, file: FileId, index: u64, frame: Rc<F>) -> Result<(), Errno> {
        if !self.pages.contains_key(&(file, index)) && !self.room(1) {
            return Err(Errno::ENOMEM);
        }
        self.pages.insert((file, index), frame);
        Ok(())
    }

    /// Offers `handle` for writing `file` back: kept when the file has
    /// none yet, or when it may write and the one kept may not. The
    /// handle not kept is returned (the caller releases it).
    pub fn offer_handle(&mut self, file: FileId, handle: H, writable: bool) -> Option<H> {
        match self.handles.get_mut(&file) {
            Some(h) if h.writable || !writable => Some(handle),
            Some(h) => {
                h.writable = true;
                Some(core::mem::replace(&mut h.handle, handle))
            }
            None => {
                self.handles.insert(file, Handle { handle, writable });
                None
            }
        }
    }

    /// The handle `file` is written back through, when it may write.
    pub fn writer(&self, file: FileId) -> Option<&H> {
        self.handles
            .get(&file)
            .filter(|h| h.writable)
            .map(|h| &h.handle)
    }

    /// True when `file` has any page.
    pub fn holds(&self, file: FileId) -> bool {
        self.pages
            .range((file, 0)..=(file, u64::MAX))
            .next()
            .is_some()
    }

    /// The pages of `file` in `first..=last` (page indexes), in order.
    pub fn pages_of(&self, file: FileId, first: u64, last: u64) -> Vec<(u64, Rc<F>)> {
        self.pages
            .range((file, first)..=(file, last))
            .map(|(&(_, i), f)| (i, f.clone()))
            .collect()
    }

    /// Each frame's file and page index, by the frame's address.
    pub fn index_by_frame(&self) -> BTreeMap<*const F, (FileId, u64)> {
        self.pages
            .iter()
            .map(|(&k, f)| (Rc::as_ptr(f), k))
            .collect()
    }

    /// The files with a write-back handle.
    pub fn files(&self) -> Vec<FileId> {
        self.handles.keys().copied().collect()
    }

    /// Pages no process maps any more (only the cache holds their frame).
    pub fn unmapped(&self) -> Vec<(FileId, u64)> {
        self.pages
            .iter()
            .filter(|(_, f)| Rc::strong_count(f) == 1)
            .map(|(&k, _)| k)
            .collect()
    }

    /// Removes a page; its frame.
    pub fn remove(&mut self, file: FileId, index: u64) -> Option<Rc<F>> {
        self.pages.remove(&(file, index))
    }

    /// Removes and returns the handles of files without pages left that
    /// no process maps (`mapped` false).
    pub fn idle_handles(&mut self, mapped: impl Fn(FileId) -> bool) -> Vec<H> {
        let idle: Vec<FileId> = self
            .handles
            .keys()
            .filter(|&&f| !mapped(f) && self.pages.range((f, 0)..=(f, u64::MAX)).next().is_none())
            .copied()
            .collect();
        idle.into_iter()
            .filter_map(|f| self.handles.remove(&f).map(|h| h.handle))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_bounded_shared_and_go_when_unmapped() {
        let mut c: PageCache<u8, &str> = PageCache::new(2);
        let file = (1, 12);
        let a = Rc::new(1u8);
        let b = Rc::new(2u8);
        assert!(c.insert(file, 0, a.clone()).is_ok());
        assert!(c.insert(file, 1, b.clone()).is_ok());
        assert_eq!(c.insert((1, 13), 0, Rc::new(3)), Err(Errno::ENOMEM));
        assert!(
            c.insert(file, 1, b.clone()).is_ok(),
            "replacing is no new page"
        );
        assert!(c.get(file, 0).is_some_and(|f| Rc::ptr_eq(&f, &a)));
        assert_eq!(c.index_by_frame().get(&Rc::as_ptr(&b)), Some(&(file, 1)));
        assert_eq!(c.pages_of(file, 1, 5).len(), 1);
        assert!(c.holds(file) && !c.holds((1, 13)) && !c.holds((1, 11)));
        assert_eq!(c.offer_handle(file, "ro", false), None);
        assert_eq!(c.files(), alloc::vec![file]);
        assert_eq!(
            c.writer(file),
            None,
            "a read-only handle writes nothing back"
        );
        assert_eq!(c.offer_handle(file, "rw", true), Some("ro"));
        assert_eq!(c.offer_handle(file, "rw2", true), Some("rw2"));
        assert_eq!(c.writer(file), Some(&"rw"));
        assert!(c.unmapped().is_empty(), "both still mapped");
        drop(a);
        assert_eq!(c.unmapped(), alloc::vec![(file, 0)]);
        assert!(c.remove(file, 0).is_some());
        assert!(c.idle_handles(|_| false).is_empty(), "page 1 is left");
        drop(b);
        assert!(c.remove(file, 1).is_some());
        assert!(c.is_empty() && !c.is_idle() && !c.holds(file));
        assert!(c.idle_handles(|f| f == file).is_empty(), "still mapped");
        assert_eq!(c.reader(file), Some(&"rw"));
        assert_eq!(c.idle_handles(|_| false), alloc::vec!["rw"]);
        assert!(c.is_idle() && c.reader(file).is_none());
    }
}
