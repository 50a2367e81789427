//! The native blocks' inline map lookups (`x64_call::lookup_inline`) against the reference
//! and the helper: `fw::array_desc` against vm-core's own lookup for arrays of many shapes;
//! then one packet run to its end on the fused start with the lookups prepared
//! (`FusedBudget::with_lookups`, through `run_packet_to_end_fast`) against the reference,
//! counting the lookups left to the helper: keys in range, at `max_entries` and huge, key
//! addresses at the end of local memory and beyond, a read-only array, a per-CPU array, a
//! hash map, a map id the block does not know, and two arrays in one program, with the
//! usual wait and with none (the blocks' no-wait path).

#![allow(clippy::unwrap_used)]

use super::super::thread::{Cc, slot};
use super::super::*;
use super::tests_calls::run_packet;
use super::tests_native::{g, program, set};
use super::x64_call::CALLS;
use crate::cost::FwCost;
use crate::target::{AddrMode, AluOp, Bank, CmdAction, Dst, FwHelper, ImmedWidth, MemTarget};
use crate::target::{MeInsn, Src};
use vm_core::maps::{BPF_ANY, BPF_F_RDONLY_PROG};
use vm_core::{MapDef, MapType};

fn def(map_type: MapType, value_size: u32, max_entries: u32, flags: u32) -> MapDef {
    MapDef {
        name: "m".into(),
        map_type,
        key_size: 4,
        value_size,
        max_entries,
        flags,
        initial_value: None,
    }
}

/// `fw::array_desc` gives, for the plain arrays whose slab fits their EMEM window, the
/// `max_entries` and stride that vm-core's lookup uses (each index's offset, on any CPU)
/// and `array_lookup_window`'s value window; for everything else (per-CPU arrays, hash
/// maps, missing maps, a slab beyond the window) nothing.
#[test]
fn array_desc_is_vm_cores_lookup() {
    let mut defs = Vec::new();
    for value_size in [1, 4, 8, 12, 16, 100, 4096] {
        for max in [1, 3, 1000] {
            defs.push(def(MapType::Array, value_size, max, 0));
        }
    }
    defs.push(def(MapType::Array, 12, 5, BPF_F_RDONLY_PROG));
    defs.push(def(MapType::PercpuArray, 8, 4, 0));
    defs.push(def(MapType::Hash, 8, 4, 0));
    // Exactly the EMEM window, and one value beyond it.
    defs.push(def(MapType::Array, 4096, 1 << 16, 0));
    defs.push(def(MapType::Array, 4096, (1 << 16) + 1, 0));
    let mut maps = MapSet::new(&defs, 3).unwrap();
    let (mut lmem, mut shared, lat) = (Lmem::new(), SharedMem::new(1, 2), Latencies::NFP4000);
    let mut t = Thread::new(0);
    let n = defs.len() as u32;
    for fd in 0..=n {
        let (max, stride, window) = fw::array_desc(&mut maps, fd);
        let plain = defs
            .get(fd as usize)
            .is_some_and(|d| d.map_type == MapType::Array);
        let fits = fd + 1 != n;
        assert_eq!(max != 0, plain && fits, "fd {fd}");
        if max == 0 {
            assert_eq!((stride, window), (0, None), "fd {fd}");
            continue;
        }
        let m = maps.get_mut(fd as usize).unwrap();
        assert_eq!(max, u64::from(m.def().max_entries), "fd {fd}");
        for cpu in [0, 2, 7] {
            for k in [0, 1, max / 2, max - 1, max, max + 1, u64::from(u32::MAX)] {
                let key = (k as u32).to_le_bytes();
                let want = m.lookup(&key, cpu).map(|off| off as u64);
                let got = (k < max).then_some(k * stride);
                assert_eq!(got, want, "fd {fd} key {k} cpu {cpu}");
                assert!(got.is_none_or(|o| o < 1 << EMEM_MAP_FD_SHIFT));
            }
        }
        // The window `array_lookup_window` gives with any key.
        lmem.bytes_mut()[..4].copy_from_slice(&0u32.to_le_bytes());
        t.file[slot::A + 2] = fd;
        t.file[slot::A + 4] = 0;
        let mut mem = MemState {
            lmem: &mut lmem,
            shared: &mut shared,
            maps: &mut maps,
            lat: &lat,
        };
        let (r0, w) = fw::array_lookup_window(&t, &mut mem).unwrap();
        assert_eq!(r0, emem_map_addr(fd, 0));
        assert_eq!(window, w, "fd {fd}");
    }
}

/// The maps of the programs below: an array (fd 0), a read-only array (fd 1), a hash map
/// (fd 2), a per-CPU array (fd 3) and a small array of 4-byte values (fd 4), with values
/// at a few keys.
fn maps() -> MapSet {
    let defs = [
        def(MapType::Array, 16, 8, 0),
        def(MapType::Array, 8, 8, BPF_F_RDONLY_PROG),
        def(MapType::Hash, 12, 8, 0),
        def(MapType::PercpuArray, 8, 4, 0),
        def(MapType::Array, 4, 3, 0),
    ];
    let mut m = MapSet::new(&defs, 2).unwrap();
    for (fd, d) in defs.iter().enumerate() {
        let copies = if d.map_type == MapType::PercpuArray {
            2
        } else {
            1
        };
        let size = d.value_size.div_ceil(8) as usize * 8 * copies;
        let size = if copies == 1 {
            d.value_size as usize
        } else {
            size
        };
        for k in [1u32, 2] {
            let v: Vec<u8> = (0..size)
                .map(|i| (i as u8).wrapping_mul(29) ^ k as u8)
                .collect();
            m.get_mut(fd)
                .unwrap()
                .user_update(&k.to_le_bytes(), &v, BPF_ANY)
                .unwrap();
        }
    }
    m
}

/// `immed[gprAB_n, v]`: one instruction (the blocks know its value, `slots`).
fn immed(n: u8, v: u16) -> MeInsn {
    MeInsn::Immed {
        dst: Dst::Both(n),
        imm: v,
        shift: 0,
        invert: false,
        width: ImmedWidth::All,
    }
}

/// A lookup of map `fd` (set by `immed`, or `None`: map 0, read from local memory, which
/// the blocks do not know) with the key at local-memory address `at`, then an add of 5 to
/// the first word of the value it found (the atomic add the native blocks make in place in
/// the value window) unless it found none.
fn lookup(fd: Option<u16>, at: u32) -> Vec<MeInsn> {
    let mut c = vec![match fd {
        Some(fd) => immed(2, fd),
        None => MeInsn::Alu {
            op: AluOp::PassB,
            dst: Dst::Both(2),
            a: Src::None,
            b: Src::Lm { index: 3, off: 4 },
        },
    }];
    c.extend(set(4, at));
    c.push(MeInsn::FwCall {
        helper: FwHelper::MapLookup,
    });
    c.push(MeInsn::Alu {
        op: AluOp::PassB,
        dst: Dst::Xfer(0),
        a: Src::None,
        b: Src::Imm(5),
    });
    // Past the add when R0 is 0.
    c.push(MeInsn::Alu {
        op: AluOp::PassB,
        dst: Dst::None,
        a: Src::None,
        b: g(Bank::B, 0),
    });
    c.push(MeInsn::Br {
        cond: crate::target::Cond::Eq,
        target: u16::MAX,
        defer: 0,
    });
    c.push(MeInsn::Cmd {
        target: MemTarget::Emem,
        action: CmdAction::AtomicAdd,
        xfer: 0,
        count: 1,
        mode: AddrMode::Addr40,
        a: g(Bank::A, 1),
        b: g(Bank::B, 0),
        swap: true,
    });
    c
}

/// Local-memory addresses of the keys [`keys`] stores: 1, 2, 8 (`max_entries` of fd 0),
/// `u32::MAX`, 0; and 1 in the last word of local memory.
const AT: [u32; 6] = [0x100, 0x104, 0x108, 0x10c, 0x110, LMEM_BYTES as u32 - 4];

/// Stores the keys of [`AT`] (a packet's start clears local memory), through LM index 3
/// at 0x100 and index 2 at the last 64 bytes.
fn keys() -> Vec<MeInsn> {
    let mut c = Vec::new();
    for (n, at) in [(3, 0x100), (2, LMEM_BYTES as u32 - 64)] {
        c.extend(set(6, at));
        c.push(MeInsn::CsrWrite {
            csr: crate::target::Csr::ActLmAddr(n),
            src: g(Bank::A, 6),
        });
    }
    // (Past the index registers' write delay.)
    c.extend([MeInsn::Nop; 8]);
    for ((index, off), v) in [(3, 0), (3, 1), (3, 2), (3, 3), (3, 4), (2, 15)]
        .into_iter()
        .zip([1, 2, 8, u32::MAX, 0, 1])
    {
        c.extend(set(5, v));
        c.push(MeInsn::Alu {
            op: AluOp::PassB,
            dst: Dst::Lm { index, off },
            a: Src::None,
            b: g(Bank::B, 5),
        });
    }
    c
}

/// [`keys`], then `body`, as a program, its forward branches (`target` `u16::MAX`) to the
/// instruction after the next.
fn prog_of(body: Vec<MeInsn>) -> Vec<MeInsn> {
    let mut all = keys();
    all.extend(body);
    let mut code = program([0, 0, 0, 0, 0, 0, 0, 0], all, 0);
    for (i, insn) in code.iter_mut().enumerate() {
        if let MeInsn::Br { target, .. } = insn
            && *target == u16::MAX
        {
            *target = (i + 2) as u16;
        }
    }
    code
}

/// What one packet shows at its end: the swaps' cycles, the event, registers, flags, pc,
/// count, local memory and the maps' slabs.
type Seen = (
    Vec<(u64, u64)>,
    Result<Event, ExecError>,
    Vec<u32>,
    Cc,
    u32,
    u64,
    Vec<u8>,
    Vec<Vec<u8>>,
);

/// One packet on a fresh thread: stepped on the reference, or (`fused`) run to its end in
/// one call on the native program (the fused start with the lookups prepared), with the
/// helper's calls counted.
fn one_packet(code: &[MeInsn], lat: &Latencies, fused: bool) -> (Seen, u64) {
    let (mut lmem, mut shared, mut maps) = (Lmem::new(), SharedMem::new(3, 1), maps());
    let mut t = Thread::new(1);
    let packet: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(41)).collect();
    let calls = CALLS.get();
    let (swaps, e) = {
        let mut mem = MemState {
            lmem: &mut lmem,
            shared: &mut shared,
            maps: &mut maps,
            lat,
        };
        run_packet(&mut t, code, &mut mem, &packet, fused)
    };
    let seen = (
        swaps,
        e,
        t.file[..slot::REGS].to_vec(),
        t.cc,
        t.pc,
        t.insns,
        lmem.bytes().to_vec(),
        maps.iter().map(|m| m.slab().to_vec()).collect(),
    );
    (seen, CALLS.get() - calls)
}

/// One packet of `body` on both, for both latencies (the usual wait, and none: the blocks'
/// no-wait path); the same state, and `calls` lookups (at the usual wait) left to the
/// helper.
fn check(body: Vec<MeInsn>, calls: u64) {
    let code = prog_of(body);
    let mut none = Latencies::NFP4000;
    none.fw[crate::cost::fw_index(FwHelper::MapLookup)] = FwCost { issue: 3, wait: 0 };
    for (i, lat) in [Latencies::NFP4000, none].iter().enumerate() {
        let (want, _) = one_packet(&code, lat, false);
        let (got, n) = one_packet(&code, lat, true);
        assert!(
            got == want,
            "latencies {i}: native {:?}\nreference {:?}\n{}",
            got.1,
            want.1,
            crate::target::print_program(&code)
        );
        if i == 0 {
            assert_eq!(n, calls, "{}", crate::target::print_program(&code));
        }
    }
}

/// Keys in range look up inline; a key at `max_entries`, a huge key, a key across or
/// beyond the end of local memory go to the helper (a miss, or its fault), the key in
/// the last word of local memory inline.
#[test]
fn array_keys_look_up_inline_or_through_the_helper() {
    for (at, calls) in [
        (AT[0], 0),
        (AT[1], 0),
        (AT[2], 1),
        (AT[3], 1),
        (AT[4], 0),
        (AT[5], 0),
        (LMEM_BYTES as u32 - 2, 1),
        (LMEM_BYTES as u32, 1),
        (u32::MAX - 3, 1),
    ] {
        check(lookup(Some(0), at), calls);
    }
}

/// A read-only array looks up inline (no value window: the add goes to its helper, which
/// declines, then the general handler faults); a per-CPU array and a hash map call the
/// helper; a map id the block does not know calls the helper too.
#[test]
fn other_maps_and_unknown_ids_call_the_helper() {
    check(lookup(Some(1), AT[0]), 0);
    check(lookup(Some(3), AT[0]), 1);
    check(lookup(Some(2), AT[0]), 1);
    check(lookup(None, AT[0]), 1);
}

/// Two arrays in one program: the first looked up is the one made inline (`lookup_fd`),
/// the other calls the helper, whose value window then replaces the first's (adds to
/// either stay right).
#[test]
fn two_arrays_one_inline() {
    for (a, b) in [(0, 4), (4, 0)] {
        let mut body = lookup(Some(a), AT[0]);
        body.extend(lookup(Some(b), AT[1]));
        body.extend(lookup(Some(a), AT[4]));
        check(body, 1);
    }
}

/// A lookup after an LM step of its block reads the key through the LM bytes' pointer
/// that step left in r10 (`x64_lm::Seen::based`): the key's address in eax (the merge of
/// a 32-bit `immed` pair) and a constant (one `immed`), inside local memory and across
/// its end (the helper's fault).
#[test]
fn lookups_after_an_lm_step_read_the_key_through_its_pointer() {
    let lm = MeInsn::Alu {
        op: AluOp::PassB,
        dst: Dst::Both(7),
        a: Src::None,
        b: Src::Lm { index: 3, off: 1 },
    };
    for (at, calls) in [
        (AT[0], 0),
        (AT[1], 0),
        (AT[5], 0),
        (LMEM_BYTES as u32 - 2, 1),
    ] {
        let mut body = vec![lm];
        body.extend(lookup(Some(0), at));
        check(body, calls);
        // R2 by one `immed` (a constant the block knows) instead of the pair.
        let mut body = vec![lm];
        let mut l = lookup(Some(0), at);
        l.splice(1..3, [immed(4, at as u16)]);
        body.extend(l);
        check(body, calls);
    }
}
