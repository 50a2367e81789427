//! Starting a packet and running it to its end in one call (nic-sim's replay): the driver
//! of [`Thread::run_packet_to_end_fast`] when no profile is kept.
//!
//! # Why a driver of its own
//!
//! nic-sim calls this once per frame, so its set-up is paid per frame: callgrind
//! (`simspeed pre`) counted 318 host instructions per frame in nic-sim's `start_to_end` with
//! this inlined, beside the ME code itself. The general driver (`fast_driver` on a
//! [`RunThrough`], then `settle`, then a `Result<Event>` the caller maps) kept state in
//! memory that this case never needs: the run starts at pc 0 with nothing counted, with no
//! horizon (every swap passes, so the [`RunThrough`] is only needed by the rare fall-back to
//! reference steps) and with the segment list always given. Here:
//!
//! - the [`Cx`] is built before the packet is loaded, so the memories go straight into it
//!   instead of being kept across the packet copy (a call); what the budget holds is read
//!   after the copy, where it is used (see session 18 below);
//! - the event is mapped by the caller's `map` in each branch (the usual `Done` in
//!   registers, not through a `Result` in memory), and settled from the chain's mark (the
//!   passed segments' busy cycles) without a [`RunThrough`];
//! - everything rare (a packet that cannot be run fast from its first op, a fault, the
//!   reference steps) leaves through `#[cold]` functions.
//!
//! Measured (callgrind, `simspeed pre`, self cost of `start_to_end` per frame): 318 before;
//! this driver with the mapped event 277; `mem` never whole in memory 269; the packet
//! copied last in `load` 263; the budget out of [`Cx`], `Done` tested first, no reset of
//! the thread's (already 0) busy count 253; the [`Cx`] written field by field with the
//! fields the chain sets left unset 245; `load` leaving the counts to the driver 243; the
//! condition codes reset by one store 242; the segment list as a pointer 240; no reset of
//! the thread's fault (always `None` between instructions) 239; nic-sim's engine testing
//! one flag for "no random stream, no profile" 236. Over the whole simulation: 1,637 ->
//! 1,557 host instructions per frame without libc memset/memcpy (1,665 -> 1,582 with
//! them).
//!
//! Session 14, with nic-sim's engine inlining this into its replay loop: every end but
//! `Done` leaves through one `#[cold]` function (`not_done`, with the chunk loop after a
//! `Yield`), so the usual path tests the chain's end once; the first chain is entered
//! through its handler directly (not `entry`). Over the whole simulation: 1,144 -> 1,136
//! host instructions per frame (callgrind, `simspeed pre`).
//!
//! Session 15: nic-sim's engine tests the first op once per engine, not per packet
//! ([`Thread::run_packet_to_end_first_fast`]); `Done` stores no `running` (the start leaves
//! it false) nor count nor pc (the exit op stores them); the start tests "nothing to
//! clear, nothing to reset" with one compare (`Fresh::key`). With nic-sim's one-bound plain
//! start and its thread-first slots: 979.1 -> 959.4 host instructions per frame over the
//! whole simulation. Tried and dropped: the
//! packet copied by 16-byte moves instead of `memcpy` (985.7: libc takes ~11 host
//! instructions for 60 bytes, and the inline moves, in the replay loop's register pressure,
//! came with spills), the hops, first run and start state kept in the [`FusedBudget`]
//! (965.2 against 963.9), the copy's destination as a raw pointer (no change).
//!
//! Session 16 (callgrind, `simspeed pre`, whole simulation, host instructions per frame,
//! then without libc memset/memcpy): the exit op stores no stop in the [`Cx`] (`done`:
//! the drivers read the count and pc from the thread) 955.9 -> 953.2 (941.5 -> 938.9);
//! the packet vector's two `data` words one 8-byte store (`Home::data_pair`) 938.9 ->
//! 937.8; no entry register set by a start at rest of a program that does not read them
//! (B22, R1) and never writes A22 (`Fresh::key`) 937.8 -> 932.3 (947.3 with them). Tried
//! again and dropped: the packet copied inline, by four overlapping 16-byte moves for 32
//! to 64 bytes (968.7) or by 32-byte arrays (959.7), against 953.2 with `memcpy`: the
//! replay loop spilled more around it than the call costs.
//!
//! Session 18 (callgrind, `simspeed pre`, bench profile, whole simulation, host
//! instructions per frame without libc memset/memcpy, then thread CPU time): the budget
//! passed by reference and its chain limit, entry and first run read after the packet's
//! copy (by value, LLVM loaded them before the `memcpy` call and kept four values on the
//! stack across it) 842.1 -> 836.1; the fused start's own copy of the segment list's
//! pointer for `settle_done` 836.1 -> 835.0; the program's hops and first run in the
//! [`FusedBudget`] (read through the program, the hops' pointer was loaded early and kept
//! on the stack too) 835.0 -> 833.0; the program's `fresh` in the budget too, and the
//! program taken as a reference to what dereferences to it (nic-sim's `Arc`), so that only
//! the rare paths load its address (it was loaded first and kept on the stack) 833.0 ->
//! 831.0. Thread CPU time: 1.014x for the first three (10 interleaved rounds). Tried
//! and dropped: a [`Cx`] kept per engine across packets (session 17's idea), in storage
//! that erases its lifetime, with `base`, `limit` and `penalty` written once: 833.0 ->
//! 831.3. Its references must still be derived afresh from the engine's borrow for each
//! packet (one kept from an earlier borrow is invalidated by the engine's other uses of
//! its memories), and the chain changes `extra`, `pass_limit`, `mark_n`, the value window
//! and the segment cursor (the caller's segment list differs per thread), so all of those
//! are written per packet anyway; LLVM then kept the kept `Cx`'s address on the stack.
//! 1.7 host instructions per frame were not worth a lifetime-erased `Cx` and a second
//! way of building one.
//!
//! Session 18: the budget carries the map lookup the native blocks make inline
//! (`FusedBudget::with_lookups`, found once per engine), which the start puts in the
//! [`Cx`] with its value window: 858.0 -> 820.5 host instructions per frame (callgrind,
//! `simspeed pre`, with nic-sim's engine preparing it). Finding it per run instead cost
//! more than the helper's call it saved (866.1).

use super::super::fast::{FastProgram, Hop};
use super::super::fresh::Fresh;
use super::super::thread::Thread;
use super::super::through::{RunThrough, Segment};
use super::super::{Event, ExecError, ExecErrorKind, InsnProfile, MemState, fw, jit};
use super::{CHUNK, Cx, Handler, Out, entry, spare, sync_len};
use crate::cost::Latencies;
use std::mem::MaybeUninit;
use std::ops::Deref;

/// A per-packet instruction budget for [`Thread::run_packet_to_end_fast_map`] with what the
/// fused start derives from it and the program (`FastProgram::fused_budget`): computed once
/// per program and budget instead of per packet (14 host instructions per frame less, callgrind
/// `simspeed pre`). Only for the program it was made for.
#[derive(Clone, Copy)]
pub struct FusedBudget {
    budget: u64,
    /// The first chain's limit (`budget.min(first + CHUNK)`, `first` the run at address 0),
    /// or 0 when the first op runs slow (its run is 0 or beyond the budget).
    first_limit: u64,
    /// The handler the first chain starts with: the first hop's, or the entry of its
    /// native block that checks only the room for segments (`jit::Unchecked`) when the
    /// fused start's state (count `first`, `limit` `first_limit`, no `extra`, no horizon)
    /// passes the rest of that block's entry check.
    entry: Handler,
    /// The program's hops (`FastProgram::hops`, which never move nor change: the program
    /// is immutable) and the run of its first: read from the program, both were loaded
    /// before the packet's copy (a call) and kept on the stack across it (2 host
    /// instructions per packet more, callgrind `simspeed pre`). Never dereferenced here.
    base: *const Hop,
    first: u64,
    /// The program's `FastProgram::fresh`, here so that the fused start does not reach
    /// the program on its usual path (through nic-sim's `Arc`, the program's address was
    /// loaded and kept on the stack for the rare paths: 2 host instructions per packet).
    fresh: Fresh,
    /// The map the native blocks' inline lookups name (`jit::lookup_fd`, of the same ops
    /// as the blocks were compiled from), whose lookup [`FusedBudget::with_lookups`]
    /// prepares (`fw::array_desc`) for the start to put in each chain's [`Cx`]
    /// (`Cx::lk_max`); `u32::MAX` (no such map) when there is none or no native code.
    lk_fd: u32,
    /// That map's lookup as the engine's maps hold it ([`FusedBudget::with_lookups`]), or
    /// none (`max` 0: every lookup calls the helper).
    lk: Lookups,
    /// The table the program's native code is compiled for (`FastProgram::latencies`):
    /// a run given this very table starts on it after one compare (see
    /// `packet_to_end_mapped`). Only compared, never dereferenced through the budget.
    lat: *const Latencies,
}

/// What the fused start puts in the [`Cx`] for the native blocks' inline lookups of one
/// map (`Cx::lk_max`) and their value window (`Cx::va_base`): `fw::array_desc`'s answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Lookups {
    max: u64,
    stride: u64,
    base: u64,
    last: u64,
    ptr: *mut u8,
}

// SAFETY: `ptr` is only written through by runs given the map set it points into
// (`FusedBudget::with_lookups`'s contract), which they hold `&mut` (a `MapSet` is `Send`
// and `Sync`); a `Lookups` itself never dereferences it.
unsafe impl Send for Lookups {}
// SAFETY: as for `Send`: shared `Lookups` only copy the pointer.
unsafe impl Sync for Lookups {}

impl Lookups {
    /// No inline lookup, no window (what a chain starts with without them).
    const NONE: Lookups = Lookups {
        max: 0,
        stride: 0,
        base: u64::MAX,
        last: 0,
        ptr: std::ptr::null_mut(),
    };

    /// `fw::array_desc` of map `fd` of `maps`.
    fn of(maps: &mut vm_core::maps::MapSet, fd: u32) -> Lookups {
        let (max, stride, window) = fw::array_desc(maps, fd);
        let (base, last, ptr) = window.unwrap_or((u64::MAX, 0, std::ptr::null_mut()));
        Lookups {
            max,
            stride,
            base,
            last,
            ptr,
        }
    }
}

// SAFETY: `base` is only compared and handed to the program's handlers (which the budget is
// for, see `Thread::run_packet_to_end_first_fast`), never dereferenced through the budget;
// the hops it points to are immutable and `Sync` (fn pointers and plain data). `lat` is
// only compared.
unsafe impl Send for FusedBudget {}
// SAFETY: as for `Send`: nothing is reachable through a `&FusedBudget` but plain values.
unsafe impl Sync for FusedBudget {}

impl PartialEq for FusedBudget {
    fn eq(&self, o: &FusedBudget) -> bool {
        let h = |b: &FusedBudget| (b.entry as usize, b.base);
        let f = |b: &FusedBudget| {
            let f = b.fresh;
            (f.live_chunks, f.quick, f.rest, f.key)
        };
        (
            self.budget,
            self.first_limit,
            self.first,
            h(self),
            f(self),
            self.lk_fd,
            self.lat,
        ) == (o.budget, o.first_limit, o.first, h(o), f(o), o.lk_fd, o.lat)
    }
}

impl Eq for FusedBudget {}

impl std::fmt::Debug for FusedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusedBudget")
            .field("budget", &self.budget)
            .field("first_limit", &self.first_limit)
            .finish_non_exhaustive()
    }
}

impl FastProgram {
    /// `budget` (ME instructions per packet) for this program's fused runs.
    pub fn fused_budget(&self, budget: u64) -> FusedBudget {
        let first = self.hops.first().map_or(0, |h| u64::from(h.run));
        let slow = first == 0 || first > budget;
        let first_limit = if slow { 0 } else { budget.min(first + CHUNK) };
        // `x64_bound::entry`'s check on the fused start's state: `n` = `first`, `limit` =
        // `first_limit`, `extra` = 0, `pass_limit` = `u64::MAX` (bounds are far below
        // 2^62: no overflow).
        let entry = match (self.first_unchecked(), self.hops.first()) {
            (Some(u), _)
                if !slow
                    && first + u.paid <= first_limit
                    && u64::MAX - first > u.paid + u.events * u64::from(u32::MAX) =>
            {
                u.h
            }
            (_, Some(h)) => h.h,
            // (Never: the hops end with a slow op.)
            (_, None) => entry::<false> as Handler,
        };
        let lk_fd = match self.native_blocks() {
            0 => None,
            _ => jit::lookup_fd(self.hops.iter().map(|h| h.op)),
        };
        FusedBudget {
            budget,
            first_limit,
            entry,
            base: self.hops.as_ptr(),
            first,
            fresh: self.fresh,
            lk_fd: lk_fd.unwrap_or(u32::MAX),
            lk: Lookups::NONE,
            lat: self.latencies(),
        }
    }
}

impl FusedBudget {
    /// This budget with the native blocks' inline map lookups (`x64_call::lookup_inline`)
    /// prepared for `maps`: the map they name (`jit::lookup_fd`) as `maps` holds it now
    /// (`fw::array_desc`), which each run's start then puts in its `Cx` (`Cx::lk_max`,
    /// and the map's value window, `Cx::va_base`). Without it every lookup calls the
    /// helper (`x64_call::lookup_native`).
    ///
    /// Why once, not per run: found per run from the maps (vm-core's, whose layout is
    /// not ours to read in native code), it cost the fused start more than the inline
    /// lookup saved (callgrind, `simspeed pre`: 858.0 -> 866.1 host instructions per
    /// frame; the helper's call was 64 per lookup, the inline path 24, and finding the
    /// map ~35 plus registers spilled around it).
    ///
    /// # Safety
    ///
    /// Every run given the returned budget (or a copy) must be given `maps` itself (as
    /// `MemState::maps`), with the map the blocks name neither replaced (assigned to,
    /// swapped, the set dropped) since nor dropped: the runs write its value memory through
    /// the pointer kept here. (A map's value memory never moves nor changes length while
    /// it lives, and its kind and shape never change: vm-core's `Map`.) Debug builds check
    /// it at each run.
    pub unsafe fn with_lookups(self, maps: &mut vm_core::maps::MapSet) -> FusedBudget {
        FusedBudget {
            lk: Lookups::of(maps, self.lk_fd),
            ..self
        }
    }

    /// The instruction budget.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Whether the program's first op runs fast under this budget: what
    /// [`Thread::run_packet_to_end_first_fast`] requires.
    pub fn first_fast(&self) -> bool {
        self.first_limit != 0
    }
}

impl Thread {
    /// [`Thread::run_packet_to_end_fast`], its result given to `map` (for a caller with a
    /// type of its own: mapped in each way the run ends, the usual one in registers).
    /// `mem` by value (see `fused`). Always inline: each caller's copy then folds its own
    /// `profile` (nic-sim's engine calls it twice).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn run_packet_to_end_fast_map<R>(
        &mut self,
        prog: &FastProgram,
        mem: MemState<'_>,
        packet: &[u8],
        budget: FusedBudget,
        profile: Option<&mut [InsnProfile]>,
        segs: &mut Vec<Segment>,
        map: impl FnOnce(Result<Event, ExecError>) -> R,
    ) -> R {
        debug_assert_eq!(budget, prog.fused_budget(budget.budget));
        match profile {
            None => self.packet_to_end_mapped::<true, R, _>(&prog, mem, packet, &budget, segs, map),
            Some(p) => {
                let MemState {
                    lmem,
                    shared,
                    maps,
                    lat,
                } = mem;
                let parts = (lmem, shared, maps, lat);
                let budget = budget.budget;
                map(self.packet_to_end_profiled(prog, parts, packet, budget, p, segs))
            }
        }
    }

    /// [`Thread::run_packet_to_end_fast_map`] without a profile, for a budget whose
    /// [`FusedBudget::first_fast`] holds (the caller tests it once, not per packet: nic-sim's
    /// engine folds it into the one bound its plain start tests, 2 host instructions per
    /// packet fewer, callgrind `simspeed pre`). With any other budget the run is wrong
    /// (debug builds assert it): the budget carries the program's entry handler and hops.
    /// Likewise `mem.lat` must be a table the program's native code is for
    /// (`FastProgram::native_for`: equal to [`FastProgram::latencies`]), which
    /// [`Thread::run_packet_to_end_fast_map`] tests per run. Why not here too: nic-sim's
    /// engine, given the program's table through the program and tested per packet, took
    /// 14.3 host instructions per frame more than with its own copy given unchecked
    /// (callgrind, `simspeed pre`: 749.6 against 735.3; the loads and the compare, and
    /// the registers they took in the replay loop); its programs are compiled for their
    /// table once (`NfpProgram::with_mem_latency`).
    /// `prog` is any reference to what dereferences to the program (nic-sim's `Arc`):
    /// dereferenced only on the rare paths (see the module docs, session 18).
    #[inline(always)]
    pub fn run_packet_to_end_first_fast<R, P: Deref<Target = FastProgram>>(
        &mut self,
        prog: &P,
        mem: MemState<'_>,
        packet: &[u8],
        budget: &FusedBudget,
        segs: &mut Vec<Segment>,
        map: impl FnOnce(Result<Event, ExecError>) -> R,
    ) -> R {
        debug_assert_eq!(*budget, prog.fused_budget(budget.budget));
        debug_assert!(budget.first_fast());
        self.packet_to_end_mapped::<false, R, P>(prog, mem, packet, budget, segs, map)
    }

    /// [`Thread::run_packet_to_end_fast`] with a profile (out of line: rare). The memories
    /// as a tuple: passing the caller's `MemState` would keep it in memory on every path.
    #[inline(never)]
    pub(super) fn packet_to_end_profiled(
        &mut self,
        prog: &FastProgram,
        (lmem, shared, maps, lat): MemParts<'_>,
        packet: &[u8],
        budget: u64,
        profile: &mut [InsnProfile],
        segs: &mut Vec<Segment>,
    ) -> Result<Event, ExecError> {
        let mem = &mut MemState {
            lmem,
            shared,
            maps,
            lat,
        };
        self.load(mem.lmem, packet)?;
        let mut through = RunThrough::new(0, u64::MAX);
        let t = &mut through;
        self.fast_driver::<true, true>(prog, mem, budget, profile, t, Some(segs))
    }

    /// [`Thread::run_packet_to_end_fast`] without a profile, its result given to `map`
    /// (inlined into each way the run can end). `mem` by value: its parts go straight into
    /// the [`Cx`] (passed by reference, or moved whole, it was kept in memory as well: 5
    /// host instructions more per packet). With `CHECK` off the caller promises
    /// [`FusedBudget::first_fast`] (see [`Thread::run_packet_to_end_first_fast`]). `prog`
    /// is dereferenced only on the rare paths: the usual one reads the budget `fb`.
    #[inline(always)]
    pub(in super::super) fn packet_to_end_mapped<const CHECK: bool, R, P>(
        &mut self,
        prog: &P,
        mem: MemState<'_>,
        packet: &[u8],
        fb: &FusedBudget,
        segs: &mut Vec<Segment>,
        map: impl FnOnce(Result<Event, ExecError>) -> R,
    ) -> R
    where
        P: Deref<Target = FastProgram>,
    {
        // The native code is for one table (`FastProgram::native_for`): a run given
        // another runs on the handlers. Without `CHECK` the caller promises the table
        // (see `run_packet_to_end_first_fast`).
        if CHECK && !std::ptr::eq(mem.lat, fb.lat) && !prog.native_for_other(mem.lat) {
            return map(self.packet_to_end_foreign(prog, mem, packet, fb.budget, segs));
        }
        debug_assert!(prog.native_for(mem.lat));
        let (seg_at, seg_end) = spare(segs);
        let segs: *mut Vec<Segment> = segs;
        let penalty = u64::from(mem.lat.branch_taken_penalty);
        // (Debug builds hold every caller of `with_lookups` to its contract.)
        debug_assert!(fb.lk.max == 0 || fb.lk == Lookups::of(mem.maps, fb.lk_fd));
        // Written field by field, so that the fields the chain sets before they are read
        // (`profile`, `ip`, `n`, `wait`, `target`, `fault`) get no store: built as one
        // value, LLVM stored filler bytes there (8 host instructions more per packet).
        let mut slot = MaybeUninit::<Cx<'_>>::uninit();
        let p = slot.as_mut_ptr();
        // SAFETY: writes of fields of the `MaybeUninit` (no reference to the whole yet).
        unsafe {
            // Field by field: moving `mem` whole kept a copy of it in memory (see above).
            (&raw mut (*p).mem).write(MemState {
                lmem: mem.lmem,
                shared: mem.shared,
                maps: mem.maps,
                lat: mem.lat,
            });
            (&raw mut (*p).extra).write(0);
            (&raw mut (*p).penalty).write(penalty);
            // `RunThrough::chain_limit` with no horizon and nothing counted: every swap
            // passes (but one whose ready time would overflow).
            (&raw mut (*p).pass_limit).write(u64::MAX);
            // The busy cycles before count `n` are `n + extra` (nothing counted at start).
            (&raw mut (*p).mark_n).write(0);
            (&raw mut (*p).seg_at).write(seg_at);
            (&raw mut (*p).seg_end).write(seg_end);
            (&raw mut (*p).segs).write(segs);
            // The inline lookups' map, and its value window from the start, or none (see
            // `Cx::lk_max`, `Cx::va_base`, `FusedBudget::with_lookups`): read from the
            // budget and stored at once, nothing kept across the packet's copy.
            let lk = fb.lk;
            (&raw mut (*p).va_base).write(lk.base);
            (&raw mut (*p).va_last).write(lk.last);
            (&raw mut (*p).va_ptr).write(MaybeUninit::new(lk.ptr));
            (&raw mut (*p).lk_max).write(lk.max);
            (&raw mut (*p).lk_stride).write(lk.stride);
        }
        // The program's first op, its run, the chain's limit and its entry are read only
        // after the packet's copy (a call), and go straight into the `Cx` and the entry's
        // arguments: read before it (as the budget by value was), each was kept on the
        // stack across the call (a store and a load).
        let base_limit = |p: *mut Cx<'_>| {
            let base = fb.base;
            debug_assert_eq!(base, prog.hops.as_ptr());
            // SAFETY: writes of fields of the `MaybeUninit`, as above.
            unsafe {
                (&raw mut (*p).base).write(base);
                (&raw mut (*p).limit).write(fb.first_limit);
            }
            base
        };
        if CHECK && fb.first_limit == 0 {
            base_limit(p);
            // SAFETY: every field is written but the `MaybeUninit` ones, which need no
            // value (`cx_fields` lists them all: a new field fails to compile there).
            let cx = unsafe { slot.assume_init_mut() };
            return map(self.first_op_slow(prog, cx, packet, fb.budget));
        }
        // SAFETY: `mem` was written above; the reborrow ends with the load (the `Cx`'s
        // `lmem` is used again only after it).
        let lmem = unsafe { &mut *(*p).mem.lmem };
        if let Err(e) = self.load_but_counts(lmem, packet, fb.fresh) {
            return map(Err(e));
        }
        let base = base_limit(p);
        // SAFETY: every field is written but the `MaybeUninit` ones, which need no value
        // (`cx_fields` lists them all: a new field fails to compile there).
        let cx = unsafe { slot.assume_init_mut() };
        let first = fb.first;
        // Every end but `Done` (how nearly every packet ends) out of line, so that its path
        // tests nothing else (with `Yield` tested first, and `Done` again after the common
        // bookkeeping, it tested three things: 2 host instructions per packet more).
        let out = (fb.entry)(self, cx, base, first);
        if out != Out::Done {
            return map(self.not_done(prog, cx, fb.budget, out));
        }
        let (n, busy_cycles) = self.settle_done(cx, segs);
        // `running` is false: `load_but_counts` leaves it so (see there).
        debug_assert!(!self.running);
        map(Ok(Event::Done {
            retval: self.reg(0),
            busy_cycles,
            insns: n,
        }))
    }

    /// What the thread keeps of the chain `cx` ended otherwise than `Done` (the segment
    /// list's length, the instruction count, the pc); gives the busy cycles of the whole
    /// run and those of its last segment (what `RunThrough::settle` leaves). `self.busy` is
    /// 0 here, as `load` left it (handlers count in `n` and `cx.extra`, never in the
    /// thread): what taking it for the event leaves.
    #[inline(always)]
    fn settle_chain(&mut self, cx: &mut Cx<'_>) -> (u64, u64) {
        let (ip, n) = cx.stopped();
        // SAFETY: `cx.segs` is the caller's list, given up to the chain (see `Cx::segs`).
        sync_len(unsafe { &mut *cx.segs }, cx.seg_at);
        self.insns = n;
        self.pc = cx.pc(ip) as u32;
        let total = n + cx.extra;
        (total, n.wrapping_sub(cx.mark_n))
    }

    /// [`Thread::settle_chain`] of a chain that ended `Done`: at an exit op, which stored
    /// the count and pc already (`fast_branch::exit`); gives the count and the busy cycles.
    /// `segs` is `cx.segs` (the fused start passes its own copy, kept in a register: one
    /// load fewer per packet than reading it back from the `Cx`).
    #[inline(always)]
    fn settle_done(&mut self, cx: &mut Cx<'_>, segs: *mut Vec<Segment>) -> (u64, u64) {
        debug_assert_eq!(segs, cx.segs);
        // SAFETY: `segs` is the caller's list, given up to the chain (see `Cx::segs`).
        sync_len(unsafe { &mut *segs }, cx.seg_at);
        // The count and the pc: stored by the exit that ended the chain (`fast_branch::exit`,
        // the only maker of `Done`, which leaves `cx.stopped` unset: see `fast_run::done`).
        let n = self.insns;
        (n, n.wrapping_sub(cx.mark_n))
    }

    /// The fused run's chain ended otherwise than `Done`: goes on in chunks after a
    /// `Yield`, and gives the event (or error) as `run_packet_to_end_fast` would.
    #[cold]
    #[inline(never)]
    fn not_done(
        &mut self,
        prog: &FastProgram,
        cx: &mut Cx<'_>,
        budget: u64,
        out: Out,
    ) -> Result<Event, ExecError> {
        let out = if out == Out::Yield {
            self.chunks(cx, budget)
        } else {
            out
        };
        if out == Out::Done {
            let (n, busy_cycles) = self.settle_done(cx, cx.segs);
            self.running = false;
            return Ok(Event::Done {
                retval: self.reg(0),
                busy_cycles,
                insns: n,
            });
        }
        let (total, busy_cycles) = self.settle_chain(cx);
        self.running = true;
        // Not ended on the chain's exit: what ran is no longer known (see `reset_for`).
        self.reset_for = 0;
        match out {
            Out::Swap => Ok(Event::Swap {
                busy_cycles,
                // SAFETY: set by `swap`, which the chain left by.
                wait_cycles: unsafe { cx.wait.assume_init() },
                // SAFETY: set by `swap`, which the chain left by.
                target: unsafe { cx.target.assume_init() },
            }),
            // SAFETY: set by `fault`, which the chain left by.
            Out::Fault => Err(self.faulted(total, unsafe { cx.fault.assume_init_read() })),
            _ => self.on_slow(prog, cx, budget, total),
        }
    }

    /// The chain yielded (its chunk used up): goes on in chains of [`CHUNK`] instructions
    /// while the budget allows. Out of line: few packets run a chunk's worth (and a loop
    /// here kept its exit jumps on every packet's path: 2 host instructions per packet).
    #[cold]
    #[inline(never)]
    fn chunks(&mut self, cx: &mut Cx<'_>, budget: u64) -> Out {
        let mut out = Out::Yield;
        while out == Out::Yield {
            let (ip, n) = cx.stopped();
            // SAFETY: `ip` points into the hops (invariant on `next`).
            let start = n + u64::from(unsafe { (*ip).run });
            if start > budget {
                break;
            }
            cx.limit = budget.min(start + CHUNK);
            out = entry::<false>(self, cx, ip, start);
        }
        out
    }

    /// The fused run of a program whose first op runs on the reference path (its run is 0
    /// or beyond the budget), as `fast_driver` would go on after `load` (`cx` only lends
    /// the memories, the budget and the segment list).
    #[cold]
    #[inline(never)]
    fn first_op_slow(
        &mut self,
        prog: &FastProgram,
        cx: &mut Cx<'_>,
        packet: &[u8],
        budget: u64,
    ) -> Result<Event, ExecError> {
        self.load(cx.mem.lmem, packet)?;
        let mut through = RunThrough::new(0, u64::MAX);
        // SAFETY: `cx.segs` is the caller's list (see `Cx::segs`).
        let (t, segs) = (&mut through, unsafe { cx.segs.as_mut() });
        self.slow_driver::<false, true>(prog, &mut cx.mem, budget, &mut [], t, segs)
    }

    /// A fault in the chain: the thread stops with `total` busy cycles counted.
    #[cold]
    #[inline(never)]
    fn faulted(&mut self, total: u64, kind: ExecErrorKind) -> ExecError {
        self.busy = total;
        self.running = false;
        ExecError { pc: self.pc, kind }
    }

    /// The chain left an op to the reference path: goes on as `fast_driver` does, with the
    /// swaps the chain passed (`cx`) in a [`RunThrough`], `total` busy cycles counted.
    #[cold]
    #[inline(never)]
    fn on_slow(
        &mut self,
        prog: &FastProgram,
        cx: &mut Cx<'_>,
        budget: u64,
        total: u64,
    ) -> Result<Event, ExecError> {
        self.busy = total;
        // What `fast_loop` leaves in the `RunThrough` of `run_packet_to_end_fast`.
        let mut through = RunThrough {
            at: 0,
            horizon: u64::MAX,
            mark: cx.mark_n.wrapping_add(cx.extra),
            wait: u64::MAX - cx.pass_limit,
        };
        // SAFETY: `cx.segs` is the caller's list (see `Cx::segs`).
        let (t, segs) = (&mut through, unsafe { cx.segs.as_mut() });
        self.slow_driver::<false, true>(prog, &mut cx.mem, budget, &mut [], t, segs)
    }
}

/// The parts of a [`MemState`].
type MemParts<'a> = (
    &'a mut super::super::Lmem,
    &'a mut super::super::SharedMem,
    &'a mut vm_core::maps::MapSet,
    &'a crate::cost::Latencies,
);

/// Names every field of [`Cx`] (no `..`), so that adding one fails to compile here until
/// `packet_to_end_mapped`, which writes them one by one, writes it too (or it is a
/// `MaybeUninit` the chain sets before it is read).
#[allow(dead_code)]
fn cx_fields(cx: Cx<'_>) {
    let Cx {
        mem: _,
        profile: _,
        base: _,
        limit: _,
        extra: _,
        penalty: _,
        ip: _,
        n: _,
        wait: _,
        target: _,
        fault: _,
        pass_limit: _,
        mark_n: _,
        seg_at: _,
        seg_end: _,
        segs: _,
        va_base: _,
        va_last: _,
        va_ptr: _,
        lk_max: _,
        lk_stride: _,
    } = cx;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::MeInsn;

    /// The budget holds copies of the program's data that the fused start reads instead
    /// of the program's (session 18): they must be the program's, and another program's
    /// budget must compare unequal (the start's debug assertion relies on it).
    #[test]
    fn budget_carries_its_program() {
        let a = FastProgram::new(&[MeInsn::Exit]);
        let b = FastProgram::new(&[MeInsn::Exit]);
        let (fa, fb) = (a.fused_budget(100), b.fused_budget(100));
        assert_eq!(fa.base, a.hops.as_ptr());
        assert_eq!(fa.first, u64::from(a.hops[0].run));
        let (f, g) = (fa.fresh, a.fresh);
        assert_eq!(
            (f.live_chunks, f.quick, f.rest, f.key),
            (g.live_chunks, g.quick, g.rest, g.key)
        );
        assert_eq!(fa, a.fused_budget(100));
        assert_ne!(fa, fb);
    }
}
