//! Running a thread through memory waits that nothing else could fill.
//!
//! # Why
//!
//! nic-sim's timing model drives a thread one *segment* at a time: the thread runs until a
//! memory command swaps it out, the model lets other threads use the ME, and resumes it when
//! the command's latency has passed. When the thread is the only one with work on its ME and
//! the next arrival comes after the command completes, the model can do nothing but resume the
//! same thread at exactly the completion time: the round trip through the model (leave the
//! handler chain, build the event, pick the next thread, re-enter the chain) changes nothing,
//! yet costs about a hundred host instructions per swap (a packet of the demo filter swaps
//! four times; its whole simulation is about 4,000).
//!
//! [`Thread::run_through_fast`](super::Thread::run_through_fast) lets the handler chain keep
//! the model's clock itself: at a swap it computes when the thread would be ready again and,
//! if that is strictly before the caller's `horizon` (the first time anything else could
//! happen on the ME), it records the segment and goes on in the same chain. The caller learns
//! the passed segments' total busy and wait cycles; the segment it finally returns is the same
//! one stepping would have returned last. Nothing else changes: effects happen at issue in
//! both cases, and the thread would have been resumed at exactly `ready` anyway.

use super::Event;

/// One passed segment of a recorded run ([`Thread::run_to_end_fast`](super::Thread::run_to_end_fast)):
/// the cycles the thread issued, then the cycles it waited swapped out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    /// ME cycles issued since the previous segment ended.
    pub busy: u64,
    /// Latency of the command that ended it.
    pub wait: u64,
}

/// The model's clock for one resume of a thread that may run through its memory waits.
///
/// Passed segments are contiguous from the resume's start, so their busy cycles are the
/// thread's busy count at the last passed swap (`mark`), and the current segment started at
/// `at + mark + wait`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunThrough {
    /// Model time (ME cycles) at which the resume's first segment started.
    pub(super) at: u64,
    /// A swap is passed through only if the thread is ready again strictly before this
    /// (0: never, plain stepping).
    pub(super) horizon: u64,
    /// Busy cycles of the passed segments: the thread's busy count (since its last event)
    /// at the last passed swap.
    pub(super) mark: u64,
    /// Wait cycles of the passed swaps.
    pub(super) wait: u64,
}

impl RunThrough {
    /// A resume whose first segment starts at model time `at` and may pass swaps whose
    /// thread is ready again before `horizon`.
    pub fn new(at: u64, horizon: u64) -> RunThrough {
        RunThrough {
            at,
            horizon,
            ..RunThrough::default()
        }
    }

    /// Busy cycles of the segments passed through (not in the returned event).
    pub fn busy(&self) -> u64 {
        self.mark
    }

    /// Wait cycles of the segments passed through (not in the returned event).
    pub fn wait(&self) -> u64 {
        self.wait
    }

    /// The handler chain's form of the rule: a swap of `w` cycles at count `n` with `extra`
    /// cycles beyond one per instruction is passed iff `n + extra + w` is below this
    /// (`busy` = the thread's busy count and `n0` = its instruction count when the chain
    /// started). Derivation: the thread is ready at `at + wait + total + w` where `total =
    /// busy + n - n0 + extra`; each pass of `w` lowers the limit by `w`. With horizon 0 the
    /// limit is at most `n0`, which no count in the chain is below: nothing passes.
    #[inline(always)]
    pub(super) fn chain_limit(&self, busy: u64, n0: u64) -> u64 {
        if self.horizon == 0 {
            // Stepping (the common case of a loaded ME): no arithmetic.
            return 0;
        }
        // Saturating: a horizon already reached gives `n0`, below every count in the chain.
        self.horizon
            .saturating_sub(self.at.saturating_add(self.wait).saturating_add(busy))
            .saturating_add(n0)
    }

    /// At a swap of `w` cycles, `total` busy cycles into the resume: whether the thread goes
    /// on (the swap is recorded as passed) or must swap out. Public for a timing model that
    /// replays recorded segments (nic-sim) by the same rule.
    #[inline(always)]
    pub fn pass(&mut self, total: u64, w: u64) -> bool {
        let ready = u128::from(self.at) + u128::from(self.wait) + u128::from(total) + u128::from(w);
        if ready < u128::from(self.horizon) {
            self.mark = total;
            self.wait += w;
            true
        } else {
            false
        }
    }

    /// The event as stepping would have returned it: busy cycles of the last segment only.
    pub(super) fn settle(&mut self, e: Event) -> Event {
        let mark = self.mark;
        match e {
            Event::Swap {
                busy_cycles,
                wait_cycles,
                target,
            } => Event::Swap {
                busy_cycles: busy_cycles - mark,
                wait_cycles,
                target,
            },
            Event::Done {
                retval,
                busy_cycles,
                insns,
            } => Event::Done {
                retval,
                busy_cycles: busy_cycles - mark,
                insns,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::SwapTarget;
    use crate::target::FwHelper;

    #[test]
    fn passes_only_swaps_that_end_before_the_horizon() {
        let mut c = RunThrough::new(100, 200);
        // 10 busy + 50 wait: ready at 160 < 200, passed.
        assert!(c.pass(10, 50));
        assert_eq!((c.busy(), c.wait()), (10, 50));
        // 30 more busy (40 in total) + 10 wait: ready at 200, not before the horizon.
        assert!(!c.pass(40, 10));
        assert_eq!((c.busy(), c.wait()), (10, 50));
        let e = c.settle(Event::Swap {
            busy_cycles: 40,
            wait_cycles: 10,
            target: SwapTarget::Fw(FwHelper::MapLookup),
        });
        assert!(
            matches!(
                e,
                Event::Swap {
                    busy_cycles: 30,
                    ..
                }
            ),
            "{e:?}"
        );
        // Horizon 0 never passes, whatever the chain's counts.
        assert!(!RunThrough::new(0, 0).pass(1, 0));
        assert!(RunThrough::new(5, 0).chain_limit(0, 1000) <= 1000);
    }

    /// The chain's limit agrees with `pass` (after any passes, any counts).
    #[test]
    fn chain_limit_is_the_same_rule() {
        for (at, horizon) in [(0, 0), (0, 500), (100, 900), (7, u64::MAX)] {
            for (busy, n0, n, extra, w) in
                [(0, 0, 10, 0, 50), (30, 100, 160, 7, 300), (5, 9, 9, 0, 0)]
            {
                let mut c = RunThrough::new(at, horizon);
                c.pass(3, 40);
                let lim = c.chain_limit(busy, n0);
                let total = busy + n - n0 + extra;
                let by_chain = n + extra + w < lim;
                assert_eq!(
                    by_chain,
                    c.pass(total, w),
                    "{at} {horizon} {busy} {n0} {n} {extra} {w}"
                );
            }
        }
    }
}
