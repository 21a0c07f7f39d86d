//! `git dits fsck [REV...]`: is every chunk of every reachable Dits file present and intact?

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;

use anyhow::{Context, Result};
use bstr::{BString, ByteSlice};
use dits_core::chunker::ChunkerParams;
use dits_core::hydrate::read_pointer_file;
use dits_core::ingest_media::ingest_any;
use dits_core::progress::{Progress, Silent};
use dits_core::store::{ChunkSource, DiskStore, StoreError};
use dits_core::{ChunkId, FileId, Pointer};

use crate::progress::Bar;
use crate::repo::Repo;
use crate::tracked;

/// Where a file id was seen first, to name it in reports.
struct Seen {
    pointer: Pointer,
    path: BString,
    at: String,
}

fn collect(repo: &Repo, revs: &[String]) -> Result<HashMap<FileId, Seen>> {
    let mut files: HashMap<FileId, Seen> = HashMap::new();
    let mut add = |f: tracked::TrackedFile, at: &str| {
        files.entry(f.pointer.id).or_insert(Seen {
            pointer: f.pointer,
            path: f.path,
            at: at.to_owned(),
        });
    };
    let mut tips = Vec::new();
    if revs.is_empty() {
        for f in tracked::in_index(repo)? {
            add(f, "index");
        }
        if let Ok(head) = repo.repo.head_id() {
            tips.push((head.detach(), "HEAD".to_owned()));
        }
        for r in repo.repo.references()?.all()?.flatten() {
            let name = r.name().as_bstr().to_string();
            if let Ok(id) = r.into_fully_peeled_id() {
                tips.push((id.detach(), name));
            }
        }
    } else {
        for rev in revs {
            let id = repo
                .repo
                .rev_parse_single(rev.as_str())
                .with_context(|| format!("{rev}: unknown revision"))?;
            tips.push((id.detach(), rev.clone()));
        }
    }
    let mut seen_trees = HashSet::new();
    for (tip, name) in tips {
        let Ok(obj) = repo.repo.find_object(tip) else {
            continue;
        };
        // Annotated tags stand for their commit's whole history, like branches.
        let tip = match obj.peel_to_kind(gix::object::Kind::Commit) {
            Ok(commit) => commit.id,
            Err(_) => tip,
        };
        let Ok(obj) = repo.repo.find_object(tip) else {
            continue;
        };
        if obj.kind != gix::object::Kind::Commit {
            if let Ok(tree) = obj.peel_to_tree() {
                for f in tracked::in_tree(repo, tree.id)? {
                    add(f, &name);
                }
            }
            continue;
        }
        for info in repo.repo.rev_walk([tip]).all()? {
            let info = info?;
            let commit = info.object()?;
            let tree = commit.tree_id()?.detach();
            if !seen_trees.insert(tree) {
                continue;
            }
            let at = format!("{} ({name})", info.id.to_hex_with_len(10));
            for f in tracked::in_tree(repo, tree)? {
                add(f, &at);
            }
        }
    }
    Ok(files)
}

pub fn run(revs: &[String], repair: bool, quiet: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let store = repo.open_store()?;
    let mut problems = 0usize;
    for d in store.damaged_indexes() {
        eprintln!("damaged index: {d}");
        problems += 1;
    }
    let files = collect(&repo, revs)?;
    let bar = Bar::bytes(quiet, "verifying");
    bar.set_total(files.values().map(|s| s.pointer.size).sum());
    // Per chunk: Some(true) intact, Some(false) damaged, None not in the store.
    let mut verified: HashMap<ChunkId, Option<bool>> = HashMap::new();
    let mut broken: Vec<&Seen> = Vec::new();
    // Content that is simply not here (a skip-smudge clone, `git dits prune`): fine if the
    // Dits server has it, checked below.
    let mut not_local: Vec<NotLocal> = Vec::new();
    let mut ids: Vec<&FileId> = files.keys().collect();
    ids.sort();
    for id in ids {
        let seen = &files[id];
        if seen.pointer.size == 0 {
            continue;
        }
        let ok = match store.read_manifest(id) {
            Err(e @ StoreError::ManifestMissing { .. }) => {
                not_local.push(NotLocal {
                    seen,
                    why: e.to_string(),
                    chunks: None,
                });
                continue;
            }
            Err(e) => {
                eprintln!("{} (file {id}, at {}): {e}", seen.path, seen.at);
                false
            }
            Ok(m) if m.size != seen.pointer.size => {
                eprintln!(
                    "{} (file {id}, at {}): manifest says {} bytes, pointer says {}",
                    seen.path, seen.at, m.size, seen.pointer.size
                );
                false
            }
            Ok(m) => {
                let (mut damaged, mut missing, mut missing_ids) = (false, None, Vec::new());
                for c in &m.chunks {
                    if bar.interrupted() {
                        anyhow::bail!("interrupted");
                    }
                    let state =
                        *verified
                            .entry(c.id)
                            .or_insert_with(|| match store.read_chunk(&c.id) {
                                Ok(_) => Some(true),
                                Err(StoreError::ChunkMissing { .. }) => None,
                                Err(e) => {
                                    eprintln!("{} (file {id}, at {}): {e}", seen.path, seen.at);
                                    Some(false)
                                }
                            });
                    match state {
                        Some(true) => {}
                        Some(false) => damaged = true,
                        None => {
                            missing
                                .get_or_insert(StoreError::ChunkMissing { id: c.id }.to_string());
                            missing_ids.push(c.id);
                        }
                    }
                    bar.inc(u64::from(c.len));
                }
                match missing {
                    Some(why) if !damaged => {
                        not_local.push(NotLocal {
                            seen,
                            why,
                            chunks: Some(missing_ids),
                        });
                        continue;
                    }
                    _ => !damaged && missing.is_none(),
                }
            }
        };
        if !ok {
            problems += 1;
            broken.push(seen);
        }
    }
    if !not_local.is_empty() {
        for (seen, why) in remote_lacks(&repo, &not_local, quiet) {
            eprintln!(
                "{} (file {}, at {}): {why}",
                seen.path, seen.pointer.id, seen.at
            );
            problems += 1;
            broken.push(seen);
        }
    }
    bar.finish();
    if repair {
        problems = self_repair(&repo, &store, &broken, problems)?;
    }
    if problems > 0 {
        eprintln!("{problems} problem(s) found");
        if !repair {
            eprintln!("hint: `git dits fsck --repair` drops damaged data and re-stores intact work-tree copies");
        }
        return Ok(ExitCode::from(1));
    }
    if !quiet {
        eprintln!(
            "{} file(s), {} chunk(s) verified; no problems",
            files.len(),
            verified.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Forgets damaged data, then re-stores the content of broken files from intact work-tree
/// copies (content whose BLAKE3 matches the pointer). Returns the problems left.
fn self_repair(repo: &Repo, store: &DiskStore, broken: &[&Seen], problems: usize) -> Result<usize> {
    let rebuilt = store.rebuild_damaged_indexes()?;
    let dropped = store.drop_damaged()?;
    eprintln!(
        "repair: rebuilt {rebuilt} index(es), dropped {} damaged chunk(s)",
        dropped.len()
    );
    let work_tree = repo.work_tree()?;
    let mut left = problems.saturating_sub(rebuilt);
    for seen in broken {
        if let Err(StoreError::ManifestCorrupt { .. }) = store.read_manifest(&seen.pointer.id) {
            store.remove_manifest(&seen.pointer.id)?;
        }
        let path = work_tree.join(seen.path.to_path_lossy());
        if !path.is_file() || read_pointer_file(&path)?.is_some() {
            eprintln!("repair: {}: no intact copy in the work tree; hint: fetch it from a remote or restore it from a backup", seen.path);
            continue;
        }
        let file = std::fs::File::open(&path)?;
        let mut w = store.writer()?;
        // Ingesting writes the manifest only when the content hashes to the pointer's id,
        // because the manifest is stored under the id of what was actually read.
        let mp4 = repo.settings()?.mp4;
        let tmp = store.tmp_dir();
        let got = ingest_any(
            file,
            mp4,
            Some(&path),
            &tmp,
            ChunkerParams::default(),
            &mut w,
            &Silent,
        )?;
        if got.manifest.file_id == seen.pointer.id {
            eprintln!("repair: {}: re-stored from the work tree", seen.path);
            left = left.saturating_sub(1);
        } else {
            eprintln!(
                "repair: {}: the work-tree copy differs from the committed content; not used",
                seen.path
            );
        }
    }
    Ok(left)
}

/// A file whose content is not (completely) in the local store.
struct NotLocal<'a> {
    seen: &'a Seen,
    why: String,
    /// The chunks missing, when the manifest is here (after `git dits prune`): the server
    /// may hold them for other versions even if it never saw this one.
    chunks: Option<Vec<ChunkId>>,
}

/// Of the files whose content is not (completely) local, those the Dits server cannot
/// complete either, with why. Without a reachable server, all of them: nothing shows the
/// content exists anywhere.
fn remote_lacks<'a>(
    repo: &Repo,
    not_local: &[NotLocal<'a>],
    quiet: bool,
) -> Vec<(&'a Seen, String)> {
    let all = || not_local.iter().map(|n| (n.seen, n.why.clone())).collect();
    let server = match crate::remote::server_for(repo, None, false) {
        Ok(Some(s)) => s,
        Ok(None) => return all(),
        Err(e) => {
            // A misconfigured server must not read as "content lost" without a word.
            eprintln!(
                "warning: cannot tell whether the Dits server has the missing content: {e:#}"
            );
            return all();
        }
    };
    let answer = git_remote_dits::Session::connect(&server.url).and_then(|session| {
        let files: Vec<FileId> = not_local.iter().map(|n| n.seen.pointer.id).collect();
        let has_file = session.has_files(&files)?;
        let chunk_ids: Vec<ChunkId> = not_local
            .iter()
            .flat_map(|n| n.chunks.iter().flatten().copied())
            .collect();
        let has_chunk: HashMap<ChunkId, bool> = chunk_ids
            .iter()
            .copied()
            .zip(session.has_chunks(&chunk_ids)?)
            .collect();
        Ok(not_local
            .iter()
            .zip(has_file)
            .map(|(n, file)| {
                file || n.chunks.as_ref().is_some_and(|ids| {
                    ids.iter()
                        .all(|id| has_chunk.get(id).copied().unwrap_or(false))
                })
            })
            .collect::<Vec<bool>>())
    });
    match answer {
        Ok(present) => {
            let lacking: Vec<_> = not_local
                .iter()
                .zip(&present)
                .filter(|(_, &p)| !p)
                .map(|(n, _)| {
                    (
                        n.seen,
                        format!("{}; and {} does not have it either", n.why, server.url),
                    )
                })
                .collect();
            let remote_only = not_local.len() - lacking.len();
            if remote_only > 0 && !quiet {
                eprintln!(
                    "{remote_only} file(s) are not stored here but are on {}; hint: `git dits pull` or `git dits fetch` brings them",
                    server.url
                );
            }
            lacking
        }
        Err(e) => not_local
            .iter()
            .map(|n| {
                (
                    n.seen,
                    format!("{}; and {} could not be asked: {e}", n.why, server.url),
                )
            })
            .collect(),
    }
}
