//! The real packet engine: the offload compiler's microcode on nfp-backend's reference
//! microengine executor, one [`NfpEngine`] per simulated ME.
//!
//! # Why this shape
//!
//! - **One engine per ME, threads share its local memory.** The executor's [`Thread`] keeps
//!   its registers and packet buffer; stacks and packet vectors live in the ME's [`Lmem`],
//!   as on the chip. The executor's LMEM layout has room for
//!   [`THREADS_PER_ME`] (4) contexts; a NIC simulated with
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
//! - **Pre-decoded code**: the program is decoded once into the executor's
//!   [`FastProgram`] and run with `run_until_event_fast`, which agrees with the reference loop
//!   exactly (nfp-backend's `exec::tests_fast` property tests) at a fraction of the host cost.
//! - **Replay in one call**: when the threads commute, the timing model starts a packet and
//!   runs it to its end at once; [`PacketEngine::start_to_end`] does both with the executor's
//!   `run_packet_to_end_fast` (callgrind, `simspeed pre`: 94 host instructions per frame
//!   less than `start` then `run_to_end`).
//!   The executor maps its event straight to a [`Step`] (`run_packet_to_end_fast_map`,
//!   no `Result<Event>` in memory), and an engine with neither random streams nor a
//!   profile takes that path after one test (`NfpEngine::plain`).
//! - **Random streams only when drawn**: a program that cannot draw random numbers
//!   (`FastProgram::draws_random`) gets no per-packet seeding (a splitmix scramble).
//!
//! The code is shared by every ME through an `Arc`, so building 50 engines costs 50 local
//! memories, 50 map replicas and 50 shared-memory models, not 50 copies of the program.

use std::sync::Arc;

use nfp_backend::NicLimits;
use nfp_backend::compile::{Compiled, NotOffloadable, compile};
use nfp_backend::cost::Latencies;
use nfp_backend::exec::{
    Event, ExecError, FastProgram, FusedBudget, InsnProfile, Lmem, MemState, PAGES, RunThrough,
    Segment, SharedMem, THREADS_PER_ME, Thread,
};
use nfp_backend::target::MeInsn;
use vm_core::Program;
use vm_core::interp::VmConfig;
use vm_core::maps::MapSet;

use crate::engine::{InterpEngine, PacketEnd, PacketEngine, Passed, StandInCost, Step};
use crate::error::SimError;
use crate::lanes::Reference;
use crate::preset::MemLatency;
use crate::run::EngineFactory;
use crate::stats::Verdict;

/// Most ME instructions one packet may execute before it is aborted (a runaway loop in the
/// microcode must not hang the simulation; the verifier bounds real programs far below).
pub const DEFAULT_BUDGET: u64 = 1_000_000;

/// A compiled program ready to be loaded on every ME: the [`EngineFactory`] for
/// [`crate::simulate`].
#[derive(Debug, Clone)]
pub struct NfpProgram {
    /// The microcode, pre-decoded once for the executor's fast path (which agrees with the
    /// reference loop exactly; see `nfp_backend::exec::FastProgram`).
    code: Arc<FastProgram>,
    maps: MapSet,
    lat: Latencies,
    budget: u64,
    prandom_seed: u64,
    /// The compiler found the threads' interleaving unobservable
    /// (`Compiled::threads_commute`) and replay is not switched off.
    commute: bool,
    /// `code.fused_budget(budget)`, derived once (each engine adds its maps' lookups);
    /// it points into `code`, so it is derived again wherever `code` or `budget` changes.
    /// Why: it walks the program's hops (`jit::lookup_fd`), ~900 host instructions an
    /// engine, which every `simulate` call paid for every ME (callgrind, `simspeed repeat
    /// 1000 1`, Agilio CX's 50 MEs: ~45 k a call). Set wherever `code` or `budget` is.
    fused: Fused,
}

/// A program's [`FusedBudget`] (see [`NfpProgram::fused`]), opaque in `Debug`.
#[derive(Clone, Copy)]
struct Fused(FusedBudget);

impl std::fmt::Debug for Fused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FusedBudget")
    }
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
        let code = Arc::new(FastProgram::new(&compiled.code));
        Ok(NfpProgram {
            fused: Fused(code.fused_budget(DEFAULT_BUDGET)),
            code,
            maps,
            lat: Latencies::NFP4000,
            budget: DEFAULT_BUDGET,
            prandom_seed: VmConfig::default().prandom_seed,
            commute: compiled.threads_commute
                && std::env::var_os("NFP_REPLAY").is_none_or(|v| v != "0"),
        })
    }

    /// Resumes every thread at each of its swaps, even where the threads commute (the
    /// timing model then never replays; for checking that replay changes nothing, as
    /// `NFP_REPLAY=0` does for a whole run).
    pub fn without_replay(mut self) -> NfpProgram {
        self.commute = false;
        self
    }

    /// Uses the simulated NIC's memory latencies (`--nic` presets carry them) for the memory
    /// commands' wait cycles; firmware helper costs stay the backend's.
    pub fn with_mem_latency(mut self, mem: &MemLatency) -> NfpProgram {
        self.lat.cls = mem.cls;
        self.lat.ctm = mem.ctm;
        self.lat.imem = mem.imem;
        self.lat.emem = mem.emem;
        // The native code has the latencies as constants: compiled for this table
        // (`FastProgram::with_latencies`; the engines run with the program's own).
        if *self.code.latencies() != self.lat {
            self.code = Arc::new(FastProgram::with_latencies(self.code.code(), &self.lat));
            // Derived from the code (its entry, hops and table): derived again.
            self.fused = Fused(self.code.fused_budget(self.budget));
        }
        self
    }

    /// Caps ME instructions per packet.
    pub fn with_budget(mut self, budget: u64) -> NfpProgram {
        self.budget = budget.max(1);
        self.fused = Fused(self.code.fused_budget(self.budget));
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
        self.code.code()
    }

    /// The engine of ME `me` with `threads` hardware threads.
    pub fn engine(&self, me: u32, threads: u32) -> NfpEngine {
        let threads = threads.max(1);
        let groups = threads.div_ceil(u32::from(THREADS_PER_ME)) as usize;
        let mut maps = self.maps.clone();
        // SAFETY: the engine owns `maps` for its life and gives every run with `fused`
        // (`start_to_end`) `&mut self.maps`, this set, never replacing a map in it.
        let fused = unsafe { self.fused.0.with_lookups(&mut maps) };
        let mut pages = PAGES.take(groups + threads as usize).into_iter();
        let mut page = || pages.next().unwrap_or_else(nfp_backend::exec::Page::zeroed);
        NfpEngine {
            code: Arc::clone(&self.code),
            lmems: (0..groups).map(|_| Lmem::with_page(page())).collect(),
            shared: SharedMem::new(self.prandom_seed, 0),
            seed: self.prandom_seed,
            started: 0,
            maps,
            lat: self.code.latencies().clone(),
            budget: self.budget,
            fused,
            threads: (0..threads)
                .map(|t| Slot {
                    thread: Thread::with_page((t % u32::from(THREADS_PER_ME)) as u8, page()),
                    pending: None,
                    rng: 0,
                })
                .collect(),
            me,
            profile: None,
            commute: self.commute,
            random: self.code.draws_random(),
            plain: if self.code.draws_random() || !fused.first_fast() {
                0
            } else {
                threads as usize
            },
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
///
/// `repr(C)` with the thread first: the fused start reaches the thread at the slot's own
/// address (Rust's layout put it after the other fields: one `add` per packet, callgrind
/// `simspeed pre`).
#[repr(C)]
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
    code: Arc<FastProgram>,
    /// One per group of [`THREADS_PER_ME`] threads (one on the real layout).
    lmems: Vec<Lmem>,
    shared: SharedMem,
    maps: MapSet,
    /// The program's table (`FastProgram::latencies`, which the other runs are given:
    /// their check of it is then one compare), a copy for the plain start, which is
    /// given it unchecked (`Thread::run_packet_to_end_first_fast`).
    lat: Latencies,
    budget: u64,
    /// `budget` for the fused start-and-run (`start_to_end`), derived once.
    fused: FusedBudget,
    threads: Vec<Slot>,
    me: u32,
    /// Base of the per-packet random streams (`VmConfig::prandom_seed` of the reference).
    seed: u64,
    /// Packets started so far on this ME (counted only when `random`: nothing else reads
    /// it).
    started: u64,
    /// Per-instruction counts, when profiling (`PacketEngine::enable_profile`).
    profile: Option<Vec<InsnProfile>>,
    /// See [`PacketEngine::threads_commute`].
    commute: bool,
    /// The program may draw random numbers (`FastProgram::draws_random`). When it cannot,
    /// the per-packet stream is neither seeded nor swapped in and out: nothing would read
    /// it (seeding alone is a splitmix scramble, ~20 host instructions per packet).
    random: bool,
    /// `threads.len()` when neither `random` nor a profile nor a slot's `pending` load
    /// failure (`start` sets 0 when it sets one, `start_to_end_with` sets it again) nor a
    /// program whose first op runs slow (`FusedBudget::first_fast`), else 0:
    /// `start_to_end` then runs the packet of a thread below it with no per-packet stream,
    /// no profile and no pending failure to clear after one test (3 such tests cost 5 host
    /// instructions per packet, callgrind `simspeed pre`; the pending one 3 more).
    ///
    /// Why a bound and not a flag: the one compare also bounds the thread, so that its slot
    /// and LMEM group are indexed unchecked, and the fused run need not test the first op
    /// (`Thread::run_packet_to_end_first_fast`). Callgrind, `simspeed pre`, whole
    /// simulation: a flag and two checked indexings 979.1 host instructions per frame, the
    /// bound 970.7; the first op's test 969.7 -> 967.9. Never above `threads.len()` (every
    /// write is 0 or that).
    plain: usize,
}

impl std::fmt::Debug for NfpEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfpEngine")
            .field("me", &self.me)
            .field("threads", &self.threads.len())
            .field("code", &self.code.code().len())
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
        let (t, n) = (thread as usize, self.threads.len());
        // The timing model only asks for threads it has; the wrap is for other callers
        // (and keeps a division off the per-resume path).
        let i = if t < n { t } else { t % n };
        (i, i / THREADS_PER_ME as usize)
    }
}

impl NfpEngine {
    /// One resume of `thread`; with `THROUGH`, passing swaps before `horizon` (a separate
    /// copy, so that plain stepping, what a loaded ME does, pays nothing for passing).
    #[inline(always)]
    fn run<const THROUGH: bool>(&mut self, thread: u32, at: u64, horizon: u64) -> (Step, Passed) {
        let (i, g) = self.place(thread);
        let slot = &mut self.threads[i];
        if slot.pending.is_some() {
            return (pending_fault(slot), Passed::default());
        }
        // Unconditional (unlike `start`'s seeding): two stores cost less here than testing
        // `random`, and without it nothing reads the state.
        self.shared.set_prandom_state(slot.rng);
        let mut mem = MemState {
            lmem: &mut self.lmems[g],
            shared: &mut self.shared,
            maps: &mut self.maps,
            lat: self.code.latencies(),
        };
        let mut through = RunThrough::new(at, horizon);
        // One branch per resume, not per instruction: the profiled loop is its own copy.
        let event = match (THROUGH, self.profile.as_deref_mut()) {
            (true, profile) => slot.thread.run_through_fast(
                &self.code,
                &mut mem,
                self.budget,
                profile,
                &mut through,
            ),
            (false, None) => slot
                .thread
                .run_until_event_fast(&self.code, &mut mem, self.budget),
            (false, Some(p)) => {
                slot.thread
                    .run_until_event_fast_profiled(&self.code, &mut mem, self.budget, p)
            }
        };
        slot.rng = self.shared.prandom_state();
        let passed = Passed {
            busy: through.busy(),
            wait: through.wait(),
        };
        (step_of(event), passed)
    }
}

/// The timing model's step for an executor event (or fault).
#[inline(always)]
fn step_of(event: Result<Event, nfp_backend::exec::ExecError>) -> Step {
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

/// [`step_of`] reduced to what the timing model keeps ([`PacketEnd::of`] of it), without
/// building the step (nor formatting a fault's message, which the timing model drops).
#[inline(always)]
fn end_of(event: Result<Event, ExecError>) -> PacketEnd {
    let (busy, verdict, finished) = match event {
        Ok(Event::Done {
            retval,
            busy_cycles,
            ..
        }) => (busy_cycles, Verdict::from_xdp(retval, false), true),
        // Not a last step: aborted, as `PacketEnd::of` ends a swap.
        Ok(Event::Swap { busy_cycles, .. }) => (busy_cycles, Verdict::Aborted, false),
        // One cycle, as `step_of` charges a fault.
        Err(_) => (1, Verdict::Aborted, false),
    };
    PacketEnd {
        busy,
        verdict,
        finished,
    }
}

/// Records why the packet could not be loaded (or that it could), as `start` does.
#[cold]
#[inline(never)]
fn set_pending(slot: &mut Slot, loaded: Result<(), nfp_backend::exec::ExecError>) {
    slot.pending = loaded.err().map(|e| e.to_string());
}

/// The fault of a packet that could not be loaded (rare: kept off the resume path).
#[cold]
#[inline(never)]
fn pending_fault(slot: &mut Slot) -> Step {
    Step::Fault {
        busy: 1,
        reason: slot.pending.take().unwrap_or_default(),
    }
}

impl PacketEngine for NfpEngine {
    fn start(&mut self, thread: u32, frame: &[u8]) {
        let (i, g) = self.place(thread);
        let slot = &mut self.threads[i];
        if self.random {
            self.shared
                .reseed_prandom(crate::engine::packet_prandom_seed(self.seed, self.started));
            self.started += 1;
            slot.rng = self.shared.prandom_state();
        }
        let loaded = slot.thread.start(&mut self.lmems[g], frame);
        // A failed load and a pending failure left over (both rare) off the per-packet path.
        if loaded.is_err() || slot.pending.is_some() {
            set_pending(slot, loaded);
            if slot.pending.is_some() {
                // `plain` promises no pending failure (`start_to_end_with` restores it).
                self.plain = 0;
            }
        }
    }

    #[inline]
    fn resume(&mut self, thread: u32) -> Step {
        self.run::<false>(thread, 0, 0).0
    }

    #[inline]
    fn resume_through(&mut self, thread: u32, at: u64, horizon: u64) -> (Step, Passed) {
        self.run::<true>(thread, at, horizon)
    }

    fn output(&mut self, thread: u32, out: &mut Vec<u8>) {
        out.clear();
        let (i, _) = self.place(thread);
        out.extend_from_slice(self.threads[i].thread.packet());
    }

    fn maps(&self) -> Option<&MapSet> {
        Some(&self.maps)
    }

    /// The maps, and the memories' pages back to the pool, zeroed (see `PAGES`). Here and
    /// not in a `Drop` of the engine: with one, LLVM laid out the timing model's loop, which
    /// inlines the engine's packet start, differently, ~2 host instructions per frame more
    /// (callgrind `simspeed pre`: 875.5 -> 877.8).
    fn into_maps(self) -> Option<MapSet> {
        let NfpEngine {
            lmems,
            threads,
            maps,
            ..
        } = self;
        PAGES.give(
            lmems
                .into_iter()
                .map(Lmem::into_page)
                .chain(threads.into_iter().map(|s| s.thread.into_page())),
        );
        Some(maps)
    }

    fn discard_records(&mut self) {
        crate::engine::discard_records(&mut self.maps);
    }

    fn enable_profile(&mut self) {
        self.plain = 0;
        if self.profile.is_none() {
            self.profile = Some(vec![InsnProfile::default(); self.code.code().len()]);
        }
    }

    fn profile(&self) -> Option<&[InsnProfile]> {
        self.profile.as_deref()
    }

    fn threads_commute(&self) -> bool {
        self.commute
    }

    fn run_to_end(&mut self, thread: u32, segs: &mut Vec<Segment>) -> Step {
        // The same set-up as `run`, written out: sharing it through a closure cost `run`,
        // which runs per resume, about 12 host instructions (callgrind, simspeed).
        let (i, g) = self.place(thread);
        let slot = &mut self.threads[i];
        if slot.pending.is_some() {
            return pending_fault(slot);
        }
        if self.random {
            self.shared.set_prandom_state(slot.rng);
        }
        let mut mem = MemState {
            lmem: &mut self.lmems[g],
            shared: &mut self.shared,
            maps: &mut self.maps,
            lat: self.code.latencies(),
        };
        let event = slot.thread.run_to_end_fast(
            &self.code,
            &mut mem,
            self.budget,
            self.profile.as_deref_mut(),
            segs,
        );
        if self.random {
            slot.rng = self.shared.prandom_state();
        }
        step_of(event)
    }

    fn start_to_end(&mut self, thread: u32, frame: &[u8], segs: &mut Vec<Segment>) -> Step {
        self.start_to_end_as(thread, frame, segs, step_of)
    }

    /// Always inline (into the timing model's replay loop, `MeSim::arrive_all`): the call,
    /// its frame and the end returned through memory cost ~27 host instructions per frame
    /// (callgrind `simspeed pre`, 1,171 -> 1,144 per frame).
    #[inline(always)]
    fn start_to_end_packed(
        &mut self,
        thread: u32,
        frame: &[u8],
        segs: &mut Vec<Segment>,
    ) -> PacketEnd {
        self.start_to_end_as(thread, frame, segs, end_of)
    }
}

impl NfpEngine {
    /// [`PacketEngine::start_to_end`] with the run's result given to `map` (`step_of`, or
    /// `end_of` for [`PacketEngine::start_to_end_packed`]).
    #[inline(always)]
    fn start_to_end_as<R>(
        &mut self,
        thread: u32,
        frame: &[u8],
        segs: &mut Vec<Segment>,
        map: impl FnOnce(Result<Event, ExecError>) -> R,
    ) -> R {
        // `start` and `run_to_end` in one: a frame that cannot be loaded gives the fault
        // `run_to_end` would report for it (`step_of` formats the same error).
        let t = thread as usize;
        // A thread beyond the count (which wraps) takes the general path, as anything not
        // `plain` does (no pending load failure either, see there).
        if t >= self.plain {
            let (i, g) = self.place(thread);
            return self.start_to_end_with(i, g, frame, segs, map);
        }
        debug_assert!(self.plain <= self.threads.len());
        debug_assert_eq!(
            self.lmems.len(),
            self.threads.len().div_ceil(THREADS_PER_ME as usize)
        );
        // SAFETY: `t < plain <= threads.len()` (see `plain`), and `lmems` has one group per
        // `THREADS_PER_ME` threads, rounded up (`NfpProgram::engine`; never resized).
        let (slot, lmem) = unsafe {
            (
                self.threads.get_unchecked_mut(t),
                self.lmems.get_unchecked_mut(t / THREADS_PER_ME as usize),
            )
        };
        let mem = MemState {
            lmem,
            shared: &mut self.shared,
            maps: &mut self.maps,
            lat: &self.lat,
        };
        let code = &self.code;
        let t = &mut slot.thread;
        t.run_packet_to_end_first_fast(code, mem, frame, &self.fused, segs, map)
    }

    /// Sets `plain`: no random stream, a first op that runs fast, no profile and no pending
    /// load failure in any slot (so that the plain start need not test the slot's: 3 host
    /// instructions per packet, callgrind `simspeed pre`).
    #[cold]
    #[inline(never)]
    fn replan(&mut self) {
        let plain = !self.random
            && self.fused.first_fast()
            && self.profile.is_none()
            && self.threads.iter().all(|s| s.pending.is_none());
        self.plain = if plain { self.threads.len() } else { 0 };
    }

    /// [`PacketEngine::start_to_end`] with a random stream, a profile or a pending load
    /// failure (`plain` off), or a thread beyond the count.
    #[inline(never)]
    fn start_to_end_with<R>(
        &mut self,
        i: usize,
        g: usize,
        frame: &[u8],
        segs: &mut Vec<Segment>,
        map: impl FnOnce(Result<Event, ExecError>) -> R,
    ) -> R {
        let slot = &mut self.threads[i];
        if slot.pending.is_some() {
            set_pending(slot, Ok(()));
        }
        if !self.random && self.profile.is_none() {
            // Here for a pending failure (this slot's, or one `run` has taken since).
            self.replan();
        }
        let slot = &mut self.threads[i];
        if self.random {
            self.shared
                .reseed_prandom(crate::engine::packet_prandom_seed(self.seed, self.started));
            self.started += 1;
        }
        let mem = MemState {
            lmem: &mut self.lmems[g],
            shared: &mut self.shared,
            maps: &mut self.maps,
            lat: self.code.latencies(),
        };
        let step = slot.thread.run_packet_to_end_fast_map(
            &self.code,
            mem,
            frame,
            self.fused,
            self.profile.as_deref_mut(),
            segs,
            map,
        );
        if self.random {
            slot.rng = self.shared.prandom_state();
        }
        step
    }
}

#[cfg(test)]
#[path = "nfp_engine_tests.rs"]
mod tests;

#[cfg(test)]
mod page_tests {
    use super::*;
    use crate::preset::NicPreset;
    use crate::run::{SimConfig, simulate};
    use crate::traffic::{Generator, TrafficSpec};

    /// A program simulated again (its engines built on the pages the first run's gave
    /// back, see `PAGES`) gives the same report, maps and output frames, on one host
    /// thread and on two.
    #[test]
    fn a_program_simulated_again_on_reused_pages_gives_the_same_results() {
        let prog = vm_core::demo::udp_filter();
        let nfp = NfpProgram::compile(&prog, &NicLimits::default()).expect("offloadable");
        let spec = TrafficSpec::parse(
            "packets=3000,flows=300,size=64-600,proto=udp:3,tcp:1,dport=7770-7790,seed=5",
        )
        .expect("spec");
        let nic = NicPreset::by_name("agilio-cx").expect("nic");
        let run = |hosts: usize| {
            let config = SimConfig {
                host_threads: hosts,
                keep_output: true,
                ..SimConfig::new(nic.clone())
            };
            let mut frames = Vec::new();
            let mut out = simulate(Generator::new(&spec), &config, &nfp, None, |i, f| {
                frames.push((i, f.to_vec()));
                Ok(())
            })
            .expect("runs");
            out.report.host_packets_per_sec = 0.0;
            let maps = out
                .maps
                .map(|m| m.iter().map(|m| m.entries()).collect::<Vec<_>>());
            (out.report, maps, frames)
        };
        let first = [run(1), run(2)];
        // The pool is the process's (other tests' engines come and go): at least this
        // test's last engines' pages are in it.
        assert!(!PAGES.is_empty());
        for hosts in [1, 2, 1] {
            // Not `assert_eq!`: thousands of frames in a failure's message.
            assert!(
                run(hosts) == first[hosts - 1],
                "{hosts} host thread(s) differ"
            );
        }
    }

    /// The fused budget derived once per program (`NfpProgram::fused`) follows
    /// `with_budget`: every engine runs under the program's current budget.
    #[test]
    fn engines_take_the_programs_current_budget() {
        let prog = vm_core::demo::udp_filter();
        let nfp = NfpProgram::compile(&prog, &NicLimits::default()).expect("offloadable");
        for b in [1, 7, 48, 1000, DEFAULT_BUDGET] {
            let p = nfp.clone().with_budget(b);
            let want = p.code.fused_budget(b);
            let e = p.engine(0, 8);
            assert_eq!(e.fused.budget(), b);
            assert_eq!(e.fused.first_fast(), want.first_fast());
        }
    }
}
