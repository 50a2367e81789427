//! The ME model for engines whose threads commute ([`PacketEngine::threads_commute`]): a
//! packet runs to its end as its thread takes it (`MeSim::begin`), and the scheduler
//! replays its recorded segments, in loops that keep the ME's times in registers.
//!
//! The same steps as the general model in `lanes` (the tests check both against the full
//! scan, `MeSim::advance_reference`): the earliest ready thread runs, ties round-robin after
//! the last one run, a completion is taken as soon as it is due. What differs is only how
//! many times the host goes round the scheduler: one loop per number of threads holding
//! packets (one, two, three or more), entered once per event that changes that number.
//!
//! Tried in session 18 and dropped (callgrind, bench profile, `simspeed pre`, host
//! instructions per frame; thread CPU time of interleaved rounds): the pair's pick without
//! branches, its two threads' state in 2-element arrays indexed by the pick (+35, 0.959x:
//! the host predicts these branches better than the extra work costs); a completion taking
//! its thread's next queued frame at once, through an out-of-line call from the loops (+5:
//! the call's spills in the loops cost more than the round through `take_due`); the busy
//! and service histograms per host thread rather than per ME (+6.5, 0.994x: their records
//! cost time, ~3.7% of a frame, but not from cache misses); a prefetch of the arriving
//! thread's queue (+4.6, 1.004x).

use super::{MeSim, NONE, Outbox, SLOTS};
use crate::engine::PacketEngine;
use crate::engine::Segment;

impl<E: PacketEngine> MeSim<E> {
    /// [`MeSim::advance`] for replayed packets: processes events strictly before `until`
    /// (completions also at `until`).
    ///
    /// Why a loop of its own rather than the general one with replay tests: the general
    /// loop tested the replay flag and the pending completion on every round and picked the
    /// lone thread through `earliest_ready`, ~15 host instructions a round at 2.3 rounds
    /// per frame on the demo.
    #[inline(always)]
    pub(super) fn replay_advance(&mut self, until: u64, out: &mut Outbox) {
        loop {
            // At most one completion is pending (see `advance`), and it comes first.
            if !self.take_due(until) {
                return;
            }
            let held = self.held_mask;
            // `x & (x - 1) == 0` tests, which LLVM keeps as they are; written as
            // `count_ones() == 2` they became a long population count without a popcnt
            // target.
            let rest = held & held.wrapping_sub(1);
            let more = if rest == 0 {
                if held == 0 {
                    return;
                }
                self.replay_alone(held.trailing_zeros() as usize, until, out)
            } else if rest & (rest - 1) == 0 {
                self.replay_pair(until, out)
            } else {
                self.replay_many(until, out)
            };
            if !more {
                return;
            }
        }
    }

    /// Replays thread `th`, the only one holding a packet, with no completion pending: it
    /// passes each swap after which it is ready again before `until` (nothing else can run
    /// on this ME before then, so each such swap would be followed by resuming it at its
    /// ready time), the rule of `nfp_backend::exec::RunThrough`. Returns `true` when the
    /// packet finished with a completion pending (`replay_advance` goes on), `false` when
    /// its next step would start at or after `until`, or it finished with none pending (no
    /// thread holds a packet then, so `replay_advance` would take nothing and return:
    /// callgrind, bench profile, `simspeed pre`, without libc memset/memcpy, 750.5 -> 747.8
    /// host instructions per frame against returning `true`).
    ///
    /// Tried: going on here from `replay_pair` when one of its two threads finished and no
    /// completion is pending, rather than through `replay_advance`'s dispatch: +0.8 host
    /// instructions per frame calling this, +10.2 with the other thread's ready time,
    /// cursor and cycles passed in registers (spills in the pair's loop).
    #[inline(always)]
    fn replay_alone(&mut self, th: usize, until: u64, out: &mut Outbox) -> bool {
        let slot = th & (SLOTS - 1);
        let mut at = self.ready[slot].max(self.me_free);
        if at >= until {
            return false;
        }
        self.last_run = th;
        // The firmware's cycles are already in the first segment (`MeSim::begin`).
        let mut c = self.replays[slot].cursor;
        let mut spent = self.replays[slot].spent;
        while let Some(s) = c.take() {
            spent.busy += s.busy;
            spent.wait += s.wait;
            let end = at + s.busy;
            let ready = end + s.wait;
            if ready >= until {
                (self.replays[slot].cursor, self.replays[slot].spent) = (c, spent);
                self.me_free = end;
                self.ready[slot] = ready;
                return false;
            }
            at = ready;
        }
        // No write-back of the cursor and cycles: nothing reads them before the thread's
        // next `begin`.
        self.finish_replayed(th, at, spent, until, out);
        // No thread holds a packet now: without a completion pending, `replay_advance`
        // would find nothing to do.
        self.freed_mask != 0
    }

    /// Replays while exactly two threads hold packets and no completion is pending (the
    /// usual state of a loaded ME: 2.3 of its 3.8 steps per frame on the demo), until one of
    /// them finishes (returns `true`: `advance` goes on) or the next step would start at or
    /// after `until` (`false`).
    ///
    /// The same steps as `advance` picking with [`MeSim::earliest_ready`] and running with
    /// [`MeSim::run`], with the pair's ready times and the ME's free time in registers: no
    /// other thread can become ready (no completion, no arrival before `until`), neither
    /// thread is alone (so every segment is a step of its own), and once one of the two has
    /// run, the round-robin order after it reaches the other first, so a tie goes to the
    /// thread that did not run last.
    ///
    /// Measured (callgrind, `simspeed pre`, demo): a step through `advance`'s general loop
    /// cost ~65 host instructions, one of this loop ~15; the two loops (this one and
    /// [`Self::replay_many`], with `arrive` and `run` forced inline) took the simulation from
    /// 1,478 to ~1,419 per frame.
    #[inline(always)]
    fn replay_pair(&mut self, until: u64, out: &mut Outbox) -> bool {
        let mask = self.held_mask;
        let (i, j) = (
            mask.trailing_zeros() as usize,
            (mask & (mask - 1)).trailing_zeros() as usize,
        );
        let (si, sj) = (i & (SLOTS - 1), j & (SLOTS - 1));
        // The round-robin order from `first` (the thread after the last one run, 0 after
        // the last thread) reaches `i` before `j` when `first <= i` or `first > j`: with
        // `i < j < n`, a `first` of `last_run + 1` unwrapped at `n` gives the same answer
        // (`n > j`), so the thread count is not read (callgrind, bench profile, `simspeed
        // pre`: -2.6 host instructions per frame).
        let last = self.last_run;
        let mut i_wins_tie = last < i || last >= j;
        // The pair's ready times and cursors, the ME's free time and the last thread run in
        // locals: the loop writes nothing back until it ends.
        let (mut ri, mut rj) = (self.ready[si], self.ready[sj]);
        let (mut ci, mut cj) = (self.replays[si].cursor, self.replays[sj].cursor);
        let (mut bi, mut wi, mut bj, mut wj) = (0u64, 0u64, 0u64, 0u64);
        let mut me_free = self.me_free;
        let mut last = last;
        // The thread that finished, and when its last step started.
        let mut finished = None;
        loop {
            let (at_i, at_j) = (ri.max(me_free), rj.max(me_free));
            let pick_i = at_i < at_j || (at_i == at_j && i_wins_tie);
            let at = if pick_i { at_i } else { at_j };
            if at >= until {
                break;
            }
            i_wins_tie = !pick_i;
            let next = if pick_i { ci.take() } else { cj.take() };
            let Some(s) = next else {
                finished = Some((if pick_i { i } else { j }, at));
                break;
            };
            me_free = at + s.busy;
            let ready = me_free + s.wait;
            if pick_i {
                (bi, wi, ri) = (bi + s.busy, wi + s.wait, ready);
            } else {
                (bj, wj, rj) = (bj + s.busy, wj + s.wait, ready);
            }
            last = if pick_i { i } else { j };
        }
        (self.ready[si], self.ready[sj]) = (ri, rj);
        (self.replays[si].cursor, self.replays[sj].cursor) = (ci, cj);
        for (slot, b, w) in [(si, bi, wi), (sj, bj, wj)] {
            self.replays[slot].spent.busy += b;
            self.replays[slot].spent.wait += w;
        }
        let Some((th, at)) = finished else {
            self.me_free = me_free;
            self.last_run = last;
            return false;
        };
        self.last_run = th;
        let spent = self.replays[th & (SLOTS - 1)].spent;
        self.finish_replayed(th, at, spent, until, out);
        true
    }

    /// [`Self::replay_pair`] for three or more threads holding packets: the ME's free time
    /// and the last thread run in registers, the ready times picked from by the masked
    /// round-robin scan of [`Self::earliest_ready`].
    #[inline(always)]
    fn replay_many(&mut self, until: u64, out: &mut Outbox) -> bool {
        let mask = self.held_mask;
        let n = self.threads.len();
        let mut me_free = self.me_free;
        let mut last = self.last_run;
        loop {
            // (Whether the ME has at most four threads never changes: a branch the host
            // predicts.)
            let (at, th) = if n <= 4 {
                self.scan_ready4(last, me_free)
            } else {
                let first = if last + 1 >= n { 0 } else { last + 1 };
                self.scan_ready(mask, first, me_free)
            };
            if at >= until {
                break;
            }
            last = th;
            let slot = th & (SLOTS - 1);
            let Some(s) = self.replays[slot].cursor.take() else {
                self.last_run = th;
                self.finish_replayed(th, at, self.replays[slot].spent, until, out);
                return true;
            };
            self.replays[slot].spent.busy += s.busy;
            self.replays[slot].spent.wait += s.wait;
            me_free = at + s.busy;
            self.ready[slot] = me_free + s.wait;
        }
        self.me_free = me_free;
        self.last_run = last;
        false
    }

    /// [`Self::scan_ready`] on an ME of at most four threads, at least one of them holding a
    /// packet: the four first slots visited in round-robin order after `last` (the last
    /// thread run, < 4), without the mask.
    ///
    /// Why: with three or four threads holding packets (1 step a frame on the demo), the
    /// masked scan's loop cost ~11 host instructions per thread visited and ~14 to set up.
    /// A slot without a packet has the ready time `NONE`, which `max` keeps and a strict
    /// `<` never picks; slots from the thread count to 3 never hold one, and visiting them
    /// in the rotation leaves the order of the others the round-robin order modulo the
    /// thread count. So the rotation starts at `(last + 1) & 3` whatever the thread count,
    /// with no wrap at it (an ME of three threads visits slot 3, then 0, 1, 2), and the
    /// first slot visited is the first pick (a packet's time is below `NONE`, so with one
    /// held the pick is the same as from `NONE`). Callgrind, bench profile, `simspeed pre`,
    /// without libc memset/memcpy: 805.6 -> 795.7 host instructions per frame against the
    /// wrap at the thread count and a first pick of `(NONE, 0)` (fewer live values in
    /// `replay_many`'s loop, which had reloaded the ME's address from the stack three times
    /// per pick).
    #[inline(always)]
    fn scan_ready4(&self, last: usize, me_free: u64) -> (u64, usize) {
        let first = last + 1;
        let mut ri = first & 3;
        let mut br = self.ready[ri].max(me_free);
        for k in 1..4 {
            let i = (first + k) & 3;
            let r = self.ready[i].max(me_free);
            if r < br {
                (br, ri) = (r, i);
            }
        }
        debug_assert!(br < NONE, "no thread holds a packet");
        (br, ri)
    }

    /// Thread `th`'s replayed packet takes its last step at `at` (no segments left, `spent`
    /// the busy and wait cycles of its segments): its last busy cycles, then the
    /// completion. The tail of every replay loop.
    ///
    /// Why `spent` passed: `replay_alone` has it in registers and stored it only for this
    /// to load it back (-0.8 host instructions per frame, callgrind, `simspeed pre`).
    /// `replay_pair` passes the finished thread's from memory: summed in registers from its
    /// loop's sums, +10.2 (spills in the pair's loop).
    #[inline(always)]
    fn finish_replayed(
        &mut self,
        th: usize,
        at: u64,
        spent: Segment,
        until: u64,
        out: &mut Outbox,
    ) {
        let slot = th & (SLOTS - 1);
        let last = self.hot[slot].last_busy;
        self.me_free = at + last;
        self.complete(th, spent.busy + last, spent.wait, until, out);
    }
}
