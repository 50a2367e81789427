//! ALU and ALU64: moves, bitwise and additive ops on GPR pairs (64-bit = low op then the
//! carry op on the high words), shifts (constant and indirect), negation and byte order.

use vm_core::isa::{AluOp as EAlu, ByteOrder, Operand, Reg, Width};

use super::{Lowerer, S0, S1, Val, ga, gb, hi, lo};
use crate::target::{AluOp, Bank, Cond, Dst, ImmedWidth, MeInsn, ShiftAmount, ShiftKind, Src};

pub(crate) fn alu(op: AluOp, dst: Dst, a: Src, b: Src) -> MeInsn {
    MeInsn::Alu { op, dst, a, b }
}

pub(crate) fn shf(kind: ShiftKind, dst: Dst, a: Src, b: Src, amount: ShiftAmount) -> MeInsn {
    MeInsn::Shf {
        kind,
        dst,
        a,
        b,
        amount,
    }
}

fn mov(dst: u8, b: Src) -> MeInsn {
    alu(AluOp::PassB, Dst::Both(dst), Src::None, b)
}

/// Immediate folding (nfp-model.md §2.7): `add r, -k` is `sub r, k` (and vice versa) so that a
/// small negative constant fits the 8-bit inline operand instead of needing `immed`s.
/// Returns the possibly swapped operation and operand.
pub(crate) fn fold_negative_imm(op: EAlu, imm: i32) -> Option<(EAlu, u64)> {
    if !(-255..0).contains(&imm) {
        return None;
    }
    let neg = u64::from(imm.unsigned_abs());
    match op {
        EAlu::Add => Some((EAlu::Sub, neg)),
        EAlu::Sub => Some((EAlu::Add, neg)),
        _ => None,
    }
}

impl Lowerer<'_> {
    pub(crate) fn lower_alu(&mut self, op: EAlu, width: Width, dst: Reg, src: Operand) {
        if dst >= 10 {
            self.not_lowered("ALU on r10");
            return;
        }
        let (mut op, mut val) = match (src, width) {
            (Operand::Reg(r), _) => (op, Val::Reg(r)),
            (Operand::Imm(i), Width::W64) => (op, Val::Imm(i64::from(i) as u64)),
            (Operand::Imm(i), Width::W32) => (op, Val::Imm(u64::from(i as u32))),
        };
        if let Operand::Imm(i) = src
            && self.opt.imm_fold
            && let Some((o, v)) = fold_negative_imm(op, i)
        {
            op = o;
            val = Val::Imm(v);
            self.out.opts.imm_fold += 1;
        }
        match op {
            EAlu::Mov | EAlu::Add | EAlu::Sub | EAlu::And | EAlu::Or | EAlu::Xor => match width {
                Width::W64 => self.alu64(op, dst, val),
                Width::W32 => {
                    self.alu32(op, dst, val);
                    if op == EAlu::Mov {
                        self.zero_hi_if_read(dst);
                    } else {
                        self.zext(dst, false);
                    }
                }
            },
            EAlu::Lsh | EAlu::Rsh | EAlu::Arsh => {
                let kind = match op {
                    EAlu::Lsh => ShiftKind::Left,
                    EAlu::Rsh => ShiftKind::Right,
                    _ => ShiftKind::ArithRight,
                };
                match (width, val) {
                    (Width::W32, v) => {
                        self.shift32(kind, dst, v);
                        self.zext(dst, false);
                    }
                    (Width::W64, Val::Imm(k)) if self.low_word_only() => {
                        // `hi_live` marks only left shifts by a constant: their low word is
                        // the operand's low word shifted (or 0 from 32 on).
                        self.out.opts.dead_hi += 1;
                        let k = (k & 63) as u8;
                        if k < 32 {
                            self.shift32(kind, dst, Val::Imm(u64::from(k)));
                        } else {
                            self.load_u32(Dst::Both(lo(dst)), 0);
                        }
                    }
                    (Width::W64, Val::Imm(k)) => self.shift64_imm(kind, dst, (k & 63) as u8),
                    (Width::W64, Val::Reg(r)) if r < 10 => self.shift64_reg(kind, dst, r),
                    _ => self.not_lowered("shift by r10"),
                }
            }
            EAlu::Mul => self.lower_mul(width, dst, val),
            EAlu::Div => self.lower_div(width, dst, val),
            other => self.not_lowered(format!("ALU op {other:?}")),
        }
    }

    /// Whether the current slot is a 64-bit op whose upper half no path reads (`hi_live`).
    fn low_word_only(&self) -> bool {
        self.dead_hi.get(self.pc).copied().unwrap_or(false)
    }

    fn alu64(&mut self, op: EAlu, d: Reg, val: Val) {
        if self.low_word_only() {
            // No path reads the result's upper half (`hi_live`): the low word alone.
            self.out.opts.dead_hi += 1;
            self.alu32(op, d, val);
            return;
        }
        let (l, h) = (lo(d), hi(d));
        match (op, val) {
            (EAlu::Mov, Val::Imm(v)) => {
                self.load_u32(Dst::Both(l), v as u32);
                self.load_u32(Dst::Both(h), (v >> 32) as u32);
            }
            (EAlu::Mov, Val::Reg(10)) => {
                // r10 = A22 + 512, written straight into the destination.
                self.load_u32(Dst::Both(S0), 512);
                self.emit(alu(AluOp::Add, Dst::Both(l), ga(super::R22), gb(S0)));
                self.zero_hi(d);
            }
            (EAlu::Mov, v) => {
                if v == Val::Reg(d) {
                    return;
                }
                let (sl, sh) = self.operand(v, Bank::B);
                self.emit(mov(l, sl));
                self.emit(mov(h, sh));
            }
            (EAlu::Add | EAlu::Sub, v) => {
                let (o, oc) = if op == EAlu::Add {
                    (AluOp::Add, AluOp::AddCarry)
                } else {
                    (AluOp::Sub, AluOp::SubCarry)
                };
                let (sl, sh) = self.operand(v, Bank::B);
                self.emit(alu(o, Dst::Both(l), ga(l), sl));
                self.emit(alu(oc, Dst::Both(h), ga(h), sh));
            }
            (EAlu::And | EAlu::Or | EAlu::Xor, Val::Imm(v)) => {
                let o = bitop(op);
                let sl = self.src_u32(v as u32, Bank::B, S0);
                self.emit(alu(o, Dst::Both(l), ga(l), sl));
                // The upper word of a sign-extended immediate is 0 or all ones.
                match (op, (v >> 32) as u32) {
                    (EAlu::And, 0) => self.zero_hi(d),
                    (EAlu::Or | EAlu::Xor, 0) | (EAlu::And, u32::MAX) => {}
                    (EAlu::Or, u32::MAX) => self.load_u32(Dst::Both(h), u32::MAX),
                    (EAlu::Xor, u32::MAX) => {
                        self.emit(alu(AluOp::NotB, Dst::Both(h), Src::None, gb(h)))
                    }
                    (_, x) => {
                        let sh = self.src_u32(x, Bank::B, S1);
                        self.emit(alu(o, Dst::Both(h), ga(h), sh));
                    }
                }
            }
            (_, v) => {
                let o = bitop(op);
                let (sl, sh) = self.operand(v, Bank::B);
                self.emit(alu(o, Dst::Both(l), ga(l), sl));
                self.emit(alu(o, Dst::Both(h), ga(h), sh));
            }
        }
    }

    fn alu32(&mut self, op: EAlu, d: Reg, val: Val) {
        let l = lo(d);
        match (op, val) {
            (EAlu::Mov, Val::Imm(v)) => self.load_u32(Dst::Both(l), v as u32),
            (EAlu::Mov, Val::Reg(10)) => {
                // The low word of r10 = A22 + 512 (a `dead_hi` move), straight into `d`.
                self.load_u32(Dst::Both(S0), 512);
                self.emit(alu(AluOp::Add, Dst::Both(l), ga(super::R22), gb(S0)));
            }
            (EAlu::Mov, v) => {
                if v != Val::Reg(d) {
                    let s = self.operand32(v, Bank::B);
                    self.emit(mov(l, s));
                }
            }
            (EAlu::Add | EAlu::Sub, Val::Imm(k))
                if self.opt.mov_fold && self.fold_frame_offset(op, d, k as u32) => {}
            (_, v) => {
                let o = match op {
                    EAlu::Add => AluOp::Add,
                    EAlu::Sub => AluOp::Sub,
                    _ => bitop(op),
                };
                let s = self.operand32(v, Bank::B);
                self.emit(alu(o, Dst::Both(l), ga(l), s));
            }
        }
    }

    /// `d = r10; d += k` on the low word (a stack pointer, typically a helper's key
    /// argument): when the last two instructions are `immed[S0, v]; d = A22 + S0` (the low
    /// word of `d = r10`), folds `k` into the `immed` (`v = 512 + k`) instead of emitting an
    /// add. Only here, on the low-word path of `alu32`: what follows is at most the clearing
    /// of the upper half, which reads no condition codes, so the add's own flags are not
    /// missed (a 64-bit add's carry step would read them). Returns whether it folded.
    fn fold_frame_offset(&mut self, op: EAlu, d: Reg, k: u32) -> bool {
        let at = self.here();
        if at < 2 || at - 2 < self.fold_floor() {
            return false;
        }
        let l = lo(d);
        let pair = (
            self.out.code.get(at - 2).copied(),
            self.out.code.get(at - 1).copied(),
        );
        let (
            Some(MeInsn::Immed {
                dst: Dst::Both(S0),
                imm,
                shift: 0,
                invert: false,
                width: ImmedWidth::All,
            }),
            Some(MeInsn::Alu {
                op: AluOp::Add,
                dst: Dst::Both(ld),
                a: Src::Gpr(Bank::A, super::R22),
                b: Src::Gpr(Bank::B, S0),
            }),
        ) = pair
        else {
            return false;
        };
        if ld != l || l == S0 {
            return false;
        }
        let v = match op {
            EAlu::Add => u32::from(imm).wrapping_add(k),
            _ => u32::from(imm).wrapping_sub(k),
        };
        let Ok(v) = u16::try_from(v) else {
            return false;
        };
        if let Some(MeInsn::Immed { imm, .. }) = self.out.code.get_mut(at - 2) {
            *imm = v;
        }
        self.out.opts.mov_fold += 1;
        true
    }

    /// 32-bit shift; the amount is masked to 5 bits by the hardware as eBPF requires.
    fn shift32(&mut self, kind: ShiftKind, d: Reg, v: Val) {
        let l = lo(d);
        match v {
            Val::Imm(k) => {
                let k = (k & 31) as u8;
                if k != 0 {
                    self.emit(shf(
                        kind,
                        Dst::Both(l),
                        Src::None,
                        gb(l),
                        ShiftAmount::Imm(k),
                    ));
                }
            }
            Val::Reg(r) if r < 10 => {
                self.emit(mov(S1, gb(lo(r))));
                self.emit(shf(
                    kind,
                    Dst::Both(l),
                    Src::None,
                    gb(l),
                    ShiftAmount::Indirect,
                ));
            }
            Val::Reg(_) => self.not_lowered("shift by r10"),
        }
    }

    /// 64-bit shift by a constant: a double shift carries bits between the words.
    fn shift64_imm(&mut self, kind: ShiftKind, d: Reg, k: u8) {
        let (l, h) = (lo(d), hi(d));
        let imm = ShiftAmount::Imm;
        if k == 0 {
            return;
        }
        if k < 32 {
            match kind {
                ShiftKind::Left => {
                    self.emit(shf(
                        ShiftKind::DoubleRight,
                        Dst::Both(h),
                        ga(h),
                        gb(l),
                        imm(32 - k),
                    ));
                    self.emit(shf(kind, Dst::Both(l), Src::None, gb(l), imm(k)));
                }
                _ => {
                    self.emit(shf(
                        ShiftKind::DoubleRight,
                        Dst::Both(l),
                        ga(h),
                        gb(l),
                        imm(k),
                    ));
                    self.emit(shf(kind, Dst::Both(h), Src::None, gb(h), imm(k)));
                }
            }
            return;
        }
        let k = k - 32;
        match kind {
            ShiftKind::Left => {
                if k == 0 {
                    self.emit(mov(h, gb(l)));
                } else {
                    self.emit(shf(kind, Dst::Both(h), Src::None, gb(l), imm(k)));
                }
                self.load_u32(Dst::Both(l), 0);
            }
            ShiftKind::Right => {
                if k == 0 {
                    self.emit(mov(l, gb(h)));
                } else {
                    self.emit(shf(kind, Dst::Both(l), Src::None, gb(h), imm(k)));
                }
                self.load_u32(Dst::Both(h), 0);
            }
            _ => {
                if k == 0 {
                    self.emit(mov(l, gb(h)));
                } else {
                    self.emit(shf(kind, Dst::Both(l), Src::None, gb(h), imm(k)));
                }
                self.emit(shf(kind, Dst::Both(h), Src::None, gb(h), imm(31)));
            }
        }
    }

    /// 64-bit shift by a register: branch on bit 5 of the amount, then indirect shifts (the
    /// amount is re-established in S1 by an ALU move right before each indirect shift).
    fn shift64_reg(&mut self, kind: ShiftKind, d: Reg, r: Reg) {
        let (l, h, n) = (lo(d), hi(d), lo(r));
        let ind = ShiftAmount::Indirect;
        let big = self.new_label();
        let end = self.new_label();
        // Keep the amount in S1 first: `r` may be `d`, whose words change below.
        self.emit(mov(S1, gb(n)));
        self.br_bit(gb(S1), 5, true, big);
        match kind {
            ShiftKind::Left => {
                // S0 = low >> (32 - n), computed as (low >> 1) >> (31 - n) so n = 0 gives 0.
                self.emit(shf(
                    ShiftKind::Right,
                    Dst::Both(S0),
                    Src::None,
                    gb(l),
                    ShiftAmount::Imm(1),
                ));
                self.emit(alu(AluOp::Xor, Dst::Gpr(Bank::A, S1), ga(S1), Src::Imm(31)));
                self.emit(shf(ShiftKind::Right, Dst::Both(S0), Src::None, gb(S0), ind));
                self.emit(alu(AluOp::Xor, Dst::Both(S1), ga(S1), Src::Imm(31)));
                self.emit(shf(kind, Dst::Both(h), Src::None, gb(h), ind));
                self.emit(alu(AluOp::Or, Dst::Both(h), ga(h), gb(S0)));
                self.emit(mov(S1, gb(S1)));
                self.emit(shf(kind, Dst::Both(l), Src::None, gb(l), ind));
            }
            _ => {
                // S0 = high << (32 - n) (0 when n = 0).
                self.emit(shf(
                    ShiftKind::Left,
                    Dst::Both(S0),
                    Src::None,
                    gb(h),
                    ShiftAmount::Imm(1),
                ));
                self.emit(alu(AluOp::Xor, Dst::Gpr(Bank::A, S1), ga(S1), Src::Imm(31)));
                self.emit(shf(ShiftKind::Left, Dst::Both(S0), Src::None, gb(S0), ind));
                self.emit(alu(AluOp::Xor, Dst::Both(S1), ga(S1), Src::Imm(31)));
                self.emit(shf(ShiftKind::Right, Dst::Both(l), Src::None, gb(l), ind));
                self.emit(alu(AluOp::Or, Dst::Both(l), ga(l), gb(S0)));
                self.emit(mov(S1, gb(S1)));
                self.emit(shf(kind, Dst::Both(h), Src::None, gb(h), ind));
            }
        }
        self.br(Cond::Always, end);
        self.bind(big);
        self.emit(mov(S1, gb(S1)));
        match kind {
            ShiftKind::Left => {
                self.emit(shf(kind, Dst::Both(h), Src::None, gb(l), ind));
                self.load_u32(Dst::Both(l), 0);
            }
            ShiftKind::Right => {
                self.emit(shf(kind, Dst::Both(l), Src::None, gb(h), ind));
                self.load_u32(Dst::Both(h), 0);
            }
            _ => {
                self.emit(shf(kind, Dst::Both(l), Src::None, gb(h), ind));
                self.emit(shf(
                    kind,
                    Dst::Both(h),
                    Src::None,
                    gb(h),
                    ShiftAmount::Imm(31),
                ));
            }
        }
        self.bind(end);
    }

    pub(crate) fn lower_neg(&mut self, width: Width, d: Reg) {
        if d >= 10 {
            self.not_lowered("neg r10");
            return;
        }
        let (l, h) = (lo(d), hi(d));
        self.emit(alu(AluOp::Sub, Dst::Both(l), Src::Imm(0), gb(l)));
        match width {
            Width::W64 => self.emit(alu(AluOp::SubCarry, Dst::Both(h), Src::Imm(0), gb(h))),
            Width::W32 => self.zext(d, false),
        }
    }

    /// Byte order. The memory model is little-endian, so `be*` swaps and `le*` only truncates;
    /// both always clear what lies above the converted width (the JIT's `end_reg32`).
    pub(crate) fn lower_endian(&mut self, order: ByteOrder, bits: u8, d: Reg) {
        if d >= 10 {
            self.not_lowered("byte swap of r10");
            return;
        }
        let (l, h) = (lo(d), hi(d));
        match (order, bits) {
            (ByteOrder::ToLe, 16) => {
                self.emit(ld_field(Dst::Both(l), 0b0011, gb(l), 0, true));
                self.zero_hi_if_read(d);
            }
            (ByteOrder::ToLe, 32) => self.zero_hi_if_read(d),
            (ByteOrder::ToLe, 64) => {}
            (ByteOrder::ToBe, 16) if self.opt.swap_fold && self.fold_load_swap16(l) => {
                self.zero_hi_if_read(d);
            }
            (ByteOrder::ToBe, 16) => {
                self.swap16(Dst::Both(S0), gb(l));
                self.emit(mov(l, gb(S0)));
                self.zero_hi_if_read(d);
            }
            (ByteOrder::ToBe, 32) => {
                self.swap32(S0, gb(l));
                self.emit(mov(l, gb(S0)));
                self.zero_hi_if_read(d);
            }
            (ByteOrder::ToBe, 64) => {
                self.swap32(S0, gb(h));
                self.swap32(S1, gb(l));
                self.emit(mov(l, gb(S0)));
                self.emit(mov(h, gb(S1)));
            }
            (o, b) => self.not_lowered(format!("byte order {o:?}{b}")),
        }
    }

    /// `dst` = the low 16 bits of `x` byte-swapped, zero-extended (`dst` must not be `x`).
    pub(crate) fn swap16(&mut self, dst: Dst, x: Src) {
        self.emit(ld_field(dst, 0b0001, x, 1, true));
        self.emit(ld_field(dst, 0b0010, x, 3, false));
    }

    /// `swap_fold`: when the last instruction loaded 16 bits into `l` with one byte-field load
    /// (`l = (x >>rot p) & 0xffff`, from a transfer register or another GPR `x`), rewrites it
    /// to load the two bytes the other way round straight from `x`: byte 0 from `x >>rot
    /// (p+1)`, byte 1 from `x >>rot (p+3)`. Two instructions where the load and `swap16`
    /// through S0 took four. Returns whether it folded.
    fn fold_load_swap16(&mut self, l: u8) -> bool {
        let at = self.here();
        if at == 0 || at - 1 < self.fold_floor() {
            return false;
        }
        let Some(&MeInsn::LdField {
            dst: Dst::Both(ld),
            byte_mask: 0b0011,
            b: x,
            shift_bytes: p,
            zero_fill: true,
        }) = self.out.code.get(at - 1)
        else {
            return false;
        };
        let from_elsewhere = match x {
            Src::Xfer(_) => true,
            Src::Gpr(_, r) => r != l,
            _ => false,
        };
        if ld != l || !from_elsewhere {
            return false;
        }
        if let Some(last) = self.out.code.get_mut(at - 1) {
            *last = ld_field(Dst::Both(l), 0b0001, x, (p + 1) % 4, true);
        }
        self.emit(ld_field(Dst::Both(l), 0b0010, x, (p + 3) % 4, false));
        self.out.opts.swap_fold += 1;
        true
    }

    /// GPR `dst` = `x` byte-swapped (`dst` must not be `x`): rotate by 8, then fix bytes 0 and
    /// 2 from `x` rotated by 24.
    pub(crate) fn swap32(&mut self, dst: u8, x: Src) {
        self.emit(shf(
            ShiftKind::RotRight,
            Dst::Both(dst),
            Src::None,
            x,
            ShiftAmount::Imm(8),
        ));
        self.emit(ld_field(Dst::Both(dst), 0b0101, x, 3, false));
    }
}

pub(crate) fn ld_field(
    dst: Dst,
    byte_mask: u8,
    b: Src,
    shift_bytes: u8,
    zero_fill: bool,
) -> MeInsn {
    MeInsn::LdField {
        dst,
        byte_mask,
        b,
        shift_bytes,
        zero_fill,
    }
}

fn bitop(op: EAlu) -> AluOp {
    match op {
        EAlu::And => AluOp::And,
        EAlu::Or => AluOp::Or,
        _ => AluOp::Xor,
    }
}
