//! Where content missing from the local store comes from: the store of a repository on this
//! machine (a local-path remote), or a Dits server (implemented by the network crate). The
//! filter, `git dits checkout`/`fetch`/`pull` and the mount all use this one trait, with the
//! one retry policy below; fetching itself (which manifests and chunks to ask for, what to
//! keep) is [`crate::transfer`].
//!
//! A source only moves bytes by id: top-level manifests by file id, chunks (and manifest
//! group objects, which are chunk-store objects) by chunk id. Everything it hands out is
//! checked again by the caller where it matters; chunks are verified against their ids by the
//! source before they are handed on.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use crate::id::{ChunkId, FileId};
use crate::manifest::ChunkRef;
use crate::store::{ChunkSource, DiskStore, StoreError};

/// Verified chunks, in the order they were asked for.
pub type Batch = Vec<(ChunkId, Vec<u8>)>;

pub trait ContentSource: Send + Sync {
    /// For messages: a path or a URL.
    fn describe(&self) -> String;

    /// The stored top-level manifest of each id (as the source holds it), `None` where the
    /// source has none.
    fn manifest_tops(&self, ids: &[FileId]) -> Result<Vec<Option<Vec<u8>>>, SourceError>;

    /// Delivers `wanted` (ids and lengths from a manifest), in order, in batches of about
    /// [`BATCH_BYTES`], each chunk checked against its id and length. `on_batch` may stop the
    /// transfer by returning an error, which is returned as is.
    fn chunks(
        &self,
        wanted: &[ChunkRef],
        on_batch: &mut dyn FnMut(Batch) -> Result<(), SourceError>,
    ) -> Result<(), SourceError>;

    /// Whether the source can be reached at all (settling trust and credentials while someone
    /// can still answer a prompt). Sources on this machine always can.
    fn check(&self) -> Result<(), SourceError> {
        Ok(())
    }
}

/// Chunks per batch are about this many bytes: large enough that a round trip per batch costs
/// nothing, small enough that an interrupted transfer loses little (each batch is made
/// durable before the next is asked for).
pub const BATCH_BYTES: u64 = 16 << 20;

/// What kind of failure a [`SourceError`] is; [`SourceError::retryable`] reads only this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// The source does not have the content.
    NotThere,
    /// The source cannot be reached (no answer, refused connection, unknown host).
    Unreachable,
    /// The connection broke or stalled part-way: trying again resumes.
    Lost,
    /// The source refused (authentication, rights, a request it will not serve).
    Refused,
    /// The source sent something wrong (a chunk that does not match its id, a manifest for
    /// another file, content that does not hash to its id): nothing from it was kept.
    BadData,
    /// The local store failed while taking what the source sent.
    Local,
}

/// Why a source could not provide something, with the source's own error as the cause.
#[derive(Debug)]
pub struct SourceError {
    pub source_name: String,
    pub kind: SourceErrorKind,
    pub cause: Box<dyn Error + Send + Sync>,
}

impl SourceError {
    pub fn new(
        source_name: impl Into<String>,
        kind: SourceErrorKind,
        cause: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> SourceError {
        SourceError {
            source_name: source_name.into(),
            kind,
            cause: cause.into(),
        }
    }

    /// A failure of the local store while storing what `source_name` sent.
    pub fn local(source_name: impl Into<String>, e: StoreError) -> SourceError {
        let kind = if e.is_corruption() {
            SourceErrorKind::BadData
        } else {
            SourceErrorKind::Local
        };
        SourceError::new(source_name, kind, e)
    }

    /// Whether trying again (after reconnecting) can help: only a transfer that broke.
    pub fn retryable(&self) -> bool {
        self.kind == SourceErrorKind::Lost
    }

    /// The store error this carries, if it is one.
    pub fn store_error(&self) -> Option<&StoreError> {
        self.cause.downcast_ref::<StoreError>()
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source_name, self.cause)
    }
}

impl Error for SourceError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.cause.as_ref())
    }
}

/// The one retry policy: a transfer that broke part-way is tried again (the source
/// reconnects; what was made durable is not asked for again) up to `attempts` times in all,
/// waiting `pause`, then twice that, between attempts. Nothing else is retried: a source that
/// cannot be reached, refuses, or sends wrong data will do so again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            pause: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// Runs `op` until it succeeds, fails for good, or the attempts are used up.
    pub fn run<T>(&self, mut op: impl FnMut() -> Result<T, SourceError>) -> Result<T, SourceError> {
        let mut pause = self.pause;
        let mut attempt = 1;
        loop {
            match op() {
                Err(e) if e.retryable() && attempt < self.attempts => {
                    tracing::info!("{e}; trying again ({} of {})", attempt + 1, self.attempts);
                    std::thread::sleep(pause);
                    pause *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// Cuts `wanted` into requests of at most [`BATCH_BYTES`] and `max_ids` chunks.
pub fn batches(wanted: &[ChunkRef], max_ids: usize) -> Vec<&[ChunkRef]> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0u64);
    for (i, c) in wanted.iter().enumerate() {
        let len = u64::from(c.len);
        if i > start && (size + len > BATCH_BYTES || i - start == max_ids) {
            out.push(&wanted[start..i]);
            start = i;
            size = 0;
        }
        size += len;
    }
    if start < wanted.len() {
        out.push(&wanted[start..]);
    }
    out
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

    fn store(&self) -> Result<&DiskStore, SourceError> {
        self.store
            .get_or_init(|| DiskStore::open_existing(&self.root))
            .as_ref()
            .ok_or_else(|| {
                SourceError::new(
                    self.describe(),
                    SourceErrorKind::NotThere,
                    "no Dits store there",
                )
            })
    }
}

impl ContentSource for LocalSource {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn manifest_tops(&self, ids: &[FileId]) -> Result<Vec<Option<Vec<u8>>>, SourceError> {
        let store = self.store()?;
        ids.iter()
            .map(|id| match store.read_manifest_top(id) {
                Ok(top) => Ok(Some(top)),
                Err(StoreError::ManifestMissing { .. }) => Ok(None),
                Err(e) => Err(SourceError::local(self.describe(), e)),
            })
            .collect()
    }

    fn chunks(
        &self,
        wanted: &[ChunkRef],
        on_batch: &mut dyn FnMut(Batch) -> Result<(), SourceError>,
    ) -> Result<(), SourceError> {
        let store = self.store()?;
        for batch in batches(wanted, usize::MAX) {
            let mut out = Vec::with_capacity(batch.len());
            for c in batch {
                // read_chunk verifies each chunk against its id.
                let data = match store.read_chunk(&c.id) {
                    Ok(d) => d,
                    Err(e @ StoreError::ChunkMissing { .. }) => {
                        return Err(SourceError::new(
                            self.describe(),
                            SourceErrorKind::NotThere,
                            e,
                        ))
                    }
                    Err(e) if e.is_corruption() => {
                        return Err(SourceError::new(
                            self.describe(),
                            SourceErrorKind::BadData,
                            e,
                        ))
                    }
                    Err(e) => return Err(SourceError::local(self.describe(), e)),
                };
                if data.len() != c.len as usize {
                    return Err(SourceError::new(
                        self.describe(),
                        SourceErrorKind::BadData,
                        format!(
                            "chunk {} has {} bytes where a manifest says {}",
                            c.id,
                            data.len(),
                            c.len
                        ),
                    ));
                }
                out.push((c.id, data));
            }
            on_batch(out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broken_transfer_is_retried() {
        let policy = RetryPolicy {
            attempts: 3,
            pause: Duration::from_millis(1),
        };
        let mut calls = 0;
        let r: Result<(), _> = policy.run(|| {
            calls += 1;
            Err(SourceError::new("s", SourceErrorKind::Lost, "cut"))
        });
        assert!(r.is_err());
        assert_eq!(calls, 3);
        let mut calls = 0;
        let r: Result<(), _> = policy.run(|| {
            calls += 1;
            Err(SourceError::new("s", SourceErrorKind::Refused, "no"))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1);
        let mut calls = 0;
        let r = policy.run(|| {
            calls += 1;
            if calls < 2 {
                Err(SourceError::new("s", SourceErrorKind::Lost, "cut"))
            } else {
                Ok(7)
            }
        });
        assert_eq!(r.ok(), Some(7));
    }

    #[test]
    fn batches_respect_bytes_and_counts() {
        let refs: Vec<ChunkRef> = (0..10u32)
            .map(|i| ChunkRef {
                id: ChunkId::of(&i.to_le_bytes()),
                len: 6 << 20,
            })
            .collect();
        let b = batches(&refs, 100);
        assert_eq!(
            b.iter().map(|b| b.len()).collect::<Vec<_>>(),
            vec![2, 2, 2, 2, 2]
        );
        let b = batches(&refs[..3], 1);
        assert_eq!(b.len(), 3);
        assert!(batches(&[], 5).is_empty());
    }
}
