//! The run loop, as threaded handlers: each op carries a pointer to a small function that
//! executes it and then jumps straight to the next op's handler.
//!
//! Why not a `loop { match op.code { .. } }`: measured on the project's machines (AMD EPYC
//! under KVM), the single indirect jump of a central `match` is mispredicted almost every
//! time (about 6.8 ns per instruction for a trivial three-op loop), while one indirect jump
//! *per handler* is predicted well (about 1.5 ns): each handler's jump site learns its own
//! successor. Rust has no computed goto, so handlers end in a call in tail position
//! ([`next`]), which LLVM turns into a plain `jmp` (verified in the generated code at
//! opt-level 1 and 3).
//!
//! Safety of the stack without guaranteed tail calls: every handler chain executes at most
//! `n` instructions (`n` is passed along and decremented per instruction) and then returns
//! to the driver, so even if a build did not turn the tail calls into jumps, the Rust stack
//! would hold at most [`CHUNK`] handler frames. The same countdown makes the instruction
//! budget exact at no extra cost: the driver hands out the budget in chunks.
//!
//! Everything unusual (ctx fields, faults, helpers) leaves the handlers through `#[cold]`
//! functions so the handlers stay small.

use super::compile::ProgCode;
use super::env::Env;
use super::fault::{Access, FaultKind};
use super::helpers::{self, TailCallOutcome};
use super::memory::{CTX, MAX_FRAMES, STACK_SIZE, STACK0, View, split, vaddr};
use super::op::{Code, Handler, Op, atomic_kind};

/// Most instructions one chain of handlers executes before returning to the driver (bounds
/// the Rust stack if a build does not turn tail calls into jumps).
pub(crate) const CHUNK: u64 = 512;

/// Why a handler chain returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Flow {
    /// `exit` from the outermost frame; r0 holds the return value, `Machine::n` the
    /// unused part of the chunk.
    Exit,
    /// The chunk is used up; `Machine::ip` is the next op to execute.
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

/// One run in progress. Registers come first so handlers address them with small offsets.
#[repr(C)]
pub(crate) struct Machine<'v> {
    pub(crate) r: [u64; 16],
    pub(crate) view: View,
    /// Base of the current frame's 512 bytes of stack.
    pub(crate) fp: *mut u8,
    pub(crate) env: Env<'v>,
    /// Start of the op array (for op indices and tail-call entries).
    pub(crate) base: *const Op,
    /// Start of the plain (unfused) copy of the op array; same length.
    pub(crate) plain: *const Op,
    /// Length of both arrays.
    pub(crate) len: usize,
    pub(crate) progs: &'v [ProgCode],
    pub(crate) faults: &'v [FaultKind],
    pub(crate) frames: &'v mut [Frame; MAX_FRAMES],
    pub(crate) depth: usize,
    /// Deepest frame used in this run (its stacks are re-zeroed before the next run).
    pub(crate) max_depth: usize,
    /// Base of the `MAX_FRAMES * STACK_SIZE` stack buffer.
    pub(crate) stack: *mut u8,
    pub(crate) tail_calls: u32,
    /// Where to resume after [`Flow::Yield`].
    pub(crate) ip: *const Op,
    /// Unused part of the chunk when the chain ended with [`Flow::Exit`] or [`Flow::Stop`].
    pub(crate) n: u64,
    pub(crate) stop: Option<Stop>,
}

/// Executes the op at `ip` if the chunk allows one more instruction, else yields.
///
/// Invariant that makes the pointer dereferences in handlers sound: `ip` always points into
/// the op array. It holds initially (the driver starts at a program start), every jump and
/// call target was checked by `compile` to lie inside its program, every program ends with
/// a `Fault` sentinel so `ip + 1` from any other op stays inside, return addresses are
/// `call + 1` (never past the sentinel), and tail calls go to a program start.
#[inline(always)]
pub(crate) fn next(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    if n == 0 {
        m.ip = ip;
        return Flow::Yield;
    }
    // SAFETY: `ip` points into the op array (invariant above).
    let h = unsafe { (*ip).h };
    h(m, ip, n - 1)
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

/// The jump or call target of the op at `ip`.
#[inline(always)]
fn target(ip: *const Op, o: &Op) -> *const Op {
    // SAFETY: `compile` checked that the target lies inside the same program.
    unsafe { ip.offset(o.rel()) }
}

impl Machine<'_> {
    /// Index of `ip` in whichever copy of the code it points into.
    pub(crate) fn index(&self, ip: *const Op) -> usize {
        let (a, b, p) = (self.base as usize, self.plain as usize, ip as usize);
        let size = std::mem::size_of::<Op>();
        if (a..a + self.len * size).contains(&p) {
            (p - a) / size
        } else {
            p.wrapping_sub(b) / size
        }
    }

    /// The same index in the fused copy (where each chunk of the budget starts).
    pub(crate) fn to_fused(&self, ip: *const Op) -> *const Op {
        let i = self.index(ip).min(self.len.saturating_sub(1));
        // SAFETY: i < len, the length of the fused array.
        unsafe { self.base.add(i) }
    }

    /// Records a fault at `ip` and ends the chain.
    #[cold]
    #[inline(never)]
    fn fault(&mut self, ip: *const Op, kind: FaultKind, n: u64) -> Flow {
        let op = self.index(ip);
        self.stop = Some(Stop::Fault { op, kind });
        self.n = n;
        Flow::Stop
    }

    /// Loads that missed every window: context fields, or a fault.
    #[cold]
    #[inline(never)]
    fn slow_load(&mut self, addr: u64, size: u32, signed: bool) -> Result<u64, FaultKind> {
        let (slot, off) = split(addr);
        if slot == CTX {
            return self.env.ctx.load(self.env.pkt, off as i64, size, signed);
        }
        Err(self.env.mem.fault(addr, size, Access::Read))
    }

    /// Stores that missed every window: context fields, or a fault.
    #[cold]
    #[inline(never)]
    fn slow_store(&mut self, addr: u64, size: u32, v: u64) -> Result<(), FaultKind> {
        let (slot, off) = split(addr);
        if slot == CTX {
            return self.env.ctx.store(off as i64, size, v);
        }
        Err(self.env.mem.fault(addr, size, Access::Write))
    }
}

macro_rules! load {
    ($name:ident, $n:literal, |$v:ident| $conv:expr) => {
        fn $name(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
            let o = op(ip);
            let addr = m.r[(o.src & 15) as usize].wrapping_add(o.off());
            let Some($v) = m.view.load::<$n>(addr) else {
                return load_slow(m, ip, n);
            };
            m.r[(o.dst & 15) as usize] = $conv;
            next(m, after(ip), n)
        }
    };
}

/// A load that missed every window (context fields, faults). Kept out of the fast
/// handlers so they need no stack frame.
#[cold]
#[inline(never)]
fn load_slow(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    let addr = m.r[(o.src & 15) as usize].wrapping_add(o.off());
    let (size, signed) = match o.code {
        Code::LdxB => (1, false),
        Code::LdxH => (2, false),
        Code::LdxW => (4, false),
        Code::LdxSB => (1, true),
        Code::LdxSH => (2, true),
        Code::LdxSW => (4, true),
        _ => (8, false),
    };
    let v = match m.slow_load(addr, size, signed) {
        Ok(v) => v,
        Err(k) => return m.fault(ip, k, n),
    };
    m.r[(o.dst & 15) as usize] = match (size, signed) {
        (1, true) => v as i8 as i64 as u64,
        (2, true) => v as i16 as i64 as u64,
        (4, true) => v as i32 as i64 as u64,
        _ => v,
    };
    next(m, after(ip), n)
}

load!(ldxb, 1, |v| v);
load!(ldxh, 2, |v| v);
load!(ldxw, 4, |v| v);
load!(ldxdw, 8, |v| v);
load!(ldxsb, 1, |v| v as i8 as i64 as u64);
load!(ldxsh, 2, |v| v as i16 as i64 as u64);
load!(ldxsw, 4, |v| v as i32 as i64 as u64);

macro_rules! store {
    ($name:ident, $n:literal, |$m:ident, $o:ident| $val:expr) => {
        fn $name($m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
            let $o = op(ip);
            let addr = $m.r[($o.dst & 15) as usize].wrapping_add($o.off());
            let v: u64 = $val;
            if $m.view.store::<$n>(addr, v).is_none() {
                return store_slow($m, ip, n);
            }
            next($m, after(ip), n)
        }
    };
}

/// A store that missed every window (context fields, faults).
#[cold]
#[inline(never)]
fn store_slow(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    let addr = m.r[(o.dst & 15) as usize].wrapping_add(o.off());
    let (size, imm) = match o.code {
        Code::StB => (1, true),
        Code::StH => (2, true),
        Code::StW => (4, true),
        Code::StDW => (8, true),
        Code::StxB => (1, false),
        Code::StxH => (2, false),
        Code::StxW => (4, false),
        _ => (8, false),
    };
    let v = if imm { o.b } else { m.r[(o.src & 15) as usize] };
    match m.slow_store(addr, size, v) {
        Ok(()) => next(m, after(ip), n),
        Err(k) => m.fault(ip, k, n),
    }
}

store!(stb, 1, |m, o| o.b);
store!(sth, 2, |m, o| o.b);
store!(stw, 4, |m, o| o.b);
store!(stdw, 8, |m, o| o.b);
store!(stxb, 1, |m, o| m.r[(o.src & 15) as usize]);
store!(stxh, 2, |m, o| m.r[(o.src & 15) as usize]);
store!(stxw, 4, |m, o| m.r[(o.src & 15) as usize]);
store!(stxdw, 8, |m, o| m.r[(o.src & 15) as usize]);

// Stack ops: `a + N <= STACK_SIZE` was proven by `compile::mem_op`, and `fp` is the start of
// one of the MAX_FRAMES frames of the stack buffer, so `fp + a .. fp + a + N` is inside it.
macro_rules! stack_load {
    ($name:ident, $n:literal, |$v:ident| $conv:expr) => {
        fn $name(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
            let o = op(ip);
            let mut b = [0u8; 8];
            // SAFETY: see the comment above these macros.
            unsafe { std::ptr::copy_nonoverlapping(m.fp.add(o.a as usize), b.as_mut_ptr(), $n) };
            let $v = u64::from_le_bytes(b);
            m.r[(o.dst & 15) as usize] = $conv;
            next(m, after(ip), n)
        }
    };
}

stack_load!(stack_ldxb, 1, |v| v);
stack_load!(stack_ldxh, 2, |v| v);
stack_load!(stack_ldxw, 4, |v| v);
stack_load!(stack_ldxdw, 8, |v| v);
stack_load!(stack_ldxsb, 1, |v| v as i8 as i64 as u64);
stack_load!(stack_ldxsh, 2, |v| v as i16 as i64 as u64);
stack_load!(stack_ldxsw, 4, |v| v as i32 as i64 as u64);

macro_rules! stack_store {
    ($name:ident, $n:literal, |$m:ident, $o:ident| $val:expr) => {
        fn $name($m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
            let $o = op(ip);
            let b = ($val as u64).to_le_bytes();
            // SAFETY: see the comment above these macros.
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), $m.fp.add($o.a as usize), $n) };
            next($m, after(ip), n)
        }
    };
}

stack_store!(stack_stb, 1, |m, o| o.b);
stack_store!(stack_sth, 2, |m, o| o.b);
stack_store!(stack_stw, 4, |m, o| o.b);
stack_store!(stack_stdw, 8, |m, o| o.b);
stack_store!(stack_stxb, 1, |m, o| m.r[(o.src & 15) as usize]);
stack_store!(stack_stxh, 2, |m, o| m.r[(o.src & 15) as usize]);
stack_store!(stack_stxw, 4, |m, o| m.r[(o.src & 15) as usize]);
stack_store!(stack_stxdw, 8, |m, o| m.r[(o.src & 15) as usize]);

fn atomic32(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    match atomic(m, op(ip), false) {
        Ok(()) => next(m, after(ip), n),
        Err(k) => m.fault(ip, k, n),
    }
}

fn atomic64(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    match atomic(m, op(ip), true) {
        Ok(()) => next(m, after(ip), n),
        Err(k) => m.fault(ip, k, n),
    }
}

/// Atomic read-modify-write (single-threaded, so a plain read then write is atomic).
#[inline(never)]
fn atomic(m: &mut Machine<'_>, o: &Op, wide: bool) -> Result<(), FaultKind> {
    let size = if wide { 8 } else { 4 };
    let addr = m.r[(o.dst & 15) as usize].wrapping_add(o.off());
    let Some(p) = m.view.wr(addr, size) else {
        let (slot, off) = split(addr);
        if slot == CTX {
            return Err(FaultKind::Ctx {
                access: Access::Write,
                size,
                offset: off as i64,
                reason: "atomic operations on the context are not allowed",
            });
        }
        // Report the read half first if the memory is not even readable.
        let access = if m.view.rd(addr, size).is_some() {
            Access::Write
        } else {
            Access::Read
        };
        return Err(m.env.mem.fault(addr, size, access));
    };
    let s = (o.src & 15) as usize;
    let mut b = [0u8; 8];
    // SAFETY: `wr` checked that `size` bytes at `p` are inside a live writable window.
    unsafe { std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), size as usize) };
    let old = u64::from_le_bytes(b);
    let mask = if wide { u64::MAX } else { u32::MAX as u64 };
    let src = m.r[s] & mask;
    let kind = o.aux & 7;
    let new = match kind {
        atomic_kind::ADD => old.wrapping_add(src),
        atomic_kind::OR => old | src,
        atomic_kind::AND => old & src,
        atomic_kind::XOR => old ^ src,
        atomic_kind::XCHG => src,
        // CMPXCHG: compare with r0 (its low half for the 32-bit form).
        _ if old == m.r[0] & mask => src,
        _ => old,
    } & mask;
    let nb = new.to_le_bytes();
    // SAFETY: as above.
    unsafe { std::ptr::copy_nonoverlapping(nb.as_ptr(), p, size as usize) };
    if kind == atomic_kind::CMPXCHG {
        m.r[0] = old;
    } else if o.aux & atomic_kind::FETCH != 0 {
        m.r[s] = old;
    }
    Ok(())
}

fn ld_abs(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    let off = if o.code == Code::LdAbs {
        o.b
    } else {
        m.r[(o.src & 15) as usize].wrapping_add(o.b)
    };
    match helpers::skb::ld_abs(m.env.pkt, off as i32, o.aux as usize) {
        Some(v) => {
            m.r[0] = v;
            next(m, after(ip), n)
        }
        None => {
            m.r[0] = 0;
            m.stop = Some(Stop::Abort);
            m.n = n;
            Flow::Stop
        }
    }
}

fn ja(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    next(m, target(ip, op(ip)), n)
}

macro_rules! jcc {
    ($name:ident, |$r:ident, $o:ident, $d:ident, $s:ident| $cond:expr) => {
        fn $name(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
            let $o = op(ip);
            let $d = ($o.dst & 15) as usize;
            #[allow(unused_variables)]
            let $s = ($o.src & 15) as usize;
            let $r = &m.r;
            let to = if $cond { target(ip, $o) } else { after(ip) };
            next(m, to, n)
        }
    };
}

jcc!(jeq64k, |r, o, d, s| r[d] == o.jimm64());
jcc!(jeq64x, |r, o, d, s| r[d] == r[s]);
jcc!(jgt64k, |r, o, d, s| r[d] > o.jimm64());
jcc!(jgt64x, |r, o, d, s| r[d] > r[s]);
jcc!(jge64k, |r, o, d, s| r[d] >= o.jimm64());
jcc!(jge64x, |r, o, d, s| r[d] >= r[s]);
jcc!(jset64k, |r, o, d, s| r[d] & o.jimm64() != 0);
jcc!(jset64x, |r, o, d, s| r[d] & r[s] != 0);
jcc!(jne64k, |r, o, d, s| r[d] != o.jimm64());
jcc!(jne64x, |r, o, d, s| r[d] != r[s]);
jcc!(jsgt64k, |r, o, d, s| (r[d] as i64) > o.jimm64() as i64);
jcc!(jsgt64x, |r, o, d, s| (r[d] as i64) > r[s] as i64);
jcc!(jsge64k, |r, o, d, s| (r[d] as i64) >= o.jimm64() as i64);
jcc!(jsge64x, |r, o, d, s| (r[d] as i64) >= r[s] as i64);
jcc!(jlt64k, |r, o, d, s| r[d] < o.jimm64());
jcc!(jlt64x, |r, o, d, s| r[d] < r[s]);
jcc!(jle64k, |r, o, d, s| r[d] <= o.jimm64());
jcc!(jle64x, |r, o, d, s| r[d] <= r[s]);
jcc!(jslt64k, |r, o, d, s| (r[d] as i64) < o.jimm64() as i64);
jcc!(jslt64x, |r, o, d, s| (r[d] as i64) < r[s] as i64);
jcc!(jsle64k, |r, o, d, s| (r[d] as i64) <= o.jimm64() as i64);
jcc!(jsle64x, |r, o, d, s| (r[d] as i64) <= r[s] as i64);
jcc!(jeq32k, |r, o, d, s| r[d] as u32 == o.jimm32());
jcc!(jeq32x, |r, o, d, s| r[d] as u32 == r[s] as u32);
jcc!(jgt32k, |r, o, d, s| r[d] as u32 > o.jimm32());
jcc!(jgt32x, |r, o, d, s| r[d] as u32 > r[s] as u32);
jcc!(jge32k, |r, o, d, s| r[d] as u32 >= o.jimm32());
jcc!(jge32x, |r, o, d, s| r[d] as u32 >= r[s] as u32);
jcc!(jset32k, |r, o, d, s| r[d] as u32 & o.jimm32() != 0);
jcc!(jset32x, |r, o, d, s| r[d] as u32 & r[s] as u32 != 0);
jcc!(jne32k, |r, o, d, s| r[d] as u32 != o.jimm32());
jcc!(jne32x, |r, o, d, s| r[d] as u32 != r[s] as u32);
jcc!(jsgt32k, |r, o, d, s| r[d] as i32 > o.jimm32() as i32);
jcc!(jsgt32x, |r, o, d, s| r[d] as i32 > r[s] as i32);
jcc!(jsge32k, |r, o, d, s| r[d] as i32 >= o.jimm32() as i32);
jcc!(jsge32x, |r, o, d, s| r[d] as i32 >= r[s] as i32);
jcc!(jlt32k, |r, o, d, s| (r[d] as u32) < o.jimm32());
jcc!(jlt32x, |r, o, d, s| (r[d] as u32) < r[s] as u32);
jcc!(jle32k, |r, o, d, s| r[d] as u32 <= o.jimm32());
jcc!(jle32x, |r, o, d, s| r[d] as u32 <= r[s] as u32);
jcc!(jslt32k, |r, o, d, s| (r[d] as i32) < o.jimm32() as i32);
jcc!(jslt32x, |r, o, d, s| (r[d] as i32) < r[s] as i32);
jcc!(jsle32k, |r, o, d, s| r[d] as i32 <= o.jimm32() as i32);
jcc!(jsle32x, |r, o, d, s| r[d] as i32 <= r[s] as i32);

fn call(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let index = op(ip).a as usize;
    match call_helper(m, index) {
        Ok(()) => next(m, after(ip), n),
        Err(k) => m.fault(ip, k, n),
    }
}

/// Calls helper `index` and takes a fresh view of the region table (helpers may add or
/// move regions).
#[inline(never)]
fn call_helper(m: &mut Machine<'_>, index: usize) -> Result<(), FaultKind> {
    let res = helpers::call(index, &mut m.env, &m.r);
    m.view = m.env.mem.view();
    m.r[0] = res?;
    Ok(())
}

fn tail_call(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    match tail_call_target(m) {
        Ok(Some(to)) => next(m, to, n),
        Ok(None) => next(m, after(ip), n),
        Err(k) => m.fault(ip, k, n),
    }
}

/// `bpf_tail_call`: the entry of the target program, or `None` to fall through.
#[inline(never)]
fn tail_call_target(m: &mut Machine<'_>) -> Result<Option<*const Op>, FaultKind> {
    match helpers::tail_call(&mut m.env, &m.r, &mut m.tail_calls)? {
        TailCallOutcome::Jump(p) => Ok(m.progs.get(p).map(|p| {
            // SAFETY: `p.start` is the first op of a compiled program in the same array.
            unsafe { m.base.add(p.start) }
        })),
        TailCallOutcome::FallThrough => Ok(None),
    }
}

fn callx(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let id = m.r[(op(ip).dst & 15) as usize];
    let Some(index) = helpers::resolve_runtime(id, m.env.ctx.kind) else {
        return m.fault(ip, FaultKind::UnknownHelper { id }, n);
    };
    if index == helpers::TAIL_CALL_INDEX {
        return tail_call(m, ip, n);
    }
    match call_helper(m, index) {
        Ok(()) => next(m, after(ip), n),
        Err(k) => m.fault(ip, k, n),
    }
}

fn call_local(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    if m.depth + 1 >= MAX_FRAMES {
        return m.fault(ip, FaultKind::CallDepth, n);
    }
    let r = &m.r;
    m.frames[m.depth % MAX_FRAMES] = Frame {
        ret: after(ip),
        saved: [r[6], r[7], r[8], r[9]],
    };
    m.depth += 1;
    m.max_depth = m.max_depth.max(m.depth);
    // SAFETY: depth < MAX_FRAMES, so the frame lies inside the stack buffer.
    m.fp = unsafe { m.stack.add(m.depth * STACK_SIZE) };
    m.r[10] = vaddr(STACK0 + m.depth, STACK_SIZE as u32);
    next(m, target(ip, op(ip)), n)
}

fn exit(m: &mut Machine<'_>, _ip: *const Op, n: u64) -> Flow {
    if m.depth == 0 {
        m.n = n;
        return Flow::Exit;
    }
    m.depth -= 1;
    let f = m.frames[m.depth % MAX_FRAMES];
    m.r[6] = f.saved[0];
    m.r[7] = f.saved[1];
    m.r[8] = f.saved[2];
    m.r[9] = f.saved[3];
    // SAFETY: depth < MAX_FRAMES, so the frame lies inside the stack buffer.
    m.fp = unsafe { m.stack.add(m.depth * STACK_SIZE) };
    m.r[10] = vaddr(STACK0 + m.depth, STACK_SIZE as u32);
    next(m, f.ret, n)
}

fn fault_op(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let kind = m
        .faults
        .get(op(ip).a as usize)
        .cloned()
        .unwrap_or(FaultKind::FellOffEnd);
    m.fault(ip, kind, n)
}

/// The handler of each op code.
pub(crate) fn handler(code: Code) -> Handler {
    use super::alu::*;
    use Code::*;
    match code {
        Add64K => add64k,
        Add64X => add64x,
        Sub64K => sub64k,
        Sub64X => sub64x,
        Mul64K => mul64k,
        Mul64X => mul64x,
        Div64K => div64k,
        Div64X => div64x,
        SDiv64K => sdiv64k,
        SDiv64X => sdiv64x,
        Mod64K => mod64k,
        Mod64X => mod64x,
        SMod64K => smod64k,
        SMod64X => smod64x,
        Or64K => or64k,
        Or64X => or64x,
        And64K => and64k,
        And64X => and64x,
        Lsh64K => lsh64k,
        Lsh64X => lsh64x,
        Rsh64K => rsh64k,
        Rsh64X => rsh64x,
        Arsh64K => arsh64k,
        Arsh64X => arsh64x,
        Xor64K => xor64k,
        Xor64X => xor64x,
        Mov64K => mov64k,
        Mov64X => mov64x,
        MovSx8To64 => movsx8to64,
        MovSx16To64 => movsx16to64,
        MovSx32To64 => movsx32to64,
        Neg64 => neg64,
        Add32K => add32k,
        Add32X => add32x,
        Sub32K => sub32k,
        Sub32X => sub32x,
        Mul32K => mul32k,
        Mul32X => mul32x,
        Div32K => div32k,
        Div32X => div32x,
        SDiv32K => sdiv32k,
        SDiv32X => sdiv32x,
        Mod32K => mod32k,
        Mod32X => mod32x,
        SMod32K => smod32k,
        SMod32X => smod32x,
        Or32K => or32k,
        Or32X => or32x,
        And32K => and32k,
        And32X => and32x,
        Lsh32K => lsh32k,
        Lsh32X => lsh32x,
        Rsh32K => rsh32k,
        Rsh32X => rsh32x,
        Arsh32K => arsh32k,
        Arsh32X => arsh32x,
        Xor32K => xor32k,
        Xor32X => xor32x,
        Mov32K => mov32k,
        Mov32X => mov32x,
        MovSx8To32 => movsx8to32,
        MovSx16To32 => movsx16to32,
        Neg32 => neg32,
        Trunc16 => trunc16,
        Trunc32 => trunc32,
        Nop => nop,
        Swap16 => swap16,
        Swap32 => swap32,
        Swap64 => swap64,
        LdxB => ldxb,
        LdxH => ldxh,
        LdxW => ldxw,
        LdxDW => ldxdw,
        LdxSB => ldxsb,
        LdxSH => ldxsh,
        LdxSW => ldxsw,
        StB => stb,
        StH => sth,
        StW => stw,
        StDW => stdw,
        StxB => stxb,
        StxH => stxh,
        StxW => stxw,
        StxDW => stxdw,
        StackLdxB => stack_ldxb,
        StackLdxH => stack_ldxh,
        StackLdxW => stack_ldxw,
        StackLdxDW => stack_ldxdw,
        StackLdxSB => stack_ldxsb,
        StackLdxSH => stack_ldxsh,
        StackLdxSW => stack_ldxsw,
        StackStB => stack_stb,
        StackStH => stack_sth,
        StackStW => stack_stw,
        StackStDW => stack_stdw,
        StackStxB => stack_stxb,
        StackStxH => stack_stxh,
        StackStxW => stack_stxw,
        StackStxDW => stack_stxdw,
        Atomic32 => atomic32,
        Atomic64 => atomic64,
        LdImm64 => ldimm64,
        LdAbs | LdInd => ld_abs,
        Ja => ja,
        Jeq64K => jeq64k,
        Jeq64X => jeq64x,
        Jgt64K => jgt64k,
        Jgt64X => jgt64x,
        Jge64K => jge64k,
        Jge64X => jge64x,
        Jset64K => jset64k,
        Jset64X => jset64x,
        Jne64K => jne64k,
        Jne64X => jne64x,
        Jsgt64K => jsgt64k,
        Jsgt64X => jsgt64x,
        Jsge64K => jsge64k,
        Jsge64X => jsge64x,
        Jlt64K => jlt64k,
        Jlt64X => jlt64x,
        Jle64K => jle64k,
        Jle64X => jle64x,
        Jslt64K => jslt64k,
        Jslt64X => jslt64x,
        Jsle64K => jsle64k,
        Jsle64X => jsle64x,
        Jeq32K => jeq32k,
        Jeq32X => jeq32x,
        Jgt32K => jgt32k,
        Jgt32X => jgt32x,
        Jge32K => jge32k,
        Jge32X => jge32x,
        Jset32K => jset32k,
        Jset32X => jset32x,
        Jne32K => jne32k,
        Jne32X => jne32x,
        Jsgt32K => jsgt32k,
        Jsgt32X => jsgt32x,
        Jsge32K => jsge32k,
        Jsge32X => jsge32x,
        Jlt32K => jlt32k,
        Jlt32X => jlt32x,
        Jle32K => jle32k,
        Jle32X => jle32x,
        Jslt32K => jslt32k,
        Jslt32X => jslt32x,
        Jsle32K => jsle32k,
        Jsle32X => jsle32x,
        Call => call,
        TailCall => tail_call,
        CallX => callx,
        CallLocal => call_local,
        Exit => exit,
        Fault => fault_op,
    }
}
