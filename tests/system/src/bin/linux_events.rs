//! System test `linux_events`: eventfd, timerfd and epoll of an unmodified
//! static Linux program, which ends the system when it exits.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_events", ["posix"]);
