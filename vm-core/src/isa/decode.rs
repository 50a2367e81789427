//! Raw slots → typed instructions, rejecting every encoding the ISA leaves invalid.
//!
//! The checks follow RFC 9669 and what Linux 6.18 refuses at load time as a structural error
//! (`EINVAL`): unknown opcodes, non-zero reserved fields, bad registers, incomplete `lddw`,
//! and jumps or calls that leave the program or land in the second slot of an `lddw`.
//! Semantic limits that the kernel's *verifier* imposes (shift counts, division by a zero
//! immediate, writes to R10) are not encoding errors and are left to the verifier.

use super::insn::*;
use super::opcode::*;

/// Why a slot does not decode. Messages reuse the kernel's wording where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The program has no instructions.
    #[error("empty program")]
    Empty,
    /// The opcode byte is not an instruction.
    #[error("unknown opcode {0:02x}")]
    UnknownOpcode(u8),
    /// A field the opcode does not use is non-zero.
    #[error("{0} uses reserved fields")]
    ReservedFields(&'static str),
    /// A register number above 10.
    #[error("R{0} is invalid")]
    InvalidRegister(u8),
    /// `lddw` in the last slot.
    #[error("invalid bpf_ld_imm64 insn: missing second slot")]
    LddwMissingSecondSlot,
    /// The second slot of an `lddw` is not `{code 0, regs 0, off 0}`.
    #[error("invalid bpf_ld_imm64 insn: malformed second slot")]
    LddwBadSecondSlot,
    /// An `lddw` pseudo source the ISA does not define.
    #[error("unrecognized bpf_ld_imm64 insn (src_reg {0})")]
    LddwBadSrc(u8),
    /// `be`/`le`/`bswap` with a width other than 16, 32 or 64.
    #[error("invalid endian width {0}")]
    BadEndianWidth(i32),
    /// An atomic with an operation code outside the ISA.
    #[error("BPF_ATOMIC uses invalid atomic opcode {0:02x}")]
    BadAtomicOp(i32),
    /// Jump or call target outside the program.
    #[error("jump out of range from insn {from} to {to}")]
    JumpOutOfRange {
        /// Instruction holding the jump.
        from: usize,
        /// Target slot.
        to: i64,
    },
    /// Jump or call into the second slot of an `lddw`.
    #[error("jump into the middle of ldimm64 insn {to}")]
    JumpIntoLddw {
        /// Target slot.
        to: usize,
    },
}

/// A decoding failure at instruction index `pc` (slots counted from 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("insn {pc}: {kind}")]
pub struct DecodeError {
    /// Slot index.
    pub pc: usize,
    /// What is wrong.
    pub kind: DecodeErrorKind,
}

fn err<T>(pc: usize, kind: DecodeErrorKind) -> Result<T, DecodeError> {
    Err(DecodeError { pc, kind })
}

fn reg(pc: usize, r: u8) -> Result<Reg, DecodeError> {
    if r > 10 {
        err(pc, DecodeErrorKind::InvalidRegister(r))
    } else {
        Ok(r)
    }
}

fn size_of(code: u8) -> Size {
    match size(code) {
        BPF_W => Size::W,
        BPF_H => Size::H,
        BPF_B => Size::B,
        _ => Size::DW,
    }
}

/// Decodes a whole program and checks its control-flow targets.
pub fn decode_program(raw: &[RawInsn]) -> Result<Vec<Insn>, DecodeError> {
    let _span = tracing::debug_span!("decode", slots = raw.len()).entered();
    if raw.is_empty() {
        return err(0, DecodeErrorKind::Empty);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut pc = 0;
    while pc < raw.len() {
        let insn = decode_at(raw, pc)?;
        out.push(insn);
        if insn.slots() == 2 {
            out.push(Insn::LdImm64Tail);
        }
        pc += insn.slots();
    }
    check_targets(&out)?;
    Ok(out)
}

/// Checks that every jump and call lands on an instruction start inside the program.
pub fn check_targets(insns: &[Insn]) -> Result<(), DecodeError> {
    for (pc, insn) in insns.iter().enumerate() {
        let Some(to) = insn.jump_target(pc).or_else(|| insn.call_target(pc)) else {
            continue;
        };
        if to < 0 || to >= insns.len() as i64 {
            return err(pc, DecodeErrorKind::JumpOutOfRange { from: pc, to });
        }
        if insns[to as usize] == Insn::LdImm64Tail {
            return err(pc, DecodeErrorKind::JumpIntoLddw { to: to as usize });
        }
    }
    Ok(())
}

/// Decodes the instruction starting at slot `pc` (an `lddw` also reads slot `pc + 1`).
pub fn decode_at(raw: &[RawInsn], pc: usize) -> Result<Insn, DecodeError> {
    let r = raw[pc];
    let code = r.code;
    match class(code) {
        BPF_ALU | BPF_ALU64 => decode_alu(pc, r),
        BPF_JMP | BPF_JMP32 => decode_jmp(pc, r),
        BPF_LDX => {
            let signed = match mode(code) {
                BPF_MEM => false,
                BPF_MEMSX if size(code) != BPF_DW => true,
                _ => return err(pc, DecodeErrorKind::UnknownOpcode(code)),
            };
            if r.imm != 0 {
                return err(pc, DecodeErrorKind::ReservedFields("BPF_LDX"));
            }
            Ok(Insn::Load {
                size: size_of(code),
                signed,
                dst: reg(pc, r.dst)?,
                src: reg(pc, r.src)?,
                off: r.off,
            })
        }
        BPF_ST => {
            if mode(code) != BPF_MEM {
                return err(pc, DecodeErrorKind::UnknownOpcode(code));
            }
            if r.src != 0 {
                return err(pc, DecodeErrorKind::ReservedFields("BPF_ST"));
            }
            Ok(Insn::Store {
                size: size_of(code),
                dst: reg(pc, r.dst)?,
                src: Operand::Imm(r.imm),
                off: r.off,
            })
        }
        BPF_STX => match mode(code) {
            BPF_MEM => {
                if r.imm != 0 {
                    return err(pc, DecodeErrorKind::ReservedFields("BPF_STX"));
                }
                Ok(Insn::Store {
                    size: size_of(code),
                    dst: reg(pc, r.dst)?,
                    src: Operand::Reg(reg(pc, r.src)?),
                    off: r.off,
                })
            }
            BPF_ATOMIC => {
                let size = size_of(code);
                if !matches!(size, Size::W | Size::DW) {
                    return err(pc, DecodeErrorKind::UnknownOpcode(code));
                }
                let fetch = r.imm & BPF_FETCH != 0;
                let op = match r.imm {
                    BPF_XCHG => AtomicOp::Xchg,
                    BPF_CMPXCHG => AtomicOp::CmpXchg,
                    i => match i & !BPF_FETCH {
                        x if x == BPF_ADD as i32 => AtomicOp::Add,
                        x if x == BPF_OR as i32 => AtomicOp::Or,
                        x if x == BPF_AND as i32 => AtomicOp::And,
                        x if x == BPF_XOR as i32 => AtomicOp::Xor,
                        _ => return err(pc, DecodeErrorKind::BadAtomicOp(r.imm)),
                    },
                };
                Ok(Insn::Atomic {
                    op,
                    size,
                    fetch,
                    dst: reg(pc, r.dst)?,
                    src: reg(pc, r.src)?,
                    off: r.off,
                })
            }
            _ => err(pc, DecodeErrorKind::UnknownOpcode(code)),
        },
        BPF_LD => decode_ld(raw, pc),
        _ => unreachable!("class is three bits"),
    }
}

fn decode_ld(raw: &[RawInsn], pc: usize) -> Result<Insn, DecodeError> {
    let r = raw[pc];
    let code = r.code;
    match mode(code) {
        BPF_IMM if size(code) == BPF_DW => {
            let Some(&hi) = raw.get(pc + 1) else {
                return err(pc, DecodeErrorKind::LddwMissingSecondSlot);
            };
            if hi.code != 0 || hi.dst != 0 || hi.src != 0 || hi.off != 0 {
                return err(pc, DecodeErrorKind::LddwBadSecondSlot);
            }
            if r.off != 0 {
                return err(pc, DecodeErrorKind::ReservedFields("BPF_LD_IMM64"));
            }
            let dst = reg(pc, r.dst)?;
            let value = match r.src {
                0 => LdImm64::Imm((r.imm as u32 as u64) | ((hi.imm as u32 as u64) << 32)),
                BPF_PSEUDO_MAP_FD | BPF_PSEUDO_MAP_IDX | BPF_PSEUDO_FUNC if hi.imm != 0 => {
                    return err(pc, DecodeErrorKind::LddwBadSecondSlot);
                }
                BPF_PSEUDO_MAP_FD => LdImm64::MapFd(r.imm),
                BPF_PSEUDO_MAP_VALUE => LdImm64::MapValue {
                    fd: r.imm,
                    off: hi.imm as u32,
                },
                BPF_PSEUDO_BTF_ID => LdImm64::BtfId {
                    id: r.imm,
                    btf_fd: hi.imm,
                },
                BPF_PSEUDO_FUNC => LdImm64::Func(r.imm),
                BPF_PSEUDO_MAP_IDX => LdImm64::MapIdx(r.imm),
                BPF_PSEUDO_MAP_IDX_VALUE => LdImm64::MapIdxValue {
                    idx: r.imm,
                    off: hi.imm as u32,
                },
                s => return err(pc, DecodeErrorKind::LddwBadSrc(s)),
            };
            Ok(Insn::LdImm64 { dst, value })
        }
        m @ (BPF_ABS | BPF_IND) if size(code) != BPF_DW => {
            if r.dst != 0 || r.off != 0 || (m == BPF_ABS && r.src != 0) {
                return err(pc, DecodeErrorKind::ReservedFields("BPF_LD_[ABS|IND]"));
            }
            let size = size_of(code);
            if m == BPF_ABS {
                Ok(Insn::LdAbs { size, imm: r.imm })
            } else {
                Ok(Insn::LdInd {
                    size,
                    src: reg(pc, r.src)?,
                    imm: r.imm,
                })
            }
        }
        _ => err(pc, DecodeErrorKind::UnknownOpcode(code)),
    }
}

fn decode_alu(pc: usize, r: RawInsn) -> Result<Insn, DecodeError> {
    let code = r.code;
    let width = if class(code) == BPF_ALU64 {
        Width::W64
    } else {
        Width::W32
    };
    let is_x = src(code) == BPF_X;
    let dst = reg(pc, r.dst)?;
    let operand = |what: &'static str| -> Result<Operand, DecodeError> {
        if is_x {
            if r.imm != 0 {
                return err(pc, DecodeErrorKind::ReservedFields(what));
            }
            Ok(Operand::Reg(reg(pc, r.src)?))
        } else {
            if r.src != 0 {
                return err(pc, DecodeErrorKind::ReservedFields(what));
            }
            Ok(Operand::Imm(r.imm))
        }
    };
    let op = match op(code) {
        BPF_NEG => {
            if is_x || r.src != 0 || r.off != 0 || r.imm != 0 {
                return err(pc, DecodeErrorKind::ReservedFields("BPF_NEG"));
            }
            return Ok(Insn::Neg { width, dst });
        }
        BPF_END => {
            let order = match (width, is_x) {
                (Width::W32, false) => ByteOrder::ToLe,
                (Width::W32, true) => ByteOrder::ToBe,
                (Width::W64, false) => ByteOrder::Swap,
                (Width::W64, true) => return err(pc, DecodeErrorKind::UnknownOpcode(code)),
            };
            if r.src != 0 || r.off != 0 {
                return err(pc, DecodeErrorKind::ReservedFields("BPF_END"));
            }
            if !matches!(r.imm, 16 | 32 | 64) {
                return err(pc, DecodeErrorKind::BadEndianWidth(r.imm));
            }
            return Ok(Insn::Endian {
                order,
                bits: r.imm as u8,
                dst,
            });
        }
        BPF_MOV => {
            let src = operand("BPF_MOV")?;
            let op = match (r.off, is_x, width) {
                (0, _, _) => AluOp::Mov,
                (8 | 16, true, _) | (32, true, Width::W64) => AluOp::MovSx(r.off as u8),
                _ => return err(pc, DecodeErrorKind::ReservedFields("BPF_MOV")),
            };
            return Ok(Insn::Alu {
                op,
                width,
                dst,
                src,
            });
        }
        BPF_ADD => AluOp::Add,
        BPF_SUB => AluOp::Sub,
        BPF_MUL => AluOp::Mul,
        BPF_OR => AluOp::Or,
        BPF_AND => AluOp::And,
        BPF_LSH => AluOp::Lsh,
        BPF_RSH => AluOp::Rsh,
        BPF_XOR => AluOp::Xor,
        BPF_ARSH => AluOp::Arsh,
        BPF_DIV => {
            if r.off == 1 {
                AluOp::SDiv
            } else {
                AluOp::Div
            }
        }
        BPF_MOD => {
            if r.off == 1 {
                AluOp::SMod
            } else {
                AluOp::Mod
            }
        }
        _ => return err(pc, DecodeErrorKind::UnknownOpcode(code)),
    };
    let off_ok = r.off == 0 || (r.off == 1 && matches!(op, AluOp::SDiv | AluOp::SMod));
    if !off_ok {
        return err(pc, DecodeErrorKind::ReservedFields("BPF_ALU"));
    }
    let src = operand("BPF_ALU")?;
    Ok(Insn::Alu {
        op,
        width,
        dst,
        src,
    })
}

fn decode_jmp(pc: usize, r: RawInsn) -> Result<Insn, DecodeError> {
    let code = r.code;
    let jmp32 = class(code) == BPF_JMP32;
    let width = if jmp32 { Width::W32 } else { Width::W64 };
    let is_x = src(code) == BPF_X;
    let cond = match op(code) {
        BPF_JA => {
            if is_x || r.src != 0 || r.dst != 0 {
                return err(pc, DecodeErrorKind::ReservedFields("BPF_JA"));
            }
            return if jmp32 {
                if r.off != 0 {
                    return err(pc, DecodeErrorKind::ReservedFields("BPF_JA"));
                }
                Ok(Insn::Ja {
                    off: r.imm,
                    long: true,
                })
            } else {
                if r.imm != 0 {
                    return err(pc, DecodeErrorKind::ReservedFields("BPF_JA"));
                }
                Ok(Insn::Ja {
                    off: r.off as i32,
                    long: false,
                })
            };
        }
        BPF_CALL if !jmp32 => {
            if is_x {
                // callx: RFC 9669 puts the register in dst.
                if r.src != 0 || r.off != 0 || r.imm != 0 {
                    return err(pc, DecodeErrorKind::ReservedFields("BPF_CALL"));
                }
                return Ok(Insn::CallX {
                    reg: reg(pc, r.dst)?,
                });
            }
            if r.off != 0 || r.dst != 0 {
                return err(pc, DecodeErrorKind::ReservedFields("BPF_CALL"));
            }
            let target = match r.src {
                0 => CallTarget::Helper(r.imm),
                BPF_PSEUDO_CALL => CallTarget::Local(r.imm),
                BPF_PSEUDO_KFUNC_CALL => CallTarget::Kfunc(r.imm),
                _ => return err(pc, DecodeErrorKind::ReservedFields("BPF_CALL")),
            };
            return Ok(Insn::Call(target));
        }
        BPF_EXIT if !jmp32 && !is_x => {
            if r.src != 0 || r.dst != 0 || r.off != 0 || r.imm != 0 {
                return err(pc, DecodeErrorKind::ReservedFields("BPF_EXIT"));
            }
            return Ok(Insn::Exit);
        }
        BPF_JEQ => JmpCond::Eq,
        BPF_JGT => JmpCond::Gt,
        BPF_JGE => JmpCond::Ge,
        BPF_JSET => JmpCond::Set,
        BPF_JNE => JmpCond::Ne,
        BPF_JSGT => JmpCond::Sgt,
        BPF_JSGE => JmpCond::Sge,
        BPF_JLT => JmpCond::Lt,
        BPF_JLE => JmpCond::Le,
        BPF_JSLT => JmpCond::Slt,
        BPF_JSLE => JmpCond::Sle,
        _ => return err(pc, DecodeErrorKind::UnknownOpcode(code)),
    };
    let dst = reg(pc, r.dst)?;
    let src = if is_x {
        if r.imm != 0 {
            return err(pc, DecodeErrorKind::ReservedFields("BPF_JMP/JMP32"));
        }
        Operand::Reg(reg(pc, r.src)?)
    } else {
        if r.src != 0 {
            return err(pc, DecodeErrorKind::ReservedFields("BPF_JMP/JMP32"));
        }
        Operand::Imm(r.imm)
    };
    Ok(Insn::Jmp {
        cond,
        width,
        dst,
        src,
        off: r.off,
    })
}
