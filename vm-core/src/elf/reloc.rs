//! Linking one program: relocating its instructions and appending the subprograms it calls.
//!
//! The layout is libbpf's: the entry function first, then every function it reaches through
//! bpf-to-bpf calls (`call` with `src_reg = 1`) or function-address loads (`lddw` that libbpf
//! turns into `BPF_PSEUDO_FUNC`), each copied once, in the order they are first reached. Call
//! and function-address immediates are then rewritten relative to the new layout.
//!
//! The relocation rules (what a symbol's section means) follow libbpf:
//!
//! | relocation | instruction | symbol in | result |
//! |---|---|---|---|
//! | `R_BPF_64_64` | `lddw` | `maps*` / `.maps` | `LdImm64::MapFd(map index)` |
//! | `R_BPF_64_64` | `lddw` | `.data*` `.rodata*` `.bss*` | `LdImm64::MapValue { fd, off: st_value + imm }` |
//! | `R_BPF_64_64` | `lddw` | code | `LdImm64::Func(rel)`, target byte `st_value + imm` |
//! | `R_BPF_64_32` | `call` | code | `CallTarget::Local(rel)`, target slot `st_value / 8 + imm + 1` |
//! | either | any | undefined | extern / kfunc: refused (needs kernel BTF) |
//!
//! A call without a relocation is already pc-relative inside its own section.

use std::collections::{HashMap, VecDeque};

use super::error::{InsnLoc, SectionErrorKind};
use super::functions::FunctionTable;
use super::maps::MapTable;
use super::sections::{ElfFile, Reloc, SectionRole};
use crate::isa::{CallTarget, Insn, LdImm64, check_targets};

/// `R_BPF_NONE`.
const R_BPF_NONE: u32 = 0;
/// `R_BPF_64_64`: the 64-bit immediate of an `lddw`.
const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_32`: the 32-bit immediate of a `call`.
const R_BPF_64_32: u32 = 10;
/// The kernel's limit on program size (`BPF_COMPLEXITY_LIMIT_INSNS`).
const MAX_SLOTS: usize = 1_000_000;

/// What the linker reads: the container, the functions and the maps.
pub(crate) struct Linker<'x, 'a> {
    pub elf: &'x ElfFile<'a>,
    pub funcs: &'x FunctionTable,
    pub maps: &'x MapTable,
}

/// One program being assembled.
struct Build<'x> {
    entry: usize,
    out: Vec<Insn>,
    base: HashMap<usize, usize>,
    queue: VecDeque<usize>,
    funcs: &'x FunctionTable,
}

impl Build<'_> {
    fn loc(&self, func: usize, slot: usize) -> InsnLoc {
        InsnLoc {
            insn: slot,
            function: (func != self.entry).then(|| self.funcs.funcs[func].name.clone()),
        }
    }

    /// Appends `func` unless it is already placed; returns its first slot in the program.
    fn place(&mut self, func: usize) -> Result<usize, SectionErrorKind> {
        if let Some(&b) = self.base.get(&func) {
            return Ok(b);
        }
        let f = &self.funcs.funcs[func];
        let code = f.code.as_ref().map_err(Clone::clone)?;
        let base = self.out.len();
        if base + code.len() > MAX_SLOTS {
            return Err(SectionErrorKind::TooLarge(base + code.len()));
        }
        self.out.extend_from_slice(code);
        self.base.insert(func, base);
        self.queue.push_back(func);
        Ok(base)
    }

    /// Places the function holding byte `target` of `section` and returns the slot of `target`
    /// in the program.
    fn resolve(
        &mut self,
        elf: &ElfFile<'_>,
        section: usize,
        target: i64,
        at: InsnLoc,
    ) -> Result<usize, SectionErrorKind> {
        let bad = || SectionErrorKind::BadCallTarget {
            at: at.clone(),
            target,
            section: elf.section_name(section),
        };
        let Ok(t) = u64::try_from(target) else {
            return Err(bad());
        };
        if !t.is_multiple_of(8) {
            return Err(bad());
        }
        let func = self.funcs.containing(section, t).ok_or_else(bad)?;
        let base = self.place(func)?;
        Ok(base + ((t - self.funcs.funcs[func].start) / 8) as usize)
    }
}

/// A linked program and where each of its functions was placed.
#[derive(Debug)]
pub(crate) struct Linked {
    /// The program's instructions, one per slot.
    pub insns: Vec<Insn>,
    /// `(function id, first slot in the program)` of every function copied in, entry first,
    /// in placement order. Line info is per function, so it is shifted by these bases.
    pub placed: Vec<(usize, usize)>,
}

/// Relative immediate from the instruction at `pc` to `target` (both program slots).
fn rel(pc: usize, target: usize) -> Result<i32, SectionErrorKind> {
    i32::try_from(target as i64 - pc as i64 - 1)
        .map_err(|_| SectionErrorKind::TooLarge(target.max(pc)))
}

impl Linker<'_, '_> {
    /// Links the program whose entry is function `entry`.
    pub fn link(&self, entry: usize) -> Result<Linked, SectionErrorKind> {
        let _span =
            tracing::debug_span!("elf_link", function = %self.funcs.funcs[entry].name).entered();
        let mut b = Build {
            entry,
            out: Vec::new(),
            base: HashMap::new(),
            queue: VecDeque::new(),
            funcs: self.funcs,
        };
        b.place(entry)?;
        while let Some(fid) = b.queue.pop_front() {
            self.link_function(&mut b, fid)?;
        }
        check_targets(&b.out).map_err(SectionErrorKind::Linked)?;
        let mut placed: Vec<(usize, usize)> = b.base.into_iter().collect();
        placed.sort_unstable_by_key(|&(_, base)| base);
        Ok(Linked {
            insns: b.out,
            placed,
        })
    }

    fn link_function(&self, b: &mut Build<'_>, fid: usize) -> Result<(), SectionErrorKind> {
        let f = &self.funcs.funcs[fid];
        if let Some(&first) = f.core.first() {
            return Err(SectionErrorKind::CoreRelocations {
                function: f.name.clone(),
                count: f.core.len(),
                first_insn: ((u64::from(first) - f.start) / 8) as usize,
            });
        }
        let code = f.code.as_ref().map_err(Clone::clone)?;
        let base = b.base.get(&fid).copied().unwrap_or(0);
        let relocs = self
            .elf
            .relocs_in(f.section, f.start, f.end)
            .map_err(SectionErrorKind::Malformed)?;
        let mut relocated = vec![false; code.len()];
        for r in relocs {
            let off = r.offset - f.start;
            let slot = (off / 8) as usize;
            let at = b.loc(fid, slot);
            if !off.is_multiple_of(8) {
                return Err(SectionErrorKind::BadRelocation {
                    at,
                    reason: format!("offset {:#x} is not on an instruction boundary", r.offset),
                });
            }
            let insn = code.get(slot).copied().unwrap_or(Insn::LdImm64Tail);
            // Very old LLVM (objects with e_machine 0, e.g. OVS's datapath.o) wrote every
            // relocation as type 0; iproute2 applied them to `lddw` by position regardless of
            // type, so a type-0 relocation on an `lddw` is read as R_BPF_64_64.
            let mut r = *r;
            if r.r_type == R_BPF_NONE {
                if !matches!(insn, Insn::LdImm64 { .. }) {
                    continue;
                }
                r.r_type = R_BPF_64_64;
            }
            if let Some(done) = relocated.get_mut(slot) {
                *done = true;
            }
            let patched = self.apply(b, &r, insn, base + slot, at)?;
            b.out[base + slot] = patched;
        }
        // Calls without relocation are pc-relative inside the section already.
        for (slot, insn) in code.iter().enumerate() {
            if relocated[slot] {
                continue;
            }
            let (rel_imm, is_call) = match *insn {
                Insn::Call(CallTarget::Local(imm)) => (imm, true),
                Insn::LdImm64 {
                    value: LdImm64::Func(imm),
                    ..
                } => (imm, false),
                // clang leaves these zero and lets relocations fill them; one that arrives
                // already set names a kernel fd or BTF id this object cannot provide.
                Insn::LdImm64 { value, .. } if !matches!(value, LdImm64::Imm(_)) => {
                    return Err(SectionErrorKind::BadRelocation {
                        at: b.loc(fid, slot),
                        reason: format!("lddw with pseudo source {value:?} but no relocation"),
                    });
                }
                Insn::Call(CallTarget::Kfunc(id)) => {
                    return Err(SectionErrorKind::BadRelocation {
                        at: b.loc(fid, slot),
                        reason: format!(
                            "kfunc call by BTF id {id} without relocation needs kernel BTF"
                        ),
                    });
                }
                _ => continue,
            };
            let target_slot = slot as i64 + 1 + i64::from(rel_imm);
            if target_slot >= 0 && (target_slot as usize) < code.len() {
                continue; // inside the same function: the copy keeps the offset valid
            }
            let target = f.start as i64 + target_slot * 8;
            let pc = base + slot;
            let t = b.resolve(self.elf, f.section, target, b.loc(fid, slot))?;
            b.out[pc] = retarget(b.out[pc], rel(pc, t)?, is_call);
        }
        Ok(())
    }

    /// The relocated form of `insn` (at program slot `pc`) under relocation `r`.
    fn apply(
        &self,
        b: &mut Build<'_>,
        r: &Reloc,
        insn: Insn,
        pc: usize,
        at: InsnLoc,
    ) -> Result<Insn, SectionErrorKind> {
        let bad = |reason: String| SectionErrorKind::BadRelocation {
            at: at.clone(),
            reason,
        };
        let sym = self
            .elf
            .symbols
            .get(r.symbol)
            .filter(|_| r.symbol != 0)
            .ok_or_else(|| SectionErrorKind::UnknownSymbol {
                at: at.clone(),
                name: format!("#{}", r.symbol),
            })?;
        let section = match sym.section {
            Some(s) if !sym.undefined => s,
            _ if sym.undefined && r.r_type == R_BPF_64_32 => {
                return Err(SectionErrorKind::Kfunc {
                    at,
                    name: sym.name.clone(),
                });
            }
            _ if sym.undefined => {
                return Err(SectionErrorKind::ExternSymbol {
                    at,
                    name: sym.name.clone(),
                });
            }
            _ => {
                return Err(SectionErrorKind::UnknownSymbol {
                    at,
                    name: format!("{} (absolute or common, not in a section)", sym.name),
                });
            }
        };
        let Some(sec) = self.elf.sections.get(section) else {
            return Err(SectionErrorKind::UnknownSymbol {
                at,
                name: format!("{} (section index {section} out of range)", sym.name),
            });
        };
        match r.r_type {
            R_BPF_64_64 => {
                let Insn::LdImm64 { dst, value } = insn else {
                    return Err(bad(format!("R_BPF_64_64 on `{insn:?}`, not an lddw")));
                };
                // libbpf reads the addend from the first slot's imm (sign-extended).
                let imm = match value {
                    LdImm64::Imm(v) => i64::from(v as u32 as i32),
                    _ => 0,
                };
                let off = (sym.value as i64).wrapping_add(imm);
                let value = match sec.role {
                    SectionRole::Code => {
                        let t = b.resolve(self.elf, section, off, at.clone())?;
                        LdImm64::Func(rel(pc, t)?)
                    }
                    SectionRole::LegacyMaps | SectionRole::BtfMaps => {
                        match self.maps.at(section, off as u64) {
                            Some(Ok(i)) => LdImm64::MapFd(*i as i32),
                            Some(Err(f)) => {
                                return Err(SectionErrorKind::MapUnavailable {
                                    at,
                                    map: f.name.clone(),
                                    reason: f.reason.clone(),
                                });
                            }
                            None => {
                                return Err(bad(format!(
                                    "symbol `{}` at byte {off} of `{}` is not the start of a map definition",
                                    sym.name, sec.name
                                )));
                            }
                        }
                    }
                    SectionRole::GlobalData { .. } => match self.maps.data(section) {
                        // The kernel refuses a direct value offset at or past the value's end.
                        Some(Ok(i)) => match u32::try_from(off) {
                            Ok(o) if u64::from(o) < sec.size => LdImm64::MapValue {
                                fd: *i as i32,
                                off: o,
                            },
                            _ => {
                                return Err(bad(format!(
                                    "offset {off} of symbol `{}` is outside `{}` ({} bytes)",
                                    sym.name, sec.name, sec.size
                                )));
                            }
                        },
                        Some(Err(f)) => {
                            return Err(SectionErrorKind::MapUnavailable {
                                at,
                                map: f.name.clone(),
                                reason: f.reason.clone(),
                            });
                        }
                        None => {
                            return Err(bad(format!(
                                "global data section `{}` is empty",
                                sec.name
                            )));
                        }
                    },
                    _ => {
                        return Err(bad(format!(
                            "symbol `{}` is in section `{}`, which holds no maps, global data or code",
                            sym.name, sec.name
                        )));
                    }
                };
                Ok(Insn::LdImm64 { dst, value })
            }
            R_BPF_64_32 => {
                let Insn::Call(CallTarget::Local(imm)) = insn else {
                    return Err(bad(format!(
                        "R_BPF_64_32 on `{insn:?}`, not a bpf-to-bpf call"
                    )));
                };
                if sec.role != SectionRole::Code {
                    return Err(bad(format!(
                        "call target `{}` is in non-code section `{}`",
                        sym.name, sec.name
                    )));
                }
                let target = (sym.value as i64).wrapping_add((i64::from(imm) + 1) * 8);
                let t = b.resolve(self.elf, section, target, at)?;
                Ok(Insn::Call(CallTarget::Local(rel(pc, t)?)))
            }
            t => Err(bad(format!("unsupported relocation type {t}"))),
        }
    }
}

/// Replaces the relative target of a call or function-address load.
fn retarget(insn: Insn, rel: i32, is_call: bool) -> Insn {
    match insn {
        Insn::LdImm64 { dst, .. } if !is_call => Insn::LdImm64 {
            dst,
            value: LdImm64::Func(rel),
        },
        _ => Insn::Call(CallTarget::Local(rel)),
    }
}
