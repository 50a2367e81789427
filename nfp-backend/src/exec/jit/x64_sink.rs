//! What an unchecked block leaves out because the block it goes on to overwrites it
//! first ([`Kills`]): register stores of a branch block, moved onto its taken path
//! ([`unstored`], [`restore`]); and the result flag of the step before a lookup or an add
//! that ends a block, recomputed at the call's cold exit ([`res_at_exit`]).
//!
//! # Why
//!
//! The lowering parses headers as `ld_field` of a field into a register, a compare of it,
//! a branch away on a mismatch, and then `ld_field` of the next field into the same
//! register (the demo filter: `ld_field_w_clr[gprAB_10, ...]`, `alu[--, gprA_10, -, k]`,
//! `br!=[...]`, twice in a row). The register's two stores (both banks) are read by no one
//! on the fall-through, the path nearly every packet takes: the block there overwrites it
//! before it reads it or may leave. On the taken path the step is computed again from its
//! operands (unchanged since) and stored there. Callgrind, `simspeed pre`: 4 host
//! instructions per frame fewer in the native code (two blocks of two stores each).
//!
//! # Exactness
//!
//! A store is left out of the block only where nothing can see the slot before it is
//! written again: no step after it in the block reads it from memory (`slots::mem_reads`,
//! the code generator's own account) or may leave; the branch's fall-through pays into a
//! block of the unchecked code (no check, nothing leaves on the way: `x64_bound`), which
//! writes the slot before any step that reads it or may leave ([`Kills`]); and its flags
//! are not pending in a copy laid out for it (whose exits recompute them from slots,
//! `x64_emit::sunk_redo`). On the taken path the step is emitted again before anything
//! jumps on: its operands are constants or slots that no step after it wrote and whose
//! memory the block kept (not read from `eax` by `slots`' model, so their stores stayed;
//! not one of the step's own stored destinations), and a step reading the carry is not
//! moved (the taken path stores the compare's). The flags it would set are not stored
//! there (the compare after it set them).

use super::slots::{Known, const_of, eax_before, known_consts, live_stores, mem_reads};
use super::x64::{Held, Val, alu, load_eax, store, val};
use super::x64_branch::sink_at;
use super::x64_emit::Redo;
use super::x64_ld::{ld, shift};
use super::*;
use dynasmrt::{DynasmApi, dynasm, x64::Assembler};

/// What a block overwrites before it reads it or may leave: the stored result flag and
/// both carry and overflow (`flags`, `x64_branch::kills`), and the register slots
/// (`slots`, sorted indices in the file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Kills {
    pub(super) flags: (bool, bool),
    slots: Vec<usize>,
}

/// A slot's index in the file (as `x64::val` reads operand slots).
fn at(s: u16) -> usize {
    usize::from(s) & (slot::FILE - 1)
}

impl Kills {
    pub(super) fn of(steps: &[Step]) -> Kills {
        let mut read = Vec::new();
        let mut slots = Vec::new();
        for s in steps {
            let Some((reads, d)) = slot_use(s) else {
                break;
            };
            read.extend(reads.iter().map(|&r| at(r)));
            for w in d {
                let w = usize::from(w);
                if w != slot::SINK && !read.contains(&w) && !slots.contains(&w) {
                    slots.push(w);
                }
            }
        }
        slots.sort_unstable();
        Kills {
            flags: super::x64_branch::kills(steps),
            slots,
        }
    }
}

/// The step of a branch block whose stores move to the taken path, and which of its two
/// destination slots ([`restore`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Unstored {
    pub(super) at: usize,
    pub(super) banks: [bool; 2],
}

/// The stores the unchecked branch block `steps` leaves to its taken path, when the block
/// after its fall-through overwrites `after` first (see the module docs): those of the
/// step right before the compare whose flags the branch sinks (`x64_branch::sink_at`).
pub(super) fn unstored(steps: &[Step], after: &Kills) -> Option<Unstored> {
    let j = sink_at(steps)?.checked_sub(1)?;
    let s = *steps.get(j)?;
    let d = match s {
        Step::Alu { op, d, .. } if !matches!(op, A::PassB | A::AddCarry | A::SubCarry) => d,
        Step::Shf { d, .. } | Step::Merge { d, .. } | Step::Ld { d, .. } => d,
        _ => return None,
    };
    let known = known_consts(steps);
    let stored = live_stores(steps, &known)[j];
    let mut banks = [false; 2];
    for i in 0..2 {
        let w = usize::from(d[i]);
        banks[i] = stored[i]
            && w != slot::SINK
            && !(i == 1 && d[1] == d[0])
            && after.slots.binary_search(&w).is_ok();
    }
    let moved: Vec<usize> = (0..2)
        .filter(|&i| banks[i])
        .map(|i| usize::from(d[i]))
        .collect();
    if moved.is_empty() {
        return None;
    }
    let (reads, _) = slot_use(&s)?;
    let model = eax_before(steps, &known);
    // The step's operands: constants, or slots whose memory holds their value.
    for &r in reads.iter().filter(|&&r| at(r) != slot::ZERO) {
        let kept = (0..2).any(|i| stored[i] && !banks[i] && at(u16::from(d[i])) == at(r));
        let in_eax = model[j]
            .iter()
            .any(|&w| usize::from(w) != slot::SINK && usize::from(w) == at(r));
        if const_of(r, &known[j]).is_none() && (kept || in_eax) {
            return None;
        }
    }
    // The steps after it: none reads the moved slots from memory, writes them or the
    // step's operands, or may leave.
    for (i, t) in steps.iter().enumerate().skip(j + 1) {
        let (r, w) = mem_reads(t, model[i], &known[i])?;
        let hit = |x: usize| moved.contains(&x) || reads.iter().any(|&o| at(o) == x);
        if r.iter().flatten().any(|&x| moved.contains(&at(x)))
            || w.iter()
                .any(|&x| usize::from(x) != slot::SINK && hit(usize::from(x)))
        {
            return None;
        }
    }
    Some(Unstored { at: j, banks })
}

/// The step `u` of `steps` computed again (`Held::NONE`: every operand from its constant
/// or memory) and stored to the slots it left out, on the taken path.
pub(super) fn restore(a: &mut Assembler, steps: &[Step], u: Unstored) {
    let known = known_consts(steps);
    let k: &Known = &known[u.at];
    let kv = |s: u16| k.get(s).map_or(val(s), Val::Const);
    let only = |d: D| {
        let sink = slot::SINK as u8;
        [
            if u.banks[0] { d[0] } else { sink },
            if u.banks[1] { d[1] } else { sink },
        ]
    };
    let h = Held::NONE;
    match steps[u.at] {
        Step::Alu { op, d, a: x, b } => {
            alu(a, op, (kv(x), kv(b)), (false, false), h);
            store(a, only(d));
        }
        Step::Shf {
            kind,
            d,
            a: x,
            b,
            n,
        } => {
            shift(a, kind, (kv(x), kv(b)), Some(n), h);
            store(a, only(d));
        }
        Step::Merge { d, keep, v } => {
            load_eax(a, kv(u16::from(d[0])), h);
            dynasm!(a ; .arch x64 ; and eax, keep as i32 ; or eax, v as i32);
            store(a, only(d));
        }
        Step::Ld {
            d,
            b,
            rot,
            mask,
            keep,
        } => {
            let old = kv(u16::from(d[0]));
            ld(a, (old, only(d), kv(b)), (rot, mask, keep), (h, u32::MAX));
        }
        // (Never: `unstored` picks no other step.)
        _ => {}
    }
}

/// The result flag of the last step before the lookup or `emem` add that ends an
/// unchecked block, recomputed at that step's cold exit instead of stored, when the block
/// the tail goes on to overwrites the flag before it reads it or may leave (the caller,
/// `x64::block`, checks that): the step, and what its exit stores.
///
/// Why: the lowering computes the key's address right before a lookup and moves the
/// addend to the transfer registers right before an add, and the test of the lookup's
/// result or the next moves after the swap overwrite the result flag; the flag is stored
/// only for the call's rare fault or decline. Callgrind, `simspeed pre`: one host
/// instruction per lookup and per add.
///
/// Exactness: in an unchecked block nothing but the last step's cold exit (which then
/// stores the flag, `x64_call::status_exit`) can see the flag before the block after
/// overwrites it: the call's helpers read no flags, the swap passes and its run is paid
/// (`x64_bound`), and no step in between reads flags or may leave; the step is an ALU op
/// without a carry in whose operands (constants, or slots no step after it writes,
/// itself included) are as they were at the exit, where the same op stores the same
/// result (a declined add and a faulted lookup change nothing before their exit).
pub(super) fn res_at_exit(steps: &[Step], known: &[Known]) -> Option<(usize, Redo)> {
    let (last, body) = steps.split_last()?;
    if !matches!(last, Step::EmemAdd { .. } | Step::Lookup { .. }) {
        return None;
    }
    let i = body.iter().rposition(|s| flag_use(s).2)?;
    if body[i + 1..].iter().any(reads_flags) {
        return None;
    }
    let Step::Alu { op, a: x, b, .. } = body[i] else {
        return None;
    };
    if matches!(op, A::AddCarry | A::SubCarry) {
        return None;
    }
    for s in &body[i..] {
        let (_, d) = slot_use(s)?;
        if d.iter()
            .any(|&w| usize::from(w) != slot::SINK && [at(x), at(b)].contains(&usize::from(w)))
        {
            return None;
        }
    }
    let kv = |s: u16| known[i].get(s).map_or(val(s), Val::Const);
    Some((i, Redo::res(op, kv(x), kv(b))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ab(r: u8) -> D {
        [r, r + slot::B as u8]
    }

    fn ld(r: u8) -> Step {
        Step::Ld {
            d: ab(r),
            b: slot::XFER_RD as u16,
            rot: 0,
            mask: 0xff,
            keep: 0,
        }
    }

    fn cmp(r: u16, k: usize) -> Step {
        Step::Alu {
            op: A::Sub,
            d: [slot::SINK as u8; 2],
            a: r,
            b: (slot::IMM + k) as u16,
        }
    }

    const BR: Step = Step::Br {
        cond: crate::target::Cond::Ne,
    };

    #[test]
    fn a_field_overwritten_after_the_fall_through_is_stored_on_the_taken_path() {
        let block = [ld(10), cmp(10, 8), BR];
        let after = Kills::of(&[ld(10), cmp(10, 17), BR]);
        assert_eq!(after.slots, vec![10, 10 + slot::B]);
        assert_eq!(
            unstored(&block, &after),
            Some(Unstored {
                at: 0,
                banks: [true, true]
            })
        );
        // One bank read first after the fall-through: only the other moves.
        let reads_b = Step::Alu {
            op: A::Add,
            d: ab(8),
            a: 4,
            b: 10 + slot::B as u16,
        };
        let after = Kills::of(&[reads_b, ld(10), BR]);
        assert_eq!(
            unstored(&block, &after),
            Some(Unstored {
                at: 0,
                banks: [true, false]
            })
        );
    }

    #[test]
    fn nothing_moves_when_it_is_read_or_may_be_seen() {
        let block = [ld(10), cmp(10, 8), BR];
        // The block after leaves (a lookup) before it writes the field.
        let after = Kills::of(&[Step::Lookup { at: 0, fd: None }, ld(10)]);
        assert_eq!(unstored(&block, &after), None);
        let after = Kills::of(&[ld(10), cmp(10, 17), BR]);
        // A compare of both banks reads both from eax (`x64::alu`): nothing reads the
        // slots from memory, so both stores move.
        let both = Step::Alu {
            op: A::Sub,
            d: [slot::SINK as u8; 2],
            a: 10,
            b: 10 + slot::B as u16,
        };
        assert_eq!(
            unstored(&[ld(10), both, BR], &after),
            Some(Unstored {
                at: 0,
                banks: [true, true]
            })
        );
        // The step reads its operand from eax (the `ld` before it stored nothing).
        let and = Step::Alu {
            op: A::And,
            d: ab(10),
            a: 10,
            b: (slot::IMM + 15) as u16,
        };
        assert_eq!(unstored(&[ld(10), and, cmp(10, 8), BR], &after), None);
        // A carry in is not computed again.
        let adc = Step::Alu {
            op: A::AddCarry,
            d: ab(10),
            a: 3,
            b: 4,
        };
        assert_eq!(unstored(&[adc, cmp(10, 8), BR], &after), None);
    }

    #[test]
    fn the_result_flag_before_a_call_waits_for_its_exit_unless_it_cannot_be_redone() {
        let add = |d: u8, a: u16, op| Step::Alu {
            op,
            d: ab(d),
            a,
            b: (slot::IMM + 0x1f) as u16,
        };
        let look = Step::Lookup { at: 9, fd: None };
        let set = Step::Set { d: ab(2), v: 0 };
        let at = |steps: &[Step]| res_at_exit(steps, &known_consts(steps)).map(|(i, _)| i);
        // The key's address, then R1 set (no flags): the add's result waits.
        assert_eq!(at(&[add(4, 22, A::Add), set, look]), Some(0));
        // Its operand rewritten on the way (by itself, or after it): the exit could not
        // compute it again.
        assert_eq!(at(&[add(4, 4, A::Add), look]), None);
        assert_eq!(
            at(&[add(4, 22, A::Add), Step::Set { d: ab(22), v: 1 }, look]),
            None
        );
        // A carry in, or something that may leave in between.
        assert_eq!(at(&[add(4, 22, A::AddCarry), look]), None);
        let lm = Step::Lm {
            form: LmForm::St {
                op: A::PassB,
                a: 0,
                b: 3,
            },
            lm: LmAt {
                idx: 0,
                off: 0,
                rem: 0,
                at: 1,
            },
        };
        assert_eq!(at(&[add(4, 22, A::Add), lm, look]), None);
        // Only before a lookup or an add.
        assert_eq!(at(&[add(4, 22, A::Add), set]), None);
    }
}
