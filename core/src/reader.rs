//! Smudge: stream a file back out of the store, one verified chunk at a time, and check the
//! whole content against its file id at the end.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::sync::Arc;

use crate::id::ChunkId;
use crate::manifest::{Manifest, Span};
use crate::rebuild::WholeFile;
use crate::span_map::SpanMap;
use crate::store::{ChunkSource, StoreError};

/// The content of a file as a `Read`, verified: each chunk against its id as it is read, the
/// whole content against the file id at the end (a mismatch is the last read's error, after
/// which git discards what it got). Take the manifest from [`crate::rebuild::manifest_for`],
/// which has checked its size against the pointer.
pub struct ManifestReader<'a, S: ChunkSource + ?Sized> {
    store: &'a S,
    manifest: Manifest,
    next: usize,
    recent: RecentChunks,
    current: Option<(Arc<Vec<u8>>, Range<usize>)>,
    check: Option<WholeFile>,
    finished: bool,
}

impl<'a, S: ChunkSource + ?Sized> ManifestReader<'a, S> {
    pub fn new(store: &'a S, manifest: Manifest) -> Self {
        ManifestReader {
            store,
            next: 0,
            recent: RecentChunks::default(),
            current: None,
            check: Some(WholeFile::new(&manifest)),
            finished: false,
            manifest,
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn load_next(&mut self) -> io::Result<bool> {
        let Some(span) = self.manifest.span(self.next) else {
            return Ok(false);
        };
        let (data, range) = self.recent.span(self.store, &span, &self.manifest)?;
        if let Some(check) = &mut self.check {
            check.update(&data[range.clone()]).map_err(into_io)?;
        }
        self.current = Some((data, range));
        self.next += 1;
        Ok(true)
    }

    fn verify_whole(&mut self) -> io::Result<()> {
        match self.check.take() {
            Some(check) => check.finish().map_err(into_io),
            None => Ok(()),
        }
    }
}

impl<S: ChunkSource + ?Sized> Read for ManifestReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((data, range)) = &mut self.current {
                if range.start < range.end {
                    let n = buf.len().min(range.len());
                    buf[..n].copy_from_slice(&data[range.start..range.start + n]);
                    range.start += n;
                    return Ok(n);
                }
            }
            if self.finished {
                return Ok(0);
            }
            if !self.load_next()? {
                self.finished = true;
                self.verify_whole()?;
                return Ok(0);
            }
        }
    }
}

/// The last few chunks read, verified: a file laid out from slices (video-aware chunking)
/// takes several pieces from each chunk, interleaved with pieces of other tracks' chunks, and
/// must not read and verify a chunk once per piece.
#[derive(Default)]
struct RecentChunks {
    chunks: VecDeque<(ChunkId, Arc<Vec<u8>>)>,
}

impl RecentChunks {
    /// One per stream is enough: a file's streams advance together.
    const KEEP: usize = crate::media::info::MAX_TRACKS + 1;

    /// The chunk of `span` (from here or read and verified) and the span's range in it.
    fn span<S: ChunkSource + ?Sized>(
        &mut self,
        store: &S,
        span: &Span,
        manifest: &Manifest,
    ) -> io::Result<(Arc<Vec<u8>>, Range<usize>)> {
        let range = span.start as usize..(span.start + span.len) as usize;
        if let Some(i) = self.chunks.iter().position(|(id, _)| *id == span.chunk.id) {
            let hit = self.chunks.remove(i).expect("found above");
            let data = Arc::clone(&hit.1);
            self.chunks.push_front(hit);
            return Ok((data, range));
        }
        if crate::progress::interrupted() {
            // Not ErrorKind::Interrupted: io::copy would retry that forever.
            return Err(io::Error::other("interrupted by the user"));
        }
        let data = store.read_chunk(&span.chunk.id).map_err(into_io)?;
        if data.len() != span.chunk.len as usize || range.end > data.len() {
            return Err(into_io(StoreError::ContentMismatch {
                id: manifest.file_id,
                reason: format!(
                    "needs chunk {} to have {} bytes, and it has {}",
                    span.chunk.id,
                    span.chunk.len,
                    data.len()
                ),
            }));
        }
        let data = Arc::new(data);
        self.chunks.push_front((span.chunk.id, Arc::clone(&data)));
        self.chunks.truncate(Self::KEEP);
        Ok((data, range))
    }
}

/// Random access to a stored file, for parsing its boxes out of the store (`git dits diff`
/// reads a media file's `moov` this way). Chunks are verified as they are read; the whole
/// file is not (only the ranges read are).
pub struct ManifestReadAt<'a, S: ChunkSource + ?Sized> {
    store: &'a S,
    manifest: &'a Manifest,
    map: SpanMap,
    recent: RecentChunks,
}

impl<'a, S: ChunkSource + ?Sized> ManifestReadAt<'a, S> {
    pub fn new(store: &'a S, manifest: &'a Manifest) -> Self {
        ManifestReadAt {
            store,
            manifest,
            map: SpanMap::of(manifest),
            recent: RecentChunks::default(),
        }
    }

    /// Fills `buf` from `offset`; an error if that runs past the end of the file.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        if end > self.map.size() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if buf.is_empty() {
            return Ok(());
        }
        let mut done = 0;
        for i in self.map.covering(offset, end) {
            let span = self.map.span(i);
            let (data, range) = self.recent.span(self.store, &span, self.manifest)?;
            let from = range.start + (offset + done as u64 - self.map.start(i)) as usize;
            let n = (range.end - from).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&data[from..from + n]);
            done += n;
        }
        Ok(())
    }
}

/// Writes the whole file to `out`, reading and verifying chunks on a second thread while this
/// one hashes the content and writes it: for large files the two halves of the work overlap
/// (a checkout of 1 GiB spends about as long verifying chunks as hashing and writing).
pub fn copy_prefetched<S: ChunkSource + ?Sized, W: Write>(
    store: &S,
    manifest: &Manifest,
    out: &mut W,
) -> io::Result<u64> {
    const AHEAD: usize = 16;
    type Piece = io::Result<(Arc<Vec<u8>>, Range<usize>)>;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Piece>(AHEAD);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut recent = RecentChunks::default();
            for span in manifest.spans() {
                let result = recent.span(store, &span, manifest);
                let failed = result.is_err();
                // A closed channel means the writer stopped; so do we.
                if tx.send(result).is_err() || failed {
                    return;
                }
            }
        });
        let mut check = WholeFile::new(manifest);
        let mut total = 0u64;
        for piece in rx {
            let (data, range) = piece?;
            let bytes = &data[range];
            check.update(bytes).map_err(into_io)?;
            out.write_all(bytes)?;
            total += bytes.len() as u64;
        }
        check.finish().map_err(into_io)?;
        Ok(total)
    })
}

/// Writes the content `pointer` names to `out` (one-shot smudge, `git dits cat`), after
/// checking the manifest's size against the pointer.
pub fn stream_to<S: ChunkSource + ?Sized, W: Write>(
    store: &S,
    pointer: &crate::pointer::Pointer,
    out: &mut W,
) -> Result<u64, StoreError> {
    let manifest = crate::rebuild::manifest_for(store, pointer)?;
    copy_prefetched(store, &manifest, out).map_err(|e| from_io(e, std::path::Path::new("<output>")))
}

/// Keeps the store error (it names the chunk and the hint) through `io::Error`; see
/// [`from_io`] to get it back.
pub fn into_io(e: StoreError) -> io::Error {
    io::Error::other(e)
}

/// The store error an `io::Error` from this module carries, or the I/O error itself (named
/// by `what`) when it is a plain write or read failure.
pub fn from_io(e: io::Error, what: &std::path::Path) -> StoreError {
    if !e.get_ref().is_some_and(|inner| inner.is::<StoreError>()) {
        return StoreError::io(what, e);
    }
    let inner = e
        .into_inner()
        .expect("checked above that it has an inner error");
    *inner
        .downcast::<StoreError>()
        .expect("checked above that it is a StoreError")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunker::ChunkerParams;
    use crate::ingest::ingest;
    use crate::progress::Silent;
    use crate::store::MemoryStore;
    use crate::test_data::pseudo_random;

    #[test]
    fn corrupted_chunk_is_an_error_not_bad_bytes() -> Result<(), Box<dyn std::error::Error>> {
        let mut store = MemoryStore::default();
        let data = pseudo_random(5, 1024 * 1024);
        let m = ingest(&data[..], ChunkerParams::default(), &mut store, &Silent)?.manifest;
        store.corrupt(&m.chunks[3].id);
        let mut out = Vec::new();
        let err = ManifestReader::new(&store, m.clone())
            .read_to_end(&mut out)
            .expect_err("corruption must be reported");
        assert!(
            err.to_string().contains(&m.chunks[3].id.to_string()),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn prefetched_copy_matches_and_stops_on_corruption() -> Result<(), Box<dyn std::error::Error>> {
        let mut store = MemoryStore::default();
        let data = pseudo_random(7, 3 * 1024 * 1024);
        let m = ingest(&data[..], ChunkerParams::default(), &mut store, &Silent)?.manifest;
        let mut out = Vec::new();
        assert_eq!(copy_prefetched(&store, &m, &mut out)?, data.len() as u64);
        assert_eq!(out, data);
        store.corrupt(&m.chunks[10].id);
        let err = copy_prefetched(&store, &m, &mut Vec::new()).expect_err("corruption");
        assert!(
            err.to_string().contains(&m.chunks[10].id.to_string()),
            "{err}"
        );
        let mut swapped = m.clone();
        swapped.chunks.swap(0, 1);
        assert!(copy_prefetched(&MemoryStore::default(), &swapped, &mut Vec::new()).is_err());
        Ok(())
    }

    #[test]
    fn wrong_manifest_is_caught_by_the_file_hash() -> Result<(), Box<dyn std::error::Error>> {
        let mut store = MemoryStore::default();
        let data = pseudo_random(6, 512 * 1024);
        let mut m = ingest(&data[..], ChunkerParams::default(), &mut store, &Silent)?.manifest;
        m.chunks.swap(0, 1);
        let mut out = Vec::new();
        assert!(ManifestReader::new(&store, m)
            .read_to_end(&mut out)
            .is_err());
        Ok(())
    }
}
