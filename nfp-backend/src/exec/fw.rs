//! Firmware helpers: what the CoreNIC firmware does when generated code branches to a helper
//! address, implemented with vm-core's map semantics so map contents and return values match
//! the interpreter's.
//!
//! Argument convention (as the host's): R1..R5 in GPR pairs 2..11 (bank A read), result in R0
//! (both banks). Pointers to keys and values are LMEM byte addresses (the stack); the data of
//! `perf_event_output` may also be a CTM packet address or an EMEM map value address.

use super::memory::{emem_map, range};
use super::thread::Thread;
use super::{
    EMEM_MAP_FD_SHIFT, ExecErrorKind, LMEM_BYTES, MIN_PACKET, MemState, PKT_BUF_BYTES,
    PKT_TAILROOM_RESERVED, XDP_FRAME_BYTES, ctm_packet_buffer, emem_map_addr,
};
use crate::target::FwHelper;
use vm_core::maps::{BPF_F_CTXLEN_MASK, BPF_F_INDEX_MASK, BPF_F_RDONLY_PROG, MapErrno, MapSet};
use vm_core::program::MapType;

/// `-EINVAL` as a helper return value.
const EINVAL: u64 = (-22i64) as u64;
/// `-EFAULT`.
const EFAULT: u64 = (-14i64) as u64;

fn ret(r: Result<(), MapErrno>) -> u64 {
    match r {
        Ok(()) => 0,
        Err(e) => e.as_helper_ret() as u64,
    }
}

/// The argument registers (bit n = Rn) whose low word alone `call` reads for `h`: map table
/// ids, LMEM key and value addresses and the adjust deltas are 32-bit; the update flags and
/// `perf_event_output`'s flags, data and size are read whole. The lowering relies on it: a
/// call keeps no upper half of these arguments alive (`lower::hi_live`), so they may be stale
/// (`tests_mem` runs each helper with garbage there).
pub(crate) fn low_word_args(h: FwHelper) -> u16 {
    let r = |n: u8| 1u16 << n;
    match h {
        FwHelper::MapLookup | FwHelper::MapDelete => r(1) | r(2),
        FwHelper::MapUpdate => r(1) | r(2) | r(3),
        FwHelper::AdjustHead | FwHelper::AdjustTail | FwHelper::PerfEventOutput => r(2),
        FwHelper::Random => 0,
    }
}

/// Runs `helper` for `th`, writing R0.
pub(super) fn call(
    helper: FwHelper,
    th: &mut Thread,
    mem: &mut MemState<'_>,
) -> Result<(), ExecErrorKind> {
    let bad = |reason| ExecErrorKind::Helper { helper, reason };
    let r0 = match helper {
        FwHelper::MapLookup => map_lookup(th, mem).map_err(bad)?,
        FwHelper::MapUpdate | FwHelper::MapDelete => {
            let fd = th.reg(1) as u32 as usize;
            let cpu = mem.shared.cpu;
            let map = mem.maps.get_mut(fd).ok_or(bad("no such map"))?;
            let (ks, vs) = (map.def().key_size, map.def().value_size);
            let key = mem
                .lmem
                .slice(u64::from(th.reg(2) as u32), ks)
                .map_err(|_| bad("key outside local memory"))?;
            match helper {
                FwHelper::MapUpdate => {
                    let value = mem
                        .lmem
                        .slice(u64::from(th.reg(3) as u32), vs)
                        .map_err(|_| bad("value outside local memory"))?;
                    ret(map.update(key, value, th.reg(4), cpu))
                }
                _ => ret(map.delete(key)),
            }
        }
        FwHelper::Random => u64::from(mem.shared.prandom()),
        FwHelper::AdjustHead => {
            let delta = i64::from(th.reg(2) as u32 as i32);
            let metalen = th.data - th.meta;
            let data = i64::from(th.data) + delta;
            if data < i64::from(XDP_FRAME_BYTES + metalen)
                || data > i64::from(th.end) - i64::from(MIN_PACKET)
            {
                EINVAL
            } else {
                let meta = (i64::from(th.meta) + delta) as u32;
                if metalen != 0 {
                    let old = th.meta as usize;
                    th.pkt
                        .copy_within(old..old + metalen as usize, meta as usize);
                }
                th.meta = meta;
                th.data = data as u32;
                th.note_headroom_write();
                th.write_pkt_vec(mem.lmem);
                0
            }
        }
        FwHelper::AdjustTail => {
            // The firmware only shrinks packets.
            let delta = i64::from(th.reg(2) as u32 as i32);
            let end = i64::from(th.end) + delta;
            let hard_end = i64::from(PKT_BUF_BYTES - PKT_TAILROOM_RESERVED);
            if delta > 0 || end > hard_end || end < i64::from(th.data + MIN_PACKET) {
                EINVAL
            } else {
                th.end = end as u32;
                th.write_pkt_vec(mem.lmem);
                0
            }
        }
        FwHelper::PerfEventOutput => perf_event_output(th, mem).map_err(bad)?,
    };
    th.set_r0(r0);
    Ok(())
}

/// `bpf_map_lookup_elem(map = R1, key = R2)`: the EMEM address of the value, or 0. Its own
/// function because it is the helper of nearly every packet: the fast path calls it
/// directly (`fast_mem::fw_lookup`), and [`call`] through here, so both are the same code.
#[inline(always)]
pub(super) fn map_lookup(th: &Thread, mem: &mut MemState<'_>) -> Result<u64, &'static str> {
    let fd = th.reg(1) as u32 as usize;
    let cpu = mem.shared.cpu;
    let map = mem.maps.get_mut(fd).ok_or("no such map")?;
    let key = mem
        .lmem
        .slice(u64::from(th.reg(2) as u32), map.def().key_size)
        .map_err(|_| "key outside local memory")?;
    value_addr(fd, map.lookup(key, cpu))
}

/// A lookup's R0: the EMEM address of the value at offset `off` of map `fd`, or 0 for no
/// value.
#[inline(always)]
fn value_addr(fd: usize, off: Option<usize>) -> Result<u64, &'static str> {
    match off {
        Some(off) if (off as u64) < 1 << EMEM_MAP_FD_SHIFT => {
            Ok(emem_map_addr(fd as u32, off as u64))
        }
        Some(_) => Err("value offset beyond the map's EMEM window"),
        None => Ok(0),
    }
}

/// A map's value window: the EMEM address of its value memory, its length less 8, and the
/// memory (see [`array_lookup_window`]).
pub(super) type ValueWindow = (u64, u64, *mut u8);

/// [`map_lookup`] when map R1 is an array (`PERCPU_ARRAY` too) and finds or misses the key
/// without a fault: `Some` of the same R0; `None` for every other case (another kind of
/// map, no such map, a key outside local memory, an offset beyond the EMEM window), which
/// the caller hands to [`map_lookup`] for its answer. With R0, the map's value window for
/// `jit`'s atomic adds when programs may write the map (see `fast_run::Cx::va_base`):
/// `Some((base, last, ptr))`, the EMEM address of the map's value memory, its length less
/// 8 (all of it inside the map's EMEM window) and the memory itself, whose bytes at
/// `base + off` are those `memory::emem_value_region` gives for `off <= last`; `None` when
/// the map is read-only for programs or its memory is shorter than 8 bytes.
///
/// Why: the native blocks' lookup helper (`jit::x64_call`) runs this inline and calls the
/// general lookup out of line, so its path for arrays makes no call and saves no
/// registers (callgrind, `simspeed pre`, with the kind test of `Map::array_lookup` and the
/// helper's panic payload kept out of line: the helper 63 -> 42 host instructions per
/// packet). The window: nearly every program adds to the value it looked up; with it,
/// its blocks add in place without calling the add's helper (10 host instructions more
/// here, about 35 fewer per add).
#[inline(always)]
pub(super) fn array_lookup_window(
    th: &Thread,
    mem: &mut MemState<'_>,
) -> Option<(u64, Option<ValueWindow>)> {
    let fd = th.reg(1) as u32 as usize;
    let map = mem.maps.get_mut(fd)?;
    // An array's key is its 4-byte index (any other size: the general lookup answers),
    // so the key's bounds are checked against a constant (callgrind, `simspeed pre`: the
    // helper 49 -> 45 host instructions per lookup, the whole simulation 3 per frame).
    if map.def().key_size != 4 {
        return None;
    }
    let key = mem.lmem.slice(u64::from(th.reg(2) as u32), 4).ok()?;
    // `value_addr`, written out with the window's base (computed once for both).
    let base = emem_map_addr(fd as u32, 0);
    let r0 = match map.array_lookup(key, mem.shared.cpu)? {
        Some(off) if (off as u64) < 1 << EMEM_MAP_FD_SHIFT => base + off as u64,
        Some(_) => return None,
        None => 0,
    };
    if map.def().flags & BPF_F_RDONLY_PROG != 0 {
        return Some((r0, None));
    }
    let window = map.value_slab_mut().and_then(|slab| {
        // At least 8 bytes, and all inside the map's EMEM window (offsets beyond belong to
        // the next map's, `emem_map`): one compare for both.
        let last = (slab.len() as u64).wrapping_sub(8);
        (last <= (1 << EMEM_MAP_FD_SHIFT) - 8).then_some((base, last, slab.as_mut_ptr()))
    });
    Some((r0, window))
}

/// What `jit`'s blocks need to make [`array_lookup_window`]'s lookup of map `fd` inline
/// (`jit::x64_call::lookup`), for the chain's maps: `(max, stride, window)`, the map's
/// `max_entries` and value stride, and its value window (as [`array_lookup_window`] gives
/// it), when `fd` is a plain array (not per-CPU) whose values all lie inside its EMEM
/// window; else `(0, 0, None)` (no key is below 0: every lookup calls the helper).
///
/// Exactness: for such a map and a 4-byte key `i` read as [`array_lookup_window`] reads it,
/// `i < max` gives R0 `emem_map_addr(fd, i * stride)` (`ArrayMap::lookup`: one copy, offset
/// `i * stride`, with `stride` `Map::value_stride` and `max` `def().max_entries`, its own
/// copies; `jit::tests_inline` holds them to `Map::lookup`), below the EMEM window since
/// the slab (`max * stride` bytes) is at most that long; any other key is left to the
/// helper. The window does not depend on the key, so the fused start sets it at the start
/// of each chain (any window gives the same adds: see `Cx::va_base`).
#[inline(always)]
pub(super) fn array_desc(maps: &mut MapSet, fd: u32) -> (u64, u64, Option<ValueWindow>) {
    const NONE: (u64, u64, Option<ValueWindow>) = (0, 0, None);
    let Some(map) = maps.get_mut(fd as usize) else {
        return NONE;
    };
    if map.def().map_type != MapType::Array {
        return NONE;
    }
    let (max, stride) = (map.def().max_entries, map.value_stride() as u64);
    let writable = map.def().flags & BPF_F_RDONLY_PROG == 0;
    let Some(slab) = map.value_slab_mut() else {
        return NONE;
    };
    // At least 8 bytes and all inside the map's EMEM window (as `array_lookup_window`).
    let last = (slab.len() as u64).wrapping_sub(8);
    if last > (1 << EMEM_MAP_FD_SHIFT) - 8 {
        return NONE;
    }
    let window = writable.then_some((emem_map_addr(fd, 0), last, slab.as_mut_ptr()));
    (u64::from(max), stride, window)
}

/// `bpf_perf_event_output(ctx, map = R2, flags = R3, data = R4, size = R5)`; the upper flag
/// bits append that many packet bytes, as for XDP on the host.
fn perf_event_output(th: &mut Thread, mem: &mut MemState<'_>) -> Result<u64, &'static str> {
    let fd = th.reg(2) as u32 as usize;
    let (flags, data, size) = (th.reg(3), th.reg(4), th.reg(5));
    let ctx_len = ((flags & BPF_F_CTXLEN_MASK) >> 32) as usize;
    if flags & !(BPF_F_CTXLEN_MASK | BPF_F_INDEX_MASK) != 0 {
        return Ok(EINVAL);
    }
    if ctx_len > (th.end - th.data) as usize {
        return Ok(EFAULT);
    }
    let size = u32::try_from(size).map_err(|_| "size above 4 GiB")?;
    let buf = &mut mem.shared.scratch;
    buf.clear();
    let pkt_base = u64::from(ctm_packet_buffer(th.index()));
    if data < LMEM_BYTES as u64 {
        buf.extend_from_slice(
            mem.lmem
                .slice(data, size)
                .map_err(|_| "data outside memory")?,
        );
    } else if let Some(r) = data
        .checked_sub(pkt_base)
        .and_then(|off| range(off, size, PKT_BUF_BYTES as usize))
    {
        buf.extend_from_slice(&th.pkt[r]);
    } else if let Some((mfd, off)) = emem_map(data) {
        let slab = mem
            .maps
            .get(mfd)
            .map(|m| m.slab())
            .ok_or("data outside memory")?;
        let r = range(off, size, slab.len()).ok_or("data outside memory")?;
        buf.extend_from_slice(&slab[r]);
    } else {
        return Err("data outside memory");
    }
    let d = th.data as usize;
    buf.extend_from_slice(&th.pkt[d..d + ctx_len]);
    let cpu = mem.shared.cpu;
    let map = mem.maps.get_mut(fd).ok_or("no such map")?;
    Ok(ret(map.perf_output(flags, cpu, buf)))
}
