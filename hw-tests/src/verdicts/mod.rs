//! The kernel's verdict on every program of the staged ELF corpora (ebpf-samples and the
//! little-endian cilium/ebpf objects), as a table our verifier is measured against.
//!
//! For each object: vm-core's ELF loader links the programs ([`vm_core::elf`]), the object's
//! maps are created in the kernel once, and each program is loaded with the type its section
//! implies ([`section`]). One [`Row`] per (object, section, function) records what happened;
//! [`table`] reads and writes the committed TSV fixture.
//!
//! The verdicts are the kernel's answer to *our* loader's output, not to libbpf's: where
//! vm-core refuses something (CO-RE, kfuncs) the row says so instead of guessing, and maps
//! are created without BTF, so BTF-only map features (spin locks, timers, kptrs) make the
//! kernel reject programs libbpf would load. Each such row names the reason.

mod corpus;
mod object;
pub mod section;
pub mod table;

use std::collections::BTreeMap;

pub use corpus::{corpus_objects, kernel_release};
pub use object::{
    LOG_LEVEL, create_map, explain, object_verdicts, object_verdicts_matching, referenced_maps,
};
pub use section::{AttachNeed, ProgSpec, TypeSource, classify};
pub use table::{TableError, parse_table, write_header, write_row};

/// What became of one program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// The kernel verifier accepted it.
    Accepted,
    /// `BPF_PROG_LOAD` refused it (errno and first error line recorded).
    Rejected,
    /// A map the program refers to could not be created in the kernel.
    MapCreateFailed,
    /// vm-core's ELF loader refused the program (or the whole object).
    LoadFailedInVmCore,
    /// The kernel needs attach information we do not supply (fentry, lsm, freplace, ...).
    NotLoadable,
}

impl Verdict {
    /// The TSV spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Rejected => "rejected",
            Verdict::MapCreateFailed => "map_create_failed",
            Verdict::LoadFailedInVmCore => "load_failed_in_vm_core",
            Verdict::NotLoadable => "not_loadable",
        }
    }

    /// Inverse of [`Verdict::as_str`].
    pub fn parse(s: &str) -> Option<Verdict> {
        [
            Verdict::Accepted,
            Verdict::Rejected,
            Verdict::MapCreateFailed,
            Verdict::LoadFailedInVmCore,
            Verdict::NotLoadable,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// Section and function of a row that stands for a whole object vm-core could not read.
pub const WHOLE_OBJECT: &str = "*";

/// One program's line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Path relative to the corpus root (`ebpf-samples/linux/xdp1_kern.o`).
    pub object: String,
    /// ELF section ([`WHOLE_OBJECT`] when the object did not load at all).
    pub section: String,
    /// Entry function ([`WHOLE_OBJECT`] likewise).
    pub function: String,
    /// Program type loaded as (`xdp`, `sched_cls`, ...; `-` when never loaded).
    pub prog_type: String,
    /// `expected_attach_type` number passed (0 = none).
    pub attach_type: u32,
    /// Which rule chose the type ([`TypeSource::as_str`]).
    pub type_source: String,
    /// The outcome.
    pub verdict: Verdict,
    /// errno of `BPF_PROG_LOAD` or `BPF_MAP_CREATE`, when one failed.
    pub errno: Option<i32>,
    /// Instruction slots after linking (0 when vm-core did not load it).
    pub insns: usize,
    /// `processed N insns` from the verifier log.
    pub processed: Option<u64>,
    /// `verification time N usec` (log level 4); varies from run to run.
    pub verif_usec: Option<u64>,
    /// First error line, map error or loader error; `-` for accepted programs.
    pub reason: String,
}

impl Row {
    /// The identity used for set comparisons.
    pub fn key(&self) -> (String, String, String) {
        (
            self.object.clone(),
            self.section.clone(),
            self.function.clone(),
        )
    }

    /// The corpus folder the row counts under in summaries (`ebpf-samples/linux`).
    pub fn folder(&self) -> String {
        let mut parts = self.object.split('/');
        match (parts.next(), parts.next()) {
            (Some("cilium-ebpf"), _) => "cilium-ebpf".to_string(),
            (Some(a), Some(b)) => format!("{a}/{b}"),
            (Some(a), None) => a.to_string(),
            _ => String::new(),
        }
    }
}

/// Counts per folder and verdict, and errnos of rejections, for reports.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// folder → verdict → programs.
    pub by_folder: BTreeMap<String, BTreeMap<Verdict, usize>>,
    /// errno (of rejected and map_create_failed rows) → count.
    pub errnos: BTreeMap<i32, usize>,
}

impl Summary {
    /// Tallies `rows`.
    pub fn of(rows: &[Row]) -> Summary {
        let mut s = Summary::default();
        for r in rows {
            *s.by_folder
                .entry(r.folder())
                .or_default()
                .entry(r.verdict)
                .or_default() += 1;
            if let Some(e) = r.errno {
                *s.errnos.entry(e).or_default() += 1;
            }
        }
        s
    }

    /// A human-readable table.
    pub fn render(&self) -> String {
        let verdicts = [
            Verdict::Accepted,
            Verdict::Rejected,
            Verdict::MapCreateFailed,
            Verdict::LoadFailedInVmCore,
            Verdict::NotLoadable,
        ];
        let mut out = format!(
            "{:<32} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
            "folder", "accepted", "rejected", "map_fail", "vm_core", "not_ldbl"
        );
        let mut total = [0usize; 5];
        for (folder, counts) in &self.by_folder {
            out.push_str(&format!("{folder:<32}"));
            for (i, v) in verdicts.iter().enumerate() {
                let n = counts.get(v).copied().unwrap_or(0);
                total[i] += n;
                out.push_str(&format!(" {n:>8}"));
            }
            out.push('\n');
        }
        out.push_str(&format!("{:<32}", "total"));
        for n in total {
            out.push_str(&format!(" {n:>8}"));
        }
        out.push_str("\nerrnos:");
        for (e, n) in &self.errnos {
            out.push_str(&format!(" {}({e})={n}", crate::sys::errno_name(*e)));
        }
        out.push('\n');
        out
    }
}
