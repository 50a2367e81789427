//! Differential fuzzing against the running kernel's verifier: random but plausible programs
//! (packet bounds checks, map lookups, stack spills, pointer arithmetic, branches, bounded
//! loops) are verified by us and loaded into the kernel; the verdicts must agree, and so must
//! the errno class when both reject. Deterministic (fixed seeds); the disagreements are
//! printed with the program and both messages, and the agreement is ratcheted.

use std::fmt::Write as _;

use hw_tests::kernel::{kernel_or_skip, kernel_verdict};
use verifier::{VerifyOptions, verify};
use vm_core::{MapDef, MapType, ProgType, Program};

/// Programs generated per run.
const PROGRAMS: usize = 10000;
/// Verdict agreements required (ratchet).
const MIN_AGREE: usize = 10000;

/// xorshift64*: small, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn maps() -> Vec<MapDef> {
    let def = |name: &str, map_type, key_size, value_size, max_entries| MapDef {
        name: name.to_string(),
        map_type,
        key_size,
        value_size,
        max_entries,
        flags: 0,
        initial_value: None,
    };
    vec![
        def("hash", MapType::Hash, 8, 16, 64),
        def("array", MapType::Array, 4, 48, 4),
        def("rb", MapType::Ringbuf, 0, 0, 4096),
    ]
}

/// Gives the caller-saved registers a value again after a call (most of the time).
fn reinit(rng: &mut Rng, out: &mut String) {
    for r in 1..=5 {
        if rng.chance(85) {
            let _ = writeln!(out, "mov r{r}, {}", rng.below(100));
        }
    }
}

/// Generates one program body in the bpf_conformance assembler syntax.
fn generate(rng: &mut Rng, prog_type: ProgType) -> String {
    let mut out = String::new();
    let mut label = 0;
    let scratch = [0u8, 7, 8, 9, 7, 8, 9, 0, 2, 3];
    let imms = [
        0i64,
        1,
        2,
        7,
        8,
        15,
        16,
        64,
        255,
        256,
        -1,
        -8,
        0x7fff_ffff,
        -0x8000_0000,
    ];
    // Prologue: keep the context in r6, give most registers a value.
    let _ = writeln!(out, "mov r6, r1");
    for r in [0u8, 2, 3, 4, 5, 7, 8, 9] {
        if rng.chance(97) {
            let _ = writeln!(out, "mov r{r}, {}", rng.pick(&imms));
        }
    }
    let steps = 3 + rng.below(14);
    for _ in 0..steps {
        let a = *rng.pick(&scratch);
        let b = *rng.pick(&scratch);
        let imm = *rng.pick(&imms);
        let off = -8 * (1 + rng.below(8) as i64);
        match rng.below(19) {
            0 => {
                let op = rng.pick(&["add", "sub", "and", "or", "xor", "mul", "div", "mod"]);
                let w = if rng.chance(30) { "32" } else { "" };
                let _ = writeln!(out, "{op}{w} r{a}, r{b}");
            }
            1 => {
                let op = rng.pick(&["add", "sub", "and", "or", "xor", "lsh", "rsh", "arsh"]);
                let w = if rng.chance(30) { "32" } else { "" };
                let sh = if op.ends_with("sh") {
                    rng.below(if w.is_empty() { 64 } else { 32 }) as i64
                } else {
                    imm
                };
                let _ = writeln!(out, "{op}{w} r{a}, {sh}");
            }
            2 => {
                // Spill and fill through the stack.
                let sz = rng.pick(&["dw", "w", "h", "b"]);
                let _ = writeln!(out, "stx{sz} [r10{off}], r{a}");
                let _ = writeln!(out, "ldx{sz} r{b}, [r10{off}]");
            }
            3 => {
                let _ = writeln!(out, "st{} [r10{off}], {imm}", rng.pick(&["dw", "w"]));
            }
            4 => {
                // A context field.
                let (off, sz) = match prog_type {
                    ProgType::Xdp => (*rng.pick(&[0i64, 4, 8, 12, 16, 20, 24]), "w"),
                    _ => (
                        *rng.pick(&[0i64, 4, 8, 16, 48, 52, 56, 68, 72, 76, 80, 140, 160, 200]),
                        *rng.pick(&["w", "w", "h", "b", "dw"]),
                    ),
                };
                let _ = writeln!(out, "ldx{sz} r{a}, [r6+{off}]");
            }
            5 | 6 if prog_type != ProgType::SocketFilter => {
                // Packet access, with or without a sufficient bounds check.
                let (d, e) = if prog_type == ProgType::Xdp {
                    (0, 4)
                } else {
                    (76, 80)
                };
                let need = 4 + rng.below(40);
                let (sz, bytes) = *rng.pick(&[("b", 1u64), ("h", 2), ("w", 4)]);
                let at = if rng.chance(80) {
                    rng.below(need - bytes + 1)
                } else {
                    rng.below(need + 8)
                };
                label += 1;
                let _ = writeln!(
                    out,
                    "ldxw r2, [r6+{d}]\nldxw r3, [r6+{e}]\nmov r4, r2\nadd r4, {need}"
                );
                let cond = rng.pick(&["jgt r4, r3", "jge r4, r3", "jlt r3, r4", "jgt r3, r4"]);
                let _ = writeln!(out, "{cond}, l{label}\nldx{sz} r{a}, [r2+{at}]");
                if rng.chance(30) {
                    let _ = writeln!(out, "stb [r2+{}], 1", rng.below(need + 2));
                }
                let _ = writeln!(out, "l{label}:");
            }
            7 | 8 => {
                // Map lookup; the NULL check is sometimes missing, the offset sometimes wrong.
                let m = rng.below(2);
                label += 1;
                let _ = writeln!(out, "stdw [r10-8], {}", rng.below(6));
                let _ = writeln!(out, "lddw r1, map_fd {m}\nmov r2, r10\nadd r2, -8\ncall 1");
                if rng.chance(85) {
                    let _ = writeln!(out, "jeq r0, 0, l{label}");
                }
                let vs = if m == 0 { 16 } else { 48 };
                let o = if rng.chance(80) {
                    rng.below(vs)
                } else {
                    rng.below(vs + 4)
                };
                if rng.chance(40) {
                    // Variable index, bounded or not.
                    let bound = rng.below(vs + 8);
                    let _ = writeln!(out, "mov r{a}, r{b}\nand r{a}, {bound}\nadd r0, r{a}");
                }
                let _ = writeln!(out, "ldxb r{b}, [r0+{o}]");
                let _ = writeln!(out, "l{label}:");
                reinit(rng, &mut out);
            }
            9 => {
                // A forward branch over a few instructions.
                label += 1;
                let cond = rng.pick(&[
                    "jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jslt", "jset",
                ]);
                let w = if rng.chance(25) { "32" } else { "" };
                if rng.chance(50) {
                    let _ = writeln!(out, "{cond}{w} r{a}, {imm}, l{label}");
                } else {
                    let _ = writeln!(out, "{cond}{w} r{a}, r{b}, l{label}");
                }
                let _ = writeln!(out, "mov r{b}, {}", rng.pick(&imms));
                let _ = writeln!(out, "l{label}:");
            }
            10 => {
                // Pointer arithmetic on the stack.
                let _ = writeln!(out, "mov r{a}, r10\nadd r{a}, {off}");
                if rng.chance(50) {
                    let _ = writeln!(out, "stxdw [r{a}+0], r{b}");
                } else {
                    let _ = writeln!(out, "ldxdw r{b}, [r{a}+0]");
                }
            }
            11 => {
                let _ = writeln!(
                    out,
                    "call {}",
                    rng.pick(&["get_prandom_u32", "ktime_get_ns"])
                );
                reinit(rng, &mut out);
            }
            12 => {
                // A bounded loop.
                label += 1;
                let n = 1 + rng.below(20);
                let _ = writeln!(
                    out,
                    "mov r{a}, 0\nl{label}:\nadd r{a}, 1\njlt r{a}, {n}, l{label}"
                );
            }
            13 => {
                let _ = writeln!(
                    out,
                    "lock {} [r10{off}], r{a}",
                    rng.pick(&["add", "or", "xchg"])
                );
            }
            16 if prog_type != ProgType::SocketFilter => {
                // A packet pointer with a variable offset, checked or not.
                let (d, e) = if prog_type == ProgType::Xdp {
                    (0, 4)
                } else {
                    (76, 80)
                };
                label += 1;
                let mask = rng.pick(&[15i64, 63, 255, 0xffff]);
                let _ = writeln!(
                    out,
                    "ldxw r2, [r6+{d}]\nldxw r3, [r6+{e}]\nmov r4, r{a}\nand r4, {mask}\nadd r2, r4\nmov r4, r2\nadd r4, {}",
                    1 + rng.below(8)
                );
                let _ = writeln!(
                    out,
                    "jgt r4, r3, l{label}\nldxb r{b}, [r2+{}]\nl{label}:",
                    rng.below(9)
                );
            }
            17 => {
                // 32-bit comparisons refining a value later used as an index.
                label += 1;
                let _ = writeln!(
                    out,
                    "mov r{a}, r{b}\n{} r{a}, {}, l{label}\nmov r{a}, 0\nl{label}:",
                    rng.pick(&["jgt32", "jlt32", "jsgt32", "jle32"]),
                    rng.below(64)
                );
                let _ = writeln!(
                    out,
                    "mov r{b}, r10\nadd r{b}, -64\nand r{a}, 63\nadd r{b}, r{a}\nstb [r{b}+0], 0"
                );
            }
            18 => {
                // A ring buffer record, submitted or not.
                label += 1;
                let _ = writeln!(
                    out,
                    "lddw r1, map_fd 2\nmov r2, {}\nmov r3, 0\ncall ringbuf_reserve\njeq r0, 0, l{label}\nstw [r0+{}], 1",
                    8 * (1 + rng.below(3)),
                    4 * rng.below(7)
                );
                if rng.chance(85) {
                    let _ = writeln!(out, "mov r1, r0\nmov r2, 0\ncall ringbuf_submit");
                }
                let _ = writeln!(out, "l{label}:");
                reinit(rng, &mut out);
            }
            14 => {
                // Variable stack offset.
                let _ = writeln!(
                    out,
                    "mov r{a}, r{b}\nand r{a}, {}\nmov r{b}, r10\nadd r{b}, -64\nadd r{b}, r{a}\nldxb r{a}, [r{b}+0]",
                    rng.pick(&[7i64, 31, 63, 127])
                );
            }
            _ => {
                let _ = writeln!(out, "neg r{a}");
            }
        }
    }
    if rng.chance(90) {
        let _ = writeln!(out, "mov r0, {}", rng.below(3));
    }
    let _ = writeln!(out, "exit");
    out
}

#[test]
fn random_programs_agree_with_the_kernel() {
    if !kernel_or_skip("random_programs_agree_with_the_kernel") {
        return;
    }
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x005e_ed0f_0ff1_0ad5_u64);
    let mut rng = Rng(seed);
    let types = [ProgType::Xdp, ProgType::SchedCls, ProgType::SocketFilter];
    let (mut agree, mut total, mut accepted, mut errno_diff) = (0, 0, 0, 0);
    let (mut both_rejected, mut same_message) = (0, 0);
    let mut shown = 0;
    let mut reasons: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for i in 0..PROGRAMS {
        let t = types[i % types.len()];
        let text = generate(&mut rng, t);
        let Ok(raw) = vm_core::asm::assemble(&text) else {
            continue;
        };
        let Ok(mut p) = Program::from_raw("fuzz", t, &raw) else {
            continue;
        };
        p.maps = maps();
        let ours = verify(&p, &VerifyOptions::default());
        let kernel = kernel_verdict(&p);
        total += 1;
        if kernel.is_ok() {
            accepted += 1;
        }
        if let Err(e) = &kernel {
            let line = e.first_error_line.clone().unwrap_or_default();
            let key: String = line
                .chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .take(60)
                .collect();
            *reasons.entry(key).or_default() += 1;
        }
        if ours.is_ok() == kernel.is_ok() {
            agree += 1;
            if let (Err(o), Err(k)) = (&ours, &kernel) {
                both_rejected += 1;
                let line = k.first_error_line.clone().unwrap_or_default();
                if o.log.contains(&line) {
                    same_message += 1;
                } else if shown < 30 {
                    shown += 1;
                    println!(
                        "MESSAGE DIFF ({}): ours {:?} / kernel {line:?}\n{text}",
                        t.name(),
                        o.error.message
                    );
                }
            }
            if let (Err(o), Err(k)) = (&ours, &kernel)
                && o.error.errno.code() != k.errno
            {
                errno_diff += 1;
                if shown < 10 {
                    shown += 1;
                    println!(
                        "ERRNO DIFF ({}): ours {} / kernel {} {:?}\n{text}",
                        t.name(),
                        o.error,
                        k.errno,
                        k.first_error_line
                    );
                }
            }
        } else if shown < 40 {
            shown += 1;
            let o = match &ours {
                Ok(_) => "accept".to_string(),
                Err(r) => r.error.to_string(),
            };
            let k = match &kernel {
                Ok(()) => "accept".to_string(),
                Err(e) => format!("{} {:?}", e.errno, e.first_error_line),
            };
            println!("DISAGREE ({}): ours {o} / kernel {k}\n{text}", t.name());
        }
    }
    let mut rs: Vec<_> = reasons.into_iter().collect();
    rs.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (r, n) in rs.iter().take(25) {
        println!("  kernel rejection {n:5}  {r}");
    }
    println!(
        "KERNEL FUZZ: verdict agreement {agree}/{total} (kernel accepted {accepted}); errno class differs in {errno_diff} common rejections; kernel's error line found in our log for {same_message}/{both_rejected}"
    );
    assert!(
        agree >= MIN_AGREE,
        "agreement dropped: {agree} < {MIN_AGREE}"
    );
}
