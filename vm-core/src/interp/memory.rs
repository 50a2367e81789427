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
/// the run loop takes a fresh view after every helper call.
#[derive(Clone, Copy)]
pub(crate) struct View {
    rd: *const Window,
    wr: *const Window,
    len: usize,
}

impl View {
    /// Host pointer for reading `size` bytes at `addr`.
    #[inline(always)]
    pub(crate) fn rd(&self, addr: u64, size: u32) -> Option<*const u8> {
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
        let (slot, off) = split(addr);
        if slot < self.len {
            // SAFETY: as in `rd`.
            let w = unsafe { &*self.wr.add(slot) };
            w.at(off, size)
        } else {
            None
        }
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
pub(crate) struct Memory {
    rd: Vec<Window>,
    wr: Vec<Window>,
    kind: Vec<Kind>,
    /// Offset reported as 0 in messages (512 for stacks: r10-relative; `data` for packets).
    origin: Vec<u32>,
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
        }
    }

    /// Sets both windows of `slot`.
    pub(crate) fn set(&mut self, slot: usize, rd: Window, wr: Window) {
        if let (Some(r), Some(w)) = (self.rd.get_mut(slot), self.wr.get_mut(slot)) {
            *r = rd;
            *w = wr;
        }
    }

    /// Moves `slot`'s windows to a new base address of the same buffer, keeping their bounds
    /// (re-deriving a pointer after its owner was borrowed mutably).
    pub(crate) fn rebase(&mut self, slot: usize, base: *mut u8) {
        if let (Some(r), Some(w)) = (self.rd.get_mut(slot), self.wr.get_mut(slot)) {
            r.base = base;
            w.base = base;
        }
    }

    /// Sets the offset messages report as 0 for `slot`.
    pub(crate) fn set_origin(&mut self, slot: usize, origin: u32) {
        if let Some(o) = self.origin.get_mut(slot) {
            *o = origin;
        }
    }

    /// Appends a slot (ring buffer records) and returns it.
    pub(crate) fn push(&mut self, kind: Kind, rd: Window, wr: Window) -> usize {
        self.rd.push(rd);
        self.wr.push(wr);
        self.kind.push(kind);
        self.origin.push(0);
        self.rd.len() - 1
    }

    /// Drops slots appended with [`Memory::push`] beyond the first `len`.
    pub(crate) fn truncate(&mut self, len: usize) {
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
        View {
            rd: self.rd.as_ptr(),
            wr: self.wr.as_ptr(),
            len: self.rd.len().min(self.wr.len()),
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
    pub(crate) fn copy_out(&self, addr: u64, data: &[u8]) -> Result<(), FaultKind> {
        if data.is_empty() {
            return Ok(());
        }
        let size = data.len() as u32;
        match self.wr(addr, size) {
            // SAFETY: `size` writable bytes at `p`; `data` is a distinct Rust buffer.
            Some(p) => {
                unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
                Ok(())
            }
            None => Err(self.fault(addr, size, Access::Write)),
        }
    }

    /// Fills `len` bytes at `addr` with zeros (helpers that clear their output on error).
    pub(crate) fn zero(&self, addr: u64, len: u32) -> Result<(), FaultKind> {
        if len == 0 {
            return Ok(());
        }
        match self.wr(addr, len) {
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
