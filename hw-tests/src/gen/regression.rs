//! Regression files: a shrunk failing case, stored as text so it can be read, diffed and
//! replayed without the generator (a later generator change must not change old cases).
//!
//! ```text
//! # free text: what differed, seed, how it was found
//! -- maps
//! regs array 4 80 1          (name type key_size value_size max_entries; type array|hash)
//! -- asm
//! mov %r0, 1                 (vm-core's conformance syntax; `lddw %r1, map_fd 0` names maps by index)
//! exit
//! -- packet
//! 00 11 22 ...               (hex bytes, any whitespace)
//! ```
//!
//! Replaying means: the kernel must load the program and both engines must agree.

use vm_core::asm::{Syntax, assemble, disassemble};
use vm_core::isa::decode_program;
use vm_core::{MapDef, MapType, ProgType, Program};

/// A stored failing case.
#[derive(Debug, Clone)]
pub struct Regression {
    /// Comment lines (without the `# `).
    pub notes: Vec<String>,
    /// The program (XDP).
    pub program: Program,
    /// The input packet.
    pub packet: Vec<u8>,
}

/// A regression file that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegressionError {
    /// A line outside the known sections, or a malformed one.
    #[error("line {line}: {what}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// The `-- asm` section does not assemble or decode.
    #[error("asm section (starting at line {line}): {what}")]
    Asm {
        /// Line of the `-- asm` header.
        line: usize,
        /// The assembler's or decoder's message.
        what: String,
    },
    /// A required section is missing.
    #[error("missing section `-- {0}`")]
    Missing(&'static str),
}

fn map_type_name(t: MapType) -> String {
    match t {
        MapType::Array => "array".into(),
        MapType::Hash => "hash".into(),
        other => format!("type{}", other.kernel_number()),
    }
}

fn parse_map_type(s: &str) -> Option<MapType> {
    match s {
        "array" => Some(MapType::Array),
        "hash" => Some(MapType::Hash),
        _ => s
            .strip_prefix("type")
            .and_then(|n| n.parse().ok())
            .map(MapType::from_kernel_number),
    }
}

impl Regression {
    /// The file text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for n in &self.notes {
            for line in n.lines() {
                s.push_str("# ");
                s.push_str(line);
                s.push('\n');
            }
        }
        s.push_str("-- maps\n");
        for m in &self.program.maps {
            s.push_str(&format!(
                "{} {} {} {} {}\n",
                m.name,
                map_type_name(m.map_type),
                m.key_size,
                m.value_size,
                m.max_entries
            ));
        }
        s.push_str("-- asm\n");
        s.push_str(&disassemble(&self.program.insns, Syntax::Conformance));
        s.push_str("-- packet\n");
        for chunk in self.packet.chunks(16) {
            let line: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            s.push_str(&line.join(" "));
            s.push('\n');
        }
        s
    }

    /// Parses a file's text; `name` becomes the program name.
    pub fn parse(name: &str, text: &str) -> Result<Regression, RegressionError> {
        let mut notes = Vec::new();
        let mut maps = Vec::new();
        let mut asm = String::new();
        let mut asm_line = None;
        let mut packet = Vec::new();
        let mut seen_packet = false;
        let mut section = "";
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if let Some(head) = line.strip_prefix("-- ") {
                section = match head.trim() {
                    "maps" => "maps",
                    "asm" => {
                        asm_line = Some(line_no);
                        "asm"
                    }
                    "packet" => {
                        seen_packet = true;
                        "packet"
                    }
                    other => {
                        return Err(RegressionError::Syntax {
                            line: line_no,
                            what: format!("unknown section `{other}`"),
                        });
                    }
                };
                continue;
            }
            if let Some(note) = line.strip_prefix('#') {
                if section.is_empty() {
                    notes.push(note.trim_start().to_string());
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            let bad = |what: String| RegressionError::Syntax {
                line: line_no,
                what,
            };
            match section {
                "maps" => {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let [name, ty, k, v, n] = f.as_slice() else {
                        return Err(bad(format!("map line needs 5 fields: `{line}`")));
                    };
                    let num = |s: &str| s.parse::<u32>().map_err(|e| bad(format!("`{s}`: {e}")));
                    maps.push(MapDef {
                        name: (*name).to_string(),
                        map_type: parse_map_type(ty)
                            .ok_or_else(|| bad(format!("unknown map type `{ty}`")))?,
                        key_size: num(k)?,
                        value_size: num(v)?,
                        max_entries: num(n)?,
                        flags: 0,
                        initial_value: None,
                    });
                }
                "asm" => {
                    asm.push_str(raw);
                    asm.push('\n');
                }
                "packet" => {
                    for tok in line.split_whitespace() {
                        packet.push(
                            u8::from_str_radix(tok, 16)
                                .map_err(|e| bad(format!("packet byte `{tok}`: {e}")))?,
                        );
                    }
                }
                _ => return Err(bad(format!("text outside any section: `{line}`"))),
            }
        }
        let asm_line = asm_line.ok_or(RegressionError::Missing("asm"))?;
        if !seen_packet {
            return Err(RegressionError::Missing("packet"));
        }
        let asm_err = |what: String| RegressionError::Asm {
            line: asm_line,
            what,
        };
        let raw = assemble(&asm).map_err(|e| asm_err(e.to_string()))?;
        let insns = decode_program(&raw).map_err(|e| asm_err(e.to_string()))?;
        Ok(Regression {
            notes,
            program: Program {
                name: name.to_string(),
                section: Some("xdp".into()),
                prog_type: ProgType::Xdp,
                insns,
                maps,
            },
            packet,
        })
    }
}
