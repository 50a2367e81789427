//! Superinstructions: common short sequences executed by one handler.
//!
//! Why: in the threaded run loop each instruction costs one indirect jump plus, because
//! BPF registers live in memory, a store-to-load forwarding delay whenever the next
//! instruction reads what this one wrote. Sequences that compilers emit all the time —
//! `rX = rY; rX += K; if rX > rZ goto` (packet bounds checks), `rX = *(size *)(rY + off);
//! if rX op K goto` (header field tests), `rX op= K; if rX op K goto` (loop counters),
//! `rX = rY; rX += K` (pointer arithmetic), a load followed by a byte swap — run several
//! times faster as one handler that keeps the intermediate value in a machine register.
//!
//! How exactness is kept:
//! - Fusion only replaces the *first* op of a sequence; the ops after it stay as they were,
//!   so a jump into the middle of a sequence executes the original instructions.
//! - The compiled code keeps a *plain* copy of every op (no fusion) at the same index. A
//!   fused handler that cannot finish the whole sequence — the chunk of the instruction
//!   budget has fewer instructions left than the sequence, or a load needs the slow path
//!   (context fields, faults) — continues in the plain copy instead, which executes the
//!   instructions one by one with the ordinary handlers. Fused handlers therefore never
//!   fault, never count differently and never bypass the budget.
//! - Every fused handler performs the register writes of its instructions in order, so
//!   aliasing (`rX = rY` with `X == Y`, comparing `rX` with itself) behaves as in sequence.

use super::exec::{Flow, Machine, next};
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

/// ALU operations that can precede a fused jump.
mod alu {
    pub const ADD: u8 = 0;
    pub const SUB: u8 = 1;
    pub const AND: u8 = 2;
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

#[inline(always)]
fn alu<const A: u8>(a: u64, b: u64) -> u64 {
    match A {
        alu::ADD => a.wrapping_add(b),
        alu::SUB => a.wrapping_sub(b),
        _ => a & b,
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

/// The jump target of a fused sequence (stored relative to its first op).
#[inline(always)]
fn target(ip: *const Op, o: &Op) -> *const Op {
    // SAFETY: the target is the original jump's target, checked by `compile`.
    unsafe { ip.offset(o.rel()) }
}

/// Continues at the same index in the plain (unfused) copy of the code.
#[inline(never)]
fn fallback(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    // SAFETY: both copies have the same length and `ip` is in the fused copy.
    let p = unsafe { m.plain.offset(ip.offset_from(m.base)) };
    // SAFETY: `p` points into the plain copy at a valid index.
    let h = unsafe { (*p).h };
    h(m, p, n)
}

/// `rX = rY; rX += K; if rX <cond> rZ goto T` — `dst` X, `src` Y, `aux` Z, `b` K.
fn lea_jcc<const C: u8>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    if n < 2 {
        return fallback(m, ip, n);
    }
    let o = op(ip);
    let (d, s, z) = (
        (o.dst & 15) as usize,
        (o.src & 15) as usize,
        (o.aux & 15) as usize,
    );
    let v = m.r[s].wrapping_add(o.b);
    let zv = if z == d { v } else { m.r[z] };
    m.r[d] = v;
    let to = if cond::<C>(v, zv) {
        target(ip, o)
    } else {
        skip(ip, 3)
    };
    next(m, to, n - 2)
}

/// `rX = rY; rX += K` — `dst` X, `src` Y, `b` K.
fn lea(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    if n < 1 {
        return fallback(m, ip, n);
    }
    let o = op(ip);
    m.r[(o.dst & 15) as usize] = m.r[(o.src & 15) as usize].wrapping_add(o.b);
    next(m, skip(ip, 2), n - 1)
}

/// `rX op= K1; if rX <cond> K2 goto T` — `b` = K1 (low, as i32) | K2 << 32.
fn alu_jcc_k<const A: u8, const C: u8>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    if n < 1 {
        return fallback(m, ip, n);
    }
    let o = op(ip);
    let d = (o.dst & 15) as usize;
    let v = alu::<A>(m.r[d], o.b as u32 as i32 as i64 as u64);
    m.r[d] = v;
    let k2 = (o.b >> 32) as u32 as i32 as i64 as u64;
    let to = if cond::<C>(v, k2) {
        target(ip, o)
    } else {
        skip(ip, 2)
    };
    next(m, to, n - 1)
}

/// `rX op= K; if rX <cond> rZ goto T` — `b` = K (as i32), `aux` Z.
fn alu_jcc_x<const A: u8, const C: u8>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    if n < 1 {
        return fallback(m, ip, n);
    }
    let o = op(ip);
    let (d, z) = ((o.dst & 15) as usize, (o.aux & 15) as usize);
    let v = alu::<A>(m.r[d], o.b as u32 as i32 as i64 as u64);
    let zv = if z == d { v } else { m.r[z] };
    m.r[d] = v;
    let to = if cond::<C>(v, zv) {
        target(ip, o)
    } else {
        skip(ip, 2)
    };
    next(m, to, n - 1)
}

/// `rX = *(size *)(rY + off); if rX <cond> K goto T` — `b` = K (low, as i32) | off << 32.
fn load_jcc<const N: usize, const C: u8>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    if n < 1 {
        return fallback(m, ip, n);
    }
    let o = op(ip);
    let off = (o.b >> 32) as u16 as i16 as i64 as u64;
    let addr = m.r[(o.src & 15) as usize].wrapping_add(off);
    let Some(v) = m.view.load::<N>(addr) else {
        return fallback(m, ip, n);
    };
    m.r[(o.dst & 15) as usize] = v;
    let k = o.b as u32 as i32 as i64 as u64;
    let to = if cond::<C>(v, k) {
        target(ip, o)
    } else {
        skip(ip, 2)
    };
    next(m, to, n - 1)
}

/// `rX = *(size *)(rY + off); rX = bswap(rX)` (`be16`/`be32` after a load) — `a` = off.
fn load_swap<const N: usize>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    if n < 1 {
        return fallback(m, ip, n);
    }
    let o = op(ip);
    let addr = m.r[(o.src & 15) as usize].wrapping_add(o.off());
    let Some(v) = m.view.load::<N>(addr) else {
        return fallback(m, ip, n);
    };
    m.r[(o.dst & 15) as usize] = if N == 2 {
        (v as u16).swap_bytes() as u64
    } else {
        (v as u32).swap_bytes() as u64
    };
    next(m, skip(ip, 2), n - 1)
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

macro_rules! by_cond {
    ($c:expr, $f:ident $(, $pre:expr)?) => {
        match $c {
            cc::EQ => $f::<$($pre,)? { cc::EQ }> as Handler,
            cc::GT => $f::<$($pre,)? { cc::GT }>,
            cc::GE => $f::<$($pre,)? { cc::GE }>,
            cc::SET => $f::<$($pre,)? { cc::SET }>,
            cc::NE => $f::<$($pre,)? { cc::NE }>,
            cc::SGT => $f::<$($pre,)? { cc::SGT }>,
            cc::SGE => $f::<$($pre,)? { cc::SGE }>,
            cc::LT => $f::<$($pre,)? { cc::LT }>,
            cc::LE => $f::<$($pre,)? { cc::LE }>,
            cc::SLT => $f::<$($pre,)? { cc::SLT }>,
            _ => $f::<$($pre,)? { cc::SLE }>,
        }
    };
}

fn alu_jcc_handler(a: u8, c: u8, x: bool) -> Handler {
    match (a, x) {
        (alu::ADD, false) => by_cond!(c, alu_jcc_k, { alu::ADD }),
        (alu::SUB, false) => by_cond!(c, alu_jcc_k, { alu::SUB }),
        (_, false) => by_cond!(c, alu_jcc_k, { alu::AND }),
        (alu::ADD, true) => by_cond!(c, alu_jcc_x, { alu::ADD }),
        (alu::SUB, true) => by_cond!(c, alu_jcc_x, { alu::SUB }),
        (_, true) => by_cond!(c, alu_jcc_x, { alu::AND }),
    }
}

fn load_jcc_handler(size: usize, c: u8) -> Handler {
    match size {
        1 => by_cond!(c, load_jcc, 1),
        2 => by_cond!(c, load_jcc, 2),
        4 => by_cond!(c, load_jcc, 4),
        _ => by_cond!(c, load_jcc, 8),
    }
}

/// Replaces the first op of every fusable sequence in `ops[start..end]` (already linked:
/// relative targets, handlers set). `ops[end - 1]` is the program's sentinel.
pub(crate) fn fuse(ops: &mut [Op], start: usize, end: usize) {
    let mut i = start;
    while i + 1 < end {
        let (a, b) = (ops[i], ops[i + 1]);
        let c = ops.get(i + 2).copied().filter(|_| i + 2 < end);
        if let Some(fused) = fuse_at(a, b, c) {
            ops[i] = fused;
        }
        i += 1;
    }
}

fn fuse_at(a: Op, b: Op, c: Option<Op>) -> Option<Op> {
    use Code::*;
    let same = |x: &Op| x.dst == a.dst;
    // rX = rY; rX += K; [if rX <cond> rZ goto T]
    if a.code == Mov64X && b.code == Add64K && same(&b) {
        if let Some(c) = c
            && same(&c)
            && let Some((cond, true)) = jcc64(c.code)
        {
            return Some(Op {
                h: by_cond!(cond, lea_jcc),
                aux: c.src,
                a: (c.rel() + 2) as i32 as u32,
                b: b.b,
                ..a
            });
        }
        return Some(Op {
            h: lea,
            b: b.b,
            ..a
        });
    }
    let (cond, x) = jcc64(b.code)?;
    if !same(&b) {
        return None;
    }
    let rel = (b.rel() + 1) as i32 as u32;
    let alu_kind = match a.code {
        Add64K => Some(alu::ADD),
        Sub64K => Some(alu::SUB),
        And64K => Some(alu::AND),
        _ => None,
    };
    // The ALU immediate is a sign-extended i32; keep its low half.
    if let Some(k) = alu_kind
        && (a.b as i32 as i64 as u64) == a.b
    {
        return Some(Op {
            h: alu_jcc_handler(k, cond, x),
            aux: b.src,
            a: rel,
            b: if x {
                a.b as u32 as u64
            } else {
                (a.b as u32 as u64) | (b.b & 0xffff_ffff) << 32
            },
            ..a
        });
    }
    let size = match a.code {
        LdxB => 1,
        LdxH => 2,
        LdxW => 4,
        LdxDW => 8,
        _ => return None,
    };
    if x || a.src == 10 {
        return None;
    }
    Some(Op {
        h: load_jcc_handler(size, cond),
        a: rel,
        b: (b.b & 0xffff_ffff) | (a.a as u16 as u64) << 32,
        ..a
    })
}

/// Load-then-swap pairs (`ldxh` + `be16`, `ldxw` + `be32`); run after [`fuse`].
pub(crate) fn fuse_swaps(ops: &mut [Op], start: usize, end: usize) {
    for i in start..end.saturating_sub(1) {
        let (a, b) = (ops[i], ops[i + 1]);
        if b.dst != a.dst {
            continue;
        }
        let h: Handler = match (a.code, b.code) {
            (Code::LdxH, Code::Swap16) => load_swap::<2>,
            (Code::LdxW, Code::Swap32) => load_swap::<4>,
            _ => continue,
        };
        ops[i].h = h;
    }
}
