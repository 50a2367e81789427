//! Is the kernel oracle available, and what a kernel-backed test does when it is not.
//!
//! A test that needs `bpf()` and cannot get it must not pass silently: it prints a line
//! starting with `KERNEL ORACLE SKIPPED:` to both stderr and stdout, bypassing libtest's
//! output capture so it shows up even for a passing test, and returns early. Setting `HW_TESTS_REQUIRE_KERNEL=1` (CI runs as
//! root) turns the skip into a failure.

use std::io::Write;
use std::sync::OnceLock;

use vm_core::isa::{AluOp, Insn, Operand, Width};

use super::prog::{LoadOptions, load_program};

/// Environment variable that makes an unavailable kernel oracle a test failure.
pub const REQUIRE_KERNEL_ENV: &str = "HW_TESTS_REQUIRE_KERNEL";

/// The marker every skipped kernel-backed test prints.
pub const SKIP_MARKER: &str = "KERNEL ORACLE SKIPPED:";

/// `r0 = 0; exit`: the smallest program every kernel accepts.
pub fn trivial_program() -> Vec<vm_core::RawInsn> {
    vm_core::isa::encode_program(&[
        Insn::Alu {
            op: AluOp::Mov,
            width: Width::W64,
            dst: 0,
            src: Operand::Imm(0),
        },
        Insn::Exit,
    ])
}

/// Checks once per process that the kernel loads a trivial XDP program.
pub fn oracle() -> Result<(), String> {
    static STATUS: OnceLock<Result<(), String>> = OnceLock::new();
    STATUS
        .get_or_init(|| {
            let xdp = aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_XDP as u32;
            load_program(&trivial_program(), xdp, &LoadOptions::default())
                .map(drop)
                .map_err(|e| format!("bpf(BPF_PROG_LOAD) of a trivial XDP program refused: {e}"))
        })
        .clone()
}

/// For kernel-backed tests: `true` if the oracle is available; otherwise prints the skip line
/// (or panics when [`REQUIRE_KERNEL_ENV`] is set) and returns `false`.
pub fn kernel_or_skip(test_name: &str) -> bool {
    match oracle() {
        Ok(()) => true,
        Err(reason) => {
            let required =
                std::env::var(REQUIRE_KERNEL_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
            assert!(
                !required,
                "{test_name}: kernel oracle required ({REQUIRE_KERNEL_ENV}) but unavailable: {reason}"
            );
            let line = format!("{SKIP_MARKER} {test_name}: {reason}\n");
            // Written to the raw handles, not with print!/eprint!: libtest captures the
            // macros' output of passing tests, which would hide the skip.
            let _ = std::io::stderr().write_all(line.as_bytes());
            let _ = std::io::stdout().write_all(line.as_bytes());
            false
        }
    }
}

/// Returns early from a kernel-backed test when `bpf()` is refused (see [`kernel_or_skip`]).
/// `require_kernel!()` names the test by module and line; `require_kernel!("name")` by name.
#[macro_export]
macro_rules! require_kernel {
    () => {
        if !$crate::kernel::kernel_or_skip(concat!(module_path!(), ":", line!())) {
            return;
        }
    };
    ($name:expr) => {
        if !$crate::kernel::kernel_or_skip($name) {
            return;
        }
    };
}
