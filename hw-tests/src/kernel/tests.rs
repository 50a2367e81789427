//! Unit tests of the kernel layer over a fake syscall layer: no root, no kernel.

use std::cell::RefCell;
use std::rc::Rc;

use aya_obj::generated::{bpf_cmd, bpf_insn};
use vm_core::isa::{AluOp, Insn, LdImm64, Operand, Size, Width};
use vm_core::{MapDef, MapType, ProgType, Program, RawInsn};

use super::*;
use crate::sys::{self, Syscall, fake, override_syscall};

const R0_READ_OK_LOG: &str = "0: R1=ctx() R10=fp0\n0: (95) exit\nR0 !read_ok\nprocessed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";

/// Records (command, ...) and closes; answers by a per-command closure.
#[derive(Default)]
struct Trace {
    cmds: Vec<bpf_cmd>,
    closed: Vec<i32>,
}

fn install(
    answer: impl FnMut(bpf_cmd, &mut aya_obj::generated::bpf_attr) -> sys::SysResult + 'static,
) -> (Rc<RefCell<Trace>>, sys::OverrideGuard) {
    let trace = Rc::new(RefCell::new(Trace::default()));
    let t = trace.clone();
    let mut answer = answer;
    let guard = override_syscall(move |call| match call {
        Syscall::Bpf { cmd, attr } => {
            t.borrow_mut().cmds.push(cmd);
            answer(cmd, attr)
        }
        Syscall::Close { fd } => {
            t.borrow_mut().closed.push(fd);
            Ok(0)
        }
    });
    (trace, guard)
}

fn mov_exit() -> Vec<RawInsn> {
    vm_core::isa::encode_program(&[
        Insn::Alu {
            op: AluOp::Mov,
            width: Width::W64,
            dst: 0,
            src: Operand::Imm(2),
        },
        Insn::Exit,
    ])
}

#[test]
fn load_success_passes_attributes_and_closes_on_drop() {
    let (trace, _g) = install(|cmd, attr| {
        assert_eq!(cmd, bpf_cmd::BPF_PROG_LOAD);
        // SAFETY: BPF_PROG_LOAD attribute built by load_program; pointers valid for the call.
        unsafe {
            let a = &attr.__bindgen_anon_3;
            assert_eq!(a.prog_type, prog_type::XDP);
            assert_eq!(a.insn_cnt, 2);
            assert_eq!(a.prog_flags, flags::TEST_RND_HI32);
            assert_eq!(a.log_level, 1);
            let license = std::ffi::CStr::from_ptr(a.license as *const libc::c_char);
            assert_eq!(license.to_str(), Ok("GPL"));
            let insns = std::slice::from_raw_parts(a.insns as *const bpf_insn, 2);
            assert_eq!(insns[0].code, 0xb7);
            assert_eq!(insns[0].imm, 2);
            assert_eq!(insns[1].code, 0x95);
            fake::write_log(
                attr,
                "processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n",
            );
        }
        Ok(7)
    });
    let opts = LoadOptions {
        prog_flags: flags::TEST_RND_HI32,
        ..LoadOptions::default()
    };
    let p = load_program(&mov_exit(), prog_type::XDP, &opts).expect("fake accepts");
    assert_eq!(p.fd.raw(), 7);
    assert_eq!(p.stats.insns_processed, Some(2));
    drop(p);
    assert_eq!(trace.borrow().closed, vec![7]);
}

#[test]
fn load_failure_decodes_errno_and_first_error_line() {
    let (_t, _g) = install(|_, attr| {
        // SAFETY: BPF_PROG_LOAD attribute with a valid log buffer.
        unsafe { fake::write_log(attr, R0_READ_OK_LOG) };
        Err(libc::EACCES)
    });
    let e =
        load_program(&mov_exit(), prog_type::XDP, &LoadOptions::default()).expect_err("must fail");
    assert_eq!(e.errno, libc::EACCES);
    assert_eq!(e.class(), RejectionClass::Safety);
    assert_eq!(e.first_error_line.as_deref(), Some("R0 !read_ok"));
    assert_eq!(e.stats.insns_processed, Some(1));
    assert!(e.to_string().contains("EACCES"), "{e}");
    assert!(e.to_string().contains("R0 !read_ok"), "{e}");
}

#[test]
fn enospc_grows_the_log_buffer_and_retries() {
    let big = format!(
        "{}unreachable insn 2\n",
        "0: (b7) r0 = 0   ; R0=0\n".repeat(100)
    );
    let sizes = Rc::new(RefCell::new(Vec::new()));
    let s = sizes.clone();
    let (_t, _g) = install(move |_, attr| {
        // SAFETY: BPF_PROG_LOAD attribute with a valid log buffer.
        let size = unsafe { attr.__bindgen_anon_3.log_size };
        s.borrow_mut().push(size);
        // SAFETY: as above.
        let fit = unsafe { fake::write_log(attr, &big) };
        if fit {
            Err(libc::EINVAL)
        } else {
            Err(libc::ENOSPC)
        }
    });
    let opts = LoadOptions {
        log_size: 128,
        ..LoadOptions::default()
    };
    let e = load_program(&mov_exit(), prog_type::XDP, &opts).expect_err("must fail");
    assert_eq!(e.errno, libc::EINVAL);
    assert_eq!(e.class(), RejectionClass::Structural);
    assert_eq!(e.first_error_line.as_deref(), Some("unreachable insn 2"));
    let sizes = sizes.borrow();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert!(sizes[1] as usize > 1500, "{sizes:?}");
}

#[test]
fn log_level_zero_sends_no_buffer() {
    let (_t, _g) = install(|_, attr| {
        // SAFETY: BPF_PROG_LOAD attribute.
        let a = unsafe { attr.__bindgen_anon_3 };
        assert_eq!((a.log_buf, a.log_size, a.log_level), (0, 0, 0));
        Err(libc::EACCES)
    });
    let opts = LoadOptions {
        log_level: log_level::NONE,
        ..LoadOptions::default()
    };
    let e = load_program(&mov_exit(), prog_type::XDP, &opts).expect_err("must fail");
    assert_eq!((e.errno, e.first_error_line), (libc::EACCES, None));
}

#[test]
fn test_run_reads_back_retval_packet_and_duration() {
    let (_t, _g) = install(|cmd, attr| {
        if cmd == bpf_cmd::BPF_PROG_LOAD {
            return Ok(9);
        }
        assert_eq!(cmd, bpf_cmd::BPF_PROG_TEST_RUN);
        // SAFETY: BPF_PROG_TEST_RUN attribute; data_out has data_size_out bytes.
        unsafe {
            let t = &mut attr.test;
            assert_eq!(t.prog_fd, 9);
            assert_eq!(t.data_size_in, 20);
            assert!(t.data_size_out as usize >= 20 + 256);
            assert_eq!(t.repeat, 10);
            let n = fake::write_user(t.data_out, t.data_size_out as usize, &[0xaa; 24]);
            t.data_size_out = n as u32;
            t.retval = 3;
            t.duration = 42;
        }
        Ok(0)
    });
    let p = load_program(&mov_exit(), prog_type::XDP, &LoadOptions::default()).expect("fake");
    let r = test_run(&p.fd, &[0u8; 20], None, 10).expect("fake run");
    assert_eq!(r.retval, 3);
    assert_eq!(r.duration_ns, 42);
    assert_eq!(r.data_out, vec![0xaa; 24]);
    assert_eq!(r.ctx_out, None);
}

#[test]
fn map_operations_decode_enoent() {
    let (trace, _g) = install(|cmd, attr| match cmd {
        bpf_cmd::BPF_MAP_CREATE => {
            // SAFETY: BPF_MAP_CREATE attribute.
            let a = unsafe { attr.__bindgen_anon_1 };
            assert_eq!(
                (a.map_type, a.key_size, a.value_size, a.max_entries),
                (1, 4, 8, 16)
            );
            assert_eq!(
                a.map_name[..3],
                [b'h' as libc::c_char, b'm' as libc::c_char, 0]
            );
            Ok(5)
        }
        bpf_cmd::BPF_MAP_LOOKUP_ELEM
        | bpf_cmd::BPF_MAP_DELETE_ELEM
        | bpf_cmd::BPF_MAP_GET_NEXT_KEY => Err(libc::ENOENT),
        _ => Err(libc::EPERM),
    });
    let spec = MapSpec {
        map_type: 1,
        key_size: 4,
        value_size: 8,
        max_entries: 16,
        flags: 0,
        name: "h-m".into(),
    };
    let m = MapFd::create(&spec).expect("fake");
    assert_eq!(m.lookup(&[0; 4]), Ok(None));
    assert_eq!(m.delete(&[0; 4]), Ok(false));
    assert_eq!(m.next_key(None), Ok(None));
    assert!(matches!(
        m.lookup(&[0; 3]),
        Err(MapError::KeySize {
            expected: 4,
            got: 3,
            ..
        })
    ));
    let e = m.update(&[0; 4], &[0; 8], 0).expect_err("must fail");
    assert!(
        matches!(e, MapError::Syscall { ref source, .. } if source.errno == libc::EPERM),
        "{e}"
    );
    drop(m);
    assert_eq!(trace.borrow().closed, vec![5]);
}

#[test]
fn prog_info_makes_two_calls_with_buffers() {
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    let (_t, _g) = install(move |cmd, attr| {
        if cmd == bpf_cmd::BPF_PROG_LOAD {
            return Ok(3);
        }
        *c.borrow_mut() += 1;
        // SAFETY: BPF_OBJ_GET_INFO_BY_FD attribute pointing at a bpf_prog_info.
        unsafe {
            let info = &mut *(attr.info.info as *mut aya_obj::generated::bpf_prog_info);
            if info.xlated_prog_insns == 0 {
                info.xlated_prog_len = 16;
                info.jited_prog_len = 3;
                info.nr_func_info = 1; // must not be echoed back without a buffer
            } else {
                assert_eq!(info.nr_func_info, 0);
                let x = RawInsn::slice_to_bytes(&mov_exit());
                fake::write_user(info.xlated_prog_insns, info.xlated_prog_len as usize, &x);
                fake::write_user(
                    info.jited_prog_insns,
                    info.jited_prog_len as usize,
                    &[0xc3, 0x90, 0xcc],
                );
                info.verified_insns = 2;
            }
        }
        Ok(0)
    });
    let p = load_program(&mov_exit(), prog_type::XDP, &LoadOptions::default()).expect("fake");
    let info = prog_info(&p.fd).expect("fake");
    assert_eq!(*calls.borrow(), 2);
    assert_eq!(info.xlated, mov_exit());
    assert_eq!(info.jited, vec![0xc3, 0x90, 0xcc]);
    assert_eq!(info.verified_insns, 2);
}

#[test]
fn vm_program_maps_are_created_initialised_and_patched() {
    let p = Program {
        name: "globals".into(),
        section: None,
        prog_type: ProgType::Xdp,
        insns: vec![
            Insn::LdImm64 {
                dst: 1,
                value: LdImm64::MapValue { fd: 1, off: 4 },
            },
            Insn::LdImm64Tail,
            Insn::LdImm64 {
                dst: 2,
                value: LdImm64::MapFd(0),
            },
            Insn::LdImm64Tail,
            Insn::Load {
                size: Size::W,
                signed: false,
                dst: 0,
                src: 1,
                off: 0,
            },
            Insn::Exit,
        ],
        maps: vec![
            MapDef {
                name: "counts".into(),
                map_type: MapType::Hash,
                key_size: 4,
                value_size: 8,
                max_entries: 4,
                flags: 0,
                initial_value: None,
            },
            MapDef {
                name: ".rodata".into(),
                map_type: MapType::Array,
                key_size: 4,
                value_size: 8,
                max_entries: 1,
                flags: 0,
                initial_value: Some(vec![1, 2, 3]),
            },
        ],
    };
    let next_fd = Rc::new(RefCell::new(100));
    let written = Rc::new(RefCell::new(Vec::<Vec<u8>>::new()));
    let (nf, w) = (next_fd.clone(), written.clone());
    let (trace, _g) = install(move |cmd, attr| match cmd {
        bpf_cmd::BPF_MAP_CREATE => {
            let fd = *nf.borrow();
            *nf.borrow_mut() += 1;
            Ok(fd)
        }
        bpf_cmd::BPF_MAP_UPDATE_ELEM => {
            // SAFETY: element attribute with an 8-byte value.
            let v = unsafe {
                std::slice::from_raw_parts(
                    attr.__bindgen_anon_2.__bindgen_anon_1.value as *const u8,
                    8,
                )
            };
            w.borrow_mut().push(v.to_vec());
            Ok(0)
        }
        bpf_cmd::BPF_MAP_FREEZE => Ok(0),
        bpf_cmd::BPF_PROG_LOAD => {
            // SAFETY: BPF_PROG_LOAD attribute with insn_cnt instructions.
            let insns = unsafe {
                let a = attr.__bindgen_anon_3;
                std::slice::from_raw_parts(a.insns as *const bpf_insn, a.insn_cnt as usize).to_vec()
            };
            assert_eq!(
                (insns[0].src_reg(), insns[0].imm, insns[1].imm),
                (2, 101, 4)
            );
            assert_eq!((insns[2].src_reg(), insns[2].imm), (1, 100));
            Ok(102)
        }
        _ => Err(libc::EPERM),
    });
    let opts = LoadOptions {
        freeze_rodata: true,
        ..LoadOptions::default()
    };
    let loaded = load_vm_program(&p, &opts).expect("fake accepts");
    assert_eq!(loaded.frozen, vec![false, true]);
    // Array zero-fill of its single entry, then the initial value padded to 8 bytes.
    assert_eq!(
        *written.borrow(),
        vec![vec![0; 8], vec![1, 2, 3, 0, 0, 0, 0, 0]]
    );
    assert!(trace.borrow().cmds.contains(&bpf_cmd::BPF_MAP_FREEZE));
    drop(loaded);
    let mut closed = trace.borrow().closed.clone();
    closed.sort();
    assert_eq!(closed, vec![100, 101, 102]);
}

#[test]
fn bad_map_index_is_reported_with_its_pc() {
    let p = Program {
        name: "bad".into(),
        section: None,
        prog_type: ProgType::Xdp,
        insns: vec![
            Insn::Exit,
            Insn::LdImm64 {
                dst: 1,
                value: LdImm64::MapFd(3),
            },
            Insn::LdImm64Tail,
        ],
        maps: vec![],
    };
    let e = patch_map_fds(&p, &[]).expect_err("must fail");
    assert!(
        matches!(
            e,
            VmLoadError::BadMapIndex {
                pc: 1,
                index: 3,
                count: 0
            }
        ),
        "{e}"
    );
}

#[test]
fn unavailable_oracle_is_reported_not_hidden() {
    // The real oracle() is cached per process, so only the decoding is checked here.
    let (_t, _g) = install(|_, _| Err(libc::EPERM));
    let e = load_program(&trivial_program(), prog_type::XDP, &LoadOptions::default())
        .expect_err("must fail");
    assert_eq!(e.class(), RejectionClass::Other(libc::EPERM));
    assert!(e.to_string().contains("EPERM"));
}

proptest::proptest! {
    /// `to_bpf_insn` (bindgen bitfields) lays a slot out exactly as `RawInsn::to_bytes`.
    #[test]
    fn uapi_insn_layout_matches_raw_bytes(code: u8, dst in 0u8..16, src in 0u8..16, off: i16, imm: i32) {
        let raw = RawInsn::new(code, dst, src, off, imm);
        let insn = to_bpf_insn(raw);
        // SAFETY: bpf_insn is 8 bytes of plain integers.
        let bytes: [u8; 8] = unsafe { std::mem::transmute(insn) };
        proptest::prop_assert_eq!(bytes, raw.to_bytes());
    }

    /// The log readers accept any text (logs are truncated or garbled at times).
    #[test]
    fn log_readers_never_panic(text in "(?s).{0,300}") {
        let _ = verifier_log::parse_stats(&text);
        let _ = verifier_log::first_error_line(&text);
    }
}
