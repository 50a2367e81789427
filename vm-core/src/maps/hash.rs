//! The hash family: `BPF_MAP_TYPE_HASH`, `PERCPU_HASH`, `LRU_HASH`, `LRU_PERCPU_HASH`.
//!
//! Elements live in numbered slots. A slot's key is in a key slab and its value (or its
//! per-CPU copies, side by side) in the value slab at `slot * copies * stride`; both slabs are
//! allocated at creation, so value pointers handed to programs stay valid. The index is a
//! `hashbrown::HashTable` of (first 8 key bytes, slot number): keys of up to 8 bytes (the
//! common case) compare without touching the key slab, longer ones compare the head first and
//! read the slab only on a head match. A lookup hashes the caller's key bytes in place and
//! allocates nothing; an insert allocates nothing beyond amortised table growth.
//!
//! Kernel behaviours kept on purpose:
//! - A plain hash map holds `max_entries + ncpus` slots. Replacing an existing key writes the
//!   new value into a spare slot and frees the old one (the kernel's per-CPU `extra_elems`),
//!   so a program still holding a pointer to the old value keeps reading the old bytes; and a
//!   full map can still replace values. Per-CPU and LRU maps replace in place, as the kernel's
//!   per-CPU maps do (the kernel's LRU takes a new node, see [`super::lru`]).
//! - A freed slot's bytes are not cleared, like a preallocated element going back to the
//!   free list: a stale pointer sees whatever the next owner writes.
//! - A program inserting a new per-CPU element sets this CPU's copy and zeroes the others
//!   (`pcpu_init_value`); user space writes all copies.
//!
//! Iteration (`get_next_key`, `entries`) is in ascending byte order of the key: stable, and
//! independent of insertion history, so two engines that end with the same contents dump them
//! identically. (The kernel walks its buckets, an order that depends on a random seed.)

use hashbrown::HashTable;

use super::error::{MapErrno, MapErrorKind};
use super::layout::{
    HASH_KEY_LIMIT, PERCPU_VALUE_LIMIT, Slab, VALUE_LIMIT, alloc_slab, check_existence,
    check_update_flags, stride, wants_lock,
};
use super::lru::LruList;
use super::{BPF_F_NO_PREALLOC, Side};
use crate::program::MapDef;

/// The four members of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashKind {
    Plain,
    Percpu,
    Lru,
    LruPercpu,
}

impl HashKind {
    fn percpu(self) -> bool {
        matches!(self, HashKind::Percpu | HashKind::LruPercpu)
    }

    fn lru(self) -> bool {
        matches!(self, HashKind::Lru | HashKind::LruPercpu)
    }
}

#[derive(Clone)]
pub(crate) struct HashTab {
    key_size: usize,
    value_size: usize,
    stride: usize,
    /// 1, or `ncpus` for the per-CPU kinds.
    copies: usize,
    max_entries: u32,
    /// `max_entries`, plus `ncpus` spares for a plain map.
    total_slots: u32,
    /// Plain maps replace by moving to a spare slot (see the module docs).
    moves_on_replace: bool,
    lru: Option<LruList>,
    table: HashTable<Entry>,
    keys: Slab,
    slab: Slab,
    /// Slots freed by deletes and replacements, reused first.
    free: Vec<u32>,
    /// Slots `fresh..total_slots` were never used.
    fresh: u32,
}

/// Little-endian value of up to 8 bytes, zero-extended, without a variable-length `memcpy`
/// (a libc call per lookup was most of the cost): overlapping fixed-size reads.
#[inline]
fn load_small(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 8 {
        return u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    }
    if n >= 4 {
        let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let hi = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]);
        return u64::from(lo) | (u64::from(hi) << (8 * (n - 4)));
    }
    if n == 0 {
        return 0;
    }
    // n = 1..=3: positions 0, n/2 and n-1 cover every byte (overlaps carry equal bytes).
    u64::from(b[0])
        | (u64::from(b[n / 2]) << (8 * (n / 2)))
        | (u64::from(b[n - 1]) << (8 * (n - 1)))
}

/// A fast, allocation-free hash of the key bytes: 8 bytes at a time, each step a folded
/// 64x64->128 multiply, which mixes every input bit into both the low bits (bucket choice)
/// and the high bits (hashbrown's tag byte).
#[inline]
pub(crate) fn hash_key(key: &[u8]) -> u64 {
    const SEED: u64 = 0x243f_6a88_85a3_08d3;
    const MUL: u64 = 0x9e37_79b9_7f4a_7c15;
    #[inline]
    fn fold(a: u64) -> u64 {
        let p = u128::from(a) * u128::from(MUL);
        (p as u64) ^ ((p >> 64) as u64)
    }
    let mut h = SEED ^ key.len() as u64;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        h = fold(h ^ load_small(c));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        h = fold(h ^ load_small(rest));
    }
    fold(h)
}

/// One index entry: the key's first 8 bytes (zero-padded) and its slot.
#[derive(Clone, Copy)]
struct Entry {
    head: u64,
    slot: u32,
}

/// The first 8 bytes of a key, as stored in [`Entry::head`].
#[inline]
fn key_head(key: &[u8]) -> u64 {
    load_small(key)
}

#[inline]
fn key_at(keys: &[u8], key_size: usize, slot: u32) -> &[u8] {
    let off = slot as usize * key_size;
    &keys[off..off + key_size]
}

impl HashTab {
    pub(crate) fn new(def: &MapDef, ncpus: u32, kind: HashKind) -> Result<Self, MapErrorKind> {
        if def.key_size == 0 || def.key_size > HASH_KEY_LIMIT {
            return Err(MapErrorKind::KeySize {
                got: def.key_size,
                expected: "hash keys must be 1..=512 bytes",
            });
        }
        if def.value_size == 0 || def.value_size > VALUE_LIMIT {
            return Err(MapErrorKind::ValueSize {
                got: def.value_size,
                expected: "must be 1..=4194304",
            });
        }
        let stride = stride(def.value_size);
        if kind.percpu() && stride > PERCPU_VALUE_LIMIT as usize {
            return Err(MapErrorKind::ValueSize {
                got: def.value_size,
                expected: "per-CPU values are limited to 32768 bytes",
            });
        }
        if def.max_entries == 0 {
            return Err(MapErrorKind::MaxEntries {
                got: 0,
                expected: "must be at least 1",
            });
        }
        if kind.lru() && def.flags & BPF_F_NO_PREALLOC != 0 {
            return Err(MapErrorKind::Flags {
                flags: def.flags,
                why: "LRU maps cannot use BPF_F_NO_PREALLOC",
            });
        }
        if def.initial_value.is_some() {
            return Err(MapErrorKind::InitialValueNotArray);
        }
        let copies = if kind.percpu() { ncpus as usize } else { 1 };
        let moves_on_replace = kind == HashKind::Plain;
        let spares = if moves_on_replace {
            u64::from(ncpus)
        } else {
            0
        };
        let total = u64::from(def.max_entries) + spares;
        let slab = alloc_slab(total * copies as u64, stride)?;
        let keys = alloc_slab(total, def.key_size as usize)?;
        let total_slots = u32::try_from(total).map_err(|_| MapErrorKind::TooLarge {
            bytes: total,
            limit: u64::from(u32::MAX),
        })?;
        Ok(HashTab {
            key_size: def.key_size as usize,
            value_size: def.value_size as usize,
            stride,
            copies,
            max_entries: def.max_entries,
            total_slots,
            moves_on_replace,
            lru: kind.lru().then(LruList::new),
            table: HashTable::with_capacity((def.max_entries as usize).min(1024)),
            keys,
            slab,
            free: Vec::new(),
            fresh: 0,
        })
    }

    pub(crate) fn slab(&self) -> &[u8] {
        &self.slab
    }

    pub(crate) fn slab_mut(&mut self) -> &mut [u8] {
        &mut self.slab
    }

    pub(crate) fn slab_raw(&self) -> (*mut u8, usize) {
        self.slab.as_raw()
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    fn value_off(&self, slot: u32, cpu: u32) -> usize {
        if self.copies == 1 {
            return slot as usize * self.stride;
        }
        (slot as usize * self.copies + cpu as usize % self.copies) * self.stride
    }

    fn find(&self, key: &[u8], hash: u64) -> Option<u32> {
        let (keys, ks) = (&self.keys, self.key_size);
        let head = key_head(key);
        self.table
            .find(hash, |e| {
                e.head == head && (ks <= 8 || key_at(keys, ks, e.slot)[8..] == key[8..])
            })
            .map(|e| e.slot)
    }

    fn alloc_slot(&mut self) -> Option<u32> {
        if let Some(s) = self.free.pop() {
            return Some(s);
        }
        (self.fresh < self.total_slots).then(|| {
            self.fresh += 1;
            self.fresh - 1
        })
    }

    /// Program-side lookup: the value's offset for `cpu`, refreshing LRU order.
    pub(crate) fn lookup(&mut self, key: &[u8], cpu: u32) -> Option<usize> {
        if key.len() != self.key_size {
            return None;
        }
        let slot = self.find(key, hash_key(key))?;
        if let Some(lru) = &mut self.lru {
            lru.touch(slot);
        }
        Some(self.value_off(slot, cpu))
    }

    fn value_len_ok(&self, value: &[u8], side: Side) -> bool {
        match side {
            Side::User if self.copies > 1 => value.len() == self.copies * self.stride,
            _ => value.len() == self.value_size,
        }
    }

    /// Writes a value into `slot`. A new per-CPU element written by a program gets zeroes in
    /// the other CPUs' copies.
    fn write_value(&mut self, slot: u32, value: &[u8], side: Side, is_new: bool) {
        match side {
            Side::User if self.copies > 1 => {
                let off = self.value_off(slot, 0);
                self.slab[off..off + value.len()].copy_from_slice(value);
            }
            Side::User => {
                let off = self.value_off(slot, 0);
                self.slab[off..off + self.value_size].copy_from_slice(value);
            }
            Side::Prog(cpu) => {
                if is_new && self.copies > 1 {
                    let off = self.value_off(slot, 0);
                    self.slab[off..off + self.copies * self.stride].fill(0);
                }
                let off = self.value_off(slot, cpu);
                self.slab[off..off + self.value_size].copy_from_slice(value);
            }
        }
    }

    fn store_key(&mut self, slot: u32, key: &[u8]) {
        let off = slot as usize * self.key_size;
        self.keys[off..off + self.key_size].copy_from_slice(key);
    }

    /// Removes `slot` from the index and the LRU list and frees it.
    fn evict(&mut self, slot: u32) {
        let hash = hash_key(key_at(&self.keys, self.key_size, slot));
        if let Ok(entry) = self.table.find_entry(hash, |e| e.slot == slot) {
            entry.remove();
        }
        if let Some(lru) = &mut self.lru {
            lru.unlink(slot);
        }
        self.free.push(slot);
    }

    /// The kernel's `htab_map_update_elem` order: flags (`EINVAL`), `BPF_F_LOCK` (`EINVAL`),
    /// existence (`EEXIST`/`ENOENT`), then capacity (`E2BIG`, or an LRU eviction).
    pub(crate) fn update(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        side: Side,
    ) -> Result<(), MapErrno> {
        if key.len() != self.key_size || !self.value_len_ok(value, side) {
            return Err(MapErrno::Inval);
        }
        check_update_flags(flags)?;
        if wants_lock(flags) {
            return Err(MapErrno::Inval);
        }
        let hash = hash_key(key);
        let old = self.find(key, hash);
        check_existence(flags, old.is_some())?;
        match old {
            Some(slot) if !self.moves_on_replace => {
                self.write_value(slot, value, side, false);
                if let Some(lru) = &mut self.lru {
                    lru.touch(slot);
                }
            }
            Some(old_slot) => {
                // A spare always exists: at most max_entries of max_entries + ncpus are in use.
                let new = self.alloc_slot().ok_or(MapErrno::TooBig)?;
                self.store_key(new, key);
                self.write_value(new, value, side, true);
                if let Some(e) = self.table.find_mut(hash, |e| e.slot == old_slot) {
                    e.slot = new;
                }
                self.free.push(old_slot);
            }
            None => {
                if self.table.len() >= self.max_entries as usize {
                    match self.lru.as_ref().and_then(LruList::oldest) {
                        Some(victim) => self.evict(victim),
                        None => return Err(MapErrno::TooBig),
                    }
                }
                let slot = self.alloc_slot().ok_or(MapErrno::TooBig)?;
                self.store_key(slot, key);
                self.write_value(slot, value, side, true);
                let (keys, ks) = (&self.keys, self.key_size);
                self.table.insert_unique(
                    hash,
                    Entry {
                        head: key_head(key),
                        slot,
                    },
                    |e| hash_key(key_at(keys, ks, e.slot)),
                );
                if let Some(lru) = &mut self.lru {
                    lru.push_front(slot);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn delete(&mut self, key: &[u8]) -> Result<(), MapErrno> {
        if key.len() != self.key_size {
            return Err(MapErrno::Inval);
        }
        let slot = self.find(key, hash_key(key)).ok_or(MapErrno::NoEnt)?;
        self.evict(slot);
        Ok(())
    }

    /// Syscall-side lookup: the value (all CPUs' padded copies for per-CPU maps). Does not
    /// refresh LRU order, like the kernel's `map_lookup_elem_sys_only`.
    pub(crate) fn user_lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapErrno> {
        if key.len() != self.key_size {
            return Err(MapErrno::NoEnt);
        }
        let slot = self.find(key, hash_key(key)).ok_or(MapErrno::NoEnt)?;
        let off = self.value_off(slot, 0);
        let len = if self.copies > 1 {
            self.copies * self.stride
        } else {
            self.value_size
        };
        Ok(self.slab[off..off + len].to_vec())
    }

    /// The smallest key above `prev` (byte order); a missing `prev` restarts at the smallest
    /// key, as the kernel restarts at its first bucket. O(n): a user-space walk, not a hot path.
    pub(crate) fn get_next_key(&self, prev: Option<&[u8]>) -> Option<Vec<u8>> {
        let (keys, ks) = (&self.keys, self.key_size);
        let after = prev.filter(|p| p.len() == ks && self.find(p, hash_key(p)).is_some());
        self.table
            .iter()
            .map(|e| key_at(keys, ks, e.slot))
            .filter(|k| after.is_none_or(|a| *k > a))
            .min()
            .map(<[u8]>::to_vec)
    }

    pub(crate) fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let (keys, ks) = (&self.keys, self.key_size);
        let mut slots: Vec<u32> = self.table.iter().map(|e| e.slot).collect();
        slots.sort_by(|&a, &b| key_at(keys, ks, a).cmp(key_at(keys, ks, b)));
        slots
            .into_iter()
            .filter_map(|s| {
                let key = key_at(keys, ks, s);
                self.user_lookup(key).ok().map(|v| (key.to_vec(), v))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::def;
    use super::super::*;
    use super::{hash_key, load_small};
    use crate::program::MapType;

    fn k(i: u32) -> [u8; 4] {
        i.to_le_bytes()
    }

    #[test]
    fn update_and_delete_errnos() {
        let mut m = Map::new(&def(MapType::Hash, 4, 8, 2), 1).expect("map");
        let v = [1u8; 8];
        assert_eq!(m.update(&k(1), &v, BPF_EXIST, 0), Err(MapErrno::NoEnt));
        assert_eq!(m.update(&k(1), &v, BPF_NOEXIST, 0), Ok(()));
        assert_eq!(m.update(&k(1), &v, BPF_NOEXIST, 0), Err(MapErrno::Exist));
        assert_eq!(m.update(&k(1), &v, BPF_EXIST, 0), Ok(()));
        assert_eq!(m.update(&k(1), &v, 3, 0), Err(MapErrno::Inval));
        assert_eq!(m.update(&k(1), &v, BPF_F_LOCK, 0), Err(MapErrno::Inval));
        // Lock is checked before existence.
        assert_eq!(
            m.update(&k(9), &v, BPF_EXIST | BPF_F_LOCK, 0),
            Err(MapErrno::Inval)
        );
        assert_eq!(m.update(&k(2), &v, BPF_ANY, 0), Ok(()));
        assert_eq!(m.update(&k(3), &v, BPF_ANY, 0), Err(MapErrno::TooBig));
        assert_eq!(
            m.update(&k(3), &v, BPF_ANY, 0)
                .map_err(|e| e.as_helper_ret()),
            Err(-7)
        );
        // A full map can still replace.
        assert_eq!(m.update(&k(2), &[2; 8], BPF_ANY, 0), Ok(()));
        assert_eq!(m.user_lookup(&k(2)), Ok(vec![2; 8]));
        assert_eq!(m.delete(&k(3)), Err(MapErrno::NoEnt));
        assert_eq!(m.delete(&k(1)), Ok(()));
        assert_eq!(m.lookup(&k(1), 0), None);
        assert_eq!(m.update(&k(3), &v, BPF_ANY, 0), Ok(()), "room again");
        assert_eq!(m.update(&k(3), &v[..4], BPF_ANY, 0), Err(MapErrno::Inval));
        assert_eq!(m.update(&[0, 0], &v, BPF_ANY, 0), Err(MapErrno::Inval));
    }

    #[test]
    fn replacement_moves_but_stale_pointer_keeps_old_bytes() {
        let mut m = Map::new(&def(MapType::Hash, 4, 8, 1), 2).expect("map");
        m.update(&k(7), &[1; 8], BPF_ANY, 0).expect("insert");
        let old = m.lookup(&k(7), 0).expect("lookup");
        m.update(&k(7), &[2; 8], BPF_ANY, 0)
            .expect("replace in a full map");
        let new = m.lookup(&k(7), 0).expect("lookup");
        assert_ne!(old, new);
        assert_eq!(&m.slab()[old..old + 8], &[1; 8]);
        assert_eq!(&m.slab()[new..new + 8], &[2; 8]);
        for i in 0..10u8 {
            m.update(&k(7), &[i; 8], BPF_ANY, 1)
                .expect("repeated replace");
        }
        assert_eq!(m.user_lookup(&k(7)), Ok(vec![9; 8]));
        assert!(m.slab().len() >= 3 * 8, "max_entries + ncpus slots");
    }

    #[test]
    fn percpu_hash_isolates_cpus() {
        let mut m = Map::new(&def(MapType::PercpuHash, 4, 4, 4), 3).expect("map");
        m.update(&k(1), &[5; 4], BPF_ANY, 2)
            .expect("insert on cpu2");
        assert_eq!(m.user_lookup(&k(1)).map(|v| v.len()), Ok(24));
        let offs: Vec<usize> = (0..3).filter_map(|c| m.lookup(&k(1), c)).collect();
        assert_eq!(offs.len(), 3);
        assert_eq!(&m.slab()[offs[0]..offs[0] + 4], &[0; 4]);
        assert_eq!(&m.slab()[offs[2]..offs[2] + 4], &[5; 4]);
        m.update(&k(1), &[6; 4], BPF_EXIST, 0).expect("cpu0 update");
        assert_eq!(&m.slab()[offs[0]..offs[0] + 4], &[6; 4], "in place");
        assert_eq!(&m.slab()[offs[2]..offs[2] + 4], &[5; 4]);
        let user: Vec<u8> = (0..24).collect();
        m.user_update(&k(2), &user, BPF_ANY)
            .expect("user writes all cpus");
        assert_eq!(m.user_lookup(&k(2)), Ok(user));
        assert_eq!(m.user_update(&k(2), &[0; 4], BPF_ANY), Err(MapErrno::Inval));
        assert_eq!(m.update(&k(3), &[0; 8], BPF_ANY, 0), Err(MapErrno::Inval));
    }

    #[test]
    fn get_next_key_walks_in_key_order() {
        let mut m = Map::new(&def(MapType::Hash, 2, 1, 8), 1).expect("map");
        for key in [[3u8, 0], [1, 0], [2, 9], [0, 5]] {
            m.update(&key, &[key[0]], BPF_ANY, 0).expect("insert");
        }
        let mut walk = Vec::new();
        let mut prev: Option<Vec<u8>> = None;
        while let Some(next) = m.get_next_key(prev.as_deref()) {
            walk.push(next.clone());
            prev = Some(next);
        }
        assert_eq!(walk, vec![vec![0, 5], vec![1, 0], vec![2, 9], vec![3, 0]]);
        assert_eq!(
            m.get_next_key(Some(&[9, 9])),
            Some(vec![0, 5]),
            "unknown -> first"
        );
        assert_eq!(m.get_next_key(Some(&[3, 0])), None);
        // The classic "delete while walking" loop restarts from the first remaining key.
        m.delete(&[0, 5]).expect("delete");
        assert_eq!(m.get_next_key(Some(&[0, 5])), Some(vec![1, 0]));
        let empty = Map::new(&def(MapType::Hash, 2, 1, 8), 1).expect("map");
        assert_eq!(empty.get_next_key(None), None);
        assert_eq!(m.entries().len(), 3);
    }

    #[test]
    fn bad_definitions_are_refused() {
        for (ty, key, value, max) in [
            (MapType::Hash, 0, 4, 1),
            (MapType::Hash, 513, 4, 1),
            (MapType::Hash, 4, 0, 1),
            (MapType::Hash, 4, 4, 0),
            (MapType::PercpuHash, 4, 40_000, 1),
            (MapType::LruHash, 4, 4, 0),
        ] {
            let e = Map::new(&def(ty, key, value, max), 2);
            assert!(e.is_err(), "{ty:?} {key} {value} {max}");
        }
        assert!(Map::new(&def(MapType::Hash, 512, 4, 1), 2).is_ok());
    }

    #[test]
    fn hash_spreads_small_keys() {
        use std::collections::HashSet;
        // Sequential keys must spread over the low bits (bucket choice)...
        let low: HashSet<u64> = (0u32..4096)
            .map(|i| hash_key(&i.to_le_bytes()) & 0xfff)
            .collect();
        assert!(low.len() > 2400, "low bits: {} of 4096", low.len());
        // ...and keys differing only in their last byte over the top 7 bits (hashbrown's tag).
        let top: HashSet<u64> = (0u32..256)
            .map(|i| hash_key(&(i << 24).to_le_bytes()) >> 57)
            .collect();
        assert!(top.len() > 100, "top bits: {} of 128", top.len());
        assert_ne!(hash_key(&[0; 4]), hash_key(&[0; 5]));
    }

    proptest::proptest! {
        /// Keys of up to 8 bytes are compared through this value alone, so it must be exact.
        #[test]
        fn load_small_is_the_zero_extended_le_value(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=8)) {
            let mut w = [0u8; 8];
            w[..bytes.len()].copy_from_slice(&bytes);
            proptest::prop_assert_eq!(load_small(&bytes), u64::from_le_bytes(w));
        }
    }

    #[test]
    fn long_keys_compare_their_tail() {
        let mut m = Map::new(&def(MapType::Hash, 12, 4, 8), 1).expect("map");
        let a = [7u8, 7, 7, 7, 7, 7, 7, 7, 1, 0, 0, 0];
        let b = [7u8, 7, 7, 7, 7, 7, 7, 7, 2, 0, 0, 0];
        m.update(&a, &[1; 4], BPF_NOEXIST, 0).expect("a");
        m.update(&b, &[2; 4], BPF_NOEXIST, 0)
            .expect("b: same head, other tail");
        assert_eq!(m.user_lookup(&a), Ok(vec![1; 4]));
        assert_eq!(m.user_lookup(&b), Ok(vec![2; 4]));
        assert_eq!(m.delete(&a), Ok(()));
        assert_eq!(m.user_lookup(&b), Ok(vec![2; 4]));
        assert_eq!(m.lookup(&a, 0), None);
    }
}
