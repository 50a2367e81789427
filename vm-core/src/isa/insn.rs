//! Raw 8-byte instructions and the typed, decoded instruction.

use std::fmt;

/// One 8-byte instruction slot exactly as it is stored (little-endian, RFC 9669 §3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RawInsn {
    /// Opcode byte.
    pub code: u8,
    /// Destination register field (low nibble of byte 1).
    pub dst: u8,
    /// Source register field (high nibble of byte 1).
    pub src: u8,
    /// Signed 16-bit offset.
    pub off: i16,
    /// Signed 32-bit immediate.
    pub imm: i32,
}

impl RawInsn {
    /// Builds a slot from its fields.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        RawInsn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// Decodes the 8 bytes of one slot in memory order.
    pub fn from_bytes(b: [u8; 8]) -> Self {
        RawInsn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// The 8 bytes of this slot in memory order.
    pub fn to_bytes(self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst & 0x0f) | (self.src << 4),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// The slot as the little-endian u64 word used by bpf_conformance `-- raw` sections.
    pub fn to_u64(self) -> u64 {
        u64::from_le_bytes(self.to_bytes())
    }

    /// Inverse of [`RawInsn::to_u64`].
    pub fn from_u64(word: u64) -> Self {
        Self::from_bytes(word.to_le_bytes())
    }

    /// Parses a byte buffer made of whole 8-byte slots.
    pub fn slice_from_bytes(bytes: &[u8]) -> Result<Vec<RawInsn>, TruncatedProgram> {
        if !bytes.len().is_multiple_of(8) {
            return Err(TruncatedProgram { len: bytes.len() });
        }
        Ok(bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                RawInsn::from_bytes(b)
            })
            .collect())
    }

    /// Serialises slots back to bytes.
    pub fn slice_to_bytes(insns: &[RawInsn]) -> Vec<u8> {
        insns.iter().flat_map(|i| i.to_bytes()).collect()
    }
}

impl fmt::Debug for RawInsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RawInsn {{ code: {:#04x}, dst: {}, src: {}, off: {}, imm: {:#x} }}",
            self.code, self.dst, self.src, self.off, self.imm
        )
    }
}

/// A byte buffer whose length is not a multiple of 8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("program is {len} bytes long, not a whole number of 8-byte instructions (trailing {} bytes at byte offset {})", len % 8, len - len % 8)]
pub struct TruncatedProgram {
    /// Length of the buffer in bytes.
    pub len: usize,
}

/// A register number 0..=10 (R10 is the read-only frame pointer).
pub type Reg = u8;

/// The frame pointer register.
pub const R10: Reg = 10;

/// Operation width of ALU and JMP instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Width {
    /// Class ALU / JMP32: operates on the low 32 bits; ALU results are zero-extended.
    W32,
    /// Class ALU64 / JMP.
    W64,
}

/// Second operand of ALU, jump and store instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operand {
    /// A register (`BPF_X`).
    Reg(Reg),
    /// The sign-extended 32-bit immediate (`BPF_K`).
    Imm(i32),
}

/// Binary ALU operations (everything in the ALU classes except NEG and END).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AluOp {
    /// `dst += src`
    Add,
    /// `dst -= src`
    Sub,
    /// `dst *= src`
    Mul,
    /// Unsigned `dst /= src`; division by zero gives 0.
    Div,
    /// Signed division (offset 1, ISA v4); by zero gives 0, `MIN / -1` gives `MIN`.
    SDiv,
    /// `dst |= src`
    Or,
    /// `dst &= src`
    And,
    /// `dst <<= src` (shift count masked to the width).
    Lsh,
    /// Logical `dst >>= src`.
    Rsh,
    /// Unsigned `dst %= src`; modulo by zero leaves dst unchanged.
    Mod,
    /// Signed modulo (offset 1, ISA v4); by zero leaves dst unchanged, `MIN % -1` gives 0.
    SMod,
    /// `dst ^= src`
    Xor,
    /// `dst = src`
    Mov,
    /// Sign-extending move from the low 8, 16 or 32 bits of a register (ISA v4 `movsx`).
    MovSx(u8),
    /// Arithmetic `dst >>= src`.
    Arsh,
}

/// Byte-order operations (`BPF_END`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// `le16/32/64`: convert to little-endian (truncates/zero-extends on a little-endian host).
    ToLe,
    /// `be16/32/64`: convert to big-endian.
    ToBe,
    /// `bswap16/32/64` (ISA v4, class ALU64): unconditional byte swap.
    Swap,
}

/// Access size of loads, stores and atomics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    /// 1 byte.
    B,
    /// 2 bytes.
    H,
    /// 4 bytes.
    W,
    /// 8 bytes.
    DW,
}

impl Size {
    /// Number of bytes accessed.
    pub const fn bytes(self) -> usize {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }
}

/// Jump conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JmpCond {
    /// `==`
    Eq,
    /// unsigned `>`
    Gt,
    /// unsigned `>=`
    Ge,
    /// `dst & src != 0`
    Set,
    /// `!=`
    Ne,
    /// signed `>`
    Sgt,
    /// signed `>=`
    Sge,
    /// unsigned `<`
    Lt,
    /// unsigned `<=`
    Le,
    /// signed `<`
    Slt,
    /// signed `<=`
    Sle,
}

/// Atomic read-modify-write operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    /// `*ptr += src`
    Add,
    /// `*ptr |= src`
    Or,
    /// `*ptr &= src`
    And,
    /// `*ptr ^= src`
    Xor,
    /// Exchange (always fetches).
    Xchg,
    /// Compare with R0 and exchange; the old value lands in R0 (always fetches).
    CmpXchg,
}

/// What the 64-bit immediate of `lddw` means (its `src_reg` pseudo source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LdImm64 {
    /// A plain 64-bit constant.
    Imm(u64),
    /// `BPF_PSEUDO_MAP_FD`: a map, by file descriptor.
    MapFd(i32),
    /// `BPF_PSEUDO_MAP_VALUE`: address of a map's value at `off` (array maps, global data).
    MapValue {
        /// Map file descriptor.
        fd: i32,
        /// Byte offset into the value (the second slot's imm).
        off: u32,
    },
    /// `BPF_PSEUDO_BTF_ID`: a kernel variable by BTF id.
    BtfId {
        /// BTF type id.
        id: i32,
        /// The second slot's imm (BTF object fd or 0).
        btf_fd: i32,
    },
    /// `BPF_PSEUDO_FUNC`: address of a subprogram, `rel` slots after the next one.
    Func(i32),
    /// `BPF_PSEUDO_MAP_IDX`: a map by index into the `fd_array`.
    MapIdx(i32),
    /// `BPF_PSEUDO_MAP_IDX_VALUE`: a map value by index into the `fd_array`.
    MapIdxValue {
        /// Index into `fd_array`.
        idx: i32,
        /// Byte offset into the value.
        off: u32,
    },
}

/// Target of a `call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallTarget {
    /// A helper function by id (`src_reg = 0`).
    Helper(i32),
    /// A bpf-to-bpf call (`src_reg = 1`): the callee starts `rel` slots after the next one.
    Local(i32),
    /// A kernel function by BTF id (`src_reg = 2`).
    Kfunc(i32),
}

/// A decoded instruction. `lddw` occupies two slots: the second decodes to [`Insn::LdImm64Tail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Insn {
    /// Binary ALU operation.
    Alu {
        /// Operation.
        op: AluOp,
        /// 32-bit (class ALU) or 64-bit (class ALU64).
        width: Width,
        /// Destination register.
        dst: Reg,
        /// Second operand.
        src: Operand,
    },
    /// `dst = -dst`.
    Neg {
        /// 32 or 64 bit.
        width: Width,
        /// Destination register.
        dst: Reg,
    },
    /// Byte-order conversion or swap of the low `bits` (16, 32 or 64) of `dst`.
    Endian {
        /// Which conversion.
        order: ByteOrder,
        /// 16, 32 or 64.
        bits: u8,
        /// Register converted in place.
        dst: Reg,
    },
    /// `dst = *(size *)(src + off)`, sign-extending when `signed` (ISA v4 `ldxs*`).
    Load {
        /// Access size.
        size: Size,
        /// Sign-extend the loaded value (`BPF_MEMSX`).
        signed: bool,
        /// Destination register.
        dst: Reg,
        /// Base register.
        src: Reg,
        /// Byte offset.
        off: i16,
    },
    /// `*(size *)(dst + off) = src` (class STX with a register, ST with an immediate).
    Store {
        /// Access size.
        size: Size,
        /// Base register.
        dst: Reg,
        /// Value stored.
        src: Operand,
        /// Byte offset.
        off: i16,
    },
    /// Atomic read-modify-write on `*(size *)(dst + off)` (size W or DW).
    Atomic {
        /// Operation.
        op: AtomicOp,
        /// W or DW.
        size: Size,
        /// Whether the old value is returned in `src` (always true for xchg/cmpxchg).
        fetch: bool,
        /// Base register.
        dst: Reg,
        /// Operand register.
        src: Reg,
        /// Byte offset.
        off: i16,
    },
    /// `lddw dst, imm64` with its pseudo source.
    LdImm64 {
        /// Destination register.
        dst: Reg,
        /// The value or the object it names.
        value: LdImm64,
    },
    /// Second slot of an `lddw`; never executed.
    LdImm64Tail,
    /// Legacy packet load `r0 = ntoh(*(size *)(skb->data + imm))`.
    LdAbs {
        /// B, H or W.
        size: Size,
        /// Packet offset.
        imm: i32,
    },
    /// Legacy packet load `r0 = ntoh(*(size *)(skb->data + src + imm))`.
    LdInd {
        /// B, H or W.
        size: Size,
        /// Register holding the variable offset.
        src: Reg,
        /// Constant offset.
        imm: i32,
    },
    /// Unconditional jump `off` slots after the next one.
    Ja {
        /// Relative target.
        off: i32,
        /// `ja32` / `gotol` (class JMP32, offset in imm) rather than `ja` (class JMP, offset in off).
        long: bool,
    },
    /// Conditional jump.
    Jmp {
        /// Condition.
        cond: JmpCond,
        /// JMP (64-bit compare) or JMP32.
        width: Width,
        /// Left operand.
        dst: Reg,
        /// Right operand.
        src: Operand,
        /// Relative target.
        off: i16,
    },
    /// Helper, local or kfunc call.
    Call(CallTarget),
    /// Call through a register (`callx`, opcode 0x8d; the register is in the dst field).
    CallX {
        /// Register holding the target.
        reg: Reg,
    },
    /// Return from the current function (or the program) with R0.
    Exit,
}

impl Insn {
    /// The jump target of a jump instruction at `pc`, if it is one (slot index, may be out of range).
    pub fn jump_target(&self, pc: usize) -> Option<i64> {
        match *self {
            Insn::Ja { off, .. } => Some(pc as i64 + 1 + off as i64),
            Insn::Jmp { off, .. } => Some(pc as i64 + 1 + off as i64),
            _ => None,
        }
    }

    /// The callee slot of a local call (or `lddw` of a function address) at `pc`.
    pub fn call_target(&self, pc: usize) -> Option<i64> {
        match *self {
            Insn::Call(CallTarget::Local(rel)) => Some(pc as i64 + 1 + rel as i64),
            Insn::LdImm64 {
                value: LdImm64::Func(rel),
                ..
            } => Some(pc as i64 + 1 + rel as i64),
            _ => None,
        }
    }

    /// Number of slots this instruction occupies.
    pub fn slots(&self) -> usize {
        match self {
            Insn::LdImm64 { .. } => 2,
            _ => 1,
        }
    }
}
