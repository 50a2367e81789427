//! Typed instructions → raw slots (the inverse of [`decode`](super::decode)).

use super::insn::*;
use super::opcode::*;

fn size_bits(size: Size) -> u8 {
    match size {
        Size::W => BPF_W,
        Size::H => BPF_H,
        Size::B => BPF_B,
        Size::DW => BPF_DW,
    }
}

fn alu_class(width: Width) -> u8 {
    match width {
        Width::W32 => BPF_ALU,
        Width::W64 => BPF_ALU64,
    }
}

fn operand_fields(src: Operand) -> (u8, u8, i32) {
    match src {
        Operand::Reg(r) => (BPF_X, r, 0),
        Operand::Imm(i) => (BPF_K, 0, i),
    }
}

/// The raw slots of one instruction: one, two (`lddw`) or none ([`Insn::LdImm64Tail`]).
///
/// A value rather than a `Vec` because encoding runs once per slot on hot paths (the
/// verifier re-encodes every program it checks to get the kernel's opcode bytes): an
/// allocation per instruction made encoding cost ~280 host instructions a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    slots: [RawInsn; 2],
    len: u8,
}

impl Encoded {
    fn one(slot: RawInsn) -> Encoded {
        Encoded {
            slots: [slot, RawInsn::default()],
            len: 1,
        }
    }
}

impl std::ops::Deref for Encoded {
    type Target = [RawInsn];
    fn deref(&self) -> &[RawInsn] {
        &self.slots[..usize::from(self.len)]
    }
}

impl IntoIterator for Encoded {
    type Item = RawInsn;
    type IntoIter = std::iter::Take<std::array::IntoIter<RawInsn, 2>>;
    fn into_iter(self) -> Self::IntoIter {
        self.slots.into_iter().take(usize::from(self.len))
    }
}

impl Insn {
    /// Encodes this instruction into one or two raw slots. [`Insn::LdImm64Tail`] encodes to
    /// nothing: its slot is produced by the `lddw` before it.
    pub fn encode(&self) -> Encoded {
        let one = |code, dst, src, off, imm| Encoded::one(RawInsn::new(code, dst, src, off, imm));
        match *self {
            Insn::Alu {
                op,
                width,
                dst,
                src,
            } => {
                let (s, sreg, imm) = operand_fields(src);
                let (opc, off) = match op {
                    AluOp::Add => (BPF_ADD, 0),
                    AluOp::Sub => (BPF_SUB, 0),
                    AluOp::Mul => (BPF_MUL, 0),
                    AluOp::Div => (BPF_DIV, 0),
                    AluOp::SDiv => (BPF_DIV, 1),
                    AluOp::Or => (BPF_OR, 0),
                    AluOp::And => (BPF_AND, 0),
                    AluOp::Lsh => (BPF_LSH, 0),
                    AluOp::Rsh => (BPF_RSH, 0),
                    AluOp::Mod => (BPF_MOD, 0),
                    AluOp::SMod => (BPF_MOD, 1),
                    AluOp::Xor => (BPF_XOR, 0),
                    AluOp::Mov => (BPF_MOV, 0),
                    AluOp::MovSx(bits) => (BPF_MOV, bits as i16),
                    AluOp::Arsh => (BPF_ARSH, 0),
                };
                one(alu_class(width) | opc | s, dst, sreg, off, imm)
            }
            Insn::Neg { width, dst } => one(alu_class(width) | BPF_NEG, dst, 0, 0, 0),
            Insn::Endian { order, bits, dst } => {
                let code = match order {
                    ByteOrder::ToLe => BPF_ALU | BPF_END | BPF_TO_LE,
                    ByteOrder::ToBe => BPF_ALU | BPF_END | BPF_TO_BE,
                    ByteOrder::Swap => BPF_ALU64 | BPF_END,
                };
                one(code, dst, 0, 0, bits as i32)
            }
            Insn::Load {
                size,
                signed,
                dst,
                src,
                off,
            } => {
                let mode = if signed { BPF_MEMSX } else { BPF_MEM };
                one(BPF_LDX | mode | size_bits(size), dst, src, off, 0)
            }
            Insn::Store {
                size,
                dst,
                src,
                off,
            } => match src {
                Operand::Reg(r) => one(BPF_STX | BPF_MEM | size_bits(size), dst, r, off, 0),
                Operand::Imm(i) => one(BPF_ST | BPF_MEM | size_bits(size), dst, 0, off, i),
            },
            Insn::Atomic {
                op,
                size,
                fetch,
                dst,
                src,
                off,
            } => {
                let imm = match op {
                    AtomicOp::Add => BPF_ADD as i32,
                    AtomicOp::Or => BPF_OR as i32,
                    AtomicOp::And => BPF_AND as i32,
                    AtomicOp::Xor => BPF_XOR as i32,
                    AtomicOp::Xchg => BPF_XCHG,
                    AtomicOp::CmpXchg => BPF_CMPXCHG,
                } | if fetch { BPF_FETCH } else { 0 };
                one(BPF_STX | BPF_ATOMIC | size_bits(size), dst, src, off, imm)
            }
            Insn::LdImm64 { dst, value } => {
                let (src, lo, hi) = match value {
                    LdImm64::Imm(v) => (0, v as u32 as i32, (v >> 32) as u32 as i32),
                    LdImm64::MapFd(fd) => (BPF_PSEUDO_MAP_FD, fd, 0),
                    LdImm64::MapValue { fd, off } => (BPF_PSEUDO_MAP_VALUE, fd, off as i32),
                    LdImm64::BtfId { id, btf_fd } => (BPF_PSEUDO_BTF_ID, id, btf_fd),
                    LdImm64::Func(rel) => (BPF_PSEUDO_FUNC, rel, 0),
                    LdImm64::MapIdx(idx) => (BPF_PSEUDO_MAP_IDX, idx, 0),
                    LdImm64::MapIdxValue { idx, off } => {
                        (BPF_PSEUDO_MAP_IDX_VALUE, idx, off as i32)
                    }
                };
                Encoded {
                    slots: [
                        RawInsn::new(BPF_LD | BPF_IMM | BPF_DW, dst, src, 0, lo),
                        RawInsn::new(0, 0, 0, 0, hi),
                    ],
                    len: 2,
                }
            }
            Insn::LdImm64Tail => Encoded {
                slots: [RawInsn::default(); 2],
                len: 0,
            },
            Insn::LdAbs { size, imm } => one(BPF_LD | BPF_ABS | size_bits(size), 0, 0, 0, imm),
            Insn::LdInd { size, src, imm } => {
                one(BPF_LD | BPF_IND | size_bits(size), 0, src, 0, imm)
            }
            Insn::Ja { off, long: false } => one(BPF_JMP | BPF_JA, 0, 0, off as i16, 0),
            Insn::Ja { off, long: true } => one(BPF_JMP32 | BPF_JA, 0, 0, 0, off),
            Insn::Jmp {
                cond,
                width,
                dst,
                src,
                off,
            } => {
                let class = match width {
                    Width::W32 => BPF_JMP32,
                    Width::W64 => BPF_JMP,
                };
                let opc = match cond {
                    JmpCond::Eq => BPF_JEQ,
                    JmpCond::Gt => BPF_JGT,
                    JmpCond::Ge => BPF_JGE,
                    JmpCond::Set => BPF_JSET,
                    JmpCond::Ne => BPF_JNE,
                    JmpCond::Sgt => BPF_JSGT,
                    JmpCond::Sge => BPF_JSGE,
                    JmpCond::Lt => BPF_JLT,
                    JmpCond::Le => BPF_JLE,
                    JmpCond::Slt => BPF_JSLT,
                    JmpCond::Sle => BPF_JSLE,
                };
                let (s, sreg, imm) = operand_fields(src);
                one(class | opc | s, dst, sreg, off, imm)
            }
            Insn::Call(target) => {
                let (src, imm) = match target {
                    CallTarget::Helper(id) => (0, id),
                    CallTarget::Local(rel) => (BPF_PSEUDO_CALL, rel),
                    CallTarget::Kfunc(id) => (BPF_PSEUDO_KFUNC_CALL, id),
                };
                one(BPF_JMP | BPF_CALL, 0, src, 0, imm)
            }
            Insn::CallX { reg } => one(BPF_JMP | BPF_CALL | BPF_X, reg, 0, 0, 0),
            Insn::Exit => one(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        }
    }
}

/// Encodes a decoded program (one entry per slot, as [`decode_program`](super::decode_program) returns).
pub fn encode_program(insns: &[Insn]) -> Vec<RawInsn> {
    let mut out = Vec::with_capacity(insns.len());
    for insn in insns {
        out.extend_from_slice(&insn.encode());
    }
    out
}
