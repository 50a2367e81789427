//! BPF maps with the Linux kernel's semantics, for the reference interpreter.
//!
//! # Memory model
//!
//! BPF programs hold *pointers* to map values, so every [`Map`] keeps its values in one
//! contiguous byte slab allocated (zeroed) at creation and never reallocated. Value slots
//! sit at fixed offsets, `round_up(value_size, 8)` apart, so each value is 8-byte aligned.
//! Program-side operations return **byte offsets into the slab**; the interpreter maps the
//! slab ([`Map::slab`], [`Map::slab_mut`]) as a memory region and turns offsets into
//! pointers. Per-CPU maps hold `ncpus` copies of each value side by side; program-side
//! operations take the current CPU and return that CPU's copy.
//!
//! # Two sides
//!
//! - Program side (what helpers do): [`Map::lookup`], [`Map::update`], [`Map::delete`],
//!   [`Map::prog_array_get`] (`bpf_tail_call`), [`Map::redirect_lookup`]
//!   (`bpf_redirect_map`), [`Map::perf_output`], and the `ringbuf_*` calls. Failures are a
//!   [`MapErrno`]; [`MapErrno::as_helper_ret`] is the value for `r0`.
//! - User-space side (what the `bpf()` syscall does): [`Map::user_lookup`],
//!   [`Map::user_update`], [`Map::user_delete`], [`Map::get_next_key`], [`Map::entries`] to dump
//!   the final contents, [`Map::freeze`]. Per-CPU values travel as every CPU's copy, each
//!   padded to 8 bytes, concatenated.
//!
//! # Types
//!
//! | map type | module | notes |
//! | --- | --- | --- |
//! | `ARRAY`, `PERCPU_ARRAY`, global data | `array` | every index exists; delete is `EINVAL` |
//! | `HASH`, `PERCPU_HASH`, `LRU_HASH`, `LRU_PERCPU_HASH` | `hash`, `lru` | O(1) allocation-free lookup; exact LRU |
//! | `PROG_ARRAY`, `DEVMAP`, `CPUMAP`, `XSKMAP` | `redirect` | filled from user space |
//! | `PERF_EVENT_ARRAY` | `perf` | samples captured as [`PerfRecord`]s |
//! | `RINGBUF` | `ringbuf` | reserve/submit/discard/output, consumer in user space |
//!
//! A [`MapSet`] holds a program's maps; a map's index in it is the `fd` that
//! `LdImm64::MapFd`/`MapValue` carry (the index into `Program::maps`).
//!
//! Access flags: `BPF_F_RDONLY`/`BPF_F_WRONLY` and [`Map::freeze`] restrict the user side
//! (`EPERM`) as the syscall does. Helper updates and deletes on a `BPF_F_RDONLY_PROG` map
//! (`.rodata`) are rejected by the kernel's verifier; unverified programs get `EPERM` here.

mod array;
mod error;
mod flags;
mod hash;
mod layout;
mod lru;
mod perf;
mod redirect;
mod ringbuf;

#[cfg(test)]
mod model_tests;

pub use error::{MapErrno, MapError, MapErrorKind};
pub use flags::*;
pub use layout::MAX_SLAB_BYTES;
pub use perf::PerfRecord;

use crate::program::{MapDef, MapType};
use array::ArrayMap;
use hash::{HashKind, HashTab};
use perf::PerfEventArray;
use redirect::{RefArray, RefKind};
use ringbuf::RingBuf;

/// Who is writing: a program on a CPU (one per-CPU copy) or user space (all copies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Prog(u32),
    User,
}

/// A map's kind and contents.
///
/// `repr(u8)`: its kind a tag byte rather than a niche of the hash table's fields, so that
/// testing for one kind is a byte compare and a `match` one load of the tag (nfp-backend's
/// native blocks' atomic add to a map value: 38 -> 33 host instructions per add, callgrind,
/// nic-sim's `simspeed pre`). The layout is private: nothing else changes.
#[derive(Clone)]
#[repr(u8)]
enum Kind {
    Array(ArrayMap),
    Hash(HashTab),
    Ref(RefArray),
    Perf(PerfEventArray),
    Ringbuf(RingBuf),
}

/// One map instance: its definition, its value slab and its contents.
#[derive(Clone)]
pub struct Map {
    def: MapDef,
    ncpus: u32,
    frozen: bool,
    kind: Kind,
}

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("name", &self.def.name)
            .field("type", &self.def.map_type)
            .field("key_size", &self.def.key_size)
            .field("value_size", &self.def.value_size)
            .field("max_entries", &self.def.max_entries)
            .field("elements", &self.element_count())
            .field("slab_bytes", &self.slab().len())
            .finish()
    }
}

impl Map {
    /// Creates a map as `BPF_MAP_CREATE` would, refusing what the kernel refuses and the types
    /// we do not model. `ncpus` sets the number of per-CPU copies. A perf event array with
    /// `max_entries` 0 gets one entry per CPU, as libbpf arranges; [`Map::def`] shows the
    /// effective value.
    pub fn new(def: &MapDef, ncpus: u32) -> Result<Map, MapError> {
        let fail = |reason| MapError {
            fd: None,
            name: def.name.clone(),
            map_type: def.map_type,
            reason,
        };
        if ncpus == 0 {
            return Err(fail(MapErrorKind::NoCpus));
        }
        let mut def = def.clone();
        let kind = match def.map_type {
            MapType::Array => ArrayMap::new(&def, ncpus, false).map(Kind::Array),
            MapType::PercpuArray => ArrayMap::new(&def, ncpus, true).map(Kind::Array),
            MapType::Hash => HashTab::new(&def, ncpus, HashKind::Plain).map(Kind::Hash),
            MapType::PercpuHash => HashTab::new(&def, ncpus, HashKind::Percpu).map(Kind::Hash),
            MapType::LruHash => HashTab::new(&def, ncpus, HashKind::Lru).map(Kind::Hash),
            MapType::LruPercpuHash => {
                HashTab::new(&def, ncpus, HashKind::LruPercpu).map(Kind::Hash)
            }
            MapType::ProgArray => RefArray::new(&def, ncpus, RefKind::ProgArray).map(Kind::Ref),
            MapType::Devmap => RefArray::new(&def, ncpus, RefKind::Devmap).map(Kind::Ref),
            MapType::Cpumap => RefArray::new(&def, ncpus, RefKind::Cpumap).map(Kind::Ref),
            MapType::Xskmap => RefArray::new(&def, ncpus, RefKind::Xskmap).map(Kind::Ref),
            MapType::PerfEventArray => PerfEventArray::new(&def, ncpus).map(|(p, max)| {
                def.max_entries = max;
                Kind::Perf(p)
            }),
            MapType::Ringbuf => RingBuf::new(&def).map(Kind::Ringbuf),
            MapType::Other(n) => Err(MapErrorKind::UnsupportedType(n)),
        }
        .map_err(fail)?;
        Ok(Map {
            def,
            ncpus,
            frozen: false,
            kind,
        })
    }

    /// The (effective) definition.
    pub fn def(&self) -> &MapDef {
        &self.def
    }

    /// Number of per-CPU copies this map was created for.
    pub fn ncpus(&self) -> u32 {
        self.ncpus
    }

    /// Distance between value slots (and between per-CPU copies): `value_size` rounded up to 8.
    pub fn value_stride(&self) -> usize {
        layout::stride(self.def.value_size)
    }

    /// The value memory. Offsets returned by program-side operations index into it; it never
    /// moves or changes length.
    pub fn slab(&self) -> &[u8] {
        match &self.kind {
            Kind::Array(a) => a.slab(),
            Kind::Hash(h) => h.slab(),
            Kind::Ref(r) => r.slab(),
            Kind::Perf(_) => &[],
            Kind::Ringbuf(r) => r.slab(),
        }
    }

    /// The value memory, writable (programs store through value pointers).
    pub fn slab_mut(&mut self) -> &mut [u8] {
        match &mut self.kind {
            Kind::Array(a) => a.slab_mut(),
            Kind::Hash(h) => h.slab_mut(),
            Kind::Ref(r) => r.slab_mut(),
            Kind::Perf(_) => &mut [],
            Kind::Ringbuf(r) => r.slab_mut(),
        }
    }

    /// [`Map::slab_mut`] of an array or a hash map (the maps whose values programs write),
    /// else `None`.
    ///
    /// Why: nfp-backend's native blocks call a helper for each atomic add to a map value
    /// (once per packet of most programs); with these two kinds tested for one by one and
    /// every other kind left to a call out of line, the helper's path costs fewer host
    /// instructions than a `match` of all five kinds (a jump table).
    #[inline]
    pub fn value_slab_mut(&mut self) -> Option<&mut [u8]> {
        match &mut self.kind {
            Kind::Array(a) => Some(a.slab_mut()),
            Kind::Hash(h) => Some(h.slab_mut()),
            _ => None,
        }
    }

    /// The value memory as a raw pointer and length, for the interpreter's region table.
    /// Pointers derived from it stay valid across later borrows of the map (unlike pointers
    /// taken from [`Map::slab_mut`]), until the map is dropped; see `layout::Slab`. Perf
    /// event arrays have no value memory (null).
    pub(crate) fn slab_raw(&self) -> (*mut u8, usize) {
        match &self.kind {
            Kind::Array(a) => a.slab_raw(),
            Kind::Hash(h) => h.slab_raw(),
            Kind::Ref(r) => r.slab_raw(),
            Kind::Perf(_) => (std::ptr::null_mut(), 0),
            Kind::Ringbuf(r) => r.slab_raw(),
        }
    }

    /// Elements present: every index of an array, the keys of a hash map, the filled slots of
    /// a prog/dev/cpu/xsk map; 0 for perf event arrays and ring buffers.
    pub fn element_count(&self) -> usize {
        match &self.kind {
            Kind::Array(a) => a.max_entries() as usize,
            Kind::Hash(h) => h.len(),
            Kind::Ref(r) => r.len(),
            Kind::Perf(_) | Kind::Ringbuf(_) => 0,
        }
    }

    // ---- program side -------------------------------------------------------------------

    /// `bpf_map_lookup_elem`: the slab offset of the value (this CPU's copy for per-CPU maps),
    /// or `None` (the helper returns NULL). Refreshes LRU order. `key` must be `key_size` bytes.
    /// CPUs at or above [`Map::ncpus`] wrap around.
    ///
    /// Inline (and the array lookup under it): nfp-backend's native blocks call a helper
    /// around it once per packet, where the call and its saved registers cost more than
    /// the array lookup (callgrind, nic-sim's `simspeed pre`: 1,478 -> 1,454 host
    /// instructions per frame).
    #[inline]
    pub fn lookup(&mut self, key: &[u8], cpu: u32) -> Option<usize> {
        match &mut self.kind {
            Kind::Array(a) => a.lookup(key, cpu),
            Kind::Hash(h) => h.lookup(key, cpu),
            Kind::Ref(r) => r.lookup(key),
            Kind::Perf(_) | Kind::Ringbuf(_) => None,
        }
    }

    /// [`Map::lookup`] if the map is an array (`PERCPU_ARRAY` included), else `None`.
    ///
    /// Why: nfp-backend's native blocks call a helper for each map lookup (once per packet
    /// of nearly every program); with the array's lookup alone inline in it and every
    /// other kind left to a call out of line, the helper saves no registers, and testing
    /// for one kind costs less than decoding the kind for a `match` (the enum's niche and a
    /// jump table).
    #[inline]
    pub fn array_lookup(&self, key: &[u8], cpu: u32) -> Option<Option<usize>> {
        match &self.kind {
            Kind::Array(a) => Some(a.lookup(key, cpu)),
            _ => None,
        }
    }

    /// `bpf_map_update_elem` from a program on `cpu`: `value` is `value_size` bytes; per-CPU
    /// maps write this CPU's copy. Flags: `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`; `BPF_F_LOCK`
    /// and anything else are `EINVAL`.
    pub fn update(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: u32,
    ) -> Result<(), MapErrno> {
        if self.def.flags & BPF_F_RDONLY_PROG != 0 {
            return Err(MapErrno::Perm);
        }
        match &mut self.kind {
            Kind::Array(a) => a.update(key, value, flags, Side::Prog(cpu)),
            Kind::Hash(h) => h.update(key, value, flags, Side::Prog(cpu)),
            Kind::Ref(_) | Kind::Perf(_) | Kind::Ringbuf(_) => Err(MapErrno::Inval),
        }
    }

    /// `bpf_map_delete_elem` from a program: `ENOENT` for a missing hash key, `EINVAL` on arrays.
    pub fn delete(&mut self, key: &[u8]) -> Result<(), MapErrno> {
        if self.def.flags & BPF_F_RDONLY_PROG != 0 {
            return Err(MapErrno::Perm);
        }
        match &mut self.kind {
            Kind::Hash(h) => h.delete(key),
            Kind::Array(_) | Kind::Ref(_) | Kind::Perf(_) | Kind::Ringbuf(_) => {
                Err(MapErrno::Inval)
            }
        }
    }

    /// `bpf_tail_call`: the program index stored at `index` of a prog array, if any. `None`
    /// (out of range, empty, or not a prog array) means the call falls through.
    pub fn prog_array_get(&self, index: u32) -> Option<u32> {
        match &self.kind {
            Kind::Ref(r) if self.def.map_type == MapType::ProgArray => r.get(index),
            _ => None,
        }
    }

    /// `bpf_redirect_map`: whether `key` of a devmap, cpumap or xskmap holds a target (the
    /// helper then returns `XDP_REDIRECT`, else the fallback action from its flags).
    pub fn redirect_lookup(&self, key: u32) -> bool {
        self.redirect_target(key).is_some()
    }

    /// The target at `key` of a devmap (ifindex), cpumap (queue size) or xskmap (queue id).
    pub fn redirect_target(&self, key: u32) -> Option<u32> {
        match (&self.kind, self.def.map_type) {
            (Kind::Ref(r), MapType::Devmap | MapType::Cpumap | MapType::Xskmap) => r.get(key),
            _ => None,
        }
    }

    /// `bpf_perf_event_output` (and the skb/xdp variants, whose context bytes the caller has
    /// already appended to `data`) from a program on `cpu`. `EINVAL` on other map types.
    pub fn perf_output(&mut self, flags: u64, cpu: u32, data: &[u8]) -> Result<(), MapErrno> {
        match &mut self.kind {
            Kind::Perf(p) => p.output(flags, cpu, data),
            _ => Err(MapErrno::Inval),
        }
    }

    /// Samples emitted into a perf event array so far, in order.
    pub fn perf_records(&self) -> &[PerfRecord] {
        match &self.kind {
            Kind::Perf(p) => p.records(),
            _ => &[],
        }
    }

    /// Takes the perf samples, leaving none.
    pub fn take_perf_records(&mut self) -> Vec<PerfRecord> {
        match &mut self.kind {
            Kind::Perf(p) => p.take_records(),
            _ => Vec::new(),
        }
    }

    /// `bpf_ringbuf_reserve`: the slab offset of `size` writable bytes, or `None` (NULL) when
    /// `flags` is not 0, the record is too big, or there is no room.
    pub fn ringbuf_reserve(&mut self, size: u64, flags: u64) -> Option<usize> {
        match &mut self.kind {
            Kind::Ringbuf(r) => r.reserve(size, flags),
            _ => None,
        }
    }

    /// `bpf_ringbuf_submit`: commits the record reserved at `offset` (wakeup `flags` are
    /// accepted and have no effect here). `EINVAL` if `offset` is not a live reservation.
    pub fn ringbuf_submit(&mut self, offset: usize, _flags: u64) -> Result<(), MapErrno> {
        match &mut self.kind {
            Kind::Ringbuf(r) => r.commit(offset, false),
            _ => Err(MapErrno::Inval),
        }
    }

    /// `bpf_ringbuf_discard`: drops the record reserved at `offset`.
    pub fn ringbuf_discard(&mut self, offset: usize, _flags: u64) -> Result<(), MapErrno> {
        match &mut self.kind {
            Kind::Ringbuf(r) => r.commit(offset, true),
            _ => Err(MapErrno::Inval),
        }
    }

    /// `bpf_ringbuf_output`: copies `data` in as one record; `EAGAIN` without room, `EINVAL`
    /// for flags other than the wakeup bits.
    pub fn ringbuf_output(&mut self, data: &[u8], flags: u64) -> Result<(), MapErrno> {
        match &mut self.kind {
            Kind::Ringbuf(r) => r.output(data, flags),
            _ => Err(MapErrno::Inval),
        }
    }

    /// `bpf_ringbuf_query` (`BPF_RB_AVAIL_DATA`, `BPF_RB_RING_SIZE`, `BPF_RB_CONS_POS`,
    /// `BPF_RB_PROD_POS`; anything else 0).
    pub fn ringbuf_query(&self, flags: u64) -> u64 {
        match &self.kind {
            Kind::Ringbuf(r) => r.query(flags),
            _ => 0,
        }
    }

    /// Committed ring buffer records a consumer would read now, in order, without consuming.
    pub fn ringbuf_records(&self) -> Vec<Vec<u8>> {
        match &self.kind {
            Kind::Ringbuf(r) => r.records(),
            _ => Vec::new(),
        }
    }

    /// The user-space consumer: takes the committed records and frees their space.
    pub fn ringbuf_consume(&mut self) -> Vec<Vec<u8>> {
        match &mut self.kind {
            Kind::Ringbuf(r) => r.consume(),
            _ => Vec::new(),
        }
    }

    // ---- user-space side ----------------------------------------------------------------

    /// `BPF_MAP_LOOKUP_ELEM`: a copy of the value (every CPU's copy, each padded to 8 bytes,
    /// for per-CPU maps). `ENOENT` when absent; `EPERM` on a `BPF_F_WRONLY` map;
    /// `EOPNOTSUPP` on a perf event array, `ENOTSUPP` on a ring buffer.
    pub fn user_lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapErrno> {
        if self.def.flags & BPF_F_WRONLY != 0 {
            return Err(MapErrno::Perm);
        }
        match &self.kind {
            Kind::Array(a) => a.user_lookup(key),
            Kind::Hash(h) => h.user_lookup(key),
            Kind::Ref(r) => r.user_lookup(key),
            Kind::Perf(_) => Err(MapErrno::OpNotSupp),
            Kind::Ringbuf(_) => Err(MapErrno::NotSupp),
        }
    }

    fn user_writable(&self) -> Result<(), MapErrno> {
        if self.frozen || self.def.flags & BPF_F_RDONLY != 0 {
            return Err(MapErrno::Perm);
        }
        Ok(())
    }

    /// `BPF_MAP_UPDATE_ELEM`: per-CPU maps take every CPU's copy (`ncpus * value_stride`
    /// bytes); prog/dev/cpu/xsk maps take the program index / ifindex / queue size / queue id.
    /// `EPERM` when frozen or `BPF_F_RDONLY`.
    pub fn user_update(&mut self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapErrno> {
        self.user_writable()?;
        match &mut self.kind {
            Kind::Array(a) => a.update(key, value, flags, Side::User),
            Kind::Hash(h) => h.update(key, value, flags, Side::User),
            Kind::Ref(r) => r.update(key, value, flags),
            Kind::Perf(_) => Err(MapErrno::OpNotSupp),
            Kind::Ringbuf(_) => Err(MapErrno::NotSupp),
        }
    }

    /// `BPF_MAP_DELETE_ELEM`.
    pub fn user_delete(&mut self, key: &[u8]) -> Result<(), MapErrno> {
        self.user_writable()?;
        match &mut self.kind {
            Kind::Array(_) => Err(MapErrno::Inval),
            Kind::Hash(h) => h.delete(key),
            Kind::Ref(r) => r.delete(key),
            Kind::Perf(_) => Err(MapErrno::OpNotSupp),
            Kind::Ringbuf(_) => Err(MapErrno::NotSupp),
        }
    }

    /// `BPF_MAP_GET_NEXT_KEY`: the key after `prev`, the first key for `None` or a key not in
    /// the map, `None` after the last. Arrays (and prog/dev/cpu/xsk/perf arrays) walk indices;
    /// hash maps walk keys in ascending byte order.
    pub fn get_next_key(&self, prev: Option<&[u8]>) -> Option<Vec<u8>> {
        if self.def.flags & BPF_F_WRONLY != 0 {
            return None;
        }
        match &self.kind {
            Kind::Array(a) => a.get_next_key(prev),
            Kind::Hash(h) => h.get_next_key(prev),
            Kind::Ref(r) => r.get_next_key(prev),
            Kind::Perf(_) => {
                array::next_index(self.def.max_entries, prev).map(|i| i.to_le_bytes().to_vec())
            }
            Kind::Ringbuf(_) => None,
        }
    }

    /// Every (key, value) pair, in `get_next_key` order, values as [`Map::user_lookup`] returns
    /// them. Arrays list every index (zeros included); prog/dev/cpu/xsk maps their filled
    /// slots; perf event arrays and ring buffers nothing (see their record accessors).
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        match &self.kind {
            Kind::Array(a) => a.entries(),
            Kind::Hash(h) => h.entries(),
            Kind::Ref(r) => r.entries(),
            Kind::Perf(_) | Kind::Ringbuf(_) => Vec::new(),
        }
    }

    /// The values of an array or per-CPU array map, index by index: [`Map::entries`]'s
    /// values (the keys are the indices), borrowed rather than copied; `None` for other
    /// kinds. Why: nic-sim's final merge compares every ME's replica of every map with the
    /// initial contents, and copying each entry out cost ~4 k host instructions a replica
    /// of a 5-entry array (callgrind, nic-sim's `simspeed pre 1000`).
    pub fn array_values(&self) -> Option<impl Iterator<Item = &[u8]> + '_> {
        match &self.kind {
            Kind::Array(a) => Some((0..a.max_entries()).map(|i| a.user_value(i))),
            _ => None,
        }
    }

    /// `BPF_MAP_FREEZE`: user space can no longer write (programs still can, unless the map
    /// is `BPF_F_RDONLY_PROG`). libbpf freezes `.rodata` after filling it.
    pub fn freeze(&mut self) {
        self.frozen = true;
    }

    /// Whether [`Map::freeze`] was called.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }
}

/// A program's maps, indexed by `fd` (the position in `Program::maps`).
#[derive(Debug, Clone, Default)]
pub struct MapSet {
    maps: Vec<Map>,
    ncpus: u32,
}

impl MapSet {
    /// Creates one map per definition; the first refused definition fails the whole set, with
    /// its fd and name in the error.
    pub fn new(defs: &[MapDef], ncpus: u32) -> Result<MapSet, MapError> {
        let _span = tracing::debug_span!("maps.create", count = defs.len(), ncpus).entered();
        let maps = defs
            .iter()
            .enumerate()
            .map(|(fd, def)| {
                Map::new(def, ncpus).map_err(|mut e| {
                    e.fd = Some(fd);
                    e
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        tracing::debug!(
            bytes = maps.iter().map(|m| m.slab().len()).sum::<usize>(),
            "maps created"
        );
        Ok(MapSet { maps, ncpus })
    }

    /// Number of CPUs the per-CPU maps were created for.
    pub fn ncpus(&self) -> u32 {
        self.ncpus
    }

    /// The map at `fd`.
    pub fn get(&self, fd: usize) -> Option<&Map> {
        self.maps.get(fd)
    }

    /// The map at `fd`, writable.
    pub fn get_mut(&mut self, fd: usize) -> Option<&mut Map> {
        self.maps.get_mut(fd)
    }

    /// The map an instruction's `i32` fd refers to (negative fds refer to nothing).
    pub fn by_fd(&self, fd: i32) -> Option<&Map> {
        usize::try_from(fd).ok().and_then(|i| self.maps.get(i))
    }

    /// Writable [`MapSet::by_fd`].
    pub fn by_fd_mut(&mut self, fd: i32) -> Option<&mut Map> {
        usize::try_from(fd).ok().and_then(|i| self.maps.get_mut(i))
    }

    /// Number of maps.
    pub fn len(&self) -> usize {
        self.maps.len()
    }

    /// Whether there are no maps.
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// The maps in fd order.
    pub fn iter(&self) -> std::slice::Iter<'_, Map> {
        self.maps.iter()
    }

    /// The maps in fd order, writable.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Map> {
        self.maps.iter_mut()
    }

    /// All maps as a slice, for borrowing several slabs at once.
    pub fn as_mut_slice(&mut self) -> &mut [Map] {
        &mut self.maps
    }
}

impl<'a> IntoIterator for &'a MapSet {
    type Item = &'a Map;
    type IntoIter = std::slice::Iter<'a, Map>;
    fn into_iter(self) -> Self::IntoIter {
        self.maps.iter()
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::program::{MapDef, MapType};

    /// A definition with no flags and no initial value.
    pub(crate) fn def(
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> MapDef {
        MapDef {
            name: format!("{map_type:?}").to_lowercase(),
            map_type,
            key_size,
            value_size,
            max_entries,
            flags: 0,
            initial_value: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::def;
    use super::*;

    #[test]
    fn set_indexes_by_fd_and_names_bad_maps() {
        let defs = vec![
            def(MapType::Array, 4, 8, 4),
            def(MapType::Hash, 8, 8, 16),
            def(MapType::Ringbuf, 0, 0, 4096),
        ];
        let mut set = MapSet::new(&defs, 2).expect("set");
        assert_eq!(set.len(), 3);
        assert_eq!(set.by_fd(1).map(|m| m.def().map_type), Some(MapType::Hash));
        assert!(set.by_fd(-1).is_none());
        assert!(set.get(3).is_none());
        assert_eq!(set.iter().count(), 3);
        assert_eq!((&set).into_iter().count(), 3);
        if let Some(m) = set.get_mut(0) {
            m.update(&0u32.to_le_bytes(), &[1; 8], BPF_ANY, 0)
                .expect("update");
        }
        assert_eq!(set.ncpus(), 2);

        let mut bad = defs.clone();
        bad.push(def(MapType::Other(25), 4, 4, 4));
        let e = MapSet::new(&bad, 2).expect_err("unsupported");
        assert_eq!(e.fd, Some(3));
        assert_eq!(e.reason, MapErrorKind::UnsupportedType(25));
        assert!(e.to_string().contains("not supported"), "{e}");
        let mut bad = defs;
        bad[1].key_size = 0;
        let e = MapSet::new(&bad, 1).expect_err("bad hash");
        assert_eq!(e.fd, Some(1));
        assert!(
            e.to_string()
                .starts_with("map #1 `hash` (Hash): key_size 0"),
            "{e}"
        );
        assert!(MapSet::new(&[], 0).is_ok(), "no maps, no cpu check");
        assert_eq!(
            Map::new(&def(MapType::Array, 4, 4, 1), 0)
                .err()
                .map(|e| e.reason),
            Some(MapErrorKind::NoCpus)
        );
    }

    #[test]
    fn access_flags_and_freeze() {
        let mut d = def(MapType::Array, 4, 4, 1);
        d.flags = BPF_F_RDONLY_PROG;
        let mut ro = Map::new(&d, 1).expect("rodata");
        assert_eq!(ro.update(&[0; 4], &[1; 4], BPF_ANY, 0), Err(MapErrno::Perm));
        assert_eq!(ro.user_update(&[0; 4], &[1; 4], BPF_ANY), Ok(()));
        ro.freeze();
        assert!(ro.is_frozen());
        assert_eq!(
            ro.user_update(&[0; 4], &[2; 4], BPF_ANY),
            Err(MapErrno::Perm)
        );
        assert_eq!(ro.user_lookup(&[0; 4]), Ok(vec![1; 4]));
        d.flags = BPF_F_RDONLY;
        let mut m = Map::new(&d, 1).expect("user read-only");
        assert_eq!(
            m.user_update(&[0; 4], &[1; 4], BPF_ANY),
            Err(MapErrno::Perm)
        );
        assert_eq!(m.update(&[0; 4], &[1; 4], BPF_ANY, 0), Ok(()));
        d.flags = BPF_F_WRONLY;
        let m = Map::new(&d, 1).expect("user write-only");
        assert_eq!(m.user_lookup(&[0; 4]), Err(MapErrno::Perm));
        assert_eq!(m.get_next_key(None), None);
    }

    #[test]
    fn wrong_map_kind_operations_are_harmless() {
        let mut a = Map::new(&def(MapType::Array, 4, 4, 1), 1).expect("array");
        assert_eq!(a.perf_output(0, 0, b"x"), Err(MapErrno::Inval));
        assert_eq!(a.ringbuf_reserve(8, 0), None);
        assert_eq!(a.ringbuf_submit(8, 0), Err(MapErrno::Inval));
        assert_eq!(a.ringbuf_output(b"x", 0), Err(MapErrno::Inval));
        assert_eq!(a.ringbuf_query(0), 0);
        assert!(a.ringbuf_consume().is_empty());
        assert!(a.perf_records().is_empty());
        assert_eq!(a.prog_array_get(0), None);
        assert!(!a.redirect_lookup(0));
        assert_eq!(a.value_stride(), 8);
        assert!(format!("{a:?}").contains("elements: 1"));
    }
}
