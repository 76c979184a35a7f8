//! System test `bad_program_refused`: components whose programs are not
//! loadable ELF images are refused with an error naming them, and the rest
//! of the system still starts and runs.
#![no_std]
#![no_main]

use kaal_root::system::{self, State};
use kaal_root::RootError;
use kaal_sel4::bootinfo::BootInfo;
use kaal_sel4::println;

fn main(bi: &BootInfo) -> Result<(), RootError> {
    let mut broker = kaal_root::boot(bi)?;
    let mut sys = system::load(&mut broker, kaal_root::include_system!("bad_program"))?;
    sys.start_all(&mut broker);
    for name in ["not_elf", "truncated"] {
        let i = sys
            .index(name)
            .ok_or(RootError::Check("component missing"))?;
        if sys.state(i) != Some(State::Failed) {
            return Err(RootError::Check("a bad program was started"));
        }
    }
    sys.expect_clean_exits(&mut broker, &["hello"])?;
    println!("bad_program_refused: ok");
    Ok(())
}

kaal_rt::root_task!(main);
