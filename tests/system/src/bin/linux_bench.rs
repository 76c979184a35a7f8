//! The Linux benchmark image (system test `peer_linux_smoke`, and `cargo
//! xtask bench` under -icount): the process server runs `/bin/bench`
//! (tests/linux/bench.c), whose `KAAL-BENCH` lines reach the serial log.
#![no_std]
#![no_main]

kaal_systest::system_test!("linux_bench", ["posix"]);
