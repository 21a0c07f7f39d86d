//! Manifests in the store: one file per file id under `manifests/<2 hex>/<62 hex>`, holding
//! the top level as it was received or written; its groups are objects in the packs. A
//! manifest is created once and never replaced (a content-addressed name has one correct
//! content); it is only removed when it is provably wrong.

use std::fs;
use std::io;
use std::path::PathBuf;

use super::format::FLAG_ZSTD;
use super::{fsio, ChunkSource, DiskStore, StoreError};
use crate::id::FileId;
use crate::manifest::{Manifest, ManifestError, TopManifest};

#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    pub packs: usize,
    pub pack_bytes: u64,
    pub chunks: u64,
    pub chunk_raw_bytes: u64,
    pub compressed_chunks: u64,
    pub manifests: u64,
    /// Sum of the sizes of all files with a manifest.
    pub logical_bytes: u64,
}

impl DiskStore {
    pub fn manifest_path(&self, id: &FileId) -> PathBuf {
        let hex = id.to_string();
        self.root()
            .join("manifests")
            .join(&hex[..2])
            .join(&hex[2..])
    }

    /// Stores a top-level manifest; its group objects must be committed already. Flushed
    /// before this returns with `dits.fsync=always`, with the writer's batch otherwise.
    pub fn write_manifest_top(&self, id: &FileId, top: &[u8]) -> Result<(), StoreError> {
        let always = self.options().fsync == super::Fsync::Always;
        fsio::create_once(&self.manifest_path(id), top, always)?;
        if !always {
            self.mark_unflushed();
        }
        Ok(())
    }

    /// The stored top-level manifest bytes of `id`, as sent to peers (they verify them).
    pub fn read_manifest_top(&self, id: &FileId) -> Result<Vec<u8>, StoreError> {
        let path = self.manifest_path(id);
        match fs::read(&path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::ManifestMissing { id: *id })
            }
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// Removes a manifest that is wrong (it does not decode, or the content it rebuilds does
    /// not hash to its id), so the file can be added or fetched again.
    pub fn remove_manifest(&self, id: &FileId) -> Result<(), StoreError> {
        let path = self.manifest_path(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// Ids of all stored manifests.
    pub fn manifest_ids(&self) -> Result<Vec<FileId>, StoreError> {
        let dir = self.root().join("manifests");
        let mut out = Vec::new();
        for fan in fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))? {
            let fan = fan.map_err(|e| StoreError::io(&dir, e))?;
            let prefix = fan.file_name().to_string_lossy().into_owned();
            let sub = fan.path();
            if !sub.is_dir() {
                continue;
            }
            for f in fs::read_dir(&sub).map_err(|e| StoreError::io(&sub, e))? {
                let f = f.map_err(|e| StoreError::io(&sub, e))?;
                let name = format!("{prefix}{}", f.file_name().to_string_lossy());
                if let Ok(id) = name.parse::<FileId>() {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// The manifest of `id`, its groups read (and verified) from the packs.
    pub(crate) fn decode_manifest(&self, id: &FileId) -> Result<Manifest, StoreError> {
        let path = self.manifest_path(id);
        let bytes = self.read_manifest_top(id)?;
        let corrupt = |source| StoreError::ManifestCorrupt {
            path: path.clone(),
            source,
        };
        let top = TopManifest::decode(&bytes).map_err(corrupt)?;
        if top.file_id != *id {
            return Err(corrupt(ManifestError::Inconsistent(
                "stored under another file id",
            )));
        }
        let groups = top
            .groups
            .iter()
            .map(|g| self.read_chunk(&g.id))
            .collect::<Result<Vec<_>, _>>()?;
        Manifest::assemble(top, &groups).map_err(corrupt)
    }

    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut s = StoreStats::default();
        for info in self.pack_infos()? {
            s.packs += 1;
            s.pack_bytes += info.file_len;
        }
        let mut seen = std::collections::HashSet::new();
        self.walk_tails()?;
        for p in self.inner.packs.snapshot() {
            for e in p.entries() {
                if seen.insert(e.id) {
                    s.chunks += 1;
                    s.chunk_raw_bytes += u64::from(e.raw_len);
                    s.compressed_chunks += u64::from(e.flags & FLAG_ZSTD != 0);
                }
            }
        }
        for id in self.manifest_ids()? {
            if let Ok(m) = self.read_manifest(&id) {
                s.manifests += 1;
                s.logical_bytes += m.size;
            }
        }
        Ok(s)
    }
}
