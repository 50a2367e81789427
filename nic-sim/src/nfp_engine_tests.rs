//! Tests of the NFP engine (`nfp_engine`): against the interpreter, `start_to_end` against
//! `start` then `run_to_end`, pending load failures, profiles.

use super::*;
use crate::engine::run_to_completion;
use vm_core::demo;
use vm_core::interp::Vm;

#[test]
fn demo_packets_match_the_interpreter_on_every_thread() {
    let prog = demo::udp_filter();
    let nfp = NfpProgram::compile(&prog, &NicLimits::default()).expect("offloadable");
    let mut e = nfp.engine(3, 8);
    let mut out = Vec::new();
    for t in 0..8 {
        for (name, pkt) in demo::packets() {
            let want = Vm::new(&prog, VmConfig::default())
                .expect("vm")
                .run(&pkt)
                .expect("runs");
            e.start(t, &pkt);
            let mut busy = 0;
            let last = loop {
                match e.resume(t) {
                    Step::Swap { busy: b, .. } => busy += b,
                    last => break last,
                }
            };
            match last {
                Step::Done {
                    retval, busy: b, ..
                } => {
                    assert_eq!(retval, want.retval, "{name} thread {t}");
                    assert!(busy + b > 0);
                }
                other => panic!("{name}: {other:?}"),
            }
            e.output(t, &mut out);
            assert_eq!(out, want.packet, "{name} thread {t}");
        }
    }
    // A frame too long for the packet buffer aborts, it does not panic.
    let (last, _, _) = run_to_completion(&mut e, &[0u8; 9000], &mut out);
    assert!(matches!(last, Step::Fault { .. }), "{last:?}");
}

/// A load failure `start` leaves pending still faults the thread's next resume while
/// other threads start and run to their end (`plain` off then), and `plain` comes back
/// once no failure is pending: each end the same as on an engine that never had one.
#[test]
fn pending_load_failures_keep_and_clear() {
    let prog = demo::udp_filter();
    let nfp = NfpProgram::compile(&prog, &NicLimits::default()).expect("offloadable");
    let (mut e, mut clean) = (nfp.engine(0, 4), nfp.engine(0, 4));
    let (long, (_, good)) = (vec![0u8; 9000], demo::packets().swap_remove(0));
    let (mut segs, mut want_segs) = (Vec::new(), Vec::new());
    let mut same = |e: &mut NfpEngine, t: u32| {
        let got = e.start_to_end_packed(t, &good, &mut segs);
        let want = clean.start_to_end_packed(t, &good, &mut want_segs);
        assert_eq!((got, &segs), (want, &want_segs), "thread {t}");
    };
    assert_eq!(e.plain, e.threads.len());
    e.start(0, &long);
    assert_eq!(e.plain, 0, "a failure pending");
    same(&mut e, 1);
    assert_eq!(e.plain, 0, "thread 0's failure still pending");
    assert!(matches!(e.resume(0), Step::Fault { .. }));
    same(&mut e, 2);
    assert_eq!(e.plain, e.threads.len(), "nothing pending");
    e.start(3, &long);
    same(&mut e, 3);
    assert_eq!(
        e.plain,
        e.threads.len(),
        "a start_to_end on the thread replaces its pending failure"
    );
    same(&mut e, 0);
}

/// A program that draws two random numbers (so the per-packet streams matter) and
/// writes them into the packet, whose verdict is one of them.
fn random_writer() -> Program {
    let src = "
        mov %r6, %r1
        call 7
        mov %r7, %r0
        call 7
        ldxw %r2, [%r6+0]
        ldxw %r3, [%r6+4]
        mov %r4, %r2
        add %r4, 8
        jgt %r4, %r3, out
        stxw [%r2+0], %r7
        stxw [%r2+4], %r0
    out:
        mov %r0, %r7
        and %r0, 3
        exit
    ";
    let raw = vm_core::asm::assemble(src).expect("assembles");
    Program {
        name: "random_writer".into(),
        section: Some("xdp".into()),
        prog_type: vm_core::ProgType::Xdp,
        insns: vm_core::isa::decode_program(&raw).expect("decodes"),
        maps: vec![],
    }
}

/// `start_to_end` is `start` then `run_to_end`: the same steps, segments, packets and
/// maps, frame after frame on every thread (runts and frames too long to load included),
/// with and without random draws (whose seeding `start_to_end` and `start` both skip for
/// programs that cannot draw).
#[test]
fn start_to_end_is_start_then_run_to_end() {
    for (prog, random) in [(demo::udp_filter(), false), (random_writer(), true)] {
        let nfp = NfpProgram::compile(&prog, &NicLimits::default()).expect("offloadable");
        assert_eq!(nfp.code.draws_random(), random);
        let (mut a, mut b) = (nfp.engine(1, 6), nfp.engine(1, 6));
        // `start_to_end_packed`: the same run, its last step reduced to a `PacketEnd`.
        let mut c = nfp.engine(1, 6);
        let mut frames: Vec<Vec<u8>> = demo::packets().into_iter().map(|(_, p)| p).collect();
        frames.extend([vec![0u8; 9000], vec![1u8; 10], vec![2u8; 14]]);
        let (mut sa, mut sb, mut oa, mut ob) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut sc, mut oc) = (Vec::new(), Vec::new());
        for (i, f) in frames.iter().cycle().take(5 * frames.len()).enumerate() {
            let t = (i % 7) as u32; // 7 wraps to thread 1 of 6
            a.start(t, f);
            let (la, lb) = (a.run_to_end(t, &mut sa), b.start_to_end(t, f, &mut sb));
            assert_eq!((&la, &sa), (&lb, &sb), "frame {i}");
            let lc = c.start_to_end_packed(t, f, &mut sc);
            assert_eq!((lc, &sc), (PacketEnd::of(&lb), &sb), "frame {i}");
            if matches!(la, Step::Done { .. }) {
                a.output(t, &mut oa);
                b.output(t, &mut ob);
                c.output(t, &mut oc);
                assert_eq!(oa, ob, "frame {i}");
                assert_eq!(oa, oc, "frame {i}");
            }
        }
        let entries = |e: &NfpEngine| e.maps.iter().map(|m| m.entries()).collect::<Vec<_>>();
        assert_eq!(entries(&a), entries(&b));
        assert_eq!(entries(&a), entries(&c));
        assert!(sa.len() > 10, "{sa:?}");
    }
}

/// The profile is opt-in, changes no result, sums to the executed instructions and the
/// busy cycles, and does not depend on the host thread count.
#[test]
fn profile_counts_every_instruction_and_cycle() {
    use crate::preset::{LineRate, NicPreset};
    use crate::run::{SimConfig, simulate};
    use crate::traffic::{Generator, TrafficSpec};
    let prog = demo::udp_filter();
    let nfp = NfpProgram::compile(&prog, &NicLimits::default()).expect("offloadable");
    let spec = TrafficSpec::parse("packets=3000,flows=300,dport=7775-7779,runts=0.01,seed=3")
        .expect("spec");
    let mut nic = NicPreset::custom(2, 3, 4, 800_000_000, LineRate::G10);
    nic.queue_depth = 100_000; // no queue drops: every frame runs
    let go = |hosts: usize, profile: bool| {
        let mut config = SimConfig::new(nic.clone());
        config.host_threads = hosts;
        config.profile = profile;
        simulate(Generator::new(&spec), &config, &nfp, None, |_, _| Ok(())).expect("runs")
    };
    let plain = go(1, false);
    assert!(plain.profile.is_none());
    let one = go(1, true);
    let two = go(2, true);
    let norm = |o: &crate::run::SimOutput| {
        let mut r = o.report.clone();
        r.host_packets_per_sec = 0.0;
        r.host_threads = 0;
        r
    };
    assert_eq!(norm(&plain), norm(&one), "profiling changes no result");
    let p = one.profile.clone().expect("profile");
    assert_eq!(
        Some(p.clone()),
        two.profile,
        "same profile on 2 host threads"
    );
    assert_eq!(p.len(), nfp.code().len());

    // Executions and cycles add up to what the engine reports per packet.
    let (mut insns, mut busy, mut packets) = (0u64, 0u64, 0u64);
    let mut e = nfp.engine(0, 1);
    let mut out = Vec::new();
    for f in Generator::new(&spec) {
        let f = f.expect("frame");
        if crate::traffic::is_runt(&f) {
            continue;
        }
        let (_, b, _) = run_to_completion(&mut e, &f, &mut out);
        insns += e.insns(0);
        busy += b;
        packets += 1;
    }
    assert_eq!(p.iter().map(|x| x.executions).sum::<u64>(), insns);
    assert_eq!(p.iter().map(|x| x.cycles).sum::<u64>(), busy);
    assert!(p[0].executions == packets, "every packet runs address 0");

    // The latency histogram holds every processed packet and agrees with the report.
    let h = &one.latency_histogram;
    let n: u64 = h.iter().map(|(_, c)| c).sum();
    let r = &one.report;
    assert_eq!(r.queue_drops, 0);
    assert_eq!(n, r.packets - r.verdicts.runt);
    assert!(h.windows(2).all(|w| w[0].0 < w[1].0));
    let mut seen = 0;
    let p50 = h
        .iter()
        .find(|(_, c)| {
            seen += c;
            2 * seen >= n
        })
        .map(|(v, _)| *v);
    assert_eq!(p50, Some(r.latency_cycles.p50));
}

/// Latencies set after the budget recompile the native code and derive the fused budget
/// again (it points into the code): the engine's fused start runs the new code, `start`
/// then `run_to_end` agree with it, and the waits are the new table's.
#[test]
fn latencies_set_after_the_budget_reach_the_fused_start() {
    let prog = demo::udp_filter();
    let mem = crate::preset::MemLatency {
        lmem: 1,
        cls: 21,
        ctm: 97,
        imem: 151,
        emem: 777,
    };
    let base = NfpProgram::compile(&prog, &NicLimits::default()).expect("offloadable");
    let nfp = base.clone().with_budget(5000).with_mem_latency(&mem);
    assert!(!Arc::ptr_eq(&nfp.code, &base.code), "recompiled");
    let (mut a, mut b, mut old) = (nfp.engine(0, 4), nfp.engine(0, 4), base.engine(0, 4));
    let (mut sa, mut sb, mut so) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (_, f)) in demo::packets().into_iter().enumerate() {
        let t = (i % 4) as u32;
        a.start(t, &f);
        let (la, lb) = (a.run_to_end(t, &mut sa), b.start_to_end(t, &f, &mut sb));
        assert_eq!((&la, &sa), (&lb, &sb), "frame {i}");
        old.start_to_end(t, &f, &mut so);
        let waits = |s: &[Segment]| s.iter().map(|s| s.wait).sum::<u64>();
        if !sa.is_empty() {
            assert_ne!(waits(&sa), waits(&so), "frame {i}: the new table's waits");
        }
    }
}
