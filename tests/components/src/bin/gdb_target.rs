//! Component of the gdb system tests: two instances of this program run,
//! and each calls `gdb_mark` with a tag made of its own name, so that a
//! debugger stopped there can tell which instance it is in.
#![no_std]
#![no_main]

use kaal_rt::println;
use kaal_rt::Env;

/// The first eight bytes of `name`, little-endian: "alpha" is 0x6168706c61.
fn tag_of(name: &str) -> u64 {
    name.bytes()
        .take(8)
        .enumerate()
        .fold(0, |tag, (i, b)| tag | (u64::from(b) << (8 * i)))
}

/// Where the gdb tests put their breakpoint; never inlined, so that it is
/// a function of the image with `tag` as its argument.
#[inline(never)]
#[no_mangle]
pub extern "C" fn gdb_mark(tag: u64) -> u64 {
    core::hint::black_box(tag).rotate_left(8)
}

fn main(env: &Env) -> Result<(), &'static str> {
    let tag = tag_of(env.name());
    if env.name() == "alpha" {
        // The test breaks in alpha: bravo's call comes first and must
        // pass the armed breakpoint.
        for _ in 0..100 {
            kaal_sel4::ipc::yield_now();
        }
    }
    let seen = gdb_mark(tag);
    println!("{}: marked {tag:#x} ({seen:#x})", env.name());
    Ok(())
}

kaal_rt::component!(main);
