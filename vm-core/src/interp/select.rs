//! Instruction selection: the specialised op code for each typed ALU or jump instruction.
//!
//! Constant operands are folded where the result is known: division by an immediate 0
//! becomes `dst = 0`, modulo by 0 a no-op (or a 32-bit truncation), signed division by -1 a
//! negation, signed modulo by -1 `dst = 0`; shift counts are masked once here.

use super::op::{Code, Op};
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
