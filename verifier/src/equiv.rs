//! State equivalence for pruning (the kernel's `states_equal`, `regsafe`, `stacksafe`):
//! whether a new state is contained in a stored one, or identical to it up to id renaming.
//!
//! Why it has to be fast: every visit of a prune point compares the current state with the
//! states stored there until one matches, and most comparisons *fail* — on the Cilium
//! programs about nine in ten, a third of them only in the stack, after a dozen slots were
//! compared. Three things keep that cheap without changing any answer:
//! - a *hint* per stored state: the register or stack slot that made the last comparison with
//!   it fail is checked first, on its own. A component that fails alone fails in the full
//!   comparison too (ids only add constraints), so a repeat miss costs one component;
//! - stack slots that are the same write in both states (same version, see
//!   [`crate::stack::Stack`]) and hold no id are accepted without looking inside (most are:
//!   the paths share their prefix); other identical slots without ids are cheap too;
//! - nothing is copied: the scalar a slot reads back as is borrowed.

use crate::liveness::{RegMask, caller_live};
use crate::reg::{LINK_FLAGS, RegState, RegType};
use crate::stack::{REG_SIZE, SlotType, Stack, StackSlot};
use crate::state::{FuncState, NUM_REGS, VerifierState};

/// Which component made a comparison fail: `frame << 8 | n`, `n < 16` a register,
/// `n >= 16` the stack slot `n - 16`; [`Hint::NONE`] when nothing is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hint(u16);

impl Hint {
    /// No failing component recorded.
    pub const NONE: Hint = Hint(u16::MAX);

    fn reg(frame: usize, r: usize) -> Hint {
        Hint(((frame as u16) << 8) | r as u16)
    }

    fn slot(frame: usize, spi: usize) -> Hint {
        Hint(((frame as u16) << 8) | (16 + spi.min(239)) as u16)
    }
}

/// Bijective id renaming between an old and a current state (the kernel's `check_ids`).
/// States hold few ids, so a linear scan of a small inline array beats hashing (and
/// allocating); more pairs than that spill into a vector.
#[derive(Default)]
struct IdMap {
    inline: [(u32, u32); INLINE_IDS],
    len: usize,
    more: Vec<(u32, u32)>,
    /// Temporary ids handed out so far (for unlinked current scalars).
    tmp: u32,
}

/// Temporary ids count down from here: below the link flag bits, far above any id a walk
/// hands out.
const TMP_ID_BASE: u32 = (1 << 30) - 1;

const INLINE_IDS: usize = 16;

impl IdMap {
    fn check(&mut self, old: u32, cur: u32) -> bool {
        if (old == 0) != (cur == 0) {
            return false;
        }
        if old == 0 {
            return true;
        }
        for &(o, c) in self.inline[..self.len].iter().chain(&self.more) {
            if o == old {
                return c == cur;
            }
            if c == cur {
                return false;
            }
        }
        if self.len < INLINE_IDS {
            self.inline[self.len] = (old, cur);
            self.len += 1;
        } else {
            self.more.push((old, cur));
        }
        true
    }

    /// Scalar link ids (the kernel's `check_scalar_ids`): a link only in the current state
    /// is harmless; an unlinked current scalar gets a temporary id of its own, so an old
    /// link is only broken when two of its members meet two different current registers.
    fn check_scalar(&mut self, old: u32, cur: u32) -> bool {
        if old == 0 {
            return true;
        }
        let cur = if cur == 0 {
            self.tmp += 1;
            TMP_ID_BASE - self.tmp
        } else {
            cur
        };
        self.check(old, cur)
    }
}

/// [`frame_mask`] of every frame of `cur`.
pub(crate) fn frame_masks(
    cur: &VerifierState,
    live: &[RegMask],
    pc: usize,
) -> [RegMask; crate::state::MAX_CALL_FRAMES] {
    let mut m = [0 as RegMask; crate::state::MAX_CALL_FRAMES];
    for (i, x) in m.iter_mut().enumerate().take(cur.frames.len()) {
        *x = frame_mask(cur, live, pc, i);
    }
    m
}

/// Registers of frame `i` that matter: live ones in the executing frame, the callee-saved
/// ones live after the call in callers.
fn frame_mask(cur: &VerifierState, live: &[RegMask], pc: usize, i: usize) -> RegMask {
    if i + 1 == cur.frames.len() {
        live.get(pc).copied().unwrap_or(0x7ff)
    } else {
        match cur.frames[i + 1].callsite {
            Some(cs) => caller_live(live, cs),
            None => 0x7ff,
        }
    }
}

/// Whether `cur` is contained in `old` (`exact == false`) or identical up to id renaming
/// (`exact == true`), looking only at registers live at `pc` and stack slots some
/// continuation of `old` reads (`stack_read`, per frame; empty = all). With `uninit_reads`
/// (a privileged program, which may read uninitialised stack), an allocated but unwritten
/// current slot reads as an unknown scalar, as plain data does.
pub fn states_equal(
    old: &VerifierState,
    cur: &VerifierState,
    live: &[RegMask],
    stack_read: &[u64],
    pc: usize,
    exact: bool,
    uninit_reads: bool,
) -> bool {
    let mut hint = Hint::NONE;
    states_equal_hinted(
        old,
        cur,
        live,
        stack_read,
        pc,
        exact,
        uninit_reads,
        &mut hint,
    )
}

/// [`states_equal`], checking the component in `hint` first and recording in it the
/// component that failed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn states_equal_hinted(
    old: &VerifierState,
    cur: &VerifierState,
    live: &[RegMask],
    stack_read: &[u64],
    pc: usize,
    exact: bool,
    uninit_reads: bool,
    hint: &mut Hint,
) -> bool {
    let n = cur.frames.len();
    if old.frames.len() != n {
        return false;
    }
    for (of, cf) in old.frames.iter().zip(&cur.frames) {
        if of.callsite != cf.callsite || of.subprog != cf.subprog {
            return false;
        }
    }
    let read_of = |i: usize| {
        if exact {
            u64::MAX
        } else {
            stack_read.get(i).copied().unwrap_or(u64::MAX)
        }
    };
    if *hint != Hint::NONE {
        let (i, c) = (usize::from(hint.0 >> 8), usize::from(hint.0 & 0xff));
        if i < n {
            let (of, cf) = (&old.frames[i], &cur.frames[i]);
            let mut ids = IdMap::default();
            let fails = if c < NUM_REGS {
                let mask = frame_mask(cur, live, pc, i);
                (mask & (1 << c) != 0 || c == 10)
                    && !regsafe(&of.regs[c], &cf.regs[c], exact, &mut ids)
            } else {
                let spi = c - 16;
                (spi >= 64 || read_of(i) & (1 << spi) != 0)
                    && !slot_safe(
                        slot_or_empty(&of.stack, spi),
                        slot_or_empty(&cf.stack, spi),
                        exact,
                        SlotMode {
                            privileged: uninit_reads,
                            allocated: spi < cf.stack.len(),
                        },
                        &mut ids,
                    )
            };
            if fails {
                return false;
            }
        }
    }
    let mut ids = IdMap::default();
    let mut masks = [0 as RegMask; crate::state::MAX_CALL_FRAMES];
    for (i, m) in masks.iter_mut().enumerate().take(n) {
        *m = frame_mask(cur, live, pc, i);
    }
    for i in 0..n {
        let mask = masks.get(i).copied().unwrap_or(0x7ff);
        let (of, cf) = (&old.frames[i], &cur.frames[i]);
        if let Err(h) = frame_equal(of, cf, i, mask, read_of(i), exact, uninit_reads, &mut ids) {
            *hint = h;
            return false;
        }
    }
    old.refs.len() == cur.refs.len()
        && old
            .refs
            .iter()
            .zip(&cur.refs)
            .all(|(a, b)| ids.check(a.id, b.id))
}

#[allow(clippy::too_many_arguments)]
fn frame_equal(
    old: &FuncState,
    cur: &FuncState,
    frame: usize,
    mask: RegMask,
    stack_read: u64,
    exact: bool,
    uninit_reads: bool,
    ids: &mut IdMap,
) -> Result<(), Hint> {
    for r in 0..NUM_REGS {
        if (mask & (1 << r) != 0 || r == 10) && !regsafe(&old.regs[r], &cur.regs[r], exact, ids) {
            return Err(Hint::reg(frame, r));
        }
    }
    let n = old.stack.len().max(cur.stack.len());
    // Slots beyond 64 have no read mark: always compared.
    let mut pending = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    pending &= stack_read;
    let check = |spi: usize, ids: &mut IdMap| -> Result<(), Hint> {
        if same_version(&old.stack, &cur.stack, spi) {
            return Ok(());
        }
        match slot_cmp(
            slot_or_empty(&old.stack, spi),
            slot_or_empty(&cur.stack, spi),
            exact,
            SlotMode {
                privileged: uninit_reads,
                allocated: spi < cur.stack.len(),
            },
            ids,
        ) {
            SlotCmp::Identical | SlotCmp::Safe => Ok(()),
            SlotCmp::Unsafe => Err(Hint::slot(frame, spi)),
        }
    };
    while pending != 0 {
        let spi = pending.trailing_zeros() as usize;
        pending &= pending - 1;
        check(spi, ids)?;
    }
    for spi in 64..n {
        check(spi, ids)?;
    }
    Ok(())
}

const EMPTY_SLOT: StackSlot = StackSlot {
    types: [SlotType::Invalid; REG_SIZE],
    spilled: RegState::not_init(),
};

static UNKNOWN_SCALAR: RegState = RegState::unknown_scalar();

/// The slot is the same write in both states (equal contents, see [`Stack`]) and holds no
/// id that the renaming would have to check: safe in both modes without looking inside.
fn same_version(old: &Stack, cur: &Stack, spi: usize) -> bool {
    old.version(spi) == cur.version(spi) && {
        let o = slot_or_empty(old, spi);
        !o.is_spilled() || (o.spilled.id == 0 && o.spilled.ref_obj_id == 0)
    }
}

fn slot_or_empty(stack: &Stack, spi: usize) -> &StackSlot {
    stack.slot(spi).unwrap_or(&EMPTY_SLOT)
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
            // A copy plus a constant only matches the same kind of link with the same
            // constant: what a branch carries over to its partners depends on it.
            !old.precise
                || (old.id & LINK_FLAGS == cur.id & LINK_FLAGS
                    && old.link_delta() == cur.link_delta()
                    && cur.var.is_subset_of(&old.var)
                    && ids.check_scalar(old.id, cur.id))
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

/// How a stack slot of the old state compares with the same slot of the current one.
enum SlotCmp {
    /// The same contents, no id involved: safe in both modes.
    Identical,
    /// Contained (or, when exact, identical up to id renaming).
    Safe,
    /// Not contained.
    Unsafe,
}

/// One stack slot of the old state against the same slot of the current one.
fn slot_safe(o: &StackSlot, c: &StackSlot, exact: bool, mode: SlotMode, ids: &mut IdMap) -> bool {
    !matches!(slot_cmp(o, c, exact, mode, ids), SlotCmp::Unsafe)
}

/// How a current slot may be read: by a privileged program (uninitialised bytes read as
/// data, old plain data covers anything), and whether the current stack reaches it.
#[derive(Clone, Copy)]
struct SlotMode {
    privileged: bool,
    allocated: bool,
}

fn slot_cmp(o: &StackSlot, c: &StackSlot, exact: bool, mode: SlotMode, ids: &mut IdMap) -> SlotCmp {
    let same_types = o.types_word() == c.types_word();
    if same_types
        && (!o.is_spilled()
            || (o.spilled.id == 0 && o.spilled.ref_obj_id == 0 && o.spilled == c.spilled))
    {
        return SlotCmp::Identical;
    }
    let safe = if exact {
        same_types && (!o.is_spilled() || regsafe(&o.spilled, &c.spilled, true, ids))
    } else {
        slot_contained(o, c, mode, ids)
    };
    if safe { SlotCmp::Safe } else { SlotCmp::Unsafe }
}

/// Whether every value the old slot allowed a continuation to read covers the current one.
fn slot_contained(o: &StackSlot, c: &StackSlot, mode: SlotMode, ids: &mut IdMap) -> bool {
    // A full scalar spill and eight bytes of data both read back as a scalar.
    let uninit = mode.privileged && mode.allocated;
    if let (Some(or), Some(cr)) = (scalar_of_slot(o, false), scalar_of_slot(c, uninit)) {
        return regsafe(or, cr, false, ids);
    }
    for (ot, ct) in o.types.iter().zip(&c.types) {
        let ok = match ot {
            // Never written on the old path: whatever it read there, it read as an unknown
            // scalar, and any current contents (an address too) are one.
            SlotType::Invalid => true,
            // Plain data: the same for a privileged program (the kernel's
            // `allow_uninit_stack`); otherwise a spilled pointer must not turn into data.
            SlotType::Misc => {
                mode.privileged || !(*ct == SlotType::Spill && c.spilled.is_pointer())
            }
            _ => ot == ct,
        };
        if !ok {
            return false;
        }
    }
    !o.is_spilled() || regsafe(&o.spilled, &c.spilled, false, ids)
}

/// The scalar an 8-byte read of the slot gives, when it is a full scalar spill or all data
/// (the kernel's `scalar_reg_for_stack`); with `uninit`, unwritten bytes count as data.
fn scalar_of_slot(s: &StackSlot, uninit: bool) -> Option<&RegState> {
    if s.is_full_spill() && s.spilled.is_scalar() {
        return Some(&s.spilled);
    }
    if s.types
        .iter()
        .all(|t| *t == SlotType::Misc || (uninit && *t == SlotType::Invalid))
    {
        return Some(&UNKNOWN_SCALAR);
    }
    None
}
