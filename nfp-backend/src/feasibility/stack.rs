//! The stack the firmware must give one thread: every frame of the deepest call chain,
//! each rounded to 64 bytes (nfp-model.md §1.6).
//!
//! Why more than the verifier's figure: on the NIC a callee's frame also holds the return
//! address (4 bytes), and R6–R9 (32 bytes) when the callee writes them, since the shared
//! push/pop subroutines save them in local memory; and frames are aligned to the 64-byte
//! local-memory window the JIT addresses through one index register.

use verifier::cfg::{Subprog, find_subprogs};
use verifier::code::Code;
use vm_core::isa::{CallTarget, Insn};

/// Local-memory frame alignment.
const FRAME_ALIGN: u32 = 64;
/// Return address slot of a callee frame.
const RET_ADDR_BYTES: u32 = 4;
/// R6–R9 saved by a callee that writes them.
const SAVED_REGS_BYTES: u32 = 32;
/// Deepest call chain the verifier allows; a guard against malformed call graphs.
const MAX_FRAMES: usize = 8;

/// Bytes of NIC stack the deepest call chain needs; `depths` are the verifier's per
/// subprogram stack depths, main program first.
pub(super) fn nfp_stack_usage(insns: &[Insn], depths: &[u32]) -> u32 {
    let code = Code::from_insns(insns);
    let Ok(subprogs) = find_subprogs(&code) else {
        return depths
            .first()
            .copied()
            .unwrap_or(0)
            .next_multiple_of(FRAME_ALIGN);
    };
    let frames: Vec<u32> = subprogs
        .iter()
        .enumerate()
        .map(|(i, sp)| {
            let mut bytes = depths.get(i).copied().unwrap_or(0);
            if i > 0 {
                bytes += RET_ADDR_BYTES;
                if writes_callee_saved(insns, sp) {
                    bytes += SAVED_REGS_BYTES;
                }
            }
            bytes.next_multiple_of(FRAME_ALIGN)
        })
        .collect();
    let callees: Vec<Vec<usize>> = subprogs
        .iter()
        .map(|sp| {
            (sp.start..sp.end.min(insns.len()))
                .filter_map(|pc| match insns[pc] {
                    Insn::Call(CallTarget::Local(_)) => insns[pc].call_target(pc),
                    _ => None,
                })
                .filter_map(|t| subprogs.iter().position(|s| s.start as i64 == t))
                .collect()
        })
        .collect();
    deepest(&frames, &callees, 0, 1)
}

/// Whether the subprogram writes any of R6–R9 (the JIT then saves them on entry).
fn writes_callee_saved(insns: &[Insn], sp: &Subprog) -> bool {
    insns
        .get(sp.start..sp.end.min(insns.len()))
        .unwrap_or(&[])
        .iter()
        .filter_map(|insn| insn.encode().first().copied())
        .any(|raw| (6..=9).contains(&raw.dst))
}

fn deepest(frames: &[u32], callees: &[Vec<usize>], idx: usize, level: usize) -> u32 {
    let own = frames.get(idx).copied().unwrap_or(0);
    if level >= MAX_FRAMES {
        return own;
    }
    let below = callees.get(idx).map_or(0, |cs| {
        cs.iter()
            .map(|&c| deepest(frames, callees, c, level + 1))
            .max()
            .unwrap_or(0)
    });
    own + below
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insns(asm: &str) -> Vec<Insn> {
        let raw = vm_core::asm::assemble(asm).unwrap_or_default();
        vm_core::isa::decode_program(&raw).unwrap_or_default()
    }

    #[test]
    fn frames_are_rounded_to_64_bytes() {
        let p = insns("mov r0, 0\nexit");
        assert_eq!(nfp_stack_usage(&p, &[8]), 64);
        assert_eq!(nfp_stack_usage(&p, &[0]), 0);
        assert_eq!(nfp_stack_usage(&p, &[65]), 128);
    }

    #[test]
    fn callees_pay_for_the_return_address_and_saved_registers() {
        // main (8 B) calls f, which writes r6 (4 + 32 + 8 B -> 64).
        let p = insns("call local f\nexit\nf:\nmov r6, 1\nstxdw [r10-8], r6\nmov r0, 0\nexit");
        assert_eq!(nfp_stack_usage(&p, &[8, 8]), 128);
        // Same callee frame of 60 B: 60 + 4 + 32 = 96 -> 128, plus main 64.
        assert_eq!(nfp_stack_usage(&p, &[8, 60]), 192);
    }
}
