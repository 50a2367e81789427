//! The simulation driver: streams frames through RSS to per-ME event models in batches
//! (see `share`), gathers results in input order, and builds the report.
//!
//! ```text
//!  frames ─► runt? ─► RSS lane ─► batch arena, per ME ─► one task per ME, taken by any of
//!                                                        the H host threads (caller included)
//!  with --out: FrameResults ─► reorder buffer ─► sink, in input order
//! ```
//!
//! Which host thread simulates an ME never affects a result: an ME's model sees only its
//! own frames (see `lanes`), in input order; counts and mismatches are order-free sums per
//! ME (the first mismatch is the lowest frame index), `--out` frames are reordered by frame
//! index, and maps are merged in ME order (see `merge`).

use std::time::Instant;

use vm_core::maps::MapSet;

use crate::collector::Collector;
use crate::engine::PacketEngine;
use crate::error::SimError;
use crate::lanes::{MeStats, Reference};
use crate::me_set::{MeSet, MesDone};
use crate::merge::merge_replicas;
use crate::preset::NicPreset;
use crate::rss::NonIp;
use crate::stats::{Percentiles, SimReport, Verdicts};
use crate::timing::{ArrivalClock, Histogram, MeLoad, me_capacity_pps, modeled_pps};

/// How to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The simulated NIC.
    pub nic: NicPreset,
    /// Host threads simulating MEs (never changes a result).
    pub host_threads: usize,
    /// Hand passed/transmitted frames to the output sink.
    pub keep_output: bool,
    /// Where non-IP frames go.
    pub non_ip: NonIp,
    /// Frames per batch (never changes a result): larger batches mean fewer hand-overs
    /// between host threads and fewer ME tasks (each brings its ME's state back into cache),
    /// smaller ones a smaller arena and `--out` reorder buffer.
    ///
    /// The default, 8192, is the best of 4096-12288 for the demo at today's speed (session
    /// 20, one host thread, thread CPU time, 12 interleaved rounds of `simspeed pre 1000000 1
    /// BATCH`, medians: 4096 9.75, 6144 9.84, 8192 9.89, 12288 9.75 M frames/s). 4096 was
    /// chosen when a frame cost ~3x what it does now (two host threads: 2.5-3.2 M frames/s
    /// against 1.8-2.9 at 1024); a cheaper frame makes a task's fixed cost (~700 cycles,
    /// session 15) a larger share, and past ~8192 the arena pushes the MEs' state out of a
    /// core's L2.
    pub batch: usize,
    /// Count executions and cycles per ME instruction address into [`SimOutput::profile`].
    /// Off by default; when off the engines run their unprofiled loop (no cost).
    pub profile: bool,
}

impl SimConfig {
    /// Defaults for `nic`: one host thread per core available, no output.
    pub fn new(nic: NicPreset) -> SimConfig {
        SimConfig {
            nic,
            host_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            keep_output: false,
            non_ip: NonIp::Lane0,
            batch: 8192,
            profile: false,
        }
    }
}

/// Everything a simulation produced.
#[derive(Debug)]
pub struct SimOutput {
    /// The report.
    pub report: SimReport,
    /// Final maps (per-ME replicas merged, see `merge`); `None` if the engines have no maps.
    pub maps: Option<MapSet>,
    /// Map updates the merge could not apply.
    pub merge_refused: Vec<String>,
    /// With [`SimConfig::profile`]: per ME instruction address (index = address), executions
    /// and ME issue cycles summed over every ME, thread and host thread (identical whatever
    /// the host thread count). `None` when not asked for or the engine has no instruction
    /// addresses (the interpreter stand-in).
    pub profile: Option<Vec<InsnProfile>>,
    /// Per-packet latency (arrival to completion, cycles) over all MEs as `(upper bound in
    /// cycles, inclusive; packets)` buckets in ascending order. The histogram is exact: each
    /// bucket holds the packets of exactly that latency, empty buckets are left out.
    pub latency_histogram: Vec<(u64, u64)>,
}

pub use nfp_backend::exec::InsnProfile;

/// Builds the engine of one ME (all on the calling thread, before the first frame; an ME may
/// then run on any host thread, batch by batch, which is why engines are `Send`).
pub trait EngineFactory: Sync {
    /// The engine type.
    type Engine: PacketEngine;
    /// The engine of ME `me`, with `threads` hardware threads.
    fn build(&self, me: u32, threads: u32) -> Result<Self::Engine, SimError>;
}

impl<E: PacketEngine, F: Fn(u32, u32) -> Result<E, SimError> + Sync> EngineFactory for F {
    type Engine = E;
    fn build(&self, me: u32, threads: u32) -> Result<E, SimError> {
        self(me, threads)
    }
}

/// Builds the reference engine of one ME for checked runs.
pub type ReferenceFactory<'a> = &'a (dyn Fn(u32, u32) -> Result<Reference, SimError> + Sync);

/// Runs `frames` through the simulated NIC; `sink(index, bytes)` receives, in input order,
/// every passed/transmitted frame after the program (only with `config.keep_output`).
///
/// Frames may be owned (`Vec<u8>`, as [`crate::FrameSource`] yields) or borrowed
/// (`&[u8]`): the simulator copies each frame once, into its batch's arena (and again only
/// if it waits in a lane's queue).
///
/// The calling thread is one of the `host_threads`: it reads every frame into batches and
/// simulates ME tasks like the others (see `share`).
// Never inlined: one call per run, and profiles measure exactly this function
// (`valgrind --toggle-collect=nic_sim::run::simulate*`).
#[inline(never)]
pub fn simulate<F, I, B, S>(
    frames: I,
    config: &SimConfig,
    engines: &F,
    reference: Option<ReferenceFactory<'_>>,
    mut sink: S,
) -> Result<SimOutput, SimError>
where
    F: EngineFactory,
    I: IntoIterator<Item = Result<B, SimError>>,
    B: AsRef<[u8]>,
    S: FnMut(u64, &[u8]) -> Result<(), SimError>,
{
    let nic = &config.nic;
    let _span = tracing::debug_span!("sim.run", nic = %nic.name, mes = nic.mes()).entered();
    let started = Instant::now();
    nic.check()?;
    let hosts = config.host_threads.clamp(1, nic.mes().max(1) as usize);
    let mut clock = ArrivalClock::new(nic.line_rate.bits_per_sec(), nic.clock_hz);
    let mut collect = Collector::new(config.keep_output);
    let mes = MeSet::new(config, engines, reference)?;
    let done = crate::share::simulate_batches(
        frames,
        config,
        hosts,
        mes,
        &mut clock,
        &mut collect,
        &mut sink,
    )?;
    let elapsed = started.elapsed().as_secs_f64();
    build_output(config, hosts, &clock, collect, done, elapsed)
}

fn build_output(
    config: &SimConfig,
    hosts: usize,
    clock: &ArrivalClock,
    collect: Collector,
    done: MesDone,
    elapsed: f64,
) -> Result<SimOutput, SimError> {
    let nic = &config.nic;
    let MesDone {
        mut stats,
        maps,
        map_mismatches,
        initial,
        profile,
        latency,
    } = done;
    // Every frame is counted once: a runt, a queue drop, or a verdict of the ME it ran on.
    let mut verdicts = Verdicts {
        runt: collect.runts,
        ..Verdicts::default()
    };
    let (mut queue_drops, mut frame_mismatches) = (0u64, 0u64);
    let mut first_mismatch: Option<(u64, String)> = None;
    for s in &mut stats {
        verdicts.add(&s.verdicts);
        queue_drops += s.queue_drops;
        frame_mismatches += s.mismatches;
        if let Some((i, m)) = s.first_mismatch.take()
            && first_mismatch.as_ref().is_none_or(|(j, _)| i < *j)
        {
            first_mismatch = Some((i, m));
        }
    }
    let counted = verdicts.total() + queue_drops;
    if counted != collect.total || (collect.ordered() && collect.next != collect.total) {
        return Err(SimError::Host(format!(
            "{} of {} frames never got a result",
            collect.total.saturating_sub(counted.min(collect.next)),
            collect.total
        )));
    }
    let map_mismatches = map_mismatches.len() as u64;

    // Means from the exact sums the MEs keep anyway (see `Sums`), not from the histograms.
    let all = stats
        .iter()
        .fold(Sums::default(), |a, s| a.add(&Sums::of(s)));
    let sim_cycles = stats
        .iter()
        .map(|s| s.last_done)
        .max()
        .unwrap_or(0)
        .max(clock.now())
        .max(1);
    let line_pps = clock.line_rate_pps();
    let offered: u64 = stats.iter().map(|s| s.processed + s.queue_drops).sum();
    let loads: Vec<MeLoad> = stats
        .iter()
        .filter(|s| s.processed > 0)
        .map(|s| {
            let m = Sums::of(s);
            MeLoad {
                share: (s.processed + s.queue_drops) as f64 / offered.max(1) as f64,
                capacity_pps: me_capacity_pps(
                    m.busy_mean(),
                    m.service_mean(),
                    s.lanes_used.min(nic.threads_per_me),
                    nic.clock_hz,
                ),
            }
        })
        .collect();
    // Every ME with all its threads busy at the average per-packet cost.
    let combined = if all.packets == 0 {
        0.0
    } else {
        f64::from(nic.mes())
            * me_capacity_pps(
                all.busy_mean(),
                all.service_mean(),
                nic.threads_per_me,
                nic.clock_hz,
            )
    };
    // A lane serves its frames one at a time, so a heavy flow can saturate its thread
    // before the ME saturates.
    let lane_loads = stats
        .iter()
        .flat_map(|s| s.lanes.iter())
        .filter(|l| l.processed > 0)
        .map(|l| MeLoad {
            share: l.offered as f64 / offered.max(1) as f64,
            capacity_pps: nic.clock_hz as f64 * l.processed as f64 / l.service_cycles.max(1) as f64,
        });
    // The MEs' loads, then the lanes', each folded in as `modeled_pps` folds a slice (the
    // same minimum in the same order), without collecting them: the lanes' count is unknown
    // up front, so the vector grew by `realloc` (perf, `simspeed repeat 1000 1`: ~3% of a
    // 1,000-frame call's time in that growth, most of it glibc consolidating the heap).
    let modeled = lane_loads.fold(modeled_pps(line_pps, &loads), |m, l| {
        modeled_pps(m, std::slice::from_ref(&l))
    });
    // The MEs' histograms are read last (`Sums::of` checks them in debug builds), then taken
    // into the run's: their zeroed buffers serve the next run's (see
    // `Histogram::merge_counted_from`).
    let (mut service, mut busy) = (Histogram::default(), Histogram::default());
    for s in &mut stats {
        // Each packet an ME ran is one value of each (see `Sums`).
        service.merge_counted_from(std::mem::take(&mut s.service), s.processed);
        busy.merge_counted_from(std::mem::take(&mut s.busy), s.processed);
    }
    debug_assert_eq!(all.busy_mean().to_bits(), busy.mean().to_bits());
    debug_assert_eq!(all.service_mean().to_bits(), service.mean().to_bits());
    let ns = nic.ns_per_cycle();
    let lat = latency.p50_p99();
    let (merged, conflicts, refused) = match (initial, maps.iter().all(|(_, m)| m.is_some())) {
        (Some(init), true) => {
            let reps: Vec<&MapSet> = maps.iter().filter_map(|(_, m)| m.as_ref()).collect();
            let m = merge_replicas(&init, &reps);
            (Some(m.maps), m.conflicts, m.refused)
        }
        _ => (None, 0, Vec::new()),
    };
    let report = SimReport {
        schema: 1,
        packets: collect.total,
        verdicts,
        queue_drops,
        modeled_mpps: if collect.total == 0 {
            0.0
        } else {
            modeled / 1e6
        },
        line_rate_mpps: line_pps / 1e6,
        cycles_per_packet: service.p50_p99(),
        core_utilisation: stats
            .iter()
            .map(|s| s.busy_cycles as f64 / sim_cycles as f64)
            .collect(),
        host_packets_per_sec: if elapsed > 0.0 {
            collect.total as f64 / elapsed
        } else {
            0.0
        },
        mismatches: frame_mismatches + map_mismatches,
        nic: nic.name.clone(),
        mes: nic.mes(),
        threads_per_me: nic.threads_per_me,
        host_threads: hosts,
        busy_cycles_per_packet: busy.p50_p99(),
        latency_cycles: lat,
        latency_ns: Percentiles {
            p50: lat.p50 as f64 * ns,
            p99: lat.p99 as f64 * ns,
        },
        offered_mpps: line_pps / 1e6,
        combined_capacity_mpps: combined / 1e6,
        simulated_ns: sim_cycles as f64 * ns,
        map_merge_conflicts: conflicts,
        first_mismatch: first_mismatch.map(|(_, m)| m).or_else(|| {
            (map_mismatches > 0).then(|| format!("final maps differ on {map_mismatches} ME(s)"))
        }),
    };
    let latency_histogram = latency.buckets();
    // Their buffers serve the next run's histograms (see `Histogram::recycle`).
    for h in [latency, service, busy] {
        h.recycle();
    }
    Ok(SimOutput {
        report,
        maps: merged,
        merge_refused: refused,
        profile,
        latency_histogram,
    })
}

/// Packets and their busy and service cycles summed, of one ME or all: the means the report
/// needs, equal to [`Histogram::mean`] of the busy and service histograms (each packet an ME
/// ran is one value of each: `MeSim::complete` counts it in its lane's `processed` and
/// `service_cycles` where it records both, and `MeStats::busy_cycles` is the busy
/// histogram's sum), so the same integers divided: the same `f64`.
///
/// Why: a mean read the whole dense part of its histogram (which reaches up to the largest
/// value, ~1,000 counts for the demo's service cycles); the two means of each of Agilio
/// CX's 50 MEs cost ~230 k host instructions and ~5% of the time of a 1,000-frame call
/// (callgrind and perf, `simspeed repeat 1000 1`), a fixed cost per call.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    packets: u64,
    busy: u128,
    service: u128,
}

impl Sums {
    fn of(s: &MeStats) -> Sums {
        let sums = Sums {
            packets: s.processed,
            busy: u128::from(s.busy_cycles),
            service: s.lanes.iter().map(|l| u128::from(l.service_cycles)).sum(),
        };
        debug_assert_eq!(sums.packets, s.busy.count());
        debug_assert_eq!(sums.packets, s.service.count());
        debug_assert_eq!(sums.busy_mean().to_bits(), s.busy.mean().to_bits());
        debug_assert_eq!(sums.service_mean().to_bits(), s.service.mean().to_bits());
        sums
    }

    fn add(self, o: &Sums) -> Sums {
        Sums {
            packets: self.packets + o.packets,
            busy: self.busy + o.busy,
            service: self.service + o.service,
        }
    }

    /// [`Histogram::mean`]: 0 without packets.
    fn mean(sum: u128, n: u64) -> f64 {
        if n == 0 { 0.0 } else { sum as f64 / n as f64 }
    }

    fn busy_mean(&self) -> f64 {
        Sums::mean(self.busy, self.packets)
    }

    fn service_mean(&self) -> f64 {
        Sums::mean(self.service, self.packets)
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
