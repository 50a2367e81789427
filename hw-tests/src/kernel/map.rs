//! Kernel maps: create, update, lookup, delete, iterate.

use aya_obj::generated::{bpf_attr, bpf_cmd};
use tracing::debug_span;

use super::fd::BpfFd;
use crate::sys::{self, SyscallError};

/// What to create: the fields of `BPF_MAP_CREATE` we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    /// `enum bpf_map_type` number.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `map_flags`.
    pub flags: u32,
    /// Name shown by bpftool (truncated to 15 bytes, non-identifier characters dropped).
    pub name: String,
}

impl MapSpec {
    /// The spec of a map a vm-core program declares.
    pub fn from_def(def: &vm_core::MapDef) -> Self {
        MapSpec {
            map_type: def.map_type.kernel_number(),
            key_size: def.key_size,
            value_size: def.value_size,
            max_entries: def.max_entries,
            flags: def.flags,
            name: def.name.clone(),
        }
    }

    /// A 1-entry-or-more `BPF_MAP_TYPE_ARRAY` with u32 keys.
    pub fn array(value_size: u32, max_entries: u32) -> Self {
        MapSpec {
            map_type: aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
            key_size: 4,
            value_size,
            max_entries,
            flags: 0,
            name: String::new(),
        }
    }

    /// Whether lookups return one value per possible CPU.
    pub fn is_per_cpu(&self) -> bool {
        // PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE.
        matches!(self.map_type, 5 | 6 | 10 | 21)
    }

    /// Whether every key in `0..max_entries` always exists (arrays cannot delete).
    pub fn is_array(&self) -> bool {
        matches!(self.map_type, 2 | 6)
    }

    /// Bytes a lookup returns: the value, or one 8-byte-aligned value per possible CPU.
    pub fn lookup_size(&self) -> usize {
        if self.is_per_cpu() {
            (self.value_size as usize).next_multiple_of(8) * possible_cpus()
        } else {
            self.value_size as usize
        }
    }
}

/// Number of possible CPUs (`/sys/devices/system/cpu/possible`), the per-CPU value count.
pub fn possible_cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(read_possible_cpus)
}

fn read_possible_cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap_or_default();
    let mut n = 0usize;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let mut ends = part.split('-').map(|x| x.trim().parse::<usize>().ok());
        match (ends.next().flatten(), ends.next().flatten()) {
            (Some(a), Some(b)) if b >= a => n += b - a + 1,
            (Some(_), None) => n += 1,
            _ => {}
        }
    }
    n.max(1)
}

/// A failed map operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The kernel refused.
    #[error("map {name:?}: {source}")]
    Syscall {
        /// Map name.
        name: String,
        /// The failed call.
        source: SyscallError,
    },
    /// A key of the wrong length was passed.
    #[error("map {name:?}: key is {got} bytes, the map's key size is {expected}")]
    KeySize {
        /// Map name.
        name: String,
        /// Declared key size.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// A value of the wrong length was passed.
    #[error("map {name:?}: value is {got} bytes, expected {expected}")]
    ValueSize {
        /// Map name.
        name: String,
        /// Expected length (per-CPU maps: value size rounded to 8 times the CPU count).
        expected: usize,
        /// Length given.
        got: usize,
    },
}

/// `(key, value)` pairs read from a map.
pub type MapEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// An open kernel map; closed on drop.
#[derive(Debug)]
pub struct MapFd {
    fd: BpfFd,
    spec: MapSpec,
}

/// Copies a name into a kernel `char[16]`, keeping only the characters the kernel accepts.
pub(crate) fn object_name(name: &str) -> [libc::c_char; 16] {
    let mut out = [0 as libc::c_char; 16];
    let ok = name
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
        .take(15);
    for (slot, b) in out.iter_mut().zip(ok) {
        *slot = b as libc::c_char;
    }
    out
}

impl MapFd {
    /// `BPF_MAP_CREATE`.
    pub fn create(spec: &MapSpec) -> Result<MapFd, MapError> {
        let _span =
            debug_span!("map_create", name = %spec.name, map_type = spec.map_type).entered();
        let mut attr = sys::zeroed_attr();
        // SAFETY: writing the BPF_MAP_CREATE member of a zeroed union.
        let a = unsafe { &mut attr.__bindgen_anon_1 };
        a.map_type = spec.map_type;
        a.key_size = spec.key_size;
        a.value_size = spec.value_size;
        a.max_entries = spec.max_entries;
        a.map_flags = spec.flags;
        a.map_name = object_name(&spec.name);
        let ret =
            sys::bpf(bpf_cmd::BPF_MAP_CREATE, &mut attr).map_err(|source| MapError::Syscall {
                name: spec.name.clone(),
                source,
            })?;
        Ok(MapFd {
            fd: BpfFd::from_syscall(ret),
            spec: spec.clone(),
        })
    }

    /// The raw descriptor, e.g. for an `lddw` immediate.
    pub fn raw(&self) -> i32 {
        self.fd.raw()
    }

    /// What the map was created with.
    pub fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn fail(&self, source: SyscallError) -> MapError {
        MapError::Syscall {
            name: self.spec.name.clone(),
            source,
        }
    }

    fn check_key(&self, key: &[u8]) -> Result<(), MapError> {
        if key.len() != self.spec.key_size as usize {
            return Err(MapError::KeySize {
                name: self.spec.name.clone(),
                expected: self.spec.key_size as usize,
                got: key.len(),
            });
        }
        Ok(())
    }

    /// Builds the `BPF_MAP_*_ELEM` attribute.
    fn elem_attr(&self, key: u64, value: u64, flags: u64) -> bpf_attr {
        let mut attr = sys::zeroed_attr();
        // SAFETY: writing the map-element member of a zeroed union.
        let a = unsafe { &mut attr.__bindgen_anon_2 };
        a.map_fd = self.fd.raw() as u32;
        a.key = key;
        a.__bindgen_anon_1.value = value;
        a.flags = flags;
        attr
    }

    /// `BPF_MAP_UPDATE_ELEM` with `flags` (`BPF_ANY` = 0, `BPF_NOEXIST`, `BPF_EXIST`).
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.check_key(key)?;
        if value.len() != self.spec.lookup_size() {
            return Err(MapError::ValueSize {
                name: self.spec.name.clone(),
                expected: self.spec.lookup_size(),
                got: value.len(),
            });
        }
        let mut attr = self.elem_attr(key.as_ptr() as u64, value.as_ptr() as u64, flags);
        sys::bpf(bpf_cmd::BPF_MAP_UPDATE_ELEM, &mut attr).map_err(|e| self.fail(e))?;
        Ok(())
    }

    /// `BPF_MAP_LOOKUP_ELEM`; a missing key is `Ok(None)`.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        self.check_key(key)?;
        let mut value = vec![0u8; self.spec.lookup_size()];
        let mut attr = self.elem_attr(key.as_ptr() as u64, value.as_mut_ptr() as u64, 0);
        match sys::bpf(bpf_cmd::BPF_MAP_LOOKUP_ELEM, &mut attr) {
            Ok(_) => Ok(Some(value)),
            Err(e) if e.errno == libc::ENOENT => Ok(None),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// `BPF_MAP_DELETE_ELEM`; returns whether the key existed.
    pub fn delete(&self, key: &[u8]) -> Result<bool, MapError> {
        self.check_key(key)?;
        let mut attr = self.elem_attr(key.as_ptr() as u64, 0, 0);
        match sys::bpf(bpf_cmd::BPF_MAP_DELETE_ELEM, &mut attr) {
            Ok(_) => Ok(true),
            Err(e) if e.errno == libc::ENOENT => Ok(false),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// `BPF_MAP_GET_NEXT_KEY`: the first key when `key` is `None`; `Ok(None)` at the end.
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        if let Some(k) = key {
            self.check_key(k)?;
        }
        let mut next = vec![0u8; self.spec.key_size as usize];
        let key_ptr = key.map_or(0, |k| k.as_ptr() as u64);
        let mut attr = self.elem_attr(key_ptr, next.as_mut_ptr() as u64, 0);
        match sys::bpf(bpf_cmd::BPF_MAP_GET_NEXT_KEY, &mut attr) {
            Ok(_) => Ok(Some(next)),
            Err(e) if e.errno == libc::ENOENT => Ok(None),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// All keys, in the kernel's iteration order (ascending index for arrays).
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, MapError> {
        let mut keys = Vec::new();
        let mut cur: Option<Vec<u8>> = None;
        // Bounded by max_entries + 1 so that a map mutated concurrently cannot loop forever.
        for _ in 0..=self.spec.max_entries {
            match self.next_key(cur.as_deref())? {
                Some(k) => {
                    keys.push(k.clone());
                    cur = Some(k);
                }
                None => break,
            }
        }
        Ok(keys)
    }

    /// All `(key, value)` pairs, sorted by key bytes.
    pub fn entries(&self) -> Result<MapEntries, MapError> {
        let mut out = Vec::new();
        for k in self.keys()? {
            if let Some(v) = self.lookup(&k)? {
                out.push((k, v));
            }
        }
        out.sort();
        Ok(out)
    }

    /// `BPF_MAP_FREEZE`: no more writes from user space; the verifier may then treat reads
    /// of a read-only-for-programs map as constants.
    pub fn freeze(&self) -> Result<(), MapError> {
        let mut attr = sys::zeroed_attr();
        // BPF_MAP_FREEZE reads only map_fd of the map-element member.
        attr.__bindgen_anon_2.map_fd = self.fd.raw() as u32;
        sys::bpf(bpf_cmd::BPF_MAP_FREEZE, &mut attr).map_err(|e| self.fail(e))?;
        Ok(())
    }
}
