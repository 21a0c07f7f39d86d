//! Shared start-up of the three Dits programs (the `[[bin]]`s of this package). Libraries
//! only emit `tracing` events; the programs decide where they go.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

/// Logs to stderr, or to the file named by `DITS_LOG_FILE`, at the level in `DITS_LOG`
/// (default: warnings). Never to stdout: it belongs to git's protocols.
pub fn init_logging(program: &'static str) {
    let filter = EnvFilter::try_from_env("DITS_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time();
    let file = std::env::var_os("DITS_LOG_FILE")
        .and_then(|p| OpenOptions::new().create(true).append(true).open(p).ok());
    let _ = match file {
        Some(f) => builder
            .with_ansi(false)
            .with_writer(Mutex::new(f))
            .try_init(),
        None => builder
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .fmt_fields(tracing_subscriber::fmt::format::DefaultFields::new())
            .event_format(Prefixed(program))
            .try_init(),
    };
}

/// `dits-filter: warning: ...`, like git's own messages, instead of a log-line format.
struct Prefixed(&'static str);

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Prefixed
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        write!(writer, "{}: {level}: ", self.0)?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Ctrl-C asks long loops to stop (they poll `dits_core::progress::interrupted`) and remove
/// their temp files; a second Ctrl-C exits at once.
pub fn init_interrupt() {
    use std::sync::atomic::Ordering;
    let _ = ctrlc::set_handler(|| {
        if dits_core::progress::INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("interrupted; cleaning up (Ctrl-C again to quit now)");
    });
}

/// Makes Dits, and every git it runs, see the real objects: a replace ref (`git replace A B`)
/// must not hide from a push's upload, the server's check, `status` or `fsck` the content a
/// commit really references. Called first thing in main, before any thread exists.
pub fn real_objects_only() {
    std::env::set_var("GIT_NO_REPLACE_OBJECTS", "1");
}

/// Restores the default SIGPIPE action (Rust ignores it), so `git dits ls-files | head` ends
/// quietly like any Unix tool instead of panicking on a closed stdout. Not for dits-filter,
/// whose pipe errors are protocol errors handled in code.
#[allow(unsafe_code)]
pub fn default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; only changes a signal
    // disposition back to the system default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Keeps freed memory for reuse instead of returning it to the kernel at once. Transfers
/// allocate chunk and batch buffers of 64 KiB to 16 MiB over and over; with glibc's defaults
/// many of those are fresh mappings, so every buffer is page-faulted and zeroed by the kernel
/// again (about 4% of a clone's CPU here).
#[allow(unsafe_code)]
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's malloc tunables; called first thing in main,
    // before any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}
