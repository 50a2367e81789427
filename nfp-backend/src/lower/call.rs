//! Calls and exits: firmware helpers (`FwCall`, arguments already in the R1..R5 pairs),
//! bpf-to-bpf calls (return address in A21, `rtn` back), and program exit.
//!
//! Frames: `A22` is the current function's stack base, its `r10` is `A22 + 512`. A call moves
//! `A22` down by the caller's frame (stack depth rounded to 8 plus a 36-byte save area for the
//! caller's own return address and R6–R9 — callee-saved in eBPF, clobberable by the callee's
//! code here), so the whole chain stays inside the thread's 512-byte area; the save area is
//! written and read back through LM index 2 (nfp-model.md §1.6: "callee frame reserves 4 B for
//! return address, +32 B if it clobbers R6–R9").

use vm_core::isa::CallTarget;

use super::alu::alu;
use super::{Label, Lowerer, R22, S0, S1, ga, gb, hi, lo};
use crate::target::{AluOp, Bank, Cond, Csr, Dst, FwHelper, MeInsn, Src};

/// Bytes of the save area: return address + R6..R9 (8 words).
pub(crate) const SAVE_AREA: u32 = 36;

/// Bytes a function's frame takes below its `r10` when it calls another function.
pub(crate) fn frame_bytes(depth: u32) -> u32 {
    (depth.div_ceil(8) * 8 + SAVE_AREA).div_ceil(8) * 8
}

/// The firmware helper implementing eBPF helper `id`.
pub(crate) fn fw_helper(id: i32) -> Option<FwHelper> {
    Some(match id {
        1 => FwHelper::MapLookup,
        2 => FwHelper::MapUpdate,
        3 => FwHelper::MapDelete,
        7 => FwHelper::Random,
        25 => FwHelper::PerfEventOutput,
        44 => FwHelper::AdjustHead,
        65 => FwHelper::AdjustTail,
        _ => return None,
    })
}

impl Lowerer<'_> {
    pub(crate) fn lower_call(&mut self, t: CallTarget) {
        match t {
            CallTarget::Helper(id) => match fw_helper(id) {
                Some(h) => {
                    self.emit(MeInsn::FwCall { helper: h });
                    self.idx3 = None;
                }
                None => self.reason("helper", format!("[nfp] unsupported function id: {id}")),
            },
            CallTarget::Local(rel) => {
                let target = self.pc as i64 + 1 + i64::from(rel);
                match usize::try_from(target) {
                    Ok(t) => self.local_call(t),
                    Err(_) => self.not_lowered("call outside the program"),
                }
            }
            CallTarget::Kfunc(_) => self.not_lowered("kfunc call"),
        }
    }

    /// Points LM index 2 at `A22 + off` (S0 used; S1 = A21 left alone).
    fn point_idx2(&mut self, off: u32) {
        self.load_u32(Dst::Both(S0), off);
        self.emit(alu(AluOp::Add, Dst::Both(S0), ga(R22), gb(S0)));
        self.emit(MeInsn::CsrWrite {
            csr: Csr::ActLmAddr(2),
            src: gb(S0),
        });
    }

    fn local_call(&mut self, callee: usize) {
        let frame = self.func.call_frame;
        if frame > 512 {
            // Refused as a whole-program reason by the stack check; emit nothing here.
            self.reason(
                "stack_size",
                format!("[nfp] call frame of {frame}B exceeds the stack"),
            );
            return;
        }
        // Save area at r10 - frame: word 0 = the callee's return address, words 1..8 = R6..R9.
        self.point_idx2(512 - frame);
        let fb = self.src_u32(frame, Bank::B, S0);
        // Move the stack base down (fills part of the CSR latency).
        self.emit(alu(AluOp::Sub, Dst::Gpr(Bank::A, R22), ga(R22), fb));
        let mut off = 1;
        for r in 6..=9u8 {
            for g in [lo(r), hi(r)] {
                self.emit(alu(
                    AluOp::PassB,
                    Dst::Lm { index: 2, off },
                    Src::None,
                    gb(g),
                ));
                off += 1;
            }
        }
        let ret = self.new_label();
        self.immed_label(Dst::Gpr(Bank::A, S1), ret);
        self.br(Cond::Always, Label::Pc(callee));
        self.bind(ret);
        let at = self.here();
        self.out.return_points.push(at);
        // Back in the caller: restore the stack base, then R6..R9.
        let fb = self.src_u32(frame, Bank::B, S0);
        self.emit(alu(AluOp::Add, Dst::Gpr(Bank::A, R22), ga(R22), fb));
        self.point_idx2(512 - frame);
        let mut off = 1;
        for r in 6..=9u8 {
            for g in [lo(r), hi(r)] {
                self.emit(alu(
                    AluOp::PassB,
                    Dst::Both(g),
                    Src::None,
                    Src::Lm { index: 2, off },
                ));
                off += 1;
            }
        }
        self.idx3 = None;
    }

    /// Subprogram entry: the return address arrives in A21, which is also a scratch register,
    /// so it goes to the word just above the callee's frame (its `r10 + 0`, word 0 of the
    /// caller's save area) before anything else runs.
    pub(crate) fn subprog_prologue(&mut self) {
        self.point_idx2(512);
        self.emit(alu(
            AluOp::PassB,
            Dst::Lm { index: 2, off: 0 },
            Src::None,
            ga(S1),
        ));
    }

    pub(crate) fn lower_exit(&mut self) {
        if self.func.main {
            self.emit(MeInsn::Exit);
        } else {
            self.point_idx2(512);
            self.emit(alu(
                AluOp::PassB,
                Dst::Both(S1),
                Src::None,
                Src::Lm { index: 2, off: 0 },
            ));
            self.emit(MeInsn::Rtn {
                src: ga(S1),
                defer: 0,
            });
        }
    }
}
