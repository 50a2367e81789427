//! Handlers of the fast path's control ops (branches and the fused compare-and-branch
//! groups, exit, the slow fall-back): the ops that may continue elsewhere than the next op,
//! pay the run they enter, or leave the chain. Memory commands and firmware calls are in
//! `fast_mem`.
//!
//! All branch forms share [`branch`] (penalty, profile, paying the target or fall-through
//! run); the condition `C` and the ALU operations are const parameters of each handler (see
//! `fast_handlers` for why).

use super::fast::{Hop, Op};
use super::fast_handlers::{alu, cond, mismatch, op_at, pick, pick_cond, rd, wr};
use super::fast_run::{Cx, Out, done, goto, pay, slow};
use super::thread::Thread;

/// The branch ending a group of `w` instructions at `ip`: to its target if `taken`, else to
/// `ip + w`, paying the run there (target and runs are read from the hop on their own path).
#[inline(always)]
pub(super) fn branch<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
    taken: bool,
    w: usize,
) -> Out {
    // SAFETY: `ip` points into the hops (invariant on `fast_run::next`).
    let hop = unsafe { &*ip };
    if taken {
        cx.add_extra(cx.penalty);
        if P {
            let c = 1 + cx.penalty;
            cx.prof::<P>(ip, w - 1, c);
        }
        goto::<P>(t, cx, hop.t, hop.rt, n)
    } else {
        cx.prof::<P>(ip, w - 1, 1);
        pay::<P>(t, cx, ip.wrapping_add(w), hop.rn, n)
    }
}

/// `br<C>` without defer slots.
pub(super) extern "C-unwind" fn br<const P: bool, const C: u8>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::Br { cond: c, .. } = op_at(ip) else {
        return mismatch(cx, ip, n);
    };
    let taken = cond(pick_cond(C, c), &t.cc);
    branch::<P>(t, cx, ip, n, taken, 1)
}

/// `br_bset` / `br_bclr` (`SET`) without defer slots.
pub(super) extern "C-unwind" fn br_bit<const P: bool, const SET: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::BrBit { src, bit, .. } = op_at(ip) else {
        return mismatch(cx, ip, n);
    };
    let taken = ((rd(t, src) >> (bit & 31)) & 1 != 0) == SET;
    branch::<P>(t, cx, ip, n, taken, 1)
}

/// `alu[d, a, OP, b]; br<C>`.
pub(super) extern "C-unwind" fn alu_br<const P: bool, const OP: u8, const C: u8>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::AluBr {
        op,
        d,
        a,
        b,
        cond: c,
        ..
    } = op_at(ip)
    else {
        return mismatch(cx, ip, n);
    };
    let r = alu(pick(OP, op), rd(t, a), rd(t, b), &mut t.cc);
    wr(t, d, r);
    cx.prof::<P>(ip, 0, 1);
    let taken = cond(pick_cond(C, c), &t.cc);
    branch::<P>(t, cx, ip, n, taken, 2)
}

/// `alu[d1, a1, OP1, b1]; alu[d2, a2, OP2, b2]; br<C>` (64-bit compares and zero tests).
pub(super) extern "C-unwind" fn alu2_br<
    const P: bool,
    const OP1: u8,
    const OP2: u8,
    const C: u8,
>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::Alu2Br {
        op1,
        op2,
        d1,
        d2,
        a1,
        b1,
        a2,
        b2,
        cond: c,
        ..
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
    let taken = cond(pick_cond(C, c), &t.cc);
    branch::<P>(t, cx, ip, n, taken, 3)
}

/// End of the program (the driver fills in the return value and counts).
///
/// It stores the thread's count and pc itself, where `n` and `ip` are at hand, so that the
/// fused start's `Done` reads neither back (`fused::settle_done`): callgrind `simspeed
/// pre`, 960.0 -> 959.4 host instructions per frame. Those are where every driver reads
/// them after `Done` (`done`), so the chain's stop (`Cx::ip`, `Cx::n`) is not stored.
pub(super) extern "C-unwind" fn exit<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let e = u64::from(cx.mem.lat.exit.saturating_sub(1));
    cx.add_extra(e);
    cx.prof::<P>(ip, 0, 1 + e);
    t.insns = n;
    // SAFETY: `ip` points into the hops (invariant on `next`), at this exit op, whose hop
    // holds its address (`Hop::t`).
    t.pc = u32::from(unsafe { (*ip).t });
    done()
}

/// An op the reference path runs (reached by falling through from the end of a run).
pub(super) extern "C-unwind" fn slow_op<const P: bool>(
    _: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    slow(cx, ip, n)
}
