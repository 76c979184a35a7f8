//! Test disks: a system test may ask for a disk image, which the harness
//! fills with a known pattern before QEMU starts and checks after it exits
//! (the guest writes the other pattern to the sectors the test names).

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use kaal_test_patterns::disk::{self as testdata, SECTOR};
use serde::Deserialize;

/// `disk = { bytes = ..., written_sector = ..., written_sectors = ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// Size of the image: whole sectors.
    pub bytes: u64,
    /// The sectors the guest must have written with `testdata::written`;
    /// every other byte must still be `testdata::fresh`.
    #[serde(default)]
    pub written_sector: u64,
    #[serde(default)]
    pub written_sectors: u64,
}

impl DiskSpec {
    pub fn check_spec(&self, test: &str) -> Result<()> {
        if self.bytes == 0 || !self.bytes.is_multiple_of(SECTOR) || self.bytes > 1 << 30 {
            bail!(
                "test {test}: disk bytes must be a whole number of 512-byte sectors, at most 1 GiB"
            );
        }
        let end = self.written_sector.checked_add(self.written_sectors);
        if end.is_none_or(|e| e * SECTOR > self.bytes) {
            bail!("test {test}: the disk's written sectors lie beyond its end");
        }
        Ok(())
    }

    fn written(&self, offset: u64) -> bool {
        let s = offset / SECTOR;
        s >= self.written_sector && s < self.written_sector + self.written_sectors
    }

    /// Writes a fresh image to `path`.
    pub fn create(&self, path: &Path) -> Result<()> {
        let bytes: Vec<u8> = (0..self.bytes).map(testdata::fresh).collect();
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
    }

    /// Checks the image the guest left: `Err(reason)` at the first wrong byte.
    pub fn verify(&self, path: &Path) -> Result<Result<(), String>> {
        let got = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if got.len() as u64 != self.bytes {
            return Ok(Err(format!(
                "disk image is {} bytes, expected {}",
                got.len(),
                self.bytes
            )));
        }
        for (offset, &b) in (0u64..).zip(&got) {
            let (want, what) = if self.written(offset) {
                (testdata::written(offset), "written by the guest")
            } else {
                (testdata::fresh(offset), "left as the harness wrote it")
            };
            if b != want {
                return Ok(Err(format!(
                    "disk byte {offset:#x} (sector {}) is {b:#04x}, expected {want:#04x} ({what})",
                    offset / SECTOR
                )));
            }
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_finds_a_wrong_byte_on_either_side_of_the_written_range() -> Result<()> {
        let spec = DiskSpec {
            bytes: 8 * SECTOR,
            written_sector: 2,
            written_sectors: 2,
        };
        spec.check_spec("t")?;
        let dir = std::env::temp_dir().join(format!("kaal-disk-{}", std::process::id()));
        let path = dir.join("d.img");
        spec.create(&path)?;
        assert!(
            spec.verify(&path)?.unwrap_err().contains("sector 2"),
            "unwritten"
        );
        let mut img = fs::read(&path)?;
        for o in 2 * SECTOR..4 * SECTOR {
            img[o as usize] = testdata::written(o);
        }
        fs::write(&path, &img)?;
        assert_eq!(spec.verify(&path)?, Ok(()));
        img[5 * SECTOR as usize] ^= 1;
        fs::write(&path, &img)?;
        assert!(spec.verify(&path)?.unwrap_err().contains("sector 5"));
        fs::remove_dir_all(&dir)?;
        let beyond = DiskSpec {
            written_sector: 7,
            ..spec
        };
        assert!(beyond.check_spec("t").is_err());
        Ok(())
    }
}
