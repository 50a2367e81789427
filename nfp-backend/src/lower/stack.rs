//! Stack accesses through local-memory windows (nfp-model.md §1.6).
//!
//! eBPF `r10 + off` is `LMEM[A22 + 512 + off]`. An LM index register addresses a 16-word
//! window; reprogramming one is a CSR write whose effect lands three instructions later.
//! Windows used:
//! - index 0, main function only: the top 64 bytes (`r10-64 .. r10`), set once in the
//!   prologue — where compilers put small frames, so most accesses need no set-up at all;
//! - index 3: any other constant offset; the window is remembered within a basic block so
//!   neighbouring accesses reuse it;
//! - index 3 from a register: stack pointers into another function's frame (passed as
//!   arguments) whose frame base is not static; the pointer's word alignment still is.

use vm_core::isa::{Insn, Reg, Size};

use super::mem::StoreVal;
use super::recorder::BaseFact;
use super::{Lowerer, R22, S0, ga, gb, lo};
use crate::target::{AluOp, Bank, Csr, Dst, MeInsn, Src};

/// Byte offset from A22 of the LM index 0 window (the top 64 of the 512 stack bytes).
pub(crate) const WINDOW0_BASE: u32 = 448;
/// Bytes one LM window covers.
const WINDOW_BYTES: u32 = 64;

/// Where a stack access lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StackAddr {
    /// Byte offset from the current frame's A22.
    Static(u32),
    /// `R(reg) + off`, whose byte address is `align` (0..4) past a word boundary.
    Dynamic { reg: Reg, off: i16, align: u32 },
}

/// The static frame offset (from A22) of the stack access at `pc`, if it has one.
pub(crate) fn static_offset(lw: &Lowerer<'_>, pc: usize) -> Option<(u32, usize)> {
    let (base, off, size) = match *lw.insn(pc)? {
        Insn::Load { src, off, size, .. } => (src, off, size),
        Insn::Store { dst, off, size, .. } => (dst, off, size),
        _ => return None,
    };
    let total = if base == 10 {
        i64::from(off)
    } else {
        match lw.op(pc).base {
            BaseFact::Stack {
                same_frame: true,
                off: o,
            } => o.checked_add(i64::from(off))?,
            _ => return None,
        }
    };
    let r = total.checked_add(512)?;
    (0..=512 - size.bytes() as i64)
        .contains(&r)
        .then_some((r as u32, size.bytes()))
}

/// Whether the main function has a stack access in the top 64 bytes (worth the prologue).
pub(crate) fn main_uses_top_window(lw: &Lowerer<'_>) -> bool {
    let end = lw.fn_starts.get(1).copied().unwrap_or(lw.prog.insns.len());
    (0..end).any(|pc| {
        lw.reachable(pc)
            && lw.fact(pc).mem == Some(verifier::PtrKind::Stack)
            && static_offset(lw, pc)
                .is_some_and(|(r, n)| r >= WINDOW0_BASE && r as usize + n <= 512)
    })
}

impl Lowerer<'_> {
    fn stack_addr(&mut self, base: Reg, off: i16, size: Size) -> Option<StackAddr> {
        if let Some((r, _)) = static_offset(self, self.pc) {
            return Some(StackAddr::Static(r));
        }
        match self.op(self.pc).base {
            BaseFact::Stack {
                same_frame: false,
                off: o,
            } if base < 10 => {
                let align = 512i64
                    .wrapping_add(o)
                    .wrapping_add(i64::from(off))
                    .rem_euclid(4) as u32;
                Some(StackAddr::Dynamic {
                    reg: base,
                    off,
                    align,
                })
            }
            BaseFact::StackAligned { align } if base < 10 => Some(StackAddr::Dynamic {
                reg: base,
                off,
                align: (u32::from(align) + (off as i32).rem_euclid(4) as u32) % 4,
            }),
            BaseFact::Varying => {
                self.reason("stack_var_offset", "[nfp] variable ptr stack access");
                None
            }
            _ => {
                let _ = size;
                self.reason(
                    "stack_var_offset",
                    "[nfp] stack access outside the frame or of unknown offset",
                );
                None
            }
        }
    }

    /// Points a window at the access; returns (LM index, byte offset of the access in it).
    fn stack_window(&mut self, a: StackAddr, size: usize) -> (u8, usize) {
        match a {
            StackAddr::Static(r) => {
                let end = r + size as u32;
                if self.func.main && self.window0 && r >= WINDOW0_BASE && end <= 512 {
                    self.out.opts.lm_window0 += 1;
                    return (0, (r - WINDOW0_BASE) as usize);
                }
                if let Some(b) = self.idx3
                    && r >= b
                    && end <= b + WINDOW_BYTES
                {
                    self.out.opts.lm_window3_reuse += 1;
                    return (3, (r - b) as usize);
                }
                let b = (r & !3).min(512 - WINDOW_BYTES);
                if b == 0 {
                    self.emit(MeInsn::CsrWrite {
                        csr: Csr::ActLmAddr(3),
                        src: ga(R22),
                    });
                } else {
                    let k = self.src_u32(b, Bank::B, S0);
                    self.emit(MeInsn::Alu {
                        op: AluOp::Add,
                        dst: Dst::Both(S0),
                        a: ga(R22),
                        b: k,
                    });
                    self.emit(MeInsn::CsrWrite {
                        csr: Csr::ActLmAddr(3),
                        src: gb(S0),
                    });
                }
                self.idx3 = Some(b);
                (3, (r - b) as usize)
            }
            StackAddr::Dynamic { reg, off, align } => {
                let delta = i64::from(off) - i64::from(align);
                let (op, k) = if delta >= 0 {
                    (AluOp::Add, delta as u32)
                } else {
                    (AluOp::Sub, delta.unsigned_abs() as u32)
                };
                let k = self.src_u32(k, Bank::B, S0);
                self.emit(MeInsn::Alu {
                    op,
                    dst: Dst::Both(S0),
                    a: ga(lo(reg)),
                    b: k,
                });
                self.emit(MeInsn::CsrWrite {
                    csr: Csr::ActLmAddr(3),
                    src: gb(S0),
                });
                self.idx3 = None;
                (3, align as usize)
            }
        }
    }

    pub(crate) fn stack_load(&mut self, size: Size, d: Reg, base: Reg, off: i16, fold: Option<u8>) {
        let Some(a) = self.stack_addr(base, off, size) else {
            return;
        };
        let (index, start) = self.stack_window(a, size.bytes());
        self.load_words(
            d,
            size.bytes(),
            start,
            &|w| Src::Lm {
                index,
                off: w as u8,
            },
            fold,
        );
    }

    pub(crate) fn stack_store(&mut self, size: Size, base: Reg, v: StoreVal, off: i16) {
        let Some(a) = self.stack_addr(base, off, size) else {
            return;
        };
        let (index, start) = self.stack_window(a, size.bytes());
        self.store_words(v, size.bytes(), start, &|w| {
            let off = w as u8;
            (Src::Lm { index, off }, Dst::Lm { index, off })
        });
    }
}
