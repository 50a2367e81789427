//! Handlers of the straight-line ops of the fast path (ALU, moves, immediates, `ld_field`,
//! shifts, local-memory operands): each executes its op exactly as the reference `step`
//! would and continues with the next op's handler (see `fast_run`).
//!
//! Why const generics: the ALU operation (`OP`) and shift kind (`K`) of an op are folded into
//! its handler, so the handler does only its own arithmetic, with no inner dispatch whose
//! single jump all ops of that kind would share (and mispredict). `OP` = [`DYN`] reads the
//! operation from the op instead (the rare combinations of fused pairs).

use super::LMEM_BYTES;
use super::fast::{A, D, Hop, Op};
use super::fast_run::{Cx, Out, next, slow};
use super::thread::{Cc, Thread, slot};
use crate::target::{Cond, ShiftKind};

/// "Read the ALU operation (or condition, or shift kind) from the op."
pub(super) const DYN: u8 = u8::MAX;

/// ALU operations by discriminant (for const-generic handlers).
pub(super) const ALU_OPS: [A; 11] = [
    A::PassB,
    A::Add,
    A::AddCarry,
    A::Sub,
    A::SubCarry,
    A::NotB,
    A::And,
    A::AndNotA,
    A::AndNotB,
    A::Or,
    A::Xor,
];

/// Branch conditions by discriminant.
pub(super) const CONDS: [Cond; 13] = [
    Cond::Eq,
    Cond::Ne,
    Cond::Mi,
    Cond::Pl,
    Cond::Hs,
    Cond::Lo,
    Cond::Vs,
    Cond::Vc,
    Cond::Ge,
    Cond::Lt,
    Cond::Le,
    Cond::Gt,
    Cond::Always,
];

/// Shift kinds by discriminant.
pub(super) const SHIFTS: [ShiftKind; 5] = [
    ShiftKind::Left,
    ShiftKind::Right,
    ShiftKind::ArithRight,
    ShiftKind::RotRight,
    ShiftKind::DoubleRight,
];

/// The ALU operation `k` (a handler's const parameter), or `op` for [`DYN`].
#[inline(always)]
pub(super) fn pick(k: u8, op: A) -> A {
    match ALU_OPS.get(usize::from(k)) {
        Some(&a) => a,
        None => op,
    }
}

/// The condition `k`, or `c` for [`DYN`].
#[inline(always)]
pub(super) fn pick_cond(k: u8, c: Cond) -> Cond {
    match CONDS.get(usize::from(k)) {
        Some(&a) => a,
        None => c,
    }
}

/// The op of `ip`.
#[inline(always)]
pub(super) fn op_at<'o>(ip: *const Hop) -> &'o Op {
    // SAFETY: `ip` points into the program's hops, which outlive the chain (invariant on
    // `fast_run::next`).
    unsafe { &(*ip).op }
}

/// A handler given an op of another kind (never happens: `fast_select` pairs them): hands the
/// op and the rest of its run back to the reference path.
#[cold]
#[inline(never)]
pub(super) extern "C-unwind" fn mismatch(cx: &mut Cx<'_>, ip: *const Hop, n: u64) -> Out {
    // SAFETY: as `op_at`.
    let run = unsafe { (*ip).run };
    slow(cx, ip, n - u64::from(run))
}

/// Reads slot `s` (every slot the decoder emits is below `FILE`; the mask spares the check).
#[inline(always)]
pub(super) fn rd(t: &Thread, s: u16) -> u32 {
    t.file[usize::from(s) & (slot::FILE - 1)]
}

/// Writes both slots of `d`.
#[inline(always)]
pub(super) fn wr(t: &mut Thread, d: D, v: u32) {
    t.file[usize::from(d[0])] = v;
    t.file[usize::from(d[1])] = v;
}

/// Whether condition `c` holds.
#[inline(always)]
pub(super) fn cond(c: Cond, f: &Cc) -> bool {
    let (z, n) = (f.res == 0, (f.res as i32) < 0);
    match c {
        Cond::Eq => z,
        Cond::Ne => !z,
        Cond::Mi => n,
        Cond::Pl => !n,
        Cond::Hs => f.c,
        Cond::Lo => !f.c,
        Cond::Vs => f.v,
        Cond::Vc => !f.v,
        Cond::Ge => n == f.v,
        Cond::Lt => n != f.v,
        Cond::Le => z || n != f.v,
        Cond::Gt => !z && n == f.v,
        Cond::Always => true,
    }
}

/// The ALU, as the reference's `Thread::alu`.
#[inline(always)]
pub(super) fn alu(op: A, a: u32, b: u32, f: &mut Cc) -> u32 {
    let r = match op {
        A::PassB => b,
        A::NotB => !b,
        A::And => a & b,
        A::AndNotA => !a & b,
        A::AndNotB => a & !b,
        A::Or => a | b,
        A::Xor => a ^ b,
        A::Add | A::AddCarry => {
            let cin = u64::from(op == A::AddCarry && f.c);
            let wide = u64::from(a) + u64::from(b) + cin;
            let s = i64::from(a as i32) + i64::from(b as i32) + cin as i64;
            f.c = wide >> 32 != 0;
            f.v = s != i64::from(s as i32);
            wide as u32
        }
        A::Sub | A::SubCarry => {
            let borrow = i64::from(op == A::SubCarry && !f.c);
            let wide = i64::from(a) - i64::from(b) - borrow;
            let s = i64::from(a as i32) - i64::from(b as i32) - borrow;
            f.c = wide >= 0;
            f.v = s != i64::from(s as i32);
            wide as u32
        }
    };
    f.res = r;
    r
}

/// The shifter, as the reference's `Shf`.
#[inline(always)]
pub(super) fn shift(kind: ShiftKind, x: u32, y: u32, k: u32) -> u32 {
    match kind {
        ShiftKind::Left => y << k,
        ShiftKind::Right => y >> k,
        ShiftKind::ArithRight => ((y as i32) >> k) as u32,
        ShiftKind::RotRight => y.rotate_right(k),
        ShiftKind::DoubleRight => (((u64::from(x) << 32) | u64::from(y)) >> k) as u32,
    }
}

/// `alu[d, a, OP, b]` (moves included, with `a` = the zero slot).
pub(super) extern "C-unwind" fn alu1<const P: bool, const OP: u8>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::Alu { op, d, a, b } = op_at(ip) else {
        return mismatch(cx, ip, n);
    };
    let r = alu(pick(OP, op), rd(t, a), rd(t, b), &mut t.cc);
    wr(t, d, r);
    cx.prof::<P>(ip, 0, 1);
    next::<P>(t, cx, ip.wrapping_add(1), n)
}

/// Two consecutive ALU ops (64-bit moves, adds, subtracts).
pub(super) extern "C-unwind" fn alu2<const P: bool, const OP1: u8, const OP2: u8>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::Alu2 {
        op1,
        op2,
        d1,
        d2,
        a1,
        b1,
        a2,
        b2,
    } = op_at(ip)
    else {
        return mismatch(cx, ip, n);
    };
    let r = alu(pick(OP1, op1), rd(t, a1), rd(t, b1), &mut t.cc);
    wr(t, d1, r);
    let r = alu(pick(OP2, op2), rd(t, a2), rd(t, b2), &mut t.cc);
    wr(t, d2, r);
    cx.prof::<P>(ip, 0, 1);
    cx.prof::<P>(ip, 1, 1);
    next::<P>(t, cx, ip.wrapping_add(2), n)
}

/// `immed` writing the whole register.
pub(super) extern "C-unwind" fn set<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::Set { d, v } = op_at(ip) else {
        return mismatch(cx, ip, n);
    };
    wr(t, d, v);
    cx.prof::<P>(ip, 0, 1);
    next::<P>(t, cx, ip.wrapping_add(1), n)
}

/// Two whole-register immediates.
pub(super) extern "C-unwind" fn set2<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::Set2 { d1, d2, v1, v2 } = op_at(ip) else {
        return mismatch(cx, ip, n);
    };
    wr(t, d1, v1);
    wr(t, d2, v2);
    cx.prof::<P>(ip, 0, 1);
    cx.prof::<P>(ip, 1, 1);
    next::<P>(t, cx, ip.wrapping_add(2), n)
}

/// `immed` writing part of the register.
pub(super) extern "C-unwind" fn merge<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::Merge { d, keep, v } = op_at(ip) else {
        return mismatch(cx, ip, n);
    };
    let r = (rd(t, u16::from(d[0])) & keep) | v;
    wr(t, d, r);
    cx.prof::<P>(ip, 0, 1);
    next::<P>(t, cx, ip.wrapping_add(1), n)
}

/// `ld_field` (mask expanded at decode).
pub(super) extern "C-unwind" fn ld<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::Ld {
        d,
        b,
        rot,
        mask,
        keep,
    } = op_at(ip)
    else {
        return mismatch(cx, ip, n);
    };
    let src = rd(t, b).rotate_right(u32::from(rot));
    let old = rd(t, u16::from(d[0]));
    wr(t, d, (old & keep) | (src & mask));
    cx.prof::<P>(ip, 0, 1);
    next::<P>(t, cx, ip.wrapping_add(1), n)
}

/// A shift by a constant, of kind `K` (an index of [`SHIFTS`]).
pub(super) extern "C-unwind" fn shf<const P: bool, const K: u8>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::Shf {
        kind,
        d,
        a,
        b,
        n: k,
    } = op_at(ip)
    else {
        return mismatch(cx, ip, n);
    };
    let kind = SHIFTS.get(usize::from(K)).copied().unwrap_or(kind);
    let r = shift(kind, rd(t, a), rd(t, b), u32::from(k) & 31);
    t.cc.res = r;
    wr(t, d, r);
    cx.prof::<P>(ip, 0, 1);
    next::<P>(t, cx, ip.wrapping_add(1), n)
}

/// An ALU op and the indirect shift after it.
pub(super) extern "C-unwind" fn alu_shf<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::AluShf {
        op,
        kind,
        d1,
        a1,
        b1,
        d2,
        a2,
        b2,
    } = op_at(ip)
    else {
        return mismatch(cx, ip, n);
    };
    let r = alu(op, rd(t, a1), rd(t, b1), &mut t.cc);
    wr(t, d1, r);
    let r = shift(kind, rd(t, a2), rd(t, b2), r & 31);
    t.cc.res = r;
    wr(t, d2, r);
    cx.prof::<P>(ip, 0, 1);
    cx.prof::<P>(ip, 1, 1);
    next::<P>(t, cx, ip.wrapping_add(2), n)
}

/// No operation.
pub(super) extern "C-unwind" fn nop<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    cx.prof::<P>(ip, 0, 1);
    next::<P>(t, cx, ip.wrapping_add(1), n)
}

/// The byte address of LM window word `off` of index `idx` for an op whose count is
/// `n - rem`, or `None` when the CSR hazard or the address check fails (the op then runs on
/// the reference path, which reports the same fault or stall).
#[inline(always)]
fn lm_addr(t: &Thread, idx: u8, off: u8, rem: u16, n: u64) -> Option<usize> {
    let i = usize::from(idx) & 3;
    let a = (t.lm_addr[i] & !3) as usize + 4 * usize::from(off);
    if n - u64::from(rem) <= t.lm_ready[i] || a + 4 > LMEM_BYTES {
        return None;
    }
    Some(a)
}

/// An LM op that must run on the reference path: gives back itself and the rest of its run.
#[cold]
#[inline(never)]
extern "C-unwind" fn lm_slow(cx: &mut Cx<'_>, ip: *const Hop, n: u64, rem: u16) -> Out {
    slow(cx, ip, n - u64::from(rem) - 1)
}

/// `alu[d, --, B, *l$index[off]]`.
pub(super) extern "C-unwind" fn mov_lm<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::MovLm { d, idx, off, rem } = op_at(ip) else {
        return mismatch(cx, ip, n);
    };
    let Some(at) = lm_addr(t, idx, off, rem, n) else {
        return lm_slow(cx, ip, n, rem);
    };
    let r = cx.mem.lmem.word(at);
    t.cc.res = r;
    wr(t, d, r);
    cx.prof::<P>(ip, 0, 1);
    next::<P>(t, cx, ip.wrapping_add(1), n)
}

/// `alu[d, x, OP, *l$index[off]]` (or the LM word as `a`).
pub(super) extern "C-unwind" fn alu_lm<const P: bool, const OP: u8>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::AluLm {
        op,
        d,
        x,
        lm_a,
        idx,
        off,
        rem,
    } = op_at(ip)
    else {
        return mismatch(cx, ip, n);
    };
    let Some(at) = lm_addr(t, idx, off, rem, n) else {
        return lm_slow(cx, ip, n, rem);
    };
    let w = cx.mem.lmem.word(at);
    let o = rd(t, x);
    let (a, b) = if lm_a { (w, o) } else { (o, w) };
    let r = alu(pick(OP, op), a, b, &mut t.cc);
    wr(t, d, r);
    cx.prof::<P>(ip, 0, 1);
    next::<P>(t, cx, ip.wrapping_add(1), n)
}

/// `alu[*l$index[off], a, OP, b]`.
pub(super) extern "C-unwind" fn st_lm<const P: bool, const OP: u8>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::StLm {
        op,
        a,
        b,
        idx,
        off,
        rem,
    } = op_at(ip)
    else {
        return mismatch(cx, ip, n);
    };
    let Some(at) = lm_addr(t, idx, off, rem, n) else {
        return lm_slow(cx, ip, n, rem);
    };
    let r = alu(pick(OP, op), rd(t, a), rd(t, b), &mut t.cc);
    cx.mem.lmem.set_word(at, r);
    cx.prof::<P>(ip, 0, 1);
    next::<P>(t, cx, ip.wrapping_add(1), n)
}

/// `local_csr_wr[ActLMAddr n, src]`.
pub(super) extern "C-unwind" fn csr_lm<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::CsrLm { n: i, src, rem } = op_at(ip) else {
        return mismatch(cx, ip, n);
    };
    let i = usize::from(i) & 3;
    t.lm_addr[i] = rd(t, src);
    // As the reference: the next `csr_write_delay` instructions may not use index i (this
    // one's count is `n - rem`).
    let d = cx.mem.lat.csr_write_delay.min(250);
    t.lm_ready[i] = n - u64::from(rem) + u64::from(d);
    cx.prof::<P>(ip, 0, 1);
    next::<P>(t, cx, ip.wrapping_add(1), n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_the_discriminants() {
        for (i, a) in ALU_OPS.iter().enumerate() {
            assert_eq!(*a as usize, i);
        }
        for (i, c) in CONDS.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
        for (i, k) in SHIFTS.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }
}
