//! Transfer functions: what an ALU instruction does to the abstract value of its destination.
//!
//! Each function returns a sound [`ScalarBounds`]: if the concrete operands are members of the
//! abstract operands, the concrete result (with eBPF's exact wrap, mask and division rules,
//! see [`super::concrete`]) is a member of the result. Results are synced.
//!
//! Precision policy, following the kernel where its behaviour is known:
//! - constant operands fold exactly (every op, including div/mod and masked shifts);
//! - add/sub: exact interval arithmetic on every range, wrap-around included (a range stays
//!   precise when both of its bounds overflow together), plus the tnum;
//! - and/or/xor: tnum first, then unsigned bounds from it and from the operands' ranges;
//! - shifts by a known amount below the width follow the kernel's rules (see
//!   [`shift_left`]); any other amount gives an unknown result, as in the kernel;
//! - sign-extending moves are as coarse as the kernel's (see [`movsx`]);
//! - mul: the tnum product, plus ranges when no bound overflows (else unbounded, as in the
//!   kernel);
//! - div/mod (signed too): interval reasoning, a zero divisor included; more than the kernel,
//!   which (as far as we know, through 6.18) leaves every div/mod result unknown;
//! - ALU64 add/sub/mul/and/or/xor/lsh also compute the 32-bit ranges from the operands'
//!   32-bit ranges (the low half of those results depends only on the low halves);
//! - ALU32 results are zero-extended: upper half known 0, 64-bit ranges from the 32-bit ones.

use vm_core::isa::{AluOp, ByteOrder, Width};

use super::{
    ScalarBounds, concrete,
    lane::{Lane, as_signed, bits_of, smax_of, smin_of, umax_of},
};
use crate::tnum::Tnum;

/// `dst op= src` at `width`; for `Mov` and `MovSx` only `src` matters.
pub fn alu(op: AluOp, width: Width, dst: &ScalarBounds, src: &ScalarBounds) -> ScalarBounds {
    match op {
        AluOp::Mov => return mov(width, src),
        AluOp::MovSx(n) => return movsx(width, n, src),
        _ => {}
    }
    if dst.is_empty() || src.is_empty() {
        return ScalarBounds::empty();
    }
    let consts = match width {
        Width::W64 => dst.const_value().zip(src.const_value()),
        Width::W32 => dst
            .const_value32()
            .map(u64::from)
            .zip(src.const_value32().map(u64::from)),
    };
    if let Some((x, y)) = consts {
        return ScalarBounds::constant(concrete::alu_value(op, width, x, y));
    }
    let (a, b) = (Lane::of(dst, width), Lane::of(src, width));
    if op == AluOp::Mod && mod_is_identity(&a, &b) {
        // Every divisor is 0 or larger than every dividend: the register is unchanged
        // (except for the zero-extension of an ALU32 write).
        return match width {
            Width::W64 => *dst,
            Width::W32 => dst.zero_extend_32(),
        };
    }
    let mut result = binary(op, a, b);
    if op == AluOp::Lsh && width == Width::W64 && shift_amount(&b) == Some(32) {
        // The kernel's one signed case for `<<`: the compilers' `<< 32, s>> 32` idiom. A
        // non-negative low half moves up intact.
        if dst.s32_max >= 0 {
            result.smax = i64::from(dst.s32_max) << 32;
        }
        if dst.s32_min >= 0 {
            result.smin = i64::from(dst.s32_min) << 32;
        }
    }
    let low = match width {
        Width::W32 => None,
        Width::W64 => low_half_of_64(op, dst, src),
    };
    result.into_bounds(low)
}

/// `dst = -dst` at `width`.
pub fn neg(width: Width, dst: &ScalarBounds) -> ScalarBounds {
    if dst.is_empty() {
        return ScalarBounds::empty();
    }
    let zero = |w| Lane::constant(0, bits_of(w));
    let result = sub(zero(width), Lane::of(dst, width));
    let low = match width {
        Width::W32 => None,
        Width::W64 => Some(sub(zero(Width::W32), Lane::of(dst, Width::W32))),
    };
    result.into_bounds(low)
}

/// `dst = src` (ALU64) or `dst = (u32)src` (ALU32).
pub fn mov(width: Width, src: &ScalarBounds) -> ScalarBounds {
    match width {
        Width::W64 => *src,
        Width::W32 => src.zero_extend_32(),
    }
}

/// Sign-extending move of the low `from_bits` (8, 16 or 32) bits of `src`: to 64 bits for
/// ALU64, to 32 bits then zero-extended for ALU32. Other sizes act as a plain move.
///
/// Deliberately as coarse as Linux 6.18 (`coerce_reg_to_size_sx` and its 32-bit twin): a
/// known value extends exactly; otherwise only the signed range of the source width (64-bit
/// for ALU64, 32-bit for ALU32) is looked at, and it survives only if its two ends agree
/// above the low `from_bits` bits and their extensions have the same sign; anything else
/// gives the full `from_bits` signed range. A finer result (we used to read the low bits
/// off every range and the tnum) made us accept programs the kernel refuses, e.g. `(s32)`
/// of `[-128, 127]` then `if r0 > 255`: the kernel only knows `[S32_MIN, S32_MAX]` there
/// (found by tests/refinement_probes.rs).
pub fn movsx(width: Width, from_bits: u8, src: &ScalarBounds) -> ScalarBounds {
    let n = u32::from(from_bits);
    if !matches!(n, 8 | 16 | 32) || n >= bits_of(width) {
        return mov(width, src);
    }
    if src.is_empty() {
        return ScalarBounds::empty();
    }
    if src.var_off.is_const() {
        let v = as_signed(src.var_off.value() & umax_of(n), n) as u64;
        return match width {
            Width::W64 => ScalarBounds::constant(v),
            Width::W32 => ScalarBounds::constant(u64::from(v as u32)),
        };
    }
    let (lo, hi) = match width {
        Width::W64 => (src.smin, src.smax),
        Width::W32 => (i64::from(src.s32_min), i64::from(src.s32_max)),
    };
    let lane_bits = bits_of(width);
    let top = |v: i64| (v as u64 & umax_of(lane_bits)) >> n;
    let (a, b) = (
        as_signed(lo as u64 & umax_of(n), n),
        as_signed(hi as u64 & umax_of(n), n),
    );
    let (emin, emax) = (a.min(b), a.max(b));
    let kept = top(lo) == top(hi) && (emin >= 0) == (emax >= 0);
    let (emin, emax, var_off) = if kept {
        let t = Tnum::range(emin as u64, emax as u64);
        (emin, emax, t)
    } else {
        (smin_of(n), smax_of(n), Tnum::UNKNOWN)
    };
    match width {
        Width::W64 => {
            let mut r = ScalarBounds {
                var_off,
                smin: emin,
                smax: emax,
                s32_min: emin as i32,
                s32_max: emax as i32,
                ..ScalarBounds::unknown()
            };
            if kept {
                r.umin = emin as u64;
                r.umax = emax as u64;
                r.u32_min = emin as u32;
                r.u32_max = emax as u32;
            }
            r.synced()
        }
        Width::W32 => {
            let mut r = ScalarBounds {
                var_off: var_off.subreg(),
                s32_min: emin as i32,
                s32_max: emax as i32,
                ..ScalarBounds::unknown()
            };
            if kept {
                r.u32_min = emin as u32;
                r.u32_max = emax as u32;
            }
            r.synced().zero_extend_32()
        }
    }
}

/// A byte-order instruction on the low `bits` (16, 32 or 64; others act as 64) of `dst`.
/// `le` only truncates on a little-endian machine; `be` and `bswap` permute bytes, which the
/// tnum follows exactly (the ranges are then re-derived from it).
pub fn endian(order: ByteOrder, bits: u8, dst: &ScalarBounds) -> ScalarBounds {
    if dst.is_empty() {
        return ScalarBounds::empty();
    }
    match (order, bits) {
        (ByteOrder::ToLe, 16) => {
            let (lo, hi) = low_bits_unsigned(dst, 16);
            ScalarBounds {
                var_off: dst.var_off.cast(2),
                ..ScalarBounds::from_urange(lo, hi)
            }
            .synced()
        }
        (ByteOrder::ToLe, 32) => dst.zero_extend_32(),
        (ByteOrder::ToLe, _) => *dst,
        (_, 16 | 32) => ScalarBounds::from_tnum(dst.var_off.byte_swap(u32::from(bits))),
        (_, _) => ScalarBounds::from_tnum(dst.var_off.byte_swap(64)),
    }
}

/// For `x % y`: whether every possible divisor is 0 or exceeds every possible dividend, so
/// that the result is always `x`.
fn mod_is_identity(a: &Lane, b: &Lane) -> bool {
    b.umax == 0 || a.umax < b.umin
}

/// The 32-bit view of a 64-bit result, for the ops whose low half depends only on the
/// operands' low halves; `None` when it must be re-derived from the 64-bit result.
fn low_half_of_64(op: AluOp, dst: &ScalarBounds, src: &ScalarBounds) -> Option<Lane> {
    let (a, b) = (Lane::of(dst, Width::W32), Lane::of(src, Width::W32));
    match op {
        AluOp::Add | AluOp::Sub | AluOp::Mul | AluOp::And | AluOp::Or | AluOp::Xor => {
            Some(binary(op, a, b))
        }
        AluOp::Lsh => match shift_amount(&Lane::of(src, Width::W64)) {
            Some(s) if s < 32 => Some(shift_left(a, s)),
            Some(_) => Some(Lane::constant(0, 32)),
            None => None,
        },
        _ => None,
    }
}

/// The binary operation on one lane (both operands the same width).
fn binary(op: AluOp, a: Lane, b: Lane) -> Lane {
    match op {
        AluOp::Add => add(a, b),
        AluOp::Sub => sub(a, b),
        AluOp::Mul => mul(a, b),
        AluOp::Div => div(a, b),
        AluOp::SDiv => sdiv(a, b),
        AluOp::Mod => umod(a, b),
        AluOp::SMod => smod(a, b),
        AluOp::And => and(a, b),
        AluOp::Or => or(a, b),
        AluOp::Xor => xor(a, b),
        AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => match shift_amount(&b) {
            Some(s) => match op {
                AluOp::Lsh => shift_left(a, s),
                AluOp::Rsh => shift_right(a, s),
                _ => shift_arith(a, s),
            },
            None => Lane::full(a.bits),
        },
        AluOp::Mov | AluOp::MovSx(_) => Lane::full(a.bits),
    }
}

/// `t` restricted to the lane's width (drops carries out of a 32-bit lane).
fn fit(t: Tnum, bits: u32) -> Tnum {
    if bits == 32 { t.subreg() } else { t }
}

fn add(a: Lane, b: Lane) -> Lane {
    let mut r = Lane::full(a.bits);
    r.set_u_wrapping(
        i128::from(a.umin) + i128::from(b.umin),
        i128::from(a.umax) + i128::from(b.umax),
    );
    r.set_s_wrapping(
        i128::from(a.smin) + i128::from(b.smin),
        i128::from(a.smax) + i128::from(b.smax),
    );
    r.var_off = fit(a.var_off.add(b.var_off), a.bits);
    r
}

fn sub(a: Lane, b: Lane) -> Lane {
    let mut r = Lane::full(a.bits);
    r.set_u_wrapping(
        i128::from(a.umin) - i128::from(b.umax),
        i128::from(a.umax) - i128::from(b.umin),
    );
    r.set_s_wrapping(
        i128::from(a.smin) - i128::from(b.smax),
        i128::from(a.smax) - i128::from(b.smin),
    );
    r.var_off = fit(a.var_off.sub(b.var_off), a.bits);
    r
}

fn mul(a: Lane, b: Lane) -> Lane {
    let mut r = Lane::full(a.bits);
    let hi = i128::from(a.umax).checked_mul(i128::from(b.umax));
    if let Some(hi) = hi {
        r.set_u_exact(i128::from(a.umin) * i128::from(b.umin), hi);
    }
    let corners = [
        i128::from(a.smin) * i128::from(b.smin),
        i128::from(a.smin) * i128::from(b.smax),
        i128::from(a.smax) * i128::from(b.smin),
        i128::from(a.smax) * i128::from(b.smax),
    ];
    let (lo, hi) = hull(&corners);
    r.set_s_exact(lo, hi);
    r.var_off = fit(a.var_off.mul(b.var_off), a.bits);
    r
}

/// Smallest and largest of a non-empty slice.
fn hull(vals: &[i128]) -> (i128, i128) {
    vals.iter().fold((i128::MAX, i128::MIN), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    })
}

/// Unsigned division; a zero divisor gives 0.
fn div(a: Lane, b: Lane) -> Lane {
    let mut r = Lane::full(a.bits);
    if b.umax == 0 {
        return Lane::constant(0, a.bits);
    }
    let lo = if b.umin == 0 { 0 } else { a.umin / b.umax };
    r.umin = lo;
    r.umax = a.umax / b.umin.max(1);
    r.signed_from_unsigned();
    r
}

/// Unsigned modulo; a zero divisor leaves the dividend.
fn umod(a: Lane, b: Lane) -> Lane {
    if mod_is_identity(&a, &b) {
        return a;
    }
    let mut r = Lane::full(a.bits);
    // A non-zero divisor y gives at most min(x, y - 1); a zero divisor gives x itself.
    r.umax = if b.umin == 0 {
        a.umax
    } else {
        a.umax.min(b.umax - 1)
    };
    r.signed_from_unsigned();
    r
}

/// Signed division truncating toward zero; a zero divisor gives 0 and `MIN / -1` wraps to
/// `MIN`. Over divisors of one sign the quotient is monotonic in each operand, so its extremes
/// are at the corners of the operand ranges; negative and positive divisors are taken apart.
fn sdiv(a: Lane, b: Lane) -> Lane {
    let mut range: Option<(i128, i128)> = None;
    let mut include = |v: i128| {
        range = Some(range.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
    };
    if b.smin <= 0 && 0 <= b.smax {
        include(0);
    }
    for (ylo, yhi) in [(b.smin, b.smax.min(-1)), (b.smin.max(1), b.smax)] {
        if ylo > yhi {
            continue;
        }
        for (x, y) in [(a.smin, ylo), (a.smin, yhi), (a.smax, ylo), (a.smax, yhi)] {
            include(i128::from(x) / i128::from(y));
        }
    }
    let mut r = Lane::full(a.bits);
    if let Some((lo, hi)) = range {
        // Only MIN / -1 leaves the width; that wraps, so the range is then left full.
        r.set_s_exact(lo, hi);
    }
    r
}

/// Signed remainder: it has the dividend's sign and is smaller in magnitude than both the
/// dividend and the divisor; a zero divisor leaves the dividend; `MIN % -1` is 0.
fn smod(a: Lane, b: Lane) -> Lane {
    let mut r = Lane::full(a.bits);
    let largest_divisor = i128::from(b.smin).abs().max(i128::from(b.smax).abs());
    let m = largest_divisor - 1;
    let mut lo = if a.smin < 0 {
        i128::from(a.smin).max(-m)
    } else {
        0
    };
    let mut hi = if a.smax > 0 {
        i128::from(a.smax).min(m)
    } else {
        0
    };
    if b.smin <= 0 && 0 <= b.smax {
        lo = lo.min(i128::from(a.smin));
        hi = hi.max(i128::from(a.smax));
    }
    r.set_s_exact(lo, hi);
    r
}

fn and(a: Lane, b: Lane) -> Lane {
    let t = a.var_off.and(b.var_off);
    let mut r = Lane::full(a.bits);
    r.var_off = t;
    r.umin = t.umin();
    r.umax = a.umax.min(b.umax).min(t.umax());
    r.signed_from_unsigned();
    r
}

fn or(a: Lane, b: Lane) -> Lane {
    let t = a.var_off.or(b.var_off);
    let mut r = Lane::full(a.bits);
    r.var_off = t;
    r.umin = a.umin.max(b.umin).max(t.umin());
    r.umax = t.umax();
    r.signed_from_unsigned();
    r
}

fn xor(a: Lane, b: Lane) -> Lane {
    let t = a.var_off.xor(b.var_off);
    let mut r = Lane::full(a.bits);
    r.var_off = t;
    r.umin = t.umin();
    r.umax = t.umax();
    r.signed_from_unsigned();
    r
}

/// The shift count, if the verifier may use it: like the kernel, only a known amount below
/// the width counts (the kernel leaves the result unknown otherwise, even though eBPF masks
/// the amount at run time; knowing more here would make us accept what it refuses).
fn shift_amount(b: &Lane) -> Option<u32> {
    b.const_value()
        .filter(|&v| v < u64::from(b.bits))
        .map(|v| v as u32)
}

/// `a << s` for `s < bits`, as coarse as the kernel: the unsigned range shifts only while
/// `umax <= 2^(bits-1-s)` (its test, slightly stricter than "no set bit falls off"), and the
/// signed range is dropped, to be re-derived from the unsigned range and the tnum (the
/// 64-bit `<< 32` of a non-negative low half is special-cased in [`alu`]). We used to scale
/// the signed range and accepted programs the kernel refuses (`(s8)x << 2`, then a signed
/// test; found by tests/refinement_probes.rs).
fn shift_left(a: Lane, s: u32) -> Lane {
    let mut r = Lane::full(a.bits);
    r.var_off = fit(a.var_off.lshift(s), a.bits);
    if a.umax <= 1u64 << (a.bits - 1 - s) {
        r.umin = a.umin << s;
        r.umax = a.umax << s;
    }
    r
}

/// Logical `a >> s`: monotonic on unsigned values.
fn shift_right(a: Lane, s: u32) -> Lane {
    let mut r = Lane::full(a.bits);
    r.var_off = a.var_off.rshift(s);
    r.umin = a.umin >> s;
    r.umax = a.umax >> s;
    r.signed_from_unsigned();
    r
}

/// Arithmetic `a >> s`: monotonic on signed values.
fn shift_arith(a: Lane, s: u32) -> Lane {
    let mut r = Lane::full(a.bits);
    let width = if a.bits == 32 { Width::W32 } else { Width::W64 };
    r.var_off = a.var_off.arshift(s, width);
    r.smin = a.smin >> s;
    r.smax = a.smax >> s;
    r
}

/// Windows `(lo, hi)` of consecutive `n`-bit patterns that the low `n` bits of the members
/// run through: whenever one of `x`'s ranges keeps the bits above `n` fixed, its low bits
/// rise monotonically from those of its minimum to those of its maximum.
fn low_bit_windows(x: &ScalarBounds, n: u32) -> impl Iterator<Item = (u64, u64)> {
    let m = umax_of(n);
    let views = [
        (x.umin, x.umax),
        (x.smin as u64, x.smax as u64),
        (u64::from(x.u32_min), u64::from(x.u32_max)),
        (x.s32_min as u32 as u64, x.s32_max as u32 as u64),
    ];
    views
        .into_iter()
        .filter(move |&(lo, hi)| lo <= hi && lo >> n == hi >> n)
        .map(move |(lo, hi)| (lo & m, hi & m))
}

/// Unsigned range of the low `n` bits of the members.
fn low_bits_unsigned(x: &ScalarBounds, n: u32) -> (u64, u64) {
    low_bit_windows(x, n).fold((0, umax_of(n)), |(lo, hi), (l, h)| (lo.max(l), hi.min(h)))
}
