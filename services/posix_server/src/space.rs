//! A Linux process's address space on seL4: its VSpace, the layout of
//! reserved ranges (`posix::vm`), and the pages present. A page's frame
//! belongs to the server (mapped in its window too, see `window`); the
//! process maps a copy of the frame capability, read-only or read-write.
//! Reserved pages get a frame when first touched, by the process (a page
//! fault) or by a system call writing into them: the program's pages map
//! the frames of its loaded image (`programs`), the others fresh zeroed
//! ones. A private frame that another holder also has (a forked relative,
//! the loaded image) is mapped read-only, and the first store to it gives
//! the process its own copy (copy-on-write).

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::ops::Range;

use kaal_broker::kernel::{Access, Cache};
use kaal_sel4::cap::{Cap, Pml4};
use kaal_sel4::CPtr;
use posix::errno::Errno;
use posix::vm::{maps_writable, subtract, Area, Kind, Layout, Prot};

use crate::window::FrameMem;
use crate::Broker;

pub const PAGE: u64 = 4096;

/// A program's pages as loaded, by address: every process running it
/// maps these frames until it writes to one.
pub type ImageFrames = RefCell<BTreeMap<u64, Rc<FrameMem>>>;

/// Frees the loaded pages of a program no one keeps any more (the last
/// holder of `frames`), but for those a process still maps.
pub fn release_image(broker: &mut Broker, frames: Rc<ImageFrames>) {
    let Ok(frames) = Rc::try_unwrap(frames) else {
        return;
    };
    for (_, f) in frames.into_inner() {
        Space::free_frame(broker, f);
    }
}

/// A process's memory as the signal code reads and writes it.
pub struct Mem<'a> {
    pub space: &'a mut Space,
    pub broker: &'a mut Broker,
}

impl posix::signal::UserMem for Mem<'_> {
    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<(), Errno> {
        self.space.read(self.broker, addr, out)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.space.write(self.broker, addr, data)
    }
}

/// A present page: its frame and the process's mapping of it.
#[derive(Debug)]
struct Page {
    frame: Rc<FrameMem>,
    copy: CPtr,
    access: Access,
}

/// The program behind a space's `Image` pages not touched yet.
#[derive(Clone, Debug)]
struct Backing {
    frames: Rc<ImageFrames>,
    /// Where absent pages still come from the program: its segments, less
    /// what was unmapped or replaced since.
    pending: Vec<Range<u64>>,
}

/// One process's address space.
#[derive(Debug)]
pub struct Space {
    pub vspace: Pml4,
    pub layout: Layout,
    pages: BTreeMap<u64, Page>,
    image: Option<Backing>,
    /// The page of the last fault that found its access allowed already,
    /// and how many such faults came there in a row.
    spurious: (u64, u32),
}

/// Faults in a row on one page whose mapping allows the access before the
/// process gets SIGSEGV: more than threads queued on one page would make,
/// so a mapping that disagrees with `pages` ends instead of looping.
const SPURIOUS_LIMIT: u32 = 64;

/// The broker's failure as a Linux error: out of memory or slots (a
/// kernel refusal is printed: it is a bug of the server's).
fn nomem(e: kaal_broker::BrokerError) -> Errno {
    if let kaal_broker::BrokerError::Kernel { .. } = e {
        kaal_rt::println!("posix: the kernel refused: {e}");
    }
    Errno::ENOMEM
}

fn access_of(prot: Prot) -> Access {
    if prot.write {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    }
}

/// The access `frame` is mapped with in `area` (`posix::vm::maps_writable`:
/// a frame another holder has too is read-only in a private area).
fn access_for(area: &Area, frame: &Rc<FrameMem>) -> Access {
    if maps_writable(area, frame.dirty.get(), Rc::strong_count(frame) > 1) {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    }
}

impl Space {
    /// An address space that holds nothing (an ended process's).
    pub fn empty() -> Space {
        Space {
            vspace: Pml4::from_cptr(0),
            layout: Layout::new(),
            pages: BTreeMap::new(),
            image: None,
            spurious: (0, 0),
        }
    }

    pub fn new(broker: &mut Broker) -> Result<Space, Errno> {
        Ok(Space {
            vspace: broker.new_vspace().map_err(nomem)?,
            layout: Layout::new(),
            pages: BTreeMap::new(),
            image: None,
            spurious: (0, 0),
        })
    }

    /// Lets the `Image` pages of `segments` come from `frames` (a loaded
    /// program's) when first touched.
    pub fn set_image(&mut self, frames: Rc<ImageFrames>, segments: Vec<Range<u64>>) {
        self.image = Some(Backing {
            frames,
            pending: segments,
        });
    }

    /// Pages present.
    pub fn present(&self) -> usize {
        self.pages.len()
    }

    /// Maps `frame` at `vaddr` with `access`; on failure the frame is
    /// freed unless another holder has it.
    fn map(
        &mut self,
        broker: &mut Broker,
        vaddr: u64,
        frame: Rc<FrameMem>,
        access: Access,
    ) -> Result<(), Errno> {
        let shared = frame
            .mem
            .frames()
            .next()
            .ok_or(Errno::ENOMEM)
            .and_then(|cap| {
                broker
                    .share_frames(&[cap], self.vspace, vaddr, access, Cache::WriteBack)
                    .map_err(nomem)
            })
            .and_then(|copies| copies.first().copied().ok_or(Errno::ENOMEM));
        match shared {
            Ok(copy) => {
                self.pages.insert(
                    vaddr,
                    Page {
                        frame,
                        copy,
                        access,
                    },
                );
                Ok(())
            }
            Err(e) => {
                Self::free_frame(broker, frame);
                Err(e)
            }
        }
    }

    /// Maps `frame` (shared with other processes: a shared file's page) at
    /// `vaddr` with the reserved area's protection.
    pub fn map_frame(
        &mut self,
        broker: &mut Broker,
        vaddr: u64,
        frame: Rc<FrameMem>,
    ) -> Result<(), Errno> {
        let (_, area) = self.layout.area_at(vaddr).ok_or(Errno::EFAULT)?;
        let access = access_for(&area, &frame);
        self.map(broker, vaddr, frame, access)
    }

    /// The frame present at `vaddr`.
    pub fn frame_of(&self, vaddr: u64) -> Option<Rc<FrameMem>> {
        self.pages
            .get(&(vaddr & !(PAGE - 1)))
            .map(|p| p.frame.clone())
    }

    /// The addresses of the pages present in `range`.
    pub fn pages_in(&self, range: Range<u64>) -> Vec<u64> {
        self.pages.range(range).map(|(&v, _)| v).collect()
    }

    /// The frames present in `range`.
    pub fn frames_in(&self, range: Range<u64>) -> Vec<Rc<FrameMem>> {
        self.pages
            .range(range)
            .map(|(_, p)| p.frame.clone())
            .collect()
    }

    /// A fresh zeroed frame.
    pub fn fresh(broker: &mut Broker) -> Result<Rc<FrameMem>, Errno> {
        let mem = broker.allocate_memory(PAGE).map_err(nomem)?;
        Ok(Rc::new(FrameMem::new(mem)))
    }

    /// The loaded program's frame for the absent page `vaddr` of `area`,
    /// if the page still comes from the program.
    fn image_frame(&self, vaddr: u64, area: &Area) -> Option<Rc<FrameMem>> {
        let image = self.image.as_ref().filter(|_| area.kind == Kind::Image)?;
        if !image.pending.iter().any(|r| r.contains(&vaddr)) {
            return None;
        }
        image.frames.borrow().get(&vaddr).cloned()
    }

    /// Gives the reserved page at `vaddr` its frame (the program's, else
    /// a zeroed one); nothing if present already.
    pub fn populate(&mut self, broker: &mut Broker, vaddr: u64) -> Result<(), Errno> {
        let vaddr = vaddr & !(PAGE - 1);
        if self.pages.contains_key(&vaddr) {
            return Ok(());
        }
        let (_, area) = self.layout.area_at(vaddr).ok_or(Errno::EFAULT)?;
        if let Kind::SharedFile { .. } = area.kind {
            // Beyond the file's end when mapped: no page to give.
            return Err(Errno::EFAULT);
        }
        let frame = match self.image_frame(vaddr, &area) {
            Some(f) => f,
            None => Self::fresh(broker)?,
        };
        let access = access_for(&area, &frame);
        self.map(broker, vaddr, frame, access)
    }

    /// Makes the present page `vaddr` of `area` the process's own and maps
    /// it with the area's protection: a private frame another holder has
    /// is copied first (copy-on-write), a shared file's page becomes
    /// dirty. Returns the frame to write to.
    fn own(&mut self, broker: &mut Broker, vaddr: u64, area: &Area) -> Result<Rc<FrameMem>, Errno> {
        let access = access_of(area.prot);
        let p = self.pages.get_mut(&vaddr).ok_or(Errno::EFAULT)?;
        if let Kind::SharedFile { .. } = area.kind {
            p.frame.dirty.set(true);
        }
        if area.kind.is_shared() || Rc::strong_count(&p.frame) == 1 {
            if p.access != access {
                // On one core without PCIDs the process's stale TLB entry
                // for the page cannot outlive the switch back into it.
                broker.remap(p.copy, self.vspace, access).map_err(nomem)?;
                p.access = access;
            }
            return Ok(p.frame.clone());
        }
        let mine = Self::fresh(broker)?;
        mine.copy_from(&p.frame);
        let old = self.pages.remove(&vaddr).ok_or(Errno::EFAULT)?;
        if let Err(e) = broker.unshare(alloc::vec![old.copy]) {
            // Still mapped, maybe: the frame is kept, never handed out again.
            kaal_rt::println!("posix: unmapping a page: {e}");
            core::mem::forget(old.frame);
            return Err(Errno::ENOMEM);
        }
        if let Err(e) = self.map(broker, vaddr, mine, access) {
            // The page keeps its old frame: nothing is lost (mapping again
            // what was just unmapped needs no new table or slot).
            if self.map(broker, vaddr, old.frame, old.access).is_err() {
                kaal_rt::println!("posix: a page at {vaddr:#x} is lost");
            }
            return Err(e);
        }
        Self::free_frame(broker, old.frame);
        self.frame_of(vaddr).ok_or(Errno::EFAULT)
    }

    /// The frame behind `vaddr`, populating it; `EFAULT` when the area is
    /// not reserved or lacks the access asked for (`write`). A frame to
    /// write to is the process's own.
    fn frame_at(
        &mut self,
        broker: &mut Broker,
        vaddr: u64,
        write: bool,
    ) -> Result<Rc<FrameMem>, Errno> {
        let (_, area) = self.layout.area_at(vaddr).ok_or(Errno::EFAULT)?;
        if (write && !area.prot.write) || (!write && !area.prot.read) {
            return Err(Errno::EFAULT);
        }
        self.populate(broker, vaddr)?;
        let v = vaddr & !(PAGE - 1);
        if write {
            return self.own(broker, v, &area);
        }
        self.pages
            .get(&v)
            .map(|p| p.frame.clone())
            .ok_or(Errno::EFAULT)
    }

    /// Copies user memory at `vaddr` into `out` (the process must be able
    /// to read it).
    pub fn read(&mut self, broker: &mut Broker, vaddr: u64, out: &mut [u8]) -> Result<(), Errno> {
        let mut done = 0usize;
        while done < out.len() {
            let at = vaddr.checked_add(done as u64).ok_or(Errno::EFAULT)?;
            let off = (at % PAGE) as usize;
            let n = (PAGE as usize - off).min(out.len() - done);
            let frame = self.frame_at(broker, at, false)?;
            let dst = out.get_mut(done..done + n).ok_or(Errno::EFAULT)?;
            frame.read(off, dst);
            done += n;
        }
        Ok(())
    }

    /// Copies `data` to user memory at `vaddr` (the process must be able to
    /// write it).
    pub fn write(&mut self, broker: &mut Broker, vaddr: u64, data: &[u8]) -> Result<(), Errno> {
        self.write_as(broker, vaddr, data, false)
    }

    /// As [`Space::write`]; `loader` also writes read-only pages (placing
    /// the initial stack, patching a system-call site), always into the
    /// process's own copy: never into a frame another process or the
    /// program has (a patch at an address a process chose must not reach
    /// the others), and never into shared memory (`EFAULT`).
    pub fn write_as(
        &mut self,
        broker: &mut Broker,
        vaddr: u64,
        data: &[u8],
        loader: bool,
    ) -> Result<(), Errno> {
        let mut done = 0usize;
        while done < data.len() {
            let at = vaddr.checked_add(done as u64).ok_or(Errno::EFAULT)?;
            let off = (at % PAGE) as usize;
            let n = (PAGE as usize - off).min(data.len() - done);
            let frame = if loader {
                let (_, area) = self.layout.area_at(at).ok_or(Errno::EFAULT)?;
                if area.kind.is_shared() {
                    return Err(Errno::EFAULT);
                }
                self.populate(broker, at)?;
                self.own(broker, at & !(PAGE - 1), &area)?
            } else {
                self.frame_at(broker, at, true)?
            };
            let src = data.get(done..done + n).ok_or(Errno::EFAULT)?;
            frame.write(off, src);
            done += n;
        }
        Ok(())
    }

    /// A NUL-terminated string at `vaddr`, at most `max` bytes.
    pub fn read_cstr(
        &mut self,
        broker: &mut Broker,
        vaddr: u64,
        max: usize,
    ) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut at = vaddr;
        loop {
            let off = (at % PAGE) as usize;
            let mut chunk = [0u8; 256];
            let n = (PAGE as usize - off).min(chunk.len());
            let part = chunk.get_mut(..n).ok_or(Errno::EFAULT)?;
            self.read(broker, at, part)?;
            if let Some(end) = part.iter().position(|&b| b == 0) {
                out.extend_from_slice(part.get(..end).unwrap_or(&[]));
                return Ok(out);
            }
            out.extend_from_slice(part);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            at = at.checked_add(n as u64).ok_or(Errno::EFAULT)?;
        }
    }

    /// A page fault at `addr` (`write` if a write): gives a reserved page
    /// its frame, or a read-only mapped page of a writable area its own
    /// (nothing when the page's mapping allows the access already);
    /// `EFAULT` when the access is not allowed (the process then gets
    /// SIGSEGV), `ENXIO` for an absent shared file page (the file's end
    /// was before it when mapped: `Server::shm_fault`).
    pub fn fault(
        &mut self,
        broker: &mut Broker,
        addr: u64,
        write: bool,
        exec: bool,
    ) -> Result<(), Errno> {
        let (_, area) = self.layout.area_at(addr).ok_or(Errno::EFAULT)?;
        let allowed = if write {
            area.prot.write
        } else if exec {
            area.prot.exec
        } else {
            area.prot.read || area.prot.exec
        };
        let v = addr & !(PAGE - 1);
        if !allowed {
            return Err(Errno::EFAULT);
        }
        if let Some(p) = self.pages.get(&v) {
            // A store to a page mapped read-only in a writable area (a
            // shared file page's first, a copy-on-write page).
            if write && p.access == Access::ReadOnly {
                return self.own(broker, v, &area).map(drop);
            }
            // The mapping allows the access now: another thread's fault,
            // queued ahead while the server waited on a service, mapped
            // the page. The thread runs the access again.
            let count = if self.spurious.0 == v {
                self.spurious.1.saturating_add(1)
            } else {
                1
            };
            self.spurious = (v, count);
            return if count > SPURIOUS_LIMIT {
                Err(Errno::EFAULT)
            } else {
                Ok(())
            };
        }
        self.spurious = (0, 0);
        if let Kind::SharedFile { .. } = area.kind {
            // A shared file page absent was beyond the file's end: the
            // server's (`shmfile`).
            return Err(Errno::ENXIO);
        }
        if write {
            if let Some(image) = self.image_frame(v, &area) {
                // A store to a program page: straight to the process's copy.
                let mine = Self::fresh(broker)?;
                mine.copy_from(&image);
                return self.map(broker, v, mine, access_of(area.prot));
            }
        }
        self.populate(broker, v)
    }

    /// Unmaps and frees the pages of `ranges` (the layout dropped them);
    /// those ranges no longer come from the program.
    pub fn drop_pages(&mut self, broker: &mut Broker, ranges: &[Range<u64>]) {
        for r in ranges {
            if let Some(image) = &mut self.image {
                subtract(&mut image.pending, r);
            }
            let gone: Vec<u64> = self.pages.range(r.start..r.end).map(|(&v, _)| v).collect();
            for v in gone {
                if let Some(p) = self.pages.remove(&v) {
                    Self::release(broker, p);
                }
            }
        }
    }

    fn release(broker: &mut Broker, p: Page) {
        if let Err(e) = broker.unshare(alloc::vec![p.copy]) {
            // It may still be mapped: the frame is kept, never handed out
            // again (to another process, say, through the kept pages).
            kaal_rt::println!("posix: unmapping a page: {e}");
            core::mem::forget(p.frame);
            return;
        }
        Self::free_frame(broker, p.frame);
    }

    /// Frees `frame` unless another holder has it.
    fn free_frame(broker: &mut Broker, frame: Rc<FrameMem>) {
        if let Ok(f) = Rc::try_unwrap(frame) {
            if let Err(e) = broker.free_memory(f.mem) {
                kaal_rt::println!("posix: free_memory: {e}");
            }
        }
    }

    /// Maps the present pages of `ranges` again with the protection the
    /// layout now gives them (a frame another holder has stays read-only
    /// until the first store, as after a fork).
    pub fn reprotect(&mut self, broker: &mut Broker, ranges: &[Range<u64>]) -> Result<(), Errno> {
        for r in ranges {
            for (&v, p) in self.pages.range_mut(r.start..r.end) {
                let Some((_, area)) = self.layout.area_at(v) else {
                    continue;
                };
                let access = access_for(&area, &p.frame);
                if p.access != access {
                    broker.remap(p.copy, self.vspace, access).map_err(nomem)?;
                    p.access = access;
                }
            }
        }
        Ok(())
    }

    /// A copy for a forked child: shared memory shares its frames; the
    /// other pages share theirs read-only in both processes until either
    /// stores to one (copy-on-write).
    pub fn fork(&mut self, broker: &mut Broker) -> Result<Space, Errno> {
        let mut child = Space::new(broker)?;
        child.layout = self.layout.clone();
        child.image = self.image.clone();
        let present: Vec<u64> = self.pages.keys().copied().collect();
        for v in present {
            if let Err(e) = self.share_with(broker, &mut child, v) {
                child.destroy(broker);
                return Err(e);
            }
        }
        Ok(child)
    }

    /// Maps the present page `v` in `child` too, with the frame shared.
    fn share_with(&mut self, broker: &mut Broker, child: &mut Space, v: u64) -> Result<(), Errno> {
        let (_, area) = self.layout.area_at(v).ok_or(Errno::EFAULT)?;
        let p = self.pages.get_mut(&v).ok_or(Errno::EFAULT)?;
        let frame = p.frame.clone();
        let access = access_for(&area, &frame);
        if p.access != access {
            broker.remap(p.copy, self.vspace, access).map_err(nomem)?;
            p.access = access;
        }
        child.map(broker, v, frame, access)
    }

    /// Moves the present pages of `from` to the same offsets from `to`
    /// (`mremap`): each frame is unmapped at its old address and mapped at
    /// the new one with the protection the layout gives there. The
    /// program's pages not touched yet are brought in first, since they
    /// come from the program only at their own addresses.
    pub fn move_pages(
        &mut self,
        broker: &mut Broker,
        from: Range<u64>,
        to: u64,
    ) -> Result<(), Errno> {
        for v in (from.start..from.end).step_by(PAGE as usize) {
            let pending = self
                .layout
                .area_at(v)
                .is_some_and(|(_, a)| self.image_frame(v, &a).is_some());
            if pending && !self.pages.contains_key(&v) {
                self.populate(broker, v)?;
            }
        }
        let present: Vec<u64> = self.pages.range(from.clone()).map(|(&v, _)| v).collect();
        for v in present {
            let Some(p) = self.pages.remove(&v) else {
                continue;
            };
            if let Err(e) = broker.unshare(alloc::vec![p.copy]) {
                // Maybe still mapped at `v`: kept, never handed out again.
                kaal_rt::println!("posix: unmapping a page: {e}");
                core::mem::forget(p.frame);
                return Err(Errno::ENOMEM);
            }
            let at = to + (v - from.start);
            let (_, area) = self.layout.area_at(at).ok_or(Errno::EFAULT)?;
            let access = access_for(&area, &p.frame);
            self.map(broker, at, p.frame, access)?;
        }
        Ok(())
    }

    /// Frees the VSpace, every page, and the program's frames if this was
    /// their last holder.
    pub fn destroy(mut self, broker: &mut Broker) {
        // The address space goes first and its mappings with it, so each
        // page's copy needs only deleting.
        let gone = self.vspace.cptr() != 0 && broker.free_vspace(self.vspace).is_ok();
        let pages = core::mem::take(&mut self.pages);
        if gone {
            let copies = pages.values().map(|p| p.copy).collect();
            if let Err(e) = broker.drop_copies(copies) {
                kaal_rt::println!("posix: deleting pages' copies: {e}");
            }
            for (_, p) in pages {
                Self::free_frame(broker, p.frame);
            }
        } else {
            for (_, p) in pages {
                Self::release(broker, p);
            }
        }
        if let Some(image) = self.image.take() {
            release_image(broker, image.frames);
        }
    }
}
