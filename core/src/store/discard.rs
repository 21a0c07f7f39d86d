//! A sink that names chunks and keeps nothing: what `git diff`'s textconv needs to describe
//! work-tree content the way a stored file is described, without storing it.

use super::{ChunkSink, StoreError};
use crate::id::ChunkId;
use crate::manifest::Manifest;

#[derive(Debug, Default)]
pub struct Discard;

impl ChunkSink for Discard {
    fn has_chunk(&self, _: &ChunkId) -> bool {
        false
    }
    fn put_chunk(&mut self, _: ChunkId, _: &[u8]) -> Result<u64, StoreError> {
        Ok(0)
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    fn rollback(&mut self) {}
    fn put_manifest(&mut self, _: &Manifest) -> Result<(), StoreError> {
        Ok(())
    }
}
