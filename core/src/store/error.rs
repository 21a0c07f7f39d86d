//! Errors of the chunk store. Every variant names the object and the file involved and ends
//! with what the user can do next.

use std::io;
use std::path::PathBuf;

use crate::id::{ChunkId, FileId};
use crate::manifest::ManifestError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}{}", io_hint(source))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("chunk {id} is not in the local store; hint: run `git dits fsck` to list the files that need it, then re-add them or fetch them from a remote")]
    ChunkMissing { id: ChunkId },
    #[error("chunk {id} in {} at offset {offset} is corrupt ({reason}); hint: run `git dits fsck --repair`, then re-add or re-fetch the files that use it", pack.display())]
    ChunkCorrupt {
        id: ChunkId,
        pack: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("pack index {} is corrupt ({reason}); hint: run `git dits fsck --repair`", path.display())]
    IndexCorrupt { path: PathBuf, reason: String },
    #[error("manifest of {id} is not in the local store; hint: re-add the file, or fetch it from a remote")]
    ManifestMissing { id: FileId },
    #[error("manifest {} is corrupt: {source}; hint: run `git dits fsck --repair`, then re-add the file", path.display())]
    ManifestCorrupt {
        path: PathBuf,
        #[source]
        source: ManifestError,
    },
    #[error("the Dits store at {} has format {found:?}; this git-dits reads {expected:?}; hint: upgrade git-dits", path.display())]
    UnsupportedFormat {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },
    #[error("the manifest of {id} describes {manifest} bytes but the pointer says {pointer}; nothing was written from it; hint: the pointer was edited or the manifest came from a wrong source: run `git dits fsck`, and restore the file with `git checkout -- <path>`")]
    SizeMismatch {
        id: FileId,
        manifest: u64,
        pointer: u64,
    },
    #[error("the content rebuilt from the manifest of {id} {reason}, so that manifest is wrong; it is not used; hint: run `git dits fsck --repair`, then fetch or re-add the file")]
    ContentMismatch { id: FileId, reason: String },
    #[error("interrupted")]
    Interrupted,
}

impl StoreError {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether trying again later can help (a full disk, a busy resource), as opposed to data
    /// that is missing or damaged and needs repair. Corruption is never transient.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Io { source, .. } => source.kind() != io::ErrorKind::InvalidData,
            StoreError::Interrupted => true,
            _ => false,
        }
    }

    /// Whether this says the data itself is wrong (as opposed to absent or unreachable).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            StoreError::ChunkCorrupt { .. }
                | StoreError::IndexCorrupt { .. }
                | StoreError::ManifestCorrupt { .. }
                | StoreError::SizeMismatch { .. }
                | StoreError::ContentMismatch { .. }
        )
    }
}

fn io_hint(e: &io::Error) -> &'static str {
    // ENOSPC has no stable io::ErrorKind on our MSRV, so match the raw code.
    if e.raw_os_error() == Some(libc::ENOSPC) || e.kind() == io::ErrorKind::StorageFull {
        "; hint: free disk space and retry (nothing already stored was changed)"
    } else if e.kind() == io::ErrorKind::PermissionDenied {
        "; hint: check the permissions of the .git/dits directory"
    } else {
        ""
    }
}
