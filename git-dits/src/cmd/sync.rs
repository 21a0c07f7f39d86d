//! `git dits push`, `fetch` and `pull`: moving content between this repository and its Dits
//! server explicitly (git's own push and clone do it implicitly through the remote helper,
//! the pre-push hook and the filter).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bstr::ByteSlice;
use dits_core::transfer::{fetch as fetch_into, FetchOptions};
use dits_core::Pointer;
use git_remote_dits::client::RemoteSource;

use super::human;
use crate::cli::FetchPatterns;
use crate::progress::Bar;
use crate::remote::{connect, server_for, DitsServer};
use crate::repo::Repo;
use crate::tracked;

fn server(repo: &Repo, remote: Option<&str>, push: bool) -> Result<DitsServer> {
    server_for(repo, remote, push)?.context(
        "no Dits server is configured; hint: add a dits:// remote, or set `git config dits.url dits://host[:port]/repo` (or commit it in .ditsconfig)",
    )
}

pub fn push(remote: Option<&str>, revs: &[String], quiet: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let server = server(&repo, remote, true)?;
    let include: Vec<String> = if revs.is_empty() {
        vec!["--branches".into(), "--tags".into(), "HEAD".into()]
    } else {
        revs.to_vec()
    };
    let session = connect(&repo, &server, !quiet, None)?;
    let talk = git_remote_dits::helper::Verbosity {
        progress: !quiet,
        quiet,
    };
    crate::helper::upload(&repo, &session, &include, &[], talk)?;
    // The next `git push` through the pre-push hook need not look behind these again.
    let mut rev_parse = vec!["rev-parse".to_owned()];
    rev_parse.extend(include.iter().cloned());
    let tips: Vec<String> = crate::git::git(&rev_parse)
        .text()?
        .lines()
        .map(str::to_owned)
        .collect();
    crate::uploaded::Uploaded::for_server(&repo, &server.url).record(&tips)?;
    if !quiet {
        eprintln!(
            "dits: {} has the content of every tracked file in {}",
            server.url,
            include.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn fetch(
    remote: Option<&str>,
    revs: &[String],
    patterns: &FetchPatterns,
    quiet: bool,
) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let server = server(&repo, remote, false)?;
    let revs: Vec<String> = if revs.is_empty() {
        vec!["HEAD".into()]
    } else {
        revs.to_vec()
    };
    // The files of each revision's tree (what a checkout of it needs), not its history.
    let filter = patterns.resolve(&repo);
    let mut wanted: Vec<(String, Pointer)> = Vec::new();
    for rev in &revs {
        wanted.extend(
            tracked::wanted(tracked::in_rev(&repo, rev)?, &filter, quiet)
                .into_iter()
                .filter(|f| f.pointer.size > 0)
                .map(|f| (super::quote_path(f.path.as_ref()), f.pointer)),
        );
    }
    download(&repo, &server, &wanted, quiet)
}

/// Fetches `wanted` from `server`; the exit code says whether every file came.
fn download(
    repo: &Repo,
    server: &DitsServer,
    wanted: &[(String, Pointer)],
    quiet: bool,
) -> Result<ExitCode> {
    if wanted.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let store = repo.open_store()?;
    let mut settings = repo.net_settings()?;
    settings.verbose = !quiet;
    let source = RemoteSource::new(server.url.clone(), settings);
    let bar = Bar::bytes(quiet, "dits: fetch");
    let pointers: Vec<Pointer> = wanted.iter().map(|(_, p)| *p).collect();
    let got = fetch_into(
        &store,
        &source,
        &pointers,
        FetchOptions {
            progress: Some(&bar),
            ..FetchOptions::default()
        },
    )
    .with_context(|| format!("fetching from {} ({})", server.url, server.origin))?;
    bar.finish();
    if !quiet {
        eprintln!(
            "dits: fetched {} of {} file(s) from {}: {} in {} chunk(s)",
            got.files_fetched - got.failed.len(),
            got.files,
            server.url,
            human(got.bytes_fetched),
            got.chunks_fetched
        );
    }
    if got.failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for (pointer, why) in &got.failed {
        let path = wanted
            .iter()
            .find(|(_, p)| p.id == pointer.id)
            .map_or("?", |(path, _)| path.as_str());
        eprintln!("error: {path} (file {}): {why}", pointer.id);
    }
    eprintln!(
        "dits: {} file(s) could not be fetched; hint: they may never have been pushed: `git dits push` from a clone that has them",
        got.failed.len()
    );
    Ok(ExitCode::from(1))
}

/// Fetches the content of tracked files in the work tree (all, or those the pathspecs
/// match), then writes the files that are still pointers.
pub fn pull(
    remote: Option<&str>,
    pathspecs: &[String],
    patterns: &FetchPatterns,
    quiet: bool,
) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    crate::setup::require_filter(&repo)?;
    crate::setup::warn(&repo);
    let server = server(&repo, remote, false)?;
    let mut files = tracked::matching(&repo, pathspecs)?;
    // Named paths are fetched whatever the configured filter says: the user asked for them.
    if pathspecs.is_empty() || patterns.given() {
        files = tracked::wanted(files, &patterns.resolve(&repo), quiet);
    }
    if !quiet && !pathspecs.is_empty() {
        eprintln!(
            "dits: {} tracked file(s) match {}",
            files.len(),
            pathspecs.join(" ")
        );
    }
    let wanted: Vec<(String, Pointer)> = files
        .iter()
        .filter(|f| f.pointer.size > 0)
        .map(|f| (super::quote_path(f.path.as_ref()), f.pointer))
        .collect();
    let fetched = download(&repo, &server, &wanted, quiet)?;
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|f| repo.work_tree().map(|w| w.join(f.path.to_path_lossy())))
        .collect::<Result<_>>()?;
    let written = super::checkout::write(&repo, &paths, quiet)?;
    Ok(if fetched != ExitCode::SUCCESS {
        fetched
    } else {
        written
    })
}
