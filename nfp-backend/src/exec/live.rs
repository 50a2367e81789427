//! Which registers a program may read before it writes them (its live-in registers), so
//! that nic-sim's fused start-and-run (`fast_run::fused`) clears only those at a packet
//! start instead of all 128 GPRs and transfer registers.
//!
//! # Why
//!
//! A packet starts with every register 0 (see the module docs of [`super`]). Clearing the
//! 512 bytes took 33 host instructions per packet (callgrind, `simspeed pre`), about an
//! eighth of the per-packet start; clearing only the live-in ones (none for the demo) took
//! the simulation from 1,478 to 1,452 host instructions per frame (without libc
//! memset/memcpy). A register the program writes before any read on every path may hold
//! anything at the start: no run can observe it. So the fused start clears the live-in
//! ones only; `Thread::start` (stepping, and anything that is not given the program) still
//! clears all of them. What differs afterwards is only the register file itself, in
//! registers the packet never wrote: no output byte, map, segment, cycle, event or fault
//! message depends on them (`tests::registers_not_live_in_may_hold_anything` runs random
//! code with noise in every other register against all cleared; `tests_thread` the fused
//! run against `start` then the run).
//!
//! The same analysis over the thread's other state (LM indexes, condition codes, the
//! multiplier, the count of the last ALU instruction: [`state`]) gives what a program
//! needs reset even when only its own packets ran since the last full reset
//! ([`reset_needs`]; nothing for the demo): `Thread::reset_for` then skips those resets
//! (8 host instructions per frame less).
//!
//! # Exactness
//!
//! The analysis over-approximates reads and under-approximates writes, so a register that
//! some run might read before writing is always live-in:
//!
//! - reads are every register operand an instruction names, whether or not the result
//!   uses it (both sources of every ALU, shift and command, the destination of partial
//!   writes, the write transfer registers a command stores or adds, the argument words a
//!   firmware helper uses, R0 at `Exit`);
//! - writes count only where they happen whenever execution goes past the instruction (an
//!   instruction that faults stops the thread, so nothing after it reads): a full
//!   destination write, a read command's transfer registers, a helper's R0;
//! - control flow follows every way the executor can go: the next address from every
//!   instruction but `Exit` (also after an unconditional branch), every branch target from
//!   the last of its defer slots, and from every `rtn` (an address in a register) every
//!   address. "Written before" is then a must-analysis (intersection over predecessors)
//!   from the state `load` leaves (A22, B22 and R1 in both banks set).

use super::thread::slot;
use super::units::cmd_shape;
use super::{STATIC_GPR, fw};
use crate::target::{
    AluOp, CmdAction, Cond, Csr, Dst, FwHelper, ImmedWidth, MeInsn, MulStep, ShiftAmount, Src,
};

/// A set of register slots `0..slot::REGS` (bit `s` = slot `s`).
type Regs = u128;

const _: () = assert!(slot::REGS == 128);

/// Most 16-byte chunks (four slots) the fused start clears one by one; with more, clearing
/// all 32 at once (32 stores, no loop) is cheaper than ~5 host instructions per chunk.
const MAX_CHUNKS: u32 = 6;

/// The registers `load` sets itself (A22 = stack base, B22 = length, R1 low word in both
/// banks = packet vector): never live-in.
const ENTRY: Regs = bit(slot::A + STATIC_GPR as usize)
    | bit(slot::B + STATIC_GPR as usize)
    | bit(slot::A + 2)
    | bit(slot::B + 2);

const fn bit(s: usize) -> Regs {
    1 << s
}

/// The 16-byte chunks of the register file (bit `k` = slots `4k .. 4k + 4`) that hold a
/// live-in register of `code`, or `u32::MAX` for "clear all" (more than [`MAX_CHUNKS`]).
pub(super) fn live_chunks(code: &[MeInsn]) -> u32 {
    let chunks = chunks(live_in(code));
    if chunks.count_ones() > MAX_CHUNKS {
        u32::MAX
    } else {
        chunks
    }
}

/// The 16-byte chunks of the register file that hold a register of `regs` (bit `k` =
/// slots `4k .. 4k + 4`).
pub(super) fn chunks(regs: Regs) -> u32 {
    (0..32).fold(0, |c, k| {
        if (regs >> (4 * k)) & 0xf != 0 {
            c | 1 << k
        } else {
            c
        }
    })
}

/// Whole-register writes (`immed`), for test programs that write some registers before
/// reading them (random code alone reads nearly every register it names first).
#[cfg(test)]
pub(super) fn whole_write() -> impl proptest::strategy::Strategy<Value = MeInsn> {
    use crate::target::Bank;
    use proptest::prelude::*;
    (0u8..4, 0u8..32, any::<u16>()).prop_map(|(k, n, v)| {
        let dst = match k {
            0 => Dst::Both(n),
            1 => Dst::Gpr(Bank::A, n),
            2 => Dst::Gpr(Bank::B, n),
            _ => Dst::Xfer(n),
        };
        MeInsn::Immed {
            dst,
            imm: v,
            shift: 0,
            invert: false,
            width: ImmedWidth::All,
        }
    })
}

/// The register slots some run of `code` from address 0 may read before writing them
/// (see the module docs).
pub(super) fn live_in(code: &[MeInsn]) -> Regs {
    let effects: Vec<(Regs, Regs)> = code.iter().map(effect).collect();
    live(code, ENTRY, &effects)
}

/// The registers `load` sets at entry (A22, B22, R1's low words) that some run of `code`
/// may read before writing them had `load` not set them.
pub(super) fn entry_live(code: &[MeInsn]) -> Regs {
    let effects: Vec<(Regs, Regs)> = code.iter().map(effect).collect();
    live(code, Regs::NONE, &effects) & ENTRY
}

/// Bit sets the analysis runs on: registers ([`Regs`]) and the other thread state
/// ([`state`]).
trait Bits:
    Copy
    + Eq
    + std::ops::BitAnd<Output = Self>
    + std::ops::BitOr<Output = Self>
    + std::ops::Not<Output = Self>
{
    const NONE: Self;
}

impl Bits for u128 {
    const NONE: u128 = 0;
}

impl Bits for u16 {
    const NONE: u16 = 0;
}

/// What some run of `code` from address 0, with `entry` written, may read before writing
/// it, given each instruction's `(may read, surely writes)`.
fn live<T: Bits>(code: &[MeInsn], entry: T, effects: &[(T, T)]) -> T {
    let n = code.len();
    let all = !T::NONE;
    // Predecessors other than the fall-through (`i - 1`, from every non-`Exit`).
    let mut jumps_to: Vec<Vec<usize>> = vec![Vec::new(); n];
    // Addresses after which an `rtn` jumps (to any address).
    let mut rtn_from = Vec::new();
    for (i, insn) in code.iter().enumerate() {
        match *insn {
            MeInsn::Br { target, defer, .. } | MeInsn::BrBit { target, defer, .. } => {
                let from = i + usize::from(defer);
                // A target out of range faults; a last defer slot out of range too.
                if usize::from(target) < n && from < n {
                    jumps_to[usize::from(target)].push(from);
                }
            }
            MeInsn::Rtn { defer, .. } => {
                let from = i + usize::from(defer);
                if from < n {
                    rtn_from.push(from);
                }
            }
            _ => {}
        }
    }
    // Must-written before each address: start at "all" (nothing reached yet) and lower
    // to a fixed point (monotone, so it ends).
    let mut w_in = vec![all; n];
    let out = |w_in: &[T], i: usize| w_in[i] | effects[i].1;
    loop {
        let rtn = rtn_from.iter().fold(all, |m, &f| m & out(&w_in, f));
        let mut changed = false;
        for i in 0..n {
            let mut w = if i == 0 { entry } else { all };
            if i > 0 && !matches!(code[i - 1], MeInsn::Exit) {
                w = w & out(&w_in, i - 1);
            }
            for &p in &jumps_to[i] {
                w = w & out(&w_in, p);
            }
            w = w & rtn;
            if w != w_in[i] {
                w_in[i] = w;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // An address never reached keeps "all" and adds nothing.
    (0..n).fold(T::NONE, |live, i| live | (effects[i].0 & !w_in[i]))
}

/// Thread state besides the registers that a packet start resets, as bits for the same
/// analysis: bit `i` (0..=3) is LM index `i` (its `ActLMAddr` and hazard count).
pub(super) mod state {
    /// The condition codes' Z and N (one result).
    pub const ZN: u16 = 1 << 4;
    pub const C: u16 = 1 << 5;
    pub const V: u16 = 1 << 6;
    /// The count of the last ALU instruction (indirect shifts).
    pub const ALU_AT: u16 = 1 << 7;
    /// The multiplier's state.
    pub const MUL: u16 = 1 << 8;
}

/// The groups of [`state`] that a packet of `code` may read before it writes them and
/// that some instruction of `code` may change: those a fused start must reset even when
/// only packets of `code` ran since the last full reset, each to its exit (see
/// `Thread::load_as`). Empty for most programs: they set the LM index they use and the
/// condition codes before they read them, and what they never change keeps its reset value.
pub(super) fn reset_needs(code: &[MeInsn]) -> u16 {
    let effects: Vec<(u16, u16, u16)> = code.iter().map(state_effect).collect();
    let must: Vec<(u16, u16)> = effects.iter().map(|&(r, w, _)| (r, w)).collect();
    let may = effects.iter().fold(0, |m, &(_, _, w)| m | w);
    live(code, 0, &must) & may
}

/// The LM index an operand uses (none for out-of-range indexes, which fault).
fn lm_src(s: Src) -> u16 {
    match s {
        Src::Lm { index, .. } if index < 4 => 1 << index,
        _ => 0,
    }
}

fn lm_dst(d: Dst) -> u16 {
    match d {
        Dst::Lm { index, .. } if index < 4 => 1 << index,
        _ => 0,
    }
}

/// What `insn` may read of [`state`], surely writes when execution goes on past it, and
/// may write at all. The count of the last ALU instruction counts as never surely written:
/// the fast path's ALU ops do not record it (the reference ones do).
fn state_effect(insn: &MeInsn) -> (u16, u16, u16) {
    use state::{ALU_AT, C, MUL, V, ZN};
    match *insn {
        MeInsn::Alu { op, dst, a, b } => {
            let carry = matches!(op, AluOp::AddCarry | AluOp::SubCarry);
            let arith = carry || matches!(op, AluOp::Add | AluOp::Sub);
            let reads = lm_src(a) | lm_src(b) | lm_dst(dst) | if carry { C } else { 0 };
            let cc = ZN | if arith { C | V } else { 0 };
            (reads, cc, cc | ALU_AT)
        }
        MeInsn::Shf {
            dst, a, b, amount, ..
        } => {
            let indirect = if amount == ShiftAmount::Indirect {
                ALU_AT
            } else {
                0
            };
            (lm_src(a) | lm_src(b) | lm_dst(dst) | indirect, ZN, ZN)
        }
        MeInsn::Immed { dst, .. } => (lm_dst(dst), 0, 0),
        MeInsn::LdField { dst, b, .. } => (lm_src(b) | lm_dst(dst), 0, 0),
        MeInsn::Mul { step, dst, a, b } => {
            let ops = lm_src(a) | lm_src(b) | lm_dst(dst);
            match step {
                MulStep::Start32 | MulStep::Start16 => (ops, MUL, MUL),
                _ => (ops | MUL, 0, MUL),
            }
        }
        MeInsn::Br { cond, .. } => {
            let reads = match cond {
                Cond::Eq | Cond::Ne | Cond::Mi | Cond::Pl => ZN,
                Cond::Hs | Cond::Lo => C,
                Cond::Vs | Cond::Vc => V,
                Cond::Ge | Cond::Lt | Cond::Le | Cond::Gt => ZN | V,
                Cond::Always => 0,
            };
            (reads, 0, 0)
        }
        MeInsn::BrBit { src, .. } | MeInsn::Rtn { src, .. } => (lm_src(src), 0, 0),
        MeInsn::Cmd { a, b, .. } => (lm_src(a) | lm_src(b), 0, 0),
        MeInsn::CsrRead { csr, dst } => {
            let index = match csr {
                Csr::ActLmAddr(i) if i < 4 => 1 << i,
                _ => 0,
            };
            (index | lm_dst(dst), 0, 0)
        }
        MeInsn::CsrWrite { csr, src } => {
            let index = match csr {
                Csr::ActLmAddr(i) if i < 4 => 1 << i,
                _ => 0,
            };
            (lm_src(src), index, index)
        }
        MeInsn::FwCall { .. } | MeInsn::Exit | MeInsn::Nop => (0, 0, 0),
    }
}

/// The slot of a source operand, as `Thread::read` reads it (none for out-of-range numbers,
/// which fault without reading).
fn src(s: Src) -> Regs {
    match s {
        Src::Gpr(b, n) if n < 32 => bit(super::thread::bank(b) + usize::from(n)),
        Src::Xfer(n) if n < 32 => bit(slot::XFER_RD + usize::from(n)),
        _ => 0,
    }
}

/// The slots a destination write stores, as `Thread::write` (both banks for `Both`).
fn dst(d: Dst) -> Regs {
    match d {
        Dst::Both(n) if n < 32 => bit(slot::A + usize::from(n)) | bit(slot::B + usize::from(n)),
        Dst::Gpr(b, n) if n < 32 => bit(super::thread::bank(b) + usize::from(n)),
        Dst::Xfer(n) if n < 32 => bit(slot::XFER_WR + usize::from(n)),
        _ => 0,
    }
}

/// The slots reading a destination reads (`Thread::read_dst`: bank A for `Both`).
fn dst_read(d: Dst) -> Regs {
    match d {
        Dst::Both(n) if n < 32 => bit(slot::A + usize::from(n)),
        other => dst(other),
    }
}

/// `count` slots from `first` (clipped to the file).
fn span(first: usize, count: usize) -> Regs {
    (first..first + count)
        .filter(|&s| s < slot::REGS)
        .fold(0, |m, s| m | bit(s))
}

/// The low word (bank A) of eBPF argument register `Rn`, and its high word unless the
/// helper reads only the low one (`fw::low_word_args`).
fn arg(h: FwHelper, n: usize) -> Regs {
    let lo = bit(slot::A + 2 * n);
    if fw::low_word_args(h) & (1 << n) != 0 {
        lo
    } else {
        lo | bit(slot::A + 2 * n + 1)
    }
}

/// What `insn` may read and what it surely writes when execution goes on past it.
fn effect(insn: &MeInsn) -> (Regs, Regs) {
    match *insn {
        MeInsn::Alu { dst: d, a, b, .. } | MeInsn::Shf { dst: d, a, b, .. } => {
            (src(a) | src(b), dst(d))
        }
        MeInsn::Immed { dst: d, width, .. } => {
            let reads = if width == ImmedWidth::All {
                0
            } else {
                dst_read(d)
            };
            (reads, dst(d))
        }
        MeInsn::LdField {
            dst: d,
            b,
            zero_fill,
            ..
        } => {
            let old = if zero_fill { 0 } else { dst_read(d) };
            (src(b) | old, dst(d))
        }
        MeInsn::Mul { step, dst: d, a, b } => {
            let writes = match step {
                MulStep::Last | MulStep::LastHigh => dst(d),
                _ => 0,
            };
            (src(a) | src(b), writes)
        }
        MeInsn::Br { .. } => (0, 0),
        MeInsn::BrBit { src: s, .. } | MeInsn::Rtn { src: s, .. } => (src(s), 0),
        MeInsn::Cmd {
            action,
            xfer,
            count,
            a,
            b,
            ..
        } => {
            let ops = src(a) | src(b);
            let Ok(shape) = cmd_shape(action, xfer, count) else {
                return (ops, 0);
            };
            let (x, words) = (usize::from(xfer), shape.words as usize);
            match action {
                CmdAction::Read8 | CmdAction::Read32 => (ops, span(slot::XFER_RD + x, words)),
                CmdAction::Write8 | CmdAction::Write32 | CmdAction::AtomicAdd => {
                    (ops | span(slot::XFER_WR + x, words), 0)
                }
            }
        }
        MeInsn::CsrRead { dst: d, .. } => (0, dst(d)),
        MeInsn::CsrWrite { src: s, .. } => (src(s), 0),
        MeInsn::FwCall { helper } => {
            // The argument registers `fw::call` reads for each helper.
            let args: &[usize] = match helper {
                FwHelper::MapLookup | FwHelper::MapDelete => &[1, 2],
                FwHelper::MapUpdate => &[1, 2, 3, 4],
                FwHelper::Random => &[],
                FwHelper::AdjustHead | FwHelper::AdjustTail => &[2],
                FwHelper::PerfEventOutput => &[2, 3, 4, 5],
            };
            let reads = args.iter().fold(0, |m, &n| m | arg(helper, n));
            let r0 = span(slot::A, 2) | span(slot::B, 2);
            (reads, r0)
        }
        // The return value, R0 (bank A).
        MeInsn::Exit => (span(slot::A, 2), 0),
        MeInsn::Nop => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cost::Latencies;
    use crate::exec::tests_props::{maps, wild_insn};
    use crate::exec::{
        Event, ExecError, FastProgram, Lmem, MAX_PACKET, MemState, Segment, SharedMem,
        THREADS_PER_ME, Thread,
    };
    use crate::target::decode::tests::insn;
    use crate::target::{AluOp, Bank, Cond};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    /// What a run shows besides the registers: its events (or error), packet, memories,
    /// maps, segments and counts.
    type Seen = (
        Vec<Result<Event, ExecError>>,
        Vec<u8>,
        Vec<u8>,
        (Vec<u8>, Vec<u8>, u64),
        Vec<(Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>)>,
        Vec<Segment>,
        (u64, u32, bool),
    );

    /// Runs `frame` on a started thread of context `index`, by the reference loop
    /// (`reference`) or the fast path to its end, after overwriting the registers in
    /// `garbage` with noise from `seed`: what it shows, and the register file.
    #[allow(clippy::too_many_arguments)]
    fn run(
        code: &[MeInsn],
        prog: &FastProgram,
        frame: &[u8],
        index: u8,
        budget: u64,
        garbage: Regs,
        seed: u64,
        reference: bool,
    ) -> (Seen, Vec<u32>) {
        let lat = Latencies::NFP4000;
        let (mut t, mut lmem, mut shared, mut maps) = (
            Thread::new(index),
            Lmem::new(),
            SharedMem::new(5, 0),
            maps(),
        );
        let mut events = Vec::new();
        let mut segs = Vec::new();
        match t.start(&mut lmem, frame) {
            Err(e) => events.push(Err(e)),
            Ok(()) => {
                let mut x = seed | 1;
                for (s, r) in t.file[..slot::REGS].iter_mut().enumerate() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if garbage & bit(s) != 0 {
                        *r = x as u32;
                    }
                }
                let mut mem = MemState {
                    lmem: &mut lmem,
                    shared: &mut shared,
                    maps: &mut maps,
                    lat: &lat,
                };
                if reference {
                    loop {
                        let e = t.run_until_event(code, &mut mem, budget);
                        let last = !matches!(e, Ok(Event::Swap { .. }));
                        events.push(e);
                        if last {
                            break;
                        }
                    }
                } else {
                    events.push(t.run_to_end_fast(prog, &mut mem, budget, None, &mut segs));
                }
            }
        }
        let seen = (
            events,
            t.packet().to_vec(),
            lmem.bytes().to_vec(),
            (
                shared.cls().to_vec(),
                shared.imem().to_vec(),
                shared.prandom_state(),
            ),
            maps.iter()
                .map(|m| (m.entries(), m.slab().to_vec()))
                .collect(),
            segs,
            (t.insns(), t.pc(), t.is_running()),
        );
        (seen, t.file.to_vec())
    }

    /// A register not live-in may hold anything when a packet starts (an entry register
    /// too, unless `entry_live`): on random code (valid and invalid operands, every control
    /// flow, helpers, faults, tiny budgets), the reference loop and the fast path show the
    /// same with noise in every other register as with all of them cleared (or set by the
    /// start), and the registers differ only where the noise stayed.
    #[test]
    fn registers_not_live_in_may_hold_anything() {
        let cases = std::env::var("NFP_FAST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000u32);
        let frame = prop_oneof![
            9 => prop::collection::vec(any::<u8>(), 14..100),
            1 => prop::collection::vec(any::<u8>(), 0..14),
            1 => Just(vec![0u8; MAX_PACKET as usize + 1]),
        ];
        let strategy = (
            prop::collection::vec(whole_write(), 0..24),
            prop::collection::vec(
                prop_oneof![8 => insn(), 2 => wild_insn(), 1 => jump()],
                1..40,
            ),
            frame,
            (
                0u8..THREADS_PER_ME,
                prop_oneof![Just(400u64), 1u64..30],
                any::<u64>(),
            ),
        );
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |(prefix, body, frame, (index, budget, seed))| {
            let code: Vec<MeInsn> = prefix.into_iter().chain(body).collect();
            let live = live_in(&code);
            // Also in the entry registers the program does not read before writing them
            // (`entry_live`; the fused start may leave those as an earlier packet left them).
            let garbage = !(live | entry_live(&code));
            // What the start sets (the entry registers), where the run did not write.
            let mut started = Thread::new(index);
            let _ = started.start(&mut Lmem::new(), &frame);
            let prog = FastProgram::new(&code);
            for reference in [true, false] {
                let (a, fa) = run(&code, &prog, &frame, index, budget, 0, seed, reference);
                let (b, fb) = run(
                    &code, &prog, &frame, index, budget, garbage, seed, reference,
                );
                // Equal, or never written by the run (as started in `a`, noise in `b`).
                let kept = |s: usize| garbage & bit(s) != 0 && fa[s] == started.file[s];
                let regs_ok = (0..slot::REGS).all(|s| fa[s] == fb[s] || kept(s))
                    && fa[slot::REGS..] == fb[slot::REGS..];
                if a != b || !regs_ok {
                    return Err(TestCaseError::fail(format!(
                        "reference {reference}, live {live:#x}\n{a:?}\n{b:?}\n{}",
                        crate::target::print_program(&code)
                    )));
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }

    /// Branches and returns to addresses inside short programs (the general strategies'
    /// targets are mostly out of range).
    fn jump() -> impl Strategy<Value = MeInsn> {
        (0u8..64, 0u8..4, any::<bool>()).prop_map(|(t, defer, rtn)| {
            if rtn {
                MeInsn::Rtn {
                    src: Src::Imm(t),
                    defer,
                }
            } else {
                MeInsn::Br {
                    cond: Cond::Ne,
                    target: u16::from(t),
                    defer,
                }
            }
        })
    }

    fn alu(dst: Dst, a: Src, b: Src) -> MeInsn {
        MeInsn::Alu {
            op: AluOp::Add,
            dst,
            a,
            b,
        }
    }

    /// The analysis on hand-made shapes: what a path reads first, partial writes, helper
    /// arguments, defer slots and `rtn`.
    #[test]
    fn live_in_follows_every_path() {
        let (a, b) = (|n| Src::Gpr(Bank::A, n), |n| Src::Gpr(Bank::B, n));
        let r0 = bit(slot::A) | bit(slot::A + 1);
        // R0 written before `Exit`: only the source is live-in.
        let code = [
            alu(Dst::Both(0), a(3), Src::Imm(1)),
            alu(Dst::Both(1), b(0), Src::None),
        ];
        let code = [&code[..], &[MeInsn::Exit]].concat();
        assert_eq!(live_in(&code), bit(slot::A + 3));
        // Not written on the branch's path: R0 is live-in.
        let code = [
            MeInsn::Br {
                cond: Cond::Eq,
                target: 3,
                defer: 0,
            },
            alu(Dst::Both(0), Src::Imm(1), Src::None),
            alu(Dst::Both(1), Src::Imm(1), Src::None),
            MeInsn::Exit,
        ];
        assert_eq!(live_in(&code), r0);
        // A defer slot runs before the jump: its write counts on both paths.
        let code = [
            MeInsn::Br {
                cond: Cond::Eq,
                target: 3,
                defer: 2,
            },
            alu(Dst::Both(0), Src::Imm(1), Src::None),
            alu(Dst::Both(1), Src::Imm(1), Src::None),
            MeInsn::Exit,
        ];
        assert_eq!(live_in(&code), 0);
        // A partial `immed` and a merging `ld_field` read their destination.
        let code = [
            MeInsn::Immed {
                dst: Dst::Gpr(Bank::B, 7),
                imm: 1,
                shift: 0,
                invert: false,
                width: ImmedWidth::Word,
            },
            MeInsn::LdField {
                dst: Dst::Both(9),
                byte_mask: 1,
                b: Src::Xfer(4),
                shift_bytes: 0,
                zero_fill: false,
            },
            MeInsn::FwCall {
                helper: FwHelper::Random,
            },
            MeInsn::Exit,
        ];
        let want = bit(slot::B + 7) | bit(slot::A + 9) | bit(slot::XFER_RD + 4);
        assert_eq!(live_in(&code), want);
        // A map lookup reads the low words of R1 (set at entry) and R2; a write command
        // its write transfer registers; a read command writes the read ones.
        let code = [
            MeInsn::Cmd {
                target: crate::target::MemTarget::Ctm,
                action: CmdAction::Read32,
                xfer: 2,
                count: 2,
                mode: crate::target::AddrMode::Addr32,
                a: a(22),
                b: Src::Imm(0),
                swap: true,
            },
            alu(Dst::None, Src::Xfer(3), Src::None),
            MeInsn::Cmd {
                target: crate::target::MemTarget::Ctm,
                action: CmdAction::Write8,
                xfer: 5,
                count: 5,
                mode: crate::target::AddrMode::Addr32,
                a: a(22),
                b: Src::Imm(0),
                swap: false,
            },
            MeInsn::FwCall {
                helper: FwHelper::MapLookup,
            },
            MeInsn::Exit,
        ];
        let want = bit(slot::A + 4) | span(slot::XFER_WR + 5, 2);
        assert_eq!(live_in(&code), want);
        // After an `rtn`, any address may run next: R0 (written only before the `rtn`, on
        // its way back) is not live at 1, which the `rtn` may reach without writing it.
        let code = [
            MeInsn::Rtn {
                src: Src::Imm(3),
                defer: 0,
            },
            MeInsn::Exit,
            MeInsn::Nop,
            alu(Dst::Both(0), Src::Imm(1), Src::None),
            alu(Dst::Both(1), Src::Imm(1), Src::None),
            MeInsn::Exit,
        ];
        assert_eq!(live_in(&code), r0);
        // Address 4 is reached only by the `rtn`: what it reads is live-in.
        let code = [
            alu(Dst::Both(0), Src::Imm(1), Src::None),
            alu(Dst::Both(1), Src::Imm(1), Src::None),
            MeInsn::Rtn {
                src: Src::Imm(4),
                defer: 0,
            },
            MeInsn::Exit,
            alu(Dst::None, a(7), Src::None),
            MeInsn::Exit,
        ];
        assert_eq!(live_in(&code), bit(slot::A + 7));
        // Chunks: none, some, or all past the limit.
        assert_eq!(live_chunks(&[MeInsn::Nop, MeInsn::Exit]), 1);
        let reads: Vec<MeInsn> = (0..32)
            .map(|n| alu(Dst::None, Src::Xfer(n), Src::None))
            .collect();
        assert_eq!(live_chunks(&reads), u32::MAX);
        assert_eq!(live_chunks(&reads[..8]), 0b11 << 16);
    }
}
