//! The vm-core reference interpreter as an [`Engine`], so it can be compared with the kernel.

use vm_core::Program;
use vm_core::interp::{RunError, Vm, VmConfig};

use super::{Engine, EngineError, EngineResult, MapSnapshot, TestInput};

/// A vm-core program ready to run in the interpreter.
///
/// Map state follows [`KernelEngine`](super::KernelEngine): by default every run starts from
/// the maps' declared initial state (a fresh [`Vm`], so clocks and random numbers restart as
/// well); [`InterpEngine::keep_map_state`] lets state accumulate across runs instead. The
/// snapshot lists the same maps the kernel engine can read back (array and hash kinds), with
/// entries sorted by key bytes as the kernel engine sorts them.
#[derive(Debug)]
pub struct InterpEngine {
    name: String,
    program: Program,
    config: VmConfig,
    vm: Vm,
    keep_maps: bool,
    /// Whether `vm` has run since it was created (a fresh Vm needs no reset).
    used: bool,
}

impl InterpEngine {
    /// Compiles `p`. A program the interpreter cannot model (unimplemented helper, program
    /// type without a context) is [`EngineError::Refused`].
    pub fn new(p: &Program, config: VmConfig) -> Result<Self, EngineError> {
        let vm = Vm::new(p, config.clone()).map_err(|e| EngineError::Refused(e.to_string()))?;
        Ok(InterpEngine {
            name: "interp".to_string(),
            program: p.clone(),
            config,
            vm,
            keep_maps: false,
            used: false,
        })
    }

    /// Do not reset maps before each run (state accumulates across runs, as in production).
    pub fn keep_map_state(mut self, keep: bool) -> Self {
        self.keep_maps = keep;
        self
    }

    /// The interpreter instance (maps, configuration).
    pub fn vm(&self) -> &Vm {
        &self.vm
    }

    fn snapshot(&self) -> Option<Vec<MapSnapshot>> {
        MapSnapshot::of_map_set(self.vm.maps(), &self.program.maps)
    }
}

impl Engine for InterpEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, input: &TestInput) -> Result<EngineResult, EngineError> {
        let _span = tracing::debug_span!("interp_engine.run", len = input.packet.len()).entered();
        if input.ctx.is_some() {
            return Err(EngineError::Refused(
                "the interpreter engine takes no context input".into(),
            ));
        }
        if self.used && !self.keep_maps {
            self.vm = Vm::new(&self.program, self.config.clone())
                .map_err(|e| EngineError::Fault(e.to_string()))?;
        }
        self.used = true;
        let out = self.vm.run(&input.packet).map_err(|e| match e {
            RunError::BadInput(b) => EngineError::Refused(b.to_string()),
            other => EngineError::Fault(other.to_string()),
        })?;
        Ok(EngineResult {
            retval: out.retval,
            retval_bits: 64,
            packet: out.packet,
            maps: self.snapshot(),
        })
    }
}

#[cfg(test)]
mod tests {
    use vm_core::isa::{AluOp, Insn, LdImm64, Operand, Size, Width};
    use vm_core::{MapDef, MapType, ProgType};

    use super::*;

    /// `r1 = &counter[0]; r2 = 1; lock *(u64 *)(r1 + 0) += r2; r0 = 7; exit`.
    fn counter_program() -> Program {
        Program {
            name: "counter".into(),
            section: None,
            prog_type: ProgType::Xdp,
            insns: vec![
                Insn::LdImm64 {
                    dst: 1,
                    value: LdImm64::MapValue { fd: 0, off: 0 },
                },
                Insn::LdImm64Tail,
                Insn::Alu {
                    op: AluOp::Mov,
                    width: Width::W64,
                    dst: 2,
                    src: Operand::Imm(1),
                },
                Insn::Atomic {
                    op: vm_core::isa::AtomicOp::Add,
                    size: Size::DW,
                    fetch: false,
                    dst: 1,
                    src: 2,
                    off: 0,
                },
                Insn::Alu {
                    op: AluOp::Mov,
                    width: Width::W64,
                    dst: 0,
                    src: Operand::Imm(7),
                },
                Insn::Exit,
            ],
            maps: vec![MapDef {
                name: "counter".into(),
                map_type: MapType::Array,
                key_size: 4,
                value_size: 8,
                max_entries: 1,
                flags: 0,
                initial_value: None,
            }],
        }
    }

    fn count(r: &EngineResult) -> Vec<u8> {
        r.maps
            .as_ref()
            .map_or(Vec::new(), |m| m[0].entries[0].1.clone())
    }

    #[test]
    fn maps_reset_between_runs_unless_kept() {
        let p = counter_program();
        let mut fresh = InterpEngine::new(&p, VmConfig::default()).expect("compiles");
        let input = TestInput::packet(vec![0u8; 64]);
        for _ in 0..3 {
            let r = fresh.run(&input).expect("runs");
            assert_eq!(r.retval, 7);
            assert_eq!(r.retval_bits, 64);
            assert_eq!(count(&r), 1u64.to_le_bytes());
        }
        let mut kept = InterpEngine::new(&p, VmConfig::default())
            .expect("compiles")
            .keep_map_state(true);
        let mut last = Vec::new();
        for _ in 0..3 {
            last = count(&kept.run(&input).expect("runs"));
        }
        assert_eq!(last, 3u64.to_le_bytes());
    }

    #[test]
    fn short_packet_is_refused_not_a_fault() {
        let p = counter_program();
        let mut e = InterpEngine::new(&p, VmConfig::default()).expect("compiles");
        let r = e.run(&TestInput::packet(vec![0u8; 4]));
        assert!(matches!(r, Err(EngineError::Refused(_))), "{r:?}");
    }
}
