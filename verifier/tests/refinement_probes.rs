//! Differential probes of scalar precision against the running kernel's verifier.
//!
//! Why: our verifier must never accept what the kernel refuses, and should not refuse what it
//! accepts. The place where the two most easily drift apart is scalar precision: if our branch
//! refinement or an ALU transfer function learns *more* than the kernel, a path the kernel
//! explores looks dead to us (we accept, it refuses); if it learns *less*, the reverse.
//! Random programs rarely make safety hinge on one fact, so this test builds programs that do:
//!
//! ```text
//! r0 = <unknown scalar>            ; helper result, map value load, packet load
//! <ALU ops on r0>                  ; 32- and 64-bit, chosen constants
//! if <r0 or a register linked to it> <cond> <imm | known reg | unknown reg> goto taken
//! <fall-through edge>   taken: <taken edge>
//! ```
//!
//! and puts on one edge an operation that is safe only if a fact about r0 holds: either a
//! second comparison whose other edge dereferences the scalar r0 (so the program is accepted
//! exactly when the verifier decides that comparison), or a map-value access at `value + r0`.
//!
//! The combinations form a mixed-radix space of a few hundred million programs; each run takes
//! a deterministic, evenly spread slice of it (`PROBE_COUNT` programs from `PROBE_START`,
//! stepping by a large prime modulo the space size). Every disagreement is printed with the
//! program and both verdicts; the test fails on any disagreement not in [`allowed`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hw_tests::kernel::{LoadOptions, VmLoadError, kernel_or_skip, kernel_verdict, load_vm_program};
use verifier::{VerifyOptions, verify};
use vm_core::{MapDef, MapType, ProgType, Program};

/// Programs per default run (keeps the debug-build test well under 20 s).
const DEFAULT_COUNT: u64 = 30000;

/// Where r0 comes from. Every program first looks up an array map (value in r7, 48 bytes) and
/// loads r8 from it (an unknown byte, the "unknown register" operand).
const SOURCES: &[(&str, &str)] = &[
    ("ktime", "call 5"),
    ("prandom", "call 7"),
    ("map_dw", "ldxdw r0, [r7+0]"),
    ("map_w", "ldxw r0, [r7+0]"),
    ("map_h", "ldxh r0, [r7+0]"),
    ("map_b", "ldxb r0, [r7+0]"),
    ("map_sw", "ldxsw r0, [r7+0]"),
    ("map_sb", "ldxsb r0, [r7+0]"),
    (
        "pkt_h",
        "ldxw r2, [r6+0]\nldxw r3, [r6+4]\nmov r4, r2\nadd r4, 8\nmov r0, 0\njgt r4, r3, out\nldxh r0, [r2+0]",
    ),
    (
        "pkt_dw",
        "ldxw r2, [r6+0]\nldxw r3, [r6+4]\nmov r4, r2\nadd r4, 8\nmov r0, 0\njgt r4, r3, out\nldxdw r0, [r2+0]",
    ),
];

/// ALU code applied to r0 before the branch.
const ALUS: &[&str] = &[
    "",
    "",
    "and r0, 255",
    "and r0, 240",
    "and r0, -8",
    "and r0, 0x7fffffff",
    "and32 r0, 255",
    "and32 r0, -16",
    "or r0, 1",
    "or r0, 256",
    "or r0, -2147483648",
    "or32 r0, 3",
    "xor r0, 1",
    "xor r0, -1",
    "xor32 r0, 255",
    "lsh r0, 2",
    "lsh r0, 32",
    "lsh r0, 63",
    "lsh32 r0, 4",
    "rsh r0, 1",
    "rsh r0, 32",
    "rsh r0, 56",
    "rsh r0, 63",
    "rsh32 r0, 4",
    "rsh32 r0, 31",
    "arsh r0, 1",
    "arsh r0, 32",
    "arsh r0, 56",
    "arsh r0, 63",
    "arsh32 r0, 4",
    "arsh32 r0, 31",
    "add r0, 1",
    "add r0, -1",
    "add r0, 0x7fffffff",
    "sub r0, 1",
    "sub r0, -2147483648",
    "add32 r0, 1",
    "sub32 r0, 16",
    "mul r0, 3",
    "mul r0, -1",
    "mul r0, 65536",
    "mul32 r0, 3",
    "neg r0",
    "neg32 r0",
    "mov32 r0, r0",
    "movsx864 r0, r0",
    "movsx1664 r0, r0",
    "movsx3264 r0, r0",
    "movsx832 r0, r0",
    "movsx1632 r0, r0",
    "be16 r0",
    "be32 r0",
    "be64 r0",
    "le16 r0",
    "le32 r0",
    "bswap16 r0",
    "bswap32 r0",
    "bswap64 r0",
    "div r0, 3",
    "mod r0, 7",
    "and r0, 255\nadd r0, -128",
    "and r0, 255\nsub r0, 100",
    "rsh r0, 60\nsub r0, 8",
    "lsh r0, 48\narsh r0, 48",
    "and r0, 0xffff\nlsh r0, 16",
    "and32 r0, 255\nmovsx832 r0, r0",
    "or r0, 1\nand r0, 15",
    "and r0, 63\nmul r0, 5",
    "and r0, 15\nneg r0",
    "mov32 r0, r0\nadd r0, -1",
    "and r0, 255\nxor r0, 128",
    "and r0, -256\nor r0, 7",
];

const CONDS: &[&str] = &[
    "jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset",
];

const IMMS: &[i64] = &[
    0,
    1,
    -1,
    2,
    7,
    8,
    15,
    47,
    48,
    255,
    256,
    65535,
    0x7fff_ffff,
    -0x8000_0000,
    -8,
    -128,
];

/// What the branch compares.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// `if r0 cond imm`
    Imm,
    /// `r1 = imm; if r0 cond r1`
    KnownReg,
    /// `r1 = imm; if r1 cond r0` (the known constant on the left)
    KnownRegSwapped,
    /// `if r0 cond r8` (r8 an unknown byte)
    UnknownReg,
    /// `r9 = r0; if r9 cond imm` (refinement must reach r0 through the link)
    Linked,
    /// `r9 = r0; r9 += 5; if r9 cond imm` (a link with a constant offset)
    LinkedOffset,
    /// `r9 = r0; w9 -= 3; if r9 cond imm` (a 32-bit offset link: only when r0 fits 32 bits)
    LinkedOffset32,
}

const FORMS: &[Form] = &[
    Form::Imm,
    Form::Imm,
    Form::KnownReg,
    Form::KnownRegSwapped,
    Form::UnknownReg,
    Form::Linked,
    Form::LinkedOffset,
    Form::LinkedOffset32,
];

/// Second-comparison constants, relative to the branch's immediate `x`.
fn probe_imm(k: usize, x: i64) -> i64 {
    match k {
        0 => x,
        1 => x - 1,
        2 => x + 1,
        3 => 0,
        4 => 1,
        5 => -1,
        6 => 255,
        7 => 0x7fff_ffff,
        _ => -0x8000_0000,
    }
}
const PROBE_IMMS: usize = 9;
const PROBE_CONDS: &[&str] = &[
    "jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset",
];

/// The safety-critical operation on the probed edge.
#[derive(Clone, Copy, Debug)]
enum Probe {
    /// `if r0 cond k goto ok; *(u8 *)r0` — accepted iff the comparison is decided.
    Decide {
        cond: &'static str,
        w32: bool,
        k: usize,
    },
    /// `*(u8 *)(map_value + r0)` — accepted iff 0 <= r0 <= 47.
    MapIndex,
}

fn probes() -> Vec<Probe> {
    let mut v = vec![Probe::MapIndex, Probe::MapIndex, Probe::MapIndex];
    for &cond in PROBE_CONDS {
        for w32 in [false, true] {
            for k in 0..PROBE_IMMS {
                v.push(Probe::Decide { cond, w32, k });
            }
        }
    }
    v
}

/// One point of the combination space.
#[derive(Clone, Copy, Debug)]
struct Case {
    source: usize,
    alu: usize,
    cond: usize,
    w32: bool,
    imm: usize,
    form: usize,
    taken_edge: bool,
    probe: Probe,
}

struct Space {
    probes: Vec<Probe>,
}

impl Space {
    fn radices(&self) -> [u64; 8] {
        [
            SOURCES.len() as u64,
            ALUS.len() as u64,
            CONDS.len() as u64,
            2,
            IMMS.len() as u64,
            FORMS.len() as u64,
            2,
            self.probes.len() as u64,
        ]
    }

    fn size(&self) -> u64 {
        self.radices().iter().product()
    }

    fn case(&self, mut i: u64) -> Case {
        let mut d = [0usize; 8];
        for (slot, r) in d.iter_mut().zip(self.radices()) {
            *slot = (i % r) as usize;
            i /= r;
        }
        Case {
            source: d[0],
            alu: d[1],
            cond: d[2],
            w32: d[3] == 1,
            imm: d[4],
            form: d[5],
            taken_edge: d[6] == 1,
            probe: self.probes[d[7]],
        }
    }
}

/// An immediate as the assembler takes it (an `i32`).
fn imm32(v: i64) -> i32 {
    v as i32
}

fn probe_text(p: Probe, x: i64) -> String {
    match p {
        Probe::Decide { cond, w32, k } => {
            let w = if w32 { "32" } else { "" };
            format!(
                "{cond}{w} r0, {}, ok\nldxb r0, [r0+0]\nok:\n",
                imm32(probe_imm(k, x))
            )
        }
        Probe::MapIndex => "mov r1, r7\nadd r1, r0\nldxb r0, [r1+0]\n".to_string(),
    }
}

fn render(c: &Case) -> String {
    let mut s = String::new();
    let x = IMMS[c.imm];
    let xi = imm32(x);
    let w = if c.w32 { "32" } else { "" };
    let cond = CONDS[c.cond];
    let _ = writeln!(
        s,
        "mov r6, r1\nstw [r10-4], 0\nlddw r1, map_fd 0\nmov r2, r10\nadd r2, -4\ncall 1\njne r0, 0, have\nexit\nhave:\nmov r7, r0\nldxb r8, [r7+8]"
    );
    let _ = writeln!(s, "{}", SOURCES[c.source].1);
    if !ALUS[c.alu].is_empty() {
        let _ = writeln!(s, "{}", ALUS[c.alu]);
    }
    match FORMS[c.form] {
        Form::Imm => {
            let _ = writeln!(s, "{cond}{w} r0, {xi}, taken");
        }
        Form::KnownReg => {
            let _ = writeln!(s, "mov r1, {xi}\n{cond}{w} r0, r1, taken");
        }
        Form::KnownRegSwapped => {
            let _ = writeln!(s, "mov r1, {xi}\n{cond}{w} r1, r0, taken");
        }
        Form::UnknownReg => {
            let _ = writeln!(s, "{cond}{w} r0, r8, taken");
        }
        Form::Linked => {
            let _ = writeln!(s, "mov r9, r0\n{cond}{w} r9, {xi}, taken");
        }
        Form::LinkedOffset => {
            let _ = writeln!(s, "mov r9, r0\nadd r9, 5\n{cond}{w} r9, {xi}, taken");
        }
        Form::LinkedOffset32 => {
            let _ = writeln!(s, "mov r9, r0\nsub32 r9, 3\n{cond}{w} r9, {xi}, taken");
        }
    }
    let probe = probe_text(c.probe, x);
    if !c.taken_edge {
        s.push_str(&probe);
    }
    s.push_str("mov r0, 0\nexit\ntaken:\n");
    if c.taken_edge {
        s.push_str(&probe);
    }
    if SOURCES[c.source].1.contains("out") {
        s.push_str("out:\nmov r0, 0\nexit\n");
    } else {
        s.push_str("mov r0, 0\nexit\n");
    }
    s
}

fn maps() -> Vec<MapDef> {
    vec![MapDef {
        name: "array".to_string(),
        map_type: MapType::Array,
        key_size: 4,
        value_size: 48,
        max_entries: 1,
        flags: 0,
        initial_value: None,
    }]
}

/// A disagreement's class: what varies least within one cause.
fn class(c: &Case, ours_accept: bool) -> String {
    let dir = if ours_accept {
        "WE ACCEPT/kernel refuses"
    } else {
        "WE REFUSE/kernel accepts"
    };
    let probe = match c.probe {
        Probe::Decide { cond, w32, .. } => format!("decide {cond}{}", if w32 { "32" } else { "" }),
        Probe::MapIndex => "map index".to_string(),
    };
    format!(
        "{dir} | alu {:?} | {}{} | {:?} | {} edge | {probe}",
        ALUS[c.alu],
        CONDS[c.cond],
        if c.w32 { "32" } else { "" },
        FORMS[c.form],
        if c.taken_edge { "taken" } else { "fall" }
    )
}

/// Disagreements understood and documented; each entry says why it is allowed. None at
/// present: the one listed before (a negated zero-extended value, then `<= 255`: Linux 6.18
/// keeps [0, 255] where we found 0) was the kernel's mixed 32/64 deduction replacing the
/// 64-bit ranges by the s32 range; we now do the same (see FIXED).
fn allowed(_c: &Case, _ours_accept: bool) -> bool {
    false
}

fn last_lines(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn scalar_refinement_agrees_with_the_kernel() {
    if !kernel_or_skip("scalar_refinement_agrees_with_the_kernel") {
        return;
    }
    let space = Space { probes: probes() };
    let size = space.size();
    let count = env_u64("PROBE_COUNT", DEFAULT_COUNT);
    let start = env_u64("PROBE_START", 0);
    // A prime step spreads consecutive indices over every dimension of the space.
    const STEP: u64 = 1_000_000_007;
    let mut classes: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let (mut total, mut agree, mut kernel_accepts, mut unexpected) = (0u64, 0u64, 0u64, 0u64);
    for n in 0..count {
        let idx = ((start + n) as u128 * STEP as u128 % size as u128) as u64;
        let c = space.case(idx);
        let text = render(&c);
        let raw = vm_core::asm::assemble(&text).unwrap_or_else(|e| panic!("assemble: {e}\n{text}"));
        let mut p = Program::from_raw("probe", ProgType::Xdp, &raw)
            .unwrap_or_else(|e| panic!("decode: {e}\n{text}"));
        p.maps = maps();
        let ours = verify(&p, &VerifyOptions::default());
        let kernel = kernel_verdict(&p);
        total += 1;
        kernel_accepts += u64::from(kernel.is_ok());
        if ours.is_ok() == kernel.is_ok() {
            agree += 1;
            continue;
        }
        let key = class(&c, ours.is_ok());
        let listed = allowed(&c, ours.is_ok());
        if !listed {
            unexpected += 1;
        }
        let key = if listed {
            format!("(allowed) {key}")
        } else {
            key
        };
        let e = classes.entry(key).or_insert_with(|| {
            let o = match &ours {
                Ok(_) => "accept".to_string(),
                Err(r) => last_lines(&r.log, 3),
            };
            let k = match &kernel {
                Ok(()) => "accept".to_string(),
                Err(e) => last_lines(&e.log, 3),
            };
            (
                0,
                format!(
                    "source {}\n{text}OURS:   {o}\nKERNEL: {k}",
                    SOURCES[c.source].0
                ),
            )
        });
        e.0 += 1;
    }
    let mut allowed_count = 0;
    for (key, (n, example)) in &classes {
        if key.starts_with("(allowed)") {
            allowed_count += n;
            if std::env::var("PROBE_SHOW_ALLOWED").is_err() {
                continue;
            }
        }
        println!("=== {n:5} x {key}\n{example}\n");
    }
    println!("({allowed_count} allowed disagreements; PROBE_SHOW_ALLOWED=1 prints them)");
    println!(
        "REFINEMENT PROBES: {agree}/{total} agree (kernel accepted {kernel_accepts}); {} disagreement classes, {unexpected} disagreements not allowed; space {size}, start {start}",
        classes.len()
    );
    assert_eq!(unexpected, 0, "unexplained disagreements (see above)");
}

/// Debugging aid: `PROBE_PROGRAM=file` verifies one program (XDP, the probes' map) and prints
/// both verifiers' full logs (level 2). Does nothing without the variable.
#[test]
fn one_probe_program() {
    let Ok(path) = std::env::var("PROBE_PROGRAM") else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let raw = vm_core::asm::assemble(&text).unwrap_or_else(|e| panic!("assemble: {e}"));
    let mut p =
        Program::from_raw("probe", ProgType::Xdp, &raw).unwrap_or_else(|e| panic!("decode: {e}"));
    p.maps = maps();
    let opts = VerifyOptions {
        log_level: 2,
        ..VerifyOptions::default()
    };
    match verify(&p, &opts) {
        Ok(v) => println!("OURS: accept\n{}", v.log),
        Err(r) => println!("OURS: reject\n{}", r.log),
    }
    let lo = LoadOptions {
        log_level: 2,
        ..LoadOptions::default()
    };
    match load_vm_program(&p, &lo) {
        Ok(l) => println!("KERNEL: accept\n{}", l.prog.log),
        Err(VmLoadError::Load(e)) => println!("KERNEL: reject\n{}", e.log),
        Err(e) => println!("KERNEL: setup {e}"),
    }
}

/// One minimal program per disagreement class found (and fixed) by the probes above, each
/// checked against the kernel's verdict. The comment names the class.
const FIXED: &[(&str, &str)] = &[
    (
        "undecided branch whose edge contradicts the tnum stays alive",
        "call 7\nlsh r0, 2\njsgt32 r0, 0, t\nmov r0, 0\nexit\nt:\njgt r0, 1, ok\nldxb r0, [r0+0]\nok:\nmov r0, 0\nexit",
    ),
    (
        "jset fall-through keeps only the tnum",
        "call 7\njle r0, 1000, t\nmov r0, 0\nexit\nt:\njset r0, 1, u\njle r0, 1000, ok\nldxb r0, [r0+0]\nok:\nu:\nmov r0, 0\nexit",
    ),
    (
        "jset32 fall-through forgets the 64-bit ranges too",
        "call 7\njsle r0, 1000, t\nmov r0, 0\nexit\nt:\njsge r0, -1000, t2\nmov r0, 0\nexit\nt2:\njset32 r0, 1, u\njsle r0, 1000, ok\nldxb r0, [r0+0]\nok:\nu:\nmov r0, 0\nexit",
    ),
    (
        "jset of two unknown registers is never decided",
        "call 7\nand r0, 0xff00\nmov r6, r0\ncall 7\nand r0, 0xff\njset r0, r6, t\nmov r0, 0\nexit\nt:\njne r0, 0, ok\nldxb r0, [r0+0]\nok:\nmov r0, 0\nexit",
    ),
    (
        "64-bit jeq/jne also compares the 32-bit ranges",
        "call 5\njsgt32 r0, -8, t\nmov r0, 0\nexit\nt:\njne r0, -2147483648, ok\nldxb r0, [r0+0]\nok:\nmov r0, 0\nexit",
    ),
    (
        "movsx keeps a range only when the kernel's test allows",
        "call 7\nand r0, 255\nadd r0, -128\nmovsx3264 r0, r0\njgt r0, 255, t\nmov r0, 0\nexit\nt:\njge32 r0, 254, ok\nldxb r0, [r0+0]\nok:\nmov r0, 0\nexit",
    ),
    (
        "lsh drops the signed range",
        "call 7\nand r0, 255\nadd r0, -128\nlsh r0, 2\njslt32 r0, -1, t\njsgt r0, -2147483648, ok\nldxb r0, [r0+0]\nok:\nt:\nmov r0, 0\nexit",
    ),
    (
        "s64 from s32 only for a non-negative low half",
        "call 7\nrsh r0, 60\nsub r0, 8\njsle32 r0, 0, t\nmov r0, 0\nexit\nt:\njsle r0, 0, ok\nldxb r0, [r0+0]\nok:\nmov r0, 0\nexit",
    ),
    (
        "a range holding a single tnum member is that member",
        "call 7\nand r0, 0xffff\nor32 r0, 3\nmov r1, 7\njle32 r1, r0, t\njlt32 r0, 6, ok\nldxb r0, [r0+0]\nok:\nt:\nmov r0, 0\nexit",
    ),
    (
        "a copy plus a constant passes a branch's bounds back, shifted by the constant",
        "call 7\nand r0, 255\nmov r9, r0\nadd r9, 5\njgt r9, 20, t\njle r0, 15, ok\nldxb r0, [r0+0]\nok:\nt:\nmov r0, 0\nexit",
    ),
    (
        "no tnum member in range: the tnum's largest, as the kernel takes it",
        "call 7\nlsh r0, 32\nrsh r0, 32\nor r0, 256\nmov r9, r0\nadd r9, 5\njeq32 r9, 256, t\nmov r0, 0\nexit\nt:\njlt32 r0, 1, ok\nldxb r0, [r0+0]\nok:\nmov r0, 0\nexit",
    ),
    (
        "a 32-bit offset link zero-extends the register written when it is the 32-bit sum",
        "call 7\nmov32 r6, r0\nmov r7, r6\nadd32 r7, 1\nlddw r8, 0xffffffff\njlt r6, r8, out\njeq r7, 0, out\nldxb r0, [r0+0]\nout:\nmov r0, 0\nexit",
    ),
    (
        "a branch on the 32-bit sum bounds its base",
        "call 7\nmov32 r6, r0\nmov r7, r6\nadd32 r7, 1\nlddw r8, 0xffffffff\njlt r7, r8, out\nlddw r9, 0xfffffffe\njeq r6, r9, out\nldxb r0, [r0+0]\nout:\nmov r0, 0\nexit",
    ),
    (
        "a 32-bit subtract links with a negative delta",
        "call 7\nmov32 r6, r0\nmov r7, r6\nsub32 r7, 3\njgt r7, 5, out\njlt r6, 9, out\nldxb r0, [r0+0]\nout:\nmov r0, 0\nexit",
    ),
    (
        "the base of a 32-bit sum keeps the values whose sum wrapped",
        "call 7\nmov32 r6, r0\nmov r7, r6\nsub32 r7, 3\nlddw r8, 0xfffffffd\njgt r7, r8, out\njne r6, 0, out\nldxb r0, [r0+0]\nout:\nmov r0, 0\nexit",
    ),
    (
        "no 32-bit offset link from a register wider than 32 bits",
        "call 7\nmov r7, r0\nadd32 r7, 1\njlt r7, 10, out\nexit\nout:\njlt r0, 9, ok\nldxb r0, [r0+0]\nok:\nmov r0, 0\nexit",
    ),
    (
        "s64 from a non-negative s32 replaces the 64-bit ranges (taken edge keeps [0, 47])",
        "call 7\nmov32 r0, r0\nxor r0, -1\nadd r0, 5\njlt r0, 48, t\nmov r0, 0\nexit\nt:\njle r0, 4, ok\nldxb r0, [r0+0]\nok:\nmov r0, 0\nexit",
    ),
    (
        "s64 from a non-negative s32 replaces the 64-bit ranges (negated u32, `<= 255`)",
        "call 7\nmov32 r0, r0\nneg r0\njle r0, 255, t\nmov r0, 0\nexit\nt:\njeq r0, 0, ok\nldxb r0, [r0+0]\nok:\nmov r0, 0\nexit",
    ),
    (
        "s64 from a non-negative s32 replaces the 64-bit ranges, through a linked copy",
        "call 7\nmov32 r0, r0\nxor r0, -1\nmov r9, r0\nadd r9, 5\njlt r9, 48, t\nmov r0, 0\nexit\nt:\njgt32 r0, -2147483648, ok\nldxb r0, [r0+0]\nok:\nmov r0, 0\nexit",
    ),
    (
        "a jump records its live linked scalars: precision of one marks the copy precise above the jump",
        "call 7\nmov r6, r0\ncall 7\nmov r8, r0\ncall 7\nmov r9, r0\njeq r9, 0, pathb\nmov r1, 0\nmov r2, 0\nmov r3, 0\nmov r4, 0\nmov r5, 0\nmov r1, 0\nmov r7, r6\nja join\npathb:\nmov r7, r8\njoin:\njgt r7, 4, out\njle r6, 4, ok\nldxb r0, [r0+0]\nok:\nout:\nmov r0, 0\nexit",
    ),
    (
        "a linked spilled slot is recorded too, a dead linked register is not",
        "call 7\nmov r6, r0\nstxdw [r10-8], r6\ncall 7\nmov r8, r0\ncall 7\nmov r9, r0\njeq r9, 0, pathb\nmov r1, 0\nmov r2, 0\nmov r3, 0\nmov r4, 0\nmov r5, 0\nmov r7, r6\nja join\npathb:\nmov r7, r8\njoin:\njgt r7, 4, out\nldxdw r6, [r10-8]\njle r6, 4, ok\nldxb r0, [r0+0]\nok:\nout:\nmov r0, 0\nexit",
    ),
    (
        "a jump records at most 6 linked scalars; the others lose their link and their bounds",
        "call 7\nmov r1, r0\nmov r2, r0\nmov r3, r0\nmov r4, r0\nmov r5, r0\nmov r6, r0\nmov r7, r0\nmov r8, r0\nmov r9, r0\njgt r2, 4, out\njle r6, 4, ok\nldxb r0, [r0+0]\nok:\nadd r0, r1\nadd r0, r2\nadd r0, r3\nadd r0, r4\nadd r0, r5\nadd r0, r6\nadd r0, r7\nadd r0, r8\nadd r0, r9\nout:\nmov r0, 0\nexit",
    ),
    (
        "the first 6 live linked scalars are refined together",
        "call 7\nmov r1, r0\nmov r2, r0\nmov r3, r0\nmov r4, r0\nmov r5, r0\nmov r6, r0\nmov r7, r0\nmov r8, r0\nmov r9, r0\njgt r2, 4, out\njle r5, 4, ok\nldxb r0, [r0+0]\nok:\nadd r0, r1\nadd r0, r2\nadd r0, r3\nadd r0, r4\nadd r0, r5\nadd r0, r6\nadd r0, r7\nadd r0, r8\nadd r0, r9\nout:\nmov r0, 0\nexit",
    ),
];

#[test]
fn fixed_disagreements_stay_fixed() {
    let with_kernel = kernel_or_skip("fixed_disagreements_stay_fixed");
    for (name, body) in FIXED {
        let text = format!("mov r6, r1\n{body}\n");
        let raw = vm_core::asm::assemble(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let p = Program::from_raw("fixed", ProgType::Xdp, &raw)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours = verify(&p, &VerifyOptions::default()).is_ok();
        if !with_kernel {
            continue;
        }
        let kernel = kernel_verdict(&p).is_ok();
        assert_eq!(
            ours, kernel,
            "{name}: ours accept={ours}, kernel accept={kernel}\n{text}"
        );
    }
}
