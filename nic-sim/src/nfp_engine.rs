//! The real packet engine: the offload compiler's microcode on nfp-backend's reference
//! microengine executor, one [`NfpEngine`] per simulated ME.
//!
//! # Why this shape
//!
//! - **One engine per ME, threads share its local memory.** The executor's [`Thread`] keeps
//!   its registers and packet buffer; stacks and packet vectors live in the ME's [`Lmem`],
//!   as on the chip. The executor's LMEM layout has room for
//!   [`THREADS_PER_ME`](nfp_backend::exec::THREADS_PER_ME) (4) contexts; a NIC simulated with
//!   more threads per ME (`--me-threads 8`) gets one extra `Lmem` per group of four threads.
//!   That is observably identical (no eBPF program reads another thread's stack) and keeps
//!   the executor's layout untouched.
//! - **Real cycle traces.** [`Event::Swap`] becomes [`Step::Swap`] with the executor's busy
//!   and wait cycles, [`Event::Done`] becomes [`Step::Done`]; the timing model in `lanes`
//!   interleaves the threads on memory waits.
//! - **Maps per ME** (see `merge`): each engine owns a replica initialised from the same
//!   contents; the driver merges them at the end.
//! - **Allocation-free per packet**: `start` copies the frame into the thread's existing
//!   buffer, `resume` runs the executor loop (which allocates nothing), `output` copies into
//!   the caller's buffer. Only a runtime fault formats its reason.
//!
//! The code is shared by every ME through an `Arc`, so building 50 engines costs 50 local
//! memories, 50 map replicas and 50 shared-memory models, not 50 copies of the program.

use std::sync::Arc;

use nfp_backend::NicLimits;
use nfp_backend::compile::{Compiled, NotOffloadable, compile};
use nfp_backend::cost::Latencies;
use nfp_backend::exec::{Event, Lmem, MemState, SharedMem, THREADS_PER_ME, Thread};
use nfp_backend::target::MeInsn;
use vm_core::Program;
use vm_core::interp::VmConfig;
use vm_core::maps::MapSet;

use crate::engine::{InterpEngine, PacketEngine, StandInCost, Step};
use crate::error::SimError;
use crate::lanes::Reference;
use crate::preset::MemLatency;
use crate::run::EngineFactory;

/// Most ME instructions one packet may execute before it is aborted (a runaway loop in the
/// microcode must not hang the simulation; the verifier bounds real programs far below).
pub const DEFAULT_BUDGET: u64 = 1_000_000;

/// A compiled program ready to be loaded on every ME: the [`EngineFactory`] for
/// [`crate::simulate`].
#[derive(Debug, Clone)]
pub struct NfpProgram {
    code: Arc<[MeInsn]>,
    maps: MapSet,
    lat: Latencies,
    budget: u64,
    prandom_seed: u64,
}

impl NfpProgram {
    /// Compiles `program` for `limits`; `Err` carries every reason it cannot be offloaded.
    pub fn compile(program: &Program, limits: &NicLimits) -> Result<NfpProgram, NotOffloadable> {
        let compiled = compile(program, limits)?;
        NfpProgram::from_compiled(program, &compiled)
    }

    /// Loads already compiled code; maps are created from `program`'s definitions (one CPU,
    /// as the reference interpreter's default `VmConfig`).
    pub fn from_compiled(
        program: &Program,
        compiled: &Compiled,
    ) -> Result<NfpProgram, NotOffloadable> {
        let maps =
            MapSet::new(&program.maps, VmConfig::default().ncpus).map_err(|e| NotOffloadable {
                reasons: vec![nfp_backend::Reason::program(
                    "maps",
                    format!("map definitions cannot be created: {e}"),
                )],
                verifier_log: String::new(),
            })?;
        Ok(NfpProgram {
            code: compiled.code.clone().into(),
            maps,
            lat: Latencies::NFP4000,
            budget: DEFAULT_BUDGET,
            prandom_seed: VmConfig::default().prandom_seed,
        })
    }

    /// Uses the simulated NIC's memory latencies (`--nic` presets carry them) for the memory
    /// commands' wait cycles; firmware helper costs stay the backend's.
    pub fn with_mem_latency(mut self, mem: &MemLatency) -> NfpProgram {
        self.lat.cls = mem.cls;
        self.lat.ctm = mem.ctm;
        self.lat.imem = mem.imem;
        self.lat.emem = mem.emem;
        self
    }

    /// Caps ME instructions per packet.
    pub fn with_budget(mut self, budget: u64) -> NfpProgram {
        self.budget = budget.max(1);
        self
    }

    /// The initial maps every ME's replica starts from (fill them before simulating; the
    /// reference engines get the same contents).
    pub fn maps_mut(&mut self) -> &mut MapSet {
        &mut self.maps
    }

    /// The initial maps.
    pub fn maps(&self) -> &MapSet {
        &self.maps
    }

    /// The microcode.
    pub fn code(&self) -> &[MeInsn] {
        &self.code
    }

    /// The engine of ME `me` with `threads` hardware threads.
    pub fn engine(&self, me: u32, threads: u32) -> NfpEngine {
        let threads = threads.max(1);
        let groups = threads.div_ceil(u32::from(THREADS_PER_ME)) as usize;
        NfpEngine {
            code: Arc::clone(&self.code),
            lmems: (0..groups).map(|_| Lmem::new()).collect(),
            shared: SharedMem::new(self.prandom_seed, 0),
            seed: self.prandom_seed,
            started: 0,
            maps: self.maps.clone(),
            lat: self.lat.clone(),
            budget: self.budget,
            threads: (0..threads)
                .map(|t| Slot {
                    thread: Thread::new((t % u32::from(THREADS_PER_ME)) as u8),
                    pending: None,
                    rng: 0,
                })
                .collect(),
            me,
        }
    }

    /// A reference factory for [`crate::simulate`]: vm-core's interpreter on the eBPF
    /// `program`, its maps filled with this program's initial contents, so that
    /// `mismatches` counts frames whose verdict or bytes differ and MEs whose final maps
    /// differ.
    pub fn reference<'a>(
        &'a self,
        program: &'a Program,
    ) -> impl Fn(u32, u32) -> Result<Reference, SimError> + Sync + 'a {
        move |me, threads| {
            let mut e = InterpEngine::new(
                program,
                VmConfig {
                    prandom_seed: self.prandom_seed,
                    ..VmConfig::default()
                },
                StandInCost::default(),
                me,
                threads,
            )?;
            copy_maps(&self.maps, e.vm_mut().maps_mut())
                .map_err(|reason| SimError::EngineLoad { me, reason })?;
            Ok(Box::new(e) as Reference)
        }
    }
}

/// Copies every entry of `from` into `to` (same definitions).
fn copy_maps(from: &MapSet, to: &mut MapSet) -> Result<(), String> {
    for (fd, m) in from.iter().enumerate() {
        let Some(t) = to.get_mut(fd) else { continue };
        for (k, v) in m.entries() {
            t.user_update(&k, &v, vm_core::maps::BPF_ANY)
                .map_err(|e| format!("map {}: cannot copy an entry: {}", m.def().name, e.name()))?;
        }
    }
    Ok(())
}

impl EngineFactory for NfpProgram {
    type Engine = NfpEngine;
    fn build(&self, me: u32, threads: u32) -> Result<NfpEngine, SimError> {
        Ok(self.engine(me, threads))
    }
}

/// One hardware thread and a start failure not yet reported.
struct Slot {
    thread: Thread,
    /// The packet could not be loaded (too long for the buffer): the next `resume` aborts it.
    pending: Option<String>,
    /// This packet's random stream (see [`crate::engine::packet_prandom_seed`]): swapped into
    /// the ME's generator while the thread runs.
    rng: u64,
}

/// One ME running microcode: see the module docs.
pub struct NfpEngine {
    code: Arc<[MeInsn]>,
    /// One per group of [`THREADS_PER_ME`] threads (one on the real layout).
    lmems: Vec<Lmem>,
    shared: SharedMem,
    maps: MapSet,
    lat: Latencies,
    budget: u64,
    threads: Vec<Slot>,
    me: u32,
    /// Base of the per-packet random streams (`VmConfig::prandom_seed` of the reference).
    seed: u64,
    /// Packets started so far on this ME.
    started: u64,
}

impl std::fmt::Debug for NfpEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfpEngine")
            .field("me", &self.me)
            .field("threads", &self.threads.len())
            .field("code", &self.code.len())
            .finish_non_exhaustive()
    }
}

impl NfpEngine {
    /// The ME index.
    pub fn me(&self) -> u32 {
        self.me
    }

    /// ME instructions the packet on `thread` executed so far (for instruction rates).
    pub fn insns(&self, thread: u32) -> u64 {
        let (i, _) = self.place(thread);
        self.threads[i].thread.insns()
    }

    /// Slot index and LMEM group of `thread` (threads beyond the configured count wrap).
    #[inline]
    fn place(&self, thread: u32) -> (usize, usize) {
        let i = thread as usize % self.threads.len();
        (i, i / THREADS_PER_ME as usize)
    }
}

impl PacketEngine for NfpEngine {
    fn start(&mut self, thread: u32, frame: &[u8]) {
        let (i, g) = self.place(thread);
        self.shared
            .reseed_prandom(crate::engine::packet_prandom_seed(self.seed, self.started));
        self.started += 1;
        let slot = &mut self.threads[i];
        slot.rng = self.shared.prandom_state();
        slot.pending = match slot.thread.start(&mut self.lmems[g], frame) {
            Ok(()) => None,
            Err(e) => Some(e.to_string()),
        };
    }

    fn resume(&mut self, thread: u32) -> Step {
        let (i, g) = self.place(thread);
        let slot = &mut self.threads[i];
        if let Some(reason) = slot.pending.take() {
            return Step::Fault { busy: 1, reason };
        }
        self.shared.set_prandom_state(slot.rng);
        let mut mem = MemState {
            lmem: &mut self.lmems[g],
            shared: &mut self.shared,
            maps: &mut self.maps,
            lat: &self.lat,
        };
        let event = slot
            .thread
            .run_until_event(&self.code, &mut mem, self.budget);
        slot.rng = self.shared.prandom_state();
        match event {
            Ok(Event::Swap {
                busy_cycles,
                wait_cycles,
                ..
            }) => Step::Swap {
                busy: busy_cycles,
                wait: wait_cycles,
            },
            Ok(Event::Done {
                retval,
                busy_cycles,
                ..
            }) => Step::Done {
                busy: busy_cycles,
                retval,
                redirect: false,
            },
            // The executor does not expose the cycles issued before the fault; the packet is
            // charged one cycle (faults are rare and the firmware drops the packet).
            Err(e) => Step::Fault {
                busy: 1,
                reason: e.to_string(),
            },
        }
    }

    fn output(&mut self, thread: u32, out: &mut Vec<u8>) {
        out.clear();
        let (i, _) = self.place(thread);
        out.extend_from_slice(self.threads[i].thread.packet());
    }

    fn maps(&self) -> Option<&MapSet> {
        Some(&self.maps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::run_to_completion;
    use vm_core::demo;
    use vm_core::interp::Vm;

    #[test]
    fn demo_packets_match_the_interpreter_on_every_thread() {
        let prog = demo::udp_filter();
        let nfp = NfpProgram::compile(&prog, &NicLimits::default()).expect("offloadable");
        let mut e = nfp.engine(3, 8);
        let mut out = Vec::new();
        for t in 0..8 {
            for (name, pkt) in demo::packets() {
                let want = Vm::new(&prog, VmConfig::default())
                    .expect("vm")
                    .run(&pkt)
                    .expect("runs");
                e.start(t, &pkt);
                let mut busy = 0;
                let last = loop {
                    match e.resume(t) {
                        Step::Swap { busy: b, .. } => busy += b,
                        last => break last,
                    }
                };
                match last {
                    Step::Done {
                        retval, busy: b, ..
                    } => {
                        assert_eq!(retval, want.retval, "{name} thread {t}");
                        assert!(busy + b > 0);
                    }
                    other => panic!("{name}: {other:?}"),
                }
                e.output(t, &mut out);
                assert_eq!(out, want.packet, "{name} thread {t}");
            }
        }
        // A frame too long for the packet buffer aborts, it does not panic.
        let (last, _, _) = run_to_completion(&mut e, &[0u8; 9000], &mut out);
        assert!(matches!(last, Step::Fault { .. }), "{last:?}");
    }
}
