//! Workloads shared by the criterion benches: each is one program in bpf_conformance assembly
//! plus its input, runnable unchanged by our interpreter (`mem` convention: r1 = buffer,
//! r2 = length) and by the rbpf crate (which leaves r2 at 0, so its copy starts with one extra
//! `mov r2, LEN`; the executed-instruction count of each engine is measured separately).

use vm_core::{ProgType, Program, RawInsn, isa};

/// A benchmark program and its input.
pub struct Workload {
    /// Short name used in bench ids.
    pub name: &'static str,
    /// Assembly source.
    pub asm: String,
    /// Input buffer.
    pub input: Vec<u8>,
}

impl Workload {
    /// Raw slots of the program.
    pub fn raw(&self) -> Vec<RawInsn> {
        vm_core::asm::assemble(&self.asm).expect("bench workload assembles")
    }

    /// Our program (type `mem`).
    pub fn program(&self) -> Program {
        let raw = self.raw();
        Program {
            name: self.name.into(),
            section: None,
            prog_type: ProgType::Mem,
            insns: isa::decode_program(&raw).expect("bench workload decodes"),
            maps: Vec::new(),
        }
    }

    /// Bytes for rbpf: `mov r2, LEN` followed by the program.
    pub fn rbpf_bytes(&self) -> Vec<u8> {
        let mut raw = vec![RawInsn::new(0xb7, 2, 0, 0, self.input.len() as i32)];
        raw.extend(self.raw());
        RawInsn::slice_to_bytes(&raw)
    }
}

/// `r0 += r1; r1 += 1; if r1 < n goto loop`: pure dispatch speed.
pub fn sum_loop(n: u32) -> Workload {
    Workload {
        name: "sum_loop",
        asm: format!(
            "mov %r0, 0\nmov %r1, 0\nloop:\nadd %r0, %r1\nadd %r1, 1\njlt %r1, {n}, loop\nexit\n"
        ),
        input: Vec::new(),
    }
}

/// Ethernet / IPv4 / UDP parser that drops UDP to one port (the demo's parser without its map).
pub fn udp_parser() -> Workload {
    let asm = "\
mov %r3, %r1
add %r3, %r2
mov %r0, 2
mov %r4, %r1
add %r4, 34
jgt %r4, %r3, out
ldxh %r5, [%r1+12]
jne %r5, 0x0008, out
ldxb %r5, [%r1+23]
jne %r5, 17, out
ldxb %r5, [%r1+14]
and %r5, 0xf
lsh %r5, 2
jlt %r5, 20, out
mov %r4, %r1
add %r4, %r5
add %r4, 14
mov %r6, %r4
add %r6, 8
jgt %r6, %r3, out
ldxh %r5, [%r4+2]
be16 %r5
jne %r5, 7777, out
mov %r0, 1
out:
exit
"
    .to_string();
    let packet = vm_core::demo::packets()
        .into_iter()
        .find(|(name, _)| name.contains("blocked"))
        .map(|(_, p)| p)
        .unwrap_or_default();
    Workload {
        name: "udp_parser",
        asm,
        input: packet,
    }
}

/// The demo XDP program (the same parser over `xdp_md`, plus a verdict counter in an array
/// map: a helper call and an atomic add per run) and the packet it drops.
pub fn udp_parser_xdp() -> (Program, Vec<u8>) {
    let packet = vm_core::demo::packets()
        .into_iter()
        .find(|(name, _)| name.contains("blocked"))
        .map(|(_, p)| p)
        .unwrap_or_default();
    (vm_core::demo::udp_filter(), packet)
}
