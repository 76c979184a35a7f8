//! The timer protocol: alarms at TSC deadlines over two shared rings,
//! `timer.alarm` from the client to the driver ([`AlarmRequest`]) and
//! `timer.fired` from the driver to the client ([`AlarmFired`]). Time is the
//! TSC, which every component reads itself (`kaal_rt::time`); the driver
//! only wakes the client when a deadline has passed. Any timer driver
//! serves it.

/// Slots of each timer ring (the manifest's `slots`; `slot_bytes = 32`).
pub const RING_SLOTS: usize = 16;
/// Alarms a driver keeps pending for each client.
pub const QUEUE_ALARMS: usize = 32;

/// Client to driver: signal me when the TSC reaches `deadline_tsc`. A
/// deadline already past fires at once.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AlarmRequest {
    /// The client's name for the alarm, returned as it is.
    pub token: u64,
    pub deadline_tsc: u64,
}

/// Driver to client: what became of a request.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AlarmFired {
    pub token: u64,
    /// The TSC when the driver answered.
    pub at_tsc: u64,
    /// [`AlarmFired::FIRED`] or [`AlarmFired::QUEUE_FULL`].
    pub status: u64,
}

impl AlarmFired {
    /// The deadline passed.
    pub const FIRED: u64 = 0;
    /// Refused: the driver already keeps [`QUEUE_ALARMS`] alarms.
    pub const QUEUE_FULL: u64 = 1;

    pub fn is_fired(&self) -> bool {
        self.status == Self::FIRED
    }
}

const _: () = assert!(core::mem::size_of::<AlarmRequest>() <= 32);
const _: () = assert!(core::mem::size_of::<AlarmFired>() <= 32);
