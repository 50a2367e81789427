//! Superinstructions: common short sequences executed by one handler.
//!
//! Why: in the threaded run loop each instruction costs one indirect jump (measured: a few
//! cycles of front-end bubble each, more than the work of a simple ALU op) plus, because
//! BPF registers live in memory, a store-to-load forwarding delay whenever the next
//! instruction reads what this one wrote. Sequences that compilers emit all the time run
//! several times faster as one handler that keeps the intermediate value in a machine
//! register. The families (any registers, constants and conditions):
//! - `rX = rY; rX += K; if rX <cond> rZ goto` (packet bounds checks);
//! - `rX = *(size *)(rY + off); if rX <cond> K goto` (header field tests), also with a
//!   `be16`/`be32` in between (fields in network order), or a byte swap alone;
//! - `rX op= K; if rX <cond> K2|rZ goto` (loop counters, masks and shifts before a test);
//! - `rX = rY; rX op= K|rZ` (pointer arithmetic, copies before an update), also
//!   `rX = rY; rX op= rZ; rX += K` (`p = base + index + constant`);
//! - `rX = *(size *)(rY + off); rX op= K` (extracting a header field);
//! - `rX op= K1; rX op= K2` (masks and shifts, zero/sign-extension idioms);
//! - `rX = K|rY; exit` (the epilogue of nearly every program).
//!
//! `op` is any of add, sub, and, or, xor, lsh, rsh, arsh, mul (64-bit); `<cond>` any 64-bit
//! condition.
//!
//! How exactness is kept:
//! - Fusion only replaces the *first* op of a sequence; the ops after it stay as they were,
//!   so a jump into the middle of a sequence executes the original instructions.
//! - A sequence never contains a control transfer except as its last instruction, so it lies
//!   inside one run, which was paid for in full before its first op executed (see `exec`).
//! - The compiled code keeps a *counted* copy of every op (no fusion) at the same index. A
//!   fused handler that cannot finish the whole sequence — a load needs the slow path
//!   (context fields, faults) — continues in the counted copy instead, giving back the
//!   unexecuted part of its run, and the counted copy executes the instructions one by one
//!   with the ordinary handlers. Fused handlers therefore never fault, never count
//!   differently and never bypass the budget.
//! - Every fused handler performs the register writes of its instructions in order, so
//!   aliasing (`rX = rY` with `X == Y`, comparing `rX` with itself) behaves as in sequence.

use super::exec::{Flow, Machine, exit, next, taken};
use super::op::{Code, Handler, Op};

/// Condition codes for the const-generic handlers.
mod cc {
    pub const EQ: u8 = 0;
    pub const GT: u8 = 1;
    pub const GE: u8 = 2;
    pub const SET: u8 = 3;
    pub const NE: u8 = 4;
    pub const SGT: u8 = 5;
    pub const SGE: u8 = 6;
    pub const LT: u8 = 7;
    pub const LE: u8 = 8;
    pub const SLT: u8 = 9;
    pub const SLE: u8 = 10;
}

/// 64-bit ALU operations that fused handlers perform.
mod alu {
    pub const ADD: u8 = 0;
    pub const SUB: u8 = 1;
    pub const AND: u8 = 2;
    pub const OR: u8 = 3;
    pub const XOR: u8 = 4;
    pub const LSH: u8 = 5;
    pub const RSH: u8 = 6;
    pub const ARSH: u8 = 7;
    pub const MUL: u8 = 8;
}

#[inline(always)]
fn cond<const C: u8>(a: u64, b: u64) -> bool {
    match C {
        cc::EQ => a == b,
        cc::GT => a > b,
        cc::GE => a >= b,
        cc::SET => a & b != 0,
        cc::NE => a != b,
        cc::SGT => (a as i64) > b as i64,
        cc::SGE => (a as i64) >= b as i64,
        cc::LT => a < b,
        cc::LE => a <= b,
        cc::SLT => (a as i64) < (b as i64),
        _ => (a as i64) <= (b as i64),
    }
}

/// The ALU64 operation `A` (shift counts masked as the ISA requires; constant counts were
/// already masked by instruction selection, so masking again changes nothing).
#[inline(always)]
fn alu<const A: u8>(a: u64, b: u64) -> u64 {
    match A {
        alu::ADD => a.wrapping_add(b),
        alu::SUB => a.wrapping_sub(b),
        alu::AND => a & b,
        alu::OR => a | b,
        alu::XOR => a ^ b,
        alu::LSH => a << (b & 63),
        alu::RSH => a >> (b & 63),
        alu::ARSH => ((a as i64) >> (b & 63)) as u64,
        _ => a.wrapping_mul(b),
    }
}

/// The op at `ip`.
#[inline(always)]
fn op<'o>(ip: *const Op) -> &'o Op {
    // SAFETY: `ip` points into the op array (invariant on `exec::next`).
    unsafe { &*ip }
}

/// `ip + k`: the op after a sequence of `k` instructions that does not end in a jump.
#[inline(always)]
fn skip(ip: *const Op, k: usize) -> *const Op {
    // SAFETY: fusion only forms sequences of ops that are all followed by another op of the
    // same program (a non-control op is never last: the sentinel follows).
    unsafe { ip.add(k) }
}

/// Continues after a fused sequence of `k` instructions ending in a conditional jump.
#[inline(always)]
fn branch(m: &mut Machine<'_>, ip: *const Op, o: &Op, is_taken: bool, k: usize, n: u64) -> Flow {
    // A predictable branch, not a conditional move: with a branch the next handler's address
    // is known speculatively before the compared value is (measured: a conditional move here
    // made the sum loop 30% slower).
    // The target is the original jump's target (checked by `compile`; its address is set by
    // `Compiled::relink`). SAFETY: `ip + k` is the op after the jump, which exists because
    // the sentinel ends every program.
    if is_taken {
        taken(m, o, n)
    } else {
        // The fall-through is the rest of the run, paid for already (see `exec`).
        next::<false>(m, unsafe { ip.add(k) }, n)
    }
}

/// A register index: any `u8` indexes the 256-entry register file without a bounds check
/// (see `Machine::r`).
#[inline(always)]
fn reg(o: u8) -> usize {
    o as usize
}

/// Continues at the same index in the counted (unfused) copy of the code, giving back the
/// part of the run that was paid for but has not executed (this op and the rest of its run).
#[cold]
#[inline(never)]
fn fallback(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let run = op(ip).run as u64;
    // The counted copy follows the fast one in the same allocation, `delta` bytes later.
    let p = ip.wrapping_byte_add(m.delta);
    next::<true>(m, p, n + run)
}

/// The value of a fused load of `N` bytes at `addr`: in the instance placed in the code
/// (`T = false`) from the hot window only, so that the handler's hot path is straight-line
/// (see `View::load_hot`); in the instance a miss retries with (`T = true`), from any window.
#[inline(always)]
fn fused_load<const T: bool, const N: usize>(m: &Machine<'_>, addr: u64) -> Option<u64> {
    if T {
        m.view.load::<N>(addr)
    } else {
        m.view.load_hot::<N>(addr)
    }
}

/// `rX = rY; rX += K; if rX <cond> rZ goto T` — `dst` X, `src` Y, `aux` Z (never X: not
/// fused then), `a` K.
fn lea_jcc<const C: u8>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    let v = m.r[reg(o.src)].wrapping_add(o.off());
    let zv = m.r[reg(o.aux)];
    m.r[reg(o.dst)] = v;
    branch(m, ip, o, cond::<C>(v, zv), 3, n)
}

/// `rX = rY; rX op= K` — `dst` X, `src` Y, `b` K.
fn mov_alu_k<const A: u8>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    m.r[reg(o.dst)] = alu::<A>(m.r[reg(o.src)], o.b);
    next::<false>(m, skip(ip, 2), n)
}

/// `rX = rY; rX op= rZ` — `dst` X, `src` Y, `aux` Z (Y when Z = X: after the move, rX
/// holds rY's value).
fn mov_alu_x<const A: u8>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    let y = m.r[reg(o.src)];
    let zv = m.r[reg(o.aux)];
    m.r[reg(o.dst)] = alu::<A>(y, zv);
    next::<false>(m, skip(ip, 2), n)
}

/// `rX = rY; rX op= rZ; rX += K` (`p = base + index + constant`) — `aux` Z (Y when Z = X,
/// as in [`mov_alu_x`]), `b` K.
fn mov_alu_x_add<const A: u8>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    let y = m.r[reg(o.src)];
    let zv = m.r[reg(o.aux)];
    m.r[reg(o.dst)] = alu::<A>(y, zv).wrapping_add(o.b);
    next::<false>(m, skip(ip, 3), n)
}

/// `rX = *(size *)(rY + off); rX op= K` (extracting a header field) — `b` = K (low, as
/// i32) | off << 32.
/// `T`: see [`fused_load`].
#[inline(never)]
fn load_alu<const T: bool, const N: usize, const A: u8>(
    m: &mut Machine<'_>,
    ip: *const Op,
    n: u64,
) -> Flow {
    let o = op(ip);
    let off = o.b_hi_i16();
    let addr = m.r[reg(o.src)].wrapping_add(off);
    let Some(v) = fused_load::<T, N>(m, addr) else {
        return if T {
            fallback(m, ip, n)
        } else {
            load_alu::<true, N, A>(m, ip, n)
        };
    };
    m.r[reg(o.dst)] = alu::<A>(v, o.b_lo_i32());
    next::<false>(m, skip(ip, 2), n)
}

/// `rX op1= K1; rX op2= K2` — `b` = K1 (low, as i32) | K2 << 32.
fn alu2_k<const A: u8, const B: u8>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    let d = reg(o.dst);
    let k1 = o.b_lo_i32();
    let k2 = o.b_hi_i32();
    m.r[d] = alu::<B>(alu::<A>(m.r[d], k1), k2);
    next::<false>(m, skip(ip, 2), n)
}

/// `rX op= K1; if rX <cond> K2 goto T` — `a` = K1; K2 is the immediate of the jump's own op
/// at `ip + 1` (fast layout: its `a`), as the fused op has no room for it next to the
/// target's address.
fn alu_jcc_k<const A: u8, const C: u8>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    let d = reg(o.dst);
    let v = alu::<A>(m.r[d], o.off());
    m.r[d] = v;
    let k2 = op(skip(ip, 1)).jimm64::<false>();
    branch(m, ip, o, cond::<C>(v, k2), 2, n)
}

/// `rX op= K; if rX <cond> rZ goto T` — `a` = K, `aux` Z (never X: not fused then).
fn alu_jcc_x<const A: u8, const C: u8>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    let d = reg(o.dst);
    let v = alu::<A>(m.r[d], o.off());
    let zv = m.r[reg(o.aux)];
    m.r[d] = v;
    branch(m, ip, o, cond::<C>(v, zv), 2, n)
}

/// `rX = *(size *)(rY + off); if rX <cond> K goto T` — `a` = K, `x` = off.
/// `T`: see [`fused_load`].
#[inline(never)]
fn load_jcc<const T: bool, const N: usize, const C: u8>(
    m: &mut Machine<'_>,
    ip: *const Op,
    n: u64,
) -> Flow {
    let o = op(ip);
    let off = o.x as i64 as u64;
    let addr = m.r[reg(o.src)].wrapping_add(off);
    let Some(v) = fused_load::<T, N>(m, addr) else {
        return if T {
            fallback(m, ip, n)
        } else {
            load_jcc::<true, N, C>(m, ip, n)
        };
    };
    m.r[reg(o.dst)] = v;
    let k = o.off();
    branch(m, ip, o, cond::<C>(v, k), 2, n)
}

/// Byte swap of the low `N` bytes (`be16` / `be32` on a little-endian machine).
#[inline(always)]
fn swap<const N: usize>(v: u64) -> u64 {
    if N == 2 {
        (v as u16).swap_bytes() as u64
    } else {
        (v as u32).swap_bytes() as u64
    }
}

/// `rX = *(size *)(rY + off); rX = bswap(rX)` (`be16`/`be32` after a load) — `a` = off.
/// `T`: see [`fused_load`].
#[inline(never)]
fn load_swap<const T: bool, const N: usize>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    let addr = m.r[reg(o.src)].wrapping_add(o.off());
    let Some(v) = fused_load::<T, N>(m, addr) else {
        return if T {
            fallback(m, ip, n)
        } else {
            load_swap::<true, N>(m, ip, n)
        };
    };
    m.r[reg(o.dst)] = swap::<N>(v);
    next::<false>(m, skip(ip, 2), n)
}

/// `rX = *(size *)(rY + off); rX = bswap(rX); if rX <cond> K goto T` — `a` = K, `x` = off.
/// `T`: see [`fused_load`].
#[inline(never)]
fn load_swap_jcc<const T: bool, const N: usize, const C: u8>(
    m: &mut Machine<'_>,
    ip: *const Op,
    n: u64,
) -> Flow {
    let o = op(ip);
    let off = o.x as i64 as u64;
    let addr = m.r[reg(o.src)].wrapping_add(off);
    let Some(v) = fused_load::<T, N>(m, addr) else {
        return if T {
            fallback(m, ip, n)
        } else {
            load_swap_jcc::<true, N, C>(m, ip, n)
        };
    };
    let v = swap::<N>(v);
    m.r[reg(o.dst)] = v;
    let k = o.off();
    branch(m, ip, o, cond::<C>(v, k), 3, n)
}

/// `rX = K; exit` — `b` = K as the move computes it.
fn mov_k_exit(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    m.r[reg(o.dst)] = o.b;
    exit::<false>(m, skip(ip, 1), n)
}

/// `rX = rY; exit`.
fn mov_x_exit(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    m.r[reg(o.dst)] = m.r[reg(o.src)];
    exit::<false>(m, skip(ip, 1), n)
}

/// The condition of a 64-bit conditional jump and whether it compares with a register.
fn jcc64(code: Code) -> Option<(u8, bool)> {
    use Code::*;
    Some(match code {
        Jeq64K => (cc::EQ, false),
        Jeq64X => (cc::EQ, true),
        Jgt64K => (cc::GT, false),
        Jgt64X => (cc::GT, true),
        Jge64K => (cc::GE, false),
        Jge64X => (cc::GE, true),
        Jset64K => (cc::SET, false),
        Jset64X => (cc::SET, true),
        Jne64K => (cc::NE, false),
        Jne64X => (cc::NE, true),
        Jsgt64K => (cc::SGT, false),
        Jsgt64X => (cc::SGT, true),
        Jsge64K => (cc::SGE, false),
        Jsge64X => (cc::SGE, true),
        Jlt64K => (cc::LT, false),
        Jlt64X => (cc::LT, true),
        Jle64K => (cc::LE, false),
        Jle64X => (cc::LE, true),
        Jslt64K => (cc::SLT, false),
        Jslt64X => (cc::SLT, true),
        Jsle64K => (cc::SLE, false),
        Jsle64X => (cc::SLE, true),
        _ => return None,
    })
}

/// The operation of a 64-bit ALU op and whether its operand is a register.
fn alu64(code: Code) -> Option<(u8, bool)> {
    use Code::*;
    Some(match code {
        Add64K => (alu::ADD, false),
        Add64X => (alu::ADD, true),
        Sub64K => (alu::SUB, false),
        Sub64X => (alu::SUB, true),
        And64K => (alu::AND, false),
        And64X => (alu::AND, true),
        Or64K => (alu::OR, false),
        Or64X => (alu::OR, true),
        Xor64K => (alu::XOR, false),
        Xor64X => (alu::XOR, true),
        Lsh64K => (alu::LSH, false),
        Lsh64X => (alu::LSH, true),
        Rsh64K => (alu::RSH, false),
        Rsh64X => (alu::RSH, true),
        Arsh64K => (alu::ARSH, false),
        Arsh64X => (alu::ARSH, true),
        Mul64K => (alu::MUL, false),
        Mul64X => (alu::MUL, true),
        _ => return None,
    })
}

/// `f::<pre.., C>` for a runtime condition code.
macro_rules! by_cond {
    ($c:expr, $f:ident $(, $pre:expr)*) => {
        match $c {
            cc::EQ => $f::<$($pre,)* { cc::EQ }> as Handler,
            cc::GT => $f::<$($pre,)* { cc::GT }>,
            cc::GE => $f::<$($pre,)* { cc::GE }>,
            cc::SET => $f::<$($pre,)* { cc::SET }>,
            cc::NE => $f::<$($pre,)* { cc::NE }>,
            cc::SGT => $f::<$($pre,)* { cc::SGT }>,
            cc::SGE => $f::<$($pre,)* { cc::SGE }>,
            cc::LT => $f::<$($pre,)* { cc::LT }>,
            cc::LE => $f::<$($pre,)* { cc::LE }>,
            cc::SLT => $f::<$($pre,)* { cc::SLT }>,
            _ => $f::<$($pre,)* { cc::SLE }>,
        }
    };
}

/// `f::<pre.., A>` for a runtime ALU operation.
macro_rules! by_alu {
    ($a:expr, $f:ident $(, $pre:expr)*) => {
        match $a {
            alu::ADD => $f::<$($pre,)* { alu::ADD }> as Handler,
            alu::SUB => $f::<$($pre,)* { alu::SUB }>,
            alu::AND => $f::<$($pre,)* { alu::AND }>,
            alu::OR => $f::<$($pre,)* { alu::OR }>,
            alu::XOR => $f::<$($pre,)* { alu::XOR }>,
            alu::LSH => $f::<$($pre,)* { alu::LSH }>,
            alu::RSH => $f::<$($pre,)* { alu::RSH }>,
            alu::ARSH => $f::<$($pre,)* { alu::ARSH }>,
            _ => $f::<$($pre,)* { alu::MUL }>,
        }
    };
}

/// `f::<A, C>` / `f::<A, B>` for a runtime ALU operation and a second parameter chosen by
/// `$inner` (`by_cond` or `by_alu`).
macro_rules! by_alu_then {
    ($a:expr, $inner:ident, $b:expr, $f:ident) => {
        match $a {
            alu::ADD => $inner!($b, $f, { alu::ADD }),
            alu::SUB => $inner!($b, $f, { alu::SUB }),
            alu::AND => $inner!($b, $f, { alu::AND }),
            alu::OR => $inner!($b, $f, { alu::OR }),
            alu::XOR => $inner!($b, $f, { alu::XOR }),
            alu::LSH => $inner!($b, $f, { alu::LSH }),
            alu::RSH => $inner!($b, $f, { alu::RSH }),
            alu::ARSH => $inner!($b, $f, { alu::ARSH }),
            _ => $inner!($b, $f, { alu::MUL }),
        }
    };
}

/// The access size of a plain load through a register.
fn load_size(code: Code) -> Option<usize> {
    match code {
        Code::LdxB => Some(1),
        Code::LdxH => Some(2),
        Code::LdxW => Some(4),
        Code::LdxDW => Some(8),
        _ => None,
    }
}

/// Whether a 64-bit ALU immediate (as selection stored it) is a sign-extended i32, so that
/// it can share the `b` field with a second constant.
fn fits_i32(b: u64) -> bool {
    b as i32 as i64 as u64 == b
}

/// Replaces the first op of every fusable sequence in `ops[start..end]` (already linked:
/// relative targets, handlers and runs set). `ops[end - 1]` is the program's sentinel.
/// Superinstructions that end in a jump get the fast layout (see [`Op`]); `targets` receives
/// `(index, target index)` of each, for `Compiled::relink`.
pub(crate) fn fuse(ops: &mut [Op], start: usize, end: usize, targets: &mut Vec<(usize, usize)>) {
    for i in start..end {
        let at = |k: usize| ops.get(i + k).copied().filter(|_| i + k < end);
        let (Some(a), Some(b)) = (at(0), at(1)) else {
            continue;
        };
        if let Some((fused, jump)) = fuse_at(a, b, at(2)) {
            ops[i] = fused;
            if let Some(rel) = jump {
                targets.push((i, i.wrapping_add_signed(rel)));
            }
        }
    }
}

/// The superinstruction for the sequence starting with `a`, `b` (and `c`), if any, and for
/// one that ends in a jump, the jump target's distance from `a` in ops. Longer sequences are
/// preferred. `a`, `b` and `c` are plain ops (fusion runs front to back and only replaces the
/// op it is at).
fn fuse_at(a: Op, b: Op, c: Option<Op>) -> Option<(Op, Option<isize>)> {
    fuse_branch(a, b, c)
        .map(|(op, rel)| (op, Some(rel)))
        .or_else(|| fuse_straight(a, b, c).map(|op| (op, None)))
}

/// The superinstructions that end in a jump (fast layout: `b` waits for the target's
/// address, immediates in `a`, a load's offset in `x`), with the target's distance in ops.
fn fuse_branch(a: Op, b: Op, c: Option<Op>) -> Option<(Op, isize)> {
    use Code::*;
    let same = |x: &Op| x.dst == a.dst;
    let jcc_c = c
        .filter(|c| same(c))
        .and_then(|c| jcc64(c.code).map(|j| (c, j)));
    // rX = rY; rX += K; if rX <cond> rZ goto T
    if a.code == Mov64X
        && b.code == Add64K
        && same(&b)
        && fits_i32(b.b)
        && let Some((c, (cond, true))) = jcc_c
        && c.src != a.dst
    {
        let op = Op {
            h: by_cond!(cond, lea_jcc),
            aux: c.src,
            a: b.b as u32,
            ..a
        };
        return Some(ending_in(op, &c, 2));
    }
    // rX = *(size *)(rY + off); rX = bswap(rX); if rX <cond> K goto T
    if let (LdxH | LdxW, Some((c, (cond, false)))) = (a.code, jcc_c)
        && same(&b)
        && matches!((a.code, b.code), (LdxH, Swap16) | (LdxW, Swap32))
    {
        let op = Op {
            h: if a.code == LdxH {
                by_cond!(cond, load_swap_jcc, false, 2)
            } else {
                by_cond!(cond, load_swap_jcc, false, 4)
            },
            a: c.b as u32,
            x: a.a as i16,
            ..a
        };
        return Some(ending_in(op, &c, 2));
    }
    if !same(&b) {
        return None;
    }
    let (cond, x) = jcc64(b.code)?;
    // rX op= K1; if rX <cond> K2|rZ goto T (K2: the immediate of the jump's own op)
    if let Some((k, false)) = alu64(a.code)
        && fits_i32(a.b)
        && !(x && b.src == a.dst)
    {
        let op = Op {
            h: if x {
                by_alu_then!(k, by_cond, cond, alu_jcc_x)
            } else {
                by_alu_then!(k, by_cond, cond, alu_jcc_k)
            },
            aux: b.src,
            a: a.b as u32,
            ..a
        };
        return Some(ending_in(op, &b, 1));
    }
    // rX = *(size *)(rY + off); if rX <cond> K goto T
    let size = load_size(a.code)?;
    if x || a.src == 10 {
        return None;
    }
    let op = Op {
        h: match size {
            1 => by_cond!(cond, load_jcc, false, 1),
            2 => by_cond!(cond, load_jcc, false, 2),
            4 => by_cond!(cond, load_jcc, false, 4),
            _ => by_cond!(cond, load_jcc, false, 8),
        },
        a: b.b as u32,
        x: a.a as i16,
        ..a
    };
    Some(ending_in(op, &b, 1))
}

/// `fused` as a superinstruction whose last constituent, `k` ops after its first, is `jump`:
/// in the fast layout (`b` waits for the target's address), with the run of the jump's
/// target and what taking the jump pays ([`Op::set_taken_delta`]), and the target's distance
/// in ops from the first constituent.
fn ending_in(fused: Op, jump: &Op, k: isize) -> (Op, isize) {
    let mut op = Op {
        b: 0,
        tr: jump.tr,
        fr: jump.fr,
        ..fused
    };
    op.set_taken_delta();
    (op, jump.rel() + k)
}

/// The superinstructions that continue with the next op (or exit).
fn fuse_straight(a: Op, b: Op, c: Option<Op>) -> Option<Op> {
    use Code::*;
    let same = |x: &Op| x.dst == a.dst;
    // rX = rY; rX op= rZ; rX += K
    if a.code == Mov64X
        && same(&b)
        && let Some((k, true)) = alu64(b.code)
        && let Some(c) = c.filter(|c| same(c) && c.code == Add64K)
    {
        return Some(Op {
            h: by_alu!(k, mov_alu_x_add),
            aux: if b.src == a.dst { a.src } else { b.src },
            b: c.b,
            ..a
        });
    }
    // rX = K|rY; exit
    match (a.code, b.code) {
        (Mov64K | Mov32K, Exit) => return Some(Op { h: mov_k_exit, ..a }),
        (Mov64X, Exit) => return Some(Op { h: mov_x_exit, ..a }),
        _ => {}
    }
    if !same(&b) {
        return None;
    }
    match (a.code, b.code) {
        (LdxH, Swap16) => {
            return Some(Op {
                h: load_swap::<false, 2>,
                ..a
            });
        }
        (LdxW, Swap32) => {
            return Some(Op {
                h: load_swap::<false, 4>,
                ..a
            });
        }
        _ => {}
    }
    let (k, x) = alu64(b.code)?;
    // rX = *(size *)(rY + off); rX op= K
    if let Some(size) = load_size(a.code)
        && !x
        && fits_i32(b.b)
    {
        let h = match size {
            1 => by_alu!(k, load_alu, false, 1),
            2 => by_alu!(k, load_alu, false, 2),
            4 => by_alu!(k, load_alu, false, 4),
            _ => by_alu!(k, load_alu, false, 8),
        };
        return Some(Op {
            h,
            b: (b.b as u32 as u64) | (a.a as u16 as u64) << 32,
            ..a
        });
    }
    // rX = rY; rX op= K|rZ
    if a.code == Mov64X {
        return Some(if x {
            Op {
                h: by_alu!(k, mov_alu_x),
                aux: if b.src == a.dst { a.src } else { b.src },
                ..a
            }
        } else {
            Op {
                h: by_alu!(k, mov_alu_k),
                b: b.b,
                ..a
            }
        });
    }
    // rX op1= K1; rX op2= K2
    if let Some((k1, false)) = alu64(a.code)
        && !x
        && fits_i32(a.b)
        && fits_i32(b.b)
    {
        return Some(Op {
            h: by_alu_then!(k1, by_alu, k, alu2_k),
            b: (a.b as u32 as u64) | (b.b as u32 as u64) << 32,
            ..a
        });
    }
    None
}
