//! bpf_conformance through the kernel (FORMATS.md §1 "Running against Linux"): hand-built
//! programs, then all 313 `tests/*.data` compared with KERNEL_BASELINE.linux-6.18.tsv.

use std::collections::BTreeMap;

use hw_tests::conformance::{
    ConformanceError, ConformanceKernelEngine, run_conformance, run_with_full_r0,
};
use hw_tests::engine::{Engine, TestInput};
use hw_tests::kernel::LoadOptions;
use hw_tests::require_kernel;
use vm_core::isa::{AluOp, Insn, LdImm64, Operand, Size, Width, encode_program};
use vm_core::testdata::TestFile;

#[test]
fn full_64bit_r0_comes_back() {
    require_kernel!("full_64bit_r0_comes_back");
    let body = encode_program(&[
        Insn::LdImm64 {
            dst: 0,
            value: LdImm64::Imm(0x1234_5678_9abc_def0),
        },
        Insn::LdImm64Tail,
        Insn::Exit,
    ]);
    assert_eq!(
        run_with_full_r0(&body, &[]).expect("run"),
        0x1234_5678_9abc_def0
    );
}

#[test]
fn mem_is_r1_and_its_length_is_r2() {
    require_kernel!("mem_is_r1_and_its_length_is_r2");
    // ldxb r0, [r1+2] on `aa bb 11 cc dd` (ldxb.data) = 0x11.
    let ldxb = encode_program(&[
        Insn::Load {
            size: Size::B,
            signed: false,
            dst: 0,
            src: 1,
            off: 2,
        },
        Insn::Exit,
    ]);
    assert_eq!(
        run_with_full_r0(&ldxb, &[0xaa, 0xbb, 0x11, 0xcc, 0xdd]).expect("run"),
        0x11
    );
    // mov r0, r2 on 8 bytes (mem-len.data) = 8, although the packet is padded to 14.
    let len = encode_program(&[
        Insn::Alu {
            op: AluOp::Mov,
            width: Width::W64,
            dst: 0,
            src: Operand::Reg(2),
        },
        Insn::Exit,
    ]);
    assert_eq!(
        run_with_full_r0(&len, &[0, 0, 0, 1, 0, 0, 0, 2]).expect("run"),
        8
    );
    // Stores land in the memory and come back; reading past `len` is refused by the verifier.
    let store = encode_program(&[
        Insn::Store {
            size: Size::H,
            dst: 1,
            src: Operand::Imm(0x1122),
            off: 1,
        },
        Insn::Load {
            size: Size::DW,
            signed: false,
            dst: 0,
            src: 1,
            off: 0,
        },
        Insn::Exit,
    ]);
    let run = run_conformance(&store, &[0xff; 8], &LoadOptions::default()).expect("run");
    assert_eq!(
        run.mem_out,
        vec![0xff, 0x22, 0x11, 0xff, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(run.r0, 0xffff_ffff_ff11_22ff);
    let oob = encode_program(&[
        Insn::Load {
            size: Size::B,
            signed: false,
            dst: 0,
            src: 1,
            off: 8,
        },
        Insn::Exit,
    ]);
    match run_with_full_r0(&oob, &[0; 8]) {
        Err(ConformanceError::Load(e)) => assert_eq!(e.errno, libc::EACCES, "{e}"),
        other => panic!("expected a verifier rejection, got {other:?}"),
    }
}

#[test]
fn jumps_and_local_calls_in_the_body_need_no_relocation() {
    require_kernel!("jumps_and_local_calls_in_the_body_need_no_relocation");
    // r0 = 1; call +2 (r0 = 40; exit... of the callee); r0 += 1 ... : a subprogram inside the body.
    let body = encode_program(&[
        Insn::Alu {
            op: AluOp::Mov,
            width: Width::W64,
            dst: 6,
            src: Operand::Imm(2),
        },
        Insn::Call(vm_core::isa::CallTarget::Local(3)),
        Insn::Alu {
            op: AluOp::Add,
            width: Width::W64,
            dst: 0,
            src: Operand::Reg(6),
        },
        Insn::Ja {
            off: 0,
            long: false,
        },
        Insn::Exit,
        Insn::Alu {
            op: AluOp::Mov,
            width: Width::W64,
            dst: 0,
            src: Operand::Imm(40),
        },
        Insn::Exit,
    ]);
    assert_eq!(run_with_full_r0(&body, &[]).expect("run"), 42);
    let mut engine = ConformanceKernelEngine::new(body);
    let r = engine
        .run(&TestInput::packet(vec![1, 2, 3]))
        .expect("engine run");
    assert_eq!((r.retval, r.retval_bits, r.packet), (42, 64, vec![1, 2, 3]));
}

/// One row of KERNEL_BASELINE.linux-6.18.tsv.
struct Baseline {
    status: String,
    r0_or_errno: String,
    last_line: String,
}

fn baseline() -> BTreeMap<String, Baseline> {
    let path = vm_core::corpus::require("bpf_conformance/KERNEL_BASELINE.linux-6.18.tsv");
    let text = std::fs::read_to_string(&path).expect("baseline readable");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("file\t"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 6).then(|| {
                (
                    f[0].to_string(),
                    Baseline {
                        status: f[3].to_string(),
                        r0_or_errno: f[4].to_string(),
                        last_line: f.get(6).copied().unwrap_or("").to_string(),
                    },
                )
            })
        })
        .collect()
}

#[test]
fn all_conformance_tests_match_the_kernel_baseline() {
    require_kernel!("all_conformance_tests_match_the_kernel_baseline");
    let base = baseline();
    let dir = vm_core::corpus::require("bpf_conformance/tests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        313,
        "bpf_conformance/tests should hold 313 files"
    );
    let (mut pass, mut rejected, mut mismatches) = (0, 0, Vec::new());
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let Some(b) = base.get(&name) else {
            mismatches.push(format!("{name}: not in the baseline"));
            continue;
        };
        let tf = match TestFile::parse_file(path).and_then(|t| t.program().map(|p| (t, p))) {
            Ok(x) => x,
            Err(e) => {
                mismatches.push(format!("{name}: does not assemble: {e}"));
                continue;
            }
        };
        let (test, body) = tf;
        match (
            run_conformance(&body, &test.mem, &LoadOptions::default()),
            b.status.as_str(),
        ) {
            (Ok(run), "ran") => {
                let want = u64::from_str_radix(b.r0_or_errno.trim_start_matches("0x"), 16).ok();
                if Some(run.r0) != want {
                    mismatches.push(format!(
                        "{name}: r0 {:#x}, baseline {}",
                        run.r0, b.r0_or_errno
                    ));
                } else if Some(run.r0) == test.result {
                    pass += 1;
                }
            }
            (Err(ConformanceError::Load(e)), "load_rejected") => {
                rejected += 1;
                let same = e.errno.to_string() == b.r0_or_errno
                    && e.first_error_line.as_deref() == Some(b.last_line.as_str());
                if !same {
                    mismatches.push(format!(
                        "{name}: rejected with {} {:?}, baseline {} {:?}",
                        e.errno, e.first_error_line, b.r0_or_errno, b.last_line
                    ));
                }
            }
            (Ok(run), st) => {
                mismatches.push(format!("{name}: ran (r0 {:#x}), baseline {st}", run.r0))
            }
            (Err(e), st) => mismatches.push(format!("{name}: {e}, baseline {st}")),
        }
    }
    println!(
        "bpf_conformance on the kernel: {pass}/313 PASS (r0 == -- result), {rejected} rejected at load, {} differ from KERNEL_BASELINE",
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} differ from the baseline:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!((pass, rejected), (300, 13));
}
