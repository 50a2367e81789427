//! Stack accesses: bounds, spills and fills, byte initialisation (the kernel's
//! `check_stack_access_within_bounds`, `check_stack_write_{fixed,var}_off`,
//! `check_stack_read_{fixed,var}_off`, `check_stack_range_initialized`).
//!
//! An aligned 8-byte store of a register *spills* it: the slot remembers the register, and an
//! aligned 8-byte load gives it back with its type and bounds. Scalars may also be spilled in
//! narrower pieces. Any other store makes bytes plain data (`Misc`, or `Zero` when storing
//! 0). Privileged programs may read bytes never written (they read as unknown numbers).

use super::Walker;
use super::mem::{Access, Value};
use crate::code::MAX_VAR_OFF;
use crate::error::{Errno, VResult, VerifierError};
use crate::reg::{RegState, RegType};
use crate::stack::{MAX_BPF_STACK, REG_SIZE, SlotType, locate};

impl Walker<'_> {
    /// Bounds of a `size`-byte access through stack pointer `reg` at fixed offset `off`:
    /// `(min_off, max_off)` as frame offsets, `max_off` exclusive.
    fn stack_bounds(
        &self,
        regno: u8,
        reg: &RegState,
        off: i32,
        size: usize,
        extra: &str,
    ) -> VResult<(i64, i64)> {
        let off64 = i64::from(off);
        let (min_off, max_off) = if reg.var.var_off.is_const() {
            let m = (reg.var.var_off.value() as i64).saturating_add(off64);
            (m, m.saturating_add(size as i64))
        } else {
            if reg.var.smax >= MAX_VAR_OFF || reg.var.smin <= -MAX_VAR_OFF {
                return Err(self.err_eacces(format!(
                    "invalid unbounded variable-offset{extra} stack R{regno}"
                )));
            }
            (reg.var.smin + off64, reg.var.smax + off64 + size as i64)
        };
        let errno = if min_off < -i64::from(MAX_BPF_STACK) || min_off >= 0 {
            Some(Errno::EACCES)
        } else if max_off > 0 {
            Some(Errno::EINVAL)
        } else {
            None
        };
        if let Some(errno) = errno {
            let msg = if reg.var.var_off.is_const() {
                format!("invalid{extra} stack R{regno} off={off} size={size}")
            } else {
                format!(
                    "invalid variable-offset{extra} stack R{regno} var_off={} off={off} size={size}",
                    reg.var.var_off
                )
            };
            return Err(VerifierError::new(self.pc, errno, msg));
        }
        Ok((min_off, max_off))
    }

    fn frame_index(&self, frame: u8) -> VResult<usize> {
        let f = usize::from(frame);
        if f < self.st.frames.len() {
            Ok(f)
        } else {
            Err(self.err_eacces(format!("invalid stack frame {frame}")))
        }
    }

    /// A load or store through a stack pointer.
    pub(super) fn check_stack_access(
        &mut self,
        regno: u8,
        reg: &RegState,
        frame: u8,
        off: i32,
        size: usize,
        access: Access,
    ) -> VResult<Option<RegState>> {
        let write = matches!(access, Access::Write(_));
        let extra = if write { " write to" } else { " read from" };
        let (min_off, max_off) = self.stack_bounds(regno, reg, off, size, extra)?;
        let f = self.frame_index(frame)?;
        self.note_stack_depth(f, min_off);
        let fixed = reg.var.var_off.is_const();
        match access {
            Access::Write(value) if fixed => {
                self.stack_write_fixed(f, min_off as i32, size, value)?;
                Ok(None)
            }
            Access::Write(value) => {
                self.stack_write_var(f, min_off, max_off, value);
                Ok(None)
            }
            Access::Read { dst, .. } if fixed => {
                self.stack_read_fixed(f, min_off as i32, size, dst)
            }
            Access::Read { dst, .. } => {
                let last = max_off - size as i64;
                self.stack_range_readable(f, regno, reg, min_off, last, size, "")?;
                Ok(dst.map(|_| self.stack_value(f, min_off, max_off)))
            }
        }
    }

    fn stack_write_fixed(&mut self, f: usize, off: i32, size: usize, value: Value) -> VResult<()> {
        let (spi, _) = locate(off);
        self.touch_slot(spi);
        if size == REG_SIZE && off % REG_SIZE as i32 == 0 {
            self.mark_stack_written(f, spi);
            self.slive.write(f, spi);
        } else {
            // A partial write keeps the other bytes: the slot's old contents still matter.
            self.mark_stack_read(f, spi);
        }
        let value_reg = match value {
            Value::Reg(r) => Some(*self.st.reg(r)),
            _ => None,
        };
        let aligned = off % REG_SIZE as i32 == 0;
        let cur = self.st.curframe();
        let slot_holds_ptr = self.st.frames[f]
            .stack
            .slot(spi)
            .is_some_and(|s| s.holds_pointer());
        if !self.privileged() && slot_holds_ptr && size != REG_SIZE {
            return Err(self.err_eacces("attempt to corrupt spilled pointer on stack"));
        }
        match (value_reg, value) {
            (Some(v), _) if aligned && v.is_scalar() && self.privileged() => {
                let mut v = v;
                let fits = size >= REG_SIZE || v.var.umax >> (size * 8) == 0;
                if let Value::Reg(r) = value
                    && fits
                {
                    // Link the register and its spilled copy, so a comparison on one bounds
                    // the other (the kernel does this on every scalar spill that keeps the
                    // whole value).
                    v = self.link_for_copy(r);
                }
                if !fits {
                    v.id = 0;
                }
                self.spill(f, spi, v, size);
            }
            (None, Value::Imm(i)) if aligned && self.privileged() => {
                self.spill(f, spi, RegState::constant(i as i64 as u64), size);
            }
            (Some(v), _) if v.is_pointer() => {
                if size != REG_SIZE {
                    return Err(self.err_eacces("invalid size of register spill"));
                }
                if f != cur && matches!(v.ty, RegType::Stack { .. }) {
                    return Err(self.err_einval(
                        "cannot spill pointers to stack into stack frame of the caller",
                    ));
                }
                self.spill(f, spi, v, size);
            }
            _ => {
                let zero = match (value_reg, value) {
                    (Some(v), _) => v.is_null(),
                    (None, Value::Imm(0)) => true,
                    _ => false,
                };
                let t = if zero { SlotType::Zero } else { SlotType::Misc };
                if zero && let Value::Reg(r) = value {
                    // Known-zero bytes record the value: it must be kept precise.
                    self.mark_precise(r);
                }
                let stack = &mut self.st.frames[f].stack;
                stack.slot_mut(spi).scrub_spill();
                for b in off..off + size as i32 {
                    stack.set_byte(b, t);
                }
            }
        }
        Ok(())
    }

    /// A spill or fill of slot `spi` of frame `f`: an entry of the path's instruction
    /// history (the kernel's `INSN_F_STACK_ACCESS`), which precision backtracking follows
    /// between the register and the slot. Other stack accesses move no tracked value: a
    /// load of plain data gives an unknown number, a store of data ends no spill's story.
    fn stack_history(&mut self, f: usize, spi: usize) {
        self.count_hist_entry();
        self.cur_stack = Some((f as u8, spi as u8));
    }

    /// Saves `reg` in slot `spi` as a `size`-byte spill (the kernel's `save_register_state`).
    /// A spill is an entry of the instruction history.
    fn spill(&mut self, f: usize, spi: usize, reg: RegState, size: usize) {
        self.stack_history(f, spi);
        let slot = self.st.frames[f].stack.slot_mut(spi);
        slot.spilled = reg;
        for (i, t) in slot.types.iter_mut().enumerate() {
            if i >= REG_SIZE - size {
                *t = SlotType::Spill;
            } else if !matches!(*t, SlotType::Zero | SlotType::Invalid) {
                *t = SlotType::Misc;
            }
        }
    }

    fn stack_write_var(&mut self, f: usize, min_off: i64, max_off: i64, value: Value) {
        let zero = match value {
            Value::Reg(r) => self.st.reg(r).is_null(),
            Value::Imm(i) => i == 0,
            Value::Unknown => false,
        };
        if zero && let Value::Reg(r) = value {
            self.mark_precise(r);
        }
        for b in min_off..max_off {
            let b = b as i32;
            let (spi, _) = locate(b);
            self.touch_slot(spi);
            self.mark_stack_read(f, spi);
            let stack = &mut self.st.frames[f].stack;
            stack.slot_mut(spi).scrub_spill();
            let t = if zero && stack.byte(b) == SlotType::Zero {
                SlotType::Zero
            } else {
                SlotType::Misc
            };
            stack.set_byte(b, t);
        }
    }

    fn stack_read_fixed(
        &mut self,
        f: usize,
        off: i32,
        size: usize,
        dst: Option<u8>,
    ) -> VResult<Option<RegState>> {
        let (spi, _) = locate(off);
        self.touch_slot(spi);
        self.mark_stack_read(f, spi);
        self.live_read(f, spi);
        let slot = self.st.frames[f]
            .stack
            .slot(spi)
            .copied()
            .unwrap_or_default();
        if slot.is_spilled() {
            let spill_size = slot.spill_size();
            if size != REG_SIZE || spill_size != REG_SIZE {
                if !slot.spilled.is_scalar() {
                    return Err(self.err_eacces("invalid size of register fill"));
                }
                if dst.is_none() {
                    return Ok(None);
                }
                if size <= spill_size && off % REG_SIZE as i32 == 0 {
                    // A fill restores the spilled register: a history entry.
                    self.stack_history(f, spi);
                    let mut v = slot.spilled;
                    if size < 8 && v.var.umax >> (size * 8) != 0 {
                        v.id = 0;
                    }
                    return Ok(Some(v));
                }
                let (mut spills, mut zeros) = (0, 0);
                for i in 0..size as i32 {
                    match self.st.frames[f].stack.byte(off + i) {
                        SlotType::Spill => spills += 1,
                        SlotType::Misc => {}
                        SlotType::Zero => zeros += 1,
                        SlotType::Invalid if self.privileged() => {}
                        SlotType::Invalid => {
                            return Err(self.err_eacces(format!(
                                "invalid read from stack off {off}+{i} size {size}"
                            )));
                        }
                    }
                }
                let zero = (spills == size && slot.spilled.is_null()) || zeros == size;
                if spills == size && slot.spilled.is_null() {
                    self.stack_history(f, spi);
                }
                return Ok(Some(if zero {
                    RegState::constant(0)
                } else {
                    RegState::unknown_scalar()
                }));
            }
            return match dst {
                Some(_) => {
                    self.stack_history(f, spi);
                    Ok(Some(slot.spilled))
                }
                None if self.is_leak(&slot.spilled) => {
                    Err(self.err_eacces(format!("leaking pointer from stack off {off}")))
                }
                None => {
                    self.stack_history(f, spi);
                    Ok(None)
                }
            };
        }
        for i in 0..size as i32 {
            match self.st.frames[f].stack.byte(off + i) {
                SlotType::Misc | SlotType::Zero => {}
                SlotType::Invalid if self.privileged() => {}
                _ => {
                    return Err(self
                        .err_eacces(format!("invalid read from stack off {off}+{i} size {size}")));
                }
            }
        }
        Ok(dst.map(|_| self.stack_value(f, i64::from(off), i64::from(off) + size as i64)))
    }

    /// What reading bytes `[min_off, max_off)` as data gives: 0 if all are known zero.
    fn stack_value(&self, f: usize, min_off: i64, max_off: i64) -> RegState {
        let stack = &self.st.frames[f].stack;
        let all_zero = (min_off..max_off).all(|b| stack.byte(b as i32) == SlotType::Zero);
        if all_zero {
            RegState::constant(0)
        } else {
            RegState::unknown_scalar()
        }
    }

    /// Every byte of `[min_off, last_off + size)` may be read as data (the kernel's
    /// `check_stack_range_initialized`, read side).
    #[allow(clippy::too_many_arguments)]
    fn stack_range_readable(
        &mut self,
        f: usize,
        regno: u8,
        reg: &RegState,
        min_off: i64,
        last_off: i64,
        size: usize,
        extra: &str,
    ) -> VResult<()> {
        let mut marked = usize::MAX;
        for b in min_off..last_off + size as i64 {
            let b32 = b as i32;
            let (spi, _) = locate(b32);
            if spi != marked {
                // Once per slot: the bytes of a slot are consecutive.
                self.mark_stack_read(f, spi);
                self.live_read(f, spi);
                marked = spi;
            }
            let stack = &self.st.frames[f].stack;
            let ok = match stack.byte(b32) {
                SlotType::Misc | SlotType::Zero => true,
                SlotType::Invalid => self.privileged(),
                SlotType::Spill => stack
                    .slot(spi)
                    .is_some_and(|s| s.spilled.is_scalar() || self.privileged()),
            };
            if !ok {
                let msg = if reg.var.var_off.is_const() {
                    format!(
                        "invalid{extra} read from stack R{regno} off {min_off}+{} size {size}",
                        b - min_off
                    )
                } else {
                    format!(
                        "invalid{extra} read from stack R{regno} var_off {}+{} size {size}",
                        reg.var.var_off,
                        b - min_off
                    )
                };
                return Err(self.err_eacces(msg));
            }
        }
        Ok(())
    }

    /// A helper reading (or, when `write`, filling) `size` bytes at stack pointer `reg`.
    /// After a helper that reads and writes memory it is given initialised (the kernel's
    /// `ARG_PTR_TO_MEM` without `MEM_RDONLY`: `bpf_fib_lookup`'s parameters): on the
    /// stack, every byte it may have written becomes data and spilled values are forgotten,
    /// as the kernel's `check_stack_range_initialized` does when it clobbers.
    pub(super) fn clobber_helper_stack(
        &mut self,
        regno: u8,
        reg: &RegState,
        size: u64,
    ) -> VResult<()> {
        let RegType::Stack { frame } = reg.ty else {
            return Ok(());
        };
        let Ok(size) = usize::try_from(size) else {
            return Ok(());
        };
        if size == 0 {
            return Ok(());
        }
        let (min_off, max_off) =
            self.stack_bounds(regno, reg, reg.off, size, " indirect access to")?;
        let f = self.frame_index(frame)?;
        self.helper_wrote(f, min_off, max_off);
        Ok(())
    }

    /// A helper wrote bytes `from..to` of frame `f`'s stack with values unknown here: spills
    /// there are gone, and known-zero or uninitialised bytes become data.
    fn helper_wrote(&mut self, f: usize, from: i64, to: i64) {
        for b in from..to {
            let b = b as i32;
            let (spi, _) = locate(b);
            let stack = &mut self.st.frames[f].stack;
            stack.slot_mut(spi).scrub_spill();
            if matches!(stack.byte(b), SlotType::Zero | SlotType::Invalid) {
                stack.set_byte(b, SlotType::Misc);
            }
        }
    }

    pub(super) fn check_helper_stack(
        &mut self,
        regno: u8,
        reg: &RegState,
        size: u64,
        write: bool,
        zero_ok: bool,
    ) -> VResult<()> {
        let RegType::Stack { frame } = reg.ty else {
            return Ok(());
        };
        if size == 0 && !zero_ok {
            return Err(self.err_eacces("invalid zero-sized read"));
        }
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let (min_off, max_off) =
            self.stack_bounds(regno, reg, reg.off, size, " indirect access to")?;
        let f = self.frame_index(frame)?;
        self.note_stack_depth(f, min_off);
        if size == 0 {
            return Ok(());
        }
        let last = max_off - size as i64;
        let fixed = reg.var.var_off.is_const();
        if write && fixed {
            // The helper fills the bytes: no initialisation needed, they become data.
            let mut marked = usize::MAX;
            for b in min_off..max_off {
                let b = b as i32;
                let (spi, _) = locate(b);
                if spi != marked {
                    self.touch_slot(spi);
                    self.mark_stack_read(f, spi);
                    marked = spi;
                }
                let stack = &mut self.st.frames[f].stack;
                stack.slot_mut(spi).scrub_spill();
                stack.set_byte(b, SlotType::Misc);
            }
            return Ok(());
        }
        self.stack_range_readable(f, regno, reg, min_off, last, size, " indirect")?;
        if write {
            self.helper_wrote(f, min_off, last + size as i64);
        }
        Ok(())
    }
}
