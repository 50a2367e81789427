//! The binding parts of `shared/design/cli-contract.md`, checked on the built binary.

use std::path::PathBuf;

use serde_json::Value;

mod common;
use common::{IPV4_ONLY, offload};

fn tmp(name: &str) -> PathBuf {
    common::scratch("contract", name)
}

fn json(stdout: &str) -> Value {
    let v: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    assert_eq!(v["schema"], 1, "schema field");
    v
}

#[test]
fn asm_of_disasm_gives_identical_bytes_for_every_conformance_test() {
    let dir = vm_core::corpus::require("bpf_conformance/tests");
    let mut n = 0;
    for entry in std::fs::read_dir(dir)
        .expect("list tests")
        .flatten()
        .take(40)
    {
        let path = entry.path();
        let p = path.to_str().expect("utf-8 path");
        // .data files are not assembly: disassemble them first, then assemble the text.
        let (code, text, err) = offload(&["disasm", p]);
        assert_eq!(code, 0, "{p}: {err}");
        let s = tmp("round.s");
        std::fs::write(&s, &text).expect("write");
        let (code, out1, err) = offload(&["asm", "--json", s.to_str().expect("utf-8")]);
        assert_eq!(code, 0, "{p}: {err}");
        let b = tmp("round.bin");
        std::fs::write(
            &b,
            hex::decode(json(&out1)["hex"].as_str().expect("hex")).expect("hex"),
        )
        .expect("write");
        let (_, text2, _) = offload(&["disasm", b.to_str().expect("utf-8")]);
        assert_eq!(text, text2, "{p}");
        n += 1;
    }
    assert!(n >= 40);
}

#[test]
fn run_json_has_the_contract_fields() {
    let data = vm_core::corpus::require("bpf_conformance/tests/alu-arith.data");
    let (code, out, err) = offload(&["run", data.to_str().expect("utf-8"), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["retval"], 0x2a);
    for field in ["packet", "insns", "maps", "error"] {
        assert!(v.get(field).is_some(), "missing {field}: {out}");
    }
    let (code, out, _) = offload(&[
        "--json",
        "run",
        data.to_str().expect("utf-8"),
        "--repeat",
        "10",
    ]);
    assert_eq!(code, 0);
    assert!(json(&out)["ns_per_run"].is_f64());
}

#[test]
fn xdp_default_packet_is_64_zero_bytes() {
    let s = tmp("pass.s");
    std::fs::write(&s, "mov %r0, 2\nexit\n").expect("write");
    let (code, out, _) = offload(&["run", s.to_str().expect("utf-8"), "--json"]);
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!(v["retval"], 2);
    assert_eq!(v["packet"].as_str().map(str::len), Some(128));
}

#[test]
fn faults_exit_1_with_the_pc() {
    let s = tmp("fault.s");
    std::fs::write(&s, "mov %r0, 0\nldxw %r0, [%r0+0]\nexit\n").expect("write");
    let (code, out, _) = offload(&["run", s.to_str().expect("utf-8"), "--json"]);
    assert_eq!(code, 1);
    let err = json(&out)["error"]
        .as_str()
        .expect("error string")
        .to_string();
    assert!(err.contains("insn 1"), "{err}");
    let budget = tmp("loop.s");
    std::fs::write(&budget, "l:\nja l\nexit\n").expect("write");
    let (code, _, _) = offload(&["run", budget.to_str().expect("utf-8"), "--budget", "1000"]);
    assert_eq!(code, 1, "budget exhaustion is a fault");
}

#[test]
fn bad_input_exits_2_naming_the_location() {
    let s = tmp("bad.s");
    std::fs::write(&s, "mov %r0, 1\nfrobnicate %r1\n").expect("write");
    let (code, _, err) = offload(&["asm", s.to_str().expect("utf-8")]);
    assert_eq!(code, 2);
    assert!(err.contains("line 2"), "{err}");
    let raw = tmp("bad.bin");
    std::fs::write(&raw, [0xffu8, 0, 0, 0, 0, 0, 0, 0]).expect("write");
    for cmd in ["run", "disasm"] {
        let (code, _, err) = offload(&[cmd, raw.to_str().expect("utf-8")]);
        assert_eq!(code, 2, "{cmd}");
        assert!(err.contains("instruction 0"), "{err}");
    }
    let (code, _, err) = offload(&["run", "/nonexistent/prog.o"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/prog.o"));
    let elf = tmp("bad.o");
    std::fs::write(&elf, b"\x7fELF\x02\x01\x01").expect("write");
    let (code, _, _) = offload(&["run", elf.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "truncated ELF is bad input, never a panic");
}

#[test]
fn elf_with_several_programs_needs_a_section() {
    let obj = vm_core::corpus::require("ebpf-samples/linux/sockex3_kern.o");
    let (code, _, err) = offload(&["run", obj.to_str().expect("utf-8")]);
    assert_eq!(code, 2);
    assert!(err.contains("--section"), "{err}");
}

#[test]
fn demo_runs_and_reports_json() {
    let (code, out, err) = offload(&["demo", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    let packets = v["packets"].as_array().expect("packets");
    assert!(packets.iter().any(|p| p["verdict"] == "XDP_DROP"));
    assert!(packets.iter().any(|p| p["verdict"] == "XDP_PASS"));
    let (code, out, _) = offload(&["demo"]);
    assert_eq!(code, 0);
    assert!(out.contains("XDP_DROP"));
}

#[test]
fn verify_accepts_and_rejects_with_the_contract_fields_and_exit_codes() {
    let ok = tmp("verify-ok.s");
    std::fs::write(
        &ok,
        "ldxw %r2, [%r1+0]\nmov32 %r2, %r2\nadd32 %r2, 1\nmov %r3, %r2\nmov %r0, 2\nexit\n",
    )
    .expect("write");
    let (code, stdout, err) = offload(&["verify", "--json", ok.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    let v = json(&stdout);
    assert_eq!(v["accepted"], true);
    for field in [
        "error",
        "pc",
        "errno",
        "processed_insns",
        "zext",
        "stack_depth",
        "verify_ns",
    ] {
        assert!(v.get(field).is_some(), "missing {field}: {stdout}");
    }
    assert_eq!(
        v["zext"],
        serde_json::json!([2]),
        "add32 is read as 64 bits by the mov: {stdout}"
    );

    let bad = tmp("verify-bad.s");
    std::fs::write(&bad, "mov %r0, 1\nldxw %r0, [%r1+100]\nexit\n").expect("write");
    let (code, stdout, _) = offload(&["verify", "--json", bad.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{stdout}");
    let v = json(&stdout);
    assert_eq!(v["accepted"], false);
    assert_eq!(v["pc"], 1);
    assert_eq!(v["errno"], "EACCES");

    // A bad encoding is a rejection with a pc (exit 1), not bad input.
    let raw = tmp("verify-bad.bin");
    let mut bytes = vec![0xb7, 0, 0, 0, 0, 0, 0, 0];
    bytes.extend([0xff, 0, 0, 0, 0, 0, 0, 0]);
    bytes.extend([0x95, 0, 0, 0, 0, 0, 0, 0]);
    std::fs::write(&raw, bytes).expect("write");
    let (code, stdout, _) = offload(&["verify", "--json", raw.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{stdout}");
    let v = json(&stdout);
    assert_eq!(v["accepted"], false);
    assert_eq!(v["pc"], 1, "{stdout}");
    assert_eq!(v["errno"], "EINVAL");

    // Human output carries the kernel's summary line.
    let (code, stdout, _) = offload(&["verify", ok.to_str().expect("utf-8")]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("processed 6 insns (limit 1000000)"),
        "{stdout}"
    );
}

#[test]
fn compile_reports_offloadable_or_every_reason() {
    let ok = tmp("compile-ok.s");
    std::fs::write(
        &ok,
        "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 14\njgt %r4, %r3, +3\nldxb %r5, [%r2+12]\nmov32 %r0, 2\nexit\nmov %r0, 1\nexit\n",
    )
    .expect("write");
    let (code, stdout, err) = offload(&["compile", "--json", ok.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    let v = json(&stdout);
    assert_eq!(v["offloadable"], true);
    for field in [
        "reasons",
        "ebpf_insns",
        "nfp_insns",
        "zext_elided",
        "zext_kept",
        "estimated_cycles",
    ] {
        assert!(v.get(field).is_some(), "missing {field}: {stdout}");
    }
    assert_eq!(v["ebpf_insns"], 10);
    assert!(v["estimated_cycles"]["min"].as_u64() <= v["estimated_cycles"]["max"].as_u64());

    // Two independent reasons in one program: both are reported, each with its pc.
    let bad = tmp("compile-bad.s");
    std::fs::write(&bad, "mov %r0, 7\nmod %r0, 3\nstdw [%r10-8], 1\nldxdw %r1, [%r10-8]\nsdiv %r0, 2\nmov %r0, 2\nexit\n")
        .expect("write");
    let (code, stdout, _) = offload(&["compile", "--json", bad.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{stdout}");
    let v = json(&stdout);
    assert_eq!(v["offloadable"], false);
    let pcs: Vec<u64> = v["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter_map(|r| r["pc"].as_u64())
        .collect();
    assert!(pcs.contains(&1) && pcs.contains(&4), "{stdout}");

    // Listing and microcode output.
    let out = tmp("compile-ok.bin");
    let (code, stdout, err) = offload(&[
        "compile",
        ok.to_str().expect("utf-8"),
        "--listing",
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("exit"), "{stdout}");
    let words = std::fs::read(&out).expect("microcode written");
    assert_eq!(words.len() % 8, 0);
    assert!(!words.is_empty());
}

#[test]
fn sim_json_has_the_contract_fields_and_accounts_every_frame() {
    let prog = tmp("sim-ipv4.s");
    std::fs::write(&prog, IPV4_ONLY).expect("write");
    let p = prog.to_str().expect("utf-8");
    let out = tmp("sim-out.pcap");
    let o = out.to_str().expect("utf-8");
    let traffic = "packets=3000,flows=100,proto=udp:50,arp:50,runts=0.05,seed=4";
    let (code, stdout, err) = offload(&[
        "sim",
        p,
        "--traffic",
        traffic,
        "--cores",
        "4",
        "--host-threads",
        "2",
        "--out",
        o,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = json(&stdout);
    for field in [
        "packets",
        "verdicts",
        "queue_drops",
        "modeled_mpps",
        "line_rate_mpps",
        "cycles_per_packet",
        "core_utilisation",
        "host_packets_per_sec",
        "mismatches",
    ] {
        assert!(v.get(field).is_some(), "missing {field}: {stdout}");
    }
    let vd = &v["verdicts"];
    let n = |k: &str| {
        vd[k]
            .as_u64()
            .unwrap_or_else(|| panic!("verdicts.{k}: {stdout}"))
    };
    let sum = n("aborted") + n("drop") + n("pass") + n("tx") + n("redirect") + n("runt");
    assert_eq!(v["packets"], 3000);
    assert_eq!(
        sum + v["queue_drops"].as_u64().expect("queue_drops"),
        3000,
        "{stdout}"
    );
    assert!(n("pass") > 0 && n("drop") > 0 && n("runt") > 0, "{stdout}");
    assert_eq!(v["mismatches"], 0, "{stdout}");
    assert_eq!(v["core_utilisation"].as_array().map(Vec::len), Some(4));
    assert!(v["cycles_per_packet"]["p50"].as_u64() <= v["cycles_per_packet"]["p99"].as_u64());

    // --out holds the passed frames; replaying it passes them all again.
    let (code, stdout, err) = offload(&["sim", p, "--pcap", o, "--json"]);
    assert_eq!(code, 0, "{err}");
    let again = json(&stdout);
    assert_eq!(again["packets"], vd["pass"]);
    assert_eq!(again["verdicts"]["pass"], vd["pass"]);

    // Human output names the verdicts and the line rate.
    let (code, text, err) = offload(&["sim", p, "--traffic", "packets=500"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("line rate") && text.contains("pass"),
        "{text}"
    );

    // A truncated capture is bad input naming the frame and byte offset.
    let bytes = std::fs::read(&out).expect("read out");
    let cut = tmp("sim-cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 5]).expect("write");
    let (code, _, err) = offload(&["sim", p, "--pcap", cut.to_str().expect("utf-8"), "--json"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("frame") && err.contains("offset"), "{err}");

    // Not offloadable: exit 1 with the reasons.
    let bad = tmp("sim-bad.s");
    std::fs::write(&bad, "mov %r0, 7\nmod %r0, 3\nexit\n").expect("write");
    let (code, stdout, _) = offload(&[
        "sim",
        bad.to_str().expect("utf-8"),
        "--traffic",
        "packets=10",
        "--json",
    ]);
    assert_eq!(code, 1, "{stdout}");
    let v = json(&stdout);
    assert_eq!(v["offloadable"], false);
    assert!(!v["reasons"].as_array().expect("reasons").is_empty());

    // Usage errors.
    let (code, _, _) = offload(&["sim", p]);
    assert_eq!(code, 2);
    let (code, _, err) = offload(&["sim", p, "--traffic", "packets=0"]);
    assert_eq!(code, 2, "{err}");
    // More hardware threads per ME than the simulator models (the NFP has 8).
    let (code, _, err) = offload(&["sim", p, "--traffic", "packets=10", "--me-threads", "65"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--me-threads"), "{err}");
    let (code, _, err) = offload(&[
        "sim",
        p,
        "--traffic",
        "packets=10",
        "--nic",
        "custom:threads=100",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at most 64"), "{err}");
}

#[test]
fn diff_against_sim_runs_the_microcode() {
    let prog = tmp("diff-sim.s");
    std::fs::write(&prog, IPV4_ONLY).expect("write");
    let (code, stdout, err) = offload(&[
        "diff",
        prog.to_str().expect("utf-8"),
        "--against",
        "sim",
        "--random",
        "40",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = json(&stdout);
    assert_eq!(v["engines"], serde_json::json!(["interp", "sim"]));
    assert_eq!(v["divergences"], 0);
    assert!(v["sample"]["results"].get("sim").is_some(), "{stdout}");
    let bad = tmp("diff-sim-bad.s");
    std::fs::write(&bad, "mov %r0, 7\nmod %r0, 3\nexit\n").expect("write");
    let (code, _, err) = offload(&[
        "diff",
        bad.to_str().expect("utf-8"),
        "--against",
        "sim",
        "--random",
        "4",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot be offloaded"), "{err}");
}
