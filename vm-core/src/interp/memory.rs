//! The program's address space: a small table of regions, each a window of host memory.
//!
//! Why this design: a BPF program sees 64-bit pointers, and a reference interpreter must both
//! check every access (never undefined behaviour, always a fault with the pc) and give
//! *deterministic* pointer values (they can end up in r0). A virtual address here is
//! `(region_id << 32) | offset`; region ids start at [`REGION_BASE`] so that null and every
//! small scalar fall outside all regions. Translating is one table lookup by the high half
//! and one window check on the low half, which keeps loads and stores cheap.
//!
//! Each region has a *read* window and a *write* window (`lo..hi` in region offsets), so a
//! read-only map is just an empty write window, and the packet's valid part
//! (`data_meta..data_end`) can move when helpers adjust the head, tail or metadata without
//! changing the addresses of the bytes (as in the kernel, where the buffer stays put).
//! The context region has empty windows: every ctx access takes the slow path, which knows
//! the kernel's field rewrites.

use super::fault::{Access, FaultKind, Region};

/// Region id of table slot 0. Addresses below `REGION_BASE << 32` are never valid.
pub(crate) const REGION_BASE: u64 = 1;
/// Table slot of call frame 0's stack; frame `d` uses `STACK0 + d`.
pub(crate) const STACK0: usize = 0;
/// Maximum call depth (the kernel's `MAX_CALL_FRAMES`).
pub(crate) const MAX_FRAMES: usize = 8;
/// Bytes of stack per frame (`MAX_BPF_STACK`).
pub(crate) const STACK_SIZE: usize = 512;
/// Table slot of the context.
pub(crate) const CTX: usize = 8;
/// Table slot of the packet buffer.
pub(crate) const PACKET: usize = 9;
/// Table slot of the `mem` input.
pub(crate) const MEM: usize = 10;
/// Table slot whose addresses are map handles (`offset` = map index).
pub(crate) const MAP_HANDLE: usize = 11;
/// Table slot whose addresses are subprogram entry points (`offset` = op index).
pub(crate) const CODE: usize = 12;
/// Table slot of map 0's value slab; map `i` uses `FIRST_MAP + i`.
pub(crate) const FIRST_MAP: usize = 13;

/// The virtual address of `offset` in table slot `slot`.
#[inline(always)]
pub(crate) const fn vaddr(slot: usize, offset: u32) -> u64 {
    ((slot as u64 + REGION_BASE) << 32) | offset as u64
}

/// The table slot and offset an address falls in (slot may be out of the table).
#[inline(always)]
pub(crate) const fn split(addr: u64) -> (usize, u32) {
    (
        ((addr >> 32).wrapping_sub(REGION_BASE)) as usize,
        addr as u32,
    )
}

/// What a table slot holds, for messages and for the ctx slow path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Unused,
    Stack(u8),
    Ctx,
    Packet,
    Mem,
    Map(u32),
    MapHandle,
    Code,
    Ringbuf(u32),
}

/// A window of host memory: valid offsets are `lo..hi`; offset `o` lives at `base + o`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    base: *mut u8,
    lo: u32,
    hi: u32,
}

impl Window {
    /// A window nothing can access.
    pub(crate) const EMPTY: Window = Window {
        base: std::ptr::null_mut(),
        lo: 0,
        hi: 0,
    };

    /// The whole of `buf`.
    pub(crate) fn whole(buf: &mut [u8]) -> Window {
        Window {
            base: buf.as_mut_ptr(),
            lo: 0,
            hi: buf.len() as u32,
        }
    }

    /// The part `lo..hi` of the allocation starting at `base` of `cap` bytes.
    ///
    /// # Safety
    /// `base..base+cap` must be one live allocation for as long as the window is used, and
    /// no reference to it may be used while the window is (all access goes through raw
    /// pointers). `lo <= hi <= cap` is checked here.
    pub(crate) unsafe fn part(base: *mut u8, cap: usize, lo: usize, hi: usize) -> Window {
        if lo <= hi && hi <= cap && hi <= u32::MAX as usize {
            Window {
                base,
                lo: lo as u32,
                hi: hi as u32,
            }
        } else {
            Window::EMPTY
        }
    }

    /// Whether `other` is the same window (same base and bounds).
    #[inline]
    fn same(&self, other: &Window) -> bool {
        self.base == other.base && self.lo == other.lo && self.hi == other.hi
    }

    /// Host pointer for `size` bytes at `off`, if they lie inside the window.
    #[inline(always)]
    fn at(&self, off: u32, size: u32) -> Option<*mut u8> {
        if off >= self.lo && off as u64 + size as u64 <= self.hi as u64 {
            // Stays inside the allocation: lo <= off and off + size <= hi <= cap.
            Some(self.base.wrapping_add(off as usize))
        } else {
            None
        }
    }
}

/// The run loop's handle on the region table: raw pointers to the two window arrays, so
/// that stores into program memory (raw pointer writes) cannot make the compiler reload the
/// table's location after every store. Valid until the table is grown ([`Memory::push`]);
/// the run loop takes a fresh view after every change to the table ([`Memory::changed`]).
///
/// It also carries the windows of one *hot* slot (the packet, or the `mem` input) in a form
/// checked with one subtraction and one comparison on the whole 64-bit address (see [`Hot`]),
/// instead of splitting the address, comparing the slot and checking both window ends; the
/// data load is then one dependent load fewer behind the address computation (parsers chain
/// such loads). Addresses outside the hot window fall through to the table, which holds the
/// hot slot too, so the result is the same either way.
#[derive(Clone, Copy)]
pub(crate) struct View {
    rd: *const Window,
    wr: *const Window,
    len: usize,
    hot_rd: Hot,
    hot_wr: Hot,
}

/// A window in pre-checked form: `addr` is inside with `N` bytes to spare iff
/// `addr - lo < fit[log2 N]` (64-bit wrapping subtraction: an address below `lo`, in another
/// slot, or far above all give a difference at or beyond the window's length).
#[derive(Clone, Copy)]
struct Hot {
    /// Virtual address of the window's first byte.
    lo: u64,
    /// Host address of that byte.
    base: *mut u8,
    /// Per access size 1, 2, 4, 8: how many start offsets leave room for it (0: none).
    fit: [u64; 4],
}

impl Hot {
    const NONE: Hot = Hot {
        lo: 0,
        base: std::ptr::null_mut(),
        fit: [0; 4],
    };

    fn of(slot: usize, w: Window) -> Hot {
        if w.base.is_null() || slot >= (u32::MAX as usize) {
            return Hot::NONE;
        }
        let len = u64::from(w.hi.saturating_sub(w.lo));
        Hot {
            lo: vaddr(slot, w.lo),
            base: w.base.wrapping_add(w.lo as usize),
            fit: [1u64, 2, 4, 8].map(|n| (len + 1).saturating_sub(n)),
        }
    }

    /// Host pointer for `size` bytes at `addr`, if inside.
    #[inline(always)]
    fn at(&self, addr: u64, size: u32) -> Option<*mut u8> {
        let i = match size {
            1 => 0,
            2 => 1,
            4 => 2,
            8 => 3,
            _ => return None,
        };
        let d = addr.wrapping_sub(self.lo);
        if d < self.fit[i] {
            // d < len - size + 1 <= len: inside the window, hence inside its allocation.
            Some(self.base.wrapping_add(d as usize))
        } else {
            None
        }
    }
}

impl View {
    /// A view of no table (before the first run).
    pub(crate) const EMPTY: View = View {
        rd: std::ptr::null(),
        wr: std::ptr::null(),
        len: 0,
        hot_rd: Hot::NONE,
        hot_wr: Hot::NONE,
    };

    /// Host pointer for reading `size` bytes at `addr`.
    #[inline(always)]
    pub(crate) fn rd(&self, addr: u64, size: u32) -> Option<*const u8> {
        if let Some(p) = self.hot_rd.at(addr, size) {
            return Some(p as *const u8);
        }
        let (slot, off) = split(addr);
        if slot < self.len {
            // SAFETY: slot < len, and `rd` points to a live array of at least `len` windows
            // (the view was taken after the last change to the table's length).
            let w = unsafe { &*self.rd.add(slot) };
            w.at(off, size).map(|p| p as *const u8)
        } else {
            None
        }
    }

    /// Host pointer for writing `size` bytes at `addr`.
    #[inline(always)]
    pub(crate) fn wr(&self, addr: u64, size: u32) -> Option<*mut u8> {
        if let Some(p) = self.hot_wr.at(addr, size) {
            return Some(p);
        }
        let (slot, off) = split(addr);
        if slot < self.len {
            // SAFETY: as in `rd`.
            let w = unsafe { &*self.wr.add(slot) };
            w.at(off, size)
        } else {
            None
        }
    }

    /// Moves the hot read window to `base` (the same bounds, a window starting at offset 0),
    /// as [`Memory::rebase_rd_quiet`] does for the table.
    #[inline(always)]
    pub(crate) fn rebase_hot_rd(&mut self, base: *mut u8) {
        // An empty hot window (`Hot::NONE`) has no start offset that fits, whatever its base.
        self.hot_rd.base = base;
    }

    /// As [`View::load`], but only from the hot window: `None` for any other address, which
    /// the caller then retries with [`View::load`] out of line. Why a separate form: with
    /// both paths in one handler, the two ways to a loaded value meet again, which costs the
    /// hot path a taken jump and a register copy (measured: two instructions per load); a
    /// handler that only checks the hot window ends in a conditional tail call instead.
    #[inline(always)]
    pub(crate) fn load_hot<const N: usize>(&self, addr: u64) -> Option<u64> {
        let p = self.hot_rd.at(addr, N as u32)?;
        let mut b = [0u8; 8];
        // SAFETY: N readable bytes at `p` (checked by `Hot::at`); `b` holds 8 >= N bytes.
        unsafe { std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), N) };
        Some(u64::from_le_bytes(b))
    }

    /// Reads `N` (1, 2, 4, 8) bytes little-endian, zero-extended.
    #[inline(always)]
    pub(crate) fn load<const N: usize>(&self, addr: u64) -> Option<u64> {
        let p = self.rd(addr, N as u32)?;
        let mut b = [0u8; 8];
        // SAFETY: N readable bytes at `p` (checked by `rd`); `b` holds 8 >= N bytes.
        unsafe { std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), N) };
        Some(u64::from_le_bytes(b))
    }

    /// Writes the low `N` bytes of `v` little-endian.
    #[inline(always)]
    pub(crate) fn store<const N: usize>(&self, addr: u64, v: u64) -> Option<()> {
        let p = self.wr(addr, N as u32)?;
        let b = v.to_le_bytes();
        // SAFETY: N writable bytes at `p` (checked by `wr`).
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), p, N) };
        Some(())
    }
}

/// The region table of one Vm. Raw pointers in it are refreshed at the start of every run
/// (and after helpers that may move map memory), and only dereferenced during a run.
///
/// Stack frames are readable in full, but each frame's *write* window starts at a watermark
/// that only ever moves down: the lowest offset any write through a translated address (a
/// store via a copy of r10, an atomic, a helper filling a buffer) has reached in this Vm's
/// life. A write below it misses the window, lowers the watermark ([`Memory::wr_open`]) and
/// proceeds. Together with the compile-time bound of direct `r10 + constant` stores, this tells
/// the Vm exactly which bytes may be non-zero after a run, so it re-zeroes only those instead
/// of 8 × 512 bytes (the stack must read as zeros at the start of every run, for determinism).
pub(crate) struct Memory {
    rd: Vec<Window>,
    wr: Vec<Window>,
    kind: Vec<Kind>,
    /// Offset reported as 0 in messages (512 for stacks: r10-relative; `data` for packets).
    origin: Vec<u32>,
    /// Start of the `MAX_FRAMES * STACK_SIZE` stack buffer (null until [`Memory::map_stacks`]).
    stack: *mut u8,
    /// Per frame: the write window's watermark (`STACK_SIZE`: never written through a
    /// translated address).
    stack_lo: [u32; MAX_FRAMES],
    /// 1 + the highest frame whose watermark is below `STACK_SIZE` (0: none).
    stack_frames: usize,
    /// The slot views copy (see [`View`]).
    hot: usize,
    /// Whether a window, an origin or the table's length changed since the last
    /// [`Memory::changed`]: views taken before then are stale. Lets a run (and a helper
    /// call) reuse the view it has instead of rebuilding it when nothing moved.
    changed: bool,
}

// SAFETY: the raw pointers only point into buffers owned by the same `Vm` (stack, packet,
// input copy, map slabs), are refreshed from `&mut` borrows at the start of each run, and are
// never dereferenced outside `Vm::run`, which holds `&mut Vm`. Moving the Vm to another
// thread moves the owners of that memory with it.
unsafe impl Send for Memory {}

impl Memory {
    /// A table with the fixed slots and `nmaps` map slots, all empty.
    pub(crate) fn new(nmaps: usize) -> Memory {
        let n = FIRST_MAP + nmaps;
        let mut kind = vec![Kind::Unused; n];
        for (d, k) in kind.iter_mut().enumerate().take(MAX_FRAMES) {
            *k = Kind::Stack(d as u8);
        }
        kind[CTX] = Kind::Ctx;
        kind[PACKET] = Kind::Packet;
        kind[MEM] = Kind::Mem;
        kind[MAP_HANDLE] = Kind::MapHandle;
        kind[CODE] = Kind::Code;
        for (i, k) in kind.iter_mut().enumerate().skip(FIRST_MAP) {
            *k = Kind::Map((i - FIRST_MAP) as u32);
        }
        let mut origin = vec![0; n];
        for o in origin.iter_mut().take(MAX_FRAMES) {
            *o = STACK_SIZE as u32;
        }
        Memory {
            rd: vec![Window::EMPTY; n],
            wr: vec![Window::EMPTY; n],
            kind,
            origin,
            stack: std::ptr::null_mut(),
            stack_lo: [STACK_SIZE as u32; MAX_FRAMES],
            stack_frames: 0,
            hot: usize::MAX,
            changed: true,
        }
    }

    /// Makes `slot` the one views keep a copy of (see [`View`]).
    pub(crate) fn set_hot(&mut self, slot: usize) {
        self.hot = slot;
        self.changed = true;
    }

    /// Whether views taken before this call may be stale (see `changed`); resets the flag.
    #[inline]
    pub(crate) fn changed(&mut self) -> bool {
        std::mem::replace(&mut self.changed, false)
    }

    /// Maps the stack frames of the buffer at `base` (`MAX_FRAMES * STACK_SIZE` bytes, all
    /// zero): readable in full, writable above each frame's watermark.
    ///
    /// # Safety
    /// `base` must point to a live allocation of `MAX_FRAMES * STACK_SIZE` bytes that outlives
    /// every use of the table and is accessed only through raw pointers.
    pub(crate) unsafe fn map_stacks(&mut self, base: *mut u8) {
        self.stack = base;
        for d in 0..MAX_FRAMES {
            // SAFETY: frame d is bytes d*512..(d+1)*512 of the buffer (caller's contract).
            let (r, w) = unsafe {
                let b = base.add(d * STACK_SIZE);
                (
                    Window::part(b, STACK_SIZE, 0, STACK_SIZE),
                    Window::part(b, STACK_SIZE, self.stack_lo[d] as usize, STACK_SIZE),
                )
            };
            self.set(STACK0 + d, r, w);
        }
    }

    /// Per frame, the lowest offset written through a translated address so far
    /// (`STACK_SIZE`: none), and how many leading frames can have such writes.
    pub(crate) fn stack_watermarks(&self) -> (&[u32; MAX_FRAMES], usize) {
        (&self.stack_lo, self.stack_frames)
    }

    /// As [`Memory::wr`], but a write to stack bytes below their frame's watermark lowers it
    /// (to a multiple of 64, so that a growing buffer does not miss every time) and succeeds.
    pub(crate) fn wr_open(&mut self, addr: u64, size: u32) -> Option<*mut u8> {
        if let Some(p) = self.wr(addr, size) {
            return Some(p);
        }
        let (slot, off) = split(addr);
        let d = slot.checked_sub(STACK0).filter(|&d| d < MAX_FRAMES)?;
        if self.stack.is_null() || off as u64 + size as u64 > STACK_SIZE as u64 {
            return None;
        }
        let lo = off & !63;
        if lo < self.stack_lo[d] {
            self.stack_lo[d] = lo;
            self.stack_frames = self.stack_frames.max(d + 1);
            // SAFETY: as in `map_stacks`, whose contract the Vm upheld when it set `stack`.
            let w = unsafe {
                Window::part(
                    self.stack.add(d * STACK_SIZE),
                    STACK_SIZE,
                    lo as usize,
                    STACK_SIZE,
                )
            };
            if let Some(slot) = self.wr.get_mut(STACK0 + d) {
                *slot = w;
                self.changed = true;
            }
        }
        self.wr(addr, size)
    }

    /// Sets both windows of `slot`.
    pub(crate) fn set(&mut self, slot: usize, rd: Window, wr: Window) {
        if let (Some(r), Some(w)) = (self.rd.get_mut(slot), self.wr.get_mut(slot))
            && !(r.same(&rd) && w.same(&wr))
        {
            *r = rd;
            *w = wr;
            self.changed = true;
        }
    }

    /// Moves `slot`'s windows to a new base address of the same buffer, keeping their bounds
    /// (re-deriving a pointer after its owner was borrowed mutably).
    pub(crate) fn rebase(&mut self, slot: usize, base: *mut u8) {
        if let (Some(r), Some(w)) = (self.rd.get_mut(slot), self.wr.get_mut(slot))
            && (r.base != base || w.base != base)
        {
            r.base = base;
            w.base = base;
            self.changed = true;
        }
    }

    /// Moves `slot`'s read window to `base` without marking the table changed: for a caller
    /// that moves the hot window of its view the same way ([`View::rebase_hot_rd`]), so that
    /// both keep answering alike. (An empty window has no offset inside it, whatever its base.)
    ///
    /// # Safety
    /// `slot` must be one of the fixed slots (below [`FIRST_MAP`]: the table never has fewer,
    /// see [`Memory::truncate`]), the window must start at offset 0, and as
    /// [`Window::part`]: `base` must start an allocation of at least the window's `hi` bytes,
    /// live for as long as the window is used.
    #[inline(always)]
    pub(crate) unsafe fn rebase_rd_quiet(&mut self, slot: usize, base: *mut u8) {
        debug_assert!(slot < FIRST_MAP && slot < self.rd.len());
        // SAFETY: `slot < FIRST_MAP <= self.rd.len()` (caller's contract and the table's
        // invariant); checked here only in debug builds because every run pays for it.
        unsafe { self.rd.get_unchecked_mut(slot) }.base = base;
    }

    /// Sets the offset messages report as 0 for `slot`.
    pub(crate) fn set_origin(&mut self, slot: usize, origin: u32) {
        if let Some(o) = self.origin.get_mut(slot)
            && *o != origin
        {
            *o = origin;
            self.changed = true;
        }
    }

    /// Appends a slot (ring buffer records) and returns it.
    pub(crate) fn push(&mut self, kind: Kind, rd: Window, wr: Window) -> usize {
        self.rd.push(rd);
        self.wr.push(wr);
        self.kind.push(kind);
        self.origin.push(0);
        self.changed = true;
        self.rd.len() - 1
    }

    /// Drops slots appended with [`Memory::push`] beyond the first `len` (never the fixed
    /// slots below [`FIRST_MAP`]: [`Memory::rebase_rd_quiet`] relies on them).
    pub(crate) fn truncate(&mut self, len: usize) {
        let len = len.max(FIRST_MAP);
        if self.rd.len() > len {
            self.changed = true;
        }
        self.rd.truncate(len);
        self.wr.truncate(len);
        self.kind.truncate(len);
        self.origin.truncate(len);
    }

    /// The read window `(lo, hi)` of `slot`, unless it is [`Window::EMPTY`].
    pub(crate) fn bounds(&self, slot: usize) -> Option<(u32, u32)> {
        self.rd
            .get(slot)
            .filter(|w| !w.base.is_null())
            .map(|w| (w.lo, w.hi))
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> usize {
        self.rd.len()
    }

    /// What `slot` holds.
    pub(crate) fn kind(&self, slot: usize) -> Kind {
        self.kind.get(slot).copied().unwrap_or(Kind::Unused)
    }

    /// A copy of the table's location for the run loop (see [`View`]).
    pub(crate) fn view(&self) -> View {
        let hot = |t: &[Window]| t.get(self.hot).map_or(Hot::NONE, |&w| Hot::of(self.hot, w));
        View {
            rd: self.rd.as_ptr(),
            wr: self.wr.as_ptr(),
            len: self.rd.len().min(self.wr.len()),
            hot_rd: hot(&self.rd),
            hot_wr: hot(&self.wr),
        }
    }

    /// Host pointer for reading `size` bytes at `addr`.
    #[inline(always)]
    pub(crate) fn rd(&self, addr: u64, size: u32) -> Option<*const u8> {
        let (slot, off) = split(addr);
        match self.rd.get(slot) {
            Some(w) => w.at(off, size).map(|p| p as *const u8),
            None => None,
        }
    }

    /// Host pointer for writing `size` bytes at `addr`.
    #[inline(always)]
    pub(crate) fn wr(&self, addr: u64, size: u32) -> Option<*mut u8> {
        let (slot, off) = split(addr);
        match self.wr.get(slot) {
            Some(w) => w.at(off, size),
            None => None,
        }
    }

    /// Copies `out.len()` bytes at `addr` into `out`, or explains why not.
    pub(crate) fn copy_in(&self, addr: u64, out: &mut [u8]) -> Result<(), FaultKind> {
        if out.is_empty() {
            return Ok(());
        }
        let size = out.len() as u32;
        match self.rd(addr, size) {
            // SAFETY: `size` readable bytes at `p`; `out` is a distinct Rust buffer.
            Some(p) => {
                unsafe { std::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), out.len()) };
                Ok(())
            }
            None => Err(self.fault(addr, size, Access::Read)),
        }
    }

    /// Copies `data` to `addr`, or explains why not.
    pub(crate) fn copy_out(&mut self, addr: u64, data: &[u8]) -> Result<(), FaultKind> {
        if data.is_empty() {
            return Ok(());
        }
        let size = data.len() as u32;
        match self.wr_open(addr, size) {
            // SAFETY: `size` writable bytes at `p`; `data` is a distinct Rust buffer.
            Some(p) => {
                unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
                Ok(())
            }
            None => Err(self.fault(addr, size, Access::Write)),
        }
    }

    /// Fills `len` bytes at `addr` with zeros (helpers that clear their output on error).
    pub(crate) fn zero(&mut self, addr: u64, len: u32) -> Result<(), FaultKind> {
        if len == 0 {
            return Ok(());
        }
        match self.wr_open(addr, len) {
            // SAFETY: `len` writable bytes at `p`.
            Some(p) => {
                unsafe { std::ptr::write_bytes(p, 0, len as usize) };
                Ok(())
            }
            None => Err(self.fault(addr, len, Access::Write)),
        }
    }

    /// Explains why an access failed (slow path only).
    #[cold]
    pub(crate) fn fault(&self, addr: u64, size: u32, access: Access) -> FaultKind {
        let (mut slot, off) = split(addr);
        let mut off = off as i64;
        // A small negative offset from a region start lands at the top of the slot below;
        // report it against the region the program was pointing into.
        if off >= 1 << 31 && self.kind(slot.wrapping_add(1)) != Kind::Unused {
            slot = slot.wrapping_add(1);
            off -= 1 << 32;
        }
        let region = match self.kind(slot) {
            Kind::Unused => return FaultKind::BadAddress { access, size, addr },
            Kind::Stack(frame) => Region::Stack { frame },
            Kind::Ctx => Region::Ctx,
            Kind::Packet => Region::Packet,
            Kind::Mem => Region::Mem,
            Kind::Map(index) => Region::Map {
                index,
                name: String::new(),
            },
            Kind::MapHandle => Region::MapHandle,
            Kind::Code => Region::Code,
            Kind::Ringbuf(map) => Region::RingbufRecord { map },
        };
        let origin = self.origin[slot] as i64;
        let offset = off - origin;
        let rd = self.rd[slot];
        if access == Access::Write
            && (0..1 << 32).contains(&off)
            && rd.at(off as u32, size).is_some()
        {
            return FaultKind::ReadOnly {
                size,
                region,
                offset,
            };
        }
        let len = (rd.hi as i64 - origin.max(rd.lo as i64)).max(0) as u64;
        let len = match region {
            Region::Stack { .. } => STACK_SIZE as u64,
            _ => len,
        };
        FaultKind::OutOfBounds {
            access,
            size,
            region,
            offset,
            len,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn translate_checks_both_ends() {
        let mut buf = vec![0u8; 64];
        let mut m = Memory::new(0);
        // SAFETY: buf outlives every use of the table in this test.
        let w = unsafe { Window::part(buf.as_mut_ptr(), buf.len(), 8, 40) };
        m.set(PACKET, w, w);
        m.set_origin(PACKET, 8);
        let v = m.view();
        assert!(v.store::<4>(vaddr(PACKET, 8), 0x1234_5678).is_some());
        assert_eq!(v.load::<4>(vaddr(PACKET, 8)), Some(0x1234_5678));
        assert_eq!(v.load::<2>(vaddr(PACKET, 9)), Some(0x3456));
        assert!(v.load::<1>(vaddr(PACKET, 7)).is_none());
        assert!(v.load::<8>(vaddr(PACKET, 33)).is_none());
        assert!(v.load::<8>(vaddr(PACKET, 32)).is_some());
        assert!(v.load::<1>(0).is_none());
        assert!(v.load::<1>(u64::MAX).is_none());
        assert_eq!(
            m.fault(vaddr(PACKET, 62 + 8), 4, Access::Read),
            FaultKind::OutOfBounds {
                access: Access::Read,
                size: 4,
                region: Region::Packet,
                offset: 62,
                len: 32
            }
        );
        assert_eq!(
            m.fault(5, 1, Access::Write),
            FaultKind::BadAddress {
                access: Access::Write,
                size: 1,
                addr: 5
            }
        );
        drop(buf);
    }

    #[test]
    fn hot_window_checks_match_the_table() {
        // Every address around the hot window's edges, every size: the pre-checked hot form
        // answers exactly as the table does (and the table holds the hot slot too).
        let mut buf = vec![0u8; 64];
        for (lo, hi) in [(8usize, 40usize), (0, 64), (5, 6), (7, 7), (0, 0)] {
            let mut m = Memory::new(0);
            // SAFETY: buf outlives every use of the table in this test.
            let w = unsafe { Window::part(buf.as_mut_ptr(), buf.len(), lo, hi) };
            m.set(PACKET, w, w);
            let plain = m.view();
            m.set_hot(PACKET);
            let hot = m.view();
            for slot in [PACKET - 1, PACKET, PACKET + 1] {
                for off in (0u32..72).chain([u32::MAX - 8, u32::MAX - 1, u32::MAX]) {
                    let addr = vaddr(slot, off);
                    for size in [1, 2, 4, 8] {
                        assert_eq!(
                            hot.rd(addr, size),
                            plain.rd(addr, size),
                            "{lo}..{hi} slot {slot} off {off} size {size}"
                        );
                        assert_eq!(hot.wr(addr, size), plain.wr(addr, size));
                        let expect = slot == PACKET
                            && off as usize >= lo
                            && off as usize + size as usize <= hi;
                        assert_eq!(hot.rd(addr, size).is_some(), expect);
                    }
                }
            }
        }
        drop(buf);
    }

    #[test]
    fn underflow_into_previous_region_faults() {
        let mut a = vec![0u8; 16];
        let mut b = vec![0u8; 16];
        let mut m = Memory::new(0);
        m.set(MEM, Window::whole(&mut a), Window::whole(&mut a));
        m.set(CTX, Window::whole(&mut b), Window::whole(&mut b));
        // One byte below the start of MEM is offset 0xffff_ffff of CTX: out of bounds.
        assert!(m.view().load::<1>(vaddr(MEM, 0).wrapping_sub(1)).is_none());
        assert!(m.view().load::<1>(vaddr(MEM, 0)).is_some());
        // ... and is reported against MEM with a negative offset.
        assert!(matches!(
            m.fault(vaddr(MEM, 0).wrapping_sub(1), 1, Access::Read),
            FaultKind::OutOfBounds {
                region: Region::Mem,
                offset: -1,
                ..
            }
        ));
    }
}
