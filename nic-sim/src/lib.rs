//! Multi-core SmartNIC simulator (issue #6).
//!
//! Not started yet: this crate intentionally exposes nothing until the nic-sim issue lands.
