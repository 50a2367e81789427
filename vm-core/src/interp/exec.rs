//! The run loop, as threaded handlers: each op carries a pointer to a small function that
//! executes it and then jumps straight to the next op's handler.
//!
//! Why not a `loop { match op.code { .. } }`: measured on the project's machines (AMD EPYC
//! under KVM), the single indirect jump of a central `match` is mispredicted almost every
//! time (about 6.8 ns per instruction for a trivial three-op loop), while one indirect jump
//! *per handler* is predicted well (about 1.5 ns): each handler's jump site learns its own
//! successor. Rust has no computed goto, so handlers end in a call in tail position
//! ([`next`], [`goto`]), which LLVM turns into a plain `jmp` (verified in the generated code
//! at opt-level 1 and 3).
//!
//! # Paying for instructions by runs
//!
//! The instruction budget is exact, but counting every instruction would cost each handler a
//! compare, a branch and a decrement. Instead, a *run* is the stretch from an op up to and
//! including the next op that cannot fall through ([`Op::ends_run`]: `ja`, calls, exit, tail
//! calls), *across* conditional jumps; [`Op::run`] is its length. When an op transfers
//! control to `to` it pays for the whole run starting at `to` at once ([`goto`]). A
//! conditional jump that falls through pays nothing: its fall-through is the rest of the run
//! already paid for. One that is taken leaves its run early, so it gives back the unexecuted
//! rest (the fall-through's run) and pays for the target's, in one subtraction of their
//! difference ([`taken`]). Why across conditional jumps: most conditional jumps fall
//! through (bounds and header checks of packet parsers), and a fall-through then costs
//! nothing but the dispatch (measured: three instructions fewer per jump than paying for
//! the fall-through's run). Runs that start at a jump target inside another run overlap it,
//! which is fine: whoever enters a run pays exactly for the instructions that will execute
//! unless a jump leaves it (which gives the rest back), and nothing else can leave a run early
//! except a fault or a legacy packet-load abort (which give back the unexecuted rest, see
//! `ld_abs`).
//!
//! The compiled code has two copies of the ops, index for index, in one allocation: the
//! *fast* copy (superinstructions, runs paid at entry, handlers instantiated with
//! `C = false`) and the *counted* copy (plain instructions, one decrement per instruction,
//! `C = true`). Execution switches to the counted copy when the budget left in the chunk
//! cannot pay for the next run, and when a superinstruction cannot finish (see `fuse`); the
//! counted copy switches back at its next control transfer. Both copies share [`Machine::n`]
//! semantics: `n` is what the chain may still execute beyond the instructions already
//! executed or paid for.
//!
//! Safety of the stack without guaranteed tail calls: every handler chain executes at most
//! `n` instructions and then returns to the driver, so even if a build did not turn the tail
//! calls into jumps, the Rust stack would hold at most [`CHUNK`] handler frames.
//!
//! Everything unusual (ctx fields, faults, helpers) leaves the handlers through `#[cold]`
//! functions so the handlers stay small.

use std::marker::PhantomData;

use super::Vm;
use super::fault::FaultKind;
use super::helpers::{self, TailCallOutcome};
use super::memory::{FIRST_MAP, MAP_HANDLE, MAX_FRAMES, STACK_SIZE, STACK0, View, split, vaddr};
use super::op::{Handler, Op};
use crate::MapType;

/// Most instructions one chain of handlers executes before returning to the driver (bounds
/// the Rust stack if a build does not turn tail calls into jumps). Runs longer than this
/// execute in the counted copy.
pub(crate) const CHUNK: u64 = 1024;

/// Why a handler chain returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Flow {
    /// `exit` from the outermost frame of a run that never took a slow path (see
    /// [`Machine::depth`]); r0 holds the return value, `Machine::n` the unused part of the
    /// chunk.
    Exit,
    /// As [`Flow::Exit`], from a run that took a slow path: the Vm must finish it the
    /// general way.
    ExitSlow,
    /// The chunk is used up; `Machine::ip` is the next op to execute (in the counted copy).
    Yield,
    /// A fault or an abort; see `Machine::stop`.
    Stop,
}

/// Why a run ended early (details of [`Flow::Stop`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// A fault at op index `op`.
    Fault { op: usize, kind: FaultKind },
    /// A legacy packet load failed: the program ends returning 0, as in Linux.
    Abort,
}

/// A caller's state saved by a bpf-to-bpf call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    /// Return address, in the fast copy.
    ret: *const Op,
    saved: [u64; 4],
}

// SAFETY: `ret` is only dereferenced by the run that stored it (frames are rewritten by every
// call before an exit reads them), and the code it points into belongs to the same Vm.
unsafe impl Send for Frame {}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            ret: std::ptr::null(),
            saved: [0; 4],
        }
    }
}

/// One run in progress: only what handlers touch on their fast paths, so that setting it up
/// per run is cheap. Everything else (memory table, packet, context, maps, code tables,
/// frames) is reached through `vm` by slow paths. Registers come first so handlers address
/// them with small offsets. Each Vm allocates one Machine for its life (see `MachineBuf`)
/// and resets it per run.
#[repr(C)]
pub(crate) struct Machine<'v> {
    /// r0..r10 and 245 registers no instruction can name: indexing with any `u8` needs no
    /// mask and no bounds check, which saves an instruction per operand in every handler.
    /// `compile` rejects register numbers above 10; r0..r10 are reset per run only as far as
    /// a run could observe them (`Vm::zero_regs`).
    pub(crate) r: [u64; 256],
    pub(crate) view: View,
    /// Base of the current frame's 512 bytes of stack.
    pub(crate) fp: *mut u8,
    /// Bytes from an op of the fast copy to the same op of the counted copy.
    pub(crate) delta: usize,
    /// The call depth in the low 32 bits ([`Machine::frame`]), and [`SLOW`]: whether this
    /// run took a path that may leave state a later run could see (a helper call that left
    /// output or moved a window, a bpf-to-bpf call, a tail call, a store that missed the
    /// windows; see [`Machine::set_slow`]). A slow run is finished and the next one prepared
    /// the general way (`Vm::finish_slow`, `Vm::reset_state`); runs that never set it need
    /// no reset beyond registers and the stack bytes of `Vm::stack_reset`. One word for
    /// both so that `exit` tells a clean end from every other case with one comparison and
    /// the Vm needs no second check (measured: two instructions of every run's fixed cost).
    /// Reset to 0 by `Vm::reset_state`.
    pub(crate) depth: u64,
    /// Deepest frame used in this run (its stacks are re-zeroed before the next run).
    pub(crate) max_depth: usize,
    pub(crate) tail_calls: u32,
    /// Where to resume after [`Flow::Yield`] (in the counted copy).
    pub(crate) ip: *const Op,
    /// Unused part of the chunk when the chain ended with [`Flow::Exit`] or [`Flow::Stop`].
    pub(crate) n: u64,
    pub(crate) stop: Option<Stop>,
    /// For XDP programs, the values of aligned 32-bit `xdp_md` loads (see
    /// `Ctx::xdp_words`), refreshed after every helper call, and zeros (the last two always):
    /// eight so that an index masked with 7 needs no bounds check.
    pub(crate) xdp: [u64; 8],
    /// Whether `xdp` holds an `xdp_md` (the program is an XDP program).
    pub(crate) xdp_on: bool,
    /// The Vm this run belongs to. `Vm::execute` creates it from its `&mut self` and does not
    /// touch the Vm otherwise until the handler chains have returned, so slow paths may
    /// borrow it mutably (one borrow at a time, never across a handler call).
    pub(crate) vm: *mut Vm,
    pub(crate) _vm: PhantomData<&'v mut Vm>,
}

/// The flag of [`Machine::depth`] that marks a slow run.
pub(crate) const SLOW: u64 = 1 << 32;

impl Machine<'_> {
    /// Sets [`Machine::xdp`] from `Ctx::xdp_words`.
    pub(crate) fn set_xdp(&mut self, words: Option<[u64; 6]>) {
        self.xdp_on = words.is_some();
        self.xdp = [0; 8];
        if let Some(w) = words {
            self.xdp[..6].copy_from_slice(&w);
        }
    }

    /// The current call depth (0: the program's own frame).
    #[inline(always)]
    pub(crate) fn frame(&self) -> usize {
        (self.depth as u32) as usize
    }

    /// Marks this run as slow (see [`Machine::depth`]).
    #[inline(always)]
    pub(crate) fn set_slow(&mut self) {
        self.depth |= SLOW;
    }

    /// r0..r15, as helpers take them.
    pub(crate) fn regs(&self) -> &[u64; 16] {
        static NONE: [u64; 16] = [0; 16];
        self.r.first_chunk().unwrap_or(&NONE)
    }
}

/// The Vm of a run, with a lifetime not tied to the `Machine` (so that registers can be
/// borrowed at the same time: they live in the Machine, not in the Vm).
#[inline(always)]
pub(super) fn vm<'a>(m: &Machine<'_>) -> &'a mut Vm {
    // SAFETY: see `Machine::vm`; callers keep the borrow local to one slow path.
    unsafe { &mut *m.vm }
}

/// Continues with the op at `ip` (in the current copy) after a non-control instruction.
///
/// In the counted copy (`C`), executes it only if the chunk allows one more instruction,
/// else yields. In the fast copy the instruction was paid for when its run was entered.
///
/// Invariant that makes the pointer dereferences in handlers sound: `ip` always points into
/// the op array. It holds initially (the driver starts at a program start), every jump and
/// call target was checked by `compile` to lie inside its program, every program ends with
/// a `Fault` sentinel so `ip + 1` from any other op stays inside, return addresses are
/// `call + 1` (never past the sentinel), tail calls go to a program start, and switching
/// copies moves by exactly one copy's length within the same allocation.
#[inline(always)]
pub(crate) fn next<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    if C {
        if n == 0 {
            m.ip = ip;
            return Flow::Yield;
        }
        // SAFETY: `ip` points into the op array (invariant above).
        let h = unsafe { (*ip).h };
        h(m, ip, n - 1)
    } else {
        // SAFETY: as above.
        let h = unsafe { (*ip).h };
        h(m, ip, n)
    }
}

/// Continues at `to` (in the current copy) after a control transfer: pays for the whole run
/// at `to` and continues in the fast copy, or in the counted copy if the chunk cannot pay.
#[inline(always)]
pub(crate) fn goto<const C: bool>(m: &mut Machine<'_>, to: *const Op, n: u64) -> Flow {
    // SAFETY: `to` points into the op array (invariant on `next`).
    let run = unsafe { (*to).run } as u64;
    pay::<C>(m, to, run, n)
}

/// As [`goto`], with the run at `to` already known (`Op::tr` / `Op::fr` of the jump).
/// In the fast copy, conditional jumps use [`taken`] and [`next`] instead.
#[inline(always)]
pub(crate) fn goto_run<const C: bool>(
    m: &mut Machine<'_>,
    to: *const Op,
    run: u16,
    n: u64,
) -> Flow {
    pay::<C>(m, to, run as u64, n)
}

/// Pays `run` out of `n` and continues at `to` in the fast copy, or in the counted copy when
/// `n` cannot pay. Written as one subtraction whose borrow decides, with the cold path
/// rebuilding `n` from the difference, so that the hot path keeps no copy of `n` alive
/// (measured: two register moves fewer per control transfer).
#[inline(always)]
fn pay<const C: bool>(m: &mut Machine<'_>, to: *const Op, run: u64, n: u64) -> Flow {
    let (left, short) = n.overflowing_sub(run);
    if !short {
        let f = if C { to.wrapping_byte_sub(m.delta) } else { to };
        // SAFETY: `f` is the same op in the fast copy (invariant on `next`).
        let h = unsafe { (*f).h };
        h(m, f, left)
    } else {
        let c = if C { to } else { to.wrapping_byte_add(m.delta) };
        counted_short(m, c, left, run)
    }
}

/// Continues at the target of the taken conditional jump that ends the fast op `o`
/// ([`Op::fast_target`]): gives back the rest of the run after the jump (its fall-through's run, paid for
/// but not executed) and pays for the run at `to`, as one subtraction of
/// [`Op::taken_delta`]. When `n` cannot pay, continues in the counted copy at the target
/// ([`taken_short`]).
#[inline(always)]
pub(crate) fn taken(m: &mut Machine<'_>, o: &Op, n: u64) -> Flow {
    // `n` is at most a chunk, so it is exact as an i64. The delta is read before the target
    // so that the target can take the op pointer's register (one register copy fewer).
    let left = (n as i64).wrapping_sub(o.taken_delta());
    let to = o.fast_target();
    if left >= 0 {
        // SAFETY: `to` is an op of the fast copy (invariant on `next`).
        let h = unsafe { (*to).h };
        h(m, to, left as u64)
    } else {
        taken_short(m, to, left)
    }
}

/// [`taken`] when `n` cannot pay for the run at `to`: continues in the counted copy with
/// the rest of the jump's run given back, `n + fall-through = left + run(to)` (`left` being
/// `n - (run(to) - fall-through)`), rebuilt here so that the hot path keeps nothing alive.
#[cold]
#[inline(never)]
fn taken_short(m: &mut Machine<'_>, to: *const Op, left: i64) -> Flow {
    let run = i64::from(op(to).run);
    next::<true>(
        m,
        to.wrapping_byte_add(m.delta),
        left.wrapping_add(run) as u64,
    )
}

/// Continues in the counted copy at `ip` (a run the chunk cannot pay for in full), `n` being
/// `left + run`: rebuilt out of line, so that [`pay`]'s hot path need not keep `n` alive.
#[cold]
#[inline(never)]
fn counted_short(m: &mut Machine<'_>, ip: *const Op, left: u64, run: u64) -> Flow {
    next::<true>(m, ip, left.wrapping_add(run))
}

/// How every run enters the main program: the handler, op and budget that entering op 0 of
/// the fast copy with the first chunk's budget comes to (what [`goto`] decides at a
/// control transfer), decided once per Vm instead of per run. When the first chunk cannot
/// pay for op 0's run, the run starts in the counted copy ([`enter_counted`]) as `goto`
/// would continue.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) h: Handler,
    pub(crate) ip: *const Op,
    pub(crate) n: u64,
}

// SAFETY: `ip` points into the code of the Vm that holds this value and is only
// dereferenced by that Vm's runs (it is recomputed whenever the code may have moved).
unsafe impl Send for Entry {}

impl Entry {
    /// The entry at op 0 of `code` (the fast copy; the counted copy `delta` bytes after it)
    /// for a first chunk of `chunk` instructions.
    ///
    /// # Safety
    /// `code` must point to op 0 of a compiled program in the fast copy of a live code
    /// array whose counted copy lies `delta` bytes after it.
    pub(crate) unsafe fn of(code: *const Op, delta: usize, chunk: u64) -> Entry {
        // SAFETY: the caller's contract.
        let o = unsafe { &*code };
        match chunk.checked_sub(u64::from(o.run)) {
            Some(left) => Entry {
                h: o.h,
                ip: code,
                n: left,
            },
            None => Entry {
                h: enter_counted,
                ip: code.wrapping_byte_add(delta),
                n: chunk,
            },
        }
    }
}

/// Starts a run in the counted copy at `ip` (see [`Entry`]), as [`counted_short`] does.
fn enter_counted(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    next::<true>(m, ip, n)
}

/// Resumes the counted copy op `ip` after a yield.
pub(crate) fn resume(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    next::<true>(m, ip, n)
}

/// The op at `ip`.
#[inline(always)]
pub(crate) fn op<'o>(ip: *const Op) -> &'o Op {
    // SAFETY: `ip` points into the op array, which outlives the run (invariant on `next`).
    unsafe { &*ip }
}

/// The op after `ip` (only for ops that are not the last of their program).
#[inline(always)]
pub(crate) fn after(ip: *const Op) -> *const Op {
    // SAFETY: non-control ops are never last (the sentinel follows), so `ip + 1` is in the
    // array (invariant on `next`).
    unsafe { ip.add(1) }
}

/// `ip` moved to the fast copy (return addresses are kept there).
#[inline(always)]
fn to_fast<const C: bool>(m: &Machine<'_>, ip: *const Op) -> *const Op {
    if C { ip.wrapping_byte_sub(m.delta) } else { ip }
}

impl Machine<'_> {
    /// Index of `ip` in whichever copy of the code it points into.
    pub(crate) fn index(&self, ip: *const Op) -> usize {
        let code = &vm(self).code;
        let i = (ip as usize).wrapping_sub(code.code.as_ptr() as usize) / std::mem::size_of::<Op>();
        if i >= code.len {
            i.wrapping_sub(code.len)
        } else {
            i
        }
    }

    /// Records a fault at `ip` and ends the chain.
    #[cold]
    #[inline(never)]
    pub(super) fn fault(&mut self, ip: *const Op, kind: FaultKind, n: u64) -> Flow {
        let op = self.index(ip);
        self.stop = Some(Stop::Fault { op, kind });
        self.n = n;
        Flow::Stop
    }
}

pub(super) fn call<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let index = op(ip).a as usize;
    match call_helper(m, index) {
        Ok(()) => next::<C>(m, after(ip), n),
        Err(k) => m.fault(ip, k, n),
    }
}

/// `bpf_map_lookup_elem` on an array map, without the general helper call: the key is read
/// from the current stack frame (where programs keep keys; what `copy_in` would read there),
/// and the value address computed exactly as `ArrayMap::lookup` does (see [`ArrayLookup`]).
/// Anything else (hash maps, a key elsewhere, a bad map argument) takes the general path,
/// which also reports the faults.
pub(super) fn call_lookup<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let (slot, map) = split(m.r[1]);
    if slot == MAP_HANDLE
        && let Some(a) = vm(m).arrays.get(map as usize).copied()
        && a.max_entries != 0
        && let Some(key) = frame_load4(m, m.r[2])
    {
        let key = key as u32;
        m.r[0] = if key < a.max_entries {
            // `ArrayLookup::of` admits only slabs shorter than 4 GiB, so the offset of any
            // index below `max_entries` fits the address's 32-bit offset.
            vaddr(
                FIRST_MAP + map as usize,
                (u64::from(key) * a.elem + a.cpu_off) as u32,
            )
        } else {
            0
        };
        return next::<C>(m, after(ip), n);
    }
    lookup_general::<C>(m, ip, n)
}

/// The 4 bytes at `addr` if they lie in the current call frame's stack, which is readable
/// in full (see `memory`): where programs keep map keys (`r10 - 4`), reached without the
/// region table. `None` for any other address (the caller then asks the windows).
#[inline(always)]
fn frame_load4(m: &Machine<'_>, addr: u64) -> Option<u64> {
    // r10 is the top of the current frame, whose bytes are at `fp`; registers can never
    // change it (writes to r10 compile to faults).
    let off = addr.wrapping_sub(m.r[10]).wrapping_add(STACK_SIZE as u64);
    if off <= (STACK_SIZE - 4) as u64 {
        let mut b = [0u8; 4];
        // SAFETY: `fp` starts the current frame's STACK_SIZE bytes, and `off + 4 <= STACK_SIZE`.
        unsafe { std::ptr::copy_nonoverlapping(m.fp.add(off as usize), b.as_mut_ptr(), 4) };
        Some(u64::from(u32::from_le_bytes(b)))
    } else {
        None
    }
}

/// [`call_lookup`]'s general path, out of line so that the fast path needs no stack frame.
#[inline(never)]
fn lookup_general<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    call::<C>(m, ip, n)
}

/// What [`call_lookup`] needs of one map: an array (plain or per-CPU) whose values are at
/// `index * elem + cpu_off` in its slab, or `max_entries == 0` for any other map.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ArrayLookup {
    pub(crate) max_entries: u32,
    /// Bytes from one index's values to the next (all per-CPU copies).
    pub(crate) elem: u64,
    /// Offset of the running CPU's copy within an index's values.
    pub(crate) cpu_off: u64,
}

impl ArrayLookup {
    /// The lookup parameters of `map` for programs running on `cpu`.
    pub(crate) fn of(map: &crate::maps::Map, cpu: u32) -> ArrayLookup {
        let def = map.def();
        let copies = match def.map_type {
            MapType::Array => 1,
            MapType::PercpuArray => u64::from(map.ncpus().max(1)),
            _ => return ArrayLookup::default(),
        };
        let stride = map.value_stride() as u64;
        if def.key_size != 4 || map.slab().len() > u32::MAX as usize {
            return ArrayLookup::default();
        }
        ArrayLookup {
            max_entries: def.max_entries,
            elem: copies * stride,
            // As `ArrayMap::offset`: CPUs beyond the set wrap around.
            cpu_off: (u64::from(cpu) % copies) * stride,
        }
    }
}

/// Calls helper `index` and, if it added, removed or moved regions (packet adjustment, ring
/// buffer records, a stack watermark), takes a fresh view of the region table and of the
/// `xdp_md` words. Most helpers (map lookups, clocks, checksums) change none.
#[inline(never)]
fn call_helper(m: &mut Machine<'_>, index: usize) -> Result<(), FaultKind> {
    let vm = vm(m);
    let res = helpers::call(index, &mut vm.env(), m.regs());
    if vm.mem.changed() {
        m.view = vm.mem.view();
        m.set_xdp(vm.ctx.xdp_words(&vm.pkt));
        // A moved window, a lowered stack watermark or an open ring buffer record: the run
        // must be finished and the next one prepared the general way (see `Machine::depth`).
        m.set_slow();
    }
    // Output the next run must not see (the packet and the context are laid out anew by
    // every run of a packet program; maps, clock and generator persist by design).
    if !vm.st.printk.is_empty() || vm.st.redirect.is_some() {
        m.set_slow();
    }
    m.r[0] = res?;
    Ok(())
}

pub(super) fn tail_call<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    match tail_call_target(m) {
        // `to` is a program start in the fast copy.
        Ok(Some(to)) => goto::<false>(m, to, n),
        Ok(None) => goto::<C>(m, after(ip), n),
        Err(k) => m.fault(ip, k, n),
    }
}

/// `bpf_tail_call`: the entry of the target program, or `None` to fall through.
#[inline(never)]
fn tail_call_target(m: &mut Machine<'_>) -> Result<Option<*const Op>, FaultKind> {
    let vm = vm(m);
    m.set_slow();
    match helpers::tail_call(
        &mut vm.env(),
        &m.r.first_chunk().copied().unwrap_or([0; 16]),
        &mut m.tail_calls,
    )? {
        TailCallOutcome::Jump(p) => Ok(vm.code.progs.get(p).map(|p| {
            // SAFETY: `p.start` is the first op of a compiled program in the fast copy.
            unsafe { vm.code.code.as_ptr().add(p.start) }
        })),
        TailCallOutcome::FallThrough => Ok(None),
    }
}

pub(super) fn callx<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let id = m.r[op(ip).dst as usize];
    let Some(index) = helpers::resolve_runtime(id, vm(m).ctx.kind) else {
        return m.fault(ip, FaultKind::UnknownHelper { id }, n);
    };
    if index == helpers::TAIL_CALL_INDEX {
        return tail_call::<C>(m, ip, n);
    }
    match call_helper(m, index) {
        Ok(()) => goto::<C>(m, after(ip), n),
        Err(k) => m.fault(ip, k, n),
    }
}

pub(super) fn call_local<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let d = m.frame();
    if d + 1 >= MAX_FRAMES {
        return m.fault(ip, FaultKind::CallDepth, n);
    }
    let r = &m.r;
    vm(m).frames[d % MAX_FRAMES] = Frame {
        ret: to_fast::<C>(m, after(ip)),
        saved: [r[6], r[7], r[8], r[9]],
    };
    let d = d + 1;
    // One more frame, and the run is slow.
    m.depth = d as u64 | SLOW;
    m.max_depth = m.max_depth.max(d);
    // SAFETY: d < MAX_FRAMES, so the frame lies inside the stack buffer.
    m.fp = unsafe { vm(m).stack.ptr().add(d * STACK_SIZE) };
    m.r[10] = vaddr(STACK0 + d, STACK_SIZE as u32);
    goto::<C>(m, super::jump::target::<C>(ip, op(ip)), n)
}

pub(crate) fn exit<const C: bool>(m: &mut Machine<'_>, _ip: *const Op, n: u64) -> Flow {
    if m.depth == 0 {
        // The outermost frame of a clean run.
        m.n = n;
        return Flow::Exit;
    }
    // Returns from calls and ends of slow runs are not rare, but a clean run's exit is laid
    // out first this way (one taken jump fewer on every clean run).
    std::hint::cold_path();
    exit_slow(m, n)
}

/// [`exit`] from a slow run or a subprogram, out of line so that a clean run's `exit` is
/// laid out without a taken jump.
#[inline(never)]
fn exit_slow(m: &mut Machine<'_>, n: u64) -> Flow {
    let d = m.frame();
    if d == 0 {
        m.n = n;
        return Flow::ExitSlow;
    }
    let d = d - 1;
    // A call happened, so the run is slow already.
    m.depth = d as u64 | SLOW;
    let f = vm(m).frames[d % MAX_FRAMES];
    m.r[6] = f.saved[0];
    m.r[7] = f.saved[1];
    m.r[8] = f.saved[2];
    m.r[9] = f.saved[3];
    // SAFETY: d < MAX_FRAMES, so the frame lies inside the stack buffer.
    m.fp = unsafe { vm(m).stack.ptr().add(d * STACK_SIZE) };
    m.r[10] = vaddr(STACK0 + d, STACK_SIZE as u32);
    goto::<false>(m, f.ret, n)
}

pub(super) fn fault_op<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let kind = vm(m)
        .code
        .faults
        .get(op(ip).a as usize)
        .cloned()
        .unwrap_or(FaultKind::FellOffEnd);
    m.fault(ip, kind, n)
}
