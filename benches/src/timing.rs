//! A small timing harness for the ratio table: criterion is too slow for a one-command,
//! few-minutes comparison of ~30 measurements, so each measurement here is "repeat the
//! operation in batches of at least [`Budget::batch`] wall time, keep [`Budget::samples`]
//! batches, report the median per-operation time". The median rather than the mean, because
//! the machine is shared: a batch that lost the CPU to another process is an outlier to
//! drop, not a cost to average in.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Smallest wall time of one batch of repetitions.
    pub batch: Duration,
    /// Batches per measurement; the median batch is reported.
    pub samples: usize,
}

impl Budget {
    /// The ratio table's default: 5 batches of >= 120 ms, ~0.6 s per measurement.
    pub const TABLE: Budget = Budget {
        batch: Duration::from_millis(120),
        samples: 5,
    };

    /// For a quick smoke run (`--quick`): 3 batches of >= 20 ms.
    pub const QUICK: Budget = Budget {
        batch: Duration::from_millis(20),
        samples: 3,
    };
}

/// One measurement: the median of `samples` batch means.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Median nanoseconds per operation.
    pub median_ns: f64,
    /// Smallest and largest batch mean (ns per operation), for the spread.
    pub min_ns: f64,
    /// See `min_ns`.
    pub max_ns: f64,
    /// Operations per batch.
    pub per_batch: u64,
    /// Batches taken.
    pub samples: usize,
}

impl Measurement {
    /// From per-operation figures of several samples (ns); `None` when `values` is empty.
    pub fn from_samples(mut values: Vec<f64>, per_batch: u64) -> Option<Measurement> {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median_ns = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Measurement {
            median_ns,
            min_ns: values[0],
            max_ns: values[n - 1],
            per_batch,
            samples: n,
        })
    }

    /// Operations per second at the median.
    pub fn per_sec(&self) -> f64 {
        1e9 / self.median_ns
    }
}

/// Times `op`: finds a batch size that takes at least `budget.batch`, then measures
/// `budget.samples` batches of that size. The result of `op` goes through `black_box` so the
/// work cannot be optimised away.
pub fn measure<T>(budget: Budget, op: impl FnMut() -> T) -> Measurement {
    let origin = Instant::now();
    measure_on(budget, || origin.elapsed(), op)
}

/// [`measure`] on the clock `now` (time since any fixed origin). Why a parameter: the
/// calibration's logic is tested on a clock that the operation itself advances, since a test
/// on the wall clock fails whenever the shared machine stalls the process for a batch.
fn measure_on<T>(
    budget: Budget,
    mut now: impl FnMut() -> Duration,
    mut op: impl FnMut() -> T,
) -> Measurement {
    // Calibrate: double the batch until one batch is long enough (the first call also warms
    // caches and lazy state up).
    let mut per_batch = 1u64;
    let first = loop {
        let t = now();
        for _ in 0..per_batch {
            black_box(op());
        }
        let took = now().saturating_sub(t);
        if took >= budget.batch || per_batch >= 1 << 40 {
            // A slow operation (one run already fills the batch) counts this run as a sample.
            break (per_batch == 1).then_some(took.as_secs_f64() * 1e9);
        }
        // Jump close to the target once the batch is long enough to extrapolate from.
        per_batch = if took >= Duration::from_millis(2) {
            let scale = budget.batch.as_secs_f64() / took.as_secs_f64();
            ((per_batch as f64 * scale * 1.1).ceil() as u64).max(per_batch + 1)
        } else {
            per_batch * 2
        };
    };
    let mut values: Vec<f64> = first.into_iter().collect();
    while values.len() < budget.samples.max(1) {
        values.push(batch_ns(per_batch, &mut now, &mut op));
    }
    Measurement::from_samples(values, per_batch).unwrap_or(Measurement {
        median_ns: f64::NAN,
        min_ns: f64::NAN,
        max_ns: f64::NAN,
        per_batch,
        samples: 0,
    })
}

/// Two operations timed in alternation, and their paired ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The first operation (the median of its batches).
    pub a: Measurement,
    /// The second operation.
    pub b: Measurement,
    /// The median over adjacent batch pairs of `b`'s time per operation / `a`'s.
    pub ratio: f64,
}

/// Times `a` and `b` in alternating batches (`a`, `b`, `a`, `b`, ...; `budget.samples`
/// of each, each batch calibrated as [`measure`] does) and reports the median of the ratios
/// of adjacent batches. Why: the shared machine's speed drifts by up to 2x within minutes, so
/// two medians taken one after the other compare two different machines; adjacent batches
/// see nearly the same one.
pub fn measure_pair<T, U>(budget: Budget, a: impl FnMut() -> T, b: impl FnMut() -> U) -> Pair {
    let origin = Instant::now();
    measure_pair_on(budget, || origin.elapsed(), a, b)
}

/// [`measure_pair`] on the clock `now` (see [`measure_on`]).
fn measure_pair_on<T, U>(
    budget: Budget,
    mut now: impl FnMut() -> Duration,
    mut a: impl FnMut() -> T,
    mut b: impl FnMut() -> U,
) -> Pair {
    // Calibration (and warm-up) of each batch size.
    let quick = Budget {
        samples: 1,
        ..budget
    };
    let na = measure_on(quick, &mut now, &mut a).per_batch;
    let nb = measure_on(quick, &mut now, &mut b).per_batch;
    let (mut va, mut vb) = (Vec::new(), Vec::new());
    for _ in 0..budget.samples.max(1) {
        va.push(batch_ns(na, &mut now, &mut a));
        vb.push(batch_ns(nb, &mut now, &mut b));
    }
    let ratio = paired_ratio(&va, &vb);
    let none = |per_batch| Measurement {
        median_ns: f64::NAN,
        min_ns: f64::NAN,
        max_ns: f64::NAN,
        per_batch,
        samples: 0,
    };
    Pair {
        a: Measurement::from_samples(va, na).unwrap_or_else(|| none(na)),
        b: Measurement::from_samples(vb, nb).unwrap_or_else(|| none(nb)),
        ratio,
    }
}

/// The median over adjacent batches of `b[i] / a[i]` (NaN when there is none).
fn paired_ratio(a: &[f64], b: &[f64]) -> f64 {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| y / x).collect();
    Measurement::from_samples(ratios, 1).map_or(f64::NAN, |m| m.median_ns)
}

/// Nanoseconds per operation over one batch of `n` runs of `op`.
fn batch_ns<T>(n: u64, now: &mut impl FnMut() -> Duration, op: &mut impl FnMut() -> T) -> f64 {
    let t = now();
    for _ in 0..n {
        black_box(op());
    }
    now().saturating_sub(t).as_secs_f64() * 1e9 / n.max(1) as f64
}

/// Collects `samples` values from `sample` (each already a per-operation figure in ns, e.g.
/// reported by the kernel itself) and returns their median; errors stop at the first one.
pub fn collect<E>(
    samples: usize,
    per_batch: u64,
    mut sample: impl FnMut() -> Result<f64, E>,
) -> Result<Option<Measurement>, E> {
    let mut values = Vec::with_capacity(samples);
    for _ in 0..samples.max(1) {
        values.push(sample()?);
    }
    Ok(Measurement::from_samples(values, per_batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_sample_counts() {
        let m = Measurement::from_samples(vec![5.0, 1.0, 3.0], 1).expect("values");
        assert_eq!(m.median_ns, 3.0);
        assert_eq!((m.min_ns, m.max_ns), (1.0, 5.0));
        let m = Measurement::from_samples(vec![4.0, 1.0, 3.0, 2.0], 1).expect("values");
        assert_eq!(m.median_ns, 2.5);
        assert!(Measurement::from_samples(vec![f64::NAN], 1).is_none());
    }

    /// Batches of >= 2 ms, three of them: long enough for the calibration's doubling to
    /// matter.
    const BUDGET: Budget = Budget {
        batch: Duration::from_millis(2),
        samples: 3,
    };

    /// A clock that only the operations move: each one advances it by its cost, so the tests
    /// see exact figures whatever the machine does meanwhile.
    #[derive(Default)]
    struct FakeClock(std::cell::Cell<Duration>);

    impl FakeClock {
        fn now(&self) -> Duration {
            self.0.get()
        }
        fn spend(&self, d: Duration) {
            self.0.set(self.0.get() + d);
        }
    }

    /// [`measure_on`] of an operation that costs `cost` on the fake clock; also how often it ran.
    fn measure_fake(cost: Duration) -> (Measurement, u64) {
        let clock = FakeClock::default();
        let mut n = 0u64;
        let m = measure_on(
            BUDGET,
            || clock.now(),
            || {
                n += 1;
                clock.spend(cost);
            },
        );
        (m, n)
    }

    #[test]
    fn measure_reaches_the_batch_length() {
        let (m, n) = measure_fake(Duration::from_micros(50));
        assert_eq!(m.samples, 3);
        // 2 ms of 50 us operations: doubling from 1 stops at the first batch of >= 40.
        assert_eq!(m.per_batch, 64, "{m:?}");
        assert_eq!(
            (m.min_ns, m.median_ns, m.max_ns),
            (50_000.0, 50_000.0, 50_000.0)
        );
        // Calibration 1+2+...+64, then three batches of 64.
        assert_eq!(n, 127 + 3 * 64);
    }

    /// An operation that alone fills a batch is run once to calibrate and that run counts.
    #[test]
    fn a_slow_operation_counts_its_calibration_run() {
        let (m, n) = measure_fake(Duration::from_millis(5));
        assert_eq!((m.per_batch, m.samples, n), (1, 3, 3), "{m:?}");
        assert_eq!(m.median_ns, 5e6);
    }

    #[test]
    fn paired_ratio_compares_adjacent_batches() {
        let clock = FakeClock::default();
        let p = measure_pair_on(
            BUDGET,
            || clock.now(),
            || clock.spend(Duration::from_micros(50)),
            || clock.spend(Duration::from_micros(200)),
        );
        assert_eq!((p.a.samples, p.b.samples), (3, 3));
        assert_eq!(p.ratio, 4.0, "{p:?}");
        assert_eq!((p.a.median_ns, p.b.median_ns), (50_000.0, 200_000.0));
    }

    /// The wall clock is what `measure` uses outside tests; a sleep never returns early, so
    /// this much holds however loaded the machine is.
    #[test]
    fn measure_on_the_wall_clock_is_at_least_the_sleep() {
        let budget = Budget {
            batch: Duration::from_millis(1),
            samples: 2,
        };
        let m = measure(budget, || std::thread::sleep(Duration::from_micros(100)));
        assert!(m.samples == 2 && m.min_ns >= 100_000.0, "{m:?}");
    }

    /// The point of pairing: a machine that slows down between pairs (first case) or within
    /// one pair (second case: the first pair's `b` batch ran 5x slow, the third pair 10x) moves
    /// the ratio of separate medians (second case: 10 / 1) but not the median of the pairs'.
    #[test]
    fn paired_ratio_ignores_drift_between_pairs() {
        let (a, b) = ([1.0, 10.0, 10.0], [2.0, 20.0, 20.0]);
        assert_eq!(paired_ratio(&a, &b), 2.0);
        let (a, b) = ([1.0, 1.0, 10.0], [10.0, 2.0, 20.0]);
        assert_eq!(paired_ratio(&a, &b), 2.0);
        assert!(paired_ratio(&[], &[]).is_nan());
    }
}
