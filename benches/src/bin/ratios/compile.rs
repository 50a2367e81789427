//! Compilation to NFP microcode (verification with the offload checks, then lowering). No
//! peer: Netronome's toolchain is not available here, so these rows are ours alone.

use std::hint::black_box;

use benches::corpus::CorpusProgram;
use benches::table::{Figure, Row};
use benches::timing::measure;
use nfp_backend::NicLimits;
use nfp_backend::compile::compile;

use crate::{Context, Stage};

pub fn stage(cx: &Context) -> Stage {
    let mut st = Stage::default();
    let nic = NicLimits::default();
    let mut programs = vec![CorpusProgram {
        label: "demo udp_filter".into(),
        object: String::new(),
        program: vm_core::demo::udp_filter(),
        kernel_processed: None,
    }];
    if let Ok(set) = &cx.verify_set {
        let mut refused = Vec::new();
        for (class, p) in set {
            if compile(&p.program, &nic).is_ok() {
                programs.push(p.clone());
            } else {
                refused.push(format!("{} ({})", p.label, class.as_str()));
            }
        }
        if !refused.is_empty() {
            st.notes.push(format!(
                "compile: not offloadable to the default NIC, so not in the compile rows: {}",
                refused.join(", ")
            ));
        }
    }
    for p in benches::corpus::offloadable(&nic, 1) {
        if !programs.iter().any(|q| q.program.insns == p.program.insns) {
            programs.push(CorpusProgram {
                label: format!("{} (largest offloadable)", p.label),
                ..p
            });
        }
    }
    for p in programs {
        let nfp = match compile(&p.program, &nic) {
            Ok(c) => c.nfp_insns,
            Err(e) => {
                st.notes.push(format!("compile {}: {e}", p.label));
                continue;
            }
        };
        let n = p.program.insns.len();
        let m = measure(cx.budget, || compile(black_box(&p.program), &nic).is_ok());
        st.rows.push(
            Row::ours(
                "compile",
                &format!("{} ({n} insns -> {nfp} NFP)", p.label),
                Figure::new(m.median_ns / 1e3, "us"),
            )
            .note(format!(
                "{:.2} M eBPF insns/s; no peer (no NFP toolchain here)",
                n as f64 / (m.median_ns / 1e3)
            ))
            .detail("ebpf_insns", n as f64)
            .detail("nfp_insns", nfp as f64),
        );
    }
    st
}
