//! Finding the files Dits tracks: blobs in the index or in a tree that are Dits pointers.

use anyhow::{Context, Result};
use bstr::BString;
use dits_core::pointer::{Pointer, MAX_LEN};
use gix::ObjectId;

use crate::repo::Repo;

#[derive(Debug, Clone)]
pub struct TrackedFile {
    pub path: BString,
    pub blob: ObjectId,
    pub pointer: Pointer,
    /// Outside a sparse checkout (the index's skip-worktree bit): not in the work tree, so
    /// nothing writes it there.
    pub sparse: bool,
}

/// The pointer a blob holds, if it is one. Large blobs are ruled out from their header alone,
/// so this never reads real media out of Git's object store.
pub fn blob_pointer(repo: &gix::Repository, id: ObjectId) -> Result<Option<Pointer>> {
    let header = repo
        .find_header(id)
        .with_context(|| format!("reading object {id}"))?;
    if header.size() > MAX_LEN as u64 {
        return Ok(None);
    }
    let obj = repo
        .find_object(id)
        .with_context(|| format!("reading blob {id}"))?;
    Ok(Pointer::parse(&obj.data).ok())
}

/// Dits files staged in the index.
pub fn in_index(repo: &Repo) -> Result<Vec<TrackedFile>> {
    let index = repo.repo.index_or_empty().context("reading the index")?;
    let mut out = Vec::new();
    for entry in index.entries() {
        let is_file = entry.mode == gix::index::entry::Mode::FILE
            || entry.mode == gix::index::entry::Mode::FILE_EXECUTABLE;
        // During a conflict only "ours" stands for the path (like `git diff` does).
        let stage = entry.stage();
        if !is_file
            || matches!(
                stage,
                gix::index::entry::Stage::Base | gix::index::entry::Stage::Theirs
            )
        {
            continue;
        }
        if let Some(pointer) = blob_pointer(&repo.repo, entry.id)? {
            out.push(TrackedFile {
                path: entry.path(&index).to_owned(),
                blob: entry.id,
                pointer,
                sparse: entry
                    .flags
                    .contains(gix::index::entry::Flags::SKIP_WORKTREE),
            });
        }
    }
    Ok(out)
}

/// Dits files in the tree of `rev` (a commit, tag or tree).
pub fn in_rev(repo: &Repo, rev: &str) -> Result<Vec<TrackedFile>> {
    let tree = repo
        .repo
        .rev_parse_single(rev)
        .with_context(|| format!("{rev}: unknown revision"))?
        .object()?
        .peel_to_tree()
        .with_context(|| format!("{rev}: does not name a tree"))?;
    in_tree(repo, tree.id)
}

pub fn in_tree(repo: &Repo, tree: ObjectId) -> Result<Vec<TrackedFile>> {
    let tree = repo.repo.find_tree(tree)?;
    let mut recorder = gix::traverse::tree::Recorder::default();
    tree.traverse()
        .breadthfirst(&mut recorder)
        .context("walking the tree")?;
    let mut out = Vec::new();
    for entry in recorder.records {
        if !entry.mode.is_blob() || entry.mode.is_link() {
            continue;
        }
        if let Some(pointer) = blob_pointer(&repo.repo, entry.oid)? {
            out.push(TrackedFile {
                path: entry.filepath,
                blob: entry.oid,
                pointer,
                sparse: false,
            });
        }
    }
    Ok(out)
}

/// The Dits files of the work tree (staged in the index, not outside a sparse checkout)
/// that `pathspecs` match, as git matches them (globs, `:(glob)`, directories; relative to
/// the current directory); all of them without pathspecs. A pathspec that matches no file at
/// all, or pathspecs that match no Dits file, are an error that says so.
pub fn matching(repo: &Repo, pathspecs: &[String]) -> Result<Vec<TrackedFile>> {
    let all: Vec<TrackedFile> = in_index(repo)?.into_iter().filter(|f| !f.sparse).collect();
    if pathspecs.is_empty() {
        return Ok(all);
    }
    let mut args: Vec<&str> = vec!["ls-files", "-z", "--full-name", "--error-unmatch", "--"];
    args.extend(pathspecs.iter().map(String::as_str));
    let listed = crate::git::git(&args).output().map_err(|e| {
        anyhow::anyhow!(
            "{e:#}\nhint: pathspecs are matched like git's, from the current directory; `git dits ls-files` lists the files Dits tracks"
        )
    })?;
    let wanted: std::collections::HashSet<&[u8]> = listed
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .collect();
    let found: Vec<TrackedFile> = all
        .into_iter()
        .filter(|f| wanted.contains(f.path.as_slice()))
        .collect();
    anyhow::ensure!(
        !found.is_empty(),
        "{} matched {} file(s), none of them tracked by Dits; hint: `git dits ls-files` lists the files Dits tracks",
        pathspecs.join(" "),
        wanted.len()
    );
    Ok(found)
}

/// The files of `files` a partial fetch wants (all if `filter` wants everything); says how
/// many it left out unless `quiet`.
pub fn wanted(
    files: Vec<TrackedFile>,
    filter: &dits_core::PathFilter,
    quiet: bool,
) -> Vec<TrackedFile> {
    if filter.is_everything() {
        return files;
    }
    let before = files.len();
    let kept: Vec<TrackedFile> = files
        .into_iter()
        .filter(|f| filter.wants(&f.path))
        .collect();
    if !quiet && kept.len() < before {
        eprintln!(
            "dits: {} file(s) left out by {}; hint: name them (`git dits pull PATH`) or pass --include",
            before - kept.len(),
            filter.describe()
        );
    }
    kept
}
