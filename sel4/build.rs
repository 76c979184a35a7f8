//! Reads the seL4 version from the kernel tree the bindings are generated from.

fn main() {
    println!("cargo:rerun-if-env-changed=KAAL_SEL4_SRC");
    let tree = std::env::var("KAAL_SEL4_SRC").unwrap_or_default();
    let path = std::path::Path::new(&tree).join("VERSION");
    println!("cargo:rerun-if-changed={}", path.display());
    let version = std::fs::read_to_string(&path).unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=KAAL_SEL4_VERSION={}", version.trim());
}
