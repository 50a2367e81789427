//! Immediate materialisation: 8-bit values ride inline as `Src::Imm`, everything else takes
//! one `immed` (16 bits at byte shift 0/1/2, optionally inverted) or two (low half, then the
//! high half with `Word` width) — the NFP JIT's `wrp_immed`/`ur_load_imm_any` strategy.

use vm_core::isa::{LdImm64, Reg};

use super::{Lowerer, S0, S1, Val, ga, gb, hi, lo};
use crate::target::{Bank, Dst, ImmedWidth, MeInsn, Src};

/// `immed[dst, v]` for a 16-bit value.
pub(crate) fn immed(dst: Dst, v: u16) -> MeInsn {
    MeInsn::Immed {
        dst,
        imm: v,
        shift: 0,
        invert: false,
        width: ImmedWidth::All,
    }
}

/// The shortest `immed` sequence writing the 32-bit `v` to `dst` (1 or 2 instructions).
pub(crate) fn immed_seq(dst: Dst, v: u32) -> Vec<MeInsn> {
    let one = |imm: u32, shift: u8, invert: bool| MeInsn::Immed {
        dst,
        imm: imm as u16,
        shift,
        invert,
        width: ImmedWidth::All,
    };
    for shift in 0..=2u8 {
        let s = 8 * u32::from(shift);
        if v & !(0xffff << s) == 0 {
            return vec![one(v >> s, shift, false)];
        }
        if !v & !(0xffff << s) == 0 {
            return vec![one(!v >> s, shift, true)];
        }
    }
    vec![
        one(v & 0xffff, 0, false),
        MeInsn::Immed {
            dst,
            imm: (v >> 16) as u16,
            shift: 2,
            invert: false,
            width: ImmedWidth::Word,
        },
    ]
}

impl Lowerer<'_> {
    /// Writes the 32-bit `v` to `dst`.
    pub(crate) fn load_u32(&mut self, dst: Dst, v: u32) {
        for i in immed_seq(dst, v) {
            self.emit(i);
        }
    }

    /// `v` as an operand read from `bank`: inline when it fits 8 bits, else through scratch
    /// GPR `scratch`.
    pub(crate) fn src_u32(&mut self, v: u32, bank: Bank, scratch: u8) -> Src {
        if v <= 0xff {
            Src::Imm(v as u8)
        } else {
            self.load_u32(Dst::Both(scratch), v);
            Src::Gpr(bank, scratch)
        }
    }

    /// R10's value (the LMEM byte address `A22 + 512`, upper half 0) into scratch `s`.
    pub(crate) fn frame_pointer(&mut self, s: u8) -> Src {
        self.load_u32(Dst::Both(s), 512);
        self.emit(MeInsn::Alu {
            op: crate::target::AluOp::Add,
            dst: Dst::Both(s),
            a: ga(super::R22),
            b: gb(s),
        });
        Src::Gpr(Bank::B, s)
    }

    /// The low and high words of an eBPF operand, read from `bank`; immediates and R10 go
    /// through the scratch GPRs 20 (low) and 21 (high).
    pub(crate) fn operand(&mut self, v: Val, bank: Bank) -> (Src, Src) {
        match v {
            Val::Reg(r) if r < 10 => (Src::Gpr(bank, lo(r)), Src::Gpr(bank, hi(r))),
            Val::Reg(_) => {
                let l = self.frame_pointer(S0);
                let l = match l {
                    Src::Gpr(_, n) => Src::Gpr(bank, n),
                    o => o,
                };
                (l, Src::Imm(0))
            }
            Val::Imm(x) => {
                let l = self.src_u32(x as u32, bank, S0);
                let h = self.src_u32((x >> 32) as u32, bank, S1);
                (l, h)
            }
        }
    }

    /// The low word of an operand only (32-bit operations).
    pub(crate) fn operand32(&mut self, v: Val, bank: Bank) -> Src {
        match v {
            Val::Reg(r) if r < 10 => Src::Gpr(bank, lo(r)),
            Val::Reg(_) => match self.frame_pointer(S0) {
                Src::Gpr(_, n) => Src::Gpr(bank, n),
                o => o,
            },
            Val::Imm(x) => self.src_u32(x as u32, bank, S0),
        }
    }

    pub(crate) fn lower_ld_imm64(&mut self, dst: Reg, value: LdImm64) {
        if dst >= 10 {
            self.not_lowered("lddw to r10");
            return;
        }
        let v = match value {
            LdImm64::Imm(v) => v,
            // The firmware table id of a map is its index in the program's map list.
            LdImm64::MapFd(fd) | LdImm64::MapIdx(fd) => u64::from(fd as u32),
            other => {
                self.not_lowered(format!("lddw {other:?}"));
                return;
            }
        };
        self.load_u32(Dst::Both(lo(dst)), v as u32);
        if self.dead_hi.get(self.pc).copied().unwrap_or(false) {
            // No path reads the upper half (`hi_live`).
            self.out.opts.dead_hi += 1;
            return;
        }
        self.load_u32(Dst::Both(hi(dst)), (v >> 32) as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(seq: &[MeInsn]) -> u32 {
        let mut r = 0xdead_beefu32;
        for i in seq {
            if let MeInsn::Immed {
                imm,
                shift,
                invert,
                width,
                ..
            } = *i
            {
                let v = u32::from(imm) << (8 * u32::from(shift));
                let v = if invert { !v } else { v };
                r = match width {
                    ImmedWidth::All => v,
                    ImmedWidth::Word => {
                        let m = 0xffffu32 << (8 * u32::from(shift));
                        (r & !m) | (v & m)
                    }
                    ImmedWidth::Byte => {
                        let m = 0xffu32 << (8 * u32::from(shift));
                        (r & !m) | (v & m)
                    }
                };
            }
        }
        r
    }

    #[test]
    fn one_immed_for_16_bit_shapes_two_otherwise() {
        for v in [
            0u32,
            1,
            0xffff,
            0x1234_0000,
            0x00ff_ff00,
            0xffff_fffe,
            0xffff_0000,
        ] {
            let s = immed_seq(Dst::Both(0), v);
            assert_eq!(s.len(), 1, "{v:#x}");
            assert_eq!(eval(&s), v);
        }
        for v in [0x1234_5678u32, 0x8000_0001] {
            let s = immed_seq(Dst::Both(0), v);
            assert_eq!(s.len(), 2, "{v:#x}");
            assert_eq!(eval(&s), v);
        }
    }

    proptest::proptest! {
        #[test]
        fn immed_seq_materialises_any_value(v: u32) {
            proptest::prop_assert_eq!(eval(&immed_seq(Dst::Both(3), v)), v);
        }
    }
}
