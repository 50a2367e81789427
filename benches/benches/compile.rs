//! Offload compiler speed: the demo filter and the largest offloadable XDP/tc programs of
//! ebpf-samples, compiled for the default NIC. Throughput is in eBPF instruction slots, so
//! criterion's `elem/s` is eBPF instructions compiled per second. The offloadable corpus
//! programs are small (tens of instructions), so the largest program the lowering translates
//! once the NIC's instruction and stack limits are lifted is added to the `lower_verified`
//! and `verify` groups, for a per-instruction rate less dominated by fixed costs.
//!
//! Why four groups: `compile` is one verifier walk with the NFP feasibility hooks
//! (`feasibility`, which also records the lowering's facts) plus the lowering;
//! `lower_verified` verifies again on its own, so the lowering proper is about
//! `lower_verified` minus `verify` (the plain verifier).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nfp_backend::NicLimits;
use nfp_backend::compile::{compile, lower_verified};
use nfp_backend::feasibility;
use nfp_backend::lower::LowerOptions;
use verifier::{VerifyOptions, verify};
use vm_core::Program;

/// Corpus programs benchmarked besides the demo: the largest offloadable ones.
const CORPUS_PROGRAMS: usize = 3;

struct Case {
    name: String,
    program: Program,
    /// Only the lowering translates it (with the NIC's instruction and stack limits
    /// lifted): benchmarked in `lower_verified` and `verify` only.
    lowering_only: bool,
}

/// The default NIC with the instruction-store and stack limits lifted.
fn unlimited() -> NicLimits {
    NicLimits {
        max_insns: usize::MAX,
        stack_bytes: u32::MAX,
        ..NicLimits::default()
    }
}

/// The demo, then the `CORPUS_PROGRAMS` largest offloadable XDP/tc programs of ebpf-samples
/// (the same rule as the ratio table's compile rows, `benches::corpus::largest_offloadable`),
/// then the largest program only the lowering (no NIC limits) translates, if larger.
fn cases(nic: &NicLimits) -> Vec<Case> {
    let mut out = vec![Case {
        name: "demo:udp_filter".into(),
        program: vm_core::demo::udp_filter(),
        lowering_only: false,
    }];
    let candidates = benches::corpus::sample_packet_programs();
    let found = benches::corpus::largest_offloadable(&candidates, nic, CORPUS_PROGRAMS);
    let largest = found.first().map_or(0, |c| c.program.insns.len());
    let loose = unlimited();
    let mut bigger: Vec<_> = candidates
        .iter()
        .filter(|c| c.program.insns.len() > largest)
        .collect();
    bigger.sort_by_key(|c| std::cmp::Reverse(c.program.insns.len()));
    let lowered = bigger.into_iter().find(|c| {
        compile(&c.program, nic).is_err()
            && lower_verified(&c.program, &loose, &LowerOptions::default()).is_ok()
    });
    out.extend(found.into_iter().map(|c| Case {
        name: c.label,
        program: c.program,
        lowering_only: false,
    }));
    out.extend(lowered.map(|c| Case {
        name: format!("{} (lowering only)", c.label),
        program: c.program.clone(),
        lowering_only: true,
    }));
    out
}

/// One benchmarked stage: runs it on a program, returns whether it succeeded.
type Stage<'a> = dyn Fn(&Program) -> bool + 'a;

fn compile_speed(c: &mut Criterion) {
    let nic = NicLimits::default();
    let opts = LowerOptions::default();
    let quiet = VerifyOptions {
        log_level: 0,
        ..VerifyOptions::default()
    };
    let loose = unlimited();
    let cases = cases(&nic);
    // One timed pass first: a readable split per program next to criterion's figures.
    for case in cases.iter().filter(|c| !c.lowering_only) {
        let n = case.program.insns.len();
        let time = |f: &dyn Fn() -> bool| {
            let t = Instant::now();
            let mut runs = 0u32;
            while t.elapsed().as_millis() < 200 || runs < 3 {
                black_box(f());
                runs += 1;
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(runs)
        };
        let full = time(&|| compile(black_box(&case.program), &nic).is_ok());
        let feas = time(&|| feasibility::check(black_box(&case.program), &nic).offloadable());
        let lower = time(&|| lower_verified(black_box(&case.program), &nic, &opts).is_ok());
        let plain = time(&|| verify(black_box(&case.program), &quiet).is_ok());
        let nfp = compile(&case.program, &nic).map_or(0, |c| c.nfp_insns);
        println!(
            "{:<48} {n:>5} eBPF -> {nfp:>5} NFP | compile {full:>8.1} us ({:.2} M eBPF insns/s) = feasibility {feas:>8.1} + lower_verified {lower:>8.1} (verify {plain:>8.1} + lowering ~{:>7.1})",
            case.name,
            n as f64 / full,
            lower - plain
        );
    }
    let groups: [(&str, bool, &Stage); 4] = [
        ("compile", false, &|p| compile(p, &nic).is_ok()),
        ("feasibility", false, &|p| {
            feasibility::check(p, &nic).offloadable()
        }),
        ("lower_verified", true, &|p| {
            lower_verified(p, &loose, &opts).is_ok()
        }),
        ("verify", true, &|p| verify(p, &quiet).is_ok()),
    ];
    for (group_name, all, f) in groups {
        let mut group = c.benchmark_group(group_name);
        group.sample_size(10);
        for case in cases.iter().filter(|c| all || !c.lowering_only) {
            group.throughput(Throughput::Elements(case.program.insns.len() as u64));
            group.bench_function(&case.name, |b| {
                b.iter(|| black_box(f(black_box(&case.program))))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, compile_speed);
criterion_main!(benches);
