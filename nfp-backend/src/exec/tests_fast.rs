//! The fast path equals the reference loop: same events and errors, and after every event
//! the same registers, flags, counters, pending defer/hazard/multiply state, packet buffer,
//! local memory, shared memories and maps. Checked on random instruction sequences (valid
//! and invalid operands, defer slots, CSR hazards, faults, tiny budgets) and on random
//! offloadable eBPF programs compiled by the backend (the generator of the exec_vs_interp
//! integration test).

#![allow(clippy::unwrap_used)]

use super::tests_props::{maps as wild_maps, wild_insn};
use super::thread::slot;
use super::*;
use crate::NicLimits;
use crate::target::decode::tests::insn;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::sync::atomic::{AtomicUsize, Ordering};

#[allow(dead_code, clippy::all)]
#[path = "../../tests/exec_vs_interp/generate.rs"]
mod generate;

#[allow(dead_code, clippy::all)]
#[path = "../../tests/exec_vs_interp/assemble.rs"]
mod assemble;

/// One ME context with its memories, run on one of the two paths.
struct Side {
    lmem: Lmem,
    shared: SharedMem,
    maps: MapSet,
    thread: Thread,
}

impl Side {
    fn new(maps: MapSet, thread: u8) -> Side {
        Side {
            lmem: Lmem::new(),
            shared: SharedMem::new(7, 0),
            maps,
            thread: Thread::new(thread),
        }
    }

    fn resume(
        &mut self,
        fast: Option<&FastProgram>,
        code: &[MeInsn],
        budget: u64,
        profile: Option<&mut Vec<InsnProfile>>,
    ) -> Result<Event, ExecError> {
        self.with_mem(|thread, mem| match (fast, profile) {
            (Some(p), Some(prof)) => thread.run_until_event_fast_profiled(p, mem, budget, prof),
            (Some(p), None) => thread.run_until_event_fast(p, mem, budget),
            (None, Some(prof)) => thread.run_until_event_profiled(code, mem, budget, prof),
            (None, None) => thread.run_until_event(code, mem, budget),
        })
    }

    /// Runs `f` on this side's thread and its memory (NFP-4000 latencies).
    fn with_mem<R>(&mut self, f: impl FnOnce(&mut Thread, &mut MemState<'_>) -> R) -> R {
        let lat = Latencies::NFP4000;
        let mut mem = MemState {
            lmem: &mut self.lmem,
            shared: &mut self.shared,
            maps: &mut self.maps,
            lat: &lat,
        };
        f(&mut self.thread, &mut mem)
    }

    /// One fast-path resume passing swaps as `through` allows.
    fn run_through(
        &mut self,
        fast: &FastProgram,
        budget: u64,
        profile: Option<&mut Vec<InsnProfile>>,
        through: &mut RunThrough,
    ) -> Result<Event, ExecError> {
        let profile = profile.map(|p| p.as_mut_slice());
        self.with_mem(|thread, mem| thread.run_through_fast(fast, mem, budget, profile, through))
    }
}

/// A reference side and a fast side with the same maps on `thread`, the fast program, and
/// one (empty) profile per side. Even threads get the program with native blocks, odd ones
/// the handlers alone, so both forms are held to the reference.
fn sides(
    code: &[MeInsn],
    maps: &MapSet,
    thread: u8,
) -> (FastProgram, Side, Side, Vec<InsnProfile>, Vec<InsnProfile>) {
    (
        if thread.is_multiple_of(2) {
            FastProgram::new(code)
        } else {
            FastProgram::without_native(code)
        },
        Side::new(maps.clone(), thread),
        Side::new(maps.clone(), thread),
        vec![InsnProfile::default(); code.len()],
        vec![InsnProfile::default(); code.len()],
    )
}

/// Everything observable about a side, as comparable values (`Err` names the first
/// difference).
fn same(r: &Side, f: &Side) -> Result<(), String> {
    let (a, b) = (&r.thread, &f.thread);
    let checks: [(&str, bool); 14] = [
        ("registers", a.file[..slot::REGS] == b.file[..slot::REGS]),
        (
            "constants and zero",
            b.file[slot::ZERO] == 0 && a.file[slot::IMM..] == b.file[slot::IMM..],
        ),
        ("flags", a.cc == b.cc),
        ("pc", a.pc == b.pc),
        ("insns", a.insns == b.insns),
        ("running", a.running == b.running),
        (
            "lm state",
            (a.lm_addr, a.lm_ready) == (b.lm_addr, b.lm_ready),
        ),
        (
            "defer state",
            (a.defer_left, a.defer_target, a.defer_taken, a.defer_slots)
                == (b.defer_left, b.defer_target, b.defer_taken, b.defer_slots),
        ),
        (
            "multiplier",
            (a.mul.a, a.mul.b, a.mul.width, a.mul.steps)
                == (b.mul.a, b.mul.b, b.mul.width, b.mul.steps),
        ),
        (
            "packet",
            a.pkt == b.pkt && (a.meta, a.data, a.end) == (b.meta, b.data, b.end),
        ),
        ("lmem", r.lmem.bytes() == f.lmem.bytes()),
        (
            "shared",
            r.shared.cls() == f.shared.cls()
                && r.shared.imem() == f.shared.imem()
                && r.shared.prandom_state() == f.shared.prandom_state(),
        ),
        (
            "maps",
            r.maps.len() == f.maps.len()
                && r.maps
                    .iter()
                    .zip(f.maps.iter())
                    .all(|(x, y)| x.entries() == y.entries() && x.slab() == y.slab()),
        ),
        ("dirty tracking", a.dirty == b.dirty),
    ];
    match checks.iter().find(|(_, ok)| !ok) {
        Some((what, _)) => Err(format!("{what} differ")),
        None => Ok(()),
    }
}

/// Starts packet `i` on both sides: whether it loaded (both must agree on that).
fn start_both(r: &mut Side, f: &mut Side, i: usize, p: &[u8]) -> Result<bool, String> {
    let a = r.thread.start(&mut r.lmem, p);
    let b = f.thread.start(&mut f.lmem, p);
    if a != b {
        return Err(format!("packet {i}: start {a:?} vs {b:?}"));
    }
    Ok(a.is_ok())
}

/// Runs `packets` one after another on both paths (state kept across packets), comparing
/// after every event; with `profiled`, the profiles too.
fn agree(
    code: &[MeInsn],
    maps: &MapSet,
    packets: &[Vec<u8>],
    thread: u8,
    budget: u64,
    profiled: bool,
) -> Result<(), String> {
    let (fast, mut r, mut f, mut pr, mut pf) = sides(code, maps, thread);
    for (i, p) in packets.iter().enumerate() {
        if !start_both(&mut r, &mut f, i, p)? {
            continue;
        }
        for step in 0.. {
            let a = r.resume(None, code, budget, profiled.then_some(&mut pr));
            let b = f.resume(Some(&fast), code, budget, profiled.then_some(&mut pf));
            if a != b {
                return Err(format!(
                    "packet {i} event {step}: reference {a:?}, fast {b:?}"
                ));
            }
            same(&r, &f).map_err(|e| format!("packet {i} after event {step} ({a:?}): {e}"))?;
            if !matches!(a, Ok(Event::Swap { .. })) {
                break;
            }
        }
    }
    if pr != pf {
        return Err("profiles differ".into());
    }
    Ok(())
}

/// Runs `packets` on the reference loop, one event at a time, and on the fast path passing
/// through swaps (`RunThrough`): each through call must return the reference event that the
/// model would see next (the first swap whose thread is not ready before `horizon`, or the
/// end), with the passed swaps' busy and wait cycles, and the same state after it. The model
/// clock starts each packet at `at` and each resume where the last swap's wait ends.
fn agree_through(
    code: &[MeInsn],
    maps: &MapSet,
    packets: &[Vec<u8>],
    thread: u8,
    budget: u64,
    (at, horizon): (u64, u64),
    profiled: bool,
) -> Result<(), String> {
    let (fast, mut r, mut f, mut pr, mut pf) = sides(code, maps, thread);
    for (i, p) in packets.iter().enumerate() {
        if !start_both(&mut r, &mut f, i, p)? {
            continue;
        }
        let mut clock = at;
        for call in 0.. {
            let mut through = RunThrough::new(clock, horizon);
            let got = f.run_through(&fast, budget, profiled.then_some(&mut pf), &mut through);
            // The reference, folded by the model's rule.
            let (mut busy, mut wait) = (0, 0);
            let want = loop {
                let e = r.resume(None, code, budget, profiled.then_some(&mut pr));
                match e {
                    Ok(Event::Swap {
                        busy_cycles: b,
                        wait_cycles: w,
                        ..
                    }) if clock + b + w < horizon => {
                        (busy, wait) = (busy + b, wait + w);
                        clock += b + w;
                    }
                    e => break e,
                }
            };
            if got != want || (through.busy(), through.wait()) != (busy, wait) {
                return Err(format!(
                    "packet {i} call {call}: reference {want:?} after passing ({busy}, {wait}), \
                     through {got:?} after ({}, {})",
                    through.busy(),
                    through.wait()
                ));
            }
            same(&r, &f).map_err(|e| format!("packet {i} after call {call}: {e}"))?;
            match want {
                Ok(Event::Swap {
                    busy_cycles: b,
                    wait_cycles: w,
                    ..
                }) => clock += b + w,
                _ => break,
            }
        }
    }
    if pr != pf {
        return Err("profiles differ".into());
    }
    Ok(())
}

/// Runs `packets` on the reference loop, one event at a time, and on the fast path to the
/// end of each packet (`run_to_end_fast`): the recorded segments must be the reference's
/// swaps, the returned event its last, and the states and profiles the same.
fn agree_to_end(
    code: &[MeInsn],
    maps: &MapSet,
    packets: &[Vec<u8>],
    thread: u8,
    budget: u64,
    profiled: bool,
) -> Result<(), String> {
    let (fast, mut r, mut f, mut pr, mut pf) = sides(code, maps, thread);
    let mut segs = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        if !start_both(&mut r, &mut f, i, p)? {
            continue;
        }
        segs.clear();
        let profile = profiled.then_some(pf.as_mut_slice());
        let got = f.with_mem(|t, mem| t.run_to_end_fast(&fast, mem, budget, profile, &mut segs));
        let mut want_segs = Vec::new();
        let want = loop {
            match r.resume(None, code, budget, profiled.then_some(&mut pr)) {
                Ok(Event::Swap {
                    busy_cycles,
                    wait_cycles,
                    ..
                }) => want_segs.push(Segment {
                    busy: busy_cycles,
                    wait: wait_cycles,
                }),
                e => break e,
            }
        };
        if got != want || segs != want_segs {
            return Err(format!(
                "packet {i}: reference {want:?} after {want_segs:?}, to the end {got:?} after {segs:?}"
            ));
        }
        same(&r, &f).map_err(|e| format!("packet {i} at its end: {e}"))?;
    }
    if pr != pf {
        return Err("profiles differ".into());
    }
    Ok(())
}

fn show(code: &[MeInsn]) -> String {
    crate::target::print_program(code)
}

/// Where a resume starts and its horizon: never passing, passing some swaps, passing all.
fn through_clock() -> impl Strategy<Value = (u64, u64)> {
    (0u64..1000).prop_flat_map(|at| {
        prop_oneof![
            Just((at, 0)),
            (at..at + 2000).prop_map(move |h| (at, h)),
            Just((at, u64::MAX)),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn fast_path_equals_reference_on_random_code(
        code in prop::collection::vec(
            prop_oneof![4 => insn(), 1 => wild_insn()], 1..48),
        packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 10..120), 1..3),
        thread in 0u8..THREADS_PER_ME,
        budget in prop_oneof![Just(400u64), 1u64..30],
        profiled in any::<bool>(),
        clock in through_clock(),
    ) {
        let maps = wild_maps();
        if let Err(e) = agree(&code, &maps, &packets, thread, budget, profiled) {
            prop_assert!(false, "{e}\n{}", show(&code));
        }
        if let Err(e) = agree_through(&code, &maps, &packets, thread, budget, clock, profiled) {
            prop_assert!(false, "through {clock:?}: {e}\n{}", show(&code));
        }
        if let Err(e) = agree_to_end(&code, &maps, &packets, thread, budget, profiled) {
            prop_assert!(false, "to the end: {e}\n{}", show(&code));
        }
    }
}

/// Random offloadable programs (loops, map helpers, packet access, atomics), compiled, on
/// random packets with prefilled maps: the realistic instruction mix nic-sim runs.
#[test]
fn fast_path_equals_reference_on_compiled_programs() {
    let cases = std::env::var("NFP_FAST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000u32);
    let nic = NicLimits::default();
    let strategy = (
        generate::spec(30, 128),
        prop::collection::vec(any::<u8>(), 1..=4),
        prop::collection::vec(any::<u8>(), 200),
        0u8..THREADS_PER_ME,
        any::<bool>(),
        through_clock(),
    );
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let compiled_n = AtomicUsize::new(0);
    let result = runner.run(&strategy, |(spec, lens, bytes, thread, profiled, clock)| {
        let program = spec.program();
        let Ok(compiled) = crate::compile::compile(&program, &nic) else {
            return Ok(());
        };
        compiled_n.fetch_add(1, Ordering::Relaxed);
        let mut maps = MapSet::new(&program.maps, 1).unwrap();
        // The hash map (fd 1) has 8-byte keys: prefill it so lookups hit as well as miss.
        let hash = maps.get_mut(1).unwrap();
        for k in 0..generate::HASH_FILLED {
            hash.user_update(&k.to_le_bytes(), &[k as u8 + 1; 16], 0)
                .unwrap();
        }
        let packets: Vec<Vec<u8>> = lens
            .iter()
            .map(|&l| {
                // Half the packets are long enough for every bounds check to pass.
                let len = if l % 2 == 0 {
                    200
                } else {
                    14 + usize::from(l) % 186
                };
                bytes[..len].to_vec()
            })
            .collect();
        agree(&compiled.code, &maps, &packets, thread, 100_000, profiled)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", show(&compiled.code))))?;
        agree_through(
            &compiled.code,
            &maps,
            &packets,
            thread,
            100_000,
            clock,
            profiled,
        )
        .map_err(|e| {
            TestCaseError::fail(format!("through {clock:?}: {e}\n{}", show(&compiled.code)))
        })?;
        agree_to_end(&compiled.code, &maps, &packets, thread, 100_000, profiled)
            .map_err(|e| TestCaseError::fail(format!("to the end: {e}\n{}", show(&compiled.code))))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        compiled_n.load(Ordering::Relaxed) > 0,
        "no generated program was offloadable"
    );
}

/// On x86-64 the demo filter's straight-line stretches become native blocks (see `jit`):
/// most of its instructions are inside one.
#[cfg(all(target_arch = "x86_64", unix))]
#[test]
fn demo_filter_is_mostly_native() {
    let prog = vm_core::demo::udp_filter();
    let c = crate::compile::compile(&prog, &NicLimits::default()).unwrap();
    let f = FastProgram::without_native(&c.code);
    assert_eq!(f.native_blocks(), 0);
    if std::env::var_os("NFP_NATIVE").is_some_and(|v| v == "0") {
        return;
    }
    let f = FastProgram::new(&c.code);
    assert!(f.native_blocks() >= 8, "{} blocks", f.native_blocks());
}

/// The pre-decoded form of the demo filter runs almost entirely fast.
#[test]
fn demo_filter_is_mostly_fast() {
    let prog = vm_core::demo::udp_filter();
    let c = crate::compile::compile(&prog, &NicLimits::default()).unwrap();
    let f = FastProgram::new(&c.code);
    assert!(
        f.fast_insns() * 10 >= c.code.len() * 9,
        "{} of {}",
        f.fast_insns(),
        c.code.len()
    );
}

/// A counted loop: `A0 = count`; each iteration adds to A2 and decrements A0 (with a few
/// straight-line adds so runs are longer than one op), then exits.
fn counted_loop(count: u32, body: usize) -> Vec<MeInsn> {
    use super::tests::{alu, ga, gb, set32};
    use crate::target::{AluOp, Cond, Dst, Src};
    let mut c = set32(0, count).to_vec();
    let top = c.len() as u16;
    for i in 0..body {
        c.push(alu(
            AluOp::Add,
            Dst::Both(2),
            ga(2),
            Src::Imm((i % 200) as u8 + 1),
        ));
    }
    c.push(alu(AluOp::Sub, Dst::Both(0), ga(0), Src::Imm(1)));
    c.push(MeInsn::Br {
        cond: Cond::Ne,
        target: top,
        defer: 0,
    });
    c.push(alu(AluOp::Add, Dst::Both(1), ga(2), gb(0)));
    c.push(MeInsn::Exit);
    c
}

/// Handler chains return to the driver every `CHUNK` instructions and resume exactly,
/// whatever the budget (including budgets that end inside a chunk or a run).
#[test]
fn long_loops_cross_chunks_exactly() {
    let pkt: Vec<u8> = (0..64).collect();
    for (count, body) in [(3000u32, 0usize), (700, 3), (5000, 1), (1, 300)] {
        let code = counted_loop(count, body);
        for budget in [100_000u64, 1023, 1024, 1025, 2048, 4097, 7, 1500] {
            for profiled in [false, true] {
                if let Err(e) = agree(
                    &code,
                    &MapSet::default(),
                    std::slice::from_ref(&pkt),
                    1,
                    budget,
                    profiled,
                ) {
                    panic!("count {count} body {body} budget {budget}: {e}");
                }
            }
        }
    }
}

/// Straight-line code longer than the longest run (`MAX_RUN`) is cut and stays exact.
#[test]
fn long_straight_line_code_is_cut_into_runs() {
    use super::fast_run::MAX_RUN;
    use super::tests::{alu, ga};
    use crate::target::{AluOp, Dst, Src};
    let n = 3 * usize::from(MAX_RUN) + 7;
    let mut code: Vec<MeInsn> = (0..n)
        .map(|i| alu(AluOp::Add, Dst::Both(2), ga(2), Src::Imm(i as u8)))
        .collect();
    code.push(MeInsn::Exit);
    let fast = FastProgram::new(&code);
    assert!(fast.hops.iter().all(|h| h.run <= MAX_RUN));
    assert!(fast.fast_insns() * 10 >= n * 9, "{}", fast.fast_insns());
    let pkt: Vec<u8> = (0..64).collect();
    for budget in [100_000u64, 300, 257, 256, 513] {
        agree(
            &code,
            &MapSet::default(),
            std::slice::from_ref(&pkt),
            2,
            budget,
            false,
        )
        .unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Random code with a large budget: loops in it run many chunks.
    #[test]
    fn fast_path_equals_reference_with_large_budgets(
        code in prop::collection::vec(
            prop_oneof![6 => insn(), 1 => wild_insn()], 1..40),
        packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 10..120), 1..2),
        thread in 0u8..THREADS_PER_ME,
        budget in 1000u64..6000,
    ) {
        let maps = wild_maps();
        if let Err(e) = agree(&code, &maps, &packets, thread, budget, false) {
            prop_assert!(false, "{e}\n{}", show(&code));
        }
    }
}
