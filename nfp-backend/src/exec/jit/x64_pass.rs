//! Swaps at the end of [`super::x64`]'s blocks, passed inside the block when they can be.
//!
//! # Why
//!
//! A run to a packet's end (`run_to_end_fast`, nic-sim's replay) passes nearly every swap:
//! the demo filter swaps four times per packet (two header reads, the map lookup, the
//! counter add). Handed to `fast_run::swap_or_pass` through a Rust function, each pass cost
//! about 30 host instructions plus the dispatch to the block after it (the hop's handler,
//! an indirect jump); here it is the rule's compare, the segment's stores and the pay of
//! the next run, about 20, and a direct jump to the next block.
//!
//! # Exactness
//!
//! [`swap_or_pass`] is `fast_run::swap_or_pass` then `fast_run::pass` on `Cx`'s fields
//! (their offsets are `fast_run`'s `CX_*`): the swap of `wait` cycles at count `n` passes
//! iff `n + extra + wait < pass_limit`; a pass writes `Segment { busy: n - mark_n, wait }`
//! at `seg_at`, moves `seg_at` on, sets `mark_n = n` (see `fast_run::Cx::mark_n`), lowers
//! `pass_limit` by `wait`, and pays the run at the op after the swap (`fast_run::pay`:
//! the same [`super::x64_lag::pay`] as a branch's). When the swap does not pass, or the room
//! for segments is full (`seg_at == seg_end`: growing it is Rust's), nothing has been
//! written and the block jumps to a Rust function that calls `swap_or_pass` with the same
//! arguments (`x64_mem::ctm_swap`, `x64_call::emem_swap`, `x64_call::lookup_swap`), which
//! decides the same and swaps out or grows the room and passes.

use super::super::fast_run::{CX_EXTRA, CX_MARK_N, CX_PASS_LIMIT, CX_SEG_AT, CX_SEG_END};
use super::super::through::Segment;
use super::x64::hop_at;
use super::x64_lag::{Target, pay, settle};
use crate::cost::Latencies;
use crate::target::MemTarget;
use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi, dynasm, x64::Assembler};
use std::mem::{offset_of, size_of};

const EXTRA: i32 = CX_EXTRA as i32;
const PASS_LIMIT: i32 = CX_PASS_LIMIT as i32;
const MARK_N: i32 = CX_MARK_N as i32;
const SEG_AT: i32 = CX_SEG_AT as i32;
const SEG_END: i32 = CX_SEG_END as i32;
/// A segment's fields and size.
const BUSY: i32 = offset_of!(Segment, busy) as i32;
const WAIT: i32 = offset_of!(Segment, wait) as i32;
const SEG: i32 = size_of::<Segment>() as i32;

/// The latency `fast_mem::after_cmd` computes for a command of `words` words to `target`:
/// `target_latency(target) + per_word * (words - 1)` (u32, wrapping as in release
/// builds), of the table `lat` the code is compiled for: a constant in the code (it was
/// two loads through `Cx::mem::lat` and an add or multiply).
pub(super) fn cmd_latency(lat: &Latencies, target: MemTarget, words: u8) -> u32 {
    let w = u32::from(words).wrapping_sub(1);
    lat.target_latency(target)
        .wrapping_add(lat.per_word.wrapping_mul(w))
}

/// Records a passed swap of `rax` cycles, or of the constant `wait` (`rcx` = the count
/// `n`, `r9` = the segment cursor): its segment (busy since the last mark, `n - mark_n`,
/// and the wait), the cursor and mark moved on, the pass limit lowered by the wait.
fn record_pass(a: &mut Assembler, wait: Option<i32>) {
    dynasm!(a ; .arch x64
        ; mov r10, rcx
        ; sub r10, QWORD [rsi + MARK_N]
        ; mov QWORD [r9 + BUSY], r10);
    match wait {
        // (A non-negative immediate: sign-extended, the same 64-bit value.)
        Some(w) => dynasm!(a ; .arch x64 ; mov QWORD [r9 + WAIT], w),
        None => dynasm!(a ; .arch x64 ; mov QWORD [r9 + WAIT], rax),
    }
    dynasm!(a ; .arch x64
        ; add QWORD [rsi + SEG_AT], SEG
        ; mov QWORD [rsi + MARK_N], rcx);
    match wait {
        Some(0) => {}
        Some(w) => dynasm!(a ; .arch x64 ; sub QWORD [rsi + PASS_LIMIT], w),
        None => dynasm!(a ; .arch x64 ; sub QWORD [rsi + PASS_LIMIT], rax),
    }
}

/// A swap of `rax` cycles after the op at the end of the block, or of the constant `wait`
/// (a command's latency, [`cmd_latency`], or a lookup's, both of the table the code is
/// for: set in `rax` here only for the checked code's swap; unchecked code records the
/// constant, one host instruction per swap fewer) (`rdx` = its first op,
/// `rcx` = the count, behind it by `lag` in unchecked code, `x64_lag`): passed, then the
/// run `run` at the op `to` hops on is paid (jumping to its block's entry `l` when there
/// is one; `Some` of the lag the block laid out next runs with when the pay falls through
/// into it); else `out(t, cx, ip, n, wait)` at that op decides (see the module docs).
pub(super) fn swap_or_pass(
    a: &mut Assembler,
    (to, run): (usize, u16),
    l: (Target, Option<DynamicLabel>),
    (out, checked): (usize, bool),
    (lag, wait): (i32, Option<u32>),
) -> Option<i32> {
    let imm = wait.and_then(|w| i32::try_from(w).ok());
    if let (Some(w), None) = (wait, imm.filter(|_| !checked)) {
        dynasm!(a ; .arch x64 ; mov eax, w as i32);
    }
    // (The segment reads the count: settled first. Checked code runs with no lag.)
    settle(a, lag);
    if !checked {
        // `x64_bound`'s entry check proved that the swap passes and that there is room.
        dynasm!(a ; .arch x64 ; mov r9, QWORD [rsi + SEG_AT]);
        record_pass(a, imm);
        return pay(a, (to, run), l, false, 0);
    }
    let out = out as i64;
    dynasm!(a ; .arch x64
        // r8 = n + extra (wrapping, as `pass`'s `at`).
        ; mov r8, QWORD [rsi + EXTRA]
        ; add r8, rcx
        ; lea r9, [r8 + rax]
        ; cmp r9, QWORD [rsi + PASS_LIMIT]
        ; jae >swap
        ; mov r9, QWORD [rsi + SEG_AT]
        ; cmp r9, QWORD [rsi + SEG_END]
        ; je >swap);
    record_pass(a, None);
    pay(a, (to, run), (l.0, None), true, 0);
    dynasm!(a ; .arch x64
        ; swap:
        ; mov r8, rax);
    hop_at(a, to);
    dynasm!(a ; .arch x64
        ; mov rax, QWORD out
        ; jmp rax);
    None
}
