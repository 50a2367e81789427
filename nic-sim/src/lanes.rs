//! One ME as a discrete-event model: its hardware threads (lanes), each with a bounded input
//! queue, sharing one instruction pipeline.
//!
//! - A frame arrives (at its line-rate time) on the lane RSS chose. An idle thread takes it at
//!   once; a busy thread queues it; a full queue drops it (`queue_drops`, never run).
//! - A thread holding a packet is *ready* from a time on; the ME runs one ready thread at a
//!   time, non-preemptively until it swaps ([`Step::Swap`]) or finishes ([`Step::Done`]),
//!   choosing the earliest ready thread, ties round-robin after the last one run (the ME's
//!   context arbiter is round-robin).
//! - A thread that finished at `t` takes its next queued frame at `t`; the queue slot frees at
//!   `t`, which is why completion is its own event ordered before arrivals at the same time.
//! - A thread alone on its ME runs through the swaps after which nothing else could happen
//!   before it is ready again (`MeSim::run`, `PacketEngine::resume_through`): the same
//!   model, with fewer round trips through the scheduler when the ME is lightly loaded.
//! - When the program's threads commute (`PacketEngine::threads_commute`: nothing one thread
//!   does is visible to another), a packet runs to its end as its thread takes it and the
//!   model replays its recorded segments (`MeSim::run`; with two or more threads holding
//!   packets, `MeSim::replay_pair` and `MeSim::replay_many`, loops that keep the ME's times
//!   in registers): the same steps, without resuming the engine at every swap.
//!
//! Everything here depends only on this ME's frames and their arrival times, never on other
//! MEs, so MEs can be simulated on any host thread in any interleaving with identical
//! results. Per-lane order is arrival order (a thread finishes one packet before taking the
//! next), so per-flow order holds.

use crate::engine::{PacketEnd, PacketEngine, Passed, Segment, Step};
use crate::preset::MAX_THREADS_PER_ME;
use crate::stats::{Verdict, Verdicts};
use crate::timing::Histogram;
use cursor::{Cursor, Replay};
pub use feed::{Each, Feed};
use queue::{OwnOnExit, Queues};

/// A frame for one ME. The frame is borrowed: the ME copies it only when it is still queued
/// when the call that gave it returns (into a buffer it reuses), so the driver never
/// allocates per frame.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// Input frame index.
    pub index: u64,
    /// Arrival time, ME cycles.
    pub time: u64,
    /// Hardware thread (lane within the ME).
    pub thread: u32,
    /// The frame as captured.
    pub frame: &'a [u8],
}

/// A frame's fate in input order, reported only when the driver must release frames in
/// input order (`--out`): counts and mismatches are kept per ME instead (order-independent
/// sums), so an ordinary run produces no per-frame record at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameResult {
    /// Input frame index.
    pub index: u64,
    /// What happened to it.
    pub verdict: Verdict,
    /// The frame after the program, for `--out` (passed/transmitted frames only).
    pub output: Option<Vec<u8>>,
}

/// What the MEs a host thread runs leave for the driver: per-frame results (only when the
/// driver releases frames in input order, `--out`) and the per-packet latency histogram.
///
/// Why latency is here and not in [`MeStats`]: it is only ever reported over all MEs, and its
/// values spread over hundreds of cycles, so one histogram per ME (50 of them, each touched
/// at a different spot per packet) missed the cache on nearly every packet. Measured on the
/// demo, one host thread: 0.85-1.00 M frames/s with per-ME latency histograms against
/// 1.11-1.54 without (interleaved); one histogram per host thread stays in cache, and
/// histograms merge by addition, so the result does not depend on the threading.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Per-frame results, for the collector.
    pub results: Vec<FrameResult>,
    /// Per packet: arrival to completion, in cycles.
    pub latency: Histogram,
}

/// What one ME did over the whole run.
#[derive(Debug, Clone, Default)]
pub struct MeStats {
    /// ME index.
    pub me: u32,
    /// Frames the program ran on.
    pub processed: u64,
    /// Frames dropped at a full queue.
    pub queue_drops: u64,
    /// Verdicts of the frames the program ran on.
    pub verdicts: Verdicts,
    /// Frames whose verdict or bytes differ from the reference engine.
    pub mismatches: u64,
    /// The lowest-index mismatching frame: (index, how it differs). The lowest index over
    /// all MEs is the run's first mismatch whatever the host threading.
    pub first_mismatch: Option<(u64, String)>,
    /// Cycles the ME was busy (Σ busy over all steps).
    pub busy_cycles: u64,
    /// Per packet: busy + wait.
    pub service: Histogram,
    /// Per packet: busy.
    pub busy: Histogram,
    /// Threads that received at least one frame.
    pub lanes_used: u32,
    /// Per hardware thread.
    pub lanes: Vec<LaneStats>,
    /// Time the last packet finished.
    pub last_done: u64,
}

/// One hardware thread's load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneStats {
    /// Frames that arrived on it (queue drops included).
    pub offered: u64,
    /// Frames it ran.
    pub processed: u64,
    /// Σ busy + wait over the frames it ran: a thread serves its packets one at a time, so
    /// this bounds what one lane (one elephant flow) can carry.
    pub service_cycles: u64,
}

/// One hardware thread: what only stepping without replay or checking against the
/// reference needs (the scheduler's per-packet fields are in [`Hot`], its queue in
/// [`Queues`]).
#[derive(Default)]
struct Thread {
    /// Without replay: the busy and wait cycles of the steps taken so far.
    busy: u64,
    wait: u64,
    /// Whether the firmware's per-packet cycles have been charged (on the first step; with
    /// replay they are in the first segment instead, see [`MeSim::begin`]).
    fw_charged: bool,
    /// The reference engine's verdict and bytes for this packet, when checking.
    ref_verdict: Option<Verdict>,
    ref_bytes: Vec<u8>,
}

/// A thread's packet as the scheduler sees it, and its lane's counts: what every packet
/// reads or writes, one cache line per thread in [`MeSim::hot`], valid while
/// `MeSim::ready` is not `NONE`.
///
/// Why beside `ready` rather than in [`Thread`]: indexed by `th & (SLOTS - 1)` in a
/// fixed-size array, a thread's fields need no bounds check and no multiply by the size of
/// a `Thread` (the scheduler reached `threads[th]` at an arrival, a start, a last step
/// and a completion).
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct Hot {
    index: u64,
    arrival: u64,
    /// How the packet ends: the busy cycles of its last step, its verdict, and whether it
    /// finished (rather than faulted). Set when the packet starts with replay, and when its
    /// last step is taken without; plain numbers, so that the scheduler moves no `Step`.
    last_busy: u64,
    verdict: Verdict,
    finished: bool,
    stats: LaneStats,
}

impl Hot {
    /// Records how the packet ends.
    #[inline(always)]
    fn set_end(&mut self, end: PacketEnd) {
        (self.last_busy, self.verdict, self.finished) = (end.busy, end.verdict, end.finished);
    }
}

/// [`Verdict`]s there are (the length of [`MeSim::verdicts`]).
const VERDICTS: usize = Verdict::QueueDrop as usize + 1;
const _: () = assert!(Verdict::ALL.len() == VERDICTS);

/// "No time" in [`MeSim::ready`] and [`MeSim::free`].
const NONE: u64 = u64::MAX;

/// Entries of [`MeSim::ready`] and [`MeSim::free`]: every thread an ME may have, so that a
/// thread number masked with `SLOTS - 1` indexes them without a bounds check.
const SLOTS: usize = MAX_THREADS_PER_ME as usize;
const _: () = assert!(SLOTS.is_power_of_two());

/// Thread `th`'s bit in [`MeSim`]'s masks (`th` < [`MAX_THREADS_PER_ME`] = 64 = `SLOTS`; the
/// mask keeps the shift in range without `checked_shl`'s test, ~10 host instructions per frame).
#[inline]
fn bit(th: usize) -> u64 {
    1u64 << (th & (SLOTS - 1))
}

/// The reference engine of a checked run.
pub type Reference = Box<dyn PacketEngine>;

/// One simulated ME.
pub struct MeSim<E: PacketEngine> {
    engine: E,
    reference: Option<Reference>,
    threads: Vec<Thread>,
    /// Per thread: when its current packet may run next (`NONE`: no packet). Kept apart
    /// from `threads` so the scheduler's scan, once per event, reads two small arrays
    /// (fixed-size: indexed by `th & (SLOTS - 1)`, without bounds checks).
    ready: [u64; SLOTS],
    /// Per thread: the time it finished a packet and has not yet taken the next (`NONE`).
    free: [u64; SLOTS],
    /// Bit `t` set when thread `t` holds a packet / has a `free` time (at most
    /// [`MAX_THREADS_PER_ME`] threads): the scheduler visits only those threads (usually one
    /// or two of eight), and an idle ME (both 0, the usual state between arrivals below
    /// saturation) needs no visit at all.
    held_mask: u64,
    freed_mask: u64,
    /// Bit `t` set when thread `t`'s queue holds a frame: a completion tests it without
    /// reaching the thread's queue.
    queued_mask: u64,
    /// Per thread: its packet and lane counts (see [`Hot`]).
    hot: [Hot; SLOTS],
    /// With replay ([`MeSim::replay`]): per thread, its packet's swaps, run when it started
    /// (replayed through [`MeSim::replays`]).
    segs: [Vec<Segment>; SLOTS],
    /// Tests only: pick by scanning every thread, the reference the masks are checked
    /// against.
    #[cfg(test)]
    scan: bool,
    depth: usize,
    /// Report every frame as a [`FrameResult`] (with its bytes when passed/transmitted).
    results: bool,
    /// `results`, or a reference to check against: a completion calls `report`.
    report_each: bool,
    me_free: u64,
    last_run: usize,
    /// With replay: per thread, the segments of its packet still to replay (into its
    /// `segs`; set by [`Self::begin`], read only while the thread holds the packet), and the
    /// busy and wait cycles of those replayed so far (see [`Replay`]).
    ///
    /// Why the cycles summed step by step: summing a packet's segments once at its start
    /// cost more (callgrind, `simspeed pre`, against this: +9.6 host instructions per frame
    /// with a vectorised fold, +16.6 with a plain loop), and so did taking the totals from
    /// the engine's fused run (+2.5: clearing them at each load, storing them at `Done`, the
    /// fallback sum).
    replays: [Replay; SLOTS],
    stats: MeStats,
    scratch: Vec<u8>,
    /// Every thread's queued frames (see `queue`).
    queues: Queues,
    /// Packets per verdict (indexed by `Verdict as usize`), folded into `stats.verdicts` by
    /// [`Self::finish`]: an indexed increment where `Verdicts::count`'s match was a jump
    /// through a table on every packet.
    verdicts: [u64; VERDICTS],
    /// Firmware ME cycles per packet around the program (`NicPreset::fw_cycles_per_packet`).
    fw_cycles: u64,
    /// The engine's threads commute ([`PacketEngine::threads_commute`]): each packet runs to
    /// its end when its thread takes it, and [`MeSim::run`] replays its segments.
    replay: bool,
}

impl<E: PacketEngine> std::fmt::Debug for MeSim<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeSim")
            .field("me", &self.stats.me)
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl<E: PacketEngine> MeSim<E> {
    /// ME `me` with `threads` threads (1 to [`MAX_THREADS_PER_ME`]) whose queues hold
    /// `depth` frames each. With `results`, every frame is reported as a [`FrameResult`],
    /// passed/transmitted ones with their bytes (for `--out`).
    pub fn new(
        me: u32,
        engine: E,
        reference: Option<Reference>,
        threads: u32,
        depth: u32,
        results: bool,
    ) -> MeSim<E> {
        *MeSim::boxed(me, engine, reference, threads, depth, results, 0)
    }

    /// Charges `cycles` of firmware work per packet, on the ME, with the packet's first step.
    pub fn with_fw_cycles(mut self, cycles: u64) -> MeSim<E> {
        self.fw_cycles = cycles;
        self
    }

    /// Feeds the next frame (arrival times must not decrease); results of frames that
    /// finished before it arrived go to `out`.
    pub fn arrive(&mut self, a: Arrival<'_>, out: &mut Outbox) {
        self.advance(Some(a.time), out);
        self.take_arrival(a, out);
        // The frame is borrowed only for this call.
        self.own_queued();
    }

    /// The arrival itself, once everything before it has happened.
    #[inline(always)]
    fn take_arrival(&mut self, a: Arrival<'_>, out: &mut Outbox) {
        let n = self.threads.len();
        // The driver sends only threads this ME has; the wrap is for other callers (and keeps
        // a division off the per-frame path).
        let th = a.thread as usize;
        let th = if th < n { th } else { th % n };
        let slot = th & (SLOTS - 1);
        // An idle thread's queue is empty: a thread with a queued frame holds a packet or
        // has a completion pending (`complete` makes it an event when the queue holds one).
        if self.ready[slot] == NONE && self.free[slot] == NONE {
            debug_assert!(self.queued_mask & bit(th) == 0);
            self.begin(th, a.index, a.time, a.frame, a.time);
            return;
        }
        // Borrowed: the caller makes it owned before `a.frame` goes away (see `queue`).
        if self.queues.push(slot, self.depth, a.index, a.time, a.frame) {
            self.queued_mask |= bit(th);
        } else {
            // During the run a lane's `offered` counts its drops only: `finish` adds the
            // frames it ran (every frame that was not dropped ran by then), which saves an
            // increment per frame.
            self.hot[slot].stats.offered += 1;
            self.stats.queue_drops += 1;
            if self.results {
                out.results.push(FrameResult {
                    index: a.index,
                    verdict: Verdict::QueueDrop,
                    output: None,
                });
            }
        }
    }

    /// Runs every remaining packet; returns the statistics and the engines (for their maps).
    ///
    /// Boxed: an ME's model is ~10 KB (its per-thread arrays of [`MAX_THREADS_PER_ME`]
    /// entries), and moving it out whole to take three of its fields copied all of it
    /// (callgrind, `simspeed repeat 1000`: ~0.5 M host instructions of `memcpy` per run on
    /// Agilio CX's 50 MEs); only those fields move out of the box.
    #[allow(
        clippy::boxed_local,
        reason = "the box is what spares the copy (see above)"
    )]
    pub fn finish(mut self: Box<Self>, out: &mut Outbox) -> (MeStats, E, Option<Reference>) {
        self.advance(None, out);
        for (&v, &n) in Verdict::ALL.iter().zip(&self.verdicts) {
            self.stats.verdicts.count_n(v, n);
        }
        // Totals derived here rather than counted per packet (~7 host instructions per frame):
        // every packet is in its lane's count and in the busy histogram, and completions come
        // in time order (each at `me_free`, which never decreases), so the last step the ME
        // ran ended the packet that finished last.
        let s = &mut self.stats;
        let hot = &mut self.hot[..self.threads.len()];
        for h in hot.iter_mut() {
            h.stats.offered += h.stats.processed;
        }
        s.lanes_used = hot.iter().filter(|h| h.stats.offered > 0).count() as u32;
        s.lanes = hot.iter().map(|h| h.stats).collect();
        s.processed = s.lanes.iter().map(|l| l.processed).sum();
        s.busy_cycles = s.busy.buckets().iter().map(|&(v, c)| v * c).sum();
        if s.processed > 0 {
            s.last_done = self.me_free;
        }
        let MeSim {
            stats,
            engine,
            reference,
            ..
        } = *self;
        (stats, engine, reference)
    }

    /// Thread `th` takes frame `index` (arrived at `arrival`) and may run it from `at`.
    #[inline(always)]
    fn begin(&mut self, th: usize, index: u64, arrival: u64, frame: &[u8], at: u64) {
        let slot = th & (SLOTS - 1);
        // Before the engine's call, which reads none of them: after it, LLVM reloaded the
        // arrival's fields and the hot array's address from the stack.
        let h = &mut self.hot[slot];
        (h.index, h.arrival) = (index, arrival);
        self.ready[slot] = at;
        self.held_mask |= bit(th);
        // With replay, `finish_replayed` sets the packet's busy and wait and no step tests
        // `fw_charged`: those are for stepping alone (3 host instructions per frame).
        if self.replay {
            let segs = &mut self.segs[slot];
            segs.clear();
            let end = self.engine.start_to_end_packed(th as u32, frame, segs);
            let h = &mut self.hot[slot];
            h.set_end(end);
            // The firmware's cycles open the packet's first segment, so that replaying a
            // step needs no first-step test (see `MeSim::run`).
            match segs.first_mut() {
                Some(s) => s.busy += self.fw_cycles,
                None => h.last_busy += self.fw_cycles,
            }
            // SAFETY: `self.segs[slot]` changes only above, in the thread's next `begin`,
            // which replaces this cursor before the replay loops read it again (they read a
            // thread's cursor only while it holds a packet, i.e. after its `begin`).
            self.replays[slot].cursor = unsafe { Cursor::over(segs) };
            self.replays[slot].spent = Segment::default();
        } else {
            let t = &mut self.threads[th];
            (t.busy, t.wait, t.fw_charged) = (0, 0, false);
            self.engine.start(th as u32, frame);
        }
        if let Some(r) = self.reference.as_mut() {
            let t = &mut self.threads[th];
            let (last, _, _) =
                crate::engine::run_to_completion(r.as_mut(), frame, &mut t.ref_bytes);
            t.ref_verdict = Some(PacketEnd::of(&last).verdict);
        }
    }

    /// Feeds `arrivals` (arrival times must not decrease) then processes everything before
    /// `now` (no earlier than the last arrival): [`Self::arrive`] for each, then
    /// [`Self::advance_to`], in one call with the scheduler inlined, so that a task of many
    /// frames pays no call per frame.
    #[inline(never)]
    pub fn arrive_all<'a>(&mut self, mut arrivals: impl Feed<'a>, now: u64, out: &mut Outbox) {
        // Queued frames borrow from `arrivals` until the guard makes them owned, when this
        // returns or unwinds.
        let me = OwnOnExit(self);
        // The frame's other fields read only once everything before its time has happened
        // (see `feed`).
        while let Some(time) = arrivals.peek_time() {
            me.0.advance_inlined(time, out);
            let Some(a) = arrivals.next_arrival() else {
                break;
            };
            me.0.take_arrival(a, out);
        }
        me.0.advance(Some(now), out);
    }

    /// Drops the perf event samples the engine and the reference emitted so far (see
    /// [`crate::engine::discard_records`]): the driver calls it after each of this ME's
    /// tasks, so that they never pile up over a run.
    pub fn discard_records(&mut self) {
        self.engine.discard_records();
        if let Some(r) = self.reference.as_mut() {
            r.discard_records();
        }
    }

    /// Processes everything that happens before `now`, as an arrival at `now` would: lets
    /// the driver flush results of MEs that get no new traffic.
    pub fn advance_to(&mut self, now: u64, out: &mut Outbox) {
        self.advance(Some(now), out);
    }

    /// Processes events strictly before `until` (completions also at `until`); all of them
    /// with `None`.
    ///
    /// Why completions come first without comparing times: a completion's time is when its
    /// thread finished, which set `me_free`; `me_free` never decreases and every run starts
    /// no earlier than it, so a pending completion is never later than the earliest run (and
    /// on a tie the completion goes first anyway). So a completion is taken as soon as it is
    /// due (at most one is ever pending: the one whose time passed `until`), and the loop only
    /// picks among runs. The tests check this against `Self::advance_reference`, the
    /// general comparison of both.
    #[inline]
    fn advance(&mut self, until: Option<u64>, out: &mut Outbox) {
        self.advance_inlined(until.unwrap_or(NONE), out);
    }

    /// [`Self::advance`] (`until`: `NONE` for no limit), always inlined.
    #[inline(always)]
    fn advance_inlined(&mut self, until: u64, out: &mut Outbox) {
        #[cfg(test)]
        if self.scan {
            return self.advance_reference(until, out);
        }
        if self.replay {
            return self.replay_advance(until, out);
        }
        let n = self.threads.len();
        loop {
            if !self.take_due(until) || self.held_mask == 0 {
                return;
            }
            let (br, ri) = self.earliest_ready(n);
            if br >= until {
                return;
            }
            self.run(ri, br, until, out);
        }
    }

    /// Takes the pending completion, if any, when it is due by `until` (no later: `NONE`
    /// for no limit exceeds no time); `false` when it is not, and nothing else may happen
    /// before `until` (a completion comes before every run, see [`Self::advance`]).
    #[inline(always)]
    fn take_due(&mut self, until: u64) -> bool {
        if self.freed_mask != 0 {
            let (bf, fi) = self.earliest_free();
            if bf > until {
                return false;
            }
            self.take_next(fi, bf);
        }
        true
    }

    /// The earliest completion and its thread (ties: lowest thread).
    /// `NONE` is the largest time, so plain `<` skips it (times never reach it).
    #[inline]
    fn earliest_free(&self) -> (u64, usize) {
        let (mut bf, mut fi) = (NONE, 0);
        let mut m = self.freed_mask;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let f = self.free[i & (SLOTS - 1)];
            if f < bf {
                (bf, fi) = (f, i);
            }
        }
        (bf, fi)
    }

    /// The earliest run and its thread: ready threads, no earlier than the ME is free,
    /// round-robin after `last_run` on ties (threads are visited in that order and only a
    /// strictly earlier time replaces the pick). `max` keeps `NONE` (no packet) as `NONE`.
    #[inline]
    fn earliest_ready(&self, n: usize) -> (u64, usize) {
        let me_free = self.me_free;
        let mask = self.held_mask;
        if mask & (mask - 1) == 0 {
            // One thread ready (the usual case below saturation): no order to resolve.
            let i = mask.trailing_zeros() as usize;
            return (self.ready[i & (SLOTS - 1)].max(me_free), i);
        }
        let first = if self.last_run + 1 >= n {
            0
        } else {
            self.last_run + 1
        };
        let rest = mask & (mask - 1);
        if rest & (rest - 1) == 0 {
            // Two threads hold packets (the usual case of a loaded ME): the earlier, or on a
            // tie the one the round-robin order from `first` reaches first.
            let (i, j) = (
                mask.trailing_zeros() as usize,
                rest.trailing_zeros() as usize,
            );
            let ri = self.ready[i & (SLOTS - 1)].max(me_free);
            let rj = self.ready[j & (SLOTS - 1)].max(me_free);
            let i_first = first <= i || first > j;
            return if ri < rj || (ri == rj && i_first) {
                (ri, i)
            } else {
                (rj, j)
            };
        }
        self.scan_ready(mask, first, me_free)
    }

    /// The earliest of the threads in `mask` to run, no earlier than `me_free`, visited in
    /// round-robin order from thread `first` (< the thread count), only a strictly earlier
    /// time replacing the pick.
    #[inline(always)]
    fn scan_ready(&self, mask: u64, first: usize, me_free: u64) -> (u64, usize) {
        // `first < n <= 64`, so the shift is in range.
        let low = (1u64 << first) - 1;
        let (mut br, mut ri) = (NONE, 0);
        for mut m in [mask & !low, mask & low] {
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                let r = self.ready[i & (SLOTS - 1)].max(me_free);
                if r < br {
                    (br, ri) = (r, i);
                }
            }
        }
        (br, ri)
    }

    /// Out of line: a completion is an event only when a frame is queued or an arrival
    /// comes first (see [`Self::complete`]), and inlined, its start of the next packet made
    /// `advance` set up its whole frame on every call (callgrind: ~40 host instructions per
    /// call).
    #[inline(never)]
    fn take_next(&mut self, th: usize, at: u64) {
        self.free[th & (SLOTS - 1)] = NONE;
        self.freed_mask &= !bit(th);
        self.take_queued(th, at);
    }

    /// Runs thread `th` from `at`, the next event being no earlier than `until` (the next
    /// arrival, or the time the driver flushes to).
    ///
    /// When `th` is the only thread with a packet and no thread is about to take a queued
    /// frame, nothing but `th` itself can run on this ME before `until`: each of its swaps
    /// that ends before `until` would be followed by resuming it at exactly its ready time.
    /// The engine then passes through those swaps itself ([`PacketEngine::resume_through`]),
    /// and this accounts the passed segments as if they had been stepped: same busy, wait
    /// and ME times, same order of everything observable. (Replayed packets run in
    /// `replay`'s loops instead.)
    #[inline(always)]
    fn run(&mut self, th: usize, at: u64, until: u64, out: &mut Outbox) {
        self.last_run = th;
        // `th` holds a packet, so a single bit in `held_mask` is its own.
        let alone = self.held_mask & (self.held_mask - 1) == 0 && self.freed_mask == 0;
        let t = &mut self.threads[th];
        // Branch-free: whether this is the packet's first step is a coin toss to the host.
        let fw = self.fw_cycles * u64::from(!t.fw_charged);
        t.fw_charged = true;
        let (step, passed) = if alone {
            self.engine.resume_through(th as u32, at + fw, until)
        } else {
            (self.engine.resume(th as u32), Passed::default())
        };
        let t = &mut self.threads[th];
        // The step's busy cycles, and its wait when it swapped (`None`: the packet's last).
        let (last, swapped) = match step {
            Step::Swap { busy, wait } => (busy, Some(wait)),
            last => {
                let end = PacketEnd::of(&last);
                self.hot[th & (SLOTS - 1)].set_end(end);
                (end.busy, None)
            }
        };
        // The firmware's cycles open the packet's first segment, passed or not.
        t.busy += fw + passed.busy + last;
        t.wait += passed.wait;
        self.me_free = at + fw + passed.busy + passed.wait + last;
        if let Some(wait) = swapped {
            t.wait += wait;
            self.ready[th & (SLOTS - 1)] = self.me_free + wait;
            return;
        }
        let (busy, wait) = (t.busy, t.wait);
        self.complete(th, busy, wait, until, out);
    }

    /// Thread `th` finished its packet at `me_free`, `busy` and `wait` cycles in all:
    /// counts it, and frees the thread.
    ///
    /// The completion is an event of its own (`free`, taken by [`Self::take_next`]) only when
    /// the thread has a queued frame to take, or finished after `until` (an arrival at `until`
    /// must still find it busy). Otherwise `advance` would take the completion next, before
    /// anything else, and take nothing from the empty queue: the thread is simply idle.
    #[inline(always)]
    fn complete(&mut self, th: usize, busy: u64, wait: u64, until: u64, out: &mut Outbox) {
        let slot = th & (SLOTS - 1);
        self.ready[slot] = NONE;
        self.held_mask &= !bit(th);
        let done = self.me_free;
        if done > until || self.queued_mask & bit(th) != 0 {
            self.free[slot] = done;
            self.freed_mask |= bit(th);
        }
        let h = &mut self.hot[slot];
        let service = busy + wait;
        h.stats.processed += 1;
        h.stats.service_cycles += service;
        let (verdict, arrival) = (h.verdict, h.arrival);
        if let Some(c) = self.verdicts.get_mut(verdict as usize) {
            *c += 1;
        }
        let s = &mut self.stats;
        s.busy.record(busy);
        s.service.record(service);
        out.latency.record(done - arrival);
        if self.report_each {
            // The packet's index and end read there, from `hot`: loaded here, they were
            // kept on the stack across the histograms' records.
            self.report(th, out);
        }
    }

    /// Reports the frame just finished on thread `th` (its `hot` entry) as a [`FrameResult`]
    /// (with its bytes when passed/transmitted) and checks it against the reference engine:
    /// only for runs with `--out` or a reference, so out of the scheduler's loop.
    #[cold]
    #[inline(never)]
    fn report(&mut self, th: usize, out: &mut Outbox) {
        let h = &self.hot[th & (SLOTS - 1)];
        let (index, verdict, done) = (h.index, h.verdict, h.finished);
        let output = self.results && verdict.is_output();
        let Some(t) = self.threads.get(th) else {
            return;
        };
        if !output && t.ref_verdict.is_none() {
            out.results.push(FrameResult {
                index,
                verdict,
                output: None,
            });
            return;
        }
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        if done {
            self.engine.output(th as u32, &mut bytes);
        }
        let t = &self.threads[th];
        let mismatch = t.ref_verdict.and_then(|rv| {
            if rv != verdict {
                Some(format!(
                    "frame {index}: verdict {verdict:?}, reference {rv:?}"
                ))
            } else if t.ref_bytes != bytes {
                Some(format!("frame {index}: output bytes differ"))
            } else {
                None
            }
        });
        if let Some(m) = mismatch {
            let s = &mut self.stats;
            s.mismatches += 1;
            if s.first_mismatch.as_ref().is_none_or(|(i, _)| index < *i) {
                s.first_mismatch = Some((index, m));
            }
        }
        if self.results {
            out.results.push(FrameResult {
                index,
                verdict,
                output: output.then(|| bytes.clone()),
            });
        }
        self.scratch = bytes;
    }
}

mod boxed;
mod cursor;
mod feed;
mod queue;
#[cfg(test)]
mod reference;
mod replay;

#[cfg(test)]
#[path = "lanes_tests.rs"]
mod tests;
