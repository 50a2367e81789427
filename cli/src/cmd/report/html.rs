//! `index.html`: the report for people. One static page, no external resources but the chart
//! SVGs beside it. A small inline script records any resource that fails to load and marks
//! the page `data-report-status="ok"` once everything has loaded, so a headless browser can
//! check the page as a reader would see it.

use std::fmt::Write as _;

use super::model::{HotInsn, Report, SourceRef};

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d1f;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;font-size:.9em}
.verdict{padding:14px 18px;border-radius:8px;font-size:1.15em;margin:18px 0}
.ok{background:#e3f4e8;border:1px solid #7cc293}.no{background:#fbe5e5;border:1px solid #e08a8a}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.92em}
th,td{border:1px solid #e1e1e1;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f1f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.92em}
pre.src{margin:2px 0 0;color:#555;white-space:pre-wrap}
img.chart{width:100%;max-width:820px;background:#fff;border:1px solid #e1e1e1;border-radius:6px;display:block;margin:8px 0}
.kv td:first-child{width:38%;color:#444}
.hint{color:#1f5f99;margin-top:4px}
.note{color:#7a5b00;background:#fff7dd;border:1px solid #f0dc9a;padding:8px 12px;border-radius:6px}
details{background:#fff;border:1px solid #e1e1e1;border-radius:6px;padding:8px 12px}summary{cursor:pointer;color:#444}
footer{color:#888;font-size:.85em;margin-top:32px}
"#;

/// Marks every failed resource and the final state on `<html>`; runs before any image.
const CHECK_SCRIPT: &str = r#"
(function(){
  var errors=[];
  window.addEventListener('error',function(e){
    var t=e.target||{};errors.push((t.src||t.href||e.message||'error')+'');
  },true);
  window.addEventListener('load',function(){
    var imgs=document.images;
    for(var i=0;i<imgs.length;i++){
      if(!imgs[i].complete||imgs[i].naturalWidth===0){errors.push('image not rendered: '+imgs[i].getAttribute('src'));}
    }
    document.documentElement.setAttribute('data-report-status',errors.length?'error':'ok');
    document.documentElement.setAttribute('data-report-errors',errors.join(' | '));
  });
})();
"#;

fn source_cell(s: &Option<SourceRef>) -> String {
    match s {
        Some(s) => format!(
            "<code>{}:{}</code><pre class=\"src\">{}</pre>",
            esc(&s.file),
            s.line,
            esc(&s.text)
        ),
        None => "<span class=\"sub\">no line info</span>".to_string(),
    }
}

fn kv(rows: &[(&str, String)]) -> String {
    let mut s = String::from("<table class=\"kv\">");
    for (k, v) in rows {
        let _ = write!(s, "<tr><td>{}</td><td>{}</td></tr>", esc(k), v);
    }
    s.push_str("</table>");
    s
}

fn chart(report: &Report, file: &str, alt: &str) -> String {
    if report.charts.iter().any(|c| c == file) {
        format!(
            "<img class=\"chart\" src=\"{}\" alt=\"{}\">",
            esc(file),
            esc(alt)
        )
    } else {
        String::new()
    }
}

fn hot_rows(rows: &[HotInsn]) -> String {
    let mut s = String::from(
        "<table><tr><th>insn</th><th>instruction</th><th>source</th><th>share</th><th>cycles</th><th>executions</th><th>NFP insns</th></tr>",
    );
    for r in rows {
        let _ = write!(
            s,
            "<tr><td class=\"n\">{}</td><td><code>{}</code></td><td>{}</td><td class=\"n\">{:.1}%</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            r.pc.map_or("&ndash;".to_string(), |p| p.to_string()),
            esc(&r.insn),
            source_cell(&r.source),
            r.share * 100.0,
            r.cycles,
            r.executions,
            r.nfp_insns
        );
    }
    s.push_str("</table>");
    s
}

/// The whole page.
pub fn page(report: &Report) -> String {
    let p = &report.program;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>offload report: {}</title><style>{STYLE}</style><script>{CHECK_SCRIPT}</script></head><body><main>",
        esc(&p.name)
    );
    let _ = write!(
        h,
        "<h1>{}</h1><div class=\"sub\">{} &middot; {} program &middot; {} eBPF slots{} &middot; target {} ({} MEs &times; {} threads, {:.0} MHz, {} GbE)</div>",
        esc(&p.name),
        esc(&p.file),
        esc(&p.prog_type),
        p.ebpf_insns,
        p.section.as_ref().map_or(String::new(), |s| format!(
            " &middot; section <code>{}</code>",
            esc(s)
        )),
        esc(&report.nic.name),
        report.nic.mes,
        report.nic.threads_per_me,
        report.nic.mhz,
        report.nic.line_rate_gbps
    );
    let class = if report.offloadable { "ok" } else { "no" };
    let _ = write!(
        h,
        "<div class=\"verdict {class}\" id=\"verdict\">{}</div>",
        esc(&report.headline())
    );
    for n in &report.notes {
        let _ = write!(h, "<p class=\"note\">{}</p>", esc(n));
    }
    if !report.reasons.is_empty() {
        h.push_str("<h2>Why it cannot be offloaded</h2><table><tr><th>insn</th><th>reason</th><th>instruction</th><th>source</th></tr>");
        for r in &report.reasons {
            let _ = write!(
                h,
                "<tr><td class=\"n\">{}</td><td>{}<div class=\"sub\">{}</div>{}</td><td>{}</td><td>{}</td></tr>",
                r.pc.map_or("program".to_string(), |p| p.to_string()),
                esc(&r.message),
                esc(&r.category),
                r.hint.as_ref().map_or(String::new(), |h| format!(
                    "<div class=\"hint\">&rarr; {}</div>",
                    esc(h)
                )),
                r.insn
                    .as_ref()
                    .map_or(String::new(), |i| format!("<code>{}</code>", esc(i))),
                if r.pc.is_some() {
                    source_cell(&r.source)
                } else {
                    String::new()
                }
            );
        }
        h.push_str("</table>");
    }
    if let Some(c) = &report.instructions {
        h.push_str("<h2>Instructions</h2>");
        h.push_str(&chart(report, "instructions.svg", "instruction counts"));
        let opts: Vec<String> = c
            .optimisations
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{} {n}", esc(k)))
            .collect();
        let mut rows = vec![
            ("eBPF slots", c.ebpf.to_string()),
            (
                "NFP instructions",
                format!(
                    "{} of the instruction store's {} ({:.1}%)",
                    c.nfp,
                    c.nfp_limit,
                    100.0 * c.nfp as f64 / c.nfp_limit.max(1) as f64
                ),
            ),
            (
                "NFP per eBPF slot",
                format!("{:.2}", c.nfp as f64 / c.ebpf.max(1) as f64),
            ),
            (
                "static estimate, cycles per packet",
                format!("{} to {}", c.estimated_cycles_min, c.estimated_cycles_max),
            ),
            (
                "optimisations that fired",
                if opts.is_empty() {
                    "none".into()
                } else {
                    opts.join(", ")
                },
            ),
        ];
        if let Some(z) = &report.zext {
            rows.push((
                "zero-extensions",
                format!(
                    "{} elided, {} kept: {:.1}% of 32-bit results needed no zero-extension of the upper half",
                    z.elided,
                    z.kept,
                    z.elided_share * 100.0
                ),
            ));
        }
        h.push_str(&kv(&rows));
    }
    if let (Some(s), Some(t)) = (&report.sim, &report.traffic) {
        h.push_str("<h2>Throughput</h2>");
        h.push_str(&chart(report, "scaling.svg", "modeled Mpps against MEs"));
        if let Some(sc) = &report.scaling {
            h.push_str("<table><tr><th>line rate</th><th>Mpps at this traffic</th><th>MEs needed</th></tr>");
            for r in &sc.line_rates {
                let _ = write!(
                    h,
                    "<tr><td>{} GbE</td><td class=\"n\">{:.2}</td><td class=\"n\">{}</td></tr>",
                    r.gbe,
                    r.mpps,
                    r.mes_needed.map_or(
                        format!("more than {}", sc.points.last().map_or(0, |p| p.mes)),
                        |m| m.to_string()
                    )
                );
            }
            h.push_str("</table>");
        }
        let verdicts: Vec<String> = s
            .verdicts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        h.push_str("<h2>Simulation at the preset</h2>");
        h.push_str(&kv(&[
            (
                "traffic",
                format!(
                    "<code>{}</code>: {} frames, mean {:.1} bytes as captured",
                    esc(&t.source),
                    t.frames,
                    t.mean_frame_bytes
                ),
            ),
            ("verdicts", esc(&verdicts.join(", "))),
            ("queue drops", s.queue_drops.to_string()),
            (
                "modeled throughput",
                format!(
                    "{:.2} Mpps of {:.2} Mpps line rate; all MEs together could carry {:.2} Mpps",
                    s.modeled_mpps, s.line_rate_mpps, s.combined_capacity_mpps
                ),
            ),
            (
                "cycles per packet (thread held)",
                format!(
                    "p50 {} &middot; p99 {}",
                    s.cycles_per_packet_p50, s.cycles_per_packet_p99
                ),
            ),
            (
                "latency",
                format!(
                    "p50 {:.0} ns &middot; p99 {:.0} ns",
                    s.latency_ns_p50, s.latency_ns_p99
                ),
            ),
            (
                "mean ME utilisation",
                format!("{:.1}%", s.mean_me_utilisation * 100.0),
            ),
            (
                "check against the interpreter",
                match (&s.first_mismatch, s.mismatches) {
                    (_, 0) => "every frame agrees (verdict, bytes, map effects)".to_string(),
                    (Some(f), n) => format!("<b>{n} mismatches</b>; first: {}", esc(f)),
                    (None, n) => format!("<b>{n} mismatches</b>"),
                },
            ),
        ]));
        h.push_str(&chart(report, "latency.svg", "latency histogram"));
    }
    if !report.hottest.is_empty() {
        h.push_str("<h2>Hottest instructions</h2><p class=\"sub\">Busy ME cycles charged to each eBPF instruction's microcode over the whole simulation: its issue cycles, the firmware helpers it calls, taken-branch penalties. Memory waits are not included (other threads run meanwhile; they show in the latency), nor is the firmware's fixed per-packet work. These busy cycles are what limits an ME's packet rate.</p>");
        h.push_str(&chart(report, "hottest.svg", "hottest instructions"));
        h.push_str(&hot_rows(&report.hottest));
    }
    if let Some(l) = &report.listing {
        let n = l.lines().count();
        let (open, what) = if report.offloadable {
            (
                "",
                "each eBPF instruction under its C source line, followed by the microcode it became",
            )
        } else {
            // A refused program's listing is the context of its reasons: shown unless long.
            (
                if n <= 400 { " open" } else { "" },
                "each eBPF instruction under its C source line, reasons marked ^^^",
            )
        };
        let _ = write!(
            h,
            "<h2>Listing</h2><details{open}><summary>{what} ({n} lines)</summary><pre>{}</pre></details>",
            esc(l)
        );
    }
    let _ = writeln!(
        h,
        "<footer>offload {} &middot; generated {} &middot; the same data: <a href=\"report.json\">report.json</a></footer></main></body></html>",
        esc(&report.tool_version),
        esc(&report.generated)
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
