//! `offload compile`: verify with the NFP backend's hooks, then lower to microengine code.
//!
//! Exit 1 with every reason when the program cannot be offloaded; bad encodings are reasons
//! too (the kernel would refuse them at load), never bad input.

use std::path::{Path, PathBuf};

use nfp_backend::compile::{Compiled, NotOffloadable};
use nfp_backend::target::{encode_program, print};
use nfp_backend::{NicLimits, Reason};
use nic_sim::NicPreset;
use serde_json::{Map, Value, json};
use vm_core::elf::LineTable;
use vm_core::{Insn, Program, asm};

use crate::{GlobalOpts, exit::CliError, input, json as out};

/// Options of `offload compile`.
#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    /// Program (ELF, .s/.asm, .data or raw).
    pub prog: PathBuf,
    /// Target NIC, as `sim` takes it: agilio-cx (alias nfp-4000), agilio-cx-40, or
    /// custom:... (every preset is an NFP-4000 with CoreNIC's firmware limits).
    #[arg(long, default_value = "agilio-cx")]
    pub nic: String,
    /// Write the microcode as little-endian 64-bit instruction words.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Print each eBPF instruction followed by the microcode it became.
    #[arg(long)]
    pub listing: bool,
}

pub fn compile(args: &CompileArgs, g: &GlobalOpts) -> Result<u8, CliError> {
    // The same names as `sim` and `report` (it used to take only `agilio-cx`); only the
    // preset's firmware limits matter here.
    let preset = NicPreset::by_name(&args.nic).map_err(CliError::input)?;
    preset.check().map_err(CliError::input)?;
    let nic = crate::cmd::sim::firmware_limits(&preset);
    let target = Target {
        name: &preset.name,
        limits: nic,
    };
    let loaded = input::load(&args.prog, g)?;
    let program = match loaded.program {
        Ok(p) => p,
        Err(e) => {
            let reason = Reason::at(e.pc, "bad_encoding", e.kind.to_string());
            report_rejection(
                &args.prog,
                &NotOffloadable {
                    reasons: vec![reason],
                    verifier_log: String::new(),
                },
                loaded.raw.len(),
                g,
            );
            return Ok(1);
        }
    };
    match nfp_backend::compile::compile(&program, nic) {
        Ok(c) => {
            if let Some(path) = &args.output {
                let words = encode_program(&c.code).map_err(|(i, e)| CliError {
                    code: 1,
                    message: format!(
                        "{}: microcode instruction {i} cannot be encoded: {e}",
                        args.prog.display()
                    ),
                })?;
                let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                std::fs::write(path, bytes).map_err(|e| {
                    CliError::input(format!("{}: cannot write: {e}", path.display()))
                })?;
            }
            if g.json {
                out::print(json_ok(&c, &target));
            } else {
                if args.listing {
                    print!("{}", listing(&program, &c, loaded.lines.as_ref()));
                }
                print_summary(&args.prog, &c, &target);
            }
            Ok(0)
        }
        Err(n) => {
            report_rejection(&args.prog, &n, program.insns.len(), g);
            Ok(1)
        }
    }
}

/// One reason as the human output prints it: `  insn    30: message  [category]`.
pub fn reason_line(pc: Option<usize>, message: &str, category: &str) -> String {
    match pc {
        Some(pc) => format!("  insn {pc:>5}: {message}  [{category}]"),
        None => format!("  program   : {message}  [{category}]"),
    }
}

/// When the C source line changes at `pc`, the `; file:line  text` header to print above it.
pub fn source_header(
    lines: Option<&LineTable>,
    pc: usize,
    last: &mut Option<(String, u32)>,
) -> Option<String> {
    let l = lines?.at(pc)?;
    if last
        .as_ref()
        .is_some_and(|(f, n)| *f == l.file && *n == l.line)
    {
        return None;
    }
    *last = Some((l.file.clone(), l.line));
    Some(format!("; {}:{}  {}", l.file, l.line, l.text))
}

/// Reasons as the contract's JSON array.
pub fn reasons_json(reasons: &[Reason]) -> Value {
    Value::Array(
        reasons
            .iter()
            .map(|r| json!({"pc": r.pc, "message": r.message, "category": r.category}))
            .collect(),
    )
}

/// The NIC compiled for: the preset's name as `--nic` resolved it, and its firmware limits.
struct Target<'a> {
    name: &'a str,
    limits: &'static NicLimits,
}

fn json_ok(c: &Compiled, nic: &Target<'_>) -> Map<String, Value> {
    let mut f = Map::new();
    f.insert("offloadable".into(), json!(true));
    f.insert("reasons".into(), json!([]));
    f.insert("ebpf_insns".into(), json!(c.ebpf_insns));
    f.insert("nfp_insns".into(), json!(c.nfp_insns));
    f.insert("zext_elided".into(), json!(c.zext_elided));
    f.insert("zext_kept".into(), json!(c.zext_kept));
    f.insert(
        "estimated_cycles".into(),
        json!({"min": c.estimated_cycles.0, "max": c.estimated_cycles.1}),
    );
    f.insert("nic".into(), json!(nic.name));
    let opts: Map<String, Value> = c
        .optimisations
        .entries()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    f.insert("optimisations".into(), Value::Object(opts));
    f
}

fn report_rejection(path: &Path, n: &NotOffloadable, ebpf_insns: usize, g: &GlobalOpts) {
    if g.json {
        let mut f = Map::new();
        f.insert("offloadable".into(), json!(false));
        f.insert("reasons".into(), reasons_json(&n.reasons));
        f.insert("ebpf_insns".into(), json!(ebpf_insns));
        f.insert("nfp_insns".into(), json!(null));
        f.insert("zext_elided".into(), json!(null));
        f.insert("zext_kept".into(), json!(null));
        f.insert("estimated_cycles".into(), json!(null));
        out::print(f);
        return;
    }
    println!(
        "{}: cannot be offloaded ({} reason{}):",
        path.display(),
        n.reasons.len(),
        if n.reasons.len() == 1 { "" } else { "s" }
    );
    for r in &n.reasons {
        println!("{}", reason_line(r.pc, &r.message, r.category));
    }
}

fn print_summary(path: &Path, c: &Compiled, nic: &Target<'_>) {
    let zext_total = c.zext_elided + c.zext_kept;
    println!(
        "{}: offloadable to {}: {} eBPF slots -> {} NFP instructions (limit {}), zext elided {} of {}, estimated {}..{} cycles per packet",
        path.display(),
        nic.name,
        c.ebpf_insns,
        c.nfp_insns,
        nic.limits.max_insns,
        c.zext_elided,
        zext_total,
        c.estimated_cycles.0,
        c.estimated_cycles.1
    );
    let fired: Vec<String> = c
        .optimisations
        .entries()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if !fired.is_empty() {
        println!("  optimisations: {}", fired.join(", "));
    }
}

/// Each eBPF instruction (kernel syntax) followed by the microcode addresses it became;
/// code not attributed to any instruction (prologue, shared exit, prefetch tail) is listed
/// where it falls. With BTF line info, each new C source line is printed above the first
/// instruction that came from it.
pub fn listing(program: &Program, c: &Compiled, lines: Option<&LineTable>) -> String {
    use std::fmt::Write as _;
    let raw = program.raw();
    let mut owner = vec![None; c.code.len()];
    for (pc, range) in c.map.iter().enumerate() {
        for i in range.clone() {
            if let Some(slot) = owner.get_mut(i) {
                *slot = Some(pc);
            }
        }
    }
    let mut s = String::new();
    let mut next = 0;
    let mut last_line = None;
    for (pc, insn) in program.insns.iter().enumerate() {
        if *insn == Insn::LdImm64Tail {
            continue;
        }
        let range = c.map.get(pc).cloned().unwrap_or(0..0);
        if !range.is_empty() {
            while next < range.start {
                if owner[next].is_none() {
                    let _ = writeln!(s, "        {next:5}  {}", print(&c.code[next]));
                }
                next += 1;
            }
        }
        if let Some(h) = source_header(lines, pc, &mut last_line) {
            let _ = writeln!(s, "{h}");
        }
        let code = raw.get(pc).map_or(0, |r| r.code);
        let _ = writeln!(s, "{}", asm::kernel_line(pc, code, insn));
        if range.is_empty() {
            let _ = writeln!(s, "        (no microcode)");
        }
        for i in range.clone() {
            if let Some(m) = c.code.get(i) {
                let _ = writeln!(s, "        {i:5}  {}", print(m));
            }
        }
        next = next.max(range.end);
    }
    while next < c.code.len() {
        if owner[next].is_none() {
            let _ = writeln!(s, "        {next:5}  {}", print(&c.code[next]));
        }
        next += 1;
    }
    s
}
