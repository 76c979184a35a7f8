//! The generated client and server sides on the host: requests dispatched
//! from hand-made messages, and calls from the client stub through a
//! transport that copies messages between two buffers as the kernel does.
//! Well-formed calls are served; malformed requests and replies are errors,
//! never panics.
// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use core::cell::{Cell, RefCell};
use kaal_rpc::{
    Badge, Buf, Error, Lent, LocalBuffer, MessageBuffer, Msg, RpcError, Transport, WireError,
    MSG_MAX, REGISTER_WORDS,
};

kaal_rpc::wire_error! {
    /// The test service's errors.
    pub enum CalcError {
        NotFound = 1,
        TooLong = 3,
        Denied = 0xffff,
    }
}

kaal_rpc::interface! {
    /// A test service.
    pub interface Calc, CalcClient, calc_dispatch {
        1 => fn echo(value: u64) -> u64;
        2 => fn add(a: u32, b: u32) -> u64;
        3 => fn whoami() -> u64;
        4 => fn refuse(flag: bool) -> Result<u8, CalcError>;
        5 => fn ping();
        6 => fn set(key: u64) -> Result<(), CalcError>;
        7 => fn five(a: u64, b: u64, c: u64, d: u64, e: u8) -> u64;
        8 => fn reverse(data: &[u8]) -> Result<Buf<64>, CalcError>;
        9 => fn join(a: &[u8], sep: u8, b: &[u8]) -> Buf<900>;
        10 => fn sum(range: Lent) -> u64;
        11 => fn fill(range: Lent, byte: u8) -> Result<(), CalcError>;
        12 => fn store(data: Buf<16>) -> usize;
    }
}

/// Each client's lent region, by badge; method calls counted.
#[derive(Default)]
struct Server {
    pings: u64,
    calls: u64,
    regions: Vec<(Badge, Vec<u8>)>,
}

impl Server {
    fn region(&mut self, badge: Badge) -> Option<&mut Vec<u8>> {
        self.regions
            .iter_mut()
            .find(|(b, _)| *b == badge)
            .map(|(_, r)| r)
    }
}

impl Calc for Server {
    fn echo(&mut self, _: Badge, value: u64) -> u64 {
        value
    }
    fn add(&mut self, _: Badge, a: u32, b: u32) -> u64 {
        u64::from(a) + u64::from(b)
    }
    fn whoami(&mut self, badge: Badge) -> u64 {
        badge
    }
    fn refuse(&mut self, _: Badge, flag: bool) -> Result<u8, CalcError> {
        if flag {
            Err(CalcError::Denied)
        } else {
            Ok(1)
        }
    }
    fn ping(&mut self, _: Badge) {
        self.pings += 1;
    }
    fn set(&mut self, _: Badge, key: u64) -> Result<(), CalcError> {
        if key == 0 {
            Err(CalcError::NotFound)
        } else {
            Ok(())
        }
    }
    fn five(&mut self, _: Badge, a: u64, b: u64, c: u64, d: u64, e: u8) -> u64 {
        a + 10 * b + 100 * c + 1000 * d + 10000 * u64::from(e)
    }
    fn reverse(&mut self, _: Badge, data: &[u8]) -> Result<Buf<64>, CalcError> {
        let mut out = Buf::new();
        for &b in data.iter().rev() {
            if !out.push(b) {
                return Err(CalcError::TooLong);
            }
        }
        Ok(out)
    }
    fn join(&mut self, _: Badge, a: &[u8], sep: u8, b: &[u8]) -> Buf<900> {
        let mut out = Buf::new();
        let _ = out.extend_from_slice(a) && out.push(sep) && out.extend_from_slice(b);
        out
    }
    fn sum(&mut self, badge: Badge, range: Lent) -> u64 {
        self.calls += 1;
        let (o, l) = (range.offset() as usize, range.len() as usize);
        // Dispatch checked the range against lent_size: a client that lends
        // nothing can only name the empty range.
        self.region(badge)
            .map_or(0, |r| r[o..o + l].iter().map(|&b| u64::from(b)).sum())
    }
    fn fill(&mut self, badge: Badge, range: Lent, byte: u8) -> Result<(), CalcError> {
        self.calls += 1;
        let (o, l) = (range.offset() as usize, range.len() as usize);
        let r = self.region(badge).ok_or(CalcError::NotFound)?;
        r[o..o + l].fill(byte);
        Ok(())
    }
    fn store(&mut self, _: Badge, data: Buf<16>) -> usize {
        data.len()
    }
    fn lent_size(&self, badge: Badge) -> u64 {
        self.regions
            .iter()
            .find(|(b, _)| *b == badge)
            .map_or(0, |(_, r)| r.len() as u64)
    }
}

/// Counts the words read and written past the register words.
#[derive(Default)]
struct Spy {
    words: LocalBuffer,
    touched: Cell<usize>,
}

impl MessageBuffer for Spy {
    fn mr(&self, i: usize) -> Word {
        self.touched.set(self.touched.get() + 1);
        self.words.mr(i)
    }
    fn set_mr(&self, i: usize, w: Word) {
        self.touched.set(self.touched.get() + 1);
        self.words.set_mr(i, w)
    }
}

type Word = u64;

/// Client and server in one process, each with its own message buffer; a
/// call copies the words past the registers from one to the other, as the
/// kernel copies IPC buffers.
struct Loopback {
    server: RefCell<Server>,
    badge: Badge,
    client_buf: Spy,
    server_buf: Spy,
    calls: Cell<usize>,
}

impl Loopback {
    fn new(server: Server, badge: Badge) -> Self {
        Loopback {
            server: RefCell::new(server),
            badge,
            client_buf: Spy::default(),
            server_buf: Spy::default(),
            calls: Cell::new(0),
        }
    }
    fn touched(&self) -> usize {
        self.client_buf.touched.get() + self.server_buf.touched.get()
    }
}

fn copy_words(len: usize, from: &LocalBuffer, to: &LocalBuffer) {
    for i in REGISTER_WORDS..len.min(MSG_MAX) {
        to.set_mr(i, from.mr(i));
    }
}

impl Transport for Loopback {
    type Buffer = Spy;
    fn buffer(&self) -> &Spy {
        &self.client_buf
    }
    fn call(&self, req: &Msg) -> Msg {
        self.calls.set(self.calls.get() + 1);
        copy_words(req.len, &self.client_buf.words, &self.server_buf.words);
        let reply = calc_dispatch(
            &mut *self.server.borrow_mut(),
            self.badge,
            req,
            &self.server_buf,
        );
        copy_words(reply.len, &self.server_buf.words, &self.client_buf.words);
        reply
    }
}

/// A server that answers every call with one fixed reply.
struct Hostile {
    reply: Msg,
    buf: LocalBuffer,
}

impl Hostile {
    fn new(label: Word, words: &[Word]) -> Self {
        let buf = LocalBuffer::default();
        let reply = Msg::new(label, words, &buf).unwrap();
        Hostile { reply, buf }
    }
}

impl Transport for Hostile {
    type Buffer = LocalBuffer;
    fn buffer(&self) -> &LocalBuffer {
        &self.buf
    }
    fn call(&self, _: &Msg) -> Msg {
        self.reply
    }
}

fn client(badge: Badge) -> CalcClient<Loopback> {
    CalcClient(Loopback::new(Server::default(), badge))
}

/// The reply to a hand-made request, as (label, words).
fn dispatch(label: Word, words: &[Word]) -> (Word, Vec<Word>) {
    let buf = LocalBuffer::default();
    let req = Msg::new(label, words, &buf).unwrap();
    let reply = calc_dispatch(&mut Server::default(), 0, &req, &buf);
    (reply.label, reply.words(&buf).collect())
}

fn error_of(label: Word, words: &[Word]) -> RpcError {
    RpcError::from_label(dispatch(label, words).0)
}

#[test]
fn well_formed_requests_are_served() {
    assert_eq!(dispatch(1, &[42]), (0, vec![42]));
    assert_eq!(dispatch(2, &[u64::from(u32::MAX), 1]), (0, vec![1 << 32]));
    let buf = LocalBuffer::default();
    let req = Msg::new(3, &[], &buf).unwrap();
    assert_eq!(
        calc_dispatch(&mut Server::default(), 0xb1, &req, &buf).regs[0],
        0xb1
    );
    let c = client(0xb2);
    assert_eq!(c.whoami(), Ok(0xb2));
    assert_eq!(c.echo(u64::MAX), Ok(u64::MAX));
    assert_eq!(c.add(u32::MAX, 2), Ok(u64::from(u32::MAX) + 2));
}

#[test]
fn malformed_requests_get_error_replies() {
    assert_eq!(error_of(99, &[]), RpcError::UnknownMethod);
    assert_eq!(error_of(1, &[]), RpcError::BadMessage, "too few words");
    assert_eq!(error_of(1, &[1, 2]), RpcError::BadMessage, "too many words");
    assert_eq!(
        error_of(2, &[1 << 40, 1]),
        RpcError::BadMessage,
        "u32 out of range"
    );
    assert_eq!(error_of(4, &[2]), RpcError::BadMessage, "not a bool");
    assert_eq!(
        error_of(5, &[0; MSG_MAX]),
        RpcError::BadMessage,
        "words where none are due"
    );
    // A length the kernel would never report is refused, not trusted.
    let buf = LocalBuffer::default();
    let mut req = Msg::new(1, &[5], &buf).unwrap();
    req.len = MSG_MAX + 1;
    let reply = calc_dispatch(&mut Server::default(), 0, &req, &buf);
    assert_eq!(RpcError::from_label(reply.label), RpcError::BadMessage);
}

#[test]
fn unit_results() {
    assert_eq!(dispatch(5, &[]), (0, vec![]), "() is an empty reply");
    let c = client(1);
    assert_eq!(c.ping(), Ok(()));
    assert_eq!(c.ping(), Ok(()));
    assert_eq!(c.0.server.borrow().pings, 2);
    assert_eq!(c.set(3), Ok(()));
    // A reply with words where () is due is not trusted.
    assert_eq!(
        CalcClient(Hostile::new(0, &[1])).ping(),
        Err(RpcError::BadReply)
    );
}

#[test]
fn typed_errors_round_trip() {
    let c = client(1);
    assert_eq!(c.refuse(false), Ok(1));
    assert_eq!(c.refuse(true), Err(Error::App(CalcError::Denied)));
    assert_eq!(c.set(0), Err(Error::App(CalcError::NotFound)));
    match c.set(0) {
        Err(Error::App(CalcError::NotFound)) => {}
        other => panic!("{other:?}"),
    }
    // On the wire: the application bit and the code; no words.
    let (label, words) = dispatch(6, &[0]);
    assert_eq!((label, words), (0x1_0000 | 1, vec![]));
    assert_eq!(CalcError::Denied.code(), 0xffff);
    // A transport error is the same for every method.
    assert_eq!(c.refuse(true).map_err(|_| ()), Err(()));
    assert_eq!(
        CalcClient(Hostile::new(2, &[])).set(1),
        Err(Error::Rpc(RpcError::BadMessage))
    );
}

#[test]
fn unknown_error_codes_are_bad_replies() {
    // A code CalcError does not have.
    assert_eq!(
        CalcClient(Hostile::new(0x1_0000 | 2, &[])).set(1),
        Err(Error::Rpc(RpcError::BadReply))
    );
    // An application error from a method that declares none.
    assert_eq!(
        CalcClient(Hostile::new(0x1_0000 | 1, &[])).echo(1),
        Err(RpcError::BadReply)
    );
    // Labels nobody defined.
    for label in [4, 0xffff, 0x2_0000, 0x1_0000_0000, u64::MAX >> 12] {
        assert_eq!(
            CalcClient(Hostile::new(label, &[])).set(1),
            Err(Error::Rpc(RpcError::BadReply)),
            "label {label:#x}"
        );
    }
    // A successful reply of the wrong shape.
    assert_eq!(
        CalcClient(Hostile::new(0, &[1, 2])).echo(1),
        Err(RpcError::BadReply)
    );
    assert_eq!(
        CalcClient(Hostile::new(0, &[256])).refuse(false),
        Err(Error::Rpc(RpcError::BadReply)),
        "u8 out of range"
    );
}

#[test]
fn more_than_four_words() {
    let c = client(1);
    assert_eq!(c.five(1, 2, 3, 4, 5), Ok(54321));
    assert!(c.0.touched() > 0, "the fifth word goes through the buffer");
    assert_eq!(dispatch(7, &[1, 2, 3, 4, 5]), (0, vec![54321]));
    assert_eq!(
        error_of(7, &[1, 2, 3, 4]),
        RpcError::BadMessage,
        "the fifth word missing"
    );
    assert_eq!(
        error_of(7, &[1, 2, 3, 4, 256]),
        RpcError::BadMessage,
        "the fifth word out of range"
    );
}

#[test]
fn calls_of_four_words_stay_in_registers() {
    let c = client(9);
    assert_eq!(c.echo(5), Ok(5));
    assert_eq!(c.add(1, 2), Ok(3));
    assert_eq!(c.whoami(), Ok(9));
    assert_eq!(c.ping(), Ok(()));
    assert_eq!(c.set(0), Err(Error::App(CalcError::NotFound)));
    assert_eq!(c.refuse(false), Ok(1));
    assert_eq!(c.sum(Lent::new(0, 0)), Ok(0));
    assert_eq!(c.store(Buf::from_slice(b"").unwrap()), Ok(0));
    assert_eq!(c.0.touched(), 0, "no word past the registers was touched");
    // Three bytes fit in the registers too (length word and one data word).
    assert_eq!(c.reverse(b"abc").unwrap().as_slice(), b"cba");
    assert_eq!(c.0.touched(), 0);
}

#[test]
fn byte_slices_in_and_out() {
    let c = client(1);
    for n in [0, 1, 7, 8, 9, 23, 24, 25, 63, 64] {
        let data: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
        let want: Vec<u8> = data.iter().rev().copied().collect();
        assert_eq!(c.reverse(&data).unwrap().as_slice(), &want[..], "{n} bytes");
    }
    assert_eq!(
        c.reverse(&[0; 65]),
        Err(Error::App(CalcError::TooLong)),
        "the server's own limit"
    );
    let joined = c.join(b"left", b'|', b"right").unwrap();
    assert_eq!(joined.as_slice(), b"left|right");
    // The largest: three fixed words, 117 data words.
    let a = vec![b'a'; 450];
    let b = vec![b'b'; 449];
    let joined = c.join(&a, b'-', &b).unwrap();
    assert_eq!(joined.len(), 900);
    assert_eq!(&joined[..450], &a[..]);
    assert_eq!(joined[450], b'-');
    assert_eq!(&joined[451..], &b[..]);
    assert_eq!(
        c.store(Buf::from_slice(b"sixteen bytes!!!").unwrap()),
        Ok(16)
    );
}

#[test]
fn over_long_arguments_are_refused_before_sending() {
    let c = client(1);
    // One length word and 119 data words fill the message exactly.
    assert_eq!(
        c.reverse(&[0; 119 * 8]),
        Err(Error::App(CalcError::TooLong))
    );
    assert_eq!(c.0.calls.get(), 1);
    assert_eq!(
        c.reverse(&[0; 119 * 8 + 1]),
        Err(Error::Rpc(RpcError::TooLong))
    );
    assert_eq!(c.join(&[1; 500], 0, &[2; 500]), Err(RpcError::TooLong));
    assert_eq!(
        c.join(&[1; 2000], 0, &[]),
        Err(RpcError::TooLong),
        "the second slice's length word is still written"
    );
    assert_eq!(c.0.calls.get(), 1, "nothing more was sent");
    assert_eq!(
        Msg::new(1, &[0; MSG_MAX + 1], &LocalBuffer::default()),
        Err(RpcError::TooLong)
    );
}

#[test]
fn lying_lengths_in_requests_are_refused() {
    let word = |s: &[u8]| {
        let mut w = [0u8; 8];
        w[..s.len()].copy_from_slice(s);
        u64::from_le_bytes(w)
    };
    assert_eq!(dispatch(8, &[2, word(b"ab")]), (0, vec![2, word(b"ba")]));
    // The length says more bytes than the message carries.
    assert_eq!(error_of(8, &[9, word(b"ab")]), RpcError::BadMessage);
    assert_eq!(error_of(8, &[8 * 200, 0, 0]), RpcError::BadMessage);
    assert_eq!(error_of(8, &[u64::MAX, 0]), RpcError::BadMessage);
    assert_eq!(error_of(8, &[u64::MAX - 6, 0]), RpcError::BadMessage);
    assert_eq!(error_of(8, &[1 << 61, 0]), RpcError::BadMessage);
    // Fewer: words left over.
    assert_eq!(error_of(8, &[2, word(b"ab"), 0]), RpcError::BadMessage);
    assert_eq!(error_of(8, &[0, 0]), RpcError::BadMessage);
    // Two slices whose lengths together claim more than is there.
    assert_eq!(error_of(9, &[8, 0, 9, 1, 2]), RpcError::BadMessage);
    assert_eq!(dispatch(9, &[8, 0, 8, 1, 2]).0, 0);
    // A whole message of data.
    let mut words = vec![(MSG_MAX as u64 - 1) * 8];
    words.resize(MSG_MAX, word(b"xxxxxxxx"));
    assert_eq!(
        dispatch(8, &words).0,
        0x1_0000 | 3,
        "served: too long for Buf<64>"
    );
    // A Buf argument longer than its capacity.
    assert_eq!(error_of(12, &[17, 0, 0, 0]), RpcError::BadMessage);
    assert_eq!(dispatch(12, &[16, 0, 0]), (0, vec![16]));
}

#[test]
fn lying_lengths_in_replies_are_bad_replies() {
    // reverse returns Buf<64>: length word, then data.
    let lies: [&[Word]; 6] = [
        &[9, 0],        // more bytes than words
        &[65; 10],      // more than the Buf holds
        &[u64::MAX, 0], // absurd
        &[2, 0, 0],     // words left over
        &[],            // no length word
        &[(MSG_MAX as u64) * 8, 0],
    ];
    for words in lies {
        assert_eq!(
            CalcClient(Hostile::new(0, words)).reverse(b"ab"),
            Err(Error::Rpc(RpcError::BadReply)),
            "{words:?}"
        );
    }
    let ok = CalcClient(Hostile::new(
        0,
        &[2, u64::from_le_bytes(*b"ba\0\0\0\0\0\0")],
    ));
    assert_eq!(ok.reverse(b"ab").unwrap().as_slice(), b"ba");
}

#[test]
fn server_gone_wins_over_expected_data() {
    // The root task rewrites a blocked client's reply to the label alone;
    // the registers and the buffer still hold whatever was there.
    let gone = Hostile::new(RpcError::ServerGone.label(), &[]);
    let c = CalcClient(gone);
    for i in 0..MSG_MAX {
        c.0.buf.set_mr(i, 64);
    }
    assert_eq!(c.reverse(b"ab"), Err(Error::Rpc(RpcError::ServerGone)));
    assert_eq!(c.join(b"a", 0, b"b"), Err(RpcError::ServerGone));
    assert_eq!(c.echo(1), Err(RpcError::ServerGone));
    assert_eq!(c.ping(), Err(RpcError::ServerGone));
    assert_eq!(c.set(1), Err(Error::Rpc(RpcError::ServerGone)));
    let mut stale = Msg::new(RpcError::ServerGone.label(), &[], &c.0.buf).unwrap();
    stale.regs = [2, 1, 1, 1];
    let c = CalcClient(Hostile {
        reply: stale,
        buf: LocalBuffer::default(),
    });
    assert_eq!(c.reverse(b"ab"), Err(Error::Rpc(RpcError::ServerGone)));
}

#[test]
fn lent_ranges_are_checked_before_the_server_sees_them() {
    let mut server = Server::default();
    server.regions.push((1, (0..=255).collect()));
    let c = CalcClient(Loopback::new(server, 1));
    assert_eq!(c.sum(Lent::new(0, 4)), Ok(6));
    assert_eq!(
        c.sum(Lent::new(250, 6)),
        Ok(250 + 251 + 252 + 253 + 254 + 255)
    );
    assert_eq!(c.sum(Lent::new(256, 0)), Ok(0), "empty, at the end");
    assert_eq!(c.fill(Lent::new(10, 2), 7), Ok(()));
    assert_eq!(c.sum(Lent::new(9, 4)), Ok(9 + 7 + 7 + 12));
    assert_eq!(c.0.server.borrow().calls, 5);
    let hostile = [
        Lent::new(256, 1),
        Lent::new(255, 2),
        Lent::new(0, 257),
        Lent::new(1 << 40, 1),
        Lent::new(u64::MAX, 1),
        Lent::new(1, u64::MAX),
        Lent::new(u64::MAX, u64::MAX),
    ];
    for l in hostile {
        assert_eq!(c.sum(l), Err(RpcError::BadMessage), "{l:?}");
        assert_eq!(c.fill(l, 0), Err(Error::Rpc(RpcError::BadMessage)), "{l:?}");
    }
    assert_eq!(c.0.server.borrow().calls, 5, "the server never saw them");
    // A client that lends no region: every non-empty range is refused.
    let mut server = Server::default();
    server.regions.push((1, vec![0; 16]));
    let other = CalcClient(Loopback::new(server, 2));
    assert_eq!(other.sum(Lent::new(0, 1)), Err(RpcError::BadMessage));
    assert_eq!(error_of(10, &[0, 1]), RpcError::BadMessage);
    assert_eq!(error_of(10, &[0]), RpcError::BadMessage, "a word missing");
}

#[test]
fn the_message_is_the_kernels() {
    assert_eq!(MSG_MAX, 120);
    assert_eq!(REGISTER_WORDS, 4);
}
