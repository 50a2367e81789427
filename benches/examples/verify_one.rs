//! Verifies one program of the ratio table's verification set N times: a fixed workload
//! for measuring the verifier's host cost under `valgrind --tool=callgrind` (repeatable
//! instruction counts on a shared machine; take the difference of two N to drop set-up).
//!
//! `cargo run --release -p benches --example verify_one -- [small|medium|largest|heaviest] [N]`

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("medium", String::as_str).to_lowercase();
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
    let set = match benches::corpus::verify_set() {
        Ok((set, _)) => set,
        Err(e) => {
            eprintln!("verify_one: no corpus programs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let quiet = verifier::VerifyOptions {
        log_level: 0,
        ..verifier::VerifyOptions::default()
    };
    let Some((_, p)) = set
        .iter()
        .find(|(c, _)| format!("{c:?}").to_lowercase() == which)
    else {
        eprintln!("verify_one: no {which} program in the set");
        return ExitCode::FAILURE;
    };
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(verifier::verify(std::hint::black_box(&p.program), &quiet).is_ok());
    }
    println!(
        "{} ({} slots): {:.1} us per verification",
        p.label,
        p.program.insns.len(),
        t.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64
    );
    ExitCode::SUCCESS
}
