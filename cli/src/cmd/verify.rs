//! `offload verify`: the static verifier, with the kernel's log and the contract's JSON.
//!
//! Everything the kernel refuses at load time is a rejection (exit 1) here, bad encodings
//! included: those go to the verifier as raw slots so it refuses them where the kernel does.

use std::{path::PathBuf, time::Instant};

use serde_json::{Map, json};
use verifier::{Rejected, Verified, VerifyOptions};

use crate::{GlobalOpts, exit::CliError, input, json as out};

/// Options of `offload verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Program (ELF, .s/.asm, .data or raw).
    pub prog: PathBuf,
    /// 0: no log; 1: the failing path and the summary line; 2: every instruction.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=2))]
    pub log_level: u32,
    /// Apply the unprivileged profile (no loops, no bpf-to-bpf calls, no pointer leaks, ...).
    #[arg(long)]
    pub unprivileged: bool,
}

pub fn verify(args: &VerifyArgs, g: &GlobalOpts) -> Result<u8, CliError> {
    let loaded = input::load(&args.prog, g)?;
    let opts = VerifyOptions {
        log_level: args.log_level,
        privileged: !args.unprivileged,
        ..VerifyOptions::default()
    };
    let start = Instant::now();
    let result = match &loaded.program {
        Ok(program) => verifier::verify(program, &opts),
        Err(e) if loaded.elf_decode_error.is_some() => Err(undecodable(e)),
        Err(_) => {
            let prog_type = g
                .prog_type
                .map_or(vm_core::ProgType::Xdp, input::type_from_arg);
            verifier::verify_raw(&loaded.raw, prog_type, &[], &opts, None)
        }
    };
    let verify_ns = start.elapsed().as_nanos() as u64;
    if g.json {
        out::print(json_fields(&result, verify_ns));
    } else {
        print_human(&args.prog, &result, verify_ns);
    }
    Ok(if result.is_ok() { 0 } else { 1 })
}

/// The rejection of an ELF program whose slots the loader could not decode (and so did not
/// keep): the kernel refuses such an encoding before its walk, as `verify_raw` does for raw
/// input, so the log is the error and a summary of 0 processed instructions.
fn undecodable(e: &vm_core::isa::DecodeError) -> Rejected {
    let error = verifier::VerifierError::einval(e.pc, e.kind.to_string());
    let log = format!(
        "{}\n{}\n",
        error.message,
        verifier::Stats::default().summary()
    );
    Rejected {
        error,
        log,
        processed_insns: 0,
    }
}

fn json_fields(
    result: &Result<Verified, Rejected>,
    verify_ns: u64,
) -> Map<String, serde_json::Value> {
    let mut f = Map::new();
    match result {
        Ok(v) => {
            f.insert("accepted".into(), json!(true));
            f.insert("error".into(), json!(null));
            f.insert("pc".into(), json!(null));
            f.insert("errno".into(), json!(null));
            f.insert("processed_insns".into(), json!(v.processed_insns));
            f.insert("zext".into(), json!(v.zext));
            f.insert("stack_depth".into(), json!(v.stack_depth));
            f.insert("log".into(), json!(v.log));
        }
        Err(r) => {
            f.insert("accepted".into(), json!(false));
            f.insert("error".into(), json!(r.error.message));
            f.insert("pc".into(), json!(r.error.pc));
            f.insert("errno".into(), json!(r.error.errno.name()));
            f.insert("processed_insns".into(), json!(r.processed_insns));
            f.insert("zext".into(), json!([]));
            f.insert("stack_depth".into(), json!(0));
            f.insert("log".into(), json!(r.log));
        }
    }
    f.insert("verify_ns".into(), json!(verify_ns));
    f
}

fn print_human(path: &std::path::Path, result: &Result<Verified, Rejected>, verify_ns: u64) {
    match result {
        Ok(v) => {
            print!("{}", v.log);
            println!(
                "{}: accepted ({} insns processed, stack depth {} bytes, {} of the 32-bit definitions need zero-extension, {:.1} µs)",
                path.display(),
                v.processed_insns,
                v.stack_depth,
                v.zext.len(),
                verify_ns as f64 / 1e3
            );
        }
        Err(r) => {
            print!("{}", r.log);
            println!(
                "{}: rejected at instruction {} ({}): {}",
                path.display(),
                r.error.pc,
                r.error.errno.name(),
                r.error.message
            );
        }
    }
}
