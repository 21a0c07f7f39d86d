//! Progress reporting and interruption, passed in by the caller. Libraries never draw; the CLI
//! decides whether a bar is shown (stderr is a terminal, no `--quiet`).

use std::sync::atomic::{AtomicBool, Ordering};

pub trait Progress: Sync {
    fn set_total(&self, _total: u64) {}
    fn inc(&self, _delta: u64) {}
    fn set_message(&self, _message: &str) {}
    /// Long loops poll this and stop cleanly (Ctrl-C): the process-wide flag, unless an
    /// implementation knows better.
    fn interrupted(&self) -> bool {
        interrupted()
    }
}

/// Shows nothing.
pub struct Silent;

impl Progress for Silent {}

/// The process-wide interrupt flag a binary sets from its signal handler; read it through
/// [`Progress::interrupted`] where a progress is at hand.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Human-readable byte counts (binary units, as `ls -h` and git print them).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
