//! Linux selftests (test_verifier tables, 6.12; FORMATS.md §5a) through our verifier: for
//! every record of a program type we model (socket filter, tc, xdp) whose maps we can create,
//! our accept/reject must agree with the kernel's recorded verdict (privileged), and for
//! rejections the expected error substrings should appear in our log.
//!
//! The numbers are printed per source file, with every disagreement, and ratcheted: the test
//! fails if agreement drops below what this crate achieved when the ratchet was last raised.

use std::collections::BTreeMap;

use serde_json::Value;
use verifier::{VerifyOptions, verify_raw};
use vm_core::{MapDef, MapType, ProgType, RawInsn};

/// Verdict agreement achieved (records); raise when the verifier improves.
const MIN_AGREE: usize = 366;
/// Rejections (agreeing) whose expected kernel substrings appear in our log.
const MIN_ERRSTR: usize = 143;
/// `VERBOSE_ACCEPT` records whose expected level-2 log text appears in ours.
const MIN_VERBOSE: usize = 2;

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
    Some(match name {
        "map_hash_8b" => def(MapType::Hash, 8, 8, 1, 1),
        "map_hash_48b" => def(MapType::Hash, 8, 48, 1, 0),
        "map_array_48b" => def(MapType::Array, 4, 48, 1, 0),
        "map_array_small" => def(MapType::Array, 4, 1, 1, 0),
        "map_event_output" => def(MapType::PerfEventArray, 4, 4, 1, 0),
        "map_ringbuf" => def(MapType::Ringbuf, 0, 0, 4096, 0),
        _ => return None,
    })
}

struct Case {
    /// Slots holding a map reference, with the index into `maps` they name.
    fixups: Vec<(usize, usize)>,
    file: String,
    descr: String,
    prog_type: ProgType,
    raw: Vec<RawInsn>,
    maps: Vec<MapDef>,
    expect_accept: bool,
    /// `VERBOSE_ACCEPT`: accepted, and `errstr` must appear in the level-2 log.
    verbose: bool,
    errstr: Option<String>,
    opts: VerifyOptions,
}

fn cases() -> (Vec<Case>, BTreeMap<String, usize>) {
    let path = vm_core::corpus::require("linux-selftests-verifier/test_verifier-6.12.117.jsonl");
    let text = std::fs::read_to_string(&path).expect("read selftests JSONL");
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let r: Value = serde_json::from_str(line).expect("JSONL record");
        let mut skip = |why: &str| *skipped.entry(why.to_string()).or_default() += 1;
        let pt = r["prog_type"].as_u64().unwrap_or(u64::MAX);
        if !matches!(pt, 0 | 1 | 3 | 6) {
            skip("program type not modelled");
            continue;
        }
        let Some(insns) = r["insns"].as_array() else {
            skip("generated program (no insns in the JSONL)");
            continue;
        };
        if r["fixup_kfunc_btf_id"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
            || r["func_info_cnt"].as_u64().unwrap_or(0) != 0
        {
            skip("needs kernel BTF (kfuncs, func_info)");
            continue;
        }
        let mut raw: Vec<RawInsn> = insns
            .iter()
            .map(|h| {
                let bytes = hex::decode(h.as_str().unwrap_or("")).expect("insn hex");
                RawInsn::from_bytes(bytes.try_into().expect("8 bytes"))
            })
            .collect();
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
                for idx in idxs.as_array().into_iter().flatten() {
                    let i = idx.as_u64().unwrap_or(0) as usize;
                    if let Some(slot) = raw.get_mut(i) {
                        slot.imm = fd;
                        fixups.push((i, fd as usize));
                    }
                }
            }
        }
        if unsupported {
            skip("map fixup needs BTF (map_kptr)");
            continue;
        }
        let flags = r["flags"].as_u64().unwrap_or(0);
        let opts = VerifyOptions {
            log_level: 1,
            privileged: true,
            strict_alignment: flags & 2 != 0,
            test_state_freq: flags & 8 != 0,
        };
        out.push(Case {
            fixups,
            file: r["file"].as_str().unwrap_or("?").to_string(),
            descr: r["descr"].as_str().unwrap_or("?").to_string(),
            prog_type: ProgType::from_kernel_number(pt as u32),
            raw,
            maps,
            expect_accept: r["result"].as_str() != Some("REJECT"),
            verbose: r["result"].as_str() == Some("VERBOSE_ACCEPT"),
            errstr: r["errstr"].as_str().map(str::to_string),
            opts,
        });
    }
    (out, skipped)
}

/// Whether the tab-separated substrings all appear, in order, in `log`.
fn errstr_found(errstr: &str, log: &str) -> bool {
    let mut rest = log;
    for part in errstr.split('\t') {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[test]
fn selftests_agree_with_the_kernel() {
    let (cases, skipped) = cases();
    assert!(cases.len() > 300, "expected the JSONL to yield >300 cases");
    let mut agree = 0;
    let mut per_file: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut disagreements: Vec<String> = Vec::new();
    let (mut rej_total, mut rej_found) = (0, 0);
    let (mut verbose_total, mut verbose_found) = (0, 0);
    let mut errstr_missing: Vec<String> = Vec::new();
    for c in &cases {
        let res = verify_raw(&c.raw, c.prog_type, &c.maps, &c.opts, None);
        let ours = res.is_ok();
        let e = per_file.entry(c.file.clone()).or_default();
        e.1 += 1;
        if ours == c.expect_accept {
            agree += 1;
            e.0 += 1;
        } else {
            let why = match &res {
                Ok(_) => "we accept".to_string(),
                Err(r) => format!("we reject: {}", r.error),
            };
            disagreements.push(format!(
                "  {} / {}: kernel {} ; {}",
                c.file,
                c.descr,
                if c.expect_accept {
                    "accepts"
                } else {
                    "rejects"
                },
                why
            ));
        }
        if c.verbose
            && let Some(es) = c.errstr.as_deref()
        {
            let opts = VerifyOptions {
                log_level: 2,
                ..c.opts.clone()
            };
            let log = match verify_raw(&c.raw, c.prog_type, &c.maps, &opts, None) {
                Ok(v) => v.log,
                Err(r) => r.log,
            };
            verbose_total += 1;
            if errstr_found(es, &log) {
                verbose_found += 1;
            } else {
                errstr_missing.push(format!("  {} / {} (level 2): want {es:?}", c.file, c.descr));
            }
        }
        if let (Err(r), false, Some(es)) = (&res, c.expect_accept, c.errstr.as_deref()) {
            rej_total += 1;
            if errstr_found(es, &r.log) {
                rej_found += 1;
            } else {
                errstr_missing.push(format!(
                    "  {} / {}: want {:?}, got {:?}",
                    c.file, c.descr, es, r.error.message
                ));
            }
        }
    }
    println!("skipped records: {skipped:?}");
    println!("per file (agree/total):");
    for (f, (a, t)) in &per_file {
        println!("  {f}: {a}/{t}");
    }
    println!("disagreements ({}):", disagreements.len());
    for d in &disagreements {
        println!("{d}");
    }
    println!("expected error text missing ({}):", errstr_missing.len());
    for d in &errstr_missing {
        println!("{d}");
    }
    println!(
        "SELFTESTS: verdict agreement {agree}/{} ({:.1}%); expected errstr found in {rej_found}/{rej_total} agreeing rejections; level-2 log text found for {verbose_found}/{verbose_total} VERBOSE_ACCEPT records",
        cases.len(),
        100.0 * agree as f64 / cases.len() as f64
    );
    assert!(
        agree >= MIN_AGREE,
        "verdict agreement dropped: {agree} < {MIN_AGREE}"
    );
    assert!(
        rej_found >= MIN_ERRSTR,
        "errstr matches dropped: {rej_found} < {MIN_ERRSTR}"
    );
    assert!(
        verbose_found >= MIN_VERBOSE,
        "level-2 log matches dropped: {verbose_found} < {MIN_VERBOSE}"
    );
}

/// The same records against the running kernel: the verdict and, for rejections, the errno
/// class must match ours (the JSONL records only the verdict).
#[test]
fn selftests_errno_matches_the_kernel() {
    use hw_tests::kernel::{LoadOptions, MapFd, MapSpec, flags, kernel_or_skip, load_program};
    if !kernel_or_skip("selftests_errno_matches_the_kernel") {
        return;
    }
    let (cases, _) = cases();
    let (mut verdicts, mut both_rejected, mut errno_same, mut total) = (0, 0, 0, 0);
    let mut diffs = Vec::new();
    for c in &cases {
        let mut fds = Vec::new();
        let mut ok = true;
        for m in &c.maps {
            match MapFd::create(&MapSpec::from_def(m)) {
                Ok(fd) => fds.push(fd),
                Err(_) => ok = false,
            }
        }
        if !ok {
            continue;
        }
        let mut raw = c.raw.clone();
        for &(slot, map) in &c.fixups {
            raw[slot].imm = fds[map].raw();
        }
        let mut prog_flags = 0;
        if c.opts.strict_alignment {
            prog_flags |= flags::STRICT_ALIGNMENT;
        }
        if c.opts.test_state_freq {
            prog_flags |= flags::TEST_STATE_FREQ;
        }
        let opts = LoadOptions {
            prog_flags,
            ..LoadOptions::default()
        };
        let kernel = load_program(&raw, c.prog_type.kernel_number(), &opts);
        let ours = verify_raw(&c.raw, c.prog_type, &c.maps, &c.opts, None);
        total += 1;
        if kernel.is_ok() == ours.is_ok() {
            verdicts += 1;
        }
        if let (Err(k), Err(o)) = (&kernel, &ours) {
            both_rejected += 1;
            if k.errno == o.error.errno.code() {
                errno_same += 1;
            } else {
                diffs.push(format!(
                    "  {} / {}: kernel {} {:?}; ours {}",
                    c.file, c.descr, k.errno, k.first_error_line, o.error
                ));
            }
        }
    }
    for d in &diffs {
        println!("{d}");
    }
    println!(
        "SELFTESTS vs live kernel: verdict {verdicts}/{total}; errno class equal in {errno_same}/{both_rejected} common rejections"
    );
    assert!(
        verdicts >= MIN_AGREE,
        "verdicts against the live kernel dropped"
    );
    assert_eq!(errno_same, both_rejected, "errno classes differ");
}
