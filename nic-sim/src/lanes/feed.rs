//! Where [`MeSim::arrive_all`](super::MeSim::arrive_all) takes its frames from: a
//! [`Feed`] announces the next frame's arrival time first, and hands over the rest of the
//! frame only once everything before that time has happened.
//!
//! Why not an `Iterator` of [`Arrival`]s: the scheduler runs between reading a frame's time
//! and taking the frame (the replay loops, a packet's start with its calls), and an
//! iterator's item was read whole before it, so LLVM kept its index, thread and length on
//! the stack across all of it. A record in the batch's buffer is still in L1 after the
//! scheduler ran: reading its other fields where they are used costs a load each, the same
//! as reloading them from the stack, without the stores.

use super::Arrival;

/// Frames for [`MeSim::arrive_all`](super::MeSim::arrive_all), arrival times not decreasing.
pub trait Feed<'a> {
    /// The next frame's arrival time, without moving past it; `None` when none is left.
    fn peek_time(&mut self) -> Option<u64>;
    /// The frame [`Feed::peek_time`] announced, and moves past it (`None` when none is left).
    fn next_arrival(&mut self) -> Option<Arrival<'a>>;
}

/// An iterator of [`Arrival`]s as a [`Feed`].
#[derive(Debug)]
pub struct Each<'a, I> {
    iter: I,
    next: Option<Arrival<'a>>,
}

impl<'a, I: Iterator<Item = Arrival<'a>>> Each<'a, I> {
    /// The arrivals of `iter`, in its order.
    pub fn new(iter: I) -> Self {
        Each { iter, next: None }
    }
}

impl<'a, I: Iterator<Item = Arrival<'a>>> Feed<'a> for Each<'a, I> {
    fn peek_time(&mut self) -> Option<u64> {
        if self.next.is_none() {
            self.next = self.iter.next();
        }
        self.next.map(|a| a.time)
    }

    fn next_arrival(&mut self) -> Option<Arrival<'a>> {
        self.next.take().or_else(|| self.iter.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_announces_then_hands_over_every_arrival_once() {
        let a = |time| Arrival {
            index: time,
            time,
            thread: 0,
            frame: &[],
        };
        let mut f = Each::new([a(1), a(2)].into_iter());
        assert_eq!(f.peek_time(), Some(1));
        assert_eq!(f.peek_time(), Some(1));
        assert_eq!(f.next_arrival().map(|a| a.index), Some(1));
        // An arrival taken without a peek moves on all the same.
        assert_eq!(f.next_arrival().map(|a| a.index), Some(2));
        assert_eq!(f.peek_time(), None);
        assert!(f.next_arrival().is_none());
    }
}
