//! Traffic into the simulated NIC, streamed one frame at a time: capture files (pcap,
//! pcapng) and synthetic traffic from a `--traffic` spec; and the `--out` capture writer.

mod capture;
mod generate;
mod spec;
mod template;

pub use capture::{CaptureReader, CaptureWriter, Replay, create_capture, open_capture};
pub use generate::{Flow, Generator, Zipf};
pub use spec::{MAX_SIZE, MIN_SIZE, Proto, SizeDist, TrafficSpec};

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::error::SimError;

/// An Ethernet header: frames shorter than this are runts, which never reach the program.
pub const ETH_HEADER_LEN: usize = 14;

/// Whether a frame is a runt (shorter than an Ethernet header).
pub fn is_runt(frame: &[u8]) -> bool {
    frame.len() < ETH_HEADER_LEN
}

/// Where frames come from: `--pcap FILE` or `--traffic SPEC`.
#[derive(Debug)]
pub enum FrameSource {
    /// A capture file.
    Capture(Box<CaptureReader<BufReader<File>>>),
    /// Synthetic traffic.
    Synthetic(Box<Generator>),
}

impl FrameSource {
    /// Opens a capture file.
    pub fn pcap(path: &Path) -> Result<FrameSource, SimError> {
        open_capture(path).map(|c| FrameSource::Capture(Box::new(c)))
    }

    /// Parses a traffic spec.
    pub fn traffic(spec: &str) -> Result<FrameSource, SimError> {
        TrafficSpec::parse(spec).map(|s| FrameSource::Synthetic(Box::new(Generator::new(&s))))
    }
}

impl Iterator for FrameSource {
    type Item = Result<Vec<u8>, SimError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            FrameSource::Capture(c) => c.next(),
            FrameSource::Synthetic(g) => g.next(),
        }
    }
}
