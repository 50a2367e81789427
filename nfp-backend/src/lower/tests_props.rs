//! Property tests of the claimed equivalence (random ALU/JMP programs behave the same on the
//! executor as in the interpreter) and tests of the refusal paths.

use proptest::prelude::*;

use super::tests::{diff_with, packet, xdp};
use super::{INSN_LIMIT, LowerOptions, NOT_LOWERED};
use crate::NicLimits;
use crate::compile::{compile, lower_verified};

const OPS: [&str; 11] = [
    "add", "sub", "and", "or", "xor", "mov", "lsh", "rsh", "arsh", "mul", "neg",
];

fn line(op: usize, w32: bool, dst: u8, src: Option<u8>, imm: i32) -> String {
    let op = OPS[op % OPS.len()];
    let w = if w32 { "32" } else { "" };
    let dst = 6 + dst % 3;
    if op == "neg" {
        return format!("neg{w} %r{dst}");
    }
    let rhs = match src {
        Some(s) => format!("%r{}", 6 + s % 3),
        None if matches!(op, "lsh" | "rsh" | "arsh") => {
            format!("{}", imm.rem_euclid(if w32 { 32 } else { 64 }))
        }
        None => format!("{imm}"),
    };
    if op == "mul" {
        // Keep operands within u32 as the NFP requires (both masked first).
        return format!(
            "and{w} %r{dst}, 0xffffff\nmov32 %r9, {rhs}\nand %r9, 0xffff\nmul{w} %r{dst}, %r9"
        );
    }
    format!("{op}{w} %r{dst}, {rhs}")
}

fn arb_line() -> impl Strategy<Value = String> {
    (
        0..OPS.len(),
        any::<bool>(),
        0u8..3,
        proptest::option::of(0u8..3),
        any::<i32>(),
    )
        .prop_map(|(op, w, d, s, i)| line(op, w, d, s, i))
}

fn arb_jmp() -> impl Strategy<Value = String> {
    let conds = [
        "jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset",
    ];
    (
        0..conds.len(),
        any::<bool>(),
        0u8..3,
        proptest::option::of(0u8..3),
        -300i32..300,
    )
        .prop_map(move |(c, w, d, s, i)| {
            let rhs = s.map_or(format!("{i}"), |s| format!("%r{}", 6 + s));
            let w = if w { "32" } else { "" };
            format!("{}{w} %r{}, {rhs}, +1\nadd %r6, 1", conds[c], 6 + d)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_alu_and_jmp_programs_agree(body in proptest::collection::vec(prop_oneof![arb_line(), arb_jmp()], 1..12)) {
        let src = format!(
            "mov %r6, 0\nmov %r7, 0\nmov %r8, 0\nldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 32\njgt %r4, %r3, out\n\
             ldxdw %r6, [%r2+0]\nldxdw %r7, [%r2+8]\nldxw %r8, [%r2+20]\n{}\nout:\nmov %r0, %r6\nxor %r0, %r7\nxor %r0, %r8\nexit\n",
            body.join("\n")
        );
        let p = xdp(&src);
        let mut pk = packet();
        pk[7] = 0x9c;
        diff_with(&p, &[packet(), pk.clone()], &LowerOptions::NONE, false);
        diff_with(&p, &[packet(), pk], &LowerOptions::default(), false);
    }
}

#[test]
fn instruction_limit_is_enforced() {
    let body: String = (0..2000)
        .map(|i| format!("mov %r0, {}\n", 0x1234_5678 + i))
        .collect();
    let p = xdp(&format!("{body}exit"));
    let err = compile(&p, &NicLimits::default())
        .err()
        .unwrap_or_else(|| panic!("compiled"));
    assert!(
        err.reasons.iter().any(|r| r.category == INSN_LIMIT
            && r.message == "instruction limit reached (2560 NFP instructions)"),
        "{err}"
    );
}

#[test]
fn unsupported_instructions_are_reasons_not_panics() {
    let nic = NicLimits::default();
    for src in [
        "mov %r0, 7\nmod %r0, 3\nexit",
        "mov %r0, 7\nsdiv %r0, 3\nexit",
        "mov %r0, 7\nbswap16 %r0\nexit",
        "mov %r0, 7\nmovsx832 %r0, %r0\nexit",
        "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 8\nmov %r0, 0\njgt %r4, %r3, +1\nldxsb %r0, [%r2+0]\nexit",
    ] {
        let p = xdp(src);
        let err = lower_verified(&p, &nic, &LowerOptions::default())
            .err()
            .unwrap_or_else(|| panic!("lowered: {src}"));
        assert!(err.reasons.iter().all(|r| r.pc.is_some()), "{src}: {err}");
        assert!(!err.reasons.is_empty());
        // And through the full pipeline it is refused too (by feasibility first).
        assert!(compile(&p, &nic).is_err(), "{src}");
    }
    let p = xdp("mov %r0, 7\nmod %r0, 3\nexit");
    let err = lower_verified(&p, &nic, &LowerOptions::default()).err();
    assert!(err.is_some_and(|e| e.reasons.iter().any(|r| r.category == NOT_LOWERED)));
}

#[test]
fn divide_by_non_constant_is_refused() {
    let src = "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r0, %r3\nsub %r0, %r2\nmov %r1, 100\ndiv %r1, %r0\nmov %r0, %r1\nexit";
    let err = lower_verified(&xdp(src), &NicLimits::default(), &LowerOptions::default()).err();
    assert!(err.is_some_and(|e| {
        e.reasons
            .iter()
            .any(|r| r.message.contains("divisor is not constant"))
    }));
}

fn arb_pkt_access() -> impl Strategy<Value = String> {
    let sizes = ["b", "h", "w", "dw"];
    (0..4usize, 0i16..40, any::<bool>(), 0u8..3, any::<bool>()).prop_map(
        move |(s, off, store, r, mask)| {
            let sz = sizes[s];
            let r = 6 + r;
            if store {
                format!("stx{sz} [%r2+{off}], %r{r}")
            } else if mask {
                format!("ldx{sz} %r{r}, [%r2+{off}]\nand %r{r}, 0xff00ff")
            } else {
                format!("ldx{sz} %r{r}, [%r2+{off}]\nadd %r6, %r{r}")
            }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Packet loads and stores at random offsets and sizes (packet cache groups, straddling
    /// extraction, load-then-mask folds) agree with the interpreter, packet bytes included.
    #[test]
    fn random_packet_accesses_agree(body in proptest::collection::vec(arb_pkt_access(), 1..10)) {
        let src = format!(
            "mov %r6, 0\nmov %r7, 0\nmov %r8, 0\nldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 48\njgt %r4, %r3, out\n\
             {}\nout:\nmov %r0, %r6\nxor %r0, %r7\nxor %r0, %r8\nexit\n",
            body.join("\n")
        );
        let p = xdp(&src);
        diff_with(&p, &[packet()], &LowerOptions::NONE, true);
        diff_with(&p, &[packet()], &LowerOptions::default(), true);
    }
}

#[test]
fn refusals_carry_feasibility_reasons_and_the_log() {
    let p = super::tests::program("mov %r0, 0\nexit", vm_core::ProgType::SocketFilter, vec![]);
    let err = compile(&p, &NicLimits::default())
        .err()
        .unwrap_or_else(|| panic!("a socket filter compiled"));
    assert!(
        err.reasons.iter().any(|r| r.category == "prog_type"),
        "{err}"
    );
    let p = xdp("mov %r1, 0\nexit\n");
    let err = compile(&p, &NicLimits::default()).err();
    assert!(err.is_some_and(|e| !e.reasons.is_empty() && !e.verifier_log.is_empty()));
}

static FUZZ_LOWERED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Opcodes of the ISA (ALU, ALU64, JMP, JMP32, loads, stores, atomics, calls, legacy loads).
const OPCODES: [u8; 98] = [
    0x07, 0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77, 0x7f,
    0x87, 0x97, 0x9f, 0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0xd4, 0xdc, 0x04, 0x0c, 0x14, 0x1c, 0x24,
    0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54, 0x5c, 0x64, 0x6c, 0x74, 0x7c, 0x84, 0xa4, 0xac, 0xb4, 0xbc,
    0xc4, 0xcc, 0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d, 0x55, 0x5d, 0x65, 0x6d, 0x75,
    0x7d, 0xa5, 0xad, 0xb5, 0xbd, 0xc5, 0xcd, 0xd5, 0xdd, 0x16, 0x1e, 0x26, 0x61, 0x69, 0x71, 0x79,
    0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b, 0xc3, 0xdb, 0x85, 0x20, 0x28, 0x30, 0x40, 0x48,
    0x50, 0x95,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary instruction words never make `compile` or the lowering panic (forward jumps
    /// only: a program that loops until the verifier's 1M-instruction budget is slow to refuse).
    #[test]
    fn arbitrary_programs_never_panic(words in proptest::collection::vec((0..OPCODES.len(), 0u8..11, 0u8..11, 0i16..4, prop_oneof![-300i32..300, any::<i32>()]), 1..14)) {
        let mut raw: Vec<vm_core::RawInsn> = words
            .iter()
            .map(|&(code, dst, src, off, imm)| {
                let code = OPCODES[code];
                // Immediate forms of ALU/JMP and the non-register classes carry src 0.
                let class = code & 7;
                let k_form = (4..=7).contains(&class) && code & 8 == 0;
                let src = if k_form || matches!(class, 0 | 2) || code == 0x85 { 0 } else { src };
                // Clear the fields each class reserves so most words decode.
                let (mut dst, mut src, mut off, mut imm) = (dst, src, off, imm);
                match class {
                    4 | 7 => {
                        off = 0;
                        if code & 0xf0 == 0x80 {
                            src = 0;
                            imm = 0;
                        }
                        if code & 8 != 0 {
                            imm = 0;
                        }
                        if code & 0xf0 == 0xd0 {
                            src = 0;
                            imm = [16, 32, 64][imm.rem_euclid(3) as usize];
                        }
                    }
                    1 | 3 if code & 0xe0 != 0xc0 => imm = 0,
                    0 => {
                        dst = 0;
                        off = 0;
                        if code & 0xe0 == 0x20 {
                            src = 0;
                        }
                    }
                    5 if code == 0x85 || code == 0x95 => {
                        dst = 0;
                        off = 0;
                        if code == 0x95 {
                            imm = 0;
                        } else {
                            imm = [1, 2, 3, 7, 44, 65][imm.rem_euclid(6) as usize];
                        }
                    }
                    5 | 6 => {
                        if code & 8 != 0 {
                            imm = 0;
                        }
                        if code == 0x05 {
                            (dst, src, imm) = (0, 0, 0);
                        }
                    }
                    _ => {}
                }
                vm_core::RawInsn::new(code, dst, src, off, imm)
            })
            .collect();
        raw.push(vm_core::RawInsn::new(0x95, 0, 0, 0, 0));
        // Initialise every register but r1 (ctx) and r10 so more programs verify.
        let mut init: Vec<vm_core::RawInsn> = [0u8, 2, 3, 4, 5, 7, 8, 9]
            .iter()
            .map(|&r| vm_core::RawInsn::new(0xb7, r, 0, 0, i32::from(r) * 7 - 20))
            .collect();
        init.push(vm_core::RawInsn::new(0xbf, 6, 1, 0, 0));
        init.extend(raw);
        let raw = init;
        let dec = vm_core::Program::from_raw("fuzz", vm_core::ProgType::Xdp, &raw);
        if let Ok(p) = dec {
            let _ = compile(&p, &NicLimits::default());
            if lower_verified(&p, &NicLimits::default(), &LowerOptions::NONE).is_ok() {
                let n = FUZZ_LOWERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n.is_multiple_of(32) {
                    eprintln!("fuzz: {} programs lowered", n + 1);
                }
            }
        }
    }
}
