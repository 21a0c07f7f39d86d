//! The packs a store knows: loading their indexes, noticing indexes other writers published,
//! and finding the record of a chunk.
//!
//! A pack's index is a checkpoint, not the only truth: records a writer appended after its
//! last index (see `writer.rs`: with `dits.fsync=batch` an index is written per batch, not per
//! file) are found by walking the pack past the index, each record verified. That walk is the
//! tail: a writer of this process registers what it wrote, and a reader that misses a chunk
//! walks the tails other processes (or a writer killed before its checkpoint) left.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use super::format::{pack_header, IdxEntry, PackIndex, PACK_HEADER_LEN};
use super::record::{self, RecordError};
use super::StoreError;
use crate::id::ChunkId;

pub(crate) struct Pack {
    pub name: String,
    pub data_path: PathBuf,
    pub file: File,
    pub index: PackIndex,
    /// Whether `index` was loaded from an index file; `false` for a pack whose writer has not
    /// published one yet (all its records are in the tail).
    pub indexed: bool,
    /// Inode of the index file it was loaded from (0 if none); a republished index has a new one.
    idx_ino: u64,
    tail: Mutex<Tail>,
}

/// Records past the index.
struct Tail {
    /// Offset up to which the pack has been walked (or written by this process).
    end: u64,
    /// Each with whether a writer of this process committed it. Only those may be counted on
    /// to stay: a record another process wrote but had not committed yet is truncated away if
    /// that writer rolls back, so a walked record is good for reading (it is verified then)
    /// but never for deciding that a chunk need not be stored again.
    entries: HashMap<ChunkId, (IdxEntry, bool)>,
}

impl Pack {
    fn new(name: &str, data_path: PathBuf, file: File, index: PackIndex, idx_ino: u64) -> Pack {
        let end = index.pack_len();
        Pack {
            name: name.to_owned(),
            data_path,
            file,
            indexed: idx_ino != 0,
            idx_ino,
            index,
            tail: Mutex::new(Tail {
                end,
                entries: HashMap::new(),
            }),
        }
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, Tail> {
        // Every update is one insert loop then one store of `end`: consistent when poisoned.
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The record of `id` in the index or the tail walked so far.
    pub fn find(&self, id: &ChunkId) -> Option<IdxEntry> {
        self.index
            .find(id)
            .or_else(|| self.tail().entries.get(id).map(|(e, _)| *e))
    }

    /// Whether `id` is in the index or was committed to the tail by this process: a record
    /// that stays (see [`Tail::entries`]).
    pub fn holds(&self, id: &ChunkId) -> bool {
        self.index.find(id).is_some() || self.tail().entries.get(id).is_some_and(|(_, c)| *c)
    }

    /// Every record known: the index's, then the tail's (in file order).
    pub fn entries(&self) -> Vec<IdxEntry> {
        let mut tail: Vec<IdxEntry> = self.tail().entries.values().map(|(e, _)| *e).collect();
        tail.sort_unstable_by_key(|e| e.offset);
        self.index.iter().chain(tail).collect()
    }

    /// Bytes of the pack covered by the index and the tail walked so far.
    pub fn known_len(&self) -> u64 {
        self.tail().end
    }

    /// Walks the records appended since the last walk, verifying each; stops at the first
    /// that is incomplete or does not verify (a writer may be in the middle of it). Returns
    /// how many were found.
    pub fn walk_tail(&self) -> Result<usize, StoreError> {
        let len = self
            .file
            .metadata()
            .map_err(|e| StoreError::io(&self.data_path, e))?
            .len();
        let from = self.tail().end;
        if len <= from {
            return Ok(0);
        }
        let (found, end) =
            record::walk(&self.file, from, len).map_err(|e| StoreError::io(&self.data_path, e))?;
        self.note(&found, end, false);
        Ok(found.len())
    }

    /// Registers records known to be whole and verified: committed by a writer of this
    /// process (`committed`), or walked. `end` counts as walked only if the records continue
    /// from what is known: records before them that this handle never saw (the pack was
    /// registered afresh meanwhile) are left for the next walk to find.
    fn note(&self, entries: &[IdxEntry], end: u64, committed: bool) {
        let mut tail = self.tail();
        for e in entries {
            if self.index.find(&e.id).is_some() {
                continue;
            }
            let slot = tail.entries.entry(e.id).or_insert((*e, committed));
            slot.1 |= committed && slot.0.offset == e.offset;
        }
        let first = entries.iter().map(|e| e.offset).min().unwrap_or(end);
        if first <= tail.end {
            tail.end = tail.end.max(end);
        }
    }

    /// Reads and verifies one record of this pack.
    pub fn read(&self, entry: &IdxEntry) -> Result<Vec<u8>, StoreError> {
        record::read(&self.file, entry).map_err(|e| match e {
            RecordError::Io(e) => StoreError::io(&self.data_path, e),
            RecordError::Corrupt(reason) => StoreError::ChunkCorrupt {
                id: entry.id,
                pack: self.data_path.clone(),
                offset: entry.offset,
                reason,
            },
        })
    }

    /// Whether the pack's first 16 bytes are a Dits pack v1 header. Records are read by
    /// offset and each is verified, so a damaged header does not hide them; it is reported.
    fn header_ok(&self) -> bool {
        let mut head = [0u8; PACK_HEADER_LEN as usize];
        self.file.read_exact_at(&mut head, 0).is_ok() && head == pack_header()
    }
}

#[derive(Default)]
pub(crate) struct Packs {
    pub list: Vec<Arc<Pack>>,
    /// Indexes that failed to load, by pack name. Their chunks are invisible until
    /// `fsck --repair` rebuilds the index from the pack's records.
    pub damaged: HashMap<String, StoreError>,
    /// Packs whose header is damaged (their index is fine, so they are read all the same).
    pub bad_headers: Vec<PathBuf>,
}

/// The registry itself, shared by every handle of one store.
pub(crate) struct Registry {
    dir: PathBuf,
    packs: RwLock<Packs>,
}

impl Registry {
    pub fn new(dir: PathBuf) -> Registry {
        Registry {
            dir,
            packs: RwLock::new(Packs::default()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Packs> {
        // Every update is a single push/retain/insert, so a poisoned lock is still consistent.
        self.packs.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Packs> {
        self.packs.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads indexes published (or republished) by other writers since the last look.
    pub fn refresh(&self) -> Result<(), StoreError> {
        let known: HashMap<String, u64> = self
            .read()
            .list
            .iter()
            .map(|p| (p.name.clone(), p.idx_ino))
            .collect();
        let mut fresh = Vec::new();
        let listing = list_dir(&self.dir)?;
        for (name, entry) in listing
            .iter()
            .filter_map(|(n, e)| Some((n.strip_suffix(".idx")?, e)))
        {
            let ino = match entry.metadata() {
                Ok(m) => m.ino(),
                // Replaced between listing and stat: the next refresh sees the new one.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(entry.path(), e)),
            };
            if known.get(name) != Some(&ino) {
                let loaded = self.load(name);
                fresh.push((name.to_owned(), loaded));
            }
        }
        // Packs a writer has not indexed yet: their records are found by walking them.
        let indexed: std::collections::HashSet<&str> = listing
            .iter()
            .filter_map(|(n, _)| n.strip_suffix(".idx"))
            .collect();
        for name in listing.iter().filter_map(|(n, _)| n.strip_suffix(".pack")) {
            if !indexed.contains(name) && !known.contains_key(name) {
                fresh.push((name.to_owned(), self.load_unindexed(name)));
            }
        }
        if !fresh.is_empty() {
            let mut packs = self.write();
            for (name, loaded) in fresh {
                match loaded {
                    Ok(pack) => install(&mut packs, pack),
                    Err(e @ StoreError::IndexCorrupt { .. }) => {
                        tracing::error!("{e}");
                        packs.damaged.insert(name, e);
                    }
                    // Deleted (pruned) between listing and opening.
                    Err(StoreError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    fn load(&self, name: &str) -> Result<Arc<Pack>, StoreError> {
        let idx_path = self.dir.join(format!("{name}.idx"));
        let data_path = self.dir.join(format!("{name}.pack"));
        let idx_file = File::open(&idx_path).map_err(|e| StoreError::io(&idx_path, e))?;
        let idx_ino = idx_file
            .metadata()
            .map_err(|e| StoreError::io(&idx_path, e))?
            .ino();
        let bytes = read_all(idx_file).map_err(|e| StoreError::io(&idx_path, e))?;
        let index = PackIndex::decode(bytes).map_err(|reason| StoreError::IndexCorrupt {
            path: idx_path.clone(),
            reason,
        })?;
        let file = File::open(&data_path).map_err(|e| StoreError::io(&data_path, e))?;
        Ok(Arc::new(Pack::new(name, data_path, file, index, idx_ino)))
    }

    fn load_unindexed(&self, name: &str) -> Result<Arc<Pack>, StoreError> {
        let data_path = self.dir.join(format!("{name}.pack"));
        let file = File::open(&data_path).map_err(|e| StoreError::io(&data_path, e))?;
        Ok(Arc::new(Pack::new(
            name,
            data_path,
            file,
            PackIndex::empty(),
            0,
        )))
    }

    /// Records a writer of this process made visible in pack `name` (whole, written, not yet
    /// indexed): readers of this process find them without walking the file.
    pub fn note_written(
        &self,
        name: &str,
        data_path: &Path,
        entries: &[IdxEntry],
        end: u64,
    ) -> Result<(), StoreError> {
        let known = self.read().list.iter().find(|p| p.name == name).cloned();
        let pack = match known {
            Some(p) => p,
            None => {
                let file = File::open(data_path).map_err(|e| StoreError::io(data_path, e))?;
                let pack = Arc::new(Pack::new(
                    name,
                    data_path.to_owned(),
                    file,
                    PackIndex::empty(),
                    0,
                ));
                let mut packs = self.write();
                match packs.list.iter().find(|p| p.name == name) {
                    Some(p) => Arc::clone(p),
                    None => {
                        packs.list.push(Arc::clone(&pack));
                        pack
                    }
                }
            }
        };
        pack.note(entries, end, true);
        Ok(())
    }

    /// Walks every pack's unwalked tail (see the module comment); returns the records found.
    pub fn walk_tails(&self) -> Result<usize, StoreError> {
        self.refresh()?;
        let mut found = 0;
        for pack in self.snapshot() {
            match pack.walk_tail() {
                Ok(n) => found += n,
                // Deleted (pruned) since it was listed.
                Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// Makes a just-published index visible to this process without a directory scan.
    pub fn publish(&self, name: &str) -> Result<(), StoreError> {
        let pack = self.load(name)?;
        let mut packs = self.write();
        packs.damaged.remove(name);
        install(&mut packs, pack);
        Ok(())
    }

    pub fn forget(&self, name: &str) {
        let data_path = self.dir.join(format!("{name}.pack"));
        let mut packs = self.write();
        packs.list.retain(|p| p.name != name);
        packs.damaged.remove(name);
        packs.bad_headers.retain(|p| *p != data_path);
    }

    /// Whether a record of `id` is known that stays (see [`Pack::holds`]).
    pub fn holds(&self, id: &ChunkId) -> bool {
        self.read().list.iter().rev().any(|p| p.holds(id))
    }

    pub fn locate(&self, id: &ChunkId) -> Option<(Arc<Pack>, IdxEntry)> {
        // Newest first: recently written chunks are the likeliest to be read again.
        self.read()
            .list
            .iter()
            .rev()
            .find_map(|p| p.find(id).map(|e| (Arc::clone(p), e)))
    }

    pub fn snapshot(&self) -> Vec<Arc<Pack>> {
        self.read().list.clone()
    }
}

fn install(packs: &mut Packs, pack: Arc<Pack>) {
    // Loaded again from the same index (another thread's refresh raced ours, or a writer of
    // this process registered the pack meanwhile): the one known holds the records noted
    // since, keep it.
    if packs
        .list
        .iter()
        .any(|p| p.name == pack.name && p.idx_ino == pack.idx_ino)
    {
        return;
    }
    packs.damaged.remove(&pack.name);
    packs.list.retain(|p| p.name != pack.name);
    packs.bad_headers.retain(|p| *p != pack.data_path);
    // A pack nobody indexed yet may be so new that its header is still being written.
    if pack.indexed && !pack.header_ok() {
        tracing::error!(
            "{}: the pack's header is missing or not a Dits pack v1; its records are still read (each is verified); hint: run `git dits fsck --repair`",
            pack.data_path.display()
        );
        packs.bad_headers.push(pack.data_path.clone());
    }
    packs.list.push(pack);
}

/// `(name without suffix, entry)` of the files in `dir` whose names end in `suffix`.
pub(crate) fn list_by_suffix(
    dir: &Path,
    suffix: &str,
) -> Result<Vec<(String, fs::DirEntry)>, StoreError> {
    Ok(list_dir(dir)?
        .into_iter()
        .filter_map(|(n, e)| Some((n.strip_suffix(suffix)?.to_owned(), e)))
        .collect())
}

/// `(file name, entry)` of the files in `dir` whose names are UTF-8 and not hidden.
fn list_dir(dir: &Path) -> Result<Vec<(String, fs::DirEntry)>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            if !name.starts_with('.') {
                out.push((name.to_owned(), entry));
            }
        }
    }
    Ok(out)
}

fn read_all(mut f: File) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    io::Read::read_to_end(&mut f, &mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ChunkSink, ChunkSource, DiskStore, Fsync, StoreOptions};

    /// A refresh on another thread that listed the directory before a writer of this process
    /// registered its new pack loads that pack afresh; the records the writer noted before
    /// must stay readable, and so must those it commits after.
    #[test]
    fn a_racing_refresh_loses_no_record_a_writer_noted() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let opts = StoreOptions {
            fsync: Fsync::Batch,
            ..StoreOptions::default()
        };
        let store = DiskStore::open(dir.path(), opts)?;
        let (a, b) = (vec![1u8; 5000], vec![2u8; 7000]);
        let mut w = store.writer()?;
        w.put_chunk(ChunkId::of(&a), &a)?;
        w.commit()?;
        let name = w.pack_name().ok_or("a pack")?.to_owned();
        // The racing refresh's view: the pack as a stranger would load it.
        let registry = &store.inner.packs;
        let fresh = registry.load_unindexed(&name)?;
        install(&mut registry.write(), fresh);
        w.put_chunk(ChunkId::of(&b), &b)?;
        w.commit()?;
        assert_eq!(store.read_chunk(&ChunkId::of(&a))?, a);
        assert_eq!(store.read_chunk(&ChunkId::of(&b))?, b);
        Ok(())
    }
}
