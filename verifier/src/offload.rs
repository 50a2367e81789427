//! Hooks for an offload backend (the kernel's `bpf_prog_offload_ops`): a device driver sees
//! every instruction with the verifier's state at that point and can refuse it with its own
//! message, and gets a final look at the per-instruction facts.
//!
//! Why during verification and not after: the state at an instruction (which pointer kind a
//! load sees, whether a value is bounded) exists only while the walk is there; the NFP driver
//! uses exactly this to refuse what its hardware cannot do, with the instruction named.

use vm_core::isa::Insn;

use crate::facts::InsnFacts;
use crate::state::VerifierState;

/// Callbacks from the verifier to an offload backend. A veto becomes a rejection with errno
/// `EOPNOTSUPP` at the instruction concerned.
pub trait OffloadHooks {
    /// Called each time the walk is about to check the instruction at `pc` on some path,
    /// with that path's state before the instruction.
    fn insn_hook(&mut self, pc: usize, insn: &Insn, state: &VerifierState) -> Result<(), String>;

    /// Called once after a successful walk with the facts of every instruction; `Err((pc,
    /// message))` rejects the program.
    fn finalize(&mut self, facts: &[InsnFacts]) -> Result<(), (usize, String)> {
        let _ = facts;
        Ok(())
    }
}
