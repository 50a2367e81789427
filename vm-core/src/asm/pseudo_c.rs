//! The two "BPF C-like" dialects: the kernel verifier log / bpftool (`r1 += 8`,
//! `*(u64 *)(r10 -8) = r1`, `if r2 > 0xa goto pc+2`) and llvm-objdump (`r1 += 0x8`,
//! `*(u64 *)(r10 - 0x8) = r1`, `if r2 > 0xa goto +0x2`). They share the statement shapes and
//! differ in number formatting, spacing inside memory operands, jump targets, calls, `lddw`
//! and atomics, which is why one printer with a [`Dialect`] switch serves both.
//! Formats follow shared/design/ecosystem.md §5.1–5.3; they are for humans and are not parsed.

use super::helpers::helper_name;
use crate::isa::{
    AluOp, AtomicOp, ByteOrder, CallTarget, Insn, JmpCond, LdImm64, Operand, Reg, Size, Width,
};

/// Which C-like dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// Kernel verifier log / `bpftool prog dump xlated`.
    Kernel,
    /// `llvm-objdump -d`, LLVM 19 (hex immediates).
    Llvm,
}

/// `0x1f` / `-0x4`: LLVM prints signed values in hex with a separate sign.
fn hex_signed(v: i64) -> String {
    if v < 0 {
        format!("-{:#x}", v.unsigned_abs())
    } else {
        format!("{v:#x}")
    }
}

/// `+0x2` / `-0x4` (LLVM jump targets).
fn hex_rel(v: i64) -> String {
    if v < 0 {
        hex_signed(v)
    } else {
        format!("+{v:#x}")
    }
}

fn reg(width: Width, r: Reg) -> String {
    match width {
        Width::W32 => format!("w{r}"),
        Width::W64 => format!("r{r}"),
    }
}

fn size_name(size: Size) -> &'static str {
    match size {
        Size::B => "8",
        Size::H => "16",
        Size::W => "32",
        Size::DW => "64",
    }
}

fn alu_op(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div => "/=",
        AluOp::SDiv => "s/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Mod => "%=",
        AluOp::SMod => "s%=",
        AluOp::Xor => "^=",
        AluOp::Mov | AluOp::MovSx(_) => "=",
        AluOp::Arsh => "s>>=",
    }
}

fn jmp_op(cond: JmpCond) -> &'static str {
    match cond {
        JmpCond::Eq => "==",
        JmpCond::Gt => ">",
        JmpCond::Ge => ">=",
        JmpCond::Set => "&",
        JmpCond::Ne => "!=",
        JmpCond::Sgt => "s>",
        JmpCond::Sge => "s>=",
        JmpCond::Lt => "<",
        JmpCond::Le => "<=",
        JmpCond::Slt => "s<",
        JmpCond::Sle => "s<=",
    }
}

fn atomic_op(op: AtomicOp) -> &'static str {
    match op {
        AtomicOp::Add => "add",
        AtomicOp::Or => "or",
        AtomicOp::And => "and",
        AtomicOp::Xor => "xor",
        AtomicOp::Xchg => "xchg",
        AtomicOp::CmpXchg => "cmpxchg",
    }
}

impl Dialect {
    /// An immediate operand of an ALU instruction or a store: decimal in the kernel.
    fn imm(self, v: i32) -> String {
        match self {
            Dialect::Kernel => v.to_string(),
            Dialect::Llvm => hex_signed(v as i64),
        }
    }

    /// A jump-compare immediate: the kernel prints the 32-bit pattern in hex (`0xffffffff`).
    fn cmp_imm(self, v: i32) -> String {
        match self {
            Dialect::Kernel => format!("{:#x}", v as u32),
            Dialect::Llvm => hex_signed(v as i64),
        }
    }

    /// `(r1 +8)` in the kernel, `(r1 + 0x8)` in LLVM.
    fn addr(self, base: Reg, off: i16) -> String {
        match self {
            Dialect::Kernel => format!("(r{base} {off:+})"),
            Dialect::Llvm if off < 0 => format!("(r{base} - {:#x})", off.unsigned_abs()),
            Dialect::Llvm => format!("(r{base} + {off:#x})"),
        }
    }

    fn target(self, off: i64) -> String {
        match self {
            Dialect::Kernel => format!("pc{off:+}"),
            Dialect::Llvm => hex_rel(off),
        }
    }

    fn operand(self, width: Width, src: Operand) -> String {
        match src {
            Operand::Reg(r) => reg(width, r),
            Operand::Imm(i) => self.imm(i),
        }
    }
}

/// Formats `insn` (at slot `pc`) in a C-like dialect.
pub(super) fn format_pseudo_c(insn: &Insn, _pc: usize, d: Dialect) -> String {
    match *insn {
        Insn::Alu {
            op: AluOp::MovSx(bits),
            width,
            dst,
            src,
        } => format!("{} = (s{bits}){}", reg(width, dst), d.operand(width, src)),
        Insn::Alu {
            op,
            width,
            dst,
            src,
        } => format!(
            "{} {} {}",
            reg(width, dst),
            alu_op(op),
            d.operand(width, src)
        ),
        Insn::Neg { width, dst } => format!("{0} = -{0}", reg(width, dst)),
        Insn::Endian { order, bits, dst } => {
            let name = match order {
                ByteOrder::ToLe => "le",
                ByteOrder::ToBe => "be",
                ByteOrder::Swap => "bswap",
            };
            format!("r{dst} = {name}{bits} r{dst}")
        }
        Insn::Load {
            size,
            signed,
            dst,
            src,
            off,
        } => {
            let s = if signed { "s" } else { "u" };
            format!("r{dst} = *({s}{} *){}", size_name(size), d.addr(src, off))
        }
        Insn::Store {
            size,
            dst,
            src,
            off,
        } => format!(
            "*(u{} *){} = {}",
            size_name(size),
            d.addr(dst, off),
            d.operand(Width::W64, src)
        ),
        Insn::Atomic {
            op,
            size,
            fetch,
            dst,
            src,
            off,
        } => atomic(d, op, size, fetch, dst, src, off),
        Insn::LdImm64 { dst, value } => lddw(d, insn, dst, value),
        Insn::LdImm64Tail => String::new(),
        Insn::LdAbs { size, imm } => {
            let at = match d {
                Dialect::Kernel => imm.to_string(),
                Dialect::Llvm => hex_signed(imm as i64),
            };
            format!("r0 = *(u{} *)skb[{at}]", size_name(size))
        }
        Insn::LdInd { size, src, imm } => {
            let at = match d {
                Dialect::Kernel => imm.to_string(),
                Dialect::Llvm => hex_signed(imm as i64),
            };
            format!("r0 = *(u{} *)skb[r{src} + {at}]", size_name(size))
        }
        Insn::Ja { off, long } => {
            let m = if long { "gotol" } else { "goto" };
            format!("{m} {}", d.target(off as i64))
        }
        Insn::Jmp {
            cond,
            width,
            dst,
            src,
            off,
        } => {
            let rhs = match src {
                Operand::Reg(r) => reg(width, r),
                Operand::Imm(i) => d.cmp_imm(i),
            };
            format!(
                "if {} {} {rhs} goto {}",
                reg(width, dst),
                jmp_op(cond),
                d.target(off as i64)
            )
        }
        Insn::Call(target) => call(d, target),
        Insn::CallX { reg } => format!("callx r{reg}"),
        Insn::Exit => "exit".to_string(),
    }
}

fn call(d: Dialect, target: CallTarget) -> String {
    match (d, target) {
        (Dialect::Kernel, CallTarget::Helper(id)) => {
            format!("call {}#{id}", helper_name(id).unwrap_or("unknown"))
        }
        (Dialect::Kernel, CallTarget::Local(rel)) => format!("call pc{rel:+}"),
        (Dialect::Kernel, CallTarget::Kfunc(id)) => format!("call kernel-function#{id}"),
        (Dialect::Llvm, CallTarget::Helper(id) | CallTarget::Kfunc(id)) => {
            format!("call {}", hex_signed(id as i64))
        }
        (Dialect::Llvm, CallTarget::Local(rel)) => format!("call {}", hex_rel(rel as i64)),
    }
}

fn atomic(
    d: Dialect,
    op: AtomicOp,
    size: Size,
    fetch: bool,
    dst: Reg,
    src: Reg,
    off: i16,
) -> String {
    let ty = format!("u{}", size_name(size));
    let addr = d.addr(dst, off);
    match d {
        Dialect::Kernel => {
            let w = if size == Size::DW { "64" } else { "" };
            match op {
                AtomicOp::CmpXchg => {
                    format!("r0 = atomic{w}_cmpxchg(({ty} *){addr}, r0, r{src})")
                }
                AtomicOp::Xchg => format!("r{src} = atomic{w}_xchg(({ty} *){addr}, r{src})"),
                _ if fetch => format!(
                    "r{src} = atomic{w}_fetch_{}(({ty} *){addr}, r{src})",
                    atomic_op(op)
                ),
                _ => format!("lock *({ty} *){addr} {}= r{src}", alu_sym(op)),
            }
        }
        Dialect::Llvm => {
            let width = if size == Size::DW {
                Width::W64
            } else {
                Width::W32
            };
            let r = reg(width, src);
            let r0 = reg(width, 0);
            // LLVM writes the address of xchg/cmpxchg without the parentheses' cast.
            let bare = addr.trim_start_matches('(').trim_end_matches(')');
            let sfx = if size == Size::DW { "_64" } else { "32_32" };
            match op {
                AtomicOp::CmpXchg => format!("{r0} = cmpxchg{sfx}({bare}, {r0}, {r})"),
                AtomicOp::Xchg => format!("{r} = xchg{sfx}({bare}, {r})"),
                _ if fetch => format!("{r} = atomic_fetch_{}(({ty} *){addr}, {r})", atomic_op(op)),
                _ => format!("lock *({ty} *){addr} {}= {r}", alu_sym(op)),
            }
        }
    }
}

/// The operator of a non-fetching atomic, without its `=`.
fn alu_sym(op: AtomicOp) -> &'static str {
    match op {
        AtomicOp::Add => "+",
        AtomicOp::Or => "|",
        AtomicOp::And => "&",
        AtomicOp::Xor => "^",
        AtomicOp::Xchg | AtomicOp::CmpXchg => "?",
    }
}

fn lddw(d: Dialect, insn: &Insn, dst: Reg, value: LdImm64) -> String {
    if d == Dialect::Llvm {
        // llvm-objdump ignores the pseudo source and shows the 64-bit value of the two imms.
        let slots = insn.encode();
        let lo = slots.first().map_or(0, |s| s.imm as u32 as u64);
        let hi = slots.get(1).map_or(0, |s| s.imm as u32 as u64);
        return format!("r{dst} = {:#x} ll", lo | (hi << 32));
    }
    let v = match value {
        LdImm64::Imm(v) => format!("{v:#x}"),
        LdImm64::MapFd(fd) => format!("map[fd:{fd}]"),
        LdImm64::MapValue { fd, off } => format!("map[fd:{fd}][0]+{off}"),
        LdImm64::BtfId { id, btf_fd: 0 } => format!("btf_id[{id}]"),
        LdImm64::BtfId { id, btf_fd } => format!("btf_id[{id}][fd:{btf_fd}]"),
        LdImm64::Func(rel) => format!("func[pc{rel:+}]"),
        LdImm64::MapIdx(idx) => format!("map[idx:{idx}]"),
        LdImm64::MapIdxValue { idx, off } => format!("map[idx:{idx}][0]+{off}"),
    };
    format!("r{dst} = {v}")
}
