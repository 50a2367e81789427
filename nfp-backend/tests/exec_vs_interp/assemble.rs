//! Turns a generated [`Spec`] into an XDP program.
//!
//! Layout of a program:
//! - optional `bpf_xdp_adjust_head/tail` with a constant delta (its result kept in r7);
//! - prologue: r9 = data, `if data + N > data_end goto short`, r0..r8 initialised (constants,
//!   `lddw`, packet loads), the stack area `[fp - S, fp)` filled with `stxdw`;
//! - the items;
//! - epilogue: r0..r8 stored into packet bytes 0..72 (so every register is compared), then
//!   the return value (0..=3 or a raw register);
//! - `short:` a constant return for packets shorter than N;
//! - the subprogram, when an item calls it.

use vm_core::isa::{AluOp, AtomicOp, ByteOrder, CallTarget, Insn, JmpCond, LdImm64, Operand};
use vm_core::isa::{Size, Width};
use vm_core::{ProgType, Program};

use super::generate::{AddSrc, COUNTERS, Init, Item, MapOp, Ret, Spec, VALUE, map_defs};

/// Packet pointer register.
const PKT: u8 = 9;

/// Where a jump goes.
#[derive(Debug, Clone, Copy)]
enum Label {
    /// Start of item k (k = items.len() is the epilogue).
    Item(usize),
    /// The short-packet exit.
    Short,
    /// A piece index (loop heads).
    Piece(usize),
}

/// A loop-body item rewritten so that it never writes the loop counter.
fn spare(it: &Item, counter: u8) -> Item {
    let other = |r: u8| if r == counter { (r + 1) % 9 } else { r };
    match it.clone() {
        Item::Alu { op, w32, dst, src } => Item::Alu {
            op,
            w32,
            dst: other(dst),
            src,
        },
        Item::Shift { op, w32, dst, src } => Item::Shift {
            op,
            w32,
            dst: other(dst),
            src,
        },
        Item::Be { bits, dst } => Item::Be {
            bits,
            dst: other(dst),
        },
        Item::PktLoad { size, dst, off } => Item::PktLoad {
            size,
            dst: other(dst),
            off,
        },
        Item::PktLoadSwap { dst, off } => Item::PktLoadSwap {
            dst: other(dst),
            off,
        },
        Item::StackLoad { size, dst, slot } => Item::StackLoad {
            size,
            dst: other(dst),
            slot,
        },
        i => i,
    }
}

/// An instruction or a jump still to resolve.
enum Piece {
    Insn(Insn),
    Jmp {
        cond: JmpCond,
        width: Width,
        dst: u8,
        src: Operand,
        to: Label,
    },
    Ja(Label),
    /// `call` of the subprogram.
    Call,
}

fn w(w32: bool) -> Width {
    if w32 { Width::W32 } else { Width::W64 }
}

fn alu(op: AluOp, width: Width, dst: u8, src: Operand) -> Insn {
    Insn::Alu {
        op,
        width,
        dst,
        src,
    }
}

fn mov(dst: u8, imm: i32) -> Insn {
    alu(AluOp::Mov, Width::W64, dst, Operand::Imm(imm))
}

fn align_down(off: i64, size: Size) -> i64 {
    off - off.rem_euclid(size.bytes() as i64)
}

struct Asm {
    pieces: Vec<Piece>,
    item_start: Vec<usize>,
    short: usize,
    sub: usize,
}

impl Asm {
    fn push(&mut self, i: Insn) {
        self.pieces.push(Piece::Insn(i));
    }
}

impl Spec {
    /// Packet offset for `sel` so that `size` bytes fit in the checked range.
    fn pkt_off(&self, sel: u16, size: Size) -> i16 {
        let room = u32::from(self.checked) - size.bytes() as u32 + 1;
        (u32::from(sel) % room) as i16
    }

    /// Initialised stack bytes of the main function: with a subprogram the two frames must
    /// fit the 512-byte stack together.
    fn stack_bytes(&self) -> u16 {
        if self.items.iter().any(|i| matches!(i, Item::CallSub { .. })) {
            self.stack.min(256)
        } else {
            self.stack
        }
    }

    /// Stack offset (negative, aligned) for `slot`.
    fn stack_off(&self, slot: u16, size: Size) -> i16 {
        let n = u32::from(self.stack_bytes()) / size.bytes() as u32;
        let i = u32::from(slot) % n;
        -(i64::from(self.stack_bytes()) - (i64::from(i) * size.bytes() as i64)) as i16
    }

    /// Assembles the spec into an XDP program.
    pub fn program(&self) -> Program {
        let mut a = Asm {
            pieces: Vec::new(),
            item_start: Vec::new(),
            short: 0,
            sub: 0,
        };
        // Prologue.
        if let Some((head, delta)) = self.adjust {
            a.push(alu(AluOp::Mov, Width::W64, 6, Operand::Reg(1)));
            a.push(mov(2, delta));
            // bpf_xdp_adjust_head (44) / bpf_xdp_adjust_tail (65).
            a.push(Insn::Call(CallTarget::Helper(if head { 44 } else { 65 })));
            // r7 keeps the helper's return value (compared through the epilogue).
            a.push(alu(AluOp::Mov, Width::W64, 7, Operand::Reg(0)));
            a.push(alu(AluOp::Mov, Width::W64, 1, Operand::Reg(6)));
        }
        a.push(Insn::Load {
            size: Size::W,
            signed: false,
            dst: PKT,
            src: 1,
            off: 0,
        });
        a.push(Insn::Load {
            size: Size::W,
            signed: false,
            dst: 3,
            src: 1,
            off: 4,
        });
        a.push(alu(AluOp::Mov, Width::W64, 4, Operand::Reg(PKT)));
        a.push(alu(
            AluOp::Add,
            Width::W64,
            4,
            Operand::Imm(i32::from(self.checked)),
        ));
        a.pieces.push(Piece::Jmp {
            cond: JmpCond::Gt,
            width: Width::W64,
            dst: 4,
            src: Operand::Reg(3),
            to: Label::Short,
        });
        for (r, init) in self.init.iter().enumerate() {
            let r = r as u8;
            if r == 7 && self.adjust.is_some() {
                continue;
            }
            a.push(match *init {
                Init::Mov(i) => mov(r, i),
                Init::Mov32(i) => alu(AluOp::Mov, Width::W32, r, Operand::Imm(i)),
                Init::Lddw(v) => Insn::LdImm64 {
                    dst: r,
                    value: LdImm64::Imm(v),
                },
                Init::Pkt(size, sel) => Insn::Load {
                    size,
                    signed: false,
                    dst: r,
                    src: PKT,
                    off: self.pkt_off(sel, size),
                },
            });
        }
        for k in 0..(self.stack_bytes() / 8) {
            a.push(Insn::Store {
                size: Size::DW,
                dst: 10,
                src: Operand::Reg((k % 9) as u8),
                off: -8 * (k as i16 + 1),
            });
        }
        for (k, item) in self.items.iter().enumerate() {
            a.item_start.push(a.pieces.len());
            self.lower_item(&mut a, k, item);
        }
        a.item_start.push(a.pieces.len());
        // Epilogue: every register into the packet.
        for r in 0..9u8 {
            a.push(Insn::Store {
                size: Size::DW,
                dst: PKT,
                src: Operand::Reg(r),
                off: 8 * i16::from(r),
            });
        }
        match self.ret {
            Ret::Const(c) => a.push(mov(0, c)),
            Ret::Raw => {}
            Ret::Masked => a.push(alu(AluOp::And, Width::W64, 0, Operand::Imm(3))),
            Ret::Reg(r) => a.push(alu(AluOp::Mov, Width::W64, 0, Operand::Reg(r))),
        }
        a.push(Insn::Exit);
        a.short = a.pieces.len();
        a.push(mov(0, self.short_ret));
        a.push(Insn::Exit);
        if self.items.iter().any(|i| matches!(i, Item::CallSub { .. })) {
            self.subprogram(&mut a);
        }
        resolve(&a)
    }

    /// The callee: r6..r8 and r0 from the arguments, the body, spills to its own frame,
    /// r0 mixed from everything.
    fn subprogram(&self, a: &mut Asm) {
        a.sub = a.pieces.len();
        for (d, s) in [(6, 1), (7, 2), (8, 3), (0, 4)] {
            a.push(alu(AluOp::Mov, Width::W64, d, Operand::Reg(s)));
        }
        for (i, it) in self.sub.iter().enumerate() {
            self.lower_item(a, i, it);
            let spill = i64::from(self.sub_stack / 8);
            if spill > 0 {
                let off = -8 * (1 + (i as i64 % spill)) as i16;
                a.push(Insn::Store {
                    size: Size::DW,
                    dst: 10,
                    src: Operand::Reg((i % 9) as u8),
                    off,
                });
                a.push(Insn::Load {
                    size: Size::W,
                    signed: false,
                    dst: ((i + 4) % 9) as u8,
                    src: 10,
                    off,
                });
            }
        }
        for r in 1..9 {
            a.push(alu(AluOp::Xor, Width::W64, 0, Operand::Reg(r)));
        }
        a.push(Insn::Exit);
    }

    fn lower_item(&self, a: &mut Asm, k: usize, item: &Item) {
        let end = self.items.len();
        match *item {
            Item::Alu { op, w32, dst, src } => a.push(alu(op, w(w32), dst, src)),
            Item::Shift { op, w32, dst, src } => {
                let bits = if w32 { 32 } else { 64 };
                let src = match src {
                    Operand::Reg(r) => {
                        a.push(alu(AluOp::And, Width::W64, r, Operand::Imm(bits - 1)));
                        Operand::Reg(r)
                    }
                    Operand::Imm(i) => Operand::Imm(i.rem_euclid(bits)),
                };
                a.push(alu(op, w(w32), dst, src));
            }
            Item::Neg { w32, dst } => a.push(Insn::Neg { width: w(w32), dst }),
            Item::Mul {
                w32,
                dst,
                src,
                narrow,
            } => {
                let mask = |a: &mut Asm, r: u8| {
                    if narrow {
                        a.push(alu(AluOp::And, Width::W64, r, Operand::Imm(0xffff)));
                    } else {
                        a.push(alu(AluOp::Mov, Width::W32, r, Operand::Reg(r)));
                    }
                };
                mask(a, dst);
                let src = match src {
                    Operand::Reg(r) => {
                        mask(a, r);
                        Operand::Reg(r)
                    }
                    Operand::Imm(i) if !w32 || narrow => {
                        Operand::Imm(if narrow { i & 0xffff } else { i & 0x7fff_ffff })
                    }
                    Operand::Imm(i) => Operand::Imm(i),
                };
                a.push(alu(AluOp::Mul, w(w32), dst, src));
            }
            Item::Div {
                w32,
                dst,
                divisor,
                via_reg,
                mask,
            } => {
                a.push(match mask {
                    0 => alu(AluOp::Mov, Width::W32, dst, Operand::Reg(dst)),
                    1 => alu(AluOp::And, Width::W64, dst, Operand::Imm(0xffff)),
                    2 => alu(AluOp::And, Width::W64, dst, Operand::Imm(0xff)),
                    _ => alu(AluOp::And, Width::W64, dst, Operand::Imm(0x7fff_ffff)),
                });
                // The NFP refuses a negative immediate divisor in both widths; a register
                // holding the constant (mov32, zero-extended) may use all of u32.
                let src = match via_reg {
                    Some(r) if r != dst => {
                        a.push(alu(
                            AluOp::Mov,
                            Width::W32,
                            r,
                            Operand::Imm(divisor.max(1) as i32),
                        ));
                        Operand::Reg(r)
                    }
                    _ => Operand::Imm((divisor & 0x7fff_ffff).max(1) as i32),
                };
                a.push(alu(AluOp::Div, w(w32), dst, src));
            }
            Item::Be { bits, dst } => a.push(Insn::Endian {
                order: ByteOrder::ToBe,
                bits,
                dst,
            }),
            Item::Lddw { dst, value } => a.push(Insn::LdImm64 {
                dst,
                value: LdImm64::Imm(value),
            }),
            Item::Jmp {
                cond,
                w32,
                dst,
                src,
                skip,
            } => a.pieces.push(Piece::Jmp {
                cond,
                width: w(w32),
                dst,
                src,
                to: Label::Item((k + 1 + usize::from(skip)).min(end)),
            }),
            Item::Ja {
                cond,
                dst,
                imm,
                skip,
            } => {
                a.push(Insn::Jmp {
                    cond,
                    width: Width::W64,
                    dst,
                    src: Operand::Imm(imm),
                    off: 1,
                });
                a.pieces
                    .push(Piece::Ja(Label::Item((k + 1 + usize::from(skip)).min(end))));
            }
            Item::PktLoad { size, dst, off } => a.push(Insn::Load {
                size,
                signed: false,
                dst,
                src: PKT,
                off: self.pkt_off(off, size),
            }),
            Item::PktLoadSwap { dst, off } => {
                a.push(Insn::Load {
                    size: Size::H,
                    signed: false,
                    dst,
                    src: PKT,
                    off: self.pkt_off(off, Size::H),
                });
                a.push(Insn::Endian {
                    order: ByteOrder::ToBe,
                    bits: 16,
                    dst,
                });
            }
            Item::PktStore { size, src, off } => a.push(Insn::Store {
                size,
                dst: PKT,
                src,
                off: self.pkt_off(off, size),
            }),
            Item::StackStore { size, src, slot } => a.push(Insn::Store {
                size,
                dst: 10,
                src: Operand::Reg(src),
                off: self.stack_off(slot, size),
            }),
            Item::StackLoad { size, dst, slot } => a.push(Insn::Load {
                size,
                signed: false,
                dst,
                src: 10,
                off: self.stack_off(slot, size),
            }),
            Item::Map(ref m) => map_item(a, m),
            Item::LoadMask {
                stack,
                size,
                dst,
                off,
                mask,
                w32,
                guard,
            } => {
                let (src, off) = if stack {
                    (10, self.stack_off(off, size))
                } else {
                    (PKT, self.pkt_off(off, size))
                };
                if let Some((cond, reg, imm)) = guard {
                    a.push(Insn::Jmp {
                        cond,
                        width: Width::W64,
                        dst: reg,
                        src: Operand::Imm(imm),
                        off: 1,
                    });
                }
                a.push(Insn::Load {
                    size,
                    signed: false,
                    dst,
                    src,
                    off,
                });
                a.push(alu(AluOp::And, w(w32), dst, Operand::Imm(mask)));
            }
            Item::Copy {
                size,
                n,
                from,
                to,
                tmp,
            } => {
                let step = size.bytes() as u16;
                let fits = |o: u16| {
                    u32::from(o) + u32::from(n) * u32::from(step) <= u32::from(self.checked)
                };
                let (from, to) = (
                    if fits(from) { from } else { 0 },
                    if fits(to) { to } else { 0 },
                );
                for i in 0..u16::from(n) {
                    a.push(Insn::Load {
                        size,
                        signed: false,
                        dst: tmp,
                        src: PKT,
                        off: (from + i * step) as i16,
                    });
                    a.push(Insn::Store {
                        size,
                        dst: PKT,
                        src: Operand::Reg(tmp),
                        off: (to + i * step) as i16,
                    });
                }
            }
            Item::CallSub { reinit } => {
                a.pieces.push(Piece::Call);
                for (r, v) in reinit.iter().enumerate() {
                    a.push(mov(r as u8 + 1, *v));
                }
            }
            Item::Prandom { reinit } => {
                a.push(Insn::Call(CallTarget::Helper(7)));
                for (r, v) in reinit.iter().enumerate() {
                    a.push(mov(r as u8 + 1, *v));
                }
            }
            Item::Loop {
                counter,
                n,
                cond,
                ref body,
            } => {
                a.push(mov(counter, i32::from(n)));
                let head = a.pieces.len();
                for it in body {
                    self.lower_item(a, k, &spare(it, counter));
                }
                a.push(alu(AluOp::Sub, Width::W64, counter, Operand::Imm(1)));
                let (c, imm) = match cond {
                    0 => (JmpCond::Ne, 0),
                    1 => (JmpCond::Sgt, 0),
                    _ => (JmpCond::Gt, 0),
                };
                a.pieces.push(Piece::Jmp {
                    cond: c,
                    width: Width::W64,
                    dst: counter,
                    src: Operand::Imm(imm),
                    to: Label::Piece(head),
                });
            }
        }
    }
}

fn map_item(a: &mut Asm, m: &MapOp) {
    let hash = m.map == 1;
    let key_off: i16 = if hash { -16 } else { -8 };
    a.push(mov(1, i32::from(m.key)));
    a.push(Insn::Store {
        size: if hash { Size::DW } else { Size::W },
        dst: 10,
        src: Operand::Reg(1),
        off: key_off,
    });
    a.push(Insn::LdImm64 {
        dst: 1,
        value: LdImm64::MapFd(i32::from(m.map)),
    });
    a.push(alu(AluOp::Mov, Width::W64, 2, Operand::Reg(10)));
    a.push(alu(
        AluOp::Add,
        Width::W64,
        2,
        Operand::Imm(i32::from(key_off)),
    ));
    a.push(Insn::Call(CallTarget::Helper(1)));
    let mut hit = Vec::new();
    for (dw, sel, src) in &m.adds {
        let size = if *dw { Size::DW } else { Size::W };
        let off = align_down(
            i64::from(*sel) % i64::from(COUNTERS - size.bytes() as i16 + 1),
            size,
        ) as i16;
        let reg = match *src {
            AddSrc::Imm(i) => {
                hit.push(mov(1, i));
                1
            }
            AddSrc::Reg(r) => r,
        };
        hit.push(Insn::Atomic {
            op: AtomicOp::Add,
            size,
            fetch: false,
            dst: 0,
            src: reg,
            off,
        });
    }
    let read_off = |size: Size, sel: u8| {
        let room = VALUE as i16 - COUNTERS - size.bytes() as i16 + 1;
        COUNTERS + (i16::from(sel) % room)
    };
    for (size, dst, sel) in &m.reads {
        hit.push(Insn::Load {
            size: *size,
            signed: false,
            dst: *dst,
            src: 0,
            off: read_off(*size, *sel),
        });
    }
    hit.push(match m.r0 {
        Ok((size, sel)) => Insn::Load {
            size,
            signed: false,
            dst: 0,
            src: 0,
            off: read_off(size, sel),
        },
        Err(i) => mov(0, i),
    });
    let skip: usize = hit.iter().map(Insn::slots).sum();
    a.push(Insn::Jmp {
        cond: JmpCond::Eq,
        width: Width::W64,
        dst: 0,
        src: Operand::Imm(0),
        off: skip as i16,
    });
    for i in hit {
        a.push(i);
    }
    for (r, v) in m.reinit.iter().enumerate() {
        a.push(mov(r as u8 + 1, *v));
    }
}

fn resolve(a: &Asm) -> Program {
    // Slot index of each piece.
    let mut slot = Vec::with_capacity(a.pieces.len() + 1);
    let mut n = 0usize;
    for p in &a.pieces {
        slot.push(n);
        n += match p {
            Piece::Insn(i) => i.slots(),
            _ => 1,
        };
    }
    slot.push(n);
    let target = |l: Label| match l {
        Label::Item(k) => slot[a.item_start[k]],
        Label::Short => slot[a.short],
        Label::Piece(p) => slot[p],
    };
    let mut insns = Vec::with_capacity(n);
    for (pi, p) in a.pieces.iter().enumerate() {
        let rel = |l: Label| (target(l) as i64 - slot[pi] as i64 - 1) as i16;
        match *p {
            Piece::Insn(i) => {
                insns.push(i);
                if matches!(i, Insn::LdImm64 { .. }) {
                    insns.push(Insn::LdImm64Tail);
                }
            }
            Piece::Jmp {
                cond,
                width,
                dst,
                src,
                to,
            } => insns.push(Insn::Jmp {
                cond,
                width,
                dst,
                src,
                off: rel(to),
            }),
            Piece::Ja(to) => insns.push(Insn::Ja {
                off: i32::from(rel(to)),
                long: false,
            }),
            Piece::Call => insns.push(Insn::Call(CallTarget::Local(
                slot[a.sub] as i32 - slot[pi] as i32 - 1,
            ))),
        }
    }
    Program {
        name: "generated".into(),
        section: Some("xdp".into()),
        prog_type: ProgType::Xdp,
        insns,
        maps: map_defs(),
    }
}
