//! Every offloadable XDP program of the ebpf-samples and cilium/ebpf objects (little-endian)
//! on ~200 random packets each, through the executor and the interpreter. Maps start fresh
//! per program (from the object's definitions) and keep their state across its packets in
//! both engines.
//!
//! Why header-shaped packets: purely random bytes make almost every program leave at its
//! first EtherType test, so most packets are Ethernet + IPv4/IPv6 + TCP/UDP/ICMP with random
//! fields, and some are raw random bytes.

use std::path::PathBuf;
use std::time::Instant;

use nfp_backend::NicLimits;
use nfp_backend::compile::compile;
use vm_core::ProgType;

use super::compare::Pair;

/// Packets per program.
const PACKETS: usize = 200;

/// xorshift64*: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// A random packet of 14..=200 bytes, usually with plausible headers.
pub fn random_packet(rng: &mut Rng) -> Vec<u8> {
    let mut p = rng.bytes(12);
    if rng.below(8) == 0 {
        let len = 14 + rng.below(187) as usize;
        p.extend(rng.bytes(len - 12));
        return p;
    }
    let ethertype: u16 = rng.pick(&[
        0x0800, 0x0800, 0x0800, 0x86dd, 0x86dd, 0x0806, 0x8100, 0x88cc,
    ]);
    let vlan = ethertype == 0x8100;
    p.extend(ethertype.to_be_bytes());
    let inner = if vlan {
        p.extend((rng.next() as u16 & 0x0fff).to_be_bytes());
        let t: u16 = rng.pick(&[0x0800, 0x86dd]);
        p.extend(t.to_be_bytes());
        t
    } else {
        ethertype
    };
    let r = rng.next() as u8;
    let proto: u8 = rng.pick(&[6, 17, 17, 1, 58, 47, r]);
    match inner {
        0x0800 => {
            let ihl = if rng.below(6) == 0 {
                5 + rng.below(3) as u8
            } else {
                5
            };
            p.push(0x40 | ihl);
            p.extend(rng.bytes(1));
            p.extend((20u16 + 40).to_be_bytes());
            p.extend(rng.bytes(4));
            p.push(rng.pick(&[64, 1, 0, 255]));
            p.push(proto);
            p.extend([0, 0]);
            p.extend([10, 0, 0, rng.next() as u8]);
            p.extend([10, 0, rng.below(3) as u8, rng.next() as u8]);
            p.extend(rng.bytes(4 * (usize::from(ihl) - 5)));
        }
        0x86dd => {
            p.extend([0x60, 0, 0, 0]);
            p.extend(40u16.to_be_bytes());
            p.push(proto);
            p.push(64);
            p.extend(rng.bytes(32));
        }
        _ => p.extend(rng.bytes(28)),
    }
    let port = |rng: &mut Rng| -> u16 {
        let r = rng.next() as u16;
        rng.pick(&[53, 80, 443, 7777, 8080, 22, r])
    };
    let (s, d) = (port(rng), port(rng));
    p.extend(s.to_be_bytes());
    p.extend(d.to_be_bytes());
    let tail = rng.below(48) as usize;
    p.extend(rng.bytes(16 + tail));
    let cut = if rng.below(6) == 0 {
        14 + rng.below(p.len() as u64 - 13) as usize
    } else {
        p.len()
    };
    p.truncate(cut.clamp(14, 200));
    p
}

fn objects() -> Vec<PathBuf> {
    vm_core::corpus::elf_objects(&["ebpf-samples", "cilium-ebpf"])
}

/// Runs the corpus comparison, printing a table; panics listing every mismatch.
pub fn run_all() {
    let started = Instant::now();
    let nic = NicLimits::default();
    let objects = objects();
    assert!(objects.len() > 100, "only {} objects found", objects.len());
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
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
            let mut p = p.clone();
            // Cilium's XDP tail-call sections (`2/1`) in XDP objects are XDP programs, as
            // tests/corpus_feasibility.rs counts them.
            if p.prog_type == ProgType::Other(0)
                && let Some(t) = vm_core::corpus::conventional_prog_type(
                    p.section.as_deref().unwrap_or(""),
                    &rel,
                )
            {
                p.prog_type = t;
            }
            if p.prog_type != ProgType::Xdp {
                continue;
            }
            let p = &p;
            let Ok(compiled) = compile(p, &nic) else {
                continue;
            };
            let name = format!("{rel}:{}", p.name);
            let mut pair = match Pair::new(p, &compiled, &[], (rows.len() % 4) as u8) {
                Ok(pair) => pair,
                Err(e) => {
                    failures.push(format!("{name}: {e}"));
                    rows.push((name, 0, 1));
                    continue;
                }
            };
            let mut bad = 0;
            for _ in 0..PACKETS {
                let pk = random_packet(&mut rng);
                if let Err(e) = pair.run(&pk) {
                    if bad == 0 {
                        failures.push(format!("{name}: {e}"));
                    }
                    bad += 1;
                }
            }
            rows.push((name, PACKETS, bad));
        }
    }
    println!(
        "corpus differential ({:.1} s): {} offloadable XDP programs",
        started.elapsed().as_secs_f64(),
        rows.len()
    );
    println!("  {:<70} {:>7} {:>10}", "program", "packets", "mismatches");
    for (name, n, bad) in &rows {
        println!("  {name:<70} {n:>7} {bad:>10}");
    }
    assert!(!rows.is_empty(), "no offloadable XDP program in the corpus");
    assert!(
        failures.is_empty(),
        "{} corpus programs disagree; first mismatch of each:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
