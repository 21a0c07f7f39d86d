//! `git-remote-dits`, the remote helper git runs for `dits://` URLs. The protocol loop lives
//! in `git_remote_dits::helper`; this side knows the repository: before a push reaches the
//! server it uploads the content of every tracked file the new commits reference.

#![deny(clippy::print_stdout)]

use std::io::{self, Write};
use std::process::ExitCode;

use dits_core::FileId;
use git_remote_dits::helper::{PushPreparer, RefUpdate, Verbosity};
use git_remote_dits::Session;

use crate::progress::Bar;
use crate::reachable;
use crate::repo::Repo;

const USAGE: &str = "\
usage: git-remote-dits <remote> [<url>]

Git runs this for dits:// remotes (gitremote-helpers(7)); you do not run it yourself.
  git remote add origin dits://host[:port]/team/film
  git push origin main      # uploads tracked content first, then the commits
  git clone dits://host[:port]/team/film
See `git dits --help` and docs/protocol.md.
";

/// Entry point of the `git-remote-dits` binary.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        // Run by hand: the usage is the answer, on stdout as for any --help.
        let _ = io::stdout().write_all(USAGE.as_bytes());
        return if args.is_empty() {
            ExitCode::from(129)
        } else {
            ExitCode::SUCCESS
        };
    }
    // `<remote> <url>`; a URL given on the command line is passed as both.
    let url = args.get(1).cloned().unwrap_or_else(|| args[0].clone());
    let mut uploader = Uploader;
    // The same buffered reader serves the helper commands and then the tunnel, so no byte
    // git sent can be stranded in a buffer the tunnel does not see.
    let stdin = io::BufReader::with_capacity(256 << 10, io::stdin());
    let stdout = io::stdout();
    match git_remote_dits::helper::run(&url, stdin, stdout, &mut uploader) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fatal: {e}");
            ExitCode::from(128)
        }
    }
}

struct Uploader;

impl PushPreparer for Uploader {
    fn before_push(
        &mut self,
        session: &Session,
        updates: &[RefUpdate],
        advertised: &[String],
        talk: Verbosity,
    ) -> Result<(), String> {
        let repo = Repo::discover().map_err(|e| crate::one_line(&e))?;
        let include: Vec<String> = updates.iter().map(|u| u.new.clone()).collect();
        // Commits the server's refs point at are complete there (its hook saw to that).
        // Its own advertisement is the authority, not our remote-tracking refs, which may
        // be stale or belong to another server that once had this URL.
        let exclude: Vec<String> = advertised.to_vec();
        upload(&repo, session, &include, &exclude, talk).map_err(|e| crate::one_line(&e))
    }
}

/// Uploads the content of pointers reachable from `include` but not `exclude`.
pub fn upload(
    repo: &Repo,
    session: &Session,
    include: &[String],
    exclude: &[String],
    talk: Verbosity,
) -> anyhow::Result<()> {
    let found = reachable::pointers(include, exclude)?;
    upload_found(repo, session, &found, talk)
}

/// Uploads the content of `found` the server lacks: a bar on a terminal, and one summary
/// line (also in CI logs) unless quiet.
pub fn upload_found(
    repo: &Repo,
    session: &Session,
    found: &[reachable::Found],
    talk: Verbosity,
) -> anyhow::Result<()> {
    let files: Vec<(FileId, String)> = found
        .iter()
        .filter(|f| f.pointer.size > 0)
        .map(|f| (f.pointer.id, f.path.clone()))
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    let store = repo.open_store()?;
    let bar = Bar::bytes(!talk.progress, "dits: upload");
    let stats = session.push_files(&store, &files, &bar).map_err(|e| match e {
        e @ git_remote_dits::NetError::NotLocal { .. } => anyhow::anyhow!(
            "{e}; hint: content cloned without data can be fetched with `git dits pull`, then push again"
        ),
        e => anyhow::Error::new(e),
    })?;
    bar.finish();
    if !talk.quiet && stats.files_sent > 0 {
        let had = stats.files - stats.files_sent;
        eprintln!(
            "dits: sent the content of {} file(s) to {}: {} in {} chunk(s){}",
            stats.files_sent,
            session.url(),
            crate::cmd::human(stats.bytes_sent),
            stats.chunks_sent,
            if had > 0 {
                format!(" (it had the other {had})")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
