//! Random XDP programs the Linux 6.18 verifier accepts by construction, for differential
//! testing of vm-core against the kernel (tests/diff_random.rs).
//!
//! ```text
//! strategy (proptest) ─► Recipe (structured AST, shrinkable) ─► lower ─► Program + maps
//! ```
//!
//! Every program ends by storing r0..r9 (0 for registers that do not hold a scalar) into
//! the one-entry [`DUMP_MAP`], so a comparison sees all ten 64-bit registers, not only the
//! 32 bits of r0 that `BPF_PROG_TEST_RUN` reports. Nothing nondeterministic is used: no
//! clocks, no random numbers, no CPU ids, no pointer ever stored or returned.
//!
//! What it produces: every ALU/ALU64 op with register and immediate operands (div/mod and
//! their signed forms, shifts, neg, movsx, le/be/bswap, mov32 zero-extension), `lddw`,
//! JMP/JMP32 forward jumps on every condition, `ja`/`gotol`, stack loads and stores
//! (sign-extending too, fixed and variable offsets), packet loads and stores after a bounds
//! check, 32/64-bit atomics with and without fetch on the stack and on map values, array and
//! hash map lookup/update/delete, `csum_diff`, the XDP head/meta/tail adjustments,
//! `xdp_load_bytes`/`xdp_store_bytes`/`xdp_get_buff_len`, two `xdp_md` fields, bounded
//! loops (nested, iterations capped), and bpf-to-bpf calls (not from inside loops). The
//! instruction forms are listed in [`coverage::expected_insn_keys`].
//!
//! Not generated: pointer arithmetic beyond `base + masked index`, variable-offset packet
//! access, calls inside loops, tail calls, callbacks (`bpf_loop`), kfuncs, `callx`,
//! `may_goto`, load-acquire/store-release, per-CPU/LRU maps, helpers whose results are not
//! reproducible (time, random, CPU id, redirect, perf/ring buffer output), `LD_ABS`/`LD_IND`
//! (not XDP).
//!
//! Three Linux 6.18 verifier bugs shape the lowering (`hw-tests/regressions/KERNEL_BUGS.md`):
//! stack slots are rewritten bytewise before an atomic fetch, stack addresses are built as
//! `r10 + index` and never `index += r10`, and a 32-bit cmpxchg is followed by a 64-bit read
//! of r0.

pub mod coverage;
mod lower;
pub mod recipe;
pub mod regression;
mod strategy;

pub use lower::{LowerError, Lowered, MAX_ITERATIONS, MAX_LOOP_COUNT, lower};
pub use strategy::{GenConfig, case_strategy, recipe_strategy};

use vm_core::{MapDef, MapType};

/// Index of the register dump map (array, 1 entry of 80 bytes: r0..r9).
pub const DUMP_MAP: usize = 0;
/// Index of the array map programs read, write and update.
pub const ARRAY_MAP: usize = 1;
/// Index of the hash map.
pub const HASH_MAP: usize = 2;
/// Value size of [`ARRAY_MAP`].
pub const ARRAY_VALUE_SIZE: u32 = 32;
/// Entries of [`ARRAY_MAP`].
pub const ARRAY_ENTRIES: u32 = 4;
/// Value size of [`HASH_MAP`].
pub const HASH_VALUE_SIZE: u32 = 16;
/// Capacity of [`HASH_MAP`] (small, so updates also hit the full-map error).
pub const HASH_ENTRIES: u32 = 8;

/// The maps every generated program declares, in index order.
pub fn map_defs() -> Vec<MapDef> {
    let def = |name: &str, map_type, value_size, max_entries| MapDef {
        name: name.to_string(),
        map_type,
        key_size: 4,
        value_size,
        max_entries,
        flags: 0,
        initial_value: None,
    };
    vec![
        def("regs", MapType::Array, 80, 1),
        def("arr", MapType::Array, ARRAY_VALUE_SIZE, ARRAY_ENTRIES),
        def("hash", MapType::Hash, HASH_VALUE_SIZE, HASH_ENTRIES),
    ]
}

#[cfg(test)]
mod tests;
