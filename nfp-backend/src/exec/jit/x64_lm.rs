//! The local-memory steps of [`super::x64`]'s blocks ([`super::Step::Lm`]):
//! `*l$index[off]` loads and stores compiled inline, with the handler's two checks as
//! compares that leave the block at the op when they fail.
//!
//! # Why
//!
//! Every packet of a typical program moves words between registers and its stack or
//! packet vector in local memory (the demo filter: two loads and one store per packet).
//! As handlers (`fast_handlers::mov_lm`, `alu_lm`, `st_lm`) each costs about 27 host
//! instructions and splits the straight-line code around it into two blocks (one more
//! dispatch); inline, a load is 5 to 13 (the checks an earlier step of the block passed
//! are not repeated, see [`step`]) and a store about 17, and the block goes on.
//!
//! # Exactness
//!
//! The step does what the handler does, in the same order: the CSR hazard check
//! (`n - rem <= lm_ready[idx]`, `rcx` being the count `n` of the run) and the address check
//! (`(lm_addr[idx] & !3) + 4 * off + 4 > LMEM_BYTES`); if either fails, nothing of the op
//! has happened and the block leaves through a cold exit at the op's hop, exactly as the
//! handler's `lm_slow`: `fast_run::slow(cx, ip, n - rem - 1)`, so the reference step runs
//! the op (and stalls or faults as it does) with the ops before it in the block done. The
//! ALU part is the block's own [`super::x64`] ALU with the word in `r11d`; a store marks
//! the word's 64-byte chunk dirty in `Lmem` as `Lmem::set_word` does.
//!
//! `Lmem`'s fields are private to `memory`, which gives their offsets
//! (`LMEM_BYTES_AT`, `LMEM_DIRTY_AT`, see [`LAYOUT`]).

use super::super::LMEM_BYTES;
use super::super::MemState;
use super::super::fast_run::{Cx, slow};
use super::super::memory::{LMEM_BYTES_AT, LMEM_DIRTY_AT};
use super::x64::{CC_RES, Held, LM_ADDR, LM_READY, R11D, Val, alu, hop_at, store, val};
use super::{LmAt, LmForm};
use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi, dynasm, x64::Assembler};
use std::mem::offset_of;

/// `cx.mem.lmem` (a `&mut Lmem`), from `Cx` (`rsi`).
const CX_LMEM: i32 = (offset_of!(Cx<'static>, mem) + offset_of!(MemState<'static>, lmem)) as i32;

/// Where an `Lmem` keeps the pointer to its bytes and its dirty mask (byte offsets), with
/// one dirty bit per 64-byte chunk (bit `a / 64` for byte `a`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    bytes: i32,
    dirty: i32,
}

/// The [`Layout`] of `Lmem` (`memory`'s offsets of its fields, a few bytes each).
pub(super) const LAYOUT: Layout = Layout {
    bytes: LMEM_BYTES_AT as i32,
    dirty: LMEM_DIRTY_AT as i32,
};
const _: () = assert!(LMEM_BYTES_AT < 1 << 16 && LMEM_DIRTY_AT < 1 << 16);

/// Where an LM step finds `Lmem`'s fields and leaves when a check fails.
#[derive(Clone, Copy)]
pub(super) struct At {
    pub(super) l: Layout,
    pub(super) exit: DynamicLabel,
    /// How far `rcx` is behind the count (`x64_lag`).
    pub(super) lag: i32,
}

/// What the LM steps of a block so far established: whether `r10` holds the LM bytes'
/// pointer (and `rdx` the `Lmem`'s, which a store's dirty mark reads: `rdx` is free inside
/// a block, see `x64::hop_at`), which window's base address `r11` holds, and per window index the highest
/// word offset whose checks passed (the later steps of the block need not repeat them,
/// see [`step`]).
#[derive(Default)]
pub(super) struct Seen {
    based: bool,
    base: Option<usize>,
    ok: [Option<u8>; 4],
}

impl Seen {
    /// After `local_csr_wr[ActLMAddr n]`: index n's address and hazard are new.
    pub(super) fn csr(&mut self, n: u8) {
        self.ok[usize::from(n & 3)] = None;
        self.base = None;
    }

    /// Whether `r10` holds the LM bytes' pointer (a lookup's key read uses it too,
    /// `x64_call::lookup_inline`).
    pub(super) fn based(&self) -> bool {
        self.based
    }

    /// After a call out of the block: `r10`, `r11` and `rdx` are gone (the checks passed still
    /// hold: a call changes no window address).
    pub(super) fn call(&mut self) {
        self.based = false;
        self.base = None;
    }
}

/// An LM step (the handler's checks, then the op), with the window's base address in
/// `r11` and the word at `[r10 + r11 + 4 * off]`; eax holds `h` before (the checks leave
/// it alone). Returns what eax holds after.
///
/// A check an earlier step of the block passed for the same index (with no CSR write to
/// it in between) is left out: the hazard passed at an earlier count passes at a later
/// one (`lm_ready` only changes with a CSR write), and the address check passes for every
/// offset up to the highest that passed.
pub(super) fn step(
    a: &mut Assembler,
    at: At,
    form: LmForm,
    lm: LmAt,
    (live, h): ((bool, bool), Held),
    seen: &mut Seen,
) -> Held {
    let i = usize::from(lm.idx & 3);
    let (addr, ready) = (LM_ADDR + 4 * i as i32, LM_READY + 8 * i as i32);
    let before = at.lag - i32::from(lm.rem);
    let off = 4 * i32::from(lm.off);
    let last = (LMEM_BYTES - 4) as i32 - off;
    let exit = at.exit;
    let ok = seen.ok[i];
    if ok.is_none() {
        // The hazard: the op's count `n - rem` must be above `lm_ready[i]`.
        dynasm!(a ; .arch x64
            ; lea r8, [rcx + before]
            ; cmp r8, QWORD [rdi + ready]
            ; jbe =>exit);
    }
    // The address (64-bit: cannot wrap) must leave room for the word.
    if seen.base != Some(i) {
        dynasm!(a ; .arch x64 ; mov r11d, DWORD [rdi + addr] ; and r11d, -4);
    }
    // (Only a load leaves the base in r11.)
    seen.base = matches!(form, LmForm::Mov { .. }).then_some(i);
    if ok.is_none_or(|m| lm.off > m) {
        dynasm!(a ; .arch x64 ; cmp r11, last ; ja =>exit);
    }
    seen.ok[i] = Some(ok.map_or(lm.off, |m| m.max(lm.off)));
    if !seen.based {
        let b = at.l.bytes;
        dynasm!(a ; .arch x64 ; mov rdx, QWORD [rsi + CX_LMEM] ; mov r10, QWORD [rdx + b]);
        seen.based = true;
    }
    match form {
        LmForm::Mov { d } => {
            dynasm!(a ; .arch x64 ; mov eax, DWORD [r10 + r11 + off]);
            if live.0 {
                dynasm!(a ; .arch x64 ; mov DWORD [rdi + CC_RES], eax);
            }
            store(a, d);
            Held::of(d)
        }
        LmForm::Alu { op, d, x, lm_a } => {
            dynasm!(a ; .arch x64 ; mov r11d, DWORD [r10 + r11 + off]);
            let (w, o) = (Val::Reg(R11D), val(x));
            let ab = if lm_a { (w, o) } else { (o, w) };
            alu(a, op, ab, live, h);
            store(a, d);
            Held::of(d)
        }
        LmForm::St { op, a: x, b } => {
            alu(a, op, (val(x), val(b)), live, h);
            let dirty = at.l.dirty;
            dynasm!(a ; .arch x64
                ; mov DWORD [r10 + r11 + off], eax
                // `Lmem::set_word`'s mark: the chunk of the (aligned) word.
                ; lea r11, [r11 + off]
                ; shr r11, 6
                ; mov r9, QWORD [rdx + dirty]
                ; bts r9, r11
                ; mov QWORD [rdx + dirty], r9);
            Held::NONE
        }
    }
}

/// The cold exit of the LM step `lm` in the block at `pc` (`rdx` = its first op): leaves
/// the chain for the reference step at the op, as `fast_handlers::lm_slow` does.
pub(super) fn exit(a: &mut Assembler, lm: LmAt, exit: DynamicLabel) {
    let before = -i32::from(lm.rem) - 1;
    let f = slow as *const () as usize as i64;
    dynasm!(a ; .arch x64 ; =>exit);
    hop_at(a, lm.at);
    dynasm!(a ; .arch x64
        ; mov rdi, rsi
        ; mov rsi, rdx
        ; lea rdx, [rcx + before]
        ; mov rax, QWORD f
        ; jmp rax);
}
