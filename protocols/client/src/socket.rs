//! The sockets protocol's client: TCP and UDP sockets of the network
//! service on the rings `sock_req` and `sock_cpl` and the data region
//! `sock_data`. The logic (socket table, readiness, tags, restarts of the
//! service) is `kaal_protocols::socket::client`, host-tested; this module
//! puts it on the component's channels. One request is in flight at a
//! time, its bytes at offset 0 of the region.
//!
//! Every call is non-blocking except the waits: [`Sockets::poll`],
//! `connect_wait`, `send_all`, `wait_for`. They sleep on the completion
//! ring; with a deadline (a TSC reading, `Instant::ticks`) the service's
//! `ALARM` at it wakes the sleep (a service without alarms: they yield
//! between looks).

use core::ops::{Deref, DerefMut};

use kaal_protocols::socket::client::{self as core_client, Transport};
use kaal_protocols::socket::{Completion, Request, RING_SLOTS};
use kaal_rt::{Env, RingRx, RingTx, SharedRegion};

pub use kaal_protocols::socket::client::{PollFd, Result, Socket, SocketError, MAX_SOCKETS};
pub use kaal_protocols::socket::{conns, events, Endpoint, Errno};

/// The channels of one client of the network service.
#[derive(Debug)]
pub struct Channels {
    req: RingTx<Request, RING_SLOTS>,
    cpl: RingRx<Completion, RING_SLOTS>,
    data: SharedRegion,
}

impl Transport for Channels {
    fn send(&mut self, r: &Request) -> Result<()> {
        self.req
            .send_all(core::slice::from_ref(r))
            .map_err(|_| SocketError::Broken)
    }

    fn try_recv(&mut self) -> Result<Option<Completion>> {
        let c = self.cpl.ring.pop().map_err(|_| SocketError::Broken)?;
        // Slots back at once: the service takes a request only when its
        // answer has room.
        self.cpl.release();
        Ok(c)
    }

    fn wait(&mut self, until: Option<u64>) -> Result<()> {
        if until.is_some() {
            kaal_sel4::ipc::yield_now();
            return Ok(());
        }
        if !self
            .cpl
            .ring
            .prepare_sleep()
            .map_err(|_| SocketError::Broken)?
        {
            self.cpl.wait.wait();
            self.cpl.ring.cancel_sleep();
        }
        Ok(())
    }

    fn now(&self) -> u64 {
        kaal_rt::rdtsc()
    }

    fn region_len(&self) -> u64 {
        self.data.len()
    }

    fn write(&mut self, offset: u64, src: &[u8]) -> Result<()> {
        self.data
            .write(offset, src)
            .map_err(|_| SocketError::Broken)
    }

    fn read(&mut self, offset: u64, dst: &mut [u8]) -> Result<()> {
        self.data.read(offset, dst).map_err(|_| SocketError::Broken)
    }
}

/// A client of the network service; the calls are those of
/// [`core_client::Sockets`].
#[derive(Debug)]
pub struct Sockets(core_client::Sockets<Channels>);

impl Sockets {
    /// The client on the channels bound to local names `sock_req`,
    /// `sock_cpl` and `sock_data`: sends `RESET` (closing whatever an
    /// earlier run of this component left open) and waits for its answer.
    pub fn new(env: &Env) -> Result<Sockets> {
        let channels = Channels {
            req: env
                .ring_tx("sock_req")
                .map_err(|_| SocketError::NotGranted("sock_req"))?,
            cpl: env
                .ring_rx("sock_cpl")
                .map_err(|_| SocketError::NotGranted("sock_cpl"))?,
            data: env
                .shared_region("sock_data")
                .map_err(|_| SocketError::NotGranted("sock_data"))?,
        };
        Ok(Sockets(core_client::Sockets::new(channels)?))
    }

    /// For a component that sleeps elsewhere (on an endpoint its
    /// notification is bound to, as the process server): tells the
    /// service this client sleeps; `true` if completions arrived meanwhile
    /// (then do not sleep). After a sleep, [`Sockets::cancel_sleep`].
    pub fn prepare_sleep(&mut self) -> Result<bool> {
        let cpl = &mut self.0.transport().cpl;
        cpl.prepare_sleep().map_err(|_| SocketError::Broken)
    }

    /// Ends a sleep [`Sockets::prepare_sleep`] announced.
    pub fn cancel_sleep(&mut self) {
        self.0.transport().cpl.cancel_sleep();
    }

    /// Takes every completion there is now without waiting, recording the
    /// readiness events among them.
    pub fn drain(&mut self) -> Result<()> {
        self.0.poll(&mut [], Some(0)).map(drop)
    }

    /// The raw request ring, for tests that send what this library would
    /// not.
    pub fn raw_requests(&mut self) -> &mut RingTx<Request, RING_SLOTS> {
        &mut self.0.transport().req
    }
}

impl Deref for Sockets {
    type Target = core_client::Sockets<Channels>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Sockets {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
