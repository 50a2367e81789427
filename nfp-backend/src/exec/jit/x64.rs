//! The x86-64 code generator of [`super`]: blocks as handlers (System V, Unix hosts).

use super::*;
use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi, dynasm, x64::Assembler};

use super::super::fast::Hop;
use super::super::fast_run::{CX_EXTRA, CX_LAT, CX_LIMIT, CX_PENALTY, unpaid_at};
use super::super::thread::Thread;
use std::mem::{offset_of, size_of};

/// Byte offsets from the thread (`rdi`): its register file and condition codes.
const FILE: i32 = offset_of!(Thread, file) as i32;
const CC_RES: i32 = (offset_of!(Thread, cc) + offset_of!(Cc, res)) as i32;
const CC_C: i32 = (offset_of!(Thread, cc) + offset_of!(Cc, c)) as i32;
const CC_V: i32 = (offset_of!(Thread, cc) + offset_of!(Cc, v)) as i32;
/// Byte offsets from `Cx` (`rsi`).
const LIMIT: i32 = CX_LIMIT as i32;
const EXTRA: i32 = CX_EXTRA as i32;
const PENALTY: i32 = CX_PENALTY as i32;
/// `cx.mem.lat`, and the offset of `csr_write_delay` in what it points to.
const LAT: i32 = CX_LAT as i32;
const CSR_DELAY: i32 = offset_of!(crate::cost::Latencies, csr_write_delay) as i32;
/// The thread's LM window addresses (`u32`s) and their ready counts (`u64`s).
const LM_ADDR: i32 = offset_of!(Thread, lm_addr) as i32;
const LM_READY: i32 = offset_of!(Thread, lm_ready) as i32;
/// The size of a hop and the offset of its plain handler.
const HOP: i32 = size_of::<Hop>() as i32;
const H: i32 = offset_of!(Hop, h) as i32;

/// An operand: a slot of the file, or a constant (zero / immediate slots).
#[derive(Clone, Copy)]
enum Val {
    Slot(i32),
    Const(u32),
}

fn val(s: u16) -> Val {
    let s = usize::from(s) & (slot::FILE - 1);
    if s == slot::ZERO {
        Val::Const(0)
    } else if s >= slot::IMM {
        Val::Const((s - slot::IMM) as u32)
    } else {
        Val::Slot(FILE + 4 * s as i32)
    }
}

/// Host register numbers for [`load`].
const EAX: u8 = 0;
const ECX: u8 = 1;
const EDX: u8 = 2;

/// Loads `v` into the 32-bit register `r`.
fn load(a: &mut Assembler, r: u8, v: Val) {
    match v {
        Val::Slot(o) => dynasm!(a ; .arch x64 ; mov Rd(r), DWORD [rdi + o]),
        Val::Const(k) => dynasm!(a ; .arch x64 ; mov Rd(r), k as i32),
    }
}

/// Stores eax to both slots of `d` (the sink slot is never read: skipped).
fn store(a: &mut Assembler, d: D) {
    for (i, &s) in d.iter().enumerate() {
        if usize::from(s) == slot::SINK || (i == 1 && d[1] == d[0]) {
            continue;
        }
        let o = FILE + 4 * i32::from(s);
        dynasm!(a ; .arch x64 ; mov DWORD [rdi + o], eax);
    }
}

/// `eax = eax OP b` for the logic ops (no carry/overflow).
fn logic(a: &mut Assembler, op: A, b: Val) {
    match (op, b) {
        (A::And, Val::Slot(o)) => dynasm!(a ; .arch x64 ; and eax, DWORD [rdi + o]),
        (A::And, Val::Const(k)) => dynasm!(a ; .arch x64 ; and eax, k as i32),
        (A::Or, Val::Slot(o)) => dynasm!(a ; .arch x64 ; or eax, DWORD [rdi + o]),
        (A::Or, Val::Const(k)) => dynasm!(a ; .arch x64 ; or eax, k as i32),
        (A::Xor, Val::Slot(o)) => dynasm!(a ; .arch x64 ; xor eax, DWORD [rdi + o]),
        (A::Xor, Val::Const(k)) => dynasm!(a ; .arch x64 ; xor eax, k as i32),
        _ => {}
    }
}

/// One ALU step: result in eax, flags stored as `live` says.
fn alu(a: &mut Assembler, op: A, av: Val, bv: Val, live: (bool, bool)) {
    match op {
        A::PassB => load(a, EAX, bv),
        A::NotB => {
            load(a, EAX, bv);
            dynasm!(a ; .arch x64 ; not eax);
        }
        A::And | A::Or | A::Xor => {
            load(a, EAX, av);
            logic(a, op, bv);
        }
        A::AndNotA => {
            load(a, EAX, av);
            dynasm!(a ; .arch x64 ; not eax);
            logic(a, A::And, bv);
        }
        A::AndNotB => {
            load(a, ECX, bv);
            dynasm!(a ; .arch x64 ; not ecx);
            load(a, EAX, av);
            dynasm!(a ; .arch x64 ; and eax, ecx);
        }
        A::Add | A::AddCarry | A::Sub | A::SubCarry => {
            load(a, EAX, av);
            // The carry in: CF = c for add-with-carry, CF = !c (a borrow) for
            // subtract-with-carry. `mov` leaves flags alone, so eax is loaded first.
            match op {
                A::AddCarry => dynasm!(a ; .arch x64 ; mov dl, BYTE [rdi + CC_C] ; add dl, -1),
                A::SubCarry => dynasm!(a ; .arch x64 ; mov dl, BYTE [rdi + CC_C] ; cmp dl, 1),
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

/// `eax = shift(kind, a, b, count)`, the count a constant or in cl (`None`).
fn shift(a: &mut Assembler, kind: ShiftKind, av: Val, bv: Val, n: Option<u8>) {
    load(a, EAX, bv);
    if kind == ShiftKind::DoubleRight {
        load(a, EDX, av);
    }
    match (kind, n) {
        (_, Some(0)) => {}
        (ShiftKind::Left, Some(k)) => dynasm!(a ; .arch x64 ; shl eax, k as i8),
        (ShiftKind::Right, Some(k)) => dynasm!(a ; .arch x64 ; shr eax, k as i8),
        (ShiftKind::ArithRight, Some(k)) => dynasm!(a ; .arch x64 ; sar eax, k as i8),
        (ShiftKind::RotRight, Some(k)) => dynasm!(a ; .arch x64 ; ror eax, k as i8),
        (_, Some(k)) => dynasm!(a ; .arch x64 ; shrd eax, edx, k as i8),
        (ShiftKind::Left, None) => dynasm!(a ; .arch x64 ; shl eax, cl),
        (ShiftKind::Right, None) => dynasm!(a ; .arch x64 ; shr eax, cl),
        (ShiftKind::ArithRight, None) => dynasm!(a ; .arch x64 ; sar eax, cl),
        (ShiftKind::RotRight, None) => dynasm!(a ; .arch x64 ; ror eax, cl),
        (_, None) => dynasm!(a ; .arch x64 ; shrd eax, edx, cl),
    }
}

fn emit(a: &mut Assembler, steps: &[Step]) {
    let live = live_flags(steps);
    for (s, &l) in steps.iter().zip(&live) {
        match *s {
            Step::Alu { op, d, a: x, b } => {
                alu(a, op, val(x), val(b), l);
                store(a, d);
            }
            Step::Shf {
                kind,
                d,
                a: x,
                b,
                n,
            } => {
                shift(a, kind, val(x), val(b), Some(n));
                if l.0 {
                    dynasm!(a ; .arch x64 ; mov DWORD [rdi + CC_RES], eax);
                }
                store(a, d);
            }
            Step::ShfInd { kind, d, a: x, b } => {
                // The previous step (its ALU op) left its result in eax.
                dynasm!(a ; .arch x64 ; mov ecx, eax);
                shift(a, kind, val(x), val(b), None);
                if l.0 {
                    dynasm!(a ; .arch x64 ; mov DWORD [rdi + CC_RES], eax);
                }
                store(a, d);
            }
            Step::Set { d, v } => {
                for (i, &s) in d.iter().enumerate() {
                    if usize::from(s) == slot::SINK || (i == 1 && d[1] == d[0]) {
                        continue;
                    }
                    let o = FILE + 4 * i32::from(s);
                    dynasm!(a ; .arch x64 ; mov DWORD [rdi + o], v as i32);
                }
            }
            Step::Merge { d, keep, v } => {
                load(a, EAX, val(u16::from(d[0])));
                dynasm!(a ; .arch x64 ; and eax, keep as i32 ; or eax, v as i32);
                store(a, d);
            }
            Step::Ld {
                d,
                b,
                rot,
                mask,
                keep,
            } => {
                match val(b) {
                    Val::Const(k) => {
                        let k = k.rotate_right(u32::from(rot)) & mask;
                        dynasm!(a ; .arch x64 ; mov ecx, k as i32);
                    }
                    v => {
                        load(a, ECX, v);
                        if rot % 32 != 0 {
                            dynasm!(a ; .arch x64 ; ror ecx, (rot % 32) as i8);
                        }
                        dynasm!(a ; .arch x64 ; and ecx, mask as i32);
                    }
                }
                if keep == 0 {
                    dynasm!(a ; .arch x64 ; mov eax, ecx);
                } else {
                    load(a, EAX, val(u16::from(d[0])));
                    dynasm!(a ; .arch x64 ; and eax, keep as i32 ; or eax, ecx);
                }
                store(a, d);
            }
            Step::Csr { n, src, rem } => {
                // As `fast_handlers::csr_lm`: the address, and the count before which
                // index n may not be used, `n - rem + min(csr_write_delay, 250)` (`r9`
                // is the count n of the run).
                let i = i32::from(n);
                let (addr, ready) = (LM_ADDR + 4 * i, LM_READY + 8 * i);
                let rem = i32::from(rem);
                load(a, EAX, val(src));
                dynasm!(a ; .arch x64
                    ; mov DWORD [rdi + addr], eax
                    ; mov rax, QWORD [rsi + LAT]
                    ; mov eax, DWORD [rax + CSR_DELAY]
                    ; mov ecx, 250
                    ; cmp eax, ecx
                    ; cmova eax, ecx
                    ; add rax, r9
                    ; sub rax, rem
                    ; mov QWORD [rdi + ready], rax);
            }
            // The block's tail decides the branch (`unless_taken`).
            Step::Br { .. } | Step::BrBit { .. } => {}
        }
    }
}

/// Where a block goes on, in hops from its first op (`fast_run::next` or
/// `fast_branch::branch` as code).
#[derive(Clone, Copy)]
enum Tail {
    /// To the op `to` hops on, paying nothing (straight-line ops continue in their run).
    Next { to: i32 },
    /// A branch (the last step): to `t` paying `rt` with the taken penalty when it is
    /// taken, else to `f` paying `rn`.
    Branch { t: i32, rt: u16, f: i32, rn: u16 },
}

/// A whole block: the handler prologue (`r8` = the op, `r9` = the count), the label
/// `me` where other blocks enter it with those set, the body, and the jump on. `next`
/// gives the entry label of the block `to` hops on, if there is one: the jump goes
/// straight there (same registers, no handler load, no prologue).
fn block(
    a: &mut Assembler,
    steps: &[Step],
    tail: Tail,
    me: DynamicLabel,
    next: &dyn Fn(i32) -> Option<DynamicLabel>,
) {
    dynasm!(a ; .arch x64 ; mov r8, rdx ; mov r9, rcx ; =>me);
    emit(a, steps);
    match tail {
        Tail::Next { to } => {
            let o = to * HOP;
            match next(to) {
                Some(l) => dynasm!(a ; .arch x64 ; add r8, o ; jmp =>l),
                None => dynasm!(a ; .arch x64
                    ; lea rdx, [r8 + o]
                    ; mov rcx, r9
                    ; jmp QWORD [rdx + H]),
            }
        }
        Tail::Branch { t, rt, f, rn } => {
            if let Some(&last) = steps.last() {
                unless_taken(a, last);
            }
            dynasm!(a ; .arch x64
                ; mov rax, QWORD [rsi + PENALTY]
                ; add QWORD [rsi + EXTRA], rax);
            pay(a, t, rt, next(t));
            dynasm!(a ; .arch x64 ; fall:);
            pay(a, f, rn, next(f));
        }
    }
}

/// `fast_run::pay` of `run` at the op `to` hops on: continues there with the count
/// plus `run` when `run - 1 < limit - n` (at the block entry `l` when there is one),
/// else leaves through `unpaid_at` (which reads the same run from the hop there: a
/// branch's `rt` / `rn` are copies of the target's and the fall-through's runs).
fn pay(a: &mut Assembler, to: i32, run: u16, l: Option<DynamicLabel>) {
    let o = to * HOP;
    if run != 0 {
        // (Not named `r1`: dynasm would read that as a register.)
        let (r, below) = (i32::from(run), i32::from(run) - 1);
        dynasm!(a ; .arch x64
            ; mov rax, QWORD [rsi + LIMIT]
            ; sub rax, r9
            ; cmp rax, below
            ; jbe >unpaid);
        match l {
            Some(l) => dynasm!(a ; .arch x64 ; add r9, r ; add r8, o ; jmp =>l),
            None => dynasm!(a ; .arch x64
                ; lea rdx, [r8 + o]
                ; lea rcx, [r9 + r]
                ; jmp QWORD [rdx + H]),
        }
        dynasm!(a ; .arch x64 ; unpaid:);
    }
    let u = unpaid_at as Handler as usize as i64;
    dynasm!(a ; .arch x64
        ; lea rdx, [r8 + o]
        ; mov rcx, r9
        ; mov rax, QWORD u
        ; jmp rax);
}

/// Jumps to the local label `fall` unless the branch step `s` is taken: one compare of
/// the stored flag or source slot and a conditional jump, where the condition is one
/// flag (the signed ones compute it in eax with [`signed_cond`]).
fn unless_taken(a: &mut Assembler, s: Step) {
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

/// eax = whether the signed condition `cond` holds on the stored flags
/// (`fast_handlers::cond`): N from the stored result, V from its byte (the other
/// conditions are one flag each, tested by [`unless_taken`] itself).
fn signed_cond(a: &mut Assembler, cond: Cond) {
    // ecx = N, edx = V.
    dynasm!(a ; .arch x64
        ; mov ecx, DWORD [rdi + CC_RES] ; shr ecx, 31
        ; movzx edx, BYTE [rdi + CC_V]);
    match cond {
        Cond::Ge => dynasm!(a ; .arch x64 ; xor eax, eax ; cmp ecx, edx ; sete al),
        Cond::Lt => dynasm!(a ; .arch x64 ; xor eax, eax ; cmp ecx, edx ; setne al),
        Cond::Le => dynasm!(a ; .arch x64
            ; xor ecx, edx
            ; xor eax, eax ; cmp DWORD [rdi + CC_RES], 0 ; sete al
            ; or eax, ecx),
        Cond::Gt => dynasm!(a ; .arch x64
            ; xor ecx, edx ; xor ecx, 1
            ; xor eax, eax ; cmp DWORD [rdi + CC_RES], 0 ; setne al
            ; and eax, ecx),
        // Never asked for (see above): always taken.
        _ => dynasm!(a ; .arch x64 ; mov eax, 1),
    }
}

/// A block's steps and tail at `pc`, if a block starts there.
fn plan(ops: &[Op], pc: usize) -> Option<(Vec<Step>, Tail)> {
    let b = block_at(ops, pc)?;
    // Hops from `pc` (addresses are below `u16::MAX`, see `FastProgram::new`).
    let rel = |at: usize| i32::try_from(at).ok()?.checked_sub(i32::try_from(pc).ok()?);
    let st = steps(&b);
    let tail = match b.last() {
        Some(&(at, op)) if ends_block(&op) => {
            let (t, rt, rn) = branch_parts(&op)?;
            // The tail decides the branch from the last step.
            if !matches!(st.last(), Some(Step::Br { .. } | Step::BrBit { .. })) {
                return None;
            }
            Tail::Branch {
                t: rel(usize::from(t))?,
                rt,
                f: rel(at + op.width())?,
                rn,
            }
        }
        Some(&(at, op)) => Tail::Next {
            to: rel(at + op.width())?,
        },
        None => return None,
    };
    Some((st, tail))
}

pub(super) fn compile(ops: &[Op]) -> Option<Compiled> {
    let mut asm = Assembler::new().ok()?;
    let plans: Vec<_> = (0..ops.len()).map(|pc| plan(ops, pc)).collect();
    // Every block's entry after its prologue, for the blocks that jump to it (a block
    // runs its ops exactly as their handlers would, whichever handler its hop has).
    let labels: Vec<Option<DynamicLabel>> = plans
        .iter()
        .map(|p| p.as_ref().map(|_| asm.new_dynamic_label()))
        .collect();
    let mut starts = Vec::with_capacity(ops.len());
    for (pc, p) in plans.iter().enumerate() {
        starts.push(match (p, labels[pc]) {
            (Some((st, tail)), Some(me)) => {
                let start = asm.offset();
                let next = |to: i32| {
                    let at = usize::try_from(i64::try_from(pc).ok()? + i64::from(to)).ok()?;
                    labels.get(at).copied().flatten()
                };
                block(&mut asm, st, *tail, me, &next);
                Some(start)
            }
            _ => None,
        });
    }
    let code = asm.finalize().ok()?;
    let blocks = starts
        .into_iter()
        .map(|s| {
            s.map(|start| {
                // SAFETY: `start` is the offset of code emitted above as a `Handler`
                // (System V, the `extern "C-unwind"` of the Unix hosts this module is
                // built for): it takes the thread, `Cx`, the op and the count in rdi, rsi, rdx,
                // rcx, touches only the thread's file and flags and `Cx`'s `extra`, and
                // ends by jumping to a handler with the same arguments (never
                // returning itself, so its `Out` is that handler's). The code lives as
                // long as the program, which holds `_code`.
                let h = unsafe { std::mem::transmute::<*const u8, Handler>(code.ptr(start)) };
                Block { h }
            })
        })
        .collect();
    Some(Compiled {
        _code: code,
        blocks,
    })
}
