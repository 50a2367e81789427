//! The pre-decoded form of a microengine program, for the fast path of the executor
//! ([`Thread::run_until_event_fast`](super::Thread::run_until_event_fast)).
//!
//! # Why
//!
//! The reference loop interprets [`MeInsn`] enums: every operand is matched (GPR, transfer
//! register, LM window, immediate), range-checked and routed on each execution, and every
//! instruction does the defer-slot, CSR-hazard and budget bookkeeping. For nic-sim, which runs
//! the same few dozen instructions millions of times, that is most of the host time. Here
//! each instruction is decoded once into an [`Op`] whose operands are slot numbers of the
//! thread's register file (`thread::slot`), whose checks are done, and whose branch targets
//! carry the length of the straight-line run they start.
//!
//! # What runs fast, what falls back
//!
//! An instruction becomes a fast op when all its operand checks pass statically and it reads
//! or writes no LM window (LM addresses and hazards are dynamic). Everything else is
//! [`Op::Slow`]: the fast loop hands it to the reference `step`, with the same thread state,
//! so the rare and the odd (defer-slot branches and their slots, CSR writes and the hazard
//! window after them, multiplies, `rtn`, invalid operands that must fault) keep exactly the
//! reference semantics. The fast loop also only runs while no defer slot and no LM hazard is
//! pending, so fast ops never need those checks.
//!
//! # Paying by runs
//!
//! Budget and instruction count are paid per *run*: the straight-line stretch from an
//! instruction to the next fast op that may continue elsewhere (a branch, a swapping command,
//! a firmware call, exit), or to just before the next slow op, and at most `MAX_RUN` long
//! (longer straight-line code is cut by a slow op, which bounds the handler chain, see
//! `fast_run`). `Hop::run` is the number of instructions the run starting at an address
//! executes; entering it checks the budget once and adds them all. A fault inside a run
//! gives back the part not executed (`run - 1` after the faulting instruction), so counts
//! stay exact. Each instruction costs one ME cycle, so busy cycles are the instructions
//! executed plus the extras (taken-branch penalty, firmware issue, exit), which the handlers
//! add where they occur.
//!
//! # Fused ops
//!
//! Common instruction pairs and triples of the lowering (64-bit compares and branches, zero
//! tests, 64-bit moves and immediates) become one op, executing every constituent exactly
//! (all flags, all register writes) in one dispatch. The constituents keep their own ops at
//! their own addresses, so a branch into the middle of a fused group is still exact.
//!
//! # Native blocks
//!
//! On x86-64 (Unix) hosts, each address that starts a straight-line stretch of register ops
//! (ALU, shifts, `immed`, `ld_field`), local-memory ops and packet reads from CTM also gets
//! that stretch compiled to host code (`jit`), which is its plain handler: it runs the block
//! and continues after it. The ops keep their
//! handlers, for the profiled loop and for [`FastProgram::without_native`].

use super::fast_fuse::{fuse, indirect_after};
use super::fast_run::{Handler, MAX_RUN};
use super::fast_select::handlers;
use super::fresh::Fresh;
use super::jit;
use super::step::{byte_mask, immed_parts, same_bank};
use super::thread::{bank, slot};
use super::units::{cmd_shape, last_mask};
use crate::cost::Latencies;
use crate::target::{
    AddrMode, AluOp, CmdAction, Cond, Csr, Dst, FwHelper, MeInsn, MemTarget, ShiftAmount,
    ShiftKind, Src,
};

/// A destination: the two slots written (the second is `SINK` for a one-slot destination).
pub(super) type D = [u8; 2];

/// ALU operations of fast ops (the same as [`AluOp`]).
pub(super) use crate::target::AluOp as A;

/// One pre-decoded instruction (or fused group). Operand `u16`s and destination bytes are
/// slots of the thread's register file; `t` is a branch target address, `rt` / `rn` the runs
/// of the target and of the fall-through (0: the next instruction must run slow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// `alu[d, a, op, b]` (moves included), flags per the op; each op gets a handler of
    /// its own (`fast_select`).
    Alu { op: A, d: D, a: u16, b: u16 },
    /// `alu[d, --, B, *l$index[off]]`: a move from a local-memory word. `rem` = the
    /// instructions of its run after it (to know its own count, for the CSR hazard, and to
    /// give back the run when it must run slow). Every `*Lm` op falls back to the
    /// reference step when its hazard or address check fails, so the fault is the
    /// reference's.
    MovLm { d: D, idx: u8, off: u8, rem: u16 },
    /// `alu[d, x, op, *l$index[off]]` (or with the LM word as `a` when `lm_a`).
    AluLm {
        op: A,
        d: D,
        x: u16,
        lm_a: bool,
        idx: u8,
        off: u8,
        rem: u16,
    },
    /// `alu[*l$index[off], a, op, b]`: a result stored to a local-memory word.
    StLm {
        op: A,
        a: u16,
        b: u16,
        idx: u8,
        off: u8,
        rem: u16,
    },
    /// `local_csr_wr[ActLMAddr n, src]`.
    CsrLm { n: u8, src: u16, rem: u16 },
    /// A shift of `b` by a constant.
    Shf {
        kind: ShiftKind,
        d: D,
        a: u16,
        b: u16,
        n: u8,
    },
    /// `immed` writing the whole register.
    Set { d: D, v: u32 },
    /// `immed` writing part of it: `d = (d & keep) | v`.
    Merge { d: D, keep: u32, v: u32 },
    /// `ld_field`: `d = (d & keep) | (b.rotate_right(rot) & mask)`, with the byte mask
    /// expanded at decode and `keep` = 0 for `zero_fill`, else `!mask`.
    Ld {
        d: D,
        b: u16,
        rot: u8,
        mask: u32,
        keep: u32,
    },
    /// Conditional branch without defer slots.
    Br {
        cond: Cond,
        t: u16,
        rt: u16,
        rn: u16,
    },
    /// `br_bset` / `br_bclr` without defer slots.
    BrBit {
        src: u16,
        bit: u8,
        set: bool,
        t: u16,
        rt: u16,
        rn: u16,
    },
    /// A memory command with checked operands. `len`, `words` and `mask` are its shape
    /// (`units::cmd_shape`: bytes and words moved, the bytes kept of the last word read),
    /// worked out once; `words` = 0 when the shape fails its checks (the general path
    /// raises the error). `fast_select` picks a handler by target, action and words
    /// (`fast_mem`).
    Cmd {
        target: MemTarget,
        action: CmdAction,
        xfer: u8,
        count: u8,
        mode: AddrMode,
        swap: bool,
        a: u16,
        b: u16,
        len: u8,
        words: u8,
        mask: u32,
    },
    /// A firmware helper call (ends a run: it may swap; continues at `pc + 1`).
    Fw { helper: FwHelper, rn: u16 },
    /// End of the program.
    Exit,
    /// No operation.
    Nop,
    /// Run this instruction with the reference `step` (see the module docs).
    Slow,

    // Fused groups (see the module docs); `pc` is the first constituent's address.
    /// `pc`: `alu[--/d1, a1, op1, b1]`, `pc+1`: `alu[--/d2, a2, op2, b2]`, `pc+2`: branch
    /// on `cond` (the 64-bit compare-and-branch of the lowering: `sub` + `sub_carry`, or a
    /// zero test `xor` + `or`). Both ALU ops are in [`A`] and set flags as usual.
    Alu2Br {
        op1: A,
        op2: A,
        d1: D,
        d2: D,
        a1: u16,
        b1: u16,
        a2: u16,
        b2: u16,
        cond: Cond,
        t: u16,
        rt: u16,
        rn: u16,
    },
    /// `pc`: `alu[d, a, op, b]`, `pc+1`: branch on `cond`.
    AluBr {
        op: A,
        d: D,
        a: u16,
        b: u16,
        cond: Cond,
        t: u16,
        rt: u16,
        rn: u16,
    },
    /// Two consecutive ALU ops (64-bit add/sub/move pairs): `pc` then `pc+1`.
    Alu2 {
        op1: A,
        op2: A,
        d1: D,
        d2: D,
        a1: u16,
        b1: u16,
        a2: u16,
        b2: u16,
    },
    /// Two consecutive whole-register immediates (a 64-bit constant).
    Set2 { d1: D, d2: D, v1: u32, v2: u32 },
    /// `pc`: `alu[d1, a1, op, b1]`, `pc+1`: a shift of `b2` (and `a2`) by the low 5 bits of
    /// that result (the indirect shift, valid only right after its ALU instruction).
    AluShf {
        op: A,
        kind: ShiftKind,
        d1: D,
        a1: u16,
        b1: u16,
        d2: D,
        a2: u16,
        b2: u16,
    },
}

impl Op {
    /// Whether execution may continue somewhere other than the next instruction (the op
    /// ends a run).
    pub(super) fn ends_run(&self) -> bool {
        matches!(
            self,
            Op::Br { .. }
                | Op::BrBit { .. }
                | Op::Cmd { swap: true, .. }
                | Op::Fw { .. }
                | Op::Exit
                | Op::Alu2Br { .. }
                | Op::AluBr { .. }
        )
    }

    /// Instructions the op executes.
    pub(super) fn width(&self) -> usize {
        match self {
            Op::Alu2Br { .. } => 3,
            Op::AluBr { .. } | Op::Alu2 { .. } | Op::Set2 { .. } | Op::AluShf { .. } => 2,
            _ => 1,
        }
    }
}

/// A program decoded for the fast path: build it once per program, run it on any thread
/// with [`Thread::run_until_event_fast`](super::Thread::run_until_event_fast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastProgram {
    /// The reference instructions (slow ops and the fall-back run them).
    pub(super) code: Box<[MeInsn]>,
    /// One op per address with its handlers and run, plus a final `Slow` at `code.len()`
    /// (falling off the end).
    pub(super) hops: Box<[Hop]>,
    /// The compiled blocks (see `jit`).
    jit: JitCode,
    /// Whether some instruction draws a random number (see [`FastProgram::draws_random`]).
    draws_random: bool,
    /// What the fused start resets of a thread (see [`Fresh`]).
    pub(super) fresh: Fresh,
    /// The latency table the native code is compiled for (its costs are constants there):
    /// runs given another table keep off it ([`FastProgram::native_for`]). In an `Arc`, so
    /// that its address is the same for every clone and move of the program, and a run
    /// given this very table (nic-sim's engine, [`FastProgram::latencies`]) is known to
    /// agree by one compare.
    lat: std::sync::Arc<Latencies>,
}

/// A program's compiled blocks: the block starting at each address, if any (its hop's
/// handler is then the block's code; one entry per hop), and the native code they point into
/// (shared by clones). Equality and the debug form ignore them: the blocks are a function
/// of the ops.
#[derive(Clone)]
struct JitCode {
    blocks: Box<[Option<jit::Block>]>,
    /// The unchecked copy of the block at address 0 (`jit::Unchecked`), when that block is
    /// the hop's handler.
    first: Option<jit::Unchecked>,
    _code: Option<std::sync::Arc<jit::Compiled>>,
}

impl PartialEq for JitCode {
    fn eq(&self, _: &JitCode) -> bool {
        true
    }
}

impl Eq for JitCode {}

impl std::fmt::Debug for JitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.blocks.iter().flatten().count();
        write!(f, "{n} native blocks")
    }
}

/// An op as the threaded loop runs it (see `fast_run`): its handlers (plain and profiled,
/// both chosen from `op` by `fast_select`) and the run starting at its address.
#[derive(Clone, Copy)]
pub(super) struct Hop {
    pub(super) h: Handler,
    pub(super) hp: Handler,
    pub(super) op: Op,
    /// Instructions of the run starting here (0: run this address slow).
    pub(super) run: u16,
    /// For branches: the target and the runs of the target and of the fall-through (copies
    /// of the op's, at one place for all branch forms, so a handler loads each only on the
    /// path that needs it). `rn` also for firmware calls. `t` also for exits: the exit's
    /// own address (the fused start's pc at `Done` from its hop, without the division of
    /// `Cx::pc`: 3 host instructions per packet, callgrind `simspeed pre`).
    pub(super) t: u16,
    pub(super) rt: u16,
    pub(super) rn: u16,
}

impl std::fmt::Debug for Hop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} run {}", self.op, self.run)
    }
}

/// Handlers are a function of the op, so comparing the ops and runs is enough.
impl PartialEq for Hop {
    fn eq(&self, other: &Hop) -> bool {
        self.op == other.op && self.run == other.run
    }
}

impl Eq for Hop {}

/// A source operand as a slot, if it needs no dynamic check.
pub(super) fn src(s: Src) -> Option<u16> {
    Some(match s {
        Src::Gpr(b, n) if n < 32 => (bank(b) + n as usize) as u16,
        Src::Xfer(n) if n < 32 => (slot::XFER_RD + n as usize) as u16,
        Src::Imm(v) => (slot::IMM + v as usize) as u16,
        Src::None => slot::ZERO as u16,
        _ => return None,
    })
}

/// A destination as slots, if it needs no dynamic check. `D[0]` is also the slot a
/// partial write reads (bank A for `Both`, as the reference's `read_dst`).
pub(super) fn dst(d: Dst) -> Option<D> {
    const SINK: u8 = slot::SINK as u8;
    Some(match d {
        Dst::Both(n) if n < 32 => [(slot::A + n as usize) as u8, (slot::B + n as usize) as u8],
        Dst::Gpr(b, n) if n < 32 => [(bank(b) + n as usize) as u8, SINK],
        Dst::Xfer(n) if n < 32 => [(slot::XFER_WR + n as usize) as u8, SINK],
        Dst::None => [SINK, SINK],
        _ => return None,
    })
}

/// Decodes one instruction without its run lengths (`rt` / `rn` are filled in later).
fn decode(insn: &MeInsn, len: usize) -> Op {
    decode_checked(insn, len)
        .or_else(|| decode_lm(insn))
        .unwrap_or(Op::Slow)
}

/// An LM window operand whose index and offset are in range.
fn lm(s: Src) -> Option<(u8, u8)> {
    match s {
        Src::Lm { index, off } if index < 4 && off < 16 => Some((index, off)),
        _ => None,
    }
}

/// The ALU and CSR forms with one local-memory operand.
fn decode_lm(insn: &MeInsn) -> Option<Op> {
    Some(match *insn {
        MeInsn::Alu {
            op,
            dst: Dst::Lm { index, off },
            a,
            b,
        } if index < 4 && off < 16 && !same_bank(a, b) => Op::StLm {
            op,
            a: src(a)?,
            b: src(b)?,
            idx: index,
            off,
            rem: 0,
        },
        MeInsn::Alu { op, dst: d, a, b } => {
            let d = dst(d)?;
            match (lm(a), lm(b)) {
                (None, Some((idx, off))) if op == AluOp::PassB && src(a).is_some() => Op::MovLm {
                    d,
                    idx,
                    off,
                    rem: 0,
                },
                (None, Some((idx, off))) => Op::AluLm {
                    op,
                    d,
                    x: src(a)?,
                    lm_a: false,
                    idx,
                    off,
                    rem: 0,
                },
                (Some((idx, off)), None) => Op::AluLm {
                    op,
                    d,
                    x: src(b)?,
                    lm_a: true,
                    idx,
                    off,
                    rem: 0,
                },
                _ => return None,
            }
        }
        MeInsn::CsrWrite {
            csr: crate::target::Csr::ActLmAddr(n),
            src: s,
        } if n < 4 => Op::CsrLm {
            n,
            src: src(s)?,
            rem: 0,
        },
        _ => return None,
    })
}

fn decode_checked(insn: &MeInsn, len: usize) -> Option<Op> {
    let target = |t: u16| (usize::from(t) < len).then_some(t);
    Some(match *insn {
        MeInsn::Alu { op, dst: d, a, b } => {
            if same_bank(a, b) {
                return None;
            }
            let (d, a, b) = (dst(d)?, src(a)?, src(b)?);
            Op::Alu { op, d, a, b }
        }
        MeInsn::Shf {
            kind,
            dst: d,
            a,
            b,
            amount: ShiftAmount::Imm(n),
        } if n < 32 && !same_bank(a, b) => Op::Shf {
            kind,
            d: dst(d)?,
            a: src(a)?,
            b: src(b)?,
            n,
        },
        MeInsn::Immed {
            dst: d,
            imm,
            shift,
            invert,
            width,
        } => {
            let (v, m) = immed_parts(imm, shift, invert, width)?;
            let d = dst(d)?;
            if m == u32::MAX {
                Op::Set { d, v }
            } else {
                Op::Merge { d, keep: !m, v }
            }
        }
        MeInsn::LdField {
            dst: d,
            byte_mask: mask4,
            b,
            shift_bytes,
            zero_fill,
        } => {
            let dst_bank = match d {
                Dst::Gpr(bk, _) => bk,
                Dst::Both(_) => crate::target::Bank::A,
                _ => return None,
            };
            if matches!(b, Src::Gpr(bk, _) if bk == dst_bank) || mask4 > 0xf || shift_bytes > 3 {
                return None;
            }
            let mask = byte_mask(mask4);
            Op::Ld {
                d: dst(d)?,
                b: src(b)?,
                rot: 8 * shift_bytes,
                mask,
                keep: if zero_fill { 0 } else { !mask },
            }
        }
        MeInsn::Br {
            cond,
            target: t,
            defer: 0,
        } => Op::Br {
            cond,
            t: target(t)?,
            rt: 0,
            rn: 0,
        },
        MeInsn::BrBit {
            src: s,
            bit,
            set,
            target: t,
            defer: 0,
        } if bit < 32 => Op::BrBit {
            src: src(s)?,
            bit,
            set,
            t: target(t)?,
            rt: 0,
            rn: 0,
        },
        MeInsn::Cmd {
            target,
            action,
            xfer,
            count,
            mode,
            a,
            b,
            swap,
        } if !same_bank(a, b) => {
            // A shape that passes has `len <= 32` and `words <= 8`.
            let (len, words, mask) = match cmd_shape(action, xfer, count) {
                Ok(s) => (s.len as u8, s.words as u8, last_mask(s.len)),
                Err(_) => (0, 0, 0),
            };
            Op::Cmd {
                target,
                action,
                xfer,
                count,
                mode,
                swap,
                a: src(a)?,
                b: src(b)?,
                len,
                words,
                mask,
            }
        }
        MeInsn::FwCall { helper } => Op::Fw { helper, rn: 0 },
        MeInsn::Exit => Op::Exit,
        MeInsn::Nop => Op::Nop,
        _ => return None,
    })
}

impl FastProgram {
    /// Decodes `code` (any code: what cannot be pre-decoded runs on the reference path), and
    /// compiles its straight-line stretches to host code where the host allows (`jit`),
    /// unless the environment variable `NFP_NATIVE` is `0` (to rule the native code in or out
    /// when chasing a difference, or to measure it).
    ///
    /// The native code is for the default table ([`Latencies::NFP4000`]); runs given
    /// another run it on handlers: a caller with its own table builds with
    /// [`FastProgram::with_latencies`].
    pub fn new(code: &[MeInsn]) -> FastProgram {
        FastProgram::with_latencies(code, &Latencies::NFP4000)
    }

    /// [`FastProgram::new`] with its native code compiled for the latencies `lat`: runs
    /// given that table (equal contents) run it, any other table runs on the handlers
    /// (the same results, slower). Runs given [`FastProgram::latencies`] itself are
    /// known to agree at the least cost.
    pub fn with_latencies(code: &[MeInsn], lat: &Latencies) -> FastProgram {
        let native = std::env::var_os("NFP_NATIVE").is_none_or(|v| v != "0");
        FastProgram::build(code, native, lat)
    }

    /// As [`FastProgram::new`] but with every op run by its handler (no host code): for
    /// comparing the two, and for hosts where the compiled code is not wanted.
    pub fn without_native(code: &[MeInsn]) -> FastProgram {
        FastProgram::build(code, false, &Latencies::NFP4000)
    }

    /// The latency table the program's native code is compiled for: give runs this
    /// reference (as `MemState::lat`) when its contents are the run's table, so that
    /// `FastProgram::native_for` agrees by its first compare.
    pub fn latencies(&self) -> &Latencies {
        &self.lat
    }

    /// Whether a run given the table `lat` may run the native code (whose costs are
    /// those of [`FastProgram::latencies`]): it is that table, or one equal to it, or
    /// there is no native code. The drivers test it where a chain starts; a run for
    /// which it fails runs the handlers (the profiled ones with no profile:
    /// `fast_run`).
    #[inline(always)]
    pub(super) fn native_for(&self, lat: &Latencies) -> bool {
        std::ptr::eq(lat, &*self.lat) || self.native_for_other(lat)
    }

    /// [`FastProgram::native_for`] of a table at another address (out of line: the
    /// engine gives the program's own).
    #[cold]
    #[inline(never)]
    pub(super) fn native_for_other(&self, lat: &Latencies) -> bool {
        self.jit._code.is_none() || *lat == *self.lat
    }

    fn build(code: &[MeInsn], native: bool, lat: &Latencies) -> FastProgram {
        let len = code.len();
        // Programs beyond u16 addresses run entirely on the reference path.
        let fast = len < usize::from(u16::MAX);
        let mut ops: Vec<Op> = code
            .iter()
            .map(|i| if fast { decode(i, len) } else { Op::Slow })
            .collect();
        ops.push(Op::Slow);
        // Fuse. An indirect shift is always slow on its own (the reference checks that the
        // instruction before was an ALU one, which fast ALU ops do not record), so a fast
        // ALU op right before one must fuse with it, or run slow itself.
        let plain = ops.clone();
        for pc in 0..len {
            if let Some(f) = fuse(code, &plain, pc) {
                ops[pc] = f;
            } else if indirect_after(code, pc) && matches!(code[pc], MeInsn::Alu { .. }) {
                ops[pc] = Op::Slow;
            }
        }
        // Runs, from the end, following each op's own chain (a fused op continues after its
        // last constituent): a run ends at an op that ends one, or before a slow op.
        // A run longer than `MAX_RUN` is cut by running its first op slow (bounds the
        // handler chain, see `fast_run`; straight-line code that long is rare).
        let mut run = vec![0u16; len + 1];
        for pc in (0..len).rev() {
            let w = ops[pc].width();
            run[pc] = match ops[pc] {
                Op::Slow => 0,
                o if o.ends_run() => w as u16,
                _ => run
                    .get(pc + w)
                    .copied()
                    .unwrap_or(0)
                    .saturating_add(w as u16),
            };
            if run[pc] > MAX_RUN {
                ops[pc] = Op::Slow;
                run[pc] = 0;
            }
        }
        let r = |pc: usize| run.get(pc).copied().unwrap_or(0);
        for (pc, op) in ops.iter_mut().enumerate() {
            let after = pc + op.width();
            match op {
                Op::MovLm { rem, .. }
                | Op::AluLm { rem, .. }
                | Op::StLm { rem, .. }
                | Op::CsrLm { rem, .. } => *rem = r(pc).saturating_sub(1),
                Op::Br { t, rt, rn, .. }
                | Op::BrBit { t, rt, rn, .. }
                | Op::AluBr { t, rt, rn, .. }
                | Op::Alu2Br { t, rt, rn, .. } => {
                    *rt = r(usize::from(*t));
                    *rn = r(after);
                }
                Op::Fw { rn, .. } => *rn = r(after),
                _ => {}
            }
        }
        let jit = if native {
            jit::compile(&ops, &run, lat).map(std::sync::Arc::new)
        } else {
            None
        };
        let block_at = |pc: usize| {
            jit.as_ref()
                .and_then(|c| c.blocks.get(pc).copied().flatten())
        };
        // Only where the run is paid by the fast path (a block never starts at a slow
        // address, whose run is 0).
        let blocks: Box<[Option<jit::Block>]> = (0..ops.len())
            .map(|pc| block_at(pc).filter(|_| run.get(pc).is_some_and(|&r| r > 0)))
            .collect();
        let first = jit
            .as_ref()
            .and_then(|c| c.first)
            .filter(|_| blocks.first().is_some_and(|b| b.is_some()));
        let hops = ops
            .iter()
            .zip(&run)
            .enumerate()
            .map(|(pc, (&op, &run))| {
                let (h, hp) = handlers(&op);
                let h = blocks[pc].map_or(h, |b| b.h);
                let (t, rt, rn) = match op {
                    Op::Br { t, rt, rn, .. }
                    | Op::BrBit { t, rt, rn, .. }
                    | Op::AluBr { t, rt, rn, .. }
                    | Op::Alu2Br { t, rt, rn, .. } => (t, rt, rn),
                    Op::Fw { rn, .. } => (0, 0, rn),
                    // (Below `u16::MAX`: `fast`.)
                    Op::Exit => (pc as u16, 0, 0),
                    _ => (0, 0, 0),
                };
                Hop {
                    h,
                    hp,
                    op,
                    run,
                    t,
                    rt,
                    rn,
                }
            })
            .collect();
        FastProgram {
            lat: std::sync::Arc::new(lat.clone()),
            fresh: Fresh::of(code),
            code: code.into(),
            hops,
            jit: JitCode {
                blocks,
                first,
                _code: jit,
            },
            draws_random: code.iter().any(|i| {
                matches!(
                    i,
                    MeInsn::FwCall {
                        helper: FwHelper::Random
                    } | MeInsn::CsrRead {
                        csr: Csr::PseudoRandNum,
                        ..
                    }
                )
            }),
        }
    }

    /// Whether running the program may draw from the random generator
    /// ([`SharedMem`](super::SharedMem)'s stream: `bpf_get_prandom_u32` or a read of the
    /// `PseudoRandNum` CSR, the only two readers, on either path). When it cannot, a caller
    /// that keeps one stream per packet need not seed or save it: nothing reads it.
    pub fn draws_random(&self) -> bool {
        self.draws_random
    }

    /// The reference instructions.
    pub fn code(&self) -> &[MeInsn] {
        &self.code
    }

    /// The unchecked copy of the block at address 0, if any (see `jit::Unchecked`).
    pub(super) fn first_unchecked(&self) -> Option<jit::Unchecked> {
        self.jit.first
    }

    /// Addresses that start a native block (0 without native code).
    pub fn native_blocks(&self) -> usize {
        self.jit.blocks.iter().flatten().count()
    }

    /// Instructions that run on the fast path (the rest fall back to the reference step).
    pub fn fast_insns(&self) -> usize {
        self.hops
            .iter()
            .take(self.code.len())
            .filter(|h| h.run > 0)
            .count()
    }
}
