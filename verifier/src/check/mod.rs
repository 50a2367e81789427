//! The path walk (the kernel's `do_check`): simulate every instruction on abstract states,
//! depth first, pushing the other side of each undecided branch, until every path has
//! reached `exit` or was pruned against a state already proven safe.
//!
//! One module per instruction family: [`alu`] (arithmetic, moves, pointer arithmetic),
//! [`mem`] and [`stack`] (loads, stores, atomics and the memory regions they reach),
//! [`jmp`] (conditional jumps, branch refinement, NULL checks, packet ranges), [`call`]
//! (helpers, bpf-to-bpf calls, exits, legacy packet loads). This file owns the loop, the stack
//! of pending branches, register read/write bookkeeping (including the zero-extension marks)
//! and the log lines of each step.

mod alu;
mod call;
mod jmp;
mod mem;
mod stack;

use vm_core::isa::{DecodeErrorKind, Insn};
use vm_core::{MapDef, ProgType};

use crate::VerifyOptions;
use crate::cfg::Cfg;
use crate::code::{Code, Slot};
use crate::error::{Errno, VResult, VerifierError};
use crate::facts::{InsnFacts, PtrKind};
use crate::liveness::RegMask;
use crate::log::{self, Log, Selection, Stats};
use crate::offload::OffloadHooks;
use crate::precision::{LinkedSet, SegEntry};
use crate::prune::{Explored, Visit};
use crate::reg::{RegState, RegType};
use crate::stack_live::{StackLiveness, loop_slots};
use crate::state::{MAX_CALL_FRAMES, VerifierState};

/// What to do after an instruction.
pub(crate) enum Flow {
    /// Continue at this slot.
    Next(usize),
    /// This path is finished (exit of the main program, or both branch edges impossible).
    Done,
}

/// A branch waiting to be explored.
struct Pending {
    pc: usize,
    prev: usize,
    state: VerifierState,
    parent: Option<usize>,
    /// Where its path segment starts in [`Walker::pending_segs`] (it runs to the end).
    seg_start: usize,
    seg_written: [u64; MAX_CALL_FRAMES],
    hist: u32,
    log_pos: usize,
}

/// Per-instruction bookkeeping that outlives a single path.
#[derive(Debug, Clone, Default)]
pub(crate) struct InsnAux {
    /// The pointer type seen by this load/store (the kernel's `ptr_type` aux): a context
    /// access is rewritten per field, so one instruction cannot serve both.
    pub ptr_type: Option<RegType>,
}

/// Instruction-history entries after which a checkpoint is forced (the kernel's 40).
pub(crate) const MAX_HIST: u32 = 40;

/// Finished states kept for reuse.
const MAX_SPARE_STATES: usize = 32;

/// The kernel's `BPF_COMPLEXITY_LIMIT_JMP_SEQ`: pending branches at once.
const MAX_PENDING: usize = 8192;

/// The walk over one program.
pub(crate) struct Walker<'a> {
    pub code: &'a Code,
    pub cfg: &'a Cfg,
    pub live: &'a [RegMask],
    /// Registers some path reads as 64 bits before writing (for zero-extension marks).
    pub live64: &'a [RegMask],
    pub maps: &'a [MapDef],
    pub prog_type: ProgType,
    pub opts: &'a VerifyOptions,
    pub hooks: Option<&'a mut dyn OffloadHooks>,
    pub log: Log,
    /// The current path's state.
    pub st: VerifierState,
    /// The most recent stored checkpoint on the current path.
    pub parent: Option<usize>,
    pub pc: usize,
    pub prev_pc: usize,
    pending: Vec<Pending>,
    pub explored: Explored,
    pub aux: Vec<InsnAux>,
    pub facts: Vec<InsnFacts>,
    pub id_gen: u32,
    pub stats: Stats,
    pub jmps_processed: u64,
    pub prev_jmps: u64,
    pub prev_insns: u64,
    /// Deepest stack use per subprogram (bytes).
    pub stack_depth: Vec<u32>,
    /// Registers and stack slots the current instruction touched (for its log line).
    touched_regs: u16,
    touched_slots: u64,
    /// The log already shows the state for this instruction (a call or return printed it).
    state_printed: bool,
    /// The last instruction's state as the log shows it, printed ahead of time: where it
    /// starts and whether it replaced the instruction line's newline. The kernel prints it
    /// only when the next instruction is walked, so a prune there takes it back.
    deferred_state: Option<(usize, bool)>,
    /// Instructions executed since the last checkpoint (for precision backtracking).
    pub seg: Vec<SegEntry>,
    /// The fixed-offset stack slot (frame, slot) the current instruction accessed.
    pub cur_stack: Option<(u8, u8)>,
    /// The scalars the current instruction (an undecided conditional jump) refined
    /// together, for precision backtracking.
    pub cur_linked: LinkedSet,
    /// Per frame: stack slots fully written since the last checkpoint.
    pub seg_written: [u64; MAX_CALL_FRAMES],
    /// The path segments of the pending branches, stacked in the order they were pushed (a
    /// branch is resumed last-in first-out, so its segment is always the top one): no
    /// allocation per branch.
    pending_segs: Vec<SegEntry>,
    /// Finished states whose buffers the next copy reuses.
    spare: Vec<VerifierState>,
    /// Entries the kernel's instruction history would have gained since the last
    /// checkpoint of this path (jump points visited, spills and fills, linked-register
    /// records): past [`MAX_HIST`] the next prune point stores a state whatever the other
    /// heuristics say, as the kernel does to bound its history.
    pub hist: u32,
    /// The current instruction already has an entry in that history (the kernel's
    /// `cur_hist_ent`): a jump point's entry, a spill or fill, or a linked-register record
    /// of the same instruction share one entry, so only the first counts.
    pub hist_ent: bool,
    /// The path was just resumed from a branch pushed at this instruction (for the log).
    resumed: Option<usize>,
    /// Which stack slots stored states' continuations may read (Linux 6.18's analysis).
    pub(crate) slive: StackLiveness,
    /// Per slot: on a cycle of the graph (see [`crate::stack_live::loop_slots`]).
    pub(crate) in_loop: Vec<bool>,
}

impl<'a> Walker<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        code: &'a Code,
        cfg: &'a Cfg,
        live: &'a [RegMask],
        live64: &'a [RegMask],
        maps: &'a [MapDef],
        prog_type: ProgType,
        opts: &'a VerifyOptions,
        hooks: Option<&'a mut dyn OffloadHooks>,
    ) -> Walker<'a> {
        let len = code.len();
        Walker {
            code,
            cfg,
            live,
            live64,
            maps,
            prog_type,
            opts,
            hooks,
            log: Log::new(opts.log_level),
            st: VerifierState::entry(),
            parent: None,
            pc: 0,
            prev_pc: 0,
            pending: Vec::new(),
            explored: Explored::new(len),
            aux: vec![InsnAux::default(); len],
            facts: vec![InsnFacts::default(); len],
            id_gen: 0,
            stats: Stats::default(),
            jmps_processed: 0,
            prev_jmps: 0,
            prev_insns: 0,
            stack_depth: vec![0; cfg.subprogs.len()],
            touched_regs: 0,
            touched_slots: 0,
            state_printed: false,
            deferred_state: None,
            seg: Vec::with_capacity(64),
            cur_stack: None,
            cur_linked: LinkedSet::default(),
            seg_written: [0; MAX_CALL_FRAMES],
            pending_segs: Vec::new(),
            spare: Vec::new(),
            hist: 0,
            hist_ent: false,
            resumed: None,
            slive: StackLiveness::default(),
            // Most programs have no loop (the search is a sixteenth of verifying the ratio
            // table's medium program, callgrind): without a cycle no slot is on one.
            in_loop: if cfg.has_cycle {
                loop_slots(code)
            } else {
                vec![false; code.len()]
            },
        }
    }

    /// A fresh id for NULL checks, packet pointers and linked scalars.
    pub fn new_id(&mut self) -> u32 {
        self.id_gen += 1;
        self.id_gen
    }

    /// Prepares scalar register `r` for a copy (`rX = rY`, a spill) that should stay linked
    /// to it, and returns its new state: an unlinked non-constant scalar gets a fresh id for
    /// the copy to share. A register that is a copy plus a constant first drops that link,
    /// as in Linux 6.18: a link holds one delta, and the new copy's delta would be relative
    /// to this register rather than to the base.
    pub fn link_for_copy(&mut self, r: u8) -> RegState {
        let reg = *self.st.reg(r);
        if reg.is_scalar() {
            let mut id = reg.id;
            let mut off = reg.off;
            if reg.link_delta().is_some() {
                (id, off) = (0, 0);
            }
            if id == 0 && !reg.var.is_const() {
                id = self.new_id();
            }
            let reg = self.st.reg_mut(r);
            (reg.id, reg.off) = (id, off);
        }
        *self.st.reg(r)
    }

    /// Privileged profile (root): pointer leaks allowed, uninitialised stack readable.
    pub fn privileged(&self) -> bool {
        self.opts.privileged
    }

    /// The kernel's `is_pointer_value`: a pointer where an unprivileged program must not
    /// expose one. Always false when privileged.
    pub fn is_leak(&self, reg: &RegState) -> bool {
        !self.privileged() && reg.is_pointer()
    }

    fn err_eacces(&self, msg: impl Into<String>) -> VerifierError {
        VerifierError::eacces(self.pc, msg)
    }

    fn err_einval(&self, msg: impl Into<String>) -> VerifierError {
        VerifierError::einval(self.pc, msg)
    }

    pub fn touch_reg(&mut self, r: u8) {
        if r < 16 {
            self.touched_regs |= 1 << r;
        }
    }

    pub fn touch_slot(&mut self, spi: usize) {
        if spi < 64 {
            self.touched_slots |= 1 << spi;
        }
    }

    /// Reads register `r` as a source operand (the kernel's `check_reg_arg(SRC_OP)`); a
    /// 64-bit read of a value defined by a 32-bit write marks that write as needing
    /// zero-extension.
    pub fn read_reg(&mut self, r: u8, rw64: bool) -> VResult<RegState> {
        if r > 10 {
            return Err(self.err_einval(format!("R{r} is invalid")));
        }
        self.touch_reg(r);
        let pc = self.pc;
        let reg = self.st.reg_mut(r);
        if !reg.is_init() {
            return Err(VerifierError::eacces(pc, format!("R{r} !read_ok")));
        }
        if r != 10 && rw64 && reg.subreg_def != 0 {
            let def = reg.subreg_def as usize - 1;
            reg.subreg_def = 0;
            if let Some(f) = self.facts.get_mut(def) {
                f.zext = true;
            }
        }
        Ok(*self.st.reg(r))
    }

    /// Checks that `r` may be written (R10 may not).
    pub fn check_dst(&mut self, r: u8) -> VResult<()> {
        if r > 10 {
            return Err(self.err_einval(format!("R{r} is invalid")));
        }
        if r == 10 {
            return Err(self.err_eacces("frame pointer is read only"));
        }
        Ok(())
    }

    /// Writes `r`; `rw64 == false` makes it a 32-bit sub-register definition at this pc.
    pub fn write_reg(&mut self, r: u8, mut val: RegState, rw64: bool) {
        val.subreg_def = if rw64 { 0 } else { self.pc as u32 + 1 };
        if val.is_scalar() {
            let f = &mut self.facts[self.pc];
            f.dst = Some(match f.dst {
                Some(b) => b.union(&val.var),
                None => val.var,
            });
        }
        self.touch_reg(r);
        *self.st.reg_mut(r) = val;
    }

    /// Records the kind of pointer a memory instruction used (per-instruction fact).
    pub fn note_mem(&mut self, kind: PtrKind) {
        let f = &mut self.facts[self.pc];
        f.mem = Some(match f.mem {
            None => kind,
            Some(k) if k == kind => k,
            Some(_) => PtrKind::Mixed,
        });
    }

    /// Records the stack use of frame `frame` reaching down to `fp + min_off`.
    pub fn note_stack_depth(&mut self, frame: usize, min_off: i64) {
        if min_off < 0
            && let Some(f) = self.st.frames.get_mut(frame)
        {
            f.stack.grow(((-min_off - 1) / 8) as usize);
        }
        if let Some(f) = self.st.frames.get(frame) {
            let depth = u32::try_from(-min_off).unwrap_or(0);
            if let Some(d) = self.stack_depth.get_mut(f.subprog) {
                *d = (*d).max(depth);
            }
        }
    }

    /// The current instruction reads slot `spi` of frame `f` (for the stack liveness
    /// analysis; the kernel's `bpf_mark_stack_read`).
    pub(crate) fn live_read(&mut self, f: usize, spi: usize) {
        self.slive.read(&self.st, self.cfg, self.pc, f, spi);
    }

    /// The current instruction gets an entry in the path's history, unless it has one.
    pub(crate) fn count_hist_entry(&mut self) {
        if !self.hist_ent {
            self.hist += 1;
            self.hist_ent = true;
        }
    }

    /// Runs the walk to completion.
    pub fn run(&mut self) -> VResult<()> {
        let _span = tracing::debug_span!("do_check", insns = self.code.len()).entered();
        if self.log.enabled() {
            let s = log::fmt_state(&self.st, self.maps);
            self.log.line(&format!("0:{s}"));
        }
        loop {
            self.stats.insn_processed += 1;
            if self.stats.insn_processed > log::INSN_LIMIT {
                return Err(VerifierError::new(
                    self.pc,
                    Errno::E2BIG,
                    format!(
                        "BPF program is too large. Processed {} insn",
                        self.stats.insn_processed
                    ),
                ));
            }
            let resumed = self.resumed.take();
            if self.cfg.prune_points.get(self.pc).copied().unwrap_or(false) {
                match self.is_state_visited()? {
                    Visit::Pruned => {
                        if let Some((pos, newline)) = self.deferred_state.take()
                            && resumed.is_none()
                        {
                            self.log.truncate(pos);
                            if newline {
                                self.log.push("\n");
                            }
                        }
                        if self.log.enabled() {
                            match resumed {
                                Some(prev) if self.log.verbose() => self
                                    .log
                                    .line(&format!("\nfrom {prev} to {}: safe", self.pc)),
                                _ => self.log.line(&format!("{}: safe", self.pc)),
                            }
                        }
                        if self.end_path()? {
                            return Ok(());
                        }
                        continue;
                    }
                    Visit::Continue => {}
                }
            }
            self.hist_ent = false;
            if self.cfg.jmp_points.get(self.pc).copied().unwrap_or(false) {
                self.count_hist_entry();
            }
            if let Some(prev) = resumed
                && self.log.enabled()
            {
                let s = log::fmt_state(&self.st, self.maps);
                if self.log.verbose() {
                    self.log.line(&format!("\nfrom {prev} to {}:{s}", self.pc));
                }
                self.log.line(&format!("{}:{s}", self.pc));
            }
            self.slive.begin_insn(&self.st, self.cfg, self.pc);
            let depth = self.st.frames.len();
            let flow = self.step()?;
            self.slive.end_insn(self.st.frames.len() != depth);
            match flow {
                Flow::Next(next) => {
                    self.prev_pc = self.pc;
                    self.pc = next;
                }
                Flow::Done => {
                    if self.end_path()? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Simulates the instruction at `self.pc`.
    fn step(&mut self) -> VResult<Flow> {
        let pc = self.pc;
        let Some(slot) = self.code.slots.get(pc).cloned() else {
            return Err(self.err_einval(format!(
                "invalid insn idx {pc} insn_cnt {}",
                self.code.len()
            )));
        };
        self.facts[pc].reachable = true;
        self.facts[pc].visits = self.facts[pc].visits.saturating_add(1);
        self.touched_regs = 0;
        self.touched_slots = 0;
        self.state_printed = false;
        self.deferred_state = None;
        let line_start = self.log.pos();
        let opcode = self.code.opcodes.get(pc).copied().unwrap_or(0);
        let insn = match slot {
            Slot::Insn(i) => i,
            Slot::Bad(kind) => {
                if self.log.enabled() {
                    self.log.line(&format!("{pc}: ({opcode:02x}) <invalid>"));
                }
                let msg = match kind {
                    DecodeErrorKind::BadEndianWidth(_) => {
                        "BPF_END uses reserved fields".to_string()
                    }
                    k => k.to_string(),
                };
                return Err(self.err_einval(msg));
            }
        };
        if self.log.enabled() {
            self.log.push(&log::insn_text(pc, opcode, &insn));
        }
        let insn_len = self.log.pos() - line_start;
        if self.log.enabled() {
            self.log.push("\n");
        }
        if let Some(h) = self.hooks.as_deref_mut()
            && let Err(msg) = h.insn_hook(pc, &insn, &self.st)
        {
            return Err(VerifierError::new(pc, Errno::EOPNOTSUPP, msg));
        }
        self.cur_stack = None;
        self.cur_linked = LinkedSet::default();
        let flow = self.dispatch(&insn)?;
        self.seg.push(SegEntry {
            pc: pc as u32,
            stack: self.cur_stack.take(),
            linked: std::mem::take(&mut self.cur_linked),
        });
        // A finished path prints no state (the kernel moves on to the next branch).
        if self.log.enabled() && !self.state_printed && !matches!(flow, Flow::Done) {
            // The kernel prints an instruction's state when it starts the next one, labelled
            // with that one's index; a conditional jump prints its own, labelled with its.
            let label = match flow {
                Flow::Next(next) if !matches!(insn, Insn::Jmp { .. }) => next,
                _ => pc,
            };
            self.print_touched(line_start, insn_len, label);
            // A conditional jump prints its state itself, whatever comes next.
            if matches!(insn, Insn::Jmp { .. }) {
                self.deferred_state = None;
            }
        }
        Ok(flow)
    }

    /// Appends `; <touched state>` to the instruction's line, at the kernel's column.
    /// Like the kernel, it prints when anything was touched, even if nothing touched is
    /// still initialised (a `;` with no state after `call bpf_tail_call`).
    fn print_touched(&mut self, line_start: usize, insn_len: usize, label: usize) {
        if self.touched_regs == 0 && self.touched_slots == 0 {
            return;
        }
        let sel = Selection::Touched {
            regs: self.touched_regs,
            slots: self.touched_slots,
        };
        let s = log::fmt_frame(self.st.cur(), self.maps, sel);
        if self.log.pos() != line_start + insn_len + 1 {
            // Something was logged after the instruction (precision tracking): the state
            // goes on a line of its own, as in the kernel.
            self.deferred_state = Some((self.log.pos(), false));
            self.log.line(&format!("{label}:{s}"));
            return;
        }
        self.log.truncate(line_start + insn_len);
        self.deferred_state = Some((self.log.pos(), true));
        let pad = log::state_padding(insn_len);
        self.log.push(&" ".repeat(pad));
        self.log.line(&format!(";{s}"));
    }

    fn dispatch(&mut self, insn: &Insn) -> VResult<Flow> {
        let next = Flow::Next(self.pc + 1);
        match *insn {
            Insn::Alu {
                op,
                width,
                dst,
                src,
            } => self.check_alu(op, width, dst, src).map(|()| next),
            Insn::Neg { width, dst } => self.check_neg(width, dst).map(|()| next),
            Insn::Endian { order, bits, dst } => self.check_endian(order, bits, dst).map(|()| next),
            Insn::Load {
                size,
                signed,
                dst,
                src,
                off,
            } => self.check_load(size, signed, dst, src, off).map(|()| next),
            Insn::Store {
                size,
                dst,
                src,
                off,
            } => self.check_store(size, dst, src, off).map(|()| next),
            Insn::Atomic {
                op,
                size,
                fetch,
                dst,
                src,
                off,
            } => self
                .check_atomic(op, size, fetch, dst, src, off)
                .map(|()| next),
            Insn::LdImm64 { dst, value } => {
                self.check_ld_imm64(dst, value)?;
                Ok(Flow::Next(self.pc + 2))
            }
            Insn::LdImm64Tail => Err(self.err_einval("invalid BPF_LD_IMM insn")),
            Insn::LdAbs { .. } => self.check_ld_abs(None).map(|()| next),
            Insn::LdInd { src, .. } => self.check_ld_abs(Some(src)).map(|()| next),
            Insn::Ja { off, .. } => {
                self.jmps_processed += 1;
                Ok(Flow::Next(jump_target(self.pc, i64::from(off))?))
            }
            Insn::Jmp {
                cond,
                width,
                dst,
                src,
                off,
            } => {
                self.jmps_processed += 1;
                self.check_cond_jmp(cond, width, dst, src, off)
            }
            Insn::Call(target) => {
                self.jmps_processed += 1;
                self.check_call(target)
            }
            Insn::CallX { .. } => Err(self.err_einval(format!(
                "unknown opcode {:02x}",
                self.code.opcodes.get(self.pc).copied().unwrap_or(0)
            ))),
            Insn::Exit => {
                self.jmps_processed += 1;
                self.check_exit()
            }
        }
    }

    /// A copy of the current state, into a recycled one when there is one.
    pub fn copy_state(&mut self) -> VerifierState {
        match self.spare.pop() {
            Some(mut s) => {
                s.clone_from(&self.st);
                s
            }
            None => self.st.clone(),
        }
    }

    /// Keeps a state that is no longer needed for its buffers.
    pub fn recycle(&mut self, st: VerifierState) {
        if self.spare.len() < MAX_SPARE_STATES {
            self.spare.push(st);
        }
    }

    /// Queues the state `state` to resume at `pc` (the kernel's `push_stack`).
    pub fn push_branch(&mut self, pc: usize, state: VerifierState) -> VResult<()> {
        self.push_pending(pc, state, true)
    }

    /// Pushes `state` to be resumed at `pc`. With `record_current`, the current instruction's
    /// history record is part of the pushed path (a jump: both edges share it); without, only
    /// when the current instruction is a jump point, whose record the kernel made before
    /// executing it (a state forked to re-execute the current instruction).
    pub fn push_pending(
        &mut self,
        pc: usize,
        state: VerifierState,
        record_current: bool,
    ) -> VResult<()> {
        let record_current =
            record_current || self.cfg.jmp_points.get(self.pc).copied().unwrap_or(false);
        if self.pending.len() >= MAX_PENDING {
            return Err(VerifierError::new(
                self.pc,
                Errno::E2BIG,
                format!(
                    "The sequence of {} jumps is too complex.",
                    self.pending.len()
                ),
            ));
        }
        if let Some(p) = self.parent {
            self.explored.add_branch(p);
        }
        self.pending.push(Pending {
            pc,
            prev: self.pc,
            state,
            parent: self.parent,
            seg_start: {
                let start = self.pending_segs.len();
                self.pending_segs.extend_from_slice(&self.seg);
                // The jump's record is shared by both edges (the kernel pushes it to the
                // history before forking).
                if record_current {
                    self.pending_segs.push(SegEntry {
                        pc: self.pc as u32,
                        stack: None,
                        linked: self.cur_linked,
                    });
                }
                start
            },
            seg_written: self.seg_written,
            hist: self.hist,
            log_pos: self.log.pos(),
        });
        Ok(())
    }

    /// Finishes the current path and resumes the most recent pending branch. Returns `true`
    /// when nothing is left.
    fn end_path(&mut self) -> VResult<bool> {
        self.explored.path_done(self.parent);
        self.slive.update(&self.st, self.cfg, self.code);
        let Some(p) = self.pending.pop() else {
            return Ok(true);
        };
        if !self.log.verbose() {
            self.log.truncate(p.log_pos);
        }
        let done = std::mem::replace(&mut self.st, p.state);
        self.recycle(done);
        self.parent = p.parent;
        self.seg.clear();
        self.seg
            .extend_from_slice(self.pending_segs.get(p.seg_start..).unwrap_or(&[]));
        self.pending_segs.truncate(p.seg_start);
        self.seg_written = p.seg_written;
        self.hist = p.hist;
        self.prev_pc = p.prev;
        self.pc = p.pc;
        self.resumed = Some(p.prev);
        Ok(false)
    }

    /// The "same instruction, different pointer kinds" rule (`save_aux_ptr_type`): a context
    /// access is rewritten per field, so an instruction that reaches the context on one path
    /// and something else on another cannot be translated.
    pub fn save_ptr_type(&mut self, ty: RegType) -> VResult<()> {
        let special = |t: RegType| matches!(t, RegType::Ctx | RegType::Sock { .. });
        let base = |t: RegType| match t {
            RegType::MapValue { map, .. } => RegType::MapValue {
                map,
                maybe_null: false,
            },
            t => t,
        };
        let aux = &mut self.aux[self.pc];
        match aux.ptr_type {
            None => aux.ptr_type = Some(base(ty)),
            Some(prev) => {
                let ty = base(ty);
                let mismatch = std::mem::discriminant(&prev) != std::mem::discriminant(&ty)
                    && (special(prev) || special(ty));
                if mismatch {
                    return Err(self.err_einval("same insn cannot be used with different pointers"));
                }
            }
        }
        Ok(())
    }
}

/// `pc + 1 + off`, checked (the control-flow pass has validated every target already).
pub(crate) fn jump_target(pc: usize, off: i64) -> VResult<usize> {
    let t = pc as i64 + 1 + off;
    usize::try_from(t)
        .map_err(|_| VerifierError::einval(pc, format!("jump out of range from insn {pc} to {t}")))
}
