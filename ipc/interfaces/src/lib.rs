//! The IPC interfaces of KaaL's services, each declared once: client stubs
//! and server dispatch both come from the declaration here.
#![no_std]
#![forbid(unsafe_code)]

/// The echo service: the reference interface of the self-checks, system
/// tests and benchmarks.
pub mod echo {
    use kaal_rpc::Badge;

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
        fn echo(&mut self, _: Badge, value: u64) -> u64 {
            transform(value)
        }
        fn whoami(&mut self, badge: Badge) -> u64 {
            badge
        }
    }
}

#[cfg(test)]
mod tests {
    use super::echo::*;
    use kaal_rpc::{LocalBuffer, Msg, RpcError};

    fn call(label: u64, words: &[u64]) -> (u64, u64) {
        let buf = LocalBuffer::default();
        let r = echo_dispatch(
            &mut EchoService,
            7,
            &Msg::new(label, words, &buf).unwrap(),
            &buf,
        );
        (r.label, r.regs[0])
    }

    #[test]
    fn echo_dispatch_answers_and_refuses() {
        assert_eq!(call(1, &[5]), (0, 16));
        assert_eq!(call(2, &[]), (0, 7));
        let (label, _) = call(1, &[]);
        assert_eq!(
            RpcError::from_label(label),
            RpcError::BadMessage,
            "a request without its argument is refused"
        );
    }
}
