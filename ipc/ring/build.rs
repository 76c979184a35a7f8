//! Declares the `loom` cfg, set by `RUSTFLAGS="--cfg loom"` for the model checks.
//! (`[lints] workspace = true` cannot be combined with a crate-level `check-cfg` entry.)
fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
