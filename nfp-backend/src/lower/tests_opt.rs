//! One test per optimisation: ME instruction count with the optimisation off and on (the
//! rest off), both versions checked against the interpreter.

use super::LowerOptions;
use super::tests::{diff_with, packet, xdp};
use crate::NicLimits;
use crate::compile::{compile, lower_verified};
use crate::target::MeInsn;

/// Instruction counts (without / with) of `src` for one optimisation; asserts both behave.
fn before_after(src: &str, with: LowerOptions, loose: bool) -> (usize, usize) {
    let p = xdp(src);
    let pk = vec![packet()];
    let off = diff_with(&p, &pk, &LowerOptions::NONE, !loose);
    let on = diff_with(&p, &pk, &with, !loose);
    eprintln!(
        "{:?}: {} -> {}",
        on.optimisations, off.nfp_insns, on.nfp_insns
    );
    (off.nfp_insns, on.nfp_insns)
}

/// Compares narrowed to 32 bits, alone and with dead upper halves left out (the options most
/// of the tests below compare against each other).
const NARROW: LowerOptions = LowerOptions {
    narrow_cmp: true,
    ..LowerOptions::NONE
};
const NARROW_DEAD_HI: LowerOptions = LowerOptions {
    dead_hi: true,
    ..NARROW
};

const PKT: &str = "mov %r0, 0\nldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 32\njgt %r4, %r3, out\n";

#[test]
fn imm_fold_turns_negative_add_into_inline_sub() {
    let with = LowerOptions {
        imm_fold: true,
        ..LowerOptions::NONE
    };
    // add -4 needs two immeds for 0xfffffffc and its sign extension; sub 4 needs none.
    let (b, a) = before_after(
        "mov %r0, 100\nadd %r0, -4\nsub32 %r0, -3\nexit",
        with,
        false,
    );
    assert_eq!(b - a, 3, "{b} -> {a}");
}

#[test]
fn ld_mask_fold_drops_the_and() {
    let with = LowerOptions {
        ld_mask_fold: true,
        ..LowerOptions::NONE
    };
    let src = format!("{PKT}ldxw %r0, [%r2+4]\nand %r0, 0xffff\nout:\nexit");
    let (b, a) = before_after(&src, with, false);
    // The and (immed 0xffff, and, clear of the high word) disappears into ld_field's mask.
    assert_eq!(b - a, 3, "{b} -> {a}");
}

#[test]
fn pkt_cache_serves_neighbouring_loads_from_one_read() {
    let with = LowerOptions {
        pkt_cache: true,
        ..LowerOptions::NONE
    };
    let src = format!(
        "{PKT}ldxb %r0, [%r2+12]\nldxb %r5, [%r2+13]\nadd %r0, %r5\nldxh %r5, [%r2+20]\nadd %r0, %r5\nout:\nexit"
    );
    let (b, a) = before_after(&src, with, false);
    assert_eq!(b - a, 2, "two CTM reads saved: {b} -> {a}");
    let c = compile(&xdp(&src), &NicLimits::default()).unwrap_or_else(|e| panic!("{e}"));
    let reads = c
        .code
        .iter()
        .filter(|i| matches!(i, MeInsn::Cmd { .. }))
        .count();
    assert_eq!(reads, 1);
}

#[test]
fn pkt_cache_is_not_formed_beyond_the_proven_range() {
    // Bytes 40.. are not proven at the first load (only 32 are): no group.
    let src = format!("{PKT}ldxb %r0, [%r2+2]\nldxb %r5, [%r2+40]\nout:\nexit");
    let p = xdp(&src);
    let r = lower_verified(&p, &NicLimits::default(), &LowerOptions::default());
    // The program itself is refused by the verifier (the second load is out of range).
    assert!(r.is_err());
    let src = format!(
        "{PKT}ldxb %r0, [%r2+2]\nmov %r4, %r2\nadd %r4, 48\njgt %r4, %r3, out\nldxb %r5, [%r2+40]\nout:\nexit"
    );
    let c = lower_verified(&xdp(&src), &NicLimits::default(), &LowerOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.optimisations.pkt_cache_hits, 0);
}

#[test]
fn lm_window0_avoids_per_access_window_setup() {
    let with = LowerOptions {
        lm_window0: true,
        ..LowerOptions::NONE
    };
    let src = "mov %r1, 1\nstxw [%r10-4], %r1\nstxdw [%r10-16], %r1\nldxw %r0, [%r10-4]\n\
               ja +0\nldxdw %r2, [%r10-16]\nadd %r0, %r2\nexit";
    let (b, a) = before_after(src, with, false);
    assert!(a < b, "{b} -> {a}");
}

#[test]
fn lm_window3_is_reused_within_a_block() {
    let src =
        "mov %r1, 7\nstxdw [%r10-200], %r1\nstxdw [%r10-192], %r1\nldxdw %r0, [%r10-200]\nexit";
    let c = diff_with(&xdp(src), &[packet()], &LowerOptions::default(), true);
    assert_eq!(c.optimisations.lm_window3_reuse, 2);
    let writes = c
        .code
        .iter()
        .filter(|i| matches!(i, MeInsn::CsrWrite { .. }))
        .count();
    assert_eq!(writes, 1);
}

#[test]
fn dead_branch_removes_never_taken_compares() {
    let with = LowerOptions {
        dead_branch: true,
        ..LowerOptions::NONE
    };
    // r1 = 5 is known: the first jump is never taken, the second always.
    let src = "mov %r1, 5\nmov %r0, 1\njgt %r1, 10, skip\nmov %r0, 2\njlt %r1, 10, skip\nmov %r0, 3\nskip:\nexit";
    let (b, a) = before_after(src, with, false);
    assert!(b - a >= 4, "{b} -> {a}");
}

#[test]
fn narrow_cmp_compares_32_bit_bounded_values_on_their_low_words() {
    let with = NARROW;
    // A byte and a half-word from the packet, compared with each other, with immediates and
    // by signed conditions: every compare fits 32 bits, and each but the `jset` (whose mask
    // has no high word, so it was one `and` already) saves its high-word step; with no
    // 64-bit reader left, the two loads' upper halves need no clearing either (2 more).
    let src = format!(
        "{PKT}ldxb %r5, [%r2+12]\nldxh %r6, [%r2+14]\nmov %r0, 1\n\
         jeq %r5, 8, out\njgt %r6, %r5, out\njsgt %r5, 200, out\njset %r6, 0x80, out\nmov %r0, 2\nout:\nexit"
    );
    let (b, a) = before_after(&src, with, false);
    // (One more each: `PKT`'s packet bounds check, see the packet-pointer test below; and
    // one for `data_end`'s upper half, which its context load no longer clears: only
    // narrowed compares read it.)
    assert_eq!(b - a, 7, "{b} -> {a}");
    let c = diff_with(&xdp(&src), &[packet()], &with, true);
    assert_eq!(c.optimisations.narrow_cmp, 5);
}

#[test]
fn narrow_cmp_leaves_wide_or_negative_operands_alone() {
    let with = NARROW;
    // A 64-bit load may exceed 32 bits; -1 sign-extends to 64 set bits; a sum of two words
    // may carry into bit 32.
    let src = format!(
        "{PKT}ldxdw %r5, [%r2+8]\nldxw %r6, [%r2+16]\nmov %r7, %r6\nadd %r7, %r6\nmov %r0, 1\n\
         jeq %r5, 8, out\njsgt %r6, -1, out\njgt %r7, %r6, out\nmov %r0, 2\nout:\nexit"
    );
    let c = diff_with(&xdp(&src), &[packet()], &with, true);
    // Only `PKT`'s packet bounds check.
    assert_eq!(c.optimisations.narrow_cmp, 1);
}

#[test]
fn narrow_cmp_compares_packet_pointers_on_their_low_words() {
    let with = NARROW;
    // Two bounds checks (`PKT`'s and a second one further in): packet pointers are small
    // positive numbers on the NIC, so each compare loses its high-word step.
    let src = format!(
        "{PKT}mov %r5, %r2\nadd %r5, 40\njgt %r5, %r3, out\nldxb %r0, [%r2+39]\nout:\nexit"
    );
    let (b, a) = before_after(&src, with, false);
    // And `data_end`'s context load leaves the upper half alone (only compares read it).
    assert_eq!(b - a, 3, "{b} -> {a}");
    let c = diff_with(&xdp(&src), &[packet()], &with, true);
    assert_eq!(c.optimisations.narrow_cmp, 2);
}

#[test]
fn dead_hi_computes_only_the_low_word_of_unread_upper_halves() {
    let with = NARROW_DEAD_HI;
    let only_narrow = NARROW;
    // `r5 = r2 + 40` only feeds a (narrowed) bounds check, so its upper word is dead; r0's
    // upper half is read by `exit`, so `add r0, 7` keeps its high-word step.
    let src = format!(
        "{PKT}mov %r5, %r2\nadd %r5, 40\njgt %r5, %r3, out\nldxb %r0, [%r2+39]\nadd %r0, 7\nout:\nexit"
    );
    let p = xdp(&src);
    let a = diff_with(&p, &[packet()], &only_narrow, true);
    let b = diff_with(&p, &[packet()], &with, true);
    // PKT's `mov r4, r2; add r4, 32` and this `mov r5, r2; add r5, 40`: one word each;
    // then nothing reads `data`'s upper half, so its context load does not clear it.
    assert_eq!(b.optimisations.dead_hi, 4, "{:?}", b.optimisations);
    assert_eq!(
        a.nfp_insns - b.nfp_insns,
        5,
        "{} -> {}",
        a.nfp_insns,
        b.nfp_insns
    );
}

#[test]
fn dead_hi_frees_pointers_that_only_address_the_packet_or_stack() {
    let with = NARROW_DEAD_HI;
    // r5 = r2 + 10 and r6 = r10 - 8 are only used as load and store bases: the CTM and
    // local-memory addresses come from their low words, so no upper word is computed.
    let src = format!(
        "{PKT}mov %r5, %r2\nadd %r5, 10\nldxb %r0, [%r5+0]\nmov %r6, %r10\nadd %r6, -8\nstxdw [%r6+0], %r0\nldxdw %r0, [%r6+0]\nout:\nexit"
    );
    let c = diff_with(&xdp(&src), &[packet()], &with, true);
    // PKT's `mov r4, r2; add r4, 32`, then r5's and r6's pairs.
    assert_eq!(c.optimisations.dead_hi, 6, "{:?}", c.optimisations);
}

#[test]
fn dead_hi_covers_left_shifts_constants_and_helper_arguments() {
    let with = NARROW_DEAD_HI;
    let only_narrow = NARROW;
    // `r5 << 2` only feeds packet addresses (their low words), so the shift needs no
    // double shift for its upper word. The map pointer and the key pointer of the lookup
    // are read by the firmware as a 32-bit table id and LMEM address: `lddw` loads one word
    // and `r2 = r10 - 4` computes one.
    let src = format!(
        "{PKT}ldxb %r5, [%r2+14]\nand %r5, 3\nlsh %r5, 2\nmov %r6, %r2\nadd %r6, %r5\n\
         mov %r7, %r6\nadd %r7, 1\njgt %r7, %r3, out\nldxb %r0, [%r6+0]\nstxw [%r10-4], %r0\n\
         lddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\ncall 1\nmov %r0, 2\nout:\nexit"
    );
    let p = xdp(&src);
    let a = diff_with(&p, &[packet()], &only_narrow, true);
    let b = diff_with(&p, &[packet()], &with, true);
    let double_shifts = |code: &[MeInsn]| {
        code.iter()
            .filter(|i| {
                matches!(
                    i,
                    MeInsn::Shf {
                        kind: crate::target::ShiftKind::DoubleRight,
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(double_shifts(&a.code), 1);
    assert_eq!(double_shifts(&b.code), 0);
    // PKT's pair, `and`, `lsh`, r6's and r7's pairs, `lddw`, r2's pair: 11 ops.
    assert_eq!(b.optimisations.dead_hi, 11, "{:?}", b.optimisations);
    assert!(
        a.nfp_insns - b.nfp_insns >= 12,
        "{} -> {}",
        a.nfp_insns,
        b.nfp_insns
    );
}

#[test]
fn mov_fold_merges_a_copy_into_the_op_on_it() {
    let with = LowerOptions {
        mov_fold: true,
        ..LowerOptions::NONE
    };
    // `mov r5, r0; xor r5, r6` merges both words (the op's low step moves ahead of the
    // high word's copy). PKT's `mov r4, r2; add r4, 32` does not: its carry step would read
    // the carry of the copy in between. `r7 = r5; r7 += r7` reads the copy as its second
    // operand and stays as it is.
    let src = format!(
        "{PKT}ldxb %r0, [%r2+12]\nldxb %r6, [%r2+13]\nmov %r5, %r0\nxor %r5, %r6\n\
         mov %r7, %r5\nadd %r7, %r7\nmov %r0, %r7\nout:\nexit"
    );
    let (b, a) = before_after(&src, with, false);
    let c = diff_with(&xdp(&src), &[packet()], &with, true);
    assert_eq!(c.optimisations.mov_fold, 2, "{:?}", c.optimisations);
    assert_eq!(b - a, 2, "{b} -> {a}");
    // With `dead_hi`, PKT's copy is one word and merges too.
    let all = diff_with(&xdp(&src), &[packet()], &LowerOptions::default(), true);
    assert!(all.optimisations.mov_fold >= 3, "{:?}", all.optimisations);
}

#[test]
fn mov_fold_puts_a_stack_offset_into_the_frame_pointer_constant() {
    let base = LowerOptions {
        imm_fold: true,
        narrow_cmp: true,
        dead_hi: true,
        ..LowerOptions::NONE
    };
    let with = LowerOptions {
        mov_fold: true,
        ..base
    };
    // `r2 = r10 - 4` for the lookup's key: `immed[S0, 0x1fc]; r2 = A22 + S0`.
    let src = "mov %r0, 7\nstxw [%r10-4], %r0\nlddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\n\
               call 1\nmov %r0, 2\nexit";
    let p = xdp(src);
    let a = diff_with(&p, &[packet()], &base, true);
    let b = diff_with(&p, &[packet()], &with, true);
    assert_eq!(
        a.nfp_insns - b.nfp_insns,
        1,
        "{} -> {}",
        a.nfp_insns,
        b.nfp_insns
    );
    assert!(
        b.code
            .iter()
            .any(|i| matches!(i, MeInsn::Immed { imm: 0x1fc, .. }))
    );
}

#[test]
fn swap_fold_swaps_a_16_bit_load_in_place() {
    let with = LowerOptions {
        swap_fold: true,
        ..LowerOptions::NONE
    };
    // Fields starting at every byte position of a transfer word (the packet read starts at
    // the first byte used, so the positions vary with the offsets), from the packet and
    // from a map value; each result is returned, so a wrong byte order shows in r0. A field
    // spanning two words takes a double shift and is left alone.
    let mut folds = 0;
    for off in [12, 13, 14, 15, 29] {
        let src = format!("{PKT}ldxh %r0, [%r2+{off}]\nbe16 %r0\nout:\nexit");
        let (b, a) = before_after(&src, with, false);
        let c = diff_with(&xdp(&src), &[packet()], &with, true);
        let n = c.optimisations.swap_fold;
        assert!(n <= 1, "offset {off}");
        assert_eq!(b - a, 2 * n as usize, "offset {off}: {b} -> {a}");
        folds += n;
    }
    assert!(folds >= 4, "{folds} of 5 folded");
    let map = "mov %r6, 0\nstxw [%r10-4], %r6\nlddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\n\
               call 1\njeq %r0, 0, out\nldxh %r6, [%r0+2]\nbe16 %r6\nmov %r0, %r6\nout:\nexit";
    let c = diff_with(&xdp(map), &[packet()], &with, true);
    assert_eq!(c.optimisations.swap_fold, 1);
}
