//! Map helpers: lookup, update, delete, and `bpf_tail_call` (a prog-array lookup that
//! transfers control).

use super::super::env::Env;
use super::super::fault::FaultKind;
use super::super::memory::{FIRST_MAP, vaddr};
use super::bad_arg;
use crate::MapType;

/// The kernel's `MAX_TAIL_CALL_CNT`.
pub(crate) const MAX_TAIL_CALLS: u32 = 33;

/// Keys up to this size are copied to the Rust stack instead of the scratch buffer (every
/// array key, and IPv4 flow keys); small enough that zeroing the buffer is one store.
const SMALL_KEY: usize = 16;

/// Copies `len` bytes at `addr` into `env.st.scratch` (or `scratch2` when `second`).
fn fetch(env: &mut Env<'_>, addr: u64, len: usize, second: bool) -> Result<(), FaultKind> {
    let buf = if second {
        &mut env.st.scratch2
    } else {
        &mut env.st.scratch
    };
    buf.clear();
    buf.resize(len, 0);
    env.mem.copy_in(addr, buf)
}

/// `void *bpf_map_lookup_elem(map, key)`.
///
/// The hot helper of packet programs: no allocation, no table rebuild (map slabs never move,
/// so the region table stays valid; see `env::map_maps`), small keys copied to the stack.
pub(super) fn lookup(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let name = "bpf_map_lookup_elem";
    let m = env.map_arg(name, a[0])?;
    let cpu = env.cfg.cpu;
    let Some(map) = env.maps.get_mut(m) else {
        return Err(bad_arg(name, "no such map"));
    };
    let key_size = map.def().key_size as usize;
    let found = if key_size <= SMALL_KEY {
        let mut key = [0u8; SMALL_KEY];
        let key = &mut key[..key_size];
        env.mem.copy_in(a[1], key)?;
        map.lookup(key, cpu)
    } else {
        let buf = &mut env.st.scratch;
        buf.clear();
        buf.resize(key_size, 0);
        env.mem.copy_in(a[1], buf)?;
        map.lookup(buf, cpu)
    };
    match found {
        Some(off) => u32::try_from(off)
            .map(|off| vaddr(FIRST_MAP + m, off))
            .map_err(|_| bad_arg(name, "value offset beyond 4 GiB")),
        None => Ok(0),
    }
}

/// `long bpf_map_update_elem(map, key, value, flags)`.
pub(super) fn update(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let name = "bpf_map_update_elem";
    let m = env.map_arg(name, a[0])?;
    let (key_size, value_size) = env.maps.get(m).map_or((0, 0), |map| {
        (map.def().key_size as usize, map.def().value_size as usize)
    });
    fetch(env, a[1], key_size, false)?;
    fetch(env, a[2], value_size, true)?;
    let cpu = env.cfg.cpu;
    let res = match env.maps.get_mut(m) {
        Some(map) => map.update(&env.st.scratch, &env.st.scratch2, a[3], cpu),
        None => return Err(bad_arg(name, "no such map")),
    };
    Ok(match res {
        Ok(()) => 0,
        Err(e) => e.as_helper_ret() as u64,
    })
}

/// `long bpf_map_delete_elem(map, key)`.
pub(super) fn delete(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let name = "bpf_map_delete_elem";
    let m = env.map_arg(name, a[0])?;
    let key_size = env.maps.get(m).map_or(0, |map| map.def().key_size) as usize;
    fetch(env, a[1], key_size, false)?;
    let res = match env.maps.get_mut(m) {
        Some(map) => map.delete(&env.st.scratch),
        None => return Err(bad_arg(name, "no such map")),
    };
    Ok(match res {
        Ok(()) => 0,
        Err(e) => e.as_helper_ret() as u64,
    })
}

/// What `bpf_tail_call` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TailCallOutcome {
    /// Continue in program `n` of the Vm (the value stored in the prog array).
    Jump(usize),
    /// The call failed (index out of range, empty slot, too many tail calls): the program
    /// continues after the call, as in Linux.
    FallThrough,
}

/// `long bpf_tail_call(ctx, prog_array_map, index)`: the kernel's order of checks — index
/// against `max_entries`, then the tail-call counter (incremented before the slot is read),
/// then the slot.
pub(crate) fn tail_call(
    env: &mut Env<'_>,
    r: &[u64; 16],
    count: &mut u32,
) -> Result<TailCallOutcome, FaultKind> {
    let name = "bpf_tail_call";
    let m = env.map_arg(name, r[2])?;
    let Some(map) = env.maps.get(m) else {
        return Err(bad_arg(name, "no such map"));
    };
    if map.def().map_type != MapType::ProgArray {
        return Err(bad_arg(name, "the map is not a BPF_MAP_TYPE_PROG_ARRAY"));
    }
    let index = r[3] as u32;
    if index >= map.def().max_entries {
        return Ok(TailCallOutcome::FallThrough);
    }
    if *count >= MAX_TAIL_CALLS {
        return Ok(TailCallOutcome::FallThrough);
    }
    *count += 1;
    Ok(match map.prog_array_get(index) {
        Some(p) => TailCallOutcome::Jump(p as usize),
        None => TailCallOutcome::FallThrough,
    })
}

/// Table entry for `bpf_tail_call`; the run loop handles the call itself.
pub(super) fn tail_call_unreachable(_: &mut Env<'_>, _: [u64; 5]) -> Result<u64, FaultKind> {
    Err(FaultKind::Unsupported {
        what: "bpf_tail_call reached through the generic helper path".into(),
    })
}
