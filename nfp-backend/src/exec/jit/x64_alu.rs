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

/// A subtract whose result nothing reads from `eax` as a host `cmp` of its A slot with B
/// ([`compare`]): `Some` of A's offset and B (`eax`, which holds it, or a constant), for a
/// step `alu[--, A, -, B]` that stores no result flag itself (`res`), with A in memory and
/// not in `eax` (the case where the subtract cost a load of A into `eax` and, with B in
/// `eax`, a copy of B aside: three host instructions where the `cmp` is one).
///
/// Why: the lowering's bound checks compare a register read from memory with the value
/// just computed (`alu[--, A_6, -, B_8]` then `blo`, twice per packet of the demo filter),
/// or with a constant, and branch on the host flags the compare sets; the result is read
/// only where the branch's sunk result flag is stored ([`sub_result`] recomputes it there)
/// or by exits that recompute the flags from the operands (`x64_emit::Redo`). `eax` keeps
/// what it held.
pub(in super::super) fn compare_form(
    (av, bv): (Val, Val),
    d: D,
    res: bool,
    h: Held,
) -> Option<(i32, Val)> {
    let Val::Slot(o) = av else {
        return None;
    };
    if res || h.has(av) || d.iter().any(|&s| usize::from(s) != slot::SINK) {
        return None;
    }
    match bv {
        _ if h.has(bv) => Some((o, Val::Reg(EAX))),
        Val::Const(k) => Some((o, Val::Const(k))),
        _ => None,
    }
}

/// The subtract of [`compare_form`] as `cmp`: the host flags of `sub`, the carry and
/// overflow stored when `cv` (`eax` unchanged).
pub(in super::super) fn compare(a: &mut Assembler, (o, b): (i32, Val), cv: bool) {
    match b {
        Val::Const(k) => dynasm!(a ; .arch x64 ; cmp DWORD [rdi + o], k as i32),
        Val::Reg(r) => dynasm!(a ; .arch x64 ; cmp DWORD [rdi + o], Rd(r)),
        // (Never: `compare_form` gives a constant or eax.)
        Val::Slot(p) => dynasm!(a ; .arch x64
            ; mov r8d, DWORD [rdi + p]
            ; cmp DWORD [rdi + o], r8d),
    }
    if cv {
        dynasm!(a ; .arch x64 ; setnc BYTE [rdi + CC_C] ; seto BYTE [rdi + CC_V]);
    }
}

/// `eax` = the result of the [`compare`] of `(o, b)` (A's slot, unchanged since, less B:
/// `eax` as it was at the compare, or a constant); changes the host flags.
pub(in super::super) fn sub_result(a: &mut Assembler, (o, b): (i32, Val)) {
    match b {
        Val::Reg(_) => dynasm!(a ; .arch x64 ; neg eax ; add eax, DWORD [rdi + o]),
        Val::Const(k) => dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + o] ; sub eax, k as i32),
        Val::Slot(p) => {
            dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + o] ; sub eax, DWORD [rdi + p])
        }
    }
}

/// [`compare_form`] for step `i` of `steps` (its operands `(av, bv)`, destination `d`,
/// whether it stores its result flag, what eax holds before it): not before a shift by
/// its result (`Step::ShfInd` reads it from eax), and, when its flags are sunk onto the
/// branch's paths (`sink`, where [`sub_result`] recomputes the result), with no `immed`
/// after it writing A's slot.
pub(in super::super) fn compare_at(
    steps: &[Step],
    i: usize,
    (av, bv): (Val, Val),
    (d, res, h): (D, bool, Held),
    sink: Option<usize>,
) -> Option<(i32, Val)> {
    let c = compare_form((av, bv), d, res, h)?;
    if matches!(steps.get(i + 1), Some(Step::ShfInd { .. })) {
        return None;
    }
    let writes_a = |s: &Step| match slot_use(s) {
        Some((_, w)) => w
            .iter()
            .any(|&w| usize::from(w) != slot::SINK && FILE + 4 * i32::from(w) == c.0),
        None => true,
    };
    if sink == Some(i) && steps.iter().skip(i + 1).any(writes_a) {
        return None;
    }
    Some(c)
}
