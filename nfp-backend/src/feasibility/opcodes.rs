//! The JIT's instruction table: which eBPF instructions have a microengine translation at
//! all, whatever the verifier state (nfp-model.md §2.2).
//!
//! Why a separate, state-free check: it is the one check that needs no path, so it also
//! runs over instructions the walk never reached when the verifier gave up early, and a
//! report can still list every opcode the NIC lacks.

use vm_core::isa::{AluOp, AtomicOp, ByteOrder, CallTarget, Insn, LdImm64};

use super::category as cat;

/// The opcode byte of `insn`, as the kernel's message prints it (`0x9f` for `mod64 reg`).
pub(super) fn opcode(insn: &Insn) -> u8 {
    insn.encode().first().map_or(0, |raw| raw.code)
}

/// The atomic operation's immediate (`BPF_ADD` = 0, `BPF_ADD | BPF_FETCH` = 1, ...), as the
/// kernel's "atomic op not implemented" message prints it.
pub(super) fn atomic_imm(insn: &Insn) -> i32 {
    insn.encode().first().map_or(0, |raw| raw.imm)
}

/// Whether `insn` is the one atomic the firmware implements: a non-fetching add (the old
/// `xadd`), 32 or 64 bits.
pub(super) fn is_plain_atomic_add(insn: &Insn) -> bool {
    matches!(
        insn,
        Insn::Atomic {
            op: AtomicOp::Add,
            fetch: false,
            ..
        }
    )
}

/// Why the JIT has no translation for `insn`, as `(category, message)`; `None` when it has
/// one (helper calls are judged by [`super::helpers`]).
pub(super) fn unsupported(insn: &Insn) -> Option<(&'static str, String)> {
    let not_in_table = || {
        Some((
            cat::INSN_NOT_SUPPORTED,
            format!("[nfp] instruction {:#04x} not supported", opcode(insn)),
        ))
    };
    match insn {
        // Signed division and modulo are ISA v4; unsigned modulo was never in the table
        // (there is no divide unit, and division is a reciprocal multiply by a constant).
        Insn::Alu {
            op: AluOp::Mod | AluOp::SMod | AluOp::SDiv | AluOp::MovSx(_),
            ..
        } => not_in_table(),
        // The table has BPF_TO_BE only; `le*` and the v4 `bswap` are absent.
        Insn::Endian {
            order: ByteOrder::ToLe | ByteOrder::Swap,
            ..
        } => not_in_table(),
        Insn::Load { signed: true, .. } => not_in_table(),
        Insn::Ja { long: true, .. } => not_in_table(),
        Insn::CallX { .. } => not_in_table(),
        Insn::Call(CallTarget::Kfunc(id)) => Some((
            cat::KFUNC,
            format!(
                "[nfp] calling kernel function (BTF id {id}) is not supported for offloaded programs"
            ),
        )),
        Insn::Atomic { .. } if !is_plain_atomic_add(insn) => Some((
            cat::ATOMIC_OP,
            format!("[nfp] atomic op not implemented: {}", atomic_imm(insn)),
        )),
        Insn::LdImm64 { value, .. } => {
            let what = match value {
                LdImm64::Imm(_) | LdImm64::MapFd(_) | LdImm64::MapIdx(_) => return None,
                LdImm64::MapValue { .. } | LdImm64::MapIdxValue { .. } => {
                    "a map value address (global data)"
                }
                LdImm64::BtfId { .. } => "a kernel variable (BTF id)",
                LdImm64::Func(_) => "a function address (callback)",
            };
            Some((
                cat::LD_IMM64_PSEUDO,
                format!("[nfp] ld_imm64 of {what} not supported"),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_core::isa::{Operand, Width};

    #[test]
    fn modulo_names_its_opcode_like_the_kernel() {
        let insn = Insn::Alu {
            op: AluOp::Mod,
            width: Width::W64,
            dst: 1,
            src: Operand::Reg(2),
        };
        let (c, m) = unsupported(&insn).unwrap_or_default();
        assert_eq!(c, cat::INSN_NOT_SUPPORTED);
        assert_eq!(m, "[nfp] instruction 0x9f not supported");
    }

    #[test]
    fn be_and_plain_alu_are_in_the_table() {
        let be = Insn::Endian {
            order: ByteOrder::ToBe,
            bits: 16,
            dst: 1,
        };
        assert!(unsupported(&be).is_none());
        let add = Insn::Alu {
            op: AluOp::Add,
            width: Width::W32,
            dst: 1,
            src: Operand::Imm(3),
        };
        assert!(unsupported(&add).is_none());
    }

    #[test]
    fn fetching_add_is_not_the_xadd_the_firmware_has() {
        let insn = Insn::Atomic {
            op: AtomicOp::Add,
            size: vm_core::isa::Size::DW,
            fetch: true,
            dst: 1,
            src: 2,
            off: 0,
        };
        let (c, m) = unsupported(&insn).unwrap_or_default();
        assert_eq!(c, cat::ATOMIC_OP);
        assert_eq!(m, "[nfp] atomic op not implemented: 1");
    }
}
