//! Static verifier in the spirit of the Linux kernel's (issue #4).
//!
//! Not started yet: this crate intentionally exposes nothing until the verifier issue lands,
//! so that no later stage can depend on a fake.
