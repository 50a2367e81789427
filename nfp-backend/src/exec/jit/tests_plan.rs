//! Tests of the block planning of [`super`]: which flag stores a block leaves out
//! (`live_flags`) and which ops form blocks (`block_at`). (Moved out of `jit.rs` to keep
//! it under 800 lines.)

use super::*;

#[test]
fn a_flag_store_is_dropped_only_when_overwritten_before_a_read() {
    let alu = |op| Step::Alu {
        op,
        d: [0, 0],
        a: 0,
        b: 0,
    };
    // sub, sub_carry, add, xor: the sub's carry is read by the sub_carry; the
    // sub_carry's is overwritten by the add unread; the add's is not overwritten (xor
    // writes no carry). Only the last result is stored.
    let s = [alu(A::Sub), alu(A::SubCarry), alu(A::Add), alu(A::Xor)];
    let live = live_flags(&s);
    assert_eq!(
        live,
        vec![(false, true), (false, false), (false, true), (true, true)]
    );
    // add then sub: the add's carry is overwritten unread.
    let live = live_flags(&[alu(A::Add), alu(A::Sub)]);
    assert_eq!(live, vec![(false, false), (true, true)]);
}

#[test]
fn blocks_cover_only_straight_line_ops() {
    let set = Op::Set { d: [0, 0], v: 1 };
    let br = Op::Br {
        cond: Cond::Eq,
        t: 0,
        rt: 1,
        rn: 1,
    };
    let ops = [set, set, Op::Exit, set, Op::Slow, set, br, set];
    assert_eq!(block_at(&ops, 0).map(|b| b.len()), Some(2));
    // One op is a block too (a block is entered as cheaply as a handler).
    assert_eq!(block_at(&ops, 1).map(|b| b.len()), Some(1));
    assert_eq!(block_at(&ops, 3).map(|b| b.len()), Some(1));
    assert!(block_at(&ops, 2).is_none());
    assert!(block_at(&ops, 4).is_none());
    // A branch ends a block (and is part of it).
    assert_eq!(block_at(&ops, 5).map(|b| b.len()), Some(2));
    assert_eq!(block_at(&ops, 6).map(|b| b.len()), Some(1));
}
