//! Endpoint RPC between components.
//!
//! An interface is declared once with [`interface!`]; the macro generates the
//! client stub (one method per call, arguments and results in message
//! registers) and the server side: a trait to implement and a `dispatch`
//! function that decodes a request, calls the trait, and encodes the reply.
//! The server loop ([`serve`]) receives with the caller's badge, so a server
//! tells its clients apart by the badge the root task minted for each.
//!
//! Wire format: the message label is the method number; arguments are one
//! message register each. A reply's label is 0 with the results, or an
//! [`RpcError`] code with no registers. A request with an unknown label or
//! the wrong number of registers gets an error reply; the server never
//! panics on a malformed message.
#![no_std]
#![forbid(unsafe_code)]

pub use kaal_sel4::cap::Endpoint;
pub use kaal_sel4::ipc::Badge;
use kaal_sel4::ipc::MessageInfo;
use kaal_sel4::Word;

/// Registers a call or reply may carry (the ones passed in CPU registers).
pub const MAX_WORDS: usize = 4;

/// Why a call failed, as seen by the client; also the reply labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcError {
    /// The server does not know the method.
    UnknownMethod,
    /// The request had the wrong shape (register count, a value out of range).
    BadMessage,
    /// The server refused the request (an application error code).
    Refused(u16),
    /// The reply did not have the shape the interface declares.
    BadReply,
    /// The server stopped or restarted before it replied; the request may
    /// or may not have been carried out.
    ServerGone,
}

/// The reply label of a successful call.
pub const REPLY_OK: Word = 0;
const LABEL_UNKNOWN: Word = 1;
const LABEL_BAD_MESSAGE: Word = 2;
const LABEL_SERVER_GONE: Word = 3;
const LABEL_REFUSED: Word = 0x1_0000;

impl RpcError {
    #[inline]
    pub fn label(self) -> Word {
        match self {
            RpcError::UnknownMethod => LABEL_UNKNOWN,
            RpcError::BadMessage | RpcError::BadReply => LABEL_BAD_MESSAGE,
            RpcError::ServerGone => LABEL_SERVER_GONE,
            RpcError::Refused(code) => LABEL_REFUSED | Word::from(code),
        }
    }
    #[inline]
    pub fn from_label(label: Word) -> Self {
        match label {
            LABEL_UNKNOWN => RpcError::UnknownMethod,
            LABEL_BAD_MESSAGE => RpcError::BadMessage,
            LABEL_SERVER_GONE => RpcError::ServerGone,
            l if l & LABEL_REFUSED != 0 => RpcError::Refused((l & 0xffff) as u16),
            _ => RpcError::BadReply,
        }
    }
}

/// A value that travels in one message register.
pub trait WireWord: Sized {
    fn to_word(self) -> Word;
    /// `None` when the word is not a valid value (a peer cannot be trusted).
    fn from_word(w: Word) -> Option<Self>;
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl WireWord for $t {
            #[inline]
            fn to_word(self) -> Word { self as Word }
            #[inline]
            fn from_word(w: Word) -> Option<Self> { <$t>::try_from(w).ok() }
        }
    )*};
}
wire_int!(u8, u16, u32, u64, usize);

impl WireWord for bool {
    fn to_word(self) -> Word {
        Word::from(self)
    }
    fn from_word(w: Word) -> Option<Self> {
        match w {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

/// A message: label and up to [`MAX_WORDS`] registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg {
    pub label: Word,
    pub len: usize,
    pub words: [Word; MAX_WORDS],
}

impl Msg {
    #[inline]
    pub fn new(label: Word, words: &[Word]) -> Self {
        let mut m = Msg {
            label,
            len: words.len().min(MAX_WORDS),
            words: [0; MAX_WORDS],
        };
        for (d, s) in m.words.iter_mut().zip(words) {
            *d = *s;
        }
        m
    }
    #[inline]
    pub fn error(e: RpcError) -> Self {
        Msg::new(e.label(), &[])
    }
    #[inline]
    pub fn words(&self) -> &[Word] {
        self.words.get(..self.len).unwrap_or(&[])
    }
}

/// Sends `msg` on `ep` and returns the reply. The registers travel in CPU
/// registers only (seL4's fast path; the IPC buffer is not touched).
#[inline]
pub fn call(ep: Endpoint, msg: &Msg) -> Msg {
    let mut words = msg.words;
    let reply = ep.call_regs(MessageInfo::new(msg.label, msg.len), &mut words);
    received(reply, words)
}

/// A received message; one longer than [`MAX_WORDS`] is marked too long.
#[inline]
fn received(info: MessageInfo, words: [Word; MAX_WORDS]) -> Msg {
    let len = info.length();
    Msg {
        label: info.label(),
        len: if len > MAX_WORDS { MAX_WORDS + 1 } else { len },
        words,
    }
}

/// Serves forever: each request is passed to `dispatch` with the caller's
/// badge, and its reply is sent back while waiting for the next request.
pub fn serve(ep: Endpoint, mut dispatch: impl FnMut(Badge, &Msg) -> Msg) -> ! {
    let mut words = [0; MAX_WORDS];
    let (mut info, mut badge) = ep.recv_regs(&mut words);
    loop {
        let req = received(info, words);
        let reply = if req.len > MAX_WORDS {
            Msg::error(RpcError::BadMessage)
        } else {
            dispatch(badge, &req)
        };
        words = reply.words;
        (info, badge) = ep.reply_recv_regs(MessageInfo::new(reply.label, reply.len), &mut words);
    }
}

/// Declares an RPC interface; generates `<Name>Client`, the `<Name>`
/// server trait and `<name>_dispatch`.
///
/// ```text
/// kaal_rpc::interface! {
///     /// An echo service.
///     pub interface Echo, EchoClient, echo_dispatch {
///         1 => fn echo(value: u64) -> u64;
///         2 => fn add(a: u32, b: u32) -> u64;
///     }
/// }
/// ```
#[macro_export]
macro_rules! interface {
    (
        $(#[$doc:meta])*
        pub interface $name:ident, $client:ident, $dispatch:ident {
            $( $id:literal => fn $method:ident ( $( $arg:ident : $aty:ty ),* ) -> $ret:ty ; )*
        }
    ) => {
        $(#[$doc])*
        /// Implemented by the server; `badge` names the calling client.
        pub trait $name {
            $( fn $method(&mut self, badge: $crate::Badge $(, $arg: $aty)*) -> Result<$ret, $crate::RpcError>; )*
        }

        /// Client stub: one method per call.
        #[derive(Clone, Copy, Debug)]
        pub struct $client(pub $crate::Endpoint);

        impl $client {
            $(
                #[inline]
                pub fn $method(&self $(, $arg: $aty)*) -> Result<$ret, $crate::RpcError> {
                    let req = $crate::Msg::new($id, &[$($crate::WireWord::to_word($arg)),*]);
                    let reply = $crate::call(self.0, &req);
                    if reply.label != $crate::REPLY_OK {
                        return Err($crate::RpcError::from_label(reply.label));
                    }
                    match reply.words() {
                        [w] => <$ret as $crate::WireWord>::from_word(*w).ok_or($crate::RpcError::BadReply),
                        _ => Err($crate::RpcError::BadReply),
                    }
                }
            )*
        }

        /// Decodes a request, calls the server, encodes the reply. Never
        /// panics: a malformed request gets an error reply.
        pub fn $dispatch(server: &mut impl $name, badge: $crate::Badge, req: &$crate::Msg) -> $crate::Msg {
            match req.label {
                $(
                    $id => {
                        let words = req.words();
                        let mut it = words.iter();
                        $( let $arg = match it.next().and_then(|w| <$aty as $crate::WireWord>::from_word(*w)) {
                            Some(v) => v,
                            None => return $crate::Msg::error($crate::RpcError::BadMessage),
                        }; )*
                        if it.next().is_some() {
                            return $crate::Msg::error($crate::RpcError::BadMessage);
                        }
                        match server.$method(badge $(, $arg)*) {
                            Ok(v) => $crate::Msg::new($crate::REPLY_OK, &[$crate::WireWord::to_word(v)]),
                            Err(e) => $crate::Msg::error(e),
                        }
                    }
                )*
                _ => $crate::Msg::error($crate::RpcError::UnknownMethod),
            }
        }
    };
}
