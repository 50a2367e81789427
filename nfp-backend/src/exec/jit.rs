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
//! and cannot fault or leave the straight line: ALU ops (and fused ALU pairs), constant
//! shifts (and the ALU + indirect shift pair), `immed`, `ld_field` and `nop`, optionally
//! ended by one branch without defer slots (`br`, `br_bset`/`br_bclr`, and the fused
//! compare-and-branch ops). The straight-line handlers all continue with the next op
//! without paying anything (runs are paid where control enters them, see `fast`), so
//! running the whole block and then continuing with the op after it executes the same ops
//! with the same counts. A block that ends in a branch returns whether it is taken, and its
//! handler then does exactly what the branch's own handler does after deciding. Each address that starts a block of
//! at least [`MIN_OPS`] ops gets its own block, so entering the middle of a stretch (a branch
//! target) is as fast as entering its start. The profiled loop keeps the handlers.
//!
//! The code works on the thread's register file in memory (`rdi`) and its condition codes
//! (`rsi`, [`Cc`] is `repr(C)`): each op loads its operands, computes with the same-width
//! host instruction, and stores its destination slots; the ME's carry and overflow are the
//! host's CF and OF (inverted CF for subtraction, whose ME carry means "no borrow"). A flag
//! store is left out only when a later op of the same block overwrites that flag before any
//! op reads it. Slots that are constants (the zero slot and the immediate slots, never
//! written) are folded into the code, and stores to the sink slot are dropped. The fast
//! path's tests hold it to the reference executor.

use super::fast::{A, D, Hop, Op};
use super::fast_branch::branch;
use super::fast_handlers::mismatch;
use super::fast_run::{Cx, Out, next};
use super::thread::{Cc, Thread, slot};
use crate::target::{Cond, ShiftKind};

/// Fewest ops (dispatches) worth a block: one op gains little over its handler.
pub(super) const MIN_OPS: usize = 2;

/// Longest block, in ops (bounds the code size of long straight-line stretches, each of whose
/// addresses gets its own block).
const MAX_OPS: usize = 48;

/// A compiled block: `f(file, cc)` runs it and returns whether its branch (if any) is taken.
pub(super) type BlockFn = unsafe extern "sysv64" fn(*mut u32, *mut Cc) -> u32;

/// A block at an address: its code and the instructions it covers.
#[derive(Clone, Copy)]
pub(super) struct Block {
    pub(super) f: BlockFn,
    /// Addresses the block's straight-line ops cover: execution continues at `pc + len`,
    /// which is the block's branch when `br` is non-zero.
    pub(super) len: u16,
    /// The width of the branch op that ends the block (0: none).
    pub(super) br: u8,
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
            | Op::Nop
    )
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

/// The handler of an address with a block (plain loop only): runs the block, continues
/// after it.
pub(super) fn native(t: &mut Thread, cx: &mut Cx<'_>, ip: *const Hop, n: u64) -> Out {
    // SAFETY: `ip` points into the program's hops (invariant on `fast_run::next`); the hop
    // of a block's first op holds the block's address in `t` (`FastProgram::new`), and
    // `cx.blocks` is the program's block table, one entry per hop.
    let block = unsafe { *cx.blocks.add(usize::from((*ip).t)) };
    let Some(b) = block else {
        return mismatch(cx, ip, n);
    };
    // SAFETY: the block was compiled for this program's ops at this address; it reads and
    // writes only slots below `slot::FILE` of `file` and the fields of `cc`, and the code
    // lives as long as the program that holds `ip`.
    let taken = unsafe { (b.f)(t.file.as_mut_ptr(), &mut t.cc) } != 0;
    // A block ends before the program's final slow op, so `pc + len` is one of its ops.
    let at = ip.wrapping_add(usize::from(b.len));
    if b.br == 0 {
        next::<false>(t, cx, at, n)
    } else {
        branch::<false>(t, cx, at, n, taken, usize::from(b.br))
    }
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
    /// The block's branch: returns whether `cond` holds on the flags.
    Br {
        cond: Cond,
    },
    /// The block's `br_bset` / `br_bclr`: returns whether bit `bit` of `src` is `set`.
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
    #[cfg(target_arch = "x86_64")]
    _code: dynasmrt::ExecutableBuffer,
    /// One entry per address.
    pub(super) blocks: Vec<Option<Block>>,
}

/// Compiles a block for every address of `ops` that starts one; `None` when this host has no
/// code generator or executable memory cannot be had (the handlers then run everything).
pub(super) fn compile(ops: &[Op]) -> Option<Compiled> {
    #[cfg(target_arch = "x86_64")]
    {
        x64::compile(ops)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = ops;
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod x64 {
    use super::*;
    use dynasmrt::{DynasmApi, dynasm, x64::Assembler};

    /// Byte offsets of the condition codes in [`Cc`] (`repr(C)`: `res: u32`, `c`, `v`).
    const CC_C: i32 = 4;
    const CC_V: i32 = 5;

    /// An operand: a slot of the file, or a constant (zero / immediate slots).
    #[derive(Clone, Copy)]
    enum Val {
        Slot(i32),
        Const(u32),
    }

    fn val(s: u16) -> Val {
        let s = usize::from(s) & (slot::FILE - 1);
        if s == slot::ZERO {
            Val::Const(0)
        } else if s >= slot::IMM {
            Val::Const((s - slot::IMM) as u32)
        } else {
            Val::Slot(4 * s as i32)
        }
    }

    /// Loads `v` into eax.
    fn load_eax(a: &mut Assembler, v: Val) {
        match v {
            Val::Slot(o) => dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + o]),
            Val::Const(k) => dynasm!(a ; .arch x64 ; mov eax, k as i32),
        }
    }

    /// Loads `v` into ecx.
    fn load_ecx(a: &mut Assembler, v: Val) {
        match v {
            Val::Slot(o) => dynasm!(a ; .arch x64 ; mov ecx, DWORD [rdi + o]),
            Val::Const(k) => dynasm!(a ; .arch x64 ; mov ecx, k as i32),
        }
    }

    /// Loads `v` into edx.
    fn load_edx(a: &mut Assembler, v: Val) {
        match v {
            Val::Slot(o) => dynasm!(a ; .arch x64 ; mov edx, DWORD [rdi + o]),
            Val::Const(k) => dynasm!(a ; .arch x64 ; mov edx, k as i32),
        }
    }

    /// Stores eax to both slots of `d` (the sink slot is never read: skipped).
    fn store(a: &mut Assembler, d: D) {
        for (i, &s) in d.iter().enumerate() {
            if usize::from(s) == slot::SINK || (i == 1 && d[1] == d[0]) {
                continue;
            }
            let o = 4 * i32::from(s);
            dynasm!(a ; .arch x64 ; mov DWORD [rdi + o], eax);
        }
    }

    /// `eax = eax OP b` for the logic ops (no carry/overflow).
    fn logic(a: &mut Assembler, op: A, b: Val) {
        match (op, b) {
            (A::And, Val::Slot(o)) => dynasm!(a ; .arch x64 ; and eax, DWORD [rdi + o]),
            (A::And, Val::Const(k)) => dynasm!(a ; .arch x64 ; and eax, k as i32),
            (A::Or, Val::Slot(o)) => dynasm!(a ; .arch x64 ; or eax, DWORD [rdi + o]),
            (A::Or, Val::Const(k)) => dynasm!(a ; .arch x64 ; or eax, k as i32),
            (A::Xor, Val::Slot(o)) => dynasm!(a ; .arch x64 ; xor eax, DWORD [rdi + o]),
            (A::Xor, Val::Const(k)) => dynasm!(a ; .arch x64 ; xor eax, k as i32),
            _ => {}
        }
    }

    /// One ALU step: result in eax, flags stored as `live` says.
    fn alu(a: &mut Assembler, op: A, av: Val, bv: Val, live: (bool, bool)) {
        match op {
            A::PassB => load_eax(a, bv),
            A::NotB => {
                load_eax(a, bv);
                dynasm!(a ; .arch x64 ; not eax);
            }
            A::And | A::Or | A::Xor => {
                load_eax(a, av);
                logic(a, op, bv);
            }
            A::AndNotA => {
                load_eax(a, av);
                dynasm!(a ; .arch x64 ; not eax);
                logic(a, A::And, bv);
            }
            A::AndNotB => {
                load_ecx(a, bv);
                dynasm!(a ; .arch x64 ; not ecx);
                load_eax(a, av);
                dynasm!(a ; .arch x64 ; and eax, ecx);
            }
            A::Add | A::AddCarry | A::Sub | A::SubCarry => {
                load_eax(a, av);
                // The carry in: CF = c for add-with-carry, CF = !c (a borrow) for
                // subtract-with-carry. `mov` leaves flags alone, so eax is loaded first.
                match op {
                    A::AddCarry => dynasm!(a ; .arch x64 ; mov dl, BYTE [rsi + CC_C] ; add dl, -1),
                    A::SubCarry => dynasm!(a ; .arch x64 ; mov dl, BYTE [rsi + CC_C] ; cmp dl, 1),
                    _ => {}
                }
                match (op, bv) {
                    (A::Add, Val::Slot(o)) => dynasm!(a ; .arch x64 ; add eax, DWORD [rdi + o]),
                    (A::Add, Val::Const(k)) => dynasm!(a ; .arch x64 ; add eax, k as i32),
                    (A::AddCarry, Val::Slot(o)) => {
                        dynasm!(a ; .arch x64 ; adc eax, DWORD [rdi + o])
                    }
                    (A::AddCarry, Val::Const(k)) => dynasm!(a ; .arch x64 ; adc eax, k as i32),
                    (A::Sub, Val::Slot(o)) => dynasm!(a ; .arch x64 ; sub eax, DWORD [rdi + o]),
                    (A::Sub, Val::Const(k)) => dynasm!(a ; .arch x64 ; sub eax, k as i32),
                    (A::SubCarry, Val::Slot(o)) => {
                        dynasm!(a ; .arch x64 ; sbb eax, DWORD [rdi + o])
                    }
                    (A::SubCarry, Val::Const(k)) => dynasm!(a ; .arch x64 ; sbb eax, k as i32),
                    _ => {}
                }
                if live.1 {
                    if matches!(op, A::Add | A::AddCarry) {
                        dynasm!(a ; .arch x64 ; setc BYTE [rsi + CC_C]);
                    } else {
                        dynasm!(a ; .arch x64 ; setnc BYTE [rsi + CC_C]);
                    }
                    dynasm!(a ; .arch x64 ; seto BYTE [rsi + CC_V]);
                }
            }
        }
        if live.0 {
            dynasm!(a ; .arch x64 ; mov DWORD [rsi], eax);
        }
    }

    /// `eax = shift(kind, a, b, count)`, the count a constant or in cl (`None`).
    fn shift(a: &mut Assembler, kind: ShiftKind, av: Val, bv: Val, n: Option<u8>) {
        load_eax(a, bv);
        if kind == ShiftKind::DoubleRight {
            load_edx(a, av);
        }
        match (kind, n) {
            (_, Some(0)) => {}
            (ShiftKind::Left, Some(k)) => dynasm!(a ; .arch x64 ; shl eax, k as i8),
            (ShiftKind::Right, Some(k)) => dynasm!(a ; .arch x64 ; shr eax, k as i8),
            (ShiftKind::ArithRight, Some(k)) => dynasm!(a ; .arch x64 ; sar eax, k as i8),
            (ShiftKind::RotRight, Some(k)) => dynasm!(a ; .arch x64 ; ror eax, k as i8),
            (_, Some(k)) => dynasm!(a ; .arch x64 ; shrd eax, edx, k as i8),
            (ShiftKind::Left, None) => dynasm!(a ; .arch x64 ; shl eax, cl),
            (ShiftKind::Right, None) => dynasm!(a ; .arch x64 ; shr eax, cl),
            (ShiftKind::ArithRight, None) => dynasm!(a ; .arch x64 ; sar eax, cl),
            (ShiftKind::RotRight, None) => dynasm!(a ; .arch x64 ; ror eax, cl),
            (_, None) => dynasm!(a ; .arch x64 ; shrd eax, edx, cl),
        }
    }

    fn emit(a: &mut Assembler, steps: &[Step]) {
        let live = live_flags(steps);
        for (s, &l) in steps.iter().zip(&live) {
            match *s {
                Step::Alu { op, d, a: x, b } => {
                    alu(a, op, val(x), val(b), l);
                    store(a, d);
                }
                Step::Shf {
                    kind,
                    d,
                    a: x,
                    b,
                    n,
                } => {
                    shift(a, kind, val(x), val(b), Some(n));
                    if l.0 {
                        dynasm!(a ; .arch x64 ; mov DWORD [rsi], eax);
                    }
                    store(a, d);
                }
                Step::ShfInd { kind, d, a: x, b } => {
                    // The previous step (its ALU op) left its result in eax.
                    dynasm!(a ; .arch x64 ; mov ecx, eax);
                    shift(a, kind, val(x), val(b), None);
                    if l.0 {
                        dynasm!(a ; .arch x64 ; mov DWORD [rsi], eax);
                    }
                    store(a, d);
                }
                Step::Set { d, v } => {
                    for (i, &s) in d.iter().enumerate() {
                        if usize::from(s) == slot::SINK || (i == 1 && d[1] == d[0]) {
                            continue;
                        }
                        let o = 4 * i32::from(s);
                        dynasm!(a ; .arch x64 ; mov DWORD [rdi + o], v as i32);
                    }
                }
                Step::Merge { d, keep, v } => {
                    load_eax(a, val(u16::from(d[0])));
                    dynasm!(a ; .arch x64 ; and eax, keep as i32 ; or eax, v as i32);
                    store(a, d);
                }
                Step::Ld {
                    d,
                    b,
                    rot,
                    mask,
                    keep,
                } => {
                    match val(b) {
                        Val::Const(k) => {
                            let k = k.rotate_right(u32::from(rot)) & mask;
                            dynasm!(a ; .arch x64 ; mov ecx, k as i32);
                        }
                        v => {
                            load_ecx(a, v);
                            if rot % 32 != 0 {
                                dynasm!(a ; .arch x64 ; ror ecx, (rot % 32) as i8);
                            }
                            dynasm!(a ; .arch x64 ; and ecx, mask as i32);
                        }
                    }
                    if keep == 0 {
                        dynasm!(a ; .arch x64 ; mov eax, ecx);
                    } else {
                        load_eax(a, val(u16::from(d[0])));
                        dynasm!(a ; .arch x64 ; and eax, keep as i32 ; or eax, ecx);
                    }
                    store(a, d);
                }
                Step::Br { cond } => branch_cond(a, cond),
                Step::BrBit { src, bit, set } => {
                    load_eax(a, val(src));
                    dynasm!(a ; .arch x64 ; shr eax, bit as i8 ; and eax, 1);
                    if !set {
                        dynasm!(a ; .arch x64 ; xor eax, 1);
                    }
                    dynasm!(a ; .arch x64 ; ret);
                    return;
                }
            }
            if matches!(s, Step::Br { .. }) {
                dynasm!(a ; .arch x64 ; ret);
                return;
            }
        }
        // No branch: the return value is unused.
        dynasm!(a ; .arch x64 ; ret);
    }

    /// eax = whether `cond` holds on the stored flags (`fast_handlers::cond`): Z and N from
    /// the stored result, C and V from their bytes.
    fn branch_cond(a: &mut Assembler, cond: Cond) {
        // ecx = N, edx = V (for the signed conditions).
        let nv = |a: &mut Assembler| {
            dynasm!(a ; .arch x64
                ; mov ecx, DWORD [rsi] ; shr ecx, 31
                ; movzx edx, BYTE [rsi + CC_V]);
        };
        match cond {
            Cond::Eq => dynasm!(a ; .arch x64 ; xor eax, eax ; cmp DWORD [rsi], 0 ; sete al),
            Cond::Ne => dynasm!(a ; .arch x64 ; xor eax, eax ; cmp DWORD [rsi], 0 ; setne al),
            Cond::Mi => dynasm!(a ; .arch x64 ; mov eax, DWORD [rsi] ; shr eax, 31),
            Cond::Pl => dynasm!(a ; .arch x64 ; mov eax, DWORD [rsi] ; shr eax, 31 ; xor eax, 1),
            Cond::Hs => dynasm!(a ; .arch x64 ; movzx eax, BYTE [rsi + CC_C]),
            Cond::Lo => dynasm!(a ; .arch x64 ; movzx eax, BYTE [rsi + CC_C] ; xor eax, 1),
            Cond::Vs => dynasm!(a ; .arch x64 ; movzx eax, BYTE [rsi + CC_V]),
            Cond::Vc => dynasm!(a ; .arch x64 ; movzx eax, BYTE [rsi + CC_V] ; xor eax, 1),
            Cond::Ge => {
                nv(a);
                dynasm!(a ; .arch x64 ; xor eax, eax ; cmp ecx, edx ; sete al);
            }
            Cond::Lt => {
                nv(a);
                dynasm!(a ; .arch x64 ; xor eax, eax ; cmp ecx, edx ; setne al);
            }
            Cond::Le => {
                nv(a);
                dynasm!(a ; .arch x64
                    ; xor ecx, edx
                    ; xor eax, eax ; cmp DWORD [rsi], 0 ; sete al
                    ; or eax, ecx);
            }
            Cond::Gt => {
                nv(a);
                dynasm!(a ; .arch x64
                    ; xor ecx, edx ; xor ecx, 1
                    ; xor eax, eax ; cmp DWORD [rsi], 0 ; setne al
                    ; and eax, ecx);
            }
            Cond::Always => dynasm!(a ; .arch x64 ; mov eax, 1),
        }
    }

    pub(super) fn compile(ops: &[Op]) -> Option<Compiled> {
        let mut asm = Assembler::new().ok()?;
        let mut starts = Vec::with_capacity(ops.len());
        for pc in 0..ops.len() {
            starts.push(block_at(ops, pc).map(|b| {
                let start = asm.offset();
                // The straight-line part ends where the branch (if any) starts.
                let (len, br) = match b.last() {
                    Some(&(at, op)) if ends_block(&op) => (at - pc, op.width() as u8),
                    Some(&(at, op)) => (at + op.width() - pc, 0),
                    None => (0, 0),
                };
                emit(&mut asm, &steps(&b));
                (start, len, br)
            }));
        }
        let code = asm.finalize().ok()?;
        let blocks = starts
            .into_iter()
            .map(|s| {
                s.and_then(|(start, len, br)| {
                    // SAFETY: `start` is the offset of a function emitted above with the
                    // `BlockFn` calling convention (sysv64, two pointer arguments, `ret`).
                    let f = unsafe { std::mem::transmute::<*const u8, BlockFn>(code.ptr(start)) };
                    Some(Block {
                        f,
                        len: u16::try_from(len).ok()?,
                        br,
                    })
                })
            })
            .collect();
        Some(Compiled {
            _code: code,
            blocks,
        })
    }
}

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
        assert!(block_at(&ops, 1).is_none(), "one op is not worth a block");
        assert!(block_at(&ops, 3).is_none());
        // A branch ends a block (and is part of it).
        assert_eq!(block_at(&ops, 5).map(|b| b.len()), Some(2));
        assert!(block_at(&ops, 6).is_none());
    }
}
