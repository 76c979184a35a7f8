//! System test `fs_write_persist`: builds a tree (files, directories, renames, unlinks, a symlink, a hard link, a truncation) and syncs; the harness checks the image with e2fsck and debugfs.
#![no_std]
#![no_main]

kaal_systest::system_test!("fs_write_persist", ["writer"]);
