//! Errors of the network layer. Each says whether a retry can help ([`NetError::retryable`]):
//! a lost or stalled connection or a busy server may heal; a refused token or a corrupt
//! chunk will not. [`NetError::source_kind`] is the same judgement in the terms of
//! `dits_core::source`, for callers that only see a content source.

use dits_core::source::SourceErrorKind;
use dits_core::store::StoreError;
use dits_core::wire::{ErrorCode, WireError};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot connect to the Dits server at {addr}: {reason}; hint: check that `git dits serve` runs there and that its port is reachable (UDP for QUIC, or TCP: `git config dits.transport tcp`)")]
    Connect { addr: String, reason: String },
    #[error("connection to {peer} lost: {reason}; hint: run the command again, it resumes where it stopped")]
    Lost { peer: String, reason: String },
    #[error("the Dits server at {peer} stopped sending: {what}; hint: run the command again, it resumes where it stopped (`dits.timeout` sets how long a silent server is waited for)")]
    Stalled { peer: String, what: String },
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Auth(String),
    /// A setting (git config) or an argument that cannot be used; the text says which.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Url(#[from] crate::url::UrlError),
    #[error(
        "the Dits server refused the request ({code:?}): {}",
        printable(message)
    )]
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
    /// The push was stopped before anything was sent, for the reason given (content missing,
    /// a refusal); the text is the whole message for the user.
    #[error("{0}")]
    PushStopped(String),
    /// Git asked the remote helper for something it does not do.
    #[error("{0}")]
    Helper(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}; hint: the server's admin should check the disk and the file")]
    Db {
        what: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("interrupted")]
    Interrupted,
}

impl NetError {
    /// Whether trying again, on a new connection, can help.
    pub fn retryable(&self) -> bool {
        self.source_kind() == SourceErrorKind::Lost
    }

    /// What kind of failure this is, for the retry policy and the choice of the next source.
    pub fn source_kind(&self) -> SourceErrorKind {
        match self {
            NetError::Lost { .. } | NetError::Stalled { .. } => SourceErrorKind::Lost,
            NetError::Remote { code, .. } if code.retryable() => SourceErrorKind::Lost,
            NetError::Remote {
                code: ErrorCode::NotFound,
                ..
            } => SourceErrorKind::NotThere,
            NetError::Connect { .. } => SourceErrorKind::Unreachable,
            NetError::Tls(_) | NetError::Auth(_) | NetError::Url(_) | NetError::Remote { .. } => {
                SourceErrorKind::Refused
            }
            NetError::Wire { .. }
            | NetError::Unexpected { .. }
            | NetError::BadData { .. }
            | NetError::CorruptChunk { .. } => SourceErrorKind::BadData,
            NetError::Store(e) if e.is_corruption() => SourceErrorKind::BadData,
            NetError::Store(_)
            | NetError::NotLocal { .. }
            | NetError::Io { .. }
            | NetError::Db { .. }
            | NetError::Interrupted
            | NetError::Config(_)
            | NetError::PushStopped(_)
            | NetError::Helper(_) => SourceErrorKind::Local,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> NetError {
        NetError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Text a peer sent, safe to print: control characters (newlines, escape sequences) are
/// shown escaped, so a server cannot print lines that look like git's own (`remote:`,
/// `hint:`) or move the cursor.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_cannot_forge_lines_or_escape_sequences() {
        let e = NetError::Remote {
            code: ErrorCode::Forbidden,
            message: "no\nremote: hint: run rm -rf\x1b[2K\x07".into(),
        };
        let shown = e.to_string();
        assert!(!shown.contains('\n') && !shown.contains('\x1b') && !shown.contains('\x07'));
        assert!(shown.contains("no\\nremote: hint"), "{shown}");
        assert!(!e.retryable());
    }
}
