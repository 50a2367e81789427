//! bpf_conformance `negative/`: assembler self-tests that must be rejected with a line number,
//! and the 45 `unused-*` encodings (non-zero reserved fields) the decoder must refuse.

// Tests fail by panicking: unwrap on known-good corpus data is the assertion.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use vm_core::asm::AsmErrorKind;
use vm_core::isa::decode_program;
use vm_core::testdata::{TestFile, TestFileError};

fn negative(prefix: &str) -> Vec<PathBuf> {
    let dir = vm_core::corpus::require("bpf_conformance/negative");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "data")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    out.sort();
    out
}

fn stem(p: &std::path::Path) -> &str {
    p.file_stem().and_then(|s| s.to_str()).unwrap_or("?")
}

/// Which error each assembler self-test must produce.
fn expected(name: &str) -> fn(&AsmErrorKind) -> bool {
    match name {
        "invalid_imm32_dec_range" | "invalid_imm32_hex_range" => {
            |k| matches!(k, AsmErrorKind::ImmOutOfRange { .. })
        }
        "invalid_label" => |k| matches!(k, AsmErrorKind::UnknownLabel(_)),
        "invalid_lock" | "invalid_lock2" | "invalid_operand_count" => {
            |k| matches!(k, AsmErrorKind::OperandCount { .. })
        }
        "invalid_mnemonic" => |k| matches!(k, AsmErrorKind::UnknownMnemonic(_)),
        "invalid_offset" => |k| matches!(k, AsmErrorKind::BadMemOperand(_)),
        "invalid_offset_range" => |k| matches!(k, AsmErrorKind::OffsetOutOfRange(_)),
        "invalid_register" => |k| matches!(k, AsmErrorKind::BadRegister(_)),
        _ => |_| false,
    }
}

/// (d) Every `invalid_*` file is rejected, at a line that holds the offending text.
#[test]
fn invalid_files_are_rejected_with_a_line_number() {
    let files = negative("invalid_");
    assert_eq!(files.len(), 11, "expected 11 invalid_*.data files");
    for f in &files {
        let name = stem(f);
        let text = std::fs::read_to_string(f).unwrap();
        let line = match TestFile::parse_file(f) {
            // The unknown-directive self-test fails in the file parser, before assembly.
            Err(TestFileError::UnknownDirective { line, .. }) => {
                assert_eq!(name, "invalid_unknown_directive");
                line
            }
            Err(e) => panic!("{name}: unexpected parse error {e}"),
            Ok(tf) => match tf.program() {
                Err(TestFileError::Asm { line, kind, .. }) => {
                    assert!(
                        expected(name)(&kind),
                        "{name}: unexpected error kind {kind}"
                    );
                    line
                }
                other => panic!("{name}: expected an assembler error, got {other:?}"),
            },
        };
        let at = text.lines().nth(line - 1).unwrap_or("");
        let code = at.split('#').next().unwrap_or("").trim();
        assert!(
            !code.is_empty(),
            "{name}: error line {line} is blank or a comment: {at:?}"
        );
    }
}

/// The other assembler/runner self-tests: what each one means for us.
#[test]
fn other_negative_self_tests() {
    let dir = vm_core::corpus::require("bpf_conformance/negative");
    // No sections at all.
    assert_eq!(
        TestFile::parse_file(&dir.join("empty.data")),
        Err(TestFileError::NoExpectation)
    );
    // A result but no program.
    let tf = TestFile::parse_file(&dir.join("empty_instructions.data")).unwrap();
    assert_eq!(tf.program(), Err(TestFileError::NoProgram));
    // These two are runner self-tests: the program itself is fine.
    for name in ["error.data", "incorrect_return_value_high_bits.data"] {
        let tf = TestFile::parse_file(&dir.join(name)).unwrap();
        decode_program(&tf.program().unwrap()).unwrap();
    }
}

/// (d) The 45 `unused-*` files parse as byte rows and none decodes.
#[test]
fn unused_field_encodings_do_not_decode() {
    let files = negative("unused-");
    assert_eq!(files.len(), 45, "expected 45 unused-*.data files");
    let mut decoded = Vec::new();
    for f in &files {
        let name = stem(f);
        let tf = TestFile::parse_file(f).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(tf.asm.is_none(), "{name}");
        assert_eq!(tf.error.as_deref(), Some(""), "{name}");
        let raw = tf.program().unwrap();
        assert_eq!(raw.len(), 2, "{name}: two slots expected");
        match decode_program(&raw) {
            Ok(_) => decoded.push(name.to_string()),
            Err(e) => assert_eq!(e.pc, 0, "{name}: rejected at the wrong slot: {e}"),
        }
    }
    assert!(
        decoded.is_empty(),
        "these unused-field encodings decode: {decoded:?}"
    );
}
