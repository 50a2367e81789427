//! A static verifier for eBPF programs in the spirit of the Linux kernel's (issue #4).
//!
//! [`verify`] runs the kernel's passes in the kernel's order; each is a module:
//!
//! 1. decode ([`code`]): every slot decoded; unknown opcodes and malformed `lddw` refused up
//!    front, other bad encodings kept to be refused when reached;
//! 2. subprograms ([`cfg::find_subprogs`]): bpf-to-bpf functions found from call targets;
//!    jumps stay inside their function, every function ends in `exit` or a jump;
//! 3. map references ([`code::check_map_refs`]): every `lddw` map exists;
//! 4. control flow ([`cfg::check_cfg`]): no unreachable instruction, no jump into an `lddw`,
//!    back-edges only when loops are allowed (privileged); prune points marked;
//! 5. liveness ([`liveness`]): registers live before each instruction, for pruning;
//! 6. the path walk ([`check`]): abstract interpretation of every path over
//!    [`state::VerifierState`] (registers [`reg`], stack [`stack`], scalar domain [`bounds`] /
//!    [`tnum`]), context rules [`ctx`], socket field rules [`sock`], helper prototypes
//!    [`helpers`], read-only map contents [`map_access`], pruning and loop detection
//!    [`prune`] (state equivalence in `equiv`, precision tracking in `precision`, dynamic
//!    stack-slot liveness), offload hooks [`offload`], zero-extension marks [`zext`];
//! 7. stack depth: the deepest call chain's combined (32-byte rounded) stack ≤ 512 bytes;
//! 8. the offload backend's final veto.
//!
//! The result is a [`Verified`] program with per-instruction [`facts::InsnFacts`], or a
//! [`Rejected`] one with the error (instruction, errno class, kernel-worded message). Both
//! carry the log in the kernel's format ([`log`]).
//!
//! Profiles: privileged (root on Linux 6.18) is the default; [`VerifyOptions::privileged`]
//! `= false` applies the unprivileged restrictions this crate models (socket filters only,
//! no bpf-to-bpf calls, no loops, no uninitialised stack reads, no pointer leaks or
//! comparisons) — not the Spectre sanitation or the reduced helper set.
//!
//! Not modelled (refused with a message saying so, never accepted blindly): anything that
//! needs kernel BTF (kfuncs, kptrs, spin locks, dynptrs, iterators, global functions),
//! helpers taking callbacks (`bpf_loop`, `bpf_for_each_map_elem`, timers), `may_goto`,
//! program types other than socket filter, tc and XDP.
//!
//! Agreement with Linux 6.18 is measured by the integration tests: the selftests JSONL,
//! random programs and real ELF objects, each against the running kernel.

pub mod bounds;
pub mod cfg;
mod check;
pub mod code;
pub mod ctx;
mod equiv;
pub mod error;
pub mod facts;
pub mod helpers;
pub mod liveness;
pub mod log;
pub mod map_access;
pub mod offload;
mod precision;
pub mod prune;
pub mod reg;
pub mod sock;
pub mod stack;
mod stack_live;
pub mod state;
pub mod tnum;
pub mod zext;

use vm_core::isa::{Insn, RawInsn};
use vm_core::{MapDef, ProgType, Program};

pub use bounds::ScalarBounds;
pub use error::{Errno, VerifierError};
pub use facts::{InsnFacts, PtrKind};
pub use log::Stats;
pub use offload::OffloadHooks;
pub use tnum::Tnum;

use crate::cfg::Cfg;
use crate::code::Code;
use crate::error::VResult;
use crate::stack::MAX_BPF_STACK;
use crate::state::MAX_CALL_FRAMES;

/// How to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// 0: no log; 1: the failing path and the summary line; 2: every instruction.
    pub log_level: u32,
    /// Root (`CAP_BPF` + `CAP_PERFMON`): bounded loops, reads of uninitialised stack, pointer
    /// values treated as numbers where the kernel lets root do so.
    pub privileged: bool,
    /// `BPF_F_STRICT_ALIGNMENT`: check alignment of every access, not only stack ones.
    pub strict_alignment: bool,
    /// `BPF_F_TEST_STATE_FREQ`: store a checkpoint at every prune point.
    pub test_state_freq: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            log_level: 1,
            privileged: true,
            strict_alignment: false,
            test_state_freq: false,
        }
    }
}

/// An accepted program and what the verifier learnt about it.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The log (kernel format).
    pub log: String,
    /// Instructions processed over all paths.
    pub processed_insns: u64,
    /// Stack bytes the main program uses.
    pub stack_depth: u32,
    /// Stack bytes each subprogram uses (main program first).
    pub subprog_stack_depths: Vec<u32>,
    /// Instructions whose 32-bit result needs explicit zero-extension.
    pub zext: Vec<usize>,
    /// Per-slot facts.
    pub facts: Vec<InsnFacts>,
    /// Pruning statistics (the summary line).
    pub stats: Stats,
}

/// A refused program.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct Rejected {
    /// Why.
    pub error: VerifierError,
    /// The log (kernel format), ending with the error and the summary line.
    pub log: String,
    /// Instructions processed before the error.
    pub processed_insns: u64,
}

/// Verifies a decoded program.
pub fn verify(program: &Program, opts: &VerifyOptions) -> Result<Verified, Rejected> {
    let code = Code::from_insns(&program.insns);
    run(&code, None, program.prog_type, &program.maps, opts, None)
}

/// Verifies a decoded program, letting an offload backend veto instructions.
pub fn verify_with_hooks(
    program: &Program,
    opts: &VerifyOptions,
    hooks: &mut dyn OffloadHooks,
) -> Result<Verified, Rejected> {
    let code = Code::from_insns(&program.insns);
    run(
        &code,
        None,
        program.prog_type,
        &program.maps,
        opts,
        Some(hooks),
    )
}

/// Verifies raw instruction slots, including encodings that do not decode (refused with the
/// kernel's message at the kernel's point). Map references index `maps`.
pub fn verify_raw(
    raw: &[RawInsn],
    prog_type: ProgType,
    maps: &[MapDef],
    opts: &VerifyOptions,
    hooks: Option<&mut dyn OffloadHooks>,
) -> Result<Verified, Rejected> {
    let (code, early) = Code::from_raw(raw);
    run(&code, early, prog_type, maps, opts, hooks)
}

fn reject(error: VerifierError, mut log: log::Log, stats: Stats) -> Rejected {
    log.line(&error.message);
    log.line(&stats.summary());
    Rejected {
        error,
        log: log.into_string(),
        processed_insns: stats.insn_processed,
    }
}

fn run(
    code: &Code,
    early: Option<VerifierError>,
    prog_type: ProgType,
    maps: &[MapDef],
    opts: &VerifyOptions,
    hooks: Option<&mut dyn OffloadHooks>,
) -> Result<Verified, Rejected> {
    let _span =
        tracing::debug_span!("verify", insns = code.len(), prog_type = prog_type.name()).entered();
    let mut log = log::Log::new(opts.log_level);
    let cfg = match prepare(code, early, prog_type, maps, opts, &mut log) {
        Ok(c) => c,
        Err(e) => return Err(reject(e, log, Stats::default())),
    };
    let (live, live64) = liveness::live_sets(code);
    if log.verbose() {
        log_live_regs(code, &live, &mut log);
    }
    let input = WalkInput {
        code,
        cfg: &cfg,
        live: &live,
        live64: &live64,
        maps,
        prog_type,
    };
    if opts.log_level == 1 && hooks.is_none() {
        // Level 1 shows only the failing path, and nothing but the summary on success: walk
        // without formatting first (several times faster), and only walk again with the log
        // when there is a rejection to explain. The walk is deterministic.
        let quiet = VerifyOptions {
            log_level: 0,
            ..opts.clone()
        };
        return match walk(&input, &quiet, None, log::Log::new(0)) {
            Ok(mut v) => {
                v.log = format!("{}\n", v.stats.summary());
                Ok(v)
            }
            Err(_) => walk(&input, opts, None, log),
        };
    }
    walk(&input, opts, hooks, log)
}

/// What the walk needs besides its options.
struct WalkInput<'a> {
    code: &'a Code,
    cfg: &'a Cfg,
    live: &'a [liveness::RegMask],
    live64: &'a [liveness::RegMask],
    maps: &'a [MapDef],
    prog_type: ProgType,
}

/// Passes 6–8: the walk, the stack depth check, the backend's final veto.
fn walk(
    input: &WalkInput<'_>,
    opts: &VerifyOptions,
    hooks: Option<&mut dyn OffloadHooks>,
    log: log::Log,
) -> Result<Verified, Rejected> {
    // Re-binding shortens the trait object's lifetime to this call (a plain move would
    // tie the walker's borrows of the locals to the caller's lifetime).
    #[allow(clippy::needless_match)]
    let hooks: Option<&mut dyn OffloadHooks> = match hooks {
        Some(h) => Some(h),
        None => None,
    };
    let WalkInput {
        code,
        cfg,
        live,
        live64,
        maps,
        prog_type,
    } = *input;
    let mut walker = check::Walker::new(code, cfg, live, live64, maps, prog_type, opts, hooks);
    walker.log = log;
    let walked = walker.run();
    let mut stats = walker.stats;
    stats.total_states = walker.explored.total();
    stats.peak_states = walker.explored.peak;
    stats.max_states_per_insn = walker.explored.max_per_insn();
    let mut log = std::mem::take(&mut walker.log);
    if let Err(e) = walked {
        return Err(reject(e, log, stats));
    }
    if let Err(e) = check_max_stack_depth(code, cfg, &walker.stack_depth) {
        return Err(reject(e, log, stats));
    }
    let facts = std::mem::take(&mut walker.facts);
    if let Some(h) = walker.hooks.as_deref_mut()
        && let Err((pc, msg)) = h.finalize(&facts)
    {
        return Err(reject(
            VerifierError::new(pc, Errno::EOPNOTSUPP, msg),
            log,
            stats,
        ));
    }
    if !log.verbose() {
        log.truncate(0);
    }
    log.line(&stats.summary());
    Ok(Verified {
        log: log.into_string(),
        processed_insns: stats.insn_processed,
        stack_depth: walker.stack_depth.first().copied().unwrap_or(0),
        subprog_stack_depths: walker.stack_depth.clone(),
        zext: zext::zext_list(code, &facts),
        facts,
        stats,
    })
}

/// The "Live regs before insn" table Linux 6.18 prints at level 2.
fn log_live_regs(code: &Code, live: &[liveness::RegMask], log: &mut log::Log) {
    log.line("Live regs before insn:");
    for (pc, slot) in code.slots.iter().enumerate() {
        let code::Slot::Insn(insn) = slot else {
            continue;
        };
        if *insn == Insn::LdImm64Tail {
            continue;
        }
        let mask: String = (0..10u8)
            .map(|r| {
                if live[pc] & (1 << r) != 0 {
                    char::from(b'0' + r)
                } else {
                    '.'
                }
            })
            .collect();
        let text = log::insn_text(pc, code.opcodes[pc], insn);
        let text = text.split_once(": ").map_or(text.as_str(), |(_, t)| t);
        log.line(&format!("{pc:>7}: {mask} {text}"));
    }
}

/// Passes 1–5: everything before the walk.
fn prepare(
    code: &Code,
    early: Option<VerifierError>,
    prog_type: ProgType,
    maps: &[MapDef],
    opts: &VerifyOptions,
    log: &mut log::Log,
) -> VResult<Cfg> {
    if code.is_empty() {
        return Err(VerifierError::new(
            0,
            Errno::E2BIG,
            "program has no instructions",
        ));
    }
    if let ProgType::Other(n) = prog_type {
        return Err(VerifierError::einval(
            0,
            format!("program type {n} is not supported by this verifier"),
        ));
    }
    if !opts.privileged {
        // Without CAP_BPF/CAP_NET_ADMIN only socket filters load, and without CAP_BPF no
        // bpf-to-bpf calls.
        if prog_type != ProgType::SocketFilter {
            return Err(VerifierError::new(
                0,
                Errno::EPERM,
                format!("program type {} needs privileges", prog_type.name()),
            ));
        }
        if let Some(pc) = (0..code.len()).find(|&pc| cfg::callee(code, pc).is_some()) {
            return Err(VerifierError::new(
                pc,
                Errno::EPERM,
                "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN",
            ));
        }
    }
    let subprogs = cfg::find_subprogs(code)?;
    if log.verbose() {
        for (i, sp) in subprogs.iter().enumerate() {
            log.line(&format!("func#{i} @{}", sp.start));
        }
    }
    if let Some(e) = early {
        return Err(e);
    }
    code::check_map_refs(code, maps)?;
    cfg::check_cfg(code, subprogs, opts.privileged)
}

/// The kernel's `check_max_stack_depth`: along every static call chain (dead code
/// included), the 32-byte rounded stack of each frame adds up to at most 512 bytes.
fn check_max_stack_depth(code: &Code, cfg: &Cfg, depths: &[u32]) -> VResult<()> {
    fn round(d: u32) -> u32 {
        d.max(1).div_ceil(32) * 32
    }
    fn walk(
        code: &Code,
        cfg: &Cfg,
        depths: &[u32],
        idx: usize,
        frame: usize,
        depth: u32,
        call_pc: usize,
    ) -> VResult<()> {
        let depth = depth + round(depths.get(idx).copied().unwrap_or(0));
        if depth > MAX_BPF_STACK as u32 {
            return Err(VerifierError::eacces(
                call_pc,
                format!(
                    "combined stack size of {} calls is {depth}. Too large",
                    frame + 1
                ),
            ));
        }
        let sp = cfg.subprogs[idx];
        for pc in sp.start..sp.end {
            let Some(Insn::Call(vm_core::isa::CallTarget::Local(rel))) = code.insn(pc) else {
                continue;
            };
            let target = pc as i64 + 1 + i64::from(*rel);
            let Some(callee) = usize::try_from(target).ok().and_then(|t| cfg.subprog_at(t)) else {
                continue;
            };
            if frame + 1 >= MAX_CALL_FRAMES {
                return Err(VerifierError::new(
                    pc,
                    Errno::E2BIG,
                    format!("the call stack of {} frames is too deep !", frame + 1),
                ));
            }
            walk(code, cfg, depths, callee, frame + 1, depth, pc)?;
        }
        Ok(())
    }
    walk(code, cfg, depths, 0, 0, 0, 0)
}
