//! Simulated NIC presets: how many microengines (MEs) run the program, how many hardware
//! threads each interleaves, their clock, memory latencies and the line rate feeding them.
//!
//! Figures follow `shared/design/nfp-model.md` §1: the NFP-4000 of an Agilio CX card as the
//! CoreNIC firmware runs eBPF — 5 ME islands × 10 worker MEs, 4 threads per ME ("4 CTX mode"),
//! 800 MHz — and the §1.4 memory latency table (midpoints of the published ranges).

use crate::error::SimError;

/// Bytes every frame costs on the wire beyond its own bytes: preamble + SFD (8) and the
/// inter-frame gap (12).
pub const WIRE_OVERHEAD_BYTES: u64 = 20;
/// The Ethernet frame check sequence, which captures usually omit but the wire carries.
pub const FCS_BYTES: u64 = 4;
/// The shortest frame the wire carries (frame check sequence included): shorter frames are
/// padded by the sender.
pub const MIN_WIRE_FRAME: u64 = 64;

/// Memory access latencies in ME cycles (nfp-model §1.4, midpoints of the published ranges).
/// The ME executor charges them as thread wait cycles; the stand-in engine uses `emem` as its
/// fixed per-packet wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemLatency {
    /// ME local memory (stack): 1–3 cycles.
    pub lmem: u32,
    /// Cluster local scratch: 20–50.
    pub cls: u32,
    /// Cluster target memory (packet buffers): 50–100.
    pub ctm: u32,
    /// Internal SRAM memory unit: 150–250.
    pub imem: u32,
    /// External DRAM-backed memory unit (maps): 150–250, misses higher.
    pub emem: u32,
}

impl MemLatency {
    /// NFP-4000 midpoints.
    pub const NFP4000: MemLatency = MemLatency {
        lmem: 2,
        cls: 35,
        ctm: 75,
        imem: 200,
        emem: 200,
    };
}

/// Ethernet line rates the presets know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRate {
    /// 10 GbE.
    G10,
    /// 25 GbE.
    G25,
    /// 40 GbE.
    G40,
    /// 100 GbE.
    G100,
    /// Any other rate, in bits per second.
    Custom(u64),
}

impl LineRate {
    /// Bits per second.
    pub fn bits_per_sec(self) -> u64 {
        match self {
            LineRate::G10 => 10_000_000_000,
            LineRate::G25 => 25_000_000_000,
            LineRate::G40 => 40_000_000_000,
            LineRate::G100 => 100_000_000_000,
            LineRate::Custom(b) => b,
        }
    }

    /// Parses `10g`, `25G`, `40gbe`, `100` (GbE implied) or a bare bit rate like `1e9`.
    pub fn parse(s: &str) -> Option<LineRate> {
        let t = s.trim().to_ascii_lowercase();
        let t = t.trim_end_matches("gbe").trim_end_matches('g');
        match t {
            "10" => Some(LineRate::G10),
            "25" => Some(LineRate::G25),
            "40" => Some(LineRate::G40),
            "100" => Some(LineRate::G100),
            other => other
                .parse::<f64>()
                .ok()
                .filter(|g| g.is_finite() && *g > 0.0)
                .map(|g| LineRate::Custom((g * 1e9) as u64)),
        }
    }

    /// Line-rate packets per second for frames of `frame_len` bytes, FCS included
    /// (`bits/s / ((frame_len + 20) * 8)`): 14.88 Mpps for 64-byte frames at 10 GbE.
    pub fn pps(self, frame_len: u64) -> f64 {
        self.bits_per_sec() as f64 / ((frame_len + WIRE_OVERHEAD_BYTES) * 8) as f64
    }
}

/// Bytes a captured frame occupies on the wire, overhead included: the capture usually lacks
/// the 4-byte FCS, and frames shorter than 64 bytes are padded.
pub fn wire_bytes(captured_len: usize) -> u64 {
    (captured_len as u64 + FCS_BYTES).max(MIN_WIRE_FRAME) + WIRE_OVERHEAD_BYTES
}

/// One simulated NIC.
#[derive(Debug, Clone, PartialEq)]
pub struct NicPreset {
    /// Name as `--nic` spells it.
    pub name: String,
    /// ME islands running the program.
    pub islands: u32,
    /// Worker MEs per island that run the program.
    pub mes_per_island: u32,
    /// Hardware threads (contexts) per ME that take packets.
    pub threads_per_me: u32,
    /// ME clock in Hz.
    pub clock_hz: u64,
    /// Memory latencies in ME cycles.
    pub mem: MemLatency,
    /// The port feeding the NIC.
    pub line_rate: LineRate,
    /// Packets a hardware thread's input queue holds while the thread is busy; arrivals
    /// beyond it are queue drops.
    pub queue_depth: u32,
    /// ME cycles the firmware spends per packet around the program (taking the packet from
    /// the CTM packet engine's work queue, metadata, dispatching the verdict to the NBI).
    /// Without it a trivial program would look like 70 Mpps per ME; see
    /// [`FW_CYCLES_PER_PACKET`].
    pub fw_cycles_per_packet: u64,
}

/// Firmware cycles per packet on the NFP-4000 eBPF datapath, derived from the public
/// figure of "about 3 Mpps per FPC" for a simple read/write/redirect program (Netronome,
/// IO Visor Summit 2017; nfp-model.md §4.1): 800 MHz / 3 Mpps ≈ 267 busy cycles per packet,
/// minus ~45 cycles for such a program's own instructions, leaves ~220.
pub const FW_CYCLES_PER_PACKET: u64 = 220;

/// Most hardware threads per ME the simulator models. The NFP has 8 contexts per ME; the
/// ME scheduler (`lanes`) tracks threads in 64-bit masks, so custom NICs go up to 64.
pub const MAX_THREADS_PER_ME: u32 = 64;

/// Most MEs the simulator models. Why a cap at all: every ME holds its own state (about
/// half a megabyte with 64 threads), so `--cores 4294967295` would exhaust memory or run for
/// hours instead of failing; 1024 is 8x the largest NFP (the NFP-6000's 120 MEs).
pub const MAX_MES: u32 = 1024;

/// Most firmware cycles per packet a custom NIC may claim: far beyond any real datapath
/// (1.25 ms per packet at 800 MHz), and small enough that per-packet cycle sums cannot
/// overflow.
pub const MAX_FW_CYCLES: u64 = 1_000_000;

impl NicPreset {
    /// Agilio CX 2×25GbE (NFP-4000) with CoreNIC's eBPF datapath: 5 islands × 10 worker MEs,
    /// 4 threads each, 800 MHz, one 25 GbE port feeding it.
    pub fn agilio_cx() -> NicPreset {
        NicPreset {
            name: "agilio-cx".into(),
            islands: 5,
            mes_per_island: 10,
            threads_per_me: 4,
            clock_hz: 800_000_000,
            mem: MemLatency::NFP4000,
            line_rate: LineRate::G25,
            queue_depth: 32,
            fw_cycles_per_packet: FW_CYCLES_PER_PACKET,
        }
    }

    /// The same chip fed by a 40 GbE port (Agilio CX 1×40GbE).
    pub fn agilio_cx_40() -> NicPreset {
        NicPreset {
            name: "agilio-cx-40".into(),
            line_rate: LineRate::G40,
            ..NicPreset::agilio_cx()
        }
    }

    /// Whether the simulator can model this NIC: at most [`MAX_MES`] MEs of at most
    /// [`MAX_THREADS_PER_ME`] hardware threads, at most [`MAX_FW_CYCLES`] firmware cycles
    /// per packet ([`crate::run::simulate`] checks it).
    pub fn check(&self) -> Result<(), SimError> {
        let bad = |reason: String| SimError::BadNic {
            nic: self.name.clone(),
            reason,
        };
        let mes = u64::from(self.islands) * u64::from(self.mes_per_island);
        if mes > u64::from(MAX_MES) {
            return Err(bad(format!(
                "{mes} MEs; the simulator models at most {MAX_MES} (the NFP-4000 has 50 worker MEs)"
            )));
        }
        if self.fw_cycles_per_packet > MAX_FW_CYCLES {
            return Err(bad(format!(
                "{} firmware cycles per packet; at most {MAX_FW_CYCLES}",
                self.fw_cycles_per_packet
            )));
        }
        if self.threads_per_me > MAX_THREADS_PER_ME {
            return Err(bad(format!(
                "{} hardware threads per ME; the simulator models at most {MAX_THREADS_PER_ME} (the NFP has 8)",
                self.threads_per_me
            )));
        }
        Ok(())
    }

    /// A parameterised NIC with NFP-4000 memory latencies.
    pub fn custom(
        islands: u32,
        mes_per_island: u32,
        threads_per_me: u32,
        clock_hz: u64,
        line_rate: LineRate,
    ) -> NicPreset {
        NicPreset {
            name: format!(
                "custom:islands={islands},mes={mes_per_island},threads={threads_per_me},mhz={},rate={}g",
                clock_hz / 1_000_000,
                line_rate.bits_per_sec() / 1_000_000_000
            ),
            islands,
            mes_per_island,
            threads_per_me,
            clock_hz,
            mem: MemLatency::NFP4000,
            line_rate,
            queue_depth: 32,
            fw_cycles_per_packet: FW_CYCLES_PER_PACKET,
        }
    }

    /// Names [`NicPreset::by_name`] knows (custom NICs aside).
    pub const NAMES: &'static [&'static str] = &["agilio-cx", "nfp-4000", "agilio-cx-40"];

    /// Finds a preset: `agilio-cx` (alias `nfp-4000`), `agilio-cx-40`, or
    /// `custom:islands=I,mes=M,threads=T,mhz=F,rate=10g|25g|40g|100g,queue=Q,fw=C` (every key
    /// optional, defaults from `agilio-cx`).
    pub fn by_name(name: &str) -> Result<NicPreset, SimError> {
        match name {
            "agilio-cx" | "nfp-4000" | "nfp4000" => Ok(NicPreset::agilio_cx()),
            "agilio-cx-40" => Ok(NicPreset::agilio_cx_40()),
            _ => match name.strip_prefix("custom") {
                Some(rest) => Self::parse_custom(rest.trim_start_matches(':')),
                None => Err(SimError::UnknownNic {
                    name: name.into(),
                    known: format!(
                        "known: {}, or custom:islands=..,mes=..,threads=..,mhz=..,rate=..g,queue=..,fw=..",
                        Self::NAMES.join(", ")
                    ),
                }),
            },
        }
    }

    fn parse_custom(spec: &str) -> Result<NicPreset, SimError> {
        let mut p = NicPreset::agilio_cx();
        let bad = |msg: String| SimError::UnknownNic {
            name: format!("custom:{spec}"),
            known: msg,
        };
        let mut seen: Vec<&str> = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("`{item}` is not key=value")))?;
            // A repeated key is a typo more often than an override: refuse it.
            if seen.contains(&k) {
                return Err(bad(format!("`{k}` given twice")));
            }
            seen.push(k);
            let num = || {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0 && *n <= u32::MAX as u64)
                    .ok_or_else(|| bad(format!("`{k}` needs a positive integer, got `{v}`")))
            };
            match k {
                "islands" => p.islands = num()? as u32,
                "mes" => p.mes_per_island = num()? as u32,
                "threads" => {
                    p.threads_per_me = num()? as u32;
                    if p.threads_per_me > MAX_THREADS_PER_ME {
                        return Err(bad(format!(
                            "`threads` is at most {MAX_THREADS_PER_ME} (the NFP has 8 per ME)"
                        )));
                    }
                }
                "mhz" => p.clock_hz = num()? * 1_000_000,
                "queue" => p.queue_depth = num()? as u32,
                "fw" => {
                    p.fw_cycles_per_packet = v
                        .parse::<u64>()
                        .map_err(|_| bad(format!("`fw` needs a cycle count, got `{v}`")))?
                }
                "rate" => {
                    p.line_rate =
                        LineRate::parse(v).ok_or_else(|| bad(format!("bad line rate `{v}`")))?
                }
                _ => {
                    return Err(bad(format!(
                        "unknown key `{k}` (islands, mes, threads, mhz, rate, queue, fw)"
                    )));
                }
            }
        }
        let (i, m, t, c) = (p.islands, p.mes_per_island, p.threads_per_me, p.clock_hz);
        p = NicPreset {
            queue_depth: p.queue_depth,
            fw_cycles_per_packet: p.fw_cycles_per_packet,
            ..NicPreset::custom(i, m, t, c, p.line_rate)
        };
        p.check()?;
        Ok(p)
    }

    /// MEs running the program.
    pub fn mes(&self) -> u32 {
        // Saturating: an unchecked preset (see [`NicPreset::check`]) must not wrap to a
        // small, plausible-looking count.
        self.islands.saturating_mul(self.mes_per_island)
    }

    /// Hardware threads (lanes) in total.
    pub fn lanes(&self) -> u32 {
        self.mes().saturating_mul(self.threads_per_me)
    }

    /// `--cores N`: `N` MEs running the program (islands only group MEs for memory
    /// locality, which this model does not distinguish, so they become one island of `N`).
    pub fn with_cores(mut self, cores: u32) -> NicPreset {
        let cores = cores.max(1);
        self.islands = 1;
        self.mes_per_island = cores;
        self
    }

    /// `--me-threads T`.
    pub fn with_threads(mut self, threads: u32) -> NicPreset {
        self.threads_per_me = threads.max(1);
        self
    }

    /// Nanoseconds per ME cycle.
    pub fn ns_per_cycle(&self) -> f64 {
        1e9 / self.clock_hz as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_rate_matches_nfp_model_table() {
        let close = |a: f64, b: f64| (a - b).abs() < 0.01;
        assert!(close(LineRate::G10.pps(64) / 1e6, 14.88));
        assert!(close(LineRate::G25.pps(64) / 1e6, 37.20));
        assert!(close(LineRate::G40.pps(64) / 1e6, 59.52));
        assert!(close(LineRate::G100.pps(64) / 1e6, 148.81));
        // A 60-byte capture is a 64-byte frame on the wire; runts are padded.
        assert_eq!(wire_bytes(60), 84);
        assert_eq!(wire_bytes(10), 84);
        assert_eq!(wire_bytes(1514), 1538);
    }

    #[test]
    fn presets_by_name() {
        let p = NicPreset::by_name("agilio-cx").expect("known");
        assert_eq!((p.mes(), p.lanes(), p.clock_hz), (50, 200, 800_000_000));
        assert_eq!(NicPreset::by_name("nfp-4000").expect("alias"), p);
        let c = NicPreset::by_name("custom:islands=2,mes=3,threads=8,mhz=1200,rate=100g")
            .expect("custom");
        assert_eq!(
            (c.mes(), c.threads_per_me, c.clock_hz),
            (6, 8, 1_200_000_000)
        );
        assert_eq!(c.line_rate, LineRate::G100);
        assert!(NicPreset::by_name("bluefield").is_err());
        assert!(NicPreset::by_name("custom:islands=0").is_err());
        assert!(NicPreset::by_name("custom:cores=3").is_err());
        // The scheduler's masks hold 64 threads per ME.
        assert!(NicPreset::by_name("custom:threads=64").is_ok());
        let wide = NicPreset::by_name("custom:threads=65").expect_err("65 threads");
        assert!(wide.to_string().contains("at most 64"), "{wide}");
        assert!(p.clone().with_threads(64).check().is_ok());
        let e = p.clone().with_threads(65).check().expect_err("65 threads");
        assert!(e.to_string().contains("at most 64"), "{e}");
        let w = p.with_cores(7).with_threads(8);
        assert_eq!((w.mes(), w.lanes()), (7, 56));
    }

    /// Sizes the simulator cannot hold are refused up front, never wrapped or attempted
    /// (`--cores 4294967295` used to run out of memory; `islands=65536,mes=65536` wrapped
    /// to 0 MEs).
    #[test]
    fn oversized_nics_are_refused() {
        for spec in [
            "custom:islands=65536,mes=65536",
            "custom:islands=4294967295,mes=2",
            "custom:islands=100000",
            "custom:fw=18446744073709551615",
            "custom:islands=1,islands=2",
        ] {
            assert!(NicPreset::by_name(spec).is_err(), "{spec}");
        }
        let p = NicPreset::agilio_cx();
        assert!(p.clone().with_cores(MAX_MES).check().is_ok());
        let e = p
            .clone()
            .with_cores(u32::MAX)
            .check()
            .expect_err("too many MEs");
        assert!(e.to_string().contains("at most 1024"), "{e}");
        let huge = NicPreset {
            islands: u32::MAX,
            mes_per_island: u32::MAX,
            ..p
        };
        assert_eq!(huge.mes(), u32::MAX);
        assert!(huge.check().is_err());
    }
}
