//! Context access rules: which fields of `struct __sk_buff` and `struct xdp_md` a program
//! type may read or write, at which sizes, and what a read yields (a number, or a packet
//! pointer for `data` / `data_end` / `data_meta`).
//!
//! Why per type: the context is not memory but an ABI. The kernel rewrites every context
//! access into loads from its real structures (`convert_ctx_access`), so only whole or
//! aligned narrow reads of known fields can be translated, and only fields the hook may
//! change can be written. The rules below are the kernel's `bpf_skb_is_valid_access`,
//! `sk_filter_is_valid_access`, `tc_cls_act_is_valid_access` and `xdp_is_valid_access`
//! (facts re-stated from the UAPI layouts; offsets from `include/uapi/linux/bpf.h`).

use vm_core::ProgType;

use crate::reg::{RegType, SockKind};

/// What a successful context read produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtxRead {
    /// A number.
    Scalar,
    /// A pointer (packet data, end, metadata).
    Pointer(RegType),
    /// A pointer that may be NULL (`skb->sk`); it gets a fresh id.
    MaybeNull(RegType),
}

/// `struct __sk_buff` field offsets (UAPI).
mod skb {
    pub const MARK: i32 = 8;
    pub const QUEUE_MAPPING: i32 = 12;
    pub const PRIORITY: i32 = 32;
    pub const TC_INDEX: i32 = 44;
    pub const CB: i32 = 48;
    pub const CB_END: i32 = 68;
    pub const TC_CLASSID: i32 = 72;
    pub const DATA: i32 = 76;
    pub const DATA_END: i32 = 80;
    pub const FAMILY: i32 = 88;
    pub const REMOTE_IP4: i32 = 92;
    pub const LOCAL_IP4: i32 = 96;
    pub const REMOTE_IP6: i32 = 100;
    pub const LOCAL_IP6: i32 = 116;
    pub const LOCAL_PORT_END: i32 = 140;
    pub const DATA_META: i32 = 140;
    pub const FLOW_KEYS: i32 = 144;
    pub const TSTAMP: i32 = 152;
    pub const WIRE_LEN: i32 = 160;
    pub const SK: i32 = 168;
    pub const TSTAMP_TYPE: i32 = 180;
    pub const HWTSTAMP: i32 = 184;
    pub const SIZE: i32 = 192;
}

/// `struct xdp_md` field offsets (UAPI).
mod xdp {
    pub const DATA: i32 = 0;
    pub const DATA_END: i32 = 4;
    pub const DATA_META: i32 = 8;
    pub const EGRESS_IFINDEX: i32 = 20;
    pub const SIZE: i32 = 24;
}

/// Whether `off` lies in the field `[start, start + len)`.
fn in_field(off: i32, start: i32, len: i32) -> bool {
    (start..start + len).contains(&off)
}

/// The checks common to every `__sk_buff` program type (`bpf_skb_is_valid_access`).
fn skb_common(off: i32, size: i32, write: bool) -> Option<CtxRead> {
    if !(0..skb::SIZE).contains(&off) || off % size != 0 {
        return None;
    }
    let four_only = [
        (skb::REMOTE_IP6, 16),
        (skb::LOCAL_IP6, 16),
        (skb::REMOTE_IP4, 4),
        (skb::LOCAL_IP4, 4),
        (skb::DATA, 4),
        (skb::DATA_META, 4),
        (skb::DATA_END, 4),
    ];
    if in_field(off, skb::CB, skb::CB_END - skb::CB) {
        return (off + size <= skb::CB_END).then_some(CtxRead::Scalar);
    }
    if four_only.iter().any(|&(s, l)| in_field(off, s, l)) {
        return (size == 4).then_some(CtxRead::Scalar);
    }
    if in_field(off, skb::FLOW_KEYS, 8) {
        return None;
    }
    if in_field(off, skb::HWTSTAMP, 8) {
        return (!write && size == 8).then_some(CtxRead::Scalar);
    }
    if in_field(off, skb::TSTAMP, 8) {
        return (size == 8).then_some(CtxRead::Scalar);
    }
    if in_field(off, skb::SK, 8) {
        return (off == skb::SK && !write && size == 8).then_some(CtxRead::MaybeNull(
            RegType::Sock {
                kind: SockKind::Common,
                maybe_null: true,
            },
        ));
    }
    if in_field(off, skb::TSTAMP_TYPE, skb::HWTSTAMP - skb::TSTAMP_TYPE) {
        // tstamp_type and the padding after it.
        return None;
    }
    if write {
        (size == 4).then_some(CtxRead::Scalar)
    } else {
        (size <= 4 && size.count_ones() == 1).then_some(CtxRead::Scalar)
    }
}

fn socket_filter(off: i32, size: i32, write: bool) -> Option<CtxRead> {
    let hidden = in_field(off, skb::TC_CLASSID, 4)
        || in_field(off, skb::DATA, 4)
        || in_field(off, skb::DATA_META, 4)
        || in_field(off, skb::DATA_END, 4)
        || in_field(off, skb::FAMILY, skb::LOCAL_PORT_END - skb::FAMILY)
        || in_field(off, skb::TSTAMP, 8)
        || in_field(off, skb::WIRE_LEN, 4)
        || in_field(off, skb::HWTSTAMP, 8);
    if hidden {
        return None;
    }
    if write && !in_field(off, skb::CB, skb::CB_END - skb::CB) {
        return None;
    }
    skb_common(off, size, write)
}

fn sched_cls(off: i32, size: i32, write: bool) -> Option<CtxRead> {
    if write {
        let writable = in_field(off, skb::MARK, 4)
            || in_field(off, skb::TC_INDEX, 4)
            || in_field(off, skb::PRIORITY, 4)
            || in_field(off, skb::TC_CLASSID, 4)
            || in_field(off, skb::CB, skb::CB_END - skb::CB)
            || in_field(off, skb::TSTAMP, 8)
            || in_field(off, skb::QUEUE_MAPPING, 4);
        if !writable {
            return None;
        }
    }
    let ptr = if in_field(off, skb::DATA, 4) {
        Some(RegType::Packet)
    } else if in_field(off, skb::DATA_META, 4) {
        Some(RegType::PacketMeta)
    } else if in_field(off, skb::DATA_END, 4) {
        Some(RegType::PacketEnd)
    } else {
        None
    };
    if in_field(off, skb::FAMILY, skb::LOCAL_PORT_END - skb::FAMILY) {
        return None;
    }
    if off == skb::TSTAMP_TYPE {
        return (size == 1).then_some(CtxRead::Scalar);
    }
    let r = skb_common(off, size, write)?;
    Some(match ptr {
        Some(t) => CtxRead::Pointer(t),
        None => r,
    })
}

fn xdp_md(off: i32, size: i32, write: bool) -> Option<CtxRead> {
    if off == xdp::EGRESS_IFINDEX || write {
        return None;
    }
    if !(0..xdp::SIZE).contains(&off) || off % size != 0 || size != 4 {
        return None;
    }
    Some(match off {
        xdp::DATA => CtxRead::Pointer(RegType::Packet),
        xdp::DATA_META => CtxRead::Pointer(RegType::PacketMeta),
        xdp::DATA_END => CtxRead::Pointer(RegType::PacketEnd),
        _ => CtxRead::Scalar,
    })
}

/// Whether a `size`-byte access at context offset `off` is valid for program type `t`,
/// and what a read gives. `None` is the kernel's "invalid bpf_context access".
pub fn access(t: ProgType, off: i32, size: usize, write: bool) -> Option<CtxRead> {
    let size = i32::try_from(size).ok()?;
    match t {
        ProgType::SocketFilter => socket_filter(off, size, write),
        ProgType::SchedCls => sched_cls(off, size, write),
        ProgType::Xdp | ProgType::Mem => xdp_md(off, size, write),
        ProgType::Other(_) => None,
    }
}

/// Program types that may use the legacy `LD_ABS`/`LD_IND` packet loads.
pub fn may_access_skb(t: ProgType) -> bool {
    matches!(t, ProgType::SocketFilter | ProgType::SchedCls)
}

/// Program types whose programs may read packet data directly, and write it.
pub fn direct_packet_access(t: ProgType, write: bool) -> bool {
    match t {
        ProgType::SchedCls | ProgType::Xdp | ProgType::Mem => true,
        ProgType::SocketFilter | ProgType::Other(_) => {
            let _ = write;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skb_fields_follow_the_kernel_rules() {
        let sf = ProgType::SocketFilter;
        let tc = ProgType::SchedCls;
        assert_eq!(access(sf, 0, 4, false), Some(CtxRead::Scalar));
        assert_eq!(access(sf, 0, 8, false), None, "no 8-byte read of len");
        assert_eq!(
            access(sf, 1, 1, false),
            Some(CtxRead::Scalar),
            "narrow read"
        );
        assert_eq!(access(sf, 69, 2, false), None, "unaligned half of hash");
        assert_eq!(
            access(sf, 8, 4, true),
            None,
            "mark is not writable by sockets"
        );
        assert_eq!(access(tc, 8, 4, true), Some(CtxRead::Scalar));
        assert_eq!(
            access(sf, 76, 4, false),
            None,
            "no packet pointers for sockets"
        );
        assert_eq!(
            access(tc, 76, 4, false),
            Some(CtxRead::Pointer(RegType::Packet))
        );
        assert_eq!(access(tc, 64, 8, false), None, "cb ends at 68");
        assert_eq!(access(tc, 56, 8, false), Some(CtxRead::Scalar), "double cb");
        assert_eq!(access(tc, 180, 4, false), None, "tstamp_type is a byte");
        assert_eq!(access(tc, 160, 4, true), None, "wire_len is read-only");
    }

    #[test]
    fn xdp_fields_follow_the_kernel_rules() {
        let x = ProgType::Xdp;
        assert_eq!(
            access(x, 0, 4, false),
            Some(CtxRead::Pointer(RegType::Packet))
        );
        assert_eq!(
            access(x, 4, 4, false),
            Some(CtxRead::Pointer(RegType::PacketEnd))
        );
        assert_eq!(access(x, 12, 4, false), Some(CtxRead::Scalar));
        assert_eq!(access(x, 12, 2, false), None);
        assert_eq!(access(x, 20, 4, false), None);
        assert_eq!(access(x, 12, 4, true), None);
    }
}
