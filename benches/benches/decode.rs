//! Decoder speed: raw instruction bytes to typed `Insn`s (`RawInsn::slice_from_bytes` then
//! `isa::decode_program`), on the UDP parser and on the largest program of the verification
//! set (the same programs as the ratio table's decode rows). Throughput is in instruction
//! slots, so criterion's `elem/s` is slots decoded per second. rbpf has no separate decoder,
//! so there is no peer here.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn decode_speed(c: &mut Criterion) {
    let mut programs = vec![("udp_parser".to_string(), benches::udp_parser().program())];
    let (set, _) = benches::corpus::verify_set().expect("verdict table and corpus readable");
    if let Some((_, p)) = set.iter().max_by_key(|(_, p)| p.program.insns.len()) {
        programs.push((p.label.clone(), p.program.clone()));
    }
    let mut group = c.benchmark_group("decode");
    for (label, program) in programs {
        let bytes = benches::program_bytes(&program);
        assert!(benches::decode(&bytes).is_ok(), "{label} decodes");
        group.throughput(Throughput::Elements((bytes.len() / 8) as u64));
        group.bench_function(&label, |b| {
            b.iter(|| black_box(benches::decode(black_box(&bytes)).is_ok()))
        });
    }
    group.finish();
}

criterion_group!(benches, decode_speed);
criterion_main!(benches);
