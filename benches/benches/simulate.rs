//! Host simulation speed: `nic_sim::simulate` of the demo UDP filter on an Agilio CX
//! (reference interpreter comparison off) over `SIM_FRAMES` pre-generated frames, on 1 and 2
//! host threads. Throughput is in frames, so criterion's `elem/s` is host packets per second;
//! the ratio of the two is the host-thread scaling. The `..._me_insns` group times the same
//! runs with throughput in simulated ME instructions (counted once by a profiled run), so its
//! `elem/s` is simulated ME instructions per host second. Same workload as the ratio table.

use std::hint::black_box;

use benches::{SIM_FRAMES, sim_frames, sim_me_insns, sim_program, simulate};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn simulate_speed(c: &mut Criterion) {
    let frames = sim_frames(SIM_FRAMES).expect("traffic spec");
    let program = sim_program().expect("the demo is offloadable");
    let me_insns = sim_me_insns(&frames, &program).expect("profiled run");
    for (name, elements) in [
        ("simulate_udp_filter", SIM_FRAMES),
        ("simulate_udp_filter_me_insns", me_insns),
    ] {
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        group.throughput(Throughput::Elements(elements));
        for hosts in [1usize, 2] {
            group.bench_function(format!("host_threads_{hosts}"), |b| {
                b.iter(|| black_box(simulate(black_box(&frames), &program, hosts).ok()))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, simulate_speed);
criterion_main!(benches);
