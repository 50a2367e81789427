//! Native blocks against the reference executor on the code they now cover: local-memory
//! operands (hazard and window checks at and past their edges, stores whose dirty chunks a
//! later packet's stack zeroing depends on), `ctm` reads (inside, at the edges of and
//! outside the packet buffer) and branches decided on the host flags of the ALU op before
//! them (every condition after every ALU operation). The random code of `tests_fast`
//! rarely forms such blocks (its branch targets are mostly invalid); here every program
//! is built so that they do.

#![allow(clippy::unwrap_used)]

use super::super::thread::{Cc, slot};
use super::super::*;
use crate::target::{AddrMode, AluOp, Bank, CmdAction, Cond, Csr, Dst, ImmedWidth, MemTarget, Src};
use proptest::prelude::*;

/// What a run shows after each event: the event, registers, flags, pc, count, LM state
/// and local memory.
type Seen = (
    Result<Event, ExecError>,
    Vec<u32>,
    Cc,
    u32,
    u64,
    ([u32; 4], [u64; 4]),
    Vec<u8>,
);

/// Runs `packets` one after another on thread `index` (state kept), with the reference
/// loop (`prog` `None`) or the fast path, recording every event.
fn run(code: &[MeInsn], prog: Option<&FastProgram>, index: u8, budget: u64) -> Vec<Seen> {
    run_with(&Latencies::NFP4000, code, prog, index, budget)
}

/// [`run`] with the latencies `lat`.
fn run_with(
    lat: &Latencies,
    code: &[MeInsn],
    prog: Option<&FastProgram>,
    index: u8,
    budget: u64,
) -> Vec<Seen> {
    let (mut lmem, mut shared, mut maps) = (Lmem::new(), SharedMem::new(3, 0), MapSet::default());
    let mut t = Thread::new(index);
    let mut out = Vec::new();
    for p in 0..3u8 {
        let packet: Vec<u8> = (0..60 + p).map(|i| i.wrapping_mul(37) ^ p).collect();
        t.start(&mut lmem, &packet).unwrap();
        loop {
            let mut mem = MemState {
                lmem: &mut lmem,
                shared: &mut shared,
                maps: &mut maps,
                lat,
            };
            let e = match prog {
                Some(f) => t.run_until_event_fast(f, &mut mem, budget),
                None => t.run_until_event(code, &mut mem, budget),
            };
            let again = matches!(e, Ok(Event::Swap { .. }));
            out.push((
                e,
                t.file[..slot::REGS].to_vec(),
                t.cc,
                t.pc,
                t.insns,
                (t.lm_addr, t.lm_ready),
                lmem.bytes().to_vec(),
            ));
            if !again {
                break;
            }
        }
    }
    out
}

/// The native program (unless `NFP_NATIVE=0`) and the handlers agree with the reference.
fn agree(code: &[MeInsn], index: u8, budget: u64) -> Result<(), TestCaseError> {
    let want = run(code, None, index, budget);
    let progs = [
        ("native", FastProgram::new(code)),
        ("handlers", FastProgram::without_native(code)),
    ];
    for (what, prog) in &progs {
        let got = run(code, Some(prog), index, budget);
        prop_assert!(
            got == want,
            "{what} differs: {:?} vs {:?}\n{}",
            got.iter().map(|g| &g.0).collect::<Vec<_>>(),
            want.iter().map(|w| &w.0).collect::<Vec<_>>(),
            crate::target::print_program(code)
        );
    }
    Ok(())
}

/// [`agree`], and the fused run of one packet (which enters the unchecked copies of the
/// blocks, `x64_bound`) agrees with the reference, flags included.
fn agree_fused(code: &[MeInsn], budget: u64) -> Result<(), TestCaseError> {
    agree(code, 1, budget)?;
    let lat = Latencies::NFP4000;
    let want = fused_with(&lat, code, None);
    let got = fused_with(&lat, code, Some(&FastProgram::new(code)));
    prop_assert!(
        got == want,
        "fused: {:?} vs {:?}\n{}",
        got,
        want,
        crate::target::print_program(code)
    );
    Ok(())
}

pub(super) fn g(b: Bank, n: u8) -> Src {
    Src::Gpr(b, n)
}

/// `immed` pair loading `v` into GPR `n` (both banks).
pub(super) fn set(n: u8, v: u32) -> [MeInsn; 2] {
    let i = |imm: u16, shift, width| MeInsn::Immed {
        dst: Dst::Both(n),
        imm,
        shift,
        invert: false,
        width,
    };
    [
        i(v as u16, 0, ImmedWidth::All),
        i((v >> 16) as u16, 2, ImmedWidth::Word),
    ]
}

fn alu_op(k: u8) -> AluOp {
    super::super::fast_handlers::ALU_OPS[usize::from(k) % 11]
}

fn cond(k: u8) -> Cond {
    super::super::fast_handlers::CONDS[usize::from(k) % 13]
}

/// An operand among GPRs 0..4 of bank `b` and small immediates.
fn operand(b: Bank) -> impl Strategy<Value = Src> {
    prop_oneof![3 => (0u8..4).prop_map(move |n| g(b, n)), 1 => any::<u8>().prop_map(Src::Imm)]
}

/// Values near the edges the checks test: LM window bases near the end of LMEM and near
/// the thread's stack, packet buffer offsets near its end, and any word.
fn value() -> impl Strategy<Value = u32> {
    prop_oneof![
        0u32..64,
        4030u32..4100,
        (0u8..8).prop_map(stack_base),
        (0u8..2, prop_oneof![0u32..4100, 4000u32..4100])
            .prop_map(|(t, o)| ctm_packet_buffer(t).wrapping_add(o)),
        any::<u32>(),
    ]
}

/// Any word, or one whose flags are at an edge.
fn edge() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        Just(0u32),
        Just(0x8000_0000u32),
        Just(u32::MAX),
        Just(1)
    ]
}

/// One instruction of a block: ALU ops on GPRs 0..4, LM loads, stores and ALU ops, CSR
/// writes of a window address, `ctm` reads, `ld_field` from the transfer registers.
fn insn() -> impl Strategy<Value = MeInsn> {
    let lm = (0u8..4, 0u8..16).prop_map(|(index, off)| Src::Lm { index, off });
    let lm_dst = (0u8..4, 0u8..16).prop_map(|(index, off)| Dst::Lm { index, off });
    let dst = (0u8..4).prop_map(Dst::Both);
    prop_oneof![
        3 => (any::<u8>(), dst.clone(), operand(Bank::A), operand(Bank::B))
            .prop_map(|(k, dst, a, b)| MeInsn::Alu { op: alu_op(k), dst, a, b }),
        2 => (dst.clone(), lm.clone()).prop_map(|(dst, b)| MeInsn::Alu {
            op: AluOp::PassB,
            dst,
            a: Src::None,
            b,
        }),
        2 => (any::<u8>(), dst, operand(Bank::A), lm, any::<bool>())
            .prop_map(|(k, dst, x, l, swap)| {
                let (a, b) = if swap { (l, x) } else { (x, l) };
                MeInsn::Alu { op: alu_op(k), dst, a, b }
            }),
        2 => (any::<u8>(), lm_dst, operand(Bank::A), operand(Bank::B))
            .prop_map(|(k, dst, a, b)| MeInsn::Alu { op: alu_op(k), dst, a, b }),
        1 => (0u8..4, 0u8..4).prop_map(|(n, r)| MeInsn::CsrWrite {
            csr: Csr::ActLmAddr(n),
            src: g(Bank::A, r),
        }),
        1 => (any::<bool>(), 0u8..12, 1u8..40, any::<bool>(), 0u8..4, any::<bool>()).prop_map(
            |(words, xfer, count, m40, r, swap)| MeInsn::Cmd {
                target: MemTarget::Ctm,
                action: if words { CmdAction::Read32 } else { CmdAction::Read8 },
                xfer,
                count: if words { count % 9 } else { count },
                mode: if m40 { AddrMode::Addr40 } else { AddrMode::Addr32 },
                a: g(Bank::A, r),
                b: Src::Imm(count),
                swap,
            }
        ),
        1 => (0u8..4, 0u8..8, 0u8..16, 0u8..4).prop_map(|(n, x, byte_mask, shift_bytes)| {
            MeInsn::LdField {
                dst: Dst::Both(n),
                byte_mask,
                b: Src::Xfer(x),
                shift_bytes,
                zero_fill: x % 2 == 0,
            }
        }),
        1 => Just(MeInsn::Nop),
    ]
}

/// Sets GPRs `0..N` to `values`, runs `body`, then branches on `cond(k)` (without defer
/// slots) over one instruction to the exit, so both paths are blocks.
pub(super) fn program<const N: usize>(values: [u32; N], body: Vec<MeInsn>, k: u8) -> Vec<MeInsn> {
    chained(values, vec![(body, k)])
}

/// Sets GPRs `0..N` to `values`, then each of `bodies` followed by a branch on `cond(k)`
/// over one instruction to the next body: chains of blocks that fall through into each
/// other (their counts behind by a lag, `x64_lag`) and taken paths into the middle of
/// them, with LM checks, CSR writes, reads and exits at every lag.
fn chained<const N: usize>(values: [u32; N], bodies: Vec<(Vec<MeInsn>, u8)>) -> Vec<MeInsn> {
    let mut c: Vec<MeInsn> = (0u8..).zip(values).flat_map(|(n, v)| set(n, v)).collect();
    for (body, k) in bodies {
        c.extend(body);
        let over = c.len() as u16 + 2;
        c.push(MeInsn::Br {
            cond: cond(k),
            target: over,
            defer: 0,
        });
        c.push(MeInsn::Alu {
            op: AluOp::Add,
            dst: Dst::Both(0),
            a: g(Bank::A, 0),
            b: Src::Imm(1),
        });
    }
    c.push(MeInsn::Exit);
    c
}

/// The native exit (`x64_branch::native_exit`) adds the exit's issue cycles beyond its
/// count as the handler does, `saturating_sub(1)` included (exit latencies 0 and 1 add
/// none): the busy cycles of `Done` agree with the reference's for every latency, reached
/// by a taken branch and by a fall-through, checked and unchecked.
#[test]
fn native_exit_counts_its_latency() {
    for k in 0..16 {
        let code = program([1, 2, 3, 4], Vec::new(), k);
        for exit in [0, 1, 2, 4, 1000, 0x8000_0000, u32::MAX] {
            let lat = Latencies {
                exit,
                ..Latencies::NFP4000
            };
            let native = FastProgram::with_latencies(&code, &lat);
            for budget in [3, 10_000] {
                let want = run_with(&lat, &code, None, 1, budget);
                let got = run_with(&lat, &code, Some(&native), 1, budget);
                assert!(
                    got == want,
                    "exit latency {exit}, cond {k}: {got:?} vs {want:?}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Chains of branch blocks with LM operands, CSR writes and reads between them (see
    /// [`chained`]), with ample and with tiny budgets.
    #[test]
    fn chained_blocks_equal_the_reference(
        values in [value(), value(), value(), value()],
        bodies in prop::collection::vec(
            (prop::collection::vec(insn(), 0..5), any::<u8>()),
            1..5,
        ),
        index in 0u8..2,
        budget in prop_oneof![Just(10_000u64), 1u64..60],
    ) {
        agree(&chained(values, bodies), index, budget)?;
    }

    /// Blocks with LM operands, CSR writes, `ctm` reads and a final branch, from registers
    /// near the checks' edges, over three packets, with ample and with tiny budgets.
    #[test]
    fn native_blocks_equal_the_reference(
        values in [value(), value(), value(), value()],
        body in prop::collection::vec(insn(), 0..12),
        (k, index) in (any::<u8>(), 0u8..2),
        budget in prop_oneof![Just(10_000u64), 1u64..40],
    ) {
        agree(&program(values, body, k), index, budget)?;
    }

    /// Every condition after every ALU operation (the branch decided on its host flags),
    /// with carries chained from an earlier operation.
    #[test]
    fn branches_on_host_flags_equal_the_reference(
        values in [edge(), edge(), edge(), edge()],
        (k1, k2, k) in (any::<u8>(), any::<u8>(), any::<u8>()),
        (a1, b1) in (operand(Bank::A), operand(Bank::B)),
        (a2, b2) in (operand(Bank::A), operand(Bank::B)),
    ) {
        let body = vec![
            MeInsn::Alu { op: alu_op(k1), dst: Dst::Both(1), a: a1, b: b1 },
            MeInsn::Alu { op: alu_op(k2), dst: Dst::None, a: a2, b: b2 },
        ];
        agree(&program(values, body, k), 0, 10_000)?;
    }
}

/// A field into GPR `n` (an ALU op or an `ld_field` from the transfer registers, by `k`).
fn field(n: u8) -> impl Strategy<Value = MeInsn> {
    prop_oneof![
        (any::<u8>(), operand(Bank::A), operand(Bank::B)).prop_map(move |(k, a, b)| {
            MeInsn::Alu {
                op: alu_op(k),
                dst: Dst::Both(n),
                a,
                b,
            }
        }),
        (0u8..8, 0u8..16, 0u8..4, any::<bool>()).prop_map(move |(x, byte_mask, s, z)| {
            MeInsn::LdField {
                dst: Dst::Both(n),
                byte_mask,
                b: Src::Xfer(x),
                shift_bytes: s,
                zero_fill: z,
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Header parsing: a field into a register, a compare of it, a branch away (to code
    /// that reads every register), and the next field into the same register, whose
    /// stores then move onto the taken path (`x64_sink`).
    #[test]
    fn fields_compared_then_overwritten_equal_the_reference(
        values in [edge(), edge(), edge(), edge()],
        fields in prop::collection::vec(
            (0u8..4).prop_flat_map(|n| (Just(n), field(n), field(n), any::<u8>(), operand(Bank::B), any::<u8>())),
            1..5,
        ),
    ) {
        let mut c: Vec<MeInsn> = (0u8..).zip(values).flat_map(|(n, v)| set(n, v)).collect();
        // The taken paths' target, patched in below.
        let mut branches = Vec::new();
        for (n, f, g2, k, b, kc) in fields {
            c.push(f);
            c.push(MeInsn::Alu { op: alu_op(kc), dst: Dst::None, a: g(Bank::A, n), b });
            branches.push(c.len());
            c.push(MeInsn::Br { cond: cond(k), target: 0, defer: 0 });
            c.push(g2);
        }
        c.push(MeInsn::Exit);
        let taken = c.len() as u16;
        for i in branches {
            if let MeInsn::Br { target, .. } = &mut c[i] {
                *target = taken;
            }
        }
        // Each read behind a branch, so that the blocks' entry checks are worth their
        // unchecked copies (`x64_bound::worth`), which alone move stores.
        for r in 0..4 {
            c.push(MeInsn::Alu {
                op: AluOp::Xor,
                dst: Dst::Both(0),
                a: g(Bank::A, 0),
                b: g(Bank::B, r),
            });
            let over = c.len() as u16 + 2;
            c.push(MeInsn::Br {
                cond: Cond::Always,
                target: over,
                defer: 0,
            });
            c.push(MeInsn::Nop);
        }
        c.push(MeInsn::Exit);
        agree(&c, 0, 10_000)?;
    }
}

/// A latency table: each cost 0, small, the default's, or (for the costs that only add to
/// `Cx::extra`: the branch penalty, the exit, the CSR delay) beyond an `i32` immediate
/// (`x64::add_extra`'s register path). The memory latencies stay small: their sum with
/// the per-word cycles is a `u32` that the handlers compute with overflow checks in the
/// test profile.
fn table() -> impl Strategy<Value = Latencies> {
    let small = || prop_oneof![Just(0u32), Just(1), 0u32..300];
    let wide = || {
        prop_oneof![
            Just(0u32),
            Just(1),
            0u32..300,
            Just(0x8000_0000),
            Just(u32::MAX)
        ]
    };
    (
        (small(), small(), small(), small(), 0u32..4),
        (wide(), wide(), wide()),
    )
        .prop_map(
            |((cls, ctm, imem, emem, per_word), (csr, penalty, exit))| Latencies {
                cls,
                ctm,
                imem,
                emem,
                per_word,
                csr_write_delay: csr,
                branch_taken_penalty: penalty,
                exit,
                ..Latencies::NFP4000
            },
        )
}

/// What [`fused_with`] shows: the swaps' cycles, the event, the registers, the flags and
/// the count.
type FusedSeen = (Vec<(u64, u64)>, Result<Event, ExecError>, Vec<u32>, Cc, u64);

/// Runs one packet of `code` on a fresh thread with the table `lat`: fused
/// (`run_packet_to_end_fast` on `prog`), or stepped on the reference (`prog` `None`).
fn fused_with(lat: &Latencies, code: &[MeInsn], prog: Option<&FastProgram>) -> FusedSeen {
    let (mut lmem, mut shared, mut maps) = (Lmem::new(), SharedMem::new(3, 0), MapSet::default());
    let mut t = Thread::new(1);
    let packet: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(29)).collect();
    let mut mem = MemState {
        lmem: &mut lmem,
        shared: &mut shared,
        maps: &mut maps,
        lat,
    };
    let (swaps, e) = super::tests_calls::run_packet_on(&mut t, code, prog, &mut mem, &packet);
    (swaps, e, t.file[..slot::REGS].to_vec(), t.cc, t.insns)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The native code has the costs of the table it is compiled for as constants
    /// (session 19): compiled for a table `a`, runs with `a` (native) and with another
    /// table `b` (kept off the native code, `FastProgram::native_for`) agree with the
    /// reference under each, stepped and fused; zero latencies included.
    #[test]
    fn native_code_for_one_table_agrees_under_any(
        values in [value(), value(), value(), value()],
        body in prop::collection::vec(insn(), 0..12),
        k in any::<u8>(),
        (a, b) in (table(), table()),
        budget in prop_oneof![Just(10_000u64), 1u64..40],
    ) {
        let code = program(values, body, k);
        let prog = FastProgram::with_latencies(&code, &a);
        prop_assert!(prog.native_for(&a) && prog.native_for(&a.clone()));
        prop_assert_eq!(prog.native_for(&b), a == b || prog.native_blocks() == 0);
        for lat in [&a, &b] {
            let want = run_with(lat, &code, None, 1, budget);
            let got = run_with(lat, &code, Some(&prog), 1, budget);
            prop_assert!(got == want, "stepped, {:?}\n{}", lat, crate::target::print_program(&code));
            let want = fused_with(lat, &code, None);
            let got = fused_with(lat, &code, Some(&prog));
            prop_assert!(got == want, "fused, {:?}: {:?} vs {:?}\n{}", lat, got, want,
                crate::target::print_program(&code));
        }
    }
}

/// A subtract that only sets flags (`alu[--, A, -, B]`), with A read from memory and B in
/// eax (the step before computed it) or a constant, compiles to a host `cmp`
/// (`x64::compare_at`): every condition branches on its host flags, and the taken path
/// (to the exit, where every flag is seen) recomputes its result flag; with an `immed`
/// between the compare and the branch (`x64_branch::sink_at` sinks past it), also one to
/// A's register (then no `cmp`).
#[test]
fn compares_without_a_result_equal_the_reference() {
    let edges = [0u32, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX, 0x1234_5678];
    let sub = |a: Src, b: Src| MeInsn::Alu {
        op: AluOp::Sub,
        dst: Dst::None,
        a,
        b,
    };
    // One `immed` (a pair's second half would end the sinking, `sink_at`).
    let immed = |n: u8| MeInsn::Immed {
        dst: Dst::Both(n),
        imm: 5,
        shift: 0,
        invert: false,
        width: ImmedWidth::All,
    };
    for k in 0..13 {
        for (i, &x) in edges.iter().enumerate() {
            let y = edges[(i + 2) % edges.len()];
            let bodies = [
                // B in eax: computed by the step before.
                vec![
                    MeInsn::Alu {
                        op: AluOp::PassB,
                        dst: Dst::Both(1),
                        a: Src::None,
                        b: g(Bank::B, 3),
                    },
                    sub(g(Bank::A, 2), g(Bank::B, 1)),
                ],
                // B a constant, A not in eax.
                vec![sub(g(Bank::A, 2), Src::Imm(7))],
                vec![sub(g(Bank::A, 2), Src::Imm(0))],
                // An `immed` after the compare, to another register and to A's.
                vec![sub(g(Bank::A, 2), Src::Imm(7)), immed(0)],
                vec![sub(g(Bank::A, 2), Src::Imm(7)), immed(2)],
                // A shift by its result (fused, `Step::ShfInd`): then no `cmp`.
                vec![
                    sub(g(Bank::A, 2), Src::Imm(7)),
                    MeInsn::Shf {
                        kind: crate::target::ShiftKind::Left,
                        dst: Dst::Both(3),
                        a: Src::None,
                        b: g(Bank::B, 1),
                        amount: crate::target::ShiftAmount::Indirect,
                    },
                ],
            ];
            for body in bodies {
                let code = program([x, y, x ^ 0x8000_0000, y.wrapping_add(7)], body, k);
                for budget in [10_000, 5] {
                    if let Err(e) = agree_fused(&code, budget) {
                        panic!("{e}");
                    }
                }
            }
        }
    }
}

/// Two `ld_field`s of single bytes of one transfer register into one register, the first
/// clearing it and the second keeping it (a big-endian half where the bytes are adjacent
/// and swapped: `x64_ld::swap_pair`), for every byte, rotate and order, from packet bytes
/// a `ctm` read of the packet put in the transfer registers; the register then compared (from eax) with
/// one read from memory.
#[test]
fn byte_pairs_loaded_by_ld_field_equal_the_reference() {
    let ld = |n: u8, x: u8, byte: u8, shift_bytes: u8, zero_fill: bool| MeInsn::LdField {
        dst: Dst::Both(n),
        byte_mask: 1 << byte,
        b: Src::Xfer(x),
        shift_bytes,
        zero_fill,
    };
    let read = MeInsn::Cmd {
        target: MemTarget::Ctm,
        action: CmdAction::Read8,
        xfer: 0,
        count: 8,
        mode: AddrMode::Addr32,
        a: g(Bank::A, 0),
        b: Src::Imm(4),
        swap: false,
    };
    let mut swapped = 0;
    for (m1, s1, m2, s2) in (0..64u8).map(|i| (i & 3, (i >> 2) & 3, (i >> 4) & 3, 0)) {
        for s2 in [s2, (s1 + 2) % 4, (s1 + 1) % 4] {
            let body = vec![
                read,
                ld(1, 1, m1, s1, true),
                ld(1, 1, m2, s2, false),
                MeInsn::Alu {
                    op: AluOp::Sub,
                    dst: Dst::None,
                    a: g(Bank::A, 2),
                    b: g(Bank::B, 1),
                },
            ];
            let rot = |s: u8| (8 * s) % 32;
            let (mk1, mk2) = (0xffu32 << (8 * m1), 0xffu32 << (8 * m2));
            if super::x64_ld::swap_pair((rot(s1), mk1, 0), (rot(s2), mk2, !mk2)).is_some() {
                swapped += 1;
            }
            let at = ctm_packet_buffer(1) + PKT_HEADROOM;
            let code = program([at, 3, 0x0201, 0x300], body, m1 + s2);
            if let Err(e) = agree_fused(&code, 10_000) {
                panic!("{e}");
            }
        }
    }
    assert!(swapped >= 6, "{swapped}");
}
