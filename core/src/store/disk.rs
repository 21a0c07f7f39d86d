//! The on-disk store under `<git common dir>/dits/`:
//!
//! ```text
//! format                    "dits-store 1"
//! packs/pack-<16 hex>.pack  append-only chunk records
//! packs/pack-<16 hex>.idx   durable records of that pack, published by atomic rename
//! manifests/<2 hex>/<62 hex> one manifest per file id, written once
//! tmp/                      scratch space (same filesystem, so renames are atomic)
//! ```
//! Writers never share a pack: each [`PackWriter`] appends to its own, so any number of
//! processes (git may run several filters; two worktrees may `git add` at once) write without
//! locks. Readers only trust what an index lists.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::compress;
use super::format::{IdxEntry, PackIndex, RecordHeader, FLAG_ZSTD, RECORD_HEADER_LEN};
use super::fsio;
use super::{ChunkSource, PackWriter, StoreError};
use crate::id::{ChunkId, FileId};
use crate::manifest::{Manifest, TopManifest};

const FORMAT: &str = "dits-store 1";

/// Tunables, normally read from `git config dits.*` by the caller.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// zstd level for compressible chunks; 0 disables compression.
    pub compression_level: i32,
    /// A writer starts a new pack once its current one reaches this size.
    pub pack_size_limit: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            compression_level: 3,
            pack_size_limit: 1 << 30,
        }
    }
}

pub(crate) struct Pack {
    pub name: String,
    pub data_path: PathBuf,
    file: File,
    pub index: PackIndex,
    /// Inode of the index file it was loaded from; a republished index has a new one.
    idx_ino: u64,
}

#[derive(Default)]
struct Packs {
    list: Vec<Arc<Pack>>,
    /// Indexes that failed to load, by pack name. Their chunks are invisible until
    /// `rebuild_damaged_indexes` (fsck --repair) rebuilds them from the pack.
    damaged: HashMap<String, StoreError>,
}

pub struct DiskStore {
    root: PathBuf,
    options: StoreOptions,
    packs: RwLock<Packs>,
    /// A writer's open pack, handed to the next writer in this process, so a filter cleaning
    /// a thousand small files appends to one pack instead of creating a thousand.
    spare: std::sync::Mutex<Option<super::writer::OpenPack>>,
}

/// What `fsck` and `stats` need to know about one pack file.
#[derive(Debug, Clone)]
pub struct PackInfo {
    pub name: String,
    pub data_path: PathBuf,
    /// Size of the pack file on disk.
    pub file_len: u64,
    /// Bytes covered by the index (None: no index, an orphan left by an interrupted writer).
    pub indexed_len: Option<u64>,
    pub chunks: usize,
}

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
    /// Opens (creating if needed) the store rooted at `root`, normally `<common dir>/dits`.
    pub fn open(root: impl Into<PathBuf>, options: StoreOptions) -> Result<DiskStore, StoreError> {
        let root = root.into();
        for dir in ["packs", "manifests", "tmp"] {
            let d = root.join(dir);
            fs::create_dir_all(&d).map_err(|e| StoreError::io(&d, e))?;
        }
        let format_path = root.join("format");
        match fs::read_to_string(&format_path) {
            Ok(found) if found.trim_end() == FORMAT => {}
            Ok(found) => {
                return Err(StoreError::UnsupportedFormat {
                    path: format_path,
                    found: found.trim_end().to_owned(),
                    expected: FORMAT,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fsio::create_once(&format_path, format!("{FORMAT}\n").as_bytes())?
            }
            Err(e) => return Err(StoreError::io(&format_path, e)),
        }
        let store = DiskStore {
            root,
            options,
            packs: RwLock::new(Packs::default()),
            spare: std::sync::Mutex::new(None),
        };
        store.refresh()?;
        Ok(store)
    }

    /// Opens another repository's store for reading, creating nothing. `None` if there is none.
    pub fn open_existing(root: impl Into<PathBuf>) -> Option<DiskStore> {
        let root = root.into();
        let format = fs::read_to_string(root.join("format")).ok()?;
        if format.trim_end() != FORMAT {
            return None;
        }
        let store = DiskStore {
            root,
            options: StoreOptions::default(),
            packs: RwLock::new(Packs::default()),
            spare: std::sync::Mutex::new(None),
        };
        store.refresh().ok()?;
        Some(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn options(&self) -> StoreOptions {
        self.options
    }

    pub fn packs_dir(&self) -> PathBuf {
        self.root.join("packs")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn manifest_path(&self, id: &FileId) -> PathBuf {
        let hex = id.to_string();
        self.root.join("manifests").join(&hex[..2]).join(&hex[2..])
    }

    /// A writer that appends to a pack of its own.
    pub fn writer(&self) -> Result<PackWriter<'_>, StoreError> {
        PackWriter::new(self)
    }

    /// Loads indexes published (or republished) by other writers since the last look.
    pub fn refresh(&self) -> Result<(), StoreError> {
        let dir = self.packs_dir();
        let known: HashMap<String, u64> = self
            .read_packs()
            .list
            .iter()
            .map(|p| (p.name.clone(), p.idx_ino))
            .collect();
        let mut fresh = Vec::new();
        for (name, entry) in list_by_suffix(&dir, ".idx")? {
            let name = name.as_str();
            let ino = match entry.metadata() {
                Ok(m) => m.ino(),
                // Replaced between listing and stat: the next refresh sees the new one.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(entry.path(), e)),
            };
            if known.get(name) != Some(&ino) {
                fresh.push((name.to_owned(), self.load_pack(name)));
            }
        }
        if !fresh.is_empty() {
            let mut packs = self.packs.write().unwrap_or_else(|p| p.into_inner());
            for (name, loaded) in fresh {
                match loaded {
                    Ok(pack) => {
                        packs.damaged.remove(&name);
                        packs.list.retain(|p| p.name != name);
                        packs.list.push(pack);
                    }
                    Err(e @ StoreError::IndexCorrupt { .. }) => {
                        tracing::error!("{e}");
                        packs.damaged.insert(name, e);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    fn load_pack(&self, name: &str) -> Result<Arc<Pack>, StoreError> {
        let dir = self.packs_dir();
        let idx_path = dir.join(format!("{name}.idx"));
        let data_path = dir.join(format!("{name}.pack"));
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
        let mut head = [0u8; super::format::PACK_HEADER_LEN as usize];
        let header_ok =
            file.read_exact_at(&mut head, 0).is_ok() && head == super::format::pack_header();
        if !header_ok {
            // Reported (and skipped) like a damaged index; fsck --repair rescans what it can.
            return Err(StoreError::IndexCorrupt {
                path: data_path,
                reason: "the pack's header is missing or not a Dits pack v1".into(),
            });
        }
        Ok(Arc::new(Pack {
            name: name.to_owned(),
            data_path,
            file,
            index,
            idx_ino,
        }))
    }

    /// Indexes that could not be loaded (each error names the file).
    pub fn damaged_indexes(&self) -> Vec<String> {
        self.read_packs()
            .damaged
            .values()
            .map(|e| e.to_string())
            .collect()
    }

    /// Rebuilds every damaged index by scanning its pack's records from the start, keeping
    /// each record that verifies, up to the first one that does not. Returns how many.
    pub fn rebuild_damaged_indexes(&self) -> Result<usize, StoreError> {
        let names: Vec<String> = self.read_packs().damaged.keys().cloned().collect();
        for name in &names {
            let data_path = self.packs_dir().join(format!("{name}.pack"));
            let (mut entries, len) = scan_pack(&data_path)?;
            let bytes = PackIndex::encode(&mut entries, len);
            fsio::replace_file(&self.packs_dir().join(format!("{name}.idx")), &bytes)?;
            self.publish(name)?;
            self.packs
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .damaged
                .remove(name);
        }
        Ok(names.len())
    }

    pub(crate) fn take_spare(&self) -> Option<super::writer::OpenPack> {
        self.spare.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Keeps `pack` for the next writer, unless one is kept already (then `pack` is closed:
    /// everything in it is published).
    pub(crate) fn offer_spare(&self, pack: super::writer::OpenPack) {
        let mut slot = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(pack);
        }
    }

    /// Makes a just-published index visible to this process without a directory scan.
    pub(crate) fn publish(&self, name: &str) -> Result<(), StoreError> {
        let pack = self.load_pack(name)?;
        let mut packs = self.packs.write().unwrap_or_else(|p| p.into_inner());
        packs.list.retain(|p| p.name != name);
        packs.list.push(pack);
        Ok(())
    }

    fn read_packs(&self) -> std::sync::RwLockReadGuard<'_, Packs> {
        // A panic while holding the lock cannot leave `Packs` half-updated (every update is a
        // single push/retain), so a poisoned lock is still consistent.
        self.packs.read().unwrap_or_else(|p| p.into_inner())
    }

    fn locate(&self, id: &ChunkId) -> Option<(Arc<Pack>, IdxEntry)> {
        let packs = self.read_packs();
        // Newest first: recently written chunks are the likeliest to be read again.
        packs
            .list
            .iter()
            .rev()
            .find_map(|p| p.index.find(id).map(|e| (Arc::clone(p), e)))
    }

    /// Reads and verifies one record.
    fn read_record(pack: &Pack, entry: &IdxEntry) -> Result<Vec<u8>, StoreError> {
        let corrupt = |reason: String| StoreError::ChunkCorrupt {
            id: entry.id,
            pack: pack.data_path.clone(),
            offset: entry.offset,
            reason,
        };
        let io_err = |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => corrupt("pack is truncated".into()),
            _ => StoreError::io(&pack.data_path, e),
        };
        // Header and payload are read separately so the payload lands where it is returned:
        // one read into one buffer, instead of a copy to drop the header (which cost a memmove
        // of every chunk a server sends).
        let mut head = [0u8; RECORD_HEADER_LEN];
        pack.file
            .read_exact_at(&mut head, entry.offset)
            .map_err(io_err)?;
        let header = RecordHeader::decode(&head);
        if header.id != entry.id
            || header.raw_len != entry.raw_len
            || header.stored_len != entry.stored_len
            || header.flags != entry.flags
        {
            return Err(corrupt("record header does not match the index".into()));
        }
        let mut payload = vec![0u8; entry.stored_len as usize];
        pack.file
            .read_exact_at(&mut payload, entry.offset + RECORD_HEADER_LEN as u64)
            .map_err(io_err)?;
        let data = if entry.flags & FLAG_ZSTD != 0 {
            compress::decompress(&payload, entry.raw_len)
                .map_err(|e| corrupt(format!("cannot decompress: {e}")))?
        } else {
            payload
        };
        if ChunkId::of(&data) != entry.id {
            return Err(corrupt("content does not match its BLAKE3 id".into()));
        }
        Ok(data)
    }

    /// Every pack file, indexed or not.
    pub fn pack_infos(&self) -> Result<Vec<PackInfo>, StoreError> {
        self.refresh()?;
        let dir = self.packs_dir();
        let packs = self.read_packs();
        let mut out = Vec::new();
        for (name, entry) in list_by_suffix(&dir, ".pack")? {
            let name = name.as_str();
            let file_len = entry
                .metadata()
                .map_err(|e| StoreError::io(entry.path(), e))?
                .len();
            let loaded = packs.list.iter().find(|p| p.name == name);
            out.push(PackInfo {
                name: name.to_owned(),
                data_path: entry.path(),
                file_len,
                indexed_len: loaded.map(|p| p.index.pack_len()),
                chunks: loaded.map_or(0, |p| p.index.len()),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Reads and verifies every indexed chunk of every pack; calls `problem` for each failure
    /// and `progress` with the bytes checked.
    pub fn verify_all(
        &self,
        mut problem: impl FnMut(StoreError),
        progress: &dyn crate::progress::Progress,
    ) -> Result<u64, StoreError> {
        self.refresh()?;
        let packs: Vec<Arc<Pack>> = self.read_packs().list.clone();
        progress.set_total(packs.iter().map(|p| p.index.pack_len()).sum());
        let mut checked = 0;
        for pack in packs {
            for entry in pack.index.iter() {
                if progress.interrupted() {
                    return Err(StoreError::Interrupted);
                }
                match Self::read_record(&pack, &entry) {
                    Ok(_) => checked += 1,
                    Err(e) => problem(e),
                }
                progress.inc(entry.record_len());
            }
        }
        Ok(checked)
    }

    /// Drops index entries whose records are damaged, so that re-adding or re-fetching the
    /// content stores it afresh. Returns the ids dropped. Damaged bytes stay in the pack.
    pub fn drop_damaged(&self) -> Result<Vec<ChunkId>, StoreError> {
        self.refresh()?;
        let packs: Vec<Arc<Pack>> = self.read_packs().list.clone();
        let mut dropped = Vec::new();
        for pack in packs {
            let mut keep = Vec::new();
            for entry in pack.index.iter() {
                match Self::read_record(&pack, &entry) {
                    Ok(_) => keep.push(entry),
                    Err(e) if e.is_transient() => return Err(e),
                    Err(_) => dropped.push(entry.id),
                }
            }
            if keep.len() != pack.index.len() {
                let idx_path = self.packs_dir().join(format!("{}.idx", pack.name));
                let bytes = PackIndex::encode(&mut keep, pack.index.pack_len());
                fsio::replace_file(&idx_path, &bytes)?;
                self.publish(&pack.name)?;
            }
        }
        Ok(dropped)
    }

    /// The chunk ids of each pack written at least `min_age` ago (a younger pack may still
    /// be growing in another process), for [`Self::delete_pack`] decisions.
    pub fn settled_packs(
        &self,
        min_age: std::time::Duration,
    ) -> Result<Vec<(String, Vec<ChunkId>)>, StoreError> {
        self.refresh()?;
        let now = std::time::SystemTime::now();
        let packs: Vec<Arc<Pack>> = self.read_packs().list.clone();
        let mut out = Vec::new();
        for pack in packs {
            let modified = fs::metadata(&pack.data_path)
                .and_then(|m| m.modified())
                .map_err(|e| StoreError::io(&pack.data_path, e))?;
            let age = now.duration_since(modified).unwrap_or_default();
            if age >= min_age {
                out.push((pack.name.clone(), pack.index.iter().map(|e| e.id).collect()));
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
        self.packs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .list
            .retain(|p| p.name != name);
        Ok(freed)
    }

    /// Rewrites pack `name` keeping only the chunks in `keep` (copied, verified, into a new
    /// pack that is made durable first), then deletes the old pack. Returns the bytes freed.
    /// A crash in between leaves both packs (duplicates are harmless) or an orphan new pack.
    pub fn rewrite_pack(
        &self,
        name: &str,
        keep: &std::collections::HashSet<ChunkId>,
    ) -> Result<u64, StoreError> {
        let pack = self
            .read_packs()
            .list
            .iter()
            .find(|p| p.name == name)
            .cloned();
        let Some(pack) = pack else { return Ok(0) };
        let mut writer = PackWriter::isolated(self)?;
        let mut written = 0;
        for entry in pack.index.iter().filter(|e| keep.contains(&e.id)) {
            let data = Self::read_record(&pack, &entry)?;
            written += super::ChunkSink::put_chunk(&mut writer, entry.id, &data)?;
        }
        super::ChunkSink::commit(&mut writer)?;
        drop(writer);
        Ok(self.delete_pack(name)?.saturating_sub(written))
    }

    /// Stores a top-level manifest; its group objects must be committed already.
    pub(crate) fn write_manifest_top(&self, id: &FileId, top: &[u8]) -> Result<(), StoreError> {
        fsio::create_once(&self.manifest_path(id), top)
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

    /// Removes a manifest that fails to decode, so the file can be added again.
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
        let dir = self.root.join("manifests");
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

    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut s = StoreStats::default();
        for info in self.pack_infos()? {
            s.packs += 1;
            s.pack_bytes += info.file_len;
        }
        {
            let packs = self.read_packs();
            let mut seen = std::collections::HashSet::new();
            for p in &packs.list {
                for e in p.index.iter() {
                    if seen.insert(e.id) {
                        s.chunks += 1;
                        s.chunk_raw_bytes += u64::from(e.raw_len);
                        s.compressed_chunks += u64::from(e.flags & FLAG_ZSTD != 0);
                    }
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

impl ChunkSource for DiskStore {
    /// Only looks at indexes already loaded: ingest asks this for every chunk and must not scan
    /// the directory each time. Writers refresh once when they start.
    fn has_chunk(&self, id: &ChunkId) -> bool {
        self.locate(id).is_some()
    }

    fn read_chunk(&self, id: &ChunkId) -> Result<Vec<u8>, StoreError> {
        let found = match self.locate(id) {
            Some(found) => found,
            None => {
                self.refresh()?;
                self.locate(id)
                    .ok_or(StoreError::ChunkMissing { id: *id })?
            }
        };
        Self::read_record(&found.0, &found.1)
    }

    fn has_manifest(&self, id: &FileId) -> bool {
        self.manifest_path(id).is_file()
    }

    fn read_manifest(&self, id: &FileId) -> Result<Manifest, StoreError> {
        let path = self.manifest_path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::ManifestMissing { id: *id })
            }
            Err(e) => return Err(StoreError::io(path, e)),
        };
        let corrupt = |source| StoreError::ManifestCorrupt {
            path: path.clone(),
            source,
        };
        let top = TopManifest::decode(&bytes).map_err(corrupt)?;
        let groups = top
            .groups
            .iter()
            .map(|g| self.read_chunk(&g.id))
            .collect::<Result<Vec<_>, _>>()?;
        let m = Manifest::assemble(top, &groups).map_err(corrupt)?;
        if m.file_id != *id {
            return Err(StoreError::ManifestCorrupt {
                path,
                source: crate::manifest::ManifestError::Inconsistent(
                    "stored under another file id",
                ),
            });
        }
        Ok(m)
    }
}

/// Reads a pack's records in order, verifying each; stops at the first record that is
/// incomplete or does not verify. Returns the good entries and the length they cover.
fn scan_pack(path: &Path) -> Result<(Vec<IdxEntry>, u64), StoreError> {
    use super::format::{PACK_HEADER_LEN, PACK_MAGIC};
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let len = file.metadata().map_err(|e| StoreError::io(path, e))?.len();
    let mut head = [0u8; PACK_HEADER_LEN as usize];
    if file.read_exact_at(&mut head, 0).is_err() || &head[..8] != PACK_MAGIC {
        return Ok((Vec::new(), PACK_HEADER_LEN));
    }
    let mut entries = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut offset = PACK_HEADER_LEN;
    let mut rh = [0u8; RECORD_HEADER_LEN];
    while offset + RECORD_HEADER_LEN as u64 <= len {
        if file.read_exact_at(&mut rh, offset).is_err() {
            break;
        }
        let h = RecordHeader::decode(&rh);
        let entry = IdxEntry {
            id: h.id,
            offset,
            raw_len: h.raw_len,
            stored_len: h.stored_len,
            flags: h.flags,
        };
        if offset + entry.record_len() > len {
            break;
        }
        let mut payload = vec![0u8; h.stored_len as usize];
        if file
            .read_exact_at(&mut payload, offset + RECORD_HEADER_LEN as u64)
            .is_err()
        {
            break;
        }
        let data = if h.flags & FLAG_ZSTD != 0 {
            match compress::decompress(&payload, h.raw_len) {
                Ok(d) => d,
                Err(_) => break,
            }
        } else {
            payload
        };
        if ChunkId::of(&data) != h.id {
            break;
        }
        offset += entry.record_len();
        if seen.insert(entry.id) {
            entries.push(entry);
        }
    }
    Ok((entries, offset))
}

/// `(name without suffix, entry)` of the files in `dir` whose names end in `suffix`.
fn list_by_suffix(dir: &Path, suffix: &str) -> Result<Vec<(String, fs::DirEntry)>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let file_name = entry.file_name();
        if let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(suffix)) {
            out.push((name.to_owned(), entry));
        }
    }
    Ok(out)
}

fn read_all(mut f: File) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    io::Read::read_to_end(&mut f, &mut v)?;
    Ok(v)
}
