//! Precision tracking (the kernel's `mark_chain_precision` / `backtrack_insn`).
//!
//! Why: pruning compares a new state with a stored one, and comparing every scalar by its
//! exact bounds makes two paths that differ only in, say, a status code never merge —
//! real programs (Cilium's) then blow past the instruction limit. Most scalar values never
//! influence safety. A value matters only when it reaches a *precise use*: a pointer offset,
//! a helper's size argument, a constant map key, or a branch whose outcome it decided. At
//! such a use we walk the current path backwards, instruction by instruction, collecting the
//! registers and stack slots the value was computed from, and mark them precise in every
//! stored state along the way. Pruning then compares only precise scalars; the others match
//! any scalar.
//!
//! The path is recorded per segment: the instructions executed since the last stored state
//! ([`SegEntry`]), with the stack slot each fixed-offset stack access touched. When the walk
//! cannot follow a value (an atomic on a tracked slot, an argument register live across a
//! helper), it falls back to marking every scalar of the chain precise, as the kernel does.

use vm_core::isa::{AluOp, AtomicOp, CallTarget, Insn, Operand};

use crate::check::Walker;
use crate::liveness::RegMask;
use crate::state::{MAX_CALL_FRAMES, VerifierState};

/// One executed instruction of a path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegEntry {
    /// The instruction.
    pub pc: u32,
    /// Frame and slot of its fixed-offset stack access, if any.
    pub stack: Option<(u8, u8)>,
    /// At an undecided conditional jump: the scalars linked to its operands, which the jump
    /// refined together.
    pub linked: LinkedSet,
}

/// The scalars an undecided conditional jump refined together (its operands and every
/// scalar sharing their link id, the kernel's `linked_regs` history record).
///
/// Why: the bounds of each came from the comparison of one of them, so a value that must be
/// precise below the jump makes the whole set precise above it. Linux 6.18 records this set
/// only at such jumps and caps it at [`LinkedSet::MAX`] members (a scalar beyond the cap
/// loses its link); backtracking then follows exactly the recorded set. Packed in one `u64`
/// (a 3-bit count, then 10 bits per member: register or slot number, a register flag, the
/// frame) so that segment entries stay small and copyable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkedSet(u64);

impl LinkedSet {
    /// Most members one jump records.
    pub const MAX: usize = 6;

    /// Number of members.
    pub fn len(self) -> usize {
        (self.0 & 0b111) as usize
    }

    /// Whether nothing was recorded.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Adds register (`is_reg`) or stack slot `idx` of frame `frame`; `false` when the set is
    /// full or the member cannot be encoded (the caller then unlinks it, as the kernel does).
    pub fn push(&mut self, frame: usize, is_reg: bool, idx: usize) -> bool {
        let n = self.len();
        if n >= Self::MAX || frame >= MAX_CALL_FRAMES || idx >= 64 {
            return false;
        }
        let member = (idx as u64) | (u64::from(is_reg) << 6) | ((frame as u64) << 7);
        self.0 = ((self.0 & !0b111) | (member << (3 + 10 * n))) | (n as u64 + 1);
        true
    }

    /// The members as (frame, is a register, register or slot number).
    pub(crate) fn members(self) -> impl Iterator<Item = (usize, bool, usize)> {
        (0..self.len()).map(move |i| {
            let m = (self.0 >> (3 + 10 * i)) & 0x3ff;
            ((m >> 7) as usize, m & (1 << 6) != 0, (m & 0x3f) as usize)
        })
    }
}

/// What is being tracked: per frame, a register mask and a stack-slot mask (fixed arrays:
/// one is built at every decided branch and every pruning, so it must not allocate).
#[derive(Debug, Clone, Default)]
pub(crate) struct Backtrack {
    frame: usize,
    regs: [u16; MAX_CALL_FRAMES],
    slots: [u64; MAX_CALL_FRAMES],
}

/// Backtracking hit something it cannot follow.
struct Unsupported;

impl Backtrack {
    /// Tracking nothing yet, positioned in frame `frame`.
    pub fn new(frame: usize) -> Backtrack {
        Backtrack {
            frame,
            regs: [0; MAX_CALL_FRAMES],
            slots: [0; MAX_CALL_FRAMES],
        }
    }

    /// Track register `r` of frame `f`.
    pub fn set_reg(&mut self, f: usize, r: u8) {
        if let Some(m) = self.regs.get_mut(f) {
            *m |= 1 << r;
        }
    }

    /// Track stack slot `spi` of frame `f`; slots beyond 64 cannot be tracked.
    pub fn set_slot(&mut self, f: usize, spi: usize) -> bool {
        if spi >= 64 {
            return false;
        }
        match self.slots.get_mut(f) {
            Some(m) => {
                *m |= 1 << spi;
                true
            }
            None => false,
        }
    }

    /// The tracked registers and slots of the current frame, as the log lists them
    /// (`r0,r4` and `-8,-16`).
    fn describe(&self) -> (String, String) {
        let f = self.frame;
        let regs = self.regs.get(f).copied().unwrap_or(0);
        let slots = self.slots.get(f).copied().unwrap_or(0);
        let r: Vec<String> = (0..11)
            .filter(|i| regs & (1 << i) != 0)
            .map(|i| format!("r{i}"))
            .collect();
        let s: Vec<String> = (0..64)
            .filter(|i| slots & (1u64 << i) != 0)
            .map(|i| format!("{}", -8 * (i + 1)))
            .collect();
        (r.join(","), s.join(","))
    }

    fn is_empty(&self) -> bool {
        self.regs.iter().all(|m| *m == 0) && self.slots.iter().all(|m| *m == 0)
    }

    fn reg(&self, r: u8) -> bool {
        self.regs.get(self.frame).is_some_and(|m| m & (1 << r) != 0)
    }

    fn set(&mut self, r: u8) {
        let f = self.frame;
        self.set_reg(f, r);
    }

    fn clear(&mut self, r: u8) {
        if let Some(m) = self.regs.get_mut(self.frame) {
            *m &= !(1 << r);
        }
    }

    fn slot(&self, f: u8, spi: u8) -> bool {
        self.slots
            .get(usize::from(f))
            .is_some_and(|m| m & (1 << spi) != 0)
    }

    fn clear_slot(&mut self, f: u8, spi: u8) {
        if let Some(m) = self.slots.get_mut(usize::from(f)) {
            *m &= !(1 << spi);
        }
    }

    /// If any member of `set` is tracked, tracks them all.
    fn sync_linked(&mut self, set: LinkedSet) {
        if set.is_empty() {
            return;
        }
        let tracked = |bt: &Self, (f, is_reg, i): (usize, bool, usize)| {
            if is_reg {
                bt.regs.get(f).is_some_and(|m| m & (1 << i) != 0)
            } else {
                bt.slots.get(f).is_some_and(|m| m & (1u64 << i) != 0)
            }
        };
        if !set.members().any(|m| tracked(self, m)) {
            return;
        }
        for (f, is_reg, i) in set.members() {
            if is_reg {
                self.set_reg(f, i as u8);
            } else {
                self.set_slot(f, i);
            }
        }
    }

    /// Steps backwards over one executed instruction. The linked set recorded there is
    /// synchronised before and after, as the kernel does: before, so that the instruction
    /// sees every linked scalar tracked below it; after, for what the instruction itself
    /// added (both operands of a register comparison).
    fn step(
        &mut self,
        insn: &Insn,
        call_target: Option<usize>,
        e: &SegEntry,
    ) -> Result<(), Unsupported> {
        self.sync_linked(e.linked);
        self.step_insn(insn, call_target, e)?;
        self.sync_linked(e.linked);
        Ok(())
    }

    fn step_insn(
        &mut self,
        insn: &Insn,
        call_target: Option<usize>,
        e: &SegEntry,
    ) -> Result<(), Unsupported> {
        match *insn {
            Insn::Alu { op, dst, src, .. } => match (op, src) {
                (AluOp::Mov | AluOp::MovSx(_), Operand::Reg(s)) => {
                    if self.reg(dst) {
                        self.clear(dst);
                        self.set(s);
                    }
                }
                (AluOp::Mov | AluOp::MovSx(_), Operand::Imm(_)) => self.clear(dst),
                (_, Operand::Reg(s)) => {
                    if self.reg(dst) {
                        self.set(s);
                    }
                }
                (_, Operand::Imm(_)) => {}
            },
            Insn::Neg { .. } | Insn::Endian { .. } | Insn::Ja { .. } | Insn::LdImm64Tail => {}
            Insn::Load { dst, .. } => {
                if self.reg(dst) {
                    self.clear(dst);
                    if let Some((f, spi)) = e.stack
                        && !self.set_slot(usize::from(f), usize::from(spi))
                    {
                        return Err(Unsupported);
                    }
                }
            }
            Insn::Store { src, .. } => {
                if let Some((f, spi)) = e.stack
                    && self.slot(f, spi)
                {
                    self.clear_slot(f, spi);
                    if let Operand::Reg(s) = src {
                        self.set(s);
                    }
                }
            }
            Insn::Atomic { op, fetch, src, .. } => {
                let load = if op == AtomicOp::CmpXchg {
                    Some(0)
                } else if fetch {
                    Some(src)
                } else {
                    None
                };
                let stack_tracked = e.stack.is_some_and(|(f, spi)| self.slot(f, spi));
                let load_tracked = load.is_some_and(|r| self.reg(r));
                if stack_tracked || (load_tracked && e.stack.is_some()) {
                    return Err(Unsupported);
                }
                if let Some(r) = load {
                    self.clear(r);
                }
            }
            Insn::LdImm64 { dst, .. } => self.clear(dst),
            // Linux 6.18 does not follow precision through the legacy packet loads: a
            // tracked R0 (their result) gives up (every scalar becomes precise); any other
            // tracked register passes through untouched.
            Insn::LdAbs { .. } | Insn::LdInd { .. } => {
                if self.regs.get(self.frame).is_some_and(|m| m & 1 != 0) {
                    self.clear(0);
                    return Err(Unsupported);
                }
            }
            Insn::Jmp { dst, src, .. } => {
                if let Operand::Reg(s) = src
                    && (self.reg(dst) || self.reg(s))
                {
                    self.set(dst);
                    self.set(s);
                }
            }
            Insn::Call(CallTarget::Helper(_))
            | Insn::CallX { .. }
            | Insn::Call(CallTarget::Kfunc(_)) => {
                if self
                    .regs
                    .get(self.frame)
                    .is_some_and(|m| m & 0b11_1110 != 0)
                {
                    return Err(Unsupported);
                }
                self.clear(0);
            }
            Insn::Call(CallTarget::Local(_)) => {
                // Going back from the callee's first instruction into the caller: the
                // callee's arguments are the caller's R1-R5; nothing else of the callee can
                // be live at its entry.
                let _ = call_target;
                let callee = self.frame;
                if callee == 0 || callee >= MAX_CALL_FRAMES {
                    return Err(Unsupported);
                }
                let m = self.regs[callee];
                if m & !0b11_1110 != 0 || self.slots[callee] != 0 {
                    return Err(Unsupported);
                }
                self.regs[callee] = 0;
                self.frame = callee - 1;
                self.regs[self.frame] |= m;
            }
            Insn::Exit => {
                // Going back from the return site into the callee's exit: the caller's R0
                // came from the callee's R0.
                let caller = self.frame;
                let r0 = self.reg(0);
                self.clear(0);
                if caller + 1 >= MAX_CALL_FRAMES {
                    return Err(Unsupported);
                }
                self.frame = caller + 1;
                if r0 {
                    self.set(0);
                }
            }
        }
        Ok(())
    }
}

/// Marks the tracked registers/slots precise in `st`; what was already precise (its chain was
/// handled before) or is not a scalar stops being tracked.
fn apply(st: &mut VerifierState, bt: &mut Backtrack) {
    for f in 0..MAX_CALL_FRAMES {
        if bt.regs[f] == 0 && bt.slots[f] == 0 {
            continue;
        }
        let Some(frame) = st.frames.get_mut(f) else {
            bt.regs[f] = 0;
            bt.slots[f] = 0;
            continue;
        };
        let mut regs = bt.regs[f];
        while regs != 0 {
            let r = regs.trailing_zeros() as usize;
            regs &= regs - 1;
            let Some(reg) = frame.regs.get_mut(r) else {
                bt.regs[f] &= !(1 << r);
                continue;
            };
            if !reg.is_scalar() || reg.precise {
                bt.regs[f] &= !(1 << r);
            } else {
                reg.precise = true;
            }
        }
        let mut slots = bt.slots[f];
        while slots != 0 {
            let spi = slots.trailing_zeros() as usize;
            slots &= slots - 1;
            if !frame.stack.mark_spill_precise(spi) {
                bt.slots[f] &= !(1 << spi);
            }
        }
    }
}

/// Every scalar precise (the fallback).
fn mark_all_precise(st: &mut VerifierState, mut log: impl FnMut(String)) {
    for (i, f) in st.frames.iter_mut().enumerate() {
        for (j, r) in f.regs.iter_mut().take(10).enumerate() {
            if r.is_scalar() && !r.precise {
                r.precise = true;
                log(format!(
                    "force_precise: frame{i}: forcing r{j} to be precise"
                ));
            }
        }
        for j in 0..f.stack.len() {
            if f.stack.mark_spill_precise(j) {
                log(format!(
                    "force_precise: frame{i}: forcing fp{} to be precise",
                    -8 * (j as i64 + 1)
                ));
            }
        }
    }
}

/// Every scalar imprecise: a new segment starts without inherited marks.
pub(crate) fn mark_all_imprecise(st: &mut VerifierState) {
    for f in &mut st.frames {
        for r in &mut f.regs {
            r.precise = false;
        }
        f.stack.set_spills_precise(false);
    }
}

impl Walker<'_> {
    /// Register `r` of the current frame is used precisely here.
    pub(crate) fn mark_precise(&mut self, r: u8) {
        if !self.st.reg(r).is_scalar() {
            return;
        }
        let f = self.st.curframe();
        let mut bt = Backtrack::new(f);
        bt.set_reg(f, r);
        self.mark_chain_precision(bt);
    }

    /// Backtracks `bt` (positioned before the current instruction) through the current
    /// segment and every stored segment before it. At level 2 the log shows each step in
    /// the kernel's `mark_precise:` format.
    pub(crate) fn mark_chain_precision(&mut self, mut bt: Backtrack) {
        // Like the kernel, the current state itself is not marked: marks live in stored
        // states, where pruning reads them.
        if bt.is_empty() {
            return;
        }
        let verbose = self.log.verbose();
        let first = self.seg.first().map_or(self.pc, |e| e.pc as usize);
        if verbose {
            self.log.line(&format!(
                "mark_precise: frame{}: last_idx {} first_idx {first} subseq_idx -1 ",
                bt.frame, self.pc
            ));
        }
        // The current segment, newest first.
        for i in (0..self.seg.len()).rev() {
            let e = self.seg[i];
            if verbose {
                self.log_backtrack_step(&bt, &e);
            }
            if self.backtrack_one(&mut bt, &e).is_err() {
                self.precise_fallback();
                return;
            }
            if bt.is_empty() {
                return;
            }
        }
        let mut subseq = first;
        let mut parent = self.parent;
        while let Some(p) = parent {
            if let Some(st) = self.explored.state_mut(p) {
                apply(st, &mut bt);
            }
            if verbose {
                let (regs, stack) = bt.describe();
                let state = self
                    .explored
                    .state_mut(p)
                    .map(|st| crate::log::fmt_state(st, self.maps))
                    .unwrap_or_default();
                self.log.line(&format!(
                    "mark_precise: frame{}: parent state regs={regs} stack={stack}: {state}",
                    bt.frame
                ));
            }
            if bt.is_empty() {
                return;
            }
            let seg = self.explored.segment(p);
            let n = seg.len();
            if verbose && let (Some(f), Some(l)) = (seg.first(), seg.last()) {
                let line = format!(
                    "mark_precise: frame{}: last_idx {} first_idx {} subseq_idx {subseq} ",
                    bt.frame, l.pc, f.pc
                );
                subseq = f.pc as usize;
                self.log.line(&line);
            }
            for i in (0..n).rev() {
                let e = self.explored.segment(p)[i];
                if verbose {
                    self.log_backtrack_step(&bt, &e);
                }
                if self.backtrack_one(&mut bt, &e).is_err() {
                    self.precise_fallback();
                    return;
                }
                if bt.is_empty() {
                    return;
                }
            }
            parent = self.explored.parent_of(p);
        }
    }

    fn log_backtrack_step(&mut self, bt: &Backtrack, e: &SegEntry) {
        let pc = e.pc as usize;
        let (regs, stack) = bt.describe();
        let text = match self.code.insn(pc) {
            Some(insn) => crate::log::insn_text(pc, self.code.opcodes[pc], insn),
            None => format!("{pc}: <invalid>"),
        };
        self.log.line(&format!(
            "mark_precise: frame{}: regs={regs} stack={stack} before {text}",
            bt.frame
        ));
    }

    fn backtrack_one(&self, bt: &mut Backtrack, e: &SegEntry) -> Result<(), Unsupported> {
        let Some(insn) = self.code.insn(e.pc as usize) else {
            return Err(Unsupported);
        };
        bt.step(insn, None, e)
    }

    /// Marks every scalar precise in the current state and every stored state of its chain.
    fn precise_fallback(&mut self) {
        if self.log.verbose() {
            self.log
                .line("mark_precise: frame0: falling back to forcing all scalars precise");
        }
        // Like the kernel's `mark_all_scalars_precise`: the stored states of the path, not
        // the current one (its marks are not needed).
        let verbose = self.log.verbose();
        let mut lines = Vec::new();
        let mut parent = self.parent;
        while let Some(p) = parent {
            if let Some(st) = self.explored.state_mut(p) {
                mark_all_precise(st, |l| {
                    if verbose {
                        lines.push(l);
                    }
                });
            }
            parent = self.explored.parent_of(p);
        }
        for l in lines {
            self.log.line(&l);
        }
    }

    /// After pruning against a stored state: what its continuation needed precise must be
    /// precise on the current path too (the kernel's `propagate_precision`).
    pub(crate) fn propagate_precision(&mut self, bt: Option<Backtrack>) {
        match bt {
            Some(bt) => self.mark_chain_precision(bt),
            None => self.precise_fallback(),
        }
    }
}

/// The precise scalars of `old`, as a backtracking request positioned in frame `frame`
/// (`None` if some slot cannot be tracked). With `alive` (per frame: the registers and the
/// stack slots still compared, for a cleaned state), only those count: the kernel's stored
/// state has had the others cleared, so their marks (left by a fallback) do not spread.
pub(crate) fn precise_in(
    old: &VerifierState,
    frame: usize,
    alive: Option<(&[RegMask; MAX_CALL_FRAMES], &[u64; MAX_CALL_FRAMES])>,
) -> Option<Backtrack> {
    let f = frame;
    let mut bt = Backtrack::new(f);
    for (fi, frame) in old.frames.iter().enumerate() {
        let (regs, slots) = match alive {
            Some((r, s)) => (r[fi], s[fi]),
            None => (RegMask::MAX, u64::MAX),
        };
        for (r, reg) in frame.regs.iter().enumerate() {
            if reg.is_scalar() && reg.precise && (regs & (1 << r) != 0 || r == 10) {
                bt.set_reg(fi, r as u8);
            }
        }
        for (spi, slot) in frame.stack.slots().iter().enumerate() {
            if slot.is_spilled()
                && slot.spilled.is_scalar()
                && slot.spilled.precise
                && (spi >= 64 || slots & (1 << spi) != 0)
                && !bt.set_slot(fi, spi)
            {
                return None;
            }
        }
    }
    Some(bt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linked_set_keeps_six_members_in_order() {
        let mut set = LinkedSet::default();
        assert!(set.is_empty());
        assert!(set.push(1, true, 9));
        assert!(set.push(0, false, 63));
        assert!(!set.push(0, false, 64), "slot beyond the 64 trackable ones");
        for r in 0..4 {
            assert!(set.push(0, true, r));
        }
        assert!(!set.push(0, true, 5), "a seventh member does not fit");
        let m: Vec<_> = set.members().collect();
        assert_eq!(
            m,
            vec![
                (1, true, 9),
                (0, false, 63),
                (0, true, 0),
                (0, true, 1),
                (0, true, 2),
                (0, true, 3)
            ]
        );
    }

    #[test]
    fn tracking_one_linked_member_tracks_all() {
        let mut set = LinkedSet::default();
        set.push(0, true, 6);
        set.push(0, true, 7);
        set.push(0, false, 2);
        let e = SegEntry {
            pc: 0,
            stack: None,
            linked: set,
        };
        let jump = Insn::Ja {
            off: 0,
            long: false,
        };
        let mut bt = Backtrack::new(0);
        assert!(bt.step(&jump, None, &e).is_ok());
        assert!(bt.is_empty(), "nothing tracked: nothing added");
        bt.set_reg(0, 7);
        assert!(bt.step(&jump, None, &e).is_ok());
        assert!(bt.reg(6) && bt.reg(7) && bt.slot(0, 2));
    }
}
