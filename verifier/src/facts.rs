//! What the verifier learnt about each instruction, over all paths: the per-instruction
//! facts a backend needs (the NFP driver reads the same from the kernel's `insn_aux_data`).
//!
//! Why a union over paths: a backend translates each instruction once, so it needs what holds
//! on *every* path — the kinds of pointer a load can see, the range a result can take.

use crate::bounds::ScalarBounds;

/// The memory a load, store or atomic reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PtrKind {
    /// The program's context.
    Ctx,
    /// The stack.
    Stack,
    /// Packet data or metadata.
    Packet,
    /// A map value.
    MapValue,
    /// Helper-returned memory.
    Mem,
    /// A socket structure returned by a helper (`bpf_sock`, `bpf_tcp_sock`).
    Sock,
    /// Different kinds on different paths.
    Mixed,
}

impl PtrKind {
    /// Lower-case name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            PtrKind::Ctx => "ctx",
            PtrKind::Stack => "stack",
            PtrKind::Packet => "packet",
            PtrKind::MapValue => "map_value",
            PtrKind::Mem => "mem",
            PtrKind::Sock => "sock",
            PtrKind::Mixed => "mixed",
        }
    }
}

/// Facts about one instruction slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsnFacts {
    /// Some path executes it (false for dead branches the walk proved impossible).
    pub reachable: bool,
    /// How many times the walk processed it (over all paths, before pruning).
    pub visits: u32,
    /// It defines a 32-bit sub-register whose upper half a later 64-bit read observes, so
    /// a 32-bit machine must zero-extend explicitly (the kernel's `zext_dst`).
    pub zext: bool,
    /// The pointer kind of its memory access, if it accesses memory.
    pub mem: Option<PtrKind>,
    /// The union of the scalar values it wrote to its destination register.
    pub dst: Option<ScalarBounds>,
}
