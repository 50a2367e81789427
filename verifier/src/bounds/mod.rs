//! The abstract value of a scalar register: a tnum plus four ranges, the kernel's model.
//!
//! Why five components: each one is precise where the others are weak. Unsigned ranges
//! bound array indices, signed ranges survive sign-extending code, the 32-bit pair follows
//! ALU32/JMP32 code (which only ever sees the low half), and the tnum follows bit
//! manipulation and alignment. A concrete value is a member only if it satisfies all five;
//! [`ScalarBounds::sync`] lets each component learn from the others.
//!
//! Submodules, one concern each:
//! - [`sync`](ScalarBounds::sync): the re-derivation between components (kernel `reg_bounds_sync`);
//! - [`alu`]: transfer functions for every ALU instruction;
//! - [`branch`]: refinement on conditional jumps and known outcomes;
//! - [`concrete`]: the exact eBPF run-time semantics, used for constant folding.

pub mod alu;
pub mod branch;
pub mod concrete;
mod lane;
mod sync;

#[cfg(test)]
mod tests;

use crate::tnum::Tnum;

/// What the verifier knows about a scalar: a concrete `x` is a member iff it lies in every
/// range (read as unsigned/signed, 64-bit/low 32-bit) and matches `var_off`'s known bits.
///
/// A value whose ranges are inverted (`min > max` somewhere) has no member; [`ScalarBounds::sync`]
/// turns any contradiction it finds into the canonical [`ScalarBounds::empty`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ScalarBounds {
    /// Known bits (the kernel's name for the register's tnum).
    pub var_off: Tnum,
    /// Minimum as a signed 64-bit value.
    pub smin: i64,
    /// Maximum as a signed 64-bit value.
    pub smax: i64,
    /// Minimum as an unsigned 64-bit value.
    pub umin: u64,
    /// Maximum as an unsigned 64-bit value.
    pub umax: u64,
    /// Minimum of the low 32 bits read as `i32`.
    pub s32_min: i32,
    /// Maximum of the low 32 bits read as `i32`.
    pub s32_max: i32,
    /// Minimum of the low 32 bits read as `u32`.
    pub u32_min: u32,
    /// Maximum of the low 32 bits read as `u32`.
    pub u32_max: u32,
}

impl Default for ScalarBounds {
    /// Unknown: the safe default for a freshly written scalar.
    fn default() -> Self {
        ScalarBounds::unknown()
    }
}

impl ScalarBounds {
    /// Any 64-bit value.
    pub const fn unknown() -> ScalarBounds {
        ScalarBounds {
            var_off: Tnum::UNKNOWN,
            smin: i64::MIN,
            smax: i64::MAX,
            umin: 0,
            umax: u64::MAX,
            s32_min: i32::MIN,
            s32_max: i32::MAX,
            u32_min: 0,
            u32_max: u32::MAX,
        }
    }

    /// Exactly `v`.
    pub const fn constant(v: u64) -> ScalarBounds {
        ScalarBounds {
            var_off: Tnum::constant(v),
            smin: v as i64,
            smax: v as i64,
            umin: v,
            umax: v,
            s32_min: v as i32,
            s32_max: v as i32,
            u32_min: v as u32,
            u32_max: v as u32,
        }
    }

    /// No value at all (every range inverted): the state of an impossible path.
    pub const fn empty() -> ScalarBounds {
        ScalarBounds {
            var_off: Tnum::constant(0),
            smin: i64::MAX,
            smax: i64::MIN,
            umin: u64::MAX,
            umax: 0,
            s32_min: i32::MAX,
            s32_max: i32::MIN,
            u32_min: u32::MAX,
            u32_max: 0,
        }
    }

    /// The values with the given known bits, ranges derived from them.
    pub fn from_tnum(t: Tnum) -> ScalarBounds {
        ScalarBounds {
            var_off: t,
            ..ScalarBounds::unknown()
        }
        .synced()
    }

    /// The unsigned range `min..=max` (empty if `min > max`).
    pub fn from_urange(min: u64, max: u64) -> ScalarBounds {
        ScalarBounds {
            umin: min,
            umax: max,
            ..ScalarBounds::unknown()
        }
        .synced()
    }

    /// The signed range `min..=max` (empty if `min > max`).
    pub fn from_srange(min: i64, max: i64) -> ScalarBounds {
        ScalarBounds {
            smin: min,
            smax: max,
            ..ScalarBounds::unknown()
        }
        .synced()
    }

    /// Whether some range is inverted, so that no value can be a member. (A value can also be
    /// empty through a contradiction between components; `sync` exposes most of those.)
    pub const fn is_empty(&self) -> bool {
        self.umin > self.umax
            || self.smin > self.smax
            || self.u32_min > self.u32_max
            || self.s32_min > self.s32_max
    }

    /// Whether exactly one value is possible.
    pub fn is_const(&self) -> bool {
        self.const_value().is_some()
    }

    /// The single possible value, if there is one.
    pub fn const_value(&self) -> Option<u64> {
        if self.is_empty() {
            None
        } else if self.var_off.is_const() {
            Some(self.var_off.value())
        } else if self.umin == self.umax {
            Some(self.umin)
        } else if self.smin == self.smax {
            Some(self.smin as u64)
        } else {
            None
        }
    }

    /// The single possible low half, if there is one (what a JMP32/ALU32 operand sees).
    pub fn const_value32(&self) -> Option<u32> {
        if self.is_empty() {
            None
        } else if self.var_off.subreg().is_const() {
            Some(self.var_off.value() as u32)
        } else if self.u32_min == self.u32_max {
            Some(self.u32_min)
        } else if self.s32_min == self.s32_max {
            Some(self.s32_min as u32)
        } else {
            None
        }
    }

    /// Whether the concrete value `x` is a member of every component.
    pub const fn contains(&self, x: u64) -> bool {
        let (s, lo, slo) = (x as i64, x as u32, x as i32);
        self.var_off.contains_value(x)
            && self.umin <= x
            && x <= self.umax
            && self.smin <= s
            && s <= self.smax
            && self.u32_min <= lo
            && lo <= self.u32_max
            && self.s32_min <= slo
            && slo <= self.s32_max
    }

    /// Join: componentwise hull, holding every member of both. Not synced, so that
    /// `a.is_subset_of(&a.union(&b))` holds structurally; call [`ScalarBounds::sync`] to tighten.
    /// Empty operands are ignored.
    pub fn union(&self, other: &ScalarBounds) -> ScalarBounds {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        ScalarBounds {
            var_off: self.var_off.union(other.var_off),
            smin: self.smin.min(other.smin),
            smax: self.smax.max(other.smax),
            umin: self.umin.min(other.umin),
            umax: self.umax.max(other.umax),
            s32_min: self.s32_min.min(other.s32_min),
            s32_max: self.s32_max.max(other.s32_max),
            u32_min: self.u32_min.min(other.u32_min),
            u32_max: self.u32_max.max(other.u32_max),
        }
    }

    /// Subsumption for state pruning: every component of `self` lies within the matching
    /// component of `other` (the kernel's `range_within` plus `tnum_in`), which implies every
    /// member of `self` is a member of `other`. Sufficient, not necessary: unsynced or
    /// differently-shaped descriptions of the same set may fail it.
    pub const fn is_subset_of(&self, other: &ScalarBounds) -> bool {
        if self.is_empty() {
            return true;
        }
        other.umin <= self.umin
            && self.umax <= other.umax
            && other.smin <= self.smin
            && self.smax <= other.smax
            && other.u32_min <= self.u32_min
            && self.u32_max <= other.u32_max
            && other.s32_min <= self.s32_min
            && self.s32_max <= other.s32_max
            && other.var_off.contains(self.var_off)
    }

    /// The zero-extension of the low half: what every ALU32 write leaves in the register.
    /// The 32-bit components are kept; the 64-bit ones become the same range, upper half 0.
    pub fn zero_extend_32(&self) -> ScalarBounds {
        if self.is_empty() {
            return ScalarBounds::empty();
        }
        ScalarBounds {
            var_off: self.var_off.subreg(),
            smin: i64::from(self.u32_min),
            smax: i64::from(self.u32_max),
            umin: u64::from(self.u32_min),
            umax: u64::from(self.u32_max),
            ..*self
        }
        .synced()
    }

    /// `self` after [`ScalarBounds::sync`].
    #[must_use]
    pub fn synced(mut self) -> ScalarBounds {
        self.sync();
        self
    }
}
