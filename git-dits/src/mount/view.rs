//! The read-only filesystem as operations on inodes and open handles, with no FUSE in sight:
//! the FUSE glue (`fuse.rs`) and a future Windows (dokany) backend are thin translations of
//! these calls.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dits_core::FileId;

use super::content::{Content, Readahead};
use super::snapshot::{Attr, FileKind, Ino, Kind, Snapshot};

/// What went wrong, as a filesystem would say it; `Io` carries the reason for the log.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("no such file or directory")]
    NotFound,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("not a symbolic link")]
    NotLink,
    #[error("{0}")]
    Io(String),
}

enum Handle {
    /// Git's own blobs are small (code, text): read whole at open.
    Plain(Arc<Vec<u8>>),
    Dits {
        id: FileId,
        size: u64,
        path: String,
        readahead: Mutex<Readahead>,
    },
}

pub struct View {
    pub snapshot: Snapshot,
    pub content: Arc<Content>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    next_handle: AtomicU64,
}

impl View {
    pub fn new(snapshot: Snapshot, content: Arc<Content>) -> View {
        View {
            snapshot,
            content,
            handles: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        }
    }

    pub fn attr(&self, ino: Ino) -> Result<Attr, ViewError> {
        self.snapshot.attr(ino).ok_or(ViewError::NotFound)
    }

    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Attr, ViewError> {
        match self.snapshot.lookup(parent, name) {
            Ok(Some(ino)) => self.attr(ino),
            Ok(None) => Err(ViewError::NotFound),
            Err(e) => Err(self.io_error(e)),
        }
    }

    /// `(name, attr)` of the entries of directory `ino`, `.` and `..` first.
    pub fn list(&self, ino: Ino) -> Result<Vec<(OsString, Attr)>, ViewError> {
        let children = match self.snapshot.children(ino) {
            Ok(Some(c)) => c,
            Ok(None) => return Err(ViewError::NotDir),
            Err(e) => return Err(self.io_error(e)),
        };
        let here = self.attr(ino)?;
        let parent = self
            .snapshot
            .node(ino)
            .and_then(|n| self.snapshot.attr(n.parent))
            .unwrap_or(here);
        let mut out = vec![(".".into(), here), ("..".into(), parent)];
        for (name, child) in &children.entries {
            out.push((name.clone(), self.attr(*child)?));
        }
        Ok(out)
    }

    pub fn readlink(&self, ino: Ino) -> Result<Vec<u8>, ViewError> {
        let node = self.snapshot.node(ino).ok_or(ViewError::NotFound)?;
        match node.kind {
            Kind::Symlink { blob, .. } => self.snapshot.blob(blob).map_err(|e| self.io_error(e)),
            _ => Err(ViewError::NotLink),
        }
    }

    /// Opens file `ino`; returns the handle for `read` and `release`.
    pub fn open(&self, ino: Ino) -> Result<u64, ViewError> {
        let node = self.snapshot.node(ino).ok_or(ViewError::NotFound)?;
        let handle = match &node.kind {
            Kind::Plain { blob, .. } => {
                Handle::Plain(Arc::new(self.snapshot.blob(*blob).map_err(|e| {
                    self.io_error(e.context(format!("reading {}", node.path)))
                })?))
            }
            Kind::Dits { pointer, .. } => Handle::Dits {
                id: pointer.id,
                size: pointer.size,
                path: node.path.clone(),
                readahead: Mutex::new(Readahead::default()),
            },
            Kind::Dir { .. } | Kind::Submodule => return Err(ViewError::IsDir),
            Kind::Symlink { .. } => return Err(ViewError::NotFound),
        };
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fh, Arc::new(handle));
        Ok(fh)
    }

    /// Reads into `out` (cleared first), which the caller keeps for its next read.
    pub fn read(&self, fh: u64, offset: u64, len: u32, out: &mut Vec<u8>) -> Result<(), ViewError> {
        let handle = self
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&fh)
            .cloned()
            .ok_or(ViewError::NotFound)?;
        match &*handle {
            Handle::Plain(data) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let end = start.saturating_add(len as usize).min(data.len());
                out.clear();
                out.extend_from_slice(&data[start..end]);
                Ok(())
            }
            Handle::Dits {
                id,
                size,
                path,
                readahead,
            } => self
                .content
                .read(id, *size, offset, u64::from(len), readahead, out)
                .map_err(|e| {
                    // The reader sees EIO; the reason goes to the log, with the path.
                    tracing::error!("cannot read {path} at {offset} (+{len}): {e}");
                    ViewError::Io(e.to_string())
                }),
        }
    }

    pub fn release(&self, fh: u64) {
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&fh);
    }

    pub fn is_dir(&self, ino: Ino) -> bool {
        self.snapshot
            .attr(ino)
            .is_some_and(|a| a.kind == FileKind::Dir)
    }

    fn io_error(&self, e: anyhow::Error) -> ViewError {
        tracing::error!("{e:#}");
        ViewError::Io(format!("{e:#}"))
    }
}
