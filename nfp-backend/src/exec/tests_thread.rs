//! Tests of [`Thread`]'s packet start: the fused start-and-run against `start` then the
//! run, and `start` against a fresh thread.

#![allow(clippy::unwrap_used)]
use super::fresh::may_write_a22;
use super::thread::Thread;
use super::thread::slot::{self, FILE, REGS};
use super::*;
use crate::cost::Latencies;
use crate::exec::tests_props::{maps, wild_insn};
use crate::exec::{FastProgram, InsnProfile, LMEM_BYTES, PKT_VEC_BYTES, Segment, SharedMem};
use crate::target::decode::tests::insn;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use vm_core::maps::MapSet;

/// A thread with its memories and profile, run one of the two ways.
struct Side {
    t: Thread,
    lmem: Lmem,
    shared: SharedMem,
    maps: MapSet,
    prof: Vec<InsnProfile>,
    segs: Vec<Segment>,
}

impl Side {
    /// Everything observable, as one comparable value.
    #[allow(clippy::type_complexity)]
    fn state(&self) -> impl PartialEq + std::fmt::Debug + '_ {
        let t = &self.t;
        (
            (t.pc, t.insns, t.busy, t.running),
            (t.alu_val, &t.fault),
            (t.defer_left, t.defer_target, t.defer_taken, t.defer_slots),
            (&t.pkt[..], t.meta, t.data, t.end, t.dirty),
            (self.lmem.bytes(), self.shared.cls(), self.shared.imem()),
            self.shared.prandom_state(),
            self.maps
                .iter()
                .map(|m| (m.entries(), m.slab()))
                .collect::<Vec<_>>(),
            (&self.prof, &self.segs),
        )
    }

    /// The state a fused start leaves alone for a program at rest (see `reset_for`),
    /// one value per part that may be written on its own.
    fn rest(&self) -> Vec<u64> {
        let t = &self.t;
        let mut v = vec![
            u64::from(t.cc.res),
            u64::from(t.cc.c),
            u64::from(t.cc.v),
            t.alu_at,
            u64::from(t.mul.a) | u64::from(t.mul.b) << 32,
            u64::from(t.mul.width) | u64::from(t.mul.steps) << 8,
        ];
        v.extend(t.lm_addr.iter().map(|&a| u64::from(a)));
        v.extend(t.lm_ready);
        v
    }
}

/// `run_packet_to_end_fast` is `start` then `run_to_end_fast`: the same result, segments
/// (appended to what the list held), state, memories and profile, packet after packet
/// (state kept), on random code (valid and invalid operands, faults, tiny budgets), with
/// frames that cannot be loaded, with and without native blocks and the profile.
///
/// But for the registers the fused start does not clear (not live-in, see `live`): before
/// each packet they get noise, and may keep it where the run does not write them.
#[test]
fn run_packet_to_end_fast_is_start_then_run_to_end() {
    let cases = std::env::var("NFP_FAST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000u32);
    let frame = prop_oneof![
        9 => prop::collection::vec(any::<u8>(), 0..120),
        1 => Just(vec![0u8; MAX_PACKET as usize + 1]),
    ];
    let strategy = (
        prop::collection::vec(crate::exec::live::whole_write(), 0..16),
        prop::collection::vec(prop_oneof![4 => insn(), 1 => wild_insn()], 1..48),
        prop::collection::vec(frame, 1..5),
        0u8..THREADS_PER_ME,
        prop_oneof![Just(400u64), 1u64..30],
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        any::<u64>(),
    );
    // Cases where a fused start found the thread at rest (checked below: common enough).
    let rested = std::cell::Cell::new(0u32);
    // Of them, those that set no entry register (`Fresh::key`).
    let bared = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let lat = Latencies::NFP4000;
    let result = runner.run(
        &strategy,
        |(prefix, body, frames, index, budget, (native, profiled, exact, rest), seed)| {
            let code: Vec<MeInsn> = if rest {
                // Three in four write the entry registers first, so that a start at rest
                // leaves them as the last packet left them (see `Fresh::key`).
                at_rest(prefix, body, seed & 6 != 0)
            } else {
                prefix.into_iter().chain(body).collect()
            };
            let mut prog = if native {
                FastProgram::new(&code)
            } else {
                FastProgram::without_native(&code)
            };
            if exact {
                // Every live chunk one by one, however many (not "all" past the limit).
                prog.fresh = prog
                    .fresh
                    .with_live(crate::exec::live::chunks(crate::exec::live::live_in(&code)));
            }
            let kept = |s: usize| prog.fresh.live_chunks >> (s / 4) & 1 == 0;
            let mut x = seed | 1;
            let side = || Side {
                t: Thread::new(index),
                lmem: Lmem::new(),
                shared: SharedMem::new(7, 0),
                maps: maps(),
                prof: vec![InsnProfile::default(); code.len()],
                segs: Vec::new(),
            };
            let (mut a, mut b) = (side(), side());
            for (i, f) in frames.iter().enumerate() {
                let got_a = {
                    let mut mem = MemState {
                        lmem: &mut a.lmem,
                        shared: &mut a.shared,
                        maps: &mut a.maps,
                        lat: &lat,
                    };
                    let p = profiled.then_some(a.prof.as_mut_slice());
                    a.t.start(mem.lmem, f)
                        .and_then(|()| a.t.run_to_end_fast(&prog, &mut mem, budget, p, &mut a.segs))
                };
                // But A22, which nothing but the program writes between packets: a program
                // that never writes it finds it as the last full start left it (and the
                // start need not set it, see `Fresh::key`).
                let a22 = slot::A + STATIC_GPR as usize;
                for (s, r) in b.t.file[..REGS].iter_mut().enumerate() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if s != a22 {
                        *r = x as u32;
                    }
                }
                let noise = b.t.file;
                let (quick, rest_before) = (b.t.reset_for == prog.fresh.quick, b.rest());
                let bare = b.t.reset_for == prog.fresh.key;
                let got_b = {
                    let mut mem = MemState {
                        lmem: &mut b.lmem,
                        shared: &mut b.shared,
                        maps: &mut b.maps,
                        lat: &lat,
                    };
                    let p = profiled.then_some(b.prof.as_mut_slice());
                    b.t.run_packet_to_end_fast(&prog, &mut mem, f, budget, p, &mut b.segs)
                };
                let unloaded = matches!(
                    got_b,
                    Err(ExecError {
                        kind: ExecErrorKind::BadPacket { .. },
                        ..
                    })
                );
                // Equal, or kept (never written by the run: cleared in `a`, noise in `b`);
                // a packet that cannot be loaded changes no register.
                let (fa, fb) = (&a.t.file, &b.t.file);
                let regs_ok = if unloaded {
                    *fb == noise
                } else {
                    (0..FILE).all(|s| fa[s] == fb[s] || (s < REGS && kept(s) && fb[s] == noise[s]))
                };
                // Equal, or (left alone by a start at rest) kept.
                let (ra, rb) = (a.rest(), b.rest());
                let quick = quick && !unloaded && !profiled;
                rested.set(rested.get() + u32::from(quick));
                bared.set(bared.get() + u32::from(bare && !unloaded && !profiled));
                let rest_ok =
                    (0..ra.len()).all(|k| ra[k] == rb[k] || (quick && rb[k] == rest_before[k]));
                // What `may_write_a22` promises: the stack base stays (in `start`'s run).
                let a22_ok = unloaded || a.t.file[a22] == stack_base(index) || may_write_a22(&code);
                if got_a != got_b || a.state() != b.state() || !regs_ok || !rest_ok || !a22_ok {
                    return Err(TestCaseError::fail(format!(
                        "frame {i}: {got_a:?} / {got_b:?}\n{:?} {ra:?}\n{:?} {rb:?}\n{}",
                        a.state(),
                        b.state(),
                        crate::target::print_program(&code)
                    )));
                }
            }
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    // About 3.5 % of the cases (most random code faults before its exit).
    assert!(
        rested.get() > cases / 100,
        "{} starts at rest",
        rested.get()
    );
    // About 1 % (some bodies write A22; a profiled start resets everything).
    assert!(
        bared.get() > cases / 1000,
        "{} starts setting no entry register",
        bared.get()
    );
}

/// A program that sets the state a start resets before its random `body`, so that it
/// needs no reset once at rest (`live::reset_needs`): condition codes and LM indexes
/// first (and, with `entry`, the entry registers but A22); the body cut short and ending in
/// an exit, with no indirect shift (reads the count of the last ALU instruction),
/// no multiply and no defer slot (which run on the reference path, after which a thread
/// is not at rest).
fn at_rest(prefix: Vec<MeInsn>, mut body: Vec<MeInsn>, entry: bool) -> Vec<MeInsn> {
    // Short, and ending: random code mostly faults before its exit.
    body.truncate(8);
    body.push(MeInsn::Exit);
    use crate::target::{AluOp, Csr, Dst, ShiftAmount, Src};
    let mut code = prefix;
    code.push(MeInsn::Alu {
        op: AluOp::Sub,
        dst: Dst::None,
        a: Src::Imm(3),
        b: Src::Imm(5),
    });
    for i in 0..4 {
        code.push(MeInsn::CsrWrite {
            csr: Csr::ActLmAddr(i),
            src: Src::Imm(16 * i),
        });
    }
    // The LM hazard of the last write.
    code.extend([MeInsn::Nop; 3]);
    code.extend(body.into_iter().map(|i| match i {
        MeInsn::Shf {
            kind,
            dst,
            a,
            b,
            amount: ShiftAmount::Indirect,
        } => MeInsn::Shf {
            kind,
            dst,
            a,
            b,
            amount: ShiftAmount::Imm(3),
        },
        MeInsn::Mul { .. } => MeInsn::Nop,
        MeInsn::Br { cond, target, .. } => MeInsn::Br {
            cond,
            target,
            defer: 0,
        },
        MeInsn::BrBit {
            src,
            bit,
            set,
            target,
            ..
        } => MeInsn::BrBit {
            src,
            bit,
            set,
            target,
            defer: 0,
        },
        MeInsn::Rtn { src, .. } => MeInsn::Rtn { src, defer: 0 },
        other => other,
    }));
    if entry {
        code = written_first(code);
    }
    code
}

/// `code` after whole writes of the registers it may read before writing them (but read
/// transfer registers, which only memory reads fill) and of the entry registers but A22,
/// so that a start at rest needs to clear no register and set none (`Fresh::key`, if the
/// body does not write A22), then a copy of A22 (which such a start leaves as the last
/// full start set it) to B21.
fn written_first(code: Vec<MeInsn>) -> Vec<MeInsn> {
    use super::thread::slot;
    use crate::target::{AluOp, Bank, Dst, ImmedWidth, Src};
    let entry = [slot::B + 22, slot::A + 2, slot::B + 2];
    let live = crate::exec::live::live_in(&code) | entry.iter().fold(0, |m, &s| m | 1 << s);
    let dst = |s: usize| match s {
        0..32 => Some(Dst::Gpr(Bank::A, s as u8)),
        32..64 => Some(Dst::Gpr(Bank::B, (s - 32) as u8)),
        96..128 => Some(Dst::Xfer((s - 96) as u8)),
        _ => None,
    };
    let writes = (0..REGS).filter(|&s| live >> s & 1 != 0).filter_map(dst);
    let mut out: Vec<MeInsn> = writes
        .map(|dst| MeInsn::Immed {
            dst,
            imm: 7,
            shift: 0,
            invert: false,
            width: ImmedWidth::All,
        })
        .collect();
    out.push(MeInsn::Alu {
        op: AluOp::PassB,
        dst: Dst::Gpr(Bank::B, 21),
        a: Src::None,
        b: Src::Gpr(Bank::A, 22),
    });
    out.extend(code);
    out
}

/// `start` after a packet that wrote every register and all of local memory leaves
/// the thread as a fresh one: registers, stack and packet vector (what its inline
/// register clear and the dirty-chunk stack clear must not miss).
#[test]
fn start_resets_what_a_run_wrote() {
    let pkt: Vec<u8> = (0..77).collect();
    for index in 0..THREADS_PER_ME {
        let (mut fresh, mut lf) = (Thread::new(index), Lmem::new());
        fresh.start(&mut lf, &pkt).unwrap();
        let (mut used, mut lu) = (Thread::new(index), Lmem::new());
        used.start(&mut lu, &[1; 200]).unwrap();
        for (i, r) in used.file[..REGS].iter_mut().enumerate() {
            *r = 7 * i as u32 + 1;
        }
        for a in (0..LMEM_BYTES).step_by(4) {
            lu.set_word(a, 3 * a as u32 + 1);
        }
        used.lm_addr = [9; 4];
        used.lm_ready = [9; 4];
        used.cc.c = true;
        used.start(&mut lu, &pkt).unwrap();
        assert_eq!(used.file[..], fresh.file[..], "thread {index}");
        let sb = stack_base(index) as usize;
        assert!(
            lu.bytes()[sb..sb + STACK_BYTES as usize]
                .iter()
                .all(|&b| b == 0)
        );
        let pv = pkt_vec_addr(index) as usize;
        let vec = pv..pv + PKT_VEC_BYTES as usize;
        assert_eq!(lu.bytes()[vec.clone()], lf.bytes()[vec]);
        assert_eq!(
            (used.lm_addr, used.lm_ready, used.cc, used.packet()),
            (fresh.lm_addr, fresh.lm_ready, fresh.cc, fresh.packet())
        );
    }
}

/// Every thread's `Home` is what a start derived from its index before (`Home::of`): the
/// stack a whole number of LMEM chunks (so `Lmem::start_packet` zeroes all of it), the
/// vector inside LMEM, aligned to its size (`start_packet` masks it) and marked at both
/// ends, and the packet data after the headroom.
#[test]
fn homes_are_the_derived_addresses() {
    use super::thread::Home;
    for index in 0..THREADS_PER_ME {
        let h = Home::of(index);
        let (sb, pv) = (stack_base(index) as usize, pkt_vec_addr(index) as usize);
        assert_eq!(
            (h.stack as usize, h.vec as usize),
            (sb, pv),
            "thread {index}"
        );
        assert_eq!(h.data, ctm_packet_buffer(index) + PKT_HEADROOM);
        assert_eq!(h.data_pair, u64::from(h.data) << 32 | u64::from(h.data));
        assert_eq!(Thread::new(index).home, h);
        let chunk = LMEM_BYTES / 64;
        let stack: u64 = (sb / chunk..(sb + STACK_BYTES as usize) / chunk)
            .map(|c| 1u64 << c)
            .sum();
        assert!(sb.is_multiple_of(chunk) && (STACK_BYTES as usize).is_multiple_of(chunk));
        assert_eq!(h.stack_chunks, stack, "thread {index}");
        let end = pv + PKT_VEC_BYTES as usize;
        assert!(end <= LMEM_BYTES && pv.is_multiple_of(PKT_VEC_BYTES as usize));
        assert_eq!(
            h.vec_chunks,
            (1 << (pv / chunk)) | (1 << ((end - 1) / chunk))
        );
    }
}

/// `Fresh::rest` lets the fused start skip its clear and reset only when there is neither:
/// it is the program's `quick` id exactly when no register chunk is live-in, and otherwise
/// (and for `Fresh::ALL`) `u64::MAX`, which no `Thread::reset_for` ever holds; `Fresh::key`
/// is `rest` for a program that reads no entry register but A22 before writing it and
/// never writes A22, else `u64::MAX`.
#[test]
fn fresh_key_is_quick_only_without_live_chunks() {
    use super::fresh::Fresh;
    use crate::target::{AluOp, Bank, Dst, Src};
    assert_eq!((Fresh::ALL.key, Fresh::ALL.rest), (u64::MAX, u64::MAX));
    assert_eq!(Fresh::ALL.reset_id(), 0);
    // Reads A22 (the stack base, which every start sets), or one of the others, into R0
    // (which the exit reads).
    let reads = |bank, n| {
        let alu = |dst, b| MeInsn::Alu {
            op: AluOp::PassB,
            dst,
            a: Src::None,
            b,
        };
        [
            alu(Dst::Gpr(Bank::A, 0), Src::Gpr(bank, n)),
            alu(Dst::Gpr(Bank::A, 1), Src::Imm(0)),
            MeInsn::Exit,
        ]
    };
    let entry_reader = |code: &[MeInsn]| {
        let f = FastProgram::new(code).fresh;
        assert!(f.quick != 0 && f.quick != u64::MAX, "nothing to reset");
        assert_eq!((f.rest, f.live_chunks), (f.quick, 0));
        f.key != f.rest
    };
    assert!(!entry_reader(&reads(Bank::A, 22)));
    assert!(entry_reader(&reads(Bank::B, 22)));
    assert!(entry_reader(&reads(Bank::A, 2)));
    assert!(entry_reader(&reads(Bank::B, 2)));
    // Written before it is read: not read at entry.
    let mut written = reads(Bank::B, 22).to_vec();
    written.insert(
        0,
        MeInsn::Alu {
            op: AluOp::PassB,
            dst: Dst::Gpr(Bank::B, 22),
            a: Src::None,
            b: Src::Imm(9),
        },
    );
    assert!(!entry_reader(&written));
    // A22 written (after it was read): set at every start.
    for dst in [Dst::Gpr(Bank::A, 22), Dst::Both(22)] {
        let mut code = reads(Bank::A, 22).to_vec();
        code.insert(
            1,
            MeInsn::Alu {
                op: AluOp::PassB,
                dst,
                a: Src::None,
                b: Src::Imm(9),
            },
        );
        assert!(entry_reader(&code), "{dst:?}");
    }
    // B22 written: not A22.
    let mut code = reads(Bank::A, 22).to_vec();
    code.insert(
        1,
        MeInsn::Alu {
            op: AluOp::PassB,
            dst: Dst::Gpr(Bank::B, 22),
            a: Src::None,
            b: Src::Imm(9),
        },
    );
    assert!(!entry_reader(&code));
    for entry in [false, true] {
        let quiet = FastProgram::new(&reads(Bank::B, if entry { 22 } else { 21 })).fresh;
        let quick = quiet.quick;
        for live in [0, 1, 0b1010, u32::MAX] {
            let f = quiet.with_live(live);
            assert_eq!((f.quick, f.live_chunks), (quick, live));
            let rest = if live == 0 { quick } else { u64::MAX };
            assert_eq!(f.rest, rest, "{live:#x}");
            assert_eq!(f.key, if entry { u64::MAX } else { rest }, "{live:#x}");
            assert_ne!(f.reset_id(), u64::MAX);
        }
    }
}
