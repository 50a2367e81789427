//! ALU handlers: one per operation × width × operand kind (see `exec` for the dispatch).
//!
//! Division and modulo follow RFC 9669 / Linux: division by zero gives 0, modulo by zero
//! leaves the dividend (its low half, zero-extended, for 32-bit), `MIN / -1` wraps to `MIN`
//! and `MIN % -1` is 0. Shift counts are masked to the operand width.

use super::exec::{Flow, Machine, after, next, op};
use super::op::Op;

macro_rules! alu {
    ($name:ident, |$r:ident, $o:ident, $d:ident, $s:ident| $e:expr) => {
        pub(super) fn $name<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
            let $o = op(ip);
            // Any u8 indexes the 256-entry register file: no mask, no bounds check.
            let $d = $o.dst as usize;
            #[allow(unused_variables)]
            let $s = $o.src as usize;
            let $r = &mut m.r;
            $r[$d] = $e;
            next::<C>(m, after(ip), n)
        }
    };
}

alu!(add64k, |r, o, d, s| r[d].wrapping_add(o.b));
alu!(add64x, |r, o, d, s| r[d].wrapping_add(r[s]));
alu!(sub64k, |r, o, d, s| r[d].wrapping_sub(o.b));
alu!(sub64x, |r, o, d, s| r[d].wrapping_sub(r[s]));
alu!(mul64k, |r, o, d, s| r[d].wrapping_mul(o.b));
alu!(mul64x, |r, o, d, s| r[d].wrapping_mul(r[s]));
alu!(div64k, |r, o, d, s| r[d].checked_div(o.b).unwrap_or(0));
alu!(div64x, |r, o, d, s| r[d].checked_div(r[s]).unwrap_or(0));
alu!(sdiv64k, |r, o, d, s| sdiv64(r[d], o.b));
alu!(sdiv64x, |r, o, d, s| sdiv64(r[d], r[s]));
alu!(mod64k, |r, o, d, s| r[d].checked_rem(o.b).unwrap_or(r[d]));
alu!(mod64x, |r, o, d, s| r[d].checked_rem(r[s]).unwrap_or(r[d]));
alu!(smod64k, |r, o, d, s| smod64(r[d], o.b));
alu!(smod64x, |r, o, d, s| smod64(r[d], r[s]));
alu!(or64k, |r, o, d, s| r[d] | o.b);
alu!(or64x, |r, o, d, s| r[d] | r[s]);
alu!(and64k, |r, o, d, s| r[d] & o.b);
alu!(and64x, |r, o, d, s| r[d] & r[s]);
alu!(lsh64k, |r, o, d, s| r[d] << (o.b & 63));
alu!(lsh64x, |r, o, d, s| r[d] << (r[s] & 63));
alu!(rsh64k, |r, o, d, s| r[d] >> (o.b & 63));
alu!(rsh64x, |r, o, d, s| r[d] >> (r[s] & 63));
alu!(arsh64k, |r, o, d, s| ((r[d] as i64) >> (o.b & 63)) as u64);
alu!(arsh64x, |r, o, d, s| ((r[d] as i64) >> (r[s] & 63)) as u64);
alu!(xor64k, |r, o, d, s| r[d] ^ o.b);
alu!(xor64x, |r, o, d, s| r[d] ^ r[s]);
alu!(mov64k, |r, o, d, s| o.b);
alu!(mov64x, |r, o, d, s| r[s]);
alu!(movsx8to64, |r, o, d, s| r[s] as i8 as i64 as u64);
alu!(movsx16to64, |r, o, d, s| r[s] as i16 as i64 as u64);
alu!(movsx32to64, |r, o, d, s| r[s] as i32 as i64 as u64);
alu!(neg64, |r, o, d, s| r[d].wrapping_neg());
alu!(add32k, |r, o, d, s| (r[d] as u32).wrapping_add(o.b as u32)
    as u64);
alu!(add32x, |r, o, d, s| (r[d] as u32).wrapping_add(r[s] as u32)
    as u64);
alu!(sub32k, |r, o, d, s| (r[d] as u32).wrapping_sub(o.b as u32)
    as u64);
alu!(sub32x, |r, o, d, s| (r[d] as u32).wrapping_sub(r[s] as u32)
    as u64);
alu!(mul32k, |r, o, d, s| (r[d] as u32).wrapping_mul(o.b as u32)
    as u64);
alu!(mul32x, |r, o, d, s| (r[d] as u32).wrapping_mul(r[s] as u32)
    as u64);
alu!(
    div32k,
    |r, o, d, s| (r[d] as u32).checked_div(o.b as u32).unwrap_or(0) as u64
);
alu!(
    div32x,
    |r, o, d, s| (r[d] as u32).checked_div(r[s] as u32).unwrap_or(0) as u64
);
alu!(sdiv32k, |r, o, d, s| sdiv32(r[d], o.b));
alu!(sdiv32x, |r, o, d, s| sdiv32(r[d], r[s]));
alu!(mod32k, |r, o, d, s| mod32(r[d], o.b));
alu!(mod32x, |r, o, d, s| mod32(r[d], r[s]));
alu!(smod32k, |r, o, d, s| smod32(r[d], o.b));
alu!(smod32x, |r, o, d, s| smod32(r[d], r[s]));
alu!(or32k, |r, o, d, s| (r[d] as u32 | o.b as u32) as u64);
alu!(or32x, |r, o, d, s| (r[d] as u32 | r[s] as u32) as u64);
alu!(and32k, |r, o, d, s| (r[d] as u32 & o.b as u32) as u64);
alu!(and32x, |r, o, d, s| (r[d] as u32 & r[s] as u32) as u64);
alu!(lsh32k, |r, o, d, s| ((r[d] as u32) << (o.b & 31)) as u64);
alu!(lsh32x, |r, o, d, s| ((r[d] as u32) << (r[s] & 31)) as u64);
alu!(rsh32k, |r, o, d, s| ((r[d] as u32) >> (o.b & 31)) as u64);
alu!(rsh32x, |r, o, d, s| ((r[d] as u32) >> (r[s] & 31)) as u64);
alu!(arsh32k, |r, o, d, s| ((r[d] as i32) >> (o.b & 31)) as u32
    as u64);
alu!(arsh32x, |r, o, d, s| ((r[d] as i32) >> (r[s] & 31)) as u32
    as u64);
alu!(xor32k, |r, o, d, s| (r[d] as u32 ^ o.b as u32) as u64);
alu!(xor32x, |r, o, d, s| (r[d] as u32 ^ r[s] as u32) as u64);
alu!(mov32k, |r, o, d, s| o.b as u32 as u64);
alu!(mov32x, |r, o, d, s| r[s] as u32 as u64);
alu!(movsx8to32, |r, o, d, s| r[s] as i8 as i32 as u32 as u64);
alu!(movsx16to32, |r, o, d, s| r[s] as i16 as i32 as u32 as u64);
alu!(neg32, |r, o, d, s| (r[d] as u32).wrapping_neg() as u64);
alu!(trunc16, |r, o, d, s| r[d] as u16 as u64);
alu!(trunc32, |r, o, d, s| r[d] as u32 as u64);
alu!(nop, |r, o, d, s| r[d]);
alu!(swap16, |r, o, d, s| (r[d] as u16).swap_bytes() as u64);
alu!(swap32, |r, o, d, s| (r[d] as u32).swap_bytes() as u64);
alu!(swap64, |r, o, d, s| r[d].swap_bytes());
alu!(ldimm64, |r, o, d, s| o.b);

/// Signed 64-bit division: by 0 gives 0; `MIN / -1` wraps to `MIN`.
#[inline(always)]
fn sdiv64(a: u64, b: u64) -> u64 {
    if b == 0 {
        0
    } else {
        (a as i64).wrapping_div(b as i64) as u64
    }
}

/// Signed 64-bit modulo: by 0 leaves the dividend; `MIN % -1` is 0.
#[inline(always)]
fn smod64(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        (a as i64).wrapping_rem(b as i64) as u64
    }
}

/// Signed 32-bit division, zero-extended.
#[inline(always)]
fn sdiv32(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i32, b as i32);
    if b == 0 {
        0
    } else {
        a.wrapping_div(b) as u32 as u64
    }
}

/// Unsigned 32-bit modulo; by 0 leaves the low half, zero-extended.
#[inline(always)]
fn mod32(a: u64, b: u64) -> u64 {
    let (a, b) = (a as u32, b as u32);
    a.checked_rem(b).unwrap_or(a) as u64
}

/// Signed 32-bit modulo; by 0 leaves the low half, zero-extended.
#[inline(always)]
fn smod32(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i32, b as i32);
    (if b == 0 { a } else { a.wrapping_rem(b) }) as u32 as u64
}
