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
//! What the generator produces, and what it deliberately does not, is listed in
//! [`coverage::expected_insn_keys`] and the module docs of [`recipe`].

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
