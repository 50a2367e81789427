//! Which registers' upper halves some path still reads, on a NIC where a 64-bit register is
//! two 32-bit words and an instruction may read or write only the low one.
//!
//! Why: a 64-bit move, add, subtract, bitwise op or left shift by a constant computes its low
//! word from the operands' low words alone, so when no path reads the result's upper half, the high-word
//! instruction (and the upper halves it would have read) is dead work (`dead_hi`). Narrowed
//! compares (`narrow_cmp`) read low words only too, which is what usually kills an upper half:
//! a packet pointer that only bounds checks read needs no upper word at all.
//!
//! The liveness is the verifier's static 64-bit one (`verifier::liveness::Live64`, the kernel's
//! `is_reg64` reads) with the low-word slots reading no upper half, and stack and packet
//! accesses reading only their base pointer's low word. Whether an ALU op is a
//! low-word slot depends on the liveness after it, so the set grows by rounds: mark every
//! candidate whose destination's upper half is dead after it, recompute, repeat until nothing
//! new is marked. Each round only removes reads, so every marked op stays dead, and the final
//! liveness is exact for the code as lowered (marked slots really read no upper half): no
//! upper word that the lowering leaves stale is ever read. Firmware helper calls read only the
//! low words of their 32-bit arguments (`exec::low_word_args`), and a `lddw` whose upper half
//! is dead loads its low word only.

use vm_core::Program;
use vm_core::isa::{AluOp, CallTarget, Insn, Operand, Width};

use verifier::InsnFacts;
use verifier::code::Code;
use verifier::facts::PtrKind;
use verifier::liveness::{Live64, RegMask};

/// `(dead_hi, live)`: per slot, whether it is a 64-bit ALU op done on the low word (only with
/// `dead_hi` on), and the upper halves live before it. `narrow` marks the narrowed compares;
/// `facts` say which loads and stores address the stack or the packet, whose 32-bit local and
/// CTM addresses the lowering takes from the base pointer's low word alone.
pub(crate) fn analyse(
    prog: &Program,
    facts: &[InsnFacts],
    narrow: &[bool],
    dead_hi: bool,
) -> (Vec<bool>, Vec<RegMask>) {
    const ALL: RegMask = 0x07ff;
    let n = prog.insns.len();
    let flow = Live64::new(&Code::from_insns(&prog.insns));
    let mut low: Vec<RegMask> = prog
        .insns
        .iter()
        .enumerate()
        .map(|(pc, insn)| {
            if narrow.get(pc).copied().unwrap_or(false) {
                return ALL;
            }
            let low_memory = matches!(
                facts.get(pc).and_then(|f| f.mem),
                Some(PtrKind::Stack | PtrKind::Packet)
            );
            match *insn {
                Insn::Load { src, .. } if low_memory && src < 10 => 1 << src,
                Insn::Store { dst, .. } if low_memory && dst < 10 => 1 << dst,
                Insn::Call(CallTarget::Helper(id)) => {
                    super::call::fw_helper(id).map_or(0, crate::exec::low_word_args)
                }
                _ => 0,
            }
        })
        .collect();
    let mut marked = vec![false; n];
    let mut live = flow.with_low_reads(&low);
    if !dead_hi {
        return (marked, live);
    }
    loop {
        let mut grew = false;
        for (pc, insn) in prog.insns.iter().enumerate() {
            if marked[pc] {
                continue;
            }
            let Some(dst) = low_word_op(insn) else {
                continue;
            };
            // These ops never jump: what is live after one is live before the next
            // instruction (after `lddw`'s second slot).
            let next = pc
                + if matches!(insn, Insn::LdImm64 { .. }) {
                    2
                } else {
                    1
                };
            let hi_read_after = live.get(next).is_none_or(|m| m & (1 << dst) != 0);
            if !hi_read_after {
                marked[pc] = true;
                low[pc] = ALL;
                grew = true;
            }
        }
        if !grew {
            break;
        }
        live = flow.with_low_reads(&low);
    }
    (marked, live)
}

/// The destination of a 64-bit op whose low word depends on the operands' low words only.
fn low_word_op(insn: &Insn) -> Option<u8> {
    match *insn {
        Insn::Alu {
            op: AluOp::Mov | AluOp::Add | AluOp::Sub | AluOp::And | AluOp::Or | AluOp::Xor,
            width: Width::W64,
            dst,
            ..
        } if dst < 10 => Some(dst),
        // Bits only move up in a left shift: the low word of `x << k` is `lo(x) << k` (0 for
        // k >= 32). By a register the amount's upper bits would matter to the lowering's
        // indirect shift, so only constants.
        Insn::Alu {
            op: AluOp::Lsh,
            width: Width::W64,
            dst,
            src: Operand::Imm(_),
        } if dst < 10 => Some(dst),
        // A constant's low word is a constant.
        Insn::LdImm64 { dst, .. } if dst < 10 => Some(dst),
        _ => None,
    }
}
