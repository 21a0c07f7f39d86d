//! `git dits ls-files [REV]`: tracked files, their size, id and local availability.

use std::process::ExitCode;

use anyhow::Result;
use dits_core::store::{ChunkSource, DiskStore};
use dits_core::{Manifest, Pointer};

use super::{human, quote_path};
use crate::repo::Repo;
use crate::tracked::{self, TrackedFile};

/// How much of a file's content is in the local store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Present,
    Partial { missing: usize },
    Missing,
}

impl std::fmt::Display for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Presence::Present => write!(f, "present"),
            Presence::Partial { missing } => write!(f, "partial({missing} chunks missing)"),
            Presence::Missing => write!(f, "missing"),
        }
    }
}

/// Presence, and the manifest when it is here. Checks the indexes only; `fsck` reads and
/// verifies the bytes.
pub fn presence(store: &DiskStore, pointer: &Pointer) -> (Presence, Option<Manifest>) {
    if pointer.size == 0 {
        return (Presence::Present, None);
    }
    match store.read_manifest(&pointer.id) {
        Err(_) => (Presence::Missing, None),
        Ok(m) => {
            let missing = m.chunks.iter().filter(|c| !store.has_chunk(&c.id)).count();
            let p = match missing {
                0 => Presence::Present,
                n if n == m.chunks.len() => Presence::Missing,
                n => Presence::Partial { missing: n },
            };
            (p, Some(m))
        }
    }
}

pub fn files(repo: &Repo, rev: Option<&str>) -> Result<Vec<TrackedFile>> {
    match rev {
        Some(rev) => tracked::in_rev(repo, rev),
        None => tracked::in_index(repo),
    }
}

pub fn run(rev: Option<&str>, long: bool) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let store = repo.open_store()?;
    for f in files(&repo, rev)? {
        let (presence, manifest) = presence(&store, &f.pointer);
        if long {
            let chunks = match &manifest {
                Some(m) => Some(m.chunks.len()),
                None if f.pointer.size == 0 => Some(0),
                None => None,
            };
            println!(
                "{:>10}  {}  {:>6} chunks  blob {}  {:<8}  {}",
                human(f.pointer.size),
                f.pointer.id,
                chunks.map_or("?".into(), |c| c.to_string()),
                f.blob,
                presence.to_string(),
                quote_path(f.path.as_ref())
            );
            if let Some(info) = manifest.and_then(|m| m.media) {
                println!("    media: {}", info.describe());
                for t in &info.tracks {
                    println!("    track {}: {}", t.id, t.describe());
                }
            }
        } else {
            println!(
                "{:>10}  {}  {:<8}  {}",
                human(f.pointer.size),
                f.pointer.id.short(),
                presence.to_string(),
                quote_path(f.path.as_ref())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
