//! Linux selftests (test_verifier tables, 6.12) through the interpreter: for every record that
//! the kernel accepts and runs (`runs`), whose program type we model (socket filter, tc, xdp)
//! and whose maps we can create from its fixups, our retval must equal the recorded one.
//!
//! The recorded retvals come from the kernel itself (the JSONL's `runs`), so this is a kernel
//! oracle, not a hand-typed expectation. Records are counted and the agreement is printed.

use std::collections::BTreeMap;

use serde_json::Value;
use vm_core::{
    MapDef, MapType, ProgType, Program, RawInsn,
    interp::{Vm, VmConfig},
    isa::{self, Insn, LdImm64},
};

/// `POINTER_VALUE` in test_verifier: "the retval is a pointer, don't compare".
const POINTER_VALUE: u64 = 0xcafe4a;

fn map_for_fixup(name: &str) -> Option<MapDef> {
    let def = |map_type, key_size, value_size, max_entries, flags| MapDef {
        name: name.to_string(),
        map_type,
        key_size,
        value_size,
        max_entries,
        flags,
        initial_value: None,
    };
    match name {
        "map_hash_8b" => Some(def(MapType::Hash, 8, 8, 1, 1)),
        "map_hash_48b" => Some(def(MapType::Hash, 8, 48, 1, 0)),
        "map_array_48b" => Some(def(MapType::Array, 4, 48, 1, 0)),
        "map_array_small" => Some(def(MapType::Array, 4, 1, 1, 0)),
        "map_event_output" => Some(def(MapType::PerfEventArray, 4, 4, 1, 0)),
        _ => None,
    }
}

/// test_verifier pre-fills element 0 of the array fixups: `index = 28` at offset 0 and
/// `foo[6] = 0xabcdef12`... only for the 48-byte array; the small one gets its first byte.
fn prefill(vm: &mut Vm, fd: usize, name: &str) {
    let mut value = [0u8; 48];
    value[0..4].copy_from_slice(&28u32.to_le_bytes());
    // struct test_val { unsigned int index; int foo[11]; }: foo[6] sits at 4 + 6 * 4.
    value[28..32].copy_from_slice(&0xabcdef12u32.to_le_bytes());
    let len = match name {
        "map_array_48b" => 48,
        "map_array_small" => 1,
        _ => return,
    };
    if let Some(map) = vm.maps_mut().get_mut(fd) {
        let _ = map.user_update(&0u32.to_le_bytes(), &value[..len], 0);
    }
}

struct Case {
    descr: String,
    program: Program,
    fixups: Vec<String>,
    runs: Vec<(u64, Vec<u8>)>,
}

fn cases() -> (Vec<Case>, BTreeMap<String, usize>) {
    let path = vm_core::corpus::require("linux-selftests-verifier/test_verifier-6.12.117.jsonl");
    let text = std::fs::read_to_string(&path).expect("read selftests JSONL");
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let r: Value = serde_json::from_str(line).expect("JSONL record");
        let mut skip = |why: &str| *skipped.entry(why.to_string()).or_default() += 1;
        if !matches!(r["result"].as_str(), Some("ACCEPT" | "VERBOSE_ACCEPT")) {
            skip("rejected by the kernel (not run)");
            continue;
        }
        if r["runs_field"].as_i64() == Some(-1) {
            skip("never executed (runs = -1)");
            continue;
        }
        let prog_type = ProgType::from_kernel_number(r["prog_type"].as_u64().unwrap_or(0) as u32);
        if matches!(prog_type, ProgType::Other(_)) {
            skip("program type not modelled");
            continue;
        }
        let Some(insns) = r["insns"].as_array() else {
            skip("generated program (no insns)");
            continue;
        };
        if r["fixup_kfunc_btf_id"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
            || r["func_info_cnt"].as_u64() != Some(0)
        {
            skip("needs BTF or kfuncs");
            continue;
        }
        let raw: Vec<RawInsn> = insns
            .iter()
            .map(|h| {
                let bytes = hex::decode(h.as_str().unwrap_or("")).expect("insn hex");
                RawInsn::from_bytes(bytes.try_into().expect("8 bytes"))
            })
            .collect();
        let Ok(mut decoded) = isa::decode_program(&raw) else {
            skip("does not decode");
            continue;
        };
        // Fixups: create each map and point its lddw slots at it.
        let mut maps = Vec::new();
        let mut fixups = Vec::new();
        let mut unsupported = false;
        if let Some(obj) = r["fixups"].as_object() {
            for (name, idxs) in obj {
                let Some(def) = map_for_fixup(name) else {
                    unsupported = true;
                    break;
                };
                let fd = maps.len() as i32;
                maps.push(def);
                fixups.push(name.clone());
                for idx in idxs.as_array().into_iter().flatten() {
                    let i = idx.as_u64().unwrap_or(0) as usize;
                    if let Some(Insn::LdImm64 { value, .. }) = decoded.get_mut(i) {
                        *value = match *value {
                            LdImm64::MapValue { off, .. } => LdImm64::MapValue { fd, off },
                            _ => LdImm64::MapFd(fd),
                        };
                    }
                }
            }
        }
        if unsupported {
            skip("map fixup not modelled (kptr/ringbuf)");
            continue;
        }
        let runs = r["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|run| {
                let retval = run["retval"].as_u64().unwrap_or(0);
                let data = hex::decode(run["data"].as_str().unwrap_or("")).unwrap_or_default();
                (retval, data)
            })
            .collect();
        let descr = format!(
            "{}#{} {}",
            r["file"].as_str().unwrap_or("?"),
            r["index"],
            r["descr"].as_str().unwrap_or("")
        );
        let program = Program {
            name: descr.clone(),
            section: None,
            prog_type,
            insns: decoded,
            maps,
        };
        out.push(Case {
            descr,
            program,
            fixups,
            runs,
        });
    }
    (out, skipped)
}

#[test]
fn selftest_retvals_match_the_kernel() {
    let (cases, skipped) = cases();
    let mut runs = 0;
    let mut agree = 0;
    let mut pointer = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let mut vm = match Vm::new(&case.program, VmConfig::default()) {
            Ok(vm) => vm,
            Err(e) => {
                failures.push(format!("{}: load: {e}", case.descr));
                runs += case.runs.len();
                continue;
            }
        };
        for (fd, name) in case.fixups.iter().enumerate() {
            prefill(&mut vm, fd, name);
        }
        for (expected, data) in &case.runs {
            runs += 1;
            if *expected == POINTER_VALUE {
                pointer += 1;
                continue;
            }
            match vm.run(data) {
                Ok(o) if o.retval32() as u64 == *expected => agree += 1,
                Ok(o) => failures.push(format!(
                    "{}: retval {:#x}, kernel {:#x}",
                    case.descr,
                    o.retval32(),
                    expected
                )),
                Err(e) => failures.push(format!("{}: {e}", case.descr)),
            }
        }
    }
    let compared = runs - pointer;
    println!(
        "selftests retval agreement: {agree} of {compared} runs ({} programs; {pointer} pointer-valued runs not compared)",
        cases.len()
    );
    for (why, n) in &skipped {
        println!("  skipped {n:>4}: {why}");
    }
    for f in &failures {
        println!("  MISMATCH {f}");
    }
    assert!(
        cases.len() >= 200,
        "expected at least 200 runnable records, found {}",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {compared} runs disagree with the kernel:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
