//! Small programs whose walk depends on one pruning or precision rule, with the kernel's
//! processed-instruction count (Linux 6.18, measured as root) written next to each. Our count
//! must equal it; where `bpf()` works the running kernel is asked too and must agree, so a
//! wrong expectation shows up as well as a wrong walk. Where `bpf()` is refused the kernel
//! half prints `KERNEL ORACLE SKIPPED:` and the test keeps checking our side.
//!
//! Each case is one rule that made our counts differ from the kernel's on corpus programs.

use hw_tests::kernel::{LoadOptions, kernel_or_skip, load_vm_program, log_level};
use verifier::{VerifyOptions, verify};
use vm_core::{MapDef, MapType, ProgType, Program};

struct Case {
    name: &'static str,
    asm: &'static str,
    prog_type: ProgType,
    maps: fn() -> Vec<MapDef>,
    /// The kernel's `processed N insns`.
    processed: u64,
}

fn prog_array() -> Vec<MapDef> {
    vec![MapDef {
        name: "jmp_table".to_string(),
        map_type: MapType::ProgArray,
        key_size: 4,
        value_size: 4,
        max_entries: 8,
        flags: 0,
        initial_value: None,
    }]
}

/// A constant tail-call index inside the program array makes R3 precise (the kernel's
/// `record_func_key`), so the second path, reaching the call's stored state with another
/// index, is walked to the end instead of pruned (sockex3_kern.o `bpf_func_PARSE_MPLS`).
const TAIL_CALL_CONST_KEY: &str = "
    mov r6, r1
    call get_prandom_u32
    jeq r0, 0, other
    mov r1, r6
    lddw r2, map_fd 0
    mov r3, 4
    ja call
other:
    mov r1, r6
    lddw r2, map_fd 0
    mov r3, 2
call:
    call tail_call
    mov r0, 0
    exit
";

/// The same with an index past `max_entries`: no precision, so the second path is pruned.
const TAIL_CALL_KEY_OUT_OF_RANGE: &str = "
    mov r6, r1
    call get_prandom_u32
    jeq r0, 0, other
    mov r1, r6
    lddw r2, map_fd 0
    mov r3, 9
    ja call
other:
    mov r1, r6
    lddw r2, map_fd 0
    mov r3, 10
call:
    call tail_call
    mov r0, 0
    exit
";

fn hash_map() -> Vec<MapDef> {
    vec![MapDef {
        name: "hash".to_string(),
        map_type: MapType::Hash,
        key_size: 8,
        value_size: 8,
        max_entries: 8,
        flags: 0,
        initial_value: None,
    }]
}

/// A map pointer is never NULL (the kernel's `reg_not_null` lists `CONST_PTR_TO_MAP`), so
/// comparing it with 0 is decided and the NULL edge is not walked
/// (xdp_ddos01_blacklist_kern.o `xdp_program`, insn 109).
const MAP_PTR_NULL_CHECK: &str = "
    lddw r1, map_fd 0
    jeq r1, 0, out
    mov r0, 1
    exit
out:
    mov r0, 2
    exit
";

fn no_maps() -> Vec<MapDef> {
    Vec::new()
}

/// `s>>= 63` then `&=` a constant: the kernel walks `dst` = -1 and `dst` = 0 separately
/// (`maybe_fork_scalars`), so both compares after it are decided on each path
/// (bpf_lxc-DDROP_ALL.o `tail_handle_arp`, insn 151).
const SIGN_MASK_AND: &str = "
    call get_prandom_u32
    lsh r0, 32
    arsh r0, 63
    and r0, -141
    jeq r0, 0, out
    jeq r0, -141, out
    mov r0, 7
    exit
out:
    mov r0, 0
    exit
";

/// The 32-bit form with OR: the split is on the low half, and the pushed path re-executes
/// the OR with 0 (so it gets 5, not 0).
const SIGN_MASK_OR32: &str = "
    call get_prandom_u32
    mov32 r1, r0
    arsh32 r1, 31
    or32 r1, 5
    jeq r1, 5, out
    jeq32 r1, -1, out
    mov r0, 7
    exit
out:
    mov r0, 0
    exit
";

/// A tail call that returns leaves packet pointers valid: the load after it is accepted
/// (bpf_lxc-DUNKNOWN.o `handle_ingress` keeps `R7=pkt(r=62)` across `call bpf_tail_call`).
const TAIL_CALL_KEEPS_PACKET: &str = "
    mov r6, r1
    ldxw r7, [r1+0]
    ldxw r8, [r1+4]
    mov r2, r7
    add r2, 8
    jgt r2, r8, out
    mov r1, r6
    lddw r2, map_fd 0
    mov r3, 0
    call tail_call
    ldxb r0, [r7+0]
    exit
out:
    mov r0, 0
    exit
";

/// Precision cannot follow R0 back through a legacy packet load: every scalar of the stored
/// states becomes precise, so the second path reaching `join` with another R8 is walked
/// instead of pruned (bpf_lxc_jit.o `tail_handle_ipv6`). Before the load every register is
/// live (the kernel's liveness gives `ld_abs` no known uses).
const LD_ABS_PRECISION: &str = "
    mov r6, r1
    call get_prandom_u32
    mov r8, r0
    call get_prandom_u32
    jeq r0, 0, join
    mov r8, 7
    ja join
join:
    mov r0, 0
    ldabsb 0
    and r0, 1
    jeq r0, 2, bad
    mov r0, r8
    exit
bad:
    mov r0, 1
    exit
";

/// `bpf_fib_lookup` reads and writes back its parameter block: spilled zeros there become
/// data, so the compare after the call is not decided (bpf_xdp_dsr_linux.o
/// `tail_nodeport_ipv4_dsr`, insn 606).
const FIB_LOOKUP_CLOBBERS: &str = "
    mov r6, r1
    mov r1, 0
    stxdw [r10-8], r1
    stxdw [r10-16], r1
    stxdw [r10-24], r1
    stxdw [r10-32], r1
    stxdw [r10-40], r1
    stxdw [r10-48], r1
    stxdw [r10-56], r1
    stxdw [r10-64], r1
    mov r1, r6
    mov r2, r10
    add r2, -64
    mov r3, 64
    mov r4, 0
    call fib_lookup
    ldxdw r1, [r10-64]
    mov r0, 0
    jeq r1, 0, out
    mov r0, 1
out:
    exit
";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "tail_call_const_key",
            asm: TAIL_CALL_CONST_KEY,
            prog_type: ProgType::SocketFilter,
            maps: prog_array,
            processed: 16,
        },
        Case {
            name: "tail_call_key_out_of_range",
            asm: TAIL_CALL_KEY_OUT_OF_RANGE,
            prog_type: ProgType::SocketFilter,
            maps: prog_array,
            processed: 14,
        },
        Case {
            name: "map_ptr_null_check",
            asm: MAP_PTR_NULL_CHECK,
            prog_type: ProgType::SocketFilter,
            maps: hash_map,
            processed: 4,
        },
        Case {
            name: "sign_mask_and",
            asm: SIGN_MASK_AND,
            prog_type: ProgType::SocketFilter,
            maps: no_maps,
            processed: 12,
        },
        Case {
            name: "sign_mask_or32",
            asm: SIGN_MASK_OR32,
            prog_type: ProgType::SocketFilter,
            maps: no_maps,
            processed: 12,
        },
        Case {
            name: "tail_call_keeps_packet_pointers",
            asm: TAIL_CALL_KEEPS_PACKET,
            prog_type: ProgType::Xdp,
            maps: prog_array,
            processed: 14,
        },
        Case {
            name: "ld_abs_precision_falls_back",
            asm: LD_ABS_PRECISION,
            prog_type: ProgType::SocketFilter,
            maps: no_maps,
            processed: 19,
        },
        Case {
            name: "fib_lookup_clobbers_stack",
            asm: FIB_LOOKUP_CLOBBERS,
            prog_type: ProgType::SchedCls,
            maps: no_maps,
            processed: 22,
        },
    ]
}

fn program(c: &Case) -> Program {
    let raw = vm_core::asm::assemble(c.asm).unwrap_or_else(|e| panic!("{}: assemble: {e}", c.name));
    let mut p = Program::from_raw(c.name, c.prog_type, &raw)
        .unwrap_or_else(|e| panic!("{}: decode: {e}", c.name));
    p.maps = (c.maps)();
    p
}

#[test]
fn processed_counts_match_the_kernel() {
    let with_kernel = kernel_or_skip("processed_counts_match_the_kernel");
    let mut failures = Vec::new();
    for c in cases() {
        let p = program(&c);
        let opts = VerifyOptions {
            log_level: 2,
            ..VerifyOptions::default()
        };
        let (ours, our_log) = match verify(&p, &opts) {
            Ok(v) => (v.processed_insns, v.log),
            Err(r) => {
                failures.push(format!("{}: we rejected: {}\n{}", c.name, r.error, r.log));
                continue;
            }
        };
        if ours != c.processed {
            failures.push(format!(
                "{}: ours {ours}, expected {}\n{our_log}",
                c.name, c.processed
            ));
        }
        if !with_kernel {
            continue;
        }
        let lo = LoadOptions {
            log_level: log_level::BASIC | log_level::VERBOSE | log_level::STATS,
            ..LoadOptions::default()
        };
        match load_vm_program(&p, &lo) {
            Ok(l) => {
                let k = l.prog.stats.insns_processed.unwrap_or(0);
                if k != c.processed {
                    failures.push(format!(
                        "{}: kernel {k}, expected {}\n{}",
                        c.name, c.processed, l.prog.log
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: kernel refused: {e:?}", c.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
