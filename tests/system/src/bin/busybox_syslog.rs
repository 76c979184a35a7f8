//! System test `busybox_syslog`: busybox `syslogd` on `/dev/log` (a named
//! AF_UNIX datagram socket) logs what `logger` sends to a file.
#![no_std]
#![no_main]

kaal_systest::system_test!("busybox_syslog", ["posix"]);
