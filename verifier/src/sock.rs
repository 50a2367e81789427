//! Which fields of the socket structures helpers hand out (`struct bpf_sock`,
//! `struct bpf_sock_common`'s view of it, `struct bpf_tcp_sock`) a program may read, at
//! which sizes.
//!
//! Why: like the context, these are not memory but an ABI the kernel rewrites field by field
//! (`bpf_sock_convert_ctx_access`), so only reads of known fields at sizes it can translate
//! are allowed, and nothing may be written. Cilium reads `sk->state`, `sk->dst_port`, ... of a
//! socket found with `bpf_skc_lookup_tcp`. The rules restate the kernel's
//! `bpf_sock_is_valid_access`, `bpf_sock_common_is_valid_access` and
//! `bpf_tcp_sock_is_valid_access` from the UAPI layouts (`include/uapi/linux/bpf.h`).

use crate::reg::SockKind;

/// `struct bpf_sock` field offsets (UAPI).
mod bpf_sock {
    pub const TYPE: i32 = 8;
    /// One past `priority`: `type` up to here is not in `sock_common`.
    pub const PRIORITY_END: i32 = 24;
    pub const SRC_IP4: i32 = 24;
    pub const SRC_IP6_END: i32 = 44;
    pub const DST_PORT: i32 = 48;
    pub const DST_PORT_END: i32 = 50;
    pub const DST_IP4: i32 = 52;
    pub const DST_IP6_END: i32 = 72;
    pub const FAMILY: i32 = 4;
    pub const PROTOCOL: i32 = 12;
    pub const SRC_PORT: i32 = 44;
    pub const STATE: i32 = 72;
    pub const RX_QUEUE_MAPPING: i32 = 76;
    pub const SIZE: i32 = 80;
}

/// `struct bpf_tcp_sock`: the two 8-byte counters and the end of the last field.
mod tcp_sock {
    pub const BYTES_RECEIVED: i32 = 80;
    pub const BYTES_ACKED: i32 = 88;
    pub const SIZE: i32 = 112;
}

/// A narrow read of a field of `field` bytes: a power of two no wider than the field.
fn narrow_ok(size: i32, field: i32) -> bool {
    size <= field && size & (size - 1) == 0
}

/// Whether a read of `size` bytes at `off` of `struct bpf_sock` is allowed.
fn sock_read_ok(off: i32, size: i32) -> bool {
    use bpf_sock::*;
    if !(0..SIZE).contains(&off) || size <= 0 || off % size != 0 {
        return false;
    }
    let narrow_field = matches!(
        off,
        STATE | FAMILY | TYPE | PROTOCOL | SRC_PORT | RX_QUEUE_MAPPING
    ) || (SRC_IP4..SRC_IP6_END).contains(&off)
        || (DST_IP4..DST_IP6_END).contains(&off);
    if narrow_field {
        return narrow_ok(size, 4);
    }
    if (DST_PORT..DST_PORT_END).contains(&off) {
        // A 4-byte read of the 2-byte port (with its padding) is the legacy form.
        return narrow_ok(size, if size == 4 { 4 } else { 2 });
    }
    if (DST_PORT_END..DST_IP4).contains(&off) {
        return false;
    }
    size == 4
}

/// Whether a program may read `size` bytes at `off` of a socket pointer of kind `kind`.
pub fn read_ok(kind: SockKind, off: i32, size: i32) -> bool {
    match kind {
        SockKind::Sock => sock_read_ok(off, size),
        SockKind::Common => {
            !(bpf_sock::TYPE..bpf_sock::PRIORITY_END).contains(&off) && sock_read_ok(off, size)
        }
        SockKind::TcpSock => {
            if !(0..tcp_sock::SIZE).contains(&off) || size <= 0 || off % size != 0 {
                return false;
            }
            match off {
                tcp_sock::BYTES_RECEIVED | tcp_sock::BYTES_ACKED => size == 8,
                _ => size == 4,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sock_common_hides_type_to_priority() {
        assert!(read_ok(SockKind::Sock, 8, 4));
        assert!(!read_ok(SockKind::Common, 8, 4));
        assert!(!read_ok(SockKind::Common, 20, 4));
        assert!(read_ok(SockKind::Common, 4, 4));
        assert!(read_ok(SockKind::Common, 72, 4));
    }

    #[test]
    fn narrow_and_port_reads() {
        assert!(read_ok(SockKind::Sock, 24, 1));
        assert!(read_ok(SockKind::Sock, 26, 2));
        assert!(!read_ok(SockKind::Sock, 24, 8));
        assert!(read_ok(SockKind::Sock, 48, 4));
        assert!(read_ok(SockKind::Sock, 48, 2));
        assert!(read_ok(SockKind::Sock, 49, 1));
        assert!(!read_ok(SockKind::Sock, 50, 2));
        assert!(!read_ok(SockKind::Sock, 16, 2), "mark: whole reads only");
        assert!(read_ok(SockKind::Sock, 16, 4));
        assert!(!read_ok(SockKind::Sock, 80, 4));
        assert!(!read_ok(SockKind::Sock, 6, 4), "misaligned");
    }

    #[test]
    fn tcp_sock_counters_are_eight_bytes() {
        assert!(read_ok(SockKind::TcpSock, 80, 8));
        assert!(!read_ok(SockKind::TcpSock, 80, 4));
        assert!(read_ok(SockKind::TcpSock, 108, 4));
        assert!(!read_ok(SockKind::TcpSock, 112, 4));
        assert!(!read_ok(SockKind::TcpSock, 0, 2));
    }
}
