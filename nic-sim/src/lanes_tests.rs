//! `lanes`' unit tests: the ME model against a scripted engine.

use super::*;
use vm_core::maps::MapSet;

/// A scripted engine: every packet is `busy` cycles, then `swaps` times a swap of `wait`
/// (`wait + 7` for the second, so that waits differ) and `busy` again; retval 2 (pass).
/// With `commute`, the timing model replays its packets' segments.
struct Scripted {
    busy: u64,
    wait: u64,
    swaps: u8,
    commute: bool,
    stage: Vec<u8>,
}

impl PacketEngine for Scripted {
    fn start(&mut self, thread: u32, _frame: &[u8]) {
        self.stage[thread as usize] = 0;
    }
    fn resume(&mut self, thread: u32) -> Step {
        let s = &mut self.stage[thread as usize];
        *s += 1;
        if *s <= self.swaps {
            Step::Swap {
                busy: self.busy,
                wait: self.wait + if *s == 2 { 7 } else { 0 },
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
    fn threads_commute(&self) -> bool {
        self.commute
    }
}

fn sim(threads: u32, depth: u32) -> MeSim<Scripted> {
    let e = Scripted {
        busy: 10,
        wait: 100,
        swaps: 1,
        commute: false,
        stage: vec![0; threads as usize],
    };
    MeSim::new(0, e, None, threads, depth, true)
}

fn arrival(index: u64, time: u64, thread: u32) -> Arrival<'static> {
    Arrival {
        index,
        time,
        thread,
        frame: &[0; 60],
    }
}

#[test]
fn threads_hide_each_others_waits() {
    // Four packets at t=0 on four threads: runs 0-10, 10-20, 20-30, 30-40 (swaps), then
    // second halves at 110-120, 120-130, 130-140, 140-150.
    let mut me = sim(4, 8);
    let mut out = Outbox::default();
    for i in 0..4 {
        me.arrive(arrival(i, 0, i as u32), &mut out);
    }
    let (stats, _, _) = Box::new(me).finish(&mut out);
    assert_eq!(out.results.len(), 4);
    assert!(out.results.iter().all(|r| r.verdict == Verdict::Pass));
    assert_eq!(stats.busy_cycles, 80);
    assert_eq!(stats.last_done, 150);
    assert_eq!(stats.service.percentile(100.0), 120);
    assert_eq!(out.latency.percentile(100.0), 150);
    assert_eq!(stats.lanes_used, 4);
}

#[test]
fn full_queue_drops_and_every_frame_is_reported_once() {
    // One thread, depth 2, 10 frames at once: 1 runs, 2 queue, 7 drop.
    let mut me = sim(1, 2);
    let mut out = Outbox::default();
    for i in 0..10 {
        me.arrive(arrival(i, 0, 0), &mut out);
    }
    let (stats, _, _) = Box::new(me).finish(&mut out);
    assert_eq!((stats.processed, stats.queue_drops), (3, 7));
    let mut idx: Vec<u64> = out.results.iter().map(|r| r.index).collect();
    idx.sort_unstable();
    assert_eq!(idx, (0..10).collect::<Vec<_>>());
    // Same-lane order is arrival order.
    let done: Vec<u64> = out
        .results
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
    let mut out = Outbox::default();
    me.arrive(arrival(0, 0, 0), &mut out);
    me.arrive(arrival(1, 119, 0), &mut out);
    me.arrive(arrival(2, 120, 0), &mut out);
    let (stats, _, _) = Box::new(me).finish(&mut out);
    assert_eq!((stats.processed, stats.queue_drops), (2, 1));
    assert_eq!(
        out.results.iter().find(|r| r.index == 1).map(|r| r.verdict),
        Some(Verdict::QueueDrop)
    );
}

proptest::proptest! {
    /// The masked scheduler (at most 64 threads) picks exactly what the full scan does:
    /// same result order, same cycles, on traffic with many same-time ties; and replaying
    /// recorded segments (`commute`) gives what stepping the engine gives; and feeding
    /// arrivals in runs through `arrive_all` gives what feeding them one by one gives.
    #[test]
    fn masked_scheduler_equals_the_scan(
        threads in 1u32..10,
        // Shallow queues (drops) and deep ones (rings growing past their first size).
        depth in proptest::prop_oneof![0u32..4, 4u32..40],
        busy in 1u64..20,
        wait in 0u64..40,
        swaps in 0u8..4,
        commute in proptest::bool::ANY,
        arrivals in proptest::collection::vec((0u64..15, 0u32..12, proptest::bool::ANY), 1..120),
    ) {
        // `all`: the arrivals fed in runs through `arrive_all`, each run ending where the
        // one-by-one feed flushes (or at its last arrival's time, which changes nothing).
        let go_fed = |scan: bool, commute: bool, all: bool| {
            let e = Scripted { busy, wait, swaps, commute, stage: vec![0; threads as usize] };
            let mut me = MeSim::new(0, e, None, threads, depth, true);
            me.scan = scan;
            let mut out = Outbox::default();
            let mut t = 0;
            let mut run = Vec::new();
            for (i, &(dt, th, flush)) in arrivals.iter().enumerate() {
                t += dt;
                if all {
                    run.push(arrival(i as u64, t, th));
                    if flush || i + 1 == arrivals.len() {
                        let now = if flush { t + dt } else { t };
                        me.arrive_all(Each::new(run.drain(..)), now, &mut out);
                    }
                    continue;
                }
                me.arrive(arrival(i as u64, t, th), &mut out);
                if flush {
                    me.advance_to(t + dt, &mut out);
                }
            }
            let (st, _, _) = Box::new(me).finish(&mut out);
            let order: Vec<(u64, Verdict)> = out.results.iter().map(|r| (r.index, r.verdict)).collect();
            // Whole histograms: every packet's busy, busy + wait and latency, not a summary.
            (order, st.busy_cycles, st.last_done, st.processed, st.queue_drops,
             out.latency.buckets(), st.service.buckets(), st.busy.buckets(), st.lanes)
        };
        let go = |scan: bool, commute: bool| go_fed(scan, commute, false);
        let reference = go(true, false);
        proptest::prop_assert_eq!(go(false, commute), reference.clone());
        proptest::prop_assert_eq!(go_fed(false, commute, true), reference);
    }
}

/// [`Scripted`] that keeps the first byte of every frame it starts.
struct Seen {
    inner: Scripted,
    firsts: Vec<u8>,
}

impl PacketEngine for Seen {
    fn start(&mut self, thread: u32, frame: &[u8]) {
        self.firsts.push(frame.first().copied().unwrap_or(0));
        self.inner.start(thread, frame);
    }
    fn resume(&mut self, thread: u32) -> Step {
        self.inner.resume(thread)
    }
    fn output(&mut self, thread: u32, out: &mut Vec<u8>) {
        self.inner.output(thread, out);
    }
    fn maps(&self) -> Option<&MapSet> {
        None
    }
    fn threads_commute(&self) -> bool {
        self.inner.commute
    }
}

#[test]
fn frames_queued_across_tasks_keep_their_bytes() {
    // One thread, deep queue: frames of each `arrive_all` call queue behind the first, and
    // the call ends (at `now`, before they run) with frames still queued, whose batch is
    // then overwritten, as the driver reuses a batch's buffers.
    for commute in [false, true] {
        let inner = Scripted {
            busy: 10,
            wait: 100,
            swaps: 1,
            commute,
            stage: vec![0],
        };
        let e = Seen {
            inner,
            firsts: Vec::new(),
        };
        let mut me = MeSim::new(0, e, None, 1, 16, false);
        let mut out = Outbox::default();
        for call in 0..3u64 {
            let mut batch: Vec<Vec<u8>> = (0..4u8).map(|k| vec![call as u8 * 4 + k; 60]).collect();
            let arrivals: Vec<Arrival<'_>> = batch
                .iter()
                .enumerate()
                .map(|(k, f)| Arrival {
                    index: call * 4 + k as u64,
                    time: call * 4 + k as u64,
                    thread: 0,
                    frame: f,
                })
                .collect();
            me.arrive_all(Each::new(arrivals.into_iter()), call * 4 + 4, &mut out);
            for f in &mut batch {
                f.fill(0xee);
            }
            drop(batch);
        }
        let (st, e, _) = Box::new(me).finish(&mut out);
        assert_eq!(st.processed, 12);
        assert_eq!(e.firsts, (0..12).collect::<Vec<u8>>(), "commute {commute}");
    }
}
