//! The host kernel as an oracle: load programs through its verifier and JIT, run them with
//! `BPF_PROG_TEST_RUN`, and read back what it made of them.
//!
//! Everything goes through [`crate::sys`], so it can be faked in unit tests.

mod fd;
mod info;
mod map;
mod oracle;
mod prog;
mod test_run;
pub mod verifier_log;
mod vm_program;

pub use fd::{BpfFd, ProgFd};
pub use info::{ProgInfo, prog_info};
pub use map::{MapEntries, MapError, MapFd, MapSpec, possible_cpus};
pub use oracle::{REQUIRE_KERNEL_ENV, SKIP_MARKER, kernel_or_skip, oracle, trivial_program};
pub use prog::{
    LoadError, LoadOptions, LoadedProgram, RejectionClass, flags, load_program, log_level,
    to_bpf_insn,
};
pub use test_run::{DATA_OUT_SLACK, TestRunResult, test_run};
pub use verifier_log::VerifierStats;
pub use vm_program::{
    LoadedVmProgram, VmLoadError, kernel_verdict, load_vm_program, patch_map_fds,
};

/// `enum bpf_prog_type` numbers used by the tests.
pub mod prog_type {
    use aya_obj::generated::bpf_prog_type as t;
    /// `BPF_PROG_TYPE_SOCKET_FILTER`.
    pub const SOCKET_FILTER: u32 = t::BPF_PROG_TYPE_SOCKET_FILTER as u32;
    /// `BPF_PROG_TYPE_SCHED_CLS`.
    pub const SCHED_CLS: u32 = t::BPF_PROG_TYPE_SCHED_CLS as u32;
    /// `BPF_PROG_TYPE_XDP`.
    pub const XDP: u32 = t::BPF_PROG_TYPE_XDP as u32;
}

#[cfg(test)]
mod tests;
