//! The multiplier and the memory-command unit of a thread: the two instruction kinds with
//! state or data movement beyond one register write.

use super::memory::{Lmem, region};
use super::thread::{Mul, Thread, slot};
use super::{ExecErrorKind, MemState, PKT_BUF_BYTES, PKT_HEADROOM, ctm_packet_buffer};
use crate::target::{CmdAction, Dst, MemTarget, MulStep, Src};

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
            && let Some(words) = self.ctm_read(action, xfer, count, addr)
        {
            return Ok(words);
        }
        self.command_general(target, action, xfer, count, addr, mem)
    }

    /// A CTM packet-buffer read that passes every check of [`Thread::command_general`]
    /// (count, transfer registers, buffer range, and whole words inside the buffer); `None`
    /// leaves the command, unexecuted, to the general path.
    #[inline(always)]
    fn ctm_read(&mut self, action: CmdAction, xfer: u8, count: u8, addr: u64) -> Option<u32> {
        let len = match action {
            CmdAction::Read8 if count <= 32 => u32::from(count),
            CmdAction::Read32 if count <= 8 => 4 * u32::from(count),
            _ => return None,
        };
        let words = len.div_ceil(4);
        let x = usize::from(xfer);
        let off = addr.wrapping_sub(u64::from(ctm_packet_buffer(self.index)));
        // `count == 0` gives `words == 0`, refused here; whole words stay inside the buffer
        // (`words <= 8`, so the subtraction cannot wrap; `off` may be a wrapped huge value).
        if words == 0 || x + words as usize > 32 || off > u64::from(PKT_BUF_BYTES - 4 * words) {
            return None;
        }
        let off = off as usize;
        let src = self.pkt.get(off..off + 4 * words as usize)?;
        let dst = self
            .file
            .get_mut(slot::XFER_RD + x..slot::XFER_RD + x + words as usize)?;
        for (r, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
            *r = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        // A partial last word (byte reads) is zero-extended.
        let rem = len % 4;
        if rem != 0
            && let Some(r) = dst.last_mut()
        {
            *r &= (1u32 << (8 * rem)) - 1;
        }
        Some(words)
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
        let (len, max) = match action {
            CmdAction::Read8 | CmdAction::Write8 => (u32::from(count), 32),
            CmdAction::Read32 | CmdAction::Write32 => (4 * u32::from(count), 8),
            CmdAction::AtomicAdd => (4 * u32::from(count), 2),
        };
        if count == 0 || count > max {
            return Err(ExecErrorKind::BadOperand("command count out of range"));
        }
        let words = len.div_ceil(4);
        let x = xfer as usize;
        if x + words as usize > 32 {
            return Err(ExecErrorKind::BadOperand(
                "command runs past the transfer registers",
            ));
        }
        let write = !matches!(action, CmdAction::Read8 | CmdAction::Read32);
        let base = ctm_packet_buffer(self.index);
        let bytes = region(
            target,
            addr,
            len,
            write,
            &mut self.pkt,
            base,
            mem.shared,
            mem.maps,
        )?;
        match action {
            // Whole words first, then a partial last word (byte commands), zero-extended.
            // Byte loops rather than `copy_from_slice` of a variable length: no `memcpy`
            // call per command (commands run several times per packet).
            CmdAction::Read8 | CmdAction::Read32 => {
                let xr = &mut self.file[slot::XFER_RD + x..];
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
            CmdAction::Write8 | CmdAction::Write32 => {
                let xw = &self.file[slot::XFER_WR + x..];
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
            CmdAction::AtomicAdd => {
                if count == 1 {
                    let old = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                    bytes.copy_from_slice(
                        &old.wrapping_add(self.file[slot::XFER_WR + x]).to_le_bytes(),
                    );
                } else {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(bytes);
                    let add = u64::from(self.file[slot::XFER_WR + x])
                        | (u64::from(self.file[slot::XFER_WR + x + 1]) << 32);
                    bytes.copy_from_slice(&u64::from_le_bytes(b).wrapping_add(add).to_le_bytes());
                }
            }
        }
        if target == MemTarget::Ctm && write {
            let hi = (addr - u64::from(base)) as u32 + len;
            self.dirty_hi = self.dirty_hi.max(hi);
            if ((addr - u64::from(base)) as u32) < PKT_HEADROOM {
                self.headroom_dirty = true;
            }
        }
        Ok(words)
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
            prop_assert_eq!((th.dirty_hi, th.headroom_dirty), (other.dirty_hi, other.headroom_dirty));
        }
    }
}
