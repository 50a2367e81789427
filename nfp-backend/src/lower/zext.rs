//! Zero extension of 32-bit definitions (nfp-model.md §3.3).
//!
//! Why elision is sound: the verifier marks a 32-bit definition `zext` exactly when some later
//! 64-bit read can observe its upper half; an unmarked definition's upper half is never read,
//! so the `immed` that would clear it is dead. With `narrow_cmp` or `dead_hi`, the upper-half
//! liveness of [`super::hi_live`] (in which low-word slots read no upper half) elides more.
//! MOV32, END and context loads clear it whatever the verifier's flag says (as the kernel JIT
//! does), unless that upper-half liveness shows no path reads it.

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
        if (self.fact(self.pc).zext && self.hi_read_after(r)) || extra {
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

    /// Clears the upper half after a definition that always clears it (MOV32, END, context
    /// loads, a small 64-bit multiply), unless [`super::hi_live`] shows that no path reads it:
    /// that liveness is exact for the code as lowered, so a stale upper word it calls dead is
    /// never observed (the verifier's zext flag, which the kernel ignores for these, is not
    /// needed for that).
    pub(crate) fn zero_hi_if_read(&mut self, r: Reg) {
        if self.hi_read_after(r) {
            self.zero_hi(r);
        } else {
            self.out.zext_elided += 1;
        }
    }

    /// Whether some path reads `r`'s upper half after the current slot (always, without the
    /// upper-half liveness).
    fn hi_read_after(&self, r: Reg) -> bool {
        self.hi_live.as_ref().is_none_or(|live| {
            // Definitions are never jumps: what is live after one is live before the next slot.
            live.get(self.pc + 1).is_none_or(|m| m & (1 << r) != 0)
        })
    }
}
