//! The NFP engine inside the simulator: the compiled microcode, run thread-interleaved on
//! simulated MEs, must agree frame by frame with vm-core's interpreter (verdict, bytes, map
//! effects), give identical results whatever the host threading, and account for every
//! frame exactly once.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use nfp_backend::NicLimits;
use nic_sim::{
    NfpProgram, NicPreset, SimConfig, SimOutput, TrafficSpec, simulate, traffic::Generator,
};
use vm_core::Program;

fn run(
    program: &Program,
    nfp: &NfpProgram,
    frames: impl IntoIterator<Item = Result<Vec<u8>, nic_sim::SimError>>,
    nic: NicPreset,
    hosts: usize,
    keep: Option<&mut Vec<(u64, Vec<u8>)>>,
) -> SimOutput {
    let mut config = SimConfig::new(nic);
    config.host_threads = hosts;
    config.keep_output = keep.is_some();
    let reference = nfp.reference(program);
    let mut keep = keep;
    simulate(frames, &config, nfp, Some(&reference), |i, b| {
        if let Some(k) = keep.as_mut() {
            k.push((i, b.to_vec()));
        }
        Ok(())
    })
    .expect("simulates")
}

fn demo() -> (Program, NfpProgram) {
    let p = vm_core::demo::udp_filter();
    let nfp = NfpProgram::compile(&p, &NicLimits::default()).expect("demo is offloadable");
    (p, nfp)
}

#[test]
fn demo_program_has_zero_mismatches_over_20000_frames() {
    let (p, nfp) = demo();
    let spec = TrafficSpec::parse("packets=20000,flows=2000,size=64-1514,proto=udp:80,tcp:15,arp:5,dport=7770-7790,runts=0.01,seed=3").unwrap();
    let out = run(
        &p,
        &nfp,
        Generator::new(&spec),
        NicPreset::agilio_cx(),
        2,
        None,
    );
    let r = &out.report;
    assert_eq!(r.packets, 20_000);
    assert!(r.accounted(), "{r:?}");
    assert_eq!(r.mismatches, 0, "first: {:?}", r.first_mismatch);
    assert!(
        r.verdicts.pass > 0 && r.verdicts.drop > 0,
        "both verdicts exercised: {:?}",
        r.verdicts
    );
    assert!(r.verdicts.runt > 0);
    assert!(r.cycles_per_packet.p50 > 0 && r.modeled_mpps > 0.0);
}

/// Runs every offloadable corpus XDP program on `n` mixed frames; returns a table.
fn corpus(n: u64, cores: u32) -> Vec<(String, u64, u64, f64, f64)> {
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (i, (name, p, nfp)) in common::offloadable_corpus().into_iter().enumerate() {
        let started = Instant::now();
        let out = run(
            &p,
            &nfp,
            common::mixed_frames(n, i as u64 + 1),
            NicPreset::agilio_cx().with_cores(cores),
            2,
            None,
        );
        let r = &out.report;
        assert!(r.accounted(), "{name}: {r:?}");
        assert_eq!(r.packets, n, "{name}");
        if r.mismatches > 0 {
            failures.push(format!(
                "{name}: {} mismatches, first: {:?}",
                r.mismatches, r.first_mismatch
            ));
        }
        let secs = started.elapsed().as_secs_f64();
        rows.push((
            name,
            r.packets,
            r.mismatches,
            r.modeled_mpps,
            n as f64 / secs,
        ));
    }
    println!(
        "{:<70} {:>8} {:>10} {:>9} {:>12}",
        "program", "frames", "mismatches", "Mpps", "host fps"
    );
    for (name, n, m, mpps, fps) in &rows {
        println!("{name:<70} {n:>8} {m:>10} {mpps:>9.2} {fps:>12.0}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    rows
}

#[test]
fn corpus_xdp_programs_have_zero_mismatches() {
    let rows = corpus(2_000, 8);
    assert!(!rows.is_empty());
}

#[test]
#[ignore = "long: 100,000 frames per corpus program (run in release)"]
fn corpus_xdp_programs_have_zero_mismatches_100k() {
    corpus(100_000, 50);
}

/// What one host-thread count produced: the report, the output frames (index, bytes) and
/// every map's entries (key, value).
type Outcome = (
    nic_sim::SimReport,
    Vec<(u64, Vec<u8>)>,
    Vec<Vec<(Vec<u8>, Vec<u8>)>>,
);

#[test]
fn results_do_not_depend_on_host_threads() {
    let (p, nfp) = demo();
    let spec = TrafficSpec::parse(
        "packets=6000,flows=400,size=imix,proto=udp:70,tcp:30,dport=7775-7779,zipf=1.1,seed=11",
    )
    .unwrap();
    let mut base: Option<Outcome> = None;
    for hosts in [1, 2, 4] {
        let mut frames = Vec::new();
        let out = run(
            &p,
            &nfp,
            Generator::new(&spec),
            NicPreset::agilio_cx().with_cores(12),
            hosts,
            Some(&mut frames),
        );
        let mut r = out.report.clone();
        assert_eq!(r.host_threads, hosts.min(12));
        r.host_threads = 0;
        r.host_packets_per_sec = 0.0;
        let maps: Vec<_> = out
            .maps
            .as_ref()
            .map(|m| m.iter().map(|x| x.entries()).collect())
            .unwrap_or_default();
        match &base {
            None => base = Some((r, frames, maps)),
            Some((r0, f0, m0)) => {
                assert_eq!(&r, r0, "report with {hosts} host threads");
                assert_eq!(&frames, f0, "output frames with {hosts} host threads");
                assert_eq!(&maps, m0, "final maps with {hosts} host threads");
            }
        }
    }
}

#[test]
fn every_frame_is_counted_once() {
    let (p, nfp) = demo();
    // Two MEs of one thread with one-frame queues at 100 GbE: plenty of queue drops.
    let nic = NicPreset::by_name("custom:islands=1,mes=2,threads=1,queue=1,rate=100g").unwrap();
    let spec =
        TrafficSpec::parse("packets=5000,flows=50,size=64,dport=7777,runts=0.05,seed=5").unwrap();
    let mut frames = Vec::new();
    let out = run(&p, &nfp, Generator::new(&spec), nic, 2, Some(&mut frames));
    let r = &out.report;
    assert!(r.queue_drops > 0 && r.verdicts.runt > 0, "{r:?}");
    assert_eq!(r.packets, 5000);
    assert_eq!(r.packets, r.verdicts.total() + r.queue_drops);
    assert_eq!(frames.len() as u64, r.verdicts.pass + r.verdicts.tx);
    assert!(
        frames.windows(2).all(|w| w[0].0 < w[1].0),
        "--out frames in input order"
    );
    assert_eq!(r.mismatches, 0);
}

#[test]
fn more_threads_than_the_lmem_layout_holds_still_agree() {
    let (p, nfp) = demo();
    let spec =
        TrafficSpec::parse("packets=3000,flows=300,size=64-300,dport=7770-7790,seed=9").unwrap();
    let out = run(
        &p,
        &nfp,
        Generator::new(&spec),
        NicPreset::agilio_cx().with_cores(3).with_threads(8),
        1,
        None,
    );
    assert_eq!(out.report.mismatches, 0, "{:?}", out.report.first_mismatch);
    assert!(out.report.accounted());
}
