//! The assembler: conformance-syntax text → raw slots.
//!
//! Two passes, because labels may be used before they are defined: the first pass tokenizes
//! every line and assigns slot numbers (an `lddw` takes two) and labels; the second turns each
//! line into a typed [`Insn`] and lets the ISA encoder produce the bytes, so that no opcode
//! arithmetic lives here.

use std::collections::HashMap;

use super::error::{AsmError, AsmErrorKind};
use super::helpers::helper_id;
use super::lex::{
    is_label_name, looks_like_reg, parse_imm32, parse_imm64, parse_literal, parse_mem, parse_reg,
    parse_u32_field, strip_comment, tokenize,
};
use crate::isa::{
    AluOp, AtomicOp, ByteOrder, CallTarget, Insn, JmpCond, LdImm64, Operand, RawInsn, Reg, Size,
    Width,
};

/// One instruction line after pass 1.
struct Line {
    line: usize,
    pc: usize,
    toks: Vec<String>,
}

/// Label name → (slot, line where defined).
type Labels = HashMap<String, (usize, usize)>;

/// Assembles bpf_conformance-syntax text (shared/corpus/FORMATS.md §1) into raw slots.
///
/// Extensions over upstream, all unambiguous: registers without `%`, `;` comments, spaces
/// inside `[...]`, an instruction after a `label:` on the same line, helper names in `call`,
/// `call local +N`, and the `lddw` pseudo sources `map_fd N`, `map_value N +OFF`,
/// `btf_id ID [FD]`, `func TARGET`, `map_idx N`, `map_idx_value N +OFF` printed by the
/// disassembler. The result is not decoded: callers that want a valid program run
/// [`crate::isa::decode_program`] on it.
pub fn assemble(text: &str) -> Result<Vec<RawInsn>, AsmError> {
    let _span = tracing::debug_span!("assemble", bytes = text.len()).entered();
    let (lines, labels) = first_pass(text)?;
    let mut out = Vec::with_capacity(lines.len() + 1);
    for l in &lines {
        let insn =
            encode_line(&l.toks, l.pc, &labels).map_err(|kind| AsmError { line: l.line, kind })?;
        out.extend(insn.encode());
    }
    Ok(out)
}

fn first_pass(text: &str) -> Result<(Vec<Line>, Labels), AsmError> {
    let mut lines = Vec::new();
    let mut labels = Labels::new();
    let mut first_exit = None;
    let mut pc = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let at = |kind| AsmError { line, kind };
        let s = strip_comment(raw).trim();
        if s.is_empty() {
            continue;
        }
        let mut toks = tokenize(s).map_err(at)?;
        if let Some(name) = toks.first().and_then(|t| t.strip_suffix(':')) {
            if !is_label_name(name) {
                return Err(at(AsmErrorKind::BadLabel(name.to_string())));
            }
            if let Some(&(_, first_line)) = labels.get(name) {
                return Err(at(AsmErrorKind::DuplicateLabel {
                    label: name.to_string(),
                    first_line,
                }));
            }
            labels.insert(name.to_string(), (pc, line));
            toks.remove(0);
        }
        let Some(mnemonic) = toks.first() else {
            continue;
        };
        let mnemonic = mnemonic.to_ascii_lowercase();
        if mnemonic == "exit" && first_exit.is_none() {
            first_exit = Some((pc, line));
        }
        let slots = if mnemonic == "lddw" { 2 } else { 1 };
        lines.push(Line { line, pc, toks });
        pc += slots;
    }
    // Upstream convention: the first `exit` is also the label `exit` (unless one is defined).
    if let Some(e) = first_exit {
        labels.entry("exit".to_string()).or_insert(e);
    }
    Ok((lines, labels))
}

fn count(
    mnemonic: &str,
    ops: &[String],
    expected: &'static str,
    ok: bool,
) -> Result<(), AsmErrorKind> {
    if ok {
        Ok(())
    } else {
        Err(AsmErrorKind::OperandCount {
            mnemonic: mnemonic.to_string(),
            expected,
            got: ops.len(),
        })
    }
}

fn exactly(mnemonic: &str, ops: &[String], n: usize) -> Result<(), AsmErrorKind> {
    const WORDS: [&str; 4] = ["0", "1", "2", "3"];
    count(mnemonic, ops, WORDS[n.min(3)], ops.len() == n)
}

/// A register or an immediate: the `%`/`rN` spelling decides (upstream: "starts with `%`").
fn operand(tok: &str) -> Result<Operand, AsmErrorKind> {
    if looks_like_reg(tok) {
        Ok(Operand::Reg(parse_reg(tok)?))
    } else {
        Ok(Operand::Imm(parse_imm32(tok)?))
    }
}

/// Resolves a jump/call target to a distance relative to the slot after `pc`.
fn target(tok: &str, pc: usize, labels: &Labels) -> Result<i64, AsmErrorKind> {
    if tok.starts_with(['+', '-']) {
        let lit = parse_literal(tok, "i32")?;
        return i64::try_from(lit.value()).map_err(|_| AsmErrorKind::TargetOutOfRange {
            target: tok.to_string(),
            distance: i64::MAX,
            field: "imm (i32)",
        });
    }
    if let Some(&(to, _)) = labels.get(tok) {
        return Ok(to as i64 - (pc as i64 + 1));
    }
    if tok.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        let lit = parse_literal(tok, "i32")?;
        return Ok(lit.value().clamp(i64::MIN as i128, i64::MAX as i128) as i64);
    }
    Err(AsmErrorKind::UnknownLabel(tok.to_string()))
}

fn target16(tok: &str, pc: usize, labels: &Labels) -> Result<i16, AsmErrorKind> {
    let d = target(tok, pc, labels)?;
    i16::try_from(d).map_err(|_| AsmErrorKind::TargetOutOfRange {
        target: tok.to_string(),
        distance: d,
        field: "off (i16)",
    })
}

fn target32(tok: &str, pc: usize, labels: &Labels) -> Result<i32, AsmErrorKind> {
    let d = target(tok, pc, labels)?;
    i32::try_from(d).map_err(|_| AsmErrorKind::TargetOutOfRange {
        target: tok.to_string(),
        distance: d,
        field: "imm (i32)",
    })
}

/// Splits an optional `32`/`64` width suffix off a mnemonic (no suffix means 64-bit).
fn split_width(mn: &str) -> (&str, Width) {
    if let Some(base) = mn.strip_suffix("32") {
        (base, Width::W32)
    } else if let Some(base) = mn.strip_suffix("64") {
        (base, Width::W64)
    } else {
        (mn, Width::W64)
    }
}

fn alu_op(base: &str) -> Option<AluOp> {
    Some(match base {
        "add" => AluOp::Add,
        "sub" => AluOp::Sub,
        "mul" => AluOp::Mul,
        "div" => AluOp::Div,
        "sdiv" => AluOp::SDiv,
        "or" => AluOp::Or,
        "and" => AluOp::And,
        "lsh" => AluOp::Lsh,
        "rsh" => AluOp::Rsh,
        "mod" => AluOp::Mod,
        "smod" => AluOp::SMod,
        "xor" => AluOp::Xor,
        "mov" => AluOp::Mov,
        "arsh" => AluOp::Arsh,
        _ => return None,
    })
}

fn jmp_cond(base: &str) -> Option<JmpCond> {
    Some(match base {
        "jeq" => JmpCond::Eq,
        "jgt" => JmpCond::Gt,
        "jge" => JmpCond::Ge,
        "jset" => JmpCond::Set,
        "jne" => JmpCond::Ne,
        "jsgt" => JmpCond::Sgt,
        "jsge" => JmpCond::Sge,
        "jlt" => JmpCond::Lt,
        "jle" => JmpCond::Le,
        "jslt" => JmpCond::Slt,
        "jsle" => JmpCond::Sle,
        _ => return None,
    })
}

fn size_suffix(s: &str) -> Option<Size> {
    Some(match s {
        "b" => Size::B,
        "h" => Size::H,
        "w" => Size::W,
        "dw" => Size::DW,
        _ => return None,
    })
}

fn movsx(mn: &str) -> Option<(u8, Width)> {
    Some(match mn {
        "movsx864" => (8, Width::W64),
        "movsx1664" => (16, Width::W64),
        "movsx3264" => (32, Width::W64),
        "movsx832" => (8, Width::W32),
        "movsx1632" => (16, Width::W32),
        _ => return None,
    })
}

fn endian(mn: &str) -> Option<(ByteOrder, u8)> {
    let (order, bits) = if let Some(b) = mn.strip_prefix("le") {
        (ByteOrder::ToLe, b)
    } else if let Some(b) = mn.strip_prefix("be") {
        (ByteOrder::ToBe, b)
    } else if let Some(b) = mn.strip_prefix("bswap").or_else(|| mn.strip_prefix("swap")) {
        (ByteOrder::Swap, b)
    } else {
        return None;
    };
    let bits = match bits {
        "16" => 16,
        "32" => 32,
        "64" => 64,
        _ => return None,
    };
    Some((order, bits))
}

fn encode_line(toks: &[String], pc: usize, labels: &Labels) -> Result<Insn, AsmErrorKind> {
    let mn = toks[0].to_ascii_lowercase();
    let ops = &toks[1..];
    let mn = mn.as_str();
    match mn {
        "exit" => {
            exactly(mn, ops, 0)?;
            return Ok(Insn::Exit);
        }
        "lddw" => return lddw(ops, pc, labels),
        "call" => return call(ops, pc, labels),
        "lock" => return atomic(ops),
        "ja" | "ja32" => {
            exactly(mn, ops, 1)?;
            let long = mn == "ja32";
            let off = if long {
                target32(&ops[0], pc, labels)?
            } else {
                target16(&ops[0], pc, labels)? as i32
            };
            return Ok(Insn::Ja { off, long });
        }
        _ => {}
    }
    if let Some((bits, width)) = movsx(mn) {
        exactly(mn, ops, 2)?;
        return Ok(Insn::Alu {
            op: AluOp::MovSx(bits),
            width,
            dst: parse_reg(&ops[0])?,
            src: Operand::Reg(parse_reg(&ops[1])?),
        });
    }
    if let Some((order, bits)) = endian(mn) {
        exactly(mn, ops, 1)?;
        return Ok(Insn::Endian {
            order,
            bits,
            dst: parse_reg(&ops[0])?,
        });
    }
    if let Some(insn) = memory(mn, ops)? {
        return Ok(insn);
    }
    let (base, width) = split_width(mn);
    if base == "neg" {
        exactly(mn, ops, 1)?;
        return Ok(Insn::Neg {
            width,
            dst: parse_reg(&ops[0])?,
        });
    }
    if let Some(op) = alu_op(base) {
        exactly(mn, ops, 2)?;
        return Ok(Insn::Alu {
            op,
            width,
            dst: parse_reg(&ops[0])?,
            src: operand(&ops[1])?,
        });
    }
    if let Some(cond) = jmp_cond(base) {
        exactly(mn, ops, 3)?;
        return Ok(Insn::Jmp {
            cond,
            width,
            dst: parse_reg(&ops[0])?,
            src: operand(&ops[1])?,
            off: target16(&ops[2], pc, labels)?,
        });
    }
    Err(AsmErrorKind::UnknownMnemonic(toks[0].clone()))
}

/// Loads, stores and the legacy packet loads; `None` when `mn` is none of them.
fn memory(mn: &str, ops: &[String]) -> Result<Option<Insn>, AsmErrorKind> {
    if let Some(sz) = mn.strip_prefix("ldxs").and_then(size_suffix)
        && sz != Size::DW
    {
        exactly(mn, ops, 2)?;
        let (src, off) = parse_mem(&ops[1])?;
        let dst = parse_reg(&ops[0])?;
        return Ok(Some(load(sz, true, dst, src, off)));
    }
    if let Some(sz) = mn.strip_prefix("ldx").and_then(size_suffix) {
        exactly(mn, ops, 2)?;
        let dst = parse_reg(&ops[0])?;
        let (src, off) = parse_mem(&ops[1])?;
        return Ok(Some(load(sz, false, dst, src, off)));
    }
    if let Some(sz) = mn.strip_prefix("stx").and_then(size_suffix) {
        exactly(mn, ops, 2)?;
        let (dst, off) = parse_mem(&ops[0])?;
        let src = Operand::Reg(parse_reg(&ops[1])?);
        return Ok(Some(Insn::Store {
            size: sz,
            dst,
            src,
            off,
        }));
    }
    if let Some(sz) = mn.strip_prefix("st").and_then(size_suffix) {
        exactly(mn, ops, 2)?;
        let (dst, off) = parse_mem(&ops[0])?;
        let src = Operand::Imm(parse_imm32(&ops[1])?);
        return Ok(Some(Insn::Store {
            size: sz,
            dst,
            src,
            off,
        }));
    }
    if let Some(size) = mn.strip_prefix("ldabs").and_then(size_suffix) {
        exactly(mn, ops, 1)?;
        return Ok(Some(Insn::LdAbs {
            size,
            imm: parse_imm32(&ops[0])?,
        }));
    }
    if let Some(size) = mn.strip_prefix("ldind").and_then(size_suffix) {
        exactly(mn, ops, 2)?;
        return Ok(Some(Insn::LdInd {
            size,
            src: parse_reg(&ops[0])?,
            imm: parse_imm32(&ops[1])?,
        }));
    }
    Ok(None)
}

fn load(size: Size, signed: bool, dst: Reg, src: Reg, off: i16) -> Insn {
    Insn::Load {
        size,
        signed,
        dst,
        src,
        off,
    }
}

fn call(ops: &[String], pc: usize, labels: &Labels) -> Result<Insn, AsmErrorKind> {
    count("call", ops, "1 or 2", matches!(ops.len(), 1 | 2))?;
    if ops.len() == 2 {
        let target = match ops[0].as_str() {
            "helper" => CallTarget::Helper(parse_imm32(&ops[1])?),
            "local" => CallTarget::Local(target32(&ops[1], pc, labels)?),
            "runtime" => CallTarget::Kfunc(parse_imm32(&ops[1])?),
            _ => {
                return Err(AsmErrorKind::BadOperand {
                    operand: ops[0].clone(),
                    why: "expected `helper`, `local` or `runtime`",
                });
            }
        };
        return Ok(Insn::Call(target));
    }
    let t = &ops[0];
    if looks_like_reg(t) {
        return Ok(Insn::CallX { reg: parse_reg(t)? });
    }
    if let Some(id) = helper_id(t) {
        return Ok(Insn::Call(CallTarget::Helper(id)));
    }
    match parse_imm32(t) {
        Err(AsmErrorKind::BadNumber(_)) => Err(AsmErrorKind::BadOperand {
            operand: t.clone(),
            why: "expected a helper id or name, a register, or `local LABEL`",
        }),
        r => Ok(Insn::Call(CallTarget::Helper(r?))),
    }
}

fn atomic(ops: &[String]) -> Result<Insn, AsmErrorKind> {
    let fetch = ops.first().is_some_and(|t| t == "fetch");
    let rest = if fetch { &ops[1..] } else { ops };
    count("lock", ops, "3, or 4 with `fetch`", rest.len() == 3)?;
    let (base, width) = split_width(&rest[0]);
    let size = match width {
        Width::W32 => Size::W,
        Width::W64 => Size::DW,
    };
    let (op, fetch) = match base {
        "add" => (AtomicOp::Add, fetch),
        "and" => (AtomicOp::And, fetch),
        "or" => (AtomicOp::Or, fetch),
        "xor" => (AtomicOp::Xor, fetch),
        "xchg" => (AtomicOp::Xchg, true),
        "cmpxchg" => (AtomicOp::CmpXchg, true),
        _ => {
            return Err(AsmErrorKind::BadOperand {
                operand: rest[0].clone(),
                why: "expected add, and, or, xor, xchg or cmpxchg (optionally with a 32 suffix)",
            });
        }
    };
    let (dst, off) = parse_mem(&rest[1])?;
    Ok(Insn::Atomic {
        op,
        size,
        fetch,
        dst,
        src: parse_reg(&rest[2])?,
        off,
    })
}

/// The optional `+OFF` of `map_value` / `map_idx_value` (0 when absent).
fn value_off(ops: &[String], i: usize) -> Result<u32, AsmErrorKind> {
    ops.get(i).map_or(Ok(0), |t| parse_u32_field(t))
}

fn lddw(ops: &[String], pc: usize, labels: &Labels) -> Result<Insn, AsmErrorKind> {
    count("lddw", ops, "2 to 4", (2..=4).contains(&ops.len()))?;
    let dst = parse_reg(&ops[0])?;
    let kind = ops[1].as_str();
    let n = ops.len();
    let need = |ok: bool, expected| count("lddw", ops, expected, ok);
    let value = match kind {
        "map_fd" => {
            need(n == 3, "3 with map_fd")?;
            LdImm64::MapFd(parse_imm32(&ops[2])?)
        }
        "map_value" => {
            need(n >= 3, "3 or 4 with map_value")?;
            LdImm64::MapValue {
                fd: parse_imm32(&ops[2])?,
                off: value_off(ops, 3)?,
            }
        }
        "btf_id" => {
            need(n >= 3, "3 or 4 with btf_id")?;
            LdImm64::BtfId {
                id: parse_imm32(&ops[2])?,
                btf_fd: ops.get(3).map_or(Ok(0), |t| parse_imm32(t))?,
            }
        }
        "func" => {
            need(n == 3, "3 with func")?;
            LdImm64::Func(target32(&ops[2], pc, labels)?)
        }
        "map_idx" => {
            need(n == 3, "3 with map_idx")?;
            LdImm64::MapIdx(parse_imm32(&ops[2])?)
        }
        "map_idx_value" => {
            need(n >= 3, "3 or 4 with map_idx_value")?;
            LdImm64::MapIdxValue {
                idx: parse_imm32(&ops[2])?,
                off: value_off(ops, 3)?,
            }
        }
        _ => {
            need(n == 2, "2")?;
            LdImm64::Imm(parse_imm64(kind)?)
        }
    };
    Ok(Insn::LdImm64 { dst, value })
}
