//! Generates KaaL's seL4 ABI from a configured kernel tree.
//!
//! Everything numeric in the ABI — syscall numbers, invocation labels, object
//! types, error codes, object sizes, message-info and capability-rights
//! layouts — is read from the kernel's own interface files (XML, `.bf`,
//! libsel4 headers) under the kernel configuration, so the bindings always
//! match the kernel they were built with. Only x86_64 (pc99) is supported.
#![forbid(unsafe_code)]

pub mod bf;
pub mod cexpr;
pub mod header;
pub mod idl;

use header::Symbols;
use std::fmt::{self, Write};
use std::path::{Path, PathBuf};

/// A generation error, with the file or construct it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// The kernel-tree files that generation reads, relative to the tree root.
pub struct Inputs {
    pub config: &'static str,
    pub syscalls: &'static str,
    /// Interface files in label order: generic, sel4_arch, arch.
    pub interfaces: [&'static str; 3],
    pub bitfields: [&'static str; 2],
    /// Blocks taken from the kernel's own bitfield files: capability data
    /// layouts that libsel4 does not describe.
    pub kernel_blocks: (&'static str, &'static [&'static str]),
    /// Headers whose `seL4_*` constants are exported, in dependency order.
    pub headers: [&'static str; 8],
    pub errors: &'static str,
}

pub const INPUTS: Inputs = Inputs {
    config: "include/plat/pc99/autoconf.h",
    syscalls: "include/api/syscall.xml",
    interfaces: [
        "libsel4/include/interfaces/sel4.xml",
        "libsel4/sel4_arch_include/x86_64/interfaces/sel4arch.xml",
        "libsel4/arch_include/x86/interfaces/sel4arch.xml",
    ],
    bitfields: [
        "libsel4/include/sel4/shared_types_64.bf",
        "libsel4/include/sel4/types_64.bf",
    ],
    kernel_blocks: (
        "include/arch/x86/arch/64/mode/object/structures.bf",
        &["io_port_capdata"],
    ),
    headers: [
        "libsel4/include/sel4/constants.h",
        "libsel4/include/sel4/objecttype.h",
        "libsel4/sel4_arch_include/x86_64/sel4/sel4_arch/objecttype.h",
        "libsel4/arch_include/x86/sel4/arch/objecttype.h",
        "libsel4/sel4_arch_include/x86_64/sel4/sel4_arch/constants.h",
        "libsel4/arch_include/x86/sel4/arch/constants.h",
        "libsel4/include/sel4/bootinfo_types.h",
        "libsel4/arch_include/x86/sel4/arch/types.h",
    ],
    errors: "libsel4/include/sel4/errors.h",
};

impl Inputs {
    /// Every file read, for build-script change tracking.
    pub fn all(&self, tree: &Path) -> Vec<PathBuf> {
        let mut v = vec![
            self.config,
            self.syscalls,
            self.errors,
            self.kernel_blocks.0,
        ];
        v.extend(self.interfaces);
        v.extend(self.bitfields);
        v.extend(self.headers);
        v.into_iter().map(|p| tree.join(p)).collect()
    }
}

/// The generated Rust module and the C-named values it encodes.
#[derive(Debug)]
pub struct Output {
    pub rust: String,
    /// `(C name, value)` for every number generated, as the kernel's and
    /// libsel4's C headers name them; used to cross-check against C.
    pub c_values: Vec<(String, i128)>,
}

fn read(tree: &Path, rel: &str) -> Result<String> {
    std::fs::read_to_string(tree.join(rel))
        .map_err(|e| Error::new(format!("{}: {e}", tree.join(rel).display())))
}

fn with_file<T>(rel: &str, r: Result<T>) -> Result<T> {
    r.map_err(|e| Error::new(format!("{rel}: {e}")))
}

/// Generates the ABI module for the kernel tree at `tree`.
pub fn generate(tree: &Path) -> Result<Output> {
    let i = &INPUTS;
    let config = with_file(i.config, Symbols::config(&read(tree, i.config)?))?;
    if !config.enabled("CONFIG_ARCH_X86_64") || !config.enabled("CONFIG_SYSCALL") {
        return Err(Error::new(
            "only x86_64 kernels entered through `syscall` (CONFIG_SYSCALL) are supported",
        ));
    }
    let mut out = String::new();
    let mut c_values = Vec::new();

    // Configuration.
    out.push_str("/// The kernel configuration the ABI was generated for (integer options).\npub mod config {\n");
    let cfg_text = read(tree, i.config)?;
    for line in header::strip_comments(&cfg_text).lines() {
        let mut words = line.split_whitespace();
        if let (Some("#define"), Some(name)) = (words.next(), words.next()) {
            if let Some(v) = config.get(name).filter(|v| *v >= 0) {
                let _ = writeln!(out, "    pub const {name}: u64 = {v};");
            }
        }
    }
    out.push_str("}\n\n");

    // Syscalls.
    let sys = with_file(i.syscalls, idl::syscalls(&read(tree, i.syscalls)?, &config))?;
    for (name, v) in &sys {
        let _ = writeln!(out, "pub const seL4_{name}: i64 = {v};");
        c_values.push((name.clone(), *v));
    }
    for (konst, name) in [
        ("DEBUG_PUT_CHAR", "SysDebugPutChar"),
        ("DEBUG_HALT", "SysDebugHalt"),
    ] {
        let v = if sys.iter().any(|(n, _)| n == name) {
            format!("Some(seL4_{name})")
        } else {
            "None".to_string()
        };
        let _ = writeln!(out, "/// `seL4_{name}` where the configuration has it.\npub const {konst}: Option<i64> = {v};");
    }
    out.push('\n');

    // Header constants (object types, sizes, initial slots, ...).
    let mut syms = config.clone();
    syms.constants.clear();
    for h in i.headers {
        with_file(
            h,
            syms.read_header(&read(tree, h)?, &|n| n.starts_with("seL4_")),
        )?;
    }
    for (name, v) in &syms.constants {
        let _ = writeln!(out, "pub const {name}: seL4_Word = {};", word_literal(*v));
        c_values.push((name.clone(), *v));
    }
    out.push('\n');

    // Errors.
    let mut errs = Symbols::default();
    with_file(
        i.errors,
        errs.read_header(&read(tree, i.errors)?, &|n| n.starts_with("seL4_")),
    )?;
    out.push_str(&error_enum(&errs.constants)?);
    c_values.extend(errs.constants.iter().cloned());

    // Bitfields.
    for b in i.bitfields {
        let spec = with_file(b, bf::parse(&read(tree, b)?))?;
        out.push_str(&with_file(b, bf::generate(&spec))?);
    }
    let (kfile, blocks) = i.kernel_blocks;
    let spec = with_file(kfile, bf::extract_blocks(&read(tree, kfile)?, blocks))?;
    out.push_str(&with_file(kfile, bf::generate(&spec))?);

    // Invocation labels and stubs.
    let max_mrs = syms
        .get("seL4_MsgMaxLength")
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| Error::new("seL4_MsgMaxLength not found"))?;
    let counts = [
        "nInvocationLabels",
        "nSeL4ArchInvocationLabels",
        "nArchInvocationLabels",
    ];
    let mut next: i128 = 1; // 0 is InvalidInvocation
    out.push_str("/// Invocation labels, as the kernel numbers them.\npub mod invocation {\n    use super::seL4_Word;\n    pub const InvalidInvocation: seL4_Word = 0;\n");
    c_values.push(("InvalidInvocation".to_string(), 0));
    let mut stubs = String::new();
    let mut all_structs = Vec::new();
    for file in i.interfaces {
        all_structs.extend(with_file(file, idl::structs(&read(tree, file)?))?);
    }
    for (file, count) in i.interfaces.iter().zip(counts) {
        let parsed = with_file(
            file,
            idl::parse_interfaces(&read(tree, file)?, &config, &all_structs),
        )?;
        let labels = idl::labels(&parsed, next, count);
        for (name, v) in &labels {
            let _ = writeln!(out, "    pub const {name}: seL4_Word = {v};");
            c_values.push((name.clone(), *v));
        }
        next = labels.last().map_or(next, |(_, v)| *v);
        stubs.push_str(&with_file(file, idl::stubs(&parsed, max_mrs))?);
    }
    out.push_str("}\n\n");
    out.push_str(&stubs);

    // The table the host test compares with C.
    out.push_str("/// Every generated number under its C name, for cross-checking with C.\n#[doc(hidden)]\npub const C_VALUES: &[(&str, i64)] = &[\n");
    for (n, v) in &c_values {
        let _ = writeln!(out, "    (\"{n}\", {v}),");
    }
    out.push_str("];\n");
    Ok(Output {
        rust: out,
        c_values,
    })
}

fn word_literal(v: i128) -> String {
    if v < 0 {
        format!("({v}i64) as seL4_Word")
    } else {
        format!("{v}")
    }
}

/// `seL4_NoError` is success; every other code up to `seL4_NumErrors` is a
/// variant; anything else a kernel could send is kept as `Unknown`.
fn error_enum(errs: &[(String, i128)]) -> Result<String> {
    let variants: Vec<(String, i128)> = errs
        .iter()
        .filter(|(n, _)| n != "seL4_NoError" && n != "seL4_NumErrors")
        .map(|(n, v)| (n.trim_start_matches("seL4_").to_string(), *v))
        .collect();
    if variants.is_empty() || !errs.iter().any(|(n, v)| n == "seL4_NoError" && *v == 0) {
        return Err(Error::new(
            "errors.h: expected seL4_NoError = 0 and error codes",
        ));
    }
    let mut s = String::from(
        "/// An error the kernel returned from an invocation.\n#[derive(Clone, Copy, Debug, PartialEq, Eq)]\npub enum Error {\n",
    );
    for (n, _) in &variants {
        let _ = writeln!(s, "    {n},");
    }
    s.push_str("    /// A code this kernel version does not define.\n    Unknown(seL4_Word),\n}\n\nimpl Error {\n    /// The error for a non-zero kernel error code.\n    pub const fn from_code(code: seL4_Word) -> Self {\n        match code {\n");
    for (n, v) in &variants {
        let _ = writeln!(s, "            {v} => Error::{n},");
    }
    s.push_str("            other => Error::Unknown(other),\n        }\n    }\n\n    /// The kernel's code for this error.\n    pub const fn code(self) -> seL4_Word {\n        match self {\n");
    for (n, v) in &variants {
        let _ = writeln!(s, "            Error::{n} => {v},");
    }
    s.push_str("            Error::Unknown(c) => c,\n        }\n    }\n\n    /// The kernel's name for this error.\n    pub const fn name(self) -> &'static str {\n        match self {\n");
    for (n, _) in &variants {
        let _ = writeln!(s, "            Error::{n} => \"seL4_{n}\",");
    }
    s.push_str("            Error::Unknown(_) => \"unknown seL4 error\",\n        }\n    }\n}\n\n");
    Ok(s)
}
