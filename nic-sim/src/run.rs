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
}

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
}

/// Frames for one shard, and the arrival time of the last frame dispatched to any shard:
/// every frame of this shard that arrives before it is in this or an earlier batch.
struct Batch {
    frames: Vec<(u32, Arrival)>,
    now: u64,
}

/// Sends every shard its buffered frames; false if a worker has gone.
fn flush(inputs: &[Sender<Batch>], buffers: &mut [Vec<(u32, Arrival)>], now: u64) -> bool {
    inputs.iter().zip(buffers.iter_mut()).all(|(tx, b)| {
        tx.send(Batch {
            frames: std::mem::take(b),
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

/// Runs `frames` through the simulated NIC; `sink(index, bytes)` receives, in input order,
/// every passed/transmitted frame after the program (only with `config.keep_output`).
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
    let threads = nic.threads_per_me.max(1);
    let hosts = config.host_threads.clamp(1, mes as usize);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(hosts)
        .build()
        .map_err(|e| SimError::Host(e.to_string()))?;
    let rss = Rss::new(mes * threads, config.non_ip);
    let mut clock = ArrivalClock::new(nic.line_rate.bits_per_sec(), nic.clock_hz);
    let mut collect = Collector::default();
    let batch = config.batch.max(1);

    let (res_tx, res_rx) = unbounded::<Msg>();
    let mut done: Vec<ShardDone> = Vec::new();
    let mut failure: Option<SimError> = None;
    pool.in_place_scope(|scope| {
        let mut inputs: Vec<Sender<Batch>> = Vec::new();
        for shard in 0..hosts {
            let (tx, rx) = bounded::<Batch>(4);
            inputs.push(tx);
            let res_tx = res_tx.clone();
            let owned: Vec<u32> = (0..mes).filter(|m| *m as usize % hosts == shard).collect();
            scope.spawn(move |_| {
                let msg = match shard_worker(shard, &owned, rx, &res_tx, config, engines, reference)
                {
                    Ok(d) => Msg::Done(Box::new(d)),
                    Err(e) => Msg::Failed(e),
                };
                let _ = res_tx.send(msg);
            });
        }
        drop(res_tx);
        let mut buffers: Vec<Vec<(u32, Arrival)>> = vec![Vec::new(); hosts];
        let mut buffered = 0usize;
        let mut index = 0u64;
        for frame in frames {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
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
                buffers[me as usize % hosts].push((
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
                if !flush(&inputs, &mut buffers, time) {
                    break; // a worker failed; its message says why
                }
                if let Err(e) = collect.drain(&res_rx, &mut done, &mut failure, &mut sink, false) {
                    failure.get_or_insert(e);
                }
                if failure.is_some() {
                    break;
                }
            }
        }
        collect.total = index;
        flush(&inputs, &mut buffers, clock.now());
        drop(inputs);
        if let Err(e) = collect.drain(&res_rx, &mut done, &mut failure, &mut sink, true) {
            failure.get_or_insert(e);
        }
    });
    if let Some(e) = failure {
        return Err(e);
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

/// Simulates the MEs `owned` (ascending) from `rx` until it closes.
fn shard_worker<F: EngineFactory>(
    shard: usize,
    owned: &[u32],
    rx: Receiver<Batch>,
    res_tx: &Sender<Msg>,
    config: &SimConfig,
    engines: &F,
    reference: Option<ReferenceFactory<'_>>,
) -> Result<ShardDone, SimError> {
    let _span = tracing::debug_span!("sim.shard", shard, mes = owned.len()).entered();
    let nic = &config.nic;
    let threads = nic.threads_per_me.max(1);
    let mut initial = None;
    let mut sims: Vec<MeSim<F::Engine>> = Vec::with_capacity(owned.len());
    for &me in owned {
        let engine = engines.build(me, threads)?;
        if me == 0 {
            initial = Some(engine.maps().cloned());
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
    let slot = |me: u32| owned.binary_search(&me).ok();
    let mut out = Vec::new();
    for batch in rx {
        for (me, arrival) in batch.frames {
            if let Some(i) = slot(me) {
                sims[i].arrive(arrival, &mut out);
            }
        }
        for sim in &mut sims {
            sim.advance_to(batch.now, &mut out);
        }
        if !out.is_empty() {
            let _ = res_tx.send(Msg::Results(std::mem::take(&mut out)));
        }
    }
    let mut stats = Vec::new();
    let mut maps = Vec::new();
    let mut map_mismatches = Vec::new();
    for sim in sims {
        let mut out = Vec::new();
        let (st, engine, reference) = sim.finish(&mut out);
        if !out.is_empty() {
            let _ = res_tx.send(Msg::Results(out));
        }
        if let (Some(r), Some(m)) = (reference.as_ref().and_then(|r| r.maps()), engine.maps())
            && !same_contents(r, m)
        {
            map_mismatches.push(st.me);
        }
        maps.push((st.me, engine.maps().cloned()));
        stats.push(st);
    }
    Ok(ShardDone {
        stats,
        maps,
        map_mismatches,
        initial: initial.flatten(),
    })
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
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
