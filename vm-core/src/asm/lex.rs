//! Tokens and numbers of the conformance assembler syntax.
//!
//! Upstream splits a line on whitespace and strips one trailing comma per token, which forbids
//! spaces inside `[...]`. We split on whitespace *and* commas and keep a bracketed operand as
//! one token with its inner whitespace removed: a strict superset that accepts everything
//! upstream accepts and also the common `[%r1 + 8]` spelling.

use std::num::IntErrorKind;

use super::error::AsmErrorKind;
use crate::isa::Reg;

/// Everything before the first `#` or `;` (both start comments).
pub(crate) fn strip_comment(line: &str) -> &str {
    match line.find(['#', ';']) {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Splits an instruction into its mnemonic and operand tokens.
pub(crate) fn tokenize(s: &str) -> Result<Vec<String>, AsmErrorKind> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '[' => {
                cur.push('[');
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' {
                        cur.push(']');
                        closed = true;
                        break;
                    }
                    if !c.is_whitespace() {
                        cur.push(c);
                    }
                }
                if !closed {
                    return Err(AsmErrorKind::UnterminatedBracket(s.trim().to_string()));
                }
            }
            c if c.is_whitespace() || c == ',' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// True when `tok` is spelled like a register (`%…`, or `r` followed by digits), so that a bad
/// register number is reported as such instead of as a bad immediate.
pub(crate) fn looks_like_reg(tok: &str) -> bool {
    if tok.starts_with('%') {
        return true;
    }
    let Some(rest) = tok.strip_prefix('r') else {
        return false;
    };
    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
}

/// `%rN` or `rN` with N in 0..=15 (11..=15 exist only to build invalid encodings).
pub(crate) fn parse_reg(tok: &str) -> Result<Reg, AsmErrorKind> {
    let bad = || AsmErrorKind::BadRegister(tok.to_string());
    let body = tok.strip_prefix('%').unwrap_or(tok);
    let digits = body.strip_prefix('r').ok_or_else(bad)?;
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u8 = digits.parse().map_err(|_| bad())?;
    if n > 15 {
        return Err(bad());
    }
    Ok(n)
}

/// A parsed integer literal: its sign, its magnitude, and whether it was written in hex.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Literal {
    pub neg: bool,
    pub mag: u128,
    pub hex: bool,
}

impl Literal {
    /// The signed value, when it fits an i128 (always, given the u64-sized inputs we accept).
    pub fn value(self) -> i128 {
        let m = self.mag as i128;
        if self.neg { -m } else { m }
    }
}

/// Parses `[+|-](0x<hex>|<decimal>)`. Magnitudes that overflow u128 are reported as out of
/// range, everything else that is not a number as a bad number.
pub(crate) fn parse_literal(tok: &str, range: &'static str) -> Result<Literal, AsmErrorKind> {
    let (neg, body) = match tok.as_bytes().first() {
        Some(b'-') => (true, &tok[1..]),
        Some(b'+') => (false, &tok[1..]),
        _ => (false, tok),
    };
    let (hex, digits) = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(d) => (true, d),
        None => (false, body),
    };
    let radix = if hex { 16 } else { 10 };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(AsmErrorKind::BadNumber(tok.to_string()));
    }
    match u128::from_str_radix(digits, radix) {
        Ok(mag) => Ok(Literal { neg, mag, hex }),
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => Err(AsmErrorKind::ImmOutOfRange {
            value: tok.to_string(),
            range,
        }),
        Err(_) => Err(AsmErrorKind::BadNumber(tok.to_string())),
    }
}

const IMM32_RANGE: &str = "hex up to 0xffffffff, decimal -2147483648..=2147483647";

/// A 32-bit immediate: unsigned hex up to `0xffffffff` is a bit pattern; decimal (and negated
/// hex) must fit i32.
pub(crate) fn parse_imm32(tok: &str) -> Result<i32, AsmErrorKind> {
    let lit = parse_literal(tok, IMM32_RANGE)?;
    let out_of_range = || AsmErrorKind::ImmOutOfRange {
        value: tok.to_string(),
        range: IMM32_RANGE,
    };
    if lit.hex && !lit.neg {
        return u32::try_from(lit.mag)
            .map(|v| v as i32)
            .map_err(|_| out_of_range());
    }
    i32::try_from(lit.value()).map_err(|_| out_of_range())
}

const U32_RANGE: &str = "0..=0xffffffff, or a negative i32 as its bit pattern";

/// A 32-bit field printed unsigned (map value offsets): 0..=u32::MAX, or a negative i32 taken
/// as its bit pattern.
pub(crate) fn parse_u32_field(tok: &str) -> Result<u32, AsmErrorKind> {
    let lit = parse_literal(tok, U32_RANGE)?;
    let v = lit.value();
    if (0..=u32::MAX as i128).contains(&v) {
        Ok(v as u32)
    } else if (i32::MIN as i128..0).contains(&v) {
        Ok(v as i32 as u32)
    } else {
        Err(AsmErrorKind::ImmOutOfRange {
            value: tok.to_string(),
            range: U32_RANGE,
        })
    }
}

const IMM64_RANGE: &str = "hex up to 0xffffffffffffffff, decimal i64 or u64";

/// The 64-bit `lddw` immediate: any u64 in hex, an i64 (or u64) in decimal.
pub(crate) fn parse_imm64(tok: &str) -> Result<u64, AsmErrorKind> {
    let lit = parse_literal(tok, IMM64_RANGE)?;
    let v = lit.value();
    if (i64::MIN as i128..=u64::MAX as i128).contains(&v) {
        Ok(v as u64)
    } else {
        Err(AsmErrorKind::ImmOutOfRange {
            value: tok.to_string(),
            range: IMM64_RANGE,
        })
    }
}

/// A memory operand `[%rN]`, `[%rN+off]`, `[%rN-off]` with `off` in i16.
pub(crate) fn parse_mem(tok: &str) -> Result<(Reg, i16), AsmErrorKind> {
    let bad = || AsmErrorKind::BadMemOperand(tok.to_string());
    let inner = tok
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(bad)?;
    let split = inner.find(['+', '-']);
    let (reg_tok, off_tok) = match split {
        Some(i) => (&inner[..i], Some(&inner[i..])),
        None => (inner, None),
    };
    let reg = parse_reg(reg_tok)?;
    let off = match off_tok {
        None => 0,
        Some(o) => parse_off16(o)?,
    };
    Ok((reg, off))
}

/// A signed 16-bit offset (`+8`, `-0x10`).
pub(crate) fn parse_off16(tok: &str) -> Result<i16, AsmErrorKind> {
    let lit = match parse_literal(tok, "i16") {
        Err(AsmErrorKind::ImmOutOfRange { .. }) => {
            return Err(AsmErrorKind::OffsetOutOfRange(tok.to_string()));
        }
        r => r?,
    };
    i16::try_from(lit.value()).map_err(|_| AsmErrorKind::OffsetOutOfRange(tok.to_string()))
}

/// True for names usable as labels: `[A-Za-z_.$][A-Za-z0-9_.$]*`.
pub(crate) fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '.' || c == '$' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_on_commas_and_keep_brackets() {
        let t = tokenize("stxw [%r10 - 4], %r2").unwrap();
        assert_eq!(t, vec!["stxw", "[%r10-4]", "%r2"]);
        let t = tokenize("jeq %r1,0x1,+2").unwrap();
        assert_eq!(t, vec!["jeq", "%r1", "0x1", "+2"]);
        assert!(tokenize("ldxb %r0, [%r1+2").is_err());
    }

    #[test]
    fn imm32_rules() {
        assert_eq!(parse_imm32("0xffffffff").unwrap(), -1);
        assert_eq!(parse_imm32("-2147483648").unwrap(), i32::MIN);
        assert!(parse_imm32("2147483648").is_err());
        assert!(parse_imm32("0x100000000").is_err());
        assert_eq!(parse_imm32("-0x80000000").unwrap(), i32::MIN);
        assert!(parse_imm32("-0x80000001").is_err());
        assert!(matches!(
            parse_imm32("12a"),
            Err(AsmErrorKind::BadNumber(_))
        ));
    }

    #[test]
    fn imm64_rules() {
        assert_eq!(parse_imm64("0xffffffffffffffff").unwrap(), u64::MAX);
        assert_eq!(parse_imm64("-1").unwrap(), u64::MAX);
        assert_eq!(
            parse_imm64("-9223372036854775808").unwrap(),
            i64::MIN as u64
        );
        assert!(parse_imm64("0x10000000000000000").is_err());
        assert!(parse_imm64("-9223372036854775809").is_err());
        assert!(parse_imm64("999999999999999999999999999999999999999999999").is_err());
    }

    #[test]
    fn memory_operands() {
        assert_eq!(parse_mem("[%r1]").unwrap(), (1, 0));
        assert_eq!(parse_mem("[r10-8]").unwrap(), (10, -8));
        assert_eq!(parse_mem("[%r1+0x7fff]").unwrap(), (1, 0x7fff));
        assert_eq!(parse_mem("[%r1-32768]").unwrap(), (1, i16::MIN));
        assert!(matches!(
            parse_mem("[%r1+0x10000]"),
            Err(AsmErrorKind::OffsetOutOfRange(_))
        ));
        assert!(matches!(
            parse_mem("%r1"),
            Err(AsmErrorKind::BadMemOperand(_))
        ));
    }

    #[test]
    fn registers() {
        assert_eq!(parse_reg("%r10").unwrap(), 10);
        assert_eq!(parse_reg("r15").unwrap(), 15);
        assert!(parse_reg("%r16").is_err());
        assert!(parse_reg("%r50").is_err());
        assert!(parse_reg("%x1").is_err());
        assert!(looks_like_reg("r50"));
        assert!(!looks_like_reg("0x5"));
    }
}
