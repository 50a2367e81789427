//! The pieces the lowering works with: a relocatable code buffer, the register-type state
//! and the lowering context.

use vm_core::isa::{AluOp, Insn, Operand, Reg, Size, Width};

use super::LowerError;

/// A piece of code being built. Jumps inside it are relative, so a buffer can be lowered on
/// its own (a loop body is lowered several times before one version is kept) and appended
/// anywhere; only bpf-to-bpf calls need fixing up at link time, hence `calls`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Code {
    /// One entry per slot (`lddw` is followed by its tail).
    pub(crate) insns: Vec<Insn>,
    /// `(slot of a local call, subprogram index)`.
    pub(crate) calls: Vec<(usize, usize)>,
    /// Feature tags for coverage reports (see [`super::super::coverage`]).
    pub(crate) tags: Vec<&'static str>,
    /// Conditional branches emitted inside loop bodies (see [`super::MAX_LOOP_BRANCHES`]).
    pub(crate) loop_branches: u32,
}

impl Code {
    pub(crate) fn len(&self) -> usize {
        self.insns.len()
    }

    pub(crate) fn push(&mut self, insn: Insn) -> usize {
        let at = self.insns.len();
        self.insns.push(insn);
        if matches!(insn, Insn::LdImm64 { .. }) {
            self.insns.push(Insn::LdImm64Tail);
        }
        at
    }

    pub(crate) fn tag(&mut self, t: &'static str) {
        self.tags.push(t);
    }

    pub(crate) fn append(&mut self, other: Code) {
        let base = self.insns.len();
        self.insns.extend(other.insns);
        self.calls
            .extend(other.calls.into_iter().map(|(at, sub)| (at + base, sub)));
        self.tags.extend(other.tags);
        self.loop_branches += other.loop_branches;
    }

    pub(crate) fn mov_imm(&mut self, dst: Reg, imm: i32) {
        self.push(alu(AluOp::Mov, Width::W64, dst, Operand::Imm(imm)));
    }

    pub(crate) fn mov_reg(&mut self, dst: Reg, src: Reg) {
        self.push(alu(AluOp::Mov, Width::W64, dst, Operand::Reg(src)));
    }

    /// `dst = r10 + off`.
    pub(crate) fn frame_addr(&mut self, dst: Reg, off: i32) {
        self.mov_reg(dst, vm_core::isa::R10);
        self.push(alu(AluOp::Add, Width::W64, dst, Operand::Imm(off)));
    }

    pub(crate) fn store_imm(&mut self, size: Size, base: Reg, off: i16, imm: i32) {
        self.push(Insn::Store {
            size,
            dst: base,
            src: Operand::Imm(imm),
            off,
        });
    }

    pub(crate) fn store_reg(&mut self, size: Size, base: Reg, off: i16, src: Reg) {
        self.push(Insn::Store {
            size,
            dst: base,
            src: Operand::Reg(src),
            off,
        });
    }

    pub(crate) fn load(&mut self, size: Size, dst: Reg, base: Reg, off: i16) {
        self.push(Insn::Load {
            size,
            signed: false,
            dst,
            src: base,
            off,
        });
    }

    /// Points the 16-bit offset of the jump at `at` to the current end of the buffer.
    pub(crate) fn patch_here(&mut self, at: usize) -> Result<(), LowerError> {
        let here = self.insns.len();
        let rel = here as i64 - at as i64 - 1;
        match self.insns.get_mut(at) {
            Some(Insn::Jmp { off, .. }) => {
                *off = i16::try_from(rel).map_err(|_| LowerError::JumpTooFar { at, rel })?;
            }
            Some(Insn::Ja { off, long }) => {
                if !*long && i16::try_from(rel).is_err() {
                    return Err(LowerError::JumpTooFar { at, rel });
                }
                *off = i32::try_from(rel).map_err(|_| LowerError::JumpTooFar { at, rel })?;
            }
            _ => return Err(LowerError::NotAJump { at }),
        }
        Ok(())
    }
}

pub(crate) fn alu(op: AluOp, width: Width, dst: Reg, src: Operand) -> Insn {
    Insn::Alu {
        op,
        width,
        dst,
        src,
    }
}

/// Which of r0..r9 hold scalars the program may read (bit n = rn). Everything else is
/// uninitialised or a pointer: never read, never stored, never compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scalars(pub(crate) u16);

impl Scalars {
    pub(crate) fn has(self, r: Reg) -> bool {
        r < 10 && self.0 & (1 << r) != 0
    }
    pub(crate) fn set(&mut self, r: Reg) {
        if r < 10 {
            self.0 |= 1 << r;
        }
    }
    pub(crate) fn clear(&mut self, r: Reg) {
        if r < 10 {
            self.0 &= !(1 << r);
        }
    }
    /// After a helper or local call: r1..r5 are clobbered, r0 is the (scalar) result.
    pub(crate) fn after_call(&mut self) {
        for r in 1..=5 {
            self.clear(r);
        }
        self.set(0);
    }
    /// The state at a join: a scalar only where both paths have one.
    pub(crate) fn meet(self, other: Scalars) -> Scalars {
        Scalars(self.0 & other.0)
    }
    /// Whether `self` has at least the scalars of `other`.
    pub(crate) fn covers(self, other: Scalars) -> bool {
        other.0 & !self.0 == 0
    }
}

/// The memory a [`MemOp`](super::super::recipe::MemOp) refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Region {
    /// The stack's scalar area.
    Stack,
    /// `len` checked packet bytes at register `base`.
    Packet { base: Reg, len: u16 },
    /// A map value of `size` bytes at register `base`.
    Value { base: Reg, size: u16 },
}

/// Where a statement is lowered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cx {
    /// Memory region of `Mem` statements.
    pub(crate) region: Region,
    /// Registers statements must not write (loop counters, region base pointers).
    pub(crate) reserved: u16,
    /// Whether the context pointer is spilled at the ctx slot (main program only).
    pub(crate) has_ctx: bool,
    /// Subprogram being lowered (`None`: main); calls go to later subprograms only.
    pub(crate) sub: Option<usize>,
    /// Number of subprograms in the recipe.
    pub(crate) nsubs: usize,
    /// Product of the iteration counts of the enclosing loops (see [`super::MAX_ITERATIONS`]).
    pub(crate) iters: u32,
    /// `iters` at the function's top level: below it, the code is inside a loop.
    pub(crate) fn_iters: u32,
}

impl Cx {
    pub(crate) fn is_reserved(&self, r: Reg) -> bool {
        r < 10 && self.reserved & (1 << r) != 0
    }

    /// Helper and local calls clobber r0..r5 and invalidate packet pointers: allowed only at
    /// stack level with nothing reserved below r6.
    pub(crate) fn calls_ok(&self) -> bool {
        self.region == Region::Stack && self.reserved & 0x3f == 0
    }

    /// Local calls are also kept out of loop bodies: the verifier walks the callee again for
    /// every path that reaches the call, and inside a loop those multiply per iteration.
    pub(crate) fn local_call_ok(&self) -> bool {
        self.calls_ok() && self.iters == self.fn_iters
    }

    pub(crate) fn reserve(mut self, r: Reg) -> Cx {
        if r < 10 {
            self.reserved |= 1 << r;
        }
        self
    }

    /// `r` if writable, else the next writable register after it (r10 is never used).
    pub(crate) fn writable(&self, r: Reg) -> Option<Reg> {
        let r = r % 10;
        (0..10)
            .map(|k| (r + k) % 10)
            .find(|&q| !self.is_reserved(q))
    }
}
