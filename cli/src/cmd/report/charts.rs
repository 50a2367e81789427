//! The report's charts, drawn with plotters' SVG backend into strings (each becomes a file
//! beside `index.html`). Every chart is drawn only from [`Report`] fields, so the picture and
//! `report.json` cannot disagree.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::model::{HotInsn, LatencyBucket, Report, Scaling};

/// Chart size in pixels (the page scales them to its width).
const SIZE: (u32, u32) = (820, 420);
const FONT: &str = "sans-serif";
const EBPF_COLOR: RGBColor = RGBColor(0x4c, 0x72, 0xb0);
const NFP_COLOR: RGBColor = RGBColor(0xdd, 0x84, 0x52);
const ZEXT_COLOR: RGBColor = RGBColor(0xc4, 0xc4, 0xc4);
const CURVE_COLOR: RGBColor = RGBColor(0x2a, 0x6f, 0x3e);
const RATE_COLORS: [RGBColor; 4] = [
    RGBColor(0x99, 0x99, 0x99),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xd6, 0x27, 0x28),
];

/// A chart that could not be drawn (plotters' own error, already formatted).
#[derive(Debug, thiserror::Error)]
#[error("chart `{chart}`: {message}")]
pub struct ChartError {
    chart: &'static str,
    message: String,
}

fn err(chart: &'static str) -> impl Fn(DrawingAreaErrorKind<std::io::Error>) -> ChartError {
    move |e| ChartError {
        chart,
        message: e.to_string(),
    }
}

/// `(file name, svg text)` for every chart the report has data for.
pub fn all(report: &Report) -> Result<Vec<(&'static str, String)>, ChartError> {
    let mut out = Vec::new();
    if let Some(c) = &report.instructions {
        let zext_elided = report.zext.as_ref().map_or(0, |z| z.elided as usize);
        out.push((
            "instructions.svg",
            instructions(c.ebpf, c.nfp, zext_elided)?,
        ));
    }
    if let Some(s) = &report.scaling
        && !s.points.is_empty()
    {
        out.push(("scaling.svg", scaling(s, &report.nic.name)?));
    }
    if !report.latency_histogram.is_empty() {
        out.push(("latency.svg", latency(&report.latency_histogram)?));
    }
    if !report.hottest.is_empty() {
        out.push(("hottest.svg", hottest(&report.hottest)?));
    }
    Ok(out)
}

fn draw(
    chart: &'static str,
    f: impl FnOnce(
        &DrawingArea<SVGBackend<'_>, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<std::io::Error>>,
) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err(chart))?;
        f(&root).map_err(err(chart))?;
        root.present().map_err(err(chart))?;
    }
    Ok(svg)
}

/// Three bars: eBPF slots, NFP instructions as compiled, and NFP instructions had every
/// 32-bit result been zero-extended (the difference is what the zext analysis saved).
fn instructions(ebpf: usize, nfp: usize, zext_elided: usize) -> Result<String, ChartError> {
    let bars = [
        ("eBPF slots", ebpf, EBPF_COLOR),
        ("NFP, as compiled", nfp, NFP_COLOR),
        ("NFP, without zext elision", nfp + zext_elided, ZEXT_COLOR),
    ];
    let top = bars.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64 * 1.15;
    draw("instructions", |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Instructions: eBPF against NFP microcode", (FONT, 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d((0u32..bars.len() as u32 - 1).into_segmented(), 0f64..top)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .disable_x_mesh()
            .y_desc("instructions")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => bars
                    .get(*i as usize)
                    .map_or(String::new(), |b| b.0.to_string()),
                _ => String::new(),
            })
            .label_style((FONT, 14))
            .draw()?;
        for (i, (_, n, color)) in bars.iter().enumerate() {
            let i = i as u32;
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), *n as f64),
                ],
                color.filled(),
            );
            bar.set_margin(0, 0, 40, 40);
            chart.draw_series(std::iter::once(bar))?;
            chart.draw_series(std::iter::once(Text::new(
                n.to_string(),
                (SegmentValue::CenterOf(i), *n as f64 + top * 0.02),
                (FONT, 15).into_font().color(&BLACK),
            )))?;
        }
        Ok(())
    })
}

/// Modeled capacity against the number of MEs, with the standard line rates across it.
fn scaling(s: &Scaling, nic: &str) -> Result<String, ChartError> {
    let max_mes = s.points.iter().map(|p| p.mes).max().unwrap_or(1).max(1);
    let curve_top = s.points.iter().map(|p| p.capacity_mpps).fold(0.0, f64::max);
    // Show the rates the curve gets near, and always the first one above it.
    let mut top = curve_top;
    for r in &s.line_rates {
        if r.mpps <= curve_top * 1.5 || top <= curve_top {
            top = top.max(r.mpps);
        }
    }
    let top = (top * 1.1).max(1.0);
    draw("scaling", |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Modeled throughput against microengines ({nic})"),
                (FONT, 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..f64::from(max_mes) * 1.04, 0f64..top)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("microengines (MEs)")
            .y_desc("Mpps")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 14))
            .draw()?;
        for (r, color) in s.line_rates.iter().zip(RATE_COLORS.iter().cycle()) {
            if r.mpps > top {
                continue;
            }
            chart
                .draw_series(LineSeries::new(
                    [(0.0, r.mpps), (f64::from(max_mes) * 1.04, r.mpps)],
                    color.stroke_width(2),
                ))?
                .label(format!("{} GbE line rate: {:.1} Mpps", r.gbe, r.mpps))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|p| (f64::from(p.mes), p.capacity_mpps))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), CURVE_COLOR.stroke_width(3)))?
            .label("ME capacity (simulated, RSS skew included)")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], CURVE_COLOR.stroke_width(3))
            });
        chart.draw_series(
            pts.iter()
                .map(|&(x, y)| Circle::new((x, y), 4, CURVE_COLOR.filled())),
        )?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// Packets per latency bucket (arrival to verdict, nanoseconds).
fn latency(buckets: &[LatencyBucket]) -> Result<String, ChartError> {
    let max_ns = buckets.iter().map(|b| b.le_ns).fold(0.0, f64::max).max(1.0);
    let max_count = buckets.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64 * 1.1;
    draw("latency", |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Latency, arrival to verdict", (FONT, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..max_ns * 1.02, 0f64..max_count)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("nanoseconds")
            .y_desc("packets")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 14))
            .draw()?;
        let mut lo = 0.0;
        let mut bars = Vec::with_capacity(buckets.len());
        for b in buckets {
            bars.push(Rectangle::new(
                [(lo, 0.0), (b.le_ns.max(lo), b.count as f64)],
                EBPF_COLOR.mix(0.85).filled(),
            ));
            lo = b.le_ns;
        }
        chart.draw_series(bars)?;
        Ok(())
    })
}

/// The hottest instructions as horizontal bars of their share of the program's cycles.
fn hottest(rows: &[HotInsn]) -> Result<String, ChartError> {
    let rows: Vec<&HotInsn> = rows.iter().take(12).collect();
    let n = rows.len().max(1) as u32;
    let top = rows.iter().map(|r| r.share).fold(0.0, f64::max).max(0.01) * 100.0 * 1.2;
    let labels: Vec<String> = rows
        .iter()
        .map(|r| match r.pc {
            Some(pc) => format!("insn {pc}"),
            None => "(no single insn)".to_string(),
        })
        .collect();
    draw("hottest", |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Hottest instructions: share of the program's ME cycles",
                (FONT, 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(130)
            .build_cartesian_2d(0f64..top, (0u32..n - 1).into_segmented())?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .disable_y_mesh()
            .x_desc("% of cycles")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_labels(n as usize)
            .y_label_formatter(&|v| match v {
                // Most expensive at the top: segment 0 is at the bottom.
                SegmentValue::CenterOf(i) if *i < n => labels
                    .get((n - 1 - *i) as usize)
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .label_style((FONT, 13))
            .draw()?;
        for (k, r) in rows.iter().enumerate() {
            let seg = n - 1 - k as u32;
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(seg)),
                    (r.share * 100.0, SegmentValue::Exact(seg + 1)),
                ],
                NFP_COLOR.filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            chart.draw_series(std::iter::once(bar))?;
            chart.draw_series(std::iter::once(Text::new(
                format!("{:.1}%", r.share * 100.0),
                (r.share * 100.0 + top * 0.01, SegmentValue::CenterOf(seg)),
                (FONT, 13).into_font().color(&BLACK),
            )))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::model::{LineRateOut, ScalingPoint};
    use super::*;

    #[test]
    fn charts_are_svg_with_their_labels() {
        let svg = instructions(25, 61, 4).expect("draws");
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("eBPF slots") && svg.contains("61"));
        let s = Scaling {
            points: vec![
                ScalingPoint {
                    mes: 1,
                    capacity_mpps: 3.0,
                    modeled_mpps: 3.0,
                },
                ScalingPoint {
                    mes: 10,
                    capacity_mpps: 30.0,
                    modeled_mpps: 30.0,
                },
            ],
            line_rates: vec![LineRateOut {
                gbe: 25,
                mpps: 37.2,
                mes_needed: None,
            }],
        };
        let svg = scaling(&s, "agilio-cx").expect("draws");
        assert!(svg.contains("25 GbE line rate"));
        let svg = latency(&[
            LatencyBucket {
                le_cycles: 100,
                le_ns: 125.0,
                count: 7,
            },
            LatencyBucket {
                le_cycles: 200,
                le_ns: 250.0,
                count: 2,
            },
        ])
        .expect("draws");
        assert!(svg.contains("<rect"));
    }
}
