//! Cycle costs of microengine instructions: what nic-sim charges per executed instruction and
//! what the lowering's static min/max path estimate adds up.
//!
//! Why two numbers per instruction: an ME hides memory latency by running another thread while
//! one waits (nfp-model.md §1.4, §5 "thread capacity is king"). `issue` cycles keep the ME
//! pipeline busy; `wait` cycles only delay the issuing thread, which is swapped out meanwhile.
//!
//! The latencies are rough midpoints of the ranges in nfp-model.md §1.4 (a secondary source,
//! the FlexTOE paper's memory table); the firmware helper costs are estimates (derived) of the
//! CoreNIC firmware's work, not measurements.

use crate::target::{CmdAction, FwHelper, MeInsn, MemTarget, MulStep, Src};

/// Latencies and costs of one NIC model, in ME cycles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latencies {
    /// Extra issue cycles of an instruction that reads or writes a local-memory operand
    /// (LMEM is in the ME pipeline: 1–3 cycles; we charge the low end, 0 extra).
    pub lmem_extra: u32,
    /// Cluster local scratch command latency.
    pub cls: u32,
    /// Cluster target memory (packet buffer) command latency.
    pub ctm: u32,
    /// Internal memory unit command latency.
    pub imem: u32,
    /// External memory unit (maps) command latency.
    pub emem: u32,
    /// Extra wait per 32-bit word moved beyond the first (bus transfer, 1 word/cycle).
    pub per_word: u32,
    /// Instructions after a local CSR write before the new value is usable (`ActLMAddrN`).
    pub csr_write_delay: u32,
    /// Pipeline bubbles of a taken branch (the defer slots exist to fill them).
    pub branch_taken_penalty: u32,
    /// Cycles of the firmware's exit path (verdict mapping, packet hand-off).
    pub exit: u32,
    /// Firmware helper costs, indexed by [`fw_index`].
    pub fw: [FwCost; FW_HELPERS],
}

/// Number of [`FwHelper`] kinds.
pub const FW_HELPERS: usize = 7;

/// The cost of one firmware helper call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwCost {
    /// ME cycles the firmware code runs.
    pub issue: u32,
    /// Memory latency the thread waits (swapped out).
    pub wait: u32,
}

/// Index of a helper in [`Latencies::fw`].
pub fn fw_index(h: FwHelper) -> usize {
    match h {
        FwHelper::MapLookup => 0,
        FwHelper::MapUpdate => 1,
        FwHelper::MapDelete => 2,
        FwHelper::Random => 3,
        FwHelper::AdjustHead => 4,
        FwHelper::AdjustTail => 5,
        FwHelper::PerfEventOutput => 6,
    }
}

impl Latencies {
    /// NFP-4000 (Agilio CX) at 800 MHz.
    pub const NFP4000: Latencies = Latencies {
        // LMEM 1–3 cycles (§1.4): in-pipeline, no extra issue cycle charged.
        lmem_extra: 0,
        // CLS 20–50 (§1.4) -> 35.
        cls: 35,
        // CTM 50–100 (§1.4) -> 75.
        ctm: 75,
        // IMEM 150–250 (§1.4) -> 200.
        imem: 200,
        // EMEM 150–250 with the SRAM cache hit (§1.4) -> 200.
        emem: 200,
        // CPP bus moves one 32-bit word per cycle (derived).
        per_word: 1,
        // "Writing an LM-address CSR takes 3 cycles to take effect" (§1.3).
        csr_write_delay: 3,
        // Estimate: the ME pipeline flushes ~2 stages on a taken branch without defer slots.
        branch_taken_penalty: 2,
        // Estimate: the JIT outro maps R0 to a verdict in a few instructions (§2.5).
        exit: 4,
        fw: [
            // Lookup: hash the key (~40 cycles of firmware code), one bucket read and one
            // value-address read in EMEM (2 × 200).
            FwCost {
                issue: 40,
                wait: 400,
            },
            // Update: hash, bucket read, entry write, value write (3 × 200).
            FwCost {
                issue: 60,
                wait: 600,
            },
            // Delete: hash, bucket read, entry invalidate.
            FwCost {
                issue: 50,
                wait: 400,
            },
            // Random: one local CSR read (PseudoRandNum) plus call/return.
            FwCost { issue: 4, wait: 0 },
            // adjust_head: bounds checks and a packet-vector update in LMEM.
            FwCost { issue: 12, wait: 0 },
            // adjust_tail: bounds check and a length update in LMEM.
            FwCost { issue: 8, wait: 0 },
            // perf_event_output: copy into a control message (EMEM) and queue it.
            FwCost {
                issue: 60,
                wait: 400,
            },
        ],
    };

    /// Latency of a command to `target`.
    pub fn target_latency(&self, target: MemTarget) -> u32 {
        match target {
            MemTarget::Cls => self.cls,
            MemTarget::Ctm => self.ctm,
            MemTarget::Imem => self.imem,
            MemTarget::Emem => self.emem,
        }
    }

    /// Cost of a firmware helper.
    pub fn fw_cost(&self, h: FwHelper) -> FwCost {
        self.fw[fw_index(h)]
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::NFP4000
    }
}

/// What one instruction costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InsnCost {
    /// Cycles the ME is busy issuing (no other thread runs).
    pub issue: u32,
    /// Latency the thread waits swapped out (other threads may run); 0 for ALU work.
    pub wait: u32,
}

/// Words a command moves over the bus.
fn cmd_words(action: CmdAction, count: u8) -> u32 {
    let count = u32::from(count.max(1));
    match action {
        CmdAction::Read8 | CmdAction::Write8 => count.div_ceil(4),
        CmdAction::Read32 | CmdAction::Write32 | CmdAction::AtomicAdd => count,
    }
}

fn uses_lm(s: Src) -> bool {
    matches!(s, Src::Lm { .. })
}

/// The static cost of `insn` (a taken branch additionally costs
/// [`Latencies::branch_taken_penalty`], which the executor adds when it happens).
///
/// A command without `swap` is modelled as fire-and-forget: the thread does not wait.
pub fn insn_cycles(insn: &MeInsn, lat: &Latencies) -> InsnCost {
    let lm = |on: bool| if on { lat.lmem_extra } else { 0 };
    match *insn {
        MeInsn::Alu { a, b, dst, .. }
        | MeInsn::Shf { a, b, dst, .. }
        | MeInsn::Mul { a, b, dst, .. } => InsnCost {
            issue: 1 + lm(uses_lm(a) || uses_lm(b) || matches!(dst, crate::target::Dst::Lm { .. })),
            wait: 0,
        },
        MeInsn::LdField { b, .. } => InsnCost {
            issue: 1 + lm(uses_lm(b)),
            wait: 0,
        },
        MeInsn::Immed { .. }
        | MeInsn::CsrRead { .. }
        | MeInsn::CsrWrite { .. }
        | MeInsn::Nop
        | MeInsn::Br { .. }
        | MeInsn::BrBit { .. }
        | MeInsn::Rtn { .. } => InsnCost { issue: 1, wait: 0 },
        MeInsn::Cmd {
            target,
            action,
            count,
            swap,
            ..
        } => {
            let words = cmd_words(action, count);
            InsnCost {
                issue: 1,
                wait: if swap {
                    lat.target_latency(target) + lat.per_word * (words - 1)
                } else {
                    0
                },
            }
        }
        MeInsn::FwCall { helper } => {
            let c = lat.fw_cost(helper);
            InsnCost {
                issue: 1 + c.issue,
                wait: c.wait,
            }
        }
        MeInsn::Exit => InsnCost {
            issue: lat.exit,
            wait: 0,
        },
    }
}

/// Whether a multiply step is a start step (for listings and sanity checks).
pub fn is_mul_start(step: MulStep) -> bool {
    matches!(step, MulStep::Start32 | MulStep::Start16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{AddrMode, Bank, Dst};

    #[test]
    fn alu_is_one_cycle_and_emem_read_waits() {
        let lat = Latencies::NFP4000;
        let alu = MeInsn::Alu {
            op: crate::target::AluOp::Add,
            dst: Dst::Both(0),
            a: Src::Gpr(Bank::A, 0),
            b: Src::Imm(1),
        };
        assert_eq!(insn_cycles(&alu, &lat), InsnCost { issue: 1, wait: 0 });
        let rd = MeInsn::Cmd {
            target: MemTarget::Emem,
            action: CmdAction::Read32,
            xfer: 0,
            count: 4,
            mode: AddrMode::Addr40,
            a: Src::Gpr(Bank::A, 2),
            b: Src::Gpr(Bank::B, 3),
            swap: true,
        };
        assert_eq!(
            insn_cycles(&rd, &lat),
            InsnCost {
                issue: 1,
                wait: 203
            }
        );
        let rd8 = MeInsn::Cmd {
            target: MemTarget::Ctm,
            action: CmdAction::Read8,
            xfer: 0,
            count: 14,
            mode: AddrMode::Addr32,
            a: Src::Gpr(Bank::A, 2),
            b: Src::Gpr(Bank::B, 3),
            swap: true,
        };
        assert_eq!(insn_cycles(&rd8, &lat).wait, 75 + 3);
        let lookup = MeInsn::FwCall {
            helper: FwHelper::MapLookup,
        };
        assert_eq!(
            insn_cycles(&lookup, &lat),
            InsnCost {
                issue: 41,
                wait: 400
            }
        );
        assert_eq!(lat.csr_write_delay, 3);
        assert!(is_mul_start(MulStep::Start16));
        assert_eq!(Latencies::default(), Latencies::NFP4000);
    }
}
