//! The `--traffic` spec: a compact description of synthetic traffic.
//!
//! ```text
//! packets=100000,flows=1000,size=64|imix|64-1514,proto=udp:80,tcp:20,zipf=1.1,seed=7
//! ```
//!
//! Comma-separated `key=value` items, any order, every key optional:
//!
//! | key | value | default |
//! | --- | --- | --- |
//! | `packets` | frames to generate (≥ 1) | 10000 |
//! | `flows` | distinct 5-tuples (1 to 2^24) | 1000 |
//! | `size` | frame size on the wire **including the 4-byte FCS** (the RFC 2544 convention: `64` gives 60 captured bytes), 64–9022: `N`, `A-B` (uniform), or `imix` (64/594/1518 in 7:4:1) | 64 |
//! | `proto` | `udp`, `tcp` or `arp` (non-IP), optionally weighted `udp:80,tcp:20` (an item without `=` continues `proto`; `+` also separates) | udp |
//! | `zipf` | flow popularity exponent s ≥ 0: flow k drawn with weight 1/k^s; 0 = uniform | 0 |
//! | `dport` | destination port of every flow: `N` or `A-B` (drawn per flow) | 1024-65535 |
//! | `runts` | fraction (0–1) of frames that are runts (1–13 random bytes) | 0 |
//! | `seed` | u64 seed; the same spec always yields the same frames | 1 |

use crate::error::SimError;

/// Frame size distribution (sizes on the wire, FCS included).
#[derive(Debug, Clone, PartialEq)]
pub enum SizeDist {
    /// Every frame this size.
    Fixed(u32),
    /// Uniform in `lo..=hi`.
    Uniform(u32, u32),
    /// Simple IMIX: 64, 594 and 1518 bytes in proportion 7:4:1.
    Imix,
}

/// Transport of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// IPv4/UDP.
    Udp,
    /// IPv4/TCP (ACK segments).
    Tcp,
    /// A non-IP frame (ARP request): exercises the non-IP RSS path.
    Arp,
}

/// A parsed `--traffic` spec.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSpec {
    /// Frames to generate.
    pub packets: u64,
    /// Distinct flows.
    pub flows: u32,
    /// Frame sizes.
    pub size: SizeDist,
    /// Protocol mix: (protocol, weight).
    pub proto: Vec<(Proto, u32)>,
    /// Zipf exponent of flow popularity (0 = uniform).
    pub zipf: f64,
    /// Destination ports drawn per flow from `lo..=hi`.
    pub dport: (u16, u16),
    /// Fraction of runt frames.
    pub runts: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for TrafficSpec {
    fn default() -> Self {
        TrafficSpec {
            packets: 10_000,
            flows: 1000,
            size: SizeDist::Fixed(64),
            proto: vec![(Proto::Udp, 1)],
            zipf: 0.0,
            dport: (1024, 65535),
            runts: 0.0,
            seed: 1,
        }
    }
}

/// Smallest and largest frame sizes (FCS included) the generator builds.
pub const MIN_SIZE: u32 = 64;
/// Jumbo frames: 9000-byte MTU + 18 bytes of header and FCS + 4 for a VLAN tag.
pub const MAX_SIZE: u32 = 9022;
/// Most distinct flows. Why a cap: the generator builds its flow table and Zipf CDF up front
/// (about 26 bytes per flow), so `flows=4294967295` would abort on a 111 GB allocation;
/// 2^24 flows (~440 MB) is far beyond any NIC flow cache.
pub const MAX_FLOWS: u32 = 1 << 24;

impl TrafficSpec {
    /// Parses a spec string; errors name the offending item.
    pub fn parse(spec: &str) -> Result<TrafficSpec, SimError> {
        let mut t = TrafficSpec::default();
        let mut proto_items: Option<Vec<String>> = None;
        let mut last_key = String::new();
        let mut seen: Vec<String> = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), v.trim()),
                None if last_key == "proto" => ("proto".to_string(), item),
                None => return Err(bad(item, "expected key=value")),
            };
            if key == "proto" {
                let list = proto_items.get_or_insert_with(Vec::new);
                if item.contains('=') && !list.is_empty() {
                    return Err(bad(item, "`proto` given twice"));
                }
                list.extend(value.split('+').map(|s| s.trim().to_string()));
                last_key = key;
                continue;
            }
            // A repeated key is a typo more often than an override (as for `proto`).
            if seen.contains(&key) {
                return Err(bad(item, &format!("`{key}` given twice")));
            }
            seen.push(key.clone());
            match key.as_str() {
                "packets" => t.packets = positive(item, value)?,
                "flows" => {
                    t.flows = u32::try_from(positive(item, value)?)
                        .ok()
                        .filter(|f| *f <= MAX_FLOWS)
                        .ok_or_else(|| bad(item, &format!("at most {MAX_FLOWS} flows")))?
                }
                "seed" => {
                    t.seed = value
                        .parse()
                        .map_err(|_| bad(item, "seed must be an unsigned integer"))?
                }
                "zipf" => {
                    t.zipf = value
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 10.0)
                        .ok_or_else(|| bad(item, "zipf exponent must be a number in 0..=10"))?
                }
                "runts" => {
                    t.runts = value
                        .parse::<f64>()
                        .ok()
                        .filter(|s| (0.0..=1.0).contains(s))
                        .ok_or_else(|| bad(item, "runts is a fraction in 0..=1"))?
                }
                "size" => t.size = parse_size(item, value)?,
                "dport" => {
                    let (lo, hi) = range(item, value, 0, 65535)?;
                    t.dport = (lo as u16, hi as u16);
                }
                _ => {
                    return Err(bad(
                        item,
                        "unknown key (packets, flows, size, proto, zipf, dport, runts, seed)",
                    ));
                }
            }
            last_key = key;
        }
        if let Some(items) = proto_items {
            t.proto = items
                .iter()
                .map(|p| parse_proto(p))
                .collect::<Result<_, _>>()?;
            if t.proto.iter().all(|(_, w)| *w == 0) {
                return Err(bad("proto", "all protocol weights are zero"));
            }
        }
        Ok(t)
    }
}

fn bad(item: &str, reason: &str) -> SimError {
    SimError::TrafficSpec {
        item: item.into(),
        reason: reason.into(),
    }
}

fn positive(item: &str, v: &str) -> Result<u64, SimError> {
    v.replace('_', "")
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad(item, "expected a positive integer"))
}

/// `N` or `A-B` within `min..=max`.
fn range(item: &str, v: &str, min: u32, max: u32) -> Result<(u32, u32), SimError> {
    let num = |s: &str| {
        s.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| bad(item, &format!("expected a number in {min}..={max}")))
    };
    match v.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(bad(item, "range lower bound exceeds upper bound"));
            }
            Ok((a, b))
        }
        None => {
            let n = num(v)?;
            Ok((n, n))
        }
    }
}

fn parse_size(item: &str, v: &str) -> Result<SizeDist, SimError> {
    if v.eq_ignore_ascii_case("imix") {
        return Ok(SizeDist::Imix);
    }
    Ok(match range(item, v, MIN_SIZE, MAX_SIZE)? {
        (a, b) if a == b => SizeDist::Fixed(a),
        (a, b) => SizeDist::Uniform(a, b),
    })
}

fn parse_proto(p: &str) -> Result<(Proto, u32), SimError> {
    let item = format!("proto={p}");
    let (name, weight) = match p.split_once(':') {
        Some((n, w)) => (
            n,
            w.trim()
                .parse::<u32>()
                .map_err(|_| bad(&item, "weight must be an unsigned integer"))?,
        ),
        None => (p, 1),
    };
    let proto = match name.trim().to_ascii_lowercase().as_str() {
        "udp" => Proto::Udp,
        "tcp" => Proto::Tcp,
        "arp" => Proto::Arp,
        _ => return Err(bad(&item, "protocol is udp, tcp or arp")),
    };
    Ok((proto, weight))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_spec_parses() {
        let t = TrafficSpec::parse(
            "flows=1000,size=64-1514,proto=udp:80,tcp:20,zipf=1.1,packets=100000,seed=7",
        )
        .expect("parses");
        assert_eq!(t.flows, 1000);
        assert_eq!(t.size, SizeDist::Uniform(64, 1514));
        assert_eq!(t.proto, vec![(Proto::Udp, 80), (Proto::Tcp, 20)]);
        assert_eq!((t.zipf, t.packets, t.seed), (1.1, 100_000, 7));
        let t = TrafficSpec::parse("size=imix,proto=udp+arp:1,dport=7777,runts=0.5").expect("ok");
        assert_eq!(t.size, SizeDist::Imix);
        assert_eq!(t.proto, vec![(Proto::Udp, 1), (Proto::Arp, 1)]);
        assert_eq!(t.dport, (7777, 7777));
        assert_eq!(
            TrafficSpec::parse("").expect("defaults"),
            TrafficSpec::default()
        );
    }

    #[test]
    fn errors_name_the_item() {
        for (spec, needle) in [
            ("packets=0", "packets=0"),
            ("flows=-3", "flows=-3"),
            ("size=12", "size=12"),
            ("size=1514-64", "size=1514-64"),
            ("proto=icmp", "proto=icmp"),
            ("proto=udp:x", "proto=udp:x"),
            ("zipf=nan", "zipf=nan"),
            ("colour=blue", "colour=blue"),
            ("packets=10,bogus", "bogus"),
            ("runts=2", "runts=2"),
            ("proto=udp:0", "proto"),
            ("proto=udp,proto=tcp", "proto=tcp"),
            // Used to abort on a 111 GB flow table.
            ("flows=4294967295", "flows=4294967295"),
            ("flows=16777217", "at most 16777216"),
            ("packets=10,packets=20", "packets=20"),
            ("seed=1,zipf=1,seed=2", "`seed` given twice"),
        ] {
            let err = TrafficSpec::parse(spec).expect_err(spec).to_string();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }
}
