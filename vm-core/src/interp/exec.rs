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
//! compare, a branch and a decrement. Instead, a *run* is the straight-line stretch from an op
//! up to and including the next op that can continue elsewhere ([`Op::ends_run`]: jumps,
//! calls, exit, tail calls); [`Op::run`] is its length. Only those run-ending ops count: when
//! one transfers control to `to`, it pays for the whole run starting at `to` at once
//! ([`goto`]). Runs that start at a jump target inside another run overlap it, which is fine:
//! whoever enters a run pays exactly for the instructions that will execute before the next
//! control transfer, and straight-line code cannot leave a run early except by a fault or a
//! legacy packet-load abort (which give back the unexecuted rest, see `ld_abs`).
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
use super::compile::CTX_WORD;
use super::fault::FaultKind;
use super::helpers::{self, TailCallOutcome};
use super::memory::{FIRST_MAP, MAP_HANDLE, MAX_FRAMES, STACK_SIZE, STACK0, View, split, vaddr};
use super::op::{Code, Handler, Op, atomic_kind};
use crate::MapType;

/// Most instructions one chain of handlers executes before returning to the driver (bounds
/// the Rust stack if a build does not turn tail calls into jumps). Runs longer than this
/// execute in the counted copy.
pub(crate) const CHUNK: u64 = 1024;

/// Why a handler chain returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Flow {
    /// `exit` from the outermost frame; r0 holds the return value, `Machine::n` the
    /// unused part of the chunk.
    Exit,
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
    /// Only `r[..16]` is reset per run (`compile` rejects register numbers above 10).
    pub(crate) r: [u64; 256],
    pub(crate) view: View,
    /// Base of the current frame's 512 bytes of stack.
    pub(crate) fp: *mut u8,
    /// Bytes from an op of the fast copy to the same op of the counted copy.
    pub(crate) delta: usize,
    pub(crate) depth: usize,
    /// Deepest frame used in this run (its stacks are re-zeroed before the next run).
    pub(crate) max_depth: usize,
    pub(crate) tail_calls: u32,
    /// Whether this run took a path that may leave state a later run could see (a helper
    /// call, a bpf-to-bpf call, a tail call, a store that missed the windows): the Vm then
    /// finishes the run and resets that state the general way (`Vm::finish_slow`,
    /// `Vm::reset_state`). Runs that never set it need no reset beyond registers and the
    /// stack bytes of `Vm::stack_reset`. Reset to `false` by `Vm::reset_state`.
    pub(crate) slow: bool,
    /// Where to resume after [`Flow::Yield`] (in the counted copy).
    pub(crate) ip: *const Op,
    /// Unused part of the chunk when the chain ended with [`Flow::Exit`] or [`Flow::Stop`].
    pub(crate) n: u64,
    pub(crate) stop: Option<Stop>,
    /// For XDP programs, the values of aligned 32-bit `xdp_md` loads (see
    /// `Ctx::xdp_words`), refreshed after every helper call.
    pub(crate) xdp: Option<[u64; 6]>,
    /// The Vm this run belongs to. `Vm::execute` creates it from its `&mut self` and does not
    /// touch the Vm otherwise until the handler chains have returned, so slow paths may
    /// borrow it mutably (one borrow at a time, never across a handler call).
    pub(crate) vm: *mut Vm,
    pub(crate) _vm: PhantomData<&'v mut Vm>,
}

impl Machine<'_> {
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

/// Continues in the counted copy at `ip` (a run the chunk cannot pay for in full), `n` being
/// `left + run`: rebuilt out of line, so that [`pay`]'s hot path need not keep `n` alive.
#[cold]
#[inline(never)]
fn counted_short(m: &mut Machine<'_>, ip: *const Op, left: u64, run: u64) -> Flow {
    next::<true>(m, ip, left.wrapping_add(run))
}

/// Enters the fast copy op `ip` at the start of a chunk (program entry).
#[inline(always)]
pub(crate) fn enter(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    goto::<false>(m, ip, n)
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

fn call<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let index = op(ip).a as usize;
    match call_helper(m, index) {
        Ok(()) => next::<C>(m, after(ip), n),
        Err(k) => m.fault(ip, k, n),
    }
}

/// `bpf_map_lookup_elem` on an array map, without the general helper call: the key is read
/// through the same windows `copy_in` checks, and the value address computed exactly as
/// `ArrayMap::lookup` does (see [`ArrayLookup`]). Anything else (hash maps, a key the windows
/// refuse, a bad map argument) takes the general path, which also reports the faults.
fn call_lookup<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let (slot, map) = split(m.r[1]);
    if slot == MAP_HANDLE
        && let Some(a) = vm(m).arrays.get(map as usize).copied()
        && a.max_entries != 0
        && let Some(key) = m.view.load::<4>(m.r[2])
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
        m.xdp = vm.ctx.xdp_words(&vm.pkt);
        // A moved window, a lowered stack watermark or an open ring buffer record: the run
        // must be finished and the next one prepared the general way (see `Machine::slow`).
        m.slow = true;
    }
    // Output the next run must not see (the packet and the context are laid out anew by
    // every run of a packet program; maps, clock and generator persist by design).
    if !vm.st.printk.is_empty() || vm.st.redirect.is_some() {
        m.slow = true;
    }
    m.r[0] = res?;
    Ok(())
}

fn tail_call<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
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
    m.slow = true;
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

fn callx<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
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

fn call_local<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    if m.depth + 1 >= MAX_FRAMES {
        return m.fault(ip, FaultKind::CallDepth, n);
    }
    m.slow = true;
    let r = &m.r;
    vm(m).frames[m.depth % MAX_FRAMES] = Frame {
        ret: to_fast::<C>(m, after(ip)),
        saved: [r[6], r[7], r[8], r[9]],
    };
    m.depth += 1;
    m.max_depth = m.max_depth.max(m.depth);
    // SAFETY: depth < MAX_FRAMES, so the frame lies inside the stack buffer.
    m.fp = unsafe { vm(m).stack.ptr().add(m.depth * STACK_SIZE) };
    m.r[10] = vaddr(STACK0 + m.depth, STACK_SIZE as u32);
    goto::<C>(m, super::jump::target::<C>(ip, op(ip)), n)
}

pub(crate) fn exit<const C: bool>(m: &mut Machine<'_>, _ip: *const Op, n: u64) -> Flow {
    if m.depth == 0 {
        m.n = n;
        return Flow::Exit;
    }
    m.depth -= 1;
    let f = vm(m).frames[m.depth % MAX_FRAMES];
    m.r[6] = f.saved[0];
    m.r[7] = f.saved[1];
    m.r[8] = f.saved[2];
    m.r[9] = f.saved[3];
    // SAFETY: depth < MAX_FRAMES, so the frame lies inside the stack buffer.
    m.fp = unsafe { vm(m).stack.ptr().add(m.depth * STACK_SIZE) };
    m.r[10] = vaddr(STACK0 + m.depth, STACK_SIZE as u32);
    goto::<false>(m, f.ret, n)
}

fn fault_op<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let kind = vm(m)
        .code
        .faults
        .get(op(ip).a as usize)
        .cloned()
        .unwrap_or(FaultKind::FellOffEnd);
    m.fault(ip, kind, n)
}

/// Picks the fast-copy or counted-copy instance of a handler.
macro_rules! pick {
    ($c:expr, $f:ident) => {
        if $c {
            $f::<true> as Handler
        } else {
            $f::<false> as Handler
        }
    };
}

/// The handler of `op`, for the counted copy (`counted`) or the fast copy: [`handler`] of
/// its code, with atomics specialised by operation.
pub(crate) fn handler_of(op: &Op, counted: bool) -> Handler {
    use super::mem_ops::{atomic_rmw, ctx_ldxw};
    macro_rules! rmw {
        ($w:literal, $k:expr) => {
            if counted {
                atomic_rmw::<true, $w, { $k }> as Handler
            } else {
                atomic_rmw::<false, $w, { $k }> as Handler
            }
        };
    }
    let kind = op.aux & !atomic_kind::FETCH;
    match (op.code, kind) {
        (Code::Atomic64, atomic_kind::ADD) => rmw!(8, atomic_kind::ADD),
        (Code::Atomic64, atomic_kind::OR) => rmw!(8, atomic_kind::OR),
        (Code::Atomic64, atomic_kind::AND) => rmw!(8, atomic_kind::AND),
        (Code::Atomic64, atomic_kind::XOR) => rmw!(8, atomic_kind::XOR),
        (Code::Atomic32, atomic_kind::ADD) => rmw!(4, atomic_kind::ADD),
        (Code::Atomic32, atomic_kind::OR) => rmw!(4, atomic_kind::OR),
        (Code::Atomic32, atomic_kind::AND) => rmw!(4, atomic_kind::AND),
        (Code::Atomic32, atomic_kind::XOR) => rmw!(4, atomic_kind::XOR),
        (Code::Call, _) if op.a as usize == helpers::LOOKUP_INDEX => pick!(counted, call_lookup),
        (Code::LdxW, _) if op.aux == CTX_WORD => pick!(counted, ctx_ldxw),
        _ => handler(op.code, counted),
    }
}

/// The handler of each op code, for the counted copy (`counted`) or the fast copy.
pub(crate) fn handler(code: Code, counted: bool) -> Handler {
    use super::alu::*;
    use super::jump::*;
    use super::mem_ops::*;
    use Code::*;
    match code {
        Add64K => pick!(counted, add64k),
        Add64X => pick!(counted, add64x),
        Sub64K => pick!(counted, sub64k),
        Sub64X => pick!(counted, sub64x),
        Mul64K => pick!(counted, mul64k),
        Mul64X => pick!(counted, mul64x),
        Div64K => pick!(counted, div64k),
        Div64X => pick!(counted, div64x),
        SDiv64K => pick!(counted, sdiv64k),
        SDiv64X => pick!(counted, sdiv64x),
        Mod64K => pick!(counted, mod64k),
        Mod64X => pick!(counted, mod64x),
        SMod64K => pick!(counted, smod64k),
        SMod64X => pick!(counted, smod64x),
        Or64K => pick!(counted, or64k),
        Or64X => pick!(counted, or64x),
        And64K => pick!(counted, and64k),
        And64X => pick!(counted, and64x),
        Lsh64K => pick!(counted, lsh64k),
        Lsh64X => pick!(counted, lsh64x),
        Rsh64K => pick!(counted, rsh64k),
        Rsh64X => pick!(counted, rsh64x),
        Arsh64K => pick!(counted, arsh64k),
        Arsh64X => pick!(counted, arsh64x),
        Xor64K => pick!(counted, xor64k),
        Xor64X => pick!(counted, xor64x),
        Mov64K => pick!(counted, mov64k),
        Mov64X => pick!(counted, mov64x),
        MovSx8To64 => pick!(counted, movsx8to64),
        MovSx16To64 => pick!(counted, movsx16to64),
        MovSx32To64 => pick!(counted, movsx32to64),
        Neg64 => pick!(counted, neg64),
        Add32K => pick!(counted, add32k),
        Add32X => pick!(counted, add32x),
        Sub32K => pick!(counted, sub32k),
        Sub32X => pick!(counted, sub32x),
        Mul32K => pick!(counted, mul32k),
        Mul32X => pick!(counted, mul32x),
        Div32K => pick!(counted, div32k),
        Div32X => pick!(counted, div32x),
        SDiv32K => pick!(counted, sdiv32k),
        SDiv32X => pick!(counted, sdiv32x),
        Mod32K => pick!(counted, mod32k),
        Mod32X => pick!(counted, mod32x),
        SMod32K => pick!(counted, smod32k),
        SMod32X => pick!(counted, smod32x),
        Or32K => pick!(counted, or32k),
        Or32X => pick!(counted, or32x),
        And32K => pick!(counted, and32k),
        And32X => pick!(counted, and32x),
        Lsh32K => pick!(counted, lsh32k),
        Lsh32X => pick!(counted, lsh32x),
        Rsh32K => pick!(counted, rsh32k),
        Rsh32X => pick!(counted, rsh32x),
        Arsh32K => pick!(counted, arsh32k),
        Arsh32X => pick!(counted, arsh32x),
        Xor32K => pick!(counted, xor32k),
        Xor32X => pick!(counted, xor32x),
        Mov32K => pick!(counted, mov32k),
        Mov32X => pick!(counted, mov32x),
        MovSx8To32 => pick!(counted, movsx8to32),
        MovSx16To32 => pick!(counted, movsx16to32),
        Neg32 => pick!(counted, neg32),
        Trunc16 => pick!(counted, trunc16),
        Trunc32 => pick!(counted, trunc32),
        Nop => pick!(counted, nop),
        Swap16 => pick!(counted, swap16),
        Swap32 => pick!(counted, swap32),
        Swap64 => pick!(counted, swap64),
        LdxB => pick!(counted, ldxb),
        LdxH => pick!(counted, ldxh),
        LdxW => pick!(counted, ldxw),
        LdxDW => pick!(counted, ldxdw),
        LdxSB => pick!(counted, ldxsb),
        LdxSH => pick!(counted, ldxsh),
        LdxSW => pick!(counted, ldxsw),
        StB => pick!(counted, stb),
        StH => pick!(counted, sth),
        StW => pick!(counted, stw),
        StDW => pick!(counted, stdw),
        StxB => pick!(counted, stxb),
        StxH => pick!(counted, stxh),
        StxW => pick!(counted, stxw),
        StxDW => pick!(counted, stxdw),
        StackLdxB => pick!(counted, stack_ldxb),
        StackLdxH => pick!(counted, stack_ldxh),
        StackLdxW => pick!(counted, stack_ldxw),
        StackLdxDW => pick!(counted, stack_ldxdw),
        StackLdxSB => pick!(counted, stack_ldxsb),
        StackLdxSH => pick!(counted, stack_ldxsh),
        StackLdxSW => pick!(counted, stack_ldxsw),
        StackStB => pick!(counted, stack_stb),
        StackStH => pick!(counted, stack_sth),
        StackStW => pick!(counted, stack_stw),
        StackStDW => pick!(counted, stack_stdw),
        StackStxB => pick!(counted, stack_stxb),
        StackStxH => pick!(counted, stack_stxh),
        StackStxW => pick!(counted, stack_stxw),
        StackStxDW => pick!(counted, stack_stxdw),
        Atomic32 => pick!(counted, atomic32),
        Atomic64 => pick!(counted, atomic64),
        LdImm64 => pick!(counted, ldimm64),
        LdAbs | LdInd => pick!(counted, ld_abs),
        Ja => pick!(counted, ja),
        Jeq64K => pick!(counted, jeq64k),
        Jeq64X => pick!(counted, jeq64x),
        Jgt64K => pick!(counted, jgt64k),
        Jgt64X => pick!(counted, jgt64x),
        Jge64K => pick!(counted, jge64k),
        Jge64X => pick!(counted, jge64x),
        Jset64K => pick!(counted, jset64k),
        Jset64X => pick!(counted, jset64x),
        Jne64K => pick!(counted, jne64k),
        Jne64X => pick!(counted, jne64x),
        Jsgt64K => pick!(counted, jsgt64k),
        Jsgt64X => pick!(counted, jsgt64x),
        Jsge64K => pick!(counted, jsge64k),
        Jsge64X => pick!(counted, jsge64x),
        Jlt64K => pick!(counted, jlt64k),
        Jlt64X => pick!(counted, jlt64x),
        Jle64K => pick!(counted, jle64k),
        Jle64X => pick!(counted, jle64x),
        Jslt64K => pick!(counted, jslt64k),
        Jslt64X => pick!(counted, jslt64x),
        Jsle64K => pick!(counted, jsle64k),
        Jsle64X => pick!(counted, jsle64x),
        Jeq32K => pick!(counted, jeq32k),
        Jeq32X => pick!(counted, jeq32x),
        Jgt32K => pick!(counted, jgt32k),
        Jgt32X => pick!(counted, jgt32x),
        Jge32K => pick!(counted, jge32k),
        Jge32X => pick!(counted, jge32x),
        Jset32K => pick!(counted, jset32k),
        Jset32X => pick!(counted, jset32x),
        Jne32K => pick!(counted, jne32k),
        Jne32X => pick!(counted, jne32x),
        Jsgt32K => pick!(counted, jsgt32k),
        Jsgt32X => pick!(counted, jsgt32x),
        Jsge32K => pick!(counted, jsge32k),
        Jsge32X => pick!(counted, jsge32x),
        Jlt32K => pick!(counted, jlt32k),
        Jlt32X => pick!(counted, jlt32x),
        Jle32K => pick!(counted, jle32k),
        Jle32X => pick!(counted, jle32x),
        Jslt32K => pick!(counted, jslt32k),
        Jslt32X => pick!(counted, jslt32x),
        Jsle32K => pick!(counted, jsle32k),
        Jsle32X => pick!(counted, jsle32x),
        Call => pick!(counted, call),
        TailCall => pick!(counted, tail_call),
        CallX => pick!(counted, callx),
        CallLocal => pick!(counted, call_local),
        Exit => pick!(counted, exit),
        Fault => pick!(counted, fault_op),
    }
}
