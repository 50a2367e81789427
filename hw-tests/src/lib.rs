//! Differential testing against the host kernel's verifier and JIT (issue #3).
//!
//! Layers, bottom up:
//! - [`sys`]: the `bpf(2)` syscall behind one replaceable function (fakes for unit tests).
//! - [`kernel`]: maps, program load (verifier log, errno), `BPF_PROG_TEST_RUN`, program info,
//!   loading a vm-core [`vm_core::Program`] with its maps, and the oracle availability check.
//! - [`engine`]: the [`engine::Engine`] trait every execution engine implements, and the
//!   comparison used by the differential harness.
//! - [`conformance`]: running bpf_conformance tests through the kernel with the full 64-bit R0.

pub mod conformance;
pub mod engine;
pub mod kernel;
pub mod sys;
