//! What the report says, as data: one serializable [`Report`] that `report.json` is and that
//! the HTML page and its charts are drawn from, so the page never shows a number the JSON
//! does not carry.

use std::collections::BTreeMap;

use serde::Serialize;

/// Where an eBPF instruction came from in the C source (BTF line info).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SourceRef {
    /// Source file as the compiler recorded it.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column (0 when not recorded).
    pub column: u32,
    /// The line's text as stored in BTF.
    pub text: String,
}

/// The program the report is about.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramInfo {
    /// PROG as given.
    pub file: String,
    /// Function or section name.
    pub name: String,
    /// ELF section, if any.
    pub section: Option<String>,
    /// Program type name.
    pub prog_type: String,
    /// eBPF slots (`lddw` counts two).
    pub ebpf_insns: usize,
    /// Whether BTF line info maps instructions to source lines.
    pub has_line_info: bool,
}

/// The simulated card.
#[derive(Debug, Clone, Serialize)]
pub struct NicInfo {
    /// Preset name.
    pub name: String,
    /// Microengines running the program.
    pub mes: u32,
    /// Hardware threads per ME.
    pub threads_per_me: u32,
    /// ME clock.
    pub mhz: f64,
    /// The port feeding the NIC, Gbit/s.
    pub line_rate_gbps: f64,
    /// Instruction store limit (NFP instructions).
    pub max_insns: usize,
}

/// One reason the program cannot be offloaded.
#[derive(Debug, Clone, Serialize)]
pub struct ReasonOut {
    /// eBPF slot, or `None` for whole-program limits.
    pub pc: Option<usize>,
    /// Stable category name.
    pub category: String,
    /// Message.
    pub message: String,
    /// The instruction at `pc` (kernel syntax).
    pub insn: Option<String>,
    /// The C source line of `pc`, where BTF line info exists.
    pub source: Option<SourceRef>,
    /// What the author can change, for this category.
    pub hint: Option<String>,
}

/// Instruction counts before and after lowering.
#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    /// eBPF slots.
    pub ebpf: usize,
    /// NFP instructions emitted.
    pub nfp: usize,
    /// The instruction store's limit.
    pub nfp_limit: usize,
    /// Static estimate of cycles per packet (shortest and longest path).
    pub estimated_cycles_min: u64,
    /// See `estimated_cycles_min`.
    pub estimated_cycles_max: u64,
    /// How often each peephole optimisation fired.
    pub optimisations: BTreeMap<String, u32>,
}

/// Zero-extension savings: 32-bit results whose upper half the verifier proved dead.
#[derive(Debug, Clone, Serialize)]
pub struct Zext {
    /// Zero-extensions not emitted.
    pub elided: u32,
    /// Zero-extensions emitted because a 64-bit reader may observe the upper half.
    pub kept: u32,
    /// `elided / (elided + kept)`, 0 when there are none.
    pub elided_share: f64,
}

/// The traffic the simulations ran on.
#[derive(Debug, Clone, Serialize)]
pub struct TrafficInfo {
    /// `pcap:PATH` or `traffic:SPEC`.
    pub source: String,
    /// Frames in the main simulation.
    pub frames: u64,
    /// Mean captured frame length, bytes.
    pub mean_frame_bytes: f64,
    /// Frames used for each point of the scaling curve.
    pub scaling_frames: u64,
}

/// The main simulation at the preset, with every frame checked against the interpreter.
#[derive(Debug, Clone, Serialize)]
pub struct SimSummary {
    /// Frames.
    pub packets: u64,
    /// Verdict counts (`aborted`, `drop`, `pass`, `tx`, `redirect`, `runt`).
    pub verdicts: BTreeMap<String, u64>,
    /// Frames dropped because a lane's queue was full.
    pub queue_drops: u64,
    /// Modeled throughput at the preset's line rate.
    pub modeled_mpps: f64,
    /// The preset's line rate for this traffic.
    pub line_rate_mpps: f64,
    /// What all MEs together could carry.
    pub combined_capacity_mpps: f64,
    /// Cycles a packet holds its thread (busy plus memory waits): p50.
    pub cycles_per_packet_p50: u64,
    /// See `cycles_per_packet_p50`.
    pub cycles_per_packet_p99: u64,
    /// Arrival-to-verdict latency p50, ns.
    pub latency_ns_p50: f64,
    /// See `latency_ns_p50`.
    pub latency_ns_p99: f64,
    /// Mean ME utilisation (0..1).
    pub mean_me_utilisation: f64,
    /// Frames whose verdict, bytes or map effects differ from the reference interpreter.
    pub mismatches: u64,
    /// The first mismatch, described.
    pub first_mismatch: Option<String>,
    /// Host speed of the simulation (frames per second).
    pub host_packets_per_sec: f64,
}

/// One point of the scaling curve.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingPoint {
    /// Microengines.
    pub mes: u32,
    /// Throughput the MEs can carry (RSS skew included), uncapped by any port.
    pub capacity_mpps: f64,
    /// Throughput at the preset's own line rate.
    pub modeled_mpps: f64,
}

/// A line rate drawn across the scaling chart.
#[derive(Debug, Clone, Serialize)]
pub struct LineRateOut {
    /// Gbit/s.
    pub gbe: u32,
    /// Packets per second at the traffic's mean frame size, millions.
    pub mpps: f64,
    /// Fewest MEs of the curve whose capacity reaches it, if any.
    pub mes_needed: Option<u32>,
}

/// Modeled throughput against the number of MEs.
#[derive(Debug, Clone, Serialize)]
pub struct Scaling {
    /// Curve points, ascending in `mes`.
    pub points: Vec<ScalingPoint>,
    /// Standard Ethernet rates at this traffic's frame sizes.
    pub line_rates: Vec<LineRateOut>,
}

/// One latency histogram bucket.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyBucket {
    /// Upper bound of the bucket, ME cycles (inclusive).
    pub le_cycles: u64,
    /// The same in nanoseconds.
    pub le_ns: f64,
    /// Packets.
    pub count: u64,
}

/// One eBPF instruction's share of the program's cycles on the NIC.
#[derive(Debug, Clone, Serialize)]
pub struct HotInsn {
    /// eBPF slot; `None` for microcode not attributed to any instruction (prologue, shared
    /// exit paths).
    pub pc: Option<usize>,
    /// The instruction (kernel syntax), or what the unattributed code is.
    pub insn: String,
    /// Its C source line, where BTF line info exists.
    pub source: Option<SourceRef>,
    /// Busy ME cycles charged to its microcode over the whole simulation (issue cycles,
    /// firmware helpers it calls, taken-branch penalties; memory waits excluded).
    pub cycles: u64,
    /// `cycles` over the program's total.
    pub share: f64,
    /// Times its first microcode instruction executed.
    pub executions: u64,
    /// NFP instructions it became.
    pub nfp_insns: usize,
}

/// The whole report (`report.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always 1.
    pub schema: u32,
    /// When it was made (UTC, RFC 3339).
    pub generated: String,
    /// `offload` version.
    pub tool_version: String,
    /// The program.
    pub program: ProgramInfo,
    /// The card.
    pub nic: NicInfo,
    /// Whether the program can run on the card.
    pub offloadable: bool,
    /// Every reason it cannot (empty when it can).
    pub reasons: Vec<ReasonOut>,
    /// Counts (offloadable programs).
    pub instructions: Option<Counts>,
    /// Zero-extension savings (offloadable programs).
    pub zext: Option<Zext>,
    /// Traffic (simulated programs).
    pub traffic: Option<TrafficInfo>,
    /// Main simulation.
    pub sim: Option<SimSummary>,
    /// Scaling curve.
    pub scaling: Option<Scaling>,
    /// Latency histogram of the main simulation.
    pub latency_histogram: Vec<LatencyBucket>,
    /// Hottest instructions, most cycles first.
    pub hottest: Vec<HotInsn>,
    /// Why some section is absent (e.g. a tc program: the simulated NIC runs XDP).
    pub notes: Vec<String>,
    /// Chart files written beside `index.html`.
    pub charts: Vec<String>,
    /// eBPF under its C source lines, with the microcode it became (offloadable) or the
    /// reasons marked (refused); on the page only.
    #[serde(skip)]
    pub listing: Option<String>,
}

impl Report {
    /// The verdict in one line, for people.
    pub fn headline(&self) -> String {
        if self.offloadable {
            match &self.sim {
                Some(s) => format!(
                    "offloadable to {}: {} eBPF -> {} NFP instructions, {:.2} Mpps modeled ({:.2} Mpps line rate), {} mismatches",
                    self.nic.name,
                    self.program.ebpf_insns,
                    self.instructions.as_ref().map_or(0, |c| c.nfp),
                    s.modeled_mpps,
                    s.line_rate_mpps,
                    s.mismatches
                ),
                None => format!(
                    "offloadable to {}: {} eBPF -> {} NFP instructions",
                    self.nic.name,
                    self.program.ebpf_insns,
                    self.instructions.as_ref().map_or(0, |c| c.nfp)
                ),
            }
        } else {
            format!(
                "NOT offloadable to {} ({} reason{})",
                self.nic.name,
                self.reasons.len(),
                if self.reasons.len() == 1 { "" } else { "s" }
            )
        }
    }
}

/// Sums per-microcode-instruction costs into per-eBPF-instruction ones via the compiler's
/// map (eBPF slot -> range of microcode addresses) and keeps the `top` most expensive.
/// Microcode the map attributes to no instruction is pooled under `pc: None`.
pub fn hottest(
    map: &[std::ops::Range<usize>],
    me_len: usize,
    profile: &[(u64, u64)],
    describe: &dyn Fn(usize) -> (String, Option<SourceRef>),
    top: usize,
) -> Vec<HotInsn> {
    let mut owner: Vec<Option<usize>> = vec![None; me_len];
    for (pc, range) in map.iter().enumerate() {
        for a in range.clone() {
            if let Some(o) = owner.get_mut(a) {
                *o = Some(pc);
            }
        }
    }
    let total: u64 = profile.iter().map(|p| p.1).sum();
    let mut per_pc: BTreeMap<Option<usize>, (u64, u64, usize)> = BTreeMap::new();
    for (addr, &(execs, cycles)) in profile.iter().enumerate() {
        if cycles == 0 && execs == 0 {
            continue;
        }
        let pc = owner.get(addr).copied().flatten();
        let e = per_pc.entry(pc).or_insert((0, 0, 0));
        e.1 += cycles;
        // An instruction runs as often as its first microcode word; the unattributed pool
        // counts its most-run word.
        let first = pc.and_then(|p| map.get(p)).map(|r| r.start);
        if pc.is_none() || first == Some(addr) {
            e.0 = e.0.max(execs);
        }
    }
    for (pc, e) in per_pc.iter_mut() {
        e.2 = match pc {
            Some(p) => map.get(*p).map_or(0, |r| r.len()),
            None => owner.iter().filter(|o| o.is_none()).count(),
        };
    }
    let mut rows: Vec<HotInsn> = per_pc
        .into_iter()
        .map(|(pc, (executions, cycles, nfp_insns))| {
            let (insn, source) = match pc {
                Some(p) => describe(p),
                None => (
                    "microcode of no single instruction (entry, shared exits)".to_string(),
                    None,
                ),
            };
            HotInsn {
                pc,
                insn,
                source,
                cycles,
                share: if total == 0 {
                    0.0
                } else {
                    cycles as f64 / total as f64
                },
                executions,
                nfp_insns,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.cycles.cmp(&a.cycles).then(a.pc.cmp(&b.pc)));
    rows.truncate(top);
    rows
}

/// The fewest MEs on the curve whose capacity reaches `mpps`.
pub fn mes_needed(points: &[ScalingPoint], mpps: f64) -> Option<u32> {
    points
        .iter()
        .find(|p| p.capacity_mpps + 1e-9 >= mpps)
        .map(|p| p.mes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(pc: usize) -> (String, Option<SourceRef>) {
        (format!("insn {pc}"), None)
    }

    #[test]
    fn hottest_sums_microcode_per_instruction() {
        // pc 0 -> ME 0..2, pc 1 -> none, pc 2 -> ME 2..3; ME 3 unattributed.
        let map = vec![0..2, 0..0, 2..3];
        let profile = [(10, 10), (10, 30), (5, 100), (1, 4)];
        let rows = hottest(&map, 4, &profile, &describe, 10);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].pc, Some(2));
        assert_eq!((rows[0].cycles, rows[0].executions), (100, 5));
        assert_eq!(rows[1].pc, Some(0));
        assert_eq!(
            (rows[1].cycles, rows[1].executions, rows[1].nfp_insns),
            (40, 10, 2)
        );
        assert_eq!(rows[2].pc, None);
        let total: f64 = rows.iter().map(|r| r.share).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn hottest_truncates_and_survives_empty_profile() {
        let map = vec![0..1, 1..2];
        assert!(hottest(&map, 2, &[], &describe, 5).is_empty());
        let rows = hottest(&map, 2, &[(1, 1), (1, 2)], &describe, 1);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].pc, Some(1));
    }

    #[test]
    fn mes_needed_finds_first_point_at_or_above() {
        let pts: Vec<ScalingPoint> = [(1, 3.0), (2, 6.0), (4, 12.0)]
            .iter()
            .map(|&(mes, c)| ScalingPoint {
                mes,
                capacity_mpps: c,
                modeled_mpps: c,
            })
            .collect();
        assert_eq!(mes_needed(&pts, 5.0), Some(2));
        assert_eq!(mes_needed(&pts, 12.0), Some(4));
        assert_eq!(mes_needed(&pts, 13.0), None);
    }
}
