//! Soundness against the running kernel: safe programs are mutated in one place each (packet
//! access past the checked range, stack out of bounds, map value out of bounds, missing NULL
//! check, uninitialised reads, bad context accesses, forbidden pointer arithmetic, pointer
//! leaks, ...), and every variant is verified by us and loaded into the kernel.
//!
//! The claim tested is one-sided, the one that matters for safety: we never accept what the
//! kernel refuses for a safety reason (`EACCES`). Refusing more than the kernel is allowed
//! (and listed). Then every program we accept runs in the interpreter on random packets and
//! must never fault: "accepted ⇒ no memory fault at run time".
//!
//! The unprivileged profile is checked against the kernel too: `unprivileged_bpf_disabled` is
//! 2 on our machines, so a truly unprivileged load is impossible; instead one thread lowers its
//! effective capabilities to CAP_BPF only (no CAP_PERFMON, CAP_SYS_ADMIN, CAP_NET_ADMIN). The
//! kernel then verifies with `allow_ptr_leaks`, `allow_uninit_stack` and the Spectre bypasses
//! off — the restrictions of an unprivileged load — while still allowing loops and calls.
//! Spectre v1 sanitation is not modelled by our verifier (see `lib.rs`); kernel refusals
//! that name `!root` are counted apart and do not fail the test. CAP_BPF also makes this
//! kernel profile a little more permissive than a truly unprivileged one (it tracks spilled
//! scalars, which needs `bpf_capable`), so "we refuse, kernel accepts" is expected there.

use std::collections::BTreeMap;

use hw_tests::kernel::{LoadOptions, VmLoadError, kernel_or_skip, kernel_verdict, load_vm_program};
use verifier::{VerifyOptions, verify};
use vm_core::interp::{RunError, Vm, VmConfig};
use vm_core::{MapDef, MapType, ProgType, Program};

#[path = "soundness/bounds.rs"]
mod bounds;
#[path = "soundness/memory.rs"]
mod memory;
#[path = "soundness/mutations.rs"]
mod mutations;
#[path = "soundness/pointers.rs"]
mod pointers;

use mutations::{Gen, KINDS, Profile, Rng};

/// Unsafe variants generated per run (each also yields its safe twin).
const VARIANTS: usize = 4500;
/// Interpreter runs per accepted program.
const RUNS_PER_PROGRAM: usize = 4;

fn maps() -> Vec<MapDef> {
    let def = |name: &str, map_type, key_size, value_size, max_entries| MapDef {
        name: name.to_string(),
        map_type,
        key_size,
        value_size,
        max_entries,
        flags: 0,
        initial_value: None,
    };
    vec![
        def("hash", MapType::Hash, 8, 16, 64),
        def("array", MapType::Array, 4, 48, 4),
        def("rb", MapType::Ringbuf, 0, 0, 4096),
    ]
}

/// The Linux capability numbers lowered for the unprivileged profile.
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Lowers this thread's effective capabilities (capabilities are per thread in Linux, so the
/// rest of the test process keeps root).
fn lower_caps(caps: &[u32]) -> Result<(), String> {
    let mut h = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // SAFETY: capget writes one header and two data structs, both owned here.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut CapHeader, d.as_mut_ptr()) };
    if r != 0 {
        return Err(format!("capget: {}", std::io::Error::last_os_error()));
    }
    for c in caps {
        d[(c / 32) as usize].effective &= !(1 << (c % 32));
    }
    // SAFETY: capset reads the header and two data structs.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut CapHeader, d.as_ptr()) };
    if r != 0 {
        return Err(format!("capset: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// One generated program and its verdicts.
struct Case {
    kind: &'static str,
    is_variant: bool,
    profile: Profile,
    text: String,
    program: Program,
    ours: Result<u64, (i32, String)>,
    kernel: Option<Result<(), (i32, String)>>,
}

fn kernel_load(p: &Program) -> Result<(), (i32, String)> {
    // The Spectre refusal is the log's last word, but a speculative path checked before it
    // can print an error-looking line first (seen: "invalid access to map value ... off=-2"
    // two lines above "... prohibited for !root"), so `!root` is looked for in the whole log.
    kernel_verdict(p).map_err(|e| {
        let spectre = e.log.lines().find(|l| l.contains("!root"));
        let line = spectre.map(str::to_string).or(e.first_error_line);
        (e.errno, line.unwrap_or_default())
    })
}

/// Loads every unprivileged case from one thread running with CAP_BPF only. An error (with
/// the reason) when the capability drop does not give the unprivileged verifier.
fn load_unprivileged(cases: &mut [&mut Case]) -> Result<(), String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            lower_caps(&[CAP_SYS_ADMIN, CAP_PERFMON, CAP_NET_ADMIN])?;
            // Probe: an uninitialised stack read is refused only without CAP_PERFMON.
            let raw =
                vm_core::asm::assemble("ldxdw r0, [r10-8]\nexit").map_err(|e| e.to_string())?;
            let probe = Program::from_raw("probe", ProgType::SocketFilter, &raw)
                .map_err(|e| e.to_string())?;
            match kernel_load(&probe) {
                Err((e, _)) if e == libc::EACCES => {}
                other => return Err(format!("capability drop ineffective: probe gave {other:?}")),
            }
            for c in cases.iter_mut() {
                c.kernel = Some(kernel_load(&c.program));
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err("unprivileged loader thread panicked".to_string()))
    })
}

#[derive(Default)]
struct Row {
    generated: usize,
    kernel_rejects: usize,
    we_reject: usize,
    agree: usize,
    unsound: usize,
    unsound_spectre: usize,
    unsound_other_errno: usize,
    stricter: usize,
}

/// Random packet of 0..=1514 bytes, tiny ones frequent.
fn packet(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(10) {
        0..=2 => rng.below(21),
        3..=6 => rng.below(129),
        _ => rng.below(1515),
    } as usize;
    (0..len).map(|_| rng.next() as u8).collect()
}

#[test]
fn unsafe_variants_are_never_accepted_when_the_kernel_refuses_them() {
    if !kernel_or_skip("unsafe_variants_are_never_accepted_when_the_kernel_refuses_them") {
        return;
    }
    let seed = std::env::var("SOUNDNESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x50_0d_5e_ed_u64);
    let mut rng = Rng(seed);
    let t0 = std::time::Instant::now();
    let mut cases = Vec::new();
    for i in 0..VARIANTS {
        let kind = &KINDS[i % KINDS.len()];
        let profile = *rng.pick(kind.profiles);
        // The same seed for the twin: same filler, same parameters, only the mutation differs.
        let twin_seed = rng.next() | 1;
        for is_variant in [true, false] {
            let mut g = Gen::new(twin_seed, profile);
            let text = g.program(kind, is_variant);
            let raw = match vm_core::asm::assemble(&text) {
                Ok(r) => r,
                Err(e) => panic!("generator produced bad assembly ({e}):\n{text}"),
            };
            let mut program = match Program::from_raw(kind.name, profile.prog_type(), &raw) {
                Ok(p) => p,
                Err(e) => panic!("generator produced undecodable code ({e}):\n{text}"),
            };
            program.maps = maps();
            let opts = VerifyOptions {
                privileged: profile.privileged(),
                ..VerifyOptions::default()
            };
            let ours = verify(&program, &opts)
                .map(|v| v.processed_insns)
                .map_err(|r| (r.error.errno.code(), r.error.message.clone()));
            cases.push(Case {
                kind: kind.name,
                is_variant,
                profile,
                text,
                program,
                ours,
                kernel: None,
            });
        }
    }
    let t_ours = t0.elapsed();
    for c in cases.iter_mut().filter(|c| c.profile.privileged()) {
        c.kernel = Some(kernel_load(&c.program));
    }
    let mut unpriv: Vec<&mut Case> = cases
        .iter_mut()
        .filter(|c| !c.profile.privileged())
        .collect();
    let unpriv_total = unpriv.len();
    let unpriv_status = load_unprivileged(&mut unpriv);
    if let Err(why) = &unpriv_status {
        println!("UNPRIVILEGED KERNEL LOADS SKIPPED ({unpriv_total} programs): {why}");
    }
    let t_kernel = t0.elapsed() - t_ours;

    // Verdict comparison.
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut stricter_examples: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut spectre_examples = Vec::new();
    // Safe twins the kernel refuses anyway (the mutation site was not the only hazard).
    let mut twin_rejections: BTreeMap<String, usize> = BTreeMap::new();
    for c in &cases {
        let Some(kernel) = &c.kernel else { continue };
        let key = if c.is_variant {
            format!("{} [{}]", c.kind, c.profile.name())
        } else {
            format!("(safe twin) [{}]", c.profile.name())
        };
        if !c.is_variant
            && let Err((_, line)) = kernel
        {
            let msg: String = line
                .chars()
                .map(|ch| if ch.is_ascii_digit() { '#' } else { ch })
                .take(70)
                .collect();
            *twin_rejections
                .entry(format!("{} [{}]: {msg}", c.kind, c.profile.name()))
                .or_default() += 1;
        }
        let row = rows.entry(key).or_default();
        row.generated += 1;
        row.kernel_rejects += usize::from(kernel.is_err());
        row.we_reject += usize::from(c.ours.is_err());
        row.agree += usize::from(kernel.is_err() == c.ours.is_err());
        match (&c.ours, kernel) {
            (Ok(_), Err((errno, line))) => {
                if line.contains("!root") {
                    row.unsound_spectre += 1;
                    if spectre_examples.len() < 3 {
                        spectre_examples.push(format!("kernel: {line}\n{}", c.text));
                    }
                } else if *errno == libc::EACCES {
                    row.unsound += 1;
                    failures.push(format!(
                        "WE ACCEPT, KERNEL REFUSES ({} [{}], errno {errno}): {line}\n{}",
                        c.kind,
                        c.profile.name(),
                        c.text
                    ));
                } else {
                    row.unsound_other_errno += 1;
                    failures.push(format!(
                        "WE ACCEPT, KERNEL REFUSES with errno {errno} ({} [{}]): {line}\n{}",
                        c.kind,
                        c.profile.name(),
                        c.text
                    ));
                }
            }
            (Err((_, ours)), Ok(())) => {
                row.stricter += 1;
                let ex = stricter_examples.entry(c.kind.to_string()).or_default();
                if ex.len() < 2 {
                    ex.push(format!("ours: {ours}\n{}", c.text));
                }
            }
            _ => {}
        }
    }
    println!(
        "{:<38} {:>6} {:>7} {:>7} {:>6} {:>10} {:>8}",
        "mutation [profile]", "gen", "k-rej", "we-rej", "agree", "acc/k-rej", "rej/k-acc"
    );
    let mut total = Row::default();
    for (k, r) in &rows {
        println!(
            "{k:<38} {:>6} {:>7} {:>7} {:>6} {:>10} {:>8}",
            r.generated,
            r.kernel_rejects,
            r.we_reject,
            r.agree,
            if r.unsound_spectre + r.unsound_other_errno > 0 {
                format!(
                    "{}+{}s+{}o",
                    r.unsound, r.unsound_spectre, r.unsound_other_errno
                )
            } else {
                r.unsound.to_string()
            },
            r.stricter
        );
        total.generated += r.generated;
        total.kernel_rejects += r.kernel_rejects;
        total.we_reject += r.we_reject;
        total.agree += r.agree;
        total.unsound += r.unsound;
        total.unsound_spectre += r.unsound_spectre;
        total.unsound_other_errno += r.unsound_other_errno;
        total.stricter += r.stricter;
    }
    println!(
        "{:<38} {:>6} {:>7} {:>7} {:>6} {:>10} {:>8}",
        "TOTAL",
        total.generated,
        total.kernel_rejects,
        total.we_reject,
        total.agree,
        format!(
            "{}+{}s+{}o",
            total.unsound, total.unsound_spectre, total.unsound_other_errno
        ),
        total.stricter
    );
    println!("(acc/k-rej: EACCES + Spectre-sanitation `!root` + other errno)");
    for (k, ex) in &stricter_examples {
        for e in ex {
            println!("WE REJECT, KERNEL ACCEPTS ({k}): {e}");
        }
    }
    for (k, n) in &twin_rejections {
        println!("safe twin refused by the kernel too: {n:4}  {k}");
    }
    for e in &spectre_examples {
        println!("SPECTRE SANITATION (not modelled): {e}");
    }
    for f in failures.iter().take(20) {
        println!("{f}");
    }

    // Accepted ⇒ no fault, over every program we accept (safe twins and variants).
    let t1 = std::time::Instant::now();
    let (mut runs, mut bad_input, mut ok_runs) = (0usize, 0usize, 0usize);
    let mut faults = Vec::new();
    let config = VmConfig {
        budget: 1_000_000,
        ..VmConfig::default()
    };
    for c in cases.iter().filter(|c| c.ours.is_ok()) {
        let mut vm = match Vm::new(&c.program, config.clone()) {
            Ok(vm) => vm,
            Err(e) => panic!("interpreter refused an accepted program ({e}):\n{}", c.text),
        };
        for _ in 0..RUNS_PER_PROGRAM {
            let pkt = packet(&mut rng);
            runs += 1;
            match vm.run(&pkt) {
                Ok(_) => ok_runs += 1,
                Err(RunError::BadInput(_)) => bad_input += 1,
                Err(e) => {
                    if faults.len() < 10 {
                        faults.push(format!(
                            "{e} on a {}-byte packet ({} [{}]):\n{}",
                            pkt.len(),
                            c.kind,
                            c.profile.name(),
                            c.text
                        ));
                    }
                }
            }
        }
    }
    for f in &faults {
        println!("RUN FAULT: {f}");
    }
    println!(
        "ACCEPTED => NO FAULT: {runs} runs of {} accepted programs: {ok_runs} completed, {bad_input} bad input (packet below the type's minimum), {} faults",
        cases.iter().filter(|c| c.ours.is_ok()).count(),
        runs - ok_runs - bad_input
    );
    println!(
        "SOUNDNESS: {} programs ({} variants); ours {t_ours:?}, kernel {t_kernel:?}, runs {:?}",
        cases.len(),
        cases.iter().filter(|c| c.is_variant).count(),
        t1.elapsed()
    );
    assert!(
        ok_runs >= 10_000,
        "only {ok_runs} completed interpreter runs"
    );
    assert!(faults.is_empty(), "accepted programs faulted at run time");
    assert_eq!(
        total.unsound, 0,
        "we accepted programs the kernel refuses with EACCES"
    );
}

/// Triage aid: `SOUNDNESS_PROGRAM=file.asm [SOUNDNESS_TYPE=xdp|tc|sock] [SOUNDNESS_UNPRIV=1]`
/// verifies one program (with this test's maps) at log level 2 and loads it into the kernel.
#[test]
fn one_program_from_env() {
    let Ok(path) = std::env::var("SOUNDNESS_PROGRAM") else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let t = match std::env::var("SOUNDNESS_TYPE").as_deref() {
        Ok("tc") => ProgType::SchedCls,
        Ok("sock") => ProgType::SocketFilter,
        _ => ProgType::Xdp,
    };
    let unpriv = std::env::var("SOUNDNESS_UNPRIV").is_ok();
    let Ok(raw) = vm_core::asm::assemble(&text) else {
        panic!("bad assembly");
    };
    let Ok(mut p) = Program::from_raw("one", t, &raw) else {
        panic!("bad code");
    };
    p.maps = maps();
    let opts = VerifyOptions {
        log_level: 2,
        privileged: !unpriv,
        ..VerifyOptions::default()
    };
    match verify(&p, &opts) {
        Ok(v) => println!("OURS: accept\n{}", v.log),
        Err(r) => println!("OURS: {}\n{}", r.error, r.log),
    }
    if kernel_or_skip("one_program_from_env") {
        let opts = LoadOptions {
            log_level: 2,
            ..LoadOptions::default()
        };
        let k = match load_vm_program(&p, &opts) {
            Ok(l) => format!("accept\n{}", l.prog.log),
            Err(VmLoadError::Load(e)) => format!("errno {}\n{}", e.errno, e.log),
            Err(e) => format!("setup: {e}"),
        };
        println!("KERNEL: {k}");
    }
}
