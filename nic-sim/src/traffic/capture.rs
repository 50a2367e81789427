//! Capture files: a streaming pcap/pcapng frame reader (one frame in memory at a time) and a
//! pcap writer for `--out`.
//!
//! Records are read raw (`next_raw_packet`) because pcap-file's checked path refuses
//! `orig_len > snaplen`, which every snaplen-truncated capture has; frames reach the program
//! as captured (less any FCS, see below), so only the captured bytes matter.
//!
//! Only Ethernet captures are read: an XDP or tc program parses an Ethernet header first, so
//! a LINKTYPE_RAW or Linux cooked (SLL) capture read as Ethernet would run the program on
//! misparsed frames and report results that mean nothing. The pcap header's link type is
//! checked on open; a pcapng's per interface, when a packet on that interface is read (a
//! file may describe interfaces it never captured on).
//!
//! Ethernet captures that say their frames end with a frame check sequence are read with the
//! FCS stripped: the NIC checks and removes the FCS before an XDP or tc program sees the
//! frame, so leaving it on would hand the program 4 bytes it never gets on real hardware (and
//! change what it computes from the frame length, or what `--out` writes). A pcap says so in
//! its link-type field (the P bit and FCS length in the upper 16 bits, draft-ietf-opsawg-pcap
//! "LinkType and additional information"); a pcapng in its interface's `if_fcslen` option,
//! which a packet's `epb_flags` FCS length overrides. The FCS is the last bytes of the frame
//! on the wire, so a snaplen-truncated record loses only the part of it that was captured.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::packet::PacketOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, PcapError};

use crate::error::SimError;

/// Size of the pcap global header and of a pcap record header, to report byte offsets.
const PCAP_HEADER: u64 = 24;
const PCAP_RECORD: u64 = 16;
/// Byte offset of the link type in the pcap global header.
const PCAP_LINKTYPE_OFFSET: u64 = 20;

/// The pcap header's 32-bit "LinkType and additional information" field, as laid out by
/// draft-ietf-opsawg-pcap (and libpcap's `LT_*` macros), least-significant bit 0: the link
/// type in bits 0-15, reserved bits 16-25 (Reserved3) and 27 (R), the P bit 26 ("FCS length
/// present") and the FCS length in 16-bit words in bits 28-31.
const LT_LINKTYPE: u32 = 0x0000_ffff;
const LT_RESERVED: u32 = 0x0bff_0000;
const LT_FCS_PRESENT: u32 = 0x0400_0000;
const LT_FCS_WORDS_SHIFT: u32 = 28;
/// Bits 5-8 of a pcapng `epb_flags` option: the packet's FCS length in bytes, 0 if unknown.
const EPB_FLAGS_FCS_SHIFT: u32 = 5;
const EPB_FLAGS_FCS_MASK: u32 = 0xf;

enum Inner<R: Read> {
    /// With the number of FCS bytes that end every frame (0: none).
    Pcap(PcapReader<Replay<R>>, u32),
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
                let r = PcapReader::new(replay).map_err(|e| {
                    open_err(format!(
                        "bad pcap header (bytes 0..{PCAP_HEADER}, the global header): {e}"
                    ))
                })?;
                let field = u32::from(r.header().datalink);
                let fcs = pcap_ethernet_fcs(field).map_err(|name| {
                    not_ethernet(
                        path,
                        format!("pcap header (byte offset {PCAP_LINKTYPE_OFFSET})"),
                        field,
                        name,
                    )
                })?;
                if fcs > 0 {
                    tracing::debug!(path = %path.display(), fcs, "pcap frames carry an FCS; stripping it");
                }
                Inner::Pcap(r, fcs)
            }
            0x0a0d_0d0a => Inner::PcapNg(PcapNgReader::new(replay).map_err(|e| {
                open_err(format!(
                    "bad pcapng section header block (at byte offset 0): {e}"
                ))
            })?),
            m => {
                return Err(open_err(format!(
                    "neither pcap nor pcapng (magic {m:#010x})"
                )));
            }
        };
        let pos = match inner {
            Inner::Pcap(..) => PCAP_HEADER,
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
            Inner::Pcap(..) => format!("byte offset {}", self.pos),
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
                u32::from(linktype),
                linktype_name(linktype),
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

fn not_ethernet(path: &Path, location: String, linktype: u32, name: String) -> SimError {
    SimError::NotEthernet {
        path: path.into(),
        location,
        linktype,
        name,
    }
}

/// The number of FCS bytes ending every frame of a pcap whose header link-type field is
/// `field`, if the file is Ethernet; otherwise the field's name for the error.
///
/// Set reserved bits are refused, as the draft advises readers: they may mean something this
/// reader does not know. An FCS length without the P bit is not interpreted (the draft says the
/// length is then unknown), which is how plain link type 1 is read too: no FCS.
fn pcap_ethernet_fcs(field: u32) -> Result<u32, String> {
    let low = field & LT_LINKTYPE;
    let reserved = field & LT_RESERVED;
    let fcs = if field & LT_FCS_PRESENT != 0 {
        2 * (field >> LT_FCS_WORDS_SHIFT)
    } else {
        0
    };
    if low == u32::from(DataLink::ETHERNET) && reserved == 0 {
        return Ok(fcs);
    }
    let low_type = DataLink::from(low);
    Err(if low == field {
        linktype_name(low_type)
    } else if reserved != 0 {
        match low_type {
            DataLink::Unknown(_) => "unknown".to_string(),
            known => format!(
                "{}, reserved bits {reserved:#010x} set",
                linktype_name(known)
            ),
        }
    } else {
        let low_name = match low_type {
            DataLink::Unknown(_) => format!("unknown link type {low}"),
            known => linktype_name(known),
        };
        if fcs > 0 {
            format!("{low_name} with a {fcs}-byte FCS")
        } else {
            low_name
        }
    })
}

/// How many of a frame's `captured` bytes come before its FCS. The FCS is the last `fcs`
/// bytes of the frame on the wire (`orig_len` long), so a snaplen-truncated record holds only
/// part of it or none of it, and only that part goes. A record claiming an original length
/// below its captured length is taken as `captured` long (the draft lets readers do so); a
/// frame shorter than its FCS has nothing recognisable to strip and is kept whole.
fn len_without_fcs(captured: usize, orig_len: u32, fcs: u32) -> usize {
    let captured_u64 = u64::try_from(captured).unwrap_or(u64::MAX);
    let wire = u64::from(orig_len).max(captured_u64);
    match wire.checked_sub(u64::from(fcs)) {
        Some(before_fcs) if before_fcs < captured_u64 => {
            usize::try_from(before_fcs).unwrap_or(captured)
        }
        _ => captured,
    }
}

/// Drops the FCS bytes (see [`len_without_fcs`]) from the end of a captured frame.
fn strip_fcs(mut data: Vec<u8>, orig_len: u32, fcs: u32) -> Vec<u8> {
    let keep = len_without_fcs(data.len(), orig_len, fcs);
    data.truncate(keep);
    data
}

/// The tcpdump.org name of a link type (`LINKTYPE_RAW`), or `unknown`.
fn linktype_name(linktype: DataLink) -> String {
    match linktype {
        DataLink::Unknown(_) => "unknown".to_string(),
        known => format!("LINKTYPE_{known:?}"),
    }
}

/// Checks that a pcapng packet's interface was described (in this section, before the
/// packet) and captures Ethernet, and returns it. `id` is `None` for a simple packet block,
/// which belongs to the first interface.
fn check_interface<'a, 'b>(
    interfaces: &'a [InterfaceDescriptionBlock<'b>],
    id: Option<u32>,
) -> Result<&'a InterfaceDescriptionBlock<'b>, Fail> {
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
        return Ok(idb);
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

/// The FCS bytes ending each packet of a pcapng interface: its `if_fcslen` option, read in
/// bytes as Wireshark reads it (the pcapng draft's text says bits, but its own example, 4, is
/// an Ethernet FCS in bytes); none without the option.
fn interface_fcs(idb: &InterfaceDescriptionBlock<'_>) -> u32 {
    idb.options
        .iter()
        .find_map(|o| match o {
            InterfaceDescriptionOption::IfFcsLen(n) => Some(u32::from(*n)),
            _ => None,
        })
        .unwrap_or(0)
}

/// The FCS length in bytes that a packet's `epb_flags` (or obsolete `pack_flags`) word gives,
/// which overrides the interface's; `None` when the flags leave it unknown (0).
fn flags_fcs(flags: Option<u32>) -> Option<u32> {
    flags
        .map(|f| (f >> EPB_FLAGS_FCS_SHIFT) & EPB_FLAGS_FCS_MASK)
        .filter(|&n| n != 0)
}

/// What the reader needs of a pcapng packet block, owned so the block can be let go.
struct NgPacket {
    /// `None` for a simple packet block (interface 0).
    interface: Option<u32>,
    data: Vec<u8>,
    orig_len: u32,
    /// The packet's own FCS length in bytes, overriding the interface's.
    fcs: Option<u32>,
}

impl<R: Read> Iterator for CaptureReader<R> {
    type Item = Result<Vec<u8>, SimError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let got = match &mut self.inner {
            Inner::Pcap(r, fcs) => match r.next_raw_packet()? {
                Ok(raw) => {
                    self.pos += PCAP_RECORD + u64::from(raw.incl_len);
                    Ok(strip_fcs(raw.data.into_owned(), raw.orig_len, *fcs))
                }
                Err(e) => Err(Fail::Corrupt(pcap_reason(e))),
            },
            Inner::PcapNg(r) => loop {
                let block = match r.next_block()? {
                    Ok(b) => b,
                    Err(e) => break Err(Fail::Corrupt(pcap_reason(e))),
                };
                let packet = match block {
                    Block::EnhancedPacket(p) => NgPacket {
                        interface: Some(p.interface_id),
                        fcs: flags_fcs(p.options.iter().find_map(|o| match o {
                            EnhancedPacketOption::Flags(f) => Some(*f),
                            _ => None,
                        })),
                        orig_len: p.original_len,
                        data: p.data.into_owned(),
                    },
                    Block::SimplePacket(p) => NgPacket {
                        interface: None,
                        fcs: None,
                        orig_len: p.original_len,
                        data: p.data.into_owned(),
                    },
                    Block::Packet(p) => NgPacket {
                        interface: Some(u32::from(p.interface_id)),
                        fcs: flags_fcs(p.options.iter().find_map(|o| match o {
                            PacketOption::Flags(f) => Some(*f),
                            _ => None,
                        })),
                        orig_len: p.original_len,
                        data: p.data.into_owned(),
                    },
                    _ => {
                        self.pos += 1;
                        continue;
                    }
                };
                // On failure `pos` stays at the offending block, as for a corrupt one.
                let idb = match check_interface(r.interfaces(), packet.interface) {
                    Ok(idb) => idb,
                    Err(why) => break Err(why),
                };
                let mut data = packet.data;
                if packet.interface.is_none() {
                    // A simple packet block has no captured length: it is the original length
                    // cut to the interface's snaplen (0: none), and pcap-file hands over the
                    // block's padding with the data.
                    let snaplen = if idb.snaplen == 0 {
                        u32::MAX
                    } else {
                        idb.snaplen
                    };
                    let captured = packet.orig_len.min(snaplen);
                    data.truncate(usize::try_from(captured).unwrap_or(usize::MAX));
                }
                let fcs = packet.fcs.unwrap_or_else(|| interface_fcs(idb));
                self.pos += 1;
                break Ok(strip_fcs(data, packet.orig_len, fcs));
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
#[path = "capture_tests.rs"]
mod tests;
