//! The zero-extension list against the kernel's own `zext_dst` marks.
//!
//! The kernel's marks are observable: with `BPF_F_TEST_RND_HI32` it fills the upper half of
//! every 32-bit definition it did *not* mark with random bits, by inserting three instructions
//! that use its hidden register (R11) right after it. Reading the translated program back
//! (`prog_info`) and finding those patches tells, for each 32-bit definition, whether the kernel
//! marked it. Random programs without context accesses, divisions or decidable branches keep the
//! translated program a plain copy of ours apart from those patches, so instructions line up.

use std::fmt::Write as _;

use hw_tests::kernel::{LoadOptions, flags, kernel_or_skip, load_program, prog_info};
use verifier::{VerifyOptions, verify};
use vm_core::isa::{AluOp, AtomicOp, Insn, Size, Width};
use vm_core::{ProgType, Program, RawInsn};

const PROGRAMS: usize = 400;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn generate(rng: &mut Rng) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "call get_prandom_u32\nmov r6, r0\ncall get_prandom_u32\nmov r7, r0"
    );
    for r in [0u8, 1, 2, 3, 4, 5, 8, 9] {
        let src = if rng.below(2) == 0 { 6 } else { 7 };
        let w = if rng.below(2) == 0 { "32" } else { "" };
        let _ = writeln!(out, "mov{w} r{r}, r{src}");
    }
    let regs = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    let mut label = 0;
    for _ in 0..(4 + rng.below(16)) {
        let a = regs[rng.below(10) as usize];
        let b = regs[rng.below(10) as usize];
        let w = if rng.below(2) == 0 { "32" } else { "" };
        match rng.below(9) {
            0 | 1 => {
                let ops = ["add", "sub", "and", "or", "xor", "mul", "mov"];
                let _ = writeln!(out, "{}{w} r{a}, r{b}", ops[rng.below(7) as usize]);
            }
            2 => {
                let ops = ["add", "and", "or", "xor", "lsh", "rsh", "arsh", "mov"];
                let op = ops[rng.below(8) as usize];
                let imm = if op.ends_with("sh") {
                    rng.below(31) + 1
                } else {
                    rng.below(1000)
                };
                let _ = writeln!(out, "{op}{w} r{a}, {imm}");
            }
            3 => {
                let (st, ld) = [
                    ("stxw", "ldxw"),
                    ("stxdw", "ldxdw"),
                    ("stxw", "ldxh"),
                    ("stxdw", "ldxb"),
                ][rng.below(4) as usize];
                let off = -8 * (1 + rng.below(4) as i64);
                let _ = writeln!(out, "{st} [r10{off}], r{a}\n{ld} r{b}, [r10{off}]");
            }
            4 => {
                let _ = writeln!(
                    out,
                    "{} r{a}",
                    ["be16", "be32", "le16", "le32", "be64"][rng.below(5) as usize]
                );
            }
            5 => {
                let _ = writeln!(out, "neg{w} r{a}");
            }
            6 => {
                // An undecidable branch: a fresh random number.
                label += 1;
                let _ = writeln!(
                    out,
                    "stxdw [r10-64], r{a}\ncall get_prandom_u32\njgt r0, {}, l{label}\nmov{w} r{b}, r6\nl{label}:\nldxdw r{a}, [r10-64]",
                    rng.below(1 << 31)
                );
                for r in 1..=5 {
                    let _ = writeln!(out, "mov r{r}, r7");
                }
                let _ = writeln!(out, "mov r0, r6");
            }
            7 => {
                let fetch = if rng.below(2) == 0 { "fetch " } else { "" };
                let _ = writeln!(out, "stdw [r10-16], 0\nlock {fetch}add{w} [r10-16], r{a}");
            }
            _ => {
                let _ = writeln!(
                    out,
                    "{}{w} r{a}, r{b}",
                    ["rsh", "lsh", "arsh"][rng.below(3) as usize]
                );
                let _ = writeln!(out, "and r{b}, 31");
            }
        }
    }
    let r = regs[rng.below(10) as usize];
    let _ = writeln!(out, "mov r0, r{r}\nexit");
    out
}

/// Whether `insn` defines a 32-bit sub-register (the kernel's `is_reg64(.., DST_OP)` false).
fn defines_subreg(insn: &Insn) -> bool {
    match *insn {
        Insn::Alu { width, .. } | Insn::Neg { width, .. } => width == Width::W32,
        Insn::Endian { bits, .. } => bits != 64,
        Insn::Load { size, signed, .. } => size != Size::DW && !signed,
        Insn::Atomic {
            op, fetch, size, ..
        } => (fetch || op == AtomicOp::CmpXchg) && size == Size::W,
        Insn::LdAbs { .. } | Insn::LdInd { .. } => true,
        _ => false,
    }
}

/// Slots whose 32-bit definition the kernel left unmarked (followed by the R11 poison).
fn poisoned(orig: &[Insn], xlated: &[RawInsn]) -> Option<Vec<bool>> {
    let mut out = vec![false; orig.len()];
    let mut j = 0;
    for (i, insn) in orig.iter().enumerate() {
        let _ = insn;
        let patch = xlated
            .get(j + 1)
            .is_some_and(|x| x.dst == 11 && x.code == 0xb7)
            && xlated.get(j + 2).is_some_and(|x| x.dst == 11);
        if patch && defines_subreg(&orig[i]) {
            out[i] = true;
            j += 4;
        } else {
            j += 1;
        }
    }
    (j == xlated.len()).then_some(out)
}

#[test]
fn zext_marks_match_the_kernel() {
    if !kernel_or_skip("zext_marks_match_the_kernel") {
        return;
    }
    let mut rng = Rng(0x7ae7_0000_1234_5678);
    let (mut compared, mut equal, mut defs, mut unaligned) = (0, 0, 0, 0);
    let (mut missing, mut extra) = (0, 0);
    let mut shown = 0;
    for _ in 0..PROGRAMS {
        let text = generate(&mut rng);
        let raw = vm_core::asm::assemble(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let p = Program::from_raw("zext", ProgType::SocketFilter, &raw)
            .unwrap_or_else(|e| panic!("{e}"));
        let ours = match verify(&p, &VerifyOptions::default()) {
            Ok(v) => v,
            Err(r) => panic!("we reject a generated program: {}\n{text}", r.error),
        };
        let opts = LoadOptions {
            prog_flags: flags::TEST_RND_HI32,
            ..LoadOptions::default()
        };
        let loaded =
            load_program(&raw, 1, &opts).unwrap_or_else(|e| panic!("kernel rejects: {e}\n{text}"));
        let info = prog_info(&loaded.fd).unwrap_or_else(|e| panic!("prog_info: {e}"));
        let Some(poison) = poisoned(&p.insns, &info.xlated) else {
            unaligned += 1;
            continue;
        };
        compared += 1;
        let mut same = true;
        for (pc, insn) in p.insns.iter().enumerate() {
            if !defines_subreg(insn) {
                continue;
            }
            defs += 1;
            let kernel_marked = !poison[pc];
            let ours_marked = ours.zext.contains(&pc);
            if kernel_marked != ours_marked {
                same = false;
                if kernel_marked {
                    missing += 1;
                } else {
                    extra += 1;
                }
                if (kernel_marked || std::env::var("ZEXT_SHOW_EXTRA").is_ok()) && shown < 10 {
                    shown += 1;
                    println!("pc {pc}: kernel zext={kernel_marked} ours={ours_marked}\n{text}");
                }
            }
        }
        if same {
            equal += 1;
        }
    }
    println!(
        "ZEXT: {equal}/{compared} programs with identical marks; {defs} 32-bit definitions compared, {missing} kernel marks we miss, {extra} extra marks of ours ({unaligned} translations could not be aligned)"
    );
    assert!(
        compared > PROGRAMS / 2,
        "too few programs could be compared"
    );
    assert_eq!(missing, 0, "we miss zero-extensions the kernel marks");
}

#[test]
fn alu32_result_read_as_64_bits_needs_zext() {
    let raw =
        vm_core::asm::assemble("mov r1, 5\nmov32 r2, r1\nadd r2, 1\nmov32 r3, r1\nmov r0, 0\nexit")
            .unwrap_or_default();
    let p = Program::from_raw("z", ProgType::Xdp, &raw).unwrap_or_else(|e| panic!("{e}"));
    let v = verify(&p, &VerifyOptions::default()).unwrap_or_else(|r| panic!("{}", r.error));
    // r2's 32-bit definition is read by a 64-bit add; r3's is never read.
    assert_eq!(v.zext, vec![1]);
    let _ = AluOp::Add;
}
