//! System test `linux_unix_sockets`: AF_UNIX stream sockets between the
//! processes of an unmodified static Linux program, which ends the system
//! when it exits.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_unix_sockets", ["posix"]);
