//! Lowering of statements, tracking scalars and repairing what shrinking broke.

use vm_core::isa::{AluOp, CallTarget, Insn, JmpCond, Operand, Reg, Size, Width};

use super::code::{Code, Cx, Region, Scalars, alu};
use super::memory;
use super::{
    KEY_SLOT, LowerError, MAX_ITERATIONS, MAX_LOOP_BRANCHES, MAX_LOOP_COUNT, SCALAR_LEN, SCALAR_LO,
    VALUE_LO,
};
use crate::generator::recipe::{Key, MapSel, Simple, Src, Stmt, Sub, XdpOp};
use crate::generator::{ARRAY_MAP, ARRAY_VALUE_SIZE, HASH_MAP, HASH_VALUE_SIZE};

/// Most passes over a loop body before its entry state is stable (each pass removes at
/// least one scalar, so 11 always suffice).
const MAX_FIXPOINT_PASSES: usize = 12;

/// The constant a fix-up `mov` puts into a register that had to become a scalar when no
/// other register holds one.
fn fixup_value(r: Reg) -> i32 {
    0x0101_0101_i32.wrapping_mul(i32::from(r) + 1)
}

/// Makes the writable register `w` a scalar: a copy of another scalar register (keeping
/// values the verifier does not know unknown), or a constant when there is none.
pub(super) fn make_scalar(st: &mut Scalars, code: &mut Code, w: Reg) {
    match (1..10).map(|k| (w + k) % 10).find(|&q| st.has(q)) {
        Some(q) => code.mov_reg(w, q),
        None => code.mov_imm(w, fixup_value(w)),
    }
    st.set(w);
}

/// A register to read: `r` if it holds a scalar, else the next register that does (a
/// shrunk recipe, a call that clobbered r1..r5, a region base pointer), else `r` (or, if
/// reserved, a writable register) after a fix-up `mov`.
pub(super) fn read(cx: &Cx, st: &mut Scalars, code: &mut Code, r: Reg) -> Reg {
    let r = r % 10;
    if let Some(q) = (0..10).map(|k| (r + k) % 10).find(|&q| st.has(q)) {
        return q;
    }
    // Some register is always writable (at most the counters and one base are reserved).
    let q = cx.writable(r).unwrap_or(0);
    code.mov_imm(q, fixup_value(q));
    st.set(q);
    q
}

/// A register that is both read and written: writable, and a scalar.
pub(super) fn read_write(cx: &Cx, st: &mut Scalars, code: &mut Code, r: Reg) -> Reg {
    let w = cx.writable(r).unwrap_or(0);
    if !st.has(w) {
        make_scalar(st, code, w);
    }
    w
}

pub(super) fn written(cx: &Cx, r: Reg) -> Reg {
    cx.writable(r).unwrap_or(0)
}

pub(super) fn lower_block(
    stmts: &[Stmt],
    cx: &Cx,
    st: &mut Scalars,
    code: &mut Code,
    subs: &[Sub],
) -> Result<(), LowerError> {
    for s in stmts {
        lower_stmt(s, cx, st, code, subs)?;
    }
    Ok(())
}

fn lower_stmt(
    s: &Stmt,
    cx: &Cx,
    st: &mut Scalars,
    code: &mut Code,
    subs: &[Sub],
) -> Result<(), LowerError> {
    match s {
        Stmt::Simple(op) => lower_simple(op, cx, st, code),
        Stmt::Mem(op) => memory::lower_mem(op, cx, st, code),
        Stmt::If {
            cond,
            width,
            dst,
            src,
            then,
            els,
            long_ja,
        } => {
            if !take_branch(cx, code) {
                code.tag("if.flattened");
                return lower_block(then, cx, st, code, subs);
            }
            let d = read(cx, st, code, *dst);
            let src = match *src {
                Src::Reg(r) => Operand::Reg(read(cx, st, code, r)),
                Src::Imm(v) => Operand::Imm(v),
            };
            let jump = code.push(Insn::Jmp {
                cond: *cond,
                width: *width,
                dst: d,
                src,
                off: 0,
            });
            code.tag("if");
            let on_jump = *st;
            lower_block(then, cx, st, code, subs)?;
            match els {
                None => {
                    code.patch_here(jump)?;
                    *st = st.meet(on_jump);
                }
                Some(els) => {
                    code.tag(if *long_ja {
                        "if_else.ja32"
                    } else {
                        "if_else.ja"
                    });
                    let over = code.push(Insn::Ja {
                        off: 0,
                        long: *long_ja,
                    });
                    code.patch_here(jump)?;
                    let after_then = *st;
                    *st = on_jump;
                    lower_block(els, cx, st, code, subs)?;
                    code.patch_here(over)?;
                    *st = st.meet(after_then);
                }
            }
            Ok(())
        }
        Stmt::Loop {
            count,
            counter,
            body,
        } => lower_loop(*count, *counter, body, cx, st, code, subs),
        Stmt::Packet { len, regs, body } => lower_packet(*len, *regs, body, cx, st, code, subs),
        Stmt::MapValue {
            map,
            key,
            ptr,
            body,
        } => {
            if !cx.calls_ok() || !take_branch(cx, code) {
                return Ok(());
            }
            let (fd, size) = map_info(*map);
            lower_key(key, cx, st, code);
            code.push(Insn::LdImm64 {
                dst: 1,
                value: vm_core::isa::LdImm64::MapFd(fd),
            });
            code.frame_addr(2, i32::from(KEY_SLOT));
            code.push(Insn::Call(CallTarget::Helper(1)));
            st.after_call();
            st.clear(0);
            code.tag(match map {
                MapSel::Array => "map.lookup.array",
                MapSel::Hash => "map.lookup.hash",
            });
            let Some(p) = (0..9)
                .map(|k| 1 + (ptr % 9 + k) % 9)
                .find(|&q| !cx.is_reserved(q))
            else {
                return Ok(());
            };
            let null = code.push(Insn::Jmp {
                cond: JmpCond::Eq,
                width: Width::W64,
                dst: 0,
                src: Operand::Imm(0),
                off: 0,
            });
            code.mov_reg(p, 0);
            st.clear(p);
            let skipped = *st;
            let inner = Cx {
                region: Region::Value { base: p, size },
                ..cx.reserve(p)
            };
            lower_block(body, &inner, st, code, subs)?;
            code.patch_here(null)?;
            *st = st.meet(skipped);
            Ok(())
        }
        Stmt::MapUpdate {
            map,
            key,
            value,
            flags,
        } => {
            if !cx.calls_ok() {
                return Ok(());
            }
            let (fd, size) = map_info(*map);
            lower_key(key, cx, st, code);
            for i in 0..(size / 8) {
                let off = VALUE_LO + 8 * i as i16;
                match value.get(usize::from(i)).copied().unwrap_or(Src::Imm(0)) {
                    Src::Imm(v) => code.store_imm(Size::DW, 10, off, v),
                    Src::Reg(r) => {
                        let r = read(cx, st, code, r);
                        code.store_reg(Size::DW, 10, off, r);
                    }
                }
            }
            code.push(Insn::LdImm64 {
                dst: 1,
                value: vm_core::isa::LdImm64::MapFd(fd),
            });
            code.frame_addr(2, i32::from(KEY_SLOT));
            code.frame_addr(3, i32::from(VALUE_LO));
            code.mov_imm(4, i32::from(flags % 3));
            code.push(Insn::Call(CallTarget::Helper(2)));
            st.after_call();
            code.tag(match map {
                MapSel::Array => "map.update.array",
                MapSel::Hash => "map.update.hash",
            });
            Ok(())
        }
        Stmt::MapDelete { map, key } => {
            if !cx.calls_ok() {
                return Ok(());
            }
            let (fd, _) = map_info(*map);
            lower_key(key, cx, st, code);
            code.push(Insn::LdImm64 {
                dst: 1,
                value: vm_core::isa::LdImm64::MapFd(fd),
            });
            code.frame_addr(2, i32::from(KEY_SLOT));
            code.push(Insn::Call(CallTarget::Helper(3)));
            st.after_call();
            code.tag(match map {
                MapSel::Array => "map.delete.array",
                MapSel::Hash => "map.delete.hash",
            });
            Ok(())
        }
        Stmt::CsumDiff {
            from,
            from_words,
            to,
            to_words,
            seed,
        } => {
            if !cx.calls_ok() {
                return Ok(());
            }
            let words = SCALAR_LEN / 4;
            let fw = 1 + u16::from(*from_words) % words;
            let tw = 1 + u16::from(*to_words) % words;
            let from = u16::from(*from) % (words - fw + 1);
            let to = u16::from(*to) % (words - tw + 1);
            let s = read(cx, st, code, *seed);
            if s != 5 {
                code.mov_reg(5, s);
            }
            code.frame_addr(1, i32::from(SCALAR_LO) + 4 * i32::from(from));
            code.mov_imm(2, 4 * i32::from(fw));
            code.frame_addr(3, i32::from(SCALAR_LO) + 4 * i32::from(to));
            code.mov_imm(4, 4 * i32::from(tw));
            code.push(Insn::Call(CallTarget::Helper(28)));
            st.after_call();
            code.tag("helper.csum_diff");
            Ok(())
        }
        Stmt::Xdp(op) => lower_xdp(op, cx, st, code),
        Stmt::Call { sub } => {
            if !cx.local_call_ok() {
                return Ok(());
            }
            let first = cx.sub.map_or(0, |i| i + 1);
            if first >= cx.nsubs {
                return Ok(());
            }
            let target = first + usize::from(*sub) % (cx.nsubs - first);
            let params = subs.get(target).map_or(0, |s| s.params.min(5));
            for r in 1..=params {
                if !st.has(r) {
                    make_scalar(st, code, r);
                }
            }
            let at = code.push(Insn::Call(CallTarget::Local(0)));
            code.calls.push((at, target));
            st.after_call();
            code.tag("call.local");
            Ok(())
        }
    }
}

/// Whether a conditional branch (an `if`, a packet bounds check, a NULL check) may be
/// emitted here; counts it when inside a loop body or a subprogram (see
/// [`MAX_LOOP_BRANCHES`](super::MAX_LOOP_BRANCHES)).
fn take_branch(cx: &Cx, code: &mut Code) -> bool {
    if cx.iters <= 1 {
        return true;
    }
    if code.loop_branches >= MAX_LOOP_BRANCHES / cx.iters {
        return false;
    }
    code.loop_branches += 1;
    true
}

fn map_info(map: MapSel) -> (i32, u16) {
    match map {
        MapSel::Array => (ARRAY_MAP as i32, ARRAY_VALUE_SIZE as u16),
        MapSel::Hash => (HASH_MAP as i32, HASH_VALUE_SIZE as u16),
    }
}

/// Writes the u32 key at the key slot (r1 is the scratch for a masked key: the call that
/// follows clobbers it anyway).
fn lower_key(key: &Key, cx: &Cx, st: &mut Scalars, code: &mut Code) {
    match *key {
        Key::Imm(k) => code.store_imm(Size::W, 10, KEY_SLOT, k as i32),
        Key::Reg { reg, mask } => {
            let r = read(cx, st, code, reg);
            if mask == 0 {
                code.store_reg(Size::W, 10, KEY_SLOT, r);
            } else {
                code.push(alu(AluOp::Mov, Width::W32, 1, Operand::Reg(r)));
                code.push(alu(AluOp::And, Width::W32, 1, Operand::Imm(mask as i32)));
                st.set(1);
                code.store_reg(Size::W, 10, KEY_SLOT, 1);
            }
        }
    }
}

fn lower_simple(op: &Simple, cx: &Cx, st: &mut Scalars, code: &mut Code) -> Result<(), LowerError> {
    match *op {
        Simple::Alu {
            op: AluOp::MovSx(bits),
            width,
            dst,
            src,
        } => {
            let src = match src {
                Src::Reg(r) => r,
                Src::Imm(_) => dst,
            };
            lower_simple(
                &Simple::MovSx {
                    width,
                    bits,
                    dst,
                    src,
                },
                cx,
                st,
                code,
            )?;
        }
        Simple::Alu {
            op: AluOp::Mov,
            width,
            dst,
            src,
        } => {
            let src = match src {
                Src::Reg(r) => Operand::Reg(read(cx, st, code, r)),
                Src::Imm(v) => Operand::Imm(v),
            };
            let d = written(cx, dst);
            code.push(alu(AluOp::Mov, width, d, src));
            st.set(d);
        }
        Simple::Alu {
            op,
            width,
            dst,
            src,
        } => {
            let d = read_write(cx, st, code, dst);
            let src = match src {
                Src::Reg(r) => Operand::Reg(read(cx, st, code, r)),
                Src::Imm(v) => Operand::Imm(legal_imm(op, width, v)),
            };
            code.push(alu(op, width, d, src));
        }
        Simple::MovSx {
            width,
            bits,
            dst,
            src,
        } => {
            let bits = match (bits, width) {
                (8 | 16, _) | (32, Width::W64) => bits,
                _ => 8,
            };
            let s = read(cx, st, code, src);
            let d = written(cx, dst);
            code.push(alu(AluOp::MovSx(bits), width, d, Operand::Reg(s)));
            st.set(d);
        }
        Simple::Neg { width, dst } => {
            let d = read_write(cx, st, code, dst);
            code.push(Insn::Neg { width, dst: d });
        }
        Simple::Endian { order, bits, dst } => {
            let bits = match bits {
                16 | 32 | 64 => bits,
                _ => 16,
            };
            let d = read_write(cx, st, code, dst);
            code.push(Insn::Endian {
                order,
                bits,
                dst: d,
            });
        }
        Simple::LdImm64 { dst, value } => {
            let d = written(cx, dst);
            code.push(Insn::LdImm64 {
                dst: d,
                value: vm_core::isa::LdImm64::Imm(value),
            });
            st.set(d);
        }
    }
    Ok(())
}

/// The verifier refuses a zero immediate divisor and immediate shifts outside the width.
fn legal_imm(op: AluOp, width: Width, v: i32) -> i32 {
    let bits = match width {
        Width::W32 => 32,
        Width::W64 => 64,
    };
    match op {
        AluOp::Div | AluOp::SDiv | AluOp::Mod | AluOp::SMod if v == 0 => 1,
        AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => v.rem_euclid(bits),
        _ => v,
    }
}

#[allow(clippy::too_many_arguments)]
fn lower_loop(
    count: u8,
    counter: Reg,
    body: &[Stmt],
    cx: &Cx,
    st: &mut Scalars,
    code: &mut Code,
    subs: &[Sub],
) -> Result<(), LowerError> {
    let Some(c) = (0..4)
        .map(|k| 6 + (counter % 4 + k) % 4)
        .find(|&q| !cx.is_reserved(q))
    else {
        return Ok(());
    };
    let room = (MAX_ITERATIONS / cx.iters.max(1)).max(1);
    let k = (1 + u32::from(count % MAX_LOOP_COUNT)).min(room);
    code.mov_imm(c, 0);
    st.set(c);
    let inner = Cx {
        iters: cx.iters.saturating_mul(k),
        ..cx.reserve(c)
    };
    let k = k as i32;
    let mut entry = *st;
    for _ in 0..MAX_FIXPOINT_PASSES {
        let mut body_code = Code::default();
        let mut exit = entry;
        lower_block(body, &inner, &mut exit, &mut body_code, subs)?;
        if exit.covers(entry) {
            let head = code.len();
            code.append(body_code);
            code.push(alu(AluOp::Add, Width::W64, c, Operand::Imm(1)));
            let at = code.len();
            let rel = head as i64 - at as i64 - 1;
            let off = i16::try_from(rel).map_err(|_| LowerError::JumpTooFar { at, rel })?;
            code.push(Insn::Jmp {
                cond: JmpCond::Lt,
                width: Width::W64,
                dst: c,
                src: Operand::Imm(k),
                off,
            });
            code.tag("loop");
            *st = exit;
            return Ok(());
        }
        entry = entry.meet(exit);
    }
    // Unreachable in practice (each pass removes a scalar); emitting nothing is still valid.
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn lower_packet(
    len: u8,
    regs: [Reg; 3],
    body: &[Stmt],
    cx: &Cx,
    st: &mut Scalars,
    code: &mut Code,
    subs: &[Sub],
) -> Result<(), LowerError> {
    if !cx.has_ctx || cx.region != Region::Stack || !take_branch(cx, code) {
        return Ok(());
    }
    // data, data_end, cursor: distinct writable registers in r1..r9.
    let mut taken = 0u16;
    let mut pick = |r: Reg| {
        let start = r % 9;
        let q = (0..9)
            .map(|k| 1 + (start + k) % 9)
            .find(|&q| !cx.is_reserved(q) && taken & (1 << q) == 0)?;
        taken |= 1 << q;
        Some(q)
    };
    let (Some(d), Some(e), Some(t)) = (pick(regs[0]), pick(regs[1]), pick(regs[2])) else {
        return Ok(());
    };
    let len = 1 + u16::from(len) % 64;
    code.load(Size::DW, d, 10, super::CTX_SLOT);
    code.load(Size::W, e, d, 4);
    code.load(Size::W, d, d, 0);
    code.mov_reg(t, d);
    code.push(alu(AluOp::Add, Width::W64, t, Operand::Imm(i32::from(len))));
    let check = code.push(Insn::Jmp {
        cond: JmpCond::Gt,
        width: Width::W64,
        dst: t,
        src: Operand::Reg(e),
        off: 0,
    });
    for r in [d, e, t] {
        st.clear(r);
    }
    code.tag("packet.check");
    let skipped = *st;
    let inner = Cx {
        region: Region::Packet { base: d, len },
        ..cx.reserve(d)
    };
    lower_block(body, &inner, st, code, subs)?;
    code.patch_here(check)?;
    *st = st.meet(skipped);
    Ok(())
}

fn lower_xdp(op: &XdpOp, cx: &Cx, st: &mut Scalars, code: &mut Code) -> Result<(), LowerError> {
    if !cx.has_ctx {
        return Ok(());
    }
    if let XdpOp::Field { rx_queue, dst } = *op {
        // Through dst itself: ctx pointer first, then the field over it.
        let d = written(cx, dst);
        code.load(Size::DW, d, 10, super::CTX_SLOT);
        code.load(Size::W, d, d, if rx_queue { 16 } else { 12 });
        st.set(d);
        code.tag(if rx_queue {
            "xdp.rx_queue_index"
        } else {
            "xdp.ingress_ifindex"
        });
        return Ok(());
    }
    if !cx.calls_ok() {
        return Ok(());
    }
    let (helper, tag) = match *op {
        XdpOp::AdjustHead(delta) => {
            code.mov_imm(2, delta);
            (44, "xdp.adjust_head")
        }
        XdpOp::AdjustMeta(delta) => {
            code.mov_imm(2, delta);
            (54, "xdp.adjust_meta")
        }
        XdpOp::AdjustTail(delta) => {
            code.mov_imm(2, delta);
            (65, "xdp.adjust_tail")
        }
        XdpOp::BuffLen => (188, "xdp.get_buff_len"),
        XdpOp::LoadBytes { off, word, len } | XdpOp::StoreBytes { off, word, len } => {
            let store = matches!(op, XdpOp::StoreBytes { .. });
            match off {
                Src::Imm(v) => code.mov_imm(2, v),
                Src::Reg(r) => {
                    let r = read(cx, st, code, r);
                    if r != 2 {
                        code.mov_reg(2, r);
                    }
                }
            }
            let start = 4 * (u16::from(word) % (SCALAR_LEN / 4));
            let len = 1 + u16::from(len) % (SCALAR_LEN - start);
            code.frame_addr(3, i32::from(SCALAR_LO) + i32::from(start));
            code.mov_imm(4, i32::from(len));
            if store {
                (190, "xdp.store_bytes")
            } else {
                (189, "xdp.load_bytes")
            }
        }
        XdpOp::Field { .. } => return Ok(()),
    };
    code.load(Size::DW, 1, 10, super::CTX_SLOT);
    code.push(Insn::Call(CallTarget::Helper(helper)));
    st.after_call();
    code.tag(tag);
    Ok(())
}
