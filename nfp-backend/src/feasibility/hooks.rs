//! The per-instruction checks, run by the verifier at every instruction of every path with
//! that path's state (the kernel driver's `nfp_verify_insn`).
//!
//! Why per path, with memory across paths: the JIT translates each instruction once, so
//! what it emits must be right for every path. A load must see one pointer kind on all
//! paths (the code for a stack load and a map value load differ), a stack access must keep
//! its word alignment, a divisor must be the same constant everywhere. Each instruction
//! keeps an [`InsnMeta`] summarising the paths seen so far.

use verifier::OffloadHooks;
use verifier::reg::{RegState, RegType};
use verifier::state::VerifierState;
use vm_core::isa::{AluOp, Insn, Operand, Reg, Width};
use vm_core::{MapDef, ProgType, Program};

use super::{Found, category as cat, helpers, maps::MapUse, opcodes};
use crate::NicLimits;

/// The pointer kinds the JIT can access memory through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PtrClass {
    Ctx,
    Stack,
    Packet,
    MapValue,
}

impl PtrClass {
    /// The class of `ty`, `None` for pointers the NIC cannot dereference.
    pub(super) fn of(ty: RegType) -> Option<PtrClass> {
        match ty {
            RegType::Ctx => Some(PtrClass::Ctx),
            RegType::Stack { .. } => Some(PtrClass::Stack),
            RegType::Packet => Some(PtrClass::Packet),
            RegType::MapValue { .. } => Some(PtrClass::MapValue),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            PtrClass::Ctx => "ctx",
            PtrClass::Stack => "fp",
            PtrClass::Packet => "pkt",
            PtrClass::MapValue => "map_value",
        }
    }
}

/// What the paths seen so far did at one instruction.
#[derive(Debug, Clone)]
struct InsnMeta {
    /// The pointer kind of the first path's memory access.
    ptr: Option<PtrClass>,
    /// The first path's stack pointer offset (fixed + constant variable part).
    stack_off: Option<i64>,
    /// Paths disagreed on the stack offset.
    stack_moved: bool,
    /// MUL/DIV: smallest second operand, over paths.
    umin_src: u64,
    /// MUL/DIV: largest second operand, over paths.
    umax_src: u64,
    /// MUL/DIV: largest first operand, over paths.
    umax_dst: u64,
}

impl Default for InsnMeta {
    fn default() -> Self {
        InsnMeta {
            ptr: None,
            stack_off: None,
            stack_moved: false,
            umin_src: u64::MAX,
            umax_src: 0,
            umax_dst: 0,
        }
    }
}

/// What kind of memory access an instruction makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Load,
    Store { imm: bool },
    Atomic,
}

/// What the walk left behind for the whole-program checks.
#[derive(Debug)]
pub(super) struct Walked {
    /// Reasons found at instructions.
    pub(super) found: Found,
    /// Which instructions the walk reached.
    pub(super) hooked: Vec<bool>,
    /// The furthest packet byte (exclusive end offset) any access may touch, and where.
    pub(super) packet_reach: Option<(u64, usize)>,
}

/// The NFP driver's verifier hooks, collecting instead of vetoing.
#[derive(Debug)]
pub(super) struct NfpHooks<'a> {
    pub(super) prog_type: ProgType,
    pub(super) maps: &'a [MapDef],
    pub(super) nic: &'a NicLimits,
    pub(super) found: Found,
    pub(super) map_use: MapUse,
    meta: Vec<InsnMeta>,
    hooked: Vec<bool>,
    packet_reach: Option<(u64, usize)>,
}

impl<'a> NfpHooks<'a> {
    pub(super) fn new(program: &'a Program, nic: &'a NicLimits) -> NfpHooks<'a> {
        NfpHooks {
            prog_type: program.prog_type,
            maps: &program.maps,
            nic,
            found: Found::default(),
            map_use: MapUse::default(),
            meta: vec![InsnMeta::default(); program.insns.len()],
            hooked: vec![false; program.insns.len()],
            packet_reach: None,
        }
    }

    pub(super) fn finish(self) -> Walked {
        Walked {
            found: self.found,
            hooked: self.hooked,
            packet_reach: self.packet_reach,
        }
    }

    /// Notes that a packet access at `pc` may touch bytes up to (excluding) `end`.
    pub(super) fn reach_packet(&mut self, pc: usize, end: u64) {
        if self.packet_reach.is_none_or(|(e, _)| end > e) {
            self.packet_reach = Some((end, pc));
        }
    }

    /// The exclusive end of a packet access of `size` bytes at `reg + off`, with the
    /// pointer's variable part at its largest (the kernel's `max_pkt_offset` + 1).
    pub(super) fn packet_end(reg: &RegState, off: i64, size: u64) -> u64 {
        let start = i64::from(reg.off).saturating_add(off);
        let var = i64::try_from(reg.var.umax).unwrap_or(i64::MAX);
        u64::try_from(start.saturating_add(var).saturating_add_unsigned(size)).unwrap_or(0)
    }

    /// A memory access through `base + off` of `size` bytes.
    fn check_access(
        &mut self,
        pc: usize,
        st: &VerifierState,
        base: Reg,
        off: i16,
        size: usize,
        access: Access,
    ) {
        let reg = *st.reg(base);
        if !reg.is_pointer() {
            // Dereferencing a number: the verifier refuses it with its own message.
            return;
        }
        let Some(class) = PtrClass::of(reg.ty) else {
            self.found.at(pc, cat::PTR_TYPE, || {
                format!("[nfp] unsupported ptr type: {}", reg.ty.name())
            });
            return;
        };
        let meta = &mut self.meta[pc];
        match meta.ptr {
            None => meta.ptr = Some(class),
            Some(old) if old != class => {
                self.found.at(pc, cat::PTR_TYPE_CHANGED, || {
                    format!(
                        "[nfp] ptr type changed for instruction {} -> {}",
                        old.name(),
                        class.name()
                    )
                });
            }
            Some(_) => {}
        }
        let off = i64::from(off);
        match class {
            PtrClass::Stack => {
                self.check_stack(pc, &reg);
                if access == (Access::Store { imm: true }) {
                    self.store_imm(pc, class);
                }
            }
            PtrClass::Ctx => {
                let field = off.saturating_add(i64::from(reg.off));
                match access {
                    Access::Load => self.ctx_load(pc, field, size),
                    Access::Store { imm } => {
                        self.ctx_store(pc, field);
                        if imm {
                            self.store_imm(pc, class);
                        }
                    }
                    Access::Atomic => {}
                }
            }
            PtrClass::MapValue => match access {
                Access::Store { .. } => {
                    self.found.at(pc, cat::MAP_WRITE, || {
                        "[nfp] map writes not supported".to_string()
                    });
                }
                Access::Load | Access::Atomic => {
                    let RegType::MapValue { map, .. } = reg.ty else {
                        return;
                    };
                    let value_size = self.maps.get(map as usize).map_or(0, |m| m.value_size);
                    self.map_use.mark(
                        &mut self.found,
                        pc,
                        map,
                        value_size,
                        &reg,
                        off,
                        size,
                        access == Access::Atomic,
                    );
                }
            },
            PtrClass::Packet => {
                let end = Self::packet_end(&reg, off, size as u64);
                self.reach_packet(pc, end);
            }
        }
    }

    /// Stack accesses: constant offset, and the same word alignment on every path (the JIT
    /// addresses local memory by 32-bit words through a fixed index register).
    fn check_stack(&mut self, pc: usize, reg: &RegState) {
        if !reg.var.var_off.is_const() {
            self.found.at(pc, cat::STACK_VAR_OFFSET, || {
                format!(
                    "[nfp] variable ptr stack access, var_off: {}",
                    reg.var.var_off
                )
            });
            return;
        }
        let new = i64::from(reg.off).wrapping_add(reg.var.var_off.value() as i64);
        let meta = &mut self.meta[pc];
        let Some(old) = meta.stack_off else {
            meta.stack_off = Some(new);
            return;
        };
        meta.stack_moved |= old != new;
        if meta.stack_moved && old % 4 != new % 4 {
            self.found.at(pc, cat::STACK_LOCATION_CHANGED, || {
                format!("[nfp] stack access changed location was:{old} is:{new}")
            });
        }
    }

    /// `BPF_ST`: the JIT only has an immediate-store translation for packet memory.
    fn store_imm(&mut self, pc: usize, class: PtrClass) {
        self.found.at(pc, cat::STORE_IMM, || {
            format!(
                "[nfp] immediate store to {} not supported by the JIT (only to packet)",
                class.name()
            )
        });
    }

    /// Context loads: the JIT has translations for the packet pointers and length only
    /// (the offload context is not the host's rewritten one).
    fn ctx_load(&mut self, pc: usize, field: i64, size: usize) {
        let supported = size == 4
            && match self.prog_type {
                ProgType::Xdp => matches!(field, 0 | 4),
                ProgType::SchedCls => matches!(field, 0 | 76 | 80),
                _ => true,
            };
        if !supported {
            let name = self.ctx_field_name(field);
            self.found.at(pc, cat::CTX_FIELD, || {
                format!(
                    "[nfp] ctx load of {name} (offset {field}, {size} B) not supported by the JIT"
                )
            });
        }
    }

    fn ctx_field_name(&self, field: i64) -> &'static str {
        match (self.prog_type, field) {
            (ProgType::Xdp, 0) => "data",
            (ProgType::Xdp, 4) => "data_end",
            (ProgType::Xdp, 8) => "data_meta",
            (ProgType::Xdp, 12) => "ingress_ifindex",
            (ProgType::Xdp, 16) => "rx_queue_index",
            (ProgType::Xdp, 20) => "egress_ifindex",
            (ProgType::SchedCls, 0) => "len",
            (ProgType::SchedCls, 8) => "mark",
            (ProgType::SchedCls, 16) => "protocol",
            (ProgType::SchedCls, 40) => "ifindex",
            (ProgType::SchedCls, 48..=67) => "cb[]",
            (ProgType::SchedCls, 76) => "data",
            (ProgType::SchedCls, 80) => "data_end",
            (ProgType::SchedCls, 140) => "data_meta",
            _ => "a field",
        }
    }

    /// Context stores: only XDP's `rx_queue_index` (queue selection), if the firmware has it.
    fn ctx_store(&mut self, pc: usize, field: i64) {
        if self.prog_type == ProgType::Xdp && field == 16 {
            if !self.nic.fw_queue_select {
                self.found.at(pc, cat::CTX_STORE, || {
                    "[nfp] queue selection not supported by FW".to_string()
                });
            }
            return;
        }
        self.found.at(pc, cat::CTX_STORE, || {
            format!("[nfp] unsupported store to context field (offset {field})")
        });
    }

    /// Atomics: a plain add of a scalar to a map value word.
    fn check_atomic(&mut self, pc: usize, insn: &Insn, st: &VerifierState) {
        let Insn::Atomic {
            size,
            dst,
            src,
            off,
            ..
        } = *insn
        else {
            return;
        };
        let target = st.reg(dst);
        if target.is_pointer() && !matches!(target.ty, RegType::MapValue { .. }) {
            self.found.at(pc, cat::ATOMIC_TARGET, || {
                format!(
                    "[nfp] atomic add not to a map value pointer: {}",
                    target.ty.name()
                )
            });
            return;
        }
        let operand = st.reg(src);
        if operand.is_pointer() {
            self.found.at(pc, cat::ATOMIC_SRC, || {
                format!("[nfp] atomic add not of a scalar: {}", operand.ty.name())
            });
        }
        self.check_access(pc, st, dst, off, size.bytes(), Access::Atomic);
    }

    /// Multiply and divide: 32-bit operands (the multiplier steps are 32×32), and division
    /// only by one constant (a reciprocal multiplication).
    fn check_alu(
        &mut self,
        pc: usize,
        op: AluOp,
        width: Width,
        dst: Reg,
        src: Operand,
        st: &VerifierState,
    ) {
        let d = st.reg(dst);
        if !d.is_scalar() {
            return;
        }
        let umax = |r: &RegState| match width {
            Width::W64 => r.var.umax,
            Width::W32 => u64::from(r.var.u32_max),
        };
        let umin = |r: &RegState| match width {
            Width::W64 => r.var.umin,
            Width::W32 => u64::from(r.var.u32_min),
        };
        let meta = &mut self.meta[pc];
        meta.umax_dst = meta.umax_dst.max(umax(d));
        if let Operand::Reg(s) = src {
            let s = st.reg(s);
            meta.umin_src = meta.umin_src.min(umin(s));
            meta.umax_src = meta.umax_src.max(umax(s));
        }
        let (umax_dst, umin_src, umax_src) = (meta.umax_dst, meta.umin_src, meta.umax_src);
        let limit = u64::from(u32::MAX);
        match op {
            AluOp::Mul => {
                let why = if umax_dst > limit {
                    Some("multiplier is not within u32 value range")
                } else if matches!(src, Operand::Reg(_)) && umax_src > limit {
                    Some("multiplicand is not within u32 value range")
                } else if width == Width::W64 && matches!(src, Operand::Imm(i) if i < 0) {
                    Some("sign extended multiplicand won't be within u32 value range")
                } else {
                    None
                };
                if let Some(why) = why {
                    self.found.at(pc, cat::MUL_RANGE, || format!("[nfp] {why}"));
                }
            }
            AluOp::Div => {
                if umax_dst > limit {
                    self.found.at(pc, cat::DIV_RANGE, || {
                        "[nfp] dividend is not within u32 value range".to_string()
                    });
                }
                match src {
                    Operand::Reg(_) if umin_src != umax_src => {
                        self.found.at(pc, cat::DIV_NOT_CONST, || {
                            format!("[nfp] divisor is not constant: [{umin_src}, {umax_src}]")
                        });
                    }
                    Operand::Reg(_) if umax_src > limit => {
                        self.found.at(pc, cat::DIV_RANGE, || {
                            "[nfp] divisor is not within u32 value range".to_string()
                        });
                    }
                    Operand::Imm(i) if i < 0 => {
                        self.found.at(pc, cat::DIV_NEGATIVE, || {
                            "[nfp] divide by negative constant is not supported".to_string()
                        });
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// tc exits: the outro maps a *constant* R0 to an action, and has no OK/RECLASSIFY
    /// (nor REDIRECT, which the driver's check refuses among the values up to 7).
    fn check_exit(&mut self, pc: usize, st: &VerifierState) {
        if self.prog_type != ProgType::SchedCls || st.curframe() != 0 {
            return;
        }
        let r0 = st.reg(0);
        match r0.const_value() {
            None => self.found.at(pc, cat::EXIT_STATE, || {
                format!(
                    "[nfp] unsupported exit state: {}, var_off: {}",
                    r0.ty.name(),
                    r0.var.var_off
                )
            }),
            Some(v) if v <= 7 && !matches!(v, 2 | 4 | 5) => {
                self.found.at(pc, cat::EXIT_STATE, || {
                    format!("[nfp] unsupported exit state: scalar, imm: {v:#x}")
                });
            }
            Some(_) => {}
        }
    }
}

impl OffloadHooks for NfpHooks<'_> {
    fn insn_hook(&mut self, pc: usize, insn: &Insn, st: &VerifierState) -> Result<(), String> {
        if let Some(h) = self.hooked.get_mut(pc) {
            *h = true;
        } else {
            return Ok(());
        }
        // Unsupported opcodes are rare, so building the message on every visit is cheap.
        if let Some((c, m)) = opcodes::unsupported(insn) {
            self.found.at(pc, c, || m);
        }
        match *insn {
            Insn::Load { size, src, off, .. } => {
                self.check_access(pc, st, src, off, size.bytes(), Access::Load);
            }
            Insn::Store {
                size,
                dst,
                src,
                off,
            } => {
                let imm = matches!(src, Operand::Imm(_));
                self.check_access(pc, st, dst, off, size.bytes(), Access::Store { imm });
            }
            Insn::Atomic { .. } if opcodes::is_plain_atomic_add(insn) => {
                self.check_atomic(pc, insn, st);
            }
            Insn::Alu {
                op: op @ (AluOp::Mul | AluOp::Div),
                width,
                dst,
                src,
            } => self.check_alu(pc, op, width, dst, src, st),
            Insn::Call(vm_core::isa::CallTarget::Helper(id)) => {
                helpers::check_call(self, pc, id, st)
            }
            Insn::Exit => self.check_exit(pc, st),
            _ => {}
        }
        Ok(())
    }
}
