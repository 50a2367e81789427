//! Differential testing of the offload compiler: programs compiled to microengine code and
//! run on the reference executor must behave exactly as vm-core's interpreter runs the eBPF
//! (full 64-bit r0, packet bytes, every map entry).
//!
//! Three sources of programs: random programs inside the offloadable subset (proptest,
//! `NFP_DIFF_CASES` cases, default 5,000), every offloadable XDP program of the corpus on
//! ~200 random packets each, and the demo filter on the demo packets. A mismatch fails the
//! test with the re-assemblable program, the packet, both results and the microcode.

#![allow(clippy::unwrap_used)]

#[path = "exec_vs_interp/assemble.rs"]
mod assemble;
#[path = "exec_vs_interp/compare.rs"]
mod compare;
#[path = "exec_vs_interp/corpus.rs"]
mod corpus;
#[path = "exec_vs_interp/generate.rs"]
mod generate;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use nfp_backend::NicLimits;
use nfp_backend::compile::{compile, compile_with};
use nfp_backend::lower::LowerOptions;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use compare::Pair;
use generate::{HASH_FILLED, Spec};

/// Identical initial contents for both engines: array entries 0..4 and hash keys
/// 0..HASH_FILLED with distinct non-zero bytes.
fn prefill() -> Vec<(usize, Vec<u8>, Vec<u8>)> {
    let value = |seed: u8| {
        (0..16u8)
            .map(|i| seed.wrapping_mul(31).wrapping_add(i * 7 + 1))
            .collect::<Vec<u8>>()
    };
    let mut v = Vec::new();
    for k in 0..4u32 {
        v.push((0, k.to_le_bytes().to_vec(), value(k as u8)));
    }
    for k in 0..HASH_FILLED {
        v.push((1, k.to_le_bytes().to_vec(), value(100 + k as u8)));
    }
    v
}

/// Packet of `len` from 200 random bytes: `long` packets cover the checked range (the
/// body runs), others are any length 14..=200 (often the short exit).
fn packet(spec: &Spec, (long, second, extra): (bool, bool, u8), bytes: &[u8]) -> Vec<u8> {
    let max = bytes.len();
    let len = if long {
        (usize::from(spec.checked) + usize::from(extra) % 73).min(max)
    } else if max > 200 && extra % 2 == 0 {
        // Longer reach: short packets anywhere below it, not only below 200 bytes.
        14 + (usize::from(extra) * 7919) % (max - 13)
    } else {
        14 + usize::from(extra) % 187
    };
    let mut b = bytes[..len].to_vec();
    if second {
        b.iter_mut()
            .enumerate()
            .for_each(|(j, x)| *x ^= (j as u8).wrapping_mul(13) ^ 0x5a);
    }
    b
}

#[derive(Default)]
struct Stats {
    generated: usize,
    offloadable: usize,
    refused: BTreeMap<String, usize>,
    refused_example: BTreeMap<String, String>,
    packets: usize,
    long_runs: usize,
    forms: BTreeMap<&'static str, usize>,
    opts: BTreeMap<&'static str, u64>,
    refused_without_loop: usize,
}

/// Mostly every optimisation on; also none, and random subsets (each optimisation must keep
/// the semantics on its own).
fn lower_options() -> impl Strategy<Value = LowerOptions> {
    prop_oneof![
        3 => Just(LowerOptions::default()),
        1 => Just(LowerOptions::NONE),
        1 => prop::array::uniform9(any::<bool>()).prop_map(|b| LowerOptions {
            imm_fold: b[0],
            ld_mask_fold: b[1],
            pkt_cache: b[2],
            lm_window0: b[3],
            dead_branch: b[4],
            narrow_cmp: b[5],
            dead_hi: b[6],
            mov_fold: b[7],
            swap_fold: b[8],
        }),
    ]
}

/// Most body items per program (`NFP_DIFF_ITEMS`, default 40).
fn max_items() -> usize {
    std::env::var("NFP_DIFF_ITEMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40)
}

/// Most bytes the bounds check covers (`NFP_DIFF_REACH`, default 128); packets are
/// generated up to `max(200, reach + 72)` bytes.
fn reach() -> u16 {
    std::env::var("NFP_DIFF_REACH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(128)
}

fn max_len() -> usize {
    (usize::from(reach()) + 72).max(200)
}

fn cases() -> u32 {
    std::env::var("NFP_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000)
}

#[test]
fn random_offloadable_programs_agree_with_the_interpreter() {
    let started = Instant::now();
    let nic = NicLimits::default();
    let fill = prefill();
    let stats = Mutex::new(Stats::default());
    let strategy = (
        generate::spec(max_items(), reach()),
        prop::collection::vec((any::<bool>(), any::<bool>(), any::<u8>()), 1..=3),
        prop::collection::vec(any::<u8>(), max_len()),
        0u8..nfp_backend::exec::THREADS_PER_ME,
        lower_options(),
    );
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    });
    let result = runner.run(&strategy, |(spec, pks, bytes, thread, opts)| {
        let program = spec.program();
        let compiled = match compile_with(&program, &nic, &opts) {
            Ok(c) => c,
            Err(e) => {
                let mut s = stats.lock().unwrap();
                s.generated += 1;
                if !generate::forms(&spec).contains(&"loop") {
                    s.refused_without_loop += 1;
                }
                for r in &e.reasons {
                    *s.refused.entry(r.category.to_string()).or_default() += 1;
                    s.refused_example
                        .entry(r.category.to_string())
                        .or_insert_with(|| {
                            if std::env::var_os("NFP_DIFF_SHOW_REFUSED").is_some() {
                                format!("{r}\n{}", compare::describe(&program))
                            } else {
                                r.to_string()
                            }
                        });
                }
                return Ok(());
            }
        };
        {
            let mut s = stats.lock().unwrap();
            s.generated += 1;
            s.offloadable += 1;
            for f in generate::forms(&spec) {
                *s.forms.entry(f).or_default() += 1;
            }
            for (name, n) in compiled.optimisations.entries() {
                *s.opts.entry(name).or_default() += u64::from(n);
            }
        }
        let mut pair =
            Pair::new(&program, &compiled, &fill, thread).map_err(TestCaseError::fail)?;
        for (i, sel) in pks.iter().enumerate() {
            let pk = packet(&spec, *sel, &bytes);
            {
                let mut s = stats.lock().unwrap();
                s.packets += 1;
                if pk.len() >= usize::from(spec.checked) {
                    s.long_runs += 1;
                }
            }
            pair.run(&pk)
                .map_err(|e| TestCaseError::fail(format!("packet #{i}: {e}")))?;
        }
        Ok(())
    });
    let s = stats.into_inner().unwrap();
    println!(
        "generated {} programs in {:.1} s: offloadable {} ({:.1}%), packets {} (body ran on {})",
        s.generated,
        started.elapsed().as_secs_f64(),
        s.offloadable,
        100.0 * s.offloadable as f64 / s.generated.max(1) as f64,
        s.packets,
        s.long_runs
    );
    println!(
        "refusals by category: {:?} ({} of the refused programs have no loop)",
        s.refused, s.refused_without_loop
    );
    for (c, e) in &s.refused_example {
        println!("  e.g. {c}: {e}");
    }
    println!("item forms in offloadable programs: {:?}", s.forms);
    println!("optimisations fired: {:?}", s.opts);
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, (spec, pks, bytes, thread, opts))) => {
            let program = spec.program();
            let asm = compare::describe(&program);
            let pk: Vec<_> = pks
                .iter()
                .map(|sel| compare::hex(&packet(&spec, *sel, &bytes)))
                .collect();
            panic!(
                "executor (ME context {thread}, {opts:?}) and interpreter disagree (minimal case after shrinking):\n{why}\n\nminimal program:\n{asm}\npackets: {pk:?}"
            );
        }
        Err(e) => panic!("{e}"),
    }
    assert!(
        s.offloadable * 10 >= s.generated * 9,
        "only {} of {} generated programs are offloadable",
        s.offloadable,
        s.generated
    );
}

#[test]
fn corpus_xdp_programs_agree_with_the_interpreter() {
    corpus::run_all();
}

#[test]
fn demo_udp_filter_agrees_with_the_interpreter() {
    let program = vm_core::demo::udp_filter();
    let compiled = compile(&program, &NicLimits::default())
        .unwrap_or_else(|e| panic!("demo does not compile: {e}"));
    let mut pair = Pair::new(&program, &compiled, &[], 0).unwrap();
    let mut bad = Vec::new();
    for (name, pk) in vm_core::demo::packets() {
        if let Err(e) = pair.run(&pk) {
            bad.push(format!("{name}: {e}"));
        }
    }
    println!(
        "demo: {} packets, {} mismatches",
        vm_core::demo::packets().len(),
        bad.len()
    );
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}

/// The comparison itself must see differences: microcode of a different program (another
/// return value, another packet write, another map update) is reported for each.
#[test]
fn the_comparison_detects_wrong_microcode() {
    let nic = NicLimits::default();
    let xdp = |src: &str| {
        let raw = vm_core::asm::assemble(src).unwrap();
        vm_core::Program {
            name: "t".into(),
            section: Some("xdp".into()),
            prog_type: vm_core::ProgType::Xdp,
            insns: vm_core::isa::decode_program(&raw).unwrap(),
            maps: generate::map_defs(),
        }
    };
    let body = |ret: u32, byte: u32, add: u32| {
        format!(
            "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 8\njgt %r4, %r3, +2\nmov %r5, {byte}\nstxb [%r2+3], %r5\n\
             mov %r1, 1\nstxw [%r10-4], %r1\nlddw %r1, map_fd 0\nmov %r2, %r10\nadd %r2, -4\ncall 1\njeq %r0, 0, +2\nmov %r1, {add}\nlock add [%r0+0], %r1\n\
             mov %r0, {ret}\nexit"
        )
    };
    let base = xdp(&body(2, 7, 1));
    let base_code = compile(&base, &nic).unwrap();
    let pk = vec![0u8; 64];
    Pair::new(&base, &base_code, &prefill(), 0)
        .unwrap()
        .run(&pk)
        .unwrap();
    for (what, other) in [
        ("retval", body(3, 7, 1)),
        ("packet", body(2, 8, 1)),
        ("map", body(2, 7, 2)),
    ] {
        let code = compile(&xdp(&other), &nic).unwrap();
        let err = Pair::new(&base, &code, &prefill(), 0)
            .unwrap()
            .run(&pk)
            .err();
        let err = err.unwrap_or_else(|| panic!("a wrong {what} went unnoticed"));
        assert!(
            err.contains("MISMATCH") && err.contains("microcode"),
            "{err}"
        );
    }
}

/// Generated programs print as conformance assembly that re-assembles to the same slots
/// (what a failure report relies on).
#[test]
fn generated_programs_reassemble() {
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&generate::spec(40, 128), |spec| {
            let p = spec.program();
            let text = vm_core::asm::disassemble(&p.insns, vm_core::asm::Syntax::Conformance);
            let raw = vm_core::asm::assemble(&text)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(raw, vm_core::isa::encode_program(&p.insns));
            Ok(())
        })
        .unwrap();
}

/// Programs feasibility accepts must compile: the lowering's own range analysis
/// (`lower/ranges.rs`) must not lose a mask established right before a multiply or a
/// divisor constant after a loop. Minimal programs found by the random test (each refused
/// with "[nfp] multiplicand is not within u32 value range" / "divisor is not constant").
#[test]
fn what_feasibility_accepts_compiles_after_a_loop() {
    let nic = NicLimits::default();
    let loop_then = |tail: &str| {
        format!(
            "mov %r0, 0\nmov %r3, 1\nmov %r5, 6\nadd %r3, 1\nsub %r5, 1\njne %r5, 0, -3\n{tail}\nexit"
        )
    };
    let mut bad = Vec::new();
    for tail in [
        "and %r0, 65535\nmul %r0, 3",
        "mov32 %r0, %r0\nmov32 %r2, 7\ndiv %r0, %r2",
    ] {
        let src = loop_then(tail);
        let raw = vm_core::asm::assemble(&src).unwrap();
        let p = vm_core::Program {
            name: "loop_then".into(),
            section: Some("xdp".into()),
            prog_type: vm_core::ProgType::Xdp,
            insns: vm_core::isa::decode_program(&raw).unwrap(),
            maps: vec![],
        };
        assert!(
            nfp_backend::feasibility::check(&p, &nic).offloadable(),
            "{src}"
        );
        match compile(&p, &nic) {
            Ok(c) => Pair::new(&p, &c, &[], 1).unwrap().run(&[0u8; 64]).unwrap(),
            Err(e) => bad.push(format!("{src}\n  -> {e}")),
        }
    }
    assert!(
        bad.is_empty(),
        "feasibility accepts but compile refuses (see /work/notes/nfp-diff-failures.md):\n{}",
        bad.join("\n")
    );
}
