//! The offload decision over real programs: every XDP and tc program of the ebpf-samples
//! and cilium/ebpf objects (little-endian) through `feasibility::check` with the default
//! NIC. Prints how many are offloadable and which walls the others hit (each category
//! counted once per program); run with `--nocapture` to see the table.
//!
//! Programs whose section names no type we model are checked when the section follows the
//! Cilium/OVS conventions for classifiers and their tail calls (`2/1`, `from-netdev`,
//! `tail-3`, `ingress`): as tc, or as XDP when the object is an XDP one (`bpf_xdp*.o`).
//! Other unknown sections (`fentry/...`, `struct_ops`, ...) are not network programs.

use std::collections::BTreeMap;
use std::time::Instant;

use nfp_backend::NicLimits;
use nfp_backend::feasibility::{self, category};
use vm_core::ProgType;

fn objects() -> Vec<std::path::PathBuf> {
    vm_core::corpus::elf_objects(&["ebpf-samples", "cilium-ebpf"])
}

#[test]
fn corpus_offload_decisions() {
    let started = Instant::now();
    let nic = NicLimits::default();
    let objects = objects();
    assert!(objects.len() > 100, "only {} objects found", objects.len());
    let (mut programs, mut offloadable, mut refused, mut conventional) =
        (0usize, 0usize, 0usize, 0usize);
    let mut histogram: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut examples: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut yes = Vec::new();
    for path in &objects {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        if vm_core::elf::is_big_endian(&bytes) {
            continue;
        }
        let Ok((obj, _)) = vm_core::elf::load_object_lenient(&bytes) else {
            continue;
        };
        let rel = path
            .strip_prefix(vm_core::corpus::root())
            .unwrap_or(path)
            .display()
            .to_string();
        for p in &obj.programs {
            let mut p = p.clone();
            match p.prog_type {
                ProgType::Xdp | ProgType::SchedCls => {}
                ProgType::Other(0) => {
                    let section = p.section.clone().unwrap_or_default();
                    match vm_core::corpus::conventional_prog_type(&section, &rel) {
                        Some(t) => {
                            p.prog_type = t;
                            conventional += 1;
                        }
                        None => continue,
                    }
                }
                _ => continue,
            }
            programs += 1;
            let f = feasibility::check(&p, &nic);
            if f.rejected.is_some() {
                refused += 1;
            }
            if f.offloadable() {
                offloadable += 1;
                yes.push(format!("{rel}:{}", p.name));
            }
            for c in f.categories() {
                *histogram.entry(c).or_default() += 1;
                examples.entry(c).or_insert_with(|| {
                    let r = f.reasons.iter().find(|r| r.category == c);
                    format!(
                        "{rel}:{} {}",
                        p.name,
                        r.map_or(String::new(), |r| r.to_string())
                    )
                });
            }
        }
    }
    println!(
        "corpus feasibility ({} objects, {:.1} s): programs {programs} (of which {conventional} by Cilium/OVS section convention), offloadable {offloadable}, not offloadable {}, verifier-rejected {refused}",
        objects.len(),
        started.elapsed().as_secs_f64(),
        programs - offloadable
    );
    println!("reason categories (programs hitting each):");
    let mut rows: Vec<_> = histogram.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (c, n) in rows {
        println!(
            "  {n:>4}  {c:<24} e.g. {}",
            examples.get(c).map_or("", String::as_str)
        );
    }
    println!("offloadable programs:");
    for y in &yes {
        println!("  {y}");
    }
    assert!(programs > 100, "only {programs} XDP/tc programs");
    assert!(offloadable >= 1, "no offloadable program in the corpus");
    assert!(
        histogram.keys().all(|c| category::ALL.contains(c)),
        "categories outside the published list: {histogram:?}"
    );
}
