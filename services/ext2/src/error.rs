//! The errors of the file system.

use core::fmt;

use crate::device::IoError;

/// Why an operation failed. A damaged image gives `Corrupt`, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The image contradicts itself: what was wrong, and the offending number.
    Corrupt(&'static str, u64),
    /// The image uses a feature this crate does not implement.
    Unsupported { feature: &'static str },
    /// The file system is mounted read-only (or the operation would write).
    ReadOnly,
    /// No such file or directory.
    NotFound,
    /// A path component (or the operand) is not a directory.
    NotADirectory,
    /// The operand is a directory where a file was wanted.
    IsADirectory,
    /// The operand is not a symbolic link.
    NotASymlink,
    /// A name is longer than 255 bytes, or a path longer than the limit.
    NameTooLong,
    /// More than [`crate::SYMLINK_LIMIT`] symbolic links in one resolution.
    SymlinkLoop,
    /// An argument is out of range (an empty name, an offset past the limit).
    Invalid,
    /// No free block or inode is left.
    NoSpace,
    /// The inode has the most links ext2 allows.
    TooManyLinks,
    /// The directory still has entries.
    NotEmpty,
    /// The name exists already.
    Exists,
    /// The device failed.
    Io(IoError),
}

impl From<IoError> for Error {
    fn from(err: IoError) -> Self {
        Self::Io(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupt(what, value) => write!(f, "corrupt file system: {what} ({value})"),
            Self::Unsupported { feature } => write!(f, "unsupported ext2 feature: {feature}"),
            Self::ReadOnly => f.write_str("file system is read-only"),
            Self::NotFound => f.write_str("no such file or directory"),
            Self::NotADirectory => f.write_str("not a directory"),
            Self::IsADirectory => f.write_str("is a directory"),
            Self::NotASymlink => f.write_str("not a symbolic link"),
            Self::NameTooLong => f.write_str("name too long"),
            Self::SymlinkLoop => f.write_str("too many levels of symbolic links"),
            Self::Invalid => f.write_str("invalid argument"),
            Self::NoSpace => f.write_str("no space left on the file system"),
            Self::TooManyLinks => f.write_str("too many links"),
            Self::NotEmpty => f.write_str("directory not empty"),
            Self::Exists => f.write_str("file exists"),
            Self::Io(IoError::OutOfBounds) => {
                f.write_str("I/O error: access past the device's end")
            }
            Self::Io(IoError::Device) => f.write_str("I/O error: device failure"),
            Self::Io(IoError::WouldBlock) => f.write_str("I/O not complete yet"),
        }
    }
}

/// The crate's result type.
pub type Result<T> = core::result::Result<T, Error>;
