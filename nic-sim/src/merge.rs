//! Final map contents from per-ME replicas.
//!
//! # Map model
//!
//! On the NIC all MEs share the maps (EMEM), and the order in which MEs' updates land depends
//! on timing. The simulator gives each ME its own replica, initialised identically, which that
//! ME's threads update in the ME's own (deterministic) event order; at the end the replicas
//! are merged in ME index order. This is deterministic whatever the host threading, and it is
//! exact for the two map uses offloaded programs have:
//!
//! - **Per-flow state** (hash maps keyed by flow): RSS sends a flow to one lane, hence one ME,
//!   so only that ME's replica changes the entry; the merge takes it.
//! - **Shared counters** (atomic adds, the only program-side map write the NFP JIT accepts):
//!   each replica's change is a delta from the initial value; the merge adds the deltas
//!   (wrapping, per 8-byte word when the value size is a multiple of 8, per 4-byte word when
//!   a multiple of 4), which equals any serial order of the adds.
//!
//! What it does not model: a packet on one ME seeing another ME's update *during* the run
//! (cross-ME reads of shared state, e.g. a global rate limiter), and values that several MEs
//! overwrite with non-counter data (merged as counters all the same; counted in
//! [`MergeOutcome::conflicts`]). Keys several MEs changed where one deleted: the highest ME
//! index that changed the key decides. LRU recency is not merged; perf/ring-buffer records are
//! not carried.

use std::collections::{BTreeMap, BTreeSet};

use vm_core::maps::{BPF_ANY, Map, MapSet};

/// The merged maps and how many values needed a multi-writer merge.
#[derive(Debug, Clone)]
pub struct MergeOutcome {
    /// Final maps.
    pub maps: MapSet,
    /// Values changed by more than one ME.
    pub conflicts: u64,
    /// Updates the merged map refused (e.g. a frozen map changed by a program), as
    /// `map name: error`.
    pub refused: Vec<String>,
}

/// Merges `replicas` (in ME index order) that all started as `initial`.
pub fn merge_replicas(initial: &MapSet, replicas: &[&MapSet]) -> MergeOutcome {
    let mut maps = initial.clone();
    let mut conflicts = 0;
    let mut refused = Vec::new();
    for (fd, base) in initial.iter().enumerate() {
        // Built for the first replica that needs it (see `same_array`).
        let mut base_entries: Option<BTreeMap<Vec<u8>, Vec<u8>>> = None;
        let mut changed = Changes::new();
        for rep in replicas {
            let Some(m) = rep.get(fd) else { continue };
            // An array like the base's: its values index by index, borrowed (what
            // `Map::entries` lists, without copying each out: ~4 k host instructions a
            // replica of the demo's 5-entry array, callgrind `simspeed pre 1000`, 50 MEs:
            // ~200 k a run). An array holds every index, so none is ever deleted.
            if let (true, Some(was), Some(now)) =
                (same_array(base, m), base.array_values(), m.array_values())
            {
                for (i, (before, v)) in (0u32..).zip(was.zip(now)) {
                    if before != v {
                        note(&mut changed, base, &i.to_le_bytes(), Some(before), v);
                    }
                }
                continue;
            }
            let base_entries =
                base_entries.get_or_insert_with(|| base.entries().into_iter().collect());
            // The replica's entries as they come (unique keys): a key's result depends only
            // on its own values in ME order, so neither the order within a replica nor a
            // sorted copy of them matters. Why not collected into a tree first, as before:
            // building and dropping that tree cost ~2 k host instructions a replica of the
            // demo's 5-entry array (callgrind, `simspeed pre 1000`, 50 MEs: 110 k a run).
            let entries = m.entries();
            let mut kept = 0;
            for (k, v) in &entries {
                let before = base_entries.get(k).map(Vec::as_slice);
                kept += usize::from(before.is_some());
                if before != Some(v.as_slice()) {
                    note(&mut changed, base, k, before, v);
                }
            }
            // Base keys the replica no longer holds (none when it kept them all).
            if kept < base_entries.len() {
                let present: BTreeSet<&[u8]> = entries.iter().map(|(k, _)| &k[..]).collect();
                for k in base_entries.keys().filter(|k| !present.contains(&k[..])) {
                    let slot = changed.entry(k.clone()).or_insert((None, 0));
                    slot.1 += 1;
                    slot.0 = None;
                }
            }
        }
        let Some(target) = maps.get_mut(fd) else {
            continue;
        };
        for (k, (v, writers)) in changed {
            if writers > 1 {
                conflicts += 1;
            }
            let r = match v {
                Some(v) => target.user_update(&k, &v, BPF_ANY),
                None => target.user_delete(&k),
            };
            if let Err(e) = r {
                refused.push(format!("{}: {}", target.def().name, e.name()));
            }
        }
    }
    MergeOutcome {
        maps,
        conflicts,
        refused,
    }
}

/// Key -> (final value or `None` = deleted, writers).
type Changes = BTreeMap<Vec<u8>, (Option<Vec<u8>>, u32)>;

/// One more writer of `key`, which held `before` in the base and `v` in this replica.
///
/// The key is copied only when first noted and a later writer's delta is added in place.
/// Why: a key copy and a new value per note (`BTreeMap::entry` takes an owned key) were
/// three allocations per changed value per replica; the demo's counters change in every
/// ME's replica (callgrind, `simspeed repeat 1000 1`, a later call: `note` ~65 k host
/// instructions a call, its allocations and frees more).
fn note(changed: &mut Changes, base: &Map, key: &[u8], before: Option<&[u8]>, v: &[u8]) {
    let Some(slot) = changed.get_mut(key) else {
        changed.insert(key.to_vec(), (Some(v.to_vec()), 1));
        return;
    };
    slot.1 += 1;
    match &mut slot.0 {
        Some(acc) => add_delta(base, acc, before, v),
        // Deleted by an earlier replica: this value.
        None => slot.0 = Some(v.to_vec()),
    }
}

/// Whether `m` and `base` are arrays of one shape (kind, element count and value size), so
/// that their [`Map::array_values`] pair index by index.
fn same_array(base: &Map, m: &Map) -> bool {
    let (a, b) = (base.def(), m.def());
    a.map_type == b.map_type
        && a.max_entries == b.max_entries
        && a.value_size == b.value_size
        && base.ncpus() == m.ncpus()
}

/// `acc += new - before` word by word, `before` = zeros for a key that was absent; a value
/// that is not a counter layout becomes `new` (the later writer wins).
fn add_delta(map: &Map, acc: &mut Vec<u8>, before: Option<&[u8]>, new: &[u8]) {
    let vs = map.def().value_size as usize;
    let word = if vs.is_multiple_of(8) {
        8
    } else if vs.is_multiple_of(4) {
        4
    } else {
        acc.clear();
        acc.extend_from_slice(new);
        return;
    };
    let n = acc
        .len()
        .min(new.len())
        .min(before.map_or(new.len(), <[u8]>::len))
        / word
        * word;
    let rd = |b: &[u8], i: usize| -> u64 {
        let mut w = [0u8; 8];
        w[..word].copy_from_slice(&b[i..i + word]);
        u64::from_le_bytes(w)
    };
    for i in (0..n).step_by(word) {
        let was = before.map_or(0, |b| rd(b, i));
        let v = rd(acc, i).wrapping_add(rd(new, i).wrapping_sub(was));
        acc[i..i + word].copy_from_slice(&v.to_le_bytes()[..word]);
    }
}

/// Whether two map sets hold the same contents (for the reference check).
pub fn same_contents(a: &MapSet, b: &MapSet) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.entries() == y.entries())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_core::{MapDef, MapType};

    fn def(name: &str, t: MapType, vs: u32) -> MapDef {
        MapDef {
            name: name.into(),
            map_type: t,
            key_size: 4,
            value_size: vs,
            max_entries: 8,
            flags: 0,
            initial_value: None,
        }
    }

    fn set(vals: &[(u32, u64)], hash: &[(u32, u32)]) -> MapSet {
        let mut s = MapSet::new(
            &[
                def("counters", MapType::Array, 8),
                def("flows", MapType::Hash, 4),
            ],
            1,
        )
        .expect("maps");
        for (k, v) in vals {
            s.get_mut(0)
                .expect("array")
                .user_update(&k.to_le_bytes(), &v.to_le_bytes(), BPF_ANY)
                .expect("update");
        }
        for (k, v) in hash {
            s.get_mut(1)
                .expect("hash")
                .user_update(&k.to_le_bytes(), &v.to_le_bytes(), BPF_ANY)
                .expect("update");
        }
        s
    }

    /// Arrays merge index by index (`Map::array_values`): 4-byte words add as counters, a
    /// value of neither 4- nor 8-byte words takes the later writer's bytes.
    #[test]
    fn arrays_merge_index_by_index() {
        let defs = [def("w4", MapType::Array, 4), def("odd", MapType::Array, 3)];
        let set = |w4: &[(u32, u32)], odd: &[(u32, [u8; 3])]| {
            let mut s = MapSet::new(&defs, 1).expect("maps");
            for (k, v) in w4 {
                s.get_mut(0)
                    .expect("w4")
                    .user_update(&k.to_le_bytes(), &v.to_le_bytes(), BPF_ANY)
                    .expect("update");
            }
            for (k, v) in odd {
                s.get_mut(1)
                    .expect("odd")
                    .user_update(&k.to_le_bytes(), v, BPF_ANY)
                    .expect("update");
            }
            s
        };
        let init = set(&[(1, 10)], &[]);
        let a = set(&[(1, 13), (2, 5)], &[(3, [1, 2, 3])]);
        let b = set(&[(1, 11)], &[(3, [4, 5, 6]), (0, [9, 9, 9])]);
        let m = merge_replicas(&init, &[&a, &b, &init]);
        let get = |fd: usize, k: u32| {
            m.maps
                .get(fd)
                .expect("map")
                .user_lookup(&k.to_le_bytes())
                .expect("present")
        };
        assert_eq!(get(0, 1), 14u32.to_le_bytes());
        assert_eq!(get(0, 2), 5u32.to_le_bytes());
        assert_eq!(get(0, 0), 0u32.to_le_bytes());
        assert_eq!((get(1, 3), get(1, 0)), (vec![4, 5, 6], vec![9, 9, 9]));
        assert_eq!(m.conflicts, 2);
        assert!(m.refused.is_empty());
    }

    #[test]
    fn counters_add_and_flows_union() {
        let init = set(&[(0, 5)], &[(9, 1)]);
        let a = set(&[(0, 5 + 3), (1, u64::MAX)], &[(9, 1), (1, 10)]);
        let b = set(&[(0, 5 + 4), (1, 2)], &[(2, 20)]); // deleted key 9
        let m = merge_replicas(&init, &[&a, &b]);
        let arr = m.maps.get(0).expect("array");
        let get = |k: u32| arr.user_lookup(&k.to_le_bytes()).expect("present");
        assert_eq!(get(0), 12u64.to_le_bytes());
        assert_eq!(get(1), 1u64.to_le_bytes()); // u64::MAX + 2 wraps
        let h = m.maps.get(1).expect("hash");
        assert_eq!(
            h.user_lookup(&1u32.to_le_bytes()).expect("a's"),
            10u32.to_le_bytes()
        );
        assert_eq!(
            h.user_lookup(&2u32.to_le_bytes()).expect("b's"),
            20u32.to_le_bytes()
        );
        assert!(h.user_lookup(&9u32.to_le_bytes()).is_err());
        assert_eq!(m.conflicts, 2);
        assert!(m.refused.is_empty());
        assert!(same_contents(
            &merge_replicas(&init, &[&init, &init]).maps,
            &init
        ));
    }
}
