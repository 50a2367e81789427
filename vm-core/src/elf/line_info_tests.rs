//! Line info: hand-made `.BTF.ext` bytes (well-formed, truncated, malformed), the lookup rule
//! of [`LineTable::at`], and one corpus object whose `.BTF.ext` is patched in place to check
//! that a broken line_info subsection costs only the line info.

use proptest::prelude::*;

use super::*;
use crate::corpus;
use crate::elf::load_object_lenient;

/// A `.BTF.ext` with a 32-byte header, no func_info / CO-RE records, and a line_info
/// subsection of `rec_size`-byte records in blocks `(sec_name_off, [(insn_off, file, line_off,
/// line_col)])`. Records longer than 16 bytes are padded with 0xaa.
fn ext(rec_size: u32, blocks: &[(u32, Vec<[u32; 4]>)]) -> Vec<u8> {
    let mut sub = rec_size.to_le_bytes().to_vec();
    for (name, recs) in blocks {
        sub.extend_from_slice(&name.to_le_bytes());
        sub.extend_from_slice(&(recs.len() as u32).to_le_bytes());
        for r in recs {
            for w in r {
                sub.extend_from_slice(&w.to_le_bytes());
            }
            sub.extend(std::iter::repeat_n(0xaa, rec_size as usize - 16));
        }
    }
    let mut out = vec![0x9f, 0xeb, 1, 0];
    for w in [32u32, 0, 0, 0, sub.len() as u32, sub.len() as u32, 0] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&sub);
    out
}

fn two_blocks(rec_size: u32) -> Vec<u8> {
    ext(
        rec_size,
        &[
            (1, vec![[0, 5, 9, (37 << 10) | 3], [16, 5, 12, 40 << 10]]),
            (7, vec![[8, 5, 9, 21 << 10]]),
        ],
    )
}

#[test]
fn well_formed_records_are_read_in_order() {
    for rec_size in [16, 20, 32] {
        let bytes = two_blocks(rec_size);
        let recs = parse_records(&bytes).expect("well formed");
        let got: Vec<_> = recs
            .iter()
            .map(|r| {
                (
                    r.sec_name_off,
                    r.insn_off,
                    r.file_name_off,
                    r.line_off,
                    r.line_col,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 0, 5, 9, (37 << 10) | 3),
                (1, 16, 5, 12, 40 << 10),
                (7, 8, 5, 9, 21 << 10)
            ],
            "rec_size {rec_size}"
        );
        // First record sits after the 32-byte header, rec_size word and block header.
        assert_eq!(recs[0].at, 32 + 4 + 8);
    }
}

#[test]
fn empty_or_absent_line_info_is_no_records() {
    let mut bytes = two_blocks(16);
    bytes[20..24].copy_from_slice(&0u32.to_le_bytes()); // line_info_len = 0
    assert_eq!(parse_records(&bytes), Ok(Vec::new()));
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = two_blocks(20);
    for n in 0..bytes.len() {
        assert!(parse_records(&bytes[..n]).is_err(), "cut at {n}");
    }
    assert!(parse_records(&bytes).is_ok());
}

#[test]
fn malformed_headers_and_counts_are_errors() {
    let set = |mut b: Vec<u8>, at: usize, v: u32| {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        b
    };
    let good = two_blocks(16);
    let cases = [
        ("bad magic", set(good.clone(), 0, 0x1234_0001)),
        ("header too short for line_info", set(good.clone(), 4, 16)),
        ("header longer than section", set(good.clone(), 4, 10_000)),
        ("offset beyond section", set(good.clone(), 16, 1000)),
        ("offset + length overflow", set(good.clone(), 16, u32::MAX)),
        ("length beyond section", set(good.clone(), 20, u32::MAX)),
        ("record size below 16", set(good.clone(), 32, 8)),
        ("huge record size", set(good.clone(), 32, u32::MAX)),
        ("huge count", set(good.clone(), 40, u32::MAX)),
        ("count one too many", set(good.clone(), 40, 3)),
    ];
    for (what, bytes) in cases {
        let r = parse_records(&bytes);
        assert!(r.is_err(), "{what}: {r:?}");
    }
    let mut v2 = good;
    v2[2] = 2;
    assert!(parse_records(&v2).is_err(), "version 2");
}

proptest! {
    /// Arbitrary bytes after a plausible header never panic the parser, and whatever records
    /// come back lie inside the input.
    #[test]
    fn arbitrary_subsections_never_panic(
        words in proptest::collection::vec(any::<u32>(), 0..8),
        tail in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut b = vec![0x9f, 0xeb, 1, 0];
        for w in &words {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&tail);
        if let Ok(recs) = parse_records(&b) {
            for r in recs {
                prop_assert!(r.at + 16 <= b.len());
            }
        }
    }
}

fn line(pc: usize, line: u32) -> SourceLine {
    SourceLine {
        pc,
        file: "f.c".into(),
        line,
        column: 1,
        text: format!("line {line}"),
    }
}

fn span(name: &str, start: usize, end: usize) -> FunctionSpan {
    FunctionSpan {
        name: name.into(),
        start,
        end,
    }
}

#[test]
fn lookup_takes_the_last_record_at_or_before_pc_within_the_function() {
    let t = LineTable::new(
        "main",
        vec![line(6, 20), line(0, 10), line(3, 11)],
        vec![span("sub", 5, 9), span("main", 0, 5)],
    );
    let at = |pc| t.at(pc).map(|l| l.line);
    assert_eq!(
        (at(0), at(2), at(3), at(4)),
        (Some(10), Some(10), Some(11), Some(11))
    );
    assert_eq!(
        at(5),
        None,
        "sub's first slot has no record; main's must not leak"
    );
    assert_eq!((at(6), at(8)), (Some(20), Some(20)));
    assert_eq!(at(9), None, "past the program");
    assert_eq!(t.function_at(7).map(|f| f.name.as_str()), Some("sub"));
    assert_eq!(t.entries().first().map(|e| e.pc), Some(0), "sorted");
}

/// File offset and size of `.BTF.ext` in an object, read with the `object` crate.
fn btf_ext_range(bytes: &[u8]) -> (usize, usize) {
    use object::{Object as _, ObjectSection as _};
    let file = object::File::parse(bytes).expect("corpus object parses");
    let s = file.section_by_name(".BTF.ext").expect("has .BTF.ext");
    let (off, size) = s.file_range().expect("has file bytes");
    (off as usize, size as usize)
}

const BPF2BPF: &str = "ebpf-samples/build/bpf2bpf.o";

fn bpf2bpf() -> Vec<u8> {
    std::fs::read(corpus::require(BPF2BPF)).expect("readable")
}

#[test]
fn subprogram_lines_are_shifted_to_where_the_linker_placed_them() {
    // `func` (section `test`, 37 slots) calls add2 (.text byte 0x68), which calls add1 (.text
    // byte 0). The expected lines are what `llvm-objdump -d -l` prints from the object's DWARF
    // (.debug_line), an encoding independent of BTF, at the same section offsets.
    let (obj, errors) = load_object_lenient(&bpf2bpf()).expect("loads");
    assert!(errors.is_empty() && obj.line_info_warnings.is_empty());
    let t = obj.line_info("func").expect("has lines");
    let names: Vec<_> = t
        .functions()
        .iter()
        .map(|f| (f.name.as_str(), f.start, f.end))
        .collect();
    assert_eq!(names, [("func", 0, 37), ("add2", 37, 45), ("add1", 45, 58)]);
    let lines: Vec<_> = [0, 2, 5, 9, 17, 36, 37, 39, 40, 42, 45, 47, 48, 53, 57]
        .iter()
        .map(|&pc| t.at(pc).map(|l| l.line))
        .collect();
    let dwarf = [37, 40, 40, 45, 49, 58, 21, 24, 26, 27, 8, 11, 14, 16, 17];
    assert_eq!(lines, dwarf.map(Some));
    let l = t.at(50).expect("add1 slot 5");
    assert!(l.file.ends_with("ebpf-samples/src/bpf2bpf.c"), "{}", l.file);
    assert_eq!(
        (l.line, l.column, l.text.as_str()),
        (14, 23, "int result = *x + inner_array[1];")
    );
    assert_eq!(
        t.at(10).map(|l| l.text.as_str()),
        Some("int result = add2(&outer_array[0]);")
    );
    // Every slot is covered: the first record of each function is at its first slot.
    assert!((0..58).all(|pc| t.at(pc).is_some()));
}

#[test]
fn broken_line_info_costs_only_the_line_info() {
    let good = bpf2bpf();
    let (off, size) = btf_ext_range(&good);
    let patch = |at: usize, v: u32| {
        let mut b = good.clone();
        b[off + at..off + at + 4].copy_from_slice(&v.to_le_bytes());
        b
    };
    // Whole-subsection damage: no lines, one `Unusable` warning, programs unaffected.
    // (Offsets 16/20 are line_info_off/len; the CO-RE fields at 24.. are left alone, so the
    // loader's CO-RE check still reads the file.)
    for (what, bytes) in [
        ("line_info_off past the end", patch(16, size as u32)),
        ("line_info_len huge", patch(20, u32::MAX)),
    ] {
        let (obj, errors) = load_object_lenient(&bytes).expect(what);
        assert!(errors.is_empty(), "{what}: {errors:?}");
        assert_eq!(obj.programs.len(), 1, "{what}");
        assert!(obj.line_info("func").is_none(), "{what}");
        assert!(
            matches!(
                obj.line_info_warnings.as_slice(),
                [LineInfoWarning::Unusable(_)]
            ),
            "{what}: {:?}",
            obj.line_info_warnings
        );
    }
    // One bad record: only it is dropped. The first record of the first block is at
    // hdr_len + line_info_off + 4 (rec_size) + 8 (block header).
    let hdr = u32::from_le_bytes(good[off + 4..off + 8].try_into().expect("4 bytes")) as usize;
    let li = u32::from_le_bytes(good[off + 16..off + 20].try_into().expect("4 bytes")) as usize;
    let first = hdr + li + 12;
    let (obj, _) = load_object_lenient(&patch(first + 4, u32::MAX)).expect("loads");
    assert_eq!(
        obj.line_info_warnings.len(),
        1,
        "{:?}",
        obj.line_info_warnings
    );
    assert!(
        matches!(&obj.line_info_warnings[0], LineInfoWarning::RecordDropped { offset, .. } if *offset == first)
    );
    let before = load_object_lenient(&good).expect("loads").0;
    let n = |o: &crate::elf::Object| o.source_lines.iter().map(LineTable::len).sum::<usize>();
    assert_eq!(n(&obj) + 1, n(&before));
    let (obj, _) = load_object_lenient(&patch(first, 4)).expect("unaligned insn_off");
    assert!(
        obj.line_info_warnings[0]
            .to_string()
            .contains("instruction boundary")
    );
}

#[test]
fn no_byte_of_line_info_can_panic_the_loader() {
    // Overwrite each word of .BTF.ext with values that break lengths and offsets; the load
    // must never panic and must keep the program whenever CO-RE reading still works.
    let good = bpf2bpf();
    let (off, size) = btf_ext_range(&good);
    for at in (0..size.saturating_sub(3)).step_by(4) {
        for v in [0, 1, 7, 0x8000_0000, u32::MAX] {
            let mut b = good.clone();
            b[off + at..off + at + 4].copy_from_slice(&v.to_le_bytes());
            let loaded = load_object_lenient(&b);
            if let Ok((obj, _)) = loaded {
                assert_eq!(obj.source_lines.len(), obj.programs.len());
            }
        }
    }
}
