//! What a simulation reports: every input frame's fate ([`Verdict`]) and the `sim` JSON
//! object of the CLI contract ([`SimReport`]).
//!
//! Accounting invariant: every input frame is counted exactly once, so
//! `packets = aborted + drop + pass + tx + redirect + runt + queue_drops`.

use serde::Serialize;

/// The fate of one input frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// XDP_ABORTED (0), or the program faulted at run time (also the default: a packet
    /// whose end was never recorded counts as aborted).
    #[default]
    Aborted,
    /// XDP_DROP (1), and any return value above 3 that is not a reported redirect: the NFP
    /// firmware drops those (nfp-model §2.5), so they count as drops.
    Drop,
    /// XDP_PASS (2): to the host.
    Pass,
    /// XDP_TX (3): back out of the port.
    Tx,
    /// XDP_REDIRECT (4) with a redirect target the engine reported (never on the NFP).
    Redirect,
    /// Shorter than an Ethernet header: never reached the program.
    Runt,
    /// Arrived while its lane's queue was full: never reached the program.
    QueueDrop,
}

impl Verdict {
    /// Every verdict, in declaration order (`ALL[v as usize] == v`).
    pub const ALL: [Verdict; 7] = [
        Verdict::Aborted,
        Verdict::Drop,
        Verdict::Pass,
        Verdict::Tx,
        Verdict::Redirect,
        Verdict::Runt,
        Verdict::QueueDrop,
    ];

    /// Maps an XDP program's r0 the way the NFP firmware does (low 32 bits, as the kernel
    /// reads an XDP return value).
    pub fn from_xdp(retval: u64, redirect: bool) -> Verdict {
        match retval as u32 {
            0 => Verdict::Aborted,
            1 => Verdict::Drop,
            2 => Verdict::Pass,
            3 => Verdict::Tx,
            4 if redirect => Verdict::Redirect,
            _ => Verdict::Drop,
        }
    }

    /// Whether `--out` gets the frame (passed or transmitted).
    pub fn is_output(self) -> bool {
        matches!(self, Verdict::Pass | Verdict::Tx)
    }
}

/// Verdict counts (`queue_drops` is reported beside them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Verdicts {
    /// See [`Verdict::Aborted`].
    pub aborted: u64,
    /// See [`Verdict::Drop`].
    pub drop: u64,
    /// See [`Verdict::Pass`].
    pub pass: u64,
    /// See [`Verdict::Tx`].
    pub tx: u64,
    /// See [`Verdict::Redirect`].
    pub redirect: u64,
    /// See [`Verdict::Runt`].
    pub runt: u64,
}

impl Verdicts {
    /// Counts one frame; returns whether it was a queue drop (counted elsewhere).
    pub fn count(&mut self, v: Verdict) -> bool {
        self.count_n(v, 1)
    }

    /// Counts `n` frames of verdict `v`; returns whether they are queue drops (counted
    /// elsewhere).
    pub fn count_n(&mut self, v: Verdict, n: u64) -> bool {
        match v {
            Verdict::Aborted => self.aborted += n,
            Verdict::Drop => self.drop += n,
            Verdict::Pass => self.pass += n,
            Verdict::Tx => self.tx += n,
            Verdict::Redirect => self.redirect += n,
            Verdict::Runt => self.runt += n,
            Verdict::QueueDrop => return true,
        }
        false
    }

    /// Adds another set of counts.
    pub fn add(&mut self, o: &Verdicts) {
        self.aborted += o.aborted;
        self.drop += o.drop;
        self.pass += o.pass;
        self.tx += o.tx;
        self.redirect += o.redirect;
        self.runt += o.runt;
    }

    /// Frames with a verdict.
    pub fn total(&self) -> u64 {
        self.aborted + self.drop + self.pass + self.tx + self.redirect + self.runt
    }
}

/// Two percentiles of a per-packet quantity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles<T> {
    /// Median.
    pub p50: T,
    /// 99th percentile.
    pub p99: T,
}

/// The `sim` report. The first fields are the CLI contract's; the rest are extensions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SimReport {
    /// Always 1.
    pub schema: u32,
    /// Input frames.
    pub packets: u64,
    /// Fates of the frames that were not queue drops.
    pub verdicts: Verdicts,
    /// Frames dropped because their lane's queue was full.
    pub queue_drops: u64,
    /// Modelled throughput: the line rate or what the MEs sustain, whichever is lower.
    pub modeled_mpps: f64,
    /// Line rate for this traffic's frame sizes (20 bytes of wire overhead per frame).
    pub line_rate_mpps: f64,
    /// Cycles a packet costs its thread: busy + memory wait, queueing excluded.
    pub cycles_per_packet: Percentiles<u64>,
    /// Per ME: busy cycles / simulated time.
    pub core_utilisation: Vec<f64>,
    /// Host simulation speed (input frames per wall-clock second).
    pub host_packets_per_sec: f64,
    /// Frames whose verdict or bytes differ from the reference engine, plus one per ME whose
    /// final maps differ (0 without a reference).
    pub mismatches: u64,

    /// Preset name.
    pub nic: String,
    /// MEs simulated.
    pub mes: u32,
    /// Hardware threads per ME.
    pub threads_per_me: u32,
    /// Host threads used (never changes any other field).
    pub host_threads: usize,
    /// ME busy cycles per packet (instruction issue only).
    pub busy_cycles_per_packet: Percentiles<u64>,
    /// Arrival to completion (queueing, memory waits and sharing the ME included), cycles.
    pub latency_cycles: Percentiles<u64>,
    /// The same in nanoseconds.
    pub latency_ns: Percentiles<f64>,
    /// Offered load: packets per second the port delivers (equals `line_rate_mpps`: the
    /// traffic is replayed back to back at line rate).
    pub offered_mpps: f64,
    /// What all MEs sustain together with perfectly even load: MEs × one ME's capacity with
    /// every thread busy, at the average per-packet cost.
    pub combined_capacity_mpps: f64,
    /// Simulated time from the first arrival to the last completion, in ns.
    pub simulated_ns: f64,
    /// Map values written by more than one ME and merged as counters (see `merge`).
    pub map_merge_conflicts: u64,
    /// The first mismatch, described (frame index, what differs).
    pub first_mismatch: Option<String>,
}

impl SimReport {
    /// Checks the accounting invariant.
    pub fn accounted(&self) -> bool {
        self.packets == self.verdicts.total() + self.queue_drops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_verdicts_in_discriminant_order() {
        for (i, v) in Verdict::ALL.iter().enumerate() {
            assert_eq!(*v as usize, i);
        }
        let mut c = Verdicts::default();
        for (i, v) in Verdict::ALL.iter().enumerate() {
            assert_eq!(c.count_n(*v, i as u64 + 1), *v == Verdict::QueueDrop);
        }
        assert_eq!(c.total(), 1 + 2 + 3 + 4 + 5 + 6);
    }

    #[test]
    fn xdp_mapping_the_nfp_way() {
        assert_eq!(Verdict::from_xdp(0, false), Verdict::Aborted);
        assert_eq!(Verdict::from_xdp(1, false), Verdict::Drop);
        assert_eq!(Verdict::from_xdp(2, false), Verdict::Pass);
        assert_eq!(Verdict::from_xdp(3, false), Verdict::Tx);
        assert_eq!(Verdict::from_xdp(4, false), Verdict::Drop);
        assert_eq!(Verdict::from_xdp(4, true), Verdict::Redirect);
        assert_eq!(Verdict::from_xdp(99, false), Verdict::Drop);
        assert_eq!(Verdict::from_xdp(0x1_0000_0002, false), Verdict::Pass);
    }

    #[test]
    fn report_serialises_contract_fields() {
        let r = SimReport {
            schema: 1,
            packets: 3,
            verdicts: Verdicts {
                pass: 1,
                runt: 1,
                ..Verdicts::default()
            },
            queue_drops: 1,
            ..SimReport::default()
        };
        assert!(r.accounted());
        let v = serde_json::to_value(&r).expect("json");
        for k in [
            "schema",
            "packets",
            "verdicts",
            "queue_drops",
            "modeled_mpps",
            "line_rate_mpps",
            "cycles_per_packet",
            "core_utilisation",
            "host_packets_per_sec",
            "mismatches",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        for k in ["aborted", "drop", "pass", "tx", "redirect", "runt"] {
            assert!(v["verdicts"].get(k).is_some(), "{k}");
        }
        assert!(v["cycles_per_packet"].get("p99").is_some());
    }
}
