//! `git dits mount`: any commit as a read-only folder whose Dits files are fetched chunk by
//! chunk as programs read them.
//!
//! - [`snapshot`]: the commit's tree as inodes, loaded a directory at a time.
//! - [`content`]: byte ranges of Dits files: memory, local store, fetch, readahead.
//! - [`disk_cache`]: fetched chunks kept in the local store, bounded by `dits.mount.cacheSize`.
//! - [`view`]: the filesystem as plain calls, for any backend.
//! - [`fuse`]: the Linux backend. A Windows (dokany) backend would sit beside it.
//! - [`mounts`]: listing and unmounting.

mod content;
mod disk_cache;
#[cfg(target_os = "linux")]
mod fuse;
mod mounts;
mod snapshot;
mod view;

use std::io::BufRead;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use dits_core::store::{DiskStore, StoreOptions};

use crate::repo::Repo;
use dits_core::source::ContentSource;

/// Verified chunks kept in memory by a mount (readahead lands here first).
const MEMORY_CACHE: u64 = 128 << 20;
/// How long `git dits mount` waits for its background process to report the mount.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a read waits for a server that stopped answering (or a connection to one) before
/// it fails with EIO; `dits.timeout` and `dits.connectTimeout` can only shorten it.
const READ_WAIT: Duration = Duration::from_secs(8);

pub struct MountArgs<'a> {
    pub dir: Option<&'a Path>,
    pub rev: &'a str,
    pub foreground: bool,
    pub list: bool,
}

pub fn run(args: &MountArgs, quiet: bool) -> Result<ExitCode> {
    if args.list {
        for m in mounts::list()? {
            println!("{}\t{}", m.dir.display(), m.source);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(dir) = args.dir else {
        bail!("which directory? hint: git dits mount [--rev REV] DIR, or --list");
    };
    let dir = std::path::absolute(dir).with_context(|| format!("{}", dir.display()))?;
    prepare_dir(&dir)?;
    let repo = Repo::discover()?;
    // Resolved once, here: the background process mounts this commit even if the branch
    // moves meanwhile, and a bad REV fails before anything starts.
    let commit = repo
        .repo
        .rev_parse_single(args.rev)
        .with_context(|| {
            format!(
                "{}: unknown revision; hint: try HEAD or a branch name",
                args.rev
            )
        })?
        .object()?
        .peel_to_commit()
        .with_context(|| format!("{}: does not name a commit", args.rev))?
        .id;
    // Trust and credentials are settled now, at a terminal, not later in the background;
    // the background process checks again to have its connection ready for the first read.
    // Each check gives up after a few seconds, so a server that is down delays the mount
    // only that long.
    let origins = repo.open_sources_waiting(Some(READ_WAIT));
    for origin in &origins {
        if let Err(e) = origin.check() {
            tracing::warn!(
                "{e:#}; content that is not local will be unreadable until it is reachable"
            );
        }
    }
    if args.foreground {
        serve(&repo, args.rev, commit, &dir, origins, quiet)
    } else {
        spawn_background(&repo, args.rev, commit, &dir, quiet)
    }
}

pub fn unmount(dir: &Path, lazy: bool, quiet: bool) -> Result<ExitCode> {
    let dir = std::path::absolute(dir).with_context(|| format!("{}", dir.display()))?;
    if mounts::find(&dir)?.is_none() {
        bail!(
            "{}: not a Dits mount; hint: `git dits mount --list` shows them",
            dir.display()
        );
    }
    mounts::unmount(&dir, lazy)?;
    if !quiet {
        eprintln!("unmounted {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The mount point must be a directory; a dead Dits mount there (its process was killed
/// where auto-unmount is unavailable) is cleared first.
fn prepare_dir(dir: &Path) -> Result<()> {
    if let Some(m) = mounts::find(dir)? {
        if mounts::is_dead(dir) {
            tracing::info!("clearing the dead mount at {}", dir.display());
            mounts::unmount(dir, true)?;
        } else {
            bail!(
                "{} is already a Dits mount ({}); hint: git dits unmount {}",
                dir.display(),
                m.source,
                dir.display()
            );
        }
    }
    let meta = std::fs::metadata(dir).with_context(|| {
        format!(
            "{}: cannot use it as a mount point; hint: mkdir it first",
            dir.display()
        )
    })?;
    if !meta.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    Ok(())
}

/// `dits.mount.cacheSize`: bytes of fetched chunks kept on disk (0 or unset: no bound).
fn cache_limit(repo: &Repo) -> Result<Option<u64>> {
    match repo.repo.config_snapshot().integer("dits.mount.cacheSize") {
        None | Some(0) => Ok(None),
        Some(v) if v > 0 => Ok(Some(v as u64)),
        Some(v) => bail!(
            "dits.mount.cacheSize = {v}: must not be negative; hint: git config dits.mount.cacheSize 20g"
        ),
    }
}

#[cfg(target_os = "linux")]
fn serve(
    repo: &Repo,
    rev: &str,
    commit: gix::ObjectId,
    dir: &Path,
    origins: Vec<Arc<dyn ContentSource>>,
    quiet: bool,
) -> Result<ExitCode> {
    let snapshot = snapshot::Snapshot::open(&repo.repo, commit)?;
    let limit = cache_limit(repo)?;
    let mut options: StoreOptions = repo.settings()?.store;
    if let Some(limit) = limit {
        // Eviction drops whole packs: keep them a fraction of the bound.
        options.pack_size_limit = options.pack_size_limit.min((limit / 8).max(16 << 20));
    }
    let root = repo.store_root();
    let store = DiskStore::open(&root, options)
        .with_context(|| format!("opening the Dits store at {}", root.display()))?;
    let cache = disk_cache::DiskCache::open(store.clone(), limit);
    let content = content::Content::new(store, origins, cache, MEMORY_CACHE);
    let view = Arc::new(view::View::new(snapshot, Arc::clone(&content)));
    let owner = std::fs::metadata(repo.common_dir())
        .with_context(|| format!("{}", repo.common_dir().display()))?;
    let place = repo
        .work_tree()
        .map(Path::to_owned)
        .unwrap_or_else(|_| repo.common_dir().to_owned());
    let source = format!("dits:{}@{}", place.display(), &commit.to_hex_with_len(12));
    let session =
        fuse::mount(&view, owner.uid(), owner.gid(), dir, &source).with_context(|| {
            format!(
                "mounting at {}; hint: is fuse3 installed and /dev/fuse usable?",
                dir.display()
            )
        })?;
    // The background parent waits for this line.
    println!("mounted {rev} ({commit}) at {}", dir.display());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    if !quiet {
        eprintln!(
            "serving {}; Ctrl-C or `git dits unmount` to stop",
            dir.display()
        );
    }
    loop {
        if session.guard.is_finished() {
            break;
        }
        if dits_core::progress::interrupted() {
            session
                .umount_and_join()
                .with_context(|| format!("unmounting {}", dir.display()))?;
            tracing::info!("{}", summary(&content));
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ended = session.join();
    tracing::info!("{}", summary(&content));
    ended.with_context(|| format!("serving {}", dir.display()))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(target_os = "linux"))]
fn serve(
    _repo: &Repo,
    _rev: &str,
    _commit: gix::ObjectId,
    _dir: &Path,
    _origins: Vec<Arc<dyn ContentSource>>,
    _quiet: bool,
) -> Result<ExitCode> {
    bail!("git dits mount needs FUSE (Linux) here; the Windows backend (dokany) is not built yet, see docs/mount.md")
}

fn summary(content: &content::Content) -> String {
    use std::sync::atomic::Ordering;
    format!(
        "mount ended: fetched {} chunks, {} bytes",
        content.counters.chunks_fetched.load(Ordering::Relaxed),
        content.counters.bytes_fetched.load(Ordering::Relaxed)
    )
}

/// Runs the mount as a background process of its own (in its own process group, so a
/// terminal's Ctrl-C does not take it down) and returns once it is mounted, or with its
/// error.
fn spawn_background(
    repo: &Repo,
    rev: &str,
    commit: gix::ObjectId,
    dir: &Path,
    quiet: bool,
) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("locating git-dits")?;
    let log_path = std::env::var_os("DITS_LOG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.store_root().join("mount.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening the mount log {}", log_path.display()))?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "mount",
        "--foreground",
        "--quiet",
        "--rev",
        &commit.to_string(),
    ])
    .arg(dir)
    .env("DITS_LOG_FILE", &log_path)
    // Nobody is at a terminal to answer a prompt.
    .env("GIT_TERMINAL_PROMPT", "0")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(log)
    .process_group(0);
    if std::env::var_os("DITS_LOG").is_none() {
        cmd.env("DITS_LOG", "info");
    }
    let mut child = cmd.spawn().context("starting the mount process")?;
    let stdout = child.stdout.take().context("the mount process's stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
    if line.starts_with("mounted ") {
        if !quiet {
            eprintln!("mounted {rev} ({commit}) at {}", dir.display());
            eprintln!(
                "pid {}, log {}; `git dits unmount {}` to stop",
                child.id(),
                log_path.display(),
                dir.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let _ = child.kill();
    let status = child.wait().ok();
    let tail = std::fs::read_to_string(&log_path)
        .map(|t| {
            let lines: Vec<&str> = t.lines().collect();
            lines[lines.len().saturating_sub(5)..].join("\n")
        })
        .unwrap_or_default();
    bail!(
        "mounting {} at {} failed ({}); the mount log {} ends with:\n{tail}",
        rev,
        dir.display(),
        status.map_or("no answer".to_owned(), |s| s.to_string()),
        log_path.display()
    )
}
