//! Why a program cannot be offloaded: every reason found in one run, each at its instruction,
//! worded in the spirit of the kernel NFP driver's `[nfp]` verifier messages.

/// One reason a program cannot be offloaded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reason {
    /// The eBPF instruction slot concerned (`None` for whole-program limits such as the map
    /// count or the program type).
    pub pc: Option<usize>,
    /// What kind of limit, for histograms (stable, snake_case, e.g. `insn_not_supported`).
    pub category: &'static str,
    /// The message, e.g. `[nfp] instruction 0x9f not supported`.
    pub message: String,
}

impl Reason {
    /// A reason at an instruction.
    pub fn at(pc: usize, category: &'static str, message: impl Into<String>) -> Reason {
        Reason {
            pc: Some(pc),
            category,
            message: message.into(),
        }
    }

    /// A whole-program reason.
    pub fn program(category: &'static str, message: impl Into<String>) -> Reason {
        Reason {
            pc: None,
            category,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pc {
            Some(pc) => write!(f, "{pc}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}
