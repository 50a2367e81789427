//! A loaded program: decoded instructions, its type and the maps it refers to.
//!
//! Map references inside the code use the convention of the kernel's fd-based `lddw`
//! (`LdImm64::MapFd(fd)` / `MapValue { fd, off }`), where `fd` is the index into
//! [`Program::maps`]. Whoever loads the program into a real kernel (hw-tests) swaps these
//! indices for real file descriptors.

use crate::isa::{self, DecodeError, Insn, RawInsn};

/// Program types we model. Numbers are the kernel's `enum bpf_prog_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgType {
    /// `BPF_PROG_TYPE_SOCKET_FILTER` (1): context is `__sk_buff`.
    SocketFilter,
    /// `BPF_PROG_TYPE_SCHED_CLS` (3), tc: context is `__sk_buff`.
    SchedCls,
    /// `BPF_PROG_TYPE_XDP` (6): context is `xdp_md`.
    Xdp,
    /// The bpf_conformance convention: r1 = input buffer, r2 = its length; no kernel type.
    Mem,
    /// Any other kernel program type, by number (loadable, not runnable here).
    Other(u32),
}

impl ProgType {
    /// The kernel's `enum bpf_prog_type` value (`Mem` loads as XDP, as bpf_conformance does).
    pub fn kernel_number(self) -> u32 {
        match self {
            ProgType::SocketFilter => 1,
            ProgType::SchedCls => 3,
            ProgType::Xdp | ProgType::Mem => 6,
            ProgType::Other(n) => n,
        }
    }

    /// From the kernel's number (0, unspecified, is treated as a socket filter as test_verifier does).
    pub fn from_kernel_number(n: u32) -> Self {
        match n {
            0 | 1 => ProgType::SocketFilter,
            3 => ProgType::SchedCls,
            6 => ProgType::Xdp,
            n => ProgType::Other(n),
        }
    }

    /// Program type implied by an ELF section name (libbpf's conventions).
    pub fn from_section(section: &str) -> Self {
        let head = section.split('/').next().unwrap_or(section);
        match head {
            "xdp" | "xdp.frags" => ProgType::Xdp,
            "tc" | "classifier" | "tcx" | "action" => ProgType::SchedCls,
            "socket" | "socket_filter" => ProgType::SocketFilter,
            "kprobe" | "kretprobe" | "uprobe" | "uretprobe" => ProgType::Other(2),
            "tracepoint" | "tp" => ProgType::Other(5),
            "perf_event" => ProgType::Other(7),
            "cgroup_skb" => ProgType::Other(8),
            "raw_tracepoint" | "raw_tp" => ProgType::Other(17),
            "sk_skb" => ProgType::Other(14),
            "sk_msg" => ProgType::Other(16),
            "sockops" => ProgType::Other(13),
            "lwt_in" | "lwt_out" | "lwt_xmit" => ProgType::Other(10),
            _ if section.starts_with("xdp") => ProgType::Xdp,
            _ if section.starts_with("socket") => ProgType::SocketFilter,
            _ => ProgType::Other(0),
        }
    }

    /// Name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ProgType::SocketFilter => "socket",
            ProgType::SchedCls => "tc",
            ProgType::Xdp => "xdp",
            ProgType::Mem => "mem",
            ProgType::Other(_) => "other",
        }
    }
}

/// Map types, with the kernel's `enum bpf_map_type` numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapType {
    /// 1
    Hash,
    /// 2
    Array,
    /// 3
    ProgArray,
    /// 4
    PerfEventArray,
    /// 5
    PercpuHash,
    /// 6
    PercpuArray,
    /// 9
    LruHash,
    /// 10
    LruPercpuHash,
    /// 14
    Devmap,
    /// 16
    Cpumap,
    /// 17
    Xskmap,
    /// 27
    Ringbuf,
    /// Any other type, by number; creating it in the interpreter fails with a clear error.
    Other(u32),
}

impl MapType {
    /// From the kernel's number.
    pub fn from_kernel_number(n: u32) -> Self {
        match n {
            1 => MapType::Hash,
            2 => MapType::Array,
            3 => MapType::ProgArray,
            4 => MapType::PerfEventArray,
            5 => MapType::PercpuHash,
            6 => MapType::PercpuArray,
            9 => MapType::LruHash,
            10 => MapType::LruPercpuHash,
            14 => MapType::Devmap,
            16 => MapType::Cpumap,
            17 => MapType::Xskmap,
            27 => MapType::Ringbuf,
            n => MapType::Other(n),
        }
    }

    /// The kernel's number.
    pub fn kernel_number(self) -> u32 {
        match self {
            MapType::Hash => 1,
            MapType::Array => 2,
            MapType::ProgArray => 3,
            MapType::PerfEventArray => 4,
            MapType::PercpuHash => 5,
            MapType::PercpuArray => 6,
            MapType::LruHash => 9,
            MapType::LruPercpuHash => 10,
            MapType::Devmap => 14,
            MapType::Cpumap => 16,
            MapType::Xskmap => 17,
            MapType::Ringbuf => 27,
            MapType::Other(n) => n,
        }
    }
}

/// A map as a program declares it (ELF map section, `.data`/`.rodata`/`.bss`, or a test fixture).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    /// Symbol or section name.
    pub name: String,
    /// Kind of map.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity (for ringbuf: the buffer size in bytes).
    pub max_entries: u32,
    /// `map_flags` (`BPF_F_NO_PREALLOC`, `BPF_F_RDONLY_PROG`, ...).
    pub flags: u32,
    /// Initial contents of element 0 for global-data maps (`.data`, `.rodata`).
    pub initial_value: Option<Vec<u8>>,
}

/// A program ready to run or verify.
#[derive(Debug, Clone)]
pub struct Program {
    /// Function or section name.
    pub name: String,
    /// ELF section it came from, if any.
    pub section: Option<String>,
    /// Program type.
    pub prog_type: ProgType,
    /// One entry per 8-byte slot; an `lddw`'s second slot is [`Insn::LdImm64Tail`].
    pub insns: Vec<Insn>,
    /// Maps referred to by `lddw` map pseudo sources, indexed by their fd field.
    pub maps: Vec<MapDef>,
}

impl Program {
    /// Decodes raw slots into a program with no maps.
    pub fn from_raw(name: &str, prog_type: ProgType, raw: &[RawInsn]) -> Result<Self, DecodeError> {
        Ok(Program {
            name: name.to_string(),
            section: None,
            prog_type,
            insns: isa::decode_program(raw)?,
            maps: Vec::new(),
        })
    }

    /// The program's raw slots.
    pub fn raw(&self) -> Vec<RawInsn> {
        isa::encode_program(&self.insns)
    }
}
