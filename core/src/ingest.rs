//! Clean: turn a stream into stored chunks and a manifest, holding only a few blocks in memory.
//!
//! Two stages on two threads, because one core cannot both cut and hash at disk speed: the
//! calling thread reads and finds chunk boundaries (FastCDC, the costliest step); a worker
//! hashes the whole file (the id `b3sum` agrees with; blocks arrive in order), names each
//! chunk and hands new ones to the store. That splits the work about evenly.

use std::io::{self, Read};
use std::sync::mpsc;

use crate::chunker::{Block, BlockReader, BlockSource, ChunkerParams};
use crate::id::{ChunkId, FileId};
use crate::manifest::{ChunkRef, Manifest};
use crate::progress::Progress;
use crate::store::{ChunkSink, StoreError};

/// Blocks in flight between the stages (each up to `chunker::BLOCK_SIZE`).
const IN_FLIGHT: usize = 2;

#[derive(Debug)]
pub struct Ingested {
    pub manifest: Manifest,
    pub new_chunks: u64,
    /// Bytes the store grew by (after compression, including record headers).
    pub stored_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("reading the content failed: {0}")]
    Read(#[source] io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Chunks `reader` into `sink`, commits the chunks, then stores the manifest. On error no
/// manifest is written and uncommitted chunks are dropped; chunks already published because a
/// pack filled up part-way stay (harmless: later adds reuse them).
pub fn ingest<R: Read, S: ChunkSink>(
    reader: R,
    params: ChunkerParams,
    sink: &mut S,
    progress: &dyn Progress,
) -> Result<Ingested, IngestError> {
    let mut blocks = BlockReader::new(reader, params);
    let result = pipeline(&mut blocks, true, sink, progress);
    match result {
        Ok(Chunked {
            refs: chunks,
            file_id,
            new_chunks,
            stored: stored_bytes,
        }) => {
            let size = blocks.total();
            sink.commit()?;
            let manifest = Manifest::plain(file_id, size, params, chunks);
            sink.put_manifest(&manifest)?;
            Ok(Ingested {
                manifest,
                new_chunks,
                stored_bytes,
            })
        }
        Err(e) => {
            sink.rollback();
            Err(e)
        }
    }
}

/// Names each chunk of `block`, stores the new ones and lists them all in `refs`; the new
/// chunks and the bytes they added to the store.
pub(crate) fn store_block<S: ChunkSink>(
    block: &Block,
    sink: &mut S,
    refs: &mut Vec<ChunkRef>,
) -> Result<(u64, u64), StoreError> {
    let (mut new_chunks, mut stored) = (0u64, 0u64);
    for chunk in block.chunks() {
        let id = ChunkId::of(chunk);
        let added = sink.put_chunk(id, chunk)?;
        new_chunks += u64::from(added > 0);
        stored += added;
        refs.push(ChunkRef {
            id,
            len: chunk.len() as u32,
        });
    }
    Ok((new_chunks, stored))
}

/// What one pass of [`pipeline`] made.
pub(crate) struct Chunked {
    pub refs: Vec<ChunkRef>,
    /// The BLAKE3 of everything the blocks held (zeros unless asked for).
    pub file_id: FileId,
    pub new_chunks: u64,
    pub stored: u64,
}

/// Names and stores the chunks of `blocks` (uncommitted: the caller commits or rolls back).
/// `hash_whole` also hashes the content as one file, which a media stream does not need.
pub(crate) fn pipeline<B: BlockSource, S: ChunkSink>(
    blocks: &mut B,
    hash_whole: bool,
    sink: &mut S,
    progress: &dyn Progress,
) -> Result<Chunked, IngestError> {
    if progress.interrupted() {
        return Err(IngestError::Store(StoreError::Interrupted));
    }
    // Content of one block (every file under 4 MiB) is named and stored on this thread: no
    // worker to start for each of the thousands of small files of a game project.
    let mut first = Block::default();
    let mut second = Block::default();
    let mut read = |block: &mut Block| -> Result<bool, IngestError> {
        let more = blocks.next_block(block).map_err(IngestError::Read)?;
        progress.inc(block.data.len() as u64);
        Ok(more)
    };
    if !read(&mut first)? || !read(&mut second)? {
        let mut hasher = blake3::Hasher::new();
        if hash_whole {
            hasher.update(&first.data);
        }
        let mut refs = Vec::new();
        let (new_chunks, stored) = store_block(&first, sink, &mut refs)?;
        return Ok(Chunked {
            refs,
            file_id: FileId(*hasher.finalize().as_bytes()),
            new_chunks,
            stored,
        });
    }
    let (full_tx, full_rx) = mpsc::sync_channel::<Block>(IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::channel::<Block>();
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || -> Result<Chunked, StoreError> {
            let mut refs = Vec::new();
            let mut hasher = blake3::Hasher::new();
            let (mut new_chunks, mut stored) = (0u64, 0u64);
            for block in full_rx {
                if hash_whole {
                    hasher.update(&block.data);
                }
                let (n, bytes) = store_block(&block, sink, &mut refs)?;
                new_chunks += n;
                stored += bytes;
                // The reader may have finished already; then the block is simply freed.
                let _ = empty_tx.send(block);
            }
            Ok(Chunked {
                refs,
                file_id: FileId(*hasher.finalize().as_bytes()),
                new_chunks,
                stored,
            })
        });

        let mut read_error = None;
        // The two blocks read already go first (the channel holds two).
        for block in [first, second] {
            if full_tx.send(block).is_err() {
                break;
            }
        }
        loop {
            if progress.interrupted() {
                read_error = Some(IngestError::Store(StoreError::Interrupted));
                break;
            }
            let mut block = empty_rx.try_recv().unwrap_or_default();
            match blocks.next_block(&mut block) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    read_error = Some(IngestError::Read(e));
                    break;
                }
            }
            progress.inc(block.data.len() as u64);
            if full_tx.send(block).is_err() {
                break; // the worker stopped on an error, reported below
            }
        }
        drop(full_tx);
        let worker_result = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let chunked = worker_result?;
        if let Some(e) = read_error {
            return Err(e);
        }
        Ok(chunked)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;
    use crate::reader::ManifestReader;
    use crate::store::{ChunkSource, MemoryStore};
    use crate::test_data::pseudo_random;

    #[test]
    fn ingest_then_read_back_is_exact() -> Result<(), Box<dyn std::error::Error>> {
        let mut store = MemoryStore::default();
        let data = pseudo_random(11, 3 * 1024 * 1024 + 17);
        let got = ingest(&data[..], ChunkerParams::default(), &mut store, &Silent)?;
        assert_eq!(got.manifest.file_id, FileId::of(&data));
        assert_eq!(got.manifest.size, data.len() as u64);
        assert_eq!(got.new_chunks as usize, got.manifest.chunks.len());
        let mut back = Vec::new();
        ManifestReader::new(&store, got.manifest.clone()).read_to_end(&mut back)?;
        assert_eq!(back, data);
        assert_eq!(store.read_manifest(&got.manifest.file_id)?, got.manifest);
        Ok(())
    }

    #[test]
    fn second_ingest_of_edited_data_stores_only_the_edit() -> Result<(), Box<dyn std::error::Error>>
    {
        let mut store = MemoryStore::default();
        let data = pseudo_random(12, 4 * 1024 * 1024);
        let first = ingest(&data[..], ChunkerParams::default(), &mut store, &Silent)?;
        let mut edited = data.clone();
        edited[2_000_000..2_000_000 + 1000].fill(7);
        let second = ingest(&edited[..], ChunkerParams::default(), &mut store, &Silent)?;
        assert!(second.new_chunks <= 2, "{} new chunks", second.new_chunks);
        assert!(second.stored_bytes < 600 * 1024);
        let (a, b) = (first.manifest.chunks.len(), second.manifest.chunks.len());
        assert!(a.abs_diff(b) <= 1, "{a} chunks before, {b} after");
        Ok(())
    }

    #[test]
    fn read_error_commits_nothing() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk gone"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(3);
                self.0 -= n;
                Ok(n)
            }
        }
        let mut store = MemoryStore::default();
        let err = ingest(
            Failing(9_000_000),
            ChunkerParams::default(),
            &mut store,
            &Silent,
        );
        assert!(matches!(err, Err(IngestError::Read(_))));
        assert_eq!(store.chunk_count(), 0);
    }

    #[test]
    fn empty_input_gives_empty_manifest() -> Result<(), Box<dyn std::error::Error>> {
        let mut store = MemoryStore::default();
        let got = ingest(&[][..], ChunkerParams::default(), &mut store, &Silent)?;
        assert_eq!(got.manifest.size, 0);
        assert!(got.manifest.chunks.is_empty());
        assert_eq!(got.manifest.file_id, FileId::of(b""));
        Ok(())
    }
}
