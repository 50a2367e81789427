//! Host simulation speed for the demo UDP filter on the NFP engine (reference check off):
//! the engine alone (packets/s and ME instructions/s on one host thread) and the whole
//! simulator on 1 and 2 host threads. For repeatable per-packet costs on a shared machine,
//! see `examples/simspeed.rs` under callgrind.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nfp_backend::NicLimits;
use nic_sim::{
    NfpProgram, NicPreset, PacketEngine, SimConfig, Step, TrafficSpec, simulate, traffic::Generator,
};

const FRAMES: u64 = 200_000;

fn frames(n: u64) -> Vec<Vec<u8>> {
    let spec = TrafficSpec::parse(&format!(
        "packets={n},flows=10000,size=64,dport=7770-7790,seed=2"
    ))
    .expect("spec");
    Generator::new(&spec).map(|f| f.expect("frame")).collect()
}

fn run_all(engine: &mut nic_sim::NfpEngine, pkts: &[Vec<u8>]) -> u64 {
    let mut insns = 0;
    for (i, p) in pkts.iter().enumerate() {
        let th = (i % 4) as u32;
        engine.start(th, p);
        while let Step::Swap { .. } = engine.resume(th) {}
        insns += engine.insns(th);
    }
    insns
}

fn bench(c: &mut Criterion) {
    let prog = vm_core::demo::udp_filter();
    let nfp = NfpProgram::compile(&prog, &NicLimits::default()).expect("offloadable");
    let pkts = frames(4096);
    let mut engine = nfp.engine(0, 4);
    let insns = run_all(&mut engine, &pkts);

    let mut g = c.benchmark_group("nfp_engine_udp_filter");
    g.throughput(Throughput::Elements(pkts.len() as u64));
    g.bench_function("packets", |b| {
        b.iter(|| black_box(run_all(&mut engine, black_box(&pkts))))
    });
    g.throughput(Throughput::Elements(insns));
    g.bench_function("me_instructions", |b| {
        b.iter(|| black_box(run_all(&mut engine, black_box(&pkts))))
    });
    g.finish();

    let all = frames(FRAMES);
    let mut g = c.benchmark_group("simulate_udp_filter");
    g.sample_size(10);
    g.throughput(Throughput::Elements(FRAMES));
    // One host thread runs everything on the calling thread; two add a second simulating
    // thread (the scaling goal is 1 -> 2).
    for hosts in [1, 2] {
        let mut config = SimConfig::new(NicPreset::agilio_cx());
        config.host_threads = hosts;
        g.bench_function(format!("host_threads_{hosts}"), |b| {
            b.iter(|| {
                let frames = all.iter().map(|f| Ok(f.as_slice()));
                let out = simulate(frames, &config, &nfp, None, |_, _| Ok(())).expect("simulates");
                black_box(out.report.packets)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
