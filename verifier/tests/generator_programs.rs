//! Completeness on rich programs: every program of hw-tests' differential generator (XDP
//! programs the Linux 6.18 verifier accepts by construction — packet and map-value access,
//! 32/64-bit atomics, helpers, bounded loops, bpf-to-bpf calls, every ALU and jump form) must
//! be accepted by our verifier too, and then run without a fault in the interpreter.
//!
//! Why next to `kernel_fuzz`: that fuzzer draws plausible programs of which the kernel accepts
//! about one in six, so it mostly exercises rejections. This generator only makes accepted
//! programs (hw-tests' `diff_random` fails whenever the kernel refuses one), so a refusal here
//! is a false rejection of ours: a program a user could load in Linux but not offload-check
//! with us. Where `bpf()` works the kernel is asked again for each refusal, so a failure
//! always says whether the kernel accepts the very program we refused.
//!
//! `GEN_VERIFY_CASES` (default 3000) and `GEN_VERIFY_SEED` (default fixed) scale a campaign.

use hw_tests::generator::{GenConfig, case_strategy, lower};
use hw_tests::kernel::{LoadOptions, load_vm_program};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use verifier::{VerifyOptions, verify};
use vm_core::asm::{Syntax, disassemble};
use vm_core::interp::{Vm, VmConfig};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

#[test]
fn every_generated_program_is_accepted_and_runs_without_fault() {
    let cases = env_u64("GEN_VERIFY_CASES").unwrap_or(3000);
    let seed = env_u64("GEN_VERIFY_SEED").unwrap_or(0x6e_7665_7269_6679);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = case_strategy(&GenConfig::default());
    let opts = VerifyOptions {
        log_level: 0,
        ..VerifyOptions::default()
    };
    let (mut accepted, mut processed) = (0u64, Vec::new());
    let mut failures = Vec::new();
    for i in 0..cases {
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            continue;
        };
        let (recipe, packet) = tree.current();
        let lowered = match lower(&recipe, &format!("gen{i}")) {
            Ok(l) => l,
            Err(e) => panic!("case {i}: the generator could not lower its recipe: {e}"),
        };
        let program = lowered.program;
        match verify(&program, &opts) {
            Ok(v) => {
                accepted += 1;
                processed.push(v.processed_insns);
                let mut vm = Vm::new(&program, VmConfig::default()).unwrap_or_else(|e| {
                    panic!("case {i}: accepted but the interpreter refuses to load it: {e}")
                });
                if let Err(e) = vm.run(&packet) {
                    failures.push(format!(
                        "case {i}: accepted, but faults at run time: {e}\n{}",
                        disassemble(&program.insns, Syntax::Kernel)
                    ));
                }
            }
            Err(r) => {
                let kernel = match load_vm_program(&program, &LoadOptions::default()) {
                    Ok(_) => "the kernel accepts it".to_string(),
                    Err(e) => format!("the kernel refuses it too: {e}"),
                };
                let full = verify(&program, &VerifyOptions::default())
                    .err()
                    .map(|r| r.log)
                    .unwrap_or_default();
                let tail: Vec<&str> = full.lines().rev().take(25).collect();
                failures.push(format!(
                    "case {i}: we refuse ({}); {kernel}\n{}\n-- log tail --\n{}",
                    r.error,
                    disassemble(&program.insns, Syntax::Kernel),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
        }
        if failures.len() >= 3 {
            break;
        }
    }
    processed.sort_unstable();
    let pct = |p: usize| {
        processed
            .get(processed.len() * p / 100)
            .copied()
            .unwrap_or(0)
    };
    eprintln!(
        "generator programs: {accepted} of {cases} accepted (seed {seed:#x}); processed insns median {} p99 {} max {}",
        pct(50),
        pct(99),
        processed.last().copied().unwrap_or(0)
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
