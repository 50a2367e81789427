//! vm-core: the eBPF instruction set, its text and ELF front ends, maps and helpers with the
//! kernel's semantics, and the reference interpreter every later stage is checked against.
//!
//! Data flows one way:
//!
//! ```text
//! bytes ──┐
//! text  ──┼─► isa::decode_program ─► Program ─► interp::Vm::run(ctx) ─► Outcome
//! ELF   ──┘   (typed Insn per slot)   (+ maps)   (maps, helpers, contexts)
//! ```

pub mod asm;
pub mod corpus;
pub mod demo;
pub mod elf;
pub mod interp;
pub mod isa;
pub mod maps;
pub mod program;
pub mod testdata;

pub use isa::{Insn, RawInsn};
pub use program::{MapDef, MapType, ProgType, Program};
