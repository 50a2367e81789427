//! The x86-64 code generator of [`super`]: blocks as handlers (System V, Unix hosts).

use super::x64_branch::pending_on;
use super::x64_emit;
use super::x64_emit::{Exit, Redo, emit, exit, sunk_redo};
use super::x64_lag::{Target, go_on, pay, settle};
use super::x64_sink::Kills;
use super::*;
use super::{
    x64_bound, x64_branch, x64_branch::unless_taken, x64_call, x64_lag, x64_mem, x64_pass, x64_sink,
};
use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi, dynasm, x64::Assembler};

use super::super::fast::Hop;
use super::super::fast_run::{CX_BASE, CX_EXTRA, CX_MARK_N};
use super::super::thread::Thread;
use std::mem::{offset_of, size_of};

/// Byte offsets from the thread (`rdi`): its register file and condition codes.
pub(super) const FILE: i32 = offset_of!(Thread, file) as i32;
pub(super) const CC_RES: i32 = (offset_of!(Thread, cc) + offset_of!(Cc, res)) as i32;
pub(super) const CC_C: i32 = (offset_of!(Thread, cc) + offset_of!(Cc, c)) as i32;
pub(super) const CC_V: i32 = (offset_of!(Thread, cc) + offset_of!(Cc, v)) as i32;
/// Byte offsets from `Cx` (`rsi`).
const EXTRA: i32 = CX_EXTRA as i32;
const BASE: i32 = CX_BASE as i32;
const MARK_N: i32 = CX_MARK_N as i32;
/// The thread's LM window addresses (`u32`s) and their ready counts (`u64`s).
pub(super) const LM_ADDR: i32 = offset_of!(Thread, lm_addr) as i32;
pub(super) const LM_READY: i32 = offset_of!(Thread, lm_ready) as i32;
/// The size of a hop and the offset of its plain handler.
pub(super) const HOP: i32 = size_of::<Hop>() as i32;
pub(super) const H: i32 = offset_of!(Hop, h) as i32;

/// `Cx::add_extra` of the constant `d` (a cost of the table the code is compiled for,
/// `compile`): nothing when it is 0; `r` is a scratch register for a `d` beyond an
/// immediate's range (an `add` of a 64-bit memory operand sign-extends its 32 bits).
///
/// Why constants: the code is compiled per program and table (`FastProgram::native_for`
/// guards runs with another table), and reading each cost through `Cx::mem::lat` was a
/// two-load chain per use (see the module docs of `jit`, session 19).
pub(super) fn add_extra(a: &mut Assembler, d: u32, r: u8) {
    match i32::try_from(d) {
        Ok(0) => {}
        Ok(d) => dynasm!(a ; .arch x64
            ; add QWORD [rsi + EXTRA], d
            ; sub QWORD [rsi + MARK_N], d),
        Err(_) => dynasm!(a ; .arch x64
            ; mov Rd(r), d as i32
            ; add QWORD [rsi + EXTRA], Rq(r)
            ; sub QWORD [rsi + MARK_N], Rq(r)),
    }
}

/// `rdx` = the hop of address `at` (`Cx::base` + `at` hops), for leaving to a handler.
///
/// Why blocks do not carry the op pointer in `rdx` from block to block (adding each
/// block's hops to it, as a handler's `ip`): only a block's exits read it, and they are
/// rare next to the jumps between blocks; computing it there from `Cx::base` costs one
/// instruction more per exit and saves one per block (see the module docs of `jit`).
pub(super) fn hop_at(a: &mut Assembler, at: usize) {
    // (Addresses are below `u16::MAX`, see `FastProgram::new`: the offset fits.)
    let o = at as i32 * HOP;
    dynasm!(a ; .arch x64 ; mov rdx, QWORD [rsi + BASE]);
    if o != 0 {
        dynasm!(a ; .arch x64 ; add rdx, o);
    }
}

/// An operand: a slot of the file, a constant (zero / immediate slots), or a host
/// register (the local-memory word an LM step loaded, see `x64_lm::step`).
#[derive(Clone, Copy)]
pub(super) enum Val {
    Slot(i32),
    Const(u32),
    Reg(u8),
}

pub(super) fn val(s: u16) -> Val {
    let s = usize::from(s) & (slot::FILE - 1);
    if s == slot::ZERO {
        Val::Const(0)
    } else if s >= slot::IMM {
        Val::Const((s - slot::IMM) as u32)
    } else {
        Val::Slot(FILE + 4 * s as i32)
    }
}

/// The offset of slot `s` in the thread (whatever kind of slot it is).
pub(super) fn val_off(s: u16) -> i32 {
    FILE + 4 * (usize::from(s) & (slot::FILE - 1)) as i32
}

/// Host register numbers for [`load`].
pub(super) const EAX: u8 = 0;
/// Scratch registers r8d and r9d (the argument register rcx holds the count throughout a
/// block, see [`block`]).
pub(super) const S8: u8 = 8;
pub(super) const S9: u8 = 9;
pub(super) const R11D: u8 = 11;

/// The slots whose value eax holds (the sink slot: none), so that loading one of them into
/// eax can be left out: straight-line code mostly computes on the value it just stored
/// (on the demo filter, 9 of its ~25 operand loads per packet).
#[derive(Clone, Copy)]
pub(super) struct Held(pub(super) D);

impl Held {
    pub(super) const NONE: Held = Held([slot::SINK as u8; 2]);

    /// After eax was stored to `d`.
    pub(super) fn of(d: D) -> Held {
        Held(d)
    }

    /// Whether eax holds `v`.
    pub(super) fn has(self, v: Val) -> bool {
        let Val::Slot(o) = v else {
            return false;
        };
        self.0
            .iter()
            .any(|&s| usize::from(s) != slot::SINK && FILE + 4 * i32::from(s) == o)
    }

    /// After a store of something else to `d`.
    pub(super) fn without(self, d: D) -> Held {
        let keep = |s: u8| if d.contains(&s) { slot::SINK as u8 } else { s };
        Held([keep(self.0[0]), keep(self.0[1])])
    }
}

/// Loads `v` into eax unless eax holds it.
pub(super) fn load_eax(a: &mut Assembler, v: Val, h: Held) {
    if !h.has(v) {
        load(a, EAX, v);
    }
}

/// Loads `v` into the 32-bit register `r`.
pub(super) fn load(a: &mut Assembler, r: u8, v: Val) {
    match v {
        Val::Slot(o) => dynasm!(a ; .arch x64 ; mov Rd(r), DWORD [rdi + o]),
        Val::Const(k) => dynasm!(a ; .arch x64 ; mov Rd(r), k as i32),
        Val::Reg(s) => dynasm!(a ; .arch x64 ; mov Rd(r), Rd(s)),
    }
}

/// Stores eax to both slots of `d` (the sink slot is never read: skipped).
pub(super) fn store(a: &mut Assembler, d: D) {
    for (i, &s) in d.iter().enumerate() {
        if usize::from(s) == slot::SINK || (i == 1 && d[1] == d[0]) {
            continue;
        }
        let o = FILE + 4 * i32::from(s);
        dynasm!(a ; .arch x64 ; mov DWORD [rdi + o], eax);
    }
}

// The ALU steps' host code (`alu`): a file of its own.
#[path = "x64_alu.rs"]
mod alu_step;
pub(super) use alu_step::{alu, compare, compare_at, sub_result};

/// Where a block goes on, in hops from its first op (`fast_run::next` or
/// `fast_branch::branch` as code).
#[derive(Clone, Copy)]
pub(super) enum Tail {
    /// To the op `to` hops on, paying nothing (straight-line ops continue in their run).
    Next { to: i32 },
    /// A branch (the last step): to `t` paying `rt` with the taken penalty when it is
    /// taken, else to `f` paying `rn`.
    Branch { t: i32, rt: u16, f: i32, rn: u16 },
    /// A swapping command (the last step) of `words` words to `target`: passes the swap
    /// and pays the run `run` at `to`, or swaps out ([`x64_pass::swap_or_pass`]).
    Swap {
        to: i32,
        run: u16,
        target: MemTarget,
        words: u8,
    },
    /// A map lookup (the last step): with its wait in `rax`, as `fast_mem::after_fw`: no
    /// wait pays the run `rn` at `to`, else the swap is passed or swapped out.
    Fw { to: i32, rn: u16 },
}

/// The entry label of the block some hops on from a block, if there is one, and the lag
/// it expects (`x64_lag`).
type Next<'a> = &'a dyn Fn(i32) -> Target;

/// A whole block: the label `me` where other blocks enter it (a handler's arguments in
/// their registers: `rdi`, `rsi` and `rcx` = the count throughout; `rdx`, the op, is not
/// read, see [`hop_at`]), the body, and the jump on, its cold exits returned (for
/// `compile` to emit after all blocks). `next` gives the entry label of the block `to`
/// hops on, if there is one: the jump goes straight there (same registers, no handler
/// load), or is left out when that block is `follows`, laid out right after this one.
/// `checked`: the checked copy, or the unchecked one (`x64_bound`). `pending`: this is a
/// copy entered only from a branch block (or a chain of copies after one) that left its
/// flags unstored (`x64_emit::sunk_redo`); `fall`: the label of such a copy laid out after
/// this block, for its fall-through (which then stores no flags); `taken`: the label of
/// such a copy for the branch's taken path.
///
/// Why the count stays in `rcx` (the body's scratch registers being `r8` / `r9`, and
/// `rcx` saved around the one shift by `cl`): a block entered from a handler then needs
/// no prologue (callgrind, `simspeed pre`: 1,943 -> 1,928 host instructions per frame,
/// counted as in the module docs of `jit`, against copying the op and count to `r8` /
/// `r9`).
fn block(
    a: &mut Assembler,
    (pc, steps): (usize, &[Step]),
    (tail, checked, lat): (Tail, bool, &Latencies),
    (me, follows): (DynamicLabel, Option<DynamicLabel>),
    (next, kills): (Next<'_>, &[Kills]),
    (pending, fall, taken): (Option<Redo>, Option<DynamicLabel>, Option<DynamicLabel>),
    lag: i32,
) -> (Vec<(DynamicLabel, Exit)>, Option<i32>) {
    dynasm!(a ; .arch x64 ; =>me);
    // The address `to` hops on (blocks of a program whose addresses fit `FastProgram::new`'s
    // `u16` are built only, see `plan`).
    let at = |to: i32| (pc as i64 + i64::from(to)) as usize;
    let mut exits = Vec::new();
    let sink = match tail {
        Tail::Branch { .. } if !checked => x64_branch::sink_at(steps),
        _ => None,
    };
    let sunk = sink.and_then(|i| match steps.get(i) {
        Some(&Step::Alu { op, .. }) => Some(op),
        _ => None,
    });
    // A lookup ending the block leaves its no-wait path to its cold exit.
    let fw = match tail {
        Tail::Fw { to, rn } if matches!(steps.last(), Some(Step::Lookup { .. })) => {
            Some(x64_emit::NoWait {
                to: at(to),
                rn,
                target: next(to),
                checked,
            })
        }
        _ => None,
    };
    // Stores the taken path makes, the fall-through's block overwriting them (`x64_sink`).
    let unstored = match tail {
        Tail::Branch { f, rn, .. } if !checked && fall.is_none() && rn != 0 => next(f)
            .and_then(|_| kills.get(at(f)))
            .and_then(|k| x64_sink::unstored(steps, k)),
        _ => None,
    };
    // The block after overwrites the result flag first (`x64_sink::res_at_exit`).
    let res_dies = match tail {
        Tail::Swap { to, run, .. } | Tail::Fw { to, rn: run } if !checked && run != 0 => {
            next(to).is_some() && kills.get(at(to)).is_some_and(|k| k.flags.0)
        }
        _ => false,
    };
    let facts = (unstored, res_dies, lag);
    let (flags, cmp) = emit(a, steps, &mut exits, (sink, pending, fw), facts, lat);
    // Where the block goes on when not branching: to `fall`'s copy, laid out next.
    let on = |to: i32| fall.map_or((next(to), follows), |l| (Some((l, 0)), Some(l)));
    let out = match tail {
        Tail::Next { to } => go_on(a, at(to), on(to), lag),
        Tail::Branch { t, rt, f, rn } => {
            if let Some(&last) = steps.last() {
                unless_taken(a, last, flags);
            }
            // The sunk flags: on the taken path (unless pending in the copy `taken`
            // there, `compile` checked `rt`), and on the fall-through unless the block
            // there overwrites them first (jumps leave the host flags alone) or they are
            // pending in the copy laid out next.
            if let (Some(op), None) = (sunk, taken) {
                x64_branch::store_sunk(a, op, (true, true), cmp);
            }
            if let Some(u) = unstored {
                x64_sink::restore(a, steps, u);
            }
            // `Cx::add_extra` of the penalty (`Cx::penalty`, the table's).
            add_extra(a, lat.branch_taken_penalty, EAX);
            let to_t = taken.map(|l| (l, 0)).or(next(t));
            pay(a, (at(t), rt), (to_t, None), checked, lag);
            dynasm!(a ; .arch x64 ; fall:);
            match (sunk, fall) {
                // Pending in the copy laid out next (`compile` checked `rn`).
                (Some(_), Some(l)) => pay(a, (at(f), rn), (Some((l, 0)), Some(l)), checked, lag),
                _ => {
                    if let Some(op) = sunk {
                        let (res, cv) = match next(f) {
                            Some(_) if rn != 0 => {
                                kills.get(at(f)).map(|k| k.flags).unwrap_or_default()
                            }
                            _ => (false, false),
                        };
                        x64_branch::store_sunk(a, op, (!res, !cv), cmp);
                    }
                    pay(a, (at(f), rn), (next(f), follows), checked, lag)
                }
            }
        }
        Tail::Swap {
            to,
            run,
            target,
            words,
        } => {
            let out = match target {
                MemTarget::Emem => x64_call::emem_swap as *const (),
                _ => x64_mem::ctm_swap as *const (),
            };
            let wait = x64_pass::cmd_latency(lat, target, words);
            let out = (out as usize, checked);
            x64_pass::swap_or_pass(a, (at(to), run), on(to), out, (lag, Some(wait)))
        }
        Tail::Fw { to, rn } => {
            let out = x64_call::lookup_swap as *const () as usize;
            // (The swap last: a lookup nearly always waits, and its pay may then fall
            // through to the block laid out next.)
            settle(a, lag);
            // (The no-wait path is at the lookup's exit when the lookup ends the block.)
            if fw.is_none() {
                dynasm!(a ; .arch x64 ; test rax, rax ; jnz >wait);
                pay(a, (at(to), rn), (next(to), None), checked, 0);
                dynasm!(a ; .arch x64 ; wait:);
            }
            let l = (next(to), follows);
            // Unchecked after a lookup that ends the block, the wait recorded is the
            // table's constant (the helper's path leaves the same in `rax`, `looked_up`
            // reading the table the code is for), `rax` left unset by the inline path.
            let wait = lat.fw_cost(crate::target::FwHelper::MapLookup).wait;
            let wait = (fw.is_some() && !checked).then_some(wait);
            x64_pass::swap_or_pass(a, (at(to), rn), l, (out, checked), (0, wait))
        }
    };
    (exits, out)
}

/// A block's steps and tail at `pc`, if a block starts there (`runs`: each address's run).
/// `lk`: the program's [`lookup_fd`], given to its lookups.
fn plan(ops: &[Op], runs: &[u16], pc: usize, lk: Option<u32>) -> Option<(Vec<Step>, Tail)> {
    let b = block_at(ops, pc)?;
    // Hops from `pc` (addresses are below `u16::MAX`, see `FastProgram::new`).
    let rel = |at: usize| i32::try_from(at).ok()?.checked_sub(i32::try_from(pc).ok()?);
    let mut st = steps(&b);
    for s in &mut st {
        if let Step::Lookup { fd, .. } = s {
            *fd = lk;
        }
    }
    let tail = match b.last() {
        Some(&(at, op @ Op::Cmd { target, words, .. })) if ends_block(&op) => Tail::Swap {
            to: rel(at + 1)?,
            run: runs.get(at + 1).copied()?,
            target,
            words,
        },
        Some(&(at, Op::Fw { rn, .. })) => Tail::Fw {
            to: rel(at + 1)?,
            rn,
        },
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

pub(super) fn compile(ops: &[Op], runs: &[u16], lat: &Latencies) -> Option<Compiled> {
    let mut asm = Assembler::new().ok()?;
    let lk = lookup_fd(ops.iter().copied());
    let plans: Vec<_> = (0..ops.len()).map(|pc| plan(ops, runs, pc, lk)).collect();
    // Every block's entry after its prologue, for the blocks that jump to it (a block
    // runs its ops exactly as their handlers would, whichever handler its hop has).
    let labels: Vec<Option<DynamicLabel>> = plans
        .iter()
        .map(|p| p.as_ref().map(|_| asm.new_dynamic_label()))
        .collect();
    // The unchecked copies (`x64_bound`): of every block with a bound, whose successors
    // all have one.
    let bounds = x64_bound::bounds(&plans);
    let unchecked: Vec<Option<DynamicLabel>> = plans
        .iter()
        .zip(&bounds)
        .map(|(p, b)| (p.is_some() && b.is_some()).then(|| asm.new_dynamic_label()))
        .collect();
    let mut starts = vec![None; ops.len()];
    let mut exits = Vec::new();
    // The native exits (`x64_branch::native_exit`), as blocks to jump to with no lag.
    let exit_l: Vec<Option<DynamicLabel>> = ops
        .iter()
        .map(|op| matches!(op, Op::Exit).then(|| asm.new_dynamic_label()))
        .collect();
    let next_in = |labels: &[Option<DynamicLabel>], pc: usize, to: i32| {
        let at = usize::try_from(i64::try_from(pc).ok()? + i64::from(to)).ok()?;
        let l = labels.get(at).copied().flatten();
        l.or(exit_l.get(at).copied().flatten()).map(|l| (l, 0))
    };
    // The unchecked blocks' own copies laid out with a lag (`x64_lag`): their body's
    // label and lag (their own label is then a stub, in `lag_stubs`).
    let mut body_of: Vec<Option<(DynamicLabel, i32)>> = vec![None; ops.len()];
    let mut lag_stubs = Vec::new();
    let next_u = |body_of: &[Option<(DynamicLabel, i32)>], pc: usize, to: i32| {
        let at = usize::try_from(i64::try_from(pc).ok()? + i64::from(to)).ok()?;
        body_of
            .get(at)
            .copied()
            .flatten()
            .or(next_in(&unchecked, pc, to))
    };
    // The checked blocks, in address order.
    for (pc, p) in plans.iter().enumerate() {
        if let (Some((st, tail)), Some(me)) = (p, labels[pc]) {
            starts[pc] = Some(asm.offset());
            let next = |to| next_in(&labels, pc, to);
            let (tail, to) = ((*tail, true, lat), (me, None));
            let (ex, _) = block(
                &mut asm,
                (pc, st),
                tail,
                to,
                (&next, &[]),
                (None, None, None),
                0,
            );
            exits.extend(ex.into_iter().map(|e| (e, 0)));
        }
    }
    // The unchecked ones, in chains where each is followed by the block it goes on to
    // (a branch's fall-through), whose jump there is then left out: a chain starts at the
    // first block not yet laid out, with its handler's entry check (`x64_bound`) if it has
    // one; the other entries jump to their block.
    // What each block overwrites before reading (`x64_branch::kills`).
    let kills: Vec<Kills> = plans
        .iter()
        .map(|p| p.as_ref().map(|(st, _)| Kills::of(st)).unwrap_or_default())
        .collect();
    let mut placed = vec![false; ops.len()];
    let mut exit_placed = vec![false; ops.len()];
    let mut stubs = Vec::new();
    // Where the room check of the block at 0 starts, inside its entry check.
    let mut first_room = None;
    // Copies for branches' taken paths, to lay out after the rest: the address, the
    // label, the flags pending in each copy of the chain (`pending_on`).
    let mut taken_chains: Vec<(usize, DynamicLabel, Vec<Redo>)> = Vec::new();
    for head in 0..plans.len() {
        let mut pc = head;
        // A copy of the block at `pc` for the fall-through before it alone, with the flags
        // its branch left pending (`x64_emit::sunk_redo`): its label and those flags.
        let mut spec: Option<DynamicLabel> = None;
        // The flags pending in that copy and in the copies laid out after it, one per
        // block, as `pending_on` found them.
        let mut chain: Vec<Redo> = Vec::new();
        // How far `rcx` is behind the count where the block before falls through into
        // this one (`x64_lag`).
        let mut lag = 0;
        while let (Some((st, tail)), Some(u), Some(b)) = (&plans[pc], unchecked[pc], bounds[pc]) {
            if spec.is_none() {
                if placed[pc] {
                    break;
                }
                placed[pc] = true;
            }
            let to = match *tail {
                Tail::Next { to } | Tail::Swap { to, .. } | Tail::Fw { to, .. } => to,
                Tail::Branch { f, .. } => f,
            };
            let after = usize::try_from(i64::try_from(pc).ok()? + i64::from(to)).ok()?;
            let mut follows = unchecked
                .get(after)
                .copied()
                .flatten()
                .filter(|_| !placed[after]);
            // Or the native exit there, laid out once, after the first block going on to
            // it (`x64_branch::native_exit`).
            let exit_next = follows.is_none() && exit_l.get(after).copied().flatten().is_some();
            let exit_next = exit_next && !exit_placed[after];
            // This copy's pending flags, if it is one; and a copy of the block after, laid
            // out next, with flags left pending for it (the block's own copy is laid out
            // later, for its other entries): those this copy passes on unread, or a
            // branch's sunk flags on its fall-through (`pending_on`).
            let pending = spec.and_then(|_| (!chain.is_empty()).then(|| chain.remove(0)));
            let fall = if !chain.is_empty() {
                Some(asm.new_dynamic_label())
            } else {
                match *tail {
                    // From a block's own copy only: copies of copies would multiply with
                    // each branch in a row (as it is, a block has at most its own copy and
                    // those of the chains through it, `pending_on`'s few blocks long).
                    Tail::Branch { rn, .. }
                        if spec.is_none() && rn != 0 && unchecked[after].is_some() =>
                    {
                        sunk_redo(st)
                            .and_then(|r| pending_on(&plans, &unchecked, after, r))
                            .map(|c| {
                                chain = c;
                                asm.new_dynamic_label()
                            })
                    }
                    _ => None,
                }
            };
            if fall.is_some() {
                follows = fall;
            } else if exit_next {
                follows = exit_l[after];
            }
            // Likewise a branch's sunk flags on its taken path, in copies of the blocks
            // there laid out after all others (entered by the jump the path makes anyway;
            // from a block's own copy or a fall-through's, whose copies spawn none).
            let taken = match *tail {
                Tail::Branch { t, rt, .. } if rt != 0 => {
                    let tgt = usize::try_from(i64::try_from(pc).ok()? + i64::from(t)).ok()?;
                    sunk_redo(st)
                        .filter(|_| unchecked.get(tgt).copied().flatten().is_some())
                        .and_then(|r| pending_on(&plans, &unchecked, tgt, r))
                        .map(|c| {
                            let l = asm.new_dynamic_label();
                            taken_chains.push((tgt, l, c));
                            l
                        })
                }
                _ => None,
            };
            if spec.is_some() {
                // (Entries are the block's own copy's.)
            } else if x64_bound::worth(b) {
                if pc == head {
                    // The handler's entry: the check, then the unchecked copy.
                    starts[pc] = Some(asm.offset());
                    let room = x64_bound::entry(&mut asm, b, labels[pc]?);
                    if pc == 0 {
                        first_room = Some(room);
                    }
                } else {
                    stubs.push(pc);
                }
            }
            // The block's own copy laid out with a lag: entered at its body, its own label
            // a stub for the entries that expect none.
            let me = match spec {
                Some(l) => l,
                None if lag != 0 => {
                    let body = asm.new_dynamic_label();
                    lag_stubs.push((u, lag, body));
                    body_of[pc] = Some((body, lag));
                    body
                }
                None => u,
            };
            let next = |to| next_u(&body_of, pc, to);
            let (tail, to) = ((*tail, false, lat), (me, follows));
            let (ex, out) = block(
                &mut asm,
                (pc, st),
                tail,
                to,
                (&next, &kills),
                (pending, fall, taken),
                lag,
            );
            exits.extend(ex.into_iter().map(|e| (e, lag)));
            lag = out.unwrap_or(0);
            if let (true, Some(l)) = (fall.is_none() && exit_next, follows) {
                // Its label expects no lag, as every jump there settles it (`go_on`).
                settle(&mut asm, lag);
                dynasm!(asm ; .arch x64 ; =>l);
                x64_branch::native_exit(&mut asm, after, lat);
                exit_placed[after] = true;
                break;
            }
            spec = fall;
            match follows {
                Some(_) => pc = after,
                None => break,
            }
        }
    }
    // The copies for taken paths: each chain laid out in a row, its last copy jumping on
    // to blocks' own copies.
    for (mut pc, mut me, mut chain) in taken_chains {
        // (The first copy is jumped to, with no lag.)
        let mut lag = 0;
        while let (Some((st, tail)), false) = (&plans[pc], chain.is_empty()) {
            let pending = chain.remove(0);
            let to = match *tail {
                Tail::Next { to } | Tail::Swap { to, .. } | Tail::Fw { to, .. } => to,
                Tail::Branch { f, .. } => f,
            };
            let after = usize::try_from(i64::try_from(pc).ok()? + i64::from(to)).ok()?;
            let fall = (!chain.is_empty()).then(|| asm.new_dynamic_label());
            let next = |to| next_u(&body_of, pc, to);
            let (tail, to) = ((*tail, false, lat), (me, fall));
            let pend = (Some(pending), fall, None);
            let (ex, out) = block(&mut asm, (pc, st), tail, to, (&next, &kills), pend, lag);
            exits.extend(ex.into_iter().map(|e| (e, lag)));
            lag = out.unwrap_or(0);
            match fall {
                Some(l) => (pc, me) = (after, l),
                None => break,
            }
        }
    }
    for pc in stubs {
        if let (Some(me), Some(u), Some(b)) = (labels[pc], unchecked[pc], bounds[pc]) {
            starts[pc] = Some(asm.offset());
            x64_bound::entry(&mut asm, b, me);
            dynasm!(asm ; .arch x64 ; jmp =>u);
        }
    }
    for s in lag_stubs {
        x64_lag::stub(&mut asm, s);
    }
    for (pc, l) in exit_l.iter().enumerate() {
        if let (Some(l), false) = (*l, exit_placed[pc]) {
            dynasm!(asm ; .arch x64 ; =>l);
            x64_branch::native_exit(&mut asm, pc, lat);
        }
    }
    // The exits, each settling the lag of its block first (but an add's helper and an
    // inline lookup's call, which go back into the block: they read no count).
    for ((l, e), lag) in exits {
        if lag == 0 || matches!(e, Exit::EmemHelper(..) | Exit::LookupCall(..)) {
            exit(&mut asm, (l, e));
        } else {
            let settled = asm.new_dynamic_label();
            dynasm!(asm ; .arch x64 ; =>l);
            settle(&mut asm, lag);
            exit(&mut asm, (settled, e));
        }
    }
    // The fused start's entry of the block at 0 (`Unchecked`): the room check alone.
    let first = match (
        unchecked.first().copied().flatten(),
        bounds.first().copied().flatten(),
        labels.first().copied().flatten(),
    ) {
        (Some(_), Some(b), Some(_)) if first_room.is_some() => first_room.map(|at| (at, b)),
        (Some(u), Some(b), Some(me)) => {
            let at = asm.offset();
            x64_bound::room(&mut asm, b, me);
            dynasm!(asm ; .arch x64 ; jmp =>u);
            Some((at, b))
        }
        _ => None,
    };
    x64_call::pool(&mut asm, lk);
    let code = asm.finalize().ok()?;
    dump(&code);
    let blocks = starts
        .into_iter()
        .map(|s| {
            s.map(|start| {
                // SAFETY: `start` is the offset of code emitted above as a `Handler`
                // (System V, the `extern "C-unwind"` of the Unix hosts this module is
                // built for): it takes the thread, `Cx`, the op and the count in rdi, rsi,
                // rdx, rcx; touches only the thread's file, flags and LM window state,
                // `Cx`'s `extra` and the pass fields `fast_run::pass` writes (a segment
                // only at `seg_at` when it is below `seg_end`), the local-memory word and
                // dirty mask of an LM step (the address checked inside LMEM first, as the
                // handler does), the packet buffer's words a read checked to be inside
                // it, and the map value words an add checked to be inside `Cx`'s value
                // window (`Cx::va_base`: memory of a map the `Cx`'s maps own for its
                // whole life, which vm-core never moves nor resizes; set by the lookup
                // helper, empty at the chain's start); uses only caller-saved registers; calls only `x64_call`'s
                // `extern "C"` helpers (at the addresses `x64_call::pool` wrote into this
                // code, read-only after `finalize`; which take `&Thread`/`&mut Thread`
                // and `&mut Cx` as their handler would, never unwind, and are called with the stack
                // 16-aligned and the block's registers saved on it); and ends by
                // jumping, with the stack as at its entry, to a handler with the same
                // arguments, to `fast_run::slow` with its three, or to a swap function
                // (`x64_mem::ctm_swap`, `x64_call::emem_swap` / `lookup_swap`) with its
                // five (never returning itself, so its `Out` is theirs). The code lives as
                // long as the program, which holds `_code`.
                let h = unsafe { std::mem::transmute::<*const u8, Handler>(code.ptr(start)) };
                Block { h }
            })
        })
        .collect();
    // SAFETY: as for `blocks` above: the unchecked copy is the same code without its
    // entry check, which its callers make themselves (see `Unchecked`).
    let first = first.map(|(at, b)| Unchecked {
        h: unsafe { std::mem::transmute::<*const u8, Handler>(code.ptr(at)) },
        paid: b.paid,
        events: b.events,
    });
    Some(Compiled {
        _code: code,
        blocks,
        first,
    })
}

/// A debugging aid: with `NFP_JIT_DUMP` set to a directory, each program's code is
/// written there as `jit-<address>.bin`, the address being where it runs, for
/// `objdump -D -b binary -mi386:x86-64 --adjust-vma=0x<address>` and joining with
/// `valgrind --tool=callgrind --dump-instr=yes`'s counts at those addresses (which is how
/// the native code's per-instruction costs in the module docs of `jit` were found).
/// Failures to write are ignored: nothing depends on it.
fn dump(code: &dynasmrt::ExecutableBuffer) {
    if let Some(dir) = std::env::var_os("NFP_JIT_DUMP") {
        let at = code.ptr(dynasmrt::AssemblyOffset(0)) as usize;
        let _ = std::fs::write(
            std::path::Path::new(&dir).join(format!("jit-{at:x}.bin")),
            &code[..],
        );
    }
}
