//! The memories a thread reaches: the ME's local memory, the shared CLS/IMEM scratch, the
//! running thread's CTM packet buffer and the map value slabs in EMEM; plus address
//! resolution for memory commands.

use super::{
    CLS_BYTES, EMEM_MAP_BASE, EMEM_MAP_FD_SHIFT, ExecErrorKind, IMEM_BYTES, LMEM_BYTES,
    PKT_BUF_BYTES, Space,
};
use crate::target::MemTarget;
use vm_core::maps::{BPF_F_RDONLY_PROG, MapSet};

/// One ME's 4 KiB local memory (stacks and packet vectors of its threads).
///
/// Why the dirty bits: every packet starts with its thread's 512-byte stack zeroed, but a
/// packet writes only a few words of it. `dirty` has one bit per 64-byte chunk that may
/// hold a non-zero byte (every write path below sets it; a clear bit guarantees a zero
/// chunk), so starting a packet clears only the chunks that were written.
#[derive(Clone)]
pub struct Lmem {
    bytes: Box<[u8; LMEM_BYTES]>,
    dirty: u64,
}

/// Bytes per dirty bit of [`Lmem`] (64 bits cover the 4 KiB).
const CHUNK: usize = LMEM_BYTES / 64;

/// Byte offsets in an [`Lmem`] of the pointer to its bytes (a boxed array is one thin
/// pointer) and of its dirty mask, for `jit`'s native LM steps, which load and store words
/// and mark chunks dirty as [`Lmem::set_word`] does (bit `a / 64` for byte `a`).
#[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(dead_code))]
pub(super) const LMEM_BYTES_AT: usize = std::mem::offset_of!(Lmem, bytes);
#[cfg_attr(not(all(target_arch = "x86_64", unix)), allow(dead_code))]
pub(super) const LMEM_DIRTY_AT: usize = std::mem::offset_of!(Lmem, dirty);
const _: () = assert!(CHUNK == 64 && size_of::<Box<[u8; LMEM_BYTES]>>() == 8);

impl std::fmt::Debug for Lmem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lmem")
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl Default for Lmem {
    fn default() -> Self {
        Lmem::new()
    }
}

impl Lmem {
    /// Zeroed local memory.
    pub fn new() -> Lmem {
        Lmem::with_page(Page::zeroed())
    }

    /// Zeroed local memory in `page`.
    pub fn with_page(page: Page) -> Lmem {
        Lmem {
            bytes: page.0,
            dirty: 0,
        }
    }

    /// The memory's page, zeroed again: only the chunks `dirty` marks are cleared (a clear
    /// bit guarantees a zero chunk, see [`Lmem`]).
    pub fn into_page(mut self) -> Page {
        let mut d = self.dirty;
        while d != 0 {
            let c = d.trailing_zeros() as usize;
            d &= d - 1;
            if let Some(b) = self.bytes.get_mut(c * CHUNK..(c + 1) * CHUNK) {
                b.fill(0);
            }
        }
        debug_assert!(
            self.bytes.iter().all(|&b| b == 0),
            "a clean LMEM chunk written"
        );
        Page(self.bytes)
    }

    /// All bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..]
    }

    /// All bytes, writable (marks every chunk dirty: the caller may write anywhere).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.dirty = u64::MAX;
        &mut self.bytes[..]
    }

    /// Marks the chunk of byte address `a` (< `LMEM_BYTES`) as possibly non-zero.
    #[inline(always)]
    fn mark(&mut self, a: usize) {
        self.dirty |= 1 << ((a / CHUNK) & 63);
    }

    /// Zeroes bytes `a .. a + len` (clipped to LMEM), touching only the whole chunks written
    /// since they were last zeroed; anything not chunk-aligned goes to
    /// [`Lmem::zero_unaligned`]. The model the tests hold [`Lmem::start_packet`] to (a
    /// packet start, the only zeroing, takes its chunk mask precomputed).
    #[cfg(test)]
    #[inline(always)]
    pub(super) fn zero(&mut self, a: usize, len: usize) {
        let (lo, n) = (a / CHUNK, len / CHUNK);
        if a.is_multiple_of(CHUNK) && len.is_multiple_of(CHUNK) && n > 0 && n < 64 && lo + n <= 64 {
            self.zero_chunks(((1u64 << n) - 1) << lo);
        } else {
            self.zero_unaligned(a, len);
        }
    }

    /// The chunk mask of the whole chunks `a .. a + len` (0 unless the range is non-empty,
    /// inside LMEM, and starts and ends on chunk boundaries): `Lmem::zero` (tests only) of
    /// that range is [`Lmem::start_packet`] with this mask.
    pub(super) fn whole_chunks(a: usize, len: usize) -> u64 {
        let (lo, n) = (a / CHUNK, len / CHUNK);
        let aligned = a.is_multiple_of(CHUNK) && len.is_multiple_of(CHUNK);
        if aligned && n > 0 && n < 64 && lo + n <= 64 {
            ((1u64 << n) - 1) << lo
        } else {
            0
        }
    }

    /// The chunk mask of the first and last bytes of `a .. a + len` (0 unless the range is
    /// non-empty, inside LMEM and at most a chunk long): what [`Lmem::set_words`] of that
    /// range marks, for [`Lmem::start_packet`].
    pub(super) fn end_chunks(a: usize, len: usize) -> u64 {
        match a.checked_add(len) {
            Some(e) if len > 0 && len <= CHUNK && e <= LMEM_BYTES => {
                (1u64 << (a / CHUNK)) | (1u64 << ((e - 1) / CHUNK))
            }
            _ => 0,
        }
    }

    /// A thread's packet start: `Lmem::zero` of its stack, then [`Lmem::set_words`] of
    /// its packet vector `v` at `vec`, given the stack's chunks (`whole_chunks`) and the
    /// vector's (`end_chunks` of `vec`, `4 * N`), which the thread derives once
    /// (`thread::Home`), with one update of the dirty mask for both (separately, the mask
    /// was loaded and stored twice: 3 host instructions more per packet, callgrind
    /// `simspeed pre`).
    #[inline(always)]
    pub(super) fn start_packet<const N: usize>(
        &mut self,
        stack_chunks: u64,
        vec_chunks: u64,
        vec: usize,
        v: [u32; N],
    ) {
        const { assert!(N > 0 && 4 * N <= CHUNK && (4 * N).is_power_of_two()) };
        debug_assert_eq!(vec_chunks, Lmem::end_chunks(vec, 4 * N));
        // Masked (a no-op for a vector aligned to its size, as every thread's is), the
        // compiler knows the words are inside LMEM: no bounds check (1 host instruction).
        debug_assert_eq!(vec % (4 * N), 0);
        let vec = vec & (LMEM_BYTES - 1) & !(4 * N - 1);
        let d = self.dirty;
        self.dirty = (d & !stack_chunks) | vec_chunks;
        let mut clear = d & stack_chunks;
        while clear != 0 {
            let c = clear.trailing_zeros() as usize;
            clear &= clear - 1;
            if let Some(b) = self.bytes.get_mut(c * CHUNK..(c + 1) * CHUNK) {
                b.fill(0);
            }
        }
        if let Some(b) = self.bytes.get_mut(vec..vec + 4 * N) {
            for (c, w) in b.chunks_exact_mut(4).zip(v) {
                c.copy_from_slice(&w.to_le_bytes());
            }
        }
    }

    /// Zeroes the dirty chunks among `span` (a chunk mask) and marks them clean.
    #[cfg(test)]
    #[inline(always)]
    fn zero_chunks(&mut self, span: u64) {
        let mut d = self.dirty & span;
        self.dirty &= !span;
        while d != 0 {
            let c = d.trailing_zeros() as usize;
            d &= d - 1;
            if let Some(b) = self.bytes.get_mut(c * CHUNK..(c + 1) * CHUNK) {
                b.fill(0);
            }
        }
    }

    /// [`Lmem::zero`] for any range: partial chunks at the ends are zeroed byte by byte
    /// (and stay marked), whole chunks as there.
    #[cfg(test)]
    #[cold]
    #[inline(never)]
    fn zero_unaligned(&mut self, a: usize, len: usize) {
        let end = a.saturating_add(len).min(LMEM_BYTES);
        let a = a.min(end);
        let (lo, hi) = (a.div_ceil(CHUNK), end / CHUNK);
        if lo >= hi {
            self.bytes[a..end].fill(0);
            return;
        }
        self.bytes[a..lo * CHUNK].fill(0);
        self.bytes[hi * CHUNK..end].fill(0);
        let n = hi - lo;
        self.zero_chunks(if n >= 64 {
            u64::MAX
        } else {
            ((1u64 << n) - 1) << lo
        });
    }

    /// `len` bytes at byte address `addr`.
    pub(super) fn slice(&self, addr: u64, len: u32) -> Result<&[u8], ExecErrorKind> {
        let r = range(addr, len, LMEM_BYTES).ok_or(ExecErrorKind::BadAddress {
            space: Space::Lmem,
            addr,
            len,
            write: false,
        })?;
        Ok(&self.bytes[r])
    }

    /// The little-endian word at byte address `a` (caller checked `a + 4 <= LMEM_BYTES`).
    #[inline(always)]
    pub(super) fn word(&self, a: usize) -> u32 {
        match self.bytes.get(a..a + 4) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => 0,
        }
    }

    /// Stores the little-endian word `v` at byte address `a` (caller checked the range).
    #[inline(always)]
    pub(super) fn set_word(&mut self, a: usize, v: u32) {
        if let Some(b) = self.bytes.get_mut(a..a + 4) {
            b.copy_from_slice(&v.to_le_bytes());
            // A word is 4-aligned at every caller, but mark both ends to be exact anyway.
            self.mark(a);
            self.mark(a + 3);
        }
    }

    /// Stores the little-endian words `v` at byte address `a` (one range check for all;
    /// nothing is stored when they do not fit).
    #[inline(always)]
    pub(super) fn set_words<const N: usize>(&mut self, a: usize, v: [u32; N]) {
        // Marking both ends covers every chunk the words touch only if they fit in one.
        const { assert!(N > 0 && 4 * N <= CHUNK) };
        if let Some(b) = self.bytes.get_mut(a..a + 4 * N) {
            for (c, w) in b.chunks_exact_mut(4).zip(v) {
                c.copy_from_slice(&w.to_le_bytes());
            }
            self.mark(a);
            self.mark(a + 4 * N - 1);
        }
    }

    /// The little-endian word at byte address `a`, if inside LMEM.
    pub fn read_u32(&self, a: u32) -> Option<u32> {
        let b = self.bytes.get(a as usize..a as usize + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Memories shared by all threads (and MEs) plus firmware state: CLS, IMEM scratch, the
/// random generator and a reusable copy buffer.
///
/// CLS and IMEM are allocated (zeroed) when a command first addresses them, empty until
/// then ([`SharedMem::cls`] and [`SharedMem::imem`] read zeros): nic-sim makes one
/// `SharedMem` per ME, and 50 MEs' 320 KiB each, zeroed up front, made the simulator's
/// set-up cost ~1,500 page faults and 3-4 ms (`simspeed pre 4096`), a sixth of a
/// 200,000-frame run on two host threads, for programs that never use either memory.
#[derive(Clone)]
pub struct SharedMem {
    pub(super) cls: Vec<u8>,
    pub(super) imem: Vec<u8>,
    pub(super) rng: u64,
    pub(super) cpu: u32,
    pub(super) scratch: Vec<u8>,
}

impl std::fmt::Debug for SharedMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMem")
            .field("cpu", &self.cpu)
            .finish_non_exhaustive()
    }
}

/// Bytes of a [`Page`]: an ME's local memory and a thread's packet buffer are one each.
pub const PAGE_BYTES: usize = 4096;
const _: () = assert!(LMEM_BYTES == PAGE_BYTES && PKT_BUF_BYTES as usize == PAGE_BYTES);

/// A page of zeros for a local memory ([`Lmem::with_page`]) or a packet buffer
/// ([`super::Thread::with_page`]); given back zeroed by [`Lmem::into_page`] and
/// [`super::Thread::into_page`].
#[derive(Debug)]
pub struct Page(pub(super) Box<[u8; PAGE_BYTES]>);

impl Page {
    /// A newly allocated page.
    pub fn zeroed() -> Page {
        Page(Box::new([0; PAGE_BYTES]))
    }
}

/// Pages given back by the memories of engines dropped, for the next engines built (see
/// [`Page`]); the process has one, [`PAGES`].
///
/// Why: each `nic-sim` run builds every ME's engine afresh, five new zeroed pages per ME
/// (its local memory and four packet buffers), and a host that runs the simulator again and
/// again (the criterion bench) zeroed ~1 MiB of cold memory per run on Agilio CX's 50 MEs:
/// ~1 M of a 1,000-frame run's ~4.4 M host instructions (callgrind, `simspeed`), and in
/// wall time most of the engines' construction. A page given back is cleared only where its
/// memory says it was written (a few cache lines), and then taken again.
///
/// Why one for the process rather than one per engine factory: a handle to it in each
/// engine cost ~2 host instructions per frame of the timing model's loop, which inlines the
/// engine's packet start (callgrind `simspeed pre`: 875.5 -> 877.8 per frame; LLVM laid the
/// loop out differently).
#[derive(Default)]
pub struct PagePool {
    free: std::sync::Mutex<Vec<Page>>,
}

/// The process's [`PagePool`].
pub static PAGES: PagePool = PagePool::new();

impl std::fmt::Debug for PagePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagePool").finish_non_exhaustive()
    }
}

impl PagePool {
    /// Pages the pool keeps at most (8 MiB, the memories of 227 MEs of 8 threads): what
    /// it would hold beyond is dropped.
    pub const MAX: usize = 2048;

    /// An empty pool.
    pub const fn new() -> PagePool {
        PagePool {
            free: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// `n` zeroed pages, from the pool while it has some.
    pub fn take(&self, n: usize) -> Vec<Page> {
        let mut pages = {
            let mut free = self
                .free
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let at = free.len().saturating_sub(n);
            free.split_off(at)
        };
        pages.extend((pages.len()..n).map(|_| Page::zeroed()));
        pages
    }

    /// Pages the pool holds now.
    pub fn len(&self) -> usize {
        self.free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether the pool holds no page.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps `pages` (zeroed) for [`PagePool::take`], up to [`PagePool::MAX`].
    pub fn give(&self, pages: impl IntoIterator<Item = Page>) {
        let mut free = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let room = Self::MAX.saturating_sub(free.len());
        free.extend(pages.into_iter().take(room));
    }
}

/// Zeros for a memory not yet allocated ([`SharedMem`]): static, so reading them costs no
/// allocation (zero pages of the executable's .bss, shared).
static ZEROS: [u8; IMEM_BYTES] = [0; IMEM_BYTES];
const _: () = assert!(CLS_BYTES <= IMEM_BYTES);

/// `mem`'s bytes, or `size` zeros while it is not allocated.
fn allocated_or_zeros(mem: &[u8], size: usize) -> &[u8] {
    if mem.is_empty() {
        ZEROS.get(..size).unwrap_or_default()
    } else {
        mem
    }
}

/// `mem`, allocated to `size` zeros first if it is not yet.
fn allocated(mem: &mut Vec<u8>, size: usize) -> &mut [u8] {
    if mem.is_empty() {
        mem.resize(size, 0);
    }
    mem
}

/// vm-core's seed scramble (splitmix64 finaliser), so the same seed gives the same stream.
fn scramble(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SharedMem {
    /// Zeroed memories; random numbers seeded like vm-core's `VmConfig::prandom_seed`;
    /// per-CPU maps use copy `cpu`.
    pub fn new(prandom_seed: u64, cpu: u32) -> SharedMem {
        SharedMem {
            cls: Vec::new(),
            imem: Vec::new(),
            rng: scramble(prandom_seed) | 1,
            cpu,
            scratch: Vec::with_capacity(4096),
        }
    }

    /// The CLS bytes.
    pub fn cls(&self) -> &[u8] {
        allocated_or_zeros(&self.cls, CLS_BYTES)
    }

    /// The IMEM scratch bytes.
    pub fn imem(&self) -> &[u8] {
        allocated_or_zeros(&self.imem, IMEM_BYTES)
    }

    /// Restarts the random stream as if created with `prandom_seed = seed` (vm-core's
    /// `Vm::reseed_prandom` gives the same stream).
    pub fn reseed_prandom(&mut self, seed: u64) {
        self.rng = scramble(seed) | 1;
    }

    /// The random generator's state, so a caller can keep one stream per hardware thread.
    pub fn prandom_state(&self) -> u64 {
        self.rng
    }

    /// Restores a state from [`SharedMem::prandom_state`], exactly: the stream goes on as if
    /// it had never been interrupted. (It used to force the state odd, as seeding does; but a
    /// state after a draw is as often even as odd, so every restore of an even state changed
    /// all later draws — a packet that drew, swapped out and drew again got a wrong second
    /// number whenever the timing model stepped it.) Only 0, which a state read from a stream
    /// never is and which xorshift would keep for ever, is replaced.
    pub fn set_prandom_state(&mut self, state: u64) {
        self.rng = if state == 0 { 1 } else { state };
    }

    /// Next pseudo-random u32 (xorshift64*, the same generator as vm-core's interpreter).
    pub(super) fn prandom(&mut self) -> u32 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }
}

/// `addr .. addr + len` as a range inside `size` bytes.
#[inline]
pub(super) fn range(addr: u64, len: u32, size: usize) -> Option<std::ops::Range<usize>> {
    let end = addr.checked_add(u64::from(len))?;
    if end > size as u64 {
        return None;
    }
    Some(addr as usize..end as usize)
}

/// Splits an EMEM map address into (fd, slab offset).
#[inline]
pub(super) fn emem_map(addr: u64) -> Option<(usize, u64)> {
    let rel = addr.checked_sub(EMEM_MAP_BASE)?;
    Some((
        (rel >> EMEM_MAP_FD_SHIFT) as usize,
        rel & ((1 << EMEM_MAP_FD_SHIFT) - 1),
    ))
}

/// The bytes a command addresses. `pkt` is the running thread's packet buffer, at CTM
/// address `pkt_base`.
#[allow(clippy::too_many_arguments)]
pub(super) fn region<'a>(
    target: MemTarget,
    addr: u64,
    len: u32,
    write: bool,
    pkt: &'a mut [u8],
    pkt_base: u32,
    shared: &'a mut SharedMem,
    maps: &'a mut MapSet,
) -> Result<&'a mut [u8], ExecErrorKind> {
    // Built only on failure: the error is four fields, the success path runs per command.
    let bad = || ExecErrorKind::BadAddress {
        space: Space::Mem(target),
        addr,
        len,
        write,
    };
    match target {
        MemTarget::Ctm => {
            let off = addr.checked_sub(u64::from(pkt_base)).ok_or_else(bad)?;
            let r = range(off, len, PKT_BUF_BYTES as usize).ok_or_else(bad)?;
            Ok(&mut pkt[r])
        }
        MemTarget::Cls => {
            let r = range(addr, len, CLS_BYTES).ok_or_else(bad)?;
            Ok(&mut allocated(&mut shared.cls, CLS_BYTES)[r])
        }
        MemTarget::Imem => {
            let r = range(addr, len, IMEM_BYTES).ok_or_else(bad)?;
            Ok(&mut allocated(&mut shared.imem, IMEM_BYTES)[r])
        }
        MemTarget::Emem => emem_region(maps, addr, len, write).ok_or_else(bad),
    }
}

/// The bytes of a map value slab an EMEM command addresses (`None`: no such map, a write to
/// a map programs may not write, or outside the slab). Shared by [`region`] and the fast
/// path's EMEM commands, so both refuse exactly the same accesses.
#[inline(always)]
pub(super) fn emem_region(
    maps: &mut MapSet,
    addr: u64,
    len: u32,
    write: bool,
) -> Option<&mut [u8]> {
    let (fd, off) = emem_map(addr)?;
    let map = maps.get_mut(fd)?;
    if write && map.def().flags & BPF_F_RDONLY_PROG != 0 {
        return None;
    }
    let slab = map.slab_mut();
    let r = range(off, len, slab.len())?;
    slab.get_mut(r)
}

/// [`emem_region`] of a write to an array's or a hash map's values: `Some` of the same
/// bytes, or `None` when it cannot tell (another kind of map, or any refusal), which the
/// caller then leaves to [`emem_region`]. For the native blocks' atomic add
/// (`jit::x64_call`), whose path then makes no call (see `Map::value_slab_mut`).
#[inline(always)]
pub(super) fn emem_value_region(maps: &mut MapSet, addr: u64, len: u32) -> Option<&mut [u8]> {
    let (fd, off) = emem_map(addr)?;
    let map = maps.get_mut(fd)?;
    if map.def().flags & BPF_F_RDONLY_PROG != 0 {
        return None;
    }
    let slab = map.value_slab_mut()?;
    let r = range(off, len, slab.len())?;
    slab.get_mut(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages come back zeroed from a used local memory and packet buffer (only what their
    /// marks say was written is cleared) and are taken again; the pool keeps at most
    /// `PagePool::MAX`.
    #[test]
    fn pages_come_back_zeroed_and_are_reused() {
        let pool = PagePool::default();
        let mut pages = pool.take(2).into_iter();
        let (Some(a), Some(b)) = (pages.next(), pages.next()) else {
            panic!("two pages");
        };
        let mut lmem = Lmem::with_page(a);
        lmem.set_word(8, 0xdead_beef);
        lmem.set_words(4000, [1, 2, 3, 4]);
        let mut th = super::super::Thread::with_page(1, b);
        th.start(&mut lmem, &[0xab; 100]).expect("loads");
        th.start(&mut lmem, &[0xcd; 60]).expect("loads");
        // The packet written into its headroom and past its end, marked as commands mark.
        th.pkt[10] = 7;
        th.pkt[super::super::PKT_HEADROOM as usize + 500] = 9;
        let (flag, h) = (
            super::super::thread::HEADROOM_DIRTY,
            super::super::PKT_HEADROOM,
        );
        th.dirty = flag | (h + 501);
        let lmem_page = lmem.into_page();
        let pkt_page = th.into_page();
        assert!(lmem_page.0.iter().chain(pkt_page.0.iter()).all(|&x| x == 0));
        let addrs = [&*lmem_page.0 as *const _, &*pkt_page.0 as *const _];
        pool.give([lmem_page, pkt_page]);
        let again = pool.take(3);
        assert_eq!(again.len(), 3);
        assert!(again.iter().all(|p| p.0.iter().all(|&x| x == 0)));
        let reused = again
            .iter()
            .filter(|p| addrs.contains(&(&*p.0 as *const _)))
            .count();
        assert_eq!(reused, 2);
        pool.give((0..PagePool::MAX + 5).map(|_| Page::zeroed()));
        assert_eq!(pool.take(PagePool::MAX + 5).len(), PagePool::MAX + 5);
        assert!(pool.free.lock().expect("pool").is_empty());
    }

    /// CLS and IMEM cost nothing until a command addresses them (the simulator's set-up
    /// makes one `SharedMem` per ME), read as zeros, and keep what is written once they exist;
    /// out-of-range addresses still fail without allocating.
    #[test]
    fn cls_and_imem_are_allocated_on_first_use() {
        let mut shared = SharedMem::new(1, 0);
        let mut maps = MapSet::default();
        let mut pkt = [0u8; 8];
        assert_eq!((shared.cls.capacity(), shared.imem.capacity()), (0, 0));
        assert_eq!(shared.cls().len(), CLS_BYTES);
        assert_eq!(shared.imem().len(), IMEM_BYTES);
        assert!(shared.cls().iter().chain(shared.imem()).all(|&b| b == 0));
        let far = IMEM_BYTES as u64;
        for target in [MemTarget::Cls, MemTarget::Imem] {
            let r = region(target, far, 4, true, &mut pkt, 0, &mut shared, &mut maps);
            assert!(r.is_err(), "{target:?}");
        }
        assert_eq!((shared.cls.capacity(), shared.imem.capacity()), (0, 0));
        let r = region(
            MemTarget::Cls,
            16,
            4,
            true,
            &mut pkt,
            0,
            &mut shared,
            &mut maps,
        );
        r.expect("in range").copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(shared.cls().get(16..20), Some(&[1u8, 2, 3, 4][..]));
        assert_eq!(shared.cls().len(), CLS_BYTES);
        assert_eq!(shared.imem.capacity(), 0, "IMEM untouched");
    }

    #[test]
    fn ranges_and_map_addresses() {
        assert_eq!(range(4092, 4, 4096), Some(4092..4096));
        assert_eq!(range(4093, 4, 4096), None);
        assert_eq!(range(u64::MAX, 4, 4096), None);
        assert_eq!(emem_map(EMEM_MAP_BASE + (3 << 28) + 16), Some((3, 16)));
        assert_eq!(emem_map(16), None);
        let mut l = Lmem::new();
        l.set_word(8, 0x1234_5678);
        assert_eq!(l.word(8), 0x1234_5678);
        assert_eq!(l.read_u32(8), Some(0x1234_5678));
        assert_eq!(l.bytes()[8], 0x78);
        assert_eq!(l.read_u32(4094), None);
        assert!(l.slice(4090, 8).is_err());
    }

    /// Local memory with its dirty chunks behaves as plain bytes: every sequence of word
    /// stores, raw writes and (aligned or not, in range or not) zeroings leaves the same
    /// bytes as a plain array, and a clean chunk is always zero.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn dirty_chunks_zero_exactly() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let op = (0u8..6, 0usize..4200, 0usize..1200, any::<u32>());
        let mut runner = TestRunner::new(Config::with_cases(2000));
        runner
            .run(&prop::collection::vec(op, 1..60), |ops| {
                let mut l = Lmem::new();
                let mut model = vec![0u8; LMEM_BYTES];
                for (k, a, len, v) in ops {
                    match k {
                        0 => {
                            l.set_word(a, v);
                            if let Some(b) = model.get_mut(a..a + 4) {
                                b.copy_from_slice(&v.to_le_bytes());
                            }
                        }
                        1 => {
                            l.set_words(a, [v, !v, v ^ 0x5a5a, 7]);
                            if let Some(b) = model.get_mut(a..a + 16) {
                                for (i, w) in [v, !v, v ^ 0x5a5a, 7].iter().enumerate() {
                                    b[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
                                }
                            }
                        }
                        2 => {
                            if let Some(b) = l.bytes_mut().get_mut(a) {
                                *b = v as u8;
                                model[a] = v as u8;
                            }
                        }
                        3 => {
                            // Aligned, as the stacks: `len` a multiple of the chunk.
                            let (a, len) = (a & !(CHUNK - 1), len & !(CHUNK - 1));
                            l.zero(a, len);
                            let end = (a + len).min(LMEM_BYTES);
                            model[a.min(end)..end].fill(0);
                        }
                        4 => {
                            // A packet start: a chunk-aligned stack and a packet vector
                            // (aligned to its size, inside LMEM).
                            let (s, n) = (a & !(CHUNK - 1), len & !(CHUNK - 1));
                            let a = a & (LMEM_BYTES - 16);
                            let (stack, vec) = (Lmem::whole_chunks(s, n), Lmem::end_chunks(a, 16));
                            if stack != 0 {
                                let w = [v, !v, v ^ 0x5a5a, 7];
                                l.start_packet(stack, vec, a, w);
                                model[s..s + n].fill(0);
                                if let Some(b) = model.get_mut(a..a + 16) {
                                    for (i, w) in w.iter().enumerate() {
                                        b[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
                                    }
                                }
                            }
                        }
                        _ => {
                            l.zero(a, len);
                            let end = (a + len).min(LMEM_BYTES);
                            model[a.min(end)..end].fill(0);
                        }
                    }
                    prop_assert_eq!(l.bytes(), &model[..]);
                    for c in 0..64 {
                        let chunk = &model[c * CHUNK..(c + 1) * CHUNK];
                        prop_assert!(l.dirty & (1 << c) != 0 || chunk.iter().all(|&b| b == 0));
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    /// Saving and restoring the random state between any two draws (as nic-sim does around
    /// every resume) leaves the stream unchanged, whatever the state's parity.
    #[test]
    fn prandom_state_restores_exactly() {
        let mut even = 0;
        for seed in 0..200u64 {
            let mut plain = SharedMem::new(seed, 0);
            let mut saved = SharedMem::new(seed, 0);
            for _ in 0..20 {
                let state = saved.prandom_state();
                even += usize::from(state.is_multiple_of(2));
                let mut other = SharedMem::new(seed ^ 0xdead, 0);
                other.set_prandom_state(state);
                assert_eq!(plain.prandom(), other.prandom(), "seed {seed}");
                saved.set_prandom_state(other.prandom_state());
            }
        }
        assert!(
            even > 100,
            "even states occur ({even}), so the test covers them"
        );
    }
}
