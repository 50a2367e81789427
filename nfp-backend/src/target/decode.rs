//! Decoding 64-bit instruction words back into [`MeInsn`] (the layout is documented in
//! [`mod@super::encode`]). Only canonical words are accepted: a decoded instruction is re-encoded
//! and must give the same word, so stray bits are rejected instead of silently ignored.

use super::encode::{
    BIT_A_IMM_HI, BIT_A_NONE, BIT_B_IMM_HI, BIT_B_NONE, BIT_CMD_SWAP_OPS, BIT_DST_BANK,
    BIT_SHF_INDIRECT, BIT_WR_BOTH, RE_DST_NONE, RELO_EXIT, RELO_FW_CALL, UR_NONE, encode,
};
use super::insn::{
    AddrMode, AluOp, Bank, CmdAction, Cond, Csr, Dst, FwHelper, ImmedWidth, MeInsn, MemTarget,
    MulStep, ShiftAmount, ShiftKind, Src,
};

/// Why a word is not an instruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {word:#018x}: {reason}")]
pub struct DecodeError {
    /// The word.
    pub word: u64,
    /// What is wrong with it.
    pub reason: &'static str,
}

type R<T> = Result<T, &'static str>;

fn bits(w: u64, lo: u32, n: u32) -> u64 {
    (w >> lo) & ((1 << n) - 1)
}

fn bit(w: u64, b: u32) -> bool {
    (w >> b) & 1 != 0
}

fn ur_src(code: u64, field: Bank) -> R<Src> {
    let c = code as u16;
    Ok(match c {
        0x000..=0x01f => Src::Gpr(field, c as u8),
        UR_NONE => Src::None,
        0x180..=0x19f => Src::Xfer((c & 0x1f) as u8),
        0x200..=0x23f => Src::Lm {
            index: ((c >> 4) & 3) as u8,
            off: (c & 0xf) as u8,
        },
        0x300..=0x3ff => Src::Imm(c as u8),
        _ => return Err("unknown unrestricted operand code"),
    })
}

fn ur_dst(code: u64, bank_b: bool, both: bool) -> R<Dst> {
    Ok(match ur_src(code, Bank::A)? {
        Src::Gpr(_, n) if both => Dst::Both(n),
        Src::Gpr(_, n) => Dst::Gpr(if bank_b { Bank::B } else { Bank::A }, n),
        Src::Xfer(n) => Dst::Xfer(n),
        Src::Lm { index, off } => Dst::Lm { index, off },
        Src::None => Dst::None,
        Src::Imm(_) => return Err("immediate as a destination"),
    })
}

/// A restricted source in the A (bits 0..7) or B (10..17) field.
fn re_src(w: u64, field: Bank) -> R<Src> {
    let (shift, hi_bit, none_bit) = match field {
        Bank::A => (0, BIT_A_IMM_HI, BIT_A_NONE),
        Bank::B => (10, BIT_B_IMM_HI, BIT_B_NONE),
    };
    let c = bits(w, shift, 8) as u8;
    if bit(w, none_bit) {
        return Ok(Src::None);
    }
    let hi = u8::from(bit(w, hi_bit)) << 7;
    Ok(match c {
        0x00..=0x1f => Src::Gpr(field, c),
        0x20..=0x3f => Src::Imm(hi | (c - 0x20)),
        0x40..=0x7f => Src::Lm {
            index: (c >> 4) & 3,
            off: c & 0xf,
        },
        0x80..=0x9f => Src::Xfer(c & 0x1f),
        _ => Src::Imm(hi | (c - 0xa0 + 32)),
    })
}

fn re_dst(code: u64, bank_b: bool, both: bool) -> R<Dst> {
    let c = code as u8;
    Ok(match c {
        0x00..=0x1f if both => Dst::Both(c),
        0x00..=0x1f => Dst::Gpr(if bank_b { Bank::B } else { Bank::A }, c),
        0x40..=0x7f => Dst::Lm {
            index: (c >> 4) & 3,
            off: c & 0xf,
        },
        0x80..=0x9f => Dst::Xfer(c & 0x1f),
        RE_DST_NONE => Dst::None,
        _ => return Err("unknown destination code"),
    })
}

/// Two sources from the A/B fields, un-swapped.
fn pair(fa: Src, fb: Src, swap: bool) -> (Src, Src) {
    if swap { (fb, fa) } else { (fa, fb) }
}

/// A single unrestricted source placed by `single_ur`.
fn single_ur(w: u64) -> R<Src> {
    let (fa, fb) = (bits(w, 0, 10), bits(w, 10, 10));
    if fa == u64::from(UR_NONE) && fb != u64::from(UR_NONE) {
        ur_src(fb, Bank::B)
    } else {
        ur_src(fa, Bank::A)
    }
}

fn alu_op(c: u64) -> R<AluOp> {
    Ok(match c {
        0x00 => AluOp::PassB,
        0x01 => AluOp::Add,
        0x04 => AluOp::NotB,
        0x08 => AluOp::And,
        0x0c => AluOp::AndNotA,
        0x0d => AluOp::SubCarry,
        0x10 => AluOp::AndNotB,
        0x11 => AluOp::AddCarry,
        0x14 => AluOp::Or,
        0x15 => AluOp::Sub,
        0x18 => AluOp::Xor,
        _ => return Err("unknown ALU operation"),
    })
}

fn cond(c: u64) -> R<Cond> {
    Ok(match c {
        0 => Cond::Eq,
        1 => Cond::Ne,
        2 => Cond::Mi,
        3 => Cond::Pl,
        4 => Cond::Hs,
        5 => Cond::Lo,
        6 => Cond::Vs,
        7 => Cond::Vc,
        8 => Cond::Ge,
        9 => Cond::Lt,
        0xa => Cond::Le,
        0xb => Cond::Gt,
        0x18 => Cond::Always,
        _ => return Err("unknown branch condition"),
    })
}

fn helper(i: u8) -> R<FwHelper> {
    Ok(match i {
        0 => FwHelper::MapLookup,
        1 => FwHelper::MapUpdate,
        2 => FwHelper::MapDelete,
        3 => FwHelper::Random,
        4 => FwHelper::AdjustHead,
        5 => FwHelper::AdjustTail,
        6 => FwHelper::PerfEventOutput,
        _ => return Err("unknown firmware helper relocation"),
    })
}

fn csr(addr: u64) -> R<Csr> {
    Ok(match addr {
        0x64 => Csr::ActLmAddr(0),
        0x6c => Csr::ActLmAddr(1),
        0x94 => Csr::ActLmAddr(2),
        0x9c => Csr::ActLmAddr(3),
        0x148 => Csr::PseudoRandNum,
        0x44 => Csr::ActiveCtxSts,
        _ => return Err("unknown local CSR"),
    })
}

fn defer_target(w: u64) -> (u8, u16) {
    (bits(w, 20, 2) as u8, bits(w, 22, 13) as u16)
}

fn decode_raw(w: u64) -> R<MeInsn> {
    let relo = (w >> 56) as u8;
    if !bit(w, 39) {
        return decode_cmd(w);
    }
    let class = bits(w, 37, 3);
    let insn = match class {
        0b100 => {
            let (sc, op) = (bits(w, 8, 2), bits(w, 33, 3));
            let kind = match (sc, op) {
                (0, 0) => ShiftKind::RotRight,
                (1, 0) => ShiftKind::Right,
                (1, 3) => ShiftKind::ArithRight,
                (2, 0) => ShiftKind::Left,
                (3, 0) => ShiftKind::DoubleRight,
                _ => return Err("unknown shift class/operation"),
            };
            let (a, b) = pair(re_src(w, Bank::A)?, re_src(w, Bank::B)?, bit(w, 19));
            MeInsn::Shf {
                kind,
                dst: re_dst(bits(w, 20, 8), bit(w, BIT_DST_BANK), bit(w, BIT_WR_BOTH))?,
                a,
                b,
                amount: if bit(w, BIT_SHF_INDIRECT) {
                    ShiftAmount::Indirect
                } else {
                    ShiftAmount::Imm(bits(w, 28, 5) as u8)
                },
            }
        }
        0b101 => {
            let (a, b) = pair(
                ur_src(bits(w, 0, 10), Bank::A)?,
                ur_src(bits(w, 10, 10), Bank::B)?,
                bit(w, 30),
            );
            MeInsn::Alu {
                op: alu_op(bits(w, 31, 5))?,
                dst: ur_dst(bits(w, 20, 10), bit(w, BIT_DST_BANK), bit(w, BIT_WR_BOTH))?,
                a,
                b,
            }
        }
        0b110 => match (bit(w, 36), bit(w, 35)) {
            (false, false) => {
                let swap = bit(w, 19);
                let (dst, b) = if swap {
                    (
                        Dst::Gpr(Bank::B, gpr_code(bits(w, 10, 8))?),
                        re_src(w, Bank::A)?,
                    )
                } else {
                    let n = gpr_code(bits(w, 0, 8))?;
                    let dst = if bit(w, BIT_WR_BOTH) {
                        Dst::Both(n)
                    } else {
                        Dst::Gpr(Bank::A, n)
                    };
                    (dst, re_src(w, Bank::B)?)
                };
                MeInsn::LdField {
                    dst,
                    byte_mask: bits(w, 24, 4) as u8,
                    b,
                    shift_bytes: (bits(w, 28, 5) / 8) as u8,
                    zero_fill: bit(w, 20),
                }
            }
            (true, false) => {
                let field = if bit(w, 19) { Bank::B } else { Bank::A };
                let src = match re_src(w, Bank::A)? {
                    Src::Gpr(_, n) => Src::Gpr(field, n),
                    s => s,
                };
                let (defer, target) = defer_target(w);
                MeInsn::BrBit {
                    src,
                    bit: bits(w, 8, 5) as u8,
                    set: bit(w, 18),
                    target,
                    defer,
                }
            }
            (true, true) => {
                let (defer, target) = defer_target(w);
                match relo {
                    0 => MeInsn::Br {
                        cond: cond(bits(w, 0, 5))?,
                        target,
                        defer,
                    },
                    RELO_EXIT => MeInsn::Exit,
                    r if r >= RELO_FW_CALL => MeInsn::FwCall {
                        helper: helper(r - RELO_FW_CALL)?,
                    },
                    _ => return Err("unknown relocation"),
                }
            }
            (false, true) => return Err("byte-compare branches are not used"),
        },
        _ => match (bit(w, 36), bit(w, 35), bit(w, 34)) {
            (false, true, _) => MeInsn::Rtn {
                src: single_ur(w)?,
                defer: bits(w, 20, 2) as u8,
            },
            (false, false, _) => return Err("ctx_arb is not used"),
            (true, false, _) => decode_immed(w)?,
            (true, true, false) => {
                let ty = bits(w, 31, 2);
                let step = match (bits(w, 20, 3), ty) {
                    (0, 3) => MulStep::Start32,
                    (0, 2) => MulStep::Start16,
                    (n @ 1..=4, 0) => MulStep::Step(n as u8),
                    (5, 0) => MulStep::Last,
                    (6, 0) => MulStep::LastHigh,
                    _ => return Err("unknown multiply step"),
                };
                let (a, b) = pair(
                    ur_src(bits(w, 0, 10), Bank::A)?,
                    ur_src(bits(w, 10, 10), Bank::B)?,
                    bit(w, 30),
                );
                MeInsn::Mul {
                    step,
                    dst: re_dst(bits(w, 48, 8), bit(w, 23), bit(w, BIT_WR_BOTH))?,
                    a,
                    b,
                }
            }
            (true, true, true) => {
                let c = csr(bits(w, 22, 11))?;
                if bit(w, 21) {
                    MeInsn::CsrWrite {
                        csr: c,
                        src: single_ur(w)?,
                    }
                } else {
                    MeInsn::CsrRead {
                        csr: c,
                        dst: re_dst(bits(w, 48, 8), bit(w, 20), bit(w, BIT_WR_BOTH))?,
                    }
                }
            }
        },
    };
    Ok(insn)
}

fn gpr_code(c: u64) -> R<u8> {
    if c < 32 {
        Ok(c as u8)
    } else {
        Err("ld_field destination is not a GPR")
    }
}

fn decode_immed(w: u64) -> R<MeInsn> {
    let (fa, fb) = (bits(w, 0, 10), bits(w, 10, 10));
    let is_imm = |c: u64| c >= 0x300;
    if is_imm(fa) && is_imm(fb) {
        return Ok(MeInsn::Nop);
    }
    let (dst, lo) = if is_imm(fa) {
        (ur_dst(fb, true, false)?, fa & 0xff)
    } else if is_imm(fb) {
        (ur_dst(fa, false, bit(w, BIT_WR_BOTH))?, fb & 0xff)
    } else {
        return Err("immed without an immediate field");
    };
    let width = match bits(w, 29, 2) {
        0 => ImmedWidth::All,
        1 => ImmedWidth::Byte,
        2 => ImmedWidth::Word,
        _ => return Err("unknown immed width"),
    };
    Ok(MeInsn::Immed {
        dst,
        imm: (bits(w, 20, 8) << 8 | lo) as u16,
        shift: bits(w, 33, 2) as u8,
        invert: bit(w, 31),
        width,
    })
}

fn decode_cmd(w: u64) -> R<MeInsn> {
    let action = match bits(w, 32, 3) {
        0 => CmdAction::Read8,
        1 => CmdAction::Read32,
        2 => CmdAction::Write8,
        3 => CmdAction::Write32,
        4 => CmdAction::AtomicAdd,
        _ => return Err("unknown command action"),
    };
    let target = match bits(w, 35, 2) {
        0 => MemTarget::Cls,
        1 => MemTarget::Ctm,
        2 => MemTarget::Imem,
        _ => MemTarget::Emem,
    };
    let mode = match bits(w, 42, 3) {
        0 => AddrMode::Addr40,
        2 => AddrMode::Addr32,
        _ => return Err("unknown address mode"),
    };
    let swap = match bits(w, 8, 2) {
        0 => true,
        3 => false,
        _ => return Err("unknown ctx_swap mode"),
    };
    let (a, b) = pair(
        re_src(w, Bank::A)?,
        re_src(w, Bank::B)?,
        bit(w, BIT_CMD_SWAP_OPS),
    );
    Ok(MeInsn::Cmd {
        target,
        action,
        xfer: bits(w, 20, 5) as u8,
        count: (bits(w, 25, 3) | bits(w, 52, 2) << 3) as u8 + 1,
        mode,
        a,
        b,
        swap,
    })
}

/// Decodes one canonical instruction word.
pub fn decode(word: u64) -> Result<MeInsn, DecodeError> {
    let fail = |reason| DecodeError { word, reason };
    let insn = decode_raw(word).map_err(fail)?;
    match encode(&insn) {
        Ok(w) if w == word => Ok(insn),
        Ok(_) => Err(fail("stray bits outside the instruction's fields")),
        Err(e) => Err(fail(e.reason)),
    }
}

/// Decodes a whole program.
pub fn decode_program(words: &[u64]) -> Result<Vec<MeInsn>, (usize, DecodeError)> {
    words
        .iter()
        .enumerate()
        .map(|(pc, &w)| decode(w).map_err(|e| (pc, e)))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::encode::{OP_ALU, encode_program};
    use super::*;
    use proptest::prelude::*;

    fn bank() -> impl Strategy<Value = Bank> {
        prop_oneof![Just(Bank::A), Just(Bank::B)]
    }

    pub(crate) fn src() -> impl Strategy<Value = Src> {
        prop_oneof![
            (bank(), 0u8..32).prop_map(|(b, n)| Src::Gpr(b, n)),
            (0u8..32).prop_map(Src::Xfer),
            (0u8..4, 0u8..16).prop_map(|(index, off)| Src::Lm { index, off }),
            any::<u8>().prop_map(Src::Imm),
            Just(Src::None),
        ]
    }

    fn dst() -> impl Strategy<Value = Dst> {
        prop_oneof![
            (bank(), 0u8..32).prop_map(|(b, n)| Dst::Gpr(b, n)),
            (0u8..32).prop_map(Dst::Both),
            (0u8..32).prop_map(Dst::Xfer),
            (0u8..4, 0u8..16).prop_map(|(index, off)| Dst::Lm { index, off }),
            Just(Dst::None),
        ]
    }

    fn pair() -> impl Strategy<Value = (Src, Src)> {
        (src(), src()).prop_filter(
            "same bank",
            |(a, b)| !matches!((a, b), (Src::Gpr(x, _), Src::Gpr(y, _)) if x == y),
        )
    }

    fn alu_op() -> impl Strategy<Value = AluOp> {
        prop::sample::select(vec![
            AluOp::PassB,
            AluOp::Add,
            AluOp::AddCarry,
            AluOp::Sub,
            AluOp::SubCarry,
            AluOp::NotB,
            AluOp::And,
            AluOp::AndNotA,
            AluOp::AndNotB,
            AluOp::Or,
            AluOp::Xor,
        ])
    }

    fn cond() -> impl Strategy<Value = Cond> {
        prop::sample::select(vec![
            Cond::Eq,
            Cond::Ne,
            Cond::Mi,
            Cond::Pl,
            Cond::Hs,
            Cond::Lo,
            Cond::Vs,
            Cond::Vc,
            Cond::Ge,
            Cond::Lt,
            Cond::Le,
            Cond::Gt,
            Cond::Always,
        ])
    }

    fn helper() -> impl Strategy<Value = FwHelper> {
        prop::sample::select(vec![
            FwHelper::MapLookup,
            FwHelper::MapUpdate,
            FwHelper::MapDelete,
            FwHelper::Random,
            FwHelper::AdjustHead,
            FwHelper::AdjustTail,
            FwHelper::PerfEventOutput,
        ])
    }

    fn cmd() -> impl Strategy<Value = MeInsn> {
        let action = prop::sample::select(vec![
            CmdAction::Read8,
            CmdAction::Read32,
            CmdAction::Write8,
            CmdAction::Write32,
            CmdAction::AtomicAdd,
        ]);
        let target = prop::sample::select(vec![
            MemTarget::Cls,
            MemTarget::Ctm,
            MemTarget::Imem,
            MemTarget::Emem,
        ]);
        let mode = prop_oneof![Just(AddrMode::Addr32), Just(AddrMode::Addr40)];
        (
            action,
            target,
            mode,
            pair(),
            any::<bool>(),
            0u8..32,
            0u8..32,
        )
            .prop_map(|(action, target, mode, (a, b), swap, c, x)| {
                let (count, words) = match action {
                    CmdAction::Read8 | CmdAction::Write8 => (c + 1, (c + 1).div_ceil(4)),
                    CmdAction::Read32 | CmdAction::Write32 => (c % 8 + 1, c % 8 + 1),
                    CmdAction::AtomicAdd => (c % 2 + 1, c % 2 + 1),
                };
                MeInsn::Cmd {
                    target,
                    action,
                    xfer: x.min(32 - words),
                    count,
                    mode,
                    a,
                    b,
                    swap,
                }
            })
    }

    /// Every valid instruction.
    pub(crate) fn insn() -> impl Strategy<Value = MeInsn> {
        let shift_kind = prop::sample::select(vec![
            ShiftKind::Left,
            ShiftKind::Right,
            ShiftKind::ArithRight,
            ShiftKind::RotRight,
            ShiftKind::DoubleRight,
        ]);
        let amount = prop_oneof![
            (0u8..32).prop_map(ShiftAmount::Imm),
            Just(ShiftAmount::Indirect)
        ];
        let immed = (
            prop_oneof![
                (0u8..3).prop_map(|s| (ImmedWidth::All, s)),
                prop::sample::select(vec![0u8, 2]).prop_map(|s| (ImmedWidth::Word, s)),
                (0u8..4).prop_map(|s| (ImmedWidth::Byte, s)),
            ],
            dst(),
            any::<u16>(),
            any::<bool>(),
        )
            .prop_map(|((width, shift), dst, imm, invert)| MeInsn::Immed {
                dst,
                imm,
                shift,
                invert,
                width,
            });
        let ld_field = (
            prop_oneof![
                (bank(), 0u8..32).prop_map(|(b, n)| Dst::Gpr(b, n)),
                (0u8..32).prop_map(Dst::Both)
            ],
            src(),
            0u8..16,
            0u8..4,
            any::<bool>(),
        )
            .prop_filter("same bank", |(d, b, ..)| {
                let db = match d {
                    Dst::Gpr(x, _) => *x,
                    _ => Bank::A,
                };
                !matches!(b, Src::Gpr(x, _) if *x == db)
            })
            .prop_map(
                |(dst, b, byte_mask, shift_bytes, zero_fill)| MeInsn::LdField {
                    dst,
                    byte_mask,
                    b,
                    shift_bytes,
                    zero_fill,
                },
            );
        let step = prop_oneof![
            Just(MulStep::Start32),
            Just(MulStep::Start16),
            (1u8..5).prop_map(MulStep::Step),
            Just(MulStep::Last),
            Just(MulStep::LastHigh),
        ];
        let csr = prop_oneof![
            (0u8..4).prop_map(Csr::ActLmAddr),
            Just(Csr::PseudoRandNum),
            Just(Csr::ActiveCtxSts),
        ];
        prop_oneof![
            (alu_op(), dst(), pair()).prop_map(|(op, dst, (a, b))| MeInsn::Alu { op, dst, a, b }),
            (shift_kind, dst(), pair(), amount).prop_map(|(kind, dst, (a, b), amount)| {
                MeInsn::Shf {
                    kind,
                    dst,
                    a,
                    b,
                    amount,
                }
            }),
            immed,
            ld_field,
            (step, dst(), pair()).prop_map(|(step, dst, (a, b))| MeInsn::Mul { step, dst, a, b }),
            (cond(), 0u16..8192, 0u8..4).prop_map(|(cond, target, defer)| MeInsn::Br {
                cond,
                target,
                defer
            }),
            (src(), 0u8..32, any::<bool>(), 0u16..8192, 0u8..4).prop_map(
                |(src, bit, set, target, defer)| MeInsn::BrBit {
                    src,
                    bit,
                    set,
                    target,
                    defer
                }
            ),
            (src(), 0u8..4).prop_map(|(src, defer)| MeInsn::Rtn { src, defer }),
            cmd(),
            (csr.clone(), dst()).prop_map(|(csr, dst)| MeInsn::CsrRead { csr, dst }),
            ((0u8..4).prop_map(Csr::ActLmAddr), src())
                .prop_map(|(csr, src)| MeInsn::CsrWrite { csr, src }),
            helper().prop_map(|helper| MeInsn::FwCall { helper }),
            Just(MeInsn::Exit),
            Just(MeInsn::Nop),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn round_trip(i in insn()) {
            let w = encode(&i).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(decode(w), Ok(i), "word {:#018x}", w);
        }

        #[test]
        fn decode_never_panics_and_accepts_only_canonical_words(w in any::<u64>()) {
            if let Ok(i) = decode(w) {
                prop_assert_eq!(encode(&i), Ok(w));
            }
        }
    }

    #[test]
    fn alu_uses_the_nfp_field_layout() {
        let i = MeInsn::Alu {
            op: AluOp::Add,
            dst: Dst::Gpr(Bank::A, 1),
            a: Src::Gpr(Bank::A, 2),
            b: Src::Gpr(Bank::B, 3),
        };
        assert_eq!(encode(&i), Ok(OP_ALU | 2 | 3 << 10 | 1 << 20 | 1 << 31));
        // Swapped operands set the swap bit (30); both banks set bit 41.
        let i = MeInsn::Alu {
            op: AluOp::Sub,
            dst: Dst::Both(4),
            a: Src::Gpr(Bank::B, 3),
            b: Src::Gpr(Bank::A, 2),
        };
        assert_eq!(
            encode(&i),
            Ok(OP_ALU | 2 | 3 << 10 | 4 << 20 | 1 << 30 | 0x15 << 31 | 1 << 41)
        );
        let exit = encode(&MeInsn::Exit).unwrap();
        assert_eq!(exit >> 56, u64::from(super::super::encode::RELO_EXIT));
        let call = encode(&MeInsn::FwCall {
            helper: FwHelper::Random,
        })
        .unwrap();
        assert_eq!(call >> 56, 0x13);
        assert_eq!(exit & ((1 << 56) - 1), call & ((1 << 56) - 1));
    }

    #[test]
    fn encode_validates_operands() {
        let bad = [
            MeInsn::Alu {
                op: AluOp::Add,
                dst: Dst::Both(0),
                a: Src::Gpr(Bank::A, 1),
                b: Src::Gpr(Bank::A, 2),
            },
            MeInsn::Alu {
                op: AluOp::Add,
                dst: Dst::Both(32),
                a: Src::Imm(1),
                b: Src::None,
            },
            MeInsn::Alu {
                op: AluOp::Add,
                dst: Dst::None,
                a: Src::Lm { index: 4, off: 0 },
                b: Src::None,
            },
            MeInsn::Br {
                cond: Cond::Eq,
                target: 8192,
                defer: 0,
            },
            MeInsn::Br {
                cond: Cond::Eq,
                target: 1,
                defer: 4,
            },
            MeInsn::Immed {
                dst: Dst::Both(0),
                imm: 1,
                shift: 1,
                invert: false,
                width: ImmedWidth::Word,
            },
            MeInsn::LdField {
                dst: Dst::Xfer(0),
                byte_mask: 1,
                b: Src::None,
                shift_bytes: 0,
                zero_fill: false,
            },
            MeInsn::LdField {
                dst: Dst::Both(0),
                byte_mask: 1,
                b: Src::Gpr(Bank::A, 3),
                shift_bytes: 0,
                zero_fill: false,
            },
            MeInsn::Cmd {
                target: MemTarget::Ctm,
                action: CmdAction::Read32,
                xfer: 30,
                count: 4,
                mode: AddrMode::Addr32,
                a: Src::None,
                b: Src::None,
                swap: true,
            },
            MeInsn::Cmd {
                target: MemTarget::Ctm,
                action: CmdAction::Read8,
                xfer: 0,
                count: 33,
                mode: AddrMode::Addr32,
                a: Src::None,
                b: Src::None,
                swap: true,
            },
            MeInsn::CsrWrite {
                csr: Csr::PseudoRandNum,
                src: Src::None,
            },
            MeInsn::Mul {
                step: MulStep::Step(5),
                dst: Dst::None,
                a: Src::None,
                b: Src::None,
            },
            MeInsn::Shf {
                kind: ShiftKind::Left,
                dst: Dst::None,
                a: Src::None,
                b: Src::None,
                amount: ShiftAmount::Imm(32),
            },
        ];
        for i in bad {
            let e = encode(&i).unwrap_err();
            assert!(e.to_string().starts_with("cannot encode `"), "{e}");
        }
        let e = encode_program(&[MeInsn::Nop, bad_br()]).unwrap_err();
        assert_eq!(e.0, 1);
    }

    fn bad_br() -> MeInsn {
        MeInsn::Br {
            cond: Cond::Always,
            target: 9000,
            defer: 0,
        }
    }

    #[test]
    fn decode_rejects_stray_bits_and_unknown_codes() {
        let nop = encode(&MeInsn::Nop).unwrap();
        assert!(decode(nop | 1 << 47).is_err());
        let br = encode(&MeInsn::Br {
            cond: Cond::Eq,
            target: 5,
            defer: 1,
        })
        .unwrap();
        assert_eq!(
            decode(br | 0x7f << 56).unwrap_err().reason,
            "unknown firmware helper relocation"
        );
        assert!(decode(br | 0x0c).is_err(), "condition 0x0c");
        let prog = [nop, br];
        assert_eq!(
            decode_program(&prog).unwrap(),
            vec![
                MeInsn::Nop,
                MeInsn::Br {
                    cond: Cond::Eq,
                    target: 5,
                    defer: 1
                }
            ]
        );
        assert_eq!(decode_program(&[nop, u64::MAX]).unwrap_err().0, 1);
    }
}
