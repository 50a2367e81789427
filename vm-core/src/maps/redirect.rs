//! Index-addressed maps whose values are references set from user space:
//! `BPF_MAP_TYPE_PROG_ARRAY` (tail-call targets), `DEVMAP` (egress ifindex), `CPUMAP`
//! (target CPU queue size) and `XSKMAP` (AF_XDP sockets, modelled by their queue id).
//!
//! Unlike a plain array, an index can be empty, and only user space fills it (in the kernel
//! the value is an fd turned into an object reference). Programs use these maps only through
//! `bpf_tail_call` ([`Map::prog_array_get`](super::Map::prog_array_get)) and
//! `bpf_redirect_map` ([`Map::redirect_lookup`](super::Map::redirect_lookup)); the verifier
//! also lets XDP programs `bpf_map_lookup_elem` a devmap or xskmap, which returns the stored
//! value here. Program-side update and delete are refused by the kernel's verifier; if an
//! unverified program reaches them the model answers `EINVAL`.

use super::array::next_index;
use super::error::{MapErrno, MapErrorKind};
use super::layout::{Slab, alloc_slab, key_index, stride};
use super::{BPF_ANY, BPF_EXIST, BPF_NOEXIST};
use crate::program::MapDef;

/// Which of the four maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    ProgArray,
    Devmap,
    Cpumap,
    Xskmap,
}

/// Kernel limit on a cpumap entry's queue size.
const CPUMAP_MAX_QSIZE: u32 = 16 * 1024;

#[derive(Clone)]
pub(crate) struct RefArray {
    kind: RefKind,
    max_entries: u32,
    value_size: usize,
    stride: usize,
    ncpus: u32,
    present: Vec<bool>,
    slab: Slab,
}

fn first_u32(value: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    let n = value.len().min(4);
    w[..n].copy_from_slice(&value[..n]);
    u32::from_le_bytes(w)
}

impl RefArray {
    pub(crate) fn new(def: &MapDef, ncpus: u32, kind: RefKind) -> Result<Self, MapErrorKind> {
        if def.key_size != 4 {
            return Err(MapErrorKind::KeySize {
                got: def.key_size,
                expected: "must be 4",
            });
        }
        let value_ok = match kind {
            RefKind::ProgArray | RefKind::Xskmap => def.value_size == 4,
            // `struct bpf_devmap_val` / `bpf_cpumap_val`: the id, optionally a program fd.
            RefKind::Devmap | RefKind::Cpumap => matches!(def.value_size, 4 | 8),
        };
        if !value_ok {
            return Err(MapErrorKind::ValueSize {
                got: def.value_size,
                expected: match kind {
                    RefKind::ProgArray | RefKind::Xskmap => "must be 4",
                    RefKind::Devmap | RefKind::Cpumap => "must be 4 or 8",
                },
            });
        }
        if def.max_entries == 0 {
            return Err(MapErrorKind::MaxEntries {
                got: 0,
                expected: "must be at least 1",
            });
        }
        if def.initial_value.is_some() {
            return Err(MapErrorKind::InitialValueNotArray);
        }
        let stride = stride(def.value_size);
        let slab = alloc_slab(u64::from(def.max_entries), stride)?;
        Ok(RefArray {
            kind,
            max_entries: def.max_entries,
            value_size: def.value_size as usize,
            stride,
            ncpus,
            present: vec![false; def.max_entries as usize],
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

    pub(crate) fn len(&self) -> usize {
        self.present.iter().filter(|p| **p).count()
    }

    fn filled(&self, index: u32) -> bool {
        self.present.get(index as usize).copied().unwrap_or(false)
    }

    fn value(&self, index: u32) -> &[u8] {
        let off = index as usize * self.stride;
        &self.slab[off..off + self.value_size]
    }

    /// Program-side lookup: devmap and xskmap entries are readable, the others are not.
    pub(crate) fn lookup(&self, key: &[u8]) -> Option<usize> {
        let index = key_index(key)?;
        let readable = matches!(self.kind, RefKind::Devmap | RefKind::Xskmap);
        (readable && self.filled(index)).then_some(index as usize * self.stride)
    }

    /// The id stored at `index` (program index, ifindex, queue size, queue id).
    pub(crate) fn get(&self, index: u32) -> Option<u32> {
        self.filled(index).then(|| first_u32(self.value(index)))
    }

    /// User-space update, with each map's own checks (`fd_array_map_update_elem`,
    /// `dev_map_update_elem`, `cpu_map_update_elem`, `xsk_map_update_elem`).
    pub(crate) fn update(&mut self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapErrno> {
        let index = key_index(key).ok_or(MapErrno::Inval)?;
        if value.len() != self.value_size {
            return Err(MapErrno::Inval);
        }
        let present = self.filled(index);
        match self.kind {
            RefKind::ProgArray => {
                if flags != BPF_ANY {
                    return Err(MapErrno::Inval);
                }
                if index >= self.max_entries {
                    return Err(MapErrno::TooBig);
                }
            }
            RefKind::Devmap | RefKind::Cpumap | RefKind::Xskmap => {
                if flags > BPF_EXIST {
                    return Err(MapErrno::Inval);
                }
                if index >= self.max_entries {
                    return Err(MapErrno::TooBig);
                }
                match self.kind {
                    RefKind::Xskmap => {
                        if flags == BPF_NOEXIST && present {
                            return Err(MapErrno::Exist);
                        }
                        if flags == BPF_EXIST && !present {
                            return Err(MapErrno::NoEnt);
                        }
                    }
                    _ if flags == BPF_NOEXIST => return Err(MapErrno::Exist),
                    _ => {}
                }
            }
        }
        let id = first_u32(value);
        let clears = match self.kind {
            RefKind::Devmap => {
                // ifindex 0 empties the slot; a program fd without a device is invalid.
                if id == 0 && value.len() == 8 && first_u32(&value[4..]) as i32 > 0 {
                    return Err(MapErrno::Inval);
                }
                id == 0
            }
            RefKind::Cpumap => {
                if id > CPUMAP_MAX_QSIZE {
                    return Err(MapErrno::Overflow);
                }
                if index >= self.ncpus {
                    return Err(MapErrno::NoDev);
                }
                id == 0 // qsize 0 is the same as delete
            }
            RefKind::ProgArray | RefKind::Xskmap => false,
        };
        let off = index as usize * self.stride;
        self.slab[off..off + self.value_size].copy_from_slice(value);
        if let Some(p) = self.present.get_mut(index as usize) {
            *p = !clears;
        }
        Ok(())
    }

    /// User-space delete: a prog array reports `E2BIG`/`ENOENT`, the others `EINVAL` for a bad
    /// index and success for an empty one.
    pub(crate) fn delete(&mut self, key: &[u8]) -> Result<(), MapErrno> {
        let index = key_index(key).ok_or(MapErrno::Inval)?;
        if index >= self.max_entries {
            return Err(match self.kind {
                RefKind::ProgArray => MapErrno::TooBig,
                _ => MapErrno::Inval,
            });
        }
        let was = self.filled(index);
        if let Some(p) = self.present.get_mut(index as usize) {
            *p = false;
        }
        if !was && self.kind == RefKind::ProgArray {
            return Err(MapErrno::NoEnt);
        }
        Ok(())
    }

    pub(crate) fn user_lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapErrno> {
        let index = key_index(key).ok_or(MapErrno::NoEnt)?;
        if !self.filled(index) {
            return Err(MapErrno::NoEnt);
        }
        Ok(self.value(index).to_vec())
    }

    /// Index order over every index, filled or not, as the kernel's array walks do.
    pub(crate) fn get_next_key(&self, prev: Option<&[u8]>) -> Option<Vec<u8>> {
        next_index(self.max_entries, prev).map(|i| i.to_le_bytes().to_vec())
    }

    /// Filled entries only (an empty slot has no value to show).
    pub(crate) fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..self.max_entries)
            .filter(|&i| self.filled(i))
            .map(|i| (i.to_le_bytes().to_vec(), self.value(i).to_vec()))
            .collect()
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
    fn prog_array_holds_tail_call_targets() {
        let mut m = Map::new(&def(MapType::ProgArray, 4, 4, 4), 1).expect("map");
        assert_eq!(m.prog_array_get(1), None);
        m.user_update(&k(1), &7u32.to_le_bytes(), BPF_ANY)
            .expect("set");
        assert_eq!(m.prog_array_get(1), Some(7));
        assert_eq!(m.prog_array_get(9), None);
        assert_eq!(
            m.user_update(&k(1), &[0; 4], BPF_NOEXIST),
            Err(MapErrno::Inval)
        );
        assert_eq!(
            m.user_update(&k(4), &[0; 4], BPF_ANY),
            Err(MapErrno::TooBig)
        );
        assert_eq!(m.user_delete(&k(4)), Err(MapErrno::TooBig));
        assert_eq!(m.user_delete(&k(1)), Ok(()));
        assert_eq!(m.user_delete(&k(1)), Err(MapErrno::NoEnt));
        assert_eq!(m.lookup(&k(1), 0), None, "not readable by programs");
        assert_eq!(m.update(&k(1), &[0; 4], BPF_ANY, 0), Err(MapErrno::Inval));
        assert_eq!(m.delete(&k(1)), Err(MapErrno::Inval));
        assert!(!m.redirect_lookup(1));
    }

    #[test]
    fn devmap_redirects_to_filled_slots() {
        let mut m = Map::new(&def(MapType::Devmap, 4, 4, 2), 1).expect("map");
        assert!(!m.redirect_lookup(0));
        m.user_update(&k(0), &3u32.to_le_bytes(), BPF_ANY)
            .expect("ifindex 3");
        assert!(m.redirect_lookup(0));
        assert_eq!(m.redirect_target(0), Some(3));
        let off = m.lookup(&k(0), 0).expect("devmap is readable");
        assert_eq!(&m.slab()[off..off + 4], &3u32.to_le_bytes());
        assert_eq!(
            m.user_update(&k(0), &[1; 4], BPF_NOEXIST),
            Err(MapErrno::Exist)
        );
        assert_eq!(m.user_update(&k(0), &[1; 4], 3), Err(MapErrno::Inval));
        assert_eq!(
            m.user_update(&k(2), &[1; 4], BPF_ANY),
            Err(MapErrno::TooBig)
        );
        m.user_update(&k(0), &[0; 4], BPF_ANY)
            .expect("ifindex 0 clears");
        assert!(!m.redirect_lookup(0));
        assert_eq!(m.user_delete(&k(2)), Err(MapErrno::Inval));
        assert_eq!(
            m.user_delete(&k(1)),
            Ok(()),
            "deleting an empty slot is fine"
        );
        let mut d8 = Map::new(&def(MapType::Devmap, 4, 8, 2), 1).expect("map");
        let mut v = [0u8; 8];
        v[4] = 5; // a program fd but no device
        assert_eq!(d8.user_update(&k(0), &v, BPF_ANY), Err(MapErrno::Inval));
        assert!(Map::new(&def(MapType::Devmap, 4, 6, 2), 1).is_err());
    }

    #[test]
    fn cpumap_checks_qsize_and_cpu() {
        let mut m = Map::new(&def(MapType::Cpumap, 4, 4, 8), 2).expect("map");
        m.user_update(&k(1), &192u32.to_le_bytes(), BPF_ANY)
            .expect("cpu 1");
        assert!(m.redirect_lookup(1));
        assert_eq!(
            m.lookup(&k(1), 0),
            None,
            "cpumap is not readable by programs"
        );
        assert_eq!(
            m.user_update(&k(1), &20_000u32.to_le_bytes(), BPF_ANY),
            Err(MapErrno::Overflow)
        );
        assert_eq!(
            m.user_update(&k(5), &64u32.to_le_bytes(), BPF_ANY),
            Err(MapErrno::NoDev)
        );
        m.user_update(&k(1), &0u32.to_le_bytes(), BPF_ANY)
            .expect("qsize 0 deletes");
        assert!(!m.redirect_lookup(1));
        assert_eq!(MapErrno::Overflow.as_helper_ret(), -75);
    }

    #[test]
    fn xskmap_has_existence_flags() {
        let mut m = Map::new(&def(MapType::Xskmap, 4, 4, 4), 1).expect("map");
        assert_eq!(
            m.user_update(&k(0), &[1, 0, 0, 0], BPF_EXIST),
            Err(MapErrno::NoEnt)
        );
        m.user_update(&k(0), &[1, 0, 0, 0], BPF_NOEXIST)
            .expect("insert");
        assert_eq!(
            m.user_update(&k(0), &[1, 0, 0, 0], BPF_NOEXIST),
            Err(MapErrno::Exist)
        );
        assert!(m.redirect_lookup(0));
        assert!(!m.redirect_lookup(1));
        assert_eq!(m.entries(), vec![(k(0).to_vec(), vec![1, 0, 0, 0])]);
        assert_eq!(m.get_next_key(Some(&k(2))), Some(k(3).to_vec()));
        assert_eq!(m.get_next_key(Some(&k(3))), None);
        assert_eq!(m.user_lookup(&k(1)), Err(MapErrno::NoEnt));
    }
}
