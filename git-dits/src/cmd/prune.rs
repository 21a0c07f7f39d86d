//! `git dits prune`: keep the repository near 1× the size of its content. After a clone,
//! every file is stored twice, in the work tree and in `.git/dits` (Git LFS has the same
//! problem: git-lfs#2147). Chunks the Dits server holds can be dropped locally; whatever
//! needs them later (a checkout of another version, `git dits cat`) fetches them again,
//! verified. Manifests and their group objects stay, so every file is still known here.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use dits_core::manifest::TopManifest;
use dits_core::ChunkId;

use super::human;
use crate::remote::server_for;
use crate::repo::Repo;

pub fn run(remote: Option<&str>, now: bool, dry_run: bool, quiet: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let server = server_for(&repo, remote, false)?.context(
        "no Dits server is configured, so nothing can be dropped safely (the local copy may be the only one); hint: add a dits:// remote or set dits.url",
    )?;
    let store = repo.open_store()?;
    // A pack another process may still append to is never touched (like `git gc`'s grace
    // period); --now is for when nothing else runs.
    let min_age = if now {
        Duration::ZERO
    } else {
        Duration::from_secs(3600)
    };
    let packs = store.settled_packs(min_age)?;
    // Group objects keep local manifests readable: they stay.
    let mut groups: HashSet<ChunkId> = HashSet::new();
    for id in store.manifest_ids()? {
        if let Ok(top) = store.read_manifest_top(&id) {
            if let Ok(top) = TopManifest::decode(&top) {
                groups.extend(top.groups.iter().map(|g| g.id));
            }
        }
    }
    let candidates: Vec<ChunkId> = packs
        .iter()
        .flat_map(|(_, ids)| ids.iter().copied())
        .filter(|id| !groups.contains(id))
        .collect();
    let session = crate::remote::connect(&repo, &server, !quiet, None)?;
    let on_server: HashSet<ChunkId> = candidates
        .iter()
        .copied()
        .zip(session.has_chunks(&candidates)?)
        .filter(|(_, has)| *has)
        .map(|(id, _)| id)
        .collect();
    let (mut freed, mut chunks, mut rewritten) = (0u64, 0usize, 0usize);
    for (name, ids) in &packs {
        let droppable = ids.iter().filter(|id| on_server.contains(id)).count();
        if droppable == 0 {
            continue;
        }
        chunks += droppable;
        rewritten += 1;
        if !dry_run {
            // What stays (content only here, group objects) moves to a new pack first.
            let keep: HashSet<ChunkId> = ids
                .iter()
                .filter(|id| !on_server.contains(id))
                .copied()
                .collect();
            freed += store.rewrite_pack(name, &keep)?;
        }
    }
    if !quiet {
        eprintln!(
            "dits: {} {chunks} chunk(s) that {} has, from {rewritten} pack(s){}; content only here and packs written in the last hour (without --now) stay",
            if dry_run { "would drop" } else { "dropped" },
            server.url,
            if dry_run { String::new() } else { format!(", freeing {}", human(freed)) },
        );
    }
    Ok(ExitCode::SUCCESS)
}
