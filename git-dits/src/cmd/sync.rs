//! `git dits push`, `fetch` and `pull`: moving content between this repository and its Dits
//! server explicitly (git's own push and clone do it implicitly through the remote helper,
//! the pre-push hook and the filter).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bstr::ByteSlice;
use dits_core::FileId;
use git_remote_dits::Session;

use super::human;
use crate::progress::Bar;
use crate::remote::{server_for, DitsServer};
use crate::repo::Repo;
use crate::tracked;

fn server(repo: &Repo, remote: Option<&str>, push: bool) -> Result<DitsServer> {
    server_for(repo, remote, push)?.context(
        "no Dits server is configured; hint: add a dits:// remote, or set `git config dits.url dits://host[:port]/repo` (or commit it in .ditsconfig)",
    )
}

fn connect(server: &DitsServer) -> Result<Session> {
    Session::connect(&server.url)
        .with_context(|| format!("connecting to {} ({})", server.url, server.origin))
}

pub fn push(remote: Option<&str>, revs: &[String], quiet: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let server = server(&repo, remote, true)?;
    let include: Vec<String> = if revs.is_empty() {
        vec!["--branches".into(), "--tags".into(), "HEAD".into()]
    } else {
        revs.to_vec()
    };
    let session = connect(&server)?;
    crate::helper::upload(&repo, &session, &include, &[], !quiet)?;
    if !quiet {
        eprintln!(
            "dits: {} has the content of every tracked file in {}",
            server.url,
            include.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn fetch(remote: Option<&str>, revs: &[String], quiet: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let server = server(&repo, remote, false)?;
    let revs: Vec<String> = if revs.is_empty() {
        vec!["HEAD".into()]
    } else {
        revs.to_vec()
    };
    // The files of each revision's tree (what a checkout of it needs), not its history.
    let mut ids: Vec<FileId> = Vec::new();
    for rev in &revs {
        ids.extend(
            tracked::in_rev(&repo, rev)?
                .into_iter()
                .filter(|f| f.pointer.size > 0)
                .map(|f| f.pointer.id),
        );
    }
    download(&repo, &server, &ids, quiet)?;
    Ok(ExitCode::SUCCESS)
}

fn download(repo: &Repo, server: &DitsServer, ids: &[FileId], quiet: bool) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let store = repo.open_store()?;
    let session = connect(server)?;
    let bar = Bar::bytes(quiet, "dits: fetch");
    let stats = session.fetch_files(&store, ids, &bar)?;
    bar.finish();
    if !quiet {
        eprintln!(
            "dits: fetched {} of {} file(s) from {}: {} in {} chunk(s)",
            stats.files_fetched,
            stats.files,
            server.url,
            human(stats.bytes_fetched),
            stats.chunks_fetched
        );
    }
    Ok(())
}

/// Fetches the content of tracked files in the work tree (all, or under PATHs), then writes
/// the files that are still pointers.
pub fn pull(remote: Option<&str>, paths: &[PathBuf], quiet: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let server = server(&repo, remote, false)?;
    let work_tree = repo.work_tree()?.to_owned();
    let cwd = std::env::current_dir()?;
    let wanted: Vec<PathBuf> = paths.iter().map(|p| cwd.join(p)).collect();
    let ids: Vec<FileId> = tracked::in_index(&repo)?
        .into_iter()
        .filter(|f| {
            let abs = work_tree.join(f.path.to_path_lossy());
            wanted.is_empty() || wanted.iter().any(|w| abs.starts_with(w))
        })
        .filter(|f| f.pointer.size > 0)
        .map(|f| f.pointer.id)
        .collect();
    download(&repo, &server, &ids, quiet)?;
    super::checkout::run(paths, false, quiet)
}
