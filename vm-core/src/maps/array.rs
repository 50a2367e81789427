//! `BPF_MAP_TYPE_ARRAY` and `BPF_MAP_TYPE_PERCPU_ARRAY`, including global data
//! (`.data`/`.rodata`/`.bss` are one-element arrays with an initial image).
//!
//! Every index always exists (zero-filled at creation) and can never be deleted, which is why
//! the kernel answers `EEXIST` to `BPF_NOEXIST` and `EINVAL` to delete. Per-CPU arrays hold one
//! copy per CPU, stored next to each other per element, so that user space reads all copies of
//! an element as one contiguous run, as the syscall returns them.

use super::error::{MapErrno, MapErrorKind};
use super::layout::{
    PERCPU_VALUE_LIMIT, Slab, VALUE_LIMIT, alloc_slab, check_update_flags, key_index, stride,
    wants_lock,
};
use super::{BPF_NOEXIST, Side};
use crate::program::MapDef;

#[derive(Clone)]
pub(crate) struct ArrayMap {
    max_entries: u32,
    value_size: usize,
    stride: usize,
    /// 1 for a plain array, `ncpus` for a per-CPU array.
    copies: usize,
    slab: Slab,
}

impl ArrayMap {
    pub(crate) fn new(def: &MapDef, ncpus: u32, percpu: bool) -> Result<Self, MapErrorKind> {
        if def.key_size != 4 {
            return Err(MapErrorKind::KeySize {
                got: def.key_size,
                expected: "array keys must be 4 bytes",
            });
        }
        if def.value_size == 0 || def.value_size > VALUE_LIMIT {
            return Err(MapErrorKind::ValueSize {
                got: def.value_size,
                expected: "must be 1..=4194304",
            });
        }
        let stride = stride(def.value_size);
        if percpu && stride > PERCPU_VALUE_LIMIT as usize {
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
        let copies = if percpu { ncpus as usize } else { 1 };
        let mut slab = alloc_slab(u64::from(def.max_entries) * copies as u64, stride)?;
        if let Some(init) = &def.initial_value {
            if percpu {
                return Err(MapErrorKind::InitialValueNotArray);
            }
            if init.len() > def.value_size as usize {
                return Err(MapErrorKind::InitialValue {
                    len: init.len(),
                    value_size: def.value_size,
                });
            }
            slab[..init.len()].copy_from_slice(init);
        }
        Ok(ArrayMap {
            max_entries: def.max_entries,
            value_size: def.value_size as usize,
            stride,
            copies,
            slab,
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

    pub(crate) fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// Offset of `index`'s copy for `cpu` (CPUs beyond the set wrap around).
    #[inline]
    fn offset(&self, index: u32, cpu: u32) -> usize {
        if self.copies == 1 {
            return index as usize * self.stride;
        }
        (index as usize * self.copies + cpu as usize % self.copies) * self.stride
    }

    #[inline]
    fn index(&self, key: &[u8]) -> Option<u32> {
        key_index(key).filter(|&i| i < self.max_entries)
    }

    /// (The index tested here rather than through [`ArrayMap::index`]'s `filter`, which
    /// compiled to a flag materialised and tested again: 3 host instructions per lookup.)
    #[inline]
    pub(crate) fn lookup(&self, key: &[u8], cpu: u32) -> Option<usize> {
        let i = key_index(key)?;
        if i >= self.max_entries {
            return None;
        }
        Some(self.offset(i, cpu))
    }

    /// The kernel's `array_map_update_elem`: flags, then range (`E2BIG`), then `BPF_NOEXIST`
    /// (`EEXIST`: every index exists), then `BPF_F_LOCK` (`EINVAL`: no spin lock).
    pub(crate) fn update(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        side: Side,
    ) -> Result<(), MapErrno> {
        let index = key_index(key).ok_or(MapErrno::Inval)?;
        check_update_flags(flags)?;
        if index >= self.max_entries {
            return Err(MapErrno::TooBig);
        }
        if flags & BPF_NOEXIST != 0 {
            return Err(MapErrno::Exist);
        }
        if wants_lock(flags) {
            return Err(MapErrno::Inval);
        }
        match side {
            Side::Prog(cpu) => {
                if value.len() != self.value_size {
                    return Err(MapErrno::Inval);
                }
                let off = self.offset(index, cpu);
                self.slab[off..off + self.value_size].copy_from_slice(value);
            }
            Side::User if self.copies == 1 => {
                if value.len() != self.value_size {
                    return Err(MapErrno::Inval);
                }
                let off = self.offset(index, 0);
                self.slab[off..off + self.value_size].copy_from_slice(value);
            }
            Side::User => {
                // Per-CPU from user space: one padded copy per CPU, padding included (the
                // kernel's copy_map_value_long).
                let run = self.copies * self.stride;
                if value.len() != run {
                    return Err(MapErrno::Inval);
                }
                let off = self.offset(index, 0);
                self.slab[off..off + run].copy_from_slice(value);
            }
        }
        Ok(())
    }

    pub(crate) fn user_lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapErrno> {
        let index = self.index(key).ok_or(MapErrno::NoEnt)?;
        Ok(self.user_value(index).to_vec())
    }

    /// The bytes [`ArrayMap::user_lookup`] returns for `index` (below `max_entries`),
    /// borrowed.
    pub(crate) fn user_value(&self, index: u32) -> &[u8] {
        let off = self.offset(index, 0);
        let len = if self.copies == 1 {
            self.value_size
        } else {
            self.copies * self.stride
        };
        &self.slab[off..off + len]
    }

    /// The kernel's `array_map_get_next_key`: a missing or out-of-range key restarts at 0,
    /// the last index ends the walk.
    pub(crate) fn get_next_key(&self, prev: Option<&[u8]>) -> Option<Vec<u8>> {
        next_index(self.max_entries, prev).map(|i| i.to_le_bytes().to_vec())
    }

    pub(crate) fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..self.max_entries)
            .filter_map(|i| {
                let key = i.to_le_bytes();
                self.user_lookup(&key).ok().map(|v| (key.to_vec(), v))
            })
            .collect()
    }
}

/// Index iteration shared by every array-shaped map.
pub(crate) fn next_index(max_entries: u32, prev: Option<&[u8]>) -> Option<u32> {
    match prev.and_then(key_index) {
        Some(i) if i < max_entries => (i + 1 < max_entries).then_some(i + 1),
        _ => (max_entries > 0).then_some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::def;
    use super::super::*;
    use crate::program::MapType;

    fn k(i: u32) -> [u8; 4] {
        i.to_le_bytes()
    }

    #[test]
    fn lookup_is_in_range_only() {
        let mut m = Map::new(&def(MapType::Array, 4, 12, 3), 1).expect("map");
        assert_eq!(m.lookup(&k(0), 0), Some(0));
        assert_eq!(m.lookup(&k(2), 0), Some(32), "stride is 12 rounded to 16");
        assert_eq!(m.lookup(&k(3), 0), None);
        assert_eq!(m.lookup(&[0, 0], 0), None, "short key");
        assert_eq!(m.slab().len(), 48);
    }

    #[test]
    fn update_errnos_follow_the_kernel_order() {
        let mut m = Map::new(&def(MapType::Array, 4, 8, 2), 1).expect("map");
        let v = [1u8; 8];
        assert_eq!(m.update(&k(0), &v, BPF_ANY, 0), Ok(()));
        assert_eq!(m.update(&k(1), &v, BPF_EXIST, 0), Ok(()));
        assert_eq!(m.update(&k(0), &v, 3, 0), Err(MapErrno::Inval));
        assert_eq!(m.update(&k(0), &v, 8, 0), Err(MapErrno::Inval));
        assert_eq!(m.update(&k(2), &v, BPF_ANY, 0), Err(MapErrno::TooBig));
        assert_eq!(m.update(&k(0), &v, BPF_NOEXIST, 0), Err(MapErrno::Exist));
        assert_eq!(m.update(&k(0), &v, BPF_F_LOCK, 0), Err(MapErrno::Inval));
        // The range and NOEXIST checks come before the lock check.
        assert_eq!(
            m.update(&k(0), &v, BPF_NOEXIST | BPF_F_LOCK, 0),
            Err(MapErrno::Exist)
        );
        assert_eq!(m.update(&k(9), &v, BPF_F_LOCK, 0), Err(MapErrno::TooBig));
        assert_eq!(m.update(&k(0), &v[..4], BPF_ANY, 0), Err(MapErrno::Inval));
        assert_eq!(
            m.update(&k(0), &v, BPF_ANY, 0)
                .map_err(|e| e.as_helper_ret()),
            Ok(())
        );
        assert_eq!(
            m.update(&k(7), &v, BPF_ANY, 0)
                .map_err(|e| e.as_helper_ret()),
            Err(-7)
        );
    }

    #[test]
    fn delete_is_einval() {
        let mut m = Map::new(&def(MapType::Array, 4, 8, 2), 1).expect("map");
        assert_eq!(m.delete(&k(0)), Err(MapErrno::Inval));
        assert_eq!(m.user_delete(&k(5)), Err(MapErrno::Inval));
    }

    #[test]
    fn values_land_in_the_slab_at_the_returned_offset() {
        let mut m = Map::new(&def(MapType::Array, 4, 4, 4), 1).expect("map");
        let base = m.slab().as_ptr();
        m.update(&k(3), &[9, 8, 7, 6], BPF_ANY, 0).expect("update");
        let off = m.lookup(&k(3), 0).expect("lookup");
        assert_eq!(off % 8, 0);
        assert_eq!(&m.slab()[off..off + 4], &[9, 8, 7, 6]);
        m.slab_mut()[off] = 1;
        assert_eq!(m.user_lookup(&k(3)), Ok(vec![1, 8, 7, 6]));
        assert_eq!(m.slab().as_ptr(), base, "slab never moves");
        assert_eq!(m.user_lookup(&k(4)), Err(MapErrno::NoEnt));
    }

    #[test]
    fn percpu_copies_are_isolated() {
        let mut m = Map::new(&def(MapType::PercpuArray, 4, 4, 2), 2).expect("map");
        m.update(&k(1), &[1, 1, 1, 1], BPF_ANY, 0).expect("cpu0");
        m.update(&k(1), &[2, 2, 2, 2], BPF_ANY, 1).expect("cpu1");
        let o0 = m.lookup(&k(1), 0).expect("cpu0");
        let o1 = m.lookup(&k(1), 1).expect("cpu1");
        assert_ne!(o0, o1);
        assert_eq!(&m.slab()[o0..o0 + 4], &[1; 4]);
        assert_eq!(&m.slab()[o1..o1 + 4], &[2; 4]);
        // User space sees every CPU's copy, each padded to 8 bytes.
        assert_eq!(
            m.user_lookup(&k(1)),
            Ok(vec![1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0])
        );
        let all: Vec<u8> = (0..16).collect();
        m.user_update(&k(0), &all, BPF_ANY).expect("user update");
        let o = m.lookup(&k(0), 1).expect("cpu1");
        assert_eq!(&m.slab()[o..o + 4], &[8, 9, 10, 11]);
        assert_eq!(
            m.user_update(&k(0), &all[..8], BPF_ANY),
            Err(MapErrno::Inval)
        );
    }

    #[test]
    fn get_next_key_walks_indices() {
        let m = Map::new(&def(MapType::Array, 4, 4, 3), 1).expect("map");
        let mut keys = Vec::new();
        let mut prev: Option<Vec<u8>> = None;
        while let Some(next) = m.get_next_key(prev.as_deref()) {
            keys.push(next.clone());
            prev = Some(next);
        }
        assert_eq!(keys, vec![k(0).to_vec(), k(1).to_vec(), k(2).to_vec()]);
        assert_eq!(m.get_next_key(Some(&k(77))), Some(k(0).to_vec()));
        assert_eq!(m.get_next_key(Some(&[1])), Some(k(0).to_vec()));
    }

    #[test]
    fn entries_list_every_index_with_zeros() {
        let mut m = Map::new(&def(MapType::Array, 4, 2, 3), 1).expect("map");
        m.update(&k(1), &[5, 6], BPF_ANY, 0).expect("update");
        assert_eq!(
            m.entries(),
            vec![
                (k(0).to_vec(), vec![0, 0]),
                (k(1).to_vec(), vec![5, 6]),
                (k(2).to_vec(), vec![0, 0]),
            ]
        );
    }

    #[test]
    fn global_data_starts_with_its_image() {
        let mut d = def(MapType::Array, 4, 6, 1);
        d.initial_value = Some(vec![1, 2, 3]);
        let m = Map::new(&d, 1).expect("map");
        assert_eq!(m.user_lookup(&k(0)), Ok(vec![1, 2, 3, 0, 0, 0]));
        d.initial_value = Some(vec![0; 7]);
        let e = Map::new(&d, 1).err().map(|e| e.reason);
        assert_eq!(
            e,
            Some(MapErrorKind::InitialValue {
                len: 7,
                value_size: 6
            })
        );
    }

    #[test]
    fn bad_definitions_are_refused() {
        for (key, value, max) in [(8, 4, 1), (4, 0, 1), (4, 4, 0), (4, 1 << 23, 1)] {
            assert!(Map::new(&def(MapType::Array, key, value, max), 1).is_err());
        }
        assert!(Map::new(&def(MapType::PercpuArray, 4, 40_000, 1), 2).is_err());
        let too_big = Map::new(&def(MapType::Array, 4, 1 << 20, 1 << 20), 1);
        assert!(matches!(
            too_big.err().map(|e| e.reason),
            Some(MapErrorKind::TooLarge { .. })
        ));
    }
}
