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
