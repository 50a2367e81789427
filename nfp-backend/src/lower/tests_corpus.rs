//! Data-driven: the bpf_conformance suite's programs, loaded as XDP programs (those that do
//! not touch their input memory verify that way), lowered and run on the executor; the return
//! value must equal the suite's expected result and the interpreter's.

use vm_core::interp::{Vm, VmConfig};
use vm_core::maps::MapSet;
use vm_core::testdata::TestFile;
use vm_core::{ProgType, Program};

use super::LowerOptions;
use super::tests::packet;
use crate::NicLimits;
use crate::compile::{compile, lower_verified};
use crate::exec::{Executor, RunOpts};

#[test]
fn bpf_conformance_programs_match_expected_results() {
    let dir = vm_core::corpus::require("bpf_conformance/tests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .collect();
    files.sort();
    assert!(files.len() > 300, "only {} conformance files", files.len());
    let nic = NicLimits::default();
    let (mut verified, mut lowered, mut strict, mut zext_elided, mut zext_kept) = (0, 0, 0, 0, 0);
    let mut mismatches = Vec::new();
    let mut refused = std::collections::BTreeMap::<String, u32>::new();
    for path in &files {
        let Ok(tf) = TestFile::parse_file(path) else {
            continue;
        };
        let (Some(expect), Ok(raw)) = (tf.result, tf.program()) else {
            continue;
        };
        if !tf.mem.is_empty() {
            continue;
        }
        let Ok(prog) = Program::from_raw("conformance", ProgType::Xdp, &raw) else {
            continue;
        };
        if verifier::verify(&prog, &verifier::VerifyOptions::default()).is_err() {
            continue;
        }
        verified += 1;
        if compile(&prog, &nic).is_ok() {
            strict += 1;
        }
        let c = match lower_verified(&prog, &nic, &LowerOptions::default()) {
            Ok(c) => c,
            Err(e) => {
                for r in e.reasons {
                    let msg: String = r.message.chars().filter(|c| !c.is_ascii_digit()).collect();
                    *refused.entry(format!("{}: {msg}", r.category)).or_insert(0) += 1;
                }
                continue;
            }
        };
        lowered += 1;
        zext_elided += c.zext_elided;
        zext_kept += c.zext_kept;
        let mut maps = MapSet::new(&prog.maps, 1).unwrap_or_else(|e| panic!("{e}"));
        let got = Executor::new(RunOpts::default()).run(&c.code, &mut maps, &packet());
        let want = Vm::new(&prog, VmConfig::default())
            .ok()
            .and_then(|mut vm| vm.run(&packet()).ok())
            .map(|o| o.retval);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match got {
            Ok(g) if g.retval == expect => {}
            Ok(g) => mismatches.push(format!(
                "{name}: me {:#x} expected {expect:#x} interp {:?}",
                g.retval, want
            )),
            Err(e) => mismatches.push(format!("{name}: executor error {e}")),
        }
    }
    eprintln!(
        "conformance as xdp: {} files, {verified} verify, {lowered} lowered, {strict} offloadable (feasibility), zext elided {zext_elided} kept {zext_kept}",
        files.len()
    );
    eprintln!("not lowered: {refused:#?}");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(
        lowered >= 100,
        "only {lowered} conformance programs lowered"
    );
}

/// Real objects: every XDP and tc program of the ebpf-samples corpus goes through `compile`
/// without panicking; what compiles runs on the executor against the interpreter on the demo
/// packets (where the interpreter can run it).
#[test]
fn ebpf_samples_compile_or_refuse_and_agree() {
    let dir = vm_core::corpus::require("ebpf-samples");
    let mut objects = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "o") {
                objects.push(p);
            }
        }
    }
    objects.sort();
    assert!(objects.len() > 100, "only {} objects", objects.len());
    let nic = NicLimits::default();
    let packets: Vec<Vec<u8>> = vm_core::demo::packets()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let (mut tried, mut ok, mut ran, mut ebpf, mut nfp, mut elided, mut kept) =
        (0, 0, 0, 0, 0, 0u32, 0u32);
    let mut cats = std::collections::BTreeMap::<&'static str, u32>::new();
    let mut loose = 0;
    let mut mismatches = Vec::new();
    for path in &objects {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let Ok((obj, _)) = vm_core::elf::load_object_lenient(&bytes) else {
            continue;
        };
        for prog in &obj.programs {
            if !matches!(prog.prog_type, ProgType::Xdp | ProgType::SchedCls)
                || prog.insns.len() > 3000
            {
                continue;
            }
            tried += 1;
            let c = match compile(prog, &nic) {
                Ok(c) => {
                    ok += 1;
                    c
                }
                Err(e) => {
                    for r in &e.reasons {
                        *cats.entry(r.category).or_insert(0) += 1;
                    }
                    // Still exercise the lowering on what it can translate.
                    match lower_verified(prog, &nic, &LowerOptions::default()) {
                        Ok(c) => {
                            loose += 1;
                            c
                        }
                        Err(_) => continue,
                    }
                }
            };
            ebpf += c.ebpf_insns;
            nfp += c.nfp_insns;
            elided += c.zext_elided;
            kept += c.zext_kept;
            let Ok(mut vm) = Vm::new(prog, VmConfig::default()) else {
                continue;
            };
            let Ok(mut maps) = MapSet::new(&prog.maps, 1) else {
                continue;
            };
            let mut ex = Executor::new(RunOpts::default());
            for (i, p) in packets.iter().enumerate() {
                let Ok(want) = vm.run(p) else { break };
                ran += 1;
                match ex.run(&c.code, &mut maps, p) {
                    Ok(g) if g.retval as u32 == want.retval as u32 && g.packet == want.packet => {}
                    Ok(g) => mismatches.push(format!(
                        "{} {}: packet {i}: me {:#x} interp {:#x} (packet equal: {})",
                        path.display(),
                        prog.name,
                        g.retval,
                        want.retval,
                        g.packet == want.packet
                    )),
                    Err(e) => mismatches.push(format!(
                        "{} {}: packet {i}: {e}",
                        path.display(),
                        prog.name
                    )),
                }
            }
        }
    }
    eprintln!(
        "ebpf-samples: {tried} xdp/tc programs, {ok} compiled, {loose} more lowered without the NIC's limits ({ebpf} eBPF slots -> {nfp} NFP insns), zext elided {elided} kept {kept}, {ran} packet runs; refusals by category {cats:?}"
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
