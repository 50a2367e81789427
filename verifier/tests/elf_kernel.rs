//! Real programs (the ebpf-samples, cilium/ebpf and rbpf objects in the shared corpus)
//! through our verifier and the running kernel: verdicts must agree. Programs whose section
//! names no type we model (Cilium's `2/1`, `from-netdev`, ...) are tc classifiers and are
//! verified as such, by both. Programs whose maps the kernel cannot create (map-in-map
//! without an inner map, for instance) are skipped and counted.
//!
//! Also prints our processed-instruction counts next to the kernel's for the largest
//! programs: a measure of how well our pruning keeps up.

use std::time::{Duration, Instant};

use hw_tests::kernel::{LoadOptions, VmLoadError, kernel_or_skip, load_vm_program};
use verifier::{VerifyOptions, verify};
use vm_core::ProgType;

/// Verdict agreements required (ratchet).
const MIN_AGREE: usize = 374;

fn objects() -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for dir in ["ebpf-samples", "cilium-ebpf", "rbpf"] {
        let root = vm_core::corpus::require(dir);
        let mut stack = vec![root];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if name.ends_with(".o") || name.ends_with("-el.elf") {
                        out.push(p);
                    }
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn real_programs_agree_with_the_kernel() {
    if !kernel_or_skip("real_programs_agree_with_the_kernel") {
        return;
    }
    let (mut agree, mut total, mut skipped) = (0, 0, 0);
    let mut ours_time = Duration::ZERO;
    let mut counts: Vec<(u64, u64, String)> = Vec::new();
    let mut disagreements = Vec::new();
    for path in objects() {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok((obj, _)) = vm_core::elf::load_object_lenient(&bytes) else {
            continue;
        };
        for p in &obj.programs {
            let mut p = p.clone();
            if matches!(p.prog_type, ProgType::Other(_)) {
                p.prog_type = ProgType::SchedCls;
            }
            let opts = LoadOptions {
                license: obj.license.clone().unwrap_or_else(|| "GPL".to_string()),
                // As libbpf does, and as our verifier assumes of read-only maps with contents.
                freeze_rodata: true,
                ..LoadOptions::default()
            };
            let kernel = match load_vm_program(&p, &opts) {
                Ok(l) => Ok(l.prog.stats.insns_processed.unwrap_or(0)),
                Err(VmLoadError::Load(e)) => Err(e),
                Err(_) => {
                    skipped += 1;
                    continue;
                }
            };
            let t0 = Instant::now();
            let ours = verify(&p, &VerifyOptions::default());
            ours_time += t0.elapsed();
            total += 1;
            let name = format!("{} {}", path.display(), p.name);
            if ours.is_ok() == kernel.is_ok() {
                agree += 1;
            } else {
                let o = match &ours {
                    Ok(_) => "accept".to_string(),
                    Err(r) => r.error.to_string(),
                };
                let k = match &kernel {
                    Ok(_) => "accept".to_string(),
                    Err(e) => format!("{} {:?}", e.errno, e.first_error_line),
                };
                disagreements.push(format!("  {name}: ours {o} / kernel {k}"));
            }
            if let (Ok(v), Ok(k)) = (&ours, &kernel) {
                counts.push((v.processed_insns, *k, name));
            }
        }
    }
    for d in &disagreements {
        println!("{d}");
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.0));
    println!("largest walks (ours / kernel processed insns):");
    for (o, k, n) in counts.iter().take(10) {
        println!("  {o:8} / {k:8}  {n}");
    }
    let (o_sum, k_sum): (u64, u64) = counts.iter().fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
    println!(
        "ELF vs kernel: verdict agreement {agree}/{total} ({skipped} skipped: maps the kernel cannot create); processed insns over accepted programs: ours {o_sum}, kernel {k_sum}; our verification time {ours_time:?}"
    );
    assert!(
        agree >= MIN_AGREE,
        "agreement dropped: {agree} < {MIN_AGREE}"
    );
}
