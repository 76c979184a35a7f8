//! Publishes the linker script path for the image crates' build scripts.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    // Read by dependents as DEP_KAAL_RT_LINK_SCRIPT (see `links` in Cargo.toml).
    println!("cargo:link-script={dir}/link.ld");
    println!("cargo:rerun-if-changed=link.ld");
}
