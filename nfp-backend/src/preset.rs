//! What the target NIC's firmware offers the offload compiler: the limits the kernel's NFP
//! driver reads from the firmware's capability TLVs and control BAR (nfp-model.md §1.7, §2.3,
//! §2.4). The compiler checks programs against one preset; nic-sim adds timing on top.

/// Firmware capabilities and limits relevant to compiling one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicLimits {
    /// Preset name, as `--nic` spells it.
    pub name: &'static str,
    /// Instruction-store slots available to one program (NFP instructions, the 8-slot
    /// prefetch tail included).
    pub max_insns: usize,
    /// Stack bytes per thread the firmware reserves in local memory.
    pub stack_bytes: u32,
    /// Packet bytes the program can reach in CTM (the "HW packet split boundary"): the
    /// verifier's maximum packet offset must not exceed it.
    pub ctm_packet_bytes: u32,
    /// Map helpers the firmware implements (lookup is always there).
    pub fw_map_update: bool,
    /// `bpf_map_delete_elem` in firmware.
    pub fw_map_delete: bool,
    /// `bpf_get_prandom_u32` (FW capability RANDOM).
    pub fw_random: bool,
    /// `bpf_xdp_adjust_head` (FW capability ADJUST_HEAD).
    pub fw_adjust_head: bool,
    /// `bpf_xdp_adjust_tail` (FW capability ADJUST_TAIL, shrink only).
    pub fw_adjust_tail: bool,
    /// `bpf_perf_event_output` through control messages.
    pub fw_perf_event_output: bool,
    /// Writes to `xdp_md.rx_queue_index` (FW capability QUEUE_SELECT).
    pub fw_queue_select: bool,
    /// Map count limit.
    pub max_maps: u32,
    /// Total entries over all maps.
    pub max_map_entries: u64,
    /// Largest key in bytes.
    pub max_key_size: u32,
    /// Largest value in bytes.
    pub max_value_size: u32,
    /// Largest key + value (each rounded up to 8 bytes).
    pub max_entry_size: u32,
}

impl NicLimits {
    /// Agilio CX (NFP-4000) running the CoreNIC firmware's eBPF datapath.
    pub const AGILIO_CX: NicLimits = NicLimits {
        name: "agilio-cx",
        max_insns: 2560,
        stack_bytes: 512,
        // 2 KiB CTM buffers, half of CTM to the packet engine: INL_MTU * 64 - 32.
        ctm_packet_bytes: 2048 - 32,
        fw_map_update: true,
        fw_map_delete: true,
        fw_random: true,
        fw_adjust_head: true,
        fw_adjust_tail: true,
        fw_perf_event_output: true,
        fw_queue_select: true,
        max_maps: 127,
        max_map_entries: 2_048_000,
        max_key_size: 56,
        max_value_size: 56,
        max_entry_size: 64,
    };

    /// Every preset, first is the default.
    pub const ALL: &'static [NicLimits] = &[NicLimits::AGILIO_CX];

    /// Finds a preset by name.
    pub fn by_name(name: &str) -> Option<&'static NicLimits> {
        NicLimits::ALL.iter().find(|p| p.name == name)
    }
}

impl Default for NicLimits {
    fn default() -> Self {
        NicLimits::AGILIO_CX
    }
}
