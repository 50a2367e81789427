//! The multiplier and the memory-command unit of a thread: the two instruction kinds with
//! state or data movement beyond one register write.

use super::memory::{Lmem, emem_region, range, region};
use super::thread::{HEADROOM_DIRTY, Mul, Thread, slot};
use super::{ExecErrorKind, MemState, PKT_BUF_BYTES, PKT_HEADROOM, ctm_packet_buffer};
use crate::target::{CmdAction, Dst, MemTarget, MulStep, Src};
use vm_core::maps::MapSet;

impl Thread {
    pub(super) fn mul_step(
        &mut self,
        step: MulStep,
        dst: Dst,
        a: Src,
        b: Src,
        lmem: &mut Lmem,
    ) -> Result<(), ExecErrorKind> {
        let m = &mut self.mul;
        let steps_needed = |w: u8| if w == 32 { 4 } else { 2 };
        let out = match step {
            MulStep::Start32 | MulStep::Start16 => {
                let (x, y) = (self.read(a, lmem), self.read(b, lmem));
                let w = if step == MulStep::Start32 { 32 } else { 16 };
                if w == 16 && (x > 0xffff || y > 0xffff) {
                    return Err(ExecErrorKind::BadOperand(
                        "16x16 multiply operand above 0xffff",
                    ));
                }
                self.mul = Mul {
                    a: x,
                    b: y,
                    width: w,
                    steps: 0,
                };
                None
            }
            MulStep::Step(n) => {
                if m.width == 0 {
                    return Err(ExecErrorKind::MulSequence("step without a start"));
                }
                if n != m.steps + 1 || n > steps_needed(m.width) {
                    return Err(ExecErrorKind::MulSequence("step number out of order"));
                }
                m.steps = n;
                None
            }
            MulStep::Last | MulStep::LastHigh => {
                if m.width == 0 || m.steps != steps_needed(m.width) {
                    return Err(ExecErrorKind::MulSequence("last step before all steps"));
                }
                let p = u64::from(m.a) * u64::from(m.b);
                if step == MulStep::Last {
                    Some(p as u32)
                } else if m.width == 32 {
                    Some((p >> 32) as u32)
                } else {
                    return Err(ExecErrorKind::MulSequence("high word of a 16x16 multiply"));
                }
            }
        };
        if let Some(v) = out {
            self.write(dst, v, lmem);
        }
        Ok(())
    }

    /// Executes a memory command at `addr`; returns the 32-bit words moved.
    ///
    /// Why two paths: a packet reads its headers from its own CTM buffer several times per
    /// packet, so a read there that passes every check is done inline (no call, no region
    /// dispatch); everything else, including every error, goes through
    /// [`Thread::command_general`], so results and error precedence are the same.
    #[inline(always)]
    pub(super) fn command(
        &mut self,
        target: MemTarget,
        action: CmdAction,
        xfer: u8,
        count: u8,
        addr: u64,
        mem: &mut MemState<'_>,
    ) -> Result<u32, ExecErrorKind> {
        if target == MemTarget::Ctm
            && matches!(action, CmdAction::Read8 | CmdAction::Read32)
            && let Ok(s) = cmd_shape(action, xfer, count)
            && self.ctm_read(xfer, s.words as usize, last_mask(s.len), addr)
        {
            return Ok(s.words);
        }
        self.command_general(target, action, xfer, count, addr, mem)
    }

    /// A CTM packet-buffer read of `words` words (`1..=8`, from [`cmd_shape`], so they fit
    /// the transfer registers from `xfer`) whose whole words lie inside the buffer: fills
    /// the read transfer registers, the last one masked with `mask` ([`last_mask`]), and
    /// says so. `false` leaves the command, unexecuted, to [`Thread::command_general`]
    /// (out of the buffer, or a partial last word the buffer ends in).
    ///
    /// It is what the general path does for such a read, word by word (the unit test holds
    /// the two together); the fast path calls it with the shape decoded once.
    #[inline(always)]
    pub(super) fn ctm_read(&mut self, xfer: u8, words: usize, mask: u32, addr: u64) -> bool {
        let off = addr.wrapping_sub(u64::from(ctm_packet_buffer(self.index)));
        // `words <= 8`, so the subtraction cannot wrap; `off` may be a wrapped huge value.
        if words == 0 || words > 8 || off > (PKT_BUF_BYTES as usize - 4 * words) as u64 {
            return false;
        }
        let (off, x) = (off as usize, slot::XFER_RD + usize::from(xfer));
        for i in 0..words {
            let o = off + 4 * i;
            let v = match self.pkt.get(o..o + 4) {
                Some(c) => u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                None => 0,
            };
            // `xfer + words <= 32`, so the mask never changes the slot.
            self.file[(x + i) & (slot::FILE - 1)] = v;
        }
        // A partial last word (byte reads) is zero-extended.
        self.file[(x + words - 1) & (slot::FILE - 1)] &= mask;
        true
    }

    /// An EMEM atomic add of `count` (1 or 2, from [`cmd_shape`]) words from the write
    /// transfer registers at `xfer` to a writable map value: done and `true` when every
    /// check of [`Thread::command_general`] passes (the same [`emem_region`] and
    /// [`atomic_add`]), else `false` with nothing changed.
    #[inline(always)]
    pub(super) fn emem_add(&self, maps: &mut MapSet, xfer: u8, count: u8, addr: u64) -> bool {
        let Some(bytes) = emem_region(maps, addr, 4 * u32::from(count), true) else {
            return false;
        };
        let x = slot::XFER_WR + usize::from(xfer);
        let (lo, hi) = (
            self.file[x & (slot::FILE - 1)],
            self.file[(x + 1) & (slot::FILE - 1)],
        );
        atomic_add(bytes, lo, hi);
        true
    }

    /// [`Thread::command`] for every target, action and error.
    #[inline(never)]
    pub(super) fn command_general(
        &mut self,
        target: MemTarget,
        action: CmdAction,
        xfer: u8,
        count: u8,
        addr: u64,
        mem: &mut MemState<'_>,
    ) -> Result<u32, ExecErrorKind> {
        let Shape { len, words } = cmd_shape(action, xfer, count)?;
        let x = xfer as usize;
        let write = !matches!(action, CmdAction::Read8 | CmdAction::Read32);
        let base = ctm_packet_buffer(self.index);
        let bytes = region(
            target,
            addr,
            len,
            write,
            &mut self.pkt[..],
            base,
            mem.shared,
            mem.maps,
        )?;
        match action {
            CmdAction::Read8 | CmdAction::Read32 => {
                fill_xfer(&mut self.file, slot::XFER_RD + x, bytes);
            }
            CmdAction::Write8 | CmdAction::Write32 => {
                drain_xfer(&self.file, slot::XFER_WR + x, bytes);
            }
            CmdAction::AtomicAdd => {
                let hi = match count {
                    1 => 0,
                    _ => self.file[slot::XFER_WR + x + 1],
                };
                atomic_add(bytes, self.file[slot::XFER_WR + x], hi);
            }
        }
        if target == MemTarget::Ctm && write {
            self.note_ctm_write((addr - u64::from(base)) as u32, len);
        }
        Ok(words)
    }

    /// Records a write of `len` bytes at packet-buffer offset `off` (for `start`'s clearing).
    #[inline(always)]
    fn note_ctm_write(&mut self, off: u32, len: u32) {
        // The high-water mark below the flag bit: a plain `max` with the flag set would keep
        // the old mark whatever the write (the flag is above every offset), and a start
        // would then leave the bytes past it uncleared.
        let flag = self.dirty & HEADROOM_DIRTY;
        self.dirty = flag | (self.dirty & !HEADROOM_DIRTY).max(off + len);
        if off < PKT_HEADROOM {
            self.note_headroom_write();
        }
    }

    /// A CTM write of `len` bytes (from [`cmd_shape`]) from the write transfer registers at
    /// `xfer` into this thread's packet buffer: done and `true` when it lies inside the
    /// buffer (the check of [`region`]), else `false` with nothing changed. The same data
    /// movement and dirty tracking as [`Thread::command_general`].
    #[inline(always)]
    pub(super) fn ctm_write(&mut self, xfer: u8, len: u32, addr: u64) -> bool {
        let off = addr.wrapping_sub(u64::from(ctm_packet_buffer(self.index)));
        let Some(r) = range(off, len, PKT_BUF_BYTES as usize) else {
            return false;
        };
        let Some(bytes) = self.pkt.get_mut(r) else {
            return false;
        };
        drain_xfer(&self.file, slot::XFER_WR + usize::from(xfer), bytes);
        self.note_ctm_write(off as u32, len);
        true
    }

    /// An EMEM read (`write` false) or write of `len` bytes (from [`cmd_shape`]) between a
    /// map value and the transfer registers at `xfer`: done and `true` when [`emem_region`]
    /// allows it, else `false` with nothing changed. The data movement of
    /// [`Thread::command_general`].
    #[inline(always)]
    pub(super) fn emem_move(
        &mut self,
        maps: &mut MapSet,
        write: bool,
        xfer: u8,
        len: u32,
        addr: u64,
    ) -> bool {
        let Some(bytes) = emem_region(maps, addr, len, write) else {
            return false;
        };
        let x = usize::from(xfer);
        if write {
            drain_xfer(&self.file, slot::XFER_WR + x, bytes);
        } else {
            fill_xfer(&mut self.file, slot::XFER_RD + x, bytes);
        }
        true
    }
}

/// Fills the registers from slot `x` with `bytes`: whole words first, then a partial last
/// word (byte commands), zero-extended. Byte loops rather than `copy_from_slice` of a
/// variable length: no `memcpy` call per command (commands run several times per packet).
#[inline(always)]
fn fill_xfer(file: &mut [u32; slot::FILE], x: usize, bytes: &[u8]) {
    let xr = file.get_mut(x..).unwrap_or_default();
    let whole = bytes.len() & !3;
    let (full, rest) = bytes.split_at(whole);
    for (r, c) in xr.iter_mut().zip(full.chunks_exact(4)) {
        *r = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    if let (false, Some(r)) = (rest.is_empty(), xr.get_mut(whole / 4)) {
        *r = rest
            .iter()
            .rev()
            .fold(0u32, |v, &b| (v << 8) | u32::from(b));
    }
}

/// Stores the registers from slot `x` into `bytes`, little-endian (the inverse of
/// [`fill_xfer`]).
#[inline(always)]
fn drain_xfer(file: &[u32; slot::FILE], x: usize, bytes: &mut [u8]) {
    let xw = file.get(x..).unwrap_or_default();
    let whole = bytes.len() & !3;
    let (full, rest) = bytes.split_at_mut(whole);
    for (c, w) in full.chunks_exact_mut(4).zip(xw) {
        c.copy_from_slice(&w.to_le_bytes());
    }
    if let (false, Some(w)) = (rest.is_empty(), xw.get(whole / 4)) {
        for (k, b) in rest.iter_mut().enumerate() {
            *b = (w >> (8 * k)) as u8;
        }
    }
}

/// What a command moves, from the instruction alone: its byte length and 32-bit words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Shape {
    pub(super) len: u32,
    pub(super) words: u32,
}

/// The shape of a command, or the operand error it raises before touching memory. Why a
/// function: [`Thread::command_general`] checks it per execution and the fast path's
/// decoder once per instruction, and both must agree exactly.
#[inline(always)]
pub(super) fn cmd_shape(action: CmdAction, xfer: u8, count: u8) -> Result<Shape, ExecErrorKind> {
    let (len, max) = match action {
        CmdAction::Read8 | CmdAction::Write8 => (u32::from(count), 32),
        CmdAction::Read32 | CmdAction::Write32 => (4 * u32::from(count), 8),
        CmdAction::AtomicAdd => (4 * u32::from(count), 2),
    };
    if count == 0 || count > max {
        return Err(ExecErrorKind::BadOperand("command count out of range"));
    }
    let words = len.div_ceil(4);
    if xfer as usize + words as usize > 32 {
        return Err(ExecErrorKind::BadOperand(
            "command runs past the transfer registers",
        ));
    }
    Ok(Shape { len, words })
}

/// The mask of the bytes a read of `len` bytes keeps in its last word (all for whole words).
pub(super) fn last_mask(len: u32) -> u32 {
    match len % 4 {
        0 => u32::MAX,
        r => (1u32 << (8 * r)) - 1,
    }
}

/// Adds `lo` (4 bytes) or `hi:lo` (8 bytes) to the little-endian value in `bytes`.
#[inline(always)]
pub(super) fn atomic_add(bytes: &mut [u8], lo: u32, hi: u32) {
    if let Ok(b) = <&mut [u8; 4]>::try_from(&mut *bytes) {
        *b = u32::from_le_bytes(*b).wrapping_add(lo).to_le_bytes();
    } else if let Ok(b) = <&mut [u8; 8]>::try_from(bytes) {
        let add = u64::from(lo) | (u64::from(hi) << 32);
        *b = u64::from_le_bytes(*b).wrapping_add(add).to_le_bytes();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::memory::SharedMem;
    use super::*;
    use crate::cost::Latencies;
    use proptest::prelude::*;
    use vm_core::maps::MapSet;

    #[test]
    fn a_write_past_the_mark_raises_it_with_the_headroom_flag_set() {
        let mut th = Thread::new(0);
        th.note_ctm_write(0, 4);
        th.note_ctm_write(PKT_HEADROOM + 100, 50);
        assert_eq!(th.dirty, HEADROOM_DIRTY | (PKT_HEADROOM + 150));
        th.note_ctm_write(PKT_HEADROOM + 10, 5);
        assert_eq!(th.dirty, HEADROOM_DIRTY | (PKT_HEADROOM + 150));
    }

    fn action(k: u8) -> CmdAction {
        match k % 5 {
            0 => CmdAction::Read8,
            1 => CmdAction::Read32,
            2 => CmdAction::Write8,
            3 => CmdAction::Write32,
            _ => CmdAction::AtomicAdd,
        }
    }

    proptest! {
        /// The inline CTM read agrees with the general path on every outcome: words moved,
        /// the error, and every register and packet byte (including commands it refuses).
        #[test]
        fn inline_ctm_read_is_the_general_path(
            k in 0u8..5,
            thread in 0u8..4,
            xfer in 0u8..40,
            count in 0u8..40,
            off in prop_oneof![0u64..4200, Just(u64::MAX - 2), any::<u64>()],
            seed in any::<u64>(),
        ) {
            let lat = Latencies::NFP4000;
            let mut th = Thread::new(thread);
            let mut lmem = Lmem::new();
            th.start(&mut lmem, &[0x5a; 60]).unwrap();
            let mut x = seed | 1;
            for b in th.pkt.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            for r in th.file[..slot::REGS].iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *r = x as u32;
            }
            let addr = u64::from(ctm_packet_buffer(th.index)).wrapping_add(off);
            let (mut s1, mut s2) = (SharedMem::new(0, 0), SharedMem::new(0, 0));
            let (mut m1, mut m2) = (MapSet::default(), MapSet::default());
            let mut other = th.clone();
            let mut lmem2 = lmem.clone();
            let a = action(k);
            let fast = th.command(
                MemTarget::Ctm, a, xfer, count, addr,
                &mut MemState { lmem: &mut lmem, shared: &mut s1, maps: &mut m1, lat: &lat },
            );
            let general = other.command_general(
                MemTarget::Ctm, a, xfer, count, addr,
                &mut MemState { lmem: &mut lmem2, shared: &mut s2, maps: &mut m2, lat: &lat },
            );
            prop_assert_eq!(fast, general);
            prop_assert_eq!(&th.file[..], &other.file[..]);
            prop_assert_eq!(&th.pkt[..], &other.pkt[..]);
            prop_assert_eq!(th.dirty, other.dirty);
        }
    }
}
