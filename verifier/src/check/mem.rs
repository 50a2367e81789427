//! Loads, stores and atomics, and the per-region access rules they share with helper
//! arguments (the kernel's `check_mem_access`, `check_map_access`, `check_packet_access`,
//! `check_ctx_access`, `check_ptr_alignment`, `check_atomic`).
//!
//! A memory instruction is safe when its base register is a pointer whose region is known
//! and every byte `[off, off + size)` — for every value of the pointer's variable part —
//! lies inside it: map values against `value_size`, packets against the range proven by an
//! earlier comparison with `data_end`, the context against the field rules in [`crate::ctx`],
//! the stack against the frame (see [`super::stack`]).

use vm_core::isa::{AtomicOp, Operand, Size};

use super::Walker;
use vm_core::MapDef;

use crate::ctx::{self, CtxRead};
use crate::error::{Errno, VResult, VerifierError};
use crate::facts::PtrKind;
use crate::map_access;
use crate::reg::{RegState, RegType};
use crate::tnum::Tnum;

/// The kernel's `MAX_PACKET_OFF`.
pub(super) const MAX_PACKET_OFF: i64 = 0xffff;

/// What a store writes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value {
    /// A register's value.
    Reg(u8),
    /// A `BPF_ST` immediate.
    Imm(i32),
    /// Something unknown (atomic results, helper writes).
    Unknown,
}

/// Direction of an access.
#[derive(Debug, Clone, Copy)]
pub(super) enum Access {
    /// A load into `dst` (`None`: only check readability), sign-extending if `signed`.
    Read { dst: Option<u8>, signed: bool },
    /// A store of `Value`.
    Write(Value),
}

impl Walker<'_> {
    pub(super) fn check_load(
        &mut self,
        size: Size,
        signed: bool,
        dst: u8,
        src: u8,
        off: i16,
    ) -> VResult<()> {
        let base = self.read_reg(src, true)?;
        self.check_dst(dst)?;
        let val = self.check_mem_access(
            src,
            i32::from(off),
            size.bytes(),
            Access::Read {
                dst: Some(dst),
                signed,
            },
            false,
        )?;
        self.save_ptr_type(base.ty)?;
        if let Some(v) = val {
            let rw64 = size == Size::DW || signed;
            self.write_reg(dst, v, rw64);
            if v.is_pointer() || (rw64 && v.subreg_def != 0) {
                // A register restored from a spill keeps its own definition point.
                self.st.reg_mut(dst).subreg_def = v.subreg_def;
            }
        }
        Ok(())
    }

    pub(super) fn check_store(
        &mut self,
        size: Size,
        dst: u8,
        src: Operand,
        off: i16,
    ) -> VResult<()> {
        let value = match src {
            Operand::Reg(s) => {
                let sreg = *self.st.reg(s);
                let rw64 = sreg.is_pointer() || size == Size::DW;
                self.read_reg(s, rw64)?;
                Value::Reg(s)
            }
            Operand::Imm(i) => Value::Imm(i),
        };
        let base = self.read_reg(dst, true)?;
        self.check_mem_access(
            dst,
            i32::from(off),
            size.bytes(),
            Access::Write(value),
            false,
        )?;
        self.save_ptr_type(base.ty)
    }

    pub(super) fn check_atomic(
        &mut self,
        op: AtomicOp,
        size: Size,
        fetch: bool,
        dst: u8,
        src: u8,
        off: i16,
    ) -> VResult<()> {
        let dw = size == Size::DW;
        let sreg = *self.st.reg(src.min(10));
        self.read_reg(src, sreg.is_pointer() || dw)?;
        self.read_reg(dst, true)?;
        if op == AtomicOp::CmpXchg {
            let r0 = self.read_reg(0, dw)?;
            if self.is_leak(&r0) {
                return Err(self.err_eacces("R0 leaks addr into mem"));
            }
        }
        let sreg = *self.st.reg(src);
        if self.is_leak(&sreg) {
            return Err(self.err_eacces(format!("R{src} leaks addr into mem")));
        }
        let base = *self.st.reg(dst);
        if matches!(
            base.ty,
            RegType::Ctx | RegType::Packet | RegType::PacketMeta | RegType::Sock { .. }
        ) {
            return Err(self.err_eacces(format!(
                "BPF_ATOMIC stores into R{dst} {} is not allowed",
                base.ty.name()
            )));
        }
        let load_reg = if op == AtomicOp::CmpXchg {
            Some(0)
        } else if fetch {
            Some(src)
        } else {
            None
        };
        if let Some(r) = load_reg {
            self.check_dst(r)?;
        }
        let bytes = size.bytes();
        let off = i32::from(off);
        self.check_mem_access(
            dst,
            off,
            bytes,
            Access::Read {
                dst: None,
                signed: false,
            },
            true,
        )?;
        let loaded = match load_reg {
            Some(r) => self.check_mem_access(
                dst,
                off,
                bytes,
                Access::Read {
                    dst: Some(r),
                    signed: false,
                },
                true,
            )?,
            None => None,
        };
        self.check_mem_access(dst, off, bytes, Access::Write(Value::Unknown), true)?;
        if let (Some(r), Some(v)) = (load_reg, loaded) {
            self.write_reg(r, v, dw);
        }
        Ok(())
    }

    /// The kernel's `check_ptr_alignment`: stack accesses are always checked; others only
    /// with strict alignment (or for atomics, `strict_once`). One-byte accesses are always
    /// aligned.
    fn check_alignment(
        &self,
        reg: &RegState,
        off: i32,
        size: usize,
        strict_once: bool,
    ) -> VResult<()> {
        let mut strict = self.opts.strict_alignment || strict_once;
        let desc = match reg.ty {
            RegType::Packet | RegType::PacketMeta => {
                if !strict || size == 1 {
                    return Ok(());
                }
                // The kernel checks packet alignment as if the IP header were 2-byte
                // shifted (NET_IP_ALIGN), which is what strict-alignment machines see.
                let ip_align = 2i64;
                let t = reg.var.var_off.add(Tnum::constant(
                    (ip_align + i64::from(reg.off) + i64::from(off)) as u64,
                ));
                if !t.is_aligned(size as u64) {
                    return Err(self.err_eacces(format!(
                        "misaligned packet access off {ip_align}+{}+{}+{off} size {size}",
                        reg.var.var_off, reg.off
                    )));
                }
                return Ok(());
            }
            RegType::MapKey { .. } => "key ",
            RegType::MapValue { .. } => "value ",
            RegType::Ctx => "context ",
            RegType::Stack { .. } => {
                strict = true;
                "stack "
            }
            RegType::Sock { .. } => "sock ",
            _ => "",
        };
        if !strict || size == 1 {
            return Ok(());
        }
        let t = reg
            .var
            .var_off
            .add(Tnum::constant((i64::from(reg.off) + i64::from(off)) as u64));
        if !t.is_aligned(size as u64) {
            return Err(self.err_eacces(format!(
                "misaligned {desc}access off {}+{}+{off} size {size}",
                reg.var.var_off, reg.off
            )));
        }
        Ok(())
    }

    /// Checks a `size`-byte access at `base + off` and performs it on the abstract state.
    /// Reads return the loaded value (already narrowed to `size`).
    pub(super) fn check_mem_access(
        &mut self,
        base: u8,
        off: i32,
        size: usize,
        access: Access,
        strict_once: bool,
    ) -> VResult<Option<RegState>> {
        let reg = *self.st.reg(base);
        self.check_alignment(&reg, off, size, strict_once)?;
        let off = off.wrapping_add(reg.off);
        let write = matches!(access, Access::Write(_));
        let value_reg = match access {
            Access::Write(Value::Reg(r)) => Some(*self.st.reg(r)),
            _ => None,
        };
        let mut loaded: Option<RegState> = None;
        match reg.ty {
            RegType::MapValue {
                map,
                maybe_null: false,
            } => {
                self.note_mem(PtrKind::MapValue);
                if let Some(v) = value_reg
                    && self.is_leak(&v)
                {
                    return Err(self.err_eacces(format!(
                        "R{} leaks addr into map",
                        match access {
                            Access::Write(Value::Reg(r)) => r,
                            _ => 0,
                        }
                    )));
                }
                let def = self.maps.get(map as usize);
                let value_size = def.map_or(0, |m| m.value_size);
                self.check_map_access_type(def, off, size, write)?;
                self.check_region(
                    base,
                    &reg,
                    off,
                    size,
                    i64::from(value_size),
                    false,
                    Region::MapValue,
                )?;
                if !write {
                    loaded = Some(self.map_value_read(def, &reg, off, size, access)?);
                }
            }
            RegType::Mem {
                size: msize,
                maybe_null: false,
                ..
            } => {
                self.note_mem(PtrKind::Mem);
                self.check_region(base, &reg, off, size, i64::from(msize), false, Region::Mem)?;
                if !write {
                    loaded = Some(RegState::unknown_scalar());
                }
            }
            RegType::Ctx => {
                self.note_mem(PtrKind::Ctx);
                if let Some(v) = value_reg
                    && self.is_leak(&v)
                {
                    return Err(self.err_eacces(format!("R{base} leaks addr into ctx")));
                }
                self.check_ptr_off_reg(base, &reg)?;
                let Some(read) = ctx::access(self.prog_type, off, size, write) else {
                    return Err(self
                        .err_eacces(format!("invalid bpf_context access off={off} size={size}")));
                };
                if !write {
                    loaded = Some(match read {
                        CtxRead::Scalar => RegState::unknown_scalar(),
                        CtxRead::Pointer(t) => RegState::pointer(t, 0),
                        CtxRead::MaybeNull(t) => {
                            let mut r = RegState::pointer(t, 0);
                            r.id = self.new_id();
                            r
                        }
                    });
                }
            }
            RegType::Stack { frame } => {
                self.note_mem(PtrKind::Stack);
                loaded = self.check_stack_access(base, &reg, frame, off, size, access)?;
            }
            RegType::Packet | RegType::PacketMeta => {
                self.note_mem(PtrKind::Packet);
                if write && !ctx::direct_packet_access(self.prog_type, true) {
                    return Err(self.err_eacces("cannot write into packet"));
                }
                if let Some(v) = value_reg
                    && self.is_leak(&v)
                {
                    return Err(self.err_eacces(format!("R{base} leaks addr into packet")));
                }
                self.check_packet_access(base, &reg, off, size, false)?;
                if !write {
                    loaded = Some(RegState::unknown_scalar());
                }
            }
            RegType::Sock {
                kind,
                maybe_null: false,
            } => {
                self.note_mem(PtrKind::Sock);
                if write {
                    return Err(
                        self.err_eacces(format!("R{base} cannot write into {}", reg.ty.name()))
                    );
                }
                if reg.var.smin < 0 {
                    return Err(self.err_eacces(format!(
                        "R{base} min value is negative, either use unsigned index or do a if (index >=0) check."
                    )));
                }
                if !crate::sock::read_ok(kind, off, size as i32) {
                    return Err(self.err_eacces(format!(
                        "R{base} invalid {} access off={off} size={size}",
                        reg.ty.name()
                    )));
                }
                loaded = Some(RegState::unknown_scalar());
            }
            _ => {
                return Err(
                    self.err_eacces(format!("R{base} invalid mem access '{}'", reg.ty.name()))
                );
            }
        }
        if let (Some(mut v), Access::Read { signed, .. }) = (loaded, access) {
            if v.is_scalar() && size < 8 {
                if signed {
                    v.coerce_to_size_sx(size as u8);
                } else {
                    v.coerce_to_size(size as u8);
                }
            }
            return Ok(Some(v));
        }
        Ok(loaded)
    }

    /// The kernel's `check_map_access_type`: the map's flags may forbid the program to
    /// write (`BPF_F_RDONLY_PROG`) or read (`BPF_F_WRONLY_PROG`) its values.
    pub(super) fn check_map_access_type(
        &self,
        def: Option<&MapDef>,
        off: i32,
        size: usize,
        write: bool,
    ) -> VResult<()> {
        let Some(def) = def else {
            return Ok(());
        };
        let (ok, what) = if write {
            (map_access::can_write(def), "write into")
        } else {
            (map_access::can_read(def), "read from")
        };
        if !ok {
            return Err(self.err_eacces(format!(
                "{what} map forbidden, value_size={} off={off} size={size}",
                def.value_size
            )));
        }
        Ok(())
    }

    /// What a load from a map value gives: the stored constant when the map is frozen and
    /// read-only and the offset is constant (the kernel's `bpf_map_direct_read`), else an
    /// unknown scalar.
    fn map_value_read(
        &self,
        def: Option<&MapDef>,
        reg: &RegState,
        off: i32,
        size: usize,
        access: Access,
    ) -> VResult<RegState> {
        // Only a load into a register reads the contents (an atomic's access check does not).
        let Access::Read {
            dst: Some(_),
            signed,
        } = access
        else {
            return Ok(RegState::unknown_scalar());
        };
        let Some(def) = def else {
            return Ok(RegState::unknown_scalar());
        };
        if !reg.var.var_off.is_const() {
            return Ok(RegState::unknown_scalar());
        }
        let map_off = i64::from(off).wrapping_add(reg.var.var_off.value() as i64);
        match map_access::direct_read(def, map_off, size, signed) {
            None => Ok(RegState::unknown_scalar()),
            Some(Ok(v)) => Ok(RegState::constant(v)),
            Some(Err(map_access::DirectReadError::NotSupported)) => Err(VerifierError::new(
                self.pc,
                Errno::ENOTSUPP,
                "direct read of a read-only map needs a single-element array",
            )),
            Some(Err(map_access::DirectReadError::OutOfRange)) => {
                Err(self.err_einval("direct read of a read-only map past its value"))
            }
        }
    }

    /// The kernel's `__check_ptr_off_reg` for pointers that must be used unmodified (the
    /// context, release arguments).
    pub(super) fn check_ptr_off_reg(&self, regno: u8, reg: &RegState) -> VResult<()> {
        let name = reg.ty;
        if reg.off < 0 {
            return Err(self.err_eacces(format!(
                "negative offset {name} ptr R{regno} off={} disallowed",
                reg.off
            )));
        }
        if reg.off != 0 {
            return Err(self.err_eacces(format!(
                "dereference of modified {name} ptr R{regno} off={} disallowed",
                reg.off
            )));
        }
        if !reg.var.var_off.is_const() || reg.var.var_off.value() != 0 {
            return Err(self.err_eacces(format!(
                "variable {name} access var_off={} disallowed",
                reg.var.var_off
            )));
        }
        Ok(())
    }

    /// The kernel's `check_packet_access`: only the fixed offset is checked against the
    /// proven range (the variable part was bounded when the range was proven).
    pub(super) fn check_packet_access(
        &self,
        regno: u8,
        reg: &RegState,
        off: i32,
        size: usize,
        zero_ok: bool,
    ) -> VResult<()> {
        if reg.var.smin < 0 {
            return Err(self.err_eacces(format!(
                "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
            )));
        }
        let bad = reg.range < 0
            || off < 0
            || (size == 0 && !zero_ok)
            || i64::from(off) + size as i64 > i64::from(reg.range);
        if bad {
            let msg = if reg.range < 0 {
                format!("R{regno} offset is outside of the packet")
            } else {
                format!(
                    "invalid access to packet, off={off} size={size}, R{regno}(id={},off={off},r={})\nR{regno} offset is outside of the packet",
                    reg.id, reg.range
                )
            };
            return Err(self.err_eacces(msg));
        }
        Ok(())
    }

    /// The kernel's `check_mem_region_access` (map values, helper memory): every value of the
    /// variable part, plus `off`, must keep `[.., + size)` inside `[0, mem_size)`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_region(
        &self,
        regno: u8,
        reg: &RegState,
        off: i32,
        size: usize,
        mem_size: i64,
        zero_ok: bool,
        region: Region,
    ) -> VResult<()> {
        let off = i64::from(off);
        let v = &reg.var;
        if v.smin < 0
            && (v.smin == i64::MIN
                || off
                    .checked_add(v.smin)
                    .is_none_or(|x| i64::from(x as i32) != x)
                || v.smin + off < 0)
        {
            return Err(self.err_eacces(format!(
                "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
            )));
        }
        let fits = |start: i64| {
            start >= 0 && (size > 0 || zero_ok) && start.saturating_add(size as i64) <= mem_size
        };
        let smin_off = v.smin.saturating_add(off);
        if !fits(smin_off) {
            return Err(self.err_eacces(format!(
                "{}\nR{regno} min value is outside of the allowed memory range",
                region.message(mem_size, smin_off, size)
            )));
        }
        if v.umax >= crate::code::MAX_VAR_OFF as u64 {
            return Err(self.err_eacces(format!(
                "R{regno} unbounded memory access, make sure to bounds check any such access"
            )));
        }
        let umax_off = (v.umax as i64).saturating_add(off);
        if !fits(umax_off) {
            return Err(self.err_eacces(format!(
                "{}\nR{regno} max value is outside of the allowed memory range",
                region.message(mem_size, umax_off, size)
            )));
        }
        Ok(())
    }
}

/// Which region a bounded access is in (for the message).
#[derive(Debug, Clone, Copy)]
pub(super) enum Region {
    MapValue,
    Mem,
}

impl Region {
    fn message(self, mem_size: i64, off: i64, size: usize) -> String {
        match self {
            Region::MapValue => {
                format!("invalid access to map value, value_size={mem_size} off={off} size={size}")
            }
            Region::Mem => {
                format!("invalid access to memory, mem_size={mem_size} off={off} size={size}")
            }
        }
    }
}
