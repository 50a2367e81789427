//! Which registers a program may read before writing them: the only ones a run must zero.
//!
//! Why: every run starts from r0..r9 = 0 (r1, r2 and r10 get their entry values), because a
//! register read before any write must not show what the previous run left in it
//! (determinism). Zeroing eleven registers is a fixed cost on every run, paid even by the
//! many programs that read no register before writing it (every program the kernel's
//! verifier accepts: it rejects reads of uninitialised registers). This pass finds the
//! registers that are *live* at the entry of the main program (read on some path before
//! being written); a register that is not can hold anything at entry without any run
//! observing it, so the Vm zeroes registers only when some live one other than r1, r2 and
//! r10 exists.
//!
//! The analysis is the classic backward fixpoint over the op graph and is conservative
//! wherever control leaves what it can see: a bpf-to-bpf call, a tail call and `callx`
//! count as reading every register, a helper call as reading its argument registers (all
//! that `helpers::call` passes it), and writes are counted only where an op certainly
//! performs them. A fault ends the run without exposing registers, so it reads none.

use super::op::{Code, Op};

/// All registers an instruction can name (r0..r10).
const ALL: u16 = (1 << 11) - 1;

/// The registers that may be read before being written on some path from op 0 of `ops`
/// (one program, linked: relative targets, the sentinel last), as a mask (bit i = ri).
///
/// A worklist fixpoint: an op is looked at again only when what is live after it grew, and
/// what is live at an op can grow at most 11 times, so the work is bounded by 11 times the
/// number of edges even for programs of a million ops with many loops.
pub(crate) fn live_at_entry(ops: &[Op]) -> u16 {
    let n = ops.len();
    let effects: Vec<(u16, u16)> = ops.iter().map(effect).collect();
    let succs: Vec<[Option<usize>; 2]> = ops
        .iter()
        .enumerate()
        .map(|(i, o)| successors(n, i, o))
        .collect();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, s) in succs.iter().enumerate() {
        for &t in s.iter().flatten() {
            if let Some(p) = preds.get_mut(t) {
                p.push(i);
            }
        }
    }
    let mut live = vec![0u16; n];
    // Every op once, last first (most edges go forward, so most ops are final at once).
    let mut work: Vec<usize> = (0..n).collect();
    let mut queued = vec![true; n];
    while let Some(i) = work.pop() {
        queued[i] = false;
        let out = succs[i]
            .iter()
            .flatten()
            .fold(0u16, |acc, &s| acc | live.get(s).copied().unwrap_or(ALL));
        let (reads, writes) = effects[i];
        let inn = reads | (out & !writes);
        if inn != live[i] {
            live[i] = inn;
            for &p in &preds[i] {
                if !queued[p] {
                    queued[p] = true;
                    work.push(p);
                }
            }
        }
    }
    live.first().copied().unwrap_or(0)
}

/// Where control may continue after the op at `i` (within the program; a target outside it
/// cannot happen after `compile` checked it, and would count as reading everything).
fn successors(len: usize, i: usize, o: &Op) -> [Option<usize>; 2] {
    let next = (i + 1 < len).then_some(i + 1);
    let target = || Some(i.wrapping_add_signed(o.rel()));
    match o.code {
        Code::Exit | Code::Fault => [None, None],
        Code::Ja => [target(), None],
        _ if o.is_cond_jump() => [next, target()],
        _ => [next, None],
    }
}

/// One register as a mask (register numbers above 10 cannot occur after `compile`).
fn bit(r: u8) -> u16 {
    1u16.checked_shl(u32::from(r)).unwrap_or(0) & ALL
}

/// `(reads, writes)` of an op: the registers it may read, and those it certainly writes.
fn effect(o: &Op) -> (u16, u16) {
    use Code::*;
    let (d, s) = (bit(o.dst), bit(o.src));
    match o.code {
        Mov64K | Mov32K | LdImm64 => (0, d),
        Mov64X | Mov32X | MovSx8To64 | MovSx16To64 | MovSx32To64 | MovSx8To32 | MovSx16To32 => {
            (s, d)
        }
        Add64K | Sub64K | Mul64K | Div64K | SDiv64K | Mod64K | SMod64K | Or64K | And64K
        | Lsh64K | Rsh64K | Arsh64K | Xor64K | Neg64 | Add32K | Sub32K | Mul32K | Div32K
        | SDiv32K | Mod32K | SMod32K | Or32K | And32K | Lsh32K | Rsh32K | Arsh32K | Xor32K
        | Neg32 | Trunc16 | Trunc32 | Swap16 | Swap32 | Swap64 => (d, d),
        Add64X | Sub64X | Mul64X | Div64X | SDiv64X | Mod64X | SMod64X | Or64X | And64X
        | Lsh64X | Rsh64X | Arsh64X | Xor64X | Add32X | Sub32X | Mul32X | Div32X | SDiv32X
        | Mod32X | SMod32X | Or32X | And32X | Lsh32X | Rsh32X | Arsh32X | Xor32X => (d | s, d),
        Nop => (d, 0),
        LdxB | LdxH | LdxW | LdxDW | LdxSB | LdxSH | LdxSW => (s, d),
        StackLdxB | StackLdxH | StackLdxW | StackLdxDW | StackLdxSB | StackLdxSH | StackLdxSW => {
            (0, d)
        }
        StB | StH | StW | StDW => (d, 0),
        StxB | StxH | StxW | StxDW => (d | s, 0),
        StackStB | StackStH | StackStW | StackStDW => (0, 0),
        StackStxB | StackStxH | StackStxW | StackStxDW => (s, 0),
        // cmpxchg compares with r0; the fetched value's register is not counted as written.
        Atomic32 | Atomic64 => (d | s | bit(0), 0),
        LdAbs => (0, bit(0)),
        LdInd => (s, bit(0)),
        Ja => (0, 0),
        // `helpers::call` passes a helper only its own argument registers.
        Call => (super::helpers::arg_regs(o.a as usize), bit(0)),
        TailCall | CallX | CallLocal => (ALL, 0),
        Exit => (bit(0), 0),
        Fault => (0, 0),
        // Conditional jumps: the compared register, and the other one for the X forms.
        _ if o.is_cond_jump() => (d | if jump_reads_src(o.code) { s } else { 0 }, 0),
        // Anything not listed above: as if it read every register.
        _ => (ALL, 0),
    }
}

/// Whether a conditional jump compares with a register (the `X` forms).
fn jump_reads_src(code: Code) -> bool {
    use Code::*;
    matches!(
        code,
        Jeq64X
            | Jgt64X
            | Jge64X
            | Jset64X
            | Jne64X
            | Jsgt64X
            | Jsge64X
            | Jlt64X
            | Jle64X
            | Jslt64X
            | Jsle64X
            | Jeq32X
            | Jgt32X
            | Jge32X
            | Jset32X
            | Jne32X
            | Jsgt32X
            | Jsge32X
            | Jlt32X
            | Jle32X
            | Jslt32X
            | Jsle32X
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::interp::compile::Compiled;
    use crate::{ProgType, Program};
    use proptest::prelude::{Just, Strategy, prop, prop_oneof};

    struct NoMaps;
    impl crate::interp::compile::MapInfo for NoMaps {
        fn count(&self) -> usize {
            0
        }
        fn value_base(&self, _: usize) -> Result<(usize, u32), String> {
            Err("none".into())
        }
    }

    fn live(text: &str) -> u16 {
        let raw = crate::asm::assemble(text).unwrap();
        let p = Program::from_raw("t", ProgType::Mem, &raw).unwrap();
        let mut c = Compiled::new(false);
        c.add(&p, &NoMaps).unwrap();
        c.entry_live
    }

    #[test]
    fn written_first_is_not_live() {
        assert_eq!(live("mov %r0, 1\nexit"), 0);
        assert_eq!(
            live("mov %r3, %r1\nadd %r3, %r2\nmov %r0, %r3\nexit"),
            bit(1) | bit(2)
        );
    }

    #[test]
    fn read_on_one_path_is_live() {
        // r0 is written only when the branch falls through.
        let text = "jeq %r1, 0, out\nmov %r0, 1\nout:\nexit";
        assert_eq!(live(text), bit(0) | bit(1));
        // r4 is read in the loop before the write that follows it.
        let text = "mov %r0, 0\nl:\nadd %r0, %r4\nmov %r4, 1\njlt %r0, 9, l\nexit";
        assert_eq!(live(text), bit(4));
    }

    #[test]
    fn calls_read_everything_they_can() {
        assert_eq!(live("call local f\nexit\nf:\nmov %r0, 0\nexit"), ALL);
        // A helper reads its arguments only: none for the clock, two for a map lookup.
        assert_eq!(live("call bpf_ktime_get_ns\nexit"), 0);
        assert_eq!(
            live("call bpf_csum_diff\nexit"),
            bit(1) | bit(2) | bit(3) | bit(4) | bit(5)
        );
    }

    /// One random line for [`poisoned_registers_change_nothing`]: any register may be read
    /// before it is written, on any path (forward and backward jumps, calls, helpers, loads,
    /// stores, atomics).
    fn line(i: usize, n: usize) -> impl Strategy<Value = String> {
        let r = || 0u8..=9;
        let alu = || {
            prop::sample::select(vec![
                "add", "sub", "xor", "or", "and", "lsh", "rsh", "arsh", "mul", "mov", "add32",
                "mov32", "div", "mod",
            ])
        };
        let jcc = || prop::sample::select(vec!["jeq", "jne", "jgt", "jsgt", "jlt", "jset"]);
        prop_oneof![
            4 => (alu(), r(), r()).prop_map(|(op, d, s)| format!("{op} %r{d}, %r{s}")),
            3 => (alu(), r(), -4i32..300).prop_map(|(op, d, k)| format!("{op} %r{d}, {k}")),
            1 => (r(), -4i32..4).prop_map(|(d, k)| format!("neg %r{d}\nadd %r{d}, {k}")),
            1 => r().prop_map(|d| format!("be16 %r{d}")),
            2 => (r(), 0i32..8).prop_map(|(d, o)| format!("ldxb %r{d}, [%r1+{o}]")),
            1 => (r(), r()).prop_map(|(d, s)| format!("ldxdw %r{d}, [%r{s}+0]")),
            1 => (r(), r()).prop_map(|(d, s)| format!("stxdw [%r10-8], %r{s}\nldxdw %r{d}, [%r10-8]")),
            1 => (r(), r()).prop_map(|(d, s)| format!("mov %r{d}, %r10\nadd %r{d}, -16\nlock add [%r{d}+0], %r{s}")),
            1 => (r(), r()).prop_map(|(d, s)| format!("mov %r{d}, %r10\nadd %r{d}, -16\nlock cmpxchg [%r{d}+0], %r{s}")),
            3 => (jcc(), r(), r(), 0..=n).prop_map(move |(j, d, s, t)| format!("{j} %r{d}, %r{s}, l{t}")),
            2 => (jcc(), r(), -2i32..3, 0..=n).prop_map(move |(j, d, k, t)| {
                // Backward targets make loops; the budget ends those that do not stop.
                let t = if t > i { t } else { t.min(i) };
                format!("{j} %r{d}, {k}, l{t}")
            }),
            1 => Just("call local sub".to_string()),
            1 => Just("call bpf_ktime_get_ns".to_string()),
            1 => Just("call bpf_get_prandom_u32".to_string()),
            1 => Just("mov %r2, 4\ncall bpf_csum_diff".to_string()),
            1 => Just("call bpf_trace_printk".to_string()),
            1 => Just("exit".to_string()),
        ]
    }

    fn program() -> impl Strategy<Value = String> {
        // Most registers are written first, so that most programs read few or none before
        // writing them: a mistake in the analysis then shows instead of being covered by
        // zeroing everything.
        let prologue = proptest::collection::vec(proptest::prelude::any::<bool>(), 8);
        (1usize..16, prologue).prop_flat_map(|(n, init)| {
            (0..n)
                .map(|i| line(i, n))
                .collect::<Vec<_>>()
                .prop_map(move |lines| {
                    let mut text = String::new();
                    for (r, _) in [0, 3, 4, 5, 6, 7, 8, 9]
                        .iter()
                        .zip(&init)
                        .filter(|(_, i)| **i)
                    {
                        text.push_str(&format!("mov %r{r}, {}\n", r * 7 + 1));
                    }
                    for (i, l) in lines.iter().enumerate() {
                        text.push_str(&format!("l{i}:\n{l}\n"));
                    }
                    // The subprogram reads what its caller left in r1..r9.
                    text.push_str(&format!(
                        "l{n}:\nexit\nsub:\nmov %r0, %r3\nadd %r0, %r6\nxor %r0, %r9\nexit\n"
                    ));
                    text
                })
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// The exactness of not zeroing registers: before every run of one Vm, r0 and
        /// r3..r15 are set to junk, as if an earlier run had left it (r1, r2 and r10 are set
        /// by every run); before every run of a twin Vm they are set to zero, as every run
        /// once started. The twins must agree on every run (clocks, random numbers and maps
        /// persist across runs, so each twin is compared run by run): either the program
        /// reads no register before writing it, or the Vm zeroes them all.
        #[test]
        fn poisoned_registers_change_nothing(
            text in program(),
            junk in proptest::prelude::any::<[u64; 13]>(),
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
            budget in proptest::prop_oneof![proptest::prelude::Just(100_000u64), 1u64..60],
        ) {
            let raw = crate::asm::assemble(&text).unwrap();
            let p = Program::from_raw("t", ProgType::Mem, &raw).unwrap();
            let cfg = crate::interp::VmConfig { budget, ..Default::default() };
            let mut poisoned = crate::interp::Vm::new(&p, cfg.clone()).unwrap();
            let mut zeroed = crate::interp::Vm::new(&p, cfg).unwrap();
            let set = |vm: &mut crate::interp::Vm, v: &[u64; 13]| {
                // SAFETY: no run is in progress, so nothing else references the Machine.
                let m = unsafe { vm.machine.get() };
                m.r[0] = v[0];
                m.r[3..10].copy_from_slice(&v[1..8]);
                m.r[11..16].copy_from_slice(&v[8..13]);
            };
            for _ in 0..3 {
                set(&mut poisoned, &junk);
                set(&mut zeroed, &[0; 13]);
                let got = poisoned.run(&input);
                let want = zeroed.run(&input);
                proptest::prop_assert_eq!(got, want, "{}", text);
            }
        }
    }

    #[test]
    fn faults_read_nothing() {
        // Writing r10 compiles to a fault; the op after it is the fall-off-the-end sentinel.
        assert_eq!(
            live("ldxb %r0, [%r1+0]\njeq %r0, 0, f\nexit\nf:\nmov %r10, %r5"),
            bit(1)
        );
    }
}
