//! Which handler runs each op (see `fast_run`): the specialised instantiation for the op's
//! kind, ALU operation(s), shift kind and branch condition.
//!
//! Why not one instantiation per combination: 11 ALU operations × 13 conditions per fused
//! form would be thousands of handlers. The unprofiled handlers are specialised for every
//! single operation and condition, and for the operation pairs the lowering emits (64-bit
//! moves, adds, subtracts, compares and zero tests); other pairs read their operations from
//! the op ([`DYN`]). Profiled runs are for reports, not speed: their handlers read everything
//! from the op.

use super::fast::{A, Op};
use super::fast_branch::{alu_br, alu2_br, br, br_bit, exit, slow_op};
use super::fast_handlers::{
    DYN, alu_lm, alu_shf, alu1, alu2, csr_lm, ld, merge, mov_lm, nop, set, set2, shf, st_lm,
};
use super::fast_mem::{cmd, ctm_read, ctm_write, emem_add, emem_move, fw_call, fw_lookup};
use super::fast_run::Handler;
use crate::target::{CmdAction, Cond, FwHelper, MemTarget, ShiftKind};

/// `$f::<false, $k.., C>` for the op's condition `C`.
macro_rules! by_cond {
    ($c:expr, $f:ident $(, $k:tt)*) => {
        match $c {
            Cond::Eq => $f::<false $(, $k)*, { Cond::Eq as u8 }> as Handler,
            Cond::Ne => $f::<false $(, $k)*, { Cond::Ne as u8 }>,
            Cond::Mi => $f::<false $(, $k)*, { Cond::Mi as u8 }>,
            Cond::Pl => $f::<false $(, $k)*, { Cond::Pl as u8 }>,
            Cond::Hs => $f::<false $(, $k)*, { Cond::Hs as u8 }>,
            Cond::Lo => $f::<false $(, $k)*, { Cond::Lo as u8 }>,
            Cond::Vs => $f::<false $(, $k)*, { Cond::Vs as u8 }>,
            Cond::Vc => $f::<false $(, $k)*, { Cond::Vc as u8 }>,
            Cond::Ge => $f::<false $(, $k)*, { Cond::Ge as u8 }>,
            Cond::Lt => $f::<false $(, $k)*, { Cond::Lt as u8 }>,
            Cond::Le => $f::<false $(, $k)*, { Cond::Le as u8 }>,
            Cond::Gt => $f::<false $(, $k)*, { Cond::Gt as u8 }>,
            Cond::Always => $f::<false $(, $k)*, { Cond::Always as u8 }>,
        }
    };
}

/// `$f::<false, OP $(, rest)*>` for the single ALU operation `OP` of the op.
macro_rules! by_op {
    ($op:expr, |$k:ident| $e:expr) => {
        match $op {
            A::PassB => {
                const $k: u8 = A::PassB as u8;
                $e
            }
            A::Add => {
                const $k: u8 = A::Add as u8;
                $e
            }
            A::AddCarry => {
                const $k: u8 = A::AddCarry as u8;
                $e
            }
            A::Sub => {
                const $k: u8 = A::Sub as u8;
                $e
            }
            A::SubCarry => {
                const $k: u8 = A::SubCarry as u8;
                $e
            }
            A::NotB => {
                const $k: u8 = A::NotB as u8;
                $e
            }
            A::And => {
                const $k: u8 = A::And as u8;
                $e
            }
            A::AndNotA => {
                const $k: u8 = A::AndNotA as u8;
                $e
            }
            A::AndNotB => {
                const $k: u8 = A::AndNotB as u8;
                $e
            }
            A::Or => {
                const $k: u8 = A::Or as u8;
                $e
            }
            A::Xor => {
                const $k: u8 = A::Xor as u8;
                $e
            }
        }
    };
}

const PASS: u8 = A::PassB as u8;
const ADD: u8 = A::Add as u8;
const ADDC: u8 = A::AddCarry as u8;
const SUB: u8 = A::Sub as u8;
const SUBC: u8 = A::SubCarry as u8;
const XOR: u8 = A::Xor as u8;
const OR: u8 = A::Or as u8;

/// The unprofiled and the profiled handler of `op`.
pub(super) fn handlers(op: &Op) -> (Handler, Handler) {
    match *op {
        Op::Alu { op, .. } => (
            by_op!(op, |K| alu1::<false, K> as Handler),
            alu1::<true, DYN>,
        ),
        Op::Alu2 { op1, op2, .. } => (
            match (op1, op2) {
                (A::PassB, A::PassB) => alu2::<false, PASS, PASS> as Handler,
                (A::Add, A::AddCarry) => alu2::<false, ADD, ADDC>,
                (A::Sub, A::SubCarry) => alu2::<false, SUB, SUBC>,
                _ => alu2::<false, DYN, DYN>,
            },
            alu2::<true, DYN, DYN>,
        ),
        Op::AluBr { op, cond, .. } => (
            by_op!(op, |K| by_cond!(cond, alu_br, K)),
            alu_br::<true, DYN, DYN>,
        ),
        Op::Alu2Br { op1, op2, cond, .. } => (
            match (op1, op2) {
                (A::Sub, A::SubCarry) => by_cond!(cond, alu2_br, SUB, SUBC),
                (A::Xor, A::Or) => by_cond!(cond, alu2_br, XOR, OR),
                _ => by_cond!(cond, alu2_br, DYN, DYN),
            },
            alu2_br::<true, DYN, DYN, DYN>,
        ),
        Op::Br { cond, .. } => (by_cond!(cond, br), br::<true, DYN>),
        Op::BrBit { set: true, .. } => (br_bit::<false, true>, br_bit::<true, true>),
        Op::BrBit { set: false, .. } => (br_bit::<false, false>, br_bit::<true, false>),
        Op::Shf { kind, .. } => (
            match kind {
                ShiftKind::Left => shf::<false, { ShiftKind::Left as u8 }> as Handler,
                ShiftKind::Right => shf::<false, { ShiftKind::Right as u8 }>,
                ShiftKind::ArithRight => shf::<false, { ShiftKind::ArithRight as u8 }>,
                ShiftKind::RotRight => shf::<false, { ShiftKind::RotRight as u8 }>,
                ShiftKind::DoubleRight => shf::<false, { ShiftKind::DoubleRight as u8 }>,
            },
            shf::<true, DYN>,
        ),
        Op::Set { .. } => (set::<false>, set::<true>),
        Op::Set2 { .. } => (set2::<false>, set2::<true>),
        Op::Merge { .. } => (merge::<false>, merge::<true>),
        Op::Ld { .. } => (ld::<false>, ld::<true>),
        Op::AluShf { .. } => (alu_shf::<false>, alu_shf::<true>),
        Op::MovLm { .. } => (mov_lm::<false>, mov_lm::<true>),
        Op::AluLm { op, .. } => (
            by_op!(op, |K| alu_lm::<false, K> as Handler),
            alu_lm::<true, DYN>,
        ),
        Op::StLm { op, .. } => (
            by_op!(op, |K| st_lm::<false, K> as Handler),
            st_lm::<true, DYN>,
        ),
        Op::CsrLm { .. } => (csr_lm::<false>, csr_lm::<true>),
        Op::Cmd { words: 0, .. } => (cmd::<false>, cmd::<true>),
        Op::Cmd {
            target: MemTarget::Ctm,
            action: CmdAction::Read8 | CmdAction::Read32,
            words,
            ..
        } => (
            match words {
                1 => ctm_read::<false, 1> as Handler,
                2 => ctm_read::<false, 2>,
                3 => ctm_read::<false, 3>,
                4 => ctm_read::<false, 4>,
                5 => ctm_read::<false, 5>,
                6 => ctm_read::<false, 6>,
                7 => ctm_read::<false, 7>,
                8 => ctm_read::<false, 8>,
                _ => ctm_read::<false, 0>,
            },
            ctm_read::<true, 0>,
        ),
        Op::Cmd {
            target: MemTarget::Emem,
            action: CmdAction::AtomicAdd,
            ..
        } => (emem_add::<false>, emem_add::<true>),
        Op::Cmd {
            target: MemTarget::Ctm,
            action: CmdAction::Write8 | CmdAction::Write32,
            ..
        } => (ctm_write::<false>, ctm_write::<true>),
        Op::Cmd {
            target: MemTarget::Emem,
            action: CmdAction::Read8 | CmdAction::Read32,
            ..
        } => (emem_move::<false, false>, emem_move::<true, false>),
        Op::Cmd {
            target: MemTarget::Emem,
            action: CmdAction::Write8 | CmdAction::Write32,
            ..
        } => (emem_move::<false, true>, emem_move::<true, true>),
        Op::Cmd { .. } => (cmd::<false>, cmd::<true>),
        Op::Fw {
            helper: FwHelper::MapLookup,
            ..
        } => (fw_lookup::<false>, fw_lookup::<true>),
        Op::Fw { .. } => (fw_call::<false>, fw_call::<true>),
        Op::Exit => (exit::<false>, exit::<true>),
        Op::Nop => (nop::<false>, nop::<true>),
        Op::Slow => (slow_op::<false>, slow_op::<true>),
    }
}
