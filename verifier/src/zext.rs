//! Zero-extension analysis (the kernel's `zext_dst` marking).
//!
//! eBPF defines every 32-bit ALU result as zero-extended to 64 bits. A 32-bit machine (or the
//! NFP, with 32-bit registers) only produces the low half, so it must clear the high half
//! explicitly — but only where some later 64-bit read can observe it. The walk records, for
//! each register, the instruction that last wrote it as a 32-bit sub-register (the kernel's
//! `is_reg64` decides what counts: ALU32 results, narrow loads, 32-bit atomic fetches,
//! legacy packet loads); a 64-bit read of such a register marks that instruction. Reads that
//! a pruned path would have made are accounted for conservatively (see
//! [`crate::prune`]). Calls are never listed: they define no sub-register a backend emits.

use vm_core::isa::Insn;

use crate::code::Code;
use crate::facts::InsnFacts;

/// The instructions whose 32-bit result needs explicit zero-extension, in slot order.
pub fn zext_list(code: &Code, facts: &[InsnFacts]) -> Vec<usize> {
    facts
        .iter()
        .enumerate()
        .filter(|(pc, f)| {
            f.zext
                && matches!(
                    code.insn(*pc),
                    Some(
                        Insn::Alu { .. }
                            | Insn::Neg { .. }
                            | Insn::Endian { .. }
                            | Insn::Load { .. }
                            | Insn::Atomic { .. }
                            | Insn::LdAbs { .. }
                            | Insn::LdInd { .. }
                    )
                )
        })
        .map(|(pc, _)| pc)
        .collect()
}
