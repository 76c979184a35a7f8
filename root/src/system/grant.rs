//! What a component is granted into its CSpace and address space beyond
//! its own pieces: channel objects (made once per system) and the devices
//! the broker lets it claim.

use alloc::vec::Vec;

use kaal_broker::device::{DeviceInfo, DeviceKey, IrqDestination};
use kaal_broker::kernel::{Access, Cache};
use kaal_broker::{BrokerError, Memory};
use kaal_manifest::image::ChannelImage;
use kaal_manifest::{ChannelKind, DeviceSpec};
use kaal_protocols::console::RING_SLOTS as SERIAL_SLOTS;
use kaal_rt::start::{self, layout, CapKind, PciConfigPage, StartInfo};
use kaal_sel4::cap::{init, CNode, Cap, Endpoint, Notification, Rights, Untyped};
use kaal_sel4::{CPtr, Word};

use super::console::CONSOLE_DRAINED;
use super::spawn::{entry, place, push, Running, SpawnContext, SpawnError};
use super::{holder_of, SystemError, PAGE};
use crate::{Context, RootBroker};

/// A channel's kernel objects, owned by the root task for the life of the
/// system (they outlive a restart of either end).
#[derive(Debug)]
pub(super) enum ChannelObjects {
    /// The endpoint, and on a lending endpoint (`file`) the region each
    /// client lends the server, in the order of the clients.
    Endpoint {
        endpoint: Endpoint,
        lent: Vec<Memory>,
    },
    /// Its shared memory; each end signals the other's notification.
    Ring { memory: Memory },
    /// A region both ends map read-write.
    Shared { memory: Memory },
}

/// A client's badge on an endpoint channel: its place among the clients.
/// On a lending channel (`file`) it also has [`kaal_rpc::CALL_BADGE_BIT`]:
/// that server's notification is bound to its thread, and the bit tells a
/// call from a wake-up by the notification, whose word has no such bit.
pub fn client_badge(position: usize, lending: bool) -> Word {
    let call = if lending { kaal_rpc::CALL_BADGE_BIT } else { 0 };
    (position as Word + 1) | call
}

/// Whether component `me` serves a lending endpoint channel: its thread
/// then has its notification bound (see [`client_badge`]) and reply slots.
pub(super) fn serves_lending(cx: &SpawnContext<'_, '_>, me: u16) -> bool {
    cx.channels.iter().zip(cx.objects).any(|(ch, obj)| {
        ch.to.component == me
            && matches!(obj, ChannelObjects::Endpoint { lent, .. } if !lent.is_empty())
    })
}

pub(super) fn make_channel(
    broker: &mut RootBroker,
    ch: &ChannelImage<'_>,
) -> Result<ChannelObjects, SystemError> {
    Ok(match ch.kind {
        ChannelKind::Endpoint => {
            let endpoint = broker.alloc()?;
            let mut lent = Vec::new();
            if ch.lent_bytes() > 0 {
                for _ in &ch.from {
                    lent.push(broker.allocate_memory(ch.lent_bytes())?);
                }
            }
            ChannelObjects::Endpoint { endpoint, lent }
        }
        ChannelKind::Ring => ChannelObjects::Ring {
            memory: broker.allocate_memory(ch.shared_bytes())?,
        },
        ChannelKind::Memory => ChannelObjects::Shared {
            memory: broker.allocate_memory(ch.shared_bytes())?,
        },
    })
}

/// The badge bit with which ring channel `channel`'s signals reach
/// component `me`: its rings in manifest order take the ring bits.
pub(super) fn ring_bit(
    channels: &[ChannelImage<'_>],
    me: u16,
    channel: usize,
) -> Result<Word, SpawnError> {
    let pos = rings_of(channels, me)
        .position(|i| i == channel)
        .ok_or(SpawnError::TooMany("ring ends (not an end of this ring)"))?;
    nth_ring_bit(pos).ok_or(SpawnError::TooMany("rings for one component"))
}

/// The ring channels component `me` is an end of, in manifest order.
pub(super) fn rings_of<'c>(
    channels: &'c [ChannelImage<'_>],
    me: u16,
) -> impl Iterator<Item = usize> + 'c {
    channels
        .iter()
        .enumerate()
        .filter(move |(_, c)| c.kind == ChannelKind::Ring && c.has_end(me))
        .map(|(i, _)| i)
}

/// The badge of a component's `n`th ring; `None` past the ring bits.
pub(super) fn nth_ring_bit(n: usize) -> Option<Word> {
    let bit = start::RING_BITS.start + u32::try_from(n).ok()?;
    start::RING_BITS.contains(&bit).then(|| 1 << bit)
}

/// Grants one capability: mints `src` into the component's next slot.
pub(super) struct Granter {
    pub(super) cnode: CNode,
    /// log2 of the CNode's slots.
    pub(super) bits: u8,
    pub(super) next: CPtr,
}

impl Granter {
    /// Fills the next slot with `put(slot)`.
    pub(super) fn next_slot(
        &mut self,
        put: impl FnOnce(CNode, CPtr) -> kaal_sel4::Result<()>,
        what: &'static str,
    ) -> Result<CPtr, SpawnError> {
        let dest = self.next;
        if dest >= 1 << self.bits {
            return Err(SpawnError::TooMany("capabilities for one CSpace"));
        }
        put(self.cnode, dest).context(what)?;
        self.next += 1;
        Ok(dest)
    }

    /// Leaves the next `n` slots empty for the component's own use; returns
    /// the first and the count.
    fn reserve(&mut self, n: usize) -> Result<(CPtr, u64), SpawnError> {
        let n = n as u64;
        let end = self.next.checked_add(n).filter(|&e| e <= 1 << self.bits);
        let end = end.ok_or(SpawnError::TooMany("capabilities for one CSpace"))?;
        let first = self.next;
        self.next = end;
        Ok((first, n))
    }

    /// Grants `src` minted with `rights` and `badge`.
    pub(super) fn grant(
        &mut self,
        src: CPtr,
        rights: Rights,
        badge: Word,
    ) -> Result<CPtr, SpawnError> {
        let bits = self.bits;
        self.next_slot(
            |cn, dest| cn.mint_from(dest, bits, init::CNODE, src, 64, rights, badge),
            "CNode_Mint",
        )
    }

    /// Grants `src` as it is (no badge or range change), with `rights`: for
    /// I/O port capabilities, whose mint data would be a port range, and
    /// capabilities that already carry their badge.
    pub(super) fn copy(&mut self, src: CPtr, rights: Rights) -> Result<CPtr, SpawnError> {
        let bits = self.bits;
        self.next_slot(
            |cn, dest| cn.copy_from(dest, bits, init::CNODE, src, 64, rights),
            "CNode_Copy",
        )
    }
}

/// Grants the untyped budget of the manifest's `untyped`, if any: its
/// blocks, a fresh ASID pool, the component's own VSpace and (last, with
/// the empty slots after every grant) its own CNode. All of it, and all
/// the component makes from it, goes back on stop.
pub(super) fn grant_budget(
    broker: &mut RootBroker,
    cx: &SpawnContext<'_, '_>,
    g: &mut Granter,
    info: &mut StartInfo,
    r: &mut Running,
) -> Result<(), SpawnError> {
    if cx.comp.untyped == 0 {
        return Ok(());
    }
    let name = start::UNTYPED_NAME;
    for bits in kaal_manifest::untyped_blocks(cx.comp.untyped) {
        let (ut, paddr) = broker.alloc_untyped(bits)?;
        r.budget.push(ut);
        let mut e = entry(name, CapKind::Untyped)?;
        // A copy: the kernel marks the root task's original full, so only
        // the component retypes this memory.
        e.slot = g.copy(ut, Rights::all())?;
        e.value = paddr;
        e.size = u64::from(bits);
        push(info, e)?;
    }
    // The pool's memory is a block of its own, so the pool goes with it.
    let (ut, _) = broker.alloc_untyped(kaal_sel4::sys::seL4_ASIDPoolBits as u8)?;
    let pool_slot = match broker.alloc_slot() {
        Ok(s) => s,
        Err(e) => {
            let _ = broker.free(ut);
            return Err(e.into());
        }
    };
    r.asid_pool = Some((ut, pool_slot));
    let pool = init::ASID_CONTROL
        .make_pool(Untyped::from_cptr(ut), init::CNODE, pool_slot, 64)
        .context("X86_ASIDControl_MakePool")?;
    let mut e = entry(name, CapKind::AsidPool)?;
    e.slot = g.copy(pool.cptr(), Rights::all())?;
    push(info, e)?;
    let mut e = entry(name, CapKind::OwnVSpace)?;
    e.slot = g.copy(r.vspace.cptr(), Rights::all())?;
    push(info, e)?;
    let mut e = entry(name, CapKind::OwnCNode)?;
    let (cnode, bits) = (r.cnode, g.bits);
    e.slot = g.next_slot(
        |cn, dest| cn.mint_guarded_from(dest, bits, init::CNODE, cnode.cptr(), 64, bits),
        "CNode_Mint own CNode",
    )?;
    e.value = g.next;
    e.size = (1u64 << bits).saturating_sub(g.next);
    push(info, e)
}

/// Grants the console ring (to the console driver) and each channel the
/// component is an end of; shared memory goes from `layout::SHARED_BASE` up.
pub(super) fn grant_channels(
    broker: &mut RootBroker,
    cx: &SpawnContext<'_, '_>,
    g: &mut Granter,
    info: &mut StartInfo,
    r: &mut Running,
) -> Result<(), SpawnError> {
    let me = u16::try_from(cx.index).map_err(|_| SpawnError::TooMany("components"))?;
    let mut shared_at = layout::SHARED_BASE;
    if let Some(c) = cx.console {
        share_at(broker, r, &c.memory, shared_at)?;
        let mut e = entry(kaal_protocols::console::LOCAL_NAME, CapKind::RingConsumer)?;
        e.slot2 = g.grant(c.own.cptr(), Rights::write_only(), CONSOLE_DRAINED)?;
        e.bit = c.bit;
        e.vaddr = shared_at;
        e.size = c.memory.size;
        e.value = SERIAL_SLOTS as u64;
        push(info, e)?;
        shared_at += c.memory.size + PAGE;
    }
    for (c, (ch, obj)) in cx.channels.iter().zip(cx.objects).enumerate() {
        let client_pos = ch.from.iter().position(|e| e.component == me);
        let server = ch.to.component == me;
        // This component's local name for the channel.
        let local = match client_pos.and_then(|p| ch.from.get(p)) {
            Some(end) => end.local,
            None => ch.to.local,
        };
        match obj {
            ChannelObjects::Endpoint { endpoint: ep, lent } => {
                let lending = !lent.is_empty();
                if let Some(pos) = client_pos {
                    let badge = client_badge(pos, lending);
                    let mut e = entry(local, CapKind::EndpointClient)?;
                    e.slot = g.grant(ep.cptr(), Rights::call_only(), badge)?;
                    r.endpoint_slots.push((c, e.slot));
                    e.value = badge;
                    push(info, e)?;
                    // Its own lent region, under the endpoint's name.
                    if let Some(memory) = lent.get(pos) {
                        share_at(broker, r, memory, shared_at)?;
                        let mut e = entry(local, CapKind::SharedMemory)?;
                        e.vaddr = shared_at;
                        e.size = memory.size;
                        e.value = badge;
                        push(info, e)?;
                        shared_at += memory.size + PAGE;
                    }
                }
                if server {
                    let mut e = entry(ch.to.local, CapKind::EndpointServer)?;
                    // Receive only: replies go through the reply capability.
                    e.slot = g.copy(ep.cptr(), Rights::read_only())?;
                    push(info, e)?;
                    // Every client's lent region, each told by its badge.
                    for (pos, memory) in lent.iter().enumerate() {
                        share_at(broker, r, memory, shared_at)?;
                        let mut e = entry(ch.to.local, CapKind::SharedMemory)?;
                        e.vaddr = shared_at;
                        e.size = memory.size;
                        e.value = client_badge(pos, lending);
                        push(info, e)?;
                        shared_at += memory.size + PAGE;
                    }
                    if lending {
                        // Each client has at most one call outstanding: one
                        // slot each for a parked call's reply capability.
                        let mut e = entry(ch.to.local, CapKind::ReplySlots)?;
                        e.slot = g.copy(r.cnode.cptr(), Rights::all())?;
                        let (first, count) = g.reserve(ch.from.len())?;
                        e.value = first;
                        e.size = count;
                        push(info, e)?;
                    }
                }
            }
            ChannelObjects::Shared { memory } => {
                if client_pos.is_none() && !server {
                    continue;
                }
                share_at(broker, r, memory, shared_at)?;
                let mut e = entry(local, CapKind::SharedMemory)?;
                e.vaddr = shared_at;
                e.size = memory.size;
                push(info, e)?;
                shared_at += memory.size + PAGE;
            }
            ChannelObjects::Ring { memory } => {
                if client_pos.is_none() && !server {
                    continue;
                }
                share_at(broker, r, memory, shared_at)?;
                let (kind, peer) = if server {
                    (
                        CapKind::RingConsumer,
                        ch.from.first().map_or(ch.to.component, |e| e.component),
                    )
                } else {
                    (CapKind::RingProducer, ch.to.component)
                };
                let peer_ntfn = cx
                    .notifications
                    .get(usize::from(peer))
                    .ok_or(SpawnError::TooMany("components"))?;
                let mut e = entry(local, kind)?;
                e.slot2 = g.grant(
                    peer_ntfn.cptr(),
                    Rights::write_only(),
                    ring_bit(cx.channels, peer, c)?,
                )?;
                e.bit = ring_bit(cx.channels, me, c)?;
                e.vaddr = shared_at;
                e.size = memory.size;
                e.value = u64::from(ch.slots);
                push(info, e)?;
                shared_at += memory.size + PAGE;
            }
        }
    }
    grant_private_memory(broker, cx, info, r, shared_at)
}

/// Maps each private memory region of the manifest's `memory`, fresh and
/// zeroed, into the component alone, from `at` up (after its shared
/// memory). It is the component's own memory, so it goes back on stop.
fn grant_private_memory(
    broker: &mut RootBroker,
    cx: &SpawnContext<'_, '_>,
    info: &mut StartInfo,
    r: &mut Running,
    mut at: u64,
) -> Result<(), SpawnError> {
    for &(local, size) in &cx.comp.memory {
        let end = at.checked_add(size).and_then(|e| e.checked_add(PAGE));
        if end.is_none_or(|e| e > layout::DEVICE_BASE) {
            return Err(SpawnError::TooMany("bytes of shared and private memory"));
        }
        // Zeroed here: what freed memory held before is not this
        // component's to see.
        place(broker, r, size, at, Access::ReadWrite, |w| w.fill(0))?;
        let mut e = entry(local, CapKind::PrivateMemory)?;
        e.vaddr = at;
        e.size = size;
        push(info, e)?;
        at += size + PAGE;
    }
    Ok(())
}

/// Claims each device the manifest gives the component and grants it; the
/// `k`th device's interrupt arrives on `own` with badge bit `IRQ_BITS.start + k`.
pub(super) fn grant_devices(
    broker: &mut RootBroker,
    cx: &SpawnContext<'_, '_>,
    own: Notification,
    g: &mut Granter,
    info: &mut StartInfo,
    r: &mut Running,
) -> Result<(), SpawnError> {
    for (k, &(local, spec)) in cx.comp.devices.iter().enumerate() {
        let bit = u32::try_from(k)
            .ok()
            .and_then(|k| start::IRQ_BITS.start.checked_add(k))
            .filter(|bit| start::IRQ_BITS.contains(bit))
            .ok_or(SpawnError::TooMany("devices for one component"))?;
        let dev = DeviceGrant {
            local,
            spec,
            notification: own,
            bit: 1 << bit,
        };
        grant_device(broker, cx.index, dev, g, info, r)?;
    }
    Ok(())
}

/// Maps a channel's memory read-write at `at` in the component (checking it
/// stays below the device window).
pub(super) fn share_at(
    broker: &mut RootBroker,
    r: &mut Running,
    memory: &Memory,
    at: u64,
) -> Result<(), SpawnError> {
    let end = at.checked_add(memory.size + PAGE);
    if end.is_none_or(|e| e > layout::DEVICE_BASE) {
        return Err(SpawnError::TooMany("bytes of shared memory"));
    }
    let copies = broker.share_memory(memory, r.vspace, at, Access::ReadWrite)?;
    r.copies.extend(copies);
    Ok(())
}

/// A device to grant, and where its interrupt goes.
pub(super) struct DeviceGrant<'a> {
    /// The component's name for it.
    pub(super) local: &'a str,
    pub(super) spec: DeviceSpec,
    /// The component's notification.
    pub(super) notification: Notification,
    /// The badge bit its interrupt carries there.
    pub(super) bit: Word,
}

/// Claims a device for the component and grants what its bundle holds:
/// registers, DMA buffer, configuration snapshot, I/O ports, interrupt.
pub(super) fn grant_device(
    broker: &mut RootBroker,
    index: usize,
    dev: DeviceGrant<'_>,
    g: &mut Granter,
    info: &mut StartInfo,
    r: &mut Running,
) -> Result<(), SpawnError> {
    let spec = dev.spec;
    let name = dev.local;
    // The interrupt goes straight to the component's notification, with its
    // bit: the broker binds it there at the claim.
    let irq_to = IrqDestination {
        notification: dev.notification,
        badge: dev.bit,
    };
    let bundle = broker
        .request_device_to(holder_of(index), spec, irq_to)
        .map_err(|e| match e {
            BrokerError::NoSuchDevice(_) => SpawnError::NoDevice(spec),
            e => e.into(),
        })?;
    r.devices.push(spec);
    for m in &bundle.mmio {
        let frames = broker.mmio_frames(m);
        let at = map_device(broker, r, &frames, m.size)?;
        let mut e = entry(name, CapKind::Mmio)?;
        e.vaddr = at;
        e.size = m.size;
        e.value = u64::from(m.bar);
        push(info, e)?;
    }
    if let Some(d) = bundle.dma {
        // A device's DMA region passes from holder to holder (the broker
        // keeps it for the device): nothing of the last one's for the next.
        // SAFETY: the broker maps every DMA region read-write in the root
        // task's window at `d.vaddr`; the device's last holder is gone and
        // the new one does not run yet.
        unsafe { core::ptr::write_bytes(d.vaddr as *mut u8, 0, d.size as usize) };
        let frames = broker.dma_frames(&d);
        let at = map_device(broker, r, &frames, d.size)?;
        let mut e = entry(name, CapKind::Dma)?;
        e.vaddr = at;
        e.size = d.size;
        e.value = d.paddr;
        push(info, e)?;
    }
    if let Some(regs) = bundle.config {
        let mut page = PciConfigPage {
            regs,
            bar_sizes: [0; 6],
        };
        if let Some(d) = broker.devices().iter().find_map(|d| match d {
            DeviceInfo::Pci(p) if DeviceKey::Pci(p.at) == bundle.key => Some(p),
            _ => None,
        }) {
            for bar in &d.bars {
                if let Some(s) = page.bar_sizes.get_mut(usize::from(bar.index)) {
                    *s = bar.size;
                }
            }
        }
        let at = r.device_at;
        r.device_at = place_device(r.device_at, PAGE)?;
        place(broker, r, PAGE, at, Access::ReadOnly, |w| {
            let bytes = bytemuck::bytes_of(&page);
            if let Some(dst) = w.get_mut(..bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        })?;
        let mut e = entry(name, CapKind::PciConfig)?;
        e.vaddr = at;
        e.size = PAGE;
        push(info, e)?;
    }
    for ports in &bundle.ioports {
        let mut e = entry(name, CapKind::IoPort)?;
        e.slot = g.copy(ports.cap.cptr(), Rights::all())?;
        e.value = u64::from(ports.first) | (u64::from(ports.last) << 16);
        push(info, e)?;
    }
    if let Some(irq) = bundle.irq {
        // The interrupt: its handler (to acknowledge it) and the bit it
        // arrives with on the component's notification.
        let mut e = entry(name, CapKind::Irq)?;
        e.slot = g.copy(irq.handler.cptr(), Rights::all())?;
        e.bit = dev.bit;
        // The trigger mode the broker programmed the line with, so the
        // driver acknowledges at the right time without restating it.
        e.value = u64::from(bundle.key.irq_level_triggered());
        push(info, e)?;
    }
    Ok(())
}

/// Maps a device region's `frames` (`size` bytes) uncached at the
/// component's next device address; returns that address.
fn map_device(
    broker: &mut RootBroker,
    r: &mut Running,
    frames: &[CPtr],
    size: u64,
) -> Result<u64, SpawnError> {
    let at = r.device_at;
    r.device_at = place_device(r.device_at, size)?;
    let copies = broker.share_frames(frames, r.vspace, at, Access::ReadWrite, Cache::Uncached)?;
    r.copies.extend(copies);
    Ok(at)
}

/// The next free device address after a region of `size` bytes at `at`
/// (and a guard page).
fn place_device(at: u64, size: u64) -> Result<u64, SpawnError> {
    at.checked_add(size)
        .and_then(|a| a.checked_add(PAGE))
        .filter(|&a| a <= layout::DEVICE_END)
        .ok_or(SpawnError::TooMany("bytes of device memory"))
}
