//! ALU steps' flags recomputed at a block's cold exits rather than stored on the way to
//! them ([`Redo`]): an ALU step's flags that only exits read before the block overwrites
//! them ([`deferred`]), and a branch's sunk flags left pending in the copies laid out
//! after it ([`sunk_redo`], [`pending_redos`]). (Moved here from `x64_emit` to keep that
//! file under 800 lines.)

use super::slots::{Known, known_consts};
use super::x64::*;
use super::*;
use dynasmrt::{DynamicLabel, DynasmLabelApi, dynasm, x64::Assembler};

/// An ALU step's flags, recomputed at a cold exit rather than stored on the way to it
/// ([`deferred`]): the op, its operands (constants, or slots unchanged since), and which
/// of its flags (result; carry and overflow) the exit must store.
#[derive(Clone, Copy)]
pub(super) struct Redo {
    op: A,
    a: Val,
    b: Val,
    live: (bool, bool),
}

impl Redo {
    /// The result flag of `op` on `a` and `b` (`x64_sink::res_at_exit`).
    pub(super) fn res(op: A, a: Val, b: Val) -> Redo {
        Redo {
            op,
            a,
            b,
            live: (true, false),
        }
    }

    /// Stores the flags here (eax and the host flags are free).
    pub(super) fn emit(self, a: &mut Assembler) {
        alu(a, self.op, (self.a, self.b), self.live, Held::NONE);
    }
}

/// The exit label `l`, with the flags of `r` recomputed there first: the label the exit
/// itself starts at. (eax is free at a cold exit: it leaves for a handler.)
pub(super) fn redone(a: &mut Assembler, l: DynamicLabel, r: Option<Redo>) -> DynamicLabel {
    let Some(r) = r else {
        return l;
    };
    dynasm!(a ; .arch x64 ; =>l);
    alu(a, r.op, (r.a, r.b), r.live, Held::NONE);
    a.new_dynamic_label()
}

/// The flags a branch block leaves unstored when the block after its fall-through is
/// laid out for it alone with those flags pending (`x64::compile`): its sunk ALU step's
/// (`x64_branch::sink_at`), when that op has no carry in and no step after it in the block
/// writes its operands (the pending flags are recomputed from them).
///
/// Why: the lowering checks a bound and falls through to the read it guards (the demo
/// filter, twice per packet: `blo` then a `ctm` read), whose cold exit is the only reader
/// of the compare's flags before the next compare overwrites them; stored on the
/// fall-through they cost 3 host instructions (callgrind, `simspeed pre`: 6 per frame).
pub(super) fn sunk_redo(steps: &[Step]) -> Option<Redo> {
    let i = x64_branch::sink_at(steps)?;
    let Some(&Step::Alu { op, d, a: x, b }) = steps.get(i) else {
        return None;
    };
    if !matches!(op, A::Add | A::Sub | A::And | A::Or | A::Xor) {
        return None;
    }
    let known = known_consts(steps);
    let kv = |s: u16| known[i].get(s).map_or(val(s), Val::Const);
    let (av, bv) = (kv(x), kv(b));
    let reads: Vec<i32> = slot_offsets(&[av, bv]);
    // Neither the step itself nor a step after it (`immed`s and the branch, `sink_at`)
    // writes the operands.
    let hits = |d: D| {
        d.iter()
            .any(|&w| usize::from(w) != slot::SINK && reads.contains(&(FILE + 4 * i32::from(w))))
    };
    if hits(d) {
        return None;
    }
    for s in steps.iter().skip(i + 1) {
        match slot_use(s) {
            Some((_, d)) if !hits(d) => {}
            _ => return None,
        }
    }
    let arith = matches!(op, A::Add | A::Sub);
    Some(Redo {
        op,
        a: av,
        b: bv,
        live: (true, arith),
    })
}

/// The slot offsets among operands (the constants and host registers are none).
fn slot_offsets(v: &[Val]) -> Vec<i32> {
    v.iter()
        .filter_map(|v| match *v {
            Val::Slot(o) => Some(o),
            _ => None,
        })
        .collect()
}

/// For a block entered with the flags of `p` pending (see [`sunk_redo`]), what each step's
/// cold exit recomputes of them, and the flags still pending at its end (`None`: the block
/// overwrote them all); `None` when they cannot stay pending: every step that may see them
/// before the block overwrites them must be an exit that can recompute them (an LM step or
/// a `ctm` read whose exit recomputes nothing else, see [`deferred`]; not a branch, a carry
/// in, a call), and none of those steps may write `p`'s operands. Flags still pending at
/// the end must be taken on by the block after, with nothing reading them on the way
/// (`x64::compile` checks). `sink` as for [`super::x64_emit::emit`].
pub(super) fn pending_redos(
    steps: &[Step],
    p: Redo,
    sink: Option<usize>,
) -> Option<(Vec<Option<Redo>>, Option<Redo>)> {
    let live = live_flags(steps);
    let known = known_consts(steps);
    let (_, redo) = deferred(steps, &live, &known, sink);
    let reads = slot_offsets(&[p.a, p.b]);
    let (mut res, mut cv) = p.live;
    let mut out = vec![None; steps.len()];
    for (j, s) in steps.iter().enumerate() {
        match *s {
            Step::Lm { .. } | Step::CtmRead { .. } if redo[j].is_none() => {
                out[j] = Some(Redo {
                    live: (res, cv),
                    ..p
                });
            }
            _ if reads_flags(s) => return None,
            _ => {}
        }
        let (reads_c, writes_cv, writes_res) = flag_use(s);
        if reads_c && cv {
            return None;
        }
        res &= !writes_res;
        cv &= !writes_cv;
        if !res && !cv {
            return Some((out, None));
        }
        let w = step_writes(s)?;
        if w.iter().any(|o| reads.contains(o)) {
            return None;
        }
    }
    Some((
        out,
        Some(Redo {
            live: (res, cv),
            ..p
        }),
    ))
}

/// Which ALU steps' flags are recomputed at cold exits instead of stored, and what each
/// exit recomputes.
///
/// Why: a flag store is needed before a step that may leave the block (an LM step, a
/// `ctm` read) even when the block overwrites the flag before anything else reads it,
/// only for that rare exit: the demo filter's address add before its LM loads stores
/// three flags per packet for it. When the step's operands are constants or slots no
/// step writes until its flags are overwritten, the exit can compute them again.
///
/// Exactness: an exit between the step and the overwrite of its flags stores the flags
/// the step would have stored and that are not overwritten by then (the same op on the
/// same operand values, `alu`); a step's flags are deferred only when every step that
/// reads them before they are overwritten is such an exit (not a branch, a carry in, a
/// call's exit, whose `rax` holds its status), when both are overwritten inside the block
/// (its end stores every flag as before), and when it is not the step whose flag stores
/// the branch tail makes (`sink`). Only ops without a carry in (which would read a
/// stored carry the exit may have changed) qualify.
pub(super) fn deferred(
    steps: &[Step],
    live: &[(bool, bool)],
    known: &[Known],
    sink: Option<usize>,
) -> (Vec<bool>, Vec<Option<Redo>>) {
    let n = steps.len();
    let (mut late, mut redo) = (vec![false; n], vec![None::<Redo>; n]);
    for i in 0..n {
        let Step::Alu { op, d, a: x, b } = steps[i] else {
            continue;
        };
        let plain = matches!(op, A::Add | A::Sub | A::And | A::Or | A::Xor);
        let (mut res, mut cv) = live[i];
        if sink == Some(i) || !plain || !(res || cv) {
            continue;
        }
        let kv = |s: u16| known[i].get(s).map_or(val(s), Val::Const);
        let (av, bv) = (kv(x), kv(b));
        // The operand slots, which must not change while the flags are pending.
        let reads: Vec<i32> = [av, bv]
            .iter()
            .filter_map(|v| match *v {
                Val::Slot(o) => Some(o),
                _ => None,
            })
            .collect();
        let hits = |w: &[i32]| w.iter().any(|o| reads.contains(o));
        if hits(&slots(d)) {
            continue;
        }
        let mut found = Vec::new();
        let mut ok = false;
        for (j, s) in steps.iter().enumerate().skip(i + 1) {
            match *s {
                Step::Lm { .. } | Step::CtmRead { .. } if redo[j].is_none() => {
                    found.push((j, (res, cv)));
                }
                _ if reads_flags(s) => break,
                _ => {}
            }
            let (reads_c, writes_cv, writes_res) = flag_use(s);
            if reads_c && cv {
                break;
            }
            res &= !writes_res;
            cv &= !writes_cv;
            if !res && !cv {
                ok = true;
                break;
            }
            let Some(w) = step_writes(s) else {
                break;
            };
            if hits(&w) {
                break;
            }
        }
        if ok {
            late[i] = true;
            for (j, l) in found {
                redo[j] = Some(Redo {
                    op,
                    a: av,
                    b: bv,
                    live: l,
                });
            }
        }
    }
    (late, redo)
}

/// The register-file offsets of the slots `d` names (the sink aside).
fn slots(d: D) -> Vec<i32> {
    d.iter()
        .filter(|&&s| usize::from(s) != slot::SINK)
        .map(|&s| FILE + 4 * i32::from(s))
        .collect()
}

/// What step `s` writes, as register-file offsets (a step that may leave, after its exit);
/// `None` for a step whose writes are not known here, which ends a flag's deferral.
fn step_writes(s: &Step) -> Option<Vec<i32>> {
    Some(match *s {
        Step::Lm {
            form: LmForm::Mov { d } | LmForm::Alu { d, .. },
            ..
        } => slots(d),
        Step::Lm { .. } => Vec::new(),
        Step::CtmRead { xfer, words, .. } => (0..i32::from(words))
            .map(|k| FILE + 4 * (slot::XFER_RD as i32 + i32::from(xfer) + k))
            .collect(),
        _ => slots(slot_use(s)?.1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ab(r: u8) -> D {
        [r, r + slot::B as u8]
    }

    fn add(d: D, a: u16, b: u16) -> Step {
        Step::Alu {
            op: A::Add,
            d,
            a,
            b,
        }
    }

    fn lm_mov(d: D) -> Step {
        let lm = LmAt {
            idx: 1,
            off: 2,
            rem: 0,
            at: 0,
        };
        Step::Lm {
            form: LmForm::Mov { d },
            lm,
        }
    }

    fn plan(steps: &[Step]) -> (Vec<bool>, Vec<Option<(bool, bool)>>) {
        let live = live_flags(steps);
        let known = known_consts(steps);
        let (late, redo) = deferred(steps, &live, &known, None);
        (late, redo.into_iter().map(|r| r.map(|r| r.live)).collect())
    }

    #[test]
    fn flags_read_only_by_exits_are_redone_there() {
        let imm = (slot::IMM + 7) as u16;
        // add; LM load (writes the result flag); add (writes all): the first add's flags
        // are redone at the load's exit, all three there.
        let s = [add(ab(20), 22, imm), lm_mov(ab(4)), add(ab(8), 4, imm)];
        assert_eq!(
            plan(&s),
            (
                vec![true, false, false],
                vec![None, Some((true, true)), None]
            )
        );
        // A second load: its exit redoes the carry and overflow only (the first load set
        // the result).
        let s = [
            add(ab(20), 22, imm),
            lm_mov(ab(4)),
            lm_mov(ab(5)),
            add(ab(8), 4, imm),
        ];
        let (late, redo) = plan(&s);
        assert!(late[0]);
        assert_eq!(redo[1..3], [Some((true, true)), Some((false, true))]);
    }

    #[test]
    fn flags_a_branch_reads_or_whose_operands_change_are_stored() {
        let imm = (slot::IMM + 7) as u16;
        let br = Step::Br { cond: Cond::Eq };
        let (late, _) = plan(&[add(ab(20), 22, imm), lm_mov(ab(4)), br]);
        assert!(!late[0]);
        // The load writes the add's operand before the carry is overwritten.
        let s = [
            add(ab(20), 22, 23),
            lm_mov(ab(23)),
            lm_mov(ab(5)),
            add(ab(8), 4, imm),
        ];
        assert!(!plan(&s).0[0]);
        // Not overwritten inside the block: stored.
        assert!(!plan(&[add(ab(20), 22, imm), lm_mov(ab(4))]).0[0]);
    }
}
