//! Shared rules for laying out value memory and checking operation flags.
//!
//! Every map keeps its values in one zeroed slab allocated at creation and never resized,
//! because BPF programs hold raw pointers into it (the interpreter maps the slab as a memory
//! region). Value slots are `round_up(value_size, 8)` apart, as the kernel lays out array
//! elements and per-CPU copies, so every value starts 8-byte aligned.

use super::error::{MapErrno, MapErrorKind};
use super::{BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST};

/// Upper bound on one map's slab, so a hostile `max_entries` fails cleanly instead of
/// aborting the process on allocation failure. 1 GiB: zeroed memory is committed lazily by
/// the OS, so a large but sparsely used map costs little.
pub const MAX_SLAB_BYTES: u64 = 1 << 30;

/// Kernel limit on a per-CPU value (`PCPU_MIN_UNIT_SIZE`).
pub(crate) const PERCPU_VALUE_LIMIT: u32 = 32 * 1024;

/// Kernel limit on a hash key (`MAX_BPF_STACK`): keys live on the BPF stack.
pub(crate) const HASH_KEY_LIMIT: u32 = 512;

/// Our cap on any single value (the kernel's `KMALLOC_MAX_SIZE` on x86-64 is 4 MiB).
pub(crate) const VALUE_LIMIT: u32 = 1 << 22;

/// Distance between consecutive value slots.
pub(crate) fn stride(value_size: u32) -> usize {
    (value_size as usize).div_ceil(8) * 8
}

/// Allocates a zeroed slab of `slots * stride` bytes, refusing sizes above [`MAX_SLAB_BYTES`].
pub(crate) fn alloc_slab(slots: u64, stride: usize) -> Result<Box<[u8]>, MapErrorKind> {
    let bytes = slots.saturating_mul(stride as u64);
    if bytes > MAX_SLAB_BYTES {
        return Err(MapErrorKind::TooLarge {
            bytes,
            limit: MAX_SLAB_BYTES,
        });
    }
    // `vec![0; n]` uses the zeroing allocator, so untouched pages are never committed.
    Ok(vec![0u8; bytes as usize].into_boxed_slice())
}

/// A 4-byte array index, or `None` when the key has another length.
pub(crate) fn key_index(key: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = key.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// The check every update starts with: only `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`, optionally
/// with `BPF_F_LOCK`, are defined.
pub(crate) fn check_update_flags(flags: u64) -> Result<(), MapErrno> {
    if flags & !BPF_F_LOCK > BPF_EXIST {
        return Err(MapErrno::Inval);
    }
    Ok(())
}

/// The existence check the hash maps run once they know whether the key is present.
pub(crate) fn check_existence(flags: u64, exists: bool) -> Result<(), MapErrno> {
    match (flags & !BPF_F_LOCK, exists) {
        (BPF_NOEXIST, true) => Err(MapErrno::Exist),
        (BPF_EXIST, false) => Err(MapErrno::NoEnt),
        _ => Ok(()),
    }
}

/// Whether `flags` ask for `BPF_F_LOCK`. None of our values carry a `bpf_spin_lock` (that
/// needs BTF we do not model), so the kernel's answer is always `EINVAL`.
pub(crate) fn wants_lock(flags: u64) -> bool {
    flags & BPF_F_LOCK != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stride_rounds_up_to_eight() {
        assert_eq!(stride(1), 8);
        assert_eq!(stride(8), 8);
        assert_eq!(stride(9), 16);
        assert_eq!(stride(48), 48);
    }

    #[test]
    fn huge_slabs_are_refused() {
        assert!(matches!(
            alloc_slab(u64::from(u32::MAX), 64),
            Err(MapErrorKind::TooLarge { .. })
        ));
        assert_eq!(alloc_slab(3, 16).map(|s| s.len()), Ok(48));
    }

    #[test]
    fn flag_rules() {
        assert_eq!(check_update_flags(0), Ok(()));
        assert_eq!(check_update_flags(BPF_EXIST | BPF_F_LOCK), Ok(()));
        assert_eq!(check_update_flags(3), Err(MapErrno::Inval));
        assert_eq!(check_update_flags(8), Err(MapErrno::Inval));
        assert_eq!(check_existence(BPF_NOEXIST, true), Err(MapErrno::Exist));
        assert_eq!(check_existence(BPF_EXIST, false), Err(MapErrno::NoEnt));
        assert_eq!(check_existence(0, false), Ok(()));
        assert_eq!(key_index(&[1, 0, 0, 0]), Some(1));
        assert_eq!(key_index(&[1, 0, 0]), None);
    }
}
