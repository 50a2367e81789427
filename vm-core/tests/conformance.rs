//! Data-driven conformance of the reference interpreter: one test per corpus file.
//!
//! - `bpf_conformance/tests/*.data` (313 files): assemble, run as a `mem` program (r1 = a
//!   copy of `-- mem` or 0, r2 = its length), compare the full 64-bit r0 with `-- result`.
//! - uBPF `tests/**/*.data` with `-- result`: the same; files with `-- error` must fail to
//!   assemble, decode, load or run. Files that need uBPF-only helpers (ids 0..4 and the
//!   "unwind" meaning of 5), uBPF's VM reload API or its ELF template are listed as ignored
//!   with the reason, as are error files whose rejection is a *verifier* rule rather than a
//!   runtime condition.
//!
//! A missing corpus fails the run (it is never skipped silently).

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use vm_core::interp::{Vm, VmConfig};
use vm_core::testdata::TestFile;
use vm_core::{ProgType, Program, corpus};

/// uBPF files we do not run, with the reason (paths relative to `ubpf/tests`).
const UBPF_SKIPS: &[(&str, &str)] = &[
    (
        "helpers/call.data",
        "uses uBPF-only helper 0 (gather_bytes)",
    ),
    (
        "helpers/call-memfrob.data",
        "uses uBPF-only helper 1 (memfrob)",
    ),
    (
        "helpers/call-save.data",
        "uses uBPF-only helpers 0, 1 and 2",
    ),
    (
        "stack2.data",
        "uses uBPF-only helpers 0 (gather_bytes) and 1 (memfrob)",
    ),
    ("string-stack.data", "uses uBPF-only helper 4 (strcmp_ext)"),
    (
        "extensions/call_unwind.data",
        "relies on uBPF's 'unwind' meaning of helper 5 (Linux: ktime_get_ns)",
    ),
    ("reload.data", "tests uBPF's VM reload API"),
    ("unload_reload.data", "tests uBPF's VM unload/reload API"),
    (
        "errors/err-call0.data",
        "subprogram boundary rule is a verifier check; the program itself runs fine",
    ),
    (
        "errors/err-unknown-opcode.data",
        "opcode 0x06 is ja32 (gotol) in RFC 9669 / Linux, unknown only to older uBPF",
    ),
    (
        "errors/err-too-many-instructions.data",
        "uBPF's 65,536-instruction limit; Linux (and we) accept up to 1,000,000",
    ),
];

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();

    let conf = corpus::require("bpf_conformance/tests");
    let files = data_files(&conf);
    assert!(
        files.len() >= 313,
        "expected the 313 bpf_conformance tests, found {} in {}",
        files.len(),
        conf.display()
    );
    for path in files {
        let name = format!("bpf_conformance/{}", rel(&conf, &path));
        trials.push(Trial::test(name, move || run_expect_result(&path)));
    }

    let ubpf = corpus::require("ubpf/tests");
    for path in data_files(&ubpf) {
        let r = rel(&ubpf, &path);
        if r.starts_with("elf/") {
            continue; // pyelf files: uBPF's ELF template, not a program (FORMATS.md §2)
        }
        let name = format!("ubpf/{r}");
        if let Some((_, why)) = UBPF_SKIPS.iter().find(|(f, _)| *f == r) {
            trials.push(
                Trial::test(name, || Ok(()))
                    .with_ignored_flag(true)
                    .with_kind(format!("skip: {why}")),
            );
            continue;
        }
        let tf = match TestFile::parse_file(&path) {
            Ok(tf) => tf,
            Err(e) => {
                let msg = format!("{}: {e}", path.display());
                trials.push(Trial::test(name, move || Err(msg.into())));
                continue;
            }
        };
        if tf.error.is_some() {
            trials.push(Trial::test(name, move || run_expect_error(&path)));
        } else if tf.result.is_some() {
            trials.push(Trial::test(name, move || run_expect_result(&path)));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "data") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Assembles, loads and runs a test file as a `mem` program.
fn run(path: &Path) -> Result<(TestFile, Result<u64, String>), Failed> {
    let tf = TestFile::parse_file(path).map_err(|e| format!("parse: {e}"))?;
    let outcome = (|| {
        let raw = tf.program().map_err(|e| format!("assemble: {e}"))?;
        let prog =
            Program::from_raw("test", ProgType::Mem, &raw).map_err(|e| format!("decode: {e}"))?;
        let mut vm = Vm::new(&prog, VmConfig::default()).map_err(|e| format!("load: {e}"))?;
        vm.run(&tf.mem)
            .map(|o| o.retval)
            .map_err(|e| format!("run: {e}"))
    })();
    Ok((tf, outcome))
}

fn run_expect_result(path: &Path) -> Result<(), Failed> {
    let (tf, outcome) = run(path)?;
    let want = tf.result.ok_or("no -- result section")?;
    match outcome {
        Ok(got) if got == want => Ok(()),
        Ok(got) => Err(format!("r0 = {got:#x}, expected {want:#x}").into()),
        Err(e) => Err(format!("{e} (expected r0 = {want:#x})").into()),
    }
}

fn run_expect_error(path: &Path) -> Result<(), Failed> {
    let (tf, outcome) = run(path)?;
    match outcome {
        Err(_) => Ok(()),
        Ok(got) => Err(format!(
            "ran to completion with r0 = {got:#x}; expected an error like {:?}",
            tf.error.unwrap_or_default()
        )
        .into()),
    }
}
