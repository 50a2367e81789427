//! Differential testing of the vm-core interpreter against the kernel (verifier + JIT +
//! `BPF_PROG_TEST_RUN`) on random XDP programs from `hw_tests::generator`.
//!
//! Every generated program must load: a kernel rejection is a generator bug and fails the
//! test with the verifier log. Each case compares the low 32 bits of r0, the output packet
//! and every map (including the dump of all ten registers). A divergence is shrunk and
//! written to `hw-tests/regressions/` (asm + packet + what differed); every committed file
//! there is replayed first, by its own test.
//!
//! Environment: `DIFF_RANDOM_CASES` (default 10000), `DIFF_RANDOM_SEED` (default fixed, so
//! CI runs are reproducible), `DIFF_RANDOM_NO_SAVE=1` to not write regression files;
//! for investigations `DIFF_RANDOM_HEAVY` (verifier-work threshold of the "heavy case"
//! report, default 200000) with `DIFF_RANDOM_HEAVY_DIR` (write those cases there as
//! regression-format files), and the ignored `explain_regression` test.
//!
//! Kernel bugs found this way are documented in `regressions/KERNEL_BUGS.md`, pinned by the
//! `kernel_6_18_*` tests below (and in `kernel_zext.rs`: zero-extension lost on pruned paths)
//! and avoided by the generator.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hw_tests::engine::{
    Comparison, Engine, EngineResult, EngineRun, InterpEngine, KernelEngine, TestInput, compare,
};
use hw_tests::generator::coverage::Tally;
use hw_tests::generator::regression::Regression;
use hw_tests::generator::{GenConfig, case_strategy, lower};
use hw_tests::kernel::{LoadOptions, VmLoadError, load_vm_program, log_level};
use hw_tests::require_kernel;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use vm_core::Program;
use vm_core::asm::{Syntax, disassemble};
use vm_core::interp::VmConfig;

const DEFAULT_CASES: u32 = 10_000;

/// Verifier work above which a case is reported: the generator's size limits are meant to
/// keep every program far from the kernel's 1M limit.
const HEAVY_VERIFIER_WORK: u64 = 200_000;

thread_local! {
    /// `processed N insns` of every program loaded by this thread (for the summary).
    static VERIFIER_WORK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Median, 99th percentile and maximum of the verifier's work so far on this thread.
fn verifier_work_summary() -> String {
    VERIFIER_WORK.with(|w| {
        let mut v = w.borrow().clone();
        if v.is_empty() {
            return "verifier work: none recorded".into();
        }
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
        format!(
            "verifier work (processed insns): median {} p99 {} max {} (limit 1000000)",
            at(0.5),
            at(0.99),
            at(1.0)
        )
    })
}
const DEFAULT_SEED: u64 = 0x0ff1_0ad5_eed5;

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions")
}

/// Writes to the real stderr: libtest captures `eprintln!` of passing tests, and the
/// summary (cases, time, coverage) is what CI logs are read for.
fn report(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Why a case failed.
#[derive(Debug)]
enum Failure {
    /// The kernel refused a generated program: a generator bug.
    Rejected { error: String, log: String },
    /// The interpreter refused to load or run the program or the input.
    InterpRefused(String),
    /// Something failed that should not (map creation, the test run syscall).
    Fault(String),
    /// The engines disagree.
    Diverge {
        what: String,
        detail: String,
        kernel: Box<EngineRun>,
        interp: Box<EngineRun>,
    },
}

impl Failure {
    fn summary(&self) -> String {
        match self {
            Failure::Rejected { error, .. } => {
                format!("kernel rejected a generated program: {error}")
            }
            Failure::InterpRefused(e) => format!("interpreter refused: {e}"),
            Failure::Fault(e) => format!("fault: {e}"),
            Failure::Diverge { what, detail, .. } => format!("{what} differs: {detail}"),
        }
    }

    /// Register-level detail of a divergence: r0..r9 from both dumps, side by side.
    fn explain(&self) -> String {
        let Failure::Diverge { kernel, interp, .. } = self else {
            return match self {
                Failure::Rejected { log, .. } => format!("verifier log (tail):\n{}", tail(log, 60)),
                _ => String::new(),
            };
        };
        let (Ok(k), Ok(i)) = (&kernel.result, &interp.result) else {
            return format!("kernel: {:?}\ninterp: {:?}", kernel.result, interp.result);
        };
        let mut s = format!(
            "retval kernel {:#x} (32-bit) interp {:#x}\n",
            k.retval, i.retval
        );
        let (kr, ir) = (dumped_regs(k), dumped_regs(i));
        for r in 0..10 {
            let mark = if kr.get(r) != ir.get(r) {
                "  <-- differs"
            } else {
                ""
            };
            s.push_str(&format!(
                "r{r}: kernel {:#018x} interp {:#018x}{mark}\n",
                kr.get(r).copied().unwrap_or(0),
                ir.get(r).copied().unwrap_or(0)
            ));
        }
        if k.packet != i.packet {
            s.push_str(&format!(
                "packet kernel {}\npacket interp {}\n",
                hex(&k.packet),
                hex(&i.packet)
            ));
        }
        if let (Some(km), Some(im)) = (&k.maps, &i.maps) {
            for (a, b) in km.iter().zip(im) {
                if a != b && a.name != "regs" {
                    s.push_str(&format!(
                        "map {}:\n  kernel {:?}\n  interp {:?}\n",
                        a.name, a.entries, b.entries
                    ));
                }
            }
        }
        s
    }
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn dumped_regs(r: &EngineResult) -> Vec<u64> {
    r.maps
        .as_ref()
        .and_then(|m| m.iter().find(|s| s.name == "regs"))
        .and_then(|s| s.entries.first())
        .map(|(_, v)| {
            v.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        })
        .unwrap_or_default()
}

/// Loads `program` in the kernel and `interp_program` (normally the same) in the
/// interpreter, runs both on `packet`.
fn run_both(
    program: &Program,
    interp_program: &Program,
    packet: &[u8],
) -> Result<(EngineRun, EngineRun), Failure> {
    // Statistics only (no trace): cheap, and gives the verifier's work for the summary.
    let fast = LoadOptions {
        log_level: log_level::STATS,
        ..LoadOptions::default()
    };
    let loaded = match load_vm_program(program, &fast) {
        Ok(l) => {
            let n = l.prog.stats.insns_processed.unwrap_or(0);
            VERIFIER_WORK.with(|w| w.borrow_mut().push(n));
            l
        }
        Err(VmLoadError::Load(e)) => {
            let log = match load_vm_program(program, &LoadOptions::default()) {
                Err(VmLoadError::Load(e)) => e.log,
                Ok(_) => "(accepted when reloaded with a log)".into(),
                Err(other) => other.to_string(),
            };
            return Err(Failure::Rejected {
                error: e.to_string(),
                log,
            });
        }
        Err(e) => return Err(Failure::Fault(e.to_string())),
    };
    let mut kernel = KernelEngine::from_loaded(loaded);
    let mut interp = InterpEngine::new(interp_program, VmConfig::default())
        .map_err(|e| Failure::InterpRefused(e.to_string()))?;
    let input = TestInput::packet(packet.to_vec());
    let k = EngineRun {
        engine: kernel.name().to_string(),
        result: kernel.run(&input),
    };
    let i = EngineRun {
        engine: interp.name().to_string(),
        result: interp.run(&input),
    };
    Ok((k, i))
}

/// Runs `program` on both engines and compares.
fn check(program: &Program, packet: &[u8]) -> Result<(), Failure> {
    let (k, i) = run_both(program, program, packet)?;
    verdict(k, i)
}

fn verdict(k: EngineRun, i: EngineRun) -> Result<(), Failure> {
    match compare(&k, &i) {
        Comparison::Agree => Ok(()),
        Comparison::Refused { engine, reason } => Err(Failure::InterpRefused(format!(
            "{engine} refused: {reason}"
        ))),
        Comparison::Diverge(d) => Err(Failure::Diverge {
            what: d.what,
            detail: d.detail,
            kernel: Box::new(k),
            interp: Box::new(i),
        }),
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// FNV-1a, to name regression files by their content.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Replays every `regressions/*.txt`: (files replayed, failures).
fn replay_regressions() -> (usize, Vec<String>) {
    let dir = regressions_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("regression directory {} unreadable: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .file_stem()
            .map_or("regression".into(), |s| s.to_string_lossy().into_owned());
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let r =
            Regression::parse(&name, &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(f) = check(&r.program, &r.packet) {
            failures.push(format!(
                "{}: {}\n{}",
                path.display(),
                f.summary(),
                f.explain()
            ));
        }
    }
    (files.len(), failures)
}

#[test]
fn committed_regressions_agree() {
    require_kernel!("committed_regressions_agree");
    let (n, failures) = replay_regressions();
    report(&format!(
        "diff_random: replayed {n} regression files, {} still failing\n",
        failures.len()
    ));
    if !failures.is_empty() {
        open_divergences(&failures.join("\n"));
    }
}

/// A divergence between the interpreter and the kernel fails the test. Each one is kept as a
/// regression file until fixed; divergences where the kernel is wrong go to
/// `regressions/KERNEL_BUGS.md` with a pin test and a generator workaround instead.
/// `DIFF_RANDOM_LENIENT=1` only reports them (for investigations, never in CI).
fn open_divergences(text: &str) {
    let lenient = std::env::var("DIFF_RANDOM_LENIENT").is_ok_and(|v| v == "1");
    report(&format!(
        "DIFF_RANDOM DIVERGENCES (interpreter vs kernel):\n{text}\n"
    ));
    assert!(lenient, "{text}");
}

#[test]
fn random_programs_agree_with_the_kernel() {
    require_kernel!("random_programs_agree_with_the_kernel");
    let cases =
        env_u64("DIFF_RANDOM_CASES").map_or(DEFAULT_CASES, |c| c.min(u64::from(u32::MAX)) as u32);
    let seed = env_u64("DIFF_RANDOM_SEED").unwrap_or(DEFAULT_SEED);
    // Known failures first: a committed regression that still fails says more than a new
    // random case would.
    let (_, failures) = replay_regressions();
    if !failures.is_empty() {
        open_divergences(&format!(
            "committed regressions fail (see committed_regressions_agree):\n{}",
            failures.join("\n")
        ));
    }
    if cases == 0 {
        return;
    }
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        max_shrink_time: 120_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let tally = RefCell::new(Tally::default());
    let failed = Cell::new(false);
    let runs = Cell::new(0u64);
    let heavy = RefCell::new(Vec::new());
    let start = Instant::now();
    let result = runner.run(&case_strategy(&GenConfig::default()), |(recipe, packet)| {
        runs.set(runs.get() + 1);
        let lowered = lower(&recipe, "diff_random")
            .map_err(|e| TestCaseError::fail(format!("lowering failed: {e}")))?;
        if !failed.get() {
            tally.borrow_mut().add(&lowered);
        }
        let result = check(&lowered.program, &packet).map_err(|f| {
            failed.set(true);
            TestCaseError::fail(f.summary())
        });
        let work = VERIFIER_WORK.with(|w| w.borrow().last().copied().unwrap_or(0));
        if work > env_u64("DIFF_RANDOM_HEAVY").unwrap_or(HEAVY_VERIFIER_WORK) && !failed.get() {
            if let Ok(dir) = std::env::var("DIFF_RANDOM_HEAVY_DIR") {
                let r = Regression {
                    notes: vec![format!("{work} insns processed")],
                    program: lowered.program.clone(),
                    packet: packet.clone(),
                };
                let _ = std::fs::write(
                    Path::new(&dir).join(format!("heavy-{work}.txt")),
                    r.to_text(),
                );
            }
            heavy.borrow_mut().push(format!(
                "{work} insns processed, features {:?}\n{recipe:?}",
                lowered.features
            ));
        }
        result
    });
    let elapsed = start.elapsed();
    let t = tally.borrow();
    report(&format!(
        "diff_random: seed {seed:#x}, {} cases ({} runs incl. shrinking) in {:.1}s ({:.2} ms per case)\n{}\n{}",
        t.programs,
        runs.get(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / runs.get().max(1) as f64,
        verifier_work_summary(),
        t.report()
    ));
    for h in heavy.borrow().iter() {
        report(&format!("heavy case (over {HEAVY_VERIFIER_WORK}): {h}\n"));
    }
    match result {
        Ok(()) => {}
        Err(TestError::Abort(why)) => panic!("proptest aborted: {why}"),
        Err(TestError::Fail(reason, (recipe, packet))) => {
            let lowered = lower(&recipe, "diff_random").expect("lowered before");
            let failure = check(&lowered.program, &packet).err();
            let asm = disassemble(&lowered.program.insns, Syntax::Conformance);
            let explain = failure.as_ref().map(Failure::explain).unwrap_or_default();
            let mut saved = String::new();
            if let Some(f @ Failure::Diverge { .. }) | Some(f @ Failure::InterpRefused(_)) =
                &failure
            {
                saved = save_regression(&lowered.program, &packet, seed, f, elapsed);
            }
            let text = format!(
                "seed {seed:#x}: {reason}\n{saved}\nminimal program ({} slots):\n{asm}\npacket ({} bytes): {}\n{explain}",
                lowered.program.insns.len(),
                packet.len(),
                hex(&packet)
            );
            match failure {
                Some(Failure::Diverge { .. }) | Some(Failure::InterpRefused(_)) => {
                    open_divergences(&text)
                }
                _ => panic!("generator bug or harness fault: {text}"),
            }
        }
    }
}

fn save_regression(
    program: &Program,
    packet: &[u8],
    seed: u64,
    f: &Failure,
    _: Duration,
) -> String {
    let r = Regression {
        notes: vec![
            format!("diff_random divergence: {}", f.summary()),
            format!("found with DIFF_RANDOM_SEED={seed:#x}, shrunk by proptest"),
            f.explain().trim_end().to_string(),
        ],
        program: program.clone(),
        packet: packet.to_vec(),
    };
    let text = r.to_text();
    if std::env::var("DIFF_RANDOM_NO_SAVE").is_ok_and(|v| v == "1") {
        return "(not saved: DIFF_RANDOM_NO_SAVE=1)".into();
    }
    let kind = match f {
        Failure::Diverge { what, .. } => what.replace(' ', "-"),
        _ => "refused".into(),
    };
    let path = regressions_dir().join(format!("{kind}-{:016x}.txt", fnv(&text)));
    match std::fs::write(&path, &text) {
        Ok(()) => format!("saved as {}", path.display()),
        Err(e) => format!("could not save {}: {e}", path.display()),
    }
}

/// The comparison has teeth: generated programs compute varied, non-trivial results
/// (registers, packets, maps), and a one-constant change in the interpreter's copy of a
/// program is reported as a divergence.
#[test]
fn random_cases_are_not_trivial_and_differences_are_caught() {
    require_kernel!("random_cases_are_not_trivial_and_differences_are_caught");
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = case_strategy(&GenConfig::default());
    let n = 300;
    let (mut dumps, mut retvals) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    let (mut pkt_changed, mut arr_written, mut hash_filled, mut caught) = (0, 0, 0, 0);
    for _ in 0..n {
        let (recipe, packet) = strategy.new_tree(&mut runner).expect("generates").current();
        let program = lower(&recipe, "sanity").expect("lowers").program;
        let (k, _) =
            run_both(&program, &program, &packet).unwrap_or_else(|f| panic!("{}", f.summary()));
        let k = k.result.expect("kernel runs");
        dumps.insert(dumped_regs(&k));
        retvals.insert(k.retval);
        pkt_changed += usize::from(k.packet != packet);
        let maps = k.maps.clone().unwrap_or_default();
        arr_written +=
            usize::from(maps.iter().any(|m| {
                m.name == "arr" && m.entries.iter().any(|(_, v)| v.iter().any(|&b| b != 0))
            }));
        hash_filled += usize::from(
            maps.iter()
                .any(|m| m.name == "hash" && !m.entries.is_empty()),
        );
        // Corrupt the interpreter's copy: r9's initial value changes (it is dumped at exit
        // unless the program overwrote it, so most cases must notice).
        let mut other = program.clone();
        if let Some(pos) = other.insns.iter().rposition(|i| {
            matches!(
                i,
                vm_core::isa::Insn::Alu {
                    dst: 9,
                    op: vm_core::isa::AluOp::Mov,
                    src: vm_core::isa::Operand::Imm(_),
                    ..
                }
            )
        }) {
            if let vm_core::isa::Insn::Alu {
                src: vm_core::isa::Operand::Imm(v),
                ..
            } = &mut other.insns[pos]
            {
                *v = v.wrapping_add(1);
            }
            let (k2, i2) =
                run_both(&program, &other, &packet).unwrap_or_else(|f| panic!("{}", f.summary()));
            caught += usize::from(verdict(k2, i2).is_err());
        }
    }
    report(&format!(
        "diff_random sanity over {n} cases: {} distinct register dumps, {} distinct retvals, packet changed in {pkt_changed}, arr written in {arr_written}, hash filled in {hash_filled}, corrupted copies caught {caught}\n",
        dumps.len(),
        retvals.len()
    ));
    assert!(
        dumps.len() > n * 8 / 10,
        "register dumps too uniform: {}",
        dumps.len()
    );
    assert!(
        retvals.len() > n * 2 / 3,
        "retvals too uniform: {}",
        retvals.len()
    );
    assert!(
        pkt_changed > n / 4 && arr_written > n / 6 && hash_filled > n / 6,
        "too few cases touch the packet or the maps"
    );
    assert!(
        caught > 0,
        "a corrupted interpreter program was never noticed"
    );
}

/// Investigation aid: `DIFF_RANDOM_EXPLAIN=path/to/file.txt cargo test --test diff_random
/// explain_regression -- --ignored --nocapture` prints the verifier log and the kernel's
/// translated code (dead-code removal and branch rewriting show up there) of one file.
#[test]
#[ignore = "investigation aid; needs DIFF_RANDOM_EXPLAIN"]
fn explain_regression() {
    require_kernel!("explain_regression");
    let Ok(path) = std::env::var("DIFF_RANDOM_EXPLAIN") else {
        panic!("set DIFF_RANDOM_EXPLAIN to a regression file");
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let r = Regression::parse("explain", &text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let opts = LoadOptions {
        log_level: log_level::VERBOSE,
        ..LoadOptions::default()
    };
    let loaded = match load_vm_program(&r.program, &opts) {
        Ok(l) => l,
        Err(VmLoadError::Load(e)) => {
            println!("{}", e.log);
            panic!("{e}");
        }
        Err(e) => panic!("{e}"),
    };
    println!("{}", loaded.prog.log);
    let info = hw_tests::kernel::prog_info(&loaded.prog.fd).expect("prog info");
    let xlated = vm_core::isa::decode_program(&info.xlated).expect("xlated decodes");
    println!(
        "xlated:\n{}",
        vm_core::asm::disassemble(&xlated, Syntax::Kernel)
            .lines()
            .enumerate()
            .map(|(i, l)| format!("{i:4}: {l}\n"))
            .collect::<String>()
    );
    match check(&r.program, &r.packet) {
        Ok(()) => println!("engines agree"),
        Err(f) => println!("{}\n{}", f.summary(), f.explain()),
    }
}

/// The program behind the generator's stack-atomic workaround (see `scrub_stack_slot` in
/// `src/gen/lower/memory.rs`): `fp-8` holds 0 or 1 depending on the first packet byte, an
/// atomic fetch-add of 0 reads it back, and the result decides r0. `scrub` inserts the
/// workaround (rewrite one byte of the slot with itself) before the atomic.
fn atomic_fetch_precision_program(scrub: bool) -> Program {
    let scrub_text = if scrub {
        "ldxb %r5, [%r10-8]\nstxb [%r10-8], %r5\n"
    } else {
        ""
    };
    let skip = if scrub { 12 } else { 10 };
    let text = format!(
        "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 1\njgt %r4, %r3, +{skip}\n\
         ldxb %r6, [%r2+0]\nstdw [%r10-8], 0\njeq %r6, 0, +1\nstdw [%r10-8], 1\nmov %r4, 0\n\
         {scrub_text}lock fetch add [%r10-8], %r4\nmov %r0, 2\njeq %r4, 1, +1\nmov %r0, 1\nexit\n\
         mov %r0, 0\nexit\n"
    );
    let raw = vm_core::asm::assemble(&text).expect("assembles");
    Program::from_raw("atomic_fetch", vm_core::ProgType::Xdp, &raw).expect("decodes")
}

/// Pins a Linux 6.18 verifier bug the random test found (as a 105-slot shrunk case where a
/// loop stored different constants into a stack slot that a fetch-add later read); see
/// `regressions/KERNEL_BUGS.md` §1.
///
/// Precision backtracking handles `BPF_STX | BPF_ATOMIC` with `BPF_FETCH` as if it were a
/// spill of the source register into the slot: when the fetched register must be precise,
/// it marks the *source register's previous value* precise instead of the stack slot the
/// value came from. Here the verifier first walks the path where `fp-8 = 1`, finds
/// `r4 == 1` always true, and marks only the `mov %r4, 0` chain precise. When it then
/// reaches the join with `fp-8 = 0`, the slot is not precise, so the state is pruned as
/// equivalent; the fall-through `mov %r0, 1` is never visited and is removed as dead code.
/// At run time with packet byte 0 the kernel returns 2 where the ISA says 1. vm-core is
/// right. If this test starts failing on the kernel's side, the kernel was fixed: drop the
/// workaround in the generator and this pin.
#[test]
fn kernel_6_18_atomic_fetch_from_stack_spill_is_not_precise() {
    require_kernel!("kernel_6_18_atomic_fetch_from_stack_spill_is_not_precise");
    let zero = vec![0u8; 14];
    let mut five = zero.clone();
    five[0] = 5;
    let retvals = |p: &Program, pkt: &[u8]| {
        let (k, i) = run_both(p, p, pkt).unwrap_or_else(|f| panic!("{}", f.summary()));
        (
            k.result.expect("kernel runs").retval,
            i.result.expect("interp runs").retval,
        )
    };
    let buggy = atomic_fetch_precision_program(false);
    assert_eq!(
        retvals(&buggy, &five),
        (2, 2),
        "fp-8 = 1: both take the branch"
    );
    assert_eq!(
        retvals(&buggy, &zero),
        (2, 1),
        "fp-8 = 0: the ISA result is 1 (the interpreter); Linux 6.18 pruned that path and \
         returns 2. If the kernel now says 1, the verifier bug is fixed."
    );
    let scrubbed = atomic_fetch_precision_program(true);
    assert_eq!(retvals(&scrubbed, &five), (2, 2));
    assert_eq!(
        retvals(&scrubbed, &zero),
        (1, 1),
        "with the slot rewritten bytewise first, the kernel is sound again"
    );
}

/// Pins a second Linux 6.18 verifier bug the random test found (two shrunk cases, both
/// indexed stack accesses inside a subprogram); see `regressions/KERNEL_BUGS.md` §2.
///
/// For `dst += src` with a scalar `dst` and a stack pointer `src`, the verifier turns `dst`
/// into the pointer but keeps `dst`'s stale frame number: `r0 = 0; r0 += r10` inside a
/// subprogram yields a pointer the verifier attributes to frame 0 (its log prints
/// `R0=fp[0]0`). Accesses through it are checked and predicted against the *caller's*
/// stack. Here the caller's `fp-8` holds -1 and the callee's 0: the verifier predicts the
/// loaded byte is 255, hard-wires `jeq r0, 0` as never taken and removes `mov r0, 7`; at
/// run time the byte is 0 and the kernel returns 0 where the ISA says 7. The `p = r10;
/// p += scalar` form is handled correctly. (The variant whose stale frame no longer exists
/// oopses the kernel and is deliberately not run.) If this test starts failing on the
/// kernel's side, the bug is fixed: drop the workaround in `lower_indexed` and this pin.
#[test]
fn kernel_6_18_scalar_plus_fp_in_subprogram_points_to_frame_0() {
    require_kernel!("kernel_6_18_scalar_plus_fp_in_subprogram_points_to_frame_0");
    let program = |scalar_plus_pointer: bool| {
        let addr = if scalar_plus_pointer {
            "mov %r0, 0\nadd %r0, %r10\n"
        } else {
            "mov %r1, 0\nmov %r0, %r10\nadd %r0, %r1\n"
        };
        let text = format!(
            "stdw [%r10-8], -1\ncall local +1\nexit\n\
             stdw [%r10-8], 0\n{addr}ldxb %r0, [%r0-8]\njeq %r0, 0, +1\nexit\nmov %r0, 7\nexit\n"
        );
        let raw = vm_core::asm::assemble(&text).expect("assembles");
        Program::from_raw("frame_confusion", vm_core::ProgType::Xdp, &raw).expect("decodes")
    };
    let retvals = |p: &Program| {
        let (k, i) = run_both(p, p, &[0u8; 14]).unwrap_or_else(|f| panic!("{}", f.summary()));
        (
            k.result.expect("kernel runs").retval,
            i.result.expect("interp runs").retval,
        )
    };
    assert_eq!(
        retvals(&program(true)),
        (0, 7),
        "the ISA result is 7 (the interpreter); Linux 6.18 predicts the caller's byte and \
         returns 0. If the kernel now says 7, the verifier bug is fixed."
    );
    assert_eq!(
        retvals(&program(false)),
        (7, 7),
        "pointer += scalar is handled correctly"
    );
}

/// Pins a third Linux 6.18 verifier bug the random test found (committed by the lead as
/// `retval-d228d18f1e8ea551.txt` while it was an open divergence); see
/// `regressions/KERNEL_BUGS.md` §3.
///
/// BPF defines a 32-bit cmpxchg as always loading the old value into r0, zero-extended;
/// x86's `cmpxchg` leaves rax untouched when the comparison succeeds, so the kernel adds a
/// zero-extension after it, but only when the verifier saw r0 read as 64 bits. Here that
/// read (`rsh %r0, 32`) is reached first through `add32 %r0, %r0` (which redefines r0) and
/// the direct path from the cmpxchg is pruned at the join: no zero-extension is inserted
/// and, with packet byte 0, the kernel returns the stale upper half (1) where the ISA says
/// 0. A `mov %r0, %r0` right after the cmpxchg (the generator's workaround) restores it.
#[test]
fn kernel_6_18_cmpxchg32_zext_lost_on_pruned_path() {
    require_kernel!("kernel_6_18_cmpxchg32_zext_lost_on_pruned_path");
    let program = |workaround: bool| {
        let read64 = if workaround { "mov %r0, %r0\n" } else { "" };
        let skip = if workaround { 12 } else { 11 };
        let text = format!(
            "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 1\njgt %r4, %r3, +{skip}\n\
             ldxb %r6, [%r2+0]\nstdw [%r10-8], 0\nldxb %r5, [%r10-8]\nstxb [%r10-8], %r5\n\
             lddw %r0, 0x100000000\nlock cmpxchg32 [%r10-8], %r0\n{read64}jeq %r6, 0, +1\n\
             add32 %r0, %r0\nrsh %r0, 32\nexit\nmov %r0, 7\nexit\n"
        );
        let raw = vm_core::asm::assemble(&text).expect("assembles");
        Program::from_raw("cmpxchg32_zext", vm_core::ProgType::Xdp, &raw).expect("decodes")
    };
    let retvals = |p: &Program, first: u8| {
        let mut pkt = vec![0u8; 14];
        pkt[0] = first;
        let (k, i) = run_both(p, p, &pkt).unwrap_or_else(|f| panic!("{}", f.summary()));
        (
            k.result.expect("kernel runs").retval,
            i.result.expect("interp runs").retval,
        )
    };
    assert_eq!(retvals(&program(false), 5), (0, 0));
    assert_eq!(
        retvals(&program(false), 0),
        (1, 0),
        "the ISA result is 0 (the interpreter); Linux 6.18 keeps r0's old upper half. If the \
         kernel now says 0, the bug is fixed: drop the workaround in lower_mem and this pin."
    );
    assert_eq!(
        retvals(&program(true), 0),
        (0, 0),
        "the workaround restores the zero-extension"
    );
}
