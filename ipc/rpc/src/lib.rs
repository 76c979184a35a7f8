//! Endpoint RPC between components.
//!
//! An interface is declared once with [`interface!`]; the macro generates the
//! client stub (one method per call) and the server side: a trait to
//! implement and a `dispatch` function that decodes a request, calls the
//! trait, and encodes the reply. The server loop ([`serve`]) receives with
//! the caller's badge, so a server tells its clients apart by the badge the
//! root task minted for each.
//!
//! Wire format: the message label is the method number. Each argument takes
//! a fixed number of words, in order ([`WireSize::WORDS`]: one for a scalar,
//! one length word for a byte slice, two for a [`Lent`] range); the bytes of
//! byte slices follow all fixed words, each slice from a word boundary. A
//! reply's label is [`REPLY_OK`] with the result encoded the same way, an
//! application error code ([`WireError`]), or an [`RpcError`] code with no
//! words. Words 0..4 travel in CPU registers, later ones in the IPC buffer
//! ([`MessageBuffer`]), so a call whose words fit in four registers never
//! touches the IPC buffer (seL4's fast path).
//!
//! Neither side trusts the other: a request with an unknown label, the wrong
//! number of words, a value out of range for its type, a byte length that
//! the message does not carry or a lent range outside the lender's region
//! gets an error reply; a reply of the wrong shape or with an error code the
//! method does not declare is [`RpcError::BadReply`]. Nothing panics on a
//! peer's message.
#![no_std]
#![forbid(unsafe_code)]

use core::cell::Cell;
use core::ops::{Deref, DerefMut};

pub use kaal_sel4::cap::Endpoint;
pub use kaal_sel4::ipc::Badge;
use kaal_sel4::ipc::MessageInfo;
use kaal_sel4::Word;

/// Message words passed in CPU registers (MR0..MR3 on x86_64).
pub const REGISTER_WORDS: usize = 4;
/// Message words one message carries at most (`seL4_MsgMaxLength`).
pub const MSG_MAX: usize = kaal_sel4::sys::seL4_MsgMaxLength as usize;
/// Bytes in [`MSG_MAX`] words.
pub const MSG_BYTES: usize = MSG_MAX * 8;

/// Why a call failed, apart from the method's own errors; also the labels of
/// error replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcError {
    /// The server does not know the method.
    UnknownMethod,
    /// The request had the wrong shape (word count, a value out of range, a
    /// byte length the message does not carry, a lent range outside the
    /// region).
    BadMessage,
    /// The reply did not have the shape the interface declares, or carried
    /// an error code the method does not declare.
    BadReply,
    /// The server stopped or restarted before it replied; the request may
    /// or may not have been carried out.
    ServerGone,
    /// The arguments do not fit in one message (found by the client before
    /// sending: byte slices longer than the words left).
    TooLong,
}

/// The reply label of a successful call.
pub const REPLY_OK: Word = 0;
const LABEL_UNKNOWN: Word = 1;
const LABEL_BAD_MESSAGE: Word = 2;
const LABEL_SERVER_GONE: Word = 3;
/// Application error replies: this bit with the 16-bit code below it.
const LABEL_APP: Word = 0x1_0000;

impl RpcError {
    /// The label of a reply that reports this error.
    #[inline]
    pub fn label(self) -> Word {
        match self {
            RpcError::UnknownMethod => LABEL_UNKNOWN,
            RpcError::BadMessage | RpcError::BadReply | RpcError::TooLong => LABEL_BAD_MESSAGE,
            RpcError::ServerGone => LABEL_SERVER_GONE,
        }
    }
    /// The error an error reply's label reports; any label not known here
    /// (application codes included) is `BadReply`.
    #[inline]
    pub fn from_label(label: Word) -> Self {
        match label {
            LABEL_UNKNOWN => RpcError::UnknownMethod,
            LABEL_BAD_MESSAGE => RpcError::BadMessage,
            LABEL_SERVER_GONE => RpcError::ServerGone,
            _ => RpcError::BadReply,
        }
    }
}

/// The application error code a reply label carries, if it is one.
#[inline]
pub fn app_code(label: Word) -> Option<u16> {
    (label >> 16 == LABEL_APP >> 16).then_some(label as u16)
}

/// An application error type: converts to and from a 16-bit code on the
/// wire. Declare one with [`wire_error!`].
pub trait WireError: Sized {
    fn code(&self) -> u16;
    /// `None` for a code this type does not have (a peer cannot be trusted).
    fn from_code(code: u16) -> Option<Self>;
}

/// The error type of a method that declares none: it has no values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoError {}

impl WireError for NoError {
    fn code(&self) -> u16 {
        match *self {}
    }
    fn from_code(_: u16) -> Option<Self> {
        None
    }
}

/// What a client gets from a method declared `-> Result<T, E>`: the
/// server's own error, or the transport's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error<E> {
    Rpc(RpcError),
    App(E),
}

impl<E> From<RpcError> for Error<E> {
    fn from(e: RpcError) -> Self {
        Error::Rpc(e)
    }
}

/// Declares an application error enum with its wire codes (distinct
/// `u16`s) and implements [`WireError`] for it.
///
/// ```
/// kaal_rpc::wire_error! {
///     /// Why a lookup failed.
///     pub enum LookupError {
///         NotFound = 1,
///         Denied = 2,
///     }
/// }
/// use kaal_rpc::WireError;
/// assert_eq!(LookupError::Denied.code(), 2);
/// assert_eq!(LookupError::from_code(1), Some(LookupError::NotFound));
/// assert_eq!(LookupError::from_code(3), None);
/// ```
#[macro_export]
macro_rules! wire_error {
    (
        $(#[$doc:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vdoc:meta])* $variant:ident = $code:literal ),* $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        $vis enum $name {
            $( $(#[$vdoc])* $variant = $code ),*
        }

        impl $crate::WireError for $name {
            #[inline]
            fn code(&self) -> u16 {
                *self as u16
            }
            #[inline]
            fn from_code(code: u16) -> Option<Self> {
                $( if code == $name::$variant as u16 { return Some($name::$variant); } )*
                None
            }
        }
    };
}

/// The message registers from the fifth on: the calling thread's IPC buffer
/// on seL4 ([`IpcBuffer`]), memory in host tests ([`LocalBuffer`]).
/// Registers 0..4 travel in CPU registers, in [`Msg::regs`]. Shared access
/// (`&self`): the IPC buffer belongs to the thread, not to a Rust value.
pub trait MessageBuffer {
    /// Message register `i` (0 past [`MSG_MAX`]).
    fn mr(&self, i: usize) -> Word;
    /// Sets message register `i` (ignored past [`MSG_MAX`]).
    fn set_mr(&self, i: usize, w: Word);
}

/// This thread's seL4 IPC buffer.
#[derive(Clone, Copy, Debug, Default)]
pub struct IpcBuffer;

impl MessageBuffer for IpcBuffer {
    #[inline]
    fn mr(&self, i: usize) -> Word {
        kaal_sel4::ipc::mr(i)
    }
    #[inline]
    fn set_mr(&self, i: usize, w: Word) {
        kaal_sel4::ipc::set_mr(i, w)
    }
}

/// Message registers in memory: stands in for the IPC buffer in host tests
/// and in-process transports.
#[derive(Debug)]
pub struct LocalBuffer([Cell<Word>; MSG_MAX]);

impl Default for LocalBuffer {
    fn default() -> Self {
        LocalBuffer(core::array::from_fn(|_| Cell::new(0)))
    }
}

impl MessageBuffer for LocalBuffer {
    fn mr(&self, i: usize) -> Word {
        self.0.get(i).map_or(0, Cell::get)
    }
    fn set_mr(&self, i: usize, w: Word) {
        if let Some(c) = self.0.get(i) {
            c.set(w);
        }
    }
}

/// A message: label, length in words and the four register words; words
/// past the fourth are in a [`MessageBuffer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg {
    pub label: Word,
    pub len: usize,
    pub regs: [Word; REGISTER_WORDS],
}

impl Msg {
    /// A message with no words.
    #[inline]
    pub const fn empty(label: Word) -> Self {
        Msg {
            label,
            len: 0,
            regs: [0; REGISTER_WORDS],
        }
    }
    /// The reply that reports `e`.
    #[inline]
    pub fn error(e: RpcError) -> Self {
        Msg::empty(e.label())
    }
    /// A message of raw `words` (the ones past the fourth written to `buf`);
    /// `TooLong` past [`MSG_MAX`]. For tests and hand-made requests: stubs
    /// encode through [`Writer`].
    pub fn new(label: Word, words: &[Word], buf: &impl MessageBuffer) -> Result<Self, RpcError> {
        if words.len() > MSG_MAX {
            return Err(RpcError::TooLong);
        }
        let mut w = Writer::new(buf, words.len());
        for &v in words {
            w.word(v);
        }
        w.finish(label)
    }
    /// Word `i` (`None` past the message's length).
    #[inline]
    pub fn word(&self, i: usize, buf: &(impl MessageBuffer + ?Sized)) -> Option<Word> {
        if i >= self.len.min(MSG_MAX) {
            return None;
        }
        Some(match self.regs.get(i) {
            Some(w) => *w,
            None => buf.mr(i),
        })
    }
    /// The message's words in order.
    pub fn words<'a, B: MessageBuffer + ?Sized>(
        &'a self,
        buf: &'a B,
    ) -> impl Iterator<Item = Word> + 'a {
        (0..self.len.min(MSG_MAX)).filter_map(move |i| self.word(i, buf))
    }
}

/// Encodes a message: fixed words in order from word 0, byte data from the
/// end of the fixed words. Overflow is remembered and reported by
/// [`Writer::finish`], so encoding a value cannot fail half way.
#[derive(Debug)]
pub struct Writer<'b, B: ?Sized> {
    buf: &'b B,
    regs: [Word; REGISTER_WORDS],
    head: usize,
    tail: usize,
    overflow: bool,
}

impl<'b, B: MessageBuffer + ?Sized> Writer<'b, B> {
    /// A message whose fixed words number `fixed`.
    #[inline]
    pub fn new(buf: &'b B, fixed: usize) -> Self {
        Writer {
            buf,
            regs: [0; REGISTER_WORDS],
            head: 0,
            tail: fixed,
            overflow: false,
        }
    }
    #[inline]
    fn put_at(&mut self, i: usize, w: Word) {
        match self.regs.get_mut(i) {
            Some(r) => *r = w,
            None if i < MSG_MAX => self.buf.set_mr(i, w),
            None => self.overflow = true,
        }
    }
    /// The next fixed word.
    #[inline]
    pub fn word(&mut self, w: Word) {
        self.put_at(self.head, w);
        self.head += 1;
    }
    /// A byte slice: its length as the next fixed word, its bytes after
    /// the data written so far.
    pub fn bytes(&mut self, b: &[u8]) {
        let words = b.len().div_ceil(8);
        if self.tail.checked_add(words).is_none_or(|end| end > MSG_MAX) {
            self.overflow = true;
            self.word(0);
            return;
        }
        self.word(b.len() as Word);
        let (words, rest) = b.as_chunks::<8>();
        for w in words {
            self.put_at(self.tail, Word::from_le_bytes(*w));
            self.tail += 1;
        }
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            for (d, s) in w.iter_mut().zip(rest) {
                *d = *s;
            }
            self.put_at(self.tail, Word::from_le_bytes(w));
            self.tail += 1;
        }
    }
    /// The message, or `TooLong` if what was written does not fit.
    #[inline]
    pub fn finish(self, label: Word) -> Result<Msg, RpcError> {
        if self.overflow || self.tail > MSG_MAX {
            return Err(RpcError::TooLong);
        }
        Ok(Msg {
            label,
            len: self.tail,
            regs: self.regs,
        })
    }
}

/// Decodes a message written by [`Writer`], checking every length against
/// the message's own. Byte slices are copied out of the message into
/// `stage` (the decoder's storage), so a slice never refers to the IPC
/// buffer, which the next receive overwrites.
#[derive(Debug)]
pub struct Reader<'a, B: ?Sized> {
    msg: &'a Msg,
    buf: &'a B,
    fixed: usize,
    head: usize,
    tail: usize,
    stage: &'a mut [u8],
    lent_size: u64,
}

impl<'a, B: MessageBuffer + ?Sized> Reader<'a, B> {
    /// A reader of `msg`, whose fixed words number `fixed`; `None` when the
    /// message is shorter. `lent_size`: the size of the region [`Lent`]
    /// ranges must lie in.
    #[inline]
    pub fn new(
        msg: &'a Msg,
        buf: &'a B,
        fixed: usize,
        stage: &'a mut [u8],
        lent_size: u64,
    ) -> Option<Self> {
        if msg.len < fixed || msg.len > MSG_MAX {
            return None;
        }
        Some(Reader {
            msg,
            buf,
            fixed,
            head: 0,
            tail: fixed,
            stage,
            lent_size,
        })
    }
    #[inline]
    fn at(&self, i: usize) -> Option<Word> {
        self.msg.word(i, self.buf)
    }
    /// The next fixed word.
    #[inline]
    pub fn word(&mut self) -> Option<Word> {
        let w = self.at(self.head)?;
        self.head += 1;
        Some(w)
    }
    /// The length word of the next byte slice and the data words its bytes
    /// take, checked against the message (a peer's length is never trusted).
    fn data_len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.word()?).ok()?;
        let end = self.tail.checked_add(n.div_ceil(8))?;
        (end <= self.msg.len).then_some(n)
    }
    fn copy_data(&mut self, dst: &mut [u8]) {
        let (words, rest) = dst.as_chunks_mut::<8>();
        for w in words {
            *w = self.at(self.tail).unwrap_or(0).to_le_bytes();
            self.tail += 1;
        }
        if !rest.is_empty() {
            let w = self.at(self.tail).unwrap_or(0).to_le_bytes();
            for (d, s) in rest.iter_mut().zip(w) {
                *d = s;
            }
            self.tail += 1;
        }
    }
    /// The next byte slice, copied into the stage.
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.data_len()?;
        if n > self.stage.len() {
            return None;
        }
        let (dst, rest) = core::mem::take(&mut self.stage).split_at_mut(n);
        self.stage = rest;
        self.copy_data(dst);
        Some(dst)
    }
    /// The next byte slice, copied into `dst`; its length, or `None` when
    /// it is longer than `dst`.
    pub fn bytes_into(&mut self, dst: &mut [u8]) -> Option<usize> {
        let n = self.data_len()?;
        self.copy_data(dst.get_mut(..n)?);
        Some(n)
    }
    /// Whether every word of the message was read, each once: a message
    /// with words left over is malformed.
    #[inline]
    pub fn finished(&self) -> bool {
        self.head == self.fixed && self.tail == self.msg.len
    }
}

/// How a type travels in a message: sizes known at compile time, so the
/// interface macro can check that a method's arguments fit.
pub trait WireSize {
    /// Fixed words, in argument order at the head of the message.
    const WORDS: usize;
    /// Data words after all fixed words it may take, at most, counted
    /// against the message at compile time (0 for a slice, whose length is
    /// checked when called).
    const DATA: usize = 0;
    /// Bytes of storage the decoder needs for it (a borrowed slice).
    const STAGE: usize = 0;
    /// Whether it is a [`Lent`] range, which a server checks against the
    /// lender's region.
    const LENT: bool = false;
}

/// A value that travels in a message. `'a` is the decoder's storage, which
/// a borrowed byte slice refers to.
pub trait Wire<'a>: WireSize + Sized {
    fn put<B: MessageBuffer + ?Sized>(&self, w: &mut Writer<'_, B>);
    /// `None` when the words are not a valid value (a peer cannot be trusted).
    fn get<B: MessageBuffer + ?Sized>(r: &mut Reader<'a, B>) -> Option<Self>;
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl WireSize for $t {
            const WORDS: usize = 1;
        }
        impl<'a> Wire<'a> for $t {
            #[inline]
            fn put<B: MessageBuffer + ?Sized>(&self, w: &mut Writer<'_, B>) {
                w.word(*self as Word)
            }
            #[inline]
            fn get<B: MessageBuffer + ?Sized>(r: &mut Reader<'a, B>) -> Option<Self> {
                <$t>::try_from(r.word()?).ok()
            }
        }
    )*};
}
wire_int!(u8, u16, u32, u64, usize);

impl WireSize for bool {
    const WORDS: usize = 1;
}

impl<'a> Wire<'a> for bool {
    #[inline]
    fn put<B: MessageBuffer + ?Sized>(&self, w: &mut Writer<'_, B>) {
        w.word(Word::from(*self))
    }
    #[inline]
    fn get<B: MessageBuffer + ?Sized>(r: &mut Reader<'a, B>) -> Option<Self> {
        match r.word()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl WireSize for () {
    const WORDS: usize = 0;
}

impl<'a> Wire<'a> for () {
    #[inline]
    fn put<B: MessageBuffer + ?Sized>(&self, _: &mut Writer<'_, B>) {}
    #[inline]
    fn get<B: MessageBuffer + ?Sized>(_: &mut Reader<'a, B>) -> Option<Self> {
        Some(())
    }
}

/// A byte-slice argument: the client's slice is copied into the message,
/// the server receives a copy (at most the words the message has left).
impl WireSize for &[u8] {
    const WORDS: usize = 1;
    const STAGE: usize = MSG_BYTES;
}

impl<'a> Wire<'a> for &'a [u8] {
    #[inline]
    fn put<B: MessageBuffer + ?Sized>(&self, w: &mut Writer<'_, B>) {
        w.bytes(self)
    }
    #[inline]
    fn get<B: MessageBuffer + ?Sized>(r: &mut Reader<'a, B>) -> Option<Self> {
        r.bytes()
    }
}

/// Up to `N` bytes by value: a byte-slice result (or argument) whose
/// largest size the macro counts against the message at compile time.
#[derive(Clone, Copy)]
pub struct Buf<const N: usize> {
    len: usize,
    bytes: [u8; N],
}

impl<const N: usize> Buf<N> {
    pub const CAPACITY: usize = N;
    pub const fn new() -> Self {
        Buf {
            len: 0,
            bytes: [0; N],
        }
    }
    /// A copy of `s`; `None` when it is longer than `N`.
    pub fn from_slice(s: &[u8]) -> Option<Self> {
        let mut b = Buf::new();
        b.extend_from_slice(s).then_some(b)
    }
    /// Appends `s` whole, or returns false and appends nothing.
    #[must_use]
    pub fn extend_from_slice(&mut self, s: &[u8]) -> bool {
        let Some(dst) = self
            .len
            .checked_add(s.len())
            .and_then(|end| self.bytes.get_mut(self.len..end))
        else {
            return false;
        };
        dst.copy_from_slice(s);
        self.len += s.len();
        true
    }
    /// Appends `b`, or returns false when full.
    #[must_use]
    pub fn push(&mut self, b: u8) -> bool {
        self.extend_from_slice(&[b])
    }
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.bytes.get_mut(..self.len).unwrap_or(&mut [])
    }
}

impl<const N: usize> Default for Buf<N> {
    fn default() -> Self {
        Buf::new()
    }
}

impl<const N: usize> Deref for Buf<N> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl<const N: usize> DerefMut for Buf<N> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl<const N: usize> PartialEq for Buf<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<const N: usize> Eq for Buf<N> {}

impl<const N: usize> core::fmt::Debug for Buf<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.as_slice().fmt(f)
    }
}

impl<const N: usize> WireSize for Buf<N> {
    const WORDS: usize = 1;
    const DATA: usize = N.div_ceil(8);
}

impl<'a, const N: usize> Wire<'a> for Buf<N> {
    #[inline]
    fn put<B: MessageBuffer + ?Sized>(&self, w: &mut Writer<'_, B>) {
        w.bytes(self.as_slice())
    }
    #[inline]
    fn get<B: MessageBuffer + ?Sized>(r: &mut Reader<'a, B>) -> Option<Self> {
        let mut b = Buf::new();
        b.len = r.bytes_into(&mut b.bytes)?;
        Some(b)
    }
}

/// A byte range lent by the client in the memory region it shares with the
/// server (a manifest `kind = "memory"` channel): the call carries offset
/// and length; the bytes stay in the region. The server's dispatch checks
/// the range against the region's size ([`lent_size`](interface!)) before
/// the method sees it, and refuses it with `BadMessage` otherwise; the
/// server then reads or writes the range through its `SharedRegion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lent {
    offset: u64,
    len: u64,
}

impl Lent {
    pub const fn new(offset: u64, len: u64) -> Self {
        Lent { offset, len }
    }
    pub const fn offset(&self) -> u64 {
        self.offset
    }
    pub const fn len(&self) -> u64 {
        self.len
    }
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl WireSize for Lent {
    const WORDS: usize = 2;
    const LENT: bool = true;
}

impl<'a> Wire<'a> for Lent {
    #[inline]
    fn put<B: MessageBuffer + ?Sized>(&self, w: &mut Writer<'_, B>) {
        w.word(self.offset);
        w.word(self.len);
    }
    #[inline]
    fn get<B: MessageBuffer + ?Sized>(r: &mut Reader<'a, B>) -> Option<Self> {
        let (offset, len) = (r.word()?, r.word()?);
        let end = offset.checked_add(len)?;
        (end <= r.lent_size).then_some(Lent { offset, len })
    }
}

/// A method's declared result: `T`, or `Result<T, E>` with an application
/// error type. Tells the stub what the client gets.
pub trait Returns {
    type Ok: for<'a> Wire<'a>;
    type Err: WireError;
    /// `RpcError` for `T`, [`Error<E>`] for `Result<T, E>`.
    type ClientError: From<RpcError>;
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
    fn app_error(e: Self::Err) -> Self::ClientError;
}

impl<T: for<'a> Wire<'a>> Returns for T {
    type Ok = T;
    type Err = NoError;
    type ClientError = RpcError;
    #[inline]
    fn into_result(self) -> Result<T, NoError> {
        Ok(self)
    }
    fn app_error(e: NoError) -> RpcError {
        match e {}
    }
}

impl<T: for<'a> Wire<'a>, E: WireError> Returns for Result<T, E> {
    type Ok = T;
    type Err = E;
    type ClientError = Error<E>;
    #[inline]
    fn into_result(self) -> Result<T, E> {
        self
    }
    fn app_error(e: E) -> Error<E> {
        Error::App(e)
    }
}

/// What a client stub returns for a method declared `-> R`.
pub type Outcome<R> = Result<<R as Returns>::Ok, <R as Returns>::ClientError>;

/// Encodes the server's result as the reply.
#[inline]
pub fn encode_reply<R: Returns, B: MessageBuffer + ?Sized>(r: R, buf: &B) -> Msg {
    match r.into_result() {
        Ok(v) => {
            let mut w = Writer::new(buf, <R::Ok as WireSize>::WORDS);
            v.put(&mut w);
            // Cannot fail: the macro checked at compile time that it fits.
            w.finish(REPLY_OK)
                .unwrap_or(Msg::error(RpcError::BadMessage))
        }
        Err(e) => Msg::empty(LABEL_APP | Word::from(e.code())),
    }
}

/// Decodes the reply to a method declared `-> R`. The label is looked at
/// first: an error reply (`ServerGone` from the root task included) is the
/// error whatever words the method expected.
#[inline]
pub fn decode_reply<R: Returns, B: MessageBuffer + ?Sized>(reply: &Msg, buf: &B) -> Outcome<R> {
    if reply.label != REPLY_OK {
        return Err(match app_code(reply.label).map(R::Err::from_code) {
            Some(Some(e)) => R::app_error(e),
            Some(None) => RpcError::BadReply.into(),
            None => RpcError::from_label(reply.label).into(),
        });
    }
    let bad = || R::ClientError::from(RpcError::BadReply);
    let mut r = Reader::new(reply, buf, <R::Ok as WireSize>::WORDS, &mut [], 0).ok_or_else(bad)?;
    let v = <R::Ok as Wire>::get(&mut r).ok_or_else(bad)?;
    if !r.finished() {
        return Err(bad());
    }
    Ok(v)
}

/// How a client stub reaches its server: seL4 Call on an endpoint, or an
/// in-process stand-in in host tests.
pub trait Transport {
    type Buffer: MessageBuffer;
    /// Where the words past the fourth of the request are written and of
    /// the reply are read.
    fn buffer(&self) -> &Self::Buffer;
    fn call(&self, req: &Msg) -> Msg;
}

impl Transport for Endpoint {
    type Buffer = IpcBuffer;
    #[inline]
    fn buffer(&self) -> &IpcBuffer {
        &IpcBuffer
    }
    #[inline]
    fn call(&self, req: &Msg) -> Msg {
        call(*self, req)
    }
}

/// Sends `msg` on `ep` and returns the reply. The first four words travel in
/// CPU registers (`CallWithMRs`); words past them must already be in this
/// thread's IPC buffer, and the reply's are read from it.
#[inline]
pub fn call(ep: Endpoint, msg: &Msg) -> Msg {
    let mut regs = msg.regs;
    let reply = ep.call_regs(MessageInfo::new(msg.label, msg.len), &mut regs);
    Msg {
        label: reply.label(),
        len: reply.length(),
        regs,
    }
}

/// Serves forever: each request is passed to `dispatch` with the caller's
/// badge and this thread's IPC buffer, and its reply is sent back while
/// waiting for the next request.
pub fn serve(ep: Endpoint, mut dispatch: impl FnMut(Badge, &Msg, &IpcBuffer) -> Msg) -> ! {
    serve_turns(ep, |badge, req| Some(dispatch(badge, req, &IpcBuffer)))
}

/// The server loop: `turn` answers a received message with the reply to
/// send with `ReplyRecv`, or `None` when there is no caller to answer now
/// (the next receive is then a plain `Recv`).
fn serve_turns(ep: Endpoint, mut turn: impl FnMut(Badge, &Msg) -> Option<Msg>) -> ! {
    let mut regs = [0; REGISTER_WORDS];
    let (mut info, mut badge) = ep.recv_regs(&mut regs);
    loop {
        let req = Msg {
            label: info.label(),
            len: info.length(),
            regs,
        };
        match turn(badge, &req) {
            Some(reply) => {
                regs = reply.regs;
                (info, badge) =
                    ep.reply_recv_regs(MessageInfo::new(reply.label, reply.len), &mut regs);
            }
            None => (info, badge) = ep.recv_regs(&mut regs),
        }
    }
}

/// The badge bit the root task sets on the clients of a server that parks
/// calls ([`serve_parking`]): a badge without it is the word of the
/// server's bound notification (ring and interrupt bits only), not a call.
/// seL4 5.0 endpoint badges have 28 bits; the root keeps the last for this.
pub const CALL_BADGE_BIT: Badge = 1 << 27;

/// One turn of [`serve_parking`] on a received message: a notification
/// wake-up goes to `on_signal`, a call to `dispatch`. Returns the reply to
/// send with `ReplyRecv`; `None` after a signal or a parked call (the next
/// receive must then be a plain `Recv`: there is no caller to answer).
pub fn parking_turn<B: MessageBuffer + ?Sized>(
    badge: Badge,
    req: &Msg,
    buf: &B,
    on_signal: &mut impl FnMut(Badge),
    dispatch: &mut impl FnMut(Badge, &Msg, &B) -> Option<Msg>,
) -> Option<Msg> {
    if badge & CALL_BADGE_BIT == 0 {
        on_signal(badge);
        return None;
    }
    dispatch(badge, req, buf)
}

/// Serves forever like [`serve`], on a thread whose notification is bound
/// to it: a signal ends the wait with its word as the badge and goes to
/// `on_signal`; a call goes to `dispatch`, which returns the reply, or
/// `None` when it saved the caller's reply capability
/// ([`kaal_sel4::cap::CNode::save_caller`]) to answer later with
/// [`reply_saved`]. Calls must carry [`CALL_BADGE_BIT`].
pub fn serve_parking(
    ep: Endpoint,
    mut on_signal: impl FnMut(Badge),
    mut dispatch: impl FnMut(Badge, &Msg, &IpcBuffer) -> Option<Msg>,
) -> ! {
    serve_turns(ep, |badge, req| {
        parking_turn(badge, req, &IpcBuffer, &mut on_signal, &mut dispatch)
    })
}

/// Answers a parked call through the reply capability saved in `slot`
/// (which the send consumes). The reply's words past the fourth must be in
/// this thread's IPC buffer.
pub fn reply_saved(slot: Word, reply: &Msg) {
    use kaal_sel4::cap::Cap;
    Endpoint::from_cptr(slot).send_regs(MessageInfo::new(reply.label, reply.len), &reply.regs);
}

/// `min(a, MSG_BYTES)` for the macro's stage size.
#[doc(hidden)]
pub const fn stage_bytes(a: usize) -> usize {
    if a < MSG_BYTES {
        a
    } else {
        MSG_BYTES
    }
}

/// A method's result type; `()` when the declaration has none.
#[doc(hidden)]
#[macro_export]
macro_rules! __ret {
    () => {
        ()
    };
    ($t:ty) => {
        $t
    };
}

/// Declares an RPC interface; generates `<Name>Client`, the `<Name>`
/// server trait and `<name>_dispatch`.
///
/// ```
/// use kaal_rpc::{Badge, Buf, Lent};
///
/// kaal_rpc::wire_error! {
///     pub enum StoreError { NotFound = 1, Full = 2 }
/// }
///
/// kaal_rpc::interface! {
///     /// A key-value store.
///     pub interface Store, StoreClient, store_dispatch {
///         1 => fn get(key: u64) -> Result<u64, StoreError>;
///         2 => fn put(key: u64, value: u64) -> Result<(), StoreError>;
///         3 => fn clear();
///         4 => fn name(key: u64) -> Result<Buf<32>, StoreError>;
///         5 => fn set_name(key: u64, name: &[u8]) -> Result<(), StoreError>;
///         6 => fn dump(into: Lent) -> u64;
///     }
/// }
/// ```
///
/// The server implements `Store`, each method with the calling client's
/// badge first and the declared result:
/// `fn get(&mut self, badge: Badge, key: u64) -> Result<u64, StoreError>`.
/// The client calls `StoreClient(endpoint).get(7)` and gets
/// `Result<u64, kaal_rpc::Error<StoreError>>`; a method declared without
/// `Result` gives `Result<T, RpcError>`. A server with `Lent` arguments
/// implements `lent_size(&self, badge)`: the size of the region that client
/// lends in (default 0: every lent range is refused).
///
/// Argument types: `u8`..`u64`, `usize`, `bool`, `&[u8]` (copied through
/// the message), [`Buf<N>`] and [`Lent`]; results: the same but `&[u8]`
/// and `Lent`, or `()`. Arguments and results each must fit in one message,
/// checked at compile time:
///
/// ```compile_fail,E0080
/// kaal_rpc::interface! {
///     pub interface Big, BigClient, big_dispatch {
///         // one length word and 128 data words: more than 120
///         1 => fn put(data: kaal_rpc::Buf<1024>);
///     }
/// }
/// ```
#[macro_export]
macro_rules! interface {
    (
        $(#[$doc:meta])*
        $vis:vis interface $name:ident, $client:ident, $dispatch:ident {
            $(
                $(#[$mdoc:meta])*
                $id:literal => fn $method:ident ( $( $arg:ident : $aty:ty ),* $(,)? ) $( -> $ret:ty )? ;
            )*
        }
    ) => {
        $(#[$doc])*
        /// Implemented by the server; `badge` names the calling client.
        $vis trait $name {
            $(
                $(#[$mdoc])*
                fn $method(&mut self, badge: $crate::Badge $(, $arg: $aty)*) -> $crate::__ret!($($ret)?);
            )*
            /// The size of the memory region client `badge` lends `Lent`
            /// ranges in; 0 (the default): it lends none.
            fn lent_size(&self, badge: $crate::Badge) -> u64 {
                let _ = badge;
                0
            }
        }

        $(
            const _: () = {
                assert!(
                    0 $( + <$aty as $crate::WireSize>::WORDS + <$aty as $crate::WireSize>::DATA )*
                        <= $crate::MSG_MAX,
                    concat!("kaal_rpc: the arguments of `", stringify!($method),
                            "` take more words than one message carries")
                );
                assert!(
                    <<$crate::__ret!($($ret)?) as $crate::Returns>::Ok as $crate::WireSize>::WORDS
                        + <<$crate::__ret!($($ret)?) as $crate::Returns>::Ok as $crate::WireSize>::DATA
                        <= $crate::MSG_MAX,
                    concat!("kaal_rpc: the result of `", stringify!($method),
                            "` takes more words than one message carries")
                );
                assert!(
                    !<<$crate::__ret!($($ret)?) as $crate::Returns>::Ok as $crate::WireSize>::LENT,
                    concat!("kaal_rpc: the result of `", stringify!($method), "` cannot be lent")
                );
            };
        )*

        /// Client stub: one method per call, over an endpoint (or another
        /// transport).
        #[derive(Clone, Copy, Debug)]
        $vis struct $client<T = $crate::Endpoint>(pub T);

        impl<T: $crate::Transport> $client<T> {
            $(
                $(#[$mdoc])*
                #[inline]
                pub fn $method(&self $(, $arg: $aty)*) -> $crate::Outcome<$crate::__ret!($($ret)?)> {
                    const FIXED: usize = 0 $( + <$aty as $crate::WireSize>::WORDS )*;
                    let buf = $crate::Transport::buffer(&self.0);
                    #[allow(unused_mut)]
                    let mut w = $crate::Writer::new(buf, FIXED);
                    $( $crate::Wire::put(&$arg, &mut w); )*
                    let req = w.finish($id)?;
                    let reply = $crate::Transport::call(&self.0, &req);
                    $crate::decode_reply::<$crate::__ret!($($ret)?), _>(&reply, buf)
                }
            )*
        }

        /// Decodes a request, calls the server, encodes the reply. Never
        /// panics: a malformed request gets an error reply.
        $vis fn $dispatch<S, B>(server: &mut S, badge: $crate::Badge, req: &$crate::Msg, buf: &B) -> $crate::Msg
        where
            S: $name + ?Sized,
            B: $crate::MessageBuffer + ?Sized,
        {
            match req.label {
                $(
                    $id => {
                        const FIXED: usize = 0 $( + <$aty as $crate::WireSize>::WORDS )*;
                        const STAGE: usize = $crate::stage_bytes(0 $( + <$aty as $crate::WireSize>::STAGE )*);
                        const LENT: bool = false $( || <$aty as $crate::WireSize>::LENT )*;
                        let mut stage = [0u8; STAGE];
                        let lent = if LENT { server.lent_size(badge) } else { 0 };
                        #[allow(unused_mut, unused_variables)]
                        let Some(mut r) = $crate::Reader::new(req, buf, FIXED, &mut stage, lent) else {
                            return $crate::Msg::error($crate::RpcError::BadMessage);
                        };
                        $(
                            let Some($arg) = <$aty as $crate::Wire<'_>>::get(&mut r) else {
                                return $crate::Msg::error($crate::RpcError::BadMessage);
                            };
                        )*
                        if !r.finished() {
                            return $crate::Msg::error($crate::RpcError::BadMessage);
                        }
                        $crate::encode_reply(server.$method(badge $(, $arg)*), buf)
                    }
                )*
                _ => $crate::Msg::error($crate::RpcError::UnknownMethod),
            }
        }
    };
}
