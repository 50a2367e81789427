//! Errors of the ELF loader.
//!
//! Two levels, because one bad program must not hide the good ones next to it:
//! [`ElfError`] is fatal for the whole object (not ELF, big-endian, broken section table), while
//! [`SectionError`] belongs to one program or one map and names its section, so a lenient load
//! can report it and keep everything else.

use std::fmt;

use crate::isa::DecodeError;

/// The object as a whole cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    /// The first bytes are not `\x7fELF`.
    #[error("not an ELF file (bad magic at byte offset 0)")]
    NotElf,
    /// `EI_CLASS` is not ELFCLASS64; clang `-target bpf` always writes ELF64.
    #[error("not a 64-bit ELF file (EI_CLASS {0} at byte offset 4); BPF objects are ELF64")]
    NotElf64(u8),
    /// `EI_DATA` says big-endian (`-target bpfeb`); the instruction stream would be byte-swapped.
    #[error("big-endian object not supported (EI_DATA 2 at byte offset 5)")]
    BigEndian,
    /// `e_machine` is neither `EM_BPF` (247) nor `EM_NONE` (0, written by very old LLVM).
    #[error("not a BPF object: e_machine {0} at byte offset 18 (expected 247, EM_BPF)")]
    NotBpf(u16),
    /// The header, section table, string tables or symbol table cannot be read.
    #[error("malformed ELF: {0}")]
    Malformed(String),
    /// A program or map failed (only from the strict [`load_object`](super::load_object)).
    /// Boxed: it is the rare case and would otherwise triple the size of every `Result`.
    #[error(transparent)]
    Section(Box<SectionError>),
}

impl From<SectionError> for ElfError {
    fn from(e: SectionError) -> Self {
        ElfError::Section(Box::new(e))
    }
}

/// What failed inside a section: a program (entry function) or a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A program, by function symbol name (or the section name when it has no symbol).
    Program(String),
    /// A map, by symbol or section name.
    Map(String),
}

/// One program or map that could not be loaded; the rest of the object still loads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SectionError {
    /// ELF section holding the failed program or map.
    pub section: String,
    /// The program or map that failed.
    pub item: Item,
    /// Why.
    pub kind: SectionErrorKind,
}

impl fmt::Display for SectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "section `{}`", self.section)?;
        match &self.item {
            Item::Program(name) if *name != self.section => write!(f, ", program `{name}`")?,
            Item::Map(name) if *name != self.section => write!(f, ", map `{name}`")?,
            _ => {}
        }
        write!(f, ": {}", self.kind)
    }
}

impl SectionError {
    /// Whether a program (rather than a map definition) failed.
    pub fn is_program(&self) -> bool {
        matches!(self.item, Item::Program(_))
    }
}

/// Where inside a linked program an instruction sits: the function and the slot within it.
///
/// Slot numbers are relative to the function's first instruction, as `llvm-objdump -d` prints
/// them for a function symbol; `function` names the subprogram when it is not the program itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsnLoc {
    /// Slot index inside the function (8-byte units).
    pub insn: usize,
    /// The subprogram holding the instruction, when it is not the program's own entry function.
    pub function: Option<String>,
}

impl fmt::Display for InsnLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "insn {}", self.insn)?;
        if let Some(func) = &self.function {
            write!(f, " of subprogram `{func}`")?;
        }
        Ok(())
    }
}

/// Why a program or map cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SectionErrorKind {
    /// `.BTF.ext` carries CO-RE relocations for the program's code; resolving them needs the
    /// target kernel's BTF, which an offload toolchain does not have.
    #[error(
        "CO-RE relocations need kernel BTF, not supported ({count} in `{function}`, first at insn {first_insn})"
    )]
    CoreRelocations {
        /// Function (program or subprogram) carrying them.
        function: String,
        /// Number of CO-RE records in that function.
        count: usize,
        /// Slot of the first one, relative to the function.
        first_insn: usize,
    },
    /// A relocation names an undefined symbol: a `__kconfig`/`__ksym` extern.
    #[error("relocation at {at} refers to extern symbol `{name}` (kconfig/ksym), not supported")]
    ExternSymbol {
        /// Location of the instruction.
        at: InsnLoc,
        /// Symbol name.
        name: String,
    },
    /// A call relocation names an undefined function: a kernel function (kfunc) or an
    /// unresolved extern such as a `memset` libcall.
    #[error(
        "call at {at} to undefined function `{name}` (kfunc or unresolved extern), not supported"
    )]
    Kfunc {
        /// Location of the call.
        at: InsnLoc,
        /// Function name.
        name: String,
    },
    /// A relocation's symbol index is outside the symbol table, or the symbol points nowhere useful.
    #[error("relocation at {at} refers to unknown symbol {name}")]
    UnknownSymbol {
        /// Location of the instruction.
        at: InsnLoc,
        /// Name, or `#index` when it has none.
        name: String,
    },
    /// A relocation that cannot apply to the instruction it targets.
    #[error("relocation at {at}: {reason}")]
    BadRelocation {
        /// Location of the instruction.
        at: InsnLoc,
        /// Explanation.
        reason: String,
    },
    /// A bpf-to-bpf call or function address whose target is not in any function.
    #[error(
        "call at {at} targets byte offset {target} of section `{section}`, which is not inside a function"
    )]
    BadCallTarget {
        /// Location of the call.
        at: InsnLoc,
        /// Target byte offset inside `section`.
        target: i64,
        /// Section of the target.
        section: String,
    },
    /// A map the code refers to could not be defined.
    #[error("map `{map}` used at {at} is unavailable: {reason}")]
    MapUnavailable {
        /// Location of the `lddw`.
        at: InsnLoc,
        /// Map name.
        map: String,
        /// Why the map failed.
        reason: String,
    },
    /// A map definition that cannot be read (legacy `maps` layout, BTF `.maps`, data section).
    #[error("bad map definition: {0}")]
    BadMapDef(String),
    /// An instruction does not decode (before linking; `insn` is relative to the function).
    #[error("{function}: {error}")]
    Decode {
        /// Function holding the instruction.
        function: String,
        /// The decoder's error.
        error: DecodeError,
    },
    /// The linked program does not decode (a jump or call target out of range).
    #[error("linked program: {0}")]
    Linked(DecodeError),
    /// The section's bytes, size or symbols are inconsistent.
    #[error("malformed section: {0}")]
    Malformed(String),
    /// The linked program is larger than the kernel's 1,000,000-instruction limit.
    #[error("linked program has {0} instruction slots, more than the kernel's limit of 1000000")]
    TooLarge(usize),
}

impl SectionErrorKind {
    /// A short stable class for histograms in corpus reports.
    pub fn class(&self) -> &'static str {
        match self {
            SectionErrorKind::CoreRelocations { .. } => "co-re relocations",
            SectionErrorKind::ExternSymbol { .. } => "extern symbol (kconfig/ksym)",
            SectionErrorKind::Kfunc { .. } => "call to undefined function (kfunc/extern)",
            SectionErrorKind::UnknownSymbol { .. } => "unknown symbol",
            SectionErrorKind::BadRelocation { .. } => "bad relocation",
            SectionErrorKind::BadCallTarget { .. } => "bad call target",
            SectionErrorKind::MapUnavailable { .. } => "map unavailable",
            SectionErrorKind::BadMapDef(_) => "bad map definition",
            SectionErrorKind::Decode { .. } => "instruction does not decode",
            SectionErrorKind::Linked(_) => "linked program does not decode",
            SectionErrorKind::Malformed(_) => "malformed section",
            SectionErrorKind::TooLarge(_) => "program too large",
        }
    }
}
