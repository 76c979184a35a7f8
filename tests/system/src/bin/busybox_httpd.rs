//! System test `busybox_httpd`: see `tests/system/systems/busybox_httpd.toml`.
#![no_std]
#![no_main]

kaal_systest::system_test!("busybox_httpd", running);
