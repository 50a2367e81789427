//! One test per reason category that does not involve memory (those are in
//! `tests_memory`), plus programs that must be offloadable.

use vm_core::{MapDef, MapType, ProgType, Program};

use super::{Feasibility, category as cat, check};
use crate::NicLimits;

/// Assembles `asm` into a program of type `t` with `maps`.
pub(super) fn prog(asm: &str, t: ProgType, maps: Vec<MapDef>) -> Program {
    let raw = vm_core::asm::assemble(asm).unwrap_or_else(|e| panic!("{e}\n{asm}"));
    let mut p = Program::from_raw("t", t, &raw).unwrap_or_else(|e| panic!("{e}"));
    p.maps = maps;
    p
}

/// A map definition.
pub(super) fn map(map_type: MapType, key: u32, value: u32, entries: u32) -> MapDef {
    MapDef {
        name: "m".into(),
        map_type,
        key_size: key,
        value_size: value,
        max_entries: entries,
        flags: 0,
        initial_value: None,
    }
}

/// Checks with the default NIC.
pub(super) fn run(asm: &str, t: ProgType, maps: Vec<MapDef>) -> Feasibility {
    check(&prog(asm, t, maps), &NicLimits::default())
}

/// Asserts the program verified and that `category` is among the reasons; returns the
/// first message of that category.
#[track_caller]
pub(super) fn expect(f: &Feasibility, category: &str) -> String {
    assert!(
        f.rejected.is_none(),
        "verifier refused: {:?}\nreasons: {:#?}",
        f.rejected.as_ref().map(|r| r.error.to_string()),
        f.reasons
    );
    match f.reasons.iter().find(|r| r.category == category) {
        Some(r) => r.message.clone(),
        None => panic!("no {category} reason in {:#?}", f.reasons),
    }
}

/// Asserts the program is offloadable.
#[track_caller]
pub(super) fn offloadable(f: &Feasibility) {
    assert!(
        f.offloadable(),
        "not offloadable: {:?} {:#?}",
        f.rejected.as_ref().map(|r| r.error.to_string()),
        f.reasons
    );
}

/// Reads the first packet byte into r5 (r2 = data); jumps to `out` when too short.
pub(super) const PKT1: &str =
    "ldxw r2, [r1+0]\nldxw r3, [r1+4]\nmov r4, r2\nadd r4, 8\njgt r4, r3, out\nldxb r5, [r2+0]\n";
/// [`PKT1`] for tc (`__sk_buff` data / data_end).
pub(super) const PKT1_TC: &str =
    "ldxw r2, [r1+76]\nldxw r3, [r1+80]\nmov r4, r2\nadd r4, 8\njgt r4, r3, out\nldxb r5, [r2+0]\n";
/// The common tail: `out` returns XDP_PASS.
pub(super) const OUT: &str = "out:\nmov r0, 2\nexit\n";

#[test]
fn the_demo_is_offloadable() {
    let f = check(&vm_core::demo::udp_filter(), &NicLimits::default());
    offloadable(&f);
    assert!(f.verified.is_some());
}

#[test]
fn a_tc_program_returning_shot_is_offloadable() {
    offloadable(&run(
        &format!("{PKT1_TC}mov r0, 2\nexit\n{OUT}"),
        ProgType::SchedCls,
        vec![],
    ));
}

#[test]
fn a_refused_program_is_one_verifier_reason() {
    let f = run("mov r0, r5\nexit", ProgType::Xdp, vec![]);
    assert!(f.verified.is_none() && f.rejected.is_some());
    assert!(!f.offloadable());
    let v: Vec<_> = f
        .reasons
        .iter()
        .filter(|r| r.category == cat::VERIFIER)
        .collect();
    assert_eq!(v.len(), 1);
    assert!(v[0].message.contains("R5 !read_ok"), "{}", v[0].message);
    assert!(f.rejected.is_some_and(|r| !r.log.is_empty()));
}

#[test]
fn only_xdp_and_tc_programs_are_offloaded() {
    let f = run("mov r0, 0\nexit", ProgType::SocketFilter, vec![]);
    expect(&f, cat::PROG_TYPE);
    assert_eq!(f.reasons[0].pc, None);
}

#[test]
fn modulo_and_the_v4_instructions_are_not_in_the_table() {
    let f = run(
        &format!(
            "{PKT1}mov r6, r5\nmod r6, 3\nle16 r6\nmovsx864 r7, r5\nbswap16 r6\nldxsb r8, [r2+0]\nja32 +0\nmov r0, 2\nexit\n{OUT}"
        ),
        ProgType::Xdp,
        vec![],
    );
    let msgs: Vec<_> = f
        .reasons
        .iter()
        .filter(|r| r.category == cat::INSN_NOT_SUPPORTED)
        .map(|r| r.message.as_str())
        .collect();
    assert!(
        msgs.contains(&"[nfp] instruction 0x97 not supported"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"[nfp] instruction 0xd4 not supported"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"[nfp] instruction 0xd7 not supported"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"[nfp] instruction 0x91 not supported"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"[nfp] instruction 0xbf not supported"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"[nfp] instruction 0x06 not supported"),
        "{msgs:?}"
    );
    assert_eq!(msgs.len(), 6, "one per instruction: {:#?}", f.reasons);
}

#[test]
fn kfuncs_and_callx_are_refused_even_when_the_verifier_stops_first() {
    let f = run("call runtime 5\nmov r0, 2\nexit", ProgType::Xdp, vec![]);
    assert!(f.categories().contains(&cat::KFUNC), "{:#?}", f.reasons);
    let f = run(
        "mov r0, 2\nexit\nmov r0, r5\ncall r1\nexit",
        ProgType::Xdp,
        vec![],
    );
    // The verifier refuses early (unreachable code); the table check still runs.
    assert!(f.rejected.is_some());
    assert!(
        f.reasons
            .iter()
            .any(|r| r.category == cat::INSN_NOT_SUPPORTED
                && r.message == "[nfp] instruction 0x8d not supported")
    );
}

#[test]
fn global_data_addresses_are_not_supported() {
    let f = run(
        "lddw r1, map_value 0 +0\nldxw r0, [r1+0]\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![map(MapType::Array, 4, 8, 1)],
    );
    expect(&f, cat::LD_IMM64_PSEUDO);
}

#[test]
fn xdp_may_only_read_the_packet_pointers_from_its_context() {
    let f = run("ldxw r0, [r1+12]\nmov r0, 2\nexit", ProgType::Xdp, vec![]);
    let m = expect(&f, cat::CTX_FIELD);
    assert!(m.contains("ingress_ifindex"), "{m}");
    let f = run(
        "ldxw r0, [r1+0]\nldxw r0, [r1+4]\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![],
    );
    offloadable(&f);
}

#[test]
fn tc_may_read_len_data_and_data_end_only() {
    let f = run(
        "ldxw r0, [r1+0]\nldxw r0, [r1+76]\nldxw r0, [r1+80]\nmov r0, 2\nexit",
        ProgType::SchedCls,
        vec![],
    );
    offloadable(&f);
    let f = run(
        "ldxw r0, [r1+8]\nmov r0, 2\nexit",
        ProgType::SchedCls,
        vec![],
    );
    assert!(expect(&f, cat::CTX_FIELD).contains("mark"));
}

#[test]
fn context_stores_are_refused() {
    let f = run(
        "mov r2, 1\nstxw [r1+8], r2\nmov r0, 2\nexit",
        ProgType::SchedCls,
        vec![],
    );
    let m = expect(&f, cat::CTX_STORE);
    assert!(m.contains("unsupported store to context field"), "{m}");
}

#[test]
fn queue_selection_needs_the_firmware_capability() {
    // The host verifier refuses every XDP context store (the kernel allows this one only
    // for offloaded programs), so the walk stops there; the hook has already judged it.
    let asm = "mov r2, 1\nstxw [r1+16], r2\nmov r0, 2\nexit";
    let p = prog(asm, ProgType::Xdp, vec![]);
    let f = check(&p, &NicLimits::default());
    assert_eq!(f.categories(), [cat::VERIFIER]);
    let nic = NicLimits {
        fw_queue_select: false,
        ..NicLimits::default()
    };
    let f = check(&p, &nic);
    assert!(f.reasons.iter().any(|r| r.category == cat::CTX_STORE
        && r.message == "[nfp] queue selection not supported by FW"));
}

#[test]
fn multiplication_needs_32_bit_operands() {
    let f = run(
        "call 7\nmov r6, r0\nlsh r6, 32\nmul r6, 3\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![],
    );
    assert_eq!(
        expect(&f, cat::MUL_RANGE),
        "[nfp] multiplier is not within u32 value range"
    );
    let f = run(
        "call 7\nmov32 r0, r0\nmul r0, -3\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![],
    );
    assert!(expect(&f, cat::MUL_RANGE).contains("sign extended"));
    // 32-bit multiplies of anything and 64-bit ones of u32 values are fine.
    let f = run(
        "call 7\nmov32 r0, r0\nmov r6, r0\nmul r6, r0\nmul32 r6, 7\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![],
    );
    offloadable(&f);
}

#[test]
fn division_only_by_one_non_negative_constant() {
    let f = run(
        "call 7\nmov r6, r0\ncall 7\ndiv r6, r0\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![],
    );
    assert!(expect(&f, cat::DIV_NOT_CONST).starts_with("[nfp] divisor is not constant"));
    let f = run(
        "call 7\nmov32 r0, r0\ndiv r0, -3\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![],
    );
    expect(&f, cat::DIV_NEGATIVE);
    let f = run(
        "call 7\nlsh r0, 32\ndiv r0, 3\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![],
    );
    assert_eq!(
        expect(&f, cat::DIV_RANGE),
        "[nfp] dividend is not within u32 value range"
    );
    // The same constant register divisor on every path is fine.
    let f = run(
        "call 7\nmov32 r0, r0\nmov r6, 10\ndiv r0, r6\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![],
    );
    offloadable(&f);
}

#[test]
fn a_divisor_differing_between_paths_is_not_constant() {
    // The paths differ in a pointer (r8) too, so the walk cannot prune one of them at `d`
    // (the imprecise divisors alone would be equivalent, for the kernel as for us).
    let f = run(
        &format!(
            "mov r6, 0\nstxdw [r10-8], r6\n{PKT1}mov r6, 3\nmov r8, r10\nadd r8, -8\njeq r5, 0, d\nmov r6, 5\nmov r8, r2\nd:\nmov r7, 100\ndiv r7, r6\nldxb r0, [r8+0]\nmov r0, 2\nexit\n{OUT}"
        ),
        ProgType::Xdp,
        vec![],
    );
    assert_eq!(
        expect(&f, cat::DIV_NOT_CONST),
        "[nfp] divisor is not constant: [3, 5]"
    );
}

#[test]
fn unsupported_helpers_name_their_id() {
    let f = run("call 5\nmov r0, 2\nexit", ProgType::Xdp, vec![]);
    assert_eq!(
        expect(&f, cat::HELPER_UNSUPPORTED),
        "[nfp] unsupported function id: 5 (bpf_ktime_get_ns)"
    );
    let f = run("mov r1, 1\nmov r2, 0\ncall 23\nexit", ProgType::Xdp, vec![]);
    expect(&f, cat::HELPER_REDIRECT);
}

#[test]
fn tail_calls_are_refused() {
    let f = run(
        "lddw r2, map_fd 0\nmov r3, 0\ncall 12\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![map(MapType::ProgArray, 4, 4, 4)],
    );
    assert!(expect(&f, cat::HELPER_TAIL_CALL).contains("unsupported function id: 12"));
    expect(&f, cat::MAP_TYPE);
}

#[test]
fn helpers_depend_on_firmware_capabilities() {
    let p = prog("call 7\nmov r0, 2\nexit", ProgType::Xdp, vec![]);
    offloadable(&check(&p, &NicLimits::default()));
    let nic = NicLimits {
        fw_random: false,
        ..NicLimits::default()
    };
    let f = check(&p, &nic);
    assert!(expect(&f, cat::HELPER_FW).contains("random number generation"));
}

#[test]
fn adjust_head_is_offloadable_and_adjust_tail_only_shrinks() {
    let f = run(
        "mov r2, -14\ncall 44\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![],
    );
    offloadable(&f);
    let f = run(
        "mov r2, -14\ncall 65\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![],
    );
    offloadable(&f);
    let f = run("mov r2, 4\ncall 65\nmov r0, 2\nexit", ProgType::Xdp, vec![]);
    assert!(expect(&f, cat::HELPER_ARG).contains("adjust_tail"));
}

#[test]
fn tc_exit_values_must_be_constant_and_mapped() {
    let f = run("mov r0, 0\nexit", ProgType::SchedCls, vec![]);
    assert_eq!(
        expect(&f, cat::EXIT_STATE),
        "[nfp] unsupported exit state: scalar, imm: 0x0"
    );
    let f = run("call 7\nexit", ProgType::SchedCls, vec![]);
    assert!(expect(&f, cat::EXIT_STATE).contains("var_off"));
    for ok in ["2", "4", "5", "-1", "8"] {
        offloadable(&run(
            &format!("mov r0, {ok}\nexit"),
            ProgType::SchedCls,
            vec![],
        ));
    }
    // XDP exits are not checked: the outro maps anything above TX to a drop.
    offloadable(&run("call 7\nexit", ProgType::Xdp, vec![]));
}

#[test]
fn stack_beyond_the_firmware_frame_is_refused() {
    let p = prog(
        "mov r1, 0\nstxdw [r10-128], r1\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![],
    );
    offloadable(&check(&p, &NicLimits::default()));
    let nic = NicLimits {
        stack_bytes: 64,
        ..NicLimits::default()
    };
    let f = check(&p, &nic);
    assert_eq!(
        expect(&f, cat::STACK_SIZE),
        "[nfp] stack too large: program 128B > FW stack 64B"
    );
}

#[test]
fn every_reason_is_collected_once_per_instruction() {
    // Two paths reach the `mod`; one reason. Three problems at three places: three reasons.
    let f = run(
        &format!("{PKT1_TC}jeq r5, 0, m\nmov r5, 9\nm:\nmod r5, 3\ncall 5\nmov r0, 0\nexit\n{OUT}"),
        ProgType::SchedCls,
        vec![],
    );
    assert!(f.rejected.is_none());
    let cats: Vec<_> = f.reasons.iter().map(|r| r.category).collect();
    assert_eq!(
        cats,
        [
            cat::INSN_NOT_SUPPORTED,
            cat::HELPER_UNSUPPORTED,
            cat::EXIT_STATE
        ],
        "{:#?}",
        f.reasons
    );
}

mod robustness {
    use proptest::prelude::*;
    use vm_core::isa::RawInsn;

    use super::*;

    /// Opcodes real programs use, plus the ones the NIC lacks, so random programs get past
    /// the decoder and sometimes past the verifier.
    const CODES: &[u8] = &[
        0x07, 0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77,
        0x7f, 0x87, 0x97, 0x9f, 0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0x04, 0x0c, 0x24, 0x34, 0xb4,
        0xbc, 0xd4, 0xdc, 0xd7, 0x61, 0x69, 0x71, 0x79, 0x91, 0x62, 0x63, 0x6b, 0x73, 0x7b, 0x7a,
        0xc3, 0xdb, 0x05, 0x06, 0x15, 0x1d, 0x25, 0x2d, 0x55, 0x5d, 0xa5, 0x16, 0x85, 0x95,
    ];

    fn raw_insn() -> impl Strategy<Value = RawInsn> {
        (
            prop::sample::select(CODES),
            0u8..11,
            0u8..11,
            -8i16..8,
            prop_oneof![Just(0i32), Just(1), Just(2), Just(7), Just(-8), -64i32..64],
        )
            .prop_map(|(code, dst, src, off, imm)| {
                // Calls use the helper form with a small id; atomics a valid operation.
                let (src, imm) = match code {
                    0x85 => (0, imm.rem_euclid(8)),
                    0xc3 | 0xdb => (src, [0, 1, 0x40, 0xe1][imm.rem_euclid(4) as usize]),
                    _ => (src, imm),
                };
                RawInsn::new(code, dst, src, off, imm)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any decodable program gets a decision, never a panic; an offloadable one has no
        /// reasons and was verified.
        #[test]
        fn random_programs_get_a_decision(
            body in prop::collection::vec(raw_insn(), 1..24),
            xdp in any::<bool>(),
        ) {
            let mut raw = body;
            raw.push(RawInsn::new(0xb7, 0, 0, 0, 2));
            raw.push(RawInsn::new(0x95, 0, 0, 0, 0));
            let t = if xdp { ProgType::Xdp } else { ProgType::SchedCls };
            if let Ok(mut p) = Program::from_raw("r", t, &raw) {
                p.maps = vec![map(MapType::Array, 4, 8, 4)];
                let f = check(&p, &NicLimits::default());
                prop_assert_eq!(f.verified.is_some(), f.rejected.is_none());
                if f.offloadable() {
                    prop_assert!(f.reasons.is_empty());
                }
                if f.rejected.is_some() {
                    prop_assert!(f.reasons.iter().any(|r| r.category == cat::VERIFIER));
                }
            }
        }
    }
}
