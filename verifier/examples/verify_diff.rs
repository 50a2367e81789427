//! Our log next to the kernel's for one corpus program, to find where the walks part.
//!
//! ```text
//! cargo run --release -p verifier --example verify_diff -- <object under the corpus root> <function> [level] [outdir]
//! ```
//!
//! Loads the program as the verdict table says the kernel loaded it (same program type),
//! verifies it with ours at `level` (default 2) and loads it into the running kernel (root)
//! at level 2 through hw-tests' `verdicts::explain` (listing, maps, log); writes `ours.log` and `kernel.log` to `outdir` (default `/tmp`) and
//! prints both verdicts and summary lines.

use std::process::ExitCode;

use verifier::{VerifyOptions, verify};
use vm_core::ProgType;

const TSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../hw-tests/fixtures/kernel_verdicts.linux-6.18.tsv"
);

fn run(object: &str, function: &str, level: u32, outdir: &str) -> Result<(), String> {
    let tsv = std::fs::read_to_string(TSV).map_err(|e| format!("{TSV}: {e}"))?;
    let row: Vec<&str> = tsv
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| f.len() >= 11 && f[0] == object && f[2] == function)
        .ok_or_else(|| format!("{object} {function} is not in the verdict table"))?;
    let path = vm_core::corpus::root().join(object);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (obj, _) = vm_core::elf::load_object_lenient(&bytes).map_err(|e| e.to_string())?;
    let mut p = obj
        .programs
        .iter()
        .find(|p| p.name == function && p.section.as_deref() == Some(row[1]))
        .cloned()
        .ok_or_else(|| format!("{object} has no program {function}"))?;
    p.prog_type = match row[3] {
        "xdp" => ProgType::Xdp,
        "socket_filter" => ProgType::SocketFilter,
        _ => ProgType::SchedCls,
    };
    let opts = VerifyOptions {
        log_level: level,
        ..VerifyOptions::default()
    };
    let (ours, verdict) = match verify(&p, &opts) {
        Ok(v) => (v.log, "accepted".to_string()),
        Err(r) => (r.log, format!("rejected: {}", r.error)),
    };
    let ours_path = format!("{outdir}/ours.log");
    std::fs::write(&ours_path, &ours).map_err(|e| format!("{ours_path}: {e}"))?;
    println!("ours: {verdict}");
    if let Some(l) = ours.lines().rev().find(|l| l.starts_with("processed")) {
        println!("ours: {l}");
    }
    // The verdict tool's own loader: maps sized and frozen as the table was made.
    let klog = hw_tests::verdicts::explain(object, &bytes, function)
        .ok_or_else(|| format!("{object} has no function {function} for the kernel"))?;
    let kverdict = klog
        .lines()
        .find(|l| l.starts_with("ACCEPTED") || l.starts_with("REJECTED"))
        .unwrap_or("not loaded")
        .to_string();
    let kpath = format!("{outdir}/kernel.log");
    std::fs::write(&kpath, &klog).map_err(|e| format!("{kpath}: {e}"))?;
    println!("kernel: {kverdict}");
    if let Some(l) = klog.lines().rev().find(|l| l.starts_with("processed")) {
        println!("kernel: {l}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(object), Some(function)) = (args.first(), args.get(1)) else {
        eprintln!("usage: verify_diff <object> <function> [level] [outdir]");
        return ExitCode::from(2);
    };
    let level = args.get(2).and_then(|l| l.parse().ok()).unwrap_or(2);
    let outdir = args.get(3).map_or("/tmp", String::as_str);
    match run(object, function, level, outdir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
