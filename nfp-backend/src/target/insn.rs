//! The microengine instruction set this backend targets: a Netronome-NFP-4000-like flow
//! processing core ("ME") with 32-bit registers in two banks, transfer registers for memory
//! commands, local memory windows, condition codes and branch defer slots.
//!
//! Why a typed enum and not encoded words: the lowering, the listing, the cost model and the
//! reference executor all reason about operands and opcodes; the 64-bit encoding
//! (`target::encode` / `target::decode`) is a separate, round-tripping concern.
//!
//! Conventions fixed here (the lowering, the executor and nic-sim rely on them):
//! - eBPF register `Rn` (n = 0..=9) lives in the GPR pair (2n, 2n+1): low word in GPR `2n`,
//!   high word in GPR `2n+1`, written to *both* banks so either bank can be read next.
//!   `R10` is not held in registers. GPRs 20 and 21 are scratch, A22 = stack base (LMEM byte
//!   address of this thread's 512-byte frame area), B22 = packet length. A21 carries the return
//!   address of bpf-to-bpf calls.
//! - Memory byte order in this model is little-endian everywhere (a deliberate simplification of
//!   the real NFP, which is big-endian and byte-swaps in the JIT): a read of `n` bytes fills the
//!   transfer registers with byte `i` in bits `8*(i%4)..` of `xfer[i/4]`.
//! - Condition codes (Z, N, C, V) are set by `Alu` and `Shf` (C and V only by the arithmetic
//!   ALU ops). After `Sub`/`SubCarry` computing `a - b`, `C` is set when *no borrow* occurred
//!   (unsigned `a >= b`), ARM style; `AddCarry` / `SubCarry` consume `C` (sub-with-carry computes
//!   `a - b - (1 - C)`), so a 64-bit add/sub/compare is low op then carry op.

/// A general-purpose register bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bank {
    /// Bank A (A-operand field).
    A,
    /// Bank B (B-operand field).
    B,
}

/// Number of GPRs per bank a thread can address (4-context mode).
pub const GPRS_PER_BANK: u8 = 32;
/// Transfer registers per thread (read and write sets are separate).
pub const XFER_REGS: u8 = 32;
/// Local-memory index registers (`ActLMAddr0..3`).
pub const LM_INDEXES: u8 = 4;
/// Words reachable through one LM index window (`*l$indexN[0..16]`).
pub const LM_WINDOW_WORDS: u8 = 16;

/// A source operand of an ALU, shift, field-load or command instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Src {
    /// A GPR.
    Gpr(Bank, u8),
    /// A read transfer register (filled by a memory read command).
    Xfer(u8),
    /// A local-memory word through an LM index register: the word at
    /// `ActLMAddr[index] + 4 * off` (`index` < 4, `off` < 16).
    Lm { index: u8, off: u8 },
    /// An 8-bit immediate operand.
    Imm(u8),
    /// No operand (reads as 0).
    None,
}

/// A destination of an ALU, shift, immediate or field-load instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dst {
    /// GPR `n` in one bank.
    Gpr(Bank, u8),
    /// GPR `n` in both banks (the "write both" bit): what the eBPF register pairs use.
    Both(u8),
    /// A write transfer register (source of a memory write command).
    Xfer(u8),
    /// A local-memory word through an LM index register.
    Lm { index: u8, off: u8 },
    /// Result discarded; only the condition codes are set.
    None,
}

/// ALU operations (`alu[dst, a, op, b]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AluOp {
    /// `dst = b` (a is ignored).
    PassB,
    /// `dst = a + b`.
    Add,
    /// `dst = a + b + C`.
    AddCarry,
    /// `dst = a - b`.
    Sub,
    /// `dst = a - b - (1 - C)`.
    SubCarry,
    /// `dst = !b`.
    NotB,
    /// `dst = a & b`.
    And,
    /// `dst = !a & b`.
    AndNotA,
    /// `dst = a & !b`.
    AndNotB,
    /// `dst = a | b`.
    Or,
    /// `dst = a ^ b`.
    Xor,
}

/// Shift classes of `dbl_shf` / `alu_shf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShiftKind {
    /// `dst = b << amount`.
    Left,
    /// `dst = b >> amount` (logical).
    Right,
    /// `dst = (b as i32) >> amount`.
    ArithRight,
    /// `dst = b.rotate_right(amount)`.
    RotRight,
    /// Double shift: `dst = low 32 bits of ((a:b) >> amount)` with `a` the high word.
    DoubleRight,
}

/// A shift amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShiftAmount {
    /// A constant 0..=31.
    Imm(u8),
    /// The low 5 bits of the previous ALU instruction's result (the hardware's indirect shift:
    /// the instruction before must be an `Alu` computing the amount).
    Indirect,
}

/// Width/placement of an `immed` load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImmedWidth {
    /// The whole register is written.
    All,
    /// Only the 16-bit half selected by `shift` (0 or 2 bytes) is written, the rest kept.
    Word,
    /// Only the byte selected by `shift` (0..=3 bytes) is written, the rest kept.
    Byte,
}

/// Branch conditions on the condition codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cond {
    /// Z.
    Eq,
    /// !Z.
    Ne,
    /// N.
    Mi,
    /// !N.
    Pl,
    /// C (unsigned >= after a subtraction).
    Hs,
    /// !C (unsigned <).
    Lo,
    /// V.
    Vs,
    /// !V.
    Vc,
    /// N == V (signed >=).
    Ge,
    /// N != V (signed <).
    Lt,
    /// Z || N != V (signed <=).
    Le,
    /// !Z && N == V (signed >).
    Gt,
    /// Always.
    Always,
}

/// Memory units reached by commands (LMEM is reached through `Src::Lm`/`Dst::Lm` instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemTarget {
    /// Cluster local scratch (per island).
    Cls,
    /// Cluster target memory (per island): packet buffers.
    Ctm,
    /// Internal memory unit (SRAM).
    Imem,
    /// External memory unit (DRAM with cache): map tables and values.
    Emem,
}

/// What a memory command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmdAction {
    /// Read `count` bytes (1..=32) into read transfer registers starting at `xfer`.
    Read8,
    /// Read `count` 32-bit words (1..=8) into read transfer registers.
    Read32,
    /// Write `count` bytes from write transfer registers.
    Write8,
    /// Write `count` 32-bit words from write transfer registers.
    Write32,
    /// Atomically add write-transfer word(s) to memory: `count` = 1 adds a 32-bit word,
    /// 2 adds a 64-bit value held in two transfer words (low first).
    AtomicAdd,
}

/// Addressing of a command: how the two operands form the byte address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrMode {
    /// `address = a + b` (32-bit; CTM packet addresses).
    Addr32,
    /// `address = ((a & 0xff) << 32) + b` (40-bit MU addresses: `a` holds bits 32..39).
    Addr40,
}

/// Local CSRs the generated code touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Csr {
    /// `ActLMAddr0..3`: byte address in LMEM of LM index window `n`. A write takes effect three
    /// cycles later: the next three instructions must not use `Lm { index: n, .. }`.
    ActLmAddr(u8),
    /// Pseudo-random number generator (read only).
    PseudoRandNum,
    /// The thread's context number (read only).
    ActiveCtxSts,
}

/// Multiply steps (`mul_step`): a 32x32 multiply is `Start`, the steps, then `Last` for the
/// low word and optionally `LastHigh` for the high word; a 16x16 multiply needs fewer steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MulStep {
    /// Latch the operands `a` and `b`.
    Start32,
    /// Latch 16-bit operands (both must be <= 0xffff).
    Start16,
    /// One intermediate step (`n` = 1..=4 for 32x32, 1..=2 for 16x16); result discarded.
    Step(u8),
    /// Write the low 32 bits of the product.
    Last,
    /// Write the high 32 bits of the (32x32) product.
    LastHigh,
}

/// Firmware subroutines the generated code branches to (the real JIT branches to firmware
/// addresses patched at load time). Arguments in the eBPF argument register pairs
/// (R1..R5 = GPR 2..11), result in R0 (GPR 0/1), as on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FwHelper {
    /// `bpf_map_lookup_elem`: R1 = firmware table id, R2 = LMEM byte address of the key.
    /// Returns the 40-bit EMEM address of the value, or 0.
    MapLookup,
    /// `bpf_map_update_elem`: R1 table id, R2 key LMEM address, R3 value LMEM address, R4 flags.
    MapUpdate,
    /// `bpf_map_delete_elem`: R1 table id, R2 key LMEM address.
    MapDelete,
    /// `bpf_get_prandom_u32`.
    Random,
    /// `bpf_xdp_adjust_head`: R2 = delta.
    AdjustHead,
    /// `bpf_xdp_adjust_tail`: R2 = delta (negative only).
    AdjustTail,
    /// `bpf_perf_event_output`: R4 data LMEM/packet/map address, R5 size.
    PerfEventOutput,
}

/// One microengine instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeInsn {
    /// `alu[dst, a, op, b]`; `a` and `b` must not both be GPRs of the same bank.
    Alu { op: AluOp, dst: Dst, a: Src, b: Src },
    /// Shift of `b` (and `a` for `DoubleRight`) into `dst`.
    Shf {
        kind: ShiftKind,
        dst: Dst,
        a: Src,
        b: Src,
        amount: ShiftAmount,
    },
    /// `immed[dst, imm, <<8*shift]`, optionally inverted (`!(imm << 8*shift)`), written per
    /// `width`. Values that need more than one `immed` take two (`Word` for the high half).
    Immed {
        dst: Dst,
        imm: u16,
        shift: u8,
        invert: bool,
        width: ImmedWidth,
    },
    /// `ld_field[dst, mask, b, >>shift]`: bytes of `b.rotate_right(8*shift_bytes)` selected by
    /// the 4-bit `byte_mask` replace those bytes of `dst` (other bytes kept, or zeroed when
    /// `zero_fill`). `dst` must be a GPR (it is also read).
    LdField {
        dst: Dst,
        byte_mask: u8,
        b: Src,
        shift_bytes: u8,
        zero_fill: bool,
    },
    /// A multiply step.
    Mul {
        step: MulStep,
        dst: Dst,
        a: Src,
        b: Src,
    },
    /// Conditional branch to absolute code address `target`; the next `defer` (0..=3)
    /// instructions execute before the branch takes effect (whether taken or not).
    Br { cond: Cond, target: u16, defer: u8 },
    /// Branch if bit `bit` of `src` is set (`set`) or clear (`!set`).
    BrBit {
        src: Src,
        bit: u8,
        set: bool,
        target: u16,
        defer: u8,
    },
    /// Jump to the code address held in `src` (return from a bpf-to-bpf call).
    Rtn { src: Src, defer: u8 },
    /// A memory command; the thread swaps out until it completes when `swap` is set (the
    /// executor reports the latency so nic-sim can run other threads meanwhile).
    Cmd {
        target: MemTarget,
        action: CmdAction,
        xfer: u8,
        count: u8,
        mode: AddrMode,
        a: Src,
        b: Src,
        swap: bool,
    },
    /// Read a local CSR into `dst`.
    CsrRead { csr: Csr, dst: Dst },
    /// Write `src` to a local CSR.
    CsrWrite { csr: Csr, src: Src },
    /// Branch-and-link into a firmware helper subroutine; returns to the next instruction.
    FwCall { helper: FwHelper },
    /// End of the program for this packet: return to the firmware's dispatch loop with the
    /// eBPF return value in R0 (GPR 0 low word; the firmware maps it to a verdict).
    Exit,
    /// No operation (latency padding, defer slots, the 8-slot prefetch tail).
    Nop,
}
