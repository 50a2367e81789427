//! `offload sim`: compile the program, run the microcode on the simulated multi-core NIC
//! (nic-sim with the microengine executor), and check every frame against the reference
//! interpreter.
//!
//! Exit codes (cli-contract.md): 0 when every frame agrees with the interpreter; 1 when the
//! program is not offloadable (every reason listed) or any frame's verdict, bytes or map
//! effects differ (`mismatches > 0`); 2 for bad input: unreadable program, bad pcap (the
//! error names the frame and byte offset), bad `--traffic`, unknown `--nic`, a program type
//! other than XDP (the NFP datapath runs XDP programs).

use std::path::{Path, PathBuf};

use nfp_backend::NicLimits;
use nic_sim::{
    FrameSource, NfpProgram, NicPreset, SimConfig, SimError, SimOutput, SimReport, simulate,
};
use serde_json::{Map, Value, json};
use vm_core::ProgType;

use crate::cmd::compile::{reason_line, reasons_json};
use crate::progress::Progress;
use crate::{GlobalOpts, exit::CliError, input, json as out};

/// Options of `offload sim`.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Program (ELF, .s/.asm, .data or raw); must be an offloadable XDP program.
    pub prog: PathBuf,
    /// Frames from a pcap or pcapng file, as captured.
    #[arg(long, conflicts_with = "traffic", required_unless_present = "traffic")]
    pub pcap: Option<PathBuf>,
    /// Synthetic traffic, e.g. `packets=100000,flows=1000,size=64,zipf=1.1,seed=7`.
    #[arg(long)]
    pub traffic: Option<String>,
    /// Simulated NIC: agilio-cx (alias nfp-4000), agilio-cx-40, or custom:islands=..,mes=..,threads=..,mhz=..,rate=..g,queue=..
    #[arg(long, default_value = "agilio-cx")]
    pub nic: String,
    /// Microengines running the program (changes the simulated NIC).
    #[arg(long)]
    pub cores: Option<u32>,
    /// Hardware threads per microengine (changes the simulated NIC).
    #[arg(long = "me-threads")]
    pub me_threads: Option<u32>,
    /// Host threads simulating the NIC (never changes a result; default: available cores).
    #[arg(long = "host-threads")]
    pub host_threads: Option<usize>,
    /// Write every passed or transmitted frame, in input order, after the program.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Skip the per-frame reference check against the interpreter (faster; `mismatches`
    /// is then 0 and `reference_checked` false).
    #[arg(long)]
    pub no_check: bool,
}

fn sim_error(e: SimError) -> CliError {
    CliError::input(e)
}

/// The firmware limits the compiler checks for a simulated NIC. Every preset (custom ones
/// too) is an NFP-4000 running CoreNIC, so they share the Agilio CX limits; a preset with
/// its own limits in nfp-backend gets those. `compile`, `sim` and `report` all resolve
/// `--nic` this way, so they accept the same names.
pub fn firmware_limits(nic: &NicPreset) -> &'static NicLimits {
    NicLimits::by_name(&nic.name).unwrap_or(&NicLimits::AGILIO_CX)
}

fn preset(args: &SimArgs) -> Result<NicPreset, CliError> {
    let mut nic = NicPreset::by_name(&args.nic).map_err(sim_error)?;
    if let Some(c) = args.cores {
        if c == 0 {
            return Err(CliError::input("--cores must be at least 1"));
        }
        nic = nic.with_cores(c);
    }
    if let Some(t) = args.me_threads {
        if t == 0 || t > nic_sim::preset::MAX_THREADS_PER_ME {
            return Err(CliError::input(format!(
                "--me-threads must be 1..={} (the NFP has 8 per ME)",
                nic_sim::preset::MAX_THREADS_PER_ME
            )));
        }
        nic = nic.with_threads(t);
    }
    // Refuse a NIC the simulator cannot hold (e.g. `--cores 4294967295`) before compiling.
    nic.check().map_err(sim_error)?;
    Ok(nic)
}

pub fn sim(args: &SimArgs, g: &GlobalOpts) -> Result<u8, CliError> {
    let _span = tracing::debug_span!("cli.sim", prog = %args.prog.display()).entered();
    let nic = preset(args)?;
    let loaded = input::load(&args.prog, g)?;
    let (program, _) = loaded.decoded(&args.prog)?;
    if program.prog_type != ProgType::Xdp {
        return Err(CliError::input(format!(
            "{}: a {} program; the simulated NIC runs XDP programs (use --type xdp to force)",
            args.prog.display(),
            program.prog_type.name()
        )));
    }
    let limits = firmware_limits(&nic);
    let nfp = match NfpProgram::compile(&program, limits) {
        Ok(p) => p.with_mem_latency(&nic.mem),
        Err(n) => {
            if g.json {
                let mut f = Map::new();
                f.insert("offloadable".into(), json!(false));
                f.insert("reasons".into(), reasons_json(&n.reasons));
                out::print(f);
            } else {
                eprintln!(
                    "{}: cannot be offloaded, nothing to simulate:",
                    args.prog.display()
                );
                for r in &n.reasons {
                    eprintln!("{}", reason_line(r.pc, &r.message, r.category));
                }
            }
            return Ok(1);
        }
    };
    let (frames, total) = match (&args.pcap, &args.traffic) {
        (Some(p), _) => (FrameSource::pcap(p).map_err(sim_error)?, None),
        (None, Some(t)) => {
            let spec = nic_sim::TrafficSpec::parse(t).map_err(sim_error)?;
            (
                FrameSource::traffic(t).map_err(sim_error)?,
                Some(spec.packets),
            )
        }
        (None, None) => return Err(CliError::input("give --pcap FILE or --traffic SPEC")),
    };
    let mut config = SimConfig::new(nic);
    if let Some(h) = args.host_threads {
        config.host_threads = h.max(1);
    }
    config.keep_output = args.out.is_some();
    let mut writer = match &args.out {
        Some(p) => Some(nic_sim::traffic::create_capture(p).map_err(sim_error)?),
        None => None,
    };
    let reference = nfp.reference(&program);
    let mut progress = Progress::new(total);
    let frames = frames.inspect(|_| progress.tick());
    let result = simulate(
        frames,
        &config,
        &nfp,
        if args.no_check {
            None
        } else {
            Some(&reference)
        },
        |_, bytes| match writer.as_mut() {
            Some(w) => w.write(bytes),
            None => Ok(()),
        },
    );
    progress.finish();
    let result = result.map_err(sim_error)?;
    if let Some(w) = writer {
        w.finish().map_err(sim_error)?;
    }
    let r = &result.report;
    if let (Some(p), 0) = (&args.pcap, r.packets) {
        crate::traffic::warn_empty_capture(p);
    }
    if g.json {
        out::print(json_report(
            &result,
            &program.name,
            nfp.code().len(),
            !args.no_check,
        ));
    } else {
        print_human(
            &args.prog,
            &result,
            nfp.code().len(),
            !args.no_check,
            args.out.as_deref(),
        );
    }
    Ok(if r.mismatches > 0 { 1 } else { 0 })
}

/// The contract fields first (from nic-sim's report), then extensions.
fn json_report(
    result: &SimOutput,
    name: &str,
    nfp_insns: usize,
    checked: bool,
) -> Map<String, Value> {
    let mut f = match serde_json::to_value(&result.report) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    f.remove("schema");
    f.insert("program".into(), json!(name));
    f.insert("nfp_insns".into(), json!(nfp_insns));
    f.insert("reference_checked".into(), json!(checked));
    f.insert("map_merge_refused".into(), json!(result.merge_refused));
    f
}

fn pct(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        100.0 * n as f64 / d as f64
    }
}

fn print_human(
    prog: &Path,
    result: &SimOutput,
    nfp_insns: usize,
    checked: bool,
    out_path: Option<&Path>,
) {
    let r: &SimReport = &result.report;
    println!(
        "{}: {} frames on {} ({} MEs x {} threads, {nfp_insns} NFP instructions), {} host thread{}",
        prog.display(),
        r.packets,
        r.nic,
        r.mes,
        r.threads_per_me,
        r.host_threads,
        if r.host_threads == 1 { "" } else { "s" }
    );
    let v = &r.verdicts;
    println!("  {:<12} {:>12} {:>8}", "verdict", "frames", "share");
    for (name, n) in [
        ("pass", v.pass),
        ("drop", v.drop),
        ("tx", v.tx),
        ("aborted", v.aborted),
        ("redirect", v.redirect),
        ("runt", v.runt),
        ("queue drop", r.queue_drops),
    ] {
        println!("  {name:<12} {n:>12} {:>7.2}%", pct(n, r.packets));
    }
    let limit = if r.modeled_mpps + 1e-9 >= r.line_rate_mpps {
        "line rate"
    } else {
        "ME capacity"
    };
    println!(
        "  throughput   {:.2} Mpps modeled of {:.2} Mpps line rate ({:.0}%, limited by {limit}); all MEs together could carry {:.2} Mpps",
        r.modeled_mpps,
        r.line_rate_mpps,
        if r.line_rate_mpps > 0.0 {
            100.0 * r.modeled_mpps / r.line_rate_mpps
        } else {
            0.0
        },
        r.combined_capacity_mpps
    );
    println!(
        "  cycles/pkt   p50 {} p99 {} (busy p50 {} p99 {}); latency p50 {:.0} ns p99 {:.0} ns",
        r.cycles_per_packet.p50,
        r.cycles_per_packet.p99,
        r.busy_cycles_per_packet.p50,
        r.busy_cycles_per_packet.p99,
        r.latency_ns.p50,
        r.latency_ns.p99
    );
    let u = &r.core_utilisation;
    if !u.is_empty() {
        let mean = u.iter().sum::<f64>() / u.len() as f64;
        let (imax, max) = u
            .iter()
            .copied()
            .enumerate()
            .fold((0, f64::MIN), |a, (i, x)| if x > a.1 { (i, x) } else { a });
        let min = u.iter().copied().fold(f64::MAX, f64::min);
        let idle = u.iter().filter(|x| **x == 0.0).count();
        println!(
            "  ME use       mean {:.1}%, min {:.1}%, max {:.1}% (ME {imax}), {idle} idle of {}",
            100.0 * mean,
            100.0 * min,
            100.0 * max,
            u.len()
        );
    }
    if r.map_merge_conflicts > 0 || !result.merge_refused.is_empty() {
        println!(
            "  maps         {} values merged from several MEs{}",
            r.map_merge_conflicts,
            if result.merge_refused.is_empty() {
                String::new()
            } else {
                format!("; refused: {}", result.merge_refused.join(", "))
            }
        );
    }
    if checked {
        match (&r.first_mismatch, r.mismatches) {
            (_, 0) => println!(
                "  reference    every frame agrees with the interpreter (verdict, bytes, maps)"
            ),
            (Some(first), n) => {
                println!("  reference    {n} MISMATCHES with the interpreter; first: {first}")
            }
            (None, n) => println!("  reference    {n} MISMATCHES with the interpreter"),
        }
    } else {
        println!("  reference    not checked (--no-check)");
    }
    if let Some(p) = out_path {
        println!(
            "  output       {} ({} frames)",
            p.display(),
            r.verdicts.pass + r.verdicts.tx
        );
    }
    println!(
        "  host         {:.2} M frames/s simulated",
        r.host_packets_per_sec / 1e6
    );
}
