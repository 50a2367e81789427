//! 64-bit instruction words for [`MeInsn`], after the NFP ustore layouts of nfp-model.md §1.8
//! (class base constants and field positions from the kernel driver's `nfp_asm.h`).
//!
//! Why "NFP-like" and not bit-exact: the typed instruction set can say things the real
//! encoding cannot (two 8-bit immediates, LM index 2/3 in any operand, the executor's
//! `Exit`/`FwCall` pseudo-branches), and some fields of the real layout are not documented in
//! the sources read. Where the real layout has a field we use its position; the rest lives in
//! bits 44..55 (the real ECC byte, computed by the driver and irrelevant here) and in the top
//! byte (bits 56..63, the JIT's relocation scratch byte). [`mod@super::decode`] accepts exactly the
//! words [`encode`] produces (it re-encodes to check), so `decode(encode(i)) == i`.
//!
//! # Layout
//! Class (bits 39..35): bit 39 clear = memory command; else `100` SHF, `101` ALU, `110`+36=0
//! LD_FIELD, `1101`+35=0 bit branch, `1101`+35=1 BR, `111`+36=0+35=1 RTN (the ALU-branch class),
//! `1111`+35=0 IMMED, `1111`+35=1 with bit 34 clear MUL, set local CSR.
//!
//! Operands, unrestricted 10-bit (ALU, IMMED, MUL, RTN, local CSR): GPR `n` (bank given by the
//! field, A = bits 0..9, B = bits 10..19; a swap bit exchanges the roles), none `0x100`, xfer
//! `0x180|n`, LM `0x200|index<<4|off`, immediate `0x300|v`. Restricted 8-bit (SHF, LD_FIELD,
//! CMD, bit branch; A = bits 0..7, B = bits 10..17): GPR `n`, immediate `0x20|v` (v < 32) or
//! `0xa0+v-32` (32 <= v < 128) with bit 7 of the value in bit 48 (A) / 49 (B), LM
//! `0x40|index<<4|off`, xfer `0x80|n`, none = code 0 with bit 50 (A) / 51 (B) set.
//! Destinations: unrestricted codes as above (ALU bits 20..29), restricted `n`/LM/xfer as
//! above and none `0xc0` (SHF bits 20..27, MUL and CSR reads in bits 48..55); bank B in the
//! class's dst-bank bit (ALU/SHF 36, MUL 23, CSR read 20), both banks in bit 41.
//!
//! Per class: ALU dst 20..29, swap 30, op 31..35 (nfp_asm values). SHF shift class 8..9
//! (rotR 0, shR 1, shL 2, double 3), swap 19, dst 20..27, amount 28..32, op 33..35 (3 = ashr),
//! indirect amount bit 52. IMMED: destination in A (or in B for a bank-B GPR), `0x300|low
//! byte` in the other field, high byte 20..27, width 29..30 (all 0, byte 1, word 2), invert 31,
//! shift 33..34; NOP = IMMED with immediates in both fields. LD_FIELD: destination in A (B with
//! swap bit 19), zero-fill 20, byte mask 24..27, shift (bits) 28..32. BR: condition 0..4, defer
//! 20..21, target 22..34; `Exit` = BR always to 0 with relocation byte [`RELO_EXIT`], `FwCall` =
//! relocation byte `RELO_FW_CALL + helper`. Bit branch: source 0..7 (bank B flag 19), bit
//! number 8..12, branch-if-set 18, defer, target. RTN: source in A (B for a bank-B GPR), defer
//! 20..21. CMD: A 0..7, `ctx_swap` 8..9 (0 swap, 3 none), B 10..17, xfer 20..24, count-1 low
//! bits 25..27 (high bits 52..53), action 32..34, target 35..36, operand swap 45, address mode
//! 42..44 (0 = 40-bit, 2 = 32-bit). MUL: A/B, step 20..22 (0 start, n, 5 last, 6 last-high),
//! dst bank 23, swap 30, type 31..32 (16x16 = 2, 32x32 = 3 on start steps). Local CSR: source
//! like RTN, write 21, CSR address 22..32 (ActLMAddr0..3 0x64/0x6c/0x94/0x9c, PseudoRandNum
//! 0x148, ActiveCtxSts 0x44).

use super::insn::{
    AddrMode, AluOp, Bank, CmdAction, Cond, Csr, Dst, FwHelper, ImmedWidth, MeInsn, MemTarget,
    MulStep, ShiftAmount, ShiftKind, Src,
};

/// Number of code addresses a branch can name (13-bit ustore address).
pub const MAX_TARGET: u16 = 8192;
/// Relocation byte of `Exit` (branch to the firmware's exit path).
pub const RELO_EXIT: u8 = 0x01;
/// Relocation byte of `FwCall`: this plus the helper number.
pub const RELO_FW_CALL: u8 = 0x10;

pub(super) const OP_SHF: u64 = 0x080_0000_0000;
pub(super) const OP_ALU: u64 = 0x0a0_0000_0000;
pub(super) const OP_LDF: u64 = 0x0c0_0000_0000;
pub(super) const OP_BB: u64 = 0x0d0_0000_0000;
pub(super) const OP_BR: u64 = 0x0d8_0000_0020;
pub(super) const OP_RTN: u64 = 0x0e8_0000_0000;
pub(super) const OP_IMMED: u64 = 0x0f0_0000_0000;
pub(super) const OP_MUL: u64 = 0x0f8_0000_0000;
pub(super) const OP_LCSR: u64 = 0x0fc_0000_0000;

pub(super) const BIT_DST_BANK: u32 = 36;
pub(super) const BIT_WR_BOTH: u32 = 41;
pub(super) const BIT_A_IMM_HI: u32 = 48;
pub(super) const BIT_B_IMM_HI: u32 = 49;
pub(super) const BIT_A_NONE: u32 = 50;
pub(super) const BIT_B_NONE: u32 = 51;
pub(super) const BIT_SHF_INDIRECT: u32 = 52;
pub(super) const BIT_CMD_SWAP_OPS: u32 = 45;

pub(super) const UR_NONE: u16 = 0x100;
pub(super) const UR_XFER: u16 = 0x180;
pub(super) const UR_LM: u16 = 0x200;
pub(super) const UR_IMM: u16 = 0x300;
pub(super) const RE_LM: u8 = 0x40;
pub(super) const RE_XFER: u8 = 0x80;
pub(super) const RE_DST_NONE: u8 = 0xc0;

/// Why an instruction has no encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode `{insn}`: {reason}")]
pub struct EncodeError {
    /// The instruction, printed.
    pub insn: String,
    /// What is out of range.
    pub reason: &'static str,
}

type R<T> = Result<T, &'static str>;

fn gpr(n: u8) -> R<u8> {
    if n < 32 {
        Ok(n)
    } else {
        Err("GPR number >= 32")
    }
}

fn xfer(n: u8) -> R<u8> {
    if n < 32 {
        Ok(n)
    } else {
        Err("transfer register >= 32")
    }
}

fn lm(index: u8, off: u8) -> R<u8> {
    if index < 4 && off < 16 {
        Ok(index << 4 | off)
    } else {
        Err("LM index >= 4 or offset >= 16")
    }
}

/// Unrestricted code of a source in a field of bank `field`.
pub(super) fn ur_src(s: Src, field: Bank) -> R<u16> {
    Ok(match s {
        Src::Gpr(b, n) if b == field => u16::from(gpr(n)?),
        Src::Gpr(..) => return Err("GPR in the other bank's field"),
        Src::Xfer(n) => UR_XFER | u16::from(xfer(n)?),
        Src::Lm { index, off } => UR_LM | u16::from(lm(index, off)?),
        Src::Imm(v) => UR_IMM | u16::from(v),
        Src::None => UR_NONE,
    })
}

/// Restricted code of a source, plus its immediate-high and none flags.
pub(super) fn re_src(s: Src, field: Bank) -> R<(u8, bool, bool)> {
    Ok(match s {
        Src::Gpr(b, n) if b == field => (gpr(n)?, false, false),
        Src::Gpr(..) => return Err("GPR in the other bank's field"),
        Src::Xfer(n) => (RE_XFER | xfer(n)?, false, false),
        Src::Lm { index, off } => (RE_LM | lm(index, off)?, false, false),
        Src::Imm(v) => {
            let v7 = v & 0x7f;
            let code = if v7 < 32 { 0x20 | v7 } else { 0xa0 + (v7 - 32) };
            (code, v & 0x80 != 0, false)
        }
        Src::None => (0, false, true),
    })
}

/// Places restricted `code` into the A (bits 0..7) or B (10..17) field with its flags.
fn put_re(field: Bank, (code, hi, none): (u8, bool, bool)) -> u64 {
    let (shift, hi_bit, none_bit) = match field {
        Bank::A => (0, BIT_A_IMM_HI, BIT_A_NONE),
        Bank::B => (10, BIT_B_IMM_HI, BIT_B_NONE),
    };
    (u64::from(code) << shift) | (u64::from(hi) << hi_bit) | (u64::from(none) << none_bit)
}

/// Whether `a`/`b` must be exchanged so that each GPR sits in its bank's field.
fn needs_swap(a: Src, b: Src) -> R<bool> {
    match (a, b) {
        (Src::Gpr(x, _), Src::Gpr(y, _)) if x == y => Err("two GPR sources in the same bank"),
        (Src::Gpr(Bank::B, _), _) | (_, Src::Gpr(Bank::A, _)) => Ok(true),
        _ => Ok(false),
    }
}

/// Unrestricted destination code and its bank-B / both-banks flags.
fn ur_dst(d: Dst) -> R<(u16, bool, bool)> {
    Ok(match d {
        Dst::Gpr(b, n) => (u16::from(gpr(n)?), b == Bank::B, false),
        Dst::Both(n) => (u16::from(gpr(n)?), false, true),
        Dst::Xfer(n) => (UR_XFER | u16::from(xfer(n)?), false, false),
        Dst::Lm { index, off } => (UR_LM | u16::from(lm(index, off)?), false, false),
        Dst::None => (UR_NONE, false, false),
    })
}

/// Restricted destination code and its bank-B / both-banks flags.
fn re_dst(d: Dst) -> R<(u8, bool, bool)> {
    Ok(match d {
        Dst::Gpr(b, n) => (gpr(n)?, b == Bank::B, false),
        Dst::Both(n) => (gpr(n)?, false, true),
        Dst::Xfer(n) => (RE_XFER | xfer(n)?, false, false),
        Dst::Lm { index, off } => (RE_LM | lm(index, off)?, false, false),
        Dst::None => (RE_DST_NONE, false, false),
    })
}

pub(super) fn alu_op_code(op: AluOp) -> u64 {
    match op {
        AluOp::PassB => 0x00,
        AluOp::Add => 0x01,
        AluOp::NotB => 0x04,
        AluOp::And => 0x08,
        AluOp::AndNotA => 0x0c,
        AluOp::SubCarry => 0x0d,
        AluOp::AndNotB => 0x10,
        AluOp::AddCarry => 0x11,
        AluOp::Or => 0x14,
        AluOp::Sub => 0x15,
        AluOp::Xor => 0x18,
    }
}

pub(super) fn cond_code(c: Cond) -> u64 {
    match c {
        Cond::Eq => 0,
        Cond::Ne => 1,
        Cond::Mi => 2,
        Cond::Pl => 3,
        Cond::Hs => 4,
        Cond::Lo => 5,
        Cond::Vs => 6,
        Cond::Vc => 7,
        Cond::Ge => 8,
        Cond::Lt => 9,
        Cond::Le => 0xa,
        Cond::Gt => 0xb,
        Cond::Always => 0x18,
    }
}

pub(super) fn csr_addr(c: Csr) -> R<u64> {
    Ok(match c {
        Csr::ActLmAddr(0) => 0x64,
        Csr::ActLmAddr(1) => 0x6c,
        Csr::ActLmAddr(2) => 0x94,
        Csr::ActLmAddr(3) => 0x9c,
        Csr::ActLmAddr(_) => return Err("ActLMAddr index >= 4"),
        Csr::PseudoRandNum => 0x148,
        Csr::ActiveCtxSts => 0x44,
    })
}

pub(super) fn helper_index(h: FwHelper) -> u8 {
    crate::cost::fw_index(h) as u8
}

pub(super) fn target_code(t: MemTarget) -> u64 {
    match t {
        MemTarget::Cls => 0,
        MemTarget::Ctm => 1,
        MemTarget::Imem => 2,
        MemTarget::Emem => 3,
    }
}

pub(super) fn action_code(a: CmdAction) -> u64 {
    match a {
        CmdAction::Read8 => 0,
        CmdAction::Read32 => 1,
        CmdAction::Write8 => 2,
        CmdAction::Write32 => 3,
        CmdAction::AtomicAdd => 4,
    }
}

fn defer_target(defer: u8, target: u16) -> R<u64> {
    if defer > 3 {
        return Err("more than 3 defer slots");
    }
    if target >= MAX_TARGET {
        return Err("branch target >= 8192");
    }
    Ok(u64::from(defer) << 20 | u64::from(target) << 22)
}

/// A single source placed in A (or B for a bank-B GPR) with `none` in the other field.
fn single_ur(s: Src) -> R<u64> {
    Ok(match s {
        Src::Gpr(Bank::B, _) => u64::from(UR_NONE) | u64::from(ur_src(s, Bank::B)?) << 10,
        _ => u64::from(ur_src(s, Bank::A)?) | u64::from(UR_NONE) << 10,
    })
}

/// Two unrestricted sources with the swap bit at `swap_bit`.
fn pair_ur(a: Src, b: Src, swap_bit: u32) -> R<u64> {
    let swap = needs_swap(a, b)?;
    let (fa, fb) = if swap { (b, a) } else { (a, b) };
    Ok(u64::from(ur_src(fa, Bank::A)?)
        | u64::from(ur_src(fb, Bank::B)?) << 10
        | u64::from(swap) << swap_bit)
}

/// Two restricted sources with the swap bit at `swap_bit`.
fn pair_re(a: Src, b: Src, swap_bit: u32) -> R<u64> {
    let swap = needs_swap(a, b)?;
    let (fa, fb) = if swap { (b, a) } else { (a, b) };
    Ok(put_re(Bank::A, re_src(fa, Bank::A)?)
        | put_re(Bank::B, re_src(fb, Bank::B)?)
        | u64::from(swap) << swap_bit)
}

/// Encodes one instruction, validating every operand range and the bank rule.
pub fn encode(insn: &MeInsn) -> Result<u64, EncodeError> {
    encode_raw(insn).map_err(|reason| EncodeError {
        insn: super::print::print(insn),
        reason,
    })
}

fn encode_raw(insn: &MeInsn) -> R<u64> {
    Ok(match *insn {
        MeInsn::Alu { op, dst, a, b } => {
            let (d, bank_b, both) = ur_dst(dst)?;
            OP_ALU
                | pair_ur(a, b, 30)?
                | u64::from(d) << 20
                | alu_op_code(op) << 31
                | u64::from(bank_b) << BIT_DST_BANK
                | u64::from(both) << BIT_WR_BOTH
        }
        MeInsn::Shf {
            kind,
            dst,
            a,
            b,
            amount,
        } => {
            let (sc, op) = match kind {
                ShiftKind::RotRight => (0, 0),
                ShiftKind::Right => (1, 0),
                ShiftKind::ArithRight => (1, 3),
                ShiftKind::Left => (2, 0),
                ShiftKind::DoubleRight => (3, 0),
            };
            let (amt, indirect) = match amount {
                ShiftAmount::Imm(n) if n < 32 => (u64::from(n), false),
                ShiftAmount::Imm(_) => return Err("shift amount >= 32"),
                ShiftAmount::Indirect => (0, true),
            };
            let (d, bank_b, both) = re_dst(dst)?;
            OP_SHF
                | pair_re(a, b, 19)?
                | sc << 8
                | u64::from(d) << 20
                | amt << 28
                | op << 33
                | u64::from(bank_b) << BIT_DST_BANK
                | u64::from(both) << BIT_WR_BOTH
                | u64::from(indirect) << BIT_SHF_INDIRECT
        }
        MeInsn::Immed {
            dst,
            imm,
            shift,
            invert,
            width,
        } => {
            let (w, ok) = match width {
                ImmedWidth::All => (0, shift <= 2),
                ImmedWidth::Byte => (1, shift <= 3),
                ImmedWidth::Word => (2, shift == 0 || shift == 2),
            };
            if !ok {
                return Err("immed shift not valid for its width");
            }
            let (d, bank_b, both) = ur_dst(dst)?;
            let lo = u64::from(UR_IMM | (imm & 0xff));
            let fields = if bank_b {
                lo | u64::from(d) << 10
            } else {
                u64::from(d) | lo << 10
            };
            OP_IMMED
                | fields
                | u64::from(imm >> 8) << 20
                | w << 29
                | u64::from(invert) << 31
                | u64::from(shift) << 33
                | u64::from(both) << BIT_WR_BOTH
        }
        MeInsn::LdField {
            dst,
            byte_mask,
            b,
            shift_bytes,
            zero_fill,
        } => {
            if byte_mask > 0xf || shift_bytes > 3 {
                return Err("ld_field mask > 0xf or shift > 3 bytes");
            }
            let (fields, swap, both) = match dst {
                Dst::Gpr(Bank::A, n) | Dst::Both(n) => (
                    u64::from(gpr(n)?) | put_re(Bank::B, re_src(b, Bank::B)?),
                    false,
                    matches!(dst, Dst::Both(_)),
                ),
                Dst::Gpr(Bank::B, n) => (
                    u64::from(gpr(n)?) << 10 | put_re(Bank::A, re_src(b, Bank::A)?),
                    true,
                    false,
                ),
                _ => return Err("ld_field destination must be a GPR"),
            };
            OP_LDF
                | fields
                | u64::from(swap) << 19
                | u64::from(zero_fill) << 20
                | u64::from(byte_mask) << 24
                | u64::from(shift_bytes * 8) << 28
                | u64::from(both) << BIT_WR_BOTH
        }
        MeInsn::Mul { step, dst, a, b } => {
            let (st, ty) = match step {
                MulStep::Start32 => (0, 3),
                MulStep::Start16 => (0, 2),
                MulStep::Step(n) if (1..=4).contains(&n) => (u64::from(n), 0),
                MulStep::Step(_) => return Err("multiply step number not in 1..=4"),
                MulStep::Last => (5, 0),
                MulStep::LastHigh => (6, 0),
            };
            let (d, bank_b, both) = re_dst(dst)?;
            OP_MUL
                | pair_ur(a, b, 30)?
                | st << 20
                | u64::from(bank_b) << 23
                | ty << 31
                | u64::from(both) << BIT_WR_BOTH
                | u64::from(d) << 48
        }
        MeInsn::Br {
            cond,
            target,
            defer,
        } => OP_BR | cond_code(cond) | defer_target(defer, target)?,
        MeInsn::BrBit {
            src,
            bit,
            set,
            target,
            defer,
        } => {
            if bit >= 32 {
                return Err("bit number >= 32");
            }
            let (field, is_b) = match src {
                Src::Gpr(Bank::B, _) => (Bank::B, true),
                _ => (Bank::A, false),
            };
            let (code, hi, none) = re_src(src, field)?;
            OP_BB
                | put_re(Bank::A, (code, hi, none))
                | u64::from(bit) << 8
                | u64::from(set) << 18
                | u64::from(is_b) << 19
                | defer_target(defer, target)?
        }
        MeInsn::Rtn { src, defer } => {
            if defer > 3 {
                return Err("more than 3 defer slots");
            }
            OP_RTN | single_ur(src)? | u64::from(defer) << 20
        }
        MeInsn::Cmd {
            target,
            action,
            xfer: x,
            count,
            mode,
            a,
            b,
            swap,
        } => {
            let max = match action {
                CmdAction::Read8 | CmdAction::Write8 => 32,
                CmdAction::Read32 | CmdAction::Write32 => 8,
                CmdAction::AtomicAdd => 2,
            };
            if count == 0 || count > max {
                return Err("command count out of range");
            }
            let words = match action {
                CmdAction::Read8 | CmdAction::Write8 => count.div_ceil(4),
                _ => count,
            };
            if xfer(x)? + words > 32 {
                return Err("command runs past the transfer registers");
            }
            let c = u64::from(count - 1);
            let m = match mode {
                AddrMode::Addr40 => 0,
                AddrMode::Addr32 => 2,
            };
            let ops = pair_re(a, b, BIT_CMD_SWAP_OPS)?;
            ops | (if swap { 0 } else { 3 }) << 8
                | u64::from(x) << 20
                | (c & 7) << 25
                | action_code(action) << 32
                | target_code(target) << 35
                | m << 42
                | (c >> 3) << 52
        }
        MeInsn::CsrRead { csr, dst } => {
            let (d, bank_b, both) = re_dst(dst)?;
            OP_LCSR
                | u64::from(UR_NONE)
                | u64::from(UR_NONE) << 10
                | u64::from(bank_b) << 20
                | csr_addr(csr)? << 22
                | u64::from(both) << BIT_WR_BOTH
                | u64::from(d) << 48
        }
        MeInsn::CsrWrite { csr, src } => {
            if !matches!(csr, Csr::ActLmAddr(_)) {
                return Err("CSR is not writable");
            }
            OP_LCSR | single_ur(src)? | 1 << 21 | csr_addr(csr)? << 22
        }
        MeInsn::FwCall { helper } => {
            OP_BR | cond_code(Cond::Always) | u64::from(RELO_FW_CALL + helper_index(helper)) << 56
        }
        MeInsn::Exit => OP_BR | cond_code(Cond::Always) | u64::from(RELO_EXIT) << 56,
        MeInsn::Nop => OP_IMMED | u64::from(UR_IMM) | u64::from(UR_IMM) << 10,
    })
}

/// Encodes a whole program.
pub fn encode_program(code: &[MeInsn]) -> Result<Vec<u64>, (usize, EncodeError)> {
    code.iter()
        .enumerate()
        .map(|(pc, i)| encode(i).map_err(|e| (pc, e)))
        .collect()
}
