//! Random XDP programs inside the NFP-offloadable subset (nfp-model.md §2.2–2.4), valid for
//! the verifier by construction.
//!
//! Why items instead of raw instructions: every item is self-contained (all of r0..r8 are
//! scalars at its boundaries, r9 is the bounds-checked packet pointer), so a forward jump
//! may land on any item boundary and proptest may drop any item while shrinking without
//! producing a program the verifier refuses.
//!
//! The program layout is in the sibling `assemble` module, which turns a [`Spec`] into
//! instructions.

use proptest::prelude::*;
use vm_core::isa::{AluOp, JmpCond, Operand, Size};
use vm_core::{MapDef, MapType};

/// Map value layout: bytes `[0, COUNTERS)` are atomic counters, `[COUNTERS, VALUE)` are read.
pub const COUNTERS: i16 = 8;
/// Map value bytes.
pub const VALUE: u32 = 16;
/// Array map entries (keys up to `ARRAY_ENTRIES + 1` are looked up, so some miss).
const ARRAY_ENTRIES: u32 = 4;
/// Hash map keys prefilled before the run (`0..HASH_FILLED`).
pub const HASH_FILLED: u64 = 3;

/// One binary ALU operation on registers or an immediate.
#[derive(Debug, Clone)]
pub enum Item {
    /// mov/add/sub/and/or/xor with a register or immediate.
    Alu {
        op: AluOp,
        w32: bool,
        dst: u8,
        src: Operand,
    },
    /// lsh/rsh/arsh; a register amount is masked to the width first (in place).
    Shift {
        op: AluOp,
        w32: bool,
        dst: u8,
        src: Operand,
    },
    /// neg.
    Neg { w32: bool, dst: u8 },
    /// mul with both operands masked first (to u32, or to u16 when `narrow`).
    Mul {
        w32: bool,
        dst: u8,
        src: Operand,
        narrow: bool,
    },
    /// div by a positive constant (imm, or a register holding it), dividend masked to u32
    /// (or narrower, by `mask`: 0 mov32, 1 u16, 2 u8, 3 31 bits).
    Div {
        w32: bool,
        dst: u8,
        divisor: u32,
        via_reg: Option<u8>,
        mask: u8,
    },
    /// be16/be32/be64.
    Be { bits: u8, dst: u8 },
    /// lddw of a constant.
    Lddw { dst: u8, value: u64 },
    /// Forward conditional jump over the next `skip` items.
    Jmp {
        cond: JmpCond,
        w32: bool,
        dst: u8,
        src: Operand,
        skip: u8,
    },
    /// `j<cond> dst, imm, +1; ja` over the next `skip` items (a bare `ja` would leave the
    /// skipped items statically unreachable, which the verifier refuses).
    Ja {
        cond: JmpCond,
        dst: u8,
        imm: i32,
        skip: u8,
    },
    /// Packet load at a constant offset (fraction of the checked range).
    PktLoad { size: Size, dst: u8, off: u16 },
    /// A 16-bit packet load then `be16` of it (`ntohs`; `swap_fold` bait).
    PktLoadSwap { dst: u8, off: u16 },
    /// Packet store of a register (or an immediate with `st`).
    PktStore { size: Size, src: Operand, off: u16 },
    /// Aligned stack store (slot index within the initialised area).
    StackStore { size: Size, src: u8, slot: u16 },
    /// Aligned stack load.
    StackLoad { size: Size, dst: u8, slot: u16 },
    /// Map lookup with a constant key; on hit, atomic adds and reads of the value.
    Map(MapOp),
    /// A narrow packet or stack load immediately masked (`ld_mask_fold` bait).
    /// With `guard`, a conditional jump skips the load but not the mask (another path
    /// reaches the `and` with the old register value, which a fold must not lose).
    LoadMask {
        stack: bool,
        size: Size,
        dst: u8,
        off: u16,
        mask: i32,
        w32: bool,
        guard: Option<(JmpCond, u8, i32)>,
    },
    /// `n` consecutive load/store pairs copying packet bytes (`from` to `to`, may overlap).
    Copy {
        size: Size,
        n: u8,
        from: u16,
        to: u16,
        tmp: u8,
    },
    /// `bpf_get_prandom_u32()` into r0 (r1..r5 re-initialised).
    Prandom { reinit: [i32; 5] },
    /// A bounded loop: `counter = n; do { body } while (--counter != 0)`.
    Loop {
        counter: u8,
        n: u8,
        cond: u8,
        body: Vec<Item>,
    },
    /// A bpf-to-bpf call of the program's subprogram (args r1..r5, result in r0; r1..r5
    /// re-initialised after).
    CallSub { reinit: [i32; 5] },
}

/// The map lookup item.
#[derive(Debug, Clone)]
pub struct MapOp {
    /// 0 = array, 1 = hash.
    pub map: u8,
    /// The constant key.
    pub key: u8,
    /// Atomic adds: (DW?, counter offset selector, source).
    pub adds: Vec<(bool, u8, AddSrc)>,
    /// Reads: (size, destination in r6..r8, offset selector).
    pub reads: Vec<(Size, u8, u8)>,
    /// Last read into r0 (size, offset selector), or r0 = constant.
    pub r0: Result<(Size, u8), i32>,
    /// r1..r5 after the call (they are clobbered by it).
    pub reinit: [i32; 5],
}

/// What an atomic add adds.
#[derive(Debug, Clone)]
pub enum AddSrc {
    /// A constant moved into r1 first.
    Imm(i32),
    /// One of r6..r8 (unknown to the verifier in general).
    Reg(u8),
}

/// How a register starts.
#[derive(Debug, Clone)]
pub enum Init {
    /// `mov rX, imm` (64-bit, sign-extended).
    Mov(i32),
    /// `mov32 rX, imm`.
    Mov32(i32),
    /// `lddw rX, imm64`.
    Lddw(u64),
    /// A packet load at an offset selector.
    Pkt(Size, u16),
}

/// How the program returns.
#[derive(Debug, Clone)]
pub enum Ret {
    /// A constant XDP action 0..=3.
    Const(i32),
    /// r0 as it is (full 64 bits compared).
    Raw,
    /// `and r0, 3`.
    Masked,
    /// `mov r0, rX`.
    Reg(u8),
}

/// A generated program before assembly.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Bytes the bounds check covers (>= 80).
    pub checked: u16,
    /// Initialised stack bytes (multiple of 8, >= 16).
    pub stack: u16,
    /// r0..r8 initialisers.
    pub init: Vec<Init>,
    /// The body.
    pub items: Vec<Item>,
    /// Return of the long path.
    pub ret: Ret,
    /// Return of the short path (0..=3).
    pub short_ret: i32,
    /// A firmware packet helper before everything else: (`adjust_head`?, delta).
    pub adjust: Option<(bool, i32)>,
    /// Body of the subprogram `CallSub` items call (emitted only when one does).
    pub sub: Vec<Item>,
    /// Stack bytes the subprogram spills to (multiple of 8).
    pub sub_stack: u16,
}

fn scalar() -> impl Strategy<Value = u8> {
    0u8..9
}

fn imm() -> impl Strategy<Value = i32> {
    prop_oneof![
        3 => -16i32..=16,
        2 => any::<i32>(),
        1 => prop::sample::select(vec![
            0x7fff_ffff, i32::MIN, -1, 0xff, 0x100, 0xffff, 0x1_0000, 0x7f, 0x80, -128, -129, 255, 256
        ]),
    ]
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        scalar().prop_map(Operand::Reg),
        imm().prop_map(Operand::Imm)
    ]
}

fn size() -> impl Strategy<Value = Size> {
    prop::sample::select(vec![Size::B, Size::H, Size::W, Size::DW])
}

fn cond() -> impl Strategy<Value = JmpCond> {
    prop::sample::select(vec![
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
}

fn map_op() -> impl Strategy<Value = MapOp> {
    let add_src = prop_oneof![imm().prop_map(AddSrc::Imm), (6u8..9).prop_map(AddSrc::Reg)];
    (
        0u8..2,
        0u8..(ARRAY_ENTRIES as u8 + 2),
        prop::collection::vec((any::<bool>(), any::<u8>(), add_src), 0..3),
        prop::collection::vec((size(), 6u8..9, any::<u8>()), 0..3),
        prop_oneof![(size(), any::<u8>()).prop_map(Ok), imm().prop_map(Err)],
        prop::array::uniform5(imm()),
    )
        .prop_map(|(map, key, adds, reads, r0, reinit)| MapOp {
            map,
            key,
            adds,
            reads,
            r0,
            reinit,
        })
}

fn item() -> impl Strategy<Value = Item> {
    let basic = prop::sample::select(vec![
        AluOp::Mov,
        AluOp::Add,
        AluOp::Sub,
        AluOp::And,
        AluOp::Or,
        AluOp::Xor,
    ]);
    let shift = prop::sample::select(vec![AluOp::Lsh, AluOp::Rsh, AluOp::Arsh]);
    prop_oneof![
        12 => (basic, any::<bool>(), scalar(), operand())
            .prop_map(|(op, w32, dst, src)| Item::Alu { op, w32, dst, src }),
        4 => (shift, any::<bool>(), scalar(), prop_oneof![scalar().prop_map(Operand::Reg), (0i32..64).prop_map(Operand::Imm)])
            .prop_map(|(op, w32, dst, src)| Item::Shift { op, w32, dst, src }),
        1 => (any::<bool>(), scalar()).prop_map(|(w32, dst)| Item::Neg { w32, dst }),
        3 => (any::<bool>(), scalar(), operand(), any::<bool>())
            .prop_map(|(w32, dst, src, narrow)| Item::Mul { w32, dst, src, narrow }),
        2 => (any::<bool>(), scalar(), prop_oneof![1u32..20, any::<u32>().prop_map(|d| d.max(1)), prop::sample::select(vec![1u32, 2, 3, 7, 10, 256, 1000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff])], proptest::option::of(scalar()), 0u8..4)
            .prop_map(|(w32, dst, divisor, via_reg, mask)| Item::Div { w32, dst, divisor, via_reg, mask }),
        2 => (prop::sample::select(vec![16u8, 32, 64]), scalar()).prop_map(|(bits, dst)| Item::Be { bits, dst }),
        1 => (scalar(), any::<u64>()).prop_map(|(dst, value)| Item::Lddw { dst, value }),
        6 => (cond(), any::<bool>(), scalar(), operand(), 0u8..4)
            .prop_map(|(cond, w32, dst, src, skip)| Item::Jmp { cond, w32, dst, src, skip }),
        2 => (cond(), scalar(), imm(), 0u8..3).prop_map(|(cond, dst, imm, skip)| Item::Ja { cond, dst, imm, skip }),
        4 => (size(), scalar(), any::<u16>()).prop_map(|(size, dst, off)| Item::PktLoad { size, dst, off }),
        1 => (scalar(), any::<u16>()).prop_map(|(dst, off)| Item::PktLoadSwap { dst, off }),
        3 => (size(), operand(), any::<u16>()).prop_map(|(size, src, off)| Item::PktStore { size, src, off }),
        3 => (size(), scalar(), any::<u16>()).prop_map(|(size, src, slot)| Item::StackStore { size, src, slot }),
        3 => (size(), scalar(), any::<u16>()).prop_map(|(size, dst, slot)| Item::StackLoad { size, dst, slot }),
        3 => map_op().prop_map(Item::Map),
        3 => (any::<bool>(), prop::sample::select(vec![Size::B, Size::H, Size::W]), scalar(), any::<u16>(), mask(), any::<bool>(), proptest::option::of((cond(), scalar(), imm())))
            .prop_map(|(stack, size, dst, off, mask, w32, guard)| Item::LoadMask { stack, size, dst, off, mask, w32, guard }),
        2 => (size(), 1u8..5, 0u16..40, 0u16..40, scalar())
            .prop_map(|(size, n, from, to, tmp)| Item::Copy { size, n, from, to, tmp }),
        1 => prop::array::uniform5(imm()).prop_map(|reinit| Item::Prandom { reinit }),
        2 => prop::array::uniform5(imm()).prop_map(|reinit| Item::CallSub { reinit }),
    ]
}

/// Straight-line register-only items for the subprogram body.
fn sub_item() -> impl Strategy<Value = Item> {
    let basic = prop::sample::select(vec![
        AluOp::Mov,
        AluOp::Add,
        AluOp::Sub,
        AluOp::And,
        AluOp::Or,
        AluOp::Xor,
    ]);
    prop_oneof![
        4 => (basic, any::<bool>(), scalar(), operand()).prop_map(|(op, w32, dst, src)| Item::Alu { op, w32, dst, src }),
        1 => (prop::sample::select(vec![AluOp::Lsh, AluOp::Rsh, AluOp::Arsh]), any::<bool>(), scalar(), scalar())
            .prop_map(|(op, w32, dst, r)| Item::Shift { op, w32, dst, src: Operand::Reg(r) }),
        1 => (any::<bool>(), scalar(), operand(), any::<bool>())
            .prop_map(|(w32, dst, src, narrow)| Item::Mul { w32, dst, src, narrow }),
        1 => (prop::sample::select(vec![16u8, 32, 64]), scalar()).prop_map(|(bits, dst)| Item::Be { bits, dst }),
        1 => (any::<bool>(), scalar()).prop_map(|(w32, dst)| Item::Neg { w32, dst }),
    ]
}

fn mask() -> impl Strategy<Value = i32> {
    prop_oneof![
        3 => prop::sample::select(vec![0xff, 0xffff, 0xff00, 0xffffff, 0xff0000, 0x00ff_00ff, 0x7f, 0x0f, 0xfff0, -1, 0x7fff_ffff, -256, 1]),
        1 => any::<i32>(),
    ]
}

fn loop_body_item() -> impl Strategy<Value = Item> {
    let basic = prop::sample::select(vec![
        AluOp::Mov,
        AluOp::Add,
        AluOp::Sub,
        AluOp::And,
        AluOp::Or,
        AluOp::Xor,
    ]);
    prop_oneof![
        4 => (basic, any::<bool>(), scalar(), operand()).prop_map(|(op, w32, dst, src)| Item::Alu { op, w32, dst, src }),
        1 => (prop::sample::select(vec![AluOp::Lsh, AluOp::Rsh, AluOp::Arsh]), any::<bool>(), scalar(), 0i32..64)
            .prop_map(|(op, w32, dst, i)| Item::Shift { op, w32, dst, src: Operand::Imm(i) }),
        1 => (prop::sample::select(vec![16u8, 32, 64]), scalar()).prop_map(|(bits, dst)| Item::Be { bits, dst }),
        1 => (size(), scalar(), any::<u16>()).prop_map(|(size, dst, off)| Item::PktLoad { size, dst, off }),
        1 => (size(), operand(), any::<u16>()).prop_map(|(size, src, off)| Item::PktStore { size, src, off }),
        1 => (size(), scalar(), any::<u16>()).prop_map(|(size, src, slot)| Item::StackStore { size, src, slot }),
        1 => (size(), scalar(), any::<u16>()).prop_map(|(size, dst, slot)| Item::StackLoad { size, dst, slot }),
    ]
}

/// Items including bounded loops (whose bodies are straight-line items).
fn item_or_loop() -> impl Strategy<Value = Item> {
    prop_oneof![
        30 => item(),
        1 => (scalar(), 1u8..7, 0u8..3, prop::collection::vec(loop_body_item(), 1..4))
            .prop_map(|(counter, n, cond, body)| Item::Loop { counter, n, cond, body }),
    ]
}

fn init() -> impl Strategy<Value = Init> {
    prop_oneof![
        3 => imm().prop_map(Init::Mov),
        1 => imm().prop_map(Init::Mov32),
        2 => any::<u64>().prop_map(Init::Lddw),
        4 => (size(), any::<u16>()).prop_map(|(s, o)| Init::Pkt(s, o)),
    ]
}

/// Programs of 0..`max_items` body items whose bounds check covers 80..=`reach` bytes.
pub fn spec(max_items: usize, reach: u16) -> impl Strategy<Value = Spec> {
    let ret = prop_oneof![
        3 => (0i32..4).prop_map(Ret::Const),
        2 => Just(Ret::Raw),
        1 => Just(Ret::Masked),
        1 => scalar().prop_map(Ret::Reg),
    ];
    (
        80u16..=reach.max(80),
        prop::sample::select(vec![16u16, 64, 72, 128, 256, 512]),
        prop::collection::vec(init(), 9),
        prop::collection::vec(item_or_loop(), 0..max_items),
        ret,
        0i32..4,
        prop_oneof![
            6 => Just(None),
            1 => (-80i32..=80).prop_map(|d| Some((true, d))),
            1 => (-80i32..=0).prop_map(|d| Some((false, d))),
        ],
        (
            prop::collection::vec(sub_item(), 0..8),
            prop::sample::select(vec![0u16, 8, 32, 64, 128]),
        ),
    )
        .prop_map(
            |(checked, stack, init, items, ret, short_ret, adjust, (sub, sub_stack))| Spec {
                checked,
                stack,
                init,
                items,
                ret,
                short_ret,
                adjust,
                sub,
                sub_stack,
            },
        )
}

/// The two maps every generated program declares (fd 0 array, fd 1 hash).
pub fn map_defs() -> Vec<MapDef> {
    vec![
        MapDef {
            name: "arr".into(),
            map_type: MapType::Array,
            key_size: 4,
            value_size: VALUE,
            max_entries: ARRAY_ENTRIES,
            flags: 0,
            initial_value: None,
        },
        MapDef {
            name: "hash".into(),
            map_type: MapType::Hash,
            key_size: 8,
            value_size: VALUE,
            max_entries: 8,
            flags: 0,
            initial_value: None,
        },
    ]
}

/// Which instruction forms a spec exercises (for the coverage summary).
pub fn forms(spec: &Spec) -> Vec<&'static str> {
    let mut v = Vec::new();
    match spec.adjust {
        Some((true, _)) => v.push("adjust_head"),
        Some((false, _)) => v.push("adjust_tail"),
        None => {}
    }
    for it in &spec.items {
        v.push(match it {
            Item::Alu { .. } => "alu",
            Item::Shift { .. } => "shift",
            Item::Neg { .. } => "neg",
            Item::Mul { .. } => "mul",
            Item::Div { .. } => "div",
            Item::Be { .. } => "be",
            Item::Lddw { .. } => "lddw",
            Item::Jmp { .. } => "jmp",
            Item::Ja { .. } => "ja",
            Item::PktLoad { .. } => "pkt_load",
            Item::PktLoadSwap { .. } => "pkt_load_swap",
            Item::PktStore {
                src: Operand::Imm(_),
                ..
            } => "pkt_store_imm",
            Item::PktStore { .. } => "pkt_store",
            Item::StackStore { .. } => "stack_store",
            Item::StackLoad { .. } => "stack_load",
            Item::Map(m) if m.map == 0 => "array_lookup",
            Item::Map(_) => "hash_lookup",
            Item::LoadMask { .. } => "load_mask",
            Item::Copy { .. } => "copy",
            Item::Prandom { .. } => "prandom",
            Item::Loop { .. } => "loop",
            Item::CallSub { .. } => "bpf_call",
        });
    }
    v
}
