//! The host kernel (verifier + JIT + `BPF_PROG_TEST_RUN`) as an [`Engine`].

use vm_core::Program;

use super::{Engine, EngineError, EngineResult, TestInput};
use crate::kernel::{LoadOptions, LoadedVmProgram, VmLoadError, load_vm_program, test_run};

/// A vm-core program loaded in the kernel. Each run starts from the maps' declared initial
/// state (unless [`KernelEngine::keep_map_state`] is set) and reports the maps afterwards.
///
/// The program sees the real context (`xdp_md`, `__sk_buff`). For `ProgType::Mem` programs
/// (r1 = buffer, r2 = length) use
/// [`ConformanceKernelEngine`](crate::conformance::ConformanceKernelEngine) instead.
#[derive(Debug)]
pub struct KernelEngine {
    name: String,
    loaded: LoadedVmProgram,
    keep_maps: bool,
}

impl KernelEngine {
    /// Loads `p`. A verifier rejection is [`EngineError::Refused`] carrying the errno name and
    /// the first error line; failing to create maps is a [`EngineError::Fault`].
    pub fn load(p: &Program, opts: &LoadOptions) -> Result<Self, EngineError> {
        match load_vm_program(p, opts) {
            Ok(loaded) => Ok(Self::from_loaded(loaded)),
            Err(VmLoadError::Load(e)) => Err(EngineError::Refused(e.to_string())),
            Err(e) => Err(EngineError::Fault(e.to_string())),
        }
    }

    /// Wraps an already loaded program.
    pub fn from_loaded(loaded: LoadedVmProgram) -> Self {
        KernelEngine {
            name: "kernel".to_string(),
            loaded,
            keep_maps: false,
        }
    }

    /// Do not reset maps before each run (state accumulates across runs, as in production).
    pub fn keep_map_state(mut self, keep: bool) -> Self {
        self.keep_maps = keep;
        self
    }

    /// The loaded program and its maps.
    pub fn loaded(&self) -> &LoadedVmProgram {
        &self.loaded
    }
}

impl Engine for KernelEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, input: &TestInput) -> Result<EngineResult, EngineError> {
        if !self.keep_maps {
            self.loaded
                .reset_maps()
                .map_err(|e| EngineError::Fault(e.to_string()))?;
        }
        let out = test_run(&self.loaded.prog.fd, &input.packet, input.ctx.as_deref(), 1).map_err(
            |e| match e.errno {
                // The test runner validates the input (XDP needs >= 14 bytes, ctx fields
                // must be ones it accepts, ...): a refusal of the input, not a wrong result.
                libc::EINVAL | libc::E2BIG | libc::EOPNOTSUPP | 524 => {
                    EngineError::Refused(e.to_string())
                }
                _ => EngineError::Fault(e.to_string()),
            },
        )?;
        let maps = if self.loaded.maps.is_empty() {
            None
        } else {
            Some(
                self.loaded
                    .snapshot_maps()
                    .map_err(|e| EngineError::Fault(e.to_string()))?,
            )
        };
        Ok(EngineResult {
            retval: u64::from(out.retval),
            retval_bits: 32,
            packet: out.data_out,
            maps,
        })
    }
}
