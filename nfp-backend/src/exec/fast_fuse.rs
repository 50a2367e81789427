//! Fused groups of the fast path (see `fast`): which instruction pairs and triples of the
//! lowering become one op. A fused op executes every constituent exactly; it only saves
//! dispatches (their handlers are specialised by ALU operations and condition, see
//! `fast_select`).

use super::fast::{A, D, Op, dst, src};
use super::step::same_bank;
use crate::target::{MeInsn, ShiftAmount};

/// The first two ALU ops of a fusable group: plain ALU ops (moves included).
pub(super) fn alu_parts(op: &Op) -> Option<(A, D, u16, u16)> {
    match *op {
        Op::Alu { op, d, a, b } => Some((op, d, a, b)),
        _ => None,
    }
}

/// Whether the instruction after `pc` is an indirect shift.
pub(super) fn indirect_after(code: &[MeInsn], pc: usize) -> bool {
    matches!(
        code.get(pc + 1),
        Some(MeInsn::Shf {
            amount: ShiftAmount::Indirect,
            ..
        })
    )
}

/// The fused ALU + indirect shift at `pc`, if the shift's operands allow it.
fn alu_shf(code: &[MeInsn], first: &Op, pc: usize) -> Option<Op> {
    let (op, d1, a1, b1) = alu_parts(first)?;
    let Some(&MeInsn::Shf {
        kind,
        dst: d,
        a,
        b,
        amount: ShiftAmount::Indirect,
    }) = code.get(pc + 1)
    else {
        return None;
    };
    if same_bank(a, b) {
        return None;
    }
    Some(Op::AluShf {
        op,
        kind,
        d1,
        a1,
        b1,
        d2: dst(d)?,
        a2: src(a)?,
        b2: src(b)?,
    })
}

/// Replaces the op at `pc` by a fused group where the instructions after it allow.
pub(super) fn fuse(code: &[MeInsn], ops: &[Op], pc: usize) -> Option<Op> {
    fuse_generic(code, ops, pc)
}

fn fuse_generic(code: &[MeInsn], ops: &[Op], pc: usize) -> Option<Op> {
    let first = ops.get(pc)?;
    let next = ops.get(pc + 1);
    let third = ops.get(pc + 2);
    if let Some((op1, d1, a1, b1)) = alu_parts(first) {
        if indirect_after(code, pc) {
            return alu_shf(code, first, pc);
        }
        if let Some(&Op::Br { cond, t, .. }) = next {
            return Some(Op::AluBr {
                op: op1,
                d: d1,
                a: a1,
                b: b1,
                cond,
                t,
                rt: 0,
                rn: 0,
            });
        }
        let (op2, d2, a2, b2) = next.and_then(alu_parts)?;
        // The second ALU op must stay the indirect shift's own fused op.
        if indirect_after(code, pc + 1) {
            return None;
        }
        if let Some(&Op::Br { cond, t, .. }) = third {
            return Some(Op::Alu2Br {
                op1,
                op2,
                d1,
                d2,
                a1,
                b1,
                a2,
                b2,
                cond,
                t,
                rt: 0,
                rn: 0,
            });
        }
        return Some(Op::Alu2 {
            op1,
            op2,
            d1,
            d2,
            a1,
            b1,
            a2,
            b2,
        });
    }
    if let (Op::Set { d: d1, v: v1 }, Some(&Op::Set { d: d2, v: v2 })) = (first, next) {
        return Some(Op::Set2 {
            d1: *d1,
            d2,
            v1: *v1,
            v2,
        });
    }
    None
}
