//! Rebuilding a file from its manifest, verified: the one place that checks a rebuilt file
//! against its id (exactly the manifest's size, and a plain BLAKE3 equal to the file id).
//! Every path that hands content out or keeps a manifest goes through it: smudge
//! ([`crate::reader`]), writing work-tree files and temp files ([`crate::worktree`]), and
//! fetching ([`crate::transfer`]), which keeps a manifest only once the content it rebuilds
//! passed this check.

use std::collections::HashMap;
use std::io::Write;

use crate::id::{ChunkId, FileId};
use crate::manifest::Manifest;
use crate::pointer::Pointer;
use crate::store::{ChunkSource, StoreError};

/// The manifest of `pointer` from `store`, refused before a byte is produced if it does not
/// describe a file of the pointer's size (a manifest claiming gigabytes under a pointer of
/// megabytes would otherwise stream gigabytes into git).
pub fn manifest_for<S: ChunkSource + ?Sized>(
    store: &S,
    pointer: &Pointer,
) -> Result<Manifest, StoreError> {
    let m = store.read_manifest(&pointer.id)?;
    check_size(&m, pointer)?;
    Ok(m)
}

/// Refuses a manifest whose size is not the pointer's.
pub fn check_size(m: &Manifest, pointer: &Pointer) -> Result<(), StoreError> {
    if m.file_id != pointer.id || m.size != pointer.size {
        return Err(StoreError::SizeMismatch {
            id: pointer.id,
            manifest: m.size,
            pointer: pointer.size,
        });
    }
    Ok(())
}

/// Hashes content as it goes by and says at the end whether it is the file `id` names.
pub struct WholeFile {
    id: FileId,
    size: u64,
    hasher: blake3::Hasher,
    seen: u64,
}

impl WholeFile {
    pub fn new(manifest: &Manifest) -> WholeFile {
        WholeFile {
            id: manifest.file_id,
            size: manifest.size,
            hasher: blake3::Hasher::new(),
            seen: 0,
        }
    }

    /// Feeds the next bytes; refuses more than the file's size at once.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.seen += bytes.len() as u64;
        if self.seen > self.size {
            return Err(self.mismatch(format!("runs past its {} bytes", self.size)));
        }
        self.hasher.update(bytes);
        Ok(())
    }

    pub fn finish(&self) -> Result<(), StoreError> {
        if self.seen != self.size {
            return Err(self.mismatch(format!("has {} bytes, not {}", self.seen, self.size)));
        }
        if self.hasher.finalize().as_bytes() != self.id.as_bytes() {
            return Err(self.mismatch("does not hash to its id".into()));
        }
        Ok(())
    }

    fn mismatch(&self, reason: String) -> StoreError {
        StoreError::ContentMismatch {
            id: self.id,
            reason,
        }
    }
}

/// A file rebuilt span by span, in order, from chunks as they become available: handed in
/// fresh (bytes the caller verified against their ids) or found in a store. The bytes go to
/// `out` (a temp file, or nowhere when only checking) and through a [`WholeFile`] check.
pub struct Rebuild {
    manifest: Manifest,
    next: usize,
    check: WholeFile,
}

impl Rebuild {
    pub fn new(manifest: Manifest) -> Rebuild {
        Rebuild {
            check: WholeFile::new(&manifest),
            manifest,
            next: 0,
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Whether every span was produced.
    pub fn is_complete(&self) -> bool {
        self.manifest.span(self.next).is_none()
    }

    /// Produces the following spans for as long as their chunks are at hand (in `fresh` or
    /// in `store`); stops at the first chunk that is in neither, which a later batch brings.
    pub fn advance<S: ChunkSource + ?Sized>(
        &mut self,
        store: &S,
        fresh: &HashMap<ChunkId, &[u8]>,
        out: &mut dyn Write,
        out_name: &std::path::Path,
    ) -> Result<(), StoreError> {
        while let Some(span) = self.manifest.span(self.next) {
            let from_store;
            let chunk: &[u8] = match fresh.get(&span.chunk.id) {
                Some(bytes) => bytes,
                None if store.has_chunk(&span.chunk.id) => {
                    from_store = store.read_chunk(&span.chunk.id)?;
                    &from_store
                }
                None => return Ok(()),
            };
            let range = span.start as usize..(span.start + span.len) as usize;
            let Some(bytes) = chunk
                .get(range)
                .filter(|_| chunk.len() == span.chunk.len as usize)
            else {
                return Err(StoreError::ContentMismatch {
                    id: self.manifest.file_id,
                    reason: format!(
                        "needs chunk {} to have {} bytes, and it has {}",
                        span.chunk.id,
                        span.chunk.len,
                        chunk.len()
                    ),
                });
            };
            self.check.update(bytes)?;
            out.write_all(bytes)
                .map_err(|e| StoreError::io(out_name, e))?;
            self.next += 1;
        }
        Ok(())
    }

    /// Produces what is left from `store` and checks the whole content.
    pub fn finish<S: ChunkSource + ?Sized>(
        &mut self,
        store: &S,
        out: &mut dyn Write,
        out_name: &std::path::Path,
    ) -> Result<(), StoreError> {
        self.advance(store, &HashMap::new(), out, out_name)?;
        if let Some(span) = self.manifest.span(self.next) {
            return Err(StoreError::ChunkMissing { id: span.chunk.id });
        }
        self.check.finish()
    }

    pub fn into_manifest(self) -> Manifest {
        self.manifest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunker::ChunkerParams;
    use crate::ingest::ingest;
    use crate::progress::Silent;
    use crate::store::MemoryStore;
    use crate::test_data::pseudo_random;
    use std::path::Path;

    #[test]
    fn checks_length_and_hash_and_refuses_a_wrong_size() -> Result<(), Box<dyn std::error::Error>> {
        let mut store = MemoryStore::default();
        let data = pseudo_random(41, 1_500_000);
        let m = ingest(&data[..], ChunkerParams::default(), &mut store, &Silent)?.manifest;
        let mut out = Vec::new();
        Rebuild::new(m.clone()).finish(&store, &mut out, Path::new("out"))?;
        assert_eq!(out, data);

        let mut swapped = m.clone();
        swapped.chunks.swap(0, 1);
        let err = Rebuild::new(swapped)
            .finish(&store, &mut std::io::sink(), Path::new("-"))
            .expect_err("wrong order");
        assert!(matches!(err, StoreError::ContentMismatch { .. }), "{err}");
        assert!(!err.is_transient());

        let bomb = Pointer::new(m.file_id, 3);
        let err = check_size(&m, &bomb).expect_err("size differs");
        assert!(matches!(err, StoreError::SizeMismatch { .. }), "{err}");
        Ok(())
    }
}
