//! Maps on the NIC: which definitions the firmware can hold (nfp-model.md §2.4), and how the
//! program uses each 32-bit word of a map value.
//!
//! Why track words: the firmware keeps atomic counters big-endian (its atomic engine adds
//! in network order) and the driver byte-swaps them for the host. A word the program both
//! reads plainly and adds to atomically would be seen in the wrong byte order, so each word
//! gets one use; and a counter must start at zero, since an update from the program's stack
//! would store it little-endian.

use std::collections::{BTreeSet, HashMap};

use verifier::reg::{RegState, RegType};
use verifier::stack::SlotType;
use verifier::state::VerifierState;
use vm_core::isa::{Insn, LdImm64};
use vm_core::{MapType, Program};

use super::{Found, category as cat};
use crate::NicLimits;

/// How the program uses one word of a map value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum WordUse {
    #[default]
    Unused,
    Read,
    AtomicCounter,
}

impl WordUse {
    fn name(self) -> &'static str {
        match self {
            WordUse::Unused => "unused",
            WordUse::Read => "read",
            WordUse::AtomicCounter => "atomic",
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Word {
    used: WordUse,
    /// Some `bpf_map_update_elem` may store a non-zero value here.
    non_zero_update: bool,
}

/// Word uses per map (by index into the program's maps).
#[derive(Debug, Default)]
pub(super) struct MapUse {
    maps: HashMap<u32, Vec<Word>>,
}

impl MapUse {
    fn words(&mut self, map: u32, value_size: u32) -> &mut Vec<Word> {
        self.maps
            .entry(map)
            .or_insert_with(|| vec![Word::default(); value_size.div_ceil(4) as usize])
    }

    /// A load (`atomic == false`) or atomic add of `size` bytes at `reg + off` into a value
    /// of `map`: constant offset, in bounds, and one use per word.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn mark(
        &mut self,
        found: &mut Found,
        pc: usize,
        map: u32,
        value_size: u32,
        reg: &RegState,
        off: i64,
        size: usize,
        atomic: bool,
    ) {
        if !reg.var.var_off.is_const() {
            found.at(pc, cat::MAP_VALUE_OFFSET, || {
                format!(
                    "[nfp] map value offset is variable, var_off: {}",
                    reg.var.var_off
                )
            });
            return;
        }
        let start = (reg.var.var_off.value() as i64)
            .wrapping_add(i64::from(reg.off))
            .wrapping_add(off);
        let end = start.saturating_add(size as i64);
        if start < 0 || end > i64::from(value_size) {
            found.at(pc, cat::MAP_VALUE_OFFSET, || {
                "[nfp] map value access out-of-bounds".to_string()
            });
            return;
        }
        let want = if atomic {
            WordUse::AtomicCounter
        } else {
            WordUse::Read
        };
        let words = self.words(map, value_size);
        for byte in (start..end).filter(|b| b % 4 == 0 || *b == start) {
            let Some(word) = words.get_mut((byte / 4) as usize) else {
                continue;
            };
            if word.used != WordUse::Unused && word.used != want {
                let was = word.used;
                found.at(pc, cat::MAP_VALUE_USE_CONFLICT, || {
                    format!(
                        "[nfp] map value use type conflict {} vs {} off: {byte}",
                        was.name(),
                        want.name()
                    )
                });
                continue;
            }
            if want == WordUse::AtomicCounter && word.non_zero_update {
                found.at(pc, cat::MAP_ATOMIC_INIT, || {
                    format!(
                        "[nfp] atomic counter in map value may already be initialized to non-zero value off: {byte}"
                    )
                });
            }
            word.used = want;
        }
    }

    /// `bpf_map_update_elem(map, key, value, ...)` with `value` a constant stack pointer:
    /// words not provably zero must not be atomic counters.
    pub(super) fn update(
        &mut self,
        found: &mut Found,
        pc: usize,
        map: u32,
        value_size: u32,
        st: &VerifierState,
        value: &RegState,
    ) {
        let RegType::Stack { frame } = value.ty else {
            return;
        };
        let Some(stack) = st.frames.get(usize::from(frame)).map(|f| &f.stack) else {
            return;
        };
        let base = i64::from(value.off).wrapping_add(value.var.var_off.value() as i64);
        let words = self.words(map, value_size);
        for i in 0..value_size {
            let Some(off) = i32::try_from(base + i64::from(i))
                .ok()
                .filter(|o| (-4096..0).contains(o))
            else {
                continue;
            };
            let zero = match stack.byte(off) {
                SlotType::Zero => true,
                SlotType::Spill => stack
                    .slot(((-off - 1) / 8) as usize)
                    .is_some_and(|s| s.spilled.is_null()),
                _ => false,
            };
            let Some(word) = words.get_mut((i / 4) as usize) else {
                continue;
            };
            if word.used == WordUse::AtomicCounter && !zero {
                found.at(pc, cat::MAP_ATOMIC_INIT, || {
                    format!(
                        "[nfp] value at offset {i}/{value_size} may be non-zero, bpf_map_update_elem() is required to initialize atomic counters to zero to avoid offload endian issues"
                    )
                });
            }
            if !zero {
                word.non_zero_update = true;
            }
        }
    }
}

/// The maps the program's code refers to (the kernel's `used_maps`), by index.
pub(super) fn used_maps(program: &Program) -> BTreeSet<usize> {
    program
        .insns
        .iter()
        .filter_map(|insn| match insn {
            Insn::LdImm64 { value, .. } => match *value {
                LdImm64::MapFd(i) | LdImm64::MapIdx(i) => usize::try_from(i).ok(),
                LdImm64::MapValue { fd: i, .. } | LdImm64::MapIdxValue { idx: i, .. } => {
                    usize::try_from(i).ok()
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The firmware's map allocation checks, for every map the program uses (perf event
/// arrays stay on the host and are not checked).
pub(super) fn check_definitions(program: &Program, nic: &NicLimits, found: &mut Found) {
    let round8 = |n: u32| u64::from(n).div_ceil(8) * 8;
    let mut count = 0u32;
    let mut entries = 0u64;
    for i in used_maps(program) {
        let Some(m) = program.maps.get(i) else {
            continue;
        };
        if m.map_type == MapType::PerfEventArray {
            continue;
        }
        let name = &m.name;
        if m.flags != 0 {
            found.program(
                cat::MAP_FLAGS,
                format!("map '{name}': map flags are not supported ({:#x})", m.flags),
            );
        }
        if !matches!(m.map_type, MapType::Hash | MapType::Array) {
            found.program(
                cat::MAP_TYPE,
                format!(
                    "map '{name}': map type not supported ({:?}, type {})",
                    m.map_type,
                    m.map_type.kernel_number()
                ),
            );
        }
        if count == nic.max_maps {
            found.program(
                cat::MAP_COUNT,
                format!(
                    "map '{name}': too many maps for a device (FW max {})",
                    nic.max_maps
                ),
            );
        }
        let left = nic.max_map_entries.saturating_sub(entries);
        if u64::from(m.max_entries) > left {
            found.program(
                cat::MAP_ENTRIES,
                format!(
                    "map '{name}': map with too many elements: {}, left: {left}",
                    m.max_entries
                ),
            );
        }
        let entry = round8(m.key_size) + round8(m.value_size);
        if entry > u64::from(nic.max_entry_size) {
            found.program(
                cat::MAP_ENTRY_SIZE,
                format!(
                    "map '{name}': map elements too large: {entry}, FW max element size (key+value): {}",
                    nic.max_entry_size
                ),
            );
        }
        if m.key_size > nic.max_key_size {
            found.program(
                cat::MAP_KEY_SIZE,
                format!(
                    "map '{name}': map key size {}, FW max is {}",
                    m.key_size, nic.max_key_size
                ),
            );
        }
        if m.value_size > nic.max_value_size {
            found.program(
                cat::MAP_VALUE_SIZE,
                format!(
                    "map '{name}': map value size {}, FW max is {}",
                    m.value_size, nic.max_value_size
                ),
            );
        }
        count = count.saturating_add(1);
        entries = entries.saturating_add(u64::from(m.max_entries));
    }
}
