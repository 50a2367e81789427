//! Arithmetic: moves, binary operations, negation, byte swaps, 64-bit immediates, and the
//! rules for arithmetic on pointers (the kernel's `check_alu_op`, `adjust_reg_min_max_vals`,
//! `adjust_ptr_min_max_vals`).
//!
//! Scalars go through [`crate::bounds::alu`]. Pointers allow only `ptr += scalar`,
//! `ptr -= scalar` (and `ptr - ptr` giving a number when privileged): a constant moves the
//! fixed offset, anything else becomes the pointer's variable offset, which later memory
//! checks bound. Packet pointers with a new variable part get a new id and lose their
//! proven range, because the range was proven for the old position.

use vm_core::isa::{AluOp, ByteOrder, LdImm64, Operand, Width};

use super::Walker;
use crate::bounds::{ScalarBounds, alu as balu};
use crate::code::MAX_VAR_OFF;
use crate::error::VResult;
use crate::reg::{LINK_DELTA, LINK_DELTA32, RegState, RegType};
use crate::tnum::Tnum;

/// The kernel's `bpf_alu_string`, for messages.
fn op_str(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div | AluOp::SDiv => "/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Mod | AluOp::SMod => "%=",
        AluOp::Xor => "^=",
        AluOp::Mov | AluOp::MovSx(_) => "=",
        AluOp::Arsh => "s>>=",
    }
}

fn imm_value(imm: i32, width: Width) -> u64 {
    match width {
        Width::W64 => imm as i64 as u64,
        Width::W32 => u64::from(imm as u32),
    }
}

impl Walker<'_> {
    pub(super) fn check_alu(
        &mut self,
        op: AluOp,
        width: Width,
        dst: u8,
        src: Operand,
    ) -> VResult<()> {
        let w64 = width == Width::W64;
        if matches!(op, AluOp::Mov | AluOp::MovSx(_)) {
            return self.check_mov(op, width, dst, src);
        }
        let src_reg = match src {
            Operand::Reg(s) => self.read_reg(s, w64)?,
            Operand::Imm(i) => RegState::constant(imm_value(i, width)),
        };
        let dst_reg = self.read_reg(dst, w64)?;
        if matches!(op, AluOp::Div | AluOp::Mod | AluOp::SDiv | AluOp::SMod)
            && src == Operand::Imm(0)
        {
            return Err(self.err_einval("div by zero"));
        }
        if matches!(op, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh)
            && let Operand::Imm(i) = src
        {
            let bits = if w64 { 64 } else { 32 };
            if i < 0 || i >= bits {
                return Err(self.err_einval(format!("invalid shift {i}")));
            }
        }
        self.check_dst(dst)?;
        let result = if dst_reg.is_pointer() || src_reg.is_pointer() {
            // The scalar operand becomes part of a pointer: its value matters.
            if dst_reg.is_pointer()
                && let Operand::Reg(s) = src
            {
                self.mark_precise(s);
            } else if src_reg.is_pointer() {
                self.mark_precise(dst);
            }
            self.pointer_alu(op, width, dst, &dst_reg, &src_reg)?
        } else if !kernel_computes_range(op, width, &src_reg) {
            // Linux (through 6.18) gives up on division and on shifts by anything but an
            // in-range constant: the result is unknown in all 64 bits, not even
            // zero-extended for ALU32. Doing better would accept programs it refuses.
            RegState::unknown_scalar()
        } else {
            let mut dst_reg = dst_reg;
            if matches!(op, AluOp::And | AluOp::Or) && src_reg.var.var_off.is_const() {
                self.fork_sign_mask(dst, &mut dst_reg)?;
            }
            let mut r = RegState::scalar(balu::alu(op, width, &dst_reg.var, &src_reg.var));
            if self.privileged()
                && let Some((flag, delta)) = link_delta_after(op, width, &dst_reg, &src_reg)
            {
                // Still a copy of the registers sharing its id, now ahead by a constant.
                (r.id, r.off) = (dst_reg.id | flag, delta);
            }
            r
        };
        self.write_reg(dst, result, w64);
        Ok(())
    }

    /// Linux 6.18's `maybe_fork_scalars`: `x s>>= 63` (or `w s>>= 31`) followed by an AND or
    /// OR with a constant is how LLVM selects between 0 and a constant, and one range cannot
    /// say "0 or K". When `dst` is exactly the range [-1, 0] (64-bit first, else its low 32
    /// bits), the walk splits: this path goes on with `dst` = -1, and a pushed path re-executes
    /// this instruction with `dst` = 0. Nothing becomes precise. A 32-bit split sets only the
    /// low half (known bits and 32-bit ranges), as the kernel's `__mark_reg32_known` does.
    fn fork_sign_mask(&mut self, dst: u8, dst_reg: &mut RegState) -> VResult<()> {
        let v = dst_reg.var;
        let alu32 = if v.smin == -1 && v.smax == 0 {
            false
        } else if v.s32_min == -1 && v.s32_max == 0 {
            true
        } else {
            return Ok(());
        };
        let set = |r: &mut RegState, value: u64| {
            if alu32 {
                let high = r.var.var_off.value() & !0xffff_ffff;
                let high_mask = r.var.var_off.mask() & !0xffff_ffff;
                r.var.var_off = Tnum::new(high | (value & 0xffff_ffff), high_mask);
                (r.var.s32_min, r.var.s32_max) = (value as i32, value as i32);
                (r.var.u32_min, r.var.u32_max) = (value as u32, value as u32);
            } else {
                let precise = r.precise;
                r.mark_known(value);
                r.precise = precise;
            }
        };
        let mut other = self.copy_state();
        set(other.reg_mut(dst), 0);
        set(dst_reg, u64::MAX);
        *self.st.reg_mut(dst) = *dst_reg;
        self.push_pending(self.pc, other, false)
    }

    fn check_mov(&mut self, op: AluOp, width: Width, dst: u8, src: Operand) -> VResult<()> {
        let w64 = width == Width::W64;
        let val = match src {
            Operand::Imm(i) => {
                self.check_dst(dst)?;
                RegState::constant(imm_value(i, width))
            }
            Operand::Reg(s) => {
                let sreg = self.read_reg(s, w64)?;
                self.check_dst(dst)?;
                match (op, width) {
                    (AluOp::Mov, Width::W64) => {
                        // Link the copies so a comparison on one bounds both. A 64-bit copy
                        // keeps the source's sub-register status.
                        let v = self.link_for_copy(s);
                        self.touch_reg(dst);
                        *self.st.reg_mut(dst) = v;
                        self.record_dst(dst);
                        return Ok(());
                    }
                    (AluOp::Mov, Width::W32) => {
                        if sreg.is_pointer() {
                            if self.is_leak(&sreg) {
                                return Err(
                                    self.err_eacces(format!("R{s} partial copy of pointer"))
                                );
                            }
                            RegState::unknown_scalar()
                                .with_var(ScalarBounds::from_urange(0, u64::from(u32::MAX)))
                        } else {
                            let mut v = RegState::scalar(balu::mov(Width::W32, &sreg.var));
                            if sreg.var.umax <= u64::from(u32::MAX) && !sreg.var.is_const() {
                                v.id = self.link_for_copy(s).id;
                            }
                            v
                        }
                    }
                    (AluOp::MovSx(bits), _) => {
                        if sreg.is_pointer() {
                            if self.is_leak(&sreg) {
                                return Err(
                                    self.err_eacces(format!("R{s} sign-extension part of pointer"))
                                );
                            }
                            RegState::unknown_scalar()
                        } else {
                            RegState::scalar(balu::movsx(width, bits, &sreg.var))
                        }
                    }
                    _ => RegState::scalar(balu::alu(op, width, &sreg.var, &sreg.var)),
                }
            }
        };
        let val = if w64 { val } else { zext(val) };
        self.write_reg(dst, val, w64);
        Ok(())
    }

    fn record_dst(&mut self, dst: u8) {
        let r = *self.st.reg(dst);
        if r.is_scalar() {
            let f = &mut self.facts[self.pc];
            f.dst = Some(match f.dst {
                Some(b) => b.union(&r.var),
                None => r.var,
            });
        }
    }

    pub(super) fn check_neg(&mut self, width: Width, dst: u8) -> VResult<()> {
        let w64 = width == Width::W64;
        let r = self.read_reg(dst, w64)?;
        if self.is_leak(&r) {
            return Err(self.err_eacces(format!("R{dst} pointer arithmetic prohibited")));
        }
        self.check_dst(dst)?;
        let v = if r.is_scalar() {
            RegState::scalar(balu::neg(width, &r.var))
        } else {
            zext_if(RegState::unknown_scalar(), w64)
        };
        self.write_reg(dst, v, w64);
        Ok(())
    }

    pub(super) fn check_endian(&mut self, order: ByteOrder, bits: u8, dst: u8) -> VResult<()> {
        // The kernel's is_reg64: ALU64 bswap16/32 and ALU le/be16/32 are 32-bit definitions.
        let w64 = bits == 64;
        let r = self.read_reg(dst, w64)?;
        if self.is_leak(&r) {
            return Err(self.err_eacces(format!("R{dst} pointer arithmetic prohibited")));
        }
        self.check_dst(dst)?;
        let v = if r.is_scalar() {
            RegState::scalar(balu::endian(order, bits, &r.var))
        } else {
            RegState::unknown_scalar()
        };
        self.write_reg(dst, v, w64);
        Ok(())
    }

    pub(super) fn check_ld_imm64(&mut self, dst: u8, value: LdImm64) -> VResult<()> {
        self.check_dst(dst)?;
        let v = match value {
            LdImm64::Imm(v) => RegState::constant(v),
            LdImm64::MapFd(fd) => RegState::pointer(RegType::MapPtr { map: fd as u32 }, 0),
            LdImm64::MapValue { fd, off } => RegState::pointer(
                RegType::MapValue {
                    map: fd as u32,
                    maybe_null: false,
                },
                off as i32,
            ),
            LdImm64::Func(rel) => {
                let start = super::jump_target(self.pc, i64::from(rel))?;
                RegState::pointer(
                    RegType::Func {
                        start: start as u32,
                    },
                    0,
                )
            }
            LdImm64::BtfId { .. } | LdImm64::MapIdx(_) | LdImm64::MapIdxValue { .. } => {
                return Err(self.err_einval("unsupported bpf_ld_imm64 pseudo source"));
            }
        };
        self.write_reg(dst, v, true);
        Ok(())
    }

    /// ALU with at least one pointer operand.
    fn pointer_alu(
        &mut self,
        op: AluOp,
        width: Width,
        dst: u8,
        dst_reg: &RegState,
        src_reg: &RegState,
    ) -> VResult<RegState> {
        if dst_reg.is_pointer() && src_reg.is_pointer() {
            if op == AluOp::Sub && self.privileged() {
                // Not zero-extended even for ALU32: the kernel returns before its zext step.
                return Ok(RegState::unknown_scalar());
            }
            return Err(
                self.err_eacces(format!("R{dst} pointer {} pointer prohibited", op_str(op)))
            );
        }
        let (ptr, off, scalar_is_dst) = if dst_reg.is_pointer() {
            (dst_reg, src_reg, false)
        } else {
            (src_reg, dst_reg, true)
        };
        self.adjust_ptr(op, width, dst, ptr, off, scalar_is_dst)
    }

    /// The kernel's `check_reg_sane_offset`.
    fn sane_offset(&self, reg: &RegState, ptr_ty: RegType) -> VResult<()> {
        let name = ptr_ty;
        let known = reg.var.var_off.is_const();
        let val = reg.var.var_off.value() as i64;
        if known && (val >= MAX_VAR_OFF || val <= -MAX_VAR_OFF) {
            return Err(self.err_einval(format!(
                "math between {name} pointer and {val} is not allowed"
            )));
        }
        if i64::from(reg.off) >= MAX_VAR_OFF || i64::from(reg.off) <= -MAX_VAR_OFF {
            return Err(
                self.err_einval(format!("{name} pointer offset {} is not allowed", reg.off))
            );
        }
        if reg.var.smin == i64::MIN {
            return Err(self.err_einval(format!(
                "math between {name} pointer and register with unbounded min value is not allowed"
            )));
        }
        if reg.var.smin >= MAX_VAR_OFF || reg.var.smin <= -MAX_VAR_OFF {
            return Err(self.err_einval(format!(
                "value {} makes {name} pointer be out of bounds",
                reg.var.smin
            )));
        }
        Ok(())
    }

    /// `ptr op scalar` (or `scalar op ptr` when `scalar_is_dst`): the kernel's
    /// `adjust_ptr_min_max_vals`.
    fn adjust_ptr(
        &mut self,
        op: AluOp,
        width: Width,
        dst: u8,
        ptr: &RegState,
        off: &RegState,
        scalar_is_dst: bool,
    ) -> VResult<RegState> {
        if width == Width::W32 {
            if op == AluOp::Sub && self.privileged() {
                return Ok(RegState::unknown_scalar());
            }
            return Err(self.err_eacces(format!("R{dst} 32-bit pointer arithmetic prohibited")));
        }
        let name = ptr.ty;
        if ptr.ty.maybe_null() {
            return Err(self.err_eacces(format!(
                "R{dst} pointer arithmetic on {name} prohibited, null-check it first"
            )));
        }
        let known = off.var.var_off.is_const();
        let kval = off.var.var_off.value() as i64;
        match ptr.ty {
            RegType::Ctx
            | RegType::MapValue { .. }
            | RegType::MapKey { .. }
            | RegType::Stack { .. }
            | RegType::PacketMeta
            | RegType::Packet
            | RegType::Mem { .. }
            | RegType::Func { .. } => {}
            RegType::MapPtr { .. } if known && kval == 0 && op == AluOp::Add => {}
            _ => {
                return Err(
                    self.err_eacces(format!("R{dst} pointer arithmetic on {name} prohibited"))
                );
            }
        }
        self.sane_offset(off, ptr.ty)?;
        self.sane_offset(ptr, ptr.ty)?;
        let v = &off.var;
        if v.is_empty() || (known && (v.smin != v.smax || v.umin != v.umax)) {
            // Bounds contradicted by a dead branch: taint rather than trust.
            return Ok(RegState::unknown_scalar());
        }
        let mut out = *ptr;
        out.subreg_def = 0;
        match op {
            AluOp::Add => {
                let sum = i64::from(ptr.off).wrapping_add(kval);
                if known && i64::from(sum as i32) == sum {
                    out.off = sum as i32;
                } else {
                    out.var = balu::alu(AluOp::Add, Width::W64, &ptr.var, &off.var);
                    if ptr.ty.is_pkt() {
                        out.id = self.new_id();
                        out.range = 0;
                    }
                }
            }
            AluOp::Sub => {
                if scalar_is_dst {
                    return Err(
                        self.err_eacces(format!("R{dst} tried to subtract pointer from scalar"))
                    );
                }
                if matches!(ptr.ty, RegType::Stack { .. }) {
                    return Err(self
                        .err_eacces(format!("R{dst} subtraction from stack pointer prohibited")));
                }
                let diff = i64::from(ptr.off).wrapping_sub(kval);
                if known && i64::from(diff as i32) == diff {
                    out.off = diff as i32;
                } else {
                    out.var = balu::alu(AluOp::Sub, Width::W64, &ptr.var, &off.var);
                    if ptr.ty.is_pkt() {
                        out.id = self.new_id();
                        if v.smin < 0 {
                            out.range = 0;
                        }
                    }
                }
            }
            AluOp::And | AluOp::Or | AluOp::Xor => {
                return Err(self.err_eacces(format!(
                    "R{dst} bitwise operator {} on pointer prohibited",
                    op_str(op)
                )));
            }
            _ => {
                return Err(self.err_eacces(format!(
                    "R{dst} pointer arithmetic with {} operator prohibited",
                    op_str(op)
                )));
            }
        }
        self.sane_offset(&out, ptr.ty)?;
        Ok(out)
    }
}

/// The link flag and delta a linked scalar `dst` keeps after `dst op= src` (Linux 6.18's
/// offset links, which only a privileged loader gets): an add or subtract of a constant
/// whose delta fits in an `i32`, on a register linked without a delta yet (a second constant
/// would need a second delta). A 64-bit op links with [`LINK_DELTA`]. A 32-bit op links with
/// [`LINK_DELTA32`] only when `dst` fitted 32 bits before it: then `dst` is exactly the
/// zero-extended 32-bit sum of its base and the delta. Anything else breaks the link.
fn link_delta_after(op: AluOp, width: Width, dst: &RegState, src: &RegState) -> Option<(u32, i32)> {
    if dst.id == 0 || dst.link_delta().is_some() {
        return None;
    }
    let (flag, k) = match width {
        Width::W64 => (
            LINK_DELTA,
            i32::try_from(src.var.const_value()? as i64).ok()?,
        ),
        Width::W32 if dst.var.umax <= u64::from(u32::MAX) => {
            (LINK_DELTA32, src.var.const_value32()? as i32)
        }
        Width::W32 => return None,
    };
    let delta = match op {
        AluOp::Add => k,
        AluOp::Sub => k.checked_neg()?,
        _ => return None,
    };
    Some((flag, delta))
}

/// The kernel's `is_safe_to_compute_dst_reg_range`.
fn kernel_computes_range(op: AluOp, width: Width, src: &RegState) -> bool {
    let (konst, bits) = match width {
        Width::W64 => (src.var.const_value(), 64),
        Width::W32 => (src.var.const_value32().map(u64::from), 32),
    };
    match op {
        AluOp::Add | AluOp::Sub | AluOp::And | AluOp::Or | AluOp::Xor | AluOp::Mul => true,
        AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
            konst.is_some_and(|k| k < bits) && src.var.umax < bits
        }
        _ => false,
    }
}

/// The zero-extension an ALU32 write applies.
fn zext(mut r: RegState) -> RegState {
    if r.is_scalar() {
        r.var = r.var.zero_extend_32();
    }
    r
}

fn zext_if(r: RegState, w64: bool) -> RegState {
    if w64 { r } else { zext(r) }
}

impl RegState {
    /// The same register with another abstract value.
    pub fn with_var(mut self, var: ScalarBounds) -> RegState {
        self.var = var;
        self
    }
}
