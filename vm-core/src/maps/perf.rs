//! `BPF_MAP_TYPE_PERF_EVENT_ARRAY`: the channel behind `bpf_perf_event_output`.
//!
//! In the kernel each index holds a perf event that user space opened and each event is bound
//! to one CPU. We model what libbpf's `perf_buffer` sets up: index `i` holds an event on CPU
//! `i`, for every CPU, and the consumer keeps every sample. So an output succeeds only for the
//! current CPU's index (`BPF_F_CURRENT_CPU`, or its number), exactly as on a real system where
//! writing another CPU's event fails with `EOPNOTSUPP`. Records are kept in order, tagged
//! with the CPU, until user space takes them.
//!
//! The kernel pads a raw sample so that its 4-byte size plus data is a multiple of 8; the
//! record here holds exactly the bytes the program wrote.

use super::error::{MapErrno, MapErrorKind};
use super::{BPF_F_CTXLEN_MASK, BPF_F_CURRENT_CPU, BPF_F_INDEX_MASK};
use crate::program::MapDef;

/// One sample a program emitted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PerfRecord {
    /// The CPU (= event index) that received it.
    pub cpu: u32,
    /// The sample bytes.
    pub data: Vec<u8>,
}

#[derive(Clone)]
pub(crate) struct PerfEventArray {
    max_entries: u32,
    ncpus: u32,
    records: Vec<PerfRecord>,
}

impl PerfEventArray {
    /// `max_entries` 0 means "one per CPU", as libbpf fills it in before creating the map.
    pub(crate) fn new(def: &MapDef, ncpus: u32) -> Result<(Self, u32), MapErrorKind> {
        if def.key_size != 4 {
            return Err(MapErrorKind::KeySize {
                got: def.key_size,
                expected: "must be 4",
            });
        }
        if def.value_size != 4 {
            return Err(MapErrorKind::ValueSize {
                got: def.value_size,
                expected: "must be 4 (a perf event fd)",
            });
        }
        if def.initial_value.is_some() {
            return Err(MapErrorKind::InitialValueNotArray);
        }
        let max_entries = if def.max_entries == 0 {
            ncpus
        } else {
            def.max_entries
        };
        Ok((
            PerfEventArray {
                max_entries,
                ncpus,
                records: Vec::new(),
            },
            max_entries,
        ))
    }

    /// `bpf_perf_event_output` / `bpf_skb_output` / `bpf_xdp_output`: flag bits other than the
    /// index and the context length are `EINVAL`; an index past the array is `E2BIG`; an index
    /// with no event (past the CPUs) is `ENOENT`; another CPU's event is `EOPNOTSUPP`.
    pub(crate) fn output(&mut self, flags: u64, cpu: u32, data: &[u8]) -> Result<(), MapErrno> {
        if flags & !(BPF_F_INDEX_MASK | BPF_F_CTXLEN_MASK) != 0 {
            return Err(MapErrno::Inval);
        }
        let mut index = flags & BPF_F_INDEX_MASK;
        if index == BPF_F_CURRENT_CPU {
            index = u64::from(cpu);
        }
        if index >= u64::from(self.max_entries) {
            return Err(MapErrno::TooBig);
        }
        if index >= u64::from(self.ncpus) {
            return Err(MapErrno::NoEnt);
        }
        if index != u64::from(cpu) {
            return Err(MapErrno::OpNotSupp);
        }
        self.records.push(PerfRecord {
            cpu,
            data: data.to_vec(),
        });
        Ok(())
    }

    pub(crate) fn records(&self) -> &[PerfRecord] {
        &self.records
    }

    pub(crate) fn take_records(&mut self) -> Vec<PerfRecord> {
        std::mem::take(&mut self.records)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::def;
    use super::super::*;
    use crate::program::MapType;

    #[test]
    fn output_goes_to_the_current_cpu() {
        let mut m = Map::new(&def(MapType::PerfEventArray, 4, 4, 0), 2).expect("map");
        assert_eq!(m.def().max_entries, 2, "0 becomes ncpus");
        m.perf_output(BPF_F_CURRENT_CPU, 1, b"abc")
            .expect("current cpu");
        m.perf_output(0, 0, b"x")
            .expect("explicit index on its cpu");
        assert_eq!(
            m.perf_records(),
            &[
                PerfRecord {
                    cpu: 1,
                    data: b"abc".to_vec()
                },
                PerfRecord {
                    cpu: 0,
                    data: b"x".to_vec()
                },
            ]
        );
        assert_eq!(m.perf_output(1, 0, b"y"), Err(MapErrno::OpNotSupp));
        assert_eq!(m.perf_output(2, 0, b"y"), Err(MapErrno::TooBig));
        assert_eq!(m.perf_output(1 << 60, 0, b"y"), Err(MapErrno::Inval));
        m.perf_output((16 << 32) | BPF_F_CURRENT_CPU, 0, b"pkt")
            .expect("ctx len bits");
        assert_eq!(m.take_perf_records().len(), 3);
        assert!(m.perf_records().is_empty());
    }

    #[test]
    fn indices_past_the_cpus_have_no_event() {
        let mut m = Map::new(&def(MapType::PerfEventArray, 4, 4, 8), 2).expect("map");
        assert_eq!(m.perf_output(5, 5, b"z"), Err(MapErrno::NoEnt));
        assert_eq!(m.perf_output(8, 0, b"z"), Err(MapErrno::TooBig));
        assert_eq!(m.user_lookup(&0u32.to_le_bytes()), Err(MapErrno::OpNotSupp));
        assert_eq!(m.lookup(&0u32.to_le_bytes(), 0), None);
        assert!(Map::new(&def(MapType::PerfEventArray, 4, 8, 0), 2).is_err());
    }
}
