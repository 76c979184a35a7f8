//! System test `rpc_badged_clients`: an RPC echo server (a thread of the root
//! task, serving through the generated dispatch) tells two clients apart by
//! the badges minted into their endpoint capabilities; a malformed request
//! gets an error reply and the server keeps serving.
#![no_std]
#![no_main]

use kaal_root::demo::{badged_client, start_rpc_server, transform, EchoClient};
use kaal_root::RootError;
use kaal_rpc::{Msg, RpcError};
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

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
    // Malformed requests: an unknown method, and a method with a word missing.
    let raw = |label| RpcError::from_label(kaal_rpc::call(a.0, &Msg::empty(label)).label);
    let errors = (raw(99), raw(1));
    println!("rpc_badged_clients: malformed requests answered {errors:?}");
    if errors != (RpcError::UnknownMethod, RpcError::BadMessage) {
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
