//! Which registers may still be read before being overwritten, before each instruction
//! (a backward may-liveness analysis; Linux 6.18's `compute_live_registers`).
//!
//! Why: state pruning compares a new state with stored ones, and a register that no
//! continuation reads cannot make the new state unsafe, so it is skipped. Without this, two
//! states that differ only in a dead scratch register never prune each other and loops and
//! long branchy programs blow up. The analysis is static and conservative (a register is live
//! if *some* path reads it), so skipping dead registers is sound.

use vm_core::isa::{CallTarget, Insn, Operand, Size, Width};

use crate::code::{Code, Slot};
use crate::helpers;

/// A set of registers R0–R10 as a bit mask.
pub type RegMask = u16;

const ALL: RegMask = 0x07ff;
const CALLER_SAVED: RegMask = 0b11_1111; // R0-R5
const ARGS: RegMask = 0b11_1110; // R1-R5

fn bit(r: u8) -> RegMask {
    1 << r
}

/// Registers read and written by the instruction at `pc`: `(use, def)`. With `only64`,
/// only reads of all 64 bits count (the kernel's `is_reg64` for source operands), which is
/// what decides whether a 32-bit definition needs zero-extension.
fn use_def(code: &Code, pc: usize, only64: bool) -> (RegMask, RegMask) {
    let insn = match code.slots.get(pc) {
        Some(Slot::Insn(i)) => *i,
        _ => return (ALL, 0),
    };
    let op = |o: Operand| match o {
        Operand::Reg(r) => bit(r),
        Operand::Imm(_) => 0,
    };
    let w = |full: bool, m: RegMask| if only64 && !full { 0 } else { m };
    match insn {
        Insn::Alu {
            op: vm_core::isa::AluOp::Mov | vm_core::isa::AluOp::MovSx(_),
            dst,
            src,
            width,
        } => (w(width == Width::W64, op(src)), bit(dst)),
        Insn::Alu {
            dst, src, width, ..
        } => (w(width == Width::W64, bit(dst) | op(src)), bit(dst)),
        Insn::Neg { dst, width } => (w(width == Width::W64, bit(dst)), bit(dst)),
        Insn::Endian { dst, bits, .. } => (w(bits == 64, bit(dst)), bit(dst)),
        Insn::Load { dst, src, .. } => (bit(src), bit(dst)),
        Insn::Store { dst, src, size, .. } => (bit(dst) | w(size == Size::DW, op(src)), 0),
        Insn::Atomic {
            op: aop,
            fetch,
            dst,
            src,
            size,
            ..
        } => {
            let cmpxchg = aop == vm_core::isa::AtomicOp::CmpXchg;
            let dw = size == Size::DW;
            let uses = bit(dst) | w(dw, bit(src)) | if cmpxchg { w(dw, bit(0)) } else { 0 };
            let defs = if cmpxchg {
                bit(0)
            } else if fetch {
                bit(src)
            } else {
                0
            };
            (uses, defs)
        }
        Insn::LdImm64 { dst, .. } => (0, bit(dst)),
        Insn::LdImm64Tail => (0, 0),
        // Linux 6.18's register liveness gives the legacy packet loads its default: they
        // read every register and define none, so everything is live before one (and
        // stored states there compare every register). The 64-bit reads for zero-extension
        // are the real ones.
        Insn::LdAbs { .. } if !only64 => (ALL, 0),
        Insn::LdInd { .. } if !only64 => (ALL, 0),
        Insn::LdAbs { .. } => (bit(6), CALLER_SAVED),
        Insn::LdInd { src, .. } => (bit(6) | bit(src), CALLER_SAVED),
        Insn::Ja { .. } => (0, 0),
        Insn::Jmp {
            dst, src, width, ..
        } => (w(width == Width::W64, bit(dst) | op(src)), 0),
        Insn::Call(CallTarget::Helper(id)) => {
            let n = helpers::arg_count(id);
            let uses = ((1u16 << n) - 1) << 1;
            (uses, CALLER_SAVED)
        }
        Insn::Call(_) | Insn::CallX { .. } => (ARGS, CALLER_SAVED),
        Insn::Exit => (bit(0), 0),
    }
}

/// For every slot, the live-before set (registers some path may read before writing them)
/// and the 64-bit live-before set (registers some path may read as full 64-bit values before
/// writing them: a pending 32-bit definition of such a register needs zero-extension).
/// Together because the verifier needs both for every program and they share one pass over
/// the instructions.
pub fn live_sets(code: &Code) -> (Vec<RegMask>, Vec<RegMask>) {
    let nodes = flow_nodes(code);
    // Both fixpoints in one: the sets packed into the halves of a `u32` (the definitions
    // are the same for both), so that one walk over the graph solves both. Each half
    // evolves exactly as it would alone (no bit crosses between halves), so the result is
    // that of two separate solves; why: the two walks were an eighth of verifying the
    // ratio table's medium program (callgrind).
    let both = solve_packed(&nodes);
    let low = both.iter().map(|&b| b as RegMask).collect();
    let high = both.iter().map(|&b| (b >> 16) as RegMask).collect();
    (low, high)
}

/// [`solve_indexed`]'s fixpoint for `uses` (low half) and `uses64` (high half) at once.
fn solve_packed(nodes: &[FlowNode]) -> Vec<u32> {
    let mut live_in = vec![0u32; nodes.len()];
    let mut changed = true;
    while changed {
        changed = false;
        for (pc, node) in nodes.iter().enumerate().rev() {
            let mut out = 0u32;
            for &t in &node.succ[..usize::from(node.count)] {
                out |= live_in[t as usize];
            }
            let defs = u32::from(node.defs) | u32::from(node.defs) << 16;
            let uses = u32::from(node.uses) | u32::from(node.uses64) << 16;
            let new = (out & !defs) | uses;
            if new != live_in[pc] {
                live_in[pc] = new;
                changed = true;
            }
        }
    }
    live_in
}

/// The 64-bit live-before sets of [`live_sets`] for code in which slot `pc` reads only the
/// low halves of the registers in `low_reads[pc]` (an offload backend that lowers a 64-bit
/// compare of values known to fit 32 bits as a 32-bit compare, or addresses 32-bit memory
/// through a pointer's low word): those reads keep no upper half alive, so fewer 32-bit
/// definitions need zero-extension and fewer upper words need computing. Built once per
/// program, queried once per `low_reads` (a backend refines that set by rounds).
pub struct Live64 {
    nodes: Vec<FlowNode>,
}

impl Live64 {
    /// The flow graph of `code`, with every slot's uses and definitions.
    pub fn new(code: &Code) -> Live64 {
        Live64 {
            nodes: flow_nodes(code),
        }
    }

    /// The live-before sets when slot `pc` reads only the low halves of `low_reads[pc]`.
    pub fn with_low_reads(&self, low_reads: &[RegMask]) -> Vec<RegMask> {
        solve_indexed(&self.nodes, |pc, n| {
            n.uses64 & !low_reads.get(pc).copied().unwrap_or(0)
        })
    }
}

/// Uses, definitions and in-range successors per slot, derived once for every analysis over
/// them: each fixpoint visits every slot at least twice (the last pass only confirms nothing
/// changed), and deriving them from the instruction on each visit was most of the cost.
fn flow_nodes(code: &Code) -> Vec<FlowNode> {
    let len = code.len();
    (0..len)
        .map(|pc| {
            let (uses, defs) = use_def(code, pc, false);
            let (uses64, _) = use_def(code, pc, true);
            let (targets, n) = crate::cfg::successors(code, pc);
            let mut succ = [0u32; 2];
            let mut count = 0;
            for &t in &targets[..n] {
                if let Ok(t) = u32::try_from(t)
                    && (t as usize) < len
                {
                    succ[count] = t;
                    count += 1;
                }
            }
            FlowNode {
                uses,
                uses64,
                defs,
                succ,
                count: count as u8,
            }
        })
        .collect()
}

/// The backward fixpoint over `nodes`, slot `pc` reading `uses(pc, node)`.
fn solve_indexed(nodes: &[FlowNode], uses: impl Fn(usize, &FlowNode) -> RegMask) -> Vec<RegMask> {
    let mut live_in = vec![0 as RegMask; nodes.len()];
    let mut changed = true;
    while changed {
        changed = false;
        for (pc, node) in nodes.iter().enumerate().rev() {
            let mut out: RegMask = 0;
            for &t in &node.succ[..usize::from(node.count)] {
                out |= live_in[t as usize];
            }
            let new = (out & !node.defs) | uses(pc, node);
            if new != live_in[pc] {
                live_in[pc] = new;
                changed = true;
            }
        }
    }
    live_in
}

/// One slot as the liveness fixpoint sees it.
struct FlowNode {
    uses: RegMask,
    uses64: RegMask,
    defs: RegMask,
    succ: [u32; 2],
    count: u8,
}

/// The live set of a caller frame waiting at `callsite`: what is live when the call returns,
/// minus the caller-saved registers the call overwrites.
pub fn caller_live(live: &[RegMask], callsite: usize) -> RegMask {
    live.get(callsite + 1).copied().unwrap_or(ALL) & !CALLER_SAVED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_scratch_register_is_not_live() {
        let raw = vm_core::asm::assemble("mov r2, 1\nmov r0, 0\njeq r1, 0, +1\nmov r0, 1\nexit")
            .unwrap_or_default();
        let code = Code::from_raw(&raw).0;
        let live = live_sets(&code).0;
        // r2 is never read; r1 is read by the jump.
        assert_eq!(live[0] & bit(2), 0);
        assert_ne!(live[1] & bit(1), 0);
        assert_eq!(live[4], bit(0));
    }
}
