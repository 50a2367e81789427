//! Simulation: host packets per second of `nic_sim::simulate` for the demo UDP filter on an
//! Agilio CX (reference interpreter comparison off), on 1 and 2 host threads. The peer of
//! the 2-thread row is the 1-thread row (scaling); the 1-thread row has a goal, no peer.

use benches::table::{Figure, Row};
use benches::timing::measure;
use benches::{SIM_FRAMES, sim_frames, sim_program, simulate};

use crate::{Context, Stage};

const UNIT: &str = "M pkts/s";

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
    let mut mpps = Vec::new();
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
        let m = measure(cx.budget, || simulate(&frames, &program, hosts).is_ok());
        mpps.push(SIM_FRAMES as f64 / m.median_ns * 1e3);
    }
    let workload = |h: usize| format!("demo udp_filter, {SIM_FRAMES} frames, {h} host thread(s)");
    st.rows.push(
        Row::ours("simulate", &workload(1), Figure::new(mpps[0], UNIT))
            .goal(">= 10 M pkts/s per host core", Some(mpps[0] >= 10.0)),
    );
    let mut two = Row::ours("simulate", &workload(2), Figure::new(mpps[1], UNIT)).note(format!(
        "{:.2} M pkts/s per host thread (the caller is one of the two: it reads and dispatches every frame and simulates its share of the MEs); the 2 cores are shared with other work",
        mpps[1] / 2.0
    ));
    two.peer = Some("same, 1 host thread".into());
    two.peer_figure = Some(Figure::new(mpps[0], UNIT));
    two.ratio = Some(mpps[1] / mpps[0]).filter(|r| r.is_finite());
    let met = two.ratio.map(|r| r >= 1.8);
    st.rows.push(two.goal(">= 1.8x from 1 to 2 threads", met));
    st
}
