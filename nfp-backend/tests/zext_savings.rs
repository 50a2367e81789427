//! How much the verifier's zero-extension analysis saves the NFP backend, in numbers.
//!
//! Why measure it: eBPF defines every 32-bit result as zero-extended, and a 32-bit target
//! (the NFP's registers are 32 bits wide) pays one `immed` per 32-bit definition to clear the
//! upper half — unless the verifier proves no 64-bit read ever sees it. The kernel's authors
//! estimated that more than 25% of the 32-bit definitions of Cilium's `bpf_lxc` need no
//! extension and that 32-bit JITs get 10–30% smaller code. This test reports our figures:
//!
//! 1. per corpus (ebpf-samples, cilium/ebpf, Cilium's `bpf_lxc` objects on their own): the
//!    32-bit sub-register definitions in reachable code (the kernel's `is_reg64` rules, see
//!    [`def_kind`]) and how many the verifier marks `zext`;
//! 2. the NFP instructions saved by eliding the unmarked ones: `zext_elided`, each one an
//!    `immed` not emitted (nfp-model.md §3.3; `LowerOptions` has no switch to turn elision
//!    off, so the count without elision is `nfp_insns + zext_elided`), for the offloadable
//!    programs and for every program the lowering translates when the NIC's limits are lifted;
//! 3. the same on random offloadable programs from the differential-test generator.
//!
//! Run with `--nocapture` for the tables; the assertions are sanity checks only.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "exec_vs_interp/assemble.rs"]
mod assemble;
#[allow(dead_code)]
#[path = "exec_vs_interp/generate.rs"]
mod generate;

use std::path::PathBuf;
use std::time::Instant;

use nfp_backend::NicLimits;
use nfp_backend::compile::{Compiled, compile, lower_verified};
use nfp_backend::lower::LowerOptions;
use nfp_backend::target::{Dst, MeInsn};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use verifier::{InsnFacts, VerifyOptions, verify};
use vm_core::isa::{AluOp, Insn, Size, Width};
use vm_core::{ProgType, Program};

/// Kinds of 32-bit sub-register definitions (the kernel's `is_reg64` for the written
/// operand returning false): ALU32 results (neg32 and le/be16/32 included), mov32, unsigned
/// narrow loads, the legacy packet loads and 32-bit atomic fetches. Written independently of
/// the verifier so the two can be compared.
const KINDS: [&str; 5] = [
    "alu32",
    "mov32",
    "narrow load",
    "ld_abs/ind",
    "atomic fetch",
];

/// Index into [`KINDS`] of a 32-bit definition, `None` for anything else.
fn def_kind(insn: &Insn) -> Option<usize> {
    match insn {
        Insn::Alu {
            op: AluOp::Mov,
            width: Width::W32,
            ..
        } => Some(1),
        Insn::Alu { width, .. } | Insn::Neg { width, .. } => (*width == Width::W32).then_some(0),
        Insn::Endian { bits, .. } => (*bits != 64).then_some(0),
        Insn::Load { size, signed, .. } => (*size != Size::DW && !signed).then_some(2),
        Insn::Atomic { size, fetch, .. } => (*fetch && *size == Size::W).then_some(4),
        Insn::LdAbs { .. } | Insn::LdInd { .. } => Some(3),
        _ => None,
    }
}

/// 32-bit definitions of one program and how many need zero extension.
#[derive(Debug, Default, Clone, Copy)]
struct DefCount {
    programs: usize,
    /// 32-bit definitions in reachable code.
    defs: usize,
    /// Of those, marked `zext` by the verifier.
    zext: usize,
    /// 32-bit definitions the verifier proved unreachable (not counted above).
    dead: usize,
    /// Per [`KINDS`]: (definitions, marked zext).
    by_kind: [(usize, usize); 5],
}

impl DefCount {
    fn of(program: &Program, facts: &[InsnFacts]) -> DefCount {
        let mut c = DefCount {
            programs: 1,
            ..DefCount::default()
        };
        for (insn, f) in program.insns.iter().zip(facts) {
            let Some(kind) = def_kind(insn) else {
                assert!(!f.zext, "zext on a non-32-bit definition: {insn:?}");
                continue;
            };
            if f.reachable {
                c.defs += 1;
                c.zext += usize::from(f.zext);
                c.by_kind[kind].0 += 1;
                c.by_kind[kind].1 += usize::from(f.zext);
            } else {
                c.dead += 1;
            }
        }
        c
    }

    fn add(&mut self, o: DefCount) {
        self.programs += o.programs;
        self.defs += o.defs;
        self.zext += o.zext;
        self.dead += o.dead;
        for (a, b) in self.by_kind.iter_mut().zip(o.by_kind) {
            a.0 += b.0;
            a.1 += b.1;
        }
    }

    fn kinds(&self) -> String {
        KINDS
            .iter()
            .zip(self.by_kind)
            .map(|(k, (d, z))| format!("{k} {d} ({:.0}% no zext)", pct(d - z, d)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn row(&self, label: &str) -> String {
        let free = self.defs - self.zext;
        format!(
            "  {label:<28} {:>5} {:>8} {:>7} {:>8} {:>7}  {:>5.1}%",
            self.programs,
            self.defs,
            self.zext,
            free,
            self.dead,
            pct(free, self.defs)
        )
    }
}

/// NFP code size with and without elision.
#[derive(Debug, Default, Clone, Copy)]
struct Saving {
    programs: usize,
    ebpf: usize,
    nfp: usize,
    elided: usize,
    kept: usize,
    /// 32-bit definitions the verifier left unmarked (an upper bound of `elided`; the rest
    /// are mov32/end/ctx loads the lowering clears anyway).
    free_defs: usize,
    /// Every 32-bit definition (the bound of `elided` once `narrow_cmp` elides marked ones).
    defs: usize,
    /// Per-slot check of "at most one `immed` per marked extension, none per unmarked one" on
    /// the ALU32/neg32 slots whose lowering always calls the zext step: slots that agree
    /// (marked with exactly one `immed[hi(dst), 0]`, unmarked with none), marked slots with
    /// none (`narrow_cmp` found every 64-bit reader of the upper half to be a compare it
    /// narrowed), and slots that do not agree.
    slots_agree: usize,
    slots_narrowed: usize,
    slots_disagree: usize,
}

/// `immed[hi(r), 0]` writing both banks: the zero extension of eBPF register `r`.
fn is_hi_clear(i: &MeInsn, r: u8) -> bool {
    matches!(i, MeInsn::Immed { dst: Dst::Both(g), imm: 0, shift: 0, invert: false, .. }
        if *g == 2 * r + 1)
}

impl Saving {
    fn add(&mut self, c: &Compiled, program: &Program, facts: &[InsnFacts]) {
        self.programs += 1;
        self.ebpf += c.ebpf_insns;
        self.nfp += c.nfp_insns;
        self.elided += c.zext_elided as usize;
        self.kept += c.zext_kept as usize;
        let d = DefCount::of(program, facts);
        self.free_defs += d.defs - d.zext;
        self.defs += d.defs;
        for (pc, (insn, f)) in program.insns.iter().zip(facts).enumerate() {
            let dst = match insn {
                Insn::Alu {
                    op:
                        AluOp::Add
                        | AluOp::Sub
                        | AluOp::And
                        | AluOp::Or
                        | AluOp::Xor
                        | AluOp::Lsh
                        | AluOp::Rsh
                        | AluOp::Arsh,
                    width: Width::W32,
                    dst,
                    ..
                }
                | Insn::Neg {
                    width: Width::W32,
                    dst,
                } => *dst,
                _ => continue,
            };
            let Some(range) = c.map.get(pc).filter(|r| !r.is_empty() && f.reachable) else {
                continue;
            };
            let clears = c.code[range.clone()]
                .iter()
                .filter(|i| is_hi_clear(i, dst))
                .count();
            if clears == usize::from(f.zext) {
                self.slots_agree += 1;
            } else if f.zext && clears == 0 {
                self.slots_narrowed += 1;
            } else {
                self.slots_disagree += 1;
            }
        }
    }

    fn merge(&mut self, o: &Saving) {
        self.programs += o.programs;
        self.ebpf += o.ebpf;
        self.nfp += o.nfp;
        self.elided += o.elided;
        self.kept += o.kept;
        self.free_defs += o.free_defs;
        self.defs += o.defs;
        self.slots_agree += o.slots_agree;
        self.slots_narrowed += o.slots_narrowed;
        self.slots_disagree += o.slots_disagree;
    }

    fn row(&self, label: &str) -> String {
        let without = self.nfp + self.elided;
        format!(
            "  {label:<34} {:>5} {:>7} {:>8} {:>8} {:>7} {:>6} {:>8}  {:>5.1}% ({:.1}% of nfp_insns)",
            self.programs,
            self.ebpf,
            self.nfp,
            without,
            self.elided,
            self.kept,
            self.free_defs,
            pct(self.elided, without),
            pct(self.elided, self.nfp)
        )
    }

    fn check_line(&self) -> String {
        format!(
            "slot check (ALU32/neg32): {} slots agree, {} marked but elided by narrow_cmp, {} disagree; unmarked defs not elided (mov32/end/ctx loads always clear): {}",
            self.slots_agree,
            self.slots_narrowed,
            self.slots_disagree,
            self.free_defs.saturating_sub(self.elided)
        )
    }
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

const DEF_HEADER: &str = "  set                          progs  32b-defs    zext  no-zext    dead  share needing no zext";
const SAVE_HEADER: &str = "  set                                progs    eBPF      NFP NFP-noel  elided   kept  no-zext  saved (share of the code without elision)";

fn objects(dir: &str) -> Vec<PathBuf> {
    vm_core::corpus::elf_objects(&[dir])
}

/// The XDP/tc programs of one corpus directory, little-endian objects only, with the path
/// relative to the corpus root.
fn network_programs(dir: &str) -> Vec<(String, Program)> {
    let mut out = Vec::new();
    for path in objects(dir) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if vm_core::elf::is_big_endian(&bytes) {
            continue;
        }
        let Ok((obj, _)) = vm_core::elf::load_object_lenient(&bytes) else {
            continue;
        };
        let rel = path
            .strip_prefix(vm_core::corpus::root())
            .unwrap_or(&path)
            .display()
            .to_string();
        for p in obj.programs {
            let mut p = p;
            match p.prog_type {
                ProgType::Xdp | ProgType::SchedCls => {}
                ProgType::Other(0) => {
                    let section = p.section.clone().unwrap_or_default();
                    match vm_core::corpus::conventional_prog_type(&section, &rel) {
                        Some(t) => p.prog_type = t,
                        None => continue,
                    }
                }
                _ => continue,
            }
            out.push((rel.clone(), p));
        }
    }
    out
}

/// Per-set results of the corpus pass.
#[derive(Default)]
struct CorpusResult {
    programs: usize,
    rejected: usize,
    defs: DefCount,
    offloadable: Saving,
    lowered: Saving,
    /// (eBPF slots, NFP instructions, offloadable, name) of each lowered program.
    sizes: Vec<(usize, usize, bool, String)>,
}

fn quiet() -> VerifyOptions {
    VerifyOptions {
        log_level: 0,
        ..VerifyOptions::default()
    }
}

/// The default NIC with the instruction-store and stack limits lifted: the lowering then
/// produces code for everything it can translate.
fn unlimited() -> NicLimits {
    NicLimits {
        max_insns: usize::MAX,
        stack_bytes: u32::MAX,
        ..NicLimits::default()
    }
}

fn corpus_pass(programs: &[(String, Program)], lxc: &mut CorpusResult) -> CorpusResult {
    let nic = NicLimits::default();
    let loose = unlimited();
    let mut r = CorpusResult::default();
    for (rel, p) in programs {
        r.programs += 1;
        let is_lxc = rel.contains("bpf_lxc");
        if is_lxc {
            lxc.programs += 1;
        }
        let Ok(v) = verify(p, &quiet()) else {
            r.rejected += 1;
            lxc.rejected += usize::from(is_lxc);
            continue;
        };
        let d = DefCount::of(p, &v.facts);
        assert!(
            v.zext
                .iter()
                .all(|&pc| p.insns.get(pc).and_then(def_kind).is_some()),
            "{rel}:{}: the verifier's zext list names an instruction the is_reg64 rules do not",
            p.name
        );
        r.defs.add(d);
        if is_lxc {
            lxc.defs.add(d);
        }
        // The lowering does not depend on the NIC, only the final checks do: a program the
        // unlimited NIC cannot take is not offloadable to the real one either.
        let Ok(c) = lower_verified(p, &loose, &LowerOptions::default()) else {
            continue;
        };
        r.lowered.add(&c, p, &v.facts);
        if is_lxc {
            lxc.lowered.add(&c, p, &v.facts);
        }
        let offloadable = compile(p, &nic);
        r.sizes.push((
            c.ebpf_insns,
            c.nfp_insns,
            offloadable.is_ok(),
            format!("{rel}:{}", p.name),
        ));
        if let Ok(c) = offloadable {
            r.offloadable.add(&c, p, &v.facts);
            if is_lxc {
                lxc.offloadable.add(&c, p, &v.facts);
            }
        }
    }
    r
}

#[test]
fn zext_savings_on_the_corpus_and_random_programs() {
    let started = Instant::now();
    let mut lxc = CorpusResult::default();
    let mut sets = Vec::new();
    for dir in ["ebpf-samples", "cilium-ebpf"] {
        let programs = network_programs(dir);
        assert!(!programs.is_empty(), "no XDP/tc program in {dir}");
        sets.push((dir, corpus_pass(&programs, &mut lxc)));
    }
    let corpus_secs = started.elapsed().as_secs_f64();

    println!("zext savings ({corpus_secs:.1} s for the corpus)");
    println!(
        "1a. 32-bit sub-register definitions in reachable code (is_reg64 rules) and the verifier's zext marks"
    );
    println!("{DEF_HEADER}");
    let mut all = DefCount::default();
    for (dir, r) in &sets {
        println!(
            "{}   ({} XDP/tc programs, {} rejected by the verifier)",
            r.defs.row(dir),
            r.programs,
            r.rejected
        );
        all.add(r.defs);
    }
    println!("{}", all.row("both corpora"));
    println!("   by kind: {}", all.kinds());
    println!(
        "{}   ({} programs, {} rejected)",
        lxc.defs.row("cilium bpf_lxc objects"),
        lxc.programs,
        lxc.rejected
    );
    println!("   by kind: {}", lxc.defs.kinds());

    println!(
        "1b. NFP instructions saved by zext elision (without elision = nfp + elided: one immed each)"
    );
    println!("{SAVE_HEADER}");
    let (mut off, mut low) = (Saving::default(), Saving::default());
    for (dir, r) in &sets {
        println!("{}", r.offloadable.row(&format!("{dir} offloadable")));
        println!(
            "{}",
            r.lowered.row(&format!("{dir} lowered (no NIC limits)"))
        );
        off.merge(&r.offloadable);
        low.merge(&r.lowered);
    }
    println!("{}", off.row("both offloadable"));
    println!("{}", low.row("both lowered (no NIC limits)"));
    println!("{}", lxc.lowered.row("bpf_lxc lowered (no NIC limits)"));
    let mut sizes: Vec<_> = sets.iter().flat_map(|(_, r)| r.sizes.iter()).collect();
    sizes.sort_by(|a, b| b.cmp(a));
    println!(
        "   largest lowered: {}",
        sizes
            .iter()
            .take(4)
            .map(|(e, n, off, name)| format!(
                "{name} {e} eBPF -> {n} NFP{}",
                if *off { "" } else { " (not offloadable)" }
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    println!("   offloadable: {}", off.check_line());
    println!("   lowered:     {}", low.check_line());

    let (rnd_defs, rnd, tried) = random_pass(1_000);
    println!(
        "2. random offloadable programs (generator of exec_vs_interp; {tried} generated, {} offloadable)",
        rnd.programs
    );
    println!("{DEF_HEADER}");
    println!("{}", rnd_defs.row("random offloadable"));
    println!("   by kind: {}", rnd_defs.kinds());
    println!("{SAVE_HEADER}");
    println!("{}", rnd.row("random offloadable"));
    println!("   {}", rnd.check_line());
    println!("total {:.1} s", started.elapsed().as_secs_f64());

    // Sanity only: the numbers are reported, not pinned.
    assert!(
        all.programs > 100,
        "only {} verified programs",
        all.programs
    );
    assert!(all.defs > 0 && all.zext <= all.defs);
    assert!(off.programs >= 1, "no offloadable corpus program");
    assert!(low.programs >= off.programs);
    assert_eq!(
        low.slots_disagree, 0,
        "zext marks and emitted clears disagree"
    );
    assert!(
        rnd.programs >= 1_000,
        "only {} random offloadable",
        rnd.programs
    );
    assert_eq!(
        rnd.slots_disagree, 0,
        "zext marks and emitted clears disagree"
    );
    assert!(rnd.elided <= rnd.defs && low.elided <= low.defs);
    assert!(rnd_defs.zext <= rnd_defs.defs);
}

/// Generates random programs until `want` compile (deterministic seed); returns their
/// definition counts, savings and how many were generated.
fn random_pass(want: usize) -> (DefCount, Saving, usize) {
    let nic = NicLimits::default();
    let strategy = generate::spec(40, 128);
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let (mut defs, mut saving, mut tried) = (DefCount::default(), Saving::default(), 0);
    while saving.programs < want && tried < want * 5 {
        tried += 1;
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            continue;
        };
        let program = tree.current().program();
        let Ok(c) = compile(&program, &nic) else {
            continue;
        };
        let Ok(v) = verify(&program, &quiet()) else {
            panic!("compiled but the verifier refuses it: {}", program.name);
        };
        defs.add(DefCount::of(&program, &v.facts));
        saving.add(&c, &program, &v.facts);
    }
    (defs, saving, tried)
}
