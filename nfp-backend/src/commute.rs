//! Whether the hardware threads running a program can observe each other.
//!
//! Why: a simulator interleaves the threads of a microengine at their memory commands, in
//! model-time order, because a thread's map accesses may see (or overwrite) another's. When
//! no thread can observe another — its only effects on shared state are increments that
//! commute, and it reads nothing another thread writes — every interleaving gives the same
//! verdicts, packets, map contents and per-thread cycles, so a simulator may run each packet
//! to its end in one go and replay its timing afterwards (nic-sim's segment replay), which is
//! much cheaper than handing control back at every command.
//!
//! What the NFP lowering shares between threads: the map tables and values in EMEM (packets
//! are per-thread CTM buffers, stacks per-thread LMEM areas, the random generator is per
//! thread). So a program commutes when, on every reachable path:
//! - it calls no helper that changes a map or produces ordered output (only lookups, the
//!   random number, and the adjust helpers on its own packet);
//! - it never loads or stores a map value (a load could see another thread's increment);
//! - its only atomics on map values are non-fetching adds (integer additions commute; mixing
//!   in `or`/`and`/`xor` would not, and a fetch reads the interleaving).
//!
//! Anything the verifier could not pin to one memory kind counts as shared.

use verifier::InsnFacts;
use verifier::facts::PtrKind;
use vm_core::Program;
use vm_core::isa::{AtomicOp, CallTarget, Insn};

/// Helpers whose effects stay with the calling thread or only read maps: map lookup,
/// `get_prandom_u32` (a per-thread generator), `xdp_adjust_head`, `xdp_adjust_tail`.
const THREAD_LOCAL_HELPERS: [i32; 4] = [1, 7, 44, 65];

/// Whether no interleaving of threads running `program` is observable (see the module doc).
/// `facts` are the verifier's, one per instruction slot.
pub fn threads_commute(program: &Program, facts: &[InsnFacts]) -> bool {
    program.insns.iter().enumerate().all(|(pc, insn)| {
        let Some(f) = facts.get(pc) else {
            return false;
        };
        if !f.reachable {
            return true;
        }
        let private = matches!(f.mem, Some(PtrKind::Stack | PtrKind::Packet | PtrKind::Ctx));
        match *insn {
            Insn::Call(CallTarget::Helper(id)) => THREAD_LOCAL_HELPERS.contains(&id),
            Insn::Call(CallTarget::Local(_)) => true,
            Insn::Call(_) | Insn::CallX { .. } => false,
            Insn::Load { .. } | Insn::Store { .. } => private,
            Insn::Atomic { op, fetch, .. } => {
                private || (f.mem == Some(PtrKind::MapValue) && op == AtomicOp::Add && !fetch)
            }
            _ => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use verifier::{VerifyOptions, verify};
    use vm_core::isa;
    use vm_core::{MapDef, MapType, ProgType};

    fn commutes(src: &str) -> bool {
        let raw = vm_core::asm::assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
        let program = Program {
            name: "t".into(),
            section: None,
            prog_type: ProgType::Xdp,
            insns: isa::decode_program(&raw).unwrap_or_else(|e| panic!("{e}")),
            maps: vec![MapDef {
                name: "m".into(),
                map_type: MapType::Array,
                key_size: 4,
                value_size: 8,
                max_entries: 4,
                flags: 0,
                initial_value: None,
            }],
        };
        let v = verify(&program, &VerifyOptions::default())
            .unwrap_or_else(|r| panic!("rejected: {}", r.log));
        threads_commute(&program, &v.facts)
    }

    const LOOKUP: &str = "mov %r6, %r1\nstw [%r10-4], 0\nlddw %r1, map_fd 0\nmov %r2, %r10\n\
                          add %r2, -4\ncall 1\njeq %r0, 0, out\nmov %r1, 1\n";

    #[test]
    fn counters_commute_and_readers_do_not() {
        assert!(!commutes(&format!(
            "{LOOKUP}stxdw [%r0+0], %r1\nout:\nmov %r0, 2\nexit"
        )));
        assert!(commutes(&format!(
            "{LOOKUP}lock add [%r0+0], %r1\nout:\nmov %r0, 2\nexit"
        )));
        assert!(!commutes(&format!(
            "{LOOKUP}ldxdw %r1, [%r0+0]\nout:\nmov %r0, 2\nexit"
        )));
        assert!(!commutes(&format!(
            "{LOOKUP}lock fetch add [%r0+0], %r1\nout:\nmov %r0, 2\nexit"
        )));
        assert!(!commutes(&format!(
            "{LOOKUP}lock or [%r0+0], %r1\nout:\nmov %r0, 2\nexit"
        )));
        // A map update changes what another thread's lookup finds.
        assert!(!commutes(&format!(
            "{LOOKUP}out:\nlddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\nmov %r3, %r10\n\
             add %r3, -16\nstdw [%r10-16], 0\nmov %r4, 0\ncall 2\nmov %r0, 2\nexit"
        )));
        // Packet and stack accesses are the thread's own.
        assert!(commutes(
            "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 14\n\
             jgt %r4, %r3, out\nldxb %r0, [%r2+12]\nstxdw [%r10-8], %r0\nout:\nmov %r0, 2\nexit"
        ));
    }
}

#[cfg(test)]
mod demo_tests {
    #[test]
    fn the_demo_filter_commutes() {
        let c = crate::compile::compile(&vm_core::demo::udp_filter(), &crate::NicLimits::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.threads_commute);
    }
}
