//! The simulation driver: streams frames through RSS to per-ME event models simulated on a
//! pool of host threads, gathers results in input order, and builds the report.
//!
//! ```text
//!  calling thread                           rayon pool (H host threads)
//!  frames ─► runt? ─► RSS lane ─► ME m ─► batch ─► bounded channel ─► shard m % H: MeSim per ME
//!     ▲                                                                     │
//!     └─ reorder buffer ◄── unbounded channel ◄── FrameResults, final stats ┘
//!         (input order: counts, --out sink)
//! ```
//!
//! Workers never block (results go to an unbounded channel the calling thread drains after
//! every send), so the bounded input channels cannot deadlock; memory stays bounded by the
//! channel capacity plus the lanes' queues. Which host thread simulates an ME never affects
//! a result: an ME's model sees only its own frames (see `lanes`), results are reordered by
//! frame index, and maps are merged in ME order (see `merge`).

use std::collections::VecDeque;
use std::time::Instant;

use crossbeam::channel::{Receiver, Sender, bounded, unbounded};
use nfp_backend::exec::add_profiles;
use vm_core::maps::MapSet;

use crate::engine::PacketEngine;
use crate::error::SimError;
use crate::lanes::{Arrival, FrameResult, MeSim, MeStats, Reference};
use crate::merge::{merge_replicas, same_contents};
use crate::preset::NicPreset;
use crate::rss::{NonIp, Rss};
use crate::stats::{Percentiles, SimReport, Verdict, Verdicts};
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
    /// Frames per channel message.
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
            batch: 256,
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

/// What a shard reports when its input ends.
struct ShardDone {
    stats: Vec<MeStats>,
    /// (ME, its maps).
    maps: Vec<(u32, Option<MapSet>)>,
    /// MEs whose maps differ from their reference engine's.
    map_mismatches: Vec<u32>,
    /// ME 0's maps before any packet, when this shard holds ME 0.
    initial: Option<MapSet>,
    /// Summed instruction profile of this shard's MEs (with `SimConfig::profile`).
    profile: Option<Vec<InsnProfile>>,
}

/// Frames for one shard, and the arrival time of the last frame dispatched to any shard:
/// every frame of this shard that arrives before it is in this or an earlier batch.
struct Batch {
    frames: Vec<(u32, Arrival)>,
    now: u64,
}

/// Frames for each shard, filled by [`feed`] between deliveries.
type Buffers = Vec<Vec<(u32, Arrival)>>;

/// Sends every shard its buffered frames; false if a worker has gone. The buffers are
/// replaced with preallocated ones, so filling them never reallocates.
fn flush(inputs: &[Sender<Batch>], buffers: &mut Buffers, now: u64) -> bool {
    inputs.iter().zip(buffers.iter_mut()).all(|(tx, b)| {
        let cap = b.capacity();
        tx.send(Batch {
            frames: std::mem::replace(b, Vec::with_capacity(cap)),
            now,
        })
        .is_ok()
    })
}

enum Msg {
    Results(Vec<FrameResult>),
    Done(Box<ShardDone>),
    Failed(SimError),
}

/// The calling thread's part: reads `frames`, counts runts, gives every other frame its
/// arrival time and lane (RSS), buffers it for the shard that owns its ME, and calls
/// `deliver(buffers, now)` every `batch` frames and once at the end (`now` = the arrival
/// time of the last frame read). `deliver` returns false to stop reading. Returns the
/// number of frames read.
fn feed<I, D>(
    frames: I,
    config: &SimConfig,
    hosts: usize,
    clock: &mut ArrivalClock,
    collect: &mut Collector,
    mut deliver: D,
) -> Result<u64, SimError>
where
    I: IntoIterator<Item = Result<Vec<u8>, SimError>>,
    D: FnMut(&mut Buffers, u64, &mut Collector) -> Result<bool, SimError>,
{
    let nic = &config.nic;
    let mes = nic.mes().max(1);
    let threads = nic.threads_per_me.max(1);
    let rss = Rss::new(mes * threads, config.non_ip);
    let batch = config.batch.max(1);
    let per_shard = (batch / hosts + 16).min(1 << 16);
    let mut buffers: Buffers = (0..hosts).map(|_| Vec::with_capacity(per_shard)).collect();
    let mut buffered = 0usize;
    let mut index = 0u64;
    for frame in frames {
        let frame = frame?;
        let time = clock.next(frame.len());
        if is_runt(&frame) {
            collect.insert(FrameResult {
                index,
                verdict: Verdict::Runt,
                output: None,
                mismatch: None,
            });
        } else {
            let lane = rss.lane(&frame);
            let (me, thread) = (lane / threads, lane % threads);
            let shard = if hosts == 1 { 0 } else { me as usize % hosts };
            buffers[shard].push((
                me,
                Arrival {
                    index,
                    time,
                    thread,
                    frame,
                },
            ));
            buffered += 1;
        }
        index += 1;
        if buffered >= batch {
            // Every shard gets its frames and the time, so that MEs with no new traffic
            // still finish what they hold and the reorder buffer stays small.
            buffered = 0;
            collect.total = index;
            if !deliver(&mut buffers, time, collect)? {
                return Ok(index); // a worker failed; its message says why
            }
        }
    }
    collect.total = index;
    deliver(&mut buffers, clock.now(), collect)?;
    Ok(index)
}

/// Runs `frames` through the simulated NIC; `sink(index, bytes)` receives, in input order,
/// every passed/transmitted frame after the program (only with `config.keep_output`).
///
/// With one host thread everything runs on the calling thread (one host thread means one
/// core: reading and dispatching frames is part of the work); with more, the calling thread
/// reads and dispatches while `host_threads` workers simulate.
pub fn simulate<F, I, S>(
    frames: I,
    config: &SimConfig,
    engines: &F,
    reference: Option<ReferenceFactory<'_>>,
    mut sink: S,
) -> Result<SimOutput, SimError>
where
    F: EngineFactory,
    I: IntoIterator<Item = Result<Vec<u8>, SimError>>,
    S: FnMut(u64, &[u8]) -> Result<(), SimError>,
{
    let nic = &config.nic;
    let _span = tracing::debug_span!("sim.run", nic = %nic.name, mes = nic.mes()).entered();
    let started = Instant::now();
    let mes = nic.mes().max(1);
    let hosts = config.host_threads.clamp(1, mes as usize);
    let mut clock = ArrivalClock::new(nic.line_rate.bits_per_sec(), nic.clock_hz);
    let mut collect = Collector::default();
    let mut done: Vec<ShardDone> = Vec::new();
    if hosts == 1 {
        let mut shard = Shard::new(0, 1, config, engines, reference)?;
        let mut out = Vec::new();
        feed(
            frames,
            config,
            1,
            &mut clock,
            &mut collect,
            |buffers, now, collect| {
                shard.process(buffers[0].drain(..), now, &mut out);
                for r in out.drain(..) {
                    collect.insert(r);
                }
                collect.emit(&mut sink)?;
                Ok(true)
            },
        )?;
        done.push(shard.finish(&mut out));
        for r in out.drain(..) {
            collect.insert(r);
        }
        collect.emit(&mut sink)?;
        collect.shards_done = 1;
    } else {
        simulate_threaded(
            frames,
            config,
            hosts,
            engines,
            reference,
            &mut sink,
            &mut clock,
            &mut collect,
            &mut done,
        )?;
    }
    if collect.shards_done != hosts {
        return Err(SimError::Host(format!(
            "{} of {hosts} simulation threads ended without reporting",
            hosts - collect.shards_done
        )));
    }
    if collect.next != collect.total {
        return Err(SimError::Host(format!(
            "{} of {} frames never got a result",
            collect.total - collect.next,
            collect.total
        )));
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(build_output(config, hosts, &clock, collect, done, elapsed))
}

/// [`simulate`] with `hosts` (>= 2) worker threads, shard `s` simulating the MEs `m` with
/// `m % hosts == s`.
#[allow(clippy::too_many_arguments)]
fn simulate_threaded<F, I, S>(
    frames: I,
    config: &SimConfig,
    hosts: usize,
    engines: &F,
    reference: Option<ReferenceFactory<'_>>,
    sink: &mut S,
    clock: &mut ArrivalClock,
    collect: &mut Collector,
    done: &mut Vec<ShardDone>,
) -> Result<(), SimError>
where
    F: EngineFactory,
    I: IntoIterator<Item = Result<Vec<u8>, SimError>>,
    S: FnMut(u64, &[u8]) -> Result<(), SimError>,
{
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(hosts)
        .build()
        .map_err(|e| SimError::Host(e.to_string()))?;
    let (res_tx, res_rx) = unbounded::<Msg>();
    let mut failure: Option<SimError> = None;
    pool.in_place_scope(|scope| {
        let mut inputs: Vec<Sender<Batch>> = Vec::new();
        for shard in 0..hosts {
            let (tx, rx) = bounded::<Batch>(4);
            inputs.push(tx);
            let res_tx = res_tx.clone();
            scope.spawn(move |_| {
                let msg = match shard_worker(shard, hosts, rx, &res_tx, config, engines, reference)
                {
                    Ok(d) => Msg::Done(Box::new(d)),
                    Err(e) => Msg::Failed(e),
                };
                let _ = res_tx.send(msg);
            });
        }
        drop(res_tx);
        let fed = feed(
            frames,
            config,
            hosts,
            clock,
            collect,
            |buffers, now, collect| {
                if !flush(&inputs, buffers, now) {
                    return Ok(false);
                }
                let mut failed = None;
                collect.drain(&res_rx, done, &mut failed, sink, false)?;
                match failed {
                    Some(e) => Err(e),
                    None => Ok(true),
                }
            },
        );
        if let Err(e) = fed {
            failure = Some(e);
        }
        drop(inputs);
        if let Err(e) = collect.drain(&res_rx, done, &mut failure, sink, true) {
            failure.get_or_insert(e);
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The MEs one host thread simulates: `m % hosts == shard`, so ME `m` is `sims[m / hosts]`.
struct Shard<E: PacketEngine> {
    hosts: usize,
    sims: Vec<MeSim<E>>,
    /// ME 0's maps before any packet, when this shard holds ME 0.
    initial: Option<MapSet>,
}

impl<E: PacketEngine> Shard<E> {
    fn new<F: EngineFactory<Engine = E>>(
        shard: usize,
        hosts: usize,
        config: &SimConfig,
        engines: &F,
        reference: Option<ReferenceFactory<'_>>,
    ) -> Result<Shard<E>, SimError> {
        let nic = &config.nic;
        let threads = nic.threads_per_me.max(1);
        let mut initial = None;
        let mut sims = Vec::new();
        for me in (0..nic.mes().max(1)).filter(|m| *m as usize % hosts == shard) {
            let mut engine = engines.build(me, threads)?;
            if config.profile {
                engine.enable_profile();
            }
            if me == 0 {
                initial = engine.maps().cloned();
            }
            let reference = match reference {
                Some(r) => Some(r(me, 1)?),
                None => None,
            };
            sims.push(
                MeSim::new(
                    me,
                    engine,
                    reference,
                    threads,
                    nic.queue_depth,
                    config.keep_output,
                )
                .with_fw_cycles(nic.fw_cycles_per_packet),
            );
        }
        Ok(Shard {
            hosts,
            sims,
            initial,
        })
    }

    /// Feeds a batch of this shard's frames and brings every ME up to `now`.
    fn process(
        &mut self,
        frames: impl Iterator<Item = (u32, Arrival)>,
        now: u64,
        out: &mut Vec<FrameResult>,
    ) {
        for (me, arrival) in frames {
            let i = if self.hosts == 1 {
                me as usize
            } else {
                me as usize / self.hosts
            };
            if let Some(sim) = self.sims.get_mut(i) {
                sim.arrive(arrival, out);
            }
        }
        for sim in &mut self.sims {
            sim.advance_to(now, out);
        }
    }

    /// Runs what the MEs still hold; their results go to `out`.
    fn finish(self, out: &mut Vec<FrameResult>) -> ShardDone {
        let mut stats = Vec::new();
        let mut maps = Vec::new();
        let mut map_mismatches = Vec::new();
        let mut profile: Option<Vec<InsnProfile>> = None;
        for sim in self.sims {
            let (st, engine, reference) = sim.finish(out);
            if let (Some(r), Some(m)) = (reference.as_ref().and_then(|r| r.maps()), engine.maps())
                && !same_contents(r, m)
            {
                map_mismatches.push(st.me);
            }
            if let Some(p) = engine.profile() {
                add_profiles(profile.get_or_insert_with(Vec::new), p);
            }
            maps.push((st.me, engine.maps().cloned()));
            stats.push(st);
        }
        ShardDone {
            stats,
            maps,
            map_mismatches,
            initial: self.initial,
            profile,
        }
    }
}

/// Simulates shard `shard` of `hosts` from `rx` until it closes.
fn shard_worker<F: EngineFactory>(
    shard: usize,
    hosts: usize,
    rx: Receiver<Batch>,
    res_tx: &Sender<Msg>,
    config: &SimConfig,
    engines: &F,
    reference: Option<ReferenceFactory<'_>>,
) -> Result<ShardDone, SimError> {
    let _span = tracing::debug_span!("sim.shard", shard).entered();
    let mut shard = Shard::new(shard, hosts, config, engines, reference)?;
    let mut out = Vec::new();
    for mut batch in rx {
        shard.process(batch.frames.drain(..), batch.now, &mut out);
        if !out.is_empty() {
            let cap = out.capacity();
            let _ = res_tx.send(Msg::Results(std::mem::replace(
                &mut out,
                Vec::with_capacity(cap),
            )));
        }
    }
    let done = shard.finish(&mut out);
    if !out.is_empty() {
        let _ = res_tx.send(Msg::Results(out));
    }
    Ok(done)
}

/// Puts results back into input order and counts them.
#[derive(Default)]
struct Collector {
    /// Results not yet emitted: slot `i` is frame `next + i`.
    pending: VecDeque<Option<FrameResult>>,
    next: u64,
    total: u64,
    verdicts: Verdicts,
    queue_drops: u64,
    mismatches: u64,
    first_mismatch: Option<String>,
    shards_done: usize,
}

impl Collector {
    /// Stores a result until every earlier frame has one.
    fn insert(&mut self, r: FrameResult) {
        let Some(slot) = r.index.checked_sub(self.next) else {
            return; // already emitted: cannot happen, each frame has one result
        };
        let slot = slot as usize;
        if self.pending.len() <= slot {
            self.pending.resize_with(slot + 1, || None);
        }
        self.pending[slot] = Some(r);
    }

    /// Takes available results (all of them until every shard is done, with `all`), emitting
    /// frames in order.
    fn drain<S: FnMut(u64, &[u8]) -> Result<(), SimError>>(
        &mut self,
        rx: &Receiver<Msg>,
        done: &mut Vec<ShardDone>,
        failure: &mut Option<SimError>,
        sink: &mut S,
        all: bool,
    ) -> Result<(), SimError> {
        loop {
            let msg = if all {
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break, // every worker has finished
                }
            } else {
                match rx.try_recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            };
            match msg {
                Msg::Results(rs) => {
                    for r in rs {
                        self.insert(r);
                    }
                }
                Msg::Done(d) => {
                    self.shards_done += 1;
                    done.push(*d);
                }
                Msg::Failed(e) => {
                    failure.get_or_insert(e);
                }
            }
            self.emit(sink)?;
        }
        self.emit(sink)
    }

    fn emit<S: FnMut(u64, &[u8]) -> Result<(), SimError>>(
        &mut self,
        sink: &mut S,
    ) -> Result<(), SimError> {
        while let Some(Some(r)) = self.pending.front_mut().map(Option::take) {
            self.pending.pop_front();
            if self.verdicts.count(r.verdict) {
                self.queue_drops += 1;
            }
            if let Some(m) = r.mismatch {
                self.mismatches += 1;
                self.first_mismatch.get_or_insert(m);
            }
            if let Some(bytes) = r.output {
                sink(self.next, &bytes)?;
            }
            self.next += 1;
        }
        Ok(())
    }
}

fn build_output(
    config: &SimConfig,
    hosts: usize,
    clock: &ArrivalClock,
    collect: Collector,
    mut done: Vec<ShardDone>,
    elapsed: f64,
) -> SimOutput {
    let nic = &config.nic;
    let mut stats: Vec<MeStats> = done.iter_mut().flat_map(|d| d.stats.drain(..)).collect();
    stats.sort_by_key(|s| s.me);
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
        verdicts: collect.verdicts,
        queue_drops: collect.queue_drops,
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
        mismatches: collect.mismatches + map_mismatches,
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
        first_mismatch: collect.first_mismatch.or_else(|| {
            (map_mismatches > 0).then(|| format!("final maps differ on {map_mismatches} ME(s)"))
        }),
    };
    SimOutput {
        report,
        maps: merged,
        merge_refused: refused,
        profile,
        latency_histogram: latency.buckets(),
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
