//! Clean for ISO-BMFF files (MP4, MOV, M4A, 3GP, fragmented MP4): chunk each track's coded
//! samples as a stream of its own and the container bytes as another, then describe the file
//! as pieces of those chunks in file order.
//!
//! Why: a muxer that interleaves the same samples differently (or moves `moov`, or retags)
//! changes almost every 64 KiB window of the file, so byte-level chunking stores it again;
//! the per-track streams are unchanged, so here only the container stream is new. Video
//! streams are also cut at keyframes, so a trim or concat at keyframes reuses whole chunks;
//! the other streams use chunks a quarter of the size (within the manifest's bounds).
//!
//! The sample tables are needed before the samples can be sorted into streams, and `moov`
//! usually comes last. So when the caller knows a file that should hold the same content
//! (`git add`: the work-tree file), its layout is read from there and the content is routed
//! to its streams as it streams in ([`routed`]); otherwise the content is spooled to a temp
//! file first and chunked from there ([`spooled`]). Both cut identically ([`cutter`]). A
//! file that does not parse cleanly is chunked as plain bytes; it is never an error.

mod cutter;
mod routed;
mod spooled;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::chunker::ChunkerParams;
use crate::id::FileId;
use crate::ingest::{ingest, IngestError, Ingested};
use crate::manifest::{ChunkRef, Manifest, Piece};
use crate::media::{analyze, sniff, FileLayout, MediaInfo, Run};
use crate::progress::Progress;
use crate::store::ChunkSink;

/// Chunks `file` (its first `len` bytes, whose BLAKE3 is `file_id`) into `sink` video-aware,
/// or as plain bytes when it is not a media file we can lay out. Commits the chunks and
/// stores the manifest, like [`ingest`].
pub fn ingest_media<S: ChunkSink>(
    file: &File,
    len: u64,
    file_id: FileId,
    params: ChunkerParams,
    sink: &mut S,
    progress: &dyn Progress,
) -> Result<Ingested, IngestError> {
    let layout = analyze(read_at(file), len, u64::from(params.min));
    let layout = match layout {
        Ok(l) if covers(&l.runs, len) => l,
        result => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "not laid out as media; chunking as plain bytes");
            }
            let mut f = file;
            f.seek(SeekFrom::Start(0)).map_err(IngestError::Read)?;
            return ingest(f.take(len), params, sink, progress);
        }
    };
    let result = spooled::chunk_streams(file, &layout, params, sink, progress);
    finish(
        result.map(|(streams, new_chunks, stored)| Made {
            streams,
            runs: layout.runs,
            file_id,
            len,
            new_chunks,
            stored,
            info: Some(layout.info),
        }),
        params,
        sink,
    )
}

/// What chunking the streams made, before the manifest.
struct Made {
    streams: Streams,
    runs: Vec<Run>,
    file_id: FileId,
    len: u64,
    new_chunks: u64,
    stored: u64,
    info: Option<MediaInfo>,
}

/// Commits the chunks and stores the manifest, or rolls back.
fn finish<S: ChunkSink>(
    made: Result<Made, IngestError>,
    params: ChunkerParams,
    sink: &mut S,
) -> Result<Ingested, IngestError> {
    let made = match made {
        Ok(m) => m,
        Err(e) => {
            sink.rollback();
            return Err(e);
        }
    };
    sink.commit()?;
    let (chunks, pieces) = pieces(&made.runs, &made.streams).ok_or_else(|| {
        IngestError::Read(io::Error::other(
            "video-aware chunking lost track of its streams; hint: `git config dits.mp4 false` and add the file again",
        ))
    })?;
    let manifest = Manifest {
        file_id: made.file_id,
        size: made.len,
        params,
        chunks,
        pieces,
        media: made.info,
    };
    sink.put_manifest(&manifest)?;
    Ok(Ingested {
        manifest,
        new_chunks: made.new_chunks,
        stored_bytes: made.stored,
    })
}

/// Clean for any content: video-aware ([`ingest_media_stream`]) when `mp4` is on and the
/// content starts like an ISO-BMFF file, plain [`ingest`] otherwise. The one place that
/// decides, for the filter, `git diff`'s textconv and `fsck --repair` alike.
///
/// `like` names a file believed to hold the same content (the work-tree file git is
/// cleaning): its layout lets media be chunked as it streams in. It is only a prediction;
/// what is stored is always exactly what `reader` gives.
pub fn ingest_any<R: Read, S: ChunkSink>(
    mut reader: R,
    mp4: bool,
    like: Option<&Path>,
    spool_dir: &Path,
    params: ChunkerParams,
    sink: &mut S,
    progress: &dyn Progress,
) -> Result<Ingested, IngestError> {
    let mut head = [0u8; 8];
    let n = read_full(&mut reader, &mut head).map_err(IngestError::Read)?;
    let content = io::Cursor::new(head).take(n as u64).chain(reader);
    if !(mp4 && sniff(&head[..n])) {
        return ingest(content, params, sink, progress);
    }
    match like.and_then(|path| predict(path, params)) {
        Some(plan) => {
            let made = routed::route(content, &plan, params, sink, progress).map(|r| Made {
                streams: r.streams,
                runs: r.runs,
                file_id: r.file_id,
                len: r.len,
                new_chunks: r.new_chunks,
                stored: r.stored,
                info: r.info,
            });
            finish(made, params, sink)
        }
        None => ingest_media_stream(content, spool_dir, params, sink, progress),
    }
}

/// The layout of the media file at `path`, if it is one.
fn predict(path: &Path, params: ChunkerParams) -> Option<FileLayout> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    analyze(read_at(&file), len, u64::from(params.min))
        .ok()
        .filter(|l| covers(&l.runs, len))
}

/// [`ingest_media`] for a stream: spools it to an unnamed temporary file in `spool_dir`
/// (the store's tmp dir: same disk, gone if we crash), hashing it on the way.
fn ingest_media_stream<R: Read, S: ChunkSink>(
    mut reader: R,
    spool_dir: &Path,
    params: ChunkerParams,
    sink: &mut S,
    progress: &dyn Progress,
) -> Result<Ingested, IngestError> {
    let mut file = tempfile::tempfile_in(spool_dir).map_err(|e| {
        IngestError::Read(io::Error::new(
            e.kind(),
            format!("creating a spool file in {}: {e}", spool_dir.display()),
        ))
    })?;
    let t0 = std::time::Instant::now();
    let (len, id) = spooled::spool(&mut reader, &mut file)?;
    tracing::debug!(bytes = len, elapsed = ?t0.elapsed(), "spooled for video-aware chunking");
    ingest_media(&file, len, id, params, sink, progress)
}

/// Reads until `buf` is full or the input ends; the number of bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Whether the runs cover `0..len` exactly, in order (what makes the pieces rebuild the file).
fn covers(runs: &[Run], len: u64) -> bool {
    let mut pos = 0;
    for r in runs {
        if r.offset != pos || r.len == 0 {
            return false;
        }
        pos += r.len;
    }
    pos == len
}

/// Per stream, its chunks in order.
type Streams = Vec<Vec<ChunkRef>>;

/// The distinct chunks in first-use order and the pieces that lay them out as the file.
/// `None` if the streams hold fewer bytes than the runs give them (a bug, not bad input:
/// better an error for this file than a panic of the filter).
fn pieces(runs: &[Run], streams: &Streams) -> Option<(Vec<ChunkRef>, Vec<Piece>)> {
    let mut chunks = Vec::new();
    let mut index: HashMap<crate::ChunkId, u32> = HashMap::new();
    let mut pieces = Vec::new();
    // Per stream: the next chunk and how much of it earlier runs used.
    let mut cursor = vec![(0usize, 0u32); streams.len()];
    for run in runs {
        let (ci, used) = cursor.get_mut(run.stream)?;
        let mut left = run.len;
        while left > 0 {
            let c = *streams.get(run.stream)?.get(*ci)?;
            let take = u64::from(c.len - *used).min(left) as u32;
            let i = *index.entry(c.id).or_insert_with(|| {
                chunks.push(c);
                (chunks.len() - 1) as u32
            });
            pieces.push(Piece {
                chunk: i,
                start: *used,
                len: take,
            });
            *used += take;
            left -= u64::from(take);
            if *used == c.len {
                *ci += 1;
                *used = 0;
            }
        }
    }
    Some((chunks, pieces))
}

/// A `read_at` over a file, for the box walk.
fn read_at(file: &File) -> impl FnMut(u64, &mut [u8]) -> io::Result<()> + '_ {
    move |offset, buf| {
        let mut f = file;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(buf)
    }
}
