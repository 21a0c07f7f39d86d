//! `git dits pointer PATH`: the pointer Git stores for a file, and its manifest.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use bstr::ByteSlice;
use dits_core::store::ChunkSource;
use dits_core::worktree::read_pointer_file;

use super::human;
use super::ls_files::presence;
use crate::repo::Repo;
use crate::tracked;

pub fn run(path: &Path) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let store = repo.open_store()?;
    let work_tree = repo.work_tree()?;
    let abs = std::env::current_dir()?.join(path);
    let rel = abs.strip_prefix(work_tree).unwrap_or(path);
    let staged = tracked::in_index(&repo)?
        .into_iter()
        .find(|f| f.path.to_path_lossy() == rel);
    let pointer = match staged {
        Some(f) => f.pointer,
        None => match read_pointer_file(&abs).with_context(|| format!("reading {}", abs.display()))? {
            Some(p) => p,
            None => bail!(
                "{}: not a Dits file (not staged as a pointer); hint: `git dits track` a pattern that matches it, then `git add` it",
                path.display()
            ),
        },
    };
    print!("{pointer}");
    println!("--");
    println!("size:     {} ({} bytes)", human(pointer.size), pointer.size);
    let (presence, _) = presence(&store, &pointer);
    match store.read_manifest(&pointer.id) {
        Ok(m) => {
            // Distinct chunks' bytes: a media file's pieces may take part of a chunk.
            let bytes: u64 = m.chunks.iter().map(|c| u64::from(c.len)).sum();
            let n = m.chunks.len().max(1) as u64;
            println!(
                "chunks:   {} (average {}), FastCDC {}/{}/{}",
                m.chunks.len(),
                human(bytes / n),
                human(m.params.min.into()),
                human(m.params.avg.into()),
                human(m.params.max.into())
            );
            println!("manifest: {}", store.manifest_path(&pointer.id).display());
        }
        Err(e) => println!("manifest: {e}"),
    }
    println!("local:    {presence}");
    Ok(ExitCode::SUCCESS)
}
