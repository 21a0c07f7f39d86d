//! A Dits server as a [`FileSource`] for the filter and `git dits checkout`: connected on
//! first need, then shared by every worker thread.

use std::path::Path;
use std::sync::OnceLock;

use dits_core::prepared::Prepared;
use dits_core::store::{ChunkSource, DiskStore};
use dits_core::transfer::{FetchError, FileSource};
use dits_core::wire::ErrorCode;
use dits_core::{FileId, Manifest};

use super::Session;
use crate::error::NetError;
use crate::url::DitsUrl;

pub struct RemoteSource {
    url: DitsUrl,
    /// The session, or why connecting failed (not retried within one process: a filter
    /// would otherwise stall on every file of a checkout against a server that is down).
    session: OnceLock<Result<Session, String>>,
}

impl RemoteSource {
    pub fn new(url: DitsUrl) -> RemoteSource {
        RemoteSource {
            url,
            session: OnceLock::new(),
        }
    }
}

impl FileSource for RemoteSource {
    fn describe(&self) -> String {
        self.url.to_string()
    }

    fn fetch_into(&self, local: &DiskStore, id: &FileId) -> Result<Manifest, FetchError> {
        let failed = |message: String, retryable| FetchError::Failed {
            source_name: self.describe(),
            message,
            retryable,
        };
        let session = self.session()?;
        match session.fetch_files(local, &[*id], &dits_core::progress::Silent) {
            Ok(_) => local
                .read_manifest(id)
                .map_err(|e| failed(e.to_string(), e.is_transient())),
            Err(e) => Err(self.fetch_error(e)),
        }
    }

    fn fetch_and_prepare(
        &self,
        local: &DiskStore,
        id: &FileId,
        dir: &Path,
    ) -> Result<Prepared, FetchError> {
        let session = self.session()?;
        session
            .fetch_and_prepare(local, id, dir)
            .map_err(|e| self.fetch_error(e))
    }
}

impl RemoteSource {
    fn session(&self) -> Result<&Session, FetchError> {
        self.session
            .get_or_init(|| Session::connect(&self.url).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|message| FetchError::Failed {
                source_name: self.describe(),
                message: message.clone(),
                retryable: false,
            })
    }

    fn fetch_error(&self, e: NetError) -> FetchError {
        match e {
            NetError::Remote {
                code: ErrorCode::NotFound,
                ..
            } => FetchError::NotThere {
                source_name: self.describe(),
            },
            e => FetchError::Failed {
                source_name: self.describe(),
                retryable: e.retryable(),
                message: e.to_string(),
            },
        }
    }
}
