//! Soundness (proptest) and precision (examples) of the scalar domain.
//!
//! Soundness is checked against an oracle written here independently of
//! [`super::concrete`] (in 128-bit arithmetic, masking at the end), so that a shared mistake
//! in the eBPF rules would have to be made twice. Abstract values are generated around a
//! concrete member: a random tnum that forgets some of its bits, each range widened by a
//! random amount (often none, sometimes everything), then synced or not.

use proptest::prelude::*;
use vm_core::isa::{AluOp, ByteOrder, JmpCond, Width};

use super::{
    ScalarBounds,
    alu::{alu, endian, neg},
    branch::{branch_outcome, refine_branch},
    concrete,
};
use crate::tnum::Tnum;

const CASES: u32 = 20_000;

const WIDTHS: [Width; 2] = [Width::W32, Width::W64];

const OPS: [AluOp; 17] = [
    AluOp::Add,
    AluOp::Sub,
    AluOp::Mul,
    AluOp::Div,
    AluOp::SDiv,
    AluOp::Mod,
    AluOp::SMod,
    AluOp::And,
    AluOp::Or,
    AluOp::Xor,
    AluOp::Lsh,
    AluOp::Rsh,
    AluOp::Arsh,
    AluOp::Mov,
    AluOp::MovSx(8),
    AluOp::MovSx(16),
    AluOp::MovSx(32),
];

const CONDS: [JmpCond; 11] = [
    JmpCond::Eq,
    JmpCond::Ne,
    JmpCond::Gt,
    JmpCond::Ge,
    JmpCond::Lt,
    JmpCond::Le,
    JmpCond::Sgt,
    JmpCond::Sge,
    JmpCond::Slt,
    JmpCond::Sle,
    JmpCond::Set,
];

const ENDIAN: [(ByteOrder, u8); 9] = [
    (ByteOrder::ToLe, 16),
    (ByteOrder::ToLe, 32),
    (ByteOrder::ToLe, 64),
    (ByteOrder::ToBe, 16),
    (ByteOrder::ToBe, 32),
    (ByteOrder::ToBe, 64),
    (ByteOrder::Swap, 16),
    (ByteOrder::Swap, 32),
    (ByteOrder::Swap, 64),
];

// ---------------------------------------------------------------- oracle

fn bits(w: Width) -> u32 {
    if w == Width::W64 { 64 } else { 32 }
}

/// `v`'s low `n` bits as a signed number.
fn sext(v: u64, n: u32) -> i128 {
    let low = i128::from(v) & ((1i128 << n) - 1);
    if low >> (n - 1) != 0 {
        low - (1i128 << n)
    } else {
        low
    }
}

fn oracle_alu(op: AluOp, w: Width, x: u64, y: u64) -> u64 {
    let n = bits(w);
    let m = if n == 64 { u64::MAX } else { 0xffff_ffff };
    let (ux, uy) = (i128::from(x & m), i128::from(y & m));
    let (sx, sy) = (sext(x, n), sext(y, n));
    let count = (y & m) % u64::from(n);
    let r: i128 = match op {
        AluOp::Add => ux + uy,
        AluOp::Sub => ux - uy,
        AluOp::Mul => ((ux as u128).wrapping_mul(uy as u128)) as i128,
        AluOp::Div => {
            if uy == 0 {
                0
            } else {
                ux / uy
            }
        }
        AluOp::Mod => {
            if uy == 0 {
                ux
            } else {
                ux % uy
            }
        }
        AluOp::SDiv => {
            if sy == 0 {
                0
            } else {
                sx / sy
            }
        }
        AluOp::SMod => {
            if sy == 0 {
                sx
            } else {
                sx % sy
            }
        }
        AluOp::And => ux & uy,
        AluOp::Or => ux | uy,
        AluOp::Xor => ux ^ uy,
        AluOp::Lsh => ((ux as u128) << count) as i128,
        AluOp::Rsh => ux >> count,
        AluOp::Arsh => sx >> count,
        AluOp::Mov => uy,
        AluOp::MovSx(k) if u32::from(k) < n => sext(y, u32::from(k)),
        AluOp::MovSx(_) => uy,
    };
    (r as u64) & m
}

fn oracle_jmp(c: JmpCond, w: Width, x: u64, y: u64) -> bool {
    let n = bits(w);
    let (ux, uy) = (
        sext(x, n) & ((1i128 << n) - 1),
        sext(y, n) & ((1i128 << n) - 1),
    );
    let (sx, sy) = (sext(x, n), sext(y, n));
    match c {
        JmpCond::Eq => ux == uy,
        JmpCond::Ne => ux != uy,
        JmpCond::Gt => ux > uy,
        JmpCond::Ge => ux >= uy,
        JmpCond::Lt => ux < uy,
        JmpCond::Le => ux <= uy,
        JmpCond::Sgt => sx > sy,
        JmpCond::Sge => sx >= sy,
        JmpCond::Slt => sx < sy,
        JmpCond::Sle => sx <= sy,
        JmpCond::Set => ux & uy != 0,
    }
}

fn oracle_endian(order: ByteOrder, n: u8, x: u64) -> u64 {
    let k = usize::from(n / 8);
    let bytes = x.to_le_bytes();
    let mut out = [0u8; 8];
    for i in 0..k {
        out[i] = if order == ByteOrder::ToLe {
            bytes[i]
        } else {
            bytes[k - 1 - i]
        };
    }
    u64::from_le_bytes(out)
}

// ---------------------------------------------------------------- generators

fn concrete_value() -> BoxedStrategy<u64> {
    prop_oneof![
        3 => any::<u64>(),
        2 => (-70i64..70).prop_map(|v| v as u64),
        2 => (0u32..64, -2i64..=2).prop_map(|(k, d)| (1u64 << k).wrapping_add(d as u64)),
        1 => any::<u32>().prop_map(u64::from),
        1 => any::<i32>().prop_map(|v| v as i64 as u64),
        1 => (any::<u32>(), 0u64..3).prop_map(|(lo, hi)| (hi << 32) | u64::from(lo)),
        1 => prop::sample::select(vec![
            0, u64::MAX, i64::MIN as u64, i64::MAX as u64, 0x7fff_ffff, 0x8000_0000,
            0xffff_ffff, 0x1_0000_0000, 0xffff_ffff_8000_0000, 0xffff_ffff_0000_0000,
        ]),
    ]
    .boxed()
}

fn unknown_bits() -> BoxedStrategy<u64> {
    prop_oneof![
        2 => Just(0u64),
        1 => Just(u64::MAX),
        2 => any::<u64>(),
        2 => (any::<u64>(), any::<u64>()).prop_map(|(a, b)| a & b),
        2 => (0u32..64).prop_map(|k| (1u64 << k) - 1),
        1 => (0u32..64).prop_map(|k| u64::MAX << k),
    ]
    .boxed()
}

fn widening() -> BoxedStrategy<u64> {
    prop_oneof![
        3 => Just(0u64),
        2 => 0u64..4,
        3 => (any::<u64>(), 0u32..64).prop_map(|(v, s)| v >> s),
        1 => Just(u64::MAX),
    ]
    .boxed()
}

fn clamp_i64(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn clamp_i32(v: i128) -> i32 {
    v.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

/// An abstract value around `x`: each component independently loosened.
fn around(x: u64) -> BoxedStrategy<ScalarBounds> {
    let loose = (
        unknown_bits(),
        prop::array::uniform8(widening()),
        any::<bool>(),
    )
        .prop_map(move |(m, w, sync)| {
            let (s, lo, slo) = (
                i128::from(x as i64),
                u64::from(x as u32),
                i128::from(x as i32),
            );
            let w = w.map(i128::from);
            let mut b = ScalarBounds {
                var_off: Tnum::new(x, m),
                umin: (i128::from(x) - w[0]).max(0) as u64,
                umax: (i128::from(x) + w[1]).min(i128::from(u64::MAX)) as u64,
                smin: clamp_i64(s - w[2]),
                smax: clamp_i64(s + w[3]),
                u32_min: (i128::from(lo) - w[4]).max(0) as u32,
                u32_max: (i128::from(lo) + w[5]).min(i128::from(u32::MAX)) as u32,
                s32_min: clamp_i32(slo - w[6]),
                s32_max: clamp_i32(slo + w[7]),
            };
            if sync {
                b.sync();
            }
            b
        });
    prop_oneof![
        1 => Just(ScalarBounds::constant(x)),
        1 => Just(ScalarBounds::unknown()),
        6 => loose,
    ]
    .boxed()
}

/// A concrete value with an abstract value containing it.
fn member() -> impl Strategy<Value = (u64, ScalarBounds)> {
    concrete_value().prop_flat_map(|x| (Just(x), around(x)))
}

/// Two members; the second concrete value is often close to the first (equal, adjacent,
/// same low half), where comparisons and subsumption are interesting.
fn pair() -> impl Strategy<Value = ((u64, ScalarBounds), (u64, ScalarBounds))> {
    member().prop_flat_map(|(x, a)| {
        let y = prop_oneof![
            3 => concrete_value(),
            2 => (-3i64..=3).prop_map(move |d| x.wrapping_add(d as u64)),
            1 => (-3i32..=3, 0u64..3).prop_map(move |(d, hi)| {
                (hi << 32) | u64::from((x as u32).wrapping_add(d as u32))
            }),
        ];
        (Just((x, a)), y.prop_flat_map(|y| (Just(y), around(y))))
    })
}

fn garbage() -> impl Strategy<Value = ScalarBounds> {
    (any::<[u64; 6]>()).prop_map(|f| ScalarBounds {
        var_off: Tnum::new(f[0], f[1]),
        smin: f[2] as i64,
        smax: f[3] as i64,
        umin: f[4],
        umax: f[5],
        s32_min: (f[2] >> 32) as i32,
        s32_max: (f[3] >> 32) as i32,
        u32_min: (f[4] >> 32) as u32,
        u32_max: (f[5] >> 32) as u32,
    })
}

// ---------------------------------------------------------------- soundness

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn sync_shortcuts_agree_with_the_rounds((_x, b) in member(), g in garbage(), k in any::<u64>()) {
        for v in [b, g, ScalarBounds { var_off: Tnum::constant(k), ..b }, ScalarBounds { var_off: Tnum::constant(k), ..g }] {
            let mut slow = v;
            slow.sync_rounds();
            prop_assert_eq!(v.synced(), slow, "{:?}", v);
        }
    }

    #[test]
    fn sync_keeps_members((x, b) in member()) {
        prop_assert!(b.contains(x));
        let s = b.synced();
        prop_assert!(s.contains(x), "{:?} -> {:?} lost {:#x}", b, s, x);
        // Sync only tightens, except where Linux 6.18 itself loosens: its mixed 32/64
        // deduction *replaces* the 64-bit ranges by a non-negative s32 range.
        let reset = |v: &ScalarBounds| {
            v.s32_min >= 0
                && (v.smin, v.smax) == (i64::from(v.s32_min), i64::from(v.s32_max))
                && (v.umin, v.umax) == (v.smin as u64, v.smax as u64)
        };
        prop_assert!(s.is_subset_of(&b) || reset(&s), "sync loosened {:?} to {:?}", b, s);
        let again = s.synced();
        prop_assert!(again.contains(x) && (again.is_subset_of(&s) || reset(&again)));
    }

    #[test]
    fn alu_is_sound(((x, a), (y, b)) in pair()) {
        for w in WIDTHS {
            for op in OPS {
                let want = oracle_alu(op, w, x, y);
                prop_assert_eq!(concrete::alu_value(op, w, x, y), want, "concrete {:?} {:?}", op, w);
                let r = alu(op, w, &a, &b);
                prop_assert!(
                    r.contains(want),
                    "{:?} {:?}: {:#x} op {:#x} = {:#x} not in {:?}\n dst {:?}\n src {:?}",
                    op, w, x, y, want, r, a, b
                );
            }
            let want = oracle_alu(AluOp::Sub, w, 0, x);
            prop_assert_eq!(concrete::neg_value(w, x), want);
            prop_assert!(neg(w, &a).contains(want), "neg {:?} {:#x} {:?}", w, x, a);
        }
        for (order, n) in ENDIAN {
            let want = oracle_endian(order, n, x);
            prop_assert_eq!(concrete::endian_value(order, n, x), want);
            let r = endian(order, n, &a);
            prop_assert!(r.contains(want), "{:?}{} {:#x} -> {:#x} not in {:?}", order, n, x, want, r);
        }
    }

    #[test]
    fn branches_are_sound(((x, a), (y, b)) in pair()) {
        for w in WIDTHS {
            for c in CONDS {
                let taken = oracle_jmp(c, w, x, y);
                prop_assert_eq!(concrete::jmp_taken(c, w, x, y), taken);
                if let Some(known) = branch_outcome(c, w, &a, &b) {
                    prop_assert_eq!(known, taken, "{:?} {:?} {:#x} {:#x}", c, w, x, y);
                }
                let r = refine_branch(c, w, &a, &b);
                let edge = if taken { r.taken } else { r.not_taken };
                prop_assert!(edge.is_some(), "{:?} {:?} edge {} lost: {:#x} {:#x}", c, w, taken, x, y);
                if let Some(e) = edge {
                    prop_assert!(
                        e.dst.contains(x) && e.src.contains(y),
                        "{:?} {:?} taken={}: ({:#x}, {:#x}) excluded\n dst {:?} -> {:?}\n src {:?} -> {:?}",
                        c, w, taken, x, y, a, e.dst, b, e.src
                    );
                }
            }
        }
    }

    #[test]
    fn subsumption_agrees_with_membership(((x, a), (y, b)) in pair()) {
        // Constants are decided exactly.
        prop_assert_eq!(ScalarBounds::constant(y).is_subset_of(&a), a.contains(y));
        prop_assert_eq!(ScalarBounds::constant(x).is_subset_of(&b), b.contains(x));
        // Subset implies membership of every sample.
        if a.is_subset_of(&b) {
            prop_assert!(b.contains(x));
            prop_assert!(!a.contains(y) || b.contains(y));
        }
        let u = a.union(&b);
        prop_assert!(u.contains(x) && u.contains(y));
        prop_assert!(a.is_subset_of(&u) && b.is_subset_of(&u));
        let su = u.synced();
        prop_assert!(su.contains(x) && su.contains(y));
    }

    #[test]
    fn no_panic_on_inconsistent_values(a in garbage(), b in garbage(), x in any::<u64>()) {
        for w in WIDTHS {
            for op in OPS {
                let _ = alu(op, w, &a, &b);
            }
            let _ = neg(w, &a);
            for c in CONDS {
                let _ = refine_branch(c, w, &a, &b);
            }
        }
        for (order, n) in ENDIAN {
            let _ = endian(order, n, &a);
        }
        let s = a.synced();
        prop_assert!(s.is_empty() || s.var_off.value() & s.var_off.mask() == 0);
        let _ = (a.union(&b), a.is_subset_of(&b), a.contains(x), a.const_value(), a.zero_extend_32());
    }
}

// ---------------------------------------------------------------- precision

fn k(v: u64) -> ScalarBounds {
    ScalarBounds::constant(v)
}

#[test]
fn and_with_byte_mask_bounds_result() {
    let r = alu(AluOp::And, Width::W64, &ScalarBounds::unknown(), &k(0xff));
    assert_eq!((r.umin, r.umax, r.smin, r.smax), (0, 255, 0, 255));
    assert_eq!(r.var_off.to_string(), "(0x0; 0xff)");
    assert_eq!((r.u32_min, r.u32_max), (0, 255));
}

#[test]
fn adding_constants_shifts_ranges_exactly() {
    let x = ScalarBounds::from_urange(10, 20);
    let r = alu(AluOp::Add, Width::W64, &x, &k(5));
    assert_eq!((r.umin, r.umax, r.smin, r.smax), (15, 25, 15, 25));
    let r = alu(AluOp::Sub, Width::W64, &x, &k(3));
    assert_eq!((r.umin, r.umax), (7, 17));
    // Both bounds wrap together: still exact.
    let r = alu(
        AluOp::Add,
        Width::W64,
        &ScalarBounds::from_urange(u64::MAX - 4, u64::MAX),
        &k(10),
    );
    assert_eq!((r.umin, r.umax), (5, 9));
    // One bound wraps: unsigned range lost, signed range exact.
    let r = alu(AluOp::Sub, Width::W64, &x, &k(15));
    assert_eq!((r.umin, r.umax, r.smin, r.smax), (0, u64::MAX, -5, 5));
}

#[test]
fn alu32_wraps_and_zero_extends() {
    let x = ScalarBounds::from_urange(0xffff_fff0, 0xffff_ffff);
    let r = alu(AluOp::Add, Width::W32, &x, &k(0x20));
    assert_eq!((r.u32_min, r.u32_max), (0x10, 0x1f));
    assert_eq!((r.umin, r.umax), (0x10, 0x1f));
    let r = alu(
        AluOp::Mov,
        Width::W32,
        &ScalarBounds::default(),
        &ScalarBounds::unknown(),
    );
    assert_eq!(
        (r.umax, r.var_off),
        (0xffff_ffff, Tnum::new(0, 0xffff_ffff))
    );
    let r = alu(AluOp::Add, Width::W32, &k(u64::MAX), &k(2));
    assert_eq!(r.const_value(), Some(1));
}

#[test]
fn constants_fold_exactly() {
    let fold = |op, w, x, y| alu(op, w, &k(x), &k(y)).const_value();
    assert_eq!(fold(AluOp::Mod, Width::W64, 7, 3), Some(1));
    assert_eq!(fold(AluOp::Div, Width::W64, 7, 0), Some(0));
    assert_eq!(fold(AluOp::Mod, Width::W64, 7, 0), Some(7));
    assert_eq!(
        fold(AluOp::SDiv, Width::W64, i64::MIN as u64, u64::MAX),
        Some(i64::MIN as u64)
    );
    assert_eq!(fold(AluOp::Lsh, Width::W64, 1, 65), Some(2));
    assert_eq!(fold(AluOp::Lsh, Width::W32, 1, 33), Some(2));
    assert_eq!(
        fold(AluOp::Arsh, Width::W32, 0x8000_0000, 31),
        Some(0xffff_ffff)
    );
    assert_eq!(
        fold(AluOp::MovSx(8), Width::W32, 0, 0x80),
        Some(0xffff_ff80)
    );
}

#[test]
fn shifts_by_constants_are_exact() {
    let x = ScalarBounds::from_urange(0, 100);
    let r = alu(AluOp::Lsh, Width::W64, &x, &k(2));
    assert_eq!((r.umin, r.umax), (0, 400));
    assert!(r.var_off.is_aligned(4));
    let r = alu(AluOp::Rsh, Width::W64, &ScalarBounds::unknown(), &k(56));
    assert_eq!((r.umin, r.umax), (0, 255));
    // Only a known amount counts, as in the kernel (even if the low six bits, all that
    // eBPF uses, are known).
    let amount = ScalarBounds::from_tnum(Tnum::new(3, !63));
    let r = alu(AluOp::Lsh, Width::W64, &x, &amount);
    assert_eq!((r.umin, r.umax), (0, u64::MAX));
    // Like the kernel, `<<` drops the signed range, except `<< 32` of a non-negative half.
    let r = alu(
        AluOp::Lsh,
        Width::W64,
        &ScalarBounds::from_srange(-5, 5),
        &k(2),
    );
    assert_eq!((r.smin, r.smax), (i64::MIN, i64::MAX - 3));
    let r = alu(
        AluOp::Lsh,
        Width::W64,
        &ScalarBounds::from_srange(1, 5),
        &k(32),
    );
    assert_eq!((r.smin, r.smax), (1 << 32, 5 << 32));
}

#[test]
fn division_and_modulo_by_ranges() {
    let x = ScalarBounds::from_urange(0, 100);
    let r = alu(AluOp::Div, Width::W64, &x, &k(3));
    assert_eq!((r.umin, r.umax), (0, 33));
    let r = alu(
        AluOp::Mod,
        Width::W64,
        &ScalarBounds::unknown(),
        &ScalarBounds::from_urange(1, 16),
    );
    assert_eq!((r.umin, r.umax), (0, 15));
    let r = alu(
        AluOp::Mod,
        Width::W64,
        &x,
        &ScalarBounds::from_urange(200, 300),
    );
    assert_eq!(r, x);
}

#[test]
fn movsx_and_endian() {
    let byte = ScalarBounds::from_urange(0, 255);
    let r = alu(AluOp::MovSx(8), Width::W64, &ScalarBounds::unknown(), &byte);
    assert_eq!((r.smin, r.smax), (-128, 127));
    let r = alu(
        AluOp::MovSx(8),
        Width::W64,
        &ScalarBounds::unknown(),
        &ScalarBounds::from_urange(0, 100),
    );
    assert_eq!((r.smin, r.smax, r.umax), (0, 100, 100));
    let small = ScalarBounds::from_srange(-5, 5);
    let r = alu(
        AluOp::MovSx(8),
        Width::W64,
        &ScalarBounds::unknown(),
        &small,
    );
    // Like the kernel: a range whose ends differ above the low byte (-5 and 5 do) gives
    // the full 8-bit signed range.
    assert_eq!((r.smin, r.smax), (-128, 127));
    let r = alu(
        AluOp::MovSx(16),
        Width::W32,
        &ScalarBounds::unknown(),
        &small,
    );
    assert_eq!((r.s32_min, r.s32_max, r.umax), (-32768, 32767, 0xffff_ffff));
    // Both ends in one 256-block and of one sign after extension: kept exactly.
    let neg = ScalarBounds::from_urange(0x180, 0x1f0);
    let r = alu(AluOp::MovSx(8), Width::W64, &ScalarBounds::unknown(), &neg);
    assert_eq!((r.smin, r.smax), (-128, -16));
    let r = endian(ByteOrder::ToBe, 16, &k(0x1234));
    assert_eq!(r.const_value(), Some(0x3412));
    let r = endian(ByteOrder::ToLe, 16, &ScalarBounds::unknown());
    assert_eq!((r.umin, r.umax), (0, 0xffff));
}

#[test]
fn less_than_constant_refines_both_edges() {
    let r = refine_branch(JmpCond::Lt, Width::W64, &ScalarBounds::unknown(), &k(10));
    let taken = r.taken.expect("taken edge possible");
    assert_eq!((taken.dst.umin, taken.dst.umax), (0, 9));
    assert_eq!(taken.dst.var_off.to_string(), "(0x0; 0xf)");
    let fall = r.not_taken.expect("fall-through possible");
    assert_eq!(fall.dst.umin, 10);
    // Signed compare against 0 then unsigned: the classic bounds check.
    let pos = refine_branch(JmpCond::Sge, Width::W64, &ScalarBounds::unknown(), &k(0));
    let pos = pos.taken.expect("x >= 0 possible").dst;
    assert_eq!((pos.smin, pos.umax), (0, i64::MAX as u64));
}

#[test]
fn decided_branches_drop_an_edge() {
    let x = ScalarBounds::from_urange(0, 9);
    assert_eq!(
        branch_outcome(JmpCond::Lt, Width::W64, &x, &k(10)),
        Some(true)
    );
    let r = refine_branch(JmpCond::Lt, Width::W64, &x, &k(10));
    assert!(r.not_taken.is_none() && r.taken.is_some());
    assert_eq!(
        branch_outcome(JmpCond::Eq, Width::W64, &x, &k(10)),
        Some(false)
    );
    assert_eq!(
        branch_outcome(JmpCond::Set, Width::W64, &k(6), &k(2)),
        Some(true)
    );
    let even = ScalarBounds::from_tnum(Tnum::new(0, !1));
    assert_eq!(
        branch_outcome(JmpCond::Set, Width::W64, &even, &k(1)),
        Some(false)
    );
    assert_eq!(
        branch_outcome(JmpCond::Eq, Width::W64, &even, &k(3)),
        Some(false)
    );
}

#[test]
fn equality_and_jset_refine_tnums() {
    let r = refine_branch(JmpCond::Eq, Width::W32, &ScalarBounds::unknown(), &k(7));
    let t = r.taken.expect("possible").dst;
    assert_eq!((t.u32_min, t.u32_max), (7, 7));
    assert_eq!(t.var_off, Tnum::new(7, !0xffff_ffff));
    let r = refine_branch(JmpCond::Set, Width::W64, &ScalarBounds::unknown(), &k(8));
    assert_eq!(r.taken.expect("possible").dst.var_off, Tnum::new(8, !8));
    assert_eq!(r.not_taken.expect("possible").dst.var_off, Tnum::new(0, !8));
    let r = refine_branch(
        JmpCond::Ne,
        Width::W64,
        &ScalarBounds::from_urange(0, 10),
        &k(0),
    );
    assert_eq!(r.taken.expect("possible").dst.umin, 1);
}

#[test]
fn sync_derives_components() {
    let b = ScalarBounds::from_tnum(Tnum::new(0, 0xff));
    assert_eq!((b.umax, b.smin, b.s32_max, b.u32_max), (255, 0, 255, 255));
    // Upper half known zero, low half range known: 64-bit range follows.
    let mut b = ScalarBounds {
        u32_min: 5,
        u32_max: 9,
        ..ScalarBounds::from_tnum(Tnum::new(0, 0xffff_ffff))
    };
    b.sync();
    assert_eq!((b.umin, b.umax, b.smin, b.smax), (5, 9, 5, 9));
    // Contradictions become the empty value.
    let mut b = ScalarBounds {
        umin: 5,
        umax: 6,
        ..ScalarBounds::from_tnum(Tnum::new(0, 0b1100))
    };
    b.sync();
    assert!(b.is_empty());
    assert_eq!(ScalarBounds::from_srange(-1, 0).var_off, Tnum::UNKNOWN);
    let neg = ScalarBounds::from_srange(-16, -1);
    assert_eq!((neg.umin, neg.umax), (u64::MAX - 15, u64::MAX));
}

#[test]
fn subsumption_examples() {
    let wide = ScalarBounds::from_urange(0, 100);
    let narrow = ScalarBounds::from_urange(10, 20);
    assert!(narrow.is_subset_of(&wide));
    assert!(!wide.is_subset_of(&narrow));
    assert!(ScalarBounds::empty().is_subset_of(&narrow));
    assert!(wide.is_subset_of(&ScalarBounds::unknown()));
}
