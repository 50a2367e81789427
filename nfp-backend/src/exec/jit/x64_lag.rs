//! The count of [`super::x64`]'s unchecked blocks kept behind in `rcx` ("lag") along
//! fall-through chains, and the jumps and pays between blocks that settle it.
//!
//! # Why
//!
//! A block's count (`rcx`, the thread's instruction count including the runs paid) gains
//! the run of each block it goes on to: an unchecked block (`x64_bound`) pays a run with
//! one `add rcx, run` on each path out of it. In a chain of unchecked blocks laid out so
//! that each falls through into the next (`x64::compile`), most of those adds are on the
//! path every packet takes (the demo filter: a bound check, then the header tests one
//! after the other), but little reads the count in between: an LM step's hazard check, a
//! CSR write's ready count, a pass's segment, and the exits. So the add is left out where
//! a block falls through into the one laid out after it: that block runs with `rcx` behind
//! the count by a constant *lag* its code knows (its readers of the count add it as part
//! of an offset they have anyway, its exits add it first), and the next add there pays the
//! sum (callgrind, `simspeed pre`: see the module docs of `jit`).
//!
//! # Exactness
//!
//! The count itself is the same wherever it is read: `rcx + lag` with the lag of the code
//! that reads it. A block's entry label expects a lag of its own, 0 but for an unchecked
//! block laid out as the fall-through of another with a lag left (its *body* label then
//! expects it; its own label is a stub that subtracts it and jumps there, for the jumps
//! and handler entries emitted before its lag was known). Every jump to a block's entry
//! adds the difference between its lag and the target's ([`go_on`]); every path that
//! leaves for a handler or Rust settles the lag to 0 first. Lags stay below [`LAG_MAX`]
//! (a fall-through with more settles it), so every offset stays an `i32`. Checked blocks
//! run with no lag (their pays compare the count with the limit). `tests_native`'s
//! chained blocks hold it to the reference (the earlier tests did not catch exits that
//! left without settling their lag).

use super::super::fast_run::{CX_LIMIT, Handler, unpaid_at};
use super::x64::{H, hop_at};
use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi, dynasm, x64::Assembler};

const LIMIT: i32 = CX_LIMIT as i32;

/// The most a fall-through carries behind in `rcx` (far inside an `i32` with the offsets
/// added to it, `x64_lm`'s `-rem`).
pub(super) const LAG_MAX: i32 = 1 << 24;

/// A block entry and the lag it expects.
pub(super) type Target = Option<(DynamicLabel, i32)>;

/// `rcx += k` (nothing for 0).
pub(super) fn settle(a: &mut Assembler, k: i32) {
    if k != 0 {
        dynasm!(a ; .arch x64 ; add rcx, k);
    }
}

/// Jumps on to the op at address `to` with `rcx` behind the count by `lag`: to its block's
/// entry `l` (settling the lag to the one `l` expects), or to nothing when that block is
/// `follows`, laid out right after (`compile`): then `Some` of the lag it runs with; else
/// through its handler (with no lag).
pub(super) fn go_on(
    a: &mut Assembler,
    to: usize,
    (l, follows): (Target, Option<DynamicLabel>),
    lag: i32,
) -> Option<i32> {
    match l {
        Some((l, _)) if Some(l) == follows => {
            if lag > LAG_MAX {
                settle(a, lag);
                return Some(0);
            }
            return Some(lag);
        }
        Some((l, t)) => {
            settle(a, lag - t);
            dynasm!(a ; .arch x64 ; jmp =>l);
        }
        None => {
            settle(a, lag);
            hop_at(a, to);
            dynasm!(a ; .arch x64 ; jmp QWORD [rdx + H]);
        }
    }
    None
}

/// `fast_run::pay` of `run` at the op `to` hops on (`rcx` behind the count by `lag`):
/// continues there with the count plus `run` when `run - 1 < limit - n` (at the block
/// entry `l` when there is one), else leaves through `unpaid_at` (which reads the same run
/// from the hop there: a branch's `rt` / `rn` are copies of the target's and the
/// fall-through's runs). `Some` of the lag the block laid out next runs with, when the pay
/// falls through into it ([`go_on`]).
///
/// The rule is tested as `n + run <= limit` on the count already advanced (`limit >= n`
/// always holds, and counts are far from wrapping), which the unpaid path takes back:
/// three instructions where a compare of `n + run - 1` first took four (about nine
/// fewer host instructions per frame of the demo filter).
///
/// Unchecked (`checked` false, code that `x64_bound`'s entry check proved every pay of to
/// pass), a run is paid with the add alone, or with none when it falls through (the
/// module docs). Checked code runs with no lag.
pub(super) fn pay(
    a: &mut Assembler,
    (to, run): (usize, u16),
    (l, follows): (Target, Option<DynamicLabel>),
    checked: bool,
    lag: i32,
) -> Option<i32> {
    if run != 0 && !checked {
        return go_on(a, to, (l, follows), lag + i32::from(run));
    }
    settle(a, lag);
    if run != 0 {
        let r = i32::from(run);
        dynasm!(a ; .arch x64
            ; add rcx, r
            ; cmp rcx, QWORD [rsi + LIMIT]
            ; ja >unpaid);
        // (The unpaid path follows: no block can be laid out next.)
        go_on(a, to, (l, None), 0);
        dynasm!(a ; .arch x64 ; unpaid: ; sub rcx, r);
    }
    let u = unpaid_at as Handler as usize as i64;
    hop_at(a, to);
    dynasm!(a ; .arch x64
        ; mov rax, QWORD u
        ; jmp rax);
    None
}

/// The own label `u` of a block laid out with a lag, whose body starts at `body`: for the
/// entries that expect no lag (see the module docs).
pub(super) fn stub(a: &mut Assembler, (u, lag, body): (DynamicLabel, i32, DynamicLabel)) {
    dynasm!(a ; .arch x64
        ; =>u
        ; add rcx, -lag
        ; jmp =>body);
}
