//! The steps of [`super::x64`]'s blocks that call Rust: `emem[atomic_add]` to a map value
//! ([`super::Step::EmemAdd`]) and `fw_call[map_lookup]` ([`super::Step::Lookup`]).
//!
//! # Why
//!
//! Nearly every program bumps a counter in a map value and looks a key up in a map, once
//! per packet each. As handlers (`fast_mem::emem_add`, `fw_lookup`) they cost, besides the
//! map work, the op's fields, the dispatch into them out of the block before and the one
//! out of them into the block after, and the pass of their swap in Rust (`fast_run::pass`).
//! A map is vm-core's (its layout is not ours to read), so the map work stays Rust: the
//! block calls one function that does it and returns a status, with the address and the
//! shape as constants or computed inline, and then passes the swap itself (`x64_pass`) and
//! jumps straight to the next block.
//!
//! # Exactness
//!
//! [`emem_add_native`] is `Thread::emem_add` (`units`: `emem_region`'s map, bounds and
//! writable checks, the 32- or 64-bit add) on the address `fast_mem::cmd_addr` computes
//! (`x64_mem::addr`); when it declines, nothing has been done and a cold exit hands the
//! op to the general handler `fast_mem::cmd` with the registers unchanged, as
//! `fast_mem::emem_add` does. An address inside the value window a lookup left
//! (`Cx::va_base`) is added to in place instead, the same bytes with the same add (see
//! [`emem_add`]). [`lookup_native`] is `fast_mem::fw_lookup` up to its swap:
//! `fw::map_lookup`, R0, or the same fault (`fast_run::fault` at the op, then the block
//! leaves through [`faulted`]), then the issue cycles into `Cx::extra`; its result is the
//! wait, and the block does what `after_fw` does with it (`x64::block`).
//!
//! The call keeps the System V rules: the block's four argument registers are saved on the
//! stack around it (they are caller-saved), with the stack aligned to 16 bytes at the
//! `call` (a block runs with the stack as at a handler's entry). A panic inside a helper
//! cannot unwind through the block (its code has no unwind tables), so each helper catches
//! it, keeps the payload, and the block leaves through [`rethrow`], a handler, which
//! resumes it from a Rust frame: the simulator sees the same panic as from a handler.

use super::super::fast::Hop;
use super::super::fast_mem::cmd;
use super::super::fast_run::{CX_VA_BASE, CX_VA_LAST, CX_VA_PTR, Cx, Out, fault, swap_or_pass};
use super::super::memory::emem_value_region;
use super::super::thread::{Thread, slot};
use super::super::units::atomic_add;
use super::super::{ExecErrorKind, SwapTarget, fw};
use super::x64::{EAX, FILE, Val, hop_at};
use super::x64_emit::Redo;
use super::x64_mem::addr_to;
use crate::target::{AddrMode, FwHelper, MemTarget};
use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi, dynasm, x64::Assembler};
use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

/// `rdx`'s number (the third argument).
const EDX: u8 = 2;
/// Byte offsets of the value window in `Cx` (`rsi`).
const VA_BASE: i32 = CX_VA_BASE as i32;
const VA_LAST: i32 = CX_VA_LAST as i32;
const VA_PTR: i32 = CX_VA_PTR as i32;

/// The statuses of the helpers: an add done or declined; a fault raised; a panic caught.
/// (A lookup returns its wait, a `u32`, when it succeeds.)
const DECLINED: u64 = 1;
const PANICKED: u64 = u64::MAX - 1;
const FAULTED: u64 = u64::MAX;

thread_local! {
    /// The payload of a panic a helper caught, for [`rethrow`].
    static PANIC: Cell<Option<Box<dyn Any + Send>>> = const { Cell::new(None) };
    /// Why the last lookup failed, for [`lookup_fault`].
    static REASON: Cell<&'static str> = const { Cell::new("") };
}

/// Runs `f`, turning a panic into [`PANICKED`] (the payload kept for [`rethrow`]).
#[inline(always)]
fn guard(f: impl FnOnce() -> u64) -> u64 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(s) => s,
        Err(p) => keep(p),
    }
}

/// Keeps a caught panic's payload for [`rethrow`]: [`PANICKED`].
///
/// Out of line: kept in the helper, the thread-local store (and the drop of a payload
/// left there) took callee-saved registers that the helper then saved and restored on
/// every call (callgrind, `simspeed pre`: ten host instructions per lookup).
#[cold]
#[inline(never)]
fn keep(p: Box<dyn Any + Send>) -> u64 {
    PANIC.set(Some(p));
    PANICKED
}

/// The helpers the blocks call, by their address in the program's code ([`pool`]).
#[derive(Clone, Copy)]
enum Callee {
    Lookup,
    Add1,
    Add2,
}

/// Calls `f` with the block's `rdi` and `rsi` (the thread and `Cx`) and what `args` puts
/// in `rdx` and `rcx`; the result is in `rax`, the block's four registers as before.
///
/// The call reads the helper's address from the program's code ([`pool`]), one
/// instruction where a move of the address to `rax` and a call of `rax` took two
/// (callgrind, `simspeed pre`: one host instruction per lookup).
fn call(a: &mut Assembler, f: Callee, args: impl FnOnce(&mut Assembler)) {
    // Three pushes: 16-aligned at the call (8 off at a handler's entry). (`rdx` is not
    // kept: blocks compute the op pointer where they leave, see `x64::hop_at`.)
    dynasm!(a ; .arch x64
        ; push rdi
        ; push rsi
        ; push rcx);
    args(a);
    match f {
        Callee::Lookup => dynasm!(a ; .arch x64 ; call QWORD [->lookup_native]),
        Callee::Add1 => dynasm!(a ; .arch x64 ; call QWORD [->emem_add_1]),
        Callee::Add2 => dynasm!(a ; .arch x64 ; call QWORD [->emem_add_2]),
    }
    dynasm!(a ; .arch x64
        ; pop rcx
        ; pop rsi
        ; pop rdi);
}

/// The addresses [`call`] reads, after all of a program's code (`x64::compile`, once).
pub(super) fn pool(a: &mut Assembler) {
    let f = |p: *const ()| p as usize as i64;
    dynasm!(a ; .arch x64
        ; .align 8
        ; ->lookup_native:
        ; .i64 f(lookup_native as *const ())
        ; ->emem_add_1:
        ; .i64 f(emem_add_native::<1> as *const ())
        ; ->emem_add_2:
        ; .i64 f(emem_add_native::<2> as *const ()));
}

/// An `emem[atomic_add]`'s operands and shape (see [`super::Step::EmemAdd`]).
#[derive(Clone, Copy)]
pub(super) struct Add {
    pub(super) xfer: u8,
    pub(super) count: u8,
    pub(super) mode: AddrMode,
    pub(super) a: Val,
    pub(super) b: Val,
    /// The transfer registers' values (the first and the one after), where the block
    /// knows them.
    pub(super) v: (Option<u32>, Option<u32>),
}

/// The add (the module docs): in place when its address is inside the chain's value
/// window (see below), else (or when `v` is wrong) at `helper`, out of line
/// ([`emem_helper`]), which goes on at `back`, emitted here after the add.
///
/// An address in the value window of the map last looked up (`Cx::va_base`) is added to
/// in place, without the helper: the same bytes `emem_add_native` finds there (the window
/// is `memory::emem_value_region`'s answer for that map, see `fw::array_lookup_window`)
/// and the same little-endian add of `COUNT` words (`units::atomic_add`), of the
/// transfer registers' value or of `v`, the constant the block knows they hold
/// (`slots`). Callgrind, `simspeed pre`: the helper's call cost about 45 host
/// instructions per add, the window 8 (and 10 in the lookup that sets it).
pub(super) fn emem_add(a: &mut Assembler, add: Add, (helper, back): (DynamicLabel, DynamicLabel)) {
    // The window: `rax` = the offset in it (wrapping below it; beyond `va_last` either way
    // when outside).
    addr_to(a, EAX, add.mode, (add.a, add.b));
    dynasm!(a ; .arch x64
        ; sub rax, QWORD [rsi + VA_BASE]
        ; cmp rax, QWORD [rsi + VA_LAST]
        ; ja =>helper
        ; mov r9, QWORD [rsi + VA_PTR]);
    // The transfer registers `Thread::emem_add` reads (`slot::XFER_WR + xfer` and the one
    // after, wrapping in the file as there).
    let x = slot::XFER_WR + usize::from(add.xfer);
    let (lo, hi) = (x & (slot::FILE - 1), (x + 1) & (slot::FILE - 1));
    let off = |s: usize| FILE + 4 * s as i32;
    // A constant operand (an `i32`, sign-extended for the 64-bit add).
    let k = match (add.count, add.v) {
        (1, (Some(l), _)) => Some(l as i32),
        (_, (Some(l), Some(h))) => i32::try_from((u64::from(h) << 32 | u64::from(l)) as i64).ok(),
        _ => None,
    };
    match (add.count, k) {
        (1, Some(k)) => dynasm!(a ; .arch x64 ; add DWORD [r9 + rax], k),
        (_, Some(k)) => dynasm!(a ; .arch x64 ; add QWORD [r9 + rax], k),
        (1, None) => dynasm!(a ; .arch x64
            ; mov r8d, DWORD [rdi + off(lo)]
            ; add DWORD [r9 + rax], r8d),
        _ if hi == lo + 1 => dynasm!(a ; .arch x64
            ; mov r8, QWORD [rdi + off(lo)]
            ; add QWORD [r9 + rax], r8),
        _ => dynasm!(a ; .arch x64
            ; mov r8d, DWORD [rdi + off(hi)]
            ; shl r8, 32
            ; mov r10d, DWORD [rdi + off(lo)]
            ; or r8, r10
            ; add QWORD [r9 + rax], r8),
    }
    dynasm!(a ; .arch x64 ; =>back);
}

/// The add's helper path (out of line, at `helper`, see [`emem_add`]): the call, then on
/// at `back`, or to `exit` when the helper declines or panicked.
pub(super) fn emem_helper(
    a: &mut Assembler,
    add: Add,
    (helper, back, exit): (DynamicLabel, DynamicLabel, DynamicLabel),
) {
    let xfer = i32::from(add.xfer);
    // (Never called with another count: `is_emem_add`.)
    let f = match add.count {
        1 => Callee::Add1,
        _ => Callee::Add2,
    };
    dynasm!(a ; .arch x64 ; =>helper);
    // The address straight into `rdx` (the thread is still in `rdi`).
    call(a, f, |a| {
        addr_to(a, EDX, add.mode, (add.a, add.b));
        dynasm!(a ; .arch x64 ; mov ecx, xfer);
    });
    dynasm!(a ; .arch x64 ; test rax, rax ; jnz =>exit ; jmp =>back);
}

/// The cold exit of the add at `at` in the block at `pc` (`rdx` = its first op, `rax` the
/// status): the general handler runs the op when the helper declined, else the panic is
/// resumed. `res`: the result flag the block left to this exit, stored before the handler.
pub(super) fn emem_exit(a: &mut Assembler, at: usize, exit: DynamicLabel, res: Option<Redo>) {
    let f = cmd::<false> as *const () as usize;
    status_exit(a, (at, exit), (DECLINED, f), res);
}

/// A lookup: the helper, then `rax` = the wait (0: none); leaves for `exit` on a fault
/// or a panic, and with `no_wait` also when it did not wait (`rax - 1` wraps for 0 to
/// above the statuses: `x64_emit::NoWait`).
pub(super) fn lookup(a: &mut Assembler, exit: DynamicLabel, no_wait: bool) {
    call(a, Callee::Lookup, |_| {});
    if no_wait {
        const _: () = assert!(PANICKED == u64::MAX - 1 && FAULTED == u64::MAX);
        dynasm!(a ; .arch x64
            ; lea r8, [rax - 1]
            ; cmp r8, (PANICKED - 1) as i32
            ; jae =>exit);
    } else {
        dynasm!(a ; .arch x64 ; cmp rax, PANICKED as i32 ; jae =>exit);
    }
}

/// The cold exit of the lookup at `at` in the block at `pc` (`rdx` = its first op, `rax`
/// the status): the fault the helper found is raised at the op, or the panic resumed.
/// `res` as for [`emem_exit`].
pub(super) fn lookup_exit(a: &mut Assembler, at: usize, exit: DynamicLabel, res: Option<Redo>) {
    let f = lookup_fault as *const () as usize;
    status_exit(a, (at, exit), (FAULTED, f), res);
}

/// A helper's cold exit at `exit`: with status `status` in `rax`, continues with handler `f`
/// at the op `at` (of the block at `pc`, whose first op is in `rdx`); with any other (a
/// panic), leaves through [`rethrow`]. The flags of `res` are stored before `f` (a panic
/// leaves no state anyone reads).
fn status_exit(
    a: &mut Assembler,
    (at, exit): (usize, DynamicLabel),
    (status, f): (u64, usize),
    res: Option<Redo>,
) {
    let (f, r) = (f as i64, rethrow as *const () as usize as i64);
    dynasm!(a ; .arch x64
        ; =>exit
        ; cmp rax, status as i32
        ; jne >panicked);
    if let Some(res) = res {
        res.emit(a);
    }
    hop_at(a, at);
    dynasm!(a ; .arch x64
        ; mov rax, QWORD f
        ; jmp rax
        ; panicked:
        ; mov rax, QWORD r
        ; jmp rax);
}

/// `Thread::emem_add` of `COUNT` words from the transfer registers at `xfer` to `addr`:
/// 0 when done, [`DECLINED`] (nothing done) or [`PANICKED`]. (The count a constant: the
/// add then has one width, about 8 host instructions fewer.)
///
/// The value of an array or a hash map is added to inline (`memory::emem_value_region`,
/// the same bytes `Thread::emem_add` adds to, and the same `units::atomic_add`); every other case is
/// [`emem_add_general`], out of line, so that this path saves no registers (callgrind,
/// `simspeed pre`: 38 -> 33 with `Map`'s kind a tagged `u8`, then 30 host instructions per
/// add).
extern "C" fn emem_add_native<const COUNT: u8>(
    t: &Thread,
    cx: &mut Cx<'_>,
    addr: u64,
    xfer: u64,
) -> u64 {
    let done = guard(|| {
        let Some(bytes) = emem_value_region(cx.mem.maps, addr, 4 * u32::from(COUNT)) else {
            return DECLINED;
        };
        let x = slot::XFER_WR + usize::from(xfer as u8);
        let (lo, hi) = (
            t.file[x & (slot::FILE - 1)],
            t.file[(x + 1) & (slot::FILE - 1)],
        );
        atomic_add(bytes, lo, hi);
        0
    });
    if done != DECLINED {
        return done;
    }
    emem_add_general::<COUNT>(t, cx, addr, xfer)
}

/// [`emem_add_native`] of any address, with `Thread::emem_add`.
#[inline(never)]
fn emem_add_general<const COUNT: u8>(t: &Thread, cx: &mut Cx<'_>, addr: u64, xfer: u64) -> u64 {
    guard(|| {
        if t.emem_add(cx.mem.maps, xfer as u8, COUNT, addr) {
            0
        } else {
            DECLINED
        }
    })
}

/// `fast_mem::fw_lookup` up to its swap: the wait after it (its issue cycles added to
/// `Cx::extra`), or [`FAULTED`] (nothing changed; the reason kept for [`lookup_fault`])
/// or [`PANICKED`]. (Raising the fault itself, it kept the op and the count across the
/// map's lookup: two more saved registers, four host instructions per lookup.)
///
/// An array's lookup is inline (`fw::array_lookup_window`), every other map's a call out of
/// line ([`lookup_general`]), so that this path saves no registers. An array that programs
/// may write becomes the chain's value window (`Cx::va_base`), which [`emem_add`]s then
/// add to in place.
extern "C" fn lookup_native(t: &mut Thread, cx: &mut Cx<'_>) -> u64 {
    guard(|| match fw::array_lookup_window(t, &mut cx.mem) {
        Some((r0, window)) => {
            if let Some((base, last, ptr)) = window {
                (cx.va_base, cx.va_last) = (base, last);
                cx.va_ptr.write(ptr);
            }
            looked_up(t, cx, r0)
        }
        None => lookup_general(t, cx),
    })
}

/// [`lookup_native`] of any map, with `fw::map_lookup`.
#[inline(never)]
fn lookup_general(t: &mut Thread, cx: &mut Cx<'_>) -> u64 {
    match fw::map_lookup(t, &mut cx.mem) {
        Ok(r0) => looked_up(t, cx, r0),
        Err(reason) => {
            REASON.set(reason);
            FAULTED
        }
    }
}

/// After a lookup that found `r0`: R0 set, the issue cycles added, the wait.
#[inline(always)]
fn looked_up(t: &mut Thread, cx: &mut Cx<'_>, r0: u64) -> u64 {
    t.set_r0(r0);
    let c = cx.mem.lat.fw_cost(FwHelper::MapLookup);
    cx.add_extra(u64::from(c.issue));
    u64::from(c.wait)
}

/// Raises the fault [`lookup_native`] found, at the lookup `ip` (count `n`), as
/// `fast_mem::fw_lookup` does.
#[cold]
extern "C-unwind" fn lookup_fault(_: &mut Thread, cx: &mut Cx<'_>, ip: *const Hop, n: u64) -> Out {
    let helper = FwHelper::MapLookup;
    let reason = REASON.get();
    fault(cx, ip, n, ExecErrorKind::Helper { helper, reason })
}

/// Resumes the panic a helper caught (from a Rust frame, see the module docs).
#[cold]
extern "C-unwind" fn rethrow(_: &mut Thread, _: &mut Cx<'_>, _: *const Hop, _: u64) -> Out {
    let p = PANIC.take();
    resume_unwind(p.unwrap_or_else(|| Box::new("a native block's helper panicked")))
}

/// `fast_mem::after_cmd`'s swap of an `emem` command that the block did not pass
/// (`x64_pass`): swaps out, or grows the room for segments and passes.
pub(super) extern "C-unwind" fn emem_swap(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
    wait: u64,
) -> Out {
    swap_or_pass::<false>(t, cx, ip, n, wait, SwapTarget::Mem(MemTarget::Emem))
}

/// `fast_mem::after_fw`'s swap of a map lookup, as [`emem_swap`].
pub(super) extern "C-unwind" fn lookup_swap(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
    wait: u64,
) -> Out {
    let target = SwapTarget::Fw(FwHelper::MapLookup);
    swap_or_pass::<false>(t, cx, ip, n, wait, target)
}
