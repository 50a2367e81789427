//! Verifier speed on real programs: the ratio table's verification set (corpus programs the
//! kernel accepts: small, medium, largest, heaviest; `benches::corpus::verify_set`), verified
//! by ours and by the running kernel. Ours is timed by criterion with throughput in
//! processed instructions (the verifier's own count over all paths), so `elem/s` is
//! processed instructions per second. The kernel's figure is its own `verification time`
//! (log level 4, µs resolution, half a µs added per load for the truncation), one
//! `BPF_PROG_LOAD` per iteration, in flat sampling (its heaviest program takes over a
//! second per load). Without `bpf()` the kernel figures are skipped with a loud notice.

use std::hint::black_box;
use std::time::Duration;

use benches::kernel::KernelVerifier;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use verifier::{VerifyOptions, verify};

fn verify_corpus(c: &mut Criterion) {
    let quiet = VerifyOptions {
        log_level: 0,
        ..VerifyOptions::default()
    };
    let (set, notes) = benches::corpus::verify_set().expect("verdict table and corpus readable");
    for n in notes {
        println!("{n}");
    }
    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    for (class, p) in &set {
        let name = format!("ours/{}-{}", class.as_str(), p.label);
        let processed = verify(&p.program, &quiet).map_or(1, |v| v.processed_insns);
        group.throughput(Throughput::Elements(processed));
        group.bench_function(&name, |b| {
            b.iter(|| black_box(verify(black_box(&p.program), &quiet).is_ok()))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(500));
    for (class, p) in &set {
        let name = format!("kernel/{}-{}", class.as_str(), p.label);
        let kernel = KernelVerifier::new(&p.object, &p.program)
            .and_then(|k| k.load_once().map(|(_, _, n)| (k, n)));
        match kernel {
            Ok((k, processed)) => {
                group.throughput(Throughput::Elements(processed.unwrap_or(1)));
                group.bench_function(&name, |b| {
                    b.iter_custom(|iters| {
                        let mut us = 0.0;
                        for _ in 0..iters {
                            us += k.load_once().expect("the kernel loaded it before").0;
                        }
                        Duration::from_secs_f64(us / 1e6)
                    })
                });
            }
            Err(e) => {
                benches::kernel::skip(&format!("verify {}", p.label), &e);
            }
        }
    }
    group.finish();
}

criterion_group!(benches, verify_corpus);
criterion_main!(benches);
