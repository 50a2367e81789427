//! Deviations from cli-contract.md found by an adversarial audit of the built binary; each
//! test pins one fixed defect.

use serde_json::Value;

mod common;
use common::offload;

fn tmp(name: &str) -> String {
    common::scratch("contract-audit", name)
        .to_str()
        .expect("utf-8")
        .to_string()
}

fn corpus(rel: &str) -> String {
    vm_core::corpus::require(rel)
        .to_str()
        .expect("utf-8")
        .to_string()
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object: {e}\n{stdout}"))
}

/// Contract, exit codes: for `verify` and `compile` a bad encoding is a rejection (exit 1, with
/// a pc), also inside an ELF object. It used to be exit 2 because the loader refused the object.
#[test]
fn elf_program_with_a_bad_encoding_is_rejected_with_its_pc() {
    let obj = corpus("ebpf-samples/invalid/invalid-lddw.o");
    let (code, out, err) = offload(&["verify", "--json", &obj]);
    assert_eq!(code, 1, "{err}");
    let v = json(&out);
    assert_eq!(v["accepted"], false);
    assert_eq!(v["pc"], 1);
    assert_eq!(v["errno"], "EINVAL");
    let (code, out, err) = offload(&["compile", "--json", &obj]);
    assert_eq!(code, 1, "{err}");
    let v = json(&out);
    assert_eq!(v["offloadable"], false);
    assert_eq!(v["reasons"][0]["pc"], 1);
    // run and disasm: an invalid encoding stays bad input, naming the section.
    let (code, _, err) = offload(&["disasm", &obj]);
    assert_eq!(code, 2);
    assert!(
        err.contains("section `.text`") && err.contains("insn 1"),
        "{err}"
    );
}

/// `--section` picks one program; another program of the same object that the loader refuses
/// (here an extern `__kconfig` symbol) used to make every section unusable.
#[test]
fn section_picks_a_program_beside_one_that_does_not_load() {
    let obj = corpus("cilium-ebpf/testdata/loader-clang-17-el.elf");
    let (code, _, err) = offload(&["verify", &obj, "--section", "xdp"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = offload(&["verify", &obj, "--section", "socket/2"]);
    assert_eq!(code, 2);
    assert!(err.contains("MY_CONST"), "{err}");
    let (code, _, err) = offload(&["verify", &obj]);
    assert_eq!(code, 2);
    assert!(
        err.contains("socket/2 (asm_relocation, does not load"),
        "{err}"
    );
}

/// Contract, `run` JSON: `retval` is the full 64-bit r0 for every program type; `diff`
/// shows each engine's retval as the kernel reports it (low 32 bits for XDP and tc), so the
/// interpreter's and the kernel's values read alike.
#[test]
fn run_reports_full_r0_and_diff_the_kernels_view() {
    let s = tmp("minus-one.s");
    std::fs::write(&s, "mov %r0, -1\nexit\n").expect("write");
    for (t, want) in [("xdp", u64::MAX), ("tc", u64::MAX), ("mem", u64::MAX)] {
        let (code, out, err) = offload(&["run", &s, "--type", t, "--json"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(json(&out)["retval"], want, "--type {t}");
    }
    let (code, out, err) = offload(&["diff", &s, "--against", "sim", "--random", "1", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        json(&out)["sample"]["results"]["interp"]["retval"],
        u64::from(u32::MAX)
    );
}

/// `--packet` on a mem program was silently ignored (the run used `-- mem` or nothing), as
/// `--mem` on an XDP program is refused.
#[test]
fn packet_on_a_mem_program_is_bad_input() {
    let s = tmp("ok-mem.s");
    std::fs::write(&s, "mov %r0, 2\nexit\n").expect("write");
    let (code, out, err) = offload(&["run", &s, "--type", "mem", "--packet", &s]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("--packet"), "{err}");
}

/// Contract, `run` JSON: `ns_per_run` comes "with --repeat", also `--repeat 1`.
#[test]
fn ns_per_run_is_present_whenever_repeat_is_given() {
    let s = tmp("ok-repeat.s");
    std::fs::write(&s, "mov %r0, 2\nexit\n").expect("write");
    let (code, out, _) = offload(&["run", &s, "--repeat", "1", "--json"]);
    assert_eq!(code, 0);
    assert!(json(&out)["ns_per_run"].is_f64(), "{out}");
    let (_, out, _) = offload(&["run", &s, "--json"]);
    assert!(json(&out).get("ns_per_run").is_none(), "{out}");
}

/// Contract, exit 2: the error names the location; `asm` of non-UTF-8 text gave none.
#[test]
fn asm_of_non_utf8_names_the_byte_offset() {
    let s = tmp("latin1.s");
    std::fs::write(&s, b"mov %r0, 2\n\xe9xit\n").expect("write");
    let (code, _, err) = offload(&["asm", &s, "-o", &tmp("latin1.bin")]);
    assert_eq!(code, 2);
    assert!(err.contains("byte offset 11"), "{err}");
}

/// Contract, `compile` JSON: `ebpf_insns` counts the program's slots, also when one of them
/// does not decode (it was 0).
#[test]
fn compile_counts_the_slots_of_a_program_that_does_not_decode() {
    let s = tmp("r11.s");
    std::fs::write(&s, "mov %r0, 0\nmov %r11, 1\nexit\n").expect("write");
    let (code, out, err) = offload(&["compile", &s, "--json"]);
    assert_eq!(code, 1, "{err}");
    let v = json(&out);
    assert_eq!(v["ebpf_insns"], 3);
    assert_eq!(v["reasons"][0]["pc"], 1);
}
