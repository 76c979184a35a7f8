//! The server's broker, keeping freed pages for the next allocation: a
//! process's pages come and go by the dozen with every fork, exec and
//! exit, and a kept page costs a zeroing where a fresh one costs a
//! retype and a mapping in the server's window, and its freeing a revoke.

use core::ops::{Deref, DerefMut};

use alloc::vec::Vec;
use kaal_broker::sel4::Sel4Kernel;
use kaal_broker::{BrokerError, Memory};

use crate::space::PAGE;

/// Pages kept at most (256 KiB): what one fork and exec of a small
/// program frees, while a process that needs more memory than is left
/// finds no more than this much of it held here.
const KEPT: usize = 64;

pub struct Broker {
    inner: kaal_broker::Broker<Sel4Kernel>,
    /// Freed single pages, zeroed, still mapped in the server's window.
    kept: Vec<Memory>,
}

impl Deref for Broker {
    type Target = kaal_broker::Broker<Sel4Kernel>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for Broker {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl Broker {
    pub fn new(inner: kaal_broker::Broker<Sel4Kernel>) -> Broker {
        Broker {
            inner,
            kept: Vec::with_capacity(KEPT),
        }
    }

    /// As the broker's; a page comes from the kept ones first.
    pub fn allocate_memory(&mut self, size: u64) -> Result<Memory, BrokerError> {
        if size == PAGE {
            if let Some(mem) = self.kept.pop() {
                return Ok(mem);
            }
        }
        self.inner.allocate_memory(size)
    }

    /// As the broker's; a page is zeroed and kept while there is room.
    pub fn free_memory(&mut self, mem: Memory) -> Result<(), BrokerError> {
        if mem.size != PAGE || !mem.in_root() || self.kept.len() >= KEPT {
            return self.inner.free_memory(mem);
        }
        // SAFETY: `allocate_memory` mapped the page read-write at
        // `mem.vaddr` in the server's window, where it stays until the
        // broker frees it; its holder gave it back, so nothing else uses
        // it. Zeroing it now leaves none of its last process's bytes here.
        unsafe { core::ptr::write_bytes(mem.vaddr as *mut u8, 0, PAGE as usize) };
        self.kept.push(mem);
        Ok(())
    }

    /// Free memory, the kept pages included: the next pages allocated
    /// are those.
    pub fn free_ram_bytes(&self) -> u64 {
        self.inner.free_ram_bytes() + self.kept.len() as u64 * PAGE
    }

    /// Frees the kept pages (before counting the memory given back).
    pub fn drain(&mut self) {
        for mem in core::mem::take(&mut self.kept) {
            let _ = self.inner.free_memory(mem);
        }
    }
}
