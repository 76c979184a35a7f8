//! Where things live: the workspace and the tool's own files under `target/kaal`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Paths of the workspace and of everything the tool writes under `target/kaal`.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Workspace root (the folder holding the root `Cargo.toml`).
    pub root: PathBuf,
    /// `target/kaal`: the tool's private build area.
    pub kaal: PathBuf,
}

impl Layout {
    /// The layout of the workspace this xtask binary was built from.
    pub fn from_build() -> Result<Self> {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir
            .parent()
            .with_context(|| format!("{} has no parent folder", manifest_dir.display()))?
            .to_path_buf();
        Ok(Self::at(root))
    }

    /// The layout of a workspace rooted at `root`.
    pub fn at(root: PathBuf) -> Self {
        let kaal = root.join("target").join("kaal");
        Self { root, kaal }
    }

    /// Step and test logs.
    pub fn logs(&self) -> PathBuf {
        self.kaal.join("logs")
    }

    /// The log of one step, `target/kaal/logs/<name>.log`.
    pub fn log(&self, name: &str) -> PathBuf {
        self.logs().join(format!("{name}.log"))
    }

    /// Python virtual environment holding the kernel build's Python modules.
    pub fn venv(&self) -> PathBuf {
        self.kaal.join("venv")
    }

    /// Prepared (copied and configured) seL4 source tree.
    pub fn sel4_src(&self) -> PathBuf {
        self.kaal.join("sel4").join("src")
    }

    /// The kernel's out-of-tree build folder.
    pub fn sel4_build(&self) -> PathBuf {
        self.kaal.join("sel4").join("build")
    }

    /// Stamp holding the hash of the last successful kernel build's inputs.
    pub fn sel4_stamp(&self) -> PathBuf {
        self.kaal.join("sel4").join("stamp")
    }

    /// The kernel as a 32-bit ELF, as QEMU's multiboot loader wants it.
    pub fn kernel32(&self) -> PathBuf {
        self.kaal.join("kernel32.elf")
    }

    /// The repository's kernel configuration header.
    pub fn kernel_config(&self) -> PathBuf {
        self.root.join("kernel").join("pc99.h")
    }

    /// Packed system images, embedded by the root task images.
    pub fn systems(&self) -> PathBuf {
        self.kaal.join("systems")
    }

    /// The system test manifest.
    pub fn tests_toml(&self) -> PathBuf {
        self.root.join("tests").join("system").join("tests.toml")
    }
}
