//! What the filter says about its downloads: git runs it with stderr on the user's terminal
//! (or a CI log), and a clone of large files would otherwise be minutes of silence. On a
//! terminal, a line redrawn in git's style (`dits: downloading: 42% (3/7 files), 1.2 GiB |
//! 310.0 MiB/s`); elsewhere, one summary line when the downloads are done.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dits_core::progress::{human, Progress};

#[derive(Default)]
struct Counts {
    files: AtomicU64,
    files_done: AtomicU64,
    bytes: AtomicU64,
    bytes_done: AtomicU64,
    /// Bytes that came over the network (not already local).
    fetched: AtomicU64,
    failed: AtomicU64,
}

pub struct Meter {
    counts: Arc<Counts>,
    started: Instant,
    terminal: bool,
    stop: Arc<(Mutex<bool>, Condvar)>,
    drawer: Option<JoinHandle<()>>,
    drew: Arc<AtomicBool>,
    finished: bool,
}

/// One file's share of a [`Meter`]: counts its bytes as they land, and the rest when done.
pub struct FileMeter {
    counts: Arc<Counts>,
    size: u64,
    counted: AtomicU64,
}

impl Progress for FileMeter {
    fn inc(&self, delta: u64) {
        // A retry may send a chunk again: never count past the file.
        let before = self.counted.fetch_add(delta, Ordering::Relaxed);
        let counts = delta.min(self.size.saturating_sub(before));
        self.counts.bytes_done.fetch_add(counts, Ordering::Relaxed);
        self.counts.fetched.fetch_add(delta, Ordering::Relaxed);
    }
}

impl FileMeter {
    /// The file is done: fetched or already local (`ok`), or failed.
    pub fn done(self, ok: bool) {
        if !ok {
            self.counts.failed.fetch_add(1, Ordering::Relaxed);
        }
        let counted = self.counted.load(Ordering::Relaxed).min(self.size);
        self.counts
            .bytes_done
            .fetch_add(self.size - counted, Ordering::Relaxed);
        self.counts.files_done.fetch_add(1, Ordering::Relaxed);
    }
}

/// The files of a batch fetched together: bytes are counted against each file in turn, up to
/// its size (the transfer reports bytes, not which file they belong to).
pub struct BatchMeter<'a> {
    files: &'a [&'a FileMeter],
    at: std::sync::atomic::AtomicUsize,
}

impl<'a> BatchMeter<'a> {
    pub fn new(files: &'a [&'a FileMeter]) -> Self {
        BatchMeter {
            files,
            at: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl Progress for BatchMeter<'_> {
    fn inc(&self, mut delta: u64) {
        while delta > 0 {
            let i = self.at.load(Ordering::Relaxed);
            let Some(f) = self.files.get(i) else {
                // More than the files hold (chunks sent again): counted as fetched only.
                if let Some(last) = self.files.last() {
                    last.inc(delta);
                }
                return;
            };
            let room = f.size.saturating_sub(f.counted.load(Ordering::Relaxed));
            if room == 0 {
                self.at.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let take = delta.min(room);
            f.inc(take);
            delta -= take;
        }
    }
}

const REDRAW: Duration = Duration::from_millis(250);
/// Downloads quicker than this are not worth a line on a terminal.
const QUIET_FOR: Duration = Duration::from_millis(500);

impl Meter {
    pub fn new() -> Meter {
        Meter::with_terminal(std::io::stderr().is_terminal())
    }

    fn with_terminal(terminal: bool) -> Meter {
        let counts = Arc::new(Counts::default());
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let drew = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let drawer = terminal.then(|| {
            let (counts, stop, drew) = (Arc::clone(&counts), Arc::clone(&stop), Arc::clone(&drew));
            std::thread::spawn(move || {
                let (lock, cvar) = &*stop;
                let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                while !*stopped {
                    stopped = cvar
                        .wait_timeout(stopped, REDRAW)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    if !*stopped && started.elapsed() >= QUIET_FOR {
                        let line = status_line(&counts, started.elapsed());
                        let mut err = std::io::stderr().lock();
                        let _ = write!(err, "\r{line}\x1b[K");
                        let _ = err.flush();
                        drew.store(true, Ordering::Relaxed);
                    }
                }
            })
        });
        Meter {
            counts,
            started,
            terminal,
            stop,
            drawer,
            drew,
            finished: false,
        }
    }

    /// A file of `size` bytes joins the downloads.
    pub fn add(&self, size: u64) -> FileMeter {
        self.counts.files.fetch_add(1, Ordering::Relaxed);
        self.counts.bytes.fetch_add(size, Ordering::Relaxed);
        FileMeter {
            counts: Arc::clone(&self.counts),
            size,
            counted: AtomicU64::new(0),
        }
    }

    /// Stops drawing and prints the final line: on a terminal the bar's last state ended with
    /// "done", elsewhere one summary (nothing if no file was downloaded).
    pub fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        {
            let (lock, cvar) = &*self.stop;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cvar.notify_all();
        }
        if let Some(d) = self.drawer.take() {
            let _ = d.join();
        }
        let c = &self.counts;
        let files = c.files.load(Ordering::Relaxed);
        if files == 0 {
            return;
        }
        let elapsed = self.started.elapsed();
        let line = if self.terminal {
            if !self.drew.load(Ordering::Relaxed) {
                return;
            }
            format!("\r{}, done.\x1b[K", status_line(c, elapsed))
        } else {
            format!(
                "dits: downloaded {} of {files} file(s): {} in {:.1} s",
                files - c.failed.load(Ordering::Relaxed),
                human(c.fetched.load(Ordering::Relaxed)),
                elapsed.as_secs_f64()
            )
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}

impl Default for Meter {
    fn default() -> Meter {
        Meter::new()
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        // Only to end a line left on the terminal: summaries are for finish().
        if self.drawer.is_some() {
            self.finish();
        }
    }
}

fn status_line(c: &Counts, elapsed: Duration) -> String {
    let (bytes, done) = (
        c.bytes.load(Ordering::Relaxed),
        c.bytes_done.load(Ordering::Relaxed),
    );
    let pct = (done * 100).checked_div(bytes).unwrap_or(100);
    let rate = c.fetched.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "dits: downloading: {pct:3}% ({}/{} files), {} | {}/s",
        c.files_done.load(Ordering::Relaxed),
        c.files.load(Ordering::Relaxed),
        human(done),
        human(rate as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_never_pass_the_file_and_done_fills_the_rest() {
        let m = Meter::with_terminal(false);
        let a = m.add(100);
        let b = m.add(50);
        a.inc(60);
        a.inc(60); // a retry sent a chunk again
        assert_eq!(m.counts.bytes_done.load(Ordering::Relaxed), 100);
        b.done(true); // already local
        assert_eq!(m.counts.bytes_done.load(Ordering::Relaxed), 150);
        a.done(true);
        assert_eq!(m.counts.bytes_done.load(Ordering::Relaxed), 150);
        assert_eq!(m.counts.files_done.load(Ordering::Relaxed), 2);
        assert_eq!(m.counts.fetched.load(Ordering::Relaxed), 120);
        let line = status_line(&m.counts, Duration::from_secs(1));
        assert!(line.contains("100% (2/2 files)"), "{line}");
    }
}
