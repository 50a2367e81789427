//! Which corpus programs the benches and the ratio table measure, chosen by rule so that
//! criterion and the table (and every run) pick the same ones.
//!
//! - Verification: programs the kernel accepted according to hw-tests' verdict table
//!   (XDP, tc and socket filters), one small, one of median size, the largest, and the
//!   heaviest for the kernel (most processed instructions) — see [`verify_set`].
//! - Interpretation through the full `xdp_md` context: the kernel's `xdp1` sample (parses
//!   Ethernet/VLAN/IPv4/IPv6, bumps a per-CPU counter per IP protocol) — [`xdp_interp`].
//! - Compilation: the demo and the largest offloadable XDP/tc programs of ebpf-samples —
//!   [`offloadable`].

use std::collections::BTreeMap;
use std::path::Path;

use hw_tests::verdicts::{Row, Verdict, parse_table};
use nfp_backend::NicLimits;
use vm_core::{ProgType, Program};

/// hw-tests' record of what the kernel made of every corpus program.
pub const VERDICT_TABLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../hw-tests/fixtures/kernel_verdicts.linux-6.18.tsv"
);

/// The corpus XDP program run through the full `xdp_md` context.
pub const XDP_INTERP: (&str, &str) = ("ebpf-samples/linux/xdp1_kern.o", "xdp_prog1");

/// Why corpus programs could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The verdict table or an object could not be read.
    #[error("{path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The verdict table does not parse.
    #[error("{VERDICT_TABLE}: {0}")]
    Table(#[from] hw_tests::verdicts::TableError),
    /// vm-core's ELF loader refused an object.
    #[error("{path}: {source}")]
    Elf {
        /// Object.
        path: String,
        /// Cause.
        source: vm_core::elf::ElfError,
    },
    /// The program named by the table is not in its object.
    #[error("{object}: no program {function} in section {section}")]
    Missing {
        /// Object.
        object: String,
        /// Section.
        section: String,
        /// Function.
        function: String,
    },
}

/// A corpus program with the kernel's figures from the verdict table.
#[derive(Debug, Clone)]
pub struct CorpusProgram {
    /// `file.o:function`, for row labels.
    pub label: String,
    /// Object path relative to the corpus root.
    pub object: String,
    /// The linked program, typed as the kernel loaded it.
    pub program: Program,
    /// `processed N insns` recorded in the verdict table, if any.
    pub kernel_processed: Option<u64>,
}

fn prog_type(name: &str) -> Option<ProgType> {
    match name {
        "xdp" => Some(ProgType::Xdp),
        "sched_cls" => Some(ProgType::SchedCls),
        "socket_filter" => Some(ProgType::SocketFilter),
        _ => None,
    }
}

/// Loads ELF objects once each.
#[derive(Default)]
struct Objects(BTreeMap<String, Vec<Program>>);

impl Objects {
    fn programs(&mut self, object: &str) -> Result<&[Program], CorpusError> {
        if !self.0.contains_key(object) {
            let path = vm_core::corpus::root().join(object);
            let bytes = std::fs::read(&path).map_err(|source| CorpusError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let (obj, _) =
                vm_core::elf::load_object_lenient(&bytes).map_err(|source| CorpusError::Elf {
                    path: object.to_string(),
                    source,
                })?;
            self.0.insert(object.to_string(), obj.programs);
        }
        Ok(self.0.get(object).map_or(&[], Vec::as_slice))
    }

    fn program(&mut self, row: &Row) -> Result<CorpusProgram, CorpusError> {
        let missing = || CorpusError::Missing {
            object: row.object.clone(),
            section: row.section.clone(),
            function: row.function.clone(),
        };
        let t = prog_type(&row.prog_type).ok_or_else(missing)?;
        let mut program = self
            .programs(&row.object)?
            .iter()
            .find(|p| p.name == row.function && p.section.as_deref() == Some(&row.section))
            .cloned()
            .ok_or_else(missing)?;
        program.prog_type = t;
        let file = Path::new(&row.object)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&row.object);
        Ok(CorpusProgram {
            label: format!("{file}:{}", row.function),
            object: row.object.clone(),
            program,
            kernel_processed: row.processed,
        })
    }
}

/// Rows of the verdict table the kernel accepted, of a packet program type, attach-free.
pub fn accepted_rows() -> Result<Vec<Row>, CorpusError> {
    let text = std::fs::read_to_string(VERDICT_TABLE).map_err(|source| CorpusError::Read {
        path: VERDICT_TABLE.to_string(),
        source,
    })?;
    Ok(parse_table(&text)?
        .into_iter()
        .filter(|r| {
            r.verdict == Verdict::Accepted
                && r.attach_type == 0
                && prog_type(&r.prog_type).is_some()
        })
        .collect())
}

/// The size class of a verification workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeClass {
    /// The smallest program of at least [`SMALL_MIN_INSNS`] slots.
    Small,
    /// The median by slots.
    Medium,
    /// The most slots.
    Largest,
    /// The most instructions processed by the kernel's verifier.
    Heaviest,
}

impl SizeClass {
    /// Lower-case name for labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SizeClass::Small => "small",
            SizeClass::Medium => "medium",
            SizeClass::Largest => "largest",
            SizeClass::Heaviest => "heaviest",
        }
    }
}

/// Below this a program is mostly fixed cost (tiny socket filters of the test suites).
pub const SMALL_MIN_INSNS: usize = 50;

/// The verification workloads, one per size class.
pub type VerifySet = Vec<(SizeClass, CorpusProgram)>;

/// Kernel-accepted programs for the verification comparison, one per [`SizeClass`]
/// (the heaviest is left out when it is also the largest). Programs our verifier refuses
/// are passed over (in size order) and named in the returned notes, so the table never
/// compares a rejection against an acceptance.
pub fn verify_set() -> Result<(VerifySet, Vec<String>), CorpusError> {
    let mut rows = accepted_rows()?;
    rows.sort_by(|a, b| a.insns.cmp(&b.insns).then_with(|| a.key().cmp(&b.key())));
    // The same code in several objects (Cilium's copies) counts once.
    rows.dedup_by(|a, b| a.insns == b.insns && a.function == b.function);
    let mut objects = Objects::default();
    let mut notes = Vec::new();
    let quiet = verifier::VerifyOptions {
        log_level: 0,
        ..verifier::VerifyOptions::default()
    };
    let mut pick =
        |order: &mut dyn Iterator<Item = &Row>| -> Result<Option<CorpusProgram>, CorpusError> {
            for row in order {
                let p = objects.program(row)?;
                match verifier::verify(&p.program, &quiet) {
                    Ok(_) => return Ok(Some(p)),
                    Err(e) => notes.push(format!(
                        "{} passed over: the kernel accepts it, ours refuses it ({})",
                        p.label,
                        e.to_string().lines().next().unwrap_or("")
                    )),
                }
            }
            Ok(None)
        };
    let mut out = Vec::new();
    let small = rows
        .iter()
        .position(|r| r.insns >= SMALL_MIN_INSNS)
        .unwrap_or(0);
    if let Some(p) = pick(&mut rows.iter().skip(small))? {
        out.push((SizeClass::Small, p));
    }
    let mid = rows.len() / 2;
    if let Some(p) = pick(&mut rows.iter().skip(mid))? {
        out.push((SizeClass::Medium, p));
    }
    if let Some(p) = pick(&mut rows.iter().rev())? {
        out.push((SizeClass::Largest, p));
    }
    let mut by_processed = rows.clone();
    by_processed.sort_by_key(|r| std::cmp::Reverse(r.processed.unwrap_or(0)));
    if let Some(p) = pick(&mut by_processed.iter())?
        && !out.iter().any(|(_, q)| q.label == p.label)
    {
        out.push((SizeClass::Heaviest, p));
    }
    Ok((out, notes))
}

/// The corpus XDP program run through the full `xdp_md` context ([`XDP_INTERP`]) and the
/// packet it runs on: the demo's blocked UDP packet (IPv4, so it reaches the counter).
pub fn xdp_interp() -> Result<(CorpusProgram, Vec<u8>), CorpusError> {
    let (object, function) = XDP_INTERP;
    let row = accepted_rows()?
        .into_iter()
        .find(|r| r.object == object && r.function == function)
        .ok_or_else(|| CorpusError::Missing {
            object: object.into(),
            section: "?".into(),
            function: function.into(),
        })?;
    let program = Objects::default().program(&row)?;
    Ok((program, crate::blocked_packet()))
}

/// Every XDP and tc program of ebpf-samples (Cilium's section conventions included), in
/// object order: the candidates for compilation.
pub fn sample_packet_programs() -> Vec<CorpusProgram> {
    let mut out = Vec::new();
    for path in vm_core::corpus::elf_objects(&["ebpf-samples"]) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if vm_core::elf::is_big_endian(&bytes) {
            continue;
        }
        let Ok((obj, _)) = vm_core::elf::load_object_lenient(&bytes) else {
            continue;
        };
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let object = path
            .strip_prefix(vm_core::corpus::root())
            .map_or_else(|_| file.clone(), |p| p.display().to_string());
        for mut p in obj.programs {
            match p.prog_type {
                ProgType::Xdp | ProgType::SchedCls => {}
                ProgType::Other(0) => {
                    let section = p.section.clone().unwrap_or_default();
                    match vm_core::corpus::conventional_prog_type(&section, &file) {
                        Some(t) => p.prog_type = t,
                        None => continue,
                    }
                }
                _ => continue,
            }
            out.push(CorpusProgram {
                label: format!("{file}:{}", p.name),
                object: object.clone(),
                program: p,
                kernel_processed: None,
            });
        }
    }
    out
}

/// The `count` largest of `programs` that compile for `nic`, largest first, identical code
/// counted once.
pub fn largest_offloadable(
    programs: &[CorpusProgram],
    nic: &NicLimits,
    count: usize,
) -> Vec<CorpusProgram> {
    let mut order: Vec<&CorpusProgram> = programs.iter().collect();
    order.sort_by(|a, b| {
        b.program
            .insns
            .len()
            .cmp(&a.program.insns.len())
            .then(a.label.cmp(&b.label))
    });
    let mut found: Vec<CorpusProgram> = Vec::new();
    for p in order {
        if found.len() >= count {
            break;
        }
        if found.iter().any(|q| q.program.insns == p.program.insns) {
            continue;
        }
        if nfp_backend::compile::compile(&p.program, nic).is_ok() {
            found.push(p.clone());
        }
    }
    found
}

/// The `count` largest programs of ebpf-samples that compile for `nic` (see
/// [`sample_packet_programs`], [`largest_offloadable`]).
pub fn offloadable(nic: &NicLimits, count: usize) -> Vec<CorpusProgram> {
    largest_offloadable(&sample_packet_programs(), nic, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_set_has_small_medium_and_largest() {
        let (set, notes) = verify_set().expect("verdict table and corpus readable");
        let classes: Vec<SizeClass> = set.iter().map(|(c, _)| *c).collect();
        assert!(
            classes.starts_with(&[SizeClass::Small, SizeClass::Medium, SizeClass::Largest]),
            "{classes:?} {notes:?}"
        );
        let sizes: Vec<usize> = set.iter().map(|(_, p)| p.program.insns.len()).collect();
        assert!(sizes[0] >= SMALL_MIN_INSNS && sizes[0] <= sizes[1] && sizes[1] <= sizes[2]);
    }

    #[test]
    fn the_xdp_interp_program_runs_in_our_interpreter() {
        let (p, packet) = xdp_interp().expect("corpus readable");
        let mut vm = vm_core::interp::Vm::new(&p.program, Default::default()).expect("loads");
        let out = vm.run(&packet).expect("runs");
        assert!(out.insns > 10, "{}", out.insns);
    }
}
