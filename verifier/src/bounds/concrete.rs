//! Exact eBPF run-time semantics of ALU and conditional-jump instructions on concrete values.
//!
//! Why here: the abstract transfer functions fold constant operands by running the real
//! operation, so that `r1 = 7; r1 %= 3` is known to be 1 rather than "0..=2". The rules are the
//! ISA's (RFC 9669): arithmetic wraps; ALU32 works on the low halves and zero-extends; shift
//! counts are masked to the width; `x / 0 = 0`, `x % 0 = x`; signed `MIN / -1 = MIN`,
//! `MIN % -1 = 0`; the byte-order ops assume a little-endian machine.

use vm_core::isa::{AluOp, ByteOrder, JmpCond, Width};

/// Result of the binary ALU operation `dst op= src` at `width` (zero-extended for 32 bits).
/// `MovSx(n)` sign-extends the low `n` bits of `src` (to 32 bits for ALU32, then zero-extends);
/// an `n` that is not 8, 16 or 32 behaves as a plain move.
pub fn alu_value(op: AluOp, width: Width, dst: u64, src: u64) -> u64 {
    match width {
        Width::W64 => alu64(op, dst, src),
        Width::W32 => u64::from(alu32(op, dst as u32, src as u32)),
    }
}

fn alu64(op: AluOp, x: u64, y: u64) -> u64 {
    let (sx, sy) = (x as i64, y as i64);
    match op {
        AluOp::Add => x.wrapping_add(y),
        AluOp::Sub => x.wrapping_sub(y),
        AluOp::Mul => x.wrapping_mul(y),
        AluOp::Div => x.checked_div(y).unwrap_or(0),
        AluOp::SDiv => {
            if sy == 0 {
                0
            } else {
                sx.wrapping_div(sy) as u64
            }
        }
        AluOp::Mod => x.checked_rem(y).unwrap_or(x),
        AluOp::SMod => {
            if sy == 0 {
                x
            } else {
                sx.wrapping_rem(sy) as u64
            }
        }
        AluOp::Or => x | y,
        AluOp::And => x & y,
        AluOp::Xor => x ^ y,
        AluOp::Lsh => x << (y & 63),
        AluOp::Rsh => x >> (y & 63),
        AluOp::Arsh => (sx >> (y & 63)) as u64,
        AluOp::Mov => y,
        AluOp::MovSx(8) => y as i8 as i64 as u64,
        AluOp::MovSx(16) => y as i16 as i64 as u64,
        AluOp::MovSx(32) => y as i32 as i64 as u64,
        AluOp::MovSx(_) => y,
    }
}

fn alu32(op: AluOp, x: u32, y: u32) -> u32 {
    let (sx, sy) = (x as i32, y as i32);
    match op {
        AluOp::Add => x.wrapping_add(y),
        AluOp::Sub => x.wrapping_sub(y),
        AluOp::Mul => x.wrapping_mul(y),
        AluOp::Div => x.checked_div(y).unwrap_or(0),
        AluOp::SDiv => {
            if sy == 0 {
                0
            } else {
                sx.wrapping_div(sy) as u32
            }
        }
        AluOp::Mod => x.checked_rem(y).unwrap_or(x),
        AluOp::SMod => {
            if sy == 0 {
                x
            } else {
                sx.wrapping_rem(sy) as u32
            }
        }
        AluOp::Or => x | y,
        AluOp::And => x & y,
        AluOp::Xor => x ^ y,
        AluOp::Lsh => x << (y & 31),
        AluOp::Rsh => x >> (y & 31),
        AluOp::Arsh => (sx >> (y & 31)) as u32,
        AluOp::Mov => y,
        AluOp::MovSx(8) => y as i8 as i32 as u32,
        AluOp::MovSx(16) => y as i16 as i32 as u32,
        AluOp::MovSx(_) => y,
    }
}

/// Result of `dst = -dst` at `width`.
pub fn neg_value(width: Width, dst: u64) -> u64 {
    match width {
        Width::W64 => dst.wrapping_neg(),
        Width::W32 => u64::from((dst as u32).wrapping_neg()),
    }
}

/// Result of a byte-order instruction on the low `bits` (16, 32 or 64; others act as 64) of
/// `dst`, zero-extended. On a little-endian machine `le` only truncates and `be`/`bswap` swap.
pub fn endian_value(order: ByteOrder, bits: u8, dst: u64) -> u64 {
    match (order, bits) {
        (ByteOrder::ToLe, 16) => dst & 0xffff,
        (ByteOrder::ToLe, 32) => dst & 0xffff_ffff,
        (ByteOrder::ToLe, _) => dst,
        (_, 16) => u64::from((dst as u16).swap_bytes()),
        (_, 32) => u64::from((dst as u32).swap_bytes()),
        (_, _) => dst.swap_bytes(),
    }
}

/// Whether the conditional jump `if dst cond src` is taken at `width`.
pub fn jmp_taken(cond: JmpCond, width: Width, dst: u64, src: u64) -> bool {
    let (x, y) = match width {
        Width::W64 => (dst, src),
        Width::W32 => (dst & 0xffff_ffff, src & 0xffff_ffff),
    };
    let (sx, sy) = match width {
        Width::W64 => (x as i64, y as i64),
        Width::W32 => (i64::from(x as i32), i64::from(y as i32)),
    };
    match cond {
        JmpCond::Eq => x == y,
        JmpCond::Ne => x != y,
        JmpCond::Gt => x > y,
        JmpCond::Ge => x >= y,
        JmpCond::Lt => x < y,
        JmpCond::Le => x <= y,
        JmpCond::Sgt => sx > sy,
        JmpCond::Sge => sx >= sy,
        JmpCond::Slt => sx < sy,
        JmpCond::Sle => sx <= sy,
        JmpCond::Set => x & y != 0,
    }
}
