//! Where the mount gets chunks the local store lacks: the store of a local-path remote, or a
//! Dits server. Unlike the filter's sources, which copy whole files, these hand out single
//! chunks, so a read of 4 KiB in a 1 TiB file moves one chunk.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, Context, Result};
use dits_core::store::{ChunkSource, DiskStore};
use dits_core::{ChunkId, FileId, Manifest};
use git_remote_dits::client::Session;
use git_remote_dits::DitsUrl;

/// How long the check before mounting waits for a server.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub trait ChunkOrigin: Send + Sync {
    /// For messages: a path or a URL.
    fn describe(&self) -> String;
    /// The manifest of `id` (group objects verified), not its chunks. The caller stores it.
    fn manifest(&self, id: &FileId) -> Result<Manifest>;
    /// The bytes of `wanted` (ids and lengths from a manifest), in order, each verified.
    fn chunks(&self, wanted: &[(ChunkId, u64)]) -> Result<Vec<Vec<u8>>>;
    /// Checks that the origin can be reached (settling trust and credentials where someone
    /// can answer, before the mount goes to the background).
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// The chunk store of a repository on this machine, opened on first need.
pub struct StoreOrigin {
    root: PathBuf,
    store: OnceLock<Option<DiskStore>>,
}

impl StoreOrigin {
    pub fn new(root: PathBuf) -> StoreOrigin {
        StoreOrigin {
            root,
            store: OnceLock::new(),
        }
    }

    fn store(&self) -> Result<&DiskStore> {
        self.store
            .get_or_init(|| DiskStore::open_existing(&self.root))
            .as_ref()
            .ok_or_else(|| anyhow!("{}: no Dits store there", self.root.display()))
    }
}

impl ChunkOrigin for StoreOrigin {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn manifest(&self, id: &FileId) -> Result<Manifest> {
        Ok(self.store()?.read_manifest(id)?)
    }

    fn chunks(&self, wanted: &[(ChunkId, u64)]) -> Result<Vec<Vec<u8>>> {
        let store = self.store()?;
        // read_chunk verifies each chunk against its id.
        wanted
            .iter()
            .map(|(id, _)| Ok(store.read_chunk(id)?))
            .collect()
    }
}

/// A Dits server, connected on first need and reconnected when the connection has dropped
/// (a mount lives for days; a connection idles out in seconds).
pub struct ServerOrigin {
    url: DitsUrl,
    session: Mutex<Option<Arc<Session>>>,
}

impl ServerOrigin {
    pub fn new(url: DitsUrl) -> ServerOrigin {
        ServerOrigin {
            url,
            session: Mutex::new(None),
        }
    }

    /// The live session, connecting (within `timeout`) if there is none. The lock is held
    /// while connecting, so concurrent readers wait for one connection instead of each
    /// making their own.
    fn session_within(&self, timeout: std::time::Duration) -> Result<Arc<Session>> {
        let mut slot = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slot
            .as_ref()
            .filter(|s| s.connection().close_reason().is_none())
        {
            return Ok(Arc::clone(s));
        }
        let session = Arc::new(
            Session::connect_within(&self.url, timeout)
                .with_context(|| format!("connecting to the Dits server {}", self.url))?,
        );
        *slot = Some(Arc::clone(&session));
        Ok(session)
    }

    fn session(&self) -> Result<Arc<Session>> {
        self.session_within(git_remote_dits::client::idle_timeout())
    }

    /// Runs `op` on the session; once more on a new connection if the old one was lost.
    fn with_session<T>(
        &self,
        op: impl Fn(&Session) -> Result<T, git_remote_dits::NetError>,
    ) -> Result<T> {
        let session = self.session()?;
        match op(&session) {
            Ok(v) => Ok(v),
            Err(e) if session.connection().close_reason().is_some() => {
                tracing::info!("{}: connection lost ({e}); reconnecting", self.url);
                drop(session);
                let session = self.session()?;
                Ok(op(&session)?)
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl ChunkOrigin for ServerOrigin {
    fn describe(&self) -> String {
        self.url.to_string()
    }

    fn manifest(&self, id: &FileId) -> Result<Manifest> {
        self.with_session(|s| s.read_manifest(id))
    }

    fn chunks(&self, wanted: &[(ChunkId, u64)]) -> Result<Vec<Vec<u8>>> {
        self.with_session(|s| s.read_chunks(wanted))
    }

    fn check(&self) -> Result<()> {
        // Quick, like `git dits status`: a server that is down must not hold up the mount.
        self.session_within(CHECK_TIMEOUT).map(|_| ())
    }
}
