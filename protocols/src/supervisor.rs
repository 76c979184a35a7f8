//! The supervisor protocol: what a component tells the root task on its
//! supervisor endpoint (slot 1, which is also its fault endpoint). Labels
//! differ from every fault label the kernel uses (1 to 5), so one receive
//! tells a report from a fault.
//!
//! A console line travels in the message registers: MR0 the byte count,
//! then the bytes packed little-endian, eight to a register. The root task
//! trusts nothing in it: a count beyond the registers sent is clamped.

/// `main` returned; MR0 = 0 for `Ok`, 1 for `Err`.
pub const EXIT: u64 = 0x5e00;
/// The component panicked (its message went to the console).
pub const PANIC: u64 = 0x5e01;
/// A line for the system console (see the module's note).
pub const CONSOLE: u64 = 0x5e02;

/// Bytes of text one console message carries.
pub const LINE_BYTES: usize = 512;
const WORD: usize = core::mem::size_of::<u64>();
/// Message registers a console message uses at most (count and text).
pub const LINE_WORDS: usize = 1 + LINE_BYTES.div_ceil(WORD);

/// Packs `text` (at most [`LINE_BYTES`] of it) as a console message:
/// `put(i, word)` sets message register `i`. Returns the registers used.
pub fn encode_line(text: &[u8], mut put: impl FnMut(usize, u64)) -> usize {
    let text = text.get(..LINE_BYTES).unwrap_or(text);
    put(0, text.len() as u64);
    let mut words = 1;
    for chunk in text.chunks(WORD) {
        let mut w = [0u8; WORD];
        if let Some(dst) = w.get_mut(..chunk.len()) {
            dst.copy_from_slice(chunk);
        }
        put(words, u64::from_le_bytes(w));
        words += 1;
    }
    words
}

/// Unpacks a console message of `length` registers (`get(i)` reads register
/// `i`) into `out`; returns the text. A count larger than the registers
/// sent, or than `out`, is clamped.
pub fn decode_line(length: usize, get: impl Fn(usize) -> u64, out: &mut [u8]) -> &[u8] {
    let words = length.clamp(1, LINE_WORDS) - 1;
    let claimed = usize::try_from(get(0)).unwrap_or(usize::MAX);
    let n = claimed.min(words * WORD).min(out.len());
    for (i, dst) in out.chunks_mut(WORD).take(words).enumerate() {
        let bytes = get(1 + i).to_le_bytes();
        for (d, s) in dst.iter_mut().zip(bytes) {
            *d = s;
        }
    }
    out.get(..n).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{vec, vec::Vec};

    fn roundtrip(text: &[u8]) -> Vec<u8> {
        let mut regs = vec![0u64; LINE_WORDS + 4];
        let n = encode_line(text, |i, w| regs[i] = w);
        let mut out = [0u8; LINE_BYTES];
        decode_line(n, |i| regs.get(i).copied().unwrap_or(0), &mut out).to_vec()
    }

    #[test]
    fn lines_survive_the_registers() {
        assert_eq!(roundtrip(b"hello\n"), b"hello\n");
        assert_eq!(roundtrip(b""), b"");
        let long = [b'x'; 700];
        assert_eq!(roundtrip(&long).len(), LINE_BYTES, "cut at LINE_BYTES");
    }

    #[test]
    fn a_lying_count_is_clamped_to_the_registers_sent() {
        let regs = [u64::MAX, u64::from_le_bytes(*b"abcdefgh")];
        let mut out = [0u8; 64];
        let text = decode_line(2, |i| regs.get(i).copied().unwrap_or(0), &mut out);
        assert_eq!(text, b"abcdefgh");
        let text = decode_line(usize::MAX, |_| u64::MAX, &mut out);
        assert_eq!(text.len(), 64, "clamped to the buffer");
    }
}
