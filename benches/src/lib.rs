//! Workloads shared by the criterion benches and the ratio table (`--bin ratios`), so both
//! measure the same things.
//!
//! Interpreter workloads are one program in bpf_conformance assembly plus its input,
//! runnable unchanged by our interpreter (`mem` convention: r1 = buffer, r2 = length) and by
//! the rbpf crate (which leaves r2 at 0, so its copy starts with one extra `mov r2, LEN`; the
//! executed-instruction count of each engine is measured separately). Corpus workloads are
//! chosen in [`corpus`]; the simulation workload is [`sim_program`] on [`sim_frames`].
//!
//! Modules: [`timing`] (the table's own harness), [`affinity`] (which CPUs a measurement runs
//! on), [`kernel`] (the kernel's JIT and verifier as peers), [`corpus`] (which corpus
//! programs), [`table`] (the ratio table and its header).

pub mod affinity;
pub mod corpus;
pub mod kernel;
pub mod table;
pub mod timing;

use vm_core::{ProgType, Program, RawInsn, isa};

/// A benchmark program and its input.
pub struct Workload {
    /// Short name used in bench ids.
    pub name: &'static str,
    /// Assembly source.
    pub asm: String,
    /// Input buffer.
    pub input: Vec<u8>,
}

impl Workload {
    /// Raw slots of the program.
    pub fn raw(&self) -> Vec<RawInsn> {
        vm_core::asm::assemble(&self.asm).expect("bench workload assembles")
    }

    /// Our program (type `mem`).
    pub fn program(&self) -> Program {
        let raw = self.raw();
        Program {
            name: self.name.into(),
            section: None,
            prog_type: ProgType::Mem,
            insns: isa::decode_program(&raw).expect("bench workload decodes"),
            maps: Vec::new(),
        }
    }

    /// Bytes for rbpf: `mov r2, LEN` followed by the program.
    pub fn rbpf_bytes(&self) -> Vec<u8> {
        let mut raw = vec![RawInsn::new(0xb7, 2, 0, 0, self.input.len() as i32)];
        raw.extend(self.raw());
        RawInsn::slice_to_bytes(&raw)
    }
}

/// `r0 += r1; r1 += 1; if r1 < n goto loop`: pure dispatch speed.
pub fn sum_loop(n: u32) -> Workload {
    Workload {
        name: "sum_loop",
        asm: format!(
            "mov %r0, 0\nmov %r1, 0\nloop:\nadd %r0, %r1\nadd %r1, 1\njlt %r1, {n}, loop\nexit\n"
        ),
        input: Vec::new(),
    }
}

/// Ethernet / IPv4 / UDP parser that drops UDP to one port (the demo's parser without its
/// map: [`vm_core::demo::UDP_PARSER_MEM_ASM`]).
pub fn udp_parser() -> Workload {
    Workload {
        name: "udp_parser",
        asm: vm_core::demo::UDP_PARSER_MEM_ASM.to_string(),
        input: blocked_packet(),
    }
}

/// The demo XDP program (the same parser over `xdp_md`, plus a verdict counter in an array
/// map: a helper call and an atomic add per run) and the packet it drops.
pub fn udp_parser_xdp() -> (Program, Vec<u8>) {
    (vm_core::demo::udp_filter(), blocked_packet())
}

/// The demo's IPv4/UDP packet to the blocked port (the parsers' longest path).
pub fn blocked_packet() -> Vec<u8> {
    vm_core::demo::packets()
        .into_iter()
        .find(|(name, _)| name.contains("blocked"))
        .map(|(_, p)| p)
        .expect("the demo carries a packet to the blocked port")
}

/// A program as the bytes a loader hands to the decoder (`lddw` map references keep their
/// map index in the fd field).
pub fn program_bytes(p: &Program) -> Vec<u8> {
    RawInsn::slice_to_bytes(&isa::encode_program(&p.insns))
}

/// The decode stage: raw bytes to typed instructions (what every tool does first).
pub fn decode(bytes: &[u8]) -> Result<Vec<isa::Insn>, String> {
    let raw = RawInsn::slice_from_bytes(bytes).map_err(|e| e.to_string())?;
    isa::decode_program(&raw).map_err(|e| e.to_string())
}

/// Frames per simulation run: enough that the per-run setup (spawning host threads, building
/// ME replicas) is a small part of the time.
pub const SIM_FRAMES: u64 = 200_000;

/// The simulated traffic: `n` 64-byte UDP frames over 10,000 flows, a fifth of them to the
/// port the demo filter drops (the spec the nic-sim bench uses).
pub fn sim_frames(n: u64) -> Result<Vec<Vec<u8>>, nic_sim::SimError> {
    let spec = nic_sim::TrafficSpec::parse(&format!(
        "packets={n},flows=10000,size=64,dport=7770-7790,seed=2"
    ))?;
    nic_sim::traffic::Generator::new(&spec).collect()
}

/// The simulation workload: the demo UDP filter (the UDP-parser-sized program) compiled for
/// the default NIC.
pub fn sim_program() -> Result<nic_sim::NfpProgram, String> {
    nic_sim::NfpProgram::compile(
        &vm_core::demo::udp_filter(),
        &nfp_backend::NicLimits::default(),
    )
    .map_err(|e| e.to_string())
}

/// ME instructions one simulation of `frames` executes (over every ME and thread), counted
/// by a profiled run: the simulated instruction rate is this over the time of an ordinary
/// (unprofiled) run, which executes exactly the same instructions.
pub fn sim_me_insns(
    frames: &[Vec<u8>],
    program: &nic_sim::NfpProgram,
) -> Result<u64, nic_sim::SimError> {
    let out = run_sim(frames, program, 1, true)?;
    Ok(out
        .profile
        .map_or(0, |p| p.iter().map(|x| x.executions).sum()))
}

/// One simulation of `frames` on an Agilio CX with `host_threads` host threads, reference
/// interpreter comparison off. Returns the packets the report counted.
pub fn simulate(
    frames: &[Vec<u8>],
    program: &nic_sim::NfpProgram,
    host_threads: usize,
) -> Result<u64, nic_sim::SimError> {
    Ok(run_sim(frames, program, host_threads, false)?
        .report
        .packets)
}

/// The benches' simulation: Agilio CX, no reference check, no output.
fn run_sim(
    frames: &[Vec<u8>],
    program: &nic_sim::NfpProgram,
    host_threads: usize,
    profile: bool,
) -> Result<nic_sim::SimOutput, nic_sim::SimError> {
    let mut config = nic_sim::SimConfig::new(nic_sim::NicPreset::agilio_cx());
    config.host_threads = host_threads;
    config.profile = profile;
    nic_sim::simulate(
        frames.iter().map(|f| Ok(f.as_slice())),
        &config,
        program,
        None,
        |_, _| Ok(()),
    )
}
