//! Handlers of the fast path's memory commands and firmware calls: the ops that reach
//! beyond the register file, may swap the thread out, and may fault.
//!
//! # Why specialised handlers
//!
//! Nearly every packet reads its headers from its CTM buffer, bumps a counter in a map
//! value with an EMEM atomic add and looks a key up in a map. The general command path
//! works out, on every execution, what the instruction alone decides (byte count, words,
//! the operand checks), dispatches on the target and the action, and returns the words
//! through a `Result`. Here the decoder (`fast`) does the instruction-only part once
//! (`Op::Cmd::words` and `mask`, from the same `units::cmd_shape` the general path checks),
//! and `fast_select` gives the common forms a handler of their own:
//!
//! - [`ctm_read`], a read from the thread's own packet buffer, the words a const parameter;
//! - [`emem_add`], an atomic add to a map value;
//! - [`ctm_write`] and [`emem_move`], packet stores and map value loads and stores;
//! - [`fw_lookup`], for `bpf_map_lookup_elem`;
//! - [`cmd`] and [`fw_call`], everything else, as the reference does it.
//!
//! A specialised handler only executes what passes every check of the general path; any
//! other case (an address outside the buffer, a partial last word the buffer ends in, a
//! missing map) is handed, unexecuted, to the general handler [`cmd`] (a tail call: the
//! registers are unchanged, so it computes the same address), which executes it or raises
//! exactly the reference's error. Latencies and counts are computed with the reference's
//! expressions, so events, cycles and profiles are unchanged.

use super::fast::{Hop, Op};
use super::fast_handlers::{mismatch, op_at, rd};
use super::fast_run::{Cx, Out, fault, next, pay, swap_or_pass};
use super::thread::Thread;
use super::{ExecErrorKind, MemState, SwapTarget, fw};
use crate::target::{AddrMode, FwHelper, MemTarget};

/// The byte address of a command from its two operand values.
#[inline(always)]
fn cmd_addr(mode: AddrMode, x: u32, y: u32) -> u64 {
    match mode {
        AddrMode::Addr32 => u64::from(x.wrapping_add(y)),
        AddrMode::Addr40 => (u64::from(x & 0xff) << 32) + u64::from(y),
    }
}

/// After a command that moved `words` words to `target`: swaps out for its latency (the
/// reference's expression) if it swaps, else goes on with the next op.
#[inline(always)]
fn after_cmd<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
    target: MemTarget,
    swaps: bool,
    words: u32,
) -> Out {
    cx.prof::<P>(ip, 0, 1);
    if swaps {
        let lat = cx.mem.lat;
        let wait = lat.target_latency(target) + lat.per_word * (words - 1);
        return swap_or_pass::<P>(
            t,
            cx,
            ip.wrapping_add(1),
            n,
            u64::from(wait),
            SwapTarget::Mem(target),
        );
    }
    next::<P>(t, cx, ip.wrapping_add(1), n)
}

/// A memory command with checked operands, on the general path (any target, action and
/// shape, every error); with `swap`, the thread swaps out after it.
pub(super) extern "C-unwind" fn cmd<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::Cmd {
        target,
        action,
        xfer,
        count,
        mode,
        swap,
        a,
        b,
        ..
    } = op_at(ip)
    else {
        return mismatch(cx, ip, n);
    };
    let addr = cmd_addr(mode, rd(t, a), rd(t, b));
    let words = match t.command(target, action, xfer, count, addr, &mut cx.mem) {
        Ok(w) => w,
        Err(k) => return fault(cx, ip, n, k),
    };
    after_cmd::<P>(t, cx, ip, n, target, swap, words)
}

/// What the specialised handlers need of a command besides its address.
#[derive(Clone, Copy)]
struct Shape {
    xfer: u8,
    count: u8,
    len: u8,
    words: u8,
    mask: u32,
}

/// The frame of every specialised handler: the op must be a command to `want`; `act`
/// executes it from its shape and address and returns the words it moved, or declines
/// (`None`, nothing done) and the general handler [`cmd`] runs it instead (a tail call, so
/// the specialised handler saves no registers; the registers are unchanged, so it computes
/// the same address).
#[inline(always)]
fn specialised<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
    want: MemTarget,
    act: impl FnOnce(&mut Thread, &mut MemState<'_>, Shape, u64) -> Option<u32>,
) -> Out {
    let &Op::Cmd {
        target,
        xfer,
        count,
        mode,
        swap,
        a,
        b,
        len,
        words,
        mask,
        ..
    } = op_at(ip)
    else {
        return mismatch(cx, ip, n);
    };
    if target != want {
        return mismatch(cx, ip, n);
    }
    let addr = cmd_addr(mode, rd(t, a), rd(t, b));
    let shape = Shape {
        xfer,
        count,
        len,
        words,
        mask,
    };
    match act(t, &mut cx.mem, shape, addr) {
        Some(moved) => after_cmd::<P>(t, cx, ip, n, want, swap, moved),
        None => cmd::<P>(t, cx, ip, n),
    }
}

/// `ctm[read8/read32, $xfer, a, b, count]` whose shape passed the decoder's checks: `W`
/// words (`1..=8`; 0 reads `words` from the op, for the profiled handler).
pub(super) extern "C-unwind" fn ctm_read<const P: bool, const W: u8>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    specialised::<P>(t, cx, ip, n, MemTarget::Ctm, |t, _, s, addr| {
        let w = if W == 0 { s.words } else { W };
        t.ctm_read(s.xfer, usize::from(w), s.mask, addr)
            .then_some(u32::from(w))
    })
}

/// `emem[atomic_add, $xfer, a, b, count]` whose shape passed the decoder's checks (to a map
/// value: the counters of most programs).
pub(super) extern "C-unwind" fn emem_add<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    specialised::<P>(t, cx, ip, n, MemTarget::Emem, |t, mem, s, addr| {
        t.emem_add(mem.maps, s.xfer, s.count, addr)
            .then_some(u32::from(s.words))
    })
}

/// `ctm[write8/write32, $xfer, a, b, count]` whose shape passed the decoder's checks (the
/// packet stores).
pub(super) extern "C-unwind" fn ctm_write<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    specialised::<P>(t, cx, ip, n, MemTarget::Ctm, |t, _, s, addr| {
        t.ctm_write(s.xfer, u32::from(s.len), addr)
            .then_some(u32::from(s.words))
    })
}

/// `emem[read8/read32 (WRITE false) or write8/write32, $xfer, a, b, count]` whose shape
/// passed the decoder's checks (map value loads and stores).
pub(super) extern "C-unwind" fn emem_move<const P: bool, const WRITE: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    specialised::<P>(t, cx, ip, n, MemTarget::Emem, |t, mem, s, addr| {
        t.emem_move(mem.maps, WRITE, s.xfer, u32::from(s.len), addr)
            .then_some(u32::from(s.words))
    })
}

/// After firmware helper `helper` ran: its issue cycles, then a swap for its latency, or
/// the run after it.
#[inline(always)]
fn after_fw<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
    helper: FwHelper,
) -> Out {
    let c = cx.mem.lat.fw_cost(helper);
    cx.add_extra(u64::from(c.issue));
    cx.prof::<P>(ip, 0, 1 + u64::from(c.issue));
    if c.wait > 0 {
        return swap_or_pass::<P>(
            t,
            cx,
            ip.wrapping_add(1),
            n,
            u64::from(c.wait),
            SwapTarget::Fw(helper),
        );
    }
    // SAFETY: `ip` points into the hops (invariant on `fast_run::next`).
    let rn = unsafe { (*ip).rn };
    pay::<P>(t, cx, ip.wrapping_add(1), rn, n)
}

/// A firmware helper call (it reads and writes registers and flag-free state only).
pub(super) extern "C-unwind" fn fw_call<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    let &Op::Fw { helper, .. } = op_at(ip) else {
        return mismatch(cx, ip, n);
    };
    if let Err(k) = fw::call(helper, t, &mut cx.mem) {
        return fault(cx, ip, n, k);
    }
    after_fw::<P>(t, cx, ip, n, helper)
}

/// `bpf_map_lookup_elem`: [`fw::map_lookup`] inline, the helper known at compile time.
pub(super) extern "C-unwind" fn fw_lookup<const P: bool>(
    t: &mut Thread,
    cx: &mut Cx<'_>,
    ip: *const Hop,
    n: u64,
) -> Out {
    const H: FwHelper = FwHelper::MapLookup;
    let &Op::Fw { helper: H, .. } = op_at(ip) else {
        return mismatch(cx, ip, n);
    };
    match fw::map_lookup(t, &mut cx.mem) {
        Ok(r0) => t.set_r0(r0),
        Err(reason) => return fault(cx, ip, n, ExecErrorKind::Helper { helper: H, reason }),
    }
    after_fw::<P>(t, cx, ip, n, H)
}

#[cfg(test)]
mod tests {
    //! The specialised handlers against the reference step: single commands and map lookups
    //! of every shape, aimed at the edges of the packet buffer and of map values (where a
    //! handler must hand over to the general path) as well as well inside and far outside.
    #![allow(clippy::unwrap_used)]

    use super::super::thread::slot;
    use super::super::units::{cmd_shape, last_mask};
    use super::super::*;
    use super::Op;
    use crate::target::{AddrMode, Bank, CmdAction, FwHelper, MemTarget, Src};
    use proptest::prelude::*;
    use vm_core::maps::{BPF_ANY, BPF_F_RDONLY_PROG, MapSet};
    use vm_core::{MapDef, MapType};

    /// An array (fd 0), a read-only array (fd 1) and a hash with two entries (fd 2).
    fn maps(seed: u8) -> MapSet {
        let def = |name: &str, map_type, value_size, flags| MapDef {
            name: name.into(),
            map_type,
            key_size: 4,
            value_size,
            max_entries: 8,
            flags,
            initial_value: None,
        };
        let defs = [
            def("a", MapType::Array, 20, 0),
            def("ro", MapType::Array, 8, BPF_F_RDONLY_PROG),
            def("h", MapType::Hash, 12, 0),
        ];
        let mut m = MapSet::new(&defs, 1).unwrap();
        for (fd, size) in [(0usize, 20usize), (1, 8), (2, 12)] {
            for k in [1u32, 3, 7] {
                let v: Vec<u8> = (0..size)
                    .map(|i| seed ^ (i as u8).wrapping_mul(37) ^ k as u8)
                    .collect();
                m.get_mut(fd)
                    .unwrap()
                    .user_update(&k.to_le_bytes(), &v, BPF_ANY)
                    .unwrap();
            }
        }
        m
    }

    /// One context and its memories.
    #[derive(Clone)]
    struct Side {
        thread: Thread,
        lmem: Lmem,
        shared: SharedMem,
        maps: MapSet,
    }

    /// An event and the state after it: registers, packet buffer, local memory, map slabs
    /// and the packet buffer's dirty tracking.
    type Seen = (
        Result<Event, ExecError>,
        Vec<u32>,
        Vec<u8>,
        Vec<u8>,
        Vec<Vec<u8>>,
        u32,
    );

    /// Runs to the end of the packet (or a fault): every event and the state after each.
    fn run(s: &mut Side, fast: Option<(&FastProgram, bool)>, code: &[MeInsn]) -> Vec<Seen> {
        let lat = Latencies::NFP4000;
        let mut profile = vec![InsnProfile::default(); code.len()];
        let mut out = Vec::new();
        loop {
            let mut mem = MemState {
                lmem: &mut s.lmem,
                shared: &mut s.shared,
                maps: &mut s.maps,
                lat: &lat,
            };
            let e = match fast {
                Some((p, false)) => s.thread.run_until_event_fast(p, &mut mem, 100),
                Some((p, true)) => {
                    s.thread
                        .run_until_event_fast_profiled(p, &mut mem, 100, &mut profile)
                }
                None => s.thread.run_until_event(code, &mut mem, 100),
            };
            let again = matches!(e, Ok(Event::Swap { .. }));
            let t = &s.thread;
            out.push((
                e,
                t.file[..slot::REGS].to_vec(),
                t.pkt.to_vec(),
                s.lmem.bytes().to_vec(),
                s.maps.iter().map(|m| m.slab().to_vec()).collect(),
                t.dirty,
            ));
            if !again {
                return out;
            }
        }
    }

    /// A started thread with every register and packet byte scrambled by `seed`, the
    /// command's operands in A0 and B1.
    fn side(thread: u8, seed: u64, x: u32, y: u32) -> Side {
        let mut s = Side {
            thread: Thread::new(thread),
            lmem: Lmem::new(),
            shared: SharedMem::new(1, 0),
            maps: maps(seed as u8),
        };
        s.thread.start(&mut s.lmem, &[0x5a; 60]).unwrap();
        let mut z = seed | 1;
        let mut next = || {
            z ^= z << 13;
            z ^= z >> 7;
            z ^= z << 17;
            z
        };
        for r in s.thread.file[..slot::REGS].iter_mut() {
            *r = next() as u32;
        }
        for b in s.thread.pkt.iter_mut() {
            *b = next() as u8;
        }
        s.thread.file[slot::A] = x;
        s.thread.file[slot::B + 1] = y;
        s
    }

    fn action(k: u8) -> CmdAction {
        [
            CmdAction::Read8,
            CmdAction::Read32,
            CmdAction::Write8,
            CmdAction::Write32,
            CmdAction::AtomicAdd,
        ][usize::from(k % 5)]
    }

    fn target(k: u8) -> MemTarget {
        [
            MemTarget::Ctm,
            MemTarget::Emem,
            MemTarget::Cls,
            MemTarget::Imem,
        ][usize::from(k % 4)]
    }

    /// The fast path (plain and profiled) and the reference agree on `code` from `s`.
    fn agree(s: &Side, code: &[MeInsn]) -> Result<(), TestCaseError> {
        let prog = FastProgram::new(code);
        let want = run(&mut s.clone(), None, code);
        for profiled in [false, true] {
            let got = run(&mut s.clone(), Some((&prog, profiled)), code);
            prop_assert!(
                got == want,
                "profiled {}: {:?} vs {:?}",
                profiled,
                got[0].0,
                want[0].0
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Every target, action, count and transfer register, at addresses inside, at the
        /// edges of and outside the packet buffer, the map values and the scratch memories.
        #[test]
        fn commands_equal_the_reference(
            (t, k, xfer, count) in (0u8..4, 0u8..5, 0u8..36, 0u8..36),
            (mode40, swap, thread) in (any::<bool>(), any::<bool>(), 0u8..4),
            (fd, off, far) in (0u64..4, prop_oneof![0u64..64, 4040u64..4100, 0u64..300_000], any::<u64>()),
            (pick, noise, seed) in (0u8..8, any::<u32>(), any::<u64>()),
        ) {
            let target = target(t);
            let addr = match (pick, target) {
                (0, _) => far,
                (_, MemTarget::Ctm) => u64::from(ctm_packet_buffer(thread)) + off,
                (_, MemTarget::Emem) => emem_map_addr(fd as u32, off % 200),
                _ => off,
            };
            let (x, y) = if mode40 {
                (((addr >> 32) as u32 & 0xff) | (noise & !0xff), addr as u32)
            } else {
                (noise, (addr as u32).wrapping_sub(noise))
            };
            let code = [
                MeInsn::Cmd {
                    target,
                    action: action(k),
                    xfer,
                    count,
                    mode: if mode40 { AddrMode::Addr40 } else { AddrMode::Addr32 },
                    a: Src::Gpr(Bank::A, 0),
                    b: Src::Gpr(Bank::B, 1),
                    swap,
                },
                MeInsn::Exit,
            ];
            agree(&side(thread, seed, x, y), &code)?;
        }

        /// `map_lookup` on present, absent and missing maps, keys inside, across the end of
        /// and outside local memory.
        #[test]
        fn map_lookups_equal_the_reference(
            fd in prop_oneof![0u32..4, any::<u32>()],
            key_at in prop_oneof![0u32..64, 4088u32..4100, any::<u32>()],
            key in prop_oneof![0u32..9, any::<u32>()],
            (hi, seed, thread) in (any::<u32>(), any::<u64>(), 0u8..4),
        ) {
            let mut s = side(thread, seed, 0, 0);
            s.thread.file[slot::A + 2] = fd;
            s.thread.file[slot::A + 3] = hi;
            s.thread.file[slot::A + 4] = key_at;
            s.thread.file[slot::A + 5] = hi;
            if let Some(b) = s.lmem.bytes_mut().get_mut(key_at as usize..key_at as usize + 4) {
                b.copy_from_slice(&key.to_le_bytes());
            }
            let code = [MeInsn::FwCall { helper: FwHelper::MapLookup }, MeInsn::Exit];
            agree(&s, &code)?;
        }
    }

    /// The decoder's shape of every command is the one the general path checks.
    #[test]
    fn decoded_shapes_are_the_general_paths() {
        for k in 0..5 {
            for (xfer, count) in (0u8..40).flat_map(|x| (0u8..40).map(move |c| (x, c))) {
                let insn = MeInsn::Cmd {
                    target: MemTarget::Ctm,
                    action: action(k),
                    xfer,
                    count,
                    mode: AddrMode::Addr32,
                    a: Src::Gpr(Bank::A, 0),
                    b: Src::Imm(0),
                    swap: true,
                };
                let prog = FastProgram::new(&[insn, MeInsn::Exit]);
                let Op::Cmd {
                    len, words, mask, ..
                } = prog.hops[0].op
                else {
                    panic!("not decoded as a command: {:?}", prog.hops[0]);
                };
                match cmd_shape(action(k), xfer, count) {
                    Ok(s) => {
                        assert_eq!((u32::from(len), u32::from(words)), (s.len, s.words));
                        assert_eq!(mask, last_mask(s.len));
                        assert!((1..=8).contains(&words) && len <= 32);
                    }
                    Err(_) => assert_eq!(words, 0),
                }
            }
        }
        // The mask keeps exactly the bytes a partial last word holds.
        for (len, m) in [
            (4, u32::MAX),
            (1, 0xff),
            (2, 0xffff),
            (3, 0xff_ffff),
            (12, u32::MAX),
        ] {
            assert_eq!(last_mask(len), m);
        }
    }

    /// The op stays small enough for a hop of 48 bytes (the handlers load it per op).
    #[test]
    fn hops_stay_compact() {
        assert!(std::mem::size_of::<super::Hop>() <= 48);
    }
}
