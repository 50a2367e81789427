//! Jump handlers: `ja` and the conditional jumps, 64- and 32-bit, against an immediate or a
//! register. The fast copy reads the target's address from the op, the counted copy a
//! relative offset (see `op::Op` on why).

use super::exec::{Flow, Machine, after, goto_run, next, op, taken};
use super::op::Op;

/// The jump or call target of the op at `ip`.
#[inline(always)]
pub(super) fn target<const C: bool>(ip: *const Op, o: &Op) -> *const Op {
    if C {
        // SAFETY: `compile` checked that the target lies inside the same program.
        unsafe { ip.byte_offset(o.rel_bytes()) }
    } else {
        // The fast copy holds the address (`Compiled::relink`), of an op of the same program.
        o.fast_target()
    }
}

pub(super) fn ja<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
    let o = op(ip);
    goto_run::<C>(m, target::<C>(ip, o), o.tr, n)
}

macro_rules! jcc {
    ($name:ident, |$r:ident, $o:ident, $d:ident, $s:ident| $cond:expr) => {
        pub(super) fn $name<const C: bool>(m: &mut Machine<'_>, ip: *const Op, n: u64) -> Flow {
            let $o = op(ip);
            let $d = $o.dst as usize;
            #[allow(unused_variables)]
            let $s = $o.src as usize;
            let $r = &m.r;
            if C {
                // The counted copy pays for the run it continues with, in the fast copy.
                if $cond {
                    goto_run::<C>(m, target::<C>(ip, $o), $o.tr, n)
                } else {
                    goto_run::<C>(m, after(ip), $o.fr, n)
                }
            } else if $cond {
                taken(m, $o, n)
            } else {
                // The fall-through is the rest of the run, paid for already.
                next::<C>(m, after(ip), n)
            }
        }
    };
}

jcc!(jeq64k, |r, o, d, s| r[d] == o.jimm64::<C>());
jcc!(jeq64x, |r, o, d, s| r[d] == r[s]);
jcc!(jgt64k, |r, o, d, s| r[d] > o.jimm64::<C>());
jcc!(jgt64x, |r, o, d, s| r[d] > r[s]);
jcc!(jge64k, |r, o, d, s| r[d] >= o.jimm64::<C>());
jcc!(jge64x, |r, o, d, s| r[d] >= r[s]);
jcc!(jset64k, |r, o, d, s| r[d] & o.jimm64::<C>() != 0);
jcc!(jset64x, |r, o, d, s| r[d] & r[s] != 0);
jcc!(jne64k, |r, o, d, s| r[d] != o.jimm64::<C>());
jcc!(jne64x, |r, o, d, s| r[d] != r[s]);
jcc!(jsgt64k, |r, o, d, s| (r[d] as i64) > o.jimm64::<C>() as i64);
jcc!(jsgt64x, |r, o, d, s| (r[d] as i64) > r[s] as i64);
jcc!(jsge64k, |r, o, d, s| (r[d] as i64)
    >= o.jimm64::<C>() as i64);
jcc!(jsge64x, |r, o, d, s| (r[d] as i64) >= r[s] as i64);
jcc!(jlt64k, |r, o, d, s| r[d] < o.jimm64::<C>());
jcc!(jlt64x, |r, o, d, s| r[d] < r[s]);
jcc!(jle64k, |r, o, d, s| r[d] <= o.jimm64::<C>());
jcc!(jle64x, |r, o, d, s| r[d] <= r[s]);
jcc!(jslt64k, |r, o, d, s| (r[d] as i64) < o.jimm64::<C>() as i64);
jcc!(jslt64x, |r, o, d, s| (r[d] as i64) < r[s] as i64);
jcc!(jsle64k, |r, o, d, s| (r[d] as i64)
    <= o.jimm64::<C>() as i64);
jcc!(jsle64x, |r, o, d, s| (r[d] as i64) <= r[s] as i64);
jcc!(jeq32k, |r, o, d, s| r[d] as u32 == o.jimm32::<C>());
jcc!(jeq32x, |r, o, d, s| r[d] as u32 == r[s] as u32);
jcc!(jgt32k, |r, o, d, s| r[d] as u32 > o.jimm32::<C>());
jcc!(jgt32x, |r, o, d, s| r[d] as u32 > r[s] as u32);
jcc!(jge32k, |r, o, d, s| r[d] as u32 >= o.jimm32::<C>());
jcc!(jge32x, |r, o, d, s| r[d] as u32 >= r[s] as u32);
jcc!(jset32k, |r, o, d, s| r[d] as u32 & o.jimm32::<C>() != 0);
jcc!(jset32x, |r, o, d, s| r[d] as u32 & r[s] as u32 != 0);
jcc!(jne32k, |r, o, d, s| r[d] as u32 != o.jimm32::<C>());
jcc!(jne32x, |r, o, d, s| r[d] as u32 != r[s] as u32);
jcc!(jsgt32k, |r, o, d, s| r[d] as i32 > o.jimm32::<C>() as i32);
jcc!(jsgt32x, |r, o, d, s| r[d] as i32 > r[s] as i32);
jcc!(jsge32k, |r, o, d, s| r[d] as i32 >= o.jimm32::<C>() as i32);
jcc!(jsge32x, |r, o, d, s| r[d] as i32 >= r[s] as i32);
jcc!(jlt32k, |r, o, d, s| (r[d] as u32) < o.jimm32::<C>());
jcc!(jlt32x, |r, o, d, s| (r[d] as u32) < r[s] as u32);
jcc!(jle32k, |r, o, d, s| r[d] as u32 <= o.jimm32::<C>());
jcc!(jle32x, |r, o, d, s| r[d] as u32 <= r[s] as u32);
jcc!(jslt32k, |r, o, d, s| (r[d] as i32) < o.jimm32::<C>() as i32);
jcc!(jslt32x, |r, o, d, s| (r[d] as i32) < r[s] as i32);
jcc!(jsle32k, |r, o, d, s| r[d] as i32 <= o.jimm32::<C>() as i32);
jcc!(jsle32x, |r, o, d, s| r[d] as i32 <= r[s] as i32);
