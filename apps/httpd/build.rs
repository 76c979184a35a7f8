//! Links every component image with the runtime's linker script.

fn main() {
    if let Ok(script) = std::env::var("DEP_KAAL_RT_LINK_SCRIPT") {
        println!("cargo:rustc-link-arg-bins=-T{script}");
    }
}
