//! Everything a run touches besides registers: memory, packet, context, maps, and the
//! deterministic stand-ins for the kernel's clock and random numbers.
//!
//! Helpers receive an [`Env`]; the run loop owns one for the duration of a run. Keeping it a
//! bundle of borrows of the [`Vm`](super::Vm)'s parts lets the Vm reuse every buffer across
//! runs (no allocation per run in steady state).

use super::VmConfig;
use super::context::{Ctx, Packet};
use super::fault::FaultKind;
use super::memory::{FIRST_MAP, Kind, MAP_HANDLE, Memory, Window, split};
use crate::MapType;
use crate::maps::{BPF_F_RDONLY_PROG, MapSet};

/// Where a program asked the packet to go (`bpf_redirect`, `bpf_redirect_map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirect {
    /// `bpf_redirect(ifindex, flags)`.
    Ifindex {
        /// Target interface.
        ifindex: u32,
        /// Flags as passed (`BPF_F_INGRESS` for tc).
        flags: u64,
    },
    /// `bpf_redirect_map(map, key, flags)` with a present entry.
    Map {
        /// Map index in the program.
        map: u32,
        /// Key.
        key: u32,
        /// Flags as passed.
        flags: u64,
    },
}

/// State that lives across runs of one Vm (like the kernel's, it is not reset per run).
pub(crate) struct RunState {
    /// Calls to the clock helpers so far.
    pub(crate) clock_ticks: u64,
    /// xorshift state of `bpf_get_prandom_u32`.
    pub(crate) rng: u64,
    /// Lines printed by `bpf_trace_printk` in the current run.
    pub(crate) printk: Vec<String>,
    /// The redirect requested in the current run.
    pub(crate) redirect: Option<Redirect>,
    /// Reusable buffer for helper arguments copied out of program memory.
    pub(crate) scratch: Vec<u8>,
    /// Second reusable buffer (a key and a value at once).
    pub(crate) scratch2: Vec<u8>,
}

impl RunState {
    pub(crate) fn new(cfg: &VmConfig) -> RunState {
        RunState {
            clock_ticks: 0,
            // splitmix-style scramble so that seeds 0, 1, 2 give unrelated streams; never 0.
            rng: scramble(cfg.prandom_seed) | 1,
            printk: Vec::new(),
            redirect: None,
            scratch: Vec::with_capacity(512),
            scratch2: Vec::with_capacity(512),
        }
    }
}

pub(crate) fn scramble(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The mutable world of one run.
pub(crate) struct Env<'v> {
    pub(crate) mem: &'v mut Memory,
    pub(crate) pkt: &'v mut Packet,
    pub(crate) ctx: &'v mut Ctx,
    pub(crate) maps: &'v mut MapSet,
    pub(crate) st: &'v mut RunState,
    pub(crate) cfg: &'v VmConfig,
}

impl Env<'_> {
    /// The map index a map-handle argument names.
    pub(crate) fn map_arg(&self, helper: &'static str, v: u64) -> Result<usize, FaultKind> {
        let (slot, off) = split(v);
        if slot == MAP_HANDLE && (off as usize) < self.maps.len() {
            Ok(off as usize)
        } else {
            Err(FaultKind::HelperArg {
                helper,
                reason: format!("argument {v:#x} is not a map"),
            })
        }
    }

    /// Next value of the deterministic clock: `clock_start_ns + ticks * clock_step_ns`.
    pub(crate) fn tick(&mut self) -> u64 {
        self.st.clock_ticks += 1;
        self.cfg
            .clock_start_ns
            .wrapping_add(self.st.clock_ticks.wrapping_mul(self.cfg.clock_step_ns))
    }

    /// Next pseudo-random u32 (xorshift64*).
    pub(crate) fn prandom(&mut self) -> u32 {
        let mut x = self.st.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.st.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }
}

/// Publishes the windows of all map slabs (ring buffers expose only reserved records, perf
/// arrays nothing; `BPF_F_RDONLY_PROG` maps are read-only).
///
/// Windows are derived from each slab's root pointer ([`Map::slab_raw`](crate::maps::Map)),
/// which stays valid across later `&mut` borrows of the map: map helpers (lookup, update,
/// delete) need not call this again. It runs when the Vm is created and after the map set
/// was handed out mutably (`Vm::maps_mut`), where a map could have been replaced.
pub(crate) fn map_maps(mem: &mut Memory, maps: &mut MapSet) {
    for (i, map) in maps.iter().enumerate() {
        let slot = FIRST_MAP + i;
        let def = map.def();
        let hidden = matches!(def.map_type, MapType::Ringbuf | MapType::PerfEventArray);
        let readonly = def.flags & BPF_F_RDONLY_PROG != 0;
        if hidden {
            mem.set(slot, Window::EMPTY, Window::EMPTY);
            continue;
        }
        let (base, len) = map.slab_raw();
        // SAFETY: `base..base+len` is the slab, one allocation that lives as long as the map
        // and is reached by the program only through the region table during a run.
        let w = unsafe { Window::part(base, len, 0, len) };
        mem.set(slot, w, if readonly { Window::EMPTY } else { w });
    }
    // Ring buffer records point into their map's slab too.
    for slot in FIRST_MAP + maps.len()..mem.len() {
        if let Kind::Ringbuf(map) = mem.kind(slot)
            && let Some(m) = maps.get(map as usize)
        {
            mem.rebase(slot, m.slab_raw().0);
        }
    }
}
