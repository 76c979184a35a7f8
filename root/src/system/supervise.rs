//! The supervisor loop: components' reports and faults, the restart policy
//! and its limits, and the callers of a server that stopped.

use alloc::vec::Vec;

use kaal_manifest::{ChannelKind, Restart};
use kaal_sel4::cap::UserContext;
use kaal_sel4::fault::Fault;
use kaal_sel4::ipc::{self, MessageInfo};
use kaal_sel4::{println, Word};

use super::{Event, State, System};
use crate::{Context, RootBroker, RootError};

/// What the caller of [`System::supervise`] wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    Finish,
}

/// Restarts after which a component that keeps failing is stopped instead.
pub const RESTART_LIMIT: u64 = 1000;

/// Capability faults answered with an error, per incarnation, after which
/// the next one is treated as a fault (a component looping on one).
pub const REFUSAL_LIMIT: u64 = 10_000;

impl System<'_> {
    /// After server `i` stopped: every call its clients had in flight to it
    /// (queued, or received and waiting for the reply that will not come)
    /// returns [`kaal_rpc::RpcError::ServerGone`]. A client blocked in that
    /// call is recognised by its registers: the `syscall` it is in is a Call
    /// on its capability to this server's endpoint.
    pub(super) fn release_callers(&mut self, i: usize) -> Result<(), RootError> {
        let Ok(server) = u16::try_from(i) else {
            return Ok(());
        };
        for (c, ch) in self.image.channels.iter().enumerate() {
            if ch.to.component != server || ch.kind != ChannelKind::Endpoint {
                continue;
            }
            for end in &ch.from {
                let client = usize::from(end.component);
                let Some(r) = self.components.get(client).and_then(|s| s.running.as_ref()) else {
                    continue;
                };
                let Some(elf) = self.image.components.get(client).map(|c| c.elf) else {
                    continue;
                };
                let Some(slot) = r
                    .endpoint_slots
                    .iter()
                    .find(|(n, _)| *n == c)
                    .map(|(_, s)| *s)
                else {
                    continue;
                };
                let in_call = |regs: &UserContext| {
                    regs.rdx == kaal_sel4::sys::seL4_SysCall as Word && regs.rdi == slot
                };
                // Resumed at once: it was blocked in its own Call.
                r.fail_syscall(elf, in_call, kaal_rpc::RpcError::ServerGone.label(), true)?;
            }
        }
        Ok(())
    }

    /// Waits for components' reports and faults, applies each component's
    /// restart policy, and tells `on_event` what happened until it says
    /// `Finish` (or no component is left running).
    pub fn supervise(
        &mut self,
        broker: &mut RootBroker,
        mut on_event: impl FnMut(&Self, Event) -> Control,
    ) -> Result<(), RootError> {
        while self.components.iter().any(|s| s.state == State::Running) {
            let (info, badge) = self.supervisor.recv();
            let Some(i) = (badge as usize).checked_sub(1).filter(|i| *i < self.len()) else {
                continue; // not from a component of ours: nothing to answer
            };
            let label = info.label();
            let event = if let Some(fault) = Fault::decode(label, info.length(), ipc::mr) {
                match fault {
                    Fault::Cap {
                        receiving: false, ..
                    } if self.refuse_cap(i, fault)? => Event::CapRefused {
                        component: i,
                        fault,
                    },
                    _ => {
                        // The program and address let the tool name the
                        // function and line from the program's debug info.
                        println!(
                            "KaaL: component `{}` faulted: {fault} [program `{}`, ip {:#x}]",
                            self.name(i),
                            self.program(i),
                            fault.ip()
                        );
                        Event::Faulted {
                            component: i,
                            fault,
                        }
                    }
                }
            } else if label == kaal_protocols::supervisor::EXIT {
                let code = ipc::mr(0);
                println!("KaaL: component `{}` exited ({code})", self.name(i));
                Event::Exited { component: i, code }
            } else if label == kaal_protocols::supervisor::CONSOLE {
                self.print_line(info.length());
                ipc::reply(MessageInfo::new(0, 0));
                continue;
            } else if label == kaal_protocols::supervisor::PANIC {
                println!("KaaL: component `{}` panicked", self.name(i));
                Event::Panicked { component: i }
            } else {
                // Not a request the supervisor knows: answer with an error.
                ipc::reply(MessageInfo::new(
                    kaal_sel4::Error::IllegalOperation.code(),
                    0,
                ));
                continue;
            };
            if let Event::Exited { component, .. }
            | Event::Faulted { component, .. }
            | Event::Panicked { component }
            | Event::Killed { component } = event
            {
                if let Some(s) = self.components.get_mut(component) {
                    s.ended = true;
                }
            }
            if on_event(self, event) == Control::Finish {
                return Ok(());
            }
            match self.apply_policy(broker, event) {
                Ok(Some(next)) => {
                    if on_event(self, next) == Control::Finish {
                        return Ok(());
                    }
                }
                Ok(None) => {}
                // One component's trouble does not end the system's
                // supervision; what could not be freed stays lost.
                Err(e) => println!("KaaL: stopping `{}`: {e}", self.name(i)),
            }
        }
        Ok(())
    }

    /// Supervises until every component in `names` has exited with `Ok`.
    /// Anything else that happens first (a fault, a failed exit, another
    /// component ending) is printed and fails.
    pub fn expect_clean_exits(
        &mut self,
        broker: &mut RootBroker,
        names: &[&str],
    ) -> Result<(), RootError> {
        let mut waiting = Vec::new();
        for n in names {
            waiting.push(self.index(n).ok_or(RootError::Check("no such component"))?);
        }
        let mut bad = false;
        self.supervise(broker, |_, e| {
            match e {
                Event::Exited { component, code: 0 } if waiting.contains(&component) => {
                    waiting.retain(|&w| w != component);
                }
                e => {
                    println!("KaaL: unexpected while waiting for exits: {e:?}");
                    bad = true;
                }
            }
            if bad || waiting.is_empty() {
                Control::Finish
            } else {
                Control::Continue
            }
        })?;
        self.flush_console();
        if bad || !waiting.is_empty() {
            return Err(RootError::Check("the components did not all exit cleanly"));
        }
        Ok(())
    }

    /// After an exit, fault, panic or kill: restart or stop per the
    /// manifest; the `Restarted` or `Stopped` that follows, if any.
    /// [`System::supervise`] does this itself, except for the event its
    /// caller finished on: a caller that goes on with the system after that
    /// applies it here.
    pub fn apply_policy(
        &mut self,
        broker: &mut RootBroker,
        event: Event,
    ) -> Result<Option<Event>, RootError> {
        let (i, failed) = match event {
            Event::Exited { component, code } => (component, code != 0),
            Event::Faulted { component, .. }
            | Event::Panicked { component }
            | Event::Killed { component } => (component, true),
            _ => return Ok(None),
        };
        self.stop(broker, i)?;
        let policy = self
            .image
            .components
            .get(i)
            .map(|c| c.restart)
            .unwrap_or_default();
        let Some(slot) = self.components.get_mut(i) else {
            return Ok(None);
        };
        if let Event::Exited { code, .. } = event {
            if !failed {
                slot.state = State::Exited(code);
                return Ok(None);
            }
        }
        if policy == Restart::Restart && slot.restarts < RESTART_LIMIT {
            slot.restarts += 1;
            let restarts = slot.restarts;
            println!("KaaL: restarting `{}` (restart {restarts})", self.name(i));
            if let Err(e) = self.spawn(broker, i) {
                println!("KaaL: component `{}` not restarted: {e}", self.name(i));
                return Ok(Some(Event::Stopped { component: i }));
            }
            Ok(Some(Event::Restarted {
                component: i,
                restarts,
            }))
        } else {
            slot.state = match event {
                Event::Exited { code, .. } => State::Exited(code),
                _ => State::Stopped,
            };
            println!("KaaL: component `{}` stopped", self.name(i));
            Ok(Some(Event::Stopped { component: i }))
        }
    }

    /// Kills running component `i` as if it had faulted (for tests: a
    /// server dying under its clients): its thread is suspended, then its
    /// restart policy applies as after a fault, so it is stopped (each call
    /// its clients have in flight to it returns `ServerGone`) and restarted
    /// or left stopped. Returns the `Killed` event and what followed it
    /// (`Restarted` or `Stopped`); an error if `i` is not running.
    pub fn kill(
        &mut self,
        broker: &mut RootBroker,
        i: usize,
    ) -> Result<(Event, Option<Event>), RootError> {
        let slot = self
            .components
            .get_mut(i)
            .filter(|s| s.state == State::Running && !s.ended)
            .ok_or(RootError::Check("kill: the component is not running"))?;
        let r = slot
            .running
            .as_ref()
            .ok_or(RootError::Check("kill: the component is not running"))?;
        // Not one more instruction: it must not see itself being killed.
        r.tcb.suspend().context("TCB_Suspend")?;
        slot.ended = true;
        println!("KaaL: component `{}` killed", self.name(i));
        let killed = Event::Killed { component: i };
        let next = self.apply_policy(broker, killed)?;
        Ok((killed, next))
    }

    /// Answers a capability fault with an `InvalidCapability` error: the
    /// component's invocation returns that error and it carries on. (seL4
    /// turns an invocation of a CPtr outside the CSpace into a fault; KaaL
    /// hands it back to the caller as an ordinary error.) Returns `false`
    /// when it must be handled as a fault instead: the thread is not where
    /// the message says (a forged report) or it keeps doing this.
    fn refuse_cap(&mut self, i: usize, fault: Fault) -> Result<bool, RootError> {
        let elf = self.image.components.get(i).map(|c| c.elf).unwrap_or(&[]);
        let Some(slot) = self.components.get_mut(i) else {
            return Ok(false);
        };
        let Some(r) = slot.running.as_ref() else {
            return Ok(false);
        };
        slot.refusals += 1;
        if slot.refusals > REFUSAL_LIMIT {
            return Ok(false);
        }
        let at_fault = |regs: &UserContext| regs.rip == fault.ip();
        let code = kaal_sel4::Error::InvalidCapability.code();
        // Not resumed here: the reply to the fault resumes it.
        if !r.fail_syscall(elf, at_fault, code, false)? {
            return Ok(false);
        }
        ipc::reply(MessageInfo::new(0, 0));
        Ok(true)
    }
}
