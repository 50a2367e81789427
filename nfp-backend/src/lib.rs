//! NFP-style offload compiler (issue #5): lowers a verified eBPF program to microengine code
//! for a Netronome-like flow processor (see `../shared/design/nfp-model.md`).
//!
//! Stages: feasibility (the verifier run with this backend's offload hooks, collecting every
//! reason a program cannot be offloaded), lowering to [`target`] instructions with zext elision
//! and the NFP JIT's peephole optimisations, a static cost model, and a reference microengine
//! executor that checks the translation against vm-core's interpreter.

pub mod commute;
pub mod compile;
pub mod cost;
pub mod exec;
pub mod feasibility;
pub mod lower;
pub mod preset;
pub mod reason;
pub mod target;

pub use preset::NicLimits;
pub use reason::Reason;
