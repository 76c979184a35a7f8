//! What only the system tests and benchmarks use: kernel self-checks
//! between root-task threads ([`demo`]), the ring transfer between two
//! threads ([`ring`]), helper threads ([`thread`]), and [`system_test!`],
//! the image of a test that boots a manifest's system (and
//! [`supervise_killing`], for one that kills a component on the way).
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use kaal_root::system::{Control, Event, System};
use kaal_root::{RootBroker, RootError};
use kaal_sel4::println;

pub mod demo;
pub mod ring;
pub mod thread;

#[doc(hidden)]
pub use kaal_root as __root;
#[doc(hidden)]
pub use kaal_rt as __rt;
#[doc(hidden)]
pub use kaal_sel4 as __sel4;

/// Supervises until component `when_exits` exits cleanly, then kills
/// component `kill` as if it had faulted ([`System::kill`]: its restart
/// policy applies, and calls in flight to it return `ServerGone`), then
/// waits for each of `then_expect_clean_exits` to exit cleanly (one that
/// already did before the kill counts). Any other event fails it: a fault,
/// a failed exit, another component ending, the killed one not restarting
/// or stopping.
pub fn supervise_killing(
    sys: &mut System<'_>,
    broker: &mut RootBroker,
    when_exits: &str,
    kill: &str,
    then_expect_clean_exits: &[&str],
) -> Result<(), RootError> {
    let trigger = sys
        .index(when_exits)
        .ok_or(RootError::Check("no component to wait for"))?;
    let victim = sys
        .index(kill)
        .ok_or(RootError::Check("no component to kill"))?;
    let mut waiting = Vec::new();
    for n in then_expect_clean_exits {
        waiting.push((
            *n,
            sys.index(n).ok_or(RootError::Check("no such component"))?,
        ));
    }
    let (mut triggered, mut bad) = (None, false);
    sys.supervise(broker, |_, e| match e {
        Event::Exited { component, code: 0 } if component == trigger => {
            triggered = Some(e);
            Control::Finish
        }
        Event::Exited { component, code: 0 } if waiting.iter().any(|w| w.1 == component) => {
            waiting.retain(|w| w.1 != component);
            Control::Continue
        }
        e => {
            println!("KaaL: unexpected before the kill: {e:?}");
            bad = true;
            Control::Finish
        }
    })?;
    let Some(exit) = triggered.filter(|_| !bad) else {
        return Err(RootError::Check(
            "the component to wait for did not exit cleanly",
        ));
    };
    // `supervise` returned before it applied the policy to that exit.
    sys.apply_policy(broker, exit)?;
    match sys.kill(broker, victim)? {
        (_, Some(Event::Restarted { .. } | Event::Stopped { .. })) => {}
        (_, next) => {
            println!("KaaL: after the kill: {next:?}");
            return Err(RootError::Check(
                "the killed component's policy did not apply",
            ));
        }
    }
    let names: Vec<&str> = waiting.iter().map(|w| w.0).collect();
    if !names.is_empty() {
        sys.expect_clean_exits(broker, &names)?;
    }
    Ok(())
}

/// Boots the broker, loads the system `image` and starts every component.
pub fn start<'a>(
    bi: &kaal_sel4::bootinfo::BootInfo,
    image: &'a [u8],
) -> Result<(RootBroker, System<'a>), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = kaal_root::system::load(&mut broker, image)?;
    sys.start_all(&mut broker);
    Ok((broker, sys))
}

/// Supervises a system that runs on (servers for a host peer): a clean
/// exit or a restart is fine, a fault, panic, failed exit or stop is the
/// test's failure.
pub fn supervise_running(sys: &mut System<'_>, broker: &mut RootBroker) -> Result<(), RootError> {
    let mut bad = false;
    sys.supervise(broker, |_, e| match e {
        Event::Exited { code: 0, .. } | Event::Restarted { .. } => Control::Continue,
        e => {
            println!("KaaL: unexpected in a running system: {e:?}");
            bad = true;
            Control::Finish
        }
    })?;
    sys.flush_console();
    Err(RootError::Check(if bad {
        "a component failed"
    } else {
        "every component has ended"
    }))
}

/// The whole image of a system test that boots a system of
/// `tests/system/systems/`, waits for the named components to exit cleanly
/// (the others may run on) and prints `<name>: ok`; any other event fails it.
///
/// `system_test!("<name>", running)` boots the system and lets it run:
/// the harness judges it by its serial lines and its host peer (tests.toml
/// `expect = "running"`); any fault, panic or failed exit ends it with a
/// failure ([`supervise_running`]).
///
/// `system_test!("<name>", when_exits = "a", kill = "b",
/// then_expect_clean_exits = ["c", ...])` instead kills `b` as if it had
/// faulted once `a` has exited cleanly, then waits for the others (see
/// [`supervise_killing`]).
#[macro_export]
macro_rules! system_test {
    ($name:literal, running) => {
        fn main(
            bi: &$crate::__sel4::bootinfo::BootInfo,
        ) -> ::core::result::Result<(), $crate::__root::RootError> {
            let (mut broker, mut sys) = $crate::start(bi, $crate::__root::include_system!($name))?;
            $crate::supervise_running(&mut sys, &mut broker)
        }

        $crate::__rt::root_task!(main);
    };
    ($name:literal, when_exits = $when:literal, kill = $kill:literal,
     then_expect_clean_exits = [$($exit:literal),* $(,)?]) => {
        fn main(
            bi: &$crate::__sel4::bootinfo::BootInfo,
        ) -> ::core::result::Result<(), $crate::__root::RootError> {
            let (mut broker, mut sys) = $crate::start(bi, $crate::__root::include_system!($name))?;
            $crate::supervise_killing(&mut sys, &mut broker, $when, $kill, &[$($exit),*])?;
            $crate::__sel4::println!("{}: ok", $name);
            Ok(())
        }

        $crate::__rt::root_task!(main);
    };
    ($name:literal, [$($exit:literal),+ $(,)?]) => {
        fn main(
            bi: &$crate::__sel4::bootinfo::BootInfo,
        ) -> ::core::result::Result<(), $crate::__root::RootError> {
            let (mut broker, mut sys) = $crate::start(bi, $crate::__root::include_system!($name))?;
            sys.expect_clean_exits(&mut broker, &[$($exit),+])?;
            $crate::__sel4::println!("{}: ok", $name);
            Ok(())
        }

        $crate::__rt::root_task!(main);
    };
}
