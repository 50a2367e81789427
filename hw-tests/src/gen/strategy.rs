//! proptest strategies for [`Recipe`]s and test cases.
//!
//! Values are biased towards the edges the semantics care about (0, ±1, the 8/16/32/64-bit
//! limits, powers of two) because uniformly random 32/64-bit operands almost never hit
//! `INT_MIN / -1`, a zero divisor or a shift by the width minus one.

use std::ops::RangeInclusive;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use vm_core::isa::{AluOp, AtomicOp, ByteOrder, JmpCond, Size, Width};

use super::recipe::{Key, MapSel, MemOp, Recipe, RegInit, Simple, Src, Stmt, Sub, XdpOp};

/// Size limits of generated programs.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Statements in the main body.
    pub main_len: RangeInclusive<usize>,
    /// Most statements in a nested body (if / loop / packet / map value).
    pub body_len: usize,
    /// Most subprograms.
    pub max_subs: usize,
    /// Most statements in a subprogram body.
    pub sub_len: usize,
    /// Nesting depth of blocks inside the main body.
    pub depth: u32,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            main_len: 1..=60,
            body_len: 6,
            max_subs: 2,
            sub_len: 16,
            depth: 3,
        }
    }
}

/// One differential test case: a recipe and the packet it runs on (14..=200 bytes).
pub fn case_strategy(cfg: &GenConfig) -> impl Strategy<Value = (Recipe, Vec<u8>)> + use<> {
    (recipe_strategy(cfg), vec(any::<u8>(), 14..=200))
}

/// Whole programs.
pub fn recipe_strategy(cfg: &GenConfig) -> impl Strategy<Value = Recipe> + use<> {
    let sub = (
        0u8..=5,
        vec(
            stmt(cfg, cfg.depth.saturating_sub(1)),
            1..=cfg.sub_len.max(1),
        ),
        reg(),
    )
        .prop_map(|(params, body, ret)| Sub { params, body, ret });
    (
        vec(reg_init(), 10),
        vec(imm32(), 8),
        vec(stmt(cfg, cfg.depth), cfg.main_len.clone()),
        vec(sub, 0..=cfg.max_subs),
        reg(),
    )
        .prop_map(|(init, stack_init, main, subs, ret)| Recipe {
            init,
            stack_init,
            main,
            subs,
            ret,
        })
}

fn reg() -> BoxedStrategy<u8> {
    (0u8..10).boxed()
}

fn imm32() -> BoxedStrategy<i32> {
    prop_oneof![
        4 => -16i32..=16,
        3 => any::<i32>(),
        3 => select(vec![
            i32::MIN, i32::MAX, -1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, -0x8000, 0xffff,
            0x1_0000, -0x1_0000, 0x7fff_ffff, -0x7fff_ffff, 31, 32, 63, 64,
        ]),
        1 => (0u32..32).prop_map(|s| 1i32.wrapping_shl(s)),
    ]
    .boxed()
}

fn imm64() -> BoxedStrategy<u64> {
    prop_oneof![
        3 => any::<u64>(),
        2 => select(vec![
            0u64, 1, u64::MAX, 1 << 63, (1 << 63) - 1, 0xffff_ffff, 0x1_0000_0000, 0x8000_0000,
            0xffff_ffff_8000_0000, 0x7fff_ffff, 0xffff, 0xff,
        ]),
        1 => (0u64..64).prop_map(|s| 1u64 << s),
        1 => any::<i16>().prop_map(|v| v as i64 as u64),
    ]
    .boxed()
}

fn width() -> BoxedStrategy<Width> {
    select(vec![Width::W32, Width::W64]).boxed()
}

fn src() -> BoxedStrategy<Src> {
    prop_oneof![3 => reg().prop_map(Src::Reg), 2 => imm32().prop_map(Src::Imm)].boxed()
}

fn size() -> BoxedStrategy<Size> {
    select(vec![Size::B, Size::H, Size::W, Size::DW]).boxed()
}

fn simple() -> BoxedStrategy<Simple> {
    let ops = vec![
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::SDiv,
        AluOp::Or,
        AluOp::And,
        AluOp::Lsh,
        AluOp::Rsh,
        AluOp::Mod,
        AluOp::SMod,
        AluOp::Xor,
        AluOp::Mov,
        AluOp::Arsh,
    ];
    prop_oneof![
        12 => (select(ops), width(), reg(), src())
            .prop_map(|(op, width, dst, src)| Simple::Alu { op, width, dst, src }),
        2 => (width(), select(vec![8u8, 16, 32]), reg(), reg())
            .prop_map(|(width, bits, dst, src)| Simple::MovSx { width, bits, dst, src }),
        1 => (width(), reg()).prop_map(|(width, dst)| Simple::Neg { width, dst }),
        2 => (
            select(vec![ByteOrder::ToLe, ByteOrder::ToBe, ByteOrder::Swap]),
            select(vec![16u8, 32, 64]),
            reg()
        )
            .prop_map(|(order, bits, dst)| Simple::Endian { order, bits, dst }),
        1 => (reg(), imm64()).prop_map(|(dst, value)| Simple::LdImm64 { dst, value }),
    ]
    .boxed()
}

fn mem_op() -> BoxedStrategy<MemOp> {
    let atomics = vec![
        AtomicOp::Add,
        AtomicOp::Or,
        AtomicOp::And,
        AtomicOp::Xor,
        AtomicOp::Xchg,
        AtomicOp::CmpXchg,
    ];
    prop_oneof![
        3 => (size(), any::<bool>(), reg(), any::<u16>())
            .prop_map(|(size, signed, dst, off)| MemOp::Load { size, signed, dst, off }),
        3 => (size(), src(), any::<u16>()).prop_map(|(size, src, off)| MemOp::Store { size, src, off }),
        2 => (any::<bool>(), size(), any::<bool>(), reg(), reg())
            .prop_map(|(store, size, signed, reg, idx)| MemOp::Indexed { store, size, signed, reg, idx }),
        2 => (select(atomics), select(vec![Size::W, Size::DW]), any::<bool>(), reg(), any::<u16>())
            .prop_map(|(op, size, fetch, src, off)| MemOp::Atomic { op, size, fetch, src, off }),
    ]
    .boxed()
}

fn cond() -> BoxedStrategy<JmpCond> {
    select(vec![
        JmpCond::Eq,
        JmpCond::Gt,
        JmpCond::Ge,
        JmpCond::Set,
        JmpCond::Ne,
        JmpCond::Sgt,
        JmpCond::Sge,
        JmpCond::Lt,
        JmpCond::Le,
        JmpCond::Slt,
        JmpCond::Sle,
    ])
    .boxed()
}

fn key() -> BoxedStrategy<Key> {
    prop_oneof![
        4 => (0u32..5).prop_map(Key::Imm),
        1 => any::<u32>().prop_map(Key::Imm),
        4 => (reg(), select(vec![0u32, 1, 3, 3, 7])).prop_map(|(reg, mask)| Key::Reg { reg, mask }),
    ]
    .boxed()
}

fn map_sel() -> BoxedStrategy<MapSel> {
    select(vec![MapSel::Array, MapSel::Hash]).boxed()
}

fn if_stmt(body: BoxedStrategy<Stmt>, len: usize) -> BoxedStrategy<Stmt> {
    (
        cond(),
        width(),
        reg(),
        src(),
        vec(body.clone(), 0..=len),
        option::weighted(0.3, vec(body, 0..=len)),
        any::<bool>(),
    )
        .prop_map(|(cond, width, dst, src, then, els, long_ja)| Stmt::If {
            cond,
            width,
            dst,
            src,
            then,
            els,
            long_ja,
        })
        .boxed()
}

/// Statements allowed where a pointer is live (packet and map-value bodies): no calls.
fn pointer_stmt(cfg: &GenConfig, depth: u32) -> BoxedStrategy<Stmt> {
    let leaf = prop_oneof![
        5 => simple().prop_map(Stmt::Simple),
        5 => mem_op().prop_map(Stmt::Mem),
    ]
    .boxed();
    if depth == 0 {
        return leaf;
    }
    prop_oneof![
        8 => leaf,
        1 => (any::<bool>(), reg())
            .prop_map(|(rx_queue, dst)| Stmt::Xdp(XdpOp::Field { rx_queue, dst })),
        2 => if_stmt(pointer_stmt(cfg, depth - 1), cfg.body_len),
    ]
    .boxed()
}

/// Any statement, with blocks nested at most `depth` deep.
fn stmt(cfg: &GenConfig, depth: u32) -> BoxedStrategy<Stmt> {
    let helpers = prop_oneof![
        3 => (map_sel(), key(), vec(src(), 4), any::<u8>())
            .prop_map(|(map, key, value, flags)| Stmt::MapUpdate { map, key, value, flags }),
        1 => (map_sel(), key()).prop_map(|(map, key)| Stmt::MapDelete { map, key }),
        1 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), reg()).prop_map(
            |(from, from_words, to, to_words, seed)| Stmt::CsumDiff { from, from_words, to, to_words, seed }
        ),
        2 => any::<u8>().prop_map(|sub| Stmt::Call { sub }),
        3 => xdp_op().prop_map(Stmt::Xdp),
    ]
    .boxed();
    let leaf = prop_oneof![
        12 => simple().prop_map(Stmt::Simple),
        5 => mem_op().prop_map(Stmt::Mem),
        4 => helpers,
    ]
    .boxed();
    if depth == 0 {
        return leaf;
    }
    let inner = stmt(cfg, depth - 1);
    let ptr_body = vec(pointer_stmt(cfg, 1), 0..=cfg.body_len);
    let packet_len = prop_oneof![3 => 0u8..16, 1 => any::<u8>()];
    prop_oneof![
        19 => leaf,
        3 => if_stmt(inner.clone(), cfg.body_len),
        1 => (any::<u8>(), reg(), vec(inner, 0..=cfg.body_len))
            .prop_map(|(count, counter, body)| Stmt::Loop { count, counter, body }),
        2 => (packet_len, [reg(), reg(), reg()], ptr_body.clone())
            .prop_map(|(len, regs, body)| Stmt::Packet { len, regs, body }),
        2 => (map_sel(), key(), reg(), ptr_body)
            .prop_map(|(map, key, ptr, body)| Stmt::MapValue { map, key, ptr, body }),
    ]
    .boxed()
}

fn delta() -> BoxedStrategy<i32> {
    prop_oneof![
        4 => -40i32..=40,
        2 => select(vec![
            -256, -255, -252, -64, -14, 14, 64, 100, 1000, 2000, 3000, 3400, 3500, 3600, 3700,
            3800, 3900, 4000, 4096,
        ]),
        1 => any::<i16>().prop_map(i32::from),
        1 => any::<i32>(),
    ]
    .boxed()
}

fn xdp_op() -> BoxedStrategy<XdpOp> {
    let off = prop_oneof![3 => (0i32..80).prop_map(Src::Imm), 1 => src()];
    prop_oneof![
        2 => delta().prop_map(XdpOp::AdjustHead),
        2 => delta().prop_map(XdpOp::AdjustMeta),
        2 => delta().prop_map(XdpOp::AdjustTail),
        2 => (off.clone(), any::<u8>(), any::<u8>())
            .prop_map(|(off, word, len)| XdpOp::LoadBytes { off, word, len }),
        2 => (off, any::<u8>(), any::<u8>())
            .prop_map(|(off, word, len)| XdpOp::StoreBytes { off, word, len }),
        1 => Just(XdpOp::BuffLen),
        2 => (any::<bool>(), reg()).prop_map(|(rx_queue, dst)| XdpOp::Field { rx_queue, dst }),
    ]
    .boxed()
}

fn reg_init() -> BoxedStrategy<RegInit> {
    prop_oneof![
        3 => imm32().prop_map(RegInit::Imm),
        1 => imm32().prop_map(RegInit::Imm32),
        2 => imm64().prop_map(RegInit::Imm64),
        3 => (size(), any::<bool>(), 0u8..14, imm32())
            .prop_map(|(size, signed, off, fallback)| RegInit::Packet { size, signed, off, fallback }),
    ]
    .boxed()
}
