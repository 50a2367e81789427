//! Interpretation: ours (`Vm::run_retval`, per-run setup included) against the rbpf 0.4
//! interpreter and JIT (`mem` workloads only: rbpf has no `xdp_md` context or helpers) and
//! the kernel's JIT through `BPF_PROG_TEST_RUN` with `repeat` (its own clock).
//!
//! All figures are ns per executed eBPF instruction: ns per run over the instructions our
//! interpreter counted, plus what the peer runs in addition (rbpf one more, the `mov r2, LEN`
//! its copy starts with; the kernel's `mem` runs a 7-instruction prolog on packets, none on
//! `sum_loop`).

use std::hint::black_box;

use benches::kernel::{KernelError, KernelRun};
use benches::table::{Figure, Row};
use benches::timing::{Budget, Measurement, measure, measure_pair};
use benches::{Workload, sum_loop, udp_parser, udp_parser_xdp};
use vm_core::Program;
use vm_core::interp::{Vm, VmConfig};

use crate::{Context, Stage};

const NS_INSN: &str = "ns/insn";
/// The project's goals for the interpreter.
const GOAL_NS: &str = "<= 1.0 ns/insn";
const GOAL_RBPF: &str = ">= 5x rbpf interpreter";
/// rbpf's interpreter on the sum loop as issue #2 measured it on this machine kind, ns/insn.
const RBPF_CALIBRATED_NS: f64 = 6.9;

/// Our interpreter on one program: executed instructions, r0, ns per run.
struct Ours {
    insns: u64,
    retval: u64,
    run: Measurement,
}

fn ours(program: &Program, input: &[u8], budget: Budget) -> Result<Ours, String> {
    let mut vm = Vm::new(program, VmConfig::default()).map_err(|e| e.to_string())?;
    let out = vm.run(input).map_err(|e| e.to_string())?;
    let run = measure(budget, || vm.run_retval(black_box(input)).ok());
    Ok(Ours {
        insns: out.insns,
        retval: out.retval,
        run,
    })
}

fn per_insn(m: &Measurement, insns: u64) -> Figure {
    Figure::new(m.median_ns / insns.max(1) as f64, NS_INSN)
}

fn base_row(workload: &str, o: &Ours) -> Row {
    Row::ours("interp", workload, per_insn(&o.run, o.insns))
        .detail("ours_ns_per_run", o.run.median_ns)
        .detail("insns_executed", o.insns as f64)
}

/// The kernel JIT row for a loaded program: its SKIP row when `bpf()` is refused or a run
/// fails, `None` (and a note) when the kernel's verifier refuses this form of the program.
fn kernel_row(
    workload: &str,
    o: &Ours,
    loaded: Result<KernelRun, KernelError>,
    budget: Budget,
    notes: &mut Vec<String>,
) -> Option<Row> {
    let peer = "kernel JIT (BPF_PROG_TEST_RUN)";
    let row = base_row(workload, o);
    let measured = loaded.and_then(|k| {
        let r = k.retval()?;
        if u64::from(r) != o.retval & 0xffff_ffff {
            return Err(KernelError::Run {
                what: workload.into(),
                reason: format!("returned {r:#x}, ours {:#x}: not compared", o.retval),
            });
        }
        Ok((k.measure(budget)?, k.prolog_insns()))
    });
    match measured {
        Ok((m, prolog)) => Some(
            row.versus(peer, Some(per_insn(&m, o.insns + prolog)))
                .detail("peer_ns_per_run", m.median_ns),
        ),
        Err(KernelError::Refused { reason, .. }) => {
            notes.push(format!(
                "interp {workload}: no kernel row, the kernel's verifier refuses this form of it ({reason})"
            ));
            None
        }
        Err(e) => {
            let line = benches::kernel::skip(&format!("interp {workload}"), &e);
            notes.push(line);
            Some(row.versus(peer, None).note("kernel skipped (see notes)"))
        }
    }
}

fn mem_workload(w: &Workload, budget: Budget, st: &mut Stage) {
    let program = w.program();
    let o = match ours(&program, &w.input, budget) {
        Ok(o) => o,
        Err(e) => {
            st.notes
                .push(format!("interp {}: ours failed: {e}", w.name));
            return;
        }
    };
    let bytes = w.rbpf_bytes();
    let met_ns = Some(o.run.median_ns / o.insns.max(1) as f64 <= 1.0);

    // rbpf interpreter: r1 = mem with an empty metadata buffer. Timed in alternation with
    // ours (the issue asks for the ratio "in the same run"; adjacent batches see the same
    // machine speed), the ratio being the median of the paired ratios.
    let interp = rbpf::EbpfVmMbuff::new(Some(&bytes)).map_err(|e| e.to_string());
    let rbpf_interp = interp.and_then(|vm| {
        let r = vm
            .execute_program(&w.input, &[])
            .map_err(|e| e.to_string())?;
        if r != o.retval {
            return Err(format!("returned {r:#x}, ours {:#x}", o.retval));
        }
        let mut vm_ours = Vm::new(&program, VmConfig::default()).map_err(|e| e.to_string())?;
        Ok(measure_pair(
            budget,
            || vm_ours.run_retval(black_box(&w.input)).ok(),
            || vm.execute_program(black_box(&w.input), &[]).ok(),
        ))
    });
    let row = base_row(w.name, &o).goal(GOAL_NS, met_ns);
    st.rows.push(match rbpf_interp {
        Ok(p) => {
            // Per instruction: rbpf executes one more (its `mov r2, LEN` prolog).
            let ratio = Some(p.ratio * o.insns as f64 / (o.insns + 1) as f64)
                .filter(|r| r.is_finite() && *r > 0.0);
            // The machine's speed swings by up to 2x within minutes; the issue calibrated
            // rbpf's interpreter on this machine kind at `RBPF_CALIBRATED_NS`, so the paired
            // ratio also says what ours takes at the speed the goal was set at.
            let calibrated = ratio.map_or(String::new(), |r| {
                format!(
                    "; at the issue's calibration (rbpf {RBPF_CALIBRATED_NS} ns/insn) ours would take {:.2} ns/insn",
                    RBPF_CALIBRATED_NS / r
                )
            });
            let mut row = row
                .versus("rbpf 0.4 interpreter", Some(per_insn(&p.b, o.insns + 1)))
                .detail("peer_ns_per_run", p.b.median_ns)
                .detail("ours_ns_per_run_paired", p.a.median_ns)
                .note(format!(
                    "ratio: median over {} adjacent batch pairs (ours, rbpf alternating; ours {:.3} ns/insn in them){calibrated}",
                    p.a.samples,
                    p.a.median_ns / o.insns.max(1) as f64
                ));
            row.ratio = ratio;
            let met = row.ratio.map(|r| r >= 5.0);
            row.goal(GOAL_RBPF, met)
        }
        Err(e) => row
            .versus("rbpf 0.4 interpreter", None)
            .goal(GOAL_RBPF, None)
            .note(format!("rbpf failed: {e}")),
    });

    st.rows.push(rbpf_jit_row(w, &bytes, &o, budget));
    let kernel = KernelRun::mem(w);
    st.rows
        .extend(kernel_row(w.name, &o, kernel, budget, &mut st.notes));
}

#[cfg(target_arch = "x86_64")]
fn rbpf_jit_row(w: &Workload, bytes: &[u8], o: &Ours, budget: Budget) -> Row {
    let peer = "rbpf 0.4 JIT";
    let row = base_row(w.name, o);
    let jit = (|| {
        let mut vm = rbpf::EbpfVmRaw::new(Some(bytes)).map_err(|e| e.to_string())?;
        vm.jit_compile().map_err(|e| e.to_string())?;
        let mut mem = w.input.clone();
        // SAFETY: the JIT does not check memory accesses; this program ran to completion in
        // both interpreters (ours bounds-checks every access) on this very input, returning
        // the same value, so its accesses stay inside `mem`.
        let r = unsafe { vm.execute_program_jit(&mut mem) }.map_err(|e| e.to_string())?;
        if r != o.retval {
            return Err(format!("returned {r:#x}, ours {:#x}", o.retval));
        }
        // SAFETY: as above; the workloads never store to `mem`, so every run sees the input.
        Ok(measure(budget, || {
            unsafe { vm.execute_program_jit(black_box(&mut mem)) }.ok()
        }))
    })();
    match jit {
        Ok(m) => row
            .versus(peer, Some(per_insn(&m, o.insns + 1)))
            .detail("peer_ns_per_run", m.median_ns),
        Err(e) => row.versus(peer, None).note(format!("rbpf JIT failed: {e}")),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn rbpf_jit_row(w: &Workload, _: &[u8], o: &Ours, _: Budget) -> Row {
    base_row(w.name, o)
        .versus("rbpf 0.4 JIT", None)
        .note("rbpf's JIT is x86_64 only")
}

/// An XDP program of corpus object `object` (`""` for none) on `packet`.
fn xdp_workload(
    label: &str,
    object: &str,
    program: &Program,
    packet: &[u8],
    budget: Budget,
    st: &mut Stage,
) {
    let o = match ours(program, packet, budget) {
        Ok(o) => o,
        Err(e) => {
            st.notes.push(format!("interp {label}: ours failed: {e}"));
            return;
        }
    };
    let met_ns = Some(o.run.median_ns / o.insns.max(1) as f64 <= 1.0);
    let kernel = KernelRun::program(object, program, packet);
    let row = kernel_row(label, &o, kernel, budget, &mut st.notes)
        .unwrap_or_else(|| base_row(label, &o))
        .goal(GOAL_NS, met_ns);
    let row = if row.note.is_empty() {
        row.note("xdp_md context, maps and helpers: no rbpf peer")
    } else {
        row
    };
    st.rows.push(row);
}

pub fn stage(cx: &Context) -> Stage {
    let mut st = Stage::default();
    mem_workload(&sum_loop(10_000), cx.budget, &mut st);
    mem_workload(&udp_parser(), cx.budget, &mut st);
    let (demo, packet) = udp_parser_xdp();
    xdp_workload(
        "udp_parser_xdp (demo)",
        "",
        &demo,
        &packet,
        cx.budget,
        &mut st,
    );
    match benches::corpus::xdp_interp() {
        Ok((p, packet)) => {
            xdp_workload(&p.label, &p.object, &p.program, &packet, cx.budget, &mut st)
        }
        Err(e) => st.notes.push(format!("interp: corpus XDP program: {e}")),
    }
    st
}
