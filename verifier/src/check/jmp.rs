//! Conditional jumps (the kernel's `check_cond_jmp_op`): decide the outcome when the
//! operands allow only one, otherwise queue the taken edge and continue on the fall-through,
//! narrowing what each edge learns:
//! - scalar comparisons narrow both operands ([`crate::bounds::branch`]) and every scalar
//!   linked to them by a copy (same id);
//! - `if ptr == 0` on a maybe-NULL pointer makes every copy (same id, any frame, spilled or
//!   not) NULL on one edge and a valid pointer on the other;
//! - comparing a packet pointer with `data_end` proves a range for every pointer derived from
//!   the same packet position (same id).

use vm_core::isa::{AluOp, JmpCond, Operand, Width};

use super::mem::MAX_PACKET_OFF;
use super::{Flow, Walker, jump_target};
use crate::bounds::ScalarBounds;
use crate::bounds::alu::alu;
use crate::bounds::branch::{branch_outcome, refine_branch};
use crate::error::VResult;
use crate::liveness::{RegMask, caller_live};
use crate::precision::LinkedSet;
use crate::reg::{AT_PKT_END, BEYOND_PKT_END, RegState, RegType};
use crate::state::VerifierState;

/// `a cond b` ⇔ `b flip(cond) a`.
fn flip(cond: JmpCond) -> JmpCond {
    match cond {
        JmpCond::Gt => JmpCond::Lt,
        JmpCond::Lt => JmpCond::Gt,
        JmpCond::Ge => JmpCond::Le,
        JmpCond::Le => JmpCond::Ge,
        JmpCond::Sgt => JmpCond::Slt,
        JmpCond::Slt => JmpCond::Sgt,
        JmpCond::Sge => JmpCond::Sle,
        JmpCond::Sle => JmpCond::Sge,
        c => c,
    }
}

/// The kernel's `is_pkt_ptr_branch_taken`: a pointer known to be at or beyond `data_end`.
fn pkt_branch_taken(dst: &RegState, src: &RegState, cond: JmpCond) -> Option<bool> {
    let (pkt, cond) = if src.ty == RegType::PacketEnd {
        (dst, cond)
    } else if dst.ty == RegType::PacketEnd {
        (src, flip(cond))
    } else {
        return None;
    };
    if pkt.range >= 0 {
        return None;
    }
    match cond {
        JmpCond::Le | JmpCond::Gt if pkt.range == BEYOND_PKT_END => Some(cond == JmpCond::Gt),
        JmpCond::Lt | JmpCond::Ge if pkt.range == BEYOND_PKT_END || pkt.range == AT_PKT_END => {
            Some(cond == JmpCond::Ge)
        }
        _ => None,
    }
}

/// The kernel's `is_branch_taken`.
fn branch_taken(dst: &RegState, src: &RegState, cond: JmpCond, width: Width) -> Option<bool> {
    if dst.ty.is_pkt_any() && src.ty.is_pkt_any() && width == Width::W64 {
        return pkt_branch_taken(dst, src, cond);
    }
    if dst.is_pointer() || src.is_pointer() {
        let (ptr, scalar, cond) = if src.is_scalar() {
            (dst, src, cond)
        } else {
            (src, dst, flip(cond))
        };
        if !scalar.is_scalar() {
            return None;
        }
        let val = match width {
            Width::W64 => scalar.var.const_value(),
            Width::W32 => scalar.var.const_value32().map(u64::from),
        }?;
        if !ptr.ty.never_null() || val != 0 {
            return None;
        }
        return match cond {
            JmpCond::Eq => Some(false),
            JmpCond::Ne => Some(true),
            _ => None,
        };
    }
    branch_outcome(cond, width, &dst.var, &src.var)
}

impl Walker<'_> {
    pub(super) fn check_cond_jmp(
        &mut self,
        cond: JmpCond,
        width: Width,
        dst: u8,
        src: Operand,
        off: i16,
    ) -> VResult<Flow> {
        let w64 = width == Width::W64;
        let dst_reg = self.read_reg(dst, w64)?;
        let src_reg = match src {
            Operand::Reg(s) => {
                let r = self.read_reg(s, w64)?;
                if !(dst_reg.ty.is_pkt_any() && r.ty.is_pkt_any()) && self.is_leak(&r) {
                    return Err(self.err_eacces(format!("R{s} pointer comparison prohibited")));
                }
                r
            }
            Operand::Imm(i) => RegState::constant(i as i64 as u64),
        };
        let target = jump_target(self.pc, i64::from(off))?;
        let fall = self.pc + 1;
        if let Some(taken) = branch_taken(&dst_reg, &src_reg, cond, width) {
            // The outcome depended on these values: pruning must respect them.
            self.mark_precise(dst);
            if let Operand::Reg(s) = src {
                self.mark_precise(s);
            }
            return Ok(Flow::Next(if taken { target } else { fall }));
        }
        // The kernel records the scalars linked to an operand (same id, any delta) in the
        // path's history before forking, so that both edges share the record: precision
        // backtracking follows the recorded set.
        let mut linked = LinkedSet::default();
        if let Operand::Reg(_) = src
            && src_reg.is_scalar()
        {
            collect_linked(
                &mut self.st,
                self.live,
                self.pc,
                src_reg.link_base(),
                &mut linked,
            );
        }
        if dst_reg.is_scalar() {
            collect_linked(
                &mut self.st,
                self.live,
                self.pc,
                dst_reg.link_base(),
                &mut linked,
            );
        }
        if linked.len() > 1 {
            self.count_hist_entry();
            self.cur_linked = linked;
        }
        let mut other = self.copy_state();
        let mut this_alive = true;
        let mut other_alive = true;
        let src_no = match src {
            Operand::Reg(s) => Some(s),
            Operand::Imm(_) => None,
        };
        if dst_reg.is_scalar() && src_reg.is_scalar() && src_no != Some(dst) {
            let r = refine_branch(cond, width, &dst_reg.var, &src_reg.var);
            match r.taken {
                Some(t) => {
                    set_scalar(&mut other, dst, t.dst, linked);
                    if let Some(s) = src_no {
                        set_scalar(&mut other, s, t.src, linked);
                    }
                }
                None => other_alive = false,
            }
            match r.not_taken {
                Some(n) => {
                    set_scalar(&mut self.st, dst, n.dst, linked);
                    if let Some(s) = src_no {
                        set_scalar(&mut self.st, s, n.src, linked);
                    }
                }
                None => this_alive = false,
            }
        }
        let null_check = w64
            && src_reg.is_null()
            && src_no.is_none()
            && matches!(cond, JmpCond::Eq | JmpCond::Ne)
            && dst_reg.ty.maybe_null();
        if null_check {
            let taken_is_null = cond == JmpCond::Eq;
            mark_ptr_or_null(&mut other, dst_reg.id, taken_is_null);
            mark_ptr_or_null(&mut self.st, dst_reg.id, !taken_is_null);
        } else if let Some(s) = src_no
            && w64
        {
            let matched = self.match_pkt_pointers(cond, dst, s, &dst_reg, &src_reg, &mut other);
            if !matched && self.is_leak(&dst_reg) {
                return Err(self.err_eacces(format!("R{dst} pointer comparison prohibited")));
            }
        } else if self.is_leak(&dst_reg) {
            return Err(self.err_eacces(format!("R{dst} pointer comparison prohibited")));
        }
        if !(this_alive && other_alive) {
            // An edge proven impossible is a decided branch too.
            self.mark_precise(dst);
            if let Some(s) = src_no {
                self.mark_precise(s);
            }
        }
        match (this_alive, other_alive) {
            (true, true) => {
                self.push_branch(target, other)?;
                Ok(Flow::Next(fall))
            }
            (true, false) => {
                self.recycle(other);
                Ok(Flow::Next(fall))
            }
            (false, true) => {
                let done = std::mem::replace(&mut self.st, other);
                self.recycle(done);
                Ok(Flow::Next(target))
            }
            (false, false) => {
                self.recycle(other);
                Ok(Flow::Done)
            }
        }
    }

    /// Packet range marking on `pkt cmp pkt_end` (`try_match_pkt_pointers`). Returns whether
    /// the comparison was one of the recognised forms.
    fn match_pkt_pointers(
        &mut self,
        cond: JmpCond,
        dst: u8,
        src: u8,
        d: &RegState,
        s: &RegState,
        other: &mut VerifierState,
    ) -> bool {
        let fwd = (d.ty == RegType::Packet && s.ty == RegType::PacketEnd)
            || (d.ty == RegType::PacketMeta && is_init_pkt(s, RegType::Packet));
        let rev = (d.ty == RegType::PacketEnd && s.ty == RegType::Packet)
            || (is_init_pkt(d, RegType::Packet) && s.ty == RegType::PacketMeta);
        if !fwd && !rev {
            return false;
        }
        // (state gets the range: true = taken edge, pointer, right-open; pkt_end marking)
        let (range_taken, pkt, open, end_taken, end_reg, beyond) = match (cond, fwd) {
            (JmpCond::Gt, true) => (false, d, false, true, dst, true),
            (JmpCond::Gt, false) => (true, s, true, false, src, false),
            (JmpCond::Lt, true) => (true, d, true, false, dst, false),
            (JmpCond::Lt, false) => (false, s, false, true, src, true),
            (JmpCond::Ge, true) => (false, d, true, true, dst, false),
            (JmpCond::Ge, false) => (true, s, false, false, src, true),
            (JmpCond::Le, true) => (true, d, false, false, dst, true),
            (JmpCond::Le, false) => (false, s, true, true, src, false),
            _ => return false,
        };
        let pkt = *pkt;
        if range_taken {
            find_good_pkt_pointers(other, &pkt, open);
        } else {
            find_good_pkt_pointers(&mut self.st, &pkt, open);
        }
        let end_state = if end_taken { other } else { &mut self.st };
        let r = end_state.reg_mut(end_reg);
        if r.ty == RegType::Packet {
            r.range = if beyond { BEYOND_PKT_END } else { AT_PKT_END };
        }
        true
    }
}

/// NULL check outcome for every register sharing `id` (`mark_ptr_or_null_regs`): NULL makes
/// them the scalar 0 (and drops the reference they would have held); non-NULL clears the flag.
fn mark_ptr_or_null(st: &mut VerifierState, id: u32, is_null: bool) {
    if id == 0 {
        return;
    }
    let mut released = None;
    st.for_each_reg_mut(|r| {
        if r.id == id && r.ty.maybe_null() {
            if is_null {
                if r.ref_obj_id == id {
                    released = Some(id);
                }
                let sub = r.subreg_def;
                *r = RegState::constant(0);
                r.subreg_def = sub;
            } else {
                r.ty = r.ty.non_null();
                r.id = 0;
            }
        }
    });
    if let Some(id) = released {
        st.refs.retain(|x| x.id != id);
    }
}

fn is_init_pkt(r: &RegState, ty: RegType) -> bool {
    r.ty == ty && r.off == 0 && r.var.var_off.is_const() && r.var.var_off.value() == 0
}

/// Every packet pointer with `pkt`'s id now has at least `pkt.off` (+1 if right-open) bytes.
fn find_good_pkt_pointers(st: &mut VerifierState, pkt: &RegState, right_open: bool) {
    if pkt.off < 0 || (pkt.off == 0 && right_open) {
        return;
    }
    if pkt.var.umax > MAX_PACKET_OFF as u64
        || pkt.var.umax.saturating_add(pkt.off as u64) > MAX_PACKET_OFF as u64
    {
        return;
    }
    let new_range = pkt.off + i32::from(right_open);
    let (ty, id) = (pkt.ty, pkt.id);
    st.for_each_reg_mut(|r| {
        if r.ty == ty && r.id == id {
            r.range = r.range.max(new_range);
        }
    });
}

/// Adds to `set` every scalar of `st` linked to `base` (the kernel's `collect_linked_regs`):
/// frames innermost first, live registers then spilled slots (Linux 6.18 skips dead
/// registers, but not slots). A scalar the set has no room for loses its link, as in Linux
/// 6.18: it is then neither refined with the others nor made precise with them.
fn collect_linked(
    st: &mut VerifierState,
    live: &[RegMask],
    pc: usize,
    base: u32,
    set: &mut LinkedSet,
) {
    if base == 0 {
        return;
    }
    let n = st.frames.len();
    for f in (0..n).rev() {
        // Registers live before the jump in the executing frame; in a caller, the callee-saved
        // registers live after its call (the kernel takes the call's live-before set, but
        // there a caller's R0-R5 are already cleared).
        let mask = if f + 1 == n {
            live.get(pc).copied().unwrap_or(0x7ff)
        } else {
            match st.frames[f + 1].callsite {
                Some(cs) => caller_live(live, cs),
                None => 0x7ff,
            }
        };
        let frame = &mut st.frames[f];
        for (r, reg) in frame.regs.iter_mut().enumerate().take(10) {
            if mask & (1 << r) == 0 {
                continue;
            }
            if reg.is_scalar() && reg.link_base() == base && !set.push(f, true, r) {
                reg.id = 0;
            }
        }
        let overflow: Vec<usize> = frame
            .stack
            .slots()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_spilled() && s.spilled.is_scalar())
            .filter(|(_, s)| s.spilled.link_base() == base)
            .filter_map(|(spi, _)| (!set.push(f, false, spi)).then_some(spi))
            .collect();
        for spi in overflow {
            frame.stack.slot_mut(spi).spilled.id = 0;
        }
    }
}

/// Writes the refined bounds of scalar register `r` and of every scalar linked to it: a
/// copy with the same delta gets the bounds as they are, one with another delta gets them
/// shifted by the difference (a register `r0 + 5` refined to [5, 20] makes `r0` [0, 15]).
///
/// When either side's delta was added in 32 bits, both are zero-extended 32-bit sums of a
/// base that fits 32 bits, so the shift is a 32-bit add, zero-extended. Shifting a 32-bit sum
/// back to its base in 64 bits would lose the base values whose sum wrapped (`w7 = w6 - 3`
/// with r7 in [0, 0xfffffffd] still allows r6 = 0); the kernel keeps them too (fixed probe
/// "the base of a 32-bit sum keeps the values whose sum wrapped").
fn set_scalar(st: &mut VerifierState, r: u8, var: ScalarBounds, linked: LinkedSet) {
    let reg = st.reg_mut(r);
    reg.var = var;
    let known = *reg;
    if known.id == 0 {
        return;
    }
    let delta = i64::from(known.link_delta().unwrap_or(0));
    let cur = st.curframe();
    let sync = |x: &mut RegState| {
        if !x.is_scalar() || x.link_base() != known.link_base() {
            return;
        }
        let shift = i64::from(x.link_delta().unwrap_or(0)) - delta;
        if shift == 0 {
            // Linux 6.18 copies the whole register here, link flag included.
            (x.var, x.id, x.off) = (var, known.id, known.off);
        } else if x.link_is_32() || known.link_is_32() {
            x.var = alu(
                AluOp::Add,
                Width::W32,
                &var,
                &ScalarBounds::constant(shift as u64),
            );
        } else {
            x.var = alu(
                AluOp::Add,
                Width::W64,
                &var,
                &ScalarBounds::constant(shift as u64),
            );
        }
    };
    // Only the recorded members: a linked scalar that is dead here was not recorded and
    // keeps its bounds, as in the kernel.
    for (f, is_reg, i) in linked.members() {
        let Some(frame) = st.frames.get_mut(f) else {
            continue;
        };
        if is_reg {
            if f == cur && i == usize::from(r) {
                continue;
            }
            if let Some(x) = frame.regs.get_mut(i) {
                sync(x);
            }
        } else if frame.stack.slots().get(i).is_some_and(|s| s.is_spilled()) {
            sync(&mut frame.stack.slot_mut(i).spilled);
        }
    }
}
