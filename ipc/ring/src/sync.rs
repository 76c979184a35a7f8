//! The synchronisation primitives the ring is built from: `core`'s atomics normally,
//! loom's under `cfg(loom)`, so that the model checks in `tests/loom.rs` explore every
//! interleaving and memory ordering the protocol allows.
//!
//! [`Slot`] holds one element. Outside loom it is read and written with relaxed atomic
//! loads and stores of the widest unit the element's alignment allows (a `u64` message
//! is one plain `mov` on x86_64), never with non-atomic accesses: a peer that breaks the
//! protocol and writes a slot while it is being read (a hostile producer moving `head`
//! ahead, another in-process handle) then produces a torn but valid `T` (every bit
//! pattern is one: `T: Pod`), never a data race. Under loom the slot is a
//! `loom::cell::UnsafeCell`, which turns every access that the index protocol does not
//! order into a reported race: that is what the model checks look for.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, Ordering};

pub(crate) use imp::Slot;

#[cfg(not(loom))]
mod imp {
    use core::cell::UnsafeCell;
    use core::mem::{align_of, size_of, MaybeUninit};
    #[cfg(target_has_atomic = "64")]
    use core::sync::atomic::AtomicU64;
    use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU8, Ordering};

    use bytemuck::Pod;

    /// One ring slot; same size, alignment and bit layout as `T`.
    #[repr(transparent)]
    pub(crate) struct Slot<T>(UnsafeCell<T>);

    /// Copies `T` as `size_of::<T>() / size_of::<$unit>()` relaxed atomic accesses of
    /// `$atomic`. Callers pick a unit that divides the size and whose atomic alignment the
    /// slot (aligned for `T`) satisfies.
    macro_rules! copy_in_units {
        (load, $atomic:ty, $unit:ty, $slot:expr) => {{
            let src = $slot.0.get().cast::<$unit>();
            let mut out = MaybeUninit::<T>::uninit();
            let dst = out.as_mut_ptr().cast::<$unit>();
            for i in 0..size_of::<T>() / size_of::<$unit>() {
                // SAFETY: `i` stays below the number of units in `T`, so both pointers stay
                // inside the slot and inside `out`; the slot is aligned for `T`, whose
                // alignment is at least the atomic's (checked by `unit_of`); every access
                // to slot memory in this crate is atomic, so this load races with none.
                let word = unsafe { <$atomic>::from_ptr(src.add(i)) }.load(Ordering::Relaxed);
                // SAFETY: in bounds of `out` as above; `out` is aligned for `T`.
                unsafe { dst.add(i).write(word) };
            }
            // SAFETY: every byte of `out` was written above (`T: Pod` has no padding and
            // its size is a multiple of the unit), and every bit pattern is a valid `T`.
            unsafe { out.assume_init() }
        }};
        (store, $atomic:ty, $unit:ty, $slot:expr, $value:expr) => {{
            let dst = $slot.0.get().cast::<$unit>();
            let src = core::ptr::from_ref(&$value).cast::<$unit>();
            for i in 0..size_of::<T>() / size_of::<$unit>() {
                // SAFETY: `i` stays below the number of units in `T`; `$value` is a
                // `T: Pod` (no padding, so every unit is initialised) aligned for `T`.
                let word = unsafe { src.add(i).read() };
                // SAFETY: as for the load: in bounds, aligned, all accesses atomic.
                unsafe { <$atomic>::from_ptr(dst.add(i)) }.store(word, Ordering::Relaxed);
            }
        }};
    }

    /// Copies the units covering bytes `$from..$to` of a `T` (capped at its size)
    /// between the slot and `$other`, with relaxed atomic accesses of `$atomic` on the
    /// slot's side, as `copy_in_units!` does for the whole `T`.
    macro_rules! copy_range {
        (load, $atomic:ty, $unit:ty, $slot:expr, $out:expr, $from:expr, $to:expr) => {{
            let unit = size_of::<$unit>();
            let end = $to.min(size_of::<T>()).div_ceil(unit);
            let src = $slot.0.get().cast::<$unit>();
            let dst = core::ptr::from_mut::<T>($out).cast::<$unit>();
            for i in $from / unit..end {
                // SAFETY: `i < end <= size_of::<T>() / unit` (T's size is a multiple of
                // the unit, see `unit_of`), so both pointers stay inside the slot and
                // inside `*$out`, both aligned for `T`; the slot access is atomic as in
                // `copy_in_units!`, and any bits written into `*$out` (a `T: Pod`) make a
                // valid `T`.
                let word = unsafe { <$atomic>::from_ptr(src.add(i)) }.load(Ordering::Relaxed);
                // SAFETY: as above.
                unsafe { dst.add(i).write(word) };
            }
        }};
        (store, $atomic:ty, $unit:ty, $slot:expr, $value:expr, $from:expr, $to:expr) => {{
            let unit = size_of::<$unit>();
            let end = $to.min(size_of::<T>()).div_ceil(unit);
            let dst = $slot.0.get().cast::<$unit>();
            let src = core::ptr::from_ref::<T>($value).cast::<$unit>();
            for i in $from / unit..end {
                // SAFETY: in bounds and aligned as for the load; `*$value` is a
                // `T: Pod`, every unit of it initialised.
                let word = unsafe { src.add(i).read() };
                // SAFETY: as above; all accesses to slot memory are atomic.
                unsafe { <$atomic>::from_ptr(dst.add(i)) }.store(word, Ordering::Relaxed);
            }
        }};
    }

    /// Width in bytes of the atomic unit used to copy a `T`.
    const fn unit_of<T>() -> usize {
        let (size, align) = (size_of::<T>(), align_of::<T>());
        #[cfg(target_has_atomic = "64")]
        if align >= align_of::<AtomicU64>() && size % 8 == 0 {
            return 8;
        }
        if align >= align_of::<AtomicU32>() && size % 4 == 0 {
            4
        } else if align >= align_of::<AtomicU16>() && size % 2 == 0 {
            2
        } else {
            1
        }
    }

    impl<T: Pod> Slot<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(UnsafeCell::new(value))
        }

        /// Reads the slot (relaxed; ordering comes from the indices).
        #[inline]
        pub(crate) fn load(&self) -> T {
            match unit_of::<T>() {
                #[cfg(target_has_atomic = "64")]
                8 => copy_in_units!(load, AtomicU64, u64, self),
                4 => copy_in_units!(load, AtomicU32, u32, self),
                2 => copy_in_units!(load, AtomicU16, u16, self),
                _ => copy_in_units!(load, AtomicU8, u8, self),
            }
        }

        /// Reads bytes `from..to` of the slot into the same bytes of `out`, in whole
        /// units (`from` rounded down, `to` rounded up, both capped at the size); the
        /// rest of `out` is left as it was.
        #[inline]
        pub(crate) fn load_range(&self, out: &mut T, from: usize, to: usize) {
            match unit_of::<T>() {
                #[cfg(target_has_atomic = "64")]
                8 => copy_range!(load, AtomicU64, u64, self, out, from, to),
                4 => copy_range!(load, AtomicU32, u32, self, out, from, to),
                2 => copy_range!(load, AtomicU16, u16, self, out, from, to),
                _ => copy_range!(load, AtomicU8, u8, self, out, from, to),
            }
        }

        /// Writes the first `bytes` of `value` into the slot, in whole units (rounded
        /// up, capped at the size); the rest of the slot keeps what it held.
        #[inline]
        pub(crate) fn store_prefix(&self, value: &T, bytes: usize) {
            match unit_of::<T>() {
                #[cfg(target_has_atomic = "64")]
                8 => copy_range!(store, AtomicU64, u64, self, value, 0, bytes),
                4 => copy_range!(store, AtomicU32, u32, self, value, 0, bytes),
                2 => copy_range!(store, AtomicU16, u16, self, value, 0, bytes),
                _ => copy_range!(store, AtomicU8, u8, self, value, 0, bytes),
            }
        }

        /// Writes the slot (relaxed; ordering comes from the indices).
        #[inline]
        pub(crate) fn store(&self, value: T) {
            match unit_of::<T>() {
                #[cfg(target_has_atomic = "64")]
                8 => copy_in_units!(store, AtomicU64, u64, self, value),
                4 => copy_in_units!(store, AtomicU32, u32, self, value),
                2 => copy_in_units!(store, AtomicU16, u16, self, value),
                _ => copy_in_units!(store, AtomicU8, u8, self, value),
            }
        }
    }
}

#[cfg(loom)]
mod imp {
    use bytemuck::Pod;

    /// One ring slot, tracked by loom: unordered accesses are reported as races.
    pub(crate) struct Slot<T>(loom::cell::UnsafeCell<T>);

    impl<T: Pod> Slot<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::cell::UnsafeCell::new(value))
        }

        pub(crate) fn load(&self) -> T {
            // SAFETY: loom checks that no write to this slot is concurrent with this read
            // (and fails the model if one is); the pointer is valid for the cell's life.
            self.0.with(|ptr| unsafe { ptr.read() })
        }

        pub(crate) fn store(&self, value: T) {
            // SAFETY: as for `load`, with loom checking exclusive access.
            self.0.with_mut(|ptr| unsafe { ptr.write(value) });
        }

        /// The whole slot under loom: the model checks the ordering, not the bytes.
        pub(crate) fn load_range(&self, out: &mut T, _from: usize, _to: usize) {
            *out = self.load();
        }

        /// The whole slot under loom, as `load_range`.
        pub(crate) fn store_prefix(&self, value: &T, _bytes: usize) {
            self.store(*value);
        }
    }
}
