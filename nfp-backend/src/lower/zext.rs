//! Zero extension of 32-bit definitions (nfp-model.md §3.3).
//!
//! Why elision is sound: the verifier marks a 32-bit definition `zext` exactly when some later
//! 64-bit read can observe its upper half; an unmarked definition's upper half is never read,
//! so the `immed` that would clear it is dead. With `narrow_cmp` or `dead_hi`, the upper-half
//! liveness of [`super::hi_live`] (in which low-word slots read no upper half) elides more.
//! MOV32, END and context loads clear it always (as the kernel JIT does — their results are
//! treated as fresh 64-bit values elsewhere).

use vm_core::isa::Reg;

use super::{Lowerer, hi, imm};
use crate::target::Dst;

impl Lowerer<'_> {
    /// Clears the upper half of `r` after a 32-bit definition, if the verifier says a 64-bit
    /// read can see it (or `extra` says another folded instruction needs it) and, with
    /// `narrow_cmp` or `dead_hi`, some path still reads that upper half: the verifier counts
    /// a 64-bit compare, an address or a 64-bit add as 64-bit reads, but the lowering reads
    /// only the low word of a narrowed compare, a stack or packet address, or an add whose
    /// upper half is dead. Both conditions
    /// are sound on their own ("no read can see it"), so eliding when either holds is too.
    pub(crate) fn zext(&mut self, r: Reg, extra: bool) {
        let hi_read = self.hi_live.as_ref().is_none_or(|live| {
            // Definitions are never jumps: what is live after one is live before the next slot.
            live.get(self.pc + 1).is_none_or(|m| m & (1 << r) != 0)
        });
        if (self.fact(self.pc).zext && hi_read) || extra {
            self.out.zext_kept += 1;
            self.zero_hi(r);
        } else {
            self.out.zext_elided += 1;
        }
    }

    /// Clears the upper half unconditionally.
    pub(crate) fn zero_hi(&mut self, r: Reg) {
        self.emit(imm::immed(Dst::Both(hi(r)), 0));
    }
}
