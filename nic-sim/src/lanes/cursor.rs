//! A replayed packet's place in its recorded segments, kept beside the scheduler's ready
//! times rather than in its [`Thread`](super::Thread).
//!
//! Why raw pointers: the replay loops take one segment per step, and reaching it through
//! `threads[th].segs[seg_at]` cost two bounds checks, the thread's address and a write-back
//! of the index at every step, and the pair loop loaded and stored both threads' slices and
//! indices at every entry. A cursor is two words the loops copy into registers and back.
//! Measured (callgrind, `simspeed pre`, demo), with the busy/wait sums moved beside them
//! (`MeSim::spent`): 1,039.7 -> 1,033.2 host instructions per frame.

use crate::engine::Segment;

/// The segments of a thread's packet still to replay: `next..end` of its `Thread::segs`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cursor {
    next: *const Segment,
    end: *const Segment,
}

// SAFETY: a cursor points into a buffer owned by the same `MeSim` (a `Thread::segs`), which
// moves between host threads only with it, as a whole, by value; the heap buffer does not
// move with it. Nothing is shared: a `MeSim` is used by one host thread at a time.
unsafe impl Send for Cursor {}

impl Cursor {
    /// No segments (what a thread without a replayed packet has).
    pub(super) const EMPTY: Cursor = Cursor {
        next: std::ptr::null(),
        end: std::ptr::null(),
    };

    /// A cursor at the start of `segs`.
    ///
    /// # Safety
    /// `segs`' buffer must stay allocated and unchanged for as long as [`Cursor::take`] is
    /// called on this cursor (or a copy of it): the caller owns `segs` and replaces the
    /// cursor before it next changes them.
    #[inline(always)]
    pub(super) unsafe fn over(segs: &[Segment]) -> Cursor {
        let r = segs.as_ptr_range();
        Cursor {
            next: r.start,
            end: r.end,
        }
    }

    /// The next segment, if any, and moves past it.
    #[inline(always)]
    pub(super) fn take(&mut self) -> Option<Segment> {
        if self.next == self.end {
            return None;
        }
        // SAFETY: `next` is in `segs`' range `[start, end)` (`over`'s contract keeps the
        // buffer alive and unchanged), and `end` is one past its last element, so `next`
        // below `end` points at a segment and `next + 1` is at most `end`.
        unsafe {
            let s = *self.next;
            self.next = self.next.add(1);
            Some(s)
        }
    }
}

/// A thread's replay: its [`Cursor`] and the busy and wait cycles of the segments replayed
/// so far, side by side.
///
/// Why together: in two arrays beside each other, the scheduler kept each array's address
/// on the stack (LLVM hoists them out of `arrive_all`'s loop) and loaded both wherever a
/// thread's replay was read; together, one address serves both. Callgrind, bench profile,
/// `simspeed pre`, without libc memset/memcpy: 793.1 -> 787.4 host instructions per frame.
#[derive(Debug, Clone, Copy)]
pub(super) struct Replay {
    pub(super) cursor: Cursor,
    pub(super) spent: Segment,
}

impl Replay {
    /// No segments, nothing spent.
    pub(super) const EMPTY: Replay = Replay {
        cursor: Cursor::EMPTY,
        spent: Segment { busy: 0, wait: 0 },
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_yields_each_segment_once_in_order() {
        let segs = vec![Segment { busy: 1, wait: 2 }, Segment { busy: 3, wait: 4 }];
        // SAFETY: `segs` outlives the cursor and is not changed while it is read.
        let mut c = unsafe { Cursor::over(&segs) };
        let mut copy = c;
        assert_eq!(c.take(), Some(segs[0]));
        assert_eq!(c.take(), Some(segs[1]));
        assert_eq!(c.take(), None);
        assert_eq!(c.take(), None);
        // Copies move on their own.
        assert_eq!(copy.take(), Some(segs[0]));
        assert_eq!(Cursor::EMPTY.clone().take(), None);
        // SAFETY: as above; an empty slice gives an empty cursor.
        assert_eq!(unsafe { Cursor::over(&[]) }.take(), None);
    }
}
