//! `offload diff`: the same inputs through several engines; the first divergence with its input.

use std::path::PathBuf;

use hw_tests::{
    conformance::ConformanceKernelEngine,
    engine::{
        Comparison, Engine, EngineError, EngineResult, EngineRun, InterpEngine, KernelEngine,
        MapSnapshot, TestInput, run_differential,
    },
    kernel::{LoadOptions, oracle},
};
use nic_sim::{NfpProgram, PacketEngine, Step};
use serde_json::{Map, Value, json};
use vm_core::{ProgType, Program, interp::VmConfig};

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
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub random: Option<u64>,
    /// Seed of --random.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Engines to compare with the interpreter: comma list of interp, sim, kernel.
    #[arg(long, default_value = "kernel", value_delimiter = ',')]
    pub against: Vec<String>,
}

/// Engines the interpreter is compared with: `--against` names them, comma separated.
const ENGINES: &str = "interp, sim, kernel";

/// The engines to run, `interp` first, each once. An empty list or an empty item
/// (`--against ""`, `--against ,`) is bad input: it used to compare the interpreter with
/// itself and report "no divergence", which a script would take for a passed check.
fn engine_names(against: &[String]) -> Result<Vec<String>, CliError> {
    let mut names = vec!["interp".to_string()];
    if against.is_empty() {
        return Err(CliError::input(format!(
            "--against: no engine given; accepted engines: {ENGINES}"
        )));
    }
    for e in against {
        let name = match e.trim() {
            "" => {
                return Err(CliError::input(format!(
                    "--against `{}`: empty engine name; accepted engines: {ENGINES}",
                    against.join(",")
                )));
            }
            n @ ("interp" | "sim" | "kernel") => n,
            other => {
                return Err(CliError::input(format!(
                    "--against: unknown engine `{other}`; accepted engines: {ENGINES}"
                )));
            }
        };
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// One engine's result; `retval` as `offload run` reports it (low 32 bits for XDP and tc,
/// as the kernel engine gives it), so the engines' values compare as the verdicts do.
fn result_json(run: &EngineRun, t: ProgType) -> Value {
    match &run.result {
        Ok(r) => json!({
            "retval": crate::cmd::run::reported_retval(t, r.retval),
            "packet": hex::encode(&r.packet)
        }),
        Err(EngineError::Refused(why)) => json!({"refused": why}),
        Err(EngineError::Fault(why)) => json!({"error": why}),
    }
}

fn case_json(input: &TestInput, runs: &[EngineRun], t: ProgType) -> Value {
    let results: Map<String, Value> = runs
        .iter()
        .map(|r| (r.engine.clone(), result_json(r, t)))
        .collect();
    json!({"input": hex::encode(&input.packet), "results": results})
}

pub fn diff(args: &DiffArgs, g: &GlobalOpts) -> Result<u8, CliError> {
    let loaded = input::load(&args.prog, g)?;
    let raw = loaded.raw.clone();
    let (program, data_mem) = loaded.decoded(&args.prog)?;
    let names = engine_names(&args.against)?;
    let mut engines: Vec<Box<dyn Engine>> = Vec::new();
    let interp = InterpEngine::new(&program, VmConfig::default()).map_err(|e| {
        CliError::input(format!(
            "{}: interpreter cannot load the program: {e}",
            args.prog.display()
        ))
    })?;
    engines.push(Box::new(interp));
    if names.iter().any(|n| n == "kernel") {
        oracle().map_err(|why| {
            CliError::input(format!(
                "--against kernel: bpf() is not available here: {why}"
            ))
        })?;
        if program.prog_type == ProgType::Mem {
            engines.push(Box::new(ConformanceKernelEngine::new(raw)));
        } else {
            let kernel = KernelEngine::load(&program, &LoadOptions::default()).map_err(|e| {
                CliError::input(format!(
                    "{}: the kernel refused to load the program, nothing to compare: {e}",
                    args.prog.display()
                ))
            })?;
            engines.push(Box::new(kernel));
        }
    }
    if names.iter().any(|n| n == "sim") {
        engines.push(Box::new(SimEngine::new(&program, &args.prog)?));
    }
    // Inputs are read or drawn one at a time: a large capture or `--random N` costs time,
    // never memory. A corrupt frame ends the run with its location (exit 2).
    type Inputs = Box<dyn Iterator<Item = Result<Vec<u8>, CliError>>>;
    let inputs: Inputs = match (&args.pcap, args.random) {
        (Some(p), _) => Box::new(traffic::pcap_frames(p)?),
        (None, Some(n)) => Box::new(traffic::random_packets(n, args.seed).map(Ok)),
        (None, None) if program.prog_type == ProgType::Mem => {
            Box::new(std::iter::once(Ok(data_mem.unwrap_or_default())))
        }
        (None, None) => Box::new(traffic::random_packets(100, args.seed).map(Ok)),
    };
    let mut sample = Value::Null;
    let mut first = Value::Null;
    let mut first_text = None;
    let mut divergences = 0usize;
    let mut refused = 0usize;
    let mut count = 0usize;
    for (i, bytes) in inputs.enumerate() {
        let input = TestInput::packet(bytes?);
        count += 1;
        let mut refs: Vec<&mut dyn Engine> = engines
            .iter_mut()
            .map(|e| e.as_mut() as &mut dyn Engine)
            .collect();
        let (runs, verdict) = run_differential(&mut refs, &input);
        if i == 0 {
            sample = case_json(&input, &runs, program.prog_type);
        }
        match verdict {
            Comparison::Agree => {}
            Comparison::Refused { .. } => refused += 1,
            Comparison::Diverge(d) => {
                divergences += 1;
                if first.is_null() {
                    first = case_json(&input, &runs, program.prog_type);
                    first_text = Some(format!(
                        "input #{i} ({} bytes): {} differs between {} and {}: {}\n  input: {}",
                        input.packet.len(),
                        d.what,
                        d.reference,
                        d.other,
                        d.detail,
                        hex::encode(&input.packet)
                    ));
                }
            }
        }
    }
    if let (Some(p), 0) = (&args.pcap, count) {
        traffic::warn_empty_capture(p);
    }
    if g.json {
        let mut f = Map::new();
        f.insert("inputs".into(), json!(count));
        f.insert("divergences".into(), json!(divergences));
        f.insert("refused".into(), json!(refused));
        f.insert("engines".into(), json!(names));
        f.insert("sample".into(), sample);
        f.insert("first_divergence".into(), first);
        out::print(f);
    } else {
        println!("engines: {}", names.join(", "));
        println!("inputs: {count}  divergences: {divergences}  refused by an engine: {refused}");
        match first_text {
            Some(t) => println!("first divergence: {t}"),
            None => println!("no divergence"),
        }
    }
    Ok(if divergences > 0 { 1 } else { 0 })
}

/// The `sim` engine: the program compiled to microcode and run on the reference microengine
/// executor (one ME, thread 0) exactly as `offload sim` runs it, one input at a time. Like the
/// interpreter engine here, every input starts from the maps' initial contents.
///
/// A program that cannot be offloaded has nothing to run on the NIC: that is exit 2 (the
/// requested comparison is impossible, as when the kernel refuses to load the program), with
/// every reason; exit 1 stays reserved for engines that ran and diverged.
struct SimEngine {
    nfp: NfpProgram,
    program: Program,
    out: Vec<u8>,
}

impl SimEngine {
    fn new(program: &Program, path: &std::path::Path) -> Result<SimEngine, CliError> {
        if program.prog_type != ProgType::Xdp {
            return Err(CliError::input(format!(
                "{}: --against sim runs XDP programs on the NIC; this is a {} program",
                path.display(),
                program.prog_type.name()
            )));
        }
        let nfp =
            NfpProgram::compile(program, &nfp_backend::NicLimits::default()).map_err(|n| {
                let reasons: Vec<String> = n.reasons.iter().map(|r| r.to_string()).collect();
                CliError::input(format!(
                    "{}: --against sim: the program cannot be offloaded, nothing to compare: {}",
                    path.display(),
                    reasons.join("; ")
                ))
            })?;
        Ok(SimEngine {
            nfp,
            program: program.clone(),
            out: Vec::new(),
        })
    }

    /// Map contents in the interpreter engine's form (same map kinds, per-CPU maps folded).
    fn snapshot(&self, maps: Option<&vm_core::maps::MapSet>) -> Option<Vec<MapSnapshot>> {
        MapSnapshot::of_map_set(maps?, &self.program.maps)
    }
}

impl Engine for SimEngine {
    fn name(&self) -> &str {
        "sim"
    }

    fn run(&mut self, input: &TestInput) -> Result<EngineResult, EngineError> {
        if input.ctx.is_some() {
            return Err(EngineError::Refused(
                "the sim engine takes no context input".into(),
            ));
        }
        let len = input.packet.len();
        if len < nfp_backend::exec::MIN_PACKET as usize
            || len > nfp_backend::exec::MAX_PACKET as usize
        {
            return Err(EngineError::Refused(format!(
                "a {len}-byte frame never reaches the program (the NIC takes {}..={} bytes)",
                nfp_backend::exec::MIN_PACKET,
                nfp_backend::exec::MAX_PACKET
            )));
        }
        let mut me = self.nfp.engine(0, 1);
        let (last, _, _) =
            nic_sim::engine::run_to_completion(&mut me, &input.packet, &mut self.out);
        match last {
            Step::Done { retval, .. } => Ok(EngineResult {
                retval,
                retval_bits: 64,
                packet: std::mem::take(&mut self.out),
                maps: self.snapshot(me.maps()),
            }),
            Step::Fault { reason, .. } => Err(EngineError::Fault(reason)),
            Step::Swap { .. } => Err(EngineError::Fault("the executor stopped mid-packet".into())),
        }
    }
}
