//! Can this program run on the NIC? The kernel NFP driver's offload decision, reproduced:
//! the verifier walks the program with this backend's hooks (`hooks`), which look at each
//! instruction under each path's state, and the whole-program limits (maps, stack, packet
//! reach, program type) are checked around the walk.
//!
//! Why collect instead of stopping at the first problem, as the kernel does: a developer
//! porting a program to the NIC wants the whole list in one go, and a corpus survey wants
//! to know *all* the walls a program hits. So the hooks never veto; they record a
//! [`Reason`] per instruction and category and let the walk go on.
//!
//! Submodules, one concern each: [`category`] (stable names), `opcodes` (the JIT's
//! instruction table), `hooks` (per-instruction, per-path checks: pointer kinds, context,
//! stores, atomics, multiply/divide ranges, exit values), `helpers` (helper calls and their
//! arguments), `maps` (map definitions and how the program uses map value words), `stack`
//! (the firmware's stack frames along call chains).

pub mod category;
mod helpers;
mod hooks;
mod maps;
mod opcodes;
mod stack;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_memory;

use std::collections::HashSet;

use verifier::{Rejected, Verified, VerifyOptions};
use vm_core::{ProgType, Program};

use crate::lower::recorder::{OperandFacts, Recorder};
use crate::{NicLimits, Reason};

/// The outcome of [`check`]: the verifier's verdict and every reason the NIC cannot run the
/// program. Offloadable iff [`Feasibility::offloadable`].
#[derive(Debug, Clone)]
pub struct Feasibility {
    /// The verifier accepted the program (with the offload hooks attached).
    pub verified: Option<Verified>,
    /// The verifier refused it (this is also a reason, category [`category::VERIFIER`]).
    pub rejected: Option<Rejected>,
    /// Every reason found, program-wide ones first, then by instruction.
    pub reasons: Vec<Reason>,
    /// What the lowering needs from the same walk (pointer bases, branch outcomes), so that
    /// compiling verifies once.
    pub(crate) operand_facts: Vec<OperandFacts>,
}

impl Feasibility {
    /// Whether the program can be offloaded: verified, and no reason against it.
    pub fn offloadable(&self) -> bool {
        self.verified.is_some() && self.reasons.is_empty()
    }

    /// The distinct categories of the reasons, in first-appearance order.
    pub fn categories(&self) -> Vec<&'static str> {
        let mut seen = HashSet::new();
        self.reasons
            .iter()
            .map(|r| r.category)
            .filter(|c| seen.insert(*c))
            .collect()
    }
}

/// Reasons found so far, at most one per instruction and category (the walk sees an
/// instruction once per path; one report per place is what a reader wants).
#[derive(Debug, Default)]
pub(crate) struct Found {
    reasons: Vec<Reason>,
    seen: HashSet<(usize, &'static str)>,
}

impl Found {
    /// Records a reason at `pc` unless one of this category is already there; the message
    /// is only built when it is new.
    pub(crate) fn at(
        &mut self,
        pc: usize,
        category: &'static str,
        message: impl FnOnce() -> String,
    ) {
        if self.seen.insert((pc, category)) {
            self.reasons.push(Reason::at(pc, category, message()));
        }
    }

    /// Records a whole-program reason.
    pub(crate) fn program(&mut self, category: &'static str, message: impl Into<String>) {
        self.reasons.push(Reason::program(category, message));
    }
}

/// Decides whether `program` can be offloaded to a NIC with `nic`'s firmware, collecting
/// every reason it cannot. Never panics; a program the verifier refuses gets that refusal as
/// one reason (plus whatever the hooks saw before it and the state-free checks).
pub fn check(program: &Program, nic: &NicLimits) -> Feasibility {
    let _span = tracing::debug_span!(
        "feasibility",
        program = %program.name,
        insns = program.insns.len(),
        nic = nic.name
    )
    .entered();
    let mut found = Found::default();
    if !matches!(program.prog_type, ProgType::Xdp | ProgType::SchedCls) {
        found.program(
            category::PROG_TYPE,
            format!(
                "program type {} cannot be offloaded: only xdp and tc (sched_cls) programs can be bound to a device",
                program.prog_type.name()
            ),
        );
    }
    maps::check_definitions(program, nic, &mut found);

    let mut hooks = hooks::NfpHooks::new(program, nic);
    // Level 0: the hooks make the walk slow enough; a refusal is re-run with a log below.
    let quiet = VerifyOptions {
        log_level: 0,
        ..VerifyOptions::default()
    };
    // The lowering's recorder rides on the same walk, so a compile verifies only once.
    let mut recorder = Recorder::new(program.insns.len(), Some(&mut hooks));
    let result = verifier::verify_with_hooks(program, &quiet, &mut recorder);
    let operand_facts = recorder.facts;
    let walked = hooks.finish();
    found.reasons.extend(walked.found.reasons);

    let (verified, rejected) = match result {
        Ok(v) => {
            let usage = stack::nfp_stack_usage(&program.insns, &v.subprog_stack_depths);
            if usage > nic.stack_bytes {
                found.program(
                    category::STACK_SIZE,
                    format!(
                        "[nfp] stack too large: program {usage}B > FW stack {}B",
                        nic.stack_bytes
                    ),
                );
            }
            (Some(v), None)
        }
        Err(quiet_rejection) => {
            // Instructions the walk never reached still get the state-free table check.
            let mut late = Found::default();
            for (pc, insn) in program.insns.iter().enumerate() {
                if walked.hooked.get(pc).copied().unwrap_or(false) {
                    continue;
                }
                if let Some((c, m)) = opcodes::unsupported(insn) {
                    late.at(pc, c, || m);
                } else if let vm_core::isa::Insn::Call(vm_core::isa::CallTarget::Helper(id)) = insn
                    && let Some((c, m)) = helpers::id_reason(*id, nic)
                {
                    late.at(pc, c, || m);
                }
            }
            found.reasons.extend(late.reasons);
            let rejection = with_log(program, quiet_rejection);
            found.reasons.push(Reason::at(
                rejection.error.pc,
                category::VERIFIER,
                rejection.error.message.clone(),
            ));
            (None, Some(rejection))
        }
    };
    if let Some((end, pc)) = walked.packet_reach
        && end > u64::from(nic.ctm_packet_bytes)
    {
        found.reasons.push(Reason::at(
            pc,
            category::PACKET_OFFSET,
            format!(
                "BPF offload not supported with potential packet access beyond HW packet split boundary: up to byte {end} > {} B in CTM",
                nic.ctm_packet_bytes
            ),
        ));
    }
    found.reasons.sort_by_key(|r| r.pc.map_or(0, |pc| pc + 1));
    tracing::debug!(reasons = found.reasons.len(), "feasibility decided");
    Feasibility {
        verified,
        rejected,
        reasons: found.reasons,
        operand_facts,
    }
}

/// The refusal with the verifier's level-1 log (the failing path), re-running the plain
/// verifier; the hooks never veto, so the walk and the error are the same.
fn with_log(program: &Program, quiet: Rejected) -> Rejected {
    match verifier::verify(program, &VerifyOptions::default()) {
        Err(r) if r.error == quiet.error => r,
        _ => quiet,
    }
}
