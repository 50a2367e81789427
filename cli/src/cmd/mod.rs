//! One module per subcommand.

pub mod asm;
pub mod compile;
pub mod demo;
pub mod diff;
pub mod report;
pub mod run;
pub mod sim;
pub mod verify;
