//! Reads constants out of C headers and configuration files: `#define NAME VALUE`
//! lines and enumerators, under `#if`/`#ifdef` evaluated against the kernel
//! configuration. Just enough of a preprocessor for libsel4's headers.

use crate::cexpr::{self, Env};
use crate::{Error, Result};
use std::collections::BTreeMap;

/// Names with integer values, in the order they were found.
#[derive(Debug, Default, Clone)]
pub struct Symbols {
    /// Every `#define`d name (integer or not), for `defined X`.
    defined: BTreeMap<String, Option<i128>>,
    /// Integer constants in definition order (defines and enumerators).
    pub constants: Vec<(String, i128)>,
}

impl Env for Symbols {
    fn value(&self, name: &str) -> Option<i128> {
        self.defined.get(name).copied().flatten()
    }
    fn defined(&self, name: &str) -> bool {
        self.defined.contains_key(name)
    }
}

impl Symbols {
    /// Reads a configuration header (`autoconf.h`): every `#define` is recorded.
    pub fn config(text: &str) -> Result<Self> {
        let mut s = Symbols::default();
        for line in text.lines() {
            if let Some((name, val)) = parse_define(line) {
                let v = cexpr::value(val, &s).ok();
                s.defined.insert(name.to_string(), v);
            }
        }
        Ok(s)
    }

    /// Whether a configuration option is set to a non-zero value.
    pub fn enabled(&self, name: &str) -> bool {
        self.value(name).is_some_and(|v| v != 0)
    }

    fn add(&mut self, name: &str, v: i128) {
        self.defined.insert(name.to_string(), Some(v));
        self.constants.push((name.to_string(), v));
    }

    /// Reads constants from one header. Only names accepted by `keep` become
    /// constants; conditions see the configuration and earlier constants.
    pub fn read_header(&mut self, text: &str, keep: &dyn Fn(&str) -> bool) -> Result<()> {
        let text = strip_comments(text);
        // Stack of (this branch active, some branch taken) for #if nesting.
        let mut stack: Vec<(bool, bool)> = Vec::new();
        let active = |st: &Vec<(bool, bool)>| st.iter().all(|(a, _)| *a);
        let mut enum_body: Option<String> = None;
        for raw in text.lines() {
            let line = raw.trim();
            if let Some(d) = line.strip_prefix('#') {
                let d = d.trim_start();
                let (kw, rest) = d.split_once(char::is_whitespace).unwrap_or((d, ""));
                let rest = rest.trim();
                match kw {
                    "if" => {
                        let c = active(&stack) && cexpr::condition(rest, self)?;
                        stack.push((c, c));
                    }
                    "ifdef" => {
                        let c = self.defined(rest);
                        stack.push((c, c));
                    }
                    "ifndef" => {
                        let c = !self.defined(rest);
                        stack.push((c, c));
                    }
                    "elif" => {
                        let top = stack.pop().ok_or_else(|| Error::new("#elif without #if"))?;
                        let c = !top.1 && cexpr::condition(rest, self)?;
                        stack.push((c, top.1 || c));
                    }
                    "else" => {
                        let top = stack.pop().ok_or_else(|| Error::new("#else without #if"))?;
                        stack.push((!top.1, true));
                    }
                    "endif" => {
                        stack
                            .pop()
                            .ok_or_else(|| Error::new("#endif without #if"))?;
                    }
                    "define" if active(&stack) => {
                        if let Some((name, val)) = parse_define(line) {
                            match cexpr::value(val, self) {
                                Ok(v) if keep(name) => self.add(name, v),
                                Ok(v) => {
                                    self.defined.insert(name.to_string(), Some(v));
                                }
                                Err(_) => {
                                    self.defined.insert(name.to_string(), None);
                                }
                            }
                        }
                    }
                    _ => {}
                }
                continue;
            }
            if !active(&stack) {
                continue;
            }
            if let Some(body) = enum_body.as_mut() {
                body.push_str(line);
                body.push('\n');
                if line.contains('}') {
                    let body = enum_body.take().unwrap_or_default();
                    self.read_enum(&body, keep)?;
                }
            } else if line.starts_with("enum") || line.starts_with("typedef enum") {
                if let Some((_, after)) = line.split_once('{') {
                    if after.contains('}') {
                        self.read_enum(after, keep)?;
                    } else {
                        enum_body = Some(format!("{after}\n"));
                    }
                } else {
                    enum_body = Some(String::new());
                }
            }
        }
        if !stack.is_empty() {
            return Err(Error::new("unterminated #if"));
        }
        Ok(())
    }

    /// Enumerators between `{` and `}`: `A = expr,` or `A,` counting on.
    fn read_enum(&mut self, body: &str, keep: &dyn Fn(&str) -> bool) -> Result<()> {
        let body = body.split('}').next().unwrap_or_default();
        let body = body.split_once('{').map_or(body, |(_, b)| b);
        let mut next: i128 = 0;
        for item in body.split(',') {
            let item = item.trim();
            if item.is_empty() || item.starts_with("SEL4_FORCE_LONG_ENUM") {
                continue;
            }
            let (name, v) = match item.split_once('=') {
                Some((n, e)) => (n.trim(), cexpr::value(e.trim(), self)?),
                None => (item, next),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::new(format!("unexpected enumerator `{item}`")));
            }
            if keep(name) {
                self.add(name, v);
            } else {
                self.defined.insert(name.to_string(), Some(v));
            }
            next = v + 1;
        }
        Ok(())
    }

    /// The value of a constant read so far.
    pub fn get(&self, name: &str) -> Option<i128> {
        self.value(name)
    }
}

/// `#define NAME VALUE` (object-like macros only).
fn parse_define(line: &str) -> Option<(&str, &str)> {
    let rest = line
        .trim()
        .strip_prefix('#')?
        .trim_start()
        .strip_prefix("define")?;
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let (name, val) = rest.split_at(end);
    if val.starts_with('(') || name.is_empty() {
        return None; // function-like macro
    }
    Some((name, val.trim()))
}

/// Removes `/* */` and `//` comments, keeping line structure.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                out.push_str(rest.get(..b).unwrap_or_default());
                let after = rest.get(b + 2..).unwrap_or_default();
                let end = after.find("*/").map_or(after.len(), |e| e + 2);
                let comment = after.get(..end).unwrap_or_default();
                out.extend(comment.chars().filter(|c| *c == '\n'));
                rest = after.get(end..).unwrap_or_default();
            }
            (_, Some(l)) => {
                out.push_str(rest.get(..l).unwrap_or_default());
                let after = rest.get(l..).unwrap_or_default();
                let end = after.find('\n').unwrap_or(after.len());
                rest = after.get(end..).unwrap_or_default();
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_and_defines_under_conditions() {
        let mut s = Symbols::config("#define CONFIG_IOMMU 1\n#define CONFIG_NUM 4\n").unwrap();
        let hdr = "
            /* comment */
            #define seL4_PageBits 12 // bits
            #ifndef __X_H
            typedef enum api_object {
                seL4_A,
                seL4_B,
                seL4_NonArchCount,
            } t;
            enum { seL4_C = seL4_NonArchCount,
            #ifdef CONFIG_VTX
                seL4_Vtx,
            #endif
            #if defined(CONFIG_IOMMU) && CONFIG_NUM > 2
                seL4_Io,
            #else
                seL4_NoIo,
            #endif
                SEL4_FORCE_LONG_ENUM(x),
            };
            #endif
        ";
        s.read_header(hdr, &|n| n.starts_with("seL4_")).unwrap();
        let got: Vec<_> = s.constants.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        assert_eq!(
            got,
            [
                ("seL4_PageBits", 12),
                ("seL4_A", 0),
                ("seL4_B", 1),
                ("seL4_NonArchCount", 2),
                ("seL4_C", 2),
                ("seL4_Io", 3)
            ]
        );
    }

    #[test]
    fn unbalanced_conditionals_are_errors() {
        let mut s = Symbols::default();
        assert!(s.read_header("#if 1\n", &|_| true).is_err());
        assert!(s.read_header("#endif\n", &|_| true).is_err());
    }
}
