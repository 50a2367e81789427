//! Building an ME's model in its box ([`MeSim::boxed`]).

use std::ptr::addr_of_mut;

use super::cursor::Replay;
use super::queue::Queues;
use super::{Hot, MeSim, MeStats, NONE, Reference, SLOTS, Thread, VERDICTS};
use crate::engine::{PacketEngine, Segment};
use crate::preset::MAX_THREADS_PER_ME;

impl<E: PacketEngine> MeSim<E> {
    /// [`MeSim::new`] charging `fw_cycles` per packet ([`MeSim::with_fw_cycles`]), built in
    /// its box, field by field.
    ///
    /// Why: the model is ~10 KB (its per-thread arrays of [`MAX_THREADS_PER_ME`] entries),
    /// and `Box::write(Box::new_uninit(), MeSim::new(..))` still built those arrays on the
    /// stack and copied them (~8 KB per ME, ~5% of the time of a 1,000-frame call on Agilio
    /// CX's 50 MEs, perf of `simspeed repeat 1000 1`), a fixed cost per call. Built here, a
    /// later such call took 2.55 -> 2.39 M host instructions (callgrind).
    #[allow(clippy::too_many_arguments)]
    pub fn boxed(
        me: u32,
        engine: E,
        reference: Option<Reference>,
        threads: u32,
        depth: u32,
        results: bool,
        fw_cycles: u64,
    ) -> Box<MeSim<E>> {
        // A field added to `MeSim` must be written below: this pattern names every field.
        let _every_field_written_below = |m: &MeSim<E>| {
            #[rustfmt::skip]
            let MeSim {
                engine: _, reference: _, threads: _, ready: _, free: _, held_mask: _,
                freed_mask: _, queued_mask: _, hot: _, segs: _, #[cfg(test)] scan: _, depth: _,
                results: _, report_each: _, me_free: _, last_run: _, replays: _, stats: _,
                scratch: _, queues: _, verdicts: _, fw_cycles: _, replay: _,
            } = m;
        };
        // `simulate` refuses wider NICs (`NicPreset::check`); the clamp keeps a direct caller's
        // MeSim well-formed.
        let threads = threads.clamp(1, MAX_THREADS_PER_ME);
        let replay = engine.threads_commute();
        let report_each = results || reference.is_some();
        let mut b = Box::<MeSim<E>>::new_uninit();
        let p = b.as_mut_ptr();
        // SAFETY: `p` points to the box's memory, valid for writes and aligned for `MeSim`;
        // each field is written exactly once (the pattern above lists them all, so a new
        // field fails to compile until it is added here), each array element by element
        // through a pointer to its first (arrays are contiguous), before `assume_init`.
        // Nothing here panics after the first write (a panic would only leak the box).
        unsafe {
            addr_of_mut!((*p).engine).write(engine);
            addr_of_mut!((*p).reference).write(reference);
            addr_of_mut!((*p).threads).write((0..threads).map(|_| Thread::default()).collect());
            addr_of_mut!((*p).ready).write([NONE; SLOTS]);
            addr_of_mut!((*p).free).write([NONE; SLOTS]);
            addr_of_mut!((*p).held_mask).write(0);
            addr_of_mut!((*p).freed_mask).write(0);
            addr_of_mut!((*p).queued_mask).write(0);
            let (hot, segs, replays) = (
                addr_of_mut!((*p).hot).cast::<Hot>(),
                addr_of_mut!((*p).segs).cast::<Vec<Segment>>(),
                addr_of_mut!((*p).replays).cast::<Replay>(),
            );
            for i in 0..SLOTS {
                hot.add(i).write(Hot::default());
                segs.add(i).write(Vec::new());
                replays.add(i).write(Replay::EMPTY);
            }
            #[cfg(test)]
            addr_of_mut!((*p).scan).write(false);
            addr_of_mut!((*p).depth).write(depth as usize);
            addr_of_mut!((*p).results).write(results);
            addr_of_mut!((*p).report_each).write(report_each);
            addr_of_mut!((*p).me_free).write(0);
            addr_of_mut!((*p).last_run).write(threads as usize - 1);
            addr_of_mut!((*p).stats).write(MeStats {
                me,
                ..MeStats::default()
            });
            addr_of_mut!((*p).scratch).write(Vec::new());
            addr_of_mut!((*p).queues).write(Queues::default());
            addr_of_mut!((*p).verdicts).write([0; VERDICTS]);
            addr_of_mut!((*p).fw_cycles).write(fw_cycles);
            addr_of_mut!((*p).replay).write(replay);
            b.assume_init()
        }
    }
}
