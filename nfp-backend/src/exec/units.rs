//! The multiplier and the memory-command unit of a thread: the two instruction kinds with
//! state or data movement beyond one register write.

use super::memory::{Lmem, region};
use super::thread::{Mul, Thread, slot};
use super::{ExecErrorKind, MemState, PKT_HEADROOM, ctm_packet_buffer};
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
    pub(super) fn command(
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
