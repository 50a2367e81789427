//! Differential test: all 313 bpf_conformance programs through the kernel's JIT
//! (`run_with_full_r0`'s harness, full 64-bit R0) and through vm-core's interpreter
//! (`ProgType::Mem`: r1 = the memory, r2 = its length). For every program the kernel accepts,
//! both must give the same R0 and leave the same memory behind. The kernel rejects 13
//! (KERNEL_BASELINE.linux-6.18.tsv): the out-of-range immediate shifts that RFC 9669 defines
//! as masked, and `callx`; they are listed with the kernel's reason.
//!
//! One libtest-mimic trial per file; the summary line `N of N accepted tests equal` is printed
//! before the trials run. All runs happen up front, so the table is complete even when a
//! filter selects a few trials.

use std::collections::BTreeSet;
use std::path::PathBuf;

use hw_tests::conformance::{ConformanceError, run_conformance};
use hw_tests::kernel::{LoadOptions, kernel_or_skip};
use libtest_mimic::{Arguments, Failed, Trial};
use vm_core::interp::{Vm, VmConfig};
use vm_core::testdata::TestFile;
use vm_core::{ProgType, Program, RawInsn};

/// What one engine did with one test.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// R0 and the memory after the run.
    Ran { r0: u64, mem: Vec<u8> },
    /// Refused before running (kernel verifier, or vm-core's loader), with the reason.
    Refused(String),
    /// Failed while running (or the harness broke).
    Failed(String),
}

struct Case {
    name: String,
    expected: Option<u64>,
    kernel: Outcome,
    vm: Outcome,
}

fn kernel_outcome(body: &[RawInsn], mem: &[u8]) -> Outcome {
    match run_conformance(body, mem, &LoadOptions::default()) {
        Ok(run) => Outcome::Ran {
            r0: run.r0,
            mem: run.mem_out,
        },
        Err(ConformanceError::Load(e)) => Outcome::Refused(format!(
            "errno {}: {}",
            e.errno,
            e.first_error_line
                .as_deref()
                .unwrap_or("no verifier message")
        )),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

fn vm_outcome(name: &str, body: &[RawInsn], mem: &[u8]) -> Outcome {
    let program = match Program::from_raw(name, ProgType::Mem, body) {
        Ok(p) => p,
        Err(e) => return Outcome::Refused(format!("decode: {e}")),
    };
    let mut vm = match Vm::new(&program, VmConfig::default()) {
        Ok(vm) => vm,
        Err(e) => return Outcome::Refused(format!("load: {e}")),
    };
    match vm.run(mem) {
        Ok(o) => Outcome::Ran {
            r0: o.retval,
            mem: o.packet,
        },
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

fn test_files() -> Vec<PathBuf> {
    let dir = vm_core::corpus::require("bpf_conformance/tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read bpf_conformance/tests")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        313,
        "bpf_conformance/tests should hold 313 files"
    );
    files
}

/// The files KERNEL_BASELINE.linux-6.18.tsv records as rejected at load.
fn baseline_rejected() -> BTreeSet<String> {
    let path = vm_core::corpus::require("bpf_conformance/KERNEL_BASELINE.linux-6.18.tsv");
    let text = std::fs::read_to_string(&path).expect("read the kernel baseline");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.get(3) == Some(&"load_rejected")).then(|| f[0].to_string())
        })
        .collect()
}

fn run_all() -> Vec<Case> {
    test_files()
        .iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let parsed = TestFile::parse_file(path).and_then(|t| t.program().map(|p| (t, p)));
            match parsed {
                Ok((t, body)) => Case {
                    kernel: kernel_outcome(&body, &t.mem),
                    vm: vm_outcome(&name, &body, &t.mem),
                    expected: t.result,
                    name,
                },
                Err(e) => Case {
                    kernel: Outcome::Failed(format!("does not assemble: {e}")),
                    vm: Outcome::Failed(format!("does not assemble: {e}")),
                    expected: None,
                    name,
                },
            }
        })
        .collect()
}

fn verdict(c: &Case) -> Result<(), String> {
    match (&c.kernel, &c.vm) {
        (Outcome::Ran { r0: k, mem: km }, Outcome::Ran { r0: v, mem: vm }) => {
            if k != v {
                Err(format!("R0: kernel {k:#x}, vm-core {v:#x}"))
            } else if km != vm {
                Err(format!(
                    "memory after the run: kernel {km:02x?}, vm-core {vm:02x?}"
                ))
            } else {
                Ok(())
            }
        }
        // The kernel refusing is not a divergence by itself; the summary checks the list.
        (Outcome::Refused(_), _) => Ok(()),
        (k, v) => Err(format!("kernel {k:?}, vm-core {v:?}")),
    }
}

fn summarize(cases: &[Case]) -> Result<(), String> {
    let accepted: Vec<&Case> = cases
        .iter()
        .filter(|c| matches!(c.kernel, Outcome::Ran { .. }))
        .collect();
    let equal = accepted.iter().filter(|c| verdict(c).is_ok()).count();
    let expected_ok = accepted
        .iter()
        .filter(|c| matches!(c.kernel, Outcome::Ran { r0, .. } if Some(r0) == c.expected))
        .count();
    println!(
        "bpf_conformance, kernel vs vm-core: {equal} of {} accepted tests equal (full 64-bit R0 and memory); \
         the kernel matches `-- result` on {expected_ok} of them",
        accepted.len()
    );
    let rejected: Vec<&Case> = cases
        .iter()
        .filter(|c| matches!(c.kernel, Outcome::Refused(_)))
        .collect();
    println!("rejected by the kernel ({}):", rejected.len());
    for c in &rejected {
        if let Outcome::Refused(why) = &c.kernel {
            let vm = match &c.vm {
                Outcome::Ran { r0, .. } => format!("vm-core r0 {r0:#x}"),
                other => format!("vm-core {other:?}"),
            };
            let rfc = match (c.expected, &c.vm) {
                (Some(e), Outcome::Ran { r0, .. }) if e == *r0 => " (= -- result)",
                _ => "",
            };
            println!("  {:<28} {why:<40} {vm}{rfc}", c.name);
        }
    }
    for c in cases {
        if let Err(e) = verdict(c) {
            println!("  DIFFERS {}: {e}", c.name);
        }
    }
    let got: BTreeSet<String> = rejected.iter().map(|c| c.name.clone()).collect();
    let want = baseline_rejected();
    if got != want {
        return Err(format!(
            "kernel-rejected tests differ from KERNEL_BASELINE: now {got:?}, baseline {want:?}"
        ));
    }
    if equal != accepted.len() {
        return Err(format!("{} accepted tests differ", accepted.len() - equal));
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    if !kernel_or_skip("diff_conformance") {
        let trial = Trial::test("kernel_oracle_unavailable", || Ok(()));
        libtest_mimic::run(&args, vec![trial]).exit();
    }
    let cases = if args.list { Vec::new() } else { run_all() };
    let summary = if args.list { Ok(()) } else { summarize(&cases) };
    let mut trials: Vec<Trial> = cases
        .into_iter()
        .map(|c| {
            let name = c.name.trim_end_matches(".data").to_string();
            Trial::test(name, move || verdict(&c).map_err(Failed::from))
        })
        .collect();
    trials.push(Trial::test("summary_and_kernel_rejections", move || {
        summary.clone().map_err(Failed::from)
    }));
    libtest_mimic::run(&args, trials).exit();
}
