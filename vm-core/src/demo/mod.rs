//! The built-in demo: a small XDP UDP port filter written for this project, and packets to
//! feed it. `offload demo`, the benches and later stages use it as their common example.

use etherparse::PacketBuilder;

use crate::{MapDef, MapType, ProgType, Program, isa};

/// Assembly source of the demo program.
pub const UDP_FILTER_ASM: &str = include_str!("udp_filter.s");

/// The UDP destination port the demo drops.
pub const BLOCKED_PORT: u16 = 7777;

/// The demo program: drops UDP to [`BLOCKED_PORT`], passes the rest, counts verdicts in `verdicts`.
pub fn udp_filter() -> Program {
    // The source is part of the binary and covered by tests: failing here is a build defect.
    let raw = crate::asm::assemble(UDP_FILTER_ASM).expect("embedded demo assembles");
    Program {
        name: "udp_filter".into(),
        section: Some("xdp".into()),
        prog_type: ProgType::Xdp,
        insns: isa::decode_program(&raw).expect("embedded demo decodes"),
        maps: vec![MapDef {
            name: "verdicts".into(),
            map_type: MapType::Array,
            key_size: 4,
            value_size: 8,
            max_entries: 5,
            flags: 0,
            initial_value: None,
        }],
    }
}

/// Assembly source of the demo's parser alone, in the bpf_conformance `mem` convention
/// (r1 = the frame, r2 = its length): Ethernet, IPv4 (any header length), UDP, returning 1
/// (drop) for UDP to [`BLOCKED_PORT`] and 2 (pass) otherwise. No map and no helper, so that
/// engines without the context rewriting or the map helpers (rbpf) run it unchanged; the
/// interpreter benches and `examples/interp_cost.rs` measure it.
pub const UDP_PARSER_MEM_ASM: &str = include_str!("udp_parser_mem.s");

/// [`UDP_PARSER_MEM_ASM`] as a `mem` program.
pub fn udp_parser_mem() -> Program {
    // The source is part of the binary and covered by tests: failing here is a build defect.
    let raw = crate::asm::assemble(UDP_PARSER_MEM_ASM).expect("embedded parser assembles");
    Program {
        name: "udp_parser".into(),
        section: None,
        prog_type: ProgType::Mem,
        insns: isa::decode_program(&raw).expect("embedded parser decodes"),
        maps: Vec::new(),
    }
}

fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(src_port, dst_port);
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    // Writing into a Vec cannot fail.
    let _ = builder.write(&mut out, payload);
    out
}

fn tcp(dst_port: u16) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, dst_port, 1, 65535);
    let mut out = Vec::with_capacity(builder.size(0));
    let _ = builder.write(&mut out, &[]);
    out
}

fn udp6(dst_port: u16) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv6(
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .udp(5000, dst_port);
    let mut out = Vec::with_capacity(builder.size(4));
    let _ = builder.write(&mut out, b"ping");
    out
}

/// Named demo packets covering every branch of the demo program.
pub fn packets() -> Vec<(&'static str, Vec<u8>)> {
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    vec![
        ("udp to port 53 (dns)", udp(5353, 53, b"query")),
        (
            "udp to port 7777 (blocked)",
            udp(5353, BLOCKED_PORT, b"hello"),
        ),
        ("tcp to port 7777", tcp(BLOCKED_PORT)),
        ("arp request", arp),
        ("udp over ipv6 to port 7777", udp6(BLOCKED_PORT)),
        (
            "udp to port 7777, large",
            udp(1234, BLOCKED_PORT, &[0xab; 1000]),
        ),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::interp::{Vm, VmConfig};

    #[test]
    fn mem_parser_drops_only_udp_to_the_blocked_port() {
        let mut vm = Vm::new(&udp_parser_mem(), VmConfig::default()).unwrap();
        for (name, packet) in packets() {
            let want = if name.starts_with("udp to port 7777") {
                1
            } else {
                2
            };
            assert_eq!(vm.run(&packet).unwrap().retval, want, "{name}");
        }
        // Too short for an Ethernet + IPv4 header: passed without reading past the end.
        assert_eq!(vm.run(&[0u8; 20]).unwrap().retval, 2);
    }
}
