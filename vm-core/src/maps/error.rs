//! Errors of the map layer.
//!
//! Two kinds, because they happen at different times and go to different audiences:
//! [`MapError`] is a creation-time failure (a map definition the kernel's `BPF_MAP_CREATE`
//! would refuse, or one the interpreter does not model) and goes to the person running the
//! tool; [`MapErrno`] is a run-time result of a map operation and goes back to the BPF
//! program as the helper's negative return value (or to the user-space caller, like the
//! `bpf()` syscall's `errno`).

use crate::program::MapType;

/// Creating a map from its [`MapDef`](crate::program::MapDef) failed.
///
/// Carries the map's position (its `fd`, the index into `Program::maps`) and its name so the
/// message points at the offending definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("map {}`{name}` ({}): {reason}", fd_prefix(*.fd), type_name(*.map_type))]
pub struct MapError {
    /// Index of the definition in the set (`None` when created outside a [`MapSet`](super::MapSet)).
    pub fd: Option<usize>,
    /// The definition's name.
    pub name: String,
    /// The definition's type.
    pub map_type: MapType,
    /// What is wrong.
    pub reason: MapErrorKind,
}

fn fd_prefix(fd: Option<usize>) -> String {
    match fd {
        Some(fd) => format!("#{fd} "),
        None => String::new(),
    }
}

fn type_name(t: MapType) -> String {
    match t {
        MapType::Other(n) => format!("type {n}"),
        t => format!("{t:?}"),
    }
}

/// Why a map definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapErrorKind {
    /// A map type the interpreter does not implement.
    #[error("map type {0} is not supported by the interpreter")]
    UnsupportedType(u32),
    /// `key_size` is out of range for this map type.
    #[error("key_size {got} is invalid ({expected})")]
    KeySize {
        /// The definition's key size.
        got: u32,
        /// What the kernel requires.
        expected: &'static str,
    },
    /// `value_size` is out of range for this map type.
    #[error("value_size {got} is invalid ({expected})")]
    ValueSize {
        /// The definition's value size.
        got: u32,
        /// What the kernel requires.
        expected: &'static str,
    },
    /// `max_entries` is out of range for this map type.
    #[error("max_entries {got} is invalid ({expected})")]
    MaxEntries {
        /// The definition's capacity.
        got: u32,
        /// What the kernel requires.
        expected: &'static str,
    },
    /// A `map_flags` combination the kernel refuses.
    #[error("map_flags {flags:#x} are invalid ({why})")]
    Flags {
        /// The definition's flags.
        flags: u32,
        /// Which rule they break.
        why: &'static str,
    },
    /// The value memory would exceed the interpreter's per-map limit.
    #[error("needs {bytes} bytes of value memory, more than the limit of {limit}")]
    TooLarge {
        /// Bytes the slab would need.
        bytes: u64,
        /// The limit ([`MAX_SLAB_BYTES`](super::MAX_SLAB_BYTES)).
        limit: u64,
    },
    /// The global-data initial image does not fit the value.
    #[error("initial value of {len} bytes does not fit value_size {value_size}")]
    InitialValue {
        /// Length of the initial image.
        len: usize,
        /// The map's value size.
        value_size: u32,
    },
    /// Initial values are only meaningful for single-copy arrays.
    #[error("an initial value is only supported on array maps")]
    InitialValueNotArray,
    /// The set was created for zero CPUs.
    #[error("the number of CPUs must be at least 1")]
    NoCpus,
}

/// A failed map operation, as the kernel reports it: each variant is one `errno`.
///
/// Helpers return `-errno` in `r0` ([`MapErrno::as_helper_ret`]); the syscall returns -1 and
/// sets `errno` ([`MapErrno::errno`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum MapErrno {
    /// `EPERM` (1): write to a read-only or frozen map.
    #[error("EPERM")]
    Perm,
    /// `ENOENT` (2): no such key.
    #[error("ENOENT")]
    NoEnt,
    /// `E2BIG` (7): index out of range, or a full hash map.
    #[error("E2BIG")]
    TooBig,
    /// `EAGAIN` (11): no room in a ring buffer (`bpf_ringbuf_output`).
    #[error("EAGAIN")]
    Again,
    /// `ENOMEM` (12): allocation failure (kept for completeness; our maps preallocate).
    #[error("ENOMEM")]
    NoMem,
    /// `EBUSY` (16): map locked by a recursive update (not produced by this single-threaded model).
    #[error("EBUSY")]
    Busy,
    /// `EEXIST` (17): `BPF_NOEXIST` on an existing key, or on any array index.
    #[error("EEXIST")]
    Exist,
    /// `ENODEV` (19): cpumap entry for a CPU that does not exist.
    #[error("ENODEV")]
    NoDev,
    /// `EINVAL` (22): bad flags, bad sizes, operation not valid on this map type.
    #[error("EINVAL")]
    Inval,
    /// `ENOSPC` (28): no space (kept for completeness; the ring buffer reports `EAGAIN`).
    #[error("ENOSPC")]
    NoSpc,
    /// `EOVERFLOW` (75): cpumap queue size above the kernel's limit.
    #[error("EOVERFLOW")]
    Overflow,
    /// `EOPNOTSUPP` (95): perf event on another CPU, or an operation a map type lacks.
    #[error("EOPNOTSUPP")]
    OpNotSupp,
    /// `ENOTSUPP` (524, kernel-internal): ring buffer lookup/update/delete from user space.
    #[error("ENOTSUPP")]
    NotSupp,
}

impl MapErrno {
    /// The positive `errno` value.
    pub fn errno(self) -> i32 {
        match self {
            MapErrno::Perm => 1,
            MapErrno::NoEnt => 2,
            MapErrno::TooBig => 7,
            MapErrno::Again => 11,
            MapErrno::NoMem => 12,
            MapErrno::Busy => 16,
            MapErrno::Exist => 17,
            MapErrno::NoDev => 19,
            MapErrno::Inval => 22,
            MapErrno::NoSpc => 28,
            MapErrno::Overflow => 75,
            MapErrno::OpNotSupp => 95,
            MapErrno::NotSupp => 524,
        }
    }

    /// What a helper leaves in `r0`: the negative errno, sign-extended to 64 bits.
    pub fn as_helper_ret(&self) -> i64 {
        -i64::from(self.errno())
    }

    /// The symbolic name (`"ENOENT"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            MapErrno::Perm => "EPERM",
            MapErrno::NoEnt => "ENOENT",
            MapErrno::TooBig => "E2BIG",
            MapErrno::Again => "EAGAIN",
            MapErrno::NoMem => "ENOMEM",
            MapErrno::Busy => "EBUSY",
            MapErrno::Exist => "EEXIST",
            MapErrno::NoDev => "ENODEV",
            MapErrno::Inval => "EINVAL",
            MapErrno::NoSpc => "ENOSPC",
            MapErrno::Overflow => "EOVERFLOW",
            MapErrno::OpNotSupp => "EOPNOTSUPP",
            MapErrno::NotSupp => "ENOTSUPP",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_returns_are_the_kernels_negative_errnos() {
        let expect = [
            (MapErrno::Perm, -1),
            (MapErrno::NoEnt, -2),
            (MapErrno::TooBig, -7),
            (MapErrno::Again, -11),
            (MapErrno::NoMem, -12),
            (MapErrno::Busy, -16),
            (MapErrno::Exist, -17),
            (MapErrno::NoDev, -19),
            (MapErrno::Inval, -22),
            (MapErrno::NoSpc, -28),
            (MapErrno::Overflow, -75),
            (MapErrno::OpNotSupp, -95),
            (MapErrno::NotSupp, -524),
        ];
        for (e, ret) in expect {
            assert_eq!(e.as_helper_ret(), ret, "{e}");
            assert_eq!(e.to_string(), e.name());
        }
    }

    #[test]
    fn creation_error_names_the_map() {
        let e = MapError {
            fd: Some(3),
            name: "counters".into(),
            map_type: MapType::Hash,
            reason: MapErrorKind::KeySize {
                got: 0,
                expected: "must be 1..=512",
            },
        };
        assert_eq!(
            e.to_string(),
            "map #3 `counters` (Hash): key_size 0 is invalid (must be 1..=512)"
        );
    }
}
