//! Jumps: JA, and JMP/JMP32 conditions as compare + `br` on the condition codes.
//!
//! 64-bit compares are `sub` on the low words then `sub_carry` on the high words (carry =
//! no borrow, so `hs`/`lo` decide unsigned order and `ge`/`lt` signed order of the full
//! 64-bit values); `>`/`<=` swap the operands. Equality and JSET combine both words with
//! `xor`/`and` then `or`. Reachability facts remove branches the verifier proved dead, and a
//! 64-bit compare of two values known to fit 32 bits is the 32-bit compare (`narrow_cmp`).

use vm_core::Program;
use vm_core::isa::{Insn, JmpCond, Operand, Reg, Width};

use super::ranges::Known;
use super::recorder::OperandFacts;

use super::alu::alu;
use super::{Label, Lowerer, S0, S1, Val, ga, gb, hi, lo};
use crate::target::{AluOp, Bank, Cond, Dst, Src};

impl Lowerer<'_> {
    pub(crate) fn lower_ja(&mut self, off: i32, _long: bool) {
        let target = self.pc as i64 + 1 + i64::from(off);
        let Ok(t) = usize::try_from(target) else {
            self.not_lowered("jump outside the program");
            return;
        };
        if t == self.pc + 1 {
            return;
        }
        self.br(Cond::Always, Label::Pc(t));
    }

    pub(crate) fn lower_jmp(
        &mut self,
        cond: JmpCond,
        width: Width,
        d: Reg,
        src: Operand,
        off: i16,
    ) {
        let target = self.pc as i64 + 1 + i64::from(off);
        let Ok(t) = usize::try_from(target) else {
            self.not_lowered("jump outside the program");
            return;
        };
        if d >= 10 {
            self.not_lowered("compare of r10");
            return;
        }
        let o = self.op(self.pc);
        if self.opt.dead_branch {
            if (!self.reachable(t) || !o.may_take) && t != self.pc + 1 {
                // Never taken on any path.
                self.out.opts.dead_branch += 1;
                return;
            }
            if !self.reachable(self.pc + 1) || (!o.may_fall && o.may_take) {
                self.out.opts.dead_branch += 1;
                self.br(Cond::Always, Label::Pc(t));
                return;
            }
        }
        let val = match (src, width) {
            (Operand::Reg(r), _) => Val::Reg(r),
            (Operand::Imm(i), Width::W64) => Val::Imm(i64::from(i) as u64),
            (Operand::Imm(i), Width::W32) => Val::Imm(u64::from(i as u32)),
        };
        let l = Label::Pc(t);
        match width {
            Width::W32 => self.jmp32(cond, d, val, l),
            Width::W64 if self.opt.narrow_cmp && self.narrow_at(self.pc) => {
                // Both values are in 0..2^32: their 64-bit order, equality and common bits
                // are those of their low words, and as non-negative numbers their signed
                // order is their unsigned order.
                self.out.opts.narrow_cmp += 1;
                self.jmp32(unsigned_cond(cond), d, val, l);
            }
            Width::W64 => self.jmp64(cond, d, val, l),
        }
    }

    /// Whether the 64-bit compare at `pc` is lowered as a 32-bit one ([`narrow_compares`]).
    fn narrow_at(&self, pc: usize) -> bool {
        self.narrow.get(pc).copied().unwrap_or(false)
    }

    fn jmp32(&mut self, cond: JmpCond, d: Reg, val: Val, l: Label) {
        let dl = lo(d);
        match cond {
            JmpCond::Set => {
                let s = self.operand32(val, Bank::B);
                self.emit(alu(AluOp::And, Dst::None, ga(dl), s));
                self.br(Cond::Ne, l);
            }
            JmpCond::Eq | JmpCond::Ne | JmpCond::Lt | JmpCond::Ge | JmpCond::Slt | JmpCond::Sge => {
                let s = self.operand32(val, Bank::B);
                self.emit(alu(AluOp::Sub, Dst::None, ga(dl), s));
                self.br(direct_cond(cond), l);
            }
            _ => {
                // dst > src  <=>  src < dst: subtract the other way round.
                let s = self.operand32(val, Bank::A);
                self.emit(alu(AluOp::Sub, Dst::None, s, gb(dl)));
                self.br(swapped_cond(cond), l);
            }
        }
    }

    fn jmp64(&mut self, cond: JmpCond, d: Reg, val: Val, l: Label) {
        let (dl, dh) = (lo(d), hi(d));
        match cond {
            JmpCond::Eq | JmpCond::Ne | JmpCond::Set => {
                let op = if cond == JmpCond::Set {
                    AluOp::And
                } else {
                    AluOp::Xor
                };
                let (sl, sh) = self.operand(val, Bank::B);
                let c = if cond == JmpCond::Eq {
                    Cond::Eq
                } else {
                    Cond::Ne
                };
                if op == AluOp::And && sh == Src::Imm(0) {
                    self.emit(alu(op, Dst::None, ga(dl), sl));
                    self.br(c, l);
                    return;
                }
                if op == AluOp::Xor && sl == Src::Imm(0) {
                    // Compare with a value whose low word is 0: or the low word in directly.
                    if sh == Src::Imm(0) {
                        self.emit(alu(AluOp::Or, Dst::None, ga(dl), gb(dh)));
                    } else {
                        self.emit(alu(op, Dst::Both(S1), ga(dh), sh));
                        self.emit(alu(AluOp::Or, Dst::None, ga(dl), gb(S1)));
                    }
                    self.br(c, l);
                    return;
                }
                self.emit(alu(op, Dst::Both(S0), ga(dl), sl));
                if op == AluOp::Xor && sh == Src::Imm(0) {
                    // x ^ 0 == x: or the high word in directly.
                    self.emit(alu(AluOp::Or, Dst::None, ga(S0), gb(dh)));
                } else {
                    self.emit(alu(op, Dst::Both(S1), ga(dh), sh));
                    self.emit(alu(AluOp::Or, Dst::None, ga(S0), gb(S1)));
                }
                self.br(c, l);
            }
            JmpCond::Lt | JmpCond::Ge | JmpCond::Slt | JmpCond::Sge => {
                let (sl, sh) = self.operand(val, Bank::B);
                self.emit(alu(AluOp::Sub, Dst::None, ga(dl), sl));
                self.emit(alu(AluOp::SubCarry, Dst::None, ga(dh), sh));
                self.br(direct_cond(cond), l);
            }
            _ => {
                let (sl, sh) = self.operand(val, Bank::A);
                self.emit(alu(AluOp::Sub, Dst::None, sl, gb(dl)));
                self.emit(alu(AluOp::SubCarry, Dst::None, sh, gb(dh)));
                self.br(swapped_cond(cond), l);
            }
        }
    }
}

/// Per slot: a 64-bit conditional jump whose two values are known to fit 32 bits before it:
/// scalars the lowering's own ranges (sound on every path, unlike the verifier's visited-state
/// union) bound to 32 bits, or two packet-family pointers near their packet on every visit
/// (see `recorder::near_packet`). Such a compare reads only the low words, which also frees the
/// upper halves it would have read from zero-extension (`Lowerer::zext`); decided once,
/// before lowering, so that both agree.
pub(crate) fn narrow_compares(
    prog: &Program,
    known: &[Option<Known>],
    ops: &[OperandFacts],
) -> Vec<bool> {
    let within = |m: Option<u64>| m.is_some_and(|m| m <= u64::from(u32::MAX));
    prog.insns
        .iter()
        .enumerate()
        .map(|(pc, insn)| {
            let Insn::Jmp {
                width: Width::W64,
                dst,
                src,
                ..
            } = *insn
            else {
                return false;
            };
            if ops.get(pc).and_then(|o| o.packet_compare) == Some(true) {
                return true;
            }
            let Some(k) = known.get(pc).copied().flatten() else {
                return false;
            };
            let max = |r: Reg| k.max.get(usize::from(r)).copied().flatten();
            let src_max = match src {
                Operand::Reg(r) => max(r),
                Operand::Imm(i) => Some(i64::from(i) as u64),
            };
            within(max(dst)) && within(src_max)
        })
        .collect()
}

/// The unsigned condition that decides `c` between two non-negative values.
fn unsigned_cond(c: JmpCond) -> JmpCond {
    match c {
        JmpCond::Slt => JmpCond::Lt,
        JmpCond::Sle => JmpCond::Le,
        JmpCond::Sgt => JmpCond::Gt,
        JmpCond::Sge => JmpCond::Ge,
        other => other,
    }
}

/// Condition after `dst - src`.
fn direct_cond(c: JmpCond) -> Cond {
    match c {
        JmpCond::Eq => Cond::Eq,
        JmpCond::Ne => Cond::Ne,
        JmpCond::Lt => Cond::Lo,
        JmpCond::Ge => Cond::Hs,
        JmpCond::Slt => Cond::Lt,
        _ => Cond::Ge,
    }
}

/// Condition after `src - dst`.
fn swapped_cond(c: JmpCond) -> Cond {
    match c {
        JmpCond::Gt => Cond::Lo,
        JmpCond::Le => Cond::Hs,
        JmpCond::Sgt => Cond::Lt,
        _ => Cond::Ge,
    }
}
