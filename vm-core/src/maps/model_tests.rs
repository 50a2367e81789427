//! Property tests: the hash family against reference models built on std collections.
//!
//! Keys come from a tiny domain so that sequences hit existing keys, full maps, deletes of
//! missing keys and slot reuse; flags include invalid values so every errno path is drawn.

use std::collections::{HashMap, VecDeque};

use proptest::prelude::*;

use super::test_support::def;
use super::*;
use crate::program::MapType;

const KEY_SIZE: usize = 3;
const VALUE_SIZE: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    Update {
        key: u8,
        value: u8,
        flags: u64,
        cpu: u32,
    },
    UserUpdate {
        key: u8,
        value: u8,
        flags: u64,
    },
    Delete {
        key: u8,
    },
    Lookup {
        key: u8,
        cpu: u32,
    },
    GetNext {
        prev: Option<u8>,
    },
}

fn key(k: u8) -> Vec<u8> {
    // Vary the first and last byte so byte order differs from numeric order.
    vec![k.wrapping_mul(37), 0, k]
}

/// A 12-byte key whose first 8 bytes are all equal: only the tail tells keys apart.
fn long_key(k: u8) -> Vec<u8> {
    let mut out = vec![0xee; 8];
    out.extend_from_slice(&[k.wrapping_mul(37), 0, k, 0]);
    out
}

fn value(v: u8) -> Vec<u8> {
    vec![v, v ^ 0x5a, 1, 2, v]
}

fn op() -> impl Strategy<Value = Op> {
    let flags = prop_oneof![
        6 => 0u64..3,
        1 => Just(BPF_F_LOCK),
        1 => 3u64..9,
    ];
    prop_oneof![
        4 => (0u8..10, any::<u8>(), flags.clone(), 0u32..2)
            .prop_map(|(key, value, flags, cpu)| Op::Update { key, value, flags, cpu }),
        1 => (0u8..10, any::<u8>(), flags)
            .prop_map(|(key, value, flags)| Op::UserUpdate { key, value, flags }),
        2 => (0u8..10).prop_map(|key| Op::Delete { key }),
        3 => (0u8..10, 0u32..2).prop_map(|(key, cpu)| Op::Lookup { key, cpu }),
        1 => proptest::option::of(0u8..10).prop_map(|prev| Op::GetNext { prev }),
    ]
}

/// Kernel flag rules shared by every model.
fn flag_result(flags: u64, exists: bool) -> Result<(), MapErrno> {
    if flags & !BPF_F_LOCK > BPF_EXIST || flags & BPF_F_LOCK != 0 {
        return Err(MapErrno::Inval);
    }
    match (flags, exists) {
        (BPF_NOEXIST, true) => Err(MapErrno::Exist),
        (BPF_EXIST, false) => Err(MapErrno::NoEnt),
        _ => Ok(()),
    }
}

fn expected_next(model_keys: &[Vec<u8>], prev: Option<&[u8]>) -> Option<Vec<u8>> {
    let mut sorted = model_keys.to_vec();
    sorted.sort();
    match prev.filter(|p| sorted.iter().any(|k| k.as_slice() == *p)) {
        Some(p) => sorted.into_iter().find(|k| k.as_slice() > p),
        None => sorted.into_iter().next(),
    }
}

fn check_entries(map: &Map, model: &HashMap<Vec<u8>, Vec<u8>>) {
    let mut want: Vec<(Vec<u8>, Vec<u8>)> =
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    want.sort();
    assert_eq!(map.entries(), want);
    assert_eq!(map.element_count(), model.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// `BPF_MAP_TYPE_HASH` equals a capacity-checked `std::HashMap`.
    #[test]
    fn hash_matches_reference_model(
        max in 1u32..7,
        long in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..64),
    ) {
        let (key, key_size): (fn(u8) -> Vec<u8>, u32) =
            if long { (long_key, 12) } else { (key, KEY_SIZE as u32) };
        let mut map = Map::new(&def(MapType::Hash, key_size, VALUE_SIZE as u32, max), 2)
            .expect("map");
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let base = map.slab().as_ptr();
        for op in ops {
            match op {
                Op::Update { key: k, value: v, flags, cpu } => {
                    let (k, v) = (key(k), value(v));
                    let exists = model.contains_key(&k);
                    let mut want = flag_result(flags, exists);
                    if want.is_ok() && !exists && model.len() >= max as usize {
                        want = Err(MapErrno::TooBig);
                    }
                    prop_assert_eq!(map.update(&k, &v, flags, cpu), want);
                    if want.is_ok() {
                        model.insert(k, v);
                    }
                }
                Op::UserUpdate { key: k, value: v, flags } => {
                    let (k, v) = (key(k), value(v));
                    let exists = model.contains_key(&k);
                    let mut want = flag_result(flags, exists);
                    if want.is_ok() && !exists && model.len() >= max as usize {
                        want = Err(MapErrno::TooBig);
                    }
                    prop_assert_eq!(map.user_update(&k, &v, flags), want);
                    if want.is_ok() {
                        model.insert(k, v);
                    }
                }
                Op::Delete { key: k } => {
                    let k = key(k);
                    let want = if model.remove(&k).is_some() { Ok(()) } else { Err(MapErrno::NoEnt) };
                    prop_assert_eq!(map.delete(&k), want);
                }
                Op::Lookup { key: k, cpu } => {
                    let k = key(k);
                    match (map.lookup(&k, cpu), model.get(&k)) {
                        (Some(off), Some(v)) => {
                            prop_assert_eq!(off % 8, 0);
                            prop_assert_eq!(&map.slab()[off..off + VALUE_SIZE], v.as_slice());
                        }
                        (None, None) => {}
                        (got, want) => prop_assert!(false, "lookup {:?}: {:?} vs {:?}", k, got, want),
                    }
                    let user = map.user_lookup(&k).ok();
                    prop_assert_eq!(user.as_ref(), model.get(&k));
                }
                Op::GetNext { prev } => {
                    let prev = prev.map(key);
                    let keys: Vec<Vec<u8>> = model.keys().cloned().collect();
                    prop_assert_eq!(map.get_next_key(prev.as_deref()), expected_next(&keys, prev.as_deref()));
                }
            }
            check_entries(&map, &model);
        }
        prop_assert_eq!(map.slab().as_ptr(), base);
    }

    /// `BPF_MAP_TYPE_LRU_HASH` equals a recency-ordered model with exact LRU eviction.
    #[test]
    fn lru_matches_reference_model(max in 1u32..6, ops in proptest::collection::vec(op(), 1..64)) {
        let mut map = Map::new(&def(MapType::LruHash, KEY_SIZE as u32, VALUE_SIZE as u32, max), 1)
            .expect("map");
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        // Front = most recently used.
        let mut order: VecDeque<Vec<u8>> = VecDeque::new();
        let touch = |order: &mut VecDeque<Vec<u8>>, k: &Vec<u8>| {
            order.retain(|x| x != k);
            order.push_front(k.clone());
        };
        for op in ops {
            let (k, v, flags, user, cpu) = match op {
                Op::Update { key: k, value: v, flags, cpu } => (key(k), value(v), flags, false, cpu),
                Op::UserUpdate { key: k, value: v, flags } => (key(k), value(v), flags, true, 0),
                Op::Delete { key: k } => {
                    let k = key(k);
                    let want = if model.remove(&k).is_some() { Ok(()) } else { Err(MapErrno::NoEnt) };
                    order.retain(|x| *x != k);
                    prop_assert_eq!(map.delete(&k), want);
                    check_entries(&map, &model);
                    continue;
                }
                Op::Lookup { key: k, cpu } => {
                    let k = key(k);
                    prop_assert_eq!(map.lookup(&k, cpu).is_some(), model.contains_key(&k));
                    if model.contains_key(&k) {
                        touch(&mut order, &k);
                    }
                    continue;
                }
                Op::GetNext { prev } => {
                    let prev = prev.map(key);
                    let keys: Vec<Vec<u8>> = model.keys().cloned().collect();
                    prop_assert_eq!(map.get_next_key(prev.as_deref()), expected_next(&keys, prev.as_deref()));
                    continue;
                }
            };
            let exists = model.contains_key(&k);
            let want = flag_result(flags, exists);
            let got = if user { map.user_update(&k, &v, flags) } else { map.update(&k, &v, flags, cpu) };
            prop_assert_eq!(got, want);
            if want.is_ok() {
                if !exists
                    && model.len() >= max as usize
                    && let Some(victim) = order.pop_back()
                {
                    model.remove(&victim);
                }
                model.insert(k.clone(), v);
                touch(&mut order, &k);
            }
            check_entries(&map, &model);
        }
    }

    /// `BPF_MAP_TYPE_PERCPU_HASH`: per-CPU copies are independent; a program's insert zeroes
    /// the other CPUs' copies.
    #[test]
    fn percpu_hash_matches_reference_model(max in 1u32..6, ops in proptest::collection::vec(op(), 1..48)) {
        const CPUS: usize = 2;
        let stride = VALUE_SIZE.div_ceil(8) * 8;
        let mut map = Map::new(&def(MapType::PercpuHash, KEY_SIZE as u32, VALUE_SIZE as u32, max), CPUS as u32)
            .expect("map");
        let mut model: HashMap<Vec<u8>, [Vec<u8>; CPUS]> = HashMap::new();
        for op in ops {
            match op {
                Op::Update { key: k, value: v, flags, cpu } => {
                    let (k, v) = (key(k), value(v));
                    let exists = model.contains_key(&k);
                    let mut want = flag_result(flags, exists);
                    if want.is_ok() && !exists && model.len() >= max as usize {
                        want = Err(MapErrno::TooBig);
                    }
                    prop_assert_eq!(map.update(&k, &v, flags, cpu), want);
                    if want.is_ok() {
                        let slot = model.entry(k).or_insert_with(|| [vec![0; VALUE_SIZE], vec![0; VALUE_SIZE]]);
                        slot[cpu as usize] = v;
                    }
                }
                Op::Lookup { key: k, cpu } => {
                    let k = key(k);
                    let got = map.lookup(&k, cpu).map(|off| map.slab()[off..off + VALUE_SIZE].to_vec());
                    prop_assert_eq!(got.as_ref(), model.get(&k).map(|c| &c[cpu as usize]));
                    let user = map.user_lookup(&k).ok();
                    let want = model.get(&k).map(|c| {
                        let mut all = Vec::new();
                        for copy in c {
                            all.extend_from_slice(copy);
                            all.resize(all.len() + stride - VALUE_SIZE, 0);
                        }
                        all
                    });
                    prop_assert_eq!(user, want);
                }
                Op::Delete { key: k } => {
                    let k = key(k);
                    let want = if model.remove(&k).is_some() { Ok(()) } else { Err(MapErrno::NoEnt) };
                    prop_assert_eq!(map.delete(&k), want);
                }
                Op::UserUpdate { .. } | Op::GetNext { .. } => {}
            }
            prop_assert_eq!(map.element_count(), model.len());
        }
    }
}
