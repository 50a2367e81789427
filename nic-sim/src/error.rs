//! Errors of the simulator, each naming where it happened (file, frame index, byte offset,
//! spec item).

use std::path::PathBuf;

/// Anything that stops a simulation before it produces a report.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// `--nic` names no preset.
    #[error("unknown NIC preset `{name}` ({known})")]
    UnknownNic {
        /// What was asked for.
        name: String,
        /// The known names, or what is wrong with a custom spec.
        known: String,
    },
    /// A NIC the simulator cannot model (see [`crate::preset::MAX_THREADS_PER_ME`]).
    #[error("NIC `{nic}`: {reason}")]
    BadNic {
        /// The NIC's name.
        nic: String,
        /// What is out of range.
        reason: String,
    },
    /// A `--traffic` spec that does not parse.
    #[error("bad traffic spec at `{item}`: {reason}")]
    TrafficSpec {
        /// The offending `key=value` item.
        item: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A capture file that cannot be opened or is not pcap/pcapng.
    #[error("{}: {reason}", path.display())]
    CaptureOpen {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A capture that is truncated or corrupt part-way.
    #[error("{}: frame {frame} ({location}): {reason}", path.display())]
    CaptureCorrupt {
        /// The file.
        path: PathBuf,
        /// Index of the frame that could not be read (frames before it were fine).
        frame: u64,
        /// `byte offset N` of the frame's record (pcap) or `block N` (pcapng, whose blocks
        /// the reader does not expose with their sizes).
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A capture whose frames are not Ethernet (LINKTYPE_RAW, Linux cooked, ...): an XDP or
    /// tc program parses an Ethernet header first, so reading them as Ethernet would run the
    /// program on misparsed frames without a word.
    #[error(
        "{}: {location}: link type {linktype} ({name}) is not Ethernet; XDP and tc programs take Ethernet frames (LINKTYPE_ETHERNET, 1)",
        path.display()
    )]
    NotEthernet {
        /// The file.
        path: PathBuf,
        /// `pcap header (byte offset 20)`, or for pcapng the frame, block and interface.
        location: String,
        /// The link-type number as the file gives it.
        linktype: u32,
        /// Its tcpdump.org name (`LINKTYPE_RAW`), or `unknown`.
        name: String,
    },
    /// Writing `--out` failed.
    #[error("{}: writing frame {frame}: {reason}", path.display())]
    CaptureWrite {
        /// The output file.
        path: PathBuf,
        /// Output frame index.
        frame: u64,
        /// Why.
        reason: String,
    },
    /// The packet engine could not be created for an ME.
    #[error("ME {me}: cannot load the program: {reason}")]
    EngineLoad {
        /// The ME index.
        me: u32,
        /// Why.
        reason: String,
    },
    /// The host thread pool could not be built, or a simulation thread died.
    #[error("host threads: {0}")]
    Host(String),
}
