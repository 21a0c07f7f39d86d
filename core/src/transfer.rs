//! Copying a file's objects from one store into another: used when content is found in a
//! repository we cloned from (a local-path remote) and, later, when it comes from a server.
//! Every chunk is verified on read, so a damaged source cannot damage the destination.

use std::path::Path;

use crate::id::FileId;
use crate::manifest::Manifest;
use crate::prepared::{Prepared, Preparer};
use crate::store::{ChunkSink, ChunkSource, DiskStore, StoreError};

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

/// Somewhere content missing locally can come from: another repository's store on this
/// machine, or a Dits server (implemented by the network crate).
pub trait FileSource: Send + Sync {
    /// For messages: a path or a URL.
    fn describe(&self) -> String;
    /// Copies the manifest of `id` and every chunk `local` lacks into `local`, verified.
    fn fetch_into(&self, local: &DiskStore, id: &FileId) -> Result<Manifest, FetchError>;

    /// Like [`FileSource::fetch_into`], and also writes the file's content into a temp file
    /// in `dir`, ready to replace its pointer. A source that streams chunks writes the file
    /// as they land (see [`crate::prepared`]); this default reads it back from `local` after.
    fn fetch_and_prepare(
        &self,
        local: &DiskStore,
        id: &FileId,
        dir: &Path,
    ) -> Result<Prepared, FetchError> {
        let manifest = self.fetch_into(local, id)?;
        prepare_from(local, manifest, dir).map_err(|e| FetchError::Failed {
            source_name: self.describe(),
            retryable: e.is_transient(),
            message: e.to_string(),
        })
    }
}

/// The content of `manifest`, all of whose chunks are in `store`, in a temp file in `dir`.
pub fn prepare_from(
    store: &DiskStore,
    manifest: Manifest,
    dir: &Path,
) -> Result<Prepared, StoreError> {
    let preparer =
        Preparer::create(dir, manifest).map_err(|e| StoreError::io(dir.to_owned(), e))?;
    preparer.finish(store)
}

/// Why a source could not provide a file.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{source_name} does not have it")]
    NotThere { source_name: String },
    #[error("{source_name}: {message}")]
    Failed {
        source_name: String,
        message: String,
        retryable: bool,
    },
}

impl FileSource for DiskStore {
    fn describe(&self) -> String {
        self.root().display().to_string()
    }

    fn fetch_into(&self, local: &DiskStore, id: &FileId) -> Result<Manifest, FetchError> {
        if !self.has_manifest(id) {
            return Err(FetchError::NotThere {
                source_name: self.describe(),
            });
        }
        let failed = |e: StoreError| FetchError::Failed {
            source_name: self.describe(),
            retryable: e.is_transient(),
            message: e.to_string(),
        };
        let mut writer = local.writer().map_err(failed)?;
        import_file(self, &mut writer, id).map_err(failed)
    }
}

/// The store of a repository on this machine (a local-path remote), opened on first need:
/// loading another repository's indexes is wasted work for the many runs that find
/// everything locally.
pub struct LocalSource {
    root: std::path::PathBuf,
    store: std::sync::OnceLock<Option<DiskStore>>,
}

impl LocalSource {
    pub fn new(root: std::path::PathBuf) -> LocalSource {
        LocalSource {
            root,
            store: std::sync::OnceLock::new(),
        }
    }
}

impl FileSource for LocalSource {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn fetch_into(&self, local: &DiskStore, id: &FileId) -> Result<Manifest, FetchError> {
        match self
            .store
            .get_or_init(|| DiskStore::open_existing(&self.root))
        {
            Some(store) => store.fetch_into(local, id),
            None => Err(FetchError::NotThere {
                source_name: self.describe(),
            }),
        }
    }
}

/// Makes `id` available in `local`, fetching it from the first of `sources` that has it.
/// Returns the manifest; if no source has it, the local store's error, with what each source
/// said appended so the user sees why (a refused token, a server that is down).
pub fn ensure_local(
    local: &DiskStore,
    sources: &[std::sync::Arc<dyn FileSource>],
    id: &FileId,
) -> Result<Manifest, EnsureError> {
    from_sources(local, sources, id, Ok, |s| s.fetch_into(local, id))
}

/// Like [`ensure_local`], and writes the file into a temp file in `dir` on the way (from the
/// chunks as they are fetched where the source allows), ready to replace its pointer.
pub fn ensure_prepared(
    local: &DiskStore,
    sources: &[std::sync::Arc<dyn FileSource>],
    id: &FileId,
    dir: &Path,
) -> Result<Prepared, EnsureError> {
    from_sources(
        local,
        sources,
        id,
        |m| prepare_from(local, m, dir),
        |s| s.fetch_and_prepare(local, id, dir),
    )
}

/// `complete` of the manifest if `local` has all of `id`, else the first source's `fetch`.
fn from_sources<T>(
    local: &DiskStore,
    sources: &[std::sync::Arc<dyn FileSource>],
    id: &FileId,
    complete: impl FnOnce(Manifest) -> Result<T, StoreError>,
    fetch: impl Fn(&dyn FileSource) -> Result<T, FetchError>,
) -> Result<T, EnsureError> {
    let missing = match local.read_manifest(id) {
        Ok(m) => match m.chunks.iter().find(|c| !local.has_chunk(&c.id)) {
            None => {
                return complete(m).map_err(|missing| EnsureError {
                    missing,
                    tried: Vec::new(),
                })
            }
            Some(c) => StoreError::ChunkMissing { id: c.id },
        },
        Err(e) => e,
    };
    let mut tried = Vec::new();
    for source in sources {
        match fetch(source.as_ref()) {
            Ok(got) => {
                tracing::debug!("fetched {id} from {}", source.describe());
                return Ok(got);
            }
            Err(e @ FetchError::NotThere { .. }) => tracing::debug!("{id}: {e}"),
            Err(e) => {
                tracing::warn!("cannot fetch {id}: {e}");
                tried.push(e.to_string());
            }
        }
    }
    Err(EnsureError { missing, tried })
}

/// Content that is neither local nor obtainable from any source.
#[derive(Debug, thiserror::Error)]
#[error("{missing}{}", tried.iter().map(|t| format!("; {t}")).collect::<String>())]
pub struct EnsureError {
    pub missing: StoreError,
    /// What failed sources said (sources that simply lack the content are not listed).
    pub tried: Vec<String>,
}

/// Why a top-level manifest received from a peer was not stored.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("manifest is invalid: {0}")]
    Invalid(#[from] crate::manifest::ManifestError),
    #[error("manifest of {file} needs {} objects that were not uploaded (first: {})", missing.len(), missing[0])]
    Missing {
        file: FileId,
        missing: Vec<crate::id::ChunkId>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores a top-level manifest sent by a peer, but only once its groups and every chunk they
/// list are in `store` (committed). This is the
/// server's half of the rule "chunks first, manifest after".
pub fn accept_manifest_top(store: &DiskStore, top_bytes: &[u8]) -> Result<Manifest, AcceptError> {
    let top = crate::manifest::TopManifest::decode(top_bytes)?;
    store.refresh()?;
    let file = top.file_id;
    let missing: Vec<_> = top
        .groups
        .iter()
        .map(|g| g.id)
        .filter(|id| !store.has_chunk(id))
        .collect();
    if !missing.is_empty() {
        return Err(AcceptError::Missing { file, missing });
    }
    let groups = top
        .groups
        .iter()
        .map(|g| store.read_chunk(&g.id))
        .collect::<Result<Vec<_>, _>>()?;
    // Decoding checked that the groups add up to the size, assembling that each group adds
    // up to what the top level says.
    let manifest = Manifest::assemble(top, &groups)?;
    let missing: Vec<_> = manifest
        .chunks
        .iter()
        .map(|c| c.id)
        .filter(|id| !store.has_chunk(id))
        .collect();
    if !missing.is_empty() {
        return Err(AcceptError::Missing { file, missing });
    }
    store.write_manifest_top(&file, top_bytes)?;
    Ok(manifest)
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
