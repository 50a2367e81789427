//! Memory-access handlers: loads, stores and atomics through a register or on the stack, the
//! `xdp_md` context word loads, and the legacy packet loads. Their fast paths check one
//! window (see `memory::View`); everything else leaves through `#[cold]` slow paths that apply
//! the general access rules and report faults with the op's location.

use super::exec::{Flow, Machine, Stop, after, next, op, vm};
use super::fault::{Access, FaultKind};
use super::helpers;
use super::memory::{CTX, split, vaddr};
use super::op::{Code, Op, atomic_kind};

macro_rules! load {
    ($name:ident, $n:literal, $signed:literal) => {
        pub(super) fn $name<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
            let o = op(ip);
            let addr = m.r[o.src as usize].wrapping_add(o.off());
            let Some(v) = m.view.load_hot::<$n>(addr) else {
                return load_slow::<C, $n, $signed>(m, ip, n);
            };
            m.r[o.dst as usize] = widen(v, $n, $signed);
            next::<C>(m, after(ip), n)
        }
    };
}

/// A loaded `size`-byte value as the register receives it: zero-extended, or sign-extended
/// by the `ldxs*` forms. (Constant arguments fold it to one instruction or none.)
#[inline(always)]
fn widen(v: u64, size: u32, signed: bool) -> u64 {
    match (size, signed) {
        (1, true) => v as i8 as i64 as u64,
        (2, true) => v as i16 as i64 as u64,
        (4, true) => v as i32 as i64 as u64,
        _ => v,
    }
}

/// A load that missed the hot window (see `View::load_hot`): the other windows (map
/// values, stack through pointers), then `xdp_md` fields, the common case, without the
/// general access rules (and without a stack frame: this is on the path of every XDP
/// program's first instructions), else [`load_general`]. The address is recomputed here
/// rather than passed, so that the handler's hot path need not keep it.
#[inline(never)]
fn load_slow<const C: bool, const N: usize, const S: bool>(
    m: &mut Machine<'_>,
    ip: *const Op,
    n: u64,
) -> Flow {
    let o = op(ip);
    let addr = m.r[o.src as usize].wrapping_add(o.off());
    if let Some(v) = m.view.load::<N>(addr) {
        m.r[o.dst as usize] = widen(v, N as u32, S);
        return next::<C>(m, after(ip), n);
    }
    let (size, signed) = (N as u32, S);
    if size == 4 && !signed && m.xdp_on {
        let off = addr.wrapping_sub(vaddr(CTX, 0));
        if off.is_multiple_of(4)
            && let Some(&v) = m.xdp.get(off as usize / 4).filter(|_| off < 24)
        {
            m.r[op(ip).dst as usize] = v;
            return next::<C>(m, after(ip), n);
        }
    }
    load_general::<C>(m, ip, n, addr, size, signed)
}

/// Loads through the general access rules: context fields and faults.
#[cold]
#[inline(never)]
fn load_general<const C: bool>(
    m: &mut Machine<'_>,
    ip: *const Op,
    n: u64,
    addr: u64,
    size: u32,
    signed: bool,
) -> Flow {
    let v = match m.slow_load(addr, size, signed) {
        Ok(v) => v,
        Err(k) => return m.fault(ip, k, n),
    };
    m.r[op(ip).dst as usize] = widen(v, size, signed);
    next::<C>(m, after(ip), n)
}

/// An `LdxW` marked as a probable `xdp_md` word load (`compile::CTX_WORD`): when its base
/// register holds the context's address, the word comes from the Machine's copy (what
/// [`load_slow`] would answer, without first missing every window); otherwise it is the
/// ordinary load.
pub(super) fn ctx_ldxw<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    if m.r[o.src as usize] == vaddr(CTX, 0) {
        // `compile` marks only XDP programs' loads at offsets 0, 4, .., 20 (aligned words of
        // `xdp_md`, whose values `Machine::xdp` holds) and puts the word's index in `b`.
        m.r[o.dst as usize] = m.xdp[o.b as usize & 7];
        return next::<C>(m, after(ip), n);
    }
    ldxw::<C>(m, ip, n)
}

load!(ldxb, 1, false);
load!(ldxh, 2, false);
load!(ldxw, 4, false);
load!(ldxdw, 8, false);
load!(ldxsb, 1, true);
load!(ldxsh, 2, true);
load!(ldxsw, 4, true);

macro_rules! store {
    ($name:ident, $n:literal, |$m:ident, $o:ident| $val:expr) => {
        pub(super) fn $name<const C: bool>($m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
            let $o = op(ip);
            let addr = $m.r[$o.dst as usize].wrapping_add($o.off());
            let v: u64 = $val;
            if $m.view.store::<$n>(addr, v).is_none() {
                return store_slow::<C>($m, ip, n, addr, $n, v);
            }
            next::<C>($m, after(ip), n)
        }
    };
}

/// A store that missed every window (context fields, faults).
#[cold]
#[inline(never)]
fn store_slow<const C: bool>(
    m: &mut Machine<'_>,
    ip: *const Op,
    n: u64,
    addr: u64,
    size: u32,
    v: u64,
) -> Flow {
    match m.slow_store(addr, size, v) {
        Ok(()) => next::<C>(m, after(ip), n),
        Err(k) => m.fault(ip, k, n),
    }
}

store!(stb, 1, |m, o| o.b);
store!(sth, 2, |m, o| o.b);
store!(stw, 4, |m, o| o.b);
store!(stdw, 8, |m, o| o.b);
store!(stxb, 1, |m, o| m.r[o.src as usize]);
store!(stxh, 2, |m, o| m.r[o.src as usize]);
store!(stxw, 4, |m, o| m.r[o.src as usize]);
store!(stxdw, 8, |m, o| m.r[o.src as usize]);

// Stack ops: `a + N <= STACK_SIZE` was proven by `compile::mem_op`, and `fp` is the start of
// one of the MAX_FRAMES frames of the stack buffer, so `fp + a .. fp + a + N` is inside it.
macro_rules! stack_load {
    ($name:ident, $n:literal, |$v:ident| $conv:expr) => {
        pub(super) fn $name<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
            let o = op(ip);
            let mut b = [0u8; 8];
            // SAFETY: see the comment above these macros.
            unsafe { std::ptr::copy_nonoverlapping(m.fp.add(o.a as usize), b.as_mut_ptr(), $n) };
            let $v = u64::from_le_bytes(b);
            m.r[o.dst as usize] = $conv;
            next::<C>(m, after(ip), n)
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
        pub(super) fn $name<const C: bool>($m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
            let $o = op(ip);
            let b = ($val as u64).to_le_bytes();
            // SAFETY: see the comment above these macros.
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), $m.fp.add($o.a as usize), $n) };
            next::<C>($m, after(ip), n)
        }
    };
}

stack_store!(stack_stb, 1, |m, o| o.b);
stack_store!(stack_sth, 2, |m, o| o.b);
stack_store!(stack_stw, 4, |m, o| o.b);
stack_store!(stack_stdw, 8, |m, o| o.b);
stack_store!(stack_stxb, 1, |m, o| m.r[o.src as usize]);
stack_store!(stack_stxh, 2, |m, o| m.r[o.src as usize]);
stack_store!(stack_stxw, 4, |m, o| m.r[o.src as usize]);
stack_store!(stack_stxdw, 8, |m, o| m.r[o.src as usize]);

/// Atomic add, or, and, xor (with or without fetch) of `W` bytes (`K` = `atomic_kind`) on
/// a writable window: the counters of packet programs (`lock add [map_value], 1`). Anything
/// else (stack bytes below the watermark, faults) goes to the general handler.
pub(super) fn atomic_rmw<const C: bool, const W: usize, const K: u8>(
    m: &mut Machine<'_>,
    ip: *const Op,
    n: u64,
) -> Flow {
    let o = op(ip);
    let addr = m.r[o.dst as usize].wrapping_add(o.off());
    let Some(p) = m.view.wr(addr, W as u32) else {
        return atomic_general::<C, W>(m, ip, n);
    };
    let mut b = [0u8; 8];
    // SAFETY: `wr` checked that `W` bytes at `p` are inside a live writable window.
    unsafe { std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), W) };
    let old = u64::from_le_bytes(b);
    let src = m.r[o.src as usize];
    let new = match K {
        atomic_kind::ADD => old.wrapping_add(src),
        atomic_kind::OR => old | src,
        atomic_kind::AND => old & src,
        _ => old ^ src,
    };
    let nb = new.to_le_bytes();
    // SAFETY: as above.
    unsafe { std::ptr::copy_nonoverlapping(nb.as_ptr(), p, W) };
    if o.aux & atomic_kind::FETCH != 0 {
        // `old` holds exactly W bytes, zero-extended.
        m.r[o.src as usize] = old;
    }
    next::<C>(m, after(ip), n)
}

/// [`atomic_rmw`]'s general path, out of line so that the fast path needs no stack frame.
#[inline(never)]
fn atomic_general<const C: bool, const W: usize>(
    m: &mut Machine<'_>,
    ip: *const Op,
    n: u64,
) -> Flow {
    if W == 8 {
        atomic64::<C>(m, ip, n)
    } else {
        atomic32::<C>(m, ip, n)
    }
}

pub(super) fn atomic32<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    match atomic(m, op(ip), false) {
        Ok(()) => next::<C>(m, after(ip), n),
        Err(k) => m.fault(ip, k, n),
    }
}

pub(super) fn atomic64<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    match atomic(m, op(ip), true) {
        Ok(()) => next::<C>(m, after(ip), n),
        Err(k) => m.fault(ip, k, n),
    }
}

/// Stack bytes below the write window's watermark (see `memory`): lowers it and returns
/// where to write.
#[cold]
fn open_stack(m: &mut Machine<'_>, addr: u64, size: u32) -> Option<*mut u8> {
    let vm = vm(m);
    m.set_slow();
    let p = vm.mem.wr_open(addr, size)?;
    m.view = vm.mem.view();
    Some(p)
}

/// Atomic read-modify-write (single-threaded, so a plain read then write is atomic).
#[inline(never)]
fn atomic(m: &mut Machine<'_>, o: &Op, wide: bool) -> Result<(), FaultKind> {
    let size = if wide { 8 } else { 4 };
    let addr = m.r[o.dst as usize].wrapping_add(o.off());
    let Some(p) = m.view.wr(addr, size).or_else(|| open_stack(m, addr, size)) else {
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
        return Err(vm(m).mem.fault(addr, size, access));
    };
    let s = o.src as usize;
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

pub(super) fn ld_abs<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    let off = if o.code == Code::LdAbs {
        o.b
    } else {
        m.r[o.src as usize].wrapping_add(o.b)
    };
    match helpers::skb::ld_abs(&vm(m).pkt, off as i32, o.aux as usize) {
        Some(v) => {
            m.r[0] = v;
            next::<C>(m, after(ip), n)
        }
        None => {
            m.r[0] = 0;
            m.stop = Some(Stop::Abort);
            // The fast copy paid for the rest of this run, which will not execute.
            m.n = if C { n } else { n + o.run as u64 - 1 };
            Flow::Stop
        }
    }
}

impl Machine<'_> {
    /// Loads that missed every window: context fields, or a fault.
    #[cold]
    #[inline(never)]
    fn slow_load(&mut self, addr: u64, size: u32, signed: bool) -> Result<u64, FaultKind> {
        let (slot, off) = split(addr);
        let vm = vm(self);
        if slot == CTX {
            return vm.ctx.load(&vm.pkt, off as i64, size, signed);
        }
        Err(vm.mem.fault(addr, size, Access::Read))
    }

    /// Stores that missed every window: context fields, stack bytes below the write
    /// window's watermark (see `memory`), or a fault.
    #[cold]
    #[inline(never)]
    fn slow_store(&mut self, addr: u64, size: u32, v: u64) -> Result<(), FaultKind> {
        let (slot, off) = split(addr);
        let vm = vm(self);
        self.set_slow();
        if slot == CTX {
            return vm.ctx.store(off as i64, size, v);
        }
        if let Some(p) = vm.mem.wr_open(addr, size) {
            self.view = vm.mem.view();
            let b = v.to_le_bytes();
            // SAFETY: `wr_open` checked that `size` (<= 8) bytes at `p` are writable.
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), p, size as usize) };
            return Ok(());
        }
        Err(vm.mem.fault(addr, size, Access::Write))
    }
}
