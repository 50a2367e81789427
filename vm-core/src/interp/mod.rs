//! The reference interpreter: exact Linux / RFC 9669 semantics, checked memory, and speed.
//!
//! ```text
//! Program ──compile──► ops (flat, pre-decoded) ──┐
//! MapDefs ──MapSet::new──► maps ─────────────────┼─► Vm::run(input) ─► RunOutcome
//! input ──context (BPF_PROG_TEST_RUN layout)─────┘      (or RunError::Fault { pc, kind })
//! ```
//!
//! - **Semantics**: registers r0..r10, 512-byte stacks for up to 8 bpf-to-bpf frames with
//!   r6..r9 restored on return, all ALU/JMP/JMP32/atomic/byte-order/sign-extension
//!   instructions of ISA v4, legacy `LD_ABS`/`LD_IND`, `callx`, tail calls.
//! - **Contexts**: `xdp_md`, `__sk_buff` (tc and socket filter) as Linux 6.18's test run
//!   builds them, and the bpf_conformance `mem` convention (see [`context`]).
//! - **Memory**: every access is checked against a region table; a bad access is a
//!   [`RunError::Fault`] naming the instruction, never undefined behaviour or a panic.
//! - **Determinism**: same program, config and input give the same outcome; clocks and
//!   random numbers are seeded ([`VmConfig`]). Map contents persist across runs of one Vm.
//! - **Budget**: [`VmConfig::budget`] caps executed instructions per run; the count in
//!   [`RunOutcome::insns`] is exact (an `lddw` counts as one instruction).
//! - **Speed**: instructions are pre-decoded into specialised ops (`compile`, `select`),
//!   executed by threaded handlers (`exec`: one predicted indirect jump per instruction
//!   instead of a central `match`), with common sequences fused into superinstructions
//!   (`fuse`). The budget is paid per straight-line run at control transfers, not per
//!   instruction (`exec`). Per-run setup is small: the stack is re-zeroed only where the
//!   previous run could have written (`memory`: direct `r10 + constant` stores are bounded at
//!   compile time, other writes lower a per-frame watermark), the run state is allocated once
//!   per Vm, and the region table's view is rebuilt only when a window moved (not per run,
//!   not per map helper: map slabs never move). Steady-state runs allocate nothing
//!   ([`Vm::run_into`], [`Vm::run_retval`]). `examples/interp_cost.rs` measures the host
//!   cost per run and per instruction (for callgrind and a quick wall-clock check).

mod alu;
mod compile;
mod context;
mod env;
mod exec;
mod fault;
mod fuse;
mod helpers;
mod memory;
mod op;
mod select;

pub use compile::{LoadError, MAX_PROGRAM_SLOTS};
pub use env::Redirect;
pub use fault::{Access, BadInput, FaultKind, Region, RunError};

use compile::{Compiled, MapInfo};
use context::{Ctx, CtxKind, Packet};
use env::{Env, RunState};
use exec::{CHUNK, Flow, Frame, Machine, Stop};
use memory::{CTX, FIRST_MAP, MAX_FRAMES, MEM, Memory, PACKET, STACK_SIZE, STACK0, Window, vaddr};

use crate::maps::MapSet;
use crate::{MapDef, MapType, ProgType, Program};

/// How a [`Vm`] runs programs. All fields are public; start from `VmConfig::default()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    /// Most instructions one run may execute; one more is [`RunError::BudgetExceeded`].
    pub budget: u64,
    /// CPUs the per-CPU maps are created for.
    pub ncpus: u32,
    /// The CPU programs run on (`bpf_get_smp_processor_id`, per-CPU map copies).
    pub cpu: u32,
    /// Seed of `bpf_get_prandom_u32` (and the flow-hash key of `bpf_get_hash_recalc`).
    pub prandom_seed: u64,
    /// Clock value before the first `bpf_ktime_get_*ns` call.
    pub clock_start_ns: u64,
    /// Clock advance per clock helper call.
    pub clock_step_ns: u64,
    /// `xdp_md->ingress_ifindex` (test run default: 1, the loopback device).
    pub ingress_ifindex: u32,
    /// `xdp_md->rx_queue_index`.
    pub rx_queue_index: u32,
    /// Execute common instruction sequences as superinstructions (see the `fuse` module).
    /// Results are identical either way; turning it off exists to test exactly that.
    pub superinstructions: bool,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            budget: 100_000_000,
            ncpus: 1,
            cpu: 0,
            prandom_seed: 0,
            clock_start_ns: 1_000_000_000,
            clock_step_ns: 1_000,
            ingress_ifindex: 1,
            rx_queue_index: 0,
            superinstructions: true,
        }
    }
}

/// What one run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutcome {
    /// The full 64-bit r0 at exit (the kernel's test run reports the low 32 bits for XDP
    /// and tc; see [`RunOutcome::retval32`]).
    pub retval: u64,
    /// For packet programs, what `BPF_PROG_TEST_RUN` copies out (XDP: `data_meta` to
    /// `data_end`; tc: `data` to `data_end`; socket filter: a zeroed Ethernet header and the
    /// rest). For `mem` programs, the input buffer after the run.
    pub packet: Vec<u8>,
    /// Instructions executed (exact; `lddw` counts once).
    pub insns: u64,
    /// Target recorded by `bpf_redirect` / `bpf_redirect_map`, if any.
    pub redirect: Option<Redirect>,
    /// Lines printed with `bpf_trace_printk`, in order.
    pub printk: Vec<String>,
}

impl RunOutcome {
    /// The low 32 bits of r0, as `BPF_PROG_TEST_RUN` reports them.
    pub fn retval32(&self) -> u32 {
        self.retval as u32
    }
}

/// An interpreter instance: compiled code, maps and reusable buffers for one program (plus
/// its tail-call targets). Runs take `&mut self`; use one Vm per thread.
pub struct Vm {
    prog_type: ProgType,
    names: Vec<String>,
    map_defs: Vec<MapDef>,
    code: Compiled,
    maps: MapSet,
    config: VmConfig,
    mem: Memory,
    pkt: Packet,
    ctx: Ctx,
    input: Vec<u8>,
    stack: StackBuf,
    machine: MachineBuf,
    frames: Box<[Frame; MAX_FRAMES]>,
    /// Deepest call frame the last run used (frames 0..=this may hold direct stack stores).
    dirty_frames: usize,
    /// Whether the last run may have left non-zero stack bytes (see `zero_stacks`).
    stack_dirty: bool,
    /// Whether map windows must be re-derived before the next run (after `maps_mut`).
    maps_dirty: bool,
    st: RunState,
    last_insns: u64,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("prog_type", &self.prog_type)
            .field("programs", &self.names)
            .field("ops", &self.code.len)
            .field("maps", &self.maps.len())
            .field("config", &self.config)
            .finish()
    }
}

struct Maps<'a>(&'a MapSet);

impl MapInfo for Maps<'_> {
    fn count(&self) -> usize {
        self.0.len()
    }

    fn value_base(&self, fd: usize) -> Result<(usize, u32), String> {
        let map = self.0.get(fd).ok_or("no such map")?;
        if map.def().map_type != MapType::Array {
            return Err(format!(
                "value addresses exist only for array maps, not {:?}",
                map.def().map_type
            ));
        }
        // Array values sit at fixed offsets from the slab start; value 0 comes first.
        Ok((FIRST_MAP + fd, 0))
    }
}

impl Vm {
    /// Compiles `program`, creates its maps and prepares a context for its type.
    ///
    /// Fails (never later, at run time) on helpers the interpreter does not implement or
    /// the program type may not call, unsupported instructions, map definitions the kernel
    /// would refuse, and program types with no context model.
    pub fn new(program: &Program, config: VmConfig) -> Result<Vm, LoadError> {
        let _span = tracing::debug_span!("vm.load", name = %program.name).entered();
        let ty = program.prog_type;
        let kind = CtxKind::of(ty).ok_or(LoadError::NoContext(ty))?;
        let mut maps = MapSet::new(&program.maps, config.ncpus)?;
        let mut code = Compiled::new(config.superinstructions);
        code.add(program, &Maps(&maps))?;
        let mut mem = Memory::new(maps.len());
        mem.set_hot(if kind == CtxKind::Mem { MEM } else { PACKET });
        env::map_maps(&mut mem, &mut maps);
        let stack = StackBuf::new();
        // SAFETY: the stack allocation is MAX_FRAMES * STACK_SIZE zeroed bytes, lives as long
        // as the Vm and is only ever accessed through `stack.ptr()`.
        unsafe { mem.map_stacks(stack.ptr()) };
        Ok(Vm {
            prog_type: ty,
            names: vec![program.name.clone()],
            map_defs: program.maps.clone(),
            code,
            maps,
            st: RunState::new(&config),
            config,
            mem,
            pkt: Packet::new(),
            ctx: Ctx::new(kind),
            input: Vec::new(),
            stack,
            machine: MachineBuf::new(),
            frames: Box::new([Frame::default(); MAX_FRAMES]),
            // The stack allocation starts zeroed.
            dirty_frames: 0,
            stack_dirty: false,
            maps_dirty: true,
            last_insns: 0,
        })
    }

    /// Adds a tail-call target and returns its program index: the value to store in a
    /// `BPF_MAP_TYPE_PROG_ARRAY` to make `bpf_tail_call` jump to it (the main program is 0).
    /// It shares the Vm's maps, so it must declare the same maps (or none) and have the
    /// same type, as the kernel requires of prog-array members.
    pub fn add_program(&mut self, program: &Program) -> Result<usize, LoadError> {
        if program.prog_type != self.prog_type {
            return Err(LoadError::ProgTypeMismatch {
                name: program.name.clone(),
                got: program.prog_type.name(),
                want: self.prog_type.name(),
            });
        }
        if !program.maps.is_empty() && program.maps != self.map_defs {
            return Err(LoadError::MapsMismatch {
                name: program.name.clone(),
            });
        }
        let index = self.code.add(program, &Maps(&self.maps))?;
        self.maps_dirty = true;
        self.names.push(program.name.clone());
        Ok(index)
    }

    /// Restarts the `bpf_get_prandom_u32` stream as if the Vm had been created with
    /// `prandom_seed = seed`. A simulator that gives every packet its own stream (so that the
    /// order in which hardware threads interleave does not change what a packet draws) calls
    /// this before each run.
    pub fn reseed_prandom(&mut self, seed: u64) {
        self.st.rng = env::scramble(seed) | 1;
    }

    /// The maps (contents persist across runs, like the kernel's).
    pub fn maps(&self) -> &MapSet {
        &self.maps
    }

    /// The maps, to fill or inspect between runs.
    pub fn maps_mut(&mut self) -> &mut MapSet {
        self.maps_dirty = true;
        &mut self.maps
    }

    /// The configuration.
    pub fn config(&self) -> &VmConfig {
        &self.config
    }

    /// The program type.
    pub fn prog_type(&self) -> ProgType {
        self.prog_type
    }

    /// Runs the main program once on `input`: the packet for XDP, tc and socket-filter
    /// programs (at least 14 bytes), the memory buffer for `mem` programs (r1 = its address
    /// or 0 when empty, r2 = its length).
    pub fn run(&mut self, input: &[u8]) -> Result<RunOutcome, RunError> {
        let mut out = RunOutcome::default();
        self.run_into(input, &mut out)?;
        Ok(out)
    }

    /// As [`Vm::run`], but fills `out`, reusing its buffers: with a reused `out`, a run
    /// allocates nothing in steady state (only `bpf_trace_printk` lines allocate).
    pub fn run_into(&mut self, input: &[u8], out: &mut RunOutcome) -> Result<(), RunError> {
        let retval = self.execute(input)?;
        out.retval = retval;
        out.insns = self.last_insns;
        out.redirect = self.st.redirect;
        out.printk.clear();
        out.printk.append(&mut self.st.printk);
        out.packet.clear();
        match self.ctx.kind {
            CtxKind::Mem => out.packet.extend_from_slice(&self.input),
            _ => self.pkt.output(&mut out.packet),
        }
        Ok(())
    }

    /// Runs and returns only r0 (no copies at all); see [`Vm::last_insns`] and
    /// [`Vm::last_packet`] for the rest of the outcome.
    pub fn run_retval(&mut self, input: &[u8]) -> Result<u64, RunError> {
        self.execute(input)
    }

    /// Instructions executed by the last successful run.
    pub fn last_insns(&self) -> u64 {
        self.last_insns
    }

    /// The packet after the last run, as [`RunOutcome::packet`] reports it.
    pub fn last_packet(&self) -> Vec<u8> {
        let mut v = Vec::new();
        match self.ctx.kind {
            CtxKind::Mem => v.extend_from_slice(&self.input),
            _ => self.pkt.output(&mut v),
        }
        v
    }

    /// One run: sets up the context, executes, and returns r0.
    ///
    /// Kept lean because it is paid on every run (a 25-instruction parser executes in less
    /// time than a naive setup takes): the Machine persists across runs and only what a run
    /// can change is reset; the region table view and the `xdp_md` words are rebuilt only
    /// when the table changed since they were taken ([`Memory::changed`]).
    fn execute(&mut self, input: &[u8]) -> Result<u64, RunError> {
        // Context and input.
        let (r1, r2) = match self.ctx.kind {
            CtxKind::Mem => {
                if self.input.len() == input.len() {
                    // The common case (same-sized inputs): no capacity logic, one copy, and
                    // the window (same buffer, same length) does not change.
                    self.input.copy_from_slice(input);
                } else {
                    self.input.clear();
                    self.input.extend_from_slice(input);
                    let w = Window::whole(&mut self.input);
                    self.mem.set(MEM, w, w);
                }
                let r1 = if input.is_empty() { 0 } else { vaddr(MEM, 0) };
                (r1, input.len() as u64)
            }
            _ => {
                self.setup_packet(input)?;
                (vaddr(CTX, 0), 0)
            }
        };
        if self.stack_dirty {
            self.zero_stacks();
        }
        if !self.st.printk.is_empty() {
            self.st.printk.clear();
        }
        self.st.redirect = None;

        if self.maps_dirty {
            env::map_maps(&mut self.mem, &mut self.maps);
            self.maps_dirty = false;
        }
        let budget = self.config.budget;
        let entry = self.code.code.as_ptr();
        let vm: *mut Vm = self;
        // SAFETY: the Machine allocation is owned by this Vm, and nothing else references it
        // while `execute` runs (handlers get this one `&mut`).
        let m = unsafe { self.machine.get() };
        if self.mem.changed() {
            m.view = self.mem.view();
            m.xdp = self.ctx.xdp_words(&self.pkt);
        }
        m.r[..11].fill(0);
        m.r[1] = r1;
        m.r[2] = r2;
        m.r[10] = vaddr(STACK0, STACK_SIZE as u32);
        m.fp = self.stack.ptr();
        m.delta = self.code.len * std::mem::size_of::<op::Op>();
        m.depth = 0;
        m.max_depth = 0;
        m.tail_calls = 0;
        // `m.stop` is `None`: every run that sets it takes it (`End::Stop`).
        m.vm = vm;

        // Hand out the budget in chunks; each chain of handlers runs at most one chunk.
        let mut remaining = budget;
        let mut chunk = remaining.min(CHUNK);
        // The main program starts at op 0 of the fast copy.
        let mut flow = exec::enter(m, entry, chunk);
        let end = loop {
            match flow {
                Flow::Exit => break End::Exit(budget - remaining + chunk - m.n),
                Flow::Yield => {
                    remaining -= chunk;
                    if remaining == 0 {
                        break End::Budget;
                    }
                    chunk = remaining.min(CHUNK);
                    let ip = m.ip;
                    flow = exec::resume(m, ip, chunk);
                }
                Flow::Stop => break End::Stop(m.stop.take(), budget - remaining + chunk - m.n),
            }
        };
        if self.mem.len() > FIRST_MAP + self.maps.len() {
            helpers::close_open_records(&mut self.env());
        }
        let (r0, max_depth) = (m.r[0], m.max_depth);
        self.dirty_frames = max_depth;
        self.stack_dirty =
            max_depth > 0 || self.code.stack_low < STACK_SIZE || self.mem.stack_watermarks().1 > 0;
        match end {
            End::Exit(insns) => {
                self.last_insns = insns;
                Ok(r0)
            }
            other => self.stopped(other),
        }
    }

    /// The outcome of a run that ended other than by `exit`.
    #[cold]
    #[inline(never)]
    fn stopped(&mut self, end: End) -> Result<u64, RunError> {
        match end {
            End::Exit(insns) | End::Stop(Some(Stop::Abort), insns) => {
                self.last_insns = insns;
                Ok(0)
            }
            End::Stop(Some(Stop::Fault { op, kind }), _) => Err(RunError::Fault {
                prog: self.code.prog_of(op),
                pc: self.code.pcs.get(op).copied().unwrap_or(0) as usize,
                kind: name_maps(&self.map_defs, kind),
            }),
            End::Budget => Err(RunError::BudgetExceeded {
                budget: self.config.budget,
            }),
            End::Stop(None, _) => Err(RunError::Fault {
                prog: 0,
                pc: 0,
                kind: FaultKind::Unsupported {
                    what: "run stopped without a reason (interpreter bug)".into(),
                },
            }),
        }
    }

    /// What helpers see of the Vm.
    fn env(&mut self) -> Env<'_> {
        Env {
            mem: &mut self.mem,
            pkt: &mut self.pkt,
            ctx: &mut self.ctx,
            maps: &mut self.maps,
            st: &mut self.st,
            cfg: &self.config,
        }
    }

    /// Lays out the packet and the context for a run of a packet program.
    fn setup_packet(&mut self, input: &[u8]) -> Result<(), BadInput> {
        self.pkt.setup(self.prog_type, input)?;
        self.ctx.setup(
            &self.pkt,
            self.config.ingress_ifindex,
            self.config.rx_queue_index,
        );
        self.pkt.map_into(&mut self.mem);
        Ok(())
    }

    /// Re-zeroes the stack bytes the previous run may have written: from the lowest direct
    /// store offset in every frame it used, and from the watermark of writes through
    /// translated addresses in every frame (see `memory`).
    #[inline]
    fn zero_stacks(&mut self) {
        let direct = self.code.stack_low.min(STACK_SIZE) & !7;
        let (marks, marked) = self.mem.stack_watermarks();
        let frames = (self.dirty_frames + 1).max(marked).min(MAX_FRAMES);
        let stack = self.stack.ptr();
        for (d, &mark) in marks.iter().enumerate().take(frames) {
            let from = if d <= self.dirty_frames {
                direct
            } else {
                STACK_SIZE
            };
            let from = from.min(mark as usize & !7);
            if from >= STACK_SIZE {
                continue;
            }
            // SAFETY: `d < MAX_FRAMES` and `from < STACK_SIZE`, so the range lies inside the
            // stack allocation, which nothing else accesses during this call.
            unsafe {
                let p = stack.add(d * STACK_SIZE + from);
                let len = STACK_SIZE - from;
                if len <= 64 {
                    // Short tails (the common case) without a call to memset.
                    for i in (0..len).step_by(8) {
                        p.add(i).cast::<u64>().write_unaligned(0);
                    }
                } else {
                    std::ptr::write_bytes(p, 0, len);
                }
            }
        }
    }
}

/// How the handler chains of one run ended.
enum End {
    /// `exit` after this many instructions.
    Exit(u64),
    /// The budget ran out.
    Budget,
    /// A fault or abort, after this many instructions.
    Stop(Option<Stop>, u64),
}

/// The run-state of a Vm, allocated once (it holds a 2 KiB register file, see
/// [`Machine::r`]). Held as a raw allocation so that the `&mut Vm` that slow paths derive
/// from `Machine::vm` asserts nothing about the Machine a handler is using.
struct MachineBuf {
    ptr: std::ptr::NonNull<Machine<'static>>,
}

// SAFETY: the allocation is owned exclusively by the Vm that holds this value; its raw
// pointers are reset at the start of every run.
unsafe impl Send for MachineBuf {}

impl MachineBuf {
    fn new() -> MachineBuf {
        let m = Box::new(Machine {
            r: [0; 256],
            view: memory::View::EMPTY,
            fp: std::ptr::null_mut(),
            delta: 0,
            depth: 0,
            max_depth: 0,
            tail_calls: 0,
            ip: std::ptr::null(),
            n: 0,
            stop: None,
            xdp: None,
            vm: std::ptr::null_mut(),
            _vm: std::marker::PhantomData,
        });
        MachineBuf {
            ptr: std::ptr::NonNull::from(Box::leak(m)),
        }
    }

    /// The Machine.
    ///
    /// # Safety
    /// No other reference to the Machine may be live.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get<'a>(&self) -> &'a mut Machine<'static> {
        // SAFETY: the pointer came from `Box::leak` and stays valid until `drop`; the caller
        // guarantees exclusivity.
        unsafe { &mut *self.ptr.as_ptr() }
    }
}

impl Drop for MachineBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `Box::leak` and is freed exactly once, here.
        drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
    }
}

/// The 8 × 512-byte stack, allocated once per Vm. Held as a raw allocation rather than a
/// `Box` so that moving the Vm never invalidates the region table's pointers into it.
struct StackBuf {
    ptr: std::ptr::NonNull<u8>,
}

// SAFETY: the allocation is owned exclusively by the Vm that holds this value.
unsafe impl Send for StackBuf {}

impl StackBuf {
    const LEN: usize = MAX_FRAMES * STACK_SIZE;

    fn new() -> StackBuf {
        let b: Box<[u8]> = vec![0u8; Self::LEN].into_boxed_slice();
        let leaked: &'static mut [u8] = Box::leak(b);
        StackBuf {
            ptr: std::ptr::NonNull::from(leaked).cast::<u8>(),
        }
    }

    fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for StackBuf {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), Self::LEN);
        // SAFETY: `ptr` came from `Box::leak` of a boxed slice of `LEN` bytes and is
        // freed exactly once, here.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// Fills in map names in a fault's region.
fn name_maps(defs: &[MapDef], kind: FaultKind) -> FaultKind {
    let fill = |r: Region| match r {
        Region::Map { index, .. } => Region::Map {
            index,
            name: defs
                .get(index as usize)
                .map(|d| d.name.clone())
                .unwrap_or_default(),
        },
        other => other,
    };
    match kind {
        FaultKind::OutOfBounds {
            access,
            size,
            region,
            offset,
            len,
        } => FaultKind::OutOfBounds {
            access,
            size,
            region: fill(region),
            offset,
            len,
        },
        FaultKind::ReadOnly {
            size,
            region,
            offset,
        } => FaultKind::ReadOnly {
            size,
            region: fill(region),
            offset,
        },
        other => other,
    }
}

#[cfg(test)]
mod fast_path_tests;
#[cfg(test)]
mod tests;
