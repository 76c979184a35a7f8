//! virtio devices for KaaL drivers: the `virtio-drivers` crate's HAL
//! implemented over the DMA buffer of a device grant ([`hal`]), its PCI
//! configuration access answered from the snapshot the broker took when it
//! granted the device ([`config`]), and receive buffers given back to the
//! device as their frames are taken ([`rx`]). A driver opens its device with
//! [`pci_transport`] and then uses `virtio-drivers`' device types.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod config;
pub mod hal;
pub mod rx;

pub use kaal_dddk::dma::DmaWindow;
pub use virtio_drivers;

use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::{PciTransport, VirtioPciError};

/// One memory BAR as the grant mapped it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappedBar {
    pub index: u8,
    pub vaddr: u64,
    pub size: u64,
}

/// Why a virtio device could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The HAL already serves a device (one per component).
    AlreadyOpen,
    /// The component was granted no PCI device (or not all of its parts).
    NotGranted,
    /// The DMA window is not page aligned.
    BadDma,
    Pci(VirtioPciError),
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::AlreadyOpen => write!(f, "a virtio device is already open"),
            OpenError::NotGranted => write!(f, "no PCI device with configuration and DMA granted"),
            OpenError::BadDma => write!(f, "the DMA buffer is not page aligned"),
            OpenError::Pci(e) => write!(f, "virtio PCI: {e}"),
        }
    }
}

/// Opens the virtio PCI function described by `config`, whose memory BARs
/// are mapped as `bars`, with `dma` for its queues and buffers.
pub fn pci_transport(
    config: config::Snapshot,
    bars: &[MappedBar],
    dma: DmaWindow,
) -> Result<PciTransport, OpenError> {
    let mut regions = heapless::Vec::<hal::BarMapping, 6>::new();
    for b in bars {
        if let Some(paddr) = config.bar_address(b.index) {
            // At most six BARs; `bars` comes from the same grant.
            let _ = regions.push(hal::BarMapping {
                paddr,
                vaddr: b.vaddr,
                size: b.size,
            });
        }
    }
    hal::install(dma, &regions)?;
    let mut root = PciRoot::new(config);
    // The snapshot answers for one function whatever address is asked.
    let df = DeviceFunction {
        bus: 0,
        device: 0,
        function: 0,
    };
    PciTransport::new::<hal::KaalHal, _>(&mut root, df).map_err(OpenError::Pci)
}

/// Opens the PCI device the component was granted under local name `name`.
#[cfg(target_os = "none")]
pub fn open(env: &kaal_rt::Env, name: &str) -> Result<PciTransport, OpenError> {
    let page = env.pci_config(name).map_err(|_| OpenError::NotGranted)?;
    let (vaddr, size, paddr) = env.dma(name).map_err(|_| OpenError::NotGranted)?;
    let mut bars = heapless::Vec::<MappedBar, 6>::new();
    for index in 0..6u8 {
        if let Ok((vaddr, size)) = env.mmio(name, index) {
            let _ = bars.push(MappedBar { index, vaddr, size });
        }
    }
    let config = config::Snapshot::new(page.regs, page.bar_sizes);
    let t = pci_transport(config, &bars, DmaWindow { vaddr, paddr, size })?;
    Ok(t)
}
