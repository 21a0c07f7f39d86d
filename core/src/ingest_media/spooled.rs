//! Video-aware clean of a seekable file (a spool of git's stream): each stream is gathered
//! from the file's ranges in turn and chunked through the plain pipeline.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::mpsc;

use super::cutter::{stream_params, Cutter};
use super::{read_full, Streams};
use crate::chunker::{Block, BlockSource, ChunkerParams, BLOCK_SIZE};
use crate::id::FileId;
use crate::ingest::{pipeline, IngestError};
use crate::media::{FileLayout, StreamPlan};
use crate::progress::Progress;
use crate::store::ChunkSink;

/// Bytes read from the input per write to the spool file.
const SPOOL_BUFFER: usize = 1 << 20;

/// Copies `reader` into `file` and hashes it, the hash on a second thread: hashing and
/// writing each cost about as much as the other, and git is still sending meanwhile.
pub(super) fn spool<R: Read>(
    reader: &mut R,
    file: &mut File,
) -> Result<(u64, FileId), IngestError> {
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

/// Chunks every stream of `layout` out of `file`; the chunks of each, in order, and the
/// totals of new chunks and stored bytes.
pub(super) fn chunk_streams<S: ChunkSink>(
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
        let mut blocks = StreamBlocks::new(file, ranges, plan, stream_params(plan, params));
        let chunked = pipeline(&mut blocks, false, sink, progress)?;
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

/// One stream of a media file as blocks of whole chunks, its bytes gathered from the file's
/// ranges in order.
struct StreamBlocks<'a> {
    file: &'a File,
    ranges: std::vec::IntoIter<(u64, u64)>,
    current: Option<(u64, u64)>,
    cutter: Cutter<'a>,
    /// At least two maximal chunks, so a block that is not the last always holds a cut.
    block_size: usize,
    carry: Vec<u8>,
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
            cutter: Cutter::new(plan, params),
            block_size: BLOCK_SIZE.max(2 * params.max as usize),
            carry: Vec::new(),
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
        block.data.append(&mut self.carry);
        let want = self.block_size.saturating_sub(block.data.len());
        self.fill(&mut block.data, want)?;
        self.cutter.cut(block, self.eof, &mut self.carry);
        Ok(!block.ends.is_empty())
    }

    fn total(&self) -> u64 {
        self.total
    }
}
