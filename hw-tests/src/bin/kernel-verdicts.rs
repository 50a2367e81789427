//! Regenerates hw-tests/fixtures/kernel_verdicts.linux-6.18.tsv: the running kernel's verdict
//! on every program of the staged ELF corpora (see `hw_tests::verdicts`). Needs root.
//!
//! ```text
//! cargo run -p hw-tests --release --bin kernel-verdicts -- > hw-tests/fixtures/kernel_verdicts.linux-6.18.tsv
//! cargo run -p hw-tests --release --bin kernel-verdicts -- --only cilium-core   # a subset
//! ```
//!
//! The table goes to stdout; progress, the summary and the elapsed time go to stderr.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use hw_tests::verdicts::{
    LOG_LEVEL, Summary, corpus_objects, kernel_release, object_verdicts, write_header, write_row,
};

/// Prints the program and the kernel's level-2 log of one table row.
fn explain_one(object: &str, function: &str) -> ExitCode {
    let root = vm_core::corpus::root();
    let bytes = match std::fs::read(root.join(object)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("kernel-verdicts: {object}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match hw_tests::verdicts::explain(object, &bytes, function) {
        Some(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("kernel-verdicts: {object} has no loadable function `{function}`");
            ExitCode::FAILURE
        }
    }
}

const REGENERATE: &str = "cargo run -p hw-tests --release --bin kernel-verdicts -- > hw-tests/fixtures/kernel_verdicts.linux-6.18.tsv";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--only")
        .map(|w| w[1].as_str())
        .collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("usage: kernel-verdicts [--only SUBSTRING]... > table.tsv");
        eprintln!("       kernel-verdicts --explain OBJECT FUNCTION   (disassembly + level-2 log)");
        return ExitCode::SUCCESS;
    }
    if let Err(reason) = hw_tests::kernel::oracle() {
        eprintln!("kernel-verdicts: the kernel oracle is unavailable: {reason}");
        return ExitCode::FAILURE;
    }
    if let [flag, object, function] = args.as_slice()
        && flag == "--explain"
    {
        return explain_one(object, function);
    }
    let root = vm_core::corpus::root();
    let objects = match corpus_objects(&root) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "kernel-verdicts: cannot list the corpus at {}: {e}",
                root.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let objects: Vec<_> = objects
        .into_iter()
        .filter(|(rel, _)| only.is_empty() || only.iter().any(|o| rel.contains(o)))
        .collect();
    let start = Instant::now();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let comments = [
        "The kernel's verdict on every program of ebpf-samples (*.o) and cilium-ebpf (little-endian ELF);"
            .to_string(),
        "programs linked by vm-core's ELF loader, maps created without BTF. See hw-tests/src/verdicts/."
            .to_string(),
        format!("Regenerate (as root): {REGENERATE}"),
        format!(
            "kernel {}; log_level {LOG_LEVEL}; verif_usec varies from run to run.",
            kernel_release()
        ),
    ];
    let mut rows = Vec::new();
    let mut write = || -> std::io::Result<()> {
        write_header(&mut out, &comments)?;
        for (i, (rel, path)) in objects.iter().enumerate() {
            let t = Instant::now();
            let bytes = std::fs::read(path)?;
            let object_rows = object_verdicts(rel, &bytes);
            for r in &object_rows {
                write_row(&mut out, r)?;
            }
            out.flush()?;
            eprintln!(
                "[{:>3}/{}] {rel}: {} programs in {:.2} s",
                i + 1,
                objects.len(),
                object_rows.len(),
                t.elapsed().as_secs_f64()
            );
            rows.extend(object_rows);
        }
        Ok(())
    };
    if let Err(e) = write() {
        eprintln!("kernel-verdicts: {e}");
        return ExitCode::FAILURE;
    }
    eprint!("{}", Summary::of(&rows).render());
    eprintln!(
        "{} objects, {} rows in {:.1} s",
        objects.len(),
        rows.len(),
        start.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
