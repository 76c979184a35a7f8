//! A process's descriptor table: Linux's numbering (lowest free first),
//! `dup`/`dup2`/`F_DUPFD` and close-on-exec. What a descriptor refers to
//! (`T`, an open file description shared by `dup` and `fork`) is the
//! server's.

use alloc::vec::Vec;

use crate::errno::Errno;

/// Descriptors per process (Linux's default RLIMIT_NOFILE).
pub const FD_MAX: u32 = 1024;

#[derive(Clone, Debug)]
struct Entry<T> {
    file: T,
    cloexec: bool,
}

/// Descriptor number to open file description.
#[derive(Clone, Debug)]
pub struct FdTable<T> {
    slots: Vec<Option<Entry<T>>>,
}

impl<T> Default for FdTable<T> {
    fn default() -> Self {
        FdTable { slots: Vec::new() }
    }
}

/// A descriptor number from a register: negative or too big is `EBADF`.
pub fn fd_number(reg: u64) -> Result<u32, Errno> {
    let fd = reg as i32;
    u32::try_from(fd)
        .ok()
        .filter(|&f| f < FD_MAX)
        .ok_or(Errno::EBADF)
}

impl<T: Clone> FdTable<T> {
    pub fn new() -> Self {
        FdTable::default()
    }

    pub fn get(&self, fd: u32) -> Result<&T, Errno> {
        self.slots
            .get(fd as usize)
            .and_then(Option::as_ref)
            .map(|e| &e.file)
            .ok_or(Errno::EBADF)
    }

    /// The lowest free descriptor at or above `min`.
    fn free_from(&self, min: u32) -> Result<u32, Errno> {
        (min..FD_MAX)
            .find(|&f| self.slots.get(f as usize).is_none_or(Option::is_none))
            .ok_or(Errno::EMFILE)
    }

    /// Installs `file` at the lowest free descriptor at or above `min`.
    pub fn insert_from(&mut self, min: u32, file: T, cloexec: bool) -> Result<u32, Errno> {
        if min >= FD_MAX {
            return Err(Errno::EINVAL);
        }
        let fd = self.free_from(min)?;
        self.put(fd, file, cloexec);
        Ok(fd)
    }

    /// Installs `file` at the lowest free descriptor.
    pub fn insert(&mut self, file: T, cloexec: bool) -> Result<u32, Errno> {
        self.insert_from(0, file, cloexec)
    }

    fn put(&mut self, fd: u32, file: T, cloexec: bool) -> Option<T> {
        let i = fd as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        let old = self.slots.get_mut(i)?.replace(Entry { file, cloexec });
        old.map(|e| e.file)
    }

    /// `dup2`/`dup3`: `new` refers to what `old` does; what `new` held is
    /// returned (to close). `old` must be open.
    pub fn dup_to(&mut self, old: u32, new: u32, cloexec: bool) -> Result<Option<T>, Errno> {
        let file = self.get(old)?.clone();
        if new >= FD_MAX {
            return Err(Errno::EBADF);
        }
        Ok(self.put(new, file, cloexec))
    }

    /// Removes `fd`; returns what it referred to.
    pub fn close(&mut self, fd: u32) -> Result<T, Errno> {
        self.slots
            .get_mut(fd as usize)
            .and_then(Option::take)
            .map(|e| e.file)
            .ok_or(Errno::EBADF)
    }

    pub fn cloexec(&self, fd: u32) -> Result<bool, Errno> {
        self.slots
            .get(fd as usize)
            .and_then(Option::as_ref)
            .map(|e| e.cloexec)
            .ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&mut self, fd: u32, on: bool) -> Result<(), Errno> {
        let e = self
            .slots
            .get_mut(fd as usize)
            .and_then(Option::as_mut)
            .ok_or(Errno::EBADF)?;
        e.cloexec = on;
        Ok(())
    }

    /// At `execve`: removes the close-on-exec descriptors, returns them.
    pub fn close_on_exec(&mut self) -> Vec<T> {
        let mut out = Vec::new();
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|e| e.cloexec) {
                if let Some(e) = slot.take() {
                    out.push(e.file);
                }
            }
        }
        out
    }

    /// Removes every descriptor (at exit), returning what they held.
    pub fn drain(&mut self) -> Vec<T> {
        self.slots.drain(..).flatten().map(|e| e.file).collect()
    }

    /// Open descriptors with what they refer to.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|e| (i as u32, &e.file)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_first_and_dup_semantics() {
        let mut t = FdTable::new();
        assert_eq!(t.insert('a', false), Ok(0));
        assert_eq!(t.insert('b', false), Ok(1));
        assert_eq!(t.insert('c', true), Ok(2));
        assert_eq!(t.close(1), Ok('b'));
        assert_eq!(t.insert('d', false), Ok(1));
        assert_eq!(t.insert_from(10, 'e', false), Ok(10));
        assert_eq!(t.dup_to(0, 2, false), Ok(Some('c')));
        assert_eq!(t.get(2), Ok(&'a'));
        assert_eq!(t.dup_to(7, 3, false), Err(Errno::EBADF));
        assert_eq!(t.close(9), Err(Errno::EBADF));
        t.set_cloexec(10, true).expect("open");
        assert_eq!(t.close_on_exec(), alloc::vec!['e']);
        assert_eq!(fd_number(u64::MAX), Err(Errno::EBADF), "-1");
        assert_eq!(fd_number(5), Ok(5));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = FdTable::new();
        for _ in 0..FD_MAX {
            t.insert((), false).expect("room");
        }
        assert_eq!(t.insert((), false), Err(Errno::EMFILE));
        assert_eq!(t.dup_to(0, FD_MAX, false), Err(Errno::EBADF));
    }
}
