//! Differential testing against the host kernel's verifier and JIT (issue #3).
