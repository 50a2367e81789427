//! The offload compiler's entry point: feasibility (verifier + NFP hooks), then the lowering
//! with the verifier's per-instruction facts, the instruction-store limit and a static cycle
//! estimate.

use std::ops::Range;

use verifier::{Verified, VerifyOptions, verify_with_hooks};
use vm_core::Program;
use vm_core::isa::{CallTarget, Insn};

use crate::cost::Latencies;
use crate::lower::recorder::{OperandFacts, Recorder};
use crate::lower::{self, INSN_LIMIT, LowerOptions, Lowerer, OptCounts, PREFETCH_TAIL};
use crate::target::MeInsn;
use crate::{NicLimits, Reason};

/// A translated program.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Microengine code, the 8-slot prefetch tail included.
    pub code: Vec<MeInsn>,
    /// Per eBPF slot: the range of `code` it became (empty for dead code, `lddw` tails and
    /// instructions folded into a neighbour).
    pub map: Vec<Range<usize>>,
    /// eBPF instruction slots.
    pub ebpf_insns: usize,
    /// NFP instructions (`code.len()`).
    pub nfp_insns: usize,
    /// 32-bit definitions whose zero extension was elided (verifier: upper half never read).
    pub zext_elided: u32,
    /// 32-bit definitions that kept it.
    pub zext_kept: u32,
    /// Static (min, max) cycles over entry-to-exit paths (see `lower::cycles`).
    pub estimated_cycles: (u64, u64),
    /// How often each optimisation fired.
    pub optimisations: OptCounts,
    /// The verifier's log (summary line).
    pub verifier_log: String,
    /// No interleaving of hardware threads running it is observable
    /// ([`crate::commute::threads_commute`]).
    pub threads_commute: bool,
}

/// A program the NIC cannot run, with every reason found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("program cannot be offloaded: {}", .reasons.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; "))]
pub struct NotOffloadable {
    /// The reasons, program-wide first, then by instruction.
    pub reasons: Vec<Reason>,
    /// The verifier's log (the rejection with its path when the verifier refused).
    pub verifier_log: String,
}

/// Compiles `program` for `nic` with every optimisation.
pub fn compile(program: &Program, nic: &NicLimits) -> Result<Compiled, NotOffloadable> {
    compile_with(program, nic, &LowerOptions::default())
}

/// Compiles with a chosen set of optimisations (for measuring each one).
pub fn compile_with(
    program: &Program,
    nic: &NicLimits,
    opts: &LowerOptions,
) -> Result<Compiled, NotOffloadable> {
    let _span = tracing::debug_span!("compile", program = %program.name, nic = nic.name).entered();
    let feas = crate::feasibility::check(program, nic);
    match feas.verified {
        Some(verified) if feas.reasons.is_empty() => {
            lower_with_facts(program, nic, opts, verified, &feas.operand_facts)
        }
        verified => {
            let verifier_log = match (&verified, &feas.rejected) {
                (_, Some(r)) => r.log.clone(),
                (Some(v), None) => v.log.clone(),
                _ => String::new(),
            };
            Err(NotOffloadable {
                reasons: feas.reasons,
                verifier_log,
            })
        }
    }
}

/// Lowering without the feasibility hooks (the verifier runs once, for the facts); exposed
/// for tests of the lowering itself. [`compile_with`] reuses feasibility's walk instead.
pub fn lower_verified(
    program: &Program,
    nic: &NicLimits,
    opts: &LowerOptions,
) -> Result<Compiled, NotOffloadable> {
    let mut rec = Recorder::new(program.insns.len(), None);
    let quiet = VerifyOptions {
        log_level: 0,
        ..VerifyOptions::default()
    };
    let verified = match verify_with_hooks(program, &quiet, &mut rec) {
        Ok(v) => v,
        Err(r) => {
            return Err(NotOffloadable {
                reasons: vec![Reason::at(r.error.pc, "verifier", r.error.message.clone())],
                verifier_log: r.log,
            });
        }
    };
    lower_with_facts(program, nic, opts, verified, &rec.facts)
}

/// The lowering proper, from one verifier walk's facts.
fn lower_with_facts(
    program: &Program,
    nic: &NicLimits,
    opts: &LowerOptions,
    verified: Verified,
    operand_facts: &[OperandFacts],
) -> Result<Compiled, NotOffloadable> {
    let mut reasons = Vec::new();
    let chain = call_chain_bytes(program, &verified.subprog_stack_depths);
    if chain > nic.stack_bytes {
        reasons.push(Reason::program(
            "stack_size",
            format!(
                "[nfp] stack too large: program {chain}B > FW stack {}B",
                nic.stack_bytes
            ),
        ));
    }
    let lw = Lowerer::new(
        program,
        &verified.facts,
        operand_facts,
        &verified.subprog_stack_depths,
        *opts,
    );
    let (out, lowering_reasons) = lw.run();
    reasons.extend(lowering_reasons);
    if out.code.len() > nic.max_insns {
        reasons.push(Reason::program(
            INSN_LIMIT,
            format!(
                "instruction limit reached ({} NFP instructions)",
                nic.max_insns
            ),
        ));
    }
    if !reasons.is_empty() {
        return Err(NotOffloadable {
            reasons,
            verifier_log: verified.log,
        });
    }
    let estimated_cycles =
        lower::cycles::estimate(&out.code, &out.return_points, &Latencies::NFP4000);
    tracing::debug!(
        ebpf = program.insns.len(),
        nfp = out.code.len(),
        tail = PREFETCH_TAIL,
        "lowered"
    );
    Ok(Compiled {
        nfp_insns: out.code.len(),
        ebpf_insns: program.insns.len(),
        code: out.code,
        map: out.map,
        zext_elided: out.zext_elided,
        zext_kept: out.zext_kept,
        estimated_cycles,
        optimisations: out.opts,
        threads_commute: crate::commute::threads_commute(program, &verified.facts),
        verifier_log: verified.log,
    })
}

/// Bytes the deepest bpf-to-bpf call chain takes with this lowering's frames (each caller's
/// `lower::call` frame, then the last callee's stack depth).
fn call_chain_bytes(program: &Program, depths: &[u32]) -> u32 {
    let n = program.insns.len();
    let mut starts = vec![0usize];
    for (pc, insn) in program.insns.iter().enumerate() {
        if let Insn::Call(CallTarget::Local(_)) = insn
            && let Some(t) = insn.call_target(pc).and_then(|t| usize::try_from(t).ok())
            && t < n
        {
            starts.push(t);
        }
    }
    starts.sort_unstable();
    starts.dedup();
    let fn_of = |pc: usize| starts.iter().rposition(|&s| s <= pc).unwrap_or(0);
    fn walk(
        f: usize,
        depth_left: usize,
        program: &Program,
        starts: &[usize],
        depths: &[u32],
        fn_of: &dyn Fn(usize) -> usize,
    ) -> u32 {
        let own = depths.get(f).copied().unwrap_or(0);
        if depth_left == 0 {
            return own;
        }
        let end = starts.get(f + 1).copied().unwrap_or(program.insns.len());
        let mut best = own;
        for pc in starts[f]..end {
            if let Some(insn @ Insn::Call(CallTarget::Local(_))) = program.insns.get(pc)
                && let Some(t) = insn.call_target(pc).and_then(|t| usize::try_from(t).ok())
            {
                let callee = fn_of(t);
                let below = walk(callee, depth_left - 1, program, starts, depths, fn_of);
                best = best.max(lower::call_frame_bytes(own) + below);
            }
        }
        best
    }
    walk(0, 8, program, &starts, depths, &fn_of)
}
