//! System test `linux_shmfile`: writable `MAP_SHARED` file mappings of an
//! unmodified static Linux program, which ends the system when it exits.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_shmfile", ["posix"]);
