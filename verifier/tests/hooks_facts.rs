//! The offload hooks and per-instruction facts: what a backend sees during and after
//! verification.

use verifier::{Errno, InsnFacts, OffloadHooks, PtrKind, VerifyOptions, verify, verify_with_hooks};
use vm_core::isa::{Insn, Size};
use vm_core::{ProgType, Program};

fn program(asm: &str, t: ProgType) -> Program {
    let raw = vm_core::asm::assemble(asm).unwrap_or_else(|e| panic!("{e}"));
    Program::from_raw("t", t, &raw).unwrap_or_else(|e| panic!("{e}"))
}

/// A backend that cannot do 8-byte packet loads and counts what it saw.
#[derive(Default)]
struct NoWidePacketLoads {
    seen: usize,
    finalized: bool,
}

impl OffloadHooks for NoWidePacketLoads {
    fn insn_hook(
        &mut self,
        _pc: usize,
        insn: &Insn,
        state: &verifier::state::VerifierState,
    ) -> Result<(), String> {
        self.seen += 1;
        if let Insn::Load {
            size: Size::DW,
            src,
            ..
        } = *insn
            && state.reg(src).ty.is_pkt()
        {
            return Err("8-byte packet loads are not supported by this NIC".to_string());
        }
        Ok(())
    }

    fn finalize(&mut self, facts: &[InsnFacts]) -> Result<(), (usize, String)> {
        self.finalized = true;
        assert!(facts.iter().any(|f| f.reachable));
        Ok(())
    }
}

const PKT: &str = "ldxw r2, [r1+0]\nldxw r3, [r1+4]\nmov r4, r2\nadd r4, 16\njgt r4, r3, out\n";

#[test]
fn a_backend_can_veto_an_instruction() {
    let p = program(
        &format!("{PKT}ldxdw r0, [r2+0]\nexit\nout:\nmov r0, 0\nexit"),
        ProgType::Xdp,
    );
    let mut hooks = NoWidePacketLoads::default();
    let r = verify_with_hooks(&p, &VerifyOptions::default(), &mut hooks).err();
    let e = r.map(|r| r.error);
    assert_eq!(e.as_ref().map(|e| e.errno), Some(Errno::EOPNOTSUPP));
    assert_eq!(e.map(|e| e.pc), Some(5));
    assert!(!hooks.finalized);

    let p = program(
        &format!("{PKT}ldxw r0, [r2+0]\nexit\nout:\nmov r0, 0\nexit"),
        ProgType::Xdp,
    );
    let mut hooks = NoWidePacketLoads::default();
    assert!(verify_with_hooks(&p, &VerifyOptions::default(), &mut hooks).is_ok());
    assert!(hooks.finalized);
    assert!(hooks.seen >= 8);
}

#[test]
fn facts_describe_each_instruction() {
    let p = program(
        &format!(
            "{PKT}ldxb r5, [r2+0]\nand r5, 7\nstxb [r10-1], r5\nldxw r0, [r1+12]\nexit\nout:\nmov r0, 0\nexit"
        ),
        ProgType::Xdp,
    );
    let v = verify(&p, &VerifyOptions::default()).unwrap_or_else(|r| panic!("{}", r.log));
    assert_eq!(v.facts[0].mem, Some(PtrKind::Ctx));
    assert_eq!(v.facts[5].mem, Some(PtrKind::Packet));
    assert_eq!(v.facts[7].mem, Some(PtrKind::Stack));
    let and = v.facts[6].dst.unwrap_or_default();
    assert_eq!((and.umin, and.umax), (0, 7));
    assert!(v.facts.iter().all(|f| f.reachable));
    assert_eq!(v.stack_depth, 1);
    assert!(v.log.starts_with("processed "));
}

#[test]
fn dead_branches_are_unreachable_facts() {
    let p = program("mov r0, 1\njeq r0, 1, +1\nmov r0, 2\nexit", ProgType::Xdp);
    let v = verify(&p, &VerifyOptions::default()).unwrap_or_else(|r| panic!("{}", r.log));
    assert!(!v.facts[2].reachable, "the branch is always taken");
    assert!(v.facts[3].reachable);
}
