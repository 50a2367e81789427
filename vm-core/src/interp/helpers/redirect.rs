//! `bpf_redirect` and `bpf_redirect_map`: the verdict they return and the target recorded
//! in the run outcome (test runs do not transmit anything).

use super::super::context::CtxKind;
use super::super::env::{Env, Redirect};
use super::super::fault::FaultKind;
use super::bad_arg;
use crate::MapType;

const XDP_ABORTED: u64 = 0;
const XDP_REDIRECT: u64 = 4;
const TC_ACT_SHOT: u64 = 2;
const TC_ACT_REDIRECT: u64 = 7;
const BPF_F_INGRESS: u64 = 1;
const BPF_F_BROADCAST: u64 = 1 << 3;
const BPF_F_EXCLUDE_INGRESS: u64 = 1 << 4;

/// `long bpf_redirect(u32 ifindex, u64 flags)`: XDP accepts no flags (else `XDP_ABORTED`),
/// tc only `BPF_F_INGRESS` (else `TC_ACT_SHOT`).
pub(super) fn redirect(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let (ifindex, flags) = (a[0] as u32, a[1]);
    let xdp = env.ctx.kind == CtxKind::Xdp;
    if xdp && flags != 0 {
        return Ok(XDP_ABORTED);
    }
    if !xdp && flags & !BPF_F_INGRESS != 0 {
        return Ok(TC_ACT_SHOT);
    }
    env.st.redirect = Some(Redirect::Ifindex { ifindex, flags });
    Ok(if xdp { XDP_REDIRECT } else { TC_ACT_REDIRECT })
}

/// `long bpf_redirect_map(map, u64 key, u64 flags)` (XDP): the low two flag bits are the
/// action returned when the key has no entry.
pub(super) fn redirect_map(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let name = "bpf_redirect_map";
    let m = env.map_arg(name, a[0])?;
    let Some(map) = env.maps.get(m) else {
        return Err(bad_arg(name, "no such map"));
    };
    let flag_mask = match map.def().map_type {
        MapType::Devmap => BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS,
        MapType::Cpumap | MapType::Xskmap => 0,
        MapType::Other(25) => BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS, // DEVMAP_HASH
        _ => return Err(bad_arg(name, "the map is not a devmap, cpumap or xskmap")),
    };
    let (key, flags) = (a[1], a[2]);
    let action_mask = 3;
    if flags & !(action_mask | flag_mask) != 0 {
        return Ok(XDP_ABORTED);
    }
    let present = map.redirect_lookup(key as u32);
    if !present && flags & BPF_F_BROADCAST == 0 {
        env.st.redirect = None;
        return Ok(flags & action_mask);
    }
    env.st.redirect = Some(Redirect::Map {
        map: m as u32,
        key: key as u32,
        flags,
    });
    Ok(XDP_REDIRECT)
}
