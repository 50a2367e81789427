//! What a block knows of its register slots as its steps run: the constants earlier steps
//! set ([`known_consts`]), the slots whose value `eax` holds ([`eax_before`]), and from
//! those the register stores it may leave out ([`live_stores`]).
//!
//! # Why
//!
//! The lowering sets registers to constants and reads them a step or two later (`immed`
//! then an add or a compare, a 64-bit `immed` pair then moves to transfer registers), and
//! writes a register only to rewrite it at once (`ld_field`, mask, shift), reading it in
//! between from `eax`. A read of a constant compiles to an immediate and a read of what
//! `eax` holds to nothing, so neither needs the slot in memory: a store that only such
//! reads see before the slot is written again is dead. Folding the constants and leaving
//! out those stores took the demo filter's native code from 290 to 283 host instructions
//! per frame (callgrind, `simspeed pre`).
//!
//! # Exactness
//!
//! The code generator (`x64::emit`) reads a slot as a constant exactly when [`Known`]
//! holds it (every operand of the steps that compute in `eax`: ALU, shift, `ld_field`,
//! merge, `local_csr_wr`); [`eax_before`] claims `eax` holds a slot only where the code
//! generator's `Held` does too (it may hold more: then a store is kept that could have
//! been left out), and [`mem_reads`] counts an operand as read from `eax` only where the
//! code generator then does read it from `eax` (`x64::load_eax`, and B operands
//! through `x64::alu`'s `commuted` or a copy in r8d). Any other read is a read
//! of memory. A store is left out only when, on the way to the next write of its slot,
//! nothing reads the slot from memory and no step may leave the block (its exits see every
//! slot); by the block's end every slot is stored.

use super::super::fast::{A, D};
use super::super::thread::slot;
use super::Step;

/// A slot's index in the file (as `x64::val` reads operand slots).
fn at(s: u16) -> usize {
    usize::from(s) & (slot::FILE - 1)
}

/// The constants earlier steps of a block left in slots, before one of its steps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Known(Vec<(usize, u32)>);

impl Known {
    /// The value of slot `s`, if a step of the block set it to a constant (the zero and
    /// immediate slots are `x64::val`'s constants, not these).
    pub(super) fn get(&self, s: u16) -> Option<u32> {
        let s = at(s);
        self.0.iter().find(|&&(k, _)| k == s).map(|&(_, v)| v)
    }

    /// After a write of something not known to `d`.
    fn forget(&mut self, d: D) {
        self.0
            .retain(|&(k, _)| !d.iter().any(|&w| usize::from(w) == k));
    }

    /// After `d` was set to `v`.
    fn set(&mut self, d: D, v: u32) {
        self.forget(d);
        for (i, &w) in d.iter().enumerate() {
            if usize::from(w) != slot::SINK && !(i == 1 && d[1] == d[0]) {
                self.0.push((usize::from(w), v));
            }
        }
    }
}

/// The constant slot `s` holds before a step that knows `k`: a zero or immediate slot,
/// or a slot in `k`.
pub(super) fn const_of(s: u16, k: &Known) -> Option<u32> {
    let i = at(s);
    if i == slot::ZERO {
        Some(0)
    } else if i >= slot::IMM {
        Some((i - slot::IMM) as u32)
    } else {
        k.get(s)
    }
}

/// What each step knows before it runs ([`Known`]): set by `immed` ([`Step::Set`]) and by
/// moves of constants (`alu[d, --, B, k]`), forgotten when a slot is written otherwise,
/// and all of it at a step that may leave the block (which may write registers the block
/// does not track).
pub(super) fn known_consts(steps: &[Step]) -> Vec<Known> {
    let mut k = Known::default();
    let mut out = Vec::with_capacity(steps.len());
    for s in steps {
        out.push(k.clone());
        match *s {
            Step::Set { d, v } => k.set(d, v),
            Step::Alu {
                op: A::PassB, d, b, ..
            } => match const_of(b, &k) {
                Some(v) => k.set(d, v),
                None => k.forget(d),
            },
            _ => match super::slot_use(s) {
                Some((_, d)) => k.forget(d),
                None => k = Known::default(),
            },
        }
    }
    out
}

/// Whether a step is a move of a constant (`alu[d, --, B, k]` with `k` known), which the
/// code generator stores as an immediate (leaving `eax` as it was).
pub(super) fn const_move(s: &Step, k: &Known) -> Option<(D, u32)> {
    match *s {
        Step::Alu {
            op: A::PassB, d, b, ..
        } => const_of(b, k).map(|v| (d, v)),
        _ => None,
    }
}

/// No slot (the sink slot is never read).
const NONE: D = [slot::SINK as u8; 2];

/// `h` after a store of something else to `d`.
fn without(h: D, d: D) -> D {
    h.map(|s| if d.contains(&s) { slot::SINK as u8 } else { s })
}

/// The slots whose value `eax` holds before each step, as far as the store analysis relies
/// on it (a subset of what the code generator's `Held` holds: after a step that computes
/// in `eax`, its destination; kept over an `immed` to other slots; else nothing).
pub(super) fn eax_before(steps: &[Step], known: &[Known]) -> Vec<D> {
    let mut h = NONE;
    let mut out = Vec::with_capacity(steps.len());
    for (s, k) in steps.iter().zip(known) {
        out.push(h);
        if let Some((d, _)) = const_move(s, k) {
            h = without(h, d);
            continue;
        }
        h = match *s {
            Step::Alu { d, .. }
            | Step::Shf { d, .. }
            | Step::ShfInd { d, .. }
            | Step::Merge { d, .. }
            | Step::Ld { d, .. } => d,
            Step::Set { d, .. } => without(h, d),
            _ => NONE,
        };
    }
    out
}

/// The slots a step reads from memory (with `eax` holding `h` and the constants `k`
/// before it) and the slots it writes; `None` for a step that may leave the block
/// ([`super::slot_use`]).
pub(super) fn mem_reads(s: &Step, h: D, k: &Known) -> Option<([Option<u16>; 3], D)> {
    let (reads, d) = super::slot_use(s)?;
    let konst = |r: u16| const_of(r, k).is_some();
    let eax = |r: u16| {
        h.iter()
            .any(|&w| usize::from(w) != slot::SINK && usize::from(w) == at(r))
    };
    // Whether the code generator reads each of `reads` (`slot_use`'s order) without memory.
    let served: [bool; 3] = match *s {
        Step::Alu { op, a, b, .. } => {
            let a_eax = matches!(
                op,
                A::And | A::Or | A::Xor | A::AndNotA | A::Add | A::AddCarry | A::Sub | A::SubCarry
            );
            // B from eax too (`x64::alu`: a commutative op swaps its operands, a
            // subtract moves eax aside), AndNotB from a copy of eax.
            let b_eax = true;
            [
                konst(a) || (a_eax && eax(a)),
                konst(b) || (b_eax && eax(b)),
                true,
            ]
        }
        Step::Shf { a, b, .. } | Step::ShfInd { a, b, .. } => [konst(a), konst(b) || eax(b), true],
        Step::Merge { d, .. } => {
            let r = u16::from(d[0]);
            [konst(r) || eax(r), true, true]
        }
        Step::Ld { b, .. } => {
            let old = reads[1];
            [konst(b) || eax(b), konst(old) || eax(old), true]
        }
        Step::Csr { src, .. } => [konst(src) || eax(src), true, true],
        _ => [false; 3],
    };
    let mut out = [None; 3];
    for (i, &r) in reads.iter().enumerate() {
        if !served[i] {
            out[i] = Some(r);
        }
    }
    Some((out, d))
}

/// For each step: which of its two destination slots it must store. A store is left out
/// when a later step of the block overwrites the slot before any step reads it from memory
/// ([`mem_reads`]) and before any step that may leave the block (at its exit every slot is
/// observable). Every slot is stored by the block's end.
pub(super) fn live_stores(steps: &[Step], known: &[Known]) -> Vec<[bool; 2]> {
    let held = eax_before(steps, known);
    let mut out = vec![[true; 2]; steps.len()];
    let mut dead = vec![false; slot::FILE];
    for (i, s) in steps.iter().enumerate().rev() {
        let Some((reads, writes)) = mem_reads(s, held[i], &known[i]) else {
            dead.fill(false);
            continue;
        };
        for (k, &w) in writes.iter().enumerate() {
            out[i][k] = !dead[at(u16::from(w))];
        }
        for &w in &writes {
            if usize::from(w) != slot::SINK {
                dead[at(u16::from(w))] = true;
            }
        }
        for r in reads.into_iter().flatten() {
            dead[at(r)] = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ab(r: u8) -> D {
        [r, r + slot::B as u8]
    }

    #[test]
    fn constants_fold_and_their_stores_die_when_overwritten() {
        // immed[AB_20, 0x1c0]; alu[AB_20, A_22, +, B_20]: the add reads the constant, so
        // the immed stores nothing; the add stores both banks.
        let steps = [
            Step::Set {
                d: ab(20),
                v: 0x1c0,
            },
            Step::Alu {
                op: A::Add,
                d: ab(20),
                a: 22,
                b: 20 + slot::B as u16,
            },
        ];
        let known = known_consts(&steps);
        assert_eq!(known[1].get(20 + slot::B as u16), Some(0x1c0));
        assert_eq!(
            live_stores(&steps, &known),
            vec![[false, false], [true, true]]
        );
    }

    #[test]
    fn reads_from_eax_need_no_store_but_reads_from_memory_do() {
        // ld[AB_10]; and[AB_10, A_10, 0xf] (A_10 from eax); shl[AB_10, B_10] (from eax):
        // only the last stores.
        let ld = Step::Ld {
            d: ab(10),
            b: 64,
            rot: 0,
            mask: 0xff,
            keep: 0,
        };
        let and = Step::Alu {
            op: A::And,
            d: ab(10),
            a: 10,
            b: (slot::IMM + 15) as u16,
        };
        let shl = Step::Shf {
            kind: crate::target::ShiftKind::Left,
            d: ab(10),
            a: slot::ZERO as u16,
            b: 10 + slot::B as u16,
            n: 2,
        };
        let steps = [ld, and, shl];
        let known = known_consts(&steps);
        assert_eq!(
            live_stores(&steps, &known),
            vec![[false, false], [false, false], [true, true]]
        );
        // An add reads both operands from eax when it holds both: nothing stored.
        let add = Step::Alu {
            op: A::Add,
            d: ab(11),
            a: 10,
            b: 10 + slot::B as u16,
        };
        let steps = [ld, add, ld];
        let known = known_consts(&steps);
        assert_eq!(live_stores(&steps, &known)[0], [false, false]);
        // A subtract of B (in eax) from an A read from memory: B's stores die, A's store
        // (the A bank of register 12, written by an earlier step; both registers written again
        // after)
        // stays; its B bank, which nothing reads, dies.
        let sub = Step::Alu {
            op: A::Sub,
            d: ab(11),
            a: 12,
            b: 10 + slot::B as u16,
        };
        let w12 = Step::Alu {
            op: A::And,
            d: ab(12),
            a: 13,
            b: 13 + slot::B as u16,
        };
        let steps = [w12, ld, sub, w12, ld];
        let known = known_consts(&steps);
        let stores = live_stores(&steps, &known);
        assert_eq!(stores[0], [true, false]);
        assert_eq!(stores[1], [false, false]);
    }

    #[test]
    fn a_step_that_may_leave_forgets_constants_and_keeps_stores() {
        let set = Step::Set { d: ab(3), v: 7 };
        let steps = [set, Step::Lookup { at: 0, fd: None }, set];
        let known = known_consts(&steps);
        assert_eq!(known[1].get(3), Some(7));
        assert_eq!(known[2], Known::default());
        assert_eq!(live_stores(&steps, &known)[0], [true, true]);
    }
}
