//! The steps of [`super::x64`]'s blocks: each step's host code in order, with what the
//! block knows of its slots and flags (`slots`, `live_flags`), and the blocks' cold exits.

use super::slots::{Known, const_move, const_of, eax_before, known_consts, live_stores};
use super::x64::*;
use super::x64_ld::shift;
pub(super) use super::x64_redo::{Redo, pending_redos, sunk_redo};
use super::x64_redo::{deferred, redone};
use super::x64_sink::{Unstored, res_at_exit};
use super::*;
use super::{x64_call, x64_ld, x64_lm, x64_mem, x64_pair};
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
/// end, if any (`x64_branch::unless_taken` then branches on them), and, when the step at
/// `sink` was a compare (`x64::compare_at`), its operands (its result is not in eax: the tail's
/// `x64_branch::store_sunk` recomputes it). The step at `sink` stores no flags (the
/// block's tail does, `x64_branch::sink_at`). `pending`: the flags of the
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
) -> (Option<A>, Option<(i32, Val)>) {
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
            None => p.emit(a),
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
    // The sunk step as a compare (`x64::compare_at`): its result is not in eax.
    let mut cmp = None;
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
    // Steps i and i + 1 as `x64_ld::swap_pair`'s swapped half (eax holding `h` before,
    // step i storing `k`): the slot's offset and the pair's `(q, s)`. The slot read from
    // memory (not eax: `slots` may have let its store die) and written by neither step;
    // step i stores nothing (`slots`: the second reads its result from eax).
    let ld_pair = |i: usize, h: Held, k: [bool; 2]| {
        let (
            Some(&Step::Ld {
                d,
                b,
                rot,
                mask,
                keep,
            }),
            Some(&Step::Ld {
                d: e,
                b: c,
                rot: r2,
                mask: m2,
                keep: k2,
            }),
        ) = (steps.get(i), steps.get(i + 1))
        else {
            return None;
        };
        let Val::Slot(o) = known[i].get(b).map_or(val(b), Val::Const) else {
            return None;
        };
        let writes = |w: u8| usize::from(w) != slot::SINK && FILE + 4 * i32::from(w) == o;
        if e != d || val_off(c) != val_off(b) || h.has(Val::Slot(o)) || k != [false; 2] {
            return None;
        }
        if d.iter().any(|&w| writes(w)) {
            return None;
        }
        x64_ld::swap_pair((rot, mask, keep), (r2, m2, k2)).map(|q| (o, q))
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
                        let key = (key, seen.based());
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
            Step::Alu {
                op: A::Sub,
                d,
                a: x,
                b,
            } if let Some(c) = compare_at(steps, i, (kv(x), kv(b)), (d, l.0, h), sink) => {
                compare(a, c, l.1);
                if sink == Some(i) {
                    cmp = Some(c);
                }
                (h, Some(A::Sub))
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
            Step::Ld { d, .. } if let Some((o, q)) = ld_pair(i, h, k) => {
                // With the next step (`x64_ld::swap_pair`), whose stores it makes.
                let ke = stores.get(i + 1).copied().unwrap_or([true; 2]);
                let sinkd = slot::SINK as u8;
                let to = [
                    if ke[0] { d[0] } else { sinkd },
                    if ke[1] { d[1] } else { sinkd },
                ];
                ones = x64_ld::swapped_half(a, o, q, to);
                skip = true;
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
    (flags, cmp)
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
