//! One ME's frames of a batch ([`MeFrames`]): how the reading thread writes them and how the
//! thread that runs the ME reads them back ([`Arrivals`]).

use std::marker::PhantomData;

#[cfg(doc)]
use crate::lanes::MeSim;
use crate::lanes::{Arrival, Feed};

/// Bytes of a frame's record header in a buffer of [`MeFrames`]: arrival time (8), length (8),
/// input index minus the batch's first (4, below `u32::MAX`: a batch holds fewer frames) and
/// thread (4), native byte order.
pub(super) const HEAD: usize = 24;

/// One ME's frames of a batch: per frame a [`HEAD`]-byte header then the frame's bytes, back
/// to back in one buffer, in input order. Written by the reading thread and read back by
/// whichever thread runs the ME.
///
/// Why per ME: with one arena in input order an ME's frames were scattered (one in ~50 on
/// the demo), so the thread running its task read them a cache line at a time right after
/// the reading thread wrote them on another core; back to back, the task reads them
/// sequentially and the hardware prefetcher streams them in. (Measured with this layout,
/// two host threads, demo: reading every line of a task's frames before running it took
/// 3.5 ns a frame on either thread, against ~125 ns a frame for the task; the layout before
/// was not measured that way.) A cache line each (an ME's entry is found with a shift).
///
/// Why headers inline rather than a vector of headers beside the bytes (as before): one
/// buffer to grow and check per frame when filling, and reading it back is a walk of one
/// pointer ([`Arrivals`]). Callgrind, demo, with the other changes of the same round: the
/// reading loop and the arrivals ~9 host instructions a frame fewer than two vectors.
///
/// Why a write pointer and a limit rather than the `Vec`'s length: a record is written at
/// the pointer with constant offsets, and the room test is one subtraction from the limit;
/// through the `Vec`, each frame loaded its capacity and length, added the length to its
/// start for the address, and stored the length back. See [`mod@super::read`]'s `fill` for the
/// measured numbers.
#[derive(Debug)]
#[repr(align(64))]
pub(super) struct MeFrames {
    /// Where the next record goes: `buf`'s start plus the bytes written.
    at: *mut u8,
    /// `buf`'s start plus its capacity.
    limit: *mut u8,
    /// Frames written.
    pub(super) count: usize,
    /// The records' memory. Its length stays 0 (what is written is `at` less its start),
    /// except while it grows or shrinks: the `Vec` only owns the allocation.
    buf: Vec<u8>,
}

// SAFETY: `at` and `limit` point into `buf`, which the `MeFrames` owns like a `Vec` owns its
// buffer: they are written only through `&mut MeFrames`, and the bytes they delimit are read
// only through `&MeFrames` ([`Arrivals`]), so sending or sharing one is sending or sharing
// the `Vec<u8>` and the counts.
unsafe impl Send for MeFrames {}
// SAFETY: as for `Send`.
unsafe impl Sync for MeFrames {}

impl Default for MeFrames {
    fn default() -> MeFrames {
        MeFrames::with_capacity(0)
    }
}

/// Room for one record, from [`MeFrames::room`]; [`Room::write`] fills it.
pub(super) struct Room<'a> {
    frames: &'a mut MeFrames,
}

impl MeFrames {
    /// An empty buffer holding `bytes` bytes of records before it grows (a job sizes it
    /// for its ME's share of a batch: see `share::start_bytes`, which says why).
    pub(super) fn with_capacity(bytes: usize) -> MeFrames {
        let mut buf: Vec<u8> = Vec::with_capacity(bytes);
        let at = buf.as_mut_ptr();
        // SAFETY: the capacity is within the allocation (one past its end).
        let limit = unsafe { at.add(buf.capacity()) };
        MeFrames {
            at,
            limit,
            count: 0,
            buf,
        }
    }

    /// Bytes of records written.
    pub(super) fn len(&self) -> usize {
        self.at.addr() - self.buf.as_ptr().addr()
    }

    /// Bytes of records the buffer holds without growing.
    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Empties the buffer; with `shrink`, its capacity becomes what it held.
    pub(super) fn clear(&mut self, shrink: bool) {
        if shrink {
            self.resize(|b| b.shrink_to_fit());
        }
        self.at = self.buf.as_mut_ptr();
        self.count = 0;
    }

    /// Applies `f` to the buffer holding the records written, and takes its new address.
    #[cold]
    fn resize(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let used = self.len();
        // SAFETY: the first `used` bytes of the buffer are records written, within its
        // capacity; `f` keeps them (it only grows or shrinks the capacity around them).
        unsafe { self.buf.set_len(used) };
        f(&mut self.buf);
        let start = self.buf.as_mut_ptr();
        // SAFETY: `used` and the capacity are within the allocation (one past its end at
        // most), and the length goes back to 0, which is always valid.
        unsafe {
            self.at = start.add(used);
            self.limit = start.add(self.buf.capacity());
            self.buf.set_len(0);
        }
    }

    /// Room for a record of a `len`-byte frame, if the buffer has it.
    #[inline(always)]
    pub(super) fn room(&mut self, len: usize) -> Option<Room<'_>> {
        // No overflow: a slice is at most `isize::MAX` bytes long; `at <= limit`.
        let fits = HEAD + len <= self.limit.addr() - self.at.addr();
        fits.then_some(Room { frames: self })
    }

    /// Appends a frame (see [`HEAD`]): `index` is its input index minus the batch's first.
    #[inline(always)]
    pub(super) fn push(&mut self, index: u32, time: u64, thread: u32, frame: &[u8]) {
        if self.room(frame.len()).is_none() {
            self.resize(|b| b.reserve(HEAD + frame.len()));
        }
        if let Some(room) = self.room(frame.len()) {
            room.write::<false>(time, index, thread, frame);
        }
    }

    /// The records written.
    fn range(&self) -> std::ops::Range<*const u8> {
        self.buf.as_ptr()..self.at.cast_const()
    }
}

impl Room<'_> {
    /// Writes a frame's record (see [`HEAD`]): `index` is its input index minus the batch's
    /// first. With `SHORT`, the copy never calls `memcpy` (see [`copy_small`]), for a frame
    /// of 16 to 64 bytes.
    #[inline(always)]
    pub(super) fn write<const SHORT: bool>(self, time: u64, index: u32, thread: u32, frame: &[u8]) {
        let len = frame.len();
        let mut head = [0u8; HEAD];
        head[0..8].copy_from_slice(&time.to_ne_bytes());
        head[8..16].copy_from_slice(&len.to_ne_bytes());
        head[16..20].copy_from_slice(&index.to_ne_bytes());
        head[20..24].copy_from_slice(&thread.to_ne_bytes());
        let f = self.frames;
        // SAFETY: the room exists only if `HEAD + len` bytes from `at` lie within the buffer
        // ([`MeFrames::room`]), which the header and the frame fill (the frame cannot
        // overlap a buffer this owns); `at` then moves past them, still at most `limit`.
        unsafe {
            let p = f.at;
            p.cast::<[u8; HEAD]>().write_unaligned(head);
            let body = p.add(HEAD);
            copy_small::<SHORT>(frame, body);
            f.at = body.add(len);
        }
        f.count += 1;
    }
}

/// Copies `src` to `dst`: 16 to 64 bytes with overlapping 16- or 32-byte moves, other
/// lengths with `memcpy`.
///
/// Why: minimum-size frames are the most frequent and the costliest to simulate per byte;
/// `memcpy` took 11 host instructions for 60 bytes plus the call, and the call made the
/// reading loop keep more of its state on the stack. Callgrind, demo (60-byte frames): 3
/// host instructions a frame fewer in all. 32 to 64 bytes move as two overlapping 32-byte
/// halves: one load and one store each where the caller is compiled with AVX (the reading
/// loop on a host with [`crate::rss::Clmul`]), two 16-byte moves each without.
///
/// With `SHORT` (the caller's promise of 16 to 64 bytes, which it has tested before its
/// loop), other lengths are copied byte by byte with volatile writes, which the compiler
/// neither turns into a `memcpy` call nor merges: a loop that calls this makes no call (see
/// [`mod@super::read`]'s `fill`), whatever the length. (A `memcpy` marked cold, instead, left
/// the loop's values on the stack all the same: callgrind, demo, 1 host instruction a frame
/// more.)
///
/// # Safety
/// `dst` must be valid for `src.len()` bytes of writes and not overlap `src`.
#[inline(always)]
unsafe fn copy_small<const SHORT: bool>(src: &[u8], dst: *mut u8) {
    let n = src.len();
    let s = src.as_ptr();
    // SAFETY: every move lies within `0..n` of both (the caller's contract for `dst`).
    unsafe {
        let mv16 = |at: usize| {
            dst.add(at)
                .cast::<[u8; 16]>()
                .write_unaligned(s.add(at).cast::<[u8; 16]>().read_unaligned())
        };
        let mv32 = |at: usize| {
            dst.add(at)
                .cast::<[u8; 32]>()
                .write_unaligned(s.add(at).cast::<[u8; 32]>().read_unaligned())
        };
        if (32..=64).contains(&n) {
            mv32(0);
            mv32(n - 32);
        } else if (16..32).contains(&n) {
            // In this order, not the other's: the compiler merged the two branches' common
            // last move behind two jumps.
            mv16(n - 16);
            mv16(0);
        } else if SHORT {
            for (i, &b) in src.iter().enumerate() {
                dst.add(i).write_volatile(b);
            }
        } else {
            std::ptr::copy_nonoverlapping(s, dst, n);
        }
    }
}

/// The frames of an [`MeFrames`] as [`Arrival`]s: a walk over its records.
///
/// Why raw pointers: with a slice, every frame tested that a header and then that its frame
/// fit in what is left, and kept the rest's length; records as [`Room::write`] writes them
/// make both tests redundant. Callgrind, demo: 4 host instructions a frame fewer (the walk
/// is inlined into the ME model's loop, [`MeSim::arrive_all`]).
pub(super) struct Arrivals<'a> {
    /// The next record, or `end`.
    at: *const u8,
    end: *const u8,
    /// Input index of the batch's first frame.
    first: u64,
    bytes: PhantomData<&'a [u8]>,
}

impl<'a> Arrivals<'a> {
    /// The frames of `frames`, whose batch starts at input frame `first`.
    pub(super) fn new(frames: &'a MeFrames, first: u64) -> Arrivals<'a> {
        let range = frames.range();
        Arrivals {
            at: range.start,
            end: range.end,
            first,
            bytes: PhantomData,
        }
    }
}

impl Arrivals<'_> {
    /// No frames (for an ME number past the NIC's).
    pub(super) fn empty() -> Self {
        Arrivals {
            at: std::ptr::null(),
            end: std::ptr::null(),
            first: 0,
            bytes: PhantomData,
        }
    }
}

impl<'a> Iterator for Arrivals<'a> {
    type Item = Arrival<'a>;

    #[inline(always)]
    fn next(&mut self) -> Option<Arrival<'a>> {
        if self.at == self.end {
            return None;
        }
        // SAFETY: `at..end` holds whole records of [`Room::write`] (a header, then as many
        // bytes as it says), borrowed for `'a`, and `at` is a record's start: the header and
        // the frame lie within, and the next record starts right after the frame.
        //
        // Each field read as its own word: read as one `[u8; HEAD]`, LLVM split the length
        // into two 32-bit halves, kept both on the stack and joined them again.
        unsafe {
            let p = self.at;
            let time = p.cast::<u64>().read_unaligned();
            let len = p.add(8).cast::<usize>().read_unaligned();
            let index = p.add(16).cast::<u32>().read_unaligned();
            let thread = p.add(20).cast::<u32>().read_unaligned();
            let frame = std::slice::from_raw_parts(p.add(HEAD), len);
            self.at = p.add(HEAD + len);
            Some(Arrival {
                index: self.first + u64::from(index),
                time,
                thread,
                frame,
            })
        }
    }
}

/// What `MeSim::arrive_all` reads: the time first, the rest of the record after the
/// scheduler ran up to it (see `lanes::feed`).
impl<'a> Feed<'a> for Arrivals<'a> {
    #[inline(always)]
    fn peek_time(&mut self) -> Option<u64> {
        if self.at == self.end {
            return None;
        }
        // SAFETY: `at` is a record's start within `at..end` (see `next`): its header's
        // first 8 bytes are the time.
        Some(unsafe { self.at.cast::<u64>().read_unaligned() })
    }

    #[inline(always)]
    fn next_arrival(&mut self) -> Option<Arrival<'a>> {
        self.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_announces_each_time_then_gives_what_the_iterator_gives() {
        let mut f = MeFrames::default();
        let frames: [&[u8]; 3] = [&[1, 2, 3], &[], &[4; 70]];
        for (k, fr) in frames.iter().enumerate() {
            f.push(k as u32 * 2, 10 + k as u64, k as u32 + 5, fr);
        }
        let want: Vec<_> = Arrivals::new(&f, 100).collect();
        assert_eq!(want.len(), 3);
        let mut feed = Arrivals::new(&f, 100);
        for w in &want {
            // Peeking does not move on.
            assert_eq!(feed.peek_time(), Some(w.time));
            assert_eq!(feed.peek_time(), Some(w.time));
            let a = feed
                .next_arrival()
                .map(|a| (a.index, a.time, a.thread, a.frame.to_vec()));
            assert_eq!(a, Some((w.index, w.time, w.thread, w.frame.to_vec())));
        }
        assert_eq!(want[2].index, 104);
        assert_eq!(want[2].frame, &[4; 70][..]);
        assert_eq!(feed.peek_time(), None);
        assert!(feed.next_arrival().is_none());
        assert_eq!(Arrivals::empty().peek_time(), None);
    }
}
