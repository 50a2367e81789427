//! Pre-decoding: typed instructions → the flat [`Op`] array the run loop executes.
//!
//! Everything that can be decided once is decided here, so the run loop never re-decides it:
//! operation × width × operand kind become one opcode; immediates are pre-extended; jump and
//! call targets become absolute op indices (validated, so the loop indexes without checks);
//! division by a constant 0 or -1 becomes the equivalent move/negate; accesses to
//! `r10 + constant` that are provably inside the frame become direct stack ops; helpers are
//! resolved (an unknown or unimplemented helper is a [`LoadError`] here, never at run time).
//!
//! Op indices differ from instruction indices only by the `lddw` second halves, which get
//! no op; [`Compiled::pcs`] maps back for messages.

use super::fault::FaultKind;
use super::helpers;
use super::memory::{CODE, MAP_HANDLE, STACK_SIZE, vaddr};
use super::op::{Code, Op, atomic_kind};
use super::select::handler_of;
use super::select::{jmp_code, lower_alu};
use crate::isa::{
    AtomicOp, ByteOrder, CallTarget, DecodeError, Insn, LdImm64, Operand, Size, Width,
};
use crate::{ProgType, Program};

/// The kernel's limit on program size for privileged loads (`BPF_COMPLEXITY_LIMIT_INSNS`).
pub const MAX_PROGRAM_SLOTS: usize = 1_000_000;

/// Why a program cannot be loaded into the interpreter. Each case carries the instruction
/// index (slot) it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The program calls a helper id the kernel does not define.
    #[error("insn {pc}: call to unknown helper id {id}")]
    UnknownHelper {
        /// Instruction index.
        pc: usize,
        /// Helper id.
        id: i32,
    },
    /// The program calls a kernel helper this interpreter does not implement.
    #[error("insn {pc}: helper {name}#{id} is not implemented by the interpreter")]
    HelperNotImplemented {
        /// Instruction index.
        pc: usize,
        /// Helper id.
        id: i32,
        /// Kernel name (`bpf_...`).
        name: &'static str,
    },
    /// The helper exists but the kernel does not offer it to this program type.
    #[error("insn {pc}: program of type {prog_type} cannot use helper {name}#{id}")]
    HelperNotAllowed {
        /// Instruction index.
        pc: usize,
        /// Helper id.
        id: i32,
        /// Kernel name.
        name: &'static str,
        /// Program type name.
        prog_type: &'static str,
    },
    /// A valid instruction the interpreter does not model (kfunc calls, BTF-id loads).
    #[error("insn {pc}: {what} is not supported by the interpreter")]
    Unsupported {
        /// Instruction index.
        pc: usize,
        /// What it is.
        what: &'static str,
    },
    /// `lddw` names a map the program does not declare.
    #[error("insn {pc}: lddw refers to map fd {fd}, but the program has {nmaps} maps")]
    BadMapFd {
        /// Instruction index.
        pc: usize,
        /// The fd field.
        fd: i32,
        /// Number of maps.
        nmaps: usize,
    },
    /// `lddw` asks for the address of a value of a map that has no fixed value address.
    #[error("insn {pc}: lddw of a value address in map {fd}: {reason}")]
    BadMapValue {
        /// Instruction index.
        pc: usize,
        /// Map fd.
        fd: i32,
        /// Why.
        reason: String,
    },
    /// The instruction stream is malformed (bad targets, stray `lddw` halves, bad widths).
    #[error(transparent)]
    Invalid(#[from] DecodeError),
    /// An instruction that cannot appear in a well-formed [`Program`] at all.
    #[error("insn {pc}: malformed instruction: {what}")]
    Malformed {
        /// Instruction index.
        pc: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// More than [`MAX_PROGRAM_SLOTS`] instructions.
    #[error(
        "program has {slots} instructions, more than the kernel's limit of {MAX_PROGRAM_SLOTS}"
    )]
    TooLarge {
        /// Number of slots.
        slots: usize,
    },
    /// No context can be built for this program type.
    #[error("programs of type {0:?} cannot be run by the interpreter (no context model)")]
    NoContext(ProgType),
    /// A map could not be created.
    #[error(transparent)]
    Map(#[from] crate::maps::MapError),
    /// A tail-call target declares maps different from the main program's.
    #[error("program '{name}' declares maps that differ from the main program's")]
    MapsMismatch {
        /// Program name.
        name: String,
    },
    /// A tail-call target has another program type (the kernel requires the same type).
    #[error("program '{name}' is of type {got}, but the Vm runs {want} programs")]
    ProgTypeMismatch {
        /// Program name.
        name: String,
        /// Its type.
        got: &'static str,
        /// The Vm's type.
        want: &'static str,
    },
}

/// Compiled code of all programs in a Vm, in one op array.
pub(crate) struct Compiled {
    /// Two copies of the ops of all programs, in one allocation so that the run loop can
    /// switch between them by a fixed distance (see `exec`): first the fast copy, with
    /// superinstructions (see `fuse`), then the counted copy, plain, index for index. The last
    /// op of every program is a fall-off-the-end sentinel.
    pub(crate) code: Vec<Op>,
    /// Ops per copy.
    pub(crate) len: usize,
    /// Slot index (pc) of each op, for messages.
    pub(crate) pcs: Vec<u32>,
    /// Where each program's ops are.
    pub(crate) progs: Vec<ProgCode>,
    /// Faults raised by `Fault` ops, by index.
    pub(crate) faults: Vec<FaultKind>,
    /// Lowest offset in a 512-byte frame that a direct stack store (`r10` + constant) can
    /// write (512: none). Writes through other registers are tracked at run time (see
    /// `memory`). Lets the Vm re-zero only the part of the stack a run may have dirtied.
    pub(crate) stack_low: usize,
    /// Whether some op may write memory other than its own stack frame: a store or an
    /// atomic through a register, or a helper call (helpers may fill buffers). A `mem`
    /// program without any runs on the caller's input in place instead of a copy (see
    /// `Vm::execute`).
    pub(crate) writes_memory: bool,
    /// Registers the main program may read before writing them (bit i = ri; see
    /// `liveness`): the only ones a run must zero besides those it sets.
    pub(crate) entry_live: u16,
    /// Whether to form superinstructions.
    fuse: bool,
    /// `(op, target)` indices of every jump, call and jumping superinstruction of the fast
    /// copy: [`Compiled::relink`] writes the target's address into the op.
    links: Vec<(usize, usize)>,
}

/// Where one program lives in [`Code::ops`].
pub(crate) struct ProgCode {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// What the compiler needs to know about the program's maps.
pub(crate) trait MapInfo {
    /// Number of maps.
    fn count(&self) -> usize;
    /// Region slot and offset of value 0 (for `lddw` map-value pseudo loads).
    fn value_base(&self, fd: usize) -> Result<(usize, u32), String>;
}

impl Compiled {
    pub(crate) fn new(fuse: bool) -> Compiled {
        Compiled {
            fuse,
            code: Vec::new(),
            len: 0,
            pcs: Vec::new(),
            progs: Vec::new(),
            faults: Vec::new(),
            stack_low: STACK_SIZE,
            writes_memory: false,
            entry_live: 0,
            links: Vec::new(),
        }
    }

    /// Writes the address of its target into every jump of the fast copy (see [`Op`]). Must
    /// run after every change to `code` that may move it; `add` is the only one. The targets
    /// were checked to lie inside their program, so every address is an op of this array.
    fn relink(&mut self) {
        let base = self.code.as_ptr() as usize;
        let size = std::mem::size_of::<Op>();
        for &(i, t) in &self.links {
            debug_assert!(i < self.len && t < self.len);
            if let Some(op) = self.code.get_mut(i) {
                op.b = (base + t * size) as u64;
            }
        }
    }

    /// The fast copy.
    #[cfg(test)]
    pub(crate) fn fast(&self) -> &[Op] {
        &self.code[..self.len]
    }

    /// Which program op `op` belongs to.
    pub(crate) fn prog_of(&self, op: usize) -> usize {
        self.progs
            .iter()
            .position(|p| (p.start..p.end).contains(&op))
            .unwrap_or(0)
    }

    /// Compiles `prog` and appends it; returns its program index.
    pub(crate) fn add(&mut self, prog: &Program, maps: &dyn MapInfo) -> Result<usize, LoadError> {
        let _span =
            tracing::debug_span!("compile", name = %prog.name, slots = prog.insns.len()).entered();
        let insns = &prog.insns;
        if insns.len() > MAX_PROGRAM_SLOTS {
            return Err(LoadError::TooLarge { slots: insns.len() });
        }
        crate::isa::check_targets(insns)?;
        if insns.is_empty() {
            return Err(DecodeError {
                pc: 0,
                kind: crate::isa::DecodeErrorKind::Empty,
            }
            .into());
        }
        let base = self.len;

        // Pass 1: op index of every slot (lddw second halves have none).
        let mut op_of_slot = vec![u32::MAX; insns.len() + 1];
        let mut n = base;
        let mut pc = 0;
        while pc < insns.len() {
            let insn = &insns[pc];
            if *insn == Insn::LdImm64Tail {
                return Err(LoadError::Malformed {
                    pc,
                    what: "second half of lddw without a first half",
                });
            }
            op_of_slot[pc] = n as u32;
            n += 1;
            if let Insn::LdImm64 { .. } = insn {
                if insns.get(pc + 1) != Some(&Insn::LdImm64Tail) {
                    return Err(LoadError::Malformed {
                        pc,
                        what: "lddw without its second half",
                    });
                }
                pc += 2;
            } else {
                pc += 1;
            }
        }
        op_of_slot[insns.len()] = n as u32; // the sentinel

        // Pass 2: emit.
        let target = |from: usize, to: i64| -> Result<u32, LoadError> {
            match usize::try_from(to).ok().and_then(|t| op_of_slot.get(t)) {
                Some(&op) if op != u32::MAX && (to as usize) < insns.len() => Ok(op),
                _ => Err(LoadError::Malformed {
                    pc: from,
                    what: "jump target outside the program",
                }),
            }
        };
        let mut ops = Vec::with_capacity(n + 1 - base);
        let mut pcs = Vec::with_capacity(n + 1 - base);
        let mut pc = 0;
        while pc < insns.len() {
            let insn = insns[pc];
            let op = self.lower(prog.prog_type, pc, insn, &target, maps)?;
            ops.push(op);
            pcs.push(pc as u32);
            pc += insn.slots();
        }
        let fell = self.static_fault(FaultKind::FellOffEnd);
        ops.push(fell);
        pcs.push(insns.len() as u32);
        let count = ops.len();
        debug_assert_eq!(base + count, n + 1);
        if self.progs.is_empty() && prog.prog_type == ProgType::Xdp {
            mark_ctx_words(&mut ops, base);
        }
        for (i, op) in ops.iter_mut().enumerate() {
            op.link(base + i);
        }
        // Runs, from the end: the sentinel ends the last one. Saturated (see `Op`).
        let sat = |r: u32| r.min(u16::MAX as u32) as u16;
        let mut run = 0u32;
        for op in ops.iter_mut().rev() {
            run = if op.ends_run() { 1 } else { run + 1 };
            op.run = sat(run);
        }
        for i in 0..count {
            let o = ops[i];
            if o.is_cond_jump() || o.code == Code::Ja {
                let to = (i as isize + o.rel()) as usize;
                ops[i].tr = ops.get(to).map_or(u16::MAX, |t| t.run);
                ops[i].fr = ops.get(i + 1).map_or(u16::MAX, |t| t.run);
            }
        }
        let mut counted = ops.clone();
        if self.progs.is_empty() {
            self.entry_live = super::liveness::live_at_entry(&counted);
        }
        for op in &mut counted {
            op.h = handler_of(op, true);
        }
        for op in &mut ops {
            op.h = handler_of(op, false);
        }
        let mut targets = Vec::new();
        if self.fuse {
            super::fuse::fuse(&mut ops, 0, count, &mut targets);
        }
        // The fast copy's plain jumps and calls take the fast layout too (superinstructions
        // never start with a jump, so these are exactly the ops `fuse` left plain).
        for (i, op) in ops.iter_mut().enumerate() {
            if op.has_target() {
                if op.is_cond_jump() {
                    op.set_taken_delta();
                }
                let rel = op.make_fast_layout();
                targets.push((i, i.wrapping_add_signed(rel)));
            }
        }
        let end = base + count;
        self.code.splice(base..base, ops);
        self.code.extend_from_slice(&counted);
        self.len = end;
        // Fast indices of earlier programs do not change: new fast ops go after them.
        self.links
            .extend(targets.into_iter().map(|(i, t)| (base + i, base + t)));
        self.relink();
        self.pcs.extend_from_slice(&pcs);
        for op in &counted {
            use Code::*;
            let stack_store = matches!(
                op.code,
                StackStB
                    | StackStH
                    | StackStW
                    | StackStDW
                    | StackStxB
                    | StackStxH
                    | StackStxW
                    | StackStxDW
            );
            if stack_store {
                self.stack_low = self.stack_low.min(op.a as usize);
            }
            self.writes_memory |= matches!(
                op.code,
                StB | StH
                    | StW
                    | StDW
                    | StxB
                    | StxH
                    | StxW
                    | StxDW
                    | Atomic32
                    | Atomic64
                    | Call
                    | CallX
                    | TailCall
            );
        }
        self.progs.push(ProgCode { start: base, end });
        Ok(self.progs.len() - 1)
    }

    fn static_fault(&mut self, kind: FaultKind) -> Op {
        self.faults.push(kind);
        Op {
            a: (self.faults.len() - 1) as u32,
            ..Op::new(Code::Fault)
        }
    }

    /// Lowers one instruction at slot `pc`.
    fn lower(
        &mut self,
        ty: ProgType,
        pc: usize,
        insn: Insn,
        target: &dyn Fn(usize, i64) -> Result<u32, LoadError>,
        maps: &dyn MapInfo,
    ) -> Result<Op, LoadError> {
        if writes_r10(&insn) {
            return Ok(self.static_fault(FaultKind::WriteFramePointer));
        }
        let op = match insn {
            Insn::Alu {
                op,
                width,
                dst,
                src,
            } => lower_alu(op, width, dst, src),
            Insn::Neg { width, dst } => Op {
                dst,
                ..Op::new(if width == Width::W64 {
                    Code::Neg64
                } else {
                    Code::Neg32
                })
            },
            Insn::Endian { order, bits, dst } => {
                let code = match (order, bits) {
                    (ByteOrder::ToLe, 16) => Code::Trunc16,
                    (ByteOrder::ToLe, 32) => Code::Trunc32,
                    (ByteOrder::ToLe, 64) => Code::Nop,
                    (_, 16) => Code::Swap16,
                    (_, 32) => Code::Swap32,
                    (_, 64) => Code::Swap64,
                    _ => {
                        return Err(LoadError::Malformed {
                            pc,
                            what: "byte-order width other than 16, 32 or 64",
                        });
                    }
                };
                Op {
                    dst,
                    ..Op::new(code)
                }
            }
            Insn::Load {
                size,
                signed,
                dst,
                src,
                off,
            } => {
                use Code::*;
                let (generic, stack) = match (size, signed) {
                    (Size::B, false) => (LdxB, StackLdxB),
                    (Size::H, false) => (LdxH, StackLdxH),
                    (Size::W, false) => (LdxW, StackLdxW),
                    (Size::DW, _) => (LdxDW, StackLdxDW),
                    (Size::B, true) => (LdxSB, StackLdxSB),
                    (Size::H, true) => (LdxSH, StackLdxSH),
                    (Size::W, true) => (LdxSW, StackLdxSW),
                };
                Op {
                    dst,
                    src,
                    ..mem_op(generic, stack, src, off, size)
                }
            }
            Insn::Store {
                size,
                dst,
                src,
                off,
            } => {
                use Code::*;
                let (generic, stack, s, imm) = match (src, size) {
                    (Operand::Imm(i), Size::B) => (StB, StackStB, 0, i),
                    (Operand::Imm(i), Size::H) => (StH, StackStH, 0, i),
                    (Operand::Imm(i), Size::W) => (StW, StackStW, 0, i),
                    (Operand::Imm(i), Size::DW) => (StDW, StackStDW, 0, i),
                    (Operand::Reg(r), Size::B) => (StxB, StackStxB, r, 0),
                    (Operand::Reg(r), Size::H) => (StxH, StackStxH, r, 0),
                    (Operand::Reg(r), Size::W) => (StxW, StackStxW, r, 0),
                    (Operand::Reg(r), Size::DW) => (StxDW, StackStxDW, r, 0),
                };
                Op {
                    dst,
                    src: s,
                    b: imm as i64 as u64,
                    ..mem_op(generic, stack, dst, off, size)
                }
            }
            Insn::Atomic {
                op,
                size,
                fetch,
                dst,
                src,
                off,
            } => {
                let code = match size {
                    Size::W => Code::Atomic32,
                    Size::DW => Code::Atomic64,
                    _ => {
                        return Err(LoadError::Malformed {
                            pc,
                            what: "atomic operation on 8 or 16 bits",
                        });
                    }
                };
                let kind = match op {
                    AtomicOp::Add => atomic_kind::ADD,
                    AtomicOp::Or => atomic_kind::OR,
                    AtomicOp::And => atomic_kind::AND,
                    AtomicOp::Xor => atomic_kind::XOR,
                    AtomicOp::Xchg => atomic_kind::XCHG | atomic_kind::FETCH,
                    AtomicOp::CmpXchg => atomic_kind::CMPXCHG | atomic_kind::FETCH,
                };
                let fetch = if fetch { atomic_kind::FETCH } else { 0 };
                Op {
                    dst,
                    src,
                    aux: kind | fetch,
                    a: off as i32 as u32,
                    ..Op::new(code)
                }
            }
            Insn::LdImm64 { dst, value } => {
                let b = match value {
                    LdImm64::Imm(v) => v,
                    LdImm64::MapFd(fd) | LdImm64::MapIdx(fd) => {
                        vaddr(MAP_HANDLE, map_index(pc, fd, maps)? as u32)
                    }
                    LdImm64::MapValue { fd, off } | LdImm64::MapIdxValue { idx: fd, off } => {
                        let i = map_index(pc, fd, maps)?;
                        let (slot, base) = maps
                            .value_base(i)
                            .map_err(|reason| LoadError::BadMapValue { pc, fd, reason })?;
                        vaddr(slot, base.wrapping_add(off))
                    }
                    LdImm64::Func(rel) => vaddr(CODE, target(pc, pc as i64 + 1 + rel as i64)?),
                    LdImm64::BtfId { .. } => {
                        return Err(LoadError::Unsupported {
                            pc,
                            what: "lddw of a kernel variable (BTF id)",
                        });
                    }
                };
                Op {
                    dst,
                    b,
                    ..Op::new(Code::LdImm64)
                }
            }
            Insn::LdImm64Tail => {
                return Err(LoadError::Malformed {
                    pc,
                    what: "second half of lddw without a first half",
                });
            }
            Insn::LdAbs { size, imm } | Insn::LdInd { size, imm, .. } => {
                if !matches!(ty, ProgType::SocketFilter | ProgType::SchedCls) {
                    return Err(LoadError::Unsupported {
                        pc,
                        what: "BPF_LD_[ABS|IND] outside socket filter and tc programs",
                    });
                }
                let (code, src) = match insn {
                    Insn::LdInd { src, .. } => (Code::LdInd, src),
                    _ => (Code::LdAbs, 0),
                };
                Op {
                    src,
                    aux: size.bytes() as u8,
                    b: imm as i64 as u64,
                    ..Op::new(code)
                }
            }
            Insn::Ja { off, .. } => Op {
                a: target(pc, pc as i64 + 1 + off as i64)?,
                ..Op::new(Code::Ja)
            },
            Insn::Jmp {
                cond,
                width,
                dst,
                src,
                off,
            } => {
                let (code, s, imm) = jmp_code(cond, width, src);
                Op {
                    dst,
                    src: s,
                    a: target(pc, pc as i64 + 1 + off as i64)?,
                    b: imm as u32 as u64,
                    ..Op::new(code)
                }
            }
            Insn::Call(CallTarget::Helper(id)) => {
                if id == helpers::TAIL_CALL_ID {
                    helpers::resolve(id, ty, pc)?;
                    Op::new(Code::TailCall)
                } else {
                    Op {
                        a: helpers::resolve(id, ty, pc)? as u32,
                        ..Op::new(Code::Call)
                    }
                }
            }
            Insn::Call(CallTarget::Local(rel)) => Op {
                a: target(pc, pc as i64 + 1 + rel as i64)?,
                ..Op::new(Code::CallLocal)
            },
            Insn::Call(CallTarget::Kfunc(_)) => {
                return Err(LoadError::Unsupported {
                    pc,
                    what: "kfunc call",
                });
            }
            Insn::CallX { reg } => Op {
                dst: reg,
                ..Op::new(Code::CallX)
            },
            Insn::Exit => Op::new(Code::Exit),
        };
        if op.dst > 10 || op.src > 10 {
            return Err(LoadError::Malformed {
                pc,
                what: "register number above 10",
            });
        }
        Ok(op)
    }
}

fn map_index(pc: usize, fd: i32, maps: &dyn MapInfo) -> Result<usize, LoadError> {
    usize::try_from(fd)
        .ok()
        .filter(|&i| i < maps.count())
        .ok_or(LoadError::BadMapFd {
            pc,
            fd,
            nmaps: maps.count(),
        })
}

/// Whether executing the instruction would write r10.
fn writes_r10(insn: &Insn) -> bool {
    match *insn {
        Insn::Alu { dst, .. }
        | Insn::Neg { dst, .. }
        | Insn::Endian { dst, .. }
        | Insn::Load { dst, .. }
        | Insn::LdImm64 { dst, .. } => dst == 10,
        Insn::Atomic { src, fetch, op, .. } => {
            src == 10
                && (fetch || matches!(op, AtomicOp::Xchg | AtomicOp::CmpXchg))
                && op != AtomicOp::CmpXchg
        }
        _ => false,
    }
}

/// A load/store: the direct stack form when the base is r10 and the access provably lies
/// inside the frame, else the translated form. `base` is the address register.
#[allow(clippy::too_many_arguments)]
/// [`Op::aux`] of an `LdxW` that probably reads an `xdp_md` word: its handler answers from
/// the Machine's copy of the words when the base register holds the context address, and
/// is the ordinary load otherwise (see `exec::ctx_ldxw`).
pub(crate) const CTX_WORD: u8 = 1;

/// Marks the `xdp_md` word loads of the main program's entry block with [`CTX_WORD`]: the
/// straight-line ops from op 0 up to the first one that is a jump or call target, transfers
/// control, or does anything but an ALU operation, a load or a store, tracking which
/// registers still hold r1's value (the context). Only a hint for handler selection: the
/// handler checks the register at run time, so a wrong mark costs time, never exactness.
/// `ops` are not linked yet (targets are absolute op indices); `base` is op 0's index.
fn mark_ctx_words(ops: &mut [Op], base: usize) {
    use Code::*;
    let targets: std::collections::HashSet<usize> = ops
        .iter()
        .filter(|o| o.has_target())
        .map(|o| (o.a as usize).wrapping_sub(base))
        .collect();
    let mut ctx: u16 = 1 << 1;
    for (i, op) in ops.iter_mut().enumerate() {
        if targets.contains(&i) {
            break;
        }
        let code = op.code as u8;
        let bit = |r: u8| 1u16.checked_shl(u32::from(r)).unwrap_or(0);
        if op.code == LdxW
            && ctx & bit(op.src) != 0
            && (0..24).contains(&(op.a as i32))
            && op.a % 4 == 0
        {
            op.aux = CTX_WORD;
            // The word's index, for `exec::ctx_ldxw` (a load has no other use for `b`).
            op.b = u64::from(op.a / 4);
        }
        let writes_dst = (Add64K as u8..=Swap64 as u8).contains(&code)
            || (LdxB as u8..=LdxSW as u8).contains(&code)
            || (StackLdxB as u8..=StackLdxSW as u8).contains(&code)
            || op.code == LdImm64;
        let stores = (StB as u8..=StxDW as u8).contains(&code)
            || (StackStB as u8..=StackStxDW as u8).contains(&code);
        if writes_dst {
            let copies_ctx = op.code == Mov64X && ctx & bit(op.src) != 0;
            ctx &= !bit(op.dst);
            if copies_ctx {
                ctx |= bit(op.dst);
            }
        } else if !stores {
            break;
        }
    }
}

/// A load or store through register `base` at `off`: the stack form (`a` = byte offset in the
/// frame) when `base` is r10 and the access lies inside the frame, else the generic form
/// (`a` = offset). Registers and the stored immediate are the caller's.
fn mem_op(generic: Code, stack: Code, base: u8, off: i16, size: Size) -> Op {
    let off = off as i64;
    let in_frame = -(STACK_SIZE as i64) <= off && off + size.bytes() as i64 <= 0;
    if base == 10 && in_frame {
        Op {
            a: (STACK_SIZE as i64 + off) as u32,
            ..Op::new(stack)
        }
    } else {
        Op {
            a: off as i32 as u32,
            ..Op::new(generic)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "compile_tests.rs"]
mod tests;
