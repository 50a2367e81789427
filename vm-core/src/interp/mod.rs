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
//!   (`fuse`). The budget is paid per run at control transfers, not per instruction, and a
//!   conditional jump that falls through pays nothing (`exec`). Per-run setup is small (see
//!   `prepare`): the stack is re-zeroed only where the previous run could have written
//!   (`memory`: direct `r10 + constant` stores are bounded at compile time, other writes lower
//!   a per-frame watermark), registers are zeroed only for programs that may read one before
//!   writing it (`liveness`), the run state is allocated once per Vm, the entry into the
//!   code is decided once per Vm, and the region table's view is rebuilt only when a window
//!   moved (not per run, not per map helper: map slabs never move). Steady-state runs
//!   allocate nothing ([`Vm::run_into`], [`Vm::run_retval`]). A *clean* run (no helper that
//!   left output or moved a window, no call, no fault, within one chunk of budget; see
//!   `Machine::depth`) resets nothing after itself, and the next run starts from the state it
//!   left, resetting at most frame 0's stack tail and the registers: `mem` programs that
//!   cannot write memory run on the caller's input in place (no copy), and inputs of the
//!   same length as the last one (a `mem` copy, an XDP packet) are only re-copied into the
//!   laid out buffer. Array-map lookups with the key on the stack and the `xdp_md` word loads
//!   of the entry block have their own handlers (`exec::call_lookup`, `mem_ops::ctx_ldxw`)
//!   that fall back to the general path for anything else, and loads check the hot window
//!   (the packet or the `mem` input) before the region table. `examples/interp_cost.rs`
//!   measures the host cost per run and per instruction (for callgrind and a quick
//!   wall-clock check).

mod alu;
mod compile;
mod context;
mod env;
mod exec;
mod fault;
mod fuse;
mod helpers;
mod jump;
mod liveness;
mod machine_buf;
mod mem_ops;
mod memory;
mod op;
mod prepare;
mod select;

pub use compile::{LoadError, MAX_PROGRAM_SLOTS};
pub use env::Redirect;
pub use fault::{Access, BadInput, FaultKind, Region, RunError};
pub use helpers::arg_counts as helper_arg_counts;

use compile::{Compiled, MapInfo};
use context::{Ctx, CtxKind, Packet};
use env::{Env, RunState};
use exec::{CHUNK, Entry, Flow, Frame, Stop};
use machine_buf::MachineBuf;
use memory::{FIRST_MAP, MAX_FRAMES, MEM, Memory, PACKET, STACK_SIZE};
use prepare::{FastInput, RESET_ALL, RESET_NONE, RESET_REGS, RESET_STACK, StackBuf};

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
    /// The copy of a `mem` program's input (unused when [`Vm::borrow_input`]).
    input: Vec<u8>,
    /// Whether a `mem` program runs on the caller's input in place: it cannot write memory
    /// outside its stack ([`Compiled::writes_memory`]), so its input window is read-only and
    /// a copy could never differ from the input.
    borrow_input: bool,
    /// The input length for which a run takes the in-place `mem` path ([`Vm::borrow_input`]
    /// and a window of that length published), else `usize::MAX`: one comparison instead of
    /// three per run.
    borrow_len: usize,
    /// r1 of a `mem` program for the published window (0 for an empty input).
    mem_r1: u64,
    /// How a run copies an input of the length the last full setup published, if any (the
    /// other same-sized cases: a `mem` program's copy, an XDP packet).
    fast: FastInput,
    /// Whether a run must zero r0..r10 before setting r1, r2 and r10: only when the main
    /// program may read some other register before writing it ([`Compiled::entry_live`]).
    /// Otherwise registers keep what the last run left, which no run can observe.
    zero_regs: bool,
    /// How a run enters the main program (recomputed whenever the code may have moved).
    entry: Entry,
    stack: StackBuf,
    machine: MachineBuf,
    frames: Box<[Frame; MAX_FRAMES]>,
    /// Deepest call frame the last run used (frames 0..=this may hold direct stack stores).
    dirty_frames: usize,
    /// Whether the last run may have left non-zero stack bytes (see `zero_stacks`).
    stack_dirty: bool,
    /// Whether map windows must be re-derived before the next run (after `maps_mut`).
    maps_dirty: bool,
    /// What the next run must reset first, as flags: [`RESET_ALL`] ([`Vm::reset_state`]:
    /// after a run that took a slow path, or a change to the Vm between runs), else
    /// [`RESET_STACK`] (a clean run may have written frame 0's stack) and [`RESET_REGS`]
    /// ([`Vm::zero_regs`]), or [`RESET_NONE`]. A clean run leaves it as it found it after
    /// the reset (see [`Vm::clean_reset`]), so it costs no store.
    reset: u8,
    /// What a clean run leaves to reset: [`RESET_STACK`] if every run may leave non-zero
    /// stack bytes in frame 0 even without any slow path (the program stores to
    /// `r10 + constant`, or frame 0's write watermark is already lowered, see `memory`),
    /// [`RESET_ALL`] if a deeper frame's watermark is lowered, else [`RESET_NONE`]. Only
    /// slow runs and `add_program` can change it.
    stack_reset: u8,
    /// What [`Vm::reset`] is after the reset before a run and after a clean run:
    /// [`Vm::stack_reset`], with [`RESET_REGS`] if [`Vm::zero_regs`].
    clean_reset: u8,
    /// Where the bytes a clean run may have written in frame 0 start (a multiple of 8).
    stack_from0: usize,
    /// Per map, how the run loop answers `bpf_map_lookup_elem` on it (see
    /// `exec::call_lookup`); rebuilt with the map windows.
    arrays: Vec<exec::ArrayLookup>,
    /// The budget of the first chunk: `min(budget, CHUNK)`.
    first_chunk: u64,
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
        let config_budget = config.budget;
        let code_writes_memory = code.writes_memory;
        let zero_regs = code.entry_live & !ENTRY_SET != 0;
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
            borrow_input: kind == CtxKind::Mem && !code_writes_memory,
            borrow_len: usize::MAX,
            mem_r1: 0,
            fast: FastInput::NONE,
            zero_regs,
            // Set by `place_machine`, which runs before the Vm is returned.
            entry: Entry {
                h: |_, _, _| Flow::Stop,
                ip: std::ptr::null(),
                n: 0,
            },
            stack,
            machine: MachineBuf::new(),
            frames: Box::new([Frame::default(); MAX_FRAMES]),
            // The stack allocation starts zeroed.
            dirty_frames: 0,
            stack_dirty: false,
            maps_dirty: true,
            reset: RESET_ALL,
            stack_reset: RESET_NONE,
            clean_reset: RESET_NONE,
            stack_from0: STACK_SIZE,
            arrays: Vec::new(),
            first_chunk: config_budget.min(CHUNK),
            last_insns: 0,
        }
        .with_stack_reset()
        .with_machine_placed())
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
        self.place_machine();
        self.borrow_input = self.ctx.kind == CtxKind::Mem && !self.code.writes_memory;
        self.borrow_len = usize::MAX;
        self.fast = FastInput::NONE;
        self.maps_dirty = true;
        self.reset = RESET_ALL;
        self.update_stack_reset();
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
        self.reset_all();
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
            // A program run in place cannot have changed its input.
            CtxKind::Mem if self.borrow_input => out.packet.extend_from_slice(input),
            CtxKind::Mem => out.packet.extend_from_slice(&self.input),
            _ => self.pkt.output(&mut out.packet),
        }
        Ok(())
    }

    /// Runs and returns only r0 (no copies at all); see [`Vm::last_insns`] for the count.
    ///
    /// `#[inline]` so that a caller's loop over many runs absorbs the per-call work (saving
    /// and restoring registers, the call itself); the slow paths stay out of line.
    #[inline]
    pub fn run_retval(&mut self, input: &[u8]) -> Result<u64, RunError> {
        self.execute(input)
    }

    /// Instructions executed by the last successful run.
    pub fn last_insns(&self) -> u64 {
        self.last_insns
    }

    /// One run: sets up the context, executes, and returns r0.
    ///
    /// Kept lean because it is paid on every run (a 25-instruction parser executes in less
    /// time than a naive setup takes). The common case follows a *clean* run: one that took
    /// no slow path (no helper that left output or moved a window, no call, fault, yield or
    /// store that missed the windows; see `Machine::depth`). Then nothing needs resetting but
    /// at most frame 0's stack tail and the registers ([`Vm::clean_reset`]), the Machine, the
    /// region table's view and the input's layout are still valid, and the run is: input
    /// (one comparison, then a pointer move or a copy), r1 and r2, one call into the handler
    /// chain, one check of how it ended. Everything else is in `prepare` ([`Vm::setup_input`]
    /// when the input's length changed, [`Vm::reset_state`] before a run that follows a slow
    /// one) and [`Vm::finish_slow`] (after a run that was not clean).
    #[inline(always)]
    fn execute(&mut self, input: &[u8]) -> Result<u64, RunError> {
        // Context and input.
        let (r1, r2) = if input.len() == self.borrow_len {
            // The common case of a `mem` program run in place (same-sized inputs): the
            // read-only window keeps its bounds and moves to this call's input.
            let p = input.as_ptr().cast_mut();
            // SAFETY: `input` is borrowed for this whole run and is exactly as long as the
            // window, which `setup_input` published starting at offset 0 (`borrow_len`). The
            // window is read-only (its write window is empty and no op writes memory, see
            // `borrow_input`), is republished by every run before it executes, and is never
            // dereferenced between runs.
            unsafe { self.mem.rebase_rd_quiet(MEM, p) };
            // SAFETY: as in `execute` below: no other reference to the Machine is live.
            unsafe { self.machine.get() }.view.rebase_hot_rd(p);
            (self.mem_r1, input.len() as u64)
        } else if input.len() == self.fast.len {
            // The other same-sized cases: the layout, the windows and the context are as the
            // last full setup left them (see `FastInput`); only the bytes change.
            let f = self.fast;
            // SAFETY: `f.dst` starts `f.len` writable bytes of a buffer this Vm owns (see
            // `FastInput::dst`), which `input`, borrowed from the caller, cannot overlap.
            unsafe { std::ptr::copy_nonoverlapping(input.as_ptr(), f.dst, f.len) };
            (f.r1, f.r2)
        } else {
            self.setup_input(input)?
        };
        if self.reset != RESET_NONE {
            if self.reset & RESET_ALL != 0 {
                self.reset_state();
            } else {
                if self.reset & RESET_STACK != 0 {
                    self.zero_frame0();
                }
                if self.reset & RESET_REGS != 0 {
                    self.zero_registers();
                }
            }
        }
        let entry = self.entry;
        let vm: *mut Vm = self;
        // SAFETY: the Machine allocation is owned by this Vm, and nothing else references it
        // while `execute` runs (handlers get this one `&mut`).
        let m = unsafe { self.machine.get() };
        // r10 needs no store: a clean run cannot change it (writes to r10 compile to faults,
        // and only calls, which make a run slow, move it), and `reset_state` sets it.
        m.r[1] = r1;
        m.r[2] = r2;
        // `m.stop` is `None`: every run that sets it takes it (`End::Stop`).
        m.vm = vm;
        let flow = (entry.h)(m, entry.ip, entry.n);
        if flow == Flow::Exit {
            // A clean run: it ended in the first chunk, at depth 0, and changed nothing a
            // later run could see except (maybe) stack bytes and registers, which
            // `clean_reset`, already in `reset`, covers.
            self.last_insns = self.first_chunk - m.n;
            return Ok(m.r[0]);
        }
        self.finish_slow(flow)
    }

    /// The Vm after construction, with its Machine placed (see [`Vm::place_machine`]).
    fn with_machine_placed(mut self) -> Vm {
        self.place_machine();
        self
    }

    /// Moves the Machine so that its registers do not share page offsets with the code's
    /// fast copy or the top of frame 0's stack (see `machine_buf`), and recomputes
    /// [`Vm::entry`]; called whenever the code array may have moved. The stack is given up
    /// first when both cannot be avoided.
    fn place_machine(&mut self) {
        let op = std::mem::size_of::<op::Op>();
        let code = self.code.code.as_ptr() as usize;
        let fast = code..code + self.code.len * op;
        let top = self.stack.ptr() as usize + STACK_SIZE;
        let stack = top - 256..top;
        self.machine.place(&[fast.clone(), stack]);
        self.machine.place(&[fast]);
        // SAFETY: op 0 of the fast copy is the main program's first op (the code is never
        // empty: every program ends with a sentinel), and the counted copy follows the fast
        // one `len` ops later in the same allocation.
        self.entry = unsafe {
            Entry::of(
                self.code.code.as_ptr(),
                self.code.len * op,
                self.first_chunk,
            )
        };
    }

    /// The Vm after construction, with [`Vm::stack_reset`] computed.
    fn with_stack_reset(mut self) -> Vm {
        self.update_stack_reset();
        self
    }

    /// Finishes a run that was not clean: drives further chunks of the budget, closes what
    /// helpers left open, records what the next run must reset, and builds the outcome.
    #[inline(never)]
    fn finish_slow(&mut self, mut flow: Flow) -> Result<u64, RunError> {
        let budget = self.config.budget;
        // SAFETY: as in `execute`: the handler chain has returned, so no other reference to
        // the Machine is live.
        let m = unsafe { self.machine.get() };
        // Hand out the rest of the budget in chunks; each chain of handlers runs at most one.
        let mut remaining = budget;
        let mut chunk = self.first_chunk;
        let end = loop {
            match flow {
                Flow::Exit | Flow::ExitSlow => break End::Exit(budget - remaining + chunk - m.n),
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
        self.update_stack_reset();
        self.reset_all();
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
}

/// The registers every run sets before it starts (r1, r2, r10).
const ENTRY_SET: u16 = 1 << 1 | 1 << 2 | 1 << 10;

/// How the handler chains of one run ended.
enum End {
    /// `exit` after this many instructions.
    Exit(u64),
    /// The budget ran out.
    Budget,
    /// A fault or abort, after this many instructions.
    Stop(Option<Stop>, u64),
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
mod counting_tests;
#[cfg(test)]
mod fast_path_tests;
#[cfg(test)]
mod tests;
