//! XDP buffer helpers: moving `data`, `data_meta` and `data_end` with the kernel's limits,
//! and the bounded copy helpers.
//!
//! Limits (Linux 6.18, `net/core/filter.c`, non-fragmented buffers):
//! - `bpf_xdp_adjust_head`: `data` may not move below the `xdp_frame` area plus the
//!   current metadata, nor leave fewer than `ETH_HLEN` bytes; metadata moves with it.
//! - `bpf_xdp_adjust_meta`: `data_meta` stays between the `xdp_frame` area and `data`; the
//!   metadata length must be a multiple of 4 and at most 255 (`-EACCES` otherwise).
//! - `bpf_xdp_adjust_tail`: `data_end` stays at most at the page end minus
//!   `skb_shared_info`, and at least `ETH_HLEN` after `data`; growth is zero-filled.

use super::super::context::{ETH_HLEN, XDP_FRAME_SIZE, XDP_META_MAX};
use super::super::env::Env;
use super::super::fault::FaultKind;
use super::{EACCES, EFAULT, EINVAL, errno};

/// `long bpf_xdp_adjust_head(xdp_md, int delta)`.
pub(super) fn adjust_head(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let delta = a[1] as i32 as i64;
    let p = &mut *env.pkt;
    let metalen = p.data - p.meta;
    let data_start = (XDP_FRAME_SIZE + metalen) as i64;
    let data = p.data as i64 + delta;
    if data < data_start || data > p.end as i64 - ETH_HLEN as i64 {
        return Ok(errno(EINVAL));
    }
    let meta = (p.meta as i64 + delta) as usize;
    if metalen != 0 {
        let old = p.meta;
        p.buf_mut().copy_within(old..old + metalen, meta);
    }
    p.meta = meta;
    p.data = data as usize;
    p.headroom_dirty = true;
    p.map_into(env.mem);
    Ok(0)
}

/// `long bpf_xdp_adjust_meta(xdp_md, int delta)`.
pub(super) fn adjust_meta(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let delta = a[1] as i32 as i64;
    let p = &mut *env.pkt;
    let meta = p.meta as i64 + delta;
    if meta < XDP_FRAME_SIZE as i64 || meta > p.data as i64 {
        return Ok(errno(EINVAL));
    }
    let metalen = p.data as i64 - meta;
    if metalen % 4 != 0 || metalen > XDP_META_MAX as i64 {
        return Ok(errno(EACCES));
    }
    p.meta = meta as usize;
    p.headroom_dirty = true;
    p.map_into(env.mem);
    Ok(0)
}

/// `long bpf_xdp_adjust_tail(xdp_md, int delta)`.
pub(super) fn adjust_tail(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let delta = a[1] as i32 as i64;
    let p = &mut *env.pkt;
    let end = p.end as i64 + delta;
    if end > p.hard_end as i64 || end < (p.data + ETH_HLEN) as i64 {
        return Ok(errno(EINVAL));
    }
    let end = end as usize;
    if end > p.end {
        let old = p.end;
        p.buf_mut()[old..end].fill(0);
    }
    p.end = end;
    p.map_into(env.mem);
    Ok(0)
}

/// `u64 bpf_xdp_get_buff_len(xdp_md)`.
pub(super) fn get_buff_len(env: &mut Env<'_>, _: [u64; 5]) -> Result<u64, FaultKind> {
    Ok(env.pkt.len() as u64)
}

/// The errno `bpf_xdp_pointer` gives for `offset`/`len`, if any.
fn check(env: &Env<'_>, offset: u32, len: u32) -> Option<i64> {
    if offset > 0xffff || len > 0xffff {
        Some(EFAULT)
    } else if (offset + len) as usize > env.pkt.len() {
        Some(EINVAL)
    } else {
        None
    }
}

/// `long bpf_xdp_load_bytes(xdp_md, u32 offset, void *buf, u32 len)`.
pub(super) fn load_bytes(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let (offset, buf, len) = (a[1] as u32, a[2], a[3] as u32);
    if let Some(e) = check(env, offset, len) {
        return Ok(errno(e));
    }
    let o = offset as usize;
    let mut tmp = std::mem::take(&mut env.st.scratch);
    tmp.clear();
    tmp.extend_from_slice(&env.pkt.data()[o..o + len as usize]);
    let res = env.mem.copy_out(buf, &tmp);
    env.st.scratch = tmp;
    res.map(|()| 0)
}

/// `long bpf_xdp_store_bytes(xdp_md, u32 offset, void *buf, u32 len)`.
pub(super) fn store_bytes(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let (offset, buf, len) = (a[1] as u32, a[2], a[3] as u32);
    if let Some(e) = check(env, offset, len) {
        return Ok(errno(e));
    }
    let o = offset as usize;
    let mut tmp = std::mem::take(&mut env.st.scratch);
    tmp.clear();
    tmp.resize(len as usize, 0);
    let res = env.mem.copy_in(buf, &mut tmp);
    if res.is_ok() {
        env.pkt.data_mut()[o..o + tmp.len()].copy_from_slice(&tmp);
    }
    env.st.scratch = tmp;
    res?;
    env.pkt.map_into(env.mem);
    Ok(0)
}
