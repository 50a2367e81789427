//! The verifier log in the kernel's format (shared/design/ecosystem.md §5.1).
//!
//! People debug rejected programs by reading this log, and they already know the kernel's;
//! tests compare expected kernel substrings against it. So the grammar is the kernel's:
//! `IDX: (OPHEX) insn` followed, at the state column, by `; Rn=...` for the registers the
//! instruction touched; `from X to Y: ...` when a pushed branch is resumed (level 2); the
//! error message on its own line; and always the final
//! `processed N insns (limit 1000000) max_states_per_insn A total_states B peak_states C mark_read D`.
//!
//! Level 1 keeps only the path that failed (popping a branch truncates the log back to where
//! the branch was pushed, as the kernel does) and, on success, only the summary line.

use std::fmt::Write as _;

use vm_core::{MapDef, isa::Insn};

use crate::bounds::ScalarBounds;
use crate::reg::{RegState, RegType};
use crate::stack::{REG_SIZE, SlotType};
use crate::state::{FuncState, VerifierState};

/// The processed-instruction limit (the kernel's `BPF_COMPLEXITY_LIMIT_INSNS`).
pub const INSN_LIMIT: u64 = 1_000_000;

/// The log buffer.
#[derive(Debug, Clone, Default)]
pub struct Log {
    level: u32,
    buf: String,
}

impl Log {
    /// A log at `level` (0 = off, 1 = failing path and summary, 2 = everything).
    pub fn new(level: u32) -> Log {
        Log {
            level,
            buf: String::new(),
        }
    }

    /// Level 1 or more.
    pub fn enabled(&self) -> bool {
        self.level >= 1
    }

    /// Level 2 or more.
    pub fn verbose(&self) -> bool {
        self.level >= 2
    }

    /// Appends text (nothing at level 0).
    pub fn push(&mut self, s: &str) {
        if self.enabled() {
            self.buf.push_str(s);
        }
    }

    /// Appends a line (a newline is added).
    pub fn line(&mut self, s: &str) {
        if self.enabled() {
            self.buf.push_str(s);
            self.buf.push('\n');
        }
    }

    /// Current length, for a later [`Log::truncate`].
    pub fn pos(&self) -> usize {
        self.buf.len()
    }

    /// Drops everything after `pos`.
    pub fn truncate(&mut self, pos: usize) {
        if pos <= self.buf.len() {
            self.buf.truncate(pos);
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.buf
    }

    /// The text, consuming the log.
    pub fn into_string(self) -> String {
        self.buf
    }
}

/// Pruning statistics printed in the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Instructions processed over all paths.
    pub insn_processed: u64,
    /// Most states stored at one instruction.
    pub max_states_per_insn: u32,
    /// States ever stored for pruning.
    pub total_states: u32,
    /// Most states stored at one time.
    pub peak_states: u32,
    /// Liveness marks (always 0 here: we use static liveness).
    pub mark_read: u32,
}

impl Stats {
    /// The summary line, without newline.
    pub fn summary(&self) -> String {
        format!(
            "processed {} insns (limit {INSN_LIMIT}) max_states_per_insn {} total_states {} peak_states {} mark_read {}",
            self.insn_processed,
            self.max_states_per_insn,
            self.total_states,
            self.peak_states,
            self.mark_read
        )
    }
}

/// A signed number as the log prints it: decimal when it fits 16 signed bits, hex otherwise
/// (threshold inferred from Linux 6.18 logs: 32767 and -10689 print in decimal, 41472 in hex).
pub fn snum(v: i64) -> String {
    if (-32768..=32767).contains(&v) {
        v.to_string()
    } else if v < 0 {
        format!("{:#x}", v as u64)
    } else {
        format!("{v:#x}")
    }
}

/// An unsigned number as the log prints it.
pub fn unum(v: u64) -> String {
    if v <= 32767 {
        v.to_string()
    } else {
        format!("{v:#x}")
    }
}

/// The kernel's `print_scalar_ranges`: non-default bounds, equal values grouped
/// (`smin=umin=umin32=11`). Appends to `out` with `sep` before the first item.
fn scalar_ranges(b: &ScalarBounds, sep: &mut &'static str, out: &mut String) {
    struct M {
        name: &'static str,
        val: u64,
        omit: bool,
        signed: bool,
    }
    let mut m = [
        M {
            name: "smin",
            val: b.smin as u64,
            omit: b.smin == i64::MIN,
            signed: true,
        },
        M {
            name: "smax",
            val: b.smax as u64,
            omit: b.smax == i64::MAX,
            signed: true,
        },
        M {
            name: "umin",
            val: b.umin,
            omit: b.umin == 0,
            signed: false,
        },
        M {
            name: "umax",
            val: b.umax,
            omit: b.umax == u64::MAX,
            signed: false,
        },
        M {
            name: "smin32",
            val: i64::from(b.s32_min) as u64,
            omit: b.s32_min == i32::MIN,
            signed: true,
        },
        M {
            name: "smax32",
            val: i64::from(b.s32_max) as u64,
            omit: b.s32_max == i32::MAX,
            signed: true,
        },
        M {
            name: "umin32",
            val: u64::from(b.u32_min),
            omit: b.u32_min == 0,
            signed: false,
        },
        M {
            name: "umax32",
            val: u64::from(b.u32_max),
            omit: b.u32_max == u32::MAX,
            signed: false,
        },
    ];
    for i in 0..m.len() {
        if m[i].omit {
            continue;
        }
        let neg1 = m[i].signed && (m[i].val as i64) < 0;
        let _ = write!(out, "{sep}{}=", m[i].name);
        *sep = ",";
        let mut j = i + 2;
        while j < m.len() {
            let neg2 = m[j].signed && (m[j].val as i64) < 0;
            if !m[j].omit && m[j].val == m[i].val && neg1 == neg2 {
                m[j].omit = true;
                let _ = write!(out, "{}=", m[j].name);
            }
            j += 2;
        }
        if m[i].signed {
            out.push_str(&snum(m[i].val as i64));
        } else {
            out.push_str(&unum(m[i].val));
        }
    }
}

fn map_fields(maps: &[MapDef], map: u32, sep: &mut &'static str, out: &mut String) {
    if let Some(def) = maps.get(map as usize) {
        if !def.name.is_empty() {
            let name: String = def.name.chars().take(15).collect();
            let _ = write!(out, "{sep}map={name}");
            *sep = ",";
        }
        let _ = write!(
            out,
            "{sep}ks={},vs={}",
            unum(u64::from(def.key_size)),
            unum(u64::from(def.value_size))
        );
        *sep = ",";
    }
}

/// One register as the log prints it after `Rn=` (the kernel's `print_reg_state`);
/// `frameno` is the frame the register belongs to (stack pointers into other frames print
/// `fp[N]`).
pub fn fmt_reg(reg: &RegState, frameno: u8, maps: &[MapDef]) -> String {
    let mut out = String::new();
    match reg.ty {
        RegType::NotInit => return "?".to_string(),
        RegType::Scalar => {
            if reg.precise {
                out.push('P');
            }
            if let Some(v) = reg.var.var_off.is_const().then(|| reg.var.var_off.value()) {
                out.push_str(&snum(v as i64));
                return out;
            }
        }
        _ => {}
    }
    out.push_str(&reg.ty.name());
    if let RegType::Stack { frame } = reg.ty {
        if frame != frameno {
            let _ = write!(out, "[{frame}]");
        }
        if reg.var.var_off.is_const() {
            let v = (reg.var.var_off.value() as i64).wrapping_add(i64::from(reg.off));
            out.push_str(&snum(v));
            return out;
        }
    }
    out.push('(');
    let mut sep: &'static str = "";
    if reg.id != 0 {
        let _ = write!(out, "{sep}id={}", reg.link_base());
        if let Some(d) = reg.link_delta() {
            // A copy plus a constant: `id=1+5`, `id=1-5` (also `id=1+0`).
            let _ = write!(out, "{d:+}");
        }
        sep = ",";
    }
    if reg.ref_obj_id != 0 {
        let _ = write!(out, "{sep}ref_obj_id={}", reg.ref_obj_id);
        sep = ",";
    }
    // The kernel names the map before the offset: `map_value(map=m,ks=4,vs=8,off=4)`.
    if let RegType::MapPtr { map } | RegType::MapValue { map, .. } | RegType::MapKey { map } =
        reg.ty
    {
        map_fields(maps, map, &mut sep, &mut out);
    }
    if reg.is_pointer() && reg.off != 0 {
        let _ = write!(out, "{sep}off={}", snum(i64::from(reg.off)));
        sep = ",";
    }
    match reg.ty {
        RegType::Packet | RegType::PacketMeta => {
            // The kernel prints the int range as an unsigned 64-bit number.
            let _ = write!(out, "{sep}r={}", unum(i64::from(reg.range) as u64));
            sep = ",";
        }
        RegType::Mem { size, .. } => {
            let _ = write!(out, "{sep}sz={}", unum(u64::from(size)));
            sep = ",";
        }
        _ => {}
    }
    if reg.var.var_off.is_const() {
        let v = reg.var.var_off.value();
        if v != 0 && reg.is_pointer() {
            let _ = write!(out, "{sep}imm={}", snum(v as i64));
        }
    } else {
        scalar_ranges(&reg.var, &mut sep, &mut out);
        if !reg.var.var_off.is_unknown() {
            let _ = write!(out, "{sep}var_off={}", reg.var.var_off);
        }
    }
    out.push(')');
    out
}

/// Which registers and stack slots of a frame to print.
#[derive(Debug, Clone, Copy)]
pub enum Selection {
    /// Everything initialised (branch resumption, error context).
    All,
    /// Only what the last instruction touched: a register bit mask and a slot bit mask
    /// (slot `i` = `fp-8*(i+1)`, the first 64 slots).
    Touched {
        /// Bit `r` = register `r`.
        regs: u16,
        /// Bit `i` = stack slot `i`.
        slots: u64,
    },
}

/// A frame as the log prints it: ` Rn=... fp-8=...` (leading space per item), with
/// ` frameN:` first for frames other than the main program's.
pub fn fmt_frame(frame: &FuncState, maps: &[MapDef], sel: Selection) -> String {
    let mut out = String::new();
    if frame.frameno != 0 {
        let _ = write!(out, " frame{}:", frame.frameno);
    }
    for (i, r) in frame.regs.iter().enumerate() {
        if !r.is_init() {
            continue;
        }
        if let Selection::Touched { regs, .. } = sel
            && regs & (1 << i) == 0
        {
            continue;
        }
        let _ = write!(out, " R{i}={}", fmt_reg(r, frame.frameno, maps));
    }
    for (i, slot) in frame.stack.slots().iter().enumerate() {
        if let Selection::Touched { slots, .. } = sel
            && (i >= 64 || slots & (1 << i) == 0)
        {
            continue;
        }
        if slot.is_invalid() {
            continue;
        }
        let off = -((i as i64 + 1) * REG_SIZE as i64);
        let mut types: String = slot.types.iter().map(|t| t.log_char()).collect();
        if slot.is_spilled() {
            let cut = slot
                .types
                .iter()
                .position(|t| *t == SlotType::Spill)
                .unwrap_or(REG_SIZE);
            types.truncate(cut);
            let _ = write!(
                out,
                " fp{off}={types}{}",
                fmt_reg(&slot.spilled, frame.frameno, maps)
            );
        } else {
            let _ = write!(out, " fp{off}={types}");
        }
    }
    out
}

/// The whole state (every frame), as printed at `from X to Y:` and in loop reports.
pub fn fmt_state(state: &VerifierState, maps: &[MapDef]) -> String {
    let mut out = String::new();
    for f in &state.frames {
        out.push_str(&fmt_frame(f, maps, Selection::All));
    }
    out
}

/// The instruction text at `pc` (`IDX: (OPHEX) text`).
pub fn insn_text(pc: usize, opcode: u8, insn: &Insn) -> String {
    vm_core::asm::kernel_line(pc, opcode, insn)
}

/// Spaces between an instruction of `len` characters and the `;` of its state, so that
/// states line up in 8-column steps from column 38 as in the kernel's log.
pub fn state_padding(len: usize) -> usize {
    let col = (len + 5).max(40).div_ceil(8) * 8;
    col.saturating_sub(len + 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tnum::Tnum;

    #[test]
    fn scalar_formats_like_the_kernel() {
        let r = RegState::scalar(ScalarBounds::from_urange(0, 10));
        assert_eq!(
            fmt_reg(&r, 0, &[]),
            "scalar(smin=smin32=0,smax=umax=smax32=umax32=10,var_off=(0x0; 0xf))"
        );
        let r = RegState::scalar(ScalarBounds::from_tnum(Tnum::new(0, 0xffff_ffff)));
        assert_eq!(
            fmt_reg(&r, 0, &[]),
            "scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))"
        );
        assert_eq!(fmt_reg(&RegState::constant(2), 0, &[]), "2");
        assert_eq!(fmt_reg(&RegState::unknown_scalar(), 0, &[]), "scalar()");
        // Linked copies as Linux 6.18 prints them: plain, and plus/minus a constant.
        let mut r = RegState::unknown_scalar();
        r.id = 1;
        assert_eq!(fmt_reg(&r, 0, &[]), "scalar(id=1)");
        (r.id, r.off) = (1 | crate::reg::LINK_DELTA, 5);
        assert_eq!(fmt_reg(&r, 0, &[]), "scalar(id=1+5)");
        r.off = -5;
        assert_eq!(fmt_reg(&r, 0, &[]), "scalar(id=1-5)");
    }

    #[test]
    fn pointers_format_like_the_kernel() {
        let fp = RegState::pointer(RegType::Stack { frame: 0 }, -8);
        assert_eq!(fmt_reg(&fp, 0, &[]), "fp-8");
        assert_eq!(
            fmt_reg(&RegState::pointer(RegType::Ctx, 0), 0, &[]),
            "ctx()"
        );
        assert_eq!(
            fmt_reg(&RegState::pointer(RegType::Packet, 0), 0, &[]),
            "pkt(r=0)"
        );
        let map = vm_core::MapDef {
            name: "cfg".to_string(),
            map_type: vm_core::MapType::Array,
            key_size: 4,
            value_size: 98,
            max_entries: 1,
            flags: 0,
            initial_value: None,
        };
        let value = RegState::pointer(
            RegType::MapValue {
                map: 0,
                maybe_null: false,
            },
            4,
        );
        assert_eq!(
            fmt_reg(&value, 0, &[map]),
            "map_value(map=cfg,ks=4,vs=98,off=4)"
        );
    }

    #[test]
    fn padding_matches_kernel_columns() {
        // "0: (b7) r0 = 2" is 14 characters; the kernel puts ';' at column 38.
        assert_eq!(14 + state_padding(14), 38);
        assert_eq!(35 + state_padding(35), 38);
        assert_eq!(36 + state_padding(36), 46);
        assert_eq!(52 + state_padding(52), 62);
    }
}
