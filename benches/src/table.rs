//! The ratio table: one row per (stage, workload, peer), our figure next to the peer's, the
//! ratio, and the goal the project set where one exists; with a header that says when, where
//! and on what the numbers were measured (the machine is shared, so its load is recorded).
//! Written as markdown (for the README) and JSON (for tools).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// A measured figure with its unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// The number.
    pub value: f64,
    /// Its unit (`ns/insn`, `us`, `M pkts/s`, ...).
    pub unit: String,
}

impl Figure {
    /// `value` in `unit`.
    pub fn new(value: f64, unit: &str) -> Figure {
        Figure {
            value,
            unit: unit.to_string(),
        }
    }

    fn render(&self) -> String {
        format!("{} {}", significant(self.value), self.unit)
    }
}

/// Three significant digits (at least the integer part).
pub fn significant(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A goal and whether this run met it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goal {
    /// The goal as stated (`>= 5x rbpf interpreter`).
    pub text: String,
    /// Met, missed, or not measurable in this run.
    pub met: Option<bool>,
}

impl Goal {
    /// A goal with its verdict.
    pub fn new(text: &str, met: Option<bool>) -> Goal {
        Goal {
            text: text.into(),
            met,
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `decode`, `interp`, `verify`, `compile`, `simulate`.
    pub stage: String,
    /// What ran.
    pub workload: String,
    /// Our figure.
    pub ours: Figure,
    /// The peer (`rbpf 0.4 interpreter`, `kernel JIT`, ...), if there is one.
    pub peer: Option<String>,
    /// The peer's figure, in the same unit as ours; `None` when the peer was skipped.
    pub peer_figure: Option<Figure>,
    /// For time figures: the peer's time over ours (above 1: ours is faster). For
    /// throughput scaling: the larger configuration's throughput over the smaller's.
    pub ratio: Option<f64>,
    /// The goal, where the project set one.
    pub goals: Vec<Goal>,
    /// Why a figure is missing, or how to read one.
    pub note: String,
    /// Raw numbers behind the row (per-run times, counts, spreads), for the JSON.
    pub detail: BTreeMap<String, f64>,
}

impl Row {
    /// A row with our figure only.
    pub fn ours(stage: &str, workload: &str, ours: Figure) -> Row {
        Row {
            stage: stage.into(),
            workload: workload.into(),
            ours,
            peer: None,
            peer_figure: None,
            ratio: None,
            goals: Vec::new(),
            note: String::new(),
            detail: BTreeMap::new(),
        }
    }

    /// Sets the peer and its time-like figure (lower is better); the ratio is peer / ours.
    pub fn versus(mut self, peer: &str, figure: Option<Figure>) -> Row {
        self.ratio = figure
            .as_ref()
            .map(|f| f.value / self.ours.value)
            .filter(|r| r.is_finite());
        self.peer = Some(peer.into());
        self.peer_figure = figure;
        self
    }

    /// Adds a goal.
    pub fn goal(mut self, text: &str, met: Option<bool>) -> Row {
        self.goals.push(Goal::new(text, met));
        self
    }

    /// Sets the note.
    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    /// Records a raw number.
    pub fn detail(mut self, key: &str, value: f64) -> Row {
        self.detail.insert(key.into(), value);
        self
    }
}

/// When, where and on what the table was measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Header {
    /// `YYYY-MM-DD HH:MM UTC`.
    pub date_utc: String,
    /// CPU model from /proc/cpuinfo.
    pub cpu: String,
    /// Logical CPUs.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// `git rev-parse --short HEAD`, with `+dirty` when tracked files differ from it.
    pub git_commit: String,
    /// 1, 5 and 15-minute load averages when the run started.
    pub loadavg_start: String,
    /// The same when the run ended.
    pub loadavg_end: String,
    /// Total wall time of the run, seconds.
    pub wall_s: f64,
    /// The command that produced the table.
    pub command: String,
}

impl Header {
    /// Reads the machine's description now (the load average at start included).
    pub fn collect(command: &str) -> Header {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_string(), |(_, m)| m.trim().to_string());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |s| s.trim().to_string());
        Header {
            date_utc: utc_now(),
            cpu,
            cores,
            kernel,
            git_commit: git_commit(),
            loadavg_start: loadavg(),
            loadavg_end: String::new(),
            wall_s: 0.0,
            command: command.into(),
        }
    }

    /// Records the end of the run.
    pub fn finish(&mut self, wall_s: f64) {
        self.loadavg_end = loadavg();
        self.wall_s = wall_s;
    }
}

/// The 1, 5 and 15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn git_commit() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{c}+dirty") } else { c }
        }
        _ => "unknown".into(),
    }
}

/// The current time as `YYYY-MM-DD HH:MM UTC` (civil-from-days, proleptic Gregorian).
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs)
}

fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// The whole table, for the JSON file.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Where and when.
    pub header: Header,
    /// How to read the ratio column.
    pub ratio_meaning: &'static str,
    /// The rows.
    pub rows: Vec<Row>,
    /// Remarks (skips, passed-over programs, how figures were taken).
    pub notes: Vec<String>,
}

/// What the ratio column means (also written into both outputs).
pub const RATIO_MEANING: &str = "ratio = peer's time / our time (above 1: ours is faster); for host-thread scaling, throughput with 2 threads / with 1";

impl Table {
    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The markdown text: header lines, the table, the notes.
    pub fn to_markdown(&self) -> String {
        let h = &self.header;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Measured {} on {} ({} logical CPUs), Linux {}, commit {}.",
            h.date_utc, h.cpu, h.cores, h.kernel, h.git_commit
        );
        let _ = writeln!(
            s,
            "Shared machine: load average {} at start, {} at end; one run of `{}`, {:.0} s.",
            h.loadavg_start, h.loadavg_end, h.command, h.wall_s
        );
        let _ = writeln!(s, "{RATIO_MEANING}.");
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| stage | workload | ours | peer | peer's figure | ratio | goal | note |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for r in &self.rows {
            let goals: Vec<String> = r
                .goals
                .iter()
                .map(|g| {
                    let mark = match g.met {
                        Some(true) => "met",
                        Some(false) => "MISSED",
                        None => "n/a",
                    };
                    format!("{}: {mark}", g.text)
                })
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.stage,
                r.workload,
                r.ours.render(),
                r.peer.as_deref().unwrap_or("—"),
                match (&r.peer, &r.peer_figure) {
                    (None, _) => "—".to_string(),
                    (Some(_), None) => "SKIPPED".to_string(),
                    (Some(_), Some(f)) => f.render(),
                },
                r.ratio
                    .map_or("—".into(), |x| format!("{}x", significant(x))),
                if goals.is_empty() {
                    "—".to_string()
                } else {
                    goals.join("; ")
                },
                r.note.replace('|', "/"),
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s);
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(951_782_400 + 3_661), "2000-02-29 01:01 UTC");
        assert_eq!(format_utc(1_767_225_600), "2026-01-01 00:00 UTC");
    }

    #[test]
    fn ratio_is_peer_over_ours_and_rows_render() {
        let r = Row::ours("interp", "sum_loop", Figure::new(0.5, "ns/insn"))
            .versus("rbpf", Some(Figure::new(5.0, "ns/insn")))
            .goal(">= 5x", Some(true));
        assert_eq!(r.ratio, Some(10.0));
        let skipped = Row::ours("verify", "x", Figure::new(1.0, "us")).versus("kernel", None);
        assert_eq!(skipped.ratio, None);
        let t = Table {
            header: Header::collect("test"),
            ratio_meaning: RATIO_MEANING,
            rows: vec![r, skipped],
            notes: vec!["a note".into()],
        };
        let md = t.to_markdown();
        assert!(
            md.contains(
                "| interp | sum_loop | 0.500 ns/insn | rbpf | 5.00 ns/insn | 10.0x | >= 5x: met |"
            ),
            "{md}"
        );
        assert!(md.contains("SKIPPED"), "{md}");
        let json: serde_json::Value = serde_json::from_str(&t.to_json()).expect("valid JSON");
        assert_eq!(json["rows"][0]["ratio"], 10.0);
    }
}
