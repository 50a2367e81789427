//! The ELF container: header checks, sections classified by the role libbpf gives their
//! names, the symbol table and the relocation tables.
//!
//! This is the only module that touches the `object` crate. Everything after it works on plain
//! owned descriptions ([`Section`], [`Symbol`], [`Reloc`]), so the BPF-specific logic never sees
//! raw ELF structures and every out-of-range offset is turned into an error here, once.

use std::collections::HashMap;

use object::LittleEndian as LE;
use object::elf::{self, FileHeader64};
use object::read::elf::{FileHeader, Rel as _, Rela as _, SectionHeader as _, Sym as _};

use super::error::ElfError;

/// `e_machine` of BPF objects.
const EM_BPF: u16 = 247;
/// `EM_NONE`: LLVM's BPF backend wrote it before EM_BPF was assigned (ebpf-samples has two
/// such objects: ovs/datapath.o and bpf_cilium_test/bpf_lxc_jit.o).
const EM_NONE: u16 = 0;

/// What a section is for, decided by its type, flags and name (libbpf's conventions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionRole {
    /// Executable code (`SHF_EXECINSTR`): program sections and `.text`.
    Code,
    /// Legacy map definitions: `maps` or `maps/*` (`struct bpf_map_def` / `bpf_elf_map`).
    LegacyMaps,
    /// BTF-defined maps (`.maps`).
    BtfMaps,
    /// Global variables: `.data*`, `.rodata*`, `.bss*`.
    GlobalData {
        /// `.rodata*`: the program may not write it (`BPF_F_RDONLY_PROG`).
        read_only: bool,
    },
    /// `license`: a NUL-terminated string.
    License,
    /// `version`: the kernel version word old kprobe loaders required.
    Version,
    /// `.BTF`: type information.
    Btf,
    /// `.BTF.ext`: func/line info and CO-RE relocation records.
    BtfExt,
    /// Anything else (debug info, symbol and string tables, relocation tables, ...).
    Other,
}

/// One section, with its bytes when they are inside the file.
#[derive(Debug, Clone)]
pub(crate) struct Section<'a> {
    /// ELF section index.
    pub index: usize,
    /// Section name (lossily decoded; `#N` when the name is unreadable).
    pub name: String,
    /// Role, from type, flags and name.
    pub role: SectionRole,
    /// `sh_size` in bytes (also for `SHT_NOBITS`).
    pub size: u64,
    /// The bytes in the file (`Ok(&[])` for `SHT_NOBITS`), or why they cannot be read.
    pub data: Result<&'a [u8], String>,
}

/// Kind of a symbol (`STT_*`), reduced to what the loader distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymKind {
    /// `STT_NOTYPE`: old clang marks program entry points this way.
    NoType,
    /// `STT_OBJECT`: a variable or a map.
    Object,
    /// `STT_FUNC`: a function.
    Func,
    /// `STT_SECTION`: the section itself; relocations against it carry the offset in the insn.
    Section,
    /// Any other type (`STT_FILE`, ...).
    Other,
}

/// One symbol table entry.
#[derive(Debug, Clone)]
pub(crate) struct Symbol {
    /// Name (`#index` when unreadable or empty and not a section symbol).
    pub name: String,
    /// Defining section, or `None` for undefined, absolute and common symbols.
    pub section: Option<usize>,
    /// `st_shndx == SHN_UNDEF`: an extern (kconfig, ksym, kfunc).
    pub undefined: bool,
    /// Kind.
    pub kind: SymKind,
    /// `STB_LOCAL` binding.
    pub local: bool,
    /// `st_value`: offset inside the section for relocatable objects.
    pub value: u64,
    /// `st_size`.
    pub size: u64,
}

/// One relocation entry, applying to the section it is filed under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reloc {
    /// Byte offset inside the target section.
    pub offset: u64,
    /// Symbol index.
    pub symbol: usize,
    /// `R_BPF_*` type.
    pub r_type: u32,
}

/// The parsed container.
#[derive(Debug)]
pub(crate) struct ElfFile<'a> {
    /// All sections, indexed by ELF section index.
    pub sections: Vec<Section<'a>>,
    /// All symbols, indexed by symbol index.
    pub symbols: Vec<Symbol>,
    /// Relocations by target section index, sorted by offset; `Err` when a table is unreadable.
    pub relocs: HashMap<usize, Result<Vec<Reloc>, String>>,
}

impl<'a> ElfFile<'a> {
    /// Parses the container. Fatal problems (not a little-endian ELF64 BPF file, unreadable
    /// section table or symbol table) are errors; problems local to one section are recorded on
    /// that section so only what depends on it fails.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        let _span = tracing::debug_span!("elf_container", bytes = bytes.len()).entered();
        check_ident(bytes)?;
        let header = FileHeader64::<LE>::parse(bytes)
            .map_err(|e| ElfError::Malformed(format!("file header: {e}")))?;
        let machine = header.e_machine(LE);
        if machine != EM_BPF && machine != EM_NONE {
            return Err(ElfError::NotBpf(machine));
        }
        let table = header
            .sections(LE, bytes)
            .map_err(|e| ElfError::Malformed(format!("section table: {e}")))?;

        let mut sections = Vec::with_capacity(table.len());
        for (index, sh) in table.enumerate() {
            let name = match table.section_name(LE, sh) {
                Ok(n) => String::from_utf8_lossy(n).into_owned(),
                Err(_) => format!("#{}", index.0),
            };
            let size = sh.sh_size(LE);
            let data = sh.data(LE, bytes).map_err(|e| {
                format!(
                    "bytes out of file (offset {:#x}, size {size:#x}, file {:#x} bytes): {e}",
                    sh.sh_offset(LE),
                    bytes.len()
                )
            });
            let role = classify(&name, sh.sh_type(LE), sh.sh_flags(LE));
            sections.push(Section {
                index: index.0,
                name,
                role,
                size,
                data,
            });
        }

        let symtab = table
            .symbols(LE, bytes, elf::SHT_SYMTAB)
            .map_err(|e| ElfError::Malformed(format!("symbol table: {e}")))?;
        let mut symbols = Vec::with_capacity(symtab.len());
        for (index, sym) in symtab.enumerate() {
            let kind = match sym.st_type() {
                elf::STT_NOTYPE => SymKind::NoType,
                elf::STT_OBJECT => SymKind::Object,
                elf::STT_FUNC => SymKind::Func,
                elf::STT_SECTION => SymKind::Section,
                _ => SymKind::Other,
            };
            let shndx = sym.st_shndx(LE);
            let section = match shndx {
                elf::SHN_UNDEF => None,
                s if s >= elf::SHN_LORESERVE => None,
                s => Some(usize::from(s)),
            };
            let mut name = symtab
                .symbol_name(LE, sym)
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .unwrap_or_default();
            if name.is_empty() {
                name = match (kind, section.and_then(|s| sections.get(s))) {
                    (SymKind::Section, Some(sec)) => sec.name.clone(),
                    _ => format!("#{}", index.0),
                };
            }
            symbols.push(Symbol {
                name,
                section,
                undefined: shndx == elf::SHN_UNDEF,
                kind,
                local: sym.st_bind() == elf::STB_LOCAL,
                value: sym.st_value(LE),
                size: sym.st_size(LE),
            });
        }

        let mut relocs: HashMap<usize, Result<Vec<Reloc>, String>> = HashMap::new();
        for (index, sh) in table.enumerate() {
            let target = sh.sh_info(LE) as usize;
            let parsed: Result<Option<Vec<Reloc>>, String> = match sh.sh_type(LE) {
                elf::SHT_REL => sh
                    .rel(LE, bytes)
                    .map(|r| {
                        r.map(|(rels, _)| {
                            rels.iter()
                                .map(|r| Reloc {
                                    offset: r.r_offset(LE),
                                    symbol: r.r_sym(LE) as usize,
                                    r_type: r.r_type(LE),
                                })
                                .collect()
                        })
                    })
                    .map_err(|e| e.to_string()),
                elf::SHT_RELA => sh
                    .rela(LE, bytes)
                    .map(|r| {
                        r.map(|(rels, _)| {
                            rels.iter()
                                .map(|r| Reloc {
                                    offset: r.r_offset(LE),
                                    symbol: r.r_sym(LE, false) as usize,
                                    r_type: r.r_type(LE, false),
                                })
                                .collect()
                        })
                    })
                    .map_err(|e| e.to_string()),
                _ => continue,
            };
            // Only relocations of code matter to the loader; debug-info relocations are skipped.
            if sections.get(target).map(|s| s.role) != Some(SectionRole::Code) {
                continue;
            }
            let slot = relocs.entry(target).or_insert_with(|| Ok(Vec::new()));
            match parsed {
                Ok(Some(list)) => {
                    if let Ok(all) = slot {
                        all.extend(list);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    *slot = Err(format!("relocation section #{}: {e}", index.0));
                }
            }
        }
        for list in relocs.values_mut().flatten() {
            list.sort_by_key(|r| r.offset);
        }

        Ok(ElfFile {
            sections,
            symbols,
            relocs,
        })
    }

    /// Relocations of `section` whose offsets fall in `[start, end)` bytes.
    pub fn relocs_in(&self, section: usize, start: u64, end: u64) -> Result<&[Reloc], String> {
        match self.relocs.get(&section) {
            None => Ok(&[]),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(list)) => {
                let lo = list.partition_point(|r| r.offset < start);
                let hi = list.partition_point(|r| r.offset < end);
                Ok(list.get(lo..hi).unwrap_or(&[]))
            }
        }
    }

    /// The first section with this role, if any.
    pub fn section_with_role(&self, role: SectionRole) -> Option<&Section<'a>> {
        self.sections.iter().find(|s| s.role == role)
    }

    /// Section name for messages.
    pub fn section_name(&self, index: usize) -> String {
        self.sections
            .get(index)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| format!("#{index}"))
    }
}

/// Checks the identification bytes before `object` does, so the error says precisely why
/// (big-endian objects parse fine as ELF but must be refused).
fn check_ident(bytes: &[u8]) -> Result<(), ElfError> {
    if !bytes.starts_with(b"\x7fELF") {
        return Err(ElfError::NotElf);
    }
    match bytes.get(4).copied() {
        Some(elf::ELFCLASS64) => {}
        Some(c) => return Err(ElfError::NotElf64(c)),
        None => return Err(ElfError::Malformed("file ends inside e_ident".into())),
    }
    match bytes.get(5).copied() {
        Some(elf::ELFDATA2LSB) => Ok(()),
        Some(elf::ELFDATA2MSB) => Err(ElfError::BigEndian),
        Some(d) => Err(ElfError::Malformed(format!(
            "EI_DATA {d} at byte offset 5 is neither little- nor big-endian"
        ))),
        None => Err(ElfError::Malformed("file ends inside e_ident".into())),
    }
}

/// Whether the identification bytes say big-endian (for corpus tools that skip such objects).
pub fn is_big_endian(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF") && bytes.get(5).copied() == Some(elf::ELFDATA2MSB)
}

fn classify(name: &str, sh_type: u32, flags: u64) -> SectionRole {
    let exec = flags & u64::from(elf::SHF_EXECINSTR) != 0;
    let data_like = matches!(sh_type, elf::SHT_PROGBITS | elf::SHT_NOBITS);
    if sh_type == elf::SHT_PROGBITS && exec {
        return SectionRole::Code;
    }
    if !data_like || exec {
        return SectionRole::Other;
    }
    let dotted = |base: &str| name == base || name.starts_with(&format!("{base}."));
    match name {
        "maps" => SectionRole::LegacyMaps,
        _ if name.starts_with("maps/") => SectionRole::LegacyMaps,
        ".maps" => SectionRole::BtfMaps,
        "license" => SectionRole::License,
        "version" => SectionRole::Version,
        ".BTF" => SectionRole::Btf,
        ".BTF.ext" => SectionRole::BtfExt,
        _ if dotted(".rodata") => SectionRole::GlobalData { read_only: true },
        _ if dotted(".data") || dotted(".bss") => SectionRole::GlobalData { read_only: false },
        _ => SectionRole::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_sections_like_libbpf() {
        let pb = elf::SHT_PROGBITS;
        let x = u64::from(elf::SHF_EXECINSTR);
        assert_eq!(classify("xdp", pb, x), SectionRole::Code);
        assert_eq!(classify(".text", pb, x), SectionRole::Code);
        assert_eq!(classify("maps", pb, 0), SectionRole::LegacyMaps);
        assert_eq!(classify("maps/foo", pb, 0), SectionRole::LegacyMaps);
        assert_eq!(classify(".maps", pb, 0), SectionRole::BtfMaps);
        assert_eq!(
            classify(".rodata.str1.1", pb, 0),
            SectionRole::GlobalData { read_only: true }
        );
        assert_eq!(
            classify(".bss", elf::SHT_NOBITS, 0),
            SectionRole::GlobalData { read_only: false }
        );
        assert_eq!(classify(".database", pb, 0), SectionRole::Other);
        assert_eq!(classify(".rel.data", elf::SHT_REL, 0), SectionRole::Other);
    }

    #[test]
    fn refuses_non_bpf_headers() {
        assert_eq!(ElfFile::parse(b"").err(), Some(ElfError::NotElf));
        assert_eq!(
            ElfFile::parse(b"\x7fELF\x01\x01").err(),
            Some(ElfError::NotElf64(1))
        );
        assert_eq!(
            ElfFile::parse(b"\x7fELF\x02\x02").err(),
            Some(ElfError::BigEndian)
        );
        assert!(matches!(
            ElfFile::parse(b"\x7fELF\x02\x01\x01"),
            Err(ElfError::Malformed(_))
        ));
    }
}
