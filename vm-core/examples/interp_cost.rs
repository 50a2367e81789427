//! Host cost of the interpreter on the issue-#2 workloads, for callgrind / perf and a quick
//! wall-clock check (criterion's figures come from the benches crate).
//!
//! `cargo run --release -p vm-core --example interp_cost -- WORKLOAD RUNS [time]`
//! WORKLOAD: `sum_loop` (10,000 iterations, `mem`), `udp_parser` (the benches' `mem` parser,
//! `vm_core::demo::udp_parser_mem`), `udp_parser_xdp` (the demo over `xdp_md`, one map lookup
//! and an atomic add), `xdp1_kern` (the corpus' `xdp1` sample). Without `time` it runs `RUNS` runs and prints the
//! executed eBPF instructions per run, so that the difference of two callgrind totals over the
//! difference of their `RUNS` is the host cost of one run, free of process start-up. With
//! `time` it reports ns per run and per eBPF instruction (best of 7 batches).

use std::hint::black_box;
use std::time::Instant;

use vm_core::interp::{Vm, VmConfig};
use vm_core::{ProgType, Program, isa};

fn mem_program(name: &str, asm: &str) -> Program {
    let raw = vm_core::asm::assemble(asm).expect("workload assembles");
    Program {
        name: name.into(),
        section: None,
        prog_type: ProgType::Mem,
        insns: isa::decode_program(&raw).expect("workload decodes"),
        maps: Vec::new(),
    }
}

fn blocked_packet() -> Vec<u8> {
    vm_core::demo::packets()
        .into_iter()
        .find(|(name, _)| name.contains("blocked"))
        .map(|(_, p)| p)
        .expect("demo has a blocked packet")
}

fn workload(name: &str) -> (Program, Vec<u8>) {
    match name {
        "sum_loop" => (
            mem_program(
                name,
                "mov %r0, 0\nmov %r1, 0\nloop:\nadd %r0, %r1\nadd %r1, 1\njlt %r1, 10000, loop\nexit\n",
            ),
            Vec::new(),
        ),
        "udp_parser" => (vm_core::demo::udp_parser_mem(), blocked_packet()),
        "udp_parser_xdp" => (vm_core::demo::udp_filter(), blocked_packet()),
        "xdp1_kern" => {
            let path = vm_core::corpus::require("ebpf-samples/linux/xdp1_kern.o");
            let bytes = std::fs::read(&path).expect("corpus object readable");
            let obj = vm_core::elf::load_object(&bytes).expect("xdp1_kern loads");
            let mut p = obj.program("xdp_prog1").expect("xdp_prog1 present").clone();
            p.prog_type = ProgType::Xdp;
            (p, blocked_packet())
        }
        other => panic!("unknown workload {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("sum_loop", String::as_str);
    let runs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let time = args.get(2).is_some_and(|s| s == "time");
    let (program, input) = workload(name);
    let mut vm = Vm::new(&program, VmConfig::default()).expect("workload loads");
    let first = vm.run(&input).expect("workload runs");
    let insns = first.insns;
    if !time {
        let mut acc = 0u64;
        for _ in 0..runs {
            acc = acc.wrapping_add(vm.run_retval(black_box(&input)).unwrap_or(0));
        }
        println!(
            "{name}: {runs} runs, {insns} insns/run, r0 {:#x}, acc {acc}",
            first.retval
        );
        return;
    }
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..runs {
            black_box(vm.run_retval(black_box(&input)).ok());
        }
        best = best.min(t.elapsed().as_nanos() as f64 / runs as f64);
    }
    println!(
        "{name}: {insns} insns/run, {best:.1} ns/run, {:.3} ns/insn",
        best / insns as f64
    );
}
