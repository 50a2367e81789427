//! Simulation: host packets per second of `nic_sim::simulate` for the demo UDP filter on an
//! Agilio CX (reference interpreter comparison off), on 1 and 2 host threads. The peer of
//! the 2-thread row is the 1-thread row (scaling); the 1-thread row has a goal, no peer.

use benches::table::{Figure, Row};
use benches::timing::measure;
use benches::{SIM_FRAMES, sim_frames, sim_program, simulate};

use crate::{Context, Stage};

const UNIT: &str = "M pkts/s";

/// Alternating rounds of the 1- and 2-thread measurements.
const ROUNDS: usize = 3;

/// The median of `xs` (NaN when empty).
fn median(xs: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = xs.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn stage(cx: &Context) -> Stage {
    let mut st = Stage::default();
    let frames = match sim_frames(SIM_FRAMES) {
        Ok(f) => f,
        Err(e) => {
            st.notes.push(format!("simulate: traffic: {e}"));
            return st;
        }
    };
    let program = match sim_program() {
        Ok(p) => p,
        Err(e) => {
            st.notes
                .push(format!("simulate: demo does not compile: {e}"));
            return st;
        }
    };
    for hosts in [1usize, 2] {
        match simulate(&frames, &program, hosts) {
            Ok(n) if n == SIM_FRAMES => {}
            Ok(n) => {
                // A rate over frames the simulator did not count would be invented.
                st.notes.push(format!(
                    "simulate: the report counted {n} of {SIM_FRAMES} frames; no figure"
                ));
                return st;
            }
            Err(e) => {
                st.notes
                    .push(format!("simulate ({hosts} host threads): {e}"));
                return st;
            }
        }
    }
    // The machine's speed drifts over seconds, so 1 and 2 threads are measured in alternation
    // and the scaling is the median of the paired ratios, not a ratio of two separate medians.
    let mut rounds: Vec<[f64; 2]> = Vec::new();
    for _ in 0..ROUNDS {
        let mut pair = [0.0; 2];
        for (slot, hosts) in [1usize, 2].into_iter().enumerate() {
            let m = measure(cx.budget, || simulate(&frames, &program, hosts).is_ok());
            pair[slot] = SIM_FRAMES as f64 / m.median_ns * 1e3;
        }
        rounds.push(pair);
    }
    let mpps = [
        median(rounds.iter().map(|p| p[0])),
        median(rounds.iter().map(|p| p[1])),
    ];
    let scaling = median(rounds.iter().map(|p| p[1] / p[0]));
    let workload = |h: usize| format!("demo udp_filter, {SIM_FRAMES} frames, {h} host thread(s)");
    st.rows.push(
        Row::ours("simulate", &workload(1), Figure::new(mpps[0], UNIT))
            .goal(">= 10 M pkts/s per host core", Some(mpps[0] >= 10.0)),
    );
    let mut two = Row::ours("simulate", &workload(2), Figure::new(mpps[1], UNIT)).note(format!(
        "{:.2} M pkts/s per host thread (the caller is one of the two: it reads every frame into per-ME batches and takes ME tasks like the other); medians of {ROUNDS} alternating rounds, ratio = median of the paired ratios ({}); the 2 cores are shared with other work",
        mpps[1] / 2.0,
        rounds
            .iter()
            .map(|p| format!("{:.2}x", p[1] / p[0]))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    two.peer = Some("same, 1 host thread".into());
    two.peer_figure = Some(Figure::new(mpps[0], UNIT));
    two.ratio = Some(scaling).filter(|r| r.is_finite());
    let met = two.ratio.map(|r| r >= 1.8);
    st.rows.push(two.goal(">= 1.8x from 1 to 2 threads", met));
    st
}
