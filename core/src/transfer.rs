//! Copying a file's objects from one store into another: used when content is found in a
//! repository we cloned from (a local-path remote) and, later, when it comes from a server.
//! Every chunk is verified on read, so a damaged source cannot damage the destination.

use crate::id::FileId;
use crate::manifest::Manifest;
use crate::store::{ChunkSink, ChunkSource, StoreError};

/// Copies the manifest of `id` and every chunk it needs that `dest` lacks. Chunks are committed
/// before the manifest, as in ingest, so a crash never leaves a manifest without its chunks.
pub fn import_file<S: ChunkSource + ?Sized, D: ChunkSink>(
    source: &S,
    dest: &mut D,
    id: &FileId,
) -> Result<Manifest, StoreError> {
    let manifest = source.read_manifest(id)?;
    for c in &manifest.chunks {
        if dest.has_chunk(&c.id) {
            continue;
        }
        let data = source.read_chunk(&c.id)?;
        if let Err(e) = dest.put_chunk(c.id, &data) {
            dest.rollback();
            return Err(e);
        }
    }
    dest.commit()?;
    dest.put_manifest(&manifest)?;
    Ok(manifest)
}

/// Makes `id` available in `local`, importing it from the first of `sources` that has it.
/// Returns the manifest, or the local store's own error if no source has it.
pub fn ensure_local(
    local: &crate::store::DiskStore,
    sources: &[crate::store::DiskStore],
    id: &FileId,
) -> Result<Manifest, StoreError> {
    let missing = match local.read_manifest(id) {
        Ok(m) => match m.chunks.iter().find(|c| !local.has_chunk(&c.id)) {
            None => return Ok(m),
            Some(c) => StoreError::ChunkMissing { id: c.id },
        },
        Err(e) => e,
    };
    for source in sources {
        if !source.has_manifest(id) {
            continue;
        }
        let mut writer = local.writer()?;
        match import_file(source, &mut writer, id) {
            Ok(m) => {
                tracing::debug!("imported {id} from {}", source.root().display());
                return Ok(m);
            }
            Err(e) => tracing::warn!("cannot import {id} from {}: {e}", source.root().display()),
        }
    }
    Err(missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunker::ChunkerParams;
    use crate::ingest::ingest;
    use crate::progress::Silent;
    use crate::store::MemoryStore;
    use crate::test_data::pseudo_random;

    #[test]
    fn import_copies_only_missing_chunks_and_refuses_damage(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let mut src = MemoryStore::default();
        let data = pseudo_random(21, 2_000_000);
        let m = ingest(&data[..], ChunkerParams::default(), &mut src, &Silent)?.manifest;
        let mut dst = MemoryStore::default();
        ingest(
            &data[..500_000],
            ChunkerParams::default(),
            &mut dst,
            &Silent,
        )?;
        let already: Vec<bool> = m
            .chunks
            .iter()
            .map(|c| ChunkSource::has_chunk(&dst, &c.id))
            .collect();
        assert!(already.iter().any(|&b| b), "the prefix shares chunks");
        let before = dst.chunk_count();
        import_file(&src, &mut dst, &m.file_id)?;
        let copied = already.iter().filter(|&&b| !b).count();
        assert_eq!(
            dst.chunk_count(),
            before + copied,
            "only missing chunks are copied"
        );
        assert!(m.chunks.iter().all(|c| ChunkSource::has_chunk(&dst, &c.id)));
        assert!(dst.has_manifest(&m.file_id));

        let mut bad_src = MemoryStore::default();
        ingest(&data[..], ChunkerParams::default(), &mut bad_src, &Silent)?;
        bad_src.corrupt(&m.chunks[5].id);
        let mut dst2 = MemoryStore::default();
        assert!(import_file(&bad_src, &mut dst2, &m.file_id).is_err());
        assert!(!dst2.has_manifest(&m.file_id));
        assert_eq!(
            dst2.chunk_count(),
            0,
            "nothing committed after a failed import"
        );
        Ok(())
    }
}
