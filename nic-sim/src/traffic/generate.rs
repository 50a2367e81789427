//! Synthetic traffic from a [`TrafficSpec`]: well-formed Ethernet/IPv4/UDP|TCP frames (and
//! ARP when asked) over a fixed set of flows whose popularity follows a Zipf law.
//!
//! Determinism: everything is drawn from one `StdRng` seeded with the spec's seed, in a fixed
//! order (flow table first, then per frame: runt?, flow, size), so a spec always yields the
//! same byte-identical frames.

use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::spec::{Proto, SizeDist, TrafficSpec};
use super::template::Template;
use crate::error::SimError;
use crate::preset::FCS_BYTES;

/// One flow: a 5-tuple plus MAC addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source IPv4 address.
    pub src_ip: [u8; 4],
    /// Destination IPv4 address.
    pub dst_ip: [u8; 4],
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Transport.
    pub proto: Proto,
}

/// Draws flow ranks 0..n with probability proportional to 1/(rank+1)^s, by inverting a
/// precomputed CDF.
///
/// Why a guide table: a binary search of the CDF (10,000 flows: 14 dependent loads with
/// unpredictable outcomes) was most of the generator's time, and the generator runs on the
/// thread that reads every frame. `guide[j]` is the rank for a draw of exactly `j / n`; a draw
/// `u` in that bucket starts there and steps forward, about one step on average whatever the
/// skew (a bucket's chance is 1/n, whatever number of ranks it spans). The answer is the same
/// rank as the binary search's for every `u`, so a seed draws the same flows as before.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
    /// Per bucket `j` of [0, 1) split in `cdf.len()` equal parts: the first rank whose CDF
    /// exceeds `j / len`.
    guide: Vec<u32>,
}

impl Zipf {
    /// The distribution over `n` ranks with exponent `s` (0 = uniform).
    pub fn new(n: u32, s: f64) -> Zipf {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n.max(1))
            .map(|k| {
                acc += (k as f64).powf(-s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        let len = cdf.len();
        let mut guide = Vec::with_capacity(len);
        let mut i = 0;
        for j in 0..len {
            let at = j as f64 / len as f64;
            while i < len && cdf[i] <= at {
                i += 1;
            }
            guide.push(i as u32);
        }
        Zipf { cdf, guide }
    }

    /// The rank for a uniform draw `u` in [0, 1): the first rank whose CDF exceeds `u` (the
    /// last rank if none does).
    #[inline]
    pub fn rank(&self, u: f64) -> usize {
        let len = self.cdf.len();
        let bucket = (u * len as f64) as usize;
        let start = self.guide.get(bucket).map_or(len, |&g| g as usize);
        // The guide is exact only if its start is not past the answer; rounding in `u * len`
        // could in principle pick the next bucket, so check (one load) and search otherwise.
        let behind = start == 0 || self.cdf.get(start - 1).is_some_and(|&c| c <= u);
        let first = if behind && start < len {
            let mut i = start;
            while self.cdf.get(i).is_some_and(|&c| c <= u) {
                i += 1;
            }
            i
        } else {
            self.cdf.partition_point(|&c| c <= u)
        };
        first.min(len - 1)
    }

    /// Probability of `rank`.
    pub fn probability(&self, rank: usize) -> f64 {
        match rank {
            0 => self.cdf.first().copied().unwrap_or(0.0),
            r => self.cdf.get(r).copied().unwrap_or(0.0) - self.cdf[r - 1],
        }
    }
}

/// Streams the frames a spec describes. Never fails; yields `Result` only to match capture
/// readers.
#[derive(Debug)]
pub struct Generator {
    spec: TrafficSpec,
    rng: StdRng,
    flows: Vec<Flow>,
    zipf: Zipf,
    produced: u64,
}

impl Generator {
    /// Builds the flow table. A hand-built spec outside what [`TrafficSpec::parse`] accepts
    /// is normalised (at least one flow, ordered ranges, runt fraction clamped), never a
    /// panic.
    pub fn new(spec: &TrafficSpec) -> Generator {
        let mut spec = spec.clone();
        spec.flows = spec.flows.max(1);
        spec.dport = (
            spec.dport.0.min(spec.dport.1),
            spec.dport.0.max(spec.dport.1),
        );
        if let SizeDist::Uniform(a, b) = spec.size {
            spec.size = SizeDist::Uniform(a.min(b), a.max(b));
        }
        spec.runts = if spec.runts.is_finite() {
            spec.runts.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if !spec.zipf.is_finite() || spec.zipf < 0.0 {
            spec.zipf = 0.0;
        }
        let spec = &spec;
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let total: u32 = spec.proto.iter().map(|(_, w)| *w).sum::<u32>().max(1);
        let flows = (0..spec.flows)
            .map(|_| {
                let mut pick = rng.random_range(0..total);
                let mut proto = Proto::Udp;
                for &(p, w) in &spec.proto {
                    if pick < w {
                        proto = p;
                        break;
                    }
                    pick -= w;
                }
                let mut src_mac: [u8; 6] = rng.random();
                src_mac[0] = (src_mac[0] & 0xfe) | 0x02; // unicast, locally administered
                Flow {
                    src_mac,
                    dst_mac: [0x02, 0, 0, 0, 0, 0xfe],
                    src_ip: [10, rng.random(), rng.random(), rng.random_range(1..=254)],
                    dst_ip: [192, 168, rng.random(), rng.random_range(1..=254)],
                    sport: rng.random_range(1024..=65535),
                    dport: rng.random_range(spec.dport.0..=spec.dport.1),
                    proto,
                }
            })
            .collect();
        Generator {
            zipf: Zipf::new(spec.flows, spec.zipf),
            spec: spec.clone(),
            rng,
            flows,
            produced: 0,
        }
    }

    /// The flow table (rank order: flow 0 is the most popular).
    pub fn flows(&self) -> &[Flow] {
        &self.flows
    }

    fn size(&mut self) -> u32 {
        match self.spec.size {
            SizeDist::Fixed(n) => n,
            SizeDist::Uniform(a, b) => self.rng.random_range(a..=b),
            SizeDist::Imix => match self.rng.random_range(0..12u32) {
                0..7 => 64,
                7..11 => 594,
                _ => 1518,
            },
        }
    }

    /// Builds a frame of `size` wire bytes (captured bytes = size - FCS) for `flow`; the
    /// first payload bytes carry the frame's sequence number so frames differ.
    fn frame(&self, flow: usize, size: u32) -> Vec<u8> {
        let f = &self.flows[flow];
        let captured = (size as usize).saturating_sub(FCS_BYTES as usize);
        let mut out = Vec::with_capacity(captured.max(64));
        match f.proto {
            Proto::Arp => {
                // Ethernet + ARP request (28 bytes), zero-padded to the frame size.
                out.extend_from_slice(&[0xff; 6]);
                out.extend_from_slice(&f.src_mac);
                out.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
                out.extend_from_slice(&f.src_mac);
                out.extend_from_slice(&f.src_ip);
                out.extend_from_slice(&[0; 6]);
                out.extend_from_slice(&f.dst_ip);
                out.resize(captured.max(out.len()), 0);
            }
            Proto::Udp | Proto::Tcp => {
                // The flow's headers patched for this frame: the bytes etherparse's
                // `PacketBuilder` would write (see `template`), at a fraction of the cost.
                if let Some(t) = Template::new(f) {
                    t.write(self.produced, captured, &mut out);
                }
            }
        }
        out
    }
}

impl Iterator for Generator {
    type Item = Result<Vec<u8>, SimError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.produced >= self.spec.packets {
            return None;
        }
        let frame = if self.spec.runts > 0.0 && self.rng.random_bool(self.spec.runts) {
            let len = self.rng.random_range(1..14usize);
            (0..len).map(|_| self.rng.random::<u8>()).collect()
        } else {
            let flow = self.zipf.rank(self.rng.random::<f64>());
            let size = self.size();
            self.frame(flow, size)
        };
        self.produced += 1;
        Some(Ok(frame))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.spec.packets - self.produced) as usize;
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{SlicedPacket, TransportSlice};

    #[test]
    fn zipf_frequencies_follow_the_law() {
        let z = Zipf::new(100, 1.1);
        let mut rng = StdRng::seed_from_u64(3);
        let mut counts = [0u32; 100];
        let n = 200_000;
        for _ in 0..n {
            counts[z.rank(rng.random::<f64>())] += 1;
        }
        // Rank 1 vs rank 2 should be about 2^1.1 = 2.14.
        let ratio = f64::from(counts[0]) / f64::from(counts[1]);
        assert!((ratio - 2.0f64.powf(1.1)).abs() < 0.15, "ratio {ratio}");
        for r in [0, 1, 9, 50] {
            let want = z.probability(r) * n as f64;
            let got = f64::from(counts[r]);
            assert!(
                (got - want).abs() < 5.0 * want.sqrt() + 5.0,
                "rank {r}: {got} vs {want}"
            );
        }
        // Monotone popularity, uniform at s = 0.
        assert!(counts[0] > counts[10] && counts[10] > counts[90]);
        let u = Zipf::new(4, 0.0);
        assert!((0..4).all(|r| (u.probability(r) - 0.25).abs() < 1e-12));
        assert_eq!(u.rank(0.999_999), 3);
    }

    /// The binary search the guide table replaced: the reference for `rank`.
    fn rank_by_search(z: &Zipf, u: f64) -> usize {
        z.cdf.partition_point(|&c| c <= u).min(z.cdf.len() - 1)
    }

    proptest::proptest! {
        #[test]
        fn guided_rank_equals_the_binary_search(
            n in 1u32..3000,
            s in 0.0f64..3.0,
            draws in proptest::collection::vec(0.0f64..1.0, 1..200),
        ) {
            let z = Zipf::new(n, s);
            for u in draws {
                proptest::prop_assert_eq!(z.rank(u), rank_by_search(&z, u), "u {}", u);
            }
            // Bucket edges and the CDF values themselves, where rounding could bite.
            let len = z.cdf.len();
            for j in 0..len.min(200) {
                let at = j as f64 / len as f64;
                for u in [at, f64::from_bits(at.to_bits().saturating_sub(1)), z.cdf[j]] {
                    if (0.0..1.0).contains(&u) {
                        proptest::prop_assert_eq!(z.rank(u), rank_by_search(&z, u), "u {}", u);
                    }
                }
            }
        }
    }

    #[test]
    fn frames_are_well_formed_and_sized() {
        let spec =
            TrafficSpec::parse("packets=300,flows=20,size=64-1514,proto=udp:2,tcp:1,arp:1,seed=5")
                .expect("spec");
        let mut seen = [0u32; 3];
        for f in Generator::new(&spec) {
            let f = f.expect("frame");
            assert!((60..=1510).contains(&f.len()), "len {}", f.len());
            let p = SlicedPacket::from_ethernet(&f).expect("parses");
            match p.transport {
                Some(TransportSlice::Udp(_)) => seen[0] += 1,
                Some(TransportSlice::Tcp(_)) => seen[1] += 1,
                _ => seen[2] += 1,
            }
        }
        assert!(seen.iter().all(|&c| c > 0), "{seen:?}");
    }

    #[test]
    fn hand_built_specs_never_panic() {
        let spec = TrafficSpec {
            packets: 50,
            flows: 0,
            size: SizeDist::Uniform(1514, 10),
            proto: vec![(Proto::Tcp, 0)],
            zipf: f64::NAN,
            dport: (9, 3),
            runts: 7.0,
            seed: 0,
        };
        assert_eq!(Generator::new(&spec).count(), 50);
    }

    #[test]
    fn same_seed_same_frames_and_runts() {
        let spec = TrafficSpec::parse("packets=500,flows=50,zipf=1.2,size=imix,runts=0.1,seed=9")
            .expect("spec");
        let a: Vec<_> = Generator::new(&spec).map(|f| f.expect("f")).collect();
        let b: Vec<_> = Generator::new(&spec).map(|f| f.expect("f")).collect();
        assert_eq!(a, b);
        let runts = a.iter().filter(|f| f.len() < 14).count();
        assert!((20..=90).contains(&runts), "{runts}");
        let other = TrafficSpec { seed: 10, ..spec };
        let c: Vec<_> = Generator::new(&other).map(|f| f.expect("f")).collect();
        assert_ne!(a, c);
        assert_eq!(a.len(), 500);
    }
}
