//! System test `rpc_badged_clients`: an RPC echo server (a thread of the root
//! task, serving through the generated dispatch) tells two clients apart by
//! the badges minted into their endpoint capabilities; byte strings travel
//! through the IPC buffer both ways; a typed error comes back as the same
//! enum; a malformed request gets an error reply and the server keeps
//! serving.
#![no_std]
#![no_main]

use kaal_interfaces::echo::{EchoError, REVERSE_MAX};
use kaal_root::RootError;
use kaal_rpc::{Error, IpcBuffer, Msg, RpcError};
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;
use kaal_systest::demo::{badged_client, start_rpc_server, transform, EchoClient};

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let ep = start_rpc_server(&mut broker)?;
    let a = badged_client(&mut broker, ep, 0xa1)?;
    let b = badged_client(&mut broker, ep, 0xb2)?;
    let rpc = |r: Result<u64, RpcError>| r.map_err(|_| RootError::Check("RPC call failed"));
    let (who_a, who_b) = (rpc(a.whoami())?, rpc(b.whoami())?);
    println!("rpc_badged_clients: server saw badges {who_a:#x} and {who_b:#x}");
    if (who_a, who_b) != (0xa1, 0xb2) {
        return Err(RootError::Check(
            "the server did not tell the clients apart",
        ));
    }
    if rpc(a.echo(41))? != transform(41) || rpc(b.echo(7))? != transform(7) {
        return Err(RootError::Check("echo returned the wrong value"));
    }
    // Byte strings of every length up to the most `reverse` takes.
    let mut data = [0u8; REVERSE_MAX];
    for (i, d) in data.iter_mut().enumerate() {
        *d = (i as u8).wrapping_mul(29).wrapping_add(3);
    }
    for n in 1..=REVERSE_MAX {
        let sent = data.get(..n).unwrap_or(&[]);
        let got = a
            .reverse(sent)
            .map_err(|_| RootError::Check("reverse failed"))?;
        if got.len() != n || !got.iter().eq(sent.iter().rev()) {
            return Err(RootError::Check("reverse returned the wrong bytes"));
        }
    }
    // Typed errors: the server's enum arrives as itself.
    let errors = (b.reverse(&[]), b.reverse(&[0; REVERSE_MAX + 1]));
    if errors
        != (
            Err(Error::App(EchoError::Empty)),
            Err(Error::App(EchoError::TooLong)),
        )
    {
        return Err(RootError::Check("reverse did not refuse with its errors"));
    }
    println!(
        "rpc_badged_clients: reversed 1..={REVERSE_MAX} bytes; refused with {:?} and {:?}",
        errors.0.err(),
        errors.1.err()
    );
    // Malformed requests: an unknown method, a method with a word missing,
    // and a byte length the message does not carry.
    let raw = |label, words: &[u64]| {
        Msg::new(label, words, &IpcBuffer)
            .map(|m| RpcError::from_label(kaal_rpc::call(a.0, &m).label))
    };
    let errors = (raw(99, &[]), raw(1, &[]), raw(3, &[8 * 64, 0, 0]));
    println!("rpc_badged_clients: malformed requests answered {errors:?}");
    let bad = Ok(RpcError::BadMessage);
    if errors != (Ok(RpcError::UnknownMethod), bad, bad) {
        return Err(RootError::Check("malformed requests were not refused"));
    }
    if rpc(EchoClient(b.0).echo(1))? != transform(1) {
        return Err(RootError::Check(
            "server stopped serving after a malformed request",
        ));
    }
    println!("rpc_badged_clients: ok");
    Ok(())
}

kaal_rt::root_task!(main);
