//! A host model of the seL4 objects the broker uses, for fast tests of the
//! broker's logic: capability slots, untyped watermarks and the retype rules
//! (object sizes, alignment, fan-out, device memory), delete and revoke,
//! paging-structure lookups for mappings, IRQ handlers and port ranges.
//!
//! It is stricter than seL4 in one place: deleting an untyped capability
//! that still has children is an error here (the broker must revoke or merge
//! first), because in seL4 it would silently strand that memory.

use crate::kernel::{Access, Cache, IoApicLine, Kernel, ObjSpec, ObjectType};
use crate::untyped::UntypedRoot;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use kaal_sel4::{sys, CPtr, Error, Word};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelCap {
    Untyped {
        paddr: Word,
        bits: u8,
        device: bool,
        watermark: u64,
        children: BTreeSet<CPtr>,
    },
    Object {
        spec: ObjSpec,
        paddr: Word,
        parent: CPtr,
        /// The address space and address it is mapped at (frames, tables).
        mapped_at: Option<(CPtr, Word)>,
    },
    Irq {
        pin: u8,
        level_triggered: bool,
    },
    IoPorts {
        first: u16,
        last: u16,
    },
    /// A badged copy of an object capability (goes when the object goes).
    Badged {
        of: CPtr,
        badge: Word,
    },
}

/// Where an IRQ handler delivers its interrupts, as the model records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqBound {
    /// The notification object's slot.
    pub notification: CPtr,
    /// The badge of the capability it was bound through.
    pub badge: Word,
    /// `IRQHandler_SetNotification` calls on this handler so far.
    pub binds: u32,
}

/// The modelled kernel state of the root task.
#[derive(Clone, Debug)]
pub struct Model {
    slot_count: CPtr,
    caps: BTreeMap<CPtr, ModelCap>,
    /// Existing paging structures: (vspace, level, vaddr >> shift).
    tables: BTreeSet<(CPtr, u8, u64)>,
    /// Mapped pages: (vspace, vaddr) -> (frame, access).
    mapped: BTreeMap<(CPtr, Word), (CPtr, Access)>,
    /// Address spaces with an ASID (the root task's from the start).
    asids: BTreeSet<CPtr>,
    active_irqs: BTreeSet<u8>,
    /// Each IRQ handler's notification (seL4 keeps its own copy of the
    /// capability: it stays bound when the slot it came from is emptied).
    irq_bound: BTreeMap<CPtr, IrqBound>,
    /// Kernel operations performed, for tests that count work.
    pub ops: u64,
}

/// The root task's VSpace capability in the model (seL4's initial slot).
pub const ROOT_VSPACE: CPtr = sys::seL4_CapInitThreadVSpace;

/// Mapped pages of `vspace`, for tests: vaddr, frame and access.
impl Model {
    pub fn mappings(&self, vspace: CPtr) -> impl Iterator<Item = (Word, CPtr, Access)> + '_ {
        self.mapped
            .range((vspace, 0)..=(vspace, Word::MAX))
            .map(|(&(_, v), &(f, a))| (v, f, a))
    }
}

const PT: u8 = 21;
const PD: u8 = 30;
const PDPT: u8 = 39;

fn table_level(ty: ObjectType) -> Option<u8> {
    match ty {
        ObjectType::PageTable => Some(PT),
        ObjectType::PageDirectory => Some(PD),
        ObjectType::Pdpt => Some(PDPT),
        _ => None,
    }
}

impl Model {
    /// A root CNode of 2^slot_bits slots holding `untypeds` at their slots.
    pub fn new(slot_bits: u8, untypeds: &[UntypedRoot]) -> Self {
        let mut caps = BTreeMap::new();
        for u in untypeds {
            caps.insert(
                u.cptr,
                ModelCap::Untyped {
                    paddr: u.paddr,
                    bits: u.bits,
                    device: u.device,
                    watermark: 0,
                    children: BTreeSet::new(),
                },
            );
        }
        // The root task's image at 0x400000 already has its tables.
        let root = ROOT_VSPACE;
        let tables = BTreeSet::from([(root, PDPT, 0), (root, PD, 0), (root, PT, 0x40_0000 >> PT)]);
        Model {
            slot_count: 1 << slot_bits,
            caps,
            tables,
            mapped: BTreeMap::new(),
            active_irqs: BTreeSet::new(),
            irq_bound: BTreeMap::new(),
            asids: BTreeSet::from([ROOT_VSPACE]),
            ops: 0,
        }
    }

    pub fn cap(&self, slot: CPtr) -> Option<&ModelCap> {
        self.caps.get(&slot)
    }

    /// Where the IRQ handler in `irq` delivers its interrupts.
    pub fn irq_binding(&self, irq: CPtr) -> Option<IrqBound> {
        self.irq_bound.get(&irq).copied()
    }

    /// Occupied slots in `range`.
    pub fn occupied_in(&self, range: core::ops::Range<CPtr>) -> usize {
        self.caps.range(range).count()
    }

    /// Checks what must always hold: objects lie inside their parents, are
    /// aligned to their size, and no two objects overlap.
    pub fn check_invariants(&self) -> Result<(), String> {
        let range = |c: &ModelCap| -> Option<(Word, u64)> {
            match c {
                ModelCap::Untyped { paddr, bits, .. } => Some((*paddr, 1u64 << bits)),
                ModelCap::Object { spec, paddr, .. } => Some((*paddr, 1u64 << spec.mem_bits())),
                _ => None,
            }
        };
        let mut objects = Vec::new();
        for (slot, c) in &self.caps {
            let Some((p, len)) = range(c) else { continue };
            if p % len != 0 {
                return Err(format!("slot {slot:#x}: {p:#x} not aligned to {len:#x}"));
            }
            if let ModelCap::Untyped { children, .. } = c {
                for ch in children {
                    let (cp, cl) = self
                        .caps
                        .get(ch)
                        .and_then(range)
                        .ok_or(format!("dangling child {ch:#x}"))?;
                    if cp < p || cp + cl > p + len {
                        return Err(format!("child {ch:#x} outside parent {slot:#x}"));
                    }
                }
            } else {
                objects.push((p, len, *slot));
            }
        }
        objects.sort_unstable();
        for w in objects.windows(2) {
            if let [(a, al, sa), (b, _, sb)] = w {
                if a + al > *b {
                    return Err(format!("objects in slots {sa:#x} and {sb:#x} overlap"));
                }
            }
        }
        Ok(())
    }

    /// A VSpace that can take mappings: the root task's, or an assigned PML4.
    fn check_vspace(&self, vspace: CPtr) -> Result<(), Error> {
        let is_pml4 = vspace == ROOT_VSPACE
            || matches!(self.caps.get(&vspace), Some(ModelCap::Object { spec, .. }) if spec.ty == ObjectType::Pml4);
        if is_pml4 && self.asids.contains(&vspace) {
            Ok(())
        } else {
            Err(Error::InvalidCapability)
        }
    }

    fn empty_range(&self, dest: CPtr, count: usize) -> Result<(), Error> {
        let end = dest.checked_add(count as u64).ok_or(Error::RangeError)?;
        if end > self.slot_count {
            return Err(Error::RangeError);
        }
        if self.caps.range(dest..end).next().is_some() {
            return Err(Error::DeleteFirst);
        }
        Ok(())
    }

    fn remove(&mut self, slot: CPtr) {
        // A handler that goes takes its binding along; so does the
        // notification object (and the kernel's copy of its capability).
        self.irq_bound
            .retain(|irq, b| *irq != slot && b.notification != slot);
        if let Some(cap) = self.caps.remove(&slot) {
            match cap {
                ModelCap::Object {
                    spec,
                    parent,
                    mapped_at,
                    ..
                } => {
                    if let Some((vs, at)) = mapped_at {
                        self.mapped.retain(|k, (f, _)| !(*f == slot && k.1 == at));
                        if let Some(level) = table_level(spec.ty) {
                            self.tables.remove(&(vs, level, at >> level));
                        }
                    }
                    if spec.ty == ObjectType::Pml4 {
                        // The address space goes, and every mapping in it.
                        self.asids.remove(&slot);
                        self.tables.retain(|t| t.0 != slot);
                        self.mapped.retain(|k, _| k.0 != slot);
                    }
                    if let Some(ModelCap::Untyped { children, .. }) = self.caps.get_mut(&parent) {
                        children.remove(&slot);
                    }
                }
                ModelCap::Untyped { .. } => {
                    for (_, c) in self.caps.iter_mut() {
                        if let ModelCap::Untyped { children, .. } = c {
                            children.remove(&slot);
                        }
                    }
                }
                ModelCap::Irq { pin, .. } => {
                    self.active_irqs.remove(&pin);
                }
                ModelCap::IoPorts { .. } => {}
                ModelCap::Badged { .. } => {}
            }
            // Copies derived from an object go with it.
            let copies: Vec<CPtr> = self
                .caps
                .iter()
                .filter(|(_, c)| matches!(c, ModelCap::Badged { of, .. } if *of == slot))
                .map(|(s, _)| *s)
                .collect();
            for c in copies {
                self.caps.remove(&c);
            }
        }
    }

    fn descendants(&self, slot: CPtr, out: &mut Vec<CPtr>) {
        if let Some(ModelCap::Untyped { children, .. }) = self.caps.get(&slot) {
            for &c in children {
                self.descendants(c, out);
                out.push(c);
            }
        }
    }
}

impl Kernel for Model {
    fn retype(
        &mut self,
        untyped: CPtr,
        spec: ObjSpec,
        dest: CPtr,
        count: usize,
    ) -> Result<(), Error> {
        self.ops += 1;
        let Some(ModelCap::Untyped {
            paddr,
            bits,
            device,
            watermark,
            children,
        }) = self.caps.get(&untyped).cloned()
        else {
            return Err(Error::InvalidCapability);
        };
        if count == 0 || count as u64 > sys::config::CONFIG_RETYPE_FAN_OUT_LIMIT {
            return Err(Error::RangeError);
        }
        match spec.ty {
            ObjectType::Untyped
                if u64::from(spec.size_bits) < sys::seL4_MinUntypedBits
                    || u64::from(spec.size_bits) > sys::seL4_MaxUntypedBits =>
            {
                return Err(Error::RangeError)
            }
            ObjectType::CNode if spec.size_bits == 0 => return Err(Error::RangeError),
            _ => {}
        }
        if device
            && !matches!(
                spec.ty,
                ObjectType::Untyped | ObjectType::Frame4K | ObjectType::Frame2M
            )
        {
            return Err(Error::InvalidArgument);
        }
        self.empty_range(dest, count)?;
        let watermark = if children.is_empty() { 0 } else { watermark };
        let size = 1u64 << spec.mem_bits();
        let start = watermark.div_ceil(size) * size;
        let end = start + size * count as u64;
        if end > 1u64 << bits {
            return Err(Error::NotEnoughMemory);
        }
        let mut new_children = children;
        for i in 0..count as u64 {
            let p = paddr + start + i * size;
            let cap = match spec.ty {
                ObjectType::Untyped => ModelCap::Untyped {
                    paddr: p,
                    bits: spec.size_bits,
                    device,
                    watermark: 0,
                    children: BTreeSet::new(),
                },
                _ => ModelCap::Object {
                    spec,
                    paddr: p,
                    parent: untyped,
                    mapped_at: None,
                },
            };
            self.caps.insert(dest + i, cap);
            new_children.insert(dest + i);
        }
        self.caps.insert(
            untyped,
            ModelCap::Untyped {
                paddr,
                bits,
                device,
                watermark: end,
                children: new_children,
            },
        );
        Ok(())
    }

    fn delete(&mut self, slot: CPtr) -> Result<(), Error> {
        self.ops += 1;
        if let Some(ModelCap::Untyped { children, .. }) = self.caps.get(&slot) {
            if !children.is_empty() {
                return Err(Error::RevokeFirst);
            }
        }
        self.remove(slot);
        Ok(())
    }

    fn revoke(&mut self, slot: CPtr) -> Result<(), Error> {
        self.ops += 1;
        let mut all = Vec::new();
        self.descendants(slot, &mut all);
        for c in all {
            self.remove(c);
        }
        Ok(())
    }

    fn frame_paddr(&mut self, frame: CPtr) -> Result<Word, Error> {
        self.ops += 1;
        match self.caps.get(&frame) {
            Some(ModelCap::Object { spec, paddr, .. })
                if matches!(spec.ty, ObjectType::Frame4K | ObjectType::Frame2M) =>
            {
                Ok(*paddr)
            }
            _ => Err(Error::InvalidCapability),
        }
    }

    fn map_frame(
        &mut self,
        vspace: CPtr,
        frame: CPtr,
        vaddr: Word,
        access: Access,
        _cache: Cache,
    ) -> Result<(), Error> {
        self.ops += 1;
        self.check_vspace(vspace)?;
        let Some(ModelCap::Object {
            spec, mapped_at, ..
        }) = self.caps.get(&frame)
        else {
            return Err(Error::InvalidCapability);
        };
        if spec.ty != ObjectType::Frame4K {
            return Err(Error::InvalidCapability);
        }
        if mapped_at.is_some() {
            return Err(Error::InvalidArgument);
        }
        if !vaddr.is_multiple_of(4096) {
            return Err(Error::AlignmentError);
        }
        if !self.tables.contains(&(vspace, PT, vaddr >> PT)) {
            return Err(Error::FailedLookup);
        }
        if self.mapped.contains_key(&(vspace, vaddr)) {
            return Err(Error::DeleteFirst);
        }
        self.mapped.insert((vspace, vaddr), (frame, access));
        if let Some(ModelCap::Object { mapped_at, .. }) = self.caps.get_mut(&frame) {
            *mapped_at = Some((vspace, vaddr));
        }
        Ok(())
    }

    fn remap_frame(
        &mut self,
        vspace: CPtr,
        frame: CPtr,
        access: Access,
        _cache: Cache,
    ) -> Result<(), Error> {
        self.ops += 1;
        self.check_vspace(vspace)?;
        let Some(ModelCap::Object {
            mapped_at: Some((vs, at)),
            ..
        }) = self.caps.get(&frame)
        else {
            return Err(Error::InvalidCapability);
        };
        if *vs != vspace {
            return Err(Error::InvalidCapability);
        }
        let at = *at;
        match self.mapped.get_mut(&(vspace, at)) {
            Some((f, a)) if *f == frame => {
                *a = access;
                Ok(())
            }
            _ => Err(Error::InvalidCapability),
        }
    }

    fn map_table(
        &mut self,
        vspace: CPtr,
        ty: ObjectType,
        table: CPtr,
        vaddr: Word,
    ) -> Result<(), Error> {
        self.ops += 1;
        self.check_vspace(vspace)?;
        let (level, parent) = match ty {
            ObjectType::PageTable => (PT, Some(PD)),
            ObjectType::PageDirectory => (PD, Some(PDPT)),
            ObjectType::Pdpt => (PDPT, None),
            _ => return Err(Error::InvalidArgument),
        };
        match self.caps.get(&table) {
            Some(ModelCap::Object {
                spec,
                mapped_at: None,
                ..
            }) if spec.ty == ty => {}
            _ => return Err(Error::InvalidCapability),
        }
        if let Some(p) = parent {
            if !self.tables.contains(&(vspace, p, vaddr >> p)) {
                return Err(Error::FailedLookup);
            }
        }
        if !self.tables.insert((vspace, level, vaddr >> level)) {
            return Err(Error::DeleteFirst);
        }
        if let Some(ModelCap::Object { mapped_at, .. }) = self.caps.get_mut(&table) {
            *mapped_at = Some((vspace, vaddr));
        }
        Ok(())
    }

    fn assign_asid(&mut self, vspace: CPtr) -> Result<(), Error> {
        self.ops += 1;
        match self.caps.get(&vspace) {
            Some(ModelCap::Object { spec, .. }) if spec.ty == ObjectType::Pml4 => {}
            _ => return Err(Error::InvalidCapability),
        }
        if !self.asids.insert(vspace) {
            return Err(Error::InvalidCapability);
        }
        Ok(())
    }

    fn irq_ioapic(&mut self, dest: CPtr, line: IoApicLine, _vector: u8) -> Result<(), Error> {
        self.ops += 1;
        self.empty_range(dest, 1)?;
        if line.pin >= 24 {
            return Err(Error::RangeError);
        }
        if !self.active_irqs.insert(line.pin) {
            return Err(Error::RevokeFirst);
        }
        self.caps.insert(
            dest,
            ModelCap::Irq {
                pin: line.pin,
                level_triggered: line.level_triggered,
            },
        );
        Ok(())
    }

    fn irq_set_notification(&mut self, irq: CPtr, ntfn: CPtr) -> Result<(), Error> {
        self.ops += 1;
        let (object, badge) = match self.caps.get(&ntfn) {
            Some(ModelCap::Badged { of, badge }) => (*of, *badge),
            _ => (ntfn, 0),
        };
        match (self.caps.get(&irq), self.caps.get(&object)) {
            (Some(ModelCap::Irq { .. }), Some(ModelCap::Object { spec, .. }))
                if spec.ty == ObjectType::Notification =>
            {
                let binds = self.irq_bound.get(&irq).map_or(0, |b| b.binds) + 1;
                let bound = IrqBound {
                    notification: object,
                    badge,
                    binds,
                };
                self.irq_bound.insert(irq, bound);
                Ok(())
            }
            _ => Err(Error::InvalidCapability),
        }
    }

    fn mint_badge(&mut self, dest: CPtr, src: CPtr, badge: Word) -> Result<(), Error> {
        self.ops += 1;
        self.empty_range(dest, 1)?;
        match self.caps.get(&src) {
            Some(ModelCap::Object { .. }) => {
                self.caps.insert(dest, ModelCap::Badged { of: src, badge });
                Ok(())
            }
            _ => Err(Error::InvalidCapability),
        }
    }

    fn copy_cap(&mut self, dest: CPtr, src: CPtr) -> Result<(), Error> {
        self.ops += 1;
        self.empty_range(dest, 1)?;
        match self.caps.get(&src).cloned() {
            Some(ModelCap::Object {
                spec,
                paddr,
                parent,
                ..
            }) => {
                // A copy is a sibling of the original under the same untyped,
                // unmapped, so revoking the untyped removes it too.
                self.caps.insert(
                    dest,
                    ModelCap::Object {
                        spec,
                        paddr,
                        parent,
                        mapped_at: None,
                    },
                );
                if let Some(ModelCap::Untyped { children, .. }) = self.caps.get_mut(&parent) {
                    children.insert(dest);
                }
                Ok(())
            }
            _ => Err(Error::InvalidCapability),
        }
    }

    fn unmap_frame(&mut self, frame: CPtr) -> Result<(), Error> {
        self.ops += 1;
        match self.caps.get_mut(&frame) {
            Some(ModelCap::Object {
                spec, mapped_at, ..
            }) if spec.ty == ObjectType::Frame4K => {
                if let Some((vs, at)) = mapped_at.take() {
                    self.mapped.remove(&(vs, at));
                }
                Ok(())
            }
            _ => Err(Error::InvalidCapability),
        }
    }

    fn mint_ioports(&mut self, dest: CPtr, first: u16, last: u16) -> Result<(), Error> {
        self.ops += 1;
        self.empty_range(dest, 1)?;
        if first > last {
            return Err(Error::InvalidArgument);
        }
        self.caps.insert(dest, ModelCap::IoPorts { first, last });
        Ok(())
    }

    fn port_in32(&mut self, _port: u16) -> Result<u32, Error> {
        Ok(0xffff_ffff) // no PCI devices in the model
    }

    fn port_out32(&mut self, _port: u16, _value: u32) -> Result<(), Error> {
        Ok(())
    }
}
