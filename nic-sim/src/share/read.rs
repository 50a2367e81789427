//! The reading thread's side of a batch: frames read, timed and hashed into the MEs'
//! buffers ([`read`], [`fill`]).

use super::{Job, MAX_BATCH_BYTES, Reader};
use crate::collector::Collector;
use crate::engine::PacketEngine;
use crate::error::SimError;
#[cfg(target_arch = "x86_64")]
use crate::rss::Clmul;
use crate::rss::{Hash12, Rss};
use crate::run::SimConfig;
use crate::timing::{ArrivalClock, Ticker};
use crate::traffic::is_runt;

/// Reads every frame into batches, publishing one every `batch` frames (or
/// [`MAX_BATCH_BYTES`] bytes) and at the end.
pub(super) fn read<E, I, B, S>(
    frames: I,
    config: &SimConfig,
    clock: &mut ArrivalClock,
    reader: &mut Reader<'_, E, S>,
) -> Result<(), SimError>
where
    E: PacketEngine,
    I: IntoIterator<Item = Result<B, SimError>>,
    B: AsRef<[u8]>,
    S: FnMut(u64, &[u8]) -> Result<(), SimError>,
{
    let nic = &config.nic;
    let mes = nic.mes().max(1);
    let threads = nic.threads_per_me.max(1);
    let rss = Rss::with_threads(mes, threads, config.non_ip);
    // At most `u32::MAX` frames a batch, so that a frame's header (`frames::HEAD`) keeps its
    // index in 32 bits (the batch size never changes a result).
    let batch = config.batch.clamp(1, u32::MAX as usize) as u32;
    let start = super::start_bytes(batch as usize, mes as usize);
    let mut filling = super::job(mes as usize, reader.jobs.len() + 1, start);
    // Input index of the filling batch's first frame.
    let mut first = 0u64;
    let mut frames = frames.into_iter();
    loop {
        let (rest, read, full) = fill(
            frames,
            &mut filling,
            &rss,
            clock,
            reader.collect,
            first,
            batch,
        )?;
        frames = rest;
        first += u64::from(read);
        reader.collect.total = first;
        match full {
            Some(time) => reader.publish(&mut filling, time, first)?,
            None => {
                let published = reader.publish(&mut filling, clock.now(), first);
                super::keep(filling);
                return published;
            }
        }
    }
}

/// Reads frames into `job`, whose first frame is input frame `first`, until it holds `batch`
/// frames (runts included) or [`MAX_BATCH_BYTES`] bytes of frames, or the input ends.
/// Returns the input, the number of frames read and, if the batch is full, the arrival time
/// of its last frame.
///
/// Why a function of its own, never inlined, that takes the input by value and advances the
/// clock through a [`crate::timing::Ticker`]: the reading loop's state is then its own
/// locals, not fields behind references that every frame loaded and stored back (the input's
/// position, the clock's quotient and remainder). Callgrind, demo: 1,180 host instructions
/// a frame with the loop in its own function, 1,175 with the ticker, 1,172 with the input by
/// value (the same loop inlined into its caller: 3 more).
///
/// The common frame is hashed by carry-less multiply where the host has it ([`Clmul`]),
/// with the loop compiled for those instructions ([`fill_clmul`]), else by tables.
#[inline(never)]
fn fill<B: AsRef<[u8]>, I: Iterator<Item = Result<B, SimError>>>(
    frames: I,
    job: &mut Job,
    rss: &Rss,
    clock: &mut ArrivalClock,
    collect: &mut Collector,
    first: u64,
    batch: u32,
) -> Result<(I, u32, Option<u64>), SimError> {
    #[cfg(target_arch = "x86_64")]
    if let Some(clmul) = rss.clmul() {
        // SAFETY: a `Clmul` exists only on a host with the instructions `fill_clmul` is
        // compiled for (`Clmul::new`).
        return unsafe { fill_clmul(clmul, frames, job, rss, clock, collect, first, batch) };
    }
    fill_by(rss.table(), frames, job, rss, clock, collect, first, batch)
}

/// [`fill`] hashing by [`Clmul`], compiled with its instructions so that the hash is inlined
/// into the loop (and the loop may use them too).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "pclmulqdq,avx")]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn fill_clmul<B: AsRef<[u8]>, I: Iterator<Item = Result<B, SimError>>>(
    clmul: &Clmul,
    frames: I,
    job: &mut Job,
    rss: &Rss,
    clock: &mut ArrivalClock,
    collect: &mut Collector,
    first: u64,
    batch: u32,
) -> Result<(I, u32, Option<u64>), SimError> {
    fill_by(clmul, frames, job, rss, clock, collect, first, batch)
}

/// [`fill`]'s loop, the common frame hashed by `hasher`.
///
/// Why two loops: the inner one ([`Run::take`]) takes the common frame (the last frame's
/// length, the common frame's hash input, room in its ME's buffer) with no call on its path,
/// and leaves any other frame to the outer one, which takes every frame. With calls in the
/// loop (a length to look up, a buffer to grow, another parser, `memcpy`), every value live
/// across the loop had to sit in one of the six registers a call preserves, or on the
/// stack: the loop loaded and stored back its frame count, clock and buffer table every
/// frame. Frames of 32 to 64 bytes take a copy of the inner loop with no call at all (the
/// copy is two moves); longer ones one that calls `memcpy`.
///
/// Measured (callgrind, `simspeed pre`, demo, host instructions a frame, all of the run;
/// the reading loop's own share in brackets): 955.9 \[109\] before; with [`Clmul`]'s hash in
/// the same loop 954.0 (its constants loaded every frame); with the buffers' write pointer
/// ([`super::MeFrames`]) 950.2; two loops 944.2; the byte limit as a frame count
/// ([`stop_at`]) 941.3; the clock's saturation tested once per run of frames
/// ([`Ticker::within`], with 32-byte moves) 928.8; no `memcpy` in the short frames' loop
/// 927.0; the hasher's constants made ready in the inner loop's preheader 920.0 \[76\]; the
/// common frame's header tested as one vector (`rss`) 916.0 \[72\]; the inner loop entered
/// only after a common frame of a repeated length 913.0 (IMIX traffic, `offload sim`, the
/// reading loop with the generator: 1,007 -> 985).
/// Rejected: the inner loop in a function of its own (929.0: its state went through
/// references every frame); `memcpy` marked cold rather than a loop without it (+1); the
/// clock's carry into a select or a branch rather than tested per run (937-944).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fill_by<H: Hash12, B: AsRef<[u8]>, I: Iterator<Item = Result<B, SimError>>>(
    hasher: &H,
    mut frames: I,
    job: &mut Job,
    rss: &Rss,
    clock: &mut ArrivalClock,
    collect: &mut Collector,
    first: u64,
    batch: u32,
) -> Result<(I, u32, Option<u64>), SimError> {
    let mut clock = clock.ticker();
    let mut pending = 0u32;
    let mut filled = 0usize;
    // Whether the outer loop's last frame was a common frame of the length before it: then
    // the next frames likely are too, for the inner loop. After any other (another length,
    // as in IMIX; another kind of frame), the outer loop takes the next frame itself, so a
    // frame that would end a run at once does not cost one (~20 host instructions).
    let mut run = true;
    loop {
        let frame = if run {
            // The inner loop takes frames of the last frame's length only, so the batch's
            // byte limit is a frame count: one counter ends the batch.
            let len = clock.last_len();
            let (start, stop) = (pending, stop_at(pending, batch, filled, len));
            // Frames that may take the clock past `u64::MAX` go one by one (no frame is
            // `usize::MAX` bytes long): never, in any real configuration.
            let len = if clock.within(stop - pending) {
                len
            } else {
                usize::MAX
            };
            let run = Run {
                len,
                stop,
                hasher,
                rss,
            };
            let (f, c, p) = (&mut frames, &mut clock, &mut pending);
            let taken = if (32..=64).contains(&len) {
                run.take::<true, _, _>(f, job, c, p)
            } else {
                run.take::<false, _, _>(f, job, c, p)
            };
            let frame = match taken {
                Taken::Other(frame) => frame,
                Taken::End(time) => {
                    drop(clock);
                    return Ok((frames, pending, time));
                }
            };
            // No overflow: these frames are in the batch's buffers.
            filled += (pending - start) as usize * len;
            frame
        } else {
            let Some(frame) = frames.next() else {
                drop(clock);
                return Ok((frames, pending, None));
            };
            frame
        };
        let frame = frame?;
        let frame = frame.as_ref();
        run = clock.repeats(frame.len()) && rss.is_common(frame);
        let time = clock.next(frame.len());
        // A runt is tested for only when the common frame's parse fails (it requires 38
        // bytes): ~1 host instruction a frame fewer.
        let placed = match rss.place_common_by(hasher, frame) {
            Some(p) => Some(p),
            None if is_runt(frame) => None,
            None => Some(rss.place_other(frame)),
        };
        if let Some((me, thread)) = placed {
            job.push(me as usize, pending, time, thread, frame);
            filled += frame.len();
        } else {
            collect.runt(first + u64::from(pending));
        }
        pending += 1;
        if pending == batch || filled >= MAX_BATCH_BYTES {
            drop(clock);
            return Ok((frames, pending, Some(time)));
        }
    }
}

/// What [`fill_by`]'s inner loop ([`Run::take`]) takes: frames of `len` bytes, the common
/// frame only, until the batch has `stop` frames.
struct Run<'a, H> {
    len: usize,
    stop: u32,
    hasher: &'a H,
    rss: &'a Rss,
}

/// How [`Run::take`] ended.
enum Taken<B> {
    /// At a frame it does not take (or an error), for the outer loop.
    Other(Result<B, SimError>),
    /// At the end of the input (`None`) or of the batch (the arrival time of its last
    /// frame).
    End(Option<u64>),
}

impl<H: Hash12> Run<'_, H> {
    /// Takes frames into `job` until one it does not take, the end of the input or of the
    /// batch. With `SHORT`, the frames are 32 to 64 bytes long, and the loop makes no call.
    ///
    /// The hasher is made ready ([`Hash12::ready`]) here, not for the outer loop: values
    /// that live across the outer loop's calls are kept on the stack and loaded every frame.
    /// Why not a function of its own (called once per run of common frames): the state the
    /// loop updates then went through its references every frame, ~5 host instructions a
    /// frame more (callgrind, demo).
    #[inline(always)]
    fn take<const SHORT: bool, B: AsRef<[u8]>, I: Iterator<Item = Result<B, SimError>>>(
        &self,
        frames: &mut I,
        job: &mut Job,
        clock: &mut Ticker<'_>,
        pending: &mut u32,
    ) -> Taken<B> {
        let hasher = self.hasher.ready();
        loop {
            let Some(frame) = frames.next() else {
                return Taken::End(None);
            };
            let Ok(bytes) = &frame else {
                return Taken::Other(frame);
            };
            let f = bytes.as_ref();
            if f.len() != self.len {
                return Taken::Other(frame);
            }
            let Some((me, thread)) = self.rss.place_common_by(&hasher, f) else {
                return Taken::Other(frame);
            };
            let Some(room) = job.room(me as usize, self.len) else {
                return Taken::Other(frame);
            };
            let time = clock.tick_within();
            room.write::<SHORT>(time, *pending, thread, f);
            *pending += 1;
            if *pending == self.stop {
                return Taken::End(Some(time));
            }
        }
    }
}

/// The frame count at which a batch of `pending` frames (`filled` bytes) is full if its next
/// frames are `len` bytes long each: at `batch` frames, or at the first frame that brings it
/// to [`MAX_BATCH_BYTES`]. The batch is not full yet (`pending < batch`, `filled <
/// MAX_BATCH_BYTES`), so this is past `pending`.
///
/// Why: the reading loop then counts frames only, where it added up their bytes and tested
/// both limits every frame (callgrind, demo: 2.9 host instructions a frame, see
/// [`fill_by`]). The division is only for a batch that its bytes fill first.
#[inline(always)]
fn stop_at(pending: u32, batch: u32, filled: usize, len: usize) -> u32 {
    let left = batch - pending;
    let room = MAX_BATCH_BYTES - filled;
    match (left as usize).checked_mul(len) {
        Some(bytes) if bytes < room => batch,
        // `room` is at least 1, so is the quotient, and it is at most `left` here.
        _ => pending + room.div_ceil(len.max(1)).min(left as usize) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rss::NonIp;

    proptest::proptest! {
        /// The frame count at which a batch is full equals adding the frames one by one.
        #[test]
        fn stop_at_is_the_first_full_frame(
            batch in 1u32..5000,
            pending in 0u32..5000,
            filled in 0usize..MAX_BATCH_BYTES,
            len in proptest::prop_oneof![0usize..2000, Just(usize::MAX)],
        ) {
            let pending = pending % batch;
            let (mut p, mut f) = (pending, filled);
            loop {
                p += 1;
                f = f.saturating_add(len);
                if p == batch || f >= MAX_BATCH_BYTES {
                    break;
                }
            }
            proptest::prop_assert_eq!(stop_at(pending, batch, filled, len), p);
        }
    }

    use proptest::strategy::Just;

    /// At the byte limit exactly: the frame that reaches it ends the batch.
    #[test]
    fn stop_at_the_byte_limit() {
        for len in [1usize, 60, 1514] {
            for left in [1u32, 5, 100] {
                let filled = MAX_BATCH_BYTES - left as usize * len;
                assert_eq!(stop_at(7, 7 + left + 10, filled, len), 7 + left);
                assert_eq!(stop_at(7, 7 + left + 10, filled - 1, len), 7 + left + 1);
            }
        }
    }

    /// A frame of `len` bytes: untagged IPv4 UDP or TCP (the common frame) when `kind` is 0
    /// or 1, with addresses and ports from `seed`; a fragment, ARP or a VLAN tag otherwise.
    fn frame(len: usize, kind: u8, seed: u32) -> Vec<u8> {
        let mut f = vec![0u8; len];
        let head: &[(usize, u8)] = &[(12, 0x08), (13, 0x00), (14, 0x45), (23, 17)];
        for &(at, v) in head {
            if let Some(b) = f.get_mut(at) {
                *b = v;
            }
        }
        for (i, b) in f.iter_mut().enumerate().skip(26).take(12) {
            *b = (seed >> (i % 4 * 8)) as u8 ^ i as u8;
        }
        match kind {
            0 => {}
            1 => {
                if let Some(b) = f.get_mut(23) {
                    *b = 6;
                }
            }
            2 => {
                if let Some(b) = f.get_mut(20) {
                    *b = 0x20;
                }
            }
            3 => {
                if let Some(b) = f.get_mut(13) {
                    *b = 0x06;
                }
            }
            _ => {
                if let Some(b) = f.get_mut(12) {
                    *b = 0x81;
                }
            }
        }
        f
    }

    /// One ME's records: index, time, thread and bytes of each frame.
    type Records = Vec<(u64, u64, u32, Vec<u8>)>;

    /// A job's contents: per ME, its records.
    fn contents(job: &Job) -> Vec<Records> {
        (0..job.frames.len() as u32)
            .map(|me| {
                job.arrivals(me)
                    .map(|a| (a.index, a.time, a.thread, a.frame.to_vec()))
                    .collect()
            })
            .collect()
    }

    type Input<'a> = std::vec::IntoIter<Result<&'a [u8], SimError>>;

    /// What reading `frames` in batches gives: per batch its records per ME, frames read and
    /// end time; the runts; the clock's time and line rate.
    type Read = (Vec<(Vec<Records>, u32, Option<u64>)>, u64, u64, f64);

    /// Reads `frames` batch by batch with `fill_with` (a `fill`).
    fn read_all<'a>(
        frames: &'a [Vec<u8>],
        mes: u32,
        mut fill_with: impl FnMut(
            Input<'a>,
            &mut Job,
            &mut ArrivalClock,
            &mut Collector,
            u64,
        ) -> Result<(Input<'a>, u32, Option<u64>), SimError>,
    ) -> Result<Read, SimError> {
        let mut clock = ArrivalClock::new(10_000_000_000, 800_000_000);
        let mut collect = Collector::new(false);
        let mut input: Input<'a> = frames
            .iter()
            .map(|f| Ok(f.as_slice()))
            .collect::<Vec<_>>()
            .into_iter();
        let (mut out, mut first) = (Vec::new(), 0u64);
        loop {
            let mut job = Job::new(mes as usize, 1, 0);
            job.first = first;
            let (rest, read, full) = fill_with(input, &mut job, &mut clock, &mut collect, first)?;
            input = rest;
            first += u64::from(read);
            out.push((contents(&job), read, full));
            if full.is_none() {
                return Ok((out, collect.runts, clock.now(), clock.line_rate_pps()));
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 40, ..Default::default() })]

        /// `fill` (its inner loop, both copies, and the outer one), with the tables and with
        /// the carry-less multiply, reads batches exactly as a plain loop over the frames:
        /// the same records per ME, batch ends, runts and clock.
        #[test]
        fn fill_reads_like_a_plain_loop(
            runs in proptest::collection::vec(
                (
                    proptest::prop_oneof![Just(60usize), Just(64), Just(1514), 0usize..100, 0usize..2000],
                    0u8..8,
                    proptest::prop_oneof![3 => 1usize..60, 1 => 200usize..800],
                ),
                1..20,
            ),
            batch in proptest::prop_oneof![1u32..20, 1u32..5000],
            mes in 1u32..9,
            threads in 1u32..5,
        ) {
            // Common frames (kinds 0 and 1) most of the time.
            let frames: Vec<Vec<u8>> = runs
                .iter()
                .enumerate()
                .flat_map(|(r, &(len, kind, n))| {
                    let kind = if kind >= 5 { kind % 2 } else { kind };
                    (0..n).map(move |i| frame(len, kind, (r * 1000 + i) as u32))
                })
                .collect();
            let rss = Rss::with_threads(mes, threads, NonIp::Lane0);
            let plain = read_all(&frames, mes, |input, job, clock, collect, first| {
                let mut ticker = clock.ticker();
                let (mut pending, mut filled) = (0u32, 0usize);
                let items: Vec<_> = input.collect();
                let slices: Vec<&[u8]> = items.iter().filter_map(|f| f.as_ref().ok().copied()).collect();
                for f in slices {
                    let time = ticker.next(f.len());
                    if crate::traffic::is_runt(f) {
                        collect.runt(first + u64::from(pending));
                    } else {
                        let (me, thread) = rss.place(f);
                        job.push(me as usize, pending, time, thread, f);
                        filled += f.len();
                    }
                    pending += 1;
                    if pending == batch || filled >= MAX_BATCH_BYTES {
                        let rest: Input<'_> =
                            items.into_iter().skip(pending as usize).collect::<Vec<_>>().into_iter();
                        return Ok((rest, pending, Some(time)));
                    }
                }
                Ok((Vec::new().into_iter(), pending, None))
            })?;
            let table = read_all(&frames, mes, |input, job, clock, collect, first| {
                fill_by(rss.table(), input, job, &rss, clock, collect, first, batch)
            })?;
            proptest::prop_assert_eq!(&table, &plain);
            // With the carry-less multiply where the host has it.
            let chosen = read_all(&frames, mes, |input, job, clock, collect, first| {
                fill(input, job, &rss, clock, collect, first, batch)
            })?;
            proptest::prop_assert_eq!(&chosen, &plain);
        }
    }
}
