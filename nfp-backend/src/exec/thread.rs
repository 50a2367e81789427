//! One hardware thread (context): its registers and the instruction loop.
//!
//! Why a steppable thread: nic-sim interleaves the threads of an ME, switching whenever one
//! swaps out on a memory command; [`Thread::run_until_event`] runs until such a point and
//! keeps everything needed to resume (pc, pending defer-slot branch, CSR hazards, multiply
//! state) in the thread. The loop allocates nothing.

use super::memory::Lmem;
use super::{
    Event, ExecError, ExecErrorKind, InsnProfile, MAX_PACKET, MIN_PACKET, MemState, PKT_BUF_BYTES,
    PKT_HEADROOM, PV_DATA, PV_DATA_END, PV_LEN, PV_META, STACK_BYTES, STATIC_GPR, SwapTarget,
    THREADS_PER_ME, ctm_packet_buffer, pkt_vec_addr, stack_base,
};
use crate::target::{Bank, MeInsn};

/// Slot layout of [`Thread::file`], the thread's registers as one array.
///
/// Why one array: the pre-decoded fast path (`fast`) names every operand by a slot number, so
/// reading a GPR, a transfer register, the constant 0 or an 8-bit immediate is the same
/// indexed load, and writing "both banks", one bank, a transfer register or nothing is the same
/// two stores (a single destination's second store goes to [`SINK`]).
pub(super) mod slot {
    /// GPR `n` of bank A.
    pub const A: usize = 0;
    /// GPR `n` of bank B.
    pub const B: usize = 32;
    /// Read transfer register `n` (filled by memory reads).
    pub const XFER_RD: usize = 64;
    /// Write transfer register `n` (source of memory writes).
    pub const XFER_WR: usize = 96;
    /// Always 0 (`Src::None`); never written.
    pub const ZERO: usize = 128;
    /// Written and never read: a discarded result (`Dst::None`, the second store of a
    /// one-slot destination).
    pub const SINK: usize = 129;
    /// `IMM + v` holds `v` for every 8-bit immediate `v`; never written.
    pub const IMM: usize = 256;
    /// Slots in the file (a power of two, so a masked `u16` index needs no bounds check).
    pub const FILE: usize = 512;
    /// Slots a new packet clears (GPRs and transfer registers).
    pub const REGS: usize = 128;
}
use slot::{FILE, IMM, REGS};

/// Condition codes. Z and N are kept as the result that set them (`res`), so the fast path
/// sets them with one store; `Default` is all flags clear (`res` = 1). `repr(C)`: compiled
/// blocks (`jit`) address the fields by offset (`res` at 0, `c` at 4, `v` at 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(super) struct Cc {
    /// The last result of an ALU or shift instruction: Z = (res == 0), N = bit 31.
    pub(super) res: u32,
    pub(super) c: bool,
    pub(super) v: bool,
    /// Always 0: the padding as a field, so that a reset is one 8-byte store (with two
    /// padding bytes it was two).
    pad: [u8; 2],
}

impl Default for Cc {
    fn default() -> Self {
        Cc {
            res: 1,
            c: false,
            v: false,
            pad: [0; 2],
        }
    }
}

impl Cc {
    #[inline(always)]
    pub(super) fn z(&self) -> bool {
        self.res == 0
    }

    #[inline(always)]
    pub(super) fn n(&self) -> bool {
        (self.res as i32) < 0
    }
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
pub(super) enum Flow {
    Next,
    Jump(u32),
    Swap(SwapTarget, u64),
    Exit,
}

/// One thread: registers, condition codes, pc and its packet buffer.
#[derive(Clone)]
pub struct Thread {
    pub(super) index: u8,
    /// GPRs, transfer registers and constants: see [`slot`].
    pub(super) file: [u32; FILE],
    pub(super) lm_addr: [u32; 4],
    /// Per LM index: the last instruction count (of this packet) at which the index may
    /// not be used, because an `ActLMAddr` write has not taken effect yet. Why a count and
    /// not a countdown: nothing needs updating per instruction, so the fast path can check
    /// it only where an LM operand is used.
    pub(super) lm_ready: [u64; 4],
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
    /// The packet buffer (a fixed-size array, so checked offsets need no second bounds check).
    pub(super) pkt: Box<[u8; PKT_BUF_BYTES as usize]>,
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
    /// The first fault of the executing instruction (see `Thread::fault`). `None` between
    /// instructions: only `step` sets it, and `one_step` takes it right after (so `start`
    /// need not reset it).
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

/// The first slot of bank `b`.
#[inline]
pub(super) fn bank(b: Bank) -> usize {
    match b {
        Bank::A => slot::A,
        Bank::B => slot::B,
    }
}

/// A fresh register file: registers 0, constants in place.
fn new_file() -> [u32; FILE] {
    let mut f = [0; FILE];
    for (v, s) in f[IMM..IMM + 256].iter_mut().enumerate() {
        *s = v as u32;
    }
    f
}

impl Thread {
    /// An idle thread for context `index` (taken modulo [`THREADS_PER_ME`]).
    pub fn new(index: u8) -> Thread {
        Thread {
            index: index % THREADS_PER_ME,
            file: new_file(),
            lm_addr: [0; 4],
            lm_ready: [0; 4],
            cc: Cc::default(),
            alu_val: 0,
            alu_at: 0,
            mul: Mul::default(),
            pc: 0,
            defer_left: 0,
            defer_target: 0,
            defer_taken: false,
            defer_slots: 0,
            pkt: Box::new([0; PKT_BUF_BYTES as usize]),
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
        if n < 32 {
            self.file[bank(bank_) + n as usize]
        } else {
            0
        }
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
        self.load(lmem, packet)
    }

    /// [`Thread::load`] but for `pc`, `insns` and `running`: for the fused run
    /// (`run_packet_to_end_fast`), which sets them when its chain ends (the chain reads
    /// none of them), so their stores here would be dead (2 host instructions per packet).
    #[inline(always)]
    pub(super) fn load_but_counts(
        &mut self,
        lmem: &mut Lmem,
        packet: &[u8],
    ) -> Result<(), ExecError> {
        self.load_as::<false>(lmem, packet)
    }

    /// [`Thread::start`], inline (also the first half of `run_packet_to_end_fast`, as
    /// [`Thread::load_but_counts`]).
    #[inline(always)]
    pub(super) fn load(&mut self, lmem: &mut Lmem, packet: &[u8]) -> Result<(), ExecError> {
        self.load_as::<true>(lmem, packet)
    }

    /// [`Thread::load`]; with `COUNTS` off, `pc`, `insns` and `running` are left alone.
    #[inline(always)]
    fn load_as<const COUNTS: bool>(
        &mut self,
        lmem: &mut Lmem,
        packet: &[u8],
    ) -> Result<(), ExecError> {
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
        // Two halves of 256 bytes, each stored inline, where one 512-byte fill is a `memset`
        // call (a quarter of this function's cost). The compiler fence keeps LLVM from
        // merging them back into one (it emits no instruction; `black_box` did the same but
        // spilled the slice, 3 host instructions more per packet).
        let (gprs, xfers) = self.file[..REGS].split_at_mut(REGS / 2);
        gprs.fill(0);
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        xfers.fill(0);
        // `index < THREADS_PER_ME` always (`Thread::new`); masked, the compiler knows the
        // stack and packet vector addresses below are inside LMEM (no checks).
        const { assert!(THREADS_PER_ME.is_power_of_two()) };
        let index = self.index & (THREADS_PER_ME - 1);
        let sb = stack_base(index);
        let pv = pkt_vec_addr(index);
        self.file[slot::A + STATIC_GPR as usize] = sb;
        self.file[slot::B + STATIC_GPR as usize] = len as u32;
        self.file[slot::A + 2] = pv;
        self.file[slot::B + 2] = pv;
        self.lm_addr = [sb, pv, sb, sb];
        self.lm_ready = [0; 4];
        self.cc = Cc::default();
        self.alu_at = 0;
        self.mul = Mul::default();
        if COUNTS {
            self.pc = 0;
            self.insns = 0;
            self.running = true;
        }
        self.defer_left = 0;
        self.defer_taken = false;
        self.busy = 0;
        // `fault` is `None` here (between instructions; see there).
        debug_assert!(self.fault.is_none());
        // Only the chunks written since the last clear (see `Lmem`).
        lmem.zero(sb as usize, STACK_BYTES as usize);
        // `write_pkt_vec` for the pointers set below (from registers, not reloaded from the
        // thread; with the masked index, 3 host instructions less per packet).
        let buf = ctm_packet_buffer(index);
        let data = buf + PKT_HEADROOM;
        lmem.set_words(pv as usize, [len as u32, data, data, data + len as u32]);

        // The packet last: the copy is a call, and little of the above is needed after it
        // (callgrind, `simspeed pre`: 6 host instructions less per packet than copying
        // first, for values kept across the call).
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
        Ok(())
    }

    /// Publishes length and pointers in the packet vector and `B22` (after a firmware helper
    /// moved the packet; `load` writes the vector of a new packet itself).
    #[inline(always)]
    pub(super) fn write_pkt_vec(&mut self, lmem: &mut Lmem) {
        let pv = pkt_vec_addr(self.index) as usize;
        let base = ctm_packet_buffer(self.index);
        let len = self.end - self.data;
        const { assert!(PV_LEN == 0 && PV_META == 1 && PV_DATA == 2 && PV_DATA_END == 3) };
        lmem.set_words(
            pv,
            [len, base + self.meta, base + self.data, base + self.end],
        );
        self.file[slot::B + STATIC_GPR as usize] = len;
    }

    /// Reads eBPF register `Rn` for a helper.
    pub(super) fn reg(&self, n: usize) -> u64 {
        let lo = if 2 * n < 32 {
            self.file[slot::A + 2 * n]
        } else {
            0
        };
        let hi = if 2 * n + 1 < 32 {
            self.file[slot::A + 2 * n + 1]
        } else {
            0
        };
        u64::from(lo) | (u64::from(hi) << 32)
    }

    /// Writes R0 (both banks) with a helper's result.
    pub(super) fn set_r0(&mut self, v: u64) {
        for b in [slot::A, slot::B] {
            self.file[b] = v as u32;
            self.file[b + 1] = (v >> 32) as u32;
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
        self.run_loop::<false>(code, mem, budget, &mut [])
    }

    /// [`Thread::run_until_event`] that also adds, per instruction address, one execution
    /// and the cycles charged in that step (see [`InsnProfile`]) to `profile[pc]`
    /// (addresses beyond `profile.len()` are not counted). A separate instantiation of the
    /// loop, so the unprofiled loop pays nothing.
    pub fn run_until_event_profiled(
        &mut self,
        code: &[MeInsn],
        mem: &mut MemState<'_>,
        budget: u64,
        profile: &mut [InsnProfile],
    ) -> Result<Event, ExecError> {
        self.run_loop::<true>(code, mem, budget, profile)
    }

    #[inline(always)]
    fn run_loop<const PROFILE: bool>(
        &mut self,
        code: &[MeInsn],
        mem: &mut MemState<'_>,
        budget: u64,
        profile: &mut [InsnProfile],
    ) -> Result<Event, ExecError> {
        if !self.running {
            return Err(self.not_running());
        }
        loop {
            if let Some(r) = self.one_step::<PROFILE>(code, mem, budget, profile) {
                return r;
            }
        }
    }

    #[cold]
    pub(super) fn not_running(&self) -> ExecError {
        ExecError {
            pc: self.pc,
            kind: ExecErrorKind::NotRunning,
        }
    }

    /// Executes the instruction at `pc` with every check: `None` to go on, or why the run
    /// stops. The reference loop is this in a loop; the fast path uses it for what it did not
    /// pre-decode (defer slots, CSR hazards, rare instructions, the budget's last steps).
    #[inline(always)]
    pub(super) fn one_step<const PROFILE: bool>(
        &mut self,
        code: &[MeInsn],
        mem: &mut MemState<'_>,
        budget: u64,
        profile: &mut [InsnProfile],
    ) -> Option<Result<Event, ExecError>> {
        {
            let pc = self.pc;
            let fail = |kind| ExecError { pc, kind };
            let Some(insn) = code.get(pc as usize) else {
                self.running = false;
                return Some(Err(fail(ExecErrorKind::PcOutOfRange { len: code.len() })));
            };
            if self.insns >= budget {
                self.running = false;
                return Some(Err(fail(ExecErrorKind::Budget(budget))));
            }
            self.insns += 1;
            let busy_before = self.busy;
            let flow = self.step(insn, code.len(), mem);
            if let Some(kind) = self.fault.take() {
                self.running = false;
                return Some(Err(fail(kind)));
            }
            let mut next = pc.wrapping_add(1);
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
            if let Flow::Jump(_) = flow {
                self.busy += u64::from(mem.lat.branch_taken_penalty);
            }
            if PROFILE && let Some(p) = profile.get_mut(pc as usize) {
                p.executions += 1;
                p.cycles += self.busy - busy_before;
            }
            match flow {
                Flow::Next => self.pc = next,
                Flow::Jump(t) => self.pc = t,
                Flow::Swap(target, wait) => {
                    self.pc = next;
                    return Some(Ok(Event::Swap {
                        busy_cycles: std::mem::take(&mut self.busy),
                        wait_cycles: wait,
                        target,
                    }));
                }
                Flow::Exit => {
                    self.running = false;
                    return Some(Ok(Event::Done {
                        retval: self.reg(0),
                        busy_cycles: std::mem::take(&mut self.busy),
                        insns: self.insns,
                    }));
                }
            }
        }
        None
    }

    /// Records the first fault of the current instruction; the loop stops the thread after
    /// the instruction. Why not `Result` on every operand: the hot path then is plain loads.
    #[cold]
    #[inline(never)]
    pub(super) fn fault(&mut self, k: ExecErrorKind) {
        if self.fault.is_none() {
            self.fault = Some(k);
        }
    }

    /// Records `k` and tells the loop to stop.
    #[cold]
    pub(super) fn fail(&mut self, k: ExecErrorKind) -> Flow {
        self.fault(k);
        Flow::Next
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cost::Latencies;
    use crate::exec::tests_props::{maps, wild_insn};
    use crate::exec::{FastProgram, InsnProfile, LMEM_BYTES, PKT_VEC_BYTES, Segment, SharedMem};
    use crate::target::decode::tests::insn;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    use vm_core::maps::MapSet;

    /// A thread with its memories and profile, run one of the two ways.
    struct Side {
        t: Thread,
        lmem: Lmem,
        shared: SharedMem,
        maps: MapSet,
        prof: Vec<InsnProfile>,
        segs: Vec<Segment>,
    }

    impl Side {
        /// Everything observable, as one comparable value.
        #[allow(clippy::type_complexity)]
        fn state(&self) -> impl PartialEq + std::fmt::Debug + '_ {
            let t = &self.t;
            (
                (&t.file[..], t.cc, t.pc, t.insns, t.busy, t.running),
                (t.lm_addr, t.lm_ready, t.alu_val, t.alu_at, &t.fault),
                (t.mul.a, t.mul.b, t.mul.width, t.mul.steps),
                (t.defer_left, t.defer_target, t.defer_taken, t.defer_slots),
                (
                    &t.pkt[..],
                    t.meta,
                    t.data,
                    t.end,
                    t.dirty_hi,
                    t.headroom_dirty,
                ),
                (self.lmem.bytes(), self.shared.cls(), self.shared.imem()),
                self.shared.prandom_state(),
                self.maps
                    .iter()
                    .map(|m| (m.entries(), m.slab()))
                    .collect::<Vec<_>>(),
                (&self.prof, &self.segs),
            )
        }
    }

    /// `run_packet_to_end_fast` is `start` then `run_to_end_fast`: the same result, segments
    /// (appended to what the list held), state, memories and profile, packet after packet
    /// (state kept), on random code (valid and invalid operands, faults, tiny budgets), with
    /// frames that cannot be loaded, with and without native blocks and the profile.
    #[test]
    fn run_packet_to_end_fast_is_start_then_run_to_end() {
        let cases = std::env::var("NFP_FAST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000u32);
        let frame = prop_oneof![
            9 => prop::collection::vec(any::<u8>(), 0..120),
            1 => Just(vec![0u8; MAX_PACKET as usize + 1]),
        ];
        let strategy = (
            prop::collection::vec(prop_oneof![4 => insn(), 1 => wild_insn()], 1..48),
            prop::collection::vec(frame, 1..4),
            0u8..THREADS_PER_ME,
            prop_oneof![Just(400u64), 1u64..30],
            any::<bool>(),
            any::<bool>(),
        );
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let lat = Latencies::NFP4000;
        let result = runner.run(
            &strategy,
            |(code, frames, index, budget, native, profiled)| {
                let prog = if native {
                    FastProgram::new(&code)
                } else {
                    FastProgram::without_native(&code)
                };
                let side = || Side {
                    t: Thread::new(index),
                    lmem: Lmem::new(),
                    shared: SharedMem::new(7, 0),
                    maps: maps(),
                    prof: vec![InsnProfile::default(); code.len()],
                    segs: Vec::new(),
                };
                let (mut a, mut b) = (side(), side());
                for (i, f) in frames.iter().enumerate() {
                    let got_a = {
                        let mut mem = MemState {
                            lmem: &mut a.lmem,
                            shared: &mut a.shared,
                            maps: &mut a.maps,
                            lat: &lat,
                        };
                        let p = profiled.then_some(a.prof.as_mut_slice());
                        a.t.start(mem.lmem, f).and_then(|()| {
                            a.t.run_to_end_fast(&prog, &mut mem, budget, p, &mut a.segs)
                        })
                    };
                    let got_b = {
                        let mut mem = MemState {
                            lmem: &mut b.lmem,
                            shared: &mut b.shared,
                            maps: &mut b.maps,
                            lat: &lat,
                        };
                        let p = profiled.then_some(b.prof.as_mut_slice());
                        b.t.run_packet_to_end_fast(&prog, &mut mem, f, budget, p, &mut b.segs)
                    };
                    if got_a != got_b || a.state() != b.state() {
                        return Err(TestCaseError::fail(format!(
                            "frame {i}: {got_a:?} / {got_b:?}\n{:?}\n{:?}\n{}",
                            a.state(),
                            b.state(),
                            crate::target::print_program(&code)
                        )));
                    }
                }
                Ok(())
            },
        );
        if let Err(e) = result {
            panic!("{e}");
        }
    }

    /// `start` after a packet that wrote every register and all of local memory leaves
    /// the thread as a fresh one: registers, stack and packet vector (what its inline
    /// register clear and the dirty-chunk stack clear must not miss).
    #[test]
    fn start_resets_what_a_run_wrote() {
        let pkt: Vec<u8> = (0..77).collect();
        for index in 0..THREADS_PER_ME {
            let (mut fresh, mut lf) = (Thread::new(index), Lmem::new());
            fresh.start(&mut lf, &pkt).unwrap();
            let (mut used, mut lu) = (Thread::new(index), Lmem::new());
            used.start(&mut lu, &[1; 200]).unwrap();
            for (i, r) in used.file[..REGS].iter_mut().enumerate() {
                *r = 7 * i as u32 + 1;
            }
            for a in (0..LMEM_BYTES).step_by(4) {
                lu.set_word(a, 3 * a as u32 + 1);
            }
            used.lm_addr = [9; 4];
            used.lm_ready = [9; 4];
            used.cc.c = true;
            used.start(&mut lu, &pkt).unwrap();
            assert_eq!(used.file[..], fresh.file[..], "thread {index}");
            let sb = stack_base(index) as usize;
            assert!(
                lu.bytes()[sb..sb + STACK_BYTES as usize]
                    .iter()
                    .all(|&b| b == 0)
            );
            let pv = pkt_vec_addr(index) as usize;
            let vec = pv..pv + PKT_VEC_BYTES as usize;
            assert_eq!(lu.bytes()[vec.clone()], lf.bytes()[vec]);
            assert_eq!(
                (used.lm_addr, used.lm_ready, used.cc, used.packet()),
                (fresh.lm_addr, fresh.lm_ready, fresh.cc, fresh.packet())
            );
        }
    }
}
