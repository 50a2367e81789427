//! Conditional jumps: deciding their outcome when the operands allow only one, and narrowing
//! both operands on each edge (the kernel's `is_branch_taken` and `reg_set_min_max`).
//!
//! Why: bounds checks in eBPF programs are ordinary conditional jumps (`if r1 > 16 goto
//! out`); the verifier can only prove the memory access that follows if the fall-through edge
//! knows `r1 <= 16`. Deciding outcomes prunes dead edges, which the kernel does too (and then
//! does not check them), so acceptance depends on it.
//!
//! A JMP32 comparison refines the 32-bit ranges and the low half of the tnum; the 64-bit
//! ranges then learn from them through [`ScalarBounds::sync`] where the upper half allows.
//! When a refined operand turns out empty, that edge is impossible and is reported as `None`.
//! If `dst` and `src` are the same register, the caller should intersect the two results.

use vm_core::isa::{JmpCond, Width};

use super::{
    ScalarBounds,
    lane::{Lane, as_signed, smax_of, smin_of, umax_of},
};
use crate::tnum::Tnum;

/// Both operands of a comparison as narrowed on one edge.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Refined {
    /// The left operand (the register the instruction names as `dst`).
    pub dst: ScalarBounds,
    /// The right operand (a register, or the constant of an immediate comparison).
    pub src: ScalarBounds,
}

/// The two edges of a conditional jump; `None` marks an edge no execution can take.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BranchRefinement {
    /// The jump is taken (the condition holds).
    pub taken: Option<Refined>,
    /// Fall-through (the condition does not hold).
    pub not_taken: Option<Refined>,
}

/// Conditions closed under negation (`JSET`'s negation has no opcode of its own).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cond {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Sgt,
    Sge,
    Slt,
    Sle,
    Set,
    NotSet,
}

impl Cond {
    fn of(c: JmpCond) -> Cond {
        match c {
            JmpCond::Eq => Cond::Eq,
            JmpCond::Ne => Cond::Ne,
            JmpCond::Gt => Cond::Gt,
            JmpCond::Ge => Cond::Ge,
            JmpCond::Lt => Cond::Lt,
            JmpCond::Le => Cond::Le,
            JmpCond::Sgt => Cond::Sgt,
            JmpCond::Sge => Cond::Sge,
            JmpCond::Slt => Cond::Slt,
            JmpCond::Sle => Cond::Sle,
            JmpCond::Set => Cond::Set,
        }
    }

    fn negate(self) -> Cond {
        match self {
            Cond::Eq => Cond::Ne,
            Cond::Ne => Cond::Eq,
            Cond::Gt => Cond::Le,
            Cond::Le => Cond::Gt,
            Cond::Ge => Cond::Lt,
            Cond::Lt => Cond::Ge,
            Cond::Sgt => Cond::Sle,
            Cond::Sle => Cond::Sgt,
            Cond::Sge => Cond::Slt,
            Cond::Slt => Cond::Sge,
            Cond::Set => Cond::NotSet,
            Cond::NotSet => Cond::Set,
        }
    }
}

/// `Some(true)` if every pair of members takes the jump, `Some(false)` if none does, `None`
/// if it depends (or an operand is empty).
pub fn branch_outcome(
    cond: JmpCond,
    width: Width,
    dst: &ScalarBounds,
    src: &ScalarBounds,
) -> Option<bool> {
    if dst.is_empty() || src.is_empty() {
        return None;
    }
    let c = Cond::of(cond);
    let decided = outcome(c, &Lane::of(dst, width), &Lane::of(src, width));
    if decided.is_none() && width == Width::W64 && matches!(c, Cond::Eq | Cond::Ne) {
        // Like the kernel, a 64-bit equality the 64-bit view cannot decide is also decided
        // "never equal" when the low halves' ranges are disjoint (e.g. `if w0 s> -8` then
        // `if r0 != 0xffffffff80000000`: the low half of the constant is below every s32).
        let (a, b) = (Lane::of(dst, Width::W32), Lane::of(src, Width::W32));
        let disjoint = a.umin > b.umax || b.umin > a.umax || a.smin > b.smax || b.smin > a.smax;
        if disjoint {
            return Some(c == Cond::Ne);
        }
    }
    decided
}

fn outcome(c: Cond, a: &Lane, b: &Lane) -> Option<bool> {
    let decide = |yes: bool, no: bool| {
        if yes {
            Some(true)
        } else if no {
            Some(false)
        } else {
            None
        }
    };
    match c {
        Cond::Eq => {
            if let (Some(x), Some(y)) = (a.const_value(), b.const_value()) {
                return Some(x == y);
            }
            let disjoint = a.umin > b.umax
                || b.umin > a.umax
                || a.smin > b.smax
                || b.smin > a.smax
                || a.var_off.try_intersect(b.var_off).is_none();
            disjoint.then_some(false)
        }
        Cond::Ne => outcome(Cond::Eq, a, b).map(|eq| !eq),
        // Like the kernel, decided only against a constant: two unknown operands whose
        // possible bits do not overlap are left undecided (it explores both edges).
        Cond::Set => {
            let (x, m) = match (a.const_value(), b.const_value()) {
                (_, Some(m)) => (a, m),
                (Some(m), None) => (b, m),
                (None, None) => return None,
            };
            decide(x.var_off.value() & m != 0, x.var_off.umax() & m == 0)
        }
        Cond::NotSet => outcome(Cond::Set, a, b).map(|set| !set),
        Cond::Gt => decide(a.umin > b.umax, a.umax <= b.umin),
        Cond::Ge => decide(a.umin >= b.umax, a.umax < b.umin),
        Cond::Sgt => decide(a.smin > b.smax, a.smax <= b.smin),
        Cond::Sge => decide(a.smin >= b.smax, a.smax < b.smin),
        Cond::Lt => outcome(Cond::Gt, b, a),
        Cond::Le => outcome(Cond::Ge, b, a),
        Cond::Slt => outcome(Cond::Sgt, b, a),
        Cond::Sle => outcome(Cond::Sge, b, a),
    }
}

/// Both edges of `if dst cond src` at `width`. An edge whose outcome is decided keeps the
/// operands unchanged (the other edge is `None`); otherwise each edge narrows both operands.
pub fn refine_branch(
    cond: JmpCond,
    width: Width,
    dst: &ScalarBounds,
    src: &ScalarBounds,
) -> BranchRefinement {
    if dst.is_empty() || src.is_empty() {
        return BranchRefinement {
            taken: None,
            not_taken: None,
        };
    }
    let unchanged = Some(Refined {
        dst: *dst,
        src: *src,
    });
    let c = Cond::of(cond);
    match branch_outcome(cond, width, dst, src) {
        Some(true) => BranchRefinement {
            taken: unchanged,
            not_taken: None,
        },
        Some(false) => BranchRefinement {
            taken: None,
            not_taken: unchanged,
        },
        // Undecided: the kernel explores both edges, even when narrowing one of them leaves
        // the ranges and the tnum contradicting each other (its tnum intersection does not
        // detect conflicts, so it goes on with an odd but non-empty state). We see such an
        // edge as empty; pruning it would make us accept programs whose safety the kernel
        // checks on that edge (found by tests/refinement_probes.rs: `r0 <<= 2; if w0 s> 0`,
        // then `if r0 > 1` — the fall-through edge needs r0 == 1, not a multiple of 4). So the
        // edge stays alive and learns nothing, which is sound (any state covers a dead edge)
        // and errs towards refusing.
        None => BranchRefinement {
            taken: refine(c, width, dst, src).or(unchanged),
            not_taken: refine(c.negate(), width, dst, src).or(unchanged),
        },
    }
}

/// Narrows both operands assuming `dst c src` holds; `None` if it cannot.
fn refine(c: Cond, width: Width, dst: &ScalarBounds, src: &ScalarBounds) -> Option<Refined> {
    let (mut a, mut b) = (Lane::of(dst, width), Lane::of(src, width));
    refine_lanes(c, &mut a, &mut b)?;
    if c == Cond::NotSet {
        // Only an operand facing a constant changes (the kernel refines nothing otherwise).
        let src_const = Lane::of(src, width).const_value().is_some();
        let dst_const = Lane::of(dst, width).const_value().is_some();
        return Some(Refined {
            dst: if src_const {
                forget_ranges(dst, &a, width)
            } else {
                *dst
            },
            src: if dst_const && !src_const {
                forget_ranges(src, &b, width)
            } else {
                *src
            },
        });
    }
    Some(Refined {
        dst: write_back(dst, &a, width)?,
        src: write_back(src, &b, width)?,
    })
}

/// The "bits clear" edge of `JSET` against a constant, as Linux 6.18 leaves it: the
/// non-constant operand keeps only its tnum (with the constant's bits cleared), and every
/// range is re-derived from that tnum; what the ranges knew before is forgotten (measured:
/// `if r0 <= 1000` then `if r0 & 1` leaves the fall-through edge with `umax=1022`, for
/// `jset32` too, where even the 64-bit ranges go). Learning more would make us accept
/// programs the kernel refuses (tests/refinement_probes.rs). A constant operand is unchanged.
fn forget_ranges(orig: &ScalarBounds, lane: &Lane, width: Width) -> ScalarBounds {
    let t = match width {
        Width::W64 => lane.var_off,
        Width::W32 => orig.var_off.with_subreg(lane.var_off),
    };
    ScalarBounds::from_tnum(t)
}

fn write_back(orig: &ScalarBounds, lane: &Lane, width: Width) -> Option<ScalarBounds> {
    if lane.is_empty() {
        return None;
    }
    let mut r = *orig;
    match width {
        Width::W64 => lane.store64(&mut r),
        Width::W32 => lane.store32(&mut r),
    }
    r.sync();
    (!r.is_empty()).then_some(r)
}

fn refine_lanes(c: Cond, a: &mut Lane, b: &mut Lane) -> Option<()> {
    match c {
        Cond::Eq => {
            let t = a.var_off.try_intersect(b.var_off)?;
            let both = Lane {
                bits: a.bits,
                umin: a.umin.max(b.umin),
                umax: a.umax.min(b.umax),
                smin: a.smin.max(b.smin),
                smax: a.smax.min(b.smax),
                var_off: t,
            };
            *a = both;
            *b = both;
        }
        Cond::Ne => {
            if let Some(y) = b.const_value() {
                exclude(a, y)?;
            }
            if let Some(x) = a.const_value() {
                exclude(b, x)?;
            }
        }
        Cond::Set => {
            // x & y != 0: a single-bit constant must be set in the other operand. "Neither is
            // 0" is true as well, but the kernel (6.18) does not learn it, and learning more
            // than the kernel makes paths it explores look dead here: we would accept programs
            // it refuses (found by kernel_fuzz: `jset r0, 3` then a NULL check of r0).
            if let Some(y) = b.const_value().filter(|y| y.is_power_of_two()) {
                a.var_off = a.var_off.try_intersect(Tnum::new(y, !y))?;
            }
            if let Some(x) = a.const_value().filter(|x| x.is_power_of_two()) {
                b.var_off = b.var_off.try_intersect(Tnum::new(x, !x))?;
            }
        }
        Cond::NotSet => {
            // x & y == 0: the constant's bits are clear in the other operand.
            let m = umax_of(a.bits);
            if let Some(y) = b.const_value() {
                a.var_off = a.var_off.and(Tnum::constant(!y & m));
            }
            if let Some(x) = a.const_value() {
                b.var_off = b.var_off.and(Tnum::constant(!x & m));
            }
        }
        Cond::Le => le_unsigned(a, b),
        Cond::Ge => le_unsigned(b, a),
        Cond::Lt => lt_unsigned(a, b)?,
        Cond::Gt => lt_unsigned(b, a)?,
        Cond::Sle => le_signed(a, b),
        Cond::Sge => le_signed(b, a),
        Cond::Slt => lt_signed(a, b)?,
        Cond::Sgt => lt_signed(b, a)?,
    }
    (!a.is_empty() && !b.is_empty()).then_some(())
}

/// Removes `v` from the lane's ranges where it is an end point (the only place a range can
/// express "not v").
fn exclude(l: &mut Lane, v: u64) -> Option<()> {
    if l.umin == v {
        if l.umax == v {
            return None;
        }
        l.umin += 1;
    } else if l.umax == v {
        l.umax -= 1;
    }
    let s = as_signed(v, l.bits);
    if l.smin == s {
        if l.smax == s {
            return None;
        }
        l.smin += 1;
    } else if l.smax == s {
        l.smax -= 1;
    }
    Some(())
}

/// `a <= b` (unsigned).
fn le_unsigned(a: &mut Lane, b: &mut Lane) {
    a.umax = a.umax.min(b.umax);
    b.umin = b.umin.max(a.umin);
}

/// `a < b` (unsigned); `None` if impossible.
fn lt_unsigned(a: &mut Lane, b: &mut Lane) -> Option<()> {
    if b.umax == 0 || a.umin == umax_of(a.bits) {
        return None;
    }
    a.umax = a.umax.min(b.umax - 1);
    b.umin = b.umin.max(a.umin + 1);
    Some(())
}

/// `a <= b` (signed).
fn le_signed(a: &mut Lane, b: &mut Lane) {
    a.smax = a.smax.min(b.smax);
    b.smin = b.smin.max(a.smin);
}

/// `a < b` (signed); `None` if impossible.
fn lt_signed(a: &mut Lane, b: &mut Lane) -> Option<()> {
    if b.smax == smin_of(a.bits) || a.smin == smax_of(a.bits) {
        return None;
    }
    a.smax = a.smax.min(b.smax - 1);
    b.smin = b.smin.max(a.smin + 1);
    Some(())
}
