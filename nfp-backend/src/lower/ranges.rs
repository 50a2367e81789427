//! Upper bounds of register values before each instruction, by a small forward dataflow of
//! the lowering's own — used for the 16x16 multiply fast path and the "operand within u32"
//! checks of 64-bit multiply/divide.
//!
//! Why not the verifier's ranges: they are a union over the *visited* states, and the walk
//! prunes a path whose state is covered by an explored one *treating imprecise scalars as
//! anything*. A value that never decided a branch stays imprecise, so the union can miss the
//! pruned path's values (a property test found exactly that: a multiply operand known to be 0
//! on the explored path, 0xffffff on the pruned one). Branch outcomes, reachability, pointer
//! offsets and packet ranges are safe to take from the verifier (they are precise or compared
//! exactly when pruning); plain scalar ranges are not. This analysis is sound by construction:
//! a join takes the larger bound, loops widen to "unknown".

use vm_core::Program;
use vm_core::isa::{AluOp, ByteOrder, CallTarget, Insn, JmpCond, LdImm64, Operand, Size, Width};

/// Per register: `Some(m)` = the value is at most `m` (unsigned 64-bit); `None` = unknown.
pub(crate) type Bounds = [Option<u64>; 11];

/// What is known before an instruction: upper bounds and exact constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Known {
    /// Upper bounds.
    pub max: Bounds,
    /// Exact values (from `mov`/`lddw` of constants only).
    pub konst: Bounds,
}

impl Known {
    const UNKNOWN: Known = Known {
        max: [None; 11],
        konst: [None; 11],
    };
}

fn join_known(a: &mut Known, b: &Known) -> bool {
    let m = join(&mut a.max, &b.max);
    let mut changed = false;
    for (x, y) in a.konst.iter_mut().zip(&b.konst) {
        if x.is_some() && x != y {
            *x = None;
            changed = true;
        }
    }
    m || changed
}

fn transfer_known(insn: &Insn, k: &mut Known) {
    transfer(insn, &mut k.max);
    let set = |k: &mut Known, r: u8, v: Option<u64>| {
        if let Some(x) = k.konst.get_mut(usize::from(r)) {
            *x = v;
        }
    };
    match *insn {
        Insn::Alu {
            op: AluOp::Mov,
            width,
            dst,
            src,
        } => {
            let v = match (src, width) {
                (Operand::Imm(i), Width::W64) => Some(i64::from(i) as u64),
                (Operand::Imm(i), Width::W32) => Some(u64::from(i as u32)),
                (Operand::Reg(r), w) => k
                    .konst
                    .get(usize::from(r))
                    .copied()
                    .flatten()
                    .map(|v| if w == Width::W32 { v & U32 } else { v }),
            };
            set(k, dst, v);
        }
        Insn::LdImm64 {
            dst,
            value: LdImm64::Imm(v),
        } => set(k, dst, Some(v)),
        _ => {
            // Any other definition loses the constant.
            for r in written(insn) {
                set(k, r, None);
            }
        }
    }
}

/// Registers an instruction (re)defines.
fn written(insn: &Insn) -> Vec<u8> {
    match *insn {
        Insn::Alu { dst, .. }
        | Insn::Neg { dst, .. }
        | Insn::Endian { dst, .. }
        | Insn::Load { dst, .. }
        | Insn::LdImm64 { dst, .. } => vec![dst],
        Insn::Atomic {
            fetch: true, src, ..
        } => vec![src],
        Insn::LdAbs { .. } | Insn::LdInd { .. } | Insn::Call(_) | Insn::CallX { .. } => {
            (0..=5).collect()
        }
        _ => Vec::new(),
    }
}

const U32: u64 = u32::MAX as u64;

fn size_max(s: Size) -> Option<u64> {
    match s {
        Size::B => Some(0xff),
        Size::H => Some(0xffff),
        Size::W => Some(U32),
        Size::DW => None,
    }
}

fn join(a: &mut Bounds, b: &Bounds) -> bool {
    let mut changed = false;
    for (x, y) in a.iter_mut().zip(b) {
        let j = match (*x, *y) {
            (Some(p), Some(q)) => Some(p.max(q)),
            _ => None,
        };
        if j != *x {
            *x = j;
            changed = true;
        }
    }
    changed
}

fn transfer(insn: &Insn, b: &mut Bounds) {
    let get = |b: &Bounds, r: u8| b.get(usize::from(r)).copied().flatten();
    let set = |b: &mut Bounds, r: u8, v: Option<u64>| {
        if let Some(x) = b.get_mut(usize::from(r)) {
            *x = v;
        }
    };
    match *insn {
        Insn::Alu {
            op,
            width,
            dst,
            src,
        } => {
            let s = match (src, width) {
                (Operand::Imm(i), Width::W64) => Some(i64::from(i) as u64),
                (Operand::Imm(i), Width::W32) => Some(u64::from(i as u32)),
                (Operand::Reg(r), _) => get(b, r),
            };
            let d = get(b, dst);
            let cap = |v: Option<u64>| match width {
                Width::W64 => v,
                Width::W32 => Some(v.map_or(U32, |v| v.min(U32))),
            };
            let d32 = cap(d);
            let r = match op {
                AluOp::Mov => cap(s),
                AluOp::And => match (cap(d), cap(s)) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                },
                AluOp::Rsh => match src {
                    Operand::Imm(k) => {
                        let k = (k as u32) & if width == Width::W64 { 63 } else { 31 };
                        d32.map(|v| v >> k).or(cap(None))
                    }
                    Operand::Reg(_) => cap(d),
                },
                AluOp::Lsh => match src {
                    // Bounded while no set bit can leave the width: `v << k` bounds every
                    // smaller value shifted the same way.
                    Operand::Imm(k) => {
                        let bits = if width == Width::W64 { 64 } else { 32 };
                        let k = (k as u32) & (bits - 1);
                        d32.filter(|&v| k == 0 || v >> (bits - k) == 0)
                            .map(|v| v << k)
                            .or(cap(None))
                    }
                    Operand::Reg(_) => cap(None),
                },
                AluOp::Or | AluOp::Xor => match (cap(d), cap(s)) {
                    // No bit above the larger operand's highest possible bit gets set.
                    (Some(x), Some(y)) => {
                        Some(u64::MAX.checked_shr(x.max(y).leading_zeros()).unwrap_or(0))
                    }
                    _ => cap(None),
                },
                AluOp::Div => cap(d),
                AluOp::Add => match (d, s) {
                    (Some(x), Some(y)) => match width {
                        Width::W64 => x.checked_add(y),
                        Width::W32 => Some((x.min(U32) + y.min(U32)).min(U32)),
                    },
                    _ => cap(None),
                },
                _ => cap(None),
            };
            set(b, dst, r);
        }
        Insn::Neg { width, dst } => set(b, dst, (width == Width::W32).then_some(U32)),
        Insn::Endian { order, bits, dst } => {
            let v = match (order, bits) {
                (ByteOrder::ToLe | ByteOrder::ToBe | ByteOrder::Swap, 16) => Some(0xffff),
                (_, 32) => Some(U32),
                _ => None,
            };
            set(b, dst, v);
        }
        Insn::Load {
            size,
            signed: false,
            dst,
            ..
        } => set(b, dst, size_max(size)),
        Insn::Load { dst, .. } => set(b, dst, None),
        Insn::LdImm64 { dst, value } => set(
            b,
            dst,
            match value {
                LdImm64::Imm(v) => Some(v),
                _ => None,
            },
        ),
        Insn::LdAbs { size, .. } | Insn::LdInd { size, .. } => {
            for r in 1..=5 {
                set(b, r, None);
            }
            set(b, 0, size_max(size));
        }
        Insn::Atomic {
            fetch: true, src, ..
        } => set(b, src, None),
        Insn::Call(_) | Insn::CallX { .. } => {
            for r in 0..=5 {
                set(b, r, None);
            }
        }
        _ => {}
    }
}

/// The states on the taken and fall-through edges of a 64-bit unsigned compare with a
/// constant: `jgt r, K` bounds `r` by `K` when not taken, `jlt r, K` by `K - 1` when taken...
fn refine(insn: &Insn, b: &Known) -> (Known, Known) {
    let (mut taken, mut fall) = (*b, *b);
    if let Insn::Jmp {
        cond,
        width: Width::W64,
        dst,
        src: Operand::Imm(k),
        ..
    } = *insn
    {
        let k = i64::from(k) as u64;
        let bound = |st: &mut Known, m: Option<u64>| {
            if let (Some(m), Some(slot)) = (m, st.max.get_mut(usize::from(dst))) {
                *slot = Some(slot.map_or(m, |old| old.min(m)));
            }
        };
        match cond {
            JmpCond::Gt => bound(&mut fall, Some(k)),
            JmpCond::Ge => bound(&mut fall, k.checked_sub(1)),
            JmpCond::Lt => bound(&mut taken, k.checked_sub(1)),
            JmpCond::Le => bound(&mut taken, Some(k)),
            JmpCond::Eq => bound(&mut taken, Some(k)),
            _ => {}
        }
    }
    (taken, fall)
}

/// Bounds before each slot (`None` for slots no path reaches).
pub(crate) fn analyse(prog: &Program, fn_starts: &[usize]) -> Vec<Option<Known>> {
    let n = prog.insns.len();
    let mut at: Vec<Option<Known>> = vec![None; n];
    let mut visits = vec![0u32; n];
    // Every cycle of the control-flow graph contains a backward jump (fall-through only goes
    // forward), so widening at the targets of backward jumps alone ends the iteration, and
    // facts re-established after a loop (a mask, a constant) survive it.
    let mut loop_head = vec![false; n];
    for (pc, insn) in prog.insns.iter().enumerate() {
        if matches!(insn, Insn::Ja { .. } | Insn::Jmp { .. })
            && let Some(t) = insn.jump_target(pc)
            && let Ok(t) = usize::try_from(t)
            && t <= pc
            && t < n
        {
            loop_head[t] = true;
        }
    }
    let mut work: Vec<usize> = Vec::new();
    for &s in fn_starts {
        if s < n {
            at[s] = Some(Known::UNKNOWN);
            work.push(s);
        }
    }
    while let Some(pc) = work.pop() {
        let Some(mut b) = at[pc] else { continue };
        let Some(insn) = prog.insns.get(pc) else {
            continue;
        };
        transfer_known(insn, &mut b);
        let mut succ: Vec<(i64, Known)> = Vec::with_capacity(2);
        match *insn {
            Insn::Exit => {}
            Insn::Ja { .. } => succ.extend(insn.jump_target(pc).map(|t| (t, b))),
            Insn::Jmp { .. } => {
                let (taken, fall) = refine(insn, &b);
                succ.extend(insn.jump_target(pc).map(|t| (t, taken)));
                succ.push((pc as i64 + 1, fall));
            }
            Insn::Call(CallTarget::Local(_)) | Insn::LdImm64 { .. } => {
                succ.push((pc as i64 + insn.slots() as i64, b));
            }
            _ => succ.push((pc as i64 + 1, b)),
        }
        for (s, b) in succ {
            let Ok(s) = usize::try_from(s) else { continue };
            if s >= n {
                continue;
            }
            let changed = match &mut at[s] {
                None => {
                    at[s] = Some(b);
                    true
                }
                Some(old) => join_known(old, &b),
            };
            if changed {
                visits[s] += 1;
                if loop_head[s]
                    && visits[s] > 16
                    && let Some(old) = &mut at[s]
                {
                    // Widen: a loop still growing bounds gives up on them.
                    *old = Known::UNKNOWN;
                }
                work.push(s);
            }
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_loads_and_joins() {
        let raw = vm_core::asm::assemble(
            "ldxb %r2, [%r1+0]\nmov %r3, 0x7ffff\nand %r3, 0xfff\njeq %r2, 0, +1\nmov %r3, -1\nmul %r2, %r3\nexit",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let prog =
            Program::from_raw("t", vm_core::ProgType::Xdp, &raw).unwrap_or_else(|e| panic!("{e}"));
        let b = analyse(&prog, &[0]);
        let at_mul = b[5].unwrap_or_else(|| panic!("unreached"));
        assert_eq!(at_mul.max[2], Some(0xff));
        assert_eq!(at_mul.max[3], Some(u64::MAX)); // joined with -1
        assert_eq!(at_mul.konst[3], None);
        let at_jeq = b[3].unwrap_or_else(|| panic!("unreached"));
        assert_eq!(at_jeq.max[3], Some(0xfff));
        assert_eq!(at_jeq.konst[3], None);
        let raw = vm_core::asm::assemble("ldxdw %r2, [%r1+0]\njgt %r2, 1000, +1\nmul %r2, 3\nexit")
            .unwrap_or_else(|e| panic!("{e}"));
        let p2 =
            Program::from_raw("t", vm_core::ProgType::Xdp, &raw).unwrap_or_else(|e| panic!("{e}"));
        let r = analyse(&p2, &[0]);
        assert_eq!(r[2].map(|k| k.max[2]), Some(Some(1000)));
        assert_eq!(r[3].map(|k| k.max[2]), Some(None)); // joined with the taken edge
        let at_and = b[2].unwrap_or_else(|| panic!("unreached"));
        assert_eq!(at_and.konst[3], Some(0x7ffff));
    }

    #[test]
    fn shifts_and_or_xor_keep_a_bound_while_no_bit_can_leave() {
        let raw = vm_core::asm::assemble(
            "ldxb %r2, [%r1+0]\nand %r2, 15\nlsh %r2, 2\nmov %r3, %r2\nor %r3, 0x40\n\
             mov %r4, %r2\nlsh %r4, 60\nmov %r5, 0\nxor %r5, %r5\nlsh32 %r2, 30\nexit",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let prog =
            Program::from_raw("t", vm_core::ProgType::Xdp, &raw).unwrap_or_else(|e| panic!("{e}"));
        let b = analyse(&prog, &[0]);
        let max = |pc: usize, r: usize| b[pc].unwrap_or_else(|| panic!("unreached")).max[r];
        assert_eq!(max(3, 2), Some(60)); // (x & 15) << 2
        assert_eq!(max(5, 3), Some(127)); // 60 | 0x40: below 128
        assert_eq!(max(7, 4), None); // 60 << 60 may lose bits
        assert_eq!(max(9, 5), Some(0)); // 0 ^ 0
        assert_eq!(max(10, 2), Some(u64::from(u32::MAX))); // 60 << 30 overflows 32 bits
    }
}
