//! Executor tests: memory commands in every target, atomics, swaps, and every firmware helper
//! against vm-core's map semantics and interpreter.

#![allow(clippy::unwrap_used)]

use super::tests::{alu, ga, gb, pkt, set32, set64};
use super::*;
use crate::target::{AddrMode, AluOp, CmdAction, Dst, MemTarget, Src};
use vm_core::interp::{Vm, VmConfig};
use vm_core::maps::{BPF_ANY, BPF_EXIST, BPF_NOEXIST, MapSet};
use vm_core::{MapDef, MapType, ProgType, Program};

fn map_def(map_type: MapType, key: u32, value: u32, entries: u32) -> MapDef {
    MapDef {
        name: "m".into(),
        map_type,
        key_size: key,
        value_size: value,
        max_entries: entries,
        flags: 0,
        initial_value: None,
    }
}

fn cmd(
    target: MemTarget,
    action: CmdAction,
    xfer: u8,
    count: u8,
    mode: AddrMode,
    a: Src,
    b: Src,
) -> MeInsn {
    MeInsn::Cmd {
        target,
        action,
        xfer,
        count,
        mode,
        a,
        b,
        swap: true,
    }
}

/// R0 = xfer[x] | xfer[x+1] << 32.
fn xfer_to_r0(x: u8) -> [MeInsn; 3] {
    [
        alu(AluOp::PassB, Dst::Both(0), Src::None, Src::Xfer(x)),
        alu(AluOp::PassB, Dst::Both(1), Src::None, Src::Xfer(x + 1)),
        MeInsn::Exit,
    ]
}

/// Stores `v` at stack word `w` (LMEM `stack_base + 4w`).
fn stack_word(w: u8, v: u32) -> Vec<MeInsn> {
    let mut c = set32(20, v).to_vec();
    c.push(alu(
        AluOp::PassB,
        Dst::Lm { index: 0, off: w },
        Src::None,
        gb(20),
    ));
    c
}

fn run_maps(code: &[MeInsn], maps: &mut MapSet) -> Result<MeRun, ExecError> {
    run_packet(code, maps, &pkt(), &RunOpts::default())
}

#[test]
fn ctm_packet_read_and_write() {
    let data = alu(
        AluOp::PassB,
        Dst::Both(6),
        Src::None,
        Src::Lm {
            index: 1,
            off: PV_DATA,
        },
    );
    let mut c = vec![
        data,
        cmd(
            MemTarget::Ctm,
            CmdAction::Read8,
            0,
            6,
            AddrMode::Addr32,
            ga(6),
            Src::Imm(2),
        ),
    ];
    c.extend(xfer_to_r0(0));
    let r = run_maps(&c, &mut MapSet::default()).unwrap();
    assert_eq!(r.retval, 0x0000_0706_0504_0302);
    assert_eq!(r.swaps, 1);
    assert_eq!(r.wait_cycles, 75 + 1);

    let mut c = vec![data];
    c.extend(set32(4, 0xaabb_ccdd));
    c.push(alu(AluOp::PassB, Dst::Xfer(3), Src::None, gb(4)));
    c.push(cmd(
        MemTarget::Ctm,
        CmdAction::Write8,
        3,
        3,
        AddrMode::Addr32,
        ga(6),
        Src::Imm(1),
    ));
    c.push(MeInsn::Exit);
    let r = run_maps(&c, &mut MapSet::default()).unwrap();
    let mut want = pkt();
    want[1..4].copy_from_slice(&[0xdd, 0xcc, 0xbb]);
    assert_eq!(r.packet, want);

    // Outside the thread's buffer.
    let c = [cmd(
        MemTarget::Ctm,
        CmdAction::Read32,
        0,
        1,
        AddrMode::Addr32,
        Src::None,
        Src::Imm(4),
    )];
    let e = run_maps(&c, &mut MapSet::default()).unwrap_err();
    assert!(matches!(e.kind, ExecErrorKind::BadAddress { .. }), "{e}");
}

#[test]
fn cls_and_imem_round_trip_words() {
    for target in [MemTarget::Cls, MemTarget::Imem] {
        let mut c = set32(4, 0x0102_0304).to_vec();
        c.push(alu(AluOp::PassB, Dst::Xfer(0), Src::None, gb(4)));
        c.push(alu(AluOp::Xor, Dst::Xfer(1), Src::Imm(0xff), gb(4)));
        c.extend(set32(6, 0x100));
        c.push(cmd(
            target,
            CmdAction::Write32,
            0,
            2,
            AddrMode::Addr32,
            ga(6),
            Src::None,
        ));
        c.push(cmd(
            target,
            CmdAction::Read32,
            4,
            2,
            AddrMode::Addr32,
            ga(6),
            Src::None,
        ));
        c.extend(xfer_to_r0(4));
        let mut ex = Executor::new(RunOpts::default());
        let r = ex.run(&c, &mut MapSet::default(), &pkt()).unwrap();
        assert_eq!(r.retval, 0x0102_03fb_0102_0304, "{target:?}");
        assert_eq!(r.swaps, 2);
        let bytes = match target {
            MemTarget::Cls => ex.shared().cls(),
            _ => ex.shared().imem(),
        };
        assert_eq!(&bytes[0x100..0x104], &[4, 3, 2, 1]);
    }
    let mut c2 = set32(6, CLS_BYTES as u32 - 2).to_vec();
    c2.push(cmd(
        MemTarget::Cls,
        CmdAction::Read32,
        0,
        1,
        AddrMode::Addr32,
        Src::None,
        gb(6),
    ));
    assert!(matches!(
        run_maps(&c2, &mut MapSet::default()).unwrap_err().kind,
        ExecErrorKind::BadAddress { .. }
    ));
}

/// Looks up key `k` (u32 on the stack) in map `fd`, leaving the result in R0.
fn lookup(fd: u32, k: u32) -> Vec<MeInsn> {
    let mut c = stack_word(0, k);
    c.extend(set64(1, u64::from(fd)));
    c.extend(set64(2, u64::from(stack_base(0))));
    c.push(MeInsn::FwCall {
        helper: FwHelper::MapLookup,
    });
    c
}

#[test]
fn emem_map_values_reads_and_atomic_adds() {
    let defs = [
        map_def(MapType::Hash, 4, 4, 4),
        map_def(MapType::Array, 4, 16, 4),
    ];
    let mut maps = MapSet::new(&defs, 1).unwrap();
    let value: Vec<u8> = (1..=16).collect();
    let m = maps.get_mut(1).unwrap();
    m.user_update(&2u32.to_le_bytes(), &value, BPF_ANY).unwrap();

    // lookup -> read 8 bytes at value + 4 through a 40-bit address (a = high byte).
    let mut c = lookup(1, 2);
    c.push(alu(AluOp::Add, Dst::Both(8), ga(0), Src::Imm(4)));
    c.push(cmd(
        MemTarget::Emem,
        CmdAction::Read8,
        0,
        8,
        AddrMode::Addr40,
        ga(1),
        gb(8),
    ));
    c.extend(xfer_to_r0(0));
    let r = run_maps(&c, &mut maps).unwrap();
    assert_eq!(r.retval.to_le_bytes(), [5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(r.swaps, 2, "helper and read");

    // The address itself.
    let mut c = lookup(1, 2);
    c.push(MeInsn::Exit);
    let off = maps
        .get_mut(1)
        .unwrap()
        .lookup(&2u32.to_le_bytes(), 0)
        .unwrap();
    assert_eq!(
        run_maps(&c, &mut maps).unwrap().retval,
        emem_map_addr(1, off as u64)
    );

    // Atomic adds: 32-bit at value + 0, 64-bit at value + 8 (carry across words).
    let mut c = lookup(1, 2);
    c.extend(set32(10, 0x10));
    c.push(alu(AluOp::PassB, Dst::Xfer(0), Src::None, gb(10)));
    c.push(MeInsn::Cmd {
        target: MemTarget::Emem,
        action: CmdAction::AtomicAdd,
        xfer: 0,
        count: 1,
        mode: AddrMode::Addr40,
        a: ga(1),
        b: gb(0),
        swap: false,
    });
    c.extend(set32(12, 0xffff_ffff));
    c.push(alu(AluOp::PassB, Dst::Xfer(2), Src::None, gb(12)));
    c.push(alu(AluOp::PassB, Dst::Xfer(3), Src::None, Src::Imm(1)));
    c.push(alu(AluOp::Add, Dst::Both(8), ga(0), Src::Imm(8)));
    c.push(cmd(
        MemTarget::Emem,
        CmdAction::AtomicAdd,
        2,
        2,
        AddrMode::Addr40,
        ga(1),
        gb(8),
    ));
    c.push(MeInsn::Exit);
    let r = run_maps(&c, &mut maps).unwrap();
    assert_eq!(r.swaps, 2, "the non-swapping add does not swap");
    let v = maps
        .get(1)
        .unwrap()
        .user_lookup(&2u32.to_le_bytes())
        .unwrap();
    let w0 = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
    let w1 = u64::from_le_bytes(v[8..16].try_into().unwrap());
    assert_eq!(w0, 0x0403_0201 + 0x10);
    assert_eq!(
        w1,
        u64::from_le_bytes([9, 10, 11, 12, 13, 14, 15, 16]).wrapping_add(0x1_ffff_ffff)
    );

    // Map value addresses of missing maps or past the slab fault.
    let mut c = set64(1, emem_map_addr(7, 0));
    c.push(cmd(
        MemTarget::Emem,
        CmdAction::Read32,
        0,
        1,
        AddrMode::Addr40,
        ga(3),
        gb(2),
    ));
    assert!(matches!(
        run_maps(&c, &mut maps).unwrap_err().kind,
        ExecErrorKind::BadAddress { .. }
    ));
}

/// Calls a map helper with key `k` (stack word 0) and value `v` (stack words 2..), flags.
fn map_call(helper: FwHelper, fd: u32, k: u32, v: u32, flags: u64) -> Vec<MeInsn> {
    let mut c = stack_word(0, k);
    c.extend(stack_word(2, v));
    c.extend(set64(1, u64::from(fd)));
    c.extend(set64(2, u64::from(stack_base(0))));
    c.extend(set64(3, u64::from(stack_base(0) + 8)));
    c.extend(set64(4, flags));
    c.push(MeInsn::FwCall { helper });
    c.push(MeInsn::Exit);
    c
}

#[test]
fn map_helpers_match_vm_core_semantics() {
    let defs = [
        map_def(MapType::Hash, 4, 4, 2),
        map_def(MapType::Array, 4, 4, 2),
    ];
    let mut ours = MapSet::new(&defs, 1).unwrap();
    let mut reference = MapSet::new(&defs, 1).unwrap();
    let ops: &[(FwHelper, u32, u32, u32, u64)] = &[
        (FwHelper::MapUpdate, 0, 1, 100, BPF_ANY),
        (FwHelper::MapUpdate, 0, 1, 101, BPF_NOEXIST),
        (FwHelper::MapUpdate, 0, 2, 200, BPF_EXIST),
        (FwHelper::MapUpdate, 0, 2, 200, BPF_NOEXIST),
        (FwHelper::MapUpdate, 0, 3, 300, BPF_ANY),
        (FwHelper::MapUpdate, 0, 3, 300, 99),
        (FwHelper::MapDelete, 0, 1, 0, 0),
        (FwHelper::MapDelete, 0, 1, 0, 0),
        (FwHelper::MapUpdate, 1, 1, 7, BPF_ANY),
        (FwHelper::MapUpdate, 1, 5, 7, BPF_ANY),
        (FwHelper::MapUpdate, 1, 0, 7, BPF_NOEXIST),
        (FwHelper::MapDelete, 1, 0, 0, 0),
    ];
    for &(h, fd, k, v, flags) in ops {
        let got = run_maps(&map_call(h, fd, k, v, flags), &mut ours)
            .unwrap()
            .retval;
        let m = reference.get_mut(fd as usize).unwrap();
        let want = match h {
            FwHelper::MapUpdate => m.update(&k.to_le_bytes(), &v.to_le_bytes(), flags, 0),
            _ => m.delete(&k.to_le_bytes()),
        };
        let want = want.map_or_else(|e| e.as_helper_ret() as u64, |()| 0);
        assert_eq!(got, want, "{h:?} fd {fd} key {k} flags {flags}");
    }
    for fd in 0..2 {
        assert_eq!(
            ours.get(fd).unwrap().entries(),
            reference.get(fd).unwrap().entries(),
            "map {fd}"
        );
    }
    // Lookup: present gives the value's address, absent NULL.
    let mut c = lookup(0, 2);
    c.push(MeInsn::Exit);
    assert_ne!(run_maps(&c, &mut ours).unwrap().retval, 0);
    let mut c = lookup(0, 9);
    c.push(MeInsn::Exit);
    assert_eq!(run_maps(&c, &mut ours).unwrap().retval, 0);
    // A table id that is not a map is an error, as is a key outside LMEM.
    let mut c = lookup(5, 2);
    c.push(MeInsn::Exit);
    assert!(matches!(
        run_maps(&c, &mut ours).unwrap_err().kind,
        ExecErrorKind::Helper { .. }
    ));
    let mut c = set64(1, 0);
    c.extend(set64(2, 4094));
    c.push(MeInsn::FwCall {
        helper: FwHelper::MapLookup,
    });
    assert!(matches!(
        run_maps(&c, &mut ours).unwrap_err().kind,
        ExecErrorKind::Helper { .. }
    ));
}

fn interp(text: &str, seed: u64) -> Vm {
    let raw = vm_core::asm::assemble(text).unwrap();
    let prog = Program::from_raw("t", ProgType::Xdp, &raw).unwrap();
    let cfg = VmConfig {
        prandom_seed: seed,
        ..VmConfig::default()
    };
    Vm::new(&prog, cfg).unwrap()
}

#[test]
fn random_matches_the_interpreter_stream() {
    let mut vm = interp("call 7\nexit", 42);
    let c = [
        MeInsn::FwCall {
            helper: FwHelper::Random,
        },
        MeInsn::Exit,
    ];
    let mut ex = Executor::new(RunOpts {
        prandom_seed: 42,
        ..RunOpts::default()
    });
    let mut maps = MapSet::default();
    for _ in 0..3 {
        let want = vm.run(&pkt()).unwrap().retval;
        assert_eq!(ex.run(&c, &mut maps, &pkt()).unwrap().retval, want);
    }
    // The PseudoRandNum CSR draws from the same generator.
    let c = [
        MeInsn::CsrRead {
            csr: crate::target::Csr::PseudoRandNum,
            dst: Dst::Both(0),
        },
        MeInsn::Exit,
    ];
    let want = vm.run(&pkt()).unwrap().retval;
    assert_eq!(ex.run(&c, &mut maps, &pkt()).unwrap().retval, want);
}

#[test]
fn adjust_head_and_tail_match_the_interpreter() {
    let input: Vec<u8> = (0..100u8).collect();
    for (helper, id, delta) in [
        (FwHelper::AdjustHead, 44, -4i64),
        (FwHelper::AdjustHead, 44, 20),
        (FwHelper::AdjustHead, 44, -300),
        (FwHelper::AdjustHead, 44, 90),
        (FwHelper::AdjustTail, 65, -10),
        (FwHelper::AdjustTail, 65, -90),
    ] {
        let mut vm = interp(&format!("mov %r2, {delta}\ncall {id}\nexit"), 0);
        let want = vm.run(&input).unwrap();
        let mut c = set64(2, delta as u64);
        c.push(MeInsn::FwCall { helper });
        // R1 = new packet length (PV word 0) for the check below.
        c.push(alu(
            AluOp::PassB,
            Dst::Both(2),
            Src::None,
            Src::Lm {
                index: 1,
                off: PV_LEN,
            },
        ));
        c.push(alu(AluOp::Xor, Dst::Both(4), Src::None, gb(STATIC_GPR)));
        c.push(MeInsn::Exit);
        let mut ex = Executor::new(RunOpts::default());
        let got = ex.run(&c, &mut MapSet::default(), &input).unwrap();
        assert_eq!(got.retval, want.retval, "{helper:?} {delta}");
        assert_eq!(got.packet, want.packet, "{helper:?} {delta}");
        let len = ex.thread().gpr(crate::target::Bank::A, 2);
        assert_eq!(
            ex.thread().gpr(crate::target::Bank::A, 4),
            len,
            "B22 == PV_LEN"
        );
        let pv = pkt_vec_addr(0);
        let w = |i: u8| ex.lmem().read_u32(pv + 4 * u32::from(i)).unwrap();
        assert_eq!(w(PV_DATA_END) - w(PV_DATA), len);
        assert_eq!(w(PV_DATA) - w(PV_META), 0);
    }
    // The firmware does not grow the tail.
    let mut c = set64(2, 10);
    c.push(MeInsn::FwCall {
        helper: FwHelper::AdjustTail,
    });
    c.push(MeInsn::Exit);
    let r = run_maps(&c, &mut MapSet::default()).unwrap();
    assert_eq!(r.retval, (-22i64) as u64);
    assert_eq!(r.packet, pkt());
}

#[test]
fn perf_event_output_appends_stack_and_packet_bytes() {
    let defs = [map_def(MapType::PerfEventArray, 4, 4, 1)];
    let mut maps = MapSet::new(&defs, 1).unwrap();
    let mut c = stack_word(0, 0x6463_6261);
    c.extend(set64(2, 0));
    // BPF_F_CURRENT_CPU with 2 packet bytes appended.
    c.extend(set64(3, 0xffff_ffff | (2 << 32)));
    c.extend(set64(4, u64::from(stack_base(0))));
    c.extend(set64(5, 4));
    c.push(MeInsn::FwCall {
        helper: FwHelper::PerfEventOutput,
    });
    c.push(MeInsn::Exit);
    let r = run_maps(&c, &mut maps).unwrap();
    assert_eq!(r.retval, 0);
    let recs = maps.get(0).unwrap().perf_records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].data, b"abcd\x00\x01");
}

#[test]
fn threads_interleave_through_events() {
    // Two threads of one ME run the same code on different packets, sharing LMEM.
    let mut c = vec![
        alu(
            AluOp::PassB,
            Dst::Both(6),
            Src::None,
            Src::Lm {
                index: 1,
                off: PV_DATA,
            },
        ),
        cmd(
            MemTarget::Ctm,
            CmdAction::Read8,
            0,
            1,
            AddrMode::Addr32,
            ga(6),
            Src::None,
        ),
    ];
    c.extend(xfer_to_r0(0));
    let mut lmem = Lmem::new();
    let mut shared = SharedMem::new(0, 0);
    let mut maps = MapSet::default();
    let lat = Latencies::NFP4000;
    let mut threads = [Thread::new(0), Thread::new(1)];
    threads[0].start(&mut lmem, &[0xa0; 20]).unwrap();
    threads[1].start(&mut lmem, &[0xb1; 20]).unwrap();
    let mut mem = MemState {
        lmem: &mut lmem,
        shared: &mut shared,
        maps: &mut maps,
        lat: &lat,
    };
    for t in &mut threads {
        let e = t.run_until_event(&c, &mut mem, 100).unwrap();
        assert_eq!(
            e,
            Event::Swap {
                busy_cycles: 2,
                wait_cycles: 75,
                target: SwapTarget::Mem(MemTarget::Ctm)
            }
        );
    }
    let mut got = vec![];
    for t in &mut threads {
        match t.run_until_event(&c, &mut mem, 100).unwrap() {
            Event::Done { retval, insns, .. } => {
                assert_eq!(insns, 5);
                got.push(retval);
            }
            e => panic!("{e:?}"),
        }
    }
    assert_eq!(got, [0xa0, 0xb1]);
    assert!(!threads[0].is_running());
}

/// `low_word_args` is what the lowering relies on to leave those arguments' upper words
/// stale: every helper must give the same result, maps and packet with garbage there.
#[test]
fn firmware_reads_only_the_low_words_it_declares() {
    let defs = [
        map_def(MapType::Hash, 4, 4, 2),
        map_def(MapType::Array, 4, 4, 2),
    ];
    let calls: &[(FwHelper, [u64; 5])] = &[
        (FwHelper::MapUpdate, [0, 0, 8, BPF_ANY, 0]),
        (FwHelper::MapUpdate, [1, 0, 8, BPF_ANY, 0]),
        (FwHelper::MapLookup, [1, 0, 0, 0, 0]),
        (FwHelper::MapDelete, [0, 0, 0, 0, 0]),
        (FwHelper::AdjustHead, [0, (-4i64) as u64, 0, 0, 0]),
        (FwHelper::AdjustHead, [0, 6, 0, 0, 0]),
        (FwHelper::AdjustTail, [0, (-8i64) as u64, 0, 0, 0]),
        (FwHelper::Random, [0; 5]),
    ];
    for &(h, args) in calls {
        let run = |garbage: u64| {
            let mut maps = MapSet::new(&defs, 1).unwrap();
            let mut c = stack_word(0, 1);
            c.extend(stack_word(2, 77));
            for (i, &a) in args.iter().enumerate() {
                let r = i as u8 + 1;
                // Key and value pointers are stack addresses: offsets from the frame.
                let a = match (h, r) {
                    (FwHelper::MapLookup | FwHelper::MapUpdate | FwHelper::MapDelete, 2 | 3) => {
                        u64::from(stack_base(0)) + a
                    }
                    _ => a,
                };
                let hi = if super::low_word_args(h) & (1 << r) != 0 {
                    garbage << 32
                } else {
                    0
                };
                c.extend(set64(r, (a & 0xffff_ffff | hi) ^ (a & !0xffff_ffff)));
            }
            c.push(MeInsn::FwCall { helper: h });
            c.push(MeInsn::Exit);
            let out = run_maps(&c, &mut maps).map(|r| (r.retval, r.packet));
            let contents: Vec<_> = (0..2).map(|fd| maps.get(fd).unwrap().entries()).collect();
            (out.map_err(|e| e.kind), contents)
        };
        assert_eq!(run(0), run(0xdead_beef), "{h:?}");
    }
}
