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
//!
//! Everything here depends only on this ME's frames and their arrival times, never on other
//! MEs, so MEs can be simulated on any host thread in any interleaving with identical
//! results. Per-lane order is arrival order (a thread finishes one packet before taking the
//! next), so per-flow order holds.

use std::collections::VecDeque;

use crate::engine::{PacketEngine, Step};
use crate::stats::Verdict;
use crate::timing::Histogram;

/// A frame for one ME.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Input frame index.
    pub index: u64,
    /// Arrival time, ME cycles.
    pub time: u64,
    /// Hardware thread (lane within the ME).
    pub thread: u32,
    /// The frame as captured.
    pub frame: Vec<u8>,
}

/// A frame's fate, reported when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameResult {
    /// Input frame index.
    pub index: u64,
    /// What happened to it.
    pub verdict: Verdict,
    /// The frame after the program, for `--out` (only when asked for and passed/transmitted).
    pub output: Option<Vec<u8>>,
    /// How it differs from the reference engine, if it does.
    pub mismatch: Option<String>,
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
    /// Cycles the ME was busy (Σ busy over all steps).
    pub busy_cycles: u64,
    /// Per packet: busy + wait.
    pub service: Histogram,
    /// Per packet: busy.
    pub busy: Histogram,
    /// Per packet: arrival to completion.
    pub latency: Histogram,
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

struct Current {
    index: u64,
    arrival: u64,
    busy: u64,
    wait: u64,
    /// Whether the firmware's per-packet cycles have been charged (on the first step).
    fw_charged: bool,
    /// The reference engine's (verdict, bytes) for this packet, when checking.
    reference: Option<(Verdict, Vec<u8>)>,
}

#[derive(Default)]
struct Thread {
    queue: VecDeque<Arrival>,
    current: Option<Current>,
    used: bool,
    stats: LaneStats,
}

/// "No time" in [`MeSim::ready`] and [`MeSim::free`].
const NONE: u64 = u64::MAX;

/// The reference engine of a checked run.
pub type Reference = Box<dyn PacketEngine>;

/// One simulated ME.
pub struct MeSim<E: PacketEngine> {
    engine: E,
    reference: Option<Reference>,
    threads: Vec<Thread>,
    /// Per thread: when its current packet may run next (`NONE`: no packet). Kept apart
    /// from `threads` so the scheduler's scan, once per event, reads two small arrays.
    ready: Vec<u64>,
    /// Per thread: the time it finished a packet and has not yet taken the next (`NONE`).
    free: Vec<u64>,
    depth: usize,
    keep_output: bool,
    me_free: u64,
    last_run: usize,
    stats: MeStats,
    scratch: Vec<u8>,
    /// Firmware ME cycles per packet around the program (`NicPreset::fw_cycles_per_packet`).
    fw_cycles: u64,
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
    /// ME `me` with `threads` threads whose queues hold `depth` frames each. With
    /// `keep_output`, passed/transmitted frames carry their bytes out.
    pub fn new(
        me: u32,
        engine: E,
        reference: Option<Reference>,
        threads: u32,
        depth: u32,
        keep_output: bool,
    ) -> MeSim<E> {
        MeSim {
            engine,
            reference,
            threads: (0..threads.max(1)).map(|_| Thread::default()).collect(),
            ready: vec![NONE; threads.max(1) as usize],
            free: vec![NONE; threads.max(1) as usize],
            depth: depth as usize,
            keep_output,
            me_free: 0,
            last_run: threads.max(1) as usize - 1,
            stats: MeStats {
                me,
                ..MeStats::default()
            },
            scratch: Vec::new(),
            fw_cycles: 0,
        }
    }

    /// Charges `cycles` of firmware work per packet, on the ME, with the packet's first step.
    pub fn with_fw_cycles(mut self, cycles: u64) -> MeSim<E> {
        self.fw_cycles = cycles;
        self
    }

    /// Feeds the next frame (arrival times must not decrease); results of frames that
    /// finished before it arrived go to `out`.
    pub fn arrive(&mut self, a: Arrival, out: &mut Vec<FrameResult>) {
        self.advance(Some(a.time), out);
        let n = self.threads.len();
        let th = a.thread as usize % n;
        let t = &mut self.threads[th];
        t.used = true;
        t.stats.offered += 1;
        if t.current.is_none() && self.free[th] == NONE && t.queue.is_empty() {
            self.begin(th, a);
        } else if t.queue.len() < self.depth {
            t.queue.push_back(a);
        } else {
            self.stats.queue_drops += 1;
            out.push(FrameResult {
                index: a.index,
                verdict: Verdict::QueueDrop,
                output: None,
                mismatch: None,
            });
        }
    }

    /// Runs every remaining packet; returns the statistics and the engines (for their maps).
    pub fn finish(mut self, out: &mut Vec<FrameResult>) -> (MeStats, E, Option<Reference>) {
        self.advance(None, out);
        self.stats.lanes_used = self.threads.iter().filter(|t| t.used).count() as u32;
        self.stats.lanes = self.threads.iter().map(|t| t.stats).collect();
        (self.stats, self.engine, self.reference)
    }

    /// Thread `th` takes frame `a` at `a.time` (or later, when called from a completion).
    fn begin(&mut self, th: usize, a: Arrival) {
        self.begin_at(th, a, None);
    }

    fn begin_at(&mut self, th: usize, a: Arrival, at: Option<u64>) {
        self.engine.start(th as u32, &a.frame);
        let reference = self.reference.as_mut().map(|r| {
            let mut bytes = Vec::new();
            let (last, _, _) = crate::engine::run_to_completion(r.as_mut(), &a.frame, &mut bytes);
            (verdict_of(&last), bytes)
        });
        self.ready[th] = at.unwrap_or(a.time);
        self.threads[th].current = Some(Current {
            index: a.index,
            arrival: a.time,
            busy: 0,
            wait: 0,
            fw_charged: false,
            reference,
        });
    }

    /// Processes everything that happens before `now`, as an arrival at `now` would: lets
    /// the driver flush results of MEs that get no new traffic.
    pub fn advance_to(&mut self, now: u64, out: &mut Vec<FrameResult>) {
        self.advance(Some(now), out);
    }

    /// Processes events strictly before `until` (completions also at `until`); all of them
    /// with `None`.
    fn advance(&mut self, until: Option<u64>, out: &mut Vec<FrameResult>) {
        let n = self.threads.len();
        loop {
            // The earliest completion (the thread takes its next frame; ties: lowest thread)
            // and the earliest run (ready threads, round-robin after `last_run` on ties:
            // threads are visited in that order and only a strictly earlier time replaces the
            // pick).
            // `NONE` is the largest time, so plain `<` skips it (times never reach it).
            let (mut bf, mut fi) = (NONE, 0);
            for (i, &f) in self.free.iter().enumerate() {
                if f < bf {
                    (bf, fi) = (f, i);
                }
            }
            let free = (bf != NONE).then_some((bf, fi));
            // `max` keeps `NONE` (no packet) as `NONE`.
            let (mut br, mut ri) = (NONE, 0);
            let me_free = self.me_free;
            let first = if self.last_run + 1 >= n {
                0
            } else {
                self.last_run + 1
            };
            let (head, tail) = self.ready.split_at(first);
            for (i, &r) in tail.iter().enumerate() {
                if r.max(me_free) < br {
                    (br, ri) = (r.max(me_free), first + i);
                }
            }
            for (i, &r) in head.iter().enumerate() {
                if r.max(me_free) < br {
                    (br, ri) = (r.max(me_free), i);
                }
            }
            let run = (br != NONE).then_some((br, ri));
            match (free, run) {
                (Some((f, i)), r) if r.is_none_or(|(rt, _)| f <= rt) => {
                    if until.is_some_and(|u| f > u) {
                        return;
                    }
                    self.take_next(i, f);
                }
                (_, Some((rt, i))) => {
                    if until.is_some_and(|u| rt >= u) {
                        return;
                    }
                    self.run(i, rt, out);
                }
                _ => return,
            }
        }
    }

    fn take_next(&mut self, th: usize, at: u64) {
        self.free[th] = NONE;
        if let Some(a) = self.threads[th].queue.pop_front() {
            self.begin_at(th, a, Some(at));
        }
    }

    fn run(&mut self, th: usize, at: u64, out: &mut Vec<FrameResult>) {
        self.last_run = th;
        let step = self.engine.resume(th as u32);
        let mut busy = match &step {
            Step::Swap { busy, .. } | Step::Done { busy, .. } | Step::Fault { busy, .. } => *busy,
        };
        if let Some(cur) = self.threads[th].current.as_mut()
            && !cur.fw_charged
        {
            cur.fw_charged = true;
            busy += self.fw_cycles;
        }
        self.me_free = at + busy;
        self.stats.busy_cycles += busy;
        let t = &mut self.threads[th];
        let Some(cur) = t.current.as_mut() else {
            return;
        };
        cur.busy += busy;
        if let Step::Swap { wait, .. } = step {
            cur.wait += wait;
            self.ready[th] = at + busy + wait;
            return;
        }
        let Some(cur) = t.current.take() else {
            return;
        };
        self.ready[th] = NONE;
        let done = at + busy;
        self.free[th] = done;
        let verdict = verdict_of(&step);
        self.stats.processed += 1;
        self.stats.busy.record(cur.busy);
        self.stats.service.record(cur.busy + cur.wait);
        t.stats.processed += 1;
        t.stats.service_cycles += cur.busy + cur.wait;
        self.stats.latency.record(done - cur.arrival);
        self.stats.last_done = self.stats.last_done.max(done);
        let want_bytes = (self.keep_output && verdict.is_output()) || cur.reference.is_some();
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        if want_bytes && matches!(step, Step::Done { .. }) {
            self.engine.output(th as u32, &mut bytes);
        }
        let mismatch = cur.reference.and_then(|(rv, rb)| {
            if rv != verdict {
                Some(format!(
                    "frame {}: verdict {verdict:?}, reference {rv:?}",
                    cur.index
                ))
            } else if rb != bytes {
                Some(format!("frame {}: output bytes differ", cur.index))
            } else {
                None
            }
        });
        let output = (self.keep_output && verdict.is_output()).then(|| bytes.clone());
        self.scratch = bytes;
        out.push(FrameResult {
            index: cur.index,
            verdict,
            output,
            mismatch,
        });
    }
}

/// The verdict a final step means.
fn verdict_of(step: &Step) -> Verdict {
    match step {
        Step::Done {
            retval, redirect, ..
        } => Verdict::from_xdp(*retval, *redirect),
        Step::Fault { .. } => Verdict::Aborted,
        // Not a final step: treat as aborted rather than panic.
        Step::Swap { .. } => Verdict::Aborted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_core::maps::MapSet;

    /// A scripted engine: every packet is `busy` cycles, one swap of `wait`, then `busy`
    /// again; retval 2 (pass).
    struct Scripted {
        busy: u64,
        wait: u64,
        stage: Vec<u8>,
    }

    impl PacketEngine for Scripted {
        fn start(&mut self, thread: u32, _frame: &[u8]) {
            self.stage[thread as usize] = 0;
        }
        fn resume(&mut self, thread: u32) -> Step {
            let s = &mut self.stage[thread as usize];
            *s += 1;
            if *s == 1 {
                Step::Swap {
                    busy: self.busy,
                    wait: self.wait,
                }
            } else {
                Step::Done {
                    busy: self.busy,
                    retval: 2,
                    redirect: false,
                }
            }
        }
        fn output(&mut self, _thread: u32, out: &mut Vec<u8>) {
            out.clear();
        }
        fn maps(&self) -> Option<&MapSet> {
            None
        }
    }

    fn sim(threads: u32, depth: u32) -> MeSim<Scripted> {
        let e = Scripted {
            busy: 10,
            wait: 100,
            stage: vec![0; threads as usize],
        };
        MeSim::new(0, e, None, threads, depth, false)
    }

    fn arrival(index: u64, time: u64, thread: u32) -> Arrival {
        Arrival {
            index,
            time,
            thread,
            frame: vec![0; 60],
        }
    }

    #[test]
    fn threads_hide_each_others_waits() {
        // Four packets at t=0 on four threads: runs 0-10, 10-20, 20-30, 30-40 (swaps), then
        // second halves at 110-120, 120-130, 130-140, 140-150.
        let mut me = sim(4, 8);
        let mut out = Vec::new();
        for i in 0..4 {
            me.arrive(arrival(i, 0, i as u32), &mut out);
        }
        let (stats, _, _) = me.finish(&mut out);
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|r| r.verdict == Verdict::Pass));
        assert_eq!(stats.busy_cycles, 80);
        assert_eq!(stats.last_done, 150);
        assert_eq!(stats.service.percentile(100.0), 120);
        assert_eq!(stats.latency.percentile(100.0), 150);
        assert_eq!(stats.lanes_used, 4);
    }

    #[test]
    fn full_queue_drops_and_every_frame_is_reported_once() {
        // One thread, depth 2, 10 frames at once: 1 runs, 2 queue, 7 drop.
        let mut me = sim(1, 2);
        let mut out = Vec::new();
        for i in 0..10 {
            me.arrive(arrival(i, 0, 0), &mut out);
        }
        let (stats, _, _) = me.finish(&mut out);
        assert_eq!((stats.processed, stats.queue_drops), (3, 7));
        let mut idx: Vec<u64> = out.iter().map(|r| r.index).collect();
        idx.sort_unstable();
        assert_eq!(idx, (0..10).collect::<Vec<_>>());
        // Same-lane order is arrival order.
        let done: Vec<u64> = out
            .iter()
            .filter(|r| r.verdict == Verdict::Pass)
            .map(|r| r.index)
            .collect();
        assert_eq!(done, vec![0, 1, 2]);
    }

    #[test]
    fn completion_frees_the_slot_before_a_same_time_arrival() {
        // Packet 0 runs 0..120 (10 + 100 wait + 10). With depth 0, a frame arriving at 120
        // finds the thread free; one at 119 is dropped.
        let mut me = sim(1, 0);
        let mut out = Vec::new();
        me.arrive(arrival(0, 0, 0), &mut out);
        me.arrive(arrival(1, 119, 0), &mut out);
        me.arrive(arrival(2, 120, 0), &mut out);
        let (stats, _, _) = me.finish(&mut out);
        assert_eq!((stats.processed, stats.queue_drops), (2, 1));
        assert_eq!(
            out.iter().find(|r| r.index == 1).map(|r| r.verdict),
            Some(Verdict::QueueDrop)
        );
    }
}
