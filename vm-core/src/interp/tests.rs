//! Vm-level tests: contexts, helpers, budget, faults, calls, maps and determinism.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::asm::assemble;

fn program(ty: ProgType, text: &str, maps: Vec<MapDef>) -> Program {
    let raw = match assemble(text) {
        Ok(raw) => raw,
        Err(e) => panic!("assembly failed: {e}\n{text}"),
    };
    let mut p = match Program::from_raw("t", ty, &raw) {
        Ok(p) => p,
        Err(e) => panic!("decode failed: {e}"),
    };
    p.maps = maps;
    p
}

fn vm(ty: ProgType, text: &str) -> Vm {
    vm_with(ty, text, vec![], VmConfig::default())
}

fn vm_with(ty: ProgType, text: &str, maps: Vec<MapDef>, cfg: VmConfig) -> Vm {
    match Vm::new(&program(ty, text, maps), cfg) {
        Ok(vm) => vm,
        Err(e) => panic!("load failed: {e}"),
    }
}

fn map(name: &str, map_type: MapType, key: u32, value: u32, entries: u32) -> MapDef {
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

/// A 60-byte Ethernet/IPv4/UDP frame to port `dport`.
fn udp_frame(dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 60];
    p[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    p[12] = 0x08;
    p[14] = 0x45;
    p[16..18].copy_from_slice(&46u16.to_be_bytes());
    p[22] = 64;
    p[23] = 17;
    p[26..30].copy_from_slice(&[10, 0, 0, 1]);
    p[30..34].copy_from_slice(&[10, 0, 0, 2]);
    p[34..36].copy_from_slice(&1234u16.to_be_bytes());
    p[36..38].copy_from_slice(&dport.to_be_bytes());
    p
}

/// An XDP parser: drop UDP to port 53, pass everything else.
const UDP_PARSER: &str = "
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 14
    jgt %r4, %r3, pass
    ldxh %r5, [%r2+12]
    jne %r5, 0x0008, pass
    mov %r4, %r2
    add %r4, 34
    jgt %r4, %r3, pass
    ldxb %r5, [%r2+23]
    jne %r5, 17, pass
    ldxb %r6, [%r2+14]
    and %r6, 0xf
    lsh %r6, 2
    mov %r7, %r2
    add %r7, 14
    add %r7, %r6
    mov %r4, %r7
    add %r4, 8
    jgt %r4, %r3, pass
    ldxh %r5, [%r7+2]
    be16 %r5
    jne %r5, 53, pass
    mov %r0, 1
    exit
pass:
    mov %r0, 2
    exit
";

#[test]
fn vm_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Vm>();
}

#[test]
fn mem_program_basics_and_exact_counts() {
    let mut v = vm(
        ProgType::Mem,
        "mov %r0, 1\nlddw %r1, 0x100000000\nadd %r0, %r1\nexit",
    );
    let out = v.run(&[]).unwrap();
    assert_eq!(out.retval, 0x1_0000_0001);
    assert_eq!(out.insns, 4);
    // r1 = input, r2 = length.
    let mut v = vm(ProgType::Mem, "ldxb %r0, [%r1+2]\nadd %r0, %r2\nexit");
    assert_eq!(v.run(&[1, 2, 3]).unwrap().retval, 6);
}

#[test]
fn budget_is_exact() {
    // 1 + 10 * 2 + 2 = 23 instructions.
    let text = "mov %r1, 0\nloop:\nadd %r1, 1\njlt %r1, 10, loop\nmov %r0, %r1\nexit";
    let cfg = |budget| VmConfig {
        budget,
        ..VmConfig::default()
    };
    let mut v = vm_with(ProgType::Mem, text, vec![], cfg(23));
    let out = v.run(&[]).unwrap();
    assert_eq!((out.retval, out.insns), (10, 23));
    for budget in [0, 1, 2, 3, 21, 22] {
        let mut v = vm_with(ProgType::Mem, text, vec![], cfg(budget));
        assert_eq!(
            v.run(&[]),
            Err(RunError::BudgetExceeded { budget }),
            "{budget}"
        );
    }
    let mut v = vm_with(ProgType::Mem, "ja -1\nexit", vec![], cfg(1000));
    assert_eq!(v.run(&[]), Err(RunError::BudgetExceeded { budget: 1000 }));
}

#[test]
fn budget_is_exact_across_chunks_with_superinstructions() {
    // Fusable sequences (x += K; if x < N / mov+add+jgt / load+jne) inside a loop that
    // crosses several budget chunks.
    let text = "
        mov %r1, 0
        mov %r6, 0
    loop:
        mov %r2, %r1
        add %r2, 3
        jgt %r2, %r6, skip
        add %r6, 1
    skip:
        ldxb %r3, [%r10-1]
        jne %r3, 7, next
        add %r6, 2
    next:
        add %r1, 1
        jlt %r1, 300, loop
        mov %r0, %r6
        exit";
    let cfg = |budget, superinstructions| VmConfig {
        budget,
        superinstructions,
        ..VmConfig::default()
    };
    let full = vm_with(ProgType::Mem, text, vec![], cfg(1_000_000, true))
        .run(&[])
        .unwrap();
    assert_eq!(
        full,
        vm_with(ProgType::Mem, text, vec![], cfg(1_000_000, false))
            .run(&[])
            .unwrap()
    );
    assert!(full.insns > 3 * 512);
    for budget in (0..full.insns + 3)
        .step_by(7)
        .chain(full.insns - 3..full.insns + 3)
    {
        let fused = vm_with(ProgType::Mem, text, vec![], cfg(budget, true)).run(&[]);
        let plain = vm_with(ProgType::Mem, text, vec![], cfg(budget, false)).run(&[]);
        assert_eq!(fused, plain, "budget {budget}");
        if budget >= full.insns {
            assert_eq!(fused.as_ref(), Ok(&full));
        } else {
            assert_eq!(fused, Err(RunError::BudgetExceeded { budget }));
        }
    }
}

#[test]
fn budget_exhaustion_inside_a_segment_keeps_earlier_faults() {
    // The fault at insn 1 happens before the budget (3) runs out.
    let text = "mov %r0, 0\nldxw %r0, [%r0+0]\nmov %r0, 1\nmov %r0, 2\nexit";
    let mut v = vm_with(
        ProgType::Mem,
        text,
        vec![],
        VmConfig {
            budget: 3,
            ..VmConfig::default()
        },
    );
    assert!(matches!(v.run(&[]), Err(RunError::Fault { pc: 1, .. })));
}

#[test]
fn faults_name_the_instruction_and_region() {
    let mut v = vm(ProgType::Mem, "mov %r0, 0\nstb [%r10], 0\nexit");
    let e = v.run(&[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "fault at insn 1: out-of-bounds write of 1 byte at r10+0 in frame 0 (stack is 512 bytes)"
    );
    let mut v = vm(ProgType::Mem, "ldxw %r0, [%r1+0]\nexit");
    assert!(matches!(
        v.run(&[]),
        Err(RunError::Fault {
            pc: 0,
            kind: FaultKind::BadAddress { addr: 0, .. },
            ..
        })
    ));
    let mut v = vm(ProgType::Xdp, "ldxw %r2, [%r1+0]\nldxw %r0, [%r2+62]\nexit");
    let e = v.run(&udp_frame(53)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "fault at insn 1: out-of-bounds read of 4 bytes at packet+62 (packet is 60 bytes)"
    );
    let mut v = vm(ProgType::Mem, "mov %r10, 1\nexit");
    assert!(matches!(
        v.run(&[]),
        Err(RunError::Fault {
            kind: FaultKind::WriteFramePointer,
            ..
        })
    ));
    let mut v = vm(ProgType::Mem, "mov %r0, 0");
    assert!(matches!(
        v.run(&[]),
        Err(RunError::Fault {
            pc: 1,
            kind: FaultKind::FellOffEnd,
            ..
        })
    ));
}

#[test]
fn faults_inside_superinstructions_name_the_first_instruction() {
    // ldxb + jne fuse; the load faults.
    let text = "mov %r0, 0\nldxb %r3, [%r1+100]\njne %r3, 5, out\nmov %r0, 1\nout:\nexit";
    let mut v = vm(ProgType::Mem, text);
    let e = v.run(&[1, 2, 3, 4]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "fault at insn 1: out-of-bounds read of 1 byte at mem+100 (mem is 4 bytes)"
    );
    // The same fused pair on good input.
    assert_eq!(v.run(&[0; 101]).unwrap().retval, 0);
}

#[test]
fn local_calls_have_their_own_frames_and_restore_callee_saved() {
    let text = "
        mov %r6, 6
        stdw [%r10-8], 0x55
        call local f
        ldxdw %r1, [%r10-8]
        add %r0, %r1
        add %r0, %r6
        exit
    f:
        mov %r6, 100
        stdw [%r10-8], 0x66
        mov %r0, 1
        exit";
    let mut v = vm(ProgType::Mem, text);
    let out = v.run(&[]).unwrap();
    assert_eq!(out.retval, 1 + 0x55 + 6);
    assert_eq!(out.insns, 11);
    let mut v = vm(ProgType::Mem, "f:\ncall local f\nexit");
    assert!(matches!(
        v.run(&[]),
        Err(RunError::Fault {
            kind: FaultKind::CallDepth,
            ..
        })
    ));
}

#[test]
fn stack_is_zeroed_between_runs() {
    let text = "ldxdw %r0, [%r10-8]\nstdw [%r10-8], 7\nexit";
    let mut v = vm(ProgType::Mem, text);
    assert_eq!(v.run(&[]).unwrap().retval, 0);
    assert_eq!(v.run(&[]).unwrap().retval, 0);
}

#[test]
fn xdp_context_and_parser() {
    let mut v = vm(ProgType::Xdp, UDP_PARSER);
    let out = v.run(&udp_frame(53)).unwrap();
    assert_eq!(out.retval, 1);
    assert_eq!(out.packet, udp_frame(53));
    assert_eq!(v.run(&udp_frame(80)).unwrap().retval, 2);
    assert!(matches!(
        v.run(&[0; 10]),
        Err(RunError::BadInput(BadInput::PacketTooShort { len: 10 }))
    ));
    let mut v = vm(
        ProgType::Xdp,
        "ldxw %r0, [%r1+12]\nldxw %r2, [%r1+16]\nlsh %r2, 8\nor %r0, %r2\nexit",
    );
    let cfg_out = v.run(&udp_frame(1)).unwrap();
    assert_eq!(cfg_out.retval, 1);
}

#[test]
fn xdp_adjust_head_meta_tail() {
    let text = "
        mov %r6, %r1
        mov %r2, -4
        call bpf_xdp_adjust_meta
        mov %r8, %r0
        mov %r1, %r6
        mov %r2, 14
        call bpf_xdp_adjust_head
        or %r8, %r0
        mov %r1, %r6
        mov %r2, -6
        call bpf_xdp_adjust_tail
        or %r8, %r0
        ldxw %r2, [%r6+8]
        ldxw %r3, [%r6+0]
        mov %r4, %r2
        add %r4, 4
        jgt %r4, %r3, out
        stw [%r2+0], 0x11223344
    out:
        mov %r0, %r8
        exit";
    let mut v = vm(ProgType::Xdp, text);
    let frame = udp_frame(53);
    let out = v.run(&frame).unwrap();
    assert_eq!(out.retval, 0);
    let mut want = vec![0x44, 0x33, 0x22, 0x11];
    want.extend_from_slice(&frame[14..54]);
    assert_eq!(out.packet, want);
    // Limits: metadata must be a multiple of 4; tail must keep 14 bytes.
    let mut v = vm(ProgType::Xdp, "mov %r2, -3\ncall bpf_xdp_adjust_meta\nexit");
    assert_eq!(v.run(&frame).unwrap().retval as i64, -13);
    let mut v = vm(
        ProgType::Xdp,
        "mov %r2, -47\ncall bpf_xdp_adjust_tail\nexit",
    );
    assert_eq!(v.run(&frame).unwrap().retval as i64, -22);
    let mut v = vm(
        ProgType::Xdp,
        "mov %r2, -46\ncall bpf_xdp_adjust_tail\nexit",
    );
    assert_eq!(v.run(&frame).unwrap().retval, 0);
    // Head growth into the headroom exposes zeros, down to the xdp_frame area.
    let mut v = vm(
        ProgType::Xdp,
        "mov %r2, -216\ncall bpf_xdp_adjust_head\nexit",
    );
    let out = v.run(&frame).unwrap();
    assert_eq!(out.retval, 0);
    assert_eq!(out.packet.len(), 60 + 216);
    assert!(out.packet[..216].iter().all(|&b| b == 0));
    let mut v = vm(
        ProgType::Xdp,
        "mov %r2, -217\ncall bpf_xdp_adjust_head\nexit",
    );
    assert_eq!(v.run(&frame).unwrap().retval as i64, -22);
}

#[test]
fn tc_context_fields_and_writes() {
    let text = "
        ldxw %r0, [%r1+16]
        ldxw %r2, [%r1+0]
        lsh %r2, 16
        or %r0, %r2
        stw [%r1+8], 42
        ldxw %r3, [%r1+8]
        lsh %r3, 32
        or %r0, %r3
        exit";
    let mut v = vm(ProgType::SchedCls, text);
    let out = v.run(&udp_frame(53)).unwrap();
    assert_eq!(out.retval, 0x0008 | 60 << 16 | 42 << 32);
    let mut v = vm(ProgType::SchedCls, "stw [%r1+0], 1\nexit");
    assert!(matches!(
        v.run(&udp_frame(53)),
        Err(RunError::Fault {
            kind: FaultKind::Ctx { .. },
            ..
        })
    ));
}

#[test]
fn socket_filter_ld_abs_is_l3_relative_and_aborts_out_of_bounds() {
    let mut v = vm(ProgType::SocketFilter, "ldabsb 9\nexit");
    let out = v.run(&udp_frame(53)).unwrap();
    assert_eq!(out.retval, 17);
    assert!(out.packet[..14].iter().all(|&b| b == 0));
    assert_eq!(&out.packet[14..], &udp_frame(53)[14..]);
    let mut v = vm(
        ProgType::SocketFilter,
        "mov %r0, 5\nldabsw 44\nmov %r0, 9\nexit",
    );
    let out = v.run(&udp_frame(53)).unwrap();
    assert_eq!((out.retval, out.insns), (0, 2));
    let mut v = vm(
        ProgType::SchedCls,
        "mov %r6, %r1\nmov %r2, 10\nldindh %r2, 2\nexit",
    );
    assert_eq!(v.run(&udp_frame(53)).unwrap().retval, 0x0800);
}

#[test]
fn array_map_values_persist_across_runs() {
    let text = "
        stw [%r10-4], 0
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -4
        call bpf_map_lookup_elem
        jeq %r0, 0, out
        ldxdw %r1, [%r0+0]
        add %r1, 1
        stxdw [%r0+0], %r1
        mov %r0, %r1
    out:
        exit";
    let maps = vec![map("counters", MapType::Array, 4, 8, 4)];
    let mut v = vm_with(ProgType::Xdp, text, maps, VmConfig::default());
    for i in 1..=3 {
        assert_eq!(v.run(&udp_frame(53)).unwrap().retval, i);
    }
    let m = v.maps().get(0).unwrap();
    assert_eq!(&m.slab()[..8], &3u64.to_le_bytes());
}

#[test]
fn hash_map_update_lookup_delete() {
    let text = "
        stw [%r10-4], 7
        stdw [%r10-16], 99
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -4
        mov %r3, %r10
        add %r3, -16
        mov %r4, 0
        call bpf_map_update_elem
        mov %r6, %r0
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -4
        call bpf_map_lookup_elem
        ldxdw %r7, [%r0+0]
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -4
        call bpf_map_delete_elem
        mov %r8, %r0
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -4
        call bpf_map_delete_elem
        lsh %r0, 32
        add %r0, %r7
        add %r0, %r6
        add %r0, %r8
        exit";
    let maps = vec![map("h", MapType::Hash, 4, 8, 16)];
    let mut v = vm_with(ProgType::Mem, text, maps, VmConfig::default());
    let out = v.run(&[]).unwrap();
    // update 0, value 99, delete 0, second delete -ENOENT.
    assert_eq!(out.retval, ((-2i64 as u64) << 32).wrapping_add(99));
}

#[test]
fn map_value_pointers_fault_past_the_slab() {
    let text = "
        stw [%r10-4], 0
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -4
        call bpf_map_lookup_elem
        ldxdw %r0, [%r0+64]
        exit";
    let maps = vec![map("small", MapType::Array, 4, 8, 1)];
    let mut v = vm_with(ProgType::Mem, text, maps, VmConfig::default());
    let e = v.run(&[]).unwrap_err();
    assert!(e.to_string().contains("map 'small'+64"), "{e}");
}

#[test]
fn tail_calls_jump_and_missing_entries_fall_through() {
    let main = "
        mov %r6, %r1
        lddw %r2, map_fd 0
        mov %r3, 1
        call bpf_tail_call
        mov %r1, %r6
        lddw %r2, map_fd 0
        mov %r3, 0
        call bpf_tail_call
        mov %r0, 7
        exit";
    let maps = vec![map("progs", MapType::ProgArray, 4, 4, 4)];
    let mut v = vm_with(ProgType::Xdp, main, maps.clone(), VmConfig::default());
    let target = program(ProgType::Xdp, "mov %r0, 3\nexit", vec![]);
    let idx = v.add_program(&target).unwrap();
    assert_eq!(idx, 1);
    // Empty array: both calls fall through.
    assert_eq!(v.run(&udp_frame(1)).unwrap().retval, 7);
    v.maps_mut()
        .get_mut(0)
        .unwrap()
        .user_update(&0u32.to_le_bytes(), &1u32.to_le_bytes(), 0)
        .unwrap();
    let out = v.run(&udp_frame(1)).unwrap();
    assert_eq!((out.retval, out.insns), (3, 10));
}

#[test]
fn clock_and_random_are_deterministic() {
    let text = "
        call bpf_ktime_get_ns
        mov %r6, %r0
        call bpf_ktime_get_ns
        sub %r0, %r6
        mov %r7, %r0
        call bpf_get_prandom_u32
        lsh %r0, 32
        or %r0, %r7
        exit";
    let run = |seed| {
        let cfg = VmConfig {
            prandom_seed: seed,
            clock_step_ns: 250,
            ..VmConfig::default()
        };
        vm_with(ProgType::Mem, text, vec![], cfg)
            .run(&[])
            .unwrap()
            .retval
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1) >> 32, run(2) >> 32);
    assert_eq!(run(1) & 0xffff_ffff, 250);
}

#[test]
fn trace_printk_is_captured() {
    // "a=%d x=%x %s\n" with -5, 255 and "hi".
    let text = "
        lddw %r1, 0x253d782064253d61
        stxdw [%r10-16], %r1
        lddw %r1, 0xa73252078
        stxdw [%r10-8], %r1
        stw [%r10-20], 0x6968
        mov %r1, %r10
        add %r1, -16
        mov %r2, 16
        mov %r3, -5
        mov %r4, 255
        mov %r5, %r10
        add %r5, -20
        call bpf_trace_printk
        exit";
    let mut v = vm(ProgType::Mem, text);
    let out = v.run(&[]).unwrap();
    assert_eq!(out.printk, vec!["a=-5 x=ff hi\n".to_string()]);
    assert_eq!(out.retval, 13);
}

#[test]
fn redirect_records_target() {
    let mut v = vm(
        ProgType::Xdp,
        "mov %r1, 3\nmov %r2, 0\ncall bpf_redirect\nexit",
    );
    let out = v.run(&udp_frame(1)).unwrap();
    assert_eq!(out.retval, 4);
    assert_eq!(
        out.redirect,
        Some(Redirect::Ifindex {
            ifindex: 3,
            flags: 0
        })
    );
    let mut v = vm(
        ProgType::SchedCls,
        "mov %r1, 3\nmov %r2, 1\ncall bpf_redirect\nexit",
    );
    assert_eq!(v.run(&udp_frame(1)).unwrap().retval, 7);
    let maps = vec![map("dev", MapType::Devmap, 4, 4, 4)];
    let text = "lddw %r1, map_fd 0\nmov %r2, 1\nmov %r3, 2\ncall bpf_redirect_map\nexit";
    let mut v = vm_with(ProgType::Xdp, text, maps, VmConfig::default());
    let out = v.run(&udp_frame(1)).unwrap();
    assert_eq!((out.retval, out.redirect), (2, None));
}

#[test]
fn csum_replace_keeps_the_ip_checksum_valid() {
    // Rewrite the IPv4 TTL and fix the header checksum with bpf_l3_csum_replace.
    let mut frame = udp_frame(53);
    let sum = {
        let mut s: u32 = 0;
        for i in (14..34).step_by(2) {
            s += u32::from(u16::from_be_bytes([frame[i], frame[i + 1]]));
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    };
    frame[24..26].copy_from_slice(&sum.to_be_bytes());
    let text = "
        mov %r6, %r1
        ldxw %r2, [%r6+76]
        ldxw %r3, [%r6+80]
        mov %r4, %r2
        add %r4, 34
        jgt %r4, %r3, out
        ldxh %r7, [%r2+22]
        mov %r8, %r7
        and %r8, 0xff00
        or %r8, 0x20
        stxh [%r2+22], %r8
        mov %r1, %r6
        mov %r2, 24
        mov %r3, %r7
        mov %r4, %r8
        mov %r5, 2
        call bpf_l3_csum_replace
    out:
        exit";
    let mut v = vm(ProgType::SchedCls, text);
    let out = v.run(&frame).unwrap();
    assert_eq!(out.retval, 0);
    assert_eq!(out.packet[22], 0x20);
    let mut s: u32 = 0;
    for i in (14..34).step_by(2) {
        s += u32::from(u16::from_be_bytes([out.packet[i], out.packet[i + 1]]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    assert_eq!(s, 0xffff, "checksum still verifies");
}

#[test]
fn ringbuf_records_are_bounded_regions() {
    let text = "
        lddw %r1, map_fd 0
        mov %r2, 8
        mov %r3, 0
        call bpf_ringbuf_reserve
        jeq %r0, 0, out
        stdw [%r0+0], 0x1234
        mov %r1, %r0
        mov %r2, 0
        call bpf_ringbuf_submit
        mov %r0, 1
    out:
        exit";
    let maps = vec![map("rb", MapType::Ringbuf, 0, 0, 4096)];
    let mut v = vm_with(ProgType::Mem, text, maps.clone(), VmConfig::default());
    assert_eq!(v.run(&[]).unwrap().retval, 1);
    let recs = v.maps().get(0).unwrap().ringbuf_records();
    assert_eq!(recs, vec![0x1234u64.to_le_bytes().to_vec()]);
    let bad = text.replace("stdw [%r0+0]", "stdw [%r0+4]");
    let mut v = vm_with(ProgType::Mem, &bad, maps, VmConfig::default());
    assert!(matches!(v.run(&[]), Err(RunError::Fault { pc: 6, .. })));
}

#[test]
fn load_errors_name_helpers_and_pcs() {
    let p = program(ProgType::Xdp, "mov %r0, 0\ncall 4\nexit", vec![]);
    let e = Vm::new(&p, VmConfig::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "insn 1: helper bpf_probe_read#4 is not implemented by the interpreter"
    );
    let p = program(ProgType::Xdp, "call bpf_skb_store_bytes\nexit", vec![]);
    assert!(matches!(
        Vm::new(&p, VmConfig::default()),
        Err(LoadError::HelperNotAllowed { pc: 0, .. })
    ));
    let p = program(ProgType::Other(2), "exit", vec![]);
    assert!(matches!(
        Vm::new(&p, VmConfig::default()),
        Err(LoadError::NoContext(_))
    ));
}

#[test]
fn callx_resolves_helpers_at_run_time() {
    let mut v = vm(ProgType::Mem, "mov %r2, 5\ncall %r2\nmov %r0, 2\nexit");
    assert_eq!(v.run(&[]).unwrap().retval, 2);
    let mut v = vm(ProgType::Mem, "mov %r2, 4\ncall %r2\nexit");
    assert!(matches!(
        v.run(&[]),
        Err(RunError::Fault {
            kind: FaultKind::UnknownHelper { id: 4 },
            ..
        })
    ));
}

/// Rough speed check: `cargo test -p vm-core --release --lib perf_smoke -- --ignored --nocapture`.
/// Reports the best of several batches (the machine is shared, so means are noisy).
#[test]
#[ignore]
fn perf_smoke() {
    use std::time::Instant;
    fn best(batches: usize, mut f: impl FnMut() -> u64) -> (f64, u64) {
        let mut best = f64::MAX;
        let mut insns = 0;
        for _ in 0..batches {
            let t = Instant::now();
            insns = f();
            best = best.min(t.elapsed().as_nanos() as f64);
        }
        (best, insns)
    }
    let n = 10_000_000;
    let text = format!(
        "mov %r0, 0\nmov %r1, 0\nloop:\nadd %r0, %r1\nadd %r1, 1\njlt %r1, {n}, loop\nexit"
    );
    let mut v = vm(ProgType::Mem, &text);
    let (ns, insns) = best(7, || {
        std::hint::black_box(v.run_retval(&[]).unwrap());
        v.last_insns()
    });
    println!("sum loop: {insns} insns, {:.3} ns/insn", ns / insns as f64);

    let mut v = vm(ProgType::Xdp, UDP_PARSER);
    let frame = udp_frame(53);
    let iters = 200_000;
    let (ns, insns) = best(15, || {
        let mut insns = 0;
        for _ in 0..iters {
            std::hint::black_box(v.run_retval(std::hint::black_box(&frame)).unwrap());
            insns += v.last_insns();
        }
        insns
    });
    println!(
        "udp parser: {} insns/run, {:.1} ns/run, {:.3} ns/insn (incl. per-run setup)",
        insns / iters,
        ns / iters as f64,
        ns / insns as f64
    );
    let mut out = RunOutcome::default();
    let (ns, _) = best(15, || {
        for _ in 0..iters {
            v.run_into(std::hint::black_box(&frame), &mut out).unwrap();
        }
        0
    });
    println!("udp parser via run_into: {:.1} ns/run", ns / iters as f64);
    let mut v = vm(ProgType::Xdp, "mov %r0, 2\nexit");
    let (ns, _) = best(15, || {
        for _ in 0..iters {
            std::hint::black_box(v.run_retval(std::hint::black_box(&frame)).unwrap());
        }
        0
    });
    println!(
        "xdp empty program: {:.1} ns/run (setup cost)",
        ns / iters as f64
    );
}
