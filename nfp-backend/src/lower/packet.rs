//! Packet access: CTM read/write commands at the 32-bit address in a packet pointer, legacy
//! LD_ABS/LD_IND with their bounds check, and the packet cache (nfp-model.md §2.7).
//!
//! Packet cache: packet loads through the same, unchanged pointer register within one basic
//! block (no jump target, call, packet store or other packet/transfer-register use in
//! between) are served by one CTM read of their combined byte range (≤ 32 bytes) into
//! transfer registers 0..8, issued by the first. Why it is safe to read bytes a later load
//! reads before that load's own bounds check: the group is only formed when the verifier's
//! proven packet range *at the first load* covers the whole span.

use std::collections::HashMap;

use verifier::PtrKind;
use vm_core::isa::{Insn, Reg, Size};

use super::alu::{alu, ld_field, shf};
use super::mem::StoreVal;
use super::recorder::BaseFact;
use super::{Lowerer, R22, S0, S1, ga, gb, lo};
use crate::target::{
    AddrMode, AluOp, Bank, CmdAction, Cond, Dst, MeInsn, MemTarget, ShiftAmount, ShiftKind, Src,
};

/// Most bytes one cached read covers (eight transfer registers).
const CACHE_BYTES: i64 = 32;

/// A packet load's part in a cache group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheSlot {
    /// The group's first load (it issues the read).
    pub leader: bool,
    /// Offset (from the pointer register) of the first cached byte.
    pub start: i64,
    /// Bytes read.
    pub len: u8,
}

fn packet_load_at(lw: &Lowerer<'_>, pc: usize) -> Option<(Reg, i64, usize, Reg)> {
    match *lw.insn(pc)? {
        Insn::Load {
            size,
            signed: false,
            dst,
            src,
            off,
        } if lw.fact(pc).mem == Some(PtrKind::Packet) && src < 10 => {
            Some((src, i64::from(off), size.bytes(), dst))
        }
        _ => None,
    }
}

/// Registers an instruction writes (for "the pointer is unchanged").
fn writes(insn: &Insn, r: Reg) -> bool {
    match *insn {
        Insn::Alu { dst, .. }
        | Insn::Neg { dst, .. }
        | Insn::Endian { dst, .. }
        | Insn::Load { dst, .. }
        | Insn::LdImm64 { dst, .. } => dst == r,
        Insn::Atomic { src, fetch, .. } => fetch && src == r,
        Insn::LdAbs { .. } | Insn::LdInd { .. } | Insn::Call(_) | Insn::CallX { .. } => r <= 5,
        _ => false,
    }
}

/// Plans the cache groups (slot → its part).
pub(crate) fn plan(lw: &Lowerer<'_>) -> HashMap<usize, CacheSlot> {
    let mut out = HashMap::new();
    let n = lw.prog.insns.len();
    let mut pc = 0;
    while pc < n {
        let Some((base, off, size, dst)) = packet_load_at(lw, pc).filter(|_| lw.reachable(pc))
        else {
            pc += 1;
            continue;
        };
        let BaseFact::Packet { off: roff, range } = lw.op(pc).base else {
            pc += 1;
            continue;
        };
        let in_range = |lo: i64, hi: i64| {
            i64::from(roff) + lo >= 0
                && i64::from(roff) + hi <= i64::from(range)
                && hi - lo <= CACHE_BYTES
        };
        let (mut lo_b, mut hi_b) = (off, off + size as i64);
        let mut members = vec![pc];
        let mut q = pc + 1;
        let mut open = dst != base;
        while open && q < n && !lw.targets.contains(&q) {
            let Some(insn) = lw.insn(q) else { break };
            if !lw.reachable(q) {
                q += 1;
                continue;
            }
            if let Some((b2, o2, s2, d2)) = packet_load_at(lw, q) {
                let (nl, nh) = (lo_b.min(o2), hi_b.max(o2 + s2 as i64));
                if b2 != base || !in_range(nl, nh) {
                    break;
                }
                lo_b = nl;
                hi_b = nh;
                members.push(q);
                open = d2 != base;
                q += 1;
                continue;
            }
            let stop = match insn {
                Insn::Store { .. } | Insn::Atomic { .. } | Insn::Call(_) | Insn::CallX { .. } => {
                    true
                }
                Insn::LdAbs { .. } | Insn::LdInd { .. } | Insn::Exit | Insn::Ja { .. } => true,
                Insn::Load { .. } => false,
                _ => false,
            };
            if stop || writes(insn, base) {
                break;
            }
            q += 1;
        }
        if members.len() >= 2 && in_range(lo_b, hi_b) {
            for (i, &m) in members.iter().enumerate() {
                out.insert(
                    m,
                    CacheSlot {
                        leader: i == 0,
                        start: lo_b,
                        len: (hi_b - lo_b) as u8,
                    },
                );
            }
        }
        pc = members.last().copied().unwrap_or(pc) + 1;
    }
    out
}

impl Lowerer<'_> {
    /// A CTM command at `R(base) + off`.
    fn ctm_cmd(&mut self, action: CmdAction, base: Reg, off: i64, count: u8) {
        let b = self.src_u32(off as u32, Bank::B, S0);
        self.emit(MeInsn::Cmd {
            target: MemTarget::Ctm,
            action,
            xfer: 0,
            count,
            mode: AddrMode::Addr32,
            a: ga(lo(base)),
            b,
            swap: true,
        });
    }

    pub(crate) fn packet_load(
        &mut self,
        size: Size,
        d: Reg,
        base: Reg,
        off: i16,
        fold: Option<u8>,
    ) {
        if base >= 10 {
            self.not_lowered("packet load through r10");
            return;
        }
        let off = i64::from(off);
        let start = match self.pkt_plan.get(&self.pc).copied() {
            Some(slot) => {
                if slot.leader {
                    self.ctm_cmd(CmdAction::Read8, base, slot.start, slot.len);
                } else {
                    self.out.opts.pkt_cache_hits += 1;
                }
                (off - slot.start) as usize
            }
            None => {
                self.ctm_cmd(CmdAction::Read8, base, off, size.bytes() as u8);
                0
            }
        };
        self.load_words(d, size.bytes(), start, &|w| Src::Xfer(w as u8), fold);
    }

    pub(crate) fn packet_store(&mut self, size: Size, base: Reg, v: StoreVal, off: i16) {
        if base >= 10 {
            self.not_lowered("packet store through r10");
            return;
        }
        let halves = if size == Size::DW { 2 } else { 1 };
        for h in 0..halves {
            let s = match v {
                StoreVal::Reg(r) => gb(if h == 0 { lo(r) } else { super::hi(r) }),
                StoreVal::Imm(x) => self.src_u32((x >> (32 * h)) as u32, Bank::B, S1),
            };
            self.emit(alu(AluOp::PassB, Dst::Xfer(h as u8), Src::None, s));
        }
        self.ctm_cmd(CmdAction::Write8, base, i64::from(off), size.bytes() as u8);
    }

    /// LD_ABS / LD_IND: `r0 = ntoh(packet[off])`, the program returning 0 when the bytes are
    /// not all inside the packet.
    pub(crate) fn lower_ld_abs(&mut self, size: Size, src: Option<Reg>, imm: i32) {
        if size == Size::DW {
            self.not_lowered("LD_ABS of 8 bytes");
            return;
        }
        let n = size.bytes() as u8;
        // S0 = offset.
        match src {
            None => self.load_u32(Dst::Both(S0), imm as u32),
            Some(r) if r < 10 => {
                let (op, k) = if imm >= 0 {
                    (AluOp::Add, imm as u32)
                } else {
                    (AluOp::Sub, imm.unsigned_abs())
                };
                let k = self.src_u32(k, Bank::B, S1);
                self.emit(alu(op, Dst::Both(S0), ga(lo(r)), k));
            }
            Some(_) => {
                self.not_lowered("LD_IND through r10");
                return;
            }
        }
        // S1 = len - off (no borrow: off <= len), then len - off >= size.
        let abort = self.abort_label();
        self.emit(alu(AluOp::PassB, Dst::Both(S1), Src::None, gb(R22)));
        self.emit(alu(AluOp::Sub, Dst::Both(S1), ga(S1), gb(S0)));
        self.br(Cond::Lo, abort);
        self.emit(alu(AluOp::Sub, Dst::None, ga(S1), Src::Imm(n)));
        self.br(Cond::Lo, abort);
        self.emit(MeInsn::Cmd {
            target: MemTarget::Ctm,
            action: CmdAction::Read8,
            xfer: 0,
            count: n,
            mode: AddrMode::Addr32,
            a: Src::Lm {
                index: 1,
                off: crate::exec::PV_DATA,
            },
            b: gb(S0),
            swap: true,
        });
        let x = Src::Xfer(0);
        match size {
            Size::B => self.emit(ld_field(Dst::Both(0), 0b0001, x, 0, true)),
            Size::H => self.swap16(Dst::Both(0), x),
            _ => {
                self.emit(shf(
                    ShiftKind::RotRight,
                    Dst::Both(0),
                    Src::None,
                    x,
                    ShiftAmount::Imm(8),
                ));
                self.emit(ld_field(Dst::Both(0), 0b0101, x, 3, false));
            }
        }
        self.zext(0, false);
    }
}
