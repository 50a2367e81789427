//! Loads, stores and atomics, dispatched on the verifier's pointer kind for the instruction
//! (`facts[pc].mem`): stack → local memory windows ([`super::stack`]), packet → CTM commands
//! and the packet cache ([`super::packet`]), map values → EMEM commands with 40-bit
//! addresses, context → the packet vector in local memory.
//!
//! Byte placement is shared: a value of `size` bytes starting at byte `start` of a stream of
//! 32-bit little-endian words (transfer registers or LM window words) is extracted with
//! `ld_field` (byte mask + rotation) or, when it straddles two words, a double shift.

use std::collections::{BTreeSet, HashMap};

use verifier::PtrKind;
use vm_core::ProgType;
use vm_core::isa::{AluOp as EAlu, AtomicOp, Insn, Operand, Reg, Size};

use super::alu::{alu, ld_field, shf};
use super::{Lowerer, S0, S1, ga, gb, hi, lo};
use crate::target::{
    AddrMode, AluOp, Bank, CmdAction, Dst, MeInsn, MemTarget, ShiftAmount, ShiftKind, Src,
};

/// First read transfer register of map-value reads (0..8 belong to the packet cache).
pub(crate) const XFER_MISC: u8 = 8;

/// The value a store writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreVal {
    Reg(Reg),
    Imm(u64),
}

/// The load-then-mask plan: for a narrow load followed by `and dst, imm` whose immediate is a
/// byte mask, the byte mask the load applies; the `and` slots are returned to be skipped.
pub(crate) fn plan_mask_folds(lw: &Lowerer<'_>) -> (HashMap<usize, u8>, BTreeSet<usize>) {
    let mut plan = HashMap::new();
    let mut skip = BTreeSet::new();
    for (pc, insn) in lw.prog.insns.iter().enumerate() {
        let Insn::Load {
            size,
            signed: false,
            dst,
            ..
        } = *insn
        else {
            continue;
        };
        let next = pc + 1;
        if size == Size::DW
            || !lw.reachable(pc)
            || !lw.reachable(next)
            || lw.targets.contains(&next)
            || !matches!(
                lw.fact(pc).mem,
                Some(PtrKind::Stack | PtrKind::Packet | PtrKind::MapValue)
            )
        {
            continue;
        }
        let Some(&Insn::Alu {
            op: EAlu::And,
            dst: d2,
            src: Operand::Imm(m),
            ..
        }) = lw.insn(next)
        else {
            continue;
        };
        if d2 != dst {
            continue;
        }
        if let Some(mask) = byte_mask_of(m as u32, size.bytes()) {
            plan.insert(pc, mask);
            skip.insert(next);
        }
    }
    (plan, skip)
}

/// The `ld_field` byte mask equivalent to and-ing a `size`-byte value with `m`, if every byte
/// of `m` it can see is 0x00 or 0xff.
pub(crate) fn byte_mask_of(m: u32, size: usize) -> Option<u8> {
    let mut mask = 0u8;
    for i in 0..size.min(4) {
        match (m >> (8 * i)) & 0xff {
            0xff => mask |= 1 << i,
            0 => {}
            _ => return None,
        }
    }
    Some(mask)
}

impl Lowerer<'_> {
    /// Loads `size` bytes at byte `start` of the word stream `word` into R`d` (upper half
    /// untouched for sizes below 8), applying an optional folded byte mask.
    pub(crate) fn load_words(
        &mut self,
        d: Reg,
        size: usize,
        start: usize,
        word: &dyn Fn(usize) -> Src,
        fold: Option<u8>,
    ) {
        let halves = if size > 4 { 2 } else { 1 };
        for h in 0..halves {
            let n = (size - 4 * h).min(4);
            let b0 = start + 4 * h;
            let (w, p) = (b0 / 4, (b0 % 4) as u8);
            let g = if h == 0 { lo(d) } else { hi(d) };
            let mut mask = ((1u16 << n) - 1) as u8;
            if h == 0
                && let Some(m) = fold
            {
                mask &= m;
            }
            if usize::from(p) + n <= 4 {
                if mask == 0xf && p == 0 {
                    self.emit(alu(AluOp::PassB, Dst::Both(g), Src::None, word(w)));
                } else {
                    self.emit(ld_field(Dst::Both(g), mask, word(w), p, true));
                }
            } else {
                self.emit(shf(
                    ShiftKind::DoubleRight,
                    Dst::Both(g),
                    word(w + 1),
                    word(w),
                    ShiftAmount::Imm(8 * p),
                ));
                if mask != 0xf {
                    self.emit(ld_field(Dst::Both(g), mask, gb(g), 0, true));
                }
            }
        }
    }

    /// The source of half `h` of a stored value (immediates through S1 when wider than 8 bits).
    fn store_half(&mut self, v: StoreVal, h: usize) -> Src {
        match v {
            StoreVal::Reg(r) => gb(if h == 0 { lo(r) } else { hi(r) }),
            StoreVal::Imm(x) => self.src_u32((x >> (32 * h)) as u32, Bank::B, S1),
        }
    }

    /// Stores `size` bytes of `v` at byte `start` of the LM word stream `word` (whole aligned
    /// words directly, partial words read-modify-write through S0).
    pub(crate) fn store_words(
        &mut self,
        v: StoreVal,
        size: usize,
        start: usize,
        word: &dyn Fn(usize) -> (Src, Dst),
    ) {
        let (first, last) = (start / 4, (start + size - 1) / 4);
        for w in first..=last {
            let js: Vec<usize> = (0..size).filter(|j| (start + j) / 4 == w).collect();
            let Some(&j0) = js.first() else { continue };
            if js.len() == 4 && j0 % 4 == 0 {
                let s = self.store_half(v, j0 / 4);
                self.emit(alu(AluOp::PassB, word(w).1, Src::None, s));
                continue;
            }
            self.emit(alu(AluOp::PassB, Dst::Both(S0), Src::None, word(w).0));
            for h in 0..2 {
                let group: Vec<usize> = js.iter().copied().filter(|j| j / 4 == h).collect();
                let Some(&g0) = group.first() else { continue };
                let mut mask = 0u8;
                for &j in &group {
                    mask |= 1 << ((start + j) % 4);
                }
                let pos = (start + g0) % 4;
                let rot = ((g0 % 4) + 4 - pos) % 4;
                let s = self.store_half(v, h);
                self.emit(ld_field(Dst::Both(S0), mask, s, rot as u8, false));
            }
            self.emit(alu(AluOp::PassB, word(w).1, Src::None, gb(S0)));
        }
    }

    pub(crate) fn lower_load(&mut self, size: Size, signed: bool, d: Reg, base: Reg, off: i16) {
        if signed {
            self.not_lowered("sign-extending load");
            return;
        }
        if d >= 10 {
            self.not_lowered("load into r10");
            return;
        }
        let fold = self.mask_plan.get(&self.pc).copied();
        if fold.is_some() {
            self.out.opts.ld_mask_fold += 1;
        }
        let extra = fold.is_some() && self.fact(self.pc + 1).zext;
        match self.fact(self.pc).mem {
            Some(PtrKind::Stack) => self.stack_load(size, d, base, off, fold),
            Some(PtrKind::Packet) => self.packet_load(size, d, base, off, fold),
            Some(PtrKind::MapValue) => self.map_load(size, d, base, off, fold),
            Some(PtrKind::Ctx) => {
                self.ctx_load(size, d, off);
                return;
            }
            other => {
                self.ptr_reason(other);
                return;
            }
        }
        if size != Size::DW {
            self.zext(d, extra);
        }
    }

    fn ptr_reason(&mut self, k: Option<PtrKind>) {
        match k {
            Some(PtrKind::Mixed) => {
                self.reason("ptr_type_changed", "[nfp] ptr type changed for instruction")
            }
            Some(k) => self.reason(
                "ptr_type",
                format!("[nfp] unsupported ptr type: {}", k.name()),
            ),
            None => self.not_lowered("memory access without a pointer kind"),
        }
    }

    pub(crate) fn lower_store(&mut self, size: Size, base: Reg, src: Operand, off: i16) {
        let v = match src {
            Operand::Reg(r) if r >= 10 => {
                self.not_lowered("store of r10");
                return;
            }
            Operand::Reg(r) => StoreVal::Reg(r),
            Operand::Imm(i) => StoreVal::Imm(i64::from(i) as u64),
        };
        match self.fact(self.pc).mem {
            Some(PtrKind::Stack) => self.stack_store(size, base, v, off),
            Some(PtrKind::Packet) => self.packet_store(size, base, v, off),
            Some(PtrKind::MapValue) => self.reason("map_write", "[nfp] map writes not supported"),
            Some(PtrKind::Ctx) => {
                self.reason("ctx_store", "[nfp] unsupported store to context field")
            }
            other => self.ptr_reason(other),
        }
    }

    /// The 40-bit EMEM address `R(base) + off` as (a, b) operands of an `Addr40` command.
    fn map_addr(&mut self, base: Reg, off: i16) -> (Src, Src) {
        if base >= 10 {
            return (Src::None, Src::None);
        }
        if off == 0 {
            return (ga(hi(base)), gb(lo(base)));
        }
        let (op, opc, k) = if off > 0 {
            (AluOp::Add, AluOp::AddCarry, off as u32)
        } else {
            (AluOp::Sub, AluOp::SubCarry, u32::from(off.unsigned_abs()))
        };
        let k = self.src_u32(k, Bank::B, S0);
        self.emit(alu(op, Dst::Both(S0), ga(lo(base)), k));
        self.emit(alu(opc, Dst::Both(S1), ga(hi(base)), Src::Imm(0)));
        (ga(S1), gb(S0))
    }

    fn map_load(&mut self, size: Size, d: Reg, base: Reg, off: i16, fold: Option<u8>) {
        let (a, b) = self.map_addr(base, off);
        self.emit(MeInsn::Cmd {
            target: MemTarget::Emem,
            action: CmdAction::Read8,
            xfer: XFER_MISC,
            count: size.bytes() as u8,
            mode: AddrMode::Addr40,
            a,
            b,
            swap: true,
        });
        self.load_words(
            d,
            size.bytes(),
            0,
            &|w| Src::Xfer(XFER_MISC + w as u8),
            fold,
        );
    }

    pub(crate) fn lower_atomic(
        &mut self,
        op: AtomicOp,
        size: Size,
        fetch: bool,
        base: Reg,
        src: Reg,
        off: i16,
    ) {
        if op != AtomicOp::Add || fetch {
            self.reason(
                "atomic",
                format!(
                    "[nfp] atomic op not implemented: {op:?}{}",
                    if fetch { " with fetch" } else { "" }
                ),
            );
            return;
        }
        if self.fact(self.pc).mem != Some(PtrKind::MapValue) {
            self.reason("atomic", "[nfp] atomic add not to a map value pointer");
            return;
        }
        if src >= 10 || base >= 10 {
            self.not_lowered("atomic add with r10");
            return;
        }
        let words = if size == Size::DW { 2 } else { 1 };
        self.emit(alu(AluOp::PassB, Dst::Xfer(0), Src::None, gb(lo(src))));
        if words == 2 {
            self.emit(alu(AluOp::PassB, Dst::Xfer(1), Src::None, gb(hi(src))));
        }
        let (a, b) = self.map_addr(base, off);
        self.emit(MeInsn::Cmd {
            target: MemTarget::Emem,
            action: CmdAction::AtomicAdd,
            xfer: 0,
            count: words,
            mode: AddrMode::Addr40,
            a,
            b,
            swap: true,
        });
    }

    /// Context fields come from the packet vector (LM index 1) and B22; the upper half is
    /// cleared whatever the zext flag says (as the JIT's ctx loads do), unless no path reads it.
    fn ctx_load(&mut self, size: Size, d: Reg, off: i16) {
        let pv = |w: u8| Src::Lm { index: 1, off: w };
        let field = match (self.prog.prog_type, off) {
            (ProgType::Xdp, 0) => Some(pv(crate::exec::PV_DATA)),
            (ProgType::Xdp, 4) => Some(pv(crate::exec::PV_DATA_END)),
            (ProgType::Xdp, 8) => Some(pv(crate::exec::PV_META)),
            (ProgType::SchedCls | ProgType::SocketFilter, 0) => Some(gb(super::R22)),
            (ProgType::SchedCls | ProgType::SocketFilter, 76) => Some(pv(crate::exec::PV_DATA)),
            (ProgType::SchedCls | ProgType::SocketFilter, 80) => Some(pv(crate::exec::PV_DATA_END)),
            _ => None,
        };
        match (field, size) {
            (Some(f), Size::W) => {
                self.emit(alu(AluOp::PassB, Dst::Both(lo(d)), Src::None, f));
                self.zero_hi_if_read(d);
            }
            _ => self.reason(
                "ctx_field",
                format!(
                    "[nfp] unsupported context field: off {off} size {}",
                    size.bytes()
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_masks() {
        assert_eq!(byte_mask_of(0xff, 1), Some(1));
        assert_eq!(byte_mask_of(0xffff, 1), Some(1));
        assert_eq!(byte_mask_of(0xff00, 2), Some(2));
        assert_eq!(byte_mask_of(0xf, 1), None);
        assert_eq!(byte_mask_of(0x00ff_00ff, 4), Some(0b0101));
    }
}
