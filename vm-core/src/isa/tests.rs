#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

fn raw(words: &[u64]) -> Vec<RawInsn> {
    words.iter().map(|w| RawInsn::from_u64(*w)).collect()
}

#[test]
fn lddw_decodes_to_two_slots() {
    let p = decode_program(&raw(&[0x5566778800000018, 0x1122334400000000, 0x95])).unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(
        p[0],
        Insn::LdImm64 {
            dst: 0,
            value: LdImm64::Imm(0x1122334455667788)
        }
    );
    assert_eq!(p[1], Insn::LdImm64Tail);
    assert_eq!(p[2], Insn::Exit);
}

#[test]
fn lddw_in_last_slot_is_rejected() {
    let e = decode_program(&raw(&[0x95, 0x18])).unwrap_err();
    assert_eq!(e.pc, 1);
    assert_eq!(e.kind, DecodeErrorKind::LddwMissingSecondSlot);
}

#[test]
fn jump_into_lddw_is_rejected() {
    // ja +1 lands on the second slot of the lddw at 1.
    let e = decode_program(&raw(&[0x0001_0005, 0x18, 0, 0x95])).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::JumpIntoLddw { to: 2 });
}

#[test]
fn jump_out_of_range_is_rejected() {
    let e = decode_program(&raw(&[0x0005_0005, 0x95])).unwrap_err();
    assert!(matches!(
        e.kind,
        DecodeErrorKind::JumpOutOfRange { to: 6, .. }
    ));
}

#[test]
fn empty_program_is_rejected() {
    assert_eq!(
        decode_program(&[]).unwrap_err().kind,
        DecodeErrorKind::Empty
    );
}

#[test]
fn sdiv_and_movsx_decode() {
    // sdiv64 r1, 3 : 0x37 off=1
    let p = decode_program(&raw(&[0x0000_0003_0001_0137, 0x95])).unwrap();
    assert!(matches!(
        p[0],
        Insn::Alu {
            op: AluOp::SDiv,
            width: Width::W64,
            dst: 1,
            src: Operand::Imm(3)
        }
    ));
    // movsx64 r1, (s8)r2 : 0xbf off=8
    let p = decode_program(&raw(&[0x0000_0000_0008_21bf, 0x95])).unwrap();
    assert!(matches!(
        p[0],
        Insn::Alu {
            op: AluOp::MovSx(8),
            dst: 1,
            src: Operand::Reg(2),
            ..
        }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// Whatever the bytes, decoding never panics, and what decodes re-encodes to the same bytes.
    #[test]
    fn decode_encode_round_trip(words in proptest::collection::vec(any::<u64>(), 1..6)) {
        let slots = raw(&words);
        if let Ok(insns) = decode_program(&slots) {
            prop_assert_eq!(encode_program(&insns), slots);
        }
    }

    /// Same, biased towards valid opcodes so that most cases decode.
    #[test]
    fn valid_opcodes_round_trip(code in any::<u8>(), dst in 0u8..11, src in 0u8..11, off in prop_oneof![Just(0i16), Just(1i16), Just(8), Just(16), Just(32), any::<i16>()], imm in prop_oneof![Just(0i32), Just(16), Just(32), Just(64), Just(1), Just(0xe1), Just(0xf1), any::<i32>()]) {
        let slots = [RawInsn::new(code, dst, src, off, imm), RawInsn::new(0, 0, 0, 0, 0), RawInsn::new(0x95, 0, 0, 0, 0)];
        for n in 1..=3 {
            if let Ok(insns) = decode_program(&slots[..n]) {
                prop_assert_eq!(encode_program(&insns), slots[..n].to_vec());
            }
        }
    }
}
