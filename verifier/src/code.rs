//! The program as the verifier sees it: one entry per 8-byte slot, each a decoded
//! instruction or the reason it does not decode.
//!
//! Why not just `vm_core::Program`: the kernel rejects some bad encodings up front (unknown
//! opcodes, malformed `lddw`) but others only when the walk reaches them (reserved fields,
//! invalid registers), so that an unreachable bad instruction is reported as "unreachable
//! insn". Keeping undecodable slots as [`Slot::Bad`] lets us report each in the kernel's order
//! and wording.

use vm_core::isa::{DecodeErrorKind, Insn, LdImm64, RawInsn, decode_at, encode_program, opcode};
use vm_core::{MapDef, MapType};

use crate::error::{Errno, VResult, VerifierError};

/// One slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// A decoded instruction (an `lddw` tail decodes as [`Insn::LdImm64Tail`]).
    Insn(Insn),
    /// An encoding the kernel only rejects when it verifies the instruction.
    Bad(DecodeErrorKind),
}

/// The decoded program plus the opcode bytes the log prints.
#[derive(Debug, Clone)]
pub struct Code {
    /// One entry per slot.
    pub slots: Vec<Slot>,
    /// The opcode byte of each slot as stored.
    pub opcodes: Vec<u8>,
}

/// The kernel's `BPF_MAX_VAR_OFF`: offsets at or beyond 2^29 are never tracked.
pub const MAX_VAR_OFF: i64 = 1 << 29;

impl Code {
    /// From an already decoded program.
    pub fn from_insns(insns: &[Insn]) -> Code {
        let raw = encode_program(insns);
        Code {
            slots: insns.iter().map(|i| Slot::Insn(*i)).collect(),
            opcodes: raw.iter().map(|r| r.code).collect(),
        }
    }

    /// Decodes raw slots. Returns the code and, separately, the first error the kernel
    /// reports before it looks at control flow (unknown opcodes, malformed `lddw`, reserved
    /// fields of loads), which the caller raises after the subprogram checks, in the
    /// kernel's pass order.
    pub fn from_raw(raw: &[RawInsn]) -> (Code, Option<VerifierError>) {
        let mut slots = Vec::with_capacity(raw.len());
        let mut early = None;
        let mut pc = 0;
        while pc < raw.len() {
            match decode_at(raw, pc) {
                Ok(insn) => {
                    let n = insn.slots();
                    slots.push(Slot::Insn(insn));
                    if n == 2 {
                        slots.push(Slot::Insn(Insn::LdImm64Tail));
                    }
                    pc += n;
                }
                Err(e) => {
                    let kind = precedence(raw, pc, e.kind);
                    let (msg, slots_taken) = early_message(raw, pc, &kind);
                    if let Some(m) = msg
                        && early.is_none()
                    {
                        early = Some(VerifierError::einval(pc, m));
                    }
                    slots.push(Slot::Bad(kind));
                    if slots_taken == 2 && pc + 1 < raw.len() {
                        slots.push(Slot::Insn(Insn::LdImm64Tail));
                    }
                    pc += slots_taken.min(raw.len() - pc);
                }
            }
        }
        // `callx` decodes, but the kernel does not know the opcode.
        if early.is_none()
            && let Some(pc) = slots
                .iter()
                .position(|s| matches!(s, Slot::Insn(Insn::CallX { .. })))
        {
            early = Some(VerifierError::einval(
                pc,
                format!("unknown opcode {:02x}", raw[pc].code),
            ));
        }
        let opcodes = raw.iter().map(|r| r.code).collect();
        (Code { slots, opcodes }, early)
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The decoded instruction at `pc`, if it decoded.
    pub fn insn(&self, pc: usize) -> Option<&Insn> {
        match self.slots.get(pc) {
            Some(Slot::Insn(i)) => Some(i),
            _ => None,
        }
    }
}

/// The kernel checks an instruction's opcode and reserved fields before its registers; the
/// decoder may report an invalid register first. Re-decode with valid registers in place of
/// invalid ones to find what the kernel reports.
fn precedence(raw: &[RawInsn], pc: usize, kind: DecodeErrorKind) -> DecodeErrorKind {
    let DecodeErrorKind::InvalidRegister(_) = kind else {
        return kind;
    };
    let mut fixed = raw.to_vec();
    let r = &mut fixed[pc];
    if r.dst > 10 {
        r.dst = 1;
    }
    if r.src > 10 {
        r.src = 1;
    }
    match decode_at(&fixed, pc) {
        Err(e) if !matches!(e.kind, DecodeErrorKind::InvalidRegister(_)) => e.kind,
        _ => kind,
    }
}

/// For errors the kernel reports before looking at control flow: the message, and how many
/// slots the bad instruction occupies.
fn early_message(raw: &[RawInsn], pc: usize, kind: &DecodeErrorKind) -> (Option<String>, usize) {
    match kind {
        DecodeErrorKind::UnknownOpcode(op) => {
            let ldx_mode = opcode::class(*op) == opcode::BPF_LDX
                && !matches!(opcode::mode(*op), opcode::BPF_MEM | opcode::BPF_MEMSX);
            if ldx_mode {
                (Some("BPF_LDX uses reserved fields".to_string()), 1)
            } else {
                (Some(format!("unknown opcode {op:02x}")), 1)
            }
        }
        DecodeErrorKind::LddwMissingSecondSlot => {
            (Some("invalid bpf_ld_imm64 insn".to_string()), 1)
        }
        DecodeErrorKind::LddwBadSecondSlot => {
            // A clean second slot with a non-zero imm on a map/func pseudo source is
            // "unrecognized" in the kernel's words; otherwise the pair is malformed and the
            // kernel's other passes see the second slot as an instruction of its own.
            let clean = raw
                .get(pc + 1)
                .is_some_and(|h| h.code == 0 && h.dst == 0 && h.src == 0 && h.off == 0);
            if clean {
                (Some("unrecognized bpf_ld_imm64 insn".to_string()), 2)
            } else {
                (Some("invalid bpf_ld_imm64 insn".to_string()), 1)
            }
        }
        DecodeErrorKind::LddwBadSrc(_) => (Some("unrecognized bpf_ld_imm64 insn".to_string()), 2),
        DecodeErrorKind::ReservedFields("BPF_LDX") => {
            (Some("BPF_LDX uses reserved fields".to_string()), 1)
        }
        DecodeErrorKind::ReservedFields("BPF_LD_IMM64") => (None, 2),
        _ => (None, 1),
    }
}

/// The kernel's `resolve_pseudo_ldimm64` checks of map references: every map named by an
/// `lddw` must exist, and a direct value address must fall inside a single-element array.
pub fn check_map_refs(code: &Code, maps: &[MapDef]) -> VResult<()> {
    for (pc, slot) in code.slots.iter().enumerate() {
        let Slot::Insn(Insn::LdImm64 { value, .. }) = slot else {
            continue;
        };
        let (fd, off) = match *value {
            LdImm64::MapFd(fd) => (fd, None),
            LdImm64::MapValue { fd, off } => (fd, Some(off)),
            LdImm64::MapIdx(_) | LdImm64::MapIdxValue { .. } => {
                return Err(VerifierError::einval(
                    pc,
                    "fd_idx without fd_array is invalid",
                ));
            }
            LdImm64::BtfId { .. } => {
                return Err(VerifierError::einval(
                    pc,
                    "kernel BTF is not available to this verifier (BPF_PSEUDO_BTF_ID)",
                ));
            }
            LdImm64::Imm(_) | LdImm64::Func(_) => continue,
        };
        let Some(def) = usize::try_from(fd).ok().and_then(|i| maps.get(i)) else {
            // The kernel answers EBADF for a closed descriptor and EINVAL for an open one
            // that is not a map; an index past our map list is most like the latter.
            return Err(VerifierError::einval(
                pc,
                format!("fd {fd} is not pointing to valid bpf_map"),
            ));
        };
        if let Some(off) = off {
            if i64::from(off) >= MAX_VAR_OFF {
                return Err(VerifierError::einval(
                    pc,
                    format!("direct value offset of {off} is not allowed"),
                ));
            }
            if !matches!(def.map_type, MapType::Array) {
                return Err(VerifierError::einval(
                    pc,
                    "no direct value access support for this map type",
                ));
            }
            if off >= def.value_size || def.max_entries != 1 {
                let errno = if def.max_entries != 1 {
                    Errno::EOPNOTSUPP
                } else {
                    Errno::EINVAL
                };
                return Err(VerifierError::new(
                    pc,
                    errno,
                    format!(
                        "invalid access to map value pointer, value_size={} off={off}",
                        def.value_size
                    ),
                ));
            }
        }
    }
    Ok(())
}
