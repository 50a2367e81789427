//! One width's view of a [`ScalarBounds`]: its unsigned and signed range plus its tnum.
//!
//! Why: ALU32 and ALU64 (JMP32 and JMP) apply the same reasoning to different components.
//! Writing every transfer function once over a `Lane` of `bits` 32 or 64 (values stored
//! widened to `u64`/`i64`) keeps the two widths from drifting apart. For 32 bits the tnum is
//! the subregister (upper half known 0).

use vm_core::isa::Width;

use super::ScalarBounds;
use crate::tnum::Tnum;

/// Ranges and known bits of one width. For 32 bits, `umin..=umax` lie in `0..=u32::MAX` and
/// `smin..=smax` in the `i32` range.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Lane {
    pub bits: u32,
    pub umin: u64,
    pub umax: u64,
    pub smin: i64,
    pub smax: i64,
    pub var_off: Tnum,
}

/// Number of value bits of an instruction width.
pub(crate) const fn bits_of(width: Width) -> u32 {
    match width {
        Width::W32 => 32,
        Width::W64 => 64,
    }
}

/// Largest unsigned value of `bits`.
pub(crate) const fn umax_of(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Smallest signed value of `bits`.
pub(crate) const fn smin_of(bits: u32) -> i64 {
    if bits >= 64 {
        i64::MIN
    } else {
        -(1i64 << (bits - 1))
    }
}

/// Largest signed value of `bits`.
pub(crate) const fn smax_of(bits: u32) -> i64 {
    if bits >= 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    }
}

/// `v` reduced mod 2^bits, read as unsigned.
pub(crate) const fn wrap_u(v: i128, bits: u32) -> u64 {
    (v as u64) & umax_of(bits)
}

/// `v` reduced mod 2^bits, read as signed.
pub(crate) const fn wrap_s(v: i128, bits: u32) -> i64 {
    let shift = 64 - bits;
    (((v as u64) << shift) as i64) >> shift
}

/// `v` (a `bits`-wide bit pattern) read as signed.
pub(crate) const fn as_signed(v: u64, bits: u32) -> i64 {
    wrap_s(v as i128, bits)
}

impl Lane {
    /// Any value of `bits`.
    pub fn full(bits: u32) -> Lane {
        Lane {
            bits,
            umin: 0,
            umax: umax_of(bits),
            smin: smin_of(bits),
            smax: smax_of(bits),
            var_off: Tnum::UNKNOWN.cast((bits / 8) as u8),
        }
    }

    /// Exactly `v` (reduced to `bits`).
    pub fn constant(v: u64, bits: u32) -> Lane {
        let u = v & umax_of(bits);
        let s = as_signed(u, bits);
        Lane {
            bits,
            umin: u,
            umax: u,
            smin: s,
            smax: s,
            var_off: Tnum::constant(u),
        }
    }

    /// The view of `b` at `width`.
    pub fn of(b: &ScalarBounds, width: Width) -> Lane {
        match width {
            Width::W64 => Lane {
                bits: 64,
                umin: b.umin,
                umax: b.umax,
                smin: b.smin,
                smax: b.smax,
                var_off: b.var_off,
            },
            Width::W32 => Lane {
                bits: 32,
                umin: u64::from(b.u32_min),
                umax: u64::from(b.u32_max),
                smin: i64::from(b.s32_min),
                smax: i64::from(b.s32_max),
                var_off: b.var_off.subreg(),
            },
        }
    }

    /// The single possible value, if any (reduced to `bits`).
    pub fn const_value(&self) -> Option<u64> {
        if self.var_off.is_const() {
            Some(self.var_off.value())
        } else if self.umin == self.umax {
            Some(self.umin)
        } else if self.smin == self.smax {
            Some(self.smin as u64 & umax_of(self.bits))
        } else {
            None
        }
    }

    /// Whether some range is inverted.
    pub fn is_empty(&self) -> bool {
        self.umin > self.umax || self.smin > self.smax
    }

    /// The signed range when the unsigned one does not cross the sign boundary (else full):
    /// how results computed on unsigned values get a signed range.
    pub fn signed_from_unsigned(&mut self) {
        let (lo, hi) = (
            as_signed(self.umin, self.bits),
            as_signed(self.umax, self.bits),
        );
        if lo <= hi {
            self.smin = lo;
            self.smax = hi;
        } else {
            self.smin = smin_of(self.bits);
            self.smax = smax_of(self.bits);
        }
    }

    /// Sets the unsigned range to the exact image `lo..=hi` of a computation done without
    /// wrap-around, if it fits in `bits`; else to the full range.
    pub fn set_u_exact(&mut self, lo: i128, hi: i128) {
        if lo >= 0 && hi <= i128::from(umax_of(self.bits)) && lo <= hi {
            self.umin = lo as u64;
            self.umax = hi as u64;
        } else {
            self.umin = 0;
            self.umax = umax_of(self.bits);
        }
    }

    /// Signed counterpart of [`Lane::set_u_exact`].
    pub fn set_s_exact(&mut self, lo: i128, hi: i128) {
        if lo >= i128::from(smin_of(self.bits)) && hi <= i128::from(smax_of(self.bits)) && lo <= hi
        {
            self.smin = lo as i64;
            self.smax = hi as i64;
        } else {
            self.smin = smin_of(self.bits);
            self.smax = smax_of(self.bits);
        }
    }

    /// Sets the unsigned range to the wrapped image of the mathematical interval `lo..=hi`:
    /// exact when the interval is narrower than 2^bits and both ends wrap the same number of
    /// times (then the wrapped values stay in order); else the full range. This is how
    /// add/sub keep precision even when both bounds overflow.
    pub fn set_u_wrapping(&mut self, lo: i128, hi: i128) {
        let (wlo, whi) = (wrap_u(lo, self.bits), wrap_u(hi, self.bits));
        if lo <= hi && hi - lo <= i128::from(umax_of(self.bits)) && wlo <= whi {
            self.umin = wlo;
            self.umax = whi;
        } else {
            self.umin = 0;
            self.umax = umax_of(self.bits);
        }
    }

    /// Signed counterpart of [`Lane::set_u_wrapping`].
    pub fn set_s_wrapping(&mut self, lo: i128, hi: i128) {
        let (wlo, whi) = (wrap_s(lo, self.bits), wrap_s(hi, self.bits));
        if lo <= hi && hi - lo <= i128::from(umax_of(self.bits)) && wlo <= whi {
            self.smin = wlo;
            self.smax = whi;
        } else {
            self.smin = smin_of(self.bits);
            self.smax = smax_of(self.bits);
        }
    }

    /// Writes this 64-bit lane into `b`'s 64-bit components.
    pub fn store64(&self, b: &mut ScalarBounds) {
        b.umin = self.umin;
        b.umax = self.umax;
        b.smin = self.smin;
        b.smax = self.smax;
        b.var_off = self.var_off;
    }

    /// Writes this 32-bit lane into `b`'s 32-bit components and the low half of `var_off`.
    pub fn store32(&self, b: &mut ScalarBounds) {
        b.u32_min = self.umin as u32;
        b.u32_max = self.umax as u32;
        b.s32_min = self.smin as i32;
        b.s32_max = self.smax as i32;
        b.var_off = b.var_off.with_subreg(self.var_off);
    }

    /// Writes this lane into a fresh value as an instruction of the lane's width would leave
    /// the register: a 32-bit lane is zero-extended; a 64-bit lane keeps `low` (if given) as
    /// its 32-bit view. Synced.
    pub fn into_bounds(self, low: Option<Lane>) -> ScalarBounds {
        if self.is_empty() || low.is_some_and(|l| l.is_empty()) {
            return ScalarBounds::empty();
        }
        let mut b = ScalarBounds::unknown();
        if self.bits == 32 {
            self.store32(&mut b);
            return b.zero_extend_32();
        }
        self.store64(&mut b);
        if let Some(low) = low {
            // The 64-bit tnum already describes the low half; only the ranges are added,
            // and the low tnum is intersected in (both describe the same bits).
            b.u32_min = low.umin as u32;
            b.u32_max = low.umax as u32;
            b.s32_min = low.smin as i32;
            b.s32_max = low.smax as i32;
            match b.var_off.subreg().try_intersect(low.var_off) {
                Some(t) => b.var_off = b.var_off.with_subreg(t),
                None => return ScalarBounds::empty(),
            }
        }
        b.synced()
    }
}
