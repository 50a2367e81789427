//! Exit codes of the contract: 0 success, 1 rejected / faulted / diverged, 2 bad input or usage.

use std::{fmt, process::ExitCode};

/// An error that ends the command with a contract exit code and a one-line message on stderr.
#[derive(Debug)]
pub struct CliError {
    /// 1 or 2.
    pub code: u8,
    /// Already formatted, naming the file and the location.
    pub message: String,
}

impl CliError {
    /// Bad input or usage (exit 2).
    pub fn input(message: impl fmt::Display) -> Self {
        CliError {
            code: 2,
            message: message.to_string(),
        }
    }

    pub fn report(&self) -> ExitCode {
        eprintln!("offload: {}", self.message);
        ExitCode::from(self.code)
    }
}
