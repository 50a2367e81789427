//! `offload report PROG [-o DIR]`: everything a person needs to decide whether a program
//! belongs on the NIC, on one page: offloadable or not and why (with the C source line where
//! BTF line info exists), eBPF against NFP instruction counts, zero-extension savings,
//! modeled throughput against the number of MEs with the line rates drawn in, a latency
//! histogram and the hottest instructions by cycles. Writes `DIR/index.html` (charts as SVG
//! files beside it) and `DIR/report.json` (the same data).
//!
//! Exit codes: 0 when the program is offloadable and every simulated frame agrees with the
//! interpreter; 1 when it is not offloadable or a frame disagrees (the report is written
//! either way); 2 for bad input (unreadable program or traffic, unknown `--nic`) or an
//! unwritable DIR.

mod charts;
mod collect;
mod hints;
mod html;
mod model;

use std::path::{Path, PathBuf};

use crate::{GlobalOpts, exit::CliError, json as out};

pub use model::Report;

/// Options of `offload report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Program (ELF, .s/.asm, .data or raw).
    pub prog: PathBuf,
    /// Output directory (created if missing); default: `<program name>-report`.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Simulated NIC: agilio-cx (alias nfp-4000), agilio-cx-40, or custom:...
    #[arg(long, default_value = "agilio-cx")]
    pub nic: String,
    /// Frames from a pcap or pcapng file (default: synthetic traffic, see --traffic).
    #[arg(long, conflicts_with = "traffic")]
    pub pcap: Option<PathBuf>,
    /// Synthetic traffic spec (as `offload sim --traffic`).
    #[arg(long, default_value = collect::DEFAULT_TRAFFIC)]
    pub traffic: String,
    /// Frames simulated for each point of the scaling curve (the first N of the traffic).
    #[arg(long, default_value_t = 20_000)]
    pub scaling_frames: u64,
    /// Rows in the hottest-instructions table.
    #[arg(long, default_value_t = 15)]
    pub top: usize,
    /// Host threads simulating the NIC (never changes a result).
    #[arg(long = "host-threads")]
    pub host_threads: Option<usize>,
}

pub fn report(args: &ReportArgs, g: &GlobalOpts) -> Result<u8, CliError> {
    let _span = tracing::debug_span!("cli.report", prog = %args.prog.display()).entered();
    let report = collect::collect(args, g)?;
    let dir = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}-report", sanitize(&report.program.name))));
    let report = write(&dir, report)?;
    let failed = !report.offloadable || report.sim.as_ref().is_some_and(|s| s.mismatches > 0);
    if g.json {
        let mut v = match serde_json::to_value(&report) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        v.remove("schema");
        v.insert("dir".into(), serde_json::json!(dir.display().to_string()));
        out::print(v);
    } else {
        println!("{}: {}", args.prog.display(), report.headline());
        for r in &report.reasons {
            println!(
                "{}",
                crate::cmd::compile::reason_line(r.pc, &r.message, &r.category)
            );
        }
        for n in &report.notes {
            println!("  note: {n}");
        }
        println!("  report: {}", dir.join("index.html").display());
    }
    Ok(if failed { 1 } else { 0 })
}

/// Writes the charts, `index.html` and `report.json`; returns the report with its chart list.
fn write(dir: &Path, mut report: Report) -> Result<Report, CliError> {
    let _span = tracing::debug_span!("report.write", dir = %dir.display()).entered();
    let io = |what: &Path, e: std::io::Error| {
        CliError::input(format!("{}: cannot write: {e}", what.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let drawn = charts::all(&report).map_err(|e| CliError {
        code: 1,
        message: format!("{}: {e}", dir.display()),
    })?;
    report.charts = drawn.iter().map(|(f, _)| f.to_string()).collect();
    for (file, svg) in &drawn {
        let p = dir.join(file);
        std::fs::write(&p, svg).map_err(|e| io(&p, e))?;
    }
    let p = dir.join("index.html");
    std::fs::write(&p, html::page(&report)).map_err(|e| io(&p, e))?;
    let p = dir.join("report.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| CliError {
        code: 1,
        message: format!("report.json: {e}"),
    })?;
    std::fs::write(&p, text + "\n").map_err(|e| io(&p, e))?;
    Ok(report)
}

/// A program name made safe as a directory name.
fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "prog".into() } else { s }
}
