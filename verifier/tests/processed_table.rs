//! Our processed-instruction count for every corpus program the kernel accepted, against
//! the count the kernel reported when the verdict table was made
//! (`hw-tests/fixtures/kernel_verdicts.linux-6.18.tsv`, Linux 6.18, log level 5).
//!
//! The count is how much of the program the walk visited: equal counts mean our pruning,
//! precision tracking and state storing made the same decisions as the kernel's on real
//! programs (the complexity limit, 1M instructions, is checked against this count, so a
//! program the kernel refuses as too complex must be too complex for us as well). No kernel
//! is needed: the table is the oracle. Programs are loaded as `examples/verify_diff.rs`
//! loads them (the table's program type).

use verifier::{VerifyOptions, verify};
use vm_core::ProgType;

const TSV: &str = include_str!("../../hw-tests/fixtures/kernel_verdicts.linux-6.18.tsv");

/// Programs that must be found and compared (ratchet against a loader that silently finds
/// fewer).
const MIN_COMPARED: usize = 300;

/// Programs whose count still differs (Linux 6.18 walks them differently for reasons not
/// yet found; all cilium objects the kernel oracle test cannot load). A ratchet: one that
/// starts matching must leave the list, one not listed must match.
const KNOWN_DIFFERENT: &[(&str, &str)] = &[
    ("ebpf-samples/cilium-core/bpf_host.o", "cil_to_netdev"),
    (
        "ebpf-samples/cilium-core/bpf_lxc.o",
        "tail_ipv4_ct_ingress_policy_only",
    ),
    ("ebpf-samples/cilium-core/bpf_lxc.o", "tail_ipv4_ct_ingress"),
];

/// Program types our verifier models; the table also holds kprobes, cgroup programs, ...
const MODELLED: [&str; 3] = ["xdp", "socket_filter", "sched_cls"];

#[test]
fn processed_counts_match_the_verdict_table() {
    vm_core::corpus::require("ebpf-samples");
    let root = vm_core::corpus::root();
    let mut objects: std::collections::HashMap<String, Option<vm_core::elf::Object>> =
        std::collections::HashMap::new();
    let (mut compared, mut skipped) = (0usize, 0usize);
    let (mut ours_sum, mut kernel_sum) = (0u64, 0u64);
    let mut diffs = Vec::new();
    let mut still = 0usize;
    for line in TSV.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        // Only the program types this verifier models.
        if f.len() < 11 || f[6] != "accepted" || !MODELLED.contains(&f[3]) {
            continue;
        }
        let Ok(kernel) = f[9].parse::<u64>() else {
            continue;
        };
        let obj = objects.entry(f[0].to_string()).or_insert_with(|| {
            let bytes = std::fs::read(root.join(f[0])).ok()?;
            vm_core::elf::load_object_lenient(&bytes)
                .ok()
                .map(|(o, _)| o)
        });
        let Some(p) = obj.as_ref().and_then(|o| {
            o.programs
                .iter()
                .find(|p| p.name == f[2] && p.section.as_deref() == Some(f[1]))
        }) else {
            skipped += 1;
            continue;
        };
        let mut p = p.clone();
        p.prog_type = match f[3] {
            "xdp" => ProgType::Xdp,
            "socket_filter" => ProgType::SocketFilter,
            _ => ProgType::SchedCls,
        };
        let ours = match verify(&p, &VerifyOptions::default()) {
            Ok(v) => v.processed_insns,
            Err(r) => {
                diffs.push(format!("  {} {}: we reject ({})", f[0], f[2], r.error));
                continue;
            }
        };
        compared += 1;
        ours_sum += ours;
        kernel_sum += kernel;
        let known = KNOWN_DIFFERENT.contains(&(f[0], f[2]));
        if ours != kernel && !known {
            diffs.push(format!("  {} {}: ours {ours}, kernel {kernel}", f[0], f[2]));
        } else if ours == kernel && known {
            diffs.push(format!(
                "  {} {}: matches now (ours {ours}): remove it from KNOWN_DIFFERENT",
                f[0], f[2]
            ));
        } else if known {
            still += 1;
        }
    }
    println!(
        "processed counts: {compared} programs compared ({skipped} not found), ours {ours_sum}, kernel {kernel_sum}; {still} known to differ, {} unexpected",
        diffs.len()
    );
    assert!(
        diffs.is_empty(),
        "processed counts against the table:\n{}",
        diffs.join("\n")
    );
    assert!(
        compared >= MIN_COMPARED,
        "only {compared} programs compared"
    );
}
