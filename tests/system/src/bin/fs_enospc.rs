//! System test `fs_enospc`: fills a small disk until no space is left; every existing file is intact.
#![no_std]
#![no_main]

kaal_systest::system_test!("fs_enospc", ["filler"]);
