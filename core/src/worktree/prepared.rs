//! Writing a file's content while its chunks are being fetched.
//!
//! A clone used to fetch every chunk of a large file into the store and only then read them
//! all back, verify them again and write the work-tree file: two passes over the content, one
//! after the other. A [`Preparer`] instead writes the file into a temp file as the fetch
//! lands, from the chunk bytes the fetch has just verified, reading from the store only the
//! chunks that were already there (verified on read, as always). The whole content is checked
//! against the file id at the end, as in [`super::hydrate`], through [`crate::rebuild`]; the result is a [`Prepared`] file
//! that [`Prepared::place`] puts where git left the pointer.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::hydrate::{read_pointer_file, HydrateError, Hydrated};
use crate::id::ChunkId;
use crate::manifest::Manifest;
use crate::pointer::Pointer;
use crate::rebuild::Rebuild;
use crate::store::{ChunkSource, StoreError};

/// A file being written span by span, in order, from chunks as they become available.
pub struct Preparer {
    rebuild: Rebuild,
    path: PathBuf,
    out: Kicked,
}

/// The temp file, with writeback started every [`WRITEBACK_STEP`] bytes.
struct Kicked {
    file: BufWriter<File>,
    written: u64,
    kicked: u64,
}

impl Write for Kicked {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.kicked >= WRITEBACK_STEP {
            self.file.flush()?;
            crate::store::fsio::start_writeback(self.file.get_ref(), self.kicked, self.written);
            self.kicked = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writeback is started every this many bytes written. Replacing a file by rename makes ext4
/// allocate and start writing all of the new file's delayed blocks inside the `rename` call
/// (its `auto_da_alloc` safety net, about 0.3 s per GiB here); starting writeback as the file
/// grows spreads that work over the fetch and leaves the rename little to do.
const WRITEBACK_STEP: u64 = 32 << 20;

impl Preparer {
    /// Starts the content of `manifest` in a new temp file in `dir`.
    pub fn create(dir: &Path, manifest: Manifest) -> io::Result<Preparer> {
        fs::create_dir_all(dir)?;
        remove_abandoned(dir);
        let path = dir.join(format!("prepare-{}", crate::store::unique_temp_suffix()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Preparer {
            rebuild: Rebuild::new(manifest),
            path,
            out: Kicked {
                file: BufWriter::with_capacity(1 << 20, file),
                written: 0,
                kicked: 0,
            },
        })
    }

    pub fn manifest(&self) -> &Manifest {
        self.rebuild.manifest()
    }

    /// Writes the following spans for as long as their chunks are at hand: in `fresh` (bytes
    /// the caller has verified against their ids) or in `store`. Stops at the first chunk
    /// that is in neither, which a later batch will bring.
    pub fn advance<S: ChunkSource + ?Sized>(
        &mut self,
        store: &S,
        fresh: &HashMap<ChunkId, &[u8]>,
    ) -> Result<(), StoreError> {
        self.rebuild
            .advance(store, fresh, &mut self.out, &self.path)
    }

    /// Writes what is left from `store` and checks the whole content against the file id.
    pub fn finish<S: ChunkSource + ?Sized>(mut self, store: &S) -> Result<Prepared, StoreError> {
        self.rebuild.finish(store, &mut self.out, &self.path)?;
        let manifest = self.rebuild.manifest();
        self.out
            .flush()
            .map_err(|e| StoreError::io(self.path.clone(), e))?;
        let pointer = Pointer::new(manifest.file_id, manifest.size);
        let path = std::mem::take(&mut self.path);
        Ok(Prepared { path, pointer })
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        // Not finished (an error, or the fetch failed): the temp file is of no use.
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A preparer writes its file continuously and a prepared file is placed when git finishes,
/// so one untouched for this long was left by a process that was killed.
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes temp files of killed processes (best effort: another may be deleting them too).
fn remove_abandoned(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ABANDONED_AFTER);
        if old && entry.file_name().to_string_lossy().starts_with("prepare-") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A complete, verified file waiting to replace its pointer in the work tree.
#[derive(Debug)]
pub struct Prepared {
    path: PathBuf,
    pointer: Pointer,
}

impl Prepared {
    /// Moves the content over `target` if `target` still holds exactly the pointer, with the
    /// pointer file's mode bits and an mtime 2 s in the past (see [`super::hydrate`]). An
    /// error leaves `target` untouched; the caller can fall back to writing it from the store
    /// (the temp file may be on another file system than the work tree).
    pub fn place(mut self, target: &Path) -> Result<Hydrated, HydrateError> {
        let io_err = |source| HydrateError::Io {
            path: target.to_owned(),
            source,
        };
        if read_pointer_file(target).map_err(io_err)? != Some(self.pointer) {
            return Ok(Hydrated::Skipped);
        }
        let mode = fs::metadata(target).map_err(io_err)?.permissions().mode();
        let file = File::options()
            .write(true)
            .open(&self.path)
            .map_err(io_err)?;
        file.set_permissions(fs::Permissions::from_mode(mode & 0o777))
            .map_err(io_err)?;
        file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(2))
            .map_err(io_err)?;
        fs::rename(&self.path, target).map_err(io_err)?;
        self.path = PathBuf::new();
        Ok(Hydrated::Written)
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunker::ChunkerParams;
    use crate::ingest::ingest;
    use crate::progress::Silent;
    use crate::store::{ChunkSink, MemoryStore};
    use crate::test_data::pseudo_random;

    #[test]
    fn writes_from_fresh_batches_and_the_store_then_places(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let data = pseudo_random(31, 3_000_000);
        let mut full = MemoryStore::default();
        let m = ingest(&data[..], ChunkerParams::default(), &mut full, &Silent)?.manifest;
        // The local store starts with the first three chunks; the rest "arrive" in two
        // batches, the second of which is also stored before it is offered.
        let mut local = MemoryStore::default();
        for c in &m.chunks[..3] {
            local.put_chunk(c.id, &full.read_chunk(&c.id)?)?;
        }
        local.commit()?;
        let mut p = Preparer::create(dir.path(), m.clone())?;
        let half = m.chunks.len() / 2;
        let first: Vec<(ChunkId, Vec<u8>)> = m.chunks[3..half]
            .iter()
            .map(|c| Ok((c.id, full.read_chunk(&c.id)?)))
            .collect::<Result<_, StoreError>>()?;
        p.advance(&local, &first.iter().map(|(id, d)| (*id, &d[..])).collect())?;
        assert!(!p.rebuild.is_complete(), "stops where the chunks run out");
        for c in &m.chunks[half..] {
            local.put_chunk(c.id, &full.read_chunk(&c.id)?)?;
        }
        local.commit()?;
        // Offered nothing fresh, it finishes from the store (those of the first batch are
        // not in it and are not needed again).
        let prepared = p.finish(&local)?;
        let target = dir.path().join("clip.mov");
        fs::write(&target, prepared.pointer.to_bytes())?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755))?;
        assert_eq!(prepared.place(&target)?, Hydrated::Written);
        assert_eq!(fs::read(&target)?, data);
        assert_eq!(fs::metadata(&target)?.permissions().mode() & 0o777, 0o755);
        assert_eq!(fs::read_dir(dir.path())?.count(), 1, "no temp file left");
        Ok(())
    }

    #[test]
    fn abandoned_temp_files_go_recent_ones_stay() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (old, recent, other) = (
            dir.path().join("prepare-old"),
            dir.path().join("prepare-recent"),
            dir.path().join("spool-old"),
        );
        for p in [&old, &recent, &other] {
            fs::write(p, b"x")?;
        }
        let long_ago = std::time::SystemTime::now() - 2 * ABANDONED_AFTER;
        for p in [&old, &other] {
            File::options()
                .write(true)
                .open(p)?
                .set_modified(long_ago)?;
        }
        let mut store = MemoryStore::default();
        let m = ingest(&b"abc"[..], ChunkerParams::default(), &mut store, &Silent)?.manifest;
        let p = Preparer::create(dir.path(), m)?;
        assert!(!old.exists() && recent.exists() && other.exists());
        drop(p);
        Ok(())
    }

    #[test]
    fn a_wrong_chunk_or_an_edited_target_writes_nothing() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let data = pseudo_random(32, 1_000_000);
        let mut store = MemoryStore::default();
        let m = ingest(&data[..], ChunkerParams::default(), &mut store, &Silent)?.manifest;
        // Offered bytes of the wrong length for a chunk: refused, and the temp file goes.
        let mut p = Preparer::create(dir.path(), m.clone())?;
        let short = [0u8; 10];
        let fresh = HashMap::from([(m.chunks[0].id, &short[..])]);
        assert!(p.advance(&store, &fresh).is_err());
        drop(p);
        assert_eq!(fs::read_dir(dir.path())?.count(), 0);
        // A manifest whose chunks are swapped rebuilds other content: caught by the file id.
        let mut swapped = m.clone();
        swapped.chunks.swap(0, 1);
        let p = Preparer::create(dir.path(), swapped)?;
        assert!(p.finish(&store).is_err());
        assert_eq!(fs::read_dir(dir.path())?.count(), 0);
        // The user replaced the pointer meanwhile: left alone.
        let prepared = Preparer::create(dir.path(), m.clone())?.finish(&store)?;
        let target = dir.path().join("clip.mov");
        fs::write(&target, b"my own edit")?;
        assert_eq!(prepared.place(&target)?, Hydrated::Skipped);
        assert_eq!(fs::read(&target)?, b"my own edit");
        assert_eq!(fs::read_dir(dir.path())?.count(), 1, "temp file removed");
        Ok(())
    }
}
