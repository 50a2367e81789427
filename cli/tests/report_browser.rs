//! The report page as a reader sees it: rendered by headless Chromium, which must load the
//! page and every chart without a single error. Chromium is Debian's `chromium` package
//! (`.ci/run` installs it); without it this test fails, it never skips.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// Where Chromium is: `$OFFLOAD_CHROMIUM`, else Debian's path.
fn chromium() -> PathBuf {
    let p = std::env::var_os("OFFLOAD_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        p.exists(),
        "headless Chromium not found at {} (install Debian's `chromium` package, as .ci/run does, or set OFFLOAD_CHROMIUM)",
        p.display()
    );
    p
}

/// Flags for a closed network and a root user: no sandbox, no GPU, no background fetches
/// (which would fail noisily here), a fresh profile.
fn headless(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=10000",
    ]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    c
}

fn render(dir: &Path) {
    let index = dir.join("index.html");
    let url = format!("file://{}", index.display());
    let profile = dir.join("chromium-profile");
    let out = headless(&profile)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("start chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed on {url}: {stderr}");
    assert!(
        dom.contains("data-report-status=\"ok\""),
        "{url} did not load cleanly: {}\nchromium stderr:\n{stderr}",
        dom.split("data-report-errors=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("(status never set: the load event did not run)")
    );
    assert!(
        dom.contains("id=\"verdict\""),
        "verdict missing from the rendered page"
    );
    // A picture of the page, kept beside it for people to look at.
    let shot = dir.join("screenshot.png");
    let out = headless(&profile)
        .arg("--window-size=1100,2600")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("start chromium");
    assert!(out.status.success(), "screenshot of {url} failed");
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot looks empty"
    );
}

fn report(prog: &str, name: &str, expect_code: i32) -> PathBuf {
    let p = vm_core::corpus::root().join(prog);
    assert!(p.exists(), "corpus file missing: {}", p.display());
    let dir = std::env::temp_dir().join(format!("offload-browser-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_offload"))
        .arg("report")
        .arg(&p)
        .arg("-o")
        .arg(&dir)
        .args([
            "--traffic",
            "packets=3000,flows=64,seed=5",
            "--scaling-frames",
            "800",
        ])
        .output()
        .expect("run offload");
    assert_eq!(
        out.status.code(),
        Some(expect_code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

#[test]
fn report_pages_render_in_headless_chromium_without_errors() {
    let ok = report(
        "cilium-ebpf/docs/examples/getting_started/counter_bpfel.o",
        "counter",
        0,
    );
    render(&ok);
    let no = report("cilium-ebpf/examples/xdp/bpf_bpfel.o", "xdp", 1);
    render(&no);
    let _ = std::fs::remove_dir_all(&ok);
    let _ = std::fs::remove_dir_all(&no);
}

/// The check itself catches a broken page: a chart that is missing must fail the render.
#[test]
#[should_panic(expected = "did not load cleanly")]
fn a_missing_chart_fails_the_render() {
    let dir = report(
        "cilium-ebpf/docs/examples/getting_started/counter_bpfel.o",
        "broken",
        0,
    );
    std::fs::remove_file(dir.join("scaling.svg")).expect("chart existed");
    render(&dir);
}
