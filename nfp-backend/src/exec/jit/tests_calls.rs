//! Native blocks against the handlers and the reference on what `x64_call` and `x64_pass`
//! compile: `emem[atomic_add]` to map values (inside, at the edges of and outside a value
//! slab, to a read-only map, to a missing map, with 32-bit addresses), `fw_call
//! [map_lookup]` (present, absent and missing maps, keys across the end of local memory),
//! and the swaps after them and after `ctm` reads, passed inside the block or not: stepping
//! (nothing passes), runs to the end of a packet (every swap passes, the segment room
//! growing from empty), and runs through a horizon (some pass, with more passes than the
//! scratch room holds), with ample and tiny budgets.

#![allow(clippy::unwrap_used)]

use super::super::thread::{Cc, slot};
use super::super::*;
use super::tests_native::{g, program, set};
use crate::target::{AddrMode, AluOp, Bank, CmdAction, Dst, FwHelper};
use crate::target::{MemTarget, Src};
use proptest::prelude::*;
use vm_core::maps::{BPF_ANY, BPF_F_RDONLY_PROG};
use vm_core::{MapDef, MapType};

/// An array (fd 0), a read-only array (fd 1) and a hash with three keys (fd 2).
fn maps() -> MapSet {
    let def = |name: &str, map_type, value_size, flags| MapDef {
        name: name.into(),
        map_type,
        key_size: 4,
        value_size,
        max_entries: 8,
        flags,
        initial_value: None,
    };
    let defs = [
        def("a", MapType::Array, 16, 0),
        def("ro", MapType::Array, 8, BPF_F_RDONLY_PROG),
        def("h", MapType::Hash, 12, 0),
    ];
    let mut m = MapSet::new(&defs, 1).unwrap();
    for (fd, size) in [(0usize, 16usize), (1, 8), (2, 12)] {
        for k in [1u32, 3, 7] {
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

/// Local-memory addresses of the keys the programs look up: 1, 3, 9 (absent from every
/// map), and one whose last bytes are past the end of local memory.
const KEYS: [u32; 4] = [0x100, 0x104, 0x108, LMEM_BYTES as u32 - 2];

/// What a run shows after each event: the event, registers, flags, pc, count, local
/// memory and the maps' slabs, and the passed segments' busy and wait.
type Seen = (
    Result<Event, ExecError>,
    Vec<u32>,
    Cc,
    u32,
    u64,
    Vec<u8>,
    Vec<Vec<u8>>,
    (u64, u64),
);

/// How a run resumes its thread.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// `run_until_event_fast` (the reference: `run_until_event`), nothing passed.
    Step,
    /// `run_to_end_fast`, the segments compared as swaps' busy and wait.
    ToEnd,
    /// `run_through_fast` from model time `at` with `horizon`, resumed until the end.
    Through { at: u64, horizon: u64 },
}

/// The [`Seen`] of thread `t` after event `e`, with `cycles` passed.
fn seen(
    e: Result<Event, ExecError>,
    t: &Thread,
    lmem: &Lmem,
    maps: &MapSet,
    cycles: (u64, u64),
) -> Seen {
    (
        e,
        t.file[..slot::REGS].to_vec(),
        t.cc,
        t.pc,
        t.insns,
        lmem.bytes().to_vec(),
        maps.iter().map(|m| m.slab().to_vec()).collect(),
        cycles,
    )
}

/// Runs three packets one after another on thread `index` (state kept), on the reference
/// (`prog` `None`, which steps in every mode) or the fast path, recording every event (a
/// run to the end records each passed segment as a swap event, as the reference's).
fn run(code: &[MeInsn], prog: Option<&FastProgram>, mode: Mode, budget: u64) -> Vec<Seen> {
    run_with(&Latencies::NFP4000, code, prog, mode, budget)
}

/// [`run`] with the latencies `lat`.
fn run_with(
    lat: &Latencies,
    code: &[MeInsn],
    prog: Option<&FastProgram>,
    mode: Mode,
    budget: u64,
) -> Vec<Seen> {
    let (mut lmem, mut shared, mut maps) = (Lmem::new(), SharedMem::new(3, 0), maps());
    let mut t = Thread::new(1);
    let mut out = Vec::new();
    let mut segs = Vec::new();
    for p in 0..3u8 {
        let packet: Vec<u8> = (0..60 + p).map(|i| i.wrapping_mul(41) ^ p).collect();
        t.start(&mut lmem, &packet).unwrap();
        for (&at, k) in KEYS.iter().zip([1u32, 3, 9, 1]) {
            for (i, b) in k.to_le_bytes().into_iter().enumerate() {
                if let Some(x) = lmem.bytes_mut().get_mut(at as usize + i) {
                    *x = b;
                }
            }
        }
        loop {
            // One per resume, as the timing model makes them: its marks are the resume's.
            let mut through = match mode {
                Mode::Through { at, horizon } => RunThrough::new(at, horizon),
                _ => RunThrough::default(),
            };
            let mut mem = MemState {
                lmem: &mut lmem,
                shared: &mut shared,
                maps: &mut maps,
                lat,
            };
            segs.clear();
            let e = match (prog, mode) {
                (None, _) => t.run_until_event(code, &mut mem, budget),
                (Some(f), Mode::Step) => t.run_until_event_fast(f, &mut mem, budget),
                (Some(f), Mode::ToEnd) => t.run_to_end_fast(f, &mut mem, budget, None, &mut segs),
                (Some(f), Mode::Through { .. }) => {
                    t.run_through_fast(f, &mut mem, budget, None, &mut through)
                }
            };
            let again = matches!(e, Ok(Event::Swap { .. }));
            for s in &segs {
                out.push((
                    Ok(Event::Swap {
                        busy_cycles: s.busy,
                        wait_cycles: s.wait,
                        target: SwapTarget::Fw(FwHelper::Random),
                    }),
                    Vec::new(),
                    Cc::default(),
                    0,
                    0,
                    Vec::new(),
                    Vec::new(),
                    (0, 0),
                ));
            }
            out.push(seen(e, &t, &lmem, &maps, (through.busy(), through.wait())));
            if !again {
                break;
            }
        }
    }
    out
}

/// The segments of a run to the end, as the reference's swaps: only their cycles (the
/// rest of a passed swap's state is not observable).
fn cycles_only(s: &[Seen]) -> Vec<Option<(u64, u64)>> {
    s.iter()
        .map(|x| match x.0 {
            Ok(Event::Swap {
                busy_cycles,
                wait_cycles,
                ..
            }) => Some((busy_cycles, wait_cycles)),
            _ => None,
        })
        .collect()
}

/// The native program agrees with the handlers in `mode`; stepping, both agree with the
/// reference; to the end, the segments and the last event are the reference's.
fn agree(code: &[MeInsn], mode: Mode, budget: u64) -> Result<(), TestCaseError> {
    agree_with(&Latencies::NFP4000, code, mode, budget)
}

/// [`agree`] with the latencies `lat`.
fn agree_with(
    lat: &Latencies,
    code: &[MeInsn],
    mode: Mode,
    budget: u64,
) -> Result<(), TestCaseError> {
    let run = |code, prog, mode, budget| run_with(lat, code, prog, mode, budget);
    // Compiled for `lat` (its costs constants in the code), and for the default table,
    // which a run with another `lat` must keep off (`FastProgram::native_for`).
    let native = FastProgram::with_latencies(code, lat);
    let handlers = FastProgram::without_native(code);
    let got = run(code, Some(&native), mode, budget);
    let by_handlers = run(code, Some(&handlers), mode, budget);
    let show = || crate::target::print_program(code);
    let default = FastProgram::new(code);
    let other = run(code, Some(&default), mode, budget);
    prop_assert!(
        other == by_handlers,
        "compiled for the default table ({mode:?})\n{}",
        show()
    );
    prop_assert!(
        got == by_handlers,
        "native differs from the handlers ({mode:?}): {:?} vs {:?}\n{}",
        got.iter().map(|g| &g.0).collect::<Vec<_>>(),
        by_handlers.iter().map(|g| &g.0).collect::<Vec<_>>(),
        show()
    );
    let want = run(code, None, Mode::Step, budget);
    match mode {
        Mode::Step => prop_assert!(got == want, "native differs from the reference\n{}", show()),
        Mode::ToEnd => {
            let ends = |s: &[Seen]| -> Vec<Seen> {
                s.iter()
                    .filter(|x| !matches!(x.0, Ok(Event::Swap { .. })))
                    .cloned()
                    .collect()
            };
            let (mut g, mut w) = (cycles_only(&got), cycles_only(&want));
            // The event ending a packet is returned with the busy cycles after the last
            // segment, as the reference's.
            g.retain(Option::is_some);
            w.retain(Option::is_some);
            prop_assert!(g == w, "segments differ: {g:?} vs {w:?}\n{}", show());
            prop_assert!(ends(&got) == ends(&want), "ends differ\n{}", show());
        }
        Mode::Through { .. } => {}
    }
    Ok(())
}

/// Register values near what the checks test: map numbers, the high byte of EMEM, map
/// value addresses near their slabs' edges, key addresses, packet addresses, any word.
fn value() -> impl Strategy<Value = u32> {
    prop_oneof![
        0u32..4,
        Just((EMEM_MAP_BASE >> 32) as u32),
        (0u32..4, prop_oneof![0u32..24, 96u32..136, any::<u32>()])
            .prop_map(|(fd, off)| emem_map_addr(fd, u64::from(off)) as u32),
        prop::sample::select(KEYS.to_vec()),
        (0u32..4100).prop_map(|o| ctm_packet_buffer(1).wrapping_add(o)),
        any::<u32>(),
    ]
}

/// One instruction: ALU ops on GPRs 0..8, transfer register writes, `ctm` reads,
/// `emem[atomic_add]` (to a map value the registers or a lookup address), map lookups.
fn insn() -> impl Strategy<Value = MeInsn> {
    let a =
        prop_oneof![3 => (0u8..8).prop_map(|n| g(Bank::A, n)), 1 => (0u8..4).prop_map(Src::Imm)];
    let b =
        prop_oneof![3 => (0u8..8).prop_map(|n| g(Bank::B, n)), 1 => (0u8..4).prop_map(Src::Imm)];
    prop_oneof![
        3 => (0u8..11, 0u8..8, a.clone(), b.clone()).prop_map(|(k, d, a, b)| MeInsn::Alu {
            op: super::super::fast_handlers::ALU_OPS[usize::from(k)],
            dst: Dst::Both(d),
            a,
            b,
        }),
        2 => (0u8..4, b.clone()).prop_map(|(x, b)| MeInsn::Alu {
            op: AluOp::PassB,
            dst: Dst::Xfer(x),
            a: Src::None,
            b,
        }),
        1 => (0u8..6, 1u8..13, 0u8..8, any::<bool>()).prop_map(|(xfer, count, r, swap)| {
            MeInsn::Cmd {
                target: MemTarget::Ctm,
                action: CmdAction::Read8,
                xfer,
                count,
                mode: AddrMode::Addr32,
                a: g(Bank::A, r),
                b: Src::Imm(2),
                swap,
            }
        }),
        3 => (0u8..4, 0u8..4, (0u8..8, 0u8..8), (any::<bool>(), 0u8..8)).prop_map(
            |(xfer, count, (x, y), (swap, m))| MeInsn::Cmd {
                target: MemTarget::Emem,
                action: CmdAction::AtomicAdd,
                xfer,
                count,
                mode: if m == 0 { AddrMode::Addr32 } else { AddrMode::Addr40 },
                a: g(Bank::A, x),
                b: g(Bank::B, y),
                swap,
            }
        ),
        // The add to the address a lookup returned (R0 = A1:B0).
        2 => (0u8..4, 1u8..3, any::<bool>()).prop_map(|(xfer, count, swap)| MeInsn::Cmd {
            target: MemTarget::Emem,
            action: CmdAction::AtomicAdd,
            xfer,
            count,
            mode: AddrMode::Addr40,
            a: g(Bank::A, 1),
            b: g(Bank::B, 0),
            swap,
        }),
        3 => Just(MeInsn::FwCall { helper: FwHelper::MapLookup }),
    ]
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::Step),
        Just(Mode::ToEnd),
        (0u64..500, 0u64..3000).prop_map(|(at, h)| Mode::Through {
            at,
            horizon: at + h
        }),
        (0u64..500).prop_map(|at| Mode::Through {
            at,
            horizon: u64::MAX
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Adds, lookups and reads between ALU ops, from registers near the checks' edges,
    /// over three packets, stepping, to the end and through a horizon, with ample and
    /// tiny budgets.
    #[test]
    fn calls_and_passes_equal_the_handlers_and_the_reference(
        values in prop::array::uniform8(value()),
        body in prop::collection::vec(insn(), 0..24),
        k in any::<u8>(),
        mode in mode(),
        budget in prop_oneof![3 => Just(10_000u64), 1 => 1u64..80],
    ) {
        agree(&program(values, body, k), mode, budget)?;
    }

    /// The same with lookups that do not wait (`x64_emit::NoWait`, the path at the
    /// lookup's cold exit), with any issue cycles.
    #[test]
    fn lookups_without_a_wait_equal_the_handlers_and_the_reference(
        values in prop::array::uniform8(value()),
        body in prop::collection::vec(insn(), 0..24),
        (k, issue) in (any::<u8>(), prop_oneof![0u32..20, Just(0x8000_0000)]),
        mode in mode(),
        budget in prop_oneof![3 => Just(10_000u64), 1 => 1u64..80],
    ) {
        let mut lat = Latencies::NFP4000;
        lat.fw[crate::cost::fw_index(FwHelper::MapLookup)] = crate::cost::FwCost { issue, wait: 0 };
        agree_with(&lat, &program(values, body, k), mode, budget)?;
    }
}

/// A lookup and an add of the demo's shape compile into blocks (else the tests above
/// would hold the handlers to themselves).
#[test]
fn lookups_and_adds_are_compiled() {
    let code = program(
        [0, 0, 0, 0, KEYS[0], 0, 0, 0],
        vec![
            MeInsn::FwCall {
                helper: FwHelper::MapLookup,
            },
            MeInsn::Cmd {
                target: MemTarget::Emem,
                action: CmdAction::AtomicAdd,
                xfer: 0,
                count: 2,
                mode: AddrMode::Addr40,
                a: g(Bank::A, 1),
                b: g(Bank::B, 0),
                swap: true,
            },
        ],
        0,
    );
    let ops: Vec<_> = FastProgram::new(&code).hops.iter().map(|h| h.op).collect();
    let lookup = code.len() - 5;
    for at in [lookup, lookup + 1] {
        let b = super::block_at(&ops, at).unwrap();
        assert!(b.len() == 1 && super::compilable(&b[0].1), "{at}");
    }
    assert!(matches!(
        super::steps(&super::block_at(&ops, 0).unwrap()).last(),
        Some(super::Step::Lookup { .. })
    ));
}

/// Every horizon from the resume's start to past its last swap, on a program of the
/// demo filter's shape (a swapping packet read, a lookup, a swapping add to the value it
/// found, a branch): each swap is passed with the horizon one cycle after, at, and one
/// cycle before the time its thread is ready again (the rule's boundary).
#[test]
fn every_horizon_passes_as_the_handlers_do() {
    let mut body = vec![MeInsn::Cmd {
        target: MemTarget::Ctm,
        action: CmdAction::Read8,
        xfer: 0,
        count: 12,
        mode: AddrMode::Addr32,
        a: g(Bank::A, 6),
        b: Src::Imm(2),
        swap: true,
    }];
    body.extend(set(2, 0));
    body.extend(set(4, KEYS[0]));
    body.push(MeInsn::FwCall {
        helper: FwHelper::MapLookup,
    });
    body.push(MeInsn::Alu {
        op: AluOp::PassB,
        dst: Dst::Xfer(0),
        a: Src::None,
        b: Src::Imm(3),
    });
    body.push(MeInsn::Cmd {
        target: MemTarget::Emem,
        action: CmdAction::AtomicAdd,
        xfer: 0,
        count: 1,
        mode: AddrMode::Addr40,
        a: g(Bank::A, 1),
        b: g(Bank::B, 0),
        swap: true,
    });
    let code = program([0, 0, 0, 0, 0, 0, ctm_packet_buffer(1), 0], body, 1);
    for h in 0..700 {
        let mode = Mode::Through {
            at: 5,
            horizon: 5 + h,
        };
        let native = run(&code, Some(&FastProgram::new(&code)), mode, 10_000);
        let handlers = run(
            &code,
            Some(&FastProgram::without_native(&code)),
            mode,
            10_000,
        );
        assert!(native == handlers, "horizon {h}");
    }
}

/// The helpers' inline paths (`fw::array_lookup_window`, `memory::emem_value_region`)
/// answer as the general ones whenever they answer: lookups in an array, a per-CPU array
/// (the copy of CPU 2 of 3) and a hash map, with every key address (in range, across the
/// end of local memory), present and absent keys and a missing map; the value windows of
/// the lookups (the native add's, none for a read-only map) at each of their offsets;
/// value regions of each map at every offset around its slab's end, a read-only map's and
/// a missing map's.
#[test]
fn the_inline_paths_agree_with_the_general_ones() {
    use super::super::{emem_map_addr, fw, memory};
    let def = |map_type, value_size, flags| MapDef {
        name: "m".into(),
        map_type,
        key_size: 4,
        value_size,
        max_entries: 4,
        flags,
        initial_value: None,
    };
    let defs = [
        def(MapType::Array, 12, 0),
        def(MapType::PercpuArray, 8, 0),
        def(MapType::Hash, 8, 0),
        def(MapType::Array, 8, BPF_F_RDONLY_PROG),
    ];
    let mut maps = MapSet::new(&defs, 3).unwrap();
    maps.get_mut(2)
        .unwrap()
        .user_update(&2u32.to_le_bytes(), &[7; 8], BPF_ANY)
        .unwrap();
    let (mut lmem, mut shared) = (Lmem::new(), SharedMem::new(1, 2));
    for (i, k) in [0u32, 2, 3, 4, 9].into_iter().enumerate() {
        let at = 4 * i;
        lmem.bytes_mut()[at..at + 4].copy_from_slice(&k.to_le_bytes());
    }
    let lat = Latencies::NFP4000;
    let mut t = Thread::new(0);
    let (mut fast, mut all) = (0, 0);
    let mut windows = Vec::new();
    for fd in 0..5u32 {
        for key in [0u32, 4, 8, 12, 16, LMEM_BYTES as u32 - 2, LMEM_BYTES as u32] {
            t.file[slot::A + 2] = fd;
            t.file[slot::A + 4] = key;
            let mut mem = MemState {
                lmem: &mut lmem,
                shared: &mut shared,
                maps: &mut maps,
                lat: &lat,
            };
            all += 1;
            if let Some((r0, window)) = fw::array_lookup_window(&t, &mut mem) {
                fast += 1;
                assert_eq!(Ok(r0), fw::map_lookup(&t, &mut mem), "fd {fd} key {key:#x}");
                windows.push((fd, window));
            }
        }
    }
    // The value windows: the writable arrays' (not the read-only one's), each the bytes
    // `emem_value_region` gives at every offset up to `last` (the native add's bound).
    let mut seen = std::collections::BTreeSet::new();
    for (fd, window) in windows {
        let Some((base, last, ptr)) = window else {
            assert_eq!(fd, 3, "only the read-only array has no window");
            continue;
        };
        seen.insert(fd);
        assert_eq!(base, emem_map_addr(fd, 0));
        assert_eq!(last + 8, maps.get(fd as usize).unwrap().slab().len() as u64);
        for off in 0..=last {
            for len in [4u32, 8] {
                let b = memory::emem_value_region(&mut maps, base + off, len).unwrap();
                assert_eq!(
                    b.as_ptr(),
                    ptr.wrapping_add(off as usize),
                    "fd {fd} off {off}"
                );
            }
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![0, 1]);
    // Arrays answer inline (two of them, five keys each in range).
    assert!(fast >= 10 && fast < all, "{fast} of {all}");
    let mut inline = 0;
    for fd in 0..5u32 {
        for off in [0u64, 4, 8, 28, 32, 36, 40, 44, 48, 96, 1 << 27] {
            for len in [4u32, 8] {
                let addr = emem_map_addr(fd, off);
                let general = memory::emem_region(&mut maps, addr, len, true).map(|b| b.to_vec());
                if let Some(b) = memory::emem_value_region(&mut maps, addr, len) {
                    inline += 1;
                    assert_eq!(Some(b.to_vec()), general, "fd {fd} off {off} len {len}");
                }
            }
        }
    }
    assert!(inline > 0);
}

/// A compare and a branch whose fall-through (or, with `jump`, whose target, the
/// fall-through an ALU op before it) goes on to `ctm` reads (swapping or not, from
/// addresses near the buffer's edges, so that their cold exits are taken) before an ALU op
/// overwrites the compare's flags: the copies laid out for that path with those flags
/// pending (`x64::pending_on`) recompute them at the reads' exits, as stored on the way;
/// stepping, to the end and through a horizon.
fn pending_body(
    (op, x, y, k): (u8, u8, u8, u8),
    reads: Vec<(u8, u8, bool)>,
    (last, jump): ((u8, u8), Option<u8>),
) -> (Vec<MeInsn>, u8) {
    let alu = |k: u8, a, b| MeInsn::Alu {
        op: super::super::fast_handlers::ALU_OPS[usize::from(k) % 11],
        dst: Dst::None,
        a,
        b,
    };
    let mut body = vec![alu(op, g(Bank::A, x), g(Bank::B, y))];
    // To the exit `program` appends (8 values set in pairs, then the body, a branch and
    // an add before it), or over the op `jump` to the reads.
    let filler = usize::from(jump.is_some());
    let exit = 16 + 2 + (filler + reads.len()) as u16 + 1 + 2;
    body.push(MeInsn::Br {
        cond: super::super::fast_handlers::CONDS[usize::from(k) % 13],
        target: if jump.is_some() { 16 + 3 } else { exit },
        defer: 0,
    });
    if let Some(j) = jump {
        body.push(alu(j, g(Bank::A, j % 8), Src::Imm(5)));
    }
    for (r, count, swap) in reads {
        body.push(MeInsn::Cmd {
            target: MemTarget::Ctm,
            action: CmdAction::Read8,
            xfer: 0,
            count: count % 12 + 1,
            mode: AddrMode::Addr32,
            a: g(Bank::A, r % 8),
            b: Src::Imm(2),
            swap,
        });
    }
    body.push(alu(last.0, g(Bank::A, last.1 % 8), Src::Imm(3)));
    (body, k)
}

/// One packet on a fresh thread: stepped on the reference (each swap's cycles, then the
/// last event and the state), or started and run to its end in one call on the native
/// program (`run_packet_to_end_fast`, whose first block runs unchecked, `jit::Unchecked`;
/// on a fresh thread its start clears what `start` clears).
fn one_packet(code: &[MeInsn], fused: bool) -> (Vec<(u64, u64)>, Seen) {
    let lat = Latencies::NFP4000;
    let (mut lmem, mut shared, mut maps) = (Lmem::new(), SharedMem::new(3, 0), maps());
    let mut t = Thread::new(1);
    let packet: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(41)).collect();
    let mut mem = MemState {
        lmem: &mut lmem,
        shared: &mut shared,
        maps: &mut maps,
        lat: &lat,
    };
    let (swaps, e) = run_packet(&mut t, code, &mut mem, &packet, fused);
    (swaps, seen(e, &t, &lmem, &maps, (0, 0)))
}

/// `packet` on thread `t`: stepped on the reference (each swap's cycles, then the last
/// event), or (`fused`) started and run to its end in one call on the native program
/// (`run_packet_to_end_fast`, which prepares the program's inline lookups for `mem`'s maps),
/// compiled for `mem`'s latencies.
pub(super) fn run_packet(
    t: &mut Thread,
    code: &[MeInsn],
    mem: &mut MemState<'_>,
    packet: &[u8],
    fused: bool,
) -> (Vec<(u64, u64)>, Result<Event, ExecError>) {
    let prog = fused.then(|| FastProgram::with_latencies(code, mem.lat));
    run_packet_on(t, code, prog.as_ref(), mem, packet)
}

/// [`run_packet`] on the reference (`prog` `None`) or fused on `prog` (compiled for any
/// table).
pub(super) fn run_packet_on(
    t: &mut Thread,
    code: &[MeInsn],
    prog: Option<&FastProgram>,
    mem: &mut MemState<'_>,
    packet: &[u8],
) -> (Vec<(u64, u64)>, Result<Event, ExecError>) {
    let (mut swaps, mut segs) = (Vec::new(), Vec::new());
    let e = if let Some(prog) = prog {
        let e = t.run_packet_to_end_fast(prog, mem, packet, 10_000, None, &mut segs);
        swaps.extend(segs.iter().map(|s| (s.busy, s.wait)));
        e
    } else {
        t.start(mem.lmem, packet).unwrap();
        loop {
            match t.run_until_event(code, mem, 10_000) {
                Ok(Event::Swap {
                    busy_cycles,
                    wait_cycles,
                    ..
                }) => swaps.push((busy_cycles, wait_cycles)),
                e => break e,
            }
        }
    };
    (swaps, e)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn flags_pending_past_a_branch_are_recomputed_at_exits(
        values in prop::array::uniform8(value()),
        head in (any::<u8>(), 0u8..8, 0u8..8, any::<u8>()),
        reads in prop::collection::vec((0u8..8, any::<u8>(), any::<bool>()), 1..4),
        last in ((any::<u8>(), any::<u8>()), prop::option::of(any::<u8>())),
        mode in mode(),
    ) {
        let (body, k) = pending_body(head, reads, last);
        let code = program(values, body, k);
        agree(&code, mode, 10_000)?;
        let (got, want) = (one_packet(&code, true), one_packet(&code, false));
        prop_assert!(got == want, "fused: {got:?}\nreference: {want:?}\n{}",
            crate::target::print_program(&code));
    }
}
