//! Executor tests: instruction semantics (ALU and carries, condition codes, defer slots,
//! shifts, ld_field, multiply, immed, LM windows and the CSR hazard, errors).

#![allow(clippy::unwrap_used)]

use super::*;
use crate::target::{
    AluOp, Bank, Cond, Csr, Dst, ImmedWidth, MulStep, ShiftAmount, ShiftKind, Src,
};
use vm_core::maps::MapSet;

pub(super) fn ga(n: u8) -> Src {
    Src::Gpr(Bank::A, n)
}
pub(super) fn gb(n: u8) -> Src {
    Src::Gpr(Bank::B, n)
}

/// `immed` pair loading a 32-bit value into GPR `n` (both banks).
pub(super) fn set32(n: u8, v: u32) -> [MeInsn; 2] {
    [
        MeInsn::Immed {
            dst: Dst::Both(n),
            imm: v as u16,
            shift: 0,
            invert: false,
            width: ImmedWidth::All,
        },
        MeInsn::Immed {
            dst: Dst::Both(n),
            imm: (v >> 16) as u16,
            shift: 2,
            invert: false,
            width: ImmedWidth::Word,
        },
    ]
}

/// Loads eBPF register `Rr` with `v`.
pub(super) fn set64(r: u8, v: u64) -> Vec<MeInsn> {
    let mut c = set32(2 * r, v as u32).to_vec();
    c.extend(set32(2 * r + 1, (v >> 32) as u32));
    c
}

pub(super) fn alu(op: AluOp, dst: Dst, a: Src, b: Src) -> MeInsn {
    MeInsn::Alu { op, dst, a, b }
}

pub(super) fn pkt() -> Vec<u8> {
    (0..64u8).collect()
}

pub(super) fn run(code: &[MeInsn]) -> Result<MeRun, ExecError> {
    let mut maps = MapSet::default();
    run_packet(code, &mut maps, &pkt(), &RunOpts::default())
}

pub(super) fn retval(code: &[MeInsn]) -> u64 {
    run(code).unwrap().retval
}

fn err(code: &[MeInsn]) -> ExecError {
    run(code).unwrap_err()
}

#[test]
fn add_and_sub_carry_chains_are_64_bit() {
    let cases = [
        (u64::MAX, 1u64),
        (0xffff_ffff, 1),
        (0x1234_5678_9abc_def0, 0xfedc_ba98_7654_3210),
        (0, 0),
        (1 << 63, 1 << 63),
    ];
    for (x, y) in cases {
        let mut c = set64(1, x);
        c.extend(set64(2, y));
        c.push(alu(AluOp::Add, Dst::Both(0), ga(2), gb(4)));
        c.push(alu(AluOp::AddCarry, Dst::Both(1), ga(3), gb(5)));
        c.push(MeInsn::Exit);
        assert_eq!(retval(&c), x.wrapping_add(y), "{x:#x} + {y:#x}");
        let n = c.len();
        c[n - 3] = alu(AluOp::Sub, Dst::Both(0), ga(2), gb(4));
        c[n - 2] = alu(AluOp::SubCarry, Dst::Both(1), ga(3), gb(5));
        assert_eq!(retval(&c), x.wrapping_sub(y), "{x:#x} - {y:#x}");
    }
}

#[test]
fn logic_ops() {
    let (x, y) = (0xf0f0_1234u32, 0x0ff0_ff00u32);
    let ops: [(AluOp, u32); 8] = [
        (AluOp::PassB, y),
        (AluOp::NotB, !y),
        (AluOp::And, x & y),
        (AluOp::AndNotA, !x & y),
        (AluOp::AndNotB, x & !y),
        (AluOp::Or, x | y),
        (AluOp::Xor, x ^ y),
        (AluOp::Add, x.wrapping_add(y)),
    ];
    for (op, want) in ops {
        let mut c = set32(2, x).to_vec();
        c.extend(set32(4, y));
        c.push(alu(op, Dst::Both(0), ga(2), gb(4)));
        c.push(MeInsn::Exit);
        assert_eq!(retval(&c), u64::from(want), "{op:?}");
    }
}

fn cond_program(x: u64, y: u64, wide: bool, cond: Cond) -> Vec<MeInsn> {
    let mut c = set64(1, x);
    c.extend(set64(2, y));
    c.push(alu(AluOp::Sub, Dst::None, ga(2), gb(4)));
    if wide {
        c.push(alu(AluOp::SubCarry, Dst::None, ga(3), gb(5)));
    }
    c.extend(set32(0, 0));
    let target = c.len() as u16 + 2;
    c.push(MeInsn::Br {
        cond,
        target,
        defer: 0,
    });
    c.push(MeInsn::Exit);
    c.extend(set32(0, 1));
    c.push(MeInsn::Exit);
    c
}

#[test]
fn compare_and_branch_conditions() {
    let vals = [
        0u64,
        1,
        2,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0x1_0000_0000,
        0x7fff_ffff_ffff_ffff,
        0x8000_0000_0000_0000,
        u64::MAX,
        u64::MAX - 1,
    ];
    for &x in &vals {
        for &y in &vals {
            // 64-bit: sub + sub-carry.
            let (sx, sy) = (x as i64, y as i64);
            for (cond, want) in [
                (Cond::Hs, x >= y),
                (Cond::Lo, x < y),
                (Cond::Ge, sx >= sy),
                (Cond::Lt, sx < sy),
                (Cond::Always, true),
            ] {
                let got = retval(&cond_program(x, y, true, cond));
                assert_eq!(got, u64::from(want), "64-bit {x:#x} {cond:?} {y:#x}");
            }
            // 32-bit: one sub.
            let (a, b) = (x as u32, y as u32);
            let (sa, sb) = (a as i32, b as i32);
            for (cond, want) in [
                (Cond::Eq, a == b),
                (Cond::Ne, a != b),
                (Cond::Hs, a >= b),
                (Cond::Lo, a < b),
                (Cond::Ge, sa >= sb),
                (Cond::Lt, sa < sb),
                (Cond::Gt, sa > sb),
                (Cond::Le, sa <= sb),
                (Cond::Mi, (a.wrapping_sub(b) as i32) < 0),
                (Cond::Pl, a.wrapping_sub(b) as i32 >= 0),
                (Cond::Vs, sa.checked_sub(sb).is_none()),
                (Cond::Vc, sa.checked_sub(sb).is_some()),
            ] {
                let got = retval(&cond_program(x, y, false, cond));
                assert_eq!(got, u64::from(want), "32-bit {a:#x} {cond:?} {b:#x}");
            }
        }
    }
}

#[test]
fn defer_slots_run_before_the_branch_lands() {
    // br (taken, defer 2); two increments run; the third is skipped.
    let inc = alu(AluOp::Add, Dst::Both(0), ga(0), Src::Imm(1));
    for (cond, want) in [(Cond::Always, 2u64), (Cond::Eq, 3)] {
        let mut c = set32(0, 0).to_vec();
        c.extend(set32(1, 0));
        // Z is clear after this (1 != 0) so Eq is not taken.
        c.push(alu(AluOp::PassB, Dst::None, Src::None, Src::Imm(1)));
        c.push(MeInsn::Br {
            cond,
            target: 9,
            defer: 2,
        });
        c.push(inc);
        c.push(inc);
        c.push(inc);
        assert_eq!(c.len(), 9);
        c.push(MeInsn::Exit);
        assert_eq!(retval(&c), want, "{cond:?}");
    }
    // A branch in a defer slot is an error.
    let c = [
        MeInsn::Br {
            cond: Cond::Always,
            target: 3,
            defer: 1,
        },
        MeInsn::Br {
            cond: Cond::Always,
            target: 3,
            defer: 0,
        },
        MeInsn::Nop,
        MeInsn::Exit,
    ];
    assert_eq!(err(&c).kind, ExecErrorKind::BranchInDefer);
    assert_eq!(err(&c).pc, 1);
    let c = [
        MeInsn::Br {
            cond: Cond::Always,
            target: 3,
            defer: 1,
        },
        MeInsn::Exit,
        MeInsn::Nop,
        MeInsn::Exit,
    ];
    assert_eq!(err(&c).kind, ExecErrorKind::BranchInDefer);
}

#[test]
fn taken_branches_cost_the_penalty_minus_defer_slots() {
    let lat = Latencies::NFP4000;
    let jump = |defer: u8| {
        let mut c = vec![MeInsn::Br {
            cond: Cond::Always,
            target: 4,
            defer,
        }];
        c.extend(std::iter::repeat_n(MeInsn::Nop, 3));
        c.push(MeInsn::Exit);
        c
    };
    let r0 = run(&jump(0)).unwrap();
    assert_eq!(r0.insns, 2);
    assert_eq!(
        r0.busy_cycles,
        1 + u64::from(lat.branch_taken_penalty) + u64::from(lat.exit)
    );
    let r2 = run(&jump(2)).unwrap();
    assert_eq!(r2.insns, 4);
    assert_eq!(r2.busy_cycles, 3 + u64::from(lat.exit));
}

#[test]
fn bit_branches_and_return() {
    for (bit, set, want) in [
        (3u8, true, 1u64),
        (3, false, 0),
        (4, true, 0),
        (4, false, 1),
    ] {
        let mut c = set32(2, 0b1000).to_vec();
        c.extend(set32(0, 0));
        let target = c.len() as u16 + 2;
        c.push(MeInsn::BrBit {
            src: ga(2),
            bit,
            set,
            target,
            defer: 0,
        });
        c.push(MeInsn::Exit);
        c.extend(set32(0, 1));
        c.push(MeInsn::Exit);
        assert_eq!(retval(&c), want, "bit {bit} set {set}");
    }
    // rtn to an address in a register (bpf-to-bpf return through A21).
    let mut c = set32(21, 6).to_vec();
    c.extend(set32(0, 7));
    c.push(MeInsn::Rtn {
        src: ga(21),
        defer: 0,
    });
    c.push(MeInsn::Exit);
    c.push(alu(AluOp::Add, Dst::Both(0), ga(0), Src::Imm(1)));
    c.push(MeInsn::Exit);
    assert_eq!(retval(&c), 8);
    let mut c = set32(21, 60).to_vec();
    c.push(MeInsn::Rtn {
        src: ga(21),
        defer: 0,
    });
    assert_eq!(err(&c).kind, ExecErrorKind::BadTarget(60));
}

fn shf(kind: ShiftKind, a: Src, b: Src, amount: ShiftAmount) -> MeInsn {
    MeInsn::Shf {
        kind,
        dst: Dst::Both(0),
        a,
        b,
        amount,
    }
}

#[test]
fn shifts_direct_and_indirect() {
    let (hi, lo) = (0x8123_4567u32, 0x89ab_cdefu32);
    for n in [0u8, 1, 4, 31] {
        let s = u32::from(n);
        let cases = [
            (ShiftKind::Left, lo << s),
            (ShiftKind::Right, lo >> s),
            (ShiftKind::ArithRight, ((lo as i32) >> s) as u32),
            (ShiftKind::RotRight, lo.rotate_right(s)),
            (
                ShiftKind::DoubleRight,
                ((u64::from(hi) << 32 | u64::from(lo)) >> s) as u32,
            ),
        ];
        for (kind, want) in cases {
            let mut c = set32(2, hi).to_vec();
            c.extend(set32(4, lo));
            c.push(shf(kind, ga(2), gb(4), ShiftAmount::Imm(n)));
            c.push(MeInsn::Exit);
            assert_eq!(retval(&c), u64::from(want), "{kind:?} {n}");
            // Indirect: the amount is the low 5 bits of the previous ALU result.
            let mut c = set32(2, hi).to_vec();
            c.extend(set32(4, lo));
            c.push(alu(AluOp::PassB, Dst::None, Src::None, Src::Imm(n | 0xe0)));
            c.push(shf(kind, ga(2), gb(4), ShiftAmount::Indirect));
            c.push(MeInsn::Exit);
            assert_eq!(retval(&c), u64::from(want), "indirect {kind:?} {n}");
        }
    }
    let c = [
        MeInsn::Nop,
        shf(ShiftKind::Left, Src::None, gb(4), ShiftAmount::Indirect),
        MeInsn::Exit,
    ];
    assert_eq!(err(&c).kind, ExecErrorKind::IndirectShift);
    let c = [
        shf(ShiftKind::Left, Src::None, gb(4), ShiftAmount::Imm(32)),
        MeInsn::Exit,
    ];
    assert!(matches!(err(&c).kind, ExecErrorKind::BadOperand(_)));
}

#[test]
fn ld_field_replaces_selected_bytes() {
    let (old, src) = (0x1122_3344u32, 0xaabb_ccddu32);
    for (mask, shift, zero, want) in [
        (0b0001u8, 0u8, false, 0x1122_33dd_u32),
        (0b0011, 0, true, 0x0000_ccdd),
        (0b1100, 2, false, 0xccdd_3344),
        (0b0001, 3, false, 0x1122_33aa),
        (0b1111, 1, false, 0xddaa_bbcc),
    ] {
        let mut c = set32(0, old).to_vec();
        c.extend(set32(4, src));
        c.extend(set32(1, 0));
        c.push(MeInsn::LdField {
            dst: Dst::Both(0),
            byte_mask: mask,
            b: gb(4),
            shift_bytes: shift,
            zero_fill: zero,
        });
        c.push(MeInsn::Exit);
        assert_eq!(retval(&c), u64::from(want), "mask {mask:#b} shift {shift}");
    }
    let c = [
        MeInsn::LdField {
            dst: Dst::Both(0),
            byte_mask: 1,
            b: ga(4),
            shift_bytes: 0,
            zero_fill: false,
        },
        MeInsn::Exit,
    ];
    assert!(matches!(err(&c).kind, ExecErrorKind::BadOperand(_)));
}

fn mul(step: MulStep, dst: Dst) -> MeInsn {
    MeInsn::Mul {
        step,
        dst,
        a: ga(2),
        b: gb(4),
    }
}

#[test]
fn multiply_32x32_and_16x16() {
    let (x, y) = (0xdead_beefu32, 0x1234_5679u32);
    let p = u64::from(x) * u64::from(y);
    let mut c = set32(2, x).to_vec();
    c.extend(set32(4, y));
    c.push(mul(MulStep::Start32, Dst::None));
    for n in 1..=4 {
        c.push(mul(MulStep::Step(n), Dst::None));
    }
    c.push(mul(MulStep::Last, Dst::Both(0)));
    c.push(mul(MulStep::LastHigh, Dst::Both(1)));
    c.push(MeInsn::Exit);
    assert_eq!(retval(&c), p);

    let mut c = set32(2, 0xfffe).to_vec();
    c.extend(set32(4, 0xffff));
    c.extend(set32(1, 0));
    c.push(mul(MulStep::Start16, Dst::None));
    c.push(mul(MulStep::Step(1), Dst::None));
    c.push(mul(MulStep::Step(2), Dst::None));
    c.push(mul(MulStep::Last, Dst::Both(0)));
    c.push(MeInsn::Exit);
    assert_eq!(retval(&c), 0xfffe * 0xffff);

    // Sequence errors: a missing step, a 16-bit start with a wide operand, high of 16x16.
    let bad = [
        vec![
            mul(MulStep::Start32, Dst::None),
            mul(MulStep::Last, Dst::Both(0)),
        ],
        vec![mul(MulStep::Step(1), Dst::None)],
        vec![
            mul(MulStep::Start32, Dst::None),
            mul(MulStep::Step(2), Dst::None),
        ],
    ];
    for c in bad {
        assert!(
            matches!(err(&c).kind, ExecErrorKind::MulSequence(_)),
            "{c:?}"
        );
    }
    let mut c = set32(2, 0x1_0000).to_vec();
    c.push(mul(MulStep::Start16, Dst::None));
    assert!(matches!(err(&c).kind, ExecErrorKind::BadOperand(_)));
    let c = [
        mul(MulStep::Start16, Dst::None),
        mul(MulStep::Step(1), Dst::None),
        mul(MulStep::Step(2), Dst::None),
        mul(MulStep::LastHigh, Dst::Both(0)),
    ];
    assert!(matches!(err(&c).kind, ExecErrorKind::MulSequence(_)));
}

#[test]
fn immed_widths_shifts_and_invert() {
    let imm = |imm, shift, invert, width| MeInsn::Immed {
        dst: Dst::Both(0),
        imm,
        shift,
        invert,
        width,
    };
    let base = set32(0, 0x1122_3344);
    for (i, want) in [
        (imm(0xabcd, 0, false, ImmedWidth::All), 0x0000_abcd_u32),
        (imm(0xabcd, 1, false, ImmedWidth::All), 0x00ab_cd00),
        (imm(0xabcd, 2, false, ImmedWidth::All), 0xabcd_0000),
        (imm(0x00ff, 0, true, ImmedWidth::All), 0xffff_ff00),
        (imm(0x1, 2, true, ImmedWidth::All), 0xfffe_ffff),
        (imm(0xabcd, 0, false, ImmedWidth::Word), 0x1122_abcd),
        (imm(0xabcd, 2, false, ImmedWidth::Word), 0xabcd_3344),
        (imm(0x00ee, 1, false, ImmedWidth::Byte), 0x1122_ee44),
        (imm(0x00ee, 3, false, ImmedWidth::Byte), 0xee22_3344),
        (imm(0x0000, 0, true, ImmedWidth::Word), 0x1122_ffff),
    ] {
        let mut c = base.to_vec();
        c.extend(set32(1, 0));
        c.push(i);
        c.push(MeInsn::Exit);
        assert_eq!(retval(&c), u64::from(want), "{i:?}");
    }
    for i in [
        imm(1, 3, false, ImmedWidth::All),
        imm(1, 1, false, ImmedWidth::Word),
        imm(1, 4, false, ImmedWidth::Byte),
    ] {
        assert!(
            matches!(err(&[i]).kind, ExecErrorKind::BadOperand(_)),
            "{i:?}"
        );
    }
}

#[test]
fn lm_windows_and_the_csr_write_hazard() {
    // Store through LM index 0 (the stack), read back through index 3 after moving it.
    let sb = stack_base(0);
    let mut c = set32(4, 0xcafe_f00d).to_vec();
    c.push(alu(
        AluOp::PassB,
        Dst::Lm { index: 0, off: 5 },
        Src::None,
        gb(4),
    ));
    c.extend(set32(6, sb + 16));
    c.push(MeInsn::CsrWrite {
        csr: Csr::ActLmAddr(3),
        src: ga(6),
    });
    c.extend([MeInsn::Nop, MeInsn::Nop, MeInsn::Nop]);
    c.push(alu(
        AluOp::PassB,
        Dst::Both(0),
        Src::None,
        Src::Lm { index: 3, off: 1 },
    ));
    c.extend(set32(1, 0));
    c.push(MeInsn::Exit);
    assert_eq!(retval(&c), 0xcafe_f00d);
    // Two NOPs only: the window is used too early.
    let at = c.iter().position(|i| *i == MeInsn::Nop).unwrap();
    c.remove(at);
    let e = err(&c);
    assert_eq!(e.kind, ExecErrorKind::LmHazard(3));
    assert_eq!(e.pc as usize, at + 2);
    // Other indexes are not affected by the write.
    let c = [
        MeInsn::CsrWrite {
            csr: Csr::ActLmAddr(3),
            src: Src::Imm(0),
        },
        alu(
            AluOp::PassB,
            Dst::Both(0),
            Src::None,
            Src::Lm {
                index: 1,
                off: PV_LEN,
            },
        ),
        MeInsn::Exit,
    ];
    assert_eq!(retval(&c) as u32, 64);
    // The packet vector through ActLMAddr1; a window past the end of LMEM faults.
    let c = [
        MeInsn::CsrWrite {
            csr: Csr::ActLmAddr(2),
            src: ga(6),
        },
        MeInsn::Nop,
        MeInsn::Nop,
        MeInsn::Nop,
        alu(
            AluOp::PassB,
            Dst::Both(0),
            Src::None,
            Src::Lm { index: 2, off: 15 },
        ),
    ];
    let mut big = set32(6, 4090).to_vec();
    big.extend(c);
    assert!(matches!(err(&big).kind, ExecErrorKind::BadAddress { .. }));
}

#[test]
fn entry_state_follows_the_conventions() {
    let mut c = vec![
        alu(AluOp::PassB, Dst::Both(0), Src::None, ga(STATIC_GPR)),
        alu(AluOp::PassB, Dst::Both(1), Src::None, gb(STATIC_GPR)),
        MeInsn::Exit,
    ];
    let r = retval(&c);
    assert_eq!(r as u32, stack_base(0));
    assert_eq!((r >> 32) as u32, 64);
    let words = [
        (PV_LEN, 64u32),
        (PV_META, ctm_packet_buffer(0) + PKT_HEADROOM),
        (PV_DATA, ctm_packet_buffer(0) + PKT_HEADROOM),
        (PV_DATA_END, ctm_packet_buffer(0) + PKT_HEADROOM + 64),
    ];
    for (w, want) in words {
        c[0] = alu(
            AluOp::PassB,
            Dst::Both(0),
            Src::None,
            Src::Lm { index: 1, off: w },
        );
        assert_eq!(retval(&c) as u32, want, "word {w}");
    }
    // Context number and CSR reads.
    let c = [
        MeInsn::CsrRead {
            csr: Csr::ActiveCtxSts,
            dst: Dst::Both(0),
        },
        MeInsn::CsrRead {
            csr: Csr::ActLmAddr(1),
            dst: Dst::Both(1),
        },
        MeInsn::Exit,
    ];
    let mut maps = MapSet::default();
    let opts = RunOpts {
        thread: 2,
        ..RunOpts::default()
    };
    let r = run_packet(&c, &mut maps, &pkt(), &opts).unwrap();
    assert_eq!(r.retval, 2 | (u64::from(pkt_vec_addr(2)) << 32));
    assert_eq!(r.packet, pkt());
}

#[test]
fn errors_name_the_pc_and_never_panic() {
    assert_eq!(
        err(&[MeInsn::Nop]).kind,
        ExecErrorKind::PcOutOfRange { len: 1 }
    );
    let same = [alu(AluOp::Add, Dst::Both(0), ga(1), ga(2))];
    assert!(matches!(err(&same).kind, ExecErrorKind::BadOperand(_)));
    let bad_gpr = [alu(AluOp::Add, Dst::Both(40), ga(1), gb(2))];
    assert!(matches!(err(&bad_gpr).kind, ExecErrorKind::BadOperand(_)));
    let bad_target = [MeInsn::Br {
        cond: Cond::Always,
        target: 9,
        defer: 0,
    }];
    assert_eq!(err(&bad_target).kind, ExecErrorKind::BadTarget(9));
    let spin = [MeInsn::Br {
        cond: Cond::Always,
        target: 0,
        defer: 0,
    }];
    let mut maps = MapSet::default();
    let opts = RunOpts {
        budget: 100,
        ..RunOpts::default()
    };
    let e = run_packet(&spin, &mut maps, &pkt(), &opts).unwrap_err();
    assert_eq!(e.kind, ExecErrorKind::Budget(100));
    assert!(
        e.to_string().starts_with("ME pc 0: instruction budget"),
        "{e}"
    );
    let short = run_packet(&[MeInsn::Exit], &mut maps, &[0; 4], &opts).unwrap_err();
    assert!(matches!(short.kind, ExecErrorKind::BadPacket { .. }));
    let mut t = Thread::new(0);
    let mut lmem = Lmem::new();
    let mut shared = SharedMem::new(0, 0);
    let lat = Latencies::NFP4000;
    let mut mem = MemState {
        lmem: &mut lmem,
        shared: &mut shared,
        maps: &mut maps,
        lat: &lat,
    };
    assert_eq!(
        t.run_until_event(&[MeInsn::Exit], &mut mem, 10)
            .unwrap_err()
            .kind,
        ExecErrorKind::NotRunning
    );
}
