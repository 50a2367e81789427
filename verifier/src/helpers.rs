//! Helper functions: which program types may call which helper, and each helper's prototype
//! (argument and return types) — the kernel's `get_func_proto` and `struct bpf_func_proto`.
//!
//! Why prototypes: a helper is a trust boundary. `bpf_map_lookup_elem(map, key)` reads
//! `key_size` bytes at `key`, so the verifier must prove those bytes are initialised and in
//! bounds; its result may be NULL, so it gets a fresh id for the NULL check to refine.
//!
//! The per-type allow lists were measured on Linux 6.18 (root) by loading a call to every
//! helper id in each program type and keeping the ones not refused with "program of this type
//! cannot use helper". A helper that is allowed but has no prototype here is refused with a
//! clear "not modelled" message rather than accepted blindly.

use vm_core::{MapType, ProgType};

/// What a helper argument must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    /// Not an argument of this helper (the register is not read).
    DontCare,
    /// Any initialised value.
    Anything,
    /// A map (`CONST_PTR_TO_MAP`).
    ConstMapPtr,
    /// Memory holding a key of the map argument (`key_size` readable bytes).
    MapKey,
    /// Memory holding a value of the map argument (`value_size` bytes; written when `uninit`).
    MapValue {
        /// The helper writes the value (pop/peek).
        uninit: bool,
    },
    /// Memory whose size is the next argument; written by the helper when `uninit`.
    Mem {
        /// The helper writes it (no initialisation needed).
        uninit: bool,
        /// NULL is accepted (with a size of 0).
        maybe_null: bool,
    },
    /// Memory of a fixed size (`ARG_PTR_TO_INT/LONG`), written by the helper.
    FixedMem {
        /// Bytes.
        size: u32,
    },
    /// The size of the preceding memory argument.
    ConstSize {
        /// 0 is accepted.
        zero_ok: bool,
    },
    /// A constant allocation size (`bpf_ringbuf_reserve`).
    ConstAllocSize,
    /// The program's context, unmodified.
    Ctx,
    /// Ring-buffer memory obtained from `bpf_ringbuf_reserve`, released by this call.
    RingbufMemRelease,
    /// A socket (any kind); released by this call when `release`.
    SockCommon {
        /// The call releases the reference.
        release: bool,
        /// NULL (or a socket not yet NULL-checked) is accepted too.
        maybe_null: bool,
    },
}

/// What a helper returns in R0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetType {
    /// A number.
    Integer,
    /// Nothing: R0 is left unreadable.
    Void,
    /// A value of the map argument, or NULL.
    MapValueOrNull,
    /// Ring-buffer memory of the allocation-size argument, or NULL (a new reference).
    RingbufMemOrNull,
    /// A socket, or NULL; a new reference when `acquire`.
    SockOrNull {
        /// Which socket structure.
        kind: crate::reg::SockKind,
        /// The result is a reference to release.
        acquire: bool,
    },
}

/// A helper's prototype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proto {
    /// Argument types for R1–R5.
    pub args: [ArgType; 5],
    /// Return type.
    pub ret: RetType,
    /// The helper may move packet data, so every packet pointer becomes invalid after it.
    pub changes_pkt_data: bool,
}

use ArgType as A;

const fn p(args: [ArgType; 5], ret: RetType) -> Proto {
    Proto {
        args,
        ret,
        changes_pkt_data: false,
    }
}

const fn changes(args: [ArgType; 5], ret: RetType) -> Proto {
    Proto {
        args,
        ret,
        changes_pkt_data: true,
    }
}

const N: ArgType = A::DontCare;
const ANY: ArgType = A::Anything;
const MEM_RO: ArgType = A::Mem {
    uninit: false,
    maybe_null: false,
};
const MEM_W: ArgType = A::Mem {
    uninit: true,
    maybe_null: false,
};
const MEM_RO_NULL: ArgType = A::Mem {
    uninit: false,
    maybe_null: true,
};
const SIZE: ArgType = A::ConstSize { zero_ok: false };
const SIZE0: ArgType = A::ConstSize { zero_ok: true };
const INT: RetType = RetType::Integer;
const SOCK: ArgType = A::SockCommon {
    release: false,
    maybe_null: false,
};
const SOCK_RELEASE: ArgType = A::SockCommon {
    release: true,
    maybe_null: false,
};
const SOCK_OR_NULL: ArgType = A::SockCommon {
    release: false,
    maybe_null: true,
};

/// The prototype of helper `id`, if this verifier models it.
pub fn proto(id: i32) -> Option<Proto> {
    use crate::reg::SockKind;
    let sock = |kind, acquire| RetType::SockOrNull { kind, acquire };
    Some(match id {
        1 => p(
            [A::ConstMapPtr, A::MapKey, N, N, N],
            RetType::MapValueOrNull,
        ),
        2 => p(
            [
                A::ConstMapPtr,
                A::MapKey,
                A::MapValue { uninit: false },
                ANY,
                N,
            ],
            INT,
        ),
        3 => p([A::ConstMapPtr, A::MapKey, N, N, N], INT),
        // ktime_get_ns, get_prandom_u32, get_smp_processor_id, get_current_pid_tgid,
        // get_current_uid_gid, get_current_task, get_numa_node_id, get_current_cgroup_id,
        // jiffies64, ktime_get_boot_ns, ktime_get_coarse_ns, ktime_get_tai_ns.
        5 | 7 | 8 | 14 | 15 | 35 | 42 | 80 | 118 | 125 | 160 | 208 => p([N; 5], INT),
        // trace_printk(fmt, fmt_size, ...): only the format is checked.
        6 => p([MEM_RO, SIZE, N, N, N], INT),
        9 => changes([A::Ctx, ANY, MEM_RO, SIZE, ANY], INT),
        10 | 11 => changes([A::Ctx, ANY, ANY, ANY, ANY], INT),
        // A tail call that returns did nothing: packet pointers stay valid (Linux 6.18
        // counts it only towards a subprogram's `changes_pkt_data`, for global calls).
        12 => p([A::Ctx, A::ConstMapPtr, ANY, N, N], RetType::Void),
        13 => changes([A::Ctx, ANY, ANY, N, N], INT),
        16 => p([MEM_W, SIZE, N, N, N], INT),
        17 | 24 | 34 | 46 | 47 | 188 => p([A::Ctx, N, N, N, N], INT),
        18 | 31 | 38 | 43 => changes([A::Ctx, ANY, ANY, N, N], INT),
        19 => changes([A::Ctx, N, N, N, N], INT),
        20 => p([A::Ctx, MEM_W, SIZE, ANY, N], INT),
        21 => p([A::Ctx, MEM_RO, SIZE, ANY, N], INT),
        22 => p([A::ConstMapPtr, ANY, N, N, N], INT),
        23 => p([ANY, ANY, N, N, N], INT),
        25 => p([A::Ctx, A::ConstMapPtr, ANY, MEM_RO, SIZE0], INT),
        26 | 189 => p([A::Ctx, ANY, MEM_W, SIZE, N], INT),
        190 => p([A::Ctx, ANY, MEM_RO, SIZE, N], INT),
        28 => p([MEM_RO_NULL, SIZE0, MEM_RO_NULL, SIZE0, ANY], INT),
        29 => p([A::Ctx, MEM_W, SIZE, N, N], INT),
        30 => p([A::Ctx, MEM_RO, SIZE, N, N], INT),
        32 | 40 | 48 | 135 => p([A::Ctx, ANY, N, N, N], INT),
        39 | 44 | 54 | 65 => changes([A::Ctx, ANY, N, N, N], INT),
        41 => p([A::Ctx, N, N, N, N], RetType::Void),
        50 => changes([A::Ctx, ANY, ANY, ANY, N], INT),
        51 => p([A::ConstMapPtr, ANY, ANY, N, N], INT),
        68 => p([A::Ctx, ANY, MEM_W, SIZE, ANY], INT),
        69 => p([A::Ctx, MEM_RO, SIZE, ANY, N], INT),
        84 | 85 => p([A::Ctx, MEM_RO, SIZE, ANY, ANY], sock(SockKind::Sock, true)),
        99 => p(
            [A::Ctx, MEM_RO, SIZE, ANY, ANY],
            sock(SockKind::Common, true),
        ),
        86 => p([SOCK_RELEASE, N, N, N, N], INT),
        // sk_assign(skb, sk or NULL, flags): tc's variant.
        124 => p([A::Ctx, SOCK_OR_NULL, ANY, N, N], INT),
        95 => p([SOCK, N, N, N, N], sock(SockKind::Sock, false)),
        96 => p([SOCK, N, N, N, N], sock(SockKind::TcpSock, false)),
        87 => p(
            [A::ConstMapPtr, A::MapValue { uninit: false }, ANY, N, N],
            INT,
        ),
        88 | 89 => p([A::ConstMapPtr, A::MapValue { uninit: true }, N, N, N], INT),
        130 => p([A::ConstMapPtr, MEM_RO, SIZE0, ANY, N], INT),
        131 => p(
            [A::ConstMapPtr, A::ConstAllocSize, ANY, N, N],
            RetType::RingbufMemOrNull,
        ),
        132 | 133 => p([A::RingbufMemRelease, ANY, N, N, N], RetType::Void),
        134 => p([A::ConstMapPtr, ANY, N, N, N], INT),
        163 => p([A::Ctx, ANY, A::FixedMem { size: 4 }, ANY, ANY], INT),
        33 => p([A::Ctx, A::ConstMapPtr, ANY, N, N], INT),
        37 => p([A::ConstMapPtr, ANY, N, N, N], INT),
        55 => p([A::ConstMapPtr, ANY, MEM_W, SIZE, N], INT),
        // probe_read_{user,kernel}{,_str}(dst, size, unsafe_ptr)
        112..=115 => p([MEM_W, SIZE0, ANY, N, N], INT),
        79 | 97 | 151 => p([A::Ctx, N, N, N, N], INT),
        83 => p([A::Ctx, ANY, N, N, N], INT),
        123 | 109 | 117 => p([ANY, N, N, N, N], INT),
        120 => p([ANY, ANY, MEM_W, SIZE, N], INT),
        105 | 106 => p([MEM_RO, SIZE, ANY, A::FixedMem { size: 8 }, N], INT),
        66 => p([A::Ctx, ANY, MEM_W, SIZE, ANY], INT),
        152 => p([ANY, MEM_RO_NULL, SIZE0, ANY, N], INT),
        155 => p([ANY, ANY, N, N, N], INT),
        192 => p([A::Ctx, ANY, ANY, N, N], INT),
        195 => p(
            [A::ConstMapPtr, A::MapKey, ANY, N, N],
            RetType::MapValueOrNull,
        ),
        _ => return None,
    })
}

/// Whether a helper's argument at position `i` (0-based) is read (for liveness).
pub fn arg_count(id: i32) -> usize {
    proto(id).map_or(5, |p| {
        p.args
            .iter()
            .rposition(|a| *a != ArgType::DontCare)
            .map_or(0, |i| i + 1)
    })
}

const SOCKET_FILTER: &[i32] = &[
    1, 2, 3, 5, 6, 7, 8, 12, 14, 15, 16, 17, 22, 25, 26, 35, 37, 42, 46, 47, 55, 68, 80, 87, 88,
    89, 93, 94, 105, 106, 109, 112, 113, 114, 115, 117, 118, 120, 122, 123, 125, 130, 131, 132,
    133, 134, 136, 137, 138, 139, 140, 141, 149, 153, 154, 156, 157, 158, 160, 164, 165, 169, 170,
    171, 172, 175, 176, 177, 178, 180, 181, 182, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203,
    208, 209, 210, 211,
];

const SCHED_CLS: &[i32] = &[
    1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 28,
    29, 30, 31, 32, 33, 34, 35, 37, 38, 39, 40, 41, 42, 43, 46, 47, 48, 50, 55, 66, 68, 69, 79, 80,
    83, 84, 85, 86, 87, 88, 89, 93, 94, 95, 96, 97, 98, 99, 100, 105, 106, 107, 108, 109, 110, 112,
    113, 114, 115, 117, 118, 120, 122, 123, 124, 125, 130, 131, 132, 133, 134, 135, 136, 137, 138,
    139, 140, 141, 149, 151, 152, 153, 154, 155, 156, 157, 158, 160, 163, 164, 165, 169, 170, 171,
    172, 175, 176, 177, 178, 180, 181, 182, 192, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203,
    204, 205, 206, 207, 208, 209, 210, 211,
];

const XDP: &[i32] = &[
    1, 2, 3, 5, 6, 7, 8, 12, 14, 15, 16, 17, 22, 23, 25, 28, 35, 37, 42, 44, 51, 54, 55, 65, 69,
    80, 84, 85, 86, 87, 88, 89, 93, 94, 99, 100, 105, 106, 109, 110, 112, 113, 114, 115, 117, 118,
    120, 123, 125, 130, 131, 132, 133, 134, 136, 137, 138, 139, 140, 141, 149, 153, 154, 156, 157,
    158, 160, 163, 164, 165, 169, 170, 171, 172, 175, 176, 177, 178, 180, 181, 182, 188, 189, 190,
    194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211,
];

/// The last helper id (the UAPI list was frozen at 211).
pub const MAX_HELPER_ID: i32 = 211;

/// Whether a program of type `t` may call helper `id` (Linux 6.18, privileged).
pub fn allowed(t: ProgType, id: i32) -> bool {
    let list = match t {
        ProgType::SocketFilter => SOCKET_FILTER,
        ProgType::SchedCls => SCHED_CLS,
        ProgType::Xdp | ProgType::Mem => XDP,
        ProgType::Other(_) => return false,
    };
    list.binary_search(&id).is_ok()
}

/// The kernel's `check_map_func_compatibility`, both directions: maps that only some helpers
/// accept, and helpers that only accept some maps. `None` = compatible.
pub fn map_func_incompatible(map: MapType, id: i32) -> bool {
    let map_ok = match map {
        MapType::ProgArray => id == 12,
        MapType::PerfEventArray => matches!(id, 22 | 25 | 27 | 55 | 111 | 121),
        MapType::Ringbuf => matches!(id, 130..=134 | 198),
        MapType::Other(8) => matches!(id, 33 | 37),
        MapType::Devmap | MapType::Xskmap => matches!(id, 51 | 1),
        MapType::Cpumap => id == 51,
        _ => true,
    };
    let func_ok = match id {
        12 => map == MapType::ProgArray,
        33 | 37 => map == MapType::Other(8),
        22 | 25 | 55 => map == MapType::PerfEventArray,
        130..=134 => map == MapType::Ringbuf,
        51 => matches!(map, MapType::Devmap | MapType::Cpumap | MapType::Xskmap),
        87..=89 => matches!(map, MapType::Other(22 | 23 | 30)),
        195 => matches!(
            map,
            MapType::PercpuHash | MapType::PercpuArray | MapType::LruPercpuHash
        ),
        _ => true,
    };
    !(map_ok && func_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_are_sorted_for_binary_search() {
        for l in [SOCKET_FILTER, SCHED_CLS, XDP] {
            assert!(l.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn packet_helpers_follow_program_types() {
        assert!(allowed(ProgType::Xdp, 44));
        assert!(!allowed(ProgType::SchedCls, 44));
        assert!(allowed(ProgType::SchedCls, 9));
        assert!(!allowed(ProgType::SocketFilter, 9));
    }

    /// The interpreter hands each helper only its own argument registers (zeros for the
    /// rest): for every helper it implements that has a prototype here, that count must
    /// cover the prototype's arguments, or a real argument would arrive as 0. It may pass
    /// more where the helper reads registers its prototype leaves unchecked
    /// (`bpf_trace_printk`'s three format arguments), and nowhere else.
    #[test]
    fn the_interpreter_passes_every_helper_its_prototype_arguments() {
        let mut checked = 0;
        for (id, n) in vm_core::interp::helper_arg_counts() {
            if proto(id).is_none() {
                continue;
            }
            let declared = arg_count(id);
            assert!(
                n >= declared,
                "helper {id}: interpreter passes {n} of {declared}"
            );
            assert!(
                n == declared || id == 6,
                "helper {id}: passes {n}, declared {declared}"
            );
            checked += 1;
        }
        assert!(checked >= 38, "only {checked} helpers have both");
    }

    #[test]
    fn map_lookup_reads_two_arguments() {
        assert_eq!(arg_count(1), 2);
        assert_eq!(arg_count(5), 0);
        assert!(map_func_incompatible(MapType::ProgArray, 1));
        assert!(!map_func_incompatible(MapType::Hash, 1));
    }
}
