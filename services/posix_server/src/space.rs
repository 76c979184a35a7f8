//! A Linux process's address space on seL4: its VSpace, the layout of
//! reserved ranges (`posix::vm`), and the pages present. A page's frame
//! belongs to the server (mapped in its window too, see `window`); the
//! process maps a copy of the frame capability, read-only or read-write.
//! Reserved pages get a frame when first touched, by the process (a page
//! fault) or by a system call writing into them.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::ops::Range;

use kaal_broker::kernel::{Access, Cache};
use kaal_sel4::cap::{Cap, Pml4};
use kaal_sel4::CPtr;
use posix::errno::Errno;
use posix::vm::{Area, Kind, Layout, Prot};

use crate::window::FrameMem;
use crate::Broker;

pub const PAGE: u64 = 4096;

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

/// A present page: the frame (shared read-only between a parent and a
/// forked child when never writable) and the process's mapping of it.
#[derive(Debug)]
struct Page {
    frame: Rc<FrameMem>,
    copy: CPtr,
    access: Access,
}

/// One process's address space.
#[derive(Debug)]
pub struct Space {
    pub vspace: Pml4,
    pub layout: Layout,
    pages: BTreeMap<u64, Page>,
}

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

/// The access `frame` is mapped with in `area`: a shared file page stays
/// read-only until its first store (a write fault marks it dirty), so
/// pages never stored to are never written back.
fn access_for(area: &Area, frame: &FrameMem) -> Access {
    match area.kind {
        Kind::SharedFile { .. } if !frame.dirty.get() => Access::ReadOnly,
        _ => access_of(area.prot),
    }
}

impl Space {
    /// An address space that holds nothing (an ended process's).
    pub fn empty() -> Space {
        Space {
            vspace: Pml4::from_cptr(0),
            layout: Layout::new(),
            pages: BTreeMap::new(),
        }
    }

    pub fn new(broker: &mut Broker) -> Result<Space, Errno> {
        Ok(Space {
            vspace: broker.new_vspace().map_err(nomem)?,
            layout: Layout::new(),
            pages: BTreeMap::new(),
        })
    }

    /// Pages present.
    pub fn present(&self) -> usize {
        self.pages.len()
    }

    fn map(
        &mut self,
        broker: &mut Broker,
        vaddr: u64,
        frame: Rc<FrameMem>,
        access: Access,
    ) -> Result<(), Errno> {
        let cap = frame.mem.frames().next().ok_or(Errno::ENOMEM)?;
        let copies = broker
            .share_frames(&[cap], self.vspace, vaddr, access, Cache::WriteBack)
            .map_err(nomem)?;
        let copy = copies.first().copied().ok_or(Errno::ENOMEM)?;
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

    /// Maps `frame` (shared with other processes: a program's read-only
    /// page) at `vaddr` with the reserved area's protection.
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

    /// The frames present in `range`.
    pub fn frames_in(&self, range: Range<u64>) -> Vec<Rc<FrameMem>> {
        self.pages
            .range(range)
            .map(|(_, p)| p.frame.clone())
            .collect()
    }

    /// A fresh zeroed frame.
    fn fresh(broker: &mut Broker) -> Result<Rc<FrameMem>, Errno> {
        let mem = broker.allocate_memory(PAGE).map_err(nomem)?;
        Ok(Rc::new(FrameMem::new(mem)))
    }

    /// Gives the reserved page at `vaddr` a zeroed frame (mapped with the
    /// area's protection); nothing if present already.
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
        let frame = Self::fresh(broker)?;
        self.map(broker, vaddr, frame.clone(), access_of(area.prot))
            .inspect_err(|_| {
                if let Ok(f) = Rc::try_unwrap(frame) {
                    let _ = broker.free_memory(f.mem);
                }
            })
    }

    /// The frame behind `vaddr`, populating it; `EFAULT` when the area is
    /// not reserved or lacks the access asked for (`write`).
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
        self.pages
            .get(&(vaddr & !(PAGE - 1)))
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

    /// As [`Space::write`]; `loader` also writes read-only pages (loading
    /// the image, placing the initial stack).
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
                self.populate(broker, at)?;
                self.pages
                    .get(&(at & !(PAGE - 1)))
                    .map(|p| p.frame.clone())
                    .ok_or(Errno::EFAULT)?
            } else {
                self.frame_at(broker, at, true)?
            };
            let src = data.get(done..done + n).ok_or(Errno::EFAULT)?;
            frame.write(off, src);
            frame.dirty.set(true);
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
    /// its frame; `EFAULT` when the access is not allowed (the process
    /// then gets SIGSEGV), `ENXIO` for an absent shared file page (the
    /// file's end was before it when mapped: `Server::shm_fault`).
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
            // A shared file page's first store makes it dirty and writable;
            // any other fault on a present page was a protection violation.
            let first_store = write
                && matches!(area.kind, Kind::SharedFile { .. })
                && p.access == Access::ReadOnly;
            if !first_store {
                return Err(Errno::EFAULT);
            }
            p.frame.dirty.set(true);
            let p = self.pages.remove(&v).ok_or(Errno::EFAULT)?;
            let _ = broker.unshare(alloc::vec![p.copy]);
            return self.map(broker, v, p.frame, Access::ReadWrite);
        }
        if let Kind::SharedFile { .. } = area.kind {
            // A shared file page absent was beyond the file's end: the
            // server's (`shmfile`).
            return Err(Errno::ENXIO);
        }
        self.populate(broker, addr)
    }

    /// Unmaps and frees the pages of `ranges` (the layout dropped them).
    pub fn drop_pages(&mut self, broker: &mut Broker, ranges: &[Range<u64>]) {
        for r in ranges {
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
            kaal_rt::println!("posix: unmapping a page: {e}");
        }
        if let Ok(f) = Rc::try_unwrap(p.frame) {
            if let Err(e) = broker.free_memory(f.mem) {
                kaal_rt::println!("posix: free_memory: {e}");
            }
        }
    }

    /// Maps the present pages of `ranges` again with the protection the
    /// layout now gives them.
    pub fn reprotect(&mut self, broker: &mut Broker, ranges: &[Range<u64>]) -> Result<(), Errno> {
        for r in ranges {
            let present: Vec<u64> = self.pages.range(r.start..r.end).map(|(&v, _)| v).collect();
            for v in present {
                let Some((_, area)) = self.layout.area_at(v) else {
                    continue;
                };
                let Some(p) = self.pages.remove(&v) else {
                    continue;
                };
                let access = access_for(&area, &p.frame);
                if p.access == access {
                    self.pages.insert(v, p);
                    continue;
                }
                let _ = broker.unshare(alloc::vec![p.copy]);
                // A frame other processes or the program cache map stays
                // theirs: this process writes to its own copy (but shared
                // memory stays shared).
                let frame = if access == Access::ReadWrite
                    && !area.kind.is_shared()
                    && Rc::strong_count(&p.frame) > 1
                {
                    let f = Self::fresh(broker)?;
                    f.copy_from(&p.frame);
                    f
                } else {
                    p.frame
                };
                self.map(broker, v, frame, access)?;
            }
        }
        Ok(())
    }

    /// A copy for a forked child: pages never writable and `MAP_SHARED`
    /// memory share their frame, the others are copied now.
    pub fn fork(&mut self, broker: &mut Broker) -> Result<Space, Errno> {
        let mut child = Space::new(broker)?;
        child.layout = self.layout.clone();
        let entries: Vec<(u64, Rc<FrameMem>, Access)> = self
            .pages
            .iter()
            .map(|(&v, p)| (v, p.frame.clone(), p.access))
            .collect();
        for (v, frame, access) in entries {
            let shared = self.layout.area_at(v).is_some_and(|(_, a)| {
                (a.kind == Kind::Image && !a.prot.write) || a.kind.is_shared()
            });
            let r = if shared {
                child.map(broker, v, frame, access)
            } else {
                Self::fresh(broker).and_then(|f| {
                    f.copy_from(&frame);
                    child.map(broker, v, f, access)
                })
            };
            if let Err(e) = r {
                child.destroy(broker);
                return Err(e);
            }
        }
        Ok(child)
    }

    /// Moves the present pages of `from` to the same offsets from `to`
    /// (`mremap`): each frame is unmapped at its old address and mapped at
    /// the new one with the protection the layout gives there.
    pub fn move_pages(
        &mut self,
        broker: &mut Broker,
        from: Range<u64>,
        to: u64,
    ) -> Result<(), Errno> {
        let present: Vec<u64> = self.pages.range(from.clone()).map(|(&v, _)| v).collect();
        for v in present {
            let Some(p) = self.pages.remove(&v) else {
                continue;
            };
            let _ = broker.unshare(alloc::vec![p.copy]);
            let at = to + (v - from.start);
            let (_, area) = self.layout.area_at(at).ok_or(Errno::EFAULT)?;
            let access = access_for(&area, &p.frame);
            self.map(broker, at, p.frame, access)?;
        }
        Ok(())
    }

    /// Frees every page and the VSpace.
    pub fn destroy(mut self, broker: &mut Broker) {
        let pages = core::mem::take(&mut self.pages);
        for (_, p) in pages {
            Self::release(broker, p);
        }
        if self.vspace.cptr() != 0 {
            let _ = broker.free_vspace(self.vspace);
        }
    }
}
