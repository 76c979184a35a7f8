//! Where things live: the workspace and the tool's own files under `target/kaal`.
//!
//! Everything that depends on the kernel (its prepared tree and build, the
//! bindings generated from that tree and so every seL4 program, the packed
//! systems) lives in a folder of its variant, `target/kaal/release` or
//! `target/kaal/debug`, so switching `--kernel` rebuilds nothing that was
//! built for the other one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::kernel::Variant;

/// Paths of the workspace and of everything the tool writes under `target/kaal`.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Workspace root (the folder holding the root `Cargo.toml`).
    pub root: PathBuf,
    /// `target/kaal`: the tool's private build area.
    pub kaal: PathBuf,
    /// The kernel that is built, booted, and that the seL4 programs are built for.
    pub kernel: Variant,
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

    /// The layout of a workspace rooted at `root`, for the release kernel.
    pub fn at(root: PathBuf) -> Self {
        let kaal = root.join("target").join("kaal");
        Self {
            root,
            kaal,
            kernel: Variant::default(),
        }
    }

    /// The same workspace, for kernel `kernel`.
    pub fn with_kernel(self, kernel: Variant) -> Self {
        Self { kernel, ..self }
    }

    /// `target/kaal/<variant>`: what is built for this layout's kernel.
    fn variant(&self) -> PathBuf {
        self.kaal.join(self.kernel.name())
    }

    /// Cargo's target folder for the seL4 programs, when not the workspace's own:
    /// the release kernel's programs are built in `target/` as usual, the debug
    /// kernel's in `target/kaal/debug/cargo` (their bindings differ).
    pub fn cargo_target_dir(&self) -> Option<PathBuf> {
        match self.kernel {
            Variant::Release => None,
            Variant::Debug => Some(self.variant().join("cargo")),
        }
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
        self.variant().join("sel4").join("src")
    }

    /// The kernel's out-of-tree build folder.
    pub fn sel4_build(&self) -> PathBuf {
        self.variant().join("sel4").join("build")
    }

    /// Stamp holding the hash of the last successful kernel build's inputs.
    pub fn sel4_stamp(&self) -> PathBuf {
        self.variant().join("sel4").join("stamp")
    }

    /// The kernel as a 32-bit ELF, as QEMU's multiboot loader wants it.
    pub fn kernel32(&self) -> PathBuf {
        self.variant().join("kernel32.elf")
    }

    /// The repository's kernel configuration header (the release configuration).
    pub fn kernel_config(&self) -> PathBuf {
        self.root.join("kernel").join("pc99.h")
    }

    /// Packed system images, embedded by the root task images.
    pub fn systems(&self) -> PathBuf {
        self.variant().join("systems")
    }

    /// Component programs stripped of debug information, as the systems hold them.
    pub fn programs(&self) -> PathBuf {
        self.variant().join("programs")
    }

    /// The Linux programs of the POSIX layer's disks (the same for both
    /// kernels: they are Linux programs).
    pub fn linux(&self) -> PathBuf {
        self.kaal.join("linux")
    }

    /// The system test manifest.
    pub fn tests_toml(&self) -> PathBuf {
        self.root.join("tests").join("system").join("tests.toml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kernel_has_its_own_folders() {
        let release = Layout::at(PathBuf::from("/w"));
        let debug = release.clone().with_kernel(Variant::Debug);
        assert_eq!(release.kernel, Variant::Release);
        assert_eq!(
            release.kernel32(),
            PathBuf::from("/w/target/kaal/release/kernel32.elf")
        );
        assert_eq!(
            debug.kernel32(),
            PathBuf::from("/w/target/kaal/debug/kernel32.elf")
        );
        for (r, d) in [
            (release.sel4_src(), debug.sel4_src()),
            (release.sel4_build(), debug.sel4_build()),
            (release.sel4_stamp(), debug.sel4_stamp()),
            (release.systems(), debug.systems()),
            (release.programs(), debug.programs()),
        ] {
            assert!(r.starts_with("/w/target/kaal/release"), "{}", r.display());
            assert!(d.starts_with("/w/target/kaal/debug"), "{}", d.display());
        }
        assert_eq!(release.cargo_target_dir(), None);
        assert_eq!(
            debug.cargo_target_dir(),
            Some(PathBuf::from("/w/target/kaal/debug/cargo"))
        );
        // Shared by both: the one configuration, the logs, the venv.
        assert_eq!(release.kernel_config(), debug.kernel_config());
        assert_eq!(release.logs(), debug.logs());
        assert_eq!(release.venv(), debug.venv());
    }
}
