//! `offload run`: the reference interpreter on one input.

use std::{path::PathBuf, time::Instant};

use serde_json::{Map, Value, json};
use vm_core::{
    ProgType,
    interp::{RunError, Vm, VmConfig},
};

use crate::{GlobalOpts, exit::CliError, input, json as out};

/// Options of `offload run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Program (ELF, .s/.asm, .data or raw).
    pub prog: PathBuf,
    /// Packet for xdp/tc/socket programs: raw bytes, or hex text in a .hex/.txt file (default: 64 zero bytes).
    #[arg(long)]
    pub packet: Option<PathBuf>,
    /// Input memory for `mem` programs (r1 = buffer, r2 = length).
    #[arg(long)]
    pub mem: Option<PathBuf>,
    /// Run N times; reports the mean time per run (`ns_per_run`) and the last run's results.
    #[arg(long)]
    pub repeat: Option<u64>,
    /// Cap on executed instructions per run; exceeding it is a fault.
    #[arg(long, default_value_t = 100_000_000)]
    pub budget: u64,
}

/// The return value as `BPF_PROG_TEST_RUN` reports it: XDP and tc programs return a u32 to
/// the kernel, so only r0's low 32 bits are their verdict. `diff` shows every engine's
/// retval this way so that they compare as the verdicts do; `run` reports the full r0
/// (cli-contract.md, `run` JSON).
pub fn reported_retval(t: ProgType, r0: u64) -> u64 {
    match t {
        ProgType::Xdp | ProgType::SchedCls => r0 & 0xffff_ffff,
        _ => r0,
    }
}

/// Human-readable name of a return code for the program type.
pub fn verdict_name(t: ProgType, retval: u64) -> Option<&'static str> {
    match t {
        ProgType::Xdp => [
            "XDP_ABORTED",
            "XDP_DROP",
            "XDP_PASS",
            "XDP_TX",
            "XDP_REDIRECT",
        ]
        .get(retval as usize)
        .copied(),
        ProgType::SchedCls => match retval as u32 as i32 {
            -1 => Some("TC_ACT_UNSPEC"),
            0 => Some("TC_ACT_OK"),
            1 => Some("TC_ACT_RECLASSIFY"),
            2 => Some("TC_ACT_SHOT"),
            3 => Some("TC_ACT_PIPE"),
            4 => Some("TC_ACT_STOLEN"),
            5 => Some("TC_ACT_QUEUED"),
            6 => Some("TC_ACT_REPEAT"),
            7 => Some("TC_ACT_REDIRECT"),
            _ => None,
        },
        _ => None,
    }
}

pub fn run(args: &RunArgs, g: &GlobalOpts) -> Result<u8, CliError> {
    let loaded = input::load(&args.prog, g)?;
    let expected = loaded.expected;
    let (mut program, data_mem) = loaded.decoded(&args.prog)?;
    if args.mem.is_some() && g.prog_type.is_none() {
        program.prog_type = ProgType::Mem;
    }
    let input = match program.prog_type {
        ProgType::Mem if args.packet.is_some() => {
            return Err(CliError::input(format!(
                "--packet is for xdp, tc and socket programs; {} is a mem program, use --mem",
                args.prog.display()
            )));
        }
        ProgType::Mem => match &args.mem {
            Some(p) => input::read_bytes_input(p)?,
            None => data_mem.unwrap_or_default(),
        },
        ProgType::Xdp | ProgType::SchedCls | ProgType::SocketFilter => {
            if args.mem.is_some() {
                return Err(CliError::input(format!(
                    "--mem is for `--type mem` programs; this is a {} program, use --packet",
                    program.prog_type.name()
                )));
            }
            match &args.packet {
                Some(p) => input::read_bytes_input(p)?,
                None => vec![0u8; 64],
            }
        }
        ProgType::Other(n) => {
            return Err(CliError::input(format!(
                "{}: program type {n} cannot be run here (xdp, tc, socket and mem can)",
                args.prog.display()
            )));
        }
    };
    let config = VmConfig {
        budget: args.budget,
        ..VmConfig::default()
    };
    let mut vm = Vm::new(&program, config)
        .map_err(|e| CliError::input(format!("{}: {e}", args.prog.display())))?;
    let repeat = args.repeat.unwrap_or(1).max(1);
    let start = Instant::now();
    let mut result = vm.run(&input);
    for _ in 1..repeat {
        if result.is_err() {
            break;
        }
        result = vm.run(&input);
    }
    let elapsed = start.elapsed();
    // Present whenever --repeat is given (`--repeat 1` times one run), as the contract says.
    let ns_per_run = args
        .repeat
        .map(|_| elapsed.as_nanos() as f64 / repeat as f64);
    let (code, error) = match &result {
        Ok(_) => (0, None),
        Err(e @ RunError::BadInput(_)) => {
            return Err(CliError::input(format!("{}: {e}", args.prog.display())));
        }
        Err(e) => (1, Some(e.to_string())),
    };
    if g.json {
        let mut f = Map::new();
        match &result {
            Ok(o) => {
                // The contract's `retval` is the full 64-bit r0 (what the kernel would report
                // is `reported_retval`, which `diff` shows for every engine).
                f.insert("retval".into(), json!(o.retval));
                f.insert("packet".into(), json!(hex::encode(&o.packet)));
                f.insert("insns".into(), json!(o.insns));
            }
            Err(_) => {
                f.insert("retval".into(), Value::Null);
                f.insert("packet".into(), Value::Null);
                f.insert("insns".into(), Value::Null);
            }
        }
        f.insert("maps".into(), out::maps(vm.maps()));
        if let Some(ns) = ns_per_run {
            f.insert("ns_per_run".into(), json!(ns));
        }
        f.insert("error".into(), json!(error));
        if let Some(e) = expected {
            f.insert("expected".into(), json!(e));
        }
        out::print(f);
    } else {
        match &result {
            Ok(o) => {
                let name = verdict_name(program.prog_type, o.retval)
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                println!("retval: {:#x} = {}{name}", o.retval, o.retval as i64);
                if let Some(e) = expected {
                    let verdict = if e == o.retval {
                        "matches"
                    } else {
                        "DIFFERS from"
                    };
                    println!("retval {verdict} the file's `-- result` {e:#x}");
                }
                println!("insns executed: {}", o.insns);
                println!("packet out: {} bytes", o.packet.len());
                for line in &o.printk {
                    println!("trace_printk: {line}");
                }
            }
            Err(e) => println!("error: {e}"),
        }
        if let Some(ns) = ns_per_run {
            println!("time: {ns:.1} ns per run over {repeat} runs");
        }
        for map in vm.maps().iter() {
            let entries = map.entries();
            let nonzero: Vec<_> = entries
                .iter()
                .filter(|(_, v)| v.iter().any(|b| *b != 0))
                .collect();
            println!(
                "map {}: {} entries, {} non-zero",
                map.def().name,
                entries.len(),
                nonzero.len()
            );
            for (k, v) in nonzero.iter().take(16) {
                println!("  {} => {}", hex::encode(k), hex::encode(v));
            }
        }
    }
    Ok(code)
}
