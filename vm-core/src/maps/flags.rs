//! The kernel's UAPI flag values the map layer interprets (from `include/uapi/linux/bpf.h`).

/// Update flag: create or replace.
pub const BPF_ANY: u64 = 0;
/// Update flag: create only; `EEXIST` if the key exists.
pub const BPF_NOEXIST: u64 = 1;
/// Update flag: replace only; `ENOENT` if the key is missing.
pub const BPF_EXIST: u64 = 2;
/// Update flag: take the value's `bpf_spin_lock`. No value here has one, so it is `EINVAL`.
pub const BPF_F_LOCK: u64 = 4;

/// `map_flags`: allocate hash elements on demand (accepted; our slabs are always preallocated).
pub const BPF_F_NO_PREALLOC: u32 = 1 << 0;
/// `map_flags`: per-CPU LRU lists (accepted; our LRU is one exact list).
pub const BPF_F_NO_COMMON_LRU: u32 = 1 << 1;
/// `map_flags`: user space may only read.
pub const BPF_F_RDONLY: u32 = 1 << 3;
/// `map_flags`: user space may only write.
pub const BPF_F_WRONLY: u32 = 1 << 4;
/// `map_flags`: programs may only read (`.rodata`).
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `map_flags`: programs may only write.
pub const BPF_F_WRONLY_PROG: u32 = 1 << 8;

/// `bpf_perf_event_output` flags: the low 32 bits select the perf-event-array index.
pub const BPF_F_INDEX_MASK: u64 = 0xffff_ffff;
/// `bpf_perf_event_output` index meaning "the current CPU".
pub const BPF_F_CURRENT_CPU: u64 = BPF_F_INDEX_MASK;
/// `bpf_skb_output`/`bpf_xdp_output`: bits 32..52 ask to append that many packet bytes (the
/// interpreter appends them to the data before calling [`Map::perf_output`](super::Map::perf_output)).
pub const BPF_F_CTXLEN_MASK: u64 = 0xfffff << 32;

/// Ring buffer submit/output flag: do not wake the consumer.
pub const BPF_RB_NO_WAKEUP: u64 = 1 << 0;
/// Ring buffer submit/output flag: always wake the consumer.
pub const BPF_RB_FORCE_WAKEUP: u64 = 1 << 1;
/// `bpf_ringbuf_query`: bytes produced and not yet consumed.
pub const BPF_RB_AVAIL_DATA: u64 = 0;
/// `bpf_ringbuf_query`: data area size.
pub const BPF_RB_RING_SIZE: u64 = 1;
/// `bpf_ringbuf_query`: consumer position.
pub const BPF_RB_CONS_POS: u64 = 2;
/// `bpf_ringbuf_query`: producer position.
pub const BPF_RB_PROD_POS: u64 = 3;
