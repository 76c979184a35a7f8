//! ext2 (revision 1) over a block device: mounting with the features
//! checked, a read path that treats every number on the disk as hostile,
//! and the write path (create, write, truncate, mkdir, rmdir, unlink,
//! rename, link, symlink) that keeps the image valid for `e2fsck`.
//!
//! The superblock sits at byte 1024; the group descriptors follow in the
//! next block; each group has a block bitmap, an inode bitmap and an inode
//! table. An inode maps a file's blocks through 12 direct pointers and a
//! single, double and triple indirect block. A directory is a file of
//! variable-length entries (`inode`, `rec_len`, `name_len`, `file_type`,
//! name) that never cross a block.
//!
//! Damage gives [`Error::Corrupt`] naming what was wrong: block pointers
//! outside the file system, inode numbers 0 or past the count, entries
//! overrunning their block, sizes that do not fit. Path resolution consumes
//! one component per step and follows at most [`SYMLINK_LIMIT`] links, so a
//! damaged directory tree cannot make it loop.
//!
//! Writes go to the device as they are made, in an order that leaves a
//! crash with leaked space at worst: bitmap bits before the pointers to what
//! they allocate, pointers cleared before the bits of what they freed, a
//! new name before the old one is removed. Each write names its
//! [`WriteClass`] (through [`BlockDevice::write_class`]), so that a
//! write-back cache, which reorders writes, can write data before the
//! pointers to it and the bitmaps and summaries last.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod device;
mod dir;
mod error;
mod fs;
mod inode;
mod layout;
mod remove;
mod superblock;
mod write;

pub use device::{BlockDevice, IoError, MemDevice, WriteClass};
pub use dir::{DirEntry, NAME_MAX};
pub use error::{Error, Result};
pub use fs::{Ext2, PATH_MAX, SYMLINK_LIMIT};
pub use inode::{FileType, Stat, ROOT_INODE};
pub use superblock::{compat, incompat, ro_compat, GroupDesc, Superblock};
