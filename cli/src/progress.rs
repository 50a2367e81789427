//! A progress bar for long simulations: shown only when stderr is a terminal and the run has
//! lasted long enough to be worth one (cli-contract.md: progress goes to stderr, never stdout).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Frames from either source, with a progress bar on a terminal once the run turns out long.
pub struct Progress {
    started: Instant,
    bar: Option<ProgressBar>,
    tty: bool,
    total: Option<u64>,
    seen: u64,
}

impl Progress {
    pub fn new(total: Option<u64>) -> Progress {
        Progress {
            started: Instant::now(),
            bar: None,
            tty: std::io::stderr().is_terminal(),
            total,
            seen: 0,
        }
    }

    /// Called per frame; touches the clock only every 16 Ki frames.
    pub fn tick(&mut self) {
        self.seen += 1;
        if !self.tty || !self.seen.is_multiple_of(16_384) {
            return;
        }
        match &self.bar {
            Some(b) => b.set_position(self.seen),
            None if self.started.elapsed() > Duration::from_millis(700) => {
                let b = match self.total {
                    Some(n) => ProgressBar::new(n).with_style(
                        ProgressStyle::with_template("{spinner} simulating {pos}/{len} frames [{bar:30}] {per_sec} eta {eta}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    ),
                    None => ProgressBar::new_spinner().with_style(
                        ProgressStyle::with_template("{spinner} simulating {pos} frames {per_sec}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    ),
                };
                b.set_position(self.seen);
                self.bar = Some(b);
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
