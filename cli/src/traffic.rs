//! Packet inputs for `diff`: pcap/pcapng files (nic-sim's reader, as `sim` reads them), and
//! seeded random packets.

use std::path::Path;

use etherparse::PacketBuilder;
use rand::{RngExt, SeedableRng, rngs::StdRng};

use crate::exit::CliError;

/// The frames of a pcap or pcapng file, as captured (no padding), read one at a time (a
/// capture of any size costs one frame of memory). Read with nic-sim's capture reader, so
/// `diff` accepts exactly the files `sim` accepts and names the same frame and byte offset
/// (or pcapng block) when one is corrupt.
pub fn pcap_frames(
    path: &Path,
) -> Result<impl Iterator<Item = Result<Vec<u8>, CliError>> + use<>, CliError> {
    Ok(nic_sim::traffic::open_capture(path)
        .map_err(CliError::input)?
        .map(|frame| frame.map_err(CliError::input)))
}

/// An empty capture is valid input (exit 0), but `0 inputs, no divergence` alone reads like
/// a passed check: say on stderr that there was nothing to check. stdout (and the JSON on
/// it) stays as it is.
pub fn warn_empty_capture(path: &Path) {
    eprintln!("warning: {}: the capture holds no frames", path.display());
}

/// `n` packets of 14 to 1514 bytes from `seed`: half well-formed Ethernet/IPv4/IPv6 UDP/TCP
/// frames with random ports (so parsers get past their first checks), half random bytes.
/// Drawn one at a time, so a large `n` costs time, never memory.
pub fn random_packets(n: u64, seed: u64) -> impl Iterator<Item = Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(move |i| {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `diff --random 18446744073709551615` used to panic (capacity overflow) building every
    /// packet up front; drawing lazily makes a huge N cost time, not memory.
    #[test]
    fn random_packets_are_drawn_lazily() {
        let first: Vec<_> = random_packets(u64::MAX, 1).take(3).collect();
        assert_eq!(first.len(), 3);
        assert_eq!(first, random_packets(3, 1).collect::<Vec<_>>());
        assert!(first.iter().all(|p| (14..=1514).contains(&p.len())));
    }
}
