//! System test `linux_hostile`: a hostile Linux program gets Linux's
//! answers, and the process server and the machine go on.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_hostile", ["posix"]);
