//! Gathering the report's facts: compile for the card, simulate the main run (every frame
//! checked against the interpreter, per-instruction cycles profiled), then one simulation per
//! point of the scaling curve.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use nfp_backend::compile::{Compiled, compile};
use nfp_backend::{NicLimits, Reason};
use nic_sim::preset::wire_bytes;
use nic_sim::{FrameSource, LineRate, NfpProgram, NicPreset, SimConfig, SimError, simulate};
use vm_core::{Insn, ProgType, Program, asm};

use super::ReportArgs;
use super::model::{
    Counts, LatencyBucket, LineRateOut, NicInfo, ProgramInfo, ReasonOut, Report, Scaling,
    ScalingPoint, SimSummary, SourceRef, TrafficInfo, Zext, hottest, mes_needed,
};
use crate::progress::Progress;
use crate::{GlobalOpts, exit::CliError, input};

/// Mixed traffic with skewed flow popularity: what a report shows when no capture is given.
pub const DEFAULT_TRAFFIC: &str =
    "packets=20000,flows=1000,size=64,proto=udp:75,tcp:25,zipf=0,seed=1";

/// Points of the scaling curve (capped at the preset's MEs, which is always included).
const ME_COUNTS: [u32; 11] = [1, 2, 4, 8, 12, 16, 20, 24, 32, 40, 48];

/// A port no ME count can keep up with (10 Tbit/s), so the scaling curve shows what the MEs
/// carry rather than what a real port delivers.
const UNBOUNDED_PORT_BPS: u64 = 10_000_000_000_000;

/// Latency buckets kept in the report (finer histograms are merged into this many).
const LATENCY_BUCKETS: usize = 40;

fn sim_error(e: SimError) -> CliError {
    CliError::input(e)
}

/// Where PROG's instructions came from in the C source, if the object carries line info.
type Lines = Box<dyn Fn(usize) -> Option<SourceRef>>;

pub fn collect(args: &ReportArgs, g: &GlobalOpts) -> Result<Report, CliError> {
    let nic = NicPreset::by_name(&args.nic).map_err(sim_error)?;
    let limits = crate::cmd::sim::firmware_limits(&nic);
    let loaded = input::load(&args.prog, g)?;
    let lines: Lines = match loaded.lines.clone() {
        Some(table) => Box::new(move |pc| {
            table.at(pc).map(|l| SourceRef {
                file: l.file.clone(),
                line: l.line,
                column: l.column,
                text: l.text.clone(),
            })
        }),
        None => Box::new(|_| None),
    };
    let has_line_info = loaded.lines.is_some();
    let raw = loaded.raw.clone();
    let mut report = Report {
        schema: 1,
        generated: now_rfc3339(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        program: ProgramInfo {
            file: args.prog.display().to_string(),
            name: String::new(),
            section: None,
            prog_type: String::new(),
            ebpf_insns: raw.len(),
            has_line_info,
        },
        nic: NicInfo {
            name: nic.name.clone(),
            mes: nic.mes(),
            threads_per_me: nic.threads_per_me,
            mhz: nic.clock_hz as f64 / 1e6,
            line_rate_gbps: nic.line_rate.bits_per_sec() as f64 / 1e9,
            max_insns: limits.max_insns,
        },
        offloadable: false,
        reasons: Vec::new(),
        instructions: None,
        zext: None,
        traffic: None,
        sim: None,
        scaling: None,
        latency_histogram: Vec::new(),
        hottest: Vec::new(),
        notes: Vec::new(),
        charts: Vec::new(),
        listing: None,
    };
    let program = match loaded.program {
        Ok(p) => p,
        Err(e) => {
            report.program.name = stem(&args.prog);
            report.reasons.push(reason_out(
                &Reason::at(e.pc, "bad_encoding", e.kind.to_string()),
                None,
                &lines,
            ));
            return Ok(report);
        }
    };
    report.program.name = program.name.clone();
    report.program.section = program.section.clone();
    report.program.prog_type = program.prog_type.name().to_string();
    let describe = |pc: usize| describe(&program, &raw, pc);
    let compiled = {
        let _span = tracing::debug_span!("report.compile").entered();
        compile(&program, limits)
    };
    let c = match compiled {
        Ok(c) => c,
        Err(n) => {
            report.reasons = n
                .reasons
                .iter()
                .map(|r| reason_out(r, r.pc.map(describe), &lines))
                .collect();
            report.listing = Some(ebpf_listing(
                &program,
                &raw,
                loaded.lines.as_ref(),
                &n.reasons,
            ));
            return Ok(report);
        }
    };
    report.offloadable = true;
    report.instructions = Some(counts(&c, limits));
    report.listing = Some(crate::cmd::compile::listing(
        &program,
        &c,
        loaded.lines.as_ref(),
    ));
    let total = c.zext_elided + c.zext_kept;
    report.zext = Some(Zext {
        elided: c.zext_elided,
        kept: c.zext_kept,
        elided_share: if total == 0 {
            0.0
        } else {
            f64::from(c.zext_elided) / f64::from(total)
        },
    });
    if program.prog_type != ProgType::Xdp {
        report.notes.push(format!(
            "a {} program: the simulated NIC's datapath runs XDP programs, so there is no throughput, latency or profile section (use --type xdp to simulate it as XDP)",
            program.prog_type.name()
        ));
        return Ok(report);
    }
    simulate_all(args, &nic, &program, &c, &mut report, &|pc| {
        (describe(pc), lines(pc))
    })?;
    Ok(report)
}

fn counts(c: &Compiled, limits: &NicLimits) -> Counts {
    Counts {
        ebpf: c.ebpf_insns,
        nfp: c.nfp_insns,
        nfp_limit: limits.max_insns,
        estimated_cycles_min: c.estimated_cycles.0,
        estimated_cycles_max: c.estimated_cycles.1,
        optimisations: c
            .optimisations
            .entries()
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
    }
}

fn frames(args: &ReportArgs) -> Result<(FrameSource, String), CliError> {
    match &args.pcap {
        Some(p) => Ok((
            FrameSource::pcap(p).map_err(sim_error)?,
            format!("pcap:{}", p.display()),
        )),
        None => Ok((
            FrameSource::traffic(&args.traffic).map_err(sim_error)?,
            format!("traffic:{}", args.traffic),
        )),
    }
}

fn simulate_all(
    args: &ReportArgs,
    nic: &NicPreset,
    program: &Program,
    c: &Compiled,
    report: &mut Report,
    describe: &dyn Fn(usize) -> (String, Option<SourceRef>),
) -> Result<(), CliError> {
    let nfp = NfpProgram::from_compiled(program, c)
        .map_err(|n| {
            CliError::input(
                n.reasons
                    .first()
                    .map_or("maps cannot be created".into(), |r| r.message.clone()),
            )
        })?
        .with_mem_latency(&nic.mem);
    let host_threads = args
        .host_threads
        .unwrap_or_else(default_host_threads)
        .max(1);
    // The main run: the preset as given, every frame checked, cycles profiled.
    let (source, label) = frames(args)?;
    let mut config = SimConfig::new(nic.clone());
    config.host_threads = host_threads;
    config.profile = true;
    let reference = nfp.reference(program);
    let (mut bytes, mut wire, mut seen) = (0u64, 0u64, 0u64);
    let total = match &args.pcap {
        Some(_) => None,
        None => nic_sim::TrafficSpec::parse(&args.traffic)
            .ok()
            .map(|t| t.packets),
    };
    let mut progress = Progress::new(total);
    let source = source.inspect(|f| {
        progress.tick();
        if let Ok(f) = f {
            bytes += f.len() as u64;
            wire += wire_bytes(f.len());
            seen += 1;
        }
    });
    let out = {
        let _span = tracing::debug_span!("report.sim", frames = "main").entered();
        simulate(source, &config, &nfp, Some(&reference), |_, _| Ok(()))
    };
    progress.finish();
    let out = out.map_err(sim_error)?;
    let r = &out.report;
    let mean_frame = if seen == 0 {
        0.0
    } else {
        bytes as f64 / seen as f64
    };
    report.traffic = Some(TrafficInfo {
        source: label,
        frames: r.packets,
        mean_frame_bytes: mean_frame,
        scaling_frames: args.scaling_frames.min(r.packets),
    });
    let v = &r.verdicts;
    let verdicts: BTreeMap<String, u64> = [
        ("aborted", v.aborted),
        ("drop", v.drop),
        ("pass", v.pass),
        ("tx", v.tx),
        ("redirect", v.redirect),
        ("runt", v.runt),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), *n))
    .collect();
    let u = &r.core_utilisation;
    report.sim = Some(SimSummary {
        packets: r.packets,
        verdicts,
        queue_drops: r.queue_drops,
        modeled_mpps: r.modeled_mpps,
        line_rate_mpps: r.line_rate_mpps,
        combined_capacity_mpps: r.combined_capacity_mpps,
        cycles_per_packet_p50: r.cycles_per_packet.p50,
        cycles_per_packet_p99: r.cycles_per_packet.p99,
        latency_ns_p50: r.latency_ns.p50,
        latency_ns_p99: r.latency_ns.p99,
        mean_me_utilisation: if u.is_empty() {
            0.0
        } else {
            u.iter().sum::<f64>() / u.len() as f64
        },
        mismatches: r.mismatches,
        first_mismatch: r.first_mismatch.clone(),
        host_packets_per_sec: r.host_packets_per_sec,
    });
    report.latency_histogram = latency_buckets(&out.latency_histogram, nic.ns_per_cycle());
    if let Some(profile) = &out.profile {
        let flat: Vec<(u64, u64)> = profile.iter().map(|p| (p.executions, p.cycles)).collect();
        report.hottest = hottest(&c.map, c.code.len(), &flat, describe, args.top);
    }
    if r.packets == 0 {
        report
            .notes
            .push("the traffic holds no frames: nothing was simulated".into());
        return Ok(());
    }
    // The scaling curve: the same traffic (its first frames) on 1..N MEs, fed by a port fast
    // enough that the MEs, not the line, are the limit.
    let mut counts: Vec<u32> = ME_COUNTS
        .iter()
        .copied()
        .filter(|n| *n < nic.mes())
        .collect();
    counts.push(nic.mes());
    let mut points = Vec::with_capacity(counts.len());
    for mes in counts {
        let _span = tracing::debug_span!("report.sim", mes).entered();
        let mut n = nic.clone().with_cores(mes);
        n.line_rate = LineRate::Custom(UNBOUNDED_PORT_BPS);
        let mut config = SimConfig::new(n);
        config.host_threads = host_threads;
        let (source, _) = frames(args)?;
        let o = simulate(
            source.take(args.scaling_frames.max(1) as usize),
            &config,
            &nfp,
            None,
            |_, _| Ok(()),
        )
        .map_err(sim_error)?;
        points.push(ScalingPoint {
            mes,
            capacity_mpps: o.report.modeled_mpps.max(0.0),
            modeled_mpps: 0.0,
        });
    }
    // At the preset's own line rate, modeled = min(line rate, capacity).
    for p in &mut points {
        p.modeled_mpps = p.capacity_mpps.min(r.line_rate_mpps);
    }
    // Each frame occupies its wire size (FCS, padding to 64 bytes, preamble and gap).
    let mean_wire_bits = 8.0 * wire as f64 / seen.max(1) as f64;
    let line_rates = [
        (10, LineRate::G10),
        (25, LineRate::G25),
        (40, LineRate::G40),
        (100, LineRate::G100),
    ]
    .iter()
    .map(|&(gbe, rate)| {
        let mpps = rate.bits_per_sec() as f64 / mean_wire_bits / 1e6;
        LineRateOut {
            gbe,
            mpps,
            mes_needed: mes_needed(&points, mpps),
        }
    })
    .collect();
    report.scaling = Some(Scaling { points, line_rates });
    Ok(())
}

/// Merges an exact `(value, count)` latency histogram into at most [`LATENCY_BUCKETS`]
/// equal-width buckets between its smallest and largest values.
fn latency_buckets(hist: &[(u64, u64)], ns_per_cycle: f64) -> Vec<LatencyBucket> {
    let (Some(lo), Some(hi)) = (
        hist.iter().map(|h| h.0).min(),
        hist.iter().map(|h| h.0).max(),
    ) else {
        return Vec::new();
    };
    let span = hi - lo + 1;
    let width = span.div_ceil(LATENCY_BUCKETS as u64).max(1);
    let n = span.div_ceil(width) as usize;
    let mut out: Vec<LatencyBucket> = (0..n)
        .map(|i| {
            let le = lo + (i as u64 + 1) * width - 1;
            LatencyBucket {
                le_cycles: le,
                le_ns: le as f64 * ns_per_cycle,
                count: 0,
            }
        })
        .collect();
    for &(v, c) in hist {
        let i = ((v - lo) / width) as usize;
        if let Some(b) = out.get_mut(i.min(n - 1)) {
            b.count += c;
        }
    }
    out
}

fn reason_out(r: &Reason, insn: Option<String>, lines: &Lines) -> ReasonOut {
    ReasonOut {
        pc: r.pc,
        category: r.category.to_string(),
        message: r.message.clone(),
        insn,
        source: r.pc.and_then(lines),
        hint: super::hints::hint(r.category).map(str::to_string),
    }
}

/// The program in kernel syntax under its C source lines, each reason marked at its
/// instruction: the context a reader needs to see why the NIC refuses it.
fn ebpf_listing(
    program: &Program,
    raw: &[vm_core::RawInsn],
    lines: Option<&vm_core::elf::LineTable>,
    reasons: &[Reason],
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let mut last = None;
    for (pc, insn) in program.insns.iter().enumerate() {
        if *insn == Insn::LdImm64Tail {
            continue;
        }
        if let Some(h) = crate::cmd::compile::source_header(lines, pc, &mut last) {
            let _ = writeln!(s, "{h}");
        }
        let code = raw.get(pc).map_or(0, |r| r.code);
        let _ = writeln!(s, "{}", asm::kernel_line(pc, code, insn));
        for r in reasons.iter().filter(|r| r.pc == Some(pc)) {
            let _ = writeln!(s, "    ^^^ {}  [{}]", r.message, r.category);
        }
    }
    s
}

/// The instruction at `pc` in kernel syntax, without the `pc: (op)` prefix.
fn describe(program: &Program, raw: &[vm_core::RawInsn], pc: usize) -> String {
    match program.insns.get(pc) {
        Some(Insn::LdImm64Tail) => "(second slot of lddw)".to_string(),
        Some(insn) => {
            let code = raw.get(pc).map_or(0, |r| r.code);
            let line = asm::kernel_line(pc, code, insn);
            match line.split_once(") ") {
                Some((_, rest)) => rest.to_string(),
                None => line,
            }
        }
        None => String::new(),
    }
}

fn stem(path: &std::path::Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("prog")
        .to_string()
}

fn default_host_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_merge_into_equal_widths() {
        let h: Vec<(u64, u64)> = (100..=199).map(|v| (v, 1)).collect();
        let b = latency_buckets(&h, 1.25);
        assert!(b.len() <= LATENCY_BUCKETS);
        assert_eq!(b.iter().map(|x| x.count).sum::<u64>(), 100);
        assert!(b.last().is_some_and(|x| x.le_cycles >= 199));
        assert!(latency_buckets(&[], 1.0).is_empty());
        let one = latency_buckets(&[(7, 3)], 1.0);
        assert_eq!((one.len(), one[0].le_cycles, one[0].count), (1, 7, 3));
    }
}
