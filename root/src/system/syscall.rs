//! x86_64 register surgery: makes a component's thread return from the
//! `syscall` it stands at with an error, after checking it really stands at
//! one in its own (read-only) text.

use kaal_loader::Perm;
use kaal_sel4::cap::UserContext;
use kaal_sel4::ipc::MessageInfo;
use kaal_sel4::Word;

use super::spawn::Running;
use crate::{Context, RootError};

/// Bytes of the x86_64 `syscall` instruction (0f 05).
const SYSCALL_BYTES: Word = 2;

impl Running {
    /// Makes the component's thread return from the system call it stands
    /// at with an error (`label` in the message-info register), if `is_it`
    /// holds for its registers and it really stands at a `syscall` of its
    /// program. Returns whether it did.
    pub(super) fn fail_syscall(
        &self,
        elf: &[u8],
        is_it: impl Fn(&UserContext) -> bool,
        label: Word,
        resume: bool,
    ) -> Result<bool, RootError> {
        let mut regs = self
            .tcb
            .read_registers(false)
            .context("TCB_ReadRegisters")?;
        if !is_it(&regs) || !self.at_syscall(elf, regs.rip) {
            return Ok(false);
        }
        let Some(next) = regs.rip.checked_add(SYSCALL_BYTES) else {
            return Ok(false);
        };
        regs.rip = next;
        regs.rsi = MessageInfo::new(label, 0).raw().words[0];
        // SAFETY: the thread is another component's, in its own address
        // space; it goes on just past its own system call with an error
        // result, which its code handles like any error of that call.
        unsafe { self.tcb.write_registers(resume, &regs) }.context("TCB_WriteRegisters")?;
        Ok(true)
    }

    /// Whether `rip` is at a `syscall` instruction in the program's text
    /// (which the component cannot change: it is mapped read-only).
    fn at_syscall(&self, elf: &[u8], rip: Word) -> bool {
        self.plan.segments().iter().any(|seg| {
            let Some(off) = rip.checked_sub(seg.vaddr) else {
                return false;
            };
            let Some(at) = usize::try_from(off)
                .ok()
                .and_then(|o| seg.file.start.checked_add(o))
            else {
                return false;
            };
            seg.perm == Perm::ReadExecute
                && at.checked_add(2).is_some_and(|end| end <= seg.file.end)
                && elf.get(at..at + 2) == Some(&[0x0f, 0x05][..])
        })
    }
}
