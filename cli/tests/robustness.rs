//! Bad and extreme input found by fuzzing the built binary: each case once panicked, aborted,
//! hung or was silently accepted. Every one must now be bad input (exit 2) with a one-line
//! reason on stderr, never a panic.

use std::{path::PathBuf, process::Command};

fn offload(args: &[&str]) -> (i32, String, String) {
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

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("offload-robustness-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// A map-free XDP filter: pass IPv4, drop everything else (offloadable).
const IPV4_ONLY: &str = "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r0, 2\nmov %r4, %r2\nadd %r4, 14\njgt %r4, %r3, out\nldxh %r5, [%r2+12]\njeq %r5, 0x0008, out\nmov %r0, 1\nout:\nexit\n";

fn prog() -> PathBuf {
    let p = tmp("ipv4.s");
    std::fs::write(&p, IPV4_ONLY).expect("write");
    p
}

fn bad_input(args: &[&str], needle: &str) {
    let (code, _, err) = offload(args);
    assert_eq!(code, 2, "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected `{needle}` in: {err}"
    );
}

#[test]
fn oversized_nics_are_bad_input_not_a_hang() {
    let p = prog();
    let p = p.to_str().expect("utf-8");
    // Used to run out of memory or time out.
    bad_input(
        &["sim", p, "--traffic", "packets=5", "--cores", "4294967295"],
        "at most 1024",
    );
    bad_input(
        &["sim", p, "--traffic", "packets=5", "--cores", "100000"],
        "at most 1024",
    );
    // Used to wrap to a nonsense ME count and report success.
    bad_input(
        &[
            "sim",
            p,
            "--traffic",
            "packets=5",
            "--nic",
            "custom:islands=65536,mes=65536",
        ],
        "at most 1024",
    );
    bad_input(
        &[
            "report",
            p,
            "--traffic",
            "packets=5",
            "--nic",
            "custom:islands=100000",
            "-o",
            tmp("rep").to_str().expect("utf-8"),
        ],
        "at most 1024",
    );
    // Firmware cycles that overflowed the cycle sums.
    bad_input(
        &[
            "sim",
            p,
            "--traffic",
            "packets=5",
            "--nic",
            "custom:fw=18446744073709551615",
        ],
        "firmware cycles",
    );
    bad_input(
        &[
            "sim",
            p,
            "--traffic",
            "packets=5",
            "--nic",
            "custom:mes=2,mes=3",
        ],
        "given twice",
    );
}

#[test]
fn traffic_specs_that_cannot_be_built_are_bad_input() {
    let p = prog();
    let p = p.to_str().expect("utf-8");
    // Used to abort on a 111 GB allocation.
    bad_input(
        &["sim", p, "--traffic", "flows=4294967295,packets=5"],
        "flows=4294967295",
    );
    bad_input(
        &["sim", p, "--traffic", "packets=10,packets=20"],
        "`packets` given twice",
    );
}

#[test]
fn diff_reads_captures_as_sim_does_and_refuses_zero_random_inputs() {
    let p = prog();
    let p = p.to_str().expect("utf-8");
    bad_input(
        &["diff", p, "--random", "0", "--against", "sim"],
        "--random",
    );
    // A pcap whose record is longer than the header's snaplen: `sim` takes it, so must `diff`.
    let frame: Vec<u8> = [[0xff; 6], [2; 6]]
        .concat()
        .into_iter()
        .chain([8, 0])
        .chain([0; 50])
        .collect();
    let mut pcap = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 16, 1] {
        pcap.extend(v.to_le_bytes());
    }
    for v in [0u32, 0, frame.len() as u32, frame.len() as u32] {
        pcap.extend(v.to_le_bytes());
    }
    pcap.extend(&frame);
    let f = tmp("snaplen16.pcap");
    std::fs::write(&f, &pcap).expect("write");
    let f = f.to_str().expect("utf-8");
    let (code, _, err) = offload(&["sim", p, "--pcap", f]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = offload(&["diff", p, "--pcap", f, "--against", "sim"]);
    assert_eq!(code, 0, "{err}");
    // A truncated record: the same frame and byte offset as `sim` gives.
    let cut = tmp("cut.pcap");
    std::fs::write(&cut, &pcap[..pcap.len() - 5]).expect("write");
    bad_input(
        &[
            "diff",
            p,
            "--pcap",
            cut.to_str().expect("utf-8"),
            "--against",
            "sim",
        ],
        "frame 0 (byte offset 24)",
    );
}
