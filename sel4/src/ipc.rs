//! Messages: the message-info word, message registers and badges.

use crate::sys;
use crate::Word;

/// The message-info word that heads every message: label, length, caps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageInfo(pub(crate) sys::seL4_MessageInfo_t);

impl MessageInfo {
    /// A message with `label` and `length` message registers, no caps.
    pub fn new(label: Word, length: usize) -> Self {
        let mut m = sys::seL4_MessageInfo_t::default();
        m.set_label(label);
        m.set_length(length as Word);
        MessageInfo(m)
    }
    pub fn label(self) -> Word {
        self.0.get_label()
    }
    /// Message registers in use; never more than the IPC buffer holds.
    pub fn length(self) -> usize {
        (self.0.get_length() as usize).min(sys::seL4_MsgMaxLength as usize)
    }
    pub fn extra_caps(self) -> usize {
        self.0.get_extraCaps() as usize
    }
    pub fn caps_unwrapped(self) -> Word {
        self.0.get_capsUnwrapped()
    }
    pub fn raw(self) -> sys::seL4_MessageInfo_t {
        self.0
    }
}

/// The badge a message or signal arrived with.
pub type Badge = Word;

/// Message register `i` of this thread's IPC buffer (0 past the end).
#[inline]
pub fn mr(i: usize) -> Word {
    // SAFETY: every KaaL thread has an IPC buffer (crate invariant).
    unsafe { sys::seL4_GetMR(i) }
}

/// Sets message register `i` (ignored past the end).
#[inline]
pub fn set_mr(i: usize, v: Word) {
    // SAFETY: every KaaL thread has an IPC buffer (crate invariant).
    unsafe { sys::seL4_SetMR(i, v) }
}

/// Replies to the thread that last called this one.
#[inline]
pub fn reply(info: MessageInfo) {
    // SAFETY: IPC buffer invariant; a reply changes no memory of ours.
    unsafe { sys::seL4_Reply(info.0) }
}

/// Gives up the rest of this thread's time slice.
#[inline]
pub fn yield_now() {
    // SAFETY: a yield changes no memory.
    unsafe { sys::seL4_Yield() }
}
