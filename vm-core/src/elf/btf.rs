//! Just enough BTF to read BTF-defined maps and to find CO-RE relocation records.
//!
//! `.maps` entries are C variables whose *types* carry the map's parameters
//! (`__uint(max_entries, 16)` is a member `int (*max_entries)[16]`), so reading a map means
//! walking the type graph. `.BTF.ext` is read only to learn which instructions have CO-RE
//! records: those programs cannot be relocated without the target kernel's BTF.
//! Every offset is checked and every type walk is depth-bounded, because malformed BTF may
//! contain cycles.

use std::collections::HashMap;

/// Longest chain of typedefs/modifiers/pointers followed before giving up (cycles).
const MAX_CHAIN: usize = 64;

const BTF_MAGIC: u16 = 0xeb9f;

/// BTF kinds (`BTF_KIND_*`).
mod kind {
    pub const INT: u8 = 1;
    pub const PTR: u8 = 2;
    pub const ARRAY: u8 = 3;
    pub const STRUCT: u8 = 4;
    pub const UNION: u8 = 5;
    pub const ENUM: u8 = 6;
    pub const FWD: u8 = 7;
    pub const TYPEDEF: u8 = 8;
    pub const VOLATILE: u8 = 9;
    pub const CONST: u8 = 10;
    pub const RESTRICT: u8 = 11;
    pub const FUNC: u8 = 12;
    pub const FUNC_PROTO: u8 = 13;
    pub const VAR: u8 = 14;
    pub const DATASEC: u8 = 15;
    pub const FLOAT: u8 = 16;
    pub const DECL_TAG: u8 = 17;
    pub const TYPE_TAG: u8 = 18;
    pub const ENUM64: u8 = 19;
}

/// A struct/union member or a DATASEC entry (the fields both have).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    /// Name offset (struct members) or 0 (DATASEC entries).
    pub name_off: u32,
    /// Member type / variable type id.
    pub type_id: u32,
    /// Bit offset (struct) or byte offset (DATASEC).
    pub offset: u32,
}

/// One type, with only the kind-specific data the loader uses.
#[derive(Debug, Clone)]
pub(crate) struct BtfType {
    pub kind: u8,
    pub name_off: u32,
    /// `size` for sized kinds, referenced type id for the others.
    pub size_or_type: u32,
    /// Array element type and count.
    pub array: Option<(u32, u32)>,
    /// Struct/union members or DATASEC entries.
    pub members: Vec<Member>,
}

/// Parsed `.BTF`. The string table is kept even when the types cannot be read, because
/// `.BTF.ext` names sections through it: a type we cannot parse must not hide CO-RE records.
#[derive(Debug)]
pub(crate) struct Btf<'a> {
    /// Index = type id; id 0 is `void`. `Err` when the type section cannot be read.
    types: Result<Vec<BtfType>, String>,
    strings: &'a [u8],
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

pub(super) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads the common BTF / BTF.ext preamble: magic, version, header length.
pub(super) fn preamble(data: &[u8], what: &str) -> Result<usize, String> {
    let magic = u16_at(data, 0).ok_or_else(|| format!("{what}: truncated header"))?;
    if magic != BTF_MAGIC {
        return Err(format!("{what}: bad magic {magic:#06x} at byte offset 0"));
    }
    let version = data.get(2).copied().unwrap_or(0);
    if version != 1 {
        return Err(format!("{what}: unsupported version {version}"));
    }
    let hdr_len = u32_at(data, 4).ok_or_else(|| format!("{what}: truncated header"))? as usize;
    if hdr_len > data.len() {
        return Err(format!(
            "{what}: header length {hdr_len} beyond the section"
        ));
    }
    Ok(hdr_len)
}

/// Slice `[hdr + off, hdr + off + len)` of `data`, or an error naming the part.
pub(super) fn part<'a>(
    data: &'a [u8],
    hdr: usize,
    off: u32,
    len: u32,
    what: &str,
) -> Result<&'a [u8], String> {
    let start = hdr.checked_add(off as usize);
    let end = start.and_then(|s| s.checked_add(len as usize));
    match (start, end) {
        (Some(s), Some(e)) if e <= data.len() => Ok(&data[s..e]),
        _ => Err(format!(
            "{what} (offset {off}, length {len}) lies outside the section"
        )),
    }
}

impl<'a> Btf<'a> {
    /// Parses a little-endian `.BTF` section.
    pub fn parse(data: &'a [u8]) -> Result<Self, String> {
        let hdr = preamble(data, ".BTF")?;
        let field =
            |i: usize| u32_at(data, 8 + 4 * i).ok_or_else(|| ".BTF: truncated header".to_string());
        let (type_off, type_len, str_off, str_len) = (field(0)?, field(1)?, field(2)?, field(3)?);
        let strings = part(data, hdr, str_off, str_len, ".BTF string section")?;
        let types = part(data, hdr, type_off, type_len, ".BTF type section")
            .and_then(|t| parse_types(t, hdr + type_off as usize));
        Ok(Btf { types, strings })
    }

    fn types(&self) -> Result<&[BtfType], String> {
        self.types.as_deref().map_err(Clone::clone)
    }
}

/// Parses the type section (`base` is its byte offset inside `.BTF`, for messages).
fn parse_types(types_bytes: &[u8], base: usize) -> Result<Vec<BtfType>, String> {
    let mut types = vec![BtfType {
        kind: 0,
        name_off: 0,
        size_or_type: 0,
        array: None,
        members: Vec::new(),
    }];
    let mut pos = 0usize;
    while pos < types_bytes.len() {
        let at = |o: usize| -> Result<u32, String> {
            pos.checked_add(o)
                .and_then(|p| u32_at(types_bytes, p))
                .ok_or_else(|| format!(".BTF: type {} truncated", types.len()))
        };
        let name_off = at(0)?;
        let info = at(4)?;
        let size_or_type = at(8)?;
        let vlen = (info & 0xffff) as usize;
        let k = ((info >> 24) & 0x1f) as u8;
        let body = pos + 12;
        let mut ty = BtfType {
            kind: k,
            name_off,
            size_or_type,
            array: None,
            members: Vec::new(),
        };
        let extra = match k {
            kind::INT | kind::VAR | kind::DECL_TAG => 4,
            kind::PTR
            | kind::FWD
            | kind::TYPEDEF
            | kind::VOLATILE
            | kind::CONST
            | kind::RESTRICT
            | kind::FUNC
            | kind::FLOAT
            | kind::TYPE_TAG => 0,
            kind::ARRAY => {
                let elem = u32_at(types_bytes, body);
                let nelems = u32_at(types_bytes, body + 8);
                match (elem, nelems) {
                    (Some(e), Some(n)) => ty.array = Some((e, n)),
                    _ => return Err(format!(".BTF: type {} truncated", types.len())),
                }
                12
            }
            kind::STRUCT | kind::UNION | kind::DATASEC => {
                for i in 0..vlen {
                    let m = body + 12 * i;
                    let (Some(a), Some(b), Some(c)) = (
                        u32_at(types_bytes, m),
                        u32_at(types_bytes, m + 4),
                        u32_at(types_bytes, m + 8),
                    ) else {
                        return Err(format!(".BTF: type {} truncated", types.len()));
                    };
                    // DATASEC entries are (type, offset, size); members (name, type, offset).
                    ty.members.push(if k == kind::DATASEC {
                        Member {
                            name_off: 0,
                            type_id: a,
                            offset: b,
                        }
                    } else {
                        Member {
                            name_off: a,
                            type_id: b,
                            offset: c,
                        }
                    });
                }
                12 * vlen
            }
            kind::ENUM | kind::FUNC_PROTO => 8 * vlen,
            kind::ENUM64 => 12 * vlen,
            other => {
                return Err(format!(
                    ".BTF: type {} has unknown kind {other} at byte offset {}",
                    types.len(),
                    base + pos
                ));
            }
        };
        pos = body + extra;
        if pos > types_bytes.len() {
            return Err(format!(".BTF: type {} truncated", types.len()));
        }
        types.push(ty);
    }
    Ok(types)
}

impl Btf<'_> {
    /// The type with this id (`None` also when the type section is unreadable).
    pub fn get(&self, id: u32) -> Option<&BtfType> {
        self.types.as_ref().ok()?.get(id as usize)
    }

    /// The NUL-terminated string at `off`.
    pub fn name(&self, off: u32) -> &str {
        let tail = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        std::str::from_utf8(&tail[..end]).unwrap_or("")
    }

    /// The NUL-terminated string at `off`, or `None` when `off` is outside the string table
    /// or the string runs off its end. Invalid UTF-8 is replaced rather than refused, because
    /// source text from `.BTF.ext` line info is shown to people, not matched.
    pub fn string_lossy(&self, off: u32) -> Option<std::borrow::Cow<'_, str>> {
        let tail = self.strings.get(off as usize..)?;
        let end = tail.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&tail[..end]))
    }

    /// Follows typedefs and cv/type-tag modifiers to the underlying type id.
    pub fn skip_mods(&self, mut id: u32) -> Result<u32, String> {
        for _ in 0..MAX_CHAIN {
            let t = self
                .get(id)
                .ok_or_else(|| format!("BTF type id {id} out of range"))?;
            match t.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    id = t.size_or_type
                }
                _ => return Ok(id),
            }
        }
        Err(format!("BTF type chain from id {id} too long (cycle?)"))
    }

    /// Byte size of a type (what `sizeof` gives in C).
    pub fn size_of(&self, id: u32) -> Result<u64, String> {
        let mut id = id;
        let mut mult: u64 = 1;
        for _ in 0..MAX_CHAIN {
            let id2 = self.skip_mods(id)?;
            let t = self
                .get(id2)
                .ok_or_else(|| format!("BTF type id {id2} out of range"))?;
            match t.kind {
                kind::INT
                | kind::STRUCT
                | kind::UNION
                | kind::ENUM
                | kind::ENUM64
                | kind::FLOAT
                | kind::DATASEC => {
                    return mult
                        .checked_mul(u64::from(t.size_or_type))
                        .ok_or_else(|| "BTF type size overflows".to_string());
                }
                kind::PTR => {
                    return mult
                        .checked_mul(8)
                        .ok_or_else(|| "BTF type size overflows".to_string());
                }
                kind::ARRAY => {
                    let (elem, n) = t.array.unwrap_or((0, 0));
                    mult = mult
                        .checked_mul(u64::from(n))
                        .ok_or_else(|| "BTF type size overflows".to_string())?;
                    id = elem;
                }
                kind::VAR => id = t.size_or_type,
                _ => return Err(format!("BTF type id {id2} (kind {}) has no size", t.kind)),
            }
        }
        Err(format!("BTF type chain from id {id} too long (cycle?)"))
    }

    /// The DATASEC with this name; `Err` when the type section is unreadable.
    pub fn datasec(&self, name: &str) -> Result<Option<&BtfType>, String> {
        Ok(self
            .types()?
            .iter()
            .find(|t| t.kind == kind::DATASEC && self.name(t.name_off) == name))
    }

    /// Whether the type id names a VAR, and its name and type.
    pub fn var(&self, id: u32) -> Option<(&str, u32)> {
        let t = self.get(id)?;
        (t.kind == kind::VAR).then(|| (self.name(t.name_off), t.size_or_type))
    }

    /// The members of a struct (after skipping modifiers), or an error.
    pub fn struct_members(&self, id: u32) -> Result<&[Member], String> {
        let id = self.skip_mods(id)?;
        let t = self
            .get(id)
            .ok_or_else(|| format!("BTF type id {id} out of range"))?;
        if t.kind != kind::STRUCT {
            return Err(format!("BTF type id {id} is kind {}, not a struct", t.kind));
        }
        Ok(&t.members)
    }

    /// Pointer target of `id` (after skipping modifiers), if `id` is a pointer.
    pub fn pointee(&self, id: u32) -> Result<Option<u32>, String> {
        let id = self.skip_mods(id)?;
        let t = self
            .get(id)
            .ok_or_else(|| format!("BTF type id {id} out of range"))?;
        Ok((t.kind == kind::PTR).then_some(t.size_or_type))
    }

    /// Array element type and count of `id` (after skipping modifiers), if it is an array.
    pub fn array(&self, id: u32) -> Result<Option<(u32, u32)>, String> {
        let id = self.skip_mods(id)?;
        let t = self
            .get(id)
            .ok_or_else(|| format!("BTF type id {id} out of range"))?;
        Ok(if t.kind == kind::ARRAY { t.array } else { None })
    }
}

/// CO-RE relocation records from `.BTF.ext`: byte offsets of the instructions, by section name.
pub(crate) fn core_relocs(ext: &[u8], btf: &Btf<'_>) -> Result<HashMap<String, Vec<u32>>, String> {
    let hdr = preamble(ext, ".BTF.ext")?;
    let mut out: HashMap<String, Vec<u32>> = HashMap::new();
    // The header grew over time: 24 bytes (func/line info), 32 bytes with CO-RE records.
    if hdr < 32 {
        return Ok(out);
    }
    let (Some(off), Some(len)) = (u32_at(ext, 24), u32_at(ext, 28)) else {
        return Err(".BTF.ext: truncated header".into());
    };
    if len == 0 {
        return Ok(out);
    }
    let sub = part(ext, hdr, off, len, ".BTF.ext CO-RE subsection")?;
    let rec_size = u32_at(sub, 0).ok_or(".BTF.ext: CO-RE subsection truncated")? as usize;
    if rec_size < 16 {
        return Err(format!(".BTF.ext: CO-RE record size {rec_size} below 16"));
    }
    let mut pos = 4usize;
    while pos < sub.len() {
        let (Some(name_off), Some(count)) = (u32_at(sub, pos), u32_at(sub, pos + 4)) else {
            return Err(format!(
                ".BTF.ext: CO-RE block header truncated at byte {pos}"
            ));
        };
        pos += 8;
        let name = btf.name(name_off).to_string();
        let list = out.entry(name).or_default();
        for _ in 0..count {
            let insn_off = u32_at(sub, pos)
                .ok_or_else(|| format!(".BTF.ext: CO-RE record truncated at byte {pos}"))?;
            list.push(insn_off);
            pos = pos
                .checked_add(rec_size)
                .filter(|&p| p <= sub.len())
                .ok_or_else(|| format!(".BTF.ext: CO-RE record truncated at byte {pos}"))?;
        }
    }
    for list in out.values_mut() {
        list.sort_unstable();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a `.BTF` blob from (name_off, info, size_or_type, extra words) and a string table.
    fn blob(types: &[(u32, u32, u32, Vec<u32>)], strings: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        for (n, i, s, extra) in types {
            for w in [*n, *i, *s].iter().chain(extra) {
                t.extend_from_slice(&w.to_le_bytes());
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&t);
        out.extend_from_slice(strings);
        out
    }

    fn info(kind: u8, vlen: u32) -> u32 {
        (u32::from(kind) << 24) | vlen
    }

    #[test]
    fn sizes_follow_typedefs_arrays_and_pointers() {
        // 1: int (4 bytes); 2: typedef u32 -> 1; 3: int[6] ; 4: ptr -> 3; 5: struct {u32 a; int b[6];}
        let strings = b"\0int\0u32\0s\0a\0b\0";
        let btf_bytes = blob(
            &[
                (1, info(kind::INT, 0), 4, vec![32]),
                (5, info(kind::TYPEDEF, 0), 1, vec![]),
                (0, info(kind::ARRAY, 0), 0, vec![1, 1, 6]),
                (0, info(kind::PTR, 0), 3, vec![]),
                (9, info(kind::STRUCT, 2), 28, vec![11, 2, 0, 13, 3, 32]),
            ],
            strings,
        );
        let btf = Btf::parse(&btf_bytes).expect("parses");
        assert_eq!(btf.size_of(2), Ok(4));
        assert_eq!(btf.size_of(3), Ok(24));
        assert_eq!(btf.size_of(4), Ok(8));
        assert_eq!(btf.size_of(5), Ok(28));
        assert_eq!(btf.name(btf.get(5).map_or(0, |t| t.name_off)), "s");
        assert_eq!(btf.struct_members(5).map(|m| m.len()), Ok(2));
    }

    #[test]
    fn typedef_cycles_are_errors_not_hangs() {
        let btf_bytes = blob(
            &[
                (0, info(kind::TYPEDEF, 0), 2, vec![]),
                (0, info(kind::TYPEDEF, 0), 1, vec![]),
            ],
            b"\0",
        );
        let btf = Btf::parse(&btf_bytes).expect("parses");
        assert!(btf.size_of(1).is_err());
    }

    #[test]
    fn truncated_and_unknown_kinds_are_errors() {
        let mut b = blob(&[(0, info(kind::ARRAY, 0), 0, vec![1, 1, 6])], b"\0");
        b.truncate(b.len() - 3);
        assert!(Btf::parse(&b).is_err(), "string section now out of range");
        let b = blob(&[(0, info(31, 0), 0, vec![])], b"\0x\0");
        let btf = Btf::parse(&b).expect("header and strings are fine");
        assert!(matches!(btf.types(), Err(e) if e.contains("unknown kind 31")));
        assert_eq!(btf.name(1), "x", "strings stay usable for .BTF.ext");
    }
}
