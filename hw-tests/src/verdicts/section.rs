//! From an ELF section name to what `BPF_PROG_LOAD` needs: program type, expected attach
//! type, program flags, and whether the kernel wants attach information we cannot give.
//!
//! The section name is the only type information an object carries, and loaders disagree on
//! how to read it. The rules are tried in this order, and the rule that decided is recorded
//! ([`TypeSource`]) so that a surprising verdict can be traced to a loader convention:
//!
//! 1. **libbpf** (1.x, strict matching): the `SEC()` names of today's toolchains.
//! 2. **prefix**: the older prefix matching of samples/bpf's `bpf_load.c`, iproute2 and
//!    cilium/ebpf (`socket1`, `xdp_prog`, `kprobe/sys_write`, `tc/entry`, `xdp/tail`).
//! 3. **convention**: objects whose section names carry no type because their loader is told
//!    the type on the command line (iproute2 `tc filter ... bpf obj X sec Y`, `ip route ...
//!    encap bpf out`), listed per object below with the loader that uses them.
//! 4. **default**: nothing matched; loaded as a socket filter, the most general packet type
//!    (PREVAIL's small test programs and the fuzzer objects use free-form names).

use aya_obj::generated::bpf_attach_type as at;
use aya_obj::generated::bpf_prog_type as pt;

use crate::kernel::flags;

/// Which rule chose the program type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeSource {
    /// libbpf's section table.
    Libbpf,
    /// Prefix matching of older loaders (samples/bpf, iproute2, cilium/ebpf).
    Prefix,
    /// A per-object loader convention (the type is given on the loader's command line).
    Convention,
    /// No rule matched: socket filter.
    Default,
}

impl TypeSource {
    /// The TSV spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TypeSource::Libbpf => "libbpf",
            TypeSource::Prefix => "prefix",
            TypeSource::Convention => "convention",
            TypeSource::Default => "default",
        }
    }
}

/// Attach information the kernel requires at load time for some program types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachNeed {
    /// `attach_btf_id` of a kernel function, tracepoint or LSM hook (fentry, fexit, tp_btf,
    /// lsm, iter, fmod_ret).
    BtfId,
    /// `attach_prog_fd` + `attach_btf_id` of the program being replaced (freplace).
    TargetProgram,
    /// The BTF id of a `struct_ops` type and the member index (struct_ops).
    StructOps,
}

impl AttachNeed {
    /// Why the program is not loadable without it.
    pub fn reason(self) -> &'static str {
        match self {
            AttachNeed::BtfId => "needs attach_btf_id (vmlinux BTF id of the attach target)",
            AttachNeed::TargetProgram => {
                "needs attach_prog_fd + attach_btf_id of the program it replaces (freplace)"
            }
            AttachNeed::StructOps => {
                "needs the struct_ops type's BTF id and member index (struct_ops)"
            }
        }
    }
}

/// How to load one section's programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgSpec {
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// `enum bpf_attach_type` passed as `expected_attach_type` (0 when none).
    pub expected_attach_type: u32,
    /// `prog_flags` implied by the section (sleepable, XDP frags).
    pub prog_flags: u32,
    /// Which rule decided.
    pub source: TypeSource,
    /// Attach information the kernel needs and we do not supply.
    pub needs: Option<AttachNeed>,
}

/// How a libbpf section name matches.
#[derive(Clone, Copy)]
enum Match {
    /// The whole name.
    Exact,
    /// `name` or `name/anything` (libbpf's `+` suffix).
    Plus,
}

#[derive(Clone, Copy)]
enum Extra {
    None,
    Sleepable,
    Frags,
    Attach(AttachNeed),
    SleepableAttach(AttachNeed),
}

/// libbpf 1.x's section table (facts: names, program types, expected attach types, flags).
/// Columns: name, match (X exact, P `+`), `BPF_PROG_TYPE_*`, `BPF_*` attach type, extra.
#[rustfmt::skip]
const LIBBPF: &[(&str, Match, pt, u32, Extra)] = {
    use Extra as E;
    use Match::{Exact as X, Plus as P};
    use pt::*;
    const NONE: u32 = 0;
    macro_rules! a { ($t:ident) => { at::$t as u32 }; }
    &[
        ("socket", X, BPF_PROG_TYPE_SOCKET_FILTER, NONE, E::None),
        ("sk_reuseport/migrate", X, BPF_PROG_TYPE_SK_REUSEPORT, a!(BPF_SK_REUSEPORT_SELECT_OR_MIGRATE), E::None),
        ("sk_reuseport", X, BPF_PROG_TYPE_SK_REUSEPORT, a!(BPF_SK_REUSEPORT_SELECT), E::None),
        ("kprobe", P, BPF_PROG_TYPE_KPROBE, NONE, E::None),
        ("uprobe", P, BPF_PROG_TYPE_KPROBE, NONE, E::None),
        ("uprobe.s", P, BPF_PROG_TYPE_KPROBE, NONE, E::Sleepable),
        ("kretprobe", P, BPF_PROG_TYPE_KPROBE, NONE, E::None),
        ("uretprobe", P, BPF_PROG_TYPE_KPROBE, NONE, E::None),
        ("uretprobe.s", P, BPF_PROG_TYPE_KPROBE, NONE, E::Sleepable),
        ("kprobe.multi", P, BPF_PROG_TYPE_KPROBE, a!(BPF_TRACE_KPROBE_MULTI), E::None),
        ("kretprobe.multi", P, BPF_PROG_TYPE_KPROBE, a!(BPF_TRACE_KPROBE_MULTI), E::None),
        ("uprobe.multi", P, BPF_PROG_TYPE_KPROBE, a!(BPF_TRACE_UPROBE_MULTI), E::None),
        ("uretprobe.multi", P, BPF_PROG_TYPE_KPROBE, a!(BPF_TRACE_UPROBE_MULTI), E::None),
        ("ksyscall", P, BPF_PROG_TYPE_KPROBE, NONE, E::None),
        ("kretsyscall", P, BPF_PROG_TYPE_KPROBE, NONE, E::None),
        ("usdt", P, BPF_PROG_TYPE_KPROBE, NONE, E::None),
        ("tc/ingress", X, BPF_PROG_TYPE_SCHED_CLS, a!(BPF_TCX_INGRESS), E::None),
        ("tc/egress", X, BPF_PROG_TYPE_SCHED_CLS, a!(BPF_TCX_EGRESS), E::None),
        ("tcx/ingress", X, BPF_PROG_TYPE_SCHED_CLS, a!(BPF_TCX_INGRESS), E::None),
        ("tcx/egress", X, BPF_PROG_TYPE_SCHED_CLS, a!(BPF_TCX_EGRESS), E::None),
        ("netkit/primary", X, BPF_PROG_TYPE_SCHED_CLS, a!(BPF_NETKIT_PRIMARY), E::None),
        ("netkit/peer", X, BPF_PROG_TYPE_SCHED_CLS, a!(BPF_NETKIT_PEER), E::None),
        ("tc", X, BPF_PROG_TYPE_SCHED_CLS, NONE, E::None),
        ("classifier", X, BPF_PROG_TYPE_SCHED_CLS, NONE, E::None),
        ("action", X, BPF_PROG_TYPE_SCHED_ACT, NONE, E::None),
        ("tracepoint", P, BPF_PROG_TYPE_TRACEPOINT, NONE, E::None),
        ("tp", P, BPF_PROG_TYPE_TRACEPOINT, NONE, E::None),
        ("raw_tracepoint", P, BPF_PROG_TYPE_RAW_TRACEPOINT, NONE, E::None),
        ("raw_tp", P, BPF_PROG_TYPE_RAW_TRACEPOINT, NONE, E::None),
        ("raw_tracepoint.w", P, BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, NONE, E::None),
        ("raw_tp.w", P, BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, NONE, E::None),
        ("tp_btf", P, BPF_PROG_TYPE_TRACING, a!(BPF_TRACE_RAW_TP), E::Attach(AttachNeed::BtfId)),
        ("fentry", P, BPF_PROG_TYPE_TRACING, a!(BPF_TRACE_FENTRY), E::Attach(AttachNeed::BtfId)),
        ("fmod_ret", P, BPF_PROG_TYPE_TRACING, a!(BPF_MODIFY_RETURN), E::Attach(AttachNeed::BtfId)),
        ("fexit", P, BPF_PROG_TYPE_TRACING, a!(BPF_TRACE_FEXIT), E::Attach(AttachNeed::BtfId)),
        ("fentry.s", P, BPF_PROG_TYPE_TRACING, a!(BPF_TRACE_FENTRY), E::SleepableAttach(AttachNeed::BtfId)),
        ("fmod_ret.s", P, BPF_PROG_TYPE_TRACING, a!(BPF_MODIFY_RETURN), E::SleepableAttach(AttachNeed::BtfId)),
        ("fexit.s", P, BPF_PROG_TYPE_TRACING, a!(BPF_TRACE_FEXIT), E::SleepableAttach(AttachNeed::BtfId)),
        ("freplace", P, BPF_PROG_TYPE_EXT, NONE, E::Attach(AttachNeed::TargetProgram)),
        ("lsm", P, BPF_PROG_TYPE_LSM, a!(BPF_LSM_MAC), E::Attach(AttachNeed::BtfId)),
        ("lsm.s", P, BPF_PROG_TYPE_LSM, a!(BPF_LSM_MAC), E::SleepableAttach(AttachNeed::BtfId)),
        ("lsm_cgroup", P, BPF_PROG_TYPE_LSM, a!(BPF_LSM_CGROUP), E::Attach(AttachNeed::BtfId)),
        ("iter", P, BPF_PROG_TYPE_TRACING, a!(BPF_TRACE_ITER), E::Attach(AttachNeed::BtfId)),
        ("iter.s", P, BPF_PROG_TYPE_TRACING, a!(BPF_TRACE_ITER), E::SleepableAttach(AttachNeed::BtfId)),
        ("syscall", X, BPF_PROG_TYPE_SYSCALL, NONE, E::Sleepable),
        ("xdp.frags/devmap", X, BPF_PROG_TYPE_XDP, a!(BPF_XDP_DEVMAP), E::Frags),
        ("xdp/devmap", X, BPF_PROG_TYPE_XDP, a!(BPF_XDP_DEVMAP), E::None),
        ("xdp.frags/cpumap", X, BPF_PROG_TYPE_XDP, a!(BPF_XDP_CPUMAP), E::Frags),
        ("xdp/cpumap", X, BPF_PROG_TYPE_XDP, a!(BPF_XDP_CPUMAP), E::None),
        ("xdp.frags", X, BPF_PROG_TYPE_XDP, a!(BPF_XDP), E::Frags),
        ("xdp", X, BPF_PROG_TYPE_XDP, a!(BPF_XDP), E::None),
        ("perf_event", X, BPF_PROG_TYPE_PERF_EVENT, NONE, E::None),
        ("lwt_in", X, BPF_PROG_TYPE_LWT_IN, NONE, E::None),
        ("lwt_out", X, BPF_PROG_TYPE_LWT_OUT, NONE, E::None),
        ("lwt_xmit", X, BPF_PROG_TYPE_LWT_XMIT, NONE, E::None),
        ("lwt_seg6local", X, BPF_PROG_TYPE_LWT_SEG6LOCAL, NONE, E::None),
        ("sockops", X, BPF_PROG_TYPE_SOCK_OPS, a!(BPF_CGROUP_SOCK_OPS), E::None),
        ("sk_skb/stream_parser", X, BPF_PROG_TYPE_SK_SKB, a!(BPF_SK_SKB_STREAM_PARSER), E::None),
        ("sk_skb/stream_verdict", X, BPF_PROG_TYPE_SK_SKB, a!(BPF_SK_SKB_STREAM_VERDICT), E::None),
        ("sk_skb/verdict", X, BPF_PROG_TYPE_SK_SKB, a!(BPF_SK_SKB_VERDICT), E::None),
        ("sk_skb", X, BPF_PROG_TYPE_SK_SKB, NONE, E::None),
        ("sk_msg", X, BPF_PROG_TYPE_SK_MSG, a!(BPF_SK_MSG_VERDICT), E::None),
        ("lirc_mode2", X, BPF_PROG_TYPE_LIRC_MODE2, a!(BPF_LIRC_MODE2), E::None),
        ("flow_dissector", X, BPF_PROG_TYPE_FLOW_DISSECTOR, a!(BPF_FLOW_DISSECTOR), E::None),
        ("cgroup_skb/ingress", X, BPF_PROG_TYPE_CGROUP_SKB, a!(BPF_CGROUP_INET_INGRESS), E::None),
        ("cgroup_skb/egress", X, BPF_PROG_TYPE_CGROUP_SKB, a!(BPF_CGROUP_INET_EGRESS), E::None),
        ("cgroup/skb", X, BPF_PROG_TYPE_CGROUP_SKB, NONE, E::None),
        ("cgroup/sock_create", X, BPF_PROG_TYPE_CGROUP_SOCK, a!(BPF_CGROUP_INET_SOCK_CREATE), E::None),
        ("cgroup/sock_release", X, BPF_PROG_TYPE_CGROUP_SOCK, a!(BPF_CGROUP_INET_SOCK_RELEASE), E::None),
        ("cgroup/sock", X, BPF_PROG_TYPE_CGROUP_SOCK, a!(BPF_CGROUP_INET_SOCK_CREATE), E::None),
        ("cgroup/post_bind4", X, BPF_PROG_TYPE_CGROUP_SOCK, a!(BPF_CGROUP_INET4_POST_BIND), E::None),
        ("cgroup/post_bind6", X, BPF_PROG_TYPE_CGROUP_SOCK, a!(BPF_CGROUP_INET6_POST_BIND), E::None),
        ("cgroup/bind4", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_INET4_BIND), E::None),
        ("cgroup/bind6", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_INET6_BIND), E::None),
        ("cgroup/connect4", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_INET4_CONNECT), E::None),
        ("cgroup/connect6", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_INET6_CONNECT), E::None),
        ("cgroup/connect_unix", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_UNIX_CONNECT), E::None),
        ("cgroup/sendmsg4", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_UDP4_SENDMSG), E::None),
        ("cgroup/sendmsg6", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_UDP6_SENDMSG), E::None),
        ("cgroup/sendmsg_unix", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_UNIX_SENDMSG), E::None),
        ("cgroup/recvmsg4", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_UDP4_RECVMSG), E::None),
        ("cgroup/recvmsg6", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_UDP6_RECVMSG), E::None),
        ("cgroup/recvmsg_unix", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_UNIX_RECVMSG), E::None),
        ("cgroup/getpeername4", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_INET4_GETPEERNAME), E::None),
        ("cgroup/getpeername6", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_INET6_GETPEERNAME), E::None),
        ("cgroup/getpeername_unix", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_UNIX_GETPEERNAME), E::None),
        ("cgroup/getsockname4", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_INET4_GETSOCKNAME), E::None),
        ("cgroup/getsockname6", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_INET6_GETSOCKNAME), E::None),
        ("cgroup/getsockname_unix", X, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, a!(BPF_CGROUP_UNIX_GETSOCKNAME), E::None),
        ("cgroup/sysctl", X, BPF_PROG_TYPE_CGROUP_SYSCTL, a!(BPF_CGROUP_SYSCTL), E::None),
        ("cgroup/getsockopt", X, BPF_PROG_TYPE_CGROUP_SOCKOPT, a!(BPF_CGROUP_GETSOCKOPT), E::None),
        ("cgroup/setsockopt", X, BPF_PROG_TYPE_CGROUP_SOCKOPT, a!(BPF_CGROUP_SETSOCKOPT), E::None),
        ("cgroup/dev", X, BPF_PROG_TYPE_CGROUP_DEVICE, a!(BPF_CGROUP_DEVICE), E::None),
        ("struct_ops", P, BPF_PROG_TYPE_STRUCT_OPS, NONE, E::Attach(AttachNeed::StructOps)),
        ("struct_ops.s", P, BPF_PROG_TYPE_STRUCT_OPS, NONE, E::SleepableAttach(AttachNeed::StructOps)),
        ("sk_lookup", X, BPF_PROG_TYPE_SK_LOOKUP, a!(BPF_SK_LOOKUP), E::None),
        ("netfilter", X, BPF_PROG_TYPE_NETFILTER, a!(BPF_NETFILTER), E::None),
    ]
};

/// Prefixes of the older loaders, tried in order on the raw section name (so `socket1`,
/// `xdp_cpu_map0` and `tc_mark` match, as `strncmp` in samples/bpf's `bpf_load.c` did).
const PREFIXES: &[(&str, pt)] = &[
    ("socket", pt::BPF_PROG_TYPE_SOCKET_FILTER),
    ("xdp", pt::BPF_PROG_TYPE_XDP),
    ("kprobe", pt::BPF_PROG_TYPE_KPROBE),
    ("kretprobe", pt::BPF_PROG_TYPE_KPROBE),
    ("uprobe", pt::BPF_PROG_TYPE_KPROBE),
    ("uretprobe", pt::BPF_PROG_TYPE_KPROBE),
    ("tracepoint", pt::BPF_PROG_TYPE_TRACEPOINT),
    ("tp/", pt::BPF_PROG_TYPE_TRACEPOINT),
    ("raw_tracepoint", pt::BPF_PROG_TYPE_RAW_TRACEPOINT),
    ("raw_tp", pt::BPF_PROG_TYPE_RAW_TRACEPOINT),
    ("perf_event", pt::BPF_PROG_TYPE_PERF_EVENT),
    ("cgroup/skb", pt::BPF_PROG_TYPE_CGROUP_SKB),
    ("cgroup_skb", pt::BPF_PROG_TYPE_CGROUP_SKB),
    ("cgroup/sock", pt::BPF_PROG_TYPE_CGROUP_SOCK),
    ("sockops", pt::BPF_PROG_TYPE_SOCK_OPS),
    ("sk_skb", pt::BPF_PROG_TYPE_SK_SKB),
    ("sk_msg", pt::BPF_PROG_TYPE_SK_MSG),
    ("classifier", pt::BPF_PROG_TYPE_SCHED_CLS),
    ("tc", pt::BPF_PROG_TYPE_SCHED_CLS),
    ("action", pt::BPF_PROG_TYPE_SCHED_ACT),
    ("lwt_in", pt::BPF_PROG_TYPE_LWT_IN),
    ("lwt_out", pt::BPF_PROG_TYPE_LWT_OUT),
    ("lwt_xmit", pt::BPF_PROG_TYPE_LWT_XMIT),
];

/// Per-object loader conventions: (object path contains, section predicate, type, loader).
/// Objects are named by their path relative to the corpus root.
type SectionPred = fn(&str) -> bool;
const CONVENTIONS: &[(&str, SectionPred, pt, &str)] = &[
    // Old Cilium datapath: iproute2 `tc ... bpf da obj bpf_lxc.o sec from-container`; tail
    // calls (`2/N`, `1/0x..`) are installed into a prog array of the same type.
    (
        "/bpf_xdp",
        |_| true,
        pt::BPF_PROG_TYPE_XDP,
        "cilium xdp loader",
    ),
    (
        "ebpf-samples/cilium/",
        |_| true,
        pt::BPF_PROG_TYPE_SCHED_CLS,
        "iproute2 tc",
    ),
    (
        "ebpf-samples/bpf_cilium_test/",
        |_| true,
        pt::BPF_PROG_TYPE_SCHED_CLS,
        "iproute2 tc",
    ),
    // OVS eBPF datapath: tc programs and tail calls, plus one AF_XDP program.
    (
        "ebpf-samples/ovs/",
        |s| s.contains("xdp"),
        pt::BPF_PROG_TYPE_XDP,
        "ovs",
    ),
    (
        "ebpf-samples/ovs/",
        |_| true,
        pt::BPF_PROG_TYPE_SCHED_CLS,
        "ovs tc",
    ),
    // samples/bpf tc objects loaded with `tc filter add ... bpf obj X sec Y`.
    (
        "linux/tcbpf1_kern.o",
        |_| true,
        pt::BPF_PROG_TYPE_SCHED_CLS,
        "iproute2 tc",
    ),
    (
        "linux/tc_l2_redirect_kern.o",
        |_| true,
        pt::BPF_PROG_TYPE_SCHED_CLS,
        "iproute2 tc",
    ),
    (
        "linux/test_cgrp2_tc_kern.o",
        |_| true,
        pt::BPF_PROG_TYPE_SCHED_CLS,
        "iproute2 tc",
    ),
    (
        "prototype-kernel/tc_bench01_redirect_kern.o",
        |_| true,
        pt::BPF_PROG_TYPE_SCHED_CLS,
        "iproute2 tc",
    ),
    // samples/bpf lwt_len_hist.sh: `ip route ... encap bpf out obj lwt_len_hist_kern.o sec len_hist`.
    (
        "linux/lwt_len_hist_kern.o",
        |_| true,
        pt::BPF_PROG_TYPE_LWT_OUT,
        "iproute2 lwt out",
    ),
    // Suricata attaches its filters with SO_ATTACH_BPF / PACKET_FANOUT_DATA.
    (
        "ebpf-samples/suricata/",
        |s| !s.starts_with("xdp"),
        pt::BPF_PROG_TYPE_SOCKET_FILTER,
        "suricata socket filter",
    ),
];

fn libbpf_matches(name: &str, pattern: &str, m: Match) -> bool {
    match m {
        Match::Exact => name == pattern,
        Match::Plus => name
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
    }
}

fn spec(prog_type: pt, attach: u32, extra: Extra, source: TypeSource) -> ProgSpec {
    let (prog_flags, needs) = match extra {
        Extra::None => (0, None),
        Extra::Sleepable => (flags::SLEEPABLE, None),
        Extra::Frags => (flags::XDP_HAS_FRAGS, None),
        Extra::Attach(n) => (0, Some(n)),
        Extra::SleepableAttach(n) => (flags::SLEEPABLE, Some(n)),
    };
    ProgSpec {
        prog_type: prog_type as u32,
        expected_attach_type: attach,
        prog_flags,
        source,
        needs,
    }
}

/// How to load the programs of section `section` of the object at corpus path `object`.
pub fn classify(object: &str, section: &str) -> ProgSpec {
    // rbpf-style `.classifier`: the leading dot is not part of the type.
    let name = section.strip_prefix('.').unwrap_or(section);
    // A libbpf name is unambiguous; a per-object convention beats the looser prefix match
    // (cilium's `bpf_xdp.o` names its XDP programs `from-netdev`).
    let conventional = CONVENTIONS
        .iter()
        .find(|(obj, pred, _, _)| object.contains(obj) && pred(name));
    if let Some(&(_, _, t, a, e)) = LIBBPF.iter().find(|(p, m, ..)| libbpf_matches(name, p, *m)) {
        return spec(t, a, e, TypeSource::Libbpf);
    }
    if let Some(&(_, _, t, _)) = conventional {
        return spec(t, 0, Extra::None, TypeSource::Convention);
    }
    if let Some(&(_, t)) = PREFIXES.iter().find(|(p, _)| name.starts_with(p)) {
        return spec(t, 0, Extra::None, TypeSource::Prefix);
    }
    spec(
        pt::BPF_PROG_TYPE_SOCKET_FILTER,
        0,
        Extra::None,
        TypeSource::Default,
    )
}

/// `BPF_PROG_TYPE_XDP` → `xdp`, for tables.
pub fn prog_type_name(n: u32) -> String {
    const NAMES: [&str; 33] = [
        "unspec",
        "socket_filter",
        "kprobe",
        "sched_cls",
        "sched_act",
        "tracepoint",
        "xdp",
        "perf_event",
        "cgroup_skb",
        "cgroup_sock",
        "lwt_in",
        "lwt_out",
        "lwt_xmit",
        "sock_ops",
        "sk_skb",
        "cgroup_device",
        "sk_msg",
        "raw_tracepoint",
        "cgroup_sock_addr",
        "lwt_seg6local",
        "lirc_mode2",
        "sk_reuseport",
        "flow_dissector",
        "cgroup_sysctl",
        "raw_tracepoint_writable",
        "cgroup_sockopt",
        "tracing",
        "struct_ops",
        "ext",
        "lsm",
        "sk_lookup",
        "syscall",
        "netfilter",
    ];
    NAMES
        .get(n as usize)
        .map_or_else(|| format!("type{n}"), |s| (*s).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(object: &str, section: &str) -> (String, TypeSource) {
        let s = classify(object, section);
        (prog_type_name(s.prog_type), s.source)
    }

    #[test]
    fn libbpf_names_are_exact_or_slash_separated() {
        assert_eq!(ty("x.o", "xdp"), ("xdp".to_string(), TypeSource::Libbpf));
        assert_eq!(
            ty("x.o", "kprobe/sys_write"),
            ("kprobe".to_string(), TypeSource::Libbpf)
        );
        assert_eq!(
            ty("x.o", "cgroup/connect4").0,
            "cgroup_sock_addr".to_string()
        );
        // `xdp_prog` is not libbpf's `xdp`, but the old prefix loaders read it as XDP.
        assert_eq!(
            ty("x.o", "xdp_prog"),
            ("xdp".to_string(), TypeSource::Prefix)
        );
        assert_eq!(
            ty("x.o", "socket1"),
            ("socket_filter".to_string(), TypeSource::Prefix)
        );
        assert_eq!(ty("x.o", "tc/entry").0, "sched_cls");
        assert_eq!(ty("rbpf/a.o", ".classifier").0, "sched_cls");
    }

    #[test]
    fn attach_needs_and_flags() {
        let f = classify("x.o", "fentry/tcp_close");
        assert_eq!(f.needs, Some(AttachNeed::BtfId));
        assert_eq!(f.expected_attach_type, at::BPF_TRACE_FENTRY as u32);
        assert_eq!(
            classify("x.o", "xdp.frags").prog_flags,
            flags::XDP_HAS_FRAGS
        );
        assert_eq!(
            classify("x.o", "lsm.s/file_open").prog_flags,
            flags::SLEEPABLE
        );
        assert_eq!(classify("x.o", "kprobe/x").needs, None);
    }

    #[test]
    fn conventions_and_default() {
        assert_eq!(
            ty("ebpf-samples/cilium/bpf_lxc.o", "2/1"),
            ("sched_cls".to_string(), TypeSource::Convention)
        );
        assert_eq!(ty("ebpf-samples/cilium/bpf_xdp.o", "from-netdev").0, "xdp");
        assert_eq!(ty("ebpf-samples/ovs/datapath.o", "af_xdp").0, "xdp");
        assert_eq!(ty("ebpf-samples/ovs/datapath.o", "tail-32").0, "sched_cls");
        assert_eq!(
            ty("ebpf-samples/build/divzero.o", "test"),
            ("socket_filter".to_string(), TypeSource::Default)
        );
    }
}
