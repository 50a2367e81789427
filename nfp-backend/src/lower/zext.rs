//! Zero extension of 32-bit definitions (nfp-model.md §3.3).
//!
//! Why elision is sound: the verifier marks a 32-bit definition `zext` exactly when some later
//! 64-bit read can observe its upper half; an unmarked definition's upper half is never read,
//! so the `immed` that would clear it is dead. MOV32, END and context loads clear it always
//! (as the kernel JIT does — their results are treated as fresh 64-bit values elsewhere).

use vm_core::isa::Reg;

use super::{Lowerer, hi, imm};
use crate::target::Dst;

impl Lowerer<'_> {
    /// Clears the upper half of `r` after a 32-bit definition, if the verifier says a 64-bit
    /// read can see it (or `extra` says another folded instruction needs it).
    pub(crate) fn zext(&mut self, r: Reg, extra: bool) {
        if self.fact(self.pc).zext || extra {
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
