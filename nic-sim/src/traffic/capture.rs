//! Capture files: a streaming pcap/pcapng frame reader (one frame in memory at a time) and a
//! pcap writer for `--out`.
//!
//! Records are read raw (`next_raw_packet`) because pcap-file's checked path refuses
//! `orig_len > snaplen`, which every snaplen-truncated capture has; frames reach the program
//! as captured, so only the captured bytes matter.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::PcapError;
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgReader};

use crate::error::SimError;

/// Size of the pcap global header and of a pcap record header, to report byte offsets.
const PCAP_HEADER: u64 = 24;
const PCAP_RECORD: u64 = 16;

enum Inner<R: Read> {
    Pcap(PcapReader<Replay<R>>),
    PcapNg(PcapNgReader<Replay<R>>),
}

/// Frames of a pcap or pcapng stream, in order, as `Result<Vec<u8>, SimError>`. After the
/// first error the iterator ends.
pub struct CaptureReader<R: Read> {
    inner: Inner<R>,
    path: PathBuf,
    frame: u64,
    /// pcap: byte offset of the next record; pcapng: index of the next block.
    pos: u64,
    failed: bool,
}

impl<R: Read> std::fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("path", &self.path)
            .field("frame", &self.frame)
            .finish()
    }
}

/// Opens a capture file (pcap or pcapng, decided by its magic number).
pub fn open_capture(path: &Path) -> Result<CaptureReader<BufReader<File>>, SimError> {
    let file = File::open(path).map_err(|e| SimError::CaptureOpen {
        path: path.into(),
        reason: e.to_string(),
    })?;
    CaptureReader::new(BufReader::new(file), path)
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header from `reader`; `path` only names the stream in errors.
    pub fn new(mut reader: R, path: &Path) -> Result<CaptureReader<R>, SimError> {
        let open_err = |reason: String| SimError::CaptureOpen {
            path: path.into(),
            reason,
        };
        let mut magic = [0u8; 4];
        reader
            .read_exact(&mut magic)
            .map_err(|e| open_err(format!("too short for a capture header: {e}")))?;
        let replay = Replay {
            head: magic,
            used: 0,
            rest: reader,
        };
        let inner = match u32::from_le_bytes(magic) {
            0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => Inner::Pcap(
                PcapReader::new(replay).map_err(|e| open_err(format!("bad pcap header: {e}")))?,
            ),
            0x0a0d_0d0a => Inner::PcapNg(
                PcapNgReader::new(replay)
                    .map_err(|e| open_err(format!("bad pcapng section header: {e}")))?,
            ),
            m => {
                return Err(open_err(format!(
                    "neither pcap nor pcapng (magic {m:#010x})"
                )));
            }
        };
        let pos = match inner {
            Inner::Pcap(_) => PCAP_HEADER,
            Inner::PcapNg(_) => 1,
        };
        Ok(CaptureReader {
            inner,
            path: path.into(),
            frame: 0,
            pos,
            failed: false,
        })
    }

    fn corrupt(&mut self, reason: String) -> SimError {
        self.failed = true;
        SimError::CaptureCorrupt {
            path: self.path.clone(),
            frame: self.frame,
            location: match self.inner {
                Inner::Pcap(_) => format!("byte offset {}", self.pos),
                Inner::PcapNg(_) => format!("block {}", self.pos),
            },
            reason,
        }
    }
}

impl<R: Read> Iterator for CaptureReader<R> {
    type Item = Result<Vec<u8>, SimError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let got = match &mut self.inner {
            Inner::Pcap(r) => match r.next_raw_packet()? {
                Ok(raw) => {
                    self.pos += PCAP_RECORD + u64::from(raw.incl_len);
                    Ok(raw.data.into_owned())
                }
                Err(e) => Err(pcap_reason(e)),
            },
            Inner::PcapNg(r) => loop {
                let block = match r.next_block()? {
                    Ok(b) => b,
                    Err(e) => break Err(pcap_reason(e)),
                };
                self.pos += 1;
                match block {
                    Block::EnhancedPacket(p) => break Ok(p.data.into_owned()),
                    Block::SimplePacket(p) => break Ok(p.data.into_owned()),
                    Block::Packet(p) => break Ok(p.data.into_owned()),
                    _ => {}
                }
            },
        };
        Some(match got {
            Ok(frame) => {
                self.frame += 1;
                Ok(frame)
            }
            Err(reason) => Err(self.corrupt(reason)),
        })
    }
}

/// pcap-file reports every I/O failure as "Error reading bytes", even a failed write
/// (`--out /dev/full`); name what really happened.
fn pcap_reason(e: PcapError) -> String {
    match e {
        PcapError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "truncated record (unexpected end of file)".to_string()
        }
        PcapError::IoError(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// Puts back the 4 magic bytes read to sniff the format: generic readers cannot be
/// rewound, and the pcap-file readers parse the header themselves.
pub struct Replay<R> {
    head: [u8; 4],
    used: usize,
    rest: R,
}

impl<R: Read> Read for Replay<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.used < self.head.len() {
            let n = (self.head.len() - self.used).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.used..self.used + n]);
            self.used += n;
            return Ok(n);
        }
        self.rest.read(buf)
    }
}

/// Writes frames to a pcap file (microsecond timestamps, Ethernet link type, snaplen 65535).
pub struct CaptureWriter<W: Write> {
    inner: PcapWriter<W>,
    path: PathBuf,
    frames: u64,
}

impl<W: Write> std::fmt::Debug for CaptureWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureWriter")
            .field("path", &self.path)
            .field("frames", &self.frames)
            .finish()
    }
}

/// Creates `path` for `--out`.
pub fn create_capture(path: &Path) -> Result<CaptureWriter<BufWriter<File>>, SimError> {
    let file = File::create(path).map_err(|e| SimError::CaptureOpen {
        path: path.into(),
        reason: e.to_string(),
    })?;
    CaptureWriter::new(BufWriter::new(file), path)
}

impl<W: Write> CaptureWriter<W> {
    /// Writes the pcap header to `writer`; `path` only names it in errors.
    pub fn new(writer: W, path: &Path) -> Result<CaptureWriter<W>, SimError> {
        let inner = PcapWriter::new(writer).map_err(|e| SimError::CaptureWrite {
            path: path.into(),
            frame: 0,
            reason: pcap_reason(e),
        })?;
        Ok(CaptureWriter {
            inner,
            path: path.into(),
            frames: 0,
        })
    }

    /// Appends one frame. Timestamps are the frame's index in microseconds: the simulator's
    /// output order is the input order, and the real capture times are not carried through.
    pub fn write(&mut self, data: &[u8]) -> Result<(), SimError> {
        let len = data.len().min(u32::MAX as usize) as u32;
        let pkt = PcapPacket::new(Duration::from_micros(self.frames), len, data);
        self.inner
            .write_packet(&pkt)
            .map_err(|e| SimError::CaptureWrite {
                path: self.path.clone(),
                frame: self.frames,
                reason: pcap_reason(e),
            })?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> Result<W, SimError> {
        let mut w = self.inner.into_writer();
        w.flush().map_err(|e| SimError::CaptureWrite {
            path: self.path.clone(),
            frame: self.frames,
            reason: e.to_string(),
        })?;
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn frames() -> Vec<Vec<u8>> {
        (0..5u8)
            .map(|i| vec![i; 14 + usize::from(i) * 10])
            .collect()
    }

    fn write_all(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut w = CaptureWriter::new(Vec::new(), Path::new("mem.pcap")).expect("header");
        for f in frames {
            w.write(f).expect("write");
        }
        w.finish().expect("flush")
    }

    #[test]
    fn pcap_round_trip() {
        let bytes = write_all(&frames());
        let got: Vec<Vec<u8>> = CaptureReader::new(Cursor::new(bytes), Path::new("mem.pcap"))
            .expect("open")
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(got, frames());
    }

    #[test]
    fn truncated_pcap_names_frame_and_offset() {
        let mut bytes = write_all(&frames());
        bytes.truncate(bytes.len() - 3);
        let mut r = CaptureReader::new(Cursor::new(bytes), Path::new("cut.pcap")).expect("open");
        for _ in 0..4 {
            r.next().expect("frame").expect("good frame");
        }
        let err = r.next().expect("error item").expect_err("truncated");
        let msg = err.to_string();
        // Frames 0..4 take 24 + 4 * 16 + (14 + 24 + 34 + 44) bytes.
        assert!(msg.contains("frame 4"), "{msg}");
        assert!(msg.contains("byte offset 204"), "{msg}");
        assert!(r.next().is_none());
    }

    /// A writer that refuses every byte, as `/dev/full` does.
    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(28))
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// `sim --out /dev/full` used to say "Error reading bytes" for a failed write.
    #[test]
    fn write_errors_say_what_failed() {
        let err = CaptureWriter::new(Full, Path::new("/dev/full")).expect_err("full");
        let msg = err.to_string();
        assert!(msg.contains("No space left on device"), "{msg}");
        assert!(!msg.contains("reading"), "{msg}");
    }

    #[test]
    fn garbage_is_not_a_capture() {
        let err = CaptureReader::new(Cursor::new(b"hello world".to_vec()), Path::new("x"))
            .expect_err("not pcap");
        assert!(err.to_string().contains("neither pcap nor pcapng"), "{err}");
        let err =
            CaptureReader::new(Cursor::new(vec![0xd4, 0xc3]), Path::new("x")).expect_err("short");
        assert!(err.to_string().contains("too short"), "{err}");
    }

    #[test]
    fn pcapng_frames_are_read() {
        use pcap_file::pcapng::PcapNgWriter;
        use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
        use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
        let mut w = PcapNgWriter::new(Vec::new()).expect("shb");
        let idb = InterfaceDescriptionBlock {
            linktype: pcap_file::DataLink::ETHERNET,
            snaplen: 0xffff,
            options: vec![],
        };
        w.write_pcapng_block(idb).expect("idb");
        for f in frames() {
            let epb = EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::ZERO,
                original_len: f.len() as u32,
                data: f.clone().into(),
                options: vec![],
            };
            w.write_pcapng_block(epb).expect("epb");
        }
        let bytes = w.into_inner();
        let got: Vec<Vec<u8>> =
            CaptureReader::new(Cursor::new(bytes.clone()), Path::new("a.pcapng"))
                .expect("open")
                .collect::<Result<_, _>>()
                .expect("read");
        assert_eq!(got, frames());
        let cut = bytes[..bytes.len() - 5].to_vec();
        let last = CaptureReader::new(Cursor::new(cut), Path::new("a.pcapng"))
            .expect("open")
            .last()
            .expect("items");
        let msg = last.expect_err("truncated").to_string();
        assert!(msg.contains("frame 4") && msg.contains("block"), "{msg}");
    }
}
