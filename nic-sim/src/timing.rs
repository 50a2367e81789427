//! Timing arithmetic: when frames arrive at line rate, exact per-packet histograms and
//! percentiles, and the throughput model.
//!
//! # Throughput model
//!
//! An ME with `T` threads hides memory latency by running another thread while one waits.
//! Per packet it is busy `b` cycles on average, and a packet keeps its thread for `s = b + w`
//! cycles (busy plus memory waits). With `T` threads working, the ME needs on average
//! `max(b, s / T)` cycles per packet: instruction-bound when the waits are fully hidden,
//! latency-bound otherwise. Its capacity is `clock / max(b, s / T)` packets per second, where
//! `T` counts only threads that got traffic (RSS may leave lanes empty).
//!
//! RSS gives each ME a fixed share of the traffic, so the NIC saturates when its most loaded
//! ME (relative to its capacity) does: modelled throughput =
//! `min(line rate, min over MEs of capacity / share)`. RSS also pins each flow to one thread,
//! which serves its packets one at a time (capacity `clock / s`), so lanes enter the same
//! minimum: one elephant flow can cap the NIC (the NFP's own dispatcher hands packets to any
//! free thread instead; this model follows per-flow lanes). With an even spread this equals
//! the sum of the capacities (`combined_capacity_mpps`); flow skew (Zipf) lowers it. The
//! event model in `lanes` additionally shows the queue drops the offered line rate causes.
//! Memory-unit contention between MEs is not modelled: waits are the engine's fixed latencies.

mod histogram;

pub use histogram::Histogram;

/// Frame arrival times at line rate, in ME cycles, computed exactly with integers (no float
/// drift over long runs, identical on every host): frame *i* has fully arrived at
/// `floor(bits of frames 0..=i × clock / bit rate)` (saturated at `u64::MAX`). The quotient
/// is kept incrementally (quotient and remainder of `bits × clock` by the bit rate), and what
/// a frame length adds is cached (`Step`), so a frame costs a compare, adds and a
/// conditional subtract, no division.
///
/// Callgrind: ~32 host instructions a frame with a 128-bit quotient, a running bit count and
/// the clock behind a `&mut` (its fields stored back to memory every frame); ~20 with the
/// reader's loop on a copy of the clock; 14 now (a [`Ticker`] and the update of
/// [`Ticker::next`]).
#[derive(Debug, Clone, Copy)]
pub struct ArrivalClock {
    bits_per_sec: u64,
    clock_hz: u64,
    /// `min(floor(bits × clock_hz / bits_per_sec), u64::MAX)`: the quotient only grows, so
    /// saturating every addition gives exactly this minimum.
    now: u64,
    /// `bits × clock_hz mod bits_per_sec`, minus `bits_per_sec` (wrapping): adding a step's
    /// remainder carries out of 64 bits exactly when the true remainder reaches the bit rate.
    behind: u64,
    /// What the last frame's length adds: the common case (captures and generators mostly
    /// repeat lengths) compares one length, with no address to compute.
    last: Step,
    lengths: Lengths,
}

/// An [`ArrivalClock`] advancing frame by frame (see [`ArrivalClock::ticker`]); written
/// back when dropped.
#[derive(Debug)]
#[must_use = "a ticker advances its clock as it is used and dropped"]
pub struct Ticker<'a> {
    now: u64,
    behind: u64,
    last: Step,
    bits_per_sec: u64,
    clock: &'a mut ArrivalClock,
}

impl Ticker<'_> {
    /// The arrival cycle of the next frame, `captured_len` bytes as captured.
    #[inline(always)]
    pub fn next(&mut self, captured_len: usize) -> u64 {
        if !self.repeats(captured_len) {
            let c = &mut *self.clock;
            self.last = c
                .lengths
                .switch(self.last, captured_len, c.clock_hz, c.bits_per_sec);
        }
        self.tick()
    }

    /// The last frame's captured length (`usize::MAX`, which no frame has, before the
    /// first): [`Ticker::tick`] times a frame of this length.
    #[inline(always)]
    pub fn last_len(&self) -> usize {
        self.last.len
    }

    /// Whether a frame of `captured_len` bytes has the last frame's length: then
    /// [`Ticker::tick`] is its [`Ticker::next`].
    #[inline(always)]
    pub fn repeats(&self, captured_len: usize) -> bool {
        self.last.len == captured_len
    }

    /// The arrival cycle of the next frame, which has the last frame's length (see
    /// [`Ticker::repeats`]; a ticker that has seen no frame yet has no length to repeat).
    #[inline(always)]
    pub fn tick(&mut self) -> u64 {
        // No overflow: at most `u64::MAX - 1` frames a ticker.
        if self.within(1) {
            self.tick_within()
        } else {
            self.tick_saturating()
        }
    }

    /// Whether the next `frames` frames of the last frame's length arrive before the clock
    /// saturates at `u64::MAX` (at most `quotient + 1` cycles each): then
    /// [`Ticker::tick_within`] times each of them.
    #[inline(always)]
    pub fn within(&self, frames: u32) -> bool {
        self.last
            .quotient
            .checked_add(1)
            .and_then(|q| q.checked_mul(u64::from(frames)))
            .and_then(|d| self.now.checked_add(d))
            .is_some()
    }

    /// [`Ticker::tick`] of a frame that [`Ticker::within`] said arrives before the clock
    /// saturates: without the test and the call that another length takes, nor the
    /// saturation's, for a loop that must make no call in its common case (see
    /// `share::read::fill`).
    #[inline(always)]
    pub fn tick_within(&mut self) -> u64 {
        self.last.count += 1;
        let step = self.last;
        // (r + a·c) / b = a·c / b + (r + a·c mod b) / b, and the last term is 0 or 1 since
        // both remainders are below b: it is 1 when r + (a·c mod b) reaches b, which is when
        // adding the step's remainder to `behind` = r - b (mod 2^64) carries; the new
        // `behind` is then the sum minus b (a mask, not a select: the compiler kept `behind`
        // in a register only so), else the sum itself; the quotient takes the carry.
        // Callgrind: 14 host instructions a frame with the saturation tested every frame
        // (one compare with `u64::MAX - quotient`, kept per step), ~19 comparing r with
        // b - (a·c mod b) and saturating both adds; untested here (`within` once per run of
        // frames), ~8 fewer in the reading loop (see `share::read::fill`).
        let (behind, wrap) = self.behind.overflowing_add(step.remainder);
        // A select, not a branch: `wrap` follows the frames' fractions of a cycle, which no
        // branch predictor learns (the compiler made a branch of the mask once the rest of
        // the loop changed).
        self.behind =
            behind.wrapping_sub(std::hint::select_unpredictable(wrap, self.bits_per_sec, 0));
        // No overflow: the caller's `within` bounds the clock by `u64::MAX`.
        self.now += step.quotient + u64::from(wrap);
        self.now
    }

    /// [`Ticker::tick`] of a frame that may take the clock past `u64::MAX`, where it stays
    /// (the quotient only grows, so saturating every addition gives the minimum). Never, in
    /// any real configuration.
    #[cold]
    #[inline(never)]
    fn tick_saturating(&mut self) -> u64 {
        self.last.count += 1;
        let step = self.last;
        let (behind, wrap) = self.behind.overflowing_add(step.remainder);
        self.behind = behind.wrapping_sub(self.bits_per_sec & u64::from(wrap).wrapping_neg());
        self.now = self
            .now
            .saturating_add(step.quotient)
            .saturating_add(u64::from(wrap));
        self.now
    }
}

impl Drop for Ticker<'_> {
    #[inline]
    fn drop(&mut self) {
        self.clock.now = self.now;
        self.clock.behind = self.behind;
        self.clock.last = self.last;
    }
}

/// The [`ArrivalClock`]'s other frame lengths.
#[derive(Debug, Clone, Copy)]
struct Lengths {
    /// What recent frame lengths add, direct-mapped by length (IMIX's three fall in three
    /// different slots); the slot of the clock's `last` is empty while it is there.
    steps: [Step; STEPS],
    /// Wire bits and frames seen, but for those counted in `steps` and `last`.
    bits: u128,
    frames: u64,
}

impl Lengths {
    /// Puts `last` back in its slot and takes out the step of `len` (computed if its slot
    /// holds another length, whose counts are folded in first).
    #[cold]
    fn switch(&mut self, last: Step, len: usize, clock_hz: u64, bits_per_sec: u64) -> Step {
        if last.len != Step::NONE.len {
            self.steps[last.len % STEPS] = last;
        }
        let slot = &mut self.steps[len % STEPS];
        if slot.len != len {
            self.bits += u128::from(slot.bits) * u128::from(slot.count);
            self.frames += slot.count;
            *slot = Step::new(len, clock_hz, bits_per_sec);
        }
        std::mem::replace(slot, Step::NONE)
    }
}

/// Slots of [`Lengths::steps`] (a power of two).
const STEPS: usize = 16;

/// What a frame of `len` captured bytes adds to [`ArrivalClock`]: its wire bits, and their
/// `bits × clock_hz` as quotient (saturated) and remainder by the bit rate (see
/// [`ArrivalClock::next`] for how they are added). It also counts its
/// frames (one increment), which [`ArrivalClock`] adds to its bits and frames only when the
/// slot is reused or read.
#[derive(Debug, Clone, Copy)]
struct Step {
    len: usize,
    bits: u64,
    quotient: u64,
    remainder: u64,
    count: u64,
}

impl Step {
    /// No length yet (no frame is `usize::MAX` bytes long).
    const NONE: Step = Step {
        len: usize::MAX,
        bits: 0,
        quotient: 0,
        remainder: 0,
        count: 0,
    };

    fn new(len: usize, clock_hz: u64, bits_per_sec: u64) -> Step {
        let bits = crate::preset::wire_bytes(len) * 8;
        let p = u128::from(bits) * u128::from(clock_hz);
        let (quotient, remainder) = match u64::try_from(p) {
            // One 64-bit division in every real configuration.
            Ok(p) => (p / bits_per_sec, p % bits_per_sec),
            Err(_) => {
                let bps = u128::from(bits_per_sec);
                let q = u64::try_from(p / bps).unwrap_or(u64::MAX);
                (q, (p % bps) as u64)
            }
        };
        Step {
            len,
            bits,
            quotient,
            remainder,
            count: 0,
        }
    }
}

impl ArrivalClock {
    /// A port of `bits_per_sec` feeding MEs clocked at `clock_hz`.
    pub fn new(bits_per_sec: u64, clock_hz: u64) -> ArrivalClock {
        ArrivalClock {
            bits_per_sec: bits_per_sec.max(1),
            clock_hz,
            now: 0,
            behind: 0u64.wrapping_sub(bits_per_sec.max(1)),
            last: Step::NONE,
            lengths: Lengths {
                steps: [Step::NONE; STEPS],
                bits: 0,
                frames: 0,
            },
        }
    }

    /// The arrival cycle of the next frame, `captured_len` bytes as captured.
    #[inline]
    pub fn next(&mut self, captured_len: usize) -> u64 {
        self.ticker().next(captured_len)
    }

    /// The clock for a run of frames: [`Ticker::next`] is [`ArrivalClock::next`], with the
    /// fields every frame updates held apart from the rest until the ticker is dropped.
    ///
    /// Why: a loop over frames kept an `ArrivalClock` in memory (the cold path that caches
    /// another length takes its table by address), so every frame loaded and stored its
    /// quotient and remainder; a ticker's own fields are locals the compiler can keep in
    /// registers. Callgrind, demo: 5 host instructions a frame fewer in the reading loop.
    #[inline]
    pub fn ticker(&mut self) -> Ticker<'_> {
        Ticker {
            now: self.now,
            behind: self.behind,
            last: self.last,
            bits_per_sec: self.bits_per_sec,
            clock: self,
        }
    }

    /// The arrival cycle of the last frame.
    #[inline]
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Line-rate packets per second for the frames seen so far.
    pub fn line_rate_pps(&self) -> f64 {
        let l = &self.lengths;
        let steps = l.steps.iter().chain([&self.last]);
        let (bits, frames) = steps.fold((l.bits, l.frames), |(b, f), s| {
            (b + u128::from(s.bits) * u128::from(s.count), f + s.count)
        });
        if bits == 0 {
            return 0.0;
        }
        frames as f64 * self.bits_per_sec as f64 / bits as f64
    }
}

/// Cycles per packet an ME needs on average with latency hiding: `max(busy, service / T)`.
pub fn cycles_per_packet(busy_mean: f64, service_mean: f64, threads: u32) -> f64 {
    busy_mean.max(service_mean / f64::from(threads.max(1)))
}

/// What one ME sustains, packets per second (infinite for free packets).
pub fn me_capacity_pps(busy_mean: f64, service_mean: f64, threads: u32, clock_hz: u64) -> f64 {
    let c = cycles_per_packet(busy_mean, service_mean, threads);
    if c <= 0.0 {
        f64::INFINITY
    } else {
        clock_hz as f64 / c
    }
}

/// One ME's load and capacity, for [`modeled_pps`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeLoad {
    /// Fraction of the frames reaching the program that RSS sent to this ME.
    pub share: f64,
    /// Its capacity in packets per second.
    pub capacity_pps: f64,
}

/// Modelled throughput: `min(line rate, min over loaded MEs of capacity / share)`.
pub fn modeled_pps(line_rate_pps: f64, mes: &[MeLoad]) -> f64 {
    mes.iter()
        .filter(|m| m.share > 0.0)
        .map(|m| m.capacity_pps / m.share)
        .fold(line_rate_pps, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Just;

    #[test]
    fn arrivals_at_line_rate() {
        // 64-byte frames (60 captured) at 10 GbE, 800 MHz: 67.2 ns = 53.76 cycles apart.
        let mut c = ArrivalClock::new(10_000_000_000, 800_000_000);
        assert_eq!(c.next(60), 53);
        assert_eq!(c.next(60), 107);
        for _ in 0..98 {
            c.next(60);
        }
        assert_eq!(c.now(), 5376);
        assert!((c.line_rate_pps() / 1e6 - 14.880_952).abs() < 1e-3);
        // The incremental quotient equals the direct formula, also past 64-bit products.
        for (bps, hz) in [(40_000_000_000u64, 800_000_000u64), (7, u64::MAX / 3)] {
            let mut c = ArrivalClock::new(bps, hz);
            let mut bits = 0u128;
            for len in [60usize, 1514, 9000, 14, 65535, 100] {
                let t = c.next(len);
                bits += u128::from(crate::preset::wire_bytes(len)) * 8;
                let want = (bits * u128::from(hz) / u128::from(bps)).min(u128::from(u64::MAX));
                assert_eq!(u128::from(t), want, "{bps} {hz} {len}");
            }
        }
    }

    proptest::proptest! {
        /// The cached per-length step gives the direct formula's times, with repeated and
        /// changing lengths, for any rates (bit rates past 2^63 included).
        #[test]
        fn cached_steps_equal_the_direct_formula(
            bps in proptest::prop_oneof![1u64..100, 1_000_000u64..400_000_000_000, (u64::MAX / 2)..=u64::MAX],
            hz in proptest::prop_oneof![1u64..1000, 100_000_000u64..2_000_000_000, (u64::MAX / 4)..=u64::MAX],
            lens in proptest::collection::vec(proptest::prop_oneof![Just(60usize), Just(1514), 0usize..70_000], 1..60),
        ) {
            let mut c = ArrivalClock::new(bps, hz);
            let mut bits = 0u128;
            let n = lens.len();
            let mut times = Vec::new();
            for &len in &lens {
                let t = c.next(len);
                times.push(t);
                bits += u128::from(crate::preset::wire_bytes(len)) * 8;
                let want = (bits * u128::from(hz) / u128::from(bps)).min(u128::from(u64::MAX));
                proptest::prop_assert_eq!(u128::from(t), want);
                proptest::prop_assert_eq!(c.now(), t);
            }
            // The bits and frames kept per cached length add up.
            let pps = n as f64 * bps.max(1) as f64 / bits as f64;
            proptest::prop_assert_eq!(c.line_rate_pps(), pps);
            // One ticker for the whole run, then another, gives the same times and leaves
            // the same clock.
            let mut t = ArrivalClock::new(bps, hz);
            let half = lens.len() / 2;
            for part in [&lens[..half], &lens[half..]] {
                let mut ticker = t.ticker();
                for &len in part {
                    times.push(ticker.next(len));
                }
            }
            proptest::prop_assert_eq!(&times[n..], &times[..n]);
            proptest::prop_assert_eq!(t.now(), c.now());
            proptest::prop_assert_eq!(t.line_rate_pps(), c.line_rate_pps());
            // Runs of one length as the reading loop times them: `tick_within` for as many
            // frames as `within` allows (its additions unchecked but for overflow checks in
            // the test profile), `next` otherwise.
            let mut w = ArrivalClock::new(bps, hz);
            let mut got = Vec::new();
            {
                let mut ticker = w.ticker();
                let mut i = 0;
                while let Some(&len) = lens.get(i) {
                    let run = lens[i..].iter().take_while(|&&l| l == len).count() as u32;
                    if ticker.repeats(len) && ticker.within(run) {
                        for _ in 0..run {
                            got.push(ticker.tick_within());
                        }
                        i += run as usize;
                    } else {
                        got.push(ticker.next(len));
                        i += 1;
                    }
                }
            }
            proptest::prop_assert_eq!(&got[..], &times[..n]);
            proptest::prop_assert_eq!(w.line_rate_pps(), c.line_rate_pps());
        }
    }

    #[test]
    fn latency_hiding_and_skew() {
        // 100 busy + 300 wait: 4 threads hide it (100 cycles), 2 do not (200).
        assert_eq!(cycles_per_packet(100.0, 400.0, 4), 100.0);
        assert_eq!(cycles_per_packet(100.0, 400.0, 2), 200.0);
        let cap = me_capacity_pps(100.0, 400.0, 4, 800_000_000);
        assert_eq!(cap, 8e6);
        let even = [MeLoad {
            share: 0.5,
            capacity_pps: cap,
        }; 2];
        assert_eq!(modeled_pps(1e9, &even), 16e6);
        let skewed = [
            MeLoad {
                share: 0.8,
                capacity_pps: cap,
            },
            MeLoad {
                share: 0.2,
                capacity_pps: cap,
            },
        ];
        assert_eq!(modeled_pps(1e9, &skewed), 10e6);
        assert_eq!(modeled_pps(5e6, &even), 5e6);
    }
}
