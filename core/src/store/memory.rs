//! An in-memory store for unit tests of code written against the store traits.

use std::collections::HashMap;

use super::{ChunkSink, ChunkSource, StoreError};
use crate::id::{ChunkId, FileId};
use crate::manifest::Manifest;

#[derive(Debug, Default)]
pub struct MemoryStore {
    chunks: HashMap<ChunkId, Vec<u8>>,
    uncommitted: HashMap<ChunkId, Vec<u8>>,
    manifests: HashMap<FileId, Manifest>,
}

impl MemoryStore {
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Damages a stored chunk, to test that readers notice.
    pub fn corrupt(&mut self, id: &ChunkId) {
        if let Some(c) = self.chunks.get_mut(id) {
            if let Some(b) = c.first_mut() {
                *b ^= 1;
            }
        }
    }
}

impl ChunkSource for MemoryStore {
    fn has_chunk(&self, id: &ChunkId) -> bool {
        self.chunks.contains_key(id)
    }

    fn read_chunk(&self, id: &ChunkId) -> Result<Vec<u8>, StoreError> {
        let data = self
            .chunks
            .get(id)
            .ok_or(StoreError::ChunkMissing { id: *id })?;
        if ChunkId::of(data) != *id {
            return Err(StoreError::ChunkCorrupt {
                id: *id,
                pack: "<memory>".into(),
                offset: 0,
                reason: "hash mismatch".into(),
            });
        }
        Ok(data.clone())
    }

    fn has_manifest(&self, id: &FileId) -> bool {
        self.manifests.contains_key(id)
    }

    fn read_manifest(&self, id: &FileId) -> Result<Manifest, StoreError> {
        self.manifests
            .get(id)
            .cloned()
            .ok_or(StoreError::ManifestMissing { id: *id })
    }
}

impl ChunkSink for MemoryStore {
    fn has_chunk(&self, id: &ChunkId) -> bool {
        self.chunks.contains_key(id) || self.uncommitted.contains_key(id)
    }

    fn put_chunk(&mut self, id: ChunkId, data: &[u8]) -> Result<u64, StoreError> {
        if ChunkSink::has_chunk(self, &id) {
            return Ok(0);
        }
        self.uncommitted.insert(id, data.to_vec());
        Ok(data.len() as u64)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.chunks.extend(self.uncommitted.drain());
        Ok(())
    }

    fn rollback(&mut self) {
        self.uncommitted.clear();
    }

    fn put_manifest(&mut self, manifest: &Manifest) -> Result<(), StoreError> {
        self.manifests.insert(manifest.file_id, manifest.clone());
        Ok(())
    }
}
