//! Little-endian fields of on-disk structures, read without panicking.

/// The `u16` at `offset` of `bytes`, or 0 when it lies past the end (callers
/// only pass offsets inside structures whose length they checked).
pub(crate) fn le16(bytes: &[u8], offset: usize) -> u16 {
    let mut raw = [0u8; 2];
    if let Some(src) = offset.checked_add(2).and_then(|end| bytes.get(offset..end)) {
        raw.copy_from_slice(src);
    }
    u16::from_le_bytes(raw)
}

/// The `u32` at `offset` of `bytes`, or 0 when it lies past the end.
pub(crate) fn le32(bytes: &[u8], offset: usize) -> u32 {
    let mut raw = [0u8; 4];
    if let Some(src) = offset.checked_add(4).and_then(|end| bytes.get(offset..end)) {
        raw.copy_from_slice(src);
    }
    u32::from_le_bytes(raw)
}
