//! One command for the side-by-side numbers: every stage against its peer, measured in one
//! run, written as a single table of ratios (`ratios.md`, `ratios.json`).
//!
//! ```text
//! cargo run --release -p benches --bin ratios -- [--out DIR] [--quick]
//! ```
//!
//! `DIR` defaults to `benches/results`. `--quick` shortens every measurement (a smoke run;
//! its numbers are noisier). The harness is [`benches::timing`] (median of a few batches of
//! at least 120 ms), not criterion, so the whole run takes well under three minutes; the
//! criterion benches (`cargo bench -p benches`) measure the same workloads in more depth.
//!
//! Peers: the rbpf 0.4 interpreter and JIT, and the running kernel's JIT
//! (`BPF_PROG_TEST_RUN`) and verifier (its own `verification time`). Where the kernel refuses
//! `bpf()`, its rows say SKIPPED after a loud notice; no figure is made up.

mod compile;
mod decode;
mod interp;
mod simulate;
mod verify;

use std::path::PathBuf;
use std::time::Instant;

use benches::corpus::VerifySet;
use benches::table::{Header, RATIO_MEANING, Row, Table};
use benches::timing::Budget;

/// Rows and remarks of one stage.
#[derive(Default)]
pub struct Stage {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

/// What every stage needs: the measuring budget and the corpus programs chosen once.
pub struct Context {
    pub budget: Budget,
    /// [`benches::corpus::verify_set`], or why it could not be built.
    pub verify_set: Result<VerifySet, String>,
}

struct Args {
    out: PathBuf,
    budget: Budget,
}

fn parse_args() -> Result<Args, String> {
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/results"));
    let mut budget = Budget::TABLE;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" | "-o" => {
                out = args.next().ok_or("--out needs a directory")?.into();
            }
            "--quick" => budget = Budget::QUICK,
            "-h" | "--help" => {
                return Err(
                    "usage: ratios [--out DIR] [--quick]\nwrites DIR/ratios.md and DIR/ratios.json"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(Args { out, budget })
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let command = format!(
        "cargo run --release -p benches --bin ratios --{}",
        std::env::args()
            .skip(1)
            .map(|a| format!(" {a}"))
            .collect::<String>()
    );
    let mut header = Header::collect(&command);
    eprintln!(
        "ratios: load average at start {} ({} CPUs, shared machine)",
        header.loadavg_start, header.cores
    );
    let kernel = benches::kernel::available();
    let mut notes = Vec::new();
    if let Err(e) = &kernel {
        notes.push(benches::kernel::skip("every kernel peer", e));
    }
    let verify_set = match benches::corpus::verify_set() {
        Ok((set, passed_over)) => {
            notes.extend(passed_over);
            Ok(set)
        }
        Err(e) => Err(e.to_string()),
    };
    let cx = Context {
        budget: args.budget,
        verify_set,
    };
    let mut rows = Vec::new();
    type StageFn = fn(&Context) -> Stage;
    let stages: [(&str, StageFn); 5] = [
        ("decode", decode::stage),
        ("interp", interp::stage),
        ("verify", verify::stage),
        ("compile", compile::stage),
        ("simulate", simulate::stage),
    ];
    for (name, run) in stages {
        let t = Instant::now();
        eprintln!("ratios: {name}...");
        let stage = run(&cx);
        eprintln!("ratios: {name} done in {:.1} s", t.elapsed().as_secs_f64());
        rows.extend(stage.rows);
        notes.extend(stage.notes);
    }
    header.finish(start.elapsed().as_secs_f64());
    let table = Table {
        header,
        ratio_meaning: RATIO_MEANING,
        rows,
        notes,
    };
    let md = table.to_markdown();
    if let Err(e) = std::fs::create_dir_all(&args.out)
        .and_then(|()| std::fs::write(args.out.join("ratios.md"), &md))
        .and_then(|()| std::fs::write(args.out.join("ratios.json"), table.to_json() + "\n"))
    {
        eprintln!("ratios: cannot write to {}: {e}", args.out.display());
        std::process::exit(1);
    }
    print!("{md}");
    eprintln!(
        "ratios: wrote {}/ratios.md and ratios.json in {:.0} s",
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
}
