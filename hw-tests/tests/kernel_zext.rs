//! Pins a Linux 6.18 verifier bug in zero-extension marking: a 32-bit definition whose
//! only 64-bit read lies on a path the verifier pruned is never marked; see
//! `regressions/KERNEL_BUGS.md` §4 (the general case of §3, pinned in `diff_random.rs`).
//!
//! On x86-64 an ALU32 result is zero-extended by the CPU, so the missing mark only shows
//! where the kernel must insert the zero-extension itself (arm32, riscv, ppc, s390, mips,
//! x86-32 JITs) or, as here, under `BPF_F_TEST_RND_HI32`: every 32-bit definition the
//! verifier left unmarked gets its upper half filled with a random constant, which the
//! 64-bit read on the pruned path then returns.

use hw_tests::engine::{Engine, InterpEngine, KernelEngine, TestInput};
use hw_tests::kernel::{LoadOptions, flags, load_vm_program, prog_info};
use hw_tests::require_kernel;
use vm_core::interp::VmConfig;
use vm_core::isa::decode_at;
use vm_core::{ProgType, Program, RawInsn};

/// The pc of `w0 = w6` (the 32-bit definition under test) in both programs.
const DEF_PC: usize = 6;

/// Where the kernel's translation of `p` holds `w0 = w6` (compared as typed instructions).
fn def_in(p: &Program, xlated: &[RawInsn]) -> Option<usize> {
    let def = p.insns.get(DEF_PC)?;
    (0..xlated.len()).find(|&i| decode_at(xlated, i).is_ok_and(|x| x == *def))
}

/// The random constant the kernel put in the upper half of `w0 = w6`, if it did not mark
/// that definition for zero-extension: the poison is three instructions on the kernel's
/// hidden register R11 (`r11 = K; r11 <<= 32; r0 |= r11`), which vm-core cannot decode.
fn poison_after_def(p: &Program, xlated: &[RawInsn]) -> Option<u32> {
    let at = def_in(p, xlated)?;
    let set = xlated.get(at + 1).filter(|x| x.dst == 11)?;
    let or = xlated.get(at + 3)?;
    (or.dst == 0 && or.src == 11).then_some(set.imm as u32)
}

/// `r0 = (u32)packet[0]`, then on a non-zero byte `w0 += w0`, then `r0 >>= 32` (a 64-bit
/// read: the ISA result is always 0). The verifier walks the `add32` path first and prunes
/// the direct path at `rsh` (a jump target). `workaround` adds `r0 = r0` right after the
/// definition, a 64-bit read on the path the verifier does walk.
fn program(workaround: bool) -> Program {
    let read64 = if workaround { "mov %r0, %r0\n" } else { "" };
    let skip = if workaround { 7 } else { 6 };
    let text = format!(
        "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 1\njgt %r4, %r3, +{skip}\n\
         ldxb %r6, [%r2+0]\nmov32 %r0, %r6\n{read64}jeq %r6, 0, +1\nadd32 %r0, %r0\n\
         rsh %r0, 32\nexit\nmov %r0, 7\nexit\n"
    );
    let raw = vm_core::asm::assemble(&text).expect("assembles");
    Program::from_raw("alu32_zext", ProgType::Xdp, &raw).expect("decodes")
}

/// Loads `p` with `BPF_F_TEST_RND_HI32`; returns the poison constant of `w0 = w6` (if any)
/// and, per first packet byte, the kernel's and the interpreter's r0.
fn run(p: &Program, first_bytes: &[u8]) -> (Option<u32>, Vec<(u64, u64)>) {
    let opts = LoadOptions {
        prog_flags: flags::TEST_RND_HI32,
        ..LoadOptions::default()
    };
    let loaded = load_vm_program(p, &opts).unwrap_or_else(|e| panic!("kernel rejects: {e}"));
    let info = prog_info(&loaded.prog.fd).unwrap_or_else(|e| panic!("prog_info: {e}"));
    assert!(
        def_in(p, &info.xlated).is_some(),
        "the definition is in the translated program"
    );
    let poison = poison_after_def(p, &info.xlated);
    let mut kernel = KernelEngine::from_loaded(loaded);
    let mut interp = InterpEngine::new(p, VmConfig::default()).expect("interpreter accepts");
    let results = first_bytes
        .iter()
        .map(|&b| {
            let mut pkt = vec![0u8; 14];
            pkt[0] = b;
            let input = TestInput::packet(pkt);
            (
                kernel.run(&input).expect("kernel runs").retval,
                interp.run(&input).expect("interpreter runs").retval,
            )
        })
        .collect();
    (poison, results)
}

/// With packet byte 0 the program takes the pruned path: the kernel returns the random
/// upper half it planted in `w0 = w6` (its translated program shows the poison right after
/// that definition), the ISA result is 0. If this fails because the poison is gone and the
/// kernel returns 0, the kernel was fixed: drop this pin.
#[test]
fn kernel_6_18_zext_alu32_lost_on_pruned_path() {
    require_kernel!("kernel_6_18_zext_alu32_lost_on_pruned_path");
    let (poison, r) = run(&program(false), &[5, 0]);
    let Some(k) = poison else {
        panic!(
            "Linux 6.18 leaves `w0 = w6` unmarked (its only 64-bit read is on the pruned path) \
             and poisons it; no poison now: the verifier bug is fixed, drop this pin"
        );
    };
    assert_eq!(r[0], (0, 0), "byte 5: the walked path redefines r0");
    assert_eq!(
        r[1],
        (u64::from(k), 0),
        "byte 0: the ISA result is 0 (the interpreter); Linux 6.18 returns the poisoned upper \
         half {k:#x}"
    );

    let (poison, r) = run(&program(true), &[5, 0]);
    assert_eq!(
        poison, None,
        "a 64-bit read on the walked path gets the mark"
    );
    assert_eq!(r, vec![(0, 0), (0, 0)], "and the engines agree");
}
