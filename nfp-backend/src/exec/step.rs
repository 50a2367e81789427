//! The reference semantics of one instruction: operand access, the ALU, conditions,
//! branches and [`Thread::step`]. Every check the hardware model has happens here, per
//! instruction; the fast path (`fast_run`) must agree with it exactly.

use super::memory::Lmem;
use super::thread::{Flow, Thread, bank, slot};
use super::{ExecErrorKind, LMEM_BYTES, MemState, SwapTarget, fw};
use crate::target::{
    AddrMode, AluOp, Bank, Cond, Csr, Dst, ImmedWidth, MeInsn, ShiftAmount, ShiftKind, Src,
};

/// Whether `a` and `b` are GPRs of the same bank (an ALU instruction cannot read both).
pub(super) fn same_bank(a: Src, b: Src) -> bool {
    matches!((a, b), (Src::Gpr(x, _), Src::Gpr(y, _)) if x == y)
}

/// An `immed`'s value and the bits it writes (`u32::MAX` for a whole-register write), or
/// `None` when the shift is not valid for the width. Shared by the reference step and the
/// fast path's decoder so the two cannot drift apart.
pub(super) fn immed_parts(
    imm: u16,
    shift: u8,
    invert: bool,
    width: ImmedWidth,
) -> Option<(u32, u32)> {
    let ok = match width {
        ImmedWidth::All => shift <= 2,
        ImmedWidth::Word => shift == 0 || shift == 2,
        ImmedWidth::Byte => shift <= 3,
    };
    if !ok {
        return None;
    }
    let s = 8 * u32::from(shift);
    let mut v = u32::from(imm) << s;
    if invert {
        v = !v;
    }
    let mask = match width {
        ImmedWidth::All => u32::MAX,
        ImmedWidth::Word => 0xffff << s,
        ImmedWidth::Byte => 0xff << s,
    };
    Some((v & mask, mask))
}

/// The 32-bit mask of the bytes selected by a 4-bit `ld_field` byte mask.
pub(super) fn byte_mask(mask: u8) -> u32 {
    (0..4)
        .filter(|i| mask & (1 << i) != 0)
        .fold(0, |m, i| m | (0xff << (8 * i)))
}

impl Thread {
    /// Byte address in LMEM of LM window word `off` of index `index` (0 after a fault).
    #[inline(always)]
    pub(super) fn lm(&mut self, index: u8, off: u8) -> usize {
        let i = index as usize;
        if i >= 4 || off >= 16 {
            self.fault(ExecErrorKind::BadOperand("LM index >= 4 or offset >= 16"));
            return 0;
        }
        // `insns` counts the executing instruction already.
        if self.insns <= self.lm_ready[i] {
            self.fault(ExecErrorKind::LmHazard(index));
            return 0;
        }
        let a = (self.lm_addr[i] & !3) as usize + 4 * off as usize;
        if a + 4 > LMEM_BYTES {
            self.fault(ExecErrorKind::BadAddress {
                space: super::Space::Lmem,
                addr: a as u64,
                len: 4,
                write: false,
            });
            return 0;
        }
        a
    }

    #[inline(always)]
    pub(super) fn read(&mut self, s: Src, lmem: &Lmem) -> u32 {
        match s {
            Src::Gpr(b, n) if n < 32 => self.file[bank(b) + n as usize],
            Src::Gpr(..) => {
                self.fault(ExecErrorKind::BadOperand("GPR number >= 32"));
                0
            }
            Src::Imm(v) => u32::from(v),
            Src::None => 0,
            Src::Xfer(n) if n < 32 => self.file[slot::XFER_RD + n as usize],
            Src::Xfer(_) => {
                self.fault(ExecErrorKind::BadOperand("transfer register >= 32"));
                0
            }
            Src::Lm { index, off } => {
                let a = self.lm(index, off);
                lmem.word(a)
            }
        }
    }

    /// The current value of a destination (for partial writes).
    pub(super) fn read_dst(&mut self, d: Dst, lmem: &Lmem) -> u32 {
        match d {
            Dst::Gpr(b, n) => self.read(Src::Gpr(b, n), lmem),
            Dst::Both(n) => self.read(Src::Gpr(Bank::A, n), lmem),
            Dst::Xfer(n) if n < 32 => self.file[slot::XFER_WR + n as usize],
            Dst::Xfer(_) => {
                self.fault(ExecErrorKind::BadOperand("transfer register >= 32"));
                0
            }
            Dst::Lm { index, off } => {
                let a = self.lm(index, off);
                lmem.word(a)
            }
            Dst::None => 0,
        }
    }

    #[inline(always)]
    pub(super) fn write(&mut self, d: Dst, v: u32, lmem: &mut Lmem) {
        const BAD_GPR: ExecErrorKind = ExecErrorKind::BadOperand("GPR number >= 32");
        if self.fault.is_some() {
            return;
        }
        match d {
            Dst::Both(n) if n < 32 => {
                self.file[slot::A + n as usize] = v;
                self.file[slot::B + n as usize] = v;
            }
            Dst::Gpr(b, n) if n < 32 => self.file[bank(b) + n as usize] = v,
            Dst::Both(_) | Dst::Gpr(..) => self.fault(BAD_GPR),
            Dst::Xfer(n) if n < 32 => self.file[slot::XFER_WR + n as usize] = v,
            Dst::Xfer(_) => self.fault(ExecErrorKind::BadOperand("transfer register >= 32")),
            Dst::Lm { index, off } => {
                let a = self.lm(index, off);
                if self.fault.is_none() {
                    lmem.set_word(a, v);
                }
            }
            Dst::None => {}
        }
    }

    fn set_zn(&mut self, r: u32) {
        self.cc.res = r;
    }

    pub(super) fn alu(&mut self, op: AluOp, a: u32, b: u32) -> u32 {
        let carry = u32::from(self.cc.c);
        let (r, arith) = match op {
            AluOp::PassB => (b, None),
            AluOp::NotB => (!b, None),
            AluOp::And => (a & b, None),
            AluOp::AndNotA => (!a & b, None),
            AluOp::AndNotB => (a & !b, None),
            AluOp::Or => (a | b, None),
            AluOp::Xor => (a ^ b, None),
            AluOp::Add | AluOp::AddCarry => {
                let cin = if op == AluOp::AddCarry { carry } else { 0 };
                let wide = u64::from(a) + u64::from(b) + u64::from(cin);
                let s = i64::from(a as i32) + i64::from(b as i32) + i64::from(cin);
                (
                    wide as u32,
                    Some((wide >> 32 != 0, s != i64::from(s as i32))),
                )
            }
            AluOp::Sub | AluOp::SubCarry => {
                let borrow = if op == AluOp::SubCarry { 1 - carry } else { 0 };
                let wide = i64::from(a) - i64::from(b) - i64::from(borrow);
                let s = i64::from(a as i32) - i64::from(b as i32) - i64::from(borrow);
                (wide as u32, Some((wide >= 0, s != i64::from(s as i32))))
            }
        };
        self.set_zn(r);
        if let Some((c, v)) = arith {
            self.cc.c = c;
            self.cc.v = v;
        }
        r
    }

    pub(super) fn cond(&self, c: Cond) -> bool {
        let (z, n, carry, v) = (self.cc.z(), self.cc.n(), self.cc.c, self.cc.v);
        match c {
            Cond::Eq => z,
            Cond::Ne => !z,
            Cond::Mi => n,
            Cond::Pl => !n,
            Cond::Hs => carry,
            Cond::Lo => !carry,
            Cond::Vs => v,
            Cond::Vc => !v,
            Cond::Ge => n == v,
            Cond::Lt => n != v,
            Cond::Le => z || n != v,
            Cond::Gt => !z && n == v,
            Cond::Always => true,
        }
    }

    /// A branch decision: jump now, or after `defer` slots.
    pub(super) fn branch(&mut self, taken: bool, target: u16, defer: u8, len: usize) -> Flow {
        if defer > 3 {
            return self.fail(ExecErrorKind::BadOperand("more than 3 defer slots"));
        }
        let t = u32::from(target);
        if taken && t as usize >= len {
            return self.fail(ExecErrorKind::BadTarget(t));
        }
        if defer == 0 {
            return if taken { Flow::Jump(t) } else { Flow::Next };
        }
        self.defer_left = defer + 1;
        self.defer_taken = taken;
        self.defer_target = t;
        self.defer_slots = defer;
        Flow::Next
    }

    pub(super) fn step(&mut self, insn: &MeInsn, len: usize, mem: &mut MemState<'_>) -> Flow {
        let in_defer = self.defer_left > 0;
        self.busy += 1;
        match *insn {
            MeInsn::Alu { op, dst, a, b } => {
                if same_bank(a, b) {
                    return self.fail(ExecErrorKind::BadOperand(
                        "two sources in the same GPR bank",
                    ));
                }
                let (x, y) = (self.read(a, mem.lmem), self.read(b, mem.lmem));
                let r = self.alu(op, x, y);
                self.write(dst, r, mem.lmem);
                self.alu_val = r;
                self.alu_at = self.insns;
            }
            MeInsn::Shf {
                kind,
                dst,
                a,
                b,
                amount,
            } => {
                if same_bank(a, b) {
                    return self.fail(ExecErrorKind::BadOperand(
                        "two sources in the same GPR bank",
                    ));
                }
                let n = match amount {
                    ShiftAmount::Imm(n) if n < 32 => u32::from(n),
                    ShiftAmount::Imm(_) => {
                        return self.fail(ExecErrorKind::BadOperand("shift amount >= 32"));
                    }
                    // `insns` counts this instruction already; alu_at is 0 before any ALU op.
                    ShiftAmount::Indirect if self.alu_at != 0 && self.alu_at + 1 == self.insns => {
                        self.alu_val & 31
                    }
                    ShiftAmount::Indirect => return self.fail(ExecErrorKind::IndirectShift),
                };
                let (x, y) = (self.read(a, mem.lmem), self.read(b, mem.lmem));
                let r = match kind {
                    ShiftKind::Left => y << n,
                    ShiftKind::Right => y >> n,
                    ShiftKind::ArithRight => ((y as i32) >> n) as u32,
                    ShiftKind::RotRight => y.rotate_right(n),
                    ShiftKind::DoubleRight => (((u64::from(x) << 32) | u64::from(y)) >> n) as u32,
                };
                self.set_zn(r);
                self.write(dst, r, mem.lmem);
            }
            MeInsn::Immed {
                dst,
                imm,
                shift,
                invert,
                width,
            } => {
                let Some((v, m)) = immed_parts(imm, shift, invert, width) else {
                    return self.fail(ExecErrorKind::BadOperand(
                        "immed shift not valid for its width",
                    ));
                };
                let v = if m == u32::MAX {
                    v
                } else {
                    (self.read_dst(dst, mem.lmem) & !m) | v
                };
                self.write(dst, v, mem.lmem);
            }
            MeInsn::LdField {
                dst,
                byte_mask: mask,
                b,
                shift_bytes,
                zero_fill,
            } => {
                let dst_bank = match dst {
                    Dst::Gpr(bk, _) => bk,
                    Dst::Both(_) => Bank::A,
                    _ => {
                        return self
                            .fail(ExecErrorKind::BadOperand("ld_field destination not a GPR"));
                    }
                };
                if matches!(b, Src::Gpr(bk, _) if bk == dst_bank) {
                    return self.fail(ExecErrorKind::BadOperand(
                        "ld_field source in the destination's GPR bank",
                    ));
                }
                if mask > 0xf || shift_bytes > 3 {
                    return self.fail(ExecErrorKind::BadOperand(
                        "ld_field mask > 0xf or shift > 3",
                    ));
                }
                let src = self
                    .read(b, mem.lmem)
                    .rotate_right(8 * u32::from(shift_bytes));
                let m = byte_mask(mask);
                let old = if zero_fill {
                    0
                } else {
                    self.read_dst(dst, mem.lmem)
                };
                self.write(dst, (old & !m) | (src & m), mem.lmem);
            }
            MeInsn::Mul { step, dst, a, b } => {
                if same_bank(a, b) {
                    return self.fail(ExecErrorKind::BadOperand(
                        "two sources in the same GPR bank",
                    ));
                }
                if let Err(k) = self.mul_step(step, dst, a, b, mem.lmem) {
                    return self.fail(k);
                }
            }
            MeInsn::Br {
                cond,
                target,
                defer,
            } => {
                if in_defer {
                    return self.fail(ExecErrorKind::BranchInDefer);
                }
                let taken = self.cond(cond);
                return self.branch(taken, target, defer, len);
            }
            MeInsn::BrBit {
                src,
                bit,
                set,
                target,
                defer,
            } => {
                if in_defer {
                    return self.fail(ExecErrorKind::BranchInDefer);
                }
                if bit >= 32 {
                    return self.fail(ExecErrorKind::BadOperand("bit number >= 32"));
                }
                let v = self.read(src, mem.lmem);
                let taken = ((v >> bit) & 1 != 0) == set;
                return self.branch(taken, target, defer, len);
            }
            MeInsn::Rtn { src, defer } => {
                if in_defer {
                    return self.fail(ExecErrorKind::BranchInDefer);
                }
                let t = self.read(src, mem.lmem);
                let Ok(t) = u16::try_from(t) else {
                    return self.fail(ExecErrorKind::BadTarget(t));
                };
                return self.branch(true, t, defer, len);
            }
            MeInsn::Cmd {
                target,
                action,
                xfer,
                count,
                mode,
                a,
                b,
                swap,
            } => {
                if same_bank(a, b) {
                    return self.fail(ExecErrorKind::BadOperand(
                        "two sources in the same GPR bank",
                    ));
                }
                let (x, y) = (self.read(a, mem.lmem), self.read(b, mem.lmem));
                let addr = match mode {
                    AddrMode::Addr32 => u64::from(x.wrapping_add(y)),
                    AddrMode::Addr40 => (u64::from(x & 0xff) << 32) + u64::from(y),
                };
                if self.fault.is_some() {
                    return Flow::Next;
                }
                let words = match self.command(target, action, xfer, count, addr, mem) {
                    Ok(w) => w,
                    Err(k) => return self.fail(k),
                };
                if swap {
                    let wait = mem.lat.target_latency(target) + mem.lat.per_word * (words - 1);
                    return Flow::Swap(SwapTarget::Mem(target), u64::from(wait));
                }
            }
            MeInsn::CsrRead { csr, dst } => {
                let v = match csr {
                    Csr::ActLmAddr(n) => match self.lm_addr.get(n as usize) {
                        Some(&v) => v,
                        None => {
                            return self.fail(ExecErrorKind::BadOperand("ActLMAddr index >= 4"));
                        }
                    },
                    Csr::PseudoRandNum => mem.shared.prandom(),
                    Csr::ActiveCtxSts => u32::from(self.index),
                };
                self.write(dst, v, mem.lmem);
            }
            MeInsn::CsrWrite { csr, src } => {
                let v = self.read(src, mem.lmem);
                match csr {
                    Csr::ActLmAddr(n) if n < 4 => {
                        self.lm_addr[n as usize] = v;
                        // The next `csr_write_delay` instructions may not use index n.
                        let d = mem.lat.csr_write_delay.min(250);
                        self.lm_ready[n as usize] = self.insns + u64::from(d);
                    }
                    _ => return self.fail(ExecErrorKind::BadOperand("CSR is not writable")),
                }
            }
            MeInsn::FwCall { helper } => {
                if in_defer {
                    return self.fail(ExecErrorKind::BranchInDefer);
                }
                if let Err(k) = fw::call(helper, self, mem) {
                    return self.fail(k);
                }
                let c = mem.lat.fw_cost(helper);
                self.busy += u64::from(c.issue);
                // Helpers without memory latency (random, packet-vector updates) run inline.
                if c.wait > 0 {
                    return Flow::Swap(SwapTarget::Fw(helper), u64::from(c.wait));
                }
            }
            MeInsn::Exit => {
                if in_defer {
                    return self.fail(ExecErrorKind::BranchInDefer);
                }
                self.busy += u64::from(mem.lat.exit.saturating_sub(1));
                return Flow::Exit;
            }
            MeInsn::Nop => {}
        }
        Flow::Next
    }
}
