//! hello_rust: a Rust `std` program for Linux (x86_64-unknown-linux-musl,
//! static-pie) that KaaL's POSIX layer runs unmodified. It touches what
//! `std` needs from the kernel: arguments, files, the heap, the clock,
//! sleeping and unwinding.
//!
//! Usage: `hello_rust [PATH [ARG...]]`; PATH (default /tmp/hello_rust.txt)
//! is written and read back. Prints `hello_rust: ok` and exits 0, else
//! prints what went wrong and exits 1.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use std::{env, fs, panic, process, thread};

fn main() {
    match run() {
        Ok(()) => println!("hello_rust: ok"),
        Err(why) => {
            println!("hello_rust: FAILED: {why}");
            process::exit(1);
        }
    }
}

fn run() -> Result<(), String> {
    for (i, arg) in env::args().enumerate() {
        println!("argv[{i}]={arg}");
    }

    let path = env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/hello_rust.txt".to_owned());
    let text = "hello_rust wrote this line\n";
    fs::write(&path, text).map_err(|e| format!("writing {path}: {e}"))?;
    let back = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    if back != text {
        return Err(format!("{path} read back as {back:?}"));
    }
    println!("hello_rust: file round trip ok");

    let mut counts: HashMap<&str, usize> = HashMap::new();
    for word in "the cat saw the dog and the bird".split_whitespace() {
        *counts.entry(word).or_default() += 1;
    }
    if counts.len() != 6 || counts.get("the") != Some(&3) {
        return Err(format!("the word counts are wrong: {counts:?}"));
    }
    println!("hello_rust: map ok ({} words)", counts.len());

    let start = Instant::now();
    thread::sleep(Duration::from_millis(10));
    let slept = start.elapsed();
    if slept < Duration::from_millis(10) {
        return Err(format!("slept 10 ms but the clock says {slept:?}"));
    }
    println!("hello_rust: slept {} us", slept.as_micros());

    // The default hook would print "panicked at" on stderr; this panic is
    // expected, so say so instead.
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let caught = panic::catch_unwind(|| panic!("on purpose"));
    panic::set_hook(hook);
    match caught {
        Err(payload) if payload.downcast_ref::<&str>() == Some(&"on purpose") => {
            println!("hello_rust: panic caught");
        }
        Err(_) => return Err("a panic with another payload was caught".to_owned()),
        Ok(()) => return Err("the panic did not unwind".to_owned()),
    }
    Ok(())
}
