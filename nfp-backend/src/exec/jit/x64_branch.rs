//! The branches that end [`super::x64`]'s blocks: deciding them on the host's flags or on
//! the stored condition codes (`fast_handlers::cond`'s rules); and which copies keep a
//! branch's sunk flags pending ([`pending_on`], moved here from `x64` to keep that file
//! under 800 lines).

use super::super::fast::A;
use super::x64::Tail;
use super::x64::{CC_RES, Val, val};
use super::x64_emit::{self, Redo};
use super::{Step, x64::CC_C, x64::CC_V};
use crate::target::Cond;
use dynasmrt::DynamicLabel;
use dynasmrt::{DynasmApi, DynasmLabelApi, dynasm, x64::Assembler};

/// Jumps to the local label `fall` unless the branch step `s` is taken: on the host
/// flags of the ALU op `flags` that set the stored ones last, when they decide it
/// ([`host_branch`]); else one compare of the stored flag or source slot and a conditional
/// jump, where the condition is one flag (the signed ones compute it in eax with
/// [`signed_cond`]).
pub(super) fn unless_taken(a: &mut Assembler, s: Step, flags: Option<A>) {
    if let (Step::Br { cond }, Some(op)) = (s, flags)
        && host_branch(a, cond, op)
    {
        return;
    }
    match s {
        Step::Br { cond } => match cond {
            Cond::Eq => dynasm!(a ; .arch x64 ; cmp DWORD [rdi + CC_RES], 0 ; jne >fall),
            Cond::Ne => dynasm!(a ; .arch x64 ; cmp DWORD [rdi + CC_RES], 0 ; je >fall),
            Cond::Mi => dynasm!(a ; .arch x64 ; cmp DWORD [rdi + CC_RES], 0 ; jns >fall),
            Cond::Pl => dynasm!(a ; .arch x64 ; cmp DWORD [rdi + CC_RES], 0 ; js >fall),
            Cond::Hs => dynasm!(a ; .arch x64 ; cmp BYTE [rdi + CC_C], 0 ; je >fall),
            Cond::Lo => dynasm!(a ; .arch x64 ; cmp BYTE [rdi + CC_C], 0 ; jne >fall),
            Cond::Vs => dynasm!(a ; .arch x64 ; cmp BYTE [rdi + CC_V], 0 ; je >fall),
            Cond::Vc => dynasm!(a ; .arch x64 ; cmp BYTE [rdi + CC_V], 0 ; jne >fall),
            Cond::Always => {}
            Cond::Ge | Cond::Lt | Cond::Le | Cond::Gt => {
                signed_cond(a, cond);
                dynasm!(a ; .arch x64 ; test eax, eax ; jz >fall);
            }
        },
        Step::BrBit { src, bit, set } => {
            let m = (1u32 << (bit & 31)) as i32;
            match val(src) {
                Val::Slot(o) => dynasm!(a ; .arch x64 ; test DWORD [rdi + o], m),
                Val::Const(k) => dynasm!(a ; .arch x64 ; mov eax, k as i32 ; test eax, m),
                Val::Reg(r) => dynasm!(a ; .arch x64 ; test Rd(r), m),
            }
            if set {
                dynasm!(a ; .arch x64 ; jz >fall);
            } else {
                dynasm!(a ; .arch x64 ; jnz >fall);
            }
        }
        // Not a branch: `compile` gives such a block no `Tail::Branch`.
        _ => {}
    }
}

/// Jumps to `fall` unless `cond` holds, on the host flags the ALU op `op` left: the zero
/// and sign of its result, and for add / subtract its carry (the ME's carry is the host's
/// for add, its inverse for subtract) and overflow (the ME's, see `x64_alu::alu`); `false`, and
/// nothing emitted, when they do not decide `cond` (a logic op leaves the ME's carry and
/// overflow alone). Saves the compare of the stored flag on most branches (the lowering
/// branches right after its compare).
fn host_branch(a: &mut Assembler, cond: Cond, op: A) -> bool {
    let arith = matches!(op, A::Add | A::AddCarry | A::Sub | A::SubCarry);
    let sub = matches!(op, A::Sub | A::SubCarry);
    match cond {
        Cond::Eq => dynasm!(a ; .arch x64 ; jne >fall),
        Cond::Ne => dynasm!(a ; .arch x64 ; je >fall),
        Cond::Mi => dynasm!(a ; .arch x64 ; jns >fall),
        Cond::Pl => dynasm!(a ; .arch x64 ; js >fall),
        Cond::Hs if arith && sub => dynasm!(a ; .arch x64 ; jc >fall),
        Cond::Hs if arith => dynasm!(a ; .arch x64 ; jnc >fall),
        Cond::Lo if arith && sub => dynasm!(a ; .arch x64 ; jnc >fall),
        Cond::Lo if arith => dynasm!(a ; .arch x64 ; jc >fall),
        Cond::Vs if arith => dynasm!(a ; .arch x64 ; jno >fall),
        Cond::Vc if arith => dynasm!(a ; .arch x64 ; jo >fall),
        Cond::Ge if arith => dynasm!(a ; .arch x64 ; jl >fall),
        Cond::Lt if arith => dynasm!(a ; .arch x64 ; jge >fall),
        Cond::Le if arith => dynasm!(a ; .arch x64 ; jg >fall),
        Cond::Gt if arith => dynasm!(a ; .arch x64 ; jle >fall),
        _ => return false,
    }
    true
}

/// eax = whether the signed condition `cond` holds on the stored flags
/// (`fast_handlers::cond`): N from the stored result, V from its byte (the other
/// conditions are one flag each, tested by [`unless_taken`] itself).
fn signed_cond(a: &mut Assembler, cond: Cond) {
    // r8d = N, r9d = V.
    dynasm!(a ; .arch x64
        ; mov r8d, DWORD [rdi + CC_RES] ; shr r8d, 31
        ; movzx r9d, BYTE [rdi + CC_V]);
    match cond {
        Cond::Ge => dynasm!(a ; .arch x64 ; xor eax, eax ; cmp r8d, r9d ; sete al),
        Cond::Lt => dynasm!(a ; .arch x64 ; xor eax, eax ; cmp r8d, r9d ; setne al),
        Cond::Le => dynasm!(a ; .arch x64
            ; xor r8d, r9d
            ; xor eax, eax ; cmp DWORD [rdi + CC_RES], 0 ; sete al
            ; or eax, r8d),
        Cond::Gt => dynasm!(a ; .arch x64
            ; xor r8d, r9d ; xor r8d, 1
            ; xor eax, eax ; cmp DWORD [rdi + CC_RES], 0 ; setne al
            ; and eax, r8d),
        // Never asked for (see above): always taken.
        _ => dynasm!(a ; .arch x64 ; mov eax, 1),
    }
}

/// Whether the host flags of `op` decide a branch on `cond` ([`host_branch`] emits a jump
/// then, and reads no stored flag).
fn decides(cond: Cond, op: A) -> bool {
    let arith = matches!(op, A::Add | A::AddCarry | A::Sub | A::SubCarry);
    arith || matches!(cond, Cond::Eq | Cond::Ne | Cond::Mi | Cond::Pl)
}

/// The ALU step of an unchecked block ending in a branch whose flag stores move onto the
/// branch's paths ([`store_sunk`]), if any: the last step but `immed`s before the branch,
/// one whose host flags decide it.
///
/// Why: the lowering compares right before it branches, and the block after the
/// fall-through often overwrites the flags at once (`ld_field` of the next header field,
/// then its compare), so the result, carry and overflow stores (3 host instructions) are
/// only needed on the taken path, where they are made (the demo filter: 3 of its 7
/// compare-and-branch blocks per packet).
pub(super) fn sink_at(steps: &[Step]) -> Option<usize> {
    let (Step::Br { cond }, body) = steps.split_last()? else {
        return None;
    };
    let i = body.iter().rposition(|s| !matches!(s, Step::Set { .. }))?;
    match body[i] {
        Step::Alu { op, .. } if !matches!(op, A::PassB | A::NotB) && decides(*cond, op) => Some(i),
        _ => None,
    }
}

/// Whether the block of `steps` overwrites the stored result and (both) carry and
/// overflow before it reads them or may leave (then their stores before a jump into it
/// are not needed: [`sink_at`]).
pub(super) fn kills(steps: &[Step]) -> (bool, bool) {
    let (mut res, mut cv) = (None, None);
    for s in steps {
        if super::reads_flags(s) {
            break;
        }
        let (reads_c, writes_cv, writes_res) = super::flag_use(s);
        if reads_c {
            cv.get_or_insert(false);
        }
        if writes_cv {
            cv.get_or_insert(true);
        }
        if writes_res {
            res.get_or_insert(true);
        }
    }
    (res == Some(true), cv == Some(true))
}

/// Stores the flags of the sunk ALU step `op` ([`sink_at`]): its result (in eax, or
/// recomputed from `cmp`'s operands when the step was a compare, `x64::compare_at`) when
/// `res`, its carry and overflow (the host's flags, intact after the branch's jump) when
/// `cv` and `op` writes them.
pub(super) fn store_sunk(
    a: &mut Assembler,
    op: A,
    (res, cv): (bool, bool),
    cmp: Option<(i32, Val)>,
) {
    if res && cmp.is_none() {
        dynasm!(a ; .arch x64 ; mov DWORD [rdi + CC_RES], eax);
    }
    if cv {
        match op {
            A::Add | A::AddCarry => {
                dynasm!(a ; .arch x64 ; setc BYTE [rdi + CC_C] ; seto BYTE [rdi + CC_V])
            }
            A::Sub | A::SubCarry => {
                dynasm!(a ; .arch x64 ; setnc BYTE [rdi + CC_C] ; seto BYTE [rdi + CC_V])
            }
            _ => {}
        }
    }
    // (After the carry and overflow: the recompute changes the host flags.)
    if let (true, Some(c)) = (res, cmp) {
        super::x64::sub_result(a, c);
        dynasm!(a ; .arch x64 ; mov DWORD [rdi + CC_RES], eax);
    }
}

/// The exit op at address `pc` (`Op::Exit`), native: what `fast_branch::exit` does (the
/// exit's issue cycles beyond its count into `Cx::add_extra`, the count and pc into the
/// thread, `Out::Done`), entered with the count in `rcx` (no lag) like a block. The blocks
/// that go on to an exit jump here (`x64::compile` gives them its label as the block
/// there) instead of loading its hop and jumping through the handler, which also reads
/// the pc from the hop: callgrind, `simspeed pre`, 879.2 -> 876.4 host instructions
/// per frame; laid out once right after the first unchecked block that falls through to
/// it (no jump there, its lag settled by an add), 875.1 -> 874.2. Returns, as the handler
/// would: blocks run as tail-called handlers and push nothing (see `x64::block`), so the
/// return goes to the driver. The hop keeps
/// `fast_branch::exit` for the handlers and drivers that reach it otherwise.
pub(super) fn native_exit(a: &mut Assembler, pc: usize, lat: &crate::cost::Latencies) {
    use super::super::fast_run::Out;
    use super::super::thread::Thread;
    use std::mem::offset_of;
    const INSNS: i32 = offset_of!(Thread, insns) as i32;
    const PC: i32 = offset_of!(Thread, pc) as i32;
    const DONE: i32 = Out::Done as u8 as i32;
    // (Addresses are below `u16::MAX`, see `FastProgram::new`.)
    let pc = pc as i32;
    // `lat.exit.saturating_sub(1)`, a constant of the table the code is for.
    super::x64::add_extra(a, lat.exit.saturating_sub(1), super::x64::EAX);
    dynasm!(a ; .arch x64
        ; mov QWORD [rdi + INSNS], rcx
        ; mov DWORD [rdi + PC], pc
        ; mov eax, DONE
        ; ret);
}

/// The flags pending in each copy laid out from the unchecked block at `pc` on, entered
/// with the flags of `r` pending (`x64_emit::pending_redos`), if they can stay pending:
/// the copy's exits recompute them until it overwrites them, or it passes them on unread
/// to the block after, whose copy laid out next takes them on in turn (straight on or
/// through a passed swap, the run after it paid: nothing reads flags on the way). At most
/// 2 blocks on (a bound check's read and the compare after it; bounds the copies: a block
/// has its own copy, at most 2 in fall-through chains and 2 in a taken path's, and each
/// fall-through copy spawns a taken path's); `None` too when no exit would recompute them.
pub(super) fn pending_on(
    plans: &[Option<(Vec<Step>, Tail)>],
    unchecked: &[Option<DynamicLabel>],
    mut pc: usize,
    mut r: Redo,
) -> Option<Vec<Redo>> {
    let mut out = Vec::new();
    for _ in 0..2 {
        let (Some((st, tail)), Some(_)) = (plans.get(pc)?, unchecked.get(pc).copied()?) else {
            return None;
        };
        let sink = match tail {
            Tail::Branch { .. } => sink_at(st),
            _ => None,
        };
        let (redo, left) = x64_emit::pending_redos(st, r, sink)?;
        out.push(r);
        let Some(left) = left else {
            // Not worth a copy when the first block overwrites them before any exit
            // (its own copy stores none of them either, `x64_branch::kills`).
            let read = out.len() > 1 || redo.iter().any(Option::is_some);
            return read.then_some(out);
        };
        let to = match *tail {
            Tail::Next { to } => to,
            Tail::Swap { to, run, .. } if run != 0 => to,
            _ => return None,
        };
        pc = usize::try_from(i64::try_from(pc).ok()? + i64::from(to)).ok()?;
        r = left;
    }
    None
}
