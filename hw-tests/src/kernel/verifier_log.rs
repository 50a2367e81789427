//! Reading the kernel verifier's log: the statistics it prints at the end and the line that
//! says why a program was refused.
//!
//! The differential harness compares verdicts as (accepted?, errno class, first error line),
//! never whole logs, because the trace part of the log changes between kernel versions
//! (6.18 added the "Live regs" preamble, for instance) while the error sentence rarely does.

/// The summary the verifier prints after verification (`log_level` 1, 2 or 4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifierStats {
    /// `processed N insns`: instructions the verifier walked (counting revisits).
    pub insns_processed: Option<u64>,
    /// `(limit N)`: the complexity limit in force.
    pub insn_limit: Option<u64>,
    /// `max_states_per_insn N`.
    pub max_states_per_insn: Option<u64>,
    /// `total_states N`.
    pub total_states: Option<u64>,
    /// `peak_states N`.
    pub peak_states: Option<u64>,
    /// `mark_read N` (absent on kernels that dropped the counter).
    pub mark_read: Option<u64>,
    /// `verification time N usec` (only with `log_level` 4).
    pub verification_time_us: Option<u64>,
    /// `stack depth A+B+...`, one entry per subprogram (only with `log_level` 4).
    pub stack_depth: Option<Vec<u32>>,
}

impl VerifierStats {
    /// Whether the log contained any summary line at all.
    pub fn is_empty(&self) -> bool {
        *self == VerifierStats::default()
    }
}

/// Parses the summary lines of a verifier log; fields that are absent stay `None`.
pub fn parse_stats(log: &str) -> VerifierStats {
    let mut s = VerifierStats::default();
    for line in log.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("processed ") {
            parse_processed(rest, &mut s);
        } else if let Some(rest) = line.strip_prefix("verification time ") {
            s.verification_time_us = rest
                .strip_suffix("usec")
                .and_then(|n| n.trim().parse().ok());
        } else if let Some(rest) = line.strip_prefix("stack depth ") {
            let depths: Option<Vec<u32>> = rest
                .trim()
                .split('+')
                .map(|d| d.trim().parse().ok())
                .collect();
            s.stack_depth = depths;
        }
    }
    s
}

/// `N insns (limit L) max_states_per_insn A total_states B peak_states C mark_read D`.
fn parse_processed(rest: &str, s: &mut VerifierStats) {
    let toks: Vec<&str> = rest.split_whitespace().collect();
    if toks.get(1) != Some(&"insns") {
        return;
    }
    s.insns_processed = toks.first().and_then(|n| n.parse().ok());
    let mut i = 2;
    while i + 1 < toks.len() {
        let (key, val) = (toks[i], toks[i + 1]);
        let num = val.trim_end_matches(')').parse::<u64>().ok();
        match key {
            "(limit" => s.insn_limit = num,
            "max_states_per_insn" => s.max_states_per_insn = num,
            "total_states" => s.total_states = num,
            "peak_states" => s.peak_states = num,
            "mark_read" => s.mark_read = num,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
}

/// Whether a line is one of the summary lines printed after verification.
fn is_summary(line: &str) -> bool {
    line.starts_with("processed ")
        || line.starts_with("verification time ")
        || line.starts_with("stack depth ")
}

/// Whether a line is part of the instruction-by-instruction trace rather than a message.
fn is_trace(line: &str) -> bool {
    // `12: (bf) r1 = r6`, `12: R1=ctx()`; the number may be followed by `:`.
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && line[digits..].starts_with(':') {
        return true;
    }
    const PREFIXES: [&str; 10] = [
        "from ",
        "; ",
        "func#",
        "Live regs before insn",
        "mark_precise:",
        "last_idx ",
        "regs=",
        "parent ",
        "propagating ",
        "Validating ",
    ];
    line.starts_with(char::is_whitespace) || PREFIXES.iter().any(|p| line.starts_with(p))
}

/// The sentence that says why the program was refused: the first line after the last trace
/// line, ignoring the summary. With `log_level` 0 the log is empty and this is `None`.
pub fn first_error_line(log: &str) -> Option<String> {
    let lines: Vec<&str> = log
        .lines()
        .map(|l| l.trim_end_matches(['\0', '\r']))
        .filter(|l| !l.trim().is_empty() && !is_summary(l))
        .collect();
    let after_trace = match lines.iter().rposition(|l| is_trace(l)) {
        Some(last) => lines.get(last + 1).or(lines.last()),
        None => lines.first(),
    };
    after_trace.map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCEPTED: &str = "func#0 @0\nLive regs before insn:\n      0: .......... (b7) r0 = 2\n      1: 0......... (95) exit\n0: R1=ctx() R10=fp0\n0: (b7) r0 = 2                        ; R0=2\n1: (95) exit\nprocessed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";

    #[test]
    fn stats_of_an_accepted_program() {
        let s = parse_stats(ACCEPTED);
        assert_eq!(s.insns_processed, Some(2));
        assert_eq!(s.insn_limit, Some(1_000_000));
        assert_eq!(s.max_states_per_insn, Some(0));
        assert_eq!(s.mark_read, Some(0));
        assert_eq!(s.verification_time_us, None);
    }

    #[test]
    fn stats_at_log_level_4() {
        let log = "processed 7 insns (limit 1000000) max_states_per_insn 1 total_states 3 peak_states 3\nverification time 31 usec\nstack depth 8+16\n";
        let s = parse_stats(log);
        assert_eq!(s.insns_processed, Some(7));
        assert_eq!(s.peak_states, Some(3));
        assert_eq!(s.mark_read, None);
        assert_eq!(s.verification_time_us, Some(31));
        assert_eq!(s.stack_depth, Some(vec![8, 16]));
    }

    #[test]
    fn accepted_program_has_no_message_after_the_trace() {
        // The helper is meant for failed loads; on a success it still returns something sane.
        assert_eq!(first_error_line(ACCEPTED).as_deref(), Some("1: (95) exit"));
    }

    #[test]
    fn first_error_line_of_rejections() {
        let cases = [
            (
                "0: R1=ctx() R10=fp0\n0: (95) exit\nR0 !read_ok\nprocessed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n",
                "R0 !read_ok",
            ),
            (
                "unreachable insn 2\nverification time 5 usec\n",
                "unreachable insn 2",
            ),
            (
                "0: R1=ctx() R10=fp0\n1: (15) if r0 == 0x0 goto pc-1        ; R0=0\ninfinite loop detected at insn 1\ncur state: R0=0 R1=ctx() R10=fp0\nold state: R0=P0 R1=ctx() R10=fp0\n",
                "infinite loop detected at insn 1",
            ),
            (
                "2: (71) r0 = *(u8 *)(r2 +0)\ninvalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)\nR2 offset is outside of the packet\nprocessed 3 insns\n",
                "invalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)",
            ),
        ];
        for (log, want) in cases {
            assert_eq!(first_error_line(log).as_deref(), Some(want), "{log}");
        }
    }

    #[test]
    fn empty_log_has_no_error_line() {
        assert_eq!(first_error_line(""), None);
        assert_eq!(first_error_line("\0"), None);
    }
}
