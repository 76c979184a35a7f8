//! Cross-checks the generated ABI against C: compiles a program that includes
//! the kernel's own generated headers (invocation labels, syscall numbers,
//! from the kernel build folder) and libsel4's headers (object types, errors,
//! constants, IPC-buffer and BootInfo layouts) under the same configuration,
//! and compares every value with the Rust side.

use kaal_sel4_sys::*;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

fn dir(var: &str) -> PathBuf {
    let v = std::env::var_os(var).unwrap_or_else(|| {
        panic!("{var} is not set; run the host tests through `cargo xtask test`")
    });
    let p = PathBuf::from(v);
    assert!(
        p.is_dir(),
        "{var}={} is not a folder; run `cargo xtask build`",
        p.display()
    );
    p
}

macro_rules! layouts {
    ($($ty:ident { $($field:ident),* $(,)? })*) => {
        fn rust_layouts() -> Vec<(String, usize)> {
            let mut v = Vec::new();
            $(
                v.push((format!("sizeof {}", stringify!($ty)), size_of::<$ty>()));
                $(v.push((format!("{}.{}", stringify!($ty), stringify!($field)), offset_of!($ty, $field)));)*
            )*
            v
        }
        fn c_layouts(c: &mut String) {
            $(
                let _ = writeln!(c, "  printf(\"L sizeof {} %zu\\n\", sizeof({}));", stringify!($ty), stringify!($ty));
                $(let _ = writeln!(c, "  printf(\"L {}.{} %zu\\n\", offsetof({}, {}));",
                    stringify!($ty), stringify!($field), stringify!($ty), stringify!($field));)*
            )*
        }
    };
}

layouts! {
    seL4_IPCBuffer { tag, msg, userData, caps_or_badges, receiveCNode, receiveIndex, receiveDepth }
    seL4_UntypedDesc { paddr, padding1, padding2, sizeBits, isDevice }
    seL4_BootInfo {
        extraLen, nodeID, numNodes, numIOPTLevels, ipcBuffer, empty, sharedFrames,
        userImageFrames, userImagePaging, ioSpaceCaps, extraBIPages,
        initThreadCNodeSizeBits, initThreadDomain, archInfo, untyped, untypedList,
    }
    seL4_UserContext { rip, rsp, rflags, rax, rdi, rsi, r15, tls_base }
}

const PRELUDE: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <autoconf.h>
#include <sel4/macros.h>
#include <sel4/simple_types.h>
#include <sel4/sel4_arch/simple_types.h>
typedef seL4_Uint64 seL4_Word;
typedef seL4_Word seL4_CPtr;
typedef seL4_Word seL4_NodeId;
typedef seL4_Word seL4_Domain;
typedef seL4_Word word_t;
typedef struct { seL4_Word words[1]; } seL4_MessageInfo_t;
#define UNUSED __attribute__((unused))
#include <sel4/constants.h>
#include <sel4/errors.h>
#include <sel4/objecttype.h>
#include <sel4/arch/constants.h>
#include <sel4/arch/types.h>
#include <sel4/sel4_arch/types.h>
#include <sel4/shared_types.h>
#include <sel4/bootinfo_types.h>
#include <api/invocation.h>
#include <arch/api/invocation.h>
#include <arch/api/syscall.h>
int main(void) {
"#;

#[test]
fn generated_abi_matches_the_kernel_headers() {
    let src = dir("KAAL_SEL4_SRC");
    let build = dir("KAAL_SEL4_BUILD");
    let mut c = String::from(PRELUDE);
    for (name, _) in C_VALUES {
        let _ = writeln!(c, "  printf(\"V {name} %lld\\n\", (long long)({name}));");
    }
    c_layouts(&mut c);
    c.push_str("  return 0;\n}\n");

    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let (file, exe) = (tmp.join("abi_check.c"), tmp.join("abi_check"));
    std::fs::write(&file, c).expect("write C file");
    let lib = src.join("libsel4");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .arg("-I")
        .arg(src.join("include/plat/pc99"))
        .arg("-I")
        .arg(lib.join("include"))
        .arg("-I")
        .arg(lib.join("arch_include/x86"))
        .arg("-I")
        .arg(lib.join("sel4_arch_include/x86_64"))
        .arg("-I")
        .arg(lib.join("sel4_plat_include/pc99"))
        .arg("-I")
        .arg(&build)
        .arg("-o")
        .arg(&exe)
        .arg(&file)
        .output()
        .expect("run the C compiler");
    assert!(
        out.status.success(),
        "C program did not compile (a generated name the C headers lack?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("run the C program");
    assert!(run.status.success());
    let text = String::from_utf8(run.stdout).expect("utf-8");

    let mut c_vals = BTreeMap::new();
    let mut c_lay = BTreeMap::new();
    for line in text.lines() {
        let mut w = line.rsplitn(2, ' ');
        let (v, key) = (w.next().unwrap(), w.next().unwrap());
        if let Some(name) = key.strip_prefix("V ") {
            c_vals.insert(name.to_string(), v.parse::<i64>().unwrap());
        } else if let Some(name) = key.strip_prefix("L ") {
            c_lay.insert(name.to_string(), v.parse::<usize>().unwrap());
        }
    }
    assert_eq!(
        c_vals.len(),
        C_VALUES.len(),
        "every generated value was printed"
    );
    for (name, v) in C_VALUES {
        assert_eq!(
            c_vals[*name], *v,
            "{name}: C says {}, Rust says {v}",
            c_vals[*name]
        );
    }
    for (name, off) in rust_layouts() {
        assert_eq!(
            c_lay[&name], off,
            "{name}: C says {}, Rust says {off}",
            c_lay[&name]
        );
    }
    // The counts close each label range: nothing the kernel knows is missing.
    let n = |k: &str| C_VALUES.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    assert_eq!(
        n("nArchInvocationLabels"),
        Some(c_vals["nArchInvocationLabels"])
    );
    assert!(
        C_VALUES.len() > 150,
        "only {} values generated",
        C_VALUES.len()
    );
}

#[test]
fn typed_values_agree_with_the_table() {
    let n = |k: &str| C_VALUES.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    assert_eq!(n("SysCall"), Some(seL4_SysCall));
    assert_eq!(n("UntypedRetype"), Some(invocation::UntypedRetype as i64));
    assert_eq!(n("seL4_EndpointObject"), Some(seL4_EndpointObject as i64));
    assert_eq!(
        Error::from_code(Error::NotEnoughMemory.code()),
        Error::NotEnoughMemory
    );
    assert_eq!(Error::from_code(999), Error::Unknown(999));
    let mut m = seL4_MessageInfo_t::default();
    m.set_label(0xabcde);
    m.set_length(120);
    m.set_extraCaps(3);
    assert_eq!(
        (m.get_label(), m.get_length(), m.get_extraCaps()),
        (0xabcde, 120, 3)
    );
    m.set_length(0x1ff); // wider than the field: masked, neighbours untouched
    assert_eq!(
        (m.get_label(), m.get_length(), m.get_extraCaps()),
        (0xabcde, 0x7f, 3)
    );
}
