//! The kernel oracle's basic contract, checked against the running kernel (root, Linux 6.18).
//! Each test prints `KERNEL ORACLE SKIPPED:` and returns when bpf() is unavailable.

use hw_tests::engine::{
    Comparison, Engine, EngineError, KernelEngine, TestInput, run_differential,
};
use hw_tests::kernel::{
    LoadOptions, MapFd, MapSpec, RejectionClass, flags, load_program, load_vm_program, log_level,
    prog_info, prog_type, test_run,
};
use hw_tests::require_kernel;
use vm_core::isa::{AluOp, Insn, LdImm64, Operand, Size, Width, encode_program};
use vm_core::{MapDef, MapType, ProgType, Program};

fn mov(width: Width, dst: u8, imm: i32) -> Insn {
    Insn::Alu {
        op: AluOp::Mov,
        width,
        dst,
        src: Operand::Imm(imm),
    }
}

fn alu(op: AluOp, width: Width, dst: u8, imm: i32) -> Insn {
    Insn::Alu {
        op,
        width,
        dst,
        src: Operand::Imm(imm),
    }
}

fn packet(len: usize) -> Vec<u8> {
    (0..len).map(|i| i as u8).collect()
}

#[test]
fn xdp_return_2_runs_under_the_jit() {
    require_kernel!("xdp_return_2_runs_under_the_jit");
    let code = encode_program(&[mov(Width::W64, 0, 2), Insn::Exit]);
    let p = load_program(&code, prog_type::XDP, &LoadOptions::default())
        .expect("kernel accepts r0 = 2; exit");
    assert_eq!(p.stats.insns_processed, Some(2), "log:\n{}", p.log);
    let pkt = packet(64);
    let r = test_run(&p.fd, &pkt, None, 1).expect("test run");
    assert_eq!(r.retval, 2);
    assert_eq!(r.data_out, pkt);
    let timed = test_run(&p.fd, &pkt, None, 1000).expect("repeated test run");
    println!("xdp r0=2: {} ns per run (repeat 1000)", timed.duration_ns);
}

#[test]
fn safety_rejection_is_eacces_with_the_first_error_line() {
    require_kernel!("safety_rejection_is_eacces_with_the_first_error_line");
    let code = encode_program(&[Insn::Exit]);
    let e = load_program(&code, prog_type::XDP, &LoadOptions::default()).expect_err("must fail");
    assert_eq!(e.errno, libc::EACCES, "{e}\n{}", e.log);
    assert_eq!(e.class(), RejectionClass::Safety);
    assert_eq!(
        e.first_error_line.as_deref(),
        Some("R0 !read_ok"),
        "log:\n{}",
        e.log
    );
}

#[test]
fn structural_rejection_is_einval_unreachable_insn() {
    require_kernel!("structural_rejection_is_einval_unreachable_insn");
    let code = encode_program(&[mov(Width::W64, 0, 0), Insn::Exit, Insn::Exit]);
    for level in [log_level::BASIC, log_level::VERBOSE] {
        let opts = LoadOptions {
            log_level: level,
            ..LoadOptions::default()
        };
        let e = load_program(&code, prog_type::XDP, &opts).expect_err("must fail");
        assert_eq!(e.errno, libc::EINVAL, "{e}\n{}", e.log);
        assert_eq!(e.class(), RejectionClass::Structural);
        assert_eq!(
            e.first_error_line.as_deref(),
            Some("unreachable insn 2"),
            "log:\n{}",
            e.log
        );
    }
}

#[test]
fn infinite_loop_is_einval() {
    require_kernel!("infinite_loop_is_einval");
    // r0 = 0; if r0 == 0 goto -1 (back to itself); exit
    let code = encode_program(&[
        mov(Width::W64, 0, 0),
        Insn::Jmp {
            cond: vm_core::isa::JmpCond::Eq,
            width: Width::W64,
            dst: 0,
            src: Operand::Imm(0),
            off: -1,
        },
        Insn::Exit,
    ]);
    let opts = LoadOptions {
        log_level: log_level::VERBOSE,
        ..LoadOptions::default()
    };
    let e = load_program(&code, prog_type::XDP, &opts).expect_err("must fail");
    assert_eq!(e.errno, libc::EINVAL, "{e}\n{}", e.log);
    assert_eq!(
        e.first_error_line.as_deref(),
        Some("infinite loop detected at insn 1"),
        "log:\n{}",
        e.log
    );
}

#[test]
fn map_round_trip() {
    require_kernel!("map_round_trip");
    let mut hash = MapSpec::array(8, 4);
    hash.map_type = 1;
    hash.name = "rt_hash".into();
    let m = MapFd::create(&hash).expect("hash map");
    assert_eq!(m.next_key(None), Ok(None));
    for k in 0u32..3 {
        m.update(&k.to_le_bytes(), &(u64::from(k) * 10).to_le_bytes(), 0)
            .expect("update");
    }
    assert_eq!(
        m.lookup(&1u32.to_le_bytes()),
        Ok(Some(10u64.to_le_bytes().to_vec()))
    );
    assert_eq!(m.lookup(&7u32.to_le_bytes()), Ok(None));
    assert_eq!(m.keys().map(|k| k.len()), Ok(3));
    assert_eq!(m.delete(&1u32.to_le_bytes()), Ok(true));
    assert_eq!(m.delete(&1u32.to_le_bytes()), Ok(false));
    let entries = m.entries().expect("entries");
    assert_eq!(entries.len(), 2);
    // BPF_NOEXIST on an existing key is EEXIST.
    let e = m
        .update(&0u32.to_le_bytes(), &[0; 8], 1)
        .expect_err("must fail");
    assert!(e.to_string().contains("EEXIST"), "{e}");

    let arr = MapFd::create(&MapSpec::array(8, 2)).expect("array map");
    assert_eq!(arr.keys().map(|k| k.len()), Ok(2), "arrays have every key");
    arr.update(&1u32.to_le_bytes(), &7u64.to_le_bytes(), 0)
        .expect("update");
    assert_eq!(
        arr.lookup(&1u32.to_le_bytes()),
        Ok(Some(7u64.to_le_bytes().to_vec()))
    );
    assert!(
        arr.delete(&0u32.to_le_bytes()).is_err(),
        "array elements cannot be deleted"
    );
}

#[test]
fn xlated_program_and_jit_image_read_back() {
    require_kernel!("xlated_program_and_jit_image_read_back");
    let code = encode_program(&[mov(Width::W64, 0, 2), Insn::Exit]);
    let opts = LoadOptions {
        name: "xlated_rb".into(),
        ..LoadOptions::default()
    };
    let p = load_program(&code, prog_type::XDP, &opts).expect("load");
    let info = prog_info(&p.fd).expect("info");
    assert_eq!(info.xlated, code);
    assert_eq!(info.prog_type, prog_type::XDP);
    assert_eq!(info.name, "xlated_rb");
    assert_eq!(info.verified_insns, 2);
    assert!(info.gpl_compatible);
    assert!(!info.jited.is_empty(), "JIT is on: jited image expected");
    assert_eq!(
        info.jited_func_lens.iter().sum::<u32>() as usize,
        info.jited.len()
    );
    println!(
        "r0=2 jited to {} bytes: {:02x?}",
        info.jited.len(),
        info.jited
    );
}

/// `BPF_F_TEST_RND_HI32` poisons the upper half of 32-bit definitions whose upper half is
/// never read as 64 bits: `w0 = 1` followed by a 32-bit use gets `rAX = rnd; rAX <<= 32;
/// r0 |= rAX` after it; followed by a 64-bit use it is marked as needing zero-extension and
/// is left alone.
#[test]
fn rnd_hi32_poisons_only_unmarked_32bit_defs() {
    require_kernel!("rnd_hi32_poisons_only_unmarked_32bit_defs");
    let opts = LoadOptions {
        prog_flags: flags::TEST_RND_HI32,
        ..LoadOptions::default()
    };
    let load = |insns: &[Insn]| {
        let code = encode_program(insns);
        let p = load_program(&code, prog_type::XDP, &opts).expect("load");
        let info = prog_info(&p.fd).expect("info");
        let ret = test_run(&p.fd, &packet(64), None, 1).expect("run").retval;
        (code, info.xlated, ret)
    };

    // 32-bit use only: poisoned.
    let (code, xlated, ret) = load(&[
        mov(Width::W32, 0, 1),
        alu(AluOp::Add, Width::W32, 0, 1),
        Insn::Exit,
    ]);
    assert_eq!(ret, 2);
    assert_eq!(xlated.len(), code.len() + 3, "{xlated:?}");
    assert_eq!(xlated[0], code[0]);
    const AX: u8 = 11; // BPF_REG_AX, the verifier's scratch register
    let rnd = xlated[1].imm;
    let poison = encode_program(&[
        mov(Width::W64, AX, rnd),
        alu(AluOp::Lsh, Width::W64, AX, 32),
        Insn::Alu {
            op: AluOp::Or,
            width: Width::W64,
            dst: 0,
            src: Operand::Reg(AX),
        },
    ]);
    assert_eq!(&xlated[1..4], &poison[..], "{xlated:?}");
    assert_eq!(&xlated[4..], &code[1..]);

    // 64-bit use: the def is marked (needs zext); nothing inserted.
    let (code, xlated, ret) = load(&[
        mov(Width::W32, 0, 1),
        alu(AluOp::Add, Width::W64, 0, 0),
        Insn::Exit,
    ]);
    assert_eq!(ret, 1);
    assert_eq!(xlated, code);
}

#[test]
fn log_level_4_reports_verification_time() {
    require_kernel!("log_level_4_reports_verification_time");
    let code = encode_program(&[
        Insn::Store {
            size: Size::DW,
            dst: 10,
            src: Operand::Imm(0),
            off: -16,
        },
        mov(Width::W64, 0, 2),
        Insn::Exit,
    ]);
    for level in [log_level::STATS, log_level::BASIC | log_level::STATS] {
        let opts = LoadOptions {
            log_level: level,
            ..LoadOptions::default()
        };
        let p = load_program(&code, prog_type::XDP, &opts).expect("load");
        let us = p.stats.verification_time_us;
        assert!(
            us.is_some(),
            "level {level}: no verification time in\n{}",
            p.log
        );
        assert_eq!(p.stats.stack_depth, Some(vec![16]), "log:\n{}", p.log);
        assert_eq!(p.stats.insns_processed, Some(3), "log:\n{}", p.log);
        println!(
            "log_level {level}: verification time {} usec",
            us.unwrap_or(0)
        );
    }
    // A rejection at level 4 still carries the error line.
    let opts = LoadOptions {
        log_level: log_level::STATS,
        ..LoadOptions::default()
    };
    let e =
        load_program(&encode_program(&[Insn::Exit]), prog_type::XDP, &opts).expect_err("must fail");
    assert_eq!(
        e.first_error_line.as_deref(),
        Some("R0 !read_ok"),
        "log:\n{}",
        e.log
    );
}

#[test]
fn big_verbose_log_survives_a_tiny_initial_buffer() {
    require_kernel!("big_verbose_log_survives_a_tiny_initial_buffer");
    let mut insns: Vec<Insn> = (0..200).map(|i| mov(Width::W64, 0, i)).collect();
    insns.push(Insn::Exit);
    let opts = LoadOptions {
        log_level: log_level::VERBOSE,
        log_size: 128,
        ..LoadOptions::default()
    };
    let p = load_program(&encode_program(&insns), prog_type::XDP, &opts)
        .expect("load after ENOSPC retries");
    assert!(p.log.len() > 4096, "{} bytes", p.log.len());
    assert_eq!(p.stats.insns_processed, Some(201));
}

/// A vm-core program with a `.data` map: `r1 = &data[0]; r0 = *(u32 *)r1; r0 += 1;
/// *(u32 *)r1 = r0; exit`.
fn counter_program() -> Program {
    Program {
        name: "counter".into(),
        section: Some("xdp".into()),
        prog_type: ProgType::Xdp,
        insns: vec![
            Insn::LdImm64 {
                dst: 1,
                value: LdImm64::MapValue { fd: 0, off: 0 },
            },
            Insn::LdImm64Tail,
            Insn::Load {
                size: Size::W,
                signed: false,
                dst: 0,
                src: 1,
                off: 0,
            },
            alu(AluOp::Add, Width::W64, 0, 1),
            Insn::Store {
                size: Size::W,
                dst: 1,
                src: Operand::Reg(0),
                off: 0,
            },
            Insn::Exit,
        ],
        maps: vec![MapDef {
            name: ".data".into(),
            map_type: MapType::Array,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            flags: 0,
            initial_value: Some(41u32.to_le_bytes().to_vec()),
        }],
    }
}

#[test]
fn vm_program_with_global_data_loads_and_runs() {
    require_kernel!("vm_program_with_global_data_loads_and_runs");
    let loaded = load_vm_program(&counter_program(), &LoadOptions::default()).expect("load");
    let r = test_run(&loaded.prog.fd, &packet(64), None, 1).expect("run");
    assert_eq!(r.retval, 42);
    assert_eq!(
        loaded.maps[0].lookup(&0u32.to_le_bytes()),
        Ok(Some(42u32.to_le_bytes().to_vec()))
    );
    let info = prog_info(&loaded.prog.fd).expect("info");
    assert_eq!(info.map_ids.len(), 1);
}

#[test]
fn kernel_engine_resets_maps_between_runs() {
    require_kernel!("kernel_engine_resets_maps_between_runs");
    let p = counter_program();
    let mut a = KernelEngine::load(&p, &LoadOptions::default()).expect("load a");
    let mut b = KernelEngine::load(&p, &LoadOptions::default()).expect("load b");
    let input = TestInput::packet(packet(64));
    for _ in 0..3 {
        let r = a.run(&input).expect("run");
        assert_eq!((r.retval, r.retval_bits), (42, 32));
        let maps = r.maps.expect("maps snapshot");
        assert_eq!(
            maps[0].entries,
            vec![(0u32.to_le_bytes().to_vec(), 42u32.to_le_bytes().to_vec())]
        );
    }
    let (_, c) = run_differential(&mut [&mut a, &mut b], &input);
    assert_eq!(c, Comparison::Agree);

    let mut acc = KernelEngine::load(&p, &LoadOptions::default())
        .expect("load")
        .keep_map_state(true);
    let rets: Vec<u64> = (0..3)
        .map(|_| acc.run(&input).map(|r| r.retval).unwrap_or(0))
        .collect();
    assert_eq!(rets, vec![42, 43, 44]);
}

#[test]
fn kernel_engine_refuses_bad_inputs_and_programs() {
    require_kernel!("kernel_engine_refuses_bad_inputs_and_programs");
    let mut e = KernelEngine::load(&counter_program(), &LoadOptions::default()).expect("load");
    // XDP test runs need at least an Ethernet header.
    assert!(matches!(
        e.run(&TestInput::packet(vec![0; 4])),
        Err(EngineError::Refused(_))
    ));
    let bad =
        Program::from_raw("bad", ProgType::Xdp, &encode_program(&[Insn::Exit])).expect("decodes");
    match KernelEngine::load(&bad, &LoadOptions::default()) {
        Err(EngineError::Refused(why)) => assert!(
            why.contains("EACCES") && why.contains("R0 !read_ok"),
            "{why}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
