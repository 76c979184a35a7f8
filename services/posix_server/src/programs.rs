//! Programs loaded before: a program's load plan and the frames of its
//! segments as loaded (text already patched), kept so that the next
//! `execve` of it maps the same frames instead of reading and patching it
//! again. A process maps them when it touches them and copies one when it
//! first writes to it (`space`). Every busybox applet is one program, so a
//! shell's pipelines share one copy of busybox. A program is known by its
//! inode, size and modification time, so a rewritten file is loaded
//! afresh.

use alloc::rc::Rc;
use alloc::vec::Vec;

use posix::image::Image;

use crate::space::ImageFrames;

/// Programs kept at once (each holds frames for its file's pages, at most
/// 4 MiB); the least recently used goes first.
const KEPT: usize = 2;

/// What identifies a program file's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileId {
    pub dev: u32,
    pub ino: u64,
    pub size: u64,
    pub mtime: u64,
}

/// One program: its plan and its pages as loaded.
pub struct Program {
    pub image: Image,
    /// Frames of the segments' pages, by address, made when the program
    /// was read; processes still running it keep them after it is
    /// forgotten.
    pub frames: Rc<ImageFrames>,
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
