//! Chunks the mount fetched are kept in the local store, so a second read is local. They go
//! into packs of their own, listed in `<store>/mount-cache` (oldest first), so that when the
//! cache outgrows `dits.mount.cacheSize` the oldest packs can be deleted whole: every chunk in
//! them came from the server, so dropping them loses nothing (as `git dits prune` reasons).
//!
//! Crash safety: a pack is committed (data fsynced, index published) before its name is
//! added to the list, and the list is replaced atomically. A crash can at worst leave a
//! committed pack off the list, which is then never evicted: wasted space, never lost data.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use dits_core::store::{ChunkSink, DiskStore, PackWriter};
use dits_core::ChunkId;

pub struct DiskCache {
    store: DiskStore,
    writer: Option<PackWriter>,
    list_path: PathBuf,
    /// Pack names, oldest first.
    packs: Vec<String>,
    /// Bytes the listed packs may take before the oldest are deleted; `None`: no bound.
    limit: Option<u64>,
}

impl DiskCache {
    pub fn open(store: DiskStore, limit: Option<u64>) -> DiskCache {
        let list_path = store.root().join("mount-cache");
        let packs = fs::read_to_string(&list_path)
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        DiskCache {
            store,
            writer: None,
            list_path,
            packs,
            limit,
        }
    }

    /// Stores verified chunks durably (chunks already in the store are skipped).
    pub fn put(&mut self, chunks: &[(ChunkId, &[u8])]) -> Result<()> {
        if self.writer.is_none() {
            self.writer = Some(PackWriter::isolated(&self.store)?);
        }
        let writer = self.writer.as_mut().expect("just created");
        let mut changed = false;
        for (id, data) in chunks {
            if dits_core::store::ChunkSource::has_chunk(&self.store, id) {
                continue;
            }
            writer.put_chunk(*id, data)?;
            // A full pack is committed inside put_chunk and the next chunk starts another;
            // both names must be listed.
            if let Some(name) = writer.pack_name() {
                if !self.packs.iter().any(|p| p == name) {
                    self.packs.push(name.to_owned());
                    changed = true;
                }
            }
        }
        writer.commit()?;
        if changed {
            self.save()?;
        }
        self.evict()
    }

    /// Deletes the oldest packs while the listed packs exceed the limit (never the one being
    /// written).
    fn evict(&mut self) -> Result<()> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let dir = self.store.packs_dir();
        let size =
            |name: &str| fs::metadata(dir.join(format!("{name}.pack"))).map_or(0, |m| m.len());
        let mut total: u64 = self.packs.iter().map(|p| size(p)).sum();
        let current = self
            .writer
            .as_ref()
            .and_then(|w| w.pack_name())
            .map(str::to_owned);
        let mut evicted = false;
        while total > limit {
            let Some(pos) = self.packs.iter().position(|p| Some(p) != current.as_ref()) else {
                break;
            };
            let name = self.packs.remove(pos);
            total -= size(&name);
            let freed = self.store.delete_pack(&name)?;
            tracing::info!("mount cache: dropped pack {name} ({freed} bytes)");
            evicted = true;
        }
        if evicted {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<()> {
        let tmp = self
            .list_path
            .with_extension(format!("tmp-{}", dits_core::store::unique_temp_suffix()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            for p in &self.packs {
                writeln!(f, "{p}")?;
            }
            f.sync_all()?;
            fs::rename(&tmp, &self.list_path)
        };
        write().with_context(|| format!("writing {}", self.list_path.display()))
    }
}
