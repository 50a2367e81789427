//! NFP-style offload compiler (issue #5).
//!
//! Not started yet: this crate intentionally exposes nothing until the nfp-backend issue lands.
