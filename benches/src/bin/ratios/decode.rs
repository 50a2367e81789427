//! Decode: raw bytes to typed instructions. No peer: rbpf has no comparable decoder (it
//! interprets raw bytes directly), so these rows are ours alone.

use benches::table::{Figure, Row};
use benches::timing::measure;
use std::hint::black_box;

use crate::{Context, Stage};

pub fn stage(cx: &Context) -> Stage {
    let mut st = Stage::default();
    let mut programs = vec![("udp_parser".to_string(), benches::udp_parser().program())];
    match &cx.verify_set {
        Ok(set) => {
            if let Some((_, p)) = set.iter().max_by_key(|(_, p)| p.program.insns.len()) {
                programs.push((p.label.clone(), p.program.clone()));
            }
        }
        Err(e) => st.notes.push(format!("decode: no corpus program: {e}")),
    }
    for (label, program) in programs {
        let bytes = benches::program_bytes(&program);
        let slots = bytes.len() / 8;
        if let Err(e) = benches::decode(&bytes) {
            st.notes.push(format!("decode {label}: {e}"));
            continue;
        }
        let m = measure(cx.budget, || benches::decode(black_box(&bytes)).is_ok());
        st.rows.push(
            Row::ours(
                "decode",
                &format!("{label} ({slots} slots)"),
                Figure::new(m.median_ns / slots as f64, "ns/insn"),
            )
            .note("no peer: rbpf has no separate decoder")
            .detail("ns_per_program", m.median_ns)
            .detail("slots", slots as f64),
        );
    }
    st
}
