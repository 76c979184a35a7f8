//! What only the system tests and benchmarks use: kernel self-checks
//! between root-task threads ([`demo`]), the ring transfer between two
//! threads ([`ring`]), helper threads ([`thread`]), and [`system_test!`],
//! the image of a test that boots a manifest's system.
#![no_std]

pub mod demo;
pub mod ring;
pub mod thread;

#[doc(hidden)]
pub use kaal_root as __root;
#[doc(hidden)]
pub use kaal_rt as __rt;
#[doc(hidden)]
pub use kaal_sel4 as __sel4;

/// The whole image of a system test that boots a system of
/// `tests/system/systems/`, waits for the named components to exit cleanly
/// (the others may run on) and prints `<name>: ok`; any other event fails it.
#[macro_export]
macro_rules! system_test {
    ($name:literal, [$($exit:literal),+ $(,)?]) => {
        fn main(
            bi: &$crate::__sel4::bootinfo::BootInfo,
        ) -> ::core::result::Result<(), $crate::__root::RootError> {
            let mut broker = $crate::__root::boot(bi)?;
            let mut sys = $crate::__root::system::load(&mut broker, $crate::__root::include_system!($name))?;
            sys.start_all(&mut broker);
            sys.expect_clean_exits(&mut broker, &[$($exit),+])?;
            $crate::__sel4::println!("{}: ok", $name);
            Ok(())
        }

        $crate::__rt::root_task!(main);
    };
}
