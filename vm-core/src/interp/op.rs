//! The interpreter's internal instruction: one flat 32-byte record per executed instruction.
//!
//! Why a separate form: the typed [`Insn`](crate::Insn) is a nested enum that is pleasant to
//! match on but costly to dispatch (several discriminants, operand enums, relative targets).
//! The run loop wants the operation, width and operand kind already folded into one
//! specialised handler, relative jump targets and pre-extended immediates, so that each
//! instruction is its handler's own work plus one indirect jump to the next handler (see
//! `exec` for why the dispatch is threaded rather than a central `match`).

use super::exec::{Flow, Machine};
use super::select::handler;

/// Every specialised operation. `K` = immediate operand, `X` = register operand; `64`/`32` =
/// ALU64 / ALU (JMP / JMP32) width. Names say what the run loop does, not how it was encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)]
pub(crate) enum Code {
    // ---- ALU64 ----
    Add64K,
    Add64X,
    Sub64K,
    Sub64X,
    Mul64K,
    Mul64X,
    /// Divisor is a non-zero constant (division by an immediate 0 compiles to `Mov64K 0`).
    Div64K,
    Div64X,
    /// Divisor is a constant other than 0 and -1.
    SDiv64K,
    SDiv64X,
    /// Divisor is a non-zero constant.
    Mod64K,
    Mod64X,
    /// Divisor is a constant other than 0 and -1.
    SMod64K,
    SMod64X,
    Or64K,
    Or64X,
    And64K,
    And64X,
    /// Shift count already masked to 0..=63.
    Lsh64K,
    Lsh64X,
    Rsh64K,
    Rsh64X,
    Arsh64K,
    Arsh64X,
    Xor64K,
    Xor64X,
    Mov64K,
    Mov64X,
    MovSx8To64,
    MovSx16To64,
    MovSx32To64,
    Neg64,
    // ---- ALU32 (results zero-extended) ----
    Add32K,
    Add32X,
    Sub32K,
    Sub32X,
    Mul32K,
    Mul32X,
    Div32K,
    Div32X,
    SDiv32K,
    SDiv32X,
    Mod32K,
    Mod32X,
    SMod32K,
    SMod32X,
    Or32K,
    Or32X,
    And32K,
    And32X,
    Lsh32K,
    Lsh32X,
    Rsh32K,
    Rsh32X,
    Arsh32K,
    Arsh32X,
    Xor32K,
    Xor32X,
    Mov32K,
    Mov32X,
    MovSx8To32,
    MovSx16To32,
    Neg32,
    /// Byte order: `le16` / `le32` truncate on a little-endian machine (`le64` is a [`Code::Nop`]).
    Trunc16,
    Trunc32,
    /// An instruction with no effect (`le64`, `mod64 dst, 0`); it still counts as executed.
    Nop,
    Swap16,
    Swap32,
    Swap64,
    // ---- memory through a register (region table translation) ----
    LdxB,
    LdxH,
    LdxW,
    LdxDW,
    LdxSB,
    LdxSH,
    LdxSW,
    StB,
    StH,
    StW,
    StDW,
    StxB,
    StxH,
    StxW,
    StxDW,
    // ---- memory at a constant offset from r10, bounds proven at compile time ----
    // `a` = byte offset inside the current frame's 512-byte stack.
    StackLdxB,
    StackLdxH,
    StackLdxW,
    StackLdxDW,
    StackLdxSB,
    StackLdxSH,
    StackLdxSW,
    StackStB,
    StackStH,
    StackStW,
    StackStDW,
    StackStxB,
    StackStxH,
    StackStxW,
    StackStxDW,
    /// Atomic read-modify-write; `aux` = [`AtomicKind`] bits, 32-bit access.
    Atomic32,
    /// Atomic read-modify-write; 64-bit access.
    Atomic64,
    /// `dst = b` (`lddw`, including resolved map pointers).
    LdImm64,
    /// Legacy packet loads (`aux` = access size in bytes).
    LdAbs,
    LdInd,
    // ---- control ----
    Ja,
    Jeq64K,
    Jeq64X,
    Jgt64K,
    Jgt64X,
    Jge64K,
    Jge64X,
    Jset64K,
    Jset64X,
    Jne64K,
    Jne64X,
    Jsgt64K,
    Jsgt64X,
    Jsge64K,
    Jsge64X,
    Jlt64K,
    Jlt64X,
    Jle64K,
    Jle64X,
    Jslt64K,
    Jslt64X,
    Jsle64K,
    Jsle64X,
    Jeq32K,
    Jeq32X,
    Jgt32K,
    Jgt32X,
    Jge32K,
    Jge32X,
    Jset32K,
    Jset32X,
    Jne32K,
    Jne32X,
    Jsgt32K,
    Jsgt32X,
    Jsge32K,
    Jsge32X,
    Jlt32K,
    Jlt32X,
    Jle32K,
    Jle32X,
    Jslt32K,
    Jslt32X,
    Jsle32K,
    Jsle32X,
    /// Helper call resolved at load time; `a` = index in the helper table.
    Call,
    /// `bpf_tail_call` (helper 12): control leaves the program on success.
    TailCall,
    /// Call through a register holding a helper id.
    CallX,
    /// bpf-to-bpf call; `a` = callee (relative).
    CallLocal,
    Exit,
    /// An instruction that always faults when executed; `a` = index into the static faults.
    Fault,
}

/// Atomic operation encoding in [`Op::aux`]: low 3 bits the operation, bit 3 = fetch.
pub(crate) mod atomic_kind {
    pub const ADD: u8 = 0;
    pub const OR: u8 = 1;
    pub const AND: u8 = 2;
    pub const XOR: u8 = 3;
    pub const XCHG: u8 = 4;
    pub const CMPXCHG: u8 = 5;
    pub const FETCH: u8 = 8;
}

/// A handler: executes the op at `ip` and continues with the next one (see `exec`).
/// `n` is how many more instructions this chain of handlers may execute before returning to
/// the driver, not counting those already paid for (see `exec` on how runs are paid for).
pub(crate) type Handler = for<'a, 'v> fn(&'a mut Machine<'v>, *const Op, u64) -> Flow;

/// One compiled instruction (32 bytes: a power of two, so op indices are shifts and ops never
/// straddle cache lines).
///
/// Field use by kind:
/// - ALU with immediate: `b` = immediate, sign-extended to 64 bits (ALU32 uses its low half).
/// - loads/stores: `a` = offset as `i32` bits (or stack byte offset), `b` = stored immediate
///   (for an `LdxW` marked `compile::CTX_WORD`: the `xdp_md` word index).
/// - jumps and local calls: `a` = target op index while compiling, turned into the target's
///   distance from this op in bytes (as `i32` bits) by [`Op::link`]; `b` = compared immediate.
///   That is the layout of the counted copy. In the fast copy (`Compiled::add` moves them
///   after fusion) `b` is the target op's *address* and `a` the compared immediate, and so
///   for superinstructions ending in a jump (see `fuse`). Why an address: a taken jump's
///   next op address is a load away from the jump op either way, but a relative target adds
///   a sign extension and an add to that dependency chain, and every op after the jump waits
///   for it (measured: the sum loop 0.95 -> 0.76 ns per instruction). `Compiled::relink`
///   rewrites the addresses whenever the op array may have moved.
/// - `Call`: `a` = helper index.
///
/// `run` (every op): how many instructions execute from this op up to and including the next
/// op that cannot fall through (see [`Op::ends_run`]) unless a conditional jump leaves
/// earlier; what a jump into this op pays for at once,
/// saturated at `u16::MAX` like `tr` / `fr` (a chunk can never pay that much, so such a run
/// executes in the counted copy, which does not use it).
/// `x`: the memory offset of superinstructions that load and then jump.
/// `tr` / `fr` (conditional jumps, `ja`, and superinstructions ending in a conditional
/// jump): `run` of the taken target and of the fall-through op, saturated at `u16::MAX`
/// (more than a chunk can pay anyway), so that the jump need not load them from there
/// before deciding how to continue. In the fast copy, ops that end in a conditional jump
/// hold [`Op::taken_delta`] in `tr` and `fr` instead (their fall-through pays nothing
/// there, and a target's run is in the target).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
pub(crate) struct Op {
    pub h: Handler,
    pub code: Code,
    pub dst: u8,
    pub src: u8,
    pub aux: u8,
    pub a: u32,
    pub b: u64,
    pub run: u16,
    pub tr: u16,
    pub fr: u16,
    pub x: i16,
}

const _: () = assert!(std::mem::size_of::<Op>() == 32);

impl Op {
    pub(crate) fn new(code: Code) -> Self {
        Op {
            h: handler(code, false),
            code,
            dst: 0,
            src: 0,
            aux: 0,
            a: 0,
            b: 0,
            run: 1,
            tr: u16::MAX,
            fr: u16::MAX,
            x: 0,
        }
    }

    /// Memory offset of a load/store through a register.
    #[inline(always)]
    pub(crate) fn off(&self) -> u64 {
        self.a as i32 as i64 as u64
    }

    /// The low half of `b` as an `i32`, sign-extended (superinstructions pack two values).
    #[inline(always)]
    pub(crate) fn b_lo_i32(&self) -> u64 {
        self.b as u32 as i32 as i64 as u64
    }

    /// The high half of `b` as an `i32`, sign-extended. Read as its own 4 bytes (the op is
    /// `repr(C)` and the target little-endian), so that it is one sign-extending load instead
    /// of a load, a shift and an extension. Volatile only to keep LLVM from merging it with
    /// the load of the low half back into one load plus a shift.
    #[inline(always)]
    pub(crate) fn b_hi_i32(&self) -> u64 {
        let p = std::ptr::addr_of!(self.b).cast::<i32>();
        // SAFETY: `b` is 8 bytes, so its upper 4 lie inside `self`; `b` is 8-aligned.
        let v = unsafe {
            p.add(if cfg!(target_endian = "little") { 1 } else { 0 })
                .read_volatile()
        };
        v as i64 as u64
    }

    /// Bits 32..48 of `b` as an `i16`, sign-extended (the memory offset of fused loads).
    #[inline(always)]
    pub(crate) fn b_hi_i16(&self) -> u64 {
        let p = std::ptr::addr_of!(self.b).cast::<i16>();
        // SAFETY: as in `b_hi_i32`; bits 32..48 are the 5th and 6th bytes on little-endian.
        let v = unsafe {
            p.add(if cfg!(target_endian = "little") { 2 } else { 1 })
                .read_volatile()
        };
        v as i64 as u64
    }

    /// Immediate of a conditional jump, sign-extended to 64 bits, in the counted copy (`C`)
    /// or the fast copy (see the layouts above).
    #[inline(always)]
    pub(crate) fn jimm64<const C: bool>(&self) -> u64 {
        (if C { self.b as u32 } else { self.a }) as i32 as i64 as u64
    }

    /// Immediate of a JMP32 conditional jump (as [`Op::jimm64`]).
    #[inline(always)]
    pub(crate) fn jimm32<const C: bool>(&self) -> u32 {
        if C { self.b as u32 } else { self.a }
    }

    /// The target of a jump or local call of the fast copy (see `Compiled::relink`).
    #[inline(always)]
    pub(crate) fn fast_target(&self) -> *const Op {
        self.b as usize as *const Op
    }

    /// Moves a plain jump or local call of the fast copy to the fast layout: the immediate
    /// into `a` (`b` then waits for `Compiled::relink`). Returns the target's distance in ops.
    pub(crate) fn make_fast_layout(&mut self) -> isize {
        let rel = self.rel();
        self.a = self.b as u32;
        self.b = 0;
        rel
    }

    /// Distance to the jump/call target in ops (after [`Op::link`]).
    pub(crate) fn rel(&self) -> isize {
        (self.a as i32 as isize) / std::mem::size_of::<Op>() as isize
    }

    /// Distance to the jump/call target in bytes (after [`Op::link`]): what the run loop adds
    /// to the op's address, one instruction fewer than scaling an op count per jump.
    #[inline(always)]
    pub(crate) fn rel_bytes(&self) -> isize {
        self.a as i32 as isize
    }

    /// The `a` field for a target `ops` ops away (see [`Op::rel_bytes`]). `compile` bounds
    /// programs to [`MAX_PROGRAM_SLOTS`](super::compile::MAX_PROGRAM_SLOTS) ops, so the byte
    /// distance fits an `i32`.
    pub(crate) fn rel_field(ops: isize) -> u32 {
        (ops * std::mem::size_of::<Op>() as isize) as i32 as u32
    }

    /// Whether `a` holds a control-flow target (absolute while compiling).
    pub(crate) fn has_target(&self) -> bool {
        self.is_cond_jump() || matches!(self.code, Code::Ja | Code::CallLocal)
    }

    /// Whether this is a conditional jump.
    pub(crate) fn is_cond_jump(&self) -> bool {
        (Code::Jeq64K as u8..=Code::Jsle32X as u8).contains(&(self.code as u8))
    }

    /// Whether this op ends a run: it never continues with the next op in the same run
    /// (`ja`, a bpf-to-bpf call, whose return pays anew) or may leave for elsewhere (exit, tail
    /// call, `callx`, fault). Conditional jumps do not: a run goes on through their
    /// fall-through, and taking one gives the rest back (see `exec`).
    pub(crate) fn ends_run(&self) -> bool {
        matches!(
            self.code,
            Code::Ja | Code::CallLocal | Code::Exit | Code::TailCall | Code::CallX | Code::Fault
        )
    }

    /// What taking the conditional jump that ends this fast-copy op costs: the target's run
    /// less the fall-through's run (paid for, given back), for `exec::taken`; exact, so that
    /// `exec::taken_short` can rebuild the budget from the target's run. Only meaningful
    /// after [`Op::set_taken_delta`]. (The two halves are adjacent, so this is one load.)
    #[inline(always)]
    pub(crate) fn taken_delta(&self) -> i64 {
        (u32::from(self.tr) | u32::from(self.fr) << 16) as i32 as i64
    }

    /// Replaces `tr` and `fr` with [`Op::taken_delta`], `tr - fr` as an `i32` (low half in
    /// `tr`), for an op of the fast copy that ends in a conditional jump.
    pub(crate) fn set_taken_delta(&mut self) {
        let d = (i32::from(self.tr) - i32::from(self.fr)) as u32;
        self.tr = d as u16;
        self.fr = (d >> 16) as u16;
    }

    /// Turns the absolute target (an op index) of the op at index `at` into a relative one,
    /// in bytes.
    pub(crate) fn link(&mut self, at: usize) {
        if self.has_target() {
            self.a = Op::rel_field(self.a as isize - at as isize);
        }
    }
}
