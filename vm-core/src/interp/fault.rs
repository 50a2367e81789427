//! Why a run stopped abnormally: memory faults with the region they hit, budget exhaustion,
//! and inputs the kernel's `BPF_PROG_TEST_RUN` would refuse.
//!
//! Every message names the instruction index (8-byte slots from 0, as the kernel counts) and,
//! for memory faults, the region and offset as a program author thinks of them
//! (`packet+62`, `r10-520`), not the interpreter's internal virtual address.

use std::fmt;

use crate::ProgType;

/// Direction of a memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A load (or the read half of an atomic).
    Read,
    /// A store (or the write half of an atomic).
    Write,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
        })
    }
}

/// A memory region a program can address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Region {
    /// The 512-byte stack of call frame `frame` (0 = the program's own frame).
    Stack {
        /// Call depth.
        frame: u8,
    },
    /// The context structure (`xdp_md`, `__sk_buff`).
    Ctx,
    /// Packet data; offsets are relative to `data` (negative: metadata or headroom).
    Packet,
    /// The input buffer of a `mem` (bpf_conformance) program.
    Mem,
    /// The value memory of a map.
    Map {
        /// Index of the map in the program's map list.
        index: u32,
        /// Map name.
        name: String,
    },
    /// A map handle (the value `lddw` gives for a map): not memory.
    MapHandle,
    /// A subprogram address (`lddw` of a function): not memory.
    Code,
    /// A ring buffer record obtained with `bpf_ringbuf_reserve`.
    RingbufRecord {
        /// Index of the ring buffer map.
        map: u32,
    },
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Region::Stack { frame } => write!(f, "stack of frame {frame}"),
            Region::Ctx => f.write_str("ctx"),
            Region::Packet => f.write_str("packet"),
            Region::Mem => f.write_str("mem"),
            Region::Map { name, .. } => write!(f, "map '{name}'"),
            Region::MapHandle => f.write_str("map handle"),
            Region::Code => f.write_str("code address"),
            Region::RingbufRecord { map } => write!(f, "ring buffer record (map {map})"),
        }
    }
}

/// What went wrong at the faulting instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// An access outside the valid window of a region.
    OutOfBounds {
        /// Read or write.
        access: Access,
        /// Access size in bytes.
        size: u32,
        /// The region the address belongs to.
        region: Region,
        /// Offset of the access: from `data` for the packet, from r10 for the stack,
        /// from the start otherwise.
        offset: i64,
        /// Size of the valid window in bytes.
        len: u64,
    },
    /// A write into memory the program may only read (`BPF_F_RDONLY_PROG` maps).
    ReadOnly {
        /// Access size in bytes.
        size: u32,
        /// The region.
        region: Region,
        /// Offset of the access.
        offset: i64,
    },
    /// An address that belongs to no region (null, a scalar, a freed record).
    BadAddress {
        /// Read or write.
        access: Access,
        /// Access size in bytes.
        size: u32,
        /// The address.
        addr: u64,
    },
    /// A context access the kernel's verifier would not allow.
    Ctx {
        /// Read or write.
        access: Access,
        /// Access size in bytes.
        size: u32,
        /// Byte offset into the context structure.
        offset: i64,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An instruction writes r10, the read-only frame pointer.
    WriteFramePointer,
    /// A bpf-to-bpf call beyond the kernel's 8 frames.
    CallDepth,
    /// Execution ran past the last instruction.
    FellOffEnd,
    /// `callx` with a register value that is not an implemented helper.
    UnknownHelper {
        /// The register value.
        id: u64,
    },
    /// A helper argument the kernel's verifier would not have allowed.
    HelperArg {
        /// Helper name.
        helper: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The instruction is valid but this interpreter does not model it.
    Unsupported {
        /// What is missing.
        what: String,
    },
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = |n: u32| if n == 1 { "byte" } else { "bytes" };
        match self {
            FaultKind::OutOfBounds {
                access,
                size,
                region,
                offset,
                len,
            } => {
                write!(f, "out-of-bounds {access} of {size} {} at ", bytes(*size))?;
                match region {
                    Region::Stack { frame } => {
                        write!(f, "r10{offset:+} in frame {frame} (stack is {len} bytes)")
                    }
                    Region::Packet | Region::Mem | Region::Ctx => {
                        write!(f, "{region}{offset:+} ({region} is {len} bytes)")
                    }
                    other => write!(f, "{other}{offset:+} (valid area is {len} bytes)"),
                }
            }
            FaultKind::ReadOnly {
                size,
                region,
                offset,
            } => write!(
                f,
                "write of {size} {} to read-only {region}{offset:+}",
                bytes(*size)
            ),
            FaultKind::BadAddress { access, size, addr } => {
                let what = if *addr < 1 << 32 {
                    "null or scalar pointer"
                } else {
                    "no region"
                };
                write!(
                    f,
                    "invalid {access} of {size} {} at address {addr:#x} ({what})",
                    bytes(*size)
                )
            }
            FaultKind::Ctx {
                access,
                size,
                offset,
                reason,
            } => write!(
                f,
                "invalid ctx {access} of {size} {} at ctx{offset:+}: {reason}",
                bytes(*size)
            ),
            FaultKind::WriteFramePointer => {
                f.write_str("write to r10, the read-only frame pointer")
            }
            FaultKind::CallDepth => f.write_str("call stack deeper than 8 frames"),
            FaultKind::FellOffEnd => f.write_str("execution fell off the end of the program"),
            FaultKind::UnknownHelper { id } => {
                write!(f, "callx to {id:#x}, which is not an implemented helper")
            }
            FaultKind::HelperArg { helper, reason } => write!(f, "{helper}: {reason}"),
            FaultKind::Unsupported { what } => write!(f, "unsupported: {what}"),
        }
    }
}

/// Input that `BPF_PROG_TEST_RUN` refuses before running the program (`EINVAL`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadInput {
    /// Packets must hold at least an Ethernet header.
    #[error("packet of {len} bytes is shorter than an Ethernet header (14 bytes)")]
    PacketTooShort {
        /// Given length.
        len: usize,
    },
    /// The packet does not fit the linear buffer the kernel builds.
    #[error("packet of {len} bytes exceeds the {max}-byte limit for this program type")]
    PacketTooLong {
        /// Given length.
        len: usize,
        /// Largest accepted length.
        max: usize,
    },
    /// No context can be built for this program type.
    #[error("programs of type {0:?} cannot be run")]
    NotRunnable(ProgType),
}

/// Why [`Vm::run`](super::Vm::run) did not produce an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The program faulted; nothing after the faulting instruction ran.
    #[error("fault {}at insn {pc}: {kind}", prog_label(*prog))]
    Fault {
        /// Program index in the Vm (0 = the main program; others are tail-call targets).
        prog: usize,
        /// Instruction index (8-byte slots from 0).
        pc: usize,
        /// What went wrong.
        kind: FaultKind,
    },
    /// More instructions would have run than the configured budget allows.
    #[error("instruction budget of {budget} exceeded")]
    BudgetExceeded {
        /// The budget.
        budget: u64,
    },
    /// The input was refused before the program ran.
    #[error("bad input: {0}")]
    BadInput(#[from] BadInput),
}

fn prog_label(prog: usize) -> String {
    if prog == 0 {
        String::new()
    } else {
        format!("in program {prog} ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_region_and_offset() {
        let e = RunError::Fault {
            prog: 0,
            pc: 7,
            kind: FaultKind::OutOfBounds {
                access: Access::Read,
                size: 4,
                region: Region::Packet,
                offset: 62,
                len: 60,
            },
        };
        assert_eq!(
            e.to_string(),
            "fault at insn 7: out-of-bounds read of 4 bytes at packet+62 (packet is 60 bytes)"
        );
        let e = RunError::Fault {
            prog: 2,
            pc: 0,
            kind: FaultKind::OutOfBounds {
                access: Access::Write,
                size: 1,
                region: Region::Stack { frame: 0 },
                offset: 0,
                len: 512,
            },
        };
        assert_eq!(
            e.to_string(),
            "fault in program 2 at insn 0: out-of-bounds write of 1 byte at r10+0 in frame 0 (stack is 512 bytes)"
        );
        let k = FaultKind::BadAddress {
            access: Access::Read,
            size: 8,
            addr: 0,
        };
        assert_eq!(
            k.to_string(),
            "invalid read of 8 bytes at address 0x0 (null or scalar pointer)"
        );
    }
}
