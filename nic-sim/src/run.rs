//! The simulation driver: streams frames through RSS to per-ME event models simulated on a
//! pool of host threads, gathers results in input order, and builds the report.
//!
//! ```text
//!  calling thread = shard 0                        H - 1 rayon workers
//!  frames ─► runt? ─► RSS lane ─► ME m ─┬─ m % H = 0: its MeSim, at once (frame borrowed)
//!                                       └─ else: byte arena ─► bounded channel ─► shard m % H
//!     ▲                                      ▲ (arenas come back for reuse)          │
//!     └─ with --out: reorder buffer ◄── unbounded channel ◄── FrameResults, final stats ┘
//! ```
//!
//! Workers never block (results go to an unbounded channel the calling thread drains after
//! every send), so the bounded input channels cannot deadlock; memory stays bounded by the
//! channel capacity plus the lanes' queues. Which host thread simulates an ME never affects
//! a result: an ME's model sees only its own frames (see `lanes`), counts and mismatches are
//! order-free sums per ME (the first mismatch is the lowest frame index), `--out` frames are
//! reordered by frame index, and maps are merged in ME order (see `merge`).

use std::time::Instant;

use crossbeam::channel::{bounded, unbounded};
use nfp_backend::exec::add_profiles;
use vm_core::maps::MapSet;

use crate::dispatch::{Batch, Collector, Msg, Placement, Remote, Shard, ShardDone, shard_worker};
use crate::engine::PacketEngine;
use crate::error::SimError;
use crate::lanes::{Arrival, FrameResult, MeStats, Reference};
use crate::merge::merge_replicas;
use crate::preset::NicPreset;
use crate::rss::{NonIp, Rss};
use crate::stats::{Percentiles, SimReport, Verdicts};
use crate::timing::{ArrivalClock, Histogram, MeLoad, me_capacity_pps, modeled_pps};
use crate::traffic::is_runt;

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
    /// Frames read between deliveries to the other host threads (never changes a result):
    /// larger batches mean fewer channel messages and thread wake-ups, smaller ones a
    /// smaller `--out` reorder buffer.
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
            batch: 1024,
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

/// Builds the engine of one ME (called on the host thread that simulates it).
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
/// (`&[u8]`): the simulator copies a frame only when it crosses to another host thread or
/// waits in a lane's queue.
///
/// The calling thread is one of the `host_threads`: it reads and dispatches every frame and
/// simulates its own share of the MEs; the others simulate theirs (see `dispatch`).
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
    let mes = nic.mes().max(1);
    let hosts = config.host_threads.clamp(1, mes as usize);
    let mut clock = ArrivalClock::new(nic.line_rate.bits_per_sec(), nic.clock_hz);
    let mut collect = Collector::new(config.keep_output);
    let mut done: Vec<ShardDone> = Vec::new();
    let placement = Placement::new(mes, hosts, reference.is_some());
    let mut local = Shard::new(0, &placement, config, engines, reference)?;
    if hosts == 1 {
        let mut remote = Remote::none();
        let mut out = Vec::new();
        feed(
            frames,
            config,
            hosts,
            &placement,
            &mut clock,
            &mut collect,
            &mut local,
            &mut remote,
            &mut out,
            &mut sink,
        )?;
        done.push(local.finish(&mut out));
        collect.take(&mut out, &mut sink)?;
        collect.shards_done = 1;
    } else {
        simulate_threaded(
            frames,
            config,
            hosts,
            &placement,
            engines,
            reference,
            &mut sink,
            &mut clock,
            &mut collect,
            local,
            &mut done,
        )?;
    }
    if collect.shards_done != hosts {
        return Err(SimError::Host(format!(
            "{} of {hosts} simulation threads ended without reporting",
            hosts - collect.shards_done
        )));
    }
    let elapsed = started.elapsed().as_secs_f64();
    build_output(config, hosts, &clock, collect, done, elapsed)
}

/// Bytes of frames after which a batch is sent even if it holds fewer than `batch` frames:
/// memory in flight stays under `IN_FLIGHT + 2` such arenas per other host thread.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// Batches queued per other host thread: enough for the reader to run ahead of a worker
/// that the OS descheduled for a moment (a shared machine), and the other way round.
const IN_FLIGHT: usize = 8;

/// The calling thread's part: reads `frames`, counts runts, gives every other frame its
/// arrival time and lane (RSS), simulates it at once when its ME is in `local`, or buffers
/// it for the shard that owns its ME; every `batch` frames and at the end it sends the
/// buffers, brings its own MEs up to the time of the last frame read, and collects results.
#[allow(clippy::too_many_arguments)]
fn feed<E, I, B, S>(
    frames: I,
    config: &SimConfig,
    hosts: usize,
    placement: &Placement,
    clock: &mut ArrivalClock,
    collect: &mut Collector,
    local: &mut Shard<E>,
    remote: &mut Remote,
    out: &mut Vec<FrameResult>,
    sink: &mut S,
) -> Result<(), SimError>
where
    E: PacketEngine,
    I: IntoIterator<Item = Result<B, SimError>>,
    B: AsRef<[u8]>,
    S: FnMut(u64, &[u8]) -> Result<(), SimError>,
{
    let nic = &config.nic;
    let mes = nic.mes().max(1);
    let threads = nic.threads_per_me.max(1);
    let rss = Rss::new(mes * threads, config.non_ip);
    let batch = config.batch.max(1);
    let per_shard = (batch / hosts + 16).min(1 << 16);
    for b in &mut remote.buffers {
        b.reserve(per_shard);
    }
    let mut pending = 0usize;
    let mut index = 0u64;
    for frame in frames {
        let frame = frame?;
        let frame = frame.as_ref();
        let time = clock.next(frame.len());
        if is_runt(frame) {
            collect.runt(index);
        } else {
            let lane = rss.lane(frame);
            let (me, thread) = (lane / threads, lane % threads);
            let a = Arrival {
                index,
                time,
                thread,
                frame,
            };
            let (shard, slot) = placement.of(me);
            if shard == 0 {
                local.arrive(slot, a, out);
            } else if let Some(b) = remote.buffers.get_mut(shard - 1) {
                b.push(slot as u32, a);
                // Large frames: deliver early so a batch's arena stays small.
                if b.bytes_len() >= MAX_BATCH_BYTES {
                    pending = batch;
                }
            }
        }
        index += 1;
        pending += 1;
        if pending >= batch {
            pending = 0;
            collect.total = index;
            if !deliver(time, collect, local, remote, out, sink)? {
                return Ok(());
            }
        }
    }
    collect.total = index;
    deliver(clock.now(), collect, local, remote, out, sink)?;
    Ok(())
}

/// Sends the other shards their frames and `now`, brings the local MEs up to `now` (so
/// MEs with no new traffic still finish what they hold and the reorder buffer stays small),
/// and collects results; false if a worker has gone (its message says why).
fn deliver<E, S>(
    now: u64,
    collect: &mut Collector,
    local: &mut Shard<E>,
    remote: &mut Remote,
    out: &mut Vec<FrameResult>,
    sink: &mut S,
) -> Result<bool, SimError>
where
    E: PacketEngine,
    S: FnMut(u64, &[u8]) -> Result<(), SimError>,
{
    if !remote.flush(now) {
        return Ok(false);
    }
    local.advance_to(now, out);
    collect.take(out, sink)?;
    if let Some(rx) = remote.results.as_ref() {
        let mut failed = None;
        // Workers report `Done` only after their input closes, which has not happened.
        let mut done = Vec::new();
        collect.drain(rx, &mut done, &mut failed, sink, false)?;
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(true)
}

/// [`simulate`] with `hosts` (>= 2) host threads: the calling thread simulates shard 0
/// (`local`) and `hosts - 1` workers the others, shard `s` simulating the MEs `placement`
/// gives it.
#[allow(clippy::too_many_arguments)]
fn simulate_threaded<F, I, B, S>(
    frames: I,
    config: &SimConfig,
    hosts: usize,
    placement: &Placement,
    engines: &F,
    reference: Option<ReferenceFactory<'_>>,
    sink: &mut S,
    clock: &mut ArrivalClock,
    collect: &mut Collector,
    mut local: Shard<F::Engine>,
    done: &mut Vec<ShardDone>,
) -> Result<(), SimError>
where
    F: EngineFactory,
    I: IntoIterator<Item = Result<B, SimError>>,
    B: AsRef<[u8]>,
    S: FnMut(u64, &[u8]) -> Result<(), SimError>,
{
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(hosts - 1)
        .build()
        .map_err(|e| SimError::Host(e.to_string()))?;
    let (res_tx, res_rx) = unbounded::<Msg>();
    let (recycle_tx, recycle_rx) = unbounded::<Batch>();
    let mut failure: Option<SimError> = None;
    pool.in_place_scope(|scope| {
        let mut remote = Remote::none();
        for shard in 1..hosts {
            let (tx, rx) = bounded::<Batch>(IN_FLIGHT);
            remote.inputs.push(tx);
            remote.buffers.push(Batch::default());
            let res_tx = res_tx.clone();
            let recycle = recycle_tx.clone();
            scope.spawn(move |_| {
                let msg = match shard_worker(
                    shard, placement, rx, &recycle, &res_tx, config, engines, reference,
                ) {
                    Ok(d) => Msg::Done(Box::new(d)),
                    Err(e) => Msg::Failed(e),
                };
                let _ = res_tx.send(msg);
            });
        }
        drop(res_tx);
        drop(recycle_tx);
        remote.recycle = Some(recycle_rx);
        remote.results = Some(res_rx.clone());
        let mut out = Vec::new();
        let fed = feed(
            frames,
            config,
            hosts,
            placement,
            clock,
            collect,
            &mut local,
            &mut remote,
            &mut out,
            sink,
        );
        if let Err(e) = fed {
            failure = Some(e);
        }
        drop(remote);
        done.push(local.finish(&mut out));
        collect.shards_done += 1;
        if let Err(e) = collect.take(&mut out, sink) {
            failure.get_or_insert(e);
        }
        if let Err(e) = collect.drain(&res_rx, done, &mut failure, sink, true) {
            failure.get_or_insert(e);
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn build_output(
    config: &SimConfig,
    hosts: usize,
    clock: &ArrivalClock,
    collect: Collector,
    mut done: Vec<ShardDone>,
    elapsed: f64,
) -> Result<SimOutput, SimError> {
    let nic = &config.nic;
    let mut stats: Vec<MeStats> = done.iter_mut().flat_map(|d| d.stats.drain(..)).collect();
    stats.sort_by_key(|s| s.me);
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
    let mut maps: Vec<(u32, Option<MapSet>)> =
        done.iter_mut().flat_map(|d| d.maps.drain(..)).collect();
    maps.sort_by_key(|(me, _)| *me);
    let map_mismatches: u64 = done.iter().map(|d| d.map_mismatches.len() as u64).sum();
    let initial = done.iter_mut().find_map(|d| d.initial.take());
    // Sums are order-independent, so the host thread count cannot change the profile.
    let mut profile: Option<Vec<InsnProfile>> = None;
    for p in done.iter_mut().filter_map(|d| d.profile.take()) {
        add_profiles(profile.get_or_insert_with(Vec::new), &p);
    }

    let (mut service, mut busy, mut latency) = (
        Histogram::default(),
        Histogram::default(),
        Histogram::default(),
    );
    for s in &stats {
        service.merge(&s.service);
        busy.merge(&s.busy);
        latency.merge(&s.latency);
    }
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
        .map(|s| MeLoad {
            share: (s.processed + s.queue_drops) as f64 / offered.max(1) as f64,
            capacity_pps: me_capacity_pps(
                s.busy.mean(),
                s.service.mean(),
                s.lanes_used.min(nic.threads_per_me),
                nic.clock_hz,
            ),
        })
        .collect();
    // Every ME with all its threads busy at the average per-packet cost.
    let combined = if busy.count() == 0 {
        0.0
    } else {
        f64::from(nic.mes())
            * me_capacity_pps(
                busy.mean(),
                service.mean(),
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
    let all_loads: Vec<MeLoad> = loads.iter().copied().chain(lane_loads).collect();
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
            modeled_pps(line_pps, &all_loads) / 1e6
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
    Ok(SimOutput {
        report,
        maps: merged,
        merge_refused: refused,
        profile,
        latency_histogram: latency.buckets(),
    })
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
