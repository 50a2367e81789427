//! Calls and exits: helpers with prototypes, bpf-to-bpf calls, `exit`, and the legacy packet
//! loads that behave like helper calls (the kernel's `check_helper_call`, `check_func_call`,
//! `prepare_func_exit`, `check_return_code`, `check_ld_abs`).
//!
//! A helper call checks each argument against its prototype, clobbers R1–R5, and sets R0 from
//! the return type (a maybe-NULL map value gets a fresh id for its NULL check). Helpers that
//! can move packet data invalidate every packet pointer. A bpf-to-bpf call pushes a frame
//! with R1–R5 copied; its `exit` returns R0 to the caller.

use vm_core::MapType;
use vm_core::isa::CallTarget;

use super::{Flow, Walker, jump_target};
use crate::error::{Errno, VResult, VerifierError};
use crate::helpers::{self, ArgType, RetType};
use crate::log;
use crate::reg::{RegState, RegType};
use crate::stack::{REG_SIZE, SlotType, locate};
use crate::state::{FuncState, MAX_CALL_FRAMES, RefState};

/// What argument checking learnt for the rest of the call (the kernel's `bpf_call_arg_meta`).
#[derive(Debug, Default)]
struct Meta {
    map: Option<u32>,
    /// The pending memory argument: (register, its state, written by the helper, is NULL).
    mem: Option<(u8, RegState, bool, bool)>,
    alloc_size: Option<u64>,
    release: Option<u32>,
    const_key: Option<u64>,
}

/// `bpf_tail_call`'s helper number.
const TAIL_CALL: i32 = 12;

/// `bpf_fib_lookup`'s helper number.
const FIB_LOOKUP: i32 = 69;

const MEM_TYPES: &str =
    "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_";
const INT_PTR_TYPES: &str = "fp, pkt, pkt_meta, map_key, map_value";
const SOCK_TYPES: &str = "sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_";

impl Walker<'_> {
    pub(super) fn check_call(&mut self, target: CallTarget) -> VResult<Flow> {
        match target {
            CallTarget::Helper(id) => {
                self.check_helper_call(id)?;
                Ok(Flow::Next(self.pc + 1))
            }
            CallTarget::Local(rel) => self.check_local_call(rel),
            CallTarget::Kfunc(id) => Err(self.err_einval(format!(
                "calling kernel function {id} is not supported by this verifier (no kernel BTF)"
            ))),
        }
    }

    fn check_helper_call(&mut self, id: i32) -> VResult<()> {
        let name = vm_core::asm::helper_name(id);
        if !(1..=helpers::MAX_HELPER_ID).contains(&id) || name.is_none() {
            return Err(self.err_einval(format!("invalid func unknown#{id}")));
        }
        let name = name.unwrap_or("unknown");
        if !helpers::allowed(self.prog_type, id) {
            return Err(self.err_einval(format!(
                "program of this type cannot use helper {name}#{id}"
            )));
        }
        let Some(proto) = helpers::proto(id) else {
            return Err(self.err_einval(format!(
                "helper {name}#{id} is not modelled by this verifier"
            )));
        };
        let mut meta = Meta::default();
        for (i, arg) in proto.args.iter().enumerate() {
            self.check_func_arg(i as u8 + 1, *arg, &mut meta)?;
        }
        if let Some(map) = meta.map {
            // The kernel's `record_func_map`: helpers that change a read-only map.
            if let Some(def) = self.maps.get(map as usize)
                && !crate::map_access::can_write(def)
                && matches!(id, 2 | 3 | 87 | 88)
            {
                return Err(self.err_eacces("write into map forbidden"));
            }
            let mt = self.maps.get(map as usize).map(|m| m.map_type);
            if let Some(mt) = mt
                && helpers::map_func_incompatible(mt, id)
            {
                return Err(self.err_einval(format!(
                    "cannot pass map_type {} into func {name}#{id}",
                    mt.kernel_number()
                )));
            }
        }
        if id == TAIL_CALL {
            self.record_tail_call_key(meta.map);
        }
        if id == FIB_LOOKUP {
            // Its parameters are read and written back: on the stack they become data.
            let (params, size) = (*self.st.reg(2), self.st.reg(3).var.umax);
            self.clobber_helper_stack(2, &params, size)?;
        }
        if let Some(ref_id) = meta.release {
            self.release_reference(ref_id)?;
        }
        for r in 0..=5u8 {
            self.touch_reg(r);
            self.st.reg_mut(r).mark_not_init();
        }
        let r0 = match proto.ret {
            RetType::Integer => RegState::unknown_scalar(),
            RetType::Void => RegState::not_init(),
            RetType::MapValueOrNull => {
                let Some(map) = meta.map else {
                    return Err(self.err_einval("kernel subsystem misconfigured verifier"));
                };
                let def = self.maps.get(map as usize);
                let elide = def.is_some_and(|d| {
                    matches!(d.map_type, MapType::Array | MapType::PercpuArray)
                        && self.privileged()
                        && id == 1
                        && meta.const_key.is_some_and(|k| k < u64::from(d.max_entries))
                });
                let mut r = RegState::pointer(
                    RegType::MapValue {
                        map,
                        maybe_null: !elide,
                    },
                    0,
                );
                if !elide {
                    r.id = self.new_id();
                }
                r
            }
            RetType::RingbufMemOrNull => {
                let size = meta.alloc_size.unwrap_or(0);
                let mut r = RegState::pointer(
                    RegType::Mem {
                        size: u32::try_from(size).unwrap_or(u32::MAX),
                        ringbuf: true,
                        maybe_null: true,
                    },
                    0,
                );
                // The kernel numbers the NULL-check id, then the reference, which replaces it.
                let _ = self.new_id();
                r.id = self.new_id();
                r.ref_obj_id = r.id;
                self.st.refs.push(RefState {
                    id: r.id,
                    insn: self.pc,
                });
                r
            }
            RetType::SockOrNull { kind, acquire } => {
                let mut r = RegState::pointer(
                    RegType::Sock {
                        kind,
                        maybe_null: true,
                    },
                    0,
                );
                r.id = self.new_id();
                if acquire {
                    r.id = self.new_id();
                    r.ref_obj_id = r.id;
                    self.st.refs.push(RefState {
                        id: r.id,
                        insn: self.pc,
                    });
                }
                r
            }
        };
        self.write_reg(0, r0, true);
        if proto.changes_pkt_data {
            self.st.for_each_reg_mut(|r| {
                if r.ty.is_pkt_any() {
                    r.mark_unknown();
                }
            });
        }
        Ok(())
    }

    /// The kernel's `record_func_key`: a tail-call index (R3) that is a known constant
    /// inside the program array is remembered so the call can be made direct, and that
    /// remembering relies on the exact value, so R3 becomes precise. Stored states that
    /// reach this call then only prune paths with the same index, which shapes the walk
    /// (and the processed count) as in the kernel.
    fn record_tail_call_key(&mut self, map: Option<u32>) {
        let Some(def) = map.and_then(|m| self.maps.get(m as usize)) else {
            return;
        };
        let key = self.st.reg(3);
        if key.is_scalar()
            && key.var.var_off.is_const()
            && key.var.var_off.value() < u64::from(def.max_entries)
        {
            self.mark_precise(3);
        }
    }

    /// Drops reference `id` and every pointer holding it.
    fn release_reference(&mut self, id: u32) -> VResult<()> {
        let before = self.st.refs.len();
        self.st.refs.retain(|r| r.id != id);
        if self.st.refs.len() == before {
            return Err(self.err_einval(format!("unreleased reference id={id} not found")));
        }
        self.st.for_each_reg_mut(|r| {
            if r.ref_obj_id == id {
                r.mark_unknown();
            }
        });
        Ok(())
    }

    fn type_mismatch(&self, regno: u8, reg: &RegState, expected: &str) -> VerifierError {
        self.err_eacces(format!(
            "R{regno} type={} expected={expected}",
            reg.ty.name()
        ))
    }

    fn check_func_arg(&mut self, regno: u8, arg: ArgType, meta: &mut Meta) -> VResult<()> {
        if arg == ArgType::DontCare {
            return Ok(());
        }
        let reg = self.read_reg(regno, true)?;
        if arg == ArgType::Anything {
            if self.is_leak(&reg) {
                return Err(self.err_eacces(format!("R{regno} leaks addr into helper function")));
            }
            return Ok(());
        }
        if reg.ty.is_pkt() && !crate::ctx::direct_packet_access(self.prog_type, false) {
            return Err(self.err_eacces("helper access to the packet is not allowed"));
        }
        let is_mem = |t: RegType| {
            matches!(
                t,
                RegType::Stack { .. }
                    | RegType::Packet
                    | RegType::PacketMeta
                    | RegType::MapKey { .. }
                    | RegType::MapValue {
                        maybe_null: false,
                        ..
                    }
                    | RegType::Mem {
                        maybe_null: false,
                        ..
                    }
            )
        };
        match arg {
            ArgType::DontCare | ArgType::Anything => {}
            ArgType::ConstMapPtr => {
                let RegType::MapPtr { map } = reg.ty else {
                    return Err(self.type_mismatch(regno, &reg, "map_ptr"));
                };
                meta.map = Some(map);
            }
            ArgType::MapKey | ArgType::MapValue { .. } => {
                if !is_mem(reg.ty) {
                    return Err(self.type_mismatch(regno, &reg, MEM_TYPES));
                }
                let Some(def) = meta.map.and_then(|m| self.maps.get(m as usize)) else {
                    return Err(self.err_eacces("invalid map_ptr to access map->key"));
                };
                let (size, write) = match arg {
                    ArgType::MapKey => (def.key_size, false),
                    ArgType::MapValue { uninit } => (def.value_size, uninit),
                    _ => (0, false),
                };
                let elidable = matches!(def.map_type, MapType::Array | MapType::PercpuArray);
                if arg == ArgType::MapKey && elidable && self.privileged() {
                    let key = self.constant_map_key(&reg, size);
                    meta.const_key = key.map(|(k, _)| k);
                    // Only a spilled constant is relied on (known-zero bytes are not marked,
                    // as in the kernel's `get_constant_map_key`).
                    if key.is_some_and(|(_, spilled)| spilled)
                        && let RegType::Stack { frame } = reg.ty
                    {
                        // The key decides whether the result can be NULL.
                        let off = i64::from(reg.off).wrapping_add(reg.var.var_off.value() as i64);
                        let (spi, _) = locate(off as i32);
                        let mut bt = crate::precision::Backtrack::new(self.st.curframe());
                        if bt.set_slot(usize::from(frame), spi) {
                            self.mark_chain_precision(bt);
                        }
                    }
                }
                self.check_helper_mem(regno, &reg, u64::from(size), write, false)?;
            }
            ArgType::Mem { uninit, maybe_null } => {
                let null = maybe_null && reg.is_null();
                let nullable_mem = maybe_null && reg.ty.maybe_null();
                if !null && !nullable_mem && !is_mem(reg.ty) {
                    return Err(self.type_mismatch(regno, &reg, MEM_TYPES));
                }
                meta.mem = Some((regno, reg, uninit, null));
            }
            ArgType::FixedMem { size } => {
                if !matches!(
                    reg.ty,
                    RegType::Stack { .. }
                        | RegType::Packet
                        | RegType::PacketMeta
                        | RegType::MapKey { .. }
                        | RegType::MapValue {
                            maybe_null: false,
                            ..
                        }
                ) {
                    return Err(self.type_mismatch(regno, &reg, INT_PTR_TYPES));
                }
                self.check_helper_mem(regno, &reg, u64::from(size), true, false)?;
            }
            ArgType::ConstSize { zero_ok } => {
                if !reg.is_scalar() {
                    return Err(self.type_mismatch(regno, &reg, "scalar"));
                }
                self.check_mem_size(regno, &reg, zero_ok, meta)?;
            }
            ArgType::ConstAllocSize => {
                if !reg.is_scalar() {
                    return Err(self.type_mismatch(regno, &reg, "scalar"));
                }
                let Some(v) = reg.var.const_value() else {
                    return Err(self.err_eacces(format!("R{regno} is not a known constant'")));
                };
                meta.alloc_size = Some(v);
                self.mark_precise(regno);
            }
            ArgType::Ctx => {
                if reg.ty != RegType::Ctx {
                    return Err(self.type_mismatch(regno, &reg, "ctx"));
                }
                self.check_ptr_off_reg(regno, &reg)?;
            }
            ArgType::RingbufMemRelease => {
                if !matches!(
                    reg.ty,
                    RegType::Mem {
                        ringbuf: true,
                        maybe_null: false,
                        ..
                    }
                ) {
                    return Err(self.type_mismatch(regno, &reg, "ringbuf_mem"));
                }
                self.check_release_arg(regno, &reg, meta)?;
            }
            ArgType::SockCommon {
                release,
                maybe_null,
            } => {
                if maybe_null && (reg.is_null() || matches!(reg.ty, RegType::Sock { .. })) {
                    return Ok(());
                }
                if !matches!(
                    reg.ty,
                    RegType::Sock {
                        maybe_null: false,
                        ..
                    }
                ) {
                    if reg.ty.maybe_null() && matches!(reg.ty, RegType::Sock { .. }) {
                        return Err(self.err_eacces(format!(
                            "Possibly NULL pointer passed to helper arg{}",
                            regno - 1
                        )));
                    }
                    return Err(self.type_mismatch(regno, &reg, SOCK_TYPES));
                }
                if release {
                    self.check_release_arg(regno, &reg, meta)?;
                }
            }
        }
        Ok(())
    }

    fn check_release_arg(&self, regno: u8, reg: &RegState, meta: &mut Meta) -> VResult<()> {
        if reg.ref_obj_id == 0 {
            return Err(self.err_einval(format!(
                "R{regno} must be referenced when passed to release function"
            )));
        }
        if reg.off != 0 || !reg.var.var_off.is_const() || reg.var.var_off.value() != 0 {
            return Err(self.err_eacces(format!(
                "R{regno} must have zero offset when passed to release func or trusted arg to kfunc"
            )));
        }
        meta.release = Some(reg.ref_obj_id);
        Ok(())
    }

    /// The size argument of a memory argument (`check_mem_size_reg`).
    fn check_mem_size(
        &mut self,
        regno: u8,
        reg: &RegState,
        zero_ok: bool,
        meta: &mut Meta,
    ) -> VResult<()> {
        let v = &reg.var;
        if v.smin < 0 {
            return Err(self.err_eacces(format!(
                "R{regno} min value is negative, either use unsigned or 'var &= const'"
            )));
        }
        if v.umin == 0 && !zero_ok {
            return Err(self.err_eacces(format!(
                "R{regno} invalid zero-sized read: u64=[{},{}]",
                v.umin as i64, v.umax
            )));
        }
        if v.umax >= crate::code::MAX_VAR_OFF as u64 {
            return Err(self.err_eacces(format!(
                "R{regno} unbounded memory access, use 'var &= const' or 'if (var < const)'"
            )));
        }
        self.mark_precise(regno);
        let Some((mem_regno, mem, write, null)) = meta.mem.take() else {
            return Err(self.err_einval("kernel subsystem misconfigured verifier"));
        };
        if null || mem.ty.maybe_null() {
            if v.umax == 0 && null {
                return Ok(());
            }
            if !null {
                return self.check_helper_mem(mem_regno, &mem, v.umax, write, zero_ok);
            }
            return Err(self.err_eacces(format!("R{mem_regno} type=scalar expected=fp")));
        }
        if write && let RegType::MapValue { map, .. } = mem.ty {
            // Writing is forbidden whatever the size (the kernel checks before sizing).
            let def = self.maps.get(map as usize);
            self.check_map_access_type(def, mem.off, usize::try_from(v.umax).unwrap_or(0), true)?;
        }
        // A variable size cannot prove the helper initialises every byte.
        let write = write && v.is_const();
        self.check_helper_mem(mem_regno, &mem, v.umax, write, zero_ok)
    }

    /// A helper reading or writing `size` bytes at `reg` (`check_helper_mem_access`).
    fn check_helper_mem(
        &mut self,
        regno: u8,
        reg: &RegState,
        size: u64,
        write: bool,
        zero_ok: bool,
    ) -> VResult<()> {
        let size_us = usize::try_from(size).unwrap_or(usize::MAX);
        match reg.ty {
            RegType::Packet | RegType::PacketMeta => {
                if write && !crate::ctx::direct_packet_access(self.prog_type, true) {
                    return Err(self.err_eacces("helper access to the packet is not allowed"));
                }
                self.check_packet_access(regno, reg, reg.off, size_us, zero_ok)
            }
            RegType::MapValue { map, .. } => {
                let def = self.maps.get(map as usize);
                let vs = def.map_or(0, |m| m.value_size);
                self.check_map_access_type(def, reg.off, size_us, write)?;
                self.check_region(
                    regno,
                    reg,
                    reg.off,
                    size_us,
                    i64::from(vs),
                    zero_ok,
                    super::mem::Region::MapValue,
                )
            }
            RegType::MapKey { map } => {
                let ks = self.maps.get(map as usize).map_or(0, |m| m.key_size);
                self.check_region(
                    regno,
                    reg,
                    reg.off,
                    size_us,
                    i64::from(ks),
                    zero_ok,
                    super::mem::Region::Mem,
                )
            }
            RegType::Mem { size: msize, .. } => self.check_region(
                regno,
                reg,
                reg.off,
                size_us,
                i64::from(msize),
                zero_ok,
                super::mem::Region::Mem,
            ),
            RegType::Stack { .. } => self.check_helper_stack(regno, reg, size, write, zero_ok),
            _ => {
                if zero_ok && size == 0 && reg.is_null() {
                    return Ok(());
                }
                Err(self.err_eacces(format!("R{regno} type={} expected=fp", reg.ty.name())))
            }
        }
    }

    /// A key known at verification time (`get_constant_map_key`): on the stack, either all
    /// known-zero bytes or a spilled constant of exactly the key size (then `true`).
    fn constant_map_key(&self, reg: &RegState, key_size: u32) -> Option<(u64, bool)> {
        let RegType::Stack { frame } = reg.ty else {
            return None;
        };
        if !reg.var.var_off.is_const() {
            return None;
        }
        let stack_off = i64::from(reg.off).wrapping_add(reg.var.var_off.value() as i64);
        let off = i32::try_from(stack_off)
            .ok()
            .filter(|o| (-512..0).contains(o))?;
        let (spi, j) = locate(off);
        let slot = self.st.frames.get(usize::from(frame))?.stack.slot(spi)?;
        let zeros = (0..=j)
            .rev()
            .take_while(|&i| slot.types[i] == SlotType::Zero)
            .count();
        if zeros >= key_size as usize {
            return Some((0, false));
        }
        if !slot.is_spilled() || !slot.spilled.is_scalar() {
            return None;
        }
        let spills = (0..=j)
            .rev()
            .take_while(|&i| slot.types[i] == SlotType::Spill)
            .count();
        if spills != key_size as usize || j != REG_SIZE - 1 {
            return None;
        }
        slot.spilled.var.const_value().map(|v| (v, true))
    }

    fn check_local_call(&mut self, rel: i32) -> VResult<Flow> {
        let target = jump_target(self.pc, i64::from(rel))?;
        let Some(subprog) = self.cfg.subprog_at(target) else {
            return Err(self.err_einval("call to invalid destination"));
        };
        let cur = self.st.curframe();
        if cur + 1 >= MAX_CALL_FRAMES {
            return Err(VerifierError::new(
                self.pc,
                Errno::E2BIG,
                format!("the call stack of {} frames is too deep", cur + 2),
            ));
        }
        if self.log.enabled() {
            let caller = log::fmt_frame(self.st.cur(), self.maps, log::Selection::All);
            self.log.line(&format!("caller:\n{caller}"));
        }
        let mut callee = FuncState::new(cur as u8 + 1, subprog, Some(self.pc));
        for r in 1..=5 {
            callee.regs[r] = self.st.cur().regs[r];
        }
        for r in 0..=5 {
            self.st.cur_mut().regs[r].mark_not_init();
        }
        self.st.frames.push(callee);
        if self.log.enabled() {
            let c = log::fmt_frame(self.st.cur(), self.maps, log::Selection::All);
            self.log.line(&format!("callee:\n{c}"));
            self.log.line(&format!("{target}:{c}"));
        }
        self.state_printed = true;
        Ok(Flow::Next(target))
    }

    pub(super) fn check_exit(&mut self) -> VResult<Flow> {
        if self.st.curframe() > 0 {
            return self.return_from_callee();
        }
        if let Some(r) = self.st.refs.first() {
            return Err(self.err_einval(format!(
                "Unreleased reference id={} alloc_insn={}",
                r.id, r.insn
            )));
        }
        let r0 = self.read_reg(0, true)?;
        if self.is_leak(&r0) {
            return Err(self.err_eacces("R0 leaks addr as return value"));
        }
        Ok(Flow::Done)
    }

    fn return_from_callee(&mut self) -> VResult<Flow> {
        // The callee's instance is solved before its frame goes (the kernel's
        // `bpf_update_live_stack` at a subprogram's exit).
        self.slive.update(&self.st, self.cfg, self.code);
        let r0 = *self.st.reg(0);
        if matches!(r0.ty, RegType::Stack { .. }) {
            return Err(self.err_einval("cannot return stack pointer to the caller"));
        }
        if self.log.enabled() {
            let c = log::fmt_frame(self.st.cur(), self.maps, log::Selection::All);
            self.log.line(&format!("returning from callee:\n{c}"));
        }
        let Some(callee) = self.st.frames.pop() else {
            return Err(self.err_einval("exit without a frame"));
        };
        let Some(callsite) = callee.callsite else {
            return Err(self.err_einval("exit from a frame without a call site"));
        };
        self.st.cur_mut().regs[0] = r0;
        let ret = callsite + 1;
        if self.log.enabled() {
            let c = log::fmt_frame(self.st.cur(), self.maps, log::Selection::All);
            self.log.line(&format!("to caller at {ret}:\n{c}"));
            if self.log.verbose() {
                let s = log::fmt_state(&self.st, self.maps);
                self.log.line(&format!("\nfrom {} to {ret}:{s}", self.pc));
            }
        }
        self.state_printed = true;
        Ok(Flow::Next(ret))
    }

    /// Legacy `LD_ABS`/`LD_IND` (the kernel's `check_ld_abs`): an implicit helper call on the
    /// context in R6 that clobbers R1–R5 and returns up to 32 bits in R0.
    pub(super) fn check_ld_abs(&mut self, ind: Option<u8>) -> VResult<()> {
        if !crate::ctx::may_access_skb(self.prog_type) {
            return Err(
                self.err_einval("BPF_LD_[ABS|IND] instructions not allowed for this program type")
            );
        }
        let r6 = self.read_reg(6, true)?;
        if !self.st.refs.is_empty() {
            return Err(self.err_einval("BPF_LD_[ABS|IND] cannot be mixed with socket references"));
        }
        if r6.ty != RegType::Ctx {
            return Err(self.err_einval("at the time of BPF_LD_ABS|IND R6 is not a pointer to skb"));
        }
        if let Some(src) = ind {
            self.read_reg(src, true)?;
        }
        self.check_ptr_off_reg(6, &r6)?;
        for r in 0..=5u8 {
            self.touch_reg(r);
            self.st.reg_mut(r).mark_not_init();
        }
        self.write_reg(0, RegState::unknown_scalar(), false);
        Ok(())
    }
}
