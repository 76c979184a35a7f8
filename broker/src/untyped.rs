//! Untyped memory as buddy trees. Each untyped from BootInfo is a root; a
//! request for 2^n bytes takes the smallest free block that fits and splits
//! it in halves (one retype into two child untypeds) down to 2^n. Objects are
//! retyped from a leaf of exactly their size, so freeing one is a revoke of
//! that leaf, after which the kernel resets the leaf's watermark and the
//! leaf is free again. Free buddies are merged lazily, when a request finds
//! no block big enough: merging deletes both children, which resets the
//! parent.
//!
//! Device untypeds form trees of their own and are only split towards a
//! physical address that is asked for.

use crate::kernel::{Kernel, ObjSpec};
use crate::slots::SlotAllocator;
use crate::BrokerError;
use alloc::vec::Vec;
use kaal_sel4::{sys, CPtr, Word};

pub type NodeId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    Split(NodeId, NodeId),
    Used,
    /// Merged back into its parent; the index is reused.
    Dead,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    cptr: CPtr,
    paddr: Word,
    bits: u8,
    device: bool,
    state: State,
}

/// One untyped handed to the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UntypedRoot {
    pub cptr: CPtr,
    pub paddr: Word,
    pub bits: u8,
    pub device: bool,
}

/// A block of untyped memory handed out by the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub node: NodeId,
    pub cptr: CPtr,
    pub paddr: Word,
    pub bits: u8,
}

#[derive(Debug, Default)]
pub struct UntypedTree {
    nodes: Vec<Node>,
    dead: Vec<NodeId>,
    /// Free RAM blocks, a stack per size (log2 bytes).
    free_ram: Vec<Vec<NodeId>>,
    device_roots: Vec<NodeId>,
    ram_total: u64,
    ram_free: u64,
}

fn bytes(bits: u8) -> u64 {
    1u64.checked_shl(u32::from(bits)).unwrap_or(0)
}

impl UntypedTree {
    pub fn new(roots: impl IntoIterator<Item = UntypedRoot>) -> Self {
        let mut t = UntypedTree::default();
        for r in roots {
            let id = t.push(Node {
                cptr: r.cptr,
                paddr: r.paddr,
                bits: r.bits,
                device: r.device,
                state: State::Free,
            });
            if r.device {
                t.device_roots.push(id);
            } else {
                t.ram_total += bytes(r.bits);
                t.mark_free(id);
            }
        }
        t
    }

    fn push(&mut self, n: Node) -> NodeId {
        match self.dead.pop() {
            Some(id) => {
                if let Some(slot) = self.nodes.get_mut(id) {
                    *slot = n;
                }
                id
            }
            None => {
                self.nodes.push(n);
                self.nodes.len() - 1
            }
        }
    }

    fn node(&self, id: NodeId) -> Result<Node, BrokerError> {
        self.nodes
            .get(id)
            .copied()
            .ok_or(BrokerError::Internal("untyped node"))
    }

    fn set_state(&mut self, id: NodeId, s: State) {
        if let Some(n) = self.nodes.get_mut(id) {
            n.state = s;
        }
    }

    fn mark_free(&mut self, id: NodeId) {
        let Some(n) = self.nodes.get_mut(id) else {
            return;
        };
        n.state = State::Free;
        if !n.device {
            let bits = usize::from(n.bits);
            if self.free_ram.len() <= bits {
                self.free_ram.resize(bits + 1, Vec::new());
            }
            if let Some(stack) = self.free_ram.get_mut(bits) {
                stack.push(id);
                self.ram_free += bytes(n.bits);
            }
        }
    }

    /// Takes a node off its free stack (merging; rare, so a search is fine).
    fn unmark_free(&mut self, id: NodeId) {
        let Some(n) = self.nodes.get(id) else { return };
        if let Some(stack) = self.free_ram.get_mut(usize::from(n.bits)) {
            if let Some(pos) = stack.iter().rposition(|&x| x == id) {
                stack.swap_remove(pos);
                self.ram_free -= bytes(n.bits);
            }
        }
    }

    /// Pops a free RAM block of at least 2^bits bytes, smallest size first.
    fn take_free(&mut self, bits: u8) -> Option<NodeId> {
        let id = self
            .free_ram
            .iter_mut()
            .skip(usize::from(bits))
            .find_map(Vec::pop)?;
        let n = self.nodes.get(id)?;
        self.ram_free -= bytes(n.bits);
        Some(id)
    }

    pub fn ram_total(&self) -> u64 {
        self.ram_total
    }

    pub fn ram_free(&self) -> u64 {
        self.ram_free
    }

    /// Splits a free node into two free halves; returns them.
    fn split<K: Kernel>(
        &mut self,
        k: &mut K,
        slots: &mut SlotAllocator,
        id: NodeId,
    ) -> Result<(NodeId, NodeId), BrokerError> {
        let n = self.node(id)?;
        let half = n
            .bits
            .checked_sub(1)
            .ok_or(BrokerError::Internal("split"))?;
        if u64::from(half) < sys::seL4_MinUntypedBits {
            return Err(BrokerError::Internal(
                "split below the minimum untyped size",
            ));
        }
        let dest = slots.alloc(2).ok_or(BrokerError::OutOfSlots)?;
        if let Err(e) = k.retype(n.cptr, ObjSpec::untyped(half), dest, 2) {
            let _ = slots.free(dest, 2);
            return Err(BrokerError::kernel("split untyped", e));
        }
        let child = |cptr, paddr| Node {
            cptr,
            paddr,
            bits: half,
            device: n.device,
            state: State::Free,
        };
        let a = self.push(child(dest, n.paddr));
        let b = self.push(child(dest + 1, n.paddr + bytes(half)));
        self.set_state(id, State::Split(a, b));
        Ok((a, b))
    }

    /// Takes a free RAM block of exactly 2^bits bytes.
    pub fn alloc<K: Kernel>(
        &mut self,
        k: &mut K,
        slots: &mut SlotAllocator,
        bits: u8,
    ) -> Result<Block, BrokerError> {
        let bits = bits.max(sys::seL4_MinUntypedBits as u8);
        let mut id = match self.take_free(bits) {
            Some(id) => id,
            None => {
                self.coalesce(k, slots)?;
                self.take_free(bits)
                    .ok_or(BrokerError::OutOfMemory { bits })?
            }
        };
        while self.node(id)?.bits > bits {
            match self.split(k, slots, id) {
                Ok((a, b)) => {
                    self.mark_free(b);
                    id = a;
                }
                Err(e) => {
                    self.mark_free(id);
                    return Err(e);
                }
            }
        }
        self.set_state(id, State::Used);
        self.block(id)
    }

    /// Takes the device block of 2^bits bytes at `paddr` (aligned to its size).
    pub fn alloc_device<K: Kernel>(
        &mut self,
        k: &mut K,
        slots: &mut SlotAllocator,
        paddr: Word,
        bits: u8,
    ) -> Result<Block, BrokerError> {
        let contains = |n: &Node| paddr >= n.paddr && paddr - n.paddr < bytes(n.bits);
        let mut id = *self
            .device_roots
            .iter()
            .find(|&&r| self.nodes.get(r).is_some_and(contains))
            .ok_or(BrokerError::NotDeviceMemory { paddr })?;
        loop {
            let n = self.node(id)?;
            if n.bits < bits || paddr & (bytes(bits) - 1) != 0 {
                return Err(BrokerError::NotDeviceMemory { paddr });
            }
            match n.state {
                State::Free if n.bits == bits => {
                    self.set_state(id, State::Used);
                    return self.block(id);
                }
                State::Free => {
                    let (a, b) = self.split(k, slots, id)?;
                    id = if contains(&self.node(b)?) { b } else { a };
                }
                State::Split(a, b) => {
                    id = if contains(&self.node(b)?) { b } else { a };
                }
                State::Used | State::Dead => return Err(BrokerError::DeviceMemoryInUse { paddr }),
            }
        }
    }

    /// The block of a node handed out earlier.
    pub fn block(&self, id: NodeId) -> Result<Block, BrokerError> {
        let n = self.node(id)?;
        Ok(Block {
            node: id,
            cptr: n.cptr,
            paddr: n.paddr,
            bits: n.bits,
        })
    }

    /// Gives a block back. The caller has already revoked what was retyped
    /// from it, so the kernel will reset it on its next retype.
    pub fn free(&mut self, id: NodeId) -> Result<(), BrokerError> {
        if self.node(id)?.state != State::Used {
            return Err(BrokerError::Internal("freeing a block that is not in use"));
        }
        self.mark_free(id);
        Ok(())
    }

    /// Merges every pair of free buddies, bottom up: deletes both child
    /// untypeds, which leaves the parent without children and so free.
    pub fn coalesce<K: Kernel>(
        &mut self,
        k: &mut K,
        slots: &mut SlotAllocator,
    ) -> Result<(), BrokerError> {
        let mut split: Vec<(u8, NodeId)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.state, State::Split(..)))
            .map(|(i, n)| (n.bits, i))
            .collect();
        split.sort_unstable();
        for (_, id) in split {
            let State::Split(a, b) = self.node(id)?.state else {
                continue;
            };
            let (na, nb) = (self.node(a)?, self.node(b)?);
            if na.state != State::Free || nb.state != State::Free {
                continue;
            }
            k.delete(na.cptr)
                .map_err(|e| BrokerError::kernel("merge untyped", e))?;
            k.delete(nb.cptr)
                .map_err(|e| BrokerError::kernel("merge untyped", e))?;
            self.unmark_free(a);
            self.unmark_free(b);
            let _ = slots.free(na.cptr, 2);
            self.set_state(a, State::Dead);
            self.set_state(b, State::Dead);
            self.dead.extend([a, b]);
            self.mark_free(id);
        }
        Ok(())
    }
}
