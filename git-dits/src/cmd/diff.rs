//! textconv for tracked files: a summary Git can diff line by line. After the size and file id,
//! a media file's container and tracks (so `git diff` says "20.000 s -> 10.000 s" or which
//! codec changed), then one line per chunk (id and length, no offsets, so an insert does not
//! shift every line): `git diff` shows exactly which chunks changed, and `--stat` counts them.
//! Work-tree content is chunked the way clean would chunk it, without storing anything.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use dits_core::chunker::ChunkerParams;
use dits_core::ingest_media::ingest_any;
use dits_core::pointer::{Pointer, MAX_LEN};
use dits_core::progress::Silent;
use dits_core::store::{ChunkSource, Discard};
use dits_core::Manifest;

use super::human;
use crate::repo::Repo;

pub fn textconv(file: &Path) -> Result<ExitCode> {
    let mut f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut head = Vec::new();
    Read::by_ref(&mut f)
        .take(MAX_LEN as u64 + 1)
        .read_to_end(&mut head)?;
    let repo = Repo::discover().ok();
    let mut out = BufWriter::new(io::stdout().lock());
    if let Ok(pointer) = Pointer::parse(&head) {
        let manifest = repo
            .as_ref()
            .and_then(|r| r.open_store().ok())
            .and_then(|s| s.read_manifest(&pointer.id).ok());
        match manifest {
            Some(m) => summary(&mut out, &m)?,
            None => {
                header(&mut out, pointer.size, &pointer.id.to_string())?;
                writeln!(out, "chunks: unknown (content not in the local store)")?;
            }
        }
    } else {
        // The work-tree side of `git diff` can be the real content.
        let mp4 = repo
            .as_ref()
            .and_then(|r| r.settings().ok())
            .is_none_or(|s| s.mp4);
        let content = io::Cursor::new(head).chain(f);
        let tmp = std::env::temp_dir();
        let params = ChunkerParams::default();
        let got = ingest_any(
            content,
            mp4,
            Some(file),
            &tmp,
            params,
            &mut Discard,
            &Silent,
        )
        .with_context(|| format!("reading {}", file.display()))?;
        summary(&mut out, &got.manifest)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn header(out: &mut impl Write, size: u64, id: &str) -> io::Result<()> {
    writeln!(out, "Dits file: {} ({size} bytes)", human(size))?;
    writeln!(out, "blake3 {id}")
}

fn summary(out: &mut impl Write, m: &Manifest) -> io::Result<()> {
    header(out, m.size, &m.file_id.to_string())?;
    if let Some(info) = &m.media {
        writeln!(out, "media: {}", info.describe())?;
        for t in &info.tracks {
            writeln!(out, "track {}: {}", t.id, t.describe())?;
        }
    }
    writeln!(out, "chunks: {}", m.chunks.len())?;
    for c in &m.chunks {
        writeln!(out, "chunk {} {}", c.id, c.len)?;
    }
    Ok(())
}
