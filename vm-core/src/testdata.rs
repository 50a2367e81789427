//! bpf_conformance / uBPF `.data` test files (shared/corpus/FORMATS.md §1 and §2).
//!
//! The upstream parsers are line based and forgiving; we follow their rules (comment
//! stripping, directive detection by substring, "last line wins" for `result` and `error`)
//! so that every upstream file means the same thing here, and we reject what upstream would
//! silently skip (unknown directives) with a line number instead.

use std::path::{Path, PathBuf};

use crate::asm::{AsmErrorKind, assemble};
use crate::isa::RawInsn;

/// Why a test file cannot be read or its program built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TestFileError {
    /// A `--` line naming no section we know.
    #[error("line {line}: unknown directive `{text}`")]
    UnknownDirective {
        /// 1-based line.
        line: usize,
        /// The directive line.
        text: String,
    },
    /// A `-- result` value that is not a number.
    #[error("line {line}: invalid result `{text}`")]
    BadResult {
        /// 1-based line.
        line: usize,
        /// The value as written.
        text: String,
    },
    /// A `-- mem` token that is not hex bytes.
    #[error("line {line}: invalid memory byte(s) `{text}`")]
    BadMem {
        /// 1-based line (of the included file for `-- mem @ file`).
        line: usize,
        /// The token.
        text: String,
    },
    /// A `-- raw` token that is not an instruction word or byte.
    #[error("line {line}: invalid raw instruction `{text}`")]
    BadRaw {
        /// 1-based line.
        line: usize,
        /// The token or row.
        text: String,
    },
    /// A `-- raw` section of byte rows whose byte count is not a multiple of 8.
    #[error("line {line}: raw byte rows hold {bytes} bytes, not whole 8-byte instructions")]
    RawNotWhole {
        /// Line of the `-- raw` directive.
        line: usize,
        /// Number of bytes found.
        bytes: usize,
    },
    /// Nothing to check: no `-- result`, `-- error`, `-- pyelf`, nor a `-- raw` to compare an
    /// `-- asm` against (uBPF's assembler tests).
    #[error("no `-- result` or `-- error` section")]
    NoExpectation,
    /// `-- asm @ f` / `-- mem @ f` parsed from text without a directory to resolve `f` in.
    #[error(
        "line {line}: `{file}` is included but the test file's directory is unknown (use TestFile::parse_file)"
    )]
    IncludeWithoutDir {
        /// 1-based line.
        line: usize,
        /// The included name.
        file: String,
    },
    /// A file (the test or an include) that cannot be read.
    #[error("cannot read {}: {msg}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        msg: String,
    },
    /// [`TestFile::program`] on a file without `-- asm` or `-- raw`.
    #[error("no `-- asm` or `-- raw` section")]
    NoProgram,
    /// The `-- asm` section does not assemble. `line` counts in the test file (or in the
    /// included file named by `include`).
    #[error("{}line {line}: {kind}", include.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Asm {
        /// 1-based line.
        line: usize,
        /// Set when the assembly came from `-- asm @ file`.
        include: Option<String>,
        /// The assembler's complaint.
        kind: AsmErrorKind,
    },
}

/// A parsed `.data` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestFile {
    /// The `-- asm` section, comments stripped, one line per source line (blank lines kept so
    /// that line numbers map back to the file).
    pub asm: Option<String>,
    /// 1-based line (in the test file, or in `asm_include`) of the first line of `asm`.
    pub asm_first_line: usize,
    /// The file named by `-- asm @ file`, if the assembly came from there.
    pub asm_include: Option<String>,
    /// The `-- raw` section; when present it replaces `asm`.
    pub raw: Option<Vec<RawInsn>>,
    /// Input memory (`-- mem`); empty when absent.
    pub mem: Vec<u8>,
    /// Expected full 64-bit r0.
    pub result: Option<u64>,
    /// Expected error text (the last line of `-- error`; `""` for an empty section).
    pub error: Option<String>,
    /// uBPF `-- error pattern`: `error` is a regular expression.
    pub error_is_pattern: bool,
    /// uBPF `-- description`.
    pub description: Option<String>,
    /// uBPF `-- no jit`: the reason the test must not run under a JIT.
    pub no_jit: Option<String>,
    /// uBPF `-- reload` / `-- unload` (VM API sequencing tests).
    pub reload: bool,
    /// See `reload`.
    pub unload: bool,
    /// uBPF `-- pyelf` body (mutations of uBPF's template ELF; not runnable here).
    pub pyelf: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Asm,
    Result,
    Mem,
    Raw,
    Ignored,
    Error,
    Description,
    NoJit,
    Pyelf,
}

impl TestFile {
    /// Parses a test file's text. `-- asm @ f` / `-- mem @ f` need [`TestFile::parse_file`].
    pub fn parse(text: &str) -> Result<TestFile, TestFileError> {
        parse_in(text, None)
    }

    /// Reads and parses a test file, resolving `@ file` includes relative to its directory.
    pub fn parse_file(path: &Path) -> Result<TestFile, TestFileError> {
        let text = read(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        parse_in(&text, Some(dir))
    }

    /// The program: `raw` if present, else the assembled `asm`. Not decoded, so that negative
    /// tests can carry invalid encodings.
    pub fn program(&self) -> Result<Vec<RawInsn>, TestFileError> {
        if let Some(raw) = &self.raw {
            return Ok(raw.clone());
        }
        let asm = self.asm.as_ref().ok_or(TestFileError::NoProgram)?;
        assemble(asm).map_err(|e| TestFileError::Asm {
            line: self.asm_first_line + e.line - 1,
            include: self.asm_include.clone(),
            kind: e.kind,
        })
    }
}

fn read(path: &Path) -> Result<String, TestFileError> {
    std::fs::read_to_string(path).map_err(|e| TestFileError::Io {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

/// Upstream rule 1: drop a trailing `\r`, then everything from the first `#`.
fn clean(line: &str) -> &str {
    let line = line.strip_suffix('\r').unwrap_or(line);
    match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Upstream rule 2 (substring match in upstream's order), then the uBPF extras.
fn classify(d: &str) -> Option<Section> {
    Some(if d.contains("asm") {
        Section::Asm
    } else if d.contains("result") {
        Section::Result
    } else if d.contains("mem") {
        Section::Mem
    } else if d.contains("raw") {
        Section::Raw
    } else if d.contains("no register offset") || d.contains(" c") {
        Section::Ignored
    } else if d.contains("error") {
        Section::Error
    } else if d.contains("description") {
        Section::Description
    } else if d.contains("no jit") {
        Section::NoJit
    } else if d.contains("pyelf") {
        Section::Pyelf
    } else if d.contains("reload") || d.contains("unload") {
        Section::Ignored
    } else {
        return None;
    })
}

/// One section as written: its kind, the line of its directive, the file it was included
/// from (`-- x @ file`), and its (1-based line, text) lines.
struct Chunk {
    section: Section,
    line: usize,
    include: Option<String>,
    body: Vec<(usize, String)>,
}

fn parse_in(text: &str, dir: Option<&Path>) -> Result<TestFile, TestFileError> {
    let _span = tracing::debug_span!("testdata_parse", bytes = text.len()).entered();
    let mut tf = TestFile::default();
    let mut chunks: Vec<Chunk> = Vec::new();
    for (i, raw_line) in text.lines().enumerate() {
        let line = i + 1;
        let l = clean(raw_line);
        if l.contains("--") {
            let d = l.trim();
            let section = classify(d).ok_or_else(|| TestFileError::UnknownDirective {
                line,
                text: d.to_string(),
            })?;
            match section {
                Section::Error => tf.error_is_pattern |= d.contains("pattern"),
                Section::Ignored if d.contains("reload") => tf.reload = true,
                Section::Ignored if d.contains("unload") => tf.unload = true,
                _ => {}
            }
            let mut chunk = Chunk {
                section,
                line,
                include: None,
                body: Vec::new(),
            };
            if let Some((_, file)) = d.split_once('@') {
                include(&mut chunk, file.trim(), dir)?;
            }
            chunks.push(chunk);
            continue;
        }
        // Lines before the first directive (licence headers) belong to no section.
        if let Some(chunk) = chunks.last_mut()
            && chunk.include.is_none()
        {
            chunk.body.push((line, l.to_string()));
        }
    }
    for chunk in chunks {
        apply(&mut tf, chunk)?;
    }
    if tf.result.is_none() && tf.error.is_none() && tf.pyelf.is_none() && tf.raw.is_none() {
        return Err(TestFileError::NoExpectation);
    }
    Ok(tf)
}

/// Fills a chunk from `-- asm @ file` / `-- mem @ file`, resolved in the test's directory.
fn include(chunk: &mut Chunk, file: &str, dir: Option<&Path>) -> Result<(), TestFileError> {
    let dir = dir.ok_or_else(|| TestFileError::IncludeWithoutDir {
        line: chunk.line,
        file: file.to_string(),
    })?;
    let text = read(&dir.join(file))?;
    chunk.body = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, clean(l).to_string()))
        .collect();
    chunk.include = Some(file.to_string());
    Ok(())
}

fn apply(tf: &mut TestFile, chunk: Chunk) -> Result<(), TestFileError> {
    let Chunk {
        section,
        line,
        include,
        body,
    } = chunk;
    let nonblank = || body.iter().filter(|(_, l)| !l.trim().is_empty());
    match section {
        Section::Asm => {
            let asm = tf.asm.get_or_insert_with(String::new);
            if asm.is_empty() {
                tf.asm_first_line = if include.is_some() { 1 } else { line + 1 };
                tf.asm_include = include;
            }
            for (_, l) in &body {
                asm.push_str(l);
                asm.push('\n');
            }
        }
        Section::Result => {
            if let Some((n, l)) = nonblank().next_back() {
                tf.result =
                    Some(
                        parse_result(l.trim()).ok_or_else(|| TestFileError::BadResult {
                            line: *n,
                            text: l.trim().to_string(),
                        })?,
                    );
            }
        }
        Section::Mem => {
            for (n, l) in &body {
                parse_mem_line(*n, l, &mut tf.mem)?;
            }
        }
        Section::Raw => {
            let raw = parse_raw(line, &body)?;
            tf.raw.get_or_insert_with(Vec::new).extend(raw);
        }
        Section::Error => {
            let last = nonblank().next_back().map(|(_, l)| l.trim().to_string());
            tf.error = Some(last.unwrap_or_default());
        }
        Section::Description => tf.description = Some(joined(&body)),
        Section::NoJit => tf.no_jit = Some(joined(&body)),
        Section::Pyelf => tf.pyelf = Some(joined(&body)),
        Section::Ignored => {}
    }
    Ok(())
}

fn joined(body: &[(usize, String)]) -> String {
    body.iter()
        .map(|(_, l)| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Hex when it contains `0x`, otherwise decimal (a negative decimal is taken as its i64 bits).
fn parse_result(s: &str) -> Option<u64> {
    if let Some(i) = s.find("0x") {
        return u64::from_str_radix(&s[i + 2..], 16).ok();
    }
    s.parse::<u64>()
        .ok()
        .or_else(|| s.parse::<i64>().ok().map(|v| v as u64))
}

/// `00 aa ff` tokens; a hexdump prefix up to `:` is dropped and longer tokens (`0026`) are
/// read two digits at a time (uBPF's pkt-*.hex files).
fn parse_mem_line(line: usize, l: &str, mem: &mut Vec<u8>) -> Result<(), TestFileError> {
    let data = l.split_once(':').map_or(l, |(_, rest)| rest);
    for tok in data.split_whitespace() {
        let bad = || TestFileError::BadMem {
            line,
            text: tok.to_string(),
        };
        let digits = tok.strip_prefix("0x").unwrap_or(tok);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        if digits.len() == 1 {
            mem.push(u8::from_str_radix(digits, 16).map_err(|_| bad())?);
            continue;
        }
        if digits.len() % 2 != 0 {
            return Err(bad());
        }
        for pair in digits.as_bytes().chunks(2) {
            let s = std::str::from_utf8(pair).map_err(|_| bad())?;
            mem.push(u8::from_str_radix(s, 16).map_err(|_| bad())?);
        }
    }
    Ok(())
}

/// A row of exactly 8 two-digit hex bytes: the `negative/unused-*` layout (memory order).
fn is_byte_row(l: &str) -> bool {
    let toks: Vec<&str> = l.split_whitespace().collect();
    toks.len() == 8
        && toks
            .iter()
            .all(|t| t.len() == 2 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// One u64 word per token (`0x` hex or decimal), or — when every row is 8 hex bytes — rows of
/// bytes in memory order.
fn parse_raw(
    directive_line: usize,
    body: &[(usize, String)],
) -> Result<Vec<RawInsn>, TestFileError> {
    let rows: Vec<&(usize, String)> = body.iter().filter(|(_, l)| !l.trim().is_empty()).collect();
    if !rows.is_empty() && rows.iter().all(|(_, l)| is_byte_row(l)) {
        let mut bytes = Vec::with_capacity(rows.len() * 8);
        for (n, l) in &rows {
            parse_mem_line(*n, l, &mut bytes).map_err(|_| TestFileError::BadRaw {
                line: *n,
                text: l.trim().to_string(),
            })?;
        }
        return RawInsn::slice_from_bytes(&bytes).map_err(|_| TestFileError::RawNotWhole {
            line: directive_line,
            bytes: bytes.len(),
        });
    }
    let mut out = Vec::new();
    for (n, l) in rows {
        for tok in l.split_whitespace() {
            let word = match tok.strip_prefix("0x").or_else(|| tok.strip_prefix("0X")) {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => tok.parse::<u64>().ok(),
            };
            let word = word.ok_or_else(|| TestFileError::BadRaw {
                line: *n,
                text: tok.to_string(),
            })?;
            out.push(RawInsn::from_u64(word));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn conformance_sections() {
        let tf = TestFile::parse(
            "# c\n-- asm\nmov %r0, 1 # one\n\nexit\n-- mem\naa bb\n11\n-- result\n0x10\n",
        )
        .unwrap();
        assert_eq!(tf.asm.as_deref(), Some("mov %r0, 1 \n\nexit\n"));
        assert_eq!(tf.asm_first_line, 3);
        assert_eq!(tf.mem, vec![0xaa, 0xbb, 0x11]);
        assert_eq!(tf.result, Some(0x10));
        assert_eq!(tf.program().unwrap().len(), 2);
    }

    #[test]
    fn asm_errors_use_file_lines() {
        let tf = TestFile::parse("-- asm\nmov %r0, 1\nbogus\n-- result\n0\n").unwrap();
        let e = tf.program().unwrap_err();
        assert!(matches!(e, TestFileError::Asm { line: 3, .. }), "{e}");
        assert!(e.to_string().starts_with("line 3: unknown mnemonic"));
    }

    #[test]
    fn raw_words_and_byte_rows() {
        let tf =
            TestFile::parse("-- raw\n0x5566778800000018\n0x1122334400000000 149\n-- result\n1\n")
                .unwrap();
        let raw = tf.raw.unwrap();
        assert_eq!(raw.len(), 3);
        assert_eq!(raw[2].code, 0x95);
        let tf =
            TestFile::parse("-- raw\n07 00 01 00 01 00 00 00\n95 00 00 00 00 00 00 00\n-- error\n")
                .unwrap();
        let raw = tf.raw.unwrap();
        assert_eq!(raw[0].code, 0x07);
        assert_eq!(raw[0].off, 1);
        assert_eq!(raw[0].imm, 1);
        assert_eq!(tf.error.as_deref(), Some(""));
    }

    #[test]
    fn ubpf_extras() {
        let tf = TestFile::parse(
            "-- asm\nexit\n-- error pattern\nuBPF error: .*\n-- result\n0x1\n-- no jit\nwhy\n-- description\nsome text\n",
        )
        .unwrap();
        assert!(tf.error_is_pattern);
        assert_eq!(tf.error.as_deref(), Some("uBPF error: .*"));
        assert_eq!(tf.no_jit.as_deref(), Some("why"));
        assert_eq!(tf.description.as_deref(), Some("some text"));
        let tf =
            TestFile::parse("-- mem\n0x0000:  0026 622f\n0x0010:  9e27\n-- result\n0\n").unwrap();
        assert_eq!(tf.mem, vec![0x00, 0x26, 0x62, 0x2f, 0x9e, 0x27]);
    }

    #[test]
    fn rejections() {
        assert!(matches!(
            TestFile::parse("-- asm\nexit\n-- frobnicate\n"),
            Err(TestFileError::UnknownDirective { line: 3, .. })
        ));
        assert_eq!(
            TestFile::parse("-- asm\nexit\n"),
            Err(TestFileError::NoExpectation)
        );
        assert!(matches!(
            TestFile::parse("-- asm @ x.asm\n-- result\n0\n"),
            Err(TestFileError::IncludeWithoutDir { line: 1, .. })
        ));
        assert!(matches!(
            TestFile::parse("-- mem\nzz\n-- result\n0\n"),
            Err(TestFileError::BadMem { line: 2, .. })
        ));
        assert_eq!(
            TestFile::parse("-- result\n0\n").unwrap().program(),
            Err(TestFileError::NoProgram)
        );
    }
}
