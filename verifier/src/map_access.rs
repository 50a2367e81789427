//! What the map's flags allow a program to do with its values, and what a read of a frozen
//! read-only map yields.
//!
//! Why: global data (`.rodata`, Cilium's `.rodata.config`) is an array map the program may
//! only read (`BPF_F_RDONLY_PROG`) and that the loader freezes after writing its contents.
//! The kernel then reads such a map at verification time: a load at a constant offset gives
//! the constant stored there, so configuration branches are decided and the dead side is
//! never walked. Cilium relies on it (a header length read from the config bounds a packet
//! access); without it the walk meets accesses the real configuration never makes.
//!
//! The verifier cannot see whether a map was frozen. The convention used here is libbpf's
//! (and the one the project's kernel loader follows): a `BPF_F_RDONLY_PROG` map that comes
//! with initial contents is frozen before the program is loaded. Maps without initial
//! contents are never assumed frozen.

use vm_core::{MapDef, MapType};

/// `BPF_F_RDONLY_PROG`: the program may read but not write the map's values.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_WRONLY_PROG`: the program may write but not read the map's values.
pub const BPF_F_WRONLY_PROG: u32 = 1 << 8;

/// Whether the program may write values of `def` (the kernel's `BPF_MAP_CAN_WRITE`).
pub fn can_write(def: &MapDef) -> bool {
    def.flags & BPF_F_RDONLY_PROG == 0
}

/// Whether the program may read values of `def` (the kernel's `BPF_MAP_CAN_READ`).
pub fn can_read(def: &MapDef) -> bool {
    def.flags & BPF_F_WRONLY_PROG == 0
}

/// Whether the map's contents are known at verification time (read-only for the program and
/// frozen by the loader, see the module documentation).
pub fn is_frozen_rdonly(def: &MapDef) -> bool {
    def.flags & BPF_F_RDONLY_PROG != 0 && def.initial_value.is_some()
}

/// Why a direct read of a frozen map could not be done (the kernel's
/// `map_direct_value_addr` failing: the load is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectReadError {
    /// Only single-element arrays expose their value's address (`ENOTSUPP`).
    NotSupported,
    /// The offset lies past the value (`EINVAL`).
    OutOfRange,
}

/// The value a `size`-byte load at `off` of a frozen read-only map gives (sign-extended
/// when `signed`), or `None` when the map's contents are not known (the load gives an
/// unknown scalar). Bytes past the initial contents read as zero: the loader sizes the
/// value to `value_size` and zero-fills it.
pub fn direct_read(
    def: &MapDef,
    off: i64,
    size: usize,
    signed: bool,
) -> Option<Result<u64, DirectReadError>> {
    if !is_frozen_rdonly(def) {
        return None;
    }
    let init = def.initial_value.as_deref().unwrap_or(&[]);
    if def.map_type != MapType::Array {
        // Only arrays can be read directly; others stay unknown.
        return None;
    }
    if def.max_entries != 1 {
        return Some(Err(DirectReadError::NotSupported));
    }
    let start = match usize::try_from(off) {
        Ok(s) if s < def.value_size as usize => s,
        _ => return Some(Err(DirectReadError::OutOfRange)),
    };
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().take(size.min(8)).enumerate() {
        *b = init.get(start + i).copied().unwrap_or(0);
    }
    let raw = u64::from_le_bytes(bytes);
    let v = match (size, signed) {
        (1, true) => raw as u8 as i8 as i64 as u64,
        (2, true) => raw as u16 as i16 as i64 as u64,
        (4, true) => raw as u32 as i32 as i64 as u64,
        _ => raw,
    };
    Some(Ok(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rodata(init: Option<Vec<u8>>) -> MapDef {
        MapDef {
            name: ".rodata".to_string(),
            map_type: MapType::Array,
            key_size: 4,
            value_size: 16,
            max_entries: 1,
            flags: BPF_F_RDONLY_PROG,
            initial_value: init,
        }
    }

    #[test]
    fn frozen_rodata_reads_its_bytes() {
        let m = rodata(Some(vec![14, 0, 0xff, 0xff, 1, 2, 3, 4]));
        assert_eq!(direct_read(&m, 0, 1, false), Some(Ok(14)));
        assert_eq!(direct_read(&m, 2, 2, false), Some(Ok(0xffff)));
        assert_eq!(direct_read(&m, 2, 2, true), Some(Ok(u64::MAX)));
        assert_eq!(direct_read(&m, 4, 4, false), Some(Ok(0x0403_0201)));
        assert_eq!(
            direct_read(&m, 12, 4, false),
            Some(Ok(0)),
            "zero-filled tail"
        );
        assert!(!can_write(&m));
        assert!(can_read(&m));
    }

    #[test]
    fn unknown_contents_stay_unknown() {
        assert_eq!(direct_read(&rodata(None), 0, 1, false), None);
        let mut m = rodata(Some(vec![1]));
        m.flags = 0;
        assert_eq!(direct_read(&m, 0, 1, false), None);
    }

    #[test]
    fn multi_element_arrays_cannot_be_read_directly() {
        let mut m = rodata(Some(vec![1]));
        m.max_entries = 2;
        assert_eq!(
            direct_read(&m, 0, 1, false),
            Some(Err(DirectReadError::NotSupported))
        );
    }
}
