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

/// A tiny offloadable XDP program (reads `data` and `data_end` from `xdp_md`): passes IPv4
/// frames and frames shorter than an Ethernet header (XDP_PASS), drops the rest (XDP_DROP),
/// so a run shows two verdicts.
#[allow(dead_code)] // not every suite simulates
pub const IPV4_ONLY: &str = "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r0, 2\nmov %r4, %r2\nadd %r4, 14\njgt %r4, %r3, out\nldxh %r5, [%r2+12]\njeq %r5, 0x0008, out\nmov %r0, 1\nout:\nexit\n";
