//! `git dits checkout`: write the content of tracked files that are still pointers, and the
//! hook entry point that finishes files the filter deferred.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use bstr::ByteSlice;
use dits_core::hydrate::{hydrate_file, Hydrated};
use dits_core::progress::Progress;
use dits_core::transfer::ensure_local;
use dits_core::Pointer;
use dits_filter::{deferred, stat_record};

use crate::index_stat;
use crate::progress::Bar;
use crate::repo::Repo;
use crate::tracked;

pub fn run(paths: &[PathBuf], only_deferred: bool, quiet: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let work_tree = repo.work_tree()?.to_owned();
    let mut todo: Vec<(PathBuf, Pointer)> = Vec::new();
    let mut journals = Vec::new();
    if only_deferred {
        for (journal, items) in deferred::pending(&repo.journal_dir())? {
            journals.push(journal);
            todo.extend(items.into_iter().map(|(p, ptr)| (work_tree.join(p), ptr)));
        }
    } else {
        let cwd = std::env::current_dir()?;
        let wanted: Vec<PathBuf> = paths.iter().map(|p| cwd.join(p)).collect();
        for f in tracked::in_index(&repo)? {
            let abs = work_tree.join(f.path.to_path_lossy());
            if wanted.is_empty() || wanted.iter().any(|w| abs.starts_with(w)) {
                todo.push((abs, f.pointer));
            }
        }
    }
    if todo.is_empty() && journals.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let store = repo.open_store()?;
    let sources = repo.open_sources();
    let bar = Bar::bytes(quiet, "checkout");
    bar.set_total(todo.iter().map(|(_, p)| p.size).sum());
    let (mut written, mut failed) = (Vec::new(), 0);
    for (path, pointer) in &todo {
        if bar.interrupted() {
            anyhow::bail!("interrupted");
        }
        if pointer.size > 0 {
            if let Err(e) = ensure_local(&store, &sources, &pointer.id) {
                failed += 1;
                eprintln!("error: {}: {e}", path.display());
                continue;
            }
        }
        match hydrate_file(&store, path, pointer) {
            Ok(Hydrated::Written) => {
                let rel = path.strip_prefix(&work_tree).unwrap_or(path);
                let _ = stat_record::record(&repo.stat_record_dir(), rel, path, pointer);
                written.push((path.clone(), *pointer))
            }
            Ok(Hydrated::Skipped) => {}
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
        bar.inc(pointer.size);
    }
    bar.finish();
    if failed == 0 {
        for j in journals {
            let _ = std::fs::remove_file(j);
        }
    }
    if !written.is_empty() {
        restage(&repo, &written);
        if !quiet {
            eprintln!("Wrote {} file(s)", written.len());
        }
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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
    use std::io::Write;
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
    let left = match index_stat::record(repo, &files) {
        Ok(left) => left,
        Err(e) => {
            tracing::debug!("index not updated in place, re-staging instead: {e:#}");
            files
        }
    };
    if left.is_empty() {
        return;
    }
    let Ok(index) = repo.repo.open_index() else {
        return;
    };
    let mut paths = Vec::new();
    for (rel, pointer) in &left {
        let Some(rel_bytes) = gix::path::os_str_into_bstr(rel.as_os_str()).ok() else {
            continue;
        };
        let staged = index.entry_by_path(rel_bytes).map(|e| e.id);
        let ours = gix::objs::compute_hash(
            repo.repo.object_hash(),
            gix::objs::Kind::Blob,
            &pointer.to_bytes(),
        )
        .ok();
        if staged.is_some() && staged == ours {
            paths.push(rel.clone());
        }
    }
    if paths.is_empty() {
        return;
    }
    let child = std::process::Command::new("git")
        .args(["update-index", "-q", "-z", "--stdin"])
        .current_dir(work_tree)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else { return };
    if let Some(mut stdin) = child.stdin.take() {
        for rel in &paths {
            let _ = stdin.write_all(rel.as_os_str().as_bytes());
            let _ = stdin.write_all(b"\0");
        }
    }
    match child.wait_with_output() {
        Ok(out) if !out.status.success() => tracing::warn!(
            "could not update the index after writing large files: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        _ => {}
    }
}
