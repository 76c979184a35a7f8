//! The generated server side, driven with hand-made messages: well-formed
//! requests are served with the caller's badge; malformed ones get error
//! replies.

use kaal_rpc::{Badge, Msg, RpcError};

kaal_rpc::interface! {
    /// A test service.
    pub interface Calc, CalcClient, calc_dispatch {
        1 => fn echo(value: u64) -> u64;
        2 => fn add(a: u32, b: u32) -> u64;
        3 => fn whoami() -> u64;
        4 => fn refuse(flag: bool) -> u8;
    }
}

struct Server;

impl Calc for Server {
    fn echo(&mut self, _: Badge, value: u64) -> Result<u64, RpcError> {
        Ok(value)
    }
    fn add(&mut self, _: Badge, a: u32, b: u32) -> Result<u64, RpcError> {
        Ok(u64::from(a) + u64::from(b))
    }
    fn whoami(&mut self, badge: Badge) -> Result<u64, RpcError> {
        Ok(badge)
    }
    fn refuse(&mut self, _: Badge, flag: bool) -> Result<u8, RpcError> {
        if flag {
            Err(RpcError::Refused(7))
        } else {
            Ok(1)
        }
    }
}

#[test]
fn well_formed_requests_are_served() {
    let s = &mut Server;
    assert_eq!(calc_dispatch(s, 0, &Msg::new(1, &[42])), Msg::new(0, &[42]));
    assert_eq!(
        calc_dispatch(s, 0, &Msg::new(2, &[u64::from(u32::MAX), 1])),
        Msg::new(0, &[1 << 32])
    );
    assert_eq!(
        calc_dispatch(s, 0xb1, &Msg::new(3, &[])),
        Msg::new(0, &[0xb1])
    );
    assert_eq!(
        calc_dispatch(s, 0xb2, &Msg::new(3, &[])),
        Msg::new(0, &[0xb2])
    );
    let refused = calc_dispatch(s, 0, &Msg::new(4, &[1]));
    assert_eq!(RpcError::from_label(refused.label), RpcError::Refused(7));
}

#[test]
fn malformed_requests_get_error_replies() {
    let s = &mut Server;
    let bad = |m: Msg| RpcError::from_label(calc_dispatch(&mut Server, 0, &m).label);
    assert_eq!(bad(Msg::new(99, &[])), RpcError::UnknownMethod);
    assert_eq!(bad(Msg::new(1, &[])), RpcError::BadMessage, "too few words");
    assert_eq!(
        bad(Msg::new(1, &[1, 2])),
        RpcError::BadMessage,
        "too many words"
    );
    assert_eq!(
        bad(Msg::new(2, &[1 << 40, 1])),
        RpcError::BadMessage,
        "u32 out of range"
    );
    assert_eq!(bad(Msg::new(4, &[2])), RpcError::BadMessage, "not a bool");
    let _ = s;
}
