//! Dropping whole packs and rewriting packs with only some of their chunks (`git dits prune`,
//! `fsck --repair`). A pack is replaced by copying the records it keeps, read and verified,
//! into a new pack that is made durable and published first; then the old pack is deleted,
//! index first. A crash in between leaves both (duplicates are harmless) or an old data file
//! without an index, an orphan whose records stay readable (walked, verified) until the
//! next prune deletes it again.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::time::{Duration, SystemTime};

use super::{fsio, ChunkSink, DiskStore, PackWriter, StoreError};
use crate::id::ChunkId;

impl DiskStore {
    /// The chunk ids of each pack written at least `min_age` ago (a younger pack may still
    /// be growing in another process), for [`Self::delete_pack`] decisions.
    pub fn settled_packs(
        &self,
        min_age: Duration,
    ) -> Result<Vec<(String, Vec<ChunkId>)>, StoreError> {
        // A pack's records past its index count as much as the indexed ones.
        self.walk_tails()?;
        let now = SystemTime::now();
        let mut out = Vec::new();
        for pack in self.inner.packs.snapshot() {
            let modified = fs::metadata(&pack.data_path)
                .and_then(|m| m.modified())
                .map_err(|e| StoreError::io(&pack.data_path, e))?;
            let age = now.duration_since(modified).unwrap_or_default();
            if age >= min_age {
                out.push((
                    pack.name.clone(),
                    pack.entries().iter().map(|e| e.id).collect(),
                ));
            }
        }
        Ok(out)
    }

    /// Deletes a whole pack (index first, so no reader ever trusts a missing data file) and
    /// returns the bytes freed. The caller decides that every chunk in it is dispensable.
    pub fn delete_pack(&self, name: &str) -> Result<u64, StoreError> {
        let dir = self.packs_dir();
        let idx = dir.join(format!("{name}.idx"));
        let data = dir.join(format!("{name}.pack"));
        let freed = fs::metadata(&data).map(|m| m.len()).unwrap_or(0)
            + fs::metadata(&idx).map(|m| m.len()).unwrap_or(0);
        for path in [&idx, &data] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(path, e)),
            }
        }
        fsio::sync_dir(&dir)?;
        self.inner.packs.forget(name);
        Ok(freed)
    }

    /// Rewrites pack `name` keeping only the chunks in `keep` (copied, verified, into a new
    /// pack that is made durable first), then deletes the old pack. Returns the bytes freed.
    pub fn rewrite_pack(&self, name: &str, keep: &HashSet<ChunkId>) -> Result<u64, StoreError> {
        let Some(pack) = self
            .inner
            .packs
            .snapshot()
            .into_iter()
            .find(|p| p.name == name)
        else {
            return Ok(0);
        };
        pack.walk_tail()?;
        let mut writer = PackWriter::isolated(self)?;
        let mut written = 0;
        for entry in pack.entries().into_iter().filter(|e| keep.contains(&e.id)) {
            let data = pack.read(&entry)?;
            written += writer.put_chunk(entry.id, &data)?;
        }
        writer.commit()?;
        drop(writer);
        Ok(self.delete_pack(name)?.saturating_sub(written))
    }
}
