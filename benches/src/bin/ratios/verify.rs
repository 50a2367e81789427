//! Verification: our verifier against the kernel's on the same corpus programs (ones the
//! kernel accepts, one per size class). The kernel's figure is its own `verification time`
//! (log level 4: the clock around `bpf_check()`, no JIT), not the syscall's wall time; the
//! wall time of the whole `BPF_PROG_LOAD` is kept in the JSON (`kernel_load_wall_us`).
//! Ours runs with no log, the kernel with statistics only (no trace).

use std::hint::black_box;

use benches::kernel::KernelVerifier;
use benches::table::{Figure, Row};
use benches::timing::measure;
use verifier::{VerifyOptions, verify};

use crate::{Context, Stage};

const GOAL: &str = "<= 1/3 of the kernel's time";

pub fn stage(cx: &Context) -> Stage {
    let mut st = Stage::default();
    let set = match &cx.verify_set {
        Ok(set) => set,
        Err(e) => {
            st.notes.push(format!("verify: no corpus programs: {e}"));
            return st;
        }
    };
    let quiet = VerifyOptions {
        log_level: 0,
        ..VerifyOptions::default()
    };
    for (class, p) in set {
        let processed = match verify(&p.program, &quiet) {
            Ok(v) => v.processed_insns,
            Err(e) => {
                st.notes
                    .push(format!("verify {}: ours refuses it: {e}", p.label));
                continue;
            }
        };
        let m = measure(cx.budget, || verify(black_box(&p.program), &quiet).is_ok());
        let workload = format!(
            "{} {} ({} insns)",
            class.as_str(),
            p.label,
            p.program.insns.len()
        );
        let row = Row::ours("verify", &workload, Figure::new(m.median_ns / 1e3, "us"))
            .detail("ours_processed_insns", processed as f64);
        let peer = "kernel verifier (own clock)";
        let kernel = KernelVerifier::new(&p.object, &p.program).and_then(|k| k.measure(cx.budget));
        let row = match kernel {
            Ok(k) => {
                let mut row = row
                    .versus(peer, Some(Figure::new(k.verify_us.median_ns, "us")))
                    .detail("kernel_load_wall_us", k.load_wall_us.median_ns)
                    .detail("kernel_loads_per_sample", k.verify_us.per_batch as f64);
                if let Some(n) = k.processed {
                    row = row.detail("kernel_processed_insns", n as f64);
                }
                let met = row.ratio.map(|r| r >= 3.0);
                row.note(format!(
                    "processed insns: ours {processed}, kernel {}",
                    k.processed.map_or("?".into(), |n| n.to_string())
                ))
                .goal(GOAL, met)
            }
            Err(e) => {
                st.notes
                    .push(benches::kernel::skip(&format!("verify {}", p.label), &e));
                row.versus(peer, None)
                    .goal(GOAL, None)
                    .note("kernel skipped (see notes)")
            }
        };
        st.rows.push(row);
    }
    st
}
