//! Kernel helpers: an id → function table resolved at load time, and per-family files.
//!
//! Each helper follows the Linux 6.18 implementation's observable behaviour (return values,
//! errno codes, what it writes), with two deliberate differences made for determinism:
//! clocks advance by a fixed step per call and random numbers come from a seeded generator
//! (see [`VmConfig`](super::VmConfig)). Which program types may call which helper follows the
//! kernel's `*_func_proto` tables; `mem` programs (bpf_conformance) get the generic set.
//!
//! Helpers receive `r1..r5` and return `r0`. Pointer arguments are checked against the
//! region table like any access; a bad pointer is a fault (the verifier would have refused
//! the program), while conditions the kernel reports at run time return `-errno`.

mod csum;
mod maps;
mod output;
mod printk;
mod redirect;
pub(crate) mod skb;
mod time;
mod xdp;

use super::compile::LoadError;
use super::context::CtxKind;
use super::env::Env;
use super::fault::FaultKind;
use crate::ProgType;

pub(crate) use maps::{TailCallOutcome, tail_call};
pub(crate) use output::close_open_records;

/// Signature of a helper: `r1..r5` in, `r0` out.
pub(crate) type HelperFn = fn(&mut Env<'_>, [u64; 5]) -> Result<u64, FaultKind>;

/// Program-type masks for [`HelperDef::types`].
const MEM: u8 = 1;
const XDP: u8 = 2;
const TC: u8 = 4;
const SOCK: u8 = 8;
const ALL: u8 = MEM | XDP | TC | SOCK;

/// One implemented helper.
pub(crate) struct HelperDef {
    /// `enum bpf_func_id` value.
    pub(crate) id: i32,
    /// Kernel name.
    pub(crate) name: &'static str,
    /// Implementation.
    pub(crate) func: HelperFn,
    /// Program types that may call it.
    types: u8,
    /// How many argument registers it takes (its kernel prototype's `arg1..arg5`): [`call`]
    /// passes only those and zeros for the rest, so that a call provably reads no other
    /// register (the interpreter zeroes registers per run only when a program may read one
    /// before writing it, see `liveness`).
    args: u8,
}

macro_rules! helper {
    ($id:expr, $name:expr, $func:path, $types:expr, $args:expr) => {
        HelperDef {
            id: $id,
            name: $name,
            func: $func,
            types: $types,
            args: $args,
        }
    };
}

/// `BPF_FUNC_tail_call`.
pub(crate) const TAIL_CALL_ID: i32 = 12;
/// Index of `bpf_tail_call` in [`HELPERS`] (it is special-cased by the run loop).
pub(crate) const TAIL_CALL_INDEX: usize = 6;

/// Index of `bpf_map_lookup_elem` in [`HELPERS`] (the run loop answers array lookups itself,
/// see `exec::call_lookup`).
pub(crate) const LOOKUP_INDEX: usize = 0;

/// Every implemented helper.
pub(crate) static HELPERS: &[HelperDef] = &[
    helper!(1, "bpf_map_lookup_elem", maps::lookup, ALL, 2),
    helper!(2, "bpf_map_update_elem", maps::update, ALL, 4),
    helper!(3, "bpf_map_delete_elem", maps::delete, ALL, 2),
    helper!(5, "bpf_ktime_get_ns", time::ktime_get_ns, ALL, 0),
    helper!(6, "bpf_trace_printk", printk::trace_printk, ALL, 5),
    helper!(7, "bpf_get_prandom_u32", time::get_prandom_u32, ALL, 0),
    helper!(12, "bpf_tail_call", maps::tail_call_unreachable, ALL, 3),
    helper!(
        8,
        "bpf_get_smp_processor_id",
        time::get_smp_processor_id,
        ALL,
        0
    ),
    helper!(9, "bpf_skb_store_bytes", skb::store_bytes, TC, 5),
    helper!(10, "bpf_l3_csum_replace", csum::l3_csum_replace, TC, 5),
    helper!(11, "bpf_l4_csum_replace", csum::l4_csum_replace, TC, 5),
    helper!(17, "bpf_get_cgroup_classid", skb::get_cgroup_classid, TC, 1),
    helper!(18, "bpf_skb_vlan_push", skb::vlan_push, TC, 3),
    helper!(19, "bpf_skb_vlan_pop", skb::vlan_pop, TC, 1),
    helper!(23, "bpf_redirect", redirect::redirect, XDP | TC, 2),
    helper!(
        25,
        "bpf_perf_event_output",
        output::perf_event_output,
        ALL,
        5
    ),
    helper!(26, "bpf_skb_load_bytes", skb::load_bytes, TC | SOCK, 4),
    helper!(28, "bpf_csum_diff", csum::csum_diff, MEM | XDP | TC, 5),
    helper!(34, "bpf_get_hash_recalc", skb::get_hash_recalc, TC, 1),
    helper!(39, "bpf_skb_pull_data", skb::pull_data, TC, 2),
    helper!(40, "bpf_csum_update", csum::csum_update, TC, 2),
    helper!(41, "bpf_set_hash_invalid", skb::set_hash_invalid, TC, 1),
    helper!(42, "bpf_get_numa_node_id", time::get_numa_node_id, ALL, 0),
    helper!(44, "bpf_xdp_adjust_head", xdp::adjust_head, XDP, 2),
    helper!(48, "bpf_set_hash", skb::set_hash, TC, 2),
    helper!(51, "bpf_redirect_map", redirect::redirect_map, XDP, 3),
    helper!(54, "bpf_xdp_adjust_meta", xdp::adjust_meta, XDP, 2),
    helper!(65, "bpf_xdp_adjust_tail", xdp::adjust_tail, XDP, 2),
    helper!(125, "bpf_ktime_get_boot_ns", time::ktime_get_ns, ALL, 0),
    helper!(130, "bpf_ringbuf_output", output::ringbuf_output, ALL, 4),
    helper!(131, "bpf_ringbuf_reserve", output::ringbuf_reserve, ALL, 3),
    helper!(132, "bpf_ringbuf_submit", output::ringbuf_submit, ALL, 2),
    helper!(133, "bpf_ringbuf_discard", output::ringbuf_discard, ALL, 2),
    helper!(134, "bpf_ringbuf_query", output::ringbuf_query, ALL, 2),
    helper!(160, "bpf_ktime_get_coarse_ns", time::ktime_get_ns, ALL, 0),
    helper!(188, "bpf_xdp_get_buff_len", xdp::get_buff_len, XDP, 1),
    helper!(189, "bpf_xdp_load_bytes", xdp::load_bytes, XDP, 4),
    helper!(190, "bpf_xdp_store_bytes", xdp::store_bytes, XDP, 4),
];

fn type_mask(kind: CtxKind) -> u8 {
    match kind {
        CtxKind::Mem => MEM,
        CtxKind::Xdp => XDP,
        CtxKind::Skb { tc: true } => TC,
        CtxKind::Skb { tc: false } => SOCK,
    }
}

/// Resolves helper `id` called at `pc` by a program of type `ty` (load time).
pub(crate) fn resolve(id: i32, ty: ProgType, pc: usize) -> Result<usize, LoadError> {
    let Some(index) = HELPERS.iter().position(|h| h.id == id) else {
        return Err(match crate::asm::helper_name(id) {
            Some(name) => LoadError::HelperNotImplemented { pc, id, name },
            None => LoadError::UnknownHelper { pc, id },
        });
    };
    let h = &HELPERS[index];
    let allowed = CtxKind::of(ty).is_some_and(|k| h.types & type_mask(k) != 0);
    if !allowed {
        return Err(LoadError::HelperNotAllowed {
            pc,
            id,
            name: h.name,
            prog_type: ty.name(),
        });
    }
    Ok(index)
}

/// Resolves a `callx` target at run time; `None` if it is not a helper this program may call.
pub(crate) fn resolve_runtime(id: u64, kind: CtxKind) -> Option<usize> {
    let id = i32::try_from(id).ok()?;
    HELPERS
        .iter()
        .position(|h| h.id == id && h.types & type_mask(kind) != 0)
}

/// Calls helper `index` with the argument registers of `r`.
pub(crate) fn call(index: usize, env: &mut Env<'_>, r: &[u64; 16]) -> Result<u64, FaultKind> {
    let Some(h) = HELPERS.get(index) else {
        return Err(FaultKind::UnknownHelper { id: index as u64 });
    };
    let mut a = [r[1], r[2], r[3], r[4], r[5]];
    for (i, v) in a.iter_mut().enumerate() {
        if i >= usize::from(h.args) {
            *v = 0;
        }
    }
    (h.func)(env, a)
}

/// Every helper the interpreter implements, by id, with the number of argument registers
/// it is given (the others read as 0). Public so that the verifier's prototypes can be held
/// against it: a count below the prototype's would hand a helper 0 for a real argument.
pub fn arg_counts() -> impl Iterator<Item = (i32, usize)> {
    HELPERS.iter().map(|h| (h.id, usize::from(h.args)))
}

/// The registers helper `index` reads (r1..r`n` for its `n` arguments), as a mask (bit i =
/// ri); all argument registers for an index out of the table.
pub(crate) fn arg_regs(index: usize) -> u16 {
    let n = HELPERS.get(index).map_or(5, |h| h.args.min(5));
    ((1u16 << n) - 1) << 1
}

/// A negative errno as a helper return value.
pub(crate) fn errno(e: i64) -> u64 {
    (-e) as u64
}

/// `EINVAL`.
pub(crate) const EINVAL: i64 = 22;
/// `EFAULT`.
pub(crate) const EFAULT: i64 = 14;
/// `ENOMEM`.
pub(crate) const ENOMEM: i64 = 12;
/// `ENOTSUPP` (kernel-internal 524).
pub(crate) const ENOTSUPP: i64 = 524;
/// `EACCES`.
pub(crate) const EACCES: i64 = 13;

/// Fault for a size argument beyond what the verifier would accept.
pub(crate) fn bad_arg(helper: &'static str, reason: impl Into<String>) -> FaultKind {
    FaultKind::HelperArg {
        helper,
        reason: reason.into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        assert_eq!(HELPERS[TAIL_CALL_INDEX].id, TAIL_CALL_ID);
        assert_eq!(HELPERS[LOOKUP_INDEX].name, "bpf_map_lookup_elem");
        for h in HELPERS {
            assert_eq!(
                crate::asm::helper_name(h.id),
                Some(h.name),
                "helper {}",
                h.id
            );
            assert_eq!(HELPERS.iter().filter(|o| o.id == h.id).count(), 1);
        }
    }

    #[test]
    fn resolution_respects_program_types() {
        assert!(resolve(1, ProgType::Mem, 0).is_ok());
        assert!(matches!(
            resolve(44, ProgType::SchedCls, 3),
            Err(LoadError::HelperNotAllowed { pc: 3, .. })
        ));
        assert!(matches!(
            resolve(4, ProgType::Xdp, 0),
            Err(LoadError::HelperNotImplemented {
                name: "bpf_probe_read",
                ..
            })
        ));
        assert!(matches!(
            resolve(9999, ProgType::Xdp, 0),
            Err(LoadError::UnknownHelper { .. })
        ));
        assert_eq!(
            resolve_runtime(5, CtxKind::Mem).map(|i| HELPERS[i].id),
            Some(5)
        );
        assert_eq!(resolve_runtime(9, CtxKind::Mem), None);
    }
}
