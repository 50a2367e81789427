//! Our level-2 log next to the kernel's for one assembled program, to find where the walks
//! of a small hand-written case part.
//!
//! ```text
//! cargo run --release -p verifier --example asm_diff -- <file.s> [xdp|socket|tc] [prog_array|array|hash] [outdir]
//! ```
//!
//! The optional map is map 0 (8 entries; 4-byte keys and values for a program array, 8-byte
//! otherwise). Writes `ours.log` and `kernel.log` to `outdir` (default `/tmp`) and prints
//! both summary lines. Needs root for the kernel half.

use std::process::ExitCode;

use hw_tests::kernel::{LoadOptions, load_vm_program, log_level};
use verifier::{VerifyOptions, verify};
use vm_core::{MapDef, MapType, ProgType, Program};

fn map(kind: &str) -> Option<MapDef> {
    let (map_type, size) = match kind {
        "prog_array" => (MapType::ProgArray, 4),
        "array" => (MapType::Array, 8),
        "hash" => (MapType::Hash, 8),
        _ => return None,
    };
    Some(MapDef {
        name: kind.to_string(),
        map_type,
        key_size: if map_type == MapType::Array { 4 } else { size },
        value_size: size,
        max_entries: 8,
        flags: 0,
        initial_value: None,
    })
}

fn run(args: &[String]) -> Result<(), String> {
    let file = args
        .first()
        .ok_or("usage: asm_diff <file.s> [type] [map] [outdir]")?;
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let prog_type = match args.get(1).map(String::as_str) {
        Some("xdp") => ProgType::Xdp,
        Some("tc") => ProgType::SchedCls,
        _ => ProgType::SocketFilter,
    };
    let raw = vm_core::asm::assemble(&text).map_err(|e| e.to_string())?;
    let mut p = Program::from_raw("asm_diff", prog_type, &raw).map_err(|e| e.to_string())?;
    p.maps = args.get(2).and_then(|m| map(m)).into_iter().collect();
    let outdir = args.get(3).map_or("/tmp", String::as_str);
    let opts = VerifyOptions {
        log_level: 2,
        ..VerifyOptions::default()
    };
    let ours = match verify(&p, &opts) {
        Ok(v) => v.log,
        Err(r) => format!("{}rejected: {}\n", r.log, r.error),
    };
    let lo = LoadOptions {
        log_level: log_level::BASIC | log_level::VERBOSE | log_level::STATS,
        ..LoadOptions::default()
    };
    let kernel = match load_vm_program(&p, &lo) {
        Ok(l) => l.prog.log,
        Err(hw_tests::kernel::VmLoadError::Load(e)) => format!("{}rejected: {}\n", e.log, e.errno),
        Err(e) => format!("not loaded: {e:?}\n"),
    };
    for (name, log) in [("ours", &ours), ("kernel", &kernel)] {
        let path = format!("{outdir}/{name}.log");
        std::fs::write(&path, log).map_err(|e| format!("{path}: {e}"))?;
        let summary = log.lines().rev().find(|l| {
            l.starts_with("processed") || l.starts_with("rejected") || l.starts_with("not loaded")
        });
        println!("{name}: {}", summary.unwrap_or("?"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
