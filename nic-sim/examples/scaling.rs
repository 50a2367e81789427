//! Modeled throughput against the number of MEs, for the demo filter, a trivial XDP_DROP
//! program and three offloadable corpus programs (smallest, median and largest microcode),
//! on an Agilio CX 40 GbE port with 64-byte frames over 10,000 flows; then host simulation
//! speed for the demo filter on 1 and 2 host threads (reference check off).
//!
//! `cargo run --release -p nic-sim --example scaling [-- [speed] FRAMES]` (default 200,000
//! frames per point; `speed` skips the scaling table).

use std::time::Instant;

use nfp_backend::NicLimits;
use nic_sim::{
    NfpProgram, NicPreset, PacketEngine, SimConfig, Step, TrafficSpec, simulate, traffic::Generator,
};
use vm_core::{ProgType, Program};

fn drop_program() -> Program {
    let raw = vm_core::asm::assemble("mov %r0, 1\nexit\n").expect("assembles");
    Program {
        name: "xdp_drop".into(),
        section: None,
        prog_type: ProgType::Xdp,
        insns: vm_core::isa::decode_program(&raw).expect("decodes"),
        maps: Vec::new(),
    }
}

fn corpus_programs() -> Vec<(String, Program, NfpProgram)> {
    let objects = vm_core::corpus::elf_objects(&["ebpf-samples", "cilium-ebpf"]);
    let mut out = Vec::new();
    for path in &objects {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        if vm_core::elf::is_big_endian(&bytes) {
            continue;
        }
        let Ok((obj, _)) = vm_core::elf::load_object_lenient(&bytes) else {
            continue;
        };
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        for p in &obj.programs {
            if p.prog_type == ProgType::Xdp
                && let Ok(nfp) = NfpProgram::compile(p, &NicLimits::default())
            {
                out.push((format!("{file}:{}", p.name), p.clone(), nfp));
            }
        }
    }
    out.sort_by_key(|(_, _, n)| n.code().len());
    out.dedup_by_key(|(_, _, n)| n.code().len());
    match out.len() {
        0..=3 => out,
        n => vec![out[0].clone(), out[n / 2].clone(), out[n - 1].clone()],
    }
}

fn main() {
    let speed_only = std::env::args().nth(1).as_deref() == Some("speed");
    let frames: u64 = std::env::args()
        .nth(if speed_only { 2 } else { 1 })
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let spec = TrafficSpec::parse(&format!(
        "packets={frames},flows=10000,size=64,dport=7777,seed=1"
    ))
    .expect("spec");
    let demo = vm_core::demo::udp_filter();
    let mut programs = vec![
        ("xdp_drop (trivial)".to_string(), drop_program()),
        ("demo udp_filter".to_string(), demo.clone()),
    ];
    let mut compiled: Vec<(String, NfpProgram)> = programs
        .iter()
        .map(|(n, p)| {
            (
                n.clone(),
                NfpProgram::compile(p, &NicLimits::default()).expect("offloadable"),
            )
        })
        .collect();
    for (n, p, nfp) in corpus_programs() {
        programs.push((n.clone(), p));
        compiled.push((n, nfp));
    }
    let cores = [1u32, 2, 4, 8, 12, 16, 20, 25, 30, 40, 50];
    println!(
        "modeled Mpps, agilio-cx-40 (40 GbE, line rate 59.52 Mpps at 64 B), 4 threads/ME, {frames} frames/point"
    );
    print!("{:<44} {:>6}", "program", "insns");
    for c in cores {
        print!(" {:>6}", format!("{c}ME"));
    }
    println!();
    for (name, nfp) in compiled.iter().filter(|_| !speed_only) {
        print!(
            "{:<44} {:>6}",
            name.chars().take(44).collect::<String>(),
            nfp.code().len()
        );
        for c in cores {
            let mut config = SimConfig::new(NicPreset::agilio_cx_40().with_cores(c));
            config.host_threads = 2;
            let out = simulate(Generator::new(&spec), &config, nfp, None, |_, _| Ok(()))
                .expect("simulates");
            print!(" {:>6.2}", out.report.modeled_mpps);
        }
        println!();
    }

    // Host speed: the demo filter, reference check off.
    let demo_nfp = &compiled[1].1;
    let n = frames.max(1_000_000);
    let big = TrafficSpec::parse(&format!(
        "packets={n},flows=10000,size=64,dport=7770-7790,seed=2"
    ))
    .expect("spec");
    let mut per = Vec::new();
    for hosts in [1usize, 2] {
        let mut config = SimConfig::new(NicPreset::agilio_cx());
        config.host_threads = hosts;
        let t = Instant::now();
        let out = simulate(Generator::new(&big), &config, demo_nfp, None, |_, _| Ok(()))
            .expect("simulates");
        let pps = n as f64 / t.elapsed().as_secs_f64();
        per.push(pps);
        println!(
            "simulate(): {hosts} host thread(s): {:.2} M frames/s (report says {:.2} M), modeled {:.2} Mpps",
            pps / 1e6,
            out.report.host_packets_per_sec / 1e6,
            out.report.modeled_mpps
        );
    }
    println!(
        "simulate() speed-up 1 -> 2 host threads: {:.2}x",
        per[1] / per[0]
    );

    // The engine alone: pre-built frames through one ME's 4 threads round-robin.
    let pkts: Vec<Vec<u8>> = Generator::new(&big)
        .take(4096)
        .map(|f| f.expect("frame"))
        .collect();
    let mut engine = demo_nfp.engine(0, 4);
    let mut out = Vec::new();
    let (mut insns, mut done) = (0u64, 0u64);
    let t = Instant::now();
    for round in 0..(n / 4096).max(1) {
        for (i, p) in pkts.iter().enumerate() {
            let th = (i % 4) as u32;
            engine.start(th, p);
            while let Step::Swap { .. } = engine.resume(th) {}
            insns += engine.insns(th);
            if round == 0 {
                engine.output(th, &mut out);
            }
            done += 1;
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "NfpEngine alone (1 host thread): {:.2} M packets/s, {:.0} M ME instructions/s ({:.1} insns/packet)",
        done as f64 / s / 1e6,
        insns as f64 / s / 1e6,
        insns as f64 / done as f64
    );
    let _ = engine.maps();
}
