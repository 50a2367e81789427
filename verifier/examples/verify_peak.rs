//! Peak memory and speed of one verification, for the record.
//!
//! ```text
//! cargo run --release -p verifier --example verify_peak -- <which> [--kernel]
//!   loop              a bounded loop the verifier walks ~1M instructions for (limit 1M)
//!   corpus-largest    the largest program (in instructions) the kernel accepts in the corpus
//!   corpus-heaviest   the corpus program whose kernel walk is longest
//!   loop=N            the loop with bound N
//!   corpus-all        every accepted corpus program of a modelled type (xdp, tc, socket): total time and µs per processed insn,
//!                     next to the kernel's own `verification time` from the verdict table;
//!                     `--each` also prints one line per program (ours vs the kernel's processed count);
//!                     `--sample=N` verifies every N-th program only (for profiling)
//!   corpus-kernel     the same programs loaded into the running kernel (root) at log level 4
//!                     (statistics only, the kernel's cheapest logging), `--repeat=N` times each:
//!                     the kernel's summed `verification time` (best of N per program) next to
//!                     ours (best of N, thread CPU)
//! ```
//!
//! Prints processed instructions, wall time, µs per processed instruction and the process's
//! peak RSS (`VmHWM` from /proc/self/status) before and after verifying. With `--kernel`,
//! also loads the program into the running kernel (root) at log level 4 (stats only) and prints its
//! processed count and its own `verification time`. Wrap in `/usr/bin/time -v` for an
//! external view of the peak.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hw_tests::kernel::{LoadOptions, VmLoadError, load_vm_program};
use verifier::{VerifyOptions, verify};
use vm_core::{ProgType, Program};

const TSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../hw-tests/fixtures/kernel_verdicts.linux-6.18.tsv"
);

/// Iterations of the default loop: 8 instructions per iteration, so ~960k processed.
const LOOP_BOUND: u64 = 119_900;

/// CPU time of this thread (the machine is shared, so wall time overstates our cost).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// `r1` counts to `bound`; each value of `r1` is a new state, so nothing prunes and the
/// verifier walks every iteration (as the kernel does for a constant-bounded loop).
fn loop_program(bound: u64) -> Result<Program, String> {
    let text = format!(
        "mov r0, 0\nmov r1, 0\nmov r2, 0\nl1:\nadd r0, r1\nxor r0, 3\nmov r2, r0\nand r2, 255\nrsh r0, 1\nadd r0, r2\nadd r1, 1\njlt r1, {bound}, l1\nmov r0, 0\nexit"
    );
    let raw = vm_core::asm::assemble(&text).map_err(|e| e.to_string())?;
    Program::from_raw("loop", ProgType::Xdp, &raw).map_err(|e| e.to_string())
}

/// The accepted corpus program with the most instructions (`by_processed`: with the
/// longest kernel walk), loaded as the verdict table says the kernel loaded it.
fn corpus_program(by_processed: bool) -> Result<(Program, String), String> {
    let tsv = std::fs::read_to_string(TSV).map_err(|e| format!("{TSV}: {e}"))?;
    let mut best: Option<(u64, Vec<&str>)> = None;
    for line in tsv.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 11 || f[6] != "accepted" || !modelled(f[3]) {
            continue;
        }
        let key: u64 = f[if by_processed { 9 } else { 8 }].parse().unwrap_or(0);
        if best.as_ref().is_none_or(|b| key > b.0) {
            best = Some((key, f));
        }
    }
    let (_, f) = best.ok_or("no accepted program in the verdict table")?;
    let path = vm_core::corpus::root().join(f[0]);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (obj, _) = vm_core::elf::load_object_lenient(&bytes).map_err(|e| e.to_string())?;
    let mut p = obj
        .programs
        .iter()
        .find(|p| p.name == f[2] && p.section.as_deref() == Some(f[1]))
        .or_else(|| obj.programs.iter().find(|p| p.name == f[2]))
        .cloned()
        .ok_or_else(|| format!("{} has no program {}", f[0], f[2]))?;
    p.prog_type = prog_type(f[3]);
    let license = obj.license.unwrap_or_else(|| "GPL".to_string());
    println!(
        "program: {} {} {} ({} insns; kernel table: {} processed, {} us at log level 5)",
        f[0], f[1], f[2], f[8], f[9], f[10]
    );
    Ok((p, license))
}

/// Verifies every program the verdict table marks accepted; compares with the kernel's
/// processed counts and verification times recorded there (log level 5, one run each).
fn corpus_all(each: bool, sample: usize) -> Result<(), String> {
    let tsv = std::fs::read_to_string(TSV).map_err(|e| format!("{TSV}: {e}"))?;
    let mut objects: BTreeMap<&str, Vec<Vec<&str>>> = BTreeMap::new();
    for line in tsv.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() >= 11 && f[6] == "accepted" && modelled(f[3]) {
            objects.entry(f[0]).or_default().push(f);
        }
    }
    let (mut n, mut agree, mut ours_processed, mut kernel_processed) = (0u64, 0u64, 0u64, 0u64);
    let mut seen = 0usize;
    let (mut ours_time, mut kernel_us) = (Duration::ZERO, 0u64);
    for (object, rows) in &objects {
        let path = vm_core::corpus::root().join(object);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (obj, _) = vm_core::elf::load_object_lenient(&bytes).map_err(|e| e.to_string())?;
        for f in rows {
            let Some(p) = obj
                .programs
                .iter()
                .find(|p| p.name == f[2] && p.section.as_deref() == Some(f[1]))
            else {
                continue;
            };
            seen += 1;
            if !(seen - 1).is_multiple_of(sample) {
                continue;
            }
            let mut p = p.clone();
            p.prog_type = prog_type(f[3]);
            let t = thread_cpu();
            let r = verify(&p, &VerifyOptions::default());
            ours_time += thread_cpu() - t;
            n += 1;
            if let Err(e) = &r
                && n - agree <= 15
            {
                println!("  we refuse {object} {} {}: {}", f[1], f[2], e.error);
            }
            if each && let Ok(v) = &r {
                println!(
                    "each\t{object}\t{}\t{}\tours {}\tkernel {}\tstates {}\tmax/insn {}\tcpu_us {}",
                    f[1],
                    f[2],
                    v.processed_insns,
                    f[9],
                    v.stats.total_states,
                    v.stats.max_states_per_insn,
                    (thread_cpu() - t).as_micros()
                );
            }
            if let Ok(v) = &r {
                agree += 1;
                ours_processed += v.processed_insns;
                kernel_processed += f[9].parse::<u64>().unwrap_or(0);
                kernel_us += f[10].parse::<u64>().unwrap_or(0);
            }
        }
    }
    println!(
        "corpus-all: {n} programs the kernel accepts, we accept {agree}; ours (thread cpu) {:.1} ms for {ours_processed} processed insns ({:.3} us/insn); kernel {:.1} ms for {kernel_processed} ({:.3} us/insn, log level 5)",
        ours_time.as_secs_f64() * 1e3,
        ours_time.as_secs_f64() * 1e6 / ours_processed.max(1) as f64,
        kernel_us as f64 / 1e3,
        kernel_us as f64 / kernel_processed.max(1) as f64
    );
    println!("VmHWM: {} KiB", status_kib("VmHWM:"));
    Ok(())
}

/// The kernel's and our verification time over every accepted corpus program, each the
/// best of `repeat` runs (the machine is shared: the minimum is the least disturbed).
fn corpus_kernel(repeat: usize, each: bool) -> Result<(), String> {
    let tsv = std::fs::read_to_string(TSV).map_err(|e| format!("{TSV}: {e}"))?;
    let cpus = u32::try_from(hw_tests::kernel::possible_cpus()).unwrap_or(1);
    let (mut n, mut k_us, mut k_processed, mut ours, mut ours_processed) =
        (0u64, 0u64, 0u64, Duration::ZERO, 0u64);
    let mut ours_wall = Duration::ZERO;
    let mut by_object: BTreeMap<&str, Vec<Vec<&str>>> = BTreeMap::new();
    for line in tsv.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() >= 11 && f[6] == "accepted" && modelled(f[3]) {
            by_object.entry(f[0]).or_default().push(f);
        }
    }
    for (object, rows) in &by_object {
        let path = vm_core::corpus::root().join(object);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (obj, _) = vm_core::elf::load_object_lenient(&bytes).map_err(|e| e.to_string())?;
        for f in rows {
            let Some(p) = obj
                .programs
                .iter()
                .find(|p| p.name == f[2] && p.section.as_deref() == Some(f[1]))
            else {
                continue;
            };
            let mut p = only_referenced_maps(p);
            p.prog_type = prog_type(f[3]);
            // What the verdict table's loader does to maps before creating them.
            for m in &mut p.maps {
                match m.map_type {
                    vm_core::MapType::PerfEventArray => {
                        if m.max_entries == 0 {
                            m.max_entries = cpus;
                        }
                        if m.key_size == 0 {
                            m.key_size = 4;
                        }
                        if m.value_size == 0 {
                            m.value_size = 4;
                        }
                    }
                    vm_core::MapType::Ringbuf => {
                        m.key_size = 0;
                        m.value_size = 0;
                    }
                    _ => {}
                }
            }
            let opts = LoadOptions {
                log_level: 4,
                license: obj.license.clone().unwrap_or_else(|| "GPL".to_string()),
                freeze_rodata: true,
                ..LoadOptions::default()
            };
            let (mut best_k, mut kp) = (u64::MAX, 0u64);
            let mut best_ours = Duration::MAX;
            let mut best_wall = Duration::MAX;
            let mut op = 0;
            for _ in 0..repeat {
                match load_vm_program(&p, &opts) {
                    Ok(l) => {
                        best_k = best_k.min(l.prog.stats.verification_time_us.unwrap_or(0));
                        kp = l.prog.stats.insns_processed.unwrap_or(0);
                    }
                    Err(e) => {
                        println!("  kernel did not load {object} {}: {e}", f[2]);
                        break;
                    }
                }
                let (t, w) = (thread_cpu(), Instant::now());
                let r = verify(&p, &VerifyOptions::default());
                best_ours = best_ours.min(thread_cpu() - t);
                best_wall = best_wall.min(w.elapsed());
                op = r.map_or(0, |v| v.processed_insns);
            }
            if best_k == u64::MAX {
                continue;
            }
            if each {
                println!(
                    "each\t{object}\t{}\tkernel_us {best_k}\tkernel_processed {kp}\tours_us {}\tours_processed {op}",
                    f[2],
                    best_ours.as_micros()
                );
            }
            n += 1;
            k_us += best_k;
            k_processed += kp;
            ours += best_ours;
            ours_wall += best_wall;
            ours_processed += op;
        }
    }
    println!(
        "corpus-kernel: {n} programs; kernel {:.1} ms (wall, its own clock) for {k_processed} processed insns ({:.3} us/insn, log level 4); ours {:.1} ms thread CPU / {:.1} ms wall for {ours_processed} ({:.3} us/insn CPU); ours/kernel time {:.3} (CPU) {:.3} (wall)",
        k_us as f64 / 1e3,
        k_us as f64 / k_processed.max(1) as f64,
        ours.as_secs_f64() * 1e3,
        ours_wall.as_secs_f64() * 1e3,
        ours.as_secs_f64() * 1e6 / ours_processed.max(1) as f64,
        ours.as_secs_f64() * 1e6 / k_us.max(1) as f64,
        ours_wall.as_secs_f64() * 1e6 / k_us.max(1) as f64
    );
    Ok(())
}

/// The program with only the maps it refers to (renumbered): the loader creates every map
/// of the list, and some objects also declare maps the kernel cannot create without BTF.
fn only_referenced_maps(p: &Program) -> Program {
    use vm_core::isa::{Insn, LdImm64};
    let mut q = p.clone();
    let mut new_index: BTreeMap<i32, i32> = BTreeMap::new();
    q.maps.clear();
    for insn in &mut q.insns {
        if let Insn::LdImm64 {
            value: LdImm64::MapFd(fd) | LdImm64::MapValue { fd, .. },
            ..
        } = insn
        {
            let next = new_index.len() as i32;
            let idx = *new_index.entry(*fd).or_insert_with(|| {
                if let Some(d) = usize::try_from(*fd).ok().and_then(|i| p.maps.get(i)) {
                    q.maps.push(d.clone());
                }
                next
            });
            *fd = idx;
        }
    }
    q
}

/// The program types this verifier models (others it refuses by design).
fn modelled(name: &str) -> bool {
    matches!(name, "xdp" | "sched_cls" | "socket_filter")
}

fn prog_type(name: &str) -> ProgType {
    match name {
        "xdp" => ProgType::Xdp,
        "socket_filter" => ProgType::SocketFilter,
        _ => ProgType::SchedCls,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map_or("loop", String::as_str);
    if which == "corpus-kernel" {
        let repeat = args
            .iter()
            .find_map(|a| a.strip_prefix("--repeat="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1usize)
            .max(1);
        return match corpus_kernel(repeat, args.iter().any(|a| a == "--each")) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if which == "corpus-all" {
        let sample = args
            .iter()
            .find_map(|a| a.strip_prefix("--sample="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1usize)
            .max(1);
        return match corpus_all(args.iter().any(|a| a == "--each"), sample) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let with_kernel = args.iter().any(|a| a == "--kernel");
    let hwm_start = status_kib("VmHWM:");
    let loaded = match which {
        "corpus-largest" => corpus_program(false),
        "corpus-heaviest" => corpus_program(true),
        w => {
            let bound = w
                .strip_prefix("loop=")
                .and_then(|n| n.parse().ok())
                .unwrap_or(LOOP_BOUND);
            println!("program: bounded loop to {bound}");
            loop_program(bound).map(|p| (p, "GPL".to_string()))
        }
    };
    let (program, license) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let hwm_before = status_kib("VmHWM:");
    let t = Instant::now();
    let cpu0 = thread_cpu();
    let result = verify(&program, &VerifyOptions::default());
    let cpu = thread_cpu() - cpu0;
    let wall = t.elapsed();
    let hwm_after = status_kib("VmHWM:");
    let (verdict, processed) = match &result {
        Ok(v) => ("accepted".to_string(), v.processed_insns),
        Err(r) => (format!("rejected: {}", r.error), r.processed_insns),
    };
    println!("ours: {verdict}");
    if let Ok(v) = &result {
        print!("ours: {}", v.log);
    }
    println!(
        "ours: processed_insns {processed}, wall {:.3} ms ({:.3} us per processed insn), cpu {:.3} ms ({:.3} us per processed insn)",
        wall.as_secs_f64() * 1e3,
        wall.as_secs_f64() * 1e6 / processed.max(1) as f64,
        cpu.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e6 / processed.max(1) as f64
    );
    println!(
        "VmHWM: {hwm_start} KiB at start, {hwm_before} KiB after loading, {hwm_after} KiB after verifying (+{} KiB)",
        hwm_after.saturating_sub(hwm_before)
    );
    if with_kernel {
        let opts = LoadOptions {
            // Stats only: at level 1 the kernel formats every instruction of the current path
            // (and rewinds the log at each pruning), which inflates its time several-fold.
            log_level: 4,
            license,
            ..LoadOptions::default()
        };
        match load_vm_program(&program, &opts) {
            Ok(l) => {
                println!(
                    "kernel: accepted, processed {:?}, verification time {:?} us",
                    l.prog.stats.insns_processed, l.prog.stats.verification_time_us
                );
                for line in l.prog.log.lines().filter(|l| l.starts_with("processed")) {
                    println!("kernel: {line}");
                }
            }
            Err(VmLoadError::Load(e)) => println!(
                "kernel: rejected errno {} {:?}, processed {:?}, verification time {:?} us",
                e.errno, e.first_error_line, e.stats.insns_processed, e.stats.verification_time_us
            ),
            Err(e) => println!("kernel: not loaded: {e}"),
        }
    }
    ExitCode::SUCCESS
}
