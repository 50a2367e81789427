//! Criterion benchmarks live in `benches/benches/`; this library holds the shared workloads.
