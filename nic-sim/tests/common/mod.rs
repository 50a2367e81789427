//! Shared by the nic-sim integration tests: corpus enumeration and header-shaped frames.

#![allow(dead_code)]

use nfp_backend::NicLimits;
use nic_sim::{NfpProgram, SimError, TrafficSpec, traffic::Generator};
use vm_core::{ProgType, Program};

/// Every offloadable XDP program of the ebpf-samples and cilium/ebpf objects (little-endian),
/// as (name, program, compiled). Fails when the corpus is missing (`corpus::require`).
pub fn offloadable_corpus() -> Vec<(String, Program, NfpProgram)> {
    let objects = vm_core::corpus::elf_objects(&["ebpf-samples", "cilium-ebpf"]);
    assert!(objects.len() > 100, "only {} corpus objects", objects.len());
    let nic = NicLimits::default();
    let mut out = Vec::new();
    for path in &objects {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        if vm_core::elf::is_big_endian(&bytes) {
            continue;
        }
        let Ok((obj, _)) = vm_core::elf::load_object_lenient(&bytes) else {
            continue;
        };
        let rel = path
            .strip_prefix(vm_core::corpus::root())
            .unwrap_or(path)
            .display()
            .to_string();
        for p in &obj.programs {
            if p.prog_type != ProgType::Xdp {
                continue;
            }
            if let Ok(nfp) = NfpProgram::compile(p, &nic) {
                out.push((format!("{rel}:{}", p.name), p.clone(), nfp));
            }
        }
    }
    assert!(!out.is_empty(), "no offloadable XDP program in the corpus");
    out
}

/// xorshift64*: deterministic, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A frame the generator does not build: IPv6, VLAN-tagged IPv4, odd IHL, ICMP, random
/// bytes, truncated headers; 14..=300 bytes (and now and then a runt).
pub fn odd_frame(rng: &mut Rng) -> Vec<u8> {
    let mut p = rng.bytes(12);
    match rng.below(6) {
        0 => {
            let len = rng.below(300) as usize;
            p.extend(rng.bytes(len));
            p.truncate(len.max(1));
            return p;
        }
        1 => {
            p.extend([0x86, 0xdd, 0x60, 0, 0, 0]);
            p.extend(40u16.to_be_bytes());
            p.push([6u8, 17, 58, 0][rng.below(4) as usize]);
            p.push(64);
            p.extend(rng.bytes(32));
        }
        2 => {
            p.extend([0x81, 0x00]);
            p.extend((rng.next() as u16 & 0x0fff).to_be_bytes());
            p.extend([0x08, 0x00, 0x45, 0]);
            p.extend(60u16.to_be_bytes());
            p.extend(rng.bytes(4));
            p.extend([
                64,
                [6u8, 17, 1][rng.below(3) as usize],
                0,
                0,
                10,
                0,
                0,
                1,
                10,
                0,
                0,
                2,
            ]);
        }
        _ => {
            let ihl = 5 + (rng.below(4) == 0) as u8 * rng.below(3) as u8;
            p.extend([0x08, 0x00, 0x40 | ihl, 0]);
            p.extend(60u16.to_be_bytes());
            p.extend(rng.bytes(4));
            p.push([64u8, 1, 0][rng.below(3) as usize]);
            p.push([6u8, 17, 17, 1, 47][rng.below(5) as usize]);
            p.extend([
                0,
                0,
                10,
                0,
                0,
                rng.next() as u8,
                10,
                0,
                rng.below(3) as u8,
                rng.next() as u8,
            ]);
            p.extend(rng.bytes(4 * (usize::from(ihl) - 5)));
        }
    }
    let ports = [53u16, 80, 443, 7777, 8080, 22, rng.next() as u16];
    p.extend(ports[rng.below(7) as usize].to_be_bytes());
    p.extend(ports[rng.below(7) as usize].to_be_bytes());
    let tail = 16 + rng.below(64) as usize;
    p.extend(rng.bytes(tail));
    if rng.below(5) == 0 {
        let cut = 14 + rng.below(p.len() as u64 - 13) as usize;
        p.truncate(cut);
    }
    p
}

/// `n` frames: generator traffic (UDP/TCP/ARP flows, mixed sizes, a few runts) with every
/// fourth frame replaced by an [`odd_frame`].
pub fn mixed_frames(n: u64, seed: u64) -> impl Iterator<Item = Result<Vec<u8>, SimError>> {
    let spec = TrafficSpec::parse(&format!(
        "packets={n},flows=300,size=64-600,proto=udp:60,tcp:30,arp:10,zipf=0.8,runts=0.01,dport=1-9000,seed={seed}"
    ))
    .expect("spec");
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    Generator::new(&spec).enumerate().map(move |(i, f)| {
        if i % 4 == 3 {
            Ok(odd_frame(&mut rng))
        } else {
            f
        }
    })
}
