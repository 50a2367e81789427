//! Runts and per-frame results: only runs that write `--out` pass per-frame results, which
//! the [`Collector`] releases to the sink in input order.

use std::collections::VecDeque;

use crate::error::SimError;
use crate::lanes::FrameResult;
use crate::stats::Verdict;

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
        // No early return on an empty `out`: runts are inserted by [`Collector::runt`],
        // which has no sink, so a batch of nothing but runts (or runts after the last
        // frame that ran) is released only here.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames released to a sink, by index.
    fn released(c: &mut Collector, out: &mut Vec<FrameResult>) -> Vec<u64> {
        let mut got = Vec::new();
        c.take(out, &mut |i, _: &[u8]| {
            got.push(i);
            Ok(())
        })
        .expect("the sink accepts every frame");
        got
    }

    fn passed(index: u64) -> FrameResult {
        FrameResult {
            index,
            verdict: Verdict::Pass,
            output: Some(vec![0; 14]),
        }
    }

    #[test]
    fn a_run_of_nothing_but_runts_releases_every_frame() {
        let mut c = Collector::new(true);
        for i in 0..5 {
            c.runt(i);
        }
        c.total = 5;
        assert!(released(&mut c, &mut Vec::new()).is_empty());
        assert_eq!((c.next, c.runts), (5, 5));
    }

    #[test]
    fn runts_after_the_last_result_are_released_at_the_end() {
        let mut c = Collector::new(true);
        c.runt(1);
        assert_eq!(released(&mut c, &mut vec![passed(0)]), vec![0]);
        c.runt(2);
        assert_eq!(released(&mut c, &mut Vec::new()), Vec::<u64>::new());
        assert_eq!(c.next, 3);
        assert_eq!(released(&mut c, &mut vec![passed(4)]), Vec::<u64>::new());
        c.runt(3);
        assert_eq!(released(&mut c, &mut Vec::new()), vec![4]);
        assert_eq!(c.next, 5);
    }
}
