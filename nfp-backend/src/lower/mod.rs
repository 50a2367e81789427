//! Lowering: one verified eBPF program to microengine instructions ([`MeInsn`]).
//!
//! Conventions are those of `target::insn` (eBPF `Rn` = GPR pair `2n`/`2n+1` written to both
//! banks, GPR 20/21 scratch, A22 stack base, B22 packet length, the packet vector behind LM
//! index 1). Each eBPF instruction class lives in its own module; the optimisations of the
//! kernel NFP JIT (nfp-model.md §2.7) are separate functions switched by [`LowerOptions`] so
//! their effect can be measured one by one.
//!
//! Why per-instruction translation with a few plans made up front: like the kernel JIT, the
//! lowering sees each instruction once, in order, and only needs (a) the verifier's facts
//! (pointer kinds, zext flags, ranges), (b) which slots are jump targets (caches and LM
//! windows are forgotten there) and (c) the packet-cache and load-mask plans, computed before
//! emission because they look ahead.

mod alu;
mod call;
pub mod cycles;
mod hi_live;
mod imm;
mod jmp;
mod mem;
mod muldiv;
mod packet;
mod ranges;
pub mod recorder;
mod stack;
mod zext;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_corpus;
#[cfg(test)]
mod tests_opt;
#[cfg(test)]
mod tests_props;

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use verifier::InsnFacts;
use vm_core::Program;
use vm_core::isa::{CallTarget, Insn, Reg};

use crate::reason::Reason;
use crate::target::{AluOp, Bank, Cond, Csr, Dst, MeInsn, Src};
use recorder::OperandFacts;

pub(crate) use call::frame_bytes as call_frame_bytes;

/// Scratch GPRs (both banks).
pub(crate) const S0: u8 = 20;
/// Second scratch GPR.
pub(crate) const S1: u8 = 21;
/// A22: stack base; B22: packet length.
pub(crate) const R22: u8 = 22;
/// Category of reasons the lowering itself produces.
pub const NOT_LOWERED: &str = "not_lowered";
/// Category of the instruction-store limit.
pub const INSN_LIMIT: &str = "insn_limit";
/// Slots of the ustore prefetch tail appended after the program (nfp-model.md §1.7).
pub const PREFETCH_TAIL: usize = 8;

/// Which of the NFP JIT's optimisations to apply (all on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowerOptions {
    /// `add`/`sub` of a negative immediate become `sub`/`add` of its (8-bit) negation.
    pub imm_fold: bool,
    /// A narrow load followed by `and` with a byte mask: the mask is applied by the load.
    pub ld_mask_fold: bool,
    /// Several packet loads through one pointer are served by one CTM read.
    pub pkt_cache: bool,
    /// The top 64 stack bytes of the main function are reached through LM index 0 without
    /// reprogramming a window per access.
    pub lm_window0: bool,
    /// Branches the verifier proved never (or always) taken become nothing (or `br`).
    pub dead_branch: bool,
    /// 64-bit compares of two values the lowering's own ranges bound to 32 bits compare
    /// the low words only.
    pub narrow_cmp: bool,
    /// 64-bit moves, adds, subtracts, bitwise ops and left shifts by a constant whose
    /// result's upper half no path reads compute the low word only.
    pub dead_hi: bool,
    /// A register copy followed by an ALU op on the copy (`mov d, s; d op= x`) becomes one
    /// op reading `s` (`d = s op x`).
    pub mov_fold: bool,
    /// A 16-bit load followed by `be16` of the same register becomes two byte-field loads
    /// straight from the loaded word, in swapped order.
    pub swap_fold: bool,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions {
            imm_fold: true,
            ld_mask_fold: true,
            pkt_cache: true,
            lm_window0: true,
            dead_branch: true,
            narrow_cmp: true,
            dead_hi: true,
            mov_fold: true,
            swap_fold: true,
        }
    }
}

impl LowerOptions {
    /// Every optimisation off (the baseline the unit tests compare against).
    pub const NONE: LowerOptions = LowerOptions {
        imm_fold: false,
        ld_mask_fold: false,
        pkt_cache: false,
        lm_window0: false,
        dead_branch: false,
        narrow_cmp: false,
        dead_hi: false,
        mov_fold: false,
        swap_fold: false,
    };
}

/// How often each optimisation fired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptCounts {
    /// Negative immediates folded into the opposite operation.
    pub imm_fold: u32,
    /// Masks folded into a load (the `and` emitted nothing).
    pub ld_mask_fold: u32,
    /// Packet loads served from an earlier bulk read.
    pub pkt_cache_hits: u32,
    /// Stack accesses through LM index 0 (no window set-up).
    pub lm_window0: u32,
    /// Stack accesses reusing an already programmed LM index 3 window.
    pub lm_window3_reuse: u32,
    /// Conditional branches removed or made unconditional by reachability facts.
    pub dead_branch: u32,
    /// 64-bit compares done on the low words.
    pub narrow_cmp: u32,
    /// 64-bit ALU ops done on the low words (their upper half is dead).
    pub dead_hi: u32,
    /// Register copies merged into the ALU op after them.
    pub mov_fold: u32,
    /// Byte swaps done by the 16-bit load before them.
    pub swap_fold: u32,
}

impl OptCounts {
    /// `(name, count)` pairs for reports.
    pub fn entries(&self) -> [(&'static str, u32); 10] {
        [
            ("imm_fold", self.imm_fold),
            ("ld_mask_fold", self.ld_mask_fold),
            ("pkt_cache_hits", self.pkt_cache_hits),
            ("lm_window0", self.lm_window0),
            ("lm_window3_reuse", self.lm_window3_reuse),
            ("dead_branch", self.dead_branch),
            ("narrow_cmp", self.narrow_cmp),
            ("dead_hi", self.dead_hi),
            ("mov_fold", self.mov_fold),
            ("swap_fold", self.swap_fold),
        ]
    }
}

/// What the lowering produced.
#[derive(Debug, Clone, Default)]
pub struct Lowered {
    /// The code, prefetch tail included.
    pub code: Vec<MeInsn>,
    /// Per eBPF slot: the ME instructions it became.
    pub map: Vec<Range<usize>>,
    /// 32-bit definitions whose upper-half write was dropped.
    pub zext_elided: u32,
    /// 32-bit definitions that kept it (verifier flag set).
    pub zext_kept: u32,
    /// Optimisation counts.
    pub opts: OptCounts,
    /// ME addresses execution continues at after a bpf-to-bpf call returns.
    pub return_points: Vec<usize>,
}

/// A branch target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Label {
    /// The first ME instruction of an eBPF slot.
    Pc(usize),
    /// A lowering-internal label.
    Local(u32),
}

/// The eBPF second operand as the lowering sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Val {
    Reg(Reg),
    /// The 64-bit value (already sign- or zero-extended as the instruction requires).
    Imm(u64),
}

/// The function being lowered.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FnCtx {
    /// The main program (LM index 0 window valid, `exit` ends the program).
    pub main: bool,
    /// Bytes this function's frame reserves below its `r10` for calls it makes (its stack
    /// depth plus the save area of return address and R6–R9).
    pub call_frame: u32,
}

pub(crate) struct Lowerer<'a> {
    pub prog: &'a Program,
    pub facts: &'a [InsnFacts],
    pub ops: &'a [OperandFacts],
    pub opt: LowerOptions,
    pub out: Lowered,
    labels: HashMap<Label, usize>,
    fixups: Vec<(usize, Label)>,
    next_local: u32,
    /// Instructions still to pass before LM index `n` may be used.
    lm_pending: [u8; 4],
    /// Byte offset from A22 LM index 3 currently points at (static windows only).
    pub idx3: Option<u32>,
    /// Whether the main prologue pointed LM index 0 at the top 64 stack bytes.
    pub window0: bool,
    pub reasons: Vec<Reason>,
    pub pc: usize,
    pub func: FnCtx,
    /// Slots that are jump targets or function entries.
    pub targets: BTreeSet<usize>,
    /// Function entry slots (0 first).
    pub fn_starts: Vec<usize>,
    /// Per-function stack depth (from the verifier), in `fn_starts` order.
    pub depths: Vec<u32>,
    pub pkt_plan: HashMap<usize, packet::CacheSlot>,
    pub mask_plan: HashMap<usize, u8>,
    /// Sound register bounds/constants before each slot ([`ranges`]).
    pub known: Vec<Option<ranges::Known>>,
    /// Per slot: a 64-bit compare lowered on the low words ([`jmp::narrow_compares`]).
    pub narrow: Vec<bool>,
    /// Per slot: a 64-bit ALU op lowered on the low words ([`hi_live::analyse`]).
    pub dead_hi: Vec<bool>,
    /// With `narrow_cmp` or `dead_hi`: per slot, the registers whose upper half some path
    /// still reads before writing it, the low-word slots not counting (see [`Lowerer::zext`]).
    pub hi_live: Option<Vec<verifier::liveness::RegMask>>,
    /// Slots whose lowering was absorbed by the previous slot.
    pub skip: BTreeSet<usize>,
    abort_label: Option<Label>,
    /// The first code index `mov_fold` may rewrite: code before it precedes a label or a
    /// recorded branch, so something may reach the instruction after it from elsewhere.
    fold_floor: usize,
}

pub(crate) fn lo(r: Reg) -> u8 {
    2 * r
}
pub(crate) fn hi(r: Reg) -> u8 {
    2 * r + 1
}
pub(crate) fn ga(n: u8) -> Src {
    Src::Gpr(Bank::A, n)
}
pub(crate) fn gb(n: u8) -> Src {
    Src::Gpr(Bank::B, n)
}

fn lm_uses(insn: &MeInsn) -> [bool; 4] {
    let mut u = [false; 4];
    let mut s = |x: Src| {
        if let Src::Lm { index, .. } = x {
            u[usize::from(index & 3)] = true;
        }
    };
    let mut dsts: Option<Dst> = None;
    match *insn {
        MeInsn::Alu { dst, a, b, .. }
        | MeInsn::Shf { dst, a, b, .. }
        | MeInsn::Mul { dst, a, b, .. } => {
            s(a);
            s(b);
            dsts = Some(dst);
        }
        MeInsn::LdField { dst, b, .. } => {
            s(b);
            dsts = Some(dst);
        }
        MeInsn::Immed { dst, .. } | MeInsn::CsrRead { dst, .. } => dsts = Some(dst),
        MeInsn::Cmd { a, b, .. } => {
            s(a);
            s(b);
        }
        MeInsn::CsrWrite { src, .. } | MeInsn::Rtn { src, .. } | MeInsn::BrBit { src, .. } => {
            s(src)
        }
        _ => {}
    }
    if let Some(Dst::Lm { index, .. }) = dsts {
        u[usize::from(index & 3)] = true;
    }
    u
}

fn is_transfer(insn: &MeInsn) -> bool {
    matches!(
        insn,
        MeInsn::Br { .. }
            | MeInsn::BrBit { .. }
            | MeInsn::Rtn { .. }
            | MeInsn::FwCall { .. }
            | MeInsn::Exit
    )
}

impl<'a> Lowerer<'a> {
    pub fn new(
        prog: &'a Program,
        facts: &'a [InsnFacts],
        ops: &'a [OperandFacts],
        depths: &[u32],
        opt: LowerOptions,
    ) -> Lowerer<'a> {
        let n = prog.insns.len();
        let mut targets = BTreeSet::new();
        let mut fn_starts = vec![0usize];
        for (pc, insn) in prog.insns.iter().enumerate() {
            if let Some(t) = insn.jump_target(pc)
                && let Ok(t) = usize::try_from(t)
            {
                targets.insert(t);
            }
            if let Insn::Call(CallTarget::Local(_)) = insn
                && let Some(t) = insn.call_target(pc).and_then(|t| usize::try_from(t).ok())
            {
                targets.insert(t);
                fn_starts.push(t);
            }
        }
        fn_starts.sort_unstable();
        fn_starts.dedup();
        fn_starts.retain(|&s| s < n);
        let known = ranges::analyse(prog, &fn_starts);
        let narrow = if opt.narrow_cmp {
            jmp::narrow_compares(prog, &known, ops)
        } else {
            Vec::new()
        };
        let (dead_hi, hi_live) = if opt.narrow_cmp || opt.dead_hi {
            let (dead_hi, live) = hi_live::analyse(prog, facts, &narrow, opt.dead_hi);
            (dead_hi, Some(live))
        } else {
            (Vec::new(), None)
        };
        let depths = fn_starts
            .iter()
            .enumerate()
            .map(|(i, _)| depths.get(i).copied().unwrap_or(0))
            .collect();
        Lowerer {
            prog,
            facts,
            ops,
            opt,
            out: Lowered::default(),
            labels: HashMap::new(),
            fixups: Vec::new(),
            next_local: 0,
            lm_pending: [0; 4],
            idx3: None,
            window0: false,
            reasons: Vec::new(),
            pc: 0,
            func: FnCtx::default(),
            targets,
            fn_starts,
            depths,
            pkt_plan: HashMap::new(),
            mask_plan: HashMap::new(),
            known,
            narrow,
            dead_hi,
            hi_live,
            skip: BTreeSet::new(),
            abort_label: None,
            fold_floor: 0,
        }
    }

    /// The instruction at `pc`, if any.
    pub fn insn(&self, pc: usize) -> Option<&Insn> {
        self.prog.insns.get(pc)
    }

    pub fn fact(&self, pc: usize) -> InsnFacts {
        self.facts.get(pc).cloned().unwrap_or_default()
    }

    pub fn op(&self, pc: usize) -> OperandFacts {
        self.ops.get(pc).copied().unwrap_or_default()
    }

    pub fn reachable(&self, pc: usize) -> bool {
        self.facts.get(pc).is_some_and(|f| f.reachable)
    }

    /// Records a reason at the current instruction.
    pub fn reason(&mut self, category: &'static str, msg: impl Into<String>) {
        self.reasons.push(Reason::at(self.pc, category, msg));
    }

    pub fn not_lowered(&mut self, what: impl std::fmt::Display) {
        let pc = self.pc;
        self.reason(
            NOT_LOWERED,
            format!("[nfp] {what} not lowered at insn {pc}"),
        );
    }

    /// Emits one instruction, first padding with NOPs while a local-memory window it uses is
    /// still being reprogrammed (a CSR write takes effect three instructions later), and
    /// before any control transfer (so no pending latency crosses a branch).
    pub fn emit(&mut self, insn: MeInsn) {
        if self.opt.mov_fold && self.fold_mov(&insn) {
            return;
        }
        let uses = lm_uses(&insn);
        let transfer = is_transfer(&insn);
        loop {
            let wait = (0..4).any(|i| self.lm_pending[i] > 0 && (uses[i] || transfer));
            if !wait {
                break;
            }
            self.push(MeInsn::Nop);
        }
        self.push(insn);
        if let MeInsn::CsrWrite {
            csr: Csr::ActLmAddr(n),
            ..
        } = insn
        {
            self.lm_pending[usize::from(n & 3)] = 3;
        }
    }

    /// `mov_fold`: when an instruction copies eBPF register word `s` into `d` (both banks)
    /// and `insn` is `d = d op b` (`b` neither reading `d` nor an LM word), rewrites the copy
    /// into `d = s op b` and reports that `insn` needs no slot of its own. The copy is the
    /// last instruction, or, for a bitwise `op`, the one before a copy into another word
    /// (a 64-bit move emits both words' copies before the op's two steps).
    ///
    /// Why it is exact: the merged op reads the value the copy would have put in `d` and
    /// writes the same result to both banks. Only eBPF register words are copied from, which
    /// the lowering always writes to both banks, so reading `s` from bank A sees what the
    /// copy read from bank B. Directly after the copy, the condition codes are those of `op`
    /// on the same operands, as before. Moved ahead of the other word's copy, `op` must not
    /// read that word nor that copy `d`; the condition codes of the slot are then the copy's,
    /// which is why only bitwise ops move: the lowering reads condition codes only from the
    /// instruction before (a compare before its branch, an add's low step before its carry
    /// step), never across eBPF instructions, and a bitwise op's other step reads none.
    /// Carry-consuming ops are never merged (the copy changes the carry they read), and
    /// nothing is merged across a point another path may reach directly.
    fn fold_mov(&mut self, insn: &MeInsn) -> bool {
        let &MeInsn::Alu {
            op,
            dst: Dst::Both(d),
            a: Src::Gpr(Bank::A, a),
            b,
        } = insn
        else {
            return false;
        };
        let bitwise = matches!(
            op,
            AluOp::And | AluOp::AndNotA | AluOp::AndNotB | AluOp::Or | AluOp::Xor
        );
        let reads = |r: u8| matches!(b, Src::Gpr(_, x) if x == r);
        // An LM operand may have to wait out a window's latency after the copy: not moved.
        if !(bitwise || matches!(op, AluOp::Add | AluOp::Sub))
            || a != d
            || reads(d)
            || matches!(b, Src::Lm { .. })
        {
            return false;
        }
        let at = self.here();
        let copy_of = |i: &MeInsn| match *i {
            MeInsn::Alu {
                op: AluOp::PassB,
                dst: Dst::Both(to),
                a: Src::None,
                b: Src::Gpr(Bank::B, from),
            } => Some((to, from)),
            _ => None,
        };
        let last = at
            .checked_sub(1)
            .and_then(|i| self.out.code.get(i))
            .and_then(copy_of);
        let before = at
            .checked_sub(2)
            .and_then(|i| self.out.code.get(i))
            .and_then(copy_of);
        let pos = match (last, before) {
            (Some((to, _)), _) if to == d => at - 1,
            (Some((to, from)), Some((to2, _)))
                if bitwise && to2 == d && to != d && from != d && !reads(to) =>
            {
                at - 2
            }
            _ => return false,
        };
        let Some(&MeInsn::Alu {
            b: Src::Gpr(_, s), ..
        }) = self.out.code.get(pos)
        else {
            return false;
        };
        if pos < self.fold_floor || s >= S0 {
            return false;
        }
        if let Some(slot) = self.out.code.get_mut(pos) {
            *slot = MeInsn::Alu {
                op,
                dst: Dst::Both(d),
                a: Src::Gpr(Bank::A, s),
                b,
            };
        }
        self.out.opts.mov_fold += 1;
        true
    }

    /// The first code index a fold may rewrite (see `fold_floor`).
    pub(crate) fn fold_floor(&self) -> usize {
        self.fold_floor
    }

    fn push(&mut self, insn: MeInsn) {
        self.out.code.push(insn);
        for p in &mut self.lm_pending {
            *p = p.saturating_sub(1);
        }
    }

    /// Pads out any pending window latency (before a label other code may branch to).
    pub fn settle(&mut self) {
        while self.lm_pending.iter().any(|&p| p > 0) {
            self.push(MeInsn::Nop);
        }
    }

    pub fn here(&self) -> usize {
        self.out.code.len()
    }

    pub fn new_label(&mut self) -> Label {
        self.next_local += 1;
        Label::Local(self.next_local)
    }

    pub fn bind(&mut self, l: Label) {
        self.settle();
        let at = self.here();
        self.fold_floor = at;
        self.labels.insert(l, at);
        // Whatever reaches a label from elsewhere knows nothing of our windows or caches.
        self.idx3 = None;
    }

    /// A branch to a label, patched at the end.
    pub fn br(&mut self, cond: Cond, l: Label) {
        self.emit(MeInsn::Br {
            cond,
            target: 0,
            defer: 0,
        });
        let at = self.here() - 1;
        self.fixups.push((at, l));
        self.fold_floor = at + 1;
    }

    pub fn br_bit(&mut self, src: Src, bit: u8, set: bool, l: Label) {
        self.emit(MeInsn::BrBit {
            src,
            bit,
            set,
            target: 0,
            defer: 0,
        });
        let at = self.here() - 1;
        self.fixups.push((at, l));
        self.fold_floor = at + 1;
    }

    /// `immed[dst, address of l]` (the return address of a bpf-to-bpf call).
    pub fn immed_label(&mut self, dst: Dst, l: Label) {
        self.emit(MeInsn::Immed {
            dst,
            imm: 0,
            shift: 0,
            invert: false,
            width: crate::target::ImmedWidth::All,
        });
        let at = self.here() - 1;
        self.fixups.push((at, l));
        self.fold_floor = at + 1;
    }

    /// The shared abort stub (LD_ABS/LD_IND out of bounds: the program returns 0).
    pub fn abort_label(&mut self) -> Label {
        if let Some(l) = self.abort_label {
            return l;
        }
        let l = self.new_label();
        self.abort_label = Some(l);
        l
    }

    /// The function containing `pc`: (index, start).
    pub fn fn_of(&self, pc: usize) -> usize {
        self.fn_starts.iter().rposition(|&s| s <= pc).unwrap_or(0)
    }

    /// Lowers the whole program.
    pub fn run(mut self) -> (Lowered, Vec<Reason>) {
        let _span = tracing::debug_span!("lower", insns = self.prog.insns.len()).entered();
        if self.opt.pkt_cache {
            self.pkt_plan = packet::plan(&self);
        }
        if self.opt.ld_mask_fold {
            let (plan, skip) = mem::plan_mask_folds(&self);
            self.mask_plan = plan;
            self.skip = skip;
        }
        self.out.map = vec![0..0; self.prog.insns.len()];
        self.prologue();
        for pc in 0..self.prog.insns.len() {
            self.pc = pc;
            if self.fn_starts.contains(&pc) {
                let f = self.fn_of(pc);
                self.func = FnCtx {
                    main: f == 0,
                    call_frame: call::frame_bytes(self.depths.get(f).copied().unwrap_or(0)),
                };
            }
            if self.targets.contains(&pc) {
                self.bind(Label::Pc(pc));
            } else {
                let at = self.here();
                self.labels.insert(Label::Pc(pc), at);
            }
            let start = self.here();
            if pc != 0 && self.fn_starts.contains(&pc) && self.reachable(pc) {
                self.subprog_prologue();
            }
            if self.reachable(pc)
                && !self.skip.contains(&pc)
                && let Some(insn) = self.insn(pc).copied()
            {
                self.lower_insn(insn);
            }
            self.out.map[pc] = start..self.here();
        }
        if let Some(l) = self.abort_label {
            self.bind(l);
            self.emit(imm::immed(Dst::Both(0), 0));
            self.emit(imm::immed(Dst::Both(1), 0));
            self.emit(MeInsn::Exit);
        }
        self.settle();
        for _ in 0..PREFETCH_TAIL {
            self.push(MeInsn::Nop);
        }
        self.patch();
        (self.out, self.reasons)
    }

    fn patch(&mut self) {
        for &(at, l) in &self.fixups {
            let Some(&addr) = self.labels.get(&l) else {
                self.reasons.push(Reason::program(
                    NOT_LOWERED,
                    format!("[nfp] internal: unbound label {l:?}"),
                ));
                continue;
            };
            let t = u16::try_from(addr).unwrap_or(u16::MAX);
            if let Some(insn) = self.out.code.get_mut(at) {
                match insn {
                    MeInsn::Br { target, .. } | MeInsn::BrBit { target, .. } => *target = t,
                    MeInsn::Immed { imm, .. } => *imm = t,
                    _ => {}
                }
            }
        }
    }

    /// Main-function prologue: point LM index 0 at the top 64 stack bytes when the main
    /// function accesses them (the JIT's "first 64 bytes through index 0").
    fn prologue(&mut self) {
        if !self.opt.lm_window0 || !stack::main_uses_top_window(self) {
            return;
        }
        // A22 + 448: the top 64 bytes of the 512-byte frame area (r10-64 .. r10-1).
        self.emit(imm::immed(Dst::Both(S0), stack::WINDOW0_BASE as u16));
        self.emit(MeInsn::Alu {
            op: crate::target::AluOp::Add,
            dst: Dst::Both(S0),
            a: ga(R22),
            b: gb(S0),
        });
        self.emit(MeInsn::CsrWrite {
            csr: Csr::ActLmAddr(0),
            src: gb(S0),
        });
        self.window0 = true;
    }

    fn lower_insn(&mut self, insn: Insn) {
        match insn {
            Insn::Alu {
                op,
                width,
                dst,
                src,
            } => self.lower_alu(op, width, dst, src),
            Insn::Neg { width, dst } => self.lower_neg(width, dst),
            Insn::Endian { order, bits, dst } => self.lower_endian(order, bits, dst),
            Insn::Load {
                size,
                signed,
                dst,
                src,
                off,
            } => self.lower_load(size, signed, dst, src, off),
            Insn::Store {
                size,
                dst,
                src,
                off,
            } => self.lower_store(size, dst, src, off),
            Insn::Atomic {
                op,
                size,
                fetch,
                dst,
                src,
                off,
            } => self.lower_atomic(op, size, fetch, dst, src, off),
            Insn::LdImm64 { dst, value } => self.lower_ld_imm64(dst, value),
            Insn::LdImm64Tail => {}
            Insn::LdAbs { size, imm } => self.lower_ld_abs(size, None, imm),
            Insn::LdInd { size, src, imm } => self.lower_ld_abs(size, Some(src), imm),
            Insn::Ja { off, long } => self.lower_ja(off, long),
            Insn::Jmp {
                cond,
                width,
                dst,
                src,
                off,
            } => self.lower_jmp(cond, width, dst, src, off),
            Insn::Call(t) => self.lower_call(t),
            Insn::CallX { .. } => self.not_lowered("callx"),
            Insn::Exit => self.lower_exit(),
        }
    }
}
