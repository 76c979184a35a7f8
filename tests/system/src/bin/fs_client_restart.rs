//! System test `fs_client_restart`: a client holding every descriptor the
//! VFS allows is killed (when `watcher` has seen it ready) and restarted;
//! beginning again, it has them all back.
#![no_std]
#![no_main]

kaal_systest::system_test!(
    "fs_client_restart",
    when_exits = "watcher",
    kill = "holder",
    then_expect_clean_exits = ["holder"]
);
