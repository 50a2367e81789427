//! `BPF_MAP_TYPE_RINGBUF`: a multi-producer, single-consumer byte ring.
//!
//! `max_entries` is the data area size in bytes: a power of two and a multiple of the page
//! size, with `key_size` and `value_size` 0. A record is an 8-byte header (`u32` length with a
//! BUSY bit 31 and DISCARD bit 30, then a `u32` page offset) followed by the data, the whole
//! rounded up to 8 bytes. Producer and consumer positions grow without wrapping; a record fits
//! if the producer stays less than the ring size ahead of the consumer (the kernel's
//! `new_prod_pos - cons_pos > mask` test), so at least 8 bytes always stay free.
//!
//! Slab layout: `[0, size)` is the ring, `[size, 2*size)` a mirror of it. The kernel maps the
//! data pages twice in a row so a record that runs past the end is contiguous for the
//! program; we get the same effect by handing out offsets that may run into the mirror,
//! filling the mirror from the ring when such a record is reserved and copying it back when
//! it is submitted or discarded. The header never wraps (8-aligned positions, 8-byte header).
//!
//! The consumer is user space: [`RingBuf::records`] peeks at committed records in order and
//! [`RingBuf::consume`] takes them and frees their space. Like the kernel's consumer, both
//! stop at the first record still reserved (busy), and skip discarded ones.

use std::collections::VecDeque;

use super::error::{MapErrno, MapErrorKind};
use super::layout::{MAX_SLAB_BYTES, Slab, alloc_slab};
use super::{
    BPF_RB_AVAIL_DATA, BPF_RB_CONS_POS, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, BPF_RB_PROD_POS,
    BPF_RB_RING_SIZE,
};
use crate::program::MapDef;

const PAGE_SIZE: u32 = 4096;
const HDR: u64 = 8;
const BUSY_BIT: u32 = 1 << 31;
const DISCARD_BIT: u32 = 1 << 30;
/// The kernel's `RINGBUF_MAX_RECORD_SZ`.
const MAX_RECORD: u64 = (u32::MAX >> 2) as u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Busy,
    Committed,
    Discarded,
}

#[derive(Debug, Clone, Copy)]
struct Rec {
    /// Producer position of the header.
    pos: u64,
    /// Data length (without header and padding).
    len: u32,
    state: State,
}

impl Rec {
    fn span(&self) -> u64 {
        (u64::from(self.len) + HDR).div_ceil(8) * 8
    }
}

#[derive(Clone)]
pub(crate) struct RingBuf {
    size: u64,
    cons: u64,
    prod: u64,
    /// Records between `cons` and `prod`, in position order.
    recs: VecDeque<Rec>,
    slab: Slab,
}

impl RingBuf {
    pub(crate) fn new(def: &MapDef) -> Result<Self, MapErrorKind> {
        if def.key_size != 0 {
            return Err(MapErrorKind::KeySize {
                got: def.key_size,
                expected: "ring buffers have no key: must be 0",
            });
        }
        if def.value_size != 0 {
            return Err(MapErrorKind::ValueSize {
                got: def.value_size,
                expected: "ring buffers have no value: must be 0",
            });
        }
        let size = def.max_entries;
        if size == 0 || !size.is_power_of_two() || !size.is_multiple_of(PAGE_SIZE) {
            return Err(MapErrorKind::MaxEntries {
                got: size,
                expected: "the ring size must be a power of two and a multiple of 4096",
            });
        }
        if def.initial_value.is_some() {
            return Err(MapErrorKind::InitialValueNotArray);
        }
        if 2 * u64::from(size) > MAX_SLAB_BYTES {
            return Err(MapErrorKind::TooLarge {
                bytes: 2 * u64::from(size),
                limit: MAX_SLAB_BYTES,
            });
        }
        Ok(RingBuf {
            size: u64::from(size),
            cons: 0,
            prod: 0,
            recs: VecDeque::new(),
            slab: alloc_slab(2, size as usize)?,
        })
    }

    pub(crate) fn slab(&self) -> &[u8] {
        &self.slab
    }

    pub(crate) fn slab_mut(&mut self) -> &mut [u8] {
        &mut self.slab
    }

    pub(crate) fn slab_raw(&self) -> (*mut u8, usize) {
        self.slab.as_raw()
    }

    fn mask(&self) -> u64 {
        self.size - 1
    }

    fn write_header(&mut self, pos: u64, len_word: u32) {
        let at = (pos & self.mask()) as usize;
        // Page offset of the header within the data area (the kernel's counts from the map
        // structure; nothing reads it here).
        let pg_off = (at as u32) / PAGE_SIZE;
        self.slab[at..at + 4].copy_from_slice(&len_word.to_le_bytes());
        self.slab[at + 4..at + 8].copy_from_slice(&pg_off.to_le_bytes());
    }

    /// Data range of a record in ring coordinates: (start, length before the end, wrapped length).
    fn data_parts(&self, rec: &Rec) -> (usize, usize, usize) {
        let start = ((rec.pos + HDR) & self.mask()) as usize;
        let len = rec.len as usize;
        // A header in the ring's last 8 bytes puts all the data at the start (start = 0).
        let first = len.min(self.size as usize - start);
        (start, first, len - first)
    }

    /// `bpf_ringbuf_reserve`: the slab offset of `size` writable bytes, or `None` (flags
    /// must be 0, the record must fit the ring and the free space).
    pub(crate) fn reserve(&mut self, size: u64, flags: u64) -> Option<usize> {
        if flags != 0 || size > MAX_RECORD {
            return None;
        }
        let span = (size + HDR).div_ceil(8) * 8;
        if span > self.size {
            return None;
        }
        let new_prod = self.prod + span;
        if new_prod - self.cons > self.mask() {
            return None;
        }
        let rec = Rec {
            pos: self.prod,
            len: size as u32,
            state: State::Busy,
        };
        self.write_header(rec.pos, rec.len | BUSY_BIT);
        // Data offset in the double mapping: right after the header, possibly in the mirror.
        let data_off = (rec.pos & self.mask()) as usize + HDR as usize;
        let end = data_off + size as usize;
        let ring = self.size as usize;
        if end > ring {
            // Show the program what the wrapped part of the ring holds.
            let (lo, hi) = (data_off.max(ring), end);
            let (src_lo, src_hi) = (lo - ring, hi - ring);
            self.slab.copy_within(src_lo..src_hi, lo);
        }
        self.prod = new_prod;
        self.recs.push_back(rec);
        Some(data_off)
    }

    /// `bpf_ringbuf_submit` / `bpf_ringbuf_discard`: `offset` must be what `reserve` returned
    /// for a record still reserved, else `EINVAL` (the verifier guarantees it for real programs).
    pub(crate) fn commit(&mut self, offset: usize, discard: bool) -> Result<(), MapErrno> {
        let mask = self.mask();
        let idx = self
            .recs
            .iter()
            .position(|r| {
                r.state == State::Busy && (r.pos & mask) as usize + HDR as usize == offset
            })
            .ok_or(MapErrno::Inval)?;
        let rec = self.recs[idx];
        let ring = self.size as usize;
        let end = offset + rec.len as usize;
        if end > ring {
            let lo = offset.max(ring);
            self.slab.copy_within(lo..end, lo - ring);
        }
        let (state, word) = if discard {
            (State::Discarded, rec.len | DISCARD_BIT)
        } else {
            (State::Committed, rec.len)
        };
        self.write_header(rec.pos, word);
        if let Some(r) = self.recs.get_mut(idx) {
            r.state = state;
        }
        Ok(())
    }

    /// `bpf_ringbuf_output`: reserve, copy, submit; `EAGAIN` when there is no room.
    pub(crate) fn output(&mut self, data: &[u8], flags: u64) -> Result<(), MapErrno> {
        if flags & !(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP) != 0 {
            return Err(MapErrno::Inval);
        }
        let off = self.reserve(data.len() as u64, 0).ok_or(MapErrno::Again)?;
        self.slab[off..off + data.len()].copy_from_slice(data);
        self.commit(off, false)
    }

    /// `bpf_ringbuf_query`; unknown selectors read as 0, as in the kernel.
    pub(crate) fn query(&self, flags: u64) -> u64 {
        match flags {
            BPF_RB_AVAIL_DATA => self.prod - self.cons,
            BPF_RB_RING_SIZE => self.size,
            BPF_RB_CONS_POS => self.cons,
            BPF_RB_PROD_POS => self.prod,
            _ => 0,
        }
    }

    fn read(&self, rec: &Rec) -> Vec<u8> {
        let (start, first, wrapped) = self.data_parts(rec);
        let mut out = Vec::with_capacity(first + wrapped);
        out.extend_from_slice(&self.slab[start..start + first]);
        out.extend_from_slice(&self.slab[..wrapped]);
        out
    }

    /// Committed records the consumer would read now, oldest first, without consuming them.
    pub(crate) fn records(&self) -> Vec<Vec<u8>> {
        self.recs
            .iter()
            .take_while(|r| r.state != State::Busy)
            .filter(|r| r.state == State::Committed)
            .map(|r| self.read(r))
            .collect()
    }

    /// The consumer: takes committed records up to the first busy one and frees their space.
    pub(crate) fn consume(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(rec) = self.recs.front().copied() {
            if rec.state == State::Busy {
                break;
            }
            if rec.state == State::Committed {
                out.push(self.read(&rec));
            }
            self.cons = rec.pos + rec.span();
            self.recs.pop_front();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::def;
    use super::super::*;
    use crate::program::MapType;

    fn ring(size: u32) -> Map {
        Map::new(&def(MapType::Ringbuf, 0, 0, size), 1).expect("ringbuf")
    }

    #[test]
    fn sizes_are_checked() {
        for (k, v, n) in [
            (0, 0, 0),
            (0, 0, 4096 + 8),
            (0, 0, 3 * 4096),
            (4, 0, 4096),
            (0, 4, 4096),
        ] {
            assert!(
                Map::new(&def(MapType::Ringbuf, k, v, n), 1).is_err(),
                "{k} {v} {n}"
            );
        }
        assert_eq!(ring(8192).slab().len(), 16384);
    }

    #[test]
    fn reserve_submit_discard_and_order() {
        let mut m = ring(4096);
        let a = m.ringbuf_reserve(5, 0).expect("a");
        let b = m.ringbuf_reserve(3, 0).expect("b");
        assert_eq!(a, 8, "data follows the 8-byte header");
        assert_eq!(b, 24, "5 + 8 rounds up to 16");
        assert_eq!(
            &m.slab()[0..4],
            &(5u32 | 1 << 31).to_le_bytes(),
            "busy header"
        );
        m.slab_mut()[b..b + 3].copy_from_slice(b"bbb");
        m.ringbuf_submit(b, 0).expect("submit b");
        assert!(
            m.ringbuf_records().is_empty(),
            "a is still busy and blocks the consumer"
        );
        m.slab_mut()[a..a + 5].copy_from_slice(b"aaaaa");
        m.ringbuf_submit(a, 0).expect("submit a");
        assert_eq!(&m.slab()[0..4], &5u32.to_le_bytes());
        assert_eq!(
            m.ringbuf_records(),
            vec![b"aaaaa".to_vec(), b"bbb".to_vec()]
        );
        let c = m.ringbuf_reserve(1, 0).expect("c");
        m.ringbuf_discard(c, 0).expect("discard");
        assert_eq!(
            m.ringbuf_submit(c, 0),
            Err(MapErrno::Inval),
            "already discarded"
        );
        assert_eq!(m.ringbuf_submit(12345, 0), Err(MapErrno::Inval));
        m.ringbuf_output(b"dd", 0).expect("output");
        assert_eq!(m.ringbuf_query(BPF_RB_AVAIL_DATA), 16 + 16 + 16 + 16);
        assert_eq!(
            m.ringbuf_consume(),
            vec![b"aaaaa".to_vec(), b"bbb".to_vec(), b"dd".to_vec()]
        );
        assert_eq!(m.ringbuf_query(BPF_RB_AVAIL_DATA), 0);
        assert_eq!(m.ringbuf_query(BPF_RB_CONS_POS), 64);
        assert_eq!(m.ringbuf_query(BPF_RB_PROD_POS), 64);
        assert_eq!(m.ringbuf_query(BPF_RB_RING_SIZE), 4096);
        assert_eq!(m.ringbuf_query(99), 0);
        assert_eq!(m.ringbuf_reserve(1, 1), None, "flags must be 0");
        assert_eq!(m.ringbuf_output(b"x", 4), Err(MapErrno::Inval));
    }

    #[test]
    fn space_runs_out_and_comes_back() {
        let mut m = ring(4096);
        // 4096 - 8 bytes can be in flight: 255 records of 16 bytes, not 256.
        for i in 0..255 {
            assert!(m.ringbuf_output(&[i as u8; 8], 0).is_ok(), "record {i}");
        }
        assert_eq!(m.ringbuf_output(&[0; 8], 0), Err(MapErrno::Again));
        assert_eq!(
            m.ringbuf_output(&[0; 8], 0).map_err(|e| e.as_helper_ret()),
            Err(-11)
        );
        assert_eq!(m.ringbuf_reserve(1, 0), None);
        assert_eq!(m.ringbuf_reserve(4096, 0), None, "larger than the ring");
        assert_eq!(m.ringbuf_consume().len(), 255);
        assert!(m.ringbuf_output(&[1; 8], 0).is_ok());
    }

    #[test]
    fn records_wrap_around_the_end() {
        let mut m = ring(4096);
        // Advance to 4096 - 16 and consume, so the next record straddles the end.
        let filler = vec![0u8; 4096 - 16 - 8];
        m.ringbuf_output(&filler, 0).expect("filler");
        assert_eq!(m.ringbuf_consume().len(), 1);
        let off = m.ringbuf_reserve(24, 0).expect("wrapping record");
        assert_eq!(off, 4096 - 8, "data starts 8 bytes before the end");
        let payload: Vec<u8> = (1..=24).collect();
        m.slab_mut()[off..off + 24].copy_from_slice(&payload);
        m.ringbuf_submit(off, 0).expect("submit");
        // The wrapped 16 bytes were copied back to the start of the ring.
        assert_eq!(&m.slab()[0..16], &payload[8..]);
        assert_eq!(m.ringbuf_records(), vec![payload.clone()]);
        assert_eq!(m.ringbuf_consume(), vec![payload]);
        // A header at the very last 8 bytes puts the whole record at the start.
        let mut m = ring(4096);
        m.ringbuf_output(&vec![0u8; 4096 - 16], 0).expect("filler");
        m.ringbuf_consume();
        let off = m.ringbuf_reserve(4, 0).expect("record after an end header");
        assert_eq!(off, 4096);
        m.slab_mut()[off..off + 4].copy_from_slice(b"wxyz");
        m.ringbuf_submit(off, 0).expect("submit");
        assert_eq!(&m.slab()[0..4], b"wxyz");
        assert_eq!(m.ringbuf_records(), vec![b"wxyz".to_vec()]);
    }

    #[test]
    fn user_ops_are_not_supported() {
        let mut m = ring(4096);
        assert_eq!(m.user_lookup(&[]), Err(MapErrno::NotSupp));
        assert_eq!(m.user_update(&[], &[], 0), Err(MapErrno::NotSupp));
        assert_eq!(m.user_delete(&[]), Err(MapErrno::NotSupp));
        assert_eq!(m.get_next_key(None), None);
        assert_eq!(m.lookup(&[], 0), None);
    }
}
