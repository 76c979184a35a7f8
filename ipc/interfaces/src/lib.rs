//! The IPC interfaces of KaaL's services, each declared once: client stubs
//! and server dispatch both come from the declaration here.
#![no_std]
#![forbid(unsafe_code)]

/// The echo service: the reference interface of the self-checks, system
/// tests and benchmarks.
pub mod echo {
    use kaal_rpc::{Badge, Buf};

    /// The most bytes `reverse` takes and returns.
    pub const REVERSE_MAX: usize = 256;

    kaal_rpc::wire_error! {
        /// Why the echo service refused a request.
        pub enum EchoError {
            /// Nothing to reverse.
            Empty = 1,
            /// More than [`REVERSE_MAX`] bytes.
            TooLong = 2,
        }
    }

    kaal_rpc::interface! {
        /// Echoes values back transformed, reverses byte strings, and tells
        /// a client its badge.
        pub interface Echo, EchoClient, echo_dispatch {
            1 => fn echo(value: u64) -> u64;
            2 => fn whoami() -> u64;
            /// The bytes in reverse order; they travel in the IPC buffer.
            3 => fn reverse(data: &[u8]) -> Result<Buf<REVERSE_MAX>, EchoError>;
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
        fn reverse(&mut self, _: Badge, data: &[u8]) -> Result<Buf<REVERSE_MAX>, EchoError> {
            if data.is_empty() {
                return Err(EchoError::Empty);
            }
            let mut out = Buf::from_slice(data).ok_or(EchoError::TooLong)?;
            out.reverse();
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::echo::*;
    use kaal_rpc::{LocalBuffer, Msg, RpcError};
    use std::{vec, vec::Vec};

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

    #[test]
    fn reverse_and_its_errors() {
        let ab = u64::from_le_bytes(*b"ab\0\0\0\0\0\0");
        let ba = u64::from_le_bytes(*b"ba\0\0\0\0\0\0");
        let buf = LocalBuffer::default();
        let r = echo_dispatch(
            &mut EchoService,
            7,
            &Msg::new(3, &[2, ab], &buf).unwrap(),
            &buf,
        );
        assert_eq!(
            (r.label, r.words(&buf).collect::<Vec<_>>()),
            (0, vec![2, ba])
        );
        // Typed errors on the wire: the application bit and the code.
        assert_eq!(call(3, &[0]).0, 0x1_0000 | 1, "Empty");
        let mut words = vec![257];
        words.resize(1 + 257usize.div_ceil(8), 0);
        assert_eq!(call(3, &words).0, 0x1_0000 | 2, "TooLong");
    }
}
