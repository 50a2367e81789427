//! What the verifier knows about one register: its type (with the type's own payload), a
//! fixed offset for pointers, and the scalar domain — the value of a scalar, or the variable
//! part of a pointer's offset.
//!
//! This mirrors the kernel's `struct bpf_reg_state`, but as a Rust enum: a map pointer carries
//! its map, a stack pointer its frame, a helper-returned buffer its size, so no field is
//! meaningful only "when the type is X". `PTR_MAYBE_NULL` is a `maybe_null` flag on the types
//! that can be NULL; the NULL check that clears it finds every copy through [`RegState::id`].

use crate::bounds::ScalarBounds;

/// The kinds of socket pointers helpers and `skb->sk` produce. We only track them far enough
/// to reject dereferences and to release references; their fields are not modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SockKind {
    /// `struct bpf_sock_common` (`skb->sk`, `skc_lookup_tcp`).
    Common,
    /// `struct bpf_sock` (`sk_lookup_tcp/udp`, `sk_fullsock`).
    Sock,
    /// `struct bpf_tcp_sock`.
    TcpSock,
}

/// The type of a register, with what each type needs to be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegType {
    /// Never written on this path; reading it is an error (`R1 !read_ok`).
    NotInit,
    /// A number (possibly a leaked pointer value in privileged mode).
    Scalar,
    /// The program's context (`__sk_buff`, `xdp_md`).
    Ctx,
    /// A pointer into the stack of call frame `frame`.
    Stack {
        /// Frame number within the call chain (0 = main program).
        frame: u8,
    },
    /// Packet data (`skb->data`, `xdp->data`); [`RegState::range`] bytes past it are proven.
    Packet,
    /// Packet metadata (`data_meta`); bounded by `data`.
    PacketMeta,
    /// One past the packet's last byte (`data_end`); only for comparisons.
    PacketEnd,
    /// A map itself (`lddw r1, map`), for passing to helpers.
    MapPtr {
        /// Index into the program's maps.
        map: u32,
    },
    /// A map value (lookup result after a NULL check, or a direct value address).
    MapValue {
        /// Index into the program's maps.
        map: u32,
        /// Not yet NULL-checked (`map_value_or_null`).
        maybe_null: bool,
    },
    /// A map key (callbacks only; kept for completeness of helper argument types).
    MapKey {
        /// Index into the program's maps.
        map: u32,
    },
    /// Memory of a known size returned by a helper (e.g. `bpf_ringbuf_reserve`).
    Mem {
        /// Accessible bytes.
        size: u32,
        /// Ring-buffer memory (a reference that must be submitted or discarded).
        ringbuf: bool,
        /// Not yet NULL-checked.
        maybe_null: bool,
    },
    /// The address of a subprogram (`lddw r1, func`), for callback helpers.
    Func {
        /// Slot where the subprogram starts.
        start: u32,
    },
    /// A socket pointer.
    Sock {
        /// Which socket structure.
        kind: SockKind,
        /// Not yet NULL-checked.
        maybe_null: bool,
    },
}

impl RegType {
    /// Whether the type is a pointer (anything initialised that is not a scalar).
    pub const fn is_pointer(self) -> bool {
        !matches!(self, RegType::NotInit | RegType::Scalar)
    }

    /// Whether this pointer may still be NULL.
    pub const fn maybe_null(self) -> bool {
        match self {
            RegType::MapValue { maybe_null, .. }
            | RegType::Mem { maybe_null, .. }
            | RegType::Sock { maybe_null, .. } => maybe_null,
            _ => false,
        }
    }

    /// The same type with the `maybe_null` flag cleared.
    pub const fn non_null(self) -> RegType {
        match self {
            RegType::MapValue { map, .. } => RegType::MapValue {
                map,
                maybe_null: false,
            },
            RegType::Mem { size, ringbuf, .. } => RegType::Mem {
                size,
                ringbuf,
                maybe_null: false,
            },
            RegType::Sock { kind, .. } => RegType::Sock {
                kind,
                maybe_null: false,
            },
            t => t,
        }
    }

    /// Packet data or packet metadata (the pointers that carry a proven range).
    pub const fn is_pkt(self) -> bool {
        matches!(self, RegType::Packet | RegType::PacketMeta)
    }

    /// Packet data, metadata or end.
    pub const fn is_pkt_any(self) -> bool {
        matches!(
            self,
            RegType::Packet | RegType::PacketMeta | RegType::PacketEnd
        )
    }

    /// Whether a successful NULL check is enough to make this pointer usable: the kernel's
    /// `reg_not_null` (pointers that are never NULL once their type is known). Stack, context
    /// and packet pointers are absent from that list, so comparing them with 0 is not decided.
    /// A map pointer (`CONST_PTR_TO_MAP`) is on it since Linux 6.16: `if r1 == 0` with a map
    /// in R1 is decided, and only one edge is walked.
    pub const fn never_null(self) -> bool {
        match self {
            RegType::MapValue { maybe_null, .. }
            | RegType::Mem { maybe_null, .. }
            | RegType::Sock { maybe_null, .. } => !maybe_null,
            RegType::MapKey { .. } | RegType::MapPtr { .. } => true,
            _ => false,
        }
    }

    /// The kernel's `reg_type_str`: the name the log uses (`map_value_or_null`, `fp`, ...).
    pub fn name(self) -> String {
        self.to_string()
    }

    fn base_name(self) -> (&'static str, bool) {
        match self {
            RegType::NotInit => ("?", false),
            RegType::Scalar => ("scalar", false),
            RegType::Ctx => ("ctx", false),
            RegType::Stack { .. } => ("fp", false),
            RegType::Packet => ("pkt", false),
            RegType::PacketMeta => ("pkt_meta", false),
            RegType::PacketEnd => ("pkt_end", false),
            RegType::MapPtr { .. } => ("map_ptr", false),
            RegType::MapValue { maybe_null, .. } => ("map_value", maybe_null),
            RegType::MapKey { .. } => ("map_key", false),
            RegType::Mem {
                ringbuf,
                maybe_null,
                ..
            } => (if ringbuf { "ringbuf_mem" } else { "mem" }, maybe_null),
            RegType::Func { .. } => ("func", false),
            RegType::Sock { kind, maybe_null } => (
                match kind {
                    SockKind::Common => "sock_common",
                    SockKind::Sock => "sock",
                    SockKind::TcpSock => "tcp_sock",
                },
                maybe_null,
            ),
        }
    }
}

/// The log's name, written without allocating (error paths format it lazily).
impl std::fmt::Display for RegType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (base, maybe_null) = self.base_name();
        f.write_str(base)?;
        if maybe_null {
            f.write_str("_or_null")?;
        }
        Ok(())
    }
}

/// Packet range meaning "this pointer is exactly `data_end`" (the kernel's `AT_PKT_END`).
pub const AT_PKT_END: i32 = -1;
/// Packet range meaning "this pointer is past `data_end`" (the kernel's `BEYOND_PKT_END`).
pub const BEYOND_PKT_END: i32 = -2;

/// Flag on a scalar's [`RegState::id`]: the register is a linked copy plus the constant in
/// [`RegState::off`] (`r9 = r0; r9 += 5`). Linux 6.18 keeps such copies linked, so a branch on
/// one bounds the others shifted by the difference of the constants; carrying the flag in the
/// id (as the kernel does) keeps pruning's id renaming telling the two kinds of link apart.
pub const LINK_DELTA: u32 = 1 << 31;

/// Flag on a scalar's [`RegState::id`]: like [`LINK_DELTA`], but the constant was added by a
/// 32-bit ALU op (`w9 += 5`), so the register is the *zero-extended 32-bit* sum of its base
/// and [`RegState::off`]. Linux 6.18 links these too (when the base fits 32 bits).
pub const LINK_DELTA32: u32 = 1 << 30;

/// Both offset-link flags.
pub const LINK_FLAGS: u32 = LINK_DELTA | LINK_DELTA32;

/// The abstract state of one register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegState {
    /// Type and type payload.
    pub ty: RegType,
    /// Fixed byte offset added to a pointer; for a scalar whose id carries [`LINK_DELTA`],
    /// the constant it is ahead of the registers sharing the plain id (0 otherwise).
    pub off: i32,
    /// The value of a scalar, or the variable part of a pointer's offset (constant 0 when the
    /// pointer has none).
    pub var: ScalarBounds,
    /// Identity shared by copies: NULL checks refine all registers with the same id, packet
    /// ranges apply to all pointers with the same id, and scalar copies share bounds learnt
    /// from a comparison. 0 = none. A scalar copy that then had a constant added carries
    /// [`LINK_DELTA`] on top of the shared id (see [`RegState::link_delta`]).
    pub id: u32,
    /// The reference this pointer holds (ring-buffer memory, sockets); 0 = none.
    pub ref_obj_id: u32,
    /// Packet pointers: bytes past the pointer proven to be inside the packet; negative values
    /// are [`AT_PKT_END`] / [`BEYOND_PKT_END`].
    pub range: i32,
    /// If the last write was a 32-bit sub-register definition: that instruction's index + 1
    /// (the kernel's `subreg_def`), so that a later 64-bit read can mark it as needing zero
    /// extension. 0 = the register was last written as a full 64-bit value.
    pub subreg_def: u32,
    /// For scalars in stored states: the exact value matters to some continuation (it
    /// reached a pointer offset, a size argument or a decided branch), so pruning must
    /// compare it. Imprecise scalars match any scalar.
    pub precise: bool,
}

impl Default for RegState {
    fn default() -> Self {
        RegState::not_init()
    }
}

impl RegState {
    /// An unwritten register.
    pub const fn not_init() -> RegState {
        RegState {
            ty: RegType::NotInit,
            off: 0,
            var: ScalarBounds::unknown(),
            id: 0,
            ref_obj_id: 0,
            range: 0,
            subreg_def: 0,
            precise: false,
        }
    }

    /// A scalar with the given abstract value.
    pub const fn scalar(var: ScalarBounds) -> RegState {
        RegState {
            ty: RegType::Scalar,
            var,
            ..RegState::not_init()
        }
    }

    /// A scalar about which nothing is known.
    pub const fn unknown_scalar() -> RegState {
        RegState::scalar(ScalarBounds::unknown())
    }

    /// The scalar `v`.
    pub const fn constant(v: u64) -> RegState {
        RegState::scalar(ScalarBounds::constant(v))
    }

    /// A pointer of type `ty` at fixed offset `off`, with no variable part.
    pub const fn pointer(ty: RegType, off: i32) -> RegState {
        RegState {
            ty,
            off,
            var: ScalarBounds::constant(0),
            ..RegState::not_init()
        }
    }

    /// The link id without the offset-link flags: registers with the same base are linked.
    pub const fn link_base(&self) -> u32 {
        self.id & !LINK_FLAGS
    }

    /// Whether this linked scalar's constant was added in 32 bits ([`LINK_DELTA32`]).
    pub const fn link_is_32(&self) -> bool {
        self.id & LINK_DELTA32 != 0
    }

    /// The constant this linked scalar is ahead of its plain copies, if it has one.
    pub const fn link_delta(&self) -> Option<i32> {
        if self.id & LINK_FLAGS != 0 {
            Some(self.off)
        } else {
            None
        }
    }

    /// Whether the register was written on this path.
    pub const fn is_init(&self) -> bool {
        !matches!(self.ty, RegType::NotInit)
    }

    /// Whether it is a scalar.
    pub const fn is_scalar(&self) -> bool {
        matches!(self.ty, RegType::Scalar)
    }

    /// Whether it is a pointer.
    pub const fn is_pointer(&self) -> bool {
        self.ty.is_pointer()
    }

    /// The scalar's single possible value.
    pub fn const_value(&self) -> Option<u64> {
        if self.is_scalar() {
            self.var.const_value()
        } else {
            None
        }
    }

    /// Whether this is the scalar 0 (the kernel's `register_is_null`).
    pub fn is_null(&self) -> bool {
        self.const_value() == Some(0)
    }

    /// Whether the variable part of a pointer is the constant 0.
    pub fn has_const_var(&self) -> bool {
        self.var.var_off.is_const()
    }

    /// Forget everything: an unknown scalar (keeps `subreg_def`, which the caller manages).
    pub fn mark_unknown(&mut self) {
        let subreg_def = self.subreg_def;
        *self = RegState::unknown_scalar();
        self.subreg_def = subreg_def;
    }

    /// The known constant `v` (keeps `subreg_def`).
    pub fn mark_known(&mut self, v: u64) {
        let subreg_def = self.subreg_def;
        *self = RegState::constant(v);
        self.subreg_def = subreg_def;
    }

    /// Unwritten again (after a call clobbers caller-saved registers).
    pub fn mark_not_init(&mut self) {
        *self = RegState::not_init();
    }

    /// The value of the low `bytes` bytes, zero-extended (a narrow load or fill): the kernel's
    /// `coerce_reg_to_size`.
    pub fn coerce_to_size(&mut self, bytes: u8) {
        if bytes >= 8 {
            return;
        }
        let bits = u32::from(bytes) * 8;
        let mask = (1u64 << bits) - 1;
        let v = self.var;
        if v.is_empty() {
            return;
        }
        let (lo, hi) = if (v.umin & !mask) == (v.umax & !mask) {
            (v.umin & mask, v.umax & mask)
        } else {
            (0, mask)
        };
        self.var = ScalarBounds {
            var_off: v.var_off.cast(bytes),
            umin: lo,
            umax: hi,
            smin: lo as i64,
            smax: hi as i64,
            ..ScalarBounds::unknown()
        }
        .synced();
        if hi != v.umax || lo != v.umin {
            self.id = 0;
        }
    }

    /// The sign extension of the low `bytes` bytes (a `ldxs*` load).
    pub fn coerce_to_size_sx(&mut self, bytes: u8) {
        if bytes >= 8 {
            return;
        }
        self.var =
            crate::bounds::alu::movsx(vm_core::isa::Width::W64, bytes.saturating_mul(8), &self.var);
        self.id = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_kernel_log() {
        let mv = RegType::MapValue {
            map: 0,
            maybe_null: true,
        };
        assert_eq!(mv.name(), "map_value_or_null");
        assert_eq!(mv.non_null().name(), "map_value");
        assert_eq!(RegType::Stack { frame: 0 }.name(), "fp");
        assert_eq!(
            RegType::Mem {
                size: 8,
                ringbuf: true,
                maybe_null: true
            }
            .name(),
            "ringbuf_mem_or_null"
        );
    }

    #[test]
    fn narrow_coercion_keeps_small_values_and_masks_large_ones() {
        let mut r = RegState::constant(0x1_0000_0005);
        r.coerce_to_size(4);
        assert_eq!(r.const_value(), Some(5));
        let mut r = RegState::unknown_scalar();
        r.coerce_to_size(1);
        assert_eq!((r.var.umin, r.var.umax), (0, 255));
    }
}
