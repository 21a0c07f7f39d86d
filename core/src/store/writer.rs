//! Appending chunks to a pack of one's own, and publishing them.
//!
//! A `commit` writes the records put since the last one into the pack file (not merely a
//! buffer) before it returns, so a killed process never loses a committed record: readers of
//! other processes find records past the index by walking the pack (`packs.rs`). A checkpoint
//! then makes them durable and indexes them: the pack data is flushed first, then the index
//! that lists it is written to a temp file, flushed and renamed into place (then the directory
//! is flushed). `dits.fsync` says how often: at every commit (`always`), or once a batch of
//! commits is big or old enough and when the store is closed (`batch`, `never`; see
//! [`Fsync`]). A crash before a checkpoint leaves records no index lists; the walk finds
//! those that are whole and verify.
//!
//! A failed write (a full disk, an I/O error) must leave the writer as if the records since
//! the last commit had never been put, in a process that keeps running: records are written
//! at explicit offsets (never at the file's cursor, which a short write leaves anywhere), and
//! a pack that saw an error is retired. Its published prefix stays readable; nothing more is
//! appended to it, and it is never handed to another writer.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::compress::Compressor;
use super::format::{self, IdxEntry, PackIndex, RecordHeader, FLAG_ZSTD};
use super::fsio;
use super::{ChunkSink, DiskStore, Fsync, StoreError, BATCH_AGE, BATCH_BYTES};
use crate::id::ChunkId;
use crate::manifest::Manifest;

/// Records are gathered in memory up to this size before a `write` call.
const WRITE_BUFFER: usize = 1 << 20;
/// Writeback of written data is started every this many bytes, so the fsync in `commit` waits
/// for the last few megabytes rather than a whole gigabyte (cp does not fsync at all; we must).
const WRITEBACK_STEP: u64 = 8 << 20;

pub(crate) struct OpenPack {
    name: String,
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    /// Bytes of the pack including `buf`.
    len: u64,
    /// Bytes of the pack written to the file (`len` minus `buf`).
    written: u64,
    /// Records (and bytes) committed: written to the file and visible to readers.
    committed: usize,
    committed_len: u64,
    /// Records (and bytes) listed by the published index: flushed as `dits.fsync` says.
    indexed: usize,
    indexed_len: u64,
    /// When the oldest commit not yet in the index was made.
    batch_started: Option<Instant>,
    /// Bytes up to which writeback has been started.
    writeback_started: u64,
    entries: Vec<IdxEntry>,
    ids: HashSet<ChunkId>,
}

impl OpenPack {
    fn create(store: &DiskStore) -> Result<OpenPack, StoreError> {
        let name = fsio::unique_name("pack-");
        let path = store.packs_dir().join(format!("{name}.pack"));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        let header = format::pack_header();
        if let Err(e) = file.write_all(&header) {
            let _ = fs::remove_file(&path);
            return Err(StoreError::io(&path, e));
        }
        Ok(OpenPack {
            name,
            path,
            file,
            buf: Vec::with_capacity(WRITE_BUFFER),
            len: header.len() as u64,
            written: header.len() as u64,
            committed: 0,
            committed_len: header.len() as u64,
            indexed: 0,
            indexed_len: header.len() as u64,
            batch_started: None,
            writeback_started: 0,
            entries: Vec::new(),
            ids: HashSet::new(),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Flushes the committed records as `fsync` says, then writes the index that lists them.
    /// Returns whether a new index was written (the caller then publishes it in its registry).
    /// `unflushed` is cleared when a filesystem-wide flush covered everything written so far.
    pub(crate) fn checkpoint(
        &mut self,
        fsync: Fsync,
        unflushed: &AtomicBool,
    ) -> Result<bool, StoreError> {
        if self.indexed == self.committed {
            return Ok(false);
        }
        match fsync {
            Fsync::Always => self
                .file
                .sync_data()
                .map_err(|e| StoreError::io(&self.path, e))?,
            Fsync::Batch => {
                // One flush for the pack and every manifest written with it, instead of one
                // per file: this is what makes many small files cheap.
                unflushed.store(false, std::sync::atomic::Ordering::Release);
                fsio::sync_filesystem(&self.path)
                    .inspect_err(|_| unflushed.store(true, std::sync::atomic::Ordering::Release))?;
            }
            Fsync::Never => {}
        }
        let mut listed = self.entries[..self.committed].to_vec();
        let bytes = PackIndex::encode(&mut listed, self.committed_len);
        let idx_path = self.path.with_extension("idx");
        // The index is flushed whenever the records are: a lost index only costs a walk of
        // the pack, but a torn one would hide its records until `fsck --repair`.
        fsio::replace_file_with(&idx_path, &bytes, fsync != Fsync::Never)?;
        self.indexed = self.committed;
        self.indexed_len = self.committed_len;
        self.batch_started = None;
        Ok(true)
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.file
            .write_all_at(&self.buf, self.written)
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        if self.len - self.writeback_started >= WRITEBACK_STEP {
            super::fsio::start_writeback(&self.file, self.writeback_started, self.len);
            self.writeback_started = self.len;
        }
        Ok(())
    }
}

pub struct PackWriter {
    store: DiskStore,
    compressor: Option<Compressor>,
    open: Option<OpenPack>,
    /// Writes into a pack of its own even what the store already holds (copying records
    /// out of a pack about to be deleted); never shares its pack.
    isolated: bool,
}

impl PackWriter {
    pub(crate) fn new(store: &DiskStore) -> Result<Self, StoreError> {
        // Dedup against what other processes published since the store was opened.
        store.refresh()?;
        Self::with(store, store.take_spare(), false)
    }

    /// A writer with packs of its own (never shared, no dedup against the store): for
    /// [`DiskStore::rewrite_pack`], and for caches that later drop their packs whole (the
    /// mount's fetched chunks), which must hold nothing else.
    pub fn isolated(store: &DiskStore) -> Result<Self, StoreError> {
        Self::with(store, None, true)
    }

    /// The name of the pack being written (as [`DiskStore::delete_pack`] takes it), if any.
    pub fn pack_name(&self) -> Option<&str> {
        self.open.as_ref().map(|p| p.name.as_str())
    }

    fn with(store: &DiskStore, open: Option<OpenPack>, isolated: bool) -> Result<Self, StoreError> {
        let level = store.options().compression_level;
        let kept = store
            .inner
            .spare_compressor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let compressor = match kept {
            Some(c) => Some(c),
            None if level > 0 => {
                Some(Compressor::new(level).map_err(|e| StoreError::io(store.root(), e))?)
            }
            None => None,
        };
        Ok(PackWriter {
            store: store.clone(),
            compressor,
            open,
            isolated,
        })
    }
}

impl PackWriter {
    /// Appends one record to the open pack (opening one if needed); publishes the pack when
    /// it reaches the size limit.
    fn append(&mut self, id: ChunkId, data: &[u8]) -> Result<u64, StoreError> {
        let compressed = match &mut self.compressor {
            Some(c) => c
                .compress(data)
                .map_err(|e| StoreError::io(self.store.root(), e))?,
            None => None,
        };
        let (payload, flags) = match &compressed {
            Some(c) => (c.as_slice(), FLAG_ZSTD),
            None => (data, 0),
        };
        let raw_len = u32::try_from(data.len()).expect("chunks are at most 16 MiB");
        let stored_len = u32::try_from(payload.len()).expect("compressed chunks are smaller");
        if self.open.is_none() {
            self.open = Some(OpenPack::create(&self.store)?);
        }
        let pack = self.open.as_mut().expect("just opened");
        let header = RecordHeader {
            id,
            flags,
            raw_len,
            stored_len,
        };
        pack.entries.push(IdxEntry {
            id,
            offset: pack.len,
            raw_len,
            stored_len,
            flags,
        });
        pack.ids.insert(id);
        pack.buf.extend_from_slice(&header.encode());
        pack.buf.extend_from_slice(payload);
        let added = (format::RECORD_HEADER_LEN + payload.len()) as u64;
        pack.len += added;
        if pack.buf.len() >= WRITE_BUFFER {
            pack.flush()?;
        }
        if pack.len >= self.store.options().pack_size_limit {
            // Index the full pack and start a new one with the next chunk.
            self.make_visible()?;
            self.checkpoint(true)?;
            self.open = None;
        }
        Ok(added)
    }

    /// Writes the records put since the last commit into the pack file and makes them visible
    /// to readers of this process (other processes find them by walking the pack).
    fn make_visible(&mut self) -> Result<(), StoreError> {
        let Some(pack) = self.open.as_mut() else {
            return Ok(());
        };
        if pack.entries.len() == pack.committed {
            return Ok(());
        }
        pack.flush()?;
        self.store.inner.packs.note_written(
            &pack.name,
            &pack.path,
            &pack.entries[pack.committed..],
            pack.len,
        )?;
        pack.committed = pack.entries.len();
        pack.committed_len = pack.len;
        pack.batch_started.get_or_insert_with(Instant::now);
        if self.store.options().fsync != Fsync::Always {
            self.store.mark_unflushed();
        }
        Ok(())
    }

    /// Checkpoints the open pack (see [`OpenPack::checkpoint`]) if `now`, or if the batch
    /// is due; an isolated writer is always flushed at once (it replaces or caches packs).
    fn checkpoint(&mut self, now: bool) -> Result<(), StoreError> {
        let fsync = if self.isolated {
            Fsync::Always
        } else {
            self.store.options().fsync
        };
        let Some(pack) = self.open.as_mut() else {
            return Ok(());
        };
        let due = now
            || fsync == Fsync::Always
            || pack.committed_len - pack.indexed_len >= BATCH_BYTES
            || pack.batch_started.is_some_and(|t| t.elapsed() >= BATCH_AGE);
        if due {
            self.store.checkpoint(pack, fsync)?;
        }
        Ok(())
    }

    /// After a failed write: forgets what was put since the last commit and retires the open
    /// pack. Its published part stays valid; bytes past it are ignored by readers, and after
    /// a failed fsync the kernel may no longer say which of them reached the disk, so the
    /// pack is never appended to again. The next record starts a new pack.
    fn retire(&mut self) {
        self.rollback();
        if let Some(pack) = self.open.take() {
            if pack.committed == 0 {
                let _ = fs::remove_file(&pack.path);
            }
        }
    }
}

impl ChunkSink for PackWriter {
    /// Dedup: a chunk is skipped only if it is in this writer's pack, in an index, or
    /// committed by this process; a record merely walked in another process's pack may still
    /// be rolled back by its writer (see `packs.rs`).
    fn has_chunk(&self, id: &ChunkId) -> bool {
        self.open.as_ref().is_some_and(|p| p.ids.contains(id))
            || (!self.isolated && self.store.inner.packs.holds(id))
    }

    fn put_chunk(&mut self, id: ChunkId, data: &[u8]) -> Result<u64, StoreError> {
        if ChunkSink::has_chunk(self, &id) {
            return Ok(0);
        }
        self.append(id, data).inspect_err(|_| self.retire())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.make_visible()
            .and_then(|()| self.checkpoint(false))
            .inspect_err(|_| self.retire())
    }

    fn rollback(&mut self) {
        let Some(pack) = self.open.as_mut() else {
            return;
        };
        for e in pack.entries.drain(pack.committed..) {
            pack.ids.remove(&e.id);
        }
        pack.buf.clear();
        pack.len = pack.committed_len;
        pack.written = pack.committed_len;
        pack.writeback_started = pack.writeback_started.min(pack.committed_len);
        // Trimming is tidiness, not safety: untrimmed bytes are past the index and ignored,
        // and the next record is written at `len` whatever the file's size.
        let _ = pack.file.set_len(pack.committed_len);
    }

    fn put_manifest(&mut self, manifest: &Manifest) -> Result<(), StoreError> {
        // Groups are chunk-store objects: stored (deduplicated) and made durable before the
        // top level that names them, as chunks are before a manifest.
        let encoded = manifest.encode();
        for (id, bytes) in &encoded.groups {
            self.put_chunk(*id, bytes)?;
        }
        self.commit()?;
        self.store
            .write_manifest_top(&manifest.file_id, &encoded.top)
    }
}

impl Drop for PackWriter {
    fn drop(&mut self) {
        self.rollback();
        if let Some(c) = self.compressor.take() {
            *self
                .store
                .inner
                .spare_compressor
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(c);
        }
        let Some(mut pack) = self.open.take() else {
            return;
        };
        if pack.committed == 0 {
            let _ = fs::remove_file(&pack.path);
        } else if pack.len < self.store.options().pack_size_limit && !self.isolated {
            // Another writer of this process continues the pack and its batch; if one is
            // kept already, this one is indexed and closed.
            self.store.offer_spare(pack);
        } else {
            // Its records are written; only the index would be late, and walking finds them.
            if let Err(e) = self.store.checkpoint(&mut pack, self.store.options().fsync) {
                tracing::error!("indexing a finished pack: {e}");
            }
        }
    }
}
