//! `offload asm` and `offload disasm`.

use std::{
    io::{IsTerminal, Write},
    path::Path,
};

use serde_json::{Map, json};
use vm_core::{
    RawInsn,
    asm::{self, Syntax},
};

use crate::{GlobalOpts, SyntaxArg, exit::CliError, input, json as out};

/// Assembles FILE; writes raw little-endian slots to `-o`, or to stdout when it is not a terminal.
pub fn asm(file: &Path, output: Option<&Path>, g: &GlobalOpts) -> Result<u8, CliError> {
    input::refuse_section(file, g)?;
    let bytes = std::fs::read(file)
        .map_err(|e| CliError::input(format!("{}: cannot read: {e}", file.display())))?;
    // The same message as every other command gives for non-UTF-8 assembly: with its offset.
    let text = input::utf8_text(bytes, file)?;
    let raw =
        asm::assemble(&text).map_err(|e| CliError::input(format!("{}: {e}", file.display())))?;
    // An invalid encoding is bad input for `asm` as for `run` (contract, exit 2).
    vm_core::isa::decode_program(&raw).map_err(|e| {
        CliError::input(format!(
            "{}: instruction {}: {}",
            file.display(),
            e.pc,
            e.kind
        ))
    })?;
    let bytes = RawInsn::slice_to_bytes(&raw);
    if let Some(path) = output {
        std::fs::write(path, &bytes)
            .map_err(|e| CliError::input(format!("{}: cannot write: {e}", path.display())))?;
    }
    if g.json {
        let mut f = Map::new();
        f.insert("slots".into(), json!(raw.len()));
        f.insert("hex".into(), json!(hex::encode(&bytes)));
        out::print(f);
    } else if output.is_none() {
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            for insn in &raw {
                println!("{:016x}", insn.to_u64());
            }
        } else {
            stdout
                .lock()
                .write_all(&bytes)
                .map_err(|e| CliError::input(format!("stdout: {e}")))?;
        }
    }
    Ok(0)
}

/// Disassembles PROG in the chosen syntax.
pub fn disasm(prog: &Path, syntax: SyntaxArg, g: &GlobalOpts) -> Result<u8, CliError> {
    let loaded = input::load(prog, g)?;
    let raw = loaded.raw.clone();
    let (program, _) = loaded.decoded(prog)?;
    let syntax = match syntax {
        SyntaxArg::Conformance => Syntax::Conformance,
        SyntaxArg::Kernel => Syntax::Kernel,
        SyntaxArg::Llvm => Syntax::Llvm,
    };
    let lines: Vec<(usize, String)> = program
        .insns
        .iter()
        .enumerate()
        .filter(|(_, i)| **i != vm_core::Insn::LdImm64Tail)
        .map(|(pc, insn)| {
            let text = match syntax {
                Syntax::Kernel => asm::kernel_line(pc, raw[pc].code, insn),
                s => asm::format_insn(insn, pc, s),
            };
            (pc, text)
        })
        .collect();
    if g.json {
        let insns: Vec<_> = lines
            .iter()
            .map(|(pc, text)| json!({"pc": pc, "raw": hex::encode(raw[*pc].to_bytes()), "text": text}))
            .collect();
        let mut f = Map::new();
        f.insert("slots".into(), json!(raw.len()));
        f.insert("insns".into(), json!(insns));
        out::print(f);
    } else {
        for (_, text) in lines {
            println!("{text}");
        }
    }
    Ok(0)
}
