//! Paying for runs against counting each instruction: the budget and instruction counts of
//! the fast copy (runs paid at control transfers, across conditional jumps, with the rest
//! given back when a jump is taken; see `exec`) must be exactly those of executing every
//! instruction in the counted copy, one decrement each.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::fast_path_tests::{imm, map_def, pattern, program, reuse_program};
use super::*;
use crate::asm::assemble;

/// Makes `v` execute every instruction in the counted copy, one decrement per instruction:
/// every run is too long to pay for (`run`, and the counted copy's `tr` / `fr`, saturated),
/// so every control transfer, the entry included, continues in the counted copy. What is
/// left is the plainest way to count, the reference for paying by runs.
fn count_each_instruction(v: &mut Vm) {
    for op in v.code.code.iter_mut() {
        op.run = u16::MAX;
    }
    let len = v.code.len;
    for op in v.code.code[len..].iter_mut() {
        op.tr = u16::MAX;
        op.fr = u16::MAX;
    }
    v.place_machine();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// Paying for runs (across conditional jumps, giving back what a taken jump skips) counts
    /// exactly what counting each instruction counts, and stops at the same budget: results,
    /// faults, instruction counts and map contents agree run by run, for programs with
    /// loops, calls, helpers, stack and map accesses, faults and superinstructions.
    #[test]
    fn paying_by_runs_counts_like_counting_each_instruction(
        text in reuse_program(),
        xdp in any::<bool>(),
        budget in prop_oneof![1u64..120, 1000u64..1100, Just(100_000)],
        inputs in prop::collection::vec(prop::collection::vec(any::<u8>(), 14..40), 1..4),
    ) {
        let ty = if xdp { ProgType::Xdp } else { ProgType::Mem };
        let raw = assemble(&text).unwrap_or_else(|e| panic!("assembly failed: {e}\n{text}"));
        let mut p = Program::from_raw("t", ty, &raw).unwrap();
        p.maps = vec![map_def("m", MapType::Array, 4, 8, 4)];
        let cfg = VmConfig { budget, ..VmConfig::default() };
        let mut by_runs = Vm::new(&p, cfg.clone()).unwrap();
        let mut each = Vm::new(&p, cfg).unwrap();
        count_each_instruction(&mut each);
        for input in &inputs {
            let got = by_runs.run(input);
            let want = each.run(input);
            prop_assert_eq!(&got, &want, "{}", text);
            prop_assert_eq!(by_runs.maps().get(0).unwrap().slab(), each.maps().get(0).unwrap().slab());
        }
    }

    /// As above, for the superinstruction families (jumps into the middle of fused
    /// sequences, fused loads that fall back).
    #[test]
    fn superinstructions_count_like_counting_each_instruction(
        seeds in prop::collection::vec(prop_oneof![any::<u64>(), 0u64..64], 9),
        patterns in prop::collection::vec(pattern(), 1..12),
        end_in_sub in any::<bool>(),
        end_k in prop::option::of(imm()),
        input in prop::collection::vec(any::<u8>(), 32),
        budget in prop_oneof![0u64..80, Just(1000u64)],
    ) {
        let insns = program(&seeds, &patterns, end_in_sub, end_k);
        let p = Program {
            name: "fp".into(),
            section: None,
            prog_type: ProgType::Mem,
            insns,
            maps: Vec::new(),
        };
        let cfg = VmConfig { budget, ..VmConfig::default() };
        let got = Vm::new(&p, cfg.clone()).unwrap().run(&input);
        let mut each = Vm::new(&p, cfg).unwrap();
        count_each_instruction(&mut each);
        prop_assert_eq!(got, each.run(&input));
    }
}
