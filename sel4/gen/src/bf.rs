//! Bitfield specifications (`.bf` files) and the Rust types generated from them.
//!
//! In a `.bf` block, fields are listed from the most significant bit of the
//! block downwards; a block is a whole number of `base`-bit words, word 0 the
//! least significant.

use crate::{Error, Result};
use std::fmt::Write;

/// One named field: its width and where its lowest bit lies in the block.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub bits: u32,
    pub offset: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub name: String,
    pub size_bits: u32,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaggedUnion {
    pub name: String,
    pub tag_field: String,
    pub tags: Vec<(String, u64)>,
}

#[derive(Debug, Default)]
pub struct Spec {
    pub base: u32,
    pub blocks: Vec<Block>,
    pub unions: Vec<TaggedUnion>,
}

pub fn parse(text: &str) -> Result<Spec> {
    let mut spec = Spec::default();
    let mut toks = text
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .flat_map(|l| l.split_whitespace().flat_map(split_braces))
        .peekable();
    let num = |t: Option<String>| -> Result<u32> {
        t.as_deref()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| Error::new(format!("bitfield: expected a number, got {t:?}")))
    };
    while let Some(t) = toks.next() {
        match t.as_str() {
            "base" => spec.base = num(toks.next())?,
            "block" => {
                let name = toks
                    .next()
                    .ok_or_else(|| Error::new("bitfield: block name"))?;
                if toks.next().as_deref() != Some("{") {
                    return Err(Error::new(format!("bitfield: `{{` after block {name}")));
                }
                let mut raw: Vec<(Option<String>, u32)> = Vec::new();
                loop {
                    match toks.next().as_deref() {
                        Some("}") => break,
                        Some("padding") => raw.push((None, num(toks.next())?)),
                        Some("field") | Some("field_high") => {
                            let f = toks
                                .next()
                                .ok_or_else(|| Error::new("bitfield: field name"))?;
                            raw.push((Some(f), num(toks.next())?));
                        }
                        other => {
                            return Err(Error::new(format!(
                                "bitfield: unexpected {other:?} in {name}"
                            )))
                        }
                    }
                }
                let size_bits: u32 = raw.iter().map(|(_, b)| b).sum();
                if spec.base == 0 || !size_bits.is_multiple_of(spec.base) {
                    return Err(Error::new(format!(
                        "bitfield: block {name} is {size_bits} bits"
                    )));
                }
                let mut top = size_bits;
                let mut fields = Vec::new();
                for (f, bits) in raw {
                    top -= bits;
                    if let Some(f) = f {
                        if top / spec.base != (top + bits - 1) / spec.base {
                            return Err(Error::new(format!("bitfield: {name}.{f} spans words")));
                        }
                        fields.push(Field {
                            name: f,
                            bits,
                            offset: top,
                        });
                    }
                }
                spec.blocks.push(Block {
                    name,
                    size_bits,
                    fields,
                });
            }
            "tagged_union" => {
                let name = toks
                    .next()
                    .ok_or_else(|| Error::new("bitfield: union name"))?;
                let tag_field = toks
                    .next()
                    .ok_or_else(|| Error::new("bitfield: tag field"))?;
                if toks.next().as_deref() != Some("{") {
                    return Err(Error::new(format!("bitfield: `{{` after union {name}")));
                }
                let mut tags = Vec::new();
                loop {
                    match toks.next().as_deref() {
                        Some("}") => break,
                        Some("tag") => {
                            let t = toks
                                .next()
                                .ok_or_else(|| Error::new("bitfield: tag name"))?;
                            tags.push((t, u64::from(num(toks.next())?)));
                        }
                        other => {
                            return Err(Error::new(format!(
                                "bitfield: unexpected {other:?} in {name}"
                            )))
                        }
                    }
                }
                spec.unions.push(TaggedUnion {
                    name,
                    tag_field,
                    tags,
                });
            }
            other => return Err(Error::new(format!("bitfield: unexpected `{other}`"))),
        }
    }
    Ok(spec)
}

/// The named `block`s of a larger `.bf` file (such as the kernel's own
/// structure definitions, which use features this parser does not need),
/// as a base-64 specification of their own.
pub fn extract_blocks(text: &str, names: &[&str]) -> Result<Spec> {
    let mut src = String::from("base 64\n");
    for name in names {
        let start = text
            .find(&format!("block {name} {{"))
            .ok_or_else(|| Error::new(format!("bitfield: block {name} not found")))?;
        let rest = text.get(start..).unwrap_or_default();
        let end = rest
            .find('}')
            .ok_or_else(|| Error::new(format!("bitfield: block {name} unterminated")))?;
        src.push_str(rest.get(..=end).unwrap_or_default());
        src.push('\n');
    }
    parse(&src)
}

fn split_braces(w: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in w.chars() {
        if c == '{' || c == '}' {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            out.push(c.to_string());
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn emit_accessors(out: &mut String, spec: &Spec, prefix: &str, fields: &[Field]) {
    for f in fields {
        let (w, off, m) = (f.offset / spec.base, f.offset % spec.base, mask(f.bits));
        let _ = writeln!(
            out,
            "    #[inline]\n    pub const fn {prefix}get_{n}(&self) -> seL4_Word {{ (self.words[{w}] >> {off}) & {m:#x} }}",
            n = f.name
        );
        let _ = writeln!(
            out,
            "    #[inline]\n    pub fn {prefix}set_{n}(&mut self, v: seL4_Word) {{ self.words[{w}] = (self.words[{w}] & !({m:#x} << {off})) | ((v & {m:#x}) << {off}); }}",
            n = f.name
        );
    }
}

fn emit_new(
    out: &mut String,
    spec: &Spec,
    fn_name: &str,
    fields: &[Field],
    fixed: Option<(&Field, u64)>,
    words: u32,
) {
    let args: Vec<String> = fields
        .iter()
        .map(|f| format!("{}: seL4_Word", f.name))
        .collect();
    let _ = writeln!(
        out,
        "    #[inline]\n    pub const fn {fn_name}({}) -> Self {{",
        args.join(", ")
    );
    let _ = writeln!(out, "        let mut words = [0 as seL4_Word; {words}];");
    for f in fields {
        let (w, off, m) = (f.offset / spec.base, f.offset % spec.base, mask(f.bits));
        let _ = writeln!(out, "        words[{w}] |= ({} & {m:#x}) << {off};", f.name);
    }
    if let Some((f, v)) = fixed {
        let (w, off, m) = (f.offset / spec.base, f.offset % spec.base, mask(f.bits));
        if v & m != 0 {
            let _ = writeln!(out, "        words[{w}] |= {:#x};", (v & m) << off);
        }
    }
    let _ = writeln!(out, "        Self {{ words }}\n    }}");
}

/// Rust types for every block that is not part of a tagged union, and for
/// every tagged union. Type names follow libsel4: `<name>_t`.
pub fn generate(spec: &Spec) -> Result<String> {
    let mut out = String::new();
    let in_union = |b: &Block| {
        spec.unions
            .iter()
            .any(|u| u.tags.iter().any(|(t, _)| *t == b.name))
    };
    for b in spec.blocks.iter().filter(|b| !in_union(b)) {
        let words = b.size_bits / spec.base;
        let _ = writeln!(
            out,
            "/// The `{n}` bitfield block.\n#[repr(C)]\n#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]\npub struct {n}_t {{\n    pub words: [seL4_Word; {words}],\n}}\n\nimpl {n}_t {{",
            n = b.name
        );
        emit_new(&mut out, spec, "new", &b.fields, None, words);
        emit_accessors(&mut out, spec, "", &b.fields);
        out.push_str("}\n\n");
    }
    for u in &spec.unions {
        let blocks: Vec<&Block> = u
            .tags
            .iter()
            .map(|(t, _)| {
                spec.blocks
                    .iter()
                    .find(|b| b.name == *t)
                    .ok_or_else(|| Error::new(format!("bitfield: tag {t} has no block")))
            })
            .collect::<Result<_>>()?;
        let words = blocks.first().map_or(1, |b| b.size_bits / spec.base);
        let _ = writeln!(
            out,
            "/// The `{n}` tagged union.\n#[repr(C)]\n#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]\npub struct {n}_t {{\n    pub words: [seL4_Word; {words}],\n}}\n\nimpl {n}_t {{",
            n = u.name
        );
        for (b, (tag, tag_val)) in blocks.iter().zip(&u.tags) {
            let tag_field = b
                .fields
                .iter()
                .find(|f| f.name == u.tag_field)
                .ok_or_else(|| Error::new(format!("bitfield: {tag} lacks {}", u.tag_field)))?;
            let others: Vec<Field> = b
                .fields
                .iter()
                .filter(|f| f.name != u.tag_field)
                .cloned()
                .collect();
            emit_new(
                &mut out,
                spec,
                &format!("{tag}_new"),
                &others,
                Some((tag_field, *tag_val)),
                words,
            );
            emit_accessors(&mut out, spec, &format!("{tag}_"), &others);
            let _ = writeln!(
                out,
                "    pub const {tag_up}_TAG: seL4_Word = {tag_val};",
                tag_up = tag.to_uppercase()
            );
        }
        if let Some(first) = blocks.first() {
            if let Some(f) = first.fields.iter().find(|f| f.name == u.tag_field) {
                let (w, off, m) = (f.offset / spec.base, f.offset % spec.base, mask(f.bits));
                let _ = writeln!(
                    out,
                    "    #[inline]\n    pub const fn get_{t}(&self) -> seL4_Word {{ (self.words[{w}] >> {off}) & {m:#x} }}",
                    t = u.tag_field
                );
            }
        }
        out.push_str("}\n\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSGINFO: &str = "base 64\nblock seL4_MessageInfo {\n padding 32\n field label 20\n field capsUnwrapped 3\n field extraCaps 2\n field length 7\n}\n";

    #[test]
    fn fields_are_laid_out_from_the_top() {
        let s = parse(MSGINFO).unwrap();
        let b = &s.blocks[0];
        let off: Vec<_> = b
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.offset, f.bits))
            .collect();
        assert_eq!(
            off,
            [
                ("label", 12, 20),
                ("capsUnwrapped", 9, 3),
                ("extraCaps", 7, 2),
                ("length", 0, 7)
            ]
        );
    }

    #[test]
    fn tagged_unions_and_errors() {
        let src = "-- c\nbase 64\nblock Badge {\n padding 32\n field CapDataType 1\n padding 3\n field Badge 28\n}\ntagged_union seL4_CapData CapDataType {\n tag Badge 0\n}\n";
        let s = parse(src).unwrap();
        assert_eq!(s.unions[0].tags, [("Badge".to_string(), 0)]);
        let code = generate(&s).unwrap();
        assert!(code.contains("pub const fn Badge_new(Badge: seL4_Word)"));
        assert!(
            parse("base 64\nblock X {\n field a 3\n}\n").is_err(),
            "3 bits is not a word"
        );
        assert!(parse("base 64\nblock X {\n field a 60\n field b 8\n padding 60\n}\n").is_err());
    }
}
