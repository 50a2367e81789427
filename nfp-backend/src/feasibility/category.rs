//! The stable category names of [`crate::Reason`]s found by the feasibility check.
//!
//! Why constants: reports and histograms group programs by category, and tests and other
//! stages (the CLI, benches) match on them; one spelling in one place keeps them in step.

/// The verifier itself refused the program (message = the verifier's error).
pub const VERIFIER: &str = "verifier";
/// Only XDP and tc (`sched_cls`) programs can be bound to the NIC.
pub const PROG_TYPE: &str = "prog_type";
/// The opcode is not in the JIT's table (MOD, `le*`, ISA v4 instructions, `callx`, ...).
pub const INSN_NOT_SUPPORTED: &str = "insn_not_supported";
/// A call of a kernel function by BTF id.
pub const KFUNC: &str = "kfunc";
/// `lddw` of a BTF id, a function address or a map value address (global data).
pub const LD_IMM64_PSEUDO: &str = "ld_imm64_pseudo";
/// A memory access through a pointer kind the NIC cannot reach (socket, helper memory,
/// packet metadata, ...).
pub const PTR_TYPE: &str = "ptr_type";
/// Different pointer kinds reach the same instruction on different paths.
pub const PTR_TYPE_CHANGED: &str = "ptr_type_changed";
/// A stack access at a variable offset.
pub const STACK_VAR_OFFSET: &str = "stack_var_offset";
/// A stack access whose word alignment differs between paths.
pub const STACK_LOCATION_CHANGED: &str = "stack_location_changed";
/// A store to the context (other than the XDP queue selection the firmware implements).
pub const CTX_STORE: &str = "ctx_store";
/// A context load of a field the JIT cannot translate.
pub const CTX_FIELD: &str = "ctx_field";
/// A store (non-atomic) to a map value.
pub const MAP_WRITE: &str = "map_write";
/// A map value access at a variable or out-of-bounds offset.
pub const MAP_VALUE_OFFSET: &str = "map_value_offset";
/// The same map value word is read plainly and used as an atomic counter.
pub const MAP_VALUE_USE_CONFLICT: &str = "map_value_use_conflict";
/// An atomic counter word that `bpf_map_update_elem` may initialise to non-zero.
pub const MAP_ATOMIC_INIT: &str = "map_atomic_init";
/// An immediate store (`BPF_ST`) to memory other than the packet.
pub const STORE_IMM: &str = "store_imm";
/// An atomic operation other than a plain 32/64-bit add.
pub const ATOMIC_OP: &str = "atomic_op";
/// An atomic add whose target is not a map value.
pub const ATOMIC_TARGET: &str = "atomic_target";
/// An atomic add whose operand is not a scalar.
pub const ATOMIC_SRC: &str = "atomic_src";
/// A multiplication whose operands may exceed 32 bits.
pub const MUL_RANGE: &str = "mul_range";
/// A division whose dividend or divisor may exceed 32 bits.
pub const DIV_RANGE: &str = "div_range";
/// A division by a register that is not the same constant on every path.
pub const DIV_NOT_CONST: &str = "div_not_const";
/// A division by a negative immediate.
pub const DIV_NEGATIVE: &str = "div_negative";
/// A helper the JIT does not implement.
pub const HELPER_UNSUPPORTED: &str = "helper_unsupported";
/// `bpf_tail_call`.
pub const HELPER_TAIL_CALL: &str = "helper_tail_call";
/// One of the redirect helpers.
pub const HELPER_REDIRECT: &str = "helper_redirect";
/// A helper the JIT implements but this firmware does not offer.
pub const HELPER_FW: &str = "helper_fw";
/// A helper argument the NIC cannot handle (key not on the stack, variable or unaligned
/// stack pointer, perf output flags, growing `adjust_tail`, ...).
pub const HELPER_ARG: &str = "helper_arg";
/// A tc program's exit value that is not a constant the NIC maps to an action.
pub const EXIT_STATE: &str = "exit_state";
/// A map type the firmware cannot hold.
pub const MAP_TYPE: &str = "map_type";
/// A map with creation flags.
pub const MAP_FLAGS: &str = "map_flags";
/// A key larger than the firmware's maximum.
pub const MAP_KEY_SIZE: &str = "map_key_size";
/// A value larger than the firmware's maximum.
pub const MAP_VALUE_SIZE: &str = "map_value_size";
/// Key + value larger than the firmware's entry size.
pub const MAP_ENTRY_SIZE: &str = "map_entry_size";
/// More maps than the firmware has table ids.
pub const MAP_COUNT: &str = "map_count";
/// More entries over all maps than the firmware's memory holds.
pub const MAP_ENTRIES: &str = "map_entries";
/// The call chain's stack (64-byte frames) exceeds the firmware's per-thread stack.
pub const STACK_SIZE: &str = "stack_size";
/// A packet access may reach beyond the part of the packet held in CTM.
pub const PACKET_OFFSET: &str = "packet_offset";

/// Every category, for reports that list zero counts too.
pub const ALL: &[&str] = &[
    VERIFIER,
    PROG_TYPE,
    INSN_NOT_SUPPORTED,
    KFUNC,
    LD_IMM64_PSEUDO,
    PTR_TYPE,
    PTR_TYPE_CHANGED,
    STACK_VAR_OFFSET,
    STACK_LOCATION_CHANGED,
    CTX_STORE,
    CTX_FIELD,
    MAP_WRITE,
    MAP_VALUE_OFFSET,
    MAP_VALUE_USE_CONFLICT,
    MAP_ATOMIC_INIT,
    STORE_IMM,
    ATOMIC_OP,
    ATOMIC_TARGET,
    ATOMIC_SRC,
    MUL_RANGE,
    DIV_RANGE,
    DIV_NOT_CONST,
    DIV_NEGATIVE,
    HELPER_UNSUPPORTED,
    HELPER_TAIL_CALL,
    HELPER_REDIRECT,
    HELPER_FW,
    HELPER_ARG,
    EXIT_STATE,
    MAP_TYPE,
    MAP_FLAGS,
    MAP_KEY_SIZE,
    MAP_VALUE_SIZE,
    MAP_ENTRY_SIZE,
    MAP_COUNT,
    MAP_ENTRIES,
    STACK_SIZE,
    PACKET_OFFSET,
];
