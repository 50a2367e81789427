//! One test per memory-related reason category: pointer kinds, stack, map values, atomics,
//! helper pointer arguments, map definitions and packet reach.

use vm_core::{MapType, ProgType};

use super::tests::{OUT, PKT1, expect, map, offloadable, prog, run};
use super::{category as cat, check};
use crate::NicLimits;

/// Looks up key 0 (at fp-4) in map 0; r0 = the value, or jumps to `out` when absent.
const LOOKUP: &str = "mov r6, 0\nstxw [r10-4], r6\nlddw r1, map_fd 0\nmov r2, r10\nadd r2, -4\ncall 1\njeq r0, 0, out\n";

fn array() -> Vec<vm_core::MapDef> {
    vec![map(MapType::Array, 4, 8, 4)]
}

#[test]
fn packet_metadata_is_not_reachable() {
    let f = run(
        "ldxw r2, [r1+8]\nldxw r3, [r1+0]\nmov r4, r2\nadd r4, 4\njgt r4, r3, out\nldxw r0, [r2+0]\nmov r0, 2\nexit\nout:\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![],
    );
    assert_eq!(
        expect(&f, cat::PTR_TYPE),
        "[nfp] unsupported ptr type: pkt_meta"
    );
    expect(&f, cat::CTX_FIELD);
}

#[test]
fn one_instruction_must_see_one_pointer_kind() {
    let f = run(
        &format!(
            "mov r6, 0\nstxdw [r10-8], r6\n{PKT1}mov r7, r10\nadd r7, -8\njeq r5, 1, use\nmov r7, r2\nuse:\nldxb r0, [r7+0]\nmov r0, 2\nexit\n{OUT}"
        ),
        ProgType::Xdp,
        vec![],
    );
    let m = expect(&f, cat::PTR_TYPE_CHANGED);
    assert!(
        m.starts_with("[nfp] ptr type changed for instruction"),
        "{m}"
    );
}

#[test]
fn stack_accesses_need_a_constant_offset() {
    let f = run(
        &format!(
            "mov r6, 0\nstxdw [r10-8], r6\nstxdw [r10-16], r6\n{PKT1}and r5, 7\nmov r7, r10\nadd r7, -16\nadd r7, r5\nldxb r0, [r7+0]\nmov r0, 2\nexit\n{OUT}"
        ),
        ProgType::Xdp,
        vec![],
    );
    assert!(expect(&f, cat::STACK_VAR_OFFSET).starts_with("[nfp] variable ptr stack access"));
}

#[test]
fn stack_accesses_keep_their_word_alignment_across_paths() {
    let f = run(
        &format!(
            "mov r6, 0\nstxdw [r10-8], r6\n{PKT1}mov r7, r10\nadd r7, -8\njeq r5, 1, use\nmov r7, r10\nadd r7, -6\nuse:\nldxb r0, [r7+0]\nmov r0, 2\nexit\n{OUT}"
        ),
        ProgType::Xdp,
        vec![],
    );
    let m = expect(&f, cat::STACK_LOCATION_CHANGED);
    assert!(
        m.starts_with("[nfp] stack access changed location was:"),
        "{m}"
    );
    // Moving by whole words is fine.
    let f = run(
        &format!(
            "mov r6, 0\nstxdw [r10-8], r6\n{PKT1}mov r7, r10\nadd r7, -8\njeq r5, 1, use\nmov r7, r10\nadd r7, -4\nuse:\nldxb r0, [r7+0]\nmov r0, 2\nexit\n{OUT}"
        ),
        ProgType::Xdp,
        vec![],
    );
    offloadable(&f);
}

#[test]
fn immediate_stores_only_to_the_packet() {
    let f = run("stw [r10-4], 0\nmov r0, 2\nexit", ProgType::Xdp, vec![]);
    expect(&f, cat::STORE_IMM);
    let f = run(
        &format!("{PKT1}stb [r2+0], 1\nmov r0, 2\nexit\n{OUT}"),
        ProgType::Xdp,
        vec![],
    );
    offloadable(&f);
}

#[test]
fn map_values_are_read_only() {
    let f = run(
        &format!("{LOOKUP}mov r1, 1\nstxw [r0+0], r1\n{OUT}"),
        ProgType::Xdp,
        array(),
    );
    assert_eq!(expect(&f, cat::MAP_WRITE), "[nfp] map writes not supported");
    let f = run(
        &format!("{LOOKUP}ldxdw r1, [r0+0]\n{OUT}"),
        ProgType::Xdp,
        array(),
    );
    offloadable(&f);
}

#[test]
fn map_value_reads_need_a_constant_offset() {
    let f = run(
        &format!("{LOOKUP}ldxw r2, [r0+0]\nand r2, 3\nadd r0, r2\nldxb r3, [r0+0]\n{OUT}"),
        ProgType::Xdp,
        array(),
    );
    assert!(expect(&f, cat::MAP_VALUE_OFFSET).contains("map value offset is variable"));
}

#[test]
fn a_map_word_is_either_read_or_an_atomic_counter() {
    let f = run(
        &format!("{LOOKUP}ldxw r2, [r0+0]\nmov r1, 1\nlock add32 [r0+0], r1\n{OUT}"),
        ProgType::Xdp,
        array(),
    );
    let m = expect(&f, cat::MAP_VALUE_USE_CONFLICT);
    assert_eq!(m, "[nfp] map value use type conflict read vs atomic off: 0");
    // Different words: fine.
    let f = run(
        &format!("{LOOKUP}ldxw r2, [r0+4]\nmov r1, 1\nlock add32 [r0+0], r1\n{OUT}"),
        ProgType::Xdp,
        array(),
    );
    offloadable(&f);
}

#[test]
fn atomic_counters_must_be_initialised_to_zero() {
    let update = "mov r6, 0\nstxw [r10-4], r6\nmov r6, 5\nstxdw [r10-16], r6\nlddw r1, map_fd 0\nmov r2, r10\nadd r2, -4\nmov r3, r10\nadd r3, -16\nmov r4, 0\ncall 2\n";
    let f = run(
        &format!("{update}{LOOKUP}mov r1, 1\nlock add [r0+0], r1\n{OUT}"),
        ProgType::Xdp,
        array(),
    );
    let m = expect(&f, cat::MAP_ATOMIC_INIT);
    assert!(m.contains("may already be initialized to non-zero"), "{m}");
    let zero = update.replace("mov r6, 5", "mov r6, 0");
    let f = run(
        &format!("{zero}{LOOKUP}mov r1, 1\nlock add [r0+0], r1\n{OUT}"),
        ProgType::Xdp,
        array(),
    );
    offloadable(&f);
}

#[test]
fn only_plain_atomic_adds_of_scalars_to_map_values() {
    let f = run(
        &format!("{LOOKUP}mov r1, 1\nlock or [r0+0], r1\n{OUT}"),
        ProgType::Xdp,
        array(),
    );
    assert_eq!(
        expect(&f, cat::ATOMIC_OP),
        "[nfp] atomic op not implemented: 64"
    );
    let f = run(
        "mov r1, 0\nstxdw [r10-8], r1\nmov r1, 1\nlock add [r10-8], r1\nmov r0, 2\nexit",
        ProgType::Xdp,
        vec![],
    );
    assert_eq!(
        expect(&f, cat::ATOMIC_TARGET),
        "[nfp] atomic add not to a map value pointer: fp"
    );
    let f = run(
        &format!("{LOOKUP}lock add [r0+0], r10\n{OUT}"),
        ProgType::Xdp,
        array(),
    );
    if f.rejected.is_none() {
        assert_eq!(
            expect(&f, cat::ATOMIC_SRC),
            "[nfp] atomic add not of a scalar: fp"
        );
    }
}

#[test]
fn map_keys_sit_at_word_aligned_stack_offsets() {
    let f = run(
        "mov r6, 0\nstxh [r10-6], r6\nstxh [r10-4], r6\nlddw r1, map_fd 0\nmov r2, r10\nadd r2, -6\ncall 1\nmov r0, 2\nexit",
        ProgType::Xdp,
        array(),
    );
    assert_eq!(
        expect(&f, cat::HELPER_ARG),
        "[nfp] map_lookup: unaligned stack pointer -6"
    );
}

#[test]
fn perf_output_needs_the_current_cpu_flag() {
    let maps = vec![map(MapType::PerfEventArray, 4, 4, 4)];
    let body = |flags: &str| {
        format!(
            "mov r6, 0\nstxdw [r10-8], r6\nlddw r2, map_fd 0\nlddw r3, {flags}\nmov r4, r10\nadd r4, -8\nmov r5, 8\ncall 25\nmov r0, 2\nexit"
        )
    };
    let f = run(&body("0xffffffff"), ProgType::Xdp, maps.clone());
    offloadable(&f);
    let f = run(&body("0"), ProgType::Xdp, maps);
    assert!(expect(&f, cat::HELPER_ARG).contains("must use BPF_F_CURRENT_CPU"));
}

#[test]
fn map_definitions_must_fit_the_firmware() {
    let cases = [
        (map(MapType::LruHash, 4, 8, 4), cat::MAP_TYPE),
        (map(MapType::Hash, 60, 4, 4), cat::MAP_KEY_SIZE),
        (map(MapType::Hash, 4, 60, 4), cat::MAP_VALUE_SIZE),
        (map(MapType::Hash, 32, 40, 4), cat::MAP_ENTRY_SIZE),
        (map(MapType::Array, 4, 8, 3_000_000), cat::MAP_ENTRIES),
        (
            vm_core::MapDef {
                flags: 1,
                ..map(MapType::Hash, 4, 8, 4)
            },
            cat::MAP_FLAGS,
        ),
    ];
    for (m, c) in cases {
        let f = run(&format!("{LOOKUP}{OUT}"), ProgType::Xdp, vec![m]);
        assert!(
            f.reasons.iter().any(|r| r.pc.is_none() && r.category == c),
            "{c}: {:#?}",
            f.reasons
        );
    }
    // Unused maps of the object do not count.
    let f = run(
        "mov r0, 2\nexit",
        ProgType::Xdp,
        vec![map(MapType::LruHash, 4, 8, 4)],
    );
    offloadable(&f);
}

#[test]
fn the_map_count_is_limited() {
    let asm = format!("lddw r1, map_fd 1\n{LOOKUP}{OUT}");
    let p = prog(&asm, ProgType::Xdp, vec![map(MapType::Array, 4, 8, 4); 2]);
    offloadable(&check(&p, &NicLimits::default()));
    let nic = NicLimits {
        max_maps: 1,
        ..NicLimits::default()
    };
    expect(&check(&p, &nic), cat::MAP_COUNT);
}

#[test]
fn packet_reach_is_bounded_by_the_ctm_split() {
    let asm = "ldxw r2, [r1+0]\nldxw r3, [r1+4]\nmov r4, r2\nadd r4, 200\njgt r4, r3, out\nldxb r0, [r2+199]\nmov r0, 2\nexit\nout:\nmov r0, 2\nexit";
    let p = prog(asm, ProgType::Xdp, vec![]);
    offloadable(&check(&p, &NicLimits::default()));
    let nic = NicLimits {
        ctm_packet_bytes: 128,
        ..NicLimits::default()
    };
    let f = check(&p, &nic);
    let m = expect(&f, cat::PACKET_OFFSET);
    assert!(
        m.contains("beyond HW packet split boundary: up to byte 200"),
        "{m}"
    );
    assert_eq!(f.reasons.first().and_then(|r| r.pc), Some(5));
}
