//! The kernel's interface files: invocation labels and one typed stub per
//! invocation (from libsel4's `interfaces/*.xml`), and syscall numbers (from
//! `include/api/syscall.xml`). Marshalling follows libsel4's own stub
//! generator: parameters are packed into message words in order, each aligned
//! to its own size (or a word, if smaller); capability parameters travel as
//! extra caps; the first four words go in registers.

use crate::cexpr::{self, Env};
use crate::{Error, Result};
use std::fmt::Write;

const WORD_BITS: u32 = 64;
/// Message registers passed in machine registers on x86_64 (r10, r8, r9, r15).
pub const REGISTER_MRS: usize = 4;

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// An integer of this many bits (`bool` when 1).
    Int { bits: u32, rust: &'static str },
    /// A one-word bitfield type generated from a `.bf` file.
    BitField,
    /// A capability pointer; passed as an extra cap.
    Cap,
    /// A struct of whole words, passed by reference.
    Struct { members: Vec<String> },
}

#[derive(Debug, Clone)]
struct Type {
    name: String,
    kind: Kind,
}

impl Type {
    fn size_bits(&self) -> u32 {
        match &self.kind {
            Kind::Int { bits, .. } => *bits,
            Kind::BitField | Kind::Cap => WORD_BITS,
            Kind::Struct { members } => WORD_BITS * members.len() as u32,
        }
    }
    fn rust(&self) -> String {
        match &self.kind {
            Kind::Int { rust, .. } => (*rust).to_string(),
            Kind::BitField => self.name.clone(),
            Kind::Cap => "seL4_CPtr".to_string(),
            Kind::Struct { .. } => self.name.clone(),
        }
    }
}

const CAP_TYPES: [&str; 23] = [
    "seL4_CPtr",
    "seL4_CNode",
    "seL4_IRQHandler",
    "seL4_IRQControl",
    "seL4_TCB",
    "seL4_Untyped",
    "seL4_DomainSet",
    "seL4_X86_IOPort",
    "seL4_X86_ASIDControl",
    "seL4_X86_ASIDPool",
    "seL4_X86_IOSpace",
    "seL4_X86_Page",
    "seL4_X64_PML4",
    "seL4_X86_PDPT",
    "seL4_X86_PageDirectory",
    "seL4_X86_PageTable",
    "seL4_X86_IOPageTable",
    "seL4_X86_VCPU",
    "seL4_X86_EPTPML4",
    "seL4_X86_EPTPDPT",
    "seL4_X86_EPTPD",
    "seL4_X86_EPTPT",
    "seL4_X86_IOPort",
];

fn lookup_type(name: &str, structs: &[(String, Vec<String>)]) -> Option<Type> {
    let int = |bits, rust| Kind::Int { bits, rust };
    let kind = match name {
        "int" => int(32, "i32"),
        "seL4_Uint8" => int(8, "u8"),
        "seL4_Uint16" => int(16, "u16"),
        "seL4_Uint32" => int(32, "u32"),
        "seL4_Uint64" => int(64, "u64"),
        "seL4_Word" | "seL4_X86_VMAttributes" => int(64, "seL4_Word"),
        "seL4_Bool" => int(1, "bool"),
        "seL4_CapData_t" | "seL4_PrioProps_t" | "seL4_CapRights_t" => Kind::BitField,
        n if CAP_TYPES.contains(&n) => Kind::Cap,
        n => {
            let (_, members) = structs.iter().find(|(s, _)| s == n)?;
            Kind::Struct {
                members: members.clone(),
            }
        }
    };
    Some(Type {
        name: name.to_string(),
        kind,
    })
}

#[derive(Debug, Clone)]
struct Param {
    name: String,
    ty: Type,
}

#[derive(Debug, Clone)]
pub struct Method {
    pub interface: String,
    pub name: String,
    /// The invocation label's C name (the `id` attribute).
    pub label: String,
    inputs: Vec<Param>,
    outputs: Vec<Param>,
}

/// One interface file, in label order, with disabled methods left out.
#[derive(Debug, Default)]
pub struct InterfaceFile {
    pub methods: Vec<Method>,
    /// Structs declared in the file: name and word-sized members.
    pub structs: Vec<(String, Vec<String>)>,
}

/// The `<struct>` declarations of an interface file.
pub fn structs(xml: &str) -> Result<Vec<(String, Vec<String>)>> {
    let doc =
        roxmltree::Document::parse(xml).map_err(|e| Error::new(format!("interface XML: {e}")))?;
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("struct"))
        .map(|s| {
            let members = s
                .children()
                .filter(|m| m.has_tag_name("member"))
                .filter_map(|m| m.attribute("name").map(str::to_string))
                .collect();
            (s.attribute("name").unwrap_or_default().to_string(), members)
        })
        .collect())
}

/// Parses one interface file; `all_structs` holds the structs of every file
/// (the generic file uses the architecture's `seL4_UserContext`).
pub fn parse_interfaces(
    xml: &str,
    config: &dyn Env,
    all_structs: &[(String, Vec<String>)],
) -> Result<InterfaceFile> {
    let doc =
        roxmltree::Document::parse(xml).map_err(|e| Error::new(format!("interface XML: {e}")))?;
    let structs = all_structs;
    let mut file = InterfaceFile {
        methods: Vec::new(),
        structs: self::structs(xml)?,
    };
    for iface in doc.descendants().filter(|n| n.has_tag_name("interface")) {
        let iname = iface
            .attribute("name")
            .ok_or_else(|| Error::new("interface without name"))?;
        for m in iface.children().filter(|n| n.has_tag_name("method")) {
            if let Some(cond) = m.attribute("condition") {
                if !cexpr::condition(cond, config)? {
                    continue;
                }
            }
            let mname = m
                .attribute("name")
                .ok_or_else(|| Error::new("method without name"))?;
            let label = m
                .attribute("id")
                .ok_or_else(|| Error::new("method without id"))?;
            let service = lookup_type(iname, structs)
                .filter(|t| t.kind == Kind::Cap)
                .ok_or_else(|| Error::new(format!("interface {iname} is not a capability type")))?;
            let mut method = Method {
                interface: iname.to_string(),
                name: mname.to_string(),
                label: label.to_string(),
                inputs: vec![Param {
                    name: "_service".to_string(),
                    ty: service,
                }],
                outputs: Vec::new(),
            };
            for p in m.children().filter(|n| n.has_tag_name("param")) {
                let pname = p
                    .attribute("name")
                    .ok_or_else(|| Error::new("param without name"))?;
                let tname = p.attribute("type").unwrap_or_default();
                let ty = lookup_type(tname, structs).ok_or_else(|| {
                    Error::new(format!("{iname}_{mname}: unknown type `{tname}`"))
                })?;
                let param = Param {
                    name: rust_ident(pname),
                    ty,
                };
                match p.attribute("dir") {
                    Some("in") => method.inputs.push(param),
                    Some("out") => method.outputs.push(param),
                    d => return Err(Error::new(format!("{iname}_{mname}: param dir {d:?}"))),
                }
            }
            file.methods.push(method);
        }
    }
    Ok(file)
}

fn rust_ident(name: &str) -> String {
    const KEYWORDS: [&str; 12] = [
        "type", "ref", "in", "fn", "mod", "use", "move", "loop", "match", "self", "impl", "box",
    ];
    if KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// Bit positions, as libsel4: each parameter aligned to min(own size, word).
fn positions(params: &[&Param]) -> Result<Vec<(u32, u32)>> {
    let mut used = 0u32;
    let mut out = Vec::new();
    for p in params {
        let size = p.ty.size_bits();
        if !(size.is_power_of_two() || size % WORD_BITS == 0) {
            return Err(Error::new(format!(
                "parameter {} has odd size {size}",
                p.name
            )));
        }
        let align = size.min(WORD_BITS);
        used = used.div_ceil(align) * align;
        out.push((used, size));
        used += size;
    }
    Ok(out)
}

fn mask(bits: u32) -> String {
    format!("{:#x}", (1u128 << bits) - 1)
}

/// Rust source for one stub; `label` is its generated constant path.
fn stub(m: &Method, label: &str, max_mrs: usize) -> Result<String> {
    let caps: Vec<&Param> = m
        .inputs
        .iter()
        .skip(1)
        .filter(|p| p.ty.kind == Kind::Cap)
        .collect();
    let plain: Vec<&Param> = m.inputs.iter().filter(|p| p.ty.kind != Kind::Cap).collect();
    let mut words: Vec<Vec<String>> = Vec::new();
    for (p, (first, bits)) in plain.iter().zip(positions(&plain)?) {
        let (w, off) = ((first / WORD_BITS) as usize, first % WORD_BITS);
        let need = w + (bits.div_ceil(WORD_BITS) as usize).max(1);
        if words.len() < need {
            words.resize(need, Vec::new());
        }
        let n = &p.name;
        match &p.ty.kind {
            Kind::Struct { members } => {
                for (i, mem) in members.iter().enumerate() {
                    if let Some(slot) = words.get_mut(w + i) {
                        slot.push(format!("{n}.{mem}"));
                    }
                }
            }
            kind => {
                let e = match kind {
                    Kind::BitField => format!("{n}.words[0]"),
                    Kind::Int { rust: "i32", .. } => format!("({n} as u32 as seL4_Word)"),
                    Kind::Int {
                        rust: "seL4_Word", ..
                    } => n.clone(),
                    _ => format!("({n} as seL4_Word)"),
                };
                let e = if bits < WORD_BITS {
                    format!("{e} & {}", mask(bits))
                } else {
                    e
                };
                let e = if off > 0 {
                    format!("({e}) << {off}")
                } else {
                    e
                };
                if let Some(slot) = words.get_mut(w) {
                    slot.push(e);
                }
            }
        }
    }
    if words.len() > max_mrs || caps.len() > 3 {
        return Err(Error::new(format!(
            "{}_{}: message too long",
            m.interface, m.name
        )));
    }

    // Signature.
    let mut args: Vec<String> = m
        .inputs
        .iter()
        .map(|p| match p.ty.kind {
            Kind::Struct { .. } => format!("{}: &{}", p.name, p.ty.rust()),
            _ => format!("{}: {}", p.name, p.ty.rust()),
        })
        .collect();
    let by_ref_out: Vec<&Param> = m
        .outputs
        .iter()
        .filter(|p| matches!(p.ty.kind, Kind::Struct { .. }))
        .collect();
    args.extend(
        by_ref_out
            .iter()
            .map(|p| format!("{}: &mut {}", p.name, p.ty.rust())),
    );
    let by_val_out: Vec<&Param> = m
        .outputs
        .iter()
        .filter(|p| !matches!(p.ty.kind, Kind::Struct { .. }))
        .collect();
    let fname = format!("{}_{}", m.interface, m.name);
    let ret = if by_val_out.is_empty() {
        "()".to_string()
    } else {
        format!("{fname}_t")
    };

    let mut s = String::new();
    if !by_val_out.is_empty() {
        let _ = writeln!(s, "/// What `{fname}` returns.\n#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]\npub struct {fname}_t {{");
        for p in &by_val_out {
            let _ = writeln!(s, "    pub {}: {},", p.name, p.ty.rust());
        }
        s.push_str("}\n\n");
    }
    let _ = writeln!(
        s,
        "/// Invokes `{fname}` (label `{}`).\n///\n/// # Safety\n/// The calling thread's IPC buffer must be set up, and the invocation must not\n/// change memory this program relies on (for example by remapping its own pages).\n#[inline]\npub unsafe fn {fname}({}) -> Result<{ret}, Error> {{",
        m.label,
        args.join(", ")
    );
    let _ = writeln!(s, "    let mut tag = seL4_MessageInfo_t::default();");
    let _ = writeln!(s, "    tag.set_label({label});");
    let _ = writeln!(s, "    tag.set_extraCaps({});", caps.len());
    let _ = writeln!(s, "    tag.set_length({});", words.len());
    for (i, c) in caps.iter().enumerate() {
        let _ = writeln!(s, "    // SAFETY: the caller guarantees a valid IPC buffer.\n    unsafe {{ seL4_SetCap({i}, {}) }};", c.name);
    }
    let join = |w: Option<&Vec<String>>| match w.map(Vec::as_slice) {
        None | Some([]) => "0".to_string(),
        Some([one]) => one.clone(),
        Some(many) => many
            .iter()
            .map(|e| format!("({e})"))
            .collect::<Vec<_>>()
            .join(" | "),
    };
    for i in 0..REGISTER_MRS {
        let _ = writeln!(s, "    let mut mr{i}: seL4_Word = {};", join(words.get(i)));
    }
    for (i, w) in words.iter().enumerate().skip(REGISTER_MRS) {
        let e = join(Some(w));
        let _ = writeln!(s, "    // SAFETY: the caller guarantees a valid IPC buffer.\n    unsafe {{ seL4_SetMR({i}, {e}) }};");
    }
    let _ = writeln!(s, "    // SAFETY: the caller guarantees a valid IPC buffer.\n    let out = unsafe {{ seL4_CallWithMRs(_service, tag, &mut mr0, &mut mr1, &mut mr2, &mut mr3) }};");
    let _ = writeln!(s, "    let error = out.get_label();");
    let _ = writeln!(s, "    if error != 0 {{");
    for i in 0..REGISTER_MRS {
        let _ = writeln!(
            s,
            "        // SAFETY: as above.\n        unsafe {{ seL4_SetMR({i}, mr{i}) }};"
        );
    }
    let _ = writeln!(s, "        return Err(Error::from_code(error));\n    }}");
    // Unmarshal outputs.
    let outs: Vec<&Param> = m.outputs.iter().collect();
    let read = |w: usize| -> String {
        if w < REGISTER_MRS {
            format!("mr{w}")
        } else {
            format!("unsafe {{ seL4_GetMR({w}) }}")
        }
    };
    let mut fields = Vec::new();
    for (p, (first, bits)) in outs.iter().zip(positions(&outs)?) {
        let (w, off) = ((first / WORD_BITS) as usize, first % WORD_BITS);
        match &p.ty.kind {
            Kind::Struct { members } => {
                for (i, mem) in members.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "    // SAFETY: as above.\n    {}.{mem} = {};",
                        p.name,
                        read(w + i)
                    );
                }
            }
            kind => {
                let raw = if bits < WORD_BITS {
                    format!("(({} >> {off}) & {})", read(w), mask(bits))
                } else {
                    read(w)
                };
                let v = match kind {
                    Kind::Int { bits: 1, .. } => format!("{raw} != 0"),
                    Kind::BitField => format!("{} {{ words: [{raw}] }}", p.ty.rust()),
                    Kind::Int {
                        rust: "seL4_Word", ..
                    } => raw,
                    Kind::Int { rust, .. } => format!("{raw} as {rust}"),
                    _ => raw,
                };
                fields.push(format!("{}: {v}", p.name));
            }
        }
    }
    if fields.is_empty() {
        let _ = writeln!(s, "    let _ = (mr0, mr1, mr2, mr3);\n    Ok(())\n}}\n");
    } else {
        let _ = writeln!(s, "    Ok({fname}_t {{ {} }})\n}}\n", fields.join(", "));
    }
    Ok(s)
}

/// Labels for one file: `(name, value)` pairs starting at `first`, ending with
/// the file's count label (`count_name`).
pub fn labels(file: &InterfaceFile, first: i128, count_name: &str) -> Vec<(String, i128)> {
    let mut v: Vec<(String, i128)> = file
        .methods
        .iter()
        .enumerate()
        .map(|(i, m)| (m.label.clone(), first + i as i128))
        .collect();
    v.push((count_name.to_string(), first + file.methods.len() as i128));
    v
}

pub fn stubs(file: &InterfaceFile, max_mrs: usize) -> Result<String> {
    let mut s = String::new();
    for (name, members) in &file.structs {
        let _ = writeln!(
            s,
            "/// The `{name}` struct of the interface files.\n#[repr(C)]\n#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]\npub struct {name} {{"
        );
        for m in members {
            let _ = writeln!(s, "    pub {m}: seL4_Word,");
        }
        s.push_str("}\n\n");
    }
    for m in &file.methods {
        s.push_str(&stub(m, &format!("invocation::{}", m.label), max_mrs)?);
    }
    Ok(s)
}

/// Syscall numbers: API calls count down from -1, then the debug calls.
/// Numbers are fixed whatever the configuration; a disabled call is left out.
pub fn syscalls(xml: &str, config: &dyn Env) -> Result<Vec<(String, i128)>> {
    let doc =
        roxmltree::Document::parse(xml).map_err(|e| Error::new(format!("syscall XML: {e}")))?;
    let mut n: i128 = 0;
    let mut out = Vec::new();
    for group in doc.descendants().filter(|n| n.has_tag_name("config")) {
        let enabled = match group.attribute("condition") {
            Some(c) => cexpr::condition(c, config)?,
            None => true,
        };
        for sc in group.children().filter(|c| c.has_tag_name("syscall")) {
            n -= 1;
            if enabled {
                let name = sc
                    .attribute("name")
                    .ok_or_else(|| Error::new("syscall without name"))?;
                out.push((format!("Sys{name}"), n));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Symbols;

    const XML: &str = r#"<api>
      <struct name="Ctx"><member name="a"/><member name="b"/></struct>
      <interface name="seL4_TCB">
        <method id="TCBWrite" name="Write">
          <param dir="in" name="resume" type="seL4_Bool"/>
          <param dir="in" name="flags" type="seL4_Uint8"/>
          <param dir="in" name="count" type="seL4_Word"/>
          <param dir="in" name="regs" type="Ctx"/>
        </method>
        <method id="TCBMulti" name="Multi" condition="CONFIG_MAX_NUM_NODES > 1">
          <param dir="in" name="x" type="seL4_Word"/>
        </method>
        <method id="TCBCaps" name="Caps">
          <param dir="in" name="cnode" type="seL4_CNode"/>
          <param dir="in" name="index" type="seL4_Word"/>
          <param dir="in" name="depth" type="seL4_Uint8"/>
          <param dir="out" name="result" type="seL4_Uint16"/>
        </method>
      </interface>
    </api>"#;

    #[test]
    fn disabled_methods_take_no_label() {
        let cfg = Symbols::config("#define CONFIG_MAX_NUM_NODES 1\n").unwrap();
        let f = parse_interfaces(XML, &cfg, &structs(XML).unwrap()).unwrap();
        let l = labels(&f, 1, "nLabels");
        assert_eq!(
            l,
            [
                ("TCBWrite".into(), 1),
                ("TCBCaps".into(), 2),
                ("nLabels".into(), 3)
            ]
        );
    }

    #[test]
    fn packing_follows_libsel4() {
        let cfg = Symbols::config("").unwrap();
        let f = parse_interfaces(XML, &cfg, &structs(XML).unwrap()).unwrap();
        let code = stubs(&f, 120).unwrap();
        // bool at bit 0, u8 aligned to bit 8, word in MR1, struct in MR2..3.
        assert!(code.contains("let mut mr0: seL4_Word = ((resume as seL4_Word) & 0x1) | (((flags as seL4_Word) & 0xff) << 8);"));
        assert!(code.contains("let mut mr1: seL4_Word = count;"));
        assert!(code.contains("let mut mr2: seL4_Word = regs.a;"));
        assert!(code.contains("let mut mr3: seL4_Word = regs.b;"));
        assert!(code.contains("tag.set_length(4);"));
        // The cap goes as extra cap 0, not in a message word.
        assert!(code.contains("seL4_SetCap(0, cnode)"));
        assert!(code.contains("tag.set_extraCaps(1);"));
        assert!(code.contains("result: ((mr0 >> 0) & 0xffff) as u16"));
        assert!(code.contains("pub struct Ctx {"));
        assert!(stubs(&f, 3).is_err(), "four words do not fit in three");
    }

    #[test]
    fn syscall_numbers_skip_nothing() {
        let xml = r#"<syscalls><api><config><syscall name="Call"/><syscall name="Send"/></config></api>
          <debug><config condition="defined CONFIG_NOPE"><syscall name="A"/></config>
          <config condition="defined CONFIG_YES"><syscall name="B"/></config></debug></syscalls>"#;
        let cfg = Symbols::config("#define CONFIG_YES 1\n").unwrap();
        let s = syscalls(xml, &cfg).unwrap();
        assert_eq!(
            s,
            [
                ("SysCall".into(), -1),
                ("SysSend".into(), -2),
                ("SysB".into(), -4)
            ]
        );
    }
}
