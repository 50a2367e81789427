//! Random offloadable programs through the whole simulator: generated eBPF (the generator of
//! nfp-backend's `exec_vs_interp` differential test), compiled by the offload compiler, run
//! by [`simulate`] (RSS, per-lane queues, thread interleaving on an ME, map replicas merged at
//! the end) with vm-core's interpreter as the reference: zero mismatches (issue #6).
//!
//! nfp-backend's `exec_vs_interp` checks the executor one packet at a time; this checks what
//! the simulator adds on top: frames spread over MEs and threads, state (maps, prandom
//! streams) kept across packets, queue drops, and the per-ME map check.
//!
//! # What `mismatches` covers
//!
//! A frame mismatches when its verdict or its output bytes differ from the reference's (the
//! generated epilogue stores r0..r8 into packet bytes 0..72, so every register is compared
//! through the bytes, not only the XDP action; `lanes` compares bytes whatever the verdict);
//! an ME mismatches when its final map replica differs from its reference engine's maps
//! (`me_set::finish`, summed into `SimReport::mismatches` by `run::build_output`). So
//! `mismatches == 0` covers verdicts, bytes and every ME's final maps; the *merged* maps are
//! a sum of per-ME deltas (`merge`) that no single interpreter run reproduces, so of the
//! merge this only asserts that it refused nothing.
//!
//! # Why each NIC configuration is exact
//!
//! Each ME has one reference interpreter that runs a frame to completion when the ME's
//! thread *starts* it, so the reference sees the ME's frames one at a time in start order.
//!
//! - **One thread per ME** (`NIC_SERIAL`, every program): an ME runs its frames one after
//!   another in arrival order, exactly the reference's order, so map reads and writes (array
//!   and hash lookups, atomic adds, values read back into the packet) must agree exactly;
//!   any mismatch is a bug. The line rate keeps the MEs loaded (deep queues, next to no
//!   drops), so the engine is mostly stepped swap by swap, and run through its swaps when
//!   an ME falls idle: both ways the simulator drives an engine.
//! - **Four threads per ME, two-frame queues** (`NIC_THREADED`, programs that touch no map,
//!   in addition): threads interleave on memory waits, which can reorder map accesses
//!   between packets of one ME relative to the reference (a legitimate difference), so only
//!   programs with no map reference run here. Everything else they touch is private to the
//!   packet: registers, the thread's stack and packet buffer, and the `bpf_get_prandom_u32`
//!   stream, which both engines seed per packet from the ME's start count (and the engine
//!   keeps per thread across swaps). The MEs are overloaded (about 45% of frames dropped at
//!   the queues): every thread busy, and queue drops happen before a frame starts, so
//!   neither engine runs a dropped frame.
//!
//! # Knobs
//!
//! `SIM_RANDOM_CASES` (generated programs, default 400: about 5 s in the test profile),
//! `SIM_RANDOM_SEED` (u64, default 1), `SIM_RANDOM_FRAMES` (frames per run, default 2000),
//! `SIM_RANDOM_NO_PRANDOM=1` (leave out programs calling `bpf_get_prandom_u32`, to look for
//! other bugs while a prandom one is open), `SIM_RANDOM_SHRINK` (shrink steps, default 2000).
//! A failure prints the (shrunk) program's disassembly and microcode, the traffic spec, the
//! NIC, the report's first mismatch and the mismatching frame.

#![allow(clippy::unwrap_used)]

#[allow(dead_code, clippy::all)]
#[path = "../../nfp-backend/tests/exec_vs_interp/generate.rs"]
mod generate;

#[allow(dead_code, clippy::all)]
#[path = "../../nfp-backend/tests/exec_vs_interp/assemble.rs"]
mod assemble;

#[allow(dead_code, clippy::all)]
#[path = "../../nfp-backend/tests/exec_vs_interp/compare.rs"]
mod compare;

use std::cell::RefCell;
use std::time::Instant;

use nfp_backend::NicLimits;
use nic_sim::engine::run_to_completion;
use nic_sim::{
    NfpEngine, NfpProgram, NicPreset, PacketEngine, SimConfig, SimError, SimOutput, Step,
    TrafficSpec, simulate,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use vm_core::Program;
use vm_core::isa::{CallTarget, Insn, LdImm64};

/// Every program: one thread per ME, so per-ME order is arrival order (exact with maps);
/// 10 GbE loads the MEs, deep queues keep drops rare.
const NIC_SERIAL: &str = "custom:islands=1,mes=4,threads=1,queue=1024,rate=10g";
/// Map-free programs: four interleaving threads per ME, two-frame queues, overloaded.
const NIC_THREADED: &str = "custom:islands=1,mes=2,threads=4,queue=2,rate=10g";

/// Body items per generated program and bytes its bounds check may cover (as
/// `exec_vs_interp`'s defaults).
const MAX_ITEMS: usize = 40;
const REACH: u16 = 128;

/// Helpers whose effects are private to the packet: `bpf_get_prandom_u32` (7, per-packet
/// stream), `bpf_xdp_adjust_head` (44) and `bpf_xdp_adjust_tail` (65).
const PACKET_LOCAL_HELPERS: [i32; 3] = [7, 44, 65];

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Whether the program may read or write state shared between packets of an ME: a map
/// reference (`lddw` of a map fd or value address, which every map helper needs) or a helper
/// outside [`PACKET_LOCAL_HELPERS`].
fn touches_shared_state(p: &Program) -> bool {
    p.insns.iter().any(|i| match i {
        Insn::LdImm64 { value, .. } => {
            matches!(value, LdImm64::MapFd(_) | LdImm64::MapValue { .. })
        }
        Insn::Call(CallTarget::Helper(id)) => !PACKET_LOCAL_HELPERS.contains(id),
        Insn::Call(CallTarget::Kfunc(_)) => true,
        _ => false,
    })
}

/// Whether the program calls helper `id`.
fn calls_helper(p: &Program, id: i32) -> bool {
    p.insns.contains(&Insn::Call(CallTarget::Helper(id)))
}

/// The initial contents of `exec_vs_interp`'s prefill: array entries 0..4 and hash keys
/// 0..HASH_FILLED (8-byte keys) with distinct non-zero values. Written through
/// [`NfpProgram::maps_mut`], so every ME replica and every reference engine start from them.
fn prefill(nfp: &mut NfpProgram) -> Result<(), String> {
    let value = |seed: u8| -> Vec<u8> {
        (0..generate::VALUE as u8)
            .map(|i| seed.wrapping_mul(31).wrapping_add(i * 7 + 1))
            .collect()
    };
    let maps = nfp.maps_mut();
    let mut put = |fd: usize, k: &[u8], v: &[u8]| -> Result<(), String> {
        let m = maps.get_mut(fd).ok_or(format!("no map {fd}"))?;
        m.user_update(k, v, 0)
            .map_err(|e| format!("prefill map {fd}: {e:?}"))
    };
    for k in 0..4u32 {
        put(0, &k.to_le_bytes(), &value(k as u8))?;
    }
    for k in 0..generate::HASH_FILLED {
        put(1, &k.to_le_bytes(), &value(100 + k as u8))?;
    }
    Ok(())
}

/// Frame sizes (wire bytes, FCS included): mostly around the bounds checks (captured
/// 60..=236 bytes against checks of 80..=128 plus loads), sometimes IMIX and full-size.
fn traffic_size() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => Just("64-240"),
        1 => Just("imix"),
        1 => Just("64-1514"),
    ]
}

/// The traffic of one run.
fn traffic(frames: u64, flows: u32, size: &str, seed: u64) -> String {
    format!(
        "packets={frames},flows={flows},size={size},proto=udp:70,tcp:25,arp:5,dport=1-65535,runts=0.01,seed={seed}"
    )
}

/// The generator's frames with their payload (after the 54 header bytes the largest
/// template has) scrambled per frame: the payload is otherwise zeros, and programs load and
/// compare bytes anywhere in the first 128. Headers stay as generated, so RSS still sees the
/// flows.
fn frames(spec: &TrafficSpec) -> impl Iterator<Item = Result<Vec<u8>, SimError>> + use<> {
    let mut state = spec.seed ^ 0x9e37_79b9_7f4a_7c15;
    nic_sim::traffic::Generator::new(spec).map(move |f| {
        f.map(|mut b| {
            for x in b.iter_mut().skip(54) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *x = state as u8;
            }
            b
        })
    })
}

/// Totals over the run, printed at the end.
#[derive(Debug, Default, Clone)]
struct Counts {
    generated: u64,
    offloadable: u64,
    map_free: u64,
    /// Offloadable programs left out by `SIM_RANDOM_NO_PRANDOM`.
    skipped_prandom: u64,
    runs: u64,
    frames: u64,
    processed: u64,
    queue_drops: u64,
    threaded_queue_drops: u64,
    pass: u64,
    drop: u64,
    tx: u64,
    aborted: u64,
    mismatches: u64,
}

/// One simulation with the reference check; `Err` has everything needed to reproduce a
/// mismatch.
fn run_checked(
    program: &Program,
    nfp: &NfpProgram,
    nic_name: &str,
    traffic: &str,
    counts: &mut Counts,
) -> Result<SimOutput, String> {
    let nic = NicPreset::by_name(nic_name).map_err(|e| e.to_string())?;
    let spec = TrafficSpec::parse(traffic).map_err(|e| e.to_string())?;
    let mut config = SimConfig::new(nic);
    config.host_threads = 2;
    let reference = nfp.reference(program);
    let out = simulate(frames(&spec), &config, nfp, Some(&reference), |_, _| Ok(()))
        .map_err(|e| format!("simulate on {nic_name} with {traffic}: {e}"))?;
    let r = &out.report;
    counts.runs += 1;
    counts.frames += r.packets;
    counts.queue_drops += r.queue_drops;
    counts.processed += r.packets.saturating_sub(r.queue_drops + r.verdicts.runt);
    counts.pass += r.verdicts.pass;
    counts.drop += r.verdicts.drop;
    counts.tx += r.verdicts.tx;
    counts.aborted += r.verdicts.aborted;
    counts.mismatches += r.mismatches;
    let mut problems = Vec::new();
    if r.mismatches > 0 {
        problems.push(format!(
            "{} mismatches; first: {}",
            r.mismatches,
            r.first_mismatch.as_deref().unwrap_or("(none reported)")
        ));
    }
    if !r.accounted() || r.packets != spec.packets {
        problems.push(format!(
            "frames not accounted for: {} of {} ({:?}, {} queue drops)",
            r.verdicts.total() + r.queue_drops,
            spec.packets,
            r.verdicts,
            r.queue_drops
        ));
    }
    if !out.merge_refused.is_empty() {
        problems.push(format!("map merge refused: {:?}", out.merge_refused));
    }
    if problems.is_empty() {
        return Ok(out);
    }
    Err(format!(
        "{}\n--- nic {nic_name}, traffic {traffic} (payload scrambled from byte 54) ---\n{}\n{}\n--- microcode ({} insns) ---\n{}",
        problems.join("\n"),
        mismatching_frame(r.first_mismatch.as_deref(), &spec, program, nfp),
        compare::describe(program),
        nfp.code().len(),
        nfp_backend::target::print_program(nfp.code()),
    ))
}

/// The frame `first_mismatch` ("frame N: ...") names, in hex, and whether it also
/// mismatches alone, on a fresh engine and a fresh reference (as the first packet of an ME).
fn mismatching_frame(
    first: Option<&str>,
    spec: &TrafficSpec,
    program: &Program,
    nfp: &NfpProgram,
) -> String {
    let index = first
        .and_then(|m| m.strip_prefix("frame "))
        .and_then(|m| m.split(':').next())
        .and_then(|n| n.parse::<usize>().ok());
    let Some((i, Ok(f))) = index.and_then(|i| frames(spec).nth(i).map(|f| (i, f))) else {
        return "(no single mismatching frame)".into();
    };
    let alone = match nfp.reference(program)(0, 1) {
        Ok(mut reference) => {
            let mut engine = nfp.engine(0, 1);
            let (mut got, mut want) = (Vec::new(), Vec::new());
            let (g, _, _) = run_to_completion(&mut engine, &f, &mut got);
            let (w, _, _) = run_to_completion(reference.as_mut(), &f, &mut want);
            let (g, w) = (outcome(&g), outcome(&w));
            if g == w && got == want {
                format!("alone on fresh engines it agrees ({g})")
            } else {
                format!(
                    "alone on fresh engines it mismatches too:\n  engine    {g}: {}\n  reference {w}: {}",
                    hex(&got),
                    hex(&want)
                )
            }
        }
        Err(e) => format!("(no reference engine: {e})"),
    };
    format!(
        "frame {i} ({} bytes): {}\n{alone}\n{}",
        f.len(),
        hex(&f),
        replay(spec, program, nfp, i)
    )
}

/// Replays frames `0..=last` (runts left out) one after another on one fresh engine and one
/// fresh reference (one ME, one thread), the engine stepped swap by swap (what a loaded ME
/// does) and run through its swaps (what an idle ME does): the first frame where either
/// disagrees, which tells a timing-dependent mismatch from an order-dependent one.
fn replay(spec: &TrafficSpec, program: &Program, nfp: &NfpProgram, last: usize) -> String {
    let mut lines = Vec::new();
    for stepped in [true, false] {
        let Ok(mut reference) = nfp.reference(program)(0, 1) else {
            return String::new();
        };
        let mut engine = nfp.engine(0, 1);
        let (mut got, mut want) = (Vec::new(), Vec::new());
        let how = if stepped { "stepped" } else { "run through" };
        let mut line = format!("replayed serially on one ME ({how}): frames 0..={last} agree");
        for (i, f) in frames(spec).take(last + 1).enumerate() {
            let Ok(f) = f else { break };
            if nic_sim::traffic::is_runt(&f) {
                continue;
            }
            let g = if stepped {
                step_to_completion(&mut engine, &f, &mut got)
            } else {
                run_to_completion(&mut engine, &f, &mut got).0
            };
            let (w, _, _) = run_to_completion(reference.as_mut(), &f, &mut want);
            let (g, w) = (outcome(&g), outcome(&w));
            if g != w || got != want {
                line = format!(
                    "replayed serially on one ME ({how}): frame {i} is the first to mismatch ({} bytes): {}\n  engine    {g}: {}\n  reference {w}: {}",
                    f.len(),
                    hex(&f),
                    hex(&got),
                    hex(&want)
                );
                break;
            }
        }
        lines.push(line);
    }
    lines.join("\n")
}

/// Runs `frame` on thread 0 returning to the caller at every swap ([`PacketEngine::resume`],
/// never passing a swap as `run_to_completion` does).
fn step_to_completion(engine: &mut NfpEngine, frame: &[u8], out: &mut Vec<u8>) -> Step {
    engine.start(0, frame);
    let last = loop {
        match engine.resume(0) {
            Step::Swap { .. } => {}
            last => break last,
        }
    };
    out.clear();
    if matches!(last, Step::Done { .. }) {
        engine.output(0, out);
    }
    last
}

/// A final step without its cycle counts.
fn outcome(step: &Step) -> String {
    match step {
        Step::Done {
            retval, redirect, ..
        } => format!(
            "retval {retval:#x}{}",
            if *redirect { " redirect" } else { "" }
        ),
        Step::Fault { reason, .. } => format!("fault ({reason})"),
        Step::Swap { .. } => "swap".into(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What every case shares.
struct Knobs {
    limits: NicLimits,
    frames: u64,
    no_prandom: bool,
}

/// One generated case: compile, prefill, simulate on the NICs it is exact on.
fn check(
    k: &Knobs,
    (spec, size, flows, traffic_seed): (generate::Spec, &str, u32, u64),
    c: &mut Counts,
) -> Result<(), TestCaseError> {
    c.generated += 1;
    let program = spec.program();
    let Ok(mut nfp) = NfpProgram::compile(&program, &k.limits) else {
        return Ok(());
    };
    c.offloadable += 1;
    if k.no_prandom && calls_helper(&program, 7) {
        c.skipped_prandom += 1;
        return Ok(());
    }
    prefill(&mut nfp).map_err(TestCaseError::fail)?;
    let t = traffic(k.frames, flows, size, traffic_seed);
    run_checked(&program, &nfp, NIC_SERIAL, &t, c).map_err(TestCaseError::fail)?;
    if !touches_shared_state(&program) {
        c.map_free += 1;
        let out = run_checked(&program, &nfp, NIC_THREADED, &t, c).map_err(TestCaseError::fail)?;
        c.threaded_queue_drops += out.report.queue_drops;
    }
    Ok(())
}

#[test]
fn random_offloadable_programs_have_zero_mismatches_through_simulate() {
    let started = Instant::now();
    let cases: u32 = env("SIM_RANDOM_CASES", 400);
    let seed: u64 = env("SIM_RANDOM_SEED", 1);
    let knobs = Knobs {
        limits: NicLimits::default(),
        frames: env("SIM_RANDOM_FRAMES", 2000),
        no_prandom: env("SIM_RANDOM_NO_PRANDOM", 0u8) != 0,
    };
    let mut rng_seed = [0u8; 32];
    rng_seed[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            // A case simulates thousands of frames (a few ms): shrink, but not forever.
            max_shrink_iters: env("SIM_RANDOM_SHRINK", 2000),
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &rng_seed),
    );
    let strategy = (
        generate::spec(MAX_ITEMS, REACH),
        traffic_size(),
        1u32..=512,
        any::<u64>(),
    );
    let counts = RefCell::new(Counts::default());
    // The totals when the first case failed (shrinking runs more cases after it).
    let at_failure: RefCell<Option<Counts>> = RefCell::new(None);
    let result = runner.run(&strategy, |case| {
        let r = check(&knobs, case, &mut counts.borrow_mut());
        if r.is_err() && at_failure.borrow().is_none() {
            *at_failure.borrow_mut() = Some(counts.borrow().clone());
        }
        r
    });
    let failed_after = at_failure.into_inner();
    let shrink_note = if failed_after.is_some() {
        " (totals up to the first failure; shrinking ran more)"
    } else {
        ""
    };
    let c = failed_after.unwrap_or_else(|| counts.into_inner());
    println!(
        "sim_random: seed {seed}, {} programs generated, {} offloadable ({} map-free, also \
         run on 4 threads/ME; {} calling bpf_get_prandom_u32 skipped), {} runs, {} frames \
         ({} run by the program, {} queue drops of which {} on the 4-thread NIC), verdicts \
         pass {} drop {} tx {} aborted {}, {} mismatches{shrink_note}, {:.1} s",
        c.generated,
        c.offloadable,
        c.map_free,
        c.skipped_prandom,
        c.runs,
        c.frames,
        c.processed,
        c.queue_drops,
        c.threaded_queue_drops,
        c.pass,
        c.drop,
        c.tx,
        c.aborted,
        c.mismatches,
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("seed {seed}: {e}");
    }
    // Not vacuous: most generated programs compile (nearly all do under the default
    // limits), some of them are map-free, and the verdicts go every way.
    assert!(
        c.offloadable > 0 && c.offloadable * 5 >= c.generated,
        "only {} of {} generated programs were offloadable",
        c.offloadable,
        c.generated
    );
    if cases >= 20 {
        assert!(
            c.map_free > 0,
            "no map-free program among {}",
            c.offloadable
        );
        assert!(
            c.pass > 0 && c.drop > 0 && c.aborted > 0,
            "verdicts not exercised: {c:?}"
        );
    }
}
