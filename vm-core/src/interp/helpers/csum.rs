//! Checksum helpers: the kernel's incremental Internet checksum arithmetic
//! (`include/net/checksum.h`, RFC 1624), done on host-order (little-endian) 16/32-bit values
//! exactly as the kernel does on x86-64, so results match bit for bit, including the
//! `0x0000` / `0xffff` representation choices of each formula.
//!
//! The test-run skb has `ip_summed == CHECKSUM_NONE`, so only the packet's checksum field
//! changes (no `skb->csum` bookkeeping) and `bpf_csum_update` reports `-ENOTSUPP`.

use super::super::env::Env;
use super::super::fault::FaultKind;
use super::{EFAULT, EINVAL, ENOTSUPP, errno};

fn csum_add(a: u32, b: u32) -> u32 {
    let r = a.wrapping_add(b);
    r.wrapping_add(u32::from(r < b))
}

fn csum_sub(a: u32, b: u32) -> u32 {
    csum_add(a, !b)
}

fn csum_fold(csum: u32) -> u16 {
    let mut s = csum;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

fn csum16_add(csum: u16, addend: u16) -> u16 {
    let r = csum.wrapping_add(addend);
    r.wrapping_add(u16::from(r < addend))
}

fn csum16_sub(csum: u16, addend: u16) -> u16 {
    csum16_add(csum, !addend)
}

/// `csum_replace4`.
fn replace4(sum: u16, from: u32, to: u32) -> u16 {
    let tmp = csum_sub(!u32::from(sum), from);
    csum_fold(csum_add(tmp, to))
}

/// `csum_replace2` (16-bit arithmetic).
fn replace2(sum: u16, old: u16, new: u16) -> u16 {
    !csum16_add(csum16_sub(!sum, old), new)
}

/// `csum_replace_by_diff`.
fn replace_by_diff(sum: u16, diff: u32) -> u16 {
    csum_fold(csum_add(diff, !u32::from(sum)))
}

/// `csum_partial` as x86-64 computes it: 64-bit words added with end-around carry, the
/// tail zero-padded, folded to 32 bits.
pub(crate) fn csum_partial(data: &[u8], seed: u32) -> u32 {
    let mut acc = u64::from(seed);
    let add = |acc: u64, w: u64| {
        let (s, c) = acc.overflowing_add(w);
        s.wrapping_add(u64::from(c))
    };
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        acc = add(acc, u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        acc = add(acc, u64::from_le_bytes(w));
    }
    (acc.wrapping_add(acc.rotate_right(32)) >> 32) as u32
}

/// `csum_from32to16`: the 16-bit ones' complement fold, not inverted.
fn from32to16(sum: u32) -> u16 {
    (sum.wrapping_add(sum.rotate_right(16)) >> 16) as u16
}

/// Checks `offset` and returns the checksum field's position in the packet data, or the
/// errno the kernel returns.
fn field(env: &Env<'_>, offset: u32) -> Result<usize, i64> {
    if offset > 0xffff || offset & 1 != 0 {
        return Err(EFAULT);
    }
    if offset as usize + 2 > env.pkt.len() {
        return Err(EFAULT);
    }
    Ok(offset as usize)
}

fn get16(env: &Env<'_>, o: usize) -> u16 {
    let d = env.pkt.data();
    u16::from_le_bytes([d[o], d[o + 1]])
}

fn put16(env: &mut Env<'_>, o: usize, v: u16) {
    env.pkt.data_mut()[o..o + 2].copy_from_slice(&v.to_le_bytes());
    env.pkt.map_into(env.mem);
}

const BPF_F_HDR_FIELD_MASK: u64 = 0xf;

/// `long bpf_l3_csum_replace(skb, u32 offset, u64 from, u64 to, u64 flags)`.
pub(super) fn l3_csum_replace(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let (offset, from, to, flags) = (a[1] as u32, a[2], a[3], a[4]);
    if flags & !BPF_F_HDR_FIELD_MASK != 0 {
        return Ok(errno(EINVAL));
    }
    let o = match field(env, offset) {
        Ok(o) => o,
        Err(e) => return Ok(errno(e)),
    };
    let sum = get16(env, o);
    let new = match flags & BPF_F_HDR_FIELD_MASK {
        0 if from != 0 => return Ok(errno(EINVAL)),
        0 => replace_by_diff(sum, to as u32),
        2 => replace2(sum, from as u16, to as u16),
        4 => replace4(sum, from as u32, to as u32),
        _ => return Ok(errno(EINVAL)),
    };
    put16(env, o, new);
    Ok(0)
}

/// `long bpf_l4_csum_replace(skb, u32 offset, u64 from, u64 to, u64 flags)`.
pub(super) fn l4_csum_replace(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    const BPF_F_PSEUDO_HDR: u64 = 1 << 4;
    const BPF_F_MARK_MANGLED_0: u64 = 1 << 5;
    const BPF_F_MARK_ENFORCE: u64 = 1 << 6;
    const BPF_F_IPV6: u64 = 1 << 7;
    let (offset, from, to, flags) = (a[1] as u32, a[2], a[3], a[4]);
    let known = BPF_F_MARK_MANGLED_0
        | BPF_F_MARK_ENFORCE
        | BPF_F_PSEUDO_HDR
        | BPF_F_HDR_FIELD_MASK
        | BPF_F_IPV6;
    if flags & !known != 0 {
        return Ok(errno(EINVAL));
    }
    let o = match field(env, offset) {
        Ok(o) => o,
        Err(e) => return Ok(errno(e)),
    };
    let mmzero = flags & BPF_F_MARK_MANGLED_0 != 0;
    let mforce = flags & BPF_F_MARK_ENFORCE != 0;
    let sum = get16(env, o);
    if mmzero && !mforce && sum == 0 {
        return Ok(0);
    }
    // With CHECKSUM_NONE, inet_proto_csum_replace{2,4,_by_diff} only fix the field; the
    // 16-bit variant widens its operands and uses the 32-bit formula.
    let mut new = match flags & BPF_F_HDR_FIELD_MASK {
        0 if from != 0 => return Ok(errno(EINVAL)),
        0 => replace_by_diff(sum, to as u32),
        2 => replace4(sum, u32::from(from as u16), u32::from(to as u16)),
        4 => replace4(sum, from as u32, to as u32),
        _ => return Ok(errno(EINVAL)),
    };
    if mmzero && new == 0 {
        new = 0xffff; // CSUM_MANGLED_0
    }
    put16(env, o, new);
    Ok(0)
}

/// `s64 bpf_csum_diff(from, u32 from_size, to, u32 to_size, __wsum seed)`; since Linux 6.13
/// the result is folded to 16 bits on every architecture.
pub(super) fn csum_diff(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let (from, from_size, to, to_size, seed) = (a[0], a[1] as u32, a[2], a[3] as u32, a[4] as u32);
    if from_size > 4096 || to_size > 4096 {
        return Ok(errno(EINVAL));
    }
    let mut f = vec![0u8; from_size as usize];
    let mut t = vec![0u8; to_size as usize];
    env.mem.copy_in(from, &mut f)?;
    env.mem.copy_in(to, &mut t)?;
    let ret = if from_size != 0 && to_size != 0 {
        csum_sub(csum_partial(&t, seed), csum_partial(&f, 0))
    } else if to_size != 0 {
        csum_partial(&t, seed)
    } else if from_size != 0 {
        !csum_partial(&f, !seed)
    } else {
        seed
    };
    Ok(u64::from(from32to16(ret)))
}

/// `s64 bpf_csum_update(skb, __wsum csum)`: `-ENOTSUPP` unless `CHECKSUM_COMPLETE`, which
/// a test-run skb never is.
pub(super) fn csum_update(_: &mut Env<'_>, _: [u64; 5]) -> Result<u64, FaultKind> {
    Ok(errno(ENOTSUPP))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Full Internet checksum of `data` (for checking incremental updates).
    fn full(data: &[u8]) -> u16 {
        csum_fold(csum_partial(data, 0))
    }

    #[test]
    fn incremental_updates_match_recomputation() {
        // An IPv4 header with a correct checksum; change the TTL/protocol word.
        let mut h: [u8; 20] = [
            0x45, 0, 0, 0x54, 0, 0, 0x40, 0, 0x40, 0x01, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = full(&h);
        h[10..12].copy_from_slice(&c.to_le_bytes());
        assert_eq!(full(&h), 0);
        let old = u16::from_le_bytes([h[8], h[9]]);
        h[8] = 0x3f;
        let new = u16::from_le_bytes([h[8], h[9]]);
        let sum = u16::from_le_bytes([h[10], h[11]]);
        let fixed = replace2(sum, old, new);
        h[10..12].copy_from_slice(&fixed.to_le_bytes());
        assert_eq!(full(&h), 0);
        // 32-bit replacement of the source address.
        let old = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        h[12..16].copy_from_slice(&[192, 168, 1, 1]);
        let new = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        let sum = u16::from_le_bytes([h[10], h[11]]);
        let fixed = replace4(sum, old, new);
        h[10..12].copy_from_slice(&fixed.to_le_bytes());
        assert_eq!(full(&h), 0);
    }

    #[test]
    fn partial_sums_fold_like_the_kernel() {
        assert_eq!(csum_partial(&[], 0), 0);
        assert_eq!(from32to16(csum_partial(&[1, 2, 3, 4], 0)), 0x0604);
        assert_eq!(from32to16(0xffff_0001), 0x0001);
        // Odd lengths are zero-padded.
        assert_eq!(csum_partial(&[0xff], 0), 0xff);
    }
}
