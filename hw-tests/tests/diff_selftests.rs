//! Differential test: the Linux selftests' test_verifier programs (6.12 tables, JSONL staged in
//! the corpus, FORMATS.md §5a) on the LIVE kernel and on vm-core, compared run by run.
//!
//! Scope: records the kernel accepts and executes (`result` ACCEPT / VERBOSE_ACCEPT, `runs`
//! not -1) of the packet program types vm-core models (socket filter 0/1, sched_cls 3, xdp 6),
//! with their instructions in the record and only map fixups both sides can create. Each is
//! loaded privileged with test_verifier's flags, run with `BPF_PROG_TEST_RUN` on every `runs`
//! entry's 64-byte packet (no ctx), and run in vm-core on the same packet; the low 32 bits of
//! R0 must agree (the test run reports no more). `POINTER_VALUE` runs are not compared.
//!
//! vm-core/tests/selftests_retval.rs compares vm-core with the retvals *recorded* in the JSONL;
//! this compares it with what the running kernel returns, and also counts how often the live
//! kernel still returns the recorded value.

use std::collections::BTreeMap;

use hw_tests::kernel::{LoadOptions, MapFd, MapSpec, flags, load_program, test_run};
use hw_tests::require_kernel;
use serde_json::Value;
use vm_core::interp::{Vm, VmConfig};
use vm_core::isa::{self, Insn, LdImm64};
use vm_core::{MapDef, MapType, ProgType, Program, RawInsn};

/// test_verifier's `POINTER_VALUE`: "the retval is a pointer, don't compare".
const POINTER_VALUE: u64 = 0xcafe4a;

/// The map a fixup names, as test_verifier creates it.
fn fixup_map(name: &str) -> Option<MapDef> {
    let def = |map_type, key_size, value_size, flags| MapDef {
        name: name.to_string(),
        map_type,
        key_size,
        value_size,
        max_entries: 1,
        flags,
        initial_value: None,
    };
    let no_prealloc = aya_obj::generated::BPF_F_NO_PREALLOC;
    match name {
        "map_hash_8b" => Some(def(MapType::Hash, 8, 8, no_prealloc)),
        "map_hash_48b" => Some(def(MapType::Hash, 8, 48, no_prealloc)),
        "map_array_48b" => Some(def(MapType::Array, 4, 48, 0)),
        "map_array_small" => Some(def(MapType::Array, 4, 1, 0)),
        "map_event_output" => Some(def(MapType::PerfEventArray, 4, 4, 0)),
        _ => None,
    }
}

/// Element 0 of the array fixups: `struct test_val { unsigned int index; int foo[11]; }` with
/// `index = 28` and `foo[6] = 0xabcdef12` (byte 4 + 6 * 4 = 28). The 1-byte array gets the
/// first byte of that value.
fn prefill(name: &str) -> Option<Vec<u8>> {
    let mut value = vec![0u8; 48];
    value[0..4].copy_from_slice(&28u32.to_le_bytes());
    value[28..32].copy_from_slice(&0xabcd_ef12u32.to_le_bytes());
    match name {
        "map_array_48b" => Some(value),
        "map_array_small" => Some(value[..1].to_vec()),
        _ => None,
    }
}

/// test_verifier's `prog_flags`: its flag bits 0 and 1 select BPF_F_ANY_ALIGNMENT and
/// BPF_F_STRICT_ALIGNMENT; any higher bit ORs the whole value in; it always adds
/// BPF_F_TEST_RND_HI32 | BPF_F_TEST_REG_INVARIANTS where the kernel has them (6.18 does).
fn prog_flags(test_flags: u32) -> u32 {
    let mut f = flags::TEST_RND_HI32 | flags::TEST_REG_INVARIANTS;
    if test_flags & 1 != 0 {
        f |= flags::ANY_ALIGNMENT;
    }
    if test_flags & 2 != 0 {
        f |= flags::STRICT_ALIGNMENT;
    }
    if test_flags & !3 != 0 {
        f |= test_flags;
    }
    f
}

struct Record {
    descr: String,
    prog_type: u32,
    expected_attach_type: u32,
    flags: u32,
    raw: Vec<RawInsn>,
    /// (fixup name, slots of its lddws).
    fixups: Vec<(String, Vec<usize>)>,
    /// (recorded retval, packet).
    runs: Vec<(u64, Vec<u8>)>,
}

fn records() -> (Vec<Record>, BTreeMap<&'static str, usize>) {
    let path = vm_core::corpus::require("linux-selftests-verifier/test_verifier-6.12.117.jsonl");
    let text = std::fs::read_to_string(&path).expect("read the selftests JSONL");
    let mut skipped: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let r: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1));
        let mut skip = |why| *skipped.entry(why).or_default() += 1;
        if !matches!(r["result"].as_str(), Some("ACCEPT" | "VERBOSE_ACCEPT")) {
            skip("expected to be rejected (never run)");
            continue;
        }
        if r["runs_field"].as_i64() == Some(-1) {
            skip("never executed (runs = -1)");
            continue;
        }
        let prog_type = r["prog_type"].as_u64().unwrap_or(0) as u32;
        if !matches!(prog_type, 0 | 1 | 3 | 6) {
            skip("program type other than socket filter / sched_cls / xdp");
            continue;
        }
        let Some(insns) = r["insns"].as_array() else {
            skip("generated program (insns not in the record)");
            continue;
        };
        if r["fixup_kfunc_btf_id"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
            || r["func_info_cnt"].as_u64().unwrap_or(0) != 0
        {
            skip("needs BTF (kfunc ids or func_info)");
            continue;
        }
        let mut fixups = Vec::new();
        let mut supported = true;
        for (name, idxs) in r["fixups"].as_object().into_iter().flatten() {
            supported &= fixup_map(name).is_some();
            let slots = idxs
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i.as_u64().map(|i| i as usize))
                .collect();
            fixups.push((name.clone(), slots));
        }
        if !supported {
            skip("map fixup needing BTF (map_kptr)");
            continue;
        }
        let raw: Vec<RawInsn> = insns
            .iter()
            .map(|h| {
                let bytes = hex::decode(h.as_str().unwrap_or("")).expect("insn hex");
                RawInsn::from_bytes(bytes.try_into().expect("8 bytes per insn"))
            })
            .collect();
        let runs = r["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|run| {
                let retval = run["retval"].as_u64().unwrap_or(0);
                let data = hex::decode(run["data"].as_str().unwrap_or("")).expect("data hex");
                (retval, data)
            })
            .collect();
        out.push(Record {
            descr: format!(
                "{}#{} {}",
                r["file"].as_str().unwrap_or("?"),
                r["index"],
                r["descr"].as_str().unwrap_or("")
            ),
            prog_type,
            expected_attach_type: r["expected_attach_type"].as_u64().unwrap_or(0) as u32,
            flags: r["flags"].as_u64().unwrap_or(0) as u32,
            raw,
            fixups,
            runs,
        });
    }
    (out, skipped)
}

/// The program in the kernel, with its fixup maps (kept alive with it).
struct KernelProgram {
    prog: hw_tests::kernel::LoadedProgram,
    _maps: Vec<MapFd>,
}

fn load_in_kernel(rec: &Record) -> Result<KernelProgram, String> {
    let mut raw = rec.raw.clone();
    let mut maps = Vec::new();
    for (name, slots) in &rec.fixups {
        let def = fixup_map(name).ok_or(format!("unsupported fixup {name}"))?;
        let map = MapFd::create(&MapSpec::from_def(&def)).map_err(|e| e.to_string())?;
        if let Some(value) = prefill(name) {
            map.update(&0u32.to_le_bytes(), &value, 0)
                .map_err(|e| e.to_string())?;
        }
        for &s in slots {
            // The lddw already carries its pseudo source (map fd or map value); the fixup
            // writes the descriptor into its immediate, as test_verifier does.
            let insn = raw
                .get_mut(s)
                .ok_or(format!("fixup slot {s} out of range"))?;
            insn.imm = map.raw();
        }
        maps.push(map);
    }
    let opts = LoadOptions {
        prog_flags: prog_flags(rec.flags),
        expected_attach_type: rec.expected_attach_type,
        ..LoadOptions::default()
    };
    let prog_type = if rec.prog_type == 0 { 1 } else { rec.prog_type };
    let prog = load_program(&raw, prog_type, &opts).map_err(|e| e.to_string())?;
    Ok(KernelProgram { prog, _maps: maps })
}

fn load_in_vm(rec: &Record) -> Result<Vm, String> {
    let mut insns = isa::decode_program(&rec.raw).map_err(|e| format!("decode: {e}"))?;
    let mut maps = Vec::new();
    for (name, slots) in &rec.fixups {
        let fd = maps.len() as i32;
        maps.push(fixup_map(name).ok_or(format!("unsupported fixup {name}"))?);
        for &s in slots {
            if let Some(Insn::LdImm64 { value, .. }) = insns.get_mut(s) {
                *value = match *value {
                    LdImm64::MapValue { off, .. } => LdImm64::MapValue { fd, off },
                    _ => LdImm64::MapFd(fd),
                };
            }
        }
    }
    let program = Program {
        name: rec.descr.clone(),
        section: None,
        prog_type: ProgType::from_kernel_number(rec.prog_type),
        insns,
        maps,
    };
    let mut vm = Vm::new(&program, VmConfig::default()).map_err(|e| format!("load: {e}"))?;
    for (fd, (name, _)) in rec.fixups.iter().enumerate() {
        if let (Some(value), Some(map)) = (prefill(name), vm.maps_mut().get_mut(fd)) {
            map.user_update(&0u32.to_le_bytes(), &value, 0)
                .map_err(|e| format!("prefill {name}: {e:?}"))?;
        }
    }
    Ok(vm)
}

#[test]
fn kernel_and_vm_core_agree_on_selftest_retvals() {
    require_kernel!("kernel_and_vm_core_agree_on_selftest_retvals");
    let (records, skipped) = records();
    let (mut compared, mut agree, mut pointer, mut kernel_is_recorded) = (0, 0, 0, 0);
    let (mut packets_equal, mut packet_diffs) = (0, Vec::<String>::new());
    let mut mismatches = Vec::new();
    let mut kernel_refused = Vec::new();
    for rec in &records {
        let kp = match load_in_kernel(rec) {
            Ok(p) => p,
            Err(e) => {
                kernel_refused.push(format!("{}: {e}", rec.descr));
                continue;
            }
        };
        let mut vm = load_in_vm(rec);
        for (recorded, data) in &rec.runs {
            if *recorded == POINTER_VALUE {
                pointer += 1;
                continue;
            }
            let (kernel, kernel_packet) = match test_run(&kp.prog.fd, data, None, 1) {
                Ok(r) => (r.retval, r.data_out),
                Err(e) => {
                    kernel_refused.push(format!("{}: test run: {e}", rec.descr));
                    continue;
                }
            };
            compared += 1;
            if u64::from(kernel) == *recorded {
                kernel_is_recorded += 1;
            }
            let ours = match vm.as_mut() {
                Ok(vm) => vm
                    .run(data)
                    .map(|o| (o.retval32(), o.packet))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            };
            if let Ok((_, packet)) = &ours {
                if *packet == kernel_packet {
                    packets_equal += 1;
                } else {
                    packet_diffs.push(format!(
                        "{}: kernel {}, vm-core {}",
                        rec.descr,
                        hex::encode(&kernel_packet),
                        hex::encode(packet)
                    ));
                }
            }
            match ours.map(|(v, _)| v) {
                Ok(v) if v == kernel => agree += 1,
                Ok(v) => mismatches.push(format!(
                    "{}: kernel {kernel:#x}, vm-core {v:#x}, data {}",
                    rec.descr,
                    hex::encode(data)
                )),
                Err(e) => mismatches.push(format!(
                    "{}: kernel {kernel:#x}, vm-core error {e}, data {}",
                    rec.descr,
                    hex::encode(data)
                )),
            }
        }
    }
    println!(
        "kernel vs vm-core retval agreement: {agree} of {compared} runs ({} programs; \
         {pointer} POINTER_VALUE runs not compared; live kernel = recorded retval on {kernel_is_recorded} of {compared})",
        records.len()
    );
    println!(
        "packet after the run (BPF_PROG_TEST_RUN data_out vs vm-core): equal on {packets_equal} of {compared}"
    );
    for d in &packet_diffs {
        println!("  PACKET DIFFERS {d}");
    }
    for (why, n) in &skipped {
        println!("  skipped {n:>4} records: {why}");
    }
    for k in &kernel_refused {
        println!("  KERNEL REFUSED {k}");
    }
    for m in &mismatches {
        println!("  MISMATCH {m}");
    }
    assert!(
        records.len() >= 200,
        "expected at least 200 runnable records, found {}",
        records.len()
    );
    assert!(
        kernel_refused.is_empty(),
        "{} records the 6.12 tables accept were refused by this kernel:\n{}",
        kernel_refused.len(),
        kernel_refused.join("\n")
    );
    assert!(
        mismatches.is_empty(),
        "{} of {compared} runs disagree:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(
        packet_diffs.is_empty(),
        "{} of {compared} runs leave a different packet:\n{}",
        packet_diffs.len(),
        packet_diffs.join("\n")
    );
}
