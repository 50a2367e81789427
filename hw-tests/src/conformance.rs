//! Running bpf_conformance tests through the kernel with the full 64-bit R0
//! (shared/corpus/FORMATS.md §1, "Running against Linux").
//!
//! `BPF_PROG_TEST_RUN` reports only the low 32 bits of R0, while the conformance suite
//! checks all 64. So, as upstream's libbpf plugin does, the test body is appended to a small
//! XDP main program that calls it as a bpf-to-bpf subprogram and stores its R0 into a
//! one-entry u64 array map through `lddw r1, map_value` (`BPF_PSEUDO_MAP_VALUE`):
//!
//! ```text
//! call local <body>; lddw r1, &result[0]; *(u64 *)(r1 + 0) = r0; exit; <body...>
//! ```
//!
//! Jumps inside the body need no change because they are relative and the body keeps its
//! slots contiguous. For a test with `-- mem`, a prolog first points r1 at the packet
//! (`xdp_md->data`), proves `data + len <= data_end` to the verifier, and sets r2 = len:
//!
//! ```text
//! r2 = *(u32 *)(r1 + 0); r3 = *(u32 *)(r1 + 4); r4 = r2; r4 += len;
//! if r4 > r3 goto fail; r1 = r2; r2 = len; call local <body>; lddw..; stx..; exit;
//! fail: r0 = FAIL; exit; <body...>
//! ```
//!
//! The XDP test runner wants at least an Ethernet header, so the packet is the memory padded
//! with zeros to 14 bytes. r2 is the *unpadded* length (the conformance contract: r2 = the
//! length of `mem`; `mem-len.data` checks it), given as an immediate because the verifier
//! forbids arithmetic on `pkt_end`. Without `mem` there is no prolog and the body sees the
//! XDP context in r1, exactly like the measured baseline harness.

use tracing::debug_span;
use vm_core::RawInsn;
use vm_core::isa::{
    AluOp, CallTarget, Insn, JmpCond, LdImm64, Operand, Size, Width, encode_program,
};

use crate::engine::{Engine, EngineError, EngineResult, TestInput};
use crate::kernel::{
    LoadError, LoadOptions, MapError, MapFd, MapSpec, load_program, prog_type, test_run,
};
use crate::sys::SyscallError;

/// Smallest packet the XDP test runner accepts (`ETH_HLEN`).
pub const MIN_XDP_PACKET: usize = 14;

/// R0 of the bounds-check failure path; it never reaches the map, which is how a failed
/// bounds check is told apart from a test that returns the same value.
const FAIL_RETVAL: i32 = 0x0bad_0bad;

/// Why a conformance program could not be run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConformanceError {
    /// Creating or reading the result map failed.
    #[error("result map: {0}")]
    Map(#[from] MapError),
    /// The kernel refused the program (boxed: it carries the whole log).
    #[error(transparent)]
    Load(Box<LoadError>),
    /// `BPF_PROG_TEST_RUN` failed.
    #[error(transparent)]
    Run(#[from] SyscallError),
    /// `mem` longer than the prolog's 16-bit-safe packet range.
    #[error("mem is {0} bytes; at most 0xffff are supported")]
    MemTooLong(usize),
    /// The run's 32-bit return value does not match the stored R0: the prolog's bounds check
    /// failed or the store never happened.
    #[error(
        "harness inconsistency: test run returned {retval:#x} but the result map holds {stored:#x}"
    )]
    Inconsistent {
        /// `BPF_PROG_TEST_RUN` retval.
        retval: u32,
        /// The map's value.
        stored: u64,
    },
}

impl From<LoadError> for ConformanceError {
    fn from(e: LoadError) -> Self {
        ConformanceError::Load(Box::new(e))
    }
}

/// One conformance run on the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceRun {
    /// The test body's full 64-bit R0.
    pub r0: u64,
    /// `mem` after the run (the body may store into it).
    pub mem_out: Vec<u8>,
    /// The loaded program (prolog + prefix + body), for reports.
    pub program: Vec<RawInsn>,
}

fn mov64(dst: u8, src: Operand) -> Insn {
    Insn::Alu {
        op: AluOp::Mov,
        width: Width::W64,
        dst,
        src,
    }
}

/// The prolog and prefix for a body of `mem_len` bytes of memory (`None`: no `-- mem`),
/// storing R0 into the map value behind descriptor `result_fd`.
pub fn harness_prefix(mem_len: Option<usize>, result_fd: i32) -> Vec<RawInsn> {
    let store = [
        Insn::LdImm64 {
            dst: 1,
            value: LdImm64::MapValue {
                fd: result_fd,
                off: 0,
            },
        },
        Insn::LdImm64Tail,
        Insn::Store {
            size: Size::DW,
            dst: 1,
            src: Operand::Reg(0),
            off: 0,
        },
        Insn::Exit,
    ];
    // Slots after the `call` up to the body: the store sequence, plus the fail block.
    let mut insns = Vec::new();
    match mem_len {
        None => {
            insns.push(Insn::Call(CallTarget::Local(store.len() as i32)));
            insns.extend(store);
        }
        Some(len) => {
            let len = len as i32;
            let fail = [mov64(0, Operand::Imm(FAIL_RETVAL)), Insn::Exit];
            let tail_after_jump = 3 + store.len() as i32; // r1 = r2; r2 = len; call; store
            insns.extend([
                Insn::Load {
                    size: Size::W,
                    signed: false,
                    dst: 2,
                    src: 1,
                    off: 0,
                },
                Insn::Load {
                    size: Size::W,
                    signed: false,
                    dst: 3,
                    src: 1,
                    off: 4,
                },
                mov64(4, Operand::Reg(2)),
                Insn::Alu {
                    op: AluOp::Add,
                    width: Width::W64,
                    dst: 4,
                    src: Operand::Imm(len),
                },
                Insn::Jmp {
                    cond: JmpCond::Gt,
                    width: Width::W64,
                    dst: 4,
                    src: Operand::Reg(3),
                    off: tail_after_jump as i16,
                },
                mov64(1, Operand::Reg(2)),
                mov64(2, Operand::Imm(len)),
                Insn::Call(CallTarget::Local(store.len() as i32 + fail.len() as i32)),
            ]);
            insns.extend(store);
            insns.extend(fail);
        }
    }
    encode_program(&insns)
}

/// Loads `body` behind the harness, runs it once on `mem` and returns the full R0.
pub fn run_conformance(
    body: &[RawInsn],
    mem: &[u8],
    opts: &LoadOptions,
) -> Result<ConformanceRun, ConformanceError> {
    let _span = debug_span!("conformance_run", slots = body.len(), mem = mem.len()).entered();
    if mem.len() > 0xffff {
        return Err(ConformanceError::MemTooLong(mem.len()));
    }
    let mut spec = MapSpec::array(8, 1);
    spec.name = "conf_r0".into();
    let result = MapFd::create(&spec)?;
    let mem_len = (!mem.is_empty()).then_some(mem.len());
    let mut program = harness_prefix(mem_len, result.raw());
    program.extend_from_slice(body);
    let prog = load_program(&program, prog_type::XDP, opts)?;
    let mut packet = mem.to_vec();
    if packet.len() < MIN_XDP_PACKET {
        packet.resize(MIN_XDP_PACKET, 0);
    }
    let out = test_run(&prog.fd, &packet, None, 1)?;
    let stored = result
        .lookup(&0u32.to_le_bytes())?
        .and_then(|v| v.get(..8).and_then(|b| b.try_into().ok()))
        .map(u64::from_le_bytes)
        .unwrap_or(0);
    if out.retval != stored as u32 {
        return Err(ConformanceError::Inconsistent {
            retval: out.retval,
            stored,
        });
    }
    let mut mem_out = out.data_out;
    mem_out.truncate(mem.len());
    Ok(ConformanceRun {
        r0: stored,
        mem_out,
        program,
    })
}

/// The full 64-bit R0 of `insns` run on `mem` by the kernel's JIT (default load options).
pub fn run_with_full_r0(insns: &[RawInsn], mem: &[u8]) -> Result<u64, ConformanceError> {
    run_conformance(insns, mem, &LoadOptions::default()).map(|r| r.r0)
}

/// A conformance test body on the kernel as an [`Engine`]: the input packet is the test's
/// `mem`, the result is the full R0 and the memory after the run. The program is loaded per
/// run because the prolog bakes in the memory length.
#[derive(Debug, Clone)]
pub struct ConformanceKernelEngine {
    body: Vec<RawInsn>,
    opts: LoadOptions,
}

impl ConformanceKernelEngine {
    /// An engine for one test body.
    pub fn new(body: Vec<RawInsn>) -> Self {
        ConformanceKernelEngine {
            body,
            opts: LoadOptions::default(),
        }
    }
}

impl Engine for ConformanceKernelEngine {
    fn name(&self) -> &str {
        "kernel"
    }

    fn run(&mut self, input: &TestInput) -> Result<EngineResult, EngineError> {
        match run_conformance(&self.body, &input.packet, &self.opts) {
            Ok(r) => Ok(EngineResult {
                retval: r.r0,
                retval_bits: 64,
                packet: r.mem_out,
                maps: None,
            }),
            Err(e @ (ConformanceError::Load(_) | ConformanceError::MemTooLong(_))) => {
                Err(EngineError::Refused(e.to_string()))
            }
            Err(e) => Err(EngineError::Fault(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_without_mem_is_the_five_slot_upstream_one() {
        let mut p = harness_prefix(None, 7);
        assert_eq!(p.len(), 5);
        p.extend(encode_program(&[mov64(0, Operand::Imm(0)), Insn::Exit]));
        let insns = vm_core::isa::decode_program(&p).expect("valid");
        assert_eq!(insns[0], Insn::Call(CallTarget::Local(4)));
        assert_eq!(insns[0].call_target(0), Some(5));
        assert_eq!(
            insns[1],
            Insn::LdImm64 {
                dst: 1,
                value: LdImm64::MapValue { fd: 7, off: 0 }
            }
        );
    }

    #[test]
    fn prefix_with_mem_calls_the_slot_after_it_and_jumps_to_fail() {
        let mut p = harness_prefix(Some(5), 3);
        let body_start = p.len() as i64;
        p.extend(encode_program(&[mov64(0, Operand::Imm(0)), Insn::Exit]));
        let insns = vm_core::isa::decode_program(&p).expect("valid");
        let call_pc = insns
            .iter()
            .position(|i| matches!(i, Insn::Call(_)))
            .expect("call");
        assert_eq!(insns[call_pc].call_target(call_pc), Some(body_start));
        let jmp_pc = insns
            .iter()
            .position(|i| matches!(i, Insn::Jmp { .. }))
            .expect("bounds check");
        let fail = insns[jmp_pc].jump_target(jmp_pc).expect("target") as usize;
        assert_eq!(insns[fail], mov64(0, Operand::Imm(FAIL_RETVAL)));
        assert_eq!(insns[fail + 1], Insn::Exit);
    }
}
