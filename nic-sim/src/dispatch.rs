//! How frames reach the host threads and how their results come back: shards of MEs, the
//! batches the calling thread sends to the other shards, and the collector that releases
//! `--out` frames in input order.
//!
//! The calling thread is itself shard 0: it reads, hashes and times every frame, simulates
//! the frames of its own MEs on the spot (borrowed, never copied), and copies the others'
//! into one byte arena per shard, sent every `batch` frames. With `H` host threads there are
//! exactly `H` busy threads (no reader thread competing for a core), and the arenas travel
//! back to the reader for reuse, so nothing is allocated per frame.
//!
//! Counts, statistics and mismatches are kept per ME and summed at the end (order-free), so
//! only runs that write `--out` send per-frame results back ([`Collector`]).

use std::collections::VecDeque;

use crossbeam::channel::{Receiver, Sender, TryRecvError};
use nfp_backend::exec::{InsnProfile, add_profiles};
use vm_core::maps::MapSet;

use crate::engine::PacketEngine;
use crate::error::SimError;
use crate::lanes::{Arrival, FrameResult, MeSim, MeStats};
use crate::merge::same_contents;
use crate::run::{EngineFactory, ReferenceFactory, SimConfig};
use crate::stats::Verdict;

/// What a shard reports when its input ends.
pub(crate) struct ShardDone {
    pub stats: Vec<MeStats>,
    /// (ME, its maps).
    pub maps: Vec<(u32, Option<MapSet>)>,
    /// MEs whose maps differ from their reference engine's.
    pub map_mismatches: Vec<u32>,
    /// ME 0's maps before any packet, when this shard holds ME 0.
    pub initial: Option<MapSet>,
    /// Summed instruction profile of this shard's MEs (with `SimConfig::profile`).
    pub profile: Option<Vec<InsnProfile>>,
}

/// One frame of a [`Batch`]; its bytes end at `end` in the arena.
#[derive(Debug, Clone, Copy)]
struct Meta {
    index: u64,
    time: u64,
    /// The ME's position in its shard.
    me: u32,
    thread: u32,
    end: usize,
}

/// Frames for one shard (bytes back to back in one arena), and the arrival time of the
/// last frame read: every frame of this shard that arrives before it is in this or an
/// earlier batch.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    bytes: Vec<u8>,
    frames: Vec<Meta>,
    now: u64,
}

impl Batch {
    /// Appends a frame for the shard's ME `me`.
    pub fn push(&mut self, me: u32, a: Arrival<'_>) {
        self.bytes.extend_from_slice(a.frame);
        self.frames.push(Meta {
            index: a.index,
            time: a.time,
            me,
            thread: a.thread,
            end: self.bytes.len(),
        });
    }

    /// Bytes of frames held.
    pub fn bytes_len(&self) -> usize {
        self.bytes.len()
    }

    /// Room for `frames` more frames of 64 bytes without reallocating.
    pub fn reserve(&mut self, frames: usize) {
        self.frames.reserve(frames);
        self.bytes.reserve(frames * 64);
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.frames.clear();
    }
}

pub(crate) enum Msg {
    Results(Vec<FrameResult>),
    Done(Box<ShardDone>),
    Failed(SimError),
}

/// Which host thread (shard) simulates each ME, and the ME's position in that shard.
///
/// The calling thread (shard 0) also reads, times, RSS-hashes and dispatches every frame,
/// so an equal share of MEs made it the bottleneck with two host threads (1.4-1.5x instead
/// of ~2x). It therefore gets a smaller share: with `r` the dispatch cost of a frame relative
/// to its simulation cost, shard 0 and each of the `H - 1` others are equally busy when
/// shard 0 holds the fraction `f = (1 - (H - 1) r) / H` of the MEs (0 when negative).
/// `r` is not measured at run time: an ME holds state once it has seen a frame, so it
/// could not move afterwards, and a placement fixed by timing would make a run's host
/// work depend on the machine's load. It is a fixed estimate from callgrind (host insns
/// per frame, 2 host threads, differences of 20k/40k-frame runs): dispatch including traffic
/// generation is ~1,000 insns/frame in every case, simulation varies with the program:
/// demo UDP filter ~3,800 (r 0.25), ipv4 test program ~1,500 (r 0.7), the same checked
/// ~2,200 (r 0.48). 0.45 unchecked / 0.35 checked keeps the busiest thread within ~15% of
/// the ideal split on all three (the equal split was 24-41% above it).
/// Results never depend on the placement: every ME
/// is simulated whole by one thread, and everything is summed or ordered by ME / frame.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    /// ME `m` is `sims[slot]` of shard `shard`: `(shard, slot)`.
    of: Vec<(u32, u32)>,
}

impl Placement {
    /// Dispatch cost relative to simulation cost, without / with the reference check.
    const DISPATCH_RATIO: [f64; 2] = [0.45, 0.35];

    /// `mes` MEs over `hosts` host threads; `checked` when the reference check runs.
    pub fn new(mes: u32, hosts: usize, checked: bool) -> Placement {
        let hosts = hosts.max(1);
        let r = Self::DISPATCH_RATIO[usize::from(checked)];
        let f = if hosts == 1 {
            1.0
        } else {
            ((1.0 - (hosts - 1) as f64 * r) / hosts as f64).max(0.0)
        };
        let share = |s: usize| {
            if s == 0 {
                f
            } else {
                (1.0 - f) / (hosts - 1) as f64
            }
        };
        // Each ME goes to the shard furthest below its share (lowest shard on ties), so
        // shard 0's MEs are spread over the ME numbers, and the table is deterministic.
        let mut held = vec![0u32; hosts];
        let of = (0..mes.max(1))
            .map(|_| {
                let mut best = 0usize;
                let mut best_key = f64::INFINITY;
                for (s, h) in held.iter().enumerate() {
                    let t = share(s);
                    if t <= 0.0 {
                        continue;
                    }
                    let key = (f64::from(*h) + 1.0) / t;
                    if key < best_key {
                        best_key = key;
                        best = s;
                    }
                }
                let slot = held[best];
                held[best] += 1;
                (best as u32, slot)
            })
            .collect();
        Placement { of }
    }

    /// `(shard, slot)` of ME `me`.
    #[inline]
    pub fn of(&self, me: u32) -> (usize, usize) {
        let (s, i) = self.of.get(me as usize).copied().unwrap_or((0, u32::MAX));
        (s as usize, i as usize)
    }

    /// The MEs of shard `shard`, by slot.
    fn mes_of(&self, shard: usize) -> impl Iterator<Item = u32> + '_ {
        (0u32..)
            .zip(self.of.iter())
            .filter(move |(_, (s, _))| *s as usize == shard)
            .map(|(m, _)| m)
    }
}

/// The MEs one host thread simulates: those [`Placement`] gives it, in slot order.
pub(crate) struct Shard<E: PacketEngine> {
    sims: Vec<MeSim<E>>,
    /// ME 0's maps before any packet, when this shard holds ME 0.
    initial: Option<MapSet>,
}

impl<E: PacketEngine> Shard<E> {
    pub fn new<F: EngineFactory<Engine = E>>(
        shard: usize,
        placement: &Placement,
        config: &SimConfig,
        engines: &F,
        reference: Option<ReferenceFactory<'_>>,
    ) -> Result<Shard<E>, SimError> {
        let nic = &config.nic;
        let threads = nic.threads_per_me.max(1);
        let mut initial = None;
        let mut sims = Vec::new();
        for me in placement.mes_of(shard) {
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
        Ok(Shard { sims, initial })
    }

    /// Feeds one frame to the shard's ME `me`.
    #[inline]
    pub fn arrive(&mut self, me: usize, a: Arrival<'_>, out: &mut Vec<FrameResult>) {
        if let Some(sim) = self.sims.get_mut(me) {
            sim.arrive(a, out);
        }
    }

    /// Brings every ME up to `now` (MEs with no new traffic finish what they hold).
    pub fn advance_to(&mut self, now: u64, out: &mut Vec<FrameResult>) {
        for sim in &mut self.sims {
            sim.advance_to(now, out);
        }
    }

    /// Feeds a batch and brings every ME up to its time.
    fn process(&mut self, batch: &Batch, out: &mut Vec<FrameResult>) {
        let mut start = 0;
        for m in &batch.frames {
            let frame = batch.bytes.get(start..m.end).unwrap_or_default();
            start = m.end;
            self.arrive(
                m.me as usize,
                Arrival {
                    index: m.index,
                    time: m.time,
                    thread: m.thread,
                    frame,
                },
                out,
            );
        }
        self.advance_to(batch.now, out);
    }

    /// Runs what the MEs still hold; their results go to `out`.
    pub fn finish(self, out: &mut Vec<FrameResult>) -> ShardDone {
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

/// Simulates shard `shard` of `hosts` from `rx` until it closes; emptied batches go back on
/// `recycle`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn shard_worker<F: EngineFactory>(
    shard: usize,
    placement: &Placement,
    rx: Receiver<Batch>,
    recycle: &Sender<Batch>,
    res_tx: &Sender<Msg>,
    config: &SimConfig,
    engines: &F,
    reference: Option<ReferenceFactory<'_>>,
) -> Result<ShardDone, SimError> {
    let _span = tracing::debug_span!("sim.shard", shard).entered();
    let mut shard = Shard::new(shard, placement, config, engines, reference)?;
    let mut out = Vec::new();
    for mut batch in rx {
        shard.process(&batch, &mut out);
        if !out.is_empty() {
            let cap = out.capacity();
            let _ = res_tx.send(Msg::Results(std::mem::replace(
                &mut out,
                Vec::with_capacity(cap),
            )));
        }
        batch.clear();
        let _ = recycle.send(batch);
    }
    let done = shard.finish(&mut out);
    if !out.is_empty() {
        let _ = res_tx.send(Msg::Results(out));
    }
    Ok(done)
}

/// The other shards, seen from the calling thread (none with one host thread).
pub(crate) struct Remote {
    /// Input of shard `s + 1`.
    pub inputs: Vec<Sender<Batch>>,
    /// Frames buffered for shard `s + 1`.
    pub buffers: Vec<Batch>,
    /// Emptied batches coming back.
    pub recycle: Option<Receiver<Batch>>,
    /// Worker results, completion and failures.
    pub results: Option<Receiver<Msg>>,
}

impl Remote {
    pub fn none() -> Remote {
        Remote {
            inputs: Vec::new(),
            buffers: Vec::new(),
            recycle: None,
            results: None,
        }
    }

    /// Sends every other shard its buffered frames and `now`; false if a worker has gone.
    pub fn flush(&mut self, now: u64) -> bool {
        let recycle = self.recycle.as_ref();
        self.inputs
            .iter()
            .zip(self.buffers.iter_mut())
            .all(|(tx, b)| {
                let next = recycle
                    .and_then(|r| r.try_recv().ok())
                    .unwrap_or_else(|| Batch {
                        bytes: Vec::with_capacity(b.bytes.capacity()),
                        frames: Vec::with_capacity(b.frames.capacity()),
                        now: 0,
                    });
                let mut batch = std::mem::replace(b, next);
                batch.now = now;
                tx.send(batch).is_ok()
            })
    }
}

/// Counts runts, and with `--out` puts results back into input order for the sink.
#[derive(Default)]
pub(crate) struct Collector {
    /// Whether results come per frame (`--out`) and must be released in order.
    ordered: bool,
    /// Results not yet emitted: slot `i` is frame `next + i`.
    pending: VecDeque<Option<FrameResult>>,
    /// Frames released to the sink so far (ordered runs).
    pub next: u64,
    /// Frames read.
    pub total: u64,
    pub runts: u64,
    pub shards_done: usize,
}

impl Collector {
    pub fn new(ordered: bool) -> Collector {
        Collector {
            ordered,
            ..Collector::default()
        }
    }

    /// Whether results are released in input order (`--out`).
    pub fn ordered(&self) -> bool {
        self.ordered
    }

    /// Counts a runt (frame `index`).
    pub fn runt(&mut self, index: u64) {
        self.runts += 1;
        if self.ordered {
            self.insert(FrameResult {
                index,
                verdict: Verdict::Runt,
                output: None,
            });
        }
    }

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

    /// Takes the results in `out` and emits what is in order.
    pub fn take<S: FnMut(u64, &[u8]) -> Result<(), SimError>>(
        &mut self,
        out: &mut Vec<FrameResult>,
        sink: &mut S,
    ) -> Result<(), SimError> {
        if out.is_empty() {
            return Ok(());
        }
        for r in out.drain(..) {
            self.insert(r);
        }
        self.emit(sink)
    }

    /// Takes available worker messages (all of them until every worker is done, with
    /// `all`), emitting frames in order.
    pub fn drain<S: FnMut(u64, &[u8]) -> Result<(), SimError>>(
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
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
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
            if let Some(bytes) = r.output {
                sink(self.next, &bytes)?;
            }
            self.next += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Placement;

    #[test]
    fn placement_holds_every_me_once_in_slot_order() {
        for mes in [1u32, 2, 3, 5, 8, 48, 60, 81] {
            for hosts in 1..=4usize.min(mes as usize) {
                for checked in [false, true] {
                    let p = Placement::new(mes, hosts, checked);
                    let mut seen = 0;
                    for s in 0..hosts {
                        for (slot, me) in p.mes_of(s).enumerate() {
                            assert_eq!(p.of(me), (s, slot), "mes {mes} hosts {hosts}");
                            seen += 1;
                        }
                        // Every worker has work: hosts never exceed MEs.
                        if s > 0 {
                            assert!(p.mes_of(s).next().is_some(), "mes {mes} hosts {hosts}");
                        }
                    }
                    assert_eq!(seen, mes, "mes {mes} hosts {hosts}");
                }
            }
        }
    }

    #[test]
    fn the_dispatching_shard_gets_a_smaller_share() {
        let count = |p: &Placement, s| p.mes_of(s).count();
        let p = Placement::new(60, 2, false);
        assert_eq!((count(&p, 0), count(&p, 1)), (16, 44));
        let p = Placement::new(60, 2, true);
        assert_eq!((count(&p, 0), count(&p, 1)), (19, 41));
        let p = Placement::new(60, 1, false);
        assert_eq!(count(&p, 0), 60);
        // With more threads, dispatching becomes most or all of shard 0's work.
        assert_eq!(count(&Placement::new(60, 3, false), 0), 2);
        assert_eq!(count(&Placement::new(60, 3, true), 0), 6);
        assert_eq!(count(&Placement::new(60, 4, false), 0), 0);
    }
}
