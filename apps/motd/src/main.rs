//! Prints the message of the day: `/etc/motd`, read through the VFS (the
//! file protocol's channel, local name `fs`), one console line per line of
//! the file.
#![no_std]
#![no_main]

use kaal_client::file::{flags, FileError, Files};
use kaal_rt::{println, Env};

/// The most of the file shown.
const SHOWN: usize = 1024;

fn main(env: &Env) -> Result<(), FileError> {
    let fs = Files::new(env, "fs")?;
    let fd = fs.open("/etc/motd", flags::READ_ONLY, 0)?;
    let mut text = [0u8; SHOWN];
    let n = fs.read(fd, &mut text)?;
    fs.close(fd)?;
    let text = text.get(..n).unwrap_or(&[]);
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        println!(
            "{}: {}",
            env.name(),
            core::str::from_utf8(line).unwrap_or("(not UTF-8)")
        );
    }
    Ok(())
}

kaal_rt::component!(main);
