//! Text listing of microengine code in an NFP-assembler-like syntax, for `--emit asm`
//! listings, error messages and test failures: `alu[gprA_4, gprA_2, +, gprB_3]`,
//! `immed[gprAB_0, 0x1234, <<16]`, `ctm[read8, $xfer_0, gprA_20, gprB_21, 4], ctx_swap`,
//! `br=[label_12]`, `fw_call[map_lookup]`, `exit`. Branch targets print as `label_N` where
//! `N` is the code address, which [`print_program`] shows in front of every line.

use std::fmt::{self, Display, Formatter, Write as _};

use super::insn::{
    AddrMode, AluOp, Bank, CmdAction, Cond, Csr, Dst, FwHelper, ImmedWidth, MeInsn, MemTarget,
    MulStep, ShiftAmount, ShiftKind, Src,
};

fn bank(b: Bank) -> &'static str {
    match b {
        Bank::A => "A",
        Bank::B => "B",
    }
}

impl Display for Src {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match *self {
            Src::Gpr(b, n) => write!(f, "gpr{}_{n}", bank(b)),
            Src::Xfer(n) => write!(f, "$xfer_{n}"),
            Src::Lm { index, off } => write!(f, "*l$index{index}[{off}]"),
            Src::Imm(v) => write!(f, "{v:#x}"),
            Src::None => f.write_str("--"),
        }
    }
}

impl Display for Dst {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match *self {
            Dst::Gpr(b, n) => write!(f, "gpr{}_{n}", bank(b)),
            Dst::Both(n) => write!(f, "gprAB_{n}"),
            Dst::Xfer(n) => write!(f, "$xfer_{n}"),
            Dst::Lm { index, off } => write!(f, "*l$index{index}[{off}]"),
            Dst::None => f.write_str("--"),
        }
    }
}

fn alu_op(op: AluOp) -> &'static str {
    match op {
        AluOp::PassB => "B",
        AluOp::Add => "+",
        AluOp::AddCarry => "+carry",
        AluOp::Sub => "-",
        AluOp::SubCarry => "-carry",
        AluOp::NotB => "~B",
        AluOp::And => "AND",
        AluOp::AndNotA => "~AND",
        AluOp::AndNotB => "AND~",
        AluOp::Or => "OR",
        AluOp::Xor => "XOR",
    }
}

fn branch(c: Cond) -> &'static str {
    match c {
        Cond::Eq => "br=",
        Cond::Ne => "br!=",
        Cond::Mi => "bmi",
        Cond::Pl => "bpl",
        Cond::Hs => "bhs",
        Cond::Lo => "blo",
        Cond::Vs => "bvs",
        Cond::Vc => "bvc",
        Cond::Ge => "bge",
        Cond::Lt => "blt",
        Cond::Le => "ble",
        Cond::Gt => "bgt",
        Cond::Always => "br",
    }
}

/// The helper's name in listings (`fw_call[map_lookup]`).
pub fn helper_name(h: FwHelper) -> &'static str {
    match h {
        FwHelper::MapLookup => "map_lookup",
        FwHelper::MapUpdate => "map_update",
        FwHelper::MapDelete => "map_delete",
        FwHelper::Random => "random",
        FwHelper::AdjustHead => "adjust_head",
        FwHelper::AdjustTail => "adjust_tail",
        FwHelper::PerfEventOutput => "perf_event_output",
    }
}

fn target(t: MemTarget) -> &'static str {
    match t {
        MemTarget::Cls => "cls",
        MemTarget::Ctm => "ctm",
        MemTarget::Imem => "imem",
        MemTarget::Emem => "emem",
    }
}

fn action(a: CmdAction) -> &'static str {
    match a {
        CmdAction::Read8 => "read8",
        CmdAction::Read32 => "read32",
        CmdAction::Write8 => "write8",
        CmdAction::Write32 => "write32",
        CmdAction::AtomicAdd => "atomic_add",
    }
}

fn csr(c: Csr) -> String {
    match c {
        Csr::ActLmAddr(n) => format!("ActLMAddr{n}"),
        Csr::PseudoRandNum => "PseudoRandNum".into(),
        Csr::ActiveCtxSts => "ActiveCtxSts".into(),
    }
}

fn defer(f: &mut Formatter<'_>, d: u8) -> fmt::Result {
    if d > 0 {
        write!(f, ", defer[{d}]")?;
    }
    Ok(())
}

impl Display for MeInsn {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match *self {
            MeInsn::Alu { op, dst, a, b } => write!(f, "alu[{dst}, {a}, {}, {b}]", alu_op(op)),
            MeInsn::Shf {
                kind,
                dst,
                a,
                b,
                amount,
            } => {
                let (name, dir) = match kind {
                    ShiftKind::Left => ("alu_shf", "<<"),
                    ShiftKind::Right => ("alu_shf", ">>"),
                    ShiftKind::ArithRight => ("asr", ">>"),
                    ShiftKind::RotRight => ("alu_shf", ">>rot"),
                    ShiftKind::DoubleRight => ("dbl_shf", ">>"),
                };
                write!(f, "{name}[{dst}, {a}, {b}, {dir}")?;
                match amount {
                    ShiftAmount::Imm(n) => write!(f, "{n}]"),
                    ShiftAmount::Indirect => f.write_str("indirect]"),
                }
            }
            MeInsn::Immed {
                dst,
                imm,
                shift,
                invert,
                width,
            } => {
                let inv = if invert { "~" } else { "" };
                match width {
                    ImmedWidth::All => {
                        write!(f, "immed[{dst}, {inv}{imm:#x}")?;
                        if shift > 0 {
                            write!(f, ", <<{}", 8 * u32::from(shift))?;
                        }
                        f.write_str("]")
                    }
                    ImmedWidth::Word => write!(f, "immed_w{}[{dst}, {inv}{imm:#x}]", shift / 2),
                    ImmedWidth::Byte => write!(f, "immed_b{shift}[{dst}, {inv}{imm:#x}]"),
                }
            }
            MeInsn::LdField {
                dst,
                byte_mask,
                b,
                shift_bytes,
                zero_fill,
            } => {
                let clr = if zero_fill { "_w_clr" } else { "" };
                write!(f, "ld_field{clr}[{dst}, {byte_mask:04b}, {b}")?;
                if shift_bytes > 0 {
                    write!(f, ", >>rot{}", 8 * u32::from(shift_bytes))?;
                }
                f.write_str("]")
            }
            MeInsn::Mul { step, dst, a, b } => {
                let s = match step {
                    MulStep::Start32 => "32x32_start".to_string(),
                    MulStep::Start16 => "16x16_start".to_string(),
                    MulStep::Step(n) => format!("step_{n}"),
                    MulStep::Last => "last".to_string(),
                    MulStep::LastHigh => "last2".to_string(),
                };
                write!(f, "mul_step[{dst}, {a}, {b}, {s}]")
            }
            MeInsn::Br {
                cond,
                target,
                defer: d,
            } => {
                write!(f, "{}[label_{target}", branch(cond))?;
                defer(f, d)?;
                f.write_str("]")
            }
            MeInsn::BrBit {
                src,
                bit,
                set,
                target,
                defer: d,
            } => {
                let name = if set { "br_bset" } else { "br_bclr" };
                write!(f, "{name}[{src}, {bit}, label_{target}")?;
                defer(f, d)?;
                f.write_str("]")
            }
            MeInsn::Rtn { src, defer: d } => {
                write!(f, "rtn[{src}")?;
                defer(f, d)?;
                f.write_str("]")
            }
            MeInsn::Cmd {
                target: t,
                action: act,
                xfer,
                count,
                mode,
                a,
                b,
                swap,
            } => {
                write!(f, "{}[{}, $xfer_{xfer}, {a}, ", target(t), action(act))?;
                if mode == AddrMode::Addr40 {
                    f.write_str("<<8, ")?;
                }
                write!(f, "{b}, {count}], ")?;
                f.write_str(if swap { "ctx_swap" } else { "sig_done" })
            }
            MeInsn::CsrRead { csr: c, dst } => write!(f, "local_csr_rd[{dst}, {}]", csr(c)),
            MeInsn::CsrWrite { csr: c, src } => write!(f, "local_csr_wr[{}, {src}]", csr(c)),
            MeInsn::FwCall { helper } => write!(f, "fw_call[{}]", helper_name(helper)),
            MeInsn::Exit => f.write_str("exit"),
            MeInsn::Nop => f.write_str("nop"),
        }
    }
}

/// One instruction as text.
pub fn print(insn: &MeInsn) -> String {
    insn.to_string()
}

/// A listing with code addresses: `  12: alu[...]`, one instruction per line.
pub fn print_program(code: &[MeInsn]) -> String {
    let mut out = String::with_capacity(code.len() * 40);
    let width = code.len().saturating_sub(1).to_string().len();
    for (pc, insn) in code.iter().enumerate() {
        let _ = writeln!(out, "{pc:>width$}: {insn}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfp_like_syntax() {
        let cases = [
            (
                MeInsn::Alu {
                    op: AluOp::Add,
                    dst: Dst::Gpr(Bank::A, 4),
                    a: Src::Gpr(Bank::A, 2),
                    b: Src::Gpr(Bank::B, 3),
                },
                "alu[gprA_4, gprA_2, +, gprB_3]",
            ),
            (
                MeInsn::Immed {
                    dst: Dst::Both(0),
                    imm: 0x1234,
                    shift: 2,
                    invert: false,
                    width: ImmedWidth::All,
                },
                "immed[gprAB_0, 0x1234, <<16]",
            ),
            (
                MeInsn::Immed {
                    dst: Dst::Both(1),
                    imm: 0xff,
                    shift: 2,
                    invert: true,
                    width: ImmedWidth::Word,
                },
                "immed_w1[gprAB_1, ~0xff]",
            ),
            (
                MeInsn::Cmd {
                    target: MemTarget::Ctm,
                    action: CmdAction::Read8,
                    xfer: 0,
                    count: 4,
                    mode: AddrMode::Addr32,
                    a: Src::Gpr(Bank::A, 20),
                    b: Src::Gpr(Bank::B, 21),
                    swap: true,
                },
                "ctm[read8, $xfer_0, gprA_20, gprB_21, 4], ctx_swap",
            ),
            (
                MeInsn::Cmd {
                    target: MemTarget::Emem,
                    action: CmdAction::AtomicAdd,
                    xfer: 2,
                    count: 2,
                    mode: AddrMode::Addr40,
                    a: Src::Gpr(Bank::A, 1),
                    b: Src::Gpr(Bank::B, 0),
                    swap: false,
                },
                "emem[atomic_add, $xfer_2, gprA_1, <<8, gprB_0, 2], sig_done",
            ),
            (
                MeInsn::Br {
                    cond: Cond::Eq,
                    target: 12,
                    defer: 0,
                },
                "br=[label_12]",
            ),
            (
                MeInsn::Br {
                    cond: Cond::Always,
                    target: 3,
                    defer: 2,
                },
                "br[label_3, defer[2]]",
            ),
            (
                MeInsn::FwCall {
                    helper: FwHelper::MapLookup,
                },
                "fw_call[map_lookup]",
            ),
            (MeInsn::Exit, "exit"),
            (MeInsn::Nop, "nop"),
            (
                MeInsn::Shf {
                    kind: ShiftKind::Left,
                    dst: Dst::Both(2),
                    a: Src::None,
                    b: Src::Lm { index: 0, off: 3 },
                    amount: ShiftAmount::Indirect,
                },
                "alu_shf[gprAB_2, --, *l$index0[3], <<indirect]",
            ),
            (
                MeInsn::LdField {
                    dst: Dst::Gpr(Bank::B, 5),
                    byte_mask: 3,
                    b: Src::Xfer(1),
                    shift_bytes: 2,
                    zero_fill: true,
                },
                "ld_field_w_clr[gprB_5, 0011, $xfer_1, >>rot16]",
            ),
            (
                MeInsn::Mul {
                    step: MulStep::Step(2),
                    dst: Dst::None,
                    a: Src::Gpr(Bank::A, 2),
                    b: Src::Imm(7),
                },
                "mul_step[--, gprA_2, 0x7, step_2]",
            ),
            (
                MeInsn::CsrWrite {
                    csr: Csr::ActLmAddr(3),
                    src: Src::Gpr(Bank::A, 22),
                },
                "local_csr_wr[ActLMAddr3, gprA_22]",
            ),
            (
                MeInsn::BrBit {
                    src: Src::Gpr(Bank::B, 1),
                    bit: 31,
                    set: false,
                    target: 7,
                    defer: 1,
                },
                "br_bclr[gprB_1, 31, label_7, defer[1]]",
            ),
            (
                MeInsn::Rtn {
                    src: Src::Gpr(Bank::A, 21),
                    defer: 0,
                },
                "rtn[gprA_21]",
            ),
        ];
        for (insn, want) in cases {
            assert_eq!(print(&insn), want);
        }
    }

    #[test]
    fn listing_has_aligned_addresses() {
        let code = vec![MeInsn::Nop; 11];
        let text = print_program(&code);
        assert!(text.starts_with(" 0: nop\n"), "{text}");
        assert!(text.ends_with("10: nop\n"), "{text}");
        assert_eq!(print_program(&[]), "");
    }
}
