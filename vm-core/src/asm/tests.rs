#![allow(clippy::unwrap_used)]

use super::*;
use crate::isa::{Insn, RawInsn, decode_program};

fn one(text: &str) -> (RawInsn, Insn) {
    let raw = assemble(text).unwrap();
    let insns = decode_program(&raw).unwrap();
    (raw[0], insns[0])
}

fn kernel(text: &str, pc: usize) -> String {
    let (raw, insn) = one(text);
    kernel_line(pc, raw.code, &insn)
}

fn kernel_idx(text: &str, idx: usize) -> String {
    let raw = assemble(text).unwrap();
    let insns = decode_program(&raw).unwrap();
    kernel_line(idx, raw[idx].code, &insns[idx])
}

fn llvm(text: &str) -> String {
    let (_, insn) = one(text);
    format_insn(&insn, 0, Syntax::Llvm)
}

fn err(text: &str) -> AsmError {
    assemble(text).unwrap_err()
}

/// The verifier-log and bpftool samples of shared/design/ecosystem.md §5.1/5.2.
#[test]
fn kernel_lines_match_ecosystem_samples() {
    assert_eq!(kernel("mov %r0, 2\nexit", 0), "0: (b7) r0 = 2");
    assert_eq!(kernel("exit", 1), "1: (95) exit");
    assert_eq!(
        kernel("ldxw %r2, [%r1]\nexit", 1),
        "1: (61) r2 = *(u32 *)(r1 +0)"
    );
    assert_eq!(
        kernel("jgt %r2, 10, +2\nexit\nexit\nexit", 2),
        "2: (25) if r2 > 0xa goto pc+2"
    );
    assert_eq!(
        kernel("call 1\nexit", 3),
        "3: (85) call bpf_map_lookup_elem#1"
    );
    assert_eq!(
        kernel("ldxdw %r0, [%r0+0]\nexit", 6),
        "6: (79) r0 = *(u64 *)(r0 +0)"
    );
    assert_eq!(
        kernel("stdw [%r10-520], 0\nexit", 0),
        "0: (7a) *(u64 *)(r10 -520) = 0"
    );
    assert_eq!(
        kernel("ldxb %r0, [%r2]\nexit", 2),
        "2: (71) r0 = *(u8 *)(r2 +0)"
    );
    assert_eq!(
        kernel_idx("exit\njeq %r0, 0, -1\nexit", 1),
        "1: (15) if r0 == 0x0 goto pc-1"
    );
    assert_eq!(
        kernel("ldxdw %r2, [%r1+8]\nexit", 0),
        "0: (79) r2 = *(u64 *)(r1 +8)"
    );
    assert_eq!(
        kernel("jgt %r3, %r2, +1\nexit\nexit", 7),
        "7: (2d) if r3 > r2 goto pc+1"
    );
    assert_eq!(kernel("add %r1, 312\nexit", 16), "16: (07) r1 += 312");
    assert_eq!(
        kernel("jge %r0, 4, +0\nexit", 18),
        "18: (35) if r0 >= 0x4 goto pc+0"
    );
    assert_eq!(
        kernel("lock add [%r1+0], %r2\nexit", 27),
        "27: (db) lock *(u64 *)(r1 +0) += r2"
    );
}

#[test]
fn kernel_syntax_other_forms() {
    let k = |t: &str| {
        let (_, insn) = one(t);
        format_insn(&insn, 0, Syntax::Kernel)
    };
    assert_eq!(k("mov32 %r0, %r1\nexit"), "w0 = w1");
    assert_eq!(k("jslt32 %r2, %r3, +0\nexit"), "if w2 s< w3 goto pc+0");
    assert_eq!(k("ja +0\nexit"), "goto pc+0");
    assert_eq!(k("ja32 +0\nexit"), "gotol pc+0");
    assert_eq!(k("call local +0\nexit"), "call pc+0");
    assert_eq!(k("lddw %r1, map_fd 3\nexit"), "r1 = map[fd:3]");
    assert_eq!(k("lddw %r1, map_value 3 +8\nexit"), "r1 = map[fd:3][0]+8");
    assert_eq!(
        k("lddw %r0, 0x1122334455667788\nexit"),
        "r0 = 0x1122334455667788"
    );
    assert_eq!(k("be16 %r0\nexit"), "r0 = be16 r0");
    assert_eq!(k("bswap64 %r0\nexit"), "r0 = bswap64 r0");
    assert_eq!(
        k("lock fetch add [%r1+0], %r0\nexit"),
        "r0 = atomic64_fetch_add((u64 *)(r1 +0), r0)"
    );
    assert_eq!(
        k("lock fetch xor32 [%r10-4], %r3\nexit"),
        "r3 = atomic_fetch_xor((u32 *)(r10 -4), r3)"
    );
    assert_eq!(
        k("lock cmpxchg [%r1+8], %r2\nexit"),
        "r0 = atomic64_cmpxchg((u64 *)(r1 +8), r0, r2)"
    );
    assert_eq!(
        k("lock xchg32 [%r1+0], %r2\nexit"),
        "r2 = atomic_xchg((u32 *)(r1 +0), r2)"
    );
    assert_eq!(k("movsx864 %r1, %r2\nexit"), "r1 = (s8)r2");
    assert_eq!(k("movsx1632 %r1, %r2\nexit"), "w1 = (s16)w2");
    assert_eq!(k("ldxsb %r0, [%r1]\nexit"), "r0 = *(s8 *)(r1 +0)");
    assert_eq!(k("neg %r0\nexit"), "r0 = -r0");
    assert_eq!(k("sdiv %r0, %r1\nexit"), "r0 s/= r1");
    assert_eq!(k("smod %r0, %r1\nexit"), "r0 s%= r1");
    assert_eq!(k("arsh %r1, 3\nexit"), "r1 s>>= 3");
    assert_eq!(k("add %r2, -4\nexit"), "r2 += -4");
    assert_eq!(k("jne %r1, -1, +0\nexit"), "if r1 != 0xffffffff goto pc+0");
    assert_eq!(k("call 99999\nexit"), "call unknown#99999");
    assert_eq!(k("call %r2\nexit"), "callx r2");
    assert_eq!(k("ldabsh 12\nexit"), "r0 = *(u16 *)skb[12]");
}

/// llvm-objdump samples of shared/design/ecosystem.md §5.3 (LLVM 19).
#[test]
fn llvm_syntax_matches_objdump_samples() {
    assert_eq!(llvm("ldxw %r2, [%r1+4]\nexit"), "r2 = *(u32 *)(r1 + 0x4)");
    assert_eq!(llvm("add %r3, 14\nexit"), "r3 += 0xe");
    assert_eq!(llvm("add %r2, -4\nexit"), "r2 += -0x4");
    assert_eq!(llvm("lddw %r1, 0\nexit"), "r1 = 0x0 ll");
    assert_eq!(llvm("lddw %r1, 0x123\nexit"), "r1 = 0x123 ll");
    assert_eq!(llvm("call 1\nexit"), "call 0x1");
    assert_eq!(
        llvm("lock add [%r1+0], %r2\nexit"),
        "lock *(u64 *)(r1 + 0x0) += r2"
    );
    assert_eq!(llvm("mov32 %r1, %r2\nexit"), "w1 = w2");
    assert_eq!(
        llvm("stxdw [%r10-8], %r1\nexit"),
        "*(u64 *)(r10 - 0x8) = r1"
    );
    let (_, insn) = one("ja +1\nexit\njgt %r3, %r2, -2\nexit");
    assert_eq!(format_insn(&insn, 0, Syntax::Llvm), "goto +0x1");
    let raw = assemble("ja +1\nexit\njgt %r3, %r2, -2\nexit").unwrap();
    let insns = decode_program(&raw).unwrap();
    assert_eq!(
        format_insn(&insns[2], 2, Syntax::Llvm),
        "if r3 > r2 goto -0x2"
    );
    assert_eq!(
        llvm("lock cmpxchg32 [%r1+0], %r2\nexit"),
        "w0 = cmpxchg32_32(r1 + 0x0, w0, w2)"
    );
}

#[test]
fn conformance_lines() {
    let c = |t: &str| {
        let (_, insn) = one(t);
        format_insn(&insn, 0, Syntax::Conformance)
    };
    assert_eq!(c("mov32 r0, 0xffffffff\nexit"), "mov32 %r0, -1");
    assert_eq!(c("ldxb %r0, [%r1 + 0x2]\nexit"), "ldxb %r0, [%r1+2]");
    assert_eq!(
        c("lock fetch xchg [%r10-8], %r1\nexit"),
        "lock xchg [%r10-8], %r1"
    );
    assert_eq!(c("swap16 %r3\nexit"), "bswap16 %r3");
    assert_eq!(c("call bpf_ktime_get_ns\nexit"), "call 5");
    assert_eq!(c("call helper 7\nexit"), "call 7");
    assert_eq!(
        c("lddw %r2, map_idx_value 4 +16\nexit"),
        "lddw %r2, map_idx_value 4 +16"
    );
    assert_eq!(c("lddw %r2, btf_id 9 -3\nexit"), "lddw %r2, btf_id 9 -3");
    let text = "lddw %r1, func +1\nexit\nexit\n";
    let insns = decode_program(&assemble(text).unwrap()).unwrap();
    assert_eq!(
        disassemble(&insns, Syntax::Conformance),
        "lddw %r1, func +1\nexit\nexit\n"
    );
}

#[test]
fn labels_and_exit_label() {
    let raw = assemble("jne %r0, %r1, exit\nmov %r0, 1\nexit\n").unwrap();
    assert_eq!(raw[0].off, 1);
    let raw = assemble("ja l\nlddw %r0, 1\nl: mov %r0, 2\nexit").unwrap();
    assert_eq!(raw[0].off, 2);
    assert_eq!(raw[3].imm, 2);
    let raw = assemble("call local f\nexit\nf:\nexit").unwrap();
    assert_eq!(raw[0].src, 1);
    assert_eq!(raw[0].imm, 1);
}

#[test]
fn errors_carry_line_numbers() {
    let e = err("mov %r0, 1\n\nldxq %r0, %r1\nexit");
    assert_eq!(e.line, 3);
    assert!(matches!(e.kind, AsmErrorKind::UnknownMnemonic(_)));
    assert!(e.to_string().starts_with("line 3: unknown mnemonic"));
    assert!(matches!(
        err("or %r0, %r50").kind,
        AsmErrorKind::BadRegister(_)
    ));
    assert!(matches!(
        err("mov32 %r0, 2147483648").kind,
        AsmErrorKind::ImmOutOfRange { .. }
    ));
    assert!(matches!(
        err("ja nowhere").kind,
        AsmErrorKind::UnknownLabel(_)
    ));
    assert!(matches!(
        err("lddw %r0").kind,
        AsmErrorKind::OperandCount { .. }
    ));
    assert!(matches!(
        err("lock").kind,
        AsmErrorKind::OperandCount { .. }
    ));
    assert!(matches!(
        err("ldxb %r0, [%r1+0x10000]").kind,
        AsmErrorKind::OffsetOutOfRange(_)
    ));
    assert!(matches!(
        err("ja +40000").kind,
        AsmErrorKind::TargetOutOfRange { .. }
    ));
    assert!(matches!(
        err("a:\na:\nexit").kind,
        AsmErrorKind::DuplicateLabel { first_line: 1, .. }
    ));
    assert!(matches!(
        err("ldxb %r0, %r1").kind,
        AsmErrorKind::BadMemOperand(_)
    ));
}

#[test]
fn invalid_registers_assemble_for_negative_tests() {
    let raw = assemble("mov %r11, 1\nexit").unwrap();
    assert_eq!(raw[0].dst, 11);
    assert!(decode_program(&raw).is_err());
}
