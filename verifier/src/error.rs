//! Why a program is rejected: the instruction, the kernel's errno class, and the message.
//!
//! The kernel reports every verifier refusal as an errno from `BPF_PROG_LOAD` plus a log line;
//! tools and people key on both. We keep the same split: [`Errno`] is the class a caller can
//! branch on (safety vs. structure vs. complexity), the message reuses the kernel's wording so
//! that a selftest's expected substring finds it in our log too.

use std::fmt;

/// The errno the kernel would return for a rejection, by class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Errno {
    /// Safety: the program could touch memory or values it must not (uninitialised register,
    /// out-of-bounds access, pointer misuse, ...).
    EACCES,
    /// Structure: bad encodings, reserved fields, unreachable code, infinite loops, bad jumps.
    EINVAL,
    /// Complexity: the walk exceeded the processed-instruction limit or the call depth.
    E2BIG,
    /// A map reference that names no map (the kernel's "not pointing to valid bpf_map").
    EBADF,
    /// The kernel's internal-consistency class; we use it where the kernel does.
    EFAULT,
    /// An offload backend vetoed an instruction (what device drivers return).
    EOPNOTSUPP,
    /// Not allowed without privileges (program type or feature needs `CAP_BPF` & co).
    EPERM,
    /// The kernel-internal "operation not supported" (524), e.g. a direct read of a frozen
    /// read-only map that is not a single-element array.
    ENOTSUPP,
}

impl Errno {
    /// The symbolic name (`"EACCES"`), as the CLI's JSON prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Errno::EACCES => "EACCES",
            Errno::EINVAL => "EINVAL",
            Errno::E2BIG => "E2BIG",
            Errno::EBADF => "EBADF",
            Errno::EFAULT => "EFAULT",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
            Errno::EPERM => "EPERM",
            Errno::ENOTSUPP => "ENOTSUPP",
        }
    }

    /// The Linux errno number (x86-64 values).
    pub const fn code(self) -> i32 {
        match self {
            Errno::EACCES => 13,
            Errno::EINVAL => 22,
            Errno::E2BIG => 7,
            Errno::EBADF => 9,
            Errno::EFAULT => 14,
            Errno::EOPNOTSUPP => 95,
            Errno::EPERM => 1,
            Errno::ENOTSUPP => 524,
        }
    }

    /// From a Linux errno number, if it is one of ours.
    pub const fn from_code(code: i32) -> Option<Errno> {
        Some(match code {
            13 => Errno::EACCES,
            22 => Errno::EINVAL,
            7 => Errno::E2BIG,
            9 => Errno::EBADF,
            14 => Errno::EFAULT,
            95 => Errno::EOPNOTSUPP,
            1 => Errno::EPERM,
            524 => Errno::ENOTSUPP,
            _ => return None,
        })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One rejection: where, which class, and the kernel-style message (without the trailing
/// newline; multi-line messages keep their inner newlines).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("insn {pc}: {message} ({errno})")]
pub struct VerifierError {
    /// The instruction slot the error is about (the kernel's `insn_idx`).
    pub pc: usize,
    /// The errno class.
    pub errno: Errno,
    /// The message as it appears in the log.
    pub message: String,
}

impl VerifierError {
    /// Builds an error.
    pub fn new(pc: usize, errno: Errno, message: impl Into<String>) -> Self {
        VerifierError {
            pc,
            errno,
            message: message.into(),
        }
    }

    /// A safety violation (`EACCES`).
    pub fn eacces(pc: usize, message: impl Into<String>) -> Self {
        Self::new(pc, Errno::EACCES, message)
    }

    /// A structural problem (`EINVAL`).
    pub fn einval(pc: usize, message: impl Into<String>) -> Self {
        Self::new(pc, Errno::EINVAL, message)
    }
}

/// Results inside the verifier.
pub type VResult<T> = Result<T, VerifierError>;
