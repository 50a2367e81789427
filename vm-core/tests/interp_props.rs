//! Property tests of the reference interpreter.
//!
//! 1. Robustness: random (structurally valid) programs of every kind of instruction, with
//!    jumps forwards and backwards, run on every context type under a small budget: they
//!    never panic and never hang, and the instruction count never exceeds the budget.
//! 2. Superinstructions change nothing: every random program gives the identical outcome
//!    (r0, packet, count, error) with and without them.
//! 3. The budget is exact: a successful run of N instructions also succeeds with budget N
//!    and is stopped with budget N - 1.
//! 4. ALU, byte-order, sign-extension and jump semantics match an independent, deliberately
//!    naive model written here from RFC 9669's definitions, for every operation and width on
//!    random operands.

use proptest::prelude::*;
use vm_core::interp::{RunError, RunOutcome, Vm, VmConfig};
use vm_core::isa::{
    AluOp, AtomicOp, ByteOrder, CallTarget, Insn, JmpCond, LdImm64, Operand, Size, Width,
};
use vm_core::{ProgType, Program};

fn program(ty: ProgType, insns: Vec<Insn>) -> Program {
    Program {
        name: "prop".into(),
        section: None,
        prog_type: ty,
        insns,
        maps: Vec::new(),
    }
}

fn run(p: &Program, input: &[u8], cfg: VmConfig) -> Option<Result<RunOutcome, RunError>> {
    let mut vm = Vm::new(p, cfg).ok()?;
    Some(vm.run(input))
}

// ---------------------------------------------------------------- random programs ----

/// An instruction whose control-flow target is an index into the generated list.
#[derive(Debug, Clone)]
enum Gen {
    Plain(Insn),
    Lddw(u8, u64),
    Jmp(JmpCond, Width, u8, Operand, usize),
    Ja(usize, bool),
    Local(usize),
}

fn reg() -> impl Strategy<Value = u8> {
    prop_oneof![8 => 0u8..=9, 1 => Just(10u8)]
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        reg().prop_map(Operand::Reg),
        prop_oneof![any::<i32>(), -8i32..64].prop_map(Operand::Imm)
    ]
}

fn width() -> impl Strategy<Value = Width> {
    prop_oneof![Just(Width::W32), Just(Width::W64)]
}

fn size() -> impl Strategy<Value = Size> {
    prop_oneof![Just(Size::B), Just(Size::H), Just(Size::W), Just(Size::DW)]
}

fn alu_op() -> impl Strategy<Value = AluOp> {
    prop_oneof![
        Just(AluOp::Add),
        Just(AluOp::Sub),
        Just(AluOp::Mul),
        Just(AluOp::Div),
        Just(AluOp::SDiv),
        Just(AluOp::Or),
        Just(AluOp::And),
        Just(AluOp::Lsh),
        Just(AluOp::Rsh),
        Just(AluOp::Mod),
        Just(AluOp::SMod),
        Just(AluOp::Xor),
        Just(AluOp::Mov),
        Just(AluOp::Arsh),
    ]
}

fn cond() -> impl Strategy<Value = JmpCond> {
    prop_oneof![
        Just(JmpCond::Eq),
        Just(JmpCond::Gt),
        Just(JmpCond::Ge),
        Just(JmpCond::Set),
        Just(JmpCond::Ne),
        Just(JmpCond::Sgt),
        Just(JmpCond::Sge),
        Just(JmpCond::Lt),
        Just(JmpCond::Le),
        Just(JmpCond::Slt),
        Just(JmpCond::Sle),
    ]
}

fn offset() -> impl Strategy<Value = i16> {
    prop_oneof![-520i16..64, any::<i16>()]
}

fn gen_insn() -> impl Strategy<Value = Gen> {
    let idx = || any::<usize>();
    prop_oneof![
        6 => (alu_op(), width(), reg(), operand())
            .prop_map(|(op, width, dst, src)| Gen::Plain(Insn::Alu { op, width, dst, src })),
        1 => (prop_oneof![Just(8u8), Just(16u8), Just(32u8)], reg(), reg()).prop_map(
            |(bits, dst, s)| Gen::Plain(Insn::Alu {
                op: AluOp::MovSx(bits),
                width: Width::W64,
                dst,
                src: Operand::Reg(s),
            })
        ),
        1 => (width(), reg()).prop_map(|(width, dst)| Gen::Plain(Insn::Neg { width, dst })),
        1 => (
            prop_oneof![Just(ByteOrder::ToLe), Just(ByteOrder::ToBe), Just(ByteOrder::Swap)],
            prop_oneof![Just(16u8), Just(32u8), Just(64u8)],
            reg()
        )
            .prop_map(|(order, bits, dst)| Gen::Plain(Insn::Endian { order, bits, dst })),
        3 => (size(), any::<bool>(), reg(), prop_oneof![Just(1u8), Just(10u8), reg()], offset())
            .prop_map(|(size, signed, dst, src, off)| Gen::Plain(Insn::Load {
                size,
                signed: signed && size != Size::DW,
                dst,
                src,
                off,
            })),
        3 => (size(), prop_oneof![Just(1u8), Just(10u8), reg()], operand(), offset())
            .prop_map(|(size, dst, src, off)| Gen::Plain(Insn::Store { size, dst, src, off })),
        1 => (
            prop_oneof![
                Just(AtomicOp::Add),
                Just(AtomicOp::Or),
                Just(AtomicOp::And),
                Just(AtomicOp::Xor),
                Just(AtomicOp::Xchg),
                Just(AtomicOp::CmpXchg)
            ],
            prop_oneof![Just(Size::W), Just(Size::DW)],
            any::<bool>(),
            prop_oneof![Just(10u8), reg()],
            reg(),
            prop_oneof![-16i16..0, offset()]
        )
            .prop_map(|(op, size, fetch, dst, src, off)| Gen::Plain(Insn::Atomic {
                fetch: fetch || matches!(op, AtomicOp::Xchg | AtomicOp::CmpXchg),
                op,
                size,
                dst,
                src,
                off,
            })),
        1 => (reg(), any::<u64>()).prop_map(|(d, v)| Gen::Lddw(d, v)),
        4 => (cond(), width(), reg(), operand(), idx())
            .prop_map(|(c, w, d, s, i)| Gen::Jmp(c, w, d, s, i)),
        1 => (idx(), any::<bool>()).prop_map(|(i, long)| Gen::Ja(i, long)),
        1 => idx().prop_map(Gen::Local),
        1 => prop_oneof![Just(5), Just(7), Just(8), Just(42), Just(6), Just(28), Just(1), Just(9999)]
            .prop_map(|id| Gen::Plain(Insn::Call(CallTarget::Helper(id)))),
        1 => reg().prop_map(|r| Gen::Plain(Insn::CallX { reg: r })),
        1 => (size(), -4i32..80).prop_map(|(size, imm)| Gen::Plain(Insn::LdAbs {
            size: if size == Size::DW { Size::W } else { size },
            imm,
        })),
        2 => Just(Gen::Plain(Insn::Exit)),
    ]
}

/// Instructions that mostly succeed: memory through r10 inside the frame or r1 inside a
/// 32-byte input, no writes to r10, helpers every program type may call.
fn gen_clean() -> impl Strategy<Value = Gen> {
    let dreg = || 0u8..=9;
    let sreg = || 0u8..=10;
    let op = || {
        prop_oneof![
            sreg().prop_map(Operand::Reg),
            (-8i32..64).prop_map(Operand::Imm)
        ]
    };
    prop_oneof![
        6 => (alu_op(), width(), dreg(), op())
            .prop_map(|(op, width, dst, src)| Gen::Plain(Insn::Alu { op, width, dst, src })),
        3 => (size(), any::<bool>(), dreg(), prop_oneof![
                (-512i16..=-8).prop_map(|o| (10u8, o)),
                (0i16..24).prop_map(|o| (1u8, o)),
            ])
            .prop_map(|(size, signed, dst, (src, off))| Gen::Plain(Insn::Load {
                size,
                signed: signed && size != Size::DW,
                dst,
                src,
                off,
            })),
        3 => (size(), prop_oneof![
                (-512i16..=-8).prop_map(|o| (10u8, o)),
                (0i16..24).prop_map(|o| (1u8, o)),
            ], op())
            .prop_map(|(size, (dst, off), src)| Gen::Plain(Insn::Store { size, dst, src, off })),
        1 => (dreg(), any::<u64>()).prop_map(|(d, v)| Gen::Lddw(d, v)),
        4 => (cond(), width(), dreg(), op(), any::<usize>())
            .prop_map(|(c, w, d, s, i)| Gen::Jmp(c, w, d, s, i)),
        1 => prop_oneof![Just(5), Just(7), Just(8), Just(42)]
            .prop_map(|id| Gen::Plain(Insn::Call(CallTarget::Helper(id)))),
        1 => Just(Gen::Plain(Insn::Exit)),
    ]
}

/// The sequences the interpreter fuses, with random registers, constants and targets.
fn gen_pattern() -> impl Strategy<Value = Vec<Gen>> {
    let r = || 0u8..=9;
    prop_oneof![
        (r(), r(), r(), -64i32..64, cond(), any::<usize>()).prop_map(|(d, s, z, k, c, t)| vec![
            Gen::Plain(Insn::Alu {
                op: AluOp::Mov,
                width: Width::W64,
                dst: d,
                src: Operand::Reg(s)
            }),
            Gen::Plain(Insn::Alu {
                op: AluOp::Add,
                width: Width::W64,
                dst: d,
                src: Operand::Imm(k)
            }),
            Gen::Jmp(c, Width::W64, d, Operand::Reg(z), t),
        ]),
        (
            r(),
            prop_oneof![Just(AluOp::Add), Just(AluOp::Sub), Just(AluOp::And)],
            any::<i32>(),
            cond(),
            prop_oneof![
                r().prop_map(Operand::Reg),
                (-4i32..64).prop_map(Operand::Imm)
            ],
            any::<usize>()
        )
            .prop_map(|(d, op, k, c, src, t)| vec![
                Gen::Plain(Insn::Alu {
                    op,
                    width: Width::W64,
                    dst: d,
                    src: Operand::Imm(k)
                }),
                Gen::Jmp(c, Width::W64, d, src, t),
            ]),
        (r(), size(), 0i16..24, cond(), -2i32..300, any::<usize>()).prop_map(
            |(d, size, off, c, k, t)| vec![
                Gen::Plain(Insn::Load {
                    size,
                    signed: false,
                    dst: d,
                    src: 1,
                    off
                }),
                Gen::Jmp(c, Width::W64, d, Operand::Imm(k), t),
            ]
        ),
        (
            r(),
            prop_oneof![Just((Size::H, 16u8)), Just((Size::W, 32u8))],
            0i16..24
        )
            .prop_map(|(d, (size, bits), off)| vec![
                Gen::Plain(Insn::Load {
                    size,
                    signed: false,
                    dst: d,
                    src: 1,
                    off
                }),
                Gen::Plain(Insn::Endian {
                    order: ByteOrder::ToBe,
                    bits,
                    dst: d
                }),
            ]),
    ]
}

/// A program: random instructions (`clean` ones or anything), interleaved with fusable
/// sequences.
fn gen_program() -> impl Strategy<Value = (Vec<Gen>, bool)> {
    any::<bool>().prop_flat_map(|clean| {
        let one = if clean {
            gen_clean().boxed()
        } else {
            gen_insn().boxed()
        };
        let piece = prop_oneof![3 => one.prop_map(|g| vec![g]), 1 => gen_pattern()];
        (prop::collection::vec(piece, 1..24), Just(clean))
            .prop_map(|(v, clean)| (v.into_iter().flatten().collect(), clean))
    })
}

/// Lays out the generated list as slots, resolving targets (taken modulo the length).
fn layout(gens: &[Gen], exit_at_end: bool) -> Vec<Insn> {
    let mut slot = Vec::with_capacity(gens.len() + 1);
    let mut n = 0i64;
    for g in gens {
        slot.push(n);
        n += if matches!(g, Gen::Lddw(..)) { 2 } else { 1 };
    }
    let len = gens.len();
    let rel = |from: usize, to: usize| slot[to % len] - slot[from] - 1;
    let mut out = Vec::new();
    for (i, g) in gens.iter().enumerate() {
        match *g {
            Gen::Plain(insn) => out.push(insn),
            Gen::Lddw(dst, v) => {
                out.push(Insn::LdImm64 {
                    dst,
                    value: LdImm64::Imm(v),
                });
                out.push(Insn::LdImm64Tail);
            }
            Gen::Jmp(cond, width, dst, src, to) => out.push(Insn::Jmp {
                cond,
                width,
                dst,
                src,
                off: rel(i, to) as i16,
            }),
            Gen::Ja(to, long) => out.push(Insn::Ja {
                off: rel(i, to) as i32,
                long,
            }),
            Gen::Local(to) => out.push(Insn::Call(CallTarget::Local(rel(i, to) as i32))),
        }
    }
    if exit_at_end {
        out.push(Insn::Exit);
    }
    out
}

fn prog_type() -> impl Strategy<Value = ProgType> {
    prop_oneof![
        3 => Just(ProgType::Mem),
        1 => Just(ProgType::Xdp),
        1 => Just(ProgType::SchedCls),
        1 => Just(ProgType::SocketFilter),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn random_programs_are_safe_exact_and_fusion_neutral(
        (gens, clean) in gen_program(),
        exit_at_end in any::<bool>(),
        ty in prog_type(),
        input in prop::collection::vec(any::<u8>(), 0..80),
        budget in prop_oneof![0u64..64, 64u64..3000],
    ) {
        // Clean programs address r1 as a 32-byte buffer: run them as `mem` programs.
        let ty = if clean { ProgType::Mem } else { ty };
        let p = program(ty, layout(&gens, exit_at_end));
        let mut input = input;
        if clean && input.len() < 32 {
            input.resize(32, 0x5a);
        }
        if ty != ProgType::Mem && input.len() < 14 {
            input.resize(14, 0);
        }
        let cfg = |budget, superinstructions| VmConfig {
            budget,
            superinstructions,
            ..VmConfig::default()
        };
        let fused = run(&p, &input, cfg(budget, true));
        let plain = run(&p, &input, cfg(budget, false));
        prop_assert_eq!(&fused, &plain);
        if let Some(Ok(out)) = fused {
            prop_assert!(out.insns <= budget);
            prop_assert!(out.insns >= 1);
            let again = run(&p, &input, cfg(out.insns, true));
            prop_assert_eq!(again, Some(Ok(out.clone())));
            let short = run(&p, &input, cfg(out.insns - 1, true));
            prop_assert_eq!(
                short,
                Some(Err(RunError::BudgetExceeded { budget: out.insns - 1 }))
            );
        }
    }
}

// ----------------------------------------------------------------- ALU reference ----

/// RFC 9669 §4.1, written out case by case without sharing anything with the interpreter.
#[allow(clippy::manual_checked_ops)]
fn reference_alu(op: AluOp, w: Width, a: u64, b: u64) -> u64 {
    if w == Width::W64 {
        let (sa, sb) = (a as i64, b as i64);
        match op {
            AluOp::Add => a.wrapping_add(b),
            AluOp::Sub => a.wrapping_sub(b),
            AluOp::Mul => a.wrapping_mul(b),
            AluOp::Div => {
                if b == 0 {
                    0
                } else {
                    a / b
                }
            }
            AluOp::SDiv => {
                if sb == 0 {
                    0
                } else if sa == i64::MIN && sb == -1 {
                    i64::MIN as u64
                } else {
                    (sa / sb) as u64
                }
            }
            AluOp::Mod => {
                if b == 0 {
                    a
                } else {
                    a % b
                }
            }
            AluOp::SMod => {
                if sb == 0 {
                    a
                } else if sb == -1 {
                    0
                } else {
                    (sa % sb) as u64
                }
            }
            AluOp::Or => a | b,
            AluOp::And => a & b,
            AluOp::Xor => a ^ b,
            AluOp::Lsh => a << (b % 64),
            AluOp::Rsh => a >> (b % 64),
            AluOp::Arsh => (sa >> (b % 64)) as u64,
            AluOp::Mov => b,
            AluOp::MovSx(8) => b as u8 as i8 as i64 as u64,
            AluOp::MovSx(16) => b as u16 as i16 as i64 as u64,
            AluOp::MovSx(_) => b as u32 as i32 as i64 as u64,
        }
    } else {
        let (x, y) = (a as u32, b as u32);
        let (sx, sy) = (x as i32, y as i32);
        let r: u32 = match op {
            AluOp::Add => x.wrapping_add(y),
            AluOp::Sub => x.wrapping_sub(y),
            AluOp::Mul => x.wrapping_mul(y),
            AluOp::Div => {
                if y == 0 {
                    0
                } else {
                    x / y
                }
            }
            AluOp::SDiv => {
                if sy == 0 {
                    0
                } else if sx == i32::MIN && sy == -1 {
                    i32::MIN as u32
                } else {
                    (sx / sy) as u32
                }
            }
            AluOp::Mod => {
                if y == 0 {
                    x
                } else {
                    x % y
                }
            }
            AluOp::SMod => {
                if sy == 0 {
                    x
                } else if sy == -1 {
                    0
                } else {
                    (sx % sy) as u32
                }
            }
            AluOp::Or => x | y,
            AluOp::And => x & y,
            AluOp::Xor => x ^ y,
            AluOp::Lsh => x << (y % 32),
            AluOp::Rsh => x >> (y % 32),
            AluOp::Arsh => (sx >> (y % 32)) as u32,
            AluOp::Mov => y,
            AluOp::MovSx(8) => y as u8 as i8 as i32 as u32,
            AluOp::MovSx(_) => y as u16 as i16 as i32 as u32,
        };
        r as u64
    }
}

fn reference_jump(c: JmpCond, w: Width, a: u64, b: u64) -> bool {
    let (a, b) = if w == Width::W32 {
        (a as u32 as u64, b as u32 as u64)
    } else {
        (a, b)
    };
    let (sa, sb) = if w == Width::W32 {
        (a as u32 as i32 as i64, b as u32 as i32 as i64)
    } else {
        (a as i64, b as i64)
    };
    match c {
        JmpCond::Eq => a == b,
        JmpCond::Ne => a != b,
        JmpCond::Gt => a > b,
        JmpCond::Ge => a >= b,
        JmpCond::Lt => a < b,
        JmpCond::Le => a <= b,
        JmpCond::Set => a & b != 0,
        JmpCond::Sgt => sa > sb,
        JmpCond::Sge => sa >= sb,
        JmpCond::Slt => sa < sb,
        JmpCond::Sle => sa <= sb,
    }
}

fn lddw(dst: u8, v: u64) -> [Insn; 2] {
    [
        Insn::LdImm64 {
            dst,
            value: LdImm64::Imm(v),
        },
        Insn::LdImm64Tail,
    ]
}

fn exec(insns: Vec<Insn>, superinstructions: bool) -> u64 {
    let p = program(ProgType::Mem, insns);
    let cfg = VmConfig {
        superinstructions,
        ..VmConfig::default()
    };
    match Vm::new(&p, cfg).map(|mut vm| vm.run(&[])) {
        Ok(Ok(out)) => out.retval,
        other => panic!("program failed: {other:?}"),
    }
}

fn interesting() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(0u64),
        Just(1u64),
        Just(u64::MAX),
        Just(i64::MIN as u64),
        Just(i32::MIN as u32 as u64),
        Just(u32::MAX as u64),
        0u64..70,
        (0u64..70).prop_map(|v| v.wrapping_neg()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn alu_matches_reference(
        op in prop_oneof![alu_op(), prop_oneof![Just(8u8), Just(16u8), Just(32u8)].prop_map(AluOp::MovSx)],
        w in width(),
        a in interesting(),
        b in interesting(),
        imm in any::<bool>(),
        fuse in any::<bool>(),
    ) {
        let op = match (op, w) {
            (AluOp::MovSx(32), Width::W32) => AluOp::MovSx(16),
            (o, _) => o,
        };
        let movsx = matches!(op, AluOp::MovSx(_));
        // Immediate forms take the low 32 bits of b, sign-extended (RFC 9669 §4.1).
        let (src, b_eff) = if imm && !movsx {
            let i = b as u32 as i32;
            (Operand::Imm(i), i as i64 as u64)
        } else {
            (Operand::Reg(2), b)
        };
        let mut insns = Vec::new();
        insns.extend(lddw(1, a));
        insns.extend(lddw(2, b));
        insns.push(Insn::Alu { op, width: w, dst: 1, src });
        insns.push(Insn::Alu { op: AluOp::Mov, width: Width::W64, dst: 0, src: Operand::Reg(1) });
        insns.push(Insn::Exit);
        prop_assert_eq!(exec(insns, fuse), reference_alu(op, w, a, b_eff), "{:?} {:?}", op, w);
    }

    #[test]
    fn neg_and_byte_order_match_reference(
        a in interesting(),
        bits in prop_oneof![Just(16u8), Just(32u8), Just(64u8)],
        order in prop_oneof![Just(ByteOrder::ToLe), Just(ByteOrder::ToBe), Just(ByteOrder::Swap)],
        w in width(),
    ) {
        let mut insns = lddw(0, a).to_vec();
        insns.push(Insn::Endian { order, bits, dst: 0 });
        insns.push(Insn::Exit);
        let want = match (order, bits) {
            (ByteOrder::ToLe, 16) => a & 0xffff,
            (ByteOrder::ToLe, 32) => a & 0xffff_ffff,
            (ByteOrder::ToLe, _) => a,
            (_, 16) => u16::from_be_bytes((a as u16).to_le_bytes()) as u64,
            (_, 32) => u32::from_be_bytes((a as u32).to_le_bytes()) as u64,
            _ => u64::from_be_bytes(a.to_le_bytes()),
        };
        prop_assert_eq!(exec(insns, true), want);
        let mut insns = lddw(0, a).to_vec();
        insns.push(Insn::Neg { width: w, dst: 0 });
        insns.push(Insn::Exit);
        let want = if w == Width::W64 { 0u64.wrapping_sub(a) } else { 0u32.wrapping_sub(a as u32) as u64 };
        prop_assert_eq!(exec(insns, true), want);
    }

    #[test]
    fn jumps_match_reference(
        c in cond(),
        w in width(),
        a in interesting(),
        b in interesting(),
        imm in any::<bool>(),
        fuse in any::<bool>(),
    ) {
        let (src, b_eff) = if imm {
            let i = b as u32 as i32;
            (Operand::Imm(i), i as i64 as u64)
        } else {
            (Operand::Reg(2), b)
        };
        let mut insns = Vec::new();
        insns.extend(lddw(1, a));
        insns.extend(lddw(2, b));
        insns.push(Insn::Jmp { cond: c, width: w, dst: 1, src, off: 2 });
        insns.push(Insn::Alu { op: AluOp::Mov, width: Width::W64, dst: 0, src: Operand::Imm(0) });
        insns.push(Insn::Exit);
        insns.push(Insn::Alu { op: AluOp::Mov, width: Width::W64, dst: 0, src: Operand::Imm(1) });
        insns.push(Insn::Exit);
        prop_assert_eq!(exec(insns, fuse), reference_jump(c, w, a, b_eff) as u64, "{:?} {:?}", c, w);
    }

    /// The fused forms (`x += K; if x op K2`, `x = y; x += K; if x op z`, load + compare).
    #[test]
    fn fused_sequences_match_reference(
        c in cond(),
        k in any::<i32>(),
        k2 in any::<i32>(),
        a in interesting(),
        z in interesting(),
        byte in any::<u8>(),
    ) {
        // r1 = a; r1 += k; if r1 <c> k2 goto +2
        let mut insns = lddw(1, a).to_vec();
        insns.push(Insn::Alu { op: AluOp::Add, width: Width::W64, dst: 1, src: Operand::Imm(k) });
        insns.push(Insn::Jmp { cond: c, width: Width::W64, dst: 1, src: Operand::Imm(k2), off: 2 });
        insns.push(Insn::Alu { op: AluOp::Mov, width: Width::W64, dst: 0, src: Operand::Imm(0) });
        insns.push(Insn::Exit);
        insns.push(Insn::Alu { op: AluOp::Mov, width: Width::W64, dst: 0, src: Operand::Imm(1) });
        insns.push(Insn::Exit);
        let v = a.wrapping_add(k as i64 as u64);
        prop_assert_eq!(exec(insns, true), reference_jump(c, Width::W64, v, k2 as i64 as u64) as u64);
        // r2 = a; r3 = z; r1 = r2; r1 += k; if r1 <c> r3 goto +2; r0 = r1 ...
        let mut insns = lddw(2, a).to_vec();
        insns.extend(lddw(3, z));
        insns.push(Insn::Alu { op: AluOp::Mov, width: Width::W64, dst: 1, src: Operand::Reg(2) });
        insns.push(Insn::Alu { op: AluOp::Add, width: Width::W64, dst: 1, src: Operand::Imm(k) });
        insns.push(Insn::Jmp { cond: c, width: Width::W64, dst: 1, src: Operand::Reg(3), off: 2 });
        insns.push(Insn::Alu { op: AluOp::Mov, width: Width::W64, dst: 0, src: Operand::Imm(0) });
        insns.push(Insn::Exit);
        insns.push(Insn::Alu { op: AluOp::Mov, width: Width::W64, dst: 0, src: Operand::Imm(1) });
        insns.push(Insn::Exit);
        let v = a.wrapping_add(k as i64 as u64);
        prop_assert_eq!(exec(insns, true), reference_jump(c, Width::W64, v, z) as u64);
        // stb [r10-1], byte; ldxb r1, [r10-1] is a stack op; use the mem input instead.
        let p = program(ProgType::Mem, vec![
            Insn::Load { size: Size::B, signed: false, dst: 3, src: 1, off: 0 },
            Insn::Jmp { cond: c, width: Width::W64, dst: 3, src: Operand::Imm(k2), off: 2 },
            Insn::Alu { op: AluOp::Mov, width: Width::W64, dst: 0, src: Operand::Imm(0) },
            Insn::Exit,
            Insn::Alu { op: AluOp::Mov, width: Width::W64, dst: 0, src: Operand::Imm(1) },
            Insn::Exit,
        ]);
        let out = Vm::new(&p, VmConfig::default()).map(|mut vm| vm.run(&[byte]));
        let want = reference_jump(c, Width::W64, byte as u64, k2 as i64 as u64) as u64;
        prop_assert!(matches!(out, Ok(Ok(ref o)) if o.retval == want), "{:?}", out);
    }
}
