//! Receive-side scaling: which lane (ME hardware thread) a frame goes to.
//!
//! Flows are hashed with the Toeplitz function over the IP 5-tuple (source address,
//! destination address, source port, destination port — Microsoft's RSS input order) using
//! the standard 40-byte default key, and `hash % lanes` picks the lane. All frames of a flow
//! land on one lane, which is what keeps per-flow order (a lane runs its frames in arrival
//! order) and keeps per-flow map state on one ME (see `merge`).
//!
//! TCP and UDP hash with ports; fragments (offset ≠ 0 or more-fragments set), other IP
//! protocols and frames too short for ports hash the two addresses only. IPv6 hashes its
//! 16-byte addresses the same way. One 802.1Q tag is skipped. Non-IP frames go to lane 0 (a
//! real NIC's default queue) or, with [`NonIp::Mac`], are hashed by their MAC addresses.

/// The Microsoft RSS default key (40 bytes), used by most NIC drivers as their default.
pub const MS_DEFAULT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

use std::sync::{Arc, OnceLock};

/// The longest hash input the key supports: 40 - 4 bytes (IPv6 addresses and ports).
const MAX_INPUT: usize = 36;

mod clmul;
pub use clmul::Clmul;
#[cfg(test)]
use clmul::clmul_portable;

/// Where non-IP frames go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonIp {
    /// Lane 0, as a NIC's default queue.
    #[default]
    Lane0,
    /// Toeplitz over destination and source MAC.
    Mac,
}

/// A Toeplitz hasher with one 256-entry table per input byte position (36 KiB), so hashing
/// costs one table load and XOR per input byte instead of eight shifts and XORs.
///
/// The tables are shared (immutable once built): [`Toeplitz::ms_default`] builds the default
/// key's once per process. Why: every `simulate` call built them (a 36 KiB `calloc` and
/// fill, ~150 k host instructions and ~3% of a 1,000-frame call's time, callgrind and perf
/// of `simspeed repeat 1000 1`), a fixed cost per call. An `Arc` rather than a `&'static`:
/// the hot path reaches the tables with one load either way (the `Arc`'s pointer, the data
/// at a constant offset), and a hasher for another key frees its tables.
#[derive(Clone)]
pub struct Toeplitz {
    table: Arc<[[u32; 256]; MAX_INPUT]>,
}

impl std::fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Toeplitz")
    }
}

impl Toeplitz {
    /// Tables for `key`.
    ///
    /// Each entry is one XOR: an entry's bits but the lowest set one form a smaller entry,
    /// already filled. Why: with each entry folded from its bits, building the tables cost
    /// ~470 k host instructions a run (callgrind, demo: ~2.4 a frame of the 200,000-frame
    /// bench), ~40 k so.
    pub fn new(key: &[u8; 40]) -> Toeplitz {
        let mut table = Box::new([[0u32; 256]; MAX_INPUT]);
        for (pos, row) in table.iter_mut().enumerate() {
            // Bit i of the input (MSB first) contributes the 32-bit key window starting at
            // key bit i: for the byte at `pos`, key bits `8 pos .. 8 pos + 39` (the last
            // byte's are 280..319, the key's end).
            let mut bits = [0u8; 8];
            for (b, k) in bits[3..].iter_mut().zip(&key[pos..]) {
                *b = *k;
            }
            let x = u64::from_be_bytes(bits);
            // Input bit `0x80 >> k` of the byte: the window at key bit `8 pos + k`.
            let windows: [u32; 8] = std::array::from_fn(|k| (x >> (8 - k)) as u32);
            for v in 1..256usize {
                let low = v.trailing_zeros() as usize;
                row[v] = row[v & (v - 1)] ^ windows[7 - low];
            }
        }
        Toeplitz {
            table: Arc::from(table),
        }
    }

    /// The hasher for [`MS_DEFAULT_KEY`], its tables built once per process and shared.
    pub fn ms_default() -> Toeplitz {
        static DEFAULT: OnceLock<Toeplitz> = OnceLock::new();
        DEFAULT
            .get_or_init(|| Toeplitz::new(&MS_DEFAULT_KEY))
            .clone()
    }

    /// The hash of `input` (at most 36 bytes; longer input is cut).
    pub fn hash(&self, input: &[u8]) -> u32 {
        self.hash2(input, &[])
    }

    /// The hash of `a` followed by `b` (at most 36 bytes in all; longer input is cut),
    /// without copying them together: RSS hashes addresses then ports, read in place.
    #[inline]
    pub fn hash2(&self, a: &[u8], b: &[u8]) -> u32 {
        let (ta, tb) = self.table.split_at(a.len().min(MAX_INPUT));
        let mut h = 0;
        for (row, &x) in ta.iter().zip(a) {
            h ^= row[usize::from(x)];
        }
        for (row, &x) in tb.iter().zip(b) {
            h ^= row[usize::from(x)];
        }
        h
    }

    /// The hash of exactly 12 bytes (IPv4 addresses and ports, the common case): a fixed
    /// count lets the loop unroll with no bounds checks.
    #[inline(always)]
    fn hash12(&self, input: &[u8; 12]) -> u32 {
        let mut h = 0;
        for (row, &x) in self.table.iter().zip(input) {
            h ^= row[usize::from(x)];
        }
        h
    }
}

/// The Toeplitz hash of the common frame's 12 bytes (IPv4 addresses and ports): the reading
/// loop is generic over how ([`Toeplitz`]'s tables, or [`Clmul`] by carry-less multiply).
pub trait Hash12 {
    /// The Toeplitz hash of `input`.
    fn hash12(&self, input: &[u8; 12]) -> u32;

    /// This hasher ready for a loop over frames: its constants where the loop keeps them
    /// (see [`Clmul`]).
    fn ready(&self) -> impl Hash12 + '_;
}

impl<T: Hash12> Hash12 for &T {
    #[inline(always)]
    fn hash12(&self, input: &[u8; 12]) -> u32 {
        (**self).hash12(input)
    }

    #[inline(always)]
    fn ready(&self) -> impl Hash12 + '_ {
        (**self).ready()
    }
}

impl Hash12 for Toeplitz {
    #[inline(always)]
    fn hash12(&self, input: &[u8; 12]) -> u32 {
        Toeplitz::hash12(self, input)
    }

    #[inline(always)]
    fn ready(&self) -> impl Hash12 + '_ {
        self
    }
}

/// `x / d` and `x % d` for a fixed divisor of 32-bit values without a division instruction
/// (Lemire, Kaser and Kurz, "Faster remainder by direct computation", 2019: with
/// `m = ceil(2^64 / d)`, both are exact for every 32-bit `x` and `d >= 2`; `d = 1` is
/// handled apart). RSS places every frame by the fraction of its hash over the lane count
/// ([`Rss::place`]), and a 64-bit division takes tens of cycles on the hosts this runs on.
#[derive(Debug, Clone, Copy)]
pub struct FastDiv {
    d: u32,
    /// `ceil(2^64 / d)`; 0 when `d` is 1.
    m: u64,
}

impl FastDiv {
    /// Division by `d` (at least 1).
    pub fn new(d: u32) -> FastDiv {
        let d = d.max(1);
        let m = if d == 1 {
            0
        } else {
            (u64::MAX / u64::from(d)) + 1
        };
        FastDiv { d, m }
    }

    /// `x / d`.
    #[inline]
    pub fn quotient(self, x: u32) -> u32 {
        if self.d == 1 {
            return x;
        }
        ((u128::from(self.m) * u128::from(x)) >> 64) as u32
    }

    /// The fraction of `x / d`, in units of 2^-64: `x % d = scale(fraction(x), d)` (0 when
    /// `d` is 1, as `m` is then 0).
    #[inline]
    fn fraction(self, x: u32) -> u64 {
        self.m.wrapping_mul(u64::from(x))
    }

    /// `floor(f × n / 2^64)`.
    #[inline]
    fn scale(f: u64, n: u32) -> u32 {
        ((u128::from(f) * u128::from(n)) >> 64) as u32
    }

    /// `x % d` (0 when `d` is 1: its fraction is 0).
    #[inline]
    pub fn remainder(self, x: u32) -> u32 {
        FastDiv::scale(self.fraction(x), self.d)
    }
}

/// Maps frames to lanes.
#[derive(Debug, Clone)]
pub struct Rss {
    hasher: Toeplitz,
    /// The common frame's hash by carry-less multiply, where the host has it (see [`Clmul`]).
    clmul: Option<Clmul>,
    lanes: FastDiv,
    /// Lanes are `mes × threads`: lane `l` is thread `l % threads` of ME `l / threads`.
    mes: u32,
    threads: u32,
    non_ip: NonIp,
}

impl Rss {
    /// RSS over `lanes` lanes with the default key.
    pub fn new(lanes: u32, non_ip: NonIp) -> Rss {
        Rss::with_threads(lanes, 1, non_ip)
    }

    /// RSS over the `mes × threads` lanes of `mes` MEs with `threads` threads each (see
    /// [`Rss::place`]); the product saturates (a checked NIC stays far below `u32::MAX`).
    pub fn with_threads(mes: u32, threads: u32, non_ip: NonIp) -> Rss {
        let (mes, threads) = (mes.max(1), threads.max(1));
        Rss {
            hasher: Toeplitz::ms_default(),
            clmul: Clmul::new(&MS_DEFAULT_KEY),
            lanes: FastDiv::new(mes.saturating_mul(threads)),
            mes,
            threads,
            non_ip,
        }
    }

    /// The hash of a frame, or `None` for non-IP frames under [`NonIp::Lane0`].
    ///
    /// Inlined into the reading loop with only the common frame's path (`ipv4_l4_input`);
    /// the call, its spills and the general parser's prologue cost ~15 host instructions a
    /// frame when every frame went through one out-of-line function (callgrind).
    #[inline(always)]
    pub fn hash(&self, frame: &[u8]) -> Option<u32> {
        match ipv4_l4_input(frame) {
            Some(input) => Some(self.hasher.hash12(input)),
            None => self.hash_other(frame),
        }
    }

    /// [`Rss::hash`] of every frame but the common one.
    #[inline(never)]
    fn hash_other(&self, frame: &[u8]) -> Option<u32> {
        let (a, b) = hash_input(frame, self.non_ip)?;
        Some(self.hasher.hash2(a, b))
    }

    /// The lane of a frame (inlined for the reading loop, see [`Rss::hash`]).
    #[inline(always)]
    pub fn lane(&self, frame: &[u8]) -> u32 {
        self.hash(frame).map_or(0, |h| self.lanes.remainder(h))
    }

    /// The ME and thread of a frame: `(lane / threads, lane % threads)` of [`Rss::lane`].
    ///
    /// Why not two divisions: the lane is `floor(f × lanes)` for the fraction `f` of
    /// `hash / lanes` that [`FastDiv`] computes (exactly, Lemire et al.), and for an integer
    /// `threads`, `floor(floor(f × lanes) / threads) = floor(f × lanes / threads) =
    /// floor(f × mes)`: the ME is the high half of `f × mes`; and with `g` its low half
    /// (`f × mes - me`), `floor(g × threads) = floor(f × lanes) - me × threads` is the
    /// thread. Five multiplies and two branches (a lane, then its ME and thread) became
    /// three multiplies: ~12 host instructions a frame fewer (callgrind, demo).
    #[inline(always)]
    pub fn place(&self, frame: &[u8]) -> (u32, u32) {
        match self.hash(frame) {
            Some(h) => self.split(h),
            None => (0, 0),
        }
    }

    /// [`Rss::place`] of the common frame (see `ipv4_l4_input`), `None` for any other: the
    /// reading loop tests for a runt only then (a frame the common path takes is long
    /// enough), ~1 host instruction a frame fewer (callgrind, demo).
    #[inline(always)]
    pub fn place_common(&self, frame: &[u8]) -> Option<(u32, u32)> {
        self.place_common_by(&self.hasher, frame)
    }

    /// [`Rss::place_common`] with the common frame hashed by `hasher`, which must hash as
    /// this RSS's key does ([`Rss::table`], or [`Rss::clmul`]).
    #[inline(always)]
    pub fn place_common_by<H: Hash12>(&self, hasher: &H, frame: &[u8]) -> Option<(u32, u32)> {
        let input = ipv4_l4_input(frame)?;
        Some(self.split(hasher.hash12(input)))
    }

    /// Whether [`Rss::place_common`] takes `frame`.
    #[inline(always)]
    pub fn is_common(&self, frame: &[u8]) -> bool {
        ipv4_l4_input(frame).is_some()
    }

    /// The key's tables (every frame).
    pub fn table(&self) -> &Toeplitz {
        &self.hasher
    }

    /// The key's carry-less multiply hasher for the common frame, if the host has one.
    pub fn clmul(&self) -> Option<&Clmul> {
        self.clmul.as_ref()
    }

    /// [`Rss::place`] of a frame [`Rss::place_common`] does not take.
    #[inline(never)]
    pub fn place_other(&self, frame: &[u8]) -> (u32, u32) {
        self.hash_other(frame).map_or((0, 0), |h| self.split(h))
    }

    /// The ME and thread of hash `h` (see [`Rss::place`]).
    #[inline(always)]
    fn split(&self, h: u32) -> (u32, u32) {
        // Exact when the lanes are `mes × threads` (always, for a checked NIC; a saturated
        // count still gives an ME below `mes` and a thread below `threads`).
        let f = self.lanes.fraction(h);
        let fm = u128::from(f) * u128::from(self.mes);
        let me = (fm >> 64) as u32;
        (me, FastDiv::scale(fm as u64, self.threads))
    }
}

/// The hash input of the most common frame, read in one piece: untagged IPv4 without options
/// or fragmentation, TCP or UDP, long enough for the ports (addresses at 26..34, ports at
/// 34..38). Every other frame, and any frame this does not recognise, takes [`hash_input`],
/// which gives the same input for these frames.
#[inline(always)]
fn ipv4_l4_input(frame: &[u8]) -> Option<&[u8; 12]> {
    let (h, _) = frame.split_first_chunk::<38>()?;
    let (_, input) = h.split_last_chunk::<12>()?;
    if ipv4_l4_header(h) { Some(input) } else { None }
}

/// Whether bytes 12..24 of a frame are [`ipv4_l4_input`]'s: ethertype 0x0800, version and
/// IHL 0x45, no fragment (the reserved and don't-fragment bits aside), TCP or UDP.
///
/// On x86-64, the bytes 12..28 in one vector, masked and compared with the UDP and the TCP
/// header at once (SSE2, the x86-64 baseline; the compiler makes one XOR and a test of the
/// UDP compare where SSE4.1 is on). Why: byte by byte, the four tests and their branches
/// took 11 host instructions a frame for UDP, this 5 (callgrind, demo: 920.0 -> 916.0 in
/// all, with [`Clmul`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ipv4_l4_header(h: &[u8; 38]) -> bool {
    use std::arch::x86_64::{
        _mm_and_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_setr_epi8,
    };
    // SAFETY: SSE2 is part of x86-64; the 16-byte load (bytes 12..28) lies within the 38.
    unsafe {
        let v = _mm_loadu_si128(h.as_ptr().add(12).cast());
        // Bytes 12, 13, 14, 20 (but its reserved and don't-fragment bits), 21 and 23.
        let mask = _mm_setr_epi8(-1, -1, -1, 0, 0, 0, 0, 0, 0x3f, -1, 0, -1, 0, 0, 0, 0);
        let udp = _mm_setr_epi8(8, 0, 0x45, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0);
        let tcp = _mm_setr_epi8(8, 0, 0x45, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0);
        let m = _mm_and_si128(v, mask);
        _mm_movemask_epi8(_mm_cmpeq_epi8(m, udp)) == 0xffff
            || _mm_movemask_epi8(_mm_cmpeq_epi8(m, tcp)) == 0xffff
    }
}

/// See the x86-64 [`ipv4_l4_header`].
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn ipv4_l4_header(h: &[u8; 38]) -> bool {
    // Ethertype 0x0800 (bytes 12..14, compared as one 16-bit word), version and IHL 0x45
    // (byte 14), flags and fragment offset (bytes 20..22, masked as one word), protocol
    // (byte 23). Whole 32-bit words with masks were narrowed back to byte loads by the
    // compiler and cost ~5 instructions more.
    let ethertype = u16::from_le_bytes([h[12], h[13]]);
    let frag = u16::from_le_bytes([h[20], h[21]]);
    let plain = ethertype == 0x0008 && h[14] == 0x45;
    plain && frag & 0xff3f == 0 && matches!(h[23], 6 | 17)
}

/// The hash input of `frame`, in place: the addresses, then the ports (or nothing).
fn hash_input(frame: &[u8], non_ip: NonIp) -> Option<(&[u8], &[u8])> {
    let be16 = |o: usize| {
        frame
            .get(o..o + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let mut l3 = 14;
    let mut ethertype = be16(12)?;
    if ethertype == 0x8100 {
        ethertype = be16(16)?;
        l3 = 18;
    }
    let (addrs, proto, l4) = match ethertype {
        0x0800 => {
            let ihl = usize::from(*frame.get(l3)? & 0x0f) * 4;
            let hdr = frame.get(l3..l3 + 20)?;
            let frag = u16::from_be_bytes([hdr[6], hdr[7]]);
            let fragmented = frag & 0x3fff != 0;
            let proto = if fragmented || ihl < 20 { 0 } else { hdr[9] };
            (l3 + 12..l3 + 20, proto, l3 + ihl)
        }
        0x86dd => {
            let hdr = frame.get(l3..l3 + 40)?;
            (l3 + 8..l3 + 40, hdr[6], l3 + 40)
        }
        _ => {
            return match non_ip {
                NonIp::Lane0 => None,
                NonIp::Mac => Some((frame.get(0..12)?, &[])),
            };
        }
    };
    let a = frame.get(addrs)?;
    let ports = if matches!(proto, 6 | 17) {
        frame.get(l4..l4 + 4).unwrap_or_default()
    } else {
        &[]
    };
    Some((a, ports))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    /// Microsoft's RSS verification suite, IPv4: (destination, dport, source, sport, hash
    /// over addresses only, hash over addresses and ports).
    type Vector = ([u8; 4], u16, [u8; 4], u16, u32, u32);
    const VECTORS: [Vector; 5] = [
        (
            [161, 142, 100, 80],
            1766,
            [66, 9, 149, 187],
            2794,
            0x323e8fc2,
            0x51ccc178,
        ),
        (
            [65, 69, 140, 83],
            4739,
            [199, 92, 111, 2],
            14230,
            0xd718262a,
            0xc626b0ea,
        ),
        (
            [12, 22, 207, 184],
            38024,
            [24, 19, 198, 95],
            12898,
            0xd2d0a5de,
            0x5c2b394a,
        ),
        (
            [209, 142, 163, 6],
            2217,
            [38, 27, 205, 30],
            48228,
            0x82989176,
            0xafc7327f,
        ),
        (
            [202, 188, 127, 2],
            1303,
            [153, 39, 163, 191],
            44251,
            0x5d1809c5,
            0x10e828a2,
        ),
    ];

    #[test]
    fn microsoft_ipv4_vectors() {
        let t = Toeplitz::new(&MS_DEFAULT_KEY);
        for (dst, dport, src, sport, h2, h4) in VECTORS {
            let mut input = Vec::new();
            input.extend_from_slice(&src);
            input.extend_from_slice(&dst);
            assert_eq!(t.hash(&input), h2, "{src:?} -> {dst:?}");
            input.extend_from_slice(&sport.to_be_bytes());
            input.extend_from_slice(&dport.to_be_bytes());
            assert_eq!(t.hash(&input), h4, "{src:?}:{sport} -> {dst:?}:{dport}");
        }
    }

    /// The process-wide default-key hasher is the one its key builds, and is built once.
    #[test]
    fn shared_default_tables() {
        let (a, b) = (Toeplitz::ms_default(), Toeplitz::ms_default());
        assert!(Arc::ptr_eq(&a.table, &b.table));
        assert!(a.table == Toeplitz::new(&MS_DEFAULT_KEY).table);
        assert!(a.table != Toeplitz::new(&[0x5a; 40]).table);
    }

    fn frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, tcp: bool) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let mut out = Vec::new();
        if tcp {
            let _ = eth
                .ipv4(src, dst, 64)
                .tcp(sport, dport, 1, 100)
                .write(&mut out, &[]);
        } else {
            let _ = eth
                .ipv4(src, dst, 64)
                .udp(sport, dport)
                .write(&mut out, &[1, 2]);
        }
        out
    }

    #[test]
    fn frames_hash_like_the_vectors() {
        let rss = Rss::new(7, NonIp::Lane0);
        for (dst, dport, src, sport, _, h4) in VECTORS {
            assert_eq!(rss.hash(&frame(src, dst, sport, dport, true)), Some(h4));
            assert_eq!(rss.hash(&frame(src, dst, sport, dport, false)), Some(h4));
            assert_eq!(rss.lane(&frame(src, dst, sport, dport, false)), h4 % 7);
        }
        // Fragments hash the addresses only.
        let (dst, dport, src, sport, h2, _) = VECTORS[0];
        let mut f = frame(src, dst, sport, dport, false);
        f[14 + 6] |= 0x20; // more fragments
        assert_eq!(rss.hash(&f), Some(h2));
    }

    use proptest::strategy::Just;

    proptest::proptest! {
        /// The division-free split equals `/` and `%` for every 32-bit value.
        #[test]
        fn fast_div_is_exact(d in 1u32..=u32::MAX, x in proptest::num::u32::ANY, small in 1u32..70) {
            for d in [d, small] {
                let f = FastDiv::new(d);
                proptest::prop_assert_eq!(f.quotient(x), x / d);
                proptest::prop_assert_eq!(f.remainder(x), x % d);
            }
        }

        /// The IPv4 fast path hashes exactly what the general parser hashes, on any bytes
        /// (IPv4 headers made likely).
        #[test]
        fn ipv4_fast_path_equals_the_general_input(
            mut f in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            ipv4 in proptest::bool::ANY,
            ihl5 in proptest::bool::ANY,
            proto in proptest::prop_oneof![Just(6u8), Just(17), proptest::num::u8::ANY],
            frag in proptest::prop_oneof![
                Just(0u16), Just(0x4000), Just(0x8000), Just(0x2000), Just(0x1000),
                Just(0x0100), Just(0x0001), proptest::num::u16::ANY,
            ],
        ) {
            if ipv4 && f.len() >= 15 {
                f[12] = 0x08;
                f[13] = 0x00;
                if ihl5 {
                    f[14] = 0x45;
                }
            }
            // TCP, UDP or another protocol; flags and fragment offset one bit at a time.
            if ipv4 && f.len() >= 24 {
                f[23] = proto;
                f[20..22].copy_from_slice(&frag.to_be_bytes());
            }
            let t = Toeplitz::new(&MS_DEFAULT_KEY);
            for non_ip in [NonIp::Lane0, NonIp::Mac] {
                let general = hash_input(&f, non_ip).map(|(a, b)| t.hash2(a, b));
                let rss = Rss::new(7, non_ip);
                proptest::prop_assert_eq!(rss.hash(&f), general);
                // The reading loop's split of `place` (the common frame, then the rest)
                // places every frame as `place` does.
                let rss = Rss::with_threads(5, 4, non_ip);
                let split = rss.place_common(&f).unwrap_or_else(|| rss.place_other(&f));
                proptest::prop_assert_eq!(split, rss.place(&f));
            }
        }
    }

    /// The Toeplitz hash by its definition, bit by bit: for every set input bit `i` (from
    /// each byte's top), the 32 key bits from key bit `i`.
    fn toeplitz_reference(key: &[u8; 40], input: &[u8]) -> u32 {
        let bit = |bytes: &[u8], i: usize| bytes[i / 8] >> (7 - i % 8) & 1 == 1;
        (0..input.len() * 8)
            .filter(|&i| bit(input, i))
            .fold(0, |h, i| {
                h ^ (0..32).fold(0u32, |w, j| w << 1 | u32::from(bit(key, i + j)))
            })
    }

    proptest::proptest! {
        /// The tables, the carry-less multiply (where the host has it) and its portable
        /// arithmetic all give the definition's hash, for any key and input.
        #[test]
        fn toeplitz_by_tables_and_by_clmul_agree(
            key in proptest::array::uniform32(proptest::num::u8::ANY),
            tail in proptest::array::uniform8(proptest::num::u8::ANY),
            input in proptest::collection::vec(proptest::num::u8::ANY, 0..=36),
            split in 0usize..=36,
        ) {
            let mut k = [0u8; 40];
            k[..32].copy_from_slice(&key);
            k[32..].copy_from_slice(&tail);
            let t = Toeplitz::new(&k);
            let want = toeplitz_reference(&k, &input);
            proptest::prop_assert_eq!(t.hash(&input), want);
            let (a, b) = input.split_at(split.min(input.len()));
            proptest::prop_assert_eq!(t.hash2(a, b), want);
            if let Ok(twelve) = <[u8; 12]>::try_from(&input[..input.len().min(12)]) {
                let want = toeplitz_reference(&k, &twelve);
                let words = [0, 8].map(|at| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&k[at..at + 8]);
                    u64::from_be_bytes(w)
                });
                proptest::prop_assert_eq!(clmul_portable(words, &twelve), want);
                proptest::prop_assert_eq!(Hash12::hash12(&t, &twelve), want);
                if let Some(c) = Clmul::new(&k) {
                    proptest::prop_assert_eq!(c.hash12(&twelve), want);
                    proptest::prop_assert_eq!(c.ready().hash12(&twelve), want);
                }
            }
        }
    }

    /// This host's test run covers the carry-less multiply, not only the tables (CI's and
    /// the project's x86-64 hosts have it).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn clmul_is_used_where_the_host_has_it() {
        let has = std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("avx");
        assert_eq!(Rss::new(4, NonIp::Lane0).clmul().is_some(), has);
    }

    proptest::proptest! {
        /// ME and thread from one fraction equal the lane's division by the threads.
        #[test]
        fn place_splits_the_lane_exactly(
            h in proptest::num::u32::ANY,
            mes in 1u32..=120,
            threads in proptest::prop_oneof![1u32..=8, 1u32..=70_000],
        ) {
            for (mes, threads) in [(mes, threads), (1, threads), (mes, 1), (1, 1)] {
                let rss = Rss::with_threads(mes, threads, NonIp::Lane0);
                let lane = h % (mes * threads);
                proptest::prop_assert_eq!(rss.split(h), (lane / threads, lane % threads));
            }
        }
    }

    #[test]
    fn fast_div_edges() {
        for d in [1u32, 2, 3, 7, 50, 200, 1 << 31, u32::MAX - 1, u32::MAX] {
            let f = FastDiv::new(d);
            for x in [0u32, 1, d - 1, d, d.wrapping_add(1), u32::MAX - 1, u32::MAX] {
                assert_eq!((f.quotient(x), f.remainder(x)), (x / d, x % d), "{x} / {d}");
            }
        }
    }

    #[test]
    fn non_ip_and_short_frames() {
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        assert_eq!(Rss::new(16, NonIp::Lane0).lane(&arp), 0);
        let by_mac = Rss::new(1 << 20, NonIp::Mac);
        assert!(by_mac.hash(&arp).is_some());
        // Truncated IPv4: no hash, lane 0, no panic.
        let mut short = frame([1, 2, 3, 4], [5, 6, 7, 8], 1, 2, false);
        short.truncate(20);
        assert_eq!(Rss::new(16, NonIp::Lane0).lane(&short), 0);
        assert_eq!(Rss::new(16, NonIp::Lane0).lane(&[]), 0);
    }
}
