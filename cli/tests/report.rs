//! `offload report`: the page, the JSON and the exit codes, on corpus programs.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::offload;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("offload-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn corpus(rel: &str) -> String {
    let p = vm_core::corpus::root().join(rel);
    assert!(p.exists(), "corpus file missing: {}", p.display());
    p.to_str().expect("utf-8 path").to_string()
}

fn report_json(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    let v: Value = serde_json::from_str(&text).expect("report.json parses");
    assert_eq!(v["schema"], 1);
    v
}

/// An offloadable program with BTF line info: every section is there and consistent.
#[test]
fn offloadable_program_gets_every_section() {
    let prog = corpus("cilium-ebpf/docs/examples/getting_started/counter_bpfel.o");
    let dir = out_dir("counter");
    let d = dir.to_str().expect("utf-8");
    let (code, out, err) = offload(&[
        "report",
        &prog,
        "-o",
        d,
        "--traffic",
        "packets=4000,flows=2000,seed=3",
        "--scaling-frames",
        "1000",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("offloadable"), "{out}");
    let v = report_json(&dir);
    assert_eq!(v["offloadable"], true);
    assert_eq!(v["program"]["has_line_info"], true);
    let ebpf = v["instructions"]["ebpf"].as_u64().expect("ebpf count");
    let nfp = v["instructions"]["nfp"].as_u64().expect("nfp count");
    assert!(ebpf > 0 && nfp >= ebpf / 2, "{ebpf} {nfp}");
    assert_eq!(v["sim"]["packets"], 4000);
    assert_eq!(v["sim"]["mismatches"], 0);
    let points = v["scaling"]["points"].as_array().expect("points");
    assert!(points.len() >= 5);
    let caps: Vec<f64> = points
        .iter()
        .map(|p| p["capacity_mpps"].as_f64().expect("capacity"))
        .collect();
    // RSS pins flows to lanes, so the curve wobbles with how the hash spreads the flows over
    // each lane count; overall, more MEs carry more.
    assert!(caps.iter().all(|c| *c > 0.0), "{caps:?}");
    assert!(
        caps[caps.len() - 1] > caps[0] * 3.0,
        "more MEs carry more: {caps:?}"
    );
    assert_eq!(v["scaling"]["line_rates"].as_array().map(Vec::len), Some(4));
    let hist = v["latency_histogram"].as_array().expect("histogram");
    let total: u64 = hist.iter().map(|b| b["count"].as_u64().unwrap_or(0)).sum();
    let s = &v["sim"];
    let processed =
        4000 - s["queue_drops"].as_u64().unwrap_or(0) - s["verdicts"]["runt"].as_u64().unwrap_or(0);
    assert_eq!(total, processed, "every processed frame has a latency");
    let hot = v["hottest"].as_array().expect("hottest");
    assert!(!hot.is_empty());
    let share: f64 = hot.iter().map(|h| h["share"].as_f64().unwrap_or(0.0)).sum();
    assert!(share > 0.5 && share <= 1.0 + 1e-9, "{share}");
    assert!(
        hot.iter()
            .any(|h| h["source"]["text"].as_str().is_some_and(|t| !t.is_empty())),
        "hot instructions carry their C source lines: {hot:?}"
    );
    for f in [
        "index.html",
        "instructions.svg",
        "scaling.svg",
        "latency.svg",
        "hottest.svg",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let html = std::fs::read_to_string(dir.join("index.html")).expect("page");
    assert!(html.contains("Hottest instructions") && html.contains("scaling.svg"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A program the NIC cannot run: exit 1, the report is still written, reasons carry a pc,
/// the instruction and its source line.
#[test]
fn not_offloadable_program_names_every_reason_with_its_source_line() {
    let prog = corpus("cilium-ebpf/examples/xdp/bpf_bpfel.o");
    let dir = out_dir("xdp");
    let d = dir.to_str().expect("utf-8");
    let (code, out, err) = offload(&["report", &prog, "-o", d, "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    let v: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["offloadable"], false);
    let reasons = v["reasons"].as_array().expect("reasons");
    assert!(!reasons.is_empty());
    let at_pc: Vec<&Value> = reasons.iter().filter(|r| r["pc"].is_u64()).collect();
    assert!(!at_pc.is_empty(), "{reasons:?}");
    for r in &at_pc {
        assert!(r["insn"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
        assert!(r["source"]["line"].as_u64().is_some_and(|l| l > 0), "{r}");
    }
    // Present and null (a renamed or missing key would also read as null through `v[..]`).
    assert_eq!(v.get("sim"), Some(&Value::Null));
    assert_eq!(v.get("instructions"), Some(&Value::Null));
    assert_eq!(report_json(&dir)["reasons"], v["reasons"]);
    let html = std::fs::read_to_string(dir.join("index.html")).expect("page");
    assert!(html.contains("^^^ [nfp]"), "the listing marks the reasons");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_exits_2_with_the_file_named() {
    let dir = out_dir("bad");
    let d = dir.to_str().expect("utf-8");
    let (code, _, err) = offload(&["report", "/nonexistent/prog.o", "-o", d]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/prog.o"), "{err}");
    let s = std::env::temp_dir().join(format!("offload-report-{}.s", std::process::id()));
    std::fs::write(&s, "mov %r0, 2\nexit\n").expect("write");
    let p = s.to_str().expect("utf-8");
    let (code, _, err) = offload(&["report", p, "-o", d, "--traffic", "packets=oops"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = offload(&["report", p, "-o", "/proc/offload-report-cannot-exist"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot write"), "{err}");
    let _ = std::fs::remove_file(&s);
}
