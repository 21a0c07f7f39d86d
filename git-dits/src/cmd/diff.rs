//! textconv for tracked files: a summary Git can diff line by line. One line per chunk (id and
//! length, no offsets, so an insert does not shift every line), after the size and file id:
//! `git diff` then shows exactly which chunks changed, and `--stat` counts them.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use dits_core::chunker::{Block, BlockReader, ChunkerParams};
use dits_core::pointer::{Pointer, MAX_LEN};
use dits_core::store::ChunkSource;
use dits_core::ChunkId;

use super::human;
use crate::repo::Repo;

pub fn textconv(file: &Path) -> Result<ExitCode> {
    let mut f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut head = Vec::new();
    Read::by_ref(&mut f)
        .take(MAX_LEN as u64 + 1)
        .read_to_end(&mut head)?;
    let mut out = BufWriter::new(io::stdout().lock());
    if let Ok(pointer) = Pointer::parse(&head) {
        writeln!(
            out,
            "Dits file: {} ({} bytes)",
            human(pointer.size),
            pointer.size
        )?;
        writeln!(out, "blake3 {}", pointer.id)?;
        let manifest = Repo::discover()
            .ok()
            .and_then(|r| r.open_store().ok())
            .and_then(|s| s.read_manifest(&pointer.id).ok());
        match manifest {
            Some(m) => {
                writeln!(out, "chunks: {}", m.chunks.len())?;
                for c in &m.chunks {
                    writeln!(out, "chunk {} {}", c.id, c.len)?;
                }
            }
            None => writeln!(out, "chunks: unknown (content not in the local store)")?,
        }
    } else {
        // The work-tree side of `git diff` can be the real content: chunk it without storing.
        let content = io::Cursor::new(head).chain(f);
        let mut blocks = BlockReader::new(content, ChunkerParams::default());
        let mut block = Block::default();
        let mut hasher = blake3::Hasher::new();
        let mut lines = Vec::new();
        while blocks.next_block(&mut block)? {
            hasher.update(&block.data);
            lines.extend(block.chunks().map(|c| (ChunkId::of(c), c.len())));
        }
        let size = blocks.total();
        writeln!(out, "Dits file: {} ({size} bytes)", human(size))?;
        writeln!(out, "blake3 {}", hasher.finalize().to_hex())?;
        writeln!(out, "chunks: {}", lines.len())?;
        for (id, len) in lines {
            writeln!(out, "chunk {id} {len}")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
