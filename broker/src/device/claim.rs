//! Claiming devices: discovery of the machine's devices, the bundle a claim
//! builds (I/O ports, registers mapped uncached, the interrupt bound once to
//! the holder's destination, a DMA region, the PCI configuration snapshot),
//! and giving all of it back on release.

use alloc::vec::Vec;

use kaal_sel4::cap::{Cap, IoPort, IrqHandler, Notification};
use kaal_sel4::{CPtr, Word};

use super::{
    DeviceBundle, DeviceInfo, DeviceKey, DeviceSpec, Holder, IoPortRange, IrqBinding,
    IrqDestination, MmioRegion, COM_PORTS, COM_PORT_SPAN, PIT_IOAPIC_PIN, PIT_PORTS,
};
use crate::dma::DmaRegion;
use crate::kernel::{Cache, IoApicLine, Kernel, ObjSpec, ObjectType};
use crate::pci::{self, BarKind, Bdf, ConfigSpace};
use crate::untyped::Block;
use crate::{
    Broker, BrokerError, Result, IRQ_BADGE, IRQ_VECTOR_BASE, PAGE, PAGE_BITS, PCI_DMA_BYTES,
};

/// What the broker gave out for one claimed device, to take back on release.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeviceResources {
    /// Device block, frame slot, mapped address.
    pages: Vec<(Block, CPtr, Word)>,
    windows: Vec<(Word, u64)>,
    irq_slot: Option<CPtr>,
    /// The notification the broker made for the interrupt (none when the
    /// holder named its own).
    ntfn: Option<CPtr>,
    cap_slots: Vec<CPtr>,
    dma: Option<DmaRegion>,
    /// The IOAPIC pin bound for the device.
    irq_line: Option<u8>,
}

impl<K: Kernel> Broker<K> {
    /// The frame capabilities of a device's register region, in address
    /// order (to map them for the holder's component too).
    pub fn mmio_frames(&self, region: &MmioRegion) -> Vec<CPtr> {
        let end = region.vaddr + region.size;
        let mut pages: Vec<(Word, CPtr)> = self
            .resources
            .values()
            .flat_map(|r| r.pages.iter())
            .filter(|(_, _, v)| (region.vaddr..end).contains(v))
            .map(|&(_, slot, v)| (v, slot))
            .collect();
        pages.sort_unstable();
        pages.into_iter().map(|(_, slot)| slot).collect()
    }

    /// Registers the legacy COM ports, the PIT and every PCI function.
    pub fn discover_devices(&mut self) -> Result<()> {
        let mut devices: Vec<DeviceInfo> = COM_PORTS
            .iter()
            .enumerate()
            .map(|(i, &(io_base, irq))| DeviceInfo::Serial {
                port: i as u8,
                io_base,
                irq,
            })
            .collect();
        devices.push(DeviceInfo::Pit);
        let mut cs = KernelConfig(&mut self.k);
        devices.extend(pci::enumerate(&mut cs)?.into_iter().map(DeviceInfo::Pci));
        self.devices = devices;
        Ok(())
    }

    pub fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    /// The resources of a device for `holder`, its interrupt bound to a
    /// notification the broker makes for it (badge [`IRQ_BADGE`]). A device
    /// is held by one holder at a time; the same holder asking again gets the
    /// same bundle.
    pub fn request_device(&mut self, holder: Holder, spec: DeviceSpec) -> Result<DeviceBundle> {
        self.claim_device(holder, spec, None)
    }

    /// As [`Broker::request_device`], with the device's interrupt bound once,
    /// at the claim, to `irq`: the holder's notification and badge. Asking
    /// again for a device held with another destination is
    /// [`BrokerError::IrqBoundElsewhere`].
    pub fn request_device_to(
        &mut self,
        holder: Holder,
        spec: DeviceSpec,
        irq: IrqDestination,
    ) -> Result<DeviceBundle> {
        if irq.badge == 0 {
            return Err(BrokerError::InvalidRequest("interrupt badge 0"));
        }
        self.claim_device(holder, spec, Some(irq))
    }

    fn claim_device(
        &mut self,
        holder: Holder,
        spec: DeviceSpec,
        irq: Option<IrqDestination>,
    ) -> Result<DeviceBundle> {
        // A destination named must be the one bound (the bundle's own
        // notification when the holder named none).
        let check = |b: DeviceBundle| match (irq, b.irq) {
            (Some(d), Some(i)) if (d.notification, d.badge) != (i.notification, i.badge) => {
                Err(BrokerError::IrqBoundElsewhere(spec))
            }
            _ => Ok(b),
        };
        if let Some(b) = self.cache.get(&(holder, spec)) {
            return check(b.clone());
        }
        let info = self
            .devices
            .iter()
            .find(|d| d.matches(spec))
            .cloned()
            .ok_or(BrokerError::NoSuchDevice(spec))?;
        let key = info.key();
        if let Some(&(h, held_as)) = self.claims.get(&key) {
            if h != holder {
                return Err(BrokerError::AlreadyClaimed {
                    device: spec,
                    holder: h,
                });
            }
            // Same device under another name: share the bundle.
            let b = self
                .cache
                .get(&(holder, held_as))
                .cloned()
                .ok_or(BrokerError::Internal("claim"))?;
            let b = check(b)?;
            self.cache.insert((holder, spec), b.clone());
            return Ok(b);
        }
        let mut res = DeviceResources::default();
        match self.build_bundle(&info, &mut res, irq) {
            Ok(bundle) => {
                self.claims.insert(key, (holder, spec));
                self.resources.insert(key, res);
                self.cache.insert((holder, spec), bundle.clone());
                Ok(bundle)
            }
            Err(e) => {
                let _ = self.release_resources(key, res);
                Err(e)
            }
        }
    }

    fn build_bundle(
        &mut self,
        info: &DeviceInfo,
        res: &mut DeviceResources,
        irq: Option<IrqDestination>,
    ) -> Result<DeviceBundle> {
        let mut b = DeviceBundle {
            key: info.key(),
            mmio: heapless::Vec::new(),
            irq: None,
            ioports: heapless::Vec::new(),
            dma: None,
            config: None,
        };
        let irq_line = match info {
            DeviceInfo::Serial { io_base, irq, .. } => {
                let r = self.mint_ioports(res, *io_base, io_base + COM_PORT_SPAN - 1)?;
                let _ = b.ioports.push(r);
                Some(IoApicLine {
                    pin: *irq,
                    level_triggered: b.key.irq_level_triggered(),
                    active_low: false,
                })
            }
            DeviceInfo::Pci(d) => {
                for bar in &d.bars {
                    match bar.kind {
                        BarKind::Io => {
                            let last = u16::try_from(bar.base + bar.size - 1).map_err(|_| {
                                BrokerError::InvalidRequest("I/O BAR beyond port space")
                            })?;
                            let r = self.mint_ioports(res, bar.base as u16, last)?;
                            let _ = b.ioports.push(r);
                        }
                        BarKind::Memory { .. } => {
                            let m = self.map_mmio(res, bar.base, bar.size, bar.index)?;
                            let _ = b.mmio.push(m);
                        }
                    }
                }
                let region = match self.dma_kept.remove(&info.key()) {
                    Some(r) => r,
                    None => self.allocate_dma(PCI_DMA_BYTES)?,
                };
                res.dma = Some(region);
                b.dma = Some(region);
                let mut cs = KernelConfig(&mut self.k);
                let on = pci::COMMAND_IO | pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER;
                pci::update_command(&mut cs, d.at, on, pci::COMMAND_INTX_DISABLE)?;
                b.config = Some(pci::snapshot(&mut cs, d.at)?);
                // The firmware routes INTx to an ISA line (5, 9, 10 or 11 on
                // QEMU's PC), which the MADT's source overrides declare level
                // triggered, active high.
                (d.irq_pin != 0 && d.irq_line < 24).then_some(IoApicLine {
                    pin: d.irq_line,
                    level_triggered: b.key.irq_level_triggered(),
                    active_low: false,
                })
            }
            DeviceInfo::Pit => {
                let r = self.mint_ioports(res, PIT_PORTS.0, PIT_PORTS.1)?;
                let _ = b.ioports.push(r);
                // ISA IRQ 0, rerouted to its pin; ISA lines are edge
                // triggered, active high.
                Some(IoApicLine {
                    pin: PIT_IOAPIC_PIN,
                    level_triggered: b.key.irq_level_triggered(),
                    active_low: false,
                })
            }
        };
        if let Some(line) = irq_line {
            let taken = self
                .resources
                .iter()
                .find(|(_, r)| r.irq_line == Some(line.pin));
            if let Some((&with, _)) = taken {
                return Err(BrokerError::IrqLineShared {
                    line: line.pin,
                    with,
                });
            }
            res.irq_line = Some(line.pin);
            b.irq = Some(self.bind_irq(res, line, irq)?);
        }
        Ok(b)
    }

    fn mint_ioports(
        &mut self,
        res: &mut DeviceResources,
        first: u16,
        last: u16,
    ) -> Result<IoPortRange> {
        let slot = self.alloc_slot()?;
        if let Err(e) = self.k.mint_ioports(slot, first, last) {
            let _ = self.free_slot(slot);
            return Err(BrokerError::kernel("mint I/O ports", e));
        }
        res.cap_slots.push(slot);
        Ok(IoPortRange {
            cap: IoPort::from_cptr(slot),
            first,
            last,
        })
    }

    fn map_mmio(
        &mut self,
        res: &mut DeviceResources,
        paddr: Word,
        size: u64,
        bar: u8,
    ) -> Result<MmioRegion> {
        if !paddr.is_multiple_of(PAGE) {
            return Err(BrokerError::InvalidRequest("MMIO BAR not page aligned"));
        }
        let pages = size.div_ceil(PAGE);
        let vaddr = self.reserve(pages * PAGE)?;
        res.windows.push((vaddr, pages * PAGE + PAGE));
        for i in 0..pages {
            let block = self.untyped.alloc_device(
                &mut self.k,
                &mut self.slots,
                paddr + i * PAGE,
                PAGE_BITS,
            )?;
            let slot = match self.alloc_slot() {
                Ok(s) => s,
                Err(e) => {
                    let _ = self.untyped.free(block.node);
                    return Err(e);
                }
            };
            if let Err(e) = self
                .k
                .retype(block.cptr, ObjSpec::of(ObjectType::Frame4K), slot, 1)
            {
                let _ = self.untyped.free(block.node);
                let _ = self.free_slot(slot);
                return Err(BrokerError::kernel("retype device frame", e));
            }
            res.pages.push((block, slot, vaddr + i * PAGE));
            self.map_frame(slot, vaddr + i * PAGE, Cache::Uncached)?;
        }
        Ok(MmioRegion {
            vaddr,
            paddr,
            size: pages * PAGE,
            bar,
        })
    }

    /// Makes the line's handler and binds it, once, to `to` (or, without
    /// one, to a notification made for it, badged [`IRQ_BADGE`]).
    fn bind_irq(
        &mut self,
        res: &mut DeviceResources,
        line: IoApicLine,
        to: Option<IrqDestination>,
    ) -> Result<IrqBinding> {
        let slot = self.alloc_slot()?;
        if let Err(e) = self.k.irq_ioapic(slot, line, IRQ_VECTOR_BASE + line.pin) {
            let _ = self.free_slot(slot);
            return Err(BrokerError::kernel("IRQControl_GetIOAPIC", e));
        }
        res.irq_slot = Some(slot);
        let to = match to {
            Some(to) => to,
            None => {
                let ntfn: Notification = self.alloc()?;
                res.ntfn = Some(ntfn.cptr());
                IrqDestination {
                    notification: ntfn,
                    badge: IRQ_BADGE,
                }
            }
        };
        // The IRQ signals through a badged copy, so a waiter can tell it
        // from other signals (and from "not signalled": badge 0).
        let badged = self.alloc_slot()?;
        if let Err(e) = self.k.mint_badge(badged, to.notification.cptr(), to.badge) {
            let _ = self.free_slot(badged);
            return Err(BrokerError::kernel("CNode_Mint", e));
        }
        res.cap_slots.push(badged);
        self.k
            .irq_set_notification(slot, badged)
            .map_err(|e| BrokerError::kernel("IRQHandler_SetNotification", e))?;
        Ok(IrqBinding {
            handler: IrqHandler::from_cptr(slot),
            notification: to.notification,
            badge: to.badge,
            line: line.pin,
        })
    }

    fn release_resources(&mut self, key: DeviceKey, res: DeviceResources) -> Result<()> {
        // No more DMA from the device, and no interrupt left asserted for the
        // next holder of the line.
        if let DeviceKey::Pci(at) = key {
            let mut cs = KernelConfig(&mut self.k);
            let off = pci::COMMAND_BUS_MASTER;
            pci::update_command(&mut cs, at, pci::COMMAND_INTX_DISABLE, off)?;
        }
        for (block, slot, _) in res.pages {
            self.k
                .revoke(block.cptr)
                .map_err(|e| BrokerError::kernel("CNode_Revoke", e))?;
            self.untyped.free(block.node)?;
            self.free_slot(slot)?;
        }
        for (vaddr, len) in res.windows {
            self.vspace
                .free(vaddr, len)
                .map_err(|_| BrokerError::Internal("vspace"))?;
        }
        for slot in res.irq_slot.into_iter().chain(res.cap_slots) {
            self.k
                .delete(slot)
                .map_err(|e| BrokerError::kernel("CNode_Delete", e))?;
            self.free_slot(slot)?;
        }
        if let Some(n) = res.ntfn {
            self.free(n)?;
        }
        // Kept for the device (see `dma_kept`).
        if let Some(d) = res.dma {
            self.dma_kept.insert(key, d);
        }
        Ok(())
    }

    /// Takes a device back from `holder`: unmaps its registers, deletes its
    /// IRQ handler and port capabilities, and keeps its DMA region for it.
    pub fn release_device(&mut self, holder: Holder, spec: DeviceSpec) -> Result<()> {
        let key = match self.cache.get(&(holder, spec)) {
            Some(b) => b.key,
            None => return Err(BrokerError::NotHeld(spec)),
        };
        self.cache
            .retain(|(h, _), b| !(*h == holder && b.key == key));
        self.claims.remove(&key);
        let res = self
            .resources
            .remove(&key)
            .ok_or(BrokerError::Internal("device resources"))?;
        self.release_resources(key, res)
    }
}

/// Configuration space through the broker's port capability.
struct KernelConfig<'a, K: Kernel>(&'a mut K);

impl<K: Kernel> ConfigSpace for KernelConfig<'_, K> {
    fn read32(&mut self, at: Bdf, offset: u8) -> Result<u32> {
        self.0
            .port_out32(pci::CONFIG_ADDRESS, pci::config_address(at, offset))
            .and_then(|_| self.0.port_in32(pci::CONFIG_DATA))
            .map_err(|e| BrokerError::kernel("PCI configuration read", e))
    }
    fn write32(&mut self, at: Bdf, offset: u8, value: u32) -> Result<()> {
        self.0
            .port_out32(pci::CONFIG_ADDRESS, pci::config_address(at, offset))
            .and_then(|_| self.0.port_out32(pci::CONFIG_DATA, value))
            .map_err(|e| BrokerError::kernel("PCI configuration write", e))
    }
}
