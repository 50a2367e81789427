//! `ld_field` steps of [`super::x64`]'s blocks ([`super::Step::Ld`]), and their shifts
//! ([`shift`], moved here from `x64` to keep that file under 800 lines).
//!
//! # Why
//!
//! The lowering extracts packet header fields from the transfer registers a byte or a
//! half at a time (`ld_field_w_clr[d, 0001, $xfer, >>rot24]`), and builds wider ones from
//! such bytes (`ld_field[d, 0010, ...]` after a cleared one). As a rotate and a mask of
//! the slot that is three host instructions, and the merge's `and` with `keep` one more;
//! but when the mask picks whole bytes that the rotate keeps together, the field is one
//! zero-extending load of those bytes from the slot (little-endian, as the file is on
//! this host) and, for a mask above bit 0, a shift; and the `and` is left out when eax
//! can have no bit outside `keep` (the `ld_field` before cleared them). Callgrind,
//! `simspeed pre`: the demo filter's native code 223.0 -> 213.0 host instructions per
//! frame with the same for a `ctm` read's masked last word (`x64_mem`).

use super::x64::{EAX, Held, S8, S9, Val, load, load_eax, store};
use super::*;
use dynasmrt::{DynasmApi, dynasm, x64::Assembler};

/// `ld_field`: `d = (d & keep) | (b.rotate_right(rot) & mask)` (`old` is `d`'s value),
/// computed in eax directly when nothing of `d` is kept; stored to `to`. `ones`: the bits
/// of eax that may be set (when it holds `old`); returns those of the result. Whole bytes
/// are loaded as such ([`bytes_of`]), and the `and` with `keep` is left out when `ones`
/// has nothing outside it (the module docs).
pub(super) fn ld(
    a: &mut Assembler,
    (old, to, b): (Val, D, Val),
    (rot, mask, keep): (u8, u32, u32),
    (h, ones): (Held, u32),
) -> u32 {
    let r = if keep == 0 { EAX } else { S8 };
    match b {
        Val::Const(k) => {
            let k = k.rotate_right(u32::from(rot)) & mask;
            dynasm!(a ; .arch x64 ; mov Rd(r), k as i32);
        }
        Val::Slot(o) if !h.has(b) && bytes_of(rot, mask).is_some() => {
            let (at, wide, s) = bytes_of(rot, mask).unwrap_or((0, false, 0));
            if wide {
                dynasm!(a ; .arch x64 ; movzx Rd(r), WORD [rdi + o + at]);
            } else {
                dynasm!(a ; .arch x64 ; movzx Rd(r), BYTE [rdi + o + at]);
            }
            if s != 0 {
                dynasm!(a ; .arch x64 ; shl Rd(r), s as i8);
            }
        }
        v => {
            if h.has(v) {
                if r != EAX {
                    dynasm!(a ; .arch x64 ; mov Rd(r), eax);
                }
            } else {
                load(a, r, v);
            }
            if rot % 32 != 0 {
                dynasm!(a ; .arch x64 ; ror Rd(r), (rot % 32) as i8);
            }
            dynasm!(a ; .arch x64 ; and Rd(r), mask as i32);
        }
    }
    let mut out = mask;
    if keep != 0 {
        // r8d is not eax: what eax holds is still there.
        let kept = match old {
            Val::Const(k) => {
                dynasm!(a ; .arch x64 ; mov eax, (k & keep) as i32);
                k & keep
            }
            _ => {
                let ones = if h.has(old) { ones } else { u32::MAX };
                load_eax(a, old, h);
                if ones & !keep != 0 {
                    dynasm!(a ; .arch x64 ; and eax, keep as i32);
                }
                ones & keep
            }
        };
        dynasm!(a ; .arch x64 ; or eax, r8d);
        out |= kept;
    }
    store(a, to);
    out
}

/// Where `v.rotate_right(rot) & mask` is whole bytes of `v`, contiguous in memory (on
/// this little-endian host): `mask` is `0xff` or `0xffff` shifted by `s` bits, a
/// multiple of 8, and the rotate brings bytes in that do not wrap around the word. Then
/// the value is the byte (`false`) or half (`true`) at byte offset `at` of `v`, shifted
/// left by `s`: `Some((at, half, s))`.
fn bytes_of(rot: u8, mask: u32) -> Option<(i32, bool, u8)> {
    let rot = u32::from(rot) % 32;
    if !rot.is_multiple_of(8) || mask == 0 {
        return None;
    }
    let s = mask.trailing_zeros();
    let (half, w) = match mask >> s {
        0xff => (false, 8),
        0xffff => (true, 16),
        _ => return None,
    };
    let start = (s + rot) % 32;
    (s.is_multiple_of(8) && start + w <= 32).then_some(((start / 8) as i32, half, s as u8))
}

/// Two `ld_field` steps of bytes of one slot into one register, the first clearing it and
/// the second keeping the first's bits, that together put two adjacent bytes of the slot
/// into adjacent bytes of the register in swapped order (a big-endian half, as the
/// lowering builds `ntohs` of a header field: `ld_field_w_clr[d, 0001, $x, >>rot8]`
/// then `ld_field[d, 0010, $x, >>rot24]`): `Some((q, s))` when the result is
/// `(v[q] << 8 | v[q + 1]) << s` of the slot's little-endian bytes `v`, for
/// [`swapped_half`]. `first` and `second` are each step's `(rot, mask, keep)`.
///
/// Why: each byte a zero-extending load, the second shifted and merged, was four host
/// instructions per half; a load of the half and a rotate of its two bytes are two
/// (callgrind, `simspeed pre`: the demo filter's UDP port, 2 host instructions per frame).
pub(super) fn swap_pair(first: (u8, u32, u32), second: (u8, u32, u32)) -> Option<(i32, u8)> {
    let ((r1, m1, k1), (r2, m2, k2)) = (first, second);
    // The first clears the register (its result has no bit outside `m1`), the second
    // keeps all of it: the result is the first's bytes or the second's.
    if k1 != 0 || m1 & !k2 != 0 {
        return None;
    }
    let (Some((a1, false, s1)), Some((a2, false, s2))) = (bytes_of(r1, m1), bytes_of(r2, m2))
    else {
        return None;
    };
    // The low byte of the result from byte `lo`, the high one from the byte before it.
    let ((lo, sl), (hi, sh)) = if s1 < s2 {
        ((a1, s1), (a2, s2))
    } else {
        ((a2, s2), (a1, s1))
    };
    (sh == sl + 8 && hi + 1 == lo && sl <= 16).then_some((hi, sl))
}

/// The two steps of [`swap_pair`] at `(q, s)` of the slot at offset `o`, stored to `to`:
/// eax = the half at byte `q`, its bytes swapped, shifted left by `s`. Returns the bits of
/// eax that may be set.
pub(super) fn swapped_half(a: &mut Assembler, o: i32, (q, s): (i32, u8), to: D) -> u32 {
    dynasm!(a ; .arch x64
        ; movzx eax, WORD [rdi + o + q]
        ; rol ax, 8);
    if s != 0 {
        dynasm!(a ; .arch x64 ; shl eax, s as i8);
    }
    store(a, to);
    0xffff << s
}

/// `eax = shift(kind, a, b, count)`, the count a constant or in cl (`None`).
pub(super) fn shift(
    a: &mut Assembler,
    kind: ShiftKind,
    (av, bv): (Val, Val),
    n: Option<u8>,
    h: Held,
) {
    load_eax(a, bv, h);
    if kind == ShiftKind::DoubleRight {
        load(a, S9, av);
    }
    match (kind, n) {
        (_, Some(0)) => {}
        (ShiftKind::Left, Some(k)) => dynasm!(a ; .arch x64 ; shl eax, k as i8),
        (ShiftKind::Right, Some(k)) => dynasm!(a ; .arch x64 ; shr eax, k as i8),
        (ShiftKind::ArithRight, Some(k)) => dynasm!(a ; .arch x64 ; sar eax, k as i8),
        (ShiftKind::RotRight, Some(k)) => dynasm!(a ; .arch x64 ; ror eax, k as i8),
        (_, Some(k)) => dynasm!(a ; .arch x64 ; shrd eax, r9d, k as i8),
        (ShiftKind::Left, None) => dynasm!(a ; .arch x64 ; shl eax, cl),
        (ShiftKind::Right, None) => dynasm!(a ; .arch x64 ; shr eax, cl),
        (ShiftKind::ArithRight, None) => dynasm!(a ; .arch x64 ; sar eax, cl),
        (ShiftKind::RotRight, None) => dynasm!(a ; .arch x64 ; ror eax, cl),
        (_, None) => dynasm!(a ; .arch x64 ; shrd eax, r9d, cl),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_bytes_of_a_field_are_found_exactly() {
        let vs = [
            0x0123_4567u32,
            0x89ab_cdef,
            0xdead_beef,
            0x8000_0001,
            u32::MAX,
        ];
        let mut masks: Vec<u32> = (0..32)
            .flat_map(|s| [0xffu32, 0xffff, 0xff_ffff, 0xf, 0x1ff].map(|m| m << s))
            .collect();
        masks.sort_unstable();
        masks.dedup();
        let mut found = 0;
        for rot in 0..32u8 {
            for &mask in &masks {
                let Some((at, half, sh)) = bytes_of(rot, mask) else {
                    continue;
                };
                found += 1;
                for v in vs {
                    let b = v.to_le_bytes();
                    let at = at as usize;
                    let got = if half {
                        u32::from(u16::from_le_bytes([b[at], b[at + 1]]))
                    } else {
                        u32::from(b[at])
                    };
                    assert_eq!(got << sh, v.rotate_right(u32::from(rot)) & mask);
                }
            }
        }
        // Bytes: 4 shifts x 4 rotates; halves: 3 shifts x 3 rotates each.
        assert_eq!(found, 16 + 9);
        assert!(bytes_of(4, 0xff).is_none() && bytes_of(24, 0xffff).is_none());
    }

    #[test]
    fn swapped_halves_are_found_exactly() {
        let vs = [0x0123_4567u32, 0x89ab_cdef, 0xdead_beef, 0x8000_0001];
        let mut found = 0;
        for i in 0..256u32 {
            let (m1, s1, m2, s2) = (i & 3, (i >> 2) & 3, (i >> 4) & 3, (i >> 6) & 3);
            let (mk1, mk2) = (0xffu32 << (8 * m1), 0xffu32 << (8 * m2));
            let (r1, r2) = ((8 * s1) as u8, (8 * s2) as u8);
            for keep1 in [0, !mk1] {
                let Some((q, s)) = swap_pair((r1, mk1, keep1), (r2, mk2, !mk2)) else {
                    continue;
                };
                found += 1;
                assert_eq!(keep1, 0);
                for v in vs {
                    let b = v.to_le_bytes();
                    let q = q as usize;
                    let got = (u32::from(b[q]) << 8 | u32::from(b[q + 1])) << s;
                    let first = v.rotate_right(u32::from(r1)) & mk1;
                    let want = (first & !mk2) | (v.rotate_right(u32::from(r2)) & mk2);
                    assert_eq!(got, want, "{i}");
                }
            }
        }
        // Three pairs of adjacent bytes of the slot into three of the register, either
        // byte first.
        assert_eq!(found, 3 * 3 * 2);
        // Not when the second clears the first's byte, nor of a half.
        assert!(swap_pair((8, 0xff, 0), (24, 0xff00, 0)).is_none());
        assert!(swap_pair((8, 0xff, 0), (24, 0xff00, 0xff)).is_some());
        assert!(swap_pair((8, 0xff, 0), (24, 0xff00, 0xff00_0000)).is_none());
        assert!(swap_pair((8, 0xffff, 0), (24, 0xff_0000, !0xff_0000)).is_none());
    }
}
