//! The disassembler entry points and the conformance dialect.
//!
//! The conformance dialect is designed for an exact round trip through [`super::assemble`]:
//! immediates are printed in decimal (the assembler takes any i32 in decimal), jump and call
//! targets as relative `+N`/`-N` (labels would need a second pass and could collide), and the
//! `lddw` pseudo sources with the keywords the assembler accepts (`map_fd 3`,
//! `map_value 3 +8`, ...).

use std::fmt::Write as _;

use super::Syntax;
use super::pseudo_c::{Dialect, format_pseudo_c};
use crate::isa::{
    AluOp, AtomicOp, ByteOrder, CallTarget, Insn, JmpCond, LdImm64, Operand, Size, Width,
};

/// Disassembles a decoded program, one line per instruction (the `lddw` tail slot prints
/// nothing), each line ending in `\n`.
pub fn disassemble(insns: &[Insn], syntax: Syntax) -> String {
    let _span = tracing::debug_span!("disassemble", insns = insns.len()).entered();
    let mut out = String::new();
    for (pc, insn) in insns.iter().enumerate() {
        if *insn == Insn::LdImm64Tail {
            continue;
        }
        out.push_str(&format_insn(insn, pc, syntax));
        out.push('\n');
    }
    out
}

/// Formats one instruction at slot `pc` (the slot only matters to dialects that could print
/// absolute targets; all three currently print relative ones). The `lddw` tail gives `""`.
pub fn format_insn(insn: &Insn, pc: usize, syntax: Syntax) -> String {
    match syntax {
        Syntax::Conformance => conformance(insn),
        Syntax::Kernel => format_pseudo_c(insn, pc, Dialect::Kernel),
        Syntax::Llvm => format_pseudo_c(insn, pc, Dialect::Llvm),
    }
}

/// A full kernel verifier-log line, `IDX: (OPHEX) text`, e.g. `0: (b7) r0 = 2`. `raw_opcode` is
/// the opcode byte of the slot as stored (the typed instruction does not keep it).
pub fn kernel_line(pc: usize, raw_opcode: u8, insn: &Insn) -> String {
    format!(
        "{pc}: ({raw_opcode:02x}) {}",
        format_pseudo_c(insn, pc, Dialect::Kernel)
    )
}

fn width_suffix(width: Width) -> &'static str {
    match width {
        Width::W32 => "32",
        Width::W64 => "",
    }
}

pub(super) fn size_suffix(size: Size) -> &'static str {
    match size {
        Size::B => "b",
        Size::H => "h",
        Size::W => "w",
        Size::DW => "dw",
    }
}

fn alu_name(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "add",
        AluOp::Sub => "sub",
        AluOp::Mul => "mul",
        AluOp::Div => "div",
        AluOp::SDiv => "sdiv",
        AluOp::Or => "or",
        AluOp::And => "and",
        AluOp::Lsh => "lsh",
        AluOp::Rsh => "rsh",
        AluOp::Mod => "mod",
        AluOp::SMod => "smod",
        AluOp::Xor => "xor",
        AluOp::Mov | AluOp::MovSx(_) => "mov",
        AluOp::Arsh => "arsh",
    }
}

fn jmp_name(cond: JmpCond) -> &'static str {
    match cond {
        JmpCond::Eq => "jeq",
        JmpCond::Gt => "jgt",
        JmpCond::Ge => "jge",
        JmpCond::Set => "jset",
        JmpCond::Ne => "jne",
        JmpCond::Sgt => "jsgt",
        JmpCond::Sge => "jsge",
        JmpCond::Lt => "jlt",
        JmpCond::Le => "jle",
        JmpCond::Slt => "jslt",
        JmpCond::Sle => "jsle",
    }
}

fn operand(src: Operand) -> String {
    match src {
        Operand::Reg(r) => format!("%r{r}"),
        Operand::Imm(i) => i.to_string(),
    }
}

fn mem(reg: u8, off: i16) -> String {
    format!("[%r{reg}{off:+}]")
}

fn rel(off: i64) -> String {
    format!("{off:+}")
}

fn conformance(insn: &Insn) -> String {
    match *insn {
        Insn::Alu {
            op: AluOp::MovSx(bits),
            width,
            dst,
            src,
        } => {
            let w = match width {
                Width::W32 => 32,
                Width::W64 => 64,
            };
            format!("movsx{bits}{w} %r{dst}, {}", operand(src))
        }
        Insn::Alu {
            op,
            width,
            dst,
            src,
        } => format!(
            "{}{} %r{dst}, {}",
            alu_name(op),
            width_suffix(width),
            operand(src)
        ),
        Insn::Neg { width, dst } => format!("neg{} %r{dst}", width_suffix(width)),
        Insn::Endian { order, bits, dst } => {
            let name = match order {
                ByteOrder::ToLe => "le",
                ByteOrder::ToBe => "be",
                ByteOrder::Swap => "bswap",
            };
            format!("{name}{bits} %r{dst}")
        }
        Insn::Load {
            size,
            signed,
            dst,
            src,
            off,
        } => {
            let s = if signed { "s" } else { "" };
            format!("ldx{s}{} %r{dst}, {}", size_suffix(size), mem(src, off))
        }
        Insn::Store {
            size,
            dst,
            src: Operand::Reg(r),
            off,
        } => format!("stx{} {}, %r{r}", size_suffix(size), mem(dst, off)),
        Insn::Store {
            size,
            dst,
            src: Operand::Imm(i),
            off,
        } => format!("st{} {}, {i}", size_suffix(size), mem(dst, off)),
        Insn::Atomic {
            op,
            size,
            fetch,
            dst,
            src,
            off,
        } => {
            let name = match op {
                AtomicOp::Add => "add",
                AtomicOp::Or => "or",
                AtomicOp::And => "and",
                AtomicOp::Xor => "xor",
                AtomicOp::Xchg => "xchg",
                AtomicOp::CmpXchg => "cmpxchg",
            };
            // xchg and cmpxchg always fetch; the assembler implies it.
            let f = if fetch && !matches!(op, AtomicOp::Xchg | AtomicOp::CmpXchg) {
                "fetch "
            } else {
                ""
            };
            let w = if size == Size::W { "32" } else { "" };
            format!("lock {f}{name}{w} {}, %r{src}", mem(dst, off))
        }
        Insn::LdImm64 { dst, value } => format!("lddw %r{dst}, {}", lddw_value(value)),
        Insn::LdImm64Tail => String::new(),
        Insn::LdAbs { size, imm } => format!("ldabs{} {imm}", size_suffix(size)),
        Insn::LdInd { size, src, imm } => format!("ldind{} %r{src}, {imm}", size_suffix(size)),
        Insn::Ja { off, long } => {
            let m = if long { "ja32" } else { "ja" };
            format!("{m} {}", rel(off as i64))
        }
        Insn::Jmp {
            cond,
            width,
            dst,
            src,
            off,
        } => format!(
            "{}{} %r{dst}, {}, {}",
            jmp_name(cond),
            width_suffix(width),
            operand(src),
            rel(off as i64)
        ),
        Insn::Call(CallTarget::Helper(id)) => format!("call {id}"),
        Insn::Call(CallTarget::Local(r)) => format!("call local {}", rel(r as i64)),
        Insn::Call(CallTarget::Kfunc(id)) => format!("call runtime {id}"),
        Insn::CallX { reg } => format!("call %r{reg}"),
        Insn::Exit => "exit".to_string(),
    }
}

fn lddw_value(value: LdImm64) -> String {
    let mut s = String::new();
    // `write!` to a String cannot fail.
    let _ = match value {
        LdImm64::Imm(v) => write!(s, "{v:#x}"),
        LdImm64::MapFd(fd) => write!(s, "map_fd {fd}"),
        LdImm64::MapValue { fd, off } => write!(s, "map_value {fd} +{off}"),
        LdImm64::BtfId { id, btf_fd: 0 } => write!(s, "btf_id {id}"),
        LdImm64::BtfId { id, btf_fd } => write!(s, "btf_id {id} {btf_fd}"),
        LdImm64::Func(r) => write!(s, "func {}", rel(r as i64)),
        LdImm64::MapIdx(idx) => write!(s, "map_idx {idx}"),
        LdImm64::MapIdxValue { idx, off } => write!(s, "map_idx_value {idx} +{off}"),
    };
    s
}
