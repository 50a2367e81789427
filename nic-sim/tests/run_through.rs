//! Passing through memory waits (`PacketEngine::resume_through`), and replaying the segments
//! of packets run to their end when they start (`PacketEngine::run_to_end`, for programs
//! whose threads commute), change nothing observable:
//! the simulator gives the same report (cycles, latency percentiles, utilisation, verdicts,
//! queue drops), the same output frames, the same final maps, the same latency histogram and
//! the same per-instruction profile as when every swap is stepped through the timing model.
//! Checked on the demo and every offloadable corpus XDP program, on the Agilio CX at its line
//! rate (IMIX traffic, so MEs are often alone and many swaps are passed), a saturated NIC
//! with queue drops, and one with eight threads per ME.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use nfp_backend::NicLimits;
use nic_sim::{
    NfpEngine, NfpProgram, NicPreset, PacketEngine, Passed, SimConfig, SimError, SimOutput,
    SimReport, Step, TrafficSpec, simulate, traffic::Generator,
};
use vm_core::maps::MapSet;

/// The NFP engine with passing either disabled (`step`) or counted.
struct Engine<'a> {
    inner: NfpEngine,
    step: bool,
    passed: &'a AtomicU64,
}

impl PacketEngine for Engine<'_> {
    fn start(&mut self, thread: u32, frame: &[u8]) {
        self.inner.start(thread, frame);
    }
    fn resume(&mut self, thread: u32) -> Step {
        self.inner.resume(thread)
    }
    fn resume_through(&mut self, thread: u32, at: u64, horizon: u64) -> (Step, Passed) {
        if self.step {
            return (self.inner.resume(thread), Passed::default());
        }
        let r = self.inner.resume_through(thread, at, horizon);
        if r.1.busy > 0 {
            self.passed.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
    fn output(&mut self, thread: u32, out: &mut Vec<u8>) {
        self.inner.output(thread, out);
    }
    fn maps(&self) -> Option<&MapSet> {
        self.inner.maps()
    }
    fn enable_profile(&mut self) {
        self.inner.enable_profile();
    }
    fn profile(&self) -> Option<&[nic_sim::InsnProfile]> {
        self.inner.profile()
    }
}

type Outcome = (
    SimReport,
    Vec<(u64, Vec<u8>)>,
    Vec<Vec<(Vec<u8>, Vec<u8>)>>,
    Vec<(u64, u64)>,
    Option<Vec<nic_sim::InsnProfile>>,
);

fn outcome(
    nfp: &NfpProgram,
    frames: &[Vec<u8>],
    nic: &NicPreset,
    step: bool,
    passed: &AtomicU64,
) -> Outcome {
    let factory = |me: u32, threads: u32| -> Result<Engine<'_>, SimError> {
        Ok(Engine {
            inner: nfp.engine(me, threads),
            step,
            passed,
        })
    };
    outcome_of(&factory, frames, nic)
}

/// The plain engine: replaying where the program's threads commute.
fn replayed(nfp: &NfpProgram, frames: &[Vec<u8>], nic: &NicPreset) -> Outcome {
    outcome_of(nfp, frames, nic)
}

fn outcome_of<F: nic_sim::EngineFactory>(
    factory: &F,
    frames: &[Vec<u8>],
    nic: &NicPreset,
) -> Outcome {
    let mut config = SimConfig::new(nic.clone());
    config.host_threads = 2;
    config.keep_output = true;
    config.profile = true;
    let mut kept = Vec::new();
    let out: SimOutput = simulate(
        frames.iter().map(|f| Ok(f.as_slice())),
        &config,
        factory,
        None,
        |i, b| {
            kept.push((i, b.to_vec()));
            Ok(())
        },
    )
    .unwrap();
    let mut r = out.report.clone();
    r.host_packets_per_sec = 0.0;
    let maps = out
        .maps
        .as_ref()
        .map(|m| m.iter().map(|x| x.entries()).collect())
        .unwrap_or_default();
    (r, kept, maps, out.latency_histogram, out.profile)
}

#[test]
fn passing_through_waits_changes_nothing() {
    let demo = vm_core::demo::udp_filter();
    let mut programs = vec![(
        "demo udp_filter".to_string(),
        NfpProgram::compile(&demo, &NicLimits::default()).unwrap(),
    )];
    programs.extend(
        common::offloadable_corpus()
            .into_iter()
            .map(|(name, _, nfp)| (name, nfp)),
    );
    let spec = TrafficSpec::parse(
        "packets=3000,flows=300,size=imix,proto=udp:70,tcp:25,arp:5,dport=7775-7779,zipf=1.1,seed=4",
    )
    .unwrap();
    let generated: Vec<Vec<u8>> = Generator::new(&spec).map(|f| f.unwrap()).collect();
    let nics = [
        ("agilio-cx at its line rate", NicPreset::agilio_cx()),
        (
            "saturated, queue drops",
            NicPreset::by_name("custom:islands=1,mes=2,threads=4,queue=2,rate=100g").unwrap(),
        ),
        (
            "8 threads per ME",
            NicPreset::agilio_cx().with_cores(3).with_threads(8),
        ),
    ];
    let passed = AtomicU64::new(0);
    let mut commuting = Vec::new();
    for (i, (name, nfp)) in programs.iter().enumerate() {
        // The demo on generated traffic, corpus programs on the corpus tests' mixed frames.
        let frames: Vec<Vec<u8>> = if i == 0 {
            generated.clone()
        } else {
            common::mixed_frames(1500, i as u64)
                .map(|f| f.unwrap())
                .collect()
        };
        for (nic_name, nic) in &nics {
            let stepped = outcome(nfp, &frames, nic, true, &passed);
            let through = outcome(nfp, &frames, nic, false, &passed);
            assert_eq!(stepped.0, through.0, "{name} on {nic_name}: report");
            assert_eq!(stepped.1, through.1, "{name} on {nic_name}: output frames");
            assert_eq!(stepped.2, through.2, "{name} on {nic_name}: final maps");
            assert_eq!(stepped.3, through.3, "{name} on {nic_name}: latency");
            assert_eq!(stepped.4, through.4, "{name} on {nic_name}: profile");
            if nfp.engine(0, 1).threads_commute() {
                let replay = replayed(nfp, &frames, nic);
                assert_eq!(stepped.0, replay.0, "{name} on {nic_name}: report (replay)");
                assert_eq!(stepped.1, replay.1, "{name} on {nic_name}: frames (replay)");
                assert_eq!(stepped.2, replay.2, "{name} on {nic_name}: maps (replay)");
                assert_eq!(
                    stepped.3, replay.3,
                    "{name} on {nic_name}: latency (replay)"
                );
                assert_eq!(
                    stepped.4, replay.4,
                    "{name} on {nic_name}: profile (replay)"
                );
                commuting.push(name.clone());
            }
        }
    }
    // The demo and the map-free VLAN programs at least.
    assert!(commuting.len() >= 3 * 3, "replayed: {commuting:?}");
    assert!(
        passed.load(Ordering::Relaxed) > 1000,
        "swaps were passed through: {}",
        passed.load(Ordering::Relaxed)
    );
}

/// `run_to_completion` (the reference checks' and `diff --against sim`'s one-packet run)
/// passes every swap; its totals are the stepped ones.
#[test]
fn run_to_completion_totals_are_the_stepped_ones() {
    let demo = vm_core::demo::udp_filter();
    let nfp = NfpProgram::compile(&demo, &NicLimits::default()).unwrap();
    let passed = AtomicU64::new(0);
    let mut stepped = Engine {
        inner: nfp.engine(0, 1),
        step: true,
        passed: &passed,
    };
    let mut through = nfp.engine(0, 1);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (name, pkt) in vm_core::demo::packets() {
        let want = nic_sim::engine::run_to_completion(&mut stepped, &pkt, &mut a);
        let got = nic_sim::engine::run_to_completion(&mut through, &pkt, &mut b);
        assert_eq!(want, got, "{name}");
        assert_eq!(a, b, "{name}");
    }
}
