//! `.BTF.ext` line info over every staged little-endian BPF object: how many programs get
//! source lines, whether every slot maps to a line, and invariants of every line table.
//!
//! Run with `cargo test -p vm-core --test line_info_corpus -- --nocapture` for the numbers.

use std::collections::HashMap;

use object::{Object as _, ObjectSection as _};
use vm_core::elf::{self, LineTable};
use vm_core::isa::Insn;

/// Number of line_info records in `.BTF.ext` (0 when absent or unreadable), read here
/// independently of the loader: header word 4 is hdr_len, words 16/20 line_info off/len.
fn raw_record_count(bytes: &[u8]) -> Option<usize> {
    let file = object::File::parse(bytes).ok()?;
    let data = file.section_by_name(".BTF.ext")?.data().ok()?;
    let w = |o: usize| -> Option<usize> {
        Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?) as usize)
    };
    let (hdr, off, len) = (w(4)?, w(16)?, w(20)?);
    let start = hdr.checked_add(off)?;
    let sub = data.get(start..start.checked_add(len)?)?;
    let rec = u32::from_le_bytes(sub.get(..4)?.try_into().ok()?) as usize;
    let mut pos = 4;
    let mut n = 0;
    while pos + 8 <= sub.len() {
        let count = u32::from_le_bytes(sub[pos + 4..pos + 8].try_into().ok()?) as usize;
        n += count;
        pos = pos
            .saturating_add(8)
            .saturating_add(count.saturating_mul(rec));
    }
    Some(n)
}

/// Structural invariants of one program's table; returns whether every slot maps to a line.
fn check_table(what: &str, t: &LineTable, insns: &[Insn]) -> bool {
    let spans = t.functions();
    assert_eq!(
        spans.first().map(|f| f.start),
        Some(0),
        "{what}: spans start at 0"
    );
    assert_eq!(
        spans.last().map(|f| f.end),
        Some(insns.len()),
        "{what}: spans cover the program"
    );
    assert!(
        spans.windows(2).all(|w| w[0].end == w[1].start),
        "{what}: spans contiguous"
    );
    let e = t.entries();
    assert!(
        e.windows(2).all(|w| w[0].pc < w[1].pc),
        "{what}: sorted, unique"
    );
    for l in e {
        assert!(l.pc < insns.len(), "{what}: pc {} in range", l.pc);
        assert!(
            !matches!(insns[l.pc], Insn::LdImm64Tail),
            "{what}: pc {} not an lddw tail",
            l.pc
        );
        assert_eq!(t.at(l.pc), Some(l), "{what}: a record covers its own pc");
    }
    // Where each function's first record is at its first slot, every slot maps to a line.
    let starts_covered = spans.iter().all(|f| e.iter().any(|l| l.pc == f.start));
    if starts_covered {
        for pc in 0..insns.len() {
            assert!(
                t.at(pc).is_some(),
                "{what}: pc {pc} has no line though every function starts with one"
            );
        }
    }
    starts_covered
}

#[test]
fn corpus_objects_with_btf_ext_get_source_lines() {
    let objects = vm_core::corpus::elf_objects(&["ebpf-samples", "cilium-ebpf", "rbpf"]);
    assert!(objects.len() > 100, "corpus has {} objects", objects.len());
    let (mut with_lines_objs, mut progs, mut progs_lined, mut fully_mapped, mut records) =
        (0, 0, 0, 0, 0);
    let mut warned = Vec::new();
    let mut poor = Vec::new();
    for path in &objects {
        let Ok(bytes) = std::fs::read(path) else {
            panic!("cannot read {}", path.display());
        };
        if elf::is_big_endian(&bytes) || raw_record_count(&bytes).is_none_or(|n| n == 0) {
            continue;
        }
        let name = path.display().to_string();
        let Ok((obj, _)) = elf::load_object_lenient(&bytes) else {
            continue;
        };
        assert_eq!(
            obj.source_lines.len(),
            obj.programs.len(),
            "{name}: parallel"
        );
        if !obj.line_info_warnings.is_empty() {
            warned.push(format!("{name}: {}", obj.line_info_warnings[0]));
        }
        if obj.programs.is_empty() {
            continue;
        }
        with_lines_objs += 1;
        // One text per (file, line) within an object: a misread string offset would break it.
        let mut texts: HashMap<(&str, u32), &str> = HashMap::new();
        let mut lined_here = 0;
        for (p, t) in obj.programs.iter().zip(&obj.source_lines) {
            let what = format!("{name} `{}`", p.name);
            assert_eq!(t.program(), p.name, "{what}");
            progs += 1;
            records += t.len();
            if t.is_empty() {
                continue;
            }
            lined_here += 1;
            if check_table(&what, t, &p.insns) {
                fully_mapped += 1;
            }
            for l in t.entries() {
                let prev = texts.entry((l.file.as_str(), l.line)).or_insert(&l.text);
                assert_eq!(*prev, l.text, "{what}: {}:{} has two texts", l.file, l.line);
            }
        }
        progs_lined += lined_here;
        if lined_here < obj.programs.len() {
            poor.push(format!("{name}: {lined_here}/{}", obj.programs.len()));
        }
    }
    println!(
        "line info: {with_lines_objs} objects with line records and loaded programs; \
         {progs_lined}/{progs} programs have lines ({records} records); \
         {fully_mapped} map every slot to a line"
    );
    println!("objects with warnings: {}", warned.len());
    for w in warned.iter().take(10) {
        println!("  {w}");
    }
    println!("objects with unlined programs: {poor:?}");
    assert!(with_lines_objs >= 50, "only {with_lines_objs} objects");
    assert!(
        progs_lined * 10 >= progs * 9,
        "{progs_lined}/{progs} programs have lines"
    );
    assert!(
        fully_mapped * 10 >= progs_lined * 9,
        "{fully_mapped}/{progs_lined} fully mapped"
    );
    // bpftool-linked `linked-el.elf` has line records for dead bytes between sized function
    // symbols (one at `.text`+0x10); dropping those is right. Anything else is a reader bug.
    let unexpected: Vec<_> = warned
        .iter()
        .filter(|w| !w.contains("not inside any function"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected line info warnings: {unexpected:?}"
    );
}
