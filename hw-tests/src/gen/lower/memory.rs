//! Memory statements: fixed and variable offsets into the current region, atomics, and
//! the stack-slot scrub that keeps atomic fetches clear of a kernel verifier bug.

use vm_core::isa::{AluOp, AtomicOp, Insn, Operand, Reg, Size, Width};

use super::code::{Code, Cx, Region, Scalars, alu};
use super::stmt::{make_scalar, read, read_write, written};
use super::{LowerError, SCALAR_LEN, SCALAR_LO};
use crate::generator::recipe::{MemOp, Src};

/// Base register, offset and access size of a memory op in the current region, or `None`
/// when the region cannot hold it.
fn place(region: Region, size: Size, off: u16) -> (Reg, i16, Size) {
    match region {
        Region::Stack => {
            let n = size.bytes() as u16;
            let slot = off % (SCALAR_LEN / n);
            (10, SCALAR_LO + (slot * n) as i16, size)
        }
        Region::Value { base, size: len } => {
            let n = size.bytes() as u16;
            let slot = off % (len / n).max(1);
            (base, (slot * n) as i16, size)
        }
        Region::Packet { base, len } => {
            let mut size = size;
            while size.bytes() as u16 > len && size != Size::B {
                size = match size {
                    Size::DW => Size::W,
                    Size::W => Size::H,
                    _ => Size::B,
                };
            }
            let room = len.saturating_sub(size.bytes() as u16) + 1;
            (base, (off % room) as i16, size)
        }
    }
}

fn region_tag(region: Region, what: usize) -> &'static str {
    const TAGS: [[&str; 3]; 3] = [
        ["stack.load", "stack.store", "stack.atomic"],
        ["pkt.load", "pkt.store", "pkt.store_from_atomic"],
        ["value.load", "value.store", "value.atomic"],
    ];
    let r = match region {
        Region::Stack => 0,
        Region::Packet { .. } => 1,
        Region::Value { .. } => 2,
    };
    TAGS[r][what]
}

pub(super) fn lower_mem(
    op: &MemOp,
    cx: &Cx,
    st: &mut Scalars,
    code: &mut Code,
) -> Result<(), LowerError> {
    match *op {
        MemOp::Load {
            size,
            signed,
            dst,
            off,
        } => {
            let (base, off, size) = place(cx.region, size, off);
            let d = written(cx, dst);
            code.push(Insn::Load {
                size,
                signed: signed && size != Size::DW,
                dst: d,
                src: base,
                off,
            });
            st.set(d);
            code.tag(region_tag(cx.region, 0));
        }
        MemOp::Store { size, src, off } => {
            let src = match src {
                Src::Reg(r) => Operand::Reg(read(cx, st, code, r)),
                Src::Imm(v) => Operand::Imm(v),
            };
            let (base, off, size) = place(cx.region, size, off);
            code.push(Insn::Store {
                size,
                dst: base,
                src,
                off,
            });
            code.tag(region_tag(cx.region, 1));
        }
        MemOp::Indexed {
            store,
            size,
            signed,
            reg,
            idx,
        } => lower_indexed(store, size, signed, reg, idx, cx, st, code),
        MemOp::Atomic {
            op,
            size,
            fetch,
            src,
            off,
        } => {
            let size = if size == Size::DW { Size::DW } else { Size::W };
            if let Region::Packet { .. } = cx.region {
                let s = read(cx, st, code, src);
                let (base, off, size) = place(cx.region, size, off);
                code.push(Insn::Store {
                    size,
                    dst: base,
                    src: Operand::Reg(s),
                    off,
                });
                code.tag(region_tag(cx.region, 2));
                return Ok(());
            }
            let fetch = fetch || matches!(op, AtomicOp::Xchg | AtomicOp::CmpXchg);
            let s = if fetch {
                read_write(cx, st, code, src)
            } else {
                read(cx, st, code, src)
            };
            if op == AtomicOp::CmpXchg && !st.has(0) {
                make_scalar(st, code, 0);
            }
            let (base, off, size) = place(cx.region, size, off);
            if fetch && cx.region == Region::Stack {
                scrub_stack_slot(cx, st, code, off, s);
                code.tag("stack.atomic.fetch");
            }
            code.push(Insn::Atomic {
                op,
                size,
                fetch,
                dst: base,
                src: s,
                off,
            });
            code.tag(region_tag(cx.region, 2));
            if op == AtomicOp::CmpXchg && size == Size::W {
                // Linux 6.18 zero-extends r0 after a 32-bit cmpxchg only if it sees r0 read
                // as 64 bits on a path it walks; if that read lies past a pruned join, the
                // x86 JIT's cmpxchg (which leaves rax alone when the comparison succeeds)
                // keeps the old upper half (`regressions/KERNEL_BUGS.md` §3, pinned by
                // `kernel_6_18_cmpxchg32_zext_lost_on_pruned_path`). A 64-bit read right
                // after, on every path, makes the kernel insert the zero-extension; the
                // interpreter's own zero-extension still decides the value.
                code.mov_reg(0, 0);
                code.tag("cmpxchg32.read64");
            }
        }
    }
    Ok(())
}

/// `base + ((idx & mask) << log2(size))`, then a plain access through it. Region sizes
/// are powers of two, so the mask keeps every offset in bounds.
///
/// The address is formed differently per region, because of a Linux 6.18 verifier bug:
/// for `dst += src` with a scalar `dst` and a pointer `src` the result keeps `dst`'s stale
/// frame number instead of the pointer's. For a stack pointer that number picks which
/// frame the access is checked and predicted against: a wrong but existing frame gives
/// wrong predictions (pinned by `tests/diff_random.rs`,
/// `kernel_6_18_scalar_plus_fp_in_subprogram_points_to_frame_0`), a frame that no longer
/// exists (a scalar returned by a subprogram that once held that subprogram's stack
/// pointer) makes the verifier dereference NULL and oops (see
/// `hw-tests/regressions/KERNEL_BUGS.md`; never run that). So stack addresses are built
/// as `p = r10; p += index` in a second scratch register; map-value addresses, which
/// carry no frame number, keep the `index += pointer` form, so the JIT sees both.
#[allow(clippy::too_many_arguments)]
pub(super) fn lower_indexed(
    store: bool,
    size: Size,
    signed: bool,
    reg: Reg,
    idx: Reg,
    cx: &Cx,
    st: &mut Scalars,
    code: &mut Code,
) {
    let (base, base_off, len, tag) = match cx.region {
        Region::Stack => (10, SCALAR_LO, SCALAR_LEN, "stack.indexed"),
        Region::Value { base, size } => (base, 0, size, "value.indexed"),
        Region::Packet { .. } => return,
    };
    let n = size.bytes() as u16;
    let slots = (len / n).max(1);
    if !slots.is_power_of_two() {
        return;
    }
    let shift = n.trailing_zeros() as i32;
    let i = read(cx, st, code, idx);
    // t: the scaled index (then, for map values, the address); the load's destination when
    // loading, a register other than the stored value when storing.
    let (t, value) = if store {
        let v = read(cx, st, code, reg);
        let Some(t) = (0..10)
            .map(|k| (reg + 1 + k) % 10)
            .find(|&q| q != v && q != base && !cx.is_reserved(q))
        else {
            return;
        };
        (t, v)
    } else {
        let d = written(cx, reg);
        if d == base {
            return;
        }
        (d, d)
    };
    // p: the stack address register, distinct from t and from the stored value.
    let p = if base == 10 {
        let Some(p) = (0..10)
            .map(|k| (t + 1 + k) % 10)
            .find(|&q| q != t && q != value && !cx.is_reserved(q))
        else {
            return;
        };
        Some(p)
    } else {
        None
    };
    code.mov_reg(t, i);
    code.push(alu(
        AluOp::And,
        Width::W64,
        t,
        Operand::Imm(i32::from(slots - 1)),
    ));
    if shift > 0 {
        code.push(alu(AluOp::Lsh, Width::W64, t, Operand::Imm(shift)));
    }
    st.set(t);
    let ptr = match p {
        Some(p) => {
            code.mov_reg(p, 10);
            code.push(alu(AluOp::Add, Width::W64, p, Operand::Reg(t)));
            st.clear(p);
            p
        }
        None => {
            code.push(alu(AluOp::Add, Width::W64, t, Operand::Reg(base)));
            st.clear(t);
            t
        }
    };
    if store {
        code.store_reg(size, ptr, base_off, value);
    } else {
        code.push(Insn::Load {
            size,
            signed: signed && size != Size::DW,
            dst: t,
            src: ptr,
            off: base_off,
        });
        st.set(t);
    }
    code.tag(tag);
}

/// Works around a Linux 6.18 verifier bug (`hw-tests/regressions/KERNEL_BUGS.md` §1,
/// pinned by `tests/diff_random.rs`,
/// `kernel_6_18_atomic_fetch_from_stack_spill_is_not_precise`): precision backtracking
/// treats an atomic *fetch* from a stack slot holding a spilled scalar like a spill, so the
/// slot is never marked precise, states that differ only in that slot are pruned as equal,
/// and a branch on the fetched value can be wrongly hard-wired (live code removed). Rewriting
/// one byte of the slot with its own value first turns the slot into plain `STACK_MISC`
/// bytes, from which the fetch yields an unknown scalar: sound, and the same values at run
/// time. The byte goes through a scratch register (which then holds that byte).
fn scrub_stack_slot(cx: &Cx, st: &mut Scalars, code: &mut Code, off: i16, src: Reg) {
    let Some(t) = (1..10)
        .map(|k| (src + k) % 10)
        .find(|&q| q != 0 && q != src && !cx.is_reserved(q))
    else {
        return;
    };
    code.push(Insn::Load {
        size: Size::B,
        signed: false,
        dst: t,
        src: 10,
        off,
    });
    code.store_reg(Size::B, 10, off, t);
    st.set(t);
}
