//! Reading byte ranges of Dits files, fetching only the chunks that cover them.
//!
//! A read maps its range to chunks through the file's manifest (its group objects are fetched
//! once; the chunks are not). Each chunk comes from, in order: a small in-memory cache of
//! verified chunks, a fetch already in flight (several readers of one chunk share one fetch),
//! the local store (verified on read), or an origin (local-path remote, Dits server), in
//! which case it is verified, kept in the on-disk cache and in memory.
//!
//! Sequential readers get readahead: once a handle has read [`SEQUENTIAL_AFTER`] bytes in a
//! row, the chunks ahead of it are fetched (or read and verified, if local) by background
//! workers, up to [`MAX_WINDOW`] ahead. A random reader never triggers it, so
//! it fetches only the chunks its reads touch.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};

use anyhow::{anyhow, Result};
use dits_core::manifest::ChunkRef;
use dits_core::rebuild::manifest_for;
use dits_core::source::ContentSource;
use dits_core::span_map::SpanMap;
use dits_core::store::{ChunkSource, DiskStore, StoreError};
use dits_core::transfer::manifest_from;
use dits_core::{ChunkId, FileId, Pointer};

use super::disk_cache::DiskCache;

/// Sequential bytes a handle must read before readahead starts: more than one random read
/// of a typical size (a player's seek reads a few hundred KiB), so random readers never pay
/// for readahead.
pub const SEQUENTIAL_AFTER: u64 = 4 << 20;
/// The largest readahead window (bytes ahead of the reader).
pub const MAX_WINDOW: u64 = 32 << 20;
/// Readahead is handed to workers in jobs of about this size (one request to a server).
const JOB_BYTES: u64 = 16 << 20;
/// Reads within this distance of where the last one ended still count as sequential (the
/// kernel issues readahead requests concurrently, so they arrive slightly out of order).
const SLACK: u64 = 2 << 20;
const WORKERS: usize = 4;
/// Fetched batches waiting for the cache writer.
const KEEP_QUEUE: usize = 16;
/// The cache writer commits (fsyncs) once per this many bytes, or when it runs out of work.
const KEEP_COMMIT: usize = 64 << 20;

/// Where a file's bytes are.
pub type Layout = SpanMap;

/// Per open file: how sequential its reads have been, and how far ahead work was scheduled.
#[derive(Debug, Default)]
pub struct Readahead {
    next: u64,
    run: u64,
    window: u64,
    scheduled_to: u64,
}

impl Readahead {
    /// Records a read of `offset..end`; returns the byte range to prefetch (maybe empty).
    fn advance(&mut self, offset: u64, end: u64) -> Range<u64> {
        let near = offset + SLACK >= self.next && offset <= self.next + SLACK;
        if near && self.run > 0 {
            self.run += end.saturating_sub(self.next.max(offset));
        } else {
            self.run = end - offset;
            self.window = 0;
            self.scheduled_to = 0;
        }
        self.next = self.next.max(end);
        if !near {
            self.next = end;
        }
        if self.run < SEQUENTIAL_AFTER {
            return 0..0;
        }
        self.window = (self.window * 2).clamp(JOB_BYTES, MAX_WINDOW);
        let from = self.scheduled_to.max(end);
        let to = end + self.window;
        if to < from + JOB_BYTES {
            // Top up in whole jobs, not a sliver per read.
            return 0..0;
        }
        self.scheduled_to = to;
        from..to
    }
}

/// Why a read failed, for the log; the filesystem answers EIO.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(String);

type Shared = Arc<Vec<u8>>;

/// What the cache writer is handed to store.
enum Kept {
    Chunks(Vec<(ChunkId, Shared)>),
    /// The group objects of a manifest from an origin: they go into the store proper (never
    /// evicted, like `git dits prune` keeps them). The top level is not kept: nothing has
    /// checked the file's content against its id (a checkout fetches it again, and checks).
    Groups(Vec<(ChunkId, Vec<u8>)>),
}

/// A fetch in progress that other readers can wait for.
struct Flight {
    result: Mutex<Option<Result<Shared, String>>>,
    done: Condvar,
}

/// Verified chunks in memory, least recently inserted dropped first.
struct Memory {
    map: HashMap<ChunkId, Shared>,
    order: VecDeque<ChunkId>,
    bytes: u64,
    limit: u64,
}

impl Memory {
    fn get(&self, id: &ChunkId) -> Option<Shared> {
        self.map.get(id).cloned()
    }

    fn insert(&mut self, id: ChunkId, data: Shared) {
        if self.map.contains_key(&id) {
            return;
        }
        self.bytes += data.len() as u64;
        self.map.insert(id, data);
        self.order.push_back(id);
        while self.bytes > self.limit {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(d) = self.map.remove(&old) {
                self.bytes -= d.len() as u64;
            }
        }
    }
}

/// Chunks moved from origins, for logs and the benchmark.
#[derive(Debug, Default)]
pub struct Counters {
    pub chunks_fetched: AtomicU64,
    pub bytes_fetched: AtomicU64,
}

pub struct Content {
    store: DiskStore,
    origins: Vec<Arc<dyn ContentSource>>,
    layouts: Mutex<HashMap<FileId, Arc<Layout>>>,
    memory: Mutex<Memory>,
    flights: Mutex<HashMap<ChunkId, Arc<Flight>>>,
    /// Fetched chunks on their way to the on-disk cache (see [`keep_on_disk`]).
    keep: Mutex<Option<mpsc::SyncSender<Kept>>>,
    keeper: Mutex<Option<std::thread::JoinHandle<()>>>,
    jobs: Mutex<Option<crossbeam_channel::Sender<Vec<ChunkRef>>>>,
    pub counters: Counters,
}

impl Content {
    pub fn new(
        store: DiskStore,
        origins: Vec<Arc<dyn ContentSource>>,
        cache: DiskCache,
        memory_limit: u64,
    ) -> Arc<Content> {
        let (tx, rx) = crossbeam_channel::unbounded::<Vec<ChunkRef>>();
        let (keep_tx, keep_rx) = mpsc::sync_channel(KEEP_QUEUE);
        let kept_in = store.clone();
        let keeper = std::thread::Builder::new()
            .name("dits-mount-cache".into())
            .spawn(move || keep_on_disk(&kept_in, cache, keep_rx))
            .map_err(|e| {
                tracing::warn!(
                    "cannot start the cache writer (fetched chunks stay in memory only): {e}"
                )
            })
            .ok();
        let content = Arc::new(Content {
            store,
            origins,
            layouts: Mutex::new(HashMap::new()),
            memory: Mutex::new(Memory {
                map: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
                limit: memory_limit,
            }),
            flights: Mutex::new(HashMap::new()),
            keep: Mutex::new(Some(keep_tx)),
            keeper: Mutex::new(keeper),
            jobs: Mutex::new(Some(tx)),
            counters: Counters::default(),
        });
        for i in 0..WORKERS {
            // Workers hold only a weak reference: the content (and its store) goes away when
            // the filesystem does, and the closed channel ends them.
            let weak = Arc::downgrade(&content);
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("dits-readahead-{i}"))
                .spawn(move || loop {
                    let job = rx.recv();
                    let (Ok(job), Some(content)) = (job, weak.upgrade()) else {
                        return;
                    };
                    content.prefetch(job);
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot start a readahead worker: {e}");
            }
        }
        content
    }

    /// Stops the readahead workers (they finish the job at hand) and waits for the cache
    /// writer to store what it was handed.
    pub fn shutdown(&self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.keep.lock().unwrap_or_else(|p| p.into_inner()).take();
        // What was fetched is kept before the process ends (the queue is short).
        let keeper = self.keeper.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(keeper) = keeper {
            if keeper.join().is_err() {
                tracing::warn!("the cache writer panicked; some fetched chunks were not kept");
            }
        }
    }

    /// Puts `len` bytes of file `id` (of `size` bytes) from `offset` into `out` (replacing
    /// what it held; shorter at the end of the file). The caller reuses `out` across reads:
    /// a fresh megabyte per read would cost page faults and zeroing at every request.
    pub fn read(
        &self,
        id: &FileId,
        size: u64,
        offset: u64,
        len: u64,
        readahead: &Mutex<Readahead>,
        out: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        out.clear();
        let end = offset.saturating_add(len).min(size);
        if offset >= end {
            return Ok(());
        }
        let layout = self
            .layout(&Pointer::new(*id, size))
            .map_err(|e| ReadError(format!("{e:#}")))?;
        let total = layout.size();
        if total != size {
            // A pointer edited by hand: the content under this id has another size.
            return Err(ReadError(format!(
                "file {id}: the pointer says {size} bytes, its manifest {total}; hint: `git dits fsck` on this commit"
            )));
        }
        let span = layout.covering(offset, end);
        let ahead = readahead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .advance(offset, end);
        if !ahead.is_empty() {
            self.schedule(&layout, ahead.start, ahead.end.min(size));
        }
        // Everything this read needs that is neither local nor on its way is fetched in one
        // request, from this thread.
        let missing: Vec<ChunkRef> = layout
            .chunks(span.clone())
            .into_iter()
            .filter(|c| !self.available(&c.id))
            .collect();
        let claimed = self.claim(&missing);
        if !claimed.is_empty() {
            self.fetch(&claimed)
                .map_err(|e| ReadError(format!("file {id}: {e:#}")))?;
        }
        out.reserve((end - offset) as usize);
        for i in span {
            let s = layout.span(i);
            let data = self
                .chunk(&s.chunk)
                .map_err(|e| ReadError(format!("file {id}, chunk {}: {e:#}", s.chunk.id)))?;
            let start = layout.start(i);
            let from = (offset.max(start) - start) as usize + s.start as usize;
            let to = (end.min(layout.end(i)) - start) as usize + s.start as usize;
            let bytes = data.get(from..to).ok_or_else(|| {
                ReadError(format!(
                    "file {id}: chunk {} is shorter than its manifest says; hint: `git dits fsck` in the repository",
                    s.chunk.id
                ))
            })?;
            out.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Hands `what` to the cache writer. Waits only if the disk is far behind the network
    /// (the queue is bounded).
    fn keep(&self, what: Kept) {
        if let Some(keep) = self.keep.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = keep.send(what);
        }
    }

    /// The file's chunk layout: from the local manifest, or the first origin that has it.
    fn layout(&self, pointer: &Pointer) -> Result<Arc<Layout>> {
        let id = &pointer.id;
        if let Some(l) = self
            .layouts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            return Ok(Arc::clone(l));
        }
        let manifest = match manifest_for(&self.store, pointer) {
            Ok(m) => m,
            Err(local @ StoreError::SizeMismatch { .. }) => return Err(local.into()),
            Err(local) => {
                let mut reasons = vec![format!("not in the local store ({local})")];
                let mut found = None;
                for origin in &self.origins {
                    match manifest_from(origin.as_ref(), pointer, &self.store) {
                        Ok((m, groups)) => {
                            // Kept off the read path: the first byte should not wait for
                            // an fsync.
                            self.keep(Kept::Groups(groups));
                            found = Some(m);
                            break;
                        }
                        Err(e) => reasons.push(e.to_string()),
                    }
                }
                found.ok_or_else(|| {
                    anyhow!(
                        "the manifest of file {id} is unavailable: {}; hint: check `git dits env` for the Dits server, then `git dits fetch`",
                        reasons.join("; ")
                    )
                })?
            }
        };
        let layout = Arc::new(Layout::of(&manifest));
        self.layouts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(*id, Arc::clone(&layout));
        Ok(layout)
    }

    fn available(&self, id: &ChunkId) -> bool {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .contains_key(id)
            || self
                .flights
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(id)
            || self.store.has_chunk(id)
    }

    /// Registers flights for the chunks of `wanted` nobody is fetching yet; returns those.
    fn claim(&self, wanted: &[ChunkRef]) -> Vec<ChunkRef> {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for c in wanted {
            // Also skips a chunk listed twice: its flight was inserted the first time.
            if flights.contains_key(&c.id) {
                continue;
            }
            flights.insert(
                c.id,
                Arc::new(Flight {
                    result: Mutex::new(None),
                    done: Condvar::new(),
                }),
            );
            out.push(*c);
        }
        out
    }

    /// Fetches claimed chunks from the first origin that delivers them, stores them, and
    /// completes their flights (with the error if every origin failed). Returns their bytes
    /// in order.
    fn fetch(&self, claimed: &[ChunkRef]) -> Result<Vec<Shared>> {
        let wanted: Vec<ChunkRef> = claimed.to_vec();
        let mut reasons = Vec::new();
        let mut got = None;
        for origin in &self.origins {
            let mut data = Vec::with_capacity(wanted.len());
            let fetched = origin.chunks(&wanted, &mut |batch| {
                data.extend(batch.into_iter().map(|(_, d)| d));
                Ok(())
            });
            match fetched {
                Ok(()) if data.len() == wanted.len() => {
                    got = Some(data);
                    break;
                }
                Ok(()) => reasons.push(format!("{}: answered short", origin.describe())),
                Err(e) => reasons.push(e.to_string()),
            }
        }
        let result = match got {
            Some(data) => {
                let data: Vec<Shared> = data.into_iter().map(Arc::new).collect();
                let bytes: u64 = data.iter().map(|d| d.len() as u64).sum();
                self.counters
                    .chunks_fetched
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                self.counters
                    .bytes_fetched
                    .fetch_add(bytes, Ordering::Relaxed);
                tracing::info!("fetched chunks={} bytes={bytes}", data.len());
                let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
                for (c, d) in wanted.iter().zip(&data) {
                    memory.insert(c.id, Arc::clone(d));
                }
                drop(memory);
                let batch = wanted
                    .iter()
                    .zip(&data)
                    .map(|(c, d)| (c.id, Arc::clone(d)))
                    .collect();
                self.keep(Kept::Chunks(batch));
                Ok(data)
            }
            None if self.origins.is_empty() => Err(
                "not in the local store and no Dits server is configured; hint: set dits.url or add a dits:// remote".to_owned(),
            ),
            None => Err(reasons.join("; ")),
        };
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        for (i, c) in claimed.iter().enumerate() {
            if let Some(flight) = flights.remove(&c.id) {
                let r = match &result {
                    Ok(data) => Ok(Arc::clone(&data[i])),
                    Err(e) => Err(e.clone()),
                };
                *flight.result.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                flight.done.notify_all();
            }
        }
        result.map_err(|e| anyhow!(e))
    }

    /// One verified chunk: memory, a flight, the local store, or (if a flight this read
    /// waited for failed, say a readahead request that a bad chunk spoiled) a fetch of its own.
    fn chunk(&self, c: &ChunkRef) -> Result<Shared> {
        if let Some(d) = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&c.id)
        {
            return Ok(d);
        }
        let flight = self
            .flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&c.id)
            .cloned();
        if let Some(flight) = flight {
            let mut result = flight.result.lock().unwrap_or_else(|p| p.into_inner());
            while result.is_none() {
                result = flight.done.wait(result).unwrap_or_else(|p| p.into_inner());
            }
            if let Some(Ok(d)) = result.as_ref() {
                return Ok(Arc::clone(d));
            }
        }
        if self.store.has_chunk(&c.id) {
            match self.store.read_chunk(&c.id) {
                Ok(data) => {
                    let data: Shared = Arc::new(data);
                    self.memory
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(c.id, Arc::clone(&data));
                    return Ok(data);
                }
                // A damaged local copy, or a cache pack evicted since the index said it
                // was here: the origins still have it.
                Err(e) => tracing::warn!(
                    "the local copy of chunk {} is unreadable ({e}); fetching it again (`git dits fsck --repair` drops damaged copies)",
                    c.id
                ),
            }
        }
        let claimed = self.claim(std::slice::from_ref(c));
        if claimed.is_empty() {
            // Someone else started fetching it just now: wait for theirs.
            return self.chunk(c);
        }
        self.fetch(&claimed)?
            .pop()
            .ok_or_else(|| anyhow!("chunk {} was fetched but not returned", c.id))
    }

    /// Queues readahead jobs for `from..to` of the file.
    fn schedule(&self, layout: &Layout, from: u64, to: u64) {
        if from >= to {
            return;
        }
        let span = layout.covering(from, to);
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = jobs.as_ref() else { return };
        let mut job = Vec::new();
        let mut bytes = 0;
        for c in layout.chunks(span) {
            job.push(c);
            bytes += u64::from(c.len);
            if bytes >= JOB_BYTES {
                let _ = tx.send(std::mem::take(&mut job));
                bytes = 0;
            }
        }
        if !job.is_empty() {
            let _ = tx.send(job);
        }
    }

    /// A worker's job: chunks not yet in memory are fetched if missing locally, else read
    /// and verified, so the reader finds them ready.
    fn prefetch(&self, job: Vec<ChunkRef>) {
        let todo: Vec<ChunkRef> = job
            .into_iter()
            .filter(|c| {
                !self
                    .memory
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .map
                    .contains_key(&c.id)
            })
            .collect();
        let (local, missing): (Vec<ChunkRef>, Vec<ChunkRef>) =
            todo.into_iter().partition(|c| self.store.has_chunk(&c.id));
        let claimed = self.claim(&missing);
        if !claimed.is_empty() {
            if let Err(e) = self.fetch(&claimed) {
                tracing::debug!("readahead fetch failed (a read will retry): {e:#}");
            }
        }
        for c in local {
            if let Err(e) = self.chunk(&c) {
                tracing::debug!("readahead of chunk {} failed: {e:#}", c.id);
            }
        }
    }
}

/// The cache writer: stores fetched chunks off the read path, committing (one fsync) per
/// [`KEEP_COMMIT`] bytes or whenever the queue runs dry, so readers never wait for the disk.
fn keep_on_disk(store: &DiskStore, mut cache: DiskCache, rx: mpsc::Receiver<Kept>) {
    let mut pending = rx.recv().ok();
    while let Some(first) = pending.take() {
        let mut batch = match first {
            Kept::Chunks(chunks) => chunks,
            Kept::Groups(groups) => {
                let stored = store.writer().and_then(|mut w| {
                    use dits_core::store::ChunkSink;
                    for (id, g) in &groups {
                        w.put_chunk(*id, g)?;
                    }
                    w.commit()
                });
                if let Err(e) = stored {
                    tracing::warn!("cannot keep a manifest's group objects: {e}");
                }
                pending = rx.recv().ok();
                continue;
            }
        };
        let mut bytes: usize = batch.iter().map(|(_, d)| d.len()).sum();
        while bytes < KEEP_COMMIT {
            match rx.try_recv() {
                Ok(Kept::Chunks(more)) => {
                    bytes += more.iter().map(|(_, d)| d.len()).sum::<usize>();
                    batch.extend(more);
                }
                Ok(groups) => {
                    // Handled next, after these chunks.
                    pending = Some(groups);
                    break;
                }
                Err(_) => break,
            }
        }
        let pairs: Vec<(ChunkId, &[u8])> =
            batch.iter().map(|(id, d)| (*id, d.as_slice())).collect();
        if let Err(e) = cache.put(&pairs) {
            // Still served from memory; a later read fetches them again.
            tracing::warn!("cannot keep fetched chunks in the local store: {e:#}");
        }
        if pending.is_none() {
            pending = rx.recv().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_reads_never_schedule_readahead() {
        let mut ra = Readahead::default();
        for i in 0..100u64 {
            // 1 MiB reads at scattered offsets.
            let offset = (i * 7919 % 1000) << 20;
            assert!(ra.advance(offset, offset + (1 << 20)).is_empty());
        }
    }

    #[test]
    fn sequential_reads_ramp_up_and_schedule_each_range_once() {
        let mut ra = Readahead::default();
        let step = 128 << 10;
        let mut scheduled: Vec<Range<u64>> = Vec::new();
        let mut offset = 0;
        while offset < (256 << 20) {
            let r = ra.advance(offset, offset + step);
            if !r.is_empty() {
                scheduled.push(r);
            }
            offset += step;
        }
        assert!(scheduled[0].start >= SEQUENTIAL_AFTER, "{scheduled:?}");
        for pair in scheduled.windows(2) {
            assert!(pair[0].end <= pair[1].start, "overlap: {pair:?}");
        }
        let widest = scheduled.iter().map(|r| r.end - r.start).max().unwrap_or(0);
        assert!(widest <= MAX_WINDOW, "{widest}");
        let last = scheduled.last().map_or(0, |r| r.end);
        assert!(
            last >= 256 << 20,
            "readahead keeps ahead of the reader: {last}"
        );
    }
}
