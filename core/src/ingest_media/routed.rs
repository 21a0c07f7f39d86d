//! Video-aware clean of a stream in file order whose layout is known before its bytes arrive
//! (predicted from the work-tree file git is cleaning): each byte goes to its stream as it
//! arrives, so chunking runs while git is still sending, and nothing is spooled.
//!
//! The layout only decides which stream a byte goes to; whatever arrives is stored exactly,
//! because the runs record where each byte went. At the end the layout is derived again from
//! the container bytes that did arrive: if it is the predicted one, the file is described
//! as media; if not (the file changed while git read it), it is stored all the same, without
//! a description.

use std::io::Read;
use std::sync::mpsc;

use super::cutter::{stream_params, Cutter};
use super::{read_full, Streams};
use crate::chunker::{Block, ChunkerParams, BLOCK_SIZE};
use crate::id::FileId;
use crate::ingest::{store_block, IngestError};
use crate::media::layout::CONTAINER;
use crate::media::{analyze, FileLayout, MediaInfo, Run};
use crate::progress::Progress;
use crate::store::{ChunkSink, StoreError};

/// Container bytes kept to check the layout at the end (a `moov` is a few MiB for hours).
const CAPTURE_LIMIT: usize = 64 << 20;
/// Messages in flight to the worker.
const IN_FLIGHT: usize = 4;
/// A non-video stream's bytes are cut once this many have gathered (video: a whole block).
const SMALL_STREAM_BLOCK: usize = 1 << 20;

/// What a routed clean made.
pub(super) struct Routed {
    pub streams: Streams,
    pub runs: Vec<Run>,
    pub file_id: FileId,
    pub len: u64,
    pub new_chunks: u64,
    pub stored: u64,
    /// The description, when the content turned out to have the predicted layout.
    pub info: Option<MediaInfo>,
}

enum Work {
    /// Input in file order, for the file id.
    Raw(Vec<u8>),
    /// Whole chunks of one stream.
    Chunks(usize, Block),
}

pub(super) fn route<R: Read, S: ChunkSink>(
    mut reader: R,
    plan: &FileLayout,
    params: ChunkerParams,
    sink: &mut S,
    progress: &dyn Progress,
) -> Result<Routed, IngestError> {
    let n_streams = plan.streams.len();
    let (tx, rx) = mpsc::sync_channel::<Work>(IN_FLIGHT);
    let (raw_back, raw_free) = mpsc::channel::<Vec<u8>>();
    let (block_back, block_free) = mpsc::channel::<Block>();
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || -> Result<_, StoreError> {
            let mut refs: Streams = vec![Vec::new(); n_streams];
            let mut hasher = blake3::Hasher::new();
            let (mut new_chunks, mut stored) = (0u64, 0u64);
            for work in rx {
                match work {
                    Work::Raw(buf) => {
                        hasher.update(&buf);
                        // The router may have finished; then the buffer is simply freed.
                        let _ = raw_back.send(buf);
                    }
                    Work::Chunks(stream, block) => {
                        let (n, bytes) = store_block(&block, sink, &mut refs[stream])?;
                        new_chunks += n;
                        stored += bytes;
                        let _ = block_back.send(block);
                    }
                }
            }
            Ok((
                refs,
                FileId(*hasher.finalize().as_bytes()),
                new_chunks,
                stored,
            ))
        });

        let mut router = Router {
            plan,
            cutters: plan
                .streams
                .iter()
                .map(|p| Cutter::new(p, stream_params(p, params)))
                .collect(),
            flush_at: plan
                .streams
                .iter()
                .map(|p| {
                    let size = if p.video {
                        BLOCK_SIZE
                    } else {
                        SMALL_STREAM_BLOCK
                    };
                    size.max(2 * stream_params(p, params).max as usize)
                })
                .collect(),
            pending: (0..n_streams).map(|_| Block::default()).collect(),
            runs: Vec::new(),
            next_run: 0,
            used: 0,
            pos: 0,
            capture: Some(Vec::new()),
        };
        let mut failure = None;
        loop {
            if progress.interrupted() {
                failure = Some(IngestError::Store(StoreError::Interrupted));
                break;
            }
            let mut raw = raw_free.try_recv().unwrap_or_default();
            raw.resize(BLOCK_SIZE, 0);
            let n = match read_full(&mut reader, &mut raw) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    failure = Some(IngestError::Read(e));
                    break;
                }
            };
            raw.truncate(n);
            let sent = router.take(&raw, &tx, &block_free);
            progress.inc(n as u64);
            if !sent || tx.send(Work::Raw(raw)).is_err() {
                break; // the worker stopped on an error, reported below
            }
        }
        if failure.is_none() {
            for stream in 0..n_streams {
                if !router.flush(stream, true, &tx, &block_free) {
                    break;
                }
            }
        }
        drop(tx);
        let (streams, file_id, new_chunks, stored) = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        if let Some(e) = failure {
            return Err(e);
        }
        let info = router.verified(params.min);
        Ok(Routed {
            streams,
            runs: router.runs,
            file_id,
            len: router.pos,
            new_chunks,
            stored,
            info,
        })
    })
}

struct Router<'a> {
    plan: &'a FileLayout,
    cutters: Vec<Cutter<'a>>,
    /// Per stream: cut its pending bytes once this many have gathered.
    flush_at: Vec<usize>,
    pending: Vec<Block>,
    /// Where each byte actually went, in file order.
    runs: Vec<Run>,
    /// The planned run being filled, and how much of it is filled.
    next_run: usize,
    used: u64,
    /// Bytes taken so far.
    pos: u64,
    /// The container stream's bytes so far, while under [`CAPTURE_LIMIT`].
    capture: Option<Vec<u8>>,
}

impl Router<'_> {
    /// Routes `data`, the next bytes of the file; `false` once the worker has stopped.
    fn take(
        &mut self,
        mut data: &[u8],
        tx: &mpsc::SyncSender<Work>,
        free: &mpsc::Receiver<Block>,
    ) -> bool {
        while !data.is_empty() {
            // Past the planned end (the content is longer than predicted): container bytes.
            let (stream, left) = match self.plan.runs.get(self.next_run) {
                Some(r) => (r.stream, r.len - self.used),
                None => (CONTAINER, u64::MAX),
            };
            let n = left.min(data.len() as u64) as usize;
            let (bytes, rest) = data.split_at(n);
            self.pending[stream].data.extend_from_slice(bytes);
            if stream == CONTAINER {
                if let Some(c) = &mut self.capture {
                    if c.len() + n > CAPTURE_LIMIT {
                        self.capture = None;
                    } else {
                        c.extend_from_slice(bytes);
                    }
                }
            }
            match self.runs.last_mut() {
                Some(r) if r.stream == stream => r.len += n as u64,
                _ => self.runs.push(Run {
                    stream,
                    offset: self.pos,
                    len: n as u64,
                }),
            }
            self.pos += n as u64;
            self.used += n as u64;
            if self.next_run < self.plan.runs.len()
                && self.used == self.plan.runs[self.next_run].len
            {
                self.next_run += 1;
                self.used = 0;
            }
            data = rest;
            if self.pending[stream].data.len() >= self.flush_at[stream]
                && !self.flush(stream, false, tx, free)
            {
                return false;
            }
        }
        true
    }

    /// Cuts a stream's pending bytes and sends the whole chunks; the rest waits (at `eof`,
    /// nothing waits). `false` once the worker has stopped.
    fn flush(
        &mut self,
        stream: usize,
        eof: bool,
        tx: &mpsc::SyncSender<Work>,
        free: &mpsc::Receiver<Block>,
    ) -> bool {
        let mut next = free.try_recv().unwrap_or_default();
        next.data.clear();
        next.ends.clear();
        let mut block = std::mem::replace(&mut self.pending[stream], next);
        self.cutters[stream].cut(&mut block, eof, &mut self.pending[stream].data);
        block.ends.is_empty() || tx.send(Work::Chunks(stream, block)).is_ok()
    }

    /// The media description, if the container bytes that arrived lay the file out exactly
    /// as predicted (then the streams were cut just as a spooled clean would cut them).
    fn verified(&self, min_chunk: u32) -> Option<MediaInfo> {
        let capture = self.capture.as_ref()?;
        // Container runs: file offset, length, offset in `capture`.
        let mut container = Vec::new();
        let mut at = 0u64;
        for r in self.runs.iter().filter(|r| r.stream == CONTAINER) {
            container.push((r.offset, r.len, at));
            at += r.len;
        }
        // Sample bytes read as zeros: the box walk reads up to 32 bytes at a box start, past
        // a short header into the samples, but uses only the header, which is container.
        let read_at = |offset: u64, buf: &mut [u8]| -> std::io::Result<()> {
            if offset + buf.len() as u64 > self.pos {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.fill(0);
            let end = offset + buf.len() as u64;
            let first = container.partition_point(|&(o, l, _)| o + l <= offset);
            for &(o, l, c) in container[first..].iter().take_while(|&&(o, _, _)| o < end) {
                let from = o.max(offset);
                let to = (o + l).min(end);
                let src = (c + from - o) as usize..(c + to - o) as usize;
                buf[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&capture[src]);
            }
            Ok(())
        };
        match analyze(read_at, self.pos, u64::from(min_chunk)) {
            Ok(l) if l.runs == self.runs && l.streams == self.plan.streams => Some(l.info),
            Ok(_) => {
                tracing::debug!("the content's layout differs from the work tree's; stored without a media description");
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "the content's layout differs from the work tree's; stored without a media description");
                None
            }
        }
    }
}
