//! The program recipe: a small structured AST that [`lower`](super::lower) turns into
//! instructions.
//!
//! Why an AST and not instructions: proptest shrinks what it generates, and shrinking a flat
//! instruction list (dropping a `mov`, changing a jump offset) would produce programs the
//! verifier rejects. Recipes have no jump offsets, no explicit pointers and no types: any
//! recipe, however it was shrunk, lowers to a program the verifier accepts, because the
//! lowering tracks register types and repairs what a shrink broke (a read of a register that
//! is no longer a scalar gets a `mov` first, an offset is reduced into its region, a zero
//! immediate divisor becomes one). Register numbers and offsets are therefore *requests*.

use vm_core::isa::{AluOp, AtomicOp, ByteOrder, JmpCond, Size, Width};

/// A register request, 0..=9 (reduced modulo 10 when lowered; r10 is never named).
pub type GReg = u8;

/// The second operand of an ALU op, a jump or a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Src {
    /// A register (made a scalar first if it is not one).
    Reg(GReg),
    /// An immediate.
    Imm(i32),
}

/// Straight-line register operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simple {
    /// A binary ALU op other than `movsx` (`dst op= src`).
    Alu {
        /// Operation (never [`AluOp::MovSx`]).
        op: AluOp,
        /// ALU (32-bit, zero-extending) or ALU64.
        width: Width,
        /// Destination.
        dst: GReg,
        /// Second operand.
        src: Src,
    },
    /// `movsx`: sign-extend the low `bits` of `src` (8/16/32; 32 only for ALU64).
    MovSx {
        /// ALU or ALU64.
        width: Width,
        /// Source width in bits.
        bits: u8,
        /// Destination.
        dst: GReg,
        /// Source register.
        src: GReg,
    },
    /// `dst = -dst`.
    Neg {
        /// ALU or ALU64.
        width: Width,
        /// Register negated.
        dst: GReg,
    },
    /// `le`/`be`/`bswap` of the low `bits` (16/32/64).
    Endian {
        /// Conversion.
        order: ByteOrder,
        /// 16, 32 or 64.
        bits: u8,
        /// Register converted.
        dst: GReg,
    },
    /// `lddw dst, value`.
    LdImm64 {
        /// Destination.
        dst: GReg,
        /// Constant.
        value: u64,
    },
}

/// A memory access relative to the innermost region: the stack's scalar area at top level,
/// the checked packet bytes inside [`Stmt::Packet`], the map value inside [`Stmt::MapValue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemOp {
    /// `dst = *(size *)(base + off)`, sign-extending when `signed` (not for DW).
    Load {
        /// Access size.
        size: Size,
        /// `ldxs*` (ISA v4 sign-extending load).
        signed: bool,
        /// Destination.
        dst: GReg,
        /// Offset request (reduced into the region, aligned where the region needs it).
        off: u16,
    },
    /// `*(size *)(base + off) = src`.
    Store {
        /// Access size.
        size: Size,
        /// Register (STX) or immediate (ST).
        src: Src,
        /// Offset request.
        off: u16,
    },
    /// A load or store at a variable offset: `base + ((idx & mask) << log2(size))`, the mask
    /// keeping the access inside the region (stack and map values; dropped on the packet,
    /// where a variable offset needs a fresh bounds check).
    Indexed {
        /// Store `reg` (else load into `reg`).
        store: bool,
        /// Access size.
        size: Size,
        /// Sign-extending load.
        signed: bool,
        /// Value stored, or destination of the load.
        reg: GReg,
        /// Register holding the index.
        idx: GReg,
    },
    /// Atomic read-modify-write (stack and map values; on the packet, which forbids
    /// atomics, it lowers to a plain store of `src`).
    Atomic {
        /// Operation.
        op: AtomicOp,
        /// W or DW.
        size: Size,
        /// Return the old value in `src` (always for xchg / cmpxchg).
        fetch: bool,
        /// Operand register (cmpxchg also reads and writes r0).
        src: GReg,
        /// Offset request.
        off: u16,
    },
}

/// The maps a generated program may use besides the register dump map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapSel {
    /// The array map ([`super::ARRAY_MAP`]).
    Array,
    /// The hash map ([`super::HASH_MAP`]).
    Hash,
}

/// A map key (u32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A constant key (the verifier knows it: 6.18 then treats an in-range array lookup as
    /// non-NULL).
    Imm(u32),
    /// `reg & mask` (mask 0 means the whole register): unknown to the verifier when the
    /// register is.
    Reg {
        /// Register holding the key.
        reg: GReg,
        /// Mask applied first (0: none).
        mask: u32,
    },
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stmt {
    /// A register operation.
    Simple(Simple),
    /// A memory access in the current region.
    Mem(MemOp),
    /// `if cond(dst, src) skip then-body [else else-body]`: the body runs when the
    /// condition is *false* (the jump skips it); forward jumps only.
    If {
        /// Condition of the jump over the then-body.
        cond: JmpCond,
        /// JMP (64-bit compare) or JMP32.
        width: Width,
        /// Left operand.
        dst: GReg,
        /// Right operand.
        src: Src,
        /// Runs when the condition is false.
        then: Vec<Stmt>,
        /// Runs when it is true (if present).
        els: Option<Vec<Stmt>>,
        /// Use `gotol` (ja32) for the jump over the else-body.
        long_ja: bool,
    },
    /// `for counter in 0..count { body }` with a counter in r6..r9 the body cannot write.
    Loop {
        /// Iterations (reduced to 1..=MAX_LOOP_COUNT).
        count: u8,
        /// Counter register request (mapped into r6..r9).
        counter: GReg,
        /// Loop body.
        body: Vec<Stmt>,
    },
    /// Bounds-check `len` packet bytes (`data + len > data_end` skips the body) and run
    /// `body` with the packet as the memory region. Needs the context (main program only).
    Packet {
        /// Checked length (reduced to 1..=64).
        len: u8,
        /// Requests for the data, data_end and cursor registers.
        regs: [GReg; 3],
        /// Runs when the packet is long enough.
        body: Vec<Stmt>,
    },
    /// `p = bpf_map_lookup_elem(map, &key); if p { body }` with the value as memory region.
    MapValue {
        /// Which map.
        map: MapSel,
        /// Key.
        key: Key,
        /// Register request for the value pointer (never r0).
        ptr: GReg,
        /// Runs when the key exists.
        body: Vec<Stmt>,
    },
    /// `r0 = bpf_map_update_elem(map, &key, &value, flags)`.
    MapUpdate {
        /// Which map.
        map: MapSel,
        /// Key.
        key: Key,
        /// Value words (8 bytes each; missing ones are zero, extra ones ignored).
        value: Vec<Src>,
        /// `BPF_ANY` (0), `BPF_NOEXIST` (1) or `BPF_EXIST` (2) (reduced modulo 3).
        flags: u8,
    },
    /// `r0 = bpf_map_delete_elem(map, &key)`.
    MapDelete {
        /// Which map.
        map: MapSel,
        /// Key.
        key: Key,
    },
    /// `r0 = bpf_csum_diff(stack + 4*from, 4*from_words, stack + 4*to, 4*to_words, seed)`
    /// over the stack's scalar area.
    CsumDiff {
        /// Start word in the scalar area.
        from: u8,
        /// Words (1..=16 after reduction).
        from_words: u8,
        /// Start word.
        to: u8,
        /// Words.
        to_words: u8,
        /// Seed register.
        seed: GReg,
    },
    /// An XDP context helper or field read (main program only: needs the context).
    Xdp(XdpOp),
    /// `r0 = sub#n(r1..r5)`: a bpf-to-bpf call (only to later subprograms, so no recursion).
    Call {
        /// Subprogram request (reduced into the valid callees).
        sub: u8,
    },
}

/// Context fields and helpers of XDP programs, all deterministic under `BPF_PROG_TEST_RUN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpOp {
    /// `r0 = bpf_xdp_adjust_head(ctx, delta)`.
    AdjustHead(i32),
    /// `r0 = bpf_xdp_adjust_meta(ctx, delta)`.
    AdjustMeta(i32),
    /// `r0 = bpf_xdp_adjust_tail(ctx, delta)`.
    AdjustTail(i32),
    /// `r0 = bpf_xdp_load_bytes(ctx, off, stack + 4*word, len)` into the scalar area.
    LoadBytes {
        /// Packet offset (immediate or register).
        off: Src,
        /// Start word of the buffer in the scalar area.
        word: u8,
        /// Length request (reduced to what fits the scalar area, at least 1).
        len: u8,
    },
    /// `r0 = bpf_xdp_store_bytes(ctx, off, stack + 4*word, len)` from the scalar area.
    StoreBytes {
        /// Packet offset.
        off: Src,
        /// Start word of the buffer.
        word: u8,
        /// Length request.
        len: u8,
    },
    /// `r0 = bpf_xdp_get_buff_len(ctx)`.
    BuffLen,
    /// `dst = ctx->ingress_ifindex` (`rx_queue` false) or `ctx->rx_queue_index`.
    Field {
        /// Read `rx_queue_index` instead of `ingress_ifindex`.
        rx_queue: bool,
        /// Destination.
        dst: GReg,
    },
}

/// How a register starts in the main program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegInit {
    /// `mov64 r, imm` (sign-extended).
    Imm(i32),
    /// `mov32 r, imm` (zero-extended).
    Imm32(i32),
    /// `lddw r, value`.
    Imm64(u64),
    /// A load from the first 14 packet bytes (an Ethernet header always exists in the test
    /// run), unknown to the verifier; `fallback` is used on the (impossible) short path.
    Packet {
        /// Size.
        size: Size,
        /// Sign-extend.
        signed: bool,
        /// Offset request (reduced into 0..14).
        off: u8,
        /// Constant on the short-packet path.
        fallback: i32,
    },
}

/// A bpf-to-bpf subprogram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sub {
    /// How many of r1..r5 it reads as arguments (0..=5).
    pub params: u8,
    /// Body.
    pub body: Vec<Stmt>,
    /// Register whose value it returns in r0.
    pub ret: GReg,
}

/// A whole program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Initial values of r0..r9 (missing entries: `mov64 r, 0`).
    pub init: Vec<RegInit>,
    /// Initial 64-bit words of the stack's scalar area (missing: zero).
    pub stack_init: Vec<i32>,
    /// Main program body.
    pub main: Vec<Stmt>,
    /// Subprograms; `Stmt::Call` in sub `i` only reaches subs after `i`.
    pub subs: Vec<Sub>,
    /// Register whose dumped value r0 starts from (plus a fold of all ten registers).
    pub ret: GReg,
}
