//! Simulation: host packets per second of `nic_sim::simulate` for the demo UDP filter on an
//! Agilio CX (reference interpreter comparison off), on 1 and 2 host threads. The peer of
//! the 2-thread row is the 1-thread row (scaling); the 1-thread row has a goal, no peer.
//! One-thread runs are pinned to each CPU in turn (see `benches::affinity`).

use benches::table::{Figure, Row};
use benches::timing::measure;
use benches::{SIM_FRAMES, sim_frames, sim_me_insns, sim_program, simulate};

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
    // The machine's speed drifts over seconds, and its two vCPUs are not equally fast at a
    // given moment (see `benches::affinity`). So each round measures one thread pinned to
    // each of the two CPUs in turn and two threads on both, in alternation; a round's
    // scaling is its two-thread rate over the mean of its one-thread rates (what two threads
    // would do if they scaled perfectly on those cores is twice that mean), and the table
    // reports the median round.
    let cpus: Vec<usize> = benches::affinity::allowed_cpus()
        .into_iter()
        .take(2)
        .collect();
    let timed = |hosts: usize| {
        let m = measure(cx.budget, || simulate(&frames, &program, hosts).is_ok());
        SIM_FRAMES as f64 / m.median_ns * 1e3
    };
    let pinned = cpus.len() == 2;
    let mut rounds: Vec<Round> = Vec::new();
    for _ in 0..ROUNDS {
        let round = if pinned {
            let on = |set: &[usize], hosts| {
                benches::affinity::on_cpus(set, || timed(hosts)).unwrap_or(f64::NAN)
            };
            let one = [on(&cpus[..1], 1), on(&cpus[1..], 1)];
            Round {
                one,
                two: on(&cpus, 2),
            }
        } else {
            let one = timed(1);
            Round {
                one: [one, one],
                two: timed(2),
            }
        };
        rounds.push(round);
    }
    let one_mean = |r: &Round| (r.one[0] + r.one[1]) / 2.0;
    let mpps = [
        median(rounds.iter().map(one_mean)),
        median(rounds.iter().map(|r| r.two)),
    ];
    let scaling = median(rounds.iter().map(|r| r.two / one_mean(r)));
    let workload = |h: usize| format!("demo udp_filter, {SIM_FRAMES} frames, {h} host thread(s)");
    let one_note = if pinned {
        format!(
            "one thread pinned to CPU {} / CPU {} in turn, per round: {}; the figure is the median of their means",
            cpus[0],
            cpus[1],
            rounds
                .iter()
                .map(|r| format!("{:.2} / {:.2}", r.one[0], r.one[1]))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        "not pinned (the CPU set could not be read or has one CPU)".to_string()
    };
    let insns_note = match sim_me_insns(&frames, &program) {
        Ok(n) if n > 0 => format!(
            "; {:.1} simulated ME instructions per frame, so {:.0} M ME insns/s",
            n as f64 / SIM_FRAMES as f64,
            mpps[0] * n as f64 / SIM_FRAMES as f64
        ),
        _ => String::new(),
    };
    st.rows.push(
        Row::ours("simulate", &workload(1), Figure::new(mpps[0], UNIT))
            .goal(">= 10 M pkts/s per host core", Some(mpps[0] >= 10.0))
            .note(one_note + &insns_note),
    );
    let mut two = Row::ours("simulate", &workload(2), Figure::new(mpps[1], UNIT)).note(format!(
        "{:.2} M pkts/s per host thread (the caller is one of the two: it reads every frame into per-ME batches and takes ME tasks like the other); {ROUNDS} alternating rounds, ratio = median over rounds of two threads / the mean of that round's pinned one-thread rates ({}); the 2 vCPUs are shared with other work and differ in speed from moment to moment",
        mpps[1] / 2.0,
        rounds
            .iter()
            .map(|r| format!("{:.2}x", r.two / one_mean(r)))
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

/// One round of the scaling measurement: one thread on each CPU, two threads on both
/// (M frames/s).
struct Round {
    one: [f64; 2],
    two: f64,
}
