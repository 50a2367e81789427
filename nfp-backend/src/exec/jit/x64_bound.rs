//! Unchecked copies of [`super::x64`]'s blocks, entered after one check of what every
//! check of theirs would find.
//!
//! # Why
//!
//! Every jump from a block to the next pays the next run against the chain's limit (an add,
//! a compare and a conditional jump), and every swap a block passes checks that it passes
//! (`n + extra + wait < pass_limit`) and that there is room for its segment (two
//! compare-and-jumps). On a packet's path through a loop-free program these checks never
//! fail but near the end of a budget or a horizon: the demo filter pays 11 runs and passes
//! 4 swaps per packet in blocks, 42 host instructions of checks. So each block is compiled
//! twice: checked as before, and unchecked, without those checks, jumping only to unchecked
//! blocks; a block entered from a handler checks once, from bounds on everything the
//! blocks reachable from it can do ([`Bound`]), that none of their checks could fail, and
//! runs the unchecked copy (else the checked one).
//!
//! # Exactness
//!
//! The unchecked code does what the checked code does when every check passes; the entry
//! check ([`entry`]) proves that they all pass on every path through the blocks:
//! - the count only grows by the runs the blocks pay, at most [`Bound::paid`] in all, and
//!   `limit` does not change inside a chain: `n + paid <= limit` makes every pay pass;
//! - each pass writes one segment: `seg_end - seg_at >= passes` segments of room;
//! - `n + extra` grows by the runs paid, the taken-branch penalties (`u32`, see
//!   `Latencies`) and lookups' issue cycles (`u32`); each pass lowers `pass_limit` by its
//!   wait (a `u32` latency): the pass at `n + extra` with `wait` passes iff
//!   `n + extra + wait < pass_limit`, that is, with the `pass_limit` at the entry and the
//!   waits of all passes so far, iff `n + extra + waits < pass_limit`; all of them pass
//!   when `pass_limit - (n + extra)` at the entry is above `paid + events * u32::MAX`,
//!   [`Bound::events`] bounding the number of penalties, issues and waits on any path
//!   (and no sum wraps then, as none wraps in the checked code when they pass).
//!
//! The chain leaves the blocks only through a handler (which checks for itself and enters
//! blocks again through their entry check) or a cold exit, both as in the checked code.
//! A block from which a cycle of blocks is reachable has no bound and no unchecked copy.
//!
//! # When
//!
//! The entry check costs 3 host instructions (15 when swaps may be passed); a block uses
//! it only when the unchecked code is expected to save more ([`Bound::saved`]: 2 per run
//! paid, 5 per swap passed, each branch taken half the time). On the demo filter
//! (callgrind, `simspeed pre`, host instructions per frame without the allocator's
//! `memset` / `memcpy`): 1,436 -> 1,409, the native code 336 -> 309; the unchecked blocks
//! laid out in fall-through chains (`x64::compile`) then 1,399 (native code 300).

use super::super::fast_run::{CX_EXTRA, CX_LIMIT, CX_PASS_LIMIT, CX_SEG_AT, CX_SEG_END};
use super::super::through::Segment;
use super::Step;
use super::x64::Tail;
use dynasmrt::{AssemblyOffset, DynamicLabel, DynasmApi, DynasmLabelApi, dynasm, x64::Assembler};
use std::mem::size_of;

const LIMIT: i32 = CX_LIMIT as i32;
const EXTRA: i32 = CX_EXTRA as i32;
const PASS_LIMIT: i32 = CX_PASS_LIMIT as i32;
const SEG_AT: i32 = CX_SEG_AT as i32;
const SEG_END: i32 = CX_SEG_END as i32;
const SEG: u64 = size_of::<Segment>() as u64;

/// Bounds on what the blocks reachable from a block (itself included) do before the chain
/// leaves them, on any path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Bound {
    /// Instructions paid, at most.
    pub(super) paid: u64,
    /// Swaps passed, at most.
    pub(super) passes: u64,
    /// Additions of at most `u32::MAX` each to `n + extra` or to the waits passed (taken
    /// branches' penalties, lookups' issue cycles, swaps' waits), at most.
    pub(super) events: u64,
    /// Host instructions the unchecked code saves, as expected with each branch taken
    /// half the time (a guess: only whether the entry check is worth it rests on it).
    pub(super) saved: u64,
}

/// Bounds above which a block gets no unchecked copy (far beyond any program: a run is
/// at most `MAX_RUN` and a path visits each of at most `u16::MAX` blocks once).
const MAX_PAID: u64 = 1 << 30;
const MAX_EVENTS: u64 = 1 << 24;

/// Where a block goes on: the address, and the run it pays there (`None`: it pays nothing,
/// a straight-line continuation), and whether a penalty was added on the way.
type Out = (usize, Option<u16>, bool);

/// A block's own passes, events and savings, and where it goes on.
fn parts(pc: usize, tail: Tail) -> ((u64, u64, u64), Vec<Out>) {
    let at = |to: i32| (pc as i64 + i64::from(to)) as usize;
    match tail {
        Tail::Next { to } => ((0, 0, 0), vec![(at(to), None, false)]),
        Tail::Branch { t, rt, f, rn } => (
            (0, 0, 0),
            vec![(at(t), Some(rt), true), (at(f), Some(rn), false)],
        ),
        Tail::Swap { to, run, .. } => ((1, 1, 5), vec![(at(to), Some(run), false)]),
        Tail::Fw { to, rn } => ((1, 2, 5), vec![(at(to), Some(rn), false)]),
    }
}

/// The bound of every address that starts a block (`plans`: one entry per address), or
/// `None` where a cycle of blocks is reachable (or a bound is beyond [`MAX_PAID`] /
/// [`MAX_EVENTS`]).
pub(super) fn bounds(plans: &[Option<(Vec<Step>, Tail)>]) -> Vec<Option<Bound>> {
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let n = plans.len();
    let mut state = vec![NEW; n];
    let mut out: Vec<Option<Bound>> = vec![None; n];
    let is_block = |pc: usize| plans.get(pc).is_some_and(|p| p.is_some());
    for root in 0..n {
        if !is_block(root) || state[root] != NEW {
            continue;
        }
        // Depth first, without recursion (programs may have thousands of blocks).
        let mut stack = vec![(root, false)];
        while let Some((pc, expanded)) = stack.pop() {
            let Some((_, tail)) = plans.get(pc).and_then(|p| p.as_ref()) else {
                continue;
            };
            let (own, outs) = parts(pc, *tail);
            if !expanded {
                if state[pc] != NEW {
                    continue;
                }
                state[pc] = OPEN;
                stack.push((pc, true));
                for &(to, run, _) in &outs {
                    if run != Some(0) && is_block(to) && state[to] == NEW {
                        stack.push((to, false));
                    }
                }
                continue;
            }
            let b = combine(own, &outs, |to| {
                if !is_block(to) {
                    return Ok(None);
                }
                // An open block is on the current path (a cycle); a done one without a
                // bound has one after it.
                match state[to] {
                    DONE => out[to].map(Some).ok_or(()),
                    _ => Err(()),
                }
            });
            out[pc] = b;
            state[pc] = DONE;
        }
    }
    out
}

/// The bound of a block from its own parts and the bounds of where it goes on (`after`:
/// `Ok(None)` for an address that is not a block, `Err` for a block without a bound).
fn combine(
    (passes, events, saved): (u64, u64, u64),
    outs: &[Out],
    after: impl Fn(usize) -> Result<Option<Bound>, ()>,
) -> Option<Bound> {
    let zero = Bound {
        paid: 0,
        passes: 0,
        events: 0,
        saved: 0,
    };
    let mut b: Option<Bound> = None;
    let mut saved_sum = 0;
    for &(to, run, penalty) in outs {
        let e = match run {
            // Unpaid: the chain leaves for `unpaid_at`.
            Some(0) => zero,
            _ => {
                let next = match after(to) {
                    Ok(Some(x)) => x,
                    Ok(None) => zero,
                    Err(()) => return None,
                };
                let r = run.map_or(0, u64::from);
                Bound {
                    paid: next.paid + r,
                    passes: next.passes,
                    events: next.events + u64::from(penalty),
                    saved: next.saved + if r > 0 { 2 } else { 0 },
                }
            }
        };
        saved_sum += e.saved;
        b = Some(match b {
            None => e,
            Some(x) => Bound {
                paid: x.paid.max(e.paid),
                passes: x.passes.max(e.passes),
                events: x.events.max(e.events),
                saved: 0,
            },
        });
    }
    let b = b?;
    let b = Bound {
        paid: b.paid,
        passes: b.passes + passes,
        events: b.events + events,
        saved: saved_sum / outs.len() as u64 + saved,
    };
    (b.paid <= MAX_PAID && b.events <= MAX_EVENTS).then_some(b)
}

/// Whether a handler entering the block of bound `b` should check and run the unchecked
/// copy: when it is expected to save more than the check costs (see the module docs).
pub(super) fn worth(b: Bound) -> bool {
    let cost = if b.passes == 0 { 3 } else { 15 };
    b.saved > cost
}

/// The entry check of a block of bound `b` (see the module docs): falls through to its
/// unchecked copy, or jumps to `checked`. The room check comes last: its offset, returned,
/// is an entry that checks the room alone (`super::Unchecked`).
pub(super) fn entry(a: &mut Assembler, b: Bound, checked: DynamicLabel) -> AssemblyOffset {
    // (`paid` <= MAX_PAID: an `i32`.)
    let paid = b.paid as i32;
    dynasm!(a ; .arch x64
        ; lea r8, [rcx + paid]
        ; cmp r8, QWORD [rsi + LIMIT]
        ; ja =>checked);
    if b.passes != 0 {
        // (Below 2^62: `MAX_PAID`, `MAX_EVENTS`.)
        let most = (b.paid + b.events * u64::from(u32::MAX)) as i64;
        dynasm!(a ; .arch x64
            ; mov r8, QWORD [rsi + EXTRA]
            ; add r8, rcx
            ; mov r9, QWORD [rsi + PASS_LIMIT]
            ; sub r9, r8
            ; jbe =>checked
            ; mov r8, QWORD most
            ; cmp r9, r8
            ; jbe =>checked);
    }
    let at = a.offset();
    room(a, b, checked);
    at
}

/// The room part of [`entry`]'s check: jumps to `checked` unless there is room for
/// `b.passes` segments (alone, for a caller that proved the rest, `super::Unchecked`).
pub(super) fn room(a: &mut Assembler, b: Bound, checked: DynamicLabel) {
    if b.passes == 0 {
        return;
    }
    // (Below 2^62 / 16: `MAX_PAID`, `MAX_EVENTS`, each pass an event.)
    let room = (SEG * b.passes) as i32;
    dynasm!(a ; .arch x64
        ; mov r8, QWORD [rsi + SEG_END]
        ; sub r8, QWORD [rsi + SEG_AT]
        ; cmp r8, room
        ; jb =>checked);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::MemTarget;

    fn b(paid: u64, passes: u64, events: u64) -> Option<(u64, u64, u64)> {
        Some((paid, passes, events))
    }

    fn of(plans: &[Option<(Vec<Step>, Tail)>]) -> Vec<Option<(u64, u64, u64)>> {
        bounds(plans)
            .into_iter()
            .map(|x| x.map(|x| (x.paid, x.passes, x.events)))
            .collect()
    }

    #[test]
    fn bounds_take_the_worst_path_and_stop_at_handlers() {
        let plans = [
            // A branch: taken to 2 paying 3 (a penalty), else to 1 paying 5.
            Some((
                vec![],
                Tail::Branch {
                    t: 2,
                    rt: 3,
                    f: 1,
                    rn: 5,
                },
            )),
            // A swapping read, then 4 paid at 2.
            Some((
                vec![],
                Tail::Swap {
                    to: 1,
                    run: 4,
                    target: MemTarget::Ctm,
                    words: 1,
                },
            )),
            // On to a handler, paying nothing.
            Some((vec![], Tail::Next { to: 1 })),
            None,
        ];
        assert_eq!(of(&plans), vec![b(9, 1, 1), b(4, 1, 1), b(0, 0, 0), None]);
    }

    #[test]
    fn a_cycle_of_blocks_has_no_bound_but_an_unpaid_jump_ends_a_path() {
        let plans = [
            Some((
                vec![],
                Tail::Branch {
                    t: 0,
                    rt: 1,
                    f: 1,
                    rn: 1,
                },
            )),
            Some((vec![], Tail::Fw { to: 1, rn: 2 })),
            // Back to 0, but with a run of 0: the chain leaves there.
            Some((
                vec![],
                Tail::Branch {
                    t: -2,
                    rt: 0,
                    f: 1,
                    rn: 0,
                },
            )),
            None,
        ];
        assert_eq!(of(&plans), vec![None, b(2, 1, 2), b(0, 0, 0), None]);
    }
}
