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
//! Precision: every live scalar is compared by its full bounds (the kernel only compares
//! scalars that reach a "precise" use); this prunes less, never wrongly.

use crate::check::Walker;
use crate::error::{VResult, VerifierError};
use crate::liveness::{RegMask, caller_live};
use crate::log;
use crate::precision::{self, SegEntry};
use crate::reg::{RegState, RegType};
use crate::stack::{REG_SIZE, SlotType, Stack, StackSlot};
use crate::state::{FuncState, VerifierState};

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
    /// The instructions executed from the previous checkpoint to this one.
    pub seg: Vec<SegEntry>,
    /// Per frame: stack slots fully written by that segment.
    pub written: Vec<u64>,
    /// Per frame: stack slots some continuation of this state reads (before writing them).
    pub read: Vec<u64>,
    hits: u32,
    misses: u32,
}

/// All checkpoints, with a per-instruction index.
#[derive(Debug)]
pub struct Explored {
    arena: Vec<Checkpoint>,
    at: Vec<Vec<usize>>,
    live_states: u32,
    /// Most states stored at one time.
    pub peak: u32,
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
            at: vec![Vec::new(); len],
            live_states: 0,
            peak: 0,
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
            parent = c.parent;
        }
    }

    /// The stored state of checkpoint `p`, mutably (for precision marks).
    pub(crate) fn state_mut(&mut self, p: usize) -> Option<&mut VerifierState> {
        self.arena.get_mut(p).and_then(|c| c.state.as_mut())
    }

    /// The path segment leading to checkpoint `p`.
    pub(crate) fn segment(&self, p: usize) -> &[SegEntry] {
        self.arena.get(p).map_or(&[], |c| c.seg.as_slice())
    }

    /// The checkpoint before `p`.
    pub(crate) fn parent_of(&self, p: usize) -> Option<usize> {
        self.arena.get(p).and_then(|c| c.parent)
    }

    /// Total states stored.
    pub fn total(&self) -> u32 {
        self.arena.len() as u32
    }

    /// Most states already stored at one instruction when another was added there (the
    /// kernel's `max_states_per_insn`).
    pub fn max_per_insn(&self) -> u32 {
        self.at
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .saturating_sub(1) as u32
    }
}

/// Bijective id renaming between an old and a current state (the kernel's `check_ids`).
/// States hold few ids, so a linear list beats hashing.
#[derive(Default)]
struct IdMap {
    pairs: Vec<(u32, u32)>,
}

impl IdMap {
    fn check(&mut self, old: u32, cur: u32) -> bool {
        if (old == 0) != (cur == 0) {
            return false;
        }
        if old == 0 {
            return true;
        }
        for &(o, c) in &self.pairs {
            if o == old {
                return c == cur;
            }
            if c == cur {
                return false;
            }
        }
        self.pairs.push((old, cur));
        true
    }

    /// Scalar link ids: a link in the old state must be present in the current one; a link
    /// only in the current state is harmless.
    fn check_scalar(&mut self, old: u32, cur: u32) -> bool {
        if old == 0 {
            return true;
        }
        if cur == 0 {
            return false;
        }
        self.check(old, cur)
    }
}

/// Whether `cur` is contained in `old` (`exact == false`) or identical up to id renaming
/// (`exact == true`), looking only at registers live at `pc`.
pub fn states_equal(
    old: &VerifierState,
    cur: &VerifierState,
    live: &[RegMask],
    stack_read: &[u64],
    pc: usize,
    exact: bool,
) -> bool {
    if old.frames.len() != cur.frames.len() {
        return false;
    }
    let mut ids = IdMap::default();
    let n = cur.frames.len();
    for i in 0..n {
        let (of, cf) = (&old.frames[i], &cur.frames[i]);
        if of.callsite != cf.callsite || of.subprog != cf.subprog {
            return false;
        }
        let mask = if i + 1 == n {
            live.get(pc).copied().unwrap_or(0x7ff)
        } else {
            match cur.frames[i + 1].callsite {
                Some(cs) => caller_live(live, cs),
                None => 0x7ff,
            }
        };
        let read = stack_read.get(i).copied().unwrap_or(u64::MAX);
        if !frame_equal(of, cf, mask, read, exact, &mut ids) {
            return false;
        }
    }
    if old.refs.len() != cur.refs.len() {
        return false;
    }
    old.refs
        .iter()
        .zip(&cur.refs)
        .all(|(a, b)| ids.check(a.id, b.id))
}

fn frame_equal(
    old: &FuncState,
    cur: &FuncState,
    mask: RegMask,
    stack_read: u64,
    exact: bool,
    ids: &mut IdMap,
) -> bool {
    for r in 0..11 {
        if mask & (1 << r) == 0 && r != 10 {
            continue;
        }
        if !regsafe(&old.regs[r], &cur.regs[r], exact, ids) {
            return false;
        }
    }
    stacksafe(&old.stack, &cur.stack, stack_read, exact, ids)
}

fn regsafe(old: &RegState, cur: &RegState, exact: bool, ids: &mut IdMap) -> bool {
    if !old.is_init() {
        return !exact || !cur.is_init();
    }
    if !cur.is_init() {
        return false;
    }
    if exact {
        return old.ty == cur.ty
            && old.off == cur.off
            && old.var == cur.var
            && old.range == cur.range
            && ids.check(old.id, cur.id)
            && ids.check(old.ref_obj_id, cur.ref_obj_id);
    }
    match (old.ty, cur.ty) {
        (RegType::Scalar, RegType::Scalar) => {
            !old.precise || (cur.var.is_subset_of(&old.var) && ids.check_scalar(old.id, cur.id))
        }
        (RegType::Scalar, _) | (_, RegType::Scalar) => false,
        (RegType::Packet, RegType::Packet) | (RegType::PacketMeta, RegType::PacketMeta) => {
            old.range <= cur.range
                && old.off == cur.off
                && ids.check(old.id, cur.id)
                && cur.var.is_subset_of(&old.var)
        }
        (RegType::MapValue { .. }, RegType::MapValue { .. })
        | (RegType::Mem { .. }, RegType::Mem { .. }) => {
            old.ty == cur.ty
                && old.off == cur.off
                && cur.var.is_subset_of(&old.var)
                && ids.check(old.id, cur.id)
                && ids.check(old.ref_obj_id, cur.ref_obj_id)
        }
        _ => {
            old.ty == cur.ty
                && old.off == cur.off
                && old.var == cur.var
                && ids.check(old.id, cur.id)
                && ids.check(old.ref_obj_id, cur.ref_obj_id)
        }
    }
}

fn stacksafe(old: &Stack, cur: &Stack, read: u64, exact: bool, ids: &mut IdMap) -> bool {
    let n = old.len().max(cur.len());
    let empty = StackSlot::default();
    for spi in 0..n {
        // A slot no continuation of the old state read cannot matter.
        if !exact && spi < 64 && read & (1 << spi) == 0 {
            continue;
        }
        let o = old.slot(spi).unwrap_or(&empty);
        let c = cur.slot(spi).unwrap_or(&empty);
        if exact {
            if o.types != c.types {
                return false;
            }
            if o.is_spilled() && !regsafe(&o.spilled, &c.spilled, true, ids) {
                return false;
            }
            continue;
        }
        // A full scalar spill and eight bytes of data both read back as a scalar.
        if let (Some(or), Some(cr)) = (scalar_of_slot(o), scalar_of_slot(c)) {
            if !regsafe(&or, &cr, false, ids) {
                return false;
            }
            continue;
        }
        for i in 0..REG_SIZE {
            let (ot, ct) = (o.types[i], c.types[i]);
            let ok = match ot {
                // Never written, or plain data: the old path read (at most) an unknown scalar.
                SlotType::Invalid | SlotType::Misc => {
                    !(ct == SlotType::Spill && c.spilled.is_pointer())
                }
                _ => ot == ct,
            };
            if !ok {
                return false;
            }
        }
        if o.is_spilled() && !regsafe(&o.spilled, &c.spilled, false, ids) {
            return false;
        }
    }
    true
}

/// The scalar an 8-byte read of the slot gives, when it is a full scalar spill or all data
/// (the kernel's `scalar_reg_for_stack`).
fn scalar_of_slot(s: &StackSlot) -> Option<RegState> {
    if s.is_full_spill() && s.spilled.is_scalar() {
        return Some(s.spilled);
    }
    if s.types.iter().all(|t| *t == SlotType::Misc) {
        return Some(RegState::unknown_scalar());
    }
    None
}

/// The kernel's eviction rule: a checkpoint that keeps missing is dropped.
const EVICT_FACTOR: u32 = 3;

impl Walker<'_> {
    /// At a prune point: prune against a finished checkpoint, detect a loop against an
    /// unfinished one, or store a new checkpoint.
    pub(crate) fn is_state_visited(&mut self) -> VResult<Visit> {
        let pc = self.pc;
        let mut add = self.opts.test_state_freq
            || (self.jmps_processed - self.prev_jmps >= 2
                && self.stats.insn_processed - self.prev_insns >= 8);
        let list = std::mem::take(&mut self.explored.at[pc]);
        let mut keep = Vec::with_capacity(list.len() + 1);
        let mut result = None;
        for idx in list {
            if result.is_some() {
                keep.push(idx);
                continue;
            }
            let cp = &self.explored.arena[idx];
            let Some(old) = cp.state.as_ref() else {
                continue;
            };
            if cp.branches > 0 {
                if states_equal(old, &self.st, self.live, &[], pc, true) {
                    let cur = log::fmt_state(&self.st, self.maps);
                    let old_s = log::fmt_state(old, self.maps);
                    self.explored.at[pc] = keep;
                    return Err(VerifierError::einval(
                        pc,
                        format!(
                            "infinite loop detected at insn {pc}\ncur state:{cur}\nold state:{old_s}"
                        ),
                    ));
                }
                if self.jmps_processed - self.prev_jmps < 20
                    && self.stats.insn_processed - self.prev_insns < 100
                {
                    add = false;
                }
                keep.push(idx);
                continue;
            }
            if states_equal(old, &self.st, self.live, &cp.read, pc, false) {
                let bt = precision::precise_in(old, self.st.curframe());
                let reads = cp.read.clone();
                self.explored.arena[idx].hits += 1;
                keep.push(idx);
                result = Some((Visit::Pruned, bt, reads));
                continue;
            }
            let cp = &mut self.explored.arena[idx];
            cp.misses += 1;
            if cp.misses > cp.hits * EVICT_FACTOR + EVICT_FACTOR && cp.branches == 0 {
                cp.state = None;
                self.explored.live_states = self.explored.live_states.saturating_sub(1);
                continue;
            }
            keep.push(idx);
        }
        if let Some((r, bt, reads)) = result {
            self.explored.at[pc] = keep;
            self.mark_zext_on_prune();
            self.propagate_precision(bt);
            // What the old state's continuation reads, the current path reads too.
            for (f, mask) in reads.iter().enumerate() {
                for spi in 0..64 {
                    if mask & (1 << spi) != 0 {
                        self.mark_stack_read(f, spi);
                    }
                }
            }
            return Ok(r);
        }
        if add {
            let idx = self.explored.arena.len();
            self.explored.arena.push(Checkpoint {
                pc,
                state: Some(self.st.clone()),
                branches: 1,
                parent: self.parent,
                seg: std::mem::take(&mut self.seg),
                written: std::mem::take(&mut self.seg_written),
                read: Vec::new(),
                hits: 0,
                misses: 0,
            });
            self.parent = Some(idx);
            precision::mark_all_imprecise(&mut self.st);
            keep.push(idx);
            self.explored.live_states += 1;
            self.explored.peak = self.explored.peak.max(self.explored.live_states);
            self.prev_jmps = self.jmps_processed;
            self.prev_insns = self.stats.insn_processed;
        }
        self.explored.at[pc] = keep;
        Ok(Visit::Continue)
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
            if cp.read.len() <= f {
                cp.read.resize(f + 1, 0);
            }
            if cp.read[f] & bit != 0 {
                return;
            }
            cp.read[f] |= bit;
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
        if self.seg_written.len() <= f {
            self.seg_written.resize(f + 1, 0);
        }
        self.seg_written[f] |= 1 << spi;
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
