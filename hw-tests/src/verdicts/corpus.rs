//! Which objects the verdict table covers.
//!
//! - `ebpf-samples/**.o`: every object file of PREVAIL's corpus (the extension-less fuzzer
//!   files in `invalid/` are not objects a loader would be handed by name, and are left out).
//! - `cilium-ebpf/**`: every little-endian ELF file; the big-endian twins (`-eb.elf`,
//!   `_bpfeb.o`) describe the same programs for another byte order, which this kernel cannot
//!   load.

use std::path::{Path, PathBuf};

/// The corpus folders the table covers.
pub const FOLDERS: [&str; 2] = ["ebpf-samples", "cilium-ebpf"];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn is_little_endian_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 6];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head.starts_with(b"\x7fELF")
        && head[5] == 1
}

/// `(path relative to the corpus root, absolute path)` of every covered object, sorted.
pub fn corpus_objects(root: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for folder in FOLDERS {
        let mut files = Vec::new();
        walk(&root.join(folder), &mut files)?;
        for p in files {
            let keep = match folder {
                "ebpf-samples" => p.extension().is_some_and(|e| e == "o"),
                _ => is_little_endian_elf(&p),
            };
            if !keep {
                continue;
            }
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            out.push((rel, p));
        }
    }
    out.sort();
    Ok(out)
}

/// The running kernel's release (`uname -r`), for table headers.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
