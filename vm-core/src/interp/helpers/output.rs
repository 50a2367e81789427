//! Output channels: perf event arrays and ring buffers.
//!
//! A ring buffer reservation becomes a memory region of its own (exactly the reserved
//! bytes), so writes outside the record fault, and submitting or discarding it closes the
//! region, like the verifier's reference tracking would forbid later use.

use super::super::context::CtxKind;
use super::super::env::Env;
use super::super::fault::FaultKind;
use super::super::memory::{FIRST_MAP, Kind, Window, split, vaddr};
use super::{EFAULT, EINVAL, bad_arg, errno};
use crate::MapType;
use crate::maps::{BPF_F_CTXLEN_MASK, BPF_F_INDEX_MASK};

/// Most simultaneously reserved ring buffer records per run.
const MAX_RECORDS: usize = 4096;

/// `long bpf_perf_event_output(ctx, map, u64 flags, void *data, u64 size)`; for skb and
/// XDP contexts the upper flag bits ask for that many packet bytes to be appended.
pub(super) fn perf_event_output(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let name = "bpf_perf_event_output";
    let m = env.map_arg(name, a[1])?;
    let (flags, data, size) = (a[2], a[3], a[4]);
    let ctx_len = ((flags & BPF_F_CTXLEN_MASK) >> 32) as usize;
    let has_packet = matches!(env.ctx.kind, CtxKind::Xdp | CtxKind::Skb { .. });
    if flags & !(BPF_F_CTXLEN_MASK | BPF_F_INDEX_MASK) != 0 || (!has_packet && ctx_len != 0) {
        return Ok(errno(EINVAL));
    }
    if ctx_len > env.pkt.len() {
        return Ok(errno(EFAULT));
    }
    if size > 1 << 20 {
        return Err(bad_arg(
            name,
            format!("size {size} is larger than any memory region"),
        ));
    }
    let mut rec = vec![0u8; size as usize];
    env.mem.copy_in(data, &mut rec)?;
    rec.extend_from_slice(&env.pkt.data()[..ctx_len]);
    let cpu = env.cfg.cpu;
    let res = match env.maps.get_mut(m) {
        Some(map) => map.perf_output(flags, cpu, &rec),
        None => return Err(bad_arg(name, "no such map")),
    };
    Ok(match res {
        Ok(()) => 0,
        Err(e) => e.as_helper_ret() as u64,
    })
}

fn ringbuf_arg(env: &Env<'_>, name: &'static str, v: u64) -> Result<usize, FaultKind> {
    let m = env.map_arg(name, v)?;
    match env.maps.get(m) {
        Some(map) if map.def().map_type == MapType::Ringbuf => Ok(m),
        _ => Err(bad_arg(name, "the map is not a BPF_MAP_TYPE_RINGBUF")),
    }
}

/// `long bpf_ringbuf_output(ringbuf, void *data, u64 size, u64 flags)`.
pub(super) fn ringbuf_output(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let name = "bpf_ringbuf_output";
    let m = ringbuf_arg(env, name, a[0])?;
    if a[2] > 1 << 30 {
        return Err(bad_arg(name, "size larger than any memory region"));
    }
    let mut rec = vec![0u8; a[2] as usize];
    env.mem.copy_in(a[1], &mut rec)?;
    let res = match env.maps.get_mut(m) {
        Some(map) => map.ringbuf_output(&rec, a[3]),
        None => return Err(bad_arg(name, "no such map")),
    };
    Ok(match res {
        Ok(()) => 0,
        Err(e) => e.as_helper_ret() as u64,
    })
}

/// `void *bpf_ringbuf_reserve(ringbuf, u64 size, u64 flags)`.
pub(super) fn ringbuf_reserve(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let name = "bpf_ringbuf_reserve";
    let m = ringbuf_arg(env, name, a[0])?;
    if env.mem.len() >= FIRST_MAP + env.maps.len() + MAX_RECORDS {
        return Ok(0);
    }
    let Some(map) = env.maps.get_mut(m) else {
        return Err(bad_arg(name, "no such map"));
    };
    let Some(off) = map.ringbuf_reserve(a[1], a[2]) else {
        return Ok(0);
    };
    let (base, cap) = map.slab_raw();
    // SAFETY: the record lies inside the map's slab, which never moves; pointers derived
    // from its root pointer stay valid across later borrows of the map (`Map::slab_raw`).
    let w = unsafe { Window::part(base, cap, off, off + a[1] as usize) };
    let slot = env.mem.push(Kind::Ringbuf(m as u32), w, w);
    match u32::try_from(off) {
        Ok(off) => Ok(vaddr(slot, off)),
        Err(_) => Err(bad_arg(name, "record offset beyond 4 GiB")),
    }
}

/// Closes the record at `ptr`; returns its map and offset.
fn take_record(
    env: &mut Env<'_>,
    name: &'static str,
    ptr: u64,
) -> Result<(usize, usize), FaultKind> {
    let (slot, off) = split(ptr);
    match (env.mem.kind(slot), env.mem.bounds(slot)) {
        (Kind::Ringbuf(m), Some((lo, _))) if lo == off => {
            env.mem.set(slot, Window::EMPTY, Window::EMPTY);
            Ok((m as usize, off as usize))
        }
        _ => Err(bad_arg(
            name,
            format!("{ptr:#x} is not a live ring buffer reservation"),
        )),
    }
}

/// `void bpf_ringbuf_submit(void *data, u64 flags)`.
pub(super) fn ringbuf_submit(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let (m, off) = take_record(env, "bpf_ringbuf_submit", a[0])?;
    if let Some(map) = env.maps.get_mut(m) {
        // The record was live, so the map knows it; nothing to report to the program.
        let _ = map.ringbuf_submit(off, a[1]);
    }
    Ok(0)
}

/// `void bpf_ringbuf_discard(void *data, u64 flags)`.
pub(super) fn ringbuf_discard(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let (m, off) = take_record(env, "bpf_ringbuf_discard", a[0])?;
    if let Some(map) = env.maps.get_mut(m) {
        let _ = map.ringbuf_discard(off, a[1]);
    }
    Ok(0)
}

/// `u64 bpf_ringbuf_query(ringbuf, u64 flags)`.
pub(super) fn ringbuf_query(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let m = ringbuf_arg(env, "bpf_ringbuf_query", a[0])?;
    Ok(env.maps.get(m).map_or(0, |map| map.ringbuf_query(a[1])))
}

/// Discards reservations a run left open (a verified program never does), so that a
/// faulting run cannot wedge the ring for later runs.
pub(crate) fn close_open_records(env: &mut Env<'_>) {
    for slot in FIRST_MAP + env.maps.len()..env.mem.len() {
        if let (Kind::Ringbuf(m), Some((lo, _))) = (env.mem.kind(slot), env.mem.bounds(slot))
            && let Some(map) = env.maps.get_mut(m as usize)
        {
            let _ = map.ringbuf_discard(lo as usize, 0);
        }
    }
    env.mem.truncate(FIRST_MAP + env.maps.len());
}
