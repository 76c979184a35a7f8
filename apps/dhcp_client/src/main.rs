//! Asks the network for an address: a DHCP DISCOVER through the network
//! driver (local names `tx` and `rx`), and the OFFER's address and server
//! printed. Then it exits: KaaL has no network service yet to keep a lease.
#![no_std]
#![no_main]

use dhcp_client::{dhcp, Client, Error};
use kaal_rt::{println, Env};

/// The transaction id of its DISCOVERs.
const XID: u32 = 0x4b61_614c;

fn main(env: &Env) -> Result<(), Error> {
    let mut c = Client::new(env)?;
    let (ip, server) = dhcp(&mut c, XID)?;
    println!("{}: offer of {ip} from {server}", env.name());
    Ok(())
}

kaal_rt::component!(main);
