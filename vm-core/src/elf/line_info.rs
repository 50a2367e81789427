//! Source lines of loaded programs, from the `line_info` subsection of `.BTF.ext`.
//!
//! clang writes one record per "is_stmt" instruction: the byte offset of the instruction inside
//! its ELF section, the file name, the line and column, and the whole text of that source line,
//! all as offsets into the `.BTF` string table. Reports use it to say which C line an
//! instruction came from, without DWARF and without the source files.
//!
//! Records are per *section*, but our programs are linked: a program is its entry function
//! followed by the subprograms it calls, each copied from wherever it sits (often `.text`).
//! So records are first attached to the function holding them (slot relative to the function
//! start), then shifted to wherever [`reloc::Linker`](super::reloc) placed that function in
//! each program. A subprogram shared by two programs gets its lines in both.
//!
//! Line info is optional debug data: a malformed `line_info` subsection never fails a load. A
//! structural problem (bad header, truncated records) drops all line info of the object; a bad
//! record (outside every function, unreadable strings) drops only itself. Both are reported
//! as [`LineInfoWarning`]s on the object.

use std::collections::HashMap;

use super::btf::{self, Btf};
use super::functions::FunctionTable;
use super::reloc::Linked;
use super::sections::{ElfFile, SectionRole};
use crate::isa::Insn;

/// Smallest `line_info` record: `insn_off`, `file_name_off`, `line_off`, `line_col`.
const MIN_RECORD: usize = 16;
/// `line_col` packs the column into its low 10 bits and the line above them.
const COLUMN_BITS: u32 = 10;
/// Offset of `line_info_off` in the `.BTF.ext` header (after magic, version, flags, hdr_len,
/// func_info_off, func_info_len); `line_info_len` follows it.
const LINE_INFO_OFF_AT: usize = 16;
/// Per-record warnings kept per object; the rest are summarized in one more warning, so a
/// hostile file cannot make the warning list as large as itself.
const MAX_RECORD_WARNINGS: usize = 16;

/// The source line an instruction came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine {
    /// Instruction slot in the loaded program ([`Program::insns`](crate::Program) index).
    pub pc: usize,
    /// Source file name as clang recorded it (often an absolute build path).
    pub file: String,
    /// 1-based line number (0 when clang did not know it).
    pub line: u32,
    /// 1-based column (0 when unknown).
    pub column: u32,
    /// Text of the source line as stored in BTF, trimmed of surrounding whitespace.
    pub text: String,
}

/// Where one function (the entry or an appended subprogram) sits in a loaded program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpan {
    /// Function symbol name.
    pub name: String,
    /// First slot.
    pub start: usize,
    /// One past the last slot.
    pub end: usize,
}

/// The source lines of one loaded program, sorted by pc, at most one entry per pc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineTable {
    program: String,
    entries: Vec<SourceLine>,
    functions: Vec<FunctionSpan>,
}

impl LineTable {
    /// Builds a table from entries and function spans (sorted here; for tests and tools that
    /// produce line info another way).
    pub fn new(
        program: impl Into<String>,
        mut entries: Vec<SourceLine>,
        mut functions: Vec<FunctionSpan>,
    ) -> Self {
        entries.sort_by_key(|e| e.pc);
        entries.dedup_by_key(|e| e.pc);
        functions.sort_by_key(|f| f.start);
        LineTable {
            program: program.into(),
            entries,
            functions,
        }
    }

    /// Name of the program (its entry function).
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Every record, sorted by pc.
    pub fn entries(&self) -> &[SourceLine] {
        &self.entries
    }

    /// The functions of the program in slot order (entry first).
    pub fn functions(&self) -> &[FunctionSpan] {
        &self.functions
    }

    /// Whether the program has no line records.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of line records.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The function holding slot `pc`.
    pub fn function_at(&self, pc: usize) -> Option<&FunctionSpan> {
        let i = self.functions.partition_point(|f| f.start <= pc);
        self.functions.get(i.checked_sub(1)?).filter(|f| pc < f.end)
    }

    /// The line covering `pc`: the last record at or before `pc` inside the same function.
    /// `None` when `pc` is outside the program or its function has no record up to `pc`
    /// (a record of the previous function must not leak into the next one).
    pub fn at(&self, pc: usize) -> Option<&SourceLine> {
        let func = self.function_at(pc)?;
        let i = self.entries.partition_point(|e| e.pc <= pc);
        self.entries
            .get(i.checked_sub(1)?)
            .filter(|e| e.pc >= func.start)
    }
}

/// Why some or all line info of an object was ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineInfoWarning {
    /// The subsection (or the `.BTF` strings it needs) cannot be read; the object has no lines.
    #[error("no source lines for this object: {0}")]
    Unusable(String),
    /// One record was ignored.
    #[error(
        ".BTF.ext line_info record at byte offset {offset} (section `{section}`, insn_off {insn_off:#x}) ignored: {reason}"
    )]
    RecordDropped {
        /// Byte offset of the record inside `.BTF.ext`.
        offset: usize,
        /// Section the record names.
        section: String,
        /// Its instruction byte offset inside that section.
        insn_off: u32,
        /// Why it was ignored.
        reason: String,
    },
    /// More records were ignored than are listed one by one.
    #[error("{0} more .BTF.ext line_info records ignored")]
    MoreDropped(usize),
}

/// A record as stored: offsets not yet resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RawRecord {
    /// Byte offset of the record inside `.BTF.ext` (for messages).
    at: usize,
    /// `sec_name_off` of its block.
    sec_name_off: u32,
    insn_off: u32,
    file_name_off: u32,
    line_off: u32,
    line_col: u32,
}

/// Reads every record of the `line_info` subsection; `Err` on any structural problem.
fn parse_records(ext: &[u8]) -> Result<Vec<RawRecord>, String> {
    let hdr = btf::preamble(ext, ".BTF.ext")?;
    if hdr < LINE_INFO_OFF_AT + 8 {
        return Err(format!(
            ".BTF.ext: header length {hdr} too short for line_info (needs 24)"
        ));
    }
    let (Some(off), Some(len)) = (
        btf::u32_at(ext, LINE_INFO_OFF_AT),
        btf::u32_at(ext, LINE_INFO_OFF_AT + 4),
    ) else {
        return Err(".BTF.ext: truncated header".into());
    };
    if len == 0 {
        return Ok(Vec::new());
    }
    let sub = btf::part(ext, hdr, off, len, ".BTF.ext line_info subsection")?;
    // Both cannot overflow: `part` checked `hdr + off + len` fits in the section.
    let base = hdr + off as usize;
    let rec_size = btf::u32_at(sub, 0)
        .ok_or_else(|| format!(".BTF.ext: line_info subsection truncated at byte {base}"))?
        as usize;
    if rec_size < MIN_RECORD {
        return Err(format!(
            ".BTF.ext: line_info record size {rec_size} below {MIN_RECORD} (byte {base})"
        ));
    }
    let mut out = Vec::new();
    let mut pos = 4usize;
    while pos < sub.len() {
        let (Some(sec_name_off), Some(count)) = (btf::u32_at(sub, pos), btf::u32_at(sub, pos + 4))
        else {
            return Err(format!(
                ".BTF.ext: line_info block header truncated at byte {}",
                base + pos
            ));
        };
        pos += 8;
        // Checked before the loop so a huge count cannot make us spin or over-reserve.
        let needed = (count as usize).checked_mul(rec_size);
        if needed.is_none_or(|n| n > sub.len() - pos) {
            return Err(format!(
                ".BTF.ext: line_info block at byte {} claims {count} records of {rec_size} bytes, more than the subsection holds",
                base + pos - 8
            ));
        }
        for _ in 0..count {
            let w = |i: usize| btf::u32_at(sub, pos + 4 * i).unwrap_or(0);
            out.push(RawRecord {
                at: base + pos,
                sec_name_off,
                insn_off: w(0),
                file_name_off: w(1),
                line_off: w(2),
                line_col: w(3),
            });
            pos += rec_size;
        }
    }
    Ok(out)
}

/// One record attached to its function.
#[derive(Debug, Clone)]
struct Record {
    /// Slot inside the function.
    slot: usize,
    file: String,
    line: u32,
    column: u32,
    text: String,
}

/// Line records of an object by function, ready to be shifted into each linked program.
#[derive(Debug, Default)]
pub(crate) struct LineIndex {
    /// Function id → records sorted by slot, one per slot.
    by_func: HashMap<usize, Vec<Record>>,
}

/// Collects per-record warnings up to [`MAX_RECORD_WARNINGS`].
#[derive(Default)]
struct Drops {
    listed: Vec<LineInfoWarning>,
    more: usize,
}

impl Drops {
    fn drop(&mut self, r: &RawRecord, section: &str, reason: impl Into<String>) {
        if self.listed.len() < MAX_RECORD_WARNINGS {
            self.listed.push(LineInfoWarning::RecordDropped {
                offset: r.at,
                section: section.to_string(),
                insn_off: r.insn_off,
                reason: reason.into(),
            });
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self) -> Vec<LineInfoWarning> {
        if self.more > 0 {
            self.listed.push(LineInfoWarning::MoreDropped(self.more));
        }
        self.listed
    }
}

impl LineIndex {
    /// Reads `.BTF.ext` line info and attaches each record to the function holding it.
    /// No `.BTF.ext` means no lines and no warning.
    pub fn build(
        elf: &ElfFile<'_>,
        btf: Option<&Result<Btf<'_>, String>>,
        funcs: &FunctionTable,
    ) -> (Self, Vec<LineInfoWarning>) {
        let _span = tracing::debug_span!("elf_line_info").entered();
        let Some(ext) = elf.section_with_role(SectionRole::BtfExt) else {
            return (LineIndex::default(), Vec::new());
        };
        let unusable = |why: String| {
            tracing::warn!(reason = %why, "line info ignored");
            (LineIndex::default(), vec![LineInfoWarning::Unusable(why)])
        };
        let data = match &ext.data {
            Ok(d) => d,
            Err(e) => return unusable(format!(".BTF.ext unreadable: {e}")),
        };
        let records = match parse_records(data) {
            Ok(r) if r.is_empty() => return (LineIndex::default(), Vec::new()),
            Ok(r) => r,
            Err(e) => return unusable(e),
        };
        let btf = match btf {
            Some(Ok(b)) => b,
            Some(Err(e)) => return unusable(format!(".BTF unusable for its strings: {e}")),
            None => return unusable("no .BTF section to hold the line info strings".into()),
        };

        let mut index = LineIndex::default();
        let mut drops = Drops::default();
        for r in &records {
            let Some(section) = btf.string_lossy(r.sec_name_off) else {
                drops.drop(
                    r,
                    "?",
                    format!(
                        "section name offset {} outside .BTF strings",
                        r.sec_name_off
                    ),
                );
                continue;
            };
            let Some(sec) = elf
                .sections
                .iter()
                .find(|s| s.role == SectionRole::Code && s.name == section)
            else {
                drops.drop(r, &section, "no code section of that name");
                continue;
            };
            let off = u64::from(r.insn_off);
            if !off.is_multiple_of(8) {
                drops.drop(r, &section, "not on an instruction boundary");
                continue;
            }
            let Some(fid) = funcs.containing(sec.index, off) else {
                drops.drop(r, &section, "not inside any function of the section");
                continue;
            };
            let f = &funcs.funcs[fid];
            let slot = ((off - f.start) / 8) as usize;
            if let Ok(code) = &f.code
                && matches!(code.get(slot), Some(Insn::LdImm64Tail))
            {
                drops.drop(r, &section, "points at the second half of an lddw");
                continue;
            }
            let (Some(file), Some(text)) = (
                btf.string_lossy(r.file_name_off),
                btf.string_lossy(r.line_off),
            ) else {
                drops.drop(
                    r,
                    &section,
                    "file name or line text offset outside .BTF strings",
                );
                continue;
            };
            index.by_func.entry(fid).or_default().push(Record {
                slot,
                file: file.into_owned(),
                line: r.line_col >> COLUMN_BITS,
                column: r.line_col & ((1 << COLUMN_BITS) - 1),
                text: text.trim().to_string(),
            });
        }
        for (fid, list) in &mut index.by_func {
            list.sort_by_key(|r| r.slot);
            let before = list.len();
            list.dedup_by_key(|r| r.slot);
            if list.len() < before {
                tracing::debug!(
                    function = %funcs.funcs[*fid].name,
                    duplicates = before - list.len(),
                    "duplicate line records, first kept"
                );
            }
        }
        tracing::debug!(
            records = records.len(),
            functions = index.by_func.len(),
            "line info read"
        );
        (index, drops.finish())
    }

    /// The line table of a linked program: each placed function's records shifted by the
    /// slot where the linker put that function.
    pub fn table(&self, program: &str, linked: &Linked, funcs: &FunctionTable) -> LineTable {
        let mut entries = Vec::new();
        let mut functions = Vec::with_capacity(linked.placed.len());
        for &(fid, base) in &linked.placed {
            let Some(f) = funcs.funcs.get(fid) else {
                continue;
            };
            let slots = f.code.as_ref().map_or(0, Vec::len);
            functions.push(FunctionSpan {
                name: f.name.clone(),
                start: base,
                end: base + slots,
            });
            for r in self.by_func.get(&fid).map(Vec::as_slice).unwrap_or(&[]) {
                entries.push(SourceLine {
                    pc: base + r.slot,
                    file: r.file.clone(),
                    line: r.line,
                    column: r.column,
                    text: r.text.clone(),
                });
            }
        }
        LineTable::new(program, entries, functions)
    }
}

#[cfg(test)]
#[path = "line_info_tests.rs"]
mod tests;
