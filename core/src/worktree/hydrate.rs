//! Replacing a pointer in the work tree by the real content, outside git's pipe.
//!
//! Git buffers a smudge filter's whole output in memory, so large files are not smudged
//! through git: the filter leaves the pointer and Dits later replaces it by streaming from the
//! store (see docs/ARCHITECTURE.md, "Large files and git's smudge buffer").
//!
//! The replacement is atomic (temp file beside the target, then rename) and only happens while
//! the target still holds exactly the pointer: a file the user changed meanwhile is left alone.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::pointer::{Pointer, MAX_LEN};
use crate::reader::{copy_prefetched, from_io};
use crate::rebuild::manifest_for;
use crate::store::{ChunkSource, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum HydrateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {source}", path.display())]
    Store {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hydrated {
    /// The pointer was replaced by the content.
    Written,
    /// The file no longer holds the pointer (already hydrated, edited, or deleted).
    Skipped,
}

/// What the work-tree file at `path` holds, if it is a pointer.
pub fn read_pointer_file(path: &Path) -> io::Result<Option<Pointer>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if f.metadata()?.len() > MAX_LEN as u64 {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(MAX_LEN);
    Read::by_ref(&mut f)
        .take(MAX_LEN as u64 + 1)
        .read_to_end(&mut buf)?;
    Ok(Pointer::parse(&buf).ok())
}

/// Replaces the pointer file at `path` with the content `pointer` names.
pub fn hydrate_file<S: ChunkSource + ?Sized>(
    store: &S,
    path: &Path,
    pointer: &Pointer,
) -> Result<Hydrated, HydrateError> {
    let io_err = |source| HydrateError::Io {
        path: path.to_owned(),
        source,
    };
    if read_pointer_file(path).map_err(io_err)? != Some(*pointer) {
        return Ok(Hydrated::Skipped);
    }
    let store_err = |source| HydrateError::Store {
        path: path.to_owned(),
        source,
    };
    let manifest = manifest_for(store, pointer).map_err(store_err)?;
    let mode = fs::metadata(path).map_err(io_err)?.permissions().mode();
    let tmp = temp_beside(path);
    let written = (|| -> io::Result<Hydrated> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .open(&tmp)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        copy_prefetched(store, &manifest, &mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        // Git re-checks the content of any file whose mtime is not older than its index
        // ("racily clean"), on every `git status` until the index is rewritten; a file we just
        // wrote and then re-staged would always be. Its mtime is ours to choose: backdate it.
        file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(2))?;
        // Checked again just before the rename: the user may have edited the file meanwhile.
        if read_pointer_file(path)? != Some(*pointer) {
            let _ = fs::remove_file(&tmp);
            return Ok(Hydrated::Skipped);
        }
        fs::rename(&tmp, path)?;
        Ok(Hydrated::Written)
    })();
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        // A wrong chunk or manifest stays what it is (corruption), not an I/O error.
        match from_io(e, &tmp) {
            StoreError::Io { source, .. } => io_err(source),
            other => store_err(other),
        }
    })
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = crate::store::unique_temp_suffix();
    path.with_file_name(format!(".{name}.dits-{unique}"))
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
    fn replaces_pointer_keeps_mode_and_skips_edited_files() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let mut store = MemoryStore::default();
        let data = pseudo_random(8, 700_000);
        let m = ingest(&data[..], ChunkerParams::default(), &mut store, &Silent)?.manifest;
        let pointer = Pointer::new(m.file_id, m.size);
        let path = dir.path().join("clip one.mov");
        fs::write(&path, pointer.to_bytes())?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        assert_eq!(hydrate_file(&store, &path, &pointer)?, Hydrated::Written);
        assert_eq!(fs::read(&path)?, data);
        assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o755);
        // Already hydrated: nothing to do.
        assert_eq!(hydrate_file(&store, &path, &pointer)?, Hydrated::Skipped);
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }
}
