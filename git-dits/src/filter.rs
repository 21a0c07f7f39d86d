//! The `dits-filter` program: git's long-running filter (`dits-filter process`) and the
//! one-shot `clean`/`smudge` fallbacks. It lives here because setting it up needs the
//! repository (gix); the protocol and the Dits handler live in the `dits-filter` crate.

#![deny(clippy::print_stdout)]

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use dits_filter::server::{self, Command, Handler, Request, Response};
use dits_filter::{DitsHandler, FilterConfig};

use crate::cmd::restage;
use crate::repo::Repo;

#[derive(Debug, Parser)]
#[command(
    name = "dits-filter",
    version,
    about = "Git filter for Dits-tracked files (run by git, configured by `git dits install`)",
    after_help = "stdout belongs to git's protocol; logs go to stderr (DITS_LOG=debug) or to DITS_LOG_FILE."
)]
struct Args {
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Long-running filter process (git's filter.<driver>.process, protocol v2). The default.
    Process,
    /// One-shot clean: content on stdin, pointer on stdout.
    Clean { path: Option<String> },
    /// One-shot smudge: pointer on stdin, content on stdout.
    Smudge { path: Option<String> },
}

pub fn main() -> ExitCode {
    let args = Args::parse();
    match run(args.mode.unwrap_or(Mode::Process)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Through tracing, so it also reaches DITS_LOG_FILE; on stderr it reads
            // "dits-filter: error: ...".
            tracing::error!("{}", crate::one_line(&e));
            ExitCode::from(1)
        }
    }
}

fn config(repo: &Repo, one_shot: bool) -> Result<FilterConfig> {
    let settings = repo.settings()?;
    Ok(FilterConfig {
        store_root: repo.store_root(),
        store_options: settings.store,
        params: repo.chunker_params(),
        // A one-shot smudge cannot write the file after git does, so it always streams.
        inline_limit: if one_shot {
            u64::MAX
        } else {
            settings.inline_limit
        },
        skip_smudge: settings.skip_smudge,
        mp4: settings.mp4,
        journal_dir: (!one_shot).then(|| repo.journal_dir()),
        sources: dits_filter::Sources(std::sync::Arc::new(repo.open_sources())),
        stat_records: Some(repo.stat_record_dir()),
        skip_download_errors: settings.skip_download_errors,
        fetch: repo.fetch_filter(),
    })
}

fn run(mode: Mode) -> Result<()> {
    let repo = Repo::discover()?;
    // Every repository that runs the filter gets the hooks (a clone after a global install
    // has none); a failure here must not stop the checkout, but is said.
    if let Err(e) = crate::cmd::install::ensure_hooks(&repo) {
        tracing::warn!("cannot put Dits's hooks into this repository: {e:#}");
    }
    match mode {
        Mode::Process => {
            let mut handler = DitsHandler::new(config(&repo, false)?)?;
            widen_pipes();
            let stdin = io::stdin().lock();
            let stdout = BufWriter::with_capacity(128 << 10, io::stdout().lock());
            let served = server::serve(stdin, stdout, &mut handler).context("filter protocol");
            if !handler.hydrated().is_empty() {
                restage(&repo, handler.hydrated());
            }
            served
        }
        Mode::Clean { path } => one_shot(&repo, Command::Clean, path),
        Mode::Smudge { path } => one_shot(&repo, Command::Smudge, path),
    }
}

fn one_shot(repo: &Repo, command: Command, path: Option<String>) -> Result<()> {
    let mut handler = DitsHandler::new(config(repo, true)?)?;
    let req = Request {
        command,
        pathname: path.unwrap_or_default().into_bytes(),
        blob: None,
        treeish: None,
        reference: None,
        can_delay: false,
    };
    let mut stdin = io::stdin().lock();
    let response = handler.handle(&req, &mut stdin);
    // Drain what the handler did not read, as git expects its write to complete.
    io::copy(&mut stdin, &mut io::sink())?;
    let response = response.map_err(|f| anyhow::anyhow!("{f}"))?;
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    match response {
        Response::Content(mut r) => {
            io::copy(&mut r, &mut out).context("writing to git")?;
        }
        Response::Delayed => anyhow::bail!("internal error: delayed answer in one-shot mode"),
    }
    out.flush()?;
    Ok(())
}

/// Git's pipes hold 64 KiB by default, so git and the filter hand every pkt-line over with a
/// wake-up each way. A 1 MiB pipe (the unprivileged limit) lets each side run for longer.
/// Best effort: a pipe that stays small still works, and stdin may not be a pipe at all.
#[allow(unsafe_code)]
fn widen_pipes() {
    for fd in [0, 1] {
        // SAFETY: fcntl on our own standard descriptors; it has no memory effects.
        unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20) };
    }
}
