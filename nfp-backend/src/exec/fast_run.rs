//! The fast path's loop: runs a [`FastProgram`] on a [`Thread`], falling back to the
//! reference `step` for what was not pre-decoded (see `fast` for the design). It must agree
//! with the reference loop exactly: registers, memory, condition codes, instruction counts,
//! cycles, events and errors (the property tests in `tests_fast` hold it to that).

use super::fast::{A, D, FastProgram, LD_MASKS, Op};
use super::thread::{Cc, Thread, slot};
use super::{Event, ExecError, ExecErrorKind, InsnProfile, LMEM_BYTES, MemState, SwapTarget, fw};
use crate::target::{AddrMode, Cond, ShiftKind};

/// Why the fast loop stopped.
enum Stop {
    /// The next instruction must run on the reference path.
    Slow,
    /// An event for the caller.
    Event(Event),
    /// A fault at `pc`.
    Fault(u32, ExecErrorKind),
}

/// Condition codes as loop locals.
#[derive(Clone, Copy)]
struct Flags {
    res: u32,
    c: bool,
    v: bool,
}

#[inline(always)]
fn cond(c: Cond, f: Flags) -> bool {
    let (z, n) = (f.res == 0, (f.res as i32) < 0);
    match c {
        Cond::Eq => z,
        Cond::Ne => !z,
        Cond::Mi => n,
        Cond::Pl => !n,
        Cond::Hs => f.c,
        Cond::Lo => !f.c,
        Cond::Vs => f.v,
        Cond::Vc => !f.v,
        Cond::Ge => n == f.v,
        Cond::Lt => n != f.v,
        Cond::Le => z || n != f.v,
        Cond::Gt => !z && n == f.v,
        Cond::Always => true,
    }
}

/// The ALU, as the reference's `Thread::alu`.
#[inline(always)]
fn alu(op: A, a: u32, b: u32, f: &mut Flags) -> u32 {
    let r = match op {
        A::PassB => b,
        A::NotB => !b,
        A::And => a & b,
        A::AndNotA => !a & b,
        A::AndNotB => a & !b,
        A::Or => a | b,
        A::Xor => a ^ b,
        A::Add | A::AddCarry => {
            let cin = u64::from(op == A::AddCarry && f.c);
            let wide = u64::from(a) + u64::from(b) + cin;
            let s = i64::from(a as i32) + i64::from(b as i32) + cin as i64;
            f.c = wide >> 32 != 0;
            f.v = s != i64::from(s as i32);
            wide as u32
        }
        A::Sub | A::SubCarry => {
            let borrow = i64::from(op == A::SubCarry && !f.c);
            let wide = i64::from(a) - i64::from(b) - borrow;
            let s = i64::from(a as i32) - i64::from(b as i32) - borrow;
            f.c = wide >= 0;
            f.v = s != i64::from(s as i32);
            wide as u32
        }
    };
    f.res = r;
    r
}

/// The shifter, as the reference's `Shf`.
#[inline(always)]
fn shift(kind: ShiftKind, x: u32, y: u32, k: u32) -> u32 {
    match kind {
        ShiftKind::Left => y << k,
        ShiftKind::Right => y >> k,
        ShiftKind::ArithRight => ((y as i32) >> k) as u32,
        ShiftKind::RotRight => y.rotate_right(k),
        ShiftKind::DoubleRight => (((u64::from(x) << 32) | u64::from(y)) >> k) as u32,
    }
}

impl Thread {
    /// Runs until the thread swaps out or exits, like [`Thread::run_until_event`], on the
    /// pre-decoded `prog` (which must be `FastProgram::new` of the same code the reference
    /// would run). Same results, events, counts and errors; much faster.
    pub fn run_until_event_fast(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        budget: u64,
    ) -> Result<Event, ExecError> {
        self.fast_driver::<false>(prog, mem, budget, &mut [])
    }

    /// [`Thread::run_until_event_fast`] with a profile, as
    /// [`Thread::run_until_event_profiled`].
    pub fn run_until_event_fast_profiled(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        budget: u64,
        profile: &mut [InsnProfile],
    ) -> Result<Event, ExecError> {
        self.fast_driver::<true>(prog, mem, budget, profile)
    }

    #[inline(always)]
    fn fast_driver<const P: bool>(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        budget: u64,
        profile: &mut [InsnProfile],
    ) -> Result<Event, ExecError> {
        if !self.running {
            return Err(self.not_running());
        }
        loop {
            if self.defer_left == 0 {
                match self.fast_loop::<P>(prog, mem, budget, profile) {
                    Stop::Slow => {}
                    Stop::Event(e) => return Ok(e),
                    Stop::Fault(pc, kind) => return Err(ExecError { pc, kind }),
                }
            }
            if let Some(r) = self.one_step::<P>(&prog.code, mem, budget, profile) {
                return r;
            }
        }
    }

    /// Runs fast ops from `self.pc` while runs can be paid; see `fast`.
    #[inline(always)]
    fn fast_loop<const P: bool>(
        &mut self,
        prog: &FastProgram,
        mem: &mut MemState<'_>,
        budget: u64,
        profile: &mut [InsnProfile],
    ) -> Stop {
        let ops = &prog.ops[..];
        let mut ip = self.pc as usize;
        let first = prog.run.get(ip).copied().unwrap_or(0);
        let n0 = self.insns;
        if first == 0 || n0 + u64::from(first) > budget {
            return Stop::Slow;
        }
        let mut n = n0 + u64::from(first);
        let mut extra = 0u64;
        let mut f = Flags {
            res: self.cc.res,
            c: self.cc.c,
            v: self.cc.v,
        };
        macro_rules! rd {
            ($s:expr) => {
                self.file[usize::from($s) & (slot::FILE - 1)]
            };
        }
        macro_rules! wr {
            ($d:expr, $v:expr) => {{
                let d: D = $d;
                let v = $v;
                self.file[usize::from(d[0])] = v;
                self.file[usize::from(d[1])] = v;
            }};
        }
        macro_rules! prof {
            ($at:expr, $cycles:expr) => {
                if P && let Some(p) = profile.get_mut($at) {
                    p.executions += 1;
                    p.cycles += $cycles;
                }
            };
        }
        // Continue at `$next`, paying its run `$r`, or stop for the slow path.
        macro_rules! goto {
            ($next:expr, $r:expr) => {{
                let next = $next;
                let r = u64::from($r);
                if r == 0 || n + r > budget {
                    ip = next;
                    break Stop::Slow;
                }
                n += r;
                ip = next;
                continue;
            }};
        }
        // The byte address of LM window word `off` of `idx` for the op at `ip` (`rem` after
        // it in its run), or fall back to the reference step for this instruction (giving
        // back its run) when the CSR hazard or the address check fails.
        macro_rules! lm_addr {
            ($idx:expr, $off:expr, $rem:expr) => {{
                let (i, rem) = (usize::from($idx) & 3, u64::from($rem));
                let a = (self.lm_addr[i] & !3) as usize + 4 * usize::from($off);
                if n - rem <= self.lm_ready[i] || a + 4 > LMEM_BYTES {
                    n -= rem + 1;
                    break Stop::Slow;
                }
                a
            }};
        }
        macro_rules! arith {
            ($d:expr, $a:expr, $b:expr, $op:expr) => {{
                let r = alu($op, rd!($a), rd!($b), &mut f);
                wr!($d, r);
                prof!(ip, 1);
                ip += 1;
            }};
        }
        macro_rules! logic {
            ($d:expr, $a:expr, $b:expr, $x:ident, $y:ident, $e:expr) => {{
                let ($x, $y) = (rd!($a), rd!($b));
                let r = $e;
                f.res = r;
                wr!($d, r);
                prof!(ip, 1);
                ip += 1;
            }};
        }
        let penalty = u64::from(mem.lat.branch_taken_penalty);
        // The branch ending a fused group of `$w` instructions at `ip`.
        macro_rules! branch {
            ($c:expr, $t:expr, $rt:expr, $rn:expr, $w:expr) => {{
                if cond($c, f) {
                    extra += penalty;
                    prof!(ip + $w - 1, 1 + penalty);
                    goto!(usize::from($t), $rt)
                }
                prof!(ip + $w - 1, 1);
                goto!(ip + $w, $rn)
            }};
        }
        let stop = loop {
            let Some(op) = ops.get(ip) else {
                break Stop::Slow;
            };
            match *op {
                Op::Add { d, a, b } => arith!(d, a, b, A::Add),
                Op::AddC { d, a, b } => arith!(d, a, b, A::AddCarry),
                Op::Sub { d, a, b } => arith!(d, a, b, A::Sub),
                Op::SubC { d, a, b } => arith!(d, a, b, A::SubCarry),
                Op::And { d, a, b } => logic!(d, a, b, x, y, x & y),
                Op::Or { d, a, b } => logic!(d, a, b, x, y, x | y),
                Op::Xor { d, a, b } => logic!(d, a, b, x, y, x ^ y),
                Op::MovLm { d, idx, off, rem } => {
                    let r = mem.lmem.word(lm_addr!(idx, off, rem));
                    f.res = r;
                    wr!(d, r);
                    prof!(ip, 1);
                    ip += 1;
                }
                Op::AluLm {
                    op,
                    d,
                    x,
                    lm_a,
                    idx,
                    off,
                    rem,
                } => {
                    let w = mem.lmem.word(lm_addr!(idx, off, rem));
                    let o = rd!(x);
                    let (a, b) = if lm_a { (w, o) } else { (o, w) };
                    let r = alu(op, a, b, &mut f);
                    wr!(d, r);
                    prof!(ip, 1);
                    ip += 1;
                }
                Op::StLm {
                    op,
                    a,
                    b,
                    idx,
                    off,
                    rem,
                } => {
                    let at = lm_addr!(idx, off, rem);
                    let r = alu(op, rd!(a), rd!(b), &mut f);
                    mem.lmem.set_word(at, r);
                    prof!(ip, 1);
                    ip += 1;
                }
                Op::CsrLm { n: i, src, rem } => {
                    let i = usize::from(i) & 3;
                    self.lm_addr[i] = rd!(src);
                    // As the reference: the next `csr_write_delay` instructions may not use
                    // index i (this one's count is `n - rem`).
                    let d = mem.lat.csr_write_delay.min(250);
                    self.lm_ready[i] = n - u64::from(rem) + u64::from(d);
                    prof!(ip, 1);
                    ip += 1;
                }
                Op::Mov { d, b } => {
                    let r = rd!(b);
                    f.res = r;
                    wr!(d, r);
                    prof!(ip, 1);
                    ip += 1;
                }
                Op::Alu { op, d, a, b } => {
                    let r = alu(op, rd!(a), rd!(b), &mut f);
                    wr!(d, r);
                    prof!(ip, 1);
                    ip += 1;
                }
                Op::Set { d, v } => {
                    wr!(d, v);
                    prof!(ip, 1);
                    ip += 1;
                }
                Op::Merge { d, keep, v } => {
                    let r = (rd!(d[0]) & keep) | v;
                    wr!(d, r);
                    prof!(ip, 1);
                    ip += 1;
                }
                Op::Ld {
                    d,
                    b,
                    rot,
                    mask4,
                    zero_fill,
                } => {
                    let m = LD_MASKS[usize::from(mask4 & 15)];
                    let src = rd!(b).rotate_right(u32::from(rot));
                    let old = if zero_fill { 0 } else { rd!(d[0]) };
                    wr!(d, (old & !m) | (src & m));
                    prof!(ip, 1);
                    ip += 1;
                }
                Op::Shf {
                    kind,
                    d,
                    a,
                    b,
                    n: k,
                } => {
                    let (x, y, k) = (rd!(a), rd!(b), u32::from(k) & 31);
                    let r = shift(kind, x, y, k);
                    f.res = r;
                    wr!(d, r);
                    prof!(ip, 1);
                    ip += 1;
                }
                Op::Nop => {
                    prof!(ip, 1);
                    ip += 1;
                }
                Op::Set2 { d1, d2, v1, v2 } => {
                    wr!(d1, v1);
                    wr!(d2, v2);
                    prof!(ip, 1);
                    prof!(ip + 1, 1);
                    ip += 2;
                }
                Op::Mov2 { d1, b1, d2, b2 } => {
                    let r = rd!(b1);
                    wr!(d1, r);
                    let r = rd!(b2);
                    f.res = r;
                    wr!(d2, r);
                    prof!(ip, 1);
                    prof!(ip + 1, 1);
                    ip += 2;
                }
                Op::Add64 {
                    d1,
                    d2,
                    a1,
                    b1,
                    a2,
                    b2,
                } => {
                    let r = alu(A::Add, rd!(a1), rd!(b1), &mut f);
                    wr!(d1, r);
                    let r = alu(A::AddCarry, rd!(a2), rd!(b2), &mut f);
                    wr!(d2, r);
                    prof!(ip, 1);
                    prof!(ip + 1, 1);
                    ip += 2;
                }
                Op::Sub64 {
                    d1,
                    d2,
                    a1,
                    b1,
                    a2,
                    b2,
                } => {
                    let r = alu(A::Sub, rd!(a1), rd!(b1), &mut f);
                    wr!(d1, r);
                    let r = alu(A::SubCarry, rd!(a2), rd!(b2), &mut f);
                    wr!(d2, r);
                    prof!(ip, 1);
                    prof!(ip + 1, 1);
                    ip += 2;
                }
                Op::Cmp64Br {
                    cond: c,
                    a1,
                    b1,
                    a2,
                    b2,
                    t,
                    rt,
                    rn,
                } => {
                    alu(A::Sub, rd!(a1), rd!(b1), &mut f);
                    alu(A::SubCarry, rd!(a2), rd!(b2), &mut f);
                    prof!(ip, 1);
                    prof!(ip + 1, 1);
                    branch!(c, t, rt, rn, 3)
                }
                Op::XorOrBr {
                    d1,
                    a1,
                    b1,
                    a2,
                    b2,
                    cond: c,
                    t,
                    rt,
                    rn,
                } => {
                    let r = rd!(a1) ^ rd!(b1);
                    wr!(d1, r);
                    f.res = rd!(a2) | rd!(b2);
                    prof!(ip, 1);
                    prof!(ip + 1, 1);
                    branch!(c, t, rt, rn, 3)
                }
                Op::OrBr {
                    a,
                    b,
                    cond: c,
                    t,
                    rt,
                    rn,
                } => {
                    f.res = rd!(a) | rd!(b);
                    prof!(ip, 1);
                    branch!(c, t, rt, rn, 2)
                }
                Op::Alu2 {
                    op1,
                    op2,
                    d1,
                    d2,
                    a1,
                    b1,
                    a2,
                    b2,
                } => {
                    let r = alu(op1, rd!(a1), rd!(b1), &mut f);
                    wr!(d1, r);
                    let r = alu(op2, rd!(a2), rd!(b2), &mut f);
                    wr!(d2, r);
                    prof!(ip, 1);
                    prof!(ip + 1, 1);
                    ip += 2;
                }
                Op::AluShf {
                    op,
                    kind,
                    d1,
                    a1,
                    b1,
                    d2,
                    a2,
                    b2,
                } => {
                    let r = alu(op, rd!(a1), rd!(b1), &mut f);
                    wr!(d1, r);
                    let (x, y, k) = (rd!(a2), rd!(b2), r & 31);
                    let r = shift(kind, x, y, k);
                    f.res = r;
                    wr!(d2, r);
                    prof!(ip, 1);
                    prof!(ip + 1, 1);
                    ip += 2;
                }
                Op::Br { cond: c, t, rt, rn } => {
                    if cond(c, f) {
                        extra += penalty;
                        prof!(ip, 1 + penalty);
                        goto!(usize::from(t), rt)
                    }
                    prof!(ip, 1);
                    goto!(ip + 1, rn)
                }
                Op::AluBr {
                    op,
                    d,
                    a,
                    b,
                    cond: c,
                    t,
                    rt,
                    rn,
                } => {
                    let r = alu(op, rd!(a), rd!(b), &mut f);
                    wr!(d, r);
                    prof!(ip, 1);
                    if cond(c, f) {
                        extra += penalty;
                        prof!(ip + 1, 1 + penalty);
                        goto!(usize::from(t), rt)
                    }
                    prof!(ip + 1, 1);
                    goto!(ip + 2, rn)
                }
                Op::Alu2Br {
                    op1,
                    op2,
                    d1,
                    d2,
                    a1,
                    b1,
                    a2,
                    b2,
                    cond: c,
                    t,
                    rt,
                    rn,
                } => {
                    let r = alu(op1, rd!(a1), rd!(b1), &mut f);
                    wr!(d1, r);
                    let r = alu(op2, rd!(a2), rd!(b2), &mut f);
                    wr!(d2, r);
                    prof!(ip, 1);
                    prof!(ip + 1, 1);
                    if cond(c, f) {
                        extra += penalty;
                        prof!(ip + 2, 1 + penalty);
                        goto!(usize::from(t), rt)
                    }
                    prof!(ip + 2, 1);
                    goto!(ip + 3, rn)
                }
                Op::BrBit {
                    src,
                    bit,
                    set,
                    t,
                    rt,
                    rn,
                } => {
                    if ((rd!(src) >> (bit & 31)) & 1 != 0) == set {
                        extra += penalty;
                        prof!(ip, 1 + penalty);
                        goto!(usize::from(t), rt)
                    }
                    prof!(ip, 1);
                    goto!(ip + 1, rn)
                }
                Op::Cmd {
                    target,
                    action,
                    xfer,
                    count,
                    mode,
                    swap,
                    a,
                    b,
                } => {
                    let (x, y) = (rd!(a), rd!(b));
                    let addr = match mode {
                        AddrMode::Addr32 => u64::from(x.wrapping_add(y)),
                        AddrMode::Addr40 => (u64::from(x & 0xff) << 32) + u64::from(y),
                    };
                    let words = match self.command(target, action, xfer, count, addr, mem) {
                        Ok(w) => w,
                        Err(k) => break self.fast_fault(prog, ip, &mut n, k),
                    };
                    prof!(ip, 1);
                    ip += 1;
                    if swap {
                        let wait = mem.lat.target_latency(target) + mem.lat.per_word * (words - 1);
                        break Stop::Event(Event::Swap {
                            busy_cycles: 0,
                            wait_cycles: u64::from(wait),
                            target: SwapTarget::Mem(target),
                        });
                    }
                }
                Op::Fw { helper, rn } => {
                    // The helper reads and writes registers and flags-free state only.
                    if let Err(k) = fw::call(helper, self, mem) {
                        break self.fast_fault(prog, ip, &mut n, k);
                    }
                    let c = mem.lat.fw_cost(helper);
                    extra += u64::from(c.issue);
                    prof!(ip, 1 + u64::from(c.issue));
                    if c.wait > 0 {
                        ip += 1;
                        break Stop::Event(Event::Swap {
                            busy_cycles: 0,
                            wait_cycles: u64::from(c.wait),
                            target: SwapTarget::Fw(helper),
                        });
                    }
                    goto!(ip + 1, rn)
                }
                Op::Exit => {
                    let e = u64::from(mem.lat.exit.saturating_sub(1));
                    extra += e;
                    prof!(ip, 1 + e);
                    break Stop::Event(Event::Done {
                        retval: 0,
                        busy_cycles: 0,
                        insns: 0,
                    });
                }
                Op::Slow => break Stop::Slow,
            }
        };
        self.cc = Cc {
            res: f.res,
            c: f.c,
            v: f.v,
        };
        self.insns = n;
        self.pc = ip as u32;
        self.busy += (n - n0) + extra;
        match stop {
            Stop::Event(Event::Done { .. }) => {
                self.running = false;
                Stop::Event(Event::Done {
                    retval: self.reg(0),
                    busy_cycles: std::mem::take(&mut self.busy),
                    insns: self.insns,
                })
            }
            Stop::Event(Event::Swap {
                wait_cycles,
                target,
                ..
            }) => Stop::Event(Event::Swap {
                busy_cycles: std::mem::take(&mut self.busy),
                wait_cycles,
                target,
            }),
            Stop::Fault(pc, k) => {
                self.running = false;
                Stop::Fault(pc, k)
            }
            Stop::Slow => Stop::Slow,
        }
    }

    /// A fault of the fast op at `ip`: gives back the part of its run not executed.
    #[cold]
    fn fast_fault(&mut self, prog: &FastProgram, ip: usize, n: &mut u64, k: ExecErrorKind) -> Stop {
        let left = prog.run.get(ip).copied().unwrap_or(1).saturating_sub(1);
        *n -= u64::from(left);
        Stop::Fault(ip as u32, k)
    }
}
