//! A small evaluator for the integer C expressions found in `#if` lines, XML
//! `condition` attributes and `#define`/enum values of the seL4 headers.

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(i128),
    Ident(String),
    Op(&'static str),
}

const OPS: [&str; 24] = [
    "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "(", ")", "!", "~", "*", "/", "%", "+", "-",
    "<", ">", "&", "^", "|", "?", ":",
];

fn lex(s: &str) -> Result<Vec<Tok>> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while b.get(i).is_some_and(|c| c.is_ascii_alphanumeric()) {
                i += 1;
            }
            let lit = s.get(start..i).unwrap_or_default();
            let digits = lit.trim_end_matches(['u', 'U', 'l', 'L']);
            let v = if let Some(h) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
                i128::from_str_radix(h, 16)
            } else {
                digits.parse::<i128>()
            }
            .map_err(|_| Error::new(format!("bad number `{lit}` in `{s}`")))?;
            out.push(Tok::Num(v));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while b
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                i += 1;
            }
            out.push(Tok::Ident(s.get(start..i).unwrap_or_default().to_string()));
        } else {
            let rest = s.get(i..).unwrap_or_default();
            let op = OPS
                .iter()
                .find(|op| rest.starts_with(**op))
                .ok_or_else(|| Error::new(format!("unexpected `{}` in `{s}`", c as char)))?;
            out.push(Tok::Op(op));
            i += op.len();
        }
    }
    Ok(out)
}

/// How identifiers are resolved.
pub trait Env {
    /// The value of a macro or constant, if it has one.
    fn value(&self, name: &str) -> Option<i128>;
    /// Whether a macro is defined (for `defined X`).
    fn defined(&self, name: &str) -> bool;
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    env: &'a dyn Env,
    /// In `#if` lines an unknown identifier is 0; in values it is an error.
    unknown_is_zero: bool,
    src: &'a str,
}

fn binary_prec(op: &str) -> Option<u8> {
    Some(match op {
        "||" => 1,
        "&&" => 2,
        "|" => 3,
        "^" => 4,
        "&" => 5,
        "==" | "!=" => 6,
        "<" | ">" | "<=" | ">=" => 7,
        "<<" | ">>" => 8,
        "+" | "-" => 9,
        "*" | "/" | "%" => 10,
        _ => return None,
    })
}

impl Parser<'_> {
    fn err(&self, what: &str) -> Error {
        Error::new(format!("{what} in expression `{}`", self.src))
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, op: &str) -> Result<()> {
        match self.next() {
            Some(Tok::Op(o)) if o == op => Ok(()),
            _ => Err(self.err(&format!("expected `{op}`"))),
        }
    }

    fn ternary(&mut self) -> Result<i128> {
        let c = self.binary(1)?;
        if self.peek() == Some(&Tok::Op("?")) {
            self.pos += 1;
            let a = self.ternary()?;
            self.expect(":")?;
            let b = self.ternary()?;
            return Ok(if c != 0 { a } else { b });
        }
        Ok(c)
    }

    fn binary(&mut self, min: u8) -> Result<i128> {
        let mut lhs = self.unary()?;
        while let Some(Tok::Op(op)) = self.peek() {
            let op = *op;
            let Some(prec) = binary_prec(op) else { break };
            if prec < min {
                break;
            }
            self.pos += 1;
            let rhs = self.binary(prec + 1)?;
            lhs = match op {
                "||" => i128::from(lhs != 0 || rhs != 0),
                "&&" => i128::from(lhs != 0 && rhs != 0),
                "|" => lhs | rhs,
                "^" => lhs ^ rhs,
                "&" => lhs & rhs,
                "==" => i128::from(lhs == rhs),
                "!=" => i128::from(lhs != rhs),
                "<" => i128::from(lhs < rhs),
                ">" => i128::from(lhs > rhs),
                "<=" => i128::from(lhs <= rhs),
                ">=" => i128::from(lhs >= rhs),
                "<<" => u32::try_from(rhs)
                    .ok()
                    .and_then(|r| lhs.checked_shl(r))
                    .ok_or_else(|| self.err("shift out of range"))?,
                ">>" => u32::try_from(rhs)
                    .ok()
                    .and_then(|r| lhs.checked_shr(r))
                    .ok_or_else(|| self.err("shift out of range"))?,
                "+" => lhs.checked_add(rhs).ok_or_else(|| self.err("overflow"))?,
                "-" => lhs.checked_sub(rhs).ok_or_else(|| self.err("overflow"))?,
                "*" => lhs.checked_mul(rhs).ok_or_else(|| self.err("overflow"))?,
                "/" => lhs
                    .checked_div(rhs)
                    .ok_or_else(|| self.err("division by zero"))?,
                "%" => lhs
                    .checked_rem(rhs)
                    .ok_or_else(|| self.err("division by zero"))?,
                _ => return Err(self.err("unknown operator")),
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<i128> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(n),
            Some(Tok::Op("(")) => {
                let v = self.ternary()?;
                self.expect(")")?;
                Ok(v)
            }
            Some(Tok::Op("!")) => Ok(i128::from(self.unary()? == 0)),
            Some(Tok::Op("~")) => Ok(!self.unary()?),
            Some(Tok::Op("-")) => Ok(-self.unary()?),
            Some(Tok::Op("+")) => self.unary(),
            Some(Tok::Ident(id)) if id == "defined" => {
                let paren = self.peek() == Some(&Tok::Op("("));
                if paren {
                    self.pos += 1;
                }
                let name = match self.next() {
                    Some(Tok::Ident(n)) => n,
                    _ => return Err(self.err("expected a name after `defined`")),
                };
                if paren {
                    self.expect(")")?;
                }
                Ok(i128::from(self.env.defined(&name)))
            }
            Some(Tok::Ident(id)) => match self.env.value(&id) {
                Some(v) => Ok(v),
                None if self.unknown_is_zero => Ok(0),
                None => Err(self.err(&format!("unknown name `{id}`"))),
            },
            _ => Err(self.err("unexpected end or token")),
        }
    }
}

fn run(src: &str, env: &dyn Env, unknown_is_zero: bool) -> Result<i128> {
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
        env,
        unknown_is_zero,
        src,
    };
    let v = p.ternary()?;
    if p.pos != p.toks.len() {
        return Err(p.err("trailing tokens"));
    }
    Ok(v)
}

/// Evaluates a preprocessor condition: unknown names are 0, as in C.
pub fn condition(src: &str, env: &dyn Env) -> Result<bool> {
    Ok(run(src, env, true)? != 0)
}

/// Evaluates a value expression: every name must be known.
pub fn value(src: &str, env: &dyn Env) -> Result<i128> {
    run(src, env, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Map(BTreeMap<&'static str, i128>);
    impl Env for Map {
        fn value(&self, name: &str) -> Option<i128> {
            self.0.get(name).copied()
        }
        fn defined(&self, name: &str) -> bool {
            self.0.contains_key(name)
        }
    }

    fn env() -> Map {
        Map(BTreeMap::from([
            ("CONFIG_MAX_NUM_NODES", 1),
            ("CONFIG_X", 1),
            ("TWO", 2),
        ]))
    }

    #[test]
    fn conditions_follow_c() {
        let e = env();
        assert!(!condition("CONFIG_MAX_NUM_NODES > 1", &e).unwrap_or(true));
        assert!(condition("defined(CONFIG_X)", &e).unwrap_or(false));
        assert!(condition("defined CONFIG_X && !defined(CONFIG_Y)", &e).unwrap_or(false));
        assert!(!condition("CONFIG_UNKNOWN", &e).unwrap_or(true));
        assert!(condition("CONFIG_Y || TWO == 2", &e).unwrap_or(false));
    }

    #[test]
    fn values_follow_c() {
        let e = env();
        assert_eq!(value("((7 << 3) | 3)", &e).ok(), Some(59));
        assert_eq!(value("0x20 + 16", &e).ok(), Some(48));
        assert_eq!(value("TWO * 3 - 1", &e).ok(), Some(5));
        assert_eq!(value("1ul << 4", &e).ok(), Some(16));
        assert_eq!(value("-1", &e).ok(), Some(-1));
        assert_eq!(value("TWO > 1 ? 10 : 20", &e).ok(), Some(10));
        assert!(value("NOPE + 1", &e).is_err());
        assert!(value("(1", &e).is_err());
        assert!(value("1 / 0", &e).is_err());
    }
}
