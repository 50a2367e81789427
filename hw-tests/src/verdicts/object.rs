//! One object through the kernel: its maps created once, then each program loaded.
//!
//! Map handling follows what libbpf and cilium/ebpf do before `BPF_PROG_LOAD`, minus BTF:
//! - a `PERF_EVENT_ARRAY` declared with 0 entries gets one per possible CPU, and 4-byte keys
//!   and values when it declares none;
//! - a `RINGBUF` gets key and value size 0 (a BTF `__type(value, ...)` on a ring buffer only
//!   documents the record type for code generators; the kernel refuses a non-zero size);
//! - global-data maps get their section bytes as element 0, and `.rodata*` maps are created
//!   `BPF_F_RDONLY_PROG` and frozen, so the verifier may read them as constants;
//! - Falco's probe declares its per-CPU scratch arrays with 0 entries and its loader sizes
//!   them to the CPU count; that is done for `falco/` objects only.
//!
//! A map the kernel refuses (map-in-map without an inner map, for instance) only fails the
//! programs that refer to it: the others are still verified, which keeps the table informative.

use aya_obj::generated::BPF_F_RDONLY_PROG;
use tracing::debug_span;
use vm_core::isa::{Insn, LdImm64};
use vm_core::{MapDef, MapType, Program};

use super::section::{ProgSpec, classify, prog_type_name};
use super::{Row, Verdict, WHOLE_OBJECT};
use crate::kernel::{
    LoadOptions, MapError, MapFd, MapSpec, load_program, log_level, patch_map_fds, possible_cpus,
};
use crate::sys::errno_name;

/// Log level of every load: the error and summary lines plus `verification time`.
pub const LOG_LEVEL: u32 = log_level::BASIC | log_level::STATS;

/// Creates one map as the object's loader would (see the module documentation).
pub fn create_map(object: &str, def: &MapDef) -> Result<MapFd, MapError> {
    let mut spec = MapSpec::from_def(def);
    let cpus = u32::try_from(possible_cpus()).unwrap_or(u32::MAX);
    match def.map_type {
        MapType::PerfEventArray => {
            if spec.max_entries == 0 {
                spec.max_entries = cpus;
            }
            if spec.key_size == 0 {
                spec.key_size = 4;
            }
            if spec.value_size == 0 {
                spec.value_size = 4;
            }
        }
        MapType::Ringbuf => {
            spec.key_size = 0;
            spec.value_size = 0;
        }
        MapType::Array | MapType::PercpuArray
            if spec.max_entries == 0 && object.contains("falco/") =>
        {
            spec.max_entries = cpus;
        }
        _ => {}
    }
    let rodata = def.name.starts_with(".rodata");
    if rodata {
        spec.flags |= BPF_F_RDONLY_PROG;
    }
    let map = MapFd::create(&spec)?;
    if let Some(init) = &def.initial_value {
        let mut value = init.clone();
        value.resize(spec.lookup_size(), 0);
        map.update(&0u32.to_le_bytes(), &value, 0)?;
        if rodata {
            map.freeze()?;
        }
    }
    Ok(map)
}

/// Indices into `Program::maps` that the program's `lddw`s refer to, in first-use order.
pub fn referenced_maps(p: &Program) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for insn in &p.insns {
        if let Insn::LdImm64 {
            value: LdImm64::MapFd(fd) | LdImm64::MapValue { fd, .. },
            ..
        } = insn
            && let Ok(i) = usize::try_from(*fd)
            && !out.contains(&i)
        {
            out.push(i);
        }
    }
    out
}

fn map_errno(e: &MapError) -> Option<i32> {
    match e {
        MapError::Syscall { source, .. } => Some(source.errno),
        _ => None,
    }
}

/// A row with only the identity filled in.
fn blank(object: &str, section: &str, function: &str) -> Row {
    Row {
        object: object.to_string(),
        section: section.to_string(),
        function: function.to_string(),
        prog_type: "-".to_string(),
        attach_type: 0,
        type_source: "-".to_string(),
        verdict: Verdict::LoadFailedInVmCore,
        errno: None,
        insns: 0,
        processed: None,
        verif_usec: None,
        reason: "-".to_string(),
    }
}

/// The load options for a program of `spec`.
fn load_options(spec: &ProgSpec, license: &str, p: &Program, log_level: u32) -> LoadOptions {
    LoadOptions {
        log_level,
        prog_flags: spec.prog_flags,
        expected_attach_type: spec.expected_attach_type,
        license: license.to_string(),
        name: p.name.clone(),
        ..LoadOptions::default()
    }
}

/// Some kernel messages lack their newline (`expected prog array map for tail call`), so
/// the statistics line that follows at log level 4 is glued to them; cut it off.
fn strip_stats(line: &str) -> &str {
    match line.find("verification time ") {
        Some(i) if i > 0 => line[..i].trim_end(),
        _ => line,
    }
}

/// Loads one vm-core program with the object's maps and returns its row.
fn program_row(object: &str, license: &str, p: &Program, maps: &[Result<MapFd, MapError>]) -> Row {
    let section = p.section.clone().unwrap_or_else(|| p.name.clone());
    let _span = debug_span!("program_verdict", %section, function = %p.name).entered();
    let spec = classify(object, &section);
    let mut row = blank(object, &section, &p.name);
    row.prog_type = prog_type_name(spec.prog_type);
    row.attach_type = spec.expected_attach_type;
    row.type_source = spec.source.as_str().to_string();
    row.insns = p.insns.len();
    if let Some(need) = spec.needs {
        row.verdict = Verdict::NotLoadable;
        row.reason = need.reason().to_string();
        return row;
    }
    for i in referenced_maps(p) {
        if let Some(Err(e)) = maps.get(i) {
            row.verdict = Verdict::MapCreateFailed;
            row.errno = map_errno(e);
            row.reason = match p.maps.get(i) {
                Some(d) => format!(
                    "map #{i} `{}` (type {}, key {}, value {}, entries {}, flags {:#x}): {}",
                    d.name,
                    d.map_type.kernel_number(),
                    d.key_size,
                    d.value_size,
                    d.max_entries,
                    d.flags,
                    match e {
                        MapError::Syscall { source, .. } =>
                            format!("{} {}", source.call, errno_name(source.errno)),
                        other => other.to_string(),
                    }
                ),
                None => format!("map #{i}: {e}"),
            };
            return row;
        }
    }
    let fds: Vec<i32> = maps
        .iter()
        .map(|m| m.as_ref().map_or(-1, MapFd::raw))
        .collect();
    let raw = match patch_map_fds(p, &fds) {
        Ok(raw) => raw,
        Err(e) => {
            row.reason = e.to_string();
            return row;
        }
    };
    match load_program(
        &raw,
        spec.prog_type,
        &load_options(&spec, license, p, LOG_LEVEL),
    ) {
        Ok(loaded) => {
            row.verdict = Verdict::Accepted;
            row.processed = loaded.stats.insns_processed;
            row.verif_usec = loaded.stats.verification_time_us;
        }
        Err(e) => {
            row.verdict = Verdict::Rejected;
            row.errno = Some(e.errno);
            row.processed = e.stats.insns_processed;
            row.verif_usec = e.stats.verification_time_us;
            row.reason = match &e.first_error_line {
                Some(line) => strip_stats(line).to_string(),
                None => format!("no verifier message ({})", errno_name(e.errno)),
            };
        }
    }
    row
}

/// The rows of one object (`object` is its corpus-relative path, used for the table and for
/// the per-object type conventions), in section order then function order.
pub fn object_verdicts(object: &str, bytes: &[u8]) -> Vec<Row> {
    object_verdicts_matching(object, bytes, &|_, _| true)
}

/// [`object_verdicts`] for the programs whose `(section, function)` satisfy `wanted` only
/// (the object's maps are still all created): re-checking a few rows of a large object.
pub fn object_verdicts_matching(
    object: &str,
    bytes: &[u8],
    wanted: &dyn Fn(&str, &str) -> bool,
) -> Vec<Row> {
    let _span = debug_span!("object_verdicts", object).entered();
    let (obj, errors) = match vm_core::elf::load_object_lenient(bytes) {
        Ok(x) => x,
        Err(e) => {
            let mut row = blank(object, WHOLE_OBJECT, WHOLE_OBJECT);
            row.reason = e.to_string();
            return if wanted(WHOLE_OBJECT, WHOLE_OBJECT) {
                vec![row]
            } else {
                Vec::new()
            };
        }
    };
    let maps: Vec<Result<MapFd, MapError>> =
        obj.maps.iter().map(|d| create_map(object, d)).collect();
    let license = obj.license.clone().unwrap_or_default();
    let mut rows: Vec<Row> = obj
        .programs
        .iter()
        .filter(|p| wanted(p.section.as_deref().unwrap_or(&p.name), &p.name))
        .map(|p| program_row(object, &license, p, &maps))
        .collect();
    for e in errors {
        if let vm_core::elf::Item::Program(name) = &e.item
            && wanted(&e.section, name)
        {
            let mut row = blank(object, &e.section, name);
            let spec = classify(object, &e.section);
            row.prog_type = prog_type_name(spec.prog_type);
            row.attach_type = spec.expected_attach_type;
            row.type_source = spec.source.as_str().to_string();
            row.reason = e.kind.to_string();
            rows.push(row);
        }
    }
    // Section order, then function order, as in the file.
    let position = |r: &Row| {
        obj.code_sections
            .iter()
            .position(|s| s.name == r.section)
            .map(|si| {
                let fi = obj.code_sections[si]
                    .functions
                    .iter()
                    .position(|f| *f == r.function)
                    .unwrap_or(usize::MAX);
                (si, fi)
            })
            .unwrap_or((usize::MAX, usize::MAX))
    };
    rows.sort_by_key(|r| (position(r), r.section.clone(), r.function.clone()));
    rows
}

/// For investigating one row: the linked program (kernel pseudo-C) and the kernel's full
/// level-2 verifier log, or why there is none. `None` when the object has no such function.
pub fn explain(object: &str, bytes: &[u8], function: &str) -> Option<String> {
    let (obj, _) = vm_core::elf::load_object_lenient(bytes).ok()?;
    let p = obj.programs.iter().find(|p| p.name == function)?;
    let section = p.section.clone().unwrap_or_else(|| p.name.clone());
    let spec = classify(object, &section);
    let mut out = format!(
        "{object} section `{section}` function `{function}`: {} (attach {}, {}), {} slots\n",
        prog_type_name(spec.prog_type),
        spec.expected_attach_type,
        spec.source.as_str(),
        p.insns.len()
    );
    for (i, insn) in p.insns.iter().enumerate() {
        if *insn != vm_core::Insn::LdImm64Tail {
            let text = vm_core::asm::format_insn(insn, i, vm_core::asm::Syntax::Kernel);
            out.push_str(&format!("{i:>5}: {text}\n"));
        }
    }
    for (i, d) in obj.maps.iter().enumerate() {
        out.push_str(&format!("map #{i}: {d:?}\n"));
    }
    let maps: Vec<Result<MapFd, MapError>> =
        obj.maps.iter().map(|d| create_map(object, d)).collect();
    let fds: Vec<i32> = maps
        .iter()
        .map(|m| m.as_ref().map_or(-1, MapFd::raw))
        .collect();
    let license = obj.license.clone().unwrap_or_default();
    let level = log_level::VERBOSE | log_level::STATS;
    let verdict = match patch_map_fds(p, &fds) {
        Err(e) => e.to_string(),
        Ok(raw) => match load_program(
            &raw,
            spec.prog_type,
            &load_options(&spec, &license, p, level),
        ) {
            Ok(l) => format!("ACCEPTED\n{}", l.log),
            Err(e) => format!("REJECTED errno {}\n{}", e.errno, e.log),
        },
    };
    out.push_str(&verdict);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_core::isa::{AluOp, Operand, Width};

    #[test]
    fn stats_glued_to_a_message_are_cut_off() {
        assert_eq!(
            strip_stats("expected prog array map for tail callverification time 24 usec"),
            "expected prog array map for tail call"
        );
        assert_eq!(strip_stats("R0 !read_ok"), "R0 !read_ok");
    }

    #[test]
    fn referenced_maps_are_listed_once_in_first_use_order() {
        let lddw = |dst, value| Insn::LdImm64 { dst, value };
        let insns = vec![
            lddw(1, LdImm64::MapFd(2)),
            Insn::LdImm64Tail,
            lddw(2, LdImm64::MapValue { fd: 0, off: 4 }),
            Insn::LdImm64Tail,
            lddw(3, LdImm64::MapFd(2)),
            Insn::LdImm64Tail,
            Insn::Alu {
                op: AluOp::Mov,
                width: Width::W64,
                dst: 0,
                src: Operand::Imm(0),
            },
            Insn::Exit,
        ];
        let p = Program {
            name: "p".into(),
            section: None,
            prog_type: vm_core::ProgType::Xdp,
            insns,
            maps: Vec::new(),
        };
        assert_eq!(referenced_maps(&p), vec![2, 0]);
    }
}
