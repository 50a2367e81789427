//! Instruction-mix coverage: which instruction forms generated programs contain, so a
//! generator change that silently stops producing (say) `sdiv32` with a register operand is
//! caught, and so the differential test can report what it exercised.

use std::collections::BTreeMap;

use vm_core::isa::{
    AluOp, AtomicOp, ByteOrder, CallTarget, Insn, JmpCond, LdImm64, Operand, Size, Width,
};

fn cls(width: Width) -> &'static str {
    match width {
        Width::W32 => "alu32",
        Width::W64 => "alu64",
    }
}

fn alu_name(op: AluOp) -> String {
    match op {
        AluOp::Add => "add".into(),
        AluOp::Sub => "sub".into(),
        AluOp::Mul => "mul".into(),
        AluOp::Div => "div".into(),
        AluOp::SDiv => "sdiv".into(),
        AluOp::Or => "or".into(),
        AluOp::And => "and".into(),
        AluOp::Lsh => "lsh".into(),
        AluOp::Rsh => "rsh".into(),
        AluOp::Mod => "mod".into(),
        AluOp::SMod => "smod".into(),
        AluOp::Xor => "xor".into(),
        AluOp::Mov => "mov".into(),
        AluOp::MovSx(b) => format!("movsx{b}"),
        AluOp::Arsh => "arsh".into(),
    }
}

fn size_name(size: Size) -> &'static str {
    match size {
        Size::B => "b",
        Size::H => "h",
        Size::W => "w",
        Size::DW => "dw",
    }
}

fn cond_name(c: JmpCond) -> &'static str {
    match c {
        JmpCond::Eq => "jeq",
        JmpCond::Gt => "jgt",
        JmpCond::Ge => "jge",
        JmpCond::Set => "jset",
        JmpCond::Ne => "jne",
        JmpCond::Sgt => "jsgt",
        JmpCond::Sge => "jsge",
        JmpCond::Lt => "jlt",
        JmpCond::Le => "jle",
        JmpCond::Slt => "jslt",
        JmpCond::Sle => "jsle",
    }
}

fn atomic_name(op: AtomicOp) -> &'static str {
    match op {
        AtomicOp::Add => "add",
        AtomicOp::Or => "or",
        AtomicOp::And => "and",
        AtomicOp::Xor => "xor",
        AtomicOp::Xchg => "xchg",
        AtomicOp::CmpXchg => "cmpxchg",
    }
}

fn operand(src: &Operand) -> &'static str {
    match src {
        Operand::Reg(_) => "x",
        Operand::Imm(_) => "k",
    }
}

/// A short name for the form of `insn` (`alu32.sdiv.x`, `jmp32.jsle.k`, `atomic64.add.fetch`,
/// `ldxsh`, `call.helper.1`, ...); operands other than their kind are ignored.
pub fn insn_key(insn: &Insn) -> String {
    match insn {
        Insn::Alu { op, width, src, .. } => {
            format!("{}.{}.{}", cls(*width), alu_name(*op), operand(src))
        }
        Insn::Neg { width, .. } => format!("{}.neg", cls(*width)),
        Insn::Endian { order, bits, .. } => match order {
            ByteOrder::ToLe => format!("le{bits}"),
            ByteOrder::ToBe => format!("be{bits}"),
            ByteOrder::Swap => format!("bswap{bits}"),
        },
        Insn::Load { size, signed, .. } => {
            format!("ldx{}{}", if *signed { "s" } else { "" }, size_name(*size))
        }
        Insn::Store { size, src, .. } => match src {
            Operand::Reg(_) => format!("stx{}", size_name(*size)),
            Operand::Imm(_) => format!("st{}", size_name(*size)),
        },
        Insn::Atomic {
            op, size, fetch, ..
        } => format!(
            "atomic{}.{}{}",
            if *size == Size::DW { 64 } else { 32 },
            atomic_name(*op),
            if *fetch && !matches!(op, AtomicOp::Xchg | AtomicOp::CmpXchg) {
                ".fetch"
            } else {
                ""
            }
        ),
        Insn::LdImm64 { value, .. } => match value {
            LdImm64::Imm(_) => "lddw.imm".into(),
            LdImm64::MapFd(_) => "lddw.map_fd".into(),
            LdImm64::MapValue { .. } => "lddw.map_value".into(),
            _ => "lddw.other".into(),
        },
        Insn::LdImm64Tail => "lddw.tail".into(),
        Insn::LdAbs { .. } => "ldabs".into(),
        Insn::LdInd { .. } => "ldind".into(),
        Insn::Ja { long, .. } => if *long { "ja32" } else { "ja" }.into(),
        Insn::Jmp {
            cond, width, src, ..
        } => format!(
            "{}.{}.{}",
            if *width == Width::W32 { "jmp32" } else { "jmp" },
            cond_name(*cond),
            operand(src)
        ),
        Insn::Call(CallTarget::Helper(id)) => format!("call.helper.{id}"),
        Insn::Call(CallTarget::Local(_)) => "call.local".into(),
        Insn::Call(CallTarget::Kfunc(_)) => "call.kfunc".into(),
        Insn::CallX { .. } => "callx".into(),
        Insn::Exit => "exit".into(),
    }
}

/// Every instruction form the generator is meant to produce.
pub fn expected_insn_keys() -> Vec<String> {
    let mut keys = Vec::new();
    let ops = [
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::SDiv,
        AluOp::Or,
        AluOp::And,
        AluOp::Lsh,
        AluOp::Rsh,
        AluOp::Mod,
        AluOp::SMod,
        AluOp::Xor,
        AluOp::Mov,
        AluOp::Arsh,
    ];
    for w in [Width::W32, Width::W64] {
        for op in ops {
            for k in ["x", "k"] {
                keys.push(format!("{}.{}.{k}", cls(w), alu_name(op)));
            }
        }
        keys.push(format!("{}.neg", cls(w)));
        for b in [8, 16] {
            keys.push(format!("{}.movsx{b}.x", cls(w)));
        }
    }
    keys.push("alu64.movsx32.x".into());
    for bits in [16, 32, 64] {
        keys.push(format!("le{bits}"));
        keys.push(format!("be{bits}"));
        keys.push(format!("bswap{bits}"));
    }
    for s in ["b", "h", "w", "dw"] {
        keys.push(format!("ldx{s}"));
        keys.push(format!("st{s}"));
        keys.push(format!("stx{s}"));
    }
    for s in ["b", "h", "w"] {
        keys.push(format!("ldxs{s}"));
    }
    for bits in [32, 64] {
        for op in ["add", "or", "and", "xor"] {
            keys.push(format!("atomic{bits}.{op}"));
            keys.push(format!("atomic{bits}.{op}.fetch"));
        }
        keys.push(format!("atomic{bits}.xchg"));
        keys.push(format!("atomic{bits}.cmpxchg"));
    }
    for c in [
        JmpCond::Eq,
        JmpCond::Gt,
        JmpCond::Ge,
        JmpCond::Set,
        JmpCond::Ne,
        JmpCond::Sgt,
        JmpCond::Sge,
        JmpCond::Lt,
        JmpCond::Le,
        JmpCond::Slt,
        JmpCond::Sle,
    ] {
        for w in ["jmp", "jmp32"] {
            for k in ["x", "k"] {
                keys.push(format!("{w}.{}.{k}", cond_name(c)));
            }
        }
    }
    for k in [
        "lddw.imm",
        "lddw.map_fd",
        "lddw.map_value",
        "ja",
        "ja32",
        "call.helper.1",
        "call.helper.2",
        "call.helper.3",
        "call.helper.28",
        "call.helper.44",
        "call.helper.54",
        "call.helper.65",
        "call.helper.188",
        "call.helper.189",
        "call.helper.190",
        "call.local",
        "exit",
    ] {
        keys.push(k.into());
    }
    keys
}

/// Counts of instruction forms and lowering features over many programs.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Programs counted.
    pub programs: u64,
    /// Instruction slots counted (lddw tails excluded).
    pub insns: u64,
    /// Per [`insn_key`].
    pub forms: BTreeMap<String, u64>,
    /// Per lowering feature tag (`pkt.load`, `value.atomic`, `loop`, ...).
    pub features: BTreeMap<String, u64>,
}

impl Tally {
    /// Adds one lowered program.
    pub fn add(&mut self, lowered: &super::Lowered) {
        self.programs += 1;
        for insn in &lowered.program.insns {
            if *insn == Insn::LdImm64Tail {
                continue;
            }
            self.insns += 1;
            *self.forms.entry(insn_key(insn)).or_insert(0) += 1;
        }
        for (k, v) in &lowered.features {
            *self.features.entry((*k).to_string()).or_insert(0) += u64::from(*v);
        }
    }

    /// Expected forms never seen.
    pub fn missing(&self) -> Vec<String> {
        expected_insn_keys()
            .into_iter()
            .filter(|k| !self.forms.contains_key(k))
            .collect()
    }

    /// A compact multi-line report: totals, features, and the rarest forms.
    pub fn report(&self) -> String {
        let mut s = format!(
            "{} programs, {} instructions ({:.1} per program), {} distinct forms of {} expected\n",
            self.programs,
            self.insns,
            self.insns as f64 / self.programs.max(1) as f64,
            self.forms.len(),
            expected_insn_keys().len()
        );
        s.push_str("features:");
        for (k, v) in &self.features {
            s.push_str(&format!(" {k}={v}"));
        }
        s.push('\n');
        let mut rare: Vec<_> = self.forms.iter().collect();
        rare.sort_by_key(|(_, n)| **n);
        s.push_str("rarest forms:");
        for (k, v) in rare.iter().take(12) {
            s.push_str(&format!(" {k}={v}"));
        }
        s.push('\n');
        let missing = self.missing();
        if !missing.is_empty() {
            s.push_str(&format!("missing forms: {}\n", missing.join(" ")));
        }
        s
    }
}
