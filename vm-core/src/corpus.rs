//! Where the shared third-party corpus lives: `../shared/corpus` beside the repository root.
//!
//! Tests in every crate find it through here, so a checkout anywhere (CI clones elsewhere)
//! works. `OFFLOAD_CORPUS` overrides the location. A test that cannot find the corpus must
//! fail, never skip: use [`require`].

use std::path::PathBuf;

/// The corpus root (it may not exist; see [`require`]).
pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("OFFLOAD_CORPUS") {
        return PathBuf::from(dir);
    }
    // vm-core sits one level below the repository root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

/// A path inside the corpus, panicking with a clear message when it is missing (tests only).
pub fn require(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(
        p.exists(),
        "corpus path {} is missing: the shared corpus must sit beside the repository root (or set OFFLOAD_CORPUS)",
        p.display()
    );
    p
}

/// Every ELF object (`*.o`, and cilium/ebpf's `*-el.elf` little-endian test files) below the
/// corpus folders `dirs`, recursively, sorted. Panics like [`require`] when a folder is
/// missing. Big-endian objects are included; callers skip them (`elf::is_big_endian`).
pub fn elf_objects(dirs: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in dirs {
        let mut stack = vec![require(dir)];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if p.is_dir() {
                    stack.push(p);
                } else if name.ends_with(".o") || name.ends_with("-el.elf") {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

/// The program type a section named by Cilium's or OVS's conventions stands for: numeric
/// tail-call slots (`2/1`) are XDP in objects whose path mentions `xdp` and tc otherwise;
/// `from-*`, `to-*`, `tail-*`, `ingress` and `egress` are tc. `None` for other names (the
/// ELF loader already typed the standard ones).
pub fn conventional_prog_type(section: &str, path: &str) -> Option<crate::ProgType> {
    let head = section.split('/').next().unwrap_or(section);
    let numeric = !head.is_empty() && head.chars().all(|c| c.is_ascii_digit());
    let tc_named = ["from-", "to-", "tail-"]
        .iter()
        .any(|p| head.starts_with(p))
        || matches!(head, "ingress" | "egress");
    if numeric && path.contains("xdp") {
        Some(crate::ProgType::Xdp)
    } else if numeric || tc_named {
        Some(crate::ProgType::SchedCls)
    } else {
        None
    }
}
