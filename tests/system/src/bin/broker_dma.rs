//! System test `broker_dma`: DMA regions are physically contiguous, aligned
//! and distinct, with every frame's physical address confirmed by the
//! kernel; buffers from a pool are aligned and the memory is usable.
#![no_std]
#![no_main]

use kaal_dddk::dma::{DmaPool, DmaWindow};
use kaal_root::{Context, RootError};
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::cap::{Cap, Frame};
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let a = broker.allocate_dma(16 * 1024)?;
    let b = broker.allocate_dma(4096)?;
    for r in [&a, &b] {
        if r.paddr % r.size != 0 {
            return Err(RootError::Check("DMA region not aligned to its size"));
        }
        for page in 0..r.size / 4096 {
            let frame = broker
                .dma_frame(r, page)
                .ok_or(RootError::Check("DMA frame"))?;
            let kernel = Frame::from_cptr(frame)
                .physical_address()
                .context("X86_Page_GetAddress")?;
            if kernel != r.paddr + page * 4096 {
                return Err(RootError::Check("kernel reports another physical address"));
            }
        }
    }
    if a.paddr < b.paddr + b.size && b.paddr < a.paddr + a.size {
        return Err(RootError::Check("DMA regions overlap"));
    }
    // A holder hands out buffers of its region itself.
    let mut pool = DmaPool::new(DmaWindow {
        vaddr: a.vaddr,
        paddr: a.paddr,
        size: a.size,
    });
    let x = pool
        .alloc(100, 64)
        .map_err(|_| RootError::Check("pool alloc"))?;
    let y = pool
        .alloc(4096, 4096)
        .map_err(|_| RootError::Check("pool alloc"))?;
    if x.paddr % 64 != 0 || y.paddr % 4096 != 0 || x.paddr == y.paddr {
        return Err(RootError::Check("pool buffers misaligned or equal"));
    }
    // The mapping is real memory: write through it and read back.
    for (i, buf) in [x, y].iter().enumerate() {
        let p = buf.vaddr as *mut u8;
        // SAFETY: the buffer is mapped read-write for this task and nothing
        // else uses it (no device is programmed with it).
        unsafe {
            p.write_volatile(0xa0 + i as u8);
            if p.read_volatile() != 0xa0 + i as u8 {
                return Err(RootError::Check("DMA memory does not hold a write"));
            }
        }
    }
    println!(
        "broker_dma: regions at {:#x} ({} KiB) and {:#x} ({} KiB), kernel-confirmed",
        a.paddr,
        a.size / 1024,
        b.paddr,
        b.size / 1024
    );
    println!(
        "broker_dma: buffers at {:#x} (align 64) and {:#x} (align 4096)",
        x.paddr, y.paddr
    );
    broker.free_dma(b)?;
    broker.free_dma(a)?;
    println!("broker_dma: ok");
    Ok(())
}

kaal_rt::root_task!(main);
