//! A small, fixed workload for measuring host cost per simulated packet under
//! `valgrind --tool=callgrind` (repeatable instruction counts on a shared machine), or for
//! timing one configuration.
//!
//! `cargo run --release -p nic-sim --example simspeed -- [sim|pre|engine|list] FRAMES HOSTS [BATCH] [NIC]`
//! (default `sim 100000 1`, NIC `agilio-cx` or any `--nic` name; `list` prints the microcode): `sim` runs `simulate()` on an Agilio CX with the demo UDP filter,
//! reference check off, frames generated as read; `pre` the same over frames generated
//! first and passed borrowed (the criterion benches' setup: the simulator alone; with one
//! host thread it also prints frames per second of this thread's CPU time);
//! `engine` runs one ME's engine alone, 4 threads round-robin.

use std::time::Instant;

use nfp_backend::NicLimits;
use nic_sim::{
    NfpProgram, NicPreset, PacketEngine, SimConfig, Step, TrafficSpec, simulate, traffic::Generator,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("sim", String::as_str).to_string();
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let hosts: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let batch: Option<usize> = args.get(4).and_then(|s| s.parse().ok());
    let nic = NicPreset::by_name(args.get(5).map_or("agilio-cx", String::as_str)).expect("nic");
    let spec = TrafficSpec::parse(&format!(
        "packets={n},flows=10000,size=64,dport=7770-7790,seed=2"
    ))
    .expect("spec");
    let prog = vm_core::demo::udp_filter();
    let nfp = NfpProgram::compile(&prog, &NicLimits::default()).expect("offloadable");
    let t = Instant::now();
    match mode.as_str() {
        "list" => print!("{}", nfp_backend::target::print::print_program(nfp.code())),
        "engine" => {
            let pkts: Vec<Vec<u8>> = Generator::new(&spec)
                .take(4096)
                .map(|f| f.expect("frame"))
                .collect();
            let mut engine = nfp.engine(0, 4);
            let mut insns = 0u64;
            for i in 0..n as usize {
                let th = (i % 4) as u32;
                engine.start(th, &pkts[i % pkts.len()]);
                while let Step::Swap { .. } = engine.resume(th) {}
                insns += engine.insns(th);
            }
            let s = t.elapsed().as_secs_f64();
            println!(
                "engine: {n} packets, {:.2} M packets/s, {:.1} ME insns/packet",
                n as f64 / s / 1e6,
                insns as f64 / n as f64
            );
        }
        "repeat" => {
            // As criterion runs it: the same frames simulated again and again in one
            // process, each call timed (wall and thread CPU), so that a call's fixed cost
            // (setup, first touches) shows against the per-frame cost at two sizes.
            let mut config = SimConfig::new(nic);
            config.host_threads = hosts;
            let frames: Vec<Vec<u8>> = Generator::new(&spec).map(|f| f.expect("frame")).collect();
            let rounds: usize = std::env::var("SIMSPEED_ROUNDS")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(8);
            for round in 0..rounds {
                for take in [1000, frames.len()] {
                    let t = Instant::now();
                    let cpu0 = cpu_ns();
                    simulate(
                        frames[..take].iter().map(|f| Ok(f.as_slice())),
                        &config,
                        &nfp,
                        None,
                        |_, _| Ok(()),
                    )
                    .expect("simulates");
                    let wall = t.elapsed().as_secs_f64() * 1e3;
                    let cpu = match (cpu0, cpu_ns()) {
                        (Some(a), Some(b)) => (b - a) as f64 / 1e6,
                        _ => 0.0,
                    };
                    if rounds <= 8 {
                        println!("round {round} frames {take}: wall {wall:.3} ms cpu {cpu:.3} ms");
                    }
                }
            }
        }
        _ => {
            let mut config = SimConfig::new(nic);
            config.host_threads = hosts;
            if let Some(b) = batch {
                config.batch = b;
            }
            let out = if mode == "pre" {
                let frames: Vec<Vec<u8>> =
                    Generator::new(&spec).map(|f| f.expect("frame")).collect();
                let t = Instant::now();
                let cpu0 = cpu_ns();
                let out = simulate(
                    frames.iter().map(|f| Ok(f.as_slice())),
                    &config,
                    &nfp,
                    None,
                    |_, _| Ok(()),
                )
                .expect("simulates");
                let s = t.elapsed().as_secs_f64();
                // One host thread runs everything on this thread: its own CPU time is the
                // figure a busy shared host does not distort (another thread's, with more).
                let cpu = match (hosts, cpu0, cpu_ns()) {
                    (1, Some(a), Some(b)) if b > a => {
                        format!(
                            " (cpu {:.2} M frames/s)",
                            n as f64 / ((b - a) as f64 / 1e9) / 1e6
                        )
                    }
                    _ => String::new(),
                };
                println!("simulate only: {:.2} M frames/s{cpu}", n as f64 / s / 1e6);
                out
            } else {
                simulate(Generator::new(&spec), &config, &nfp, None, |_, _| Ok(()))
                    .expect("simulates")
            };
            let s = t.elapsed().as_secs_f64();
            println!(
                "sim: {n} frames, {hosts} host thread(s), {:.2} M frames/s, pass {} drop {}",
                n as f64 / s / 1e6,
                out.report.verdicts.pass,
                out.report.verdicts.drop
            );
        }
    }
}

/// This thread's time on a CPU, ns: on a shared host the wall clock counts other processes'
/// time slices too; A/B comparisons of this figure (interleaved runs, medians) agreed within
/// 1% between two copies of one binary on this 2-vCPU machine under load, where wall-clock
/// runs spread by 2x.
///
/// Why `CLOCK_THREAD_CPUTIME_ID` and not `/proc/thread-self/schedstat`: the latter's runtime
/// moves only at scheduler ticks here (4 ms steps, so ±3.5% on a 1 M-frame run), the clock
/// adds the running slice (nanoseconds).
fn cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the call's duration; the call only
    // writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs * 1_000_000_000 + nanos)
}
