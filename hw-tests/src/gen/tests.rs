//! Generator checks that need no kernel: encodings round-trip, the interpreter runs every
//! program without a fault, the instruction mix is complete, regression files round-trip.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use vm_core::interp::{Vm, VmConfig};
use vm_core::isa::{Insn, check_targets, decode_program, encode_program};

use super::coverage::Tally;
use super::recipe::{Key, MapSel, MemOp, Recipe, RegInit, Simple, Src, Stmt, Sub};
use super::regression::Regression;
use super::*;

fn runner(seed: u8) -> TestRunner {
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

fn sample(n: usize, seed: u8) -> Vec<(Recipe, Vec<u8>)> {
    let mut r = runner(seed);
    let s = case_strategy(&GenConfig::default());
    (0..n)
        .filter_map(|_| s.new_tree(&mut r).ok().map(|t| t.current()))
        .collect()
}

#[test]
fn lowered_programs_are_well_formed_and_run_in_the_interpreter() {
    for (i, (recipe, packet)) in sample(300, 1).into_iter().enumerate() {
        let l = lower(&recipe, "t").expect("lowers");
        let raw = encode_program(&l.program.insns);
        let back = decode_program(&raw).expect("decodes");
        assert_eq!(back, l.program.insns, "case {i}");
        check_targets(&l.program.insns).expect("targets in range");
        assert_eq!(l.program.insns.last(), Some(&Insn::Exit));
        let mut vm = Vm::new(&l.program, VmConfig::default()).expect("interp accepts");
        vm.run(&packet)
            .unwrap_or_else(|e| panic!("case {i}: {e}\n{recipe:#?}"));
    }
}

#[test]
fn the_instruction_mix_is_complete() {
    let mut tally = Tally::default();
    for (recipe, _) in sample(1500, 2) {
        tally.add(&lower(&recipe, "t").expect("lowers"));
    }
    let missing = tally.missing();
    assert!(missing.is_empty(), "{}", tally.report());
    for f in [
        "pkt.load",
        "pkt.store",
        "value.atomic",
        "stack.atomic",
        "loop",
        "call.local",
        "map.lookup.hash",
        "map.update.array",
        "map.delete.hash",
        "helper.csum_diff",
        "init.packet",
        "if_else.ja32",
        "stack.indexed",
        "value.indexed",
        "stack.atomic.fetch",
        "xdp.adjust_tail",
        "xdp.store_bytes",
    ] {
        assert!(
            tally.features.contains_key(f),
            "feature {f} never generated\n{}",
            tally.report()
        );
    }
}

#[test]
fn regression_files_round_trip() {
    for (i, (recipe, packet)) in sample(50, 3).into_iter().enumerate() {
        let l = lower(&recipe, "t").expect("lowers");
        let r = Regression {
            notes: vec!["note one".into(), "two".into()],
            program: l.program.clone(),
            packet: packet.clone(),
        };
        let text = r.to_text();
        let back =
            Regression::parse("t", &text).unwrap_or_else(|e| panic!("case {i}: {e}\n{text}"));
        assert_eq!(back.program.insns, l.program.insns, "case {i}");
        assert_eq!(back.program.maps, l.program.maps);
        assert_eq!(back.packet, packet);
        assert_eq!(back.notes, r.notes);
    }
    assert!(
        Regression::parse("t", "-- asm\nexit\n").is_err(),
        "packet section required"
    );
    assert!(Regression::parse("t", "-- bogus\n").is_err());
}

/// Recipes a shrinker could produce: every read of a non-scalar, reserved registers as
/// operands, zero divisors, oversized offsets. They must still lower to runnable code.
#[test]
fn hostile_recipes_still_lower_to_valid_code() {
    let body = vec![
        Stmt::Simple(Simple::Alu {
            op: vm_core::isa::AluOp::Div,
            width: vm_core::isa::Width::W64,
            dst: 3,
            src: Src::Imm(0),
        }),
        Stmt::Mem(MemOp::Atomic {
            op: vm_core::isa::AtomicOp::CmpXchg,
            size: vm_core::isa::Size::DW,
            fetch: false,
            src: 7,
            off: u16::MAX,
        }),
        Stmt::Mem(MemOp::Load {
            size: vm_core::isa::Size::DW,
            signed: true,
            dst: 9,
            off: 999,
        }),
    ];
    let recipe = Recipe {
        init: vec![],
        stack_init: vec![],
        main: vec![
            Stmt::Call { sub: 7 },
            Stmt::Loop {
                count: 200,
                counter: 6,
                body: vec![
                    Stmt::Packet {
                        len: 0,
                        regs: [6, 6, 6],
                        body: body.clone(),
                    },
                    Stmt::MapValue {
                        map: MapSel::Hash,
                        key: Key::Reg { reg: 1, mask: 3 },
                        ptr: 0,
                        body: body.clone(),
                    },
                    Stmt::Call { sub: 0 },
                ],
            },
        ],
        subs: vec![Sub {
            params: 9,
            body: vec![
                Stmt::Packet {
                    len: 3,
                    regs: [1, 2, 3],
                    body: body.clone(),
                },
                Stmt::Call { sub: 0 },
            ],
            ret: 8,
        }],
        ret: 4,
    };
    let l = lower(&recipe, "hostile").expect("lowers");
    check_targets(&l.program.insns).expect("targets");
    let mut vm = Vm::new(&l.program, VmConfig::default()).expect("interp accepts");
    vm.run(&[0u8; 64]).expect("runs");
    let _ = RegInit::Imm(0);
}

proptest! {
    #![proptest_config(Config { cases: 64, failure_persistence: None, ..Config::default() })]
    /// Shrinking keeps programs valid: every simplification of a recipe still lowers and runs.
    #[test]
    fn shrunk_recipes_stay_valid((recipe, packet) in case_strategy(&GenConfig::default())) {
        let l = lower(&recipe, "t").expect("lowers");
        let mut vm = Vm::new(&l.program, VmConfig::default()).expect("interp accepts");
        prop_assert!(vm.run(&packet).is_ok());
    }
}

#[test]
#[ignore = "prints a sample program"]
fn print_sample() {
    let (recipe, _) = sample(1, 9).remove(0);
    let l = lower(&recipe, "t").expect("lowers");
    println!(
        "{}",
        vm_core::asm::disassemble(&l.program.insns, vm_core::asm::Syntax::Kernel)
    );
}
