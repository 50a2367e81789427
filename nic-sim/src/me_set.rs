//! The MEs of a run: built once from the engine factory, simulated by the host threads batch
//! by batch (see `share`), and finished into per-ME statistics and maps. Counts, statistics
//! and mismatches are kept per ME and summed at the end (order-free).

use nfp_backend::exec::{InsnProfile, add_profiles};
use vm_core::maps::MapSet;

use crate::engine::PacketEngine;
use crate::error::SimError;
use crate::lanes::{MeSim, MeStats, Outbox};
use crate::merge::same_contents;
use crate::run::{EngineFactory, ReferenceFactory, SimConfig};
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
    pub sims: Vec<Box<MeSim<E>>>,
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
        let mes = nic.mes().max(1);
        // Sized once: an ME's model is large (its engine, lanes and statistics inline), so
        // each doubling of a growing `Vec` copied every model built so far (callgrind,
        // `simspeed pre 1000`, Agilio CX's 50 MEs: ~240 k host instructions a run).
        let mut sims = Vec::with_capacity(mes as usize);
        for me in 0..mes {
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
            // Built in its box (see `MeSim::boxed`): `Box::new` built the ~10 KB model on the
            // stack and then copied it into the heap, a `memcpy` per ME, ~0.5 MB a call on
            // Agilio CX's 50 MEs (callgrind, `simspeed repeat 1000 1`, a later call: 3.52 ->
            // 3.15 M host instructions, `rep movsb` counted per byte; CPU time of 800 such
            // calls, median of 8 interleaved runs on the noisy host: 289 -> 280 ms), and
            // `Box::write(Box::new_uninit(), MeSim::new(..))` still copied its arrays.
            sims.push(MeSim::boxed(
                me,
                engine,
                reference,
                threads,
                nic.queue_depth,
                config.keep_output,
                nic.fw_cycles_per_packet,
            ));
        }
        Ok(MeSet { sims, initial })
    }

    /// Runs what the MEs still hold; their results go to `out`, whose latency histogram
    /// (with what every host thread recorded already merged in) becomes the run's.
    pub fn finish(self, out: &mut Outbox) -> MesDone {
        // Sized once (see `MeSet::new`).
        let mut stats = Vec::with_capacity(self.sims.len());
        let mut maps = Vec::with_capacity(self.sims.len());
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
            maps.push((st.me, engine.into_maps()));
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
