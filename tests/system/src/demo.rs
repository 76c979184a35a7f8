//! Self-checks of the kernel paths everything else stands on: a Call and
//! ReplyRecv round trip between two threads, and a badged Signal and Wait.
//! The system tests `ipc_roundtrip` and `notification_signal_wait` and the
//! benchmarks use them.
//!
//! The echo service is `kaal_interfaces::echo`; the raw echo servers here
//! answer as it does (one value, transformed) without its RPC layer, as the
//! baselines the benchmarks compare it with.

use crate::thread::{exit_thread, spawn};
use kaal_root::{Context, RootBroker, RootError};
use kaal_sel4::cap::{init, Cap, Endpoint, Notification, Rights};
use kaal_sel4::ipc::{self, MessageInfo};
use kaal_sel4::{println, CPtr, Word};

/// Priority of helper threads: the root task's own, so IPC takes the fastpath.
pub const HELPER_PRIORITY: u8 = 255;

pub use kaal_interfaces::echo::{echo_dispatch, transform, Echo, EchoClient, EchoService};

/// The raw echo servers' answer to a request `info` whose first word is
/// `v`: one word, `v` transformed; anything but one word is refused with
/// label 1 (and `v` unchanged). The servers differ only in where the words
/// travel.
#[inline(always)]
fn answer(info: MessageInfo, v: Word) -> (MessageInfo, Word) {
    if info.length() == 1 {
        (MessageInfo::new(0, 1), transform(v))
    } else {
        (MessageInfo::new(1, 0), v)
    }
}

/// Serves forever: each call's MR0 comes back transformed.
pub extern "C" fn echo_server(ep: Word, _tcb: CPtr) -> ! {
    let ep = Endpoint::from_cptr(ep);
    let (mut info, _) = ep.recv();
    loop {
        let (reply, w) = answer(info, ipc::mr(0));
        ipc::set_mr(0, w);
        (info, _) = ep.reply_recv(reply);
    }
}

/// Starts an echo server thread and returns the endpoint it serves.
pub fn start_echo_server(broker: &mut RootBroker) -> Result<Endpoint, RootError> {
    let ep: Endpoint = broker.alloc()?;
    spawn(broker, echo_server, ep.cptr(), HELPER_PRIORITY)?;
    Ok(ep)
}

/// One round trip: sends `v`, returns the reply's MR0.
#[inline]
pub fn call_once(ep: Endpoint, v: Word) -> Result<Word, RootError> {
    ipc::set_mr(0, v);
    let reply = ep.call(MessageInfo::new(0, 1));
    if reply.label() != 0 || reply.length() != 1 {
        return Err(RootError::Check("echo reply has the wrong shape"));
    }
    Ok(ipc::mr(0))
}

/// Serves like [`echo_server`], with the message in CPU registers only
/// (`*WithMRs`: the IPC buffer is not touched), as `kaal-rpc` passes it.
pub extern "C" fn echo_server_regs(ep: Word, _tcb: CPtr) -> ! {
    let ep = Endpoint::from_cptr(ep);
    let mut mrs = [0; 4];
    let (mut info, _) = ep.recv_regs(&mut mrs);
    loop {
        let [v, b, c, d] = mrs;
        let (reply, w) = answer(info, v);
        mrs = [w, b, c, d];
        (info, _) = ep.reply_recv_regs(reply, &mut mrs);
    }
}

/// Starts a register-only echo server thread and returns its endpoint.
pub fn start_echo_server_regs(broker: &mut RootBroker) -> Result<Endpoint, RootError> {
    let ep: Endpoint = broker.alloc()?;
    spawn(broker, echo_server_regs, ep.cptr(), HELPER_PRIORITY)?;
    Ok(ep)
}

/// One register-only round trip: sends `v`, returns the reply's MR0.
#[inline]
pub fn call_once_regs(ep: Endpoint, v: Word) -> Result<Word, RootError> {
    let mut mrs = [v, 0, 0, 0];
    let reply = ep.call_regs(MessageInfo::new(0, 1), &mut mrs);
    if reply.label() != 0 || reply.length() != 1 {
        return Err(RootError::Check("echo reply has the wrong shape"));
    }
    let [w, ..] = mrs;
    Ok(w)
}

/// Call/ReplyRecv between two threads: each value comes back transformed.
pub fn ipc_roundtrip(broker: &mut RootBroker) -> Result<(), RootError> {
    let ep = start_echo_server(broker)?;
    let values = [0, 1, 41, 0xdead_beef, Word::MAX];
    for v in values {
        let got = call_once(ep, v)?;
        if got != transform(v) {
            println!(
                "ipc_roundtrip: sent {v:#x}, got {got:#x}, want {:#x}",
                transform(v)
            );
            return Err(RootError::Check("echo server returned the wrong value"));
        }
    }
    // A message of the wrong length is refused, not served.
    let reply = ep.call(MessageInfo::new(0, 0));
    if reply.label() != 1 {
        return Err(RootError::Check("malformed request was not refused"));
    }
    println!(
        "ipc_roundtrip: ok ({} values round-tripped through a second thread)",
        values.len()
    );
    Ok(())
}

/// The badge the signalling thread's capability carries.
pub const SIGNAL_BADGE: Word = 0b1010_0101;

extern "C" fn signaller(ntfn: Word, tcb: CPtr) -> ! {
    Notification::from_cptr(ntfn).signal();
    exit_thread(tcb)
}

/// A second thread signals through a badged capability; Wait sees the badge.
pub fn notification_signal_wait(broker: &mut RootBroker) -> Result<(), RootError> {
    let ntfn: Notification = broker.alloc()?;
    if ntfn.poll().is_some() {
        return Err(RootError::Check(
            "a fresh notification is already signalled",
        ));
    }
    let badged = broker.alloc_slot()?;
    init::CNODE
        .mint(badged, ntfn.cptr(), 64, Rights::all(), SIGNAL_BADGE)
        .context("CNode_Mint")?;
    spawn(broker, signaller, badged, HELPER_PRIORITY)?;
    let badge = ntfn.wait();
    if badge != SIGNAL_BADGE {
        println!("notification_signal_wait: badge {badge:#x}, want {SIGNAL_BADGE:#x}");
        return Err(RootError::Check("wait returned the wrong badge"));
    }
    if ntfn.poll().is_some() {
        return Err(RootError::Check("wait did not clear the notification"));
    }
    println!("notification_signal_wait: ok (badge {badge:#x} from a second thread)");
    Ok(())
}

extern "C" fn rpc_server(ep: Word, _tcb: CPtr) -> ! {
    let mut service = EchoService;
    kaal_rpc::serve(Endpoint::from_cptr(ep), |badge, req, buf| {
        echo_dispatch(&mut service, badge, req, buf)
    })
}

/// Starts the RPC echo server on a thread and returns its endpoint.
pub fn start_rpc_server(broker: &mut RootBroker) -> Result<Endpoint, RootError> {
    let ep: Endpoint = broker.alloc()?;
    spawn(broker, rpc_server, ep.cptr(), HELPER_PRIORITY)?;
    Ok(ep)
}

/// A client's copy of `ep` carrying `badge`.
pub fn badged_client(
    broker: &mut RootBroker,
    ep: Endpoint,
    badge: Word,
) -> Result<EchoClient, RootError> {
    let slot = broker.alloc_slot()?;
    init::CNODE
        .mint(slot, ep.cptr(), 64, Rights::all(), badge)
        .context("CNode_Mint")?;
    Ok(EchoClient(Endpoint::from_cptr(slot)))
}
