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
//! The file must be seekable (the filter spools git's stream first): `moov` usually comes
//! last, and the sample tables are needed before the samples can be sorted into streams. A
//! file that does not parse cleanly is chunked as plain bytes; it is never an error.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{mpsc, OnceLock};

use crate::chunker::{Block, BlockSource, Chunker, ChunkerParams, BLOCK_SIZE};
use crate::id::FileId;
use crate::ingest::{ingest, pipeline, IngestError, Ingested};
use crate::manifest::{ChunkRef, Manifest, Piece};
use crate::media::{analyze, FileLayout, Run, StreamPlan};
use crate::progress::Progress;
use crate::store::ChunkSink;

/// Bytes read from the input per write to the spool file.
const SPOOL_BUFFER: usize = 1 << 20;

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
    match chunk_streams(file, &layout, params, sink, progress) {
        Ok((streams, new_chunks, stored_bytes)) => {
            sink.commit()?;
            let (chunks, pieces) = pieces(&layout.runs, &streams);
            let manifest = Manifest {
                file_id,
                size: len,
                params,
                chunks,
                pieces,
                media: Some(layout.info),
            };
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

/// [`ingest_media`] for a stream: spools it to an unnamed temporary file in `spool_dir`
/// (the store's tmp dir: same disk, gone if we crash), hashing it on the way.
pub fn ingest_media_stream<R: Read, S: ChunkSink>(
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
    let (len, id) = spool(&mut reader, &mut file)?;
    tracing::debug!(bytes = len, elapsed = ?t0.elapsed(), "spooled for video-aware chunking");
    ingest_media(&file, len, id, params, sink, progress)
}

/// Copies `reader` into `file` and hashes it, the hash on a second thread: hashing and
/// writing each cost about as much as the other, and git is still sending meanwhile.
fn spool<R: Read>(reader: &mut R, file: &mut File) -> Result<(u64, FileId), IngestError> {
    const IN_FLIGHT: usize = 4;
    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let hasher = scope.spawn(move || {
            let mut hasher = blake3::Hasher::new();
            for buf in full_rx {
                hasher.update(&buf);
                // The reader may have stopped already; then the buffer is simply freed.
                let _ = empty_tx.send(buf);
            }
            FileId(*hasher.finalize().as_bytes())
        });
        let mut len = 0u64;
        let result = loop {
            let mut buf = empty_rx.try_recv().unwrap_or_default();
            buf.resize(SPOOL_BUFFER, 0);
            let n = match read_full(reader, &mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) => break Err(IngestError::Read(e)),
            };
            buf.truncate(n);
            if let Err(e) = file.write_all(&buf) {
                break Err(IngestError::Read(io::Error::new(
                    e.kind(),
                    format!("writing the spool file: {e}"),
                )));
            }
            len += n as u64;
            if full_tx.send(buf).is_err() {
                break Ok(());
            }
        };
        drop(full_tx);
        let id = hasher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        result.map(|()| (len, id))
    })
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

type Streams = Vec<Vec<ChunkRef>>;

fn chunk_streams<S: ChunkSink>(
    file: &File,
    layout: &FileLayout,
    params: ChunkerParams,
    sink: &mut S,
    progress: &dyn Progress,
) -> Result<(Streams, u64, u64), IngestError> {
    let (mut new_chunks, mut stored) = (0, 0);
    let mut streams = Vec::with_capacity(layout.streams.len());
    for (i, plan) in layout.streams.iter().enumerate() {
        let ranges: Vec<(u64, u64)> = layout
            .runs
            .iter()
            .filter(|r| r.stream == i)
            .map(|r| (r.offset, r.len))
            .collect();
        // Audio, text and the container are a few percent of a video file: smaller chunks
        // make an edit to them (a trim's first and last second of audio, a remux's tables)
        // cost less, at little cost in index size.
        let stream_params = match params.quarter() {
            q if !plan.video && q.is_valid() => q,
            _ => params,
        };
        let mut blocks = StreamBlocks::new(file, ranges, plan, stream_params);
        let t0 = std::time::Instant::now();
        let chunked = pipeline(&mut blocks, false, sink, progress)?;
        tracing::debug!(stream = i, bytes = plan.len, elapsed = ?t0.elapsed(), "media stream chunked");
        let got: u64 = chunked.refs.iter().map(|c| u64::from(c.len)).sum();
        if got != plan.len {
            return Err(IngestError::Read(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("media stream {i}: read {got} bytes of {}", plan.len),
            )));
        }
        new_chunks += chunked.new_chunks;
        stored += chunked.stored;
        streams.push(chunked.refs);
    }
    Ok((streams, new_chunks, stored))
}

/// The distinct chunks in first-use order and the pieces that lay them out as the file.
fn pieces(runs: &[Run], streams: &Streams) -> (Vec<ChunkRef>, Vec<Piece>) {
    let mut chunks = Vec::new();
    let mut index: HashMap<crate::ChunkId, u32> = HashMap::new();
    let mut pieces = Vec::new();
    // Per stream: the next chunk and how much of it earlier runs used.
    let mut cursor = vec![(0usize, 0u32); streams.len()];
    for run in runs {
        let (ci, used) = &mut cursor[run.stream];
        let mut left = run.len;
        while left > 0 {
            let c = streams[run.stream][*ci];
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
    (chunks, pieces)
}

/// A `read_at` over a file, for the box walk.
fn read_at(file: &File) -> impl FnMut(u64, &mut [u8]) -> io::Result<()> + '_ {
    move |offset, buf| {
        let mut f = file;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(buf)
    }
}

/// One stream of a media file as blocks of whole chunks: its bytes gathered from the file's
/// ranges in order, cut by FastCDC and at the stream's forced cuts. The cuts depend only on
/// the stream's bytes and its forced cuts, never on the block size or on the other streams.
struct StreamBlocks<'a> {
    file: &'a File,
    ranges: std::vec::IntoIter<(u64, u64)>,
    current: Option<(u64, u64)>,
    /// Forced cuts: the plan's, plus sample starts chosen as they are read.
    cuts: Vec<u64>,
    next_forced: usize,
    samples: SampleCuts<'a>,
    chunker: Chunker,
    max: usize,
    carry: Vec<u8>,
    /// Stream offset of the first byte of the next block.
    base: u64,
    eof: bool,
    total: u64,
}

impl<'a> StreamBlocks<'a> {
    fn new(
        file: &'a File,
        ranges: Vec<(u64, u64)>,
        plan: &'a StreamPlan,
        params: ChunkerParams,
    ) -> Self {
        StreamBlocks {
            file,
            ranges: ranges.into_iter(),
            current: None,
            cuts: plan.cuts.clone(),
            next_forced: 0,
            samples: SampleCuts {
                starts: &plan.sample_starts,
                next: 0,
                stream_len: plan.len,
                // Half the chunk size: a trim's first and last partial chunk of audio
                // cost half as much, for twice as many (small) audio chunks.
                spacing: u64::from(params.avg / 2).max(1),
            },
            chunker: Chunker::new(params),
            max: params.max as usize,
            carry: Vec::new(),
            base: 0,
            eof: false,
            total: 0,
        }
    }

    /// Appends up to `want` more stream bytes to `data`.
    fn fill(&mut self, data: &mut Vec<u8>, want: usize) -> io::Result<()> {
        let target = data.len() + want;
        while data.len() < target {
            let (offset, left) = match self.current.take().or_else(|| self.ranges.next()) {
                Some(r) => r,
                None => {
                    self.eof = true;
                    return Ok(());
                }
            };
            let n = left.min((target - data.len()) as u64) as usize;
            let at = data.len();
            data.resize(at + n, 0);
            let mut f = self.file;
            f.seek(SeekFrom::Start(offset))?;
            f.read_exact(&mut data[at..])?;
            self.total += n as u64;
            if (n as u64) < left {
                self.current = Some((offset + n as u64, left - n as u64));
            }
        }
        Ok(())
    }
}

impl BlockSource for StreamBlocks<'_> {
    fn next_block(&mut self, block: &mut Block) -> io::Result<bool> {
        block.data.clear();
        block.ends.clear();
        block.data.append(&mut self.carry);
        // At least two maximal chunks, so a block that is not the last always holds a cut.
        let size = BLOCK_SIZE.max(2 * self.max);
        let want = size.saturating_sub(block.data.len());
        self.fill(&mut block.data, want)?;
        // Cuts are decided only up to the first sample whose first bytes are not here yet.
        let limit = self.samples.choose(self.base, &block.data, &mut self.cuts);
        let at_end = self.eof && limit == block.data.len();
        let mut start = 0;
        loop {
            let pos = self.base + start as u64;
            while self.cuts.get(self.next_forced).is_some_and(|&c| c <= pos) {
                self.next_forced += 1;
            }
            // A forced cut inside what we hold ends the segment: chunk up to it as if the
            // stream ended there.
            let segment_end = self
                .cuts
                .get(self.next_forced)
                .map(|&c| (c - self.base) as usize)
                .filter(|&e| e <= limit);
            let cut = match segment_end {
                Some(end) => self.chunker.next_cut(&block.data[start..end], true),
                None => self.chunker.next_cut(&block.data[start..limit], at_end),
            };
            match cut {
                Some(len) => {
                    start += len;
                    block.ends.push(start);
                }
                None => break,
            }
        }
        self.carry.extend_from_slice(&block.data[start..]);
        block.data.truncate(start);
        self.base += start as u64;
        Ok(!block.ends.is_empty())
    }

    fn total(&self) -> u64 {
        self.total
    }
}

/// Content-defined cuts at sample starts, for audio and other tracks of small samples: a
/// sample starts a chunk when a hash of its first bytes (and its length) falls under a
/// threshold proportional to its size, so cuts come every `spacing` bytes on average and
/// depend on nothing but the sample itself. A trim that drops the first samples then meets
/// the same cuts at once, where byte-level chunking would take a few chunks to fall back
/// into step.
struct SampleCuts<'a> {
    starts: &'a [u64],
    next: usize,
    stream_len: u64,
    spacing: u64,
}

impl SampleCuts<'_> {
    /// How many bytes of a sample decide whether it starts a chunk.
    const PROBE: u64 = 64;

    /// Adds the cuts of the samples whose probes lie in `data` (stream offsets from `base`)
    /// to `cuts`; returns how much of `data` is decided (up to the first undecided sample).
    fn choose(&mut self, base: u64, data: &[u8], cuts: &mut Vec<u64>) -> usize {
        let held_end = base + data.len() as u64;
        while let Some(&start) = self.starts.get(self.next) {
            let end = self
                .starts
                .get(self.next + 1)
                .copied()
                .unwrap_or(self.stream_len);
            let probe_end = start + (end - start).min(Self::PROBE);
            if probe_end > held_end {
                return (start.max(base) - base) as usize;
            }
            let probe = &data[(start - base) as usize..(probe_end - base) as usize];
            if start > 0 && starts_chunk(probe, end - start, self.spacing) {
                cuts.push(start);
            }
            self.next += 1;
        }
        data.len()
    }
}

/// Whether a sample of `len` bytes starting with `probe` starts a chunk: with probability
/// `len / spacing` (always, for a sample at least `spacing` long).
fn starts_chunk(probe: &[u8], len: u64, spacing: u64) -> bool {
    // Keyed once: deriving the key per sample cost more than hashing the sample's probe.
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    let key = KEY.get_or_init(|| blake3::derive_key("dits 2026-11 sample cut", b""));
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(&len.to_le_bytes());
    h.update(probe);
    let draw = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"));
    u128::from(draw) * u128::from(spacing) < u128::from(len) << 64
}
