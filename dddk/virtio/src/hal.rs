//! The `virtio-drivers` HAL for a KaaL driver: DMA memory comes from the
//! grant's DMA buffer (physically contiguous, mapped uncached, bus address
//! known), and BAR addresses translate to where the grant mapped them.
//!
//! Buffers that `virtio-drivers` shares with the device are used in place
//! when they lie in the DMA buffer, and bounced through it otherwise (for
//! example the network driver's heap-allocated packet buffers).
//!
//! The HAL's functions are static, so its state is one per component: a
//! component drives one virtio device.

use core::ptr::NonNull;

use kaal_dddk::dma::{DmaBuffer, DmaPool, DmaWindow};
use spin::Mutex;
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

use crate::OpenError;

/// A memory BAR as this component sees it: the bus address the device
/// decodes and where the grant mapped it here (the broker's `MmioRegion` is
/// the root task's mapping of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarMapping {
    pub paddr: u64,
    pub vaddr: u64,
    pub size: u64,
}

/// Bounce buffers in use at once.
const MAX_BOUNCES: usize = 64;

const PAGE: u64 = PAGE_SIZE as u64;

struct State {
    /// Pages of the grant's DMA buffer.
    pool: DmaPool,
    bars: heapless::Vec<BarMapping, 6>,
    bounces: heapless::Vec<DmaBuffer, MAX_BOUNCES>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Sets up the HAL for this component's device.
pub(crate) fn install(dma: DmaWindow, bars: &[BarMapping]) -> Result<(), OpenError> {
    if !dma.vaddr.is_multiple_of(PAGE) || !dma.paddr.is_multiple_of(PAGE) {
        return Err(OpenError::BadDma);
    }
    let mut st = STATE.lock();
    if st.is_some() {
        return Err(OpenError::AlreadyOpen);
    }
    *st = Some(State {
        pool: DmaPool::new(dma),
        bars: bars.iter().copied().collect(),
        bounces: heapless::Vec::new(),
    });
    Ok(())
}

/// A buffer of `bytes` (rounded up to pages) in the DMA buffer, for the
/// driver's own transfers: `virtio-drivers` shares it in place, without a
/// bounce copy. It stays allocated for the life of the component.
pub fn dma_buffer(bytes: usize) -> Option<&'static mut [u8]> {
    let pages = bytes.div_ceil(PAGE_SIZE);
    let b = STATE.lock().as_mut()?.alloc(pages)?;
    // SAFETY: the pages were just taken from the DMA buffer, mapped
    // read-write for this component, and are never freed, so this is the
    // only reference to them for the rest of the program.
    Some(unsafe { core::slice::from_raw_parts_mut(b.vaddr as *mut u8, pages * PAGE_SIZE) })
}

/// Free pages left in the DMA buffer (for reports and tests).
pub fn free_dma_pages() -> usize {
    STATE
        .lock()
        .as_ref()
        .map_or(0, |s| (s.pool.free_bytes() / PAGE) as usize)
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    match STATE.lock().as_mut() {
        Some(s) => f(s),
        // `virtio-drivers` reaches the HAL only through a transport, which
        // `pci_transport` creates after `install`.
        None => panic!("virtio HAL used before a device was opened"),
    }
}

impl State {
    fn alloc(&mut self, pages: usize) -> Option<DmaBuffer> {
        self.pool.alloc(pages as u64 * PAGE, PAGE).ok()
    }
}

/// The HAL type to give `virtio-drivers`' device types.
#[derive(Debug)]
pub struct KaalHal;

// SAFETY: `dma_alloc` returns page-aligned, zeroed memory of the grant's DMA
// buffer that no other allocation overlaps until `dma_dealloc`;
// `mmio_phys_to_virt` returns addresses inside BAR mappings the grant made;
// `share` returns a device address for exactly the buffer's bytes (in place
// or a bounce copy that `unshare` copies back and frees).
unsafe impl Hal for KaalHal {
    fn dma_alloc(pages: usize, _dir: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let got = with(|s| s.alloc(pages));
        match got.and_then(|b| Some((b.paddr, NonNull::new(b.vaddr as *mut u8)?))) {
            Some((paddr, vaddr)) => {
                // SAFETY: the pages were just taken from the DMA buffer, which
                // is mapped read-write for this component and used by no one
                // else until they are freed.
                unsafe { core::ptr::write_bytes(vaddr.as_ptr(), 0, pages * PAGE_SIZE) };
                (paddr as PhysAddr, vaddr)
            }
            // `virtio-drivers` turns a zero address into `Error::DmaError`.
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let b = DmaBuffer {
            vaddr: vaddr.as_ptr() as u64,
            paddr,
            size: pages as u64 * PAGE,
        };
        match with(|s| s.pool.free(b)) {
            Ok(()) => 0,
            Err(_) => -1,
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let v = with(|s| {
            s.bars.iter().find_map(|m| {
                let off = paddr.checked_sub(m.paddr)?;
                (off.checked_add(size as u64)? <= m.size).then_some(m.vaddr + off)
            })
        });
        // The addresses come from the broker's snapshot of this device's
        // BARs, so every region the transport asks for is mapped.
        match v.and_then(|v| NonNull::new(v as *mut u8)) {
            Some(p) => p,
            None => panic!("virtio: BAR region {paddr:#x}+{size:#x} is not mapped"),
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let vaddr = buffer.as_ptr().cast::<u8>() as u64;
        let len = buffer.len();
        let bounced = with(|s| {
            if let Some(p) = s.pool.bus_address(vaddr, len as u64) {
                return Some((p, None));
            }
            let b = s.alloc(len.div_ceil(PAGE_SIZE).max(1))?;
            if s.bounces.push(b).is_err() {
                let _ = s.pool.free(b);
                return None;
            }
            Some((b.paddr, Some(b.vaddr)))
        });
        match bounced {
            Some((p, None)) => p as PhysAddr,
            Some((p, Some(v))) => {
                if direction == BufferDirection::DeviceToDriver {
                    // SAFETY: `v` is `len` or more bytes of bounce pages just
                    // taken for this buffer. Zeroed, so what `unshare` copies
                    // back beyond the device's bytes is no stale DMA data.
                    unsafe { core::ptr::write_bytes(v as *mut u8, 0, len) };
                } else {
                    // SAFETY: `buffer` is valid for reads of `len` bytes (the
                    // caller's contract) and `v` is `len` or more bytes of
                    // bounce pages just taken for it; they do not overlap.
                    unsafe {
                        core::ptr::copy_nonoverlapping(
                            buffer.as_ptr().cast::<u8>(),
                            v as *mut u8,
                            len,
                        )
                    };
                }
                p as PhysAddr
            }
            // A device address must be returned; with the buffer full no
            // correct one exists, and a wrong one would let the device write
            // elsewhere.
            None => panic!("virtio: DMA buffer exhausted bouncing {len} bytes"),
        }
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let len = buffer.len();
        let bounce = with(|s| {
            let i = s.bounces.iter().position(|b| b.paddr == paddr)?;
            Some(s.bounces.swap_remove(i))
        });
        let Some(b) = bounce else {
            return; // used in place
        };
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: the bounce pages hold `len` bytes for the buffer;
            // `buffer` is valid for writes of `len` bytes (the caller's
            // contract). It cannot overlap the bounce pages: they were free
            // pages of the window when `share` took them, and a buffer the
            // caller owns is no free page.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    b.vaddr as *const u8,
                    buffer.as_ptr().cast::<u8>(),
                    len,
                )
            };
        }
        let _ = with(|s| s.pool.free(b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{alloc_zeroed, dealloc, Layout};

    /// One test: the HAL's state is one per process.
    #[test]
    fn dma_pages_in_place_sharing_bounces_and_bars() {
        const PAGES: usize = 8;
        const BUS: u64 = 0x8000_0000;
        let layout = Layout::from_size_align(PAGES * PAGE_SIZE, PAGE_SIZE).unwrap();
        // SAFETY: a non-zero size; freed at the end.
        let mem = unsafe { alloc_zeroed(layout) };
        let base = mem as u64;
        let window = DmaWindow {
            vaddr: base,
            paddr: BUS,
            size: (PAGES * PAGE_SIZE) as u64,
        };
        let bar = BarMapping {
            paddr: 0xfe00_0000,
            vaddr: 0x7000_0000,
            size: 0x4000,
        };
        install(window, &[bar]).unwrap();
        assert!(matches!(install(window, &[]), Err(OpenError::AlreadyOpen)));

        // Pages come with their bus address, zeroed.
        let (p, v) = KaalHal::dma_alloc(2, BufferDirection::Both);
        assert_eq!(p - BUS, v.as_ptr() as u64 - base);
        // SAFETY: `v` is two pages of the window just allocated.
        unsafe { v.as_ptr().write_bytes(0xaa, 2 * PAGE_SIZE) };
        // SAFETY: values from `dma_alloc`.
        assert_eq!(unsafe { KaalHal::dma_dealloc(p, v, 2) }, 0);
        // SAFETY: the same values; the HAL must refuse the second free.
        let again = unsafe { KaalHal::dma_dealloc(p, v, 2) };
        assert_eq!(again, -1, "double free");
        let (p2, v2) = KaalHal::dma_alloc(1, BufferDirection::Both);
        assert_eq!(p2, p);
        // SAFETY: one page of the window, just allocated.
        assert_eq!(unsafe { *v2.as_ptr() }, 0, "pages come zeroed");
        assert_eq!(
            KaalHal::dma_alloc(PAGES, BufferDirection::Both).0,
            0,
            "exhaustion"
        );

        // A buffer in the window is shared in place.
        let inside = NonNull::slice_from_raw_parts(v2, 100);
        // SAFETY: 100 bytes of the page above.
        assert_eq!(unsafe { KaalHal::share(inside, BufferDirection::Both) }, p2);

        // One outside is bounced: copied in, and back for the driver.
        let mut outside = vec![7u8; 300];
        let buf = NonNull::from(outside.as_mut_slice());
        let free = free_dma_pages();
        // SAFETY: `outside` is valid and untouched until `unshare`.
        let bp = unsafe { KaalHal::share(buf, BufferDirection::Both) };
        assert_eq!(free_dma_pages(), free - 1);
        let bv = (base + (bp - BUS)) as *mut u8;
        // SAFETY: the bounce page, inside the window.
        unsafe {
            assert_eq!(*bv.add(299), 7, "copied in");
            bv.write_bytes(9, 300); // the device writes
            KaalHal::unshare(bp, buf, BufferDirection::Both);
        }
        assert!(outside.iter().all(|&b| b == 9), "copied back");
        assert_eq!(free_dma_pages(), free, "bounce page freed");

        // BAR addresses translate within the mapping only.
        // SAFETY: translation only; nothing is dereferenced.
        let at = unsafe { KaalHal::mmio_phys_to_virt(0xfe00_1000, 0x100) };
        assert_eq!(at.as_ptr() as u64, 0x7000_1000);
        assert!(std::panic::catch_unwind(|| {
            // SAFETY: as above; beyond the BAR, which must panic.
            unsafe { KaalHal::mmio_phys_to_virt(0xfe00_3f00, 0x200) }
        })
        .is_err());

        // SAFETY: allocated above with this layout; the HAL is done with it.
        unsafe { dealloc(mem, layout) };
    }
}
