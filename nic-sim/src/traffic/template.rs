//! Per-flow frame templates: the generator's UDP and TCP frames written by patching a
//! flow's precomputed headers (lengths, TCP sequence number, checksums) instead of running
//! a packet builder per frame. The bytes are exactly those etherparse's `PacketBuilder`
//! writes for the same flow, size and sequence number (tested below against it), so a spec
//! and seed still give byte-identical traffic; building a frame costs a copy of 42 or 54
//! header bytes and a few 16-bit sums instead of a header assembly per frame.

use super::generate::Flow;
use super::spec::Proto;

const ETH: usize = 14;
const IPV4: usize = 20;
const UDP: usize = 8;
const TCP: usize = 20;
/// IPv4 "don't fragment", which etherparse's builder sets.
const DF: u16 = 0x4000;
const TTL: u8 = 64;
/// TCP acknowledgment number and window the generator uses (`.tcp(.., 65535).ack(1)`).
const TCP_ACK: u32 = 1;
const TCP_WINDOW: u16 = 65535;
/// Data offset 5 (no options), flags: ACK.
const TCP_OFF_FLAGS: u16 = 0x5010;

/// A flow's headers with length, sequence and checksum fields left zero, and the constant
/// parts of its checksums.
#[derive(Debug, Clone)]
pub(super) struct Template {
    header: [u8; ETH + IPV4 + TCP],
    tcp: bool,
    /// Σ of the IPv4 header's 16-bit words except total length and checksum.
    ip_sum: u64,
    /// Σ of the pseudo header's and the transport header's constant words.
    l4_sum: u64,
}

/// Σ of the big-endian 16-bit words of `b` (an odd last byte padded with zero).
fn sum16(b: &[u8]) -> u64 {
    let mut chunks = b.chunks_exact(2);
    let mut s: u64 = chunks
        .by_ref()
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        s += u64::from(*last) << 8;
    }
    s
}

/// The ones' complement of the folded sum.
fn checksum(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

impl Template {
    /// The template of `flow`; `None` for ARP flows (written byte by byte).
    pub fn new(f: &Flow) -> Option<Template> {
        let tcp = match f.proto {
            Proto::Udp => false,
            Proto::Tcp => true,
            Proto::Arp => return None,
        };
        let mut h = [0u8; ETH + IPV4 + TCP];
        h[0..6].copy_from_slice(&f.dst_mac);
        h[6..12].copy_from_slice(&f.src_mac);
        h[12..14].copy_from_slice(&[0x08, 0x00]);
        let proto: u8 = if tcp { 6 } else { 17 };
        let ip = &mut h[ETH..ETH + IPV4];
        ip[0] = 0x45;
        ip[6..8].copy_from_slice(&DF.to_be_bytes());
        ip[8] = TTL;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&f.src_ip);
        ip[16..20].copy_from_slice(&f.dst_ip);
        let ip_sum = sum16(ip);
        let l4 = &mut h[ETH + IPV4..];
        l4[0..2].copy_from_slice(&f.sport.to_be_bytes());
        l4[2..4].copy_from_slice(&f.dport.to_be_bytes());
        if tcp {
            l4[8..12].copy_from_slice(&TCP_ACK.to_be_bytes());
            l4[12..14].copy_from_slice(&TCP_OFF_FLAGS.to_be_bytes());
            l4[14..16].copy_from_slice(&TCP_WINDOW.to_be_bytes());
        }
        // Pseudo header (addresses, protocol) plus the transport header as filled so far.
        let l4_len = if tcp { TCP } else { UDP };
        let l4_sum = sum16(&f.src_ip) + sum16(&f.dst_ip) + u64::from(proto) + sum16(&l4[..l4_len]);
        Some(Template {
            header: h,
            tcp,
            ip_sum,
            l4_sum,
        })
    }

    /// Header bytes before the payload.
    pub fn header_len(&self) -> usize {
        ETH + IPV4 + if self.tcp { TCP } else { UDP }
    }

    /// Appends the frame of `captured` bytes (at least the headers) with frame number
    /// `seq`: headers, then the payload, zeros whose first bytes are `seq` big-endian (and,
    /// for TCP, `seq` as the low 32 bits of the sequence number).
    pub fn write(&self, seq: u64, captured: usize, out: &mut Vec<u8>) {
        let hl = self.header_len();
        let payload = captured.saturating_sub(hl);
        let start = out.len();
        out.extend_from_slice(&self.header[..hl]);
        out.resize(start + hl + payload, 0);
        let seq_bytes = seq.to_be_bytes();
        let n = seq_bytes.len().min(payload);
        out[start + hl..start + hl + n].copy_from_slice(&seq_bytes[..n]);
        let f = &mut out[start..];
        let l4_len = (hl - ETH - IPV4 + payload) as u16;
        let total = (hl - ETH + payload) as u16;
        f[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
        let ip_ck = checksum(self.ip_sum + u64::from(total));
        f[ETH + 10..ETH + 12].copy_from_slice(&ip_ck.to_be_bytes());
        let mut s = self.l4_sum + u64::from(l4_len) + sum16(&seq_bytes[..n]);
        let l4 = ETH + IPV4;
        if self.tcp {
            let sn = (seq as u32).to_be_bytes();
            f[l4 + 4..l4 + 8].copy_from_slice(&sn);
            s += sum16(&sn);
            f[l4 + 16..l4 + 18].copy_from_slice(&checksum(s).to_be_bytes());
        } else {
            // The UDP length appears in the pseudo header and in the header itself.
            f[l4 + 4..l4 + 6].copy_from_slice(&l4_len.to_be_bytes());
            s += u64::from(l4_len);
            let ck = match checksum(s) {
                0 => 0xffff, // 0 means "no checksum" in UDP
                c => c,
            };
            f[l4 + 6..l4 + 8].copy_from_slice(&ck.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    /// What the generator wrote before templates: etherparse's builder.
    fn built(f: &Flow, seq: u64, captured: usize) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2(f.src_mac, f.dst_mac);
        let mut out = Vec::new();
        let seq_bytes = seq.to_be_bytes();
        let payload = |hl: usize| {
            let n = captured.saturating_sub(hl);
            let mut p = vec![0u8; n];
            let k = n.min(8);
            p[..k].copy_from_slice(&seq_bytes[..k]);
            p
        };
        match f.proto {
            Proto::Udp => {
                let b = eth.ipv4(f.src_ip, f.dst_ip, 64).udp(f.sport, f.dport);
                let p = payload(b.size(0));
                b.write(&mut out, &p).expect("writes");
            }
            _ => {
                let b = eth
                    .ipv4(f.src_ip, f.dst_ip, 64)
                    .tcp(f.sport, f.dport, seq as u32, 65535)
                    .ack(1);
                let p = payload(b.size(0));
                b.write(&mut out, &p).expect("writes");
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn templates_write_what_etherparse_builds(
            mac in any::<[u8; 6]>(),
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            sport in any::<u16>(),
            dport in any::<u16>(),
            tcp in any::<bool>(),
            seq in prop_oneof![0u64..100, any::<u64>()],
            captured in prop_oneof![0usize..80, 40usize..9020],
        ) {
            let f = Flow {
                src_mac: mac,
                dst_mac: [0x02, 0, 0, 0, 0, 0xfe],
                src_ip: src,
                dst_ip: dst,
                sport,
                dport,
                proto: if tcp { Proto::Tcp } else { Proto::Udp },
            };
            let t = Template::new(&f).expect("ip flow");
            let mut out = vec![7u8; 3]; // appends after what is there
            t.write(seq, captured, &mut out);
            prop_assert_eq!(&out[..3], &[7u8; 3]);
            prop_assert_eq!(&out[3..], &built(&f, seq, captured)[..]);
        }
    }
}
