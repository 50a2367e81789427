//! Verifier speed on real programs: corpus programs the Linux 6.18 kernel accepts (from
//! hw-tests' verdict table), verified by ours. Throughput is in processed instructions (the
//! verifier's own count of instructions walked over all paths), so criterion's `elem/s` is
//! processed instructions per second. Before the measurements, one pass prints each
//! program's time next to the kernel's own `verification time` recorded in the table (log
//! level 5, a single load, so noisy).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use verifier::{VerifyOptions, verify};
use vm_core::{ProgType, Program};

const TSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../hw-tests/fixtures/kernel_verdicts.linux-6.18.tsv"
);

/// How many programs: the largest by kernel-processed instructions, then a spread.
const PROGRAMS: usize = 8;

struct Case {
    name: String,
    program: Program,
    kernel_processed: u64,
    kernel_us: u64,
}

fn cases() -> Vec<Case> {
    let tsv = std::fs::read_to_string(TSV).expect("the verdict table exists");
    let mut rows: Vec<Vec<&str>> = tsv
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| {
            f.len() >= 11
                && f[6] == "accepted"
                && matches!(f[3], "xdp" | "sched_cls" | "socket_filter")
        })
        .collect();
    rows.sort_by_key(|f| std::cmp::Reverse(f[9].parse::<u64>().unwrap_or(0)));
    // The heaviest two, then every (n/PROGRAMS)-th for a spread of sizes.
    let step = (rows.len() / PROGRAMS).max(1);
    let picked: Vec<&Vec<&str>> = rows
        .iter()
        .take(2)
        .chain(rows.iter().skip(2).step_by(step))
        .take(PROGRAMS)
        .collect();
    let mut out = Vec::new();
    for f in picked {
        let path = vm_core::corpus::require(f[0]);
        let bytes = std::fs::read(&path).expect("corpus object readable");
        let (obj, _) = vm_core::elf::load_object_lenient(&bytes).expect("corpus object loads");
        let Some(p) = obj
            .programs
            .iter()
            .find(|p| p.name == f[2] && p.section.as_deref() == Some(f[1]))
        else {
            continue;
        };
        let mut program = p.clone();
        program.prog_type = match f[3] {
            "xdp" => ProgType::Xdp,
            "socket_filter" => ProgType::SocketFilter,
            _ => ProgType::SchedCls,
        };
        out.push(Case {
            name: format!("{}:{}", f[0].rsplit('/').next().unwrap_or(f[0]), f[2]),
            program,
            kernel_processed: f[9].parse().unwrap_or(0),
            kernel_us: f[10].parse().unwrap_or(0),
        });
    }
    out
}

fn verify_corpus(c: &mut Criterion) {
    let opts = VerifyOptions::default();
    let cases = cases();
    let (mut ours_total, mut kernel_total, mut processed_total) = (0.0, 0u64, 0u64);
    for case in &cases {
        let t = Instant::now();
        let v = verify(&case.program, &opts).expect("the kernel accepts it, so do we");
        let us = t.elapsed().as_secs_f64() * 1e6;
        ours_total += us;
        kernel_total += case.kernel_us;
        processed_total += v.processed_insns;
        println!(
            "{:<60} ours {:>9.0} us {:>8} insns ({:.3} us/insn) | kernel {:>8} us {:>8} insns",
            case.name,
            us,
            v.processed_insns,
            us / v.processed_insns.max(1) as f64,
            case.kernel_us,
            case.kernel_processed
        );
    }
    println!(
        "total: ours {ours_total:.0} us for {processed_total} processed insns ({:.3} us/insn); kernel {kernel_total} us (log level 5)",
        ours_total / processed_total.max(1) as f64
    );
    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    for case in &cases {
        let processed = verify(&case.program, &opts).map_or(1, |v| v.processed_insns);
        group.throughput(Throughput::Elements(processed));
        group.bench_function(&case.name, |b| {
            b.iter(|| black_box(verify(black_box(&case.program), &opts).is_ok()))
        });
    }
    group.finish();
}

criterion_group!(benches, verify_corpus);
criterion_main!(benches);
