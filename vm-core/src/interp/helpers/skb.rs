//! `__sk_buff` helpers (tc and socket filters) and the legacy `LD_ABS`/`LD_IND` loads.
//!
//! Offsets are relative to `skb->data`: the Ethernet header for tc, the network header for
//! socket filters (see `context`). The test-run skb is linear, so "within the headlen" and
//! "within `skb->len`" coincide.

use super::super::context::{Packet, skb};
use super::super::env::Env;
use super::super::fault::FaultKind;
use super::{EFAULT, EINVAL, ENOMEM, errno};

/// `SKF_NET_OFF`: negative `LD_ABS` offsets from here address the network header.
const SKF_NET_OFF: i32 = -0x10_0000;
/// `SKF_LL_OFF`: negative `LD_ABS` offsets from here address the MAC header.
const SKF_LL_OFF: i32 = -0x20_0000;

/// The value of a legacy packet load of `size` bytes at `off` (network byte order), or
/// `None` when the kernel's `bpf_skb_load_helper_*` would fail (the program then returns 0).
pub(crate) fn ld_abs(pkt: &Packet, off: i32, size: usize) -> Option<u64> {
    let start = if off >= 0 {
        let off = off as usize;
        if off + size > pkt.len() {
            return None;
        }
        pkt.data + off
    } else {
        let (base, k) = if off >= SKF_NET_OFF {
            (pkt.net(), off - SKF_NET_OFF)
        } else if off >= SKF_LL_OFF {
            (pkt.mac(), off - SKF_LL_OFF)
        } else {
            return None;
        };
        let p = base.checked_add(k as usize)?;
        if p + size > pkt.end {
            return None;
        }
        p
    };
    let bytes = pkt.bytes(start, size)?;
    Some(bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
}

/// `long bpf_skb_store_bytes(skb, u32 offset, const void *from, u32 len, u64 flags)`.
pub(super) fn store_bytes(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    const BPF_F_RECOMPUTE_CSUM: u64 = 1;
    const BPF_F_INVALIDATE_HASH: u64 = 2;
    let (offset, from, len, flags) = (a[1] as u32, a[2], a[3] as u32, a[4]);
    if flags & !(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH) != 0 {
        return Ok(errno(EINVAL));
    }
    if offset > i32::MAX as u32 {
        return Ok(errno(EFAULT));
    }
    if u64::from(offset) + u64::from(len) > env.pkt.len() as u64 {
        return Ok(errno(EFAULT));
    }
    let mut buf = std::mem::take(&mut env.st.scratch);
    buf.clear();
    buf.resize(len as usize, 0);
    let read = env.mem.copy_in(from, &mut buf);
    if read.is_ok() {
        let o = offset as usize;
        env.pkt.data_mut()[o..o + buf.len()].copy_from_slice(&buf);
    }
    env.st.scratch = buf;
    read?;
    env.pkt.map_into(env.mem);
    if flags & BPF_F_INVALIDATE_HASH != 0 {
        env.ctx.clear_hash();
    }
    Ok(0)
}

/// `long bpf_skb_load_bytes(skb, u32 offset, void *to, u32 len)`: on failure the destination
/// is zeroed and `-EFAULT` returned.
pub(super) fn load_bytes(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let (offset, to, len) = (a[1] as u32, a[2], a[3] as u32);
    let ok =
        offset <= i32::MAX as u32 && u64::from(offset) + u64::from(len) <= env.pkt.len() as u64;
    if !ok {
        env.mem.zero(to, len)?;
        return Ok(errno(EFAULT));
    }
    let o = offset as usize;
    let mut buf = std::mem::take(&mut env.st.scratch);
    buf.clear();
    buf.extend_from_slice(&env.pkt.data()[o..o + len as usize]);
    let res = env.mem.copy_out(to, &buf);
    env.st.scratch = buf;
    res?;
    Ok(0)
}

/// `long bpf_skb_pull_data(skb, u32 len)`: the test-run skb is linear, so this only fails
/// when asking for more than the packet holds.
pub(super) fn pull_data(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let len = a[1] as u32;
    if len as usize > env.pkt.len() {
        Ok(errno(ENOMEM))
    } else {
        Ok(0)
    }
}

/// `u32 bpf_get_hash_recalc(skb)`: a flow hash over the packet's addresses, protocol and
/// ports, symmetric in direction like the kernel's (`__flow_hash_consistentify`). The
/// kernel keys its hash with a boot-time random secret; ours uses `VmConfig::prandom_seed`.
pub(super) fn get_hash_recalc(env: &mut Env<'_>, _: [u64; 5]) -> Result<u64, FaultKind> {
    if let Some(h) = env.ctx.valid_hash() {
        return Ok(u64::from(h));
    }
    let h = flow_hash(env.pkt.frame(), env.cfg.prandom_seed);
    env.ctx.set_hash(h);
    Ok(u64::from(h))
}

/// `void bpf_set_hash_invalid(skb)`.
pub(super) fn set_hash_invalid(env: &mut Env<'_>, _: [u64; 5]) -> Result<u64, FaultKind> {
    env.ctx.clear_hash();
    Ok(0)
}

/// `long bpf_set_hash(skb, u32 hash)`.
pub(super) fn set_hash(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    env.ctx.set_hash(a[1] as u32);
    Ok(0)
}

/// `u32 bpf_get_cgroup_classid(skb)`: the calling task's net_cls class id; a test run
/// happens in a task of the root cgroup, whose class id is 0.
pub(super) fn get_cgroup_classid(_: &mut Env<'_>, _: [u64; 5]) -> Result<u64, FaultKind> {
    Ok(0)
}

/// `long bpf_skb_vlan_push(skb, __be16 vlan_proto, u16 vlan_tci)`: the new tag becomes the
/// skb's accelerated (out-of-band) tag; a tag already there is first written into the
/// packet, which grows by 4 bytes at the head.
pub(super) fn vlan_push(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let mut proto = a[1] as u16;
    let tci = a[2] as u16;
    if proto != P8021Q && proto != P8021AD {
        proto = P8021Q;
    }
    if env.ctx.get32(skb::VLAN_PRESENT) != 0 {
        let (old_proto, old_tci) = (
            env.ctx.get32(skb::VLAN_PROTO) as u16,
            env.ctx.get32(skb::VLAN_TCI) as u16,
        );
        if !env.pkt.vlan_insert(old_proto, old_tci) {
            return Ok(errno(ENOMEM));
        }
        env.ctx.set32(skb::PROTOCOL, u32::from(old_proto));
        env.ctx.set32(skb::LEN, env.pkt.len() as u32);
        env.pkt.map_into(env.mem);
    }
    env.ctx.set32(skb::VLAN_PRESENT, 1);
    env.ctx.set32(skb::VLAN_TCI, u32::from(tci));
    env.ctx.set32(skb::VLAN_PROTO, u32::from(proto));
    Ok(0)
}

const P8021Q: u16 = 0x0081; // htons(ETH_P_8021Q) as read on little-endian
const P8021AD: u16 = 0xa888; // htons(ETH_P_8021AD)

/// `__skb_vlan_pop` plus `vlan_set_encap_proto`: the TCI, or the errno.
fn pop_payload_tag(env: &mut Env<'_>) -> Result<u16, i64> {
    let (tci, encap) = env.pkt.vlan_remove().ok_or(ENOMEM)?;
    let proto = if u16::from_be(encap) >= 0x0600 {
        encap
    } else if env.pkt.data().get(16..18) == Some(&[0xff, 0xff]) {
        0x0100 // htons(ETH_P_802_3)
    } else {
        0x0400 // htons(ETH_P_802_2)
    };
    env.ctx.set32(skb::PROTOCOL, u32::from(proto));
    env.ctx.set32(skb::LEN, env.pkt.len() as u32);
    env.pkt.map_into(env.mem);
    Ok(tci)
}

/// `long bpf_skb_vlan_pop(skb)`: drops the accelerated tag (or, without one, the first tag
/// in the packet), then moves a further tag from the packet into the accelerated slot.
pub(super) fn vlan_pop(env: &mut Env<'_>, _: [u64; 5]) -> Result<u64, FaultKind> {
    let is_vlan = |p: u32| p as u16 == P8021Q || p as u16 == P8021AD;
    if env.ctx.get32(skb::VLAN_PRESENT) != 0 {
        for f in [skb::VLAN_PRESENT, skb::VLAN_TCI, skb::VLAN_PROTO] {
            env.ctx.set32(f, 0);
        }
    } else {
        if !is_vlan(env.ctx.get32(skb::PROTOCOL)) {
            return Ok(0);
        }
        if let Err(e) = pop_payload_tag(env) {
            return Ok(errno(e));
        }
    }
    let proto = env.ctx.get32(skb::PROTOCOL);
    if !is_vlan(proto) {
        return Ok(0);
    }
    match pop_payload_tag(env) {
        Ok(tci) => {
            env.ctx.set32(skb::VLAN_PRESENT, 1);
            env.ctx.set32(skb::VLAN_TCI, u32::from(tci));
            env.ctx.set32(skb::VLAN_PROTO, proto);
            Ok(0)
        }
        Err(e) => Ok(errno(e)),
    }
}

/// Flow hash of an Ethernet frame; never 0 (the kernel maps 0 to 1).
pub(crate) fn flow_hash(frame: &[u8], seed: u64) -> u32 {
    let mut words: Vec<u64> = Vec::with_capacity(12);
    let be16 = |o: usize| {
        frame
            .get(o..o + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let ethertype = be16(12).unwrap_or(0);
    words.push(u64::from(ethertype));
    let (mut a, mut b): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
    let (mut pa, mut pb) = (0u16, 0u16);
    let mut proto = 0u8;
    let l4 = match ethertype {
        0x0800 => frame.get(14..34).and_then(|ip| {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            proto = ip[9];
            a = ip[12..16].to_vec();
            b = ip[16..20].to_vec();
            let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
            (!frag && ihl >= 20).then_some(14 + ihl)
        }),
        0x86dd => frame.get(14..54).map(|ip| {
            proto = ip[6];
            a = ip[8..24].to_vec();
            b = ip[24..40].to_vec();
            54
        }),
        _ => None,
    };
    if let Some(o) = l4
        && matches!(proto, 6 | 17 | 132 | 136)
    {
        pa = be16(o).unwrap_or(0);
        pb = be16(o + 2).unwrap_or(0);
    }
    if (b.as_slice(), pb) < (a.as_slice(), pa) {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut pa, &mut pb);
    }
    words.push(u64::from(proto));
    for chunk in a.chunks(8).chain(b.chunks(8)) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        words.push(u64::from_le_bytes(w));
    }
    words.push(u64::from(pa) << 16 | u64::from(pb));
    let mut h = seed ^ 0x6a09_e667_f3bc_c908;
    for w in words {
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
    }
    let h = (h ^ (h >> 32)) as u32;
    if h == 0 { 1 } else { h }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ProgType;

    fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 42];
        p[12] = 0x08;
        p[14] = 0x45;
        p[23] = 17;
        p[26..30].copy_from_slice(&src);
        p[30..34].copy_from_slice(&dst);
        p[34..36].copy_from_slice(&sport.to_be_bytes());
        p[36..38].copy_from_slice(&dport.to_be_bytes());
        p
    }

    #[test]
    fn flow_hash_is_symmetric_and_port_sensitive() {
        let h1 = flow_hash(&udp([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53), 7);
        let h2 = flow_hash(&udp([10, 0, 0, 2], [10, 0, 0, 1], 53, 1000), 7);
        let h3 = flow_hash(&udp([10, 0, 0, 1], [10, 0, 0, 2], 1001, 53), 7);
        assert_eq!(h1, h2);
        assert_ne!(h1, h3);
        assert_ne!(flow_hash(&[], 0), 0);
    }

    #[test]
    fn ld_abs_reads_network_order_and_bounds() {
        let mut pkt = Packet::new();
        let mut frame = udp([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
        frame[12] = 0x08;
        pkt.setup(ProgType::SchedCls, &frame).unwrap();
        assert_eq!(ld_abs(&pkt, 12, 2), Some(0x0800));
        assert_eq!(ld_abs(&pkt, 26, 4), Some(0x0102_0304));
        assert_eq!(ld_abs(&pkt, 40, 2), Some(0));
        assert_eq!(ld_abs(&pkt, 41, 2), None);
        assert_eq!(ld_abs(&pkt, SKF_NET_OFF + 12, 4), Some(0x0102_0304));
        assert_eq!(ld_abs(&pkt, SKF_LL_OFF + 12, 2), Some(0x0800));
        assert_eq!(ld_abs(&pkt, -1, 1), None);
        pkt.setup(ProgType::SocketFilter, &frame).unwrap();
        // Socket filters address from the network header.
        assert_eq!(ld_abs(&pkt, 12, 4), Some(0x0102_0304));
    }
}
