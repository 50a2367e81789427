//! Reading PROG: its kind is decided by content, then extension (cli-contract.md, "Program input").

use std::path::Path;

use vm_core::{
    ProgType, Program, RawInsn,
    elf::{Item, SectionError, SectionErrorKind},
    isa::{self, DecodeError},
    testdata::TestFile,
};

use crate::{GlobalOpts, TypeArg, exit::CliError};

/// A program read from disk, plus the input memory a `.data` file carries.
pub struct Loaded {
    /// Raw slots exactly as given (before decoding), for `disasm` of bad encodings and the kernel.
    pub raw: Vec<RawInsn>,
    /// Decoded program, or the decode error at its instruction index.
    pub program: Result<Program, DecodeError>,
    /// `-- mem` of a `.data` file.
    pub mem: Option<Vec<u8>>,
    /// `-- result` of a `.data` file.
    pub expected: Option<u64>,
    /// Source lines from the ELF's BTF line info, when it has any for this program.
    pub lines: Option<vm_core::elf::LineTable>,
    /// The loader's full message when `program` is the decode error of an ELF program: the
    /// loader keeps no slots of a program that does not decode, so `raw` is empty and the
    /// verifier cannot see the encoding itself (`verify` then rejects from the error alone).
    pub elf_decode_error: Option<String>,
}

impl Loaded {
    /// The decoded program; an invalid encoding is bad input (exit 2) for run/asm/disasm.
    pub fn decoded(self, path: &Path) -> Result<(Program, Option<Vec<u8>>), CliError> {
        match self.program {
            Ok(p) => Ok((p, self.mem)),
            Err(_) if self.elf_decode_error.is_some() => Err(CliError::input(format!(
                "{}: {}",
                path.display(),
                self.elf_decode_error.unwrap_or_default()
            ))),
            Err(e) => Err(CliError::input(format!(
                "{}: instruction {}: {}",
                path.display(),
                e.pc,
                e.kind
            ))),
        }
    }
}

pub fn type_from_arg(t: TypeArg) -> ProgType {
    match t {
        TypeArg::Xdp => ProgType::Xdp,
        TypeArg::Tc => ProgType::SchedCls,
        TypeArg::Socket => ProgType::SocketFilter,
        TypeArg::Mem => ProgType::Mem,
    }
}

/// Reads and classifies PROG.
pub fn load(path: &Path, g: &GlobalOpts) -> Result<Loaded, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::input(format!("{}: cannot read: {e}", path.display())))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let forced = g.prog_type.map(type_from_arg);
    if bytes.starts_with(b"\x7fELF") {
        return load_elf(path, &bytes, g, forced);
    }
    refuse_section(path, g)?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("prog")
        .to_string();
    let (raw, mem, expected, default_type) = match ext {
        "s" | "asm" => {
            let text = utf8_text(bytes, path)?;
            let raw = vm_core::asm::assemble(&text)
                .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
            (raw, None, None, ProgType::Xdp)
        }
        "data" => {
            let tf = TestFile::parse_file(path)
                .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
            let raw = tf
                .program()
                .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
            (raw, Some(tf.mem.clone()), tf.result, ProgType::Mem)
        }
        _ => {
            let raw = RawInsn::slice_from_bytes(&bytes)
                .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
            (raw, None, None, ProgType::Xdp)
        }
    };
    let prog_type = forced.unwrap_or(default_type);
    let program = isa::decode_program(&raw).map(|insns| Program {
        name,
        section: None,
        prog_type,
        insns,
        maps: Vec::new(),
    });
    Ok(Loaded {
        raw,
        program,
        mem,
        expected,
        lines: None,
        elf_decode_error: None,
    })
}

/// `--section` picks a program in an ELF object; other inputs hold exactly one program, and
/// silently ignoring the option would run something other than what was asked for.
pub fn refuse_section(path: &Path, g: &GlobalOpts) -> Result<(), CliError> {
    match &g.section {
        Some(sec) => Err(CliError::input(format!(
            "{}: --section `{sec}`: --section only applies to ELF objects, and this is not one",
            path.display()
        ))),
        None => Ok(()),
    }
}

fn load_elf(
    path: &Path,
    bytes: &[u8],
    g: &GlobalOpts,
    forced: Option<ProgType>,
) -> Result<Loaded, CliError> {
    // Lenient: one program the loader refuses (a kfunc call, CO-RE, a bad encoding) must not
    // make `--section` unable to pick another program of the same object.
    let (obj, errors) = vm_core::elf::load_object_lenient(bytes)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    // A bad map definition makes the whole object malformed, as it did with the strict load.
    if let Some(e) = errors.iter().find(|e| !e.is_program()) {
        return Err(CliError::input(format!("{}: {e}", path.display())));
    }
    let failed: Vec<&SectionError> = errors.iter().collect();
    let chosen = match &g.section {
        Some(sec) => match obj.program(sec) {
            Some(p) => Ok(p.clone()),
            None => Err(failed
                .iter()
                .find(|e| e.item == Item::Program(sec.clone()))
                .or_else(|| failed.iter().find(|e| e.section == *sec))
                .copied()
                .ok_or_else(|| {
                    CliError::input(format!(
                        "{}: no program in section or function `{sec}`; programs: {}",
                        path.display(),
                        program_list(&obj.programs, &failed)
                    ))
                })?),
        },
        None => match (obj.programs.as_slice(), failed.as_slice()) {
            ([only], []) => Ok(only.clone()),
            ([], [only]) => Err(*only),
            ([], []) => {
                return Err(CliError::input(format!(
                    "{}: no executable program section",
                    path.display()
                )));
            }
            _ => {
                return Err(CliError::input(format!(
                    "{}: {} programs, pick one with --section: {}",
                    path.display(),
                    obj.programs.len() + failed.len(),
                    program_list(&obj.programs, &failed)
                )));
            }
        },
    };
    let mut program = match chosen {
        Ok(p) => p,
        Err(e) => return refused_program(path, e),
    };
    if let Some(t) = forced {
        program.prog_type = t;
    }
    let lines = obj
        .programs
        .iter()
        .position(|p| p.name == program.name && p.section == program.section)
        .and_then(|i| obj.source_lines.get(i))
        .filter(|t| !t.is_empty())
        .cloned();
    Ok(Loaded {
        raw: program.raw(),
        program: Ok(program),
        mem: None,
        expected: None,
        lines,
        elf_decode_error: None,
    })
}

/// The chosen ELF program did not load. An encoding that does not decode is something the
/// kernel refuses at load time, so `verify` and `compile` reject it (exit 1, with its pc);
/// anything else (CO-RE, kfuncs, bad relocations) is input this toolchain cannot read (exit 2).
fn refused_program(path: &Path, e: &SectionError) -> Result<Loaded, CliError> {
    match &e.kind {
        SectionErrorKind::Decode { error, .. } | SectionErrorKind::Linked(error) => Ok(Loaded {
            raw: Vec::new(),
            program: Err(error.clone()),
            mem: None,
            expected: None,
            lines: None,
            elf_decode_error: Some(e.to_string()),
        }),
        _ => Err(CliError::input(format!("{}: {e}", path.display()))),
    }
}

fn program_list(programs: &[Program], failed: &[&SectionError]) -> String {
    let loaded = programs.iter().map(|p| match &p.section {
        Some(s) if s != &p.name => format!("{s} ({})", p.name),
        Some(s) => s.clone(),
        None => p.name.clone(),
    });
    let refused = failed.iter().map(|e| match &e.item {
        Item::Program(name) if *name != e.section => {
            format!("{} ({name}, does not load: {})", e.section, e.kind.class())
        }
        _ => format!("{} (does not load: {})", e.section, e.kind.class()),
    });
    loaded.chain(refused).collect::<Vec<_>>().join(", ")
}

/// Assembly source as text; bytes that are not UTF-8 are bad input named by their offset.
pub fn utf8_text(bytes: Vec<u8>, path: &Path) -> Result<String, CliError> {
    String::from_utf8(bytes).map_err(|e| {
        CliError::input(format!(
            "{}: not UTF-8 text (byte offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Reads a packet or memory file: pcap (first frame), hex text (`.hex`/`.txt`), or raw bytes.
pub fn read_bytes_input(path: &Path) -> Result<Vec<u8>, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::input(format!("{}: cannot read: {e}", path.display())))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "hex" | "txt") {
        let text = String::from_utf8_lossy(&bytes);
        let digits: String = text.split_whitespace().collect();
        return hex::decode(&digits)
            .map_err(|e| CliError::input(format!("{}: bad hex: {e}", path.display())));
    }
    Ok(bytes)
}
