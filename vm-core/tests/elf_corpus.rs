//! The ELF loader over every staged BPF object: ebpf-samples (PREVAIL's corpus), cilium/ebpf
//! test objects (little-endian ones; big-endian twins are counted as skipped) and rbpf's
//! examples. Prints per-folder numbers and a histogram of failure reasons, cross-checks
//! section and slot counts against the corpora's INVENTORY.tsv and PREVAIL's program list,
//! asserts invariants of every loaded program, and fuzzes the loader with mutated objects.
//!
//! Run with `cargo test -p vm-core --test elf_corpus -- --nocapture` to see the report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use vm_core::elf::{self, LoadOptions, Object, SectionError, TextPrograms};
use vm_core::isa::{Insn, LdImm64, decode_program};
use vm_core::program::{ProgType, Program};

fn corpus_root() -> PathBuf {
    vm_core::corpus::require("ebpf-samples");
    vm_core::corpus::root()
}

/// Every ELF file under `dir` (by magic, so extension-less fuzzer files count too), sorted.
fn elf_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if std::fs::read(&p).is_ok_and(|b| b.starts_with(b"\x7fELF")) {
                out.push(p);
            }
        }
    }
    assert!(dir.is_dir(), "corpus folder {} is missing", dir.display());
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

#[derive(Default)]
struct Stats {
    objects: usize,
    objects_full: usize,
    objects_partial: usize,
    objects_failed: usize,
    skipped_big_endian: usize,
    programs_loaded: usize,
    programs_failed: usize,
    maps_loaded: usize,
    maps_failed: usize,
    reasons: BTreeMap<String, usize>,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.objects += o.objects;
        self.objects_full += o.objects_full;
        self.objects_partial += o.objects_partial;
        self.objects_failed += o.objects_failed;
        self.skipped_big_endian += o.skipped_big_endian;
        self.programs_loaded += o.programs_loaded;
        self.programs_failed += o.programs_failed;
        self.maps_loaded += o.maps_loaded;
        self.maps_failed += o.maps_failed;
        for (k, v) in &o.reasons {
            *self.reasons.entry(k.clone()).or_default() += v;
        }
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name:<28} objects {:>3}: loaded {:>3} partial {:>2} failed {:>2} skipped-BE {:>2} | programs loaded {:>4} failed {:>3} | maps loaded {:>4} failed {:>2}",
            self.objects,
            self.objects_full,
            self.objects_partial,
            self.objects_failed,
            self.skipped_big_endian,
            self.programs_loaded,
            self.programs_failed,
            self.maps_loaded,
            self.maps_failed,
        )
    }
}

/// Invariants of every loaded program: decodes from its own encoding to itself, every map
/// reference is an index into its maps, every map value offset is inside the value.
fn check_program(p: &Program, what: &str) {
    let raw = p.raw();
    let decoded = decode_program(&raw)
        .unwrap_or_else(|e| panic!("{what}: loaded program does not decode: {e}"));
    assert_eq!(decoded, p.insns, "{what}: encode/decode round trip differs");
    for (pc, insn) in p.insns.iter().enumerate() {
        if let Insn::LdImm64 { value, .. } = insn {
            match *value {
                LdImm64::MapFd(fd) => assert!(
                    (fd as usize) < p.maps.len(),
                    "{what}: insn {pc} refers to map {fd} of {}",
                    p.maps.len()
                ),
                LdImm64::MapValue { fd, off } => {
                    let m = p
                        .maps
                        .get(fd as usize)
                        .unwrap_or_else(|| panic!("{what}: insn {pc} refers to map {fd}"));
                    assert!(
                        m.initial_value.is_some(),
                        "{what}: insn {pc}: value of a non-data map"
                    );
                    assert!(
                        off < m.value_size,
                        "{what}: insn {pc}: offset {off} past value"
                    );
                }
                _ => {}
            }
        }
    }
}

struct Loaded {
    rel: String,
    result: Result<(Object, Vec<SectionError>), elf::ElfError>,
}

fn load_folder(
    root: &Path,
    folder: &str,
    options: &LoadOptions,
) -> (BTreeMap<String, Stats>, Vec<Loaded>) {
    let mut per_folder: BTreeMap<String, Stats> = BTreeMap::new();
    let mut loaded = Vec::new();
    let base = root.join(folder);
    for path in elf_files(&base) {
        let bytes = std::fs::read(&path).unwrap_or_default();
        let rel = path
            .strip_prefix(&base)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let sub = match rel.split_once('/') {
            Some((first, _)) => format!("{folder}/{first}"),
            None => folder.to_string(),
        };
        let st = per_folder.entry(sub).or_default();
        st.objects += 1;
        if elf::is_big_endian(&bytes) {
            st.skipped_big_endian += 1;
            continue;
        }
        let result = elf::load_object_with(&bytes, options);
        match &result {
            Err(e) => {
                println!("   {folder}/{rel}: {e}");
                st.objects_failed += 1;
                *st.reasons
                    .entry(format!("object: {}", fatal_class(e)))
                    .or_default() += 1;
            }
            Ok((obj, errors)) => {
                for p in &obj.programs {
                    check_program(p, &format!("{rel} {}", p.name));
                }
                let failed_progs = errors.iter().filter(|e| e.is_program()).count();
                st.programs_loaded += obj.programs.len();
                st.programs_failed += failed_progs;
                st.maps_loaded += obj.maps.len();
                st.maps_failed += errors.len() - failed_progs;
                if failed_progs == 0 {
                    st.objects_full += 1;
                } else {
                    st.objects_partial += 1;
                }
                for e in errors {
                    let who = if e.is_program() { "program" } else { "map" };
                    *st.reasons
                        .entry(format!("{who}: {}", e.kind.class()))
                        .or_default() += 1;
                }
            }
        }
        loaded.push(Loaded { rel, result });
    }
    (per_folder, loaded)
}

fn fatal_class(e: &elf::ElfError) -> String {
    let s = e.to_string();
    s.split(':').take(2).collect::<Vec<_>>().join(":")
}

fn print_report(title: &str, per_folder: &BTreeMap<String, Stats>) -> Stats {
    let mut total = Stats::default();
    println!("== {title}");
    for (name, st) in per_folder {
        println!("{}", st.line(name));
        total.add(st);
    }
    println!("{}", total.line("TOTAL"));
    println!("   failure reasons:");
    for (reason, n) in &total.reasons {
        println!("   {n:>5}  {reason}");
    }
    total
}

/// `file -> [(section, slots)]` from an INVENTORY.tsv (little-endian, error-free rows).
fn inventory(path: &Path) -> BTreeMap<String, BTreeSet<(String, usize)>> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("file\t"))
    {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 8 || cols[2] != "le" || cols.get(8).is_some_and(|e| !e.is_empty()) {
            continue;
        }
        let secs = cols[7]
            .split(';')
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.rsplit_once(':'))
            .map(|(n, c)| (n.to_string(), c.parse().unwrap_or(usize::MAX)))
            .collect();
        out.insert(cols[0].to_string(), secs);
    }
    out
}

/// Compares code sections and slot counts with an INVENTORY.tsv; returns (matching, compared).
fn cross_check_inventory(
    loaded: &[Loaded],
    inv: &BTreeMap<String, BTreeSet<(String, usize)>>,
    label: &str,
) -> (usize, usize) {
    let (mut ok, mut total) = (0, 0);
    for l in loaded {
        let Some(expected) = inv.get(&l.rel) else {
            continue;
        };
        total += 1;
        let got: BTreeSet<(String, usize)> = match &l.result {
            Ok((obj, _)) => obj
                .code_sections
                .iter()
                .map(|c| (c.name.clone(), c.slots))
                .collect(),
            Err(_) => BTreeSet::new(),
        };
        if &got == expected {
            ok += 1;
        } else {
            println!(
                "   {label} inventory mismatch {}: expected {expected:?} got {got:?}",
                l.rel
            );
        }
    }
    println!(
        "   {label}: code sections + slot counts match INVENTORY.tsv for {ok} of {total} objects"
    );
    (ok, total)
}

#[test]
fn ebpf_samples_corpus() {
    let root = corpus_root();
    let (per_folder, loaded) = load_folder(&root, "ebpf-samples", &LoadOptions::default());
    let total = print_report(
        "ebpf-samples (default: .text functions are programs only when alone)",
        &per_folder,
    );
    let inv = inventory(&root.join("ebpf-samples/INVENTORY.tsv"));
    let (inv_ok, inv_total) = cross_check_inventory(&loaded, &inv, "ebpf-samples");

    // PREVAIL's view: every function is a program, including those of `.text`.
    let (_, prevail_loaded) = load_folder(
        &root,
        "ebpf-samples",
        &LoadOptions {
            text_programs: TextPrograms::Always,
        },
    );
    let pv = cross_check_prevail(&root, &prevail_loaded);

    // Thresholds are what the loader achieves today; lower numbers are regressions.
    assert_eq!(total.objects, 173, "staged object count changed");
    assert!(total.objects_full >= 165, "objects fully loaded regressed");
    assert!(total.objects_failed <= 2, "whole-object failures grew");
    assert!(total.programs_loaded >= 590, "programs loaded regressed");
    assert!(total.programs_failed <= 86, "program failures grew");
    assert_eq!(total.maps_failed, 0, "map definitions failed");
    assert_eq!(inv_total, 170, "little-endian, parseable INVENTORY rows");
    assert!(inv_ok >= 169, "INVENTORY agreement regressed");
    assert_eq!(pv.rows, 678);
    assert!(pv.loaded >= 592, "PREVAIL programs loaded regressed");
    assert_eq!(
        pv.missing, 0,
        "a program PREVAIL lists was not found at all"
    );
    assert!(
        pv.count_ok >= 678,
        "programs-per-section agreement regressed"
    );
    assert!(pv.refused_ok >= 2, "objects PREVAIL refuses to load");
}

/// Agreement with EXPECTATIONS.prevail.tsv.
#[derive(Debug, Default)]
struct PrevailCheck {
    /// Rows for programs PREVAIL loads (pass / reject / expected_failure).
    rows: usize,
    /// Of those, loaded by us.
    loaded: usize,
    /// Of those, found but refused by us (with a reason).
    failed: usize,
    /// Of those, not found at all.
    missing: usize,
    /// Rows whose programs-per-section count equals ours (loaded + failed).
    count_ok: usize,
    /// Rows PREVAIL refuses to load (reject_load / load_error).
    refused_rows: usize,
    /// Of those, refused by us too.
    refused_ok: usize,
}

/// Compares with EXPECTATIONS.prevail.tsv: each (object, section, function) PREVAIL lists.
fn cross_check_prevail(root: &Path, loaded: &[Loaded]) -> PrevailCheck {
    let path = root.join("ebpf-samples/EXPECTATIONS.prevail.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let by_rel: BTreeMap<&str, &Loaded> = loaded.iter().map(|l| (l.rel.as_str(), l)).collect();
    let mut pv = PrevailCheck::default();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("object\t"))
    {
        let c: Vec<&str> = line.split('\t').collect();
        if c.len() < 5 {
            continue;
        }
        let (object, section, function, in_section, status) = (c[0], c[1], c[2], c[3], c[4]);
        let Some(l) = by_rel.get(object) else {
            panic!("prevail: object {object} not staged");
        };
        // PREVAIL names a program after its section when the section has no function symbol
        // (old clang marked entry points with untyped symbols, which we use as names).
        let matches = |name: &str| name == function || section == function;
        if status == "reject_load" || status == "load_error" {
            pv.refused_rows += 1;
            let refused = match &l.result {
                Err(_) => true,
                Ok((obj, errs)) => {
                    !obj.programs_in_section(section).any(|p| matches(&p.name))
                        || errs.iter().any(|e| e.section == section)
                }
            };
            if refused {
                pv.refused_ok += 1;
            } else {
                println!(
                    "   prevail: {object} {section} {function}: PREVAIL refuses to load it, we load it"
                );
            }
            continue;
        }
        pv.rows += 1;
        let Ok((obj, errs)) = &l.result else {
            pv.failed += 1;
            continue;
        };
        let in_sec: Vec<&Program> = obj.programs_in_section(section).collect();
        let err = errs.iter().find(|e| {
            e.section == section && matches!(&e.item, elf::Item::Program(n) if matches(n))
        });
        if in_sec.iter().any(|p| matches(&p.name)) {
            pv.loaded += 1;
        } else if let Some(e) = err {
            pv.failed += 1;
            println!("   prevail: {object} {section} {function}: we fail: {e}");
        } else {
            pv.missing += 1;
            println!("   prevail: {object} {section} {function}: not found");
        }
        let ours = in_sec.len()
            + errs
                .iter()
                .filter(|e| e.is_program() && e.section == section)
                .count();
        if in_section.parse::<usize>().ok() == Some(ours) {
            pv.count_ok += 1;
        }
    }
    println!("   PREVAIL: {pv:?}");
    pv
}

#[test]
fn cilium_ebpf_corpus() {
    let root = corpus_root();
    let (per_folder, loaded) = load_folder(&root, "cilium-ebpf", &LoadOptions::default());
    let total = print_report(
        "cilium-ebpf (little-endian objects; big-endian twins skipped)",
        &per_folder,
    );
    let inv = inventory(&root.join("cilium-ebpf/INVENTORY.tsv"));
    let (inv_ok, inv_total) = cross_check_inventory(&loaded, &inv, "cilium-ebpf");
    assert_eq!(total.objects, 102, "staged object count changed");
    assert_eq!(total.skipped_big_endian, 49);
    assert_eq!(total.objects_failed, 0, "whole-object failures");
    assert!(total.objects_full >= 33, "objects fully loaded regressed");
    assert!(total.programs_loaded >= 75, "programs loaded regressed");
    assert!(total.programs_failed <= 65, "program failures grew");
    assert_eq!(total.maps_failed, 0, "map definitions failed");
    assert_eq!(inv_total, 53);
    assert!(inv_ok >= 53, "INVENTORY agreement regressed");
}

#[test]
fn rbpf_examples() {
    let root = corpus_root();
    let (per_folder, loaded) = load_folder(&root, "rbpf", &LoadOptions::default());
    let total = print_report("rbpf examples", &per_folder);
    let inv = inventory(&root.join("rbpf/INVENTORY.tsv"));
    let (inv_ok, _) = cross_check_inventory(&loaded, &inv, "rbpf");
    assert_eq!(
        (total.objects_full, total.programs_loaded, inv_ok),
        (2, 2, 2)
    );
    let bytes = std::fs::read(root.join("rbpf/examples/load_elf__block_a_port.o"))
        .expect("rbpf example staged");
    let obj = elf::load_object(&bytes).expect("rbpf example loads");
    let p = obj.program(".classifier").expect(".classifier program");
    assert_eq!(p.prog_type, ProgType::SchedCls);
    assert_eq!(p.insns.len(), 25);
}

/// Small and medium objects covering legacy maps, BTF maps, global data, subprograms and
/// CO-RE, used as seeds for mutation.
fn fuzz_seeds() -> Vec<(String, Vec<u8>)> {
    let root = corpus_root();
    let mut seeds = Vec::new();
    for folder in ["ebpf-samples", "cilium-ebpf", "rbpf"] {
        for path in elf_files(&root.join(folder)) {
            let bytes = std::fs::read(&path).unwrap_or_default();
            if bytes.len() <= 48 * 1024 && !elf::is_big_endian(&bytes) {
                seeds.push((path.display().to_string(), bytes));
            }
        }
    }
    assert!(seeds.len() >= 50, "too few fuzz seeds ({})", seeds.len());
    seeds
}

fn check_mutant(bytes: &[u8], seed: &str) {
    let start = Instant::now();
    if let Ok((obj, _)) = elf::load_object_lenient(bytes) {
        for p in &obj.programs {
            check_program(p, &format!("mutant of {seed}: {}", p.name));
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "mutant of {seed} took {:?}",
        start.elapsed()
    );
}

proptest! {
    // ELF_FUZZ_CASES raises the case count for longer local runs.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("ELF_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Byte mutations (anywhere, or in the section table and symbol table at the end of the
    /// file, where clang puts them) and truncations never panic or hang, and whatever loads
    /// still satisfies the program invariants.
    #[test]
    fn mutated_objects_never_panic(
        seed_pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<bool>(), any::<prop::sample::Index>(), any::<u8>()), 1..12),
        truncate in prop::option::weighted(0.25, any::<prop::sample::Index>()),
    ) {
        thread_local! { static SEEDS: Vec<(String, Vec<u8>)> = fuzz_seeds(); }
        SEEDS.with(|seeds| {
            let (name, original) = &seeds[seed_pick.index(seeds.len())];
            let mut bytes = original.clone();
            let len = bytes.len();
            let tail = len.min(2048);
            for (in_tail, at, value) in &edits {
                let pos = if *in_tail { len - tail + at.index(tail) } else { at.index(len) };
                bytes[pos] = *value;
            }
            if let Some(t) = truncate {
                bytes.truncate(t.index(len));
            }
            check_mutant(&bytes, name);
        });
    }
}
