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
//! leaves through `faulted`), then the issue cycles into `Cx::extra`; its result is the
//! wait, and the block does what `after_fw` does with it (`x64::block`).
//!
//! The lookup of an array is inline in the block where the block knows R1 names the map
//! the fused start prepared (`FusedBudget::with_lookups`), whose `max_entries` and stride
//! it then finds in the `Cx` ([`lookup_inline`]): vm-core's layout is not ours to read, and
//! reading it per run cost more than the call (see there); the helper's call stays for
//! every other lookup and every key the inline path does not answer.
//!
//! The call keeps the System V rules: the block's four argument registers are saved on the
//! stack around it (they are caller-saved), with the stack aligned to 16 bytes at the
//! `call` (a block runs with the stack as at a handler's entry). A panic inside a helper
//! cannot unwind through the block (its code has no unwind tables), so each helper catches
//! it, keeps the payload, and the block leaves through [`rethrow`], a handler, which
//! resumes it from a Rust frame: the simulator sees the same panic as from a handler.

use super::super::fast::Hop;
use super::super::fast_mem::cmd;
use super::super::fast_run::{
    CX_LK_MAX, CX_LK_STRIDE, CX_VA_BASE, CX_VA_LAST, CX_VA_PTR, Cx, Out, fault, swap_or_pass,
};
use super::super::memory::{LMEM_BYTES_AT, emem_value_region};
use super::super::thread::{Thread, slot};
use super::super::units::atomic_add;
use super::super::{ExecErrorKind, SwapTarget, fw};
use super::super::{LMEM_BYTES, MemState, emem_map_addr};
use super::x64::add_extra;
use super::x64::{EAX, FILE, Val, hop_at};
use super::x64_emit::Redo;
use super::x64_mem::addr_to;
use crate::cost::FwCost;
use crate::target::{AddrMode, FwHelper, MemTarget};
use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi, dynasm, x64::Assembler};
use std::any::Any;
use std::cell::Cell;
use std::mem::offset_of;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

/// `rdx`'s number (the third argument).
const EDX: u8 = 2;
/// Byte offsets of the value window in `Cx` (`rsi`).
const VA_BASE: i32 = CX_VA_BASE as i32;
const VA_LAST: i32 = CX_VA_LAST as i32;
const VA_PTR: i32 = CX_VA_PTR as i32;
/// Byte offsets of the inline lookups' map in `Cx` (`Cx::lk_max`).
const LK_MAX: i32 = CX_LK_MAX as i32;
const LK_STRIDE: i32 = CX_LK_STRIDE as i32;
/// `cx.mem.lmem` (a `&mut Lmem`) in `Cx`, and the pointer to its bytes in an `Lmem`.
const CX_LMEM: i32 = (offset_of!(Cx<'static>, mem) + offset_of!(MemState<'static>, lmem)) as i32;
const BYTES: i32 = LMEM_BYTES_AT as i32;
/// The slots of R2's low word (the key's address) and of R0 in both banks (`Thread::reg`,
/// `Thread::set_r0`).
const R2: i32 = (slot::A + 4) as i32;
const R0A: i32 = slot::A as i32;
const R0B: i32 = slot::B as i32;

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

#[cfg(test)]
thread_local! {
    /// Calls of [`lookup_native`] on this thread (the tests of [`lookup_inline`] count
    /// which lookups it left to the helper).
    pub(super) static CALLS: Cell<u64> = const { Cell::new(0) };
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

/// The addresses [`call`] reads, after all of a program's code (`x64::compile`, once),
/// and the base address of the values of the map `lk` (`jit::lookup_fd`, the one
/// [`lookup_inline`] looks up), which that adds to its offset as a memory operand.
pub(super) fn pool(a: &mut Assembler, lk: Option<u32>) {
    let f = |p: *const ()| p as usize as i64;
    dynasm!(a ; .arch x64
        ; .align 8
        ; ->lookup_native:
        ; .i64 f(lookup_native as *const ())
        ; ->emem_add_1:
        ; .i64 f(emem_add_native::<1> as *const ())
        ; ->emem_add_2:
        ; .i64 f(emem_add_native::<2> as *const ()));
    if let Some(fd) = lk {
        dynasm!(a ; .arch x64 ; ->lk_base: ; .i64 emem_map_addr(fd, 0) as i64);
    }
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

/// A lookup of map `fd` in a block that knows R1 holds `fd`, the map the chain prepared
/// (`Cx::lk_max`, `fw::array_desc`): inline when the key is inside local memory and below
/// `max_entries`, else the helper's call ([`lookup`]) at `call`, out of line (see
/// [`lookup_call`]), which comes back to `back`, emitted here. `key_at`: where the key's
/// address is (R2's low word, `A4`, see [`Key`]). Leaves `rax` = the wait, for the block's
/// code after it, as [`lookup`] does (with `no_wait`, a wait of 0 to `exit`, the no-wait
/// path there).
///
/// (`fd` is the program's `jit::lookup_fd`, whose values' base [`pool`] keeps.)
///
/// Exactness: `fw::array_lookup_window`'s path for such a key, R0 `emem_map_addr(fd,
/// key * stride)` in both banks (`Thread::set_r0`), then [`looked_up`]'s issue cycles
/// (`Cx::add_extra`) and wait. The value window is left as it is (the chain's start set it
/// to this map's, `fw::array_desc`, or a helper's lookup of another map to that one's:
/// any window gives the same adds, see `Cx::va_base`). The key is read as
/// `fw::array_lookup_window` reads it (`Lmem::slice` of 4 bytes at R2's low word,
/// little-endian); anything else (a key outside local memory, a miss, a map the chain did
/// not prepare: `lk_max` 0) is the helper's.
///
/// Callgrind, `simspeed pre` (one lookup per frame): the helper's call cost 64 host
/// instructions per lookup (~50 in the helper, 11 in the call, 3 in the status check),
/// this path 24 (with the status check; the fused start puts the prepared map in the `Cx`,
/// `FusedBudget::with_lookups`): the whole simulation 858.0 -> 820.5 host instructions per
/// frame (842.1 -> 806.0 without libc memset/memcpy).
pub(super) fn lookup_inline(
    a: &mut Assembler,
    (fd, (key_at, based)): (u32, (Key, bool)),
    (exit, call, back): (DynamicLabel, DynamicLabel, DynamicLabel),
    (no_wait, cost, passed): (bool, FwCost, bool),
) {
    let last = (LMEM_BYTES - 4) as u32;
    // The LM bytes' pointer in r8, or in r10 where an LM step of the block left it there
    // (`based`, `x64_lm::Seen`: two dependent loads fewer).
    let lm = if based {
        10
    } else {
        dynasm!(a ; .arch x64
            ; mov r8, QWORD [rsi + CX_LMEM]
            ; mov r8, QWORD [r8 + BYTES]);
        8
    };
    match key_at {
        Key::Const(k) if k <= last => dynasm!(a ; .arch x64 ; mov eax, DWORD [Rq(lm) + k as i32]),
        // (Always outside: the helper's fault.)
        Key::Const(_) => dynasm!(a ; .arch x64 ; jmp =>call),
        Key::Eax | Key::Slot => {
            // `Key::Eax`: eax holds the address zero-extended in rax (every step after
            // which `x64::Held` names a slot wrote eax as a 32-bit register, or shifted
            // rax right by 32, `x64_pair::moves`).
            if let Key::Slot = key_at {
                dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + FILE + 4 * R2]);
            }
            dynasm!(a ; .arch x64
                ; cmp eax, last as i32
                ; ja =>call
                ; mov eax, DWORD [Rq(lm) + rax]);
        }
    }
    dynasm!(a ; .arch x64
        ; cmp rax, QWORD [rsi + LK_MAX]
        ; jae =>call
        ; imul rax, QWORD [rsi + LK_STRIDE]);
    // The map's base: an immediate when it fits one, else from the program's code
    // ([`pool`], one instruction where a move of it to a register and an add took two).
    match i32::try_from(emem_map_addr(fd, 0)) {
        Ok(base) => dynasm!(a ; .arch x64 ; add rax, base),
        Err(_) => dynasm!(a ; .arch x64 ; add rax, QWORD [->lk_base]),
    }
    dynasm!(a ; .arch x64
        ; mov QWORD [rdi + FILE + 4 * R0A], rax
        ; mov QWORD [rdi + FILE + 4 * R0B], rax);
    // The issue cycles and the wait: constants of the table the code is compiled for
    // (`looked_up` reads the same table at run time).
    // `passed`: the block's unchecked pass records the wait as a constant and reads no
    // `rax` (`x64_pass::swap_or_pass`): only the no-wait exit's test does.
    add_extra(a, cost.issue, 8);
    if no_wait && cost.wait == 0 {
        dynasm!(a ; .arch x64 ; xor eax, eax ; jmp =>exit);
    } else if !passed {
        dynasm!(a ; .arch x64 ; mov eax, cost.wait as i32);
    }
    dynasm!(a ; .arch x64 ; =>back);
}

/// Where [`lookup_inline`] finds the key's address (R2's low word, `A4`): a constant the
/// block set, `eax` (which holds `A4`, as `x64::Held` tells: the step before computed it,
/// the usual `alu[gprAB_4, gprA_22, +, ...]`, so the address is not read back from the slot
/// it was just stored to), or the slot.
#[derive(Clone, Copy)]
pub(super) enum Key {
    Const(u32),
    Eax,
    Slot,
}

/// The helper's call of [`lookup_inline`] at `call` (out of line: [`lookup`]), then back.
pub(super) fn lookup_call(
    a: &mut Assembler,
    (call, exit, back): (DynamicLabel, DynamicLabel, DynamicLabel),
    no_wait: bool,
) {
    dynasm!(a ; .arch x64 ; =>call);
    lookup(a, exit, no_wait);
    dynasm!(a ; .arch x64 ; jmp =>back);
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
    #[cfg(test)]
    CALLS.set(CALLS.get() + 1);
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
