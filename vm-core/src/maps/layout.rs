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
pub(crate) fn alloc_slab(slots: u64, stride: usize) -> Result<Slab, MapErrorKind> {
    let bytes = slots.saturating_mul(stride as u64);
    if bytes > MAX_SLAB_BYTES {
        return Err(MapErrorKind::TooLarge {
            bytes,
            limit: MAX_SLAB_BYTES,
        });
    }
    Ok(Slab::zeroed(bytes as usize))
}

/// A fixed-size zeroed byte buffer owned through a raw pointer.
///
/// Why not a `Box<[u8]>`: the interpreter keeps raw pointers into value slabs in its region
/// table for a whole run while helpers borrow the map mutably (`&mut Map` for a lookup or an
/// update). A `Box` asserts unique ownership of its bytes whenever the map is borrowed, which
/// would invalidate those pointers and force the interpreter to re-derive every map's window
/// after every map helper call. Here the bytes are reached only through the one root pointer
/// (slices are created from it on demand), so pointers derived from [`Slab::as_raw`] stay
/// valid for the slab's life, and the table is built once.
pub(crate) struct Slab {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: a Slab owns its bytes exclusively (like a Box<[u8]>); the raw pointer is an
// ownership detail, not shared state.
unsafe impl Send for Slab {}
// SAFETY: shared access only reads through `&[u8]` (see `Deref`).
unsafe impl Sync for Slab {}

impl Slab {
    /// `len` zero bytes (`vec![0; n]` uses the zeroing allocator, so untouched pages are
    /// never committed).
    pub(crate) fn zeroed(len: usize) -> Slab {
        Slab::from_box(vec![0u8; len].into_boxed_slice())
    }

    fn from_box(b: Box<[u8]>) -> Slab {
        let len = b.len();
        let raw: *mut [u8] = Box::into_raw(b);
        Slab {
            // A pointer from `Box::into_raw` is never null.
            ptr: std::ptr::NonNull::new(raw.cast::<u8>()).unwrap_or(std::ptr::NonNull::dangling()),
            len,
        }
    }

    /// The root pointer and length: pointers derived from it stay valid while the slab lives
    /// (see the type's docs).
    pub(crate) fn as_raw(&self) -> (*mut u8, usize) {
        (self.ptr.as_ptr(), self.len)
    }
}

impl std::ops::Deref for Slab {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` owns `len` initialized bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Slab {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only slice handed out.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Clone for Slab {
    fn clone(&self) -> Slab {
        Slab::from_box(Box::from(&**self))
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        let raw = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
        // SAFETY: `ptr`/`len` came from `Box::into_raw` of a boxed slice and are freed
        // exactly once, here.
        drop(unsafe { Box::from_raw(raw) });
    }
}

/// A 4-byte array index, or `None` when the key has another length.
#[inline]
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
