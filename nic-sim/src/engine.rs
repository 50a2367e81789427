//! What runs a packet on an ME hardware thread, seen from the timing model.
//!
//! An ME interleaves its threads: a thread runs until it issues a memory command, then swaps
//! out and waits for the completion signal while another ready thread runs. The simulator
//! therefore drives each thread in *steps*: [`PacketEngine::resume`] runs one thread until it
//! swaps ([`Step::Swap`], with the cycles it was busy and the cycles its command takes) or
//! finishes its packet ([`Step::Done`]). This is the shape of the ME executor's
//! `run_until_event` (`Event::Swap { busy_cycles, wait_cycles, .. }` /
//! `Event::Done { retval, busy_cycles, insns }`), so plugging it in is one `impl`.
//!
//! Engines are per ME (its threads share local memory and, in this model, one replica of the
//! maps — see `merge`), created on the host thread that simulates that ME, so they must be
//! `Send` but need not be `Sync`.

use nfp_backend::exec::InsnProfile;
pub use nfp_backend::exec::Segment;
use vm_core::Program;
use vm_core::interp::{RunOutcome, Vm, VmConfig};
use vm_core::maps::MapSet;

use crate::error::SimError;
use crate::stats::Verdict;

/// How a step of a hardware thread ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The thread ran `busy` cycles, issued a memory command and swapped out; it is ready
    /// again `wait` cycles after it stopped running.
    Swap {
        /// Cycles the thread occupied the ME.
        busy: u64,
        /// Cycles until its command completes.
        wait: u64,
    },
    /// The packet finished after `busy` more cycles with r0 = `retval`.
    Done {
        /// Cycles the thread occupied the ME in this last step.
        busy: u64,
        /// The program's r0.
        retval: u64,
        /// Whether the program redirected the packet (`bpf_redirect*` with XDP_REDIRECT);
        /// the NFP never does, the interpreter may.
        redirect: bool,
    },
    /// The program aborted at run time after `busy` cycles (the NFP drops such packets; the
    /// report counts them as `aborted`).
    Fault {
        /// Cycles the thread occupied the ME in this last step.
        busy: u64,
        /// What went wrong, with the instruction.
        reason: String,
    },
}

/// How a packet ended, reduced to what the timing model keeps of its last step: plain
/// numbers a call returns in registers, where a [`Step`] (which may own a fault message)
/// came back through memory and was decoded again with a jump per packet (~20 host
/// instructions a frame, callgrind `simspeed pre`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketEnd {
    /// Cycles the thread occupied the ME in its last step.
    pub busy: u64,
    /// The packet's verdict.
    pub verdict: Verdict,
    /// Whether the packet finished ([`Step::Done`]) rather than faulted.
    pub finished: bool,
}

impl PacketEnd {
    /// The end a last step means. A [`Step::Swap`] is not a last step: it ends the packet
    /// as aborted all the same rather than panic.
    pub fn of(last: &Step) -> PacketEnd {
        match *last {
            Step::Done {
                busy,
                retval,
                redirect,
            } => PacketEnd {
                busy,
                verdict: Verdict::from_xdp(retval, redirect),
                finished: true,
            },
            Step::Fault { busy, .. } | Step::Swap { busy, .. } => PacketEnd {
                busy,
                verdict: Verdict::Aborted,
                finished: false,
            },
        }
    }
}

/// Swaps an engine passed through in one [`PacketEngine::resume_through`]: their busy and
/// wait cycles, which the timing model accounts as if it had stepped them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Passed {
    /// Σ busy cycles of the passed segments.
    pub busy: u64,
    /// Σ wait cycles of the passed swaps.
    pub wait: u64,
}

/// One ME's packet processing, thread by thread.
pub trait PacketEngine: Send {
    /// Hands `frame` (at least 14 bytes) to hardware thread `thread`, which is idle.
    fn start(&mut self, thread: u32, frame: &[u8]);
    /// Runs `thread`, which holds a packet, until it swaps out or finishes.
    fn resume(&mut self, thread: u32) -> Step;
    /// [`PacketEngine::resume`] for a thread whose step starts at model time `at`, which may
    /// also pass through its swaps after which it would be ready again strictly before
    /// `horizon`: the timing model passes the first time anything else could happen on the
    /// ME, so a passed swap is one after which it would resume this same thread at exactly
    /// its ready time. Returns the step stepping would have returned last and the passed
    /// swaps' cycles. Engines that cannot pass swaps step (the default).
    fn resume_through(&mut self, thread: u32, at: u64, horizon: u64) -> (Step, Passed) {
        let _ = (at, horizon);
        (self.resume(thread), Passed::default())
    }
    /// After [`Step::Done`] on `thread`: the packet as the program left it (what
    /// `BPF_PROG_TEST_RUN` reports), written into `out` (cleared first).
    fn output(&mut self, thread: u32, out: &mut Vec<u8>);
    /// This ME's maps, for the final merge and the reference check (`None`: no maps).
    fn maps(&self) -> Option<&MapSet>;
    /// [`PacketEngine::maps`], given up when the run ends (for the final merge), the engine
    /// with them (it may hand back memory for later engines). The default clones them; an
    /// engine that owns its maps moves them out instead (a clone per ME, then the original
    /// dropped with the engine: ~30 k host instructions a run of the demo on Agilio CX's 50
    /// MEs, callgrind `simspeed pre 1000`).
    fn into_maps(self) -> Option<MapSet>
    where
        Self: Sized,
    {
        self.maps().cloned()
    }
    /// Drops the perf event samples the program emitted so far (see [`discard_records`]).
    fn discard_records(&mut self) {}
    /// Starts counting executions and cycles per instruction address (`SimConfig::profile`).
    /// Engines without instruction addresses ignore it (the default).
    fn enable_profile(&mut self) {}
    /// The per-address profile since [`PacketEngine::enable_profile`], indexed by
    /// instruction address (`None`: not enabled, or not supported by this engine).
    fn profile(&self) -> Option<&[InsnProfile]> {
        None
    }
    /// Whether no interleaving of this engine's threads is observable (nothing a thread
    /// does can change what another reads or leaves behind; see
    /// `nfp_backend::commute::threads_commute`). The timing model then runs each packet to
    /// its end as it starts ([`PacketEngine::run_to_end`]) and replays its segments, which
    /// gives the same results as resuming it at each swap. Default: no.
    fn threads_commute(&self) -> bool {
        false
    }
    /// Runs `thread`'s packet to its end, appending every swap to `segs` as a [`Segment`];
    /// returns the last step. What repeated [`PacketEngine::resume`] calls would return
    /// (the default does exactly that).
    fn run_to_end(&mut self, thread: u32, segs: &mut Vec<Segment>) -> Step {
        loop {
            match self.resume(thread) {
                Step::Swap { busy, wait } => segs.push(Segment { busy, wait }),
                last => return last,
            }
        }
    }
    /// [`PacketEngine::start`] then [`PacketEngine::run_to_end`] (the default does exactly
    /// that): for the timing model's replay, which runs each packet to its end as it starts
    /// it; an engine may do both in one pass (nfp_engine: 94 host instructions less per
    /// frame than the two calls, callgrind `simspeed pre`).
    fn start_to_end(&mut self, thread: u32, frame: &[u8], segs: &mut Vec<Segment>) -> Step {
        self.start(thread, frame);
        self.run_to_end(thread, segs)
    }
    /// [`PacketEngine::start_to_end`] with the last step reduced to a [`PacketEnd`] (the
    /// default does exactly that), which is all the timing model keeps: an engine may
    /// return it without building the [`Step`].
    fn start_to_end_packed(
        &mut self,
        thread: u32,
        frame: &[u8],
        segs: &mut Vec<Segment>,
    ) -> PacketEnd {
        PacketEnd::of(&self.start_to_end(thread, frame, segs))
    }
}

/// Runs one packet to completion on thread 0 of `engine`; returns the last step and the
/// summed (busy, wait) cycles. For reference checks and tests.
pub fn run_to_completion<E: PacketEngine + ?Sized>(
    engine: &mut E,
    frame: &[u8],
    out: &mut Vec<u8>,
) -> (Step, u64, u64) {
    engine.start(0, frame);
    let (mut busy, mut wait) = (0, 0);
    loop {
        // Alone, with no deadline: every swap may be passed through.
        let (step, passed) = engine.resume_through(0, busy + wait, u64::MAX);
        busy += passed.busy;
        wait += passed.wait;
        match step {
            Step::Swap { busy: b, wait: w } => {
                busy += b;
                wait += w;
            }
            last => {
                if let Step::Done { busy: b, .. } | Step::Fault { busy: b, .. } = &last {
                    busy += b;
                }
                out.clear();
                if matches!(last, Step::Done { .. }) {
                    engine.output(0, out);
                }
                return (last, busy, wait);
            }
        }
    }
}

/// The stand-in cost model of [`InterpEngine`]: **not** the NFP's timing, only a placeholder
/// with the right shape until the ME executor provides real cycle traces. Each packet costs
/// one swap of `wait_per_packet` cycles right after a one-cycle start (the packet-header read
/// from CTM every JITed program begins with), then `cycles_per_insn` per executed eBPF
/// instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandInCost {
    /// ME cycles per executed eBPF instruction.
    pub cycles_per_insn: u64,
    /// Memory wait per packet.
    pub wait_per_packet: u64,
}

impl Default for StandInCost {
    fn default() -> Self {
        StandInCost {
            cycles_per_insn: 1,
            wait_per_packet: u64::from(crate::preset::MemLatency::NFP4000.emem),
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// The run's outcome, computed at `start` (buffers reused across packets).
    outcome: RunOutcome,
    /// `None` before the first packet, then whether the last run succeeded.
    result: Option<Result<(), String>>,
    /// Whether the start swap has been reported.
    swapped: bool,
}

/// A [`PacketEngine`] backed by vm-core's reference interpreter with the [`StandInCost`]
/// timing: for tests, the reference check, and until the ME executor lands. The packet runs
/// to completion at `start` (so map effects happen in start order), and `resume` replays the
/// stand-in timing.
pub struct InterpEngine {
    vm: Vm,
    cost: StandInCost,
    slots: Vec<Slot>,
    /// `VmConfig::prandom_seed`, the base of every packet's random stream.
    seed: u64,
    /// Packets started so far on this engine.
    started: u64,
}

/// The seed of the random stream of the `n`-th packet an ME starts (`n` = 0 gives `seed`
/// itself, so a single packet sees what a fresh interpreter would). Every engine gives each
/// packet its own stream: the ME's hardware threads interleave their draws in an order that
/// depends on timing, and a packet's results must not.
pub fn packet_prandom_seed(seed: u64, n: u64) -> u64 {
    seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

impl std::fmt::Debug for InterpEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterpEngine")
            .field("vm", &self.vm)
            .field("cost", &self.cost)
            .finish()
    }
}

impl InterpEngine {
    /// An engine for ME `me` with `threads` hardware threads. Every ME gets the same
    /// `VmConfig` (seeded helpers behave the same on every ME), so results do not depend on
    /// which host thread simulates it.
    pub fn new(
        program: &Program,
        config: VmConfig,
        cost: StandInCost,
        me: u32,
        threads: u32,
    ) -> Result<InterpEngine, SimError> {
        let seed = config.prandom_seed;
        let vm = Vm::new(program, config).map_err(|e| SimError::EngineLoad {
            me,
            reason: e.to_string(),
        })?;
        Ok(InterpEngine {
            vm,
            cost,
            slots: (0..threads.max(1)).map(|_| Slot::default()).collect(),
            seed,
            started: 0,
        })
    }

    /// A factory for [`crate::simulate`]: one engine per ME, all from `program`.
    pub fn factory(
        program: &Program,
        config: VmConfig,
        cost: StandInCost,
    ) -> impl Fn(u32, u32) -> Result<InterpEngine, SimError> + Sync + '_ {
        move |me, threads| InterpEngine::new(program, config.clone(), cost, me, threads)
    }

    /// The interpreter, to fill maps before a run.
    pub fn vm_mut(&mut self) -> &mut Vm {
        &mut self.vm
    }

    fn slot(&mut self, thread: u32) -> &mut Slot {
        let i = thread as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, Slot::default);
        }
        &mut self.slots[i]
    }
}

impl PacketEngine for InterpEngine {
    fn start(&mut self, thread: u32, frame: &[u8]) {
        let mut outcome = std::mem::take(&mut self.slot(thread).outcome);
        self.vm
            .reseed_prandom(packet_prandom_seed(self.seed, self.started));
        self.started += 1;
        let result = self
            .vm
            .run_into(frame, &mut outcome)
            .map_err(|e| e.to_string());
        let slot = self.slot(thread);
        slot.outcome = outcome;
        slot.result = Some(result);
        slot.swapped = false;
    }

    fn resume(&mut self, thread: u32) -> Step {
        let cost = self.cost;
        let slot = self.slot(thread);
        if !slot.swapped && cost.wait_per_packet > 0 {
            slot.swapped = true;
            return Step::Swap {
                busy: 1,
                wait: cost.wait_per_packet,
            };
        }
        let o = &slot.outcome;
        match &slot.result {
            Some(Ok(())) => Step::Done {
                busy: o.insns.saturating_mul(cost.cycles_per_insn),
                retval: o.retval,
                redirect: o.redirect.is_some(),
            },
            Some(Err(reason)) => Step::Fault {
                busy: 1,
                reason: reason.clone(),
            },
            None => Step::Fault {
                busy: 0,
                reason: format!("thread {thread} resumed without a packet"),
            },
        }
    }

    fn output(&mut self, thread: u32, out: &mut Vec<u8>) {
        out.clear();
        if let Some(s) = self.slots.get(thread as usize)
            && matches!(s.result, Some(Ok(())))
        {
            out.extend_from_slice(&s.outcome.packet);
        }
    }

    fn maps(&self) -> Option<&MapSet> {
        Some(self.vm.maps())
    }

    fn discard_records(&mut self) {
        discard_records(self.vm.maps_mut());
    }
}

/// Drops the samples of `maps`' perf event arrays.
///
/// Why: the simulator neither reports nor merges them (see `merge`), yet a program that
/// emits one per packet (a tcpdump-like XDP program) kept every sample in each ME's maps and
/// in the reference's: `offload sim` of `xdp_tcpdump_kern.o` over a 10 M-frame pcap peaked
/// at 2.2 GB resident, growing with frames. The simulator drops them after each ME's task
/// of a batch ([`crate::lanes::MeSim::discard_records`]); a program's outputs never depend
/// on the samples kept (the helper's result does not).
pub fn discard_records(maps: &mut MapSet) {
    for m in maps.iter_mut() {
        drop(m.take_perf_records());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_core::demo;

    #[test]
    fn discarding_records_empties_perf_arrays_and_keeps_other_maps() {
        let def = |map_type, value_size| vm_core::MapDef {
            name: "m".into(),
            map_type,
            key_size: 4,
            value_size,
            max_entries: 2,
            flags: 0,
            initial_value: None,
        };
        let defs = [
            def(vm_core::MapType::PerfEventArray, 4),
            def(vm_core::MapType::Array, 8),
        ];
        let mut maps = MapSet::new(&defs, 2).expect("maps");
        let perf = maps.get_mut(0).expect("perf map");
        perf.perf_output(vm_core::maps::BPF_F_CURRENT_CPU, 1, b"sample")
            .expect("output");
        assert_eq!(perf.perf_records().len(), 1);
        let before = maps.get(1).expect("array").entries();
        discard_records(&mut maps);
        assert!(maps.get(0).expect("perf map").perf_records().is_empty());
        assert_eq!(maps.get(1).expect("array").entries(), before);
    }

    #[test]
    fn interp_engine_replays_stand_in_timing() {
        let prog = demo::udp_filter();
        let mut e = InterpEngine::new(&prog, VmConfig::default(), StandInCost::default(), 0, 4)
            .expect("loads");
        let mut out = Vec::new();
        for (name, pkt) in demo::packets() {
            let want = Vm::new(&prog, VmConfig::default())
                .expect("vm")
                .run(&pkt)
                .expect("runs");
            let (last, busy, wait) = run_to_completion(&mut e, &pkt, &mut out);
            assert_eq!(
                last,
                Step::Done {
                    busy: want.insns,
                    retval: want.retval,
                    redirect: false
                },
                "{name}"
            );
            assert_eq!((busy, wait), (want.insns + 1, 200), "{name}");
            assert_eq!(out, want.packet, "{name}");
        }
        // Threads are independent slots.
        let pkts = demo::packets();
        e.start(2, &pkts[1].1);
        e.start(3, &pkts[0].1);
        assert!(matches!(e.resume(3), Step::Swap { .. }));
        assert!(matches!(e.resume(2), Step::Swap { .. }));
        assert!(matches!(e.resume(2), Step::Done { retval: 1, .. }));
        assert!(matches!(e.resume(3), Step::Done { retval: 2, .. }));
    }
}
