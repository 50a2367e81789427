//! Map definitions of an object, in object order: legacy `maps*` sections, BTF `.maps`, and
//! global-data sections turned into single-element array maps.
//!
//! Every map of the object gets an index into one table; that index is the "fd" the code's
//! `lddw` carries (`LdImm64::MapFd(i)` / `MapValue { fd: i, .. }`). A map whose definition
//! cannot be read does not get an index: its name and reason are kept so that only the
//! programs that use it fail.

use std::collections::HashMap;

use super::btf::Btf;
use super::error::{Item, SectionError, SectionErrorKind};
use super::sections::{ElfFile, Section, SectionRole, SymKind};
use crate::program::{MapDef, MapType};

/// `BPF_F_RDONLY_PROG`: libbpf sets it on `.rodata` maps.
const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_MMAPABLE`: libbpf sets it on every global-data map.
const BPF_F_MMAPABLE: u32 = 1 << 10;
/// Largest global-data section turned into a map. The kernel caps array values far below
/// this; the cap also keeps a corrupt `.bss` size from allocating gigabytes.
const MAX_DATA_MAP: u64 = 16 << 20;
/// Size of the fields of `struct bpf_map_def` the loader reads (type, key, value, max, flags).
const LEGACY_FIELDS: usize = 5;

/// A map that could not be defined.
#[derive(Debug, Clone)]
pub(crate) struct MapFailure {
    /// Map name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// All maps of an object and how relocations find them.
#[derive(Debug, Default)]
pub(crate) struct MapTable {
    /// Successfully defined maps, in object order.
    pub maps: Vec<MapDef>,
    /// Map definitions by (section, byte offset of the definition).
    by_location: HashMap<(usize, u64), Result<usize, MapFailure>>,
    /// Global-data maps by section.
    data: HashMap<usize, Result<usize, MapFailure>>,
    /// One error per map that could not be defined.
    pub errors: Vec<SectionError>,
}

impl MapTable {
    /// Collects the maps of every map-bearing section, in section order.
    pub fn build(elf: &ElfFile<'_>, btf: Option<&Result<Btf<'_>, String>>) -> Self {
        let _span = tracing::debug_span!("elf_maps").entered();
        let mut table = MapTable::default();
        for section in &elf.sections {
            match section.role {
                SectionRole::LegacyMaps => table.add_legacy(elf, section),
                SectionRole::BtfMaps => table.add_btf(elf, section, btf),
                SectionRole::GlobalData { read_only } => table.add_data(section, read_only),
                _ => {}
            }
        }
        table
    }

    /// The map defined at `offset` of map section `section`, if any definition starts there.
    pub fn at(&self, section: usize, offset: u64) -> Option<&Result<usize, MapFailure>> {
        self.by_location.get(&(section, offset))
    }

    /// The global-data map of `section`, if the section produced one.
    pub fn data(&self, section: usize) -> Option<&Result<usize, MapFailure>> {
        self.data.get(&section)
    }

    fn push(&mut self, def: MapDef) -> usize {
        self.maps.push(def);
        self.maps.len() - 1
    }

    fn fail(&mut self, section: &Section<'_>, name: &str, reason: String) -> MapFailure {
        self.errors.push(SectionError {
            section: section.name.clone(),
            item: Item::Map(name.to_string()),
            kind: SectionErrorKind::BadMapDef(reason.clone()),
        });
        MapFailure {
            name: name.to_string(),
            reason,
        }
    }

    /// `maps` / `maps/*`: an array of fixed-size C structs, one per symbol. The struct size is
    /// not recorded anywhere, so it is inferred as libbpf does: section size / number of map
    /// symbols. This accepts `struct bpf_map_def` (20 bytes), its 28-byte variant, and
    /// iproute2/Cilium's `struct bpf_elf_map` (28 or 36 bytes); fields past `map_flags`
    /// (pinning, ids, inner map index) are ignored.
    fn add_legacy(&mut self, elf: &ElfFile<'_>, section: &Section<'_>) {
        let mut syms: Vec<(u64, u64, &str)> = elf
            .symbols
            .iter()
            .filter(|s| s.section == Some(section.index))
            .filter(|s| !matches!(s.kind, SymKind::Section | SymKind::Other))
            .map(|s| (s.value, s.size, s.name.as_str()))
            .collect();
        syms.sort_by_key(|s| s.0);
        syms.dedup_by_key(|s| s.0);
        let data = match &section.data {
            Ok(d) => *d,
            Err(e) => {
                for &(off, _, name) in &syms {
                    let f = self.fail(section, name, e.clone());
                    self.by_location.insert((section.index, off), Err(f));
                }
                return;
            }
        };
        if syms.is_empty() {
            if !data.is_empty() {
                self.fail(
                    section,
                    &section.name,
                    format!("{} bytes of map definitions but no map symbols", data.len()),
                );
            }
            return;
        }
        let size = data.len() as u64;
        // Newer clang records the struct size on every map symbol; when all agree it is exact
        // (linked objects keep definitions of maps whose symbols were dropped). Otherwise the
        // size is section size / number of map symbols, as libbpf infers it.
        let first_size = syms[0].1;
        let by_symbol =
            (first_size > 0 && syms.iter().all(|s| s.1 == first_size)).then_some(first_size);
        let by_count = size
            .is_multiple_of(syms.len() as u64)
            .then(|| size / syms.len() as u64);
        for &(off, _, name) in &syms {
            let def_size = by_symbol.or(by_count);
            let result = match def_size {
                None => Err(format!(
                    "cannot infer the definition size: section is {size} bytes for {} map symbols",
                    syms.len()
                )),
                Some(n) if n < 16 => Err(format!(
                    "map definitions of {n} bytes are too short (type, key, value, max_entries need 16)"
                )),
                Some(n) => legacy_def(data, off, n, name),
            };
            let entry = match result {
                Ok(def) => Ok(self.push(fixup(def))),
                Err(reason) => Err(self.fail(section, name, reason)),
            };
            self.by_location.insert((section.index, off), entry);
        }
    }

    /// `.maps`: one variable per map; its BTF struct type encodes the parameters.
    fn add_btf(
        &mut self,
        elf: &ElfFile<'_>,
        section: &Section<'_>,
        btf: Option<&Result<Btf<'_>, String>>,
    ) {
        let syms: Vec<(u64, &str)> = elf
            .symbols
            .iter()
            .filter(|s| s.section == Some(section.index))
            .filter(|s| matches!(s.kind, SymKind::Object | SymKind::NoType))
            .map(|s| (s.value, s.name.as_str()))
            .collect();
        let btf = match btf {
            Some(Ok(b)) => b,
            other => {
                let reason = match other {
                    Some(Err(e)) => format!("BTF-defined map but .BTF is unusable: {e}"),
                    _ => "BTF-defined map but the object has no .BTF".to_string(),
                };
                for &(off, name) in &syms {
                    let f = self.fail(section, name, reason.clone());
                    self.by_location.insert((section.index, off), Err(f));
                }
                return;
            }
        };
        let datasec = match btf.datasec(&section.name) {
            Ok(Some(d)) => d,
            other => {
                let reason = match other {
                    Err(e) => format!("BTF types unusable: {e}"),
                    _ => "no BTF DATASEC `.maps` describes it".to_string(),
                };
                for &(off, name) in &syms {
                    let f = self.fail(section, name, reason.clone());
                    self.by_location.insert((section.index, off), Err(f));
                }
                return;
            }
        };
        let mut vars: Vec<(u64, String, Result<MapDef, String>)> = Vec::new();
        for entry in &datasec.members {
            let Some((name, type_id)) = btf.var(entry.type_id) else {
                continue;
            };
            // Prefer the ELF symbol's offset: old clang left DATASEC offsets at zero.
            let off = syms
                .iter()
                .find(|s| s.1 == name)
                .map_or(u64::from(entry.offset), |s| s.0);
            vars.push((off, name.to_string(), btf_def(btf, type_id, name)));
        }
        vars.sort_by_key(|v| v.0);
        for (off, name, def) in vars {
            let entry = match def {
                Ok(def) => Ok(self.push(fixup(def))),
                Err(reason) => Err(self.fail(section, &name, reason)),
            };
            self.by_location
                .entry((section.index, off))
                .or_insert(entry);
        }
        for &(off, name) in &syms {
            if !self.by_location.contains_key(&(section.index, off)) {
                let f = self.fail(
                    section,
                    name,
                    "symbol has no BTF variable in `.maps`".into(),
                );
                self.by_location.insert((section.index, off), Err(f));
            }
        }
    }

    /// `.data*` / `.rodata*` / `.bss*`: one array map with a single element holding the whole
    /// section, as libbpf creates them. Empty sections produce no map.
    fn add_data(&mut self, section: &Section<'_>, read_only: bool) {
        if section.size == 0 {
            return;
        }
        let name = section.name.clone();
        let result = match (&section.data, u32::try_from(section.size)) {
            _ if section.size > MAX_DATA_MAP => Err(format!(
                "global data section of {} bytes exceeds the {MAX_DATA_MAP}-byte limit",
                section.size
            )),
            (Err(e), _) => Err(e.clone()),
            (Ok(_), Err(_)) => Err(format!("size {} does not fit u32", section.size)),
            (Ok(bytes), Ok(size)) => {
                // SHT_NOBITS (`.bss`) has no bytes in the file: its initial value is zeros.
                let init = if bytes.is_empty() {
                    vec![0u8; size as usize]
                } else {
                    bytes.to_vec()
                };
                Ok(MapDef {
                    name: name.clone(),
                    map_type: MapType::Array,
                    key_size: 4,
                    value_size: size,
                    max_entries: 1,
                    flags: BPF_F_MMAPABLE | if read_only { BPF_F_RDONLY_PROG } else { 0 },
                    initial_value: Some(init),
                })
            }
        };
        let entry = match result {
            Ok(def) => Ok(self.push(def)),
            Err(reason) => Err(self.fail(section, &name, reason)),
        };
        self.data.insert(section.index, entry);
    }
}

/// Perf event arrays always have 4-byte keys and values (CPU index, perf fd) whatever the C
/// declaration says; libbpf and cilium/ebpf fix them up the same way before creating the map.
fn fixup(mut def: MapDef) -> MapDef {
    if def.map_type == MapType::PerfEventArray {
        def.key_size = 4;
        def.value_size = 4;
    }
    def
}

/// Reads one legacy definition of `def_size` bytes at `off`; fields the struct is too short
/// for read as zero (libbpf copies what is there).
fn legacy_def(data: &[u8], off: u64, def_size: u64, name: &str) -> Result<MapDef, String> {
    let end = off
        .checked_add(def_size)
        .filter(|&e| e <= data.len() as u64);
    let (Some(end), Ok(start)) = (end, usize::try_from(off)) else {
        return Err(format!(
            "definition at byte offset {off} ({def_size} bytes) runs past the section ({} bytes)",
            data.len()
        ));
    };
    let def = data.get(start..end as usize).unwrap_or(&[]);
    let mut fields = [0u32; LEGACY_FIELDS];
    for (i, f) in fields.iter_mut().enumerate() {
        if let Some(b) = def.get(4 * i..4 * i + 4) {
            *f = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
    }
    Ok(MapDef {
        name: name.to_string(),
        map_type: MapType::from_kernel_number(fields[0]),
        key_size: fields[1],
        value_size: fields[2],
        max_entries: fields[3],
        flags: fields[4],
        initial_value: None,
    })
}

/// Reads a `__uint(name, N)` member: a pointer to an array of N elements.
fn btf_uint(btf: &Btf<'_>, type_id: u32, member: &str) -> Result<u32, String> {
    let arr = btf
        .pointee(type_id)?
        .map(|p| btf.array(p))
        .transpose()?
        .flatten();
    arr.map(|(_, n)| n)
        .ok_or_else(|| format!("member `{member}` is not a __uint() (pointer to array)"))
}

/// Reads a `__type(name, T)` member: a pointer to T; the result is `sizeof(T)`.
fn btf_type_size(btf: &Btf<'_>, type_id: u32, member: &str) -> Result<u32, String> {
    let target = btf
        .pointee(type_id)?
        .ok_or_else(|| format!("member `{member}` is not a __type() (pointer)"))?;
    let size = btf
        .size_of(target)
        .map_err(|e| format!("member `{member}`: {e}"))?;
    u32::try_from(size).map_err(|_| format!("member `{member}`: size {size} does not fit u32"))
}

/// Decodes a BTF map definition struct the way libbpf's `parse_btf_map_def` reads it.
fn btf_def(btf: &Btf<'_>, type_id: u32, name: &str) -> Result<MapDef, String> {
    let members = btf.struct_members(type_id)?;
    let mut def = MapDef {
        name: name.to_string(),
        map_type: MapType::Other(0),
        key_size: 0,
        value_size: 0,
        max_entries: 0,
        flags: 0,
        initial_value: None,
    };
    let mut has_values = false;
    for m in members {
        let member = btf.name(m.name_off);
        match member {
            "type" => def.map_type = MapType::from_kernel_number(btf_uint(btf, m.type_id, member)?),
            "max_entries" => def.max_entries = btf_uint(btf, m.type_id, member)?,
            "map_flags" => def.flags = btf_uint(btf, m.type_id, member)?,
            "key_size" => def.key_size = btf_uint(btf, m.type_id, member)?,
            "value_size" => def.value_size = btf_uint(btf, m.type_id, member)?,
            "key" => def.key_size = btf_type_size(btf, m.type_id, member)?,
            "value" => def.value_size = btf_type_size(btf, m.type_id, member)?,
            // `__array(values, ...)`: map-in-map or prog array initialised by relocations; the
            // element in the outer map is a 4-byte fd / prog id.
            "values" => has_values = true,
            _ => {}
        }
    }
    if has_values {
        if def.value_size != 0 && def.value_size != 4 {
            return Err(format!(
                "`values` given but value_size is {}, not 4",
                def.value_size
            ));
        }
        def.value_size = 4;
    }
    if def.map_type == MapType::Other(0) {
        return Err("no `type` member".into());
    }
    Ok(def)
}
