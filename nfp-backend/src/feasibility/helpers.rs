//! Helper calls (nfp-model.md §2.3): the JIT implements a handful, each by a branch to a
//! firmware routine or a few microengine instructions, and some only with arguments it can
//! pass without the host's help.
//!
//! Why keys and values must sit at constant, word-aligned stack offsets: the firmware's map
//! routines take them from local memory through the stack index register, which addresses
//! 32-bit words.

use verifier::reg::RegType;
use verifier::state::VerifierState;

use super::hooks::{NfpHooks, PtrClass};
use super::{Found, category as cat};
use crate::NicLimits;

const MAP_LOOKUP_ELEM: i32 = 1;
const MAP_UPDATE_ELEM: i32 = 2;
const MAP_DELETE_ELEM: i32 = 3;
const GET_PRANDOM_U32: i32 = 7;
const TAIL_CALL: i32 = 12;
const CLONE_REDIRECT: i32 = 13;
const REDIRECT: i32 = 23;
const PERF_EVENT_OUTPUT: i32 = 25;
const XDP_ADJUST_HEAD: i32 = 44;
const REDIRECT_MAP: i32 = 51;
const XDP_ADJUST_TAIL: i32 = 65;
const REDIRECT_NEIGH: i32 = 152;
const REDIRECT_PEER: i32 = 155;

/// `BPF_F_CURRENT_CPU` (= `BPF_F_INDEX_MASK`): the perf output flags' low 32 bits.
const BPF_F_CURRENT_CPU: u64 = 0xffff_ffff;

/// Why a call of helper `id` cannot be offloaded whatever its arguments, as
/// `(category, message)`: the JIT does not implement it, or this firmware lacks it.
pub(super) fn id_reason(id: i32, nic: &NicLimits) -> Option<(&'static str, String)> {
    let fw = |has: bool, msg: &str| (!has).then(|| (cat::HELPER_FW, format!("[nfp] {msg}")));
    match id {
        MAP_LOOKUP_ELEM => None,
        MAP_UPDATE_ELEM => fw(nic.fw_map_update, "map_update: not supported by FW"),
        MAP_DELETE_ELEM => fw(nic.fw_map_delete, "map_delete: not supported by FW"),
        GET_PRANDOM_U32 => fw(
            nic.fw_random,
            "bpf_get_prandom_u32(): FW doesn't support random number generation",
        ),
        PERF_EVENT_OUTPUT => fw(
            nic.fw_perf_event_output,
            "event_output: not supported by FW",
        ),
        XDP_ADJUST_HEAD => fw(nic.fw_adjust_head, "adjust_head not supported by FW"),
        XDP_ADJUST_TAIL => fw(nic.fw_adjust_tail, "adjust_tail not supported by FW"),
        _ => {
            let category = match id {
                TAIL_CALL => cat::HELPER_TAIL_CALL,
                CLONE_REDIRECT | REDIRECT | REDIRECT_MAP | REDIRECT_NEIGH | REDIRECT_PEER => {
                    cat::HELPER_REDIRECT
                }
                _ => cat::HELPER_UNSUPPORTED,
            };
            let name = vm_core::asm::helper_name(id).unwrap_or("unknown helper");
            Some((
                category,
                format!("[nfp] unsupported function id: {id} ({name})"),
            ))
        }
    }
}

/// Checks a helper call at `pc` under one path's state.
pub(super) fn check_call(h: &mut NfpHooks<'_>, pc: usize, id: i32, st: &VerifierState) {
    if let Some((c, m)) = id_reason(id, h.nic) {
        h.found.at(pc, c, || m);
        return;
    }
    match id {
        MAP_LOOKUP_ELEM => {
            stack_arg(&mut h.found, pc, "map_lookup", st, 2);
        }
        MAP_DELETE_ELEM => {
            stack_arg(&mut h.found, pc, "map_delete", st, 2);
        }
        MAP_UPDATE_ELEM => {
            stack_arg(&mut h.found, pc, "map_update", st, 2);
            if stack_arg(&mut h.found, pc, "map_update", st, 3)
                && let RegType::MapPtr { map } = st.reg(1).ty
            {
                let value_size = h.maps.get(map as usize).map_or(0, |m| m.value_size);
                let value = *st.reg(3);
                h.map_use
                    .update(&mut h.found, pc, map, value_size, st, &value);
            }
        }
        PERF_EVENT_OUTPUT => perf_event_output(h, pc, st),
        XDP_ADJUST_TAIL => {
            // A delta that may be negative is accepted, as the kernel driver does: the
            // firmware's helper fails growth at run time (-EINVAL). One that always grows
            // can never succeed on the NIC.
            let delta = st.reg(2);
            if delta.is_scalar() && delta.var.s32_min > 0 {
                let (lo, hi) = (delta.var.s32_min, delta.var.s32_max);
                h.found.at(pc, cat::HELPER_ARG, || {
                    format!(
                        "[nfp] adjust_tail: delta [{lo}, {hi}] always grows the packet; the firmware only shrinks packets"
                    )
                });
            }
        }
        _ => {}
    }
}

/// A pointer argument the firmware reads from local memory: a stack pointer at a constant,
/// word-aligned offset. Returns whether it is one.
fn stack_arg(found: &mut Found, pc: usize, fname: &str, st: &VerifierState, arg: u8) -> bool {
    let reg = st.reg(arg);
    if !matches!(reg.ty, RegType::Stack { .. }) {
        if reg.is_pointer() {
            found.at(pc, cat::HELPER_ARG, || {
                format!(
                    "[nfp] {fname}: unsupported ptr type {} in R{arg}",
                    reg.ty.name()
                )
            });
        }
        return false;
    }
    if !reg.var.var_off.is_const() {
        found.at(pc, cat::HELPER_ARG, || {
            format!("[nfp] {fname}: variable pointer in R{arg}")
        });
        return false;
    }
    let off = i64::from(reg.off).wrapping_add(reg.var.var_off.value() as i64);
    if off % 4 != 0 {
        found.at(pc, cat::HELPER_ARG, || {
            format!("[nfp] {fname}: unaligned stack pointer {off}")
        });
        return false;
    }
    true
}

/// `bpf_perf_event_output(ctx, map, flags, data, size)`: the event is sent from wherever the
/// packet is, so only the current CPU can be named; the data must be memory the NIC holds.
fn perf_event_output(h: &mut NfpHooks<'_>, pc: usize, st: &VerifierState) {
    let flags = st.reg(3).var.var_off;
    if flags.mask() & BPF_F_CURRENT_CPU != 0
        || flags.value() & BPF_F_CURRENT_CPU != BPF_F_CURRENT_CPU
    {
        h.found.at(pc, cat::HELPER_ARG, || {
            format!("[nfp] event_output: must use BPF_F_CURRENT_CPU, var_off: {flags}")
        });
    }
    let data = *st.reg(4);
    if !data.is_pointer() {
        return;
    }
    match PtrClass::of(data.ty) {
        Some(PtrClass::Stack) => {
            stack_arg(&mut h.found, pc, "event_output", st, 4);
        }
        Some(PtrClass::Packet) => {
            let size = st.reg(5).var.umax;
            let end = NfpHooks::packet_end(&data, 0, size);
            h.reach_packet(pc, end);
        }
        Some(PtrClass::MapValue) => {}
        _ => h.found.at(pc, cat::HELPER_ARG, || {
            format!(
                "[nfp] event_output: unsupported ptr type {}",
                data.ty.name()
            )
        }),
    }
}
