//! Byte offsets of the fields of [`Cx`] that `jit`'s generated code reads and writes: a
//! module of their own (a child of `fast_run`, which may name `Cx`'s private fields), so
//! that the run loop's file stays about its logic. Only the x86-64 code generator reads
//! them.
#![cfg_attr(not(all(target_arch = "x86_64", unix)), allow(dead_code))]

use super::Cx;

/// Byte offsets of the fields of [`Cx`] that `jit`'s blocks read or write (`limit`,
/// `extra`; the penalty and the other latencies are constants in the code).
pub(in crate::exec) const CX_LIMIT: usize = std::mem::offset_of!(Cx<'static>, limit);
pub(in crate::exec) const CX_EXTRA: usize = std::mem::offset_of!(Cx<'static>, extra);
/// Byte offsets of what `pass` reads and writes (`jit`'s blocks pass swaps themselves).
pub(in crate::exec) const CX_PASS_LIMIT: usize = std::mem::offset_of!(Cx<'static>, pass_limit);
pub(in crate::exec) const CX_MARK_N: usize = std::mem::offset_of!(Cx<'static>, mark_n);
pub(in crate::exec) const CX_SEG_AT: usize = std::mem::offset_of!(Cx<'static>, seg_at);
pub(in crate::exec) const CX_SEG_END: usize = std::mem::offset_of!(Cx<'static>, seg_end);
/// Byte offsets of the value window (`Cx::va_base`), which `jit`'s blocks add to.
pub(in crate::exec) const CX_VA_BASE: usize = std::mem::offset_of!(Cx<'static>, va_base);
pub(in crate::exec) const CX_VA_LAST: usize = std::mem::offset_of!(Cx<'static>, va_last);
pub(in crate::exec) const CX_VA_PTR: usize = std::mem::offset_of!(Cx<'static>, va_ptr);
/// Byte offsets of the inline lookups' map (`Cx::lk_max`).
pub(in crate::exec) const CX_LK_MAX: usize = std::mem::offset_of!(Cx<'static>, lk_max);
pub(in crate::exec) const CX_LK_STRIDE: usize = std::mem::offset_of!(Cx<'static>, lk_stride);
/// Byte offset of `base` (`jit`'s blocks find the hop of an address from it when they leave
/// for a handler, instead of carrying the op pointer from block to block).
pub(in crate::exec) const CX_BASE: usize = std::mem::offset_of!(Cx<'static>, base);
