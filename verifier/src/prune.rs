//! State pruning and loop detection (the kernel's `is_state_visited`, `states_equal`,
//! `regsafe`, `stacksafe`).
//!
//! At prune points the walk stores checkpoints of its state. A later path reaching the same
//! instruction with a state *contained* in a stored one (every live register's possible values
//! a subset, every stack byte at least as initialised, same pointer kinds and ids up to
//! renaming) is safe without going further: the stored state's continuation was already
//! proven safe for all of those values. A checkpoint whose continuation is still being
//! explored (it is an ancestor of the current path) cannot prune — instead, finding the
//! *same* state there means the loop makes no progress: an infinite loop.
//!
//! The comparison itself is [`crate::equiv`]. What is compared: live registers (static
//! liveness), the stack slots still alive at the stored state's instruction once its
//! continuation is fully explored (Linux 6.18's stack liveness, [`crate::stack_live`]; states
//! on a cycle of the graph use per-path read marks recorded up the chain of checkpoints
//! instead), and only *precise* scalars by value (precision tracking marks what reached a
//! safety-relevant use).
//!
//! When states are stored follows the kernel, so that the walk (and the processed count)
//! matches it: after at least 2 jumps and 8 instructions since the last checkpoint, or when
//! the path's instruction history (jump points, spills and fills, linked-register records)
//! passed 40 entries; near a loop ancestor only every 20 jumps or 100 instructions. Each
//! instruction's list is scanned newest first; a state that keeps missing (3 misses per hit
//! plus 3) is dropped from the list, loop ancestors included — without that, a long bounded
//! loop compares every pass with every earlier pass (quadratic).

use crate::check::Walker;
use crate::equiv::{Hint, states_equal_hinted};
use crate::error::{VResult, VerifierError};
use crate::liveness::caller_live;
use crate::log;
use crate::precision::{self, SegEntry};
use crate::state::{MAX_CALL_FRAMES, VerifierState};

pub use crate::equiv::states_equal;

/// A stored state.
#[derive(Debug)]
pub struct Checkpoint {
    /// Instruction it was stored at.
    pub pc: usize,
    /// The state (`None` once evicted).
    pub state: Option<VerifierState>,
    /// Paths still being explored below this checkpoint.
    pub branches: u32,
    /// The checkpoint before it on the same path.
    pub parent: Option<usize>,
    /// The instructions executed from the previous checkpoint to this one: `len` entries
    /// of [`Explored::segs`] from `start`.
    seg: (u32, u32),
    /// Per frame: stack slots fully written by that segment.
    pub written: [u64; MAX_CALL_FRAMES],
    /// Per frame: stack slots some continuation of this state reads (before writing them).
    read: [u64; MAX_CALL_FRAMES],
    /// Frames `read` covers: a frame beyond has no marks yet, and is compared whole.
    read_frames: u8,
    /// Per frame: the stack slots compared, fixed when the state is cleaned (its
    /// continuation fully explored) from the stack liveness analysis.
    alive: Option<[u64; MAX_CALL_FRAMES]>,
    hits: u32,
    misses: u32,
    /// The component that made the last comparison with this state fail.
    hint: Hint,
    /// Dropped from its instruction's list while its path was still being explored.
    evicted: bool,
}

/// All checkpoints, with a per-instruction index.
#[derive(Debug)]
pub struct Explored {
    arena: Vec<Checkpoint>,
    /// Every checkpoint's path segment, back to back (one allocation for all).
    segs: Vec<SegEntry>,
    at: Vec<Vec<usize>>,
    live_states: u32,
    /// Most states stored at one time.
    pub peak: u32,
    /// Longest list scanned at one instruction (the kernel's `max_states_per_insn`).
    max_per_insn: u32,
}

/// Outcome of the check at a prune point.
pub(crate) enum Visit {
    /// Equivalent to a proven state: stop this path.
    Pruned,
    /// Keep walking.
    Continue,
}

impl Explored {
    /// No checkpoints yet.
    pub fn new(len: usize) -> Explored {
        Explored {
            arena: Vec::new(),
            segs: Vec::new(),
            at: vec![Vec::new(); len],
            live_states: 0,
            peak: 0,
            max_per_insn: 0,
        }
    }

    /// A path was forked below checkpoint `p`.
    pub fn add_branch(&mut self, p: usize) {
        if let Some(c) = self.arena.get_mut(p) {
            c.branches += 1;
        }
    }

    /// A path below `parent` finished: walk up, marking checkpoints whose subtrees are done.
    pub fn path_done(&mut self, mut parent: Option<usize>) {
        while let Some(p) = parent {
            let Some(c) = self.arena.get_mut(p) else {
                return;
            };
            c.branches = c.branches.saturating_sub(1);
            if c.branches > 0 {
                return;
            }
            if c.evicted {
                c.evicted = false;
                c.state = None;
                self.live_states = self.live_states.saturating_sub(1);
            }
            parent = c.parent;
        }
    }

    /// The stored state of checkpoint `p`, mutably (for precision marks).
    pub(crate) fn state_mut(&mut self, p: usize) -> Option<&mut VerifierState> {
        self.arena.get_mut(p).and_then(|c| c.state.as_mut())
    }

    /// The path segment leading to checkpoint `p`.
    pub(crate) fn segment(&self, p: usize) -> &[SegEntry] {
        self.arena.get(p).map_or(&[], |c| {
            let (start, len) = (c.seg.0 as usize, c.seg.1 as usize);
            self.segs.get(start..start + len).unwrap_or(&[])
        })
    }

    /// The checkpoint before `p`.
    pub(crate) fn parent_of(&self, p: usize) -> Option<usize> {
        self.arena.get(p).and_then(|c| c.parent)
    }

    /// Total states stored.
    pub fn total(&self) -> u32 {
        self.arena.len() as u32
    }

    /// Most states in one instruction's list when a path reached it and was not pruned
    /// (the kernel's `max_states_per_insn`).
    pub fn max_per_insn(&self) -> u32 {
        self.max_per_insn
    }
}

/// The kernel's eviction rule: a checkpoint that keeps missing is dropped.
const EVICT_FACTOR: u32 = 3;

/// States at one instruction beyond which an unprivileged program stores no more.
const MAX_STATES_UNPRIV: u32 = 64;

/// The kernel's cheap test before looking for an infinite loop: every register of the
/// executing frame identical, ids included (no renaming). Only then is the full exact
/// comparison worth doing.
fn states_maybe_looping(old: &VerifierState, cur: &VerifierState) -> bool {
    if old.frames.len() != cur.frames.len() {
        return false;
    }
    let (o, c) = (old.cur(), cur.cur());
    o.regs.iter().zip(&c.regs).all(|(a, b)| {
        a.ty == b.ty
            && a.off == b.off
            && a.range == b.range
            && a.var == b.var
            && a.id == b.id
            && a.ref_obj_id == b.ref_obj_id
    })
}

impl Walker<'_> {
    /// At a prune point: prune against a finished checkpoint, detect a loop against an
    /// unfinished one, or store a new checkpoint.
    ///
    /// The list is scanned newest first, as the kernel does, and with the kernel's counters:
    /// a checkpoint misses when the scan ends up storing a new state without having matched
    /// it, and one that keeps missing is dropped from the list — loop ancestors included
    /// (their stored state stays in the arena for the parent chain, but is no longer
    /// compared). Without this, a long bounded loop keeps every iteration's state at its head
    /// and compares each new pass against all of them (9,222 states for ~1M instructions).
    pub(crate) fn is_state_visited(&mut self) -> VResult<Visit> {
        let pc = self.pc;
        let force = self.opts.test_state_freq || self.hist > crate::check::MAX_HIST;
        let mut add = force
            || (self.jmps_processed - self.prev_jmps >= 2
                && self.stats.insn_processed - self.prev_insns >= 8);
        let mut list = std::mem::take(&mut self.explored.at[pc]);
        self.clean_states(&list);
        let states_cnt = list.len() as u32;
        let mut evicted = false;
        let mut result = None;
        for slot in list.iter_mut().rev() {
            let idx = *slot;
            let cp = &mut self.explored.arena[idx];
            let Some(old) = cp.state.as_ref() else {
                *slot = usize::MAX;
                evicted = true;
                continue;
            };
            if cp.branches > 0 {
                let mut no_hint = Hint::NONE;
                if states_maybe_looping(old, &self.st)
                    && states_equal_hinted(
                        old,
                        &self.st,
                        self.live,
                        &[],
                        pc,
                        true,
                        self.opts.privileged,
                        &mut no_hint,
                    )
                {
                    let cur = log::fmt_state(&self.st, self.maps);
                    let old_s = log::fmt_state(old, self.maps);
                    self.explored.at[pc] = list;
                    return Err(VerifierError::einval(
                        pc,
                        format!(
                            "infinite loop detected at insn {pc}\ncur state:{cur}\nold state:{old_s}"
                        ),
                    ));
                }
                if !force
                    && self.jmps_processed - self.prev_jmps < 20
                    && self.stats.insn_processed - self.prev_insns < 100
                {
                    add = false;
                }
            } else if states_equal_hinted(
                old,
                &self.st,
                self.live,
                cp.alive.as_ref().unwrap_or(&cp.read),
                pc,
                false,
                self.opts.privileged,
                &mut cp.hint,
            ) {
                let regs = crate::equiv::frame_masks(&self.st, self.live, pc);
                let bt = precision::precise_in(
                    old,
                    self.st.curframe(),
                    cp.alive.as_ref().map(|a| (&regs, a)),
                );
                let reads = cp.read;
                self.explored.arena[idx].hits += 1;
                result = Some((bt, reads));
                break;
            }
            let cp = &mut self.explored.arena[idx];
            if add {
                cp.misses += 1;
            }
            if cp.misses > cp.hits * EVICT_FACTOR + EVICT_FACTOR {
                // A loop ancestor's state still anchors its path's parent chain; it stays
                // counted until that path finishes (the kernel's free list).
                if cp.branches > 0 {
                    cp.evicted = true;
                } else {
                    if let Some(st) = cp.state.take() {
                        self.recycle(st);
                    }
                    self.explored.live_states = self.explored.live_states.saturating_sub(1);
                }
                *slot = usize::MAX;
                evicted = true;
            }
        }
        if evicted {
            list.retain(|&i| i != usize::MAX);
        }
        self.explored.at[pc] = list;
        if let Some((bt, reads)) = result {
            self.mark_zext_on_prune();
            self.propagate_precision(bt);
            // What the old state's continuation reads, the current path reads too.
            for (f, mask) in reads.iter().enumerate() {
                let mut m = *mask;
                while m != 0 {
                    let spi = m.trailing_zeros() as usize;
                    m &= m - 1;
                    self.mark_stack_read(f, spi);
                }
            }
            return Ok(Visit::Pruned);
        }
        self.explored.max_per_insn = self.explored.max_per_insn.max(states_cnt);
        // Unprivileged programs stop storing states at a busy instruction (the kernel's
        // BPF_COMPLEXITY_LIMIT_STATES for callers without CAP_BPF).
        if !self.opts.privileged && states_cnt > MAX_STATES_UNPRIV {
            return Ok(Visit::Continue);
        }
        if add {
            let idx = self.explored.arena.len();
            let state = self.copy_state();
            self.explored.arena.push(Checkpoint {
                pc,
                state: Some(state),
                branches: 1,
                parent: self.parent,
                seg: (self.explored.segs.len() as u32, self.seg.len() as u32),
                written: std::mem::take(&mut self.seg_written),
                read: [0; MAX_CALL_FRAMES],
                read_frames: 0,
                alive: None,
                hits: 0,
                misses: 0,
                hint: Hint::NONE,
                evicted: false,
            });
            self.explored.segs.extend_from_slice(&self.seg);
            self.seg.clear();
            self.hist = 0;
            self.parent = Some(idx);
            precision::mark_all_imprecise(&mut self.st);
            self.explored.at[pc].push(idx);
            self.explored.live_states += 1;
            self.explored.peak = self.explored.peak.max(self.explored.live_states);
            self.prev_jmps = self.jmps_processed;
            self.prev_insns = self.stats.insn_processed;
        }
        Ok(Visit::Continue)
    }

    /// Cleans the stored states in `list` whose continuation is fully explored, once (the
    /// kernel's `clean_live_states`): from now on only the stack slots the liveness analysis
    /// finds alive at their instruction are compared. States on a cycle of the graph keep
    /// the per-path read marks (see [`crate::stack_live::loop_slots`]).
    fn clean_states(&mut self, list: &[usize]) {
        if self.in_loop.get(self.pc).copied().unwrap_or(true) {
            return;
        }
        for &idx in list {
            let cp = &self.explored.arena[idx];
            if cp.branches > 0 || cp.alive.is_some() {
                continue;
            }
            let Some(old) = cp.state.as_ref() else {
                continue;
            };
            let same_calls = old.frames.len() == self.st.frames.len()
                && old
                    .frames
                    .iter()
                    .zip(&self.st.frames)
                    .all(|(a, b)| a.callsite == b.callsite);
            if !same_calls {
                continue;
            }
            let alive = self.slive.alive(old, self.cfg, cp.pc);
            self.explored.arena[idx].alive = Some(alive);
        }
    }

    /// The current path reads stack slot `spi` of frame `f` (dynamic stack liveness, the
    /// kernel's `mark_reg_read` for stack slots): unless the current segment wrote it, every
    /// stored state up the chain whose value flows here gets a read mark.
    pub(crate) fn mark_stack_read(&mut self, f: usize, spi: usize) {
        if spi >= 64 {
            return;
        }
        let bit = 1u64 << spi;
        if self.seg_written.get(f).is_some_and(|m| m & bit != 0) {
            return;
        }
        let mut p = self.parent;
        while let Some(idx) = p {
            let cp = &mut self.explored.arena[idx];
            let Some(mask) = cp.read.get_mut(f) else {
                return;
            };
            cp.read_frames = cp.read_frames.max(f as u8 + 1);
            if *mask & bit != 0 {
                return;
            }
            *mask |= bit;
            if cp.written.get(f).is_some_and(|m| m & bit != 0) {
                return;
            }
            p = cp.parent;
        }
    }

    /// The current segment wrote all 8 bytes of slot `spi` of frame `f`.
    pub(crate) fn mark_stack_written(&mut self, f: usize, spi: usize) {
        if spi >= 64 {
            return;
        }
        if let Some(m) = self.seg_written.get_mut(f) {
            *m |= 1 << spi;
        }
    }

    /// A pruned path stops here, so the reads its continuation would have made are not
    /// seen: conservatively, every live 32-bit definition still pending is marked as needing
    /// zero-extension.
    fn mark_zext_on_prune(&mut self) {
        let pc = self.pc;
        let n = self.st.frames.len();
        let mut defs = Vec::new();
        for i in 0..n {
            let mask = if i + 1 == n {
                self.live64.get(pc).copied().unwrap_or(0x7ff)
            } else {
                match self.st.frames[i + 1].callsite {
                    Some(cs) => caller_live(self.live64, cs),
                    None => 0x7ff,
                }
            };
            let f = &self.st.frames[i];
            for (r, reg) in f.regs.iter().enumerate() {
                if mask & (1 << r) != 0 && reg.subreg_def != 0 {
                    defs.push(reg.subreg_def as usize - 1);
                }
            }
        }
        for d in defs {
            if let Some(f) = self.facts.get_mut(d) {
                f.zext = true;
            }
        }
    }
}
