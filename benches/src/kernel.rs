//! The running Linux kernel as a peer: its JIT (timed by `BPF_PROG_TEST_RUN` with `repeat`,
//! which reports the kernel's own mean duration per run) and its verifier (the
//! `verification time N usec` line the kernel prints at log level 4, i.e. its own clock
//! around `bpf_check()`, next to the wall time of the whole `BPF_PROG_LOAD`, which adds the
//! JIT and the syscall).
//!
//! Both figures the kernel reports are integers truncated towards zero (ns per run, µs per
//! verification), so half a unit is added to each sample: the midpoint of the truncation
//! interval, which removes the systematic under-statement that matters for runs of a few
//! nanoseconds and verifications of a few microseconds.
//!
//! Loading needs `bpf()` (root here). Where the kernel refuses it, [`available`] says why and
//! callers print [`skip`]'s loud notice instead of a figure: never a made-up number.

use std::io::Write;
use std::time::Instant;

use hw_tests::kernel::{
    LoadOptions, LoadedProgram, MapFd, ProgFd, load_program, log_level, patch_map_fds, test_run,
};
use hw_tests::verdicts::{create_map, referenced_maps};
use vm_core::isa::{AluOp, Insn, JmpCond, Operand, Size, Width, encode_program};
use vm_core::{Program, RawInsn};

use crate::Workload;
use crate::timing::{Budget, Measurement};

/// The marker every skipped kernel measurement prints.
pub const SKIP_MARKER: &str = "SKIP (no kernel peer):";

/// Why a kernel measurement could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KernelError {
    /// `bpf()` is refused (not root, or BPF disabled).
    #[error("the kernel refuses bpf(): {0}")]
    Unavailable(String),
    /// The kernel refused this program (or creating its maps).
    #[error("{what}: the kernel refused it: {reason}")]
    Refused {
        /// Which program.
        what: String,
        /// First line of the kernel's answer.
        reason: String,
    },
    /// `BPF_PROG_TEST_RUN` failed.
    #[error("{what}: BPF_PROG_TEST_RUN: {reason}")]
    Run {
        /// Which program.
        what: String,
        /// The syscall error.
        reason: String,
    },
    /// The kernel did not report what was asked (no statistics line in the log).
    #[error("{what}: the kernel reported no {missing}")]
    NotReported {
        /// Which program.
        what: String,
        /// Which figure.
        missing: &'static str,
    },
}

/// `Ok` when the kernel loads a trivial XDP program (checked once per process).
pub fn available() -> Result<(), KernelError> {
    hw_tests::kernel::oracle().map_err(KernelError::Unavailable)
}

/// Prints a loud skip notice for `what` to stderr and stdout (both, so that neither a
/// redirected log nor a terminal misses it) and returns the line.
pub fn skip(what: &str, why: &KernelError) -> String {
    let line = format!("{SKIP_MARKER} {what}: {why}");
    let bar = "!".repeat(line.len().min(100));
    let text = format!("{bar}\n{line}\n{bar}\n");
    let _ = std::io::stderr().write_all(text.as_bytes());
    let _ = std::io::stdout().write_all(text.as_bytes());
    line
}

fn mov64(dst: u8, src: Operand) -> Insn {
    Insn::Alu {
        op: AluOp::Mov,
        width: Width::W64,
        dst,
        src,
    }
}

/// Instructions of [`mem_prolog`] a run executes when the packet is long enough (all but
/// the skipped failure exit's two).
const MEM_PROLOG_EXECUTED: u64 = 7;

/// The XDP prolog that gives a `mem`-convention body what it expects: r1 = the packet
/// (proved `len` bytes long to the verifier), r2 = `len`. Without memory the body runs as
/// is (it never reads r1 or r2).
fn mem_prolog(len: usize) -> Vec<RawInsn> {
    if len == 0 {
        return Vec::new();
    }
    let len = i32::try_from(len).unwrap_or(i32::MAX);
    encode_program(&[
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
        // Past the failure exit when the packet is long enough.
        Insn::Jmp {
            cond: JmpCond::Le,
            width: Width::W64,
            dst: 4,
            src: Operand::Reg(3),
            off: 2,
        },
        mov64(0, Operand::Imm(0)),
        Insn::Exit,
        mov64(1, Operand::Reg(2)),
        mov64(2, Operand::Imm(len)),
    ])
}

/// A program loaded in the kernel (verified and JIT-compiled), ready to be test-run on one
/// packet.
#[derive(Debug)]
pub struct KernelRun {
    what: String,
    loaded: Loaded,
    packet: Vec<u8>,
    prolog_insns: u64,
}

/// A loaded program and the maps it refers to (which must live as long as it runs).
#[derive(Debug)]
struct Loaded {
    prog: LoadedProgram,
    _maps: Vec<MapFd>,
}

impl Loaded {
    fn fd(&self) -> &ProgFd {
        &self.prog.fd
    }
}

/// Creates the maps `p` refers to exactly as hw-tests' verdict table did (so a program the
/// table records as accepted loads here too; maps it does not use are not created), and
/// returns them with the program's instructions pointing at them.
fn create_maps(object: &str, p: &Program) -> Result<(Vec<MapFd>, Vec<RawInsn>), KernelError> {
    let refused = |reason: String| KernelError::Refused {
        what: p.name.clone(),
        reason,
    };
    let mut fds = vec![-1; p.maps.len()];
    let mut maps = Vec::new();
    for i in referenced_maps(p) {
        let def = p
            .maps
            .get(i)
            .ok_or_else(|| refused(format!("lddw refers to undeclared map #{i}")))?;
        let map = create_map(object, def).map_err(|e| refused(format!("map {}: {e}", def.name)))?;
        fds[i] = map.raw();
        maps.push(map);
    }
    let raw = patch_map_fds(p, &fds).map_err(|e| refused(e.to_string()))?;
    Ok((maps, raw))
}

impl KernelRun {
    /// Instructions the kernel executes per run before the workload's own (the `mem`
    /// prolog), so per-instruction figures divide by what the kernel really ran.
    pub fn prolog_insns(&self) -> u64 {
        self.prolog_insns
    }

    /// A `mem`-convention workload as XDP: [`mem_prolog`] then the body, run on the input
    /// (padded to the 14 bytes the XDP test runner wants).
    pub fn mem(w: &Workload) -> Result<KernelRun, KernelError> {
        available()?;
        let what = w.name.to_string();
        let mut code = mem_prolog(w.input.len());
        code.extend(
            vm_core::asm::assemble(&w.asm).map_err(|e| KernelError::Refused {
                what: what.clone(),
                reason: e.to_string(),
            })?,
        );
        let xdp = vm_core::ProgType::Xdp.kernel_number();
        let loaded = load_program(&code, xdp, &LoadOptions::default()).map_err(|e| {
            KernelError::Refused {
                what: what.clone(),
                reason: e.to_string(),
            }
        })?;
        let mut packet = w.input.clone();
        packet.resize(packet.len().max(hw_tests::conformance::MIN_XDP_PACKET), 0);
        Ok(KernelRun {
            what,
            loaded: Loaded {
                prog: loaded,
                _maps: Vec::new(),
            },
            packet,
            prolog_insns: if w.input.is_empty() {
                0
            } else {
                MEM_PROLOG_EXECUTED
            },
        })
    }

    /// A packet program of corpus object `object` (`""` for none) with its maps, loaded as
    /// `p.prog_type`, run on `packet` with the kernel's own context (`xdp_md` built by the
    /// test runner).
    pub fn program(object: &str, p: &Program, packet: &[u8]) -> Result<KernelRun, KernelError> {
        available()?;
        let (maps, raw) = create_maps(object, p)?;
        let prog = load_program(&raw, p.prog_type.kernel_number(), &LoadOptions::default())
            .map_err(|e| KernelError::Refused {
                what: p.name.clone(),
                reason: e.to_string(),
            })?;
        Ok(KernelRun {
            what: p.name.clone(),
            loaded: Loaded { prog, _maps: maps },
            packet: packet.to_vec(),
            prolog_insns: 0,
        })
    }

    /// One run: the program's return value (low 32 bits of r0).
    pub fn retval(&self) -> Result<u32, KernelError> {
        self.run(1).map(|(retval, _)| retval)
    }

    fn run(&self, repeat: u32) -> Result<(u32, u32), KernelError> {
        let out = test_run(self.loaded.fd(), &self.packet, None, repeat).map_err(|e| {
            KernelError::Run {
                what: self.what.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok((out.retval, out.duration_ns))
    }

    /// The kernel's mean ns per run over `repeat` runs (plus half a nanosecond, see the
    /// module documentation).
    pub fn mean_ns(&self, repeat: u32) -> Result<f64, KernelError> {
        self.run(repeat.max(1)).map(|(_, ns)| f64::from(ns) + 0.5)
    }

    /// `budget.samples` test runs, each with a `repeat` sized to take about `budget.batch`;
    /// the median of the kernel-reported means.
    pub fn measure(&self, budget: Budget) -> Result<Measurement, KernelError> {
        let probe = self.mean_ns(10_000)?;
        let repeat = (budget.batch.as_secs_f64() * 1e9 / probe).clamp(1.0, f64::from(u32::MAX));
        let repeat = repeat as u32;
        crate::timing::collect(budget.samples, u64::from(repeat), || self.mean_ns(repeat)).and_then(
            |m| {
                m.ok_or_else(|| KernelError::NotReported {
                    what: self.what.clone(),
                    missing: "duration",
                })
            },
        )
    }
}

/// The kernel's verifier timed on one program: its maps are created once, then the program
/// is loaded again for every sample.
#[derive(Debug)]
pub struct KernelVerifier {
    what: String,
    /// Keeps the maps alive.
    _maps: Vec<MapFd>,
    raw: Vec<RawInsn>,
    prog_type: u32,
    opts: LoadOptions,
}

/// What the kernel's verifier took for one program (medians over the samples).
#[derive(Debug, Clone, PartialEq)]
pub struct KernelVerification {
    /// The kernel's own `verification time` (µs, +0.5 µs, see the module documentation).
    pub verify_us: Measurement,
    /// Wall time of the whole `BPF_PROG_LOAD` syscall (verifier, JIT, syscall), µs.
    pub load_wall_us: Measurement,
    /// `processed N insns`.
    pub processed: Option<u64>,
}

impl KernelVerifier {
    /// Creates the maps `p` (of corpus object `object`) refers to; the program itself is
    /// loaded by every sample.
    pub fn new(object: &str, p: &Program) -> Result<KernelVerifier, KernelError> {
        available()?;
        let (maps, raw) = create_maps(object, p)?;
        Ok(KernelVerifier {
            what: p.name.clone(),
            _maps: maps,
            raw,
            prog_type: p.prog_type.kernel_number(),
            opts: LoadOptions {
                log_level: log_level::STATS,
                name: p.name.clone(),
                ..LoadOptions::default()
            },
        })
    }

    /// One load: (kernel verification µs + 0.5, wall µs of the syscall, processed insns).
    pub fn load_once(&self) -> Result<(f64, f64, Option<u64>), KernelError> {
        let t = Instant::now();
        let loaded = load_program(&self.raw, self.prog_type, &self.opts);
        let wall = t.elapsed().as_secs_f64() * 1e6;
        let loaded = loaded.map_err(|e| KernelError::Refused {
            what: self.what.clone(),
            reason: e.to_string(),
        })?;
        let us = loaded
            .stats
            .verification_time_us
            .ok_or_else(|| KernelError::NotReported {
                what: self.what.clone(),
                missing: "verification time",
            })?;
        Ok((us as f64 + 0.5, wall, loaded.stats.insns_processed))
    }

    /// `budget.samples` samples, each the mean over as many loads as fit `budget.batch`
    /// (at least one).
    pub fn measure(&self, budget: Budget) -> Result<KernelVerification, KernelError> {
        // The first load is a warm-up (and sizes the batches).
        let (_, probe_wall, processed) = self.load_once()?;
        let per_batch = ((budget.batch.as_secs_f64() * 1e6 / probe_wall).floor() as u64).max(1);
        let (mut verify, mut wall) = (Vec::new(), Vec::new());
        for _ in 0..budget.samples.max(1) {
            let (mut v, mut w) = (0.0, 0.0);
            for _ in 0..per_batch {
                let (vu, wu, _) = self.load_once()?;
                v += vu;
                w += wu;
            }
            verify.push(v / per_batch as f64);
            wall.push(w / per_batch as f64);
        }
        let missing = || KernelError::NotReported {
            what: self.what.clone(),
            missing: "verification time",
        };
        Ok(KernelVerification {
            verify_us: Measurement::from_samples(verify, per_batch).ok_or_else(missing)?,
            load_wall_us: Measurement::from_samples(wall, per_batch).ok_or_else(missing)?,
            processed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prolog_proves_the_length_and_sets_r1_r2() {
        let p = vm_core::isa::decode_program(&mem_prolog(42)).expect("decodes");
        assert_eq!(p.len(), 9);
        assert_eq!(p[7], mov64(1, Operand::Reg(2)));
        assert_eq!(p[8], mov64(2, Operand::Imm(42)));
        assert_eq!(p[4].jump_target(4), Some(7));
        assert!(mem_prolog(0).is_empty());
        // Executed on a long-enough packet: the five checks, then the two moves after the
        // skipped failure exit.
        assert_eq!(MEM_PROLOG_EXECUTED as usize, p.len() - 2);
    }

    fn ours(w: &Workload) -> u64 {
        let mut vm = vm_core::interp::Vm::new(&w.program(), Default::default()).expect("loads");
        vm.run(&w.input).expect("runs").retval
    }

    #[test]
    fn mem_workloads_run_in_the_kernel_with_our_result() {
        if !hw_tests::kernel::kernel_or_skip("benches::kernel mem workloads") {
            return;
        }
        let reads = Workload {
            name: "reads",
            asm: "ldxb %r0, [%r1+3]\nadd %r0, %r2\nexit\n".into(),
            input: vec![1, 2, 3, 40],
        };
        for w in [crate::sum_loop(100), reads] {
            let k = KernelRun::mem(&w).expect("the kernel loads it");
            let want = ours(&w) & 0xffff_ffff;
            assert_eq!(u64::from(k.retval().expect("runs")), want, "{}", w.name);
            assert!(k.mean_ns(1000).expect("runs") >= 0.5);
        }
    }

    #[test]
    fn the_kernel_verifies_the_small_corpus_program() {
        if !hw_tests::kernel::kernel_or_skip("benches::kernel verification") {
            return;
        }
        let (set, _) = crate::corpus::verify_set().expect("corpus readable");
        let (_, p) = &set[0];
        let k = KernelVerifier::new(&p.object, &p.program).expect("maps created");
        let (verify_us, wall_us, processed) = k.load_once().expect("accepted");
        assert!(verify_us >= 0.5 && wall_us > 0.0, "{verify_us} {wall_us}");
        assert_eq!(processed, p.kernel_processed);
    }
}
