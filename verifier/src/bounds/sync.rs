//! Re-deriving each component of a [`ScalarBounds`] from the others (kernel: `reg_bounds_sync`).
//!
//! Why one function: transfer functions and branch refinement each compute whatever
//! components they are good at and leave the rest loose; one place then propagates facts
//! between components, so that every caller gets the same (and the same sound) tightening.
//!
//! Every step is an intersection with a set that provably contains all members, so the
//! members never change, only the description gets tighter. Steps:
//! 1. ranges from the tnum (its smallest/largest members in each reading);
//! 2. 32-bit ranges from 64-bit ones, when the 64-bit range does not wrap the low half;
//! 3. signed from unsigned and back, at both widths, including the case where a signed range
//!    crosses zero but the unsigned range sits on one side of it;
//! 4. 64-bit ranges from 32-bit ones, when the upper half is pinned by the 64-bit bounds;
//! 5. the tnum from the unsigned ranges (both widths).
//!
//! The steps repeat (a few rounds at most) until nothing changes; a contradiction (an
//! inverted range, tnums that disagree) yields [`ScalarBounds::empty`].

use super::ScalarBounds;
use crate::tnum::Tnum;

/// Rounds of propagation before giving up on reaching a fixpoint. Three suffice for the
/// chains that occur in practice (tnum → u64 → s64 → s32 → tnum); more only costs time.
const MAX_ROUNDS: usize = 4;

impl ScalarBounds {
    /// Tightens every component from the others; see the module documentation. Idempotent in
    /// practice (a bounded fixpoint iteration), and sound: no member is ever lost.
    pub fn sync(&mut self) {
        // Shortcuts for the two commonest values, with the same result as the rounds below:
        // a known tnum pins every range to its value (or contradicts one), and nothing
        // tightens a value about which nothing is known.
        if self.var_off.is_const() {
            let k = ScalarBounds::constant(self.var_off.value());
            *self = if k.is_subset_of(self) || (!self.is_empty() && self.kernel_takes_tnum_max()) {
                k
            } else {
                ScalarBounds::empty()
            };
            return;
        }
        if *self == ScalarBounds::unknown() {
            return;
        }
        self.sync_rounds();
    }

    /// The propagation rounds themselves (what [`ScalarBounds::sync`] shortcuts).
    pub(crate) fn sync_rounds(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if self.is_empty() {
                *self = ScalarBounds::empty();
                return;
            }
            let before = *self;
            self.ranges_from_tnum();
            self.deduce_32_from_64();
            self.deduce_signedness_64();
            self.deduce_signedness_32();
            self.deduce_64_from_32();
            self.deduce_signedness_64();
            self.deduce_32_from_64();
            if self.is_empty() || !self.tnum_from_ranges() {
                *self = ScalarBounds::empty();
                return;
            }
            self.ranges_from_tnum();
            if *self == before {
                break;
            }
        }
        if self.is_empty() {
            *self = ScalarBounds::empty();
        }
    }

    /// Whether the first tnum member past a `umin` outside the tnum is its largest one and
    /// lies above `umax`: no member is in range, yet Linux 6.18 takes that member as the
    /// value (it does not compare it with `umax`). With no member any value is sound, and
    /// taking the kernel's keeps what a linked copy learns from it (shifted by a delta) the
    /// same as in the kernel, rather than an empty set that decides every later branch.
    fn kernel_takes_tnum_max(&self) -> bool {
        let t = self.var_off;
        !t.contains_value(self.umin)
            && t.umax() > self.umax
            && t.next_member_after(self.umin) == Some(t.umax())
    }

    fn meet_u64(&mut self, lo: u64, hi: u64) {
        self.umin = self.umin.max(lo);
        self.umax = self.umax.min(hi);
    }

    fn meet_s64(&mut self, lo: i64, hi: i64) {
        self.smin = self.smin.max(lo);
        self.smax = self.smax.min(hi);
    }

    fn meet_u32(&mut self, lo: u32, hi: u32) {
        self.u32_min = self.u32_min.max(lo);
        self.u32_max = self.u32_max.min(hi);
    }

    fn meet_s32(&mut self, lo: i32, hi: i32) {
        self.s32_min = self.s32_min.max(lo);
        self.s32_max = self.s32_max.min(hi);
    }

    /// Step 1: each reading's extremes of the tnum bound the members. And, as Linux 6.18
    /// does for the unsigned 64-bit range: if only one tnum member lies in it, the value is
    /// that member (`umax=6` with known bits `(0x3; 0x4)`, i.e. {3, 7}, means 3; without
    /// this we refused programs the kernel accepts, found by tests/refinement_probes.rs).
    fn ranges_from_tnum(&mut self) {
        let t = self.var_off;
        let first = if t.contains_value(self.umin) {
            Some(self.umin)
        } else {
            t.next_member_after(self.umin)
        };
        if let Some(f) = first
            && f <= self.umax
            && t.next_member_after(f).is_none_or(|n| n > self.umax)
        {
            self.meet_u64(f, f);
        } else if self.kernel_takes_tnum_max() {
            *self = ScalarBounds::constant(t.umax());
            return;
        }
        self.meet_u64(t.umin(), t.umax());
        self.meet_s64(t.smin(), t.smax());
        self.meet_u32(t.u32_min(), t.u32_max());
        self.meet_s32(t.s32_min(), t.s32_max());
    }

    /// Step 2: if a 64-bit range stays inside one 2^32-aligned block, the low halves of its
    /// members run monotonically from the low half of its minimum to that of its maximum.
    /// If it spans exactly two adjacent blocks and the low halves wrap from "negative" to
    /// "non-negative", they are contiguous in the signed 32-bit reading (…, -1, 0, …).
    fn deduce_32_from_64(&mut self) {
        let (lo, hi) = (self.umin, self.umax);
        if lo >> 32 == hi >> 32 {
            self.meet_u32(lo as u32, hi as u32);
            if (lo as i32) <= (hi as i32) {
                self.meet_s32(lo as i32, hi as i32);
            }
        } else if (lo >> 32).wrapping_add(1) == hi >> 32 && (lo as i32) < 0 && (hi as i32) >= 0 {
            self.meet_s32(lo as i32, hi as i32);
        }
        let (lo, hi) = (self.smin, self.smax);
        if lo >> 32 == hi >> 32 {
            self.meet_u32(lo as u32, hi as u32);
            if (lo as i32) <= (hi as i32) {
                self.meet_s32(lo as i32, hi as i32);
            }
        } else if (lo >> 32).wrapping_add(1) == hi >> 32 && (lo as i32) < 0 && (hi as i32) >= 0 {
            self.meet_s32(lo as i32, hi as i32);
        }
    }

    /// Step 3 (64-bit): a range that does not cross the sign boundary means the same in both
    /// readings. A signed range that does cross it is two unsigned pieces, `[0, smax]` and
    /// `[smin as u64, MAX]`; if the unsigned range lies within one piece, both tighten.
    fn deduce_signedness_64(&mut self) {
        if (self.umin as i64) <= (self.umax as i64) {
            self.meet_s64(self.umin as i64, self.umax as i64);
        }
        if (self.smin as u64) <= (self.smax as u64) {
            self.meet_u64(self.smin as u64, self.smax as u64);
        } else if self.umax < self.smin as u64 {
            // Every member is in the non-negative piece.
            self.meet_u64(0, self.smax as u64);
            self.meet_s64(self.umin as i64, i64::MAX);
        } else if (self.smax as u64) < self.umin {
            // Every member is in the negative piece.
            self.meet_u64(self.smin as u64, u64::MAX);
            self.meet_s64(i64::MIN, self.umax as i64);
        }
    }

    /// Step 3 (32-bit): the same reasoning on the low halves.
    fn deduce_signedness_32(&mut self) {
        if (self.u32_min as i32) <= (self.u32_max as i32) {
            self.meet_s32(self.u32_min as i32, self.u32_max as i32);
        }
        if (self.s32_min as u32) <= (self.s32_max as u32) {
            self.meet_u32(self.s32_min as u32, self.s32_max as u32);
        } else if self.u32_max < self.s32_min as u32 {
            self.meet_u32(0, self.s32_max as u32);
            self.meet_s32(self.u32_min as i32, i32::MAX);
        } else if (self.s32_max as u32) < self.u32_min {
            self.meet_u32(self.s32_min as u32, u32::MAX);
            self.meet_s32(i32::MIN, self.u32_max as i32);
        }
    }

    /// Step 4: a member `x >= umin` whose upper half equals `umin`'s has a low half of at least
    /// `u32_min`, and any member with a larger upper half is larger anyway; so `umin` may be
    /// raised to its own upper half joined with `u32_min` (likewise for the other three
    /// bounds; signed order compares the upper half signed and the low half unsigned).
    /// And a value in `[i32::MIN, i32::MAX]` is the sign extension of its low half, so a
    /// non-negative signed 32-bit range then bounds it directly.
    fn deduce_64_from_32(&mut self) {
        const HIGH: u64 = !0xffff_ffff;
        let (lo32, hi32) = (u64::from(self.u32_min), u64::from(self.u32_max));
        self.meet_u64((self.umin & HIGH) | lo32, (self.umax & HIGH) | hi32);
        self.meet_s64(
            ((self.smin as u64 & HIGH) | lo32) as i64,
            ((self.smax as u64 & HIGH) | hi32) as i64,
        );
        // Only for a non-negative low half, as in Linux 6.18 (`__reg_deduce_mixed_bounds`):
        // doing it for any low half is just as sound but learns more than the kernel, which
        // made us accept what it refuses (`r0` in [-8, 7], `if w0 s<= 0` then `if r0 s<= 0`;
        // tests/refinement_probes.rs).
        //
        // And, as there, the 64-bit ranges are *replaced* by the signed 32-bit range, not
        // intersected with it: a tighter 64-bit range (learnt after the 32-bit ranges were
        // last derived) is given up. E.g. s64 [-(2^32-5), 4] with `if r0 < 48` taken: u64
        // [0, 47] gives s32 [0, 47], then s64 [0, 4], which this step resets to [0, 47].
        // Intersecting (sound, tighter) made us prune a path the kernel explores and accept
        // a program it refuses (tests/refinement_probes.rs, FIXED).
        if self.s32_min >= 0 && self.smin >= i64::from(i32::MIN) && self.smax <= i64::from(i32::MAX)
        {
            self.reset_64_to_s32();
        }
    }

    /// The 64-bit ranges become the signed 32-bit range (non-negative, so the same in every
    /// reading); the tnum is narrowed to it in step 5. Sound when the value is known to be the
    /// sign extension of its low half, which the caller checks.
    fn reset_64_to_s32(&mut self) {
        let (lo, hi) = (i64::from(self.s32_min), i64::from(self.s32_max));
        self.smin = lo;
        self.smax = hi;
        self.umin = lo as u64;
        self.umax = hi as u64;
    }

    /// Step 5: the tnum of the unsigned range, intersected into `var_off`, at both widths.
    /// Returns `false` if the tnum contradicts a range (no member left).
    fn tnum_from_ranges(&mut self) -> bool {
        let Some(full) = self
            .var_off
            .try_intersect(Tnum::range(self.umin, self.umax))
        else {
            return false;
        };
        let low = Tnum::range(u64::from(self.u32_min), u64::from(self.u32_max));
        let Some(low) = full.subreg().try_intersect(low) else {
            return false;
        };
        self.var_off = full.with_subreg(low);
        true
    }
}
