//! Multi-core SmartNIC simulator: runs a packet program on a simulated NFP-style NIC.
//!
//! ```text
//! frames (pcap | --traffic) ─► RSS (Toeplitz) ─► lanes (ME threads) ─► per-ME timing model
//!      streamed                 per-flow order     bounded queues        (threads interleave on
//!                                                                         memory waits)
//!                         └──── host threads simulate disjoint sets of MEs ────┘
//!                                         ▼
//!                       SimReport (verdicts, queue drops, Mpps, cycles, utilisation), --out pcap
//! ```
//!
//! Modules by concept: [`preset`] (NIC shapes and line rates), [`traffic`] (inputs and
//! `--out`), [`rss`] (flow hashing), [`engine`] (what runs a packet on an ME thread, and the
//! interpreter-backed stand-in), [`lanes`] (one ME's discrete-event model), [`timing`]
//! (throughput and percentile arithmetic), [`merge`] (map replicas to final maps), [`run`]
//! (the driver), [`stats`] (the report).
//!
//! # Use
//!
//! ```no_run
//! # fn main() -> Result<(), nic_sim::SimError> {
//! use nic_sim::{FrameSource, InterpEngine, NicPreset, SimConfig, StandInCost, simulate};
//! let program = vm_core::demo::udp_filter();
//! let mut config = SimConfig::new(NicPreset::by_name("agilio-cx")?.with_cores(20));
//! config.keep_output = true;
//! let mut out = nic_sim::traffic::create_capture("out.pcap".as_ref())?;
//! let engines = InterpEngine::factory(&program, Default::default(), StandInCost::default());
//! let result = simulate(
//!     FrameSource::traffic("packets=100000,flows=1000,zipf=1.1,seed=7")?,
//!     &config,
//!     &engines,
//!     None,
//!     |_index, bytes| out.write(bytes),
//! )?;
//! out.finish()?;
//! println!("{}", result.report.modeled_mpps);
//! # Ok(()) }
//! ```
//!
//! # Plugging in the ME executor
//!
//! Implement [`PacketEngine`] for a struct holding one ME: `start(thread, frame)` loads the
//! frame into that thread's packet buffer, `resume(thread)` calls the executor's
//! `run_until_event` and maps `Event::Swap { busy_cycles, wait_cycles, .. }` to
//! [`Step::Swap`] and `Event::Done { retval, busy_cycles, .. }` to [`Step::Done`] (a runtime
//! abort to [`Step::Fault`]), `output` copies the packet back, `maps` exposes the ME's map
//! replica. Pass `|me, threads| MyEngine::new(..)` as the factory and an
//! [`InterpEngine`]-based reference factory to get `mismatches`.

pub mod error;
pub mod preset;
pub mod traffic;

pub use error::SimError;
mod collector;
pub mod engine;
pub mod lanes;
mod me_set;
pub mod merge;
pub mod nfp_engine;
pub mod rss;
pub mod run;
mod share;
pub mod stats;
pub mod timing;

pub use engine::{InterpEngine, PacketEngine, Passed, Segment, StandInCost, Step};
pub use nfp_engine::{NfpEngine, NfpProgram};
pub use preset::{LineRate, NicPreset};
pub use run::{EngineFactory, InsnProfile, SimConfig, SimOutput, simulate};
pub use stats::{SimReport, Verdict};
pub use traffic::{FrameSource, TrafficSpec};
