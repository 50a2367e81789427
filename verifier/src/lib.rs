//! Static verifier in the spirit of the Linux kernel's (issue #4).
//!
//! So far this crate provides only the scalar abstract domain the verifier will be built on:
//! [`tnum`] (known bits) and [`bounds`] (the tnum plus signed/unsigned, 64/32-bit ranges of a
//! scalar register, their synchronisation, ALU transfer functions and branch refinement).
//! There is no program walk, register/stack state or pruning yet.

pub mod bounds;
pub mod tnum;

pub use bounds::ScalarBounds;
pub use tnum::Tnum;
