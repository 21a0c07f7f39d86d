//! `git dits fsck [REV...]`: is every chunk of every reachable Dits file present and intact?

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;

use anyhow::{Context, Result};
use bstr::{BString, ByteSlice};
use dits_core::chunker::ChunkerParams;
use dits_core::ingest_media::ingest_any;
use dits_core::progress::{Progress, Silent};
use dits_core::reader::{copy_prefetched, from_io};
use dits_core::rebuild::manifest_for;
use dits_core::store::{ChunkSource, DiskStore, StoreError};
use dits_core::worktree::read_pointer_file;
use dits_core::{ChunkId, FileId, Pointer};

use crate::progress::Bar;
use crate::repo::Repo;
use crate::tracked;

/// Where a file id was seen first, to name it in reports.
#[derive(Clone)]
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

pub fn run(revs: &[String], repair: bool, quick: bool, quiet: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let store = repo.open_store()?;
    let report = check(&repo, &store, revs, quick, quiet)?;
    if repair && report.repairable() {
        self_repair(&repo, &store, &report)?;
        eprintln!("repair: checking again");
        let after = check(&repo, &store, revs, quick, quiet)?;
        return Ok(after.finish(quiet, false));
    }
    if repair {
        // Nothing is wrong, but a writer killed before its checkpoint may have left records
        // no index lists: readable (walked, verified), indexed now so no reader has to walk.
        let packs = store.repair_packs(ORPHAN_AGE)?;
        let indexed = packs.indexes_rebuilt + packs.orphans_indexed;
        if indexed > 0 && !quiet {
            eprintln!(
                "repair: indexed the last records of {indexed} pack(s) whose writer stopped before indexing them ({} chunk(s))",
                packs.chunks_recovered
            );
        }
    }
    Ok(report.finish(quiet, !repair))
}

/// What one pass of `fsck` found.
struct Report {
    files: usize,
    chunks: usize,
    /// Problems `--repair` can act on: damaged packs and indexes, damaged or wrong data.
    damaged: usize,
    /// Files whose content is neither here (intact) nor on the Dits server.
    lost: usize,
    /// Files with damaged or wrong data here, to re-store from the work tree.
    broken: Vec<Seen>,
}

impl Report {
    fn repairable(&self) -> bool {
        self.damaged > 0
    }

    fn finish(&self, quiet: bool, hint: bool) -> ExitCode {
        let problems = self.damaged + self.lost;
        if problems > 0 {
            eprintln!("{problems} problem(s) found");
            if hint && self.damaged > 0 {
                eprintln!("hint: `git dits fsck --repair` drops damaged data, rebuilds indexes from the packs, and re-stores intact work-tree copies");
            }
            if self.lost > 0 {
                eprintln!("hint: content that is neither here nor on the Dits server can only come back from a copy of the file: re-add it with `git add`, or from a backup");
            }
            return ExitCode::from(1);
        }
        if !quiet {
            eprintln!(
                "{} file(s), {} chunk(s) verified; no problems",
                self.files, self.chunks
            );
        }
        ExitCode::SUCCESS
    }
}

fn check(
    repo: &Repo,
    store: &DiskStore,
    revs: &[String],
    quick: bool,
    quiet: bool,
) -> Result<Report> {
    let mut report = Report {
        files: 0,
        chunks: 0,
        damaged: 0,
        lost: 0,
        broken: Vec::new(),
    };
    for d in store.damaged_indexes() {
        eprintln!("damaged: {d}");
        report.damaged += 1;
    }
    let files = collect(repo, revs)?;
    report.files = files.len();
    let bar = Bar::bytes(quiet, "verifying");
    bar.set_total(files.values().map(|s| s.pointer.size).sum());
    // Per chunk: Some(true) intact, Some(false) damaged, None not in the store.
    let mut verified: HashMap<ChunkId, Option<bool>> = HashMap::new();
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
        if bar.interrupted() {
            anyhow::bail!("interrupted");
        }
        let manifest = match manifest_for(store, &seen.pointer) {
            Err(e @ StoreError::ManifestMissing { .. }) => {
                not_local.push(NotLocal {
                    seen: seen.clone(),
                    why: e.to_string(),
                    chunks: None,
                });
                continue;
            }
            Err(e) => {
                eprintln!("{} (file {id}, at {}): {e}", seen.path, seen.at);
                report.damaged += 1;
                report.broken.push(seen.clone());
                continue;
            }
            Ok(m) => m,
        };
        let missing: Vec<ChunkId> = manifest
            .chunks
            .iter()
            .filter(|c| !store.has_chunk(&c.id))
            .map(|c| c.id)
            .collect();
        if !missing.is_empty() {
            not_local.push(NotLocal {
                seen: seen.clone(),
                why: StoreError::ChunkMissing { id: missing[0] }.to_string(),
                chunks: Some(missing),
            });
            bar.inc(seen.pointer.size);
            continue;
        }
        let result = if quick {
            // Each chunk once, against its id; the whole file is not rebuilt.
            let mut bad = None;
            for c in &manifest.chunks {
                let state =
                    *verified
                        .entry(c.id)
                        .or_insert_with(|| match store.read_chunk(&c.id) {
                            Ok(_) => Some(true),
                            Err(e) => {
                                bad.get_or_insert(e);
                                Some(false)
                            }
                        });
                if state == Some(false) && bad.is_none() {
                    bad = Some(StoreError::ChunkCorrupt {
                        id: c.id,
                        pack: "(see above)".into(),
                        offset: 0,
                        reason: "damaged".into(),
                    });
                }
            }
            bad.map_or(Ok(()), Err)
        } else {
            // The whole content, rebuilt and checked against the file id (each chunk is
            // verified on the way): a manifest that names the wrong content is found too.
            let rebuilt = copy_prefetched(store, &manifest, &mut std::io::sink())
                .map(drop)
                .map_err(|e| from_io(e, std::path::Path::new("-")));
            for c in &manifest.chunks {
                verified.entry(c.id).or_insert(Some(rebuilt.is_ok()));
            }
            rebuilt
        };
        bar.inc(seen.pointer.size);
        if let Err(e) = result {
            eprintln!("{} (file {id}, at {}): {e}", seen.path, seen.at);
            report.damaged += 1;
            report.broken.push(seen.clone());
        }
    }
    // Every other record in the store, so no damage hides in chunks no reachable file uses.
    let verified_ids: HashSet<ChunkId> = verified
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(id, _)| *id)
        .collect();
    store.verify_all_but(
        &|id| verified_ids.contains(id),
        |e| {
            eprintln!("damaged (not used by a file checked here): {e}");
            report.damaged += 1;
        },
        &Silent,
    )?;
    report.chunks = verified.len();
    if !not_local.is_empty() {
        for (seen, why) in remote_lacks(repo, &not_local, quiet) {
            eprintln!(
                "{} (file {}, at {}): {why}",
                seen.path, seen.pointer.id, seen.at
            );
            report.lost += 1;
        }
    }
    bar.finish();
    Ok(report)
}

/// Packs (or records past an index) younger than this may still be written by another process.
const ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Rebuilds damaged and missing indexes from the packs, drops damaged chunks and wrong
/// manifests, then re-stores the content of broken files from intact work-tree copies
/// (content whose BLAKE3 matches the pointer).
fn self_repair(repo: &Repo, store: &DiskStore, report: &Report) -> Result<()> {
    let packs = store.repair_packs(ORPHAN_AGE)?;
    let dropped = store.drop_damaged()?;
    eprintln!(
        "repair: rebuilt {} index(es) and indexed {} orphan pack(s) from their records ({} chunk(s) readable again), copied {} pack(s) with a damaged header, dropped {} damaged chunk(s)",
        packs.indexes_rebuilt,
        packs.orphans_indexed,
        packs.chunks_recovered,
        packs.headers_repaired,
        dropped.len()
    );
    if packs.orphans_too_young > 0 {
        eprintln!(
            "repair: left {} pack(s) without an index alone: written in the last hour, another git-dits may still be writing them",
            packs.orphans_too_young
        );
    }
    let work_tree = repo.work_tree()?;
    for seen in &report.broken {
        let wrong = match manifest_for(store, &seen.pointer) {
            Err(e) => e.is_corruption(),
            Ok(m) => matches!(
                copy_prefetched(store, &m, &mut std::io::sink())
                    .map_err(|e| from_io(e, std::path::Path::new("-"))),
                Err(StoreError::ContentMismatch { .. })
            ),
        };
        if wrong {
            store.remove_manifest(&seen.pointer.id)?;
            eprintln!(
                "repair: {}: removed a wrong manifest of {}",
                seen.path, seen.pointer.id
            );
        }
        let path = work_tree.join(seen.path.to_path_lossy());
        if !path.is_file() || read_pointer_file(&path)?.is_some() {
            eprintln!("repair: {}: no intact copy in the work tree; hint: `git dits fetch` gets it from the Dits server if it has it, or restore it from a backup", seen.path);
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
        } else {
            eprintln!(
                "repair: {}: the work-tree copy differs from the committed content; not used",
                seen.path
            );
        }
    }
    Ok(())
}

/// A file whose content is not (completely) in the local store.
struct NotLocal {
    seen: Seen,
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
    not_local: &'a [NotLocal],
    quiet: bool,
) -> Vec<(&'a Seen, String)> {
    let all = || not_local.iter().map(|n| (&n.seen, n.why.clone())).collect();
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
    let answer = crate::remote::connect(repo, &server, !quiet, None).and_then(|session| {
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
                        &n.seen,
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
                    &n.seen,
                    format!("{}; and {} could not be asked: {e}", n.why, server.url),
                )
            })
            .collect(),
    }
}
