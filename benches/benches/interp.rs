//! Interpreter speed: ours against the rbpf 0.4 interpreter and JIT and the kernel's JIT
//! (`BPF_PROG_TEST_RUN` with `repeat`, timed by the kernel itself), in the same run, on the
//! ratio table's workloads. Throughput is in executed eBPF instructions, so criterion's
//! `elem/s` is instructions per second (its inverse is ns per instruction). Every figure is
//! per run, including the per-run setup (context, stack, budget).
//!
//! `vm-core` is `Vm::run_retval`, which returns r0 like rbpf's `execute_program` (no outcome
//! copied out); `vm-core-run_into` adds what a full `RunOutcome` costs with reused buffers (the
//! packet copied out); `Vm::run` additionally allocates a fresh outcome per call.
//!
//! The kernel figures need `bpf()` (root); without it they are skipped with a loud notice.
//! The XDP workloads (the demo parser over `xdp_md` and the kernel's `xdp1` sample from the
//! corpus) have no rbpf peer: rbpf has neither the context rewriting nor the map helpers.

use std::hint::black_box;
use std::time::Duration;

use benches::kernel::{KernelError, KernelRun};
use benches::{Workload, sum_loop, udp_parser, udp_parser_xdp};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use vm_core::Program;
use vm_core::interp::{RunOutcome, Vm, VmConfig};

/// The kernel's JIT on `loaded`, timed by the kernel: criterion's `iters` become the test
/// run's `repeat` and the kernel's mean duration per run is scaled back up.
fn bench_kernel(
    group: &mut BenchmarkGroup<'_, WallTime>,
    what: &str,
    retval: u64,
    loaded: Result<KernelRun, KernelError>,
) {
    let checked = loaded.and_then(|k| {
        let r = k.retval()?;
        if u64::from(r) == retval & 0xffff_ffff {
            Ok(k)
        } else {
            Err(KernelError::Run {
                what: what.into(),
                reason: format!("returned {r:#x}, ours {retval:#x}"),
            })
        }
    });
    match checked {
        Ok(k) => {
            group.bench_function("kernel-jit", |b| {
                b.iter_custom(|iters| {
                    let mut total = 0.0;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(u64::from(u32::MAX));
                        let ns = k.mean_ns(n as u32).expect("the kernel ran it before");
                        total += ns * n as f64;
                        left -= n;
                    }
                    Duration::from_secs_f64(total / 1e9)
                })
            });
        }
        Err(KernelError::Refused { reason, .. }) => {
            println!("{what}: no kernel figure, its verifier refuses this form: {reason}");
        }
        Err(e) => {
            benches::kernel::skip(&format!("interp {what}"), &e);
        }
    }
}

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
    bench_kernel(&mut group, w.name, ours.retval, KernelRun::mem(w));
    // rbpf executes one more instruction (`mov r2, LEN`); the difference is under 0.1% on the
    // loop and is stated next to the parser figures in the README.
    group.throughput(Throughput::Elements(ours.insns + 1));
    group.bench_function("rbpf-interp", |b| {
        b.iter(|| black_box(rbpf_vm.execute_program(black_box(&mem), &[]).ok()))
    });
    #[cfg(target_arch = "x86_64")]
    {
        let mut jit = rbpf::EbpfVmRaw::new(Some(&rbpf_bytes)).expect("rbpf accepts the workload");
        jit.jit_compile().expect("rbpf JIT compiles the workload");
        let mut jit_mem = w.input.clone();
        // SAFETY: the JIT does not check memory accesses; the program ran to completion in
        // both interpreters (ours bounds-checks every access) on this input, returning the
        // same value, so its accesses stay inside `jit_mem`.
        let r = unsafe { jit.execute_program_jit(&mut jit_mem) }.expect("rbpf JIT runs");
        assert_eq!(r, ours.retval, "rbpf's JIT disagrees on {}", w.name);
        group.bench_function("rbpf-jit", |b| {
            // SAFETY: as above; the workloads never store to memory.
            b.iter(|| black_box(unsafe { jit.execute_program_jit(black_box(&mut jit_mem)) }.ok()))
        });
    }
    group.finish();
}

/// A packet program over its real context: ours and the kernel's JIT.
fn bench_xdp(c: &mut Criterion, name: &str, object: &str, program: &Program, input: &[u8]) {
    let mut vm = Vm::new(program, VmConfig::default()).expect("workload loads");
    let ours = vm.run(input).expect("workload runs");
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(ours.insns));
    group.bench_function("vm-core", |b| {
        b.iter(|| black_box(vm.run_retval(black_box(input)).ok()))
    });
    bench_kernel(
        &mut group,
        name,
        ours.retval,
        KernelRun::program(object, program, input),
    );
    group.finish();
}

fn interp(c: &mut Criterion) {
    bench_workload(c, &sum_loop(10_000));
    bench_workload(c, &udp_parser());
    let (demo, packet) = udp_parser_xdp();
    bench_xdp(c, "udp_parser_xdp", "", &demo, &packet);
    let (corpus, packet) = benches::corpus::xdp_interp().expect("corpus readable");
    bench_xdp(c, "xdp1_kern", &corpus.object, &corpus.program, &packet);
}

criterion_group!(benches, interp);
criterion_main!(benches);
