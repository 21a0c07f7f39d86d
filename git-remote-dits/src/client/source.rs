//! A Dits server as a `dits_core` content source, for the filter, `git dits checkout`,
//! `fetch`, `pull` and the mount: connected on first need, shared by every thread, and
//! reconnected when the connection was lost. A server that cannot be reached at all is not
//! tried again for [`UNREACHABLE_FOR`], so a checkout of a thousand files against a server that
//! is down fails once, fast, while a mount that lives for days reconnects once it is back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dits_core::manifest::ChunkRef;
use dits_core::source::{Batch, ContentSource, SourceError, SourceErrorKind};
use dits_core::FileId;

use super::download::Stop;
use super::{NetSettings, Session};
use crate::error::NetError;
use crate::url::DitsUrl;

/// How long a failure to connect is remembered.
pub const UNREACHABLE_FOR: Duration = Duration::from_secs(60);

pub struct RemoteSource {
    url: DitsUrl,
    settings: NetSettings,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    session: Option<Arc<Session>>,
    /// Why connecting last failed, and when.
    unreachable: Option<(Instant, Arc<NetError>)>,
}

impl RemoteSource {
    pub fn new(url: DitsUrl, settings: NetSettings) -> RemoteSource {
        RemoteSource {
            url,
            settings,
            state: Mutex::new(State::default()),
        }
    }

    pub fn url(&self) -> &DitsUrl {
        &self.url
    }

    /// The live session, connecting if there is none. The lock is held while connecting, so
    /// concurrent callers wait for one connection instead of each making their own.
    pub fn session(&self) -> Result<Arc<Session>, SourceError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = state.session.as_ref().filter(|s| s.closed().is_none()) {
            return Ok(Arc::clone(s));
        }
        if let Some((when, why)) = &state.unreachable {
            if when.elapsed() < UNREACHABLE_FOR {
                return Err(self.error(why.source_kind(), Arc::clone(why)));
            }
        }
        match Session::connect(&self.url, &self.settings) {
            Ok(s) => {
                let s = Arc::new(s);
                state.session = Some(Arc::clone(&s));
                state.unreachable = None;
                Ok(s)
            }
            Err(e) => {
                let kind = e.source_kind();
                let e = Arc::new(e);
                // Any failure to get a session (no answer, a refused token, an unknown
                // certificate) repeats on the next try in this process.
                state.unreachable = Some((Instant::now(), Arc::clone(&e)));
                Err(self.error(kind, e))
            }
        }
    }

    /// Runs `op` on the session; a session whose connection broke is dropped, so the retry
    /// policy's next attempt connects again.
    fn with_session<T>(
        &self,
        op: impl FnOnce(&Session) -> Result<T, Stop>,
    ) -> Result<T, SourceError> {
        let session = self.session()?;
        match op(&session) {
            Ok(v) => Ok(v),
            Err(Stop::Caller(e)) => Err(e),
            Err(Stop::Net(e)) => {
                if e.retryable() || session.closed().is_some() {
                    let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                    if state
                        .session
                        .as_ref()
                        .is_some_and(|s| Arc::ptr_eq(s, &session))
                    {
                        state.session = None;
                    }
                }
                Err(self.error(e.source_kind(), Arc::new(e)))
            }
        }
    }

    fn error(&self, kind: SourceErrorKind, e: Arc<NetError>) -> SourceError {
        SourceError::new(self.describe(), kind, Shared(e))
    }
}

impl ContentSource for RemoteSource {
    fn describe(&self) -> String {
        self.url.to_string()
    }

    fn manifest_tops(&self, ids: &[FileId]) -> Result<Vec<Option<Vec<u8>>>, SourceError> {
        self.with_session(|s| s.manifest_tops(ids).map_err(Stop::Net))
    }

    fn chunks(
        &self,
        wanted: &[ChunkRef],
        on_batch: &mut dyn FnMut(Batch) -> Result<(), SourceError>,
    ) -> Result<(), SourceError> {
        self.with_session(|s| s.chunks(wanted, on_batch))
    }

    fn check(&self) -> Result<(), SourceError> {
        self.session().map(drop)
    }
}

/// A network error several callers may be told about.
#[derive(Debug)]
struct Shared(Arc<NetError>);

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Shared {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}
