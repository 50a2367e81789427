//! Text front and back ends for eBPF code.
//!
//! - [`assemble`] reads the bpf_conformance assembler syntax (shared/corpus/FORMATS.md §1) and
//!   produces raw slots. It returns [`RawInsn`] rather than decoded instructions on purpose: the
//!   negative corpora need text that *assembles* to encodings the decoder must then *reject*
//!   (registers r11..r15, for instance).
//! - [`disassemble`] / [`format_insn`] print decoded instructions in three dialects
//!   ([`Syntax`]). The conformance dialect is the canonical one: its output re-assembles to
//!   identical bytes for every instruction the decoder accepts, which is what lets us store
//!   programs as text and diff them.
//! - [`helper_name`] maps kernel helper ids to names for the kernel dialect.

mod error;
mod helpers;
mod lex;
mod parse;
mod print;
mod pseudo_c;

#[cfg(test)]
mod tests;

pub use error::{AsmError, AsmErrorKind};
pub use helpers::{helper_id, helper_name};
pub use parse::assemble;
pub use print::{disassemble, format_insn, kernel_line};

/// Output dialect of the disassembler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Syntax {
    /// bpf_conformance / uBPF mnemonics (`mov32 %r0, 1`, `jeq %r1, 2, +3`). Round-trips through
    /// [`assemble`] byte for byte.
    Conformance,
    /// The kernel verifier log / `bpftool prog dump xlated` pseudo-C (`r0 = 2`,
    /// `if r2 > 0xa goto pc+2`). Printed without the `IDX: (OP) ` prefix; see [`kernel_line`].
    Kernel,
    /// `llvm-objdump -d` (LLVM 19, hex immediates): `r1 = 0x123 ll`, `goto +0xe`.
    Llvm,
}
