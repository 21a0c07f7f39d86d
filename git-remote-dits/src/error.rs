//! Errors of the network layer. Each says whether a retry can help ([`NetError::retryable`]):
//! a lost connection or a busy server may heal; a refused token or a corrupt chunk will not.

use dits_core::store::StoreError;
use dits_core::wire::{ErrorCode, WireError};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot connect to the Dits server at {addr}: {reason}; hint: check that `git dits serve` runs there and the port is reachable (UDP)")]
    Connect { addr: String, reason: String },
    #[error("connection to {peer} lost: {reason}; hint: run the command again, it resumes where it stopped")]
    Lost { peer: String, reason: String },
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Auth(String),
    #[error("the server refused the request ({code:?}): {message}")]
    Remote { code: ErrorCode, message: String },
    #[error("protocol error from {peer}: {source}")]
    Wire {
        peer: String,
        #[source]
        source: WireError,
    },
    #[error("protocol error from {peer}: got a {got} frame where {expected} was expected")]
    Unexpected {
        peer: String,
        got: &'static str,
        expected: &'static str,
    },
    #[error("{peer} sent invalid data: {what}; nothing was stored from it")]
    BadData { peer: String, what: String },
    #[error("chunk {id} from {peer} does not match its id (corrupted in transit or on the server); nothing was stored from it")]
    CorruptChunk {
        peer: String,
        id: dits_core::ChunkId,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "cannot send {path}: its content (file {id}) is not complete in the local store: {source}"
    )]
    NotLocal {
        path: String,
        id: Box<dits_core::FileId>,
        #[source]
        source: Box<StoreError>,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("interrupted")]
    Interrupted,
}

impl NetError {
    pub fn retryable(&self) -> bool {
        match self {
            NetError::Connect { .. } | NetError::Lost { .. } => true,
            NetError::Remote { code, .. } => code.retryable(),
            NetError::Store(e) => e.is_transient(),
            NetError::Io { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> NetError {
        NetError::Io {
            what: what.into(),
            source,
        }
    }
}
