//! Owned BPF object descriptors, closed on drop through the syscall layer.
//!
//! `std::os::fd::OwnedFd` would call `close` directly, bypassing [`crate::sys`]; with a fake
//! syscall layer that would close whatever real descriptor happens to carry the fake number.

use std::os::fd::RawFd;

use crate::sys;

/// A descriptor of a kernel BPF object (map or program) that this process owns.
#[derive(Debug, PartialEq, Eq)]
pub struct BpfFd(RawFd);

impl BpfFd {
    /// Takes ownership of `fd`, as returned by `BPF_MAP_CREATE` or `BPF_PROG_LOAD`.
    pub(crate) fn from_syscall(ret: i64) -> Self {
        BpfFd(ret as RawFd)
    }

    /// The raw number, for attributes and for patching `lddw` immediates.
    pub fn raw(&self) -> RawFd {
        self.0
    }
}

impl Drop for BpfFd {
    fn drop(&mut self) {
        sys::close(self.0);
    }
}

/// A loaded program.
#[derive(Debug)]
pub struct ProgFd(pub(crate) BpfFd);

impl ProgFd {
    /// The raw descriptor number.
    pub fn raw(&self) -> RawFd {
        self.0.raw()
    }
}
