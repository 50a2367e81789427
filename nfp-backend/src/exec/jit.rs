//! Native code for straight-line stretches of the fast path (x86-64 hosts only).
//!
//! # Why
//!
//! nic-sim runs the same few dozen microengine instructions for every packet. The threaded
//! handlers of `fast_run` pay, for each op, the loads of its operand slots out of the op, the
//! store of every flag, and an indirect jump to the next handler: about 25 host instructions
//! for one ALU op. Most of a lowered program is straight-line register arithmetic between
//! branches and memory commands (address computation, 64-bit pairs, `ld_field` byte
//! extraction), so compiling each such stretch to host code once per program, with its
//! operand slots and immediates as constants and dead flag stores left out, removes most of
//! that per-op cost.
//!
//! # What is compiled, and why it stays exact
//!
//! A *block* is a maximal sequence of consecutive ops that compute on register slots, the
//! thread's LM window registers, local memory and the packet buffer: ALU ops (and fused
//! ALU pairs), constant shifts (and the ALU + indirect shift pair), `immed`, `ld_field`,
//! `local_csr_wr[ActLMAddr]`, `nop`, the ALU forms with a local-memory operand
//! ([`Step::Lm`]), `ctm` reads ([`Step::CtmRead`]) and `emem` atomic adds
//! ([`Step::EmemAdd`]), optionally ended by one branch without defer slots (`br`,
//! `br_bset`/`br_bclr`, and the fused compare-and-branch ops), by a read or add that
//! swaps, or by a map lookup ([`Step::Lookup`]). The straight-line handlers all continue
//! with the next op without paying anything (runs are paid where control enters them, see
//! `fast`), so running the whole block and then continuing with the op after it executes
//! the same ops with the same counts. A block that ends in a branch decides it, then does
//! exactly what `fast_branch::branch` does after deciding (penalty, paying the target or
//! fall-through run, or leaving the chain through `fast_run::unpaid_at`); one that ends in
//! a swap passes it as `fast_run::swap_or_pass` would and pays the next run, or leaves
//! swapping (`x64_pass`); a lookup then does what `fast_mem::after_fw` does. The map work
//! of adds and lookups is a call to Rust (`x64_call`). An LM op, a read or an add whose
//! handler would hand the op elsewhere (a failed hazard or window check, an address
//! outside the buffer or a map value) leaves the block at that op through a cold exit, to
//! the same place with the same count (`x64_lm`, `x64_mem`, `x64_call`); the ops before
//! it are done and their flags and registers stored, as after their handlers. Each
//! address that starts a block of at least [`MIN_OPS`] ops gets its own block, so entering
//! the middle of a stretch (a branch target) is as fast as entering its start. The
//! profiled loop keeps the handlers.
//!
//! Why LM ops and reads belong in blocks (callgrind, `simspeed pre`, host instructions per
//! frame, not counting the allocator's `memset` / `memcpy`, which move by ±20 with the
//! heap layout of a build): as handlers they cost about 27 (LM) and 45 (read) each and
//! cut the demo filter's straight-line code into more blocks, each boundary a dispatch;
//! compiled, the demo went from 2,067 to 2,019 (LM ops) and 1,987 (reads) per frame.
//! Passing swaps in the block and the adds and lookups (measured as the handler chain's
//! inclusive cost per frame, which the allocator's noise does not touch): 548 -> 521
//! (calls and passes) -> 492 (the cheaper pay and pass of `x64_pass`, the add's count a
//! constant) -> 486 (a lookup's fault raised outside its helper); the whole simulation
//! 1,637 -> 1,575 per frame without `memset` / `memcpy`.
//!
//! # A block is a handler
//!
//! The code of a block has the [`Handler`] signature (`extern "C-unwind"`: the System V
//! convention on the Unix hosts it is built for), so its hop's handler *is* the block: the chain jumps
//! into it, and it jumps on to the next op's handler itself, with the thread, `Cx`, the next
//! op and the count in the argument registers. No Rust frame is built around it (a
//! `call` out of a handler had to save and restore six registers for every block). Its
//! branch target, runs and addresses are constants in the code.
//!
//! The code works on the thread's register file and condition codes in memory (`rdi` is the
//! thread; field offsets come from `offset_of!`, [`Cc`] is `repr(C)`); the count stays in
//! its argument register (`rcx`; the op pointer a handler passes in `rdx` is recomputed
//! from `Cx::base` where a block leaves, `x64::hop_at`) while the body uses `eax`,
//! `r8d`, `r9d` (and `r10` / `r11` for local memory). Each op loads its operands, computes
//! with the same-width host instruction, and stores its destination slots; the ME's carry
//! and overflow are the host's CF and OF (inverted CF for subtraction, whose ME carry means
//! "no borrow"). A flag store is left out only when a later op of the same block
//! overwrites that flag before any op reads it or may leave the block ([`live_flags`]); a
//! register store likewise ([`slots::live_stores`]); a load of a slot whose value eax still holds
//! is left out; and a branch right after the ALU op that set its flags branches on the
//! host's flags. Slots that are constants (the zero slot and the immediate slots, never
//! written) are folded into the code, and stores to the sink slot are dropped. The fast
//! path's tests and `tests_native` hold it to the reference executor.
//!
//! Those four, with the LM steps' repeated checks left out (`x64_lm`), took the demo filter
//! from 1,987 to 1,943 host instructions per frame (counted as above).
//!
//! # Jumping from block to block
//!
//! Blocks jump to each other directly and leave for handlers only where the chain needs
//! one. Three things made those jumps cheaper (the demo filter, counted as above, 1,453 ->
//! 1,399 host instructions per frame; its native code 354 -> 300): the op pointer is not
//! carried in `rdx` (one add per jump; an exit computes it, `x64::hop_at`), and a call out
//! saves three registers instead of four (1,436); each block has an unchecked copy, run
//! when one check at a handler's entry proves that no pay, pass or room check of the
//! blocks after it can fail (`x64_bound`; 1,409); and the unchecked copies are laid out
//! so that a block's fall-through is the next block, its jump left out (1,399). In the
//! unchecked copies, the flag stores of a compare right before a branch move onto the
//! branch's paths, and the fall-through leaves out those the block there overwrites
//! first (`x64_branch::sink_at`: 1,390, native code 290).
//!
//! # What a block knows of its slots
//!
//! Later (the whole simulation at 1,155 host instructions per frame, its native code at
//! 290, counted as above): constants a block sets are folded into the steps that read
//! them, and a register store is left out when only reads of such constants or of `eax`
//! see it (`slots`; 283); stores of adjacent slots by a pair of `immed` or move steps are
//! 8-byte stores (`x64_pair`; 276); a `ctm` read folds the buffer's base into its address
//! constant and copies two words at a time (`x64_mem`; 272); the flags of an ALU step that
//! only a cold exit would read before the block overwrites them are recomputed at that
//! exit (`x64_emit::deferred`; 267). With the helpers' map work cheaper (`x64_call`, and
//! vm-core's map kind a tag byte), 1,103 per frame.
//!
//! Session 15 (callgrind, `simspeed pre`, the whole simulation at 1,024.2 host
//! instructions per frame without `memset` / `memcpy`, its native code at 266.9): the
//! fused start enters the first block past its entry check but the room for segments
//! (`Unchecked`; 1,015.2, native 255.9); a `ctm` read offsets its address by the thread's
//! `Home::data` (`x64_mem`; 1,011.2); an atomic add inside the value window of the map
//! the chain last looked up adds in place, without the helper (`x64_call`,
//! `fw::array_lookup_window`; 989.2, the add's helper 30 -> 0, the lookup's 42 -> 52);
//! the fused `Done` reads the exit's address from its hop (986.2); the add's helper path
//! out of line, a constant addend, the LM store's `Lmem` pointer kept (983.5); a pass
//! counts its mark in units of `n` (`fast_run::Cx::mark_n`; 977.4); and a branch's sunk
//! flags stay pending in copies of the blocks after its fall-through and its taken path,
//! whose cold exits recompute them (`x64_emit::pending_redos`, `x64::pending_on`; 968.3,
//! native 229.0).
//!
//! Session 16 (callgrind, `simspeed pre`, the whole simulation at 941.5 host instructions
//! per frame without `memset` / `memcpy`, its native code at 229.0, the map lookup's
//! helper at 49): an unchecked block that falls through into the block laid out after it
//! leaves its pay's add out, `rcx` staying behind the count by a lag that the code after
//! knows and settles where the count is read (`x64_lag`: 935.5, native 223.0); the array
//! lookup checks its key's bounds against the constant 4 (`fw::array_lookup_window`:
//! 932.5, the helper 45); an `ld_field` of whole bytes is a zero-extending load of them,
//! its merge's `and` left out when the bits are clear, and a read's last word masked to a
//! byte or half is loaded zero-extended (`x64_ld`, `x64_mem`: 922.5, native 213.0); the
//! high byte of a 40-bit address likewise (921.6, native 212.0). (The code per address
//! was read with the `NFP_JIT_DUMP` hook of `x64`.)
//!
//! Session 17 (callgrind, `simspeed pre`, the whole simulation at 874.5 host instructions
//! per frame, 859.6 without `memset` / `memcpy`, its native code at 218.2): a branch
//! block's register stores that the block after its fall-through overwrites first move
//! onto its taken path (`x64_sink`: 870.0, native 214.2); a helper's call reads its
//! address from the program's code (`x64_call::pool`: 869.4, native 213.2); the result
//! flag of the step before a lookup or an add ending a block is stored at the call's
//! cold exit when the block after overwrites it (`x64_sink::res_at_exit`: 868.0, 852.7
//! without `memset` / `memcpy`, native 211.2).
//!
//! Session 19 (callgrind, `simspeed pre`, bench profile, the whole simulation at 754.0 host
//! instructions per frame, its native code at 221.2): the code is compiled per program
//! *and latency table* ([`compile`]'s `lat`), each cost a constant in it (a command's
//! latency, a lookup's issue cycles and wait, the branch penalty, the exit's cycles, the
//! CSR delay: each was a two-load chain through `Cx::mem::lat`); a run given another
//! table keeps off the code (`FastProgram::native_for`): 735.3, native 202.2. An
//! unchecked pass records a command's or lookup's constant wait as an immediate
//! (`x64_pass`): 731.4, native 198.2.
//!
//! Session 20 (the same count, 710.9 without `memset` / `memcpy`, native 200.2): a
//! subtract that only sets flags is a host `cmp` of A in memory (`x64::compare_at`: 196.2);
//! an inline lookup reads its key through the LM pointer an LM step of its block left in
//! `r10` and does not zero-extend eax (703.9, native 193.2); two `ld_field`s that build a
//! big-endian half are a load and a rotate (`x64_ld::swap_pair`: 191.2); the lookup's map
//! base is a constant of the code's pool (`x64_call::pool`): 701.2, native 190.2; thread
//! CPU time 1.014x and 1/0.983 (20 interleaved rounds each way). Rejected: a register
//! cache of slots beyond eax (a load becomes a register move, the same count); a branch's
//! taken path out of line, the fall-through straight on (the same count, 8 -> 2 taken
//! host branches per frame, yet thread CPU time 0.998x, 1/1.011, 0.988x, 1/1.006).

use super::fast::{A, D, Op};
use super::fast_run::Handler;
use super::thread::{Cc, slot};
use crate::cost::Latencies;
use crate::target::{AddrMode, CmdAction, Cond, FwHelper, MemTarget, ShiftKind};

/// Fewest ops (dispatches) worth a block: one, since a block is entered and left as
/// cheaply as a handler and its operands are constants (measured on the demo filter with
/// callgrind: 2,182 host instructions per frame with two, 2,155 with one).
pub(super) const MIN_OPS: usize = 1;

/// Longest block, in ops (bounds the code size of long straight-line stretches, each of whose
/// addresses gets its own block).
const MAX_OPS: usize = 48;

/// A block at an address: its code, the handler of that address (see the module docs).
#[derive(Clone, Copy)]
pub(super) struct Block {
    pub(super) h: Handler,
}

/// Whether the fast path may run `op` inside a block.
pub(super) fn compilable(op: &Op) -> bool {
    matches!(
        op,
        Op::Alu { .. }
            | Op::Alu2 { .. }
            | Op::Shf { .. }
            | Op::AluShf { .. }
            | Op::Set { .. }
            | Op::Set2 { .. }
            | Op::Merge { .. }
            | Op::Ld { .. }
            | Op::CsrLm { .. }
            | Op::MovLm { .. }
            | Op::AluLm { .. }
            | Op::StLm { .. }
            | Op::Nop
    ) || is_ctm_read(op)
        || is_emem_add(op)
        || is_lookup(op)
}

/// Whether `op` is a `ctm` read whose shape passed the decoder's checks (the packet header
/// loads; see [`Step::CtmRead`]).
fn is_ctm_read(op: &Op) -> bool {
    matches!(
        op,
        Op::Cmd {
            target: MemTarget::Ctm,
            action: CmdAction::Read8 | CmdAction::Read32,
            words: 1..=8,
            ..
        }
    )
}

/// Whether `op` is an `emem[atomic_add]` whose shape passed the decoder's checks (the
/// counters in map values; see [`Step::EmemAdd`]).
fn is_emem_add(op: &Op) -> bool {
    matches!(
        op,
        Op::Cmd {
            target: MemTarget::Emem,
            action: CmdAction::AtomicAdd,
            words: 1..=2,
            ..
        }
    )
}

/// Whether `op` is `fw_call[map_lookup]` (see [`Step::Lookup`]).
fn is_lookup(op: &Op) -> bool {
    matches!(
        op,
        Op::Fw {
            helper: FwHelper::MapLookup,
            ..
        }
    )
}

/// The map whose lookups a program's native blocks make inline (`x64_call::lookup`) and
/// whose lookup the fused start prepares once per chain (`fw::array_desc`,
/// `FastProgram::fused_budget`): the value of the last `immed` to R1's low word (`A2`, how
/// the lowering passes a map's table id) before the program's first `fw_call[map_lookup]`,
/// in address order. Both sides call this on the same ops, so they agree on the map; it
/// only decides which map gets the inline path: a block makes a lookup inline only where
/// it knows `A2` holds this map (`slots`), and every other lookup calls the helper.
///
/// Why one map: nearly every program looks one map up per packet, and preparing a map
/// costs the fused start host instructions on every packet.
pub(super) fn lookup_fd(ops: impl IntoIterator<Item = Op>) -> Option<u32> {
    let r1 = slot::A + 2;
    let mut fd = None;
    for op in ops {
        let sets = |d: D| d.iter().any(|&s| usize::from(s) == r1);
        match op {
            Op::Set { d, v } if sets(d) => fd = Some(v),
            Op::Set2 { d1, d2, v1, v2 } if sets(d1) || sets(d2) => {
                fd = Some(if sets(d2) { v2 } else { v1 });
            }
            // (The blocks do not know a merged value either, `slots`.)
            Op::Merge { d, .. } if sets(d) => fd = None,
            _ if is_lookup(&op) => return fd,
            _ => {}
        }
    }
    None
}

/// A branch op's target and the runs of its target and fall-through.
#[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(dead_code))]
fn branch_parts(op: &Op) -> Option<(u16, u16, u16)> {
    match *op {
        Op::Br { t, rt, rn, .. }
        | Op::BrBit { t, rt, rn, .. }
        | Op::AluBr { t, rt, rn, .. }
        | Op::Alu2Br { t, rt, rn, .. } => Some((t, rt, rn)),
        _ => None,
    }
}

/// Whether `op` ends a block it is part of: a branch, a command that swaps, or a map
/// lookup (the block then passes the swap itself or leaves swapping, see `x64_pass`; and
/// goes on with the next run).
fn ends_block(op: &Op) -> bool {
    matches!(
        op,
        Op::Br { .. } | Op::BrBit { .. } | Op::AluBr { .. } | Op::Alu2Br { .. }
    ) || ((is_ctm_read(op) || is_emem_add(op)) && matches!(op, Op::Cmd { swap: true, .. }))
        || is_lookup(op)
}

/// The ops of the block starting at `pc`, as `(address, op)`, if it is long enough.
pub(super) fn block_at(ops: &[Op], pc: usize) -> Option<Vec<(usize, Op)>> {
    let mut out = Vec::new();
    let mut at = pc;
    while let Some(op) = ops.get(at) {
        if out.len() == MAX_OPS {
            break;
        }
        if ends_block(op) {
            out.push((at, *op));
            break;
        }
        if !compilable(op) {
            break;
        }
        out.push((at, *op));
        at += op.width();
    }
    (out.len() >= MIN_OPS).then_some(out)
}

/// One ALU or shift step of a block, flattened from the ops (fused ops are sequences).
#[derive(Debug, Clone, Copy)]
enum Step {
    Alu {
        op: A,
        d: D,
        a: u16,
        b: u16,
    },
    Shf {
        kind: ShiftKind,
        d: D,
        a: u16,
        b: u16,
        n: u8,
    },
    /// A shift by the low 5 bits of the previous step's result.
    ShfInd {
        kind: ShiftKind,
        d: D,
        a: u16,
        b: u16,
    },
    Set {
        d: D,
        v: u32,
    },
    Merge {
        d: D,
        keep: u32,
        v: u32,
    },
    Ld {
        d: D,
        b: u16,
        rot: u8,
        mask: u32,
        keep: u32,
    },
    /// `local_csr_wr[ActLMAddr n, src]`, `rem` instructions before the end of its run.
    Csr {
        n: u8,
        src: u16,
        rem: u16,
    },
    /// An op on a local-memory word ([`LmAt`]): `alu[d, --, B, *l$..]` (`Mov`),
    /// `alu[d, x, op, *l$..]` / `alu[d, *l$.., op, x]` (`Alu`), or `alu[*l$.., a, op, b]`
    /// (`St`). Its hazard and address checks compile to a compare and a jump to a cold
    /// exit that leaves the block at this op as its handler does (`fast_handlers::lm_slow`:
    /// the reference step runs it, and faults or stalls exactly), so it counts as reading
    /// every flag ([`reads_flags`]): the reference may stop there with the flags visible.
    Lm {
        form: LmForm,
        lm: LmAt,
    },
    /// `ctm[read8/read32, $xfer, a, b, count]` (`fast_mem::ctm_read` of `words` words, the
    /// last masked with `mask`), at address `at`. When its address is outside the thread's
    /// packet buffer, a cold exit hands the op, unexecuted, to the general command handler
    /// (as `ctm_read` does). A swapping one ends its block: the block then goes on as
    /// `fast_mem::after_cmd` (see `x64_mem`).
    CtmRead {
        xfer: u8,
        words: u8,
        mask: u32,
        mode: AddrMode,
        a: u16,
        b: u16,
        at: usize,
    },
    /// `emem[atomic_add, $xfer, a, b, count]` (`fast_mem::emem_add`: `count` words, 1 or
    /// 2), at address `at`. The map part (which map, its bounds, whether programs may write
    /// it) is a call to a Rust function (`x64_call`); when it declines, nothing is done and
    /// a cold exit hands the op to the general command handler, as `emem_add` does. A
    /// swapping one ends its block.
    EmemAdd {
        xfer: u8,
        count: u8,
        mode: AddrMode,
        a: u16,
        b: u16,
        at: usize,
    },
    /// `fw_call[map_lookup]` at address `at` (`fast_mem::fw_lookup`), a call to a Rust
    /// function (`x64_call`); it ends its block, which then does what `after_fw` does.
    /// `fd`: the program's [`lookup_fd`], whose lookups the block makes inline when it
    /// knows R1 holds it (`x64_call::lookup`).
    Lookup {
        at: usize,
        fd: Option<u32>,
    },
    /// The block's branch, taken when `cond` holds on the flags.
    Br {
        cond: Cond,
    },
    /// The block's `br_bset` / `br_bclr`, taken when bit `bit` of `src` is `set`.
    BrBit {
        src: u16,
        bit: u8,
        set: bool,
    },
}

/// The local-memory word of an LM step, and where its op is (for leaving the block there).
#[derive(Debug, Clone, Copy)]
struct LmAt {
    /// LM window index (0..4) and word offset (0..16).
    idx: u8,
    off: u8,
    /// Instructions of the op's run after it (its count is `n - rem`).
    rem: u16,
    /// The op's address.
    at: usize,
}

/// What an LM step does with its word (see [`Step::Lm`]).
#[derive(Debug, Clone, Copy)]
enum LmForm {
    Mov { d: D },
    Alu { op: A, d: D, x: u16, lm_a: bool },
    St { op: A, a: u16, b: u16 },
}

/// The two ALU steps of a fused pair.
fn push_alu2(out: &mut Vec<Step>, pair: [(A, D, u16, u16); 2]) {
    for (op, d, a, b) in pair {
        out.push(Step::Alu { op, d, a, b });
    }
}

fn steps(ops: &[(usize, Op)]) -> Vec<Step> {
    let mut out = Vec::new();
    for &(at, op) in ops {
        match op {
            Op::Alu { op, d, a, b } => out.push(Step::Alu { op, d, a, b }),
            Op::Alu2 {
                op1,
                op2,
                d1,
                d2,
                a1,
                b1,
                a2,
                b2,
            } => push_alu2(&mut out, [(op1, d1, a1, b1), (op2, d2, a2, b2)]),
            Op::Shf { kind, d, a, b, n } => out.push(Step::Shf {
                kind,
                d,
                a,
                b,
                n: n & 31,
            }),
            Op::AluShf {
                op,
                kind,
                d1,
                a1,
                b1,
                d2,
                a2,
                b2,
            } => {
                out.push(Step::Alu {
                    op,
                    d: d1,
                    a: a1,
                    b: b1,
                });
                out.push(Step::ShfInd {
                    kind,
                    d: d2,
                    a: a2,
                    b: b2,
                });
            }
            Op::Set { d, v } => out.push(Step::Set { d, v }),
            Op::Set2 { d1, d2, v1, v2 } => {
                out.push(Step::Set { d: d1, v: v1 });
                out.push(Step::Set { d: d2, v: v2 });
            }
            Op::Merge { d, keep, v } => out.push(Step::Merge { d, keep, v }),
            Op::Ld {
                d,
                b,
                rot,
                mask,
                keep,
            } => out.push(Step::Ld {
                d,
                b,
                rot,
                mask,
                keep,
            }),
            Op::CsrLm { n, src, rem } => out.push(Step::Csr { n: n & 3, src, rem }),
            Op::MovLm { d, idx, off, rem } => out.push(Step::Lm {
                form: LmForm::Mov { d },
                lm: LmAt { idx, off, rem, at },
            }),
            Op::AluLm {
                op,
                d,
                x,
                lm_a,
                idx,
                off,
                rem,
            } => out.push(Step::Lm {
                form: LmForm::Alu { op, d, x, lm_a },
                lm: LmAt { idx, off, rem, at },
            }),
            Op::StLm {
                op,
                a,
                b,
                idx,
                off,
                rem,
            } => out.push(Step::Lm {
                form: LmForm::St { op, a, b },
                lm: LmAt { idx, off, rem, at },
            }),
            Op::Cmd {
                xfer,
                mode,
                a,
                b,
                words,
                mask,
                ..
            } if is_ctm_read(&op) => out.push(Step::CtmRead {
                xfer,
                words,
                mask,
                mode,
                a,
                b,
                at,
            }),
            Op::Cmd {
                xfer,
                count,
                mode,
                a,
                b,
                ..
            } if is_emem_add(&op) => out.push(Step::EmemAdd {
                xfer,
                count,
                mode,
                a,
                b,
                at,
            }),
            Op::Fw { .. } if is_lookup(&op) => out.push(Step::Lookup { at, fd: None }),
            Op::Br { cond, .. } => out.push(Step::Br { cond }),
            Op::BrBit { src, bit, set, .. } => out.push(Step::BrBit {
                src,
                bit: bit & 31,
                set,
            }),
            Op::AluBr {
                op, d, a, b, cond, ..
            } => {
                out.push(Step::Alu { op, d, a, b });
                out.push(Step::Br { cond });
            }
            Op::Alu2Br {
                op1,
                op2,
                d1,
                d2,
                a1,
                b1,
                a2,
                b2,
                cond,
                ..
            } => {
                push_alu2(&mut out, [(op1, d1, a1, b1), (op2, d2, a2, b2)]);
                out.push(Step::Br { cond });
            }
            _ => {}
        }
    }
    out
}

/// Which flags a step reads and writes: (reads carry, writes carry/overflow, writes result).
fn flag_use(s: &Step) -> (bool, bool, bool) {
    let alu = |op: &A| {
        let arith = matches!(op, A::Add | A::AddCarry | A::Sub | A::SubCarry);
        (matches!(op, A::AddCarry | A::SubCarry), arith, true)
    };
    match s {
        Step::Alu { op, .. }
        | Step::Lm {
            form: LmForm::Alu { op, .. } | LmForm::St { op, .. },
            ..
        } => alu(op),
        Step::Lm {
            form: LmForm::Mov { .. },
            ..
        } => (false, false, true),
        Step::Shf { .. } | Step::ShfInd { .. } => (false, false, true),
        _ => (false, false, false),
    }
}

/// Whether a step reads the stored flags (a branch reads them from memory; an LM step, a
/// command or a call may leave the block, see [`Step::Lm`]).
fn reads_flags(s: &Step) -> bool {
    matches!(
        s,
        Step::Br { .. }
            | Step::Lm { .. }
            | Step::CtmRead { .. }
            | Step::EmemAdd { .. }
            | Step::Lookup { .. }
    )
}

/// For each step: whether it must store its result flag and its carry/overflow flags (a
/// later step of the block overwrites them before anything reads them otherwise).
fn live_flags(steps: &[Step]) -> Vec<(bool, bool)> {
    let mut out = vec![(true, true); steps.len()];
    // Walking backwards: is the result / carry overwritten later without being read?
    let (mut res_dead, mut cv_dead) = (false, false);
    for (i, s) in steps.iter().enumerate().rev() {
        let (reads_c, writes_cv, writes_res) = flag_use(s);
        out[i] = (!res_dead, !cv_dead);
        if writes_res {
            res_dead = true;
        }
        if writes_cv {
            cv_dead = true;
        }
        if reads_c {
            cv_dead = false;
        }
        if reads_flags(s) {
            (res_dead, cv_dead) = (false, false);
        }
    }
    out
}

/// The slots a step reads (up to three) and writes, or `None` for a step that may leave
/// the block (at its exit every slot is observable).
fn slot_use(s: &Step) -> Option<([u16; 3], D)> {
    const NO: u16 = slot::ZERO as u16;
    const SINK: u8 = slot::SINK as u8;
    Some(match *s {
        Step::Alu { d, a, b, .. } | Step::Shf { d, a, b, .. } | Step::ShfInd { d, a, b, .. } => {
            ([a, b, NO], d)
        }
        Step::Set { d, .. } => ([NO; 3], d),
        Step::Merge { d, .. } => ([u16::from(d[0]), NO, NO], d),
        Step::Ld { d, b, keep, .. } => {
            let old = if keep == 0 { NO } else { u16::from(d[0]) };
            ([b, old, NO], d)
        }
        Step::Csr { src, .. } => ([src, NO, NO], [SINK; 2]),
        Step::BrBit { src, .. } => ([src, NO, NO], [SINK; 2]),
        Step::Br { .. } => ([NO; 3], [SINK; 2]),
        Step::Lm { .. } | Step::CtmRead { .. } | Step::EmemAdd { .. } | Step::Lookup { .. } => {
            return None;
        }
    })
}

/// The compiled blocks of a program: the code, kept alive for the blocks' function pointers.
pub(super) struct Compiled {
    /// Holds the executable memory the blocks point into.
    #[cfg(all(target_arch = "x86_64", unix))]
    _code: dynasmrt::ExecutableBuffer,
    /// One entry per address.
    pub(super) blocks: Vec<Option<Block>>,
    /// The unchecked copy of the block at address 0, if it has one (`x64_bound`).
    pub(super) first: Option<Unchecked>,
}

/// The block at address 0 entered past all of its entry check (`x64_bound`) but the room
/// for segments, which `h` checks (then runs the unchecked copy, else the checked one), for
/// a caller that proved the rest: `n + paid <= limit` and `pass_limit - (n + extra)` above
/// `paid + events * u32::MAX`.
///
/// Why: the fused start (`fast_run::fused`) enters the block at address 0 with a count,
/// limit, `extra` and `pass_limit` known per program and budget, so all of the check but the
/// room is decided once per program (`FastProgram::fused_budget`): the demo filter's check
/// of 15 host instructions per packet becomes 4 (callgrind, `simspeed pre`: 1,024.2 ->
/// 1,016.3 host instructions per frame without `memset` / `memcpy`, with the room check a
/// stub jumping to the unchecked copy; checking the room in Rust instead cost the fused
/// start more than it saved, 1,021.8).
#[derive(Clone, Copy)]
pub(super) struct Unchecked {
    pub(super) h: Handler,
    pub(super) paid: u64,
    pub(super) events: u64,
}

/// Compiles a block for every address of `ops` that starts one; `runs` are the runs `fast`
/// gives each address (`Hop::run`: a block that passes a swap pays the run after it as a
/// constant, see `x64_pass`). `None` when this host has no code generator or executable
/// memory cannot be had (the handlers then run everything). `lat`: the table the code is
/// for, its costs compiled in as constants (`FastProgram::native_for` keeps runs with any
/// other table off the code).
pub(super) fn compile(ops: &[Op], runs: &[u16], lat: &Latencies) -> Option<Compiled> {
    #[cfg(all(target_arch = "x86_64", unix))]
    {
        x64::compile(ops, runs, lat)
    }
    #[cfg(not(all(target_arch = "x86_64", unix)))]
    {
        let _ = (ops, runs, lat);
        None
    }
}

#[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(dead_code))]
mod slots;
#[cfg(all(test, target_arch = "x86_64", unix))]
mod tests_calls;
#[cfg(all(test, target_arch = "x86_64", unix))]
mod tests_inline;
#[cfg(all(test, target_arch = "x86_64", unix))]
mod tests_native;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64_bound;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64_branch;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64_call;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64_emit;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64_lag;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64_ld;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64_lm;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64_mem;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64_pair;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64_pass;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64_redo;
#[cfg(all(target_arch = "x86_64", unix))]
mod x64_sink;

#[cfg(test)]
mod tests_plan;
