//! Fault messages: what the kernel sends a thread's fault endpoint when the
//! thread faults, decoded from the message label and registers.

use crate::sys;
use crate::Word;
use core::fmt;

/// Fault labels of seL4 5.0 on x86_64 (the kernel's `seL4_FaultType`).
pub mod label {
    use crate::Word;
    pub const CAP_FAULT: Word = 1;
    pub const UNKNOWN_SYSCALL: Word = 2;
    pub const USER_EXCEPTION: Word = 3;
    pub const VM_FAULT: Word = 5;
}

/// A decoded fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A capability lookup failed: `cptr` names nothing the thread holds.
    Cap {
        ip: Word,
        cptr: Word,
        receiving: bool,
    },
    /// A system call number the kernel does not know.
    UnknownSyscall { ip: Word, sp: Word, number: Word },
    /// A CPU exception such as an invalid opcode (`number` is the vector).
    UserException {
        ip: Word,
        sp: Word,
        number: Word,
        code: Word,
    },
    /// A page fault at `addr`.
    Vm {
        ip: Word,
        addr: Word,
        instruction: bool,
        fsr: Word,
    },
}

impl Fault {
    /// Decodes a fault message of `length` registers; `None` for a label
    /// that is not a fault or a message too short for its label. `mr(i)`
    /// reads message register `i`.
    pub fn decode(label: Word, length: usize, mr: impl Fn(usize) -> Word) -> Option<Fault> {
        if length < Fault::length(label) || Fault::length(label) == 0 {
            return None;
        }
        let r = |i: Word| mr(i as usize);
        Some(match label {
            label::CAP_FAULT => Fault::Cap {
                ip: r(0),
                cptr: r(1),
                receiving: r(2) != 0,
            },
            label::UNKNOWN_SYSCALL => Fault::UnknownSyscall {
                ip: r(sys::seL4_UnknownSyscall_FaultIP),
                sp: r(sys::seL4_UnknownSyscall_SP),
                number: r(sys::seL4_UnknownSyscall_Syscall),
            },
            label::USER_EXCEPTION => Fault::UserException {
                ip: r(sys::seL4_UserException_FaultIP),
                sp: r(sys::seL4_UserException_SP),
                number: r(sys::seL4_UserException_Number),
                code: r(sys::seL4_UserException_Code),
            },
            label::VM_FAULT => Fault::Vm {
                ip: r(sys::seL4_VMFault_IP),
                addr: r(sys::seL4_VMFault_Addr),
                instruction: r(sys::seL4_VMFault_PrefetchFault) != 0,
                fsr: r(sys::seL4_VMFault_FSR),
            },
            _ => return None,
        })
    }

    /// Message registers the kernel sends at least with a fault of this
    /// label (a capability fault adds the lookup failure's details).
    pub fn length(label: Word) -> usize {
        match label {
            label::CAP_FAULT => 4,
            label::UNKNOWN_SYSCALL => sys::seL4_UnknownSyscall_Length as usize,
            label::USER_EXCEPTION => sys::seL4_UserException_Length as usize,
            label::VM_FAULT => sys::seL4_VMFault_Length as usize,
            _ => 0,
        }
    }

    /// The instruction that faulted.
    pub fn ip(&self) -> Word {
        match *self {
            Fault::Cap { ip, .. }
            | Fault::UnknownSyscall { ip, .. }
            | Fault::UserException { ip, .. }
            | Fault::Vm { ip, .. } => ip,
        }
    }

    /// The address the fault concerns: the data or instruction address of a
    /// page fault, the CPtr of a capability fault, else the instruction.
    pub fn address(&self) -> Word {
        match *self {
            Fault::Vm { addr, .. } => addr,
            Fault::Cap { cptr, .. } => cptr,
            _ => self.ip(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fault::Cap { ip, cptr, .. } => write!(
                f,
                "invoked capability {cptr:#x}, which it does not hold (ip {ip:#x})"
            ),
            // seL4's system call numbers are negative: shown as such.
            Fault::UnknownSyscall { ip, number, .. } => {
                write!(f, "unknown system call {} (ip {ip:#x})", number as i64)
            }
            Fault::UserException { ip, number: 6, .. } => {
                write!(f, "illegal instruction at {ip:#x}")
            }
            Fault::UserException {
                ip, number, code, ..
            } => {
                write!(f, "CPU exception {number} (code {code:#x}) at {ip:#x}")
            }
            Fault::Vm {
                ip,
                addr,
                instruction,
                ..
            } => write!(
                f,
                "page fault {} address {addr:#x} (ip {ip:#x})",
                if instruction { "fetching from" } else { "at" }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_fault_decodes_with_its_address() {
        let mrs = [0x401000, 0x0, 0, 6];
        let f = Fault::decode(label::VM_FAULT, 4, |i| mrs.get(i).copied().unwrap_or(0));
        assert_eq!(
            f,
            Some(Fault::Vm {
                ip: 0x401000,
                addr: 0,
                instruction: false,
                fsr: 6
            })
        );
        let f = f.unwrap_or(Fault::Cap {
            ip: 0,
            cptr: 0,
            receiving: false,
        });
        assert_eq!(f.address(), 0);
        assert_eq!(f.to_string(), "page fault at address 0x0 (ip 0x401000)");
    }

    #[test]
    fn other_labels_are_not_faults() {
        assert_eq!(Fault::decode(0, 4, |_| 0), None);
        assert_eq!(Fault::decode(0x100, 4, |_| 0), None);
        assert_eq!(Fault::decode(label::VM_FAULT, 3, |_| 0), None, "too short");
    }

    #[test]
    fn unknown_syscall_shows_its_number_signed() {
        let mut mrs = vec![0; sys::seL4_UnknownSyscall_Length as usize];
        let at = |i: Word| i as usize;
        mrs[at(sys::seL4_UnknownSyscall_FaultIP)] = 0x40_1234;
        mrs[at(sys::seL4_UnknownSyscall_Syscall)] = -10i64 as Word;
        let f = Fault::decode(label::UNKNOWN_SYSCALL, mrs.len(), |i| {
            mrs.get(i).copied().unwrap_or(0)
        });
        assert!(
            matches!(f, Some(Fault::UnknownSyscall { number, .. }) if number as i64 == -10),
            "{f:?}"
        );
        assert_eq!(
            f.map(|f| f.to_string()).as_deref(),
            Some("unknown system call -10 (ip 0x401234)")
        );
    }

    #[test]
    fn illegal_instruction_is_named() {
        let f = Fault::decode(label::USER_EXCEPTION, 5, |i| {
            [0x40_2000, 0x3000, 0x202, 6, 0][i]
        });
        assert_eq!(
            f.map(|f| f.to_string()).as_deref(),
            Some("illegal instruction at 0x402000")
        );
    }
}
