//! Programs loaded before: a program's file, its load plan and the frames
//! of its read-only segments (already patched), kept so that the next
//! `execve` of it maps the same frames instead of reading and patching it
//! again. Every busybox applet is one program, so a shell's pipelines
//! share one copy of busybox's text. A program is known by its inode,
//! size and modification time, so a rewritten file is loaded afresh.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use posix::image::Image;

use crate::window::FrameMem;

/// Programs kept at once (each holds its file, at most 4 MiB, in the
/// server's heap); the least recently used goes first.
const KEPT: usize = 2;

/// What identifies a program file's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileId {
    pub dev: u32,
    pub ino: u64,
    pub size: u64,
    pub mtime: u64,
}

/// One program: its file, its plan and its read-only pages.
pub struct Program {
    pub elf: Vec<u8>,
    pub image: Image,
    /// Frames of the non-writable segments' pages, by address, made by
    /// the first load that needed them.
    pub frames: RefCell<BTreeMap<u64, Rc<FrameMem>>>,
}

#[derive(Default)]
pub struct Programs {
    kept: Vec<(FileId, Rc<Program>)>,
}

impl Programs {
    /// The program with this identity, if kept (now the most recent).
    pub fn get(&mut self, id: FileId) -> Option<Rc<Program>> {
        let i = self.kept.iter().position(|(k, _)| *k == id)?;
        let entry = self.kept.remove(i);
        let p = entry.1.clone();
        self.kept.push(entry);
        Some(p)
    }

    /// Keeps `program`; returns the one it pushed out, if any (its frames
    /// go when no process maps them any more).
    pub fn insert(&mut self, id: FileId, program: Rc<Program>) -> Option<Rc<Program>> {
        self.kept.retain(|(k, _)| *k != id);
        self.kept.push((id, program));
        (self.kept.len() > KEPT).then(|| self.kept.remove(0).1)
    }

    /// Forgets every program (their frames go with the last process that
    /// maps them).
    pub fn clear(&mut self) -> Vec<Rc<Program>> {
        self.kept.drain(..).map(|(_, p)| p).collect()
    }
}
