//! One ME's frames of a batch ([`MeFrames`]): how the reading thread writes them and how the
//! thread that runs the ME reads them back ([`Arrivals`]).

use std::marker::PhantomData;

use crate::lanes::Arrival;
#[cfg(doc)]
use crate::lanes::MeSim;

/// Bytes of a frame's record header in [`MeFrames::bytes`]: arrival time (8), length (8),
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
#[derive(Debug, Default, Clone)]
#[repr(align(64))]
pub(super) struct MeFrames {
    pub(super) bytes: Vec<u8>,
    /// Frames in `bytes`.
    pub(super) count: usize,
}

impl MeFrames {
    /// No frames (for an ME number past the NIC's).
    pub(super) const EMPTY: MeFrames = MeFrames {
        bytes: Vec::new(),
        count: 0,
    };

    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
    }

    /// Appends a frame (see [`HEAD`]): `index` is its input index minus the batch's first.
    #[inline(always)]
    pub(super) fn push(&mut self, index: u32, time: u64, thread: u32, frame: &[u8]) {
        let len = frame.len();
        let mut head = [0u8; HEAD];
        head[0..8].copy_from_slice(&time.to_ne_bytes());
        head[8..16].copy_from_slice(&len.to_ne_bytes());
        head[16..20].copy_from_slice(&index.to_ne_bytes());
        head[20..24].copy_from_slice(&thread.to_ne_bytes());
        // No overflow: a slice is at most `isize::MAX` bytes long.
        let size = HEAD + len;
        self.bytes.reserve(size);
        let at = self.bytes.len();
        // SAFETY: `reserve` left room for `size` bytes past `at`, which the two copies fill
        // (the header, then the frame, which cannot overlap a buffer this owns) before the
        // length covers them. Why not two `extend_from_slice`: each checked the capacity
        // again and updated the length (~4 host instructions a frame more, callgrind).
        unsafe {
            let p = self.bytes.as_mut_ptr().add(at);
            p.cast::<[u8; HEAD]>().write_unaligned(head);
            copy_small(frame, p.add(HEAD));
            self.bytes.set_len(at + size);
        }
        self.count += 1;
    }
}

/// Copies `src` to `dst`: 16 to 64 bytes with overlapping 16-byte moves, other lengths
/// with `memcpy`.
///
/// Why: minimum-size frames are the most frequent and the costliest to simulate per byte;
/// `memcpy` took 11 host instructions for 60 bytes plus the call, and the call made the
/// reading loop keep more of its state on the stack. Callgrind, demo (60-byte frames): 3
/// host instructions a frame fewer in all.
///
/// # Safety
/// `dst` must be valid for `src.len()` bytes of writes and not overlap `src`.
#[inline(always)]
unsafe fn copy_small(src: &[u8], dst: *mut u8) {
    let n = src.len();
    let s = src.as_ptr();
    // SAFETY: every move lies within `0..n` of both (the caller's contract for `dst`).
    unsafe {
        let mv = |at: usize| {
            dst.add(at)
                .cast::<[u8; 16]>()
                .write_unaligned(s.add(at).cast::<[u8; 16]>().read_unaligned())
        };
        if (32..=64).contains(&n) {
            mv(0);
            mv(16);
            mv(n - 32);
            mv(n - 16);
        } else if (16..32).contains(&n) {
            // In this order, not the other's: the compiler merged the two branches' common
            // last move behind two jumps.
            mv(n - 16);
            mv(0);
        } else {
            std::ptr::copy_nonoverlapping(s, dst, n);
        }
    }
}

/// The frames of an [`MeFrames`] as [`Arrival`]s: a walk over its records.
///
/// Why raw pointers: with a slice, every frame tested that a header and then that its frame
/// fit in what is left, and kept the rest's length; records as [`MeFrames::push`] writes them
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
        let range = frames.bytes.as_ptr_range();
        Arrivals {
            at: range.start,
            end: range.end,
            first,
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
        // SAFETY: `at..end` holds whole records of [`MeFrames::push`] (a header, then as many
        // bytes as it says), borrowed for `'a`, and `at` is a record's start: the header and
        // the frame lie within, and the next record starts right after the frame.
        let (head, frame) = unsafe {
            let head = self.at.cast::<[u8; HEAD]>().read_unaligned();
            let len = usize::from_ne_bytes([
                head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
            ]);
            let frame = std::slice::from_raw_parts(self.at.add(HEAD), len);
            self.at = self.at.add(HEAD + len);
            (head, frame)
        };
        let word = |i: usize| u32::from_ne_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let time = u64::from_ne_bytes([
            head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
        ]);
        Some(Arrival {
            index: self.first + u64::from(word(16)),
            time,
            thread: word(20),
            frame,
        })
    }
}
