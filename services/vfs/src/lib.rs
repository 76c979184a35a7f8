//! The virtual file system: one name space over several file systems (the
//! ext2 disk at `/`, an in-memory file system at `/tmp`), path resolution
//! across their mount points, per-client descriptor tables, and the server
//! side of the file protocol (`kaal_protocols::file`).
//!
//! Layers, each one module: [`FileSystem`] is what a file system offers
//! (inodes, never paths; implemented for `ext2::Ext2` and [`RamFs`]);
//! [`Vfs`] resolves paths and owns the mount table; [`Files`] keeps each
//! client's descriptors; [`Service`] answers the protocol's requests,
//! moving data between files and each client's lent region through a
//! bounce buffer ([`Regions`]).
//!
//! Nothing a client or a disk says is trusted: a hostile request or a
//! damaged image is an error, never a panic.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod files;
mod fs;
mod path;
mod ramfs;
mod service;
mod vfs;

pub use files::{Files, OpenFile, Sink, Source, MAX_OPEN};
pub use fs::{FileSystem, Ino};
pub use path::{COMPONENT_MAX, SYMLINK_LIMIT};
pub use ramfs::{RamFs, ENTRY_COST, NODE_COST};
pub use service::{Regions, Service, BOUNCE_BYTES};
pub use vfs::{Node, Vfs};
