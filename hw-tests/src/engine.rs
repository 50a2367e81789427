//! One interface for every execution engine (kernel JIT, vm-core interpreter, nic-sim, ...)
//! so that a single differential harness can run an input on all of them and compare.
//!
//! An engine that *refuses* an input (the kernel's test runner rejecting a too-short XDP
//! packet, a verifier refusing the program) is not a divergence: the comparison reports it
//! separately. A *fault* (an engine crashing, a syscall failing unexpectedly) is.

mod interp_engine;
mod kernel_engine;

pub use interp_engine::InterpEngine;
pub use kernel_engine::KernelEngine;

/// What a program is run on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestInput {
    /// Packet bytes (or the bpf_conformance `mem` buffer).
    pub packet: Vec<u8>,
    /// Context bytes (`__sk_buff` / `xdp_md`), when the test sets one.
    pub ctx: Option<Vec<u8>>,
}

impl TestInput {
    /// A packet-only input.
    pub fn packet(bytes: impl Into<Vec<u8>>) -> Self {
        TestInput {
            packet: bytes.into(),
            ctx: None,
        }
    }
}

/// The contents of one map after a run: `(key, value)` pairs sorted by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSnapshot {
    /// Map name (as declared by the program).
    pub name: String,
    /// Sorted entries.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl MapSnapshot {
    /// The snapshot of an in-process map set in the form the kernel engine reports: the map
    /// kinds `BPF_MAP_LOOKUP_ELEM` can read back (array and hash kinds), entries sorted by
    /// key, per-CPU values folded by [`MapSnapshot::per_cpu`]. `None` without maps.
    pub fn of_map_set(maps: &vm_core::maps::MapSet, defs: &[vm_core::MapDef]) -> Option<Vec<Self>> {
        use vm_core::MapType as T;
        if defs.is_empty() {
            return None;
        }
        let readable = |t| {
            matches!(
                t,
                T::Array | T::PercpuArray | T::Hash | T::LruHash | T::PercpuHash | T::LruPercpuHash
            )
        };
        Some(
            maps.iter()
                .zip(defs)
                .filter(|(_, def)| readable(def.map_type))
                .map(|(map, def)| {
                    let mut entries = map.entries();
                    entries.sort();
                    if matches!(
                        def.map_type,
                        T::PercpuArray | T::PercpuHash | T::LruPercpuHash
                    ) {
                        MapSnapshot::per_cpu(def.name.clone(), entries, def.value_size)
                    } else {
                        MapSnapshot {
                            name: def.name.clone(),
                            entries,
                        }
                    }
                })
                .collect(),
        )
    }

    /// A snapshot of a per-CPU map in the form engines can compare: which CPU a run used is
    /// not under the caller's control (the kernel runs a test on the calling thread's CPU,
    /// out of `possible_cpus` slots; the interpreter has its own CPU count), so each value
    /// becomes the sorted list of its non-zero per-CPU slices (`stride` = value size rounded
    /// up to 8 bytes, as `BPF_MAP_LOOKUP_ELEM` lays them out).
    pub fn per_cpu(name: String, entries: Vec<(Vec<u8>, Vec<u8>)>, value_size: u32) -> Self {
        let stride = (value_size as usize).next_multiple_of(8).max(1);
        let entries = entries
            .into_iter()
            .map(|(k, v)| {
                let mut slices: Vec<&[u8]> = v
                    .chunks(stride)
                    .filter(|c| c.iter().any(|&b| b != 0))
                    .collect();
                slices.sort_unstable();
                (k, slices.concat())
            })
            .collect();
        MapSnapshot { name, entries }
    }
}

/// What an engine observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineResult {
    /// R0 at exit.
    pub retval: u64,
    /// How many low bits of `retval` the engine really knows: `BPF_PROG_TEST_RUN` reports 32,
    /// an interpreter or the full-R0 conformance harness 64. Comparisons use the narrower.
    pub retval_bits: u32,
    /// The packet after the run.
    pub packet: Vec<u8>,
    /// Map contents after the run, when the engine can read them.
    pub maps: Option<Vec<MapSnapshot>>,
}

/// An engine could not produce a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The engine declines this program or input by design (verifier rejection, packet too
    /// short for the program type, unsupported feature). Not a divergence.
    #[error("refused: {0}")]
    Refused(String),
    /// The engine failed where it should have produced a result.
    #[error("fault: {0}")]
    Fault(String),
}

/// An execution engine.
pub trait Engine {
    /// Short name for reports (`kernel`, `interp`, ...).
    fn name(&self) -> &str;
    /// Runs the engine's program on `input`.
    fn run(&mut self, input: &TestInput) -> Result<EngineResult, EngineError>;
}

/// One engine's answer, labelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineRun {
    /// [`Engine::name`].
    pub engine: String,
    /// What it returned.
    pub result: Result<EngineResult, EngineError>,
}

/// The first difference found between two engines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Reference engine (the first one).
    pub reference: String,
    /// The engine that disagrees.
    pub other: String,
    /// What differs (`retval`, `packet`, `map <name>`, `fault`).
    pub what: String,
    /// Human-readable details.
    pub detail: String,
}

/// Outcome of running one input on several engines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// Every engine produced the same observable result.
    Agree,
    /// At least one engine refused; nothing to compare.
    Refused {
        /// Who refused.
        engine: String,
        /// Why.
        reason: String,
    },
    /// Engines disagree.
    Diverge(Divergence),
}

/// Compares two results. `reference` is usually the kernel.
pub fn compare(reference: &EngineRun, other: &EngineRun) -> Comparison {
    let diverge = |what: &str, detail: String| {
        Comparison::Diverge(Divergence {
            reference: reference.engine.clone(),
            other: other.engine.clone(),
            what: what.to_string(),
            detail,
        })
    };
    let (a, b) = match (&reference.result, &other.result) {
        (Err(EngineError::Refused(r)), _) => {
            return Comparison::Refused {
                engine: reference.engine.clone(),
                reason: r.clone(),
            };
        }
        (_, Err(EngineError::Refused(r))) => {
            return Comparison::Refused {
                engine: other.engine.clone(),
                reason: r.clone(),
            };
        }
        (Err(EngineError::Fault(x)), Err(EngineError::Fault(y))) => {
            return diverge("fault", format!("both faulted: {x} / {y}"));
        }
        (Err(EngineError::Fault(x)), Ok(_)) => {
            return diverge("fault", format!("{} faulted: {x}", reference.engine));
        }
        (Ok(_), Err(EngineError::Fault(y))) => {
            return diverge("fault", format!("{} faulted: {y}", other.engine));
        }
        (Ok(a), Ok(b)) => (a, b),
    };
    let bits = a.retval_bits.min(b.retval_bits).min(64);
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    if a.retval & mask != b.retval & mask {
        return diverge(
            "retval",
            format!(
                "{:#x} vs {:#x} (low {bits} bits compared)",
                a.retval & mask,
                b.retval & mask
            ),
        );
    }
    if a.packet != b.packet {
        let first = a.packet.iter().zip(&b.packet).position(|(x, y)| x != y);
        return diverge(
            "packet",
            format!(
                "lengths {} vs {}, first differing byte at {:?}",
                a.packet.len(),
                b.packet.len(),
                first.unwrap_or(a.packet.len().min(b.packet.len()))
            ),
        );
    }
    if let (Some(ma), Some(mb)) = (&a.maps, &b.maps) {
        for sa in ma {
            match mb.iter().find(|sb| sb.name == sa.name) {
                Some(sb) if sb.entries != sa.entries => {
                    return diverge(
                        &format!("map {}", sa.name),
                        map_difference(&sa.entries, &sb.entries),
                    );
                }
                Some(_) => {}
                None => {
                    return diverge(
                        &format!("map {}", sa.name),
                        "missing in the other engine".into(),
                    );
                }
            }
        }
    }
    Comparison::Agree
}

/// The first few entries that differ between two sorted snapshots, in hex: a whole map dump
/// would bury the one value that matters.
fn map_difference(a: &[(Vec<u8>, Vec<u8>)], b: &[(Vec<u8>, Vec<u8>)]) -> String {
    let hex = |v: &[u8]| v.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let lookup = |m: &[(Vec<u8>, Vec<u8>)], k: &[u8]| {
        m.iter().find(|(key, _)| key == k).map(|(_, v)| hex(v))
    };
    let mut keys: Vec<&Vec<u8>> = a.iter().chain(b).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter_map(|k| {
            let (x, y) = (lookup(a, k), lookup(b, k));
            (x != y).then(|| {
                let show = |v: Option<String>| v.unwrap_or_else(|| "absent".into());
                format!("key {}: {} vs {}", hex(k), show(x), show(y))
            })
        })
        .collect();
    let more = diffs.len().saturating_sub(4);
    let mut text = diffs.into_iter().take(4).collect::<Vec<_>>().join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more keys"));
    }
    text
}

/// Runs `input` on every engine and compares each with the first one.
pub fn run_differential(
    engines: &mut [&mut dyn Engine],
    input: &TestInput,
) -> (Vec<EngineRun>, Comparison) {
    let _span = tracing::debug_span!("differential", engines = engines.len()).entered();
    let runs: Vec<EngineRun> = engines
        .iter_mut()
        .map(|e| EngineRun {
            engine: e.name().to_string(),
            result: e.run(input),
        })
        .collect();
    let mut verdict = Comparison::Agree;
    if let Some((first, rest)) = runs.split_first() {
        for r in rest {
            match compare(first, r) {
                Comparison::Agree => {}
                c @ Comparison::Diverge(_) => return (runs.clone(), c),
                c @ Comparison::Refused { .. } => verdict = c,
            }
        }
    }
    (runs, verdict)
}

#[cfg(test)]
mod tests {

    #[test]
    fn per_cpu_values_compare_whatever_cpu_ran_the_test() {
        // Value size 4: each CPU's slice is 8 bytes. CPU 2 of 4 vs CPU 0 of 1.
        let kernel = vec![(
            vec![0u8; 4],
            [
                vec![0; 8],
                vec![0; 8],
                vec![5, 0, 0, 0, 0, 0, 0, 0],
                vec![0; 8],
            ]
            .concat(),
        )];
        let interp = vec![(vec![0u8; 4], vec![5, 0, 0, 0, 0, 0, 0, 0])];
        assert_eq!(
            MapSnapshot::per_cpu("m".into(), kernel, 4),
            MapSnapshot::per_cpu("m".into(), interp, 4)
        );
        let other = vec![(vec![0u8; 4], vec![6, 0, 0, 0, 0, 0, 0, 0])];
        assert_ne!(
            MapSnapshot::per_cpu("m".into(), other, 4),
            MapSnapshot::per_cpu(
                "m".into(),
                vec![(vec![0u8; 4], vec![5, 0, 0, 0, 0, 0, 0, 0])],
                4
            )
        );
    }
    use super::*;

    struct Fixed(&'static str, Result<EngineResult, EngineError>);
    impl Engine for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        fn run(&mut self, _: &TestInput) -> Result<EngineResult, EngineError> {
            self.1.clone()
        }
    }

    fn ok(retval: u64, bits: u32) -> Result<EngineResult, EngineError> {
        Ok(EngineResult {
            retval,
            retval_bits: bits,
            packet: vec![1, 2, 3],
            maps: None,
        })
    }

    #[test]
    fn retval_compared_on_the_narrower_width() {
        let mut k = Fixed("kernel", ok(0xdead_beef, 32));
        let mut i = Fixed("interp", ok(0x1_dead_beef, 64));
        let (_, c) = run_differential(&mut [&mut k, &mut i], &TestInput::default());
        assert_eq!(c, Comparison::Agree);
        let mut j = Fixed("interp", ok(0x1_dead_beee, 64));
        let (_, c) = run_differential(&mut [&mut k, &mut j], &TestInput::default());
        assert!(matches!(c, Comparison::Diverge(d) if d.what == "retval"));
    }

    #[test]
    fn refusal_is_not_a_divergence_but_a_fault_is() {
        let mut k = Fixed("kernel", Err(EngineError::Refused("EINVAL".into())));
        let mut i = Fixed("interp", ok(1, 64));
        let (_, c) = run_differential(&mut [&mut k, &mut i], &TestInput::default());
        assert!(matches!(c, Comparison::Refused { engine, .. } if engine == "kernel"));
        let mut f = Fixed("interp", Err(EngineError::Fault("boom".into())));
        let mut k2 = Fixed("kernel", ok(1, 32));
        let (_, c) = run_differential(&mut [&mut k2, &mut f], &TestInput::default());
        assert!(matches!(c, Comparison::Diverge(d) if d.what == "fault"));
    }

    #[test]
    fn packets_and_maps_are_compared() {
        let a = EngineRun {
            engine: "a".into(),
            result: ok(0, 64),
        };
        let mut changed = ok(0, 64);
        if let Ok(r) = changed.as_mut() {
            r.packet[1] = 9;
        }
        let b = EngineRun {
            engine: "b".into(),
            result: changed,
        };
        assert!(
            matches!(compare(&a, &b), Comparison::Diverge(d) if d.what == "packet" && d.detail.contains("at 1"))
        );
        let with_map = |v: u8| EngineRun {
            engine: "m".into(),
            result: Ok(EngineResult {
                retval: 0,
                retval_bits: 64,
                packet: vec![],
                maps: Some(vec![MapSnapshot {
                    name: "m".into(),
                    entries: vec![(vec![0], vec![v])],
                }]),
            }),
        };
        assert_eq!(compare(&with_map(1), &with_map(1)), Comparison::Agree);
        assert!(
            matches!(compare(&with_map(1), &with_map(2)), Comparison::Diverge(d) if d.what == "map m")
        );
    }
}
