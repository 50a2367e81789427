//! What a fused start (`Thread::load_but_counts`) resets of a thread for a program
//! ([`Fresh`]), derived once per program (`FastProgram::fresh`) from the analyses of
//! `live` and [`may_write_a22`].

use super::live;
use super::thread::slot;
use crate::target::{Dst, MeInsn};

/// What a fused start (`Thread::load_but_counts`) resets for a program.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fresh {
    /// The 16-byte chunks of the register file it clears (`u32::MAX`: all): those holding
    /// a register the program may read before writing it (see `live`).
    pub(super) live_chunks: u32,
    /// Compared with `Thread::reset_for`: equal when only this program's packets ran on the
    /// thread since its last full reset, each to its exit, and the program needs nothing
    /// reset then (`live::reset_needs` empty); the thread's other state (LM indexes,
    /// condition codes, multiplier, defer slots, busy count) then needs no reset.
    /// `u64::MAX` (never equal) when the program needs a reset every time.
    pub(super) quick: u64,
    /// `quick` when `live_chunks` is 0, else `u64::MAX` (never a `Thread::reset_for`):
    /// equal to the thread's `reset_for` exactly when the fused start has neither
    /// registers to clear nor other state to reset, so that it tests both with one
    /// compare (the usual case of programs that write their registers before reading
    /// them: callgrind `simspeed pre`, 963.9 -> 960.0 host instructions per frame).
    pub(super) rest: u64,
    /// `rest` when the program reads none of the entry registers but A22 before writing
    /// them (B22, R1's low words: `live::entry_live`) and never writes A22
    /// ([`may_write_a22`]), else `u64::MAX`: equal to the thread's `reset_for` exactly when
    /// the fused start has nothing to clear or reset and no entry register to set. A22
    /// then still holds the stack base the last full start stored (only this program's
    /// fused runs touched the registers since, see `Thread::reset_for`); the others keep
    /// what the last packet left there, which no run of the program can observe (as any
    /// register not live-in).
    ///
    /// Measured (callgrind, `simspeed pre`, whole simulation, host instructions per frame
    /// without libc memset/memcpy): B22 and R1 set only when read 937.8 -> 934.3; A22
    /// only when written, too, 934.3 -> 932.3.
    pub(super) key: u64,
}

impl Fresh {
    /// Everything reset (a start that is not given the program: `Thread::start`).
    pub(super) const ALL: Fresh = Fresh::new(u32::MAX, u64::MAX, true);

    /// Clearing `live_chunks` (see there) and `quick`, with their `rest` and `key`
    /// (`entry`: the program may read an entry register but A22 before writing it, or
    /// write A22).
    const fn new(live_chunks: u32, quick: u64, entry: bool) -> Fresh {
        let rest = if live_chunks == 0 { quick } else { u64::MAX };
        Fresh {
            live_chunks,
            quick,
            rest,
            key: if entry { u64::MAX } else { rest },
        }
    }

    /// This with `live_chunks` clearing instead (for tests that clear more).
    #[cfg(test)]
    pub(super) fn with_live(self, live_chunks: u32) -> Fresh {
        Fresh::new(live_chunks, self.quick, self.key != self.rest)
    }

    /// What `Thread::reset_for` becomes after a full reset for this program: `quick`, or 0
    /// (unknown) for a program that needs a reset every time.
    pub(super) fn reset_id(self) -> u64 {
        if self.quick == u64::MAX {
            0
        } else {
            self.quick
        }
    }

    pub(super) fn of(code: &[MeInsn]) -> Fresh {
        // Ids from 1 (0 is "unknown" in `Thread::reset_for`), never `u64::MAX`.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let quick = live::reset_needs(code) == 0;
        let a22 = 1u128 << (slot::A + super::STATIC_GPR as usize);
        let entry = live::entry_live(code) & !a22 != 0 || may_write_a22(code);
        Fresh::new(
            live::live_chunks(code),
            if quick { id } else { u64::MAX },
            entry,
        )
    }
}

/// Whether some instruction of `code` names A22 (the stack base every start sets, see
/// `Fresh::key`) as its destination: the only way a program writes it (memory reads fill
/// transfer registers; helpers write R0, and B22 with the packet vector). Exhaustive, so
/// that a new instruction with a destination must be added here.
pub(super) fn may_write_a22(code: &[MeInsn]) -> bool {
    code.iter().any(|i| match *i {
        MeInsn::Alu { dst, .. }
        | MeInsn::Shf { dst, .. }
        | MeInsn::Immed { dst, .. }
        | MeInsn::LdField { dst, .. }
        | MeInsn::Mul { dst, .. }
        | MeInsn::CsrRead { dst, .. } => {
            const N: u8 = super::STATIC_GPR;
            matches!(dst, Dst::Both(N) | Dst::Gpr(crate::target::Bank::A, N))
        }
        MeInsn::Br { .. }
        | MeInsn::BrBit { .. }
        | MeInsn::Rtn { .. }
        | MeInsn::Cmd { .. }
        | MeInsn::CsrWrite { .. }
        | MeInsn::FwCall { .. }
        | MeInsn::Exit
        | MeInsn::Nop => false,
    })
}

/// Programs of the same code are equal whatever their ids.
impl PartialEq for Fresh {
    fn eq(&self, other: &Fresh) -> bool {
        self.live_chunks == other.live_chunks
            && (self.quick == u64::MAX) == (other.quick == u64::MAX)
    }
}

impl Eq for Fresh {}
