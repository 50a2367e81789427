//! One hardware thread (context): its registers and the instruction loop.
//!
//! Why a steppable thread: nic-sim interleaves the threads of an ME, switching whenever one
//! swaps out on a memory command; [`Thread::run_until_event`] runs until such a point and
//! keeps everything needed to resume (pc, pending defer-slot branch, CSR hazards, multiply
//! state) in the thread. The loop allocates nothing.

use super::fresh::Fresh;
use super::memory::{Lmem, Page};
use super::{
    Event, ExecError, ExecErrorKind, InsnProfile, MAX_PACKET, MIN_PACKET, MemState, PKT_BUF_BYTES,
    PKT_HEADROOM, PKT_VEC_BYTES, PV_DATA, PV_DATA_END, PV_LEN, PV_META, STACK_BYTES, STATIC_GPR,
    SwapTarget, THREADS_PER_ME, ctm_packet_buffer, pkt_vec_addr, stack_base,
};
use crate::target::{Bank, MeInsn};

/// Slot layout of [`Thread::file`], the thread's registers as one array.
///
/// Why one array: the pre-decoded fast path (`fast`) names every operand by a slot number, so
/// reading a GPR, a transfer register, the constant 0 or an 8-bit immediate is the same
/// indexed load, and writing "both banks", one bank, a transfer register or nothing is the same
/// two stores (a single destination's second store goes to [`slot::SINK`]).
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

/// The flag bit of [`Thread::dirty`]: the headroom may hold bytes of an earlier packet.
/// Above every buffer offset (`PKT_BUF_BYTES` is far below it).
pub(super) const HEADROOM_DIRTY: u32 = 1 << 31;
const _: () = assert!(PKT_BUF_BYTES < HEADROOM_DIRTY);

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
    /// The highest buffer offset that may hold bytes of an earlier packet, with
    /// [`HEADROOM_DIRTY`] set when the headroom (below `PKT_HEADROOM`) may too. One word,
    /// so that a packet start tests both with one compare against the new packet's end
    /// (the flag makes the word larger than any end) and clears them out of line
    /// (`clear_stale`), where a flag and a bound of their own took two tests inline:
    /// callgrind, `simspeed pre`, 885.2 -> 879.2 host instructions per frame (about 2 in
    /// each of nic-sim's two inlined starts and 1.5 in the fused run's code around them).
    pub(super) dirty: u32,
    pub(super) insns: u64,
    pub(super) busy: u64,
    pub(super) running: bool,
    /// The first fault of the executing instruction (see `Thread::fault`). `None` between
    /// instructions: only `step` sets it, and `one_step` takes it right after (so `start`
    /// need not reset it).
    pub(super) fault: Option<ExecErrorKind>,
    /// Nonzero: the id of the program (`Fresh::quick`) whose packets alone ran on this
    /// thread since its last full reset, each on the fused path (`fused`) to the exit of
    /// its chain (never a reference step: the defer slots and busy count are still at
    /// rest, and nothing but that program wrote the registers). A fused start of that
    /// program then resets no state but the registers and memories (see
    /// `live::reset_needs`), and may leave the entry registers as they are (`Fresh::key`).
    /// 0: unknown (`start`, and a fused run that did not end so, set it).
    pub(super) reset_for: u64,
    /// What a packet start writes that depends on `index` alone (see [`Home`]).
    pub(super) home: Home,
}

/// The addresses of a thread's stack, packet vector and packet data, and the LMEM chunk
/// masks of the first two, derived from its index once ([`Home::of`]) instead of at every
/// packet start: five loads where the shifts and masks took about a dozen instructions
/// (callgrind, `simspeed pre`: 7 host instructions per frame less in nic-sim's
/// `start_to_end_packed`, 179 -> 172).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Home {
    /// [`stack_base`].
    pub(super) stack: u32,
    /// [`pkt_vec_addr`].
    pub(super) vec: u32,
    /// CTM byte address of the packet's first byte at start (buffer plus headroom).
    pub(super) data: u32,
    /// `data` twice (low and high word): the vector's `data_meta` and `data` words at
    /// start, one 8-byte store.
    pub(super) data_pair: u64,
    /// [`Lmem::start_packet`]'s chunk masks: the stack's chunks, and those of the
    /// packet vector's first and last bytes.
    pub(super) stack_chunks: u64,
    pub(super) vec_chunks: u64,
}

impl Home {
    /// Thread `index`'s (`< THREADS_PER_ME`). Its stack is whole chunks (a non-zero
    /// `stack_chunks`) and its vector inside LMEM, aligned to its size (`tests_thread`
    /// checks every index).
    pub(super) fn of(index: u8) -> Home {
        let (stack, vec) = (stack_base(index), pkt_vec_addr(index));
        let data = ctm_packet_buffer(index) + PKT_HEADROOM;
        Home {
            stack,
            vec,
            data,
            data_pair: u64::from(data) * 0x1_0000_0001,
            stack_chunks: Lmem::whole_chunks(stack as usize, STACK_BYTES as usize),
            vec_chunks: Lmem::end_chunks(vec as usize, PKT_VEC_BYTES as usize),
        }
    }
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
        Thread::with_page(index, Page::zeroed())
    }

    /// [`Thread::new`] with its packet buffer in `page`.
    pub fn with_page(index: u8, page: Page) -> Thread {
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
            pkt: page.0,
            meta: PKT_HEADROOM,
            data: PKT_HEADROOM,
            end: PKT_HEADROOM,
            dirty: 0,
            insns: 0,
            busy: 0,
            running: false,
            fault: None,
            reset_for: 0,
            home: Home::of(index % THREADS_PER_ME),
        }
    }

    /// The packet buffer's page, zeroed again: only the bytes `dirty` says may be nonzero
    /// (the headroom if flagged, and from the headroom's end up to its bound) are cleared.
    pub fn into_page(mut self) -> Page {
        if self.dirty & HEADROOM_DIRTY != 0 {
            self.pkt[..PKT_HEADROOM as usize].fill(0);
        }
        let hi = (self.dirty & !HEADROOM_DIRTY) as usize;
        if let Some(b) = self.pkt.get_mut(PKT_HEADROOM as usize..hi) {
            b.fill(0);
        }
        debug_assert!(
            self.pkt.iter().all(|&b| b == 0),
            "a packet byte written unmarked"
        );
        Page(self.pkt)
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
    ///
    /// `fresh` is the program's (`FastProgram::fresh`): only the 16-byte chunks of the
    /// registers it may read before writing them are cleared (see `live`), the other
    /// state only when `reset_for` says it may not be at rest, and the entry registers
    /// only then or when the program may read them (or write A22, see `Fresh::key`).
    #[inline(always)]
    pub(super) fn load_but_counts(
        &mut self,
        lmem: &mut Lmem,
        packet: &[u8],
        fresh: Fresh,
    ) -> Result<(), ExecError> {
        self.load_as::<false>(lmem, packet, fresh)
    }

    /// [`Thread::start`], inline (also the first half of `run_packet_to_end_fast`, as
    /// [`Thread::load_but_counts`]).
    #[inline(always)]
    pub(super) fn load(&mut self, lmem: &mut Lmem, packet: &[u8]) -> Result<(), ExecError> {
        self.load_as::<true>(lmem, packet, Fresh::ALL)
    }

    /// [`Thread::load`]; with `COUNTS` off, `pc`, `insns` and `running` are left alone.
    /// What it resets is `fresh`'s (everything: `Fresh::ALL`).
    #[inline(always)]
    fn load_as<const COUNTS: bool>(
        &mut self,
        lmem: &mut Lmem,
        packet: &[u8],
        fresh: Fresh,
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
        let Home {
            stack: sb,
            vec: pv,
            data_pair,
            stack_chunks,
            vec_chunks,
            ..
        } = self.home;
        // Nothing to clear, nothing to reset and no entry register to set, in one compare
        // (see `Fresh::key`).
        if self.reset_for != fresh.key {
            // Nothing to clear nor reset (see `Fresh::rest`).
            if self.reset_for != fresh.rest {
                self.clear_and_reset(fresh, sb, pv);
            }
            self.file[slot::A + STATIC_GPR as usize] = sb;
            self.file[slot::B + STATIC_GPR as usize] = len as u32;
            self.file[slot::A + 2] = pv;
            self.file[slot::B + 2] = pv;
        }
        if COUNTS {
            self.pc = 0;
            self.insns = 0;
            self.running = true;
        }
        // `fault` is `None` here (between instructions; see there).
        debug_assert!(self.fault.is_none());
        // The stack: only the chunks written since the last clear (see `Lmem`). Then
        // `write_pkt_vec` for the pointers set below.
        let data = data_pair as u32;
        let vec = [
            len as u32,
            data,
            (data_pair >> 32) as u32,
            data + len as u32,
        ];
        lmem.start_packet(stack_chunks, vec_chunks, pv as usize, vec);

        // The packet last: the copy is a call, and little of the above is needed after it
        // (callgrind, `simspeed pre`: 6 host instructions less per packet than copying
        // first, for values kept across the call).
        let h = PKT_HEADROOM as usize;
        self.pkt[h..h + len].copy_from_slice(packet);
        let end = h + len;
        // Both kinds of stale bytes in one compare (see `dirty`).
        if (self.dirty as usize) > end {
            self.clear_stale(end);
        }
        self.dirty = end as u32;
        self.meta = PKT_HEADROOM;
        self.data = PKT_HEADROOM;
        self.end = end as u32;
        Ok(())
    }

    /// Zeroes the bytes of earlier packets that `dirty` says may remain: the headroom if
    /// flagged, and the bytes from `end` (the new packet's) up to its bound. Cold: most
    /// packets write neither (the caller stores `dirty` after).
    #[cold]
    #[inline(never)]
    fn clear_stale(&mut self, end: usize) {
        if self.dirty & HEADROOM_DIRTY != 0 {
            self.pkt[..PKT_HEADROOM as usize].fill(0);
        }
        let hi = (self.dirty & !HEADROOM_DIRTY) as usize;
        if hi > end {
            self.pkt[end..hi].fill(0);
        }
    }

    /// Marks the headroom as possibly holding bytes of this packet (see `dirty`).
    #[inline(always)]
    pub(super) fn note_headroom_write(&mut self) {
        self.dirty |= HEADROOM_DIRTY;
    }

    /// Clears the registers `fresh` names (its live chunks) and, unless the thread is at
    /// rest for its program (`reset_for`), resets the rest of its state (`sb` and `pv` are
    /// its stack base and packet vector): what `load_as` does unless [`Fresh::key`] says
    /// there is nothing to do. Before `load_as` sets its entry registers, which a cleared
    /// chunk may hold.
    #[inline(always)]
    fn clear_and_reset(&mut self, fresh: Fresh, sb: u32, pv: u32) {
        let live = fresh.live_chunks;
        // Two halves of 256 bytes, each stored inline, where one 512-byte fill is a `memset`
        // call (a quarter of this function's cost). The compiler fence keeps LLVM from
        // merging them back into one (it emits no instruction; `black_box` did the same but
        // spilled the slice, 3 host instructions more per packet).
        if live == u32::MAX {
            let (gprs, xfers) = self.file[..REGS].split_at_mut(REGS / 2);
            gprs.fill(0);
            std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
            xfers.fill(0);
        } else {
            self.clear_chunks(live);
        }
        // At rest already after packets of this program alone (see `reset_for`): 8 host
        // instructions less per packet (callgrind, `simspeed pre`).
        if self.reset_for != fresh.quick {
            self.lm_addr = [sb, pv, sb, sb];
            self.lm_ready = [0; 4];
            self.cc = Cc::default();
            self.alu_at = 0;
            self.mul = Mul::default();
            self.defer_left = 0;
            self.defer_taken = false;
            self.busy = 0;
            // For the fused run, which leaves it so at its usual end (`Done`) instead of
            // storing it there (1 host instruction per packet): after packets of this
            // program alone, each ended `Done` on the fused path, it is already false.
            self.running = false;
            self.reset_for = fresh.reset_id();
        }
    }

    /// Clears the 16-byte chunks of registers in `chunks` (bit `k`: slots `4k .. 4k + 4`).
    #[inline(always)]
    fn clear_chunks(&mut self, mut chunks: u32) {
        const { assert!(REGS == 4 * 32) };
        while chunks != 0 {
            let k = chunks.trailing_zeros() as usize;
            chunks &= chunks - 1;
            if let Some(c) = self.file.get_mut(4 * k..4 * k + 4) {
                c.fill(0);
            }
        }
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
