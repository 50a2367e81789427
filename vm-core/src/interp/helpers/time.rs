//! Clock, randomness and CPU identity: deterministic stand-ins for the kernel's sources.
//!
//! Why not the host clock: the interpreter is the reference every other engine is diffed
//! against, so two runs of the same program on the same input must agree. The clock starts
//! at `VmConfig::clock_start_ns` and advances by `clock_step_ns` per call (shared by
//! `ktime_get_ns`, `ktime_get_boot_ns` and `ktime_get_coarse_ns`, so it is monotonic across
//! all three); `bpf_get_prandom_u32` is a seeded xorshift generator.

use super::super::env::Env;
use super::super::fault::FaultKind;

/// `u64 bpf_ktime_get_ns(void)` (also `_boot_ns`, `_coarse_ns`).
pub(super) fn ktime_get_ns(env: &mut Env<'_>, _: [u64; 5]) -> Result<u64, FaultKind> {
    Ok(env.tick())
}

/// `u32 bpf_get_prandom_u32(void)`.
pub(super) fn get_prandom_u32(env: &mut Env<'_>, _: [u64; 5]) -> Result<u64, FaultKind> {
    Ok(u64::from(env.prandom()))
}

/// `u32 bpf_get_smp_processor_id(void)`: the configured CPU.
pub(super) fn get_smp_processor_id(env: &mut Env<'_>, _: [u64; 5]) -> Result<u64, FaultKind> {
    Ok(u64::from(env.cfg.cpu))
}

/// `long bpf_get_numa_node_id(void)`: a single NUMA node.
pub(super) fn get_numa_node_id(_: &mut Env<'_>, _: [u64; 5]) -> Result<u64, FaultKind> {
    Ok(0)
}
