//! The side store of chunks and manifests.
//!
//! Code that only needs to read or write objects takes the small traits [`ChunkSource`] and
//! [`ChunkSink`]; unit tests use [`MemoryStore`], everything end to end uses [`DiskStore`].

mod compress;
mod discard;
mod disk;
mod error;
pub mod format;
pub(crate) mod fsio;
mod maintain;
mod manifests;
mod memory;
mod packs;
mod record;
mod repair;
mod writer;

pub use discard::Discard;
pub use disk::{DiskStore, Fsync, PackInfo, StoreOptions, BATCH_AGE, BATCH_BYTES};
pub use error::StoreError;
pub use fsio::replace_file;
pub use manifests::StoreStats;
pub use memory::MemoryStore;
pub use repair::RepairReport;
pub use writer::PackWriter;

/// A short random suffix for temp files outside the store (work-tree hydration).
pub fn unique_temp_suffix() -> String {
    fsio::unique_name("")
}

use crate::id::{ChunkId, FileId};
use crate::manifest::Manifest;

/// Read access to stored objects. Every chunk returned has been verified against its id.
pub trait ChunkSource: Sync {
    fn has_chunk(&self, id: &ChunkId) -> bool;
    fn read_chunk(&self, id: &ChunkId) -> Result<Vec<u8>, StoreError>;
    fn has_manifest(&self, id: &FileId) -> bool;
    fn read_manifest(&self, id: &FileId) -> Result<Manifest, StoreError>;
}

/// Write access. Nothing put is visible to other processes, or durable, before `commit`.
pub trait ChunkSink: Send {
    /// Whether the chunk is already stored (or put in this session).
    fn has_chunk(&self, id: &ChunkId) -> bool;
    /// Stores a chunk unless present; returns the bytes it added to the store (0 if present).
    fn put_chunk(&mut self, id: ChunkId, data: &[u8]) -> Result<u64, StoreError>;
    /// Makes all chunks put so far durable and visible.
    fn commit(&mut self) -> Result<(), StoreError>;
    /// Forgets chunks put since the last commit.
    fn rollback(&mut self);
    /// Stores a manifest durably. Callers commit its chunks first.
    fn put_manifest(&mut self, manifest: &Manifest) -> Result<(), StoreError>;
}
