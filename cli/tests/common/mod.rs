//! What every CLI test suite needs: running the built `offload` binary, and a scratch
//! directory per suite and process.

use std::{path::PathBuf, process::Command};

/// Runs the built binary with `args`: (exit code, stdout, stderr); -1 when killed by a signal.
pub fn offload(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_offload"))
        .args(args)
        .output()
        .expect("run offload");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `name` in this suite's scratch directory (created on first use).
#[allow(dead_code)] // not every suite writes files
pub fn scratch(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("offload-{suite}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}
