//! Differential testing against the host kernel's verifier and JIT (issue #3).
//!
//! Layers, bottom up:
//! - [`sys`]: the `bpf(2)` syscall behind one replaceable function (fakes for unit tests).
//! - [`kernel`]: maps, program load (verifier log, errno), `BPF_PROG_TEST_RUN`, program info,
//!   loading a vm-core [`vm_core::Program`] with its maps, and the oracle availability check.
//! - [`engine`]: the [`engine::Engine`] trait every execution engine implements, and the
//!   comparison used by the differential harness.
//! - [`generator`] (`src/gen/`): random XDP programs valid by construction (proptest), for tests/diff_random.rs.
//! - [`conformance`]: running bpf_conformance tests through the kernel with the full 64-bit R0.
//! - [`verdicts`]: the kernel's verdict on every program of the staged ELF corpora.

pub mod conformance;
pub mod engine;
/// Lives in `src/gen/` (`gen` is a reserved keyword in Rust 2024, hence the module name).
#[path = "gen/mod.rs"]
pub mod generator;
pub mod kernel;
pub mod sys;
pub mod verdicts;
