//! The fast path's run loop, as threaded handlers: runs a [`FastProgram`] on a [`Thread`],
//! falling back to the reference `step` for what was not pre-decoded (see `fast` for the
//! decoded form). It must agree with the reference loop exactly: registers, memory, condition
//! codes, instruction counts, cycles, events and errors (`tests_fast` holds it to that).
//!
//! # Why threaded handlers
//!
//! A `loop { match op { .. } }` has one indirect jump for every op; on the project's machines
//! (AMD EPYC under KVM) it is mispredicted almost every time (measured in vm-core: ~6.8 ns per
//! instruction against ~1 ns threaded). Here every [`Hop`] carries a pointer to a handler
//! specialised for its op kind (and, by const generics, its ALU operation or branch
//! condition); each handler ends by calling the next op's handler in tail position, which
//! LLVM turns into a `jmp`, so each handler's jump learns its own successor.
//!
//! # Paying by runs, bounding the chain
//!
//! Instructions are paid per run (see `fast`): ops that continue elsewhere ([`goto`]) pay the
//! whole run they enter with one add and one compare; the others continue with [`next`] and
//! pay nothing. Every chain of handlers pays at most [`CHUNK`] instructions beyond its entry
//! run (and runs are at most [`MAX_RUN`] long), then returns to the driver ([`Out::Yield`]),
//! so a build without tail calls holds at most about `CHUNK + MAX_RUN` handler frames.
//!
//! Everything rare (faults, events, the slow fall-back, budget exhaustion) leaves the
//! handlers through `#[cold]` functions that record where the chain stopped in [`Cx`].

use super::fast::{FastProgram, Hop};
use super::thread::Thread;
use super::through::{RunThrough, Segment};
use super::{Event, ExecErrorKind, InsnProfile, MemState, SwapTarget};
use std::mem::MaybeUninit;

mod foreign;
mod fused;
mod offsets;

pub use fused::FusedBudget;
pub(super) use offsets::*;

/// Most instructions a handler chain pays for beyond its first run before it returns to the
/// driver (bounds the Rust stack if a build does not turn tail calls into jumps).
pub(super) const CHUNK: u64 = 1024;

/// Longest run `fast` builds (straight-line code longer than this is cut by a slow op).
pub(super) const MAX_RUN: u16 = 256;

/// Why a handler chain returned; details are in [`Cx`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Out {
    /// The op at `Cx::ip` must run on the reference path.
    Slow,
    /// The run at `Cx::ip` is beyond the chain's limit: a new chain pays it if the budget
    /// allows (else the op is slow; the driver checks).
    Yield,
    /// The thread swaps out (`Cx::wait`, `Cx::target`), to resume at `Cx::ip`.
    Swap,
    /// The program exited at `Cx::ip`.
    Done,
    /// `Cx::fault` happened at `Cx::ip`.
    Fault,
}

/// A handler: executes the op at `ip` (`n` = the thread's instruction count including the
/// runs paid so far), then continues with the next op's handler.
///
/// `extern "C-unwind"`: a fixed calling convention (System V on the x86-64 Unix hosts), so
/// that `jit`'s native blocks can be handlers themselves (entered and left by jumps, with no
/// Rust frame around them), and one whose calls need no abort-on-unwind guard, so that calls
/// between handlers stay tail calls. Why not plain `"C"`: it costs the same (callgrind,
/// `simspeed pre`: 2,085 against 2,081 host instructions per frame), but a panic inside a
/// handler would abort the process, where with `"C-unwind"` it still unwinds to the
/// simulator, which reports a failed run (`nic_sim::share`). Blocks never appear as a return
/// address (they are only jumped through), so unwinding never meets their code.
pub(super) type Handler =
    for<'t, 'c, 'm> extern "C-unwind" fn(&'t mut Thread, &'c mut Cx<'m>, *const Hop, u64) -> Out;

/// What handlers reach besides the thread: memories, timing, the profile, the chain's limit,
/// and where and why the chain stopped.
pub(super) struct Cx<'m> {
    pub(super) mem: MemState<'m>,
    /// Set by the drivers of profiled chains (`P`), the only ones that read it: the fused
    /// driver (`fused`, unprofiled) leaves it unset, as `ip`, `n`, `wait`, `target` and
    /// `fault` (see there).
    profile: MaybeUninit<&'m mut [InsnProfile]>,
    /// First op of the program (branch targets are indices from it).
    base: *const Hop,
    /// Highest instruction count the chain may pay up to (budget and chunk).
    limit: u64,
    /// Cycles beyond one per instruction (taken branches, firmware issue, exit).
    pub(super) extra: u64,
    pub(super) penalty: u64,
    /// Where the chain stopped and the count there: set by every exit of a chain (the
    /// functions of this module that make an [`Out`], the only ones that do) but [`done`]
    /// (the thread holds them then), read only after it ([`Cx::stopped`]), so a driver
    /// need not set them.
    ip: MaybeUninit<*const Hop>,
    n: MaybeUninit<u64>,
    /// The latency and target of a swap (scalars, not an `Event`: handlers store them
    /// directly, where copying a whole event stalled on store forwarding). `wait` is set
    /// by [`swap`] and by [`swap_or_pass`] before [`pass`], and read only after them.
    wait: MaybeUninit<u64>,
    /// Set by [`swap`], the only exit with [`Out::Swap`], read only after it.
    target: MaybeUninit<SwapTarget>,
    /// Set by [`fault`], the only exit with [`Out::Fault`], read only after it.
    fault: MaybeUninit<ExecErrorKind>,
    /// A swap of `w` cycles at count `n` is passed through iff `n + extra + w < pass_limit`
    /// (`RunThrough::chain_limit`); each pass lowers it by `w`, so the waits passed are what
    /// it lost (`fast_loop` adds them to `RunThrough::wait` at the end).
    pass_limit: u64,
    /// `RunThrough::mark` less the thread's busy cycles before the count `n`, less `extra`,
    /// that is, in the units of `n` (wrapping): a pass at `n` records `n - mark_n` busy
    /// cycles and moves it to `n`; whatever adds to `extra` subtracts the same from it
    /// ([`Cx::add_extra`]).
    ///
    /// Why in the units of `n` rather than of `n + extra`: a pass then needs neither
    /// `extra` nor the sum (the native blocks' pass, `jit::x64_pass`, 2 host instructions
    /// fewer), for one more subtraction where `extra` grows (taken branches, helpers'
    /// issue cycles, the exit): callgrind, `simspeed pre`, 5 host instructions per frame
    /// fewer.
    pub(super) mark_n: u64,
    /// Where the next passed swap's [`Segment`] is written, and the end of the room there:
    /// the spare capacity of `segs` when recording (its length is brought up to `seg_at`
    /// when the chain ends), else a scratch buffer of [`SCRATCH`] nobody reads.
    ///
    /// Why a cursor and not `Vec::push`-like code on `segs`: a pass then checks one pointer
    /// against another and stores, where the `Option`, length and capacity took ten more
    /// host instructions and two spilled registers per pass (a pass went from 32 to 22
    /// host instructions). Null (no room) when swaps are never passed (stepping: `T` off,
    /// where `pass_limit` is 0 and `pass` is never reached).
    seg_at: *mut Segment,
    seg_end: *mut Segment,
    /// Where passed swaps are recorded (`run_to_end_fast` only; null otherwise): from a
    /// `&mut` the driver gives up for the chain's lifetime. A pointer, not an `Option` of
    /// the `&mut`: the fused driver, which always records, then syncs the length without
    /// testing it (2 host instructions per packet).
    segs: *mut Vec<Segment>,
    /// A window of map value memory that an `emem[atomic_add]` may add to directly: the
    /// EMEM addresses `va_base ..= va_base + va_last` (plus the add's width, at most 8
    /// bytes: `va_last` is the value memory's length less 8) are the bytes at `va_ptr`,
    /// as `memory::emem_value_region` would find them. Set by `jit::x64_call`'s lookup
    /// helper to the writable map it looked up (vm-core's value memory never moves nor
    /// changes length, and the `Cx` holds the maps for its lifetime); at the start of a
    /// chain empty (`va_base` `u64::MAX`, `va_last` 0: no address is in it), or, on the
    /// fused start with its lookups prepared, the window of the map they name
    /// (`FusedBudget::with_lookups`: any window gives the same adds, it depends on no
    /// lookup); read only by `jit`'s blocks. `va_ptr` is set with the window
    /// (uninitialised, or null, while it is empty).
    pub(super) va_base: u64,
    pub(super) va_last: u64,
    pub(super) va_ptr: MaybeUninit<*mut u8>,
    /// The array map whose lookups `jit`'s blocks make inline (`jit::x64_call::
    /// lookup_inline`): its `max_entries` and value stride (`fw::array_desc`), for the map
    /// the program's inline lookups name (`jit::lookup_fd`). Set by the fused start from
    /// its budget's prepared lookups (`FusedBudget::with_lookups`); `lk_max` 0 (no key is
    /// below it) without them and on every other driver: every lookup then calls the
    /// helper.
    pub(super) lk_max: u64,
    pub(super) lk_stride: u64,
}

/// Segments of the scratch buffer passes write to when not recording (see `Cx::seg_at`):
/// a full buffer restarts at its beginning, through the cold [`grow`].
const SCRATCH: usize = 8;

/// Continues with the op at `ip` (already paid for, as part of the current run).
///
/// Invariant that makes the dereferences of `ip` in handlers sound: `ip` always points into
/// the program's `hops` (which has one op per address plus a final slow op). It holds at
/// entry (the driver starts at an address < len with a non-zero run), an op of width `w` at
/// `pc` continues at `pc + w <= len` (its constituents exist), branch targets were checked
/// `< len` by the decoder, and the final op is slow (it does not continue).
#[inline(always)]
pub(super) fn next<const P: bool>(t: &mut Thread, cx: &mut Cx<'_>, ip: *const Hop, n: u64) -> Out {
    // SAFETY: `ip` points into the hops (invariant above).
    let h = unsafe { if P { (*ip).hp } else { (*ip).h } };
    h(t, cx, ip, n)
}

/// Continues at address `to`, paying its run `run` (0: the op there must run slow).
#[inline(always)]
pub(super) fn goto<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    to: u16,
    run: u16,
    n: u64,
) -> Out {
    let ip = cx.base.wrapping_add(usize::from(to));
    pay::<P>(t, cx, ip, run, n)
}

/// Pays `run` and continues at `ip`, or leaves the chain when the run is 0 or beyond the
/// limit. One compare decides both (`run - 1` wraps for 0; `limit >= n` always holds).
#[inline(always)]
pub(super) fn pay<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    run: u16,
    n: u64,
) -> Out {
    let r = u64::from(run);
    if r.wrapping_sub(1) < cx.limit.wrapping_sub(n) {
        next::<P>(t, cx, ip, n + r)
    } else {
        unpaid(cx, ip, run, n)
    }
}

/// [`unpaid`] as a handler, for the run of the hop at `ip` (`jit`'s blocks jump here when
/// they cannot pay the run they continue with).
#[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(dead_code))]
pub(super) extern "C-unwind" fn unpaid_at(
    _: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    // SAFETY: `ip` points into the hops (invariant on `next`).
    let run = unsafe { (*ip).run };
    unpaid(cx, ip, run, n)
}

/// A run the chain cannot pay: slow, or beyond the limit (the driver tells the chunk used
/// up, which it goes on from, from the budget exhausted, which is slow).
#[cold]
#[inline(never)]
extern "C-unwind" fn unpaid(cx: &mut Cx<'_>, ip: *const Hop, run: u16, n: u64) -> Out {
    cx.stop(ip, n);
    if run != 0 { Out::Yield } else { Out::Slow }
}

/// Leaves the chain for the reference path at `ip` (`n` excludes the op at `ip`).
#[cold]
#[inline(never)]
pub(super) extern "C-unwind" fn slow(cx: &mut Cx<'_>, ip: *const Hop, n: u64) -> Out {
    cx.stop(ip, n);
    Out::Slow
}

/// Leaves the chain swapping out for `wait` cycles on `target`, to resume at `ip`.
#[inline(always)]
pub(super) fn swap(cx: &mut Cx<'_>, ip: *const Hop, n: u64, wait: u64, target: SwapTarget) -> Out {
    cx.stop(ip, n);
    cx.wait.write(wait);
    cx.target.write(target);
    Out::Swap
}

/// At a swap whose command takes `wait` cycles: goes on at `ip` (the op after the swap) in
/// the same chain when the model would resume the thread before anything else can happen on
/// its ME (see `through`), or leaves the chain swapping out.
///
/// Passing is [`pass`], out of line and entered by a tail call (`wait` in `Cx::wait`): the
/// memory handlers that inline this then make no call that returns, so they need no frame
/// of their own.
#[inline(always)]
pub(super) fn swap_or_pass<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
    wait: u64,
    target: SwapTarget,
) -> Out {
    if n + cx.extra + wait < cx.pass_limit {
        cx.wait.write(wait);
        return pass::<P>(t, cx, ip, n);
    }
    swap(cx, ip, n, wait, target)
}

/// Passes a swap of `cx.wait` cycles (see [`swap_or_pass`]): records its segment, moves the
/// marks, and pays the run at `ip`.
#[inline(never)]
extern "C-unwind" fn pass<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    // SAFETY: set by `swap_or_pass`, the only caller but `grow` (which it called).
    let wait = unsafe { cx.wait.assume_init() };
    let busy = n.wrapping_sub(cx.mark_n);
    let p = cx.seg_at;
    if p == cx.seg_end {
        return grow::<P>(t, cx, ip, n);
    }
    // SAFETY: `seg_at < seg_end` (checked above), both in one allocation: the slot is
    // allocated room (spare capacity of the recording `Vec`, or the scratch buffer).
    unsafe {
        p.write(Segment { busy, wait });
        cx.seg_at = p.add(1);
    }
    cx.mark_n = n;
    cx.pass_limit -= wait;
    // SAFETY: `ip` points into the hops (invariant on `next`).
    let run = unsafe { (*ip).run };
    pay::<P>(t, cx, ip, run, n)
}

/// [`pass`] when the room for segments is full: grows the recording `Vec` (or restarts the
/// scratch buffer), then passes.
#[cold]
#[inline(never)]
extern "C-unwind" fn grow<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    // SAFETY: `cx.segs` is null or the list given to the driver (see `Cx::segs`).
    match unsafe { cx.segs.as_mut() } {
        Some(segs) => {
            sync_len(segs, cx.seg_at);
            segs.reserve(1);
            (cx.seg_at, cx.seg_end) = spare(segs);
        }
        // SAFETY: the scratch buffer is the `SCRATCH` segments before its end.
        None => cx.seg_at = unsafe { cx.seg_end.sub(SCRATCH) },
    }
    pass::<P>(t, cx, ip, n)
}

/// The spare capacity of `segs`, as `Cx::seg_at` and `Cx::seg_end`.
fn spare(segs: &mut Vec<Segment>) -> (*mut Segment, *mut Segment) {
    let (len, cap, base) = (segs.len(), segs.capacity(), segs.as_mut_ptr());
    // SAFETY: `len <= cap`: both are within (or one past) the allocation.
    unsafe { (base.add(len), base.add(cap)) }
}

/// Sets the length of `segs` to cover the segments the chain wrote, up to `at`.
fn sync_len(segs: &mut Vec<Segment>, at: *mut Segment) {
    // SAFETY: `at` was derived from `segs`'s buffer (`spare`) and only moved forward within
    // its capacity by `pass`, which initialised every segment it moved over.
    unsafe {
        let len = at.offset_from(segs.as_ptr()) as usize;
        segs.set_len(len);
    }
}

/// Leaves the chain at the program's exit, whose op (`fast_branch::exit`) stored the count
/// and pc in the thread, where drivers read them: no stop in the [`Cx`] (`Cx::ip`; both
/// cost the fused start 2 host instructions per packet, callgrind `simspeed pre`).
#[inline(always)]
pub(super) fn done() -> Out {
    Out::Done
}

/// A fault of the op at `ip`: gives back the part of its run not executed.
#[cold]
#[inline(never)]
pub(super) fn fault(cx: &mut Cx<'_>, ip: *const Hop, n: u64, k: ExecErrorKind) -> Out {
    // SAFETY: `ip` points into the hops (invariant on `next`).
    let run = unsafe { (*ip).run };
    cx.stop(ip, n - u64::from(run.saturating_sub(1)));
    cx.fault.write(k);
    Out::Fault
}

impl Cx<'_> {
    /// Adds `d` busy cycles beyond the count (`extra`), keeping the mark (see
    /// `Cx::mark_n`).
    #[inline(always)]
    pub(super) fn add_extra(&mut self, d: u64) {
        self.extra += d;
        self.mark_n = self.mark_n.wrapping_sub(d);
    }

    /// Records where the chain stops (every exit does, before it returns its [`Out`]).
    #[inline(always)]
    fn stop(&mut self, ip: *const Hop, n: u64) {
        self.ip.write(ip);
        self.n.write(n);
    }

    /// Where the chain stopped and the count there (after it returned anything but
    /// [`Out::Done`], see [`done`]).
    #[inline(always)]
    fn stopped(&self) -> (*const Hop, u64) {
        // SAFETY: every exit but `done` sets both before it returns (`Cx::ip`); no caller
        // reads them after `Done`.
        unsafe { (self.ip.assume_init(), self.n.assume_init()) }
    }

    /// [`Cx::stopped`] as an address.
    #[inline(always)]
    fn stopped_at(&self) -> (usize, u64) {
        let (ip, n) = self.stopped();
        (self.pc(ip), n)
    }

    /// The address of `ip`.
    #[inline(always)]
    pub(super) fn pc(&self, ip: *const Hop) -> usize {
        (ip as usize).wrapping_sub(self.base as usize) / std::mem::size_of::<Hop>()
    }

    /// Adds one execution and `cycles` to the profile of address `pc(ip) + k` (profiled
    /// handlers only).
    #[inline(always)]
    pub(super) fn prof<const P: bool>(&mut self, ip: *const Hop, k: usize, cycles: u64) {
        if P {
            let at = self.pc(ip) + k;
            // SAFETY: profiled chains run on a `Cx` with the profile set (`fast_loop_at`).
            let profile = unsafe { self.profile.assume_init_mut() };
            if let Some(p) = profile.get_mut(at) {
                p.executions += 1;
                p.cycles += cycles;
            }
        }
    }
}

/// Why the fast loop stopped.
pub(super) enum Stop {
    /// The next instruction must run on the reference path.
    Slow,
    /// An event for the caller.
    Event(Event),
    /// A fault at `pc`.
    Fault(u32, ExecErrorKind),
}

impl Thread {
    /// Runs fast ops from `self.pc` while runs can be paid, in chains of at most [`CHUNK`]
    /// instructions.
    #[inline(always)]
    pub(super) fn fast_loop<const P: bool, const T: bool>(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        budget: u64,
        profile: &mut [InsnProfile],
        through: &mut RunThrough,
        segs: Option<&mut Vec<Segment>>,
    ) -> Stop {
        let at = (self.pc, self.insns, self.busy);
        self.fast_loop_at::<P, T>(prog, mem, budget, profile, through, segs, at)
    }

    /// [`Thread::fast_loop`] given the thread's `(pc, insns, busy)` (what it holds; a
    /// caller that knows them at compile time may pass them, where the compiler would
    /// reload them from the thread). The fused start-and-run has a driver of its own
    /// (`fused`).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn fast_loop_at<const P: bool, const T: bool>(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        budget: u64,
        profile: &mut [InsnProfile],
        through: &mut RunThrough,
        segs: Option<&mut Vec<Segment>>,
        (pc0, n0, busy0): (u32, u64, u64),
    ) -> Stop {
        if !P && !prog.native_for(mem.lat) {
            let at = (pc0, n0, busy0);
            return self.fast_loop_foreign::<T>(prog, mem, budget, through, segs, at);
        }
        let first = prog.hops.get(pc0 as usize).map_or(0, |h| h.run);
        if first == 0 || n0 + u64::from(first) > budget {
            return Stop::Slow;
        }
        let base = prog.hops.as_ptr();
        let mut scratch = [std::mem::MaybeUninit::<Segment>::uninit(); SCRATCH];
        let segs = segs.map_or(std::ptr::null_mut(), |v| v as *mut Vec<Segment>);
        // SAFETY: null, or from the `&mut` just given up.
        let (seg_at, seg_end) = match unsafe { segs.as_mut() } {
            Some(v) => spare(v),
            // Without `T` nothing passes: no room needed.
            None if !T => (std::ptr::null_mut(), std::ptr::null_mut()),
            None => {
                let s = scratch.as_mut_ptr().cast::<Segment>();
                // SAFETY: one past the end of `scratch`.
                (s, unsafe { s.add(SCRATCH) })
            }
        };
        let mut cx = Cx {
            mem: MemState {
                lmem: &mut *mem.lmem,
                shared: &mut *mem.shared,
                maps: &mut *mem.maps,
                lat: mem.lat,
            },
            profile: MaybeUninit::new(profile),
            base,
            limit: 0,
            extra: 0,
            penalty: u64::from(mem.lat.branch_taken_penalty),
            ip: MaybeUninit::uninit(),
            n: MaybeUninit::uninit(),
            wait: MaybeUninit::uninit(),
            target: MaybeUninit::uninit(),
            fault: MaybeUninit::uninit(),
            pass_limit: if T { through.chain_limit(busy0, n0) } else { 0 },
            // The busy cycles before count `n` are `busy0 + (n - n0) + extra` (`extra`
            // 0 here).
            mark_n: if T {
                through.mark.wrapping_sub(busy0.wrapping_sub(n0))
            } else {
                0
            },
            seg_at,
            seg_end,
            segs,
            va_base: u64::MAX,
            va_last: 0,
            va_ptr: MaybeUninit::uninit(),
            // No inline lookups (see `Cx::lk_max`): this driver does not know the map.
            lk_max: 0,
            lk_stride: 0,
        };
        let limit0 = cx.pass_limit;
        let (mut pc, mut n, mut run) = (pc0 as usize, n0, first);
        let out = loop {
            let start = n + u64::from(run);
            cx.limit = budget.min(start + CHUNK);
            let out = entry::<P>(self, &mut cx, base.wrapping_add(pc), start);
            if out != Out::Yield {
                break out;
            }
            (pc, n) = cx.stopped_at();
            run = prog.hops.get(pc).map_or(0, |h| h.run);
            if n + u64::from(run) > budget {
                // Out of budget: slow.
                break out;
            }
        };
        // After `Done`, the exit stored them in the thread (see `done`).
        (pc, n) = match out {
            Out::Done => (self.pc as usize, self.insns),
            _ => cx.stopped_at(),
        };
        // SAFETY: `cx.segs` is null or the list given (see `Cx::segs`).
        if let Some(v) = unsafe { cx.segs.as_mut() } {
            sync_len(v, cx.seg_at);
        }
        if T {
            through.mark = (cx.mark_n.wrapping_add(cx.extra)).wrapping_add(busy0.wrapping_sub(n0));
            through.wait += limit0 - cx.pass_limit;
        }
        self.insns = n;
        self.pc = pc as u32;
        self.busy = busy0 + (n - n0) + cx.extra;
        match out {
            Out::Done => {
                self.running = false;
                Stop::Event(Event::Done {
                    retval: self.reg(0),
                    busy_cycles: std::mem::take(&mut self.busy),
                    insns: self.insns,
                })
            }
            Out::Swap => Stop::Event(Event::Swap {
                busy_cycles: std::mem::take(&mut self.busy),
                // SAFETY: set by `swap`, which the chain left by.
                wait_cycles: unsafe { cx.wait.assume_init() },
                // SAFETY: set by `swap`, which the chain left by.
                target: unsafe { cx.target.assume_init() },
            }),
            Out::Fault => {
                self.running = false;
                // SAFETY: set by `fault`, which the chain left by.
                let k = unsafe { cx.fault.assume_init_read() };
                Stop::Fault(pc as u32, k)
            }
            Out::Slow | Out::Yield => Stop::Slow,
        }
    }
}

/// Starts a chain at `ip` (its run paid; `ip` is an address < len with a non-zero run).
#[inline(never)]
extern "C-unwind" fn entry<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    next::<P>(t, cx, ip, n)
}

impl Thread {
    /// Runs until the thread swaps out or exits, like [`Thread::run_until_event`], on the
    /// pre-decoded `prog` (which must be `FastProgram::new` of the same code the reference
    /// would run). Same results, events, counts and errors; much faster.
    ///
    /// `#[inline]` so a caller in another crate (nic-sim's engine) maps the event straight
    /// to its own type instead of through a returned `Result` in memory (it runs per resume).
    #[inline]
    pub fn run_until_event_fast(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        budget: u64,
    ) -> Result<Event, super::ExecError> {
        self.fast_driver::<false, false>(
            prog,
            mem,
            budget,
            &mut [],
            &mut RunThrough::default(),
            None,
        )
    }

    /// [`Thread::run_until_event_fast`] with a profile, as
    /// [`Thread::run_until_event_profiled`].
    pub fn run_until_event_fast_profiled(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        budget: u64,
        profile: &mut [InsnProfile],
    ) -> Result<Event, super::ExecError> {
        self.fast_driver::<true, false>(
            prog,
            mem,
            budget,
            profile,
            &mut RunThrough::default(),
            None,
        )
    }

    /// [`Thread::run_until_event_fast`], passing through every swap after which the thread
    /// would be ready again before `through`'s horizon (see [`RunThrough`]): the event is the
    /// one stepping would return last, `through` holds the passed segments' cycles. With a
    /// profile when `profile` is `Some`.
    #[inline]
    pub fn run_through_fast(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        budget: u64,
        profile: Option<&mut [InsnProfile]>,
        through: &mut RunThrough,
    ) -> Result<Event, super::ExecError> {
        match profile {
            None => self.fast_driver::<false, true>(prog, mem, budget, &mut [], through, None),
            Some(p) => self.fast_driver::<true, true>(prog, mem, budget, p, through, None),
        }
    }

    /// Runs the packet to its end (or a fault) in one call, passing through every swap and
    /// appending each passed swap's [`Segment`] to `segs`: the events stepping would have
    /// returned, but for the last, which is returned (its busy cycles those after the last
    /// segment). Same thread state, memory and profile as stepping.
    ///
    /// For a caller that knows no other thread can observe this one's effects in between
    /// (`commute::threads_commute`): it then replays the segments in model time instead of
    /// resuming the thread at each of them.
    pub fn run_to_end_fast(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        budget: u64,
        profile: Option<&mut [InsnProfile]>,
        segs: &mut Vec<Segment>,
    ) -> Result<Event, super::ExecError> {
        // With no horizon, every swap passes (`RunThrough::pass` counts in u128).
        let mut through = RunThrough::new(0, u64::MAX);
        let t = &mut through;
        match profile {
            None => self.fast_driver::<false, true>(prog, mem, budget, &mut [], t, Some(segs)),
            Some(p) => self.fast_driver::<true, true>(prog, mem, budget, p, t, Some(segs)),
        }
    }

    /// [`Thread::start`] with `packet`, then [`Thread::run_to_end_fast`], in one call: the
    /// same memories, events and errors as the two calls (a packet that cannot be loaded
    /// gives `start`'s error and runs nothing), and the same thread state but for registers
    /// and other state the program never reads before writing them, which the start leaves
    /// alone (they may keep values of earlier packets where this one does not write them;
    /// see `live`).
    ///
    /// Why one call: nic-sim starts and runs a packet to its end back to back when its
    /// threads commute; together, the run starts from a state known at compile time (pc 0,
    /// counts 0, no defer slot, no passed swap yet), and the call and set-up are paid once
    /// (see `fused`).
    #[inline]
    pub fn run_packet_to_end_fast(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        packet: &[u8],
        budget: u64,
        profile: Option<&mut [InsnProfile]>,
        segs: &mut Vec<Segment>,
    ) -> Result<Event, super::ExecError> {
        let mem = MemState {
            lmem: &mut *mem.lmem,
            shared: &mut *mem.shared,
            maps: &mut *mem.maps,
            lat: mem.lat,
        };
        // SAFETY: this run, the only one given the budget, is given these maps.
        let budget = unsafe { prog.fused_budget(budget).with_lookups(mem.maps) };
        self.run_packet_to_end_fast_map(prog, mem, packet, budget, profile, segs, |r| r)
    }

    /// Alternates fast chains and reference steps (for what the chains leave to them).
    /// `T`: whether swaps may be passed (`through`); without, plain stepping pays nothing
    /// for it (`through` is left alone).
    #[inline(always)]
    fn fast_driver<const P: bool, const T: bool>(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        budget: u64,
        profile: &mut [InsnProfile],
        through: &mut RunThrough,
        mut segs: Option<&mut Vec<Segment>>,
    ) -> Result<Event, super::ExecError> {
        if !self.running {
            return Err(self.not_running());
        }
        // The usual resume is one fast loop that ends in an event: returned from here, so
        // that a caller inlining this maps it in registers; the alternation with reference
        // steps is out of line.
        if self.defer_left == 0 {
            match self.fast_loop::<P, T>(prog, mem, budget, profile, through, segs.as_deref_mut()) {
                Stop::Slow => {}
                Stop::Event(e) => return Ok(if T { through.settle(e) } else { e }),
                Stop::Fault(pc, kind) => return Err(super::ExecError { pc, kind }),
            }
        }
        self.slow_driver::<P, T>(prog, mem, budget, profile, through, segs)
    }

    /// [`Thread::fast_driver`] from a reference step on: alternates reference steps and fast
    /// loops until an event.
    #[inline(never)]
    fn slow_driver<const P: bool, const T: bool>(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        budget: u64,
        profile: &mut [InsnProfile],
        through: &mut RunThrough,
        mut segs: Option<&mut Vec<Segment>>,
    ) -> Result<Event, super::ExecError> {
        loop {
            match self.one_step::<P>(&prog.code, mem, budget, profile) {
                None => {}
                // A swap of the reference step, passed: its busy count goes on (the step took
                // it for the event).
                Some(Ok(Event::Swap {
                    busy_cycles,
                    wait_cycles,
                    ..
                })) if T
                    && pass_recorded(through, segs.as_deref_mut(), busy_cycles, wait_cycles) =>
                {
                    self.busy = busy_cycles
                }
                Some(Ok(e)) => return Ok(if T { through.settle(e) } else { e }),
                Some(Err(e)) => return Err(e),
            }
            if self.defer_left == 0 {
                match self.fast_loop::<P, T>(
                    prog,
                    mem,
                    budget,
                    profile,
                    through,
                    segs.as_deref_mut(),
                ) {
                    Stop::Slow => {}
                    Stop::Event(e) => return Ok(if T { through.settle(e) } else { e }),
                    Stop::Fault(pc, kind) => return Err(super::ExecError { pc, kind }),
                }
            }
        }
    }
}

/// `RunThrough::pass` for a reference step's swap, recording the passed segment when `segs`
/// is given (as the chain's `swap_or_pass` does).
fn pass_recorded(
    through: &mut RunThrough,
    segs: Option<&mut Vec<Segment>>,
    busy: u64,
    wait: u64,
) -> bool {
    let before = through.busy();
    if !through.pass(busy, wait) {
        return false;
    }
    if let Some(segs) = segs {
        segs.push(Segment {
            busy: busy - before,
            wait,
        });
    }
    true
}
