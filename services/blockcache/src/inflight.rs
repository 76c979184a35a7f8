//! Reads sent to a disk without waiting: which ranges are in flight, which
//! arrived, in a few fixed slots of a transfer region (one transfer each).
//! A file system over a disk that does not wait fails a read that is not
//! here yet (`IoError::WouldBlock`) and asks again once it arrived.

/// What one slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Free,
    InFlight {
        tag: u64,
        sector: u64,
        sectors: u64,
    },
    Arrived {
        sector: u64,
        sectors: u64,
        seq: u64,
    },
    /// The disk refused it: the next read of that range fails.
    Failed {
        sector: u64,
        sectors: u64,
    },
}

/// A read that an arrived transfer covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Covered {
    /// Its bytes are in slot `slot`, `skip` sectors from the slot's start.
    Here { slot: usize, skip: u64 },
    /// The disk refused the transfer.
    Failed,
}

/// `N` slots of reads in flight or arrived.
#[derive(Debug)]
pub struct Reads<const N: usize> {
    slots: [Slot; N],
    seq: u64,
    dropped: bool,
}

impl<const N: usize> Default for Reads<N> {
    fn default() -> Self {
        Reads {
            slots: [Slot::Free; N],
            seq: 0,
            dropped: false,
        }
    }
}

/// Whether `inner` lies within `outer` (sector ranges; no overflow).
fn within(outer: (u64, u64), inner: (u64, u64)) -> bool {
    outer.0 <= inner.0 && inner.0.saturating_add(inner.1) <= outer.0.saturating_add(outer.1)
}

impl<const N: usize> Reads<N> {
    /// Whether any read is in flight.
    pub fn any_in_flight(&self) -> bool {
        self.slots
            .iter()
            .any(|s| matches!(s, Slot::InFlight { .. }))
    }

    /// Whether a read in flight will bring `sectors` from `sector`.
    pub fn in_flight(&self, sector: u64, sectors: u64) -> bool {
        self.slots.iter().any(|s| match *s {
            Slot::InFlight {
                sector: at,
                sectors: n,
                ..
            } => within((at, n), (sector, sectors)),
            _ => false,
        })
    }

    /// A slot for a new transfer: a free one, else a failed one (whose
    /// reader may never ask again: it was dropped, or asks for another
    /// range now; if it asks again, the disk is asked again), else the
    /// oldest arrived one, whose bytes are then dropped unread
    /// ([`Reads::take_dropped`]); `None` while every slot is in flight.
    pub fn claim(&mut self) -> Option<usize> {
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| matches!(s, Slot::Free | Slot::Failed { .. }))
        {
            self.free(i);
            return Some(i);
        }
        let (i, _) = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Arrived { seq, .. } => Some((i, *seq)),
                _ => None,
            })
            .min_by_key(|(_, seq)| *seq)?;
        self.dropped = true;
        self.free(i);
        Some(i)
    }

    /// Frees slot `i` (its bytes are overwritten next).
    pub fn free(&mut self, i: usize) {
        if let Some(s) = self.slots.get_mut(i) {
            *s = Slot::Free;
        }
    }

    /// Records that slot `i` (from [`Reads::claim`]) now awaits the read
    /// tagged `tag`.
    pub fn sent(&mut self, i: usize, tag: u64, sector: u64, sectors: u64) {
        if let Some(s) = self.slots.get_mut(i) {
            *s = Slot::InFlight {
                tag,
                sector,
                sectors,
            };
        }
    }

    /// Records the disk's response to the read tagged `tag`; a tag of no
    /// read in flight is ignored (the disk's word is not trusted).
    pub fn arrived(&mut self, tag: u64, ok: bool) {
        self.seq += 1;
        let seq = self.seq;
        for s in &mut self.slots {
            if let Slot::InFlight {
                tag: t,
                sector,
                sectors,
            } = *s
            {
                if t == tag {
                    *s = if ok {
                        Slot::Arrived {
                            sector,
                            sectors,
                            seq,
                        }
                    } else {
                        Slot::Failed { sector, sectors }
                    };
                }
            }
        }
    }

    /// Where an arrived read holds `sectors` from `sector`; the slot is
    /// freed (each arrival serves one read).
    pub fn take(&mut self, sector: u64, sectors: u64) -> Option<Covered> {
        for (i, s) in self.slots.iter_mut().enumerate() {
            let (at, n, failed) = match *s {
                Slot::Arrived {
                    sector, sectors, ..
                } => (sector, sectors, false),
                Slot::Failed { sector, sectors } => (sector, sectors, true),
                _ => continue,
            };
            if !within((at, n), (sector, sectors)) {
                continue;
            }
            *s = Slot::Free;
            return Some(if failed {
                Covered::Failed
            } else {
                Covered::Here {
                    slot: i,
                    skip: sector - at,
                }
            });
        }
        None
    }

    /// Whether arrived bytes were dropped unread since the last call: the
    /// reads waiting for them must ask again.
    pub fn take_dropped(&mut self) -> bool {
        core::mem::take(&mut self.dropped)
    }
}
