//! Instruction selection: the specialised op code for each typed ALU or jump instruction,
//! and the handler that executes each op code (in the fast or the counted copy, see `exec`).
//!
//! Constant operands are folded where the result is known: division by an immediate 0
//! becomes `dst = 0`, modulo by 0 a no-op (or a 32-bit truncation), signed division by -1 a
//! negation, signed modulo by -1 `dst = 0`; shift counts are masked once here.

use super::compile::CTX_WORD;
use super::exec::{call, call_local, call_lookup, callx, exit, fault_op, tail_call};
use super::helpers;
use super::op::{Code, Handler, Op, atomic_kind};
use crate::isa::{AluOp, JmpCond, Operand, Width};

pub(super) fn lower_alu(op: AluOp, width: Width, dst: u8, src: Operand) -> Op {
    use Code::*;
    let w64 = width == Width::W64;
    let mk = |code: Code, s: u8, b: u64| Op {
        dst,
        src: s,
        b,
        ..Op::new(code)
    };
    match src {
        Operand::Reg(s) => {
            let code = match (op, w64) {
                (AluOp::Add, true) => Add64X,
                (AluOp::Sub, true) => Sub64X,
                (AluOp::Mul, true) => Mul64X,
                (AluOp::Div, true) => Div64X,
                (AluOp::SDiv, true) => SDiv64X,
                (AluOp::Or, true) => Or64X,
                (AluOp::And, true) => And64X,
                (AluOp::Lsh, true) => Lsh64X,
                (AluOp::Rsh, true) => Rsh64X,
                (AluOp::Mod, true) => Mod64X,
                (AluOp::SMod, true) => SMod64X,
                (AluOp::Xor, true) => Xor64X,
                (AluOp::Mov, true) => Mov64X,
                (AluOp::Arsh, true) => Arsh64X,
                (AluOp::MovSx(8), true) => MovSx8To64,
                (AluOp::MovSx(16), true) => MovSx16To64,
                (AluOp::MovSx(_), true) => MovSx32To64,
                (AluOp::Add, false) => Add32X,
                (AluOp::Sub, false) => Sub32X,
                (AluOp::Mul, false) => Mul32X,
                (AluOp::Div, false) => Div32X,
                (AluOp::SDiv, false) => SDiv32X,
                (AluOp::Or, false) => Or32X,
                (AluOp::And, false) => And32X,
                (AluOp::Lsh, false) => Lsh32X,
                (AluOp::Rsh, false) => Rsh32X,
                (AluOp::Mod, false) => Mod32X,
                (AluOp::SMod, false) => SMod32X,
                (AluOp::Xor, false) => Xor32X,
                (AluOp::Mov, false) => Mov32X,
                (AluOp::Arsh, false) => Arsh32X,
                (AluOp::MovSx(8), false) => MovSx8To32,
                (AluOp::MovSx(16), false) => MovSx16To32,
                // movsx32 is only defined for ALU64; as ALU32 it is a plain 32-bit move.
                (AluOp::MovSx(_), false) => Mov32X,
            };
            mk(code, s, 0)
        }
        Operand::Imm(i) => {
            let sx = i as i64 as u64;
            let zx = i as u32 as u64;
            let (code, b) = match (op, w64) {
                (AluOp::Add, true) => (Add64K, sx),
                (AluOp::Sub, true) => (Sub64K, sx),
                (AluOp::Mul, true) => (Mul64K, sx),
                (AluOp::Div, true) if i == 0 => (Mov64K, 0),
                (AluOp::Div, true) => (Div64K, sx),
                (AluOp::SDiv, true) if i == 0 => (Mov64K, 0),
                (AluOp::SDiv, true) if i == -1 => (Neg64, 0),
                (AluOp::SDiv, true) => (SDiv64K, sx),
                (AluOp::Mod, true) | (AluOp::SMod, true) if i == 0 => (Nop, 0),
                (AluOp::SMod, true) if i == -1 => (Mov64K, 0),
                (AluOp::Mod, true) => (Mod64K, sx),
                (AluOp::SMod, true) => (SMod64K, sx),
                (AluOp::Or, true) => (Or64K, sx),
                (AluOp::And, true) => (And64K, sx),
                (AluOp::Lsh, true) => (Lsh64K, zx & 63),
                (AluOp::Rsh, true) => (Rsh64K, zx & 63),
                (AluOp::Arsh, true) => (Arsh64K, zx & 63),
                (AluOp::Xor, true) => (Xor64K, sx),
                (AluOp::Mov, true) => (Mov64K, sx),
                (AluOp::MovSx(bits), true) => (Mov64K, sign_extend(sx, bits)),
                (AluOp::Add, false) => (Add32K, zx),
                (AluOp::Sub, false) => (Sub32K, zx),
                (AluOp::Mul, false) => (Mul32K, zx),
                (AluOp::Div, false) if i == 0 => (Mov32K, 0),
                (AluOp::Div, false) => (Div32K, zx),
                (AluOp::SDiv, false) if i == 0 => (Mov32K, 0),
                (AluOp::SDiv, false) if i == -1 => (Neg32, 0),
                (AluOp::SDiv, false) => (SDiv32K, zx),
                // 32-bit modulo by zero leaves the low half, zero-extended.
                (AluOp::Mod, false) | (AluOp::SMod, false) if i == 0 => (Trunc32, 0),
                (AluOp::SMod, false) if i == -1 => (Mov32K, 0),
                (AluOp::Mod, false) => (Mod32K, zx),
                (AluOp::SMod, false) => (SMod32K, zx),
                (AluOp::Or, false) => (Or32K, zx),
                (AluOp::And, false) => (And32K, zx),
                (AluOp::Lsh, false) => (Lsh32K, zx & 31),
                (AluOp::Rsh, false) => (Rsh32K, zx & 31),
                (AluOp::Arsh, false) => (Arsh32K, zx & 31),
                (AluOp::Xor, false) => (Xor32K, zx),
                (AluOp::Mov, false) => (Mov32K, zx),
                (AluOp::MovSx(bits), false) => {
                    (Mov32K, sign_extend(sx, bits.min(32)) & 0xffff_ffff)
                }
            };
            mk(code, 0, b)
        }
    }
}

/// Sign-extends the low `bits` of `v`.
fn sign_extend(v: u64, bits: u8) -> u64 {
    match bits {
        8 => v as i8 as i64 as u64,
        16 => v as i16 as i64 as u64,
        32 => v as i32 as i64 as u64,
        _ => v,
    }
}

pub(super) fn jmp_code(cond: JmpCond, width: Width, src: Operand) -> (Code, u8, i32) {
    use Code::*;
    let (x, s, imm) = match src {
        Operand::Reg(r) => (true, r, 0),
        Operand::Imm(i) => (false, 0, i),
    };
    let w64 = width == Width::W64;
    let code = match (cond, w64, x) {
        (JmpCond::Eq, true, false) => Jeq64K,
        (JmpCond::Eq, true, true) => Jeq64X,
        (JmpCond::Gt, true, false) => Jgt64K,
        (JmpCond::Gt, true, true) => Jgt64X,
        (JmpCond::Ge, true, false) => Jge64K,
        (JmpCond::Ge, true, true) => Jge64X,
        (JmpCond::Set, true, false) => Jset64K,
        (JmpCond::Set, true, true) => Jset64X,
        (JmpCond::Ne, true, false) => Jne64K,
        (JmpCond::Ne, true, true) => Jne64X,
        (JmpCond::Sgt, true, false) => Jsgt64K,
        (JmpCond::Sgt, true, true) => Jsgt64X,
        (JmpCond::Sge, true, false) => Jsge64K,
        (JmpCond::Sge, true, true) => Jsge64X,
        (JmpCond::Lt, true, false) => Jlt64K,
        (JmpCond::Lt, true, true) => Jlt64X,
        (JmpCond::Le, true, false) => Jle64K,
        (JmpCond::Le, true, true) => Jle64X,
        (JmpCond::Slt, true, false) => Jslt64K,
        (JmpCond::Slt, true, true) => Jslt64X,
        (JmpCond::Sle, true, false) => Jsle64K,
        (JmpCond::Sle, true, true) => Jsle64X,
        (JmpCond::Eq, false, false) => Jeq32K,
        (JmpCond::Eq, false, true) => Jeq32X,
        (JmpCond::Gt, false, false) => Jgt32K,
        (JmpCond::Gt, false, true) => Jgt32X,
        (JmpCond::Ge, false, false) => Jge32K,
        (JmpCond::Ge, false, true) => Jge32X,
        (JmpCond::Set, false, false) => Jset32K,
        (JmpCond::Set, false, true) => Jset32X,
        (JmpCond::Ne, false, false) => Jne32K,
        (JmpCond::Ne, false, true) => Jne32X,
        (JmpCond::Sgt, false, false) => Jsgt32K,
        (JmpCond::Sgt, false, true) => Jsgt32X,
        (JmpCond::Sge, false, false) => Jsge32K,
        (JmpCond::Sge, false, true) => Jsge32X,
        (JmpCond::Lt, false, false) => Jlt32K,
        (JmpCond::Lt, false, true) => Jlt32X,
        (JmpCond::Le, false, false) => Jle32K,
        (JmpCond::Le, false, true) => Jle32X,
        (JmpCond::Slt, false, false) => Jslt32K,
        (JmpCond::Slt, false, true) => Jslt32X,
        (JmpCond::Sle, false, false) => Jsle32K,
        (JmpCond::Sle, false, true) => Jsle32X,
    };
    (code, s, imm)
}

/// Picks the fast-copy or counted-copy instance of a handler.
macro_rules! pick {
    ($c:expr, $f:ident) => {
        if $c {
            $f::<true> as Handler
        } else {
            $f::<false> as Handler
        }
    };
}

/// The handler of `op`, for the counted copy (`counted`) or the fast copy: [`handler`] of
/// its code, with atomics specialised by operation.
pub(crate) fn handler_of(op: &Op, counted: bool) -> Handler {
    use super::mem_ops::{atomic_rmw, ctx_ldxw};
    macro_rules! rmw {
        ($w:literal, $k:expr) => {
            if counted {
                atomic_rmw::<true, $w, { $k }> as Handler
            } else {
                atomic_rmw::<false, $w, { $k }> as Handler
            }
        };
    }
    let kind = op.aux & !atomic_kind::FETCH;
    match (op.code, kind) {
        (Code::Atomic64, atomic_kind::ADD) => rmw!(8, atomic_kind::ADD),
        (Code::Atomic64, atomic_kind::OR) => rmw!(8, atomic_kind::OR),
        (Code::Atomic64, atomic_kind::AND) => rmw!(8, atomic_kind::AND),
        (Code::Atomic64, atomic_kind::XOR) => rmw!(8, atomic_kind::XOR),
        (Code::Atomic32, atomic_kind::ADD) => rmw!(4, atomic_kind::ADD),
        (Code::Atomic32, atomic_kind::OR) => rmw!(4, atomic_kind::OR),
        (Code::Atomic32, atomic_kind::AND) => rmw!(4, atomic_kind::AND),
        (Code::Atomic32, atomic_kind::XOR) => rmw!(4, atomic_kind::XOR),
        (Code::Call, _) if op.a as usize == helpers::LOOKUP_INDEX => pick!(counted, call_lookup),
        (Code::LdxW, _) if op.aux == CTX_WORD => pick!(counted, ctx_ldxw),
        _ => handler(op.code, counted),
    }
}

/// The handler of each op code, for the counted copy (`counted`) or the fast copy.
pub(crate) fn handler(code: Code, counted: bool) -> Handler {
    use super::alu::*;
    use super::jump::*;
    use super::mem_ops::*;
    use Code::*;
    match code {
        Add64K => pick!(counted, add64k),
        Add64X => pick!(counted, add64x),
        Sub64K => pick!(counted, sub64k),
        Sub64X => pick!(counted, sub64x),
        Mul64K => pick!(counted, mul64k),
        Mul64X => pick!(counted, mul64x),
        Div64K => pick!(counted, div64k),
        Div64X => pick!(counted, div64x),
        SDiv64K => pick!(counted, sdiv64k),
        SDiv64X => pick!(counted, sdiv64x),
        Mod64K => pick!(counted, mod64k),
        Mod64X => pick!(counted, mod64x),
        SMod64K => pick!(counted, smod64k),
        SMod64X => pick!(counted, smod64x),
        Or64K => pick!(counted, or64k),
        Or64X => pick!(counted, or64x),
        And64K => pick!(counted, and64k),
        And64X => pick!(counted, and64x),
        Lsh64K => pick!(counted, lsh64k),
        Lsh64X => pick!(counted, lsh64x),
        Rsh64K => pick!(counted, rsh64k),
        Rsh64X => pick!(counted, rsh64x),
        Arsh64K => pick!(counted, arsh64k),
        Arsh64X => pick!(counted, arsh64x),
        Xor64K => pick!(counted, xor64k),
        Xor64X => pick!(counted, xor64x),
        Mov64K => pick!(counted, mov64k),
        Mov64X => pick!(counted, mov64x),
        MovSx8To64 => pick!(counted, movsx8to64),
        MovSx16To64 => pick!(counted, movsx16to64),
        MovSx32To64 => pick!(counted, movsx32to64),
        Neg64 => pick!(counted, neg64),
        Add32K => pick!(counted, add32k),
        Add32X => pick!(counted, add32x),
        Sub32K => pick!(counted, sub32k),
        Sub32X => pick!(counted, sub32x),
        Mul32K => pick!(counted, mul32k),
        Mul32X => pick!(counted, mul32x),
        Div32K => pick!(counted, div32k),
        Div32X => pick!(counted, div32x),
        SDiv32K => pick!(counted, sdiv32k),
        SDiv32X => pick!(counted, sdiv32x),
        Mod32K => pick!(counted, mod32k),
        Mod32X => pick!(counted, mod32x),
        SMod32K => pick!(counted, smod32k),
        SMod32X => pick!(counted, smod32x),
        Or32K => pick!(counted, or32k),
        Or32X => pick!(counted, or32x),
        And32K => pick!(counted, and32k),
        And32X => pick!(counted, and32x),
        Lsh32K => pick!(counted, lsh32k),
        Lsh32X => pick!(counted, lsh32x),
        Rsh32K => pick!(counted, rsh32k),
        Rsh32X => pick!(counted, rsh32x),
        Arsh32K => pick!(counted, arsh32k),
        Arsh32X => pick!(counted, arsh32x),
        Xor32K => pick!(counted, xor32k),
        Xor32X => pick!(counted, xor32x),
        Mov32K => pick!(counted, mov32k),
        Mov32X => pick!(counted, mov32x),
        MovSx8To32 => pick!(counted, movsx8to32),
        MovSx16To32 => pick!(counted, movsx16to32),
        Neg32 => pick!(counted, neg32),
        Trunc16 => pick!(counted, trunc16),
        Trunc32 => pick!(counted, trunc32),
        Nop => pick!(counted, nop),
        Swap16 => pick!(counted, swap16),
        Swap32 => pick!(counted, swap32),
        Swap64 => pick!(counted, swap64),
        LdxB => pick!(counted, ldxb),
        LdxH => pick!(counted, ldxh),
        LdxW => pick!(counted, ldxw),
        LdxDW => pick!(counted, ldxdw),
        LdxSB => pick!(counted, ldxsb),
        LdxSH => pick!(counted, ldxsh),
        LdxSW => pick!(counted, ldxsw),
        StB => pick!(counted, stb),
        StH => pick!(counted, sth),
        StW => pick!(counted, stw),
        StDW => pick!(counted, stdw),
        StxB => pick!(counted, stxb),
        StxH => pick!(counted, stxh),
        StxW => pick!(counted, stxw),
        StxDW => pick!(counted, stxdw),
        StackLdxB => pick!(counted, stack_ldxb),
        StackLdxH => pick!(counted, stack_ldxh),
        StackLdxW => pick!(counted, stack_ldxw),
        StackLdxDW => pick!(counted, stack_ldxdw),
        StackLdxSB => pick!(counted, stack_ldxsb),
        StackLdxSH => pick!(counted, stack_ldxsh),
        StackLdxSW => pick!(counted, stack_ldxsw),
        StackStB => pick!(counted, stack_stb),
        StackStH => pick!(counted, stack_sth),
        StackStW => pick!(counted, stack_stw),
        StackStDW => pick!(counted, stack_stdw),
        StackStxB => pick!(counted, stack_stxb),
        StackStxH => pick!(counted, stack_stxh),
        StackStxW => pick!(counted, stack_stxw),
        StackStxDW => pick!(counted, stack_stxdw),
        Atomic32 => pick!(counted, atomic32),
        Atomic64 => pick!(counted, atomic64),
        LdImm64 => pick!(counted, ldimm64),
        LdAbs | LdInd => pick!(counted, ld_abs),
        Ja => pick!(counted, ja),
        Jeq64K => pick!(counted, jeq64k),
        Jeq64X => pick!(counted, jeq64x),
        Jgt64K => pick!(counted, jgt64k),
        Jgt64X => pick!(counted, jgt64x),
        Jge64K => pick!(counted, jge64k),
        Jge64X => pick!(counted, jge64x),
        Jset64K => pick!(counted, jset64k),
        Jset64X => pick!(counted, jset64x),
        Jne64K => pick!(counted, jne64k),
        Jne64X => pick!(counted, jne64x),
        Jsgt64K => pick!(counted, jsgt64k),
        Jsgt64X => pick!(counted, jsgt64x),
        Jsge64K => pick!(counted, jsge64k),
        Jsge64X => pick!(counted, jsge64x),
        Jlt64K => pick!(counted, jlt64k),
        Jlt64X => pick!(counted, jlt64x),
        Jle64K => pick!(counted, jle64k),
        Jle64X => pick!(counted, jle64x),
        Jslt64K => pick!(counted, jslt64k),
        Jslt64X => pick!(counted, jslt64x),
        Jsle64K => pick!(counted, jsle64k),
        Jsle64X => pick!(counted, jsle64x),
        Jeq32K => pick!(counted, jeq32k),
        Jeq32X => pick!(counted, jeq32x),
        Jgt32K => pick!(counted, jgt32k),
        Jgt32X => pick!(counted, jgt32x),
        Jge32K => pick!(counted, jge32k),
        Jge32X => pick!(counted, jge32x),
        Jset32K => pick!(counted, jset32k),
        Jset32X => pick!(counted, jset32x),
        Jne32K => pick!(counted, jne32k),
        Jne32X => pick!(counted, jne32x),
        Jsgt32K => pick!(counted, jsgt32k),
        Jsgt32X => pick!(counted, jsgt32x),
        Jsge32K => pick!(counted, jsge32k),
        Jsge32X => pick!(counted, jsge32x),
        Jlt32K => pick!(counted, jlt32k),
        Jlt32X => pick!(counted, jlt32x),
        Jle32K => pick!(counted, jle32k),
        Jle32X => pick!(counted, jle32x),
        Jslt32K => pick!(counted, jslt32k),
        Jslt32X => pick!(counted, jslt32x),
        Jsle32K => pick!(counted, jsle32k),
        Jsle32X => pick!(counted, jsle32x),
        Call => pick!(counted, call),
        TailCall => pick!(counted, tail_call),
        CallX => pick!(counted, callx),
        CallLocal => pick!(counted, call_local),
        Exit => pick!(counted, exit),
        Fault => pick!(counted, fault_op),
    }
}
