//! The on-disk store under `<git common dir>/dits/`:
//!
//! ```text
//! format                    "dits-store 1"
//! packs/pack-<16 hex>.pack  append-only chunk records
//! packs/pack-<16 hex>.idx   durable records of that pack, published by atomic rename
//! manifests/<2 hex>/<62 hex> one manifest per file id, written once
//! tmp/                      scratch space (same filesystem, so renames are atomic)
//! ```
//! Writers never share a pack: each [`PackWriter`] appends to its own, so any number of
//! processes (git may run several filters; two worktrees may `git add` at once) write without
//! locks. Readers trust what an index lists, and records past it only once they verify.
//!
//! A [`DiskStore`] is a handle: cloning it is cheap and every clone sees the same packs, so a
//! writer, a background thread or a long-lived mount holds one without borrowing. The rest of
//! the store is split by concern: `packs.rs` (which packs exist, finding a chunk),
//! `record.rs` (the one record decoder), `manifests.rs`, `repair.rs` (fsck and repair) and
//! `maintain.rs` (dropping and rewriting packs).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::fsio;
use super::packs::{list_by_suffix, Registry};
use super::{ChunkSource, PackWriter, StoreError};
use crate::id::{ChunkId, FileId};
use crate::manifest::Manifest;

const FORMAT: &str = "dits-store 1";

/// Tunables, normally read from `git config dits.*` by the caller.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// zstd level for compressible chunks; 0 disables compression.
    pub compression_level: i32,
    /// A writer starts a new pack once its current one reaches this size.
    pub pack_size_limit: u64,
    /// When what is written is flushed to the disk (`dits.fsync`).
    pub fsync: Fsync,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            compression_level: 3,
            pack_size_limit: 1 << 30,
            fsync: Fsync::Always,
        }
    }
}

/// When writes reach the disk (`dits.fsync`). Every mode keeps the store consistent through a
/// killed process: a commit writes its records and manifests into files before it returns,
/// whatever is flushed. The modes differ in what a power loss or a kernel crash can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Each commit is flushed (and its pack indexed) before it returns: a file is durable
    /// before its pointer reaches git. A server acknowledging an upload needs this.
    Always,
    /// Commits are flushed together: once a writer holds [`BATCH_BYTES`] or [`BATCH_AGE`] of
    /// unflushed records, and when the store is closed. A power loss can lose the last batch.
    Batch,
    /// Nothing is flushed; the kernel writes back when it likes (like `core.fsync=none`).
    Never,
}

impl std::str::FromStr for Fsync {
    type Err = String;
    fn from_str(s: &str) -> Result<Fsync, String> {
        match s.to_ascii_lowercase().as_str() {
            "always" | "true" => Ok(Fsync::Always),
            "batch" => Ok(Fsync::Batch),
            "never" | "false" => Ok(Fsync::Never),
            _ => Err(format!("{s:?} is not one of always, batch, never")),
        }
    }
}

/// A batch is flushed once it holds this many bytes of records...
pub const BATCH_BYTES: u64 = 64 << 20;
/// ...or once its oldest unflushed commit is this old.
pub const BATCH_AGE: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) struct Inner {
    pub root: PathBuf,
    pub options: StoreOptions,
    pub packs: Registry,
    /// A writer's open pack, handed to the next writer in this process, so a filter cleaning
    /// a thousand small files appends to one pack instead of creating a thousand.
    spare: Mutex<Option<super::writer::OpenPack>>,
    /// A finished writer's zstd contexts, for the next: creating them costs more than
    /// compressing a small file.
    pub spare_compressor: Mutex<Option<super::compress::Compressor>>,
    /// Something was written that a [`Fsync::Batch`] flush has not covered yet.
    pub unflushed: std::sync::atomic::AtomicBool,
}

impl Drop for Inner {
    /// What [`DiskStore::sync`] does, when the last handle goes (no registry to update).
    fn drop(&mut self) {
        let spare = self
            .spare
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let done = spare
            .map_or(Ok(false), |mut p| {
                p.checkpoint(self.options.fsync, &self.unflushed)
            })
            .and_then(|_| flush_unflushed(&self.root, self.options.fsync, &self.unflushed));
        if let Err(e) = done {
            tracing::error!("closing the Dits store: {e}");
        }
    }
}

/// With [`Fsync::Batch`], flushes what was written since the last flush (manifests, records).
fn flush_unflushed(
    root: &Path,
    fsync: Fsync,
    unflushed: &std::sync::atomic::AtomicBool,
) -> Result<(), StoreError> {
    if fsync == Fsync::Batch && unflushed.swap(false, std::sync::atomic::Ordering::AcqRel) {
        fsio::sync_filesystem(root)?;
    }
    Ok(())
}

#[derive(Clone)]
pub struct DiskStore {
    pub(crate) inner: Arc<Inner>,
}

/// What `fsck` and `stats` need to know about one pack file.
#[derive(Debug, Clone)]
pub struct PackInfo {
    pub name: String,
    pub data_path: PathBuf,
    /// Size of the pack file on disk.
    pub file_len: u64,
    /// Bytes covered by the index (None: no index, an orphan left by an interrupted writer).
    pub indexed_len: Option<u64>,
    pub chunks: usize,
}

impl DiskStore {
    /// Opens (creating if needed) the store rooted at `root`, normally `<common dir>/dits`.
    pub fn open(root: impl Into<PathBuf>, options: StoreOptions) -> Result<DiskStore, StoreError> {
        let root = root.into();
        for dir in ["packs", "manifests", "tmp"] {
            let d = root.join(dir);
            fs::create_dir_all(&d).map_err(|e| StoreError::io(&d, e))?;
        }
        let format_path = root.join("format");
        match fs::read_to_string(&format_path) {
            Ok(found) if found.trim_end() == FORMAT => {}
            Ok(found) => {
                return Err(StoreError::UnsupportedFormat {
                    path: format_path,
                    found: found.trim_end().to_owned(),
                    expected: FORMAT,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fsio::create_once(&format_path, format!("{FORMAT}\n").as_bytes(), true)?
            }
            Err(e) => return Err(StoreError::io(&format_path, e)),
        }
        let store = DiskStore::handle(root, options);
        // Indexes, and what lies past them: content another process committed before it
        // handed git a pointer but has not checkpointed yet (or never will: it was killed) is
        // there for every command started after.
        store.walk_tails()?;
        Ok(store)
    }

    /// Opens another repository's store for reading, creating nothing. `None` if there is none.
    pub fn open_existing(root: impl Into<PathBuf>) -> Option<DiskStore> {
        let root = root.into();
        let format = fs::read_to_string(root.join("format")).ok()?;
        if format.trim_end() != FORMAT {
            return None;
        }
        let store = DiskStore::handle(root, StoreOptions::default());
        store.walk_tails().ok()?;
        Some(store)
    }

    fn handle(root: PathBuf, options: StoreOptions) -> DiskStore {
        DiskStore {
            inner: Arc::new(Inner {
                packs: Registry::new(root.join("packs")),
                root,
                options,
                spare: Mutex::new(None),
                spare_compressor: Mutex::new(None),
                unflushed: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub fn options(&self) -> StoreOptions {
        self.inner.options
    }

    pub fn packs_dir(&self) -> PathBuf {
        self.inner.packs.dir().to_owned()
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.inner.root.join("tmp")
    }

    /// A writer that appends to a pack of its own.
    pub fn writer(&self) -> Result<PackWriter, StoreError> {
        PackWriter::new(self)
    }

    /// Loads indexes published (or republished) by other writers since the last look.
    pub fn refresh(&self) -> Result<(), StoreError> {
        self.inner.packs.refresh()
    }

    /// Makes a just-published index visible to this process without a directory scan.
    pub(crate) fn publish(&self, name: &str) -> Result<(), StoreError> {
        self.inner.packs.publish(name)
    }

    pub(crate) fn take_spare(&self) -> Option<super::writer::OpenPack> {
        self.inner
            .spare
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Keeps `pack` for the next writer, unless one is kept already (then `pack` is indexed
    /// and closed).
    pub(crate) fn offer_spare(&self, mut pack: super::writer::OpenPack) {
        let mut slot = self.inner.spare.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(pack);
            return;
        }
        drop(slot);
        if let Err(e) = self.checkpoint(&mut pack, self.inner.options.fsync) {
            // Its records are written and found by walking the pack; only the index is late.
            tracing::error!("indexing a finished pack: {e}");
        }
    }

    /// Checkpoints `pack` (see [`super::writer::OpenPack::checkpoint`]) and, if that wrote a
    /// new index, makes it the one this process reads.
    pub(crate) fn checkpoint(
        &self,
        pack: &mut super::writer::OpenPack,
        fsync: Fsync,
    ) -> Result<(), StoreError> {
        if pack.checkpoint(fsync, &self.inner.unflushed)? {
            self.publish(pack.name())?;
        }
        Ok(())
    }

    /// Ends the current batch: indexes the pack kept for the next writer and, with
    /// [`Fsync::Batch`], flushes everything written since the last flush. Dropping the last
    /// handle does the same; call this where an error must be reported.
    pub fn sync(&self) -> Result<(), StoreError> {
        let fsync = self.inner.options.fsync;
        if let Some(mut pack) = self.take_spare() {
            self.checkpoint(&mut pack, fsync)?;
        }
        flush_unflushed(self.root(), fsync, &self.inner.unflushed)
    }

    /// Notes that something was written that the next batch flush must cover.
    pub(crate) fn mark_unflushed(&self) {
        self.inner
            .unflushed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Indexes that could not be loaded and packs whose header is damaged (each names the
    /// file and ends with what to do).
    pub fn damaged_indexes(&self) -> Vec<String> {
        let packs = self.inner.packs.read();
        let mut out: Vec<String> = packs.damaged.values().map(|e| e.to_string()).collect();
        out.extend(packs.bad_headers.iter().map(|p| {
            format!(
                "{}: the pack's header is missing or not a Dits pack v1 (its indexed records are still readable); hint: run `git dits fsck --repair`",
                p.display()
            )
        }));
        out.sort();
        out
    }

    /// Every pack file, indexed or not.
    pub fn pack_infos(&self) -> Result<Vec<PackInfo>, StoreError> {
        self.refresh()?;
        let dir = self.packs_dir();
        let packs = self.inner.packs.read();
        let mut out = Vec::new();
        for (name, entry) in list_by_suffix(&dir, ".pack")? {
            let file_len = match entry.metadata() {
                Ok(m) => m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(entry.path(), e)),
            };
            let loaded = packs.list.iter().find(|p| p.name == name && p.indexed);
            out.push(PackInfo {
                data_path: entry.path(),
                file_len,
                indexed_len: loaded.map(|p| p.index.pack_len()),
                chunks: loaded.map_or(0, |p| p.index.len()),
                name,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn read_located(&self, id: &ChunkId) -> Result<Vec<u8>, StoreError> {
        let found = match self.inner.packs.locate(id) {
            Some(found) => found,
            None => {
                // Published since, or written but not indexed yet (another process's batch, a
                // writer killed before its checkpoint): walking refreshes the indexes first.
                self.inner.packs.walk_tails()?;
                self.inner
                    .packs
                    .locate(id)
                    .ok_or(StoreError::ChunkMissing { id: *id })?
            }
        };
        found.0.read(&found.1)
    }

    /// Walks the records past every pack's index (see `packs.rs`), so that listings and checks
    /// see all of them. Returns how many were found.
    pub fn walk_tails(&self) -> Result<usize, StoreError> {
        self.inner.packs.walk_tails()
    }
}

impl ChunkSource for DiskStore {
    /// Only looks at what is loaded already (indexes, and records past them that were walked
    /// or written here): asked for every chunk of a transfer, it must not scan the directory
    /// each time. Opening the store walks the tails once; writers refresh when they start.
    fn has_chunk(&self, id: &ChunkId) -> bool {
        self.inner.packs.locate(id).is_some()
    }

    fn read_chunk(&self, id: &ChunkId) -> Result<Vec<u8>, StoreError> {
        self.read_located(id)
    }

    fn has_manifest(&self, id: &FileId) -> bool {
        self.manifest_path(id).is_file()
    }

    fn read_manifest(&self, id: &FileId) -> Result<Manifest, StoreError> {
        self.decode_manifest(id)
    }
}
