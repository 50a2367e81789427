//! Program contexts exactly as Linux 6.18's `BPF_PROG_TEST_RUN` builds them, and the
//! kernel's rewriting of context field accesses.
//!
//! Why a model rather than a plain struct in memory: the kernel never lets a program read the
//! real `xdp_buff` / `sk_buff`. The verifier rewrites each access to a uapi field (`xdp_md`,
//! `__sk_buff`) into a load of the real field, so a 32-bit load of `xdp_md->data` yields a
//! 64-bit pointer, narrow loads read part of a field, and only a few fields are writable.
//! [`Ctx::load`] / [`Ctx::store`] reproduce those rules; everything else is a fault.
//!
//! Packet layouts (offsets into one page-sized buffer, as `bpf_test_init` allocates it):
//! - XDP: 256 bytes of headroom (`XDP_PACKET_HEADROOM`), `data_meta = data`, tail growth
//!   allowed up to the page end minus `skb_shared_info` (320 bytes).
//! - tc (`sched_cls`): `NET_SKB_PAD` (64) headroom, `data` at the Ethernet header.
//! - socket filter: same buffer, but `eth_type_trans` pulled the Ethernet header, so `data`
//!   (and `LD_ABS` offset 0) is the network header and `len` excludes the 14 bytes; after the
//!   run the kernel pushes back a zeroed Ethernet header before copying the packet out.

use super::fault::{Access, BadInput, FaultKind};
use super::memory::{Memory, PACKET, Window, vaddr};
use crate::ProgType;

/// `ETH_HLEN`.
pub(crate) const ETH_HLEN: usize = 14;
/// Size of the buffer `bpf_test_init` allocates (one page).
pub(crate) const PAGE_SIZE: usize = 4096;
/// `XDP_PACKET_HEADROOM`.
pub(crate) const XDP_HEADROOM: usize = 256;
/// `NET_SKB_PAD + NET_IP_ALIGN` on x86-64.
pub(crate) const SKB_HEADROOM: usize = 64;
/// Extra room in front of an skb's data: the kernel reallocates the head when helpers like
/// `bpf_skb_vlan_push` need more than `SKB_HEADROOM`; we reserve it instead.
const SKB_SPARE: usize = 2048;
/// Size of our packet buffer: a page plus the spare skb headroom.
const BUF_SIZE: usize = PAGE_SIZE + SKB_SPARE;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86-64: tailroom kept free.
pub(crate) const SHINFO_SIZE: usize = 320;
/// `sizeof(struct xdp_frame)`: headroom `bpf_xdp_adjust_head/meta` may never reach.
pub(crate) const XDP_FRAME_SIZE: usize = 40;
/// Largest metadata `xdp_metalen_invalid` accepts (`skb_shared_info::meta_len` is a u8).
pub(crate) const XDP_META_MAX: usize = 255;

/// The packet buffer and where its parts are (offsets into `buf`).
pub(crate) struct Packet {
    buf: Vec<u8>,
    /// Start of metadata (XDP `data_meta`; equals `data` for skb programs).
    pub(crate) meta: usize,
    /// Start of packet data (`data`).
    pub(crate) data: usize,
    /// End of packet data (`data_end`).
    pub(crate) end: usize,
    /// Highest `end` that tail growth may reach.
    pub(crate) hard_end: usize,
    /// Start of the Ethernet header (`skb_mac_header`).
    mac: usize,
    /// Start of the network header (`skb_network_header`).
    net: usize,
    /// Whether a helper moved `data`/`data_meta` into the headroom since it was last zeroed.
    pub(crate) headroom_dirty: bool,
    /// Whether the context is an skb whose Ethernet header was pulled (socket filter).
    pulled_eth: bool,
}

impl Packet {
    pub(crate) fn new() -> Packet {
        Packet {
            buf: vec![0; BUF_SIZE],
            meta: 0,
            data: 0,
            end: 0,
            hard_end: 0,
            mac: 0,
            net: 0,
            headroom_dirty: false,
            pulled_eth: false,
        }
    }

    /// Lays out `input` for a run of a program of type `ty`, as `BPF_PROG_TEST_RUN` does.
    pub(crate) fn setup(&mut self, ty: ProgType, input: &[u8]) -> Result<(), BadInput> {
        // (kernel headroom, where the data starts in our buffer, ethernet header pulled)
        let (headroom, start, pulled) = match ty {
            ProgType::Xdp => (XDP_HEADROOM, XDP_HEADROOM, false),
            ProgType::SchedCls => (SKB_HEADROOM, SKB_SPARE + SKB_HEADROOM, false),
            ProgType::SocketFilter => (SKB_HEADROOM, SKB_SPARE + SKB_HEADROOM, true),
            other => return Err(BadInput::NotRunnable(other)),
        };
        if input.len() < ETH_HLEN {
            return Err(BadInput::PacketTooShort { len: input.len() });
        }
        let max = PAGE_SIZE - headroom - SHINFO_SIZE;
        if input.len() > max {
            return Err(BadInput::PacketTooLong {
                len: input.len(),
                max,
            });
        }
        // The kernel's buffer is freshly zeroed. Only head/meta adjustment can expose old
        // bytes in the headroom (tail growth zero-fills what it exposes), so the headroom is
        // cleared only after a run that moved into it.
        if self.headroom_dirty {
            self.buf[..start].fill(0);
            self.headroom_dirty = false;
        }
        self.buf[start..start + input.len()].copy_from_slice(input);
        self.pulled_eth = pulled;
        self.mac = start;
        self.net = start + ETH_HLEN;
        self.data = start + if pulled { ETH_HLEN } else { 0 };
        self.meta = self.data;
        self.end = start + input.len();
        self.hard_end = start - headroom + PAGE_SIZE - SHINFO_SIZE;
        Ok(())
    }

    /// Where packet byte `data` is (the buffer is allocated once and never moves).
    pub(crate) fn data_ptr(&mut self) -> *mut u8 {
        self.buf.as_mut_ptr().wrapping_add(self.data)
    }

    /// Packet bytes `data..end`.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.data..self.end]
    }

    /// Mutable packet bytes `data..end`.
    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.data..self.end]
    }

    /// Offset of the Ethernet header in the buffer.
    pub(crate) fn mac(&self) -> usize {
        self.mac
    }

    /// Offset of the network header in the buffer.
    pub(crate) fn net(&self) -> usize {
        self.net
    }

    /// `__vlan_insert_tag` on an skb whose `data` is at the MAC header: moves the MAC
    /// addresses 4 bytes towards the head and writes the tag (`proto` as the `__be16` value a
    /// program passes, `tci` in host order) between them and the old EtherType. `false` if
    /// the headroom is used up.
    pub(crate) fn vlan_insert(&mut self, proto: u16, tci: u16) -> bool {
        const VLAN_HLEN: usize = 4;
        if self.mac < VLAN_HLEN || self.data != self.mac {
            return false;
        }
        let new_mac = self.mac - VLAN_HLEN;
        self.buf.copy_within(self.mac..self.mac + 2 * 6, new_mac);
        self.buf[new_mac + 12..new_mac + 14].copy_from_slice(&proto.to_le_bytes());
        self.buf[new_mac + 14..new_mac + 16].copy_from_slice(&tci.to_be_bytes());
        self.mac = new_mac;
        self.data = new_mac;
        self.meta = new_mac;
        // skb_vlan_push moves the network header back over the inserted tag.
        self.net -= VLAN_HLEN;
        self.headroom_dirty = true;
        true
    }

    /// `__skb_vlan_pop`'s packet part: removes the 802.1Q header after the MAC addresses and
    /// returns its TCI and the EtherType it encapsulates (as read on little-endian, i.e.
    /// the `__be16` value). `None` if the skb is not at its MAC header or too short.
    pub(crate) fn vlan_remove(&mut self) -> Option<(u16, u16)> {
        const VLAN_HLEN: usize = 4;
        if self.data != self.mac || self.len() < ETH_HLEN + VLAN_HLEN {
            return None;
        }
        let m = self.mac;
        let tci = u16::from_be_bytes([self.buf[m + 14], self.buf[m + 15]]);
        let encap = u16::from_le_bytes([self.buf[m + 16], self.buf[m + 17]]);
        self.buf.copy_within(m..m + 2 * 6, m + VLAN_HLEN);
        self.mac += VLAN_HLEN;
        self.data += VLAN_HLEN;
        self.meta = self.data;
        if self.net < self.data + ETH_HLEN {
            self.net = self.data + ETH_HLEN;
        }
        Some((tci, encap))
    }

    /// The frame from the Ethernet header to `data_end`.
    pub(crate) fn frame(&self) -> &[u8] {
        &self.buf[self.mac.min(self.end)..self.end]
    }

    /// `len` buffer bytes at `start`, if inside the buffer.
    pub(crate) fn bytes(&self, start: usize, len: usize) -> Option<&[u8]> {
        self.buf.get(start..start.checked_add(len)?)
    }

    /// Length `end - data` (`skb->len`, `xdp data_end - data`).
    pub(crate) fn len(&self) -> usize {
        self.end - self.data
    }

    /// The whole buffer (helpers that move data around inside it).
    pub(crate) fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// What `BPF_PROG_TEST_RUN` copies out after the run.
    pub(crate) fn output(&self, out: &mut Vec<u8>) {
        out.clear();
        if self.pulled_eth {
            out.resize(ETH_HLEN, 0);
            out.extend_from_slice(self.data());
        } else {
            out.extend_from_slice(&self.buf[self.meta..self.end]);
        }
    }

    /// Publishes the current valid window (`meta..end`) in the region table.
    ///
    /// Called at the start of a run and after every helper that moves the pointers.
    pub(crate) fn map_into(&mut self, mem: &mut Memory) {
        let cap = self.buf.len();
        let base = self.buf.as_mut_ptr();
        // SAFETY: `base..base+cap` is `self.buf`, which is never resized after `new` and
        // is accessed only through the region table during a run (helpers that touch the
        // packet call `map_into` again afterwards to re-derive the pointer).
        let w = unsafe { Window::part(base, cap, self.meta, self.end) };
        mem.set(PACKET, w, w);
        mem.set_origin(PACKET, self.data as u32);
    }

    /// Virtual address of buffer offset `off`.
    pub(crate) fn addr(&self, off: usize) -> u64 {
        vaddr(PACKET, off as u32)
    }
}

/// `__sk_buff` field offsets (uapi `linux/bpf.h`); the full list documents the layout.
#[allow(missing_docs, dead_code)]
pub(crate) mod skb {
    pub const LEN: usize = 0;
    pub const PKT_TYPE: usize = 4;
    pub const MARK: usize = 8;
    pub const QUEUE_MAPPING: usize = 12;
    pub const PROTOCOL: usize = 16;
    pub const VLAN_PRESENT: usize = 20;
    pub const VLAN_TCI: usize = 24;
    pub const VLAN_PROTO: usize = 28;
    pub const PRIORITY: usize = 32;
    pub const INGRESS_IFINDEX: usize = 36;
    pub const IFINDEX: usize = 40;
    pub const TC_INDEX: usize = 44;
    pub const CB: usize = 48;
    pub const CB_END: usize = 68;
    pub const HASH: usize = 68;
    pub const TC_CLASSID: usize = 72;
    pub const DATA: usize = 76;
    pub const DATA_END: usize = 80;
    pub const NAPI_ID: usize = 84;
    pub const FAMILY: usize = 88;
    pub const LOCAL_PORT_END: usize = 140;
    pub const DATA_META: usize = 140;
    pub const FLOW_KEYS: usize = 144;
    pub const TSTAMP: usize = 152;
    pub const WIRE_LEN: usize = 160;
    pub const GSO_SEGS: usize = 164;
    pub const SK: usize = 168;
    pub const GSO_SIZE: usize = 176;
    pub const TSTAMP_TYPE: usize = 180;
    pub const HWTSTAMP: usize = 184;
    pub const SIZE: usize = 192;
}

/// `xdp_md` field offsets.
#[allow(missing_docs, dead_code)]
pub(crate) mod xdp {
    pub const DATA: usize = 0;
    pub const DATA_END: usize = 4;
    pub const DATA_META: usize = 8;
    pub const INGRESS_IFINDEX: usize = 12;
    pub const RX_QUEUE_INDEX: usize = 16;
    pub const EGRESS_IFINDEX: usize = 20;
    pub const SIZE: usize = 24;
}

/// Which context structure the program sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CtxKind {
    /// bpf_conformance: r1 is the input buffer; no ctx structure.
    Mem,
    Xdp,
    /// `__sk_buff`; `tc` selects sched_cls rules (else socket filter rules).
    Skb {
        tc: bool,
    },
}

impl CtxKind {
    pub(crate) fn of(ty: ProgType) -> Option<CtxKind> {
        match ty {
            ProgType::Mem => Some(CtxKind::Mem),
            ProgType::Xdp => Some(CtxKind::Xdp),
            ProgType::SchedCls => Some(CtxKind::Skb { tc: true }),
            ProgType::SocketFilter => Some(CtxKind::Skb { tc: false }),
            ProgType::Other(_) => None,
        }
    }
}

/// Values of the context's scalar fields, stored as the uapi structure would hold them.
pub(crate) struct Ctx {
    pub(crate) kind: CtxKind,
    image: [u8; skb::SIZE],
    /// Whether `skb->hash` holds a computed or set hash (`l4_hash`/`sw_hash`).
    hash_valid: bool,
}

fn reject(access: Access, size: u32, off: i64, reason: &'static str) -> FaultKind {
    FaultKind::Ctx {
        access,
        size,
        offset: off,
        reason,
    }
}

impl Ctx {
    pub(crate) fn new(kind: CtxKind) -> Ctx {
        Ctx {
            kind,
            image: [0; skb::SIZE],
            hash_valid: false,
        }
    }

    fn put32(&mut self, off: usize, v: u32) {
        self.image[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn get(&self, off: usize, size: usize) -> u64 {
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(&self.image[off..off + size]);
        u64::from_le_bytes(b)
    }

    /// Fills the fields for a run over `pkt` (which must already be set up).
    pub(crate) fn setup(&mut self, pkt: &Packet, ingress_ifindex: u32, rx_queue_index: u32) {
        let used = match self.kind {
            CtxKind::Mem => 0,
            CtxKind::Xdp => xdp::SIZE,
            CtxKind::Skb { .. } => skb::SIZE,
        };
        self.image[..used].fill(0);
        self.hash_valid = false;
        match self.kind {
            CtxKind::Mem => {}
            CtxKind::Xdp => {
                self.put32(xdp::INGRESS_IFINDEX, ingress_ifindex);
                self.put32(xdp::RX_QUEUE_INDEX, rx_queue_index);
            }
            CtxKind::Skb { .. } => {
                let data = pkt.data();
                self.put32(skb::LEN, data.len() as u32);
                let eth = &pkt.buf[pkt.data - if pkt.pulled_eth { ETH_HLEN } else { 0 }..];
                self.put32(skb::PKT_TYPE, pkt_type(&eth[..6]));
                self.put32(skb::PROTOCOL, u32::from(eth_protocol(eth)));
                // The loopback device: test_run's default when no ifindex is given.
                self.put32(skb::IFINDEX, 1);
            }
        }
    }

    /// For XDP, what an aligned 32-bit load of each of the six `xdp_md` words yields (the
    /// pointers as 64-bit addresses, as the kernel's rewrite gives them), so that the run
    /// loop can answer such loads without the general access rules. Valid until a helper
    /// moves the packet pointers.
    pub(crate) fn xdp_words(&self, pkt: &Packet) -> Option<[u64; 6]> {
        (self.kind == CtxKind::Xdp).then(|| {
            [
                pkt.addr(pkt.data),
                pkt.addr(pkt.end),
                pkt.addr(pkt.meta),
                self.get(xdp::INGRESS_IFINDEX, 4),
                self.get(xdp::RX_QUEUE_INDEX, 4),
                self.get(xdp::EGRESS_IFINDEX, 4),
            ]
        })
    }

    /// A 32-bit field of the image (helpers that change skb state).
    pub(crate) fn get32(&self, off: usize) -> u32 {
        self.get(off, 4) as u32
    }

    /// Sets a 32-bit field of the image (helpers that change skb state).
    pub(crate) fn set32(&mut self, off: usize, v: u32) {
        if let CtxKind::Skb { .. } = self.kind {
            self.put32(off, v);
        }
    }

    /// Sets `__sk_buff.hash` (after `bpf_get_hash_recalc` / `bpf_set_hash`).
    pub(crate) fn set_hash(&mut self, hash: u32) {
        if let CtxKind::Skb { .. } = self.kind {
            self.put32(skb::HASH, hash);
            self.hash_valid = true;
        }
    }

    /// `skb_clear_hash`.
    pub(crate) fn clear_hash(&mut self) {
        if let CtxKind::Skb { .. } = self.kind {
            self.put32(skb::HASH, 0);
            self.hash_valid = false;
        }
    }

    /// The hash, if one was computed or set.
    pub(crate) fn valid_hash(&self) -> Option<u32> {
        self.hash_valid.then(|| self.get(skb::HASH, 4) as u32)
    }

    /// Field value for a load of `size` bytes at `off`, with the kernel's access rules.
    pub(crate) fn load(
        &self,
        pkt: &Packet,
        off: i64,
        size: u32,
        signed: bool,
    ) -> Result<u64, FaultKind> {
        let bad = |reason| reject(Access::Read, size, off, reason);
        if signed {
            return Err(bad("sign-extending loads from the context are not allowed"));
        }
        match self.kind {
            CtxKind::Mem => Err(bad("no context structure for mem programs")),
            CtxKind::Xdp => {
                if !(0..xdp::SIZE as i64).contains(&off) || off % 4 != 0 || size != 4 {
                    return Err(bad("xdp_md fields are read as aligned 32-bit words"));
                }
                Ok(match off as usize {
                    xdp::DATA => pkt.addr(pkt.data),
                    xdp::DATA_END => pkt.addr(pkt.end),
                    xdp::DATA_META => pkt.addr(pkt.meta),
                    o => self.get(o, 4),
                })
            }
            CtxKind::Skb { tc } => {
                let o = skb_check(off, size, Access::Read, tc).map_err(bad)?;
                Ok(match o {
                    skb::DATA => pkt.addr(pkt.data),
                    skb::DATA_END => pkt.addr(pkt.end),
                    skb::DATA_META => pkt.addr(pkt.meta),
                    skb::SK => {
                        return Err(FaultKind::Unsupported {
                            what: "__sk_buff->sk (socket pointers are not modelled)".into(),
                        });
                    }
                    o => self.get(o, size as usize),
                })
            }
        }
    }

    /// Performs a store of `size` bytes of `v` at `off`, with the kernel's write rules.
    pub(crate) fn store(&mut self, off: i64, size: u32, v: u64) -> Result<(), FaultKind> {
        let bad = |reason| reject(Access::Write, size, off, reason);
        let tc = match self.kind {
            CtxKind::Skb { tc } => tc,
            CtxKind::Xdp => return Err(bad("xdp_md is read-only")),
            CtxKind::Mem => return Err(bad("no context structure for mem programs")),
        };
        let o = skb_check(off, size, Access::Write, tc).map_err(bad)?;
        match o {
            skb::TC_INDEX | skb::TC_CLASSID => {
                // Both are u16 in the kernel (skb->tc_index, qdisc_skb_cb->tc_classid).
                self.put32(o, v as u16 as u32);
            }
            skb::QUEUE_MAPPING => {
                // The rewrite skips values >= NO_QUEUE_MAPPING and stores a u16.
                if (v as u32) < 0xffff {
                    self.put32(o, v as u16 as u32);
                }
            }
            _ => {
                let b = v.to_le_bytes();
                self.image[o..o + size as usize].copy_from_slice(&b[..size as usize]);
            }
        }
        Ok(())
    }
}

/// The kernel's `__sk_buff` access rules (`bpf_skb_is_valid_access` plus the socket filter
/// and tc restrictions). Returns the field offset on success.
fn skb_check(off: i64, size: u32, access: Access, tc: bool) -> Result<usize, &'static str> {
    if !(0..skb::SIZE as i64).contains(&off) {
        return Err("outside __sk_buff");
    }
    let o = off as usize;
    let size = size as usize;
    if !o.is_multiple_of(size) {
        return Err("misaligned __sk_buff access");
    }
    if (skb::FAMILY..skb::LOCAL_PORT_END).contains(&o) {
        return Err("socket fields are only readable by sk_skb programs");
    }
    let in_cb = (skb::CB..skb::CB_END).contains(&o);
    let tc_only = (skb::TC_CLASSID..skb::TC_CLASSID + 4).contains(&o)
        || (skb::DATA..skb::DATA_END + 4).contains(&o)
        || (skb::DATA_META..skb::DATA_META + 4).contains(&o)
        || (skb::TSTAMP..skb::TSTAMP + 8).contains(&o)
        || (skb::WIRE_LEN..skb::WIRE_LEN + 4).contains(&o)
        || (skb::HWTSTAMP..skb::SIZE).contains(&o);
    if tc_only && !tc {
        return Err("field not accessible to socket filters");
    }
    if access == Access::Write {
        let tc_writable = (skb::MARK..skb::MARK + 4).contains(&o)
            || (skb::TC_INDEX..skb::TC_INDEX + 4).contains(&o)
            || (skb::PRIORITY..skb::PRIORITY + 4).contains(&o)
            || (skb::TC_CLASSID..skb::TC_CLASSID + 4).contains(&o)
            || (skb::TSTAMP..skb::TSTAMP + 8).contains(&o)
            || (skb::QUEUE_MAPPING..skb::QUEUE_MAPPING + 4).contains(&o);
        if !(in_cb || (tc && tc_writable)) {
            return Err("field is not writable");
        }
    }
    if in_cb {
        if o + size > skb::CB_END {
            return Err("access crosses the end of cb[]");
        }
        return Ok(o);
    }
    match o {
        76..=83 | 140..=143 => {
            if size != 4 {
                return Err("packet pointers are read as 32-bit words");
            }
        }
        144..=151 => return Err("flow_keys is not accessible"),
        152..=159 => {
            if size != 8 {
                return Err("tstamp is accessed as a 64-bit word");
            }
        }
        168..=175 => {
            if access == Access::Write || size != 8 {
                return Err("sk is read as a 64-bit word");
            }
        }
        180..=183 => return Err("tstamp_type and padding are not accessible"),
        184..=191 => {
            if access == Access::Write || size != 8 {
                return Err("hwtstamp is read as a 64-bit word");
            }
        }
        _ => {
            if access == Access::Write {
                if size != 4 {
                    return Err("__sk_buff fields are written as 32-bit words");
                }
            } else if size > 4 {
                return Err("narrow loads must stay inside one 32-bit field");
            }
        }
    }
    Ok(o)
}

/// `eth_type_trans` on the loopback device: address 00:00:00:00:00:00, broadcast all zero.
fn pkt_type(dest: &[u8]) -> u32 {
    const PACKET_HOST: u32 = 0;
    const PACKET_MULTICAST: u32 = 2;
    const PACKET_OTHERHOST: u32 = 3;
    if dest.iter().all(|&b| b == 0) {
        PACKET_HOST
    } else if dest[0] & 1 != 0 {
        // The loopback device's broadcast address is all zeros, so ff:ff:.. is multicast.
        PACKET_MULTICAST
    } else {
        PACKET_OTHERHOST
    }
}

/// `eth_type_trans`'s protocol, as the `__be16` value a u32 load of `protocol` returns.
fn eth_protocol(eth: &[u8]) -> u16 {
    let proto = u16::from_be_bytes([eth[12], eth[13]]);
    let raw = if proto >= 0x0600 {
        proto
    } else if eth.len() >= 16 && eth[14] == 0xff && eth[15] == 0xff {
        0x0001 // ETH_P_802_3 (raw IPX)
    } else {
        0x0004 // ETH_P_802_2
    };
    // Stored in network byte order; read back on a little-endian machine.
    u16::from_le_bytes(raw.to_be_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ipv4_packet() -> Vec<u8> {
        let mut p = vec![0u8; 60];
        p[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        p[12] = 0x08;
        p[13] = 0x00;
        p
    }

    #[test]
    fn xdp_layout_and_fields() {
        let mut pkt = Packet::new();
        pkt.setup(ProgType::Xdp, &ipv4_packet()).unwrap();
        assert_eq!(
            (pkt.meta, pkt.data, pkt.end, pkt.hard_end),
            (256, 256, 316, 3776)
        );
        let mut ctx = Ctx::new(CtxKind::Xdp);
        ctx.setup(&pkt, 1, 0);
        assert_eq!(ctx.load(&pkt, 0, 4, false), Ok(pkt.addr(256)));
        assert_eq!(ctx.load(&pkt, 4, 4, false), Ok(pkt.addr(316)));
        assert_eq!(ctx.load(&pkt, 12, 4, false), Ok(1));
        assert!(ctx.load(&pkt, 12, 2, false).is_err());
        assert!(ctx.load(&pkt, 24, 4, false).is_err());
        assert!(ctx.store(16, 4, 1).is_err());
        let mut out = Vec::new();
        pkt.output(&mut out);
        assert_eq!(out, ipv4_packet());
    }

    #[test]
    fn skb_fields_follow_test_run() {
        let mut pkt = Packet::new();
        pkt.setup(ProgType::SchedCls, &ipv4_packet()).unwrap();
        let mut ctx = Ctx::new(CtxKind::Skb { tc: true });
        ctx.setup(&pkt, 1, 0);
        assert_eq!(ctx.load(&pkt, skb::LEN as i64, 4, false), Ok(60));
        assert_eq!(ctx.load(&pkt, skb::PROTOCOL as i64, 4, false), Ok(0x0008));
        assert_eq!(ctx.load(&pkt, skb::PKT_TYPE as i64, 4, false), Ok(3));
        assert_eq!(ctx.load(&pkt, skb::IFINDEX as i64, 4, false), Ok(1));
        // Narrow load of the low byte of len.
        assert_eq!(ctx.load(&pkt, 0, 1, false), Ok(60));
        assert!(ctx.load(&pkt, 0, 8, false).is_err());
        ctx.store(skb::MARK as i64, 4, 7).unwrap();
        assert_eq!(ctx.load(&pkt, skb::MARK as i64, 4, false), Ok(7));
        ctx.store(skb::CB as i64, 8, u64::MAX).unwrap();
        assert_eq!(
            ctx.load(&pkt, skb::CB as i64 + 4, 4, false),
            Ok(0xffff_ffff)
        );
        assert!(ctx.store(skb::LEN as i64, 4, 1).is_err());
        assert!(ctx.store(skb::MARK as i64, 2, 1).is_err());
        ctx.store(skb::TC_CLASSID as i64, 4, 0x12345).unwrap();
        assert_eq!(ctx.load(&pkt, skb::TC_CLASSID as i64, 4, false), Ok(0x2345));
        assert!(ctx.load(&pkt, skb::FAMILY as i64, 4, false).is_err());
    }

    #[test]
    fn socket_filter_sees_l3_and_zeroed_eth_on_output() {
        let mut pkt = Packet::new();
        pkt.setup(ProgType::SocketFilter, &ipv4_packet()).unwrap();
        let mut ctx = Ctx::new(CtxKind::Skb { tc: false });
        ctx.setup(&pkt, 1, 0);
        assert_eq!(ctx.load(&pkt, skb::LEN as i64, 4, false), Ok(46));
        assert!(ctx.load(&pkt, skb::DATA as i64, 4, false).is_err());
        assert!(ctx.store(skb::MARK as i64, 4, 1).is_err());
        assert!(ctx.store(skb::CB as i64, 4, 1).is_ok());
        let mut out = Vec::new();
        pkt.output(&mut out);
        assert_eq!(out.len(), 60);
        assert!(out[..14].iter().all(|&b| b == 0));
    }

    #[test]
    fn short_and_long_packets_are_refused() {
        let mut pkt = Packet::new();
        assert_eq!(
            pkt.setup(ProgType::Xdp, &[0; 13]),
            Err(BadInput::PacketTooShort { len: 13 })
        );
        assert!(matches!(
            pkt.setup(ProgType::Xdp, &vec![0; 4000]),
            Err(BadInput::PacketTooLong { max: 3520, .. })
        ));
        assert!(pkt.setup(ProgType::Xdp, &vec![0; 3520]).is_ok());
    }
}
