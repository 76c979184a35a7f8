//! A `kaal-ring` ring between two threads of the root task, driven by the
//! ring's full protocol with seL4 notifications as the wake-ups. The
//! benchmark image times it; the `ring_threads` system test checks it.
//!
//! The calling thread produces, a new thread consumes. Both run at the root
//! task's priority, so seL4 round-robins them: a signal makes the peer
//! runnable without preempting the signaller, and each side runs until it
//! blocks (ring full or empty) or its time slice ends. A higher-priority
//! consumer would instead be switched to on every signal and drain every
//! batch as soon as it is published: a context switch per batch.
//!
//! Memory (from the broker): one control page, then the ring.
//!
//! ```text
//!  vaddr          Control: parameters (written before the consumer starts),
//!                 then the consumer's verdict, checksum and signal count
//!  vaddr + 4096   SharedRing<Message, SLOTS>
//! ```

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use kaal_ring::{Consumer, Notify, Producer, RingError, SharedRing};
use kaal_rt::{rdtsc, Signal};
use kaal_sel4::cap::{Cap, Notification};
use kaal_sel4::{println, CPtr, Word};

use crate::demo::HELPER_PRIORITY;
use crate::thread::{exit_thread, spawn};
use kaal_root::{Context, RootBroker, RootError};

/// One message: sequence number and payload (16 bytes, like a buffer
/// descriptor of offset and length).
pub type Message = [u64; 2];

/// Slots in the ring.
pub const SLOTS: usize = 256;

/// The ring the two threads share.
pub type Ring = SharedRing<Message, SLOTS>;

const PAGE: usize = 4096;

/// The payload of message `seq`.
#[inline]
pub const fn payload(seq: u64) -> u64 {
    seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// What the consumer must find: the wrapping sum of the payloads.
pub fn expected_checksum(messages: u64) -> u64 {
    (0..messages).fold(0, |sum: u64, seq| sum.wrapping_add(payload(seq)))
}

/// What one transfer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub messages: u64,
    /// Publish every `batch` pushes, release every `batch` pops.
    pub batch: u64,
    /// From before the first push until the consumer reported it had checked
    /// the last message.
    pub ticks: u64,
    /// Signals the producer sent (the consumer was asleep).
    pub producer_signals: u64,
    /// Signals the consumer sent (the producer waited for space).
    pub consumer_signals: u64,
}

impl Transfer {
    pub fn signals(&self) -> u64 {
        self.producer_signals + self.consumer_signals
    }
}

/// Parameters of a transfer, fixed before the consumer starts.
#[derive(Clone, Copy)]
#[repr(C)]
struct Params {
    messages: u64,
    batch: u64,
    ring: Word,
    /// The consumer waits on this; the producer signals it.
    consumer_wakeup: CPtr,
    /// The producer waits on this; the consumer signals it.
    producer_wakeup: CPtr,
    /// The consumer signals this once ready, then once done.
    done: CPtr,
}

const RUNNING: u64 = 0;
const PASSED: u64 = 1;
const FAILED: u64 = 2;

#[repr(C)]
struct Control {
    params: Params,
    /// `RUNNING`, then `PASSED` or `FAILED` (Release, after the fields below).
    verdict: AtomicU64,
    checksum: AtomicU64,
    signals: AtomicU64,
}

const _: () = assert!(core::mem::size_of::<Control>() <= PAGE);

fn ring_error(side: &str, e: RingError) -> RootError {
    println!("ring: {side}: {e}");
    RootError::Check("ring error")
}

/// Moves `messages` messages from this thread to a new consumer thread,
/// publishing every `batch` pushes, and checks what arrived.
pub fn transfer(broker: &mut RootBroker, messages: u64, batch: u64) -> Result<Transfer, RootError> {
    if batch == 0 || batch > SLOTS as u64 {
        return Err(RootError::Check("ring batch must be 1..=SLOTS"));
    }
    let mem = broker.allocate_memory((PAGE + Ring::BYTES) as u64)?;
    let control_at = usize::try_from(mem.vaddr).map_err(|_| RootError::Check("vaddr"))?;
    let ring_at = control_at + PAGE;
    if control_at % PAGE != 0 {
        return Err(RootError::Check("ring memory is not page-aligned"));
    }
    let consumer_wakeup: Notification = broker.alloc()?;
    let producer_wakeup: Notification = broker.alloc()?;
    let done: Notification = broker.alloc()?;
    let params = Params {
        messages,
        batch,
        ring: ring_at as Word,
        consumer_wakeup: consumer_wakeup.cptr(),
        producer_wakeup: producer_wakeup.cptr(),
        done: done.cptr(),
    };
    let control = control_at as *mut Control;
    // SAFETY: the page at `control_at` is fresh, mapped read-write, page-aligned
    // and used by nobody yet; `Control` fits in it.
    unsafe {
        control.write(Control {
            params,
            verdict: AtomicU64::new(RUNNING),
            checksum: AtomicU64::new(0),
            signals: AtomicU64::new(0),
        });
    }
    let ring_ptr = NonNull::new(ring_at as *mut Ring).ok_or(RootError::Check("ring at 0"))?;
    // SAFETY: the frames after the control page are fresh, mapped read-write
    // and cover `Ring::BYTES`; no one else uses them yet, so this `&mut` is the
    // only reference while the header is reset.
    unsafe { (*ring_ptr.as_ptr()).init() };
    // SAFETY: written above and never through a `&mut` again; the consumer
    // writes only its atomics.
    let ctl = unsafe { &*control };

    // The consumer starts, says it is ready and goes to sleep on the empty ring.
    let tcb = spawn(broker, consumer, control_at as Word, HELPER_PRIORITY)?;
    done.wait();
    // SAFETY: the ring memory is aligned, mapped and initialised for as long as
    // `tx` lives (it is freed below, after the consumer is suspended), and is
    // only accessed through ring handles, never through a `&mut`.
    let tx = unsafe { Producer::<Message, SLOTS>::from_raw(ring_ptr) };
    let t0 = rdtsc();
    let produced = produce(tx, &params, ctl);
    if produced.is_ok() {
        done.wait();
    }
    let ticks = rdtsc().wrapping_sub(t0);
    let verdict = ctl.verdict.load(Ordering::Acquire);
    let checksum = ctl.checksum.load(Ordering::Relaxed);
    let consumer_signals = ctl.signals.load(Ordering::Relaxed);

    // The consumer's stack and IPC buffer stay allocated (`spawn` keeps them).
    tcb.suspend().context("TCB_Suspend")?;
    broker.free(tcb.cptr())?;
    for n in [consumer_wakeup, producer_wakeup, done] {
        broker.free(n.cptr())?;
    }
    broker.free_memory(mem)?;

    let producer_signals = produced?;
    if verdict != PASSED {
        return Err(RootError::Check("ring consumer failed"));
    }
    let want = expected_checksum(messages);
    if checksum != want {
        println!("ring: checksum {checksum:#x}, want {want:#x}");
        return Err(RootError::Check("ring checksum mismatch"));
    }
    Ok(Transfer {
        messages,
        batch,
        ticks,
        producer_signals,
        consumer_signals,
    })
}

/// The producer's side of a transfer; returns the signals it sent. Owning
/// `tx` lets the compiler keep its indices in registers.
fn produce(tx: Producer<'_, Message, SLOTS>, p: &Params, ctl: &Control) -> Result<u64, RootError> {
    let mut tx = tx;
    let wake = Signal(Notification::from_cptr(p.consumer_wakeup));
    let waiter = Waiter {
        own: Notification::from_cptr(p.producer_wakeup),
        wake,
        ctl,
    };
    if p.batch == 1 {
        produce_single(&mut tx, p.messages, &waiter)?;
    } else {
        produce_bulk(&mut tx, p.messages, p.batch, &waiter)?;
    }
    if tx.publish() {
        wake.notify();
    }
    Ok(tx.signals())
}

/// How the producer waits for space.
struct Waiter<'a> {
    own: Notification,
    wake: Signal,
    ctl: &'a Control,
}

impl Waiter<'_> {
    /// Publishes what is pushed, then waits for space unless some appeared.
    fn wait_for_space(&self, tx: &mut Producer<'_, Message, SLOTS>) -> Result<(), RootError> {
        if tx.publish() {
            self.wake.notify();
        }
        if !tx.prepare_wait().map_err(|e| ring_error("producer", e))? {
            self.own.wait();
            // A consumer that failed wakes us to stop.
            if self.ctl.verdict.load(Ordering::Relaxed) == FAILED {
                return Err(RootError::Check("ring consumer failed"));
            }
        }
        Ok(())
    }
}

/// Batch 1: the blocking loop of kaal-ring's README, publishing every push.
fn produce_single(
    tx: &mut Producer<'_, Message, SLOTS>,
    messages: u64,
    waiter: &Waiter<'_>,
) -> Result<(), RootError> {
    for seq in 0..messages {
        let msg = [seq, payload(seq)];
        loop {
            match tx.push(msg) {
                Ok(()) => break,
                Err(RingError::Full) => waiter.wait_for_space(tx)?,
                Err(e) => return Err(ring_error("producer", e)),
            }
        }
        if tx.publish() {
            waiter.wake.notify();
        }
    }
    Ok(())
}

/// Larger batches: `push_with` makes each message straight into its slot, with
/// one free-slot check per call; one publish per batch.
fn produce_bulk(
    tx: &mut Producer<'_, Message, SLOTS>,
    messages: u64,
    batch: u64,
    waiter: &Waiter<'_>,
) -> Result<(), RootError> {
    let mut seq = 0;
    while seq < messages {
        let end = messages.min(seq + batch);
        while seq < end {
            let want = (end - seq) as usize;
            let pushed = tx
                .push_with(want, || {
                    let msg = [seq, payload(seq)];
                    seq += 1;
                    msg
                })
                .map_err(|e| ring_error("producer", e))?;
            if pushed < want {
                waiter.wait_for_space(tx)?;
            }
        }
        if tx.publish() {
            waiter.wake.notify();
        }
    }
    Ok(())
}

/// Why the consumer stopped early.
enum ConsumeError {
    Ring(RingError),
    /// Message `got` arrived where `want` was due.
    Sequence {
        got: u64,
        want: u64,
    },
    /// Some message in `from..to` (one bulk pop) was not the one due.
    SequenceIn {
        from: u64,
        to: u64,
    },
}

impl From<RingError> for ConsumeError {
    fn from(e: RingError) -> Self {
        ConsumeError::Ring(e)
    }
}

/// The consumer's side of a transfer; returns the checksum.
fn consume(rx: &mut Consumer<'_, Message, SLOTS>, p: &Params) -> Result<u64, ConsumeError> {
    let wake = Signal(Notification::from_cptr(p.producer_wakeup));
    let own = Notification::from_cptr(p.consumer_wakeup);
    let sum = if p.batch == 1 {
        consume_single(rx, p.messages, wake, own)?
    } else {
        consume_bulk(rx, p.messages, p.batch, wake, own)?
    };
    if rx.release() {
        wake.notify();
    }
    Ok(sum)
}

/// Gives back the slots, then sleeps unless items arrived: the consumer's
/// move on an empty ring.
fn sleep_on_empty(
    rx: &mut Consumer<'_, Message, SLOTS>,
    wake: Signal,
    own: Notification,
) -> Result<(), RingError> {
    if rx.release() {
        wake.notify();
    }
    if !rx.prepare_sleep()? {
        own.wait();
    }
    Ok(())
}

/// Batch 1: the blocking loop of kaal-ring's README, releasing every pop.
fn consume_single(
    rx: &mut Consumer<'_, Message, SLOTS>,
    messages: u64,
    wake: Signal,
    own: Notification,
) -> Result<u64, ConsumeError> {
    let (mut next, mut sum) = (0, 0u64);
    while next < messages {
        match rx.pop()? {
            Some([seq, value]) => {
                if seq != next {
                    return Err(ConsumeError::Sequence {
                        got: seq,
                        want: next,
                    });
                }
                sum = sum.wrapping_add(value);
                next += 1;
                if rx.release() {
                    wake.notify();
                }
            }
            None => sleep_on_empty(rx, wake, own)?,
        }
    }
    Ok(sum)
}

/// Larger batches: `pop_with` hands over up to the rest of the batch, with one
/// ready-count check per call; each message is checked as it is copied out of
/// its slot; one release per batch.
fn consume_bulk(
    rx: &mut Consumer<'_, Message, SLOTS>,
    messages: u64,
    batch: u64,
    wake: Signal,
    own: Notification,
) -> Result<u64, ConsumeError> {
    let (mut next, mut sum) = (0, 0u64);
    while next < messages {
        let end = messages.min(next + batch);
        while next < end {
            // `wrong` stays 0 exactly if every sequence number is the one due:
            // no branch per message.
            let (from, mut wrong) = (next, 0);
            let got = rx.pop_with((end - next) as usize, |[seq, value]| {
                wrong |= seq ^ next;
                sum = sum.wrapping_add(value);
                next += 1;
            })?;
            if wrong != 0 {
                return Err(ConsumeError::SequenceIn { from, to: next });
            }
            if got == 0 {
                sleep_on_empty(rx, wake, own)?;
            }
        }
        if rx.release() {
            wake.notify();
        }
    }
    Ok(sum)
}

extern "C" fn consumer(control: Word, tcb: CPtr) -> ! {
    // SAFETY: `transfer` passes the address of a `Control` it wrote before
    // starting this thread and keeps mapped until it has suspended it; the
    // spawn orders that write before this read.
    let ctl = unsafe { &*(control as *const Control) };
    let p = ctl.params;
    let done = Notification::from_cptr(p.done);
    let verdict = match NonNull::new(p.ring as *mut Ring) {
        Some(ring) => {
            // SAFETY: as for the producer in `transfer`: aligned, mapped and
            // initialised until this thread is suspended, only accessed
            // through ring handles.
            let mut rx = unsafe { Consumer::<Message, SLOTS>::from_raw(ring) };
            done.signal(); // ready
            let result = consume(&mut rx, &p);
            ctl.signals.store(rx.signals(), Ordering::Relaxed);
            match result {
                Ok(sum) => {
                    ctl.checksum.store(sum, Ordering::Relaxed);
                    PASSED
                }
                Err(ConsumeError::Ring(e)) => {
                    println!("ring: consumer: {e}");
                    FAILED
                }
                Err(ConsumeError::Sequence { got, want }) => {
                    println!("ring: consumer: message {got}, want {want}");
                    FAILED
                }
                Err(ConsumeError::SequenceIn { from, to }) => {
                    println!("ring: consumer: a message in {from}..{to} is out of sequence");
                    FAILED
                }
            }
        }
        None => {
            done.signal();
            FAILED
        }
    };
    ctl.verdict.store(verdict, Ordering::Release);
    if verdict == FAILED {
        // The producer may be waiting for space that will never come.
        Notification::from_cptr(p.producer_wakeup).signal();
    }
    done.signal();
    exit_thread(tcb)
}
