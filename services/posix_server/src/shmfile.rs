//! `MAP_SHARED` file mappings: every mapping of a file page, in any
//! process, maps the one frame the server's page cache
//! (`posix::pagecache`) holds for it, so a store is seen by every mapper
//! at once. A page is mapped read-only until its first store, whose fault
//! marks it dirty (`space.rs`); dirty pages are written back to the file
//! through the VFS on `msync`, `fsync`, `sync`, when the last mapping of a
//! page goes (`munmap`, `mremap`, exit, `execve`) and before the file is
//! read through a descriptor; `write` through a descriptor also stores
//! into the shared pages, so `read`, `write` and the mappings of one file
//! agree at every system call. Write-back never goes past the file's size.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::ops::Range;

use kaal_client::file::Fd;
use posix::errno::Errno;
use posix::pagecache::{FileId, PageCache};
use posix::vm::{file_bytes_in_page, Kind, PAGE};

use crate::files::{file_errno, Object, OpenRef};
use crate::process::Pid;
use crate::window::FrameMem;
use crate::Server;

/// At most this many shared file pages (16 MiB) exist at once.
pub const MAX_PAGES: usize = 4096;

pub type Cache = PageCache<FrameMem, OpenRef>;

/// The VFS descriptor of a write-back handle.
fn vfd_of(f: &OpenRef) -> Option<Fd> {
    match &f.borrow().object {
        Object::Vfs { fd, .. } => Some(*fd),
        _ => None,
    }
}

impl Server {
    /// The identity and size of VFS file `vfd`.
    pub(crate) fn file_id(&mut self, vfd: Fd) -> Result<(FileId, u64), Errno> {
        let st = self.files.fstat(vfd).map_err(file_errno)?;
        Ok(((u64::from(st.dev), st.ino), st.size))
    }

    /// Maps the pages of the file of `f` (VFS descriptor `vfd`, identity
    /// `id`, `size` bytes) from
    /// offset `off` into `range` of process `pid`, which the layout
    /// reserved as a shared file mapping (its kind is made exact here:
    /// the file and where the mapping was placed). Pages wholly beyond
    /// the file's end stay absent (`shm_fault`).
    pub(crate) fn shm_map(
        &mut self,
        pid: Pid,
        f: &OpenRef,
        (vfd, id, size): (Fd, FileId, u64),
        range: Range<u64>,
        off: u64,
    ) -> Result<(), Errno> {
        let kind = Kind::SharedFile {
            may_write: Self::writable(f),
            file: id,
            base: range.start.wrapping_sub(off),
        };
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        p.space.layout.retag(range.clone(), kind);
        let first = off / PAGE;
        let inside = size
            .div_ceil(PAGE)
            .saturating_sub(first)
            .min((range.end - range.start) / PAGE);
        let new = (0..inside)
            .filter(|i| self.shm.get(id, first + i).is_none())
            .count();
        if !self.shm.room(new) {
            return Err(Errno::ENOMEM);
        }
        if let Some(old) = self.shm.offer_handle(id, f.clone(), Self::writable(f)) {
            self.release(old);
        }
        for i in 0..inside {
            let frame = self.shm_page(id, vfd, first + i, size)?;
            let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
            p.space
                .map_frame(&mut self.broker, range.start + i * PAGE, frame)?;
        }
        Ok(())
    }

    /// Page `index` of file `id` (`size` bytes, read through `vfd`): the
    /// cached one, else read now and cached (`ENOMEM` at the limit).
    fn shm_page(
        &mut self,
        id: FileId,
        vfd: Fd,
        index: u64,
        size: u64,
    ) -> Result<Rc<FrameMem>, Errno> {
        if let Some(frame) = self.shm.get(id, index) {
            return Ok(frame);
        }
        if !self.shm.room(1) {
            return Err(Errno::ENOMEM);
        }
        let mut buf = [0u8; PAGE as usize];
        let n = file_bytes_in_page(size, index);
        let part = buf.get_mut(..n).unwrap_or(&mut []);
        let got = self.at_offset(vfd, index * PAGE, |s| {
            s.files.read(vfd, part).map_err(file_errno)
        })?;
        let mem = self
            .broker
            .allocate_memory(PAGE)
            .map_err(|_| Errno::ENOMEM)?;
        let frame = Rc::new(FrameMem::new(mem));
        frame.write(0, buf.get(..got).unwrap_or(&[]));
        // Cached only once read whole (a cached page may be written
        // back); one not mapped after all is freed by `shm_collect`.
        if let Err(e) = self.shm.insert(id, index, frame.clone()) {
            if let Ok(f) = Rc::try_unwrap(frame) {
                let _ = self.broker.free_memory(f.mem);
            }
            return Err(e);
        }
        Ok(frame)
    }

    /// A fault on an absent page of a shared file mapping (beyond the
    /// file's end when mapped): the page if the file now reaches it,
    /// else `ENXIO` (SIGBUS, as Linux).
    pub(crate) fn shm_fault(&mut self, pid: Pid, addr: u64) -> Result<(), Errno> {
        let page = addr & !(PAGE - 1);
        let p = self.procs.get(&pid).ok_or(Errno::ESRCH)?;
        let (_, area) = p.space.layout.area_at(page).ok_or(Errno::ENXIO)?;
        let (id, off) = area.kind.file_offset(page).ok_or(Errno::ENXIO)?;
        let vfd = self.shm.reader(id).and_then(vfd_of).ok_or(Errno::ENXIO)?;
        let (_, size) = self.file_id(vfd)?;
        let index = off / PAGE;
        if file_bytes_in_page(size, index) == 0 {
            return Err(Errno::ENXIO);
        }
        let frame = self.shm_page(id, vfd, index, size)?;
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        p.space.map_frame(&mut self.broker, page, frame)
    }

    /// Before a system call copies `len` bytes at `addr` of process `pid`:
    /// the absent shared file pages there that the file now reaches are
    /// mapped, as the process's own touch would (the others stay absent:
    /// `EFAULT`).
    pub(crate) fn shm_touch(&mut self, pid: Pid, addr: u64, len: usize) {
        if self.shm.is_idle() {
            return;
        }
        let Some(p) = self.procs.get(&pid) else {
            return;
        };
        let end = addr.saturating_add(len as u64);
        let mut absent = Vec::new();
        let mut at = addr & !(PAGE - 1);
        // Area by area: pages are looked up only in shared file mappings,
        // so a process without one pays a lookup an area.
        while at < end {
            let Some((_, area)) = p.space.layout.area_at(at) else {
                break;
            };
            if !matches!(area.kind, Kind::SharedFile { .. }) {
                at = area.end;
                continue;
            }
            while at < area.end.min(end) {
                if p.space.frame_of(at).is_none() {
                    absent.push(at);
                }
                at += PAGE;
            }
        }
        for page in absent {
            let _ = self.shm_fault(pid, page);
        }
    }

    /// Writes pages `pages` of file `id` back through its handle (none
    /// when no mapping of it could write), each clipped to the file's end.
    fn shm_write_back(&mut self, id: FileId, pages: &[(u64, Rc<FrameMem>)]) -> Result<(), Errno> {
        let Some(vfd) = self.shm.writer(id).and_then(vfd_of) else {
            return Ok(());
        };
        if pages.is_empty() {
            return Ok(());
        }
        let (_, size) = self.file_id(vfd)?;
        for (index, frame) in pages {
            let n = file_bytes_in_page(size, *index);
            if n == 0 || !frame.dirty.get() {
                continue;
            }
            let mut buf = [0u8; PAGE as usize];
            let part = buf.get_mut(..n).unwrap_or(&mut []);
            frame.read(0, part);
            let part = &*part;
            self.at_offset(vfd, index * PAGE, |s| {
                s.files.write(vfd, part).map_err(file_errno)
            })?;
        }
        Ok(())
    }

    /// Writes every shared page of file `id` back.
    pub(crate) fn shm_flush(&mut self, id: FileId) -> Result<(), Errno> {
        let pages = self.shm.pages_of(id, 0, u64::MAX);
        self.shm_write_back(id, &pages)
    }

    /// Before file `id` is read through a descriptor: its shared pages
    /// written back, so the read sees the mappings' stores.
    pub(crate) fn shm_before_read(&mut self, id: FileId) -> Result<(), Errno> {
        if !self.shm.holds(id) {
            return Ok(());
        }
        self.shm_flush(id)
    }

    /// After `data` was written through VFS file `vfd` (file `id`), ending
    /// at its offset: the shared pages take the bytes too.
    pub(crate) fn shm_wrote(&mut self, vfd: Fd, id: FileId, data: &[u8]) -> Result<(), Errno> {
        if data.is_empty() || !self.shm.holds(id) {
            return Ok(());
        }
        let end = self
            .files
            .seek(vfd, 0, kaal_client::file::whence::CURRENT)
            .map_err(file_errno)?;
        let start = end.saturating_sub(data.len() as u64);
        let last = end.saturating_sub(1) / PAGE;
        for (index, frame) in self.shm.pages_of(id, start / PAGE, last) {
            let page = index * PAGE;
            let from = page.max(start);
            let to = (page + PAGE).min(end);
            let src = data
                .get((from - start) as usize..(to - start) as usize)
                .unwrap_or(&[]);
            frame.write((from - page) as usize, src);
        }
        Ok(())
    }

    /// After file `id` was truncated to `size`: the last page reads zeros
    /// past it (as the file would if it grew again), and the pages wholly
    /// past it leave every mapping and the cache, so that touching one is
    /// SIGBUS until the file grows again (`shm_fault`), as on Linux.
    pub(crate) fn shm_truncated(&mut self, id: FileId, size: u64) {
        if !self.shm.holds(id) {
            return;
        }
        let zeros = [0u8; PAGE as usize];
        if let Some(last) = self.shm.get(id, size / PAGE) {
            let keep = file_bytes_in_page(size, size / PAGE);
            last.write(keep, zeros.get(keep..).unwrap_or(&[]));
        }
        let first_gone = size.div_ceil(PAGE);
        let gone = self.shm.pages_of(id, first_gone, u64::MAX);
        if gone.is_empty() {
            return;
        }
        for p in self.procs.values_mut() {
            let areas: Vec<(u64, u64, u64)> = p
                .space
                .layout
                .areas()
                .filter_map(|(start, a)| match a.kind {
                    Kind::SharedFile { file, base, .. } if file == id => Some((start, a.end, base)),
                    _ => None,
                })
                .collect();
            let mut dropped: Vec<Range<u64>> = Vec::new();
            for (start, end, base) in areas {
                dropped.extend(
                    p.space
                        .pages_in(start..end)
                        .into_iter()
                        .filter(|v| v.wrapping_sub(base) / PAGE >= first_gone)
                        .map(|v| v..v + PAGE),
                );
            }
            p.space.drop_pages(&mut self.broker, &dropped);
        }
        for (index, frame) in gone {
            drop(frame);
            if let Some(f) = self
                .shm
                .remove(id, index)
                .and_then(|f| Rc::try_unwrap(f).ok())
            {
                let _ = self.broker.free_memory(f.mem);
            }
        }
    }

    /// Writes back and frees the pages no process maps any more, and
    /// releases the handles of files left without pages.
    pub(crate) fn shm_collect(&mut self) {
        if self.shm.is_idle() {
            return;
        }
        let mut by_file: BTreeMap<FileId, Vec<(u64, Rc<FrameMem>)>> = BTreeMap::new();
        for (id, index) in self.shm.unmapped() {
            if let Some(frame) = self.shm.remove(id, index) {
                by_file.entry(id).or_default().push((index, frame));
            }
        }
        for (id, pages) in by_file {
            if let Err(e) = self.shm_write_back(id, &pages) {
                kaal_rt::println!("posix: writing a shared mapping back: {e:?}");
            }
            for (_, frame) in pages {
                if let Ok(f) = Rc::try_unwrap(frame) {
                    let _ = self.broker.free_memory(f.mem);
                }
            }
        }
        let mapped: BTreeSet<FileId> = self
            .procs
            .values()
            .flat_map(|p| p.space.layout.areas())
            .filter_map(|(start, a)| a.kind.file_offset(start).map(|(id, _)| id))
            .collect();
        for h in self.shm.idle_handles(|id| mapped.contains(&id)) {
            self.release(h);
        }
    }

    /// `msync(addr, len, flags)`: writes back the shared file pages of the
    /// range (`MS_ASYNC` as `MS_SYNC`: at once); `ENOMEM` when part of the
    /// range is not mapped.
    pub(crate) fn msync(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        flags: u64,
    ) -> Result<u64, Errno> {
        const MS_ASYNC: u64 = 1;
        const MS_INVALIDATE: u64 = 2;
        const MS_SYNC: u64 = 4;
        if !addr.is_multiple_of(PAGE)
            || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
            || flags & (MS_ASYNC | MS_SYNC) == MS_ASYNC | MS_SYNC
        {
            return Err(Errno::EINVAL);
        }
        let end = len
            .checked_add(PAGE - 1)
            .map(|l| l & !(PAGE - 1))
            .and_then(|l| addr.checked_add(l))
            .ok_or(Errno::ENOMEM)?;
        let p = self.procs.get(&pid).ok_or(Errno::ESRCH)?;
        let mut at = addr;
        while at < end {
            let (_, area) = p.space.layout.area_at(at).ok_or(Errno::ENOMEM)?;
            at = area.end;
        }
        let frames = p.space.frames_in(addr..end);
        let index = self.shm.index_by_frame();
        let mut by_file: BTreeMap<FileId, Vec<(u64, Rc<FrameMem>)>> = BTreeMap::new();
        for frame in frames {
            if let Some(&(id, i)) = index.get(&Rc::as_ptr(&frame)) {
                by_file.entry(id).or_default().push((i, frame));
            }
        }
        for (id, pages) in by_file {
            self.shm_write_back(id, &pages)?;
        }
        Ok(0)
    }

    /// `fsync` and `fdatasync`: the file's shared pages written back, then
    /// the VFS's caches.
    pub(crate) fn fsync(&mut self, pid: Pid, fd: u64) -> Result<u64, Errno> {
        let f = self.file(pid, fd)?;
        let id = match &f.borrow().object {
            Object::Vfs { id, .. } => Some(*id),
            _ => None,
        };
        if let Some(id) = id {
            self.shm_before_read(id)?;
        }
        self.files.sync().map_err(file_errno)?;
        Ok(0)
    }

    /// `sync`: every shared page written back, then the VFS's caches.
    pub(crate) fn sync(&mut self) -> Result<u64, Errno> {
        for id in self.shm.files() {
            self.shm_flush(id)?;
        }
        self.files.sync().map_err(file_errno)?;
        Ok(0)
    }
}
