//! Spawning and supervising the components of a packed system image.
//!
//! For each component the root task builds a fresh address space from its
//! ELF program (text read-only, data read-write), a one-level CSpace, a TCB,
//! IPC buffer, stack, heap and start-info page, grants exactly the channels
//! and devices the manifest names, and starts it. Every component's fault
//! endpoint is the root task's supervisor endpoint, badged with the
//! component's number, so faults and exits arrive here with their sender.
//!
//! This module holds the system itself (its components' states and events)
//! and loading it from an image; the rest is split by job:
//! `spawn` builds and tears down a component, `grant` puts channels and
//! devices into its CSpace, `supervise` runs the supervisor loop and the
//! restart policy, `console` multiplexes console lines onto the console
//! driver, and `syscall` makes a thread return from a system call with an
//! error.

mod console;
mod grant;
mod spawn;
mod supervise;
mod syscall;

pub use grant::client_badge;
pub use spawn::SpawnError;
pub use supervise::{Control, REFUSAL_LIMIT, RESTART_LIMIT};

use alloc::vec::Vec;
use core::fmt;

use kaal_broker::device::Holder;
use kaal_broker::BrokerError;
use kaal_manifest::image::{ImageError, SystemImage};
use kaal_sel4::cap::{Endpoint, Notification};
use kaal_sel4::fault::Fault;
use kaal_sel4::{println, Word};

use crate::{RootBroker, RootError};
use console::{make_console, Console};
use grant::{make_channel, ChannelObjects};
use spawn::Running;

const PAGE: u64 = 4096;

/// Where a component stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    /// `main` returned (`Ok` if the code is 0).
    Exited(Word),
    /// Stopped after a fault or panic (restart policy `stop`).
    Stopped,
    /// Could not be started.
    Failed,
}

/// What the supervisor saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Exited {
        component: usize,
        code: Word,
    },
    Faulted {
        component: usize,
        fault: Fault,
    },
    Panicked {
        component: usize,
    },
    /// Killed by the root task ([`System::kill`]), as if it had faulted.
    Killed {
        component: usize,
    },
    /// A capability fault answered with an error; the component goes on.
    CapRefused {
        component: usize,
        fault: Fault,
    },
    Restarted {
        component: usize,
        restarts: u64,
    },
    Stopped {
        component: usize,
    },
}

/// A component's place in the system, kept across its incarnations.
#[derive(Debug)]
struct Slot {
    state: State,
    restarts: u64,
    /// Capability faults answered with an error in this incarnation.
    refusals: u64,
    running: Option<Running>,
    /// It exited, faulted or panicked, and has not been stopped or
    /// restarted yet: its thread does no more work.
    ended: bool,
}

/// A running system: its image, components and channels.
#[derive(Debug)]
pub struct System<'a> {
    image: SystemImage<'a>,
    supervisor: Endpoint,
    channels: Vec<ChannelObjects>,
    components: Vec<Slot>,
    /// Each component's notification; it outlives restarts, so the peers'
    /// signalling capabilities stay valid.
    notifications: Vec<Notification>,
    console: Option<Console>,
}

/// The badge on a component's supervisor capability (0 stays "no badge").
fn badge_of(index: usize) -> Word {
    index as Word + 1
}

/// Who holds a component's devices at the broker (holder 0 is the root
/// task; an image has at most 2^16 components, so the index fits).
fn holder_of(index: usize) -> Holder {
    Holder(index as u32 + 1)
}

impl<'a> System<'a> {
    /// Decodes the embedded image and makes every channel's objects; starts
    /// nothing yet.
    pub fn new(broker: &mut RootBroker, bytes: &'a [u8]) -> Result<Self, SystemError> {
        let image = SystemImage::decode(bytes).map_err(SystemError::Image)?;
        let supervisor: Endpoint = broker.alloc().map_err(RootError::from)?;
        let mut channels = Vec::new();
        for ch in &image.channels {
            channels.push(make_channel(broker, ch)?);
        }
        let mut notifications = Vec::new();
        for _ in &image.components {
            notifications.push(broker.alloc::<Notification>()?);
        }
        let components = image
            .components
            .iter()
            .map(|_| Slot {
                state: State::Failed,
                restarts: 0,
                refusals: 0,
                running: None,
                ended: false,
            })
            .collect();
        let console = match image.console {
            Some(c) => Some(make_console(
                broker,
                &image,
                usize::from(c),
                &notifications,
            )?),
            None => None,
        };
        Ok(System {
            notifications,
            image,
            supervisor,
            channels,
            components,
            console,
        })
    }

    /// True if component `i`'s exit powers the machine off (the
    /// manifest's `poweroff`).
    pub fn powers_off(&self, i: usize) -> bool {
        self.image.poweroff.is_some_and(|p| usize::from(p) == i)
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.components.len()
    }

    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
    }

    /// The component's name.
    pub fn name(&self, i: usize) -> &'a str {
        self.image.components.get(i).map(|c| c.name).unwrap_or("?")
    }

    /// The program component `i` runs (the manifest's `image`).
    pub fn program(&self, i: usize) -> &'a str {
        self.image
            .components
            .get(i)
            .map(|c| c.program)
            .unwrap_or("?")
    }

    /// The index of the component called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.image.component(name).map(|(i, _)| i)
    }

    pub fn state(&self, i: usize) -> Option<State> {
        self.components.get(i).map(|s| s.state)
    }
}

/// Decodes the embedded system image and makes its channels; on an
/// unusable image says why and fails.
pub fn load<'a>(broker: &mut RootBroker, bytes: &'a [u8]) -> Result<System<'a>, RootError> {
    System::new(broker, bytes).map_err(|e| {
        println!("KaaL: cannot load the system: {e}");
        RootError::Check("the embedded system image is unusable")
    })
}

/// Embeds the system image `cargo xtask` packed from a manifest, named by
/// the manifest's file stem: `"default"` for `systems/default.toml`, or
/// another manifest of `systems/` or `tests/system/systems/`.
#[macro_export]
macro_rules! include_system {
    ($name:literal) => {
        include_bytes!(concat!(env!("KAAL_SYSTEMS_DIR"), "/", $name, ".kaal"))
    };
}

/// Why a system could not be set up at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemError {
    Image(ImageError),
    Root(RootError),
}

impl From<RootError> for SystemError {
    fn from(e: RootError) -> Self {
        SystemError::Root(e)
    }
}

impl From<BrokerError> for SystemError {
    fn from(e: BrokerError) -> Self {
        SystemError::Root(RootError::Broker(e))
    }
}

impl fmt::Display for SystemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SystemError::Image(e) => write!(f, "{e}"),
            SystemError::Root(e) => write!(f, "{e}"),
        }
    }
}

// The manifest check's limits are the start-info page's: a manifest that
// passes the check fits the page.
const _: () = assert!(kaal_manifest::MAX_NAME == kaal_rt::start::NAME_BYTES);
const _: () = assert!(
    kaal_manifest::MAX_RINGS
        == (kaal_rt::start::RING_BITS.end - kaal_rt::start::RING_BITS.start) as usize
);
const _: () = assert!(kaal_rpc::CALL_BADGE_BIT == 1 << kaal_rt::start::CALL_BIT);
const _: () = assert!(kaal_rt::start::IRQ_BITS.end <= kaal_rt::start::CALL_BIT);
const _: () = assert!(
    kaal_manifest::MAX_DEVICES
        == (kaal_rt::start::IRQ_BITS.end - kaal_rt::start::IRQ_BITS.start) as usize
);
const _: () = assert!(kaal_manifest::MAX_UNTYPED_BLOCKS + 3 <= kaal_rt::start::MAX_CAPS);
const _: () = assert!(same(
    kaal_manifest::UNTYPED_LOCAL_NAME.as_bytes(),
    kaal_rt::start::UNTYPED_NAME.as_bytes()
));

const fn same(a: &[u8], b: &[u8]) -> bool {
    match (a, b) {
        ([], []) => true,
        ([x, ra @ ..], [y, rb @ ..]) => *x == *y && same(ra, rb),
        _ => false,
    }
}
