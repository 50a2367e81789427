//! One ALU step's host code ([`alu`]): the result in eax, operands read from what eax
//! holds where it can (a child of `x64`, whose register and slot conventions it uses).

use super::*;

/// `eax = eax OP b` for the logic ops (no carry/overflow).
fn logic(a: &mut Assembler, op: A, b: Val) {
    match (op, b) {
        (A::And, Val::Slot(o)) => dynasm!(a ; .arch x64 ; and eax, DWORD [rdi + o]),
        (A::And, Val::Const(k)) => dynasm!(a ; .arch x64 ; and eax, k as i32),
        (A::Or, Val::Slot(o)) => dynasm!(a ; .arch x64 ; or eax, DWORD [rdi + o]),
        (A::Or, Val::Const(k)) => dynasm!(a ; .arch x64 ; or eax, k as i32),
        (A::Xor, Val::Slot(o)) => dynasm!(a ; .arch x64 ; xor eax, DWORD [rdi + o]),
        (A::Xor, Val::Const(k)) => dynasm!(a ; .arch x64 ; xor eax, k as i32),
        (A::And, Val::Reg(r)) => dynasm!(a ; .arch x64 ; and eax, Rd(r)),
        (A::Or, Val::Reg(r)) => dynasm!(a ; .arch x64 ; or eax, Rd(r)),
        (A::Xor, Val::Reg(r)) => dynasm!(a ; .arch x64 ; xor eax, Rd(r)),
        _ => {}
    }
}

/// The operands of a commutative op read so that eax, when it holds either, serves it:
/// swapped when it holds B only, B as eax itself when it holds both.
///
/// Why: the lowering often compares or adds a value it has just computed and stored
/// (`alu[AB_7, A_6, +, B_7]` right after B_7's write); read back from the slot, that
/// operand waited for its store to forward, on the block's critical path (perf samples of
/// the demo filter's native code gathered on the instruction after each such read).
/// [`super::super::slots::mem_reads`] counts such reads as served by eax, so the slot's
/// store may die. Measured (session 19, bench profile, `simspeed pre`): 2 host
/// instructions per frame more (a subtract's copy of eax), yet thread CPU time 1.018x and
/// 1/0.981 (10 interleaved rounds each way).
fn commuted((av, bv): (Val, Val), h: Held) -> (Val, Val) {
    if h.has(bv) && !h.has(av) {
        (bv, av)
    } else {
        (av, from_eax(bv, h))
    }
}

/// `v` as eax when eax holds it (an operand after eax's own, which holds it still).
fn from_eax(v: Val, h: Held) -> Val {
    if h.has(v) { Val::Reg(EAX) } else { v }
}

/// One ALU step: result in eax, flags stored as `live` says (eax holds `h` before).
pub(in super::super) fn alu(
    a: &mut Assembler,
    op: A,
    (av, bv): (Val, Val),
    live: (bool, bool),
    h: Held,
) {
    match op {
        A::PassB => load_eax(a, bv, h),
        A::NotB => {
            load_eax(a, bv, h);
            dynasm!(a ; .arch x64 ; not eax);
        }
        A::And | A::Or | A::Xor => {
            let (av, bv) = commuted((av, bv), h);
            load_eax(a, av, h);
            logic(a, op, bv);
        }
        A::AndNotA => {
            // B from a copy of eax when eax holds it (`not` changes eax before B's read).
            let bv = if h.has(bv) {
                debug_assert!(!matches!(av, Val::Reg(S8)));
                dynasm!(a ; .arch x64 ; mov r8d, eax);
                Val::Reg(S8)
            } else {
                bv
            };
            load_eax(a, av, h);
            dynasm!(a ; .arch x64 ; not eax);
            logic(a, A::And, bv);
        }
        A::AndNotB => {
            if h.has(bv) {
                dynasm!(a ; .arch x64 ; mov r8d, eax);
            } else {
                load(a, S8, bv);
            }
            dynasm!(a ; .arch x64 ; not r8d);
            load_eax(a, av, h);
            dynasm!(a ; .arch x64 ; and eax, r8d);
        }
        A::Add | A::AddCarry | A::Sub | A::SubCarry => {
            let (av, bv) = if matches!(op, A::Add | A::AddCarry) {
                commuted((av, bv), h)
            } else if h.has(bv) && !h.has(av) {
                // B is in eax and A is not: B moves aside (a register move) rather than
                // being read back from the slot just stored. (No caller passes r8d as an
                // operand: `x64_lm` passes r11d.)
                debug_assert!(!matches!(av, Val::Reg(S8)));
                dynasm!(a ; .arch x64 ; mov r8d, eax);
                (av, Val::Reg(S8))
            } else {
                (av, from_eax(bv, h))
            };
            load_eax(a, av, h);
            // The carry in: CF = c for add-with-carry, CF = !c (a borrow) for
            // subtract-with-carry. `mov` leaves flags alone, so eax is loaded first.
            match op {
                A::AddCarry => dynasm!(a ; .arch x64 ; mov r9b, BYTE [rdi + CC_C] ; add r9b, -1),
                A::SubCarry => dynasm!(a ; .arch x64 ; mov r9b, BYTE [rdi + CC_C] ; cmp r9b, 1),
                _ => {}
            }
            match (op, bv) {
                (A::Add, Val::Slot(o)) => dynasm!(a ; .arch x64 ; add eax, DWORD [rdi + o]),
                (A::Add, Val::Const(k)) => dynasm!(a ; .arch x64 ; add eax, k as i32),
                (A::AddCarry, Val::Slot(o)) => {
                    dynasm!(a ; .arch x64 ; adc eax, DWORD [rdi + o])
                }
                (A::AddCarry, Val::Const(k)) => dynasm!(a ; .arch x64 ; adc eax, k as i32),
                (A::Sub, Val::Slot(o)) => dynasm!(a ; .arch x64 ; sub eax, DWORD [rdi + o]),
                (A::Sub, Val::Const(k)) => dynasm!(a ; .arch x64 ; sub eax, k as i32),
                (A::SubCarry, Val::Slot(o)) => {
                    dynasm!(a ; .arch x64 ; sbb eax, DWORD [rdi + o])
                }
                (A::SubCarry, Val::Const(k)) => dynasm!(a ; .arch x64 ; sbb eax, k as i32),
                (A::Add, Val::Reg(r)) => dynasm!(a ; .arch x64 ; add eax, Rd(r)),
                (A::AddCarry, Val::Reg(r)) => dynasm!(a ; .arch x64 ; adc eax, Rd(r)),
                (A::Sub, Val::Reg(r)) => dynasm!(a ; .arch x64 ; sub eax, Rd(r)),
                (A::SubCarry, Val::Reg(r)) => dynasm!(a ; .arch x64 ; sbb eax, Rd(r)),
                _ => {}
            }
            if live.1 {
                if matches!(op, A::Add | A::AddCarry) {
                    dynasm!(a ; .arch x64 ; setc BYTE [rdi + CC_C]);
                } else {
                    dynasm!(a ; .arch x64 ; setnc BYTE [rdi + CC_C]);
                }
                dynasm!(a ; .arch x64 ; seto BYTE [rdi + CC_V]);
            }
        }
    }
    if live.0 {
        dynasm!(a ; .arch x64 ; mov DWORD [rdi + CC_RES], eax);
    }
}
