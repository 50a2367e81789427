//! `offload`: the command-line face of the toolchain. The binding contract for its options,
//! JSON fields and exit codes is `shared/design/cli-contract.md`; this file only parses and
//! dispatches.

mod cmd;
mod exit;
mod input;
mod json;
mod progress;
mod traffic;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};

use crate::exit::CliError;

/// eBPF SmartNIC offload toolchain: assemble, run, verify, compile and simulate XDP/tc programs.
#[derive(Parser, Debug)]
#[command(name = "offload", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: GlobalOpts,
}

/// Options every subcommand accepts, in any position.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GlobalOpts {
    /// Program type (default: from the ELF section, `mem` for .data files, else xdp).
    #[arg(long = "type", global = true, value_enum)]
    pub prog_type: Option<TypeArg>,
    /// ELF section (or function) holding the program.
    #[arg(long, global = true)]
    pub section: Option<String>,
    /// Print exactly one JSON object on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `--type` values.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeArg {
    /// XDP (`xdp_md` context).
    Xdp,
    /// tc / sched_cls (`__sk_buff` context).
    Tc,
    /// Socket filter (`__sk_buff` context, data after the Ethernet header).
    Socket,
    /// bpf_conformance convention: r1 = buffer, r2 = length.
    Mem,
}

/// `disasm --syntax` values.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyntaxArg {
    /// bpf_conformance assembler syntax (re-assembles to identical bytes).
    #[default]
    Conformance,
    /// The kernel verifier log / bpftool syntax.
    Kernel,
    /// llvm-objdump syntax.
    Llvm,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Assemble bpf_conformance-syntax text into raw instructions.
    Asm {
        /// Assembly file.
        file: PathBuf,
        /// Output file (default: standard output as raw bytes is refused on a terminal; use -o).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Disassemble a program.
    Disasm {
        /// Program (ELF, .s/.asm, .data or raw).
        prog: PathBuf,
        /// Output syntax.
        #[arg(long, value_enum, default_value_t)]
        syntax: SyntaxArg,
    },
    /// Run a program in the reference interpreter.
    Run(cmd::run::RunArgs),
    /// Verify a program: kernel-style log, exit 1 when rejected.
    Verify(cmd::verify::VerifyArgs),
    /// Compile a program to NFP-style microcode: offloadable or every reason why not.
    Compile(cmd::compile::CompileArgs),
    /// Simulate a program on a multi-core NIC (issue #6).
    Sim(cmd::sim::SimArgs),
    /// Run engines on the same inputs and report the first divergence.
    Diff(cmd::diff::DiffArgs),
    /// Feasibility and performance report: DIR/index.html with SVG charts, DIR/report.json.
    Report(cmd::report::ReportArgs),
    /// Run the built-in demo through every stage that exists.
    Demo,
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => e.report(),
    }
}

/// Rust ignores SIGPIPE, so `offload disasm x | head` would panic on a closed pipe; a
/// command-line tool should instead end quietly, as the shell expects.
fn restore_sigpipe() {
    // SAFETY: setting a signal disposition to its default before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn dispatch(cli: Cli) -> Result<u8, CliError> {
    let g = &cli.global;
    match cli.command {
        Command::Asm { file, output } => cmd::asm::asm(&file, output.as_deref(), g),
        Command::Disasm { prog, syntax } => cmd::asm::disasm(&prog, syntax, g),
        Command::Run(args) => cmd::run::run(&args, g),
        Command::Demo => cmd::demo::demo(g),
        Command::Verify(args) => cmd::verify::verify(&args, g),
        Command::Compile(args) => cmd::compile::compile(&args, g),
        Command::Sim(args) => cmd::sim::sim(&args, g),
        Command::Diff(args) => cmd::diff::diff(&args, g),
        Command::Report(args) => cmd::report::report(&args, g),
    }
}
