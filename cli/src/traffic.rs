//! Packet inputs for `diff` (and later `sim`): pcap/pcapng files, and seeded random packets.

use std::{fs::File, io::BufReader, path::Path};

use etherparse::PacketBuilder;
use pcap_file::{pcap::PcapReader, pcapng::Block, pcapng::PcapNgReader};
use rand::{RngExt, SeedableRng, rngs::StdRng};

use crate::exit::CliError;

/// Every frame of a pcap or pcapng file, as captured (no padding).
pub fn read_pcap(path: &Path) -> Result<Vec<Vec<u8>>, CliError> {
    let bad = |e: &dyn std::fmt::Display| CliError::input(format!("{}: {e}", path.display()));
    let open = || File::open(path).map(BufReader::new).map_err(|e| bad(&e));
    let mut frames = Vec::new();
    if let Ok(mut reader) = PcapReader::new(open()?) {
        while let Some(pkt) = reader.next_packet() {
            let pkt = pkt.map_err(|e| bad(&format!("frame {}: {e}", frames.len())))?;
            frames.push(pkt.data.into_owned());
        }
        return Ok(frames);
    }
    let mut reader =
        PcapNgReader::new(open()?).map_err(|e| bad(&format!("neither pcap nor pcapng: {e}")))?;
    while let Some(block) = reader.next_block() {
        match block.map_err(|e| bad(&format!("block after frame {}: {e}", frames.len())))? {
            Block::EnhancedPacket(p) => frames.push(p.data.into_owned()),
            Block::SimplePacket(p) => frames.push(p.data.into_owned()),
            _ => {}
        }
    }
    Ok(frames)
}

/// `n` packets of 14 to 1514 bytes from `seed`: half well-formed Ethernet/IPv4/IPv6 UDP/TCP
/// frames with random ports (so parsers get past their first checks), half random bytes.
pub fn random_packets(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            if i % 2 == 1 {
                let len = rng.random_range(14..=1514);
                return (0..len).map(|_| rng.random::<u8>()).collect();
            }
            let payload_len = rng.random_range(0..=1400usize);
            let payload: Vec<u8> = (0..payload_len).map(|_| rng.random::<u8>()).collect();
            let sport = rng.random::<u16>();
            let dport = if rng.random_bool(0.3) {
                7777
            } else {
                rng.random::<u16>()
            };
            let eth = PacketBuilder::ethernet2(rng.random(), rng.random());
            let ip = if rng.random_bool(0.8) {
                eth.ipv4(rng.random(), rng.random(), rng.random_range(1..=255))
            } else {
                eth.ipv6(rng.random(), rng.random(), rng.random_range(1..=255))
            };
            let mut out = Vec::new();
            let _ = if rng.random_bool(0.6) {
                let b = ip.udp(sport, dport);
                out.reserve(b.size(payload.len()));
                b.write(&mut out, &payload)
            } else {
                let b = ip.tcp(sport, dport, rng.random(), rng.random());
                out.reserve(b.size(payload.len()));
                b.write(&mut out, &payload)
            };
            out
        })
        .collect()
}
