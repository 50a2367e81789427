//! The committed kernel verdict table (hw-tests/fixtures/kernel_verdicts.linux-6.18.tsv):
//! it parses, it lists exactly the programs vm-core's ELF loader finds in the corpora, and a
//! sample of its rows still matches the live kernel.
//!
//! Regenerating the whole table takes about two minutes on this machine (most of it
//! verification of the large Cilium programs), too slow for every CI run, so the live check
//! re-loads a spread sample of rows. When vm-core's loader or the corpus changes, regenerate:
//! `cargo run -p hw-tests --release --bin kernel-verdicts -- > hw-tests/fixtures/kernel_verdicts.linux-6.18.tsv`

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use hw_tests::require_kernel;
use hw_tests::verdicts::{
    Row, Summary, Verdict, WHOLE_OBJECT, corpus_objects, kernel_release, object_verdicts_matching,
    parse_table,
};

const REGENERATE: &str = "cargo run -p hw-tests --release --bin kernel-verdicts -- > hw-tests/fixtures/kernel_verdicts.linux-6.18.tsv";

/// Rows re-checked against the live kernel.
const SAMPLE: usize = 30;

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/kernel_verdicts.linux-6.18.tsv")
}

fn fixture() -> (String, Vec<Row>) {
    let path = fixture_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; regenerate with {REGENERATE}", path.display()));
    let rows = parse_table(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (text, rows)
}

#[test]
fn fixture_parses_and_is_consistent() {
    let (text, rows) = fixture();
    assert!(
        text.lines()
            .any(|l| l.starts_with('#') && l.contains(REGENERATE)),
        "the header must name the regenerating command"
    );
    let mut keys = BTreeSet::new();
    for r in &rows {
        assert!(keys.insert(r.key()), "duplicate row {:?}", r.key());
        match r.verdict {
            Verdict::Accepted => assert!(
                r.errno.is_none() && r.reason == "-" && r.processed.is_some(),
                "{r:?}"
            ),
            Verdict::Rejected => assert!(r.errno.is_some() && r.reason != "-", "{r:?}"),
            Verdict::MapCreateFailed | Verdict::NotLoadable | Verdict::LoadFailedInVmCore => {
                assert!(r.reason != "-" && r.processed.is_none(), "{r:?}")
            }
        }
    }
    print!("{}", Summary::of(&rows).render());
    assert!(rows.len() > 700, "only {} rows", rows.len());
}

#[test]
fn fixture_covers_exactly_the_programs_vm_core_loads() {
    let (_, rows) = fixture();
    vm_core::corpus::require("ebpf-samples");
    vm_core::corpus::require("cilium-ebpf");
    let root = vm_core::corpus::root();
    let objects = corpus_objects(&root).expect("list the corpus");
    let (mut loaded, mut failed) = (BTreeSet::new(), BTreeSet::new());
    for (rel, path) in &objects {
        let bytes = std::fs::read(path).expect("read object");
        match vm_core::elf::load_object_lenient(&bytes) {
            Err(_) => {
                failed.insert((
                    rel.clone(),
                    WHOLE_OBJECT.to_string(),
                    WHOLE_OBJECT.to_string(),
                ));
            }
            Ok((obj, errors)) => {
                for p in &obj.programs {
                    let section = p.section.clone().unwrap_or_else(|| p.name.clone());
                    loaded.insert((rel.clone(), section, p.name.clone()));
                }
                for e in errors {
                    if let vm_core::elf::Item::Program(name) = e.item {
                        failed.insert((rel.clone(), e.section, name));
                    }
                }
            }
        }
    }
    let table_loaded: BTreeSet<_> = rows
        .iter()
        .filter(|r| r.verdict != Verdict::LoadFailedInVmCore)
        .map(Row::key)
        .collect();
    let table_failed: BTreeSet<_> = rows
        .iter()
        .filter(|r| r.verdict == Verdict::LoadFailedInVmCore)
        .map(Row::key)
        .collect();
    let mut problems = Vec::new();
    for k in loaded.difference(&table_loaded) {
        problems.push(format!(
            "vm-core loads {k:?}, the table has no kernel verdict for it"
        ));
    }
    for k in table_loaded.difference(&loaded) {
        problems.push(format!(
            "the table has a kernel verdict for {k:?}, vm-core does not load it"
        ));
    }
    for k in failed.symmetric_difference(&table_failed) {
        problems.push(format!(
            "vm-core load failure differs from the table for {k:?}"
        ));
    }
    println!(
        "{} objects: vm-core loads {} programs and refuses {}; table rows {}",
        objects.len(),
        loaded.len(),
        failed.len(),
        rows.len()
    );
    assert!(
        problems.is_empty(),
        "{} differences; regenerate with {REGENERATE}\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The fields that must be reproduced (not `verif_usec`, which is a timing).
fn stable(
    r: &Row,
) -> (
    String,
    u32,
    Verdict,
    Option<i32>,
    usize,
    Option<u64>,
    String,
) {
    (
        r.prog_type.clone(),
        r.attach_type,
        r.verdict,
        r.errno,
        r.insns,
        r.processed,
        r.reason.clone(),
    )
}

#[test]
fn a_sample_of_rows_matches_the_live_kernel() {
    require_kernel!("a_sample_of_rows_matches_the_live_kernel");
    let release = kernel_release();
    if !release.starts_with("6.18") {
        println!(
            "{} a_sample_of_rows_matches_the_live_kernel: the table is for Linux 6.18, this is {release}",
            hw_tests::kernel::SKIP_MARKER
        );
        return;
    }
    let (_, rows) = fixture();
    // A stride through the sorted table, plus the first row of every verdict kind.
    let step = (rows.len() / SAMPLE).max(1);
    let mut picked: BTreeMap<(String, String, String), &Row> =
        rows.iter().step_by(step).map(|r| (r.key(), r)).collect();
    for v in [
        Verdict::Accepted,
        Verdict::Rejected,
        Verdict::MapCreateFailed,
        Verdict::LoadFailedInVmCore,
        Verdict::NotLoadable,
    ] {
        if let Some(r) = rows.iter().find(|r| r.verdict == v) {
            picked.insert(r.key(), r);
        }
    }
    let mut by_object: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in picked.values() {
        by_object.entry(r.object.as_str()).or_default().push(r);
    }
    let root = vm_core::corpus::require("ebpf-samples")
        .parent()
        .map(PathBuf::from)
        .expect("corpus root");
    let start = Instant::now();
    let mut mismatches = Vec::new();
    for (object, want) in &by_object {
        let bytes = std::fs::read(root.join(object)).expect("read object");
        let keys: BTreeSet<(&str, &str)> = want
            .iter()
            .map(|r| (r.section.as_str(), r.function.as_str()))
            .collect();
        let got = object_verdicts_matching(object, &bytes, &|s, f| keys.contains(&(s, f)));
        for w in want {
            match got.iter().find(|g| g.key() == w.key()) {
                Some(g) if stable(g) == stable(w) => {}
                Some(g) => mismatches.push(format!(
                    "{:?}\n  table: {:?}\n  live:  {:?}",
                    w.key(),
                    stable(w),
                    stable(g)
                )),
                None => mismatches.push(format!("{:?}: no longer produced", w.key())),
            }
        }
    }
    println!(
        "re-checked {} rows of {} objects against Linux {release} in {:.1} s",
        picked.len(),
        by_object.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(
        mismatches.is_empty(),
        "{} rows differ from the live kernel; regenerate with {REGENERATE}\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Old kprobe objects carry a `version` section because kernels before 5.0 refused a kprobe
/// program whose `kern_version` differed from LINUX_VERSION_CODE. 6.18 ignores the field: the
/// table's kprobe rows are loaded with `kern_version` 0 and accepted. Pinned here.
#[test]
fn kprobes_load_without_kern_version_on_6_18() {
    require_kernel!("kprobes_load_without_kern_version_on_6_18");
    let kprobe = aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_KPROBE as u32;
    let loaded = hw_tests::kernel::load_program(
        &hw_tests::kernel::trivial_program(),
        kprobe,
        &hw_tests::kernel::LoadOptions::default(),
    );
    assert!(loaded.is_ok(), "{:?}", loaded.err());
}
