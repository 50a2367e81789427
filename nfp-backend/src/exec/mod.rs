//! The reference microengine executor: runs [`MeInsn`] code exactly per the semantics
//! documented in [`crate::target::insn`], with memory, maps and firmware helpers, so that a
//! lowered program can be checked against vm-core's interpreter and nic-sim can time it.
//!
//! # Machine layout (the contract with the lowering)
//!
//! - **Threads**: [`THREADS_PER_ME`] contexts share one ME's 4 KiB local memory ([`Lmem`]).
//!   Thread `t` owns the stack area `LMEM[stack_base(t) .. stack_base(t) + 512]` and a packet
//!   vector at [`pkt_vec_addr`]`(t)`.
//! - **Registers at entry**: every GPR, transfer register and condition code is 0 except
//!   `A22` = [`stack_base`] (eBPF `r10 + off` is `LMEM[A22 + STACK_BYTES + off]`), `B22` =
//!   packet length, and R1 (GPR pair 2/3, both banks) = LMEM address of the packet vector.
//!   `ActLMAddr0` = stack base, `ActLMAddr1` = packet vector, `ActLMAddr2/3` = stack base.
//! - **Packet vector** (LMEM words at `ActLMAddr1`): word [`PV_LEN`] = packet length
//!   (`data_end - data`), [`PV_META`] = CTM address of `data_meta`, [`PV_DATA`] = CTM address
//!   of `data`, [`PV_DATA_END`] = CTM address of `data_end`. Firmware helpers that move the
//!   packet (`adjust_head/tail`) rewrite the vector *and* `B22`.
//! - **Packet buffer**: thread `t`'s packet sits in CTM at [`ctm_packet_buffer`]`(t)`, a
//!   [`PKT_BUF_BYTES`] page laid out as `BPF_PROG_TEST_RUN` lays out XDP packets:
//!   [`PKT_HEADROOM`] bytes of headroom, then the data; tail room up to the page end minus
//!   [`PKT_TAILROOM_RESERVED`]. Commands may touch the whole page of the running thread.
//! - **Map values** live in EMEM at `EMEM_MAP_BASE + (fd << EMEM_MAP_FD_SHIFT) + offset`,
//!   where `offset` is the slab offset vm-core's [`Map::lookup`](vm_core::maps::Map::lookup)
//!   returns: map contents stay in the caller's [`MapSet`], directly comparable with the
//!   interpreter's.
//! - **CLS and IMEM** are zero-initialised scratch memories ([`CLS_BYTES`], [`IMEM_BYTES`])
//!   shared by all threads; the lowering does not need them, they exist for completeness.
//! - **Return value**: at `Exit`, R0 = `A1:A0` (bank A of the GPR pair 0/1).
//!
//! # Reference loop and fast path
//!
//! [`Thread::run_until_event`] interprets [`MeInsn`]s with every check, per instruction: it
//! is the reference. [`Thread::run_until_event_fast`] runs a [`FastProgram`] (the same code
//! decoded once: slot-numbered operands, checks done, fused pairs, per-run budget accounting)
//! and falls back to the reference step for whatever it did not pre-decode; it gives the same
//! events, errors, registers, memories and counts (`tests_fast`), and is what nic-sim runs.
//!
//! # Timing
//!
//! Each instruction charges its [`insn_cycles`](crate::cost::insn_cycles) issue cycles;
//! taken branches add `branch_taken_penalty` minus the defer slots used. A memory command with
//! `swap`, or a firmware helper with memory latency (map helpers, perf output), ends
//! [`Thread::run_until_event`] with [`Event::Swap`] carrying the latency; nic-sim runs other
//! threads meanwhile. Helpers without latency (random, adjust_head/tail) only add issue cycles. Effects happen at issue (a read fills the
//! transfer registers immediately); a command without `swap` is fire-and-forget.

mod fast;
mod fast_branch;
mod fast_fuse;
mod fast_handlers;
mod fast_mem;
mod fast_run;
mod fast_select;
mod fresh;
mod fw;
mod jit;
mod live;
mod memory;
mod step;
mod thread;
mod through;
mod units;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fast;
#[cfg(test)]
mod tests_mem;
#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_thread;

pub use fast::FastProgram;
pub use fast_run::FusedBudget;
pub(crate) use fw::low_word_args;
pub use memory::{Lmem, PAGE_BYTES, PAGES, Page, PagePool, SharedMem};
pub use thread::Thread;
pub use through::{RunThrough, Segment};

use crate::cost::Latencies;
use crate::target::{FwHelper, MeInsn, MemTarget};
use vm_core::maps::MapSet;

/// Contexts per ME the eBPF datapath runs (CoreNIC's 4-context mode, nfp-model.md §1.3).
pub const THREADS_PER_ME: u8 = 4;
/// Bytes of local memory per ME.
pub const LMEM_BYTES: usize = 4096;
/// Stack bytes per thread (CoreNIC `EBPF_STACK_SIZE`).
pub const STACK_BYTES: u32 = 512;
/// LMEM byte address of the first packet vector (after the four stack areas).
pub const PKT_VEC_BASE: u32 = STACK_BYTES * THREADS_PER_ME as u32;
/// Bytes per packet vector (4 words).
pub const PKT_VEC_BYTES: u32 = 16;
/// Packet vector word index: packet length in bytes (`data_end - data`).
pub const PV_LEN: u8 = 0;
/// Packet vector word index: CTM byte address of `data_meta`.
pub const PV_META: u8 = 1;
/// Packet vector word index: CTM byte address of `data` (packet start).
pub const PV_DATA: u8 = 2;
/// Packet vector word index: CTM byte address of `data_end`.
pub const PV_DATA_END: u8 = 3;
/// GPR number of the stack base (bank A) and of the packet length (bank B).
pub const STATIC_GPR: u8 = 22;
/// CTM byte address of thread 0's packet buffer.
pub const CTM_PKT_BASE: u32 = 0x1_0000;
/// Bytes of one packet buffer (one page, as `bpf_test_init` allocates).
pub const PKT_BUF_BYTES: u32 = 4096;
/// Headroom in front of the packet (`XDP_PACKET_HEADROOM`).
pub const PKT_HEADROOM: u32 = 256;
/// Bytes at the end of the buffer the packet may never reach (`skb_shared_info`).
pub const PKT_TAILROOM_RESERVED: u32 = 320;
/// Headroom `adjust_head` may never reach (`sizeof(struct xdp_frame)`).
pub const XDP_FRAME_BYTES: u32 = 40;
/// Smallest packet (`ETH_HLEN`); also the least `adjust_head/tail` leave.
pub const MIN_PACKET: u32 = 14;
/// Largest packet accepted at entry (what `BPF_PROG_TEST_RUN` accepts for XDP).
pub const MAX_PACKET: u32 = PKT_BUF_BYTES - PKT_HEADROOM - PKT_TAILROOM_RESERVED;
/// 40-bit EMEM address of map 0's value slab.
pub const EMEM_MAP_BASE: u64 = 0x80_0000_0000;
/// Map `fd`'s slab starts at `EMEM_MAP_BASE + (fd << EMEM_MAP_FD_SHIFT)` (256 MiB apart).
pub const EMEM_MAP_FD_SHIFT: u32 = 28;
/// Bytes of the modelled CLS (per island, real size).
pub const CLS_BYTES: usize = 64 * 1024;
/// Bytes of the modelled IMEM scratch (the real unit has 4 MiB; the model keeps 256 KiB).
pub const IMEM_BYTES: usize = 256 * 1024;

/// LMEM byte address of thread `thread`'s stack area (the value of `A22` and `ActLMAddr0`).
pub const fn stack_base(thread: u8) -> u32 {
    thread as u32 * STACK_BYTES
}

/// LMEM byte address of thread `thread`'s packet vector (the value of `ActLMAddr1`).
pub const fn pkt_vec_addr(thread: u8) -> u32 {
    PKT_VEC_BASE + thread as u32 * PKT_VEC_BYTES
}

/// CTM byte address of thread `thread`'s packet buffer.
pub const fn ctm_packet_buffer(thread: u8) -> u32 {
    CTM_PKT_BASE + thread as u32 * PKT_BUF_BYTES
}

/// EMEM address of byte `offset` of map `fd`'s value slab.
pub const fn emem_map_addr(fd: u32, offset: u64) -> u64 {
    EMEM_MAP_BASE + ((fd as u64) << EMEM_MAP_FD_SHIFT) + offset
}

/// Address spaces, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    /// Local memory.
    Lmem,
    /// A command target.
    Mem(MemTarget),
}

/// Why execution stopped with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecErrorKind {
    /// The program counter left the program (fell off the end).
    #[error("pc outside the program of {len} instructions")]
    PcOutOfRange {
        /// Program length.
        len: usize,
    },
    /// A branch or return to an address outside the program.
    #[error("branch target {0} outside the program")]
    BadTarget(u32),
    /// An operand the hardware cannot address (register number, LM window, same-bank pair...).
    #[error("bad operand: {0}")]
    BadOperand(&'static str),
    /// A memory access outside the modelled memory.
    #[error("{} of {len} bytes at {space:?} address {addr:#x} is outside memory", if *.write { "write" } else { "read" })]
    BadAddress {
        /// The address space.
        space: Space,
        /// The byte address.
        addr: u64,
        /// Access length in bytes.
        len: u32,
        /// Whether it was a write.
        write: bool,
    },
    /// An LM index used within `csr_write_delay` instructions of its `ActLMAddr` write.
    #[error("LM index {0} used before its ActLMAddr write took effect")]
    LmHazard(u8),
    /// An indirect shift whose previous instruction was not an ALU instruction.
    #[error("indirect shift not preceded by an ALU instruction")]
    IndirectShift,
    /// A branch, return, call or exit inside another branch's defer slots.
    #[error("control transfer in a branch defer slot")]
    BranchInDefer,
    /// A multiply step out of order.
    #[error("multiply step out of sequence: {0}")]
    MulSequence(&'static str),
    /// More instructions than the budget allowed.
    #[error("instruction budget of {0} exceeded")]
    Budget(u64),
    /// A firmware helper got an argument it cannot handle.
    #[error("firmware helper {helper:?}: {reason}")]
    Helper {
        /// The helper.
        helper: FwHelper,
        /// What was wrong.
        reason: &'static str,
    },
    /// `run_until_event` on a thread that has not been started or already finished.
    #[error("thread is not running")]
    NotRunning,
    /// A packet the buffer cannot hold.
    #[error("packet of {len} bytes: {reason}")]
    BadPacket {
        /// The packet length.
        len: usize,
        /// What was wrong.
        reason: &'static str,
    },
}

/// An execution error at an ME instruction address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ME pc {pc}: {kind}")]
pub struct ExecError {
    /// The instruction address.
    pub pc: u32,
    /// What went wrong.
    pub kind: ExecErrorKind,
}

/// What the thread waits for in an [`Event::Swap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SwapTarget {
    /// A memory command to this unit.
    Mem(MemTarget),
    /// A firmware helper.
    Fw(FwHelper),
}

/// What one instruction address cost over a run: for profiles
/// ([`Thread::run_until_event_profiled`], nic-sim's `SimConfig::profile`).
///
/// `cycles` is every ME issue cycle charged while executing the instruction at this address:
/// its own issue cycles, a firmware helper's issue cycles, the exit cost, and a taken
/// branch's penalty (charged to the branch when it has no defer slots, to the last defer-slot
/// instruction otherwise, where the executor applies it). Memory wait cycles are not issue
/// cycles and are not counted; the sum of `cycles` over all addresses is the busy total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct InsnProfile {
    /// Times the instruction at this address executed.
    pub executions: u64,
    /// ME cycles charged to it (see the type's docs).
    pub cycles: u64,
}

impl InsnProfile {
    /// Adds `other`'s counts (profiles of several MEs or runs sum address by address).
    pub fn add(&mut self, other: &InsnProfile) {
        self.executions += other.executions;
        self.cycles += other.cycles;
    }
}

/// Adds `from` into `into` address by address, growing `into` to `from`'s length.
pub fn add_profiles(into: &mut Vec<InsnProfile>, from: &[InsnProfile]) {
    if into.len() < from.len() {
        into.resize(from.len(), InsnProfile::default());
    }
    for (a, b) in into.iter_mut().zip(from) {
        a.add(b);
    }
}

/// Why [`Thread::run_until_event`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The thread swapped out waiting for a command; resume it after `wait_cycles`.
    Swap {
        /// ME cycles spent issuing since the previous event.
        busy_cycles: u64,
        /// Latency to wait before the thread may run again.
        wait_cycles: u64,
        /// What it waits for.
        target: SwapTarget,
    },
    /// The program exited.
    Done {
        /// The full 64-bit R0.
        retval: u64,
        /// ME cycles spent issuing since the previous event.
        busy_cycles: u64,
        /// Instructions executed for this packet.
        insns: u64,
    },
}

/// Everything a running thread touches besides its own registers. Built per call from the
/// parts nic-sim owns: the ME's local memory, the shared memories, the maps and the timing.
pub struct MemState<'a> {
    /// The ME's local memory.
    pub lmem: &'a mut Lmem,
    /// CLS, IMEM, the random generator, the CPU number.
    pub shared: &'a mut SharedMem,
    /// The program's maps (EMEM).
    pub maps: &'a mut MapSet,
    /// Cycle costs.
    pub lat: &'a Latencies,
}

/// Options of [`run_packet`] / [`Executor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOpts {
    /// Most ME instructions per packet.
    pub budget: u64,
    /// Seed of the firmware's random numbers (same stream as vm-core's
    /// `bpf_get_prandom_u32` for the same `VmConfig::prandom_seed`).
    pub prandom_seed: u64,
    /// CPU number for per-CPU maps.
    pub cpu: u32,
    /// The thread (context) to run on, `< THREADS_PER_ME`.
    pub thread: u8,
    /// Cycle costs.
    pub lat: Latencies,
}

impl Default for RunOpts {
    fn default() -> Self {
        RunOpts {
            budget: 1_000_000,
            prandom_seed: 0,
            cpu: 0,
            thread: 0,
            lat: Latencies::NFP4000,
        }
    }
}

/// The result of one packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeRun {
    /// The full 64-bit R0 at exit.
    pub retval: u64,
    /// Packet bytes `data_meta .. data_end` after the run (as vm-core's `RunOutcome::packet`
    /// for XDP).
    pub packet: Vec<u8>,
    /// ME instructions executed.
    pub insns: u64,
    /// Cycles the ME was busy issuing.
    pub busy_cycles: u64,
    /// Cycles the thread waited swapped out.
    pub wait_cycles: u64,
    /// Number of swaps (memory commands and firmware calls that waited).
    pub swaps: u64,
}

/// Runs packets one after another on one thread, keeping local memory, shared memory and the
/// random generator across packets (like a vm-core `Vm` keeps its state across runs).
pub struct Executor {
    lmem: Lmem,
    shared: SharedMem,
    thread: Thread,
    opts: RunOpts,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("opts", &self.opts)
            .finish()
    }
}

impl Executor {
    /// A fresh ME with one thread.
    pub fn new(opts: RunOpts) -> Executor {
        Executor {
            lmem: Lmem::new(),
            shared: SharedMem::new(opts.prandom_seed, opts.cpu),
            thread: Thread::new(opts.thread),
            opts,
        }
    }

    /// Runs `code` on `packet` to completion.
    pub fn run(
        &mut self,
        code: &[MeInsn],
        maps: &mut MapSet,
        packet: &[u8],
    ) -> Result<MeRun, ExecError> {
        let _span =
            tracing::debug_span!("me.run", insns = code.len(), len = packet.len()).entered();
        self.thread.start(&mut self.lmem, packet)?;
        let mut out = MeRun::default();
        let mut mem = MemState {
            lmem: &mut self.lmem,
            shared: &mut self.shared,
            maps,
            lat: &self.opts.lat,
        };
        loop {
            match self
                .thread
                .run_until_event(code, &mut mem, self.opts.budget)?
            {
                Event::Swap {
                    busy_cycles,
                    wait_cycles,
                    ..
                } => {
                    out.busy_cycles += busy_cycles;
                    out.wait_cycles += wait_cycles;
                    out.swaps += 1;
                }
                Event::Done {
                    retval,
                    busy_cycles,
                    insns,
                } => {
                    out.busy_cycles += busy_cycles;
                    out.retval = retval;
                    out.insns = insns;
                    out.packet.extend_from_slice(self.thread.packet());
                    return Ok(out);
                }
            }
        }
    }

    /// The ME's local memory (to inspect the stack after a run).
    pub fn lmem(&self) -> &Lmem {
        &self.lmem
    }

    /// The shared memories.
    pub fn shared(&self) -> &SharedMem {
        &self.shared
    }

    /// The thread (registers after a run).
    pub fn thread(&self) -> &Thread {
        &self.thread
    }
}

/// Runs `code` once on `packet` with fresh machine state (maps are the caller's and keep
/// their contents). Never panics; every failure is an [`ExecError`] with the ME pc.
pub fn run_packet(
    code: &[MeInsn],
    maps: &mut MapSet,
    packet: &[u8],
    opts: &RunOpts,
) -> Result<MeRun, ExecError> {
    Executor::new(opts.clone()).run(code, maps, packet)
}
