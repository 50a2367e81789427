//! Unit tests of `compile`: op indices, targets, stack ops, folding, jump addresses.

use super::*;
use crate::RawInsn;
use crate::isa::AluOp;

struct NoMaps;
impl MapInfo for NoMaps {
    fn count(&self) -> usize {
        0
    }
    fn value_base(&self, _: usize) -> Result<(usize, u32), String> {
        Err("no maps".into())
    }
}

fn compile(raw: &[RawInsn]) -> Result<Compiled, LoadError> {
    let prog = Program::from_raw("t", ProgType::Mem, raw)?;
    let mut code = Compiled::new(false);
    code.add(&prog, &NoMaps)?;
    Ok(code)
}

#[test]
fn lddw_takes_one_op_and_targets_are_remapped() {
    // lddw r0, 1; ja +0 (to exit); exit
    let raw = [
        RawInsn::new(0x18, 0, 0, 0, 1),
        RawInsn::new(0, 0, 0, 0, 0),
        RawInsn::new(0x05, 0, 0, 0, 0),
        RawInsn::new(0x95, 0, 0, 0, 0),
    ];
    let code = compile(&raw).unwrap();
    assert_eq!(code.fast().len(), 4); // lddw, ja, exit, sentinel
    assert_eq!(code.pcs, vec![0, 2, 3, 4]);
    assert_eq!(code.fast()[1].code, Code::Ja);
    // The counted copy keeps the relative target; the fast copy the target's address.
    assert_eq!(code.code[code.len + 1].rel(), 1);
    assert_eq!(code.fast()[1].fast_target(), &code.fast()[2] as *const Op);
}

/// Jump addresses follow the op array when a second program makes it grow (and move).
#[test]
fn jump_addresses_follow_the_op_array() {
    // jlt r1, 5, +1; mov r0, 1; exit
    let raw = [
        RawInsn::new(0xa5, 1, 0, 1, 5),
        RawInsn::new(0xb7, 0, 0, 0, 1),
        RawInsn::new(0x95, 0, 0, 0, 0),
    ];
    let prog = Program::from_raw("t", ProgType::Mem, &raw).unwrap();
    let mut code = Compiled::new(true);
    code.add(&prog, &NoMaps).unwrap();
    for _ in 0..40 {
        code.add(&prog, &NoMaps).unwrap();
    }
    for p in &code.progs {
        let jump = &code.code[p.start];
        assert_eq!(jump.fast_target(), &code.code[p.start + 2] as *const Op);
        assert_eq!(jump.jimm64::<false>(), 5);
        let counted = &code.code[code.len + p.start];
        assert_eq!((counted.rel(), counted.jimm64::<true>()), (2, 5));
    }
}

#[test]
fn r10_relative_accesses_inside_the_frame_become_stack_ops() {
    let raw = [
        RawInsn::new(0x7b, 10, 1, -8, 0),   // stxdw [r10-8], r1
        RawInsn::new(0x7b, 10, 1, 0, 0),    // stxdw [r10+0], r1 (outside)
        RawInsn::new(0x61, 0, 10, -516, 0), // ldxw r0, [r10-516] (outside)
        RawInsn::new(0x95, 0, 0, 0, 0),
    ];
    let code = compile(&raw).unwrap();
    assert_eq!(code.fast()[0].code, Code::StackStxDW);
    assert_eq!(code.fast()[0].a, 504);
    assert_eq!(code.fast()[1].code, Code::StxDW);
    assert_eq!(code.fast()[2].code, Code::LdxW);
}

#[test]
fn constant_divisors_are_folded() {
    let ops = |op, w, i| lower_alu(op, w, 1, Operand::Imm(i)).code;
    assert_eq!(ops(AluOp::Div, Width::W64, 0), Code::Mov64K);
    assert_eq!(ops(AluOp::Mod, Width::W64, 0), Code::Nop);
    assert_eq!(ops(AluOp::Mod, Width::W32, 0), Code::Trunc32);
    assert_eq!(ops(AluOp::SDiv, Width::W32, -1), Code::Neg32);
    assert_eq!(ops(AluOp::SMod, Width::W64, -1), Code::Mov64K);
    assert_eq!(ops(AluOp::Div, Width::W64, 3), Code::Div64K);
}

#[test]
fn writes_to_r10_compile_to_faults() {
    let raw = [
        RawInsn::new(0xb7, 10, 0, 0, 1),
        RawInsn::new(0x95, 0, 0, 0, 0),
    ];
    let code = compile(&raw).unwrap();
    assert_eq!(code.fast()[0].code, Code::Fault);
    assert_eq!(code.faults[0], FaultKind::WriteFramePointer);
}

#[test]
fn unknown_helpers_fail_at_load() {
    let raw = [
        RawInsn::new(0x85, 0, 0, 0, 100_000),
        RawInsn::new(0x95, 0, 0, 0, 0),
    ];
    assert!(matches!(
        compile(&raw),
        Err(LoadError::UnknownHelper { pc: 0, id: 100_000 })
    ));
}
