//! Exact per-packet histograms ([`Histogram`]) and their percentiles.

use std::collections::BTreeMap;

use crate::stats::Percentiles;

/// An exact histogram of a per-packet quantity (value → count). Per-packet costs take few
/// distinct values: values below [`Histogram::DENSE`] are counted in an array (the hot
/// path: one increment per packet; counts and sums of the dense part are computed when
/// read), larger ones in a tree. Merging is order-independent.
///
/// A dense part may be longer than its largest value (a buffer of an earlier histogram, see
/// [`Histogram::merge_counted_from`]): its counts past that value are zeros, which no reading
/// sees (equality included).
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    dense: Vec<u64>,
    sparse: BTreeMap<u64, u64>,
    /// Count and sum of the sparse part only.
    n: u64,
    sum: u128,
}

/// Equal contents: the same values and counts, however long the dense parts.
impl PartialEq for Histogram {
    fn eq(&self, other: &Histogram) -> bool {
        self.dense[..top(&self.dense)] == other.dense[..top(&other.dense)]
            && self.sparse == other.sparse
            && (self.n, self.sum) == (other.n, other.sum)
    }
}

impl Eq for Histogram {}

impl Histogram {
    /// Values below this are counted densely.
    pub const DENSE: u64 = 4096;

    /// Records one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        if let Some(slot) = self.dense.get_mut(v as usize) {
            *slot += 1;
        } else {
            self.add(v, 1);
        }
    }

    /// Cold and out of line: [`Histogram::record`] reaches it only when a value first
    /// exceeds the dense part (or is sparse), and its growth code inlined into the
    /// scheduler's loops, which record three values per packet, cost their registers
    /// (callgrind, bench profile, `simspeed pre`: 758.6 -> 754.2 host instructions per
    /// frame; thread CPU time 1.022x and 1.017x in two runs of 8 interleaved rounds).
    #[cold]
    #[inline(never)]
    fn add(&mut self, v: u64, c: u64) {
        if v < Self::DENSE {
            let i = v as usize;
            self.grow_to(i + 1);
            self.dense[i] += c;
        } else {
            *self.sparse.entry(v).or_insert(0) += c;
            self.n += c;
            self.sum += u128::from(v) * u128::from(c);
        }
    }

    /// (value, count) in ascending value order.
    ///
    /// The dense part is read in runs of [`RUN`] counts, a run of zeros skipped with one
    /// test (see [`any`]). Why: the dense part reaches up to the largest value recorded, and
    /// per-packet costs cluster far above 0 (the demo: busy 313 and service 1066 cycles on
    /// every packet, so 1 of ~1,067 counts is nonzero); counts one by one, the report's reads
    /// (`buckets`, percentiles) cost ~4.5 host instructions per dense count.
    fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let (runs, rest) = self.dense.as_chunks::<RUN>();
        runs.iter()
            .enumerate()
            .filter(|(_, run)| any(run))
            .flat_map(|(k, run)| counted(k * RUN, run))
            .chain(counted(runs.len() * RUN, rest))
            .chain(self.sparse.iter().map(|(v, c)| (*v, *c)))
    }

    /// The histogram as `(value, count)` buckets in ascending value order, only values that
    /// occurred. The histogram is exact, so each bucket's upper bound (inclusive) is its
    /// value and it holds exactly the packets with that value.
    ///
    /// A loop of its own rather than `Histogram::iter` collected: every ME's busy cycles are
    /// summed from its buckets when it finishes, and the iterator's chained adapters cost
    /// ~2,000 host instructions for the demo's 40 runs of the busy histogram (callgrind, a
    /// warm 1,000-frame call of `simspeed repeat`: 1.79 -> 1.77 M host instructions). Not
    /// taken: the percentiles and the buckets through one visiting loop with a closure that
    /// may break (1.72 -> 1.76 M: its closures did not inline as well as this loop).
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut push = |from: usize, counts: &[u64]| {
            for (v, &c) in (from as u64..).zip(counts) {
                if c > 0 {
                    out.push((v, c));
                }
            }
        };
        let (runs, rest) = self.dense.as_chunks::<RUN>();
        for (k, run) in runs.iter().enumerate() {
            if any(run) {
                push(k * RUN, run);
            }
        }
        push(runs.len() * RUN, rest);
        out.extend(self.sparse.iter().map(|(&v, &c)| (v, c)));
        out
    }

    /// Adds another histogram.
    ///
    /// The dense parts add run by run of `RUN` counts, `other`'s runs of zeros skipped
    /// (see `Histogram::iter`), the dense part growing once to `other`'s last nonzero
    /// count. Why: this was a `Histogram::add` per value, which grew the dense part value by
    /// value (a `realloc` and a `memset` each time); merging the 50 MEs' busy and service
    /// histograms of the demo cost ~510 k host instructions (callgrind, `simspeed pre
    /// 20000`), adding every count ~220 k, skipping runs of zeros ~150 k.
    pub fn merge(&mut self, other: &Histogram) {
        let len = self.grow_for(other);
        // Runs of `other`'s zeros skipped (see `iter`).
        let (runs, rest) = self.dense[..len].as_chunks_mut::<RUN>();
        let (other_runs, other_rest) = other.dense[..len].as_chunks::<RUN>();
        for (a, b) in runs.iter_mut().zip(other_runs) {
            if any(b) {
                for (a, b) in a.iter_mut().zip(b) {
                    *a += *b;
                }
            }
        }
        for (a, b) in rest.iter_mut().zip(other_rest) {
            *a += *b;
        }
        self.merge_sparse(other);
    }

    /// [`Histogram::merge`] of `other`, taken, whose [`Histogram::count`] the caller knows
    /// to be `count`: `other`'s dense part is read from its largest value down, run by run
    /// of `RUN` counts, only until its counts add up to `count` (all of it if `count` is
    /// larger; a smaller one would leave counts out, which debug builds assert against). Its
    /// counts are zeroed as they are added, and its dense part, all zeros then, is kept as a
    /// spare buffer (see `spare`) for the next histogram whose dense part grows.
    ///
    /// Why from the top down to the count: per-packet costs cluster far above 0 (the demo's
    /// busy cycles are 313 on every packet, its service cycles ~300-1,066), and the dense
    /// part starts at 0, so reading up from 0 passed mostly zeros. The report merges two
    /// histograms of each ME, whose packet count it has (`MeStats::processed`): ~170 k host
    /// instructions and ~5.5% of a 1,000-frame call's time on Agilio CX's 50 MEs (callgrind
    /// and perf, `simspeed repeat 1000 1`), a fixed cost per call.
    ///
    /// Why taken: every `simulate` call builds each ME's busy and service histograms from empty,
    /// and their dense parts grew from 0 to the largest value recorded (the demo: 313 and
    /// ~1,066 cycles, ~11 KB an ME), a `realloc` and a `memset` at every doubling, then
    /// were freed after the report merged them: callgrind, a warm 1,000-frame call of
    /// `simspeed repeat` on Agilio CX's 50 MEs, ~640 k host instructions of the call's ~1.7 M
    /// fixed cost (`rep stosb` counted per byte), and perf placed ~10% of such a call's time
    /// in the histograms' allocation, zeroing and freeing. A spare buffer is zero where the
    /// new histogram counts, so its first values are counted where they fall, with no call.
    /// Measured the same way with the spares (and [`Histogram::recycle`] of the run's
    /// latency, service and busy histograms): 2.41 -> 1.79 M host instructions a warm call;
    /// thread CPU time of the 1,000-frame calls ~10% less (medians, 6 interleaved runs of 8
    /// rounds on the noisy host); per frame unchanged (721.9 -> 722.0, `simspeed pre`).
    pub fn merge_counted_from(&mut self, mut other: Histogram, count: u64) {
        debug_assert_eq!(other.count(), count);
        let len = self.grow_for(&other);
        let mut left = count.saturating_sub(other.n);
        // `other`'s counts from `below` up are zeros (those past `len` already were).
        let mut below = len;
        let runs = self.dense[..len].rchunks_mut(RUN);
        for (a, b) in runs.zip(other.dense[..len].rchunks_mut(RUN)) {
            if left == 0 {
                break;
            }
            let n: u64 = b.iter().sum();
            if n > 0 {
                for (a, b) in a.iter_mut().zip(b.iter_mut()) {
                    *a += std::mem::take(b);
                }
                left = left.saturating_sub(n);
            }
            below -= b.len();
        }
        self.merge_sparse(&other);
        // Below, zeros when `count` is right, as the caller promises (debug-asserted above
        // and here). Not tested in release builds: an OR of those counts read ~680 of them per
        // histogram on the demo, ~120 k host instructions (~0.5 MB read) a call, to guard a
        // count the reading loop above trusts already (a wrong one leaves the merge short).
        let dense = std::mem::take(&mut other.dense);
        debug_assert!(zeros(&dense[..below]));
        spare::give(dense);
    }

    /// Grows the dense part to `other`'s last nonzero count; returns that length (what a
    /// merge of `other`'s dense part reads).
    fn grow_for(&mut self, other: &Histogram) -> usize {
        let len = top(&other.dense);
        self.grow_to(len);
        len
    }

    /// Makes the dense part at least `len` counts long: in the shortest spare buffer that
    /// holds `len` counts if there is one (see [`spare`]; a dense part outgrown this way is
    /// zeroed and becomes a spare), else by growing it with zeros.
    ///
    /// Why a dense part that grows moves into a spare: a histogram takes the shortest spare
    /// that holds its first value, which may be another's (the demo's latency histogram
    /// starts below the service histograms' ~1,066 cycles and ends at ~3,400); grown in
    /// place, it took eleven steps of a `memset` and some of a `realloc` each call, and the
    /// histogram whose buffer it took grew from empty.
    fn grow_to(&mut self, len: usize) {
        if self.dense.len() >= len {
            return;
        }
        if let Some(buf) = spare::take(len) {
            let mut old = std::mem::replace(&mut self.dense, buf);
            if !old.is_empty() {
                self.dense[..old.len()].copy_from_slice(&old);
                clear(&mut old);
                spare::give(old);
            }
            return;
        }
        self.dense.resize(len, 0);
    }

    /// Drops the histogram, its dense part zeroed and kept as a spare buffer (see
    /// [`Histogram::merge_counted_from`], which says why) for the next histogram whose dense
    /// part grows.
    pub fn recycle(mut self) {
        clear(&mut self.dense);
        spare::give(std::mem::take(&mut self.dense));
    }

    /// Adds `other`'s sparse values, count and sum (a merge's part beyond the dense one).
    fn merge_sparse(&mut self, other: &Histogram) {
        for (&v, &c) in &other.sparse {
            *self.sparse.entry(v).or_insert(0) += c;
        }
        self.n += other.n;
        self.sum += other.sum;
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.n + self.dense.iter().sum::<u64>()
    }

    /// Mean (0 when empty).
    ///
    /// The dense part's sum of value × count is exact in 64-bit words: each count splits
    /// into 32-bit halves, and a value (< [`Histogram::DENSE`] = 2^12) times a half is below
    /// 2^44, so the at most 2^12 products of each half sum below 2^56. Why: a 128-bit product
    /// per value cost ~6,500 host instructions a histogram (callgrind, demo); the 64-bit
    /// loop vectorises. The count is summed in the same pass: with [`Histogram::count`]'s
    /// own pass first, the report's per-ME means (two histograms of each of the demo's 50
    /// MEs) cost ~0.9 M host instructions a run (callgrind, `simspeed pre 20000`).
    pub fn mean(&self) -> f64 {
        const _: () = assert!(Histogram::DENSE <= 1 << 12);
        let (mut n, mut lo, mut hi) = (self.n, 0u64, 0u64);
        // A 32-bit value times a 32-bit half: one 32x32->64-bit multiply, which vectorises.
        let mut add = |from: u32, counts: &[u64]| {
            for (v, &c) in (from..).zip(counts) {
                n += c;
                lo += u64::from(v) * (c & 0xffff_ffff);
                hi += u64::from(v) * (c >> 32);
            }
        };
        // Runs of zeros skipped (see `iter`).
        let (runs, rest) = self.dense.as_chunks::<RUN>();
        for (k, run) in (0u32..).zip(runs) {
            if any(run) {
                add(k * RUN as u32, run);
            }
        }
        add((runs.len() * RUN) as u32, rest);
        if n == 0 {
            return 0.0;
        }
        let dense = u128::from(lo) + (u128::from(hi) << 32);
        (self.sum + dense) as f64 / n as f64
    }

    /// The nearest-rank percentile `p` in (0, 100] (0 when empty).
    pub fn percentile(&self, p: f64) -> u64 {
        let n = self.count();
        if n == 0 {
            return 0;
        }
        let rank = rank(p, n);
        let mut seen = 0;
        let mut last = 0;
        for (v, c) in self.iter() {
            seen += c;
            last = v;
            if seen >= rank {
                return v;
            }
        }
        last
    }

    /// p50 and p99: [`Histogram::percentile`] of each, in one pass over the values.
    pub fn p50_p99(&self) -> Percentiles<u64> {
        let n = self.count();
        if n == 0 {
            return Percentiles { p50: 0, p99: 0 };
        }
        let (r50, r99) = (rank(50.0, n), rank(99.0, n));
        let (mut seen, mut last) = (0, 0);
        let mut p50 = None;
        for (v, c) in self.iter() {
            seen += c;
            last = v;
            if p50.is_none() && seen >= r50 {
                p50 = Some(v);
            }
            if seen >= r99 {
                return Percentiles {
                    p50: p50.unwrap_or(v),
                    p99: v,
                };
            }
        }
        Percentiles {
            p50: p50.unwrap_or(last),
            p99: last,
        }
    }
}

/// Dense counts per test for a run of zeros ([`Histogram::iter`]).
const RUN: usize = 8;

/// Whether any count of `run` is nonzero.
///
/// Plain code, not SIMD: four 16-byte SSE2 loads ORed and one compare read the run with ~60 k
/// fewer host instructions a run of the demo on Agilio CX (callgrind, `simspeed pre 1000`:
/// 4.54 M against 4.61 M for the whole call, ~0.1% of a 200,000-frame call's time), which is
/// not worth an `unsafe` block in report code.
#[inline(always)]
fn any(run: &[u64; RUN]) -> bool {
    run.iter().fold(0, |a, &c| a | c) != 0
}

/// The length of `counts` up to its last nonzero count (0 if all are zeros).
fn top(counts: &[u64]) -> usize {
    counts.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1)
}

/// Whether all of `counts` are zeros.
fn zeros(counts: &[u64]) -> bool {
    counts.iter().fold(0, |a, &c| a | c) == 0
}

/// Sets every count of `counts` to zero, a run of zeros skipped with one test (see [`any`]).
fn clear(counts: &mut [u64]) {
    let (runs, rest) = counts.as_chunks_mut::<RUN>();
    for run in runs {
        if any(run) {
            *run = [0; RUN];
        }
    }
    rest.fill(0);
}

/// The nonzero `counts` as (value, count), the first count's value `from`.
#[inline(always)]
fn counted(from: usize, counts: &[u64]) -> impl Iterator<Item = (u64, u64)> + '_ {
    (from as u64..)
        .zip(counts)
        .filter(|(_, c)| **c > 0)
        .map(|(v, c)| (v, *c))
}

/// The nearest rank of percentile `p` among `n` values (at least 1).
fn rank(p: f64, n: u64) -> u64 {
    ((p / 100.0) * n as f64).ceil().max(1.0) as u64
}

/// Zeroed dense parts of histograms merged away ([`Histogram::merge_counted_from`]), taken by
/// histograms whose dense part grows from empty ([`Histogram::grow_to`]): process-wide, as a
/// histogram is merged on the thread that reports and grows on whichever host thread runs
/// its ME. At most [`spare::MAX_BYTES`] are kept.
mod spare {
    use std::sync::Mutex;

    /// Bytes of spare buffers kept at most: four times Agilio CX's 50 MEs' pairs on the demo
    /// (~550 KB); a buffer that would pass it is freed.
    pub(super) const MAX_BYTES: usize = 2 << 20;

    /// Buffers in increasing length, and their bytes.
    struct Spare {
        bufs: Vec<Vec<u64>>,
        bytes: usize,
    }

    static SPARE: Mutex<Spare> = Mutex::new(Spare {
        bufs: Vec::new(),
        bytes: 0,
    });

    /// The shortest spare buffer of at least `len` counts (all zeros), if there is one.
    pub(super) fn take(len: usize) -> Option<Vec<u64>> {
        let buf = {
            // Poisoned only by a panic inside this module's short sections: then no spares.
            let mut s = SPARE.lock().ok()?;
            let i = s.bufs.partition_point(|b| b.len() < len);
            if i == s.bufs.len() {
                return None;
            }
            let buf = s.bufs.remove(i);
            s.bytes -= buf.capacity() * size_of::<u64>();
            buf
        };
        debug_assert!(super::zeros(&buf));
        Some(buf)
    }

    /// Keeps `buf`, whose counts are all zeros, for a later [`take`] (frees it if the spares
    /// would pass [`MAX_BYTES`]).
    pub(super) fn give(buf: Vec<u64>) {
        debug_assert!(super::zeros(&buf));
        let bytes = buf.capacity() * size_of::<u64>();
        let Ok(mut s) = SPARE.lock() else {
            return;
        };
        if buf.is_empty() || s.bytes + bytes > MAX_BYTES {
            return;
        }
        let i = s.bufs.partition_point(|b| b.len() < buf.len());
        s.bufs.insert(i, buf);
        s.bytes += bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.p50_p99(), Percentiles { p50: 50, p99: 99 });
        let mut g = Histogram::default();
        g.record(100_000);
        h.merge(&g);
        assert_eq!((h.count(), h.percentile(100.0)), (101, 100_000));
        assert_eq!(h.percentile(99.0), 100);
        assert!((h.mean() - (5050.0 + 100_000.0) / 101.0).abs() < 1e-9);
        assert_eq!(Histogram::default().percentile(50.0), 0);
    }

    proptest::proptest! {
        /// A merge equals recording the other's values one by one; its buckets are its
        /// nonzero counts in value order; both percentiles of one pass equal
        /// [`Histogram::percentile`]'s; the 64-bit mean equals the 128-bit sum's.
        #[test]
        fn merge_percentiles_and_mean_are_exact(
            a in proptest::collection::vec(proptest::prop_oneof![0u64..64, 0u64..5000, 4000u64..u64::MAX], 0..200),
            b in proptest::collection::vec(proptest::prop_oneof![0u64..64, 0u64..5000, 4000u64..u64::MAX], 0..200),
            counts in proptest::collection::vec(proptest::prop_oneof![0u64..3, 0u64..=u64::MAX / 8192], 0..4096),
        ) {
            let (mut merged, mut recorded, mut other) =
                (Histogram::default(), Histogram::default(), Histogram::default());
            for &v in &a {
                merged.record(v);
                recorded.record(v);
            }
            for &v in &b {
                other.record(v);
                recorded.record(v);
            }
            let mut counted = merged.clone();
            merged.merge(&other);
            proptest::prop_assert_eq!(&merged, &recorded);
            // Merged knowing the count, taking `other`: the same.
            counted.merge_counted_from(other.clone(), b.len() as u64);
            proptest::prop_assert_eq!(&counted, &recorded);
            for h in [&merged, &other] {
                let p = h.p50_p99();
                proptest::prop_assert_eq!((p.p50, p.p99), (h.percentile(50.0), h.percentile(99.0)));
            }
            // The buckets (read run by run, zeros skipped) against every count one by one.
            let naive: Vec<(u64, u64)> = (0u64..)
                .zip(&merged.dense)
                .filter(|&(_, &c)| c > 0)
                .map(|(v, &c)| (v, c))
                .chain(merged.sparse.iter().map(|(&v, &c)| (v, c)))
                .collect();
            proptest::prop_assert_eq!(merged.buckets(), naive);
            // Large counts (past 32 bits) in every dense slot.
            let h = Histogram { dense: counts.clone(), ..Histogram::default() };
            let n: u64 = counts.iter().sum();
            let sum: u128 = counts.iter().enumerate().map(|(v, &c)| v as u128 * u128::from(c)).sum();
            let want = if n == 0 { 0.0 } else { sum as f64 / n as f64 };
            proptest::prop_assert_eq!(h.mean(), want);
        }
    }

    /// The buckets counted one value at a time.
    fn naive(values: &[u64]) -> Vec<(u64, u64)> {
        let mut m = BTreeMap::new();
        for &v in values {
            *m.entry(v).or_insert(0u64) += 1;
        }
        m.into_iter().collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

        /// Histograms taken into another ([`Histogram::merge_counted_from`]) or recycled leave
        /// their buffers as spares, which later histograms (of other lengths, grown from empty
        /// or grown past their buffer) count in: round after round, every histogram holds
        /// exactly its own values, and equality ignores a spare's zeros past the largest value.
        #[test]
        fn spare_buffers_come_back_empty(
            rounds in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::collection::vec(proptest::prop_oneof![0u64..64, 0u64..5000, 4000u64..u64::MAX], 0..120),
                    1..6,
                ),
                1..5,
            ),
        ) {
            for parts in &rounds {
                let (mut all, mut want) = (Histogram::default(), Vec::new());
                for (k, values) in parts.iter().enumerate() {
                    let mut h = Histogram::default();
                    for &v in values {
                        h.record(v);
                    }
                    proptest::prop_assert_eq!(h.buckets(), naive(values));
                    let mut fresh = Histogram::default();
                    for &v in values {
                        fresh.add(v, 1);
                    }
                    proptest::prop_assert_eq!(&h, &fresh);
                    want.extend_from_slice(values);
                    if k % 2 == 0 {
                        all.merge_counted_from(h, values.len() as u64);
                    } else {
                        all.merge(&h);
                        h.recycle();
                    }
                    proptest::prop_assert_eq!(all.buckets(), naive(&want));
                }
                proptest::prop_assert_eq!(all.count(), want.len() as u64);
                all.recycle();
            }
        }
    }

    /// A spare is all zeros and at least as long as asked; a histogram that outgrows its
    /// dense part keeps its counts.
    #[test]
    fn spares_are_zero_and_long_enough() {
        let mut h = Histogram::default();
        for v in [5u64, 3000, 7, 3000, 4095] {
            h.record(v);
        }
        h.recycle();
        for len in [1usize, 100, 4096] {
            if let Some(buf) = spare::take(len) {
                assert!(buf.len() >= len && zeros(&buf));
                spare::give(buf);
            }
        }
        let mut g = Histogram::default();
        g.record(2);
        g.record(2);
        g.grow_to(4000);
        g.record(3999);
        assert_eq!(g.buckets(), vec![(2, 2), (3999, 1)]);
        assert_eq!(top(&g.dense), 4000);
        assert_eq!((top(&[0, 0]), top(&[1, 0, 2, 0])), (0, 3));
    }
}
