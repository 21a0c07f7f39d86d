//! Why a request failed, and the one place that decides what the client is told: every
//! handler returns a [`Fail`], and [`Fail::answer`] turns it into the error frame (or into
//! nothing, when the stream is gone anyway).

use dits_core::store::StoreError;
use dits_core::transfer::AcceptError;
use dits_core::wire::{ErrorCode, Message};

use crate::error::NetError;

/// A request's failure.
pub enum Fail {
    /// Told to the client as it is.
    Refuse(ErrorCode, String),
    Net(NetError),
}

impl Fail {
    pub fn wrong_frame(expected: &str, got: &Message) -> Fail {
        Fail::Refuse(
            ErrorCode::BadRequest,
            format!("expected {expected}, got a {} frame", got.name()),
        )
    }

    /// A blocking task that did not finish (it panicked or the runtime is shutting down).
    pub fn joined(task: &str, e: tokio::task::JoinError) -> Fail {
        Fail::Net(NetError::io(task, std::io::Error::other(e)))
    }

    /// The error frame for the client, if one can still reach it, after logging the failure
    /// at the level it deserves.
    pub fn answer(self, peer: &str, kind: &str) -> Option<Message> {
        let (code, message) = match self {
            Fail::Refuse(code, message) => {
                tracing::info!("{peer}: {kind} refused ({code:?}): {message}");
                (code, message)
            }
            Fail::Net(e @ (NetError::Lost { .. } | NetError::Stalled { .. })) => {
                tracing::debug!("{peer}: {kind}: {e}");
                return None;
            }
            Fail::Net(e @ (NetError::Wire { .. } | NetError::Unexpected { .. })) => {
                tracing::info!("{peer}: {kind}: {e}");
                (ErrorCode::BadRequest, e.to_string())
            }
            Fail::Net(NetError::Store(e)) => {
                let code = store_code(&e);
                tracing::error!("{peer}: {kind}: {e}");
                (code, server_side(&e))
            }
            Fail::Net(e) => {
                tracing::error!("{peer}: {kind}: {e}");
                (ErrorCode::Internal, e.to_string())
            }
        };
        Some(Message::Error { code, message })
    }
}

/// The code for a store failure on the server: missing data is NotFound, damaged data
/// CorruptChunk (the server's admin must act), anything else (a full disk) Internal, which a
/// client may retry.
pub fn store_code(e: &StoreError) -> ErrorCode {
    match e {
        StoreError::ChunkMissing { .. } | StoreError::ManifestMissing { .. } => ErrorCode::NotFound,
        e if e.is_corruption() => ErrorCode::CorruptChunk,
        _ => ErrorCode::Internal,
    }
}

/// A store failure as the client reads it: it happened on the server, and its hints are for
/// the server's admin.
fn server_side(e: &StoreError) -> String {
    match e {
        StoreError::ChunkMissing { id } => format!("chunk {id} is not on the server"),
        StoreError::ManifestMissing { id } => format!("file {id} is not on the server"),
        e if e.is_corruption() => {
            format!("{e} (on the server; its admin should run `git dits fsck` there)")
        }
        e => format!("the server cannot store or read data: {e}"),
    }
}

impl From<NetError> for Fail {
    fn from(e: NetError) -> Fail {
        Fail::Net(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Net(NetError::Store(e))
    }
}

impl From<AcceptError> for Fail {
    fn from(e: AcceptError) -> Fail {
        match e {
            e @ AcceptError::Missing { .. } => {
                Fail::Refuse(ErrorCode::MissingObjects, e.to_string())
            }
            e @ (AcceptError::Invalid(_) | AcceptError::Wrong { .. }) => {
                Fail::Refuse(ErrorCode::BadRequest, e.to_string())
            }
            AcceptError::Store(e) => e.into(),
        }
    }
}
