//! The packs a store knows: loading their indexes, noticing indexes other writers published,
//! and finding the record of a chunk. Readers trust only what an index lists.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use super::format::{pack_header, IdxEntry, PackIndex, PACK_HEADER_LEN};
use super::record::{self, RecordError};
use super::StoreError;
use crate::id::ChunkId;

pub(crate) struct Pack {
    pub name: String,
    pub data_path: PathBuf,
    pub file: File,
    pub index: PackIndex,
    /// Inode of the index file it was loaded from; a republished index has a new one.
    idx_ino: u64,
}

impl Pack {
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
        for (name, entry) in list_by_suffix(&self.dir, ".idx")? {
            let ino = match entry.metadata() {
                Ok(m) => m.ino(),
                // Replaced between listing and stat: the next refresh sees the new one.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(entry.path(), e)),
            };
            if known.get(&name) != Some(&ino) {
                let loaded = self.load(&name);
                fresh.push((name, loaded));
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
        Ok(Arc::new(Pack {
            name: name.to_owned(),
            data_path,
            file,
            index,
            idx_ino,
        }))
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

    pub fn locate(&self, id: &ChunkId) -> Option<(Arc<Pack>, IdxEntry)> {
        // Newest first: recently written chunks are the likeliest to be read again.
        self.read()
            .list
            .iter()
            .rev()
            .find_map(|p| p.index.find(id).map(|e| (Arc::clone(p), e)))
    }

    pub fn snapshot(&self) -> Vec<Arc<Pack>> {
        self.read().list.clone()
    }
}

fn install(packs: &mut Packs, pack: Arc<Pack>) {
    packs.damaged.remove(&pack.name);
    packs.list.retain(|p| p.name != pack.name);
    packs.bad_headers.retain(|p| *p != pack.data_path);
    if !pack.header_ok() {
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
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let file_name = entry.file_name();
        if let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(suffix)) {
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
