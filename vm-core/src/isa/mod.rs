//! The eBPF instruction set (RFC 9669, ISA v4): raw slots, typed instructions, decoder, encoder.

mod decode;
mod encode;
mod insn;
pub mod opcode;

pub use decode::{DecodeError, DecodeErrorKind, check_targets, decode_at, decode_program};
pub use encode::{Encoded, encode_program};
pub use insn::*;

#[cfg(test)]
mod tests;
