//! The MEs of a run and the collector of their results.
//!
//! The host threads simulate the MEs of the [`MeSet`] batch by batch (see `share`). Counts,
//! statistics and mismatches are kept per ME and summed at the end (order-free), so only
//! runs that write `--out` pass per-frame results to the [`Collector`], which releases them
//! in input order.

use std::collections::VecDeque;

use nfp_backend::exec::{InsnProfile, add_profiles};
use vm_core::maps::MapSet;

use crate::engine::PacketEngine;
use crate::error::SimError;
use crate::lanes::{FrameResult, MeSim, MeStats, Outbox};
use crate::merge::same_contents;
use crate::run::{EngineFactory, ReferenceFactory, SimConfig};
use crate::stats::Verdict;
use crate::timing::Histogram;

/// What the MEs report when the input ends.
pub(crate) struct MesDone {
    /// Per ME, in ME order.
    pub stats: Vec<MeStats>,
    /// (ME, its maps), in ME order.
    pub maps: Vec<(u32, Option<MapSet>)>,
    /// MEs whose maps differ from their reference engine's.
    pub map_mismatches: Vec<u32>,
    /// ME 0's maps before any packet.
    pub initial: Option<MapSet>,
    /// Summed instruction profile of all MEs (with `SimConfig::profile`).
    pub profile: Option<Vec<InsnProfile>>,
    /// Per packet, arrival to completion, over all MEs.
    pub latency: Histogram,
}

/// Every ME of the simulated NIC, by ME number.
pub(crate) struct MeSet<E: PacketEngine> {
    pub sims: Vec<MeSim<E>>,
    /// ME 0's maps before any packet.
    pub initial: Option<MapSet>,
}

impl<E: PacketEngine> MeSet<E> {
    /// Builds the engine (and with `reference`, the reference engine) of every ME.
    pub fn new<F: EngineFactory<Engine = E>>(
        config: &SimConfig,
        engines: &F,
        reference: Option<ReferenceFactory<'_>>,
    ) -> Result<MeSet<E>, SimError> {
        let nic = &config.nic;
        let threads = nic.threads_per_me.max(1);
        let mut initial = None;
        let mut sims = Vec::new();
        for me in 0..nic.mes().max(1) {
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
        Ok(MeSet { sims, initial })
    }

    /// Runs what the MEs still hold; their results go to `out`, whose latency histogram
    /// (with what every host thread recorded already merged in) becomes the run's.
    pub fn finish(self, out: &mut Outbox) -> MesDone {
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
        MesDone {
            stats,
            maps,
            map_mismatches,
            initial: self.initial,
            profile,
            latency: std::mem::take(&mut out.latency),
        }
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
