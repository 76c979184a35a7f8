//! System test `fs_reboot`: writes a tree and syncs on the first boot, reads it back on the second.
#![no_std]
#![no_main]

kaal_systest::system_test!("fs_reboot", ["reboot"]);
