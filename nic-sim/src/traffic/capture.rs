//! Capture files: a streaming pcap/pcapng frame reader (one frame in memory at a time) and a
//! pcap writer for `--out`.
//!
//! Records are read raw (`next_raw_packet`) because pcap-file's checked path refuses
//! `orig_len > snaplen`, which every snaplen-truncated capture has; frames reach the program
//! as captured, so only the captured bytes matter.
//!
//! Only Ethernet captures are read: an XDP or tc program parses an Ethernet header first, so
//! a LINKTYPE_RAW or Linux cooked (SLL) capture read as Ethernet would run the program on
//! misparsed frames and report results that mean nothing. The pcap header's link type is
//! checked on open; a pcapng's per interface, when a packet on that interface is read (a
//! file may describe interfaces it never captured on).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, PcapError};

use crate::error::SimError;

/// Size of the pcap global header and of a pcap record header, to report byte offsets.
const PCAP_HEADER: u64 = 24;
const PCAP_RECORD: u64 = 16;
/// Byte offset of the link type in the pcap global header.
const PCAP_LINKTYPE_OFFSET: u64 = 20;

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
            0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => {
                let r = PcapReader::new(replay)
                    .map_err(|e| open_err(format!("bad pcap header: {e}")))?;
                let linktype = r.header().datalink;
                if linktype != DataLink::ETHERNET {
                    return Err(not_ethernet(
                        path,
                        format!("pcap header (byte offset {PCAP_LINKTYPE_OFFSET})"),
                        linktype,
                    ));
                }
                Inner::Pcap(r)
            }
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

    fn location(&self) -> String {
        match self.inner {
            Inner::Pcap(_) => format!("byte offset {}", self.pos),
            Inner::PcapNg(_) => format!("block {}", self.pos),
        }
    }

    fn fail(&mut self, why: Fail) -> SimError {
        self.failed = true;
        match why {
            Fail::Corrupt(reason) => SimError::CaptureCorrupt {
                path: self.path.clone(),
                frame: self.frame,
                location: self.location(),
                reason,
            },
            Fail::NotEthernet {
                interface,
                linktype,
            } => not_ethernet(
                &self.path,
                format!("frame {} ({}), {interface}", self.frame, self.location()),
                linktype,
            ),
        }
    }
}

/// Why a frame could not be read.
enum Fail {
    /// Truncated or malformed record, or a packet on an undescribed interface.
    Corrupt(String),
    /// The pcapng interface the packet was captured on is not Ethernet.
    NotEthernet {
        /// `interface 0` or ``interface 0 (`eth0`)``.
        interface: String,
        linktype: DataLink,
    },
}

fn not_ethernet(path: &Path, location: String, linktype: DataLink) -> SimError {
    SimError::NotEthernet {
        path: path.into(),
        location,
        linktype: u32::from(linktype),
        name: linktype_name(linktype),
    }
}

/// The tcpdump.org name of a link type (`LINKTYPE_RAW`), or `unknown`.
fn linktype_name(linktype: DataLink) -> String {
    match linktype {
        DataLink::Unknown(_) => "unknown".to_string(),
        known => format!("LINKTYPE_{known:?}"),
    }
}

/// Checks that a pcapng packet's interface was described (in this section, before the
/// packet) and captures Ethernet. `id` is `None` for a simple packet block, which belongs to
/// the first interface.
fn check_interface(
    interfaces: &[InterfaceDescriptionBlock<'_>],
    id: Option<u32>,
) -> Result<(), Fail> {
    let index = id.unwrap_or(0);
    let Some(idb) = usize::try_from(index).ok().and_then(|i| interfaces.get(i)) else {
        let what = match id {
            Some(i) => format!("the packet names interface {i}"),
            None => "a simple packet block (interface 0)".to_string(),
        };
        return Err(Fail::Corrupt(match interfaces.len() {
            0 => format!("{what}, but no interface is described before it in this section"),
            n => format!(
                "{what}, but only interface{} 0..={} {} described before it in this section",
                if n == 1 { "" } else { "s" },
                n - 1,
                if n == 1 { "is" } else { "are" }
            ),
        }));
    };
    if idb.linktype == DataLink::ETHERNET {
        return Ok(());
    }
    let name = idb.options.iter().find_map(|o| match o {
        InterfaceDescriptionOption::IfName(n) => Some(n.as_ref()),
        _ => None,
    });
    Err(Fail::NotEthernet {
        interface: match name {
            Some(n) => format!("interface {index} (`{n}`)"),
            None => format!("interface {index}"),
        },
        linktype: idb.linktype,
    })
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
                Err(e) => Err(Fail::Corrupt(pcap_reason(e))),
            },
            Inner::PcapNg(r) => loop {
                let block = match r.next_block()? {
                    Ok(b) => b,
                    Err(e) => break Err(Fail::Corrupt(pcap_reason(e))),
                };
                let (interface, data) = match block {
                    Block::EnhancedPacket(p) => (Some(p.interface_id), p.data.into_owned()),
                    Block::SimplePacket(p) => (None, p.data.into_owned()),
                    Block::Packet(p) => (Some(u32::from(p.interface_id)), p.data.into_owned()),
                    _ => {
                        self.pos += 1;
                        continue;
                    }
                };
                // On failure `pos` stays at the offending block, as for a corrupt one.
                if let Err(why) = check_interface(r.interfaces(), interface) {
                    break Err(why);
                }
                self.pos += 1;
                break Ok(data);
            },
        };
        Some(match got {
            Ok(frame) => {
                self.frame += 1;
                Ok(frame)
            }
            Err(why) => Err(self.fail(why)),
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

    /// A pcap with the Ethernet header's link type replaced by `linktype`.
    fn pcap_with_linktype(linktype: u32) -> Vec<u8> {
        let mut bytes = write_all(&frames());
        let at = PCAP_LINKTYPE_OFFSET as usize;
        bytes[at..at + 4].copy_from_slice(&linktype.to_le_bytes());
        bytes
    }

    /// LINKTYPE_RAW, Linux cooked (SLL/SLL2) and unknown link types used to be read as
    /// Ethernet without a word; an XDP program would have parsed IP headers as MACs.
    #[test]
    fn pcap_link_types_other_than_ethernet_are_refused() {
        for (linktype, name) in [
            (101, "LINKTYPE_RAW"),
            (113, "LINKTYPE_LINUX_SLL"),
            (276, "LINKTYPE_LINUX_SLL2"),
            (228, "LINKTYPE_IPV4"),
            (0, "LINKTYPE_NULL"),
            (0xffff_ffff, "unknown"),
        ] {
            let err = CaptureReader::new(
                Cursor::new(pcap_with_linktype(linktype)),
                Path::new("raw.pcap"),
            )
            .expect_err("not Ethernet");
            assert!(
                matches!(err, SimError::NotEthernet { linktype: l, .. } if l == linktype),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("link type {linktype} ({name}) is not Ethernet")),
                "{msg}"
            );
            assert!(
                msg.starts_with("raw.pcap: pcap header (byte offset 20)"),
                "{msg}"
            );
        }
        // Ethernet still reads.
        let ok = CaptureReader::new(Cursor::new(pcap_with_linktype(1)), Path::new("e.pcap"))
            .expect("open")
            .count();
        assert_eq!(ok, frames().len());
    }

    fn idb(linktype: DataLink, name: Option<&'static str>) -> InterfaceDescriptionBlock<'static> {
        InterfaceDescriptionBlock {
            linktype,
            snaplen: 0xffff,
            options: name
                .map(|n| vec![InterfaceDescriptionOption::IfName(n.into())])
                .unwrap_or_default(),
        }
    }

    fn epb(
        interface_id: u32,
        f: &[u8],
    ) -> pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock<'static> {
        pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock {
            interface_id,
            timestamp: Duration::ZERO,
            original_len: f.len() as u32,
            data: f.to_vec().into(),
            options: vec![],
        }
    }

    /// The message of the first item of a capture that opens but whose first frame fails.
    fn first_error(bytes: Vec<u8>, name: &str) -> String {
        CaptureReader::new(Cursor::new(bytes), Path::new(name))
            .expect("open")
            .next()
            .expect("item")
            .expect_err("the first frame fails")
            .to_string()
    }

    fn ng_writer() -> pcap_file::pcapng::PcapNgWriter<Vec<u8>> {
        pcap_file::pcapng::PcapNgWriter::with_endianness(Vec::new(), pcap_file::Endianness::Little)
            .expect("shb")
    }

    /// A pcapng packet is read as its interface's link type says: Ethernet interfaces are
    /// read, a packet on a Linux cooked interface is refused naming the frame, the block and
    /// the interface (with its name when the file gives one).
    #[test]
    fn pcapng_packets_on_non_ethernet_interfaces_are_refused() {
        let mut w = ng_writer();
        w.write_pcapng_block(idb(DataLink::ETHERNET, Some("eth0")))
            .expect("idb");
        w.write_pcapng_block(idb(DataLink::LINUX_SLL, Some("any")))
            .expect("idb");
        w.write_pcapng_block(epb(0, &frames()[0])).expect("epb");
        w.write_pcapng_block(epb(1, &frames()[1])).expect("epb");
        let mut r =
            CaptureReader::new(Cursor::new(w.into_inner()), Path::new("sll.pcapng")).expect("open");
        assert_eq!(
            r.next().expect("frame").expect("ethernet frame"),
            frames()[0]
        );
        let err = r.next().expect("item").expect_err("cooked");
        assert!(
            matches!(err, SimError::NotEthernet { linktype: 113, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("frame 1 (block 4), interface 1 (`any`): link type 113 (LINKTYPE_LINUX_SLL) is not Ethernet"),
            "{msg}"
        );
        assert!(r.next().is_none());

        // An interface without a name is named by its index; a RAW interface that no packet
        // uses is harmless.
        let mut w = ng_writer();
        w.write_pcapng_block(idb(DataLink::RAW, None)).expect("idb");
        w.write_pcapng_block(idb(DataLink::ETHERNET, None))
            .expect("idb");
        w.write_pcapng_block(epb(1, &frames()[0])).expect("epb");
        let bytes = w.into_inner();
        let got: Vec<_> = CaptureReader::new(Cursor::new(bytes), Path::new("a.pcapng"))
            .expect("open")
            .collect::<Result<_, _>>()
            .expect("only Ethernet packets");
        assert_eq!(got, vec![frames()[0].clone()]);
        let mut w = ng_writer();
        w.write_pcapng_block(idb(DataLink::RAW, None)).expect("idb");
        w.write_pcapng_block(epb(0, &frames()[0])).expect("epb");
        let msg = first_error(w.into_inner(), "r.pcapng");
        assert!(
            msg.contains("frame 0 (block 2), interface 0: link type 101 (LINKTYPE_RAW)"),
            "{msg}"
        );
    }

    /// A packet naming an interface the section never described used to be read as
    /// Ethernet; it is a corrupt block, named by its location.
    #[test]
    fn pcapng_packets_on_undescribed_interfaces_are_corrupt() {
        // Enhanced packet block naming interface 3 of 1 (the writer refuses to write it, so
        // patch the id: EPB body starts with the interface id after type and length).
        let mut w = ng_writer();
        w.write_pcapng_block(idb(DataLink::ETHERNET, None))
            .expect("idb");
        w.write_pcapng_block(epb(0, &frames()[0])).expect("epb");
        let at = w.get_ref().len();
        w.write_pcapng_block(epb(0, &frames()[1])).expect("epb");
        let mut bytes = w.into_inner();
        bytes[at + 8..at + 12].copy_from_slice(&3u32.to_le_bytes());
        let mut r = CaptureReader::new(Cursor::new(bytes), Path::new("u.pcapng")).expect("open");
        r.next().expect("frame").expect("good frame");
        let err = r.next().expect("item").expect_err("undescribed");
        assert!(
            matches!(err, SimError::CaptureCorrupt { frame: 1, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("frame 1 (block 3): the packet names interface 3, but only interface 0..=0 is described"),
            "{msg}"
        );
        assert!(r.next().is_none());

        // Obsolete packet block and simple packet block with no interface at all.
        let mut w = ng_writer();
        w.write_pcapng_block(pcap_file::pcapng::blocks::packet::PacketBlock {
            interface_id: 7,
            drop_count: 0,
            timestamp: 0,
            captured_len: 20,
            original_len: 20,
            data: vec![0u8; 20].into(),
            options: vec![],
        })
        .expect("pb");
        let msg = first_error(w.into_inner(), "p.pcapng");
        assert!(
            msg.contains(
                "frame 0 (block 1): the packet names interface 7, but no interface is described"
            ),
            "{msg}"
        );
        let mut w = ng_writer();
        w.write_pcapng_block(
            pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock {
                original_len: 20,
                data: vec![0u8; 20].into(),
            },
        )
        .expect("spb");
        let msg = first_error(w.into_inner(), "s.pcapng");
        assert!(
            msg.contains("a simple packet block (interface 0), but no interface is described"),
            "{msg}"
        );
    }
}
