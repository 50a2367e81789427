//! Our processed-instruction count next to the kernel's for every accepted corpus program,
//! one line each (`ours kernel diff object function`), smallest programs first, so a
//! diverging walk can be picked small enough to diagnose by hand.
//!
//! ```text
//! cargo run --release -p verifier --example processed_table
//! ```
//!
//! Loads programs the way `tests/elf_kernel.rs` does (root, live kernel).

use std::process::ExitCode;

use hw_tests::kernel::{LoadOptions, load_vm_program};
use verifier::{VerifyOptions, verify};
use vm_core::ProgType;

fn objects() -> Vec<std::path::PathBuf> {
    vm_core::corpus::elf_objects(&["ebpf-samples", "cilium-ebpf", "rbpf"])
}

fn main() -> ExitCode {
    let root = vm_core::corpus::root();
    let mut rows = Vec::new();
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
                freeze_rodata: true,
                ..LoadOptions::default()
            };
            let Ok(k) = load_vm_program(&p, &opts) else {
                continue;
            };
            let Ok(v) = verify(&p, &VerifyOptions::default()) else {
                continue;
            };
            let k = k.prog.stats.insns_processed.unwrap_or(0);
            let rel = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            rows.push((v.processed_insns, k, p.insns.len(), rel, p.name.clone()));
        }
    }
    rows.sort_by_key(|r| (r.2, r.3.clone(), r.4.clone()));
    let (mut o_sum, mut k_sum, mut differ) = (0u64, 0u64, 0usize);
    for (o, k, n, obj, f) in &rows {
        o_sum += o;
        k_sum += k;
        if o != k {
            differ += 1;
        }
        let d = *o as i64 - *k as i64;
        println!("{o}\t{k}\t{d}\t{n}\t{obj}\t{f}");
    }
    println!(
        "# {} programs, {differ} differ; ours {o_sum}, kernel {k_sum}",
        rows.len()
    );
    ExitCode::SUCCESS
}
