//! System test `busybox_job_stop`: Ctrl-Z stops the foreground job of a
//! busybox login shell and `fg` continues it; SIGSTOP and SIGCONT from
//! `kill`; a background job reading the tty is stopped by SIGTTIN.
#![no_std]
#![no_main]

kaal_systest::system_test!("busybox_job_stop", ["posix"]);
