//! A Linux thread's registers as seL4's UnknownSyscall fault message gives
//! them (x86_64, seL4 5.0.0) and as the reply must give them back.

/// Registers of the fault message, in its order.
pub const FAULT_WORDS: usize = 18;

/// The registers a Linux system call reads and writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
}

impl Regs {
    /// From the fault message's registers (RAX, RBX, RCX, RDX, RSI, RDI,
    /// RBP, R8-R15, FaultIP, SP, FLAGS).
    pub fn from_fault(w: [u64; FAULT_WORDS]) -> Regs {
        let [rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15, rip, rsp, rflags] =
            w;
        Regs {
            rax,
            rbx,
            rcx,
            rdx,
            rsi,
            rdi,
            rbp,
            r8,
            r9,
            r10,
            r11,
            r12,
            r13,
            r14,
            r15,
            rip,
            rsp,
            rflags,
        }
    }

    /// The reply's words, in the fault message's order.
    pub fn to_fault(&self) -> [u64; FAULT_WORDS] {
        [
            self.rax,
            self.rbx,
            self.rcx,
            self.rdx,
            self.rsi,
            self.rdi,
            self.rbp,
            self.r8,
            self.r9,
            self.r10,
            self.r11,
            self.r12,
            self.r13,
            self.r14,
            self.r15,
            self.rip,
            self.rsp,
            self.rflags,
        ]
    }

    /// The system call number and its six arguments (Linux: rax; rdi,
    /// rsi, rdx, r10, r8, r9).
    pub fn syscall(&self) -> (u64, [u64; 6]) {
        (
            self.rax,
            [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9],
        )
    }

    /// Completes a system call: its result in rax, and on past the
    /// two-byte instruction (`int $N` or `syscall`). Linux's `syscall`
    /// leaves the return address in rcx and the flags in r11.
    pub fn finish(&mut self, result: u64) {
        self.rax = result;
        self.rip = self.rip.wrapping_add(2);
        self.rcx = self.rip;
        self.r11 = self.rflags;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_words_round_trip_and_finish_steps_over() {
        let w: [u64; FAULT_WORDS] = core::array::from_fn(|i| i as u64 + 1);
        let mut r = Regs::from_fault(w);
        assert_eq!(r.to_fault(), w);
        assert_eq!(r.syscall(), (1, [6, 5, 4, 10, 8, 9]));
        r.finish(7);
        assert_eq!((r.rax, r.rip, r.rcx, r.r11), (7, 18, 18, 18));
    }
}
