//! `BPF_PROG_LOAD`: hand raw instructions to the kernel verifier and JIT.

use std::ffi::CString;

use aya_obj::generated::{bpf_cmd, bpf_insn};
use tracing::debug_span;
use vm_core::RawInsn;

use super::fd::{BpfFd, ProgFd};
use super::map::object_name;
use super::verifier_log::{VerifierStats, first_error_line, parse_stats};
use crate::sys::{self, errno_name};

/// `prog_flags` bits of `BPF_PROG_LOAD` (values from the UAPI via `aya_obj::generated`).
pub mod flags {
    use aya_obj::generated as g;
    /// Refuse unaligned accesses even where the architecture allows them.
    pub const STRICT_ALIGNMENT: u32 = g::BPF_F_STRICT_ALIGNMENT;
    /// Accept any alignment (test_verifier's F_NEEDS_EFFICIENT_UNALIGNED_ACCESS).
    pub const ANY_ALIGNMENT: u32 = g::BPF_F_ANY_ALIGNMENT;
    /// Poison the upper 32 bits of every 32-bit definition not marked as needing zero-extension.
    pub const TEST_RND_HI32: u32 = g::BPF_F_TEST_RND_HI32;
    /// Checkpoint states at every instruction (stress pruning).
    pub const TEST_STATE_FREQ: u32 = g::BPF_F_TEST_STATE_FREQ;
    /// Sleepable program.
    pub const SLEEPABLE: u32 = g::BPF_F_SLEEPABLE;
    /// XDP program that understands multi-buffer frames.
    pub const XDP_HAS_FRAGS: u32 = g::BPF_F_XDP_HAS_FRAGS;
    /// Check register-bound invariants after every step and fail loudly when violated.
    pub const TEST_REG_INVARIANTS: u32 = g::BPF_F_TEST_REG_INVARIANTS;
}

/// The log levels of `BPF_PROG_LOAD`.
pub mod log_level {
    /// No log (errors still come back as an errno).
    pub const NONE: u32 = 0;
    /// Verdict, error message and the summary line.
    pub const BASIC: u32 = 1;
    /// Full instruction-by-instruction trace with register states.
    pub const VERBOSE: u32 = 2;
    /// Statistics: `verification time N usec`, `stack depth ...`.
    pub const STATS: u32 = 4;
}

/// How to load a program.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Bit set of [`log_level`] values.
    pub log_level: u32,
    /// Bit set of [`flags`].
    pub prog_flags: u32,
    /// `expected_attach_type` (0 when the program type needs none).
    pub expected_attach_type: u32,
    /// License string; GPL-only helpers need a GPL-compatible one.
    pub license: String,
    /// Initial log buffer size in bytes; grown on `ENOSPC` up to `max_log_size`.
    pub log_size: u32,
    /// Largest log buffer tried before giving up (the kernel caps at 1 GiB).
    pub max_log_size: u32,
    /// Program name (bpftool's `name`), truncated to 15 characters.
    pub name: String,
    /// Freeze `.rodata`-like maps after writing their initial value (used by
    /// [`load_vm_program`](super::load_vm_program); the verifier then knows their contents).
    pub freeze_rodata: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            log_level: log_level::BASIC,
            prog_flags: 0,
            expected_attach_type: 0,
            license: "GPL".to_string(),
            log_size: 64 * 1024,
            max_log_size: 256 * 1024 * 1024,
            name: String::new(),
            freeze_rodata: false,
        }
    }
}

/// A program the kernel accepted.
#[derive(Debug)]
pub struct LoadedProgram {
    /// The program's descriptor (closed on drop).
    pub fd: ProgFd,
    /// The verifier log (empty at `log_level` 0).
    pub log: String,
    /// The summary lines of the log.
    pub stats: VerifierStats,
}

/// How the kernel classifies a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionClass {
    /// `EACCES`: the program could do something unsafe (bad pointer use, uninitialised read...).
    Safety,
    /// `EINVAL`: malformed or structurally invalid (unreachable code, loops, bad encoding...).
    Structural,
    /// `E2BIG`: too large or too complex.
    TooBig,
    /// Anything else (`EPERM`, `ENOMEM`, `ENOSPC` with the log at its cap, ...).
    Other(i32),
}

/// The kernel refused the program.
#[derive(Debug, Clone, thiserror::Error)]
#[error("BPF_PROG_LOAD failed with {} ({errno}): {}", errno_name(*errno), first_error_line.as_deref().unwrap_or("no verifier message"))]
pub struct LoadError {
    /// The errno of `BPF_PROG_LOAD`.
    pub errno: i32,
    /// The whole verifier log (empty at `log_level` 0).
    pub log: String,
    /// The line that says why (see [`first_error_line`]).
    pub first_error_line: Option<String>,
    /// Summary lines, when the verifier got that far.
    pub stats: VerifierStats,
}

impl LoadError {
    /// `EACCES` / `EINVAL` / `E2BIG` / other.
    pub fn class(&self) -> RejectionClass {
        match self.errno {
            libc::EACCES => RejectionClass::Safety,
            libc::EINVAL => RejectionClass::Structural,
            libc::E2BIG => RejectionClass::TooBig,
            e => RejectionClass::Other(e),
        }
    }

    fn local(errno: i32, why: &str) -> Self {
        LoadError {
            errno,
            log: String::new(),
            first_error_line: Some(why.to_string()),
            stats: VerifierStats::default(),
        }
    }
}

/// The UAPI form of one slot.
pub fn to_bpf_insn(raw: RawInsn) -> bpf_insn {
    // SAFETY: bpf_insn is plain integers; all-zero is valid.
    let mut insn: bpf_insn = unsafe { std::mem::zeroed() };
    insn.code = raw.code;
    insn.set_dst_reg(raw.dst);
    insn.set_src_reg(raw.src);
    insn.off = raw.off;
    insn.imm = raw.imm;
    insn
}

/// Loads `insns` as a program of type `prog_type` (`enum bpf_prog_type` number).
///
/// The log buffer starts at `opts.log_size` and is grown (to the kernel's reported
/// `log_true_size`, or doubled) whenever the kernel answers `ENOSPC`: since 6.4 a truncated
/// log turns the verdict itself into `ENOSPC`, so the retry is what recovers the real verdict.
// Rejections are ordinary data for an oracle: the large error (it carries the log) is the
// common path, and boxing it would only add noise for callers.
#[allow(clippy::result_large_err)]
pub fn load_program(
    insns: &[RawInsn],
    prog_type: u32,
    opts: &LoadOptions,
) -> Result<LoadedProgram, LoadError> {
    let _span = debug_span!("prog_load", prog_type, insns = insns.len()).entered();
    let Ok(insn_cnt) = u32::try_from(insns.len()) else {
        return Err(LoadError::local(
            libc::E2BIG,
            "program has more than 2^32 instructions",
        ));
    };
    let Ok(license) = CString::new(opts.license.as_str()) else {
        return Err(LoadError::local(
            libc::EINVAL,
            "license string contains a NUL byte",
        ));
    };
    let code: Vec<bpf_insn> = insns.iter().copied().map(to_bpf_insn).collect();
    let mut log_size = if opts.log_level == 0 {
        0
    } else {
        opts.log_size.max(128)
    };
    loop {
        let mut buf = vec![0u8; log_size as usize];
        let mut attr = sys::zeroed_attr();
        // SAFETY: writing the BPF_PROG_LOAD member of a zeroed union.
        let a = unsafe { &mut attr.__bindgen_anon_3 };
        a.prog_type = prog_type;
        a.insn_cnt = insn_cnt;
        a.insns = code.as_ptr() as u64;
        a.license = license.as_ptr() as u64;
        a.log_level = opts.log_level;
        a.log_size = log_size;
        a.log_buf = if log_size == 0 {
            0
        } else {
            buf.as_mut_ptr() as u64
        };
        a.prog_flags = opts.prog_flags;
        a.expected_attach_type = opts.expected_attach_type;
        a.prog_name = object_name(&opts.name);
        let ret = sys::bpf(bpf_cmd::BPF_PROG_LOAD, &mut attr);
        // SAFETY: reading back the same member; the kernel fills log_true_size (6.4+).
        let true_size = unsafe { attr.__bindgen_anon_3.log_true_size };
        let log = log_text(&buf);
        match ret {
            Ok(fd) => {
                return Ok(LoadedProgram {
                    fd: ProgFd(BpfFd::from_syscall(fd)),
                    stats: parse_stats(&log),
                    log,
                });
            }
            Err(e) if e.errno == libc::ENOSPC && log_size > 0 && log_size < opts.max_log_size => {
                let grown = u64::from(true_size).max(u64::from(log_size) * 2);
                log_size = grown.min(u64::from(opts.max_log_size)) as u32;
                tracing::debug!(
                    log_size,
                    "verifier log truncated; retrying with a larger buffer"
                );
            }
            Err(e) => {
                return Err(LoadError {
                    errno: e.errno,
                    first_error_line: first_error_line(&log),
                    stats: parse_stats(&log),
                    log,
                });
            }
        }
    }
}

/// The NUL-terminated log as text (lossy: the kernel prints ASCII).
fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
