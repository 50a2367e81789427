//! Tests of the capture reader and writer (kept apart from `capture.rs` for its size).

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
    let err = CaptureReader::new(Cursor::new(vec![0xd4, 0xc3]), Path::new("x")).expect_err("short");
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
    let got: Vec<Vec<u8>> = CaptureReader::new(Cursor::new(bytes.clone()), Path::new("a.pcapng"))
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

/// Opening a pcap whose header link-type field is `linktype` fails with `NotEthernet`,
/// naming the field, `name` and the header's byte offset.
fn assert_refused(linktype: u32, name: &str) {
    let err = CaptureReader::new(
        Cursor::new(pcap_with_linktype(linktype)),
        Path::new("x.pcap"),
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
        msg.starts_with("x.pcap: pcap header (byte offset 20)"),
        "{msg}"
    );
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
        assert_refused(linktype, name);
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
        msg.contains(
            "frame 1 (block 3): the packet names interface 3, but only interface 0..=0 is described"
        ),
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

/// A pcap built by hand (little-endian, microseconds, snaplen 65535) with link-type field
/// `linktype` and one record per `(data, orig_len)`: pcap-file's writer refuses records whose
/// original length is below their captured length, which some tests need.
fn pcap_records(linktype: u32, records: &[(Vec<u8>, u32)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&linktype.to_le_bytes());
    for (data, orig_len) in records {
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&orig_len.to_le_bytes());
        b.extend_from_slice(data);
    }
    b
}

fn read_all(bytes: Vec<u8>, name: &str) -> Vec<Vec<u8>> {
    CaptureReader::new(Cursor::new(bytes), Path::new(name))
        .expect("open")
        .collect::<Result<_, _>>()
        .expect("read")
}

/// 0..n, so a frame's cut end is visible.
fn counting(n: u8) -> Vec<u8> {
    (0..n).collect()
}

/// Ethernet with the P bit and an FCS length of 2 words: every frame loses its last 4 bytes,
/// and a corrupt record is still named by its byte offset in the file.
#[test]
fn pcap_fcs_is_stripped() {
    let bytes = pcap_with_linktype(0x2400_0001);
    let want: Vec<Vec<u8>> = frames()
        .into_iter()
        .map(|f| f[..f.len() - 4].to_vec())
        .collect();
    assert_eq!(read_all(bytes.clone(), "fcs.pcap"), want);

    let mut cut = bytes;
    cut.truncate(cut.len() - 3);
    let mut r = CaptureReader::new(Cursor::new(cut), Path::new("fcs.pcap")).expect("open");
    for f in &want[..4] {
        assert_eq!(&r.next().expect("frame").expect("good frame"), f);
    }
    let msg = r.next().expect("item").expect_err("truncated").to_string();
    assert!(
        msg.contains("frame 4") && msg.contains("byte offset 204"),
        "{msg}"
    );

    // Other FCS lengths are honoured too (3 words: 6 bytes), big-endian files alike.
    let six = read_all(pcap_with_linktype(0x3400_0001), "fcs6.pcap");
    assert_eq!(six[1], frames()[1][..frames()[1].len() - 6].to_vec());
    let mut be = pcap_with_linktype(0x2400_0001);
    be[..4].copy_from_slice(&0xa1b2_c3d4u32.to_be_bytes());
    be[4..8].copy_from_slice(&[0, 2, 0, 4]);
    be[16..20].copy_from_slice(&65535u32.to_be_bytes());
    be[20..24].copy_from_slice(&0x2400_0001u32.to_be_bytes());
    let mut at = 24;
    for f in frames() {
        let n = f.len() as u32;
        be[at + 8..at + 12].copy_from_slice(&n.to_be_bytes());
        be[at + 12..at + 16].copy_from_slice(&n.to_be_bytes());
        at += 16 + f.len();
    }
    assert_eq!(read_all(be, "be.pcap")[4], want[4]);
}

/// The FCS is the last bytes of the frame on the wire: a snaplen-truncated record holds part
/// of it (only that part goes) or none of it (nothing goes).
#[test]
fn pcap_truncated_records_strip_only_the_captured_fcs() {
    let records = vec![
        (counting(20), 20),  // whole frame: 16 kept
        (counting(20), 22),  // 2 of the 4 FCS bytes captured: 18 kept
        (counting(20), 24),  // FCS just missed: all 20 kept
        (counting(20), 100), // truncated well before the FCS: all kept
        (counting(2), 2),    // shorter than its FCS: nothing to strip
        (counting(0), 0),    // empty record
        (counting(20), 10),  // original length below captured: taken as 20, 16 kept
    ];
    let got = read_all(pcap_records(0x2400_0001, &records), "snap.pcap");
    let lens: Vec<usize> = got.iter().map(Vec::len).collect();
    assert_eq!(lens, vec![16, 18, 20, 20, 2, 0, 16]);
    for (g, (data, _)) in got.iter().zip(&records) {
        assert_eq!(
            g[..],
            data[..g.len()],
            "the frame's head is kept as captured"
        );
    }
    // Without an FCS the same records are read as captured.
    let plain = read_all(pcap_records(1, &records), "plain.pcap");
    assert_eq!(
        plain,
        records.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>()
    );
}

/// The arithmetic never underflows or panics at the extremes, and never grows a frame.
#[test]
fn fcs_length_arithmetic_is_total() {
    for (captured, orig, fcs, want) in [
        (0, 0, 0, 0),
        (0, 0, 30, 0),
        (60, 64, 4, 60),
        (64, 64, 4, 60),
        (64, 64, 255, 64),
        (3, 3, 4, 3),
        (3, u32::MAX, 4, 3),
        (100, 0, 4, 96),
        (usize::MAX, u32::MAX, 4, usize::MAX - 4),
        (usize::MAX, 0, 0, usize::MAX),
        (10, u32::MAX, u32::MAX, 0),
    ] {
        assert_eq!(
            len_without_fcs(captured, orig, fcs),
            want,
            "captured {captured}, orig {orig}, fcs {fcs}"
        );
    }
}

proptest::proptest! {
    /// Stripping keeps a prefix, removes at most `fcs` bytes, and matches the draft's reading
    /// (captured bytes before `orig_len - fcs`) whenever the record is consistent.
    #[test]
    fn fcs_strip_keeps_a_prefix(captured in 0usize..2000, orig in 0u32..3000, fcs in 0u32..40) {
        let keep = len_without_fcs(captured, orig, fcs);
        proptest::prop_assert!(keep <= captured);
        proptest::prop_assert!(captured - keep <= fcs as usize);
        if orig as usize >= captured && orig >= fcs {
            proptest::prop_assert_eq!(keep, captured.min((orig - fcs) as usize));
        }
    }
}

/// Reserved bits (16-25 and 27) may mean something this reader does not know: refused with
/// the raw field and the link type it would have been.
#[test]
fn pcap_link_types_with_reserved_bits_are_refused() {
    for (linktype, name) in [
        (
            0x0001_0001,
            "LINKTYPE_ETHERNET, reserved bits 0x00010000 set",
        ),
        (
            0x0800_0001,
            "LINKTYPE_ETHERNET, reserved bits 0x08000000 set",
        ),
        (
            0x2600_0001,
            "LINKTYPE_ETHERNET, reserved bits 0x02000000 set",
        ),
        (0x2480_0065, "LINKTYPE_RAW, reserved bits 0x00800000 set"),
    ] {
        assert_refused(linktype, name);
    }
}

/// An FCS does not make a raw-IP or cooked capture Ethernet; the message names the low link
/// type.
#[test]
fn pcap_non_ethernet_link_types_with_an_fcs_are_refused() {
    for (linktype, name) in [
        (0x2400_0065, "LINKTYPE_RAW with a 4-byte FCS"),
        (0x1400_0071, "LINKTYPE_LINUX_SLL with a 2-byte FCS"),
        (0x2400_012c, "unknown link type 300 with a 4-byte FCS"),
        (0x2000_0065, "LINKTYPE_RAW"),
    ] {
        assert_refused(linktype, name);
    }
}

/// Without the P bit the FCS length is unknown and not interpreted (as for plain link type 1:
/// nothing stripped); the P bit with a length of 0 says there is no FCS.
#[test]
fn pcap_fcs_length_without_the_p_bit_strips_nothing() {
    for linktype in [0x2000_0001, 0xf000_0001, 0x0400_0001] {
        assert_eq!(
            read_all(pcap_with_linktype(linktype), "p.pcap"),
            frames(),
            "{linktype:#x}"
        );
    }
}

fn idb_fcs(fcs: Option<u8>) -> InterfaceDescriptionBlock<'static> {
    InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0xffff,
        options: fcs
            .map(|n| vec![InterfaceDescriptionOption::IfFcsLen(n)])
            .unwrap_or_default(),
    }
}

/// A pcapng interface's `if_fcslen` (bytes) is stripped from its packets, and only from its
/// own: an interface without it strips nothing; a truncated packet loses only the captured
/// part of its FCS.
#[test]
fn pcapng_if_fcslen_is_stripped_per_interface() {
    let mut w = ng_writer();
    w.write_pcapng_block(idb_fcs(Some(4))).expect("idb");
    w.write_pcapng_block(idb_fcs(None)).expect("idb");
    w.write_pcapng_block(epb(0, &counting(20))).expect("epb");
    w.write_pcapng_block(epb(1, &counting(20))).expect("epb");
    let mut cut = epb(0, &counting(20));
    cut.original_len = 22;
    w.write_pcapng_block(cut).expect("epb");
    let mut cut = epb(0, &counting(20));
    cut.original_len = 1500;
    w.write_pcapng_block(cut).expect("epb");
    let got = read_all(w.into_inner(), "fcs.pcapng");
    assert_eq!(
        got,
        vec![counting(16), counting(20), counting(18), counting(20)]
    );

    // The fixture frames through an FCS interface, one by one, as for pcap.
    let mut w = ng_writer();
    w.write_pcapng_block(idb_fcs(Some(4))).expect("idb");
    for f in frames() {
        w.write_pcapng_block(epb(0, &f)).expect("epb");
    }
    let want: Vec<Vec<u8>> = frames()
        .into_iter()
        .map(|f| f[..f.len() - 4].to_vec())
        .collect();
    assert_eq!(read_all(w.into_inner(), "f.pcapng"), want);
}

/// A packet's `epb_flags` FCS length (bits 5-8, bytes) overrides its interface's; 0 there
/// means unknown, and the interface's applies.
#[test]
fn pcapng_epb_flags_fcs_length_overrides_the_interface() {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    let with_flags = |flags: u32| {
        let mut p = epb(0, &counting(20));
        p.options = vec![EnhancedPacketOption::Flags(flags)];
        p
    };
    let mut w = ng_writer();
    w.write_pcapng_block(idb_fcs(Some(4))).expect("idb");
    w.write_pcapng_block(with_flags(2 << 5)).expect("epb");
    w.write_pcapng_block(with_flags(0b01)).expect("epb"); // inbound, FCS unknown
    let got = read_all(w.into_inner(), "flags.pcapng");
    assert_eq!(got, vec![counting(18), counting(16)]);
    let mut w = ng_writer();
    w.write_pcapng_block(idb_fcs(None)).expect("idb");
    w.write_pcapng_block(with_flags(4 << 5)).expect("epb");
    assert_eq!(read_all(w.into_inner(), "f.pcapng"), vec![counting(16)]);
}

/// A simple packet block is its original length long (cut to the interface's snaplen), not
/// its padded data; an FCS interface strips from it too.
#[test]
fn pcapng_simple_packets_drop_padding_and_fcs() {
    use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
    let spb = |n: u8| SimplePacketBlock {
        original_len: u32::from(n),
        data: counting(n).into(),
    };
    let mut w = ng_writer();
    w.write_pcapng_block(idb_fcs(None)).expect("idb");
    w.write_pcapng_block(spb(17)).expect("spb");
    assert_eq!(read_all(w.into_inner(), "s.pcapng"), vec![counting(17)]);
    let mut w = ng_writer();
    w.write_pcapng_block(idb_fcs(Some(4))).expect("idb");
    w.write_pcapng_block(spb(21)).expect("spb");
    assert_eq!(read_all(w.into_inner(), "s.pcapng"), vec![counting(17)]);
    let mut w = ng_writer();
    let mut idb = idb_fcs(None);
    idb.snaplen = 16;
    w.write_pcapng_block(idb).expect("idb");
    w.write_pcapng_block(SimplePacketBlock {
        original_len: 60,
        data: counting(16).into(),
    })
    .expect("spb");
    assert_eq!(read_all(w.into_inner(), "s.pcapng"), vec![counting(16)]);
}

/// A pcap cut inside its 24-byte global header names the header's byte range.
#[test]
fn pcap_cut_inside_its_global_header_names_the_range() {
    let mut bytes = Vec::new();
    let w = CaptureWriter::new(&mut bytes, Path::new("x")).expect("header");
    drop(w);
    assert_eq!(bytes.len(), 24);
    let err = CaptureReader::new(Cursor::new(bytes[..23].to_vec()), Path::new("x"))
        .expect_err("cut header");
    assert!(err.to_string().contains("bytes 0..24"), "{err}");
}
