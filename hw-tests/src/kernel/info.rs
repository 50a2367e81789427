//! `BPF_OBJ_GET_INFO_BY_FD` on programs: the translated (post-verifier) instructions and the
//! JIT's machine code.

use aya_obj::generated::{bpf_cmd, bpf_prog_info};
use tracing::debug_span;
use vm_core::RawInsn;

use super::fd::ProgFd;
use crate::sys::{self, SyscallError};

/// What the kernel tells about a loaded program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgInfo {
    /// `enum bpf_prog_type` number.
    pub prog_type: u32,
    /// Kernel-wide program id.
    pub id: u32,
    /// The program tag (SHA of the instructions), as bpftool prints it.
    pub tag: [u8; 8],
    /// Name given at load.
    pub name: String,
    /// The program after the verifier's rewrites (ctx accesses, map inlining, zext,
    /// `BPF_F_TEST_RND_HI32` poisoning). Map pointers appear as map ids.
    pub xlated: Vec<RawInsn>,
    /// JIT output (x86-64 machine code here).
    pub jited: Vec<u8>,
    /// JIT image length of each subprogram.
    pub jited_func_lens: Vec<u32>,
    /// Ids of the maps the program uses.
    pub map_ids: Vec<u32>,
    /// Instructions the verifier processed (the `processed N insns` figure).
    pub verified_insns: u32,
    /// Whether the license is GPL-compatible.
    pub gpl_compatible: bool,
}

fn get_info(prog: &ProgFd, info: &mut bpf_prog_info) -> Result<(), SyscallError> {
    let mut attr = sys::zeroed_attr();
    // SAFETY: writing the BPF_OBJ_GET_INFO_BY_FD member of a zeroed union.
    let a = unsafe { &mut attr.info };
    a.bpf_fd = prog.raw() as u32;
    a.info_len = std::mem::size_of::<bpf_prog_info>() as u32;
    a.info = info as *mut bpf_prog_info as u64;
    sys::bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(())
}

/// Two calls: the first learns the lengths, the second passes buffers of those lengths.
/// Only the arrays we want get a buffer: any other non-zero count with a null pointer
/// would make the kernel fail with `EFAULT`.
pub fn prog_info(prog: &ProgFd) -> Result<ProgInfo, SyscallError> {
    let _span = debug_span!("prog_info", prog = prog.raw()).entered();
    // SAFETY: bpf_prog_info is plain integers (and a bitfield unit); all-zero is valid.
    let mut first: bpf_prog_info = unsafe { std::mem::zeroed() };
    get_info(prog, &mut first)?;

    let mut xlated = vec![0u8; first.xlated_prog_len as usize];
    let mut jited = vec![0u8; first.jited_prog_len as usize];
    let mut map_ids = vec![0u32; first.nr_map_ids as usize];
    let mut func_lens = vec![0u32; first.nr_jited_func_lens as usize];
    // SAFETY: as above.
    let mut second: bpf_prog_info = unsafe { std::mem::zeroed() };
    second.xlated_prog_len = first.xlated_prog_len;
    second.xlated_prog_insns = xlated.as_mut_ptr() as u64;
    second.jited_prog_len = first.jited_prog_len;
    second.jited_prog_insns = jited.as_mut_ptr() as u64;
    second.nr_map_ids = first.nr_map_ids;
    second.map_ids = map_ids.as_mut_ptr() as u64;
    second.nr_jited_func_lens = first.nr_jited_func_lens;
    second.jited_func_lens = func_lens.as_mut_ptr() as u64;
    get_info(prog, &mut second)?;

    // The kernel may report shorter arrays the second time (never longer: it copies at
    // most what we offered).
    xlated.truncate(second.xlated_prog_len.min(first.xlated_prog_len) as usize);
    jited.truncate(second.jited_prog_len.min(first.jited_prog_len) as usize);
    map_ids.truncate(second.nr_map_ids.min(first.nr_map_ids) as usize);
    func_lens.truncate(second.nr_jited_func_lens.min(first.nr_jited_func_lens) as usize);
    let whole = xlated.len() - xlated.len() % 8;
    let xlated = RawInsn::slice_from_bytes(&xlated[..whole]).unwrap_or_default();
    let name_end = second
        .name
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(second.name.len());
    let name: Vec<u8> = second.name[..name_end].iter().map(|&c| c as u8).collect();
    Ok(ProgInfo {
        prog_type: second.type_,
        id: second.id,
        tag: second.tag,
        name: String::from_utf8_lossy(&name).into_owned(),
        xlated,
        jited,
        jited_func_lens: func_lens,
        map_ids,
        verified_insns: second.verified_insns,
        gpl_compatible: second.gpl_compatible() != 0,
    })
}
