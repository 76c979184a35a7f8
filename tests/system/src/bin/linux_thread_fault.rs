//! System test `linux_thread_fault`: the process server runs an unmodified static Linux
//! program with threads from the disk and ends when it does.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_thread_fault", ["posix"]);
