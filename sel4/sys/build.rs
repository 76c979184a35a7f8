//! Generates the ABI from the configured kernel tree named by `KAAL_SEL4_SRC`
//! (`cargo xtask build` prepares it under `target/kaal/<kernel>/sel4/src`).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=KAAL_SEL4_SRC");
    let Some(tree) = std::env::var_os("KAAL_SEL4_SRC").map(PathBuf::from) else {
        eprintln!("KAAL_SEL4_SRC is not set; run `cargo xtask build` first");
        std::process::exit(1);
    };
    if !tree.join("libsel4").is_dir() {
        eprintln!(
            "KAAL_SEL4_SRC={} holds no prepared seL4 tree; run `cargo xtask build` first",
            tree.display()
        );
        std::process::exit(1);
    }
    for f in kaal_sel4_gen::INPUTS.all(&tree) {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let out = match kaal_sel4_gen::generate(&tree) {
        Ok(out) => out,
        Err(e) => {
            eprintln!("generating the seL4 ABI from {}: {e}", tree.display());
            std::process::exit(1);
        }
    };
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("abi.rs");
    if let Err(e) = std::fs::write(&dest, out.rust) {
        eprintln!("writing {}: {e}", dest.display());
        std::process::exit(1);
    }
}
