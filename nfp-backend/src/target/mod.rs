//! The microengine target: instruction set ([`insn`]), its 64-bit encoding, decoder and
//! text printer.

pub mod decode;
pub mod encode;
pub mod insn;
pub mod print;

pub use decode::{DecodeError, decode, decode_program};
pub use encode::{EncodeError, encode, encode_program};
pub use insn::*;
pub use print::{print, print_program};
