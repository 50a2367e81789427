//! Tracked numbers ("tnums"): a 64-bit value of which each bit is known 0, known 1, or unknown.
//!
//! Why this exists: ranges alone cannot say "the low three bits are zero" (alignment) or
//! "only the low byte can be set" (after `& 0xff`), and bit operations are exactly what ranges
//! handle worst. The kernel verifier therefore tracks a tnum next to its ranges in every scalar
//! register (`var_off`); [`crate::bounds::ScalarBounds`] does the same.
//!
//! Representation: `value` holds the known-1 bits, `mask` the unknown bits; a bit set in
//! neither is known 0. The invariant `value & mask == 0` is enforced by the constructors, so a
//! `Tnum` always denotes a non-empty set: `{ x | x & !mask == value }`.
//!
//! Every operation is sound: if `x ∈ a` and `y ∈ b` then `op(x, y) ∈ a.op(b)`, with the
//! wrap-around (mod 2^64) arithmetic of eBPF. The proptests at the bottom check exactly that.

use std::fmt;

use vm_core::isa::Width;

/// A tracked number: known-1 bits in `value`, unknown bits in `mask`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Tnum {
    value: u64,
    mask: u64,
}

impl Default for Tnum {
    /// The unknown tnum: the least informative, hence the safe default.
    fn default() -> Self {
        Tnum::UNKNOWN
    }
}

const LOW32: u64 = 0xffff_ffff;

impl Tnum {
    /// Every bit unknown.
    pub const UNKNOWN: Tnum = Tnum {
        value: 0,
        mask: u64::MAX,
    };

    /// A tnum from raw parts; bits set in `mask` are cleared from `value` to keep the invariant.
    pub const fn new(value: u64, mask: u64) -> Tnum {
        Tnum {
            value: value & !mask,
            mask,
        }
    }

    /// The single value `v`.
    pub const fn constant(v: u64) -> Tnum {
        Tnum { value: v, mask: 0 }
    }

    /// Every bit unknown.
    pub const fn unknown() -> Tnum {
        Tnum::UNKNOWN
    }

    /// The known-1 bits.
    pub const fn value(self) -> u64 {
        self.value
    }

    /// The unknown bits.
    pub const fn mask(self) -> u64 {
        self.mask
    }

    /// The smallest tnum holding every value of `min..=max`: the bits above the highest bit
    /// in which `min` and `max` differ are shared by the whole range; all bits from that one
    /// down are unknown. An inverted range (`min > max`) yields the same shape, which is still
    /// a superset of the (empty) range.
    pub fn range(min: u64, max: u64) -> Tnum {
        let differing = min ^ max;
        let bits = 64 - differing.leading_zeros();
        if bits >= 64 {
            return Tnum::UNKNOWN;
        }
        let delta = (1u64 << bits) - 1;
        Tnum::new(min & !delta, delta)
    }

    /// Whether every bit is known.
    pub const fn is_const(self) -> bool {
        self.mask == 0
    }

    /// Whether every bit is unknown.
    pub const fn is_unknown(self) -> bool {
        self.mask == u64::MAX
    }

    /// Whether the concrete value `v` is a member.
    pub const fn contains_value(self, v: u64) -> bool {
        v & !self.mask == self.value
    }

    /// The smallest member greater than `x`, if any. Such a member agrees with `x` above
    /// some bit `i`, has a 1 at `i` where `x` has a 0, and is as small as possible below
    /// `i`; the lowest such `i` gives the smallest member.
    pub fn next_member_after(self, x: u64) -> Option<u64> {
        let fixed = !self.mask;
        for i in 0..64u32 {
            let bit = 1u64 << i;
            let above = if i == 63 { 0 } else { !((bit << 1) - 1) };
            let prefix_ok = (x ^ self.value) & fixed & above == 0;
            let can_set = self.mask & bit != 0 || self.value & bit != 0;
            if prefix_ok && x & bit == 0 && can_set {
                return Some((x & above) | bit | (self.value & (bit - 1)));
            }
        }
        None
    }

    /// Whether every member of `other` is a member of `self` (the kernel's `tnum_in`):
    /// `other` may not leave unknown a bit that `self` knows, and the bits `self` knows must agree.
    pub const fn contains(self, other: Tnum) -> bool {
        if other.mask & !self.mask != 0 {
            return false;
        }
        other.value & !self.mask == self.value
    }

    /// Whether every member is a multiple of `size` (a power of two; 0 or 1 always aligned).
    pub const fn is_aligned(self, size: u64) -> bool {
        if size <= 1 {
            return true;
        }
        (self.value | self.mask) & (size - 1) == 0
    }

    /// Smallest member as unsigned (all unknown bits 0).
    pub const fn umin(self) -> u64 {
        self.value
    }

    /// Largest member as unsigned (all unknown bits 1).
    pub const fn umax(self) -> u64 {
        self.value | self.mask
    }

    /// Smallest member as signed: the sign bit 1 if it may be, every other unknown bit 0.
    pub const fn smin(self) -> i64 {
        (self.value | (self.mask & (1 << 63))) as i64
    }

    /// Largest member as signed: the sign bit 0 if it may be, every other unknown bit 1.
    pub const fn smax(self) -> i64 {
        (self.value | (self.mask & !(1 << 63))) as i64
    }

    /// Smallest low half as unsigned 32-bit.
    pub const fn u32_min(self) -> u32 {
        self.value as u32
    }

    /// Largest low half as unsigned 32-bit.
    pub const fn u32_max(self) -> u32 {
        (self.value | self.mask) as u32
    }

    /// Smallest low half as signed 32-bit.
    pub const fn s32_min(self) -> i32 {
        (self.value as u32 | (self.mask as u32 & (1 << 31))) as i32
    }

    /// Largest low half as signed 32-bit.
    pub const fn s32_max(self) -> i32 {
        (self.value as u32 | (self.mask as u32 & !(1 << 31))) as i32
    }

    /// Left shift; amounts of 64 or more give 0 (a pure shift, not eBPF's masked one).
    pub const fn lshift(self, shift: u32) -> Tnum {
        if shift >= 64 {
            return Tnum::constant(0);
        }
        Tnum::new(self.value << shift, self.mask << shift)
    }

    /// Logical right shift; amounts of 64 or more give 0.
    pub const fn rshift(self, shift: u32) -> Tnum {
        if shift >= 64 {
            return Tnum::constant(0);
        }
        Tnum::new(self.value >> shift, self.mask >> shift)
    }

    /// Arithmetic right shift at `width`: for 32 bits the low half is shifted as an `i32` and
    /// the result zero-extended (as an ALU32 `arsh` leaves it). Amounts beyond the width
    /// saturate to a full sign fill. An unknown sign bit makes every vacated bit unknown.
    pub const fn arshift(self, shift: u32, width: Width) -> Tnum {
        match width {
            Width::W64 => {
                let s = if shift > 63 { 63 } else { shift };
                Tnum::new(
                    ((self.value as i64) >> s) as u64,
                    ((self.mask as i64) >> s) as u64,
                )
            }
            Width::W32 => {
                let s = if shift > 31 { 31 } else { shift };
                let v = ((self.value as u32 as i32) >> s) as u32 as u64;
                let m = ((self.mask as u32 as i32) >> s) as u32 as u64;
                Tnum::new(v, m)
            }
        }
    }

    /// Sum mod 2^64. A bit of the result is unknown when it is unknown in an operand or when a
    /// carry into it may differ between the smallest and the largest choice of unknown bits.
    pub const fn add(self, other: Tnum) -> Tnum {
        let mask_sum = self.mask.wrapping_add(other.mask);
        let value_sum = self.value.wrapping_add(other.value);
        let carries_differ = mask_sum.wrapping_add(value_sum) ^ value_sum;
        let unknown = carries_differ | self.mask | other.mask;
        Tnum::new(value_sum, unknown)
    }

    /// Difference mod 2^64; the borrow counterpart of [`Tnum::add`].
    pub const fn sub(self, other: Tnum) -> Tnum {
        let diff = self.value.wrapping_sub(other.value);
        let highest = diff.wrapping_add(self.mask);
        let lowest = diff.wrapping_sub(other.mask);
        let unknown = (highest ^ lowest) | self.mask | other.mask;
        Tnum::new(diff, unknown)
    }

    /// Two's-complement negation.
    pub const fn neg(self) -> Tnum {
        Tnum::constant(0).sub(self)
    }

    /// Bitwise and: known 1 where both are known 1, known 0 where either is known 0.
    pub const fn and(self, other: Tnum) -> Tnum {
        let may_be_one = (self.value | self.mask) & (other.value | other.mask);
        let surely_one = self.value & other.value;
        Tnum::new(surely_one, may_be_one & !surely_one)
    }

    /// Bitwise or: known 1 where either is known 1, known 0 where both are known 0.
    pub const fn or(self, other: Tnum) -> Tnum {
        let surely_one = self.value | other.value;
        Tnum::new(surely_one, (self.mask | other.mask) & !surely_one)
    }

    /// Bitwise xor: known where both are known.
    pub const fn xor(self, other: Tnum) -> Tnum {
        Tnum::new(self.value ^ other.value, self.mask | other.mask)
    }

    /// Product mod 2^64, by long multiplication over the bits of `self`: the known bits'
    /// product is exact, and each partial product that involves an unknown bit is added as an
    /// "anything up to this" term. Sound; less precise than exhaustive reasoning when many
    /// bits are unknown.
    pub const fn mul(self, other: Tnum) -> Tnum {
        let known_product = self.value.wrapping_mul(other.value);
        let mut uncertainty = Tnum::constant(0);
        let mut a = self;
        let mut b = other;
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                // This bit of `a` is 1: its partial product is `b`, whose known part is already
                // in `known_product`; only `b`'s unknown bits add uncertainty.
                uncertainty = uncertainty.add(Tnum::new(0, b.mask));
            } else if a.mask & 1 != 0 {
                // Unknown bit of `a`: the partial product is 0 or `b`.
                uncertainty = uncertainty.add(Tnum::new(0, b.value | b.mask));
            }
            a = a.rshift(1);
            b = b.lshift(1);
        }
        Tnum::constant(known_product).add(uncertainty)
    }

    /// Intersection of two descriptions of the same value (the kernel's `tnum_intersect`):
    /// known bits of either are kept. When the two disagree on a known bit the true
    /// intersection is empty; this returns some tnum anyway (use [`Tnum::try_intersect`] to
    /// detect that case).
    pub const fn intersect(self, other: Tnum) -> Tnum {
        let value = self.value | other.value;
        let mask = self.mask & other.mask;
        Tnum::new(value, mask)
    }

    /// Intersection, or `None` when the two disagree on a bit both know (no common member).
    pub const fn try_intersect(self, other: Tnum) -> Option<Tnum> {
        if (self.value ^ other.value) & !(self.mask | other.mask) != 0 {
            None
        } else {
            Some(self.intersect(other))
        }
    }

    /// Join: the smallest tnum holding every member of both (bits on which they disagree
    /// become unknown).
    pub const fn union(self, other: Tnum) -> Tnum {
        let unknown = self.mask | other.mask | (self.value ^ other.value);
        Tnum::new(self.value & other.value, unknown)
    }

    /// Truncation to the low `bytes` bytes (1, 2, 4 or 8; other sizes are rounded up to the
    /// next of these), zero-extended.
    pub const fn cast(self, bytes: u8) -> Tnum {
        let keep = match bytes {
            0 => 0,
            1 => 0xff,
            2 => 0xffff,
            3 | 4 => LOW32,
            _ => u64::MAX,
        };
        Tnum::new(self.value & keep, self.mask & keep)
    }

    /// The low 32 bits, zero-extended (the subregister an ALU32 instruction sees).
    pub const fn subreg(self) -> Tnum {
        self.cast(4)
    }

    /// The upper 32 bits with the low half known 0.
    pub const fn clear_subreg(self) -> Tnum {
        Tnum::new(self.value & !LOW32, self.mask & !LOW32)
    }

    /// The upper half of `self` with the low half taken from `sub`'s low half.
    pub const fn with_subreg(self, sub: Tnum) -> Tnum {
        self.clear_subreg().or(sub.subreg())
    }

    /// The upper half of `self` with the low half known to be `value`.
    pub const fn const_subreg(self, value: u32) -> Tnum {
        self.with_subreg(Tnum::constant(value as u64))
    }

    /// Byte swap of the low `bits` bits (16, 32 or 64), zero-extended: exact, since each bit
    /// just moves.
    pub const fn byte_swap(self, bits: u32) -> Tnum {
        match bits {
            16 => Tnum::new(
                (self.value as u16).swap_bytes() as u64,
                (self.mask as u16).swap_bytes() as u64,
            ),
            32 => Tnum::new(
                (self.value as u32).swap_bytes() as u64,
                (self.mask as u32).swap_bytes() as u64,
            ),
            _ => Tnum::new(self.value.swap_bytes(), self.mask.swap_bytes()),
        }
    }

    /// Sign extension of the low `bits` bits (1..=64) to 64 bits: the bits above copy bit
    /// `bits - 1`, known or not.
    pub const fn sign_extend(self, bits: u32) -> Tnum {
        if bits == 0 || bits >= 64 {
            return self;
        }
        let shift = 64 - bits;
        Tnum::new(
            (((self.value << shift) as i64) >> shift) as u64,
            (((self.mask << shift) as i64) >> shift) as u64,
        )
    }
}

impl fmt::Display for Tnum {
    /// `(0x<value>; 0x<mask>)`, as the kernel's verifier log prints `var_off`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:#x}; {:#x})", self.value, self.mask)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_member_after_examples() {
        let t = super::Tnum::new(3, 4); // {3, 7}
        assert_eq!(t.next_member_after(0), Some(3));
        assert_eq!(t.next_member_after(3), Some(7));
        assert_eq!(t.next_member_after(5), Some(7));
        assert_eq!(t.next_member_after(7), None);
        assert_eq!(super::Tnum::UNKNOWN.next_member_after(41), Some(42));
        assert_eq!(super::Tnum::UNKNOWN.next_member_after(u64::MAX), None);
        let t = super::Tnum::new(0x10, 0x0f00);
        assert_eq!(t.next_member_after(0x111), Some(0x210));
        for x in 0..64u64 {
            let brute = (x + 1..64).find(|&y| t.contains_value(y));
            assert_eq!(t.next_member_after(x).filter(|&y| y < 64), brute, "{x}");
        }
    }

    use proptest::prelude::*;

    use super::*;

    /// A tnum holding `x`: the bits in `unknown` are forgotten.
    fn around(x: u64, unknown: u64) -> Tnum {
        Tnum::new(x, unknown)
    }

    fn interesting() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            (-40i64..40).prop_map(|v| v as u64),
            (0u32..64, -2i64..=2).prop_map(|(k, d)| (1u64 << k).wrapping_add(d as u64)),
            any::<u32>().prop_map(u64::from),
            any::<i32>().prop_map(|v| v as i64 as u64),
        ]
    }

    fn masks() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(u64::MAX),
            any::<u64>(),
            (any::<u64>(), any::<u64>()).prop_map(|(a, b)| a & b),
            (0u32..64).prop_map(|k| (1u64 << k) - 1),
            (0u32..64).prop_map(|k| u64::MAX << k),
        ]
    }

    #[test]
    fn display_matches_kernel_log() {
        assert_eq!(Tnum::new(0, 0xff).to_string(), "(0x0; 0xff)");
        assert_eq!(Tnum::constant(0x10).to_string(), "(0x10; 0x0)");
    }

    #[test]
    fn range_examples() {
        assert_eq!(Tnum::range(0, 255), Tnum::new(0, 0xff));
        assert_eq!(Tnum::range(16, 31), Tnum::new(16, 0xf));
        assert_eq!(Tnum::range(7, 7), Tnum::constant(7));
        assert!(Tnum::range(0, u64::MAX).is_unknown());
    }

    #[test]
    fn and_with_mask_bounds_low_byte() {
        let t = Tnum::UNKNOWN.and(Tnum::constant(0xff));
        assert_eq!(t, Tnum::new(0, 0xff));
        assert_eq!(t.umax(), 255);
        assert!(t.is_aligned(1));
        assert!(Tnum::UNKNOWN.lshift(3).is_aligned(8));
        assert!(!Tnum::UNKNOWN.lshift(2).is_aligned(8));
    }

    #[test]
    fn subreg_helpers() {
        let t = Tnum::new(0x1_0000_0000, 0xff);
        assert_eq!(t.subreg(), Tnum::new(0, 0xff));
        assert_eq!(t.clear_subreg(), Tnum::constant(0x1_0000_0000));
        assert_eq!(t.const_subreg(5), Tnum::constant(0x1_0000_0005));
        assert_eq!(
            Tnum::constant(0x8000_0000).arshift(31, Width::W32),
            Tnum::constant(LOW32)
        );
        assert_eq!(
            Tnum::constant(0x80).sign_extend(8),
            Tnum::constant(u64::MAX - 0x7f)
        );
    }

    #[test]
    fn signed_extremes() {
        let t = Tnum::new(1, 1 << 63);
        assert_eq!(t.smin(), i64::MIN + 1);
        assert_eq!(t.smax(), 1);
        assert_eq!(Tnum::new(0, 0x8000_0001).s32_min(), i32::MIN);
        assert_eq!(Tnum::new(0, 0x8000_0001).s32_max(), 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        #[test]
        fn binary_ops_are_sound(
            x in interesting(), y in interesting(), mx in masks(), my in masks(), s in 0u32..70,
        ) {
            let (a, b) = (around(x, mx), around(y, my));
            prop_assert!(a.contains_value(x) && a.value() & a.mask() == 0);
            let checks: [(&str, Tnum, u64); 14] = [
                ("add", a.add(b), x.wrapping_add(y)),
                ("sub", a.sub(b), x.wrapping_sub(y)),
                ("mul", a.mul(b), x.wrapping_mul(y)),
                ("and", a.and(b), x & y),
                ("or", a.or(b), x | y),
                ("xor", a.xor(b), x ^ y),
                ("neg", a.neg(), x.wrapping_neg()),
                ("lsh", a.lshift(s), x.checked_shl(s).unwrap_or(0)),
                ("rsh", a.rshift(s), x.checked_shr(s).unwrap_or(0)),
                ("arsh64", a.arshift(s, Width::W64), ((x as i64) >> s.min(63)) as u64),
                ("arsh32", a.arshift(s, Width::W32), ((x as i32) >> s.min(31)) as u32 as u64),
                ("union", a.union(b), y),
                ("swap16", a.byte_swap(16), u64::from((x as u16).swap_bytes())),
                ("sext8", a.sign_extend(8), x as i8 as i64 as u64),
            ];
            for (name, t, want) in checks {
                prop_assert!(t.contains_value(want), "{} {} !∋ {:#x}", name, t, want);
                prop_assert_eq!(t.value() & t.mask(), 0);
            }
            prop_assert!(a.union(b).contains(a) && a.union(b).contains(b));
            prop_assert!(a.cast(2).contains_value(x & 0xffff));
            prop_assert!(a.subreg().contains_value(x & LOW32));
            prop_assert!(a.with_subreg(b).contains_value((x & !LOW32) | (y & LOW32)));
            prop_assert!(a.byte_swap(32).contains_value(u64::from((x as u32).swap_bytes())));
            prop_assert!(a.byte_swap(64).contains_value(x.swap_bytes()));
            prop_assert!(a.sign_extend(32).contains_value(x as i32 as i64 as u64));
            prop_assert!(a.umin() <= x && x <= a.umax());
            prop_assert!(a.smin() <= x as i64 && x as i64 <= a.smax());
            prop_assert!(a.u32_min() <= x as u32 && x as u32 <= a.u32_max());
            prop_assert!(a.s32_min() <= x as i32 && x as i32 <= a.s32_max());
        }

        #[test]
        fn intersect_keeps_common_members(x in interesting(), m1 in masks(), m2 in masks()) {
            let (a, b) = (around(x, m1), around(x, m2));
            let i = a.try_intersect(b);
            prop_assert_eq!(i, Some(a.intersect(b)));
            prop_assert!(a.intersect(b).contains_value(x));
        }

        #[test]
        fn contains_agrees_with_membership(x in interesting(), y in interesting(), m1 in masks(), m2 in masks()) {
            let (a, b) = (around(x, m1), around(y, m2));
            // Subset implies membership of a sample member, and constants are decided exactly.
            if a.contains(b) {
                prop_assert!(a.contains_value(y));
            }
            prop_assert_eq!(a.contains(Tnum::constant(y)), a.contains_value(y));
            if a.try_intersect(b).is_none() {
                prop_assert!(!(a.contains_value(y) && b.contains_value(y)));
            }
        }

        #[test]
        fn range_holds_its_members(lo in interesting(), w in any::<u64>(), pick in any::<u64>()) {
            let hi = lo.saturating_add(w >> (pick % 64));
            let x = if hi == lo { lo } else { lo + pick % (hi - lo) };
            let t = Tnum::range(lo, hi);
            prop_assert!(t.contains_value(lo) && t.contains_value(hi) && t.contains_value(x));
        }
    }
}
