//! Interpreter speed: ours against the rbpf 0.4 interpreter, in the same run.
//! Throughput is in executed eBPF instructions, so criterion's `elem/s` is instructions per second
//! (its inverse is ns per instruction). Every figure is per run, including the per-run setup
//! (context, stack, budget).
//!
//! `vm-core` is `Vm::run_retval`, which returns r0 like rbpf's `execute_program` (no outcome
//! copied out); `vm-core-run_into` adds what a full `RunOutcome` costs with reused buffers (the
//! packet copied out); `Vm::run` additionally allocates a fresh outcome per call.

use std::hint::black_box;

use benches::{Workload, sum_loop, udp_parser, udp_parser_xdp};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vm_core::interp::{RunOutcome, Vm, VmConfig};

fn bench_workload(c: &mut Criterion, w: &Workload) {
    let program = w.program();
    let mut vm = Vm::new(&program, VmConfig::default()).expect("workload loads");
    let input = w.input.clone();
    let ours = vm.run(&input).expect("workload runs");
    let rbpf_bytes = w.rbpf_bytes();
    // EbpfVmMbuff with an empty metadata buffer gives r1 = mem, and borrows `mem` per call only.
    let rbpf_vm = rbpf::EbpfVmMbuff::new(Some(&rbpf_bytes)).expect("rbpf accepts the workload");
    let mem = w.input.clone();
    let theirs = rbpf_vm
        .execute_program(&mem, &[])
        .expect("rbpf runs the workload");
    assert_eq!(ours.retval, theirs, "engines disagree on {}", w.name);

    let mut group = c.benchmark_group(w.name);
    group.throughput(Throughput::Elements(ours.insns));
    group.bench_function("vm-core", |b| {
        b.iter(|| black_box(vm.run_retval(black_box(&input)).ok()))
    });
    let mut out = RunOutcome::default();
    group.bench_function("vm-core-run_into", |b| {
        b.iter(|| black_box(vm.run_into(black_box(&input), &mut out).is_ok()))
    });
    // rbpf executes one more instruction (`mov r2, LEN`); the difference is under 0.1% on the
    // loop and is stated next to the parser figures in the README.
    group.throughput(Throughput::Elements(ours.insns + 1));
    group.bench_function("rbpf-interp", |b| {
        b.iter(|| black_box(rbpf_vm.execute_program(black_box(&mem), &[]).ok()))
    });
    group.finish();
}

/// The parser as an XDP program over the context (rbpf cannot run it: its `xdp_md` loads
/// need the kernel's context rewriting).
fn bench_xdp(c: &mut Criterion) {
    let (program, input) = udp_parser_xdp();
    let mut vm = Vm::new(&program, VmConfig::default()).expect("workload loads");
    let ours = vm.run(&input).expect("workload runs");
    let mut group = c.benchmark_group("udp_parser_xdp");
    group.throughput(Throughput::Elements(ours.insns));
    group.bench_function("vm-core", |b| {
        b.iter(|| black_box(vm.run_retval(black_box(&input)).ok()))
    });
    group.finish();
}

fn interp(c: &mut Criterion) {
    bench_workload(c, &sum_loop(10_000));
    bench_workload(c, &udp_parser());
    bench_xdp(c);
}

criterion_group!(benches, interp);
criterion_main!(benches);
