//! Random XDP programs inside the NFP-offloadable subset (nfp-model.md §2.2–2.4), valid for
//! the verifier by construction.
//!
//! Why items instead of raw instructions: every item is self-contained (all of r0..r8 are
//! scalars at its boundaries, r9 is the bounds-checked packet pointer), so a forward jump
//! may land on any item boundary and proptest may drop any item while shrinking without
//! producing a program the verifier refuses.
//!
//! Layout of a program:
//! - prologue: r9 = data, `if data + N > data_end goto short`, r0..r8 initialised (constants,
//!   `lddw`, packet loads), the stack area `[fp - S, fp)` filled with `stxdw`;
//! - the items;
//! - epilogue: r0..r8 stored into packet bytes 0..72 (so every register is compared), then
//!   the return value (0..=3 or a raw register);
//! - `short:` a constant return for packets shorter than N.

use proptest::prelude::*;
use vm_core::isa::{AluOp, AtomicOp, ByteOrder, CallTarget, Insn, JmpCond, LdImm64, Operand};
use vm_core::isa::{Size, Width};
use vm_core::{MapDef, MapType, ProgType, Program};

/// Packet pointer register.
const PKT: u8 = 9;
/// Map value layout: bytes `[0, COUNTERS)` are atomic counters, `[COUNTERS, VALUE)` are read.
const COUNTERS: i16 = 8;
const VALUE: u32 = 16;
/// Array map entries (keys up to `ARRAY_ENTRIES + 1` are looked up, so some miss).
const ARRAY_ENTRIES: u32 = 4;
/// Hash map keys prefilled before the run (`0..HASH_FILLED`).
pub const HASH_FILLED: u64 = 3;

/// One binary ALU operation on registers or an immediate.
#[derive(Debug, Clone)]
pub enum Item {
    /// mov/add/sub/and/or/xor with a register or immediate.
    Alu { op: AluOp, w32: bool, dst: u8, src: Operand },
    /// lsh/rsh/arsh; a register amount is masked to the width first (in place).
    Shift { op: AluOp, w32: bool, dst: u8, src: Operand },
    /// neg.
    Neg { w32: bool, dst: u8 },
    /// mul with both operands masked first (to u32, or to u16 when `narrow`).
    Mul { w32: bool, dst: u8, src: Operand, narrow: bool },
    /// div by a positive constant (imm, or a register holding it), dividend masked to u32
    /// (or narrower, by `mask`: 0 mov32, 1 u16, 2 u8, 3 31 bits).
    Div { w32: bool, dst: u8, divisor: u32, via_reg: Option<u8>, mask: u8 },
    /// be16/be32/be64.
    Be { bits: u8, dst: u8 },
    /// lddw of a constant.
    Lddw { dst: u8, value: u64 },
    /// Forward conditional jump over the next `skip` items.
    Jmp { cond: JmpCond, w32: bool, dst: u8, src: Operand, skip: u8 },
    /// `j<cond> dst, imm, +1; ja` over the next `skip` items (a bare `ja` would leave the
    /// skipped items statically unreachable, which the verifier refuses).
    Ja { cond: JmpCond, dst: u8, imm: i32, skip: u8 },
    /// Packet load at a constant offset (fraction of the checked range).
    PktLoad { size: Size, dst: u8, off: u16 },
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
    LoadMask { stack: bool, size: Size, dst: u8, off: u16, mask: i32, w32: bool, guard: Option<(JmpCond, u8, i32)> },
    /// `n` consecutive load/store pairs copying packet bytes (`from` to `to`, may overlap).
    Copy { size: Size, n: u8, from: u16, to: u16, tmp: u8 },
    /// `bpf_get_prandom_u32()` into r0 (r1..r5 re-initialised).
    Prandom { reinit: [i32; 5] },
    /// A bounded loop: `counter = n; do { body } while (--counter != 0)`.
    Loop { counter: u8, n: u8, cond: u8, body: Vec<Item> },
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
    prop_oneof![scalar().prop_map(Operand::Reg), imm().prop_map(Operand::Imm)]
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
    let add_src = prop_oneof![
        imm().prop_map(AddSrc::Imm),
        (6u8..9).prop_map(AddSrc::Reg)
    ];
    (
        0u8..2,
        0u8..(ARRAY_ENTRIES as u8 + 2),
        prop::collection::vec((any::<bool>(), any::<u8>(), add_src), 0..3),
        prop::collection::vec((size(), 6u8..9, any::<u8>()), 0..3),
        prop_oneof![
            (size(), any::<u8>()).prop_map(Ok),
            imm().prop_map(Err)
        ],
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
        3 => (size(), operand(), any::<u16>()).prop_map(|(size, src, off)| Item::PktStore { size, src, off }),
        3 => (size(), scalar(), any::<u16>()).prop_map(|(size, src, slot)| Item::StackStore { size, src, slot }),
        3 => (size(), scalar(), any::<u16>()).prop_map(|(size, dst, slot)| Item::StackLoad { size, dst, slot }),
        3 => map_op().prop_map(Item::Map),
        3 => (any::<bool>(), prop::sample::select(vec![Size::B, Size::H, Size::W]), scalar(), any::<u16>(), mask(), any::<bool>(), proptest::option::of((cond(), scalar(), imm())))
            .prop_map(|(stack, size, dst, off, mask, w32, guard)| Item::LoadMask { stack, size, dst, off, mask, w32, guard }),
        2 => (size(), 1u8..5, 0u16..40, 0u16..40, scalar())
            .prop_map(|(size, n, from, to, tmp)| Item::Copy { size, n, from, to, tmp }),
        1 => prop::array::uniform5(imm()).prop_map(|reinit| Item::Prandom { reinit }),
    ]
}

fn mask() -> impl Strategy<Value = i32> {
    prop_oneof![
        3 => prop::sample::select(vec![0xff, 0xffff, 0xff00, 0xffffff, 0xff0000, 0x00ff_00ff, 0x7f, 0x0f, 0xfff0, -1, 0x7fff_ffff, -256, 1]),
        1 => any::<i32>(),
    ]
}

fn loop_body_item() -> impl Strategy<Value = Item> {
    let basic = prop::sample::select(vec![AluOp::Mov, AluOp::Add, AluOp::Sub, AluOp::And, AluOp::Or, AluOp::Xor]);
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
    )
        .prop_map(|(checked, stack, init, items, ret, short_ret)| Spec {
            checked,
            stack,
            init,
            items,
            ret,
            short_ret,
        })
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

/// Where a jump goes.
#[derive(Debug, Clone, Copy)]
enum Label {
    /// Start of item k (k = items.len() is the epilogue).
    Item(usize),
    /// The short-packet exit.
    Short,
    /// A piece index (loop heads).
    Piece(usize),
}

/// A loop-body item rewritten so that it never writes the loop counter.
fn spare(it: &Item, counter: u8) -> Item {
    let other = |r: u8| if r == counter { (r + 1) % 9 } else { r };
    match it.clone() {
        Item::Alu { op, w32, dst, src } => Item::Alu { op, w32, dst: other(dst), src },
        Item::Shift { op, w32, dst, src } => Item::Shift { op, w32, dst: other(dst), src },
        Item::Be { bits, dst } => Item::Be { bits, dst: other(dst) },
        Item::PktLoad { size, dst, off } => Item::PktLoad { size, dst: other(dst), off },
        Item::StackLoad { size, dst, slot } => Item::StackLoad { size, dst: other(dst), slot },
        i => i,
    }
}

/// An instruction or a jump still to resolve.
enum Piece {
    Insn(Insn),
    Jmp { cond: JmpCond, width: Width, dst: u8, src: Operand, to: Label },
    Ja(Label),
}

fn w(w32: bool) -> Width {
    if w32 { Width::W32 } else { Width::W64 }
}

fn alu(op: AluOp, width: Width, dst: u8, src: Operand) -> Insn {
    Insn::Alu { op, width, dst, src }
}

fn mov(dst: u8, imm: i32) -> Insn {
    alu(AluOp::Mov, Width::W64, dst, Operand::Imm(imm))
}

fn align_down(off: i64, size: Size) -> i64 {
    off - off.rem_euclid(size.bytes() as i64)
}

struct Asm {
    pieces: Vec<Piece>,
    item_start: Vec<usize>,
    short: usize,
}

impl Asm {
    fn push(&mut self, i: Insn) {
        self.pieces.push(Piece::Insn(i));
    }
}

impl Spec {
    /// Packet offset for `sel` so that `size` bytes fit in the checked range.
    fn pkt_off(&self, sel: u16, size: Size) -> i16 {
        let room = u32::from(self.checked) - size.bytes() as u32 + 1;
        (u32::from(sel) % room) as i16
    }

    /// Stack offset (negative, aligned) for `slot`.
    fn stack_off(&self, slot: u16, size: Size) -> i16 {
        let n = u32::from(self.stack) / size.bytes() as u32;
        let i = u32::from(slot) % n;
        -(i64::from(self.stack) - (i64::from(i) * size.bytes() as i64)) as i16
    }

    /// Assembles the spec into an XDP program.
    pub fn program(&self) -> Program {
        let mut a = Asm {
            pieces: Vec::new(),
            item_start: Vec::new(),
            short: 0,
        };
        // Prologue.
        a.push(Insn::Load { size: Size::W, signed: false, dst: PKT, src: 1, off: 0 });
        a.push(Insn::Load { size: Size::W, signed: false, dst: 3, src: 1, off: 4 });
        a.push(alu(AluOp::Mov, Width::W64, 4, Operand::Reg(PKT)));
        a.push(alu(AluOp::Add, Width::W64, 4, Operand::Imm(i32::from(self.checked))));
        a.pieces.push(Piece::Jmp {
            cond: JmpCond::Gt,
            width: Width::W64,
            dst: 4,
            src: Operand::Reg(3),
            to: Label::Short,
        });
        for (r, init) in self.init.iter().enumerate() {
            let r = r as u8;
            a.push(match *init {
                Init::Mov(i) => mov(r, i),
                Init::Mov32(i) => alu(AluOp::Mov, Width::W32, r, Operand::Imm(i)),
                Init::Lddw(v) => Insn::LdImm64 { dst: r, value: LdImm64::Imm(v) },
                Init::Pkt(size, sel) => Insn::Load {
                    size,
                    signed: false,
                    dst: r,
                    src: PKT,
                    off: self.pkt_off(sel, size),
                },
            });
        }
        for k in 0..(self.stack / 8) {
            a.push(Insn::Store {
                size: Size::DW,
                dst: 10,
                src: Operand::Reg((k % 9) as u8),
                off: -8 * (k as i16 + 1),
            });
        }
        for (k, item) in self.items.iter().enumerate() {
            a.item_start.push(a.pieces.len());
            self.lower_item(&mut a, k, item);
        }
        a.item_start.push(a.pieces.len());
        // Epilogue: every register into the packet.
        for r in 0..9u8 {
            a.push(Insn::Store {
                size: Size::DW,
                dst: PKT,
                src: Operand::Reg(r),
                off: 8 * i16::from(r),
            });
        }
        match self.ret {
            Ret::Const(c) => a.push(mov(0, c)),
            Ret::Raw => {}
            Ret::Masked => a.push(alu(AluOp::And, Width::W64, 0, Operand::Imm(3))),
            Ret::Reg(r) => a.push(alu(AluOp::Mov, Width::W64, 0, Operand::Reg(r))),
        }
        a.push(Insn::Exit);
        a.short = a.pieces.len();
        a.push(mov(0, self.short_ret));
        a.push(Insn::Exit);
        resolve(&a)
    }

    fn lower_item(&self, a: &mut Asm, k: usize, item: &Item) {
        let end = self.items.len();
        match *item {
            Item::Alu { op, w32, dst, src } => a.push(alu(op, w(w32), dst, src)),
            Item::Shift { op, w32, dst, src } => {
                let bits = if w32 { 32 } else { 64 };
                let src = match src {
                    Operand::Reg(r) => {
                        a.push(alu(AluOp::And, Width::W64, r, Operand::Imm(bits - 1)));
                        Operand::Reg(r)
                    }
                    Operand::Imm(i) => Operand::Imm(i.rem_euclid(bits)),
                };
                a.push(alu(op, w(w32), dst, src));
            }
            Item::Neg { w32, dst } => a.push(Insn::Neg { width: w(w32), dst }),
            Item::Mul { w32, dst, src, narrow } => {
                let mask = |a: &mut Asm, r: u8| {
                    if narrow {
                        a.push(alu(AluOp::And, Width::W64, r, Operand::Imm(0xffff)));
                    } else {
                        a.push(alu(AluOp::Mov, Width::W32, r, Operand::Reg(r)));
                    }
                };
                mask(a, dst);
                let src = match src {
                    Operand::Reg(r) => {
                        mask(a, r);
                        Operand::Reg(r)
                    }
                    Operand::Imm(i) if !w32 || narrow => {
                        Operand::Imm(if narrow { i & 0xffff } else { i & 0x7fff_ffff })
                    }
                    Operand::Imm(i) => Operand::Imm(i),
                };
                a.push(alu(AluOp::Mul, w(w32), dst, src));
            }
            Item::Div { w32, dst, divisor, via_reg, mask } => {
                a.push(match mask {
                    0 => alu(AluOp::Mov, Width::W32, dst, Operand::Reg(dst)),
                    1 => alu(AluOp::And, Width::W64, dst, Operand::Imm(0xffff)),
                    2 => alu(AluOp::And, Width::W64, dst, Operand::Imm(0xff)),
                    _ => alu(AluOp::And, Width::W64, dst, Operand::Imm(0x7fff_ffff)),
                });
                // The NFP refuses a negative immediate divisor in both widths; a register
                // holding the constant (mov32, zero-extended) may use all of u32.
                let src = match via_reg {
                    Some(r) if r != dst => {
                        a.push(alu(AluOp::Mov, Width::W32, r, Operand::Imm(divisor.max(1) as i32)));
                        Operand::Reg(r)
                    }
                    _ => Operand::Imm((divisor & 0x7fff_ffff).max(1) as i32),
                };
                a.push(alu(AluOp::Div, w(w32), dst, src));
            }
            Item::Be { bits, dst } => a.push(Insn::Endian { order: ByteOrder::ToBe, bits, dst }),
            Item::Lddw { dst, value } => a.push(Insn::LdImm64 { dst, value: LdImm64::Imm(value) }),
            Item::Jmp { cond, w32, dst, src, skip } => a.pieces.push(Piece::Jmp {
                cond,
                width: w(w32),
                dst,
                src,
                to: Label::Item((k + 1 + usize::from(skip)).min(end)),
            }),
            Item::Ja { cond, dst, imm, skip } => {
                a.push(Insn::Jmp { cond, width: Width::W64, dst, src: Operand::Imm(imm), off: 1 });
                a.pieces
                    .push(Piece::Ja(Label::Item((k + 1 + usize::from(skip)).min(end))));
            }
            Item::PktLoad { size, dst, off } => a.push(Insn::Load {
                size,
                signed: false,
                dst,
                src: PKT,
                off: self.pkt_off(off, size),
            }),
            Item::PktStore { size, src, off } => a.push(Insn::Store {
                size,
                dst: PKT,
                src,
                off: self.pkt_off(off, size),
            }),
            Item::StackStore { size, src, slot } => a.push(Insn::Store {
                size,
                dst: 10,
                src: Operand::Reg(src),
                off: self.stack_off(slot, size),
            }),
            Item::StackLoad { size, dst, slot } => a.push(Insn::Load {
                size,
                signed: false,
                dst,
                src: 10,
                off: self.stack_off(slot, size),
            }),
            Item::Map(ref m) => map_item(a, m),
            Item::LoadMask { stack, size, dst, off, mask, w32, guard } => {
                let (src, off) = if stack {
                    (10, self.stack_off(off, size))
                } else {
                    (PKT, self.pkt_off(off, size))
                };
                if let Some((cond, reg, imm)) = guard {
                    a.push(Insn::Jmp { cond, width: Width::W64, dst: reg, src: Operand::Imm(imm), off: 1 });
                }
                a.push(Insn::Load { size, signed: false, dst, src, off });
                a.push(alu(AluOp::And, w(w32), dst, Operand::Imm(mask)));
            }
            Item::Copy { size, n, from, to, tmp } => {
                let step = size.bytes() as u16;
                let fits = |o: u16| u32::from(o) + u32::from(n) * u32::from(step) <= u32::from(self.checked);
                let (from, to) = (if fits(from) { from } else { 0 }, if fits(to) { to } else { 0 });
                for i in 0..u16::from(n) {
                    a.push(Insn::Load { size, signed: false, dst: tmp, src: PKT, off: (from + i * step) as i16 });
                    a.push(Insn::Store { size, dst: PKT, src: Operand::Reg(tmp), off: (to + i * step) as i16 });
                }
            }
            Item::Prandom { reinit } => {
                a.push(Insn::Call(CallTarget::Helper(7)));
                for (r, v) in reinit.iter().enumerate() {
                    a.push(mov(r as u8 + 1, *v));
                }
            }
            Item::Loop { counter, n, cond, ref body } => {
                a.push(mov(counter, i32::from(n)));
                let head = a.pieces.len();
                for it in body {
                    self.lower_item(a, k, &spare(it, counter));
                }
                a.push(alu(AluOp::Sub, Width::W64, counter, Operand::Imm(1)));
                let (c, imm) = match cond {
                    0 => (JmpCond::Ne, 0),
                    1 => (JmpCond::Sgt, 0),
                    _ => (JmpCond::Gt, 0),
                };
                a.pieces.push(Piece::Jmp {
                    cond: c,
                    width: Width::W64,
                    dst: counter,
                    src: Operand::Imm(imm),
                    to: Label::Piece(head),
                });
            }
        }
    }
}

fn map_item(a: &mut Asm, m: &MapOp) {
    let hash = m.map == 1;
    let key_off: i16 = if hash { -16 } else { -8 };
    a.push(mov(1, i32::from(m.key)));
    a.push(Insn::Store {
        size: if hash { Size::DW } else { Size::W },
        dst: 10,
        src: Operand::Reg(1),
        off: key_off,
    });
    a.push(Insn::LdImm64 { dst: 1, value: LdImm64::MapFd(i32::from(m.map)) });
    a.push(alu(AluOp::Mov, Width::W64, 2, Operand::Reg(10)));
    a.push(alu(AluOp::Add, Width::W64, 2, Operand::Imm(i32::from(key_off))));
    a.push(Insn::Call(CallTarget::Helper(1)));
    let mut hit = Vec::new();
    for (dw, sel, src) in &m.adds {
        let size = if *dw { Size::DW } else { Size::W };
        let off = align_down(i64::from(*sel) % i64::from(COUNTERS - size.bytes() as i16 + 1), size) as i16;
        let reg = match *src {
            AddSrc::Imm(i) => {
                hit.push(mov(1, i));
                1
            }
            AddSrc::Reg(r) => r,
        };
        hit.push(Insn::Atomic { op: AtomicOp::Add, size, fetch: false, dst: 0, src: reg, off });
    }
    let read_off = |size: Size, sel: u8| {
        let room = VALUE as i16 - COUNTERS - size.bytes() as i16 + 1;
        COUNTERS + (i16::from(sel) % room)
    };
    for (size, dst, sel) in &m.reads {
        hit.push(Insn::Load { size: *size, signed: false, dst: *dst, src: 0, off: read_off(*size, *sel) });
    }
    hit.push(match m.r0 {
        Ok((size, sel)) => Insn::Load { size, signed: false, dst: 0, src: 0, off: read_off(size, sel) },
        Err(i) => mov(0, i),
    });
    let skip: usize = hit.iter().map(Insn::slots).sum();
    a.push(Insn::Jmp {
        cond: JmpCond::Eq,
        width: Width::W64,
        dst: 0,
        src: Operand::Imm(0),
        off: skip as i16,
    });
    for i in hit {
        a.push(i);
    }
    for (r, v) in m.reinit.iter().enumerate() {
        a.push(mov(r as u8 + 1, *v));
    }
}

fn resolve(a: &Asm) -> Program {
    // Slot index of each piece.
    let mut slot = Vec::with_capacity(a.pieces.len() + 1);
    let mut n = 0usize;
    for p in &a.pieces {
        slot.push(n);
        n += match p {
            Piece::Insn(i) => i.slots(),
            _ => 1,
        };
    }
    slot.push(n);
    let target = |l: Label| match l {
        Label::Item(k) => slot[a.item_start[k]],
        Label::Short => slot[a.short],
        Label::Piece(p) => slot[p],
    };
    let mut insns = Vec::with_capacity(n);
    for (pi, p) in a.pieces.iter().enumerate() {
        let rel = |l: Label| (target(l) as i64 - slot[pi] as i64 - 1) as i16;
        match *p {
            Piece::Insn(i) => {
                insns.push(i);
                if matches!(i, Insn::LdImm64 { .. }) {
                    insns.push(Insn::LdImm64Tail);
                }
            }
            Piece::Jmp { cond, width, dst, src, to } => {
                insns.push(Insn::Jmp { cond, width, dst, src, off: rel(to) })
            }
            Piece::Ja(to) => insns.push(Insn::Ja { off: i32::from(rel(to)), long: false }),
        }
    }
    Program {
        name: "generated".into(),
        section: Some("xdp".into()),
        prog_type: ProgType::Xdp,
        insns,
        maps: map_defs(),
    }
}

/// Which instruction forms a spec exercises (for the coverage summary).
pub fn forms(spec: &Spec) -> Vec<&'static str> {
    let mut v = Vec::new();
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
            Item::PktStore { src: Operand::Imm(_), .. } => "pkt_store_imm",
            Item::PktStore { .. } => "pkt_store",
            Item::StackStore { .. } => "stack_store",
            Item::StackLoad { .. } => "stack_load",
            Item::Map(m) if m.map == 0 => "array_lookup",
            Item::Map(_) => "hash_lookup",
            Item::LoadMask { .. } => "load_mask",
            Item::Copy { .. } => "copy",
            Item::Prandom { .. } => "prandom",
            Item::Loop { .. } => "loop",
        });
    }
    v
}
