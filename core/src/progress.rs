//! Progress reporting and interruption, passed in by the caller. Libraries never draw; the CLI
//! decides whether a bar is shown (stderr is a terminal, no `--quiet`).

use std::sync::atomic::{AtomicBool, Ordering};

pub trait Progress: Sync {
    fn set_total(&self, _total: u64) {}
    fn inc(&self, _delta: u64) {}
    fn set_message(&self, _message: &str) {}
    /// Long loops poll this and stop cleanly (Ctrl-C).
    fn interrupted(&self) -> bool {
        false
    }
}

/// Shows nothing and is never interrupted.
pub struct Silent;

impl Progress for Silent {}

/// A process-wide interrupt flag a binary sets from its signal handler.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}
