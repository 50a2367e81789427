//! Stores of [`super::x64`]'s blocks that write two adjacent register slots at once.
//!
//! # Why
//!
//! The lowering keeps a 64-bit eBPF register in two adjacent GPRs and writes both banks of
//! each: a 64-bit `immed` is two steps of two 4-byte stores each, a 64-bit move two loads
//! and four stores. Stored as 8 bytes per bank, a constant pair is two stores (three when
//! the 64-bit value is not a sign-extended 32-bit immediate) and a move pair one load and
//! two stores (callgrind, `simspeed pre`: the demo filter's native code 283 -> 276 host
//! instructions per frame).
//!
//! # Exactness
//!
//! An 8-byte store at slot `s` writes slots `s` and `s + 1` (the file is an array of
//! `u32`s, little-endian as the host): exactly the two 4-byte stores it replaces. Only
//! stores the steps would make anyway are paired (`slots::live_stores`), and the second
//! step leaves out those already made. A move pair loads its sources from memory only
//! where `slots::live_stores` counts both reads as reads of memory (so their stores were
//! kept).

use super::super::fast::D;
use super::super::thread::slot;
use super::x64::{CC_RES, FILE};
use dynasmrt::{DynasmApi, dynasm, x64::Assembler};

const SINK: u8 = slot::SINK as u8;

/// The banks in which slot `e[k]` is the slot after `d[k]` (neither the sink, and the
/// second bank not a copy of the first).
fn pairs(d: D, e: D) -> [bool; 2] {
    [0, 1].map(|k| {
        d[k] != SINK
            && e[k] != SINK
            && usize::from(e[k]) == usize::from(d[k]) + 1
            && !(k == 1 && (d[1] == d[0] || e[1] == e[0]))
    })
}

/// Stores the constant `v` to the slots of `d` (the sink slot is never read: skipped); where
/// `next` (the next step's stores of its constant `w`) stores to the slot after one of
/// them, both as one 8-byte store. Returns the banks of `next` stored.
pub(super) fn set(a: &mut Assembler, d: D, v: u32, next: Option<(D, u32)>) -> [bool; 2] {
    let (p, q) = match next {
        Some((e, w)) => (pairs(d, e), u64::from(v) | (u64::from(w) << 32)),
        None => ([false; 2], 0),
    };
    let imm = i32::try_from(q as i64).ok();
    // (One pair of a value that needs a register: two instructions either way.)
    let n = p.iter().filter(|&&x| x).count();
    let p = if n == 2 || (n == 1 && imm.is_some()) {
        p
    } else {
        [false; 2]
    };
    // The single stores first: a slot of `d` in one bank may be the next step's in the
    // other, which the 8-byte store must then write last.
    for (k, &s) in d.iter().enumerate() {
        if s == SINK || p[k] || (k == 1 && d[1] == d[0]) {
            continue;
        }
        let o = FILE + 4 * i32::from(s);
        dynasm!(a ; .arch x64 ; mov DWORD [rdi + o], v as i32);
    }
    if p != [false; 2] && imm.is_none() {
        dynasm!(a ; .arch x64 ; mov r8, QWORD q as i64);
    }
    for k in 0..2 {
        if !p[k] {
            continue;
        }
        let o = FILE + 4 * i32::from(d[k]);
        match imm {
            Some(i) => dynasm!(a ; .arch x64 ; mov QWORD [rdi + o], i),
            None => dynasm!(a ; .arch x64 ; mov QWORD [rdi + o], r8),
        }
    }
    p
}

/// A move pair: `alu[d, --, B, b]` then `alu[e, --, B, b + 1]` (the caller checked that
/// both sources are read from memory and `d` does not hold `b + 1`), storing `d` and `e`
/// (the slots each step stores) and, when `res`, the second's result flag. Leaves `eax`
/// holding `e`'s value.
pub(super) fn moves(a: &mut Assembler, b: i32, (d, e): (D, D), res: bool) {
    let p = pairs(d, e);
    let single = |x: D, k: usize| x[k] != SINK && !p[k] && !(k == 1 && x[1] == x[0]);
    dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + b]);
    // As in [`set`]: the single stores of the first step before the 8-byte stores, those
    // of the second after them.
    for k in 0..2 {
        if single(d, k) {
            let o = FILE + 4 * i32::from(d[k]);
            dynasm!(a ; .arch x64 ; mov DWORD [rdi + o], eax);
        }
    }
    for k in 0..2 {
        if p[k] {
            let o = FILE + 4 * i32::from(d[k]);
            dynasm!(a ; .arch x64 ; mov QWORD [rdi + o], rax);
        }
    }
    dynasm!(a ; .arch x64 ; shr rax, 32);
    if res {
        dynasm!(a ; .arch x64 ; mov DWORD [rdi + CC_RES], eax);
    }
    for k in 0..2 {
        if single(e, k) {
            let o = FILE + 4 * i32::from(e[k]);
            dynasm!(a ; .arch x64 ; mov DWORD [rdi + o], eax);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_adjacent_slots_of_the_same_bank_pair() {
        assert_eq!(pairs([12, 44], [13, 45]), [true, true]);
        assert_eq!(pairs([12, 44], [13, SINK]), [true, false]);
        assert_eq!(pairs([12, 44], [14, 45]), [false, true]);
        assert_eq!(pairs([SINK, 44], [13, 45]), [false, true]);
        assert_eq!(pairs([12, 12], [13, 13]), [true, false]);
    }
}
