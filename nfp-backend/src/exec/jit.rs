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
//! A *block* is a maximal sequence of consecutive ops that only compute on register slots
//! (and the thread's LM window registers) and cannot fault or leave the straight line: ALU
//! ops (and fused ALU pairs), constant shifts (and the ALU + indirect shift pair), `immed`,
//! `ld_field`, `local_csr_wr[ActLMAddr]` and `nop`, optionally
//! ended by one branch without defer slots (`br`, `br_bset`/`br_bclr`, and the fused
//! compare-and-branch ops). The straight-line handlers all continue with the next op
//! without paying anything (runs are paid where control enters them, see `fast`), so
//! running the whole block and then continuing with the op after it executes the same ops
//! with the same counts. A block that ends in a branch decides it, then does exactly what
//! `fast_branch::branch` does after deciding (penalty, paying the target or fall-through
//! run, or leaving the chain through `fast_run::unpaid_at`). Each address that starts a block of
//! at least [`MIN_OPS`] ops gets its own block, so entering the middle of a stretch (a branch
//! target) is as fast as entering its start. The profiled loop keeps the handlers.
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
//! thread; field offsets come from `offset_of!`, [`Cc`] is `repr(C)`); `r8` / `r9` keep the
//! op pointer and the count while the body uses `eax`, `ecx`, `edx`. Each op loads its operands, computes with the same-width
//! host instruction, and stores its destination slots; the ME's carry and overflow are the
//! host's CF and OF (inverted CF for subtraction, whose ME carry means "no borrow"). A flag
//! store is left out only when a later op of the same block overwrites that flag before any
//! op reads it. Slots that are constants (the zero slot and the immediate slots, never
//! written) are folded into the code, and stores to the sink slot are dropped. The fast
//! path's tests hold it to the reference executor.

use super::fast::{A, D, Op};
use super::fast_run::Handler;
use super::thread::{Cc, slot};
use crate::target::{Cond, ShiftKind};

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
            | Op::Nop
    )
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

/// Whether `op` is a branch a block may end with.
fn ends_block(op: &Op) -> bool {
    matches!(
        op,
        Op::Br { .. } | Op::BrBit { .. } | Op::AluBr { .. } | Op::Alu2Br { .. }
    )
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

/// The two ALU steps of a fused pair.
fn push_alu2(out: &mut Vec<Step>, pair: [(A, D, u16, u16); 2]) {
    for (op, d, a, b) in pair {
        out.push(Step::Alu { op, d, a, b });
    }
}

fn steps(ops: &[(usize, Op)]) -> Vec<Step> {
    let mut out = Vec::new();
    for &(_, op) in ops {
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
    match s {
        Step::Alu { op, .. } => {
            let arith = matches!(op, A::Add | A::AddCarry | A::Sub | A::SubCarry);
            (matches!(op, A::AddCarry | A::SubCarry), arith, true)
        }
        Step::Shf { .. } | Step::ShfInd { .. } => (false, false, true),
        _ => (false, false, false),
    }
}

/// Whether a step reads the stored flags (a branch reads them from memory).
fn reads_flags(s: &Step) -> bool {
    matches!(s, Step::Br { .. })
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

/// The compiled blocks of a program: the code, kept alive for the blocks' function pointers.
pub(super) struct Compiled {
    /// Holds the executable memory the blocks point into.
    #[cfg(all(target_arch = "x86_64", unix))]
    _code: dynasmrt::ExecutableBuffer,
    /// One entry per address.
    pub(super) blocks: Vec<Option<Block>>,
}

/// Compiles a block for every address of `ops` that starts one; `None` when this host has no
/// code generator or executable memory cannot be had (the handlers then run everything).
pub(super) fn compile(ops: &[Op]) -> Option<Compiled> {
    #[cfg(all(target_arch = "x86_64", unix))]
    {
        x64::compile(ops)
    }
    #[cfg(not(all(target_arch = "x86_64", unix)))]
    {
        let _ = ops;
        None
    }
}

#[cfg(all(target_arch = "x86_64", unix))]
mod x64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_store_is_dropped_only_when_overwritten_before_a_read() {
        let alu = |op| Step::Alu {
            op,
            d: [0, 0],
            a: 0,
            b: 0,
        };
        // sub, sub_carry, add, xor: the sub's carry is read by the sub_carry; the
        // sub_carry's is overwritten by the add unread; the add's is not overwritten (xor
        // writes no carry). Only the last result is stored.
        let s = [alu(A::Sub), alu(A::SubCarry), alu(A::Add), alu(A::Xor)];
        let live = live_flags(&s);
        assert_eq!(
            live,
            vec![(false, true), (false, false), (false, true), (true, true)]
        );
        // add then sub: the add's carry is overwritten unread.
        let live = live_flags(&[alu(A::Add), alu(A::Sub)]);
        assert_eq!(live, vec![(false, false), (true, true)]);
    }

    #[test]
    fn blocks_cover_only_straight_line_ops() {
        let set = Op::Set { d: [0, 0], v: 1 };
        let br = Op::Br {
            cond: Cond::Eq,
            t: 0,
            rt: 1,
            rn: 1,
        };
        let ops = [set, set, Op::Exit, set, Op::Slow, set, br, set];
        assert_eq!(block_at(&ops, 0).map(|b| b.len()), Some(2));
        // One op is a block too (a block is entered as cheaply as a handler).
        assert_eq!(block_at(&ops, 1).map(|b| b.len()), Some(1));
        assert_eq!(block_at(&ops, 3).map(|b| b.len()), Some(1));
        assert!(block_at(&ops, 2).is_none());
        assert!(block_at(&ops, 4).is_none());
        // A branch ends a block (and is part of it).
        assert_eq!(block_at(&ops, 5).map(|b| b.len()), Some(2));
        assert_eq!(block_at(&ops, 6).map(|b| b.len()), Some(1));
    }
}
