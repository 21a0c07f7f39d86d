//! `git dits stats`: how much the store holds and how much dedup saves.

use std::process::ExitCode;

use anyhow::Result;

use super::human;
use crate::repo::Repo;

pub fn run() -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let s = repo.open_store()?.stats()?;
    println!("store:            {}", repo.store_root().display());
    println!("files (manifests): {}", s.manifests);
    println!(
        "logical bytes:    {} ({} B)",
        human(s.logical_bytes),
        s.logical_bytes
    );
    println!(
        "unique chunks:    {} ({} raw, {} compressed)",
        s.chunks,
        human(s.chunk_raw_bytes),
        s.compressed_chunks
    );
    println!(
        "stored bytes:     {} ({} B) in {} pack(s)",
        human(s.pack_bytes),
        s.pack_bytes,
        s.packs
    );
    let ratio = if s.pack_bytes > 0 {
        s.logical_bytes as f64 / s.pack_bytes as f64
    } else {
        1.0
    };
    println!("dedup ratio:      {ratio:.2}x (logical / stored)");
    Ok(ExitCode::SUCCESS)
}
