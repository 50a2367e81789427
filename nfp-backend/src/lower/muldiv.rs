//! Multiply (multiply-step sequences, 16x16 fast path from verifier ranges) and unsigned
//! divide by a constant via reciprocal multiplication — the ME has no divider
//! (nfp-model.md §1.6). Operand ranges come from the recorder's per-instruction operand facts.

use vm_core::isa::{Reg, Width};

use super::alu::{alu, shf};
use super::{Lowerer, S0, S1, Val, ga, gb, hi, lo};
use crate::target::{AluOp, Bank, Dst, MeInsn, MulStep, ShiftAmount, ShiftKind, Src};

/// The reciprocal of a divisor `d` (not 0, not a power of two): `(m, l)` such that for every
/// 32-bit `n`, with `t = (m * n) >> 32`, `n / d == (t + ((n - t) >> 1)) >> (l - 1)`
/// (Granlund–Montgomery, "Division by invariant integers using multiplication", fig. 4.1).
pub(crate) fn reciprocal(d: u32) -> (u32, u32) {
    let l = 32 - (d - 1).leading_zeros();
    let m = (((1u64 << l) - u64::from(d)) << 32) / u64::from(d) + 1;
    (m as u32, l)
}

/// The quotient computed the way the lowered code does (for tests).
#[cfg(test)]
pub(crate) fn divide_by_reciprocal(n: u32, d: u32) -> u32 {
    let (m, l) = reciprocal(d);
    let t = ((u64::from(m) * u64::from(n)) >> 32) as u32;
    (t + ((n - t) >> 1)) >> (l - 1)
}

impl Lowerer<'_> {
    /// Upper bound of register `r` before the current instruction, as `width` sees it
    /// (sound: from [`super::ranges`], not from the verifier's visited-state union).
    fn reg_max(&self, r: u8, width: Width) -> Option<u64> {
        let m = self
            .known
            .get(self.pc)
            .copied()
            .flatten()
            .and_then(|k| k.max.get(usize::from(r)).copied().flatten());
        match width {
            Width::W64 => m,
            Width::W32 => Some(m.map_or(u64::from(u32::MAX), |m| m.min(u64::from(u32::MAX)))),
        }
    }

    /// The constant value of register `r` before the current instruction, if any.
    fn reg_const(&self, r: u8) -> Option<u64> {
        self.known
            .get(self.pc)
            .copied()
            .flatten()
            .and_then(|k| k.konst.get(usize::from(r)).copied().flatten())
    }

    fn operand_max(&self, v: Val, width: Width) -> Option<u64> {
        match v {
            Val::Imm(x) => Some(match width {
                Width::W64 => x,
                Width::W32 => x & 0xffff_ffff,
            }),
            Val::Reg(r) => self.reg_max(r, width),
        }
    }

    fn emit_mul(&mut self, a: Src, b: Src, small: bool, low: Dst, high: Option<Dst>) {
        let (start, steps) = if small {
            (MulStep::Start16, 2)
        } else {
            (MulStep::Start32, 4)
        };
        self.emit(MeInsn::Mul {
            step: start,
            dst: Dst::None,
            a,
            b,
        });
        for n in 1..=steps {
            self.emit(MeInsn::Mul {
                step: MulStep::Step(n),
                dst: Dst::None,
                a: Src::None,
                b: Src::None,
            });
        }
        self.emit(MeInsn::Mul {
            step: MulStep::Last,
            dst: low,
            a: Src::None,
            b: Src::None,
        });
        if let Some(h) = high {
            self.emit(MeInsn::Mul {
                step: MulStep::LastHigh,
                dst: h,
                a: Src::None,
                b: Src::None,
            });
        }
    }

    pub(crate) fn lower_mul(&mut self, width: Width, d: Reg, val: Val) {
        if matches!(val, Val::Reg(r) if r >= 10) {
            self.not_lowered("multiply by r10");
            return;
        }
        let dmax = self.reg_max(d, width);
        let smax = self.operand_max(val, width);
        if width == Width::W64 {
            // Like the kernel JIT: 64-bit products only of operands within u32.
            if dmax.is_none_or(|m| m > u64::from(u32::MAX)) {
                self.reason(
                    "mul_range",
                    "[nfp] multiplicand is not within u32 value range",
                );
                return;
            }
            if smax.is_none_or(|m| m > u64::from(u32::MAX)) {
                let msg = if matches!(val, Val::Imm(_)) {
                    "[nfp] sign extended multiplicand won't be within u32 value range"
                } else {
                    "[nfp] multiplier is not within u32 value range"
                };
                self.reason("mul_range", msg);
                return;
            }
        }
        let small = dmax.is_some_and(|m| m <= 0xffff) && smax.is_some_and(|m| m <= 0xffff);
        let b = self.operand32(val, Bank::B);
        let l = lo(d);
        match width {
            Width::W64 if small => {
                self.emit_mul(ga(l), b, true, Dst::Both(l), None);
                self.zero_hi_if_read(d);
            }
            Width::W64 => self.emit_mul(ga(l), b, false, Dst::Both(l), Some(Dst::Both(hi(d)))),
            Width::W32 => {
                self.emit_mul(ga(l), b, small, Dst::Both(l), None);
                self.zext(d, false);
            }
        }
    }

    pub(crate) fn lower_div(&mut self, width: Width, d: Reg, val: Val) {
        let divisor = match (val, width) {
            (Val::Imm(x), Width::W64) => {
                if x > u64::from(u32::MAX) {
                    self.reason("div", "[nfp] divide by negative constant is not supported");
                    return;
                }
                x as u32
            }
            (Val::Imm(x), Width::W32) => x as u32,
            (Val::Reg(r), w) => {
                let c = self.reg_const(r).map(|c| match w {
                    Width::W64 => c,
                    Width::W32 => c & 0xffff_ffff,
                });
                match c {
                    Some(c) if c <= u64::from(u32::MAX) => c as u32,
                    Some(_) => {
                        self.reason("div", "[nfp] divisor is not within u32 value range");
                        return;
                    }
                    None => {
                        self.reason("div", "[nfp] divisor is not constant");
                        return;
                    }
                }
            }
        };
        if width == Width::W64
            && self
                .reg_max(d, width)
                .is_none_or(|m| m > u64::from(u32::MAX))
        {
            self.reason("div", "[nfp] dividend is not within u32 value range");
            return;
        }
        let l = lo(d);
        if divisor == 0 {
            // eBPF: division by zero gives 0.
            self.load_u32(Dst::Both(l), 0);
            self.load_u32(Dst::Both(hi(d)), 0);
            return;
        }
        if divisor.is_power_of_two() {
            let k = divisor.trailing_zeros() as u8;
            if k > 0 {
                self.emit(shf(
                    ShiftKind::Right,
                    Dst::Both(l),
                    Src::None,
                    gb(l),
                    ShiftAmount::Imm(k),
                ));
            }
        } else {
            let (m, sh) = reciprocal(divisor);
            let mb = self.src_u32(m, Bank::B, S0);
            // t = mulhi(m, n) -> S1
            self.emit_mul(ga(l), mb, false, Dst::None, Some(Dst::Both(S1)));
            self.emit(alu(AluOp::Sub, Dst::Both(S0), ga(l), gb(S1)));
            self.emit(shf(
                ShiftKind::Right,
                Dst::Both(S0),
                Src::None,
                gb(S0),
                ShiftAmount::Imm(1),
            ));
            self.emit(alu(AluOp::Add, Dst::Both(S0), ga(S0), gb(S1)));
            let k = (sh - 1) as u8;
            if k == 0 {
                self.emit(alu(AluOp::PassB, Dst::Both(l), Src::None, gb(S0)));
            } else {
                self.emit(shf(
                    ShiftKind::Right,
                    Dst::Both(l),
                    Src::None,
                    gb(S0),
                    ShiftAmount::Imm(k),
                ));
            }
        }
        // The quotient of a u32 dividend has a zero upper half (64-bit: the dividend's upper
        // half is already 0, proven by the verifier range above).
        if width == Width::W32 {
            self.zext(d, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reciprocal_of_small_divisors() {
        for d in [3u32, 5, 6, 7, 10, 1000, 0xffff_ffff, 0x8000_0001] {
            for n in [
                0u32,
                1,
                2,
                d - 1,
                d,
                d.wrapping_add(1),
                12345,
                u32::MAX,
                u32::MAX - 1,
            ] {
                assert_eq!(divide_by_reciprocal(n, d), n / d, "{n} / {d}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn reciprocal_division_is_exact(n: u32, d in 2u32..) {
            proptest::prop_assume!(!d.is_power_of_two());
            proptest::prop_assert_eq!(divide_by_reciprocal(n, d), n / d);
        }
    }
}
