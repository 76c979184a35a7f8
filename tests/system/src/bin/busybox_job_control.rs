//! System test `busybox_job_control`: Ctrl-C interrupts the foreground job
//! of a busybox login shell; a background job and `wait`.
#![no_std]
#![no_main]

kaal_systest::system_test!("busybox_job_control", ["posix"]);
