//! Checking every record of a store, and repairing what can be repaired without ever making
//! less readable than before: indexes are rebuilt by walking the pack's records (each
//! verified), packs with a damaged header are copied whole into a new pack, and records that
//! do not verify are only dropped from an index once they were read and found wrong.

use std::fs::File;
use std::time::{Duration, SystemTime};

use super::format::PackIndex;
use super::packs::list_by_suffix;
use super::{fsio, record, ChunkSink, DiskStore, PackWriter, StoreError};
use crate::id::ChunkId;

/// What [`DiskStore::repair_packs`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// Damaged indexes, and indexes that stopped short of their pack's records, rebuilt from
    /// the records.
    pub indexes_rebuilt: usize,
    /// Packs without an index (left by a writer that died) indexed from their records.
    pub orphans_indexed: usize,
    /// Packs with a damaged header copied into a new pack.
    pub headers_repaired: usize,
    /// Chunks these made readable.
    pub chunks_recovered: usize,
    /// Orphan packs left alone because another process may still be writing them.
    pub orphans_too_young: usize,
}

impl DiskStore {
    /// Reads and verifies every indexed chunk of every pack; calls `problem` for each failure
    /// and `progress` with the bytes checked.
    pub fn verify_all(
        &self,
        problem: impl FnMut(StoreError),
        progress: &dyn crate::progress::Progress,
    ) -> Result<u64, StoreError> {
        self.verify_all_but(&|_| false, problem, progress)
    }

    /// [`Self::verify_all`], skipping the chunks `skip` says were verified already.
    pub fn verify_all_but(
        &self,
        skip: &dyn Fn(&ChunkId) -> bool,
        mut problem: impl FnMut(StoreError),
        progress: &dyn crate::progress::Progress,
    ) -> Result<u64, StoreError> {
        // Records written past an index (a batch, or a writer killed before its checkpoint)
        // are content like any other: walked, then checked with the rest.
        self.walk_tails()?;
        let packs = self.inner.packs.snapshot();
        progress.set_total(packs.iter().map(|p| p.known_len()).sum());
        let mut checked = 0;
        for pack in packs {
            for entry in pack.entries() {
                if progress.interrupted() {
                    return Err(StoreError::Interrupted);
                }
                if skip(&entry.id) {
                    progress.inc(entry.record_len());
                    continue;
                }
                match pack.read(&entry) {
                    Ok(_) => checked += 1,
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => problem(e),
                }
                progress.inc(entry.record_len());
            }
        }
        Ok(checked)
    }

    /// Drops index entries whose records were read and found damaged, so that re-adding or
    /// re-fetching the content stores it afresh. Returns the ids dropped. Damaged bytes stay
    /// in the pack; a read that fails for another reason (the disk) drops nothing.
    pub fn drop_damaged(&self) -> Result<Vec<ChunkId>, StoreError> {
        self.refresh()?;
        let mut dropped = Vec::new();
        for pack in self.inner.packs.snapshot() {
            let mut keep = Vec::new();
            for entry in pack.index.iter() {
                match pack.read(&entry) {
                    Ok(_) => keep.push(entry),
                    Err(e) if e.is_transient() => return Err(e),
                    Err(_) => dropped.push(entry.id),
                }
            }
            if keep.len() != pack.index.len() {
                self.write_index(&pack.name, &mut keep, pack.index.pack_len())?;
            }
        }
        Ok(dropped)
    }

    /// Rebuilds damaged indexes, indexes orphan packs at least `orphan_age` old, and copies
    /// packs whose header is damaged into new ones. See [`RepairReport`].
    pub fn repair_packs(&self, orphan_age: Duration) -> Result<RepairReport, StoreError> {
        self.refresh()?;
        let mut report = RepairReport::default();
        let dir = self.packs_dir();
        let (damaged, bad_headers) = {
            let packs = self.inner.packs.read();
            let damaged: Vec<String> = packs.damaged.keys().cloned().collect();
            (damaged, packs.bad_headers.clone())
        };
        let indexed: std::collections::HashSet<String> = list_by_suffix(&dir, ".idx")?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let now = SystemTime::now();
        let indexed_len: std::collections::HashMap<String, u64> = self
            .inner
            .packs
            .snapshot()
            .iter()
            .filter(|p| p.indexed)
            .map(|p| (p.name.clone(), p.index.pack_len()))
            .collect();
        for (name, entry) in list_by_suffix(&dir, ".pack")? {
            let meta = entry.metadata().ok();
            let age = meta
                .as_ref()
                .and_then(|m| m.modified().ok())
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            // Records past the index of a pack nobody writes any more (its writer was killed
            // before its checkpoint): readable by walking, indexed here so no reader has to.
            let unindexed_tail = age >= orphan_age
                && indexed_len
                    .get(&name)
                    .zip(meta.as_ref())
                    .is_some_and(|(&len, m)| m.len() > len);
            let rebuild = if damaged.contains(&name) || unindexed_tail {
                true
            } else if !indexed.contains(&name) {
                if age < orphan_age {
                    report.orphans_too_young += 1;
                    false
                } else {
                    true
                }
            } else {
                false
            };
            if !rebuild {
                continue;
            }
            let path = entry.path();
            let file = File::open(&path).map_err(|e| StoreError::io(&path, e))?;
            let len = file.metadata().map_err(|e| StoreError::io(&path, e))?.len();
            let mut found = record::scan(&file, len).map_err(|e| StoreError::io(&path, e))?;
            if found.is_empty() {
                continue;
            }
            let end = found
                .iter()
                .map(|e| e.offset + e.record_len())
                .max()
                .unwrap_or(0);
            report.chunks_recovered += found.len();
            self.write_index(&name, &mut found, end)?;
            if damaged.contains(&name) || unindexed_tail {
                report.indexes_rebuilt += 1;
            } else {
                report.orphans_indexed += 1;
            }
        }
        // Packs whose header was damaged: their indexed records, copied into a new pack.
        for data_path in bad_headers {
            let Some(pack) = self
                .inner
                .packs
                .snapshot()
                .into_iter()
                .find(|p| p.data_path == data_path)
            else {
                continue;
            };
            let mut writer = PackWriter::isolated(self)?;
            for entry in pack.index.iter() {
                match pack.read(&entry) {
                    Ok(data) => {
                        writer.put_chunk(entry.id, &data)?;
                    }
                    Err(e) if e.is_transient() => return Err(e),
                    // Damaged: `drop_damaged` reports it; nothing to copy.
                    Err(_) => {}
                }
            }
            writer.commit()?;
            drop(writer);
            self.delete_pack(&pack.name)?;
            report.headers_repaired += 1;
        }
        Ok(report)
    }

    fn write_index(
        &self,
        name: &str,
        entries: &mut [super::format::IdxEntry],
        pack_len: u64,
    ) -> Result<(), StoreError> {
        let bytes = PackIndex::encode(entries, pack_len);
        fsio::replace_file(&self.packs_dir().join(format!("{name}.idx")), &bytes)?;
        self.publish(name)
    }
}
