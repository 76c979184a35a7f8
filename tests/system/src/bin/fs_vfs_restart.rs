//! System test `fs_vfs_restart`: the VFS is killed while `worker` uses it
//! (when `trigger` has seen the worker's synced files) and restarted; the
//! worker finds the synced files intact and goes on.
#![no_std]
#![no_main]

kaal_systest::system_test!(
    "fs_vfs_restart",
    when_exits = "trigger",
    kill = "vfs",
    then_expect_clean_exits = ["worker"]
);
