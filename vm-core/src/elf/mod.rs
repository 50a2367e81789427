//! Loader for clang `-target bpf` ELF objects: programs, maps, global data, bpf-to-bpf calls.
//!
//! ```text
//! bytes ─► sections::ElfFile ─► btf (.maps types, CO-RE records)
//!          (sections by role,    │
//!           symbols, relocs)     ▼
//!                         maps::MapTable ── functions::FunctionTable ─► reloc::Linker ─► Program
//!                         (object order)    (decoded, per function)     (per entry function)
//! ```
//!
//! Why our own loader rather than `aya-obj`: aya-obj 0.3 rejects a whole object when one
//! section name is unknown to it (`tc`, `xdp_prog`, `2/1`, `socket1`, ...), when a legacy map
//! definition has an unusual size, or when one program has a problem; over the staged corpora
//! it parsed 67 of 173 ebpf-samples objects, 37 of 53 little-endian cilium/ebpf objects and 1
//! of 2 rbpf objects, and panicked on one input. This loader decides per program and per map,
//! so one bad program costs only itself.
//!
//! Conventions:
//! - **Maps:** every program carries *all* maps of the object, in object order (section
//!   order, then definition offset), so programs of one object share map indices and a map
//!   shared by two programs is one map. `lddw` map references become
//!   `LdImm64::MapFd(i)` / `LdImm64::MapValue { fd: i, off }` with `i` the index into
//!   [`Program::maps`] (and [`Object::maps`], which is the same list).
//! - **Global data:** `.data*`, `.rodata*`, `.bss*` become single-element `Array` maps named
//!   after the section, with the section bytes (zeros for `.bss`) as `initial_value`.
//! - **Programs:** one per function symbol in each executable section, named by the function.
//!   `.text` holds subprograms; its functions are programs only when no other section has code
//!   (configurable with [`LoadOptions::text_programs`]).
//! - **Subprograms:** called functions are appended after the program, libbpf-style, and
//!   `call`/`lddw` function immediates are rewritten for that layout.
//! - **Source lines:** `.BTF.ext` line info is shifted into each linked program's layout
//!   ([`Object::source_lines`], [`Object::line_info`]); it is optional, so bad line info only
//!   adds a [`LineInfoWarning`].
//! - **Refused per program:** CO-RE relocations, kconfig/ksym externs and kfunc calls (they
//!   need the target kernel's BTF), and anything that does not decode after linking.

mod btf;
mod error;
mod functions;
mod line_info;
mod maps;
mod reloc;
mod sections;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

pub use error::{ElfError, InsnLoc, Item, SectionError, SectionErrorKind};
pub use line_info::{FunctionSpan, LineInfoWarning, LineTable, SourceLine};
pub use sections::is_big_endian;

use crate::program::{MapDef, ProgType, Program};
use btf::Btf;
use functions::FunctionTable;
use line_info::LineIndex;
use maps::MapTable;
use sections::{ElfFile, SectionRole};

/// Whether the functions of `.text` become programs of their own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TextPrograms {
    /// Only when `.text` is the only section with code (objects written without `SEC()`).
    #[default]
    WhenAlone,
    /// Always (PREVAIL's view: every function is a program).
    Always,
    /// Never (libbpf's view: `.text` holds only subprograms).
    Never,
}

/// Knobs of [`load_object_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Whether `.text` functions are programs.
    pub text_programs: TextPrograms,
}

/// An executable section as it is in the file (for listings and cross-checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSection {
    /// Section name.
    pub name: String,
    /// Size in 8-byte instruction slots.
    pub slots: usize,
    /// Functions found in it, in offset order.
    pub functions: Vec<String>,
}

/// A loaded object.
#[derive(Debug, Clone)]
pub struct Object {
    /// Programs that loaded, in section order then function order.
    pub programs: Vec<Program>,
    /// All maps of the object in object order; `MapFd(i)` refers to `maps[i]`.
    pub maps: Vec<MapDef>,
    /// Contents of the `license` section.
    pub license: Option<String>,
    /// Contents of the `version` section (old kprobe objects).
    pub kernel_version: Option<u32>,
    /// Every non-empty executable section, in section order.
    pub code_sections: Vec<CodeSection>,
    /// Source lines from `.BTF.ext` line info, one table per program, parallel to
    /// [`Object::programs`] (`source_lines[i]` belongs to `programs[i]`; empty when the
    /// object has no line info). Kept beside `Program` rather than in it because line info
    /// is debug data that only reports need.
    pub source_lines: Vec<LineTable>,
    /// Why some or all line info was ignored (line info never fails a load).
    pub line_info_warnings: Vec<LineInfoWarning>,
}

impl Object {
    /// The program with this function name, or else the first program of this section.
    pub fn program(&self, section_or_name: &str) -> Option<&Program> {
        self.programs
            .iter()
            .find(|p| p.name == section_or_name)
            .or_else(|| {
                self.programs
                    .iter()
                    .find(|p| p.section.as_deref() == Some(section_or_name))
            })
    }

    /// Source lines of the program [`Object::program`] finds by this name; `None` when there
    /// is no such program or it has no line records.
    pub fn line_info(&self, section_or_name: &str) -> Option<&LineTable> {
        let i = self
            .programs
            .iter()
            .position(|p| p.name == section_or_name)
            .or_else(|| {
                self.programs
                    .iter()
                    .position(|p| p.section.as_deref() == Some(section_or_name))
            })?;
        self.source_lines.get(i).filter(|t| !t.is_empty())
    }

    /// The programs of one section.
    pub fn programs_in_section<'s>(
        &'s self,
        section: &'s str,
    ) -> impl Iterator<Item = &'s Program> + 's {
        self.programs
            .iter()
            .filter(move |p| p.section.as_deref() == Some(section))
    }
}

/// Loads an object, failing if any program or map cannot be loaded.
pub fn load_object(bytes: &[u8]) -> Result<Object, ElfError> {
    let (object, errors) = load_object_lenient(bytes)?;
    match errors.into_iter().next() {
        Some(e) => Err(e.into()),
        None => Ok(object),
    }
}

/// Loads what can be loaded; each program or map that cannot is reported instead.
/// Only problems with the file as a whole (not ELF, big-endian, broken tables) are errors.
pub fn load_object_lenient(bytes: &[u8]) -> Result<(Object, Vec<SectionError>), ElfError> {
    load_object_with(bytes, &LoadOptions::default())
}

/// [`load_object_lenient`] with options.
pub fn load_object_with(
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<(Object, Vec<SectionError>), ElfError> {
    let _span = tracing::debug_span!("elf_load", bytes = bytes.len()).entered();
    let elf = ElfFile::parse(bytes)?;

    let btf = elf
        .section_with_role(SectionRole::Btf)
        .map(|s| s.data.clone().and_then(Btf::parse));
    let mut errors = Vec::new();
    let core = core_records(&elf, btf.as_ref());

    let maps = MapTable::build(&elf, btf.as_ref());
    errors.extend(maps.errors.iter().cloned());
    let funcs = FunctionTable::build(&elf, &core);
    let (lines, line_info_warnings) = LineIndex::build(&elf, btf.as_ref(), &funcs);
    let linker = reloc::Linker {
        elf: &elf,
        funcs: &funcs,
        maps: &maps,
    };

    let text_is_program = match options.text_programs {
        TextPrograms::Always => true,
        TextPrograms::Never => false,
        TextPrograms::WhenAlone => !elf
            .sections
            .iter()
            .any(|s| s.role == SectionRole::Code && s.size > 0 && s.name != ".text"),
    };

    let mut programs = Vec::new();
    let mut source_lines = Vec::new();
    let mut code_sections = Vec::new();
    for section in elf
        .sections
        .iter()
        .filter(|s| s.role == SectionRole::Code && s.size > 0)
    {
        let ids = funcs.in_section(section.index);
        code_sections.push(CodeSection {
            name: section.name.clone(),
            slots: (section.size / 8) as usize,
            functions: ids.iter().map(|&i| funcs.funcs[i].name.clone()).collect(),
        });
        if section.name == ".text" && !text_is_program {
            continue;
        }
        for &id in ids {
            let name = funcs.funcs[id].name.clone();
            match linker.link(id) {
                Ok(linked) => {
                    source_lines.push(lines.table(&name, &linked, &funcs));
                    programs.push(Program {
                        name,
                        section: Some(section.name.clone()),
                        prog_type: prog_type(&section.name),
                        insns: linked.insns,
                        maps: maps.maps.clone(),
                    });
                }
                Err(kind) => errors.push(SectionError {
                    section: section.name.clone(),
                    item: Item::Program(name),
                    kind,
                }),
            }
        }
    }

    let license = elf.section_with_role(SectionRole::License).and_then(|s| {
        let d = s.data.as_ref().ok()?;
        let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
        Some(String::from_utf8_lossy(&d[..end]).into_owned())
    });
    let kernel_version = elf.section_with_role(SectionRole::Version).and_then(|s| {
        let d = s.data.as_ref().ok()?.get(..4)?;
        Some(u32::from_le_bytes([d[0], d[1], d[2], d[3]]))
    });

    let object = Object {
        programs,
        maps: maps.maps,
        license,
        kernel_version,
        code_sections,
        source_lines,
        line_info_warnings,
    };
    tracing::debug!(
        programs = object.programs.len(),
        maps = object.maps.len(),
        errors = errors.len(),
        "object loaded"
    );
    Ok((object, errors))
}

/// Program type from the section name; rbpf-style `.classifier` is read without its dot.
fn prog_type(section: &str) -> ProgType {
    match ProgType::from_section(section) {
        ProgType::Other(0) if section.starts_with('.') => ProgType::from_section(&section[1..]),
        t => t,
    }
}

/// CO-RE record offsets by section name. `Err` when `.BTF.ext` exists but cannot be read:
/// then CO-RE use is unknown and every program is refused rather than run with field offsets
/// that may be wrong for any real kernel.
fn core_records(
    elf: &ElfFile<'_>,
    btf: Option<&Result<Btf<'_>, String>>,
) -> Result<HashMap<String, Vec<u32>>, String> {
    let Some(ext) = elf.section_with_role(SectionRole::BtfExt) else {
        return Ok(HashMap::new());
    };
    let parsed = match (&ext.data, btf) {
        (Ok(data), Some(Ok(btf))) => btf::core_relocs(data, btf),
        (Err(e), _) => Err(e.clone()),
        (_, Some(Err(e))) => Err(format!(".BTF unusable: {e}")),
        (_, None) => Err("no .BTF to name its sections".into()),
    };
    parsed.map_err(|reason| {
        tracing::warn!(%reason, "unreadable .BTF.ext");
        format!(".BTF.ext unreadable ({reason}), so CO-RE use is unknown")
    })
}
