//! Functions inside code sections: where each starts and ends, and its decoded instructions.
//!
//! A code section may hold several functions (libbpf allows many programs per section, and
//! `.text` holds the subprograms). Function symbols (`STT_FUNC`) delimit them; objects from
//! old clang versions mark entry points with untyped global symbols instead, and hand-made
//! objects may have no symbol at all, in which case the whole section is one function named
//! after the section. Each function is decoded once, before relocation, so decoding errors
//! carry the slot index relative to the function and every program that uses it shares them.

use std::collections::HashMap;

use super::error::SectionErrorKind;
use super::sections::{ElfFile, SectionRole, SymKind};
use crate::isa::{self, Insn, RawInsn};

/// One function of a code section.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    /// ELF section index.
    pub section: usize,
    /// Symbol name (the section name when the section has no symbol).
    pub name: String,
    /// First byte inside the section.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Decoded instructions (one entry per slot), or why they cannot be used.
    pub code: Result<Vec<Insn>, SectionErrorKind>,
    /// Byte offsets (inside the section) of CO-RE relocation records within this function.
    pub core: Vec<u32>,
}

/// All functions of all code sections.
#[derive(Debug, Default)]
pub(crate) struct FunctionTable {
    /// Functions in section order, then start order.
    pub funcs: Vec<Function>,
    /// Function ids by section, sorted by start.
    by_section: HashMap<usize, Vec<usize>>,
}

impl FunctionTable {
    /// Finds and decodes the functions of every non-empty code section.
    pub fn build(elf: &ElfFile<'_>, core: &Result<HashMap<String, Vec<u32>>, String>) -> Self {
        let _span = tracing::debug_span!("elf_functions").entered();
        let mut table = FunctionTable::default();
        for section in &elf.sections {
            if section.role != SectionRole::Code || section.size == 0 {
                continue;
            }
            let bounds = function_bounds(elf, section.index, section.size, &section.name);
            let core_offsets = match core {
                Ok(c) => c.get(&section.name).map(Vec::as_slice).unwrap_or(&[]),
                Err(_) => &[],
            };
            for (name, start, end) in bounds {
                let code = match (&section.data, core) {
                    (_, Err(e)) => Err(SectionErrorKind::Malformed(e.clone())),
                    (Err(e), _) => Err(SectionErrorKind::Malformed(e.clone())),
                    (Ok(data), _) => decode_function(data, start, end, &name),
                };
                let core = core_offsets
                    .iter()
                    .copied()
                    .filter(|&o| u64::from(o) >= start && u64::from(o) < end)
                    .collect();
                let id = table.funcs.len();
                table.funcs.push(Function {
                    section: section.index,
                    name,
                    start,
                    end,
                    code,
                    core,
                });
                table.by_section.entry(section.index).or_default().push(id);
            }
        }
        table
    }

    /// Ids of the functions of `section`, in start order.
    pub fn in_section(&self, section: usize) -> &[usize] {
        self.by_section
            .get(&section)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The function of `section` containing byte `offset`.
    pub fn containing(&self, section: usize, offset: u64) -> Option<usize> {
        self.in_section(section).iter().copied().find(|&id| {
            let f = &self.funcs[id];
            offset >= f.start && offset < f.end
        })
    }
}

/// `(name, start, end)` of each function of a section, by the rules in the module doc.
fn function_bounds(
    elf: &ElfFile<'_>,
    section: usize,
    size: u64,
    section_name: &str,
) -> Vec<(String, u64, u64)> {
    let in_section =
        |kind_ok: &dyn Fn(&super::sections::Symbol) -> bool| -> Vec<(u64, u64, String)> {
            let mut v: Vec<(u64, u64, String)> = elf
                .symbols
                .iter()
                .filter(|s| s.section == Some(section) && kind_ok(s))
                .map(|s| (s.value, s.size, s.name.clone()))
                .collect();
            // Aliases at one offset: keep the first by name for a stable choice.
            v.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
            v.dedup_by_key(|s| s.0);
            v
        };
    let mut syms = in_section(&|s| s.kind == SymKind::Func);
    if syms.is_empty() {
        syms = in_section(&|s| s.kind == SymKind::NoType && !s.local);
    }
    if syms.is_empty() {
        return vec![(section_name.to_string(), 0, size)];
    }
    let starts: Vec<u64> = syms.iter().map(|s| s.0).collect();
    syms.iter()
        .enumerate()
        .map(|(i, (start, sym_size, name))| {
            // Zero-sized symbols (old clang, hand-written assembly) extend to the next one.
            let end = if *sym_size > 0 {
                start.saturating_add(*sym_size)
            } else {
                starts.get(i + 1).copied().unwrap_or(size)
            };
            (name.clone(), *start, end)
        })
        .collect()
}

/// Decodes the bytes `[start, end)` of a section into typed instructions, one per slot.
///
/// Targets of jumps and calls are not checked here: calls leave the function by design, and
/// the whole linked program is checked once it is assembled.
fn decode_function(
    data: &[u8],
    start: u64,
    end: u64,
    name: &str,
) -> Result<Vec<Insn>, SectionErrorKind> {
    let malformed = |why: String| {
        Err(SectionErrorKind::Malformed(format!(
            "function `{name}`: {why}"
        )))
    };
    if !start.is_multiple_of(8) || !end.is_multiple_of(8) {
        return malformed(format!(
            "bytes {start:#x}..{end:#x} are not aligned to 8-byte instructions"
        ));
    }
    if end <= start || end > data.len() as u64 {
        return malformed(format!(
            "bytes {start:#x}..{end:#x} are outside the section ({:#x} bytes)",
            data.len()
        ));
    }
    let bytes = &data[start as usize..end as usize];
    let raw =
        RawInsn::slice_from_bytes(bytes).map_err(|e| SectionErrorKind::Malformed(e.to_string()))?;
    let mut out = Vec::with_capacity(raw.len());
    let mut pc = 0;
    while pc < raw.len() {
        let insn = isa::decode_at(&raw, pc).map_err(|error| SectionErrorKind::Decode {
            function: name.to_string(),
            error,
        })?;
        out.push(insn);
        if insn.slots() == 2 {
            out.push(Insn::LdImm64Tail);
        }
        pc += insn.slots();
    }
    Ok(out)
}
