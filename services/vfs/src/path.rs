//! Paths as the protocol carries them: checked for length and NUL bytes,
//! and split into components (empty ones, from `a//b`, dropped as POSIX
//! says).

use alloc::vec::Vec;

use kaal_protocols::file::{FsError, PATH_BYTES};

/// Symbolic links followed in one resolution before `SymlinkLoop` (as Linux).
pub const SYMLINK_LIMIT: u32 = 40;
/// The longest name of one component.
pub const COMPONENT_MAX: usize = 255;
/// The longest symbolic link target followed (as ext2 and Linux).
pub(crate) const TARGET_MAX: usize = 4096;

/// Checks a path from a client: not empty, at most [`PATH_BYTES`], no NUL,
/// no component over [`COMPONENT_MAX`].
pub(crate) fn check(path: &[u8]) -> Result<(), FsError> {
    check_at_most(path, PATH_BYTES)
}

/// Like [`check`] with another length limit (a link target read from a
/// file system may be longer than a request's path).
pub(crate) fn check_at_most(path: &[u8], max: usize) -> Result<(), FsError> {
    if path.is_empty() {
        return Err(FsError::NotFound);
    }
    if path.len() > max {
        return Err(FsError::NameTooLong);
    }
    if path.contains(&0) {
        return Err(FsError::Invalid);
    }
    if components(path).any(|c| c.len() > COMPONENT_MAX) {
        return Err(FsError::NameTooLong);
    }
    Ok(())
}

/// The non-empty components of `path`.
pub(crate) fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// Pushes `path`'s components onto `pending` so that the first pops first.
/// A trailing `/` adds a `.`: the last name must then be a directory (a
/// symbolic link there is followed).
pub(crate) fn push_components(pending: &mut Vec<Vec<u8>>, path: &[u8]) {
    if path.last() == Some(&b'/') && components(path).next().is_some() {
        pending.push(b".".to_vec());
    }
    let at = pending.len();
    pending.extend(components(path).map(<[u8]>::to_vec));
    if let Some(added) = pending.get_mut(at..) {
        added.reverse();
    }
}

/// `path` split into the directory part and its last component, and
/// whether a `/` followed that component. `None` for a path of no
/// components (`/`).
pub(crate) fn split_last(path: &[u8]) -> Option<(&[u8], &[u8], bool)> {
    let trimmed_len = path.len() - path.iter().rev().take_while(|&&b| b == b'/').count();
    let trimmed = path.get(..trimmed_len)?;
    if trimmed.is_empty() {
        return None;
    }
    let start = trimmed
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(0, |i| i + 1);
    let dir = trimmed.get(..start)?;
    let name = trimmed.get(start..)?;
    Some((dir, name, trimmed_len < path.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_last_and_components() {
        assert_eq!(split_last(b"/a/b"), Some((&b"/a/"[..], &b"b"[..], false)));
        assert_eq!(split_last(b"a//b//"), Some((&b"a//"[..], &b"b"[..], true)));
        assert_eq!(split_last(b"b"), Some((&b""[..], &b"b"[..], false)));
        assert_eq!(split_last(b"///"), None);
        let mut pending = alloc::vec![b"z".to_vec()];
        push_components(&mut pending, b"/x//y/");
        assert_eq!(pending, [&b"z"[..], b".", b"y", b"x"]);
    }

    #[test]
    fn checks() {
        assert_eq!(check(b""), Err(FsError::NotFound));
        assert_eq!(check(b"/a\0b"), Err(FsError::Invalid));
        assert_eq!(check(&[b'a'; 256]), Err(FsError::NameTooLong));
        assert_eq!(check(&[b'a'; 255]), Ok(()));
        assert_eq!(check(&[b'/'; PATH_BYTES + 1]), Err(FsError::NameTooLong));
    }
}
