//! The IPC interfaces of KaaL's services, each declared once: client stubs
//! and server dispatch both come from the declaration here.
#![no_std]
#![forbid(unsafe_code)]

/// The echo service: the reference interface of the self-checks, system
/// tests and benchmarks.
pub mod echo {
    kaal_rpc::interface! {
        /// Echoes values back transformed, and tells a client its badge.
        pub interface Echo, EchoClient, echo_dispatch {
            1 => fn echo(value: u64) -> u64;
            2 => fn whoami() -> u64;
        }
    }

    /// The transformation the echo service applies to each value.
    pub const fn transform(v: u64) -> u64 {
        v.wrapping_mul(3).wrapping_add(1)
    }

    /// The echo service itself.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct EchoService;

    impl Echo for EchoService {
        fn echo(&mut self, _: kaal_rpc::Badge, value: u64) -> Result<u64, kaal_rpc::RpcError> {
            Ok(transform(value))
        }
        fn whoami(&mut self, badge: kaal_rpc::Badge) -> Result<u64, kaal_rpc::RpcError> {
            Ok(badge)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::echo::*;
    use kaal_rpc::Msg;

    #[test]
    fn echo_dispatch_answers_and_refuses() {
        let mut s = EchoService;
        let r = echo_dispatch(&mut s, 7, &Msg::new(1, &[5]));
        assert_eq!((r.label, r.words()), (0, &[16][..]));
        let r = echo_dispatch(&mut s, 7, &Msg::new(2, &[]));
        assert_eq!(r.words(), &[7]);
        let r = echo_dispatch(&mut s, 7, &Msg::new(1, &[]));
        assert_ne!(r.label, 0, "a request without its argument is refused");
    }
}
