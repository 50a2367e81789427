//! Which stack slots a stored state's continuation may still read: Linux 6.18's stack
//! liveness analysis (`kernel/bpf/liveness.c`), which decides the slots pruning compares.
//!
//! The analysis is per *function instance*: a subprogram reached through one chain of call
//! sites. While the walk runs, each instruction of an instance collects, per frame of the
//! chain, the slots it may read (a union over every visit) and the slots it surely writes
//! whole (an intersection over every visit; only 8-byte aligned stores count). At the end
//! of each path, and when a subprogram returns, the instances that changed solve the usual
//! backward data flow over their function's control-flow graph:
//!
//! ```text
//! live_before(i) = may_read(i) ∪ (∪ live_before(succ(i)) \ must_write(i))
//! ```
//!
//! and a callee passes what its entry may read (and what it surely writes, `must_write_acc`)
//! to the call instruction of its caller's instance. A stored state whose continuation is
//! fully explored is then *cleaned* once: every slot not live at its instruction (in its own
//! frame's instance, or after the call site for the frames above) stops being compared.
//!
//! Unlike the per-path read marks of earlier kernels, liveness is the union over every path
//! the walk has seen through the graph, so a slot one path reads keeps a sibling path's
//! stored state from pruning with a different value there.

use std::collections::HashMap;

use crate::cfg::{Cfg, successors};
use crate::code::Code;
use crate::state::{MAX_CALL_FRAMES, VerifierState};

/// The masks of one instruction for one frame of an instance.
#[derive(Debug, Clone, Copy, Default)]
struct Masks {
    may_read: u64,
    must_write: u64,
    must_write_acc: u64,
    live_before: u64,
}

/// A call chain: the call instruction of every frame above, then the subprogram start.
type Chain = Vec<u32>;

#[derive(Debug)]
struct Instance {
    /// Subprogram start of every frame of the chain.
    sp_starts: Vec<usize>,
    /// First slot of this instance's function and its length.
    start: usize,
    len: usize,
    /// Per frame of the chain (allocated on first use), per instruction of the function.
    frames: Vec<Option<Vec<Masks>>>,
    /// Per instruction: whether `must_write` has been set by a visit yet.
    must_write_set: Vec<bool>,
    /// Per instruction: its successors inside the function, relative to `start`
    /// (`NO_SUCC`: none). Computed once: [`solve`] runs at every path's end.
    succ: Vec<[u32; 2]>,
    /// Per instruction: its predecessors inside the function (relative to `start`), as
    /// ranges of `pred_list` (`pred_at[rel]..pred_at[rel + 1]`). Computed with `succ`.
    pred_at: Vec<u32>,
    pred_list: Vec<u32>,
    /// Instructions whose `may_read` or `must_write` changed (in any frame) since the last
    /// [`solve`]: where its passes must start (duplicates allowed).
    seeds: Vec<u32>,
    /// The next [`solve`] evaluates every instruction (never solved yet, or `must_write_acc`
    /// reset).
    solve_all: bool,
    updated: bool,
    must_write_dropped: bool,
}

impl Instance {
    fn masks(&self, frame: usize, pc: usize) -> Option<&Masks> {
        let rel = pc.checked_sub(self.start)?;
        self.frames.get(frame)?.as_ref()?.get(rel)
    }

    fn masks_mut(&mut self, frame: usize, pc: usize) -> Option<&mut Masks> {
        let rel = pc.checked_sub(self.start).filter(|&r| r < self.len)?;
        let f = self.frames.get_mut(frame)?;
        f.get_or_insert_with(|| vec![Masks::default(); self.len])
            .get_mut(rel)
    }
}

/// No successor in [`Instance::succ`].
const NO_SUCC: u32 = u32::MAX;

/// A successor outside the function in [`Instance::succ`] (none in a well-formed function):
/// it counts as an instruction with empty masks.
const OUTSIDE: u32 = u32::MAX - 1;

/// The successors of each instruction of the function at `start..start + len`, relative to
/// `start`.
fn successor_table(code: &Code, start: usize, len: usize) -> Vec<[u32; 2]> {
    (start..start + len)
        .map(|pc| {
            let (succ, n) = successors(code, pc);
            let mut out = [NO_SUCC; 2];
            for (o, &t) in out.iter_mut().zip(&succ[..n]) {
                *o = usize::try_from(t)
                    .ok()
                    .and_then(|t| t.checked_sub(start))
                    .filter(|&r| r < len)
                    .map_or(OUTSIDE, |r| r as u32);
            }
            out
        })
        .collect()
}

/// The analysis state of one verification.
#[derive(Debug, Default)]
pub(crate) struct StackLiveness {
    /// The instances, and their index by chain.
    list: Vec<Instance>,
    index: HashMap<Chain, usize>,
    /// The innermost chain of the last lookup and its instance. Why: every instruction
    /// looks up its instance (`begin_insn`, `read`), and the chain changes only at calls
    /// and returns; building and hashing it each time doubled the verifier's cost per
    /// processed instruction (callgrind on bpf_lxc_jit tail_handle_ipv6: SipHash and
    /// malloc were a fifth of the run).
    cur: Option<(Chain, usize)>,
    /// Whole-slot writes of the current instruction, per frame, and where they go: the
    /// instance (index) and instruction current when the instruction started.
    write_acc: [u64; MAX_CALL_FRAMES],
    write_at: Option<(usize, usize)>,
}

/// The chain of `st` down to frame `frameno`.
fn chain_of(st: &VerifierState, cfg: &Cfg, frameno: usize) -> (Chain, Vec<usize>) {
    let mut chain = Vec::with_capacity(frameno + 1);
    let mut starts = Vec::with_capacity(frameno + 1);
    for i in 0..=frameno {
        let start = st
            .frames
            .get(i)
            .and_then(|f| cfg.subprogs.get(f.subprog))
            .map_or(0, |s| s.start);
        starts.push(start);
        if i < frameno {
            let cs = st.frames.get(i + 1).and_then(|f| f.callsite).unwrap_or(0);
            chain.push(cs as u32);
        } else {
            chain.push(start as u32);
        }
    }
    (chain, starts)
}

/// Whether `chain` is the chain of `st` down to frame `frameno` ([`chain_of`], without
/// building it).
fn chain_is(chain: &[u32], st: &VerifierState, cfg: &Cfg, frameno: usize) -> bool {
    chain.len() == frameno + 1
        && chain.iter().enumerate().all(|(i, &c)| {
            let want = if i < frameno {
                st.frames.get(i + 1).and_then(|f| f.callsite).unwrap_or(0)
            } else {
                st.frames
                    .get(i)
                    .and_then(|f| cfg.subprogs.get(f.subprog))
                    .map_or(0, |s| s.start)
            };
            c == want as u32
        })
}

impl StackLiveness {
    fn instance_index(&mut self, cfg: &Cfg, chain: Chain, sp_starts: Vec<usize>) -> usize {
        if let Some(&i) = self.index.get(&chain) {
            return i;
        }
        let start = sp_starts.last().copied().unwrap_or(0);
        let len = cfg
            .subprogs
            .iter()
            .find(|s| s.start == start)
            .map_or(0, |s| s.end - s.start);
        let i = self.list.len();
        self.list.push(Instance {
            frames: vec![None; sp_starts.len()],
            sp_starts,
            start,
            len,
            must_write_set: vec![false; len],
            succ: Vec::new(),
            pred_at: Vec::new(),
            pred_list: Vec::new(),
            seeds: Vec::new(),
            solve_all: true,
            updated: false,
            must_write_dropped: false,
        });
        self.index.insert(chain, i);
        i
    }

    fn instance(&mut self, cfg: &Cfg, chain: Chain, sp_starts: Vec<usize>) -> &mut Instance {
        let i = self.instance_index(cfg, chain, sp_starts);
        &mut self.list[i]
    }

    /// The instance of `st`'s innermost frame (created if new), by index.
    fn current(&mut self, st: &VerifierState, cfg: &Cfg) -> usize {
        let frameno = st.frames.len().saturating_sub(1);
        if let Some((chain, i)) = &self.cur
            && chain_is(chain, st, cfg, frameno)
        {
            return *i;
        }
        let (chain, starts) = chain_of(st, cfg, frameno);
        let i = self.instance_index(cfg, chain.clone(), starts);
        self.cur = Some((chain, i));
        i
    }

    /// The instruction at `pc` of the current state's innermost instance may read slot
    /// `spi` of frame `frame`.
    pub(crate) fn read(
        &mut self,
        st: &VerifierState,
        cfg: &Cfg,
        pc: usize,
        frame: usize,
        spi: usize,
    ) {
        if spi >= 64 {
            return;
        }
        let i = self.current(st, cfg);
        if let Some(inst) = self.list.get_mut(i) {
            mark_read(inst, frame, pc, 1 << spi);
        }
    }

    /// A new instruction at `pc` starts: its whole-slot writes are collected from here.
    pub(crate) fn begin_insn(&mut self, st: &VerifierState, cfg: &Cfg, pc: usize) {
        // The instance exists from its first instruction on, so that writes before any
        // read are recorded (the kernel's `ensure_cur_instance`).
        let i = self.current(st, cfg);
        self.write_acc = [0; MAX_CALL_FRAMES];
        self.write_at = Some((i, pc));
    }

    /// The current instruction wrote all 8 bytes of slot `spi` of frame `frame`.
    pub(crate) fn write(&mut self, frame: usize, spi: usize) {
        if spi < 64
            && let Some(m) = self.write_acc.get_mut(frame)
        {
            *m |= 1 << spi;
        }
    }

    /// The current instruction is done: its writes join what earlier visits wrote. Like
    /// the kernel, an instruction that entered or left a subprogram records nothing (the
    /// instance it started in is no longer current).
    pub(crate) fn end_insn(&mut self, frames_changed: bool) {
        let Some((i, pc)) = self.write_at.take() else {
            return;
        };
        if frames_changed {
            return;
        }
        let acc = self.write_acc;
        if let Some(inst) = self.list.get_mut(i) {
            commit_writes(inst, pc, &acc);
        }
    }

    /// Solves every changed instance of `st`'s chain, innermost first (end of a path, or a
    /// subprogram's exit).
    pub(crate) fn update(&mut self, st: &VerifierState, cfg: &Cfg, code: &Code) {
        self.write_at = None;
        let innermost = st.frames.len().saturating_sub(1);
        for frameno in (0..st.frames.len()).rev() {
            // The innermost instance through `current`'s cache: every path's end solves it,
            // and building and hashing its chain cost ~700 host instructions a time.
            let i = if frameno == innermost {
                self.current(st, cfg)
            } else {
                let (chain, starts) = chain_of(st, cfg, frameno);
                self.instance_index(cfg, chain, starts)
            };
            let Some(inst) = self.list.get_mut(i) else {
                continue;
            };
            if !inst.updated {
                continue;
            }
            solve(inst, code);
            inst.updated = false;
            inst.must_write_dropped = false;
            if frameno > 0 {
                let (chain, _) = chain_of(st, cfg, frameno);
                self.propagate_to_caller(cfg, &chain);
            }
        }
    }

    /// What the callee instance `chain`'s entry may read, and surely writes, of the frames
    /// above becomes a read and a write of the call instruction in the caller's instance.
    fn propagate_to_caller(&mut self, cfg: &Cfg, chain: &Chain) {
        let Some(callee) = self.index.get(chain).and_then(|&i| self.list.get(i)) else {
            return;
        };
        let depth = chain.len() - 1;
        let entry = callee.start;
        let mut outer_chain: Chain = chain[..depth].to_vec();
        let outer_starts = callee.sp_starts[..depth].to_vec();
        let callsite = outer_chain[depth - 1] as usize;
        outer_chain[depth - 1] = outer_starts[depth - 1] as u32;
        let per_frame: Vec<Option<Masks>> = (0..depth)
            .map(|f| callee.masks(f, entry).copied())
            .collect();
        let outer = self.instance(cfg, outer_chain, outer_starts);
        let mut acc = [0u64; MAX_CALL_FRAMES];
        for (f, m) in per_frame.iter().enumerate() {
            if let Some(m) = m {
                acc[f] = m.must_write_acc;
                mark_read(outer, f, callsite, m.live_before);
            }
        }
        commit_writes(outer, callsite, &acc);
    }

    /// The slots of each frame of `st` (a state stored at `pc`) that its continuation may
    /// still read: in the innermost frame's instance at `pc`, or, for a frame above, after
    /// the call site in any frame between.
    pub(crate) fn alive(
        &mut self,
        st: &VerifierState,
        cfg: &Cfg,
        pc: usize,
    ) -> [u64; MAX_CALL_FRAMES] {
        let cur = st.frames.len().saturating_sub(1);
        let mut out = [0u64; MAX_CALL_FRAMES];
        let i = self.current(st, cfg);
        if let Some(inst) = self.list.get(i) {
            for (f, o) in out.iter_mut().enumerate().take(cur + 1) {
                *o = inst.masks(f, pc).map_or(0, |m| m.live_before);
            }
        }
        if cur == 0 {
            return out;
        }
        let (cur_chain, _) = chain_of(st, cfg, cur);
        for (i, &callsite) in cur_chain.iter().enumerate().take(cur) {
            let callsite = callsite as usize;
            let (chain, starts) = chain_of(st, cfg, i);
            let inst = self.instance(cfg, chain, starts);
            for (f, o) in out.iter_mut().enumerate().take(i + 1) {
                *o |= inst.masks(f, callsite + 1).map_or(0, |m| m.live_before);
            }
        }
        out
    }
}

fn mark_read(inst: &mut Instance, frame: usize, pc: usize, mask: u64) {
    let Some(m) = inst.masks_mut(frame, pc) else {
        return;
    };
    let new = m.may_read | mask;
    let grows = new != m.may_read && (new | m.live_before) != m.live_before;
    m.may_read = new;
    inst.updated |= grows;
    if grows && let Some(rel) = pc.checked_sub(inst.start) {
        inst.seeds.push(rel as u32);
    }
}

fn commit_writes(inst: &mut Instance, pc: usize, acc: &[u64; MAX_CALL_FRAMES]) {
    let Some(rel) = pc.checked_sub(inst.start).filter(|&r| r < inst.len) else {
        return;
    };
    let seen = inst.must_write_set[rel];
    for (frame, &mask) in acc.iter().enumerate().take(inst.frames.len()) {
        if mask == 0 && !seen {
            continue;
        }
        let mut updated = false;
        let mut dropped = false;
        if let Some(m) = inst.masks_mut(frame, pc) {
            let old = m.must_write;
            let new = if seen { mask & old } else { mask };
            if old != new {
                m.must_write = new;
                updated = true;
            }
            dropped = old & !new != 0;
        }
        inst.updated |= updated;
        inst.must_write_dropped |= dropped;
        if updated {
            inst.seeds.push(rel as u32);
        }
    }
    inst.must_write_set[rel] = true;
}

/// The fixed point of `live_before` and `must_write_acc` over the function's graph.
///
/// The values are those of repeated passes over the function in reverse order (each
/// instruction reading its forward successors' masks of the same pass and its backward
/// ones' of the previous pass) until a pass changes no target of a backward edge, started
/// from the last solve's values. A pass only evaluates instructions whose inputs changed
/// since their last evaluation (their own masks, `seeds`, or a successor's result): any
/// other would compute the value it already holds, so the values are exactly those of the
/// full passes. Why: the walk solves at the end of every path, and the full passes were a
/// sixth of verifying the ratio table's medium program (callgrind: 131k of 770k host
/// instructions, for a few changed instructions per path).
fn solve(inst: &mut Instance, code: &Code) {
    let len = inst.len;
    if inst.succ.len() != len {
        inst.succ = successor_table(code, inst.start, len);
        (inst.pred_at, inst.pred_list) = predecessor_table(&inst.succ);
    }
    let all = inst.solve_all || inst.must_write_dropped;
    inst.solve_all = false;
    let dropped = inst.must_write_dropped;
    let seeds = std::mem::take(&mut inst.seeds);
    let (succ, pred_at, pred_list) = (&inst.succ, &inst.pred_at, &inst.pred_list);
    let words = len.div_ceil(64);
    let mut dirty = vec![0u64; words];
    let mut next = vec![0u64; words];
    let set = |bits: &mut [u64], i: usize| {
        if let Some(w) = bits.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    };
    for f in inst.frames.iter_mut().flatten() {
        if dropped {
            for m in f.iter_mut() {
                m.must_write_acc = 0;
            }
        }
        let n = len.min(f.len()).min(succ.len());
        dirty.fill(0);
        if all {
            for i in 0..n {
                set(&mut dirty, i);
            }
        } else {
            for &r in &seeds {
                if (r as usize) < n {
                    set(&mut dirty, r as usize);
                }
            }
        }
        loop {
            // One pass: the dirty instructions from the highest down. A change marks the
            // predecessors: a lower one is still ahead in this pass, a higher one (or the
            // instruction itself: the source of a backward edge) waits for the next.
            let mut again = false;
            let mut w = words;
            while w > 0 {
                let word = dirty[w - 1];
                if word == 0 {
                    w -= 1;
                    continue;
                }
                let bit = 63 - word.leading_zeros() as usize;
                dirty[w - 1] &= !(1u64 << bit);
                let rel = (w - 1) * 64 + bit;
                if evaluate(f, succ[rel], rel) {
                    let from = pred_at.get(rel).copied().unwrap_or(0) as usize;
                    let to = pred_at.get(rel + 1).copied().unwrap_or(0) as usize;
                    for &p in pred_list.get(from..to).unwrap_or(&[]) {
                        let p = p as usize;
                        if p < rel {
                            set(&mut dirty, p);
                        } else if p < n {
                            set(&mut next, p);
                            again = true;
                        }
                    }
                }
            }
            if !again {
                break;
            }
            std::mem::swap(&mut dirty, &mut next);
        }
    }
}

/// Recomputes instruction `rel`'s `live_before` and `must_write_acc` in frame `f` from
/// its successors `targets` and its own masks; whether they changed. An exit keeps its
/// values.
#[inline(always)]
fn evaluate(f: &mut [Masks], targets: [u32; 2], rel: usize) -> bool {
    if targets[0] == NO_SUCC {
        return false;
    }
    let mut after = 0u64;
    let mut acc = u64::MAX;
    for &t in &targets {
        if t != NO_SUCC {
            // `OUTSIDE` is past the end: empty masks.
            let sm = f.get(t as usize).copied().unwrap_or_default();
            after |= sm.live_before;
            acc &= sm.must_write_acc;
        }
    }
    let Some(m) = f.get_mut(rel) else {
        return false;
    };
    let before = (after & !m.must_write) | m.may_read;
    let acc = acc | m.must_write;
    let changed = before != m.live_before || acc != m.must_write_acc;
    m.live_before = before;
    m.must_write_acc = acc;
    changed
}

/// Each instruction's predecessors inside the function, from `succ` (relative
/// instructions; `OUTSIDE` and `NO_SUCC` are no instruction), as `(at, list)`: the
/// predecessors of `rel` are `list[at[rel]..at[rel + 1]]`, in increasing order.
fn predecessor_table(succ: &[[u32; 2]]) -> (Vec<u32>, Vec<u32>) {
    let len = succ.len();
    let target = |t: u32| Some(t as usize).filter(|&t| t < len);
    let mut count = vec![0u32; len + 1];
    for targets in succ {
        for t in targets.iter().filter_map(|&t| target(t)) {
            count[t + 1] += 1;
        }
    }
    for i in 0..len {
        count[i + 1] += count[i];
    }
    let mut fill = count.clone();
    let mut list = vec![0u32; count[len] as usize];
    for (p, targets) in succ.iter().enumerate() {
        for t in targets.iter().filter_map(|&t| target(t)) {
            list[fill[t] as usize] = p as u32;
            fill[t] += 1;
        }
    }
    (count, list)
}

/// Per slot: whether it lies on a cycle of the control-flow graph (a non-trivial strongly
/// connected component, calls falling through). Stored states there are not cleaned by
/// this analysis: the kernel holds back cleaning while a loop's exploration has pending
/// back edges, which this verifier does not track; their stack is compared with the
/// per-path read marks instead.
pub(crate) fn loop_slots(code: &Code) -> Vec<bool> {
    let n = code.len();
    let succ = |v: usize| {
        let (s, k) = successors(code, v);
        s.into_iter()
            .take(k)
            .filter_map(move |t| usize::try_from(t).ok().filter(|&t| t < n))
    };
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut in_loop = vec![false; n];
    let mut stack = Vec::new();
    // One strongly connected component at a time (reused: most are single instructions).
    let mut members = Vec::new();
    let mut next = 0usize;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, successors visited so far)
        let mut work = vec![(root, 0usize)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut i)) = work.last_mut() {
            if let Some(w) = succ(v).nth(*i) {
                *i += 1;
                if w == v {
                    in_loop[v] = true;
                }
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(p, _)) = work.last() {
                low[p] = low[p].min(low[v]);
            }
            if low[v] == index[v] {
                members.clear();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    members.push(w);
                    if w == v {
                        break;
                    }
                }
                if members.len() > 1 {
                    for &w in &members {
                        in_loop[w] = true;
                    }
                }
            }
        }
    }
    in_loop
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> Code {
        let raw = vm_core::asm::assemble(text).unwrap_or_default();
        Code::from_raw(&raw).0
    }

    #[test]
    fn loop_slots_mark_only_the_cycle() {
        let c = code("mov r0, 0\nl: add r0, 1\njlt r0, 5, l\nexit");
        assert_eq!(loop_slots(&c), vec![false, true, true, false]);
    }

    /// The solve as it was before it kept a worklist: whole reverse passes (of the same
    /// per-instruction [`evaluate`]) until no backward edge's target changes. The
    /// reference [`solve`] must match exactly.
    fn solve_full(inst: &mut Instance) {
        let len = inst.len;
        let back_target: Vec<bool> = (0..len)
            .map(|t| {
                inst.succ
                    .iter()
                    .enumerate()
                    .any(|(rel, ts)| ts.iter().any(|&x| x as usize == t && t <= rel))
            })
            .collect();
        let dropped = inst.must_write_dropped;
        for f in inst.frames.iter_mut().flatten() {
            if dropped {
                for m in f.iter_mut() {
                    m.must_write_acc = 0;
                }
            }
            loop {
                let mut again = false;
                for rel in (0..len).rev() {
                    if evaluate(f, inst.succ[rel], rel) {
                        again |= back_target[rel];
                    }
                }
                if !again {
                    break;
                }
            }
        }
        inst.seeds.clear();
        inst.solve_all = false;
    }

    fn instance(succ: Vec<[u32; 2]>, frames: usize) -> Instance {
        let len = succ.len();
        let (pred_at, pred_list) = predecessor_table(&succ);
        Instance {
            sp_starts: vec![0; frames],
            start: 0,
            len,
            frames: vec![None; frames],
            must_write_set: vec![false; len],
            succ,
            pred_at,
            pred_list,
            seeds: Vec::new(),
            solve_all: true,
            updated: false,
            must_write_dropped: false,
        }
    }

    proptest::proptest! {
        /// Solving only from the changed instructions gives exactly the values of whole
        /// passes, on random graphs with loops (forward and backward edges, self loops,
        /// exits, edges out of the function) and random interleavings of reads, writes and
        /// solves over two frames.
        #[test]
        fn worklist_solve_equals_whole_passes(
            edges in proptest::collection::vec((0u32..24, 0u32..26, 0u8..4), 2..24),
            events in proptest::collection::vec(
                (0u8..3, 0usize..24, 0usize..2, 0u64..16), 1..120),
        ) {
            let len = edges.len();
            // Per instruction: kind 0 = exit, 1 = one successor, 2/3 = two successors;
            // targets past the end are edges out of the function.
            let succ: Vec<[u32; 2]> = edges
                .iter()
                .map(|&(a, b, kind)| {
                    let t = |x: u32| if (x as usize) < len { x } else { OUTSIDE };
                    match kind {
                        0 => [NO_SUCC, NO_SUCC],
                        1 => [t(a), NO_SUCC],
                        _ => [t(a), t(b)],
                    }
                })
                .collect();
            let empty = Code::from_raw(&[]).0;
            let mut fast = instance(succ.clone(), 2);
            let mut full = instance(succ, 2);
            for &(what, pc, frame, slots) in &events {
                let pc = pc % len;
                // Four slots' worth of masks keep collisions between events likely.
                let mask = slots << (pc % 3);
                for inst in [&mut fast, &mut full] {
                    match what {
                        0 => mark_read(inst, frame, pc, mask),
                        1 => {
                            let mut acc = [0u64; MAX_CALL_FRAMES];
                            acc[frame] = mask;
                            commit_writes(inst, pc, &acc);
                        }
                        _ => {}
                    }
                }
                if what == 2 {
                    solve(&mut fast, &empty);
                    solve_full(&mut full);
                    for inst in [&mut fast, &mut full] {
                        inst.updated = false;
                        inst.must_write_dropped = false;
                    }
                    for (a, b) in fast.frames.iter().zip(&full.frames) {
                        let key = |f: &Option<Vec<Masks>>| -> Vec<(u64, u64)> {
                            f.iter()
                                .flatten()
                                .map(|m| (m.live_before, m.must_write_acc))
                                .collect()
                        };
                        proptest::prop_assert_eq!(key(a), key(b));
                    }
                }
            }
        }
    }
}
