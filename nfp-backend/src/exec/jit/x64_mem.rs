//! The `ctm` reads of [`super::x64`]'s blocks ([`super::Step::CtmRead`]): the packet header
//! loads, compiled inline.
//!
//! # Why
//!
//! Nearly every program reads its headers from the packet buffer with `ctm[read8]` and
//! swaps out for the latency. As a handler (`fast_mem::ctm_read`) that read costs about
//! 45 host instructions (the op's fields, the address, the copy, the latency) plus a
//! dispatch out of the block before it; inline, with its operands and shape as constants,
//! it is 10 to 16, and the block passes the swap itself (`x64_pass`).
//!
//! # Exactness
//!
//! The read is `Thread::ctm_read` (`units`): the address from the two operands as
//! `fast_mem::cmd_addr`, its offset in the thread's buffer, the same bounds check, the
//! words copied little-endian and the last one masked. When the check fails, nothing has
//! been written and a cold exit jumps to the general handler `fast_mem::cmd` with the
//! op's hop and count, as `ctm_read` itself does (it recomputes the same address and
//! executes or faults as the reference). After a swapping read the block passes the swap
//! of the latency `fast_mem::after_cmd` computes (`ctm + per_word * (words - 1)`, of the
//! table the code is compiled for, a constant: `x64_pass::cmd_latency`) as `fast_run::swap_or_pass`
//! does, or jumps to [`ctm_swap`], which calls it.

use super::super::fast::Hop;
use super::super::fast_mem::cmd;
use super::super::fast_run::{Cx, Out, swap_or_pass};
use super::super::thread::{Home, Thread, slot};
use super::super::{PKT_BUF_BYTES, PKT_HEADROOM, SwapTarget};
use super::x64::{EAX, FILE, S8, Val, hop_at, load};
use crate::target::{AddrMode, MemTarget};
use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi, dynasm, x64::Assembler};
use std::mem::offset_of;

/// The thread's packet buffer's pointer (`Box<[u8; _]>`), and its `Home::data`: the CTM
/// address of the buffer (`ctm_packet_buffer(index)`) plus [`PKT_HEADROOM`].
///
/// Why `Home::data` and not the index: the buffer's address is then one operand in memory
/// (`data - PKT_HEADROOM`, the headroom folded into the constants) where it took a load of
/// the index and a multiply (callgrind, `simspeed pre`: two host instructions per read).
const PKT: i32 = offset_of!(Thread, pkt) as i32;
const HOME_DATA: i32 = (offset_of!(Thread, home) + offset_of!(Home, data)) as i32;

/// A `ctm` read's operands and shape (see [`Step::CtmRead`](super::Step::CtmRead)).
#[derive(Clone, Copy)]
pub(super) struct Read {
    pub(super) xfer: u8,
    pub(super) words: u8,
    pub(super) mask: u32,
    pub(super) mode: AddrMode,
    pub(super) a: Val,
    pub(super) b: Val,
}

/// `rax` = the address of a command from its operands `x` and `y`
/// (`fast_mem::cmd_addr`); uses `r8`.
pub(super) fn addr(a: &mut Assembler, mode: AddrMode, x: Val, y: Val) {
    addr_to(a, EAX, mode, (x, y));
}

/// [`addr`] into the 64-bit register `r` (not `r8`).
pub(super) fn addr_to(a: &mut Assembler, r: u8, mode: AddrMode, (x, y): (Val, Val)) {
    match mode {
        AddrMode::Addr32 => {
            // 32-bit sum, zero-extended into r.
            load(a, r, x);
            match y {
                Val::Slot(o) => dynasm!(a ; .arch x64 ; add Rd(r), DWORD [rdi + o]),
                Val::Const(k) => dynasm!(a ; .arch x64 ; add Rd(r), k as i32),
                Val::Reg(s) => dynasm!(a ; .arch x64 ; add Rd(r), Rd(s)),
            }
        }
        AddrMode::Addr40 => {
            // The high byte: of a slot, its first byte zero-extended (one host
            // instruction fewer than the load and the `and`).
            match x {
                Val::Slot(o) => dynasm!(a ; .arch x64 ; movzx r8d, BYTE [rdi + o]),
                _ => {
                    load(a, S8, x);
                    dynasm!(a ; .arch x64 ; and r8d, 0xff);
                }
            }
            load(a, r, y);
            dynasm!(a ; .arch x64 ; shl r8, 32 ; add Rq(r), r8);
        }
    }
}

/// The read (the module docs), leaving for `exit` when the words are not all inside the
/// thread's buffer.
///
/// A 32-bit address is offset in 32-bit arithmetic, the buffer's base folded into a
/// constant operand: the address `x + y` and the base `CTM_PKT_BASE + index *
/// PKT_BUF_BYTES` (`Home::data - PKT_HEADROOM`) are both below 2^32 and base plus buffer does not wrap, so `x + y - base`
/// in u32 is at most `last` exactly when it is in u64 (one host instruction per read).
/// Two words at a time are copied as one 8-byte load and store (the file is `u32`s, as
/// little-endian as the buffer; the check covers every word read): three instructions
/// per pair fewer than word by word.
pub(super) fn ctm_read(a: &mut Assembler, r: Read, exit: DynamicLabel) {
    let words = i32::from(r.words);
    let last = PKT_BUF_BYTES as i32 - 4 * words;
    match (r.mode, r.b) {
        (AddrMode::Addr32, Val::Const(k)) => {
            load(a, EAX, r.a);
            // `x + k - (data - PKT_HEADROOM)`, in u32 (wrapping) as above.
            let k = k.wrapping_add(PKT_HEADROOM);
            dynasm!(a ; .arch x64
                ; add eax, k as i32
                ; sub eax, DWORD [rdi + HOME_DATA]
                ; cmp eax, last
                ; ja =>exit);
        }
        _ => {
            addr(a, r.mode, r.a, r.b);
            dynasm!(a ; .arch x64
                // The offset in the buffer (`ctm_packet_buffer(index)`, in u32 as there;
                // the subtraction in u64, wrapping).
                ; mov r9d, DWORD [rdi + HOME_DATA]
                ; sub r9d, PKT_HEADROOM as i32
                ; sub rax, r9
                ; cmp rax, last
                ; ja =>exit);
        }
    }
    dynasm!(a ; .arch x64 ; mov r9, QWORD [rdi + PKT]);
    let x = slot::XFER_RD as i32 + i32::from(r.xfer);
    // `xfer + words <= 32` (the decoder's shape check): the slots are transfer registers,
    // consecutive.
    let o = |i: i32| FILE + 4 * ((x + i) & (slot::FILE as i32 - 1));
    let masked = r.mask != u32::MAX;
    let mut i = 0;
    while i < words {
        let pair = i + 1 < words && !(masked && i + 1 == words - 1);
        if pair {
            dynasm!(a ; .arch x64
                ; mov r8, QWORD [r9 + rax + 4 * i]
                ; mov QWORD [rdi + o(i)], r8);
            i += 2;
            continue;
        }
        // A last word masked to its low byte or half is loaded zero-extended (one host
        // instruction instead of two; little-endian, as the copy).
        match (i == words - 1 && masked, r.mask) {
            (true, 0xff) => dynasm!(a ; .arch x64 ; movzx r8d, BYTE [r9 + rax + 4 * i]),
            (true, 0xffff) => dynasm!(a ; .arch x64 ; movzx r8d, WORD [r9 + rax + 4 * i]),
            (true, m) => dynasm!(a ; .arch x64
                ; mov r8d, DWORD [r9 + rax + 4 * i]
                ; and r8d, m as i32),
            (false, _) => dynasm!(a ; .arch x64 ; mov r8d, DWORD [r9 + rax + 4 * i]),
        }
        dynasm!(a ; .arch x64 ; mov DWORD [rdi + o(i)], r8d);
        i += 1;
    }
}

/// The cold exit of the command at `at` in the block at `pc` (`rdx` = its first op): the
/// general handler runs it, with the registers unchanged.
pub(super) fn exit(a: &mut Assembler, at: usize, exit: DynamicLabel) {
    let f = cmd::<false> as *const () as usize as i64;
    dynasm!(a ; .arch x64 ; =>exit);
    hop_at(a, at);
    dynasm!(a ; .arch x64
        ; mov rax, QWORD f
        ; jmp rax);
}

/// `fast_mem::after_cmd` of a swapping `ctm` command that the block did not pass
/// (`x64_pass`), its latency `wait` computed by the block: goes on at `ip` (the op after
/// the read) or swaps out. The block jumps here (System V: the four handler arguments,
/// then `wait` in `r8`).
pub(super) extern "C-unwind" fn ctm_swap(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
    wait: u64,
) -> Out {
    swap_or_pass::<false>(t, cx, ip, n, wait, SwapTarget::Mem(MemTarget::Ctm))
}
