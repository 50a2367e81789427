//! Differential tests: each program is compiled, run on the reference microengine executor
//! and compared with vm-core's interpreter on the same packets — return value, packet bytes
//! and map contents — with every optimisation on and with all of them off.

use vm_core::interp::{Vm, VmConfig};
use vm_core::maps::MapSet;
use vm_core::{MapDef, MapType, ProgType, Program, isa};

use crate::NicLimits;
use crate::compile::{Compiled, compile_with, lower_verified};
use crate::exec::{Executor, RunOpts};
use crate::lower::LowerOptions;
use crate::target::MeInsn;

pub(crate) fn program(src: &str, prog_type: ProgType, maps: Vec<MapDef>) -> Program {
    let raw = match vm_core::asm::assemble(src) {
        Ok(r) => r,
        Err(e) => panic!("test program does not assemble: {e}\n{src}"),
    };
    Program {
        name: "t".into(),
        section: None,
        prog_type,
        insns: isa::decode_program(&raw).unwrap_or_else(|e| panic!("decode: {e}")),
        maps,
    }
}

pub(crate) fn array_map(value_size: u32, entries: u32) -> MapDef {
    MapDef {
        name: "m".into(),
        map_type: MapType::Array,
        key_size: 4,
        value_size,
        max_entries: entries,
        flags: 0,
        initial_value: None,
    }
}

pub(crate) fn xdp(src: &str) -> Program {
    program(src, ProgType::Xdp, vec![array_map(8, 4)])
}

/// A 64-byte test packet with distinct bytes.
pub(crate) fn packet() -> Vec<u8> {
    (0..64u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect()
}

/// Compiles with `opts` (feasibility skipped when `strict` is false) and compares executor
/// and interpreter on every packet. Returns the compiled program.
pub(crate) fn diff_with(
    prog: &Program,
    packets: &[Vec<u8>],
    opts: &LowerOptions,
    strict: bool,
) -> Compiled {
    let nic = NicLimits::default();
    let compiled = if strict {
        compile_with(prog, &nic, opts)
    } else {
        lower_verified(prog, &nic, opts)
    };
    let c = match compiled {
        Ok(c) => c,
        Err(e) => panic!("does not compile: {e}\n{}", e.verifier_log),
    };
    let mut vm = Vm::new(prog, VmConfig::default()).unwrap_or_else(|e| panic!("vm: {e}"));
    let mut maps = MapSet::new(&prog.maps, 1).unwrap_or_else(|e| panic!("maps: {e}"));
    let mut ex = Executor::new(RunOpts::default());
    for (i, p) in packets.iter().enumerate() {
        let want = vm.run(p).unwrap_or_else(|e| panic!("interp: {e}"));
        let got = match ex.run(&c.code, &mut maps, p) {
            Ok(g) => g,
            Err(e) => panic!("executor on packet {i}: {e}\n{}", listing(&c)),
        };
        assert_eq!(
            got.retval,
            want.retval,
            "retval on packet {i}: me {:#x} interp {:#x}\n{}",
            got.retval,
            want.retval,
            listing(&c)
        );
        assert_eq!(got.packet, want.packet, "packet bytes on packet {i}");
        for fd in 0..prog.maps.len() {
            let (a, b) = (
                maps.get(fd).map(|m| m.slab()),
                vm.maps().get(fd).map(|m| m.slab()),
            );
            assert_eq!(a, b, "map {fd} contents after packet {i}");
        }
    }
    c
}

pub(crate) fn diff(prog: &Program, packets: &[Vec<u8>]) -> Compiled {
    diff_with(prog, packets, &LowerOptions::NONE, true);
    diff_with(prog, packets, &LowerOptions::default(), true)
}

/// Lowering-only variant (instructions the NFP driver would refuse but we lower anyway).
pub(crate) fn diff_loose(prog: &Program, packets: &[Vec<u8>]) -> Compiled {
    diff_with(prog, packets, &LowerOptions::NONE, false);
    diff_with(prog, packets, &LowerOptions::default(), false)
}

pub(crate) fn listing(c: &Compiled) -> String {
    c.code
        .iter()
        .enumerate()
        .map(|(i, insn): (usize, &MeInsn)| format!("{i:4}: {insn:?}\n"))
        .collect()
}

/// Runs `body` (which leaves its result in r0..) on a packet and returns r0 via exit, for
/// ALU checks: r6 gets the interesting value, the program returns it.
fn alu_prog(body: &str) -> Program {
    xdp(&format!(
        "mov %r6, 0\nmov %r7, 0\nldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 32\njgt %r4, %r3, out\n\
         ldxdw %r6, [%r2+0]\nldxdw %r7, [%r2+8]\n{body}\nout:\nmov %r0, %r6\nexit\n"
    ))
}

fn pk() -> Vec<Vec<u8>> {
    let mut b = packet();
    b[7] = 0x80; // negative high byte for r6
    vec![packet(), b]
}

#[test]
fn alu64_register_and_immediate_ops() {
    for body in [
        "add %r6, %r7",
        "sub %r6, %r7",
        "and %r6, %r7",
        "or %r6, %r7",
        "xor %r6, %r7",
        "mov %r6, %r7",
        "add %r6, -5",
        "sub %r6, -7",
        "add %r6, 0x12345",
        "sub %r6, 300",
        "and %r6, -256",
        "and %r6, 0x7ff0",
        "or %r6, -2",
        "or %r6, 0x11000",
        "xor %r6, -1",
        "xor %r6, 0x55",
        "mov %r6, -1",
        "mov %r6, 0x7fffffff",
        "neg %r6",
        "lddw %r6, 0x123456789abcdef0",
    ] {
        diff(&alu_prog(body), &pk());
    }
}

#[test]
fn alu32_ops_and_zero_extension() {
    for body in [
        "add32 %r6, %r7",
        "sub32 %r6, %r7",
        "and32 %r6, %r7",
        "or32 %r6, 0x10000",
        "xor32 %r6, -1",
        "mov32 %r6, %r7",
        "mov32 %r6, -3",
        "add32 %r6, -3",
        "neg32 %r6",
        "lsh32 %r6, 5",
        "rsh32 %r6, 31",
        "arsh32 %r6, 4",
        "mov %r8, 35\nlsh32 %r6, %r8",
        "mov %r8, 7\nrsh32 %r6, %r8",
        "mov %r8, 9\narsh32 %r6, %r8",
        // A 32-bit result read as 64 bits: the zext must be kept.
        "add32 %r6, 1\nadd %r6, %r7",
    ] {
        diff(&alu_prog(body), &pk());
    }
}

#[test]
fn alu64_shifts_constant_and_register() {
    for k in [0, 1, 8, 31, 32, 33, 63] {
        for op in ["lsh", "rsh", "arsh"] {
            diff(&alu_prog(&format!("{op} %r6, {k}")), &pk());
            diff(&alu_prog(&format!("mov %r8, {k}\n{op} %r6, %r8")), &pk());
        }
    }
}

#[test]
fn multiply_and_divide() {
    for body in [
        // 16x16: both operands proven <= 0xffff.
        "and %r6, 0xffff\nand %r7, 0xfff\nmul %r6, %r7",
        "and %r6, 0xffff\nmul %r6, 1000",
        // 32x32 with a 64-bit product.
        "mov32 %r6, %r6\nmov32 %r7, %r7\nmul %r6, %r7",
        "mul32 %r6, %r7",
        "mul32 %r6, 0x12345",
        "mov32 %r6, %r6\ndiv %r6, 7",
        "mov32 %r6, %r6\ndiv %r6, 16",
        "mov32 %r6, %r6\ndiv %r6, 1",
        "div32 %r6, 1000",
        "div32 %r6, 3",
        "mov %r8, 10\ndiv32 %r6, %r8",
        "mov32 %r6, %r6\nmov %r8, 0x7fffffff\ndiv %r6, %r8",
    ] {
        diff(&alu_prog(body), &pk());
    }
}

#[test]
fn byte_order() {
    for body in ["be16 %r6", "be32 %r6", "be64 %r6"] {
        diff(&alu_prog(body), &pk());
    }
    for body in ["le16 %r6", "le32 %r6", "le64 %r6"] {
        diff_loose(&alu_prog(body), &pk());
    }
}

#[test]
fn conditional_jumps_64_and_32() {
    let conds = [
        "jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset",
    ];
    for c in conds {
        for w in ["", "32"] {
            for rhs in ["%r7", "5", "-3", "0x12345", "0"] {
                let body = format!("{c}{w} %r6, {rhs}, yes\nmov %r6, 1\nja out\nyes:\nmov %r6, 2");
                diff(&alu_prog(&body), &pk());
            }
        }
    }
    // Equal registers, and high words that differ while the low words agree.
    diff(
        &alu_prog("mov %r7, %r6\njeq %r6, %r7, yes\nmov %r6, 1\nja out\nyes:\nmov %r6, 2"),
        &pk(),
    );
    diff(
        &alu_prog(
            "mov %r7, %r6\nlddw %r8, 0x100000000\nadd %r7, %r8\njgt %r7, %r6, yes\nmov %r6, 1\nja out\nyes:\nmov %r6, 2",
        ),
        &pk(),
    );
}

#[test]
fn stack_all_sizes_and_windows() {
    for (sz, off) in [
        ("b", -1),
        ("h", -2),
        ("w", -4),
        ("dw", -8),
        ("b", -61),
        ("dw", -64),
        ("w", -68),
        ("dw", -200),
        ("h", -512),
        ("b", -300),
    ] {
        let body = format!("stx{sz} [%r10{off}], %r6\nmov %r6, 0\nldx{sz} %r6, [%r10{off}]");
        diff(&alu_prog(&body), &pk());
        let body = format!("st{sz} [%r10{off}], -77\nldx{sz} %r6, [%r10{off}]");
        diff_loose(&alu_prog(&body), &pk());
    }
    // Through a derived pointer (the verifier requires aligned stack accesses).
    for (sz, off) in [("h", -6), ("w", -12), ("dw", -24), ("b", -3)] {
        let body = format!(
            "stxdw [%r10-16], %r7\nstxdw [%r10-8], %r7\nmov %r9, %r10\nadd %r9, -32\nstx{sz} [%r9+{}], %r6\nldx{sz} %r6, [%r10{off}]",
            off + 32
        );
        diff(&alu_prog(&body), &pk());
    }
}

#[test]
fn packet_loads_stores_and_cache() {
    let body = "ldxb %r6, [%r2+1]\nldxh %r7, [%r2+3]\nadd %r6, %r7\nldxw %r7, [%r2+6]\nadd %r6, %r7\nldxdw %r7, [%r2+9]\nadd %r6, %r7";
    let c = diff(&alu_prog(body), &pk());
    assert!(c.optimisations.pkt_cache_hits >= 3, "{:?}", c.optimisations);
    for sz in ["b", "h", "w", "dw"] {
        diff(
            &alu_prog(&format!("stx{sz} [%r2+5], %r7\nldxdw %r6, [%r2+3]")),
            &pk(),
        );
    }
    diff(
        &alu_prog("stw [%r2+2], -9\nsth [%r2+9], 0x1234\nldxdw %r6, [%r2+0]"),
        &pk(),
    );
}

#[test]
fn load_then_mask_folds() {
    for body in [
        "ldxw %r6, [%r2+2]\nand %r6, 0xffff",
        "ldxb %r6, [%r2+2]\nand %r6, 0xff",
        "ldxh %r6, [%r2+2]\nand32 %r6, 0xff00",
        "stxw [%r10-4], %r7\nldxw %r6, [%r10-4]\nand %r6, 0xff00ff",
    ] {
        let c = diff(&alu_prog(body), &pk());
        assert_eq!(c.optimisations.ld_mask_fold, 1, "{body}");
    }
}

#[test]
fn ctx_fields_xdp_and_tc() {
    diff(
        &xdp("ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r0, %r3\nsub %r0, %r2\nexit"),
        &pk(),
    );
    diff_loose(
        &xdp(
            "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r0, %r3\nsub %r0, %r2\nldxw %r4, [%r1+8]\nsub %r2, %r4\nadd %r0, %r2\nexit",
        ),
        &pk(),
    );
    let tc = program(
        "ldxw %r0, [%r1+0]\nldxw %r2, [%r1+76]\nldxw %r3, [%r1+80]\nsub %r3, %r2\nadd %r0, %r3\nmov %r0, 2\nexit",
        ProgType::SchedCls,
        vec![],
    );
    diff(&tc, &pk());
}

#[test]
fn ld_abs_and_ind() {
    let src = "mov %r6, %r1\nldabsb 3\nmov %r8, %r0\nldabsh 10\nadd %r8, %r0\nldabsw 20\nadd %r8, %r0\nmov %r7, 5\nldindh %r7, 7\nadd %r8, %r0\nmov %r0, %r8\nand %r0, 7\nexit";
    let tc = program(src, ProgType::SchedCls, vec![]);
    diff_loose(&tc, &pk());
    // Out of bounds: the program returns 0.
    let oob = program(
        "mov %r6, %r1\nldabsw 62\nmov %r0, 2\nexit",
        ProgType::SchedCls,
        vec![],
    );
    diff_loose(&oob, &pk());
}

#[test]
fn map_lookup_value_load_and_atomic_add() {
    let src = "ldxw %r2, [%r1+0]\nmov %r1, 2\nstxw [%r10-4], %r1\nlddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\ncall 1\n\
               jeq %r0, 0, out\nmov %r1, 5\nlock add [%r0+0], %r1\nmov %r1, 3\nlock add32 [%r0+4], %r1\n\
               ldxdw %r6, [%r0+0]\nldxh %r7, [%r0+1]\nadd %r6, %r7\nmov %r0, %r6\nand %r0, 3\nexit\nout:\nmov %r0, 1\nexit";
    // The NFP driver refuses reading words it also adds to atomically; the lowering copes.
    diff_loose(&xdp(src), &pk());
    let read_only = "mov %r1, 1\nstxw [%r10-4], %r1\nlddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\ncall 1\n\
                     jeq %r0, 0, out\nldxdw %r6, [%r0+0]\nldxb %r7, [%r0+5]\nadd %r6, %r7\nmov %r0, %r6\nexit\nout:\nmov %r0, 1\nexit";
    diff(&xdp(read_only), &pk());
    let atomic_only = "mov %r1, 1\nstxw [%r10-4], %r1\nlddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\ncall 1\n\
                       jeq %r0, 0, out\nmov %r1, 0x12345\nlock add32 [%r0+4], %r1\nlock add [%r0+0], %r1\nout:\nmov %r0, 2\nexit";
    diff(&xdp(atomic_only), &[packet(), packet(), packet()]);
}

#[test]
fn bpf_to_bpf_calls_preserve_callee_saved_registers() {
    let src = "mov %r6, 11\nmov %r7, 22\nmov %r8, 33\nmov %r9, 44\nmov %r1, 5\nstxw [%r10-4], %r1\nmov %r1, 7\ncall local f\n\
               add %r0, %r6\nadd %r0, %r7\nadd %r0, %r8\nadd %r0, %r9\nldxw %r1, [%r10-4]\nadd %r0, %r1\nexit\n\
               f:\nmov %r6, 1\nmov %r7, 2\nmov %r8, 3\nmov %r9, 4\nmov %r2, 100\nstxw [%r10-8], %r2\nmov %r0, %r1\ncall local g\n\
               ldxw %r1, [%r10-8]\nadd %r0, %r1\nadd %r0, %r6\nexit\n\
               g:\nmov %r6, 1000\nmov %r0, 0\nadd %r0, %r1\nexit";
    diff(&xdp(src), &pk());
}

#[test]
fn stack_pointer_passed_to_a_callee() {
    // The callee writes and reads the caller's frame through a pointer argument.
    let src = "mov %r1, 9\nstxdw [%r10-16], %r1\nmov %r1, %r10\nadd %r1, -16\ncall local f\nldxdw %r0, [%r10-16]\nexit\n\
               f:\nmov %r2, 0\nstxdw [%r10-8], %r2\nldxdw %r0, [%r1+0]\nadd %r0, 5\nstxdw [%r1+0], %r0\nldxw %r3, [%r1+0]\nadd %r0, %r3\nexit";
    diff(&xdp(src), &pk());
}

#[test]
fn stack_pointer_with_path_dependent_offset() {
    // r2 points at r10-8 or r10-16 depending on the packet: same alignment, different slots.
    let src = "mov %r1, 5\nstxdw [%r10-8], %r1\nmov %r1, 9\nstxdw [%r10-16], %r1\n\
               ldxw %r3, [%r1+0]\nldxw %r4, [%r1+4]\nsub %r4, %r3\nmov %r2, %r10\nadd %r2, -8\n\
               jgt %r4, 60, +1\nadd %r2, -8\nldxdw %r0, [%r2+0]\nmov %r5, 3\nstxw [%r2+4], %r5\nldxdw %r6, [%r2+0]\nadd %r0, %r6\nexit";
    let src = src.replace(
        "ldxw %r3, [%r1+0]\nldxw %r4, [%r1+4]",
        "ldxw %r3, [%r7+0]\nldxw %r4, [%r7+4]",
    );
    let src = format!("mov %r7, %r1\n{src}");
    let mut short = packet();
    short.truncate(40);
    diff(&xdp(&src), &[packet(), short]);
}

#[test]
fn firmware_helpers_random_update_delete_adjust() {
    let hash = MapDef {
        name: "h".into(),
        map_type: MapType::Hash,
        key_size: 4,
        value_size: 8,
        max_entries: 8,
        flags: 0,
        initial_value: None,
    };
    let src = "mov %r6, %r1\ncall 7\nmov %r7, %r0\nmov %r1, 3\nstxw [%r10-4], %r1\nstxdw [%r10-16], %r7\n\
               lddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 0\ncall 2\n\
               mov %r1, 4\nstxw [%r10-4], %r1\nlddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 0\ncall 2\n\
               lddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\ncall 3\n\
               mov %r1, %r6\nmov %r2, 4\ncall 44\nmov %r1, %r6\nmov %r2, -6\ncall 65\n\
               ldxw %r2, [%r6+0]\nldxw %r3, [%r6+4]\nmov %r0, %r3\nsub %r0, %r2\nadd %r0, %r7\nexit";
    let p = program(src, ProgType::Xdp, vec![hash]);
    diff(&p, &pk());
}

#[test]
fn demo_program_matches_interpreter() {
    let p = vm_core::demo::udp_filter();
    let packets: Vec<Vec<u8>> = vm_core::demo::packets()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let c = diff(&p, &packets);
    assert!(c.zext_elided + c.zext_kept > 0);
    eprintln!(
        "demo: ebpf {} nfp {} zext elided {} kept {} cycles {:?} opts {:?}",
        c.ebpf_insns, c.nfp_insns, c.zext_elided, c.zext_kept, c.estimated_cycles, c.optimisations
    );
}

#[test]
#[ignore]
fn show_demo_listing() {
    let p = vm_core::demo::udp_filter();
    let c = crate::compile::compile(&p, &NicLimits::default()).unwrap_or_else(|e| panic!("{e}"));
    for (pc, r) in c.map.iter().enumerate() {
        eprintln!("ebpf {pc}: {:?}", p.insns[pc]);
        for i in r.clone() {
            eprintln!("      {i:4}: {:?}", c.code[i]);
        }
    }
}
