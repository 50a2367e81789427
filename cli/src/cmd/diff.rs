//! `offload diff`: the same inputs through several engines; the first divergence with its input.

use std::path::PathBuf;

use hw_tests::{
    conformance::ConformanceKernelEngine,
    engine::{Comparison, Engine, EngineError, EngineRun, InterpEngine, KernelEngine, TestInput, run_differential},
    kernel::{LoadOptions, oracle},
};
use serde_json::{Map, Value, json};
use vm_core::{ProgType, interp::VmConfig};

use crate::{GlobalOpts, exit::CliError, input, json as out, traffic};

/// Options of `offload diff`.
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// Program (ELF, .s/.asm, .data or raw).
    pub prog: PathBuf,
    /// Inputs from a pcap or pcapng file.
    #[arg(long, conflicts_with = "random")]
    pub pcap: Option<PathBuf>,
    /// N seeded random packets of 14 to 1514 bytes (default 100 when no --pcap).
    #[arg(long)]
    pub random: Option<usize>,
    /// Seed of --random.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Engines to compare with the interpreter: comma list of interp, sim, kernel.
    #[arg(long, default_value = "kernel", value_delimiter = ',')]
    pub against: Vec<String>,
}

fn result_json(run: &EngineRun) -> Value {
    match &run.result {
        Ok(r) => json!({"retval": r.retval, "packet": hex::encode(&r.packet)}),
        Err(EngineError::Refused(why)) => json!({"refused": why}),
        Err(EngineError::Fault(why)) => json!({"error": why}),
    }
}

fn case_json(input: &TestInput, runs: &[EngineRun]) -> Value {
    let results: Map<String, Value> = runs.iter().map(|r| (r.engine.clone(), result_json(r))).collect();
    json!({"input": hex::encode(&input.packet), "results": results})
}

pub fn diff(args: &DiffArgs, g: &GlobalOpts) -> Result<u8, CliError> {
    let loaded = input::load(&args.prog, g)?;
    let raw = loaded.raw.clone();
    let (program, data_mem) = loaded.decoded(&args.prog)?;
    let mut names = vec!["interp".to_string()];
    for e in &args.against {
        match e.trim() {
            "interp" | "" => {}
            "kernel" => names.push("kernel".into()),
            "sim" => return Err(CliError::not_yet("diff --against sim", "the NIC simulator engine", 6)),
            other => return Err(CliError::input(format!("--against: unknown engine `{other}` (interp, sim, kernel)"))),
        }
    }
    names.dedup();
    let mut engines: Vec<Box<dyn Engine>> = Vec::new();
    let interp = InterpEngine::new(&program, VmConfig::default())
        .map_err(|e| CliError::input(format!("{}: interpreter cannot load the program: {e}", args.prog.display())))?;
    engines.push(Box::new(interp));
    if names.iter().any(|n| n == "kernel") {
        oracle().map_err(|why| CliError::input(format!("--against kernel: bpf() is not available here: {why}")))?;
        if program.prog_type == ProgType::Mem {
            engines.push(Box::new(ConformanceKernelEngine::new(raw)));
        } else {
            let kernel = KernelEngine::load(&program, &LoadOptions::default()).map_err(|e| {
                CliError::input(format!("{}: the kernel refused to load the program, nothing to compare: {e}", args.prog.display()))
            })?;
            engines.push(Box::new(kernel));
        }
    }
    let inputs: Vec<Vec<u8>> = match (&args.pcap, args.random) {
        (Some(p), _) => traffic::read_pcap(p)?,
        (None, Some(n)) => traffic::random_packets(n, args.seed),
        (None, None) if program.prog_type == ProgType::Mem => vec![data_mem.unwrap_or_default()],
        (None, None) => traffic::random_packets(100, args.seed),
    };
    let mut sample = Value::Null;
    let mut first = Value::Null;
    let mut first_text = None;
    let mut divergences = 0usize;
    let mut refused = 0usize;
    for (i, bytes) in inputs.iter().enumerate() {
        let input = TestInput::packet(bytes.clone());
        let mut refs: Vec<&mut dyn Engine> = engines.iter_mut().map(|e| e.as_mut() as &mut dyn Engine).collect();
        let (runs, verdict) = run_differential(&mut refs, &input);
        if i == 0 {
            sample = case_json(&input, &runs);
        }
        match verdict {
            Comparison::Agree => {}
            Comparison::Refused { .. } => refused += 1,
            Comparison::Diverge(d) => {
                divergences += 1;
                if first.is_null() {
                    first = case_json(&input, &runs);
                    first_text = Some(format!(
                        "input #{i} ({} bytes): {} differs between {} and {}: {}\n  input: {}",
                        bytes.len(),
                        d.what,
                        d.reference,
                        d.other,
                        d.detail,
                        hex::encode(bytes)
                    ));
                }
            }
        }
    }
    if g.json {
        let mut f = Map::new();
        f.insert("inputs".into(), json!(inputs.len()));
        f.insert("divergences".into(), json!(divergences));
        f.insert("refused".into(), json!(refused));
        f.insert("engines".into(), json!(names));
        f.insert("sample".into(), sample);
        f.insert("first_divergence".into(), first);
        out::print(f);
    } else {
        println!("engines: {}", names.join(", "));
        println!("inputs: {}  divergences: {divergences}  refused by an engine: {refused}", inputs.len());
        match first_text {
            Some(t) => println!("first divergence: {t}"),
            None => println!("no divergence"),
        }
    }
    Ok(if divergences > 0 { 1 } else { 0 })
}
