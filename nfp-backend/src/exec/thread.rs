//! One hardware thread (context): its registers and the instruction loop.
//!
//! Why a steppable thread: nic-sim interleaves the threads of an ME, switching whenever one
//! swaps out on a memory command; [`Thread::run_until_event`] runs until such a point and
//! keeps everything needed to resume (pc, pending defer-slot branch, CSR hazards, multiply
//! state) in the thread. The loop allocates nothing.

use super::memory::Lmem;
use super::{
    Event, ExecError, ExecErrorKind, LMEM_BYTES, MAX_PACKET, MIN_PACKET, MemState, PKT_BUF_BYTES,
    PKT_HEADROOM, PV_DATA, PV_DATA_END, PV_LEN, PV_META, STACK_BYTES, STATIC_GPR, SwapTarget,
    THREADS_PER_ME, ctm_packet_buffer, fw, pkt_vec_addr, stack_base,
};
use crate::target::{
    AddrMode, AluOp, Bank, Cond, Csr, Dst, ImmedWidth, MeInsn, ShiftAmount, ShiftKind, Src,
};

/// Condition codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Cc {
    pub(super) z: bool,
    pub(super) n: bool,
    pub(super) c: bool,
    pub(super) v: bool,
}

/// Multiplier state between `mul_step`s.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Mul {
    pub(super) a: u32,
    pub(super) b: u32,
    /// 0 = idle, 16 or 32 = the started width.
    pub(super) width: u8,
    /// Intermediate steps done.
    pub(super) steps: u8,
}

/// What an instruction asks the loop to do next.
enum Flow {
    Next,
    Jump(u32),
    Swap(SwapTarget, u64),
    Exit,
}

/// One thread: registers, condition codes, pc and its packet buffer.
#[derive(Clone)]
pub struct Thread {
    pub(super) index: u8,
    pub(super) gpr: [[u32; 32]; 2],
    pub(super) xfer_rd: [u32; 32],
    pub(super) xfer_wr: [u32; 32],
    pub(super) lm_addr: [u32; 4],
    /// Instructions (including the writer) left before an `ActLMAddr` write takes effect.
    pub(super) lm_hazard: [u8; 4],
    pub(super) hazard_live: bool,
    pub(super) cc: Cc,
    /// Result of the last ALU instruction and its instruction count (indirect shifts need
    /// the ALU instruction right before them).
    pub(super) alu_val: u32,
    pub(super) alu_at: u64,
    pub(super) mul: Mul,
    pub(super) pc: u32,
    /// Defer-slot countdown of a pending branch (the branch itself included).
    pub(super) defer_left: u8,
    pub(super) defer_target: u32,
    pub(super) defer_taken: bool,
    pub(super) defer_slots: u8,
    pub(super) pkt: Box<[u8]>,
    /// Buffer offsets of `data_meta`, `data`, `data_end`.
    pub(super) meta: u32,
    pub(super) data: u32,
    pub(super) end: u32,
    /// Highest buffer offset that may hold bytes of an earlier packet.
    pub(super) dirty_hi: u32,
    pub(super) headroom_dirty: bool,
    pub(super) insns: u64,
    pub(super) busy: u64,
    pub(super) running: bool,
    /// The first fault of the executing instruction (see `Thread::fault`).
    pub(super) fault: Option<ExecErrorKind>,
}

impl std::fmt::Debug for Thread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thread")
            .field("index", &self.index)
            .field("pc", &self.pc)
            .field("running", &self.running)
            .field("insns", &self.insns)
            .finish_non_exhaustive()
    }
}

#[inline]
fn bank(b: Bank) -> usize {
    match b {
        Bank::A => 0,
        Bank::B => 1,
    }
}

fn same_bank(a: Src, b: Src) -> bool {
    matches!((a, b), (Src::Gpr(x, _), Src::Gpr(y, _)) if x == y)
}

fn byte_mask(mask: u8) -> u32 {
    (0..4)
        .filter(|i| mask & (1 << i) != 0)
        .fold(0, |m, i| m | (0xff << (8 * i)))
}

impl Thread {
    /// An idle thread for context `index` (taken modulo [`THREADS_PER_ME`]).
    pub fn new(index: u8) -> Thread {
        Thread {
            index: index % THREADS_PER_ME,
            gpr: [[0; 32]; 2],
            xfer_rd: [0; 32],
            xfer_wr: [0; 32],
            lm_addr: [0; 4],
            lm_hazard: [0; 4],
            hazard_live: false,
            cc: Cc::default(),
            alu_val: 0,
            alu_at: 0,
            mul: Mul::default(),
            pc: 0,
            defer_left: 0,
            defer_target: 0,
            defer_taken: false,
            defer_slots: 0,
            pkt: vec![0; PKT_BUF_BYTES as usize].into_boxed_slice(),
            meta: PKT_HEADROOM,
            data: PKT_HEADROOM,
            end: PKT_HEADROOM,
            dirty_hi: 0,
            headroom_dirty: false,
            insns: 0,
            busy: 0,
            running: false,
            fault: None,
        }
    }

    /// The context number.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// Whether the thread has a packet in flight.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The next instruction address.
    pub fn pc(&self) -> u32 {
        self.pc
    }

    /// Instructions executed for the current (or last) packet.
    pub fn insns(&self) -> u64 {
        self.insns
    }

    /// GPR `n` of `bank` (0 for numbers out of range).
    pub fn gpr(&self, bank_: Bank, n: u8) -> u32 {
        self.gpr[bank(bank_)].get(n as usize).copied().unwrap_or(0)
    }

    /// eBPF register `Rn` (GPR pair `2n`/`2n+1`, bank A).
    pub fn ebpf_reg(&self, n: u8) -> u64 {
        u64::from(self.gpr(Bank::A, 2 * n)) | (u64::from(self.gpr(Bank::A, 2 * n + 1)) << 32)
    }

    /// Packet bytes `data_meta .. data_end` (what the packet looks like after the run).
    pub fn packet(&self) -> &[u8] {
        self.pkt
            .get(self.meta as usize..self.end as usize)
            .unwrap_or(&[])
    }

    /// CTM address of this thread's packet buffer.
    pub fn packet_buffer_addr(&self) -> u32 {
        ctm_packet_buffer(self.index)
    }

    /// Loads `packet` and resets the registers for a new run (see the module docs of
    /// [`super`] for the entry state). Allocation-free.
    pub fn start(&mut self, lmem: &mut Lmem, packet: &[u8]) -> Result<(), ExecError> {
        let len = packet.len();
        let fail = |reason| ExecError {
            pc: 0,
            kind: ExecErrorKind::BadPacket { len, reason },
        };
        if len < MIN_PACKET as usize {
            return Err(fail("shorter than an Ethernet header"));
        }
        if len > MAX_PACKET as usize {
            return Err(fail("longer than the packet buffer allows"));
        }
        let h = PKT_HEADROOM as usize;
        if self.headroom_dirty {
            self.pkt[..h].fill(0);
            self.headroom_dirty = false;
        }
        self.pkt[h..h + len].copy_from_slice(packet);
        let end = h + len;
        if (self.dirty_hi as usize) > end {
            self.pkt[end..self.dirty_hi as usize].fill(0);
        }
        self.dirty_hi = end as u32;
        self.meta = PKT_HEADROOM;
        self.data = PKT_HEADROOM;
        self.end = end as u32;

        self.gpr = [[0; 32]; 2];
        self.xfer_rd = [0; 32];
        self.xfer_wr = [0; 32];
        let sb = stack_base(self.index);
        let pv = pkt_vec_addr(self.index);
        self.gpr[0][STATIC_GPR as usize] = sb;
        self.gpr[1][STATIC_GPR as usize] = len as u32;
        self.gpr[0][2] = pv;
        self.gpr[1][2] = pv;
        self.lm_addr = [sb, pv, sb, sb];
        self.lm_hazard = [0; 4];
        self.hazard_live = false;
        self.cc = Cc::default();
        self.alu_at = 0;
        self.mul = Mul::default();
        self.pc = 0;
        self.defer_left = 0;
        self.defer_taken = false;
        self.insns = 0;
        self.busy = 0;
        self.fault = None;
        if let Some(stack) = lmem
            .bytes_mut()
            .get_mut(sb as usize..(sb + STACK_BYTES) as usize)
        {
            stack.fill(0);
        }
        self.write_pkt_vec(lmem);
        self.running = true;
        Ok(())
    }

    /// Publishes length and pointers in the packet vector and `B22`.
    pub(super) fn write_pkt_vec(&mut self, lmem: &mut Lmem) {
        let pv = pkt_vec_addr(self.index) as usize;
        let base = ctm_packet_buffer(self.index);
        let len = self.end - self.data;
        lmem.set_word(pv + 4 * PV_LEN as usize, len);
        lmem.set_word(pv + 4 * PV_META as usize, base + self.meta);
        lmem.set_word(pv + 4 * PV_DATA as usize, base + self.data);
        lmem.set_word(pv + 4 * PV_DATA_END as usize, base + self.end);
        self.gpr[1][STATIC_GPR as usize] = len;
    }

    /// Reads eBPF register `Rn` for a helper.
    pub(super) fn reg(&self, n: usize) -> u64 {
        let lo = self.gpr[0].get(2 * n).copied().unwrap_or(0);
        let hi = self.gpr[0].get(2 * n + 1).copied().unwrap_or(0);
        u64::from(lo) | (u64::from(hi) << 32)
    }

    /// Writes R0 (both banks) with a helper's result.
    pub(super) fn set_r0(&mut self, v: u64) {
        for b in &mut self.gpr {
            b[0] = v as u32;
            b[1] = (v >> 32) as u32;
        }
    }

    /// Runs until the thread swaps out or exits. `budget` caps the instructions of the whole
    /// packet (counted since [`Thread::start`]). An error stops the thread.
    pub fn run_until_event(
        &mut self,
        code: &[MeInsn],
        mem: &mut MemState<'_>,
        budget: u64,
    ) -> Result<Event, ExecError> {
        if !self.running {
            return Err(ExecError {
                pc: self.pc,
                kind: ExecErrorKind::NotRunning,
            });
        }
        loop {
            let pc = self.pc;
            let fail = |kind| ExecError { pc, kind };
            let Some(insn) = code.get(pc as usize) else {
                self.running = false;
                return Err(fail(ExecErrorKind::PcOutOfRange { len: code.len() }));
            };
            if self.insns >= budget {
                self.running = false;
                return Err(fail(ExecErrorKind::Budget(budget)));
            }
            self.insns += 1;
            let flow = self.step(insn, code.len(), mem);
            if let Some(kind) = self.fault.take() {
                self.running = false;
                return Err(fail(kind));
            }
            let mut next = pc.wrapping_add(1);
            if self.hazard_live {
                let mut live = false;
                for h in &mut self.lm_hazard {
                    *h = h.saturating_sub(1);
                    live |= *h > 0;
                }
                self.hazard_live = live;
            }
            if self.defer_left > 0 {
                self.defer_left -= 1;
                if self.defer_left == 0 && self.defer_taken {
                    next = self.defer_target;
                    self.busy += u64::from(
                        mem.lat
                            .branch_taken_penalty
                            .saturating_sub(u32::from(self.defer_slots)),
                    );
                }
            }
            match flow {
                Flow::Next => self.pc = next,
                Flow::Jump(t) => {
                    self.busy += u64::from(mem.lat.branch_taken_penalty);
                    self.pc = t;
                }
                Flow::Swap(target, wait) => {
                    self.pc = next;
                    return Ok(Event::Swap {
                        busy_cycles: std::mem::take(&mut self.busy),
                        wait_cycles: wait,
                        target,
                    });
                }
                Flow::Exit => {
                    self.running = false;
                    return Ok(Event::Done {
                        retval: self.reg(0),
                        busy_cycles: std::mem::take(&mut self.busy),
                        insns: self.insns,
                    });
                }
            }
        }
    }

    /// Records the first fault of the current instruction; the loop stops the thread after
    /// the instruction. Why not `Result` on every operand: the hot path then is plain loads.
    #[cold]
    #[inline(never)]
    fn fault(&mut self, k: ExecErrorKind) {
        if self.fault.is_none() {
            self.fault = Some(k);
        }
    }

    /// Records `k` and tells the loop to stop.
    #[cold]
    fn fail(&mut self, k: ExecErrorKind) -> Flow {
        self.fault(k);
        Flow::Next
    }

    /// Byte address in LMEM of LM window word `off` of index `index` (0 after a fault).
    #[inline(always)]
    fn lm(&mut self, index: u8, off: u8) -> usize {
        let i = index as usize;
        if i >= 4 || off >= 16 {
            self.fault(ExecErrorKind::BadOperand("LM index >= 4 or offset >= 16"));
            return 0;
        }
        if self.lm_hazard[i] > 0 {
            self.fault(ExecErrorKind::LmHazard(index));
            return 0;
        }
        let a = (self.lm_addr[i] & !3) as usize + 4 * off as usize;
        if a + 4 > LMEM_BYTES {
            self.fault(ExecErrorKind::BadAddress {
                space: super::Space::Lmem,
                addr: a as u64,
                len: 4,
                write: false,
            });
            return 0;
        }
        a
    }

    #[inline(always)]
    pub(super) fn read(&mut self, s: Src, lmem: &Lmem) -> u32 {
        match s {
            Src::Gpr(b, n) => match self.gpr[bank(b)].get(n as usize) {
                Some(&v) => v,
                None => {
                    self.fault(ExecErrorKind::BadOperand("GPR number >= 32"));
                    0
                }
            },
            Src::Imm(v) => u32::from(v),
            Src::None => 0,
            Src::Xfer(n) => match self.xfer_rd.get(n as usize) {
                Some(&v) => v,
                None => {
                    self.fault(ExecErrorKind::BadOperand("transfer register >= 32"));
                    0
                }
            },
            Src::Lm { index, off } => {
                let a = self.lm(index, off);
                lmem.word(a)
            }
        }
    }

    /// The current value of a destination (for partial writes).
    fn read_dst(&mut self, d: Dst, lmem: &Lmem) -> u32 {
        match d {
            Dst::Gpr(b, n) => self.read(Src::Gpr(b, n), lmem),
            Dst::Both(n) => self.read(Src::Gpr(Bank::A, n), lmem),
            Dst::Xfer(n) => match self.xfer_wr.get(n as usize) {
                Some(&v) => v,
                None => {
                    self.fault(ExecErrorKind::BadOperand("transfer register >= 32"));
                    0
                }
            },
            Dst::Lm { index, off } => {
                let a = self.lm(index, off);
                lmem.word(a)
            }
            Dst::None => 0,
        }
    }

    #[inline(always)]
    pub(super) fn write(&mut self, d: Dst, v: u32, lmem: &mut Lmem) {
        const BAD_GPR: ExecErrorKind = ExecErrorKind::BadOperand("GPR number >= 32");
        if self.fault.is_some() {
            return;
        }
        match d {
            Dst::Both(n) => {
                let n = n as usize;
                if n < 32 {
                    self.gpr[0][n] = v;
                    self.gpr[1][n] = v;
                } else {
                    self.fault(BAD_GPR);
                }
            }
            Dst::Gpr(b, n) => match self.gpr[bank(b)].get_mut(n as usize) {
                Some(r) => *r = v,
                None => self.fault(BAD_GPR),
            },
            Dst::Xfer(n) => match self.xfer_wr.get_mut(n as usize) {
                Some(r) => *r = v,
                None => self.fault(ExecErrorKind::BadOperand("transfer register >= 32")),
            },
            Dst::Lm { index, off } => {
                let a = self.lm(index, off);
                if self.fault.is_none() {
                    lmem.set_word(a, v);
                }
            }
            Dst::None => {}
        }
    }

    fn set_zn(&mut self, r: u32) {
        self.cc.z = r == 0;
        self.cc.n = (r as i32) < 0;
    }

    fn alu(&mut self, op: AluOp, a: u32, b: u32) -> u32 {
        let carry = u32::from(self.cc.c);
        let (r, arith) = match op {
            AluOp::PassB => (b, None),
            AluOp::NotB => (!b, None),
            AluOp::And => (a & b, None),
            AluOp::AndNotA => (!a & b, None),
            AluOp::AndNotB => (a & !b, None),
            AluOp::Or => (a | b, None),
            AluOp::Xor => (a ^ b, None),
            AluOp::Add | AluOp::AddCarry => {
                let cin = if op == AluOp::AddCarry { carry } else { 0 };
                let wide = u64::from(a) + u64::from(b) + u64::from(cin);
                let s = i64::from(a as i32) + i64::from(b as i32) + i64::from(cin);
                (
                    wide as u32,
                    Some((wide >> 32 != 0, s != i64::from(s as i32))),
                )
            }
            AluOp::Sub | AluOp::SubCarry => {
                let borrow = if op == AluOp::SubCarry { 1 - carry } else { 0 };
                let wide = i64::from(a) - i64::from(b) - i64::from(borrow);
                let s = i64::from(a as i32) - i64::from(b as i32) - i64::from(borrow);
                (wide as u32, Some((wide >= 0, s != i64::from(s as i32))))
            }
        };
        self.set_zn(r);
        if let Some((c, v)) = arith {
            self.cc.c = c;
            self.cc.v = v;
        }
        r
    }

    fn cond(&self, c: Cond) -> bool {
        let Cc { z, n, c: carry, v } = self.cc;
        match c {
            Cond::Eq => z,
            Cond::Ne => !z,
            Cond::Mi => n,
            Cond::Pl => !n,
            Cond::Hs => carry,
            Cond::Lo => !carry,
            Cond::Vs => v,
            Cond::Vc => !v,
            Cond::Ge => n == v,
            Cond::Lt => n != v,
            Cond::Le => z || n != v,
            Cond::Gt => !z && n == v,
            Cond::Always => true,
        }
    }

    /// A branch decision: jump now, or after `defer` slots.
    fn branch(&mut self, taken: bool, target: u16, defer: u8, len: usize) -> Flow {
        if defer > 3 {
            return self.fail(ExecErrorKind::BadOperand("more than 3 defer slots"));
        }
        let t = u32::from(target);
        if taken && t as usize >= len {
            return self.fail(ExecErrorKind::BadTarget(t));
        }
        if defer == 0 {
            return if taken { Flow::Jump(t) } else { Flow::Next };
        }
        self.defer_left = defer + 1;
        self.defer_taken = taken;
        self.defer_target = t;
        self.defer_slots = defer;
        Flow::Next
    }

    fn step(&mut self, insn: &MeInsn, len: usize, mem: &mut MemState<'_>) -> Flow {
        let in_defer = self.defer_left > 0;
        self.busy += 1;
        match *insn {
            MeInsn::Alu { op, dst, a, b } => {
                if same_bank(a, b) {
                    return self.fail(ExecErrorKind::BadOperand(
                        "two sources in the same GPR bank",
                    ));
                }
                let (x, y) = (self.read(a, mem.lmem), self.read(b, mem.lmem));
                let r = self.alu(op, x, y);
                self.write(dst, r, mem.lmem);
                self.alu_val = r;
                self.alu_at = self.insns;
            }
            MeInsn::Shf {
                kind,
                dst,
                a,
                b,
                amount,
            } => {
                if same_bank(a, b) {
                    return self.fail(ExecErrorKind::BadOperand(
                        "two sources in the same GPR bank",
                    ));
                }
                let n = match amount {
                    ShiftAmount::Imm(n) if n < 32 => u32::from(n),
                    ShiftAmount::Imm(_) => {
                        return self.fail(ExecErrorKind::BadOperand("shift amount >= 32"));
                    }
                    // `insns` counts this instruction already; alu_at is 0 before any ALU op.
                    ShiftAmount::Indirect if self.alu_at != 0 && self.alu_at + 1 == self.insns => {
                        self.alu_val & 31
                    }
                    ShiftAmount::Indirect => return self.fail(ExecErrorKind::IndirectShift),
                };
                let (x, y) = (self.read(a, mem.lmem), self.read(b, mem.lmem));
                let r = match kind {
                    ShiftKind::Left => y << n,
                    ShiftKind::Right => y >> n,
                    ShiftKind::ArithRight => ((y as i32) >> n) as u32,
                    ShiftKind::RotRight => y.rotate_right(n),
                    ShiftKind::DoubleRight => (((u64::from(x) << 32) | u64::from(y)) >> n) as u32,
                };
                self.set_zn(r);
                self.write(dst, r, mem.lmem);
            }
            MeInsn::Immed {
                dst,
                imm,
                shift,
                invert,
                width,
            } => {
                let ok = match width {
                    ImmedWidth::All => shift <= 2,
                    ImmedWidth::Word => shift == 0 || shift == 2,
                    ImmedWidth::Byte => shift <= 3,
                };
                if !ok {
                    return self.fail(ExecErrorKind::BadOperand(
                        "immed shift not valid for its width",
                    ));
                }
                let s = 8 * u32::from(shift);
                let mut v = u32::from(imm) << s;
                if invert {
                    v = !v;
                }
                let v = match width {
                    ImmedWidth::All => v,
                    ImmedWidth::Word | ImmedWidth::Byte => {
                        let m = if width == ImmedWidth::Word {
                            0xffff
                        } else {
                            0xff
                        } << s;
                        (self.read_dst(dst, mem.lmem) & !m) | (v & m)
                    }
                };
                self.write(dst, v, mem.lmem);
            }
            MeInsn::LdField {
                dst,
                byte_mask: mask,
                b,
                shift_bytes,
                zero_fill,
            } => {
                let dst_bank = match dst {
                    Dst::Gpr(bk, _) => bk,
                    Dst::Both(_) => Bank::A,
                    _ => {
                        return self
                            .fail(ExecErrorKind::BadOperand("ld_field destination not a GPR"));
                    }
                };
                if matches!(b, Src::Gpr(bk, _) if bk == dst_bank) {
                    return self.fail(ExecErrorKind::BadOperand(
                        "ld_field source in the destination's GPR bank",
                    ));
                }
                if mask > 0xf || shift_bytes > 3 {
                    return self.fail(ExecErrorKind::BadOperand(
                        "ld_field mask > 0xf or shift > 3",
                    ));
                }
                let src = self
                    .read(b, mem.lmem)
                    .rotate_right(8 * u32::from(shift_bytes));
                let m = byte_mask(mask);
                let old = if zero_fill {
                    0
                } else {
                    self.read_dst(dst, mem.lmem)
                };
                self.write(dst, (old & !m) | (src & m), mem.lmem);
            }
            MeInsn::Mul { step, dst, a, b } => {
                if same_bank(a, b) {
                    return self.fail(ExecErrorKind::BadOperand(
                        "two sources in the same GPR bank",
                    ));
                }
                if let Err(k) = self.mul_step(step, dst, a, b, mem.lmem) {
                    return self.fail(k);
                }
            }
            MeInsn::Br {
                cond,
                target,
                defer,
            } => {
                if in_defer {
                    return self.fail(ExecErrorKind::BranchInDefer);
                }
                let taken = self.cond(cond);
                return self.branch(taken, target, defer, len);
            }
            MeInsn::BrBit {
                src,
                bit,
                set,
                target,
                defer,
            } => {
                if in_defer {
                    return self.fail(ExecErrorKind::BranchInDefer);
                }
                if bit >= 32 {
                    return self.fail(ExecErrorKind::BadOperand("bit number >= 32"));
                }
                let v = self.read(src, mem.lmem);
                let taken = ((v >> bit) & 1 != 0) == set;
                return self.branch(taken, target, defer, len);
            }
            MeInsn::Rtn { src, defer } => {
                if in_defer {
                    return self.fail(ExecErrorKind::BranchInDefer);
                }
                let t = self.read(src, mem.lmem);
                let Ok(t) = u16::try_from(t) else {
                    return self.fail(ExecErrorKind::BadTarget(t));
                };
                return self.branch(true, t, defer, len);
            }
            MeInsn::Cmd {
                target,
                action,
                xfer,
                count,
                mode,
                a,
                b,
                swap,
            } => {
                if same_bank(a, b) {
                    return self.fail(ExecErrorKind::BadOperand(
                        "two sources in the same GPR bank",
                    ));
                }
                let (x, y) = (self.read(a, mem.lmem), self.read(b, mem.lmem));
                let addr = match mode {
                    AddrMode::Addr32 => u64::from(x.wrapping_add(y)),
                    AddrMode::Addr40 => (u64::from(x & 0xff) << 32) + u64::from(y),
                };
                if self.fault.is_some() {
                    return Flow::Next;
                }
                let words = match self.command(target, action, xfer, count, addr, mem) {
                    Ok(w) => w,
                    Err(k) => return self.fail(k),
                };
                if swap {
                    let wait = mem.lat.target_latency(target) + mem.lat.per_word * (words - 1);
                    return Flow::Swap(SwapTarget::Mem(target), u64::from(wait));
                }
            }
            MeInsn::CsrRead { csr, dst } => {
                let v = match csr {
                    Csr::ActLmAddr(n) => match self.lm_addr.get(n as usize) {
                        Some(&v) => v,
                        None => {
                            return self.fail(ExecErrorKind::BadOperand("ActLMAddr index >= 4"));
                        }
                    },
                    Csr::PseudoRandNum => mem.shared.prandom(),
                    Csr::ActiveCtxSts => u32::from(self.index),
                };
                self.write(dst, v, mem.lmem);
            }
            MeInsn::CsrWrite { csr, src } => {
                let v = self.read(src, mem.lmem);
                match csr {
                    Csr::ActLmAddr(n) if n < 4 => {
                        self.lm_addr[n as usize] = v;
                        let d = mem.lat.csr_write_delay.min(250) as u8;
                        self.lm_hazard[n as usize] = d + 1;
                        self.hazard_live = true;
                    }
                    _ => return self.fail(ExecErrorKind::BadOperand("CSR is not writable")),
                }
            }
            MeInsn::FwCall { helper } => {
                if in_defer {
                    return self.fail(ExecErrorKind::BranchInDefer);
                }
                if let Err(k) = fw::call(helper, self, mem) {
                    return self.fail(k);
                }
                let c = mem.lat.fw_cost(helper);
                self.busy += u64::from(c.issue);
                // Helpers without memory latency (random, packet-vector updates) run inline.
                if c.wait > 0 {
                    return Flow::Swap(SwapTarget::Fw(helper), u64::from(c.wait));
                }
            }
            MeInsn::Exit => {
                if in_defer {
                    return self.fail(ExecErrorKind::BranchInDefer);
                }
                self.busy += u64::from(mem.lat.exit.saturating_sub(1));
                return Flow::Exit;
            }
            MeInsn::Nop => {}
        }
        Flow::Next
    }
}
