//! Runs given a latency table that the program's native code is not compiled for.
//!
//! # Why
//!
//! The native code has the costs of one table as constants (`jit`, session 19:
//! `FastProgram::with_latencies`): a run with any other table must not enter it. Every
//! chain's handlers are the hops' plain ones (`Hop::h`, native blocks where there are
//! some) or the profiled ones (`Hop::hp`, never native), so such a run takes the
//! profiled handlers with an empty profile (they then count nothing): the same results
//! as the plain handlers, with no second set of them. The drivers test
//! `FastProgram::native_for` where a chain starts and come here when it fails (never on
//! nic-sim's engines, which give the program its own table).

use super::super::fast::FastProgram;
use super::super::thread::Thread;
use super::super::through::{RunThrough, Segment};
use super::super::{Event, ExecError, MemState};
use super::Stop;

impl Thread {
    /// [`Thread::fast_loop_at`] unprofiled for a table the program's native code is not
    /// compiled for (`FastProgram::native_for`): the profiled handlers, which never enter
    /// native code (`Hop::hp`), with no profile (they then count nothing), so that
    /// the unprofiled drivers need no second set of plain handlers.
    #[cold]
    #[inline(never)]
    pub(super) fn fast_loop_foreign<const T: bool>(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        budget: u64,
        through: &mut RunThrough,
        segs: Option<&mut Vec<Segment>>,
        at: (u32, u64, u64),
    ) -> Stop {
        self.fast_loop_at::<true, T>(prog, mem, budget, &mut [], through, segs, at)
    }

    /// [`Thread::run_packet_to_end_fast`] without a profile, for a table the program's
    /// native code is not compiled for: the profiled driver with no profile (its handlers
    /// never enter native code, see `Thread::fast_loop_foreign`).
    #[cold]
    #[inline(never)]
    pub(super) fn packet_to_end_foreign(
        &mut self,
        prog: &FastProgram,
        mem: MemState<'_>,
        packet: &[u8],
        budget: u64,
        segs: &mut Vec<Segment>,
    ) -> Result<Event, ExecError> {
        let parts = (mem.lmem, mem.shared, mem.maps, mem.lat);
        self.packet_to_end_profiled(prog, parts, packet, budget, &mut [], segs)
    }
}
