//! The tests' reference for the ME model's scheduler: [`MeSim::advance`] as the plain
//! comparison of the earliest completion and the earliest run at every event, each found by
//! scanning every thread, against which the masks, the inlined scheduler and the replay loops
//! are checked (`MeSim::scan`, the lanes tests).

use super::{MeSim, NONE, Outbox};
use crate::engine::PacketEngine;

impl<E: PacketEngine> MeSim<E> {
    /// [`Self::advance`] comparing the earliest completion and the earliest run at every
    /// event, picking by scanning every thread (the tests' reference).
    pub(super) fn advance_reference(&mut self, until: u64, out: &mut Outbox) {
        let n = self.threads.len();
        while self.held_mask | self.freed_mask != 0 {
            // The earliest completion (the thread takes its next frame; ties: lowest thread)
            // and the earliest run (ready threads, round-robin after `last_run` on ties:
            // threads are visited in that order and only a strictly earlier time replaces the
            // pick).
            // `NONE` is the largest time, so plain `<` skips it (times never reach it).
            let (bf, fi) = if self.freed_mask == 0 {
                (NONE, 0)
            } else {
                self.earliest_free_scan()
            };
            let (br, ri) = if self.held_mask == 0 {
                (NONE, 0)
            } else {
                self.earliest_ready_scan(n)
            };
            // With no `until` (NONE), no time exceeds it: nothing stops early.
            if bf != NONE && bf <= br {
                if bf > until {
                    return;
                }
                self.take_next(fi, bf);
            } else if br != NONE {
                if br >= until {
                    return;
                }
                self.run(ri, br, until, out);
            } else {
                return;
            }
        }
    }

    /// [`Self::earliest_free`] by scanning every thread (the tests' reference).
    fn earliest_free_scan(&self) -> (u64, usize) {
        let (mut bf, mut fi) = (NONE, 0);
        for (i, &f) in self.free[..self.threads.len()].iter().enumerate() {
            if f < bf {
                (bf, fi) = (f, i);
            }
        }
        (bf, fi)
    }

    /// [`Self::earliest_ready`] by scanning every thread (the tests' reference).
    fn earliest_ready_scan(&self, n: usize) -> (u64, usize) {
        let me_free = self.me_free;
        let first = if self.last_run + 1 >= n {
            0
        } else {
            self.last_run + 1
        };
        let (mut br, mut ri) = (NONE, 0);
        let (head, tail) = self.ready[..n].split_at(first);
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
        (br, ri)
    }
}
