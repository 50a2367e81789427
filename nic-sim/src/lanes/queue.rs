//! A lane's queued frames, borrowed from the batch while the task that queued them runs.
//!
//! Why borrowed: a frame that arrives at a busy thread waits in its queue, and most leave
//! it within the same task (`MeSim::arrive_all`, one ME's frames of a batch), while the
//! batch's buffer still holds their bytes. Copying each into a pooled buffer at its arrival
//! cost a `memcpy` call, the pool's pop and push and the buffer's bookkeeping, on ~28% of
//! the demo's frames (callgrind, `simspeed pre`). Now a queued frame points into the batch,
//! and only the frames still queued when the task ends are copied ([`MeSim::own_queued`],
//! a few per task), because the batch is cleared after its tasks.

use super::{MeSim, Thread};
use crate::engine::PacketEngine;

/// A frame waiting in a lane's queue.
pub(super) struct Queued {
    pub(super) index: u64,
    pub(super) time: u64,
    /// The frame: `len` bytes at `at`, either in the buffer the current `arrive_all` call
    /// reads its arrivals from (`owned` empty and unused), or in `owned`.
    at: *const u8,
    len: usize,
    owned: Option<Vec<u8>>,
}

// SAFETY: `at` points either into `owned`, whose heap buffer moves with the `Queued` as a
// `Vec` would, or into the frames of an `arrive_all` call, which converts every such entry
// into an owned one before it returns or unwinds (`OwnOnExit`); during that call the
// `MeSim` holding the queue is borrowed mutably by the one host thread running it, so no
// other thread can reach the entry.
unsafe impl Send for Queued {}

impl Queued {
    /// A frame that stays valid until the current `arrive_all` call returns: the caller
    /// must make it owned ([`MeSim::own_queued`]) before then.
    pub(super) fn borrowed(index: u64, time: u64, frame: &[u8]) -> Queued {
        Queued {
            index,
            time,
            at: frame.as_ptr(),
            len: frame.len(),
            owned: None,
        }
    }

    /// The frame's bytes.
    pub(super) fn frame(&self) -> &[u8] {
        // SAFETY: `at..at + len` is the frame: in `owned` (unchanged since it was set, see
        // `make_owned`), or in the frames of the current `arrive_all` call (see the `Send`
        // impl: entries outliving that call are made owned before it returns).
        unsafe { std::slice::from_raw_parts(self.at, self.len) }
    }

    /// Its buffer, for the pool, once the frame has been taken.
    pub(super) fn into_buffer(self) -> Option<Vec<u8>> {
        self.owned
    }

    /// Copies a borrowed frame into `buf` (from the pool), which it keeps.
    fn make_owned(&mut self, pool: &mut Vec<Vec<u8>>) {
        if self.owned.is_some() {
            return;
        }
        let mut buf = pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(self.frame());
        self.at = buf.as_ptr();
        self.owned = Some(buf);
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
            if let Some(Thread { queue, .. }) = self.threads.get_mut(th) {
                // Borrowed entries are the newest: stop at the first owned one from the back.
                for q in queue.iter_mut().rev() {
                    if q.owned.is_some() {
                        break;
                    }
                    q.make_owned(&mut self.pool);
                }
            }
        }
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

    #[test]
    fn a_borrowed_frame_becomes_owned_with_the_same_bytes() {
        let mut pool = vec![vec![9u8; 3]];
        let bytes = vec![1u8, 2, 3, 4];
        let mut q = Queued::borrowed(7, 11, &bytes);
        assert_eq!(q.frame(), &bytes[..]);
        q.make_owned(&mut pool);
        drop(bytes);
        assert_eq!(q.frame(), &[1, 2, 3, 4]);
        assert!(pool.is_empty(), "the pooled buffer was reused");
        // Owned stays owned (no second copy).
        q.make_owned(&mut pool);
        assert_eq!(q.into_buffer(), Some(vec![1, 2, 3, 4]));
        let mut empty = Queued::borrowed(0, 0, &[]);
        empty.make_owned(&mut pool);
        assert_eq!(empty.frame(), &[] as &[u8]);
    }
}
