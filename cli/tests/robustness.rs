//! Bad and extreme input found by fuzzing the built binary: each case once panicked, aborted,
//! hung or was silently accepted. Every one must now be bad input (exit 2) with a one-line
//! reason on stderr, never a panic.

use std::path::PathBuf;

mod common;
use common::{IPV4_ONLY, offload};

fn tmp(name: &str) -> PathBuf {
    common::scratch("robustness", name)
}

/// The program, in a file of the calling test's own (the tests run in parallel; a shared
/// file could be read while another test rewrites it).
fn prog() -> PathBuf {
    let p = tmp(&format!("ipv4-{:?}.s", std::thread::current().id()));
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
    let report_dir = tmp("rep");
    let report_dir = report_dir.to_str().expect("utf-8");
    for (cmd, nic, needle) in [
        // Used to run out of memory or time out.
        ("sim", &["--cores", "4294967295"][..], "at most 1024"),
        ("sim", &["--cores", "100000"], "at most 1024"),
        (
            "report",
            &["--nic", "custom:islands=100000", "-o", report_dir],
            "at most 1024",
        ),
        // Used to wrap to a nonsense ME count and report success.
        (
            "sim",
            &["--nic", "custom:islands=65536,mes=65536"],
            "at most 1024",
        ),
        // Firmware cycles that overflowed the cycle sums.
        (
            "sim",
            &["--nic", "custom:fw=18446744073709551615"],
            "firmware cycles",
        ),
        ("sim", &["--nic", "custom:mes=2,mes=3"], "given twice"),
    ] {
        let mut args = vec![cmd, p, "--traffic", "packets=5"];
        args.extend_from_slice(nic);
        bad_input(&args, needle);
    }
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

/// A 64-byte Ethernet/IPv4 frame.
fn ethernet_frame() -> Vec<u8> {
    [[0xff; 6], [2; 6]]
        .concat()
        .into_iter()
        .chain([8, 0])
        .chain([0; 50])
        .collect()
}

/// A little-endian pcap of `frames` with link type `linktype`.
fn pcap(linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, linktype] {
        out.extend(v.to_le_bytes());
    }
    for f in frames {
        for v in [0u32, 0, f.len() as u32, f.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        out.extend(f);
    }
    out
}

/// One little-endian pcapng block: type, total length, body (padded to 4), total length.
fn ng_block(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    body.resize(body.len().div_ceil(4) * 4, 0);
    let len = (body.len() + 12) as u32;
    let mut out = Vec::new();
    out.extend(kind.to_le_bytes());
    out.extend(len.to_le_bytes());
    out.extend(body);
    out.extend(len.to_le_bytes());
    out
}

/// A pcapng: one interface of `linktype` named `name`, one enhanced packet on interface
/// `packet_if`.
fn pcapng(linktype: u16, name: &str, packet_if: u32) -> Vec<u8> {
    let mut shb = vec![];
    shb.extend(0x1a2b_3c4du32.to_le_bytes());
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes());
    let mut idb = vec![];
    idb.extend(linktype.to_le_bytes());
    idb.extend(0u16.to_le_bytes());
    idb.extend(65535u32.to_le_bytes());
    idb.extend(2u16.to_le_bytes()); // if_name
    idb.extend((name.len() as u16).to_le_bytes());
    idb.extend(name.as_bytes());
    idb.resize(idb.len().div_ceil(4) * 4, 0);
    idb.extend([0; 4]); // opt_endofopt
    let frame = ethernet_frame();
    let mut epb = vec![];
    for v in [packet_if, 0, 0, frame.len() as u32, frame.len() as u32] {
        epb.extend(v.to_le_bytes());
    }
    epb.extend(&frame);
    [
        ng_block(0x0a0d_0d0a, &shb),
        ng_block(1, &idb),
        ng_block(6, &epb),
    ]
    .concat()
}

/// LINKTYPE_RAW and Linux cooked captures used to be read as Ethernet without a word; a
/// packet on an undescribed pcapng interface too.
#[test]
fn captures_that_are_not_ethernet_are_bad_input() {
    let p = prog();
    let p = p.to_str().expect("utf-8");
    let raw = tmp("raw.pcap");
    std::fs::write(&raw, pcap(101, &[ethernet_frame()])).expect("write");
    let raw = raw.to_str().expect("utf-8");
    let needle = "link type 101 (LINKTYPE_RAW) is not Ethernet";
    bad_input(&["sim", p, "--pcap", raw], needle);
    bad_input(&["sim", p, "--pcap", raw, "--json"], needle);
    bad_input(&["diff", p, "--pcap", raw, "--against", "sim"], needle);
    bad_input(
        &[
            "report",
            p,
            "--pcap",
            raw,
            "-o",
            tmp("rep-raw").to_str().expect("utf-8"),
        ],
        needle,
    );
    let sll2 = tmp("sll2.pcap");
    std::fs::write(&sll2, pcap(276, &[ethernet_frame()])).expect("write");
    bad_input(
        &["sim", p, "--pcap", sll2.to_str().expect("utf-8")],
        "link type 276 (LINKTYPE_LINUX_SLL2)",
    );
    let sll = tmp("sll.pcapng");
    std::fs::write(&sll, pcapng(113, "any", 0)).expect("write");
    bad_input(
        &["sim", p, "--pcap", sll.to_str().expect("utf-8")],
        "frame 0 (block 2), interface 0 (`any`): link type 113 (LINKTYPE_LINUX_SLL)",
    );
    let undescribed = tmp("undescribed.pcapng");
    std::fs::write(&undescribed, pcapng(1, "eth0", 2)).expect("write");
    bad_input(
        &[
            "diff",
            p,
            "--pcap",
            undescribed.to_str().expect("utf-8"),
            "--against",
            "sim",
        ],
        "frame 0 (block 2): the packet names interface 2",
    );
    // Ethernet captures, pcap and pcapng, still read.
    for (name, bytes) in [
        ("eth.pcap", pcap(1, &[ethernet_frame()])),
        ("eth.pcapng", pcapng(1, "eth0", 0)),
    ] {
        let f = tmp(name);
        std::fs::write(&f, bytes).expect("write");
        let (code, out, err) = offload(&["sim", p, "--pcap", f.to_str().expect("utf-8")]);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(out.contains(": 1 frames on"), "{name}: {out}");
    }
}

/// `--against ""` and `--against ,` used to compare the interpreter with itself and exit 0.
#[test]
fn empty_or_unknown_engine_lists_are_bad_input() {
    let p = prog();
    let p = p.to_str().expect("utf-8");
    for list in ["", ",", " , ", "sim,", "bogus", "sim,bogus"] {
        bad_input(&["diff", p, "--against", list], "interp, sim, kernel");
    }
    let (code, out, err) = offload(&["diff", p, "--against", "sim,interp,sim", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["engines"], serde_json::json!(["interp", "sim"]));
}

/// An empty capture is valid (exit 0) but used to give `0 inputs` and no word: a warning
/// on stderr, with stdout (and its JSON) unchanged.
#[test]
fn empty_captures_warn_on_stderr() {
    let p = prog();
    let p = p.to_str().expect("utf-8");
    let empty = tmp("empty.pcap");
    std::fs::write(&empty, pcap(1, &[])).expect("write");
    let e = empty.to_str().expect("utf-8");
    let warning = format!("warning: {e}: the capture holds no frames");
    for args in [
        vec!["sim", p, "--pcap", e],
        vec!["sim", p, "--pcap", e, "--json"],
        vec!["diff", p, "--pcap", e, "--against", "sim"],
        vec!["diff", p, "--pcap", e, "--against", "sim", "--json"],
    ] {
        let (code, out, err) = offload(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(err.contains(&warning), "{args:?}: {err}");
        if args.contains(&"--json") {
            let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
            assert_eq!(v["schema"], 1);
            let n = if args[0] == "sim" {
                &v["packets"]
            } else {
                &v["inputs"]
            };
            assert_eq!(*n, 0, "{out}");
        }
    }
    // A capture with frames gives no warning.
    let one = tmp("one.pcap");
    std::fs::write(&one, pcap(1, &[ethernet_frame()])).expect("write");
    let (code, _, err) = offload(&["sim", p, "--pcap", one.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
}

/// `compile --nic` used to take only `agilio-cx`, while `sim` and `report` also take
/// `nfp-4000`, `agilio-cx-40` and `custom:...`.
#[test]
fn compile_takes_the_nic_presets_sim_takes() {
    let p = prog();
    let p = p.to_str().expect("utf-8");
    for (nic, name) in [
        ("agilio-cx", "agilio-cx"),
        ("nfp-4000", "agilio-cx"),
        ("agilio-cx-40", "agilio-cx-40"),
        ("custom:mes=2", "custom:islands=5,mes=2"),
    ] {
        let (code, out, err) = offload(&["compile", p, "--nic", nic, "--json"]);
        assert_eq!(code, 0, "{nic}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["offloadable"], true, "{nic}: {out}");
        let got = v["nic"].as_str().expect("nic");
        assert!(got.starts_with(name), "{nic}: {got}");
        let (code, _, err) = offload(&["sim", p, "--nic", nic, "--traffic", "packets=5"]);
        assert_eq!(code, 0, "sim --nic {nic}: {err}");
    }
    for cmd in ["compile", "sim"] {
        let mut args = vec![cmd, p, "--nic", "bogus"];
        if cmd == "sim" {
            args.extend(["--traffic", "packets=5"]);
        }
        bad_input(&args, "agilio-cx, nfp-4000, agilio-cx-40, or custom:");
    }
    bad_input(
        &["compile", p, "--nic", "custom:islands=100000"],
        "at most 1024",
    );
}

/// `--section` on a program that is not an ELF object used to be ignored.
#[test]
fn section_on_a_non_elf_program_is_bad_input() {
    let s = prog();
    let s = s.to_str().expect("utf-8");
    let raw = tmp("exit.bin");
    // mov r0, 0; exit
    std::fs::write(
        &raw,
        [0xb7u8, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0],
    )
    .expect("write");
    let raw = raw.to_str().expect("utf-8");
    let data = "/work/shared/corpus/bpf_conformance/tests/add.data";
    assert!(
        std::path::Path::new(data).exists(),
        "corpus file {data} missing"
    );
    let needle = "--section only applies to ELF objects";
    for file in [s, raw, data] {
        for cmd in ["run", "verify", "compile", "disasm"] {
            bad_input(&[cmd, file, "--section", "xdp"], needle);
        }
    }
    bad_input(&["asm", s, "--section", "xdp"], needle);
    bad_input(
        &["sim", s, "--section", "xdp", "--traffic", "packets=5"],
        needle,
    );
    bad_input(&["diff", s, "--section", "xdp", "--against", "sim"], needle);
    // ELF objects still take it.
    let elf = "/work/shared/corpus/ebpf-samples/linux/xdp1_kern.o";
    let (code, _, err) = offload(&["verify", elf, "--section", "xdp1"]);
    assert_eq!(code, 0, "{err}");
}

/// `demo` runs its built-in program: `--section` and `--type` used to be silently ignored.
#[test]
fn demo_refuses_program_options() {
    for args in [["demo", "--section", "xdp"], ["demo", "--type", "xdp"]] {
        let (code, stdout, stderr) = offload(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(stderr.contains("do not apply"), "{args:?}: {stderr}");
    }
    let (code, _, stderr) = offload(&["demo", "--json"]);
    assert_eq!(code, 0, "{stderr}");
}
