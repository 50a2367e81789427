//! Assembler/disassembler over the bpf_conformance corpus, plus round-trip properties.
//!
//! The claim under test: for every instruction the decoder accepts, the conformance-syntax
//! text re-assembles to the identical bytes (shared/design/cli-contract.md, `asm`/`disasm`).

// Tests fail by panicking: unwrap on known-good corpus data is the assertion.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::Config;
use vm_core::asm::{Syntax, assemble, disassemble, format_insn};
use vm_core::isa::{Insn, RawInsn, decode_at, decode_program};
use vm_core::testdata::TestFile;

/// Every `*.data` under `dir` (recursively), sorted; fails when the corpus is missing.
fn data_files(rel: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for e in entries {
            let p = e.expect("directory entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "data") {
                out.push(p);
            }
        }
    }
    let root = vm_core::corpus::require(rel);
    let mut out = Vec::new();
    walk(&root, &mut out);
    out.sort();
    assert!(!out.is_empty(), "no .data files under {}", root.display());
    out
}

fn conformance_programs() -> Vec<(PathBuf, Vec<RawInsn>)> {
    let files = data_files("bpf_conformance/tests");
    assert_eq!(
        files.len(),
        313,
        "bpf_conformance/tests should hold 313 files"
    );
    files
        .into_iter()
        .map(|f| {
            let tf = TestFile::parse_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert!(tf.asm.is_some(), "{}: no -- asm", f.display());
            let raw = tf
                .program()
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            (f, raw)
        })
        .collect()
}

/// (a) Every conformance file parses, its asm assembles, and the result decodes.
#[test]
fn every_conformance_file_assembles_and_decodes() {
    let mut failures = Vec::new();
    for (f, raw) in conformance_programs() {
        if let Err(e) = decode_program(&raw) {
            failures.push(format!("{}: {e}", f.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (a) lddw.data carries both `-- asm` and `-- raw`: they must agree.
#[test]
fn lddw_asm_equals_its_raw_section() {
    let f = vm_core::corpus::require("bpf_conformance/tests/lddw.data");
    let tf = TestFile::parse_file(&f).unwrap();
    let raw = tf.raw.clone().expect("lddw.data has -- raw");
    let asm = assemble(tf.asm.as_deref().expect("lddw.data has -- asm")).unwrap();
    assert_eq!(asm, raw);
    assert_eq!(tf.result, Some(0x1122334455667788));
}

/// (b) assemble → decode → disassemble(Conformance) → assemble is the identity on bytes.
#[test]
fn conformance_files_round_trip() {
    let mut failures = Vec::new();
    let mut slots = 0;
    for (f, raw) in conformance_programs() {
        let insns = decode_program(&raw).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let text = disassemble(&insns, Syntax::Conformance);
        match assemble(&text) {
            Ok(again) if again == raw => slots += raw.len(),
            Ok(again) => failures.push(format!(
                "{}: bytes differ\n{text}{:?}\n{:?}",
                f.display(),
                raw,
                again
            )),
            Err(e) => failures.push(format!("{}: {e}\n{text}", f.display())),
        }
        // Every dialect prints every instruction (and never panics).
        for (pc, insn) in insns.iter().enumerate() {
            if *insn != Insn::LdImm64Tail {
                assert!(!format_insn(insn, pc, Syntax::Kernel).is_empty());
                assert!(!format_insn(insn, pc, Syntax::Llvm).is_empty());
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("conformance corpus: {slots} slots round-tripped");
    assert!(slots >= 2700, "only {slots} slots round-tripped");
}

/// uBPF files (§2 extras: includes, hexdumps, error patterns) all parse; their asm assembles.
#[test]
fn ubpf_files_parse_and_assemble() {
    let files = data_files("ubpf/tests");
    assert!(
        files.len() >= 100,
        "expected the 104 uBPF files, got {}",
        files.len()
    );
    let mut assembled = 0;
    let mut asm_vs_raw = 0;
    for f in &files {
        let tf = TestFile::parse_file(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if tf.asm.is_some() || tf.raw.is_some() {
            tf.program()
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assembled += 1;
        }
        // uBPF's assembler tests (alu.data, jmp.data, ...) give both forms of one program.
        if let (Some(asm), Some(raw), None, None) = (&tf.asm, &tf.raw, tf.result, &tf.error) {
            let ours = assemble(asm).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert_eq!(&ours, raw, "{}", f.display());
            asm_vs_raw += 1;
        }
    }
    assert_eq!(asm_vs_raw, 6, "uBPF has 6 asm-vs-raw assembler tests");
    let sack = vm_core::corpus::require("ubpf/tests/tcp-sack/match.data");
    let tf = TestFile::parse_file(&sack).unwrap();
    assert_eq!(tf.asm_include.as_deref(), Some("tcp-sack.asm"));
    assert_eq!(&tf.mem[..4], &[0x00, 0x26, 0x62, 0x2f]);
    assert!(assembled >= 80, "{assembled}");
}

/// Opcodes for which some choice of the other fields decodes (found by probing the decoder,
/// so this test carries no opcode table of its own).
fn valid_codes() -> Vec<u8> {
    let exit = assemble("exit").unwrap()[0];
    let offs = [0i16, 1, 8, 16, 32];
    let imms = [
        0i32, 1, 16, 32, 64, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1,
    ];
    (0..=255u8)
        .filter(|&code| {
            (0u8..=6).any(|src| {
                offs.iter().any(|&off| {
                    imms.iter().any(|&imm| {
                        let i = RawInsn::new(code, 0, src, off, imm);
                        decode_program(&[i, exit]).is_ok()
                            || decode_program(&[i, RawInsn::default(), exit]).is_ok()
                    })
                })
            })
        })
        .collect()
}

fn round_trips(raw: &[RawInsn]) -> Result<(), String> {
    let insns = decode_program(raw).map_err(|e| e.to_string())?;
    let text = disassemble(&insns, Syntax::Conformance);
    let again = assemble(&text).map_err(|e| format!("{e}\n{text}"))?;
    if again != raw {
        return Err(format!("bytes differ for\n{text}{raw:?}\n{again:?}"));
    }
    // Non-canonical dialects must at least print (no panic, no empty line).
    for (pc, insn) in insns.iter().enumerate() {
        if *insn != Insn::LdImm64Tail
            && (format_insn(insn, pc, Syntax::Kernel).is_empty()
                || format_insn(insn, pc, Syntax::Llvm).is_empty())
        {
            return Err(format!("empty line for {insn:?}"));
        }
    }
    Ok(())
}

/// A deterministic sweep: every decodable (opcode, src, off, imm) from a grid of interesting
/// field values, as a one-instruction program, round-trips.
#[test]
fn field_sweep_round_trips() {
    let exit = assemble("exit").unwrap()[0];
    let offs = [0i16, 1, -1, 8, 16, 32, i16::MIN, i16::MAX];
    let imms = [
        0i32,
        1,
        -1,
        16,
        32,
        64,
        0x40,
        0x41,
        0x50,
        0x51,
        0xa0,
        0xa1,
        0xe1,
        0xf1,
        i32::MIN,
        i32::MAX,
    ];
    let mut ok = 0usize;
    for code in valid_codes() {
        for dst in [0u8, 10] {
            for src in [0u8, 1, 2, 3, 4, 5, 6, 10] {
                for &off in &offs {
                    for &imm in &imms {
                        let i = RawInsn::new(code, dst, src, off, imm);
                        for prog in [vec![i, exit], vec![i, RawInsn::new(0, 0, 0, 0, imm), exit]] {
                            if decode_program(&prog).is_ok() {
                                round_trips(&prog).unwrap();
                                ok += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!("field sweep: {ok} decodable programs round-tripped");
    assert!(ok > 5000, "only {ok} programs decoded");
}

fn slot(codes: Vec<u8>) -> impl Strategy<Value = RawInsn> {
    let off = prop_oneof![
        Just(0i16),
        Just(1),
        Just(8),
        Just(16),
        Just(32),
        -3i16..=3,
        any::<i16>()
    ];
    let imm = prop_oneof![
        Just(0i32),
        Just(1),
        Just(16),
        Just(32),
        Just(64),
        Just(0xe1),
        Just(0xf1),
        Just(0x40),
        Just(0x41),
        Just(0x50),
        Just(0x51),
        Just(0xa0),
        Just(0xa1),
        -3i32..=3,
        any::<i32>()
    ];
    let src = prop_oneof![3 => 0u8..=10, 1 => 0u8..=6];
    (prop::sample::select(codes), 0u8..=10, src, off, imm)
        .prop_map(|(code, dst, src, off, imm)| RawInsn::new(code, dst, src, off, imm))
}

/// Random programs of 1..=3 instructions; an instruction that needs a second slot (found by
/// asking the decoder) gets one, with a random (often zero) high immediate.
fn program() -> impl Strategy<Value = Vec<RawInsn>> {
    let tail_imm = prop_oneof![Just(0i32), any::<i32>()];
    let exit = assemble("exit").unwrap()[0];
    prop::collection::vec((slot(valid_codes()), tail_imm), 1..=3).prop_map(move |parts| {
        let mut out = Vec::new();
        for (i, hi) in parts {
            let tail = RawInsn::new(0, 0, 0, 0, hi);
            out.push(i);
            if decode_at(&[i, tail], 0).is_ok_and(|d| d.slots() == 2) {
                out.push(tail);
            }
        }
        out.push(exit);
        out
    })
}

proptest! {
    #![proptest_config(Config { cases: 12_000, max_global_rejects: 2_000_000, ..Config::default() })]

    /// (c) Random valid instructions: disassemble(Conformance) + assemble gives the same bytes.
    #[test]
    fn random_valid_programs_round_trip(raw in program()) {
        prop_assume!(decode_program(&raw).is_ok());
        if let Err(e) = round_trips(&raw) {
            prop_assert!(false, "{}", e);
        }
    }
}

proptest! {
    #![proptest_config(Config::with_cases(3_000))]

    /// The assembler returns an error, never panics, on arbitrary text.
    #[test]
    fn assembler_never_panics(text in "[a-z0-9%\\[\\]+\\-:, #;\n]{0,80}") {
        let _ = assemble(&text);
    }

    /// The test-file parser never panics either.
    #[test]
    fn testfile_parser_never_panics(text in "(-- (asm|raw|mem|result|error)\n|[0-9a-fx: ]{0,20}\n){0,8}") {
        let _ = TestFile::parse(&text).map(|tf| tf.program());
    }
}
