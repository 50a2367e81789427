//! What a program's author can change, per reason category: the report's answer to "and now
//! what?". Each hint names the usual rewrite that keeps the program on the NIC; where none
//! exists (the firmware simply lacks the feature) it says so, so nobody hunts for one.

use nfp_backend::feasibility::category as c;

/// The hint for a reason category, if there is one worth giving.
pub fn hint(category: &str) -> Option<&'static str> {
    Some(match category {
        c::VERIFIER => {
            "The verifier refuses the program on any target; fix this first (`offload verify --log-level 2` shows the path)."
        }
        c::PROG_TYPE => "Only XDP and tc (sched_cls) programs can be bound to the NIC.",
        c::INSN_NOT_SUPPORTED => {
            "Rewrite without this instruction (e.g. modulo by a power of two as an AND, byte swaps with bpf_htons/ntohs on 16/32-bit values); compile for an older ISA (-mcpu=v2) to avoid v4 instructions."
        }
        c::KFUNC => "Kernel functions do not exist on the NIC: move this work to the host program.",
        c::LD_IMM64_PSEUDO => {
            "Global or static data lives in a map the NIC cannot address: use #define constants or an explicit array map."
        }
        c::PTR_TYPE => "The NIC reaches only the packet, the stack, the context and map values.",
        c::PTR_TYPE_CHANGED | c::STACK_LOCATION_CHANGED => {
            "Make every path reach this instruction with the same kind of pointer at the same stack slot (duplicate the access per path)."
        }
        c::STACK_VAR_OFFSET => {
            "Index the stack with constants only (unroll the loop, or use a map)."
        }
        c::CTX_STORE => {
            "The NIC cannot write this context field; only the XDP rx queue selection is supported."
        }
        c::CTX_FIELD => {
            "Read only context fields the NIC provides (the packet pointers; see the message for this one)."
        }
        c::MAP_WRITE => {
            "Map values cannot be written in place on the NIC: use an atomic add (__sync_fetch_and_add) for counters, or bpf_map_update_elem."
        }
        c::MAP_VALUE_OFFSET => "Access map values at constant, in-bounds offsets.",
        c::MAP_VALUE_USE_CONFLICT => {
            "Do not read a word that is also used as an atomic counter; keep counters in words of their own."
        }
        c::MAP_ATOMIC_INIT => {
            "The NIC's atomic counters must start at zero: create the entry with a zero value (or use an array map) and add to it afterwards."
        }
        c::STORE_IMM => {
            "Store a register instead of an immediate (load the constant into a register first)."
        }
        c::ATOMIC_OP => {
            "Only 32/64-bit atomic add exists on the NIC; restructure other atomics as adds or plain updates."
        }
        c::ATOMIC_TARGET | c::ATOMIC_SRC => "Atomic adds work only on map values, adding a scalar.",
        c::MUL_RANGE | c::DIV_RANGE => {
            "Bound the operands to 32 bits first (mask them, or use 32-bit arithmetic) so the NIC's 32-bit multiplier can do it."
        }
        c::DIV_NOT_CONST | c::DIV_NEGATIVE => {
            "Divide only by a positive constant (or shift by a power of two)."
        }
        c::HELPER_UNSUPPORTED | c::HELPER_FW => {
            "This helper has no NIC implementation: move its work to the host program."
        }
        c::HELPER_TAIL_CALL => {
            "Tail calls are not offloaded: merge the programs or call subprograms instead."
        }
        c::HELPER_REDIRECT => {
            "Redirects cannot be offloaded: return XDP_TX or XDP_PASS and redirect on the host."
        }
        c::HELPER_ARG => {
            "Pass keys and values on the stack at constant, aligned offsets; see the message for the argument."
        }
        c::EXIT_STATE => "Return a constant action on every path (TC_ACT_OK, TC_ACT_SHOT, ...).",
        c::MAP_TYPE => {
            "The NIC holds hash and array maps (and perf event arrays): use BPF_MAP_TYPE_HASH or ARRAY instead."
        }
        c::MAP_FLAGS => "Create the map without flags.",
        c::MAP_KEY_SIZE | c::MAP_VALUE_SIZE | c::MAP_ENTRY_SIZE => {
            "Shrink the key or value (pack fields, split into two maps) below the firmware's limit."
        }
        c::MAP_COUNT | c::MAP_ENTRIES => {
            "Use fewer maps or fewer entries (max_entries) so they fit the NIC's memory."
        }
        c::STACK_SIZE => {
            "Use less stack: smaller locals, fewer nested calls, or state in a per-packet map entry."
        }
        c::PACKET_OFFSET => {
            "Keep packet accesses within the first bytes the NIC holds in CTM (parse headers only, bound the offsets)."
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_has_a_hint() {
        for cat in c::ALL {
            assert!(hint(cat).is_some(), "no hint for {cat}");
        }
        assert!(hint("no_such_category").is_none());
    }
}
