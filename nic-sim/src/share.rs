//! Batches: the frames of every batch are copied into per-ME buffers (each ME's frames back
//! to back, see [`MeFrames`]), and each ME's share becomes one task; all host threads, the
//! calling one included, take tasks until the batch is done.
//!
//! ```text
//!  calling thread: read batch k+1 ─► help with batch k's tasks ─► wait for k ─► publish k+1
//!                        (RSS, arrival time, copy into its ME's buffer)
//!  H - 1 workers:  take batch k's tasks (ME m: its frames of batch k, then advance to `now`)
//! ```
//!
//! # Why tasks and not a fixed ME-to-thread placement
//!
//! The calling thread must also read, time and hash every frame, and how much that costs
//! against simulating depends on the source (frames already in memory, a generator, a pcap
//! file) and on the program (the demo filter costs ~3,700 host instructions a frame to
//! simulate, a small ipv4 test program ~1,500). The fixed placement this replaces gave the
//! calling thread a smaller share of MEs sized by one estimate: callgrind showed the other
//! thread doing 2,650 host instructions per frame against 1,350 on the calling thread for
//! frames already in memory (1.48x predicted from one to two threads), while programs with
//! a costly source leaned the other way. With tasks, a thread that has less to do simply
//! takes more of them, whatever the source and the program.
//!
//! # Why results do not depend on it
//!
//! An ME sees exactly its own frames, in input order, and is brought up to the same `now` at
//! the same batch boundaries as with one host thread; a batch is published only when the
//! previous one is complete, so an ME's tasks never overlap or reorder. Which thread runs a
//! task only changes where its results are collected, and the collector orders them by
//! frame index.
//!
//! Tasks are claimed in decreasing number of frames (the longest first), so a batch does not
//! end waiting on one long task that started late. Each host thread first takes its *home*
//! MEs (those it ran in the previous batch; at first a contiguous block of ME numbers, see
//! [`home`]) and only then helps with the others', so an ME usually runs on the same core
//! batch after batch and its state stays in that core's cache.
//!
//! # Why batches on one host thread too
//!
//! Running an ME's frames of a batch together keeps that ME's state (thread register files,
//! local memory, maps, queues) in cache, where frame-by-frame order touched a different ME
//! almost every frame (50 MEs' state is more than a core's L2). The copy into the arena cost
//! ~100 host instructions a frame when this was measured (the whole reading path, from
//! reading a frame to handing it to its ME's model, is ~125 now), yet one host thread ran
//! 15-25% faster batched than frame by frame in place (four interleaved rounds, 1.44-1.97
//! against 1.18-1.70 M frames/s), so there is a single path.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam::channel::{Receiver, RecvError, Sender, TryRecvError, bounded, unbounded};
use crossbeam::utils::CachePadded;

use crate::collector::Collector;
use crate::engine::PacketEngine;
use crate::error::SimError;
use crate::lanes::{FrameResult, MeSim, Outbox};
use crate::me_set::{MeSet, MesDone};
use crate::run::SimConfig;
use crate::timing::ArrivalClock;
use crate::timing::Histogram;

mod frames;
mod read;
use frames::{Arrivals, MeFrames, Room};
use read::read;

/// Bytes of frames after which a batch is handed to the MEs even if it holds fewer than
/// `SimConfig::batch` frames: frames in flight stay under two such batches (the one being
/// read and the one being run).
const MAX_BATCH_BYTES: usize = 1 << 20;

/// Capacity the MEs' frame buffers of one batch may keep from one batch to the next (see
/// [`Job::clear`]): a batch (two are in use at a time) holds at most this much memory
/// between batches, and at most this much plus its frames while it fills.
const MAX_HELD_BYTES: usize = 4 * MAX_BATCH_BYTES;

/// An ME as the host threads share it: its model, and the host thread that ran its last
/// task, which takes it first in the next batch (see [`Job::seal`]). Padded to its own cache
/// lines: neighbouring MEs run on different host threads at the same time, and an ME's hot
/// fields must not share a line with its neighbour's.
type Slot<E> = CachePadded<Shared<E>>;

/// See [`Slot`].
struct Shared<E: PacketEngine> {
    last: AtomicUsize,
    sim: Mutex<Box<MeSim<E>>>,
}

/// One batch: the frames of every ME, and the time all MEs are brought up to.
struct Job {
    /// Per ME, its frames in input order.
    frames: Vec<MeFrames>,
    /// Input index of the batch's first frame.
    first: u64,
    /// ME numbers in decreasing number of frames (then by ME number).
    order: Vec<u32>,
    /// Per host thread (0: the calling one), the tasks it takes first: its *home* MEs
    /// (see [`home`]), in `order`. A thread whose list is done takes from the others'.
    lists: Vec<Vec<u32>>,
    now: u64,
    /// Per list, the next position to claim (each on its own cache line).
    next: Vec<CachePadded<AtomicUsize>>,
    /// Bytes each ME's buffer starts with (see [`start_bytes`]), for a job made like this one.
    start: usize,
}

/// Bytes each of `mes` MEs' frame buffers starts with for batches of `batch` frames: twice
/// an even share of a batch of minimum-size (64-byte) frames with their headers (RSS shares
/// are uneven), at most [`MAX_BATCH_BYTES`] in all.
///
/// Why not empty (as before, when the growth was measured per frame, ~0.2 host instructions
/// a frame of a 200,000-frame run): every `simulate` call grew every ME's buffer of both
/// batches from nothing by doubling, ~8 reallocations each (a copy of what it held each
/// time): ~800 on the demo's 50 MEs, ~180 k host instructions of a 1,000-frame call's fixed
/// cost and ~530 k of a 40,000-frame call's (callgrind, `simspeed pre`); with one even share
/// the busier MEs still grew once, ~30 k more in the 40,000-frame call. Allocated, not
/// written: a short run's unused room costs only its allocation.
fn start_bytes(batch: usize, mes: usize) -> usize {
    let mes = mes.max(1);
    batch
        .div_ceil(mes)
        .saturating_mul(2 * (frames::HEAD + 64))
        .min(MAX_BATCH_BYTES / mes)
}

/// Jobs a `simulate` call on this thread left, cleared, for its next call (see [`job`]).
const KEPT_JOBS: usize = 2;

/// Capacity of the MEs' buffers a kept job may hold (see [`keep`]): a job that holds more
/// is freed.
const MAX_KEPT_BYTES: usize = 2 * MAX_BATCH_BYTES;

thread_local! {
    static KEPT: std::cell::RefCell<Vec<Job>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A job for `mes` MEs and `hosts` host threads, whose MEs' buffers start with room for
/// `start` bytes of records unless it is one this thread's last call kept ([`keep`]).
///
/// Why kept: each call allocated its two jobs' buffers (100 of ~14 KB on the demo's 50 MEs)
/// and freed them at its end, and glibc gave the freed top of the heap back to the kernel
/// (with the histograms' buffers kept, see `timing::Histogram::merge_counted_from`), so the
/// next call took ~40 page faults to get it again: perf, `simspeed repeat 1000 1`, ~13% of a
/// 1,000-frame call's time in the buffers' allocation and faults (34,000 page faults in 800
/// calls; 1,200 before the histograms' buffers were kept, 1,150 with kept jobs). Callgrind,
/// a warm 1,000-frame call: 1.77 -> 1.72 M host instructions. A kept job is as a new one:
/// cleared, its order, lists and claims reset when it is sealed.
fn job(mes: usize, hosts: usize, start: usize) -> Job {
    let kept = KEPT
        .try_with(|k| {
            let mut k = k.try_borrow_mut().ok()?;
            let i = k
                .iter()
                .position(|j| j.frames.len() == mes && j.lists.len() == hosts.max(1))?;
            Some(k.swap_remove(i))
        })
        .ok()
        .flatten();
    match kept {
        Some(mut j) => {
            j.first = 0;
            j.start = start;
            j
        }
        None => Job::new(mes, hosts, start),
    }
}

/// Keeps `job`, cleared, for this thread's next call ([`job`]), unless [`KEPT_JOBS`] are
/// kept already or its buffers hold more than [`MAX_KEPT_BYTES`].
fn keep(mut job: Job) {
    job.clear();
    if job.frames.iter().map(MeFrames::capacity).sum::<usize>() > MAX_KEPT_BYTES {
        return;
    }
    let _ = KEPT.try_with(|k| {
        if let Ok(mut k) = k.try_borrow_mut()
            && k.len() < KEPT_JOBS
        {
            k.push(job);
        }
    });
}

impl Job {
    /// A job for `mes` MEs and `hosts` host threads, each ME's buffer starting with room for
    /// `start` bytes of records.
    fn new(mes: usize, hosts: usize, start: usize) -> Job {
        let hosts = hosts.max(1);
        Job {
            frames: (0..mes).map(|_| MeFrames::with_capacity(start)).collect(),
            first: 0,
            order: Vec::with_capacity(mes),
            lists: vec![Vec::with_capacity(mes / hosts + 1); hosts],
            now: 0,
            next: (0..hosts)
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
            start,
        }
    }

    /// Adds input frame [`Job::first`] + `index` for ME `me`.
    #[inline]
    fn push(&mut self, me: usize, index: u32, time: u64, thread: u32, frame: &[u8]) {
        if let Some(f) = self.frames.get_mut(me) {
            f.push(index, time, thread, frame);
        }
    }

    /// Room in ME `me`'s buffer for a `len`-byte frame, if it has it without growing.
    #[inline(always)]
    fn room(&mut self, me: usize, len: usize) -> Option<Room<'_>> {
        self.frames.get_mut(me)?.room(len)
    }

    /// Fixes `now` and the order of the tasks (most frames first, then by ME number), each
    /// ME in the list of host thread `home_of(me)`.
    fn seal(&mut self, now: u64, home_of: impl Fn(usize) -> usize) {
        self.now = now;
        self.order.clear();
        self.order.extend(0..self.frames.len() as u32);
        let frames = &self.frames;
        self.order
            .sort_by_key(|&me| std::cmp::Reverse(frames.get(me as usize).map_or(0, |f| f.count)));
        for l in &mut self.lists {
            l.clear();
        }
        for &me in &self.order {
            if let Some(l) = self.lists.get_mut(home_of(me as usize)) {
                l.push(me);
            }
        }
        for n in &self.next {
            n.store(0, Ordering::Relaxed);
        }
    }

    /// Empties the job. The MEs' buffers keep their capacity (each grows to what its ME
    /// receives in a batch), unless together they hold more than [`MAX_HELD_BYTES`] (traffic
    /// moved between MEs): then each keeps only what it used in this batch, which is at most
    /// [`MAX_BATCH_BYTES`] and one frame in all, plus a [`frames::HEAD`] per frame.
    fn clear(&mut self) {
        let held: usize = self.frames.iter().map(MeFrames::capacity).sum();
        for f in &mut self.frames {
            f.clear(held > MAX_HELD_BYTES);
        }
    }

    /// ME `me`'s frames, in input order.
    #[inline]
    fn arrivals(&self, me: u32) -> Arrivals<'_> {
        match self.frames.get(me as usize) {
            Some(f) => Arrivals::new(f, self.first),
            None => Arrivals::empty(),
        }
    }

    /// ME `me`'s task: its frames, then up to `now`.
    fn run<E: PacketEngine>(&self, me: u32, sim: &mut MeSim<E>, out: &mut Outbox) {
        sim.arrive_all(self.arrivals(me), self.now, out);
        sim.discard_records();
    }

    /// Takes and runs tasks until none is left: host thread `host`'s own list first, then
    /// the others'.
    fn work<E: PacketEngine>(&self, host: usize, sims: &[Slot<E>], out: &mut Outbox) {
        let hosts = self.lists.len();
        for k in 0..hosts {
            let l = (host + k) % hosts;
            let (Some(list), Some(next)) = (self.lists.get(l), self.next.get(l)) else {
                continue;
            };
            loop {
                let t = next.fetch_add(1, Ordering::Relaxed);
                let Some(&me) = list.get(t) else {
                    break;
                };
                if let Some(slot) = sims.get(me as usize) {
                    // Never contended: an ME has one task per batch. Poisoned only if a task
                    // panicked, which its thread reports.
                    let mut sim = slot.sim.lock().unwrap_or_else(PoisonError::into_inner);
                    self.run(me, &mut sim, out);
                    slot.last.store(host, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The host thread that takes ME `me` (of `mes`) first in the first batch: MEs in
/// contiguous blocks, so that neighbouring MEs, whose states were allocated next to each
/// other, mostly run on the same host thread (with `me % hosts`, every pair of neighbours was
/// split). From then on an ME's home is the thread that ran it last ([`Slot`]).
///
/// Why homes follow the last runner: a task stolen by another thread moves the ME's state
/// (tens of kilobytes) to that core's cache, and back again if the ME returns home in the next
/// batch. Following the last runner, the split settles where the threads' shares match their
/// time, and an ME changes core only when the balance does. Counted on the demo with two host
/// threads: with fixed homes 3-7% of tasks ran away from home on a quiet machine and 40-48%
/// when another process competed for the cores (the woken worker started late, so the calling
/// thread took its MEs every batch); following the last runner, 3-4% on the quiet machine.
fn home(me: usize, mes: usize, hosts: usize) -> usize {
    (me * hosts / mes.max(1)).min(hosts.saturating_sub(1))
}

/// Longest a host thread spins on a channel before it blocks (see [`recv_spinning`]).
const SPIN: std::time::Duration = std::time::Duration::from_micros(100);

/// `rx.recv()`, polling for up to [`SPIN`] first.
///
/// Why: at every batch boundary each host thread waits for the other (the calling thread
/// for the workers' last tasks, the workers for the next batch), usually for a few tens of
/// microseconds. Blocked, a thread is woken only after the scheduler's wake-up latency
/// (tens of microseconds more on a VM), which lies on the critical path of every batch: two
/// host threads ran at 1.72x one on the project's VM, whose two vCPUs scale 2.0x on a
/// plain compute loop. Spinning is bounded, so an oversubscribed host loses at most
/// [`SPIN`] per wait.
fn recv_spinning<T>(rx: &Receiver<T>) -> Result<T, RecvError> {
    let start = std::time::Instant::now();
    loop {
        for _ in 0..64 {
            match rx.try_recv() {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Disconnected) => return Err(RecvError),
                Err(TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
        if start.elapsed() >= SPIN {
            return rx.recv();
        }
    }
}

/// What a worker sends back: each batch's results, and its latency histogram when its
/// input closes.
enum Done {
    Batch(Vec<FrameResult>),
    Panicked,
    Latency(Histogram),
}

/// A worker: takes tasks of every batch it is given, then reports the batch's results.
fn worker<E: PacketEngine>(
    host: usize,
    sims: &[Slot<E>],
    jobs: Receiver<Arc<Job>>,
    done: Sender<Done>,
) {
    let _span = tracing::debug_span!("sim.worker").entered();
    let mut out = Outbox::default();
    while let Ok(job) = recv_spinning(&jobs) {
        let ran = catch_unwind(AssertUnwindSafe(|| job.work(host, sims, &mut out)));
        // Released before reporting, so that the reader can reuse the batch's buffers.
        drop(job);
        let msg = match ran {
            Ok(()) => Done::Batch(std::mem::take(&mut out.results)),
            Err(_) => Done::Panicked,
        };
        if done.send(msg).is_err() {
            return;
        }
    }
    let _ = done.send(Done::Latency(out.latency));
}

/// The calling thread's view of the batches.
struct Reader<'a, E: PacketEngine, S> {
    sims: &'a [Slot<E>],
    jobs: &'a [Sender<Arc<Job>>],
    done: &'a Receiver<Done>,
    collect: &'a mut Collector,
    sink: &'a mut S,
    out: Outbox,
    /// The batch the workers are on.
    running: Option<Arc<Job>>,
    /// A finished batch's buffers, for the next one.
    spare: Option<Job>,
}

impl<E: PacketEngine, S: FnMut(u64, &[u8]) -> Result<(), SimError>> Reader<'_, E, S> {
    /// Helps with the running batch, waits until it is complete and releases its results.
    fn complete(&mut self) -> Result<(), SimError> {
        let Some(job) = self.running.take() else {
            return Ok(());
        };
        // A panicking engine is a bug; it ends the run with an error rather than a crash or
        // a wait for a thread that will never report.
        let helped = catch_unwind(AssertUnwindSafe(|| job.work(0, self.sims, &mut self.out)));
        let mut failed = helped
            .is_err()
            .then(|| SimError::Host("a simulation thread failed".into()));
        for _ in self.jobs {
            match recv_spinning(self.done) {
                Ok(Done::Batch(mut rs)) => self.collect.take(&mut rs, self.sink)?,
                // Sent only once a worker's input has closed, which has not happened yet.
                Ok(Done::Panicked | Done::Latency(_)) | Err(_) => {
                    failed = Some(SimError::Host("a simulation thread failed".into()));
                }
            }
        }
        self.collect.take(&mut self.out.results, self.sink)?;
        if let Some(e) = failed {
            return Err(e);
        }
        if let Ok(mut job) = Arc::try_unwrap(job) {
            job.clear();
            self.spare = Some(job);
        }
        Ok(())
    }

    /// Completes the running batch, then hands `filling` (sealed at `now`) to the workers;
    /// `filling` becomes an empty job whose first frame is input frame `next`.
    fn publish(&mut self, filling: &mut Job, now: u64, next: u64) -> Result<(), SimError> {
        self.complete()?;
        let mut empty = self
            .spare
            .take()
            .unwrap_or_else(|| job(filling.frames.len(), filling.lists.len(), filling.start));
        empty.first = next;
        let mut job = std::mem::replace(filling, empty);
        let (sims, hosts) = (self.sims, self.jobs.len() + 1);
        // All tasks of the previous batch are done (`complete`), and their runners' writes
        // reached this thread with their `Done` messages.
        job.seal(now, |me| {
            sims.get(me)
                .map_or(0, |s| s.last.load(Ordering::Relaxed).min(hosts - 1))
        });
        let job = Arc::new(job);
        for tx in self.jobs {
            tx.send(Arc::clone(&job))
                .map_err(|_| SimError::Host("a simulation thread has gone".into()))?;
        }
        self.running = Some(job);
        Ok(())
    }
}

/// A pool of at least `n` threads for the workers of a `simulate` call on this thread: the
/// calling thread's, kept from one call to the next (replaced by a larger one when a call
/// needs more), and dropped with the thread.
///
/// Why kept: each call with two or more host threads built a pool, starting and ending its
/// threads; on the project's 2-vCPU VM that cost ~0.3 ms of CPU time and more of wall time
/// per call (`simspeed repeat 1000 2` against `repeat 1000 1`, both ~0.4 ms a call of 1,000
/// frames on one host thread), a fixed cost per call of the two-thread bench. Per calling
/// thread: concurrent calls from different threads never wait for each other's workers.
/// Which pool thread runs a worker never affects a result (see the module docs).
fn workers(n: usize) -> Result<Arc<rayon::ThreadPool>, SimError> {
    thread_local! {
        static POOL: std::cell::RefCell<Option<Arc<rayon::ThreadPool>>> =
            const { std::cell::RefCell::new(None) };
    }
    POOL.with(|cell| {
        let mut kept = cell.borrow_mut();
        if let Some(pool) = kept.as_ref().filter(|p| p.current_num_threads() >= n) {
            return Ok(Arc::clone(pool));
        }
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| SimError::Host(e.to_string()))?,
        );
        *kept = Some(Arc::clone(&pool));
        Ok(pool)
    })
}

/// [`crate::run::simulate`] on `hosts` host threads (the calling one alone when 1).
pub(crate) fn simulate_batches<E, I, B, S>(
    frames: I,
    config: &SimConfig,
    hosts: usize,
    mes: MeSet<E>,
    clock: &mut ArrivalClock,
    collect: &mut Collector,
    sink: &mut S,
) -> Result<MesDone, SimError>
where
    E: PacketEngine,
    I: IntoIterator<Item = Result<B, SimError>>,
    B: AsRef<[u8]>,
    S: FnMut(u64, &[u8]) -> Result<(), SimError>,
{
    let MeSet { sims, initial } = mes;
    let mes = sims.len();
    let sims: Vec<Slot<E>> = sims
        .into_iter()
        .enumerate()
        .map(|(me, m)| {
            CachePadded::new(Shared {
                last: AtomicUsize::new(home(me, mes, hosts)),
                sim: Mutex::new(m),
            })
        })
        .collect();
    let (done_tx, done_rx) = unbounded::<Done>();
    let mut fed = Ok(());
    // Every host thread's latency histogram, summed at the end (order-free).
    let mut out = Outbox::default();
    let run = |jobs: &[Sender<Arc<Job>>]| {
        let mut reader = Reader {
            sims: &sims,
            jobs,
            done: &done_rx,
            collect: &mut *collect,
            sink: &mut *sink,
            out: Outbox::default(),
            running: None,
            spare: None,
        };
        fed = read(frames, config, clock, &mut reader).and_then(|()| reader.complete());
        if let Some(job) = reader.spare.take() {
            keep(job);
        }
        out.latency = std::mem::take(&mut reader.out.latency);
    };
    if hosts <= 1 {
        drop(done_tx);
        run(&[]);
    } else {
        let pool = workers(hosts - 1)?;
        pool.in_place_scope(|scope| {
            let mut jobs = Vec::with_capacity(hosts - 1);
            for host in 1..hosts {
                // One batch at a time: the next is published only when this one is complete.
                let (tx, rx) = bounded::<Arc<Job>>(1);
                jobs.push(tx);
                let done = done_tx.clone();
                let sims = &sims;
                scope.spawn(move |_| worker(host, sims, rx, done));
            }
            drop(done_tx);
            run(&jobs);
            // Dropping the senders ends the workers.
        });
    }
    fed?;
    for msg in done_rx.try_iter() {
        if let Done::Latency(h) = msg {
            out.latency.merge(&h);
            h.recycle();
        }
    }
    let sims = sims
        .into_iter()
        .map(|m| {
            CachePadded::into_inner(m)
                .sim
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
        })
        .collect();
    let done = MeSet { sims, initial }.finish(&mut out);
    collect.take(&mut out.results, sink)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread's worker pool is kept from call to call, replaced only by a larger one when
    /// a call needs more threads than it has; another thread has its own.
    #[test]
    fn worker_pools_are_kept_per_thread_and_grow() {
        let a = workers(1).expect("pool");
        assert!(Arc::ptr_eq(&a, &workers(1).expect("pool")));
        let b = workers(3).expect("pool");
        assert!(b.current_num_threads() >= 3);
        assert!(Arc::ptr_eq(&b, &workers(2).expect("pool")));
        let other = std::thread::spawn(|| workers(2).expect("pool"))
            .join()
            .expect("thread");
        assert!(!Arc::ptr_eq(&b, &other));
    }

    /// A call on a pool kept from a call with more host threads gives the same results.
    #[test]
    fn results_do_not_depend_on_a_kept_pool() {
        use crate::nfp_engine::NfpProgram;
        use crate::preset::NicPreset;
        use crate::traffic::{Generator, TrafficSpec};
        let prog = vm_core::demo::udp_filter();
        let nfp =
            NfpProgram::compile(&prog, &nfp_backend::NicLimits::default()).expect("offloadable");
        let spec = TrafficSpec::parse("packets=3000,flows=300,size=64-600,dport=7770-7790,seed=7")
            .expect("spec");
        let run = |hosts: usize| {
            let config = SimConfig {
                host_threads: hosts,
                ..SimConfig::new(NicPreset::agilio_cx())
            };
            let mut out =
                crate::run::simulate(Generator::new(&spec), &config, &nfp, None, |_, _| Ok(()))
                    .expect("runs");
            (out.report.host_threads, out.report.host_packets_per_sec) = (0, 0.0);
            let maps = out
                .maps
                .map(|m| m.iter().map(|m| m.entries()).collect::<Vec<_>>());
            (out.report, maps, out.latency_histogram)
        };
        let one = run(1);
        for hosts in [4, 2, 3, 2] {
            assert!(run(hosts) == one, "{hosts} host threads differ");
        }
    }

    #[test]
    fn a_job_groups_frames_by_me_and_orders_tasks_longest_first() {
        let mut job = Job::new(4, 2, 0);
        job.first = 100;
        let frames: [(usize, &[u8]); 5] =
            [(2, b"aa"), (0, b"bbb"), (2, b"c"), (3, b"dddd"), (2, b"ee")];
        for (i, (me, f)) in frames.iter().enumerate() {
            job.push(*me, i as u32, 1000 + 10 * i as u64, i as u32, f);
        }
        // An ME number past the NIC's is ignored.
        job.push(9, 5, 1050, 0, b"x");
        job.seal(77, |me| home(me, 4, 2));
        assert_eq!(job.now, 77);
        // ME 2 has three frames, MEs 0 and 3 one each (ties by ME number), ME 1 none: it
        // still gets its task, to be brought up to `now`.
        assert_eq!(job.order, vec![2, 0, 3, 1]);
        // Home lists by halves (two host threads: MEs 0-1, 2-3), each in that order.
        assert_eq!(job.lists, vec![vec![0, 1], vec![2, 3]]);
        let got = |job: &Job, me: u32| -> Vec<(u64, u64, u32, Vec<u8>)> {
            job.arrivals(me)
                .map(|a| (a.index, a.time, a.thread, a.frame.to_vec()))
                .collect()
        };
        assert_eq!(
            got(&job, 2),
            [
                (100, 1000, 0, b"aa".to_vec()),
                (102, 1020, 2, b"c".to_vec()),
                (104, 1040, 4, b"ee".to_vec())
            ]
        );
        assert_eq!(got(&job, 3), [(103, 1030, 3, b"dddd".to_vec())]);
        assert!(got(&job, 1).is_empty() && got(&job, 9).is_empty());
        job.clear();
        assert!(job.frames.iter().all(|f| f.len() == 0 && f.count == 0));
        job.seal(5, |me| home(me, 4, 2));
        assert!(job.next.iter().all(|n| n.load(Ordering::Relaxed) == 0));
    }

    /// Frames of every length come back as they went in, whatever the copy takes
    /// ([`copy_small`]'s moves around 16, 32 and 64 bytes, `memcpy` past them).
    #[test]
    fn frames_of_any_length_round_trip() {
        let mut job = Job::new(2, 1, 0);
        job.first = 7;
        let frames: Vec<Vec<u8>> = (0..=140)
            .map(|n: usize| (0..n).map(|i| (i * 7 + n) as u8).collect())
            .collect();
        for (i, f) in frames.iter().enumerate() {
            job.push(i % 2, i as u32, i as u64 * 3, (i % 5) as u32, f);
        }
        for me in 0..2u32 {
            let got: Vec<_> = job.arrivals(me).collect();
            let want: Vec<_> = (0..frames.len()).filter(|i| i % 2 == me as usize).collect();
            assert_eq!(got.len(), want.len());
            for (a, &i) in got.iter().zip(&want) {
                assert_eq!(
                    (a.index, a.time, a.thread, a.frame),
                    (
                        7 + i as u64,
                        i as u64 * 3,
                        (i % 5) as u32,
                        frames[i].as_slice()
                    )
                );
            }
        }
    }

    /// A job kept by one call is the next call's, cleared, only for the same MEs and host
    /// threads; at most [`KEPT_JOBS`] are kept, none whose buffers hold too much.
    #[test]
    fn kept_jobs_come_back_empty_for_the_same_shape() {
        let mut a = job(4, 2, 100);
        a.first = 9;
        a.push(1, 0, 5, 0, b"frame");
        let at = a.frames[1].capacity();
        keep(a);
        // Another shape: a new job; the kept one stays.
        let b = job(4, 3, 100);
        assert_eq!(
            (b.frames.len(), b.lists.len(), b.frames[1].capacity()),
            (4, 3, 100)
        );
        let c = job(4, 2, 50);
        assert_eq!((c.first, c.start, c.frames[1].capacity()), (0, 50, at));
        assert!(c.frames.iter().all(|f| f.len() == 0 && f.count == 0));
        assert_eq!(KEPT.with(|k| k.borrow().len()), 0);
        for j in [b, c, job(4, 2, 0)] {
            keep(j);
        }
        assert_eq!(KEPT.with(|k| k.borrow().len()), KEPT_JOBS);
        KEPT.with(|k| k.borrow_mut().clear());
        let mut big = job(2, 1, 0);
        big.push(0, 0, 0, 0, &vec![0u8; MAX_KEPT_BYTES + 1]);
        keep(big);
        assert_eq!(KEPT.with(|k| k.borrow().len()), 0);
    }

    /// Buffers keep their capacity from batch to batch, but no more than
    /// [`MAX_HELD_BYTES`] in all: past it, each keeps what its last batch used.
    #[test]
    fn a_job_bounds_the_memory_it_keeps() {
        let mut job = Job::new(8, 1, 0);
        let big = vec![7u8; MAX_BATCH_BYTES];
        job.push(1, 0, 0, 0, &big);
        job.clear();
        let held = |job: &Job| job.frames.iter().map(MeFrames::capacity).sum::<usize>();
        assert!(held(&job) >= MAX_BATCH_BYTES && held(&job) <= MAX_HELD_BYTES);
        // Traffic moves to other MEs, batch after batch: what is kept stays bounded.
        for me in 2..8 {
            job.push(me, 0, 0, 0, &big);
            job.push(0, 1, 0, 0, b"small");
            job.clear();
            assert!(held(&job) <= MAX_HELD_BYTES, "{}", held(&job));
        }
    }
}
