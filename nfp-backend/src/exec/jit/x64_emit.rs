//! The steps of [`super::x64`]'s blocks: each step's host code in order, with what the
//! block knows of its slots and flags (`slots`, `live_flags`), and the blocks' cold exits.

use super::slots::{Known, const_move, const_of, eax_before, known_consts, live_stores};
use super::x64::*;
use super::x64_ld::shift;
use super::x64_sink::{Unstored, res_at_exit};
use super::*;
use super::{x64_branch, x64_call, x64_ld, x64_lm, x64_mem, x64_pair};
use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi, dynasm, x64::Assembler};

/// Where a step may leave its block (the cold exits, emitted after all blocks).
#[derive(Clone, Copy)]
pub(super) enum Exit {
    /// An LM step's checks failed ([`x64_lm::exit`]), after the flags are redone.
    Lm(LmAt, Option<Redo>),
    /// A command at this address goes to the general handler ([`x64_mem::exit`]), after
    /// the flags are redone.
    Cmd(usize, Option<Redo>),
    /// The `emem` add at this address was declined or panicked ([`x64_call::emem_exit`]),
    /// with the result flag the block left to it (`x64_sink::res_at_exit`).
    Emem(usize, Option<Redo>),
    /// An `emem` add outside the value window: its helper, then back to the label, or to
    /// the add's `Emem` exit ([`x64_call::emem_helper`]).
    EmemHelper(x64_call::Add, DynamicLabel, DynamicLabel),
    /// The map lookup at this address faulted or panicked ([`x64_call::lookup_exit`]),
    /// or, with the block's no-wait path (a lookup ending its block, [`NoWait`]), did not
    /// wait; with the result flag the block left to it (`x64_sink::res_at_exit`).
    Lookup(usize, Option<NoWait>, Option<Redo>),
    /// An inline lookup's call of the helper ([`x64_call::lookup_call`]): then to its
    /// `Lookup` exit, or back to the label; with the no-wait path at that exit.
    LookupCall(DynamicLabel, DynamicLabel, bool),
}

/// The path of a lookup ending its block (`x64::Tail::Fw`) that did not wait: the pay of
/// the run `rn` at the op `to` after it, going on to `target` (`checked`: the checked
/// copy). Out of line, at the lookup's cold exit: a lookup nearly always waits, so one
/// compare of `rax - 1` sends both the status and the rare no-wait to that exit
/// ([`x64_call::lookup`]), where the block tested them one after the other (callgrind,
/// `simspeed pre`: 876.4 -> 875.2 host instructions per frame).
#[derive(Clone, Copy)]
pub(super) struct NoWait {
    pub(super) to: usize,
    pub(super) rn: u16,
    pub(super) target: super::x64_lag::Target,
    pub(super) checked: bool,
}

/// The steps of a block; each step's cold exit label is pushed to `exits`. Returns the
/// ALU operation whose host flags are still those of the stored condition codes at the
/// end, if any ([`unless_taken`] then branches on them). The step at `sink` stores no
/// flags (the block's tail does, `x64_branch::sink_at`). `pending`: the flags of the
/// block before, not stored, which the exits that may see them recompute
/// ([`pending_redos`], which must have agreed). `lag`: how far `rcx` is behind the count
/// (`x64_lag`; the exits settle it, `x64::compile`). `unstored`: stores the block's taken
/// path makes instead (`x64_sink`); `res_dies`: the block it goes on to overwrites the
/// result flag first (`x64_sink::res_at_exit`). `lat`: the table the code is compiled
/// for (its costs are constants in it).
pub(super) fn emit(
    a: &mut Assembler,
    steps: &[Step],
    exits: &mut Vec<(DynamicLabel, Exit)>,
    (sink, pending, fw): (Option<usize>, Option<Redo>, Option<NoWait>),
    (unstored, res_dies, lag): (Option<Unstored>, bool, i32),
    lat: &crate::cost::Latencies,
) -> Option<A> {
    let live = live_flags(steps);
    let known = known_consts(steps);
    let (late, mut redo) = deferred(steps, &live, &known, sink);
    // The result flag left to the last step's exit (`x64_sink`).
    let at_exit = if res_dies {
        res_at_exit(steps, &known)
    } else {
        None
    };
    let res_out = |i: usize| at_exit.is_some_and(|(j, _)| j == i);
    // Its redo, at the exit of the last step alone (an earlier call's exit comes before
    // the flag is set).
    let res_redo = |i: usize| at_exit.filter(|_| i + 1 == steps.len()).map(|(_, r)| r);
    if let Some(p) = pending {
        match pending_redos(steps, p, sink) {
            Some((q, _)) => {
                for (r, q) in redo.iter_mut().zip(q) {
                    if q.is_some() {
                        *r = q;
                    }
                }
            }
            // (Never: `x64::compile` lays out such a copy only where they may stay
            // pending.) Stored here, from the operands, which nothing changed since.
            None => alu(a, p.op, (p.a, p.b), p.live, Held::NONE),
        }
    }
    let mut stores = live_stores(steps, &known);
    // The stores the block's taken path makes instead (`x64_sink`).
    if let Some(u) = unstored
        && let Some(k) = stores.get_mut(u.at)
    {
        *k = [k[0] && !u.banks[0], k[1] && !u.banks[1]];
    }
    let mut seen = x64_lm::Seen::default();
    // What eax holds, and the op that set the host flags last (see `unless_taken`).
    let (mut h, mut flags) = (Held::NONE, None);
    // The bits of eax that may be set (`x64_ld::ld`'s; all after any other step).
    let mut ones = u32::MAX;
    // The stores step j would make of a constant (`x64_pair::set`).
    let sets = |j: usize| {
        let s = steps.get(j)?;
        let (d, v) = match *s {
            Step::Set { d, v } => (d, v),
            _ => const_move(s, &known[j])?,
        };
        let k = stores[j];
        let sink = slot::SINK as u8;
        Some((
            [
                if k[0] { d[0] } else { sink },
                if k[1] { d[1] } else { sink },
            ],
            v,
        ))
    };
    // The banks of this step's stores that the step before made, and whether it made
    // all of this step (`x64_pair`).
    let (mut done, mut skip) = ([false; 2], false);
    let model = eax_before(steps, &known);
    // Step i as the first of a move pair (`x64_pair::moves`): its source's offset, and
    // the second step's destination.
    let move_pair = |i: usize| {
        let (
            Some(&Step::Alu {
                op: A::PassB, d, b, ..
            }),
            Some(&Step::Alu {
                op: A::PassB,
                d: e,
                b: c,
                ..
            }),
        ) = (steps.get(i), steps.get(i + 1))
        else {
            return None;
        };
        let (Val::Slot(o), Val::Slot(p)) = (val(b), val(c)) else {
            return None;
        };
        // Both read from memory by `live_stores`'s account (so stored), the second's
        // source not the first's destination, and no flags sunk into the second.
        let from_memory = |j: usize, x: u16| {
            known[j].get(x).is_none()
                && !model[j]
                    .iter()
                    .any(|&w| FILE + 4 * i32::from(w) == val_off(x))
        };
        let ok = p == o + 4
            && from_memory(i, b)
            && from_memory(i + 1, c)
            && !d.iter().any(|&w| FILE + 4 * i32::from(w) == p)
            && sink != Some(i + 1);
        ok.then_some((o, e))
    };
    for (i, ((s, &l), &k)) in steps.iter().zip(&live).zip(&stores).enumerate() {
        if std::mem::take(&mut skip) {
            continue;
        }
        let l = if sink == Some(i) || late[i] {
            (false, false)
        } else {
            (l.0 && !res_out(i), l.1)
        };
        let k = [k[0] && !done[0], k[1] && !done[1]];
        done = [false; 2];
        // An operand: a constant the block set (`slots`), else the slot (or `val`'s own
        // constants). `slots::live_stores` relies on every operand of the steps that
        // compute in eax being read through this.
        let kn: &Known = &known[i];
        let kv = |s: u16| kn.get(s).map_or(val(s), Val::Const);
        // The destination slots to store (eax holds the value for all of `d`).
        let only = |d: D| {
            let sink = slot::SINK as u8;
            [
                if k[0] { d[0] } else { sink },
                if k[1] { d[1] } else { sink },
            ]
        };
        let ones_before = std::mem::replace(&mut ones, u32::MAX);
        let (held, set) = match *s {
            Step::Lm { form, lm } => {
                let exit = a.new_dynamic_label();
                exits.push((exit, Exit::Lm(lm, redo[i])));
                let at = x64_lm::At {
                    l: x64_lm::LAYOUT,
                    exit,
                    lag,
                };
                (x64_lm::step(a, at, form, lm, (l, h), &mut seen), None)
            }
            Step::CtmRead {
                xfer,
                words,
                mask,
                mode,
                a: x,
                b,
                at,
            } => {
                let exit = a.new_dynamic_label();
                let read = x64_mem::Read {
                    xfer,
                    words,
                    mask,
                    mode,
                    a: val(x),
                    b: val(b),
                };
                x64_mem::ctm_read(a, read, exit);
                exits.push((exit, Exit::Cmd(at, redo[i])));
                (Held::NONE, None)
            }
            Step::EmemAdd {
                xfer,
                count,
                mode,
                a: x,
                b,
                at,
            } => {
                let (exit, helper, back) = (
                    a.new_dynamic_label(),
                    a.new_dynamic_label(),
                    a.new_dynamic_label(),
                );
                // The transfer registers it adds (as `x64_call::emem_add` reads them).
                let xr = slot::XFER_WR + usize::from(xfer);
                let v = |s: usize| const_of((s & (slot::FILE - 1)) as u16, kn);
                let add = x64_call::Add {
                    xfer,
                    count,
                    mode,
                    a: val(x),
                    b: val(b),
                    v: (v(xr), v(xr + 1)),
                };
                x64_call::emem_add(a, add, (helper, back));
                exits.push((helper, Exit::EmemHelper(add, back, exit)));
                exits.push((exit, Exit::Emem(at, res_redo(i))));
                // The call leaves no scratch register as it was.
                seen.call();
                (Held::NONE, None)
            }
            Step::Lookup { at, fd } => {
                let exit = a.new_dynamic_label();
                // The no-wait path at the exit when the block ends here.
                let fw = fw.filter(|_| i + 1 == steps.len());
                // Inline when R1 holds the map the chain prepared (`x64_call`).
                let r1 = (slot::A + 2) as u16;
                match fd.filter(|&f| kn.get(r1) == Some(f)) {
                    Some(fd) => {
                        let (call, back) = (a.new_dynamic_label(), a.new_dynamic_label());
                        let r2 = slot::A + 4;
                        let key = match kn.get(r2 as u16) {
                            Some(k) => x64_call::Key::Const(k),
                            None if h.0.contains(&(r2 as u8)) => x64_call::Key::Eax,
                            None => x64_call::Key::Slot,
                        };
                        let no_wait = fw.is_some();
                        let cost = lat.fw_cost(crate::target::FwHelper::MapLookup);
                        let labels = (exit, call, back);
                        // (As the block's tail decides, `x64::block`.)
                        let passed = fw.is_some_and(|w| !w.checked)
                            && i32::try_from(cost.wait).is_ok_and(|w| w != 0);
                        let how = (no_wait, cost, passed);
                        x64_call::lookup_inline(a, (fd, key), labels, how);
                        exits.push((call, Exit::LookupCall(exit, back, no_wait)));
                    }
                    None => x64_call::lookup(a, exit, fw.is_some()),
                }
                exits.push((exit, Exit::Lookup(at, fw, res_redo(i))));
                seen.call();
                (Held::NONE, None)
            }
            _ if const_move(s, kn).is_some() => {
                // A move of a constant: stored as an immediate (eax as it was; a move
                // sets no host flags).
                let (d, v) = const_move(s, kn).unwrap_or(([slot::SINK as u8; 2], 0));
                if l.0 {
                    dynasm!(a ; .arch x64 ; mov DWORD [rdi + CC_RES], v as i32);
                }
                done = x64_pair::set(a, only(d), v, sets(i + 1));
                (h.without(d), None)
            }
            Step::Alu { d, .. } if move_pair(i).is_some() => {
                let (o, e) = move_pair(i).unwrap_or((0, d));
                let res =
                    sink != Some(i + 1) && !res_out(i + 1) && live.get(i + 1).is_some_and(|l| l.0);
                let ke = stores.get(i + 1).copied().unwrap_or([true; 2]);
                let sinkd = slot::SINK as u8;
                let only_e = [
                    if ke[0] { e[0] } else { sinkd },
                    if ke[1] { e[1] } else { sinkd },
                ];
                x64_pair::moves(a, o, (only(d), only_e), res);
                skip = true;
                (Held(e), None)
            }
            Step::Alu { op, d, a: x, b } => {
                alu(a, op, (kv(x), kv(b)), l, h);
                store(a, only(d));
                // `mov` and `not` set no host flags.
                (Held(d), (!matches!(op, A::PassB | A::NotB)).then_some(op))
            }
            Step::Shf {
                kind,
                d,
                a: x,
                b,
                n,
            } => {
                shift(a, kind, (kv(x), kv(b)), Some(n), h);
                if l.0 {
                    dynasm!(a ; .arch x64 ; mov DWORD [rdi + CC_RES], eax);
                }
                store(a, only(d));
                (Held(d), None)
            }
            Step::ShfInd { kind, d, a: x, b } => {
                // The previous step (its ALU op) left its result in eax, unless it was a
                // move of a constant, stored as an immediate with eax as it was (found by
                // `fast_path_equals_reference_with_large_budgets`): the count goes to cl,
                // the run's count in rcx to r8 meanwhile.
                let moved = i
                    .checked_sub(1)
                    .and_then(|p| const_move(&steps[p], &known[p]));
                dynasm!(a ; .arch x64 ; mov r8, rcx);
                match moved {
                    Some((_, v)) => dynasm!(a ; .arch x64 ; mov ecx, v as i32),
                    None => dynasm!(a ; .arch x64 ; mov ecx, eax),
                }
                shift(a, kind, (kv(x), kv(b)), None, h);
                dynasm!(a ; .arch x64 ; mov rcx, r8);
                if l.0 {
                    dynasm!(a ; .arch x64 ; mov DWORD [rdi + CC_RES], eax);
                }
                store(a, only(d));
                (Held(d), None)
            }
            Step::Set { d, v } => {
                done = x64_pair::set(a, only(d), v, sets(i + 1));
                (h.without(d), flags)
            }
            Step::Merge { d, keep, v } => {
                load_eax(a, kv(u16::from(d[0])), h);
                dynasm!(a ; .arch x64 ; and eax, keep as i32 ; or eax, v as i32);
                store(a, only(d));
                (Held(d), None)
            }
            Step::Ld {
                d,
                b,
                rot,
                mask,
                keep,
            } => {
                let old = kv(u16::from(d[0]));
                ones = x64_ld::ld(
                    a,
                    (old, only(d), kv(b)),
                    (rot, mask, keep),
                    (h, ones_before),
                );
                (Held(d), None)
            }
            Step::Csr { n, src, rem } => {
                // As `fast_handlers::csr_lm`: the address, and the count before which
                // index n may not be used, `n - rem + min(csr_write_delay, 250)` (`rcx`
                // is the count n of the run, behind it by `lag`; the delay a constant of
                // the table the code is for, at most 250: the sum fits).
                let i = i32::from(n);
                let (addr, ready) = (LM_ADDR + 4 * i, LM_READY + 8 * i);
                let d = lat.csr_write_delay.min(250) as i32;
                let before = lag - i32::from(rem) + d;
                seen.csr(n);
                load_eax(a, kv(src), h);
                dynasm!(a ; .arch x64
                    ; mov DWORD [rdi + addr], eax
                    ; lea rax, [rcx + before]
                    ; mov QWORD [rdi + ready], rax);
                (Held::NONE, None)
            }
            // The block's tail decides the branch (`unless_taken`).
            Step::Br { .. } | Step::BrBit { .. } => (h, flags),
        };
        (h, flags) = (held, set);
    }
    flags
}

/// The cold exits of blocks (emitted after all blocks, so that a block's last jump may
/// fall through to the block laid out after it).
pub(super) fn exit(a: &mut Assembler, (l, e): (DynamicLabel, Exit)) {
    match e {
        Exit::Lm(lm, r) => {
            let l = redone(a, l, r);
            x64_lm::exit(a, lm, l);
        }
        Exit::Cmd(at, r) => {
            let l = redone(a, l, r);
            x64_mem::exit(a, at, l);
        }
        Exit::Emem(at, r) => x64_call::emem_exit(a, at, l, r),
        Exit::EmemHelper(add, back, exit) => x64_call::emem_helper(a, add, (l, back, exit)),
        Exit::LookupCall(exit, back, no_wait) => x64_call::lookup_call(a, (l, exit, back), no_wait),
        Exit::Lookup(at, None, r) => x64_call::lookup_exit(a, at, l, r),
        Exit::Lookup(at, Some(w), r) => {
            let status = a.new_dynamic_label();
            dynasm!(a ; .arch x64 ; =>l ; test rax, rax ; jnz =>status);
            super::x64_lag::pay(a, (w.to, w.rn), (w.target, None), w.checked, 0);
            x64_call::lookup_exit(a, at, status, r);
        }
    }
}

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
fn redone(a: &mut Assembler, l: DynamicLabel, r: Option<Redo>) -> DynamicLabel {
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
/// (`x64::compile` checks). `sink` as for [`emit`].
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
fn deferred(
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
