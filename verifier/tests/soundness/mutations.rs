//! The program generator of the soundness test: safe filler around one snippet, which comes
//! in a safe form and in an unsafe form (the mutation). Assembly text in the bpf_conformance
//! syntax. Register conventions: r6 holds the context throughout; the filler computes on
//! scalars in r0, r2, r3, r7, r8, r9 only; snippets use r0..r5 and r7 and are followed by a
//! scrub that makes r0..r5 scalars again, so the filler after them stays safe.

use std::fmt::Write as _;

use vm_core::ProgType;

use crate::bounds::*;
use crate::memory::*;
use crate::pointers::*;

/// xorshift64*: small, deterministic, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Program type and privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Xdp,
    Tc,
    Socket,
    /// Socket filter, unprivileged.
    SocketUnpriv,
}

impl Profile {
    pub fn prog_type(self) -> ProgType {
        match self {
            Profile::Xdp => ProgType::Xdp,
            Profile::Tc => ProgType::SchedCls,
            Profile::Socket | Profile::SocketUnpriv => ProgType::SocketFilter,
        }
    }
    pub fn privileged(self) -> bool {
        self != Profile::SocketUnpriv
    }
    pub fn name(self) -> &'static str {
        match self {
            Profile::Xdp => "xdp",
            Profile::Tc => "tc",
            Profile::Socket => "sock",
            Profile::SocketUnpriv => "sock-unpriv",
        }
    }
}

/// One mutation kind: where it applies and how its snippet is written.
pub struct Kind {
    pub name: &'static str,
    pub profiles: &'static [Profile],
    /// Writes the snippet; `true` for the unsafe form.
    pub snippet: fn(&mut Gen, bool) -> String,
}

use Profile::{Socket as S, SocketUnpriv as U, Tc as T, Xdp as X};

const PKT: &[Profile] = &[X, T];
const ALL: &[Profile] = &[X, T, S, U];
const PRIV: &[Profile] = &[X, T, S];

pub const KINDS: &[Kind] = &[
    Kind {
        name: "pkt beyond checked range",
        profiles: PKT,
        snippet: pkt_beyond,
    },
    Kind {
        name: "pkt before data",
        profiles: PKT,
        snippet: pkt_before,
    },
    Kind {
        name: "pkt unchecked pointer",
        profiles: PKT,
        snippet: pkt_unchecked,
    },
    Kind {
        name: "pkt check wrong branch/kind",
        profiles: PKT,
        snippet: pkt_wrong_check,
    },
    Kind {
        name: "pkt_end arithmetic/deref",
        profiles: PKT,
        snippet: pkt_end,
    },
    Kind {
        name: "pkt variable offset",
        profiles: PKT,
        snippet: pkt_var,
    },
    Kind {
        name: "pkt compare forms",
        profiles: PKT,
        snippet: pkt_compare,
    },
    Kind {
        name: "stack out of [-512,0)",
        profiles: ALL,
        snippet: stack_oob,
    },
    Kind {
        name: "stack variable offset",
        profiles: PRIV,
        snippet: stack_var,
    },
    Kind {
        name: "stack misaligned",
        profiles: ALL,
        snippet: stack_misaligned,
    },
    Kind {
        name: "spilled pointer clobbered",
        profiles: ALL,
        snippet: spill_clobber,
    },
    Kind {
        name: "spilled scalar bounds",
        profiles: ALL,
        snippet: spill_scalar,
    },
    Kind {
        name: "map value out of bounds",
        profiles: ALL,
        snippet: map_oob,
    },
    Kind {
        name: "map value variable offset",
        profiles: ALL,
        snippet: map_var,
    },
    Kind {
        name: "map lookup NULL unchecked",
        profiles: ALL,
        snippet: map_null,
    },
    Kind {
        name: "map index bounded by branch",
        profiles: ALL,
        snippet: map_branch,
    },
    Kind {
        name: "map index ALU bounds",
        profiles: ALL,
        snippet: alu_bounds,
    },
    Kind {
        name: "uninit register",
        profiles: ALL,
        snippet: uninit_reg,
    },
    Kind {
        name: "uninit stack (unpriv)",
        profiles: &[U],
        snippet: uninit_stack,
    },
    Kind {
        name: "ctx bad offset/size/write",
        profiles: ALL,
        snippet: ctx_bad,
    },
    Kind {
        name: "ctx pointer modified",
        profiles: ALL,
        snippet: ctx_modified,
    },
    Kind {
        name: "pointer ALU forbidden op",
        profiles: ALL,
        snippet: ptr_alu,
    },
    Kind {
        name: "ptr-ptr / scalar-ptr",
        profiles: ALL,
        snippet: ptr_ptr,
    },
    Kind {
        name: "return a pointer",
        profiles: ALL,
        snippet: return_ptr,
    },
    Kind {
        name: "pointer leak (unpriv)",
        profiles: &[U],
        snippet: ptr_leak,
    },
    Kind {
        name: "division",
        profiles: ALL,
        snippet: division,
    },
    Kind {
        name: "ringbuf misuse",
        profiles: PRIV,
        snippet: ringbuf,
    },
    Kind {
        name: "frame pointer write",
        profiles: ALL,
        snippet: fp_write,
    },
    Kind {
        name: "scalar dereference",
        profiles: ALL,
        snippet: scalar_deref,
    },
    Kind {
        name: "helper argument",
        profiles: ALL,
        snippet: helper_arg,
    },
    Kind {
        name: "helper buffer/size args",
        profiles: ALL,
        snippet: helper_mem,
    },
    Kind {
        name: "atomic misuse",
        profiles: ALL,
        snippet: atomics,
    },
];

/// Generator state for one program.
pub struct Gen {
    pub rng: Rng,
    pub(crate) profile: Profile,
    label: usize,
}

impl Gen {
    pub fn new(seed: u64, profile: Profile) -> Self {
        Gen {
            rng: Rng(seed),
            profile,
            label: 0,
        }
    }

    pub(crate) fn label(&mut self) -> String {
        self.label += 1;
        format!("l{}", self.label)
    }

    /// `(data, data_end)` context offsets.
    pub(crate) fn pkt_offsets(&self) -> (i64, i64) {
        if self.profile == Profile::Xdp {
            (0, 4)
        } else {
            (76, 80)
        }
    }

    /// A context field every profile may read as a word (a scalar).
    pub(crate) fn ctx_field(&mut self) -> i64 {
        if self.profile == Profile::Xdp {
            *self.rng.pick(&[12, 16])
        } else {
            *self.rng.pick(&[0, 4, 8, 16, 48, 52, 56, 68])
        }
    }

    /// The whole program: prologue, filler, snippet, scrub, filler, exit. The random
    /// choices of the filler are drawn from a separate stream so that the safe and unsafe
    /// twins share them even when the snippets draw differently.
    pub fn program(&mut self, kind: &Kind, unsafe_form: bool) -> String {
        let mut filler = Gen {
            rng: Rng(self.rng.next() | 1),
            profile: self.profile,
            label: 1000,
        };
        let mut out = String::from("mov r6, r1\n");
        for r in [0u8, 2, 3, 4, 5, 7, 8, 9] {
            let _ = writeln!(out, "mov r{r}, {}", filler.rng.below(200));
        }
        let before = filler.rng.below(5);
        let after = filler.rng.below(4);
        for _ in 0..before {
            filler.filler_step(&mut out);
        }
        out.push_str(&(kind.snippet)(self, unsafe_form));
        out.push_str("mov r0, 0\nmov r1, 1\nmov r2, 2\nmov r3, 3\nmov r4, 4\nmov r5, 5\n");
        for _ in 0..after {
            filler.filler_step(&mut out);
        }
        let _ = writeln!(out, "mov r0, {}\nexit", filler.rng.below(3));
        out
    }

    /// One step that is safe in every profile.
    fn filler_step(&mut self, out: &mut String) {
        let regs = [0u8, 2, 3, 7, 8, 9];
        let a = *self.rng.pick(&regs);
        let b = *self.rng.pick(&regs);
        let off = -8 * (1 + self.rng.below(8) as i64);
        match self.rng.below(9) {
            0 => {
                let op = self
                    .rng
                    .pick(&["add", "sub", "and", "or", "xor", "mul", "div", "mod"]);
                let w = if self.rng.chance(30) { "32" } else { "" };
                let _ = writeln!(out, "{op}{w} r{a}, r{b}");
            }
            1 => {
                let op = self
                    .rng
                    .pick(&["add", "sub", "and", "or", "lsh", "rsh", "arsh"]);
                let imm = if op.ends_with("sh") {
                    self.rng.below(32) as i64
                } else {
                    17
                };
                let _ = writeln!(out, "{op} r{a}, {imm}");
            }
            2 => {
                let sz = self.rng.pick(&["dw", "w", "h", "b"]);
                let _ = writeln!(out, "stx{sz} [r10{off}], r{a}\nldx{sz} r{b}, [r10{off}]");
            }
            3 => {
                let off2 = self.ctx_field();
                let _ = writeln!(out, "ldxw r{a}, [r6+{off2}]");
            }
            4 => {
                let l = self.label();
                let cond = self.rng.pick(&["jeq", "jne", "jgt", "jsgt", "jle", "jset"]);
                let _ = writeln!(
                    out,
                    "{cond} r{a}, {}, {l}\nmov r{b}, 1\n{l}:",
                    self.rng.below(64)
                );
            }
            5 => {
                let _ = writeln!(
                    out,
                    "call {}",
                    self.rng.pick(&["get_prandom_u32", "ktime_get_ns"])
                );
                let _ = writeln!(out, "mov r1, 1\nmov r2, 2\nmov r3, 3\nmov r4, 4\nmov r5, 5");
            }
            6 if self.profile == Profile::Xdp || self.profile == Profile::Tc => {
                let (d, e) = self.pkt_offsets();
                let l = self.label();
                let need = 1 + self.rng.below(40);
                let _ = writeln!(
                    out,
                    "ldxw r4, [r6+{d}]\nldxw r5, [r6+{e}]\nmov r1, r4\nadd r1, {need}\njgt r1, r5, {l}\nldxb r{a}, [r4+{}]\n{l}:\nmov r1, 1\nmov r4, 4\nmov r5, 5",
                    self.rng.below(need)
                );
            }
            7 => {
                let l = self.label();
                let _ = writeln!(
                    out,
                    "stdw [r10-8], {}\nlddw r1, map_fd 1\nmov r2, r10\nadd r2, -8\ncall map_lookup_elem\njeq r0, 0, {l}\nldxw r{a}, [r0+{}]\n{l}:\nmov r0, 0\nmov r1, 1\nmov r2, 2\nmov r3, 3\nmov r4, 4\nmov r5, 5",
                    self.rng.below(6),
                    4 * self.rng.below(12)
                );
            }
            8 if self.profile.privileged() => {
                let l = self.label();
                let _ = writeln!(
                    out,
                    "mov r{a}, 0\n{l}:\nadd r{a}, 1\njlt r{a}, {}, {l}",
                    1 + self.rng.below(10)
                );
            }
            _ => {
                let _ = writeln!(out, "neg r{a}");
            }
        }
    }

    /// `r2 = data`, `r3 = data_end`, `r4 = data + need`.
    pub(crate) fn pkt_load(&self, need: u64) -> String {
        let (d, e) = self.pkt_offsets();
        format!("ldxw r2, [r6+{d}]\nldxw r3, [r6+{e}]\nmov r4, r2\nadd r4, {need}\n")
    }

    pub(crate) fn size(&mut self) -> (&'static str, u64) {
        *self.rng.pick(&[("b", 1u64), ("h", 2), ("w", 4), ("dw", 8)])
    }

    /// A read or (sometimes) a write of `sz` at `[base+off]`.
    pub(crate) fn access(&mut self, base: &str, sz: &str, off: i64) -> String {
        if self.rng.chance(25) {
            format!("st{sz} [{base}{off:+}], 1\n")
        } else {
            format!("ldx{sz} r0, [{base}{off:+}]\n")
        }
    }

    /// `r0 = lookup(map m, key at r10-8)`, then `jeq r0, 0, l` unless `check` is false.
    pub(crate) fn lookup(&mut self, m: u32, check: bool, l: &str) -> String {
        let mut s = format!(
            "stdw [r10-8], {}\nlddw r1, map_fd {m}\nmov r2, r10\nadd r2, -8\ncall map_lookup_elem\n",
            self.rng.below(4)
        );
        if check {
            let _ = writeln!(s, "jeq r0, 0, {l}");
        }
        s
    }

    /// An unknown scalar in `r` (a context field or a random number).
    pub(crate) fn unknown(&mut self, r: u8) -> String {
        let off = self.ctx_field();
        format!("ldxw r{r}, [r6+{off}]\n")
    }
}
