//! `offload demo`: the built-in XDP UDP filter through every stage that exists, on built-in packets.

use serde_json::{Map, json};
use vm_core::{
    asm,
    interp::{Vm, VmConfig},
};

use crate::{GlobalOpts, cmd::run::verdict_name, exit::CliError, json as out};

pub fn demo(g: &GlobalOpts) -> Result<u8, CliError> {
    // The demo runs its own built-in program: options that pick or type a program would be
    // silently ignored, so they are refused like any other option that does not apply.
    if g.section.is_some() || g.prog_type.is_some() {
        return Err(CliError::input(
            "demo runs its built-in XDP program: --section and --type do not apply",
        ));
    }
    let program = vm_core::demo::udp_filter();
    let raw = program.raw();
    let mut vm = Vm::new(&program, VmConfig::default())
        .map_err(|e| CliError::input(format!("demo program: {e}")))?;
    let verified = verifier::verify(&program, &verifier::VerifyOptions::default());
    let compiled = nfp_backend::compile::compile(&program, &nfp_backend::NicLimits::AGILIO_CX);
    let sim = simulate_demo(&program);
    let mut results = Vec::new();
    for (name, packet) in vm_core::demo::packets() {
        let outcome = vm.run(&packet).map_err(|e| CliError {
            code: 1,
            message: format!("demo packet `{name}`: {e}"),
        })?;
        results.push((name, packet.len(), outcome));
    }
    if g.json {
        let mut f = Map::new();
        f.insert("program".into(), json!(program.name));
        f.insert("ebpf_insns".into(), json!(raw.len()));
        let packets: Vec<_> = results
            .iter()
            .map(|(name, len, o)| {
                json!({"name": name, "len": len, "retval": o.retval,
                       "verdict": verdict_name(program.prog_type, o.retval), "insns": o.insns})
            })
            .collect();
        f.insert(
            "verify".into(),
            match &verified {
                Ok(v) => json!({"accepted": true, "processed_insns": v.processed_insns,
                                "stack_depth": v.stack_depth, "zext": v.zext}),
                Err(r) => json!({"accepted": false, "pc": r.error.pc, "error": r.error.message}),
            },
        );
        f.insert(
            "compile".into(),
            match &compiled {
                Ok(c) => json!({"offloadable": true, "ebpf_insns": c.ebpf_insns, "nfp_insns": c.nfp_insns,
                                "zext_elided": c.zext_elided, "zext_kept": c.zext_kept,
                                "estimated_cycles": {"min": c.estimated_cycles.0, "max": c.estimated_cycles.1}}),
                Err(n) => json!({"offloadable": false,
                                 "reasons": n.reasons.iter().map(|r| r.to_string()).collect::<Vec<_>>()}),
            },
        );
        f.insert("packets".into(), json!(packets));
        f.insert("maps".into(), out::maps(vm.maps()));
        f.insert(
            "sim".into(),
            match &sim {
                Ok(r) => json!({"packets": r.packets, "modeled_mpps": r.modeled_mpps,
                                "line_rate_mpps": r.line_rate_mpps, "mismatches": r.mismatches,
                                "cycles_per_packet_p50": r.cycles_per_packet.p50}),
                Err(e) => json!({"error": e}),
            },
        );
        out::print(f);
        return Ok(0);
    }
    println!(
        "== offload demo: XDP program `{}` ({} instruction slots) ==",
        program.name,
        raw.len()
    );
    println!(
        "Drops UDP to port {}, passes everything else, counts verdicts in map `verdicts`.\n",
        vm_core::demo::BLOCKED_PORT
    );
    println!("-- decode + disassemble (kernel syntax)");
    for (pc, insn) in program.insns.iter().enumerate() {
        if *insn != vm_core::Insn::LdImm64Tail {
            println!("  {}", asm::kernel_line(pc, raw[pc].code, insn));
        }
    }
    println!("\n-- verify (privileged profile, as root on Linux 6.18)");
    match &verified {
        Ok(v) => println!(
            "  accepted: {} insns processed, stack depth {} bytes, 32-bit definitions needing zero-extension at {:?}",
            v.processed_insns, v.stack_depth, v.zext
        ),
        Err(r) => println!(
            "  REJECTED at instruction {}: {}",
            r.error.pc, r.error.message
        ),
    }
    println!("\n-- compile for an NFP-4000-style SmartNIC (Agilio CX firmware limits)");
    match &compiled {
        Ok(c) => println!(
            "  offloadable: {} eBPF slots -> {} microengine instructions; zero-extensions elided {} / kept {}; {}..{} cycles per packet",
            c.ebpf_insns,
            c.nfp_insns,
            c.zext_elided,
            c.zext_kept,
            c.estimated_cycles.0,
            c.estimated_cycles.1
        ),
        Err(n) => {
            println!("  NOT offloadable:");
            for r in &n.reasons {
                println!("    {r}");
            }
        }
    }
    println!("\n-- run in the reference interpreter");
    for (name, len, o) in &results {
        let verdict = verdict_name(program.prog_type, o.retval).unwrap_or("?");
        println!(
            "  {name:<30} {len:>5} bytes  -> {verdict:<10} ({} insns)",
            o.insns
        );
    }
    println!("\n-- map `verdicts` after the run");
    if let Some(map) = vm.maps().iter().next() {
        for (k, v) in map.entries() {
            let key =
                u32::from_le_bytes(k.get(..4).and_then(|b| b.try_into().ok()).unwrap_or([0; 4]));
            let count =
                u64::from_le_bytes(v.get(..8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8]));
            if count > 0 {
                println!(
                    "  {:<12} {count}",
                    verdict_name(program.prog_type, key as u64).unwrap_or("?")
                );
            }
        }
    }
    println!("\n-- simulate on an Agilio CX (50 MEs x 4 threads, 800 MHz, 25 GbE): {DEMO_TRAFFIC}");
    match &sim {
        Ok(r) => {
            println!(
                "  modeled {:.2} Mpps of {:.2} Mpps line rate; {} cycles per packet (p50); verdicts: {} pass, {} drop",
                r.modeled_mpps,
                r.line_rate_mpps,
                r.cycles_per_packet.p50,
                r.verdicts.pass,
                r.verdicts.drop
            );
            println!(
                "  every frame checked against the interpreter: {} mismatches",
                r.mismatches
            );
        }
        Err(e) => println!("  simulation failed: {e}"),
    }
    Ok(0)
}

/// Synthetic traffic for the demo's simulation stage.
const DEMO_TRAFFIC: &str = "packets=20000,flows=1000,proto=udp:80,tcp:20,dport=7770-7780,seed=1";

/// The demo program on the simulated NIC, checked frame by frame against the interpreter.
fn simulate_demo(program: &vm_core::Program) -> Result<nic_sim::SimReport, String> {
    let nfp = nic_sim::NfpProgram::compile(program, &nfp_backend::NicLimits::AGILIO_CX)
        .map_err(|e| e.to_string())?;
    let nic = nic_sim::NicPreset::by_name("agilio-cx").map_err(|e| e.to_string())?;
    let config = nic_sim::SimConfig::new(nic);
    let reference = nfp.reference(program);
    let frames = nic_sim::FrameSource::traffic(DEMO_TRAFFIC).map_err(|e| e.to_string())?;
    let out = nic_sim::simulate(frames, &config, &nfp, Some(&reference), |_, _| Ok(()))
        .map_err(|e| e.to_string())?;
    Ok(out.report)
}
