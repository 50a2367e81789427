//! Loader tests on small, well-understood objects from the staged corpora. The expected values
//! were read off `llvm-objdump -dr` and `readelf -s` of the same files.

use super::*;
use crate::corpus;
use crate::isa::{CallTarget, Insn, LdImm64};
use crate::program::MapType;

fn read(rel: &str) -> Vec<u8> {
    let path = corpus::require(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn lenient(rel: &str) -> (Object, Vec<SectionError>) {
    load_object_lenient(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn rbpf_classifier_section_with_a_leading_dot_is_tc() {
    let obj = load_object(&read("rbpf/examples/load_elf__block_a_port.o")).expect("loads");
    assert_eq!(obj.programs.len(), 1);
    let p = obj.program(".classifier").expect("by section");
    assert_eq!(p.name, "handle_ingress");
    assert_eq!(p.prog_type, ProgType::SchedCls);
    assert_eq!(p.insns.len(), 25);
    assert!(obj.maps.is_empty());
}

#[test]
fn legacy_maps_and_untyped_entry_symbols() {
    // samples/bpf sockex1: one `socket1` section whose entry symbol is an untyped global.
    let obj = load_object(&read("ebpf-samples/linux/sockex1_kern.o")).expect("loads");
    assert_eq!(obj.license.as_deref(), Some("GPL"));
    let p = obj.program("socket1").expect("by section");
    assert_eq!(p.name, "bpf_prog1");
    assert_eq!(p.prog_type, ProgType::SocketFilter);
    assert_eq!(obj.maps.len(), 1);
    let m = &obj.maps[0];
    assert_eq!(
        (
            m.name.as_str(),
            m.map_type,
            m.key_size,
            m.value_size,
            m.max_entries
        ),
        ("my_map", MapType::Array, 4, 8, 256)
    );
    let map_loads: Vec<_> = p
        .insns
        .iter()
        .filter(|i| {
            matches!(
                i,
                Insn::LdImm64 {
                    value: LdImm64::MapFd(0),
                    ..
                }
            )
        })
        .collect();
    assert_eq!(map_loads.len(), 1);
}

#[test]
fn subprograms_are_appended_and_calls_retargeted() {
    // xdp_prog (32 slots) calls `static_fn` (section `static`, 3 slots) and `global_fn` in
    // .text (12 slots), which calls `static_fn`, `global_fn2` (.text) and `global_fn3`
    // (section `other`): 32 + 3 + 12 + 3 + 3 slots, in first-reached order.
    let (obj, errors) = lenient("cilium-ebpf/testdata/loader-clang-14-el.elf");
    let p = obj.program("xdp_prog").expect("xdp_prog");
    assert_eq!(p.insns.len(), 53);
    let targets: Vec<(usize, i64)> = p
        .insns
        .iter()
        .enumerate()
        .filter_map(|(pc, i)| match i {
            Insn::Call(CallTarget::Local(_)) => i.call_target(pc).map(|t| (pc, t)),
            _ => None,
        })
        .collect();
    assert_eq!(
        targets,
        vec![(18, 32), (21, 35), (36, 32), (39, 47), (43, 50)]
    );
    // `.text` functions are subprograms here, not programs.
    assert!(
        obj.programs
            .iter()
            .all(|p| p.section.as_deref() != Some(".text"))
    );
    // The only failure is the program reading a `__kconfig`-style extern.
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        matches!(errors[0].kind, SectionErrorKind::ExternSymbol { ref name, .. } if name == "MY_CONST")
    );
    assert_eq!(
        errors[0].to_string(),
        "section `socket/2`, program `asm_relocation`: relocation at insn 0 refers to extern symbol `MY_CONST` (kconfig/ksym), not supported"
    );
}

#[test]
fn maps_in_object_order_with_global_data() {
    let (obj, _) = lenient("cilium-ebpf/testdata/loader-clang-14-el.elf");
    let names: Vec<&str> = obj.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "bpf_decl_map",
            ".bss",
            ".data",
            ".rodata",
            ".rodata.test",
            "hash_map",
            "hash_map2",
            "btf_pin",
            "btf_outer_map",
            "btf_outer_map_anon",
            "perf_event_array",
            "btf_typedef_map",
            "btf_decl_map",
            ".data.test",
            ".rodata.cst32"
        ]
    );
    let by_name = |n: &str| obj.maps.iter().find(|m| m.name == n).expect("map");
    let rodata = by_name(".rodata");
    assert_eq!(
        (
            rodata.map_type,
            rodata.key_size,
            rodata.value_size,
            rodata.max_entries
        ),
        (MapType::Array, 4, 24, 1)
    );
    assert_eq!(rodata.flags & 0x80, 0x80, ".rodata is BPF_F_RDONLY_PROG");
    assert_eq!(
        by_name(".bss").initial_value.as_deref(),
        Some(&[0u8; 4][..])
    );
    // BTF-defined: __uint(type, HASH), __type(key, u32), __type(value, u64), __uint(max_entries, 2)
    let h2 = by_name("hash_map2");
    assert_eq!(
        (h2.map_type, h2.key_size, h2.value_size, h2.max_entries),
        (MapType::Hash, 4, 8, 2)
    );
    // Map-in-map: `values` makes the outer value a 4-byte fd.
    let outer = by_name("btf_outer_map");
    assert_eq!((outer.map_type, outer.value_size), (MapType::Other(12), 4));
    let perf = by_name("perf_event_array");
    assert_eq!(
        (perf.map_type, perf.key_size, perf.value_size),
        (MapType::PerfEventArray, 4, 4)
    );
    // Every program shares the object's map list.
    assert!(obj.programs.iter().all(|p| p.maps == obj.maps));
    let xdp = obj.program("xdp_prog").expect("xdp_prog");
    let rodata_idx = obj
        .maps
        .iter()
        .position(|m| m.name == ".rodata")
        .expect("rodata") as i32;
    assert!(xdp.insns.iter().any(|i| matches!(
        i,
        Insn::LdImm64 { value: LdImm64::MapValue { fd, off: 4 }, .. } if *fd == rodata_idx
    )));
}

#[test]
fn function_address_becomes_pseudo_func() {
    // fp_relocation passes `sub_prog` (.text) to bpf_loop-like helper 164 via `lddw r2, .text`.
    let obj = load_object(&read("cilium-ebpf/testdata/subprog_reloc-el.elf")).expect("loads");
    let p = obj.program("fp_relocation").expect("program");
    assert_eq!(
        p.insns[15],
        Insn::LdImm64 {
            dst: 2,
            value: LdImm64::Func(14)
        }
    );
    assert_eq!(
        p.insns[15].call_target(15),
        Some(30),
        "sub_prog appended after the 30 slots"
    );
}

#[test]
fn linked_legacy_maps_use_symbol_sizes() {
    // A statically linked object keeps 4 definitions of 20 bytes but only 2 map symbols:
    // the symbol size, not section size / symbol count, gives the layout.
    let (obj, errors) = lenient("cilium-ebpf/testdata/linked-el.elf");
    assert!(errors.is_empty(), "{errors:?}");
    let l2 = obj
        .maps
        .iter()
        .find(|m| m.name == "map_legacy_l2_s")
        .expect("map");
    assert_eq!(
        (l2.map_type, l2.key_size, l2.value_size, l2.max_entries),
        (MapType::Hash, 4, 4, 1)
    );
}

#[test]
fn core_relocations_refuse_only_their_programs() {
    let (obj, errors) = lenient("ebpf-samples/cilium-examples/tcprtt_bpf_bpfel.o");
    assert!(obj.programs.is_empty());
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .to_string()
            .starts_with("section `fentry/tcp_close`, program `tcp_close`: CO-RE relocations need kernel BTF, not supported"),
        "{}",
        errors[0]
    );
    assert!(matches!(
        load_object(&read("ebpf-samples/cilium-examples/tcprtt_bpf_bpfel.o")),
        Err(ElfError::Section(_))
    ));
}

#[test]
fn text_program_policy() {
    let bytes = read("ebpf-samples/build/bpf2bpf.o");
    let (default, _) = load_object_lenient(&bytes).expect("loads");
    assert_eq!(
        default
            .programs
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["func"]
    );
    let (all, _) = load_object_with(
        &bytes,
        &LoadOptions {
            text_programs: TextPrograms::Always,
        },
    )
    .expect("loads");
    assert_eq!(
        all.programs
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["add1", "add2", "func"]
    );
    // Only `.text`: its functions are the programs.
    let (alone, _) = lenient("ebpf-samples/build/prog_array.o");
    assert_eq!(alone.programs.len(), 5);
}

#[test]
fn whole_file_errors() {
    let mut be = read("cilium-ebpf/testdata/loader-clang-14-el.elf");
    be[5] = 2;
    assert_eq!(load_object(&be).err(), Some(ElfError::BigEndian));
    assert!(is_big_endian(&be));
    assert_eq!(load_object(b"not an elf").err(), Some(ElfError::NotElf));
    let ok = read("cilium-ebpf/testdata/loader-clang-14-el.elf");
    assert!(matches!(
        load_object(&ok[..40]),
        Err(ElfError::Malformed(_))
    ));
    let err = load_object(&read("ebpf-samples/invalid/badsymsize.o")).expect_err("bad symtab");
    assert!(
        err.to_string().starts_with("malformed ELF: symbol table"),
        "{err}"
    );
}

#[test]
fn undecodable_code_fails_with_its_slot() {
    let (_, errors) = lenient("ebpf-samples/invalid/invalid-lddw.o");
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "section `.text`, program `func`: func: insn 1: invalid bpf_ld_imm64 insn: missing second slot"
    );
}
