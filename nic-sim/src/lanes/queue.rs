//! The lanes' queued frames: one ring per lane, all of an ME's rings in one allocation, each
//! frame borrowed from the batch while the task that queued it runs.
//!
//! Why borrowed: a frame that arrives at a busy thread waits in its queue, and most leave
//! it within the same task (`MeSim::arrive_all`, one ME's frames of a batch), while the
//! batch's buffer still holds their bytes. Copying each into a pooled buffer at its arrival
//! cost a `memcpy` call, the pool's pop and push and the buffer's bookkeeping, on ~28% of
//! the demo's frames (callgrind, `simspeed pre`). Now a queued frame points into the batch,
//! and only the frames still queued when the task ends are copied ([`MeSim::own_queued`],
//! a few per task), because the batch is cleared after its tasks.
//!
//! Why rings in one allocation rather than a `VecDeque` per thread: a push went through the
//! thread's `VecDeque` header (in `MeSim::threads`) to its buffer (an allocation of its
//! own) and moved on through that buffer with every frame, lines the scheduler touches only
//! when a frame arrives at a busy thread: perf (session 18) put the arrival at ~2.1x its
//! share of the instructions in time, and cachegrind (`simspeed pre 40000`, 32 KiB L1) had
//! the pushes' stores miss L1 7.3 K times against 2.2 K here. Here a lane's ring state is
//! 16 bytes in [`Queues::lanes`], an entry is 32 bytes (an owned frame's buffer out of it,
//! in a slab), and a ring that empties starts over at its first entry, so that most pushes
//! (to an empty queue) write the line the last one wrote. Rings grow on demand (doubling,
//! each lane up to the depth), so a deep queue costs memory only on the lanes that fill.
//!
//! Measured against the `VecDeque`s (bench profile, `simspeed pre`): callgrind 742.7 ->
//! 731.4 host instructions per frame without libc's memset, memcpy and malloc (754.1 ->
//! 741-744 with them, which vary from run to run with the heap's layout); perf cpu-clock
//! samples of the busy arrival's path 5.5% -> 4.4% of the run; thread CPU time 1.010x to
//! 1.040x (four runs of 20-30 interleaved rounds, two each way, on a loaded host). Tried and
//! dropped: the idle test on the masks (`(held_mask | freed_mask) & bit`, +8: registers
//! shifted in `arrive_all`), unchecked ring indexing (+2), the push's slot through
//! [`Lane::at`] (+3, the same arithmetic in another order).

use super::{MeSim, SLOTS};
use crate::engine::PacketEngine;

/// Entries a lane's ring gets when it first queues a frame (then doubling, up to the depth).
const FIRST_CAP: u32 = 4;

/// A frame waiting in a lane's queue: 32 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Queued {
    pub(super) index: u64,
    pub(super) time: u64,
    /// Borrowed: the frame's first byte, in the frames the current `arrive_all` call reads
    /// its arrivals from (never null: a slice's pointer is not). Null once owned.
    at: *const u8,
    /// Borrowed: the frame's length. Owned: its buffer in [`Queues::bufs`].
    len: usize,
}

// SAFETY: `at` is dereferenced only while the entry is borrowed (not null), and then points
// into the frames of an `arrive_all` call, which converts every such entry into an owned one
// before it returns or unwinds (`OwnOnExit`), or of an `arrive` call, which does before it
// returns (nothing that could unwind runs between its push and that); during the call the
// `MeSim` holding the queue is borrowed mutably by the one host thread running it, so no
// other thread can reach the entry.
unsafe impl Send for Queued {}

impl Queued {
    /// Whether the frame is still borrowed (not yet copied into a buffer of its own).
    #[inline(always)]
    pub(super) fn is_borrowed(&self) -> bool {
        !self.at.is_null()
    }

    /// The frame of a borrowed entry ([`Self::is_borrowed`]).
    ///
    /// # Safety
    /// The frames of the `arrive_all` call that queued the entry must still be alive (see
    /// the `Send` impl).
    #[inline(always)]
    pub(super) unsafe fn borrowed(&self) -> &[u8] {
        debug_assert!(self.is_borrowed());
        // SAFETY: `at..at + len` is the frame as it was queued (`Queues::push`), alive per
        // the caller's contract.
        unsafe { std::slice::from_raw_parts(self.at, self.len) }
    }
}

/// A [`Queued`] in [`Queues::ring`], aligned to its size: two to a cache line, none across
/// two. (Only there: a popped entry is a plain copy, which LLVM would otherwise keep in a
/// stack frame realigned to 32 bytes.)
#[derive(Debug, Clone, Copy)]
#[repr(align(32))]
struct Slot(Queued);

const _: () = assert!(size_of::<Slot>() == 32);

impl Slot {
    const EMPTY: Slot = Slot(Queued {
        index: 0,
        time: 0,
        at: std::ptr::null(),
        len: 0,
    });
}

/// A lane's ring: `len` entries from `head` (wrapping at `cap`) of the `cap` entries at
/// `base` in [`Queues::ring`].
#[derive(Debug, Clone, Copy, Default)]
struct Lane {
    base: u32,
    cap: u32,
    head: u32,
    len: u32,
}

impl Lane {
    /// Where in [`Queues::ring`] the lane's `k`-th entry from its head is (`k < cap`, so
    /// one wrap at most).
    fn at(&self, k: u32) -> usize {
        let (at, cap) = (self.head as usize + k as usize, self.cap as usize);
        self.base as usize + if at >= cap { at - cap } else { at }
    }
}

/// Every lane's queue of one ME.
///
/// Invariants: the lanes' rings are disjoint ranges of `ring` (`base + cap <= ring.len()`),
/// `len <= cap`, `head < cap` (0 when `cap` is 0), and `head` is 0 when `len` is 0; an owned
/// entry's buffer index is below `bufs.len()` and not in `spare`.
pub(super) struct Queues {
    ring: Vec<Slot>,
    lanes: [Lane; SLOTS],
    /// Lanes from this one on have no ring yet (so that growing visits only the others).
    used: usize,
    /// Buffers of frames made owned (entries point at them by index); `spare` lists the
    /// ones no entry uses, for the next.
    bufs: Vec<Vec<u8>>,
    spare: Vec<usize>,
}

impl Default for Queues {
    fn default() -> Self {
        Queues {
            ring: Vec::new(),
            lanes: [Lane::default(); SLOTS],
            used: 0,
            bufs: Vec::new(),
            spare: Vec::new(),
        }
    }
}

impl Queues {
    /// Queues frame `index` (arrived at `time`) on lane `slot` (< [`SLOTS`]) if it holds
    /// fewer than `depth`; `false` (a queue drop) if not. The frame is borrowed: the caller
    /// makes it owned ([`MeSim::own_queued`]) before `frame` goes away.
    #[inline(always)]
    pub(super) fn push(
        &mut self,
        slot: usize,
        depth: usize,
        index: u64,
        time: u64,
        frame: &[u8],
    ) -> bool {
        let l = &mut self.lanes[slot & (SLOTS - 1)];
        if l.len >= l.cap {
            return self.push_cold(slot & (SLOTS - 1), depth, index, time, frame);
        }
        // `head < cap` and `len < cap`: one wrap at most.
        let at = l.head as usize + l.len as usize;
        let cap = l.cap as usize;
        let at = if at >= cap { at - cap } else { at };
        l.len += 1;
        let i = l.base as usize + at;
        if let Some(e) = self.ring.get_mut(i) {
            *e = Slot(Queued {
                index,
                time,
                at: frame.as_ptr(),
                len: frame.len(),
            });
        }
        true
    }

    /// [`Self::push`] when the lane's ring is full: grows it if `depth` allows.
    #[cold]
    #[inline(never)]
    fn push_cold(
        &mut self,
        slot: usize,
        depth: usize,
        index: u64,
        time: u64,
        frame: &[u8],
    ) -> bool {
        if self.lanes[slot].len as usize >= depth {
            return false;
        }
        self.grow(slot, depth);
        self.push(slot, depth, index, time, frame)
    }

    /// Rebuilds `ring` with lane `slot`'s ring twice as long (at least [`FIRST_CAP`], at most
    /// `depth`, which exceeds its length), every lane's entries moved to the start of its
    /// new ring in order. Lanes below `slot` without a ring get their first one with it: one
    /// rebuild where each would have cost one at its first queued frame, a fixed cost of
    /// every `simulate` call (callgrind, `simspeed pre 1000`: rebuilding for each lane, and
    /// over all [`SLOTS`] lanes, cost +6.3% host instructions per call).
    fn grow(&mut self, slot: usize, depth: usize) {
        let used = self.used.max(slot + 1);
        let first = u32::try_from(depth).map_or(FIRST_CAP, |d| FIRST_CAP.min(d));
        let new_cap = |i: usize, l: &Lane| {
            if i == slot {
                let want = l.cap.saturating_mul(2).max(FIRST_CAP);
                u32::try_from(depth).map_or(want, |d| want.min(d))
            } else if l.cap == 0 {
                first
            } else {
                l.cap
            }
        };
        let lanes = &mut self.lanes[..used];
        let total: u64 = lanes
            .iter()
            .enumerate()
            .map(|(i, l)| u64::from(new_cap(i, l)))
            .sum();
        // Beyond that, `Lane::base` would overflow: 128 GiB of entries, which a `VecDeque`
        // per lane could not have allocated either.
        let total = usize::try_from(total)
            .ok()
            .filter(|&t| u32::try_from(t).is_ok())
            .expect("queued frames of one ME beyond 2^32 entries");
        let mut ring = vec![Slot::EMPTY; total];
        let mut base = 0u32;
        for (i, l) in lanes.iter_mut().enumerate() {
            let cap = new_cap(i, l);
            for k in 0..l.len {
                ring[base as usize + k as usize] = self.ring[l.at(k)];
            }
            *l = Lane {
                base,
                cap,
                head: 0,
                len: l.len,
            };
            base += cap;
        }
        self.ring = ring;
        self.used = used;
    }

    /// The oldest frame of lane `slot` (< [`SLOTS`]), taken off its queue, and whether the
    /// queue is empty now.
    #[inline(always)]
    pub(super) fn pop(&mut self, slot: usize) -> Option<(Queued, bool)> {
        let l = &mut self.lanes[slot & (SLOTS - 1)];
        if l.len == 0 {
            return None;
        }
        // Field by field: a copy of the whole (aligned) entry went through the stack.
        let e = &self.ring.get(l.base as usize + l.head as usize)?.0;
        let q = Queued {
            index: e.index,
            time: e.time,
            at: e.at,
            len: e.len,
        };
        l.len -= 1;
        let next = l.head + 1;
        let next = if next == l.cap { 0 } else { next };
        // An emptied ring starts over at its first entry (see the module's doc).
        let empty = l.len == 0;
        l.head = if empty { 0 } else { next };
        Some((q, empty))
    }

    /// Buffer `buf` of the slab (an owned entry's, just popped), taken out of it for the
    /// frame's start: give it back with [`Self::give_back`].
    pub(super) fn take_buf(&mut self, buf: usize) -> Vec<u8> {
        self.bufs
            .get_mut(buf)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Returns an owned entry's buffer (from [`Self::take_buf`]) to the slab, free for the
    /// next frame made owned.
    pub(super) fn give_back(&mut self, buf: usize, bytes: Vec<u8>) {
        if let Some(b) = self.bufs.get_mut(buf) {
            *b = bytes;
            self.spare.push(buf);
        }
    }

    /// Makes lane `slot`'s borrowed frames owned (see [`MeSim::own_queued`]).
    fn own_lane(&mut self, slot: usize) {
        let l = self.lanes[slot & (SLOTS - 1)];
        // Borrowed entries are the newest: stop at the first owned one from the back.
        for k in (0..l.len).rev() {
            let i = l.at(k);
            let Some(&Slot(q)) = self.ring.get(i) else {
                return;
            };
            if !q.is_borrowed() {
                return;
            }
            // SAFETY: a borrowed entry's frame is in the frames of the current `arrive_all`
            // call (see the `Send` impl), which are still alive: `own_queued` runs before
            // that call returns.
            let frame = unsafe { q.borrowed() };
            let b = match self.spare.pop() {
                Some(b) => b,
                None => {
                    self.bufs.push(Vec::new());
                    self.bufs.len() - 1
                }
            };
            if let Some(buf) = self.bufs.get_mut(b) {
                buf.clear();
                buf.extend_from_slice(frame);
            }
            self.ring[i] = Slot(Queued {
                at: std::ptr::null(),
                len: b,
                ..q
            });
        }
    }
}

impl<E: PacketEngine> MeSim<E> {
    /// Makes every queued frame owned: what `arrive_all` (and `arrive`) must do before the
    /// frames it was given go away. Only threads with a queued frame are visited.
    pub(super) fn own_queued(&mut self) {
        let mut m = self.queued_mask;
        while m != 0 {
            let th = m.trailing_zeros() as usize;
            m &= m - 1;
            self.queues.own_lane(th);
        }
    }

    /// Thread `th` takes its next queued frame, if any, and may run it from `at`.
    #[inline(always)]
    pub(super) fn take_queued(&mut self, th: usize, at: u64) {
        let Some((q, empty)) = self.queues.pop(th) else {
            return;
        };
        if empty {
            self.queued_mask &= !super::bit(th);
        }
        if q.is_borrowed() {
            // SAFETY: the entry is borrowed, so it was queued by the `arrive_all` (or
            // `arrive`) call running now, whose frames are alive: each makes the entries it
            // queued owned before it returns.
            let frame = unsafe { q.borrowed() };
            self.begin(th, q.index, q.time, frame, at);
        } else {
            self.begin_owned(th, q.index, q.time, q.len, at);
        }
    }

    /// [`Self::take_queued`] for a frame made owned: its buffer out of the slab while the
    /// thread starts it, then back. Out of line: a few frames per task at most (those still
    /// queued when a task ends), and inlined, its buffer's moves cost the borrowed frames'
    /// start a stack copy of the entry.
    #[cold]
    #[inline(never)]
    fn begin_owned(&mut self, th: usize, index: u64, time: u64, buf: usize, at: u64) {
        let bytes = self.queues.take_buf(buf);
        self.begin(th, index, time, &bytes, at);
        self.queues.give_back(buf, bytes);
    }
}

/// Makes the queued frames of an ME owned when dropped: at the end of `arrive_all`, and also
/// if an engine panics in it (the frames it borrowed are still alive while it unwinds).
pub(super) struct OwnOnExit<'s, E: PacketEngine>(pub(super) &'s mut MeSim<E>);

impl<E: PacketEngine> Drop for OwnOnExit<'_, E> {
    fn drop(&mut self) {
        self.0.own_queued();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Pops lane `slot`'s oldest frame: its index, bytes, and whether the queue emptied.
    fn pop(q: &mut Queues, slot: usize) -> Option<(u64, Vec<u8>, bool)> {
        let (e, empty) = q.pop(slot)?;
        let bytes = if e.is_borrowed() {
            // SAFETY: the tests keep a batch alive until its entries are made owned.
            unsafe { e.borrowed() }.to_vec()
        } else {
            let b = q.take_buf(e.len);
            let bytes = b.clone();
            q.give_back(e.len, b);
            bytes
        };
        Some((e.index, bytes, empty))
    }

    #[test]
    fn rings_grow_to_the_depth_wrap_and_start_over_when_emptied() {
        let frames: Vec<Vec<u8>> = (0..40u8).map(|k| vec![k; usize::from(k % 5)]).collect();
        let mut q = Queues::default();
        // Lane 1 fills to depth 9 (its ring growing 4 -> 8 -> 9 while lane 3 holds frames),
        // then drops.
        for (k, f) in frames.iter().enumerate().take(12) {
            assert_eq!(q.push(1, 9, k as u64, 0, f), k < 9, "frame {k}");
            if k % 3 == 0 {
                assert!(q.push(3, 9, 100 + k as u64, 0, f));
            }
        }
        assert_eq!((q.lanes[1].cap, q.lanes[1].len), (9, 9));
        // Lane 3 wraps around its ring of 4.
        assert_eq!(
            q.pop(3).map(|(e, empty)| (e.index, empty)),
            Some((100, false))
        );
        assert!(q.push(3, 9, 20, 0, &frames[20]));
        assert_eq!((q.lanes[3].cap, q.lanes[3].head, q.lanes[3].len), (4, 1, 4));
        let mut got = Vec::new();
        while let Some((index, bytes, _)) = pop(&mut q, 3) {
            assert_eq!(bytes, frames[(index % 100) as usize]);
            got.push(index);
        }
        assert_eq!(got, [103, 106, 109, 20]);
        for k in 0..9u64 {
            assert_eq!(
                pop(&mut q, 1),
                Some((k, frames[k as usize].clone(), k == 8))
            );
        }
        // Emptied rings start over at their first entry.
        assert_eq!((q.lanes[1].head, q.lanes[3].head), (0, 0));
        assert!(q.pop(1).is_none());
        // Depth 0 queues nothing.
        assert!(!Queues::default().push(2, 0, 0, 0, &frames[1]));
    }

    proptest::proptest! {
        /// Against a `VecDeque` per lane: the same frames, bytes and drops in the same order,
        /// through growth, wrapping, and frames made owned before their batch is
        /// overwritten and freed (tasks ending with frames queued).
        #[test]
        fn queues_match_a_deque_per_lane(
            depth in 0usize..12,
            ops in proptest::collection::vec((0u8..8, 0usize..5, 0u8..70), 1..300),
        ) {
            let mut q = Queues::default();
            let mut model: Vec<VecDeque<(u64, Vec<u8>)>> = vec![VecDeque::new(); 5];
            let mut batch: Vec<Vec<u8>> = Vec::new();
            for (n, &(op, lane, len)) in ops.iter().enumerate() {
                match op {
                    // A task ends: queued frames become owned, the batch is reused.
                    0 => {
                        for l in 0..5 {
                            q.own_lane(l);
                        }
                        for f in &mut batch {
                            f.fill(0xee);
                        }
                        batch.clear();
                    }
                    1..=3 => {
                        let got = pop(&mut q, lane);
                        let want = model[lane].pop_front();
                        let empty = model[lane].is_empty();
                        proptest::prop_assert_eq!(got, want.map(|(i, b)| (i, b, empty)));
                    }
                    _ => {
                        let frame: Vec<u8> = (0..len).map(|k| k ^ n as u8).collect();
                        let queued = q.push(lane, depth, n as u64, 0, &frame);
                        proptest::prop_assert_eq!(queued, model[lane].len() < depth);
                        if queued {
                            model[lane].push_back((n as u64, frame.clone()));
                        }
                        batch.push(frame);
                    }
                }
                for (l, m) in model.iter().enumerate() {
                    let s = q.lanes[l];
                    proptest::prop_assert_eq!(s.len as usize, m.len());
                    proptest::prop_assert!(s.len <= s.cap && (s.len > 0 || s.head == 0));
                }
            }
            for l in 0..5 {
                q.own_lane(l);
            }
            drop(batch);
            for (l, m) in model.iter_mut().enumerate() {
                while let Some((i, b)) = m.pop_front() {
                    let empty = m.is_empty();
                    proptest::prop_assert_eq!(pop(&mut q, l), Some((i, b, empty)));
                }
                proptest::prop_assert!(q.pop(l).is_none());
            }
        }
    }
}
