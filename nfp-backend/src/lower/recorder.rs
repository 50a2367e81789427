//! Per-instruction facts the lowering needs beyond [`verifier::InsnFacts`], collected through
//! the verifier's offload hooks (the verifier itself is not changed).
//!
//! Why: the NFP JIT translates each instruction once, so it needs what holds on *every* path
//! reaching it — the constant stack offset of an access (to address it through a local-memory
//! window), the proven packet range at a packet load (to widen it into a packet-cache read),
//! and the ranges of multiply/divide operands (16x16 multiply, divide by a constant). The
//! verifier's `InsnFacts` carry the pointer kind and the *result* range only, so this hook
//! records the *operand* state before each instruction, unioned over all visits.

use verifier::bounds::branch::branch_outcome;
use verifier::reg::{RegState, RegType};
use verifier::state::VerifierState;
use verifier::{InsnFacts, OffloadHooks, ScalarBounds};
use vm_core::isa::{Insn, Operand, R10, Width};

/// What the base register of a memory access held, over all paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseFact {
    /// No visit recorded (dead code or not a memory access).
    Unknown,
    /// A stack pointer with the constant offset `off` from its frame's `r10`; `same_frame` when
    /// that frame is the executing function's own.
    Stack { same_frame: bool, off: i64 },
    /// A stack pointer whose constant offset differs between paths but whose word alignment
    /// does not: `(512 + off) % 4 == align` (addressed through its register value).
    StackAligned { align: u8 },
    /// A packet pointer with fixed offset `off` and `range` bytes proven past its packet base.
    Packet { off: i32, range: i32 },
    /// Different visits disagree (or the offset is not constant).
    Varying,
}

/// Operand facts of one instruction slot.
///
/// Scalar operand *ranges* are deliberately not recorded: a union over visited states misses
/// paths pruned against a state whose scalar was imprecise (see `ranges`). What is recorded is
/// safe under pruning: pointer offsets (compared exactly), packet ranges (a pruned state's
/// range is at least the explored one's) and branch outcomes (deciding a branch makes its
/// operands precise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperandFacts {
    /// The base pointer of a load, store or atomic.
    pub base: BaseFact,
    /// A conditional jump: some visit may take it.
    pub may_take: bool,
    /// A conditional jump: some visit may fall through.
    pub may_fall: bool,
    /// A conditional jump between two registers: whether both held packet-family pointers
    /// near their packet on every visit (`Some(true)`), not on some visit (`Some(false)`), or
    /// no visit was recorded (`None`).
    pub packet_compare: Option<bool>,
}

impl Default for OperandFacts {
    fn default() -> Self {
        OperandFacts {
            base: BaseFact::Unknown,
            may_take: false,
            may_fall: false,
            packet_compare: None,
        }
    }
}

/// The hook: wraps an optional inner backend hook (the feasibility checker) so one walk can
/// serve both.
pub struct Recorder<'h> {
    /// Facts per slot.
    pub facts: Vec<OperandFacts>,
    inner: Option<&'h mut dyn OffloadHooks>,
}

impl<'h> Recorder<'h> {
    /// A recorder for a program of `len` slots.
    pub fn new(len: usize, inner: Option<&'h mut dyn OffloadHooks>) -> Recorder<'h> {
        Recorder {
            facts: vec![OperandFacts::default(); len],
            inner,
        }
    }
}

fn base_of(state: &VerifierState, regno: u8) -> BaseFact {
    let reg = state.reg(regno);
    let cur = state.curframe();
    match reg.ty {
        RegType::Stack { frame } => match reg.var.const_value() {
            Some(v) => BaseFact::Stack {
                same_frame: usize::from(frame) == cur,
                off: i64::from(reg.off).wrapping_add(v as i64),
            },
            None => BaseFact::Varying,
        },
        RegType::Packet | RegType::PacketMeta => BaseFact::Packet {
            off: reg.off,
            range: reg.range,
        },
        _ => BaseFact::Unknown,
    }
}

/// Farthest a packet-family pointer may be from the start of its packet buffer, either way,
/// for `near_packet`.
pub const NEAR_PACKET: i64 = 0xffff;

// What `near_packet` relies on: every packet buffer sits far enough above 0 and below 2^32
// that a pointer within NEAR_PACKET bytes of it is positive and fits the low word.
const _: () = assert!(
    crate::exec::CTM_PKT_BASE as i64 > NEAR_PACKET
        && crate::exec::ctm_packet_buffer(u8::MAX) as i64
            + crate::exec::PKT_BUF_BYTES as i64
            + NEAR_PACKET
            < 1 << 32
);

/// Whether `reg` is a packet, packet-meta or packet-end pointer whose whole offset (fixed
/// plus variable) is within [`NEAR_PACKET`] bytes of the pointer it was derived from. Why it
/// matters: such a pointer is a small positive number on the NIC (a packet buffer address,
/// `ctm_packet_buffer`, is at least 64 KiB and below 2 MiB), so its 64-bit value is its low
/// word, and a compare of two of them can be done on the low words (`narrow_cmp`). Pointer
/// types and offsets are safe to take from the walk: pruning compares them exactly.
fn near_packet(reg: &RegState) -> bool {
    if !matches!(
        reg.ty,
        RegType::Packet | RegType::PacketMeta | RegType::PacketEnd
    ) {
        return false;
    }
    let off = i64::from(reg.off);
    off.saturating_add(reg.var.smin) >= -NEAR_PACKET
        && off.saturating_add(reg.var.smax) <= NEAR_PACKET
}

fn merge(old: BaseFact, new: BaseFact) -> BaseFact {
    match (old, new) {
        (BaseFact::Unknown, n) => n,
        (o, BaseFact::Unknown) => o,
        (BaseFact::Stack { .. }, BaseFact::Stack { .. }) if old == new => old,
        (BaseFact::Packet { off: a, range: r1 }, BaseFact::Packet { off: b, range: r2 })
            if a == b =>
        {
            BaseFact::Packet {
                off: a,
                range: r1.min(r2),
            }
        }
        (o, n) => match (stack_align(o), stack_align(n)) {
            (Some(a), Some(b)) if a == b => BaseFact::StackAligned { align: a },
            _ => BaseFact::Varying,
        },
    }
}

/// The word alignment of a stack fact's address (`A22` and every frame base are aligned).
fn stack_align(f: BaseFact) -> Option<u8> {
    match f {
        BaseFact::Stack { off, .. } => Some(off.wrapping_add(512).rem_euclid(4) as u8),
        BaseFact::StackAligned { align } => Some(align),
        _ => None,
    }
}

impl OffloadHooks for Recorder<'_> {
    fn insn_hook(&mut self, pc: usize, insn: &Insn, state: &VerifierState) -> Result<(), String> {
        if let Some(f) = self.facts.get_mut(pc) {
            let base = match *insn {
                Insn::Load { src, .. } => Some(src),
                Insn::Store { dst, .. } | Insn::Atomic { dst, .. } => Some(dst),
                _ => None,
            };
            if let Some(b) = base.filter(|&b| b <= R10) {
                f.base = merge(f.base, base_of(state, b));
            }
            if let Insn::Jmp {
                cond,
                width,
                dst,
                src,
                ..
            } = *insn
            {
                let d = state.reg(dst.min(R10));
                let s = match src {
                    Operand::Reg(r) => Some(*state.reg(r.min(R10))),
                    Operand::Imm(i) => Some(RegState {
                        ty: RegType::Scalar,
                        var: ScalarBounds::constant(match width {
                            Width::W64 => i64::from(i) as u64,
                            Width::W32 => u64::from(i as u32),
                        }),
                        ..*d
                    }),
                };
                let outcome = match s {
                    Some(s) if d.ty == RegType::Scalar && s.ty == RegType::Scalar => {
                        branch_outcome(cond, width, &d.var, &s.var)
                    }
                    _ => None,
                };
                if let (Width::W64, Operand::Reg(r)) = (width, src) {
                    let both = near_packet(d) && near_packet(state.reg(r.min(R10)));
                    f.packet_compare = Some(f.packet_compare.unwrap_or(true) && both);
                }
                match outcome {
                    Some(true) => f.may_take = true,
                    Some(false) => f.may_fall = true,
                    None => {
                        f.may_take = true;
                        f.may_fall = true;
                    }
                }
            }
        }
        match self.inner.as_deref_mut() {
            Some(h) => h.insn_hook(pc, insn, state),
            None => Ok(()),
        }
    }

    fn finalize(&mut self, facts: &[InsnFacts]) -> Result<(), (usize, String)> {
        match self.inner.as_deref_mut() {
            Some(h) => h.finalize(facts),
            None => Ok(()),
        }
    }
}
