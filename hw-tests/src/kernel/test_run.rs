//! `BPF_PROG_TEST_RUN`: run a loaded (JIT-compiled) program on a packet.

use aya_obj::generated::bpf_cmd;
use tracing::debug_span;

use super::fd::ProgFd;
use crate::sys::{self, SyscallError};

/// Extra room for the output packet beyond the input: XDP can grow a frame by its tailroom
/// (under one page) and tc programs can push headers. A run whose output still does not fit
/// fails with `ENOSPC` rather than being repeated, because a second run would apply the
/// program's map side effects twice.
pub const DATA_OUT_SLACK: usize = 256 + 4096;

/// What one `BPF_PROG_TEST_RUN` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunResult {
    /// The program's return value (the kernel reports only the low 32 bits of R0).
    pub retval: u32,
    /// The packet after the run.
    pub data_out: Vec<u8>,
    /// The context after the run, when one was passed in.
    pub ctx_out: Option<Vec<u8>>,
    /// Mean nanoseconds per run over `repeat` runs.
    pub duration_ns: u32,
}

/// Runs `prog` on `data_in` (`repeat` times; 0 means once), optionally with a context
/// (`__sk_buff` or `xdp_md` bytes).
pub fn test_run(
    prog: &ProgFd,
    data_in: &[u8],
    ctx_in: Option<&[u8]>,
    repeat: u32,
) -> Result<TestRunResult, SyscallError> {
    let _span = debug_span!("test_run", prog = prog.raw(), len = data_in.len(), repeat).entered();
    let too_big = |_| SyscallError {
        call: "BPF_PROG_TEST_RUN",
        errno: libc::E2BIG,
    };
    let mut data_out = vec![0u8; data_in.len() + DATA_OUT_SLACK];
    let mut ctx_out = ctx_in.map(|c| vec![0u8; c.len()]);
    let mut attr = sys::zeroed_attr();
    // SAFETY: writing the BPF_PROG_TEST_RUN member of a zeroed union.
    let t = unsafe { &mut attr.test };
    t.prog_fd = prog.raw() as u32;
    t.data_in = data_in.as_ptr() as u64;
    t.data_size_in = u32::try_from(data_in.len()).map_err(too_big)?;
    t.data_out = data_out.as_mut_ptr() as u64;
    t.data_size_out = u32::try_from(data_out.len()).map_err(too_big)?;
    t.repeat = repeat;
    if let (Some(cin), Some(cout)) = (ctx_in, ctx_out.as_mut()) {
        t.ctx_in = cin.as_ptr() as u64;
        t.ctx_size_in = u32::try_from(cin.len()).map_err(too_big)?;
        t.ctx_out = cout.as_mut_ptr() as u64;
        t.ctx_size_out = t.ctx_size_in;
    }
    sys::bpf(bpf_cmd::BPF_PROG_TEST_RUN, &mut attr)?;
    // SAFETY: reading back the same member.
    let t = unsafe { attr.test };
    data_out.truncate(t.data_size_out as usize);
    if let Some(c) = ctx_out.as_mut() {
        c.truncate(t.ctx_size_out as usize);
    }
    Ok(TestRunResult {
        retval: t.retval,
        data_out,
        ctx_out,
        duration_ns: t.duration,
    })
}
