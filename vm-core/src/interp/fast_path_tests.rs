//! Tests of the speed paths: partial stack re-zeroing (watermarks), paying for runs instead
//! of single instructions, and the superinstruction families. Each checks that the fast
//! path is invisible: same results, counts and budgets as the plain path.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;
use crate::asm::assemble;
use crate::isa::{AluOp, ByteOrder, CallTarget, Insn, JmpCond, LdImm64, Operand, Size, Width};

fn vm_of(ty: ProgType, text: &str, cfg: VmConfig) -> Vm {
    let raw = assemble(text).unwrap_or_else(|e| panic!("assembly failed: {e}\n{text}"));
    let p = Program::from_raw("t", ty, &raw).unwrap();
    Vm::new(&p, cfg).unwrap()
}

fn vm(ty: ProgType, text: &str) -> Vm {
    vm_of(ty, text, VmConfig::default())
}

/// Runs `text` three times; every run must see a zeroed stack and so return 0.
fn zero_each_run(ty: ProgType, text: &str, input: &[u8]) {
    let mut v = vm(ty, text);
    for run in 0..3 {
        let out = v.run(input).unwrap_or_else(|e| panic!("run {run}: {e}"));
        assert_eq!(
            out.retval, 0,
            "run {run} saw bytes of an earlier run:\n{text}"
        );
    }
}

#[test]
fn stack_written_through_a_copy_of_r10_reads_as_zero_next_run() {
    // Reads first, then writes through r1 = r10 - 8 and r1 = r10 - 300 (a second, lower
    // watermark step in the same run).
    zero_each_run(
        ProgType::Mem,
        "ldxdw %r0, [%r10-8]\nldxdw %r2, [%r10-300]\nor %r0, %r2\n\
         mov %r1, %r10\nadd %r1, -8\nstdw [%r1+0], 7\n\
         mov %r1, %r10\nadd %r1, -300\nstxdw [%r1+0], %r10\nexit",
        &[],
    );
}

#[test]
fn stack_written_by_an_atomic_reads_as_zero_next_run() {
    zero_each_run(
        ProgType::Mem,
        "ldxdw %r0, [%r10-16]\nmov %r1, %r10\nmov %r2, 5\nlock add [%r1-16], %r2\nexit",
        &[],
    );
}

#[test]
fn stack_filled_by_a_helper_reads_as_zero_next_run() {
    // bpf_skb_load_bytes(skb, 0, r10 - 64, 32) fills 32 stack bytes from the packet.
    let text = "ldxdw %r0, [%r10-64]\nldxdw %r6, [%r10-40]\nor %r0, %r6\nmov %r6, %r0\n\
                mov %r2, 0\nmov %r3, %r10\nadd %r3, -64\nmov %r4, 32\ncall 26\n\
                ldxdw %r7, [%r10-64]\njeq %r7, 0, bad\nmov %r0, %r6\nexit\nbad:\nmov %r0, 99\nexit";
    zero_each_run(ProgType::SchedCls, text, &[0xab; 60]);
}

#[test]
fn stack_of_an_unused_frame_written_through_a_forged_address_reads_as_zero() {
    // Frame 5's stack is region slot 5 (address (5 + 1) << 32); the program never calls.
    zero_each_run(
        ProgType::Mem,
        "lddw %r1, 0x600000064\nldxdw %r0, [%r1+0]\nstdw [%r1+0], 9\nexit",
        &[],
    );
}

#[test]
fn callee_frames_read_as_zero_next_run() {
    let text = "call local sub\nexit\nsub:\nldxdw %r0, [%r10-8]\nldxdw %r2, [%r10-200]\n\
                or %r0, %r2\nstdw [%r10-8], 3\nmov %r1, %r10\nstdw [%r1-200], 4\nexit";
    let mut v = vm(ProgType::Mem, text);
    for _ in 0..3 {
        assert_eq!(v.run(&[]).unwrap().retval, 0);
    }
}

#[test]
fn stack_written_before_a_fault_reads_as_zero_next_run() {
    let text = "ldxdw %r0, [%r10-8]\njne %r0, 0, out\nmov %r1, %r10\nstdw [%r1-8], 1\n\
                stdw [%r10-16], 2\nldxdw %r2, [%r3+0]\nout:\nexit";
    let mut v = vm(ProgType::Mem, text);
    for _ in 0..3 {
        assert!(matches!(v.run(&[]), Err(RunError::Fault { pc: 5, .. })));
    }
}

#[test]
fn writes_past_the_frame_through_a_copy_of_r10_still_fault() {
    let mut v = vm(ProgType::Mem, "mov %r1, %r10\nstdw [%r1-4], 1\nexit");
    assert!(matches!(v.run(&[]), Err(RunError::Fault { pc: 1, .. })));
    let mut v = vm(ProgType::Mem, "mov %r1, %r10\nstdw [%r1-520], 1\nexit");
    assert!(matches!(v.run(&[]), Err(RunError::Fault { pc: 1, .. })));
}

#[test]
fn loop_counts_are_exact_at_every_chunk_boundary() {
    // 3 + 3n instructions; n chosen so that runs straddle the 1024-instruction chunks.
    for n in [1u64, 340, 341, 342, 683, 1000] {
        let text = format!(
            "mov %r0, 0\nmov %r1, 0\nloop:\nadd %r0, %r1\nadd %r1, 1\njlt %r1, {n}, loop\nexit"
        );
        let want = 3 + 3 * n;
        for fused in [true, false] {
            let cfg = |budget| VmConfig {
                budget,
                superinstructions: fused,
                ..VmConfig::default()
            };
            let out = vm_of(ProgType::Mem, &text, cfg(want)).run(&[]).unwrap();
            assert_eq!(out.insns, want);
            assert_eq!(out.retval, n * (n - 1) / 2);
            assert_eq!(
                vm_of(ProgType::Mem, &text, cfg(want - 1)).run(&[]),
                Err(RunError::BudgetExceeded { budget: want - 1 })
            );
        }
    }
}

#[test]
fn straight_line_code_longer_than_a_chunk_counts_exactly() {
    let mut text = String::from("mov %r0, 0\n");
    for _ in 0..3000 {
        text.push_str("add %r0, 1\n");
    }
    text.push_str("exit\n");
    let out = vm(ProgType::Mem, &text).run(&[]).unwrap();
    assert_eq!((out.retval, out.insns), (3000, 3002));
    let cfg = VmConfig {
        budget: 3001,
        ..VmConfig::default()
    };
    assert_eq!(
        vm_of(ProgType::Mem, &text, cfg).run(&[]),
        Err(RunError::BudgetExceeded { budget: 3001 })
    );
}

#[test]
fn ld_abs_abort_counts_only_what_executed() {
    // The failing load is the 3rd instruction of a 5-instruction run.
    let text = "mov %r6, %r1\nmov %r0, 7\nldabsw 1000\nmov %r0, 1\nexit";
    for fused in [true, false] {
        let cfg = VmConfig {
            superinstructions: fused,
            ..VmConfig::default()
        };
        let out = vm_of(ProgType::SocketFilter, text, cfg)
            .run(&[0; 60])
            .unwrap();
        assert_eq!((out.retval, out.insns), (0, 3));
    }
}

// ------------------------------------------------------------ superinstructions ----

fn alu64_op() -> impl Strategy<Value = AluOp> {
    prop_oneof![
        Just(AluOp::Add),
        Just(AluOp::Sub),
        Just(AluOp::And),
        Just(AluOp::Or),
        Just(AluOp::Xor),
        Just(AluOp::Lsh),
        Just(AluOp::Rsh),
        Just(AluOp::Arsh),
        Just(AluOp::Mul),
    ]
}

fn cond() -> impl Strategy<Value = JmpCond> {
    prop_oneof![
        Just(JmpCond::Eq),
        Just(JmpCond::Gt),
        Just(JmpCond::Ge),
        Just(JmpCond::Set),
        Just(JmpCond::Ne),
        Just(JmpCond::Sgt),
        Just(JmpCond::Sge),
        Just(JmpCond::Lt),
        Just(JmpCond::Le),
        Just(JmpCond::Slt),
        Just(JmpCond::Sle),
    ]
}

/// Registers the patterns may write: all but r1 (the input buffer) and r10.
fn wreg() -> impl Strategy<Value = u8> {
    prop_oneof![Just(0u8), 2u8..=9]
}

pub(super) fn imm() -> impl Strategy<Value = i32> {
    prop_oneof![-3i32..70, any::<i32>()]
}

fn alu(op: AluOp, dst: u8, src: Operand) -> Insn {
    Insn::Alu {
        op,
        width: Width::W64,
        dst,
        src,
    }
}

fn jcc(cond: JmpCond, dst: u8, src: Operand) -> Insn {
    // Skips the one instruction after the jump: the first of the next pattern, so jumps also
    // land in the middle of fused sequences.
    Insn::Jmp {
        cond,
        width: Width::W64,
        dst,
        src,
        off: 1,
    }
}

/// One instance of a fusable family, with random registers, constants and conditions.
pub(super) fn pattern() -> impl Strategy<Value = Vec<Insn>> {
    let operand = || {
        prop_oneof![
            (0u8..=9).prop_map(Operand::Reg),
            imm().prop_map(Operand::Imm)
        ]
    };
    prop_oneof![
        // rX = rY; rX op= K|rZ
        (wreg(), 0u8..=10, alu64_op(), operand())
            .prop_map(|(d, s, op, o)| vec![alu(AluOp::Mov, d, Operand::Reg(s)), alu(op, d, o)]),
        // rX op1= K1; rX op2= K2
        (wreg(), alu64_op(), imm(), alu64_op(), imm()).prop_map(|(d, a, k1, b, k2)| vec![
            alu(a, d, Operand::Imm(k1)),
            alu(b, d, Operand::Imm(k2))
        ]),
        // rX op= K; if rX <cond> K2|rZ goto
        (wreg(), alu64_op(), imm(), cond(), operand())
            .prop_map(|(d, a, k, c, o)| vec![alu(a, d, Operand::Imm(k)), jcc(c, d, o)]),
        // rX = *(u16|u32 *)(r1 + off); rX = bswap(rX); [if rX <cond> K goto]
        (
            wreg(),
            prop_oneof![Just((Size::H, 16u8)), Just((Size::W, 32u8))],
            prop_oneof![9 => 0i16..28, 1 => 28i16..40],
            cond(),
            prop_oneof![imm(), 0i32..0x10000],
            any::<bool>()
        )
            .prop_map(|(d, (size, bits), off, c, k, with_jump)| {
                let mut v = vec![
                    Insn::Load {
                        size,
                        signed: false,
                        dst: d,
                        src: 1,
                        off,
                    },
                    Insn::Endian {
                        order: ByteOrder::ToBe,
                        bits,
                        dst: d,
                    },
                ];
                if with_jump {
                    v.push(jcc(c, d, Operand::Imm(k)));
                }
                v
            }),
        // rX = rY; rX op= rZ; rX += K
        (wreg(), 0u8..=10, alu64_op(), 0u8..=10, imm()).prop_map(|(d, s, op, z, k)| vec![
            alu(AluOp::Mov, d, Operand::Reg(s)),
            alu(op, d, Operand::Reg(z)),
            alu(AluOp::Add, d, Operand::Imm(k))
        ]),
        // rX = *(size *)(r1 + off); rX op= K
        (
            wreg(),
            prop_oneof![Just(Size::B), Just(Size::H), Just(Size::W), Just(Size::DW)],
            prop_oneof![9 => 0i16..24, 1 => 24i16..40],
            alu64_op(),
            imm()
        )
            .prop_map(|(d, size, off, op, k)| vec![
                Insn::Load {
                    size,
                    signed: false,
                    dst: d,
                    src: 1,
                    off,
                },
                alu(op, d, Operand::Imm(k))
            ]),
        // rX = rY; rX += K; if rX <cond> rZ goto
        (wreg(), 0u8..=10, imm(), cond(), 0u8..=9).prop_map(|(d, s, k, c, z)| vec![
            alu(AluOp::Mov, d, Operand::Reg(s)),
            alu(AluOp::Add, d, Operand::Imm(k)),
            jcc(c, d, Operand::Reg(z))
        ]),
    ]
}

/// `lddw rI, v` for r0 and r2..r9, the patterns, an epilogue folding all registers into r0
/// and a fusable `mov r0, ..; exit` ending, either in the main program or in a subprogram
/// (so that the fused exit also returns from a call).
pub(super) fn program(
    seeds: &[u64],
    patterns: &[Vec<Insn>],
    end_in_sub: bool,
    end_k: Option<i32>,
) -> Vec<Insn> {
    let mut v = Vec::new();
    for (i, &s) in seeds.iter().enumerate() {
        let dst = if i == 0 { 0 } else { i as u8 + 1 };
        v.push(Insn::LdImm64 {
            dst,
            value: LdImm64::Imm(s),
        });
        v.push(Insn::LdImm64Tail);
    }
    for p in patterns {
        v.extend_from_slice(p);
    }
    // Something for the last pattern's jump to skip.
    v.push(alu(AluOp::Mov, 9, Operand::Imm(1)));
    for r in 2..=9 {
        v.push(alu(AluOp::Xor, 0, Operand::Reg(r)));
    }
    let ending = match end_k {
        Some(k) => alu(AluOp::Mov, 0, Operand::Imm(k)),
        None => alu(AluOp::Mov, 0, Operand::Reg(6)),
    };
    if end_in_sub {
        v.push(alu(AluOp::Mov, 6, Operand::Reg(0)));
        v.push(Insn::Call(CallTarget::Local(1)));
        v.push(Insn::Exit);
    }
    v.push(ending);
    v.push(Insn::Exit);
    v
}

fn run_prog(
    insns: &[Insn],
    budget: u64,
    fused: bool,
    input: &[u8],
) -> Result<RunOutcome, RunError> {
    let p = Program {
        name: "fp".into(),
        section: None,
        prog_type: ProgType::Mem,
        insns: insns.to_vec(),
        maps: Vec::new(),
    };
    let cfg = VmConfig {
        budget,
        superinstructions: fused,
        ..VmConfig::default()
    };
    Vm::new(&p, cfg).unwrap().run(input)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn superinstruction_families_match_plain_execution(
        seeds in prop::collection::vec(prop_oneof![any::<u64>(), 0u64..64], 9),
        patterns in prop::collection::vec(pattern(), 1..12),
        end_in_sub in any::<bool>(),
        end_k in prop::option::of(imm()),
        input in prop::collection::vec(any::<u8>(), 32),
        budget in prop_oneof![0u64..80, Just(1000u64)],
    ) {
        let insns = program(&seeds, &patterns, end_in_sub, end_k);
        let fused = run_prog(&insns, budget, true, &input);
        let plain = run_prog(&insns, budget, false, &input);
        prop_assert_eq!(&fused, &plain);
        if let Ok(out) = fused {
            let again = run_prog(&insns, out.insns, true, &input);
            prop_assert_eq!(again, Ok(out.clone()));
            let short = run_prog(&insns, out.insns - 1, true, &input);
            prop_assert_eq!(short, Err(RunError::BudgetExceeded { budget: out.insns - 1 }));
        }
    }
}

#[test]
fn xdp_md_loads_take_the_fast_path_with_the_same_results() {
    // All six words, then data again after bpf_xdp_adjust_head(ctx, 4) (helper 44) moved it.
    let text = "mov %r6, %r1\nldxw %r2, [%r6+0]\nldxw %r3, [%r6+4]\nldxw %r4, [%r6+8]\n\
                ldxw %r5, [%r6+12]\nldxw %r7, [%r6+16]\nldxw %r8, [%r6+20]\n\
                mov %r0, %r3\nsub %r0, %r2\njne %r2, %r4, bad\nadd %r0, %r5\nadd %r0, %r7\n\
                add %r0, %r8\nstxdw [%r10-8], %r0\nmov %r9, %r2\nmov %r1, %r6\nmov %r2, 4\n\
                call 44\nldxdw %r0, [%r10-8]\nldxw %r2, [%r6+0]\nsub %r2, %r9\nlsh %r2, 16\n\
                add %r0, %r2\nexit\n\
                bad:\nmov %r0, 99\nexit";
    let cfg = VmConfig {
        ingress_ifindex: 3,
        rx_queue_index: 5,
        ..VmConfig::default()
    };
    let mut v = vm_of(ProgType::Xdp, text, cfg);
    for _ in 0..2 {
        // len 60, + ifindex 3 + queue 5 + egress 0, + (4 << 16) for the moved data.
        assert_eq!(v.run(&[0; 60]).unwrap().retval, 60 + 3 + 5 + (4 << 16));
    }
    // Misaligned, out of range and sign-extending loads still follow the kernel's rules.
    for bad in [
        "ldxw %r0, [%r1+2]",
        "ldxw %r0, [%r1+24]",
        "ldxsw %r0, [%r1+0]",
    ] {
        let mut v = vm(ProgType::Xdp, &format!("{bad}\nexit"));
        assert!(
            matches!(v.run(&[0; 60]), Err(RunError::Fault { pc: 0, .. })),
            "{bad}"
        );
    }
}

#[test]
fn same_sized_packets_are_laid_out_anew_after_a_helper_moved_data() {
    // A packet starting with 1 has its head moved by 4 bytes; every run returns the length
    // it sees. A run after one that moved `data` must not take the same-sized refill.
    let text = "mov %r6, %r1\nldxw %r2, [%r6+0]\nldxw %r3, [%r6+4]\njge %r2, %r3, out\n\
                ldxb %r4, [%r2+0]\njne %r4, 1, out\nmov %r1, %r6\nmov %r2, 4\ncall 44\n\
                out:\nldxw %r2, [%r6+0]\nldxw %r0, [%r6+4]\nsub %r0, %r2\nexit";
    let mut v = vm(ProgType::Xdp, text);
    let mut moved = [0u8; 60];
    moved[0] = 1;
    let plain = [0u8; 60];
    for (input, want) in [
        (&moved, 56),
        (&plain, 60),
        (&plain, 60),
        (&moved, 56),
        (&moved, 56),
        (&plain, 60),
    ] {
        assert_eq!(v.run(input).unwrap().retval, want);
    }
    // A change to the maps between runs also lays the packet out anew.
    let _ = v.maps_mut();
    assert_eq!(v.run(&plain).unwrap().retval, 60);
}

pub(super) fn map_def(name: &str, map_type: MapType, key: u32, value: u32, entries: u32) -> MapDef {
    MapDef {
        name: name.into(),
        map_type,
        key_size: key,
        value_size: value,
        max_entries: entries,
        flags: 0,
        initial_value: None,
    }
}

fn vm_maps(ty: ProgType, text: &str, maps: Vec<MapDef>) -> Vm {
    let raw = assemble(text).unwrap_or_else(|e| panic!("assembly failed: {e}\n{text}"));
    let mut p = Program::from_raw("t", ty, &raw).unwrap();
    p.maps = maps;
    Vm::new(&p, VmConfig::default()).unwrap()
}

#[test]
fn value_pointers_stay_valid_across_map_helpers_and_user_updates() {
    // The region table is no longer rebuilt after map helpers: a value pointer taken before
    // an update through the helper must see the helper's write, and the program's own
    // writes must land where user space reads them.
    let text = "
        stw [%r10-4], 1
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -4
        call bpf_map_lookup_elem
        jeq %r0, 0, out
        mov %r6, %r0
        ldxdw %r7, [%r6+0]
        stdw [%r10-16], 40
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -4
        mov %r3, %r10
        add %r3, -16
        mov %r4, 0
        call bpf_map_update_elem
        ldxdw %r0, [%r6+0]
        add %r0, %r7
        stxdw [%r6+0], %r0
    out:
        exit";
    let mut v = vm_maps(
        ProgType::Mem,
        text,
        vec![map_def("a", MapType::Array, 4, 8, 2)],
    );
    // 40 + 0, then 40 + 40 (the value persisted), then after user space wrote 2: 40 + 2.
    assert_eq!(v.run(&[]).unwrap().retval, 40);
    assert_eq!(v.run(&[]).unwrap().retval, 80);
    v.maps_mut()
        .get_mut(0)
        .unwrap()
        .user_update(&1u32.to_le_bytes(), &2u64.to_le_bytes(), 0)
        .unwrap();
    assert_eq!(v.run(&[]).unwrap().retval, 42);
    let m = v.maps().get(0).unwrap();
    assert_eq!(
        m.user_lookup(&1u32.to_le_bytes()).unwrap(),
        42u64.to_le_bytes()
    );
}

#[test]
fn long_hash_keys_take_the_scratch_path() {
    // A 24-byte key (above the on-stack key size): update, then look up and read.
    let text = "
        stdw [%r10-24], 1
        stdw [%r10-16], 2
        stdw [%r10-8], 3
        stdw [%r10-32], 77
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -24
        mov %r3, %r10
        add %r3, -32
        mov %r4, 0
        call bpf_map_update_elem
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -24
        call bpf_map_lookup_elem
        jeq %r0, 0, out
        ldxdw %r0, [%r0+0]
    out:
        exit";
    let mut v = vm_maps(
        ProgType::Mem,
        text,
        vec![map_def("h", MapType::Hash, 24, 8, 4)],
    );
    assert_eq!(v.run(&[]).unwrap().retval, 77);
}

#[test]
fn specialised_atomics_match_the_isa() {
    // On a map value: 32-bit fetch-add wrapping, 64-bit or/and/xor, 32-bit xor with fetch;
    // the fetched values and the final value are folded into r0.
    let text = "
        stw [%r10-4], 0
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -4
        call bpf_map_lookup_elem
        jeq %r0, 0, out
        mov %r6, %r0
        stdw [%r6+0], -2
        mov %r1, 3
        lock fetch add32 [%r6+0], %r1
        ldxdw %r7, [%r6+0]
        lddw %r2, 0x0f0f0f0f00000000
        lock or [%r6+0], %r2
        mov %r3, -256
        lock and [%r6+0], %r3
        mov %r4, 0x55
        lock fetch xor32 [%r6+0], %r4
        ldxdw %r0, [%r6+0]
        xor %r0, %r1
        xor %r0, %r7
        xor %r0, %r4
    out:
        exit";
    let mut v = vm_maps(
        ProgType::Mem,
        text,
        vec![map_def("a", MapType::Array, 4, 8, 1)],
    );
    // value: 0xffff_ffff_ffff_fffe; fetch add32 3: low half wraps to 1, r1 = 0xffff_fffe;
    // r7 = 0xffff_ffff_0000_0001; or: 0xffff_ffff_0000_0001; and -256: 0xffff_ffff_0000_0000;
    // fetch xor32 0x55: r4 = 0, value 0xffff_ffff_0000_0055.
    let value: u64 = 0xffff_ffff_0000_0055;
    let want = value ^ 0xffff_fffe ^ 0xffff_ffff_0000_0001;
    assert_eq!(v.run(&[]).unwrap().retval, want);
}

#[test]
fn mem_input_windows_follow_the_input_length() {
    // The `mem` window is re-published only when the input length changes: a shorter input
    // must fault where a longer one read, and a longer one read again afterwards.
    let mut v = vm(ProgType::Mem, "ldxb %r0, [%r1+7]\nexit");
    assert_eq!(v.run(&[0, 1, 2, 3, 4, 5, 6, 7]).unwrap().retval, 7);
    assert!(matches!(
        v.run(&[0, 1, 2, 3]),
        Err(RunError::Fault { pc: 0, .. })
    ));
    assert_eq!(v.run(&[9; 8]).unwrap().retval, 9);
    assert_eq!(v.run(&[5; 8]).unwrap().retval, 5);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The run loop's own `bpf_map_lookup_elem` on arrays (`exec::call_lookup`) answers
    /// exactly as the general helper, which `callx` always takes: same pointer or null, same
    /// fault, same count, over plain and per-CPU arrays (any CPU, wrapping), hash maps,
    /// keys in and out of range, keys the windows refuse and arguments that are not maps.
    #[test]
    fn array_lookup_fast_path_matches_the_general_helper(
        kind in 0u8..3,
        value_size in 1u32..40,
        entries in 1u32..6,
        ncpus in 1u32..4,
        cpu in 0u32..6,
        key in 0u32..8,
        key_at in prop_oneof![Just(-4i32), Just(-2), Just(-512), Just(0)],
        bad_map in any::<bool>(),
    ) {
        let map_type = [MapType::Array, MapType::PercpuArray, MapType::Hash][kind as usize];
        let load_map = if bad_map { "mov %r1, 5" } else { "lddw %r1, map_fd 0" };
        let body = |call: &str| {
            format!(
                "stw [%r10-4], {key}\n{load_map}\nmov %r2, %r10\nadd %r2, {key_at}\n\
                 mov %r5, 1\n{call}\njeq %r0, 0, out\nldxb %r7, [%r0+0]\nstb [%r0+0], 1\n\
                 out:\nexit"
            )
        };
        let cfg = VmConfig { ncpus, cpu, ..VmConfig::default() };
        let def = map_def("m", map_type, 4, value_size, entries);
        let run = |text: String| {
            let raw = assemble(&text).unwrap();
            let mut p = Program::from_raw("t", ProgType::Mem, &raw).unwrap();
            p.maps = vec![def.clone()];
            let mut v = Vm::new(&p, cfg.clone()).unwrap();
            if map_type == MapType::Hash {
                let k = key.to_le_bytes();
                let val = vec![7u8; value_size as usize];
                v.maps_mut().get_mut(0).unwrap().user_update(&k, &val, 0).unwrap();
            }
            let first = format!("{:?}", v.run(&[]));
            let second = format!("{:?}", v.run(&[]));
            let slab = v.maps().get(0).unwrap().slab().to_vec();
            (first, second, slab)
        };
        let fast = run(body("call bpf_map_lookup_elem"));
        let general = run(body("call %r5"));
        prop_assert_eq!(fast, general);
    }
}

/// One random line (or short sequence) of a program for [`reused_vm_runs_like_a_fresh_one`];
/// `i` is its index, `n` the number of lines (jump targets are labels `l0..l{n}`).
fn reuse_line(i: usize, n: usize) -> impl Strategy<Value = String> {
    // r6..r9 hold what the prologue read from the stack (see `reuse_program`).
    let d = || 0u8..=5;
    let sz = || {
        prop_oneof![
            Just(("b", 1i32)),
            Just(("h", 2)),
            Just(("w", 4)),
            Just(("dw", 8))
        ]
    };
    let soff = move || prop::sample::select(vec![-8i32, -16, -24, -32, -64, -200, -256, -512]);
    prop_oneof![
        3 => (d(), sz(), soff()).prop_map(|(d, (s, _), o)| format!("ldx{s} %r{d}, [%r10{o}]")),
        2 => (d(), sz(), 0i32..16).prop_map(|(d, (s, _), o)| format!("ldx{s} %r{d}, [%r1+{o}]")),
        2 => (sz(), soff(), -5i32..5).prop_map(|((s, _), o, k)| format!("st{s} [%r10{o}], {k}")),
        2 => (sz(), soff(), d()).prop_map(|((s, _), o, r)| format!("stx{s} [%r10{o}], %r{r}")),
        2 => (2u8..=5, sz(), soff(), d()).prop_map(|(a, (s, _), o, r)| {
            format!("mov %r{a}, %r10\nadd %r{a}, {o}\nstx{s} [%r{a}+0], %r{r}")
        }),
        1 => (d(), soff()).prop_map(|(r, o)| format!("lock add [%r10{o}], %r{r}")),
        4 => (prop_oneof![Just("add"), Just("xor"), Just("mov"), Just("lsh"), Just("sub")], d(), 0u8..=10)
            .prop_map(|(op, d, s)| format!("{op} %r{d}, %r{s}")),
        2 => (d(), -9i32..9).prop_map(|(d, k)| format!("mov %r{d}, {k}")),
        3 => (prop_oneof![Just("jeq"), Just("jne"), Just("jgt"), Just("jslt")], d(), -3i32..3, 0..=n)
            .prop_map(move |(j, d, k, t)| format!("{j} %r{d}, {k}, l{}", if t > i { t } else { (t + i) / 2 + 1 })),
        1 => Just("call local sub".to_string()),
        1 => (0i32..6, 0..=n).prop_map(|(k, t)| format!(
            "stw [%r10-4], {k}\nlddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\n\
             call bpf_map_lookup_elem\njeq %r0, 0, l{t}\nldxdw %r3, [%r0+0]\nadd %r3, 1\n\
             stxdw [%r0+0], %r3"
        )),
        1 => Just("add %r0, %r6\nexit".to_string()),
    ]
}

pub(super) fn reuse_program() -> impl Strategy<Value = String> {
    (1usize..20).prop_flat_map(|n| {
        (0..n)
            .map(|i| reuse_line(i, n))
            .collect::<Vec<_>>()
            .prop_map(move |lines| {
                // Whatever an earlier run left on the stack shows in r0.
                let mut text = String::from(
                    "ldxdw %r6, [%r10-8]\nldxdw %r7, [%r10-16]\nldxdw %r8, [%r10-64]\n\
                     ldxdw %r9, [%r10-200]\nor %r6, %r7\nor %r6, %r8\nor %r6, %r9\n\
                     ldxdw %r7, [%r10-512]\nor %r6, %r7\nldxdw %r7, [%r10-256]\nor %r6, %r7\n",
                );
                for (i, l) in lines.iter().enumerate() {
                    text.push_str(&format!("l{i}:\n{l}\n"));
                }
                text.push_str(&format!(
                    "l{n}:\nadd %r0, %r6\nexit\nsub:\nldxdw %r0, [%r10-8]\nstdw [%r10-8], 3\nmov %r2, %r10\n\
                     stdw [%r2-200], 4\nldxdw %r3, [%r10-200]\nadd %r0, %r3\nexit\n"
                ));
                text
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Determinism across runs of one Vm: whatever earlier runs did (stack bytes written
    /// directly or through copies of r10, callee frames, atomics, map helpers, faults,
    /// budget stops, inputs of other lengths or in other buffers), a run of a reused Vm gives
    /// exactly what a fresh Vm with the same map contents gives. This covers the clean-run
    /// paths of `Vm::execute` (no reset, frame-0 re-zeroing, in-place `mem` input, XDP
    /// packet refill) against the general reset.
    #[test]
    fn reused_vm_runs_like_a_fresh_one(
        text in reuse_program(),
        xdp in any::<bool>(),
        budget in prop_oneof![5u64..200, 1000u64..1100, Just(100_000)],
        inputs in prop::collection::vec(
            prop::collection::vec(any::<u8>(), 0..64), 1..6),
    ) {
        let ty = if xdp { ProgType::Xdp } else { ProgType::Mem };
        let raw = assemble(&text).unwrap_or_else(|e| panic!("assembly failed: {e}\n{text}"));
        let mut p = Program::from_raw("t", ty, &raw).unwrap();
        p.maps = vec![map_def("m", MapType::Array, 4, 8, 4)];
        let cfg = VmConfig { budget, ..VmConfig::default() };
        let mut reused = Vm::new(&p, cfg.clone()).unwrap();
        for mut input in inputs {
            if xdp && input.len() < 14 {
                input.resize(14, 0);
            }
            // Twice each: the second run of an input follows a run of the same length.
            for _ in 0..2 {
                let mut fresh = Vm::new(&p, cfg.clone()).unwrap();
                let slab = reused.maps().get(0).unwrap().slab().to_vec();
                fresh.maps_mut().get_mut(0).unwrap().slab_mut().copy_from_slice(&slab);
                let buf = input.clone();
                let got = reused.run(&buf);
                let want = fresh.run(&input);
                prop_assert_eq!(&got, &want, "{}", text);
                prop_assert_eq!(
                    reused.maps().get(0).unwrap().slab(),
                    fresh.maps().get(0).unwrap().slab()
                );
            }
        }
    }
}

#[test]
fn entry_block_ctx_word_loads_match_the_general_path() {
    // The entry block's `xdp_md` loads (through r1 and a copy of it) take the marked
    // handler; after `ja +0` (a jump target) the same loads take the general path. Both
    // must read data, data_end, ingress_ifindex and rx_queue_index alike.
    let body = "ldxw %r2, [%r6+0]\nldxw %r3, [%r1+4]\nldxw %r4, [%r6+12]\nldxw %r5, [%r1+16]\n\
                ldxw %r7, [%r6+8]\nsub %r3, %r2\nsub %r7, %r2\nmul %r4, 1000\nmul %r5, 100000\n\
                mov %r0, %r3\nadd %r0, %r4\nadd %r0, %r5\nadd %r0, %r7\nexit";
    let cfg = VmConfig {
        ingress_ifindex: 3,
        rx_queue_index: 2,
        ..VmConfig::default()
    };
    let packet = [0u8; 60];
    let want = 60 + 3_000 + 200_000;
    for prefix in ["mov %r6, %r1\n", "mov %r6, %r1\nja +0\n"] {
        let text = format!("{prefix}{body}");
        let mut v = vm_of(ProgType::Xdp, &text, cfg.clone());
        for _ in 0..2 {
            assert_eq!(v.run(&packet).unwrap().retval, want, "{text}");
        }
    }
}
