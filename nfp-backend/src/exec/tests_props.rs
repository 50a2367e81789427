//! Executor property tests: no panics on any code or packet (valid or unencodable
//! instructions), and throughput of the thread loop.

#![allow(clippy::unwrap_used)]

use super::tests::{alu, ga, gb, set32};
use super::*;
use crate::target::decode::tests::insn;
use crate::target::{
    AddrMode, AluOp, Bank, CmdAction, Cond, Dst, FwHelper, ImmedWidth, MemTarget, MulStep,
    ShiftAmount, ShiftKind, Src,
};
use proptest::prelude::*;
use vm_core::maps::MapSet;
use vm_core::{MapDef, MapType};

/// Instructions with arbitrary (often out-of-range) operand numbers.
pub(super) fn wild_insn() -> impl Strategy<Value = MeInsn> {
    let src = (0u8..6, any::<u8>(), any::<u8>()).prop_map(|(k, x, y)| match k {
        0 => Src::Gpr(Bank::A, x % 40),
        1 => Src::Gpr(Bank::B, x % 40),
        2 => Src::Xfer(x % 40),
        3 => Src::Lm {
            index: x % 6,
            off: y % 20,
        },
        4 => Src::Imm(x),
        _ => Src::None,
    });
    let dst = (0u8..6, any::<u8>(), any::<u8>()).prop_map(|(k, x, y)| match k {
        0 => Dst::Gpr(Bank::A, x % 40),
        1 => Dst::Both(x % 40),
        2 => Dst::Xfer(x % 40),
        3 => Dst::Lm {
            index: x % 6,
            off: y % 20,
        },
        4 => Dst::Gpr(Bank::B, x % 40),
        _ => Dst::None,
    });
    (
        0u8..8,
        src.clone(),
        src,
        dst,
        any::<u8>(),
        any::<u16>(),
        any::<bool>(),
    )
        .prop_map(|(k, a, b, dst, x, t, flag)| match k {
            0 => MeInsn::Alu {
                op: if flag { AluOp::Sub } else { AluOp::AddCarry },
                dst,
                a,
                b,
            },
            1 => MeInsn::Shf {
                kind: ShiftKind::DoubleRight,
                dst,
                a,
                b,
                amount: if flag {
                    ShiftAmount::Indirect
                } else {
                    ShiftAmount::Imm(x % 40)
                },
            },
            2 => MeInsn::Immed {
                dst,
                imm: t,
                shift: x % 5,
                invert: flag,
                width: ImmedWidth::Byte,
            },
            3 => MeInsn::LdField {
                dst,
                byte_mask: x % 20,
                b,
                shift_bytes: x % 5,
                zero_fill: flag,
            },
            4 => MeInsn::Mul {
                step: MulStep::Step(x % 6),
                dst,
                a,
                b,
            },
            5 => MeInsn::Br {
                cond: Cond::Ne,
                target: t % 64,
                defer: x % 5,
            },
            6 => MeInsn::Cmd {
                target: if flag {
                    MemTarget::Emem
                } else {
                    MemTarget::Ctm
                },
                action: CmdAction::Read8,
                xfer: x % 40,
                count: (t % 40) as u8,
                mode: AddrMode::Addr40,
                a,
                b,
                swap: flag,
            },
            _ => MeInsn::Rtn {
                src: a,
                defer: x % 5,
            },
        })
}

pub(super) fn maps() -> MapSet {
    let defs = [MapDef {
        name: "h".into(),
        map_type: MapType::Hash,
        key_size: 4,
        value_size: 8,
        max_entries: 4,
        flags: 0,
        initial_value: None,
    }];
    MapSet::new(&defs, 1).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn valid_code_never_panics(
        code in prop::collection::vec(insn(), 1..40),
        packet in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let opts = RunOpts { budget: 500, ..RunOpts::default() };
        let mut m = maps();
        let _ = run_packet(&code, &mut m, &packet, &opts);
    }

    #[test]
    fn wild_code_never_panics(
        code in prop::collection::vec(prop_oneof![wild_insn(), insn()], 1..40),
        packet in prop::collection::vec(any::<u8>(), 14..100),
    ) {
        let opts = RunOpts { budget: 500, ..RunOpts::default() };
        let mut m = maps();
        if let Err(e) = run_packet(&code, &mut m, &packet, &opts) {
            let in_code = (e.pc as usize) < code.len();
            let fell_off = matches!(e.kind, ExecErrorKind::PcOutOfRange { .. });
            prop_assert!(in_code || fell_off, "{}", e);
        }
    }
}

/// A ~40-instruction XDP-like program: read 14 header bytes from CTM, compare the EtherType,
/// count in a map value with an atomic add, return XDP_PASS.
fn bench_program() -> Vec<MeInsn> {
    let mut c = vec![alu(
        AluOp::PassB,
        Dst::Both(6),
        Src::None,
        Src::Lm {
            index: 1,
            off: PV_DATA,
        },
    )];
    c.push(MeInsn::Cmd {
        target: MemTarget::Ctm,
        action: CmdAction::Read8,
        xfer: 0,
        count: 14,
        mode: AddrMode::Addr32,
        a: ga(6),
        b: Src::None,
        swap: true,
    });
    c.push(MeInsn::LdField {
        dst: Dst::Both(8),
        byte_mask: 0b0011,
        b: Src::Xfer(3),
        shift_bytes: 0,
        zero_fill: true,
    });
    c.extend(set32(10, 0x0008));
    c.push(alu(AluOp::Sub, Dst::None, ga(8), gb(10)));
    let skip = c.len() as u16 + 4;
    c.push(MeInsn::Br {
        cond: Cond::Ne,
        target: skip,
        defer: 0,
    });
    c.extend([MeInsn::Nop, MeInsn::Nop, MeInsn::Nop]);
    for i in 0..20u8 {
        c.push(alu(AluOp::Add, Dst::Both(12), ga(12), Src::Imm(i)));
    }
    c.extend(set32(0, 2));
    c.extend(set32(1, 0));
    c.push(MeInsn::Exit);
    c
}

#[test]
fn bench_program_runs() {
    let code = bench_program();
    let mut p = vec![0u8; 64];
    p[12] = 0x08;
    let r = run_packet(&code, &mut MapSet::default(), &p, &RunOpts::default()).unwrap();
    assert_eq!(r.retval, 2);
    assert_eq!(r.insns, code.len() as u64, "EtherType matches: no branch");
    let _ = FwHelper::Random;
}

/// Throughput of the thread loop; run with
/// `cargo test -p nfp-backend --release --lib exec::tests_props::throughput -- --ignored --nocapture`.
#[test]
#[ignore = "timing, run by hand in release mode"]
fn throughput() {
    let code = bench_program();
    let mut p = vec![0u8; 64];
    p[12] = 0x08;
    let mut lmem = Lmem::new();
    let mut shared = SharedMem::new(0, 0);
    let mut m = MapSet::default();
    let lat = Latencies::NFP4000;
    let mut t = Thread::new(0);
    let n = std::env::var("NFP_BENCH_PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000u64);
    let start = std::time::Instant::now();
    let mut insns = 0;
    for _ in 0..n {
        t.start(&mut lmem, &p).unwrap();
        let mut mem = MemState {
            lmem: &mut lmem,
            shared: &mut shared,
            maps: &mut m,
            lat: &lat,
        };
        loop {
            match t.run_until_event(&code, &mut mem, 1000).unwrap() {
                Event::Swap { .. } => {}
                Event::Done { insns: k, .. } => {
                    insns += k;
                    break;
                }
            }
        }
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "{:.2} M packets/s, {:.0} M insns/s ({} insns/packet)",
        n as f64 / s / 1e6,
        insns as f64 / s / 1e6,
        insns / n
    );
}
