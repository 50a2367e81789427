//! The TSV form of the verdict table (hw-tests/fixtures/kernel_verdicts.linux-6.18.tsv).
//!
//! `#` lines are comments (the header names the regenerating command), then one header line
//! of column names, then one row per program. Empty numeric cells are `-`. The reason column
//! is last and has its tabs and newlines folded to spaces, so every row has exactly
//! [`COLUMNS`] fields.

use std::io::{self, Write};

use super::{Row, Verdict};

/// Column names, in order.
pub const COLUMNS: [&str; 12] = [
    "object",
    "section",
    "function",
    "prog_type",
    "attach_type",
    "type_source",
    "verdict",
    "errno",
    "insns",
    "processed",
    "verif_usec",
    "reason",
];

/// A malformed table line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Wrong number of tab-separated fields.
    #[error("line {line}: {got} fields, expected {}", COLUMNS.len())]
    FieldCount {
        /// 1-based line number.
        line: usize,
        /// Fields found.
        got: usize,
    },
    /// A field that does not parse.
    #[error("line {line}: column `{column}`: cannot read {value:?}")]
    Field {
        /// 1-based line number.
        line: usize,
        /// Column name.
        column: &'static str,
        /// The text found.
        value: String,
    },
    /// The column header line is missing or differs.
    #[error("line {line}: expected the column header `{}`", COLUMNS.join("\\t"))]
    Header {
        /// 1-based line number.
        line: usize,
    },
}

/// Writes the comment lines and the column header.
pub fn write_header(out: &mut impl Write, comments: &[String]) -> io::Result<()> {
    for c in comments {
        writeln!(out, "# {c}")?;
    }
    writeln!(out, "{}", COLUMNS.join("\t"))
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |x| x.to_string())
}

/// Folds tabs, newlines and carriage returns into single spaces and trims.
pub fn clean(text: &str) -> String {
    let t: String = text
        .chars()
        .map(|c| {
            if matches!(c, '\t' | '\n' | '\r') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let t = t.trim();
    if t.is_empty() {
        "-".to_string()
    } else {
        t.to_string()
    }
}

/// Writes one row.
pub fn write_row(out: &mut impl Write, r: &Row) -> io::Result<()> {
    writeln!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        clean(&r.object),
        clean(&r.section),
        clean(&r.function),
        r.prog_type,
        r.attach_type,
        r.type_source,
        r.verdict.as_str(),
        opt(r.errno),
        r.insns,
        opt(r.processed),
        opt(r.verif_usec),
        clean(&r.reason),
    )
}

fn num<T: std::str::FromStr>(
    line: usize,
    column: &'static str,
    v: &str,
) -> Result<Option<T>, TableError> {
    if v == "-" {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| TableError::Field {
        line,
        column,
        value: v.to_string(),
    })
}

fn required<T: std::str::FromStr>(
    line: usize,
    column: &'static str,
    v: &str,
) -> Result<T, TableError> {
    num(line, column, v)?.ok_or(TableError::Field {
        line,
        column,
        value: v.to_string(),
    })
}

/// Parses a whole table.
pub fn parse_table(text: &str) -> Result<Vec<Row>, TableError> {
    let mut rows = Vec::new();
    let mut header_seen = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if !header_seen {
            if f != COLUMNS {
                return Err(TableError::Header { line: n });
            }
            header_seen = true;
            continue;
        }
        if f.len() != COLUMNS.len() {
            return Err(TableError::FieldCount {
                line: n,
                got: f.len(),
            });
        }
        let verdict = Verdict::parse(f[6]).ok_or(TableError::Field {
            line: n,
            column: "verdict",
            value: f[6].to_string(),
        })?;
        rows.push(Row {
            object: f[0].to_string(),
            section: f[1].to_string(),
            function: f[2].to_string(),
            prog_type: f[3].to_string(),
            attach_type: required(n, "attach_type", f[4])?,
            type_source: f[5].to_string(),
            verdict,
            errno: num(n, "errno", f[7])?,
            insns: required(n, "insns", f[8])?,
            processed: num(n, "processed", f[9])?,
            verif_usec: num(n, "verif_usec", f[10])?,
            reason: f[11].to_string(),
        });
    }
    if !header_seen {
        return Err(TableError::Header {
            line: text.lines().count() + 1,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            object: "ebpf-samples/linux/xdp1_kern.o".into(),
            section: "xdp1".into(),
            function: "xdp_prog1".into(),
            prog_type: "xdp".into(),
            attach_type: 0,
            type_source: "prefix".into(),
            verdict: Verdict::Rejected,
            errno: Some(13),
            insns: 61,
            processed: Some(40),
            verif_usec: None,
            reason: "R1 invalid\tmem\naccess".into(),
        }
    }

    #[test]
    fn round_trip_folds_whitespace_in_reasons() {
        let mut buf = Vec::new();
        write_header(&mut buf, &["regenerate: x".into()]).expect("write");
        write_row(&mut buf, &row()).expect("write");
        let text = String::from_utf8(buf).expect("utf8");
        let rows = parse_table(&text).expect("parse");
        let mut want = row();
        want.reason = "R1 invalid mem access".into();
        assert_eq!(rows, vec![want]);
    }

    #[test]
    fn errors_name_the_line() {
        let text = format!("{}\na\tb\n", COLUMNS.join("\t"));
        assert_eq!(
            parse_table(&text),
            Err(TableError::FieldCount { line: 2, got: 2 })
        );
        assert_eq!(parse_table("x\ty\n"), Err(TableError::Header { line: 1 }));
        let bad = format!(
            "{}\no\ts\tf\txdp\tzero\tlibbpf\taccepted\t-\t1\t-\t-\t-\n",
            COLUMNS.join("\t")
        );
        assert!(matches!(
            parse_table(&bad),
            Err(TableError::Field {
                line: 2,
                column: "attach_type",
                ..
            })
        ));
    }
}
