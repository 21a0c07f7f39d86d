//! `git dits checkout`: write the content of tracked files that are still pointers, and the
//! hook entry point that finishes files the filter deferred.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bstr::ByteSlice;
use dits_core::progress::Progress;
use dits_core::transfer::{fetch_all, FetchedAll};
use dits_core::worktree::stat_record;
use dits_core::worktree::{hydrate_file, read_pointer_file, Hydrated};
use dits_core::{FileId, Pointer};
use dits_filter::deferred;

use crate::index_stat;
use crate::progress::Bar;
use crate::repo::Repo;
use crate::tracked;

/// `patterns`: a partial fetch's filter for a run without pathspecs (`None`: every file).
pub fn run(
    pathspecs: &[String],
    only_deferred: bool,
    patterns: Option<&crate::cli::FetchPatterns>,
    quiet: bool,
) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let work_tree = repo.work_tree()?.to_owned();
    let mut todo: Vec<PathBuf> = Vec::new();
    let mut journals = Vec::new();
    if only_deferred {
        for (journal, items) in deferred::pending(&repo.journal_dir())? {
            journals.push(journal);
            todo.extend(items.into_iter().map(|(p, _)| work_tree.join(p)));
        }
    } else {
        crate::setup::require_filter(&repo)?;
        crate::setup::warn(&repo);
        let mut files = tracked::matching(&repo, pathspecs)?;
        if let Some(patterns) = patterns.filter(|p| pathspecs.is_empty() || p.given()) {
            files = tracked::wanted(files, &patterns.resolve(&repo), quiet);
        }
        for f in files {
            todo.push(work_tree.join(f.path.to_path_lossy()));
        }
    }
    let code = write(&repo, &todo, quiet)?;
    if code == ExitCode::SUCCESS {
        for j in journals {
            let _ = std::fs::remove_file(j);
        }
    }
    Ok(code)
}

/// Writes the content of those of `paths` that are still pointers (fetching what is missing,
/// all files in one request per source), then makes the index learn the stat data of every
/// file Dits wrote that it does not know yet. One summary for the files that failed.
pub fn write(repo: &Repo, paths: &[PathBuf], quiet: bool) -> Result<ExitCode> {
    let work_tree = repo.work_tree()?.to_owned();
    let mut todo: Vec<(PathBuf, Pointer)> = Vec::new();
    for path in paths {
        if let Some(pointer) =
            read_pointer_file(path).with_context(|| format!("reading {}", path.display()))?
        {
            todo.push((path.clone(), pointer));
        }
    }
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut written = Vec::new();
    if !todo.is_empty() {
        let store = repo.open_store()?;
        let pointers: Vec<Pointer> = todo.iter().map(|(_, p)| *p).collect();
        let sources = repo.open_sources();
        let fetch_bar = Bar::bytes(quiet, "dits: fetch");
        let fetched = fetch_all(&store, &sources, &pointers, &fetch_bar);
        fetch_bar.finish();
        let unavailable: std::collections::HashMap<FileId, Vec<String>> = fetched
            .missing
            .into_iter()
            .map(|(p, why)| (p.id, why))
            .collect();
        let bar = Bar::bytes(quiet, "dits: checkout");
        bar.set_total(todo.iter().map(|(_, p)| p.size).sum());
        for (path, pointer) in &todo {
            if bar.interrupted() {
                anyhow::bail!("interrupted");
            }
            let rel = path.strip_prefix(&work_tree).unwrap_or(path);
            let shown = rel.display().to_string();
            if let Some(why) = unavailable.get(&pointer.id) {
                failed.push((shown, FetchedAll::reason(pointer, why)));
                bar.inc(pointer.size);
                continue;
            }
            match hydrate_file(&store, path, pointer) {
                Ok(Hydrated::Written) => {
                    let _ = stat_record::record(&repo.stat_record_dir(), rel, path, pointer);
                    written.push((path.clone(), *pointer))
                }
                Ok(Hydrated::Skipped) => {}
                Err(e) => failed.push((shown, e.to_string())),
            }
            bar.inc(pointer.size);
        }
        bar.finish();
    }
    settle_pending(repo, &written);
    if !quiet && !written.is_empty() {
        eprintln!("dits: wrote {} file(s)", written.len());
    }
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for (path, why) in failed.iter().take(20) {
        eprintln!("error: {path}: {why}");
    }
    if failed.len() > 20 {
        eprintln!("error: ... and {} more", failed.len() - 20);
    }
    eprintln!(
        "dits: {} file(s) left as pointers; hint: `git dits status` shows what the Dits server has; content that was never pushed must come from the clone that added it (`git dits push` there)",
        failed.len()
    );
    Ok(ExitCode::from(1))
}

/// Makes the index learn the stat data of `written` and of the files Dits wrote before that
/// it does not know yet: written by the filter of a client that writes its index only after
/// its filters exit (gitoxide), or by a hook whose command wrote its index again afterwards.
/// Returns how many files are still waiting (not in the index yet).
pub fn settle_pending(repo: &Repo, written: &[(PathBuf, Pointer)]) -> usize {
    let Ok(work_tree) = repo.work_tree() else {
        return 0;
    };
    let records = repo.stat_record_dir();
    let mut to_index = written.to_vec();
    for (rel, pointer) in stat_record::pending(&records, work_tree) {
        let abs = work_tree.join(&rel);
        if !to_index.iter().any(|(p, _)| *p == abs) {
            to_index.push((abs, pointer));
        }
    }
    if to_index.is_empty() {
        return 0;
    }
    restage(repo, &to_index);
    stat_record::pending(&records, work_tree).len()
}

/// Makes the index record the real size and times of files we rewrote.
///
/// Git's index still holds the stat data of the pointer git wrote, and git treats a differing
/// non-zero size as "modified" without asking the filter. The stat data is written into the
/// index directly where it can be (see `index_stat`); for the rest, `update-index --refresh` is
/// not enough, so `update-index -z --stdin` with the paths re-cleans them (giving the same
/// blob) and stores the new stat data. Only paths whose staged blob *is* the pointer we wrote
/// are touched: after `git stash pop` or `git restore --worktree` the index holds something
/// else, and re-staging would stage the user's change. Best effort: on failure `git status` is
/// still right, slower.
pub fn restage(repo: &Repo, files: &[(PathBuf, Pointer)]) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(work_tree) = repo.work_tree() else {
        return;
    };
    let files: Vec<(PathBuf, Pointer)> = files
        .iter()
        .map(|(path, pointer)| {
            let rel = path.strip_prefix(work_tree).unwrap_or(path);
            (rel.to_owned(), *pointer)
        })
        .collect();
    let records = repo.stat_record_dir();
    let left = match index_stat::record(repo, &files) {
        Ok(left) => left,
        Err(e) => {
            tracing::debug!("index not updated in place, re-staging instead: {e:#}");
            files.clone()
        }
    };
    for (rel, _) in files.iter().filter(|f| !left.contains(f)) {
        stat_record::settle(&records, rel);
    }
    if left.is_empty() {
        return;
    }
    // No index yet (a client that writes it after its filters exit): the files stay pending
    // for the next Dits command.
    let Ok(index) = repo.repo.open_index() else {
        return;
    };
    let mut paths = Vec::new();
    for (rel, pointer) in &left {
        let Some(rel_bytes) = gix::path::os_str_into_bstr(rel.as_os_str()).ok() else {
            continue;
        };
        let ours = gix::objs::compute_hash(
            repo.repo.object_hash(),
            gix::objs::Kind::Blob,
            &pointer.to_bytes(),
        )
        .ok();
        match index.entry_by_path(rel_bytes).map(|e| e.id) {
            // Not in the index (yet): pending.
            None => {}
            Some(staged) if Some(staged) == ours => paths.push(rel.clone()),
            // The index stages something else (the user's change): nothing to record.
            Some(_) => stat_record::settle(&records, rel),
        }
    }
    if paths.is_empty() {
        return;
    }
    let mut input = Vec::new();
    for rel in &paths {
        input.extend_from_slice(rel.as_os_str().as_bytes());
        input.push(0);
    }
    let updated = crate::git::git(&["update-index", "-q", "-z", "--stdin"])
        .current_dir(work_tree)
        .input(input)
        .output();
    match updated {
        Ok(_) => {
            for rel in &paths {
                stat_record::settle(&records, rel);
            }
        }
        Err(e) => tracing::warn!(
            "could not update the index after writing large files: {e:#}; hint: `git dits checkout` tries again"
        ),
    }
}
